"""Pretrain SimCLR on CIFAR-10 (or any folder of images) and watch it learn.

What it shows: the whole pretraining journey in one file. Unlabeled images go in;
SimCLR (Chen et al., 2020, https://arxiv.org/abs/2002.05709) trains a ResNet-18 with
the CIFAR stem on two augmented views of each image; `kerassl.evaluate.KNNMonitor`
reports the weighted kNN accuracy of the frozen encoder every few epochs (labels are
used only by that monitor, never by the training step); the encoder and the whole
method are saved as `.keras` files, and the views and curves are drawn.

What it needs:
- data: CIFAR-10 through `keras.datasets` (downloads 170 MB), or a local copy
  (`--data-path cifar-10-python.tar.gz`, or the JPEG tarball `train/<class>/*.jpg`),
  or any folder of images with one subfolder per class (`--images my_photos/`;
  the class folders only feed the kNN monitor);
- a GPU for the full recipe. Full size (200 epochs of 50,000 images, batch 512):
  about 2 h on one recent GPU (estimated from lightly's published timings for the
  same model, not measured here), about 80 h on a 2-core CPU (measured: 25 min an
  epoch, ../shared/FACTS.md).
- `--smoke`: scikit-learn's digits (offline), a small convnet, 2 epochs: 11 s of CPU
  time, 40-95 s wall (measured on the shared 2-core machine under load ~14).

What it prints and writes (in `--output`, default `outputs/pretrain_simclr/`):
- a table of kNN accuracy per evaluated epoch, then the final loss and accuracy;
- `views.png`: six images, each beside six augmented views as the step sees them;
- `training.png`: loss, contrastive accuracy, alignment, uniformity and kNN accuracy
  per epoch;
- `encoder.keras` (images -> features, for `kerassl.finetune` or
  `kerassl.zoo.push_to_hub`) and `simclr.keras` (the method, to keep training);
- `results.json`: the recipe and the numbers.

Run:
    python examples/pretrain_simclr.py                        # CIFAR-10 via keras.datasets
    python examples/pretrain_simclr.py --data-path ../shared/data/cifar10-jpeg.tar.gz
    python examples/pretrain_simclr.py --images my_photos/ --image-size 64
    python examples/pretrain_simclr.py --smoke
"""

import argparse
import json
import os
import time


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-path", help="local CIFAR-10 copy (tarball, folder or .npz)")
    parser.add_argument("--images", help="a folder (or .tar.gz) of images, one subfolder per class")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--monitor-every", type=int, default=10, help="epochs between kNN checks")
    parser.add_argument("--output", default="outputs/pretrain_simclr")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny offline run (digits, 2 epochs)")
    return parser.parse_args(argv)


def load_data(args):
    """(x_train, y_train), (x_test, y_test) as uint8 images and int labels."""
    import numpy as np

    from kerassl import datasets

    if args.smoke:
        (x, y), test = datasets.load_digits(image_size=args.image_size, channels=3)
        return (x[:512], y[:512]), test
    if args.images:
        images, labels, _ = datasets.image_folder(args.images, image_size=args.image_size)
        order = np.random.default_rng(args.seed).permutation(len(images))
        cut = max(1, len(images) // 10)  # a tenth held out as kNN queries
        test, train = order[:cut], order[cut:]
        return (images[train], labels[train]), (images[test], labels[test])
    return datasets.cifar10(path=args.data_path)


def main(argv=None):
    args = parse_args(argv)
    if args.smoke:
        args.image_size, args.epochs, args.batch_size, args.monitor_every = 16, 2, 128, 1

    import keras

    import kerassl

    os.makedirs(args.output, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_data(args)
    size = x_train.shape[1]
    print(f"{len(x_train)} training images {x_train.shape[1:]}, {len(x_test)} kNN queries")

    # The encoder: a ResNet-18 with the 3x3 CIFAR stem (a small convnet for the smoke run).
    if args.smoke:
        encoder = kerassl.backbones.small_convnet((size, size, 3), width=16, feature_dim=None)
    else:
        encoder = kerassl.backbones.resnet18(input_shape=(size, size, 3), stem="cifar")

    # The views, built explicitly so that the preview shows exactly what training sees.
    augmenter = kerassl.augment.simclr_augmenter(size, seed=args.seed)
    kerassl.viz.augmentation_preview(
        x_train[:6], augmenter, os.path.join(args.output, "views.png"), num_views=6, seed=args.seed
    )

    # lightly's CIFAR-10 recipe: head 512-2048-128, NT-Xent at T=0.5, SGD with
    # momentum, lr 0.06 x batch/256 decayed by a cosine, weight decay 5e-4.
    model = kerassl.SimCLR(
        encoder, projection_hidden_dim=2048, projection_dim=128, temperature=0.5,
        augmenter=augmenter, seed=args.seed,
    )
    steps = args.epochs * (len(x_train) // args.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(0.06 * args.batch_size / 256, max(steps, 1))
    model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=5e-4))

    # kNN on frozen features: the training images are the bank, the test images the queries.
    bank = min(len(x_train), 10_000)
    monitor = kerassl.evaluate.KNNMonitor(
        x_train[:bank], y_train[:bank], x_test, y_test, every=args.monitor_every, k=200
    )
    start = time.time()
    history = model.fit(
        x_train, epochs=args.epochs, batch_size=args.batch_size, callbacks=[monitor],
        verbose=2,
    )
    seconds = time.time() - start

    model.encoder.save(os.path.join(args.output, "encoder.keras"))
    model.save(os.path.join(args.output, "simclr.keras"))
    kerassl.viz.loss_curve(history, os.path.join(args.output, "training.png"))

    print("\n| epoch | kNN accuracy (k=200) |\n| --- | --- |")
    for epoch, accuracy in sorted(monitor.accuracies.items()):
        print(f"| {epoch + 1} | {accuracy:.3f} |")
    final = {name: float(values[-1]) for name, values in history.history.items()}
    print(f"\nfinal loss {final['loss']:.3f}, contrastive accuracy "
          f"{final['contrastive_accuracy']:.3f}; {seconds:.0f} s of training")
    results = {
        "recipe": vars(args),
        "knn_accuracy_by_epoch": {e + 1: a for e, a in sorted(monitor.accuracies.items())},
        "final_epoch": final,
        "train_seconds": round(seconds, 1),
    }
    with open(os.path.join(args.output, "results.json"), "w") as file:
        json.dump(results, file, indent=2)
    print("wrote", ", ".join(sorted(os.listdir(args.output))), "in", args.output)
    return results


if __name__ == "__main__":
    main()
