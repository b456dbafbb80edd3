"""MAE: hide three quarters of every image, learn to redraw it, then fine-tune the encoder.

What it shows: a masked autoencoder (He et al., 2022, https://arxiv.org/abs/2111.06377)
pretrains a ViT by reconstructing random 75% of the patches from the visible 25%;
the reconstructions of held-out images are drawn before and after pretraining (the
figure of the paper, at small scale); then the pretrained encoder is fine-tuned on a
few labels (`kerassl.finetune(..., mode="full")`) next to the same ViT from a random
init, the comparison that says whether reconstruction taught it anything.

The authors' own MAE ViT-B/16 loads the same way from the zoo once the
official-checkpoint converters are in (`kerassl.zoo.load_method("mae_vitb16")`
returns a `kerassl.MAE` with the official decoder, whose `reconstruct` and
`kerassl.viz.mae_reconstructions` work as below).

What it needs:
- data: CIFAR-10 (`keras.datasets` download, or `--cifar10-path`);
- full size (ViT-tiny, patch 4, 50,000 images, 100 epochs, then 1,000 labels): about
  1 h on one recent GPU (estimated), about 40 h on a 2-core CPU (estimated from the
  ViT-tiny MAE step throughput in benchmarks/results/quiet-vit/);
- `--smoke`: 300 digits at 16 px, a one-block ViT, 2 epochs: 18 s of CPU time,
  65-150 s wall (measured on the shared 2-core machine under load ~14).

What it prints and writes (in `--output`, default `outputs/mae_reconstruct/`):
- the reconstruction loss per epoch, and a table of fine-tuned test accuracy,
  pretrained against random init;
- `reconstructions_before.png` and `reconstructions.png`: originals, masked inputs
  and reconstructions of 8 held-out images, before and after pretraining;
- `training.png`: the reconstruction loss per epoch;
- `mae.keras` and `results.json`.

Run:
    python examples/mae_reconstruct.py --cifar10-path ../shared/data/cifar10-jpeg.tar.gz
    python examples/mae_reconstruct.py --smoke
"""

import argparse
import json
import os


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cifar10-path", help="local CIFAR-10 copy (tarball, folder or .npz)")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--mask-ratio", type=float, default=0.75)
    parser.add_argument("--labels-per-class", type=int, default=100)
    parser.add_argument("--finetune-epochs", type=int, default=30)
    parser.add_argument("--output", default="outputs/mae_reconstruct")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny offline run (digits, 2 epochs)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.smoke:
        args.epochs, args.batch_size, args.labels_per_class, args.finetune_epochs = 2, 100, 10, 1

    import keras
    import numpy as np

    import kerassl

    os.makedirs(args.output, exist_ok=True)
    if args.smoke:
        (x, y), (x_test, y_test) = kerassl.datasets.load_digits(image_size=16)
        x, y = x[:300], y[:300]
    else:
        (x, y), (x_test, y_test) = kerassl.datasets.cifar10(path=args.cifar10_path)
    size, channels = x.shape[1], x.shape[-1]

    def vit():
        keras.utils.set_random_seed(args.seed)
        if args.smoke:
            return kerassl.backbones.vit.vit(size, patch_size=4, channels=channels, hidden_dim=32,
                                             depth=1, num_heads=2)
        return kerassl.backbones.vit_tiny(image_size=size, patch_size=4, channels=channels)

    small = dict(decoder_dim=32, decoder_depth=1, decoder_num_heads=2) if args.smoke else {}
    mae = kerassl.MAE(vit(), mask_ratio=args.mask_ratio, seed=args.seed, **small)
    # The paper's rule: base rate 1.5e-4 x batch / 256, AdamW with weight decay 0.05.
    mae.compile(optimizer=keras.optimizers.AdamW(1.5e-4 * args.batch_size / 256, weight_decay=0.05))
    kerassl.viz.mae_reconstructions(
        mae, x_test[:8], os.path.join(args.output, "reconstructions_before.png")
    )
    history = mae.fit(x, epochs=args.epochs, batch_size=args.batch_size, verbose=2)
    kerassl.viz.mae_reconstructions(mae, x_test[:8], os.path.join(args.output, "reconstructions.png"))
    kerassl.viz.loss_curve(history, os.path.join(args.output, "training.png"))
    mae.save(os.path.join(args.output, "mae.keras"))

    # Fine-tuning on a few labels: the pretrained encoder against the same ViT untrained.
    rng = np.random.default_rng(args.seed)
    few = np.concatenate([rng.choice(np.flatnonzero(y == c), args.labels_per_class, replace=False)
                          for c in np.unique(y)])
    test = (x_test[:2000], y_test[:2000])
    num_classes = int(y.max()) + 1
    results = {"reconstruction_loss": [float(v) for v in history.history["loss"]]}
    print(f"\nfine-tuned on {len(few)} labels, tested on {len(test[0])} images")
    print("| encoder | test accuracy |\n| --- | --- |")
    for name, encoder in (("MAE pretrained", mae.encoder), ("random init", vit())):
        classifier = kerassl.finetune(encoder, (x[few], y[few]), num_classes, mode="full",
                                      epochs=args.finetune_epochs, batch_size=64, verbose=0,
                                      seed=args.seed)
        accuracy = float(np.mean(classifier.predict(test[0], verbose=0).argmax(-1) == test[1]))
        results[name] = accuracy
        print(f"| {name} | {accuracy:.3f} |")
    with open(os.path.join(args.output, "results.json"), "w") as file:
        json.dump({"settings": vars(args), "results": results}, file, indent=2)
    print("wrote", ", ".join(sorted(os.listdir(args.output))), "in", args.output)
    return results


if __name__ == "__main__":
    main()
