"""The base class every self-supervised method stands on."""

import inspect
import math

import keras
import numpy as np
from keras import ops

from kerassl import distributed
from kerassl.images import check_numpy_images, to_float_images
from kerassl.registry import register


def encoder_output_rank_error(shape):
    return ValueError(
        f"the encoder's output has shape {tuple(shape)}, but an encoder must return "
        "one feature vector per image, shape (batch, features). Wrap it to pool the "
        "feature map: `kerassl.backbones.wrap(encoder)`."
    )


def split_inputs(inputs):
    """Returns (images, labels or None) from `x` as Keras passes it to a model.

    A dataset of (images, labels) pairs reaches the model as x=images, y=labels;
    a tuple passed as `x` (e.g. `fit((images, labels))`) arrives whole.
    """
    if isinstance(inputs, dict):
        return inputs["images"], inputs.get("labels")
    if isinstance(inputs, (tuple, list)):
        if len(inputs) == 2:
            return inputs[0], inputs[1]
        if len(inputs) == 1:
            return inputs[0], None
        raise ValueError(
            f"expected images or (images, labels); got a sequence of {len(inputs)} inputs."
        )
    return inputs, None


def as_tuple_batches(generator):
    """Keras wants generators to yield tuples; a generator of bare image batches is fine too."""
    for batch in generator:
        yield batch if isinstance(batch, tuple) else (batch,)


