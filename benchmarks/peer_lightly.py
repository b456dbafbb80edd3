"""The lightly (PyTorch) side of one benchmark configuration, run in the peer venv.

Usage (normally by `run.py`): benchmarks/.peer-venv/bin/python benchmarks/peer_lightly.py CONFIG_JSON OUT_JSON

SimCLR (`method` "simclr", the default): the model and recipe follow lightly's
CIFAR-10 benchmark (docs/source/getting_started/benchmarks/cifar10_benchmark.py):
lightly's CIFAR ResNet-18 (`ResNetGenerator("resnet-18")`, 3x3 stem, no
max-pool), `SimCLRProjectionHead(512, hidden, 128)`, `NTXentLoss(temperature)`,
SGD with momentum 0.9 and weight decay 5e-4, `SimCLRTransform(input_size=32,
cj_strength=0.5, gaussian_blur=0.0)` in a DataLoader, each view forwarded
separately as lightly's `training_step` does.

MAE and DINO (throughput and quality rows) run torchvision's `VisionTransformer`
of the configured size (ViT-tiny by default) the way lightly's examples do; see
`mae_trainer` and `dino_trainer`.
"""

import collections
import copy
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
from lightly.loss import DINOLoss, NTXentLoss  # noqa: E402
from lightly.models import ResNetGenerator, utils  # noqa: E402
from lightly.models.modules import DINOProjectionHead, SimCLRProjectionHead  # noqa: E402
from lightly.models.modules.masked_autoencoder import MAEDecoder  # noqa: E402
from lightly.models.modules.masked_vision_transformer_torchvision import (  # noqa: E402
    MaskedVisionTransformerTorchvision,
)
from lightly.transforms import DINOTransform, MAETransform, SimCLRTransform  # noqa: E402
from lightly.transforms.utils import IMAGENET_NORMALIZE  # noqa: E402
from lightly.utils.scheduler import cosine_schedule  # noqa: E402
from torchvision.models.vision_transformer import VisionTransformer  # noqa: E402

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


def ssl_loader(images, labels, config, seed, transform=None):
    """lightly's usual loader: the transform per image in `num_workers` processes."""
    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(
        ArrayDataset(images, labels, transform or simclr_transform(config)),
        batch_size=config["batch_size"],
        shuffle=True,
        drop_last=True,
        num_workers=config["num_workers"],
        persistent_workers=config["num_workers"] > 0,
        pin_memory=DEVICE.type == "cuda",
        generator=generator,
    )


# What a throughput row trains: `step(views)` runs one training step on a list of
# view batches; `random_views()` makes such a list up front (step-alone mode);
# `transform` makes it per image in the DataLoader (loader+step mode);
# `encoder` is the backbone whose parameters are counted.
Trainer = collections.namedtuple(
    "Trainer", "step random_views transform model encoder lightly_classes"
)


def random_batch(config, size):
    return torch.randn(config["batch_size"], 3, size, size, device=DEVICE)


def autocast(config):
    return torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=config["precision"] == "bfloat16")


def simclr_trainer(config, steps):
    """SimCLR as in lightly's CIFAR-10 benchmark (see the module docstring)."""
    model, criterion, optimizer, schedule = build(config, 1000)
    size = config["image_size"]
    return Trainer(
        step=lambda views: train_step(model, criterion, optimizer, schedule, views, config["precision"]),
        random_views=lambda: [random_batch(config, size) for _ in range(2)],
        transform=simclr_transform(config),
        model=model,
        encoder=model.backbone,
        lightly_classes=["ResNetGenerator", "SimCLRProjectionHead", "NTXentLoss", "SimCLRTransform"],
    )


def torchvision_vit(config):
    """torchvision's ViT of the configured size, features only (no classifier)."""
    vit = VisionTransformer(
        image_size=config["image_size"],
        patch_size=config["patch_size"],
        num_layers=config["depth"],
        num_heads=config["num_heads"],
        hidden_dim=config["hidden_dim"],
        mlp_dim=config["mlp_dim"],
    )
    vit.heads = torch.nn.Identity()
    return vit


def masked_vit(config):
    """lightly's wrapper of a torchvision ViT: masking, and positions for any image size.

    Learned position embeddings, as kerassl's ViT (lightly's default here is a
    frozen sine-cosine table).
    """
    return MaskedVisionTransformerTorchvision(torchvision_vit(config), pos_embed_initialization="learn")


