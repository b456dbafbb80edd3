"""kerassl.evaluate: kNN against a NumPy reference, feature extraction, probe, monitor."""

import keras
import numpy as np
import pytest

from kerassl import evaluate


def brute_force_knn(bank, bank_labels, queries, k, temperature, num_classes):
    """The InstDisc weighted vote written out query by query in float64."""
    bank = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    k = min(k, len(bank))
    predictions = []
    for query in queries:
        similarity = bank @ query
        neighbours = np.argsort(-similarity)[:k]
        scores = np.zeros(num_classes)
        for index in neighbours:
            scores[bank_labels[index]] += np.exp(similarity[index] / temperature)
        predictions.append(np.argmax(scores))
    return np.array(predictions)


def split_digits(digits, n_train=1200):
    images, labels = digits
    return images[:n_train], labels[:n_train], images[n_train:], labels[n_train:]


@pytest.mark.parametrize("k", [1, 7, 40, 500])  # 500 > bank size 97: clipped
@pytest.mark.parametrize("temperature", [0.05, 0.1, 1.0])
def test_knn_predict_matches_brute_force(k, temperature):
    rng = np.random.default_rng(k)
    bank = rng.normal(size=(97, 12)).astype("float32")
    bank_labels = rng.integers(0, 5, size=97)
    queries = rng.normal(size=(61, 12)).astype("float32")
    expected = brute_force_knn(bank, bank_labels, queries, k, temperature, 5)
    # 16 does not divide 61: the last batch is short.
    got = evaluate.knn_predict(
        bank, bank_labels, queries, k=k, temperature=temperature, num_classes=5,
        batch_size=16,
    )
    np.testing.assert_array_equal(got, expected)
    query_labels = rng.integers(0, 5, size=61)
    accuracy = evaluate.knn_accuracy_from_features(
        bank, bank_labels, queries, query_labels, k=k, temperature=temperature,
        batch_size=16,
    )
    assert accuracy == pytest.approx(np.mean(expected == query_labels))


def test_knn_accuracy_of_encoder_equals_accuracy_of_its_features(digits, make_encoder):
    x_train, y_train, x_test, y_test = split_digits(digits)
    encoder = make_encoder(input_shape=(8, 8, 1))
    accuracy = evaluate.knn_accuracy(
        encoder, x_train, y_train, x_test, y_test, k=20, batch_size=100, verbose=False
    )
    train_features = evaluate.extract_features(encoder, x_train, verbose=0)
    test_features = evaluate.extract_features(encoder, x_test, verbose=0)
    expected = brute_force_knn(train_features, y_train, test_features, 20, 0.1, 10)
    assert accuracy == pytest.approx(np.mean(expected == y_test), abs=2 / len(y_test))
    # Random conv features of digits are already far above chance (0.1):
    # measured 0.63 (TensorFlow) and 0.66 (JAX) with k=20.
    assert accuracy > 0.4
    same = evaluate.knn_accuracy(
        None, train_features, y_train, test_features, y_test, k=20, verbose=False
    )
    assert same == pytest.approx(accuracy, abs=2 / len(y_test))


def test_extract_features_normalizes_uint8_and_reads_datasets(digits, make_encoder):
    import tensorflow as tf

    images, labels = digits[0][:70], digits[1][:70]
    encoder = make_encoder(input_shape=(8, 8, 1), feature_dim=6)
    features = evaluate.extract_features(encoder, images, batch_size=32, verbose=0)
    assert features.shape == (70, 6) and features.dtype == np.float32
    expected = keras.ops.convert_to_numpy(encoder(images / 255.0, training=False))
    np.testing.assert_allclose(features, expected, atol=1e-5)
    from_float = evaluate.extract_features(encoder, images / 255.0, verbose=0)
    np.testing.assert_allclose(from_float, features, atol=1e-5)

    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(32)
    from_dataset = evaluate.extract_features(encoder, dataset, verbose=0)
    np.testing.assert_allclose(from_dataset, features, atol=1e-5)
    # Labels can come from the dataset itself.
    accuracy = evaluate.knn_accuracy(encoder, dataset, None, dataset, None, k=5, verbose=False)
    reference = evaluate.knn_accuracy(encoder, images, labels, images, labels, k=5, verbose=False)
    assert accuracy == pytest.approx(reference)


