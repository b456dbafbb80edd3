"""The ViT backbone: shapes, position interpolation, token subsets, attention, saving."""

import keras
import numpy as np
import pytest

import kerassl
from kerassl import vit


def tiny(**kwargs):
    kwargs.setdefault("hidden_dim", 16)
    kwargs.setdefault("depth", 2)
    kwargs.setdefault("num_heads", 2)
    return vit.vit(16, 4, 3, **kwargs)


def images(n=2, size=16, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, size, size, 3)).astype("float32")


def numpy_bilinear(grid, out_rows, out_cols):
    """Half-pixel-centre bilinear resize with edge clamping (upsampling)."""

    def weights(n_in, n_out):
        w = np.zeros((n_out, n_in))
        for i in range(n_out):
            src = np.clip((i + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
            lo = int(np.floor(src))
            hi = min(lo + 1, n_in - 1)
            w[i, lo] += 1 - (src - lo)
            w[i, hi] += src - lo
        return w

    rows, cols = weights(grid.shape[0], out_rows), weights(grid.shape[1], out_cols)
    return np.einsum("ah,bw,hwd->abd", rows, cols, grid)


def test_encoder_contract_and_feature_dim():
    encoder = tiny()
    assert kerassl.backbones.feature_dim(encoder) == 16
    assert encoder(images()).shape == (2, 16)
    mean = tiny(pooling="mean")
    assert mean(images()).shape == (2, 16)


@pytest.mark.parametrize("factory, dim", [(vit.vit_tiny, 192), (vit.vit_small, 384)])
def test_named_sizes(factory, dim):
    encoder = factory(image_size=32, patch_size=4)
    assert kerassl.backbones.feature_dim(encoder) == dim
    assert vit.find_transformer(encoder).depth == 12


def test_position_interpolation_is_identity_at_the_original_size():
    table = np.random.default_rng(0).normal(size=(1, 12, 8)).astype("float32")
    same = vit.interpolate_position_embedding(table, (3, 4), (3, 4))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(same), table, atol=1e-5)


def test_position_interpolation_matches_bilinear_reference():
    table = np.random.default_rng(1).normal(size=(2 * 3, 5)).astype("float32")
    got = keras.ops.convert_to_numpy(vit.interpolate_position_embedding(table, (2, 3), (4, 6)))
    expected = numpy_bilinear(table.reshape(2, 3, 5), 4, 6).reshape(1, 24, 5)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_other_input_sizes_use_interpolated_positions():
    encoder = tiny()
    transformer = vit.find_transformer(encoder)
    small = images(size=8)
    assert encoder.call(small).shape == (2, 16)  # Functional.call skips the Input shape check
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(transformer.positions_for((2, 2))),
        keras.ops.convert_to_numpy(
            vit.interpolate_position_embedding(transformer.patch_positions, (4, 4), (2, 2))
        ),
    )
    with pytest.raises(ValueError, match="multiple of the patch size"):
        encoder.call(images(size=10))


def test_token_subset_path_is_the_same_network_on_fewer_tokens():
    transformer = vit.find_transformer(tiny())
    x = images()
    full = keras.ops.convert_to_numpy(transformer.encode(x))
    order = np.stack([np.random.default_rng(s).permutation(16) for s in range(2)])
    permuted = keras.ops.convert_to_numpy(transformer.encode(x, keep_indices=order))
    np.testing.assert_allclose(permuted[:, 0], full[:, 0], rtol=1e-4, atol=1e-5)
    for b in range(2):
        np.testing.assert_allclose(permuted[b, 1:], full[b, 1:][order[b]], rtol=1e-4, atol=1e-5)
    subset = transformer.encode(x, keep_indices=order[:, :5])
    assert tuple(subset.shape) == (2, 6, 16)


def test_patchify_round_trip_and_layout():
    x = images(n=2, size=8)
    patches = keras.ops.convert_to_numpy(vit.patchify(x, 4))
    assert patches.shape == (2, 4, 48)
    np.testing.assert_allclose(patches[1, 1], x[1, 0:4, 4:8, :].reshape(-1))  # row 0, col 1
    back = keras.ops.convert_to_numpy(vit.unpatchify(patches, 4, (2, 2), 3))
    np.testing.assert_allclose(back, x)


def test_sincos_embedding_formula_and_frozen():
    table = vit.sincos_position_embedding((2, 3), 8)
    assert table.shape == (6, 8)
    row, col = 1, 2  # patch index 5
    omega = 1.0 / 10000 ** (np.arange(2) / 2)
    expected = np.concatenate(
        [np.sin(row * omega), np.cos(row * omega), np.sin(col * omega), np.cos(col * omega)]
    )
    np.testing.assert_allclose(table[5], expected, rtol=1e-6)
    transformer = vit.find_transformer(tiny(position_embedding="sincos"))
    trainable = {id(v) for v in transformer.trainable_weights}
    assert id(transformer.patch_positions) not in trainable


def test_attention_maps_and_fused_attention_agree():
    encoder = tiny()
    transformer = vit.find_transformer(encoder)
    x = images()
    maps = vit.attention_maps(encoder, x)
    assert maps.shape == (2, 2, 4, 4)
    assert np.all(maps >= 0) and np.all(maps.sum(axis=(2, 3)) <= 1.0 + 1e-5)
    tokens, _ = transformer.encode(x, return_attention=True)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(tokens),
        keras.ops.convert_to_numpy(transformer.encode(x)),
        rtol=1e-4,
        atol=1e-5,
    )
    assert vit.patch_tokens(encoder, (x * 255).astype("uint8")).shape == (2, 16, 16)


def test_save_and_load_keras_file(tmp_path):
    encoder = tiny(position_embedding="sincos", pooling="mean")
    path = tmp_path / "vit.keras"
    encoder.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(images(), verbose=0), encoder.predict(images(), verbose=0), atol=1e-6)
    assert vit.find_transformer(loaded).pooling == "mean"


def test_bad_arguments_get_clear_errors(make_encoder):
    with pytest.raises(ValueError, match="multiple of the patch size"):
        vit.vit(18, 4)
    with pytest.raises(ValueError, match="multiple of num_heads"):
        vit.vit(16, 4, hidden_dim=10, num_heads=3)
    with pytest.raises(ValueError, match="pooling"):
        vit.vit(16, 4, pooling="max")
    with pytest.raises(ValueError, match="vit_tiny"):
        vit.find_transformer(make_encoder())


def test_attention_map_figure(tmp_path):
    from kerassl import viz_attention

    x = (images(n=3) * 255).astype("uint8")
    path = viz_attention.attention_maps(tiny(), x, tmp_path / "attn.png")
    assert path.exists() and path.stat().st_size > 1000
    with pytest.raises(ValueError, match="Vision Transformer"):
        viz_attention.attention_maps(
            keras.Sequential([keras.Input((16, 16, 3)), keras.layers.GlobalAveragePooling2D()]),
            x,
            tmp_path / "bad.png",
        )
