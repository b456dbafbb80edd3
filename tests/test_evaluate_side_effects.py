"""`evaluate` and validation change no variable, and two identical calls agree exactly.

Keras' test step calls `self(x, training=False)`; before kerassl 0.2 every
method's `compute_loss` then re-ran `self(x, training=True)`, which moved the
encoder's BatchNorm statistics (and DINO's teacher) on every validation pass.
"""

import keras
import numpy as np
import pytest

import kerassl
from tests.method_harness import tiny_data
from tests.test_autoencoder import make_autoencoder
from tests.test_clip import make_clip, tiny_pairs
from tests.test_dino import make_dino, tiny_vit
from tests.test_jigsaw import free_size_encoder, make_jigsaw
from tests.test_mae import make_mae
from tests.test_rotnet import make_rotnet
from tests.test_simclr import make_simclr
from tests.test_staples import METHODS as STAPLES


def state(model):
    """Every variable of the model (weights, BatchNorm statistics, random state), as NumPy."""
    return {
        f"{index}:{variable.path}": np.array(keras.ops.convert_to_numpy(variable))
        for index, variable in enumerate(model.variables)
    }


def assert_same_state(before, after):
    assert before.keys() == after.keys()
    changed = [name for name in before if not np.array_equal(before[name], after[name])]
    assert not changed, f"evaluate changed {changed}"


METHODS = {
    "simclr": (lambda enc: make_simclr(enc(), num_classes=3), (16, 16, 3)),
    "dino_convnet": (lambda enc: make_dino(enc()), (16, 16, 3)),
    "dino_vit": (lambda enc: make_dino(tiny_vit()), (16, 16, 3)),
    "mae": (lambda enc: make_mae(tiny_vit()), (16, 16, 3)),
    "jigsaw": (lambda enc: make_jigsaw(free_size_encoder()), (24, 24, 3)),
    "rotnet": (lambda enc: make_rotnet(enc()), (16, 16, 3)),
    "autoencoder": (lambda enc: make_autoencoder(enc()), (16, 16, 3)),
}
# The staples: a teacher (BYOL, MoCo), a queue (MoCo v2, NNCLR, SwAV), local crops (SwAV).
METHODS.update(
    {name: (lambda enc, make=make: make(enc(), num_classes=3), (16, 16, 3)) for name, (make, _) in STAPLES.items()}
)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_evaluate_twice_changes_nothing_and_agrees(name, make_encoder):
    make, shape = METHODS[name]
    images, labels = tiny_data(shape)
    model = make(lambda s=shape[:2] + (3,): make_encoder(s))
    model.compile(optimizer="adam")
    # Train first so BatchNorm statistics, teachers and schedules are not at their start.
    model.fit(images, labels, batch_size=8, epochs=1, verbose=0)
    before = state(model)
    first = model.evaluate(images, labels, batch_size=8, verbose=0, return_dict=True)
    assert_same_state(before, state(model))
    second = model.evaluate(images, labels, batch_size=8, verbose=0, return_dict=True)
    assert_same_state(before, state(model))
    assert first == second
    assert np.isfinite(first["loss"])
    assert "teacher_momentum" not in first  # a schedule's value means nothing in evaluation


def test_evaluate_before_training_leaves_a_fresh_dino_untouched(make_encoder):
    # A fresh DINO copies the student into the teacher at its first *training* step only.
    images, _ = tiny_data((16, 16, 3))
    model = make_dino(make_encoder())
    model.compile(optimizer="adam")
    before = state(model)
    model.evaluate(images, batch_size=8, verbose=0)
    assert_same_state(before, state(model))


def test_validation_in_fit_changes_no_variable(make_encoder):
    images, _ = tiny_data((16, 16, 3))
    model = make_simclr(make_encoder())
    model.compile(optimizer="adam")
    model.fit(images, batch_size=8, epochs=1, verbose=0)
    start = [np.array(keras.ops.convert_to_numpy(v)) for v in model.variables]
    # Zero learning rate: weights stay; BatchNorm statistics and random state move
    # through the training batches only, never through the validation pass.
    model.optimizer.learning_rate.assign(0.0)
    history = model.fit(
        images, batch_size=8, epochs=1, verbose=0, validation_data=(images[:8],), shuffle=False
    )
    with_validation = state(model)
    for variable, value in zip(model.variables, start):
        variable.assign(value)
    model.fit(images, batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert "val_loss" in history.history
    assert_same_state(with_validation, state(model))


def test_dino_validation_reports_no_teacher_momentum(make_encoder):
    images, _ = tiny_data((16, 16, 3))
    model = make_dino(make_encoder())
    model.compile(optimizer="adam")
    history = model.fit(images, batch_size=8, epochs=1, verbose=0, validation_data=(images,))
    assert "teacher_momentum" in history.history
    assert "val_teacher_momentum" not in history.history
    assert "val_teacher_entropy" in history.history


def test_clip_evaluate_twice_changes_nothing(make_encoder):
    images, captions, _ = tiny_pairs()
    model = make_clip(make_encoder)
    model.compile(optimizer="adam")
    model.fit(images, captions, batch_size=8, epochs=1, verbose=0)
    before = state(model)
    first = model.evaluate(images, captions, batch_size=8, verbose=0, return_dict=True)
    second = model.evaluate(images, captions, batch_size=8, verbose=0, return_dict=True)
    assert_same_state(before, state(model))
    assert first == second


def test_evaluate_return_list_keeps_keras_order(make_encoder):
    images, _ = tiny_data((16, 16, 3))
    model = make_simclr(make_encoder())
    model.compile(optimizer="adam")
    logs = model.evaluate(images, batch_size=8, verbose=0, return_dict=True)
    values = model.evaluate(images, batch_size=8, verbose=0)
    assert values == keras.Model.evaluate(model, images, batch_size=8, verbose=0)
    assert sorted(values) == sorted(logs.values())
