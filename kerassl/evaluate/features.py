"""Frozen-encoder features: the one place images become (N, D) arrays.

kNN, the linear probe, `finetune` and the kNN monitor all extract features here,
in inference mode, from uint8 or float arrays or from `tf.data` batches.
"""

import keras
import numpy as np

from kerassl.images import check_image_shape, check_numpy_images, to_float_images
from kerassl.registry import register
# resolve_jit_compile lived here; kerassl.xla is its home, below the methods that use it.
from kerassl.xla import resolve_jit_compile  # noqa: F401


@register
class ToFloatImages(keras.layers.Layer):
    """Turns uint8 images (0-255) or float images in [0, 1] into float32 [0, 1].

    Put it first in any model that takes raw images, so that `predict` accepts
    the uint8 arrays users have.

    Example:
    >>> layer = kerassl.evaluate.ToFloatImages()
    >>> keras.ops.max(layer(np.full((1, 8, 8, 3), 255, "uint8")))  # 1.0
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, images):
        return to_float_images(images, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


def is_dataset(data):
    """True for a `tf.data.Dataset` (checked without importing TensorFlow)."""
    return hasattr(data, "element_spec") and hasattr(data, "as_numpy_iterator")


def check_labels(labels, length=None, num_classes=None, what="labels"):
    """Validates integer class labels and returns them as a 1-D int64 array.

    A (N, 1) column, as `keras.datasets.cifar10` returns, is flattened.

    Args:
        labels: array-like of non-negative integers, shape (N,) or (N, 1).
        length: int or None. The number of images the labels go with.
        num_classes: int or None. Labels must be smaller than this.
        what: str. How error messages name the input.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(
            f"{what} must be a 1-D array of integer class ids, one per image; got "
            f"shape {labels.shape}. One-hot labels: convert with "
            "`labels.argmax(-1)`."
        )
    if labels.dtype.kind not in "iu":
        raise ValueError(
            f"{what} must be integer class ids; got dtype {labels.dtype}. Cast "
            "them with `labels.astype('int64')` if they hold whole numbers."
        )
    if len(labels) == 0:
        raise ValueError(f"{what} are empty: at least one labelled image is needed.")
    if length is not None and len(labels) != length:
        raise ValueError(
            f"{what} have {len(labels)} entries but there are {length} images; "
            "pass exactly one label per image."
        )
    if labels.min() < 0:
        raise ValueError(f"{what} must be >= 0; found {labels.min()}.")
    if num_classes is not None and labels.max() >= num_classes:
        raise ValueError(
            f"{what} contain class {labels.max()} but num_classes={num_classes}; "
            "labels must lie in [0, num_classes)."
        )
    return labels.astype("int64")


def check_encoder(encoder):
    if not isinstance(encoder, keras.Model):
        raise TypeError(
            "encoder must be a keras.Model mapping images to (batch, dim) features; "
            f"got {type(encoder).__name__}. For features you computed yourself, "
            "use kerassl.evaluate.knn_accuracy_from_features or pass encoder=None."
        )


def inference_model(encoder, image_shape, dtype):
    """encoder(to_float(images), training=False) as a model with its own predict."""
    dtype = "uint8" if str(dtype) == "uint8" else "float32"
    inputs = keras.Input(tuple(image_shape), dtype=dtype)
    features = encoder(ToFloatImages()(inputs), training=False)
    if len(features.shape) != 2:
        raise ValueError(
            f"The encoder returns features of shape {tuple(features.shape)}; "
            "evaluation needs (batch, dim). Pool or flatten its output, e.g. "
            "with `kerassl.backbones.wrap(model)`."
        )
    return keras.Model(inputs, features, name=f"{encoder.name}_inference")


def split_batch(element):
    """(images, labels or None) of a batch: a tuple, or a dict with the key `images`."""
    if isinstance(element, dict):
        if "images" not in element:
            raise ValueError(
                f"a dataset of dicts needs the key 'images' (and 'labels' for labels); its "
                f"keys are {sorted(element)}. Rename them, e.g. "
                "`dataset.map(lambda d: {'images': d['image'], 'labels': d['label']})`."
            )
        return element["images"], element.get("labels")
    if isinstance(element, (tuple, list)):
        return element[0], (element[1] if len(element) > 1 else None)
    return element, None


