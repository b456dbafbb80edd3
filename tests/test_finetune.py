"""kerassl.finetune: frozen vs full training, the scaled-rate optimizer, saving."""

import importlib

import keras
import numpy as np
import pytest

# `kerassl.finetune` is the re-exported function; the module is reached by name.
ft = importlib.import_module("kerassl.finetune")


def calibrated_encoder(make_encoder, images):
    """A random tiny encoder whose BatchNorm statistics match the data.

    A pretrained encoder has them; a random one starts at mean 0, variance 1,
    and in "full" mode its moving averages would lag far behind the batch
    statistics during a short run, making inference-mode accuracy meaningless.
    """
    encoder = make_encoder(input_shape=images.shape[1:])
    norms = [layer for layer in encoder.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0
    encoder(images / 255.0, training=True)
    for layer in norms:
        layer.momentum = 0.99
    return encoder


def split(digits, n_train=1200):
    images, labels = digits
    return images[:n_train], labels[:n_train], images[n_train:], labels[n_train:]


def accuracy(classifier, images, labels):
    return float(np.mean(classifier.predict(images, verbose=0).argmax(-1) == labels))


def test_linear_mode_freezes_the_encoder(digits, make_encoder, tmp_path):
    x_train, y_train, x_test, y_test = split(digits)
    encoder = calibrated_encoder(make_encoder, x_train)
    before = [w.copy() for w in encoder.get_weights()]  # includes BN moving stats
    clf = ft.finetune(encoder, (x_train, y_train), num_classes=10, mode="linear",
                      epochs=8, batch_size=64, validation_data=(x_test, y_test),
                      verbose=0, seed=0)
    for old, new in zip(before, encoder.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert not encoder.trainable
    history = clf.history.history
    assert len(history["accuracy"]) == 8 and len(history["val_accuracy"]) == 8
    assert history["loss"][-1] < history["loss"][0]
    # Measured 0.52 (TensorFlow) and 0.62 (JAX); chance is 0.1.
    test_accuracy = accuracy(clf, x_test, y_test)
    assert test_accuracy > 0.35
    assert history["val_accuracy"][-1] == pytest.approx(test_accuracy, abs=0.01)

    probabilities = clf.predict(x_test, verbose=0)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(
        clf.predict(x_test / 255.0, verbose=0), probabilities, atol=1e-5
    )

    path = tmp_path / "classifier.keras"
    clf.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, ft.Classifier) and not loaded.encoder.trainable
    np.testing.assert_allclose(loaded.predict(x_test, verbose=0), probabilities,
                               atol=1e-6)


def test_full_mode_trains_the_encoder_slower_and_saves(digits, make_encoder, tmp_path):
    x_train, y_train, x_test, y_test = split(digits)
    encoder = calibrated_encoder(make_encoder, x_train)
    before = [w.copy() for w in encoder.get_weights()]
    clf = ft.finetune(encoder, (x_train, y_train), num_classes=10, mode="full",
                      head="mlp", epochs=8, batch_size=64, learning_rate=1e-2,
                      verbose=0, seed=0)
    for old, new in zip(before, encoder.get_weights()):
        assert not np.allclose(old, new)
    # Measured 0.80 (TensorFlow) and 0.82 (JAX); chance is 0.1.
    assert accuracy(clf, x_test, y_test) > 0.5
    assert isinstance(clf.optimizer, ft.ScaledAdamW)

    path = tmp_path / "classifier.keras"
    clf.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x_test, verbose=0),
                               clf.predict(x_test, verbose=0), atol=1e-6)
    # The reloaded optimizer again gives exactly the encoder the scaled rate.
    optimizer = loaded.optimizer
    assert isinstance(optimizer, ft.ScaledAdamW)
    assert optimizer.learning_rate_scale == pytest.approx(0.1)
    scaled = [v for v in loaded.trainable_variables if optimizer._is_scaled(v)]
    assert len(scaled) == len(loaded.encoder.trainable_variables) > 0
    assert all(optimizer._is_scaled(v) for v in loaded.encoder.trainable_variables)


def test_tf_data_input_and_uint8_predict(digits, make_encoder):
    import tensorflow as tf

    x_train, y_train, x_test, y_test = split(digits, 600)
    encoder = calibrated_encoder(make_encoder, x_train)
    train = tf.data.Dataset.from_tensor_slices((x_train, y_train)).batch(64)
    validation = tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(256)
    clf = ft.finetune(encoder, train, num_classes=10, epochs=3,
                      validation_data=validation, verbose=0, seed=0)
    assert len(clf.history.history["val_accuracy"]) == 3
    assert clf.predict(x_test[:5], verbose=0).shape == (5, 10)


