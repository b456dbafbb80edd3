"""The `kerassl` command: info, demo, pretrain, evaluate, finetune, zoo.

The parser and the table of methods live in `kerassl_cli` (no Keras, so
`kerassl --help` is instant); this module runs the commands.

Examples:
    kerassl info
    kerassl pretrain --method dino --data ./images --devices 8 --precision bf16
    kerassl demo
    kerassl pretrain --method simclr --data cifar10 --data-path cifar10-jpeg.tar.gz \
        --backbone resnet18 --epochs 100 --output simclr_r18.keras
    kerassl evaluate --encoder simclr_r18.keras --data cifar10 --data-path ...
    kerassl finetune --encoder simclr_r18.keras --data cifar10 --labels-per-class 100
    kerassl zoo list
"""

import json
import os
import sys
import warnings

from kerassl_cli import main as _main
from kerassl_cli.parser import DATASETS, METHODS, PRECISIONS


def main(argv=None):
    """Runs `kerassl ARGS` (the console script's entry point is `kerassl_cli.main`)."""
    return _main(argv)


def run(args):
    if args.command in ("pretrain", "evaluate", "finetune") and args.data in ("digits",):
        args.image_size = args.image_size or 8
    return COMMANDS[args.command](args)


def is_split_folder(name):
    return os.path.isdir(name) and all(
        os.path.isdir(os.path.join(name, s)) for s in ("train", "test")
    )


def load_images(name, path=None, image_size=None, train_limit=None):
    """(images, labelled split or None) for pretraining: any folder of images will do.

    A named dataset or a folder with train/ and test/ class subfolders also
    gives ((x_train, y_train), (x_test, y_test)) for kNN monitoring; a plain
    folder (flat or nested) gives its images and no split.
    """
    from kerassl import datasets

    if os.path.isdir(name) and not is_split_folder(name):
        size = (image_size or 32, image_size or 32)
        return datasets.image_folder(name, image_size=size, labels=None, limit=train_limit), None
    split = load_data(name, path, image_size, train_limit)
    return split[0][0], split


def load_data(name, path=None, image_size=None, train_limit=None):
    """((x_train, y_train), (x_test, y_test)) for a dataset name or an image folder."""
    from kerassl import datasets

    if name == "digits":
        (x, y), test = datasets.load_digits(image_size=image_size or 8)
        return (x[:train_limit], y[:train_limit]), test
    if name == "mnist":
        return datasets.mnist(path=path, train_limit=train_limit)
    if name == "cifar10":
        return datasets.cifar10(path=path, train_limit=train_limit)
    if os.path.isdir(name):
        splits = [os.path.join(name, s) for s in ("train", "test")]
        if not all(os.path.isdir(s) for s in splits):
            raise SystemExit(
                f"error: {name} has no train/ and test/ subfolders of classes: evaluating "
                "and fine-tuning need labels (pretraining takes any folder of images)"
            )
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


def method_kwargs(cls, args, x_train, split):
    """Arguments of the method's constructor that the command line sets."""
    import inspect

    import numpy as np

    accepted = inspect.signature(cls.__init__).parameters
    kwargs = {"seed": args.seed} if "seed" in accepted else {}
    if args.temperature is not None:
        if "temperature" not in accepted:
            raise SystemExit(f"error: --method {args.method} takes no --temperature")
        kwargs["temperature"] = args.temperature
    if split is not None and "num_classes" in accepted and cls.__name__ != "CLIP":
        kwargs["num_classes"] = int(np.max(split[0][1])) + 1
    if cls.__name__ == "GAN":
        kwargs["image_shape"] = tuple(x_train.shape[1:])
    return kwargs


def data_parallel_scope(devices):
    """A scope that splits each batch over `devices` devices: JAX DataParallel or MirroredStrategy."""
    import contextlib

    import keras

    if not devices or devices == 1:
        return contextlib.nullcontext()
    if keras.config.backend() == "jax":
        try:
            found = keras.distribution.list_devices("gpu")
        except RuntimeError:  # no GPU platform
            found = []
        found = found or keras.distribution.list_devices("cpu")
        if len(found) < devices:
            raise SystemExit(f"error: --devices {devices}, but JAX sees {len(found)}: {found}")
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=found[:devices]))
        return contextlib.nullcontext()
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        found = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        if len(found) < devices:
            raise SystemExit(
                f"error: --devices {devices}, but TensorFlow sees {len(found)}: "
                f"{[d.name for d in found]}"
            )
        return tf.distribute.MirroredStrategy([d.name for d in found[:devices]]).scope()
    raise SystemExit(f"error: --devices needs the jax or tensorflow backend, not {keras.config.backend()}")


