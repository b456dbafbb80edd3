"""DINO at a CPU test budget, lightly side (run with the peer venv's python).

The twin of `dino_small_budget.py` (read its docstring for the two recipes,
`--data mnist` and `--data cifar10`): lightly's DINO example pattern
(`DINOProjectionHead`, `DINOLoss`, `update_momentum` with `cosine_schedule`,
`DINOTransform`) with the same data, a PyTorch copy of kerassl's
`small_convnet(width=16, feature_dim=None)`, the same head, crops, optimizer,
schedules and kNN protocol (`shared.knn_accuracy`). `DINOTransform` is set to
kerassl's view settings: crop, flip, colour jitter 0.4/0.4/0.4/0.1 with p=0.8
(grayscale images: brightness and contrast only), random grayscale 0.2 on
colour images; no blur, no solarization, no normalization. Each gradient
tensor is clipped to norm 3, as kerassl's DINO does by default.

Usage: benchmarks/.peer-venv/bin/python benchmarks/peer_dino_small_budget.py [--data mnist|cifar10] [--seed 0]
"""

import argparse
import json
import math
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from lightly.loss import DINOLoss  # noqa: E402
from lightly.models.modules import DINOProjectionHead  # noqa: E402
from lightly.models.utils import deactivate_requires_grad, update_momentum  # noqa: E402
from lightly.transforms import DINOTransform  # noqa: E402
from lightly.utils.scheduler import cosine_schedule  # noqa: E402
from PIL import Image  # noqa: E402

import shared  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
RECIPES = shared.DINO_SMALL_BUDGET_RECIPES


def small_convnet(channels, width=16):
    """kerassl.backbones.small_convnet(width, feature_dim=None) in PyTorch."""
    layers = []
    for stage in range(3):
        filters = width * 2**stage
        for index in range(2):
            stride = 2 if stage and not index else 1
            layers += [torch.nn.Conv2d(channels, filters, 3, stride, 1, bias=False),
                       torch.nn.BatchNorm2d(filters, momentum=0.1, eps=1e-5), torch.nn.ReLU()]
            channels = filters
    return torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())


class Views(torch.utils.data.Dataset):
    def __init__(self, images, transform):
        self.images, self.transform = images, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        image = self.images[index]
        views = self.transform(Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).convert("RGB"))
        return [view[:1] for view in views] if image.shape[-1] == 1 else views


@torch.no_grad()
def features(network, images):
    network.eval()
    out = network(torch.from_numpy(images).float().div(255).permute(0, 3, 1, 2)).numpy()
    network.train()
    return out


def knn(network, data, recipe):
    x, y, x_test, y_test = data
    bank = recipe["bank"]
    return shared.knn_accuracy(features(network, x[:bank]), y[:bank], features(network, x_test), y_test,
                               k=recipe["k"], temperature=recipe["knn_temperature"])


