"""The base class every self-supervised method stands on."""

import contextlib
import functools
import inspect

import keras
import numpy as np
from keras import ops

from kerassl import distributed
from kerassl.images import check_numpy_images, to_float_images
from kerassl.methods.resume import seeded_order
from kerassl.nonfinite import NonFiniteLossError, StopOnNonFiniteLoss  # noqa: F401  (public here too)
from kerassl.registry import register
from kerassl.xla import explain_jit_compile


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
        if "images" not in inputs:
            raise ValueError(
                f"a dict of inputs needs the key 'images' (and optionally 'labels'); got "
                f"the keys {sorted(inputs)}. Rename them, e.g. "
                "`dataset.map(lambda d: {'images': d['image'], 'labels': d['label']})`."
            )
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


def encode(encoder, images, training):
    """Runs an encoder on images of any size.

    Functional models refuse inputs of another shape than their Input's, yet a
    ViT (interpolated positions) or a CNN with global pooling can take them;
    `Functional.call` skips that check. DINO's local crops and SwAV's small
    views go through it.
    """
    try:
        expected = tuple(encoder.input_shape[1:3])
    except (AttributeError, ValueError):
        expected = None
    if expected is None or expected == tuple(images.shape[1:3]) or None in expected:
        return encoder(images, training=training)
    return encoder.call(images, training=training)


RANDOM_STATE_KEY = "random_state_"


def _build_once(build):
    """A method's `build` that does nothing once built: `compile` may have built it
    already (see `SSLMethod.build_from_encoder`), and a second pass would add
    every weight again."""

    @functools.wraps(build)
    def build_once(self, *args, **kwargs):
        if self.built:
            return None
        return build(self, *args, **kwargs)

    return build_once


def check_fit_inputs(x, y=None, num_classes=None):
    """Checks NumPy images (and probe labels) up front; returns `x` as Keras should receive it."""
    images, labels = None, y
    if x is None:
        raise ValueError("no data: pass images (an array, a tf.data.Dataset or a generator).")
    if isinstance(x, dict) and not hasattr(x, "element_spec"):
        images, labels = split_inputs(x)
        labels = y if y is not None else labels
    elif isinstance(x, np.ndarray):
        images = x
    elif isinstance(x, (tuple, list)) and x and isinstance(x[0], np.ndarray):
        images, labels = split_inputs(x)
        labels = y if y is not None else labels
    elif inspect.isgenerator(x):
        x = as_tuple_batches(x)
    if isinstance(images, np.ndarray):
        check_numpy_images(images)
        if len(images) == 0:
            raise ValueError(
                "images are empty (0 images): there is nothing to train or evaluate on."
            )
        if labels is not None and num_classes is not None:  # else labels are ignored
            check_probe_labels(labels, len(images), num_classes)
    return x


