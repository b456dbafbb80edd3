"""RotNet: learn features by predicting how an image was rotated."""

import keras
from keras import ops

from kerassl import heads
from kerassl.methods.base import SSLMethod, split_inputs
from kerassl.registry import register

NUM_ROTATIONS = 4


def center_square_crop(images):
    """The central square of side min(height, width); square images pass unchanged.

    Args:
        images: tensor (B, H, W, C) with static H and W.

    Returns:
        tensor (B, S, S, C), S = min(H, W).
    """
    height, width = images.shape[1], images.shape[2]
    if height is None or width is None:
        raise ValueError(
            "RotNet needs static image sizes to rotate square crops; got shape "
            f"{tuple(images.shape)}. Feed arrays or a dataset with a fixed image size."
        )
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return images[:, top : top + side, left : left + side, :]


def rotate(images, k):
    """Rotates square images by k * 90 degrees counterclockwise, like `np.rot90(x, k, (1, 2))`.

    Transposes and flips only, so the result is exact and compiles everywhere.

    Args:
        images: tensor (B, S, S, C).
        k: int. Number of quarter turns; any int, taken modulo 4.

    Returns:
        tensor (B, S, S, C).

    Example:
    >>> kerassl.methods.rotnet.rotate(images, 1)  # a quarter turn to the left
    """
    if images.shape[1] != images.shape[2]:
        raise ValueError(
            f"rotate needs square images; got shape {tuple(images.shape)}. "
            "Crop them first with `center_square_crop`."
        )
    k = int(k) % NUM_ROTATIONS
    if k == 0:
        return images
    if k == 2:
        return ops.flip(ops.flip(images, axis=1), axis=2)
    transposed = ops.transpose(images, (0, 2, 1, 3))
    # A counterclockwise quarter turn is the transpose read bottom-up.
    return ops.flip(transposed, axis=1 if k == 1 else 2)


def all_rotations(images):
    """Stacks the four rotations of a batch and their labels.

    Args:
        images: tensor (B, S, S, C) of square images.

    Returns:
        (rotated, labels): rotated (4B, S, S, C) is the batch at 0, 90, 180 and
        270 degrees counterclockwise, in that order; labels (4B,) int32 hold k.
    """
    rotated = ops.concatenate([rotate(images, k) for k in range(NUM_ROTATIONS)], axis=0)
    batch = ops.shape(images)[0]
    labels = ops.repeat(ops.arange(NUM_ROTATIONS, dtype="int32"), batch)
    return rotated, labels


@register
class RotNet(SSLMethod):
    """RotNet: each image is shown in four rotations; the encoder must tell which.

    Every batch is cropped to its central square (a no-op for square images),
    rotated by 0, 90, 180 and 270 degrees on device, and all 4B images go
    through the encoder and a classification head trained with cross-entropy
    on the rotation. To recognise the rotation the encoder has to find the
    objects and their orientation, which makes features that transfer.
    `rotation_accuracy` is logged (chance is 0.25).

    `model.predict(images)` and `model(images)` return encoder features (of
    the full images, uncropped).

    Args:
        encoder: keras.Model. Images (batch, H, W, C) in [0, 1] to features
            (batch, D). For non-square images it is trained on square crops of
            side min(H, W) and used on full images afterwards, so it must accept
            both sizes: build it with `input_shape=(None, None, C)`.
        hidden_dim: int or None. Hidden width of the MLP rotation head; None
            makes it linear.
        head: Keras layer or None. Replaces the default head; must map (batch, D)
            to 4 logits.
        augmenter: Keras layer or None. Applied (training=True) to the images
            before they are rotated, e.g. `keras.layers.RandomFlip("horizontal")`.
            None (default) trains on the images as they are, as in the paper.
        num_classes: int or None. Enables the online linear probe (on the
            upright images' features).
        seed: int or None. Seeds nothing of its own (the rotations are all
            used); kept for a uniform signature.

    Example:
    ```python
    encoder = kerassl.backbones.small_convnet(input_shape=(32, 32, 3))
    model = kerassl.RotNet(encoder)
    model.compile(optimizer="adam")
    model.fit(images, epochs=10, batch_size=128)
    features = model.predict(images)
    ```

    Reference: Gidaris et al., "Unsupervised Representation Learning by
    Predicting Image Rotations", ICLR 2018 (https://arxiv.org/abs/1803.07728).
    """

    nested_config_keys = ("encoder", "head", "augmenter")

    def __init__(
        self,
        encoder,
        hidden_dim=256,
        head=None,
        augmenter=None,
        num_classes=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(encoder, num_classes=num_classes, seed=seed, **kwargs)
        if hidden_dim is not None and int(hidden_dim) < 1:
            raise ValueError(f"hidden_dim must be a positive int or None; got {hidden_dim}.")
        self.hidden_dim = None if hidden_dim is None else int(hidden_dim)
        units = [NUM_ROTATIONS] if self.hidden_dim is None else [self.hidden_dim, NUM_ROTATIONS]
        self.head = head or heads.MLPHead(units, name="rotation_head")
        self.augmenter = augmenter
        self.rotation_accuracy_tracker = keras.metrics.Mean(name="rotation_accuracy")

    def build(self, input_shape):
        image_shape = self.image_shape(input_shape)
        height, width, channels = image_shape[1:]
        if height is None or width is None:
            raise ValueError(
                f"RotNet needs static image sizes; got input shape {image_shape}."
            )
        if self.augmenter is not None and not self.augmenter.built:
            self.augmenter.build(image_shape)
        side = min(height, width)
        feature_dim = self.build_encoder(image_shape)
        if side != height or side != width:
            self._check_encoder_takes((None, side, side, channels), image_shape)
        if not self.head.built:
            self.head.build((None, feature_dim))
        self.build_probe(feature_dim)
        self.built = True

    def _check_encoder_takes(self, crop_shape, image_shape):
        fixed = getattr(self.encoder, "input_shape", None)
        if isinstance(fixed, tuple) and fixed[1:3] not in ((None, None), crop_shape[1:3]):
            raise ValueError(
                f"RotNet trains on square crops {crop_shape[1:]} of the non-square "
                f"images {image_shape[1:]}, but the encoder takes fixed inputs "
                f"{fixed[1:]}. Build the encoder with input_shape=(None, None, "
                f"{image_shape[-1]}) so it takes crops in pretraining and full "
                "images afterwards, or crop the images square yourself."
            )

    def call(self, inputs, training=False):
        if not training:
            return super().call(inputs)
        images, _ = split_inputs(inputs)
        images = self.prepare_images(images)
        if self.augmenter is not None:
            images = self.augmenter(images, training=True)
        rotated, _ = all_rotations(center_square_crop(images))
        features = self.encoder(rotated, training=self.layers_training)
        return {"features": features, "logits": self.head(features, training=self.layers_training)}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        y_pred, labels = self.training_outputs(x, y, y_pred, training)
        logits = ops.cast(y_pred["logits"], "float32")
        batch = ops.shape(logits)[0] // NUM_ROTATIONS
        targets = ops.repeat(ops.arange(NUM_ROTATIONS, dtype="int32"), batch)
        loss = ops.mean(
            keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
        )
        correct = ops.cast(ops.equal(ops.argmax(logits, axis=-1), targets), "float32")
        self.rotation_accuracy_tracker.update_state(ops.mean(correct))
        upright = y_pred["features"][:batch]
        return loss + self.online_probe_loss(labels, upright)

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_dim=self.hidden_dim,
            head=keras.saving.serialize_keras_object(self.head),
            augmenter=keras.saving.serialize_keras_object(self.augmenter),
        )
        return config
