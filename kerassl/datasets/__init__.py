"""Image datasets as NumPy arrays, and a tf.data pipeline to feed them.

Split by job: `catalogue` (the named datasets: digits offline, MNIST and
CIFAR-10 downloads or local copies), `folders` (folders and tarballs of image
files), `cache` (unpacked archives and decoded arrays on disk), `tfdata`
(`to_dataset`, `subset_indices`). Every public name is re-exported here.
"""

from kerassl.datasets.cache import ARCHIVE_SUFFIXES, cache_dir, extract_archive
from kerassl.datasets.catalogue import (
    CIFAR10_CLASSES,
    CIFAR10_URL,
    DATASETS,
    MNIST_URL,
    DatasetDownloadError,
    cifar10,
    list_datasets,
    load_digits,
    mnist,
)
from kerassl.datasets.folders import (
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    PROGRESS_MIN_FILES,
    FolderReport,
    ImageFolderError,
    check_image_size,
    decode_image,
    image_extensions,
    image_folder,
    read_images,
)
from kerassl.datasets.tfdata import subset_indices, to_dataset

_check_image_size = check_image_size  # the 0.1.0 name

__all__ = [
    "ARCHIVE_SUFFIXES",
    "CIFAR10_CLASSES",
    "CIFAR10_URL",
    "DATASETS",
    "IMAGE_EXTENSIONS",
    "MNIST_URL",
    "PROGRESS_MIN_FILES",
    "DatasetDownloadError",
    "FolderReport",
    "ImageFolderError",
    "MAX_PIXELS",
    "decode_image",
    "image_extensions",
    "cache_dir",
    "check_image_size",
    "cifar10",
    "extract_archive",
    "image_folder",
    "list_datasets",
    "load_digits",
    "mnist",
    "read_images",
    "subset_indices",
    "to_dataset",
]
