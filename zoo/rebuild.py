"""Rebuild one zoo entry end to end: train, evaluate, write metrics and card, push.

    python zoo/rebuild.py simclr_resnet18_cifar10 --data-path /path/to/cifar10 --push --tag v1.0
    python zoo/rebuild.py simclr_resnet18_cifar10 --data-path /path/to/cifar10 --smoke

Everything the run does comes from `zoo/<entry>/recipe.json` plus the entry's
preset in `kerassl/zoo/presets.py` (hub id, method, backbone, dataset: written once). Only a full run
of that recipe rewrites `zoo/<entry>/metrics.json`; a smoke run or a run with
overridden settings writes its results under --output-dir only, so a quick test
never replaces published figures. Needs a GPU for a full run (about 25 minutes
per CIFAR-10 epoch on a 2-core CPU).
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

ZOO = pathlib.Path(__file__).resolve().parent


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("entry", help="folder name under zoo/, e.g. simclr_resnet18_cifar10")
    parser.add_argument("--data-path", help="local CIFAR-10 copy (tarball, folder or .npz); default: download")
    parser.add_argument("--output-dir", default=None, help="where the trained files go (default: a temp dir)")
    parser.add_argument("--epochs", type=int, help="override the recipe (marks the run as not the recipe)")
    parser.add_argument("--train-limit", type=int, help="train on this many images (not the recipe)")
    parser.add_argument("--test-limit", type=int, help="evaluate on this many test images (not the recipe)")
    parser.add_argument("--smoke", action="store_true", help="1 epoch, 512 train / 512 test images, no push")
    parser.add_argument("--push", action="store_true", help="push to the recipe's hub_id (or --repo-id)")
    parser.add_argument("--repo-id", help="push here instead of the recipe's hub_id")
    parser.add_argument("--tag", help="tag the pushed commit, e.g. v1.0")
    parser.add_argument("--token", help="Hub write token (default: HF_TOKEN or the saved login)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.epochs, args.train_limit, args.test_limit = 1, 512, 512
        if args.push and not args.repo_id:
            parser.error("--smoke --push needs an explicit --repo-id: never push a smoke run to the zoo id")
    return args


def read_recipe(entry):
    folder = ZOO / entry
    if not (folder / "recipe.json").is_file():
        known = sorted(p.name for p in ZOO.iterdir() if (p / "recipe.json").is_file())
        raise SystemExit(f"error: no zoo/{entry}/recipe.json; entries: {', '.join(known)}")
    return folder, merge_preset(entry, json.loads((folder / "recipe.json").read_text()))


# The facts a preset and its recipe share live once, in kerassl/zoo/presets.py.
PRESET_FACTS = ("hub_id", "method", "backbone", "backbone_kwargs", "dataset")


def merge_preset(entry, recipe):
    """The recipe with the preset's facts (hub id, method, backbone, dataset) filled in."""
    import kerassl.zoo

    preset = kerassl.zoo.get_preset(entry)
    repeated = sorted(set(recipe) & set(PRESET_FACTS))
    if repeated:
        raise SystemExit(
            f"error: zoo/{entry}/recipe.json repeats {', '.join(repeated)}; those live in "
            "kerassl/zoo/presets.py only"
        )
    return {**recipe, **{key: preset[key] for key in PRESET_FACTS if key in preset}}


def make_optimizer(recipe, steps):
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(recipe["learning_rate"], max(steps, 1))
    if recipe["optimizer"] == "sgd":
        return keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=recipe.get("weight_decay") or None)
    if recipe["optimizer"] == "adamw":
        return keras.optimizers.AdamW(schedule, weight_decay=recipe.get("weight_decay") or 0.05)
    return keras.optimizers.Adam(schedule)


def build_method(recipe):
    import kerassl
    import kerassl.backbones

    if recipe["method"] != "SimCLR":
        raise SystemExit(f"error: rebuild.py knows SimCLR recipes; got {recipe['method']}")
    kwargs = dict(recipe.get("backbone_kwargs", {}))
    kwargs["input_shape"] = tuple(kwargs.get("input_shape", (32, 32, 3)))
    encoder = getattr(kerassl.backbones, recipe["backbone"])(**kwargs)
    return kerassl.SimCLR(encoder, seed=recipe.get("seed", 0), **recipe.get("method_kwargs", {}))


def train(recipe, x_train, epochs):
    import keras
    import numpy as np

    keras.utils.set_random_seed(recipe.get("seed", 0))
    method = build_method(recipe)
    steps = epochs * int(np.ceil(len(x_train) / recipe["batch_size"]))
    method.compile(optimizer=make_optimizer(recipe, steps), jit_compile=recipe.get("jit_compile", "auto"))
    start = time.time()
    method.fit(x_train, epochs=epochs, batch_size=recipe["batch_size"], verbose=2)
    return method, time.time() - start


