"""CLIP on your own image-caption pairs: zero-shot classification and retrieval.

What it shows: a CSV of `path,caption` rows (relative paths are relative to the CSV)
is all CLIP needs (Radford et al., 2021, https://arxiv.org/abs/2103.00020). The
pairs are read with `kerassl.captions.read_captions`, a word vocabulary is built from
the training captions, and an image encoder and a text transformer are trained
together so that each image picks its own caption in the batch. Then, on held-out
pairs: zero-shot classification from class names alone (`clip.zero_shot_classifier`,
scored when the CSV has a label column), image<->text recall@k
(`kerassl.evaluate.retrieval_recall`), and the images retrieved for a few captions.

What it needs:
- data: your pairs (`--captions pairs.csv`); optionally `--class-names` and a
  `--label-column` holding one of those names per row, for zero-shot accuracy;
- full size (10,000 pairs at 64 px, ResNet-18 and a 4-block text transformer, 30
  epochs): about 10 min on one recent GPU and about 5 h on a 2-core CPU (both
  estimated from the measured SimCLR throughput in ../shared/FACTS.md: one image
  pass instead of two, at 4x the pixels);
- `--smoke`: writes 600 digits as PNG files with captions made from their labels
  ("a photo of a three.") and a `pairs.csv`, then runs the same code on them: 13 s
  of CPU time, 50-115 s wall (measured on the shared 2-core machine under load ~14).

What it prints and writes (in `--output`, default `outputs/clip_captions/`):
- zero-shot accuracy (with labels) against chance, and recall@1/5 in both directions;
- `retrieval.png`: for each query caption, the 5 held-out images CLIP ranks first;
- `training.png`: loss, in-batch accuracies and the logit scale per epoch;
- `clip.keras` (strings in, embeddings out: the tokenizer is saved inside) and
  `results.json`.

Run:
    python examples/clip_captions.py --captions pairs.csv --class-names cat,dog,bird \\
        --label-column label --queries "a photo of a cat.,a dog on grass"
    python examples/clip_captions.py --smoke
"""

import argparse
import csv
import json
import os


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--captions", help="CSV (or JSONL) with a path and a caption column")
    parser.add_argument("--class-names", help="comma-separated names for zero-shot classification")
    parser.add_argument("--label-column", help="CSV column holding each row's class name")
    parser.add_argument("--queries", help="comma-separated captions to retrieve images for")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--output", default="outputs/clip_captions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny offline run on digits written as PNGs")
    args = parser.parse_args(argv)
    if not args.smoke and not args.captions:
        parser.error("--captions is required (or --smoke)")
    return args


