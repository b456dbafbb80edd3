"""The `kerassl` command: demo, pretrain, evaluate, finetune, zoo.

Examples:
    kerassl demo
    kerassl pretrain --method simclr --data cifar10 --data-path cifar10-jpeg.tar.gz \
        --backbone resnet18 --epochs 100 --output simclr_r18.keras
    kerassl evaluate --encoder simclr_r18.keras --data cifar10 --data-path ...
    kerassl finetune --encoder simclr_r18.keras --data cifar10 --labels-per-class 100
    kerassl zoo list
"""

import argparse
import json
import os
import sys
import warnings

METHODS = ("simclr",)
DATASETS = ("digits", "mnist", "cifar10")


def load_data(name, path=None, image_size=None, train_limit=None):
    """((x_train, y_train), (x_test, y_test)) for a dataset name or an image folder."""
    from kerassl import datasets

    if name == "digits":
        return datasets.load_digits(image_size=image_size or 8)
    if name == "mnist":
        return datasets.mnist(path=path, train_limit=train_limit)
    if name == "cifar10":
        return datasets.cifar10(path=path, train_limit=train_limit)
    if os.path.isdir(name):
        splits = [os.path.join(name, s) for s in ("train", "test")]
        if not all(os.path.isdir(s) for s in splits):
            raise SystemExit(f"error: an image folder needs train/ and test/ subfolders: {name}")
        size = (image_size or 32, image_size or 32)
        loaded = []
        for split in splits:
            # Unreadable files are left out and listed, not fatal after hours of decoding.
            report = datasets.FolderReport()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # the report below says it
                loaded.append(
                    datasets.image_folder(
                        split, image_size=size, limit=train_limit, on_error="skip", report=report
                    )[:2]
                )
            if report:
                print(f"{split}: {report}", file=sys.stderr)
        return tuple(loaded)
    raise SystemExit(f"error: unknown dataset {name!r}; use one of {DATASETS} or a folder")


def load_encoder(source):
    """An encoder from a `.keras` file, a preset folder, a preset name or hf://."""
    from kerassl import zoo

    return zoo.load_encoder(source)


def _save(model, path):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    model.save(path)
    print(f"saved {path}")


def cmd_demo(args):
    from kerassl.demo import run_demo

    run_demo(output_dir=args.output_dir, epochs=args.epochs, seed=args.seed)


def make_optimizer(name, learning_rate, weight_decay, steps):
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(steps, 1))
    if name == "sgd":
        return keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=weight_decay or None)
    if name == "adamw":
        return keras.optimizers.AdamW(schedule, weight_decay=weight_decay or 0.05)
    return keras.optimizers.Adam(schedule)


def cmd_pretrain(args):
    import keras
    import numpy as np

    import kerassl
    from kerassl import backbones, evaluate

    (x_train, y_train), (x_test, y_test) = load_data(
        args.data, args.data_path, args.image_size, args.train_limit
    )
    keras.utils.set_random_seed(args.seed)
    encoder = backbones.get(args.backbone, input_shape=x_train.shape[1:])
    method = kerassl.SimCLR(
        encoder, temperature=args.temperature, num_classes=int(np.max(y_train)) + 1, seed=args.seed
    )
    steps = args.epochs * int(np.ceil(len(x_train) / args.batch_size))
    method.compile(
        optimizer=make_optimizer(args.optimizer, args.learning_rate, args.weight_decay, steps),
        jit_compile=args.jit_compile,
    )
    callbacks = []
    if args.knn_every:
        callbacks.append(
            evaluate.KNNMonitor(x_train, y_train, x_test, y_test, every=args.knn_every, k=args.knn_k)
        )
    method.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, callbacks=callbacks)
    _save(method.encoder, args.output)
    if args.save_method:
        _save(method, args.save_method)


def cmd_evaluate(args):
    from kerassl import evaluate

    (x_train, y_train), (x_test, y_test) = load_data(args.data, args.data_path, args.image_size)
    encoder = load_encoder(args.encoder)
    results = {
        "knn_accuracy": evaluate.knn_accuracy(
            encoder, x_train, y_train, x_test, y_test, k=args.k, temperature=args.temperature
        )
    }
    if args.linear:
        results["linear_probe_accuracy"] = evaluate.linear_probe(
            encoder, x_train, y_train, x_test, y_test
        )
    print(json.dumps(results, indent=2))


