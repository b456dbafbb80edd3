"""What both sides of the benchmark share: data, the kNN protocol, measurements.

Imported by `kerassl_side.py` (the kerassl venv) and by `peer_lightly.py` (the
peer venv, which has torch, lightly, NumPy and Pillow but no kerassl, Keras or
TensorFlow). So this module needs NumPy and Pillow only. Both sides read the very
same uint8 arrays and score features with the very same kNN code, so a
difference in the quality row comes from training, not from evaluation.
"""

import json
import os
import pathlib
import platform
import resource
import sys
import tarfile
import tempfile
import time

import numpy as np

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
DEFAULT_TARBALL = (
    pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"
)
CACHE_DIR = pathlib.Path(
    os.environ.get("KERASSL_BENCH_CACHE", pathlib.Path.home() / ".cache" / "kerassl-benchmarks")
)


# The two recipes of dino_small_budget.py and its lightly twin (see its docstring).
DINO_SMALL_BUDGET_RECIPES = {
    # Short-run settings (tests/test_dino.py): no local crops and teacher momentum from
    # 0.96, so the teacher learns within a few hundred steps; no flips on digits.
    "mnist": dict(train_images=2000, bank=1000, queries=1000, width=16, head=(512, 64, 1024),
                  head_batch_norm=True, local_crops=0, local_size=12, flip=False, batch=128,
                  epochs=20, optimizer="adamw", learning_rate=1e-3, weight_decay=0.04,
                  warmup_epochs=0, momentum_start=0.96, k=20, knn_temperature=0.1),
    "cifar10": dict(train_images=10000, bank=5000, queries=10000, width=16, head=(2048, 256, 2048),
                    head_batch_norm=True, local_crops=0, local_size=14, flip=True, batch=256,
                    epochs=10, optimizer="sgd", learning_rate=0.06, weight_decay=0.0,
                    warmup_epochs=1, momentum_start=0.96, k=20, knn_temperature=0.1),
}