def write_digit_pairs(folder):
    """The smoke run's 'user data': digits as PNG files and a pairs.csv describing them."""
    from PIL import Image

    import kerassl

    (x, y), _ = kerassl.datasets.load_digits(image_size=16)
    x, y = x[:600], y[:600]
    captions = kerassl.captions.captions_from_labels(y, kerassl.captions.DIGIT_NAMES, seed=0)
    os.makedirs(os.path.join(folder, "images"), exist_ok=True)
    with open(os.path.join(folder, "pairs.csv"), "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["path", "caption", "label"])
        for i, (image, label, caption) in enumerate(zip(x, y, captions)):
            name = f"images/{i:04d}.png"
            Image.fromarray(image[..., 0]).save(os.path.join(folder, name))
            writer.writerow([name, caption, kerassl.captions.DIGIT_NAMES[label]])
    return os.path.join(folder, "pairs.csv")


def read_column(path, column):
    with open(path, encoding="utf-8", newline="") as file:
        return [row[column] for row in csv.DictReader(file)]


def main(argv=None):
    args = parse_args(argv)
    import keras
    import numpy as np

    import kerassl

    os.makedirs(args.output, exist_ok=True)
    if args.smoke:
        args.captions = write_digit_pairs(os.path.join(args.output, "smoke_pairs"))
        args.class_names = ",".join(kerassl.captions.DIGIT_NAMES)
        args.label_column, args.queries = "label", "a photo of a three.,a drawing of a seven."
        args.image_size, args.epochs, args.batch_size = 16, 3, 100

    channels = 1 if args.smoke else 3
    images, captions = kerassl.captions.read_captions(
        args.captions, image_size=args.image_size, channels=channels
    )
    labels = read_column(args.captions, args.label_column) if args.label_column else None
    order = np.random.default_rng(args.seed).permutation(len(images))
    cut = max(2, len(images) // 5)  # a fifth held out
    test, train = order[:cut], order[cut:]
    print(f"{len(train)} training pairs, {len(test)} held out, images {images.shape[1:]}")

    keras.utils.set_random_seed(args.seed)
    tokenizer = kerassl.text.Tokenizer.from_texts(captions[train], max_length=32)
    if args.smoke:
        image_encoder = kerassl.backbones.small_convnet(images.shape[1:], width=16, feature_dim=64)
        text_encoder = kerassl.text.TextEncoder(tokenizer.vocab_size, max_length=32, width=32,
                                                depth=1, num_heads=2)
    else:
        image_encoder = kerassl.backbones.resnet18(input_shape=images.shape[1:])
        text_encoder = kerassl.text.TextEncoder(tokenizer.vocab_size, max_length=32, width=256,
                                                depth=4, num_heads=4)
    clip = kerassl.CLIP(image_encoder, text_encoder, embed_dim=128, tokenizer=tokenizer,
                        seed=args.seed)
    clip.compile(optimizer=keras.optimizers.AdamW(3e-3 if args.smoke else 5e-4, weight_decay=0.1))
    dataset = kerassl.captions.to_dataset(images[train], captions[train], tokenizer,
                                          batch_size=args.batch_size, seed=args.seed)
    history = clip.fit(dataset, epochs=args.epochs, verbose=2)
    clip.save(os.path.join(args.output, "clip.keras"))
    kerassl.viz.loss_curve(history, os.path.join(args.output, "training.png"))

    results = {}
    if args.class_names:
        names = args.class_names.split(",")
        zero_shot = clip.zero_shot_classifier(names, templates=kerassl.captions.DEFAULT_TEMPLATES)
        predicted = zero_shot.predict(images[test], verbose=0).argmax(-1)
        if labels is not None:
            truth = np.array([names.index(labels[i]) for i in test])
            results["zero_shot_accuracy"] = float(np.mean(predicted == truth))
            print(f"\nzero-shot accuracy over {len(names)} class names: "
                  f"{results['zero_shot_accuracy']:.3f} (chance {1 / len(names):.3f})")
        else:
            print("\nzero-shot predictions of the first held-out images:",
                  [names[p] for p in predicted[:8]])
    recall = kerassl.evaluate.retrieval_recall(clip, images[test], captions[test], k=(1, 5))
    results.update(recall)
    print("\n| direction | recall@1 | recall@5 |\n| --- | --- | --- |")
    for direction in ("image_to_text", "text_to_image"):
        print(f"| {direction.replace('_', ' ')} | {recall[f'{direction}_recall@1']:.3f} | "
              f"{recall[f'{direction}_recall@5']:.3f} |")

    # The held-out images ranked first for each query: cosine of normalized embeddings.
    queries = args.queries.split(",") if args.queries else list(dict.fromkeys(captions[test]))[:4]
    similarity = clip.encode_text(queries) @ clip.encode_image(images[test]).T
    top = np.argsort(-similarity, axis=1)[:, :5]
    kerassl.viz.image_grid(
        [images[test][row] for row in top], os.path.join(args.output, "retrieval.png"),
        row_titles=[q if len(q) <= 20 else q[:18] + "..." for q in queries],
        col_titles=[f"top {i + 1}" for i in range(5)],
    )
    with open(os.path.join(args.output, "results.json"), "w") as file:
        json.dump({"settings": vars(args), "results": results}, file, indent=2)
    print("wrote retrieval.png, training.png, clip.keras and results.json in", args.output)
    return results


if __name__ == "__main__":
    main()
