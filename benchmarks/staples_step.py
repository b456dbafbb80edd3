"""The eight staples (BYOL, MoCo v2, MoCo v3, SimSiam, Barlow Twins, VICReg, SwAV,
NNCLR), kerassl against lightly: step throughput, kNN at a fixed budget, and the
paired A B A B driver that turns both into ratios.

Same backbone on both sides: ResNet-18 with the CIFAR stem (kerassl's
`resnet18(stem="cifar")`, lightly's `ResNetGenerator("resnet-18")`, 11.17 M
parameters each), same batch, 32x32 RGB, same views per method, same heads.
Two recipes (`RECIPES`):
- "paper": each paper's heads and settings, i.e. kerassl's constructor defaults
  (BYOL 4096-256 with predictor 4096-256; MoCo v2 2048-128, queue 65,536, T 0.2;
  MoCo v3 4096-256 + predictor 4096-256, T 1.0; SimSiam 3-layer 2048 + predictor
  512; Barlow Twins and VICReg 8192-8192-8192; SwAV 2048-128, 3,000 prototypes,
  2 global + 6 local crops of 14 px; NNCLR 2048-2048-256 + predictor 4096-256,
  queue 98,304, T 0.1); lightly's heads are set to the same sizes. The
  throughput rows use it.
- "cifar10": the rows of lightly's CIFAR-10 benchmark
  (docs/source/getting_started/benchmarks/cifar10_benchmark.py, lightly commit
  e93a49d; smaller heads, SimCLR views without blur for every two-view method,
  SGD 0.06 x batch/128 with cosine decay and weight decay 5e-4, SwAV with Adam
  1e-3 x batch/128 and 2 crops of 32 px, memory banks of 8,192 at batch 512,
  MoCo v2's loss symmetric on both sides: `MoCo(symmetric=True)`, where the
  paper recipe is one-sided).
  MoCo v3 and VICReg have no row there; they get kerassl's heads (MoCo v3) or
  Barlow Twins' CIFAR head (VICReg), MoCo v3 with the same SGD, VICReg with SwAV's
  Adam (at SGD 0.06 its loss went to NaN within 5 steps on both sides). The kNN rows and
  `cifar10_table.py` (the GPU suite) use it.

Throughput (`--task step`): kerassl runs `model.fit` on uint8 images with the
method's default views made inside the step (so augmentation is in its number);
lightly runs the step alone on random views made up front, as lightly's examples
write each step (each view forwarded on its own): an upper bound for lightly.
SGD with momentum 0.9 on both sides.

kNN (`--task knn`): pretrain on a CIFAR-10 subset at an equal budget, then the
weighted kNN of `shared.knn_accuracy` (k=200, T=0.1; bank: the training subset;
queries: the first test images) on the frozen backbone, trained and at random
init (the same network before its first step). lightly feeds a `DataLoader`
with its transform; kerassl fits on the uint8 arrays with its views inside the
step. Both read the same arrays (`shared.quality_data`).

Usage:
    .venv/bin/python benchmarks/staples_step.py --side kerassl --method byol
    benchmarks/.peer-venv/bin/python benchmarks/staples_step.py --side lightly --method byol
    .venv/bin/python benchmarks/staples_step.py --paired --methods all --pairs 2 --batch 128 \\
        --out benchmarks/results/staples-throughput        # A B A B per method, medians, ratios
    .venv/bin/python benchmarks/staples_step.py --paired --task knn --methods byol --recipe cifar10 \\
        --train-size 10000 --test-size 5000 --epochs 1 --batch 128 --pairs 1 --out ...
Prints one JSON line per run (`--side`), or writes <out>/<task>.json and .md (`--paired`).
"""

import argparse
import copy
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # this checkout's kerassl, not another one installed in the venv
METHODS = ("byol", "moco_v2", "moco_v3", "simsiam", "barlow_twins", "vicreg", "swav", "nnclr")
TITLES = dict(byol="BYOL", moco_v2="MoCo v2", moco_v3="MoCo v3", simsiam="SimSiam",
              barlow_twins="Barlow Twins", vicreg="VICReg", swav="SwAV", nnclr="NNCLR")

