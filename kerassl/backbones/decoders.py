"""Decoders: feature vectors (or noise) to images, for autoencoders and GANs.

Reference: Radford et al., "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks", 2015 (https://arxiv.org/abs/1511.06434).
"""

import keras
from keras import layers

MAX_UPSAMPLING_STAGES = 4
MIN_START_SIDE = 4


def upsampling_stages(height, width):
    """How many 2x upsamplings lead from a small map (side >= 4 px) to (height, width)."""
    stages = 0
    while stages < MAX_UPSAMPLING_STAGES:
        factor = 2 ** (stages + 1)
        if height % factor or width % factor or min(height, width) // factor < MIN_START_SIDE:
            break
        stages += 1
    return stages


def conv_decoder(feature_dim, image_shape, width=32, output_activation="sigmoid", name="decoder"):
    """A convolutional decoder from feature vectors to images (DCGAN's generator layout).

    Dense to a small map (the image halved as often as both sides allow while
    staying at least 4 px), then stride-2 Conv2DTranspose stages, each halving
    the channels and doubling the size, with BatchNorm and ReLU; the last
    stage outputs the image channels through `output_activation`.

    Args:
        feature_dim: int. Size of the input vectors.
        image_shape: tuple (height, width, channels) of the output images.
        width: int. Channels of the last hidden stage; the first has
            width * 2**(stages - 1).
        output_activation: str. "sigmoid" gives images in [0, 1].
        name: str.

    Returns:
        A functional keras.Model mapping (B, feature_dim) to (B, H, W, C).

    Example:
    >>> decoder = kerassl.backbones.decoders.conv_decoder(128, (32, 32, 3))
    >>> decoder.output.shape
    (None, 32, 32, 3)
    """
    height, image_width, channels = (int(s) for s in image_shape)
    stages = upsampling_stages(height, image_width)
    scale = 2**stages
    hidden = width * 2 ** max(stages - 1, 0)
    inputs = keras.Input((int(feature_dim),), name=f"{name}_features")
    x = layers.Dense(
        (height // scale) * (image_width // scale) * hidden, use_bias=False, name="project"
    )(inputs)
    x = layers.BatchNormalization(name="project_bn")(x)
    x = layers.ReLU(name="project_relu")(x)
    x = layers.Reshape((height // scale, image_width // scale, hidden), name="to_map")(x)
    for stage in range(stages - 1):
        hidden = max(hidden // 2, 1)
        x = layers.Conv2DTranspose(
            hidden, 4, strides=2, padding="same", use_bias=False, name=f"up{stage + 1}"
        )(x)
        x = layers.BatchNormalization(name=f"up{stage + 1}_bn")(x)
        x = layers.ReLU(name=f"up{stage + 1}_relu")(x)
    if stages:
        x = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", name="to_image")(x)
    else:
        x = layers.Conv2D(channels, 3, padding="same", name="to_image")(x)
    outputs = layers.Activation(output_activation, dtype="float32", name="image")(x)
    return keras.Model(inputs, outputs, name=name)


def dcgan_generator(latent_dim, image_shape, width=64, name="generator"):
    """DCGAN's generator: project and reshape, then fractionally-strided convolutions.

    BatchNorm and ReLU in every hidden layer, no pooling or fully connected
    hidden layers (Radford et al., 2015). The output goes through a sigmoid
    so images are in [0, 1], kerassl's convention (the paper's tanh,
    rescaled: sigmoid(2x) = (tanh(x) + 1) / 2).

    Args:
        latent_dim: int. Size of the noise vectors.
        image_shape: tuple (height, width, channels).
        width: int. Channels of the last hidden layer, doubling towards the
            input: 32x32 images with width 64 go 256 (4x4), 128, 64, 3.
        name: str.

    Returns:
        A functional keras.Model from (B, latent_dim) to (B, H, W, C).
    """
    return conv_decoder(latent_dim, image_shape, width=width, name=name)
