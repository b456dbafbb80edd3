"""Shared fixtures: tiny encoders, real offline data, the shared-data path."""

import os
import pathlib

# jit_compile="auto" on a TensorFlow CPU: no XLA here, whatever the architecture
# (kerassl.xla). Tiny test models spend longer in XLA's compiler than in their few
# steps: 4 ViT method tests took 90 s of CPU with it against 33 s without.
# tests/test_jit_auto.py puts the real rule back where it tests it.
os.environ.setdefault("KERASSL_XLA_ON_CPU", "off")

from tests.conftest_hub import local_hub  # noqa: F401  (must precede keras: sets HF_ENDPOINT)

import keras  # noqa: E402
import numpy as np
import pytest

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


def tiny_encoder(input_shape=(16, 16, 3), width=8, feature_dim=16, name="tiny"):
    """A two-conv functional encoder: (B, H, W, C) -> (B, feature_dim)."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(width, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Conv2D(feature_dim, 3, strides=2, padding="same", activation="relu")(x)
    outputs = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, outputs, name=name)


@pytest.fixture
def make_encoder():
    return tiny_encoder


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits as (images uint8 (N, 8, 8, 1), labels)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = (data.images * (255.0 / 16.0)).round().astype("uint8")[..., None]
    return images, data.target.astype("int32")


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield


def shared_data_file(name):
    """Path of a file in ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(
            f"{path} is absent: this test needs the project's shared data copy "
            "(present in CI, not in a user's fresh clone)"
        )
    return path


def backend():
    return keras.config.backend()


def infer(model, images):
    """`model(images, training=False)` as NumPy (a list for several outputs), compiled whole on JAX.

    Called eagerly, JAX compiles each operation on its own the first time it meets its
    shapes (a tiny resnet50: 2.9 s, against 0.6 s for one compiled `predict_on_batch`,
    which runs the same `call(images, training=False)`). TensorFlow runs the call eagerly,
    cheaper there than tracing a predict function for these tiny computations.
    """
    if keras.config.backend() == "jax":
        outputs = model.predict_on_batch(images)
    else:
        outputs = model(images, training=False)
    if isinstance(outputs, (list, tuple)):
        return [keras.ops.convert_to_numpy(output) for output in outputs]
    return keras.ops.convert_to_numpy(outputs)


def random_images(n=8, size=16, channels=3, seed=0, dtype="uint8"):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, size, size, channels))
    return x.astype("uint8") if dtype == "uint8" else (x / 255.0).astype(dtype)


os.environ.setdefault("MPLBACKEND", "Agg")

# On JAX every train, test and predict step is compiled by XLA, and for the default
# suite's tiny models compiling is most of the time. Two settings cut it, for the
# default suite only (`-m "not slow"`, pyproject's addopts); the slow learning tests
# run hundreds of steps and keep XLA's optimized code:
# - LLVM at optimization level 0, without its expensive passes: compiled code is
#   slower, compiling is faster (tests/test_evaluate_side_effects.py on JAX, one
#   process: 205 s of CPU without, 115 s with; 2026-12-06, machine under load);
# - a persistent compilation cache (`.jax-cache/`, or KERASSL_TEST_JAX_CACHE; "" turns it
#   off), shared with the tests' worker processes: identical steps compiled by several
#   tests, or by a run and its resumed copy, are compiled once (the same file: 185 s of
#   CPU from an empty cache, 35 s from a warm one).
# Both keep the results the same computation (same HLO, same ops); the backend must
# not have started yet, which holds at configure time (nothing before builds an array).
FAST_COMPILE_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
JAX_CACHE = pathlib.Path(__file__).resolve().parents[1] / ".jax-cache"


def pytest_configure(config):
    if keras.config.backend() != "jax":
        return
    import jax

    cache = os.environ.get("KERASSL_TEST_JAX_CACHE", str(JAX_CACHE))
    if cache:
        settings = dict(
            jax_compilation_cache_dir=cache,
            jax_persistent_cache_min_compile_time_secs=0.2,
            jax_compilation_cache_max_size=2 * 1024**3,
        )
        for name, value in settings.items():
            jax.config.update(name, value)
            # Worker processes (resume after a kill, the CLI) read the environment.
            os.environ[name.upper()] = str(value)
    if (config.getoption("markexpr") or "").strip() == "not slow":
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_backend_optimization_level" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {FAST_COMPILE_FLAGS}".strip()
