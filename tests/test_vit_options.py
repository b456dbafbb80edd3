"""The ViT options that published architectures need (CLIP, DINOv2, I-JEPA), each checked directly."""

import keras
import numpy as np
import pytest
from keras import ops

from kerassl.backbones import vit

SMALL = dict(image_size=16, patch_size=4, hidden_dim=32, depth=2, num_heads=2)
OLD_KEYS = {"image_size", "patch_size", "channels", "hidden_dim", "depth", "num_heads", "mlp_ratio",
            "position_embedding", "pooling", "dropout", "layer_norm_epsilon"}


def images(n=2, size=16, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, size, size, 3)).astype("float32")


def test_default_configs_are_unchanged():
    transformer = vit.find_transformer(vit.vit(**SMALL))
    config = transformer.get_config()
    assert OLD_KEYS <= set(config) and not set(config) & set(vit.TRANSFORMER_DEFAULTS)
    block = transformer.blocks[0].get_config()
    assert not set(block) & set(vit.BLOCK_DEFAULTS)


def test_quick_gelu_mlp_matches_its_formula():
    block = vit.TransformerBlock(8, 2, mlp_ratio=2.0, activation="quick_gelu")
    block.build((None, None, 8))
    x = np.random.default_rng(1).normal(size=(1, 3, 8)).astype("float32")
    w1, b1 = (ops.convert_to_numpy(v) for v in (block.mlp_in.kernel, block.mlp_in.bias))
    w2, b2 = (ops.convert_to_numpy(v) for v in (block.mlp_out.kernel, block.mlp_out.bias))
    h = x @ w1 + b1
    expected = (h / (1 + np.exp(-1.702 * h))) @ w2 + b2
    np.testing.assert_allclose(ops.convert_to_numpy(block.feed_forward(x)), expected, atol=1e-5)


def test_swiglu_width_and_formula():
    assert vit.swiglu_hidden_size(32, 4) == 88 and vit.swiglu_hidden_size(1536, 4) == 4096
    block = vit.TransformerBlock(8, 2, mlp="swiglu")
    block.build((None, None, 8))
    x = np.random.default_rng(2).normal(size=(1, 3, 8)).astype("float32")
    w1, b1 = (ops.convert_to_numpy(v) for v in (block.mlp_in.kernel, block.mlp_in.bias))
    w2, b2 = (ops.convert_to_numpy(v) for v in (block.mlp_out.kernel, block.mlp_out.bias))
    h = x @ w1 + b1
    gate, value = h[..., : block.hidden_size], h[..., block.hidden_size :]
    expected = (gate / (1 + np.exp(-gate)) * value) @ w2 + b2
    np.testing.assert_allclose(ops.convert_to_numpy(block.feed_forward(x)), expected, atol=1e-5)


def test_layer_scale_zero_makes_a_block_the_identity():
    block = vit.TransformerBlock(8, 2, layer_scale=0.0)
    x = np.random.default_rng(3).normal(size=(2, 5, 8)).astype("float32")
    np.testing.assert_allclose(ops.convert_to_numpy(block(x)), x, atol=1e-6)


def test_registers_and_no_cls_change_the_token_layout():
    with_registers = vit.find_transformer(vit.vit(**SMALL, num_register_tokens=3, pooling="mean"))
    tokens = with_registers.encode(images())
    assert tokens.shape == (2, 1 + 3 + 16, 32) and with_registers.num_prefix_tokens == 4
    np.testing.assert_allclose(
        ops.convert_to_numpy(with_registers.pool(tokens)), ops.convert_to_numpy(ops.mean(tokens[:, 4:], axis=1)),
        atol=1e-6,
    )
    no_cls = vit.find_transformer(vit.vit(**SMALL, class_token=False, pooling="mean"))
    assert no_cls.encode(images()).shape == (2, 16, 32)
    assert not any("cls" in w.path for w in no_cls.weights)
    with pytest.raises(ValueError, match="needs a CLS token"):
        vit.vit(**SMALL, class_token=False)


def test_in_model_normalization_and_auto_range():
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    plain = vit.vit(**SMALL, patch_bias=False, pre_norm=True)
    normalizing = vit.vit(**SMALL, patch_bias=False, pre_norm=True, mean=mean, std=std, input_range="auto")
    normalizing.set_weights(plain.get_weights())
    x = images()
    expected = ops.convert_to_numpy(plain((x - np.array(mean, "float32")) / np.array(std, "float32")))
    np.testing.assert_allclose(ops.convert_to_numpy(normalizing(x)), expected, atol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(normalizing(x * 255.0)), expected, atol=1e-4)
    with pytest.raises(ValueError, match="both mean and std"):
        vit.vit(**SMALL, mean=mean)


def test_options_survive_a_safe_mode_round_trip(tmp_path):
    options = dict(qkv_bias=False, activation="quick_gelu", layer_scale=0.5, mlp="swiglu", num_register_tokens=2,
                   pre_norm=True, patch_bias=False, mean=[0.5] * 3, std=[0.25] * 3, input_range="auto")
    model = vit.vit(**SMALL, **options)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    config = vit.find_transformer(loaded).get_config()
    assert {key: config[key] for key in options} == options
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(images())), ops.convert_to_numpy(model(images())), atol=1e-6)