class NonFiniteLossError(FloatingPointError):
    pass


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raises a clear error as soon as the training loss becomes NaN or infinite."""

    def __init__(self):
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise NonFiniteLossError(
                f"the training loss became {float(loss)} at epoch {self.epoch + 1}, "
                f"batch {batch + 1}. Usual causes: a learning rate too high for the "
                "optimizer (try 10x lower, or warm-up), NaN or infinite values in the "
                "images, or float16 overflow (use mixed_bfloat16 or float32)."
            )


@register
class SSLMethod(keras.Model):
    """Base class of kerassl's self-supervised methods.

    A method holds an `encoder` (any Keras model from images to feature
    vectors). `call(images)` returns the encoder's features, so `predict()`
    gives embeddings; in training mode a subclass's `call` builds the views and
    returns what its `compute_loss` needs, so the whole step, augmentation
    included, is one compiled program on every backend.

    The base class owns what all methods share: input validation and
    normalization (rank 4, 1 or 3 channels, uint8 scaled to [0, 1]), labels
    accepted and ignored unless an online probe is asked for, serialization of
    nested models, and an error on non-finite losses during `fit`.

    Args:
        encoder: keras.Model. Maps (batch, height, width, channels) float
            images in [0, 1] to (batch, features).
        num_classes: int or None. If set and the data carries labels, an
            online linear probe is trained on stop-gradient features and its
            accuracy logged as `probe_accuracy`: a free learning curve.
        seed: int or None. Seeds the method's random layers.
    """

    def __init__(self, encoder, num_classes=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(encoder, keras.layers.Layer):
            raise TypeError(
                f"encoder must be a Keras model or layer; got {type(encoder).__name__}."
            )
        if isinstance(encoder, keras.Model):
            try:
                outputs = encoder.outputs  # functional models know it up front
            except (AttributeError, ValueError):
                outputs = None
            if outputs and len(outputs[0].shape) != 2:
                raise encoder_output_rank_error(outputs[0].shape)
        if num_classes is not None and int(num_classes) < 2:
            raise ValueError(f"num_classes must be at least 2; got {num_classes}.")
        self.encoder = encoder
        self.num_classes = None if num_classes is None else int(num_classes)
        self.seed = seed
        if self.num_classes:
            self.probe = keras.layers.Dense(self.num_classes, name="online_probe")
            self.probe_loss_tracker = keras.metrics.Mean(name="probe_loss")
            self.probe_accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(
                name="probe_accuracy"
            )
        else:
            self.probe = None

    # -- inputs ------------------------------------------------------------
    def prepare_images(self, images):
        """Validates a batch and returns it as floats in [0, 1] (compute dtype)."""
        dtype = "float32" if "float" not in str(self.compute_dtype) else self.compute_dtype
        return to_float_images(images, dtype=dtype)

    @staticmethod
    def image_shape(input_shape):
        """The image shape out of whatever `build` receives."""
        if isinstance(input_shape, dict):
            return tuple(input_shape["images"])
        if input_shape and isinstance(input_shape[0], (tuple, list)):
            return tuple(input_shape[0])
        return tuple(input_shape)

    def build_encoder(self, image_shape):
        """Builds the encoder and returns its feature dimension."""
        if not self.encoder.built:
            self.encoder.build(image_shape)
        output_shape = self.encoder.compute_output_shape(image_shape)
        if len(output_shape) != 2:
            raise encoder_output_rank_error(output_shape)
        return output_shape[-1]

    def build_probe(self, feature_dim):
        if self.probe is not None and not self.probe.built:
            self.probe.build((None, feature_dim))

    # -- forward -----------------------------------------------------------
    def call(self, inputs, training=False):
        images, _ = split_inputs(inputs)
        return self.encoder(self.prepare_images(images), training=False)

    def online_probe_loss(self, labels, features):
        """Cross-entropy of the online probe on stop-gradient features (0 without labels)."""
        if self.probe is None or labels is None:
            return 0.0
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
        logits = ops.cast(self.probe(ops.stop_gradient(features)), "float32")
        repeats = ops.shape(logits)[0] // ops.shape(labels)[0]
        if logits.shape[0] is not None and labels.shape[0] is not None:
            repeats = logits.shape[0] // labels.shape[0]
        labels = ops.tile(labels, (repeats,))
        loss = ops.mean(
            keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        )
        self.probe_loss_tracker.update_state(loss)
        self.probe_accuracy_tracker.update_state(labels, logits)
        return loss

    # -- training ----------------------------------------------------------
    def _compute_loss(self, *args, **kwargs):
        # Keras' train and test steps call this wrapper of `compute_loss`. Under a
        # TensorFlow strategy the optimizer sums the replicas' gradients and Keras
        # scales compiled `Loss` objects by 1 / replicas, but not a method's own
        # `compute_loss`; scaling here does it once for every method, and the
        # step multiplies the logged loss back.
        return distributed.scale_for_replicas(super()._compute_loss(*args, **kwargs))

    def fit(self, x=None, y=None, **kwargs):
        """`keras.Model.fit`, with input checks up front and an error on NaN losses."""
        if isinstance(x, np.ndarray):
            check_numpy_images(x)
        elif isinstance(x, (tuple, list)) and x and isinstance(x[0], np.ndarray):
            check_numpy_images(x[0])
        if isinstance(x, np.ndarray) or (isinstance(x, (tuple, list)) and x and isinstance(x[0], np.ndarray)):
            count = len(x) if isinstance(x, np.ndarray) else len(x[0])
            batch_size = kwargs.get("batch_size") or 32
            distributed.check_batch_divides(min(batch_size, count))
            if count > batch_size and count % batch_size:
                distributed.check_batch_divides(count % batch_size, "the last batch's size")
        elif inspect.isgenerator(x):
            x = as_tuple_batches(x)
        callbacks = list(kwargs.pop("callbacks", None) or [])
        if not any(isinstance(c, StopOnNonFiniteLoss) for c in callbacks):
            callbacks.append(StopOnNonFiniteLoss())
        return super().fit(x, y, callbacks=callbacks, **kwargs)

    # -- serialization -----------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config.update(
            encoder=keras.saving.serialize_keras_object(self.encoder),
            num_classes=self.num_classes,
            seed=self.seed,
        )
        return config

    # Nested layers and models in the config, rebuilt by `from_config`.
    nested_config_keys = ("encoder",)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in cls.nested_config_keys:
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
