"""A small, fast convnet encoder for demos, tests and small images."""

import keras
from keras import layers

from kerassl.backbones.resnet import (
    BN_EPSILON,
    BN_MOMENTUM,
    check_input_shape,
    check_positive_int,
    conv_bn,
    inputs_and_normalized,
)


def small_convnet(
    input_shape=(32, 32, 3),
    width=32,
    feature_dim=128,
    normalization=None,
    name="small_convnet",
):
    """A small, fast convnet encoder for demos, tests and small images.

    Three stages of two conv-BN-ReLU layers with width, 2*width and 4*width
    channels. The first stage runs at full resolution; the next two each
    start with a stride-2 conv, so an 8x8 input ends at 2x2 and a 32x32 one at
    8x8 before global average pooling. A Dense-BN-ReLU layer then maps to
    `feature_dim` features.

    Args:
        input_shape: tuple. (height, width, channels); spatial sizes may be None.
        width: int. Channels of the first stage.
        feature_dim: int or None. Size of the output features; None skips the
            Dense layer and returns the 4*width pooled channels.
        normalization: None or (mean, std); see `resnet18`.
        name: str. The model name.

    Returns:
        A functional keras.Model mapping (B, H, W, C) images to (B, feature_dim).

    Example:
    >>> encoder = kerassl.backbones.small_convnet(input_shape=(8, 8, 1))
    >>> kerassl.backbones.feature_dim(encoder)
    128
    """
    input_shape = check_input_shape(input_shape)
    check_positive_int(width, "width")
    if feature_dim is not None:
        check_positive_int(feature_dim, "feature_dim")
    inputs, x = inputs_and_normalized(input_shape, normalization, name)
    for stage in range(3):
        filters = width * 2**stage
        x = conv_bn(x, filters, 3, 1 if stage == 0 else 2, f"stage{stage + 1}_1")
        x = conv_bn(x, filters, 3, 1, f"stage{stage + 1}_2")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if feature_dim is not None:
        x = layers.Dense(feature_dim, use_bias=False, name="features_dense")(x)
        x = layers.BatchNormalization(
            momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name="features_bn"
        )(x)
        x = layers.ReLU(name="features_relu")(x)
    return keras.Model(inputs, x, name=name)