def test_scaled_adamw_scales_update_and_decay_of_registered_variables():
    gradient = np.array([0.3, -2.0, 0.05], "float32")
    start = np.array([1.0, -1.0, 0.5], "float32")
    for weight_decay in (0.0, 0.1):
        plain = keras.Variable(start, name="plain")
        scaled = keras.Variable(start, name="scaled")
        optimizer = ft.ScaledAdamW(0.01, learning_rate_scale=0.25,
                                   weight_decay=weight_decay)
        optimizer.scale_learning_rate([scaled])
        for _ in range(3):
            optimizer.apply([gradient, gradient], [plain, scaled])

        # The same three steps written out: decoupled decay, then Adam.
        def reference(rate):
            value, m, v = start.astype("float64"), 0.0, 0.0
            for step in range(1, 4):
                if weight_decay:
                    value = value - value * weight_decay * rate
                m = 0.9 * m + 0.1 * gradient
                v = 0.999 * v + 0.001 * gradient**2
                alpha = rate * np.sqrt(1 - 0.999**step) / (1 - 0.9**step)
                value = value - alpha * m / (np.sqrt(v) + 1e-7)
            return value

        np.testing.assert_allclose(keras.ops.convert_to_numpy(plain),
                                   reference(0.01), rtol=1e-5)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(scaled),
                                   reference(0.0025), rtol=1e-5)
    config = ft.ScaledAdamW(0.01, learning_rate_scale=0.25).get_config()
    assert ft.ScaledAdamW.from_config(config).learning_rate_scale == 0.25


def test_bad_inputs_raise_clear_errors(digits, make_encoder):
    images, labels = digits[0][:50], digits[1][:50]
    encoder = make_encoder(input_shape=(8, 8, 1))
    with pytest.raises(ValueError, match="one label per image"):
        ft.finetune(encoder, (images, labels[:40]), num_classes=10)
    with pytest.raises(ValueError, match="num_classes"):
        ft.finetune(encoder, (images, labels), num_classes=1)
    with pytest.raises(ValueError, match="num_classes"):
        ft.finetune(encoder, (images, labels), num_classes=5)  # labels reach 9
    with pytest.raises(ValueError, match="mode must be one of"):
        ft.finetune(encoder, (images, labels), num_classes=10, mode="partial")
    with pytest.raises(ValueError, match="head must be one of"):
        ft.finetune(encoder, (images, labels), num_classes=10, head="deep")
    with pytest.raises(TypeError, match="tuple"):
        ft.finetune(encoder, images, num_classes=10)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ft.finetune(encoder, (images.astype("float32"), labels), num_classes=10)
    feature_map = keras.Model(encoder.input, encoder.layers[-2].output)
    with pytest.raises(ValueError, match="kerassl.backbones.wrap"):
        ft.finetune(feature_map, (images, labels), num_classes=10)
    with pytest.raises(ValueError, match="could not run"):
        ft.finetune(make_encoder(input_shape=(16, 16, 3)), (images, labels),
                    num_classes=10)
    with pytest.raises(ValueError, match="learning_rate_scale"):
        ft.ScaledAdamW(0.1, learning_rate_scale=0.0)


def test_full_mode_encoder_moves_by_the_learning_rate_scale(digits, make_encoder):
    images, labels = digits[0][:100], digits[1][:100]
    initial = make_encoder(input_shape=(8, 8, 1)).get_weights()
    kernel_change = {}
    for scale in (1.0, 0.01):
        encoder = make_encoder(input_shape=(8, 8, 1))
        encoder.set_weights(initial)
        ft.finetune(encoder, (images, labels), num_classes=10, mode="full",
                    epochs=1, batch_size=50, learning_rate=1e-2, weight_decay=0.0,
                    encoder_learning_rate_scale=scale, verbose=0, seed=0)
        kernel = encoder.layers[1].kernel  # the first convolution
        kernel_change[scale] = np.abs(
            keras.ops.convert_to_numpy(kernel) - initial[0]
        ).max()
    # Adam steps are proportional to the learning rate: ratio 0.01 expected.
    assert kernel_change[0.01] < 0.02 * kernel_change[1.0]
    assert kernel_change[0.01] > 0.005 * kernel_change[1.0]