def check_probe_labels(labels, length, num_classes):
    """Labels for the online probe: whole numbers in [0, num_classes), one per image."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or len(labels) != length:
        raise ValueError(
            f"labels must be one integer class id per image, shape ({length},); got shape "
            f"{labels.shape}. One-hot labels: convert with `labels.argmax(-1)`."
        )
    if labels.dtype.kind == "f" and not np.all(np.isfinite(labels) & (labels == np.round(labels))):
        raise ValueError(
            "labels must be whole class ids; got fractional or non-finite values such as "
            f"{labels[~(np.isfinite(labels) & (labels == np.round(labels)))][:3].tolist()}. "
            "The online probe would truncate them."
        )
    if labels.dtype.kind not in "iuf":
        raise ValueError(f"labels must be integer class ids; got dtype {labels.dtype}.")
    if num_classes is not None and len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must be in [0, {num_classes}) for num_classes={num_classes}; found "
            f"[{labels.min():g}, {labels.max():g}]. Pass num_classes= covering every label."
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

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "build" in cls.__dict__ and cls.__dict__.get("build_once", True):
            cls.build = _build_once(cls.__dict__["build"])

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

    def training_outputs(self, x, y=None, y_pred=None, training=True):
        """What every `compute_loss` starts from: `call`'s training outputs and the labels.

        Keras's trainers pass `y_pred = self(x, training=True)`; a direct call
        to `compute_loss(x)` gets it computed here, and in evaluation
        (`training=False`) it is `outputs_for_loss(x, False)`: views from a fixed
        seed, layers in inference mode. Labels come from `y`, or
        from `(images, labels)` batches, and are None for unlabelled data.

        Returns:
            `(y_pred, labels)`.

        Example:
        ```python
        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            y_pred, labels = self.training_outputs(x, y, y_pred, training)
            loss = my_loss(y_pred["projections"])
            return loss + self.online_probe_loss(labels, y_pred["features"])
        ```
        """
        if not isinstance(y_pred, dict):
            y_pred = self.outputs_for_loss(x, training)
        _, labels = split_inputs(x)
        return y_pred, (y if y is not None else labels)

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

    # -- evaluation --------------------------------------------------------
    # Metrics of the training step alone (a schedule's value, say): not
    # reported by `evaluate` or as `val_*`.
    training_only_metrics = ()

    @property
    def layers_training(self):
        """`training` for the encoder, heads and teacher inside `call`.

        True in a training step; False while `evaluate` (or validation in
        `fit`) draws its views, so BatchNorm uses and keeps its moving
        statistics and dropout is off.
        """
        return not getattr(self, "_evaluating", False)

    def outputs_for_loss(self, x, training=True):
        """What `call(x, training=True)` returns, for `compute_loss` to score.

        In evaluation (`training=False`) the views come from a fixed seed and
        every other layer runs in inference mode; the random state is put back
        afterwards, so `evaluate` changes no variable and two identical calls
        agree exactly.
        """
        if training:
            return self(x, training=True)
        states = self.random_states()
        saved = [ops.copy(ops.convert_to_tensor(state)) for state in states]
        base = 0 if self.seed is None else int(self.seed)
        for index, state in enumerate(states):
            state.assign(ops.convert_to_tensor([base + index + 1, 0], dtype=state.dtype))
        self._evaluating = True
        try:
            outputs = self(x, training=True)
        finally:
            self._evaluating = False
        for state, value in zip(states, saved):
            state.assign(value)
        return outputs

    def evaluate(self, x=None, y=None, **kwargs):
        """`keras.Model.evaluate` without side effects: no variable changes.

        The loss is the training objective on views drawn from a fixed seed,
        with the encoder, heads and any teacher in inference mode; metrics
        listed in `training_only_metrics` are left out.
        """
        return_dict = kwargs.pop("return_dict", False)
        with self.prepared_data(x, y, kwargs) as (x, y, kwargs):
            x = check_fit_inputs(x, y, self.num_classes)
            logs = super().evaluate(x, y, return_dict=True, **kwargs)
        for name in self.training_only_metrics:
            logs.pop(name, None)
        if return_dict:
            return logs
        return self._flatten_metrics_in_order(logs)  # Keras's own order for lists

    # -- random state --------------------------------------------------------
    def random_states(self):
        """Every `SeedGenerator` state of the method (augmenters, masks, noise), in a fixed order."""
        return [v for v in self.variables if v.name == "seed_generator_state"]

    def save_own_variables(self, store):
        # Keras saves no SeedGenerator state; without it a resumed or reloaded
        # run would replay the views of its first steps.
        super().save_own_variables(store)
        for index, state in enumerate(self.random_states()):
            store[f"{RANDOM_STATE_KEY}{index}"] = state

    def load_own_variables(self, store):
        keys = list(store.keys())
        own = {key: store[key] for key in keys if not key.startswith(RANDOM_STATE_KEY)}
        super().load_own_variables(own)
        saved = [key for key in keys if key.startswith(RANDOM_STATE_KEY)]
        states = self.random_states()
        if not saved:  # saved before kerassl kept random state: start afresh
            return
        if len(saved) != len(states):
            raise ValueError(
                f"the saved weights hold {len(saved)} random states but this "
                f"{type(self).__name__} has {len(states)}: they come from a method "
                "built differently (other augmenters or views). Build it with the "
                "configuration it was saved with."
            )
        for index, state in enumerate(states):
            state.assign(store[f"{RANDOM_STATE_KEY}{index}"])

    # -- building ------------------------------------------------------------
    def encoder_input_shape(self):
        """(height, width, channels) the encoder declares, or None where it does not."""
        try:
            inputs = self.encoder.inputs
        except (AttributeError, ValueError):
            return None
        if not inputs or len(inputs) != 1:
            return None
        shape = tuple(inputs[0].shape)[1:]
        if len(shape) != 3 or any(dim is None for dim in shape):
            return None
        return shape

    def build_from_encoder(self):
        """Builds the method now if the encoder knows its input shape.

        A built method can be restored by `keras.callbacks.BackupAndRestore`
        before its first step; `compile` calls this.
        """
        if self.built:
            return
        shape = self.encoder_input_shape()
        if shape is not None:
            self.build((None, *shape))

    def compile(self, *args, jit_compile="auto", **kwargs):
        """`keras.Model.compile`, with kerassl's `jit_compile="auto"` and clipping of the summed gradient.

        `jit_compile="auto"` (the default) resolves with
        `kerassl.xla.explain_jit_compile`: XLA on a GPU and on JAX; on a CPU,
        on for Vision Transformers and off for convolutional networks (what
        measured fastest); off under a `tf.distribute` strategy with several
        replicas, as Keras does. An explicit True or False is kept. The choice
        is `self.jit_compile`, its reason `self.jit_compile_reason`, and `fit`
        prints both once when `verbose` is on.

        Under a TensorFlow strategy the optimizer's `clipnorm`,
        `global_clipnorm` or `clipvalue` act on the gradient summed over
        replicas, as on one device (`kerassl.distributed.clip_after_summing`).

        Args:
            *args: passed to `keras.Model.compile` (`optimizer` first).
            jit_compile: "auto", True or False (or "true"/"false").
            **kwargs: passed to `keras.Model.compile`.

        Example:
        ```python
        model = kerassl.MAE(kerassl.backbones.vit_tiny(input_shape=(32, 32, 3)))
        model.compile("adamw")          # TensorFlow on a CPU: model.jit_compile is True (a ViT)
        model.compile("adamw", jit_compile=False)  # kept
        ```
        """
        choice, reason = explain_jit_compile(jit_compile, self)
        if kwargs.get("run_eagerly") and choice:
            choice, reason = False, "run_eagerly=True"
        super().compile(*args, jit_compile=choice, **kwargs)
        self.jit_compile_reason = reason
        self._jit_choice_reported = jit_compile != "auto"
        if getattr(self, "optimizer", None) is not None:
            distributed.clip_after_summing(self.optimizer)
        self.build_from_encoder()

    def report_jit_compile(self, verbose):
        """Prints the XLA choice of `jit_compile="auto"` once per `compile`, when `verbose` is on."""
        if verbose and not getattr(self, "_jit_choice_reported", True):
            self._jit_choice_reported = True
            print(f"kerassl: jit_compile='auto' -> {self.jit_compile} ({self.jit_compile_reason})")

    def compile_from_config(self, config):
        # Keras skips restoring the compile state of models that override
        # `compile`; ours keeps the standard signature, so restore it the same way.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built and getattr(self, "optimizer", None) is not None:
            self.optimizer.build(self.trainable_variables)

    # -- training ----------------------------------------------------------
    def train_step(self, *args, **kwargs):
        # Under a TensorFlow strategy every replica would otherwise draw the
        # same views and masks for its slice (mirrored seed states).
        distributed.per_replica_random_streams(self)
        return distributed.logs_for_multi_worker(super().train_step(*args, **kwargs))

    def test_step(self, *args, **kwargs):
        distributed.per_replica_random_streams(self)
        return distributed.logs_for_multi_worker(super().test_step(*args, **kwargs))

    def _compute_loss(self, *args, **kwargs):
        # Keras' train and test steps call this wrapper of `compute_loss`. Under a
        # TensorFlow strategy the optimizer sums the replicas' gradients and Keras
        # scales compiled `Loss` objects by 1 / replicas, but not a method's own
        # `compute_loss`; scaling here does it once for every method, and the
        # step multiplies the logged loss back.
        return distributed.scale_for_replicas(super()._compute_loss(*args, **kwargs))

    def fit(self, x=None, y=None, **kwargs):
        """`keras.Model.fit`, with input checks up front and an error on NaN losses.

        The one `fit` of the methods: a method that must see the data or the
        run's length first (DINO sizes its momentum schedule) overrides
        `before_fit` instead; one whose data must be converted before Keras
        reads it (CLIP tokenizes captions) overrides `prepared_data`.

        With NumPy data, `shuffle=True` (the default) and a `seed`, the order of
        epoch `e` is drawn from `(seed, e)` rather than from the process's random
        state (`kerassl.methods.resume.SeededOrder`), so a run resumed by
        `kerassl.backup_and_restore` sees the batches an uninterrupted run sees.
        """
        with self.prepared_data(x, y, kwargs) as (x, y, kwargs):
            self.before_fit(x, **kwargs)
            x = check_fit_inputs(x, y, self.num_classes)
            if isinstance(x, np.ndarray) or (isinstance(x, (tuple, list)) and x and isinstance(x[0], np.ndarray)):
                count = len(x) if isinstance(x, np.ndarray) else len(x[0])
                batch_size = kwargs.get("batch_size") or 32
                distributed.check_batch_divides(min(batch_size, count))
                if count > batch_size and count % batch_size:
                    distributed.check_batch_divides(count % batch_size, "the last batch's size")
            self.report_jit_compile(kwargs.get("verbose", "auto"))
            callbacks = list(kwargs.pop("callbacks", None) or [])
            if not any(isinstance(c, StopOnNonFiniteLoss) for c in callbacks):
                callbacks.append(StopOnNonFiniteLoss())
            x, y, kwargs = seeded_order(
                x, y, self.seed, {**kwargs, "callbacks": callbacks}, self.steps_per_execution or 1
            )
            return super().fit(x, y, **kwargs)

    def before_fit(self, x, **fit_kwargs):
        """Called by `fit` with its data and keyword arguments before training; no-op here."""

    @contextlib.contextmanager
    def prepared_data(self, x, y, kwargs):
        """The data `fit` and `evaluate` hand to Keras, from what the user passed.

        `fit` and `evaluate` run inside
        `with self.prepared_data(x, y, kwargs) as (x, y, kwargs):`, so a method
        can convert its inputs outside the compiled step (in `validation_data`
        too) and turn an error raised while Keras reads them into a clear one.
        The default yields them unchanged.

        Args:
            x: what was passed as `x`.
            y: what was passed as `y`.
            kwargs: dict. The other keyword arguments of `fit` or `evaluate`.

        Example:
        ```python
        @contextlib.contextmanager
        def prepared_data(self, x, y, kwargs):
            pipeline = kerassl.captions.CaptionPipeline(self.tokenizer)
            x, y = pipeline.pairs(x, y)
            with pipeline.original_errors():
                yield x, y, kwargs
        ```
        """
        yield x, y, kwargs

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
