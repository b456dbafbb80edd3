"""The Barlow Twins loss, as `facebookresearch/barlowtwins` computes it."""

from keras import ops

from kerassl.losses.contrastive import check_pair


def batch_standardize(z, epsilon=1e-5):
    """(z - batch mean) / sqrt(biased batch variance + epsilon), per dimension.

    What `nn.BatchNorm1d(affine=False)` does in training mode.
    """
    z = ops.cast(z, "float32")
    mean = ops.mean(z, axis=0, keepdims=True)
    variance = ops.mean(ops.square(z - mean), axis=0, keepdims=True)
    return (z - mean) * ops.rsqrt(variance + epsilon)


def barlow_twins(z_a, z_b, off_diagonal_weight=0.0051, epsilon=1e-5):
    """Barlow Twins: the cross-correlation of two views' embeddings made the identity.

    As main.py of `facebookresearch/barlowtwins`: each view's embeddings are
    standardized over the batch (BatchNorm without affine: biased variance,
    eps 1e-5), `c = bn(z_a).T @ bn(z_b) / N`, and
    `loss = sum_i (1 - c_ii)^2 + lambda * sum_{i != j} c_ij^2`.

    Args:
        z_a: tensor (N, D). Embeddings of the first views.
        z_b: tensor (N, D). Embeddings of the second views.
        off_diagonal_weight: float >= 0. The paper's lambda (0.0051).
        epsilon: float > 0. Added to the variance.

    Returns:
        A float32 scalar.

    Example:
    >>> loss = kerassl.losses.barlow_twins(z_a, z_b)

    Reference: Zbontar et al., "Barlow Twins: Self-Supervised Learning via
    Redundancy Reduction", ICML 2021 (https://arxiv.org/abs/2103.03230), Eq. 1.
    """
    check_pair(z_a, z_b)
    if off_diagonal_weight < 0:
        raise ValueError(f"off_diagonal_weight must be >= 0; got {off_diagonal_weight}.")
    batch = ops.cast(ops.shape(z_a)[0], "float32")
    c = ops.matmul(ops.transpose(batch_standardize(z_a, epsilon)), batch_standardize(z_b, epsilon)) / batch
    diagonal = ops.diagonal(c)
    on_diagonal = ops.sum(ops.square(diagonal - 1.0))
    off_diagonal = ops.sum(ops.square(c)) - ops.sum(ops.square(diagonal))
    return on_diagonal + off_diagonal_weight * off_diagonal
