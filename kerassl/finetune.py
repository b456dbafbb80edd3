"""Fine-tune a pretrained encoder into an image classifier.

`kerassl.finetune` is the function `finetune` below (the package re-exports
it over this module's name); import the classes with
`from kerassl.finetune import Classifier, ScaledAdamW`.

`finetune` returns a `Classifier` (images -> class probabilities) that carries
its own input scaling, so `clf.predict(uint8_images)` works and the saved
`.keras` file loads with `safe_mode=True`.

Full fine-tuning gives the encoder a smaller learning rate than the new head.
Keras 3 optimizers have one learning rate for all variables and a model may
not override `train_step` here, so `ScaledAdamW` (an AdamW whose update of
chosen variables uses `learning_rate * learning_rate_scale`) does it inside
the optimizer. Scaling gradients instead would be wrong: Adam divides the
scale out again.
"""

import math

import keras
import numpy as np

from kerassl.evaluate.features import (
    check_labels,
    dataset_image_spec,
    extract_with_labels,
    is_dataset,
    resolve_jit_compile,
    split_batch,
)
from kerassl.images import check_numpy_images, to_float_images
from kerassl.nonfinite import StopOnNonFiniteLoss
from kerassl.registry import register

MODES = ("linear", "full")
HEADS = ("linear", "mlp")