# Per method: the sizes both sides build (kerassl's constructor names), plus
# `momentum` (EMA teacher; "cosine" from the start value to 1 on kerassl's side),
# `layers` (projector depth) and, for the cifar10 recipe, the optimizer.
RECIPES = {
    "paper": {
        "byol": dict(projection_hidden_dim=4096, projection_dim=256, prediction_hidden_dim=4096,
                     momentum_start=0.996, momentum_end=1.0),
        "moco_v2": dict(projection_hidden_dim=2048, projection_dim=128, temperature=0.2, queue_size=65536,
                        momentum_start=0.999, momentum_end=0.999),
        "moco_v3": dict(projection_hidden_dim=4096, projection_dim=256, prediction_hidden_dim=4096,
                        temperature=1.0, momentum_start=0.99, momentum_end=1.0),
        "simsiam": dict(projection_hidden_dim=2048, projection_dim=2048, projection_layers=3,
                        prediction_hidden_dim=512),
        "barlow_twins": dict(projection_hidden_dim=8192, projection_dim=8192, layers=3),
        "vicreg": dict(projection_hidden_dim=8192, projection_dim=8192, layers=3),
        "swav": dict(projection_hidden_dim=2048, projection_dim=128, num_prototypes=3000,
                     num_local_crops=6, local_crop_size=14, freeze_prototypes_steps=313),
        "nnclr": dict(projection_hidden_dim=2048, projection_dim=256, prediction_hidden_dim=4096,
                      temperature=0.1, queue_size=98304, layers=3),
    },
    "cifar10": {
        "byol": dict(projection_hidden_dim=1024, projection_dim=256, prediction_hidden_dim=1024,
                     momentum_start=0.99, momentum_end=0.99),
        "moco_v2": dict(projection_hidden_dim=512, projection_dim=128, temperature=0.1, queue_size=8192,
                        momentum_start=0.99, momentum_end=0.99),
        "moco_v3": dict(projection_hidden_dim=4096, projection_dim=256, prediction_hidden_dim=4096,
                        temperature=1.0, momentum_start=0.99, momentum_end=1.0),
        "simsiam": dict(projection_hidden_dim=2048, projection_dim=2048, projection_layers=2,
                        prediction_hidden_dim=512, lr_scaling=False),
        "barlow_twins": dict(projection_hidden_dim=2048, projection_dim=2048, layers=2),
        # SGD at 0.06 took VICReg's loss to NaN within 5 steps on both sides (2026-12-07): Adam as SwAV
        "vicreg": dict(projection_hidden_dim=2048, projection_dim=2048, layers=2, optimizer="adam"),
        "swav": dict(projection_hidden_dim=512, projection_dim=128, num_prototypes=512,
                     num_local_crops=0, freeze_prototypes_steps=0, optimizer="adam"),
        "nnclr": dict(projection_hidden_dim=2048, projection_dim=256, prediction_hidden_dim=4096,
                      temperature=0.5, queue_size=8192, layers=2),
    },
}
# The smoke check of cifar10_table.py: the cifar10 recipe with tiny heads and queues.
_TINY = dict(projection_hidden_dim=32, projection_dim=16, prediction_hidden_dim=32, queue_size=64,
             num_prototypes=16)
RECIPES["smoke"] = {m: {k: (_TINY[k] if k in _TINY else v) for k, v in r.items()}
                    for m, r in RECIPES["cifar10"].items()}
# lightly's CIFAR-10 table, batch 512, 200 epochs, kNN k=200 (the commit above).
LIGHTLY_TABLE_512_200 = dict(byol=0.872, moco_v2=0.850, simsiam=0.814, barlow_twins=0.827,
                             swav=0.833, nnclr=0.836)


def recipe_of(method, recipe):
    return dict(RECIPES[recipe][method])


# -- kerassl ------------------------------------------------------------------------