def evaluate(recipe, encoder, data):
    import kerassl.evaluate

    (x_train, y_train), (x_test, y_test) = data
    protocol = recipe["evaluation"]
    accuracy = kerassl.evaluate.knn_accuracy(
        encoder, x_train, y_train, x_test, y_test, k=protocol["k"], temperature=protocol["temperature"]
    )
    description = (
        f"weighted kNN (k={protocol['k']}, T={protocol['temperature']}, cosine) on frozen encoder "
        f"features; bank: {len(x_train):,} CIFAR-10 training images, queries: {len(x_test):,} test images"
    )
    return {"knn_accuracy": {"value": float(accuracy), "protocol": description}}


def device_description():
    import keras

    backend = keras.config.backend()
    devices = "unknown"
    try:
        if backend == "jax":
            import jax

            devices = ", ".join(sorted({d.device_kind for d in jax.devices()}))
        elif backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            devices = f"{len(gpus)} GPU(s)" if gpus else f"CPU ({os.cpu_count()} cores)"
    except Exception:
        pass
    return {"backend": backend, "devices": devices, "platform": platform.platform()}


def public_args(argv):
    """The command-line arguments without the token, for the card."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--token":
            skip = True
        elif not arg.startswith("--token="):
            kept.append(arg)
    return kept


def write_json_atomic(path, data):
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    folder, recipe = read_recipe(args.entry)
    is_recipe_run = args.epochs is None and args.train_limit is None and args.test_limit is None
    epochs = args.epochs or recipe["epochs"]
    output = pathlib.Path(args.output_dir or tempfile.mkdtemp(prefix=f"kerassl-{args.entry}-"))
    output.mkdir(parents=True, exist_ok=True)

    import keras

    import kerassl
    import kerassl.datasets
    import kerassl.zoo

    data = kerassl.datasets.cifar10(path=args.data_path, train_limit=args.train_limit, test_limit=args.test_limit)
    method, train_seconds = train(recipe, data[0][0], epochs)
    metrics = evaluate(recipe, method.encoder, data)
    record = {
        "entry": args.entry,
        "status": "measured" if is_recipe_run else "measured on a shortened run (not the recipe)",
        "dataset": recipe["dataset"],
        "metrics": metrics,
        "measured": {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "epochs": epochs,
            "train_images": int(len(data[0][0])),
            "train_seconds": round(train_seconds, 1),
            "kerassl_version": kerassl.__version__,
            "keras_version": keras.__version__,
            "python": sys.version.split()[0],
            **device_description(),
        },
    }
    write_json_atomic(output / "metrics.json", record)
    if is_recipe_run:
        write_json_atomic(folder / "metrics.json", record)
    print(json.dumps(record, indent=2))

    card_extra = {
        "recipe": (
            recipe["pretrain_command"] if is_recipe_run
            else "python zoo/rebuild.py " + " ".join(public_args(argv))
        ),
        "evaluation": recipe["evaluate_command"],
        "training": {
            "epochs": epochs,
            "batch size": recipe["batch_size"],
            "optimizer": (
                f"{recipe['optimizer']}, lr {recipe['learning_rate']} "
                f"({recipe.get('learning_rate_note', '')})"
            ),
            "weight decay": recipe.get("weight_decay"),
            "seed": recipe.get("seed"),
            "train images": int(len(data[0][0])),
            "wall time (s)": round(train_seconds, 1),
            "hardware": record["measured"]["devices"],
        },
    }
    preset = kerassl.zoo.save_preset(
        method, output / "preset", dataset=recipe["dataset"], metrics=metrics, card_extra=card_extra,
        repo_id=args.repo_id or recipe["hub_id"], overwrite=True,
    )
    print(f"preset folder with its card: {preset}")
    if args.push:
        repo_id = args.repo_id or recipe["hub_id"]
        if not is_recipe_run and repo_id == recipe["hub_id"]:
            raise SystemExit("error: this run is not the recipe; push it to another --repo-id")
        url = kerassl.zoo.push_to_hub(
            method, repo_id, metrics=metrics, dataset=recipe["dataset"], token=args.token,
            card_extra=card_extra, tag=args.tag,
        )
        print(f"pushed: {url}")
        if is_recipe_run:
            print(
                f"now update kerassl/zoo/presets.py: PRESETS[{args.entry!r}] "
                f"revision={args.tag or url.rsplit('/', 1)[-1]!r}, "
                f"published=True, metrics={json.dumps(metrics)}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
