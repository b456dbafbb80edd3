"""`wrap`: any Keras image model as an encoder with pooled (B, D) features; `feature_dim`."""

import keras
from keras import layers

_POOLING_2D = {"avg": layers.GlobalAveragePooling2D, "max": layers.GlobalMaxPooling2D}
_POOLING_1D = {"avg": layers.GlobalAveragePooling1D, "max": layers.GlobalMaxPooling1D}


def _single_input_shape(model, input_shape):
    if input_shape is not None:
        return tuple(input_shape)
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):
        raise ValueError(
            f"Cannot tell the input shape of model {model.name!r} (it was never "
            "built on a known input). Pass `input_shape=(height, width, channels)` "
            "to kerassl.backbones.wrap."
        ) from None
    if isinstance(shape, dict) or (
        isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple))
    ):
        raise ValueError(
            f"Model {model.name!r} has several inputs ({shape}); an encoder takes "
            "one batch of images. Wrap a model with a single image input."
        )
    return tuple(shape)[1:]


def wrap(model, pooling="avg", name=None, input_shape=None, preprocessing=None):
    """Turns any Keras image model into an encoder with pooled (B, D) features.

    - 4-D output (B, h, w, c), e.g. `keras.applications` with
      `include_top=False` or a keras-hub ResNet backbone: global average (or
      max) pooling over h and w.
    - 3-D output (B, tokens, dim), e.g. a ViT or DINOv2 backbone: mean (or
      max) over the tokens.
    - 2-D output: the model already is an encoder and is returned unchanged
      (or, with `preprocessing`, nested behind it).

    The model is nested as one layer of the new functional model, so
    `encoder.get_layer(model.name)` gives it back (to freeze it, for example).

    Args:
        model: keras.Model with one image input and one output.
        pooling: str. "avg" or "max".
        name: str or None. Name of the encoder; default `"<model.name>_encoder"`.
        input_shape: tuple or None. (height, width, channels) for a model that
            does not know its input shape (an unbuilt subclassed model).
        preprocessing: keras Layer or None. Applied to the [0, 1] images before
            the model, e.g. `keras.layers.Rescaling(255.0)` for
            `keras.applications` models that expect 0-255 inputs.

    Returns:
        A keras.Model mapping (B, H, W, C) images to (B, D).

    Example:
    >>> base = keras.applications.MobileNetV3Small(
    ...     include_top=False, weights=None, input_shape=(32, 32, 3))
    >>> encoder = kerassl.backbones.wrap(
    ...     base, preprocessing=keras.layers.Rescaling(255.0))
    >>> encoder.output.shape
    (None, 576)
    """
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"wrap expects a keras.Model; got {type(model).__name__}."
        )
    if pooling not in _POOLING_2D:
        raise ValueError(f"pooling must be 'avg' or 'max'; got {pooling!r}.")
    shape = _single_input_shape(model, input_shape)
    inputs = keras.Input(shape=shape, name=f"{model.name}_images")
    x = preprocessing(inputs) if preprocessing is not None else inputs
    features = model(x)
    if isinstance(features, (list, tuple, dict)):
        raise ValueError(
            f"Model {model.name!r} has several outputs; an encoder needs one. "
            "Build a model with the single feature output you want, then wrap it."
        )
    rank = len(features.shape)
    if rank == 2:
        if preprocessing is None:
            return model
        pooled = features
    elif rank == 4:
        pooled = _POOLING_2D[pooling](name=f"{pooling}_pool")(features)
    elif rank == 3:
        pooled = _POOLING_1D[pooling](name=f"{pooling}_token_pool")(features)
    else:
        raise ValueError(
            f"Model {model.name!r} outputs shape {tuple(features.shape)} (rank "
            f"{rank}); wrap handles feature maps (B, h, w, c), token sequences "
            "(B, tokens, dim) and features (B, D)."
        )
    return keras.Model(inputs, pooled, name=name or f"{model.name}_encoder")


def _output_shape(encoder):
    try:
        return tuple(encoder.output.shape)
    except (AttributeError, ValueError):
        pass
    try:
        return tuple(encoder.output_shape)
    except (AttributeError, ValueError, TypeError):
        raise ValueError(
            f"Cannot tell the output shape of {getattr(encoder, 'name', encoder)!r}: "
            "build it on a keras.Input first, or use kerassl.backbones.wrap(encoder)."
        ) from None


def feature_dim(encoder):
    """The number of features D an encoder outputs, (B, D).

    Args:
        encoder: keras.Model with a single 2-D output.

    Returns:
        int.

    Example:
    >>> kerassl.backbones.feature_dim(kerassl.backbones.resnet18(width=16))
    128
    """
    shape = _output_shape(encoder)
    if shape and isinstance(shape[0], (list, tuple)):
        raise ValueError(
            f"Encoder {encoder.name!r} has several outputs {shape}; an encoder "
            "needs one (B, D) output."
        )
    if len(shape) != 2:
        raise ValueError(
            f"Encoder {encoder.name!r} outputs shape {shape} (rank {len(shape)}), "
            "not pooled features (B, D). Use kerassl.backbones.wrap(encoder) to "
            "pool its feature map or tokens."
        )
    if shape[1] is None:
        raise ValueError(
            f"Encoder {encoder.name!r} outputs shape {shape} with an unknown "
            "feature size; its last layer must have a fixed number of units."
        )
    return int(shape[1])
