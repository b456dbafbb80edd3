"""The VICReg loss, as `facebookresearch/vicreg` computes it."""

from keras import ops

from kerassl.losses.contrastive import check_pair


def _off_diagonal_square_sum(matrix):
    return ops.sum(ops.square(matrix)) - ops.sum(ops.square(ops.diagonal(matrix)))


def vicreg(
    z_a,
    z_b,
    invariance_weight=25.0,
    variance_weight=25.0,
    covariance_weight=1.0,
    epsilon=1e-4,
    return_terms=False,
):
    """VICReg: variance, invariance and covariance regularization of two views.

    As main_vicreg.py of `facebookresearch/vicreg`:
    - invariance: mean squared error between z_a and z_b;
    - variance: per dimension, `relu(1 - sqrt(var + eps))` with the unbiased
      (N - 1) variance, averaged over dimensions, half for each view;
    - covariance: the sum of squared off-diagonal entries of each view's
      covariance matrix (centred, divided by N - 1), divided by D, summed
      over the views.

    Args:
        z_a: tensor (N, D), N >= 2.
        z_b: tensor (N, D).
        invariance_weight: float. lambda, 25.
        variance_weight: float. mu, 25.
        covariance_weight: float. nu, 1.
        epsilon: float > 0. Added to the variance, 1e-4.
        return_terms: bool. Also return (invariance, variance, covariance).

    Returns:
        A float32 scalar, or (loss, (invariance, variance, covariance)).

    Example:
    >>> loss = kerassl.losses.vicreg(z_a, z_b)

    Reference: Bardes et al., "VICReg: Variance-Invariance-Covariance
    Regularization for Self-Supervised Learning", ICLR 2022
    (https://arxiv.org/abs/2105.04906), Eq. 1-6.
    """
    check_pair(z_a, z_b)
    x, y = ops.cast(z_a, "float32"), ops.cast(z_b, "float32")
    invariance = ops.mean(ops.square(x - y))
    batch = ops.cast(ops.shape(x)[0], "float32")
    dim = ops.cast(ops.shape(x)[1], "float32")
    x = x - ops.mean(x, axis=0, keepdims=True)
    y = y - ops.mean(y, axis=0, keepdims=True)
    std_x = ops.sqrt(ops.sum(ops.square(x), axis=0) / (batch - 1.0) + epsilon)
    std_y = ops.sqrt(ops.sum(ops.square(y), axis=0) / (batch - 1.0) + epsilon)
    variance = ops.mean(ops.relu(1.0 - std_x)) / 2.0 + ops.mean(ops.relu(1.0 - std_y)) / 2.0
    cov_x = ops.matmul(ops.transpose(x), x) / (batch - 1.0)
    cov_y = ops.matmul(ops.transpose(y), y) / (batch - 1.0)
    covariance = _off_diagonal_square_sum(cov_x) / dim + _off_diagonal_square_sum(cov_y) / dim
    loss = invariance_weight * invariance + variance_weight * variance + covariance_weight * covariance
    if return_terms:
        return loss, (invariance, variance, covariance)
    return loss
