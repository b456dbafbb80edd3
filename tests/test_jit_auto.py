"""`jit_compile="auto"`: XLA on a GPU; on a CPU, what measured fastest per architecture."""

import keras
import numpy as np
import pytest

import kerassl
from kerassl.evaluate.features import resolve_jit_compile
from tests.conftest import tiny_encoder



def _no_gpu():
    try:
        return not keras.distribution.list_devices("gpu")
    except RuntimeError:  # JAX without a GPU platform
        return True


CPU_ONLY = _no_gpu()


@pytest.fixture(autouse=True)
def cpu_rule(monkeypatch):
    """The real rule (tests/conftest.py turns XLA off on CPUs for the rest of the suite)."""
    monkeypatch.delenv("KERASSL_XLA_ON_CPU", raising=False)


@pytest.mark.skipif(keras.config.backend() != "tensorflow" or not CPU_ONLY, reason="TensorFlow on a CPU")
def test_the_cpu_rule_can_be_switched_by_environment(monkeypatch):
    monkeypatch.setenv("KERASSL_XLA_ON_CPU", "off")
    assert resolve_jit_compile("auto", tiny_vit()) is False
    monkeypatch.setenv("KERASSL_XLA_ON_CPU", "on")
    assert resolve_jit_compile("auto", tiny_encoder()) is True
    assert resolve_jit_compile(False, tiny_encoder()) is False  # explicit still wins
    monkeypatch.setenv("KERASSL_XLA_ON_CPU", "maybe")
    with pytest.raises(ValueError, match="KERASSL_XLA_ON_CPU"):
        resolve_jit_compile("auto", tiny_encoder())


def tiny_vit():
    return kerassl.backbones.vit(16, patch_size=4, hidden_dim=16, depth=1, num_heads=2)


@pytest.mark.skipif(keras.config.backend() != "tensorflow" or not CPU_ONLY, reason="TensorFlow on a CPU")
def test_auto_on_a_tensorflow_cpu_picks_xla_for_vits_only():
    assert resolve_jit_compile("auto", kerassl.MAE(tiny_vit(), decoder_dim=16, decoder_depth=1)) is True
    assert resolve_jit_compile("auto", tiny_vit()) is True
    assert resolve_jit_compile("auto", tiny_encoder()) is False
    assert resolve_jit_compile("auto", kerassl.backbones.resnet18(input_shape=(32, 32, 3))) is False
    assert resolve_jit_compile("auto") is False
    # A layer XLA cannot compile keeps the whole model off it.
    zooming = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.RandomZoom(0.1), tiny_vit()])
    assert resolve_jit_compile("auto", zooming) is False


@pytest.mark.skipif(keras.config.backend() != "jax", reason="JAX")
def test_auto_on_jax_is_always_jit():
    assert resolve_jit_compile("auto", tiny_encoder()) is True


def test_explicit_choices_win():
    assert resolve_jit_compile(False, tiny_vit()) is False
    assert resolve_jit_compile(True, tiny_encoder()) is True
    assert resolve_jit_compile("false") is False and resolve_jit_compile("true") is True


# -- SSLMethod.compile: the Python API's "auto" -------------------------------------------
def tiny_mae():
    return kerassl.MAE(tiny_vit(), decoder_dim=16, decoder_depth=1, decoder_num_heads=2, seed=0)


def tiny_simclr():
    return kerassl.SimCLR(tiny_encoder(), projection_hidden_dim=16, projection_dim=8, seed=0)


@pytest.mark.skipif(keras.config.backend() != "tensorflow" or not CPU_ONLY, reason="TensorFlow on a CPU")
def test_compile_auto_on_a_tensorflow_cpu_is_kerassls_rule_not_keras():
    """Keras' own "auto" is False on every CPU; kerassl's is True for a ViT there."""
    mae = tiny_mae()
    mae.compile(optimizer="sgd")
    assert mae.jit_compile is True
    assert "Vision Transformer" in mae.jit_compile_reason
    simclr = tiny_simclr()
    simclr.compile(optimizer="sgd")
    assert simclr.jit_compile is False
    assert "oneDNN" in simclr.jit_compile_reason


@pytest.mark.skipif(keras.config.backend() != "jax", reason="JAX")
def test_compile_auto_on_jax_is_jit():
    model = tiny_simclr()
    model.compile(optimizer="sgd")
    assert model.jit_compile is True and "JAX" in model.jit_compile_reason


def test_compile_keeps_an_explicit_choice():
    mae = tiny_mae()
    mae.compile(optimizer="sgd", jit_compile=False)
    assert mae.jit_compile is False and mae.jit_compile_reason == "asked for explicitly"
    simclr = tiny_simclr()
    simclr.compile(optimizer="sgd", jit_compile=True)
    assert simclr.jit_compile is True
    simclr.compile(optimizer="sgd", jit_compile="false")  # as from a command line
    assert simclr.jit_compile is False
    with pytest.raises(ValueError, match='"auto", True or False'):
        simclr.compile(optimizer="sgd", jit_compile="yes")


def test_fit_reports_the_auto_choice_once_when_verbose(capsys):
    images = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3)).astype("uint8")
    model = tiny_simclr()
    model.compile(optimizer="sgd")
    model.fit(images, batch_size=8, epochs=1, verbose=0)
    assert "jit_compile" not in capsys.readouterr().out
    model.fit(images, batch_size=8, epochs=1, verbose=2)
    model.fit(images, batch_size=8, epochs=1, verbose=2)
    out = capsys.readouterr().out
    assert out.count(f"kerassl: jit_compile='auto' -> {model.jit_compile} (") == 1, out
    model.compile(optimizer="sgd", jit_compile=model.jit_compile)  # explicit: nothing to report
    model.fit(images, batch_size=8, epochs=1, verbose=2)
    assert "kerassl: jit_compile" not in capsys.readouterr().out


@pytest.mark.skipif(keras.config.backend() != "tensorflow" or CPU_ONLY, reason="TensorFlow with a GPU")
def test_compile_auto_with_a_gpu_is_xla_for_every_architecture():
    for model in (tiny_simclr(), tiny_mae()):
        model.compile(optimizer="sgd")
        assert model.jit_compile is True and "GPU" in model.jit_compile_reason
