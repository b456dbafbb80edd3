"""Image datasets as NumPy arrays, and a tf.data pipeline to feed them."""

from kerassl.datasets.catalogue import (
    ARCHIVE_SUFFIXES,
    CIFAR10_CLASSES,
    CIFAR10_URL,
    DATASETS,
    IMAGE_EXTENSIONS,
    MNIST_URL,
    PROGRESS_MIN_FILES,
    DatasetDownloadError,
    _check_image_size,
    cache_dir,
    cifar10,
    extract_archive,
    image_folder,
    list_datasets,
    load_digits,
    mnist,
    read_images,
    subset_indices,
    to_dataset,
)