def load_cifar10(tarball=DEFAULT_TARBALL, cache_dir=CACHE_DIR):
    """CIFAR-10 from the JPEG tarball as uint8 arrays, decoded once into a cache.

    The order is fixed (class order of `CIFAR10_CLASSES`, then file name), so a
    subset drawn by index is the same images on both sides.

    Returns:
        (x_train (50000, 32, 32, 3) uint8, y_train int32, x_test, y_test).
    """
    tarball = pathlib.Path(tarball)
    if not tarball.exists():
        raise FileNotFoundError(
            f"{tarball} is absent. The quality row needs the CIFAR-10 JPEG copy "
            "(../shared/data/cifar10-jpeg.tar.gz); pass --cifar10 PATH to point at it."
        )
    cache = pathlib.Path(cache_dir) / f"cifar10-{tarball.stat().st_size}.npz"
    if cache.exists():
        with np.load(cache) as data:
            return tuple(data[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    from PIL import Image

    images = {"train": [], "test": []}
    with tarfile.open(tarball) as archive:
        for member in archive:
            parts = pathlib.PurePosixPath(member.name).parts
            if not member.isfile() or len(parts) < 3 or parts[-2] not in CIFAR10_CLASSES:
                continue
            split = parts[-3]
            if split not in images:
                continue
            with archive.extractfile(member) as f:
                pixels = np.asarray(Image.open(f).convert("RGB"), dtype=np.uint8)
            images[split].append((CIFAR10_CLASSES.index(parts[-2]), parts[-1], pixels))
    arrays = {}
    for split, items in images.items():
        items.sort(key=lambda item: (item[0], item[1]))
        arrays[f"x_{split}"] = np.stack([item[2] for item in items])
        arrays[f"y_{split}"] = np.array([item[0] for item in items], dtype=np.int32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temp name and renamed: a killed run never leaves half a cache.
    with tempfile.NamedTemporaryFile(dir=cache.parent, suffix=".npz", delete=False) as tmp:
        np.savez(tmp, **arrays)
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, cache)
    return arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"]


def synthetic_dataset(train_size, test_size, image_size=32, seed=0):
    """Random images with random labels: for the smoke suite only (no shared data)."""
    rng = np.random.default_rng(seed)
    shape = (image_size, image_size, 3)
    return (
        rng.integers(0, 256, (train_size,) + shape, dtype=np.uint8),
        rng.integers(0, 10, train_size).astype(np.int32),
        rng.integers(0, 256, (test_size,) + shape, dtype=np.uint8),
        rng.integers(0, 10, test_size).astype(np.int32),
    )


def quality_data(config):
    """The training subset, the kNN bank and the queries named by `config`."""
    if config["data"] == "synthetic":
        x_train, y_train, x_test, y_test = synthetic_dataset(
            config["train_size"], config["test_size"], image_size=config.get("image_size", 32)
        )
    else:
        x_train, y_train, x_test, y_test = load_cifar10(config.get("cifar10") or DEFAULT_TARBALL)
        if config["train_size"] < len(x_train):
            index = np.random.default_rng(0).choice(
                len(x_train), config["train_size"], replace=False
            )
            x_train, y_train = x_train[index], y_train[index]
        x_test, y_test = x_test[: config["test_size"]], y_test[: config["test_size"]]
    return x_train, y_train, x_test, y_test


def dino_small_budget_data(data, recipe):
    """(x, y, x_test, y_test) uint8 NHWC for a `DINO_SMALL_BUDGET_RECIPES` entry, on both sides."""
    if data == "mnist":
        with np.load(DEFAULT_TARBALL.parent / "mnist.npz") as arrays:
            n, q = recipe["train_images"], recipe["queries"]
            return (arrays["x_train"][:n, ..., None], arrays["y_train"][:n],
                    arrays["x_test"][:q, ..., None], arrays["y_test"][:q])
    return quality_data(dict(data="cifar10", train_size=recipe["train_images"],
                             test_size=recipe["queries"]))

def knn_accuracy(bank, bank_labels, queries, query_labels, k=200, temperature=0.1,
                 num_classes=10, chunk=1000):
    """Weighted kNN accuracy on cosine similarity (InstDisc; lightly's `knn_predict`).

    Each query's k nearest bank features vote for their label with weight
    exp(similarity / temperature); the class with the largest sum wins.
    """
    bank = bank / np.maximum(np.linalg.norm(bank, axis=1, keepdims=True), 1e-12)
    queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    k = min(k, len(bank))
    correct = 0
    for start in range(0, len(queries), chunk):
        sim = queries[start : start + chunk] @ bank.T
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        weights = np.exp(np.take_along_axis(sim, top, axis=1) / temperature)
        scores = np.zeros((len(sim), num_classes))
        np.add.at(scores, (np.arange(len(sim))[:, None], bank_labels[top]), weights)
        correct += int((scores.argmax(1) == query_labels[start : start + chunk]).sum())
    return correct / len(queries)


def summarize_step_times(step_times, batch_size, warmup_steps, cpu_times=None):
    """images/s from the median of the timed steps (the warm-up steps dropped).

    `cpu_times` (this process's CPU seconds per step, all threads) give a second
    figure that other processes on a shared machine disturb much less than wall
    time: images per CPU-second.
    """
    timed = list(step_times[warmup_steps:]) or list(step_times)
    median = float(np.median(timed))
    summary = {
        "images_per_s": batch_size / median,
        "median_step_s": median,
        "first_step_s": float(step_times[0]),
        "step_times_s": [round(t, 4) for t in step_times],
    }
    if cpu_times is not None:
        cpu = float(np.median(list(cpu_times[warmup_steps:]) or list(cpu_times)))
        summary["median_step_cpu_s"] = cpu
        summary["images_per_cpu_s"] = batch_size / cpu
    return summary


def peak_rss_mib():
    """Peak resident memory of this process (VmHWM), in MiB."""
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    # ru_maxrss is KiB on Linux and bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def process_facts():
    return {
        "python": platform.python_version(),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
    }


def worker_main(run):
    """Shared `main` of the two worker scripts: config JSON in, result JSON out."""
    config = json.loads(sys.argv[1])
    started = time.time()
    load_start = [round(x, 2) for x in os.getloadavg()]
    result = run(config)
    result.update(process_facts())
    result["load_average_start"] = load_start
    result["wall_s"] = round(time.time() - started, 1)
    out = pathlib.Path(sys.argv[2])
    with tempfile.NamedTemporaryFile("w", dir=out.parent, delete=False) as tmp:
        json.dump(result, tmp, indent=1)
    os.replace(tmp.name, out)
