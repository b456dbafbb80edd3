"""The staples' losses against NumPy transcriptions of the authors' code, and lightly's analytic cases."""

import math

import keras
import numpy as np
import pytest

from kerassl import losses

GRID = [(batch, dim) for batch in (2, 5, 16) for dim in (3, 8, 33)]


def value(tensor):
    return float(keras.ops.convert_to_numpy(tensor))


def draw(batch, dim, count=2, seed=0):
    rng = np.random.default_rng(seed + 1000 * batch + dim)
    return [rng.normal(size=(batch, dim)).astype("float32") for _ in range(count)]


def normalize(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def off_diagonal(x):
    # facebookresearch/barlowtwins and vicreg: a flattened view of the off-diagonal elements.
    n, m = x.shape
    assert n == m
    return x.flatten()[:-1].reshape(n - 1, n + 1)[:, 1:].flatten()


def log_softmax(x):
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def cross_entropy(logits, labels):
    return -np.mean(log_softmax(logits)[np.arange(len(labels)), labels])


# -- Barlow Twins (facebookresearch/barlowtwins, main.py BarlowTwins.forward) ----------


def barlow_twins_reference(z1, z2, lambd=0.0051):
    def bn(z):  # nn.BatchNorm1d(affine=False) in training: biased variance, eps 1e-5
        z = z.astype("float64")
        return (z - z.mean(0)) / np.sqrt(z.var(0) + 1e-5)

    c = bn(z1).T @ bn(z2)
    c /= len(z1)
    on_diag = ((np.diagonal(c) - 1) ** 2).sum()
    off_diag = (off_diagonal(c) ** 2).sum()
    return on_diag + lambd * off_diag


@pytest.mark.parametrize("batch, dim", GRID)
def test_barlow_twins_matches_the_authors_code(batch, dim):
    z1, z2 = draw(batch, dim)
    np.testing.assert_allclose(value(losses.barlow_twins(z1, z2)), barlow_twins_reference(z1, z2), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        value(losses.barlow_twins(z1, z2, 0.5)), barlow_twins_reference(z1, z2, 0.5), rtol=1e-4, atol=1e-5
    )


def test_barlow_twins_is_symmetric_and_invariant_to_an_affine_map():
    z1, z2 = draw(32, 6)
    rng = np.random.default_rng(3)
    scale = rng.uniform(0.5, 4.0, size=(1, 6)).astype("float32")
    shift = rng.normal(size=(1, 6)).astype("float32") * 5
    base = value(losses.barlow_twins(z1, z2))
    assert value(losses.barlow_twins(z2, z1)) == pytest.approx(base, rel=1e-5)
    assert value(losses.barlow_twins(z1 * scale + shift, z2)) == pytest.approx(base, rel=1e-3)
    # Identical views of decorrelated dimensions: the loss is the off-diagonal residue only.
    assert value(losses.barlow_twins(z1, z1)) < 0.01 * base


# -- VICReg (facebookresearch/vicreg, main_vicreg.py VICReg.forward) -------------------


def vicreg_reference(x, y, sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0):
    x, y = x.astype("float64"), y.astype("float64")
    batch_size, num_features = x.shape
    repr_loss = np.mean((x - y) ** 2)  # F.mse_loss
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    std_x = np.sqrt(x.var(axis=0, ddof=1) + 0.0001)  # torch.var is unbiased
    std_y = np.sqrt(y.var(axis=0, ddof=1) + 0.0001)
    std_loss = np.mean(np.maximum(1 - std_x, 0)) / 2 + np.mean(np.maximum(1 - std_y, 0)) / 2
    cov_x = (x.T @ x) / (batch_size - 1)
    cov_y = (y.T @ y) / (batch_size - 1)
    cov_loss = (off_diagonal(cov_x) ** 2).sum() / num_features + (off_diagonal(cov_y) ** 2).sum() / num_features
    return sim_coeff * repr_loss + std_coeff * std_loss + cov_coeff * cov_loss


@pytest.mark.parametrize("batch, dim", GRID)
def test_vicreg_matches_the_authors_code(batch, dim):
    z1, z2 = draw(batch, dim)
    z1 = z1 * 0.3  # some dimensions below std 1, so the hinge is active
    np.testing.assert_allclose(value(losses.vicreg(z1, z2)), vicreg_reference(z1, z2), rtol=1e-4, atol=1e-5)
    got = losses.vicreg(z1, z2, 1.0, 2.0, 3.0)
    np.testing.assert_allclose(value(got), vicreg_reference(z1, z2, 1.0, 2.0, 3.0), rtol=1e-4, atol=1e-5)


def test_vicreg_is_symmetric_and_its_terms_add_up():
    z1, z2 = draw(16, 5)
    loss, (invariance, variance, covariance) = losses.vicreg(z1, z2, return_terms=True)
    assert value(losses.vicreg(z2, z1)) == pytest.approx(value(loss), rel=1e-5)
    assert value(loss) == pytest.approx(25 * value(invariance) + 25 * value(variance) + value(covariance), rel=1e-5)
    collapsed = np.ones((8, 4), "float32")
    # Every dimension constant: the variance hinge is at its maximum 1 - sqrt(eps).
    assert value(losses.vicreg(collapsed, collapsed)) == pytest.approx(25 * (1 - 0.01), rel=1e-5)


# -- BYOL (deepmind-research byol/utils/helpers.py regression_loss) and SimSiam -------


def byol_reference(p1, p2, t1, t2):
    def regression_loss(x, y):
        return np.sum((normalize(x) - normalize(y)) ** 2, axis=-1)

    return np.mean(regression_loss(p1, t2)) + np.mean(regression_loss(p2, t1))


def simsiam_reference(p1, p2, z1, z2):
    def criterion(a, b):  # nn.CosineSimilarity(dim=1), eps 1e-8
        return np.sum(a * b, 1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-8)

    return -(criterion(p1, z2).mean() + criterion(p2, z1).mean()) * 0.5


@pytest.mark.parametrize("batch, dim", GRID)
def test_byol_and_simsiam_match_the_authors_code(batch, dim):
    p1, p2, z1, z2 = draw(batch, dim, count=4)
    np.testing.assert_allclose(value(losses.byol_loss(p1, p2, z1, z2)), byol_reference(p1, p2, z1, z2), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        value(losses.simsiam_loss(p1, p2, z1, z2)), simsiam_reference(p1, p2, z1, z2), rtol=1e-4, atol=1e-5
    )


def test_negative_cosine_bounds_and_symmetry():
    p1, p2, z1, z2 = draw(8, 4, count=4)
    assert value(losses.negative_cosine_similarity(p1, 3 * p1)) == pytest.approx(-1.0, abs=1e-6)
    assert value(losses.negative_cosine_similarity(p1, -p1)) == pytest.approx(1.0, abs=1e-6)
    assert value(losses.byol_loss(p1, p2, z1, z2)) == pytest.approx(value(losses.byol_loss(p2, p1, z2, z1)), rel=1e-6)
    assert value(losses.simsiam_loss(z2, z1, z1, z2)) == pytest.approx(-1.0, abs=1e-6)


def test_targets_get_no_gradient():
    if keras.config.backend() != "tensorflow":
        pytest.skip("checked with tf.GradientTape")
    import tensorflow as tf

    p1, p2, z1, z2 = (tf.Variable(t) for t in draw(6, 4, count=4))
    with tf.GradientTape(persistent=True) as tape:
        byol = losses.byol_loss(p1, p2, z1, z2)
        simsiam = losses.simsiam_loss(p1, p2, z1, z2)
    for loss in (byol, simsiam):
        grads = tape.gradient(loss, [p1, p2, z1, z2])
        assert grads[0] is not None and grads[1] is not None
        assert grads[2] is None and grads[3] is None


def test_embedding_std_shows_collapse():
    z = np.random.default_rng(0).normal(size=(4096, 64)).astype("float32")
    assert value(losses.embedding_std(z)) == pytest.approx(1 / math.sqrt(64), rel=0.02)
    assert value(losses.embedding_std(np.ones((16, 64), "float32"))) == pytest.approx(0.0, abs=1e-6)


# -- MoCo v3 (facebookresearch/moco-v3, moco/builder.py contrastive_loss) and v2 -------


def moco_v3_reference(q, k, T):
    q, k = normalize(q.astype("float64")), normalize(k.astype("float64"))
    logits = np.einsum("nc,mc->nm", q, k) / T
    return cross_entropy(logits, np.arange(len(q))) * (2 * T)


def moco_v2_reference(q, k, queue, T):
    # facebookresearch/moco, moco/builder.py MoCo.forward (queue stored as (dim, K) there).
    q, k = normalize(q.astype("float64")), normalize(k.astype("float64"))
    l_pos = np.einsum("nc,nc->n", q, k)[:, None]
    l_neg = np.einsum("nc,ck->nk", q, queue.T.astype("float64"))
    logits = np.concatenate([l_pos, l_neg], axis=1) / T
    return cross_entropy(logits, np.zeros(len(q), dtype=int))


@pytest.mark.parametrize("batch, dim", GRID)
@pytest.mark.parametrize("temperature", [0.2, 1.0])
def test_moco_losses_match_the_authors_code(batch, dim, temperature):
    q, k, queue = draw(batch, dim, count=3)
    queue = normalize(np.concatenate([queue, queue[::-1] * 2]))
    np.testing.assert_allclose(
        value(losses.moco_v3_loss(q, k, temperature)), moco_v3_reference(q, k, temperature), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        value(losses.moco_v2_loss(q, k, queue, temperature)),
        moco_v2_reference(q, k, queue, temperature),
        rtol=1e-4,
        atol=1e-5,
    )


@pytest.mark.parametrize("batch, queue_size", [(2, 1), (4, 16), (8, 100)])
def test_collinear_embeddings_give_the_uniform_losses(batch, queue_size):
    # lightly's analytic cases: every embedding on one line, every logit equal.
    z = np.tile(np.array([[1.0, 2.0, -1.0]], "float32"), (batch, 1))
    queue = np.tile(z[:1] / np.linalg.norm(z[0]), (queue_size, 1))
    assert value(losses.nt_xent(z, 2 * z, 0.3)) == pytest.approx(math.log(2 * batch - 1), rel=1e-5)
    assert value(losses.moco_v2_loss(z, z, queue, 0.2)) == pytest.approx(math.log(queue_size + 1), rel=1e-5)
    assert value(losses.moco_v3_loss(z, z, 0.5)) == pytest.approx(math.log(batch) * 1.0, rel=1e-5)
    assert value(losses.nnclr_loss(z, z, 0.1)) == pytest.approx(math.log(batch), rel=1e-5)


# -- NNCLR (the paper's Algorithm 1) ------------------------------------------------


def nnclr_reference(nn, p, temperature=0.1):
    logits = normalize(nn.astype("float64")) @ normalize(p.astype("float64")).T / temperature
    return cross_entropy(logits, np.arange(len(p)))


@pytest.mark.parametrize("batch, dim", GRID)
def test_nnclr_matches_the_papers_algorithm(batch, dim):
    z, p, support = draw(batch, dim, count=3)
    support = np.concatenate([support, 0.5 * support[::-1]])
    nn = keras.ops.convert_to_numpy(losses.nearest_neighbour(z, support))
    expected = support[np.argmax(normalize(z) @ normalize(support).T, axis=1)]
    np.testing.assert_array_equal(nn, expected)
    np.testing.assert_allclose(value(losses.nnclr_loss(nn, p, 0.1)), nnclr_reference(nn, p, 0.1), rtol=1e-4, atol=1e-5)


def test_nearest_neighbour_finds_itself_in_the_support_set():
    z = draw(6, 5)[0]
    support = np.concatenate([draw(10, 5, seed=9)[0], 3.0 * z])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(losses.nearest_neighbour(z, support)), 3.0 * z, rtol=1e-6)


