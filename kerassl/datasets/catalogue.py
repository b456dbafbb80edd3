"""The named datasets: scikit-learn's digits (offline), MNIST and CIFAR-10.

Every loader returns what `keras.datasets` returns: `(x_train, y_train),
(x_test, y_test)` with uint8 images in channels-last layout (N, H, W, C) and
1-D int32 labels. `load_digits` ships inside scikit-learn and needs nothing
else; `mnist` and `cifar10` download through `keras.datasets` for users with
a network, or read local copies passed with `path=`.

Archives (`.tar.gz`) are unpacked once under the cache directory
(`~/.cache/kerassl`, or `$KERASSL_CACHE`), and decoded arrays are cached there
as `.npz` so a second call skips decoding. Both are written under a temporary
name and renamed, so an interrupted run never leaves a half-written cache.
"""

import fnmatch
import pickle

import numpy as np

from kerassl.datasets.cache import cached_arrays, existing_path, read_npz, skip_wrapper_folder
from kerassl.datasets.folders import check_channels, check_image_size, labelled_files, read_images, resize_batch
from kerassl.datasets.tfdata import subset_indices
from kerassl.images import check_numpy_images


CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


DATASETS = {
    "digits": {
        "loader": "kerassl.datasets.load_digits",
        "description": "scikit-learn's 8x8 handwritten digits; ships offline.",
        "num_classes": 10,
        "image_shape": (8, 8, 1),
        "class_names": tuple(str(i) for i in range(10)),
        "train_size": 1437,
        "test_size": 360,
        "source": "sklearn.datasets.load_digits",
    },
    "mnist": {
        "loader": "kerassl.datasets.mnist",
        "description": "MNIST handwritten digits, 28x28 grayscale.",
        "num_classes": 10,
        "image_shape": (28, 28, 1),
        "class_names": tuple(str(i) for i in range(10)),
        "train_size": 60000,
        "test_size": 10000,
        "source": MNIST_URL,
    },
    "cifar10": {
        "loader": "kerassl.datasets.cifar10",
        "description": "CIFAR-10 natural images, 32x32 RGB, 10 classes.",
        "num_classes": 10,
        "image_shape": (32, 32, 3),
        "class_names": CIFAR10_CLASSES,
        "train_size": 50000,
        "test_size": 10000,
        "source": CIFAR10_URL,
    },
}


class DatasetDownloadError(RuntimeError):
    """A dataset could not be downloaded; the message says how to pass `path=`."""


def list_datasets(pattern="*"):
    """Describes the datasets this module loads.

    Args:
        pattern: str. A shell-style pattern on dataset names, e.g. `"c*"`.

    Returns:
        A list of dicts (copies of `DATASETS` entries plus their `name`),
        sorted by name.

    Example:
    >>> [d["name"] for d in kerassl.datasets.list_datasets()]
    ['cifar10', 'digits', 'mnist']
    """
    return [
        {"name": name, **info}
        for name, info in sorted(DATASETS.items())
        if fnmatch.fnmatch(name, pattern)
    ]


def load_digits(image_size=8, channels=1, interpolation="bilinear", test_size=360, seed=0):
    """scikit-learn's 1,797 handwritten 8x8 digits, split train/test.

    The raw pixels (0-16) are scaled by 255/16 and rounded to uint8. The split
    is stratified by class and fixed by `seed` (scikit-learn's
    `train_test_split(..., stratify=labels, random_state=seed)`), so every call
    returns the same 1,437 training and 360 test images.

    Args:
        image_size: int. Side of the returned images; values above 8 upsample
            with PIL (`interpolation`).
        channels: int. 1 (grayscale) or 3 (the gray channel repeated).
        interpolation: str. `"bilinear"` (smooth) or `"nearest"` (blocky
            copies of each pixel), used only when `image_size != 8`.
        test_size: int. Number of test images.
        seed: int. Seed of the split.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: uint8 images of shape
        (N, image_size, image_size, channels), int32 labels 0-9.

    Example:
    >>> (x, y), (x_test, y_test) = kerassl.datasets.load_digits(image_size=16, channels=3)
    >>> x.shape, x.dtype
    ((1437, 16, 16, 3), dtype('uint8'))
    """
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    check_channels(channels)
    image_size = check_image_size(image_size)
    data = sklearn_digits()
    images = (data.images * (255.0 / 16.0)).round().astype("uint8")[..., None]
    labels = data.target.astype("int32")
    if image_size != (8, 8):
        images = resize_batch(images, image_size, interpolation)
    if channels == 3:
        images = np.repeat(images, 3, axis=-1)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_size, stratify=labels, random_state=seed
    )
    return (x_train, y_train), (x_test, y_test)