def learning_rate(recipe, step, total, steps_per_epoch):
    """Linear warm-up over `warmup_epochs`, then cosine decay to 0 (Keras' CosineDecay)."""
    warmup = recipe["warmup_epochs"] * steps_per_epoch
    if step < warmup:
        return recipe["learning_rate"] * step / warmup
    if not warmup:
        return recipe["learning_rate"]
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return recipe["learning_rate"] * 0.5 * (1 + math.cos(math.pi * progress))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=sorted(RECIPES), default="mnist")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    recipe = dict(RECIPES[args.data], epochs=args.epochs or RECIPES[args.data]["epochs"])
    torch.manual_seed(args.seed)
    data = shared.dino_small_budget_data(args.data, recipe)
    x = data[0]
    channels = x.shape[-1]
    student, teacher = small_convnet(channels, recipe["width"]), small_convnet(channels, recipe["width"])
    teacher.load_state_dict(student.state_dict())
    hidden, bottleneck, output = recipe["head"]
    feature_dim = 4 * recipe["width"]
    student_head = DINOProjectionHead(feature_dim, hidden, bottleneck, output,
                                      batch_norm=recipe["head_batch_norm"], freeze_last_layer=-1)
    teacher_head = DINOProjectionHead(feature_dim, hidden, bottleneck, output,
                                      batch_norm=recipe["head_batch_norm"])
    teacher_head.load_state_dict(student_head.state_dict())  # weight-normed: no deepcopy
    deactivate_requires_grad(teacher)
    deactivate_requires_grad(teacher_head)
    result = {"data": args.data, "seed": args.seed, "epochs": recipe["epochs"],
              "knn_random_init": knn(student, data, recipe)}
    grayscale = channels == 1
    transform = DINOTransform(
        global_crop_size=x.shape[1], local_crop_size=recipe["local_size"],
        n_local_views=recipe["local_crops"], hf_prob=0.5 if recipe["flip"] else 0.0,
        cj_strength=0.5, cj_sat=0.0 if grayscale else 0.8,
        cj_hue=0.0 if grayscale else 0.2, random_gray_scale=0.0 if grayscale else 0.2,
        gaussian_blur=(0.0, 0.0, 0.0), solarization_prob=0.0, normalize=None,
    )
    loader = torch.utils.data.DataLoader(Views(x, transform), batch_size=recipe["batch"], shuffle=True,
                                         drop_last=True, num_workers=1, persistent_workers=True)
    criterion = DINOLoss(output_dim=output, warmup_teacher_temp_epochs=0)
    parameters = [*student.parameters(), *student_head.parameters()]
    if recipe["optimizer"] == "sgd":
        optimizer = torch.optim.SGD(parameters, lr=recipe["learning_rate"], momentum=0.9,
                                    weight_decay=recipe["weight_decay"])
    else:
        optimizer = torch.optim.AdamW(parameters, lr=recipe["learning_rate"],
                                      weight_decay=recipe["weight_decay"])
    total, step, losses, entropies = recipe["epochs"] * len(loader), 0, [], []
    start = time.perf_counter()
    for epoch in range(recipe["epochs"]):
        epoch_losses, epoch_entropies = [], []
        for views in loader:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(recipe, step, total, len(loader))
            momentum = cosine_schedule(step, total, recipe["momentum_start"], 1.0)
            update_momentum(student, teacher, momentum)
            update_momentum(student_head, teacher_head, momentum)
            teacher_out = [teacher_head(teacher(view)) for view in views[:2]]
            student_out = [student_head(student(view)) for view in views]
            with torch.no_grad():
                targets = torch.softmax((torch.stack(teacher_out) - criterion.center) / 0.04, dim=-1)
                epoch_entropies.append(float(-(targets * targets.clamp_min(1e-12).log()).sum(-1).mean()))
            loss = criterion(teacher_out, student_out, epoch=epoch)
            optimizer.zero_grad()
            loss.backward()
            for parameter in parameters:
                if parameter.grad is not None:
                    torch.nn.utils.clip_grad_norm_(parameter, 3.0)
            optimizer.step()
            epoch_losses.append(float(loss.detach()))
            step += 1
        losses.append(float(np.mean(epoch_losses)))
        entropies.append(float(np.mean(epoch_entropies)))
        print(f"epoch {epoch}: loss {losses[-1]:.3f} teacher entropy {entropies[-1]:.3f}", flush=True)
    result.update(
        train_s=round(time.perf_counter() - start, 1), log_k=math.log(output), loss=losses,
        teacher_entropy=entropies, knn_teacher=knn(teacher, data, recipe),
        knn_student=knn(student, data, recipe), torch=torch.__version__,
    )
    print(json.dumps(result, indent=1))
    name = "lightly" + ("" if args.data == "mnist" else f"-{args.data}") + (f"-seed{args.seed}" if args.seed else "")
    out = pathlib.Path(args.out or HERE / "results" / "dino-small-budget" / f"{name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
