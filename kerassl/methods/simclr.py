"""SimCLR: contrastive learning of visual representations."""

import keras
from keras import ops

from kerassl import augment, distributed, heads, losses
from kerassl.methods.base import SSLMethod, split_inputs
from kerassl.registry import register


@register
class SimCLR(SSLMethod):
    """SimCLR: two augmented views of each image must find each other in the batch.

    Each image is augmented twice on device; both views go through the encoder
    and an MLP projection head, and the NT-Xent loss asks every view to pick its
    partner among the 2N - 1 other views. Beside the loss, the method logs
    `contrastive_accuracy` (is the partner the top match), `alignment` and
    `uniformity` (Wang and Isola, 2020) so learning and collapse are visible
    during `fit`, and, when labels come with the data and `num_classes` is
    set, an online linear probe's `probe_accuracy`.

    `model.predict(images)` and `model(images)` return encoder features.

    Args:
        encoder: keras.Model. Images (batch, H, W, C) in [0, 1] to features
            (batch, D); e.g. `kerassl.backbones.resnet18()`.
        projection_hidden_dim: int. Hidden width of the projection head.
        projection_dim: int. Output size of the projection head.
        temperature: float > 0. NT-Xent temperature (0.5 suits CIFAR-size data,
            0.1-0.2 ImageNet with large batches).
        augmenter: Keras layer or None. Makes one view per call with
            `training=True`; defaults to `kerassl.augment.simclr_augmenter` for
            the input size, built on first use.
        projection_head: Keras layer or None. Replaces the default MLP head.
        num_classes: int or None. Enables the online linear probe.
        seed: int or None. Seeds the default augmenter.

    Example:
    ```python
    encoder = kerassl.backbones.resnet18(input_shape=(32, 32, 3))
    model = kerassl.SimCLR(encoder)
    model.compile(optimizer="adam")
    model.fit(images, epochs=10, batch_size=256)
    features = model.predict(images)
    ```

    Reference: Chen et al., "A Simple Framework for Contrastive Learning of
    Visual Representations", ICML 2020 (https://arxiv.org/abs/2002.05709).
    """

    nested_config_keys = ("encoder", "augmenter", "projection_head")

    def __init__(
        self,
        encoder,
        projection_hidden_dim=2048,
        projection_dim=128,
        temperature=0.5,
        augmenter=None,
        projection_head=None,
        num_classes=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(encoder, num_classes=num_classes, seed=seed, **kwargs)
        self.temperature = losses.check_temperature(temperature)
        self.projection_hidden_dim = int(projection_hidden_dim)
        self.projection_dim = int(projection_dim)
        self.augmenter = augmenter
        self.projection_head = projection_head or heads.simclr_projection_head(
            self.projection_hidden_dim, self.projection_dim
        )
        self.contrastive_accuracy_tracker = keras.metrics.Mean(name="contrastive_accuracy")
        self.alignment_tracker = keras.metrics.Mean(name="alignment")
        self.uniformity_tracker = keras.metrics.Mean(name="uniformity")

    def build(self, input_shape):
        image_shape = self.image_shape(input_shape)
        if self.augmenter is None:
            self.augmenter = augment.simclr_augmenter(
                image_shape[1:3], channels=image_shape[-1], seed=self.seed
            )
        if not self.augmenter.built:
            self.augmenter.build(image_shape)
        feature_dim = self.build_encoder(image_shape)
        if not self.projection_head.built:
            self.projection_head.build((None, feature_dim))
        self.build_probe(feature_dim)
        self.built = True

    def call(self, inputs, training=False):
        if not training:
            return super().call(inputs)
        images, _ = split_inputs(inputs)
        images = self.prepare_images(images)
        views = ops.concatenate(
            [self.augmenter(images, training=True), self.augmenter(images, training=True)],
            axis=0,
        )
        features = self.encoder(views, training=self.layers_training)
        return {
            "features": features,
            "projections": self.projection_head(features, training=self.layers_training),
        }

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        y_pred, labels = self.training_outputs(x, y, y_pred, training)
        z1, z2 = ops.split(ops.cast(y_pred["projections"], "float32"), 2, axis=0)
        # On TensorFlow replicas the negatives come from every replica's slice.
        loss = losses.nt_xent(z1, z2, self.temperature, *distributed.gather_batch(z1, z2))
        z1, z2 = ops.stop_gradient(z1), ops.stop_gradient(z2)
        self.contrastive_accuracy_tracker.update_state(losses.contrastive_accuracy(z1, z2))
        self.alignment_tracker.update_state(losses.alignment(z1, z2))
        self.uniformity_tracker.update_state(
            0.5 * (losses.uniformity(z1) + losses.uniformity(z2))
        )
        return loss + self.online_probe_loss(labels, y_pred["features"])

    def get_config(self):
        config = super().get_config()
        config.update(
            projection_hidden_dim=self.projection_hidden_dim,
            projection_dim=self.projection_dim,
            temperature=self.temperature,
            augmenter=keras.saving.serialize_keras_object(self.augmenter),
            projection_head=keras.saving.serialize_keras_object(self.projection_head),
        )
        return config
