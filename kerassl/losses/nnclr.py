"""NNCLR: nearest neighbours from a support set as positives."""

from keras import ops

from kerassl.losses.contrastive import check_pair, check_temperature, l2_normalize


def nearest_neighbour(z, support):
    """For each row of z, the support row of highest cosine similarity.

    Args:
        z: tensor (N, D).
        support: tensor (M, D). The support set (NNCLR's queue).

    Returns:
        Tensor (N, D) of support rows, without gradient.

    Example:
    >>> nn = kerassl.losses.nearest_neighbour(z1, bank.content())

    Reference: Dwibedi et al., "With a Little Help from My Friends:
    Nearest-Neighbor Contrastive Learning of Visual Representations", ICCV
    2021 (https://arxiv.org/abs/2104.14548), Eq. 2.
    """
    if len(support.shape) != 2 or support.shape[-1] != z.shape[-1]:
        raise ValueError(f"support must be (M, {z.shape[-1]}); got shape {tuple(support.shape)}.")
    support = ops.stop_gradient(ops.cast(support, "float32"))
    similarity = ops.matmul(l2_normalize(ops.stop_gradient(z)), ops.transpose(l2_normalize(support)))
    return ops.take(support, ops.argmax(similarity, axis=1), axis=0)


def nnclr_loss(nn, p, temperature=0.1):
    """NNCLR's loss L(nn, p): each neighbour must pick the prediction of its own image.

    As Algorithm 1 of the paper: nn and p L2-normalized, `logits = nn @ p.T
    / T`, cross-entropy with label i for row i (N candidates, the other
    view's predictions). The method swaps the views and averages:
    `L(nn1, p2) / 2 + L(nn2, p1) / 2`.

    Args:
        nn: tensor (N, D). Nearest neighbours of one view's projections.
        p: tensor (N, D). Predictions of the other view.
        temperature: float > 0. 0.1 in the paper.

    Returns:
        A float32 scalar; log(N) when every embedding is the same.

    Example:
    >>> loss = 0.5 * (kerassl.losses.nnclr_loss(nn1, p2) + kerassl.losses.nnclr_loss(nn2, p1))

    Reference: Dwibedi et al., ICCV 2021 (https://arxiv.org/abs/2104.14548), Algorithm 1.
    """
    temperature = check_temperature(temperature)
    check_pair(nn, p, name="neighbours and predictions")
    logits = ops.matmul(ops.stop_gradient(l2_normalize(nn)), ops.transpose(l2_normalize(p))) / temperature
    return ops.mean(ops.logsumexp(logits, axis=1) - ops.diagonal(logits))