def cmd_pretrain(args):
    import keras
    import numpy as np

    import kerassl
    from kerassl import backbones, distributed, evaluate
    spec = METHODS[args.method]
    x_train, split = load_images(args.data, args.data_path, args.image_size, args.train_limit)
    if args.knn_every and split is None:
        raise SystemExit(
            "error: --knn-every needs labels: give a dataset name or a folder with train/ "
            "and test/ class subfolders"
        )
    keras.config.set_dtype_policy(PRECISIONS[args.precision])
    keras.utils.set_random_seed(args.seed)
    with data_parallel_scope(args.devices):
        distributed.check_batch_divides(args.batch_size, "--batch-size")
        cls = getattr(kerassl, spec.class_name)
        kwargs = method_kwargs(cls, args, x_train, split)
        if spec.takes_encoder:
            encoder = backbones.get(args.backbone or spec.backbone, input_shape=x_train.shape[1:])
            method = cls(encoder, **kwargs)
        else:
            method = cls(**kwargs)
        steps = args.epochs * int(np.ceil(len(x_train) / args.batch_size))
        optimizer = make_optimizer(
            args.optimizer or spec.optimizer, args.learning_rate or spec.learning_rate,
            args.weight_decay, steps,
        )
        # SSLMethod.compile resolves "auto" (kerassl.xla) and prints its choice in fit.
        if spec.class_name == "GAN":
            method.compile(generator_optimizer=optimizer, jit_compile=args.jit_compile)
        else:
            method.compile(optimizer=optimizer, jit_compile=args.jit_compile)
        if args.resume and not method.built:
            # BackupAndRestore restores into a built model.
            method.build((None, *x_train.shape[1:]))
    callbacks = []
    if args.knn_every:
        (x_tr, y_tr), (x_te, y_te) = split
        callbacks.append(evaluate.KNNMonitor(x_tr, y_tr, x_te, y_te, every=args.knn_every, k=args.knn_k))
    if args.resume:
        callbacks.append(keras.callbacks.BackupAndRestore(args.resume))
    labels = split[0][1] if split is not None and getattr(method, "probe", None) is not None else None
    data = x_train if labels is None else (x_train, labels)
    method.fit(data, epochs=args.epochs, batch_size=args.batch_size, callbacks=callbacks)
    _save(method.encoder if hasattr(method, "encoder") else method, args.output)
    if args.save_method:
        _save(method, args.save_method)


def cmd_info(args):
    import platform

    import keras

    import kerassl

    backend = keras.config.backend()
    lines = {
        "kerassl": kerassl.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
        "backend": backend,
        "precision policy": keras.config.dtype_policy().name,
    }
    if backend == "tensorflow":
        import tensorflow as tf

        lines["tensorflow"] = tf.__version__
        lines["built with CUDA"] = tf.test.is_built_with_cuda()
        lines["devices"] = ", ".join(d.name for d in tf.config.list_logical_devices()) or "none"
        gpus = tf.config.list_physical_devices("GPU")
    elif backend == "jax":
        import jax

        lines["jax"] = jax.__version__
        lines["devices"] = ", ".join(str(d) for d in jax.devices())
        gpus = [d for d in jax.devices() if d.platform == "gpu"]
    else:
        gpus = []
        lines["devices"] = "see the backend"
    lines["GPUs"] = len(gpus)
    if backend == "jax":
        xla = "on (JAX compiles every step)"
    elif gpus:
        xla = "on: a GPU is visible"
    elif backend == "tensorflow":
        rule = os.environ.get("KERASSL_XLA_ON_CPU", "auto")
        xla = (
            "per architecture on this CPU (ViTs on, ResNets off); off under a multi-replica strategy"
            if rule == "auto" else f"{rule} on this CPU (KERASSL_XLA_ON_CPU={rule})"
        )
    else:
        xla = "off"
    lines["XLA (jit_compile='auto')"] = xla
    width = max(len(k) for k in lines)
    for key, value in lines.items():
        print(f"{key.ljust(width)}  {value}")


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


COMMANDS = {
    "info": cmd_info,
    "demo": cmd_demo,
    "pretrain": cmd_pretrain,
    "evaluate": cmd_evaluate,
    "finetune": cmd_finetune,
    "zoo": cmd_zoo,
}


if __name__ == "__main__":
    sys.exit(main())