class MAEModel(torch.nn.Module):
    """lightly's MAE example (examples/pytorch/mae.py) on a torchvision ViT.

    The encoder sees the kept patches only (`random_token_mask`, the class token
    always kept); `MAEDecoder` gets them back in place among learned mask tokens
    and predicts the pixels of the hidden patches.
    """

    def __init__(self, config):
        super().__init__()
        self.backbone = masked_vit(config)
        self.sequence_length = self.backbone.sequence_length
        self.patch_size = config["patch_size"]
        self.mask_ratio = config["mask_ratio"]
        self.normalize_targets = config["normalize_targets"]
        width = config["decoder_dim"]
        self.mask_token = torch.nn.Parameter(torch.zeros(1, 1, width))
        self.decoder = MAEDecoder(
            seq_length=self.sequence_length,
            num_layers=config["decoder_depth"],
            num_heads=config["decoder_num_heads"],
            embed_input_dim=config["hidden_dim"],
            hidden_dim=width,
            mlp_dim=4 * width,
            out_dim=self.patch_size**2 * 3,
        )

    def decode(self, encoded, idx_keep, idx_mask):
        """Predicted pixels of the hidden patches."""
        tokens = utils.repeat_token(self.mask_token, (encoded.shape[0], self.sequence_length))
        tokens = utils.set_at_index(tokens, idx_keep, self.decoder.embed(encoded).type_as(tokens))
        return self.decoder.predict(utils.get_at_index(self.decoder.decode(tokens), idx_mask))

    def forward(self, images):
        """(predictions, targets) for the hidden patches."""
        idx_keep, idx_mask = utils.random_token_mask(
            size=(images.shape[0], self.sequence_length), mask_ratio=self.mask_ratio,
            device=images.device,
        )
        predictions = self.decode(self.backbone.encode(images, idx_keep=idx_keep), idx_keep, idx_mask)
        # idx_mask counts the class token; the patches do not.
        targets = utils.get_at_index(utils.patchify(images, self.patch_size), idx_mask - 1)
        if self.normalize_targets:
            targets = utils.normalize_mean_var(targets, dim=-1)
        return predictions, targets


def mae_trainer(config, steps):
    """MAE: mean squared error on the hidden patches, AdamW."""
    torch.manual_seed(config["seed"])
    model = MAEModel(config).to(DEVICE)
    criterion = torch.nn.MSELoss()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config["learning_rate"], weight_decay=config["weight_decay"]
    )

    def step(views):
        images = views[0].to(DEVICE, non_blocking=True)
        with autocast(config):
            loss = criterion(*model(images))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return Trainer(
        step=step,
        random_views=lambda: [random_batch(config, config["image_size"])],
        transform=MAETransform(input_size=config["image_size"]),
        model=model,
        encoder=model.backbone.vit,
        lightly_classes=["MaskedVisionTransformerTorchvision", "MAEDecoder", "random_token_mask",
                         "patchify", "normalize_mean_var", "MAETransform"],
    )


def dino_head(config):
    """lightly's DINO head: MLP, L2-normalized bottleneck, weight-normalized output."""
    return DINOProjectionHead(
        config["hidden_dim"], config["head_hidden_dim"], config["head_bottleneck_dim"],
        config["head_output_dim"], batch_norm=False, norm_last_layer=True,
    )


class DINOModel(torch.nn.Module):
    """lightly's DINO example (examples/pytorch/dino.py): student and EMA teacher.

    Each is a ViT (lightly's wrapper, which interpolates the position embedding
    for the small local crops) and a `DINOProjectionHead`; the teacher is a copy
    without gradients.
    """

    def __init__(self, config):
        super().__init__()
        self.student_backbone = masked_vit(config)
        self.student_head = dino_head(config)
        self.teacher_backbone = copy.deepcopy(self.student_backbone)
        # A weight-normalized layer cannot be deep-copied: a new head, the same weights.
        self.teacher_head = dino_head(config)
        self.teacher_head.load_state_dict(self.student_head.state_dict())
        utils.deactivate_requires_grad(self.teacher_backbone)
        utils.deactivate_requires_grad(self.teacher_head)

    def forward(self, views):
        """(teacher outputs per global crop, student outputs per crop)."""
        # As lightly's ImageNet DINO benchmark: the crops of one size in one batch.
        global_views = torch.cat(views[:2])
        teacher = self.teacher_head(self.teacher_backbone(global_views))
        student = [self.student_head(self.student_backbone(global_views))]
        if len(views) > 2:
            student.append(self.student_head(self.student_backbone(torch.cat(views[2:]))))
        return teacher.chunk(2), torch.cat(student).chunk(len(views))

    def update_teacher(self, momentum):
        utils.update_momentum(self.student_backbone, self.teacher_backbone, m=momentum)
        utils.update_momentum(self.student_head, self.teacher_head, m=momentum)


