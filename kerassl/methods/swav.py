"""SwAV: swapping assignments between multi-crop views."""

import keras
from keras import ops

from kerassl import augment, heads, losses
from kerassl.methods.base import split_inputs
from kerassl.methods.base import encode
from kerassl.methods.two_view import TwoViewMethod
from kerassl.teacher import MemoryBank
from kerassl.registry import register



@register
class SwAV(TwoViewMethod):
    """SwAV: each crop predicts the cluster codes that Sinkhorn-Knopp assigns to another crop.

    Each image gives 2 high-resolution crops and `num_local_crops`
    low-resolution ones; all go through the encoder, a projector
    (2048-128) and L2 normalization, then a dot product with K unit-norm
    prototypes (`kerassl.heads.Prototypes`). For each high-resolution crop,
    `kerassl.losses.sinkhorn_knopp` (3 iterations, eps 0.05) turns the
    scores into soft codes that spread the batch evenly over the
    prototypes; every other crop must predict them from its own scores
    (softmax at temperature 0.1; `kerassl.losses.swav_loss`). With
    `queue_size > 0`, earlier embeddings of the two high-resolution crops
    (two `kerassl.teacher.MemoryBank`s, zeros at first) join the Sinkhorn
    step once full, as the official code does for small batches. The
    prototypes get no gradient for the first `freeze_prototypes_steps`
    steps (the official `--freeze_prototypes_niters 313`).

    Views: SimCLR's colour jitter at strength 1.0 (0.8, 0.8, 0.8, 0.2), blur
    from 64 px, crop scales (0.14, 1) and (0.05, 0.14), local crops 96/224
    of the image size, as `facebookresearch/swav`.

    Logged: `embedding_std` (std of the normalized embeddings; about
    1/sqrt(dim) healthy, 0 at collapse).

    Short runs (measured): projector 512-128, `num_prototypes=100`, 2 local crops of 12 px at scale
    (0.1, 0.4), `freeze_prototypes_steps=16` (one epoch), no queue; 2,000 MNIST digits, `small_convnet(width=16)`, BYOL's views without flips at crop
    scale (0.4, 1), AdamW(1e-3), batch 128, 320 steps on TensorFlow; kNN (k=20) against
    0.592 for the mean of 5 random inits (`tests/test_staples_learning.py`): kNN 0.723, and
    `embedding_std` times sqrt(projection dim) 0.93 (0 would be collapse).

    Args:
        encoder: keras.Model. Images in [0, 1] -> (batch, D); one that pools
            globally takes the smaller local crops.
        projection_hidden_dim: int. 2048.
        projection_dim: int. 128.
        num_prototypes: int. 3000.
        temperature: float. 0.1.
        sinkhorn_epsilon: float. 0.05.
        sinkhorn_iterations: int. 3.
        num_local_crops: int >= 0. 6.
        local_crop_size: int or None. Default 96/224 of the image size.
        global_crop_scale: (min, max). (0.14, 1.0).
        local_crop_scale: (min, max). (0.05, 0.14).
        queue_size: int >= 0. 0: no queue (3840 at batch 256 in the paper).
        freeze_prototypes_steps: int >= 0. 313.
        augmenter: Keras layer or None. High-resolution crops.
        local_augmenter: Keras layer or None. Low-resolution crops.
        projection_head: Keras layer or None.
        num_classes: int or None. Online linear probe.
        seed: int or None.

    Example:
    ```python
    model = kerassl.SwAV(encoder, num_prototypes=300, num_local_crops=2)
    model.compile(optimizer="adamw")
    model.fit(images, epochs=10, batch_size=256)
    ```

    Reference: Caron et al., "Unsupervised Learning of Visual Features by
    Contrasting Cluster Assignments", NeurIPS 2020
    (https://arxiv.org/abs/2006.09882).
    """

    nested_config_keys = ("encoder", "augmenter", "local_augmenter", "projection_head")

    def __init__(
        self,
        encoder,
        projection_hidden_dim=2048,
        projection_dim=128,
        num_prototypes=3000,
        temperature=0.1,
        sinkhorn_epsilon=0.05,
        sinkhorn_iterations=3,
        num_local_crops=6,
        local_crop_size=None,
        global_crop_scale=(0.14, 1.0),
        local_crop_scale=(0.05, 0.14),
        queue_size=0,
        freeze_prototypes_steps=313,
        augmenter=None,
        local_augmenter=None,
        projection_head=None,
        num_classes=None,
        seed=None,
        **kwargs,
    ):
        self.projection_hidden_dim = int(projection_hidden_dim)
        self.projection_dim = int(projection_dim)
        self.num_prototypes = int(num_prototypes)
        self.temperature = losses.check_temperature(temperature)
        if not sinkhorn_epsilon > 0 or int(sinkhorn_iterations) < 1:
            raise ValueError(
                f"sinkhorn_epsilon must be positive and sinkhorn_iterations >= 1; got {sinkhorn_epsilon}, {sinkhorn_iterations}."
            )
        self.sinkhorn_epsilon = float(sinkhorn_epsilon)
        self.sinkhorn_iterations = int(sinkhorn_iterations)
        for name, value in (("num_local_crops", num_local_crops), ("queue_size", queue_size),
                            ("freeze_prototypes_steps", freeze_prototypes_steps)):
            if int(value) < 0:
                raise ValueError(f"{name} must be >= 0; got {value}.")
        self.num_local_crops = int(num_local_crops)
        self.local_crop_size = None if local_crop_size is None else int(local_crop_size)
        self.global_crop_scale = tuple(float(v) for v in global_crop_scale)
        self.local_crop_scale = tuple(float(v) for v in local_crop_scale)
        self.queue_size = int(queue_size)
        self.freeze_prototypes_steps = int(freeze_prototypes_steps)
        super().__init__(
            encoder,
            projection_head or heads.MLPHead([self.projection_hidden_dim, self.projection_dim], name="projection_head"),
            augmenter=augmenter,
            num_classes=num_classes,
            seed=seed,
            **kwargs,
        )
        self.local_augmenter = local_augmenter
        self.prototypes = heads.Prototypes(self.num_prototypes, name="prototypes")
        self.step = self.add_weight(shape=(), initializer="zeros", trainable=False, name="step")
        self.queues = []

    def default_augmenters(self, image_shape):
        return (
            augment.simclr_augmenter(
                image_shape[1:3], image_shape[-1], scale=self.global_crop_scale, jitter_strength=1.0,
                seed=self.seed, name="global_augmenter",
            ),
            None,
        )

    def build_extra(self, feature_dim, projection_dim):
        if not self.prototypes.built:
            self.prototypes.build((None, projection_dim))
        if self.queue_size and not self.queues:
            self.queues = [
                MemoryBank(self.queue_size, projection_dim, initializer="zeros", name=f"queue_{i}") for i in range(2)
            ]

    def build(self, input_shape):
        image_shape = self.image_shape(input_shape)
        if self.local_augmenter is None and self.num_local_crops:
            size = self.local_crop_size or max(1, round(image_shape[1] * 96 / 224))
            self.local_augmenter = augment.simclr_augmenter(
                size, image_shape[-1], scale=self.local_crop_scale, jitter_strength=1.0,
                seed=None if self.seed is None else self.seed + 100, name="local_augmenter",
            )
        if self.local_augmenter is not None and not self.local_augmenter.built:
            self.local_augmenter.build(image_shape)
        super().build(input_shape)

    def call(self, inputs, training=False):
        if not training:
            return super().call(inputs)
        images = self.prepare_images(split_inputs(inputs)[0])
        features = self.encoder(self.make_views(images), training=self.layers_training)
        groups = [features]
        if self.num_local_crops:
            local = ops.concatenate(
                [self.local_augmenter(images, training=True) for _ in range(self.num_local_crops)], axis=0
            )
            groups.append(encode(self.encoder, local, self.layers_training))
        projections = self.projection_head(ops.concatenate(groups, axis=0), training=self.layers_training)
        embeddings = losses.l2_normalize(projections)
        frozen = ops.less(ops.convert_to_tensor(self.step), float(self.freeze_prototypes_steps))
        scores = self.prototypes(embeddings, gradient_scale=ops.where(frozen, 0.0, 1.0))
        crops = 2 + self.num_local_crops
        return {
            "features": features,
            "projections": projections[: ops.shape(features)[0]],
            "embeddings": ops.reshape(embeddings, (crops, -1, embeddings.shape[-1])),
            "scores": ops.reshape(scores, (crops, -1, self.num_prototypes)),
        }

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        y_pred, labels = self.training_outputs(x, y, y_pred, training)
        queue_scores, use_queue = None, True
        if self.queues:
            use_queue = self.queues[0].is_full()
            prototypes = ops.stop_gradient(self.prototypes.normalized_kernel())
            banks = []
            for queue, embeddings in zip(self.queues, (y_pred["embeddings"][0], y_pred["embeddings"][1])):
                banks.append(queue.update(embeddings) if training else queue.content())
            queue_scores = ops.matmul(ops.stack(banks), prototypes)
        loss = losses.swav_loss(
            y_pred["scores"], 2, self.temperature, self.sinkhorn_epsilon, self.sinkhorn_iterations,
            queue_scores=queue_scores, use_queue=use_queue,
        )
        if training:
            self.step.assign_add(1.0)
        return self.finish_loss(loss, y_pred, labels, training)

    def get_config(self):
        config = super().get_config()
        config.update(
            projection_hidden_dim=self.projection_hidden_dim,
            projection_dim=self.projection_dim,
            num_prototypes=self.num_prototypes,
            temperature=self.temperature,
            sinkhorn_epsilon=self.sinkhorn_epsilon,
            sinkhorn_iterations=self.sinkhorn_iterations,
            num_local_crops=self.num_local_crops,
            local_crop_size=self.local_crop_size,
            global_crop_scale=self.global_crop_scale,
            local_crop_scale=self.local_crop_scale,
            queue_size=self.queue_size,
            freeze_prototypes_steps=self.freeze_prototypes_steps,
            local_augmenter=keras.saving.serialize_keras_object(self.local_augmenter),
        )
        return config
