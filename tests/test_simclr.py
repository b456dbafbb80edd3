"""SimCLR end to end: the shared harness, bad input, XLA, and that it learns."""

import keras
import numpy as np
import pytest

import kerassl
from tests.method_harness import run_method_test, tiny_data


def make_simclr(encoder, **kwargs):
    kwargs.setdefault("projection_hidden_dim", 32)
    kwargs.setdefault("projection_dim", 16)
    return kerassl.SimCLR(encoder, seed=0, **kwargs)


def test_method_contract(make_encoder, tmp_path):
    run_method_test(
        make_simclr,
        make_encoder,
        tmp_path,
        expected_metrics=("contrastive_accuracy", "alignment", "uniformity"),
        xla=True,
    )


def test_grayscale_images(make_encoder, tmp_path):
    run_method_test(
        make_simclr, make_encoder, tmp_path, input_shape=(8, 8, 1), data_variants=False
    )


def test_online_probe_learns_only_from_labels(make_encoder):
    images, labels = tiny_data((16, 16, 3))
    model = make_simclr(make_encoder((16, 16, 3)), num_classes=3)
    model.compile(optimizer="adam")
    history = model.fit(images, labels, batch_size=8, epochs=1, verbose=0)
    assert "probe_accuracy" in history.history and "probe_loss" in history.history
    assert history.history["probe_loss"][0] > 0
    # Without labels the probe is not evaluated (its metrics stay empty) and no error is raised.
    history = model.fit(images, batch_size=8, epochs=1, verbose=0)
    assert history.history["probe_loss"] == [0.0]
    assert np.isfinite(history.history["loss"][0])


def test_probe_gradient_does_not_reach_encoder(make_encoder):
    """With a zero learning rate for the SSL part impossible, check stop-gradient directly."""
    images, labels = tiny_data((16, 16, 3), count=8)
    model = make_simclr(make_encoder((16, 16, 3)), num_classes=3)
    model.build(images.shape)
    outputs = model(images, training=True)
    loss = model.online_probe_loss(labels, outputs["features"])
    assert np.isfinite(float(keras.ops.convert_to_numpy(loss)))
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            outputs = model(images, training=True)
            probe_loss = model.online_probe_loss(labels, outputs["features"])
        grads = tape.gradient(probe_loss, model.encoder.trainable_variables)
        assert all(g is None for g in grads)


def test_default_config_values(make_encoder):
    model = kerassl.SimCLR(make_encoder())
    assert model.temperature == 0.5
    assert model.projection_head.units == [2048, 128]


@pytest.mark.parametrize(
    "images, error, match",
    [
        (np.zeros((8, 16, 16), "uint8"), ValueError, "rank-4"),
        (np.zeros((8, 16, 16, 2), "uint8"), ValueError, "1 \\(grayscale\\) or 3"),
        (np.zeros((8, 16, 16, 3), "int64"), TypeError, "dtype int64"),
        (np.full((8, 16, 16, 3), 255.0, "float32"), ValueError, "in \\[0, 1\\]"),
    ],
)
def test_bad_images_get_clear_errors(make_encoder, images, error, match):
    model = make_simclr(make_encoder())
    model.compile(optimizer="adam")
    with pytest.raises(error, match=match):
        model.fit(images, batch_size=4, epochs=1, verbose=0)


def test_batch_of_one_is_refused(make_encoder):
    model = make_simclr(make_encoder())
    model.compile(optimizer="adam")
    images, _ = tiny_data((16, 16, 3), count=4)
    with pytest.raises(ValueError, match="at least 2"):
        model.fit(images, batch_size=1, epochs=1, verbose=0)


def test_encoder_with_feature_map_output_is_refused():
    inputs = keras.Input((16, 16, 3))
    feature_map = keras.layers.Conv2D(4, 3)(inputs)
    with pytest.raises(ValueError, match="kerassl.backbones.wrap"):
        kerassl.SimCLR(keras.Model(inputs, feature_map))


def test_non_finite_loss_is_a_clear_error(make_encoder):
    model = make_simclr(make_encoder())
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e30))
    images, _ = tiny_data((16, 16, 3), count=32)
    with pytest.raises(FloatingPointError, match="learning rate"):
        model.fit(images, batch_size=8, epochs=3, verbose=0)


def test_temperature_checked(make_encoder):
    with pytest.raises(ValueError, match="temperature must be positive"):
        kerassl.SimCLR(make_encoder(), temperature=0)



def test_seeded_training_is_reproducible(make_encoder):
    def train():
        keras.utils.set_random_seed(7)
        model = make_simclr(make_encoder())
        model.compile(optimizer="adam")
        images, _ = tiny_data((16, 16, 3))
        model.fit(images, batch_size=8, epochs=1, verbose=0, shuffle=False)
        return model.predict(images, verbose=0)

    np.testing.assert_allclose(train(), train(), rtol=1e-5, atol=1e-5)