def torch_default_conv_init(backbone, seed=0):
    """Redraws every Conv2D kernel of `backbone` as PyTorch initializes `nn.Conv2d`
    (kaiming_uniform with a = sqrt(5): U(-1/sqrt(fan_in), 1/sqrt(fan_in))), as
    lightly's `ResNetGenerator` leaves them. kerassl's ResNet draws torchvision's
    kaiming_normal with fan-out, sqrt(6) = 2.45x the standard deviation for a 3x3
    conv with as many inputs as outputs. Each conv feeds a BatchNormalization, so
    the network's function does not depend on a kernel's scale, but SGD's relative
    step does (lr / |w|^2): at the same rate, the smaller torch draws move about 6x
    faster."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel = layer.kernel
            fan_in = int(np.prod(kernel.shape[:-1]))
            bound = 1.0 / np.sqrt(fan_in)
            kernel.assign(rng.uniform(-bound, bound, kernel.shape).astype("float32"))


# lightly's transforms end with this normalization (lightly.transforms.utils.IMAGENET_NORMALIZE).
IMAGENET_NORMALIZE = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def kerassl_model(method, recipe, image_size=32, encoder="resnet18", seed=0, schedule_steps=None,
                  init="kerassl", input_norm="none"):
    """kerassl's method for `RECIPES[recipe][method]` (views: the method's defaults for
    "paper", SimCLR views without blur for "cifar10", as lightly's benchmark).
    `init="torch"`: the backbone's convs drawn as lightly's (`torch_default_conv_init`);
    `input_norm="imagenet"`: the ResNet standardizes its [0, 1] inputs with ImageNet's
    mean and std inside the model, as lightly's transforms do (kerassl's default: none)."""
    import keras

    import kerassl
    from kerassl import augment, heads

    keras.utils.set_random_seed(seed)
    shape = (image_size, image_size, 3)
    if encoder == "resnet18":
        backbone = kerassl.backbones.resnet18(
            input_shape=shape, stem="cifar", normalization=IMAGENET_NORMALIZE if input_norm == "imagenet" else None)
    else:  # the smoke mode's tiny encoder
        backbone = kerassl.backbones.small_convnet(input_shape=shape, width=8, feature_dim=32)
    if init == "torch":
        torch_default_conv_init(backbone, seed)
    r = recipe_of(method, recipe)
    for key in ("lr_scaling", "optimizer"):
        r.pop(key, None)
    layers = r.pop("layers", None)
    extra = dict(seed=seed)
    if schedule_steps and method in ("byol", "moco_v2", "moco_v3"):
        extra["momentum_schedule_steps"] = max(int(schedule_steps), 1)
    if recipe != "paper":
        scale = (0.14, 1.0) if method == "swav" else (0.08, 1.0)
        extra["augmenter"] = augment.simclr_augmenter(image_size, scale=scale, jitter_strength=0.5,
                                                      blur_probability=0.0, seed=seed)
    if method in ("barlow_twins", "vicreg") and layers != 3:
        extra["projection_head"] = heads.barlow_twins_projection_head(
            r["projection_hidden_dim"], r["projection_dim"], num_layers=layers)
    if method == "nnclr" and layers != 3:
        extra["projection_head"] = heads.MLPHead([r["projection_hidden_dim"], r["projection_dim"]],
                                                 last_batch_norm=True, name="projection_head")
    if method == "moco_v2" and recipe != "paper":
        extra["symmetric"] = True  # as lightly_trainer: its CIFAR-10 benchmark's loss is symmetric
    if method.startswith("moco"):
        return kerassl.MoCo(backbone, version=method[-2:], **r, **extra)
    classes = dict(byol=kerassl.BYOL, simsiam=kerassl.SimSiam, barlow_twins=kerassl.BarlowTwins,
                   vicreg=kerassl.VICReg, swav=kerassl.SwAV, nnclr=kerassl.NNCLR)
    return classes[method](backbone, **r, **extra)


def throughput_rate(method):
    """SGD's rate in the throughput runs (the step's work does not depend on it). VICReg's
    loss went NaN within 4 steps at 0.06 on the random images of those runs."""
    return 1e-3 if method == "vicreg" else 0.06


# How many times lightly's loss kerassl's loss is, where they differ: BYOL's loss as in
# its paper, (2 - 2 cos) for each direction added, has 4 times the gradient of the mean
# negative cosine that lightly's CIFAR-10 benchmark uses. kerassl's side of the cifar10
# recipe divides its learning rate by this (and multiplies its decoupled weight decay by
# it, since Keras applies decay times the rate), so both sides take the same steps.
LOSS_SCALE_VS_LIGHTLY = {"byol": 4.0}


def keras_optimizer(method, recipe, batch, total_steps):
    """The recipe's optimizer. Keras' weight decay is decoupled: 5e-4 coupled with
    momentum 0.9 is about 5e-3 decoupled (see README, "Where the two sides differ").
    The cifar10 recipe divides the rate by `LOSS_SCALE_VS_LIGHTLY` (BYOL: 4)."""
    import keras

    r = RECIPES[recipe][method]
    if recipe == "paper":
        return keras.optimizers.SGD(throughput_rate(method), momentum=0.9)
    scale = batch / 128
    if r.get("optimizer") == "adam":
        rate = keras.optimizers.schedules.CosineDecay(1e-3 * scale, max(total_steps, 1))
        return keras.optimizers.Adam(rate, weight_decay=1e-6)
    loss_scale = LOSS_SCALE_VS_LIGHTLY.get(method, 1.0)
    base = 0.06 * (scale if r.get("lr_scaling", True) else 1.0) / loss_scale
    rate = keras.optimizers.schedules.CosineDecay(base, max(total_steps, 1))
    return keras.optimizers.SGD(rate, momentum=0.9, weight_decay=5e-3 * loss_scale)


def kerassl_step(method, recipe, batch, warmup, steps, encoder="resnet18", image_size=32):
    import keras
    from step_timer import StepTimer

    model = kerassl_model(method, recipe, image_size, encoder)
    model.compile(optimizer=keras_optimizer(method, "paper", batch, 1), jit_compile=False)
    images = np.random.default_rng(0).integers(
        0, 256, ((warmup + steps) * batch, image_size, image_size, 3), dtype=np.uint8)
    timer = StepTimer()
    model.fit(images, batch_size=batch, epochs=1, shuffle=False, verbose=0, callbacks=[timer])
    return dict(side=f"kerassl {keras.config.backend()} jit off",
                **summarize(timer.times, batch, warmup, timer.cpu_times))


def kerassl_knn(method, recipe, config, encoder="resnet18", init="kerassl", input_norm="none"):
    import keras
    import shared
    from step_timer import StepTimer

    x_train, y_train, x_test, y_test = shared.quality_data(config)
    batch, epochs = config["batch_size"], config["epochs"]
    steps_per_epoch = len(x_train) // batch
    total = steps_per_epoch * epochs
    # One momentum cosine over the whole run (fit is called once per epoch).
    model = kerassl_model(method, recipe, x_train.shape[1], encoder, schedule_steps=total, init=init,
                          input_norm=input_norm)
    model.build((None,) + x_train.shape[1:])

    def knn_of(net):
        def feats(images):
            return np.asarray(net.predict(images.astype("float32") / 255.0, batch_size=512, verbose=0),
                              dtype="float32")
        return shared.knn_accuracy(feats(x_train), y_train, feats(x_test), y_test,
                                   k=config["knn_k"], temperature=0.1)

    random_init = knn_of(model.encoder)
    # "auto": XLA where it pays (a GPU, JAX), TensorFlow's own kernels on a CPU.
    model.compile(optimizer=keras_optimizer(method, recipe, batch, total), jit_compile="auto")
    timer = StepTimer()
    rng = np.random.default_rng(config["seed"])
    history = []
    started = time.perf_counter()
    for epoch in range(epochs):
        order = rng.permutation(len(x_train))[: steps_per_epoch * batch]
        logs = model.fit(x_train[order], batch_size=batch, epochs=epoch + 1, initial_epoch=epoch,
                         shuffle=False, verbose=0, callbacks=[timer])
        history.append({k: round(float(v[-1]), 4) for k, v in logs.history.items()})
    train_s = time.perf_counter() - started
    label = (", torch's conv init" if init == "torch" else "") + (
        ", ImageNet-standardized inputs" if input_norm == "imagenet" else "")
    return dict(side=f"kerassl {keras.config.backend()} jit {'on' if model.jit_compile else 'off'}{label}",
                knn_accuracy=knn_of(model.encoder),
                knn_accuracy_random_init=random_init, steps=total, train_s=round(train_s, 1),
                train_images_per_s=round(total * batch / train_s, 2), history=history)


# -- lightly ------------------------------------------------------------------------


def lightly_trainer(method, recipe, batch, total_steps, device):
    """(modules, loss_fn(views, step), backbone, params) built from lightly's parts as
    lightly's examples and CIFAR-10 benchmark write them."""
    import torch
    from lightly import loss as L
    from lightly.models import ResNetGenerator, utils
    from lightly.models.modules import NNMemoryBankModule, heads as H
    from lightly.utils.scheduler import cosine_schedule

    nn = torch.nn
    r = recipe_of(method, recipe)
    resnet = ResNetGenerator("resnet-18")
    backbone = nn.Sequential(*list(resnet.children())[:-1], nn.AdaptiveAvgPool2d(1), nn.Flatten())
    hid, out = r["projection_hidden_dim"], r["projection_dim"]

    def frozen_copy(*modules):
        copies = [copy.deepcopy(m) for m in modules]
        for m in copies:
            utils.deactivate_requires_grad(m)
        return copies

    def momentum(step):
        if r["momentum_start"] == r["momentum_end"]:
            return r["momentum_start"]
        return cosine_schedule(step, max(total_steps, 1), r["momentum_start"], r["momentum_end"])

    def mlp(dims, last_bn, last_affine=True):
        blocks = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            last = i == len(dims) - 2
            bn = (nn.BatchNorm1d(b, affine=last_affine) if last_bn else None) if last else nn.BatchNorm1d(b)
            blocks.append((a, b, bn, None if last else nn.ReLU()))
        return H.ProjectionHead(blocks)

    modules = [backbone]
    if method in ("byol", "moco_v3"):
        if method == "byol":
            projector = H.BYOLProjectionHead(512, hid, out)
            predictor = H.BYOLPredictionHead(out, r["prediction_hidden_dim"], out)
        else:  # lightly has no MoCo v3 head: moco-v3's _build_mlp from lightly's blocks
            projector = mlp([512, hid, out], last_bn=True, last_affine=False)
            predictor = mlp([out, r["prediction_hidden_dim"], out], last_bn=False)
        backbone_m, projector_m = frozen_copy(backbone, projector)
        modules += [projector, predictor, backbone_m, projector_m]
        cosine = L.NegativeCosineSimilarity()
        temperature = r.get("temperature", 1.0)

        def moco_v3(q, k):
            q, k = nn.functional.normalize(q, dim=1), nn.functional.normalize(k, dim=1)
            logits = q @ k.T / temperature
            return nn.functional.cross_entropy(logits, torch.arange(len(q), device=q.device)) * 2 * temperature

        def loss_fn(views, step):
            x0, x1 = views
            m = momentum(step)
            utils.update_momentum(backbone, backbone_m, m)
            utils.update_momentum(projector, projector_m, m)
            p0, p1 = predictor(projector(backbone(x0))), predictor(projector(backbone(x1)))
            with torch.no_grad():
                z0, z1 = projector_m(backbone_m(x0)), projector_m(backbone_m(x1))
            if method == "byol":
                return 0.5 * (cosine(p0, z1) + cosine(p1, z0))
            return moco_v3(p0, z1) + moco_v3(p1, z0)
        trained = [backbone, projector, predictor]
    elif method == "moco_v2":
        projector = H.MoCoProjectionHead(512, hid, out)
        backbone_m, projector_m = frozen_copy(backbone, projector)
        modules += [projector, backbone_m, projector_m]
        criterion = L.NTXentLoss(temperature=r["temperature"], memory_bank_size=(r["queue_size"], out))
        symmetric = recipe != "paper"  # lightly's CIFAR-10 benchmark; the paper is one-sided

        def loss_fn(views, step):
            x0, x1 = views
            utils.update_momentum(backbone, backbone_m, momentum(step))
            utils.update_momentum(projector, projector_m, momentum(step))
            q0 = projector(backbone(x0))
            with torch.no_grad():
                k1 = projector_m(backbone_m(x1))
            if not symmetric:
                return criterion(q0, k1)
            q1 = projector(backbone(x1))
            with torch.no_grad():
                k0 = projector_m(backbone_m(x0))
            return 0.5 * (criterion(q0, k1) + criterion(q1, k0))
        trained = [backbone, projector]
    elif method in ("simsiam", "nnclr"):
        layers = r.get("projection_layers", r.get("layers", 3))
        if method == "simsiam":
            projector = (H.SimSiamProjectionHead(512, hid, out) if layers == 3
                         else mlp([512, hid, out], last_bn=True))
            predictor = H.SimSiamPredictionHead(out, r["prediction_hidden_dim"], out)
            criterion = L.NegativeCosineSimilarity()
        else:
            projector = (H.NNCLRProjectionHead(512, hid, out) if layers == 3
                         else mlp([512, hid, out], last_bn=True))
            predictor = H.NNCLRPredictionHead(out, r["prediction_hidden_dim"], out)
            criterion = L.NTXentLoss(temperature=r["temperature"])
            bank = NNMemoryBankModule(size=(r["queue_size"], out))
            modules.append(bank)
        modules += [projector, predictor]

        def loss_fn(views, step):
            x0, x1 = views
            z0, z1 = projector(backbone(x0)), projector(backbone(x1))
            p0, p1 = predictor(z0), predictor(z1)
            z0, z1 = z0.detach(), z1.detach()
            if method == "nnclr":
                z0, z1 = bank(z0, update=False), bank(z1, update=True)
            return 0.5 * (criterion(z0, p1) + criterion(z1, p0))
        trained = [backbone, projector, predictor]
    elif method in ("barlow_twins", "vicreg"):
        layers = r["layers"]
        if method == "barlow_twins":
            projector = (H.BarlowTwinsProjectionHead(512, hid, out) if layers == 3
                         else mlp([512] + [hid] * (layers - 1) + [out], last_bn=False))
            criterion = L.BarlowTwinsLoss(lambda_param=0.0051)
        else:
            projector = H.VICRegProjectionHead(512, hid, out, num_layers=layers)
            criterion = L.VICRegLoss()
        modules.append(projector)

        def loss_fn(views, step):
            x0, x1 = views
            return criterion(projector(backbone(x0)), projector(backbone(x1)))
        trained = [backbone, projector]
    elif method == "swav":
        projector = H.SwaVProjectionHead(512, hid, out)
        prototypes = H.SwaVPrototypes(out, r["num_prototypes"],
                                      n_steps_frozen_prototypes=r["freeze_prototypes_steps"])
        modules += [projector, prototypes]
        criterion = L.SwaVLoss(temperature=0.1, sinkhorn_iterations=3, sinkhorn_epsilon=0.05)

        def loss_fn(views, step):
            prototypes.normalize()
            scores = [prototypes(nn.functional.normalize(projector(backbone(x)), dim=1), step=step)
                      for x in views]
            return criterion(scores[:2], scores[2:])
        trained = [backbone, projector, prototypes]
    else:
        raise ValueError(method)
    for m in modules:
        m.to(device)
    params = [p for m in trained for p in m.parameters() if p.requires_grad]
    return modules, loss_fn, backbone, params


