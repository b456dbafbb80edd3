"""Losses against naive NumPy references over a grid of sizes and temperatures."""

import keras
import numpy as np
import pytest

from kerassl import losses


def normalize(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def nt_xent_reference(z1, z2, temperature):
    """Loop-by-loop NT-Xent: each of the 2N views against its 2N-1 others."""
    z = normalize(np.concatenate([z1, z2]).astype("float64"))
    n = len(z1)
    total = 0.0
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        others = [j for j in range(2 * n) if j != i]
        logits = np.array([z[i] @ z[j] / temperature for j in others])
        log_denominator = np.log(np.sum(np.exp(logits)))
        total += -(z[i] @ z[positive] / temperature - log_denominator)
    return total / (2 * n)


@pytest.mark.parametrize("batch", [2, 3, 8])
@pytest.mark.parametrize("dim", [1, 4, 33])
@pytest.mark.parametrize("temperature", [0.05, 0.5, 2.0])
def test_nt_xent_matches_reference(batch, dim, temperature):
    rng = np.random.default_rng(batch * 100 + dim)
    z1 = rng.normal(size=(batch, dim)).astype("float32")
    z2 = rng.normal(size=(batch, dim)).astype("float32")
    got = float(keras.ops.convert_to_numpy(losses.nt_xent(z1, z2, temperature)))
    np.testing.assert_allclose(got, nt_xent_reference(z1, z2, temperature), rtol=2e-4, atol=2e-5)


def test_nt_xent_is_low_for_matching_views_and_ignores_scale():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(16, 32)).astype("float32")
    perfect = float(losses.nt_xent(z, 3.0 * z, 0.1))
    shuffled = float(losses.nt_xent(z, z[::-1].copy(), 0.1))
    assert perfect < 0.5 < shuffled


def test_contrastive_accuracy_reference():
    rng = np.random.default_rng(1)
    z1 = rng.normal(size=(6, 5)).astype("float32")
    z2 = (z1 + rng.normal(scale=0.8, size=z1.shape)).astype("float32")
    z = normalize(np.concatenate([z1, z2]))
    sim = z @ z.T
    np.fill_diagonal(sim, -np.inf)
    expected = np.mean(sim.argmax(1) == (np.arange(12) + 6) % 12)
    assert float(losses.contrastive_accuracy(z1, z2)) == pytest.approx(expected)
    assert float(losses.contrastive_accuracy(z1, z1 * 2)) == 1.0


def test_alignment_and_uniformity_reference():
    rng = np.random.default_rng(2)
    z1 = rng.normal(size=(7, 3)).astype("float32")
    z2 = rng.normal(size=(7, 3)).astype("float32")
    a, b = normalize(z1), normalize(z2)
    expected_alignment = np.mean(np.linalg.norm(a - b, axis=1) ** 2)
    assert float(losses.alignment(z1, z2)) == pytest.approx(expected_alignment, rel=1e-4)
    pair_terms = [np.exp(-2 * np.sum((a[i] - a[j]) ** 2)) for i in range(7) for j in range(7) if i != j]
    assert float(losses.uniformity(z1)) == pytest.approx(np.log(np.mean(pair_terms)), rel=1e-4)
    collapsed = np.ones((5, 3), "float32")
    assert float(losses.uniformity(collapsed)) == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("temperature", [0.0, -1.0])
def test_temperature_must_be_positive(temperature):
    z = np.ones((4, 3), "float32")
    with pytest.raises(ValueError, match="temperature must be positive"):
        losses.nt_xent(z, z, temperature)


def test_batch_of_one_is_refused():
    z = np.ones((1, 3), "float32")
    with pytest.raises(ValueError, match="at least 2"):
        losses.nt_xent(z, z)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="same shape"):
        losses.nt_xent(np.ones((4, 3), "float32"), np.ones((4, 2), "float32"))
    with pytest.raises(ValueError, match="rank-2"):
        losses.nt_xent(np.ones((4, 3, 1), "float32"), np.ones((4, 3, 1), "float32"))


def test_bfloat16_inputs_compute_in_float32():
    rng = np.random.default_rng(3)
    z1 = rng.normal(size=(8, 16)).astype("float32")
    z2 = rng.normal(size=(8, 16)).astype("float32")
    full = float(losses.nt_xent(z1, z2, 0.2))
    half = losses.nt_xent(keras.ops.cast(z1, "bfloat16"), keras.ops.cast(z2, "bfloat16"), 0.2)
    assert keras.backend.standardize_dtype(half.dtype) == "float32"
    assert float(half) == pytest.approx(full, rel=2e-2)
