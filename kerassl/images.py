"""One place that checks and normalizes image inputs.

Every method, evaluation helper and `finetune` goes through these two functions,
so the same mistake gets the same message everywhere.
"""

import numpy as np
from keras import ops

FLOAT_RANGE_HINT = (
    "Pass uint8 images (0-255, scaled for you) or float images already in [0, 1]."
)


def check_image_shape(shape, what="images"):
    """Raises a ValueError unless `shape` is (batch, height, width, 1 or 3).

    Args:
        shape: tuple. The static shape of a batch of images.
        what: str. How the message names the input.
    """
    shape = tuple(shape)
    if len(shape) != 4:
        hint = ""
        if len(shape) == 3:
            hint = (
                " A rank-3 array is one image or a batch of grayscale images: add "
                "the missing axis with `x[None]` (one image) or `x[..., None]` "
                "(grayscale batch)."
            )
        raise ValueError(
            f"{what} must be a rank-4 batch (batch, height, width, channels); "
            f"got shape {shape} (rank {len(shape)}).{hint}"
        )
    channels = shape[-1]
    if channels is not None and channels not in (1, 3):
        raise ValueError(
            f"{what} must have 1 (grayscale) or 3 (RGB) channels on the last axis "
            f"(channels-last); got shape {shape} with {channels} channels. If your "
            "array is channels-first, transpose it: `x.transpose(0, 2, 3, 1)`."
        )


def check_image_dtype(dtype, what="images"):
    """Raises a TypeError for dtypes that are not uint8 or floating point."""
    name = str(getattr(dtype, "name", dtype))
    if name == "uint8" or "float" in name:
        return
    raise TypeError(f"{what} have dtype {name}. {FLOAT_RANGE_HINT}")


def to_float_images(images, dtype="float32", what="images"):
    """Validates a batch of images and returns it as floats in [0, 1].

    Works on any backend tensor or NumPy array, inside or outside a compiled
    step: only the static shape and dtype are inspected.

    Args:
        images: tensor or array of shape (batch, height, width, 1 or 3),
            uint8 in [0, 255] or float in [0, 1].
        dtype: str. The float dtype to return.
        what: str. How error messages name the input.

    Example:
    >>> x = np.zeros((2, 8, 8, 3), "uint8")
    >>> kerassl.images.to_float_images(x).shape
    (2, 8, 8, 3)
    """
    check_image_shape(ops.shape(images), what)
    check_image_dtype(images.dtype, what)
    if "uint8" in str(images.dtype):
        return ops.cast(images, dtype) / 255.0
    return ops.cast(images, dtype)


def check_numpy_images(images, what="images"):
    """Checks a NumPy batch eagerly, including the value range of floats.

    Float images in [0, 255] are the most common silent mistake; they are cheap
    to catch on arrays before training starts.
    """
    images = np.asarray(images)
    check_image_shape(images.shape, what)
    check_image_dtype(images.dtype, what)
    if images.dtype.kind == "f" and images.size:
        sample = images[: min(len(images), 256)]
        if not np.all(np.isfinite(sample)):
            raise ValueError(f"{what} contain NaN or infinite values.")
        if sample.max() > 1.5 or sample.min() < -0.5:
            raise ValueError(
                f"float {what} must be in [0, 1]; found values in "
                f"[{sample.min():.3g}, {sample.max():.3g}]. Divide by 255, or pass "
                "the uint8 array as it is."
            )
    return images
