"""Each staple's row of lightly's CIFAR-10 table, kerassl against lightly, for the GPU suite.

lightly's table (docs/source/getting_started/benchmarks/cifar10_benchmark.py):
ResNet-18 with the CIFAR stem, batch 512, 200 epochs on the 50,000 training
images, kNN (k=200, T=0.1) of the frozen backbone on the 10,000 test images, the
training images as the bank. lightly's figures at batch 512 / 200 epochs: BYOL
0.872, MoCo 0.850, SimSiam 0.814, Barlow Twins 0.827, SwAV 0.833, NNCLR 0.836
(`staples_step.LIGHTLY_TABLE_512_200`); MoCo v3 and VICReg have no row there.
The recipes (heads, views, optimizers) are `staples_step.RECIPES["cifar10"]`; each
row runs both libraries in fresh processes through `staples_step.py --paired
--task knn --recipe cifar10` and writes <out>/knn-cifar10.json and .md.

A full row takes about 3 hours per library on lightly's RTX A6000, far beyond one
GPU check: `--list` prints the command of every row (to run when a long GPU loan
comes), `--epochs N` shortens a row (for example `--epochs 1` to time one epoch
per method inside a short check), and `--smoke` runs the whole pipeline on the
CPU in seconds (kerassl side only, a tiny encoder and tiny heads, 64 random
images), which `tests/test_benchmarks.py` runs.

Usage:
    python benchmarks/cifar10_table.py --list
    python benchmarks/cifar10_table.py --methods byol,swav      # full rows, both libraries
    python benchmarks/cifar10_table.py --methods all --epochs 1  # one epoch per row
    python benchmarks/cifar10_table.py --smoke                   # CPU pipeline check
"""

import argparse
import json
import pathlib
import shlex
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import staples_step  # noqa: E402

TABLE = dict(batch=512, epochs=200, train_size=50000, test_size=10000, knn_k=200)


def row_command(method, epochs=TABLE["epochs"], sides="kerassl,lightly", out=None):
    """The command of one row of the table (both libraries, one after the other)."""
    out = out or HERE / "results" / "cifar10-table"
    return [sys.executable, str(HERE / "staples_step.py"), "--paired", "--task", "knn", "--recipe", "cifar10",
            "--methods", method, "--sides", sides, "--pairs", "1", "--batch", str(TABLE["batch"]),
            "--epochs", str(epochs), "--train-size", str(TABLE["train_size"]),
            "--test-size", str(TABLE["test_size"]), "--knn-k", str(TABLE["knn_k"]), "--append",
            "--out", str(out)]


def smoke(methods):
    """Every method's kNN row on the CPU in seconds: kerassl side, in this process."""
    config = dict(data="synthetic", train_size=64, test_size=32, batch_size=16, epochs=1, knn_k=5,
                  seed=0, image_size=32, num_workers=0)
    rows = []
    for method in methods:
        started = time.perf_counter()
        result = staples_step.kerassl_knn(method, "smoke", config, encoder="small_convnet")
        result.update(method=method, seconds=round(time.perf_counter() - started, 1))
        print(json.dumps(result), flush=True)
        rows.append(result)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="all")
    parser.add_argument("--sides", default="kerassl,lightly")
    parser.add_argument("--epochs", type=int, default=TABLE["epochs"])
    parser.add_argument("--out", default=str(HERE / "results" / "cifar10-table"))
    parser.add_argument("--list", action="store_true", help="print each row's command and exit")
    parser.add_argument("--smoke", action="store_true", help="CPU pipeline check in seconds (kerassl side)")
    args = parser.parse_args(argv)
    methods = staples_step.METHODS if args.methods == "all" else tuple(args.methods.split(","))
    if args.smoke:
        return smoke(methods)
    commands = [row_command(m, args.epochs, args.sides, args.out) for m in methods]
    if args.list:
        for method, command in zip(methods, commands):
            reference = staples_step.LIGHTLY_TABLE_512_200.get(method)
            print(f"# {staples_step.TITLES[method]}: lightly's table "
                  f"{reference if reference else 'has no row'}")
            print(shlex.join(command))
        return commands
    for command in commands:
        staples_step.main(command[2:])
    return commands


if __name__ == "__main__":
    main()
