"""ResNet encoders with CIFAR or ImageNet stems, and the conv-BN blocks other convnets share.

Every function here returns a functional `keras.Model` *encoder*: float images in
[0, 1] of shape (B, H, W, C) in, pooled features of shape (B, D) out. Any other
Keras model (a `keras.applications` network, a keras-hub backbone, your own)
becomes one with `kerassl.backbones.wrap(model)`.

Models are plain functional graphs of built-in Keras layers, so `.keras` files
load with `safe_mode=True` and no custom objects.
"""

import keras
from keras import layers

BN_MOMENTUM = 0.9  # PyTorch's 0.1: moving statistics settle within a short SSL run
BN_EPSILON = 1e-5
STEMS = ("cifar", "imagenet", "auto")
AUTO_STEM_MAX_SIZE = 64


def _conv_initializer():
    # He et al. initialize for the forward pass of ReLU nets with fan-out, as
    # torchvision does; Keras' "he_normal" uses fan-in.
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_out", distribution="untruncated_normal"
    )


def check_input_shape(input_shape):
    try:
        input_shape = tuple(input_shape)
    except TypeError:
        raise ValueError(
            f"input_shape must be a tuple (height, width, channels); got {input_shape!r}."
        ) from None
    if len(input_shape) != 3:
        raise ValueError(
            "input_shape must be (height, width, channels) without the batch axis, "
            f"e.g. (32, 32, 3); got {input_shape} (length {len(input_shape)})."
        )
    height, width, channels = input_shape
    for size in (height, width):
        if size is not None and (not isinstance(size, int) or size < 1):
            raise ValueError(
                f"input_shape spatial sizes must be positive ints or None; got {input_shape}."
            )
    if channels not in (1, 3):
        raise ValueError(
            "input_shape must end with 1 (grayscale) or 3 (RGB) channels "
            f"(channels-last); got {input_shape}."
        )
    return input_shape


def check_positive_int(value, what):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{what} must be a positive int; got {value!r}.")


def _normalization_layer(normalization, channels):
    """A Normalization layer with fixed mean and std, or None."""
    if normalization is None:
        return None
    try:
        mean, std = normalization
    except (TypeError, ValueError):
        raise ValueError(
            "normalization must be a pair (mean, std), e.g. "
            "((0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261)); "
            f"got {normalization!r}."
        ) from None
    mean = [float(m) for m in (mean if hasattr(mean, "__len__") else [mean])]
    std = [float(s) for s in (std if hasattr(std, "__len__") else [std])]
    for values, what in ((mean, "mean"), (std, "std")):
        if len(values) not in (1, channels):
            raise ValueError(
                f"normalization {what} must have 1 or {channels} values (one per "
                f"channel); got {len(values)}."
            )
    if min(std) <= 0:
        raise ValueError(f"normalization std must be positive; got {std}.")
    if len(mean) == 1:
        mean = mean * channels
    if len(std) == 1:
        std = std * channels
    return layers.Normalization(
        mean=mean, variance=[s * s for s in std], name="input_normalization"
    )


def inputs_and_normalized(input_shape, normalization, name):
    inputs = keras.Input(shape=input_shape, name=f"{name}_images")
    normalize = _normalization_layer(normalization, input_shape[-1])
    return inputs, (normalize(inputs) if normalize is not None else inputs)


def conv_bn(x, filters, kernel_size, strides, name, relu=True, zero_gamma=False):
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,  # the BatchNormalization that follows has the offset
        kernel_initializer=_conv_initializer(),
        name=f"{name}_conv",
    )(x)
    x = layers.BatchNormalization(
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        gamma_initializer="zeros" if zero_gamma else "ones",
        name=f"{name}_bn",
    )(x)
    if relu:
        x = layers.ReLU(name=f"{name}_relu")(x)
    return x


def _shortcut(x, filters, strides, name):
    if strides == 1 and x.shape[-1] == filters:
        return x
    return conv_bn(x, filters, 1, strides, f"{name}_downsample", relu=False)


def _basic_block(x, filters, strides, name, zero_init_residual):
    shortcut = _shortcut(x, filters, strides, name)
    y = conv_bn(x, filters, 3, strides, f"{name}_1")
    y = conv_bn(y, filters, 3, 1, f"{name}_2", relu=False, zero_gamma=zero_init_residual)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.ReLU(name=f"{name}_out")(y)


def _bottleneck_block(x, filters, strides, name, zero_init_residual):
    expanded = 4 * filters
    shortcut = _shortcut(x, expanded, strides, name)
    y = conv_bn(x, filters, 1, 1, f"{name}_1")
    # Stride on the 3x3 conv ("ResNet v1.5", as torchvision and timm): same
    # parameter count as the paper's stride-on-1x1, better accuracy.
    y = conv_bn(y, filters, 3, strides, f"{name}_2")
    y = conv_bn(y, expanded, 1, 1, f"{name}_3", relu=False, zero_gamma=zero_init_residual)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.ReLU(name=f"{name}_out")(y)


