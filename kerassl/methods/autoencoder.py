"""Autoencoders, plain and denoising: learn features by reconstructing the image."""

import keras
import numpy as np
from keras import ops

from kerassl.backbones.decoders import conv_decoder, upsampling_stages  # noqa: F401  (0.1.0 names)
from kerassl.images import check_numpy_images
from kerassl.methods.base import SSLMethod, split_inputs
from kerassl.registry import register

NOISES = (None, "gaussian", "masking")
LOSSES = ("mse", "bce")
DEFAULT_NOISE_LEVEL = {"gaussian": 0.2, "masking": 0.25}
def corrupt(images, noise, level, seed):
    """The denoising autoencoder's corruption of images in [0, 1].

    "gaussian" adds N(0, level^2) noise and clips to [0, 1]; "masking" sets a
    random fraction `level` of the pixels (all channels of a pixel together)
    to 0, Vincent et al.'s masking noise; None returns the images.
    """
    if noise is None:
        return images
    if noise == "gaussian":
        noisy = images + level * keras.random.normal(ops.shape(images), seed=seed)
        return ops.clip(noisy, 0.0, 1.0)
    shape = ops.shape(images)
    keep = keras.random.uniform((shape[0], shape[1], shape[2], 1), seed=seed) >= level
    return images * ops.cast(keep, images.dtype)


