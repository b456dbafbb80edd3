"""Shared runner of rotnet_step.py, jigsaw_step.py, autoencoder_step.py and gan_step.py.

Throughput: one training step at 32x32 RGB, batch 256, `fit` on random uint8
images: `--warmup` steps (trace/compile) then `--steps` timed steps, images/s =
batch / median step time. Encoder: `small_convnet(width=32, feature_dim=128)`
(free spatial sizes for Jigsaw, which feeds it tiles); the GAN is the default
DCGAN (width 64, latent 128). The machine is shared, so the load average is
printed with the figure.

Quality (`--knn`): the protocol of the methods' slow tests. The method trains
for `--epochs` (batch 128, Adam 1e-3; the GAN's defaults) on `--train-limit`
MNIST training images (../shared/data/mnist.npz); weighted kNN (k=20, T=0.1)
with the first 1,000 of them as the bank and `--test-limit` test images as
queries, against the same encoder at random init (same seed).
Encoder: `small_convnet(width=16, feature_dim=None)` (64 pooled channels); the
GAN's encoder is its discriminator's pooled trunk (width 32).
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
from kerassl.methods.autoencoder import Autoencoder  # noqa: E402
from kerassl.methods.gan import GAN  # noqa: E402
from kerassl.methods.jigsaw import Jigsaw  # noqa: E402
from kerassl.methods.rotnet import RotNet  # noqa: E402

MNIST = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"


def make_method(name, image_shape, width, feature_dim, gan_width):
    """(method, compile kwargs) for one of the four pretext methods."""
    channels = image_shape[-1]
    if name == "gan":
        return GAN(latent_dim=128 if gan_width == 64 else 64, image_shape=image_shape,
                   width=gan_width, label_smoothing=0.1, seed=0), {}
    free = (None, None, channels)
    encoder = kerassl.backbones.small_convnet(
        input_shape=free if name == "jigsaw" else image_shape, width=width, feature_dim=feature_dim
    )
    if name == "rotnet":
        method = RotNet(encoder, hidden_dim=128, seed=0)
    elif name == "jigsaw":
        # 2x2 puzzles on 28 px digits (14 px cells); 3x3 with 100 classes on 32 px images.
        grid, classes = (2, 24) if image_shape[0] < 32 else (3, 100)
        method = Jigsaw(encoder, grid=grid, num_permutations=classes, hidden_dim=128, seed=0)
    elif name in ("autoencoder", "denoising_autoencoder"):
        noise = "gaussian" if name.startswith("denoising") else None
        method = Autoencoder(encoder, noise=noise, seed=0)
    else:
        raise ValueError(f"unknown method {name!r}")
    return method, {"optimizer": keras.optimizers.Adam(1e-3)}


def throughput(name, batch, warmup, steps):
    keras.utils.set_random_seed(0)
    model, compile_kwargs = make_method(name, (32, 32, 3), 32, 128, gan_width=64)
    model.compile(**compile_kwargs)
    images = np.random.default_rng(0).integers(
        0, 256, (batch * (warmup + steps), 32, 32, 3), dtype="uint8"
    )
    timer = StepTimer()
    model.fit(images, batch_size=batch, epochs=1, verbose=0, shuffle=False, callbacks=[timer])
    timed = timer.times[warmup:]
    return {
        "method": name,
        "backend": keras.config.backend(),
        "batch": batch,
        "timed_steps": len(timed),
        "seconds_per_step": round(float(np.median(timed)), 3),
        "images_per_second": round(batch / float(np.median(timed)), 1),
        "load_average": os.getloadavg(),
    }


def knn(name, train_limit, test_limit, epochs):
    (x, y), (x_test, y_test) = kerassl.datasets.mnist(
        path=MNIST, train_limit=train_limit, test_limit=test_limit
    )
    bank, bank_labels = x[:1000], y[:1000]
    keras.utils.set_random_seed(0)
    model, compile_kwargs = make_method(name, (28, 28, 1), 16, None, gan_width=32)
    settings = dict(k=20, verbose=False)
    baseline = kerassl.evaluate.knn_accuracy(
        model.encoder, bank, bank_labels, x_test, y_test, **settings
    )
    model.compile(**compile_kwargs)
    start = time.perf_counter()
    history = model.fit(x, batch_size=128, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - start
    trained = kerassl.evaluate.knn_accuracy(
        model.encoder, bank, bank_labels, x_test, y_test, **settings
    )
    pretext = {
        key: [round(float(v), 4) for v in values[:: max(1, len(values) // 4)] + values[-1:]]
        for key, values in history.history.items()
        if key.endswith(("accuracy", "error", "score"))
    }
    return {
        "method": name,
        "dataset": "MNIST",
        "train_images": len(x),
        "test_images": len(x_test),
        "epochs": epochs,
        "train_seconds": round(seconds, 1),
        "knn_random_init": baseline,
        "knn_trained": trained,
        "pretext_metrics": pretext,
    }


def main(name, argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--knn", action="store_true", help="also run the short kNN comparison")
    parser.add_argument("--train-limit", type=int, default=2000)
    parser.add_argument("--test-limit", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args(argv)
    print(json.dumps(throughput(name, args.batch, args.warmup, args.steps)), flush=True)
    if args.knn:
        print(json.dumps(knn(name, args.train_limit, args.test_limit, args.epochs)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
