"""CLIP: an image encoder and a text encoder trained to agree, for zero-shot classification."""

import contextlib
import math

import keras
import numpy as np
from keras import ops

from kerassl import distributed
from kerassl.captions import NO_CAPTIONS, CaptionPipeline, check_class_names, check_templates
from kerassl.images import check_numpy_images, to_float_images
from kerassl.losses import l2_normalize
from kerassl.losses.clip import clip_accuracy, clip_loss
from kerassl.methods.base import SSLMethod
from kerassl.text import Tokenizer, warn_unknown_words
from kerassl.registry import register


@register
class ClampLogitScale(keras.constraints.Constraint):
    """Keeps a log logit scale in [0, log(max_value)] after every optimizer step."""

    def __init__(self, max_value=100.0):
        self.max_value = float(max_value)

    def __call__(self, w):
        return ops.clip(w, 0.0, math.log(self.max_value))

    def get_config(self):
        return {"max_value": self.max_value}


@register
class CLIP(SSLMethod):
    """CLIP: each image must pick its own caption in the batch, and each caption its image.

    Images go through `encoder`, token ids through `text_encoder`; each side is
    projected linearly to `embed_dim` and L2-normalized, and the symmetric
    cross-entropy over `logit_scale * cosine` similarities trains both. The
    logit scale (inverse temperature) is learned in log space, starts at
    1 / 0.07 and is clamped at 100, as in the paper. During `fit` the method
    logs `image_to_text_accuracy`, `text_to_image_accuracy` (top-1 inside the
    batch; an identical copy of the right caption counts) and `logit_scale`.

    Strings never enter the compiled step: `fit` tokenizes caption strings with
    `tokenizer` in the input pipeline (NumPy arrays, Python generators and
    `tf.data` datasets of `(images, captions)`, on every backend), and
    `encode_text` tokenizes before running the model. The tokenizer's
    vocabulary lives in the model's config, so a saved `.keras` file takes
    strings as soon as it is loaded. Already-tokenized int ids work everywhere.

    `model.predict(images)` returns the image encoder's features, like every
    kerassl method; `encode_image` / `encode_text` return the normalized joint
    embeddings.

    Args:
        encoder: keras.Model. Images (batch, H, W, C) in [0, 1] to (batch, D).
        text_encoder: Keras model. Int token ids (batch, L) to (batch, D_text);
            e.g. `kerassl.text.TextEncoder`.
        embed_dim: int. Size of the joint embedding space.
        tokenizer: `kerassl.text.Tokenizer` or None. Defaults to a byte-level
            tokenizer with the text encoder's `max_length` (or 32); for small
            data, build a word vocabulary with `Tokenizer.from_texts(captions)`.
        logit_scale: float. Initial logit scale (1 / temperature).
        max_logit_scale: float. The logit scale never exceeds it.
        augmenter: Keras layer or None. Applied to images in training mode
            (CLIP uses random resized crops only); None: no augmentation.
        seed: int or None.

    Example:
    ```python
    tokenizer = kerassl.text.Tokenizer.from_texts(captions, max_length=32)
    text_encoder = kerassl.text.TextEncoder(tokenizer.vocab_size, max_length=32)
    clip = kerassl.CLIP(image_encoder, text_encoder, embed_dim=256, tokenizer=tokenizer)
    clip.compile(optimizer="adamw")
    clip.fit(tf.data.Dataset.from_tensor_slices((images, captions)).batch(256), epochs=30)
    zs = clip.zero_shot_classifier(["cat", "dog"], templates=["a photo of a {}."])
    probabilities = zs.predict(images)
    recall = kerassl.evaluate.retrieval_recall(clip, images, captions, k=(1, 5, 10))
    ```

    Reference: Radford et al., "Learning Transferable Visual Models From
    Natural Language Supervision", ICML 2021 (https://arxiv.org/abs/2103.00020).
    """

    nested_config_keys = ("encoder", "text_encoder", "tokenizer", "augmenter")

    def __init__(
        self,
        encoder,
        text_encoder,
        embed_dim=256,
        tokenizer=None,
        logit_scale=1 / 0.07,
        max_logit_scale=100.0,
        augmenter=None,
        seed=None,
        num_classes=None,
        **kwargs,
    ):
        if num_classes is not None:
            raise ValueError(
                "CLIP has no online linear probe (num_classes): its zero-shot classifier "
                "plays that part; see `clip.zero_shot_classifier(class_names)`."
            )
        super().__init__(encoder, seed=seed, **kwargs)
        if not isinstance(text_encoder, keras.layers.Layer):
            raise TypeError(
                f"text_encoder must be a Keras model or layer; got {type(text_encoder).__name__}."
            )
        if tokenizer is None:
            tokenizer = Tokenizer(None, max_length=getattr(text_encoder, "max_length", 32))
        if not isinstance(tokenizer, Tokenizer):
            raise TypeError(
                f"tokenizer must be a kerassl.text.Tokenizer; got {type(tokenizer).__name__}."
            )
        vocab_size = getattr(text_encoder, "vocab_size", None)
        if vocab_size is not None and vocab_size < tokenizer.vocab_size:
            raise ValueError(
                f"the text encoder has vocab_size={vocab_size} but the tokenizer makes "
                f"{tokenizer.vocab_size} ids; build it with "
                f"`TextEncoder(vocab_size=tokenizer.vocab_size, ...)`."
            )
        max_length = getattr(text_encoder, "max_length", None)
        if max_length is not None and max_length < tokenizer.max_length:
            raise ValueError(
                f"the tokenizer makes sequences of {tokenizer.max_length} ids but the text "
                f"encoder's max_length is {max_length}; make them equal."
            )
        if int(embed_dim) < 1:
            raise ValueError(f"embed_dim must be a positive integer; got {embed_dim}.")
        if not 0 < logit_scale <= max_logit_scale:
            raise ValueError(
                f"logit_scale must be in (0, max_logit_scale={max_logit_scale}]; got {logit_scale}."
            )
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.embed_dim = int(embed_dim)
        self.initial_logit_scale = float(logit_scale)
        self.max_logit_scale = float(max_logit_scale)
        self.augmenter = augmenter
        self.image_projection = keras.layers.Dense(
            self.embed_dim, use_bias=False, name="image_projection"
        )
        self.text_projection = keras.layers.Dense(
            self.embed_dim, use_bias=False, name="text_projection"
        )
        self.image_to_text_tracker = keras.metrics.Mean(name="image_to_text_accuracy")
        self.text_to_image_tracker = keras.metrics.Mean(name="text_to_image_accuracy")
        self.logit_scale_tracker = keras.metrics.Mean(name="logit_scale")

    # -- building ----------------------------------------------------------
    def _image_shape_from(self, input_shape):
        shape = None
        if isinstance(input_shape, dict):
            shape = input_shape.get("images")
        elif input_shape and isinstance(input_shape[0], (tuple, list)):
            shape = input_shape[0]
        elif input_shape is not None and len(input_shape) == 4:
            shape = input_shape
        if shape is None:
            try:
                shape = self.encoder.inputs[0].shape
            except (AttributeError, ValueError, IndexError, TypeError):
                raise ValueError(
                    "CLIP cannot tell its image shape: call it on images once "
                    "(e.g. `clip.encode_image(images[:2])`) before encoding text alone."
                ) from None
        return (None, *tuple(shape)[1:])

    def build(self, input_shape):
        image_shape = self._image_shape_from(input_shape)
        if self.augmenter is not None and not self.augmenter.built:
            self.augmenter.build(image_shape)
        feature_dim = self.build_encoder(image_shape)
        if not self.image_projection.built:
            self.image_projection.build((None, feature_dim))
        token_shape = (None, self.tokenizer.max_length)
        if not self.text_encoder.built:
            self.text_encoder.build(token_shape)
        text_features = self.text_encoder.compute_output_spec(
            keras.KerasTensor(token_shape, dtype="int32")
        )
        if len(text_features.shape) != 2:
            raise ValueError(
                f"the text encoder must return one vector per text, shape (batch, dim); "
                f"it returns {tuple(text_features.shape)}."
            )
        if not self.text_projection.built:
            self.text_projection.build((None, text_features.shape[-1]))
        self.log_logit_scale = self.add_weight(
            name="log_logit_scale",
            shape=(),
            initializer=keras.initializers.Constant(math.log(self.initial_logit_scale)),
            constraint=ClampLogitScale(self.max_logit_scale),
            trainable=True,
        )
        self.image_shape_built = tuple(image_shape)
        self.built = True

    # -- forward -----------------------------------------------------------
    def logit_scale(self):
        """The current logit scale, exp(log scale) clamped at `max_logit_scale`."""
        return ops.exp(ops.minimum(self.log_logit_scale, math.log(self.max_logit_scale)))

    def _split(self, inputs):
        """(images or None, token ids or None, whether a bare image batch came in)."""
        if isinstance(inputs, dict):
            unknown = set(inputs) - {"images", "tokens"}
            if unknown:
                raise ValueError(
                    "CLIP inputs as a dict take the keys 'images' and 'tokens'; got "
                    f"{sorted(unknown)}."
                )
            return inputs.get("images"), self._tokens(inputs.get("tokens")), False
        if isinstance(inputs, (tuple, list)):
            if len(inputs) == 1:
                return inputs[0], None, True
            if len(inputs) != 2:
                raise ValueError(
                    f"CLIP takes images or (images, tokens); got a sequence of {len(inputs)}."
                )
            images, tokens = inputs[0], self._tokens(inputs[1])
            batch = (images.shape[0], tokens.shape[0])
            if None not in batch and batch[0] != batch[1]:
                raise ValueError(
                    f"got {batch[0]} images but {batch[1]} captions: every image needs "
                    "exactly one caption."
                )
            return images, tokens, False
        return inputs, None, True

    def _tokens(self, tokens):
        if tokens is None:
            return None
        if isinstance(tokens, (list, tuple, str)) or (
            isinstance(tokens, np.ndarray) and tokens.dtype.kind in "USO"
        ):
            return self.tokenizer.ids(tokens)  # eager calls may pass strings
        if len(tokens.shape) != 2 or "int" not in str(tokens.dtype):
            raise ValueError(
                f"CLIP's text input must be int token ids (batch, length); got dtype "
                f"{tokens.dtype} and shape {tuple(tokens.shape)}. Strings are tokenized by "
                "`fit`, `encode_text` or `clip.tokenizer(captions)` before the model."
            )
        return tokens

    def embed_images(self, images, training=False):
        """Normalized joint embeddings of float images in [0, 1] (a graph function)."""
        features = self.encoder(images, training=training)
        return l2_normalize(self.image_projection(features))

    def embed_tokens(self, tokens, training=False):
        """Normalized joint embeddings of token ids (a graph function)."""
        return l2_normalize(self.text_projection(self.text_encoder(tokens, training=training)))

    def call(self, inputs, training=False):
        images, tokens, bare = self._split(inputs)
        if bare:
            return super().call(images)
        outputs = {}
        if images is not None:
            images = self.prepare_images(images)
            if training and self.augmenter is not None:
                images = self.augmenter(images, training=True)
            outputs["image_embeddings"] = self.embed_images(images, training)
        if tokens is not None:
            outputs["text_embeddings"] = self.embed_tokens(tokens, training)
        return outputs

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if not isinstance(y_pred, dict) or len(y_pred) != 2:
            raise ValueError(NO_CAPTIONS)
        _, tokens, _ = self._split(x)
        images, texts = y_pred["image_embeddings"], y_pred["text_embeddings"]
        scale = self.logit_scale()
        loss = clip_loss(images, texts, scale, *distributed.gather_batch(images, texts))
        same_text = ops.all(ops.equal(tokens[:, None, :], tokens[None, :, :]), axis=-1)
        image_to_text, text_to_image = clip_accuracy(
            ops.stop_gradient(images), ops.stop_gradient(texts), same_text
        )
        self.image_to_text_tracker.update_state(image_to_text)
        self.text_to_image_tracker.update_state(text_to_image)
        self.logit_scale_tracker.update_state(ops.stop_gradient(scale))
        return loss

    # -- data --------------------------------------------------------------
    def pairs(self, x, y=None):
        """Turns the ways users hand (image, caption) pairs to `fit` into x=(images, ids).

        See `kerassl.captions.CaptionPipeline.pairs`.
        """
        return CaptionPipeline(self.tokenizer).pairs(x, y)

    @contextlib.contextmanager
    def prepared_data(self, x, y, kwargs):
        """`fit` and `evaluate` on (image, caption) pairs: captions as strings or token ids.

        Accepts `fit(images, captions)`, `fit((images, captions))`, a
        `tf.data.Dataset` or generator of `(images, captions)` batches (and
        `validation_data` the same ways); string captions are tokenized in the
        input pipeline with `self.tokenizer`, and a tokenizer error inside it
        is raised as itself.
        """
        pipeline = CaptionPipeline(self.tokenizer)
        if kwargs.get("validation_data") is not None:
            kwargs = {**kwargs, "validation_data": pipeline.validation_pairs(kwargs["validation_data"])}
        x, y = pipeline.pairs(x, y)
        with pipeline.original_errors():
            yield x, y, kwargs

    def before_fit(self, x, **fit_kwargs):
        """Keeps the logit scale out of the optimizer's weight decay, as in CLIP."""
        self._exclude_logit_scale_from_weight_decay()

    def _exclude_logit_scale_from_weight_decay(self):
        # CLIP decays no gains; the logit scale is one. Done here rather than in an
        # overridden `compile`, which would stop `load_model` from recompiling.
        optimizer = getattr(self, "optimizer", None)
        untouched = not getattr(optimizer, "_exclude_from_weight_decay", None) and (
            getattr(optimizer, "_exclude_from_weight_decay_pattern", None) is None
        )
        if getattr(optimizer, "weight_decay", None) and not optimizer.built and untouched:
            optimizer.exclude_from_weight_decay(var_names=["log_logit_scale"])

    # -- inference ---------------------------------------------------------
    def encode_image(self, images, batch_size=256, verbose=0):
        """L2-normalized joint embeddings (N, embed_dim) of uint8 or [0, 1] float images.

        Example:
        >>> image_z = clip.encode_image(x_test)
        """
        images = check_numpy_images(images)
        if len(images) == 0:
            raise ValueError("images are empty: at least one image is needed.")
        outputs = self.predict({"images": images}, batch_size=batch_size, verbose=verbose)
        return np.asarray(outputs["image_embeddings"], "float32")

    def encode_text(self, texts, batch_size=256, verbose=0):
        """L2-normalized joint embeddings (N, embed_dim) of strings or token ids.

        Example:
        >>> text_z = clip.encode_text(["a photo of a cat.", "a photo of a dog."])
        """
        tokens = self.tokenizer.ids(texts, "texts")
        outputs = self.predict({"tokens": tokens}, batch_size=batch_size, verbose=verbose)
        return np.asarray(outputs["text_embeddings"], "float32")

    def zero_shot_classifier(self, class_names, templates=("a photo of a {}.",), batch_size=256):
        """A classifier built from class names alone: images -> class probabilities.

        Each class is the mean normalized text embedding of its name in every
        template (CLIP's prompt ensembling); an image's logits are its cosine
        similarity to each class times the learned logit scale. The returned
        model shares the image encoder and projection with this CLIP model
        (later training changes it too) and saves/loads like any model.

        Args:
            class_names: list of >= 2 distinct str.
            templates: list of str with one `{}`, e.g. `["a photo of a {}."]`.
            batch_size: int. For encoding the texts.

        Returns:
            A `kerassl.methods.clip.ZeroShotClassifier`; `predict(images)`
            gives (N, num_classes) probabilities.

        Example:
        >>> zs = clip.zero_shot_classifier(["cat", "dog"], templates=["a photo of a {}."])
        >>> probabilities = zs.predict(images)
        """
        names = check_class_names(class_names, minimum=2)
        templates = check_templates(templates)
        warn_unknown_words(self.tokenizer, names, "the class names")
        texts = [template.format(name) for name in names for template in templates]
        embeddings = self.encode_text(texts, batch_size=batch_size)
        embeddings = embeddings.reshape(len(names), len(templates), -1).mean(axis=1)
        embeddings /= np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
        classifier = ZeroShotClassifier(
            self.encoder,
            self.image_projection,
            class_names=names,
            logit_scale=float(ops.convert_to_numpy(self.logit_scale())),
        )
        classifier.build(self.image_shape_built)
        classifier.class_embeddings.assign(embeddings)
        return classifier

    # -- serialization -----------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config.pop("num_classes", None)
        config.update(
            text_encoder=keras.saving.serialize_keras_object(self.text_encoder),
            tokenizer=keras.saving.serialize_keras_object(self.tokenizer),
            embed_dim=self.embed_dim,
            logit_scale=self.initial_logit_scale,
            max_logit_scale=self.max_logit_scale,
            augmenter=keras.saving.serialize_keras_object(self.augmenter),
        )
        return config