def mnist(path=None, train_limit=None, test_limit=None, seed=0):
    """MNIST: 60,000 + 10,000 handwritten digits, 28x28 grayscale.

    Without `path`, downloads through `keras.datasets.mnist.load_data()`.

    Args:
        path: str or path, optional. A local `.npz` with the arrays
            `x_train, y_train, x_test, y_test` (the file keras downloads).
        train_limit: int, optional. Keep this many training images, drawn
            without replacement (see `subset_indices`).
        test_limit: int, optional. Same for the test images.
        seed: int. Seed of both draws.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: uint8 images (N, 28, 28, 1),
        int32 labels.

    Example:
    >>> (x, y), _ = kerassl.datasets.mnist(path="mnist.npz", train_limit=1000)
    >>> x.shape
    (1000, 28, 28, 1)
    """
    if path is None:
        import keras

        try:
            (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
        except Exception as error:
            raise _download_error("MNIST", MNIST_URL, "mnist.npz", error) from error
        arrays = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    else:
        path = existing_path(path)
        if path.is_dir() and (path / "mnist.npz").is_file():
            path = path / "mnist.npz"
        if path.suffix != ".npz":
            raise ValueError(
                f"mnist(path=...) expects an .npz file with keys x_train, y_train, "
                f"x_test, y_test (keras' mnist.npz); got {path}."
            )
        arrays = read_npz(path)
    for split in ("train", "test"):
        if arrays[f"x_{split}"].ndim == 3:
            arrays[f"x_{split}"] = arrays[f"x_{split}"][..., None]
    return _finish(arrays, train_limit, test_limit, seed, "MNIST")


def cifar10(path=None, train_limit=None, test_limit=None, seed=0):
    """CIFAR-10: 50,000 + 10,000 natural images, 32x32 RGB, 10 classes.

    Without `path`, downloads through `keras.datasets.cifar10.load_data()`.
    `path` may point to any of:

    - the official python version: the `cifar-10-python.tar.gz` tarball, its
      `cifar-10-batches-py` folder, or a folder that contains that folder;
    - a JPEG layout, as a folder or tarball: `train/<class>/*.jpg` and
      `test/<class>/*.jpg`, class folders named as in `CIFAR10_CLASSES`
      (labels follow that order, not the order of the folders found);
    - an `.npz` with keys `x_train, y_train, x_test, y_test`.

    Tarballs are unpacked under `cache_dir()`; the decoded arrays are cached
    there as an `.npz`, so only the first call pays for decoding (about 12 s
    for the 60,000 JPEGs). JPEG images are ordered by class (in
    `CIFAR10_CLASSES` order), then by file name.

    Args:
        path: str or path, optional. Local copy, see above.
        train_limit: int, optional. Keep this many training images:
            `x_train[np.random.default_rng(seed).choice(50000, train_limit,
            replace=False)]`, in that (unsorted) order.
        test_limit: int, optional. Same for the test images, with a fresh
            generator from the same seed.
        seed: int. Seed of both draws.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: uint8 images (N, 32, 32, 3),
        int32 labels 0-9.

    Example:
    >>> (x, y), (x_test, y_test) = kerassl.datasets.cifar10(
    ...     path="cifar10-jpeg.tar.gz", train_limit=10000)
    >>> x.shape, y.shape
    ((10000, 32, 32, 3), (10000,))
    """
    if path is None:
        import keras

        try:
            (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
        except Exception as error:
            raise _download_error(
                "CIFAR-10", CIFAR10_URL, "cifar-10-python.tar.gz", error
            ) from error
        arrays = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    else:
        path = existing_path(path)
        if path.suffix == ".npz":
            arrays = read_npz(path)
        else:
            arrays = cached_arrays("cifar10", path, _decode_cifar10)
    return _finish(arrays, train_limit, test_limit, seed, "CIFAR-10")


def _download_error(name, url, filename, error):
    return DatasetDownloadError(
        f"Downloading {name} from {url} failed ({type(error).__name__}: {error}). "
        f"Without network access, fetch {filename} elsewhere, copy it here and pass "
        f"its location with path=, e.g. kerassl.datasets."
        f"{'mnist' if name == 'MNIST' else 'cifar10'}(path='/data/{filename}')."
    )


def _finish(arrays, train_limit, test_limit, seed, name):
    """Checks shapes, flattens labels to int32 and applies the limits."""
    out = []
    for split, limit in (("train", train_limit), ("test", test_limit)):
        images = np.asarray(arrays[f"x_{split}"])
        labels = np.asarray(arrays[f"y_{split}"]).reshape(-1).astype("int32")
        check_numpy_images(images, what=f"{name} x_{split}")
        if images.dtype != np.uint8:
            raise ValueError(f"{name} x_{split} must be uint8; got {images.dtype}.")
        if len(labels) != len(images):
            raise ValueError(
                f"{name} has {len(images)} x_{split} images but {len(labels)} labels."
            )
        index = subset_indices(len(images), limit, seed)
        if len(index) < len(images):
            images, labels = images[index], labels[index]
        out.append((images, labels))
    return tuple(out)


def _decode_cifar10(folder):
    layout_root = _find_cifar10_root(folder)
    if (layout_root / "test_batch").is_file():
        return _read_cifar10_pickles(layout_root)
    arrays = {}
    for split in ("train", "test"):
        files, labels, _ = labelled_files(
            layout_root / split, CIFAR10_CLASSES, closed_set=True
        )
        arrays[f"x_{split}"] = read_images(files, (32, 32), 3)
        arrays[f"y_{split}"] = np.asarray(labels, "int32")
    return arrays


def _find_cifar10_root(folder):
    for candidate in (folder, folder / "cifar-10-batches-py", skip_wrapper_folder(folder)):
        if (candidate / "test_batch").is_file():
            return candidate
        if (candidate / "train").is_dir() and (candidate / "test").is_dir():
            return candidate
    raise ValueError(
        f"{folder} holds neither the CIFAR-10 python batches (cifar-10-batches-py/"
        "data_batch_1..5, test_batch) nor the JPEG layout train/<class>/*.jpg and "
        "test/<class>/*.jpg."
    )


def _read_cifar10_pickles(folder):
    def read(file):
        with open(file, "rb") as handle:
            batch = _NumpyUnpickler(handle, encoding="bytes").load()
        batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
        data = np.asarray(batch["data"], "uint8").reshape(-1, 3, 32, 32)
        return data.transpose(0, 2, 3, 1), np.asarray(batch["labels"], "int32")

    train_files = sorted(
        folder.glob("data_batch_*"), key=lambda p: int(p.name.rsplit("_", 1)[1])
    )
    if not train_files:
        raise ValueError(f"{folder} has test_batch but no data_batch_* files.")
    train = [read(f) for f in train_files]
    x_test, y_test = read(folder / "test_batch")
    return {
        "x_train": np.concatenate([x for x, _ in train]),
        "y_train": np.concatenate([y for _, y in train]),
        "x_test": x_test,
        "y_test": y_test,
    }


class _NumpyUnpickler(pickle.Unpickler):
    """Unpickles only NumPy arrays and builtins: batch files are not code."""

    def find_class(self, module, name):
        if module.split(".")[0] == "numpy" and name in (
            "_reconstruct",
            "ndarray",
            "dtype",
            "scalar",
        ):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"Refusing to load {module}.{name} from a CIFAR batch.")
