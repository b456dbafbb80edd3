"""Images/s of a BYOL or Barlow Twins training step, kerassl against lightly (CPU, small).

Same backbone (ResNet-18 with the CIFAR stem: kerassl's `resnet18(stem="cifar")`,
lightly's `ResNetGenerator("resnet-18")`), batch, 32x32 RGB, two views, and the
heads of lightly's CIFAR-10 benchmark (BYOL: projector 512-1024-256, predictor
256-1024-256, momentum from 0.99; Barlow Twins: projector 512-2048-2048-2048).
kerassl: `model.fit` on uint8 images, BYOL's views made inside the step
(blur off at 32 px). lightly: the step alone on views made once up front (no
data loading: an upper bound for lightly), forwarding each view separately as
its examples do. SGD with momentum 0.9 on both sides.

Usage:
    .venv/bin/python benchmarks/staples_step.py --side kerassl --method byol
    benchmarks/.peer-venv/bin/python benchmarks/staples_step.py --side lightly --method byol
Options: --batch 64 --warmup 2 --steps 5. Prints one JSON line.

Measured 2026-12-04 on the 2 shared cores at load averages 10-17 (other sessions
running), batch 32, 1 warm-up and 3 timed steps: NOT a valid ratio, kept to show
what contention does. kerassl TensorFlow 7.61 img/s (BYOL) and 7.60 (Barlow
Twins); lightly step alone 0.63 and 1.37 with torch's default 2 threads, which
spin against the other processes, and 5.11 (BYOL) with OMP_NUM_THREADS=1.
Rerun both sides on an idle machine before quoting a ratio.
"""

import argparse
import json
import os
import time

import numpy as np


def summarize(times, batch, warmup):
    timed = times[warmup:]
    return dict(
        first_step_s=round(times[0], 3),
        median_step_s=round(float(np.median(timed)), 4),
        images_per_s=round(batch / float(np.median(timed)), 2),
        load_average=os.getloadavg(),
    )


def kerassl_side(method, batch, warmup, steps):
    import pathlib
    import sys

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    import keras
    from step_timer import StepTimer

    import kerassl

    keras.utils.set_random_seed(0)
    encoder = kerassl.backbones.resnet18(input_shape=(32, 32, 3), stem="cifar")
    if method == "byol":
        model = kerassl.BYOL(encoder, 1024, 256, 1024, momentum_start=0.99, seed=0)
    else:
        model = kerassl.BarlowTwins(encoder, 2048, 2048, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.06, momentum=0.9))
    images = np.random.default_rng(0).integers(0, 256, ((warmup + steps) * batch, 32, 32, 3), dtype=np.uint8)
    timer = StepTimer()
    model.fit(images, batch_size=batch, epochs=1, shuffle=False, verbose=0, callbacks=[timer])
    return dict(side=f"kerassl {keras.config.backend()}", **summarize(timer.times, batch, warmup))


def lightly_side(method, batch, warmup, steps):
    import copy

    import torch
    from lightly.loss import BarlowTwinsLoss, NegativeCosineSimilarity
    from lightly.models import ResNetGenerator, utils
    from lightly.models.modules import BarlowTwinsProjectionHead, BYOLPredictionHead, BYOLProjectionHead

    torch.manual_seed(0)
    resnet = ResNetGenerator("resnet-18")
    backbone = torch.nn.Sequential(*list(resnet.children())[:-1], torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    if method == "byol":
        projector = BYOLProjectionHead(512, 1024, 256)
        predictor = BYOLPredictionHead(256, 1024, 256)
        online = torch.nn.ModuleList([backbone, projector, predictor])
        backbone_m, projector_m = copy.deepcopy(backbone), copy.deepcopy(projector)
        utils.deactivate_requires_grad(backbone_m)
        utils.deactivate_requires_grad(projector_m)
        criterion = NegativeCosineSimilarity()
        params = online.parameters()
    else:
        projector = BarlowTwinsProjectionHead(512, 2048, 2048)
        criterion = BarlowTwinsLoss()
        params = list(backbone.parameters()) + list(projector.parameters())
    optimizer = torch.optim.SGD(params, lr=0.06, momentum=0.9)
    x0, x1 = torch.rand(batch, 3, 32, 32), torch.rand(batch, 3, 32, 32)
    times = []
    for _ in range(warmup + steps):
        start = time.perf_counter()
        if method == "byol":
            utils.update_momentum(backbone, backbone_m, 0.99)
            utils.update_momentum(projector, projector_m, 0.99)
            p0, p1 = predictor(projector(backbone(x0))), predictor(projector(backbone(x1)))
            with torch.no_grad():
                z0, z1 = projector_m(backbone_m(x0)), projector_m(backbone_m(x1))
            loss = 0.5 * (criterion(p0, z1) + criterion(p1, z0))
        else:
            loss = criterion(projector(backbone(x0)), projector(backbone(x1)))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        float(loss)
        times.append(time.perf_counter() - start)
    return dict(side=f"lightly step alone (torch {torch.__version__})", **summarize(times, batch, warmup))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=("kerassl", "lightly"), required=True)
    parser.add_argument("--method", choices=("byol", "barlow_twins"), default="byol")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    run = kerassl_side if args.side == "kerassl" else lightly_side
    print(json.dumps(dict(method=args.method, batch=args.batch, **run(args.method, args.batch, args.warmup, args.steps))))