# -- SwAV (facebookresearch/swav, main_swav.py distributed_sinkhorn and train) ----------


def sinkhorn_reference(out, epsilon=0.05, sinkhorn_iterations=3):
    Q = np.exp(out.astype("float64") / epsilon).T  # K-by-B
    B = Q.shape[1]  # one process
    K = Q.shape[0]
    Q /= np.sum(Q)
    for _ in range(sinkhorn_iterations):
        Q /= np.sum(Q, axis=1, keepdims=True)
        Q /= K
        Q /= np.sum(Q, axis=0, keepdims=True)
        Q /= B
    Q *= B
    return Q.T


def swav_reference(output, nmb_crops, crops_for_assign=(0, 1), temperature=0.1, queue=None, use_the_queue=True):
    """The loss loop of `train` in main_swav.py; `output` is (crops * bs, K) scores."""
    bs = output.shape[0] // sum(nmb_crops)
    loss = 0
    for i, crop_id in enumerate(crops_for_assign):
        out = output[bs * crop_id : bs * (crop_id + 1)]
        if queue is not None and use_the_queue:
            out = np.concatenate([queue[i], out])
        q = sinkhorn_reference(out)[-bs:]
        subloss = 0
        for v in np.delete(np.arange(np.sum(nmb_crops)), crop_id):
            x = output[bs * v : bs * (v + 1)] / temperature
            subloss -= np.mean(np.sum(q * log_softmax(x.astype("float64")), axis=1))
        loss += subloss / (np.sum(nmb_crops) - 1)
    return loss / len(crops_for_assign)


