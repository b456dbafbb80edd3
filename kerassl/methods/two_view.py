"""What the two-view methods share: views, heads, an optional EMA teacher, collapse metric.

BYOL, MoCo, SimSiam, Barlow Twins, VICReg, NNCLR and SwAV all augment each
image twice, run both views through the encoder and a projection head (and
some through a predictor and a momentum teacher), then differ only in the
loss. MoCo v2's one-sided step (`one_sided`) sends view 1 through the
encoder and view 2 through the teacher only. `TwoViewMethod` owns that
shared training `call` and the bookkeeping around each method's loss
(collapse metric, teacher update, online probe), so each method's
`compute_loss` is its loss and nothing else.
"""

import inspect

import keras
from keras import ops

from kerassl import augment, losses
from kerassl.methods.base import SSLMethod, encode, split_inputs  # noqa: F401  (encode: kept importable here)
from kerassl.teacher import EMATeacher, count_fit_steps


class TwoViewMethod(SSLMethod):
    """Base of the two-view methods; not used on its own.

    Subclasses pass their heads, choose their default augmenters in
    `default_augmenters(image_shape)` and write `compute_loss` as

    ```python
    y_pred, labels = self.training_outputs(x, y, y_pred, training)
    loss = ...  # from y_pred["projections"], ["predictions"], ["teacher_projections"]
    return self.finish_loss(loss, y_pred, labels, training)
    ```

    Each tensor in `y_pred` holds view 1 then view 2 along the batch axis,
    unless the method is `one_sided` (MoCo v2 as in its paper): then the
    online networks see view 1 only and the teacher view 2 only, and each
    tensor holds one view.

    Args:
        encoder: keras.Model, images -> (batch, features).
        projection_head: Keras layer.
        prediction_head: Keras layer or None.
        augmenter: Keras layer or None. View 1 (and view 2 when
            `second_augmenter` is None); default from `default_augmenters`.
        second_augmenter: Keras layer or None. View 2.
        momentum_start: float or None. With a value, an EMA teacher of
            (encoder, projection head) is kept (`kerassl.teacher.EMATeacher`).
        momentum_end: float.
        momentum_schedule_steps: int or None. None: each `fit` sets the cosine
            schedule's length to the steps done plus the steps it will make.
        num_classes: int or None. Online linear probe.
        seed: int or None.
    """

    nested_config_keys = ("encoder", "augmenter", "second_augmenter", "projection_head", "prediction_head")

    training_only_metrics = ("teacher_momentum",)

    # True: the encoder and heads forward view 1 only and the teacher view 2
    # only, for a loss that pairs those two alone (half the work of both views
    # through both networks).
    one_sided = False

    def __init__(
        self,
        encoder,
        projection_head,
        prediction_head=None,
        augmenter=None,
        second_augmenter=None,
        momentum_start=None,
        momentum_end=1.0,
        momentum_schedule_steps=None,
        num_classes=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(encoder, num_classes=num_classes, seed=seed, **kwargs)
        self.projection_head = projection_head
        self.prediction_head = prediction_head
        self.augmenter = augmenter
        self.second_augmenter = second_augmenter
        if momentum_schedule_steps is not None and int(momentum_schedule_steps) < 1:
            raise ValueError(f"momentum_schedule_steps must be a positive int or None; got {momentum_schedule_steps}.")
        self.momentum_schedule_steps = None if momentum_schedule_steps is None else int(momentum_schedule_steps)
        self.momentum_start = None if momentum_start is None else float(momentum_start)
        self.momentum_end = float(momentum_end)
        if self.momentum_start is not None:
            self.teacher = EMATeacher(
                [encoder, projection_head], self.momentum_start, self.momentum_end, self.momentum_schedule_steps
            )
            self.momentum_tracker = keras.metrics.Mean(name="teacher_momentum")
        else:
            self.teacher = None
        self.embedding_std_tracker = keras.metrics.Mean(name="embedding_std")

    # -- building ------------------------------------------------------------
    def default_augmenters(self, image_shape):
        """(view 1, view 2 or None) for images of `image_shape`.

        BYOL's asymmetric pair (blur always on view 1, rarely on view 2;
        solarization on view 2 only), which Barlow Twins, VICReg, NNCLR and
        MoCo v3 also use; SimSiam, MoCo v2 and SwAV override it.
        """
        size, channels = image_shape[1:3], image_shape[-1]
        return (
            augment.byol_augmenter(size, channels, view=1, seed=self.seed),
            augment.byol_augmenter(size, channels, view=2, seed=self.seed),
        )

    def build_extra(self, feature_dim, projection_dim):
        """Subclasses create state that depends on sizes (memory banks, prototypes)."""

    def build(self, input_shape):
        image_shape = self.image_shape(input_shape)
        if self.augmenter is None:
            self.augmenter, second = self.default_augmenters(image_shape)
            if self.second_augmenter is None:
                self.second_augmenter = second
        for augmenter in (self.augmenter, self.second_augmenter):
            if augmenter is not None and not augmenter.built:
                augmenter.build(image_shape)
        feature_dim = self.build_encoder(image_shape)
        if not self.projection_head.built:
            self.projection_head.build((None, feature_dim))
        projection_dim = self.projection_head.compute_output_shape((None, feature_dim))[-1]
        if self.prediction_head is not None and not self.prediction_head.built:
            self.prediction_head.build((None, projection_dim))
        if self.teacher is not None and not self.teacher.built:
            self.teacher.build(image_shape)
        self.build_probe(feature_dim)
        self.build_extra(feature_dim, projection_dim)
        self.built = True

    # -- training ------------------------------------------------------------
    def view_pair(self, images):
        """(view 1, view 2) of a batch of images."""
        second = self.second_augmenter or self.augmenter
        return self.augmenter(images, training=True), second(images, training=True)

    def make_views(self, images):
        """View 1 then view 2, stacked along the batch axis."""
        return ops.concatenate(self.view_pair(images), axis=0)

    def call(self, inputs, training=False):
        if not training:
            return super().call(inputs)
        images, _ = split_inputs(inputs)
        first, second = self.view_pair(self.prepare_images(images))
        if self.one_sided:
            views, teacher_views = first, second
        else:
            views = teacher_views = ops.concatenate([first, second], axis=0)
        # In a training step the networks train; while `evaluate` draws its views
        # (`layers_training` False) BatchNorm keeps its moving statistics.
        mode = self.layers_training
        features = self.encoder(views, training=mode)
        projections = self.projection_head(features, training=mode)
        outputs = {"features": features, "projections": projections}
        if self.prediction_head is not None:
            outputs["predictions"] = self.prediction_head(projections, training=mode)
        if self.teacher is not None:
            if mode:
                self.teacher.start_as_students()
            outputs["teacher_projections"] = self.teacher(teacher_views, training=mode)
        return outputs

    def finish_loss(self, loss, y_pred, labels, training):
        """Logs the collapse metric (view 1's projections), moves the teacher (training only), adds the probe."""
        z1 = ops.stop_gradient(ops.cast(y_pred["projections"], "float32"))
        if not self.one_sided:
            z1, _ = ops.split(z1, 2, axis=0)
        self.embedding_std_tracker.update_state(losses.embedding_std(z1))
        if self.teacher is not None and training:
            self.momentum_tracker.update_state(self.teacher.update())
        return loss + self.online_probe_loss(labels, y_pred["features"])

    def before_fit(self, x, batch_size=None, epochs=1, steps_per_epoch=None, initial_epoch=0, **kwargs):
        """Sets the teacher's momentum schedule length from the run `fit` starts, if not given."""
        if self.teacher is not None and self.momentum_schedule_steps is None:
            steps = count_fit_steps(x, batch_size, epochs, steps_per_epoch, initial_epoch)
            if steps:
                done = float(ops.convert_to_numpy(self.teacher.step))
                self.teacher.schedule_steps.assign(done + steps)

    def get_config(self):
        config = super().get_config()
        accepted = inspect.signature(type(self).__init__).parameters
        shared = dict(
            augmenter=keras.saving.serialize_keras_object(self.augmenter),
            second_augmenter=keras.saving.serialize_keras_object(self.second_augmenter),
            projection_head=keras.saving.serialize_keras_object(self.projection_head),
            prediction_head=keras.saving.serialize_keras_object(self.prediction_head),
            momentum_start=self.momentum_start,
            momentum_end=self.momentum_end,
            momentum_schedule_steps=self.momentum_schedule_steps,
        )
        config.update({key: value for key, value in shared.items() if key in accepted})
        return config


def split_views(tensor):
    """(view 1, view 2) halves of a tensor stacked along the batch, in float32."""
    return ops.split(ops.cast(tensor, "float32"), 2, axis=0)
