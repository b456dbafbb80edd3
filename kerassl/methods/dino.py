"""DINO: self-distillation with no labels."""

import keras
from keras import ops

from kerassl import augment, distributed, losses, schedules
from kerassl.backbones import vit
from kerassl.losses import distill as losses_distill
from kerassl.methods.base import SSLMethod, encode, split_inputs
from kerassl.heads import DINOHead
from kerassl.registry import register
from kerassl.teacher import batch_statistics, clone_architecture, count_fit_steps, weight_pairs


def default_local_crop_size(global_size, patch_size=1):
    """DINO's 96 / 224 ratio, rounded to a multiple of the ViT patch size."""
    patches = max(1, int(round(global_size * 96 / 224 / patch_size)))
    return patches * patch_size


@register
class DINO(SSLMethod):
    """DINO: a student network learns to match an EMA teacher across crops.

    Short runs: the paper's settings (momentum from 0.996, several local
    crops) are made for hundreds of epochs. In a few hundred steps the
    teacher barely leaves its random init and the local crops make the
    task harder than the encoder learns in that time: the teacher can end
    below a random-init encoder by kNN. For such budgets start the momentum
    lower (0.96) and drop the local crops (`num_local_crops=0`); on digits
    also turn off flips (a `global_augmenter` from
    `kerassl.augment.simclr_augmenter(..., flip=False)`). Measured with a
    small convnet (`tests/test_dino.py`), teacher kNN against the mean of 5
    random inits: 2,000 MNIST images, 320 steps, 0.741 against 0.592 on
    TensorFlow and 0.720 against 0.627 on JAX (0.472 on TensorFlow with
    momentum from 0.99, 2 local crops and flips); 10,000 CIFAR-10 images,
    400 steps, 0.406 against 0.338. Random inits vary widely (0.55-0.73 on
    MNIST), and the luckiest is not beaten at these budgets. A tiny ViT has
    not beaten its random init at these budgets either.

    Each image gives 2 global crops and `num_local_crops` smaller local
    crops. The teacher, an exponential moving average of the student with
    the same architecture, sees the global crops only; its outputs are
    centred (a running mean, `center_momentum`) and sharpened (a low
    temperature, warmed up linearly) into targets that the student must
    predict from every other crop (`kerassl.losses.dino_loss`).
    Centering keeps one dimension from dominating, sharpening keeps the
    output from going uniform: together they avoid collapse without
    negatives or a predictor.

    The teacher's weights are non-trainable variables updated inside the
    training step by `assign` (momentum on a cosine schedule from
    `momentum_start` to `momentum_end`), so the method runs with the built-in
    `fit` on TensorFlow and JAX. `dino.encoder` is the teacher's encoder (the
    better one, per the paper); `dino.student_encoder` the student's.

    In training the teacher runs like the student (as in the official code):
    its BatchNorm layers normalize with batch statistics, although frozen.

    Works with any encoder: ViTs interpolate their position embeddings for
    the small local crops; a CNN with global pooling takes any size.

    Gradient clipping: `compile` sets the optimizer's `clipnorm` (each
    gradient tensor clipped to norm `gradient_clip_norm`, as DINO's
    `clip_grad=3.0`) unless the optimizer already clips (`clipnorm`,
    `clipvalue` or `global_clipnorm` given); pass `gradient_clip_norm=None`
    to turn it off. Under a TensorFlow strategy the gradient summed over
    replicas is clipped, as on one device (`kerassl.distributed.clip_after_summing`).

    Logged metrics: `teacher_entropy` (mean entropy of the teacher's target
    distributions: near 0 means one-hot collapse, near log K uniform
    collapse), `teacher_batch_entropy` (entropy of their batch mean: low
    means every image gets the same target), `teacher_momentum` and
    `teacher_temperature`.

    Args:
        encoder: keras.Model, images (B, H, W, C) in [0, 1] -> (B, D). The
            student; the teacher is a copy built from its config.
        head_hidden_dim: int. Hidden width of the DINO head.
        head_bottleneck_dim: int. Bottleneck of the DINO head.
        head_output_dim: int. K.
        head_batch_norm: bool or "auto". BatchNorm in the hidden layers of
            the default head. "auto": off for kerassl ViT encoders (the
            official code's default, `use_bn_in_head=False`), on for any
            other encoder (as lightly's CIFAR-10 benchmark head). Without
            it a small convnet on MNIST (2 local crops, momentum from
            0.996) drifted to uniform targets (entropy 6.86 of log K =
            6.93; lightly's 6.92).
        student_temperature: float.
        teacher_temperature: float. Teacher temperature after warm-up.
        warmup_teacher_temperature: float. Teacher temperature at step 0.
        teacher_temperature_warmup_steps: int. Linear warm-up length.
        center_momentum: float in [0, 1).
        momentum_start: float. Teacher EMA momentum at step 0.
        momentum_end: float. Teacher EMA momentum at the end.
        momentum_schedule_steps: int or None. Length of the cosine momentum
            schedule in steps. None: each `fit` sets it to the steps done
            so far plus the steps that call will make (when it can count
            them: arrays, or `steps_per_epoch`, or a sized dataset);
            otherwise the momentum stays at `momentum_start`.
        num_local_crops: int >= 0.
        global_crop_size: int or None. Default: the input image size.
        local_crop_size: int or None. Default: 96/224 of the global size,
            a multiple of the ViT patch size.
        global_crop_scale: (min, max) area fraction of global crops.
        local_crop_scale: (min, max) area fraction of local crops.
        gradient_clip_norm: float or None. See above.
        global_augmenter: Keras layer or None. One global view per call with
            `training=True`; default `kerassl.augment.simclr_augmenter`
            with DINO's crop scale and colour strength 0.5 (brightness,
            contrast, saturation 0.4, hue 0.1; blur for 64 px and up).
        local_augmenter: Keras layer or None. Likewise for local crops.
        head: Keras layer or None. Replaces the default `DINOHead`; the
            teacher gets a copy.
        num_classes: int or None. Online linear probe on the student's
            global-crop features.
        seed: int or None. Seeds the default augmenters.

    Example:
    ```python
    dino = kerassl.DINO(kerassl.backbones.vit_tiny(image_size=32, patch_size=4))
    dino.compile(optimizer=keras.optimizers.AdamW(5e-4, weight_decay=0.04))
    dino.fit(images, epochs=100, batch_size=256)
    kerassl.viz.attention_maps(dino.encoder, images[:4], "attn.png")
    ```

    Reference: Caron et al., "Emerging Properties in Self-Supervised Vision
    Transformers", ICCV 2021 (https://arxiv.org/abs/2104.14294).
    """

    nested_config_keys = ("encoder", "head", "global_augmenter", "local_augmenter")
    training_only_metrics = ("teacher_momentum",)

    def __init__(
        self,
        encoder,
        head_hidden_dim=2048,
        head_bottleneck_dim=256,
        head_output_dim=4096,
        head_batch_norm="auto",
        student_temperature=0.1,
        teacher_temperature=0.04,
        warmup_teacher_temperature=0.04,
        teacher_temperature_warmup_steps=0,
        center_momentum=0.9,
        momentum_start=0.996,
        momentum_end=1.0,
        momentum_schedule_steps=None,
        num_local_crops=6,
        global_crop_size=None,
        local_crop_size=None,
        global_crop_scale=(0.4, 1.0),
        local_crop_scale=(0.05, 0.4),
        gradient_clip_norm=3.0,
        global_augmenter=None,
        local_augmenter=None,
        head=None,
        num_classes=None,
        seed=None,
        **kwargs,
    ):
        teacher = clone_architecture(encoder) if isinstance(encoder, keras.layers.Layer) else encoder
        super().__init__(teacher, num_classes=num_classes, seed=seed, **kwargs)
        self.student_encoder = encoder
        self.student_temperature = losses.check_temperature(student_temperature)
        self.teacher_temperature = losses.check_temperature(teacher_temperature)
        self.warmup_teacher_temperature = losses.check_temperature(warmup_teacher_temperature)
        self.teacher_temperature_warmup_steps = int(teacher_temperature_warmup_steps)
        for name, value in (("center_momentum", center_momentum), ("momentum_start", momentum_start), ("momentum_end", momentum_end)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]; got {value}.")
        self.center_momentum = float(center_momentum)
        self.momentum_start = float(momentum_start)
        self.momentum_end = float(momentum_end)
        if momentum_schedule_steps is not None and int(momentum_schedule_steps) < 1:
            raise ValueError(f"momentum_schedule_steps must be a positive int or None; got {momentum_schedule_steps}.")
        self.momentum_schedule_steps = None if momentum_schedule_steps is None else int(momentum_schedule_steps)
        if int(num_local_crops) < 0:
            raise ValueError(f"num_local_crops must be >= 0; got {num_local_crops}.")
        self.num_local_crops = int(num_local_crops)
        self.global_crop_size = None if global_crop_size is None else int(global_crop_size)
        self.local_crop_size = None if local_crop_size is None else int(local_crop_size)
        self.global_crop_scale = tuple(float(v) for v in global_crop_scale)
        self.local_crop_scale = tuple(float(v) for v in local_crop_scale)
        if gradient_clip_norm is not None and not gradient_clip_norm > 0:
            raise ValueError(f"gradient_clip_norm must be positive or None; got {gradient_clip_norm}.")
        self.gradient_clip_norm = None if gradient_clip_norm is None else float(gradient_clip_norm)
        self.head_hidden_dim = int(head_hidden_dim)
        self.head_bottleneck_dim = int(head_bottleneck_dim)
        self.head_output_dim = int(head_output_dim)
        if head_batch_norm not in ("auto", True, False):
            raise ValueError(f'head_batch_norm must be True, False or "auto"; got {head_batch_norm!r}.')
        self.head_batch_norm = head_batch_norm
        if head_batch_norm == "auto":
            head_batch_norm = not _is_transformer(encoder)
        self.head = head or DINOHead(
            self.head_hidden_dim, self.head_bottleneck_dim, self.head_output_dim,
            batch_norm=head_batch_norm, name="head",
        )
        self.teacher_head = clone_architecture(self.head)
        self.encoder.trainable = False
        self.teacher_head.trainable = False
        self.global_augmenter = global_augmenter
        self.local_augmenter = local_augmenter
        self.teacher_entropy_tracker = keras.metrics.Mean(name="teacher_entropy")
        self.teacher_batch_entropy_tracker = keras.metrics.Mean(name="teacher_batch_entropy")
        self.momentum_tracker = keras.metrics.Mean(name="teacher_momentum")
        self.temperature_tracker = keras.metrics.Mean(name="teacher_temperature")
        self.step_counter = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="step_counter"
        )
        self.schedule_steps = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(float(self.momentum_schedule_steps or 0)),
            trainable=False,
            name="schedule_steps",
        )

    @property
    def teacher_encoder(self):
        """The teacher's encoder (the same object as `encoder`)."""
        return self.encoder

    # -- building ------------------------------------------------------------
    def _patch_size(self):
        try:
            return vit.find_transformer(self.student_encoder).patch_size
        except ValueError:
            return 1

    def build(self, input_shape):
        image_shape = self.image_shape(input_shape)
        height, channels = image_shape[1], image_shape[-1]
        global_size = self.global_crop_size or height
        if global_size is None:
            raise ValueError("DINO needs a known image size, or pass global_crop_size.")
        local_size = self.local_crop_size or default_local_crop_size(global_size, self._patch_size())
        seed = self.seed
        if self.global_augmenter is None:
            self.global_augmenter = augment.simclr_augmenter(
                global_size, channels, scale=self.global_crop_scale, jitter_strength=0.5,
                seed=seed, name="global_augmenter",
            )
        if self.local_augmenter is None and self.num_local_crops:
            self.local_augmenter = augment.simclr_augmenter(
                local_size, channels, scale=self.local_crop_scale, jitter_strength=0.5,
                seed=None if seed is None else seed + 100, name="local_augmenter",
            )
        for augmenter in (self.global_augmenter, self.local_augmenter):
            if augmenter is not None and not augmenter.built:
                augmenter.build(image_shape)
        feature_dim = self.build_encoder(image_shape)
        if not self.student_encoder.built:
            self.student_encoder.build(image_shape)
        for head in (self.head, self.teacher_head):
            if not head.built:
                head.build((None, feature_dim))
        self.center = self.add_weight(
            shape=(1, self.head.compute_output_shape((None, feature_dim))[-1]),
            initializer="zeros",
            trainable=False,
            name="center",
        )
        self.build_probe(feature_dim)
        for teacher, student in self.ema_pairs():
            # The teacher starts as the student, in buffers of its own: on JAX an
            # assign shares the array, and `fit` donates every variable's buffer.
            # When `fit` builds the model, this runs in a stateless symbolic pass
            # that drops assignments; `start_teacher_as_student` redoes it then.
            teacher.assign(ops.copy(student.value))
        self.built = True

    def start_teacher_as_student(self):
        """At the first training step, sets every teacher weight to the student's.

        `build` does it too, but when `fit` builds the model it runs `build`
        inside a symbolic, stateless pass whose assignments are dropped: the
        teacher then started as an independent random network (fixed
        2026-11-28; it held back every earlier CPU run that let `fit` build
        the model). Here the copy happens inside the step, where assignments
        hold, on the step with `step_counter == 0`.
        """
        first = ops.equal(ops.convert_to_tensor(self.step_counter), 0.0)
        for teacher, student in self.ema_pairs():
            current = ops.convert_to_tensor(teacher)
            teacher.assign(ops.where(first, ops.cast(ops.convert_to_tensor(student), teacher.dtype), current))

    def ema_pairs(self):
        """(teacher variable, student variable) pairs the EMA updates.

        All float weights, BatchNorm moving statistics included: the teacher
        normalizes with batch statistics in training, but `dino.encoder` is
        used in inference mode afterwards and needs moving statistics.
        """
        return weight_pairs((self.encoder, self.teacher_head), (self.student_encoder, self.head))

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        # Under mixed_float16 Keras wraps the optimizer in a LossScaleOptimizer, which
        # applies the inner optimizer's clipping, not its own.
        optimizer = getattr(self.optimizer, "inner_optimizer", self.optimizer)
        clips = any(getattr(optimizer, name, None) for name in ("clipnorm", "clipvalue", "global_clipnorm"))
        if self.gradient_clip_norm and not clips and hasattr(optimizer, "clipnorm"):
            # Under a TensorFlow strategy the summed gradient is clipped, as on one
            # device (SSLMethod.compile: distributed.clip_after_summing).
            optimizer.clipnorm = self.gradient_clip_norm

    def compile_from_config(self, config):
        # Keras skips restoring the compile state of models that override
        # `compile`; ours keeps the standard signature, so restore it the same way.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    # -- schedules -------------------------------------------------------------
    def teacher_momentum_at(self, step):
        return schedules.cosine_schedule(step, self.schedule_steps, self.momentum_start, self.momentum_end)

    def teacher_temperature_at(self, step):
        return schedules.linear_warmup(
            step, self.teacher_temperature_warmup_steps, self.warmup_teacher_temperature, self.teacher_temperature
        )

    # -- forward -------------------------------------------------------------
    def call(self, inputs, training=False):
        if not training:
            return super().call(inputs)
        images, _ = split_inputs(inputs)
        images = self.prepare_images(images)
        if self.layers_training:
            self.start_teacher_as_student()
        global_views = ops.concatenate(
            [self.global_augmenter(images, training=True) for _ in range(2)], axis=0
        )
        # The teacher runs like the student, BatchNorm on batch statistics, as in
        # the official code (its teacher is never put in eval mode). Frozen
        # Keras BatchNorm layers ignore `training=True`, so they are let through
        # for this call; running on the (EMA-lagged) moving statistics instead
        # maps every image to nearly the same output early on, and DINO then
        # collapses to uniform targets.
        training = self.layers_training  # False while evaluating: moving statistics
        with batch_statistics(self.encoder, self.teacher_head):
            teacher_logits = self.teacher_head(encode(self.encoder, global_views, training), training=training)
        global_features = encode(self.student_encoder, global_views, training)
        features = [global_features]
        if self.num_local_crops:
            local_views = ops.concatenate(
                [self.local_augmenter(images, training=True) for _ in range(self.num_local_crops)], axis=0
            )
            features.append(encode(self.student_encoder, local_views, training))
        student_logits = self.head(ops.concatenate(features, axis=0), training=training)
        size = student_logits.shape[-1]
        return {
            "features": global_features,
            "student_logits": ops.reshape(student_logits, (2 + self.num_local_crops, -1, size)),
            "teacher_logits": ops.stop_gradient(ops.reshape(teacher_logits, (2, -1, size))),
        }

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        y_pred, labels = self.training_outputs(x, y, y_pred, training)
        step = ops.convert_to_tensor(self.step_counter)
        temperature = self.teacher_temperature_at(step)
        teacher_logits = ops.cast(y_pred["teacher_logits"], "float32")
        center = self.center
        loss = losses_distill.dino_loss(
            y_pred["student_logits"], teacher_logits, center, self.student_temperature, temperature
        )
        probabilities = ops.softmax((teacher_logits - center) / temperature, axis=-1)
        self.teacher_entropy_tracker.update_state(ops.mean(losses_distill.entropy(probabilities)))
        self.teacher_batch_entropy_tracker.update_state(
            losses_distill.entropy(ops.mean(probabilities, axis=(0, 1)))
        )
        self.temperature_tracker.update_state(temperature)
        if training:
            momentum = self.teacher_momentum_at(step)
            self.momentum_tracker.update_state(momentum)
            self.update_teacher(momentum)
            # The centre follows the teacher's outputs on the global crops only.
            # ... of every replica's slice (a no-op on one device and on JAX).
            batch_center = distributed.mean_across_replicas(ops.mean(teacher_logits, axis=(0, 1))[None, :])
            self.center.assign(center * self.center_momentum + batch_center * (1.0 - self.center_momentum))
            self.step_counter.assign_add(1.0)
        return loss + self.online_probe_loss(labels, y_pred["features"])

    def update_teacher(self, momentum):
        """teacher <- momentum * teacher + (1 - momentum) * student, for every weight."""
        for teacher, student in self.ema_pairs():
            value = ops.stop_gradient(ops.cast(student, teacher.dtype))
            teacher.assign(momentum * teacher + (1.0 - momentum) * value)

    # -- training --------------------------------------------------------------
    def before_fit(self, x, batch_size=None, epochs=1, steps_per_epoch=None, initial_epoch=0, **kwargs):
        """Sets the momentum schedule's length from the run `fit` starts, if not given."""
        if self.momentum_schedule_steps is None:
            steps = count_fit_steps(x, batch_size, epochs, steps_per_epoch, initial_epoch)
            if steps:
                done = float(ops.convert_to_numpy(self.step_counter))
                self.schedule_steps.assign(done + steps)

    def get_config(self):
        config = super().get_config()
        config.update(
            head_hidden_dim=self.head_hidden_dim,
            head_bottleneck_dim=self.head_bottleneck_dim,
            head_output_dim=self.head_output_dim,
            head_batch_norm=self.head_batch_norm,
            student_temperature=self.student_temperature,
            teacher_temperature=self.teacher_temperature,
            warmup_teacher_temperature=self.warmup_teacher_temperature,
            teacher_temperature_warmup_steps=self.teacher_temperature_warmup_steps,
            center_momentum=self.center_momentum,
            momentum_start=self.momentum_start,
            momentum_end=self.momentum_end,
            momentum_schedule_steps=self.momentum_schedule_steps,
            num_local_crops=self.num_local_crops,
            global_crop_size=self.global_crop_size,
            local_crop_size=self.local_crop_size,
            global_crop_scale=self.global_crop_scale,
            local_crop_scale=self.local_crop_scale,
            gradient_clip_norm=self.gradient_clip_norm,
            global_augmenter=keras.saving.serialize_keras_object(self.global_augmenter),
            local_augmenter=keras.saving.serialize_keras_object(self.local_augmenter),
            head=keras.saving.serialize_keras_object(self.head),
        )
        # The saved encoder is the teacher; rebuild the student from it.
        config["encoder"] = keras.saving.serialize_keras_object(self.student_encoder)
        return config


def _is_transformer(encoder):
    try:
        vit.find_transformer(encoder)
    except (ValueError, AttributeError, TypeError):
        return False
    return True

