"""State shared by methods: an EMA teacher and a memory bank.

Both are Keras layers that a method holds as attributes, so their variables
are saved with the method, restored by `keras.saving.load_model` and updated
by `assign` inside the compiled training step on every backend (on JAX,
writes made in `compute_loss` are collected from its stateless scope).
"""

import contextlib
import math

import keras
import numpy as np
from keras import ops

from kerassl.losses import l2_normalize
from kerassl.schedules import cosine_schedule
from kerassl.registry import register



def clone_architecture(layer, prefix="teacher_"):
    """A new layer or model with the same config and fresh weights."""
    config = keras.saving.serialize_keras_object(layer)
    if isinstance(config.get("config"), dict) and "name" in config["config"]:
        config["config"]["name"] = prefix + config["config"]["name"]
    return keras.saving.deserialize_keras_object(config)


@contextlib.contextmanager
def batch_statistics(*models):
    """Within the block, frozen BatchNorm layers of `models` use batch statistics.

    Keras' BatchNormalization uses batch statistics only when called with
    `training=True` *and* trainable. A teacher is frozen (its weights stay out
    of the optimizer) yet, as in the official BYOL, MoCo and DINO code, it
    normalizes like the student; so its BatchNorm layers are marked trainable
    for the duration of the call. The private flag skips the public setter,
    which would make their variables trainable; it is Python state read while
    tracing, so this works inside compiled steps on every backend.
    """
    layers = [
        layer
        for model in models
        for layer in model._flatten_layers(include_self=True)
        if isinstance(layer, keras.layers.BatchNormalization) and not layer.trainable
    ]
    for layer in layers:
        layer._trainable = True
    try:
        yield
    finally:
        for layer in layers:
            layer._trainable = False


def count_fit_steps(x, batch_size, epochs, steps_per_epoch, initial_epoch=0):
    """Training steps a `fit` call will make, or None when it cannot tell."""
    epochs = max(int(epochs) - int(initial_epoch), 0)
    if steps_per_epoch:
        return int(steps_per_epoch) * epochs
    if isinstance(x, (tuple, list)) and x and isinstance(x[0], np.ndarray):
        x = x[0]
    if isinstance(x, np.ndarray):
        return math.ceil(len(x) / (batch_size or 32)) * epochs
    try:
        cardinality = int(x.cardinality())  # tf.data
    except (AttributeError, TypeError, ValueError):
        cardinality = -1
    if cardinality > 0:
        return cardinality * epochs
    try:
        return len(x) * epochs  # keras.utils.PyDataset
    except TypeError:
        return None


def weight_pairs(teachers, students):
    """(teacher variable, student variable) pairs of every float weight, network by network.

    Float weights include BatchNorm moving statistics: a teacher normalizes
    with batch statistics in training, but is used in inference mode later.
    """
    pairs = []
    for teacher, student in zip(teachers, students):
        t_vars = [v for v in teacher.weights if "float" in str(v.dtype)]
        s_vars = [v for v in student.weights if "float" in str(v.dtype)]
        if [tuple(v.shape) for v in t_vars] != [tuple(v.shape) for v in s_vars]:
            raise ValueError(
                f"the teacher copy of {student.name!r} does not have the student's weights; "
                "the network must be rebuildable from its config (get_config / from_config)."
            )
        pairs.extend(zip(t_vars, s_vars))
    return pairs


