"""Publish a pretrained encoder to the Hugging Face Hub with its card, and load it back by revision.

What it shows: the zoo's round trip. A SimCLR model (yours, `--model simclr.keras`
from `pretrain_simclr.py`, or a quick one pretrained here on the digits) is measured
and pushed with `kerassl.zoo.push_to_hub`: one commit holding the encoder, the whole
method, a `metadata.json` with checksums and its input contract, and a model card
with the metrics, tagged `v1.0`. It trains a little more and is pushed again as
`v1.1`. Then it is loaded back by revision from the Hub alone: `hf://repo@v1.0`
gives exactly the first encoder's features, `hf://repo` the latest, and
`kerassl.zoo.load_method` the whole method, ready to keep training. The card is
read back too (`kerassl.zoo.parse_card`).

What it needs:
- a Hub account and a write token (`hf auth login` or `HF_TOKEN`); `--repo
  you/name` names the repository (created if absent, private with `--private`);
- no GPU: pushing is seconds; the quick pretraining (digits, 10 epochs) takes about
  a minute on a CPU; with `--model` nothing trains but the 1 extra epoch;
- `--smoke`: offline. The project's local Hub server (tests/hub_server.py) stands in
  for huggingface.co, with the real `huggingface_hub` client, so every request is
  the one the real Hub gets: 21 s of CPU time, 90-130 s wall (measured on the
  shared 2-core machine under load ~14).

What it prints and writes (in `--output`, default `outputs/publish_to_hub/`):
- the commit URLs of both pushes, the card's metadata, and a table per revision
  loaded: which revision, the largest difference from the features it should have;
- `card.md`: the model card as published at v1.0;
- `results.json`.

Run:
    python examples/publish_to_hub.py --repo me/simclr-digits
    python examples/publish_to_hub.py --repo me/simclr-r18-cifar10 \\
        --model outputs/pretrain_simclr/simclr.keras --dataset cifar10
    python examples/publish_to_hub.py --smoke
"""

import argparse
import json
import os


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", help="the Hub repository, user/name or org/name")
    parser.add_argument("--model", help="a saved kerassl method (.keras); default: pretrain one here")
    parser.add_argument("--dataset", default="digits", choices=("digits", "cifar10"),
                        help="what the model was pretrained on (its kNN accuracy is measured there)")
    parser.add_argument("--cifar10-path", help="local CIFAR-10 copy, with --dataset cifar10")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--output", default="outputs/publish_to_hub")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="offline, through the local Hub server")
    args = parser.parse_args(argv)
    if not args.smoke and not args.repo:
        parser.error("--repo is required (or --smoke)")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.smoke:
        import smoke  # before keras: huggingface_hub reads its endpoint once, at import

        smoke.start_local_hub()
        args.repo, args.epochs = f"{smoke.LOCAL_USER}/simclr-digits", 2

    import huggingface_hub
    import keras
    import numpy as np

    import kerassl

    os.makedirs(args.output, exist_ok=True)
    model = keras.saving.load_model(args.model) if args.model else None
    size = model.encoder.input_shape[1] if model is not None else 16
    # The metric on the card is measured on the data the model was pretrained on.
    if args.dataset == "cifar10":
        (x, y), (x_test, y_test) = kerassl.datasets.cifar10(path=args.cifar10_path, train_limit=10_000)
    else:
        (x, y), (x_test, y_test) = kerassl.datasets.load_digits(image_size=size, channels=3)
    if model is None:
        keras.utils.set_random_seed(args.seed)
        encoder = kerassl.backbones.small_convnet((size, size, 3), width=16 if args.smoke else 32,
                                                  feature_dim=None)
        model = kerassl.SimCLR(encoder, projection_hidden_dim=256, projection_dim=64,
                               temperature=0.2, seed=args.seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    if not args.model:
        model.fit(x, epochs=args.epochs, batch_size=256, verbose=2)

    # v1.0: measured, pushed with its card, tagged.
    knn = kerassl.evaluate.knn_accuracy(model.encoder, x, y, x_test, y_test, k=20, verbose=False)
    protocol = f"weighted kNN, k=20, {args.dataset} test split, bank of {len(x)} training images"
    metrics = {"knn_accuracy": {"value": knn, "protocol": protocol}}
    url_v1 = kerassl.zoo.push_to_hub(model, args.repo, metrics=metrics, dataset=args.dataset,
                                     private=args.private, tag="v1.0")
    print("pushed v1.0:", url_v1)
    probe = x_test[:64]
    features = {"v1.0": model.encoder.predict(probe, verbose=0)}

    # v1.1: one more epoch, pushed again; v1.0 stays reachable by its tag.
    model.fit(x, epochs=1, batch_size=256, verbose=2)
    knn = kerassl.evaluate.knn_accuracy(model.encoder, x, y, x_test, y_test, k=20, verbose=False)
    metrics["knn_accuracy"]["value"] = knn
    url_v2 = kerassl.zoo.push_to_hub(model, args.repo, metrics=metrics, dataset=args.dataset,
                                     tag="v1.1", commit_message="One more epoch")
    print("pushed v1.1:", url_v2)
    features["v1.1"] = features["latest"] = model.encoder.predict(probe, verbose=0)

    # Back from the Hub alone, by revision.
    print("\n| loaded | max abs difference from the pushed features |\n| --- | --- |")
    differences = {}
    for revision in ("v1.0", "v1.1", "latest"):
        source = f"hf://{args.repo}" + ("" if revision == "latest" else f"@{revision}")
        loaded = kerassl.zoo.load_encoder(source)
        differences[source] = float(np.abs(loaded.predict(probe, verbose=0) - features[revision]).max())
        print(f"| {source} | {differences[source]:.2e} |")
    apart = float(np.abs(features["v1.0"] - features["v1.1"]).max())
    print(f"(v1.0 and v1.1 themselves differ by up to {apart:.2e}: two distinct revisions)")
    if differences[f"hf://{args.repo}@v1.0"] > 1e-4:
        raise RuntimeError("the encoder loaded at v1.0 does not give v1.0's features")

    # The card as published at v1.0, and the whole method to keep training.
    card_path = huggingface_hub.hf_hub_download(args.repo, "README.md", revision="v1.0")
    with open(card_path, encoding="utf-8") as file:
        card = file.read()
    with open(os.path.join(args.output, "card.md"), "w", encoding="utf-8") as file:
        file.write(card)
    print("\ncard metadata at v1.0:", json.dumps(kerassl.zoo.parse_card(card)[0], default=str)[:400])
    method = kerassl.zoo.load_method(f"hf://{args.repo}@v1.1")
    method.compile(optimizer=keras.optimizers.Adam(1e-3))
    method.fit(x, epochs=1, batch_size=256, verbose=2)
    print(f"loaded {type(method).__name__} from v1.1 and trained it one more epoch")
    with open(os.path.join(args.output, "results.json"), "w") as file:
        json.dump({"repo": args.repo, "commits": [url_v1, url_v2], "max_abs_difference": differences},
                  file, indent=2)
    print("wrote card.md and results.json in", args.output)
    return differences


if __name__ == "__main__":
    main()
