"""`evaluate` and validation change no variable, and two identical calls agree exactly.

Keras' test step calls `self(x, training=False)`; before kerassl 0.2 every
method's `compute_loss` then re-ran `self(x, training=True)`, which moved the
encoder's BatchNorm statistics (and DINO's teacher) on every validation pass.
"""

import keras
import numpy as np
import pytest

from tests.method_harness import (
    assert_same_state,
    check_evaluate_changes_nothing,
    tiny_data,
    variable_state as state,
)
from tests.test_dino import make_dino
from tests.test_simclr import make_simclr

# Every method's harness test (tests/method_harness.py) checks `evaluate` on the model it
# has just trained: SimCLR, CLIP, MAE, Jigsaw, RotNet, the autoencoder, the eight staples
# and DINO on a ViT (not the GAN, which has no test step). Here are the cases no harness
# caller builds: the online probe in the test step, and DINO on a convnet, whose heads
# hold BatchNorm layers.
METHODS = {
    "simclr_with_probe": lambda encoder: make_simclr(encoder, num_classes=3),
    "dino_convnet": make_dino,
}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_evaluate_twice_changes_nothing_and_agrees(name, make_encoder):
    images, labels = tiny_data((16, 16, 3))
    model = METHODS[name](make_encoder())
    model.compile(optimizer="adam")
    # Train first so BatchNorm statistics, teachers and schedules are not at their start.
    model.fit(images, labels, batch_size=8, epochs=1, verbose=0)
    logs = check_evaluate_changes_nothing(model, images, labels)
    if name == "simclr_with_probe":
        assert "probe_accuracy" in logs


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


def test_evaluate_return_list_keeps_keras_order(make_encoder):
    images, _ = tiny_data((16, 16, 3))
    model = make_simclr(make_encoder())
    model.compile(optimizer="adam")
    logs = model.evaluate(images, batch_size=8, verbose=0, return_dict=True)
    values = model.evaluate(images, batch_size=8, verbose=0)
    assert values == keras.Model.evaluate(model, images, batch_size=8, verbose=0)
    assert sorted(values) == sorted(logs.values())