def torch_optimizer(method, recipe, params, batch, total_steps):
    import math

    import torch

    r = RECIPES[recipe][method]
    if recipe == "paper":
        return torch.optim.SGD(params, lr=throughput_rate(method), momentum=0.9), None
    scale = batch / 128
    if r.get("optimizer") == "adam":
        opt = torch.optim.Adam(params, lr=1e-3 * scale, weight_decay=1e-6)
    else:
        lr = 0.06 * (scale if r.get("lr_scaling", True) else 1.0)
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / max(total_steps, 1))))
    return opt, sched


def random_views(method, recipe, batch, device):
    import torch

    r = RECIPES[recipe][method]
    sizes = [32, 32] + [r.get("local_crop_size", 14)] * (r.get("num_local_crops", 0) if method == "swav" else 0)
    return [torch.randn(batch, 3, s, s, device=device) for s in sizes]


def lightly_step(method, recipe, batch, warmup, steps):
    import torch

    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    modules, loss_fn, _, params = lightly_trainer(method, recipe, batch, warmup + steps, device)
    optimizer, _ = torch_optimizer(method, "paper", params, batch, 1)
    views = random_views(method, recipe, batch, device)
    times, cpu = [], []
    for step in range(warmup + steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        loss = loss_fn(views, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        float(loss)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    import lightly

    return dict(side=f"lightly {lightly.__version__} step alone (torch {torch.__version__}, "
                     f"{torch.get_num_threads()} threads)", **summarize(times, batch, warmup, cpu))


def lightly_transform(method, recipe):
    from lightly.transforms import BYOLTransform, SimCLRTransform, SwaVTransform
    from lightly.transforms.byol_transform import BYOLView1Transform, BYOLView2Transform

    if method == "swav":
        r = RECIPES[recipe][method]
        n = r["num_local_crops"]
        sizes, counts = ((32, r.get("local_crop_size", 14)), (2, n)) if n else ((32,), (2,))
        mins, maxs = ((0.14, 0.05), (1.0, 0.14)) if n else ((0.14,), (1.0,))
        return SwaVTransform(crop_sizes=sizes, crop_counts=counts, crop_min_scales=mins,
                             crop_max_scales=maxs, cj_strength=1.0 if recipe == "paper" else 0.5,
                             gaussian_blur=0.0)
    if recipe != "paper" or method == "simsiam":
        return SimCLRTransform(input_size=32, cj_strength=0.5, gaussian_blur=0.0,
                               min_scale=0.2 if method == "moco_v2" else 0.08)
    return BYOLTransform(view_1_transform=BYOLView1Transform(input_size=32, gaussian_blur=0.0),
                         view_2_transform=BYOLView2Transform(input_size=32, gaussian_blur=0.0))


def lightly_knn(method, recipe, config):
    import torch

    import peer_lightly
    import shared

    torch.manual_seed(config["seed"])
    x_train, y_train, x_test, y_test = shared.quality_data(config)
    batch, epochs = config["batch_size"], config["epochs"]
    total = (len(x_train) // batch) * epochs
    device = peer_lightly.DEVICE
    modules, loss_fn, backbone, params = lightly_trainer(method, recipe, batch, total, device)
    optimizer, schedule = torch_optimizer(method, recipe, params, batch, total)

    def knn_of():
        feats = peer_lightly.features
        return shared.knn_accuracy(feats(backbone, x_train), y_train, feats(backbone, x_test), y_test,
                                   k=config["knn_k"], temperature=0.1)

    random_init = knn_of()
    transform = lightly_transform(method, recipe)
    loader = peer_lightly.ssl_loader(x_train, y_train, dict(config, num_workers=config.get("num_workers", 1)),
                                     config["seed"], transform=transform)
    for m in modules:
        m.train()
    step, history = 0, []
    started = time.perf_counter()
    for _ in range(epochs):
        losses = []
        for views, _ in loader:
            views = [v.to(device, non_blocking=True) for v in views]
            loss = loss_fn(views, step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(float(loss))
            step += 1
        history.append({"loss": round(float(np.mean(losses)), 4)})
    train_s = time.perf_counter() - started
    import lightly

    return dict(side=f"lightly {lightly.__version__} loader+step", knn_accuracy=knn_of(),
                knn_accuracy_random_init=random_init, steps=step, train_s=round(train_s, 1),
                train_images_per_s=round(step * batch / train_s, 2), history=history)


# -- measurement and the paired driver ------------------------------------------------


def summarize(times, batch, warmup, cpu_times=None):
    timed = times[warmup:] or times
    out = dict(first_step_s=round(times[0], 3), median_step_s=round(float(np.median(timed)), 4),
               images_per_s=round(batch / float(np.median(timed)), 2),
               step_times_s=[round(t, 3) for t in times], load_average=[round(x, 2) for x in os.getloadavg()])
    if cpu_times:
        out["images_per_cpu_s"] = round(batch / float(np.median(cpu_times[warmup:] or cpu_times)), 2)
    return out


def set_threads(side, threads):
    """Pins the side's compute threads before its library starts (0: leave the defaults)."""
    if not threads:
        return
    if side == "kerassl":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    else:
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)


def side_python(side):
    if side == "kerassl":
        return sys.executable
    import run  # the peer venv's convention: benchmarks/.peer-venv, made on first use

    return str(run.ensure_peer_venv())


def run_one(side, args, method):
    timeout = args.timeout or None
    cmd = [side_python(side), str(pathlib.Path(__file__).resolve()), "--side", side, "--method", method,
           "--task", args.task, "--recipe", args.recipe, "--batch", str(args.batch),
           "--warmup", str(args.warmup), "--steps", str(args.steps), "--train-size", str(args.train_size),
           "--test-size", str(args.test_size), "--epochs", str(args.epochs), "--knn-k", str(args.knn_k),
           "--data", args.data, "--encoder", args.encoder, "--init", args.init,
           "--input-norm", args.input_norm]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow")
    if args.threads:
        cmd += ["--threads", str(args.threads)]
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
                   TF_NUM_INTRAOP_THREADS=str(args.threads), TF_NUM_INTEROP_THREADS="1")
    load = [round(x, 2) for x in os.getloadavg()]
    started = time.time()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(method=method, error=f"timed out after {timeout} s", load_before=load)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        return dict(method=method, error=f"exit {proc.returncode}", stderr=proc.stderr[-1500:], load_before=load)
    result = json.loads(lines[-1])
    result.update(load_before=load, process_wall_s=round(time.time() - started, 1),
                  utc=time.strftime("%H:%M:%S", time.gmtime(started)))
    return result


def paired(args):
    """A B A B per method (kerassl first), medians per side, ratio kerassl / lightly."""
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    methods = METHODS if args.methods == "all" else tuple(args.methods.split(","))
    sides = args.sides.split(",")
    report = dict(task=args.task, recipe=args.recipe, batch=args.batch, warmup=args.warmup, steps=args.steps,
                  pairs=args.pairs, train_size=args.train_size, test_size=args.test_size, epochs=args.epochs,
                  knn_k=args.knn_k, threads=args.threads or "library default", date=time.strftime("%Y-%m-%d"), runs=[])
    path = out / f"{args.task}-{args.recipe}"
    previous = json.loads(path.with_suffix(".json").read_text()) if path.with_suffix(".json").exists() else None
    if previous and args.append:
        report["runs"] = previous["runs"]
    for method in methods:
        for pair in range(args.pairs):
            for side in sides:
                result = run_one(side, args, method)
                result.update(side_key=side, pair=pair, method=method)
                print(json.dumps({k: v for k, v in result.items() if k not in ("step_times_s", "stderr")}),
                      flush=True)
                report["runs"].append(result)
                path.with_suffix(".json").write_text(json.dumps(report, indent=1))
                path.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


def markdown(report):
    rows = []
    by = {}
    for run in report["runs"]:
        by.setdefault(run["method"], {}).setdefault(run["side_key"], []).append(run)
    if report["task"] == "step":
        rows.append("| method | kerassl img/s (runs) | lightly img/s (runs) | ratio of medians | "
                    "ratio per adjacent pair | kerassl img/CPU-s | lightly img/CPU-s | CPU ratio | "
                    "load average (1 min) at the runs |")
        rows.append("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |")
        for method, sides in by.items():
            def med(side, key="images_per_s"):
                vals = [r[key] for r in sides.get(side, []) if key in r]
                return (float(np.median(vals)) if vals else None), vals
            k, kv = med("kerassl")
            l, lv = med("lightly")
            kc, _ = med("kerassl", "images_per_cpu_s")
            lc, _ = med("lightly", "images_per_cpu_s")
            loads = [r["load_before"][0] for s in sides.values() for r in s]
            ratio = f"**{k / l:.2f}**" if k and l else "n/a"
            fmt = lambda v, vs: f"{v:.1f} ({', '.join(f'{x:.1f}' for x in vs)})" if v else "error"  # noqa: E731
            # A kerassl run and the lightly run right after it (a failed run pairs with nothing).
            seq = [r for r in report["runs"] if r["method"] == method]
            pairs = ", ".join(f"{a['images_per_s'] / b['images_per_s']:.2f}" for a, b in zip(seq, seq[1:])
                              if a["side_key"] == "kerassl" and b["side_key"] == "lightly"
                              and "images_per_s" in a and "images_per_s" in b)
            cpu_ratio = f"{kc / lc:.2f}" if kc and lc else "n/a"
            rows.append(f"| {TITLES.get(method, method)} | {fmt(k, kv)} | {fmt(l, lv)} | {ratio} | {pairs} | "
                        f"{kc or 0:.1f} | {lc or 0:.1f} | {cpu_ratio} | {min(loads):.1f}-{max(loads):.1f} |")
    else:
        rows.append("| method | side | kNN random init | kNN trained | gain | steps | train img/s | "
                    "loss first -> last epoch | load |")
        rows.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |")
        for method, sides in by.items():
            for side, runs in sides.items():
                for r in runs:
                    if "error" in r:
                        rows.append(f"| {TITLES.get(method, method)} | {side} | error: {r['error']} |||||||")
                        continue
                    hist = r["history"]
                    load = f"{r['load_before'][0]:.1f}" if r.get("load_before") else "n/a"  # --side runs: none
                    rows.append(
                        f"| {TITLES.get(method, method)} | {r['side']} | {r['knn_accuracy_random_init']:.3f} | "
                        f"{r['knn_accuracy']:.3f} | {r['knn_accuracy'] - r['knn_accuracy_random_init']:+.3f} | "
                        f"{r['steps']} | {r['train_images_per_s']:.1f} | {hist[0]['loss']:.3f} -> "
                        f"{hist[-1]['loss']:.3f} | {load} |")
    return "\n".join(rows) + "\n"


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=("kerassl", "lightly"))
    parser.add_argument("--paired", action="store_true", help="run both sides A B A B in fresh processes")
    parser.add_argument("--task", choices=("step", "knn"), default="step")
    parser.add_argument("--recipe", choices=tuple(RECIPES), default="paper")
    parser.add_argument("--method", choices=METHODS, default="byol")
    parser.add_argument("--methods", default="all", help="--paired: comma-separated methods or 'all'")
    parser.add_argument("--sides", default="kerassl,lightly")
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--test-size", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--knn-k", type=int, default=200)
    parser.add_argument("--data", choices=("cifar10", "synthetic"), default="cifar10")
    parser.add_argument("--encoder", choices=("resnet18", "small_convnet"), default="resnet18")
    parser.add_argument("--init", choices=("kerassl", "torch"), default="kerassl",
                        help="kerassl's side, --task knn: 'torch' redraws the backbone's convs as "
                             "lightly's ResNetGenerator has them (PyTorch's default)")
    parser.add_argument("--input-norm", choices=("none", "imagenet"), default="none",
                        help="kerassl's side, resnet18: 'imagenet' standardizes the inputs inside the "
                             "model as lightly's transforms do")
    parser.add_argument("--timeout", type=int, default=None,
                        help="--paired: seconds per run (default 900 for step, none for knn; 0: none)")
    parser.add_argument("--threads", type=int, default=0,
                        help="compute threads per side (0: each library's default). On a shared, "
                             "oversubscribed machine torch's spinning OpenMP threads collapse; 1 keeps "
                             "both sides comparable")
    parser.add_argument("--out", default=str(HERE / "results" / "staples"))
    parser.add_argument("--append", action="store_true", help="--paired: keep the runs already in --out")
    args = parser.parse_args(argv)
    if args.timeout is None:
        args.timeout = 900 if args.task == "step" else 0
    return args


def main(argv=None):
    args = parse(argv)
    if args.paired:
        return paired(args)
    set_threads(args.side, args.threads)
    if args.task == "step":
        if args.side == "kerassl":
            result = kerassl_step(args.method, args.recipe, args.batch, args.warmup, args.steps, args.encoder)
        else:
            result = lightly_step(args.method, args.recipe, args.batch, args.warmup, args.steps)
    else:
        config = dict(data=args.data, train_size=args.train_size, test_size=args.test_size,
                      batch_size=args.batch, epochs=args.epochs, knn_k=args.knn_k, seed=0,
                      image_size=32, num_workers=1)
        if args.side == "kerassl":
            result = kerassl_knn(args.method, args.recipe, config, args.encoder, args.init, args.input_norm)
        else:
            result = lightly_knn(args.method, args.recipe, config)
    print(json.dumps(dict(method=args.method, recipe=args.recipe, batch=args.batch, **result)))


if __name__ == "__main__":
    main()