class EMATeacher(keras.layers.Layer):
    """A momentum (exponential moving average) copy of student networks.

    `EMATeacher([encoder, projector])` holds a copy of each student built from
    its config, with weights of its own (never a view of the student's
    arrays: JAX's `fit` donates every variable's buffer). Called on images it
    runs its copies in sequence; in training their BatchNorm layers use batch
    statistics, as the official BYOL and MoCo code runs its target network.
    `update()` moves every float weight (BatchNorm moving statistics
    included) towards the student's: t <- m t + (1 - m) s, with the momentum m
    on a half cosine from `momentum_start` at step 0 to `momentum_end` at
    `schedule_steps` (BYOL, Eq. 2 and Sec. 3.2; MoCo v3's `--moco-m-cos`).

    The teacher starts as the student: `build` copies the weights, and since
    `fit` may build the model in a stateless symbolic pass that drops such
    assignments, `start_as_students()` (called by the method in its training
    step) copies them again on the step where `step == 0`.

    The method owning it rebuilds it in its own `__init__`; it is not
    serialized on its own (so not registered), only its variables are saved
    with the method.

    Args:
        students: list of Keras layers or models, applied in sequence.
        momentum_start: float in [0, 1]. Momentum at step 0.
        momentum_end: float in [0, 1]. Momentum at the end of the schedule.
        schedule_steps: int or None. Length of the cosine schedule; 0 or None
            keeps the momentum at `momentum_start` until set
            (`teacher.schedule_steps.assign(n)`).

    Example:
    ```python
    teacher = kerassl.teacher.EMATeacher([encoder, projector], 0.996, 1.0, 1000)
    teacher.build((None, 32, 32, 3))
    targets = teacher(views, training=True)
    momentum = teacher.update()  # inside the training step
    ```

    Reference: Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020
    (https://arxiv.org/abs/2006.07733); He et al., "Momentum Contrast for
    Unsupervised Visual Representation Learning", CVPR 2020.
    """

    def __init__(self, students, momentum_start=0.996, momentum_end=1.0, schedule_steps=None, **kwargs):
        kwargs.setdefault("name", "ema_teacher")
        super().__init__(**kwargs)
        students = list(students)
        if not students or not all(isinstance(s, keras.layers.Layer) for s in students):
            raise TypeError("students must be a non-empty list of Keras layers or models.")
        for name, value in (("momentum_start", momentum_start), ("momentum_end", momentum_end)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]; got {value}.")
        if schedule_steps is not None and int(schedule_steps) < 0:
            raise ValueError(f"schedule_steps must be a non-negative int or None; got {schedule_steps}.")
        # The students belong to the method: kept out of this layer's tracking
        # so their weights are saved once, under the method.
        object.__setattr__(self, "_students", tuple(students))
        self.momentum_start = float(momentum_start)
        self.momentum_end = float(momentum_end)
        self.networks = [clone_architecture(s) for s in students]
        self.trainable = False
        self.step = self.add_weight(shape=(), initializer="zeros", trainable=False, name="step")
        self.schedule_steps = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(float(schedule_steps or 0)),
            trainable=False,
            name="schedule_steps",
        )

    @property
    def students(self):
        return self._students

    def build(self, input_shape):
        shape = tuple(input_shape)
        for network, student in zip(self.networks, self._students):
            if not student.built:
                student.build(shape)
            if not network.built:
                network.build(shape)
            shape = tuple(student.compute_output_shape(shape))
        self.built = True
        for teacher, student in self.pairs():
            teacher.assign(ops.copy(student.value))

    def pairs(self):
        """(teacher variable, student variable) pairs, every float weight."""
        return weight_pairs(self.networks, self._students)

    def start_as_students(self):
        """Sets every teacher weight to the student's on the step where `step == 0`."""
        first = ops.equal(ops.convert_to_tensor(self.step), 0.0)
        for teacher, student in self.pairs():
            current = ops.convert_to_tensor(teacher)
            teacher.assign(ops.where(first, ops.cast(ops.convert_to_tensor(student), teacher.dtype), current))

    def momentum(self, step=None):
        """The momentum at `step` (default: the current step)."""
        step = ops.convert_to_tensor(self.step) if step is None else step
        return cosine_schedule(step, self.schedule_steps, self.momentum_start, self.momentum_end)

    def update(self):
        """One EMA step at the current momentum; advances `step`. Returns the momentum used."""
        momentum = self.momentum()
        for teacher, student in self.pairs():
            value = ops.stop_gradient(ops.cast(student, teacher.dtype))
            teacher.assign(momentum * teacher + (1.0 - momentum) * value)
        self.step.assign_add(1.0)
        return momentum

    def call(self, inputs, training=False):
        x = inputs
        with batch_statistics(*self.networks) if training else contextlib.nullcontext():
            for network in self.networks:
                x = network(x, training=training)
        return ops.stop_gradient(x)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for student in self._students:
            shape = tuple(student.compute_output_shape(shape))
        return shape

    def get_config(self):
        config = super().get_config()
        config.update(momentum_start=self.momentum_start, momentum_end=self.momentum_end)
        return config