@register
class ZeroShotClassifier(keras.Model):
    """Images -> class probabilities from an image encoder, a projection and class text embeddings.

    Made by `CLIP.zero_shot_classifier`; its `class_names` give the label
    order. `predict` takes uint8 or [0, 1] float images.

    Args:
        encoder: keras.Model. The CLIP image encoder.
        image_projection: keras layer. The CLIP image projection.
        class_names: list of str.
        logit_scale: float. Multiplies cosine similarities before the softmax.

    Example:
    >>> zs = clip.zero_shot_classifier(kerassl.captions.DIGIT_NAMES, templates=["a photo of a {}."])
    >>> predicted = zs.predict(x_test).argmax(axis=1)
    """

    def __init__(self, encoder, image_projection, class_names, logit_scale=100.0, **kwargs):
        kwargs.setdefault("name", "zero_shot_classifier")
        super().__init__(**kwargs)
        self.encoder = encoder
        self.image_projection = image_projection
        self.class_names = check_class_names(class_names, minimum=2)
        self.logit_scale = float(logit_scale)

    def build(self, input_shape):
        input_shape = (None, *tuple(input_shape)[1:])
        if not self.encoder.built:
            self.encoder.build(input_shape)
        features = self.encoder.compute_output_shape(input_shape)
        if not self.image_projection.built:
            self.image_projection.build(features)
        embed_dim = self.image_projection.compute_output_shape(features)[-1]
        self.class_embeddings = self.add_weight(
            name="class_embeddings",
            shape=(len(self.class_names), embed_dim),
            initializer="zeros",
            trainable=False,
        )
        self.built = True

    def call(self, images, training=False):
        images = to_float_images(images)
        embeddings = l2_normalize(self.image_projection(self.encoder(images, training=False)))
        logits = self.logit_scale * ops.matmul(
            embeddings, ops.transpose(ops.cast(self.class_embeddings, "float32"))
        )
        return ops.softmax(logits, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self.class_names))

    def get_config(self):
        config = super().get_config()
        config.update(
            encoder=keras.saving.serialize_keras_object(self.encoder),
            image_projection=keras.saving.serialize_keras_object(self.image_projection),
            class_names=self.class_names,
            logit_scale=self.logit_scale,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "image_projection"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
