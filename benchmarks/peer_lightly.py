"""The lightly (PyTorch) side of one benchmark configuration, run in the peer venv.

Usage (normally by `run.py`): benchmarks/.peer-venv/bin/python benchmarks/peer_lightly.py CONFIG_JSON OUT_JSON

The model and recipe follow lightly's CIFAR-10 benchmark
(docs/source/getting_started/benchmarks/cifar10_benchmark.py): lightly's
CIFAR ResNet-18 (`ResNetGenerator("resnet-18")`, 3x3 stem, no max-pool),
`SimCLRProjectionHead(512, hidden, 128)`, `NTXentLoss(temperature)`, SGD with
momentum 0.9 and weight decay 5e-4, `SimCLRTransform(input_size=32,
cj_strength=0.5, gaussian_blur=0.0)` in a DataLoader, each view forwarded
separately as lightly's `training_step` does.
"""

import math
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image  # noqa: E402

import lightly  # noqa: E402
from lightly.loss import NTXentLoss  # noqa: E402
from lightly.models import ResNetGenerator  # noqa: E402
from lightly.models.modules import SimCLRProjectionHead  # noqa: E402
from lightly.transforms import SimCLRTransform  # noqa: E402
from lightly.transforms.utils import IMAGENET_NORMALIZE  # noqa: E402

import shared  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def versions():
    return {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "lightly": lightly.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": str(DEVICE),
    }


class SimCLRModel(torch.nn.Module):
    def __init__(self, hidden_dim, output_dim):
        super().__init__()
        resnet = ResNetGenerator("resnet-18")
        self.backbone = torch.nn.Sequential(
            *list(resnet.children())[:-1], torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()
        )
        self.projection_head = SimCLRProjectionHead(512, hidden_dim, output_dim)

    def forward(self, x):
        return self.projection_head(self.backbone(x))


class ArrayDataset(torch.utils.data.Dataset):
    """uint8 (N, H, W, 3) arrays served as PIL images, as a folder dataset would."""

    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def build(config, total_steps):
    torch.manual_seed(config["seed"])
    model = SimCLRModel(config["projection_hidden_dim"], config["projection_dim"]).to(DEVICE)
    criterion = NTXentLoss(temperature=config["temperature"])
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config["learning_rate"] * config["batch_size"] / 256,
        momentum=config["momentum"],
        weight_decay=config["weight_decay"],
    )
    # Cosine decay per step, as on the kerassl side (lightly's script steps an
    # epoch-wise CosineAnnealingLR; per step is the same curve, smoothed).
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
    )
    return model, criterion, optimizer, schedule


def train_step(model, criterion, optimizer, schedule, views, precision):
    x0, x1 = (v.to(DEVICE, non_blocking=True) for v in views)
    with torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
        loss = criterion(model(x0), model(x1))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    schedule.step()
    return float(loss.detach())


def simclr_transform(config):
    return SimCLRTransform(
        input_size=config["image_size"],
        cj_strength=config["jitter_strength"],
        gaussian_blur=0.0,
    )


