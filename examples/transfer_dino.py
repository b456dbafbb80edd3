"""Transfer learning with an official checkpoint: DINO ViT-S/16 against a ResNet from scratch.

What it shows: the transfer-learning story of the field in one file. The authors'
DINO ViT-S/16 (Caron et al., 2021, https://arxiv.org/abs/2104.14294) is loaded from
the zoo by name (`kerassl.zoo.load_encoder("dino_vits16")`: the Hub repo
facebook/dino-vits16 at its pinned revision, converted to a Keras encoder on load);
its last block's CLS attention is drawn over a few images (it outlines objects
without ever having seen a label); then it is fine-tuned on a small labeled set with
`kerassl.finetune`, first linearly (frozen encoder, a softmax on its features), then
fully (every weight, the encoder at a tenth of the head's learning rate); and a
ResNet-18 trained from scratch on the same labels shows what pretraining buys.

What it needs:
- the Hugging Face Hub (about 90 MB of weights, cached after the first run), and
  CIFAR-10 (`keras.datasets` download, or `--cifar10-path`), upsampled to 224 px
  inside the model as the checkpoint expects (`--image-size` to change);
- a GPU: full size (1,000 labels, 10 linear + 10 full epochs at 224 px, the ResNet
  50 epochs at 32 px, 2,000 test images) takes about 10 min on one recent GPU
  (estimated: ViT-S/16 runs at about 1,000 img/s forward+backward there), and about
  3 h on a 2-core CPU (estimated from ViT-S/16's 4.6 GFLOPs a 224 px image and the
  ~0.4 TFLOP/s measured in ../shared/FACTS.md);
- `--smoke`: offline. A tiny random ViT in the same transformers layout as the
  official repo (tests/data/official/dino_vit, served by the local Hub under
  facebook/dino-vits16, so the same download and conversion code runs) on 32 px
  digits, 1 epoch each: 16 s of CPU time, 60 s wall (measured on the shared
  2-core machine under load ~14). Its accuracies mean nothing.

What it prints and writes (in `--output`, default `outputs/transfer_dino/`):
- a table: model, fine-tuning mode, labels used, test accuracy;
- `attention.png`: images, the mean CLS attention over them, and one row per head;
- `finetuning.png`: validation accuracy per epoch of each of the three runs;
- `results.json`.

Run:
    python examples/transfer_dino.py --cifar10-path ../shared/data/cifar10-jpeg.tar.gz
    python examples/transfer_dino.py --labels-per-class 10 --image-size 112
    python examples/transfer_dino.py --smoke
"""

import argparse
import json
import os


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="dino_vits16", help="a zoo name or hf://org/repo@rev")
    parser.add_argument("--cifar10-path", help="local CIFAR-10 copy (tarball, folder or .npz)")
    parser.add_argument("--image-size", type=int, default=224, help="size the ViT sees")
    parser.add_argument("--labels-per-class", type=int, default=100)
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=10, help="epochs of each fine-tuning stage")
    parser.add_argument("--scratch-epochs", type=int, default=50, help="epochs of the ResNet")
    parser.add_argument("--output", default="outputs/transfer_dino")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny offline run (stand-in ViT, digits)")
    return parser.parse_args(argv)


def few_labels(labels, per_class, seed):
    """Indices of `per_class` examples of every class, fixed by `seed`."""
    import numpy as np

    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
             for c in np.unique(labels)]
    return np.sort(np.concatenate(picks))


def main(argv=None):
    args = parse_args(argv)
    if args.smoke:
        # Before keras: huggingface_hub reads its endpoint once, at import.
        import smoke

        smoke.serve_official(smoke.start_local_hub(), args.preset)
        args.image_size, args.labels_per_class, args.test_size = 32, 10, 200
        args.epochs, args.scratch_epochs = 1, 1

    import keras
    import numpy as np

    import kerassl

    os.makedirs(args.output, exist_ok=True)
    if args.smoke:
        (x, y), (x_test, y_test) = kerassl.datasets.load_digits(image_size=32, channels=3)
    else:
        (x, y), (x_test, y_test) = kerassl.datasets.cifar10(path=args.cifar10_path)
    few = few_labels(y, args.labels_per_class, args.seed)
    train = (x[few], y[few])
    test = (x_test[: args.test_size], y_test[: args.test_size])
    num_classes = int(y.max()) + 1
    print(f"{len(few)} labeled training images {x.shape[1:]}, {len(test[0])} test images")

    # 1. The official checkpoint, by name. The converted encoder takes [0, 1] or uint8
    # images and applies the checkpoint's mean and std itself.
    vit = kerassl.zoo.load_encoder(args.preset, image_size=args.image_size)
    print(f"{args.preset}: {vit.count_params():,} parameters, "
          f"{vit.output_shape[-1]}-d features at {args.image_size} px")

    # 2. Where its CLS token looks, on images upsampled to the size it was built for.
    shown = keras.ops.convert_to_numpy(
        keras.ops.image.resize(test[0][:6].astype("float32") / 255.0, (args.image_size,) * 2)
    ).clip(0.0, 1.0)
    kerassl.viz.attention_maps(vit, shown, os.path.join(args.output, "attention.png"))

    # 3. The small images are upsampled inside the model, so the data stays at 32 px.
    inputs = keras.Input(x.shape[1:])
    resized = keras.layers.Resizing(args.image_size, args.image_size)(inputs)
    encoder = keras.Model(inputs, vit(resized), name="dino_at_input_size")

    runs = {}
    linear = kerassl.finetune(encoder, train, num_classes, mode="linear", epochs=args.epochs,
                              batch_size=64, validation_data=test, verbose=2, seed=args.seed)
    runs[f"{args.preset}, linear"] = linear
    full = kerassl.finetune(encoder, train, num_classes, mode="full", epochs=args.epochs,
                            batch_size=64, validation_data=test, verbose=2, seed=args.seed)
    runs[f"{args.preset}, full"] = full

    # 4. The same labels, no pretraining: a ResNet-18 (CIFAR stem) at the images' own size,
    # every weight at the same learning rate.
    if args.smoke:
        scratch = kerassl.backbones.small_convnet(x.shape[1:], width=16, feature_dim=None)
    else:
        scratch = kerassl.backbones.resnet18(input_shape=x.shape[1:], stem="cifar")
    runs[f"{scratch.name} from scratch"] = kerassl.finetune(
        scratch, train, num_classes, mode="full", epochs=args.scratch_epochs,
        encoder_learning_rate_scale=1.0, batch_size=64, validation_data=test,
        augment=keras.layers.RandomFlip("horizontal") if not args.smoke else None,
        verbose=2, seed=args.seed,
    )

    results = {}
    print("\n| model | labels | test accuracy |\n| --- | --- | --- |")
    for name, classifier in runs.items():
        accuracy = float(np.mean(classifier.predict(test[0], verbose=0).argmax(-1) == test[1]))
        results[name] = {"test_accuracy": accuracy,
                         "val_accuracy": classifier.history.history["val_accuracy"]}
        print(f"| {name} | {len(few)} | {accuracy:.3f} |")
    kerassl.viz.loss_curve(
        {f"{name}: val_accuracy": r["val_accuracy"] for name, r in results.items()},
        os.path.join(args.output, "finetuning.png"),
    )
    with open(os.path.join(args.output, "results.json"), "w") as file:
        json.dump({"settings": vars(args), "runs": results}, file, indent=2)
    print("wrote attention.png, finetuning.png and results.json in", args.output)
    return results


if __name__ == "__main__":
    main()
