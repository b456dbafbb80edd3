"""GAN: learn features as a discriminator that tells real images from generated ones.

The only kerassl method with two optimizers, so the only one with its own
`train_step`, written once per backend below (TensorFlow with a gradient tape,
JAX statelessly as Keras's own JAX trainer does). Torch is not implemented.
"""


import keras
import numpy as np
from keras import layers, ops

from kerassl import distributed
from kerassl.backbones.decoders import dcgan_generator, upsampling_stages
from kerassl.losses.gan import discriminator_loss, generator_loss, sigmoid_cross_entropy  # noqa: F401
from kerassl.methods.base import SSLMethod, split_inputs
from kerassl.registry import register

SUPPORTED_BACKENDS = ("tensorflow", "jax")
DEFAULT_IMAGE_SHAPE = (32, 32, 3)


def dcgan_discriminator(image_shape, width=64, name="discriminator"):
    """DCGAN's discriminator: strided convolutions with LeakyReLU, BatchNorm after the first.

    Images in [0, 1] are rescaled to [-1, 1] (the generator's range in the
    paper), then stride-2 4x4 convolutions double the channels (width,
    2 * width, ...) as the map halves, as many times as the generator
    upsamples. The last LeakyReLU is named "trunk_output": `GAN.encoder`
    pools it. A Dense layer gives one logit per image.

    Args:
        image_shape: tuple (height, width, channels).
        width: int. Channels of the first convolution.
        name: str.

    Returns:
        A functional keras.Model from (B, H, W, C) to logits (B, 1).
    """
    height, image_width, _ = image_shape
    stages = upsampling_stages(height, image_width)
    inputs = keras.Input(tuple(image_shape), name=f"{name}_images")
    x = layers.Rescaling(2.0, offset=-1.0, name="to_symmetric_range")(inputs)
    for stage in range(max(stages, 1)):
        last = stage == max(stages, 1) - 1
        x = layers.Conv2D(
            width * 2**stage,
            4,
            strides=2 if stages else 1,
            padding="same",
            use_bias=stage == 0,
            name=f"conv{stage + 1}",
        )(x)
        if stage > 0:
            x = layers.BatchNormalization(name=f"conv{stage + 1}_bn")(x)
        x = layers.LeakyReLU(0.2, name="trunk_output" if last else f"conv{stage + 1}_lrelu")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(inputs, outputs, name=name)


def discriminator_encoder(discriminator, feature_layer=None, name="discriminator_encoder"):
    """An encoder made of the discriminator's trunk, globally average-pooled.

    It shares its layers (and weights) with the discriminator.

    Args:
        discriminator: a functional keras.Model.
        feature_layer: str or None. Name of the layer whose output is the
            trunk (a feature map (B, h, w, c), pooled, or features (B, D));
            None takes the last layer with a 4-D output.
        name: str.
    """
    try:
        if not discriminator.inputs:
            raise ValueError
    except (AttributeError, ValueError):
        raise ValueError(
            "the discriminator must be a functional keras.Model (built on keras.Input), "
            "so its trunk can be reused as the encoder."
        ) from None
    if feature_layer is None:
        maps = [
            layer
            for layer in discriminator.layers
            if not isinstance(layer, keras.layers.InputLayer) and len(layer.output.shape) == 4
        ]
        if not maps:
            raise ValueError(
                "the discriminator has no layer with a feature-map output; pass "
                "feature_layer= naming the layer whose output the encoder should use."
            )
        feature_layer = maps[-1].name
    features = discriminator.get_layer(feature_layer).output
    if len(features.shape) == 4:
        features = layers.GlobalAveragePooling2D(name="trunk_pool")(features)
    elif len(features.shape) != 2:
        raise ValueError(
            f"feature_layer {feature_layer!r} outputs shape {tuple(features.shape)}; it "
            "must be a feature map (B, h, w, c) or features (B, D)."
        )
    inputs = discriminator.inputs
    return keras.Model(inputs[0] if len(inputs) == 1 else inputs, features, name=name)


# --- the method ----------------------------------------------------------------