def ssl_loader(images, labels, config, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(
        ArrayDataset(images, labels, simclr_transform(config)),
        batch_size=config["batch_size"],
        shuffle=True,
        drop_last=True,
        num_workers=config["num_workers"],
        persistent_workers=config["num_workers"] > 0,
        pin_memory=DEVICE.type == "cuda",
        generator=generator,
    )


def throughput(config):
    """Two rows: the user's loop (DataLoader + transform + step) and the step alone."""
    steps = config["warmup_steps"] + config["timed_steps"]
    model, criterion, optimizer, schedule = build(config, 1000)
    model.train()
    rng = np.random.default_rng(0)
    size = config["image_size"]
    if config["mode"] == "step":
        # Views made once up front: the model step alone, no augmentation.
        views = [torch.randn(config["batch_size"], 3, size, size, device=DEVICE) for _ in range(2)]
        times, cpu_times = [], []
        for _ in range(steps):
            start, cpu_start = time.perf_counter(), time.process_time()
            train_step(model, criterion, optimizer, schedule, views, config["precision"])
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
        result = shared.summarize_step_times(
            times, config["batch_size"], config["warmup_steps"], cpu_times
        )
    else:
        images = rng.integers(0, 256, (steps * config["batch_size"], size, size, 3), dtype=np.uint8)
        loader = ssl_loader(images, np.zeros(len(images)), config, config["seed"])
        times, waits, cpu_times = [], [], []
        start, cpu_start = time.perf_counter(), time.process_time()
        for views, _ in loader:
            waited = time.perf_counter()
            train_step(model, criterion, optimizer, schedule, views, config["precision"])
            end, cpu_end = time.perf_counter(), time.process_time()
            times.append(end - start)
            cpu_times.append(cpu_end - cpu_start)
            waits.append(waited - start)
            start, cpu_start = end, cpu_end
        # CPU time here is the training process only; the loader's worker
        # processes run the transforms beside it.
        result = shared.summarize_step_times(
            times, config["batch_size"], config["warmup_steps"], cpu_times
        )
        result["median_data_wait_s"] = float(np.median(waits[config["warmup_steps"]:]))
        result["num_workers"] = config["num_workers"]
    result["parameters"] = sum(p.numel() for p in model.backbone.parameters())
    result["versions"] = versions()
    return result


@torch.no_grad()
def features(backbone, images, batch_size=512):
    mean = torch.tensor(IMAGENET_NORMALIZE["mean"], device=DEVICE).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_NORMALIZE["std"], device=DEVICE).view(1, 3, 1, 1)
    backbone.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(images[start : start + batch_size]).to(DEVICE)
        x = x.permute(0, 3, 1, 2).float() / 255
        out.append(backbone((x - mean) / std).float().cpu().numpy())
    backbone.train()
    return np.concatenate(out).astype("float32")


def quality(config):
    """kNN accuracy of the backbone before and after SimCLR at a fixed budget."""
    x_train, y_train, x_test, y_test = shared.quality_data(config)
    steps_per_epoch = len(x_train) // config["batch_size"]
    total_steps = steps_per_epoch * config["epochs"]
    model, criterion, optimizer, schedule = build(config, total_steps)
    knn = dict(k=config["knn_k"], temperature=config["knn_temperature"])
    started = time.perf_counter()
    random_init = shared.knn_accuracy(
        features(model.backbone, x_train), y_train, features(model.backbone, x_test), y_test, **knn
    )
    knn_seconds = time.perf_counter() - started
    loader = ssl_loader(x_train, y_train, config, config["seed"])
    model.train()
    history, times = [], []
    started = time.perf_counter()
    for _ in range(config["epochs"]):
        losses = []
        start = time.perf_counter()
        for views, _ in loader:
            losses.append(train_step(model, criterion, optimizer, schedule, views, config["precision"]))
            end = time.perf_counter()
            times.append(end - start)
            start = end
        history.append({"loss": float(np.mean(losses))})
    train_seconds = time.perf_counter() - started
    trained = shared.knn_accuracy(
        features(model.backbone, x_train), y_train, features(model.backbone, x_test), y_test, **knn
    )
    return {
        "knn_accuracy": trained,
        "knn_accuracy_random_init": random_init,
        "train_s": round(train_seconds, 1),
        "knn_s": round(knn_seconds, 1),
        "steps": total_steps,
        "train_images_per_s": total_steps * config["batch_size"] / max(train_seconds, 1e-9),
        "median_step_s": float(np.median(times[1:] or times)),
        "history": history,
        "parameters": sum(p.numel() for p in model.backbone.parameters()),
        "versions": versions(),
    }


def run(config):
    if config["task"] == "throughput":
        return throughput(config)
    if config["task"] == "quality":
        return quality(config)
    raise ValueError(f"unknown task {config['task']!r}")


if __name__ == "__main__":
    shared.worker_main(run)
