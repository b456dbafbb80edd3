"""Shared runner of `mae_step.py` and `dino_step.py`: step throughput and a short kNN check.

Throughput: ViT-tiny (patch 4) on 32x32 RGB, `fit` on random uint8 images,
`--warmup` steps (trace/compile) then `--steps` timed steps, images/s =
batch * steps / seconds. The machine is shared, so the load average is
printed with the figure.

Quality (`--knn`): the method trains for `--epochs` on `--train-limit`
CIFAR-10 training images, then weighted kNN (k=20, T=0.1) on `--test-limit`
test images with the teacher/encoder, against the same encoder at random
init (same seed, same data).
"""

import argparse
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
from step_timer import StepTimer  # noqa: E402
import numpy as np  # noqa: E402

import kerassl  # noqa: E402
from kerassl import vit  # noqa: E402

CIFAR = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"


def make_method(name, encoder):
    if name == "mae":
        from kerassl.methods.mae import MAE

        return MAE(encoder, mask_ratio=0.75, seed=0), keras.optimizers.AdamW(1.5e-4, weight_decay=0.05)
    from kerassl.methods.dino import DINO

    return DINO(encoder, seed=0), keras.optimizers.AdamW(5e-4, weight_decay=0.04)


def throughput(name, batch, warmup, steps):
    keras.utils.set_random_seed(0)
    model, optimizer = make_method(name, vit.vit_tiny(image_size=32, patch_size=4))
    model.compile(optimizer=optimizer)
    images = np.random.default_rng(0).integers(0, 256, (batch * (warmup + steps), 32, 32, 3), dtype="uint8")
    timer = StepTimer()
    model.fit(images, batch_size=batch, epochs=1, verbose=0, shuffle=False, callbacks=[timer])
    timed = timer.times[warmup:]
    return {
        "method": name,
        "backend": keras.config.backend(),
        "batch": batch,
        "timed_steps": len(timed),
        "seconds_per_step": float(np.median(timed)),
        "images_per_second": batch / float(np.median(timed)),
        "load_average": os.getloadavg(),
    }


def knn(name, train_limit, test_limit, epochs, batch):
    (x, y), (x_test, y_test) = kerassl.datasets.cifar10(
        path=CIFAR, train_limit=train_limit, test_limit=test_limit
    )
    keras.utils.set_random_seed(0)
    baseline = kerassl.evaluate.knn_accuracy(
        vit.vit_tiny(image_size=32, patch_size=4), x, y, x_test, y_test, k=20, verbose=False
    )
    keras.utils.set_random_seed(0)
    model, optimizer = make_method(name, vit.vit_tiny(image_size=32, patch_size=4))
    model.compile(optimizer=optimizer)
    start = time.perf_counter()
    model.fit(x, batch_size=batch, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - start
    trained = kerassl.evaluate.knn_accuracy(model.encoder, x, y, x_test, y_test, k=20, verbose=False)
    return {
        "method": name,
        "train_images": len(x),
        "test_images": len(x_test),
        "epochs": epochs,
        "train_seconds": seconds,
        "knn_random_init": baseline,
        "knn_trained": trained,
    }


def main(name, argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--knn", action="store_true", help="also run the short kNN comparison")
    parser.add_argument("--train-limit", type=int, default=2000)
    parser.add_argument("--test-limit", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)
    print(json.dumps(throughput(name, args.batch, args.warmup, args.steps)), flush=True)
    if args.knn:
        print(json.dumps(knn(name, args.train_limit, args.test_limit, args.epochs, args.batch)), flush=True)
