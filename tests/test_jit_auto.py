"""`jit_compile="auto"`: XLA on a GPU; on a CPU, what measured fastest per architecture."""

import keras
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
