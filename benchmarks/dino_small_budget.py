"""DINO at a CPU test budget, kerassl side: does the teacher collapse, does kNN move?

The twin of `peer_dino_small_budget.py` (lightly's DINO, run in the peer venv):
the same data, encoder, head, crops, optimizer and kNN protocol, so the two
libraries' DINO can be compared where DINO is hard, a few hundred steps from
scratch. Settings: 2,000 MNIST training images (../shared/data/mnist.npz),
kerassl's `small_convnet(width=16, feature_dim=None)` (64 features; the peer
builds the same layers in PyTorch), DINO head 512-64-1024, 2 global crops of
28 px and 2 local crops of 12 px, teacher temperature 0.04, student 0.1,
centre momentum 0.9, teacher EMA 0.996 -> 1 (cosine), AdamW(1e-3, wd 0.04),
batch 128, 8 epochs (120 steps). Weighted kNN (k=20, T=0.1, cosine) with the
first 1,000 training images as bank and 1,000 test images as queries, for a
random init with BatchNorm at its initial statistics (identity), the same
init with BatchNorm statistics calibrated on the clean training images, the
teacher and the student.

Usage: python benchmarks/dino_small_budget.py [--epochs 8] [--out results/dino-small-budget/kerassl.json]
"""

import argparse
import json
import math
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kerassl  # noqa: E402
from kerassl.methods.dino import DINO, DINOHead  # noqa: E402
import shared  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
MNIST = HERE.parents[1] / "shared" / "data" / "mnist.npz"
SETTINGS = dict(train_images=2000, bank=1000, queries=1000, width=16, head=(512, 64, 1024),
                local_crops=2, local_size=12, batch=128, learning_rate=1e-3, weight_decay=0.04,
                momentum_start=0.996, k=20, knn_temperature=0.1)


def load():
    data = np.load(MNIST)
    x, y = data["x_train"][: SETTINGS["train_images"]], data["y_train"][: SETTINGS["train_images"]]
    return x[..., None], y, data["x_test"][: SETTINGS["queries"], ..., None], data["y_test"][: SETTINGS["queries"]]


def knn(encoder, x, y, x_test, y_test):
    bank = SETTINGS["bank"]
    features = lambda images: np.asarray(encoder.predict(images, batch_size=500, verbose=0))
    return shared.knn_accuracy(features(x[:bank]), y[:bank], features(x_test), y_test,
                               k=SETTINGS["k"], temperature=SETTINGS["knn_temperature"])


def calibrate_batchnorm(encoder, x, passes=2):
    """Moving statistics of a random init from the clean images (no weight changes)."""
    images = x.astype("float32") / 255.0
    for _ in range(passes):
        for start in range(0, len(images), SETTINGS["batch"]):
            encoder(images[start : start + SETTINGS["batch"]], training=True)


def encoder():
    return kerassl.backbones.small_convnet(input_shape=(28, 28, 1), width=SETTINGS["width"], feature_dim=None)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--out", default=str(HERE / "results" / "dino-small-budget" / "kerassl.json"))
    args = parser.parse_args(argv)
    x, y, x_test, y_test = load()
    keras.utils.set_random_seed(0)
    random_init = encoder()
    result = {"settings": SETTINGS, "epochs": args.epochs,
              "knn_random_init": knn(random_init, x, y, x_test, y_test)}
    calibrate_batchnorm(random_init, x)
    result["knn_random_init_calibrated_bn"] = knn(random_init, x, y, x_test, y_test)
    keras.utils.set_random_seed(0)
    hidden, bottleneck, output = SETTINGS["head"]
    model = DINO(encoder(), head=DINOHead(hidden, bottleneck, output, name="head"),
                 num_local_crops=SETTINGS["local_crops"], local_crop_size=SETTINGS["local_size"],
                 momentum_start=SETTINGS["momentum_start"], seed=0)
    model.compile(optimizer=keras.optimizers.AdamW(SETTINGS["learning_rate"], weight_decay=SETTINGS["weight_decay"]))
    start = time.perf_counter()
    history = model.fit(x, batch_size=SETTINGS["batch"], epochs=args.epochs, verbose=2).history
    result.update(
        train_s=round(time.perf_counter() - start, 1),
        log_k=math.log(output),
        loss=history["loss"],
        teacher_entropy=history["teacher_entropy"],
        teacher_batch_entropy=history["teacher_batch_entropy"],
        knn_teacher=knn(model.encoder, x, y, x_test, y_test),
        knn_student=knn(model.student_encoder, x, y, x_test, y_test),
        keras=keras.__version__, backend=keras.config.backend(),
    )
    print(json.dumps({k: v for k, v in result.items() if k != "settings"}, indent=1))
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
