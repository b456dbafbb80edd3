"""Image datasets as NumPy arrays, and a tf.data pipeline to feed them.

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
import hashlib
import os
import pathlib
import pickle
import shutil
import tarfile
import tempfile

import numpy as np

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
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
# Above this many files, image_folder shows a progress bar.
PROGRESS_MIN_FILES = 2000

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


def cache_dir():
    """The directory for unpacked archives and decoded arrays.

    `$KERASSL_CACHE` when set, else `~/.cache/kerassl`. Created on demand.
    """
    root = os.environ.get("KERASSL_CACHE") or os.path.join("~", ".cache", "kerassl")
    path = pathlib.Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


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

    _check_channels(channels)
    image_size = _check_image_size(image_size)
    data = sklearn_digits()
    images = (data.images * (255.0 / 16.0)).round().astype("uint8")[..., None]
    labels = data.target.astype("int32")
    if image_size != (8, 8):
        images = _resize_batch(images, image_size, interpolation)
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
        path = _existing_path(path)
        if path.is_dir() and (path / "mnist.npz").is_file():
            path = path / "mnist.npz"
        if path.suffix != ".npz":
            raise ValueError(
                f"mnist(path=...) expects an .npz file with keys x_train, y_train, "
                f"x_test, y_test (keras' mnist.npz); got {path}."
            )
        arrays = _read_npz(path)
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
        path = _existing_path(path)
        if path.suffix == ".npz":
            arrays = _read_npz(path)
        else:
            arrays = _cached_arrays("cifar10", path, _decode_cifar10)
    return _finish(arrays, train_limit, test_limit, seed, "CIFAR-10")


def image_folder(
    directory,
    image_size=None,
    channels=3,
    labels="inferred",
    class_names=None,
    limit=None,
    seed=0,
    interpolation="bilinear",
    progress=None,
):
    """Reads a folder of images into one uint8 array.

    Like `keras.utils.image_dataset_from_directory`, but returns arrays: with
    `labels="inferred"`, each subfolder of `directory` is a class (sorted by
    name unless `class_names` fixes them) and holds that class's images,
    searched recursively. With `labels=None`, every image below `directory`
    is read. Formats: bmp, gif, jpeg, jpg, png, decoded with PIL.

    A `.tar.gz` of such a folder works too: it is unpacked once under
    `cache_dir()` (a single wrapping top folder is skipped).

    Args:
        directory: str or path. The folder or tarball.
        image_size: (height, width) or int, optional. Resize every image to
            this size. When None, all images must share one size.
        channels: int. 1 (grayscale) or 3 (RGB).
        labels: `"inferred"` or None.
        class_names: list of str, optional. The class folders to read, in
            label order. Only with `labels="inferred"`.
        limit: int, optional. Read only this many images, drawn without
            replacement (see `subset_indices`).
        seed: int. Seed of the `limit` draw.
        interpolation: str. `"bilinear"` or `"nearest"`, for resizing.
        progress: bool, optional. Show a tqdm bar; by default only for more
            than 2,000 images.

    Returns:
        With `labels="inferred"`: `(images, labels, class_names)`, uint8
        images (N, H, W, channels), int32 labels, a list of str.
        With `labels=None`: the images.

    Example:
    >>> images, labels, names = kerassl.datasets.image_folder(
    ...     "flowers/", image_size=(64, 64))
    """
    _check_channels(channels)
    if labels not in ("inferred", None):
        raise ValueError(
            f"labels must be 'inferred' (class subfolders) or None (no labels); "
            f"got {labels!r}."
        )
    if class_names is not None and labels is None:
        raise ValueError("class_names only applies with labels='inferred'.")
    root = _existing_path(directory)
    if _is_archive(root):
        root = _skip_wrapper_folder(extract_archive(root))
    if not root.is_dir():
        raise ValueError(f"image_folder expects a folder or a .tar.gz; got the file {root}.")
    if labels is None:
        files = _image_files(root)
        targets = None
    else:
        files, targets, class_names = _labelled_files(root, class_names)
    if not files:
        raise ValueError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) found under {root}.")
    index = subset_indices(len(files), limit, seed)
    files = [files[i] for i in index]
    size = None if image_size is None else _check_image_size(image_size)
    images = read_images(files, size, channels, interpolation, progress)
    if labels is None:
        return images
    return images, np.asarray(targets, "int32")[index], list(class_names)


def read_images(files, image_size=None, channels=3, interpolation="bilinear", progress=None):
    """Decodes image files into one uint8 array (N, H, W, channels).

    Args:
        files: list of paths.
        image_size: (height, width), optional. Resize to it; when None all
            images must share the size of the first.
        channels: int. 1 or 3.
        interpolation: str. `"bilinear"` or `"nearest"`.
        progress: bool, optional. Show a tqdm bar (default: for >2,000 files).

    Example:
    >>> x = kerassl.datasets.read_images(["a.png", "b.png"], image_size=(32, 32))
    """
    from PIL import Image
    from tqdm.auto import tqdm

    _check_channels(channels)
    resample = _pil_resample(interpolation)
    mode = "L" if channels == 1 else "RGB"
    if progress is None:
        progress = len(files) > PROGRESS_MIN_FILES
    images = None
    for i, file in enumerate(tqdm(files, desc="decoding images", disable=not progress)):
        try:
            with Image.open(file) as image:
                image = image.convert(mode)
        except OSError as error:
            raise ValueError(f"Could not decode the image {file}: {error}") from error
        if image_size is not None and image.size != (image_size[1], image_size[0]):
            image = image.resize((image_size[1], image_size[0]), resample)
        array = np.asarray(image, "uint8").reshape(image.size[1], image.size[0], channels)
        if images is None:
            images = np.empty((len(files),) + array.shape, "uint8")
        elif array.shape != images.shape[1:]:
            raise ValueError(
                f"{file} is {array.shape[1]}x{array.shape[0]} but earlier images are "
                f"{images.shape[2]}x{images.shape[1]}; pass image_size=(height, width) "
                "to resize them all."
            )
        images[i] = array
    if images is None:
        return np.empty((0,) + tuple(image_size or (0, 0)) + (channels,), "uint8")
    return images


def to_dataset(
    images,
    labels=None,
    batch_size=256,
    shuffle=True,
    seed=0,
    drop_remainder=False,
    repeat=False,
):
    """A batched, prefetched `tf.data.Dataset` over NumPy images.

    uint8 images stay uint8: the models convert them to floats on the device,
    which moves 4x fewer bytes through the input pipeline.

    Args:
        images: array (N, H, W, 1 or 3), uint8 or float in [0, 1].
        labels: array (N,), optional. When given, the dataset yields
            `(images, labels)` batches; otherwise image batches only.
        batch_size: int. Images per batch.
        shuffle: bool. Shuffle over the whole array, differently every epoch
            (the first order is fixed by `seed`).
        seed: int. Shuffle seed.
        drop_remainder: bool. Drop the last, smaller batch (keeps every
            batch the same shape, e.g. for contrastive losses).
        repeat: bool. Repeat forever (then pass `steps_per_epoch` to `fit`).

    Returns:
        A `tf.data.Dataset`.

    Example:
    >>> (x, y), _ = kerassl.datasets.load_digits()
    >>> ds = kerassl.datasets.to_dataset(x, batch_size=128, drop_remainder=True)
    >>> model.fit(ds, epochs=10)
    """
    import tensorflow as tf

    images = check_numpy_images(images)
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    if len(images) == 0:
        raise ValueError("images is empty: there is nothing to iterate over.")
    if drop_remainder and batch_size > len(images):
        raise ValueError(
            f"batch_size={batch_size} with drop_remainder=True drops all "
            f"{len(images)} images; lower batch_size or set drop_remainder=False."
        )
    if labels is None:
        tensors = images
    else:
        labels = np.asarray(labels)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if len(labels) != len(images):
            raise ValueError(
                f"labels has {len(labels)} entries but images has {len(images)}; "
                "they must match one to one."
            )
        tensors = (images, labels)
    dataset = tf.data.Dataset.from_tensor_slices(tensors)
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)


def subset_indices(total, limit, seed=0):
    """The indices a `limit`/`train_limit` argument keeps.

    `np.random.default_rng(seed).choice(total, limit, replace=False)`, in the
    order drawn (not sorted); all of `range(total)` when `limit` is None or
    not smaller than `total`.

    Example:
    >>> len(kerassl.datasets.subset_indices(50000, 10000, seed=0))
    10000
    """
    if limit is None:
        return np.arange(total)
    if not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ValueError(f"limit must be a positive integer or None; got {limit!r}.")
    if limit >= total:
        return np.arange(total)
    return np.random.default_rng(seed).choice(total, limit, replace=False)


def extract_archive(path):
    """Unpacks a tarball once under `cache_dir()` and returns the folder.

    The folder name carries a hash of the archive's content, so a changed
    archive is unpacked again. Unpacking goes to a temporary folder renamed
    when complete; members that would land outside it are refused.

    Example:
    >>> root = kerassl.datasets.extract_archive("cifar10-jpeg.tar.gz")
    """
    path = _existing_path(path)
    target = cache_dir() / "archives" / f"{_archive_stem(path)}-{_content_key(path)}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = pathlib.Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
    try:
        with tarfile.open(path) as archive:
            if hasattr(tarfile, "data_filter"):
                archive.extractall(temp, filter="data")
            else:  # Python without PEP 706: refuse paths that escape `temp`.
                for member in archive.getmembers():
                    resolved = (temp / member.name).resolve()
                    if temp.resolve() not in resolved.parents and resolved != temp.resolve():
                        raise ValueError(f"{path} holds an unsafe path: {member.name}")
                archive.extractall(temp)
        try:
            os.rename(temp, target)
        except OSError:
            if not target.is_dir():  # Not another process winning the race.
                raise
    except tarfile.TarError as error:
        raise ValueError(f"Could not read the archive {path}: {error}") from error
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    return target


# --- internals ---------------------------------------------------------------


def _download_error(name, url, filename, error):
    return DatasetDownloadError(
        f"Downloading {name} from {url} failed ({type(error).__name__}: {error}). "
        f"Without network access, fetch {filename} elsewhere, copy it here and pass "
        f"its location with path=, e.g. kerassl.datasets."
        f"{'mnist' if name == 'MNIST' else 'cifar10'}(path='/data/{filename}')."
    )


def _existing_path(path):
    path = pathlib.Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"No such file or folder: {path}")
    return path


def _is_archive(path):
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _archive_stem(path):
    name = path.name
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _content_key(path):
    """A short hash naming a cache entry: file content, or a folder's listing."""
    digest = hashlib.sha256()
    if path.is_file():
        with open(path, "rb") as file:
            for chunk in iter(lambda: file.read(1 << 20), b""):
                digest.update(chunk)
    else:
        digest.update(str(path.resolve()).encode())
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            stat = file.stat()
            digest.update(f"{file.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]


def _cached_arrays(name, path, decode):
    """Returns decode(folder) for a folder or tarball, cached as an .npz."""
    cached = cache_dir() / "arrays" / f"{name}-{_archive_stem(path)}-{_content_key(path)}.npz"
    if cached.is_file():
        try:
            return _read_npz(cached)
        except (OSError, ValueError, KeyError):
            cached.unlink(missing_ok=True)  # Unreadable: decode again.
    folder = extract_archive(path) if _is_archive(path) else path
    if not folder.is_dir():
        raise ValueError(
            f"{path} is neither a folder nor a .tar.gz/.tgz/.tar archive nor an .npz."
        )
    arrays = decode(folder)
    _write_npz(cached, arrays)
    return arrays


def _write_npz(path, arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=".partial-", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)
        os.chmod(temp, _default_file_mode())  # mkstemp makes files private (0600).
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def _default_file_mode():
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _read_npz(path):
    keys = ("x_train", "y_train", "x_test", "y_test")
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in keys if k not in data.files]
        if missing:
            raise KeyError(
                f"{path} lacks the arrays {missing}; expected keys {list(keys)} "
                f"(found {data.files})."
            )
        return {k: data[k] for k in keys}


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
        files, labels, _ = _labelled_files(
            layout_root / split, CIFAR10_CLASSES, closed_set=True
        )
        arrays[f"x_{split}"] = read_images(files, (32, 32), 3)
        arrays[f"y_{split}"] = np.asarray(labels, "int32")
    return arrays


