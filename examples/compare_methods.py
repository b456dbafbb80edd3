"""Every method on the same data and budget: which one to pick for which data.

What it shows: each self-supervised method of `METHODS` pretrains the same encoder
architecture, from the same random init, on the same images for the same number of
epochs; then its frozen encoder is scored by weighted kNN (T=0.1; k=200 on CIFAR-10, 20 on the
1,437 digits) and by a
linear probe trained on all training labels, next to the random init itself (the
baseline every method must beat). One table per dataset, and one figure with a panel
per dataset, so the answer to "which method for which data" is a look at the bars.
Adding a method is one line in `METHODS`.

The encoder is a small convnet on digits and a ResNet-18 (CIFAR stem) on CIFAR-10,
both with free spatial sizes so every method can use it (Jigsaw feeds it tiles).
MAE is not in the table (it needs a ViT: see `mae_reconstruct.py`), nor the GAN
(its encoder is its own discriminator) nor CLIP (it needs captions).

What it needs:
- data: scikit-learn's digits (offline) and CIFAR-10 (`keras.datasets` download, or
  `--cifar10-path` to a local copy); `--datasets digits` runs offline;
- full size (digits 30 epochs and CIFAR-10 100 epochs per method, 13 methods):
  digits take about 30 min on a 2-core CPU (estimated from `kerassl demo`, 40 SimCLR
  epochs in about 2 min; the two-network methods take longer); CIFAR-10 about 6 h on
  one recent GPU (estimated) and is not practical on a CPU (about 40 h a method, from
  the 25 min per SimCLR epoch measured in ../shared/FACTS.md);
- `--smoke`: 300 digits, 1 epoch (3 steps) per method, a 10-epoch linear probe: about
  100 s on 2 idle cores (2026-12-08), most of it building each method's train step.

What it prints and writes (in `--output`, default `outputs/compare_methods/`):
- per dataset, a Markdown table: method, kNN accuracy, linear-probe accuracy,
  pretraining seconds, the random init first;
- `methods.png`: grouped bars of both accuracies per method, a panel per dataset,
  the random init's level drawn as dashed lines;
- `results.json`: every number.

Run:
    python examples/compare_methods.py --datasets digits
    python examples/compare_methods.py --cifar10-path ../shared/data/cifar10-jpeg.tar.gz
    python examples/compare_methods.py --methods SimCLR,DINO --epochs 5
    python examples/compare_methods.py --smoke
"""

import argparse
import json
import os
import time

import keras
import numpy as np

import kerassl

# One line per method: how to build it on an encoder for images of `size` pixels, with
# `views(name)` a fresh SimCLR-style augmenter for this data (no flips on digits). Head
# sizes are shrunk from the papers' ImageNet ones to suit small encoders and budgets.
METHODS = {
    "SimCLR": lambda encoder, size, views, seed: kerassl.SimCLR(
        encoder, projection_hidden_dim=512, projection_dim=128, augmenter=views("simclr"), seed=seed),
    "DINO": lambda encoder, size, views, seed: kerassl.DINO(  # its docstring's short-run settings
        encoder, head_hidden_dim=512, head_bottleneck_dim=64, head_output_dim=1024, num_local_crops=0,
        momentum_start=0.96, global_augmenter=views("global_augmenter"), seed=seed),
    "RotNet": lambda encoder, size, views, seed: kerassl.RotNet(encoder, seed=seed),
    "Jigsaw": lambda encoder, size, views, seed: kerassl.Jigsaw(
        encoder, grid=3 if size >= 24 else 2, num_permutations=100 if size >= 24 else 24, seed=seed),
    "Autoencoder": lambda encoder, size, views, seed: kerassl.Autoencoder(encoder, seed=seed),
    "Denoising AE": lambda encoder, size, views, seed: kerassl.Autoencoder(
        encoder, noise="masking", seed=seed),
    "BYOL": lambda encoder, size, views, seed: kerassl.BYOL(
        encoder, projection_hidden_dim=512, projection_dim=128, prediction_hidden_dim=512,
        augmenter=views("augmenter"), seed=seed),
    "MoCo": lambda encoder, size, views, seed: kerassl.MoCo(
        encoder, version="v2", projection_hidden_dim=512, projection_dim=128, queue_size=1024,
        augmenter=views("augmenter"), seed=seed),
    "SimSiam": lambda encoder, size, views, seed: kerassl.SimSiam(
        encoder, projection_hidden_dim=512, projection_dim=512, prediction_hidden_dim=128,
        augmenter=views("augmenter"), seed=seed),
    "BarlowTwins": lambda encoder, size, views, seed: kerassl.BarlowTwins(
        encoder, projection_hidden_dim=1024, projection_dim=1024, augmenter=views("augmenter"), seed=seed),
    "VICReg": lambda encoder, size, views, seed: kerassl.VICReg(
        encoder, projection_hidden_dim=1024, projection_dim=1024, augmenter=views("augmenter"), seed=seed),
    "SwAV": lambda encoder, size, views, seed: kerassl.SwAV(
        encoder, projection_hidden_dim=512, projection_dim=128, num_prototypes=100, num_local_crops=0,
        augmenter=views("augmenter"), seed=seed),
    "NNCLR": lambda encoder, size, views, seed: kerassl.NNCLR(
        encoder, projection_hidden_dim=512, projection_dim=128, prediction_hidden_dim=512,
        queue_size=1024, augmenter=views("augmenter"), seed=seed),
}

