"""DINO at a CPU test budget, lightly side (run with the peer venv's python).

The twin of `dino_small_budget.py` (read its docstring for the settings): lightly's
DINO example pattern (`DINOProjectionHead`, `DINOLoss`, `update_momentum` with
`cosine_schedule`, `DINOTransform`) with the same data, a PyTorch copy of
kerassl's `small_convnet(width=16, feature_dim=None)`, head 512-64-1024, 2 global
crops of 28 px and 2 local crops of 12 px with kerassl's view settings for
grayscale images (crop, flip, brightness and contrast 0.4 with p=0.8; no blur,
no solarization, no normalization), AdamW(1e-3, wd 0.04), batch 128, 8 epochs,
and the same kNN protocol (`shared.knn_accuracy`, k=20, T=0.1).

Usage: benchmarks/.peer-venv/bin/python benchmarks/peer_dino_small_budget.py [--epochs 8]
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
MNIST = HERE.parents[1] / "shared" / "data" / "mnist.npz"
TRAIN, BANK, QUERIES, BATCH, HEAD = 2000, 1000, 1000, 128, (512, 64, 1024)


def small_convnet(width=16):
    """kerassl.backbones.small_convnet(width, feature_dim=None) in PyTorch (1 input channel)."""
    layers, channels = [], 1
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
        views = self.transform(Image.fromarray(self.images[index]).convert("RGB"))
        return [view[:1] for view in views]  # grayscale: one of three equal channels


@torch.no_grad()
def features(network, images):
    network.eval()
    out = network(torch.from_numpy(images).float().div(255)[:, None]).numpy()
    network.train()
    return out


def knn(network, x, y, x_test, y_test):
    return shared.knn_accuracy(features(network, x[:BANK]), y[:BANK], features(network, x_test), y_test,
                               k=20, temperature=0.1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--out", default=str(HERE / "results" / "dino-small-budget" / "lightly.json"))
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    data = np.load(MNIST)
    x, y = data["x_train"][:TRAIN], data["y_train"][:TRAIN]
    x_test, y_test = data["x_test"][:QUERIES], data["y_test"][:QUERIES]
    student, teacher = small_convnet(), small_convnet()
    teacher.load_state_dict(student.state_dict())
    hidden, bottleneck, output = HEAD
    student_head = DINOProjectionHead(64, hidden, bottleneck, output, freeze_last_layer=-1)
    teacher_head = DINOProjectionHead(64, hidden, bottleneck, output)
    teacher_head.load_state_dict(student_head.state_dict())  # weight-normed: no deepcopy
    deactivate_requires_grad(teacher)
    deactivate_requires_grad(teacher_head)
    result = {"epochs": args.epochs, "knn_random_init": knn(student, x, y, x_test, y_test)}
    transform = DINOTransform(
        global_crop_size=28, local_crop_size=12, n_local_views=2, cj_strength=0.5, cj_sat=0.0,
        cj_hue=0.0, random_gray_scale=0.0, gaussian_blur=(0.0, 0.0, 0.0), solarization_prob=0.0,
        normalize=None,
    )
    loader = torch.utils.data.DataLoader(Views(x, transform), batch_size=BATCH, shuffle=True,
                                         drop_last=True, num_workers=1, persistent_workers=True)
    criterion = DINOLoss(output_dim=output, warmup_teacher_temp_epochs=0)
    optimizer = torch.optim.AdamW([*student.parameters(), *student_head.parameters()], lr=1e-3,
                                  weight_decay=0.04)
    total, step, losses, entropies = args.epochs * len(loader), 0, [], []
    start = time.perf_counter()
    for epoch in range(args.epochs):
        epoch_losses, epoch_entropies = [], []
        for views in loader:
            momentum = cosine_schedule(step, total, 0.996, 1.0)
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
            optimizer.step()
            epoch_losses.append(float(loss.detach()))
            step += 1
        losses.append(float(np.mean(epoch_losses)))
        entropies.append(float(np.mean(epoch_entropies)))
        print(f"epoch {epoch}: loss {losses[-1]:.3f} teacher entropy {entropies[-1]:.3f}", flush=True)
    result.update(
        train_s=round(time.perf_counter() - start, 1), log_k=math.log(output), loss=losses,
        teacher_entropy=entropies, knn_teacher=knn(teacher, x, y, x_test, y_test),
        knn_student=knn(student, x, y, x_test, y_test), torch=torch.__version__,
    )
    print(json.dumps(result, indent=1))
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