def _resolve_stem(stem, input_shape):
    if stem not in STEMS:
        raise ValueError(f"stem must be one of {STEMS}; got {stem!r}.")
    if stem != "auto":
        return stem
    height, width = input_shape[:2]
    if height is None or width is None:
        return "imagenet"
    return "cifar" if max(height, width) <= AUTO_STEM_MAX_SIZE else "imagenet"


def _resnet(
    block,
    blocks_per_stage,
    input_shape,
    stem,
    width,
    zero_init_residual,
    normalization,
    name,
):
    input_shape = check_input_shape(input_shape)
    check_positive_int(width, "width")
    stem = _resolve_stem(stem, input_shape)
    inputs, x = inputs_and_normalized(input_shape, normalization, name)
    if stem == "cifar":
        # 32 px images keep their resolution into the first stage (SimCLR, App. B.9).
        x = conv_bn(x, width, 3, 1, "stem")
    else:
        x = conv_bn(x, width, 7, 2, "stem")
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for stage, num_blocks in enumerate(blocks_per_stage):
        filters = width * 2**stage
        for index in range(num_blocks):
            strides = 2 if stage > 0 and index == 0 else 1
            block_name = f"stage{stage + 1}_block{index + 1}"
            x = block(x, filters, strides, block_name, zero_init_residual)
    outputs = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, outputs, name=name)


def resnet18(
    input_shape=(32, 32, 3),
    stem="auto",
    width=64,
    zero_init_residual=False,
    normalization=None,
    name="resnet18",
):
    """ResNet-18 encoder (He et al., 2016): four stages of two basic blocks.

    Reference: "Deep Residual Learning for Image Recognition",
    https://arxiv.org/abs/1512.03385. Layout follows ResNet v1: conv-BN-ReLU,
    a 1x1 conv + BN projection shortcut where the stride or width changes.
    With `width=64` and the CIFAR stem it has 11,168,832 trainable parameters
    (torchvision's resnet18 without its classifier and with a 3x3 stem).

    Args:
        input_shape: tuple. (height, width, channels); spatial sizes may be None.
        stem: str. "cifar": 3x3 conv with stride 1 and no max-pool, for small
            images; "imagenet": 7x7 conv with stride 2 and a 3x3 max-pool with
            stride 2; "auto": "cifar" when both sizes are at most 64 px,
            "imagenet" otherwise (also when a size is None).
        width: int. Channels of the stem and the first stage; stages use
            width, 2*width, 4*width, 8*width. The output has 8*width features.
        zero_init_residual: bool. Start the last BatchNormalization gamma of each
            residual block at zero, so every block starts as the identity
            (Goyal et al., 2017, https://arxiv.org/abs/1706.02677).
        normalization: None or (mean, std), each a float or one value per
            channel. Inputs stay in [0, 1]; when given, a Normalization layer
            inside the model computes (x - mean) / std.
        name: str. The model name.

    Returns:
        A functional keras.Model mapping (B, H, W, C) images to (B, 8*width).

    Example:
    >>> encoder = kerassl.backbones.resnet18(input_shape=(32, 32, 3), width=16)
    >>> encoder.output.shape
    (None, 128)
    """
    return _resnet(
        _basic_block, (2, 2, 2, 2), input_shape, stem, width,
        zero_init_residual, normalization, name,
    )


def resnet50(
    input_shape=(32, 32, 3),
    stem="auto",
    width=64,
    zero_init_residual=False,
    normalization=None,
    name="resnet50",
):
    """ResNet-50 encoder (He et al., 2016): bottleneck blocks, expansion 4.

    Reference: "Deep Residual Learning for Image Recognition",
    https://arxiv.org/abs/1512.03385. Stages of 3, 4, 6 and 3 bottleneck blocks
    (1x1, 3x3, 1x1 convs, each with BN) with the stride on the 3x3 conv, as in
    torchvision. With `width=64` and the ImageNet stem it has 23,508,032
    trainable parameters (torchvision's resnet50 without its classifier).

    Args:
        input_shape: tuple. (height, width, channels); spatial sizes may be None.
        stem: str. "cifar", "imagenet" or "auto"; see `resnet18`.
        width: int. Bottleneck channels of the first stage; stages output
            4*width, 8*width, 16*width and 32*width channels.
        zero_init_residual: bool. Start the last BatchNormalization gamma of each
            block at zero (every block starts as the identity).
        normalization: None or (mean, std); see `resnet18`.
        name: str. The model name.

    Returns:
        A functional keras.Model mapping (B, H, W, C) images to (B, 32*width).

    Example:
    >>> encoder = kerassl.backbones.resnet50(input_shape=(32, 32, 3), width=8)
    >>> encoder.output.shape
    (None, 256)
    """
    return _resnet(
        _bottleneck_block, (3, 4, 6, 3), input_shape, stem, width,
        zero_init_residual, normalization, name,
    )