# Per dataset: how to load it, the encoder, flips, and the full-size budget.
DATASETS = {
    "digits": {"channels": 1, "size": 16, "flip": False, "epochs": 30, "batch_size": 128, "knn_k": 20},
    "cifar10": {"channels": 3, "size": 32, "flip": True, "epochs": 100, "batch_size": 256, "knn_k": 200},
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="digits,cifar10", help="comma-separated: digits, cifar10")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated names of METHODS")
    parser.add_argument("--cifar10-path", help="local CIFAR-10 copy (tarball, folder or .npz)")
    parser.add_argument("--epochs", type=int, help="pretraining epochs per method (default: per dataset)")
    parser.add_argument("--output", default="outputs/compare_methods")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny offline run (300 digits, 1 epoch)")
    args = parser.parse_args(argv)
    unknown = set(args.methods.split(",")) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {list(METHODS)}")
    return args


def load(name, args):
    spec = DATASETS[name]
    if name == "digits":
        (x, y), (x_test, y_test) = kerassl.datasets.load_digits(image_size=spec["size"])
    else:
        (x, y), (x_test, y_test) = kerassl.datasets.cifar10(path=args.cifar10_path)
    if args.smoke:
        x, y = x[:300], y[:300]
    return (x, y), (x_test, y_test)


def make_encoder(name, seed):
    """The same architecture and the same initial weights for every method."""
    keras.utils.set_random_seed(seed)
    channels = DATASETS[name]["channels"]
    if name == "digits":
        return kerassl.backbones.small_convnet((None, None, channels), width=32, feature_dim=None)
    return kerassl.backbones.resnet18(input_shape=(None, None, channels), stem="cifar")


def score(encoder, data, k, probe_epochs):
    (x, y), (x_test, y_test) = data
    return {
        "knn_accuracy": kerassl.evaluate.knn_accuracy(encoder, x, y, x_test, y_test, k=k, verbose=False),
        "linear_probe_accuracy": kerassl.evaluate.linear_probe(
            encoder, x, y, x_test, y_test, epochs=probe_epochs),
    }


def run_dataset(name, methods, args):
    spec = DATASETS[name]
    data = load(name, args)
    epochs = args.epochs or (1 if args.smoke else spec["epochs"])
    batch_size = 100 if args.smoke else spec["batch_size"]
    probe_epochs = 10 if args.smoke else 100  # linear_probe's default; the smoke run checks the wiring
    size, channels = spec["size"], spec["channels"]

    def views(layer_name):
        return kerassl.augment.simclr_augmenter(
            size, channels, flip=spec["flip"], seed=args.seed, name=layer_name
        )

    k = spec["knn_k"]
    rows = {"random init": {**score(make_encoder(name, args.seed), data, k, probe_epochs), "seconds": 0.0}}
    for method_name in methods:
        model = METHODS[method_name](make_encoder(name, args.seed), size, views, args.seed)
        model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=1e-4))
        start = time.time()
        model.fit(data[0][0], epochs=epochs, batch_size=batch_size, verbose=0)
        seconds = time.time() - start
        rows[method_name] = {**score(model.encoder, data, k, probe_epochs), "seconds": round(seconds, 1)}
        print(f"{name}: {method_name} done in {seconds:.0f} s", flush=True)
    return {"epochs": epochs, "batch_size": batch_size, "knn_k": k,
            "probe_epochs": probe_epochs, "train_size": len(data[0][0]), "rows": rows}


def table(name, result):
    lines = [
        f"\n{name}: {result['train_size']} images, {result['epochs']} epochs per method, "
        f"batch {result['batch_size']}",
        f"| method | kNN accuracy (k={result['knn_k']}) | linear probe accuracy | pretraining s |",
        "| --- | --- | --- | --- |",
    ]
    for method, row in result["rows"].items():
        lines.append(f"| {method} | {row['knn_accuracy']:.3f} | "
                     f"{row['linear_probe_accuracy']:.3f} | {row['seconds']:.0f} |")
    return "\n".join(lines)


def plot(results, path):
    """Grouped bars per method, a panel per dataset; written to a temp file, then renamed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7 * len(results), 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(results), squeeze=False)[0]
    for ax, (name, result) in zip(axes, results.items()):
        methods = [m for m in result["rows"] if m != "random init"]
        base = result["rows"]["random init"]
        x = np.arange(len(methods))
        for offset, key, label, color in ((-0.2, "knn_accuracy", "kNN", "tab:blue"),
                                          (0.2, "linear_probe_accuracy", "linear probe", "tab:orange")):
            ax.bar(x + offset, [result["rows"][m][key] for m in methods], 0.4, label=label, color=color)
            ax.axhline(base[key], color=color, linestyle="--", linewidth=1,
                       label=f"{label}, random init")
        ax.set_xticks(x, methods, rotation=30, ha="right")
        ax.set_ylim(0, 1)
        ax.set_ylabel("test accuracy")
        ax.set_title(f"{name}: {result['epochs']} epochs each")
        ax.legend(fontsize="small")
    figure.tight_layout()
    temp = path + ".tmp.png"
    figure.savefig(temp)
    os.replace(temp, path)
    return path


def main(argv=None):
    args = parse_args(argv)
    names = ["digits"] if args.smoke else args.datasets.split(",")
    methods = args.methods.split(",")
    os.makedirs(args.output, exist_ok=True)
    results = {name: run_dataset(name, methods, args) for name in names}
    for name, result in results.items():
        print(table(name, result))
    plot(results, os.path.join(args.output, "methods.png"))
    with open(os.path.join(args.output, "results.json"), "w") as file:
        json.dump(results, file, indent=2)
    print("wrote methods.png and results.json in", args.output)
    return results


if __name__ == "__main__":
    main()
