"""BYOL's and SimSiam's losses (negative cosine with a stop-gradient) and the collapse metric.

Pure `keras.ops` functions, like `kerassl.losses`: float32 whatever the input
dtype, checked arguments, every backend, inside or outside a compiled step.
"""

from keras import ops

from kerassl.losses.contrastive import check_pair, l2_normalize


def negative_cosine_similarity(p, z):
    """SimSiam's D(p, z) = -mean cos(p, stop_gradient(z)).

    Args:
        p: tensor (N, D). Predictions (the gradient flows through them).
        z: tensor (N, D). Targets; no gradient reaches them.

    Returns:
        A float32 scalar in [-1, 1].

    Example:
    >>> d = kerassl.losses.negative_cosine_similarity(p1, z2)

    Reference: Chen and He, "Exploring Simple Siamese Representation
    Learning", CVPR 2021 (https://arxiv.org/abs/2011.10566), Eq. 1 and
    Algorithm 1.
    """
    check_pair(p, z, name="predictions and targets", min_batch=1)
    z = ops.stop_gradient(l2_normalize(z))
    return -ops.mean(ops.sum(l2_normalize(p) * z, axis=-1))


def simsiam_loss(p1, p2, z1, z2):
    """SimSiam's symmetrized loss, D(p1, z2) / 2 + D(p2, z1) / 2.

    As `facebookresearch/simsiam` main_simsiam.py:
    `-(criterion(p1, z2).mean() + criterion(p2, z1).mean()) * 0.5` with
    `z1, z2` detached. -1 is the minimum.

    Args:
        p1: tensor (N, D). Predictions of view 1.
        p2: tensor (N, D). Predictions of view 2.
        z1: tensor (N, D). Projections of view 1 (targets for p2).
        z2: tensor (N, D). Projections of view 2 (targets for p1).

    Example:
    >>> loss = kerassl.losses.simsiam_loss(p1, p2, z1, z2)

    Reference: Chen and He, CVPR 2021 (https://arxiv.org/abs/2011.10566).
    """
    return 0.5 * (negative_cosine_similarity(p1, z2) + negative_cosine_similarity(p2, z1))


def byol_loss(p1, p2, z1, z2):
    """BYOL's symmetrized regression loss, as `deepmind/deepmind-research` byol.

    Each online prediction regresses the target projection of the other view:
    `regression_loss(x, y) = sum((x/|x| - y/|y|)^2) = 2 - 2 cos(x, y)` per
    image, averaged over the batch, and the two directions added (range 0 to
    8; the same gradient as `simsiam_loss` times 4).

    Args:
        p1: tensor (N, D). Online predictions of view 1.
        p2: tensor (N, D). Online predictions of view 2.
        z1: tensor (N, D). Target projections of view 1 (no gradient).
        z2: tensor (N, D). Target projections of view 2 (no gradient).

    Example:
    >>> loss = kerassl.losses.byol_loss(p1, p2, t1, t2)

    Reference: Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020
    (https://arxiv.org/abs/2006.07733), Eq. 2.
    """
    return (2.0 + 2.0 * negative_cosine_similarity(p1, z2)) + (2.0 + 2.0 * negative_cosine_similarity(p2, z1))


def embedding_std(z):
    """Mean over dimensions of the batch standard deviation of z / ||z||.

    SimSiam's collapse indicator: about 1 / sqrt(D) for embeddings spread over
    the sphere, 0 when every image maps to the same point.

    Args:
        z: tensor (N, D), N >= 2.

    Example:
    >>> kerassl.losses.embedding_std(z) * (z.shape[-1] ** 0.5)  # ~1 healthy, ~0 collapsed

    Reference: Chen and He, CVPR 2021 (https://arxiv.org/abs/2011.10566), Sec. 4.1.
    """
    check_pair(z, z, min_batch=2)
    return ops.mean(ops.std(l2_normalize(z), axis=0))