def _find_cifar10_root(folder):
    for candidate in (folder, folder / "cifar-10-batches-py", _skip_wrapper_folder(folder)):
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


def _skip_wrapper_folder(folder):
    """Descends through single folders that hold only folders (archive wrappers)."""
    while True:
        entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
        if len(entries) != 1 or not entries[0].is_dir():
            return folder
        inner = [p for p in entries[0].iterdir() if not p.name.startswith(".")]
        if not inner or any(not p.is_dir() for p in inner):
            return folder
        folder = entries[0]


def _image_files(folder):
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )


def _labelled_files(root, class_names=None, closed_set=False):
    """Files of each class folder, and their labels (index in class_names).

    By default `class_names` picks folders: every name must exist, other
    folders are ignored. With `closed_set`, `class_names` lists the only
    folders allowed (a stray folder is an error), and some may be absent.
    """
    if not root.is_dir():
        raise ValueError(f"Expected a folder of class subfolders at {root}.")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if class_names is None:
        class_names = found
    else:
        class_names = list(class_names)
        unknown = sorted(set(found) - set(class_names))
        if unknown and closed_set:
            raise ValueError(
                f"{root} has class folders {unknown} that are not among the "
                f"expected classes {class_names}."
            )
        missing = [c for c in class_names if c not in found]
        if missing and not closed_set:
            raise ValueError(f"{root} lacks the class folders {missing} (found {found}).")
    if not class_names:
        raise ValueError(
            f"{root} has no class subfolders; with labels='inferred' each class "
            "needs its own folder. Pass labels=None to read images without labels."
        )
    files, labels = [], []
    for label, name in enumerate(class_names):
        if not (root / name).is_dir():
            continue
        class_files = _image_files(root / name)
        files += class_files
        labels += [label] * len(class_files)
    return files, labels, class_names


def _check_channels(channels):
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB); got {channels!r}.")


def _check_image_size(image_size):
    size = (image_size, image_size) if np.isscalar(image_size) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in size):
        raise ValueError(
            f"image_size must be a positive int or (height, width); got {image_size!r}."
        )
    return tuple(int(s) for s in size)


def _pil_resample(interpolation):
    from PIL import Image

    choices = {"bilinear": Image.Resampling.BILINEAR, "nearest": Image.Resampling.NEAREST}
    if interpolation not in choices:
        raise ValueError(
            f"interpolation must be one of {sorted(choices)}; got {interpolation!r}."
        )
    return choices[interpolation]


def _resize_batch(images, image_size, interpolation):
    from PIL import Image

    resample = _pil_resample(interpolation)
    height, width = image_size
    out = np.empty((len(images), height, width, images.shape[-1]), "uint8")
    for i, image in enumerate(images):
        for c in range(images.shape[-1]):
            resized = Image.fromarray(image[..., c]).resize((width, height), resample)
            out[i, ..., c] = np.asarray(resized)
    return out