def test_linear_probe_learns_digits_and_is_deterministic(digits, make_encoder):
    x_train, y_train, x_test, y_test = split_digits(digits)
    encoder = make_encoder(input_shape=(8, 8, 1))
    features_train = evaluate.extract_features(encoder, x_train, verbose=0)
    features_test = evaluate.extract_features(encoder, x_test, verbose=0)
    first = evaluate.linear_probe(
        None, features_train, y_train, features_test, y_test, epochs=40, seed=1
    )
    second = evaluate.linear_probe(
        None, features_train, y_train, features_test, y_test, epochs=40, seed=1
    )
    assert first == second
    # Measured 0.66 (TensorFlow) and 0.67 (JAX) for this random-init encoder;
    # chance is 0.1.
    assert first > 0.45
    from_images = evaluate.linear_probe(
        encoder, x_train, y_train, x_test, y_test, epochs=40, seed=1
    )
    assert from_images == pytest.approx(first, abs=0.02)


class WithEncoder(keras.Model):
    """A classifier exposing `.encoder`, as kerassl's methods do."""

    def __init__(self, encoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.dense = keras.layers.Dense(10)

    def call(self, images):
        return self.dense(self.encoder(images))


def test_knn_monitor_writes_history(digits, make_encoder):
    x_train, y_train, x_test, y_test = split_digits(digits, 300)
    x_val, y_val = x_test[:200], y_test[:200]
    encoder = make_encoder(input_shape=(8, 8, 1))
    model = WithEncoder(encoder)
    model.compile(
        "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    monitor = evaluate.KNNMonitor(x_train, y_train, x_val, y_val, every=2, k=20)
    floats = (x_train / 255.0).astype("float32")
    history = model.fit(floats, y_train, epochs=4, batch_size=100, verbose=0,
                        callbacks=[monitor])
    values = history.history["val_knn_accuracy"]
    assert len(values) == 2 and sorted(monitor.accuracies) == [1, 3]
    assert values == [monitor.accuracies[1], monitor.accuracies[3]]
    # The last value is the accuracy of the trained weights (on JAX this
    # needs the state synced back before on_epoch_end).
    final = evaluate.knn_accuracy(encoder, x_train, y_train, x_val, y_val, k=20,
                                  verbose=False)
    assert values[-1] == pytest.approx(final)

    plain = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    plain.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="no `encoder` attribute"):
        plain.fit(floats, y_train, epochs=1, verbose=0,
                  callbacks=[evaluate.KNNMonitor(x_train, y_train, x_val, y_val)])


def test_bad_inputs_raise_clear_errors(make_encoder):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(10, 4)).astype("float32")
    labels = np.arange(10) % 3
    knn = evaluate.knn_accuracy_from_features
    with pytest.raises(ValueError, match="one label per image"):
        knn(features, labels[:9], features, labels)
    with pytest.raises(ValueError, match="1-D array"):
        knn(features, np.eye(10, dtype="int64"), features, labels)
    with pytest.raises(ValueError, match="integer class ids"):
        knn(features, labels.astype("float32"), features, labels)
    with pytest.raises(ValueError, match="empty"):
        knn(features[:0], labels[:0], features, labels)
    with pytest.raises(ValueError, match="2-D"):
        knn(features[:, :, None], labels, features, labels)
    with pytest.raises(ValueError, match="same encoder"):
        knn(features, labels, features[:, :3], labels)
    with pytest.raises(ValueError, match="k must be"):
        knn(features, labels, features, labels, k=0)
    with pytest.raises(ValueError, match="temperature"):
        knn(features, labels, features, labels, temperature=0.0)
    with pytest.raises(ValueError, match="num_classes"):
        knn(features, labels, features, labels, num_classes=2)

    encoder = make_encoder(input_shape=(8, 8, 1))
    images = rng.integers(0, 256, size=(10, 8, 8, 1)).astype("uint8")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        evaluate.extract_features(encoder, images.astype("float32"))
    with pytest.raises(ValueError, match="one label per image"):
        evaluate.knn_accuracy(encoder, images, labels[:5], images, labels, verbose=False)
    with pytest.raises(ValueError, match="empty"):
        evaluate.extract_features(encoder, images[:0])
    with pytest.raises(TypeError, match="knn_accuracy_from_features"):
        evaluate.knn_accuracy("not a model", images, labels, images, labels)
    feature_map = keras.Model(encoder.input, encoder.layers[-2].output)
    with pytest.raises(ValueError, match="kerassl.backbones.wrap"):
        evaluate.extract_features(feature_map, images)
    with pytest.raises(ValueError, match="one label per image"):
        evaluate.KNNMonitor(images, labels[:3], images, labels)