def dino_views(config):
    """Sizes of DINO's crops: 2 global, then the local ones."""
    return [config["image_size"]] * 2 + [config["local_crop_size"]] * config["num_local_crops"]


def dino_transform(config):
    """lightly's DINOTransform with kerassl's crops and colour steps at CIFAR size.

    kerassl's DINO views: SimCLR colour jitter at strength 0.5 (brightness,
    contrast and saturation 0.4, hue 0.1), grayscale 0.2, no blur below 64 px,
    no solarization.
    """
    return DINOTransform(
        global_crop_size=config["image_size"],
        global_crop_scale=tuple(config["global_crop_scale"]),
        local_crop_size=config["local_crop_size"],
        local_crop_scale=tuple(config["local_crop_scale"]),
        n_local_views=config["num_local_crops"],
        cj_strength=config["jitter_strength"],
        cj_sat=0.8,
        gaussian_blur=(0.0, 0.0, 0.0),
        solarization_prob=0.0,
    )


def dino_trainer(config, steps):
    """DINO: teacher on the global crops, EMA update every step, AdamW, clipped gradients."""
    torch.manual_seed(config["seed"])
    model = DINOModel(config).to(DEVICE)
    criterion = DINOLoss(
        output_dim=config["head_output_dim"],
        warmup_teacher_temp=config["teacher_temperature"],
        teacher_temp=config["teacher_temperature"],
        student_temp=config["student_temperature"],
        center_momentum=config["center_momentum"],
    ).to(DEVICE)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config["learning_rate"], weight_decay=config["weight_decay"])
    done = [0]

    def step(views):
        model.update_teacher(cosine_schedule(done[0], steps, config["momentum_start"], 1.0))
        views = [v.to(DEVICE, non_blocking=True) for v in views]
        with autocast(config):
            loss = criterion(*model(views))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, config["gradient_clip_norm"])
        optimizer.step()
        done[0] += 1
        return float(loss.detach())

    return Trainer(
        step=step,
        random_views=lambda: [random_batch(config, size) for size in dino_views(config)],
        transform=dino_transform(config),
        model=model,
        encoder=model.student_backbone.vit,
        lightly_classes=["MaskedVisionTransformerTorchvision", "DINOProjectionHead", "DINOLoss",
                         "update_momentum", "deactivate_requires_grad", "cosine_schedule",
                         "DINOTransform"],
    )


TRAINERS = {"simclr": simclr_trainer, "mae": mae_trainer, "dino": dino_trainer}


def time_steps_alone(trainer, config, steps):
    """Step times on views made once up front: the model step alone, no augmentation."""
    views = trainer.random_views()
    times, cpu_times = [], []
    for _ in range(steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        trainer.step(views)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    return shared.summarize_step_times(times, config["batch_size"], config["warmup_steps"], cpu_times)


def time_loader_steps(trainer, config, steps):
    """Step times of the user's loop: DataLoader (transform per image) + step."""
    size = config["image_size"]
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (steps * config["batch_size"], size, size, 3), dtype=np.uint8)
    loader = ssl_loader(images, np.zeros(len(images)), config, config["seed"], trainer.transform)
    times, waits, cpu_times = [], [], []
    start, cpu_start = time.perf_counter(), time.process_time()
    for views, _ in loader:
        waited = time.perf_counter()
        trainer.step(views)
        end, cpu_end = time.perf_counter(), time.process_time()
        times.append(end - start)
        cpu_times.append(cpu_end - cpu_start)
        waits.append(waited - start)
        start, cpu_start = end, cpu_end
    # CPU time here is the training process only; the loader's worker
    # processes run the transforms beside it.
    result = shared.summarize_step_times(times, config["batch_size"], config["warmup_steps"], cpu_times)
    result["median_data_wait_s"] = float(np.median(waits[config["warmup_steps"]:]))
    result["num_workers"] = config["num_workers"]
    return result


