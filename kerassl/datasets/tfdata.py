"""tf.data helpers: NumPy images as a batched, shuffled, prefetched dataset."""

import numpy as np

from kerassl.images import check_numpy_images


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