@register
class ScaledAdamW(keras.optimizers.AdamW):
    """AdamW that updates chosen variables with a scaled learning rate.

    Variables registered with `scale_learning_rate(var_list)` are updated (and
    decayed) with `learning_rate * learning_rate_scale`; all others with
    `learning_rate`. This is the per-parameter-group learning rate of PyTorch,
    used for discriminative fine-tuning: the pretrained encoder moves slower
    than the freshly initialised head. `Classifier.compile` registers its
    encoder's trainable variables automatically, also after loading a saved
    model. With nothing registered it is plain AdamW.

    Args:
        learning_rate: float or schedule. The rate of unregistered variables.
        learning_rate_scale: float > 0. Factor for registered variables.
        **kwargs: passed to `keras.optimizers.AdamW` (weight_decay, ...).

    Example:
    >>> from kerassl.finetune import ScaledAdamW
    >>> optimizer = ScaledAdamW(1e-3, learning_rate_scale=0.1)
    >>> optimizer.scale_learning_rate(encoder.trainable_variables)
    """

    def __init__(self, learning_rate=0.001, learning_rate_scale=0.1, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        if not learning_rate_scale > 0:
            raise ValueError(
                f"learning_rate_scale must be positive, got {learning_rate_scale}."
            )
        self.learning_rate_scale = float(learning_rate_scale)
        self._scaled_keys = set()

    def scale_learning_rate(self, var_list):
        """Registers the variables that get the scaled learning rate."""
        self._scaled_keys = {self._var_key(variable) for variable in var_list}

    def _is_scaled(self, variable):
        return self._var_key(variable) in self._scaled_keys

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        groups = {False: ([], []), True: ([], [])}
        for grad, variable in zip(grads, trainable_variables):
            group = groups[self._is_scaled(variable)]
            group[0].append(grad)
            group[1].append(variable)
        if groups[False][1]:
            super()._backend_update_step(*groups[False], learning_rate)
        if groups[True][1]:
            scaled_rate = learning_rate * self.learning_rate_scale
            super()._backend_update_step(*groups[True], scaled_rate)

    def _apply_weight_decay(self, variables):
        plain = [v for v in variables if not self._is_scaled(v)]
        scaled = [v for v in variables if self._is_scaled(v)]
        super()._apply_weight_decay(plain)
        if not scaled or self.weight_decay is None:
            return
        # Decoupled decay is learning_rate * weight_decay; the backends read
        # both from the optimizer, so the scale goes into weight_decay while
        # the scaled group is decayed.
        weight_decay = self.weight_decay
        self.weight_decay = weight_decay * self.learning_rate_scale
        try:
            super()._apply_weight_decay(scaled)
        finally:
            self.weight_decay = weight_decay

    def get_config(self):
        return {**super().get_config(), "learning_rate_scale": self.learning_rate_scale}


@register
class Classifier(keras.Model):
    """Images -> class probabilities: scaling, optional augmentation, encoder, head.

    Args:
        encoder: keras.Model. Float images in [0, 1] -> (B, D) features.
        head: keras layer or model. (B, D) features -> (B, classes)
            probabilities (softmax).
        freeze_encoder: bool. True sets `encoder.trainable = False` and always
            runs it in inference mode (BatchNorm statistics stay put); False
            makes it trainable.
        augment: keras layer or None. Applied to float images in [0, 1] when
            training (Keras augmentation layers are identity at inference).

    Example:
    >>> from kerassl.finetune import Classifier
    >>> clf = Classifier(encoder, keras.layers.Dense(10, activation="softmax"))
    >>> probabilities = clf.predict(x_uint8)
    """

    def __init__(self, encoder, head, freeze_encoder=True, augment=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.head = head
        self.freeze_encoder = bool(freeze_encoder)
        self.augment = augment
        self.encoder.trainable = not self.freeze_encoder

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if self.augment is not None and not self.augment.built:
            self.augment.build(input_shape)
        if not self.encoder.built:
            self.encoder.build(input_shape)
        features = self.encoder.compute_output_spec(
            keras.KerasTensor(input_shape, dtype="float32")
        )
        if not self.head.built:
            self.head.build(features.shape)
        self.built = True

    def call(self, images, training=None):
        x = to_float_images(images)
        if self.augment is not None:
            x = self.augment(x, training=training)
        features = self.encoder(x, training=False if self.freeze_encoder else training)
        return self.head(features, training=training)

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        optimizer = getattr(self.optimizer, "inner_optimizer", self.optimizer)
        if isinstance(optimizer, ScaledAdamW):
            optimizer.scale_learning_rate(self.encoder.trainable_variables)

    def compile_from_config(self, config):
        # Trainer.compile_from_config skips models that override compile.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        return {
            **super().get_config(),
            "encoder": serialize(self.encoder),
            "head": serialize(self.head),
            "freeze_encoder": self.freeze_encoder,
            "augment": None if self.augment is None else serialize(self.augment),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "head", "augment"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def build_head(kind, num_classes, feature_dim):
    """The classification head: "linear" (one Dense) or "mlp" (one hidden layer).

    Both start with a BatchNorm without scale and offset that standardizes the
    features. The MLP's hidden width equals the feature dimension, with
    BatchNorm and ReLU. Both end in a float32 softmax, so mixed precision stays stable.

    Args:
        kind: str. "linear" or "mlp".
        num_classes: int >= 2.
        feature_dim: int. Width of the encoder's features.

    Example:
    >>> from kerassl.finetune import build_head
    >>> head = build_head("mlp", num_classes=10, feature_dim=512)
    """
    if kind not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {kind!r}.")
    # Standardize features first, as MAE's linear probe does (He et al. 2021,
    # https://arxiv.org/abs/2111.06377): encoders' feature scales differ by
    # orders of magnitude, and one learning rate should fit them all.
    layers = [
        keras.layers.BatchNormalization(
            momentum=0.9, center=False, scale=False, name="feature_standardization"
        )
    ]
    if kind == "mlp":
        layers += [
            keras.layers.Dense(feature_dim, use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
        ]
    layers.append(keras.layers.Dense(num_classes, activation="softmax", dtype="float32"))
    return keras.Sequential(layers, name=f"{kind}_head")


def _prepare_data(data, num_classes, what):
    """Validates (images, labels) arrays or a dataset of such batches.

    Returns (data for fit, image shape without batch, the dataset's batches
    per epoch or None where unknown or for arrays).
    """
    if is_dataset(data):
        spec = data.element_spec
        if isinstance(spec, dict):
            split_batch(spec)  # refuses dicts without 'images', naming their keys
            if "labels" not in spec:
                raise ValueError(
                    f"{what} yields dicts without the key 'labels' (keys: {sorted(spec)}); "
                    "fine-tuning needs {'images': ..., 'labels': ...} batches."
                )
            data = data.map(lambda d: (d["images"], d["labels"]))
            spec = data.element_spec
        if not isinstance(spec, tuple) or len(spec) < 2:
            raise ValueError(
                f"{what} must yield (images, labels) batches; its elements are {spec}."
            )
        shape, _ = dataset_image_spec(data)
        cardinality = int(data.cardinality())
        return data, shape[1:], (cardinality if cardinality > 0 else None)
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(
            f"{what} must be a tuple (images, labels) of arrays or a tf.data.Dataset "
            f"of (images, labels) batches; got {type(data).__name__}."
        )
    images = check_numpy_images(data[0], f"{what} images")
    if len(images) == 0:
        raise ValueError(f"{what} images are empty: at least one image is needed.")
    labels = check_labels(data[1], len(images), num_classes, f"{what} labels")
    return (images, labels), images.shape[1:], None


def _feature_dim(encoder, image_shape):
    images = keras.KerasTensor((None, *image_shape), dtype="float32")
    try:
        features = encoder.compute_output_spec(images, training=False)
    except Exception as error:
        raise ValueError(
            f"The encoder could not run on images of shape {tuple(image_shape)}: "
            f"{error}. Pass images of the size and channel count it was built for."
        ) from error
    shape = tuple(features.shape)
    if len(shape) != 2:
        raise ValueError(
            f"The encoder returns features of shape {shape}, but a classifier needs "
            "(batch, dim) vectors. Wrap it so that it pools its feature map: "
            "`encoder = kerassl.backbones.wrap(encoder)`."
        )
    return int(shape[-1])


def _initialize_feature_statistics(classifier, train, batch_size, max_images=4096):
    """Starts the head's feature BatchNorm at the real feature statistics.

    From its default (mean 0, variance 1) its moving averages need hundreds
    of steps to reach typical feature scales, and until then inference
    (evaluation, validation) sees features the head was not trained on.
    """
    if is_dataset(train):
        sample = train.take(max(1, max_images // max(1, batch_size)))
    else:
        sample = train[0][:max_images]
    features, _ = extract_with_labels(classifier.encoder, sample, batch_size, verbose=0)
    if not np.all(np.isfinite(features)):
        raise ValueError(
            "the encoder's features on train_data contain NaN or infinite values: the "
            "data or the encoder's weights are not finite. Check the dataset's images "
            "(`np.isfinite`) and the encoder; nothing was trained."
        )
    standardization = classifier.head.layers[0]
    standardization.moving_mean.assign(features.mean(axis=0))
    standardization.moving_variance.assign(features.var(axis=0))


def finetune(
    encoder,
    train_data,
    num_classes,
    mode="linear",
    head="linear",
    epochs=10,
    batch_size=256,
    learning_rate=None,
    encoder_learning_rate_scale=0.1,
    weight_decay=1e-4,
    validation_data=None,
    augment=None,
    jit_compile="auto",
    verbose="auto",
    seed=None,
):
    """Trains a classifier on top of a (pretrained) encoder.

    The encoder is shared, not copied: "full" mode trains it in place and
    "linear" mode sets `encoder.trainable = False`. Clone it first
    (`keras.models.clone_model` plus `set_weights`) to keep the original.

    Args:
        encoder: keras.Model. Float images in [0, 1] -> (B, D) features.
        train_data: tuple (images, labels) of arrays (uint8 or float in
            [0, 1], int labels), or a `tf.data.Dataset` of (images, labels)
            batches.
        num_classes: int >= 2.
        mode: str. "linear": frozen encoder in inference mode, only the head
            trains. "full": everything trains, the encoder at
            `encoder_learning_rate_scale` times the head's learning rate.
        head: str. "linear" or "mlp" (see `build_head`).
        epochs: int.
        batch_size: int. Used for arrays; datasets keep their own batching.
        learning_rate: float or None. The head's peak AdamW rate, decayed
            with a cosine over training when the number of steps is known.
            None: 1e-2 for "linear" (a softmax on standardized features
            takes large steps), 1e-3 for "full" (the encoder then gets 1e-4).
        encoder_learning_rate_scale: float > 0. Encoder rate / head rate in
            "full" mode.
        weight_decay: float. Decoupled (AdamW) weight decay.
        validation_data: like `train_data`, or None.
        augment: keras layer or None. Training-time augmentation of float
            images in [0, 1], saved with the classifier.
        jit_compile: "auto" or bool (see `resolve_jit_compile`).
        verbose: "auto", 0, 1 or 2. Passed to `fit`.
        seed: int or None. If given, `keras.utils.set_random_seed(seed)` is
            called first (Python, NumPy and backend seeds), making the run
            reproducible.

    Returns:
        A trained and compiled `Classifier` whose outputs are softmax class
        probabilities; `clf.history` holds the `History` of the fit.

    Example:
    >>> clf = kerassl.finetune(encoder, (x_train, y_train), num_classes=10)
    >>> clf.history.history["accuracy"]
    >>> predictions = clf.predict(x_test_uint8).argmax(-1)
    """
    if not isinstance(encoder, keras.Model):
        raise TypeError(f"encoder must be a keras.Model, got {type(encoder).__name__}.")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}.")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}.")
    if int(epochs) < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}.")
    if not encoder_learning_rate_scale > 0:
        raise ValueError(
            "encoder_learning_rate_scale must be positive, got "
            f"{encoder_learning_rate_scale}."
        )
    train, image_shape, steps = _prepare_data(train_data, num_classes, "train_data")
    if validation_data is not None:
        validation_data, _, _ = _prepare_data(
            validation_data, num_classes, "validation_data"
        )
    if seed is not None:
        keras.utils.set_random_seed(seed)

    feature_dim = _feature_dim(encoder, image_shape)
    classifier = Classifier(
        encoder,
        build_head(head, num_classes, feature_dim),
        freeze_encoder=(mode == "linear"),
        augment=augment,
        name="classifier",
    )
    classifier.build((None, *image_shape))
    _initialize_feature_statistics(classifier, train, int(batch_size))

    if not is_dataset(train):
        steps = math.ceil(len(train[0]) / int(batch_size))
    if learning_rate is None:
        learning_rate = 1e-2 if mode == "linear" else 1e-3
    if steps is not None:
        learning_rate = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=steps * int(epochs)
        )
    weight_decay = 0.0 if weight_decay is None else float(weight_decay)
    if mode == "full":
        optimizer = ScaledAdamW(
            learning_rate,
            learning_rate_scale=encoder_learning_rate_scale,
            weight_decay=weight_decay,
        )
    else:
        optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
    classifier.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=resolve_jit_compile(jit_compile, classifier),
    )
    if is_dataset(train):
        fit_data = {"x": train, "shuffle": False}  # datasets shuffle themselves
    else:
        fit_data = {"x": train[0], "y": train[1], "batch_size": int(batch_size)}
    history = classifier.fit(
        **fit_data,
        epochs=int(epochs),
        validation_data=validation_data,
        verbose=verbose,
        callbacks=[StopOnNonFiniteLoss("the fine-tuning loss")],
    )
    classifier.history = history
    return classifier
