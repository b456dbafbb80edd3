"""One place that checks and normalizes image inputs, and the image ops under everything.

Every method, evaluation helper and `finetune` goes through these checks, so the
same mistake gets the same message everywhere. The resampling weights
(`interpolation_matrix`, `crop_and_resize`) serve both the augmentation layers
and the ViT's position-embedding interpolation, so they live at the bottom.
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
        check_finite_range(images, what)
    return images


def check_finite_range(images, what="images", chunk=1024):
    """Checks every float image (not a sample) for NaN, infinity and the [0, 1] range.

    Streams over `chunk` images at a time, so a memory-mapped array is read
    once and never copied whole; the error names the first bad image.
    """
    low, high = np.inf, -np.inf
    for start in range(0, len(images), chunk):
        block = images[start : start + chunk]
        finite = np.isfinite(block).reshape(len(block), -1).all(axis=1)
        if not finite.all():
            index = start + int(np.argmin(finite))
            raise ValueError(
                f"{what}[{index}] contains NaN or infinite values. Drop or repair that "
                "image (e.g. `np.nan_to_num`) before training."
            )
        low, high = min(low, float(block.min())), max(high, float(block.max()))
    if high > 1.5 or low < -0.5:
        raise ValueError(
            f"float {what} must be in [0, 1]; found values in [{low:.3g}, {high:.3g}]. "
            "Divide by 255, or pass the uint8 array as it is."
        )


def interpolation_matrix(start, length, in_size, out_size, antialias=True):
    """Per-sample 1-D resampling weights, shape (batch, out_size, in_size).

    Output pixel `i` samples the input at `start + (i + 0.5) / out_size * length`
    (relative coordinates). Weights come from a triangle kernel, which is
    exactly bilinear interpolation when upsampling; when downsampling and
    `antialias` is set, the kernel widens to the source footprint of one output
    pixel, as in `tf.image.resize(antialias=True)`. Resizing by two such
    matrices keeps the crop differentiable, jit-compilable and cheap at SSL
    image sizes.

    Args:
        start: tensor (batch,). Crop start, relative to the input axis.
        length: tensor (batch,). Crop length, relative to the input axis.
        in_size: int. Input pixels along the axis.
        out_size: int. Output pixels along the axis.
        antialias: bool. Widen the kernel when downsampling.
    """
    dtype = start.dtype
    centres = (ops.arange(out_size, dtype=dtype) + 0.5) / out_size
    source = (start[:, None] + centres[None, :] * length[:, None]) * in_size - 0.5
    source = ops.clip(source, 0.0, in_size - 1.0)
    support = ops.ones_like(length)
    if antialias:
        support = ops.maximum(support, length * in_size / out_size)
    distance = ops.abs(source[:, :, None] - ops.arange(in_size, dtype=dtype)[None, None, :])
    weights = ops.relu(1.0 - distance / support[:, None, None])
    return weights / ops.sum(weights, axis=-1, keepdims=True)


def crop_and_resize(images, boxes, size, antialias=True):
    """Crops one box per image and resizes it, with bilinear weights.

    Args:
        images: tensor (batch, height, width, channels).
        boxes: tensor (batch, 4) of (top, left, box_height, box_width) in
            relative coordinates ([0, 1]).
        size: (height, width) of the output.
        antialias: bool. Widen the kernel when a crop shrinks.
    """
    height, width = images.shape[1], images.shape[2]
    # Coordinates in float32 under every policy: 16-bit floats lose sub-pixel
    # positions, and TensorFlow has no float16 `range`.
    boxes = ops.cast(boxes, "float32")
    rows = interpolation_matrix(boxes[:, 0], boxes[:, 2], height, size[0], antialias)
    cols = interpolation_matrix(boxes[:, 1], boxes[:, 3], width, size[1], antialias)
    rows, cols = ops.cast(rows, images.dtype), ops.cast(cols, images.dtype)
    images = ops.einsum("boh,bhwc->bowc", rows, images)
    return ops.einsum("bpw,bowc->bopc", cols, images)