@register
class Autoencoder(SSLMethod):
    """An autoencoder: the encoder's feature vector must be enough to redraw the image.

    The encoder maps (optionally corrupted) images to its pooled feature vector
    and a decoder draws the clean image back from that vector alone, trained
    with a pixel loss. With `noise` set it is a denoising autoencoder (Vincent
    et al., 2008): the input is corrupted, the target stays clean, so the
    features must capture structure rather than copy pixels.
    `reconstruction_error` (mean squared error per pixel, whatever the loss)
    is logged.

    Without a `decoder`, one is built for the training image size and the
    encoder's feature size (`conv_decoder`: Dense to a small map, then
    transposed-conv stages, sigmoid output), so any encoder whose feature
    dimension is known works, the built-in backbones included.

    `model.predict(images)` returns encoder features as for every method;
    `model.reconstruct(images)` returns the reconstructions.

    Args:
        encoder: keras.Model. Images (batch, H, W, C) in [0, 1] to features (batch, D).
        decoder: keras.Model or None. Features (batch, D) to images (batch, H, W, C)
            in [0, 1]; built with `conv_decoder` when None.
        noise: None, "gaussian" or "masking". Corruption of the inputs.
        noise_level: float or None. Standard deviation of the gaussian noise
            (default 0.2) or fraction of masked pixels (default 0.25).
        loss: "mse" or "bce" (binary cross-entropy on pixel intensities).
        decoder_width: int. `width` of the default decoder.
        num_classes: int or None. Enables the online linear probe.
        seed: int or None. Seeds the noise.

    Example:
    ```python
    encoder = kerassl.backbones.small_convnet(input_shape=(32, 32, 3))
    model = kerassl.Autoencoder(encoder, noise="gaussian")
    model.compile(optimizer="adam")
    model.fit(images, epochs=10, batch_size=128)
    kerassl.viz.reconstructions(images[:8], model.reconstruct(images[:8]), "ae.png")
    ```

    Reference: Vincent et al., "Extracting and Composing Robust Features with
    Denoising Autoencoders", ICML 2008
    (https://www.cs.toronto.edu/~larocheh/publications/icml-2008-denoising-autoencoders.pdf).
    """

    nested_config_keys = ("encoder", "decoder")

    def __init__(
        self,
        encoder,
        decoder=None,
        noise=None,
        noise_level=None,
        loss="mse",
        decoder_width=32,
        num_classes=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(encoder, num_classes=num_classes, seed=seed, **kwargs)
        if noise not in NOISES:
            raise ValueError(f"noise must be one of {NOISES}; got {noise!r}.")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}; got {loss!r}.")
        if noise is not None and noise_level is None:
            noise_level = DEFAULT_NOISE_LEVEL[noise]
        if noise_level is not None:
            noise_level = float(noise_level)
            upper = 1.0 if noise == "masking" else float("inf")
            if not 0.0 < noise_level < upper:
                raise ValueError(
                    f"noise_level for {noise!r} noise must be in (0, {upper}); got {noise_level}."
                )
        if decoder is not None and not isinstance(decoder, keras.layers.Layer):
            raise TypeError(
                f"decoder must be a Keras model or layer; got {type(decoder).__name__}."
            )
        self.decoder = decoder
        self.noise = noise
        self.noise_level = noise_level
        self.reconstruction_loss = loss
        self.decoder_width = int(decoder_width)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.reconstruction_error_tracker = keras.metrics.Mean(name="reconstruction_error")

    def build(self, input_shape):
        image_shape = self.image_shape(input_shape)
        feature_dim = self.build_encoder(image_shape)
        if self.decoder is None:
            if None in image_shape[1:] or feature_dim is None:
                raise ValueError(
                    "the default decoder needs static image sizes and a known feature "
                    f"size; got images {image_shape} and features {feature_dim}. Pass "
                    "`decoder=` (features to images), or train on fixed-size images."
                )
            self.decoder = conv_decoder(feature_dim, image_shape[1:], width=self.decoder_width)
        if not self.decoder.built:
            self.decoder.build((None, feature_dim))
        output_shape = tuple(self.decoder.compute_output_shape((None, feature_dim)))
        if output_shape[1:] != tuple(image_shape[1:]):
            raise ValueError(
                f"the decoder maps features (None, {feature_dim}) to {output_shape}, but "
                f"the images are {tuple(image_shape)}: it must output the image shape."
            )
        self.build_probe(feature_dim)
        self.built = True

    def call(self, inputs, training=False):
        if not training:
            return super().call(inputs)
        images, _ = split_inputs(inputs)
        images = self.prepare_images(images)
        noisy = corrupt(images, self.noise, self.noise_level, self.seed_generator)
        features = self.encoder(noisy, training=self.layers_training)
        return {
            "features": features,
            "reconstructions": self.decoder(features, training=self.layers_training),
            "targets": images,
        }

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        y_pred, labels = self.training_outputs(x, y, y_pred, training)
        targets = ops.cast(y_pred["targets"], "float32")
        outputs = ops.cast(y_pred["reconstructions"], "float32")
        squared_error = ops.mean(ops.square(outputs - targets))
        if self.reconstruction_loss == "mse":
            loss = squared_error
        else:
            epsilon = keras.config.epsilon()
            outputs = ops.clip(outputs, epsilon, 1.0 - epsilon)
            loss = -ops.mean(targets * ops.log(outputs) + (1.0 - targets) * ops.log(1.0 - outputs))
        self.reconstruction_error_tracker.update_state(squared_error)
        return loss + self.online_probe_loss(labels, y_pred["features"])

    def reconstruct(self, images, batch_size=256):
        """Reconstructions of clean (uncorrupted) images, as a NumPy float array in [0, 1].

        Args:
            images: array (N, H, W, C), uint8 or float in [0, 1].
            batch_size: int. Images per forward pass.

        Returns:
            float32 array (N, H, W, C).
        """
        images = check_numpy_images(np.asarray(images))
        if not self.built:
            self.build((None, *images.shape[1:]))
        batches = []
        for start in range(0, len(images), int(batch_size)):
            batch = self.prepare_images(ops.convert_to_tensor(images[start : start + batch_size]))
            features = self.encoder(batch, training=False)
            batches.append(ops.convert_to_numpy(self.decoder(features, training=False)))
        return np.concatenate(batches).astype("float32")

    def get_config(self):
        config = super().get_config()
        config.update(
            decoder=keras.saving.serialize_keras_object(self.decoder),
            noise=self.noise,
            noise_level=self.noise_level,
            loss=self.reconstruction_loss,
            decoder_width=self.decoder_width,
        )
        return config