class _OptimizerPair:
    """Both optimizers seen as one by Keras's trainers.

    Keras's JAX trainer carries `model.optimizer.variables` through the
    compiled step and writes them back after each epoch; listing both
    optimizers' variables here keeps both states in that loop. Saving uses
    the two optimizers themselves (attributes of the model), not this view.
    """

    def __init__(self, gan):
        self.gan = gan

    @property
    def variables(self):
        gan = self.gan
        return list(gan.generator_optimizer.variables) + list(
            gan.discriminator_optimizer.variables
        )

    @property
    def built(self):
        return self.gan.generator_optimizer.built and self.gan.discriminator_optimizer.built

    @property
    def iterations(self):
        return self.gan.discriminator_optimizer.iterations

    def build(self, variables=None):
        gan = self.gan
        if not gan.generator_optimizer.built:
            gan.generator_optimizer.build(gan.generator.trainable_variables)
        if not gan.discriminator_optimizer.built:
            gan.discriminator_optimizer.build(gan.discriminator.trainable_variables)

    def scale_loss(self, loss):
        return loss


def _default_optimizer():
    return keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5)


@register
class GAN(SSLMethod):
    """A DCGAN whose discriminator becomes the encoder.

    The generator maps noise to images, the discriminator tells real images
    from generated ones; both train in turn each step, each with its own
    optimizer (Adam, learning rate 2e-4, beta_1 0.5 by default, as in the
    DCGAN paper), with the non-saturating loss and optional one-sided label
    smoothing. To tell real from fake the discriminator learns features of
    real images; `encoder` is its convolutional trunk, globally pooled, a
    keras.Model (images to (B, D)) that shares its weights and is used like
    any kerassl encoder (kNN, linear probe, `finetune`, the zoo).
    Radford et al. used the discriminator's features for classification
    the same way (they max-pooled every layer; one pooled trunk here).

    Logged: `discriminator_loss`, `generator_loss`, `real_score` and
    `fake_score` (mean D(x) on real and generated images), and `loss`, their
    sum of losses (watched for NaN). `predict(images)` returns encoder features.

    Any other pair can be passed: a generator from (B, latent_dim) noise to
    (B, H, W, C) images in [0, 1], and a functional discriminator from
    images to one logit (B, 1).

    Args:
        latent_dim: int. Size of the noise vectors (taken from `generator`
            when given).
        image_shape: tuple (height, width, channels) or None. Default
            (32, 32, 3), or the output shape of `generator`.
        generator: keras.Model or None. Defaults to `dcgan_generator`.
        discriminator: functional keras.Model or None. Defaults to
            `dcgan_discriminator`.
        feature_layer: str or None. Layer of the discriminator that the
            encoder pools; None takes its last feature-map layer.
        width: int. Width of the default networks.
        label_smoothing: float in [0, 1). Real targets are 1 - label_smoothing.
        seed: int or None. Seeds the noise of the training steps.

    Example:
    ```python
    gan = kerassl.GAN(latent_dim=128, image_shape=(32, 32, 3))
    gan.compile()  # Adam(2e-4, beta_1=0.5) for each network
    gan.fit(images, epochs=20, batch_size=128)
    kerassl.methods.gan.samples(gan, "samples.png")
    features = gan.predict(images)  # = gan.encoder.predict(images / 255)
    ```

    Reference: Radford et al., "Unsupervised Representation Learning with
    Deep Convolutional Generative Adversarial Networks", ICLR 2016
    (https://arxiv.org/abs/1511.06434).
    """

    nested_config_keys = ("generator", "discriminator")

    def __init__(
        self,
        latent_dim=128,
        image_shape=None,
        generator=None,
        discriminator=None,
        feature_layer=None,
        width=64,
        label_smoothing=0.0,
        seed=None,
        **kwargs,
    ):
        kwargs.pop("encoder", None)
        kwargs.pop("num_classes", None)
        if generator is not None:
            generator_shape = _model_io_shapes(generator, "generator")
            latent_dim = generator_shape[0][-1]
            if image_shape is None:
                image_shape = generator_shape[1][1:]
        image_shape = _check_image_shape(image_shape or DEFAULT_IMAGE_SHAPE)
        if not isinstance(latent_dim, int) or isinstance(latent_dim, bool) or latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive int; got {latent_dim!r}.")
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1); got {label_smoothing}.")
        generator = generator or dcgan_generator(latent_dim, image_shape, width)
        discriminator = discriminator or dcgan_discriminator(image_shape, width)
        _check_pair(generator, discriminator, latent_dim, image_shape)
        encoder = discriminator_encoder(discriminator, feature_layer)
        super().__init__(encoder, num_classes=None, seed=seed, **kwargs)
        self.latent_dim = latent_dim
        self.gan_image_shape = image_shape
        self.generator = generator
        self.discriminator = discriminator
        self.feature_layer = feature_layer
        self.width = int(width)
        self.label_smoothing = float(label_smoothing)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.generator_optimizer = None
        self.discriminator_optimizer = None
        self.discriminator_loss_tracker = keras.metrics.Mean(name="discriminator_loss")
        self.generator_loss_tracker = keras.metrics.Mean(name="generator_loss")
        self.real_score_tracker = keras.metrics.Mean(name="real_score")
        self.fake_score_tracker = keras.metrics.Mean(name="fake_score")
        self.build((None, *image_shape))

    build_once = False  # built in __init__; a later build adds nothing and checks the shape

    def build(self, input_shape=None):
        image_shape = (None, *self.gan_image_shape)
        input_shape = self.image_shape(input_shape) if input_shape else image_shape
        if tuple(input_shape[1:]) != tuple(image_shape[1:]):
            raise ValueError(
                f"this GAN makes and judges {image_shape[1:]} images; got images of shape "
                f"{tuple(input_shape)}. Resize the images or build the GAN with "
                f"image_shape={tuple(input_shape[1:])}."
            )
        self.build_encoder(image_shape)
        self.built = True

    # -- training ----------------------------------------------------------
    def compile(self, generator_optimizer=None, discriminator_optimizer=None, **kwargs):
        """Configures both optimizers; with no arguments, Adam(2e-4, beta_1=0.5) each.

        Args:
            generator_optimizer: optimizer, its name, or None for the default.
            discriminator_optimizer: optimizer, its name, or None for the default.
            **kwargs: passed to `keras.Model.compile` (`jit_compile`,
                `steps_per_execution`, `run_eagerly`); `optimizer`, `loss` and
                `metrics` are refused, the GAN defines its own.
        """
        for key in ("optimizer", "loss", "metrics"):
            if kwargs.get(key) is not None:
                hint = (
                    "pass generator_optimizer= and discriminator_optimizer= instead"
                    if key == "optimizer"
                    else "the GAN defines its own losses and metrics"
                )
                raise ValueError(f"GAN.compile does not take {key}=: {hint}.")
            kwargs.pop(key, None)
        if keras.config.backend() not in SUPPORTED_BACKENDS:
            raise NotImplementedError(_backend_message())
        self.generator_optimizer = keras.optimizers.get(generator_optimizer or _default_optimizer())
        self.discriminator_optimizer = keras.optimizers.get(
            discriminator_optimizer or _default_optimizer()
        )
        if self.generator_optimizer is self.discriminator_optimizer:
            raise ValueError(
                "generator_optimizer and discriminator_optimizer must be two optimizer "
                "objects: each keeps the state of its own network's variables."
            )
        super().compile(optimizer=self.discriminator_optimizer, **kwargs)
        distributed.clip_after_summing(self.generator_optimizer)
        self.optimizer = _OptimizerPair(self)
        self.optimizer.build()

    def get_compile_config(self):
        if self.generator_optimizer is None:
            return {}
        return {
            "generator_optimizer": keras.optimizers.serialize(self.generator_optimizer),
            "discriminator_optimizer": keras.optimizers.serialize(self.discriminator_optimizer),
        }

    def compile_from_config(self, config):
        self.compile(
            generator_optimizer=keras.optimizers.deserialize(config["generator_optimizer"]),
            discriminator_optimizer=keras.optimizers.deserialize(
                config["discriminator_optimizer"]
            ),
        )

    def sample_noise(self, batch_size):
        return keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)

    def _discriminator_objective(self, real_images):
        noise = self.sample_noise(ops.shape(real_images)[0])
        fake_images = ops.stop_gradient(self.generator(noise, training=True))
        real_logits = self.discriminator(real_images, training=True)
        fake_logits = self.discriminator(fake_images, training=True)
        loss = discriminator_loss(real_logits, fake_logits, self.label_smoothing)
        return loss, (real_logits, fake_logits)

    def _generator_objective(self, batch_size):
        fake_logits = self.discriminator(
            self.generator(self.sample_noise(batch_size), training=True), training=True
        )
        return generator_loss(fake_logits)

    def _update_trackers(self, d_loss, g_loss, real_logits, fake_logits):
        self.discriminator_loss_tracker.update_state(d_loss)
        self.generator_loss_tracker.update_state(g_loss)
        self.real_score_tracker.update_state(ops.mean(ops.sigmoid(real_logits)))
        self.fake_score_tracker.update_state(ops.mean(ops.sigmoid(fake_logits)))
        loss_tracker = getattr(self, "_loss_tracker", None)
        if loss_tracker is not None:
            loss_tracker.update_state(d_loss + g_loss)
        return {metric.name: metric.result() for metric in self.metrics}

    def _real_images(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        images, _ = split_inputs(x)
        if tuple(images.shape[1:]) != tuple(self.gan_image_shape):
            raise ValueError(
                f"this GAN makes and judges {tuple(self.gan_image_shape)} images; got images of "
                f"shape {tuple(images.shape[1:])}. Resize the images or build the GAN with "
                f"image_shape={tuple(images.shape[1:])}."
            )
        return self.prepare_images(images)

    def train_step(self, *args):
        distributed.per_replica_random_streams(self)
        backend = keras.config.backend()
        if backend == "tensorflow":
            return self._tensorflow_train_step(*args)
        if backend == "jax":
            return self._jax_train_step(*args)
        raise NotImplementedError(_backend_message())

    def _tensorflow_train_step(self, data):
        import tensorflow as tf  # the tape is TensorFlow's way to take gradients

        real_images = self._real_images(data)
        batch_size = ops.shape(real_images)[0]
        with tf.GradientTape() as tape:
            d_loss, (real_logits, fake_logits) = self._discriminator_objective(real_images)
        variables = self.discriminator.trainable_variables
        self.discriminator_optimizer.apply(tape.gradient(d_loss, variables), variables)
        with tf.GradientTape() as tape:
            g_loss = self._generator_objective(batch_size)
        variables = self.generator.trainable_variables
        self.generator_optimizer.apply(tape.gradient(g_loss, variables), variables)
        return self._update_trackers(d_loss, g_loss, real_logits, fake_logits)

    def _jax_train_step(self, state, data):
        """One stateless step, the way Keras's JAX trainer runs `train_step`.

        `state` holds the values of the model's trainable, non-trainable,
        optimizer (both optimizers, through `_OptimizerPair`) and metric
        variables; each network's loss runs in a `StatelessScope` over them,
        `jax.value_and_grad` differentiates it with respect to that network's
        trainable values only, and its optimizer's `stateless_apply` returns
        the new values. Nothing is assigned in place.
        """
        import jax

        trainable, non_trainable, optimizer_values, metric_values = state
        trainable, non_trainable = list(trainable), list(non_trainable)
        trainable_variables = self.trainable_variables
        non_trainable_variables = self.non_trainable_variables
        position = {id(v): i for i, v in enumerate(trainable_variables)}
        real_images = self._real_images(data)
        batch_size = real_images.shape[0]
        split = len(self.generator_optimizer.variables)
        g_optimizer_values, d_optimizer_values = optimizer_values[:split], optimizer_values[split:]

        def differentiate(network, objective):
            indices = [position[id(v)] for v in network.trainable_variables]

            def loss_fn(own_values):
                mapping = list(zip(trainable_variables, trainable))
                mapping += list(zip(non_trainable_variables, non_trainable))
                mapping += [(trainable_variables[i], v) for i, v in zip(indices, own_values)]
                with keras.StatelessScope(state_mapping=mapping) as scope:
                    loss, aux = objective()
                updated = [
                    _current_value(scope, variable, value)
                    for variable, value in zip(non_trainable_variables, non_trainable)
                ]
                return loss, (aux, updated)

            own_values = [trainable[i] for i in indices]
            (loss, (aux, updated)), grads = jax.value_and_grad(loss_fn, has_aux=True)(own_values)
            return loss, aux, updated, indices, own_values, grads

        d_loss, logits, non_trainable, indices, values, grads = differentiate(
            self.discriminator, lambda: self._discriminator_objective(real_images)
        )
        values, d_optimizer_values = self.discriminator_optimizer.stateless_apply(
            d_optimizer_values, grads, values
        )
        for i, value in zip(indices, values):
            trainable[i] = value

        g_loss, _, non_trainable, indices, values, grads = differentiate(
            self.generator, lambda: (self._generator_objective(batch_size), None)
        )
        values, g_optimizer_values = self.generator_optimizer.stateless_apply(
            g_optimizer_values, grads, values
        )
        for i, value in zip(indices, values):
            trainable[i] = value

        mapping = list(zip(self.metrics_variables, metric_values))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            logs = self._update_trackers(d_loss, g_loss, *logits)
        metric_values = [
            _current_value(scope, variable, value)
            for variable, value in zip(self.metrics_variables, metric_values)
        ]
        optimizer_values = list(g_optimizer_values) + list(d_optimizer_values)
        return logs, (trainable, non_trainable, optimizer_values, metric_values)

    def compute_loss(self, *args, **kwargs):
        raise NotImplementedError(
            "a GAN trains with its own train_step (two losses, two optimizers); use fit()."
        )

    # -- sampling ------------------------------------------------------------
    def generate(self, n, seed=None, batch_size=256):
        """Draws `n` images from the generator.

        Args:
            n: int. Number of images.
            seed: int or None. Seed of the noise (NumPy); the same seed gives
                the same images.
            batch_size: int.

        Returns:
            float32 NumPy array (n, H, W, C) in [0, 1].
        """
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive int; got {n!r}.")
        noise = np.random.default_rng(seed).standard_normal((int(n), self.latent_dim))
        noise = noise.astype("float32")
        batches = [
            ops.convert_to_numpy(self.generator(noise[i : i + batch_size], training=False))
            for i in range(0, int(n), int(batch_size))
        ]
        return np.concatenate(batches).astype("float32")

    def get_config(self):
        config = super().get_config()
        config.pop("encoder", None)
        config.pop("num_classes", None)
        config.update(
            latent_dim=self.latent_dim,
            image_shape=list(self.gan_image_shape),
            generator=keras.saving.serialize_keras_object(self.generator),
            discriminator=keras.saving.serialize_keras_object(self.discriminator),
            feature_layer=self.feature_layer,
            width=self.width,
            label_smoothing=self.label_smoothing,
        )
        return config


# --- helpers -------------------------------------------------------------------


def _current_value(scope, variable, value):
    current = scope.get_current_value(variable)
    return value if current is None else current


def _backend_message():
    return (
        f"kerassl.GAN trains on the {' and '.join(SUPPORTED_BACKENDS)} backends; the "
        f"{keras.config.backend()} backend is not implemented. Set KERAS_BACKEND=jax "
        "or KERAS_BACKEND=tensorflow. (Its encoder works on every backend.)"
    )


def _check_image_shape(image_shape):
    try:
        image_shape = tuple(int(s) for s in image_shape)
    except (TypeError, ValueError):
        raise ValueError(
            f"image_shape must be (height, width, channels) ints; got {image_shape!r}."
        ) from None
    if len(image_shape) != 3 or image_shape[-1] not in (1, 3) or min(image_shape) < 1:
        raise ValueError(
            "image_shape must be (height, width, 1 or 3 channels), e.g. (32, 32, 3); "
            f"got {image_shape}."
        )
    return image_shape


def _model_io_shapes(model, what):
    try:
        return tuple(model.input.shape), tuple(model.output.shape)
    except (AttributeError, ValueError):
        raise ValueError(
            f"the {what} must be a keras.Model built on a keras.Input (functional), so "
            "its input and output shapes are known."
        ) from None


def _check_pair(generator, discriminator, latent_dim, image_shape):
    try:
        out = tuple(generator.compute_output_shape((None, latent_dim)))
    except ValueError as error:
        raise ValueError(
            f"the generator does not take (None, {latent_dim}) noise: {error}"
        ) from None
    if out[1:] != tuple(image_shape):
        raise ValueError(
            f"the generator maps (None, {latent_dim}) noise to {out}; it must output "
            f"images of shape (None, {', '.join(map(str, image_shape))})."
        )
    try:
        logits = tuple(discriminator.compute_output_shape((None, *image_shape)))
    except ValueError as error:
        raise ValueError(
            f"the discriminator does not take the generator's {image_shape} images: {error}"
        ) from None
    if logits[1:] != (1,):
        raise ValueError(
            f"the discriminator maps {image_shape} images to {logits}; it must output one "
            "logit per image, shape (None, 1)."
        )
