"""DINO at a CPU test budget, kerassl side: does the teacher collapse, does kNN move?

The twin of `peer_dino_small_budget.py` (lightly's DINO, run in the peer venv):
the same data, encoder, head, crops, optimizer and kNN protocol, so the two
libraries' DINO can be compared where DINO is hard, a few hundred steps from
scratch. Two recipes (`--data`), both on kerassl's `small_convnet(width=16,
feature_dim=None)` (64 features; the peer builds the same layers in PyTorch),
with the short-run settings of `DINO`'s docstring (2 global crops and no local
crops, teacher momentum from 0.96 on a cosine to 1), BatchNorm in the head,
teacher temperature 0.04, student 0.1, centre momentum 0.9:

- `mnist`: 2,000 MNIST training images (../shared/data/mnist.npz), head
  512-64-1024, global crops of 28 px without flips (a mirrored digit is
  another shape), AdamW(1e-3, wd 0.04), batch 128, 20 epochs (320 steps);
  kNN bank the first 1,000 training images, 1,000 test queries.
- `cifar10`: 10,000 CIFAR-10 training images (../shared/data/cifar10-jpeg.tar.gz,
  the subset `shared.quality_data` draws), head 2048-256-2048 (lightly's
  CIFAR-10 benchmark head), global crops of 32 px with flips, SGD(momentum
  0.9) at 0.06 with a 1-epoch linear warm-up then cosine decay, batch 256,
  10 epochs (400 steps); kNN bank the first 5,000 training images, all
  10,000 test images as queries.

The earlier recipes (2 local crops, momentum from 0.996 / 0.99, flips on
MNIST) are in `results/dino-small-budget/*-multicrop*.json`.

Weighted kNN (k=20, T=0.1, cosine) for a random init with BatchNorm at its
initial statistics (identity), the same init with BatchNorm statistics
calibrated on the clean training images, the teacher and the student.

Usage: python benchmarks/dino_small_budget.py [--data mnist|cifar10] [--seed 0] [--out PATH]
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
RECIPES = shared.DINO_SMALL_BUDGET_RECIPES


def knn(encoder, data, recipe):
    x, y, x_test, y_test = data
    bank = recipe["bank"]
    # Scaled to [0, 1] as in training (and as the lightly twin does): a Keras
    # model casts uint8 without scaling.
    features = lambda images: np.asarray(
        encoder.predict(images.astype("float32") / 255.0, batch_size=500, verbose=0))
    return shared.knn_accuracy(features(x[:bank]), y[:bank], features(x_test), y_test,
                               k=recipe["k"], temperature=recipe["knn_temperature"])


def calibrate_batchnorm(encoder, x, batch_size, passes=2):
    """Moving statistics of a random init from the clean images (no weight changes)."""
    images = x.astype("float32") / 255.0
    for _ in range(passes):
        for start in range(0, len(images), batch_size):
            encoder(images[start : start + batch_size], training=True)


def optimizer(recipe):
    steps_per_epoch = math.ceil(recipe["train_images"] / recipe["batch"])
    warmup = recipe["warmup_epochs"] * steps_per_epoch
    total = recipe["epochs"] * steps_per_epoch
    rate = recipe["learning_rate"]
    if warmup:
        rate = keras.optimizers.schedules.CosineDecay(0.0, total - warmup, warmup_target=rate,
                                                      warmup_steps=warmup)
    if recipe["optimizer"] == "sgd":
        return keras.optimizers.SGD(rate, momentum=0.9)
    return keras.optimizers.AdamW(rate, weight_decay=recipe["weight_decay"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=sorted(RECIPES), default="mnist")
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None,
                        help="default: results/dino-small-budget/kerassl[-cifar10][-seedN].json")
    args = parser.parse_args(argv)
    recipe = dict(RECIPES[args.data], epochs=args.epochs or RECIPES[args.data]["epochs"])
    data = shared.dino_small_budget_data(args.data, recipe)
    x = data[0]
    encoder = lambda: kerassl.backbones.small_convnet(input_shape=x.shape[1:], width=recipe["width"],
                                                       feature_dim=None)
    keras.utils.set_random_seed(args.seed)
    random_init = encoder()
    result = {"data": args.data, "seed": args.seed, "settings": recipe,
              "knn_random_init": knn(random_init, data, recipe)}
    calibrate_batchnorm(random_init, x, recipe["batch"])
    result["knn_random_init_calibrated_bn"] = knn(random_init, data, recipe)
    keras.utils.set_random_seed(args.seed)
    hidden, bottleneck, output = recipe["head"]
    head = DINOHead(hidden, bottleneck, output, batch_norm=recipe["head_batch_norm"], name="head")
    augmenters = {}
    if not recipe["flip"]:
        augmenters["global_augmenter"] = kerassl.augment.simclr_augmenter(
            x.shape[1], x.shape[-1], scale=(0.4, 1.0), flip=False, seed=args.seed, name="global_augmenter")
        augmenters["local_augmenter"] = kerassl.augment.simclr_augmenter(
            recipe["local_size"], x.shape[-1], scale=(0.05, 0.4), flip=False, seed=args.seed + 100,
            name="local_augmenter")
    model = DINO(encoder(), head=head, num_local_crops=recipe["local_crops"],
                 local_crop_size=recipe["local_size"], momentum_start=recipe["momentum_start"],
                 seed=args.seed, **augmenters)
    model.compile(optimizer=optimizer(recipe))
    start = time.perf_counter()
    history = model.fit(x, batch_size=recipe["batch"], epochs=recipe["epochs"], verbose=2).history
    result.update(
        train_s=round(time.perf_counter() - start, 1),
        log_k=math.log(output),
        loss=history["loss"],
        teacher_entropy=history["teacher_entropy"],
        teacher_batch_entropy=history["teacher_batch_entropy"],
        knn_teacher=knn(model.encoder, data, recipe),
        knn_student=knn(model.student_encoder, data, recipe),
        keras=keras.__version__, backend=keras.config.backend(),
    )
    print(json.dumps({k: v for k, v in result.items() if k != "settings"}, indent=1))
    name = "kerassl" + ("" if args.data == "mnist" else f"-{args.data}") + (f"-seed{args.seed}" if args.seed else "")
    out = pathlib.Path(args.out or HERE / "results" / "dino-small-budget" / f"{name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