@pytest.mark.parametrize("batch, prototypes", [(2, 3), (5, 8), (16, 33)])
def test_sinkhorn_matches_the_authors_code(batch, prototypes):
    rng = np.random.default_rng(batch)
    scores = np.tanh(rng.normal(size=(batch, prototypes))).astype("float32")  # cosines
    codes = keras.ops.convert_to_numpy(losses.sinkhorn_knopp(scores))
    np.testing.assert_allclose(codes, sinkhorn_reference(scores), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(codes.sum(axis=1), 1.0, rtol=1e-5)  # each sample's codes sum to 1


def test_sinkhorn_mask_leaves_rows_out_and_large_scores_stay_finite():
    rng = np.random.default_rng(0)
    scores = np.tanh(rng.normal(size=(7, 5))).astype("float32")
    extra = np.tanh(rng.normal(size=(4, 5))).astype("float32")
    mask = np.array([0, 0, 0, 0] + [1] * 7, "float32")
    masked = keras.ops.convert_to_numpy(losses.sinkhorn_knopp(np.concatenate([extra, scores]), mask=mask))
    np.testing.assert_allclose(masked[:4], 0.0)
    np.testing.assert_allclose(masked[4:], sinkhorn_reference(scores), rtol=1e-4, atol=1e-6)
    large = keras.ops.convert_to_numpy(losses.sinkhorn_knopp(scores * 100.0))
    assert np.all(np.isfinite(large))


@pytest.mark.parametrize("batch, prototypes, crops", [(2, 3, (2,)), (5, 8, (2, 3)), (16, 20, (2, 6))])
def test_swav_loss_matches_the_authors_code(batch, prototypes, crops):
    rng = np.random.default_rng(batch)
    total = sum(crops)
    output = np.tanh(rng.normal(size=(total * batch, prototypes))).astype("float32")
    queue = np.tanh(rng.normal(size=(2, 12, prototypes))).astype("float32")
    scores = output.reshape(total, batch, prototypes)
    got = value(losses.swav_loss(scores, 2, 0.1))
    np.testing.assert_allclose(got, swav_reference(output, crops), rtol=1e-4, atol=1e-5)
    got = value(losses.swav_loss(scores, 2, 0.1, queue_scores=queue))
    np.testing.assert_allclose(got, swav_reference(output, crops, queue=queue), rtol=1e-4, atol=1e-5)
    got = value(losses.swav_loss(scores, 2, 0.1, queue_scores=queue, use_queue=False))
    np.testing.assert_allclose(got, swav_reference(output, crops), rtol=1e-4, atol=1e-5)


def test_bad_arguments_are_clear():
    z = np.ones((4, 3), "float32")
    with pytest.raises(ValueError, match="temperature must be positive"):
        losses.moco_v3_loss(z, z, 0.0)
    with pytest.raises(ValueError, match="queue must be"):
        losses.moco_v2_loss(z, z, np.ones((5, 2), "float32"))
    with pytest.raises(ValueError, match="at least 2"):
        losses.barlow_twins(z[:1], z[:1])
    with pytest.raises(ValueError, match="same shape"):
        losses.vicreg(z, np.ones((4, 2), "float32"))
    with pytest.raises(ValueError, match="epsilon must be positive"):
        losses.sinkhorn_knopp(z, epsilon=0.0)
    with pytest.raises(ValueError, match="rank-3"):
        losses.swav_loss(z)
    with pytest.raises(ValueError, match="support must be"):
        losses.nearest_neighbour(z, np.ones((5, 2), "float32"))


def test_bfloat16_inputs_compute_in_float32():
    z1, z2 = draw(8, 6)
    half = [keras.ops.cast(t, "bfloat16") for t in (z1, z2)]
    for fn in (losses.barlow_twins, losses.vicreg, losses.moco_v3_loss, losses.nnclr_loss):
        result = fn(*half)
        assert keras.backend.standardize_dtype(result.dtype) == "float32"
        assert value(result) == pytest.approx(value(fn(z1, z2)), rel=5e-2, abs=5e-2)
