"""One harness that runs any SSL method through fit, predict, save and load.

Every method's test module calls `run_method_test(make_method, ...)`; the
harness checks the contract the whole library relies on:
- `fit` on uint8 numpy, float numpy, (images, labels) tf.data and a generator,
  with finite losses and the method's metrics in the History;
- `evaluate` after training changes no variable (weights, BatchNorm statistics,
  teachers, queues, random state) and two calls give the same logs: Keras's
  test step calls the method with `training=False`, which must not move the
  encoder's statistics or a teacher (tests/test_evaluate_side_effects.py holds
  the cases no harness caller covers);
- `predict`/`call` return encoder features, the same as the encoder on [0, 1]
  floats;
- `get_config`/`from_config` round trip; `.keras` save and load with
  `safe_mode=True` and no custom objects gives identical predictions, and the
  loaded model keeps training;
- with `xla=True`, on TensorFlow, the whole training step compiles with XLA
  (`jit_compile=True` survives the first `fit`: no layer blocked it).

Methods that train on more than images (CLIP's captions) pass `targets`; the
GAN, which builds its own encoder, passes `make_encoder=None`.
"""

import math

import keras
import numpy as np


def tiny_data(input_shape, count=16, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, *input_shape)).astype("uint8")
    labels = rng.integers(0, 3, size=(count,)).astype("int32")
    return images, labels


def assert_finite_history(history, expected_metrics=()):
    for name, values in history.history.items():
        assert all(math.isfinite(v) for v in values), f"{name} is not finite: {values}"
    for name in ("loss", *expected_metrics):
        assert name in history.history, f"{name} missing from {sorted(history.history)}"


def run_method_test(
    make_method,
    make_encoder,
    tmp_path,
    input_shape=(16, 16, 3),
    batch_size=8,
    expected_metrics=(),
    optimizer="adam",
    data_variants=True,
    xla=False,
    targets=None,
    evaluate=True,
):
    """Runs the shared contract checks on one method.

    Args:
        make_method: callable(encoder) -> an SSLMethod, compiled or not.
        make_encoder: callable(input_shape) -> a tiny keras encoder.
        tmp_path: pathlib.Path for the saved file.
        input_shape: (height, width, channels) of the test images.
        batch_size: int.
        expected_metrics: names that must appear in the History.
        optimizer: passed to `compile(optimizer=...)`; None compiles with
            the method's defaults (the GAN's two optimizers).
        data_variants: bool. Also fit on float arrays, a tf.data dataset of
            (images, labels) and a generator. Each is one more compiled step
            (10 s or more on JAX), so secondary callers may skip them.
        xla: bool. Also check, on TensorFlow, that a fresh model's whole step
            compiles with XLA (JAX always compiles it).
        targets: callable(labels) -> what `fit` takes beside the images (CLIP's
            captions), or None for methods that learn from images alone.
        evaluate: bool. Check that `evaluate` changes nothing; False for the GAN,
            which has no test step (`GAN.evaluate` raises its "use fit()" error).
    """
    import tensorflow as tf

    images, labels = tiny_data(input_shape)
    make = lambda: make_method(make_encoder(input_shape) if make_encoder else None)  # noqa: E731
    model = make()
    compile_method(model, optimizer)
    y = targets(labels) if targets else None

    def fit(model, x, **kwargs):
        return model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, **kwargs)

    assert_finite_history(fit(model, images), expected_metrics)
    if evaluate:
        check_evaluate_changes_nothing(model, images, y, batch_size)

    float_images = images.astype("float32") / 255.0
    if data_variants:
        assert_finite_history(fit(model, float_images))
        pairs = tf.data.Dataset.from_tensor_slices((images, labels if y is None else y))
        assert_finite_history(model.fit(pairs.batch(batch_size), epochs=1, verbose=0))

        def generator():
            for start in range(0, len(images), batch_size):
                batch = images[start : start + batch_size]
                yield batch if y is None else (batch, y[start : start + batch_size])

        assert_finite_history(model.fit(generator(), epochs=1, verbose=0))

    features = model.predict(images, batch_size=batch_size, verbose=0)
    assert features.ndim == 2 and features.shape[0] == len(images)
    direct = keras.ops.convert_to_numpy(model.encoder(float_images, training=False))
    np.testing.assert_allclose(features, direct, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(images)), features, rtol=1e-4, atol=1e-4
    )

    config = model.get_config()
    clone = type(model).from_config(config)
    assert type(clone) is type(model)
    assert clone.get_config().keys() == config.keys()

    path = tmp_path / "method.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is type(model)
    np.testing.assert_allclose(
        loaded.predict(images, batch_size=batch_size, verbose=0), features, rtol=1e-5, atol=1e-5
    )
    assert_finite_history(fit(loaded, images))

    if xla:
        check_compiles_with_xla(make, images, y, batch_size, optimizer)
    return model


def variable_state(model):
    """Every variable of the model (weights, BatchNorm statistics, random state), as NumPy."""
    return {
        f"{index}:{variable.path}": np.array(keras.ops.convert_to_numpy(variable))
        for index, variable in enumerate(model.variables)
    }


def assert_same_state(before, after):
    assert before.keys() == after.keys()
    changed = [name for name in before if not np.array_equal(before[name], after[name])]
    assert not changed, f"evaluate changed {changed}"


def check_evaluate_changes_nothing(model, x, y=None, batch_size=8):
    """Two `evaluate` calls of a trained model change no variable and agree exactly."""
    before = variable_state(model)
    first = model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
    assert_same_state(before, variable_state(model))
    second = model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
    assert_same_state(before, variable_state(model))
    assert first == second
    assert all(math.isfinite(value) for value in first.values()), first
    assert "teacher_momentum" not in first  # a schedule's value means nothing in evaluation
    return first


def compile_method(model, optimizer, **kwargs):
    if optimizer is None:
        model.compile(**kwargs)
    else:
        model.compile(optimizer=optimizer, **kwargs)


def check_compiles_with_xla(make_model, images, y=None, batch_size=8, optimizer="adam"):
    """On TensorFlow, a fresh model's whole training step compiles with XLA.

    Keras quietly falls back to `jit_compile=False` when a layer declares
    `supports_jit=False`; this fails instead. On JAX every step is compiled
    anyway, so there is nothing to check.
    """
    if keras.config.backend() != "tensorflow":
        return
    model = make_model()
    compile_method(model, optimizer, jit_compile=True)
    history = model.fit(images, y, batch_size=batch_size, epochs=1, verbose=0)
    assert_finite_history(history)
    assert model.jit_compile, "a layer in the step blocked XLA compilation"
