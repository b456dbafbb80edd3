"""The EMA teacher and the memory bank: copies not views, schedules, queues, saved state."""

import math

import keras
import numpy as np
import pytest
from keras import ops

import kerassl
from kerassl.teacher import EMATeacher, MemoryBank
from tests.method_harness import tiny_data


def numpy_of(x):
    return keras.ops.convert_to_numpy(x)


def rows(start, count, dim=2):
    return (np.arange(start, start + count, dtype="float32")[:, None] + np.zeros((1, dim), "float32")) + 1.0


# -- memory bank ------------------------------------------------------------------


def test_bank_returns_its_content_before_the_update():
    # Regression of a lightly bug: the queue must give the negatives of earlier batches.
    bank = MemoryBank(4, 2, initializer="zeros")
    before = numpy_of(bank.update(rows(0, 2)))
    np.testing.assert_array_equal(before, np.zeros((4, 2)))
    before = numpy_of(bank.update(rows(2, 2)))
    np.testing.assert_array_equal(before, np.concatenate([rows(0, 2), np.zeros((2, 2))]))
    np.testing.assert_array_equal(numpy_of(bank.content()), rows(0, 4))


def test_bank_wraps_around_without_dropping_rows():
    # Regression of a lightly bug: a batch crossing the end lost the rows past it.
    bank = MemoryBank(5, 2, initializer="zeros")
    bank.update(rows(0, 3))
    assert not bool(numpy_of(bank.is_full()))
    bank.update(rows(3, 3))  # rows 3, 4 at the end, row 5 wraps to the start
    expected = np.stack([rows(5, 1)[0], *rows(1, 4)])
    np.testing.assert_array_equal(numpy_of(bank.content()), expected)
    assert int(numpy_of(bank.pointer)) == 1 and int(numpy_of(bank.filled)) == 5
    assert bool(numpy_of(bank.is_full()))
    bank.update(rows(10, 7))  # larger than the bank: its last 5 rows, in order from the pointer
    content = numpy_of(bank.content())
    np.testing.assert_array_equal(np.roll(content, -1, axis=0), rows(12, 5))