def cmd_finetune(args):
    import numpy as np

    import kerassl

    (x_train, y_train), (x_test, y_test) = load_data(args.data, args.data_path, args.image_size)
    encoder = load_encoder(args.encoder)
    if args.labels_per_class:
        from kerassl.demo import few_labels

        keep = few_labels(y_train, args.labels_per_class, args.seed)
        x_train, y_train = x_train[keep], y_train[keep]
    classifier = kerassl.finetune(
        encoder,
        (x_train, y_train),
        num_classes=int(np.max(y_train)) + 1,
        mode=args.mode,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_data=(x_test, y_test),
    )
    accuracy = float(np.mean(np.argmax(classifier.predict(x_test, verbose=0), -1) == y_test))
    print(json.dumps({"test_accuracy": accuracy, "train_images": len(x_train)}, indent=2))
    _save(classifier, args.output)


def cmd_zoo(args):
    from kerassl.zoo import cli as zoo_cli

    return zoo_cli.main(args.zoo_args)


def build_parser():
    parser = argparse.ArgumentParser(prog="kerassl", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")

    demo = sub.add_parser("demo", help="pretrain SimCLR on the embedded digits (CPU, minutes)")
    demo.add_argument("--output-dir", default="outputs/demo")
    demo.add_argument("--epochs", type=int, default=None)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=cmd_demo)

    def data_args(p):
        p.add_argument("--data", default="digits", help=f"{', '.join(DATASETS)} or a folder")
        p.add_argument("--data-path", default=None, help="local copy of the dataset files")
        p.add_argument("--image-size", type=int, default=None)

    pretrain = sub.add_parser("pretrain", help="pretrain an encoder without labels")
    pretrain.add_argument("--method", choices=METHODS, default="simclr")
    data_args(pretrain)
    pretrain.add_argument("--train-limit", type=int, default=None)
    pretrain.add_argument("--backbone", default="resnet18")
    pretrain.add_argument("--epochs", type=int, default=10)
    pretrain.add_argument("--batch-size", type=int, default=256)
    pretrain.add_argument("--optimizer", choices=("adam", "adamw", "sgd"), default="adam")
    pretrain.add_argument("--learning-rate", type=float, default=1e-3)
    pretrain.add_argument("--weight-decay", type=float, default=0.0)
    pretrain.add_argument("--temperature", type=float, default=0.5)
    pretrain.add_argument("--jit-compile", default="auto")
    pretrain.add_argument("--knn-every", type=int, default=0, help="kNN monitor every N epochs")
    pretrain.add_argument("--knn-k", type=int, default=200)
    pretrain.add_argument("--seed", type=int, default=0)
    pretrain.add_argument("--output", default="encoder.keras")
    pretrain.add_argument("--save-method", default=None, help="also save the whole method")
    pretrain.set_defaults(func=cmd_pretrain)

    evaluate = sub.add_parser("evaluate", help="kNN (and linear-probe) accuracy of an encoder")
    evaluate.add_argument("--encoder", required=True, help=".keras file, folder, preset or hf://")
    data_args(evaluate)
    evaluate.add_argument("--k", type=int, default=200)
    evaluate.add_argument("--temperature", type=float, default=0.1)
    evaluate.add_argument("--linear", action="store_true")
    evaluate.set_defaults(func=cmd_evaluate)

    finetune = sub.add_parser("finetune", help="train a classifier on top of an encoder")
    finetune.add_argument("--encoder", required=True)
    data_args(finetune)
    finetune.add_argument("--mode", choices=("linear", "full"), default="linear")
    finetune.add_argument("--epochs", type=int, default=30)
    finetune.add_argument("--batch-size", type=int, default=256)
    finetune.add_argument("--labels-per-class", type=int, default=None)
    finetune.add_argument("--seed", type=int, default=0)
    finetune.add_argument("--output", default="classifier.keras")
    finetune.set_defaults(func=cmd_finetune)

    zoo = sub.add_parser("zoo", help="list, push, pull and write cards of Hub encoders", add_help=False)
    zoo.add_argument("zoo_args", nargs=argparse.REMAINDER)
    zoo.set_defaults(func=cmd_zoo)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        import kerassl

        print(kerassl.__version__)
        return 0
    if not args.command:
        parser.print_help()
        return 2
    if args.command in ("pretrain", "evaluate", "finetune") and args.data in ("digits",):
        args.image_size = args.image_size or 8
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
