"""The command line's arguments and its table of methods: plain data, no Keras."""

import argparse
import collections

DATASETS = ("digits", "mnist", "cifar10")
PRECISIONS = {
    "float32": "float32",
    "bf16": "mixed_bfloat16",
    "mixed_bfloat16": "mixed_bfloat16",
    "fp16": "mixed_float16",
    "mixed_float16": "mixed_float16",
}

# What `kerassl pretrain --method NAME` builds: the class's name in `kerassl`, the
# backbone it defaults to, the optimizer and learning rate of its recipe, whether it
# takes an encoder. Adding a method to the command line is one line here.
MethodSpec = collections.namedtuple(
    "MethodSpec", "class_name backbone optimizer learning_rate takes_encoder", defaults=(True,)
)
METHODS = {
    "simclr": MethodSpec("SimCLR", "resnet18", "adamw", 1e-3),
    "dino": MethodSpec("DINO", "vit_tiny", "adamw", 5e-4),
    "mae": MethodSpec("MAE", "vit_tiny", "adamw", 1.5e-4),
    "rotnet": MethodSpec("RotNet", "resnet18", "adam", 1e-3),
    "jigsaw": MethodSpec("Jigsaw", "resnet18", "adam", 1e-3),
    "autoencoder": MethodSpec("Autoencoder", "resnet18", "adam", 1e-3),
    "gan": MethodSpec("GAN", None, "adam", 2e-4, takes_encoder=False),
    "byol": MethodSpec("BYOL", "resnet18", "adamw", 1e-3),
    "moco": MethodSpec("MoCo", "resnet18", "adamw", 1e-3),
    "simsiam": MethodSpec("SimSiam", "resnet18", "adamw", 1e-3),
    "barlow_twins": MethodSpec("BarlowTwins", "resnet18", "adamw", 1e-3),
    "vicreg": MethodSpec("VICReg", "resnet18", "adamw", 1e-3),
    "swav": MethodSpec("SwAV", "resnet18", "adamw", 1e-3),
    "nnclr": MethodSpec("NNCLR", "resnet18", "adamw", 1e-3),
}

DESCRIPTION = """Self-supervised representation learning for images in Keras 3.

examples:
  kerassl info
  kerassl pretrain --method dino --data ./images --devices 8 --precision bf16
  kerassl pretrain --method simclr --data cifar10 --data-path cifar10-jpeg.tar.gz --knn-every 5
  kerassl evaluate --encoder encoder.keras --data cifar10 --data-path cifar10-jpeg.tar.gz
  kerassl finetune --encoder encoder.keras --data ./labelled --labels-per-class 100
  kerassl zoo list
"""


def package_version():
    """kerassl's version from the installed metadata (no import of the package)."""
    from importlib import metadata

    try:
        return metadata.version("kerassl")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser():
    parser = argparse.ArgumentParser(
        prog="kerassl", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")

    sub.add_parser("info", help="version, backend, devices, XLA and precision policy")

    demo = sub.add_parser("demo", help="pretrain SimCLR on the embedded digits (CPU, minutes)")
    demo.add_argument("--output-dir", default="outputs/demo")
    demo.add_argument("--epochs", type=int, default=None)
    demo.add_argument("--seed", type=int, default=0)

    def data_args(p, what):
        p.add_argument(
            "--data", default="digits",
            help=f"{', '.join(DATASETS)}, or a folder ({what})",
        )
        p.add_argument("--data-path", default=None, help="local copy of the dataset files")
        p.add_argument("--image-size", type=int, default=None)

    pretrain = sub.add_parser(
        "pretrain", help="pretrain an encoder without labels",
        description="Pretrain an encoder. Methods and their defaults (backbone, optimizer, "
        "learning rate): " + "; ".join(
            f"{name}: {spec.backbone or 'no encoder'}, {spec.optimizer}, {spec.learning_rate:g}"
            for name, spec in METHODS.items()
        ),
    )
    pretrain.add_argument("--method", choices=sorted(METHODS), default="simclr")
    data_args(
        pretrain,
        "of images, flat or nested, no labels needed; with train/ and test/ class "
        "subfolders, --knn-every can monitor kNN accuracy",
    )
    pretrain.add_argument("--train-limit", type=int, default=None)
    pretrain.add_argument("--backbone", default=None, help="default: the method's (see above)")
    pretrain.add_argument("--epochs", type=int, default=10)
    pretrain.add_argument("--batch-size", type=int, default=256)
    pretrain.add_argument("--optimizer", choices=("adam", "adamw", "sgd"), default=None)
    pretrain.add_argument("--learning-rate", type=float, default=None)
    pretrain.add_argument("--weight-decay", type=float, default=0.0)
    pretrain.add_argument("--temperature", type=float, default=None, help="for methods that take one")
    pretrain.add_argument("--devices", type=int, default=None,
                          help="data-parallel over this many devices (JAX DataParallel, "
                          "TensorFlow MirroredStrategy); default: one")
    pretrain.add_argument("--precision", choices=sorted(PRECISIONS), default="float32")
    pretrain.add_argument("--jit-compile", default="auto")
    pretrain.add_argument("--resume", default=None, metavar="DIR",
                          help="back up each epoch to DIR and continue from it after a kill")
    pretrain.add_argument("--knn-every", type=int, default=0,
                          help="kNN monitor every N epochs (needs a labelled split)")
    pretrain.add_argument("--knn-k", type=int, default=200)
    pretrain.add_argument("--seed", type=int, default=0)
    pretrain.add_argument("--output", default="encoder.keras")
    pretrain.add_argument("--save-method", default=None, help="also save the whole method")

    evaluate = sub.add_parser("evaluate", help="kNN (and linear-probe) accuracy of an encoder")
    evaluate.add_argument("--encoder", required=True, help=".keras file, folder, preset or hf://")
    data_args(evaluate, "with train/ and test/ class subfolders")
    evaluate.add_argument("--k", type=int, default=200)
    evaluate.add_argument("--temperature", type=float, default=0.1)
    evaluate.add_argument("--linear", action="store_true")

    finetune = sub.add_parser("finetune", help="train a classifier on top of an encoder")
    finetune.add_argument("--encoder", required=True)
    data_args(finetune, "with train/ and test/ class subfolders")
    finetune.add_argument("--mode", choices=("linear", "full"), default="linear")
    finetune.add_argument("--epochs", type=int, default=30)
    finetune.add_argument("--batch-size", type=int, default=256)
    finetune.add_argument("--labels-per-class", type=int, default=None)
    finetune.add_argument("--seed", type=int, default=0)
    finetune.add_argument("--output", default="classifier.keras")

    zoo = sub.add_parser("zoo", help="list, push, pull and write cards of Hub encoders", add_help=False)
    zoo.add_argument("zoo_args", nargs=argparse.REMAINDER)
    return parser