@register
class UnitNormal(keras.initializers.RandomNormal):
    """Normal draws with each row (last axis) scaled to unit L2 norm.

    The starting content of MoCo's queue: "randn" rows, normalized.

    Example:
    ```python
    bank = kerassl.teacher.UnitNormal(seed=0)((4096, 128))
    ```
    """

    def __init__(self, seed=None):
        super().__init__(mean=0.0, stddev=1.0, seed=seed)

    def __call__(self, shape, dtype=None):
        return l2_normalize(super().__call__(shape, dtype=dtype))

    def get_config(self):
        return {"seed": self.seed}


@register
class MemoryBank(keras.layers.Layer):
    """A first-in first-out queue of embeddings held in the model's state.

    `bank.update(batch)` returns the bank's content *before* the update and
    writes the batch over the oldest rows, wrapping around the end so no row
    of the batch is dropped (rows `pointer, pointer + 1, ...` modulo `size`;
    a batch larger than the bank keeps its last `size` rows). It runs inside
    the compiled step; `pointer` and `filled` (rows written so far, at most
    `size`) are variables saved with the method. Nothing passes a gradient
    into the bank.

    MoCo v2 draws its negatives from it, NNCLR its nearest neighbours, SwAV
    its extra samples for the Sinkhorn assignment.

    Args:
        size: int > 0. Number of rows (MoCo's K).
        dim: int > 0. Embedding size.
        initializer: "unit_normal" (random unit rows, as MoCo and lightly
            start their queues), "zeros" (SwAV's queue, used once full), or a
            Keras initializer.
        seed: int or None. Seed of the "unit_normal" start.

    Example:
    ```python
    bank = kerassl.teacher.MemoryBank(4096, 128)
    negatives = bank.update(keys)  # inside compute_loss, training only
    ```

    Reference: Wu et al., "Unsupervised Feature Learning via Non-Parametric
    Instance Discrimination", CVPR 2018; He et al., MoCo, CVPR 2020
    (https://arxiv.org/abs/1911.05722).
    """

    def __init__(self, size, dim, initializer="unit_normal", seed=None, **kwargs):
        kwargs.setdefault("name", "memory_bank")
        super().__init__(**kwargs)
        if int(size) < 1 or int(dim) < 1:
            raise ValueError(f"size and dim of a memory bank must be positive ints; got {size} and {dim}.")
        self.size = int(size)
        self.dim = int(dim)
        self.initializer = initializer
        self.seed = seed
        if initializer == "unit_normal":
            init = UnitNormal(seed=seed)
        else:
            init = keras.initializers.get(initializer)
        self.trainable = False
        self.bank = self.add_weight(shape=(self.size, self.dim), initializer=init, trainable=False, name="bank")
        self.pointer = self.add_weight(shape=(), initializer="zeros", dtype="int32", trainable=False, name="pointer")
        self.filled = self.add_weight(shape=(), initializer="zeros", dtype="int32", trainable=False, name="filled")
        self.built = True

    def content(self):
        return ops.stop_gradient(ops.convert_to_tensor(self.bank))

    def is_full(self):
        """A boolean scalar tensor: have `size` rows been written?"""
        return ops.greater_equal(ops.convert_to_tensor(self.filled), self.size)

    def update(self, batch):
        """Returns the content before the update, then enqueues `batch` (B, dim)."""
        if len(batch.shape) != 2 or batch.shape[-1] != self.dim:
            raise ValueError(
                f"a memory bank of dim {self.dim} takes (batch, {self.dim}) embeddings; got shape {tuple(batch.shape)}."
            )
        before = ops.copy(self.content())
        batch = ops.stop_gradient(ops.cast(batch, self.bank.dtype))[-self.size :]
        count = ops.shape(batch)[0]
        pointer = ops.convert_to_tensor(self.pointer)
        index = (pointer + ops.arange(count, dtype="int32")) % self.size
        self.bank.assign(ops.scatter_update(ops.convert_to_tensor(self.bank), index[:, None], batch))
        self.pointer.assign((pointer + count) % self.size)
        self.filled.assign(ops.minimum(ops.convert_to_tensor(self.filled) + count, self.size))
        return before

    def call(self, inputs):
        """The bank's content (no update); `inputs` is ignored."""
        return self.content()

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size, dim=self.dim, initializer=self.initializer, seed=self.seed)
        return config