def throughput(config):
    """Two rows: the user's loop (DataLoader + transform + step) and the step alone."""
    steps = config["warmup_steps"] + config["timed_steps"]
    trainer = TRAINERS[config.get("method", "simclr")](config, steps)
    trainer.model.train()
    timing = time_steps_alone if config["mode"] == "step" else time_loader_steps
    result = timing(trainer, config, steps)
    result["parameters"] = sum(p.numel() for p in trainer.encoder.parameters())
    # Parameters the optimizer updated (a gradient after the last step).
    result["trainable_parameters"] = sum(
        p.numel() for p in trainer.model.parameters() if p.grad is not None
    )
    result["lightly_classes"] = trainer.lightly_classes
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
    if config.get("method", "simclr") != "simclr":
        return vit_quality(config)
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
    run = train_epochs(
        loader, config,
        lambda views: train_step(model, criterion, optimizer, schedule, views, config["precision"]),
    )
    trained = shared.knn_accuracy(
        features(model.backbone, x_train), y_train, features(model.backbone, x_test), y_test, **knn
    )
    return {
        "knn_accuracy": trained,
        "knn_accuracy_random_init": random_init,
        "knn_s": round(knn_seconds, 1),
        **training_fields(run, total_steps, config),
        "parameters": sum(p.numel() for p in model.backbone.parameters()),
        "versions": versions(),
    }


def train_epochs(loader, config, step):
    """`config["epochs"]` passes over `loader`, `step(views)` per batch.

    Returns:
        dict: per-epoch mean losses (`history`), per-step wall times (`times`,
        loading included) and the total `train_seconds`.
    """
    history, times = [], []
    started = time.perf_counter()
    for _ in range(config["epochs"]):
        losses = []
        start = time.perf_counter()
        for views, _ in loader:
            losses.append(step(views))
            end = time.perf_counter()
            times.append(end - start)
            start = end
        history.append({"loss": float(np.mean(losses))})
    return {"history": history, "times": times, "train_seconds": time.perf_counter() - started}


def training_fields(run, total_steps, config):
    """The result fields a quality row reports about its training run."""
    times = run["times"]
    return {
        "train_s": round(run["train_seconds"], 1),
        "steps": total_steps,
        "train_images_per_s": total_steps * config["batch_size"] / max(run["train_seconds"], 1e-9),
        "median_step_s": float(np.median(times[1:] or times)),
        "history": run["history"],
    }


def vit_quality(config):
    """kNN accuracy of the ViT before and after MAE or DINO at a fixed budget.

    The model, transform and train step are the throughput rows' (`mae_trainer`,
    `dino_trainer`, their DataLoader mode); the kNN runs on the class token of
    lightly's ViT wrapper: MAE's backbone, DINO's teacher (the student's too, as
    `knn_accuracy_student`). MAETransform and DINOTransform normalize with the
    ImageNet mean and std (their default), so `features` does as well.
    """
    method = config["method"]
    x_train, y_train, x_test, y_test = shared.quality_data(config)
    steps_per_epoch = len(x_train) // config["batch_size"]
    total_steps = steps_per_epoch * config["epochs"]
    # DINO's teacher momentum: a cosine from momentum_start to 1 over the whole run.
    trainer = TRAINERS[method](config, max(total_steps, 1))
    model = trainer.model
    backbone = model.teacher_backbone if method == "dino" else model.backbone
    knn = dict(k=config["knn_k"], temperature=config["knn_temperature"])

    def knn_of(network):
        return shared.knn_accuracy(
            features(network, x_train), y_train, features(network, x_test), y_test, **knn
        )

    started = time.perf_counter()
    random_init = knn_of(backbone)
    knn_seconds = time.perf_counter() - started
    loader = ssl_loader(x_train, y_train, config, config["seed"], trainer.transform)
    model.train()
    run = train_epochs(loader, config, trainer.step)
    result = {
        "knn_accuracy": knn_of(backbone),
        "knn_accuracy_random_init": random_init,
        "knn_s": round(knn_seconds, 1),
        **training_fields(run, total_steps, config),
        "parameters": sum(p.numel() for p in trainer.encoder.parameters()),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "feature_normalization": "imagenet",
        "lightly_classes": trainer.lightly_classes,
        "versions": versions(),
    }
    if method == "dino":
        result["knn_accuracy_student"] = knn_of(model.student_backbone)
    return result


def run(config):
    if config["task"] == "throughput":
        return throughput(config)
    if config["task"] == "quality":
        return quality(config)
    raise ValueError(f"unknown task {config['task']!r}")


if __name__ == "__main__":
    shared.worker_main(run)