def test_bank_starts_as_unit_rows_and_checks_shapes():
    bank = MemoryBank(64, 8, seed=0)
    np.testing.assert_allclose(np.linalg.norm(numpy_of(bank.content()), axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="takes \\(batch, 8\\)"):
        bank.update(np.ones((2, 3), "float32"))
    with pytest.raises(ValueError, match="positive"):
        MemoryBank(0, 8)


class BankModel(keras.Model):
    """A Dense layer and a bank read and written in the compiled training step."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(1)
        self.bank = MemoryBank(5, 2, initializer="zeros")
        self.before_tracker = keras.metrics.Mean(name="sum_before")

    def call(self, x, training=False):
        return self.dense(x)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        before = self.bank.update(x) if training else self.bank.content()
        self.before_tracker.update_state(ops.sum(before))
        return ops.mean(ops.square(y_pred))


def test_bank_updates_inside_the_compiled_step():
    model = BankModel()
    model.compile(optimizer="sgd")
    history = model.fit(rows(0, 6), batch_size=3, epochs=1, shuffle=False, verbose=0)
    # Step 1 saw an empty bank, step 2 the first batch.
    assert history.history["sum_before"][0] == pytest.approx((0 + rows(0, 3).sum()) / 2)
    np.testing.assert_array_equal(numpy_of(model.bank.content()), np.stack([rows(5, 1)[0], *rows(1, 4)]))
    content = numpy_of(model.bank.content())
    model.evaluate(rows(20, 3), batch_size=3, verbose=0)  # evaluate changes nothing
    np.testing.assert_array_equal(numpy_of(model.bank.content()), content)


# -- EMA teacher ------------------------------------------------------------------


def small_student():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization()])


def test_teacher_is_a_copy_not_a_view():
    student = small_student()
    teacher = EMATeacher([student], 0.9, 1.0, 10)
    teacher.build((None, 3))
    pairs = teacher.pairs()
    assert len(pairs) == 4 + 2  # kernel, bias, gamma, beta + moving mean and variance
    for t, s in pairs:
        np.testing.assert_array_equal(numpy_of(t), numpy_of(s))
        assert t is not s
    kernel = student.layers[0].kernel
    kernel.assign(kernel + 1.0)
    np.testing.assert_array_equal(numpy_of(pairs[0][0]) + 1.0, numpy_of(kernel))
    assert not teacher.trainable_weights


def test_teacher_update_follows_the_cosine_momentum():
    student = small_student()
    teacher = EMATeacher([student], 0.9, 1.0, 10)
    teacher.build((None, 3))
    rng = np.random.default_rng(0)
    for t, _ in teacher.pairs():
        t.assign(t + rng.normal(size=t.shape).astype("float32"))
    teacher.step.assign(3.0)
    before = [(numpy_of(t), numpy_of(s)) for t, s in teacher.pairs()]
    momentum = float(numpy_of(teacher.update()))
    expected = 1.0 - 0.1 * (math.cos(math.pi * 3 / 10) + 1) / 2
    assert momentum == pytest.approx(expected, rel=1e-6)
    for (t, _), (t0, s0) in zip(teacher.pairs(), before):
        np.testing.assert_allclose(numpy_of(t), expected * t0 + (1 - expected) * s0, rtol=1e-5, atol=1e-6)
    assert float(numpy_of(teacher.step)) == 4.0
    assert float(numpy_of(teacher.momentum(0.0))) == pytest.approx(0.9)
    assert float(numpy_of(teacher.momentum(50.0))) == pytest.approx(1.0)


def test_teacher_arguments_are_checked():
    with pytest.raises(ValueError, match="momentum_start"):
        EMATeacher([small_student()], 1.5)
    with pytest.raises(TypeError, match="students"):
        EMATeacher([])


def make_byol(encoder, **kwargs):
    return kerassl.BYOL(encoder, projection_hidden_dim=16, projection_dim=8, prediction_hidden_dim=16, seed=0, **kwargs)


def test_byol_teacher_gets_no_gradient(make_encoder):
    # Regression of a lightly bug: the momentum branch must be outside the gradient.
    model = make_byol(make_encoder())
    images, _ = tiny_data((16, 16, 3), count=8)
    model.build(images.shape)
    trainable = {id(v) for v in model.trainable_variables}
    teacher = model.teacher.weights
    assert teacher and not any(id(v) in trainable for v in teacher)
    assert all(id(v) in trainable for v in model.encoder.trainable_weights + model.prediction_head.trainable_weights)
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape(persistent=True) as tape:
            outputs = model(images, training=True)
            loss = model.compute_loss(images, y_pred=outputs, training=False)
        assert all(g is None for g in tape.gradient(loss, [v.value for v in teacher]))
        assert all(g is not None for g in tape.gradient(loss, [v.value for v in model.prediction_head.trainable_weights]))


def test_teacher_starts_as_the_student_when_fit_builds_the_model(make_encoder):
    # Regression carried over from DINO: fit builds the model in a stateless pass
    # that drops the copy made in build. With a zero learning rate the student
    # stays put and every EMA step keeps teacher == student.
    model = make_byol(make_encoder())
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    images, _ = tiny_data((16, 16, 3), count=8)
    model.fit(images, batch_size=8, epochs=1, verbose=0)
    # BatchNorm moving statistics also move with each network's own batches.
    student_weights = {id(v) for v in model.encoder.trainable_weights + model.projection_head.trainable_weights}
    pairs = [(t, s) for t, s in model.teacher.pairs() if id(s) in student_weights]
    assert len(pairs) == len(student_weights)
    for teacher, student in pairs:
        np.testing.assert_allclose(numpy_of(teacher), numpy_of(student), atol=1e-6, err_msg=teacher.path)


def test_built_before_compile_trains_in_several_fits_and_sets_the_schedule(make_encoder):
    # Regression carried over from DINO: on JAX, fit donates variable buffers; a
    # teacher sharing the student's arrays failed ("donate the same buffer twice").
    images, _ = tiny_data((16, 16, 3), count=16)
    model = make_byol(make_encoder())
    model.build(images.shape)
    model.compile(optimizer="adamw")
    model.fit(images, batch_size=8, epochs=1, verbose=0)
    assert float(numpy_of(model.teacher.schedule_steps)) == 2.0
    model.fit(images, batch_size=8, epochs=2, verbose=0)
    assert float(numpy_of(model.teacher.schedule_steps)) == 6.0
    assert float(numpy_of(model.teacher.step)) == 6.0


def test_teacher_and_queue_are_saved_and_restored(make_encoder, tmp_path):
    images, _ = tiny_data((16, 16, 3), count=16)
    for model in (
        make_byol(make_encoder()),
        kerassl.MoCo(make_encoder(), version="v2", projection_hidden_dim=16, projection_dim=8, queue_size=12, seed=0),
    ):
        model.compile(optimizer="adamw")
        model.fit(images, batch_size=8, epochs=1, verbose=0)
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        for (t, _), (u, _) in zip(model.teacher.pairs(), loaded.teacher.pairs()):
            np.testing.assert_array_equal(numpy_of(t), numpy_of(u))
        assert float(numpy_of(loaded.teacher.step)) == 2.0
        if getattr(model, "queue", None) is not None:
            np.testing.assert_array_equal(numpy_of(model.queue.bank), numpy_of(loaded.queue.bank))
            assert int(numpy_of(loaded.queue.pointer)) == 16 % 12