def dataset_image_spec(dataset):
    spec, _ = split_batch(dataset.element_spec)
    shape = tuple(spec.shape)
    if len(shape) == 3:
        raise ValueError(
            f"The dataset yields single images of shape {shape}; it must yield "
            "batches: call `dataset.batch(256)` first."
        )
    check_image_shape(shape, "dataset images")
    return shape, spec.dtype.name


def extract_with_labels(encoder, images, batch_size=256, verbose="auto", inference=None):
    """Returns (features, labels or None); labels only come from datasets."""
    check_encoder(encoder)
    if is_dataset(images):
        shape, dtype = dataset_image_spec(images)
        model = inference or inference_model(encoder, shape[1:], dtype)
        cardinality = int(images.cardinality())
        bar = None
        if verbose not in (0, False):
            bar = keras.utils.Progbar(cardinality if cardinality > 0 else None)
        features, labels = [], []
        for step, element in enumerate(images.as_numpy_iterator()):
            batch, batch_labels = split_batch(element)
            check_numpy_images(batch, "dataset images")
            features.append(np.asarray(model.predict_on_batch(batch)))
            if batch_labels is not None:
                labels.append(np.asarray(batch_labels))
            if bar is not None:
                bar.update(step + 1)
        if not features:
            raise ValueError("The dataset is empty: no batches to extract features from.")
        labels = np.concatenate(labels) if labels else None
        return np.concatenate(features).astype("float32"), labels
    images = check_numpy_images(images)
    if len(images) == 0:
        raise ValueError("images are empty: at least one image is needed.")
    model = inference or inference_model(encoder, images.shape[1:], images.dtype)
    features = model.predict(images, batch_size=batch_size, verbose=verbose)
    return np.asarray(features, dtype="float32"), None


def extract_features(encoder, images, batch_size=256, verbose="auto"):
    """Runs a frozen encoder over images in inference mode, batch by batch.

    Args:
        encoder: keras.Model. Maps float images in [0, 1], (B, H, W, C), to
            features (B, D). BatchNorm and dropout run in inference mode.
        images: uint8 array (0-255) or float array in [0, 1] of shape
            (N, H, W, 1 or 3), or a `tf.data.Dataset` yielding such batches or
            (images, labels) batches (its own batching is kept).
        batch_size: int. Batch size for arrays.
        verbose: "auto", 0 or 1. Progress bar.

    Returns:
        float32 array of shape (N, D).

    Example:
    >>> encoder = kerassl.backbones.resnet18(input_shape=(32, 32, 3))
    >>> features = kerassl.evaluate.extract_features(encoder, x_uint8)
    """
    features, _ = extract_with_labels(encoder, images, batch_size, verbose)
    return features


def check_features(features, what):
    features = np.asarray(features)
    if features.ndim != 2:
        raise ValueError(
            f"{what} must be a 2-D (N, dim) array; got shape {features.shape}."
        )
    if len(features) == 0:
        raise ValueError(f"{what} are empty: at least one feature vector is needed.")
    if features.dtype.kind not in "fiu":
        raise ValueError(f"{what} must be numeric; got dtype {features.dtype}.")
    features = features.astype("float32")
    if not np.all(np.isfinite(features)):
        raise ValueError(f"{what} contain NaN or infinite values.")
    return features


def features_and_labels(encoder, x, y, what, batch_size, verbose):
    if encoder is None:
        if is_dataset(x):
            raise ValueError(
                f"With encoder=None, {what} must be a feature array, not a dataset."
            )
        features, labels = check_features(x, f"{what} features"), None
    else:
        features, labels = extract_with_labels(encoder, x, batch_size, verbose)
    if y is None:
        if labels is None:
            raise ValueError(
                f"Labels for {what} are missing: pass them, or pass a dataset of "
                "(images, labels) batches."
            )
        y = labels
    return features, check_labels(y, len(features), what=f"{what} labels")
