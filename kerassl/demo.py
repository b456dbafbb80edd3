"""`kerassl demo`: pretrain SimCLR on the embedded digits and show what it learned.

Needs no network and no GPU: scikit-learn's 1,797 digits ship with it. The
demo pretrains a small convnet with SimCLR for a few minutes on a CPU, then
compares it with the same encoder at random initialization by weighted kNN
and by a linear probe trained on 10 labels per class, and saves the
augmentation preview, the training curves and the encoder.
"""

import json
import os
import time

import keras
import numpy as np

from kerassl import augment, backbones, datasets, evaluate, viz
from kerassl.methods import SimCLR

# Measured on 2 CPU cores (see the README); the recipe is tuned for 8x8 digits
# upsampled to 16x16: strong crops, brightness/contrast jitter, no flips (a
# mirrored 2 is not a 2) and no colour (the digits are gray).
DEMO_RECIPE = {
    "image_size": 16,
    "width": 32,
    "epochs": 40,
    "batch_size": 256,
    "learning_rate": 1e-3,
    "temperature": 0.2,
    "crop_scale": (0.3, 1.0),
    "projection_hidden_dim": 256,
    "projection_dim": 64,
    "knn_k": 20,
    "labels_per_class": 10,
}


def digits_augmenter(image_size, crop_scale, seed):
    """SimCLR views for grayscale digits: crop and brightness/contrast jitter."""
    return keras.Sequential(
        [
            augment.RandomResizedCrop(image_size, scale=crop_scale, seed=seed),
            augment.RandomApply(
                augment.ColorJitter(0.4, 0.4, 0.0, 0.0, seed=seed + 1), 0.8, seed=seed + 2
            ),
        ],
        name="digits_augmenter",
    )


def few_labels(labels, per_class, seed):
    """Indices of `per_class` examples of every class, fixed by `seed`."""
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in np.unique(labels)]
    return np.sort(np.concatenate(picks))


def measure(encoder, data, recipe, seed):
    (x_train, y_train), (x_test, y_test) = data
    few = few_labels(y_train, recipe["labels_per_class"], seed)
    return {
        "knn_accuracy": evaluate.knn_accuracy(
            encoder, x_train, y_train, x_test, y_test, k=recipe["knn_k"], verbose=False
        ),
        "linear_probe_accuracy": evaluate.linear_probe(
            encoder, x_train[few], y_train[few], x_test, y_test, seed=seed
        ),
    }


def run_demo(output_dir="outputs/demo", epochs=None, seed=0, verbose=1):
    """Runs the demo and returns its results as a dict.

    Args:
        output_dir: str. Where the PNGs, the encoder and results.json go.
        epochs: int or None. Pretraining epochs (default: the recipe's 40).
        seed: int. Seeds the encoder, the views and the label subset.
        verbose: int. 0 silent, 1 progress bars and the table.

    Example:
    ```python
    results = kerassl.demo.run_demo(epochs=5)
    ```
    """
    recipe = dict(DEMO_RECIPE, epochs=epochs or DEMO_RECIPE["epochs"])
    os.makedirs(output_dir, exist_ok=True)
    size = recipe["image_size"]
    data = datasets.load_digits(image_size=size)
    x_train = data[0][0]
    say = print if verbose else (lambda *a, **k: None)
    say(f"kerassl demo: SimCLR on {len(x_train)} digits ({size}x{size}), {recipe['epochs']} epochs")

    def encoder():
        keras.utils.set_random_seed(seed)
        return backbones.small_convnet((size, size, 1), width=recipe["width"], feature_dim=None)

    start = time.time()
    random_scores = measure(encoder(), data, recipe, seed)

    augmenter = digits_augmenter(size, recipe["crop_scale"], seed)
    preview_path = viz.augmentation_preview(
        x_train[:6], augmenter, os.path.join(output_dir, "views.png"), num_views=6, seed=seed
    )
    model = SimCLR(
        encoder(),
        projection_hidden_dim=recipe["projection_hidden_dim"],
        projection_dim=recipe["projection_dim"],
        temperature=recipe["temperature"],
        augmenter=digits_augmenter(size, recipe["crop_scale"], seed),
        seed=seed,
    )
    model.compile(optimizer=keras.optimizers.Adam(recipe["learning_rate"]))
    train_start = time.time()
    history = model.fit(
        x_train, epochs=recipe["epochs"], batch_size=recipe["batch_size"], verbose=verbose and 2
    )
    train_seconds = time.time() - train_start
    pretrained_scores = measure(model.encoder, data, recipe, seed)

    curve_path = viz.loss_curve(history, os.path.join(output_dir, "training.png"))
    encoder_path = os.path.join(output_dir, "encoder.keras")
    model.encoder.save(encoder_path)
    results = {
        "recipe": recipe,
        "random_init": random_scores,
        "simclr": pretrained_scores,
        "final_epoch": {name: values[-1] for name, values in history.history.items()},
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.time() - start, 1),
        "files": {"views": str(preview_path), "curves": str(curve_path), "encoder": encoder_path},
    }
    with open(os.path.join(output_dir, "results.json.tmp"), "w") as f:
        json.dump(results, f, indent=2, default=float)
    os.replace(os.path.join(output_dir, "results.json.tmp"), os.path.join(output_dir, "results.json"))
    say(format_table(results))
    return results


def format_table(results):
    """The demo's comparison as a Markdown table."""
    k = results["recipe"]["knn_k"]
    per_class = results["recipe"]["labels_per_class"]
    rows = [
        "| encoder | kNN accuracy (k={}) | linear probe, {} labels/class |".format(k, per_class),
        "| --- | --- | --- |",
    ]
    for name, key in (("random init", "random_init"), ("SimCLR pretrained", "simclr")):
        scores = results[key]
        rows.append(
            f"| {name} | {scores['knn_accuracy']:.3f} | {scores['linear_probe_accuracy']:.3f} |"
        )
    rows.append(
        f"\npretraining: {results['train_seconds']:.0f} s; whole demo: "
        f"{results['total_seconds']:.0f} s; files: "
        + ", ".join(results["files"].values())
    )
    return "\n".join(rows)
