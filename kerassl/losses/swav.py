"""SwAV: Sinkhorn-Knopp codes and the swapped prediction loss."""

from keras import ops

from kerassl.losses.contrastive import check_temperature


def sinkhorn_knopp(scores, epsilon=0.05, iterations=3, mask=None):
    """Equipartitioned soft assignments of samples to prototypes.

    As `distributed_sinkhorn` in `facebookresearch/swav` main_swav.py (one
    process): `Q = exp(scores / eps).T`, normalized to sum 1, then
    `iterations` times each prototype's row to 1/K and each sample's column
    to 1/B; returned times B so each sample's codes sum to 1. The global
    maximum is subtracted first, which cancels in the first normalization
    and keeps `exp` finite for any scores.

    Args:
        scores: tensor (B, K). Similarities of samples to prototypes.
        epsilon: float > 0. 0.05 in the paper.
        iterations: int >= 1. 3 in the paper.
        mask: tensor (B,) of 0/1, or None. Samples with 0 take no part (SwAV's
            queue rows before the queue is full); their codes are 0 and the
            others are those computed without them.

    Returns:
        Tensor (B, K) of codes, no gradient.

    Example:
    >>> codes = kerassl.losses.sinkhorn_knopp(z @ prototypes)

    Reference: Caron et al., "Unsupervised Learning of Visual Features by
    Contrasting Cluster Assignments", NeurIPS 2020
    (https://arxiv.org/abs/2006.09882), Sec. 3.1; Cuturi, NeurIPS 2013.
    """
    if not epsilon > 0:
        raise ValueError(f"epsilon must be positive; got {epsilon}.")
    if int(iterations) < 1:
        raise ValueError(f"iterations must be >= 1; got {iterations}.")
    if len(scores.shape) != 2:
        raise ValueError(f"scores must be rank-2 (samples, prototypes); got shape {tuple(scores.shape)}.")
    scores = ops.stop_gradient(ops.cast(scores, "float32"))
    q = ops.exp((scores - ops.max(scores)) / epsilon)
    if mask is None:
        count = ops.cast(ops.shape(scores)[0], "float32")
    else:
        mask = ops.cast(ops.reshape(mask, (-1, 1)), "float32")
        q = q * mask
        count = ops.sum(mask)
    prototypes = ops.cast(ops.shape(scores)[1], "float32")
    tiny = 1e-30
    q = q / ops.sum(q)
    for _ in range(int(iterations)):
        q = q / ops.maximum(ops.sum(q, axis=0, keepdims=True), tiny) / prototypes
        q = q / ops.maximum(ops.sum(q, axis=1, keepdims=True), tiny) / count
    return ops.stop_gradient(q * count)


def swav_loss(scores, num_assign=2, temperature=0.1, epsilon=0.05, iterations=3, queue_scores=None, use_queue=True):
    """SwAV's swapped prediction loss over multi-crop views.

    As `train` in `facebookresearch/swav` main_swav.py: for each of the first
    `num_assign` crops, codes q = Sinkhorn(scores of that crop, after the
    queue's scores when a queue is used); every other crop predicts them:
    `-mean(sum(q * log_softmax(scores_v / T)))`, averaged over the other
    crops and over the assigned crops.

    Args:
        scores: tensor (num_crops, B, K). Each crop's normalized embeddings
            times the normalized prototypes; the first `num_assign` are the
            high-resolution crops.
        num_assign: int. Crops whose codes are computed (2).
        temperature: float > 0. 0.1.
        epsilon: float > 0. Sinkhorn's 0.05.
        iterations: int. Sinkhorn's 3.
        queue_scores: tensor (num_assign, M, K) or None. Earlier embeddings
            of the assigned crops times the current prototypes.
        use_queue: bool or boolean scalar tensor. False leaves the queue out
            (SwAV uses it once full).

    Returns:
        A float32 scalar.

    Example:
    >>> loss = kerassl.losses.swav_loss(keras.ops.stack([s1, s2, s_local]))

    Reference: Caron et al., NeurIPS 2020 (https://arxiv.org/abs/2006.09882), Eq. 1-3.
    """
    temperature = check_temperature(temperature)
    if len(scores.shape) != 3:
        raise ValueError(f"scores must be rank-3 (crops, batch, prototypes); got shape {tuple(scores.shape)}.")
    num_crops = scores.shape[0]
    if not 1 <= int(num_assign) <= num_crops or num_crops < 2:
        raise ValueError(f"need at least 2 crops and 1 <= num_assign <= crops; got {num_crops} crops, num_assign {num_assign}.")
    scores = ops.cast(scores, "float32")
    log_p = ops.log_softmax(scores / temperature, axis=-1)
    batch = ops.shape(scores)[1]
    total = 0.0
    for i in range(int(num_assign)):
        out = scores[i]
        mask = None
        if queue_scores is not None:
            queue = ops.cast(queue_scores[i], "float32")
            out = ops.concatenate([queue, out], axis=0)
            keep = ops.cast(use_queue, "float32") * ops.ones((ops.shape(queue)[0],), "float32")
            mask = ops.concatenate([keep, ops.ones((batch,), "float32")], axis=0)
        codes = sinkhorn_knopp(out, epsilon, iterations, mask)[-batch:]
        subloss = 0.0
        for v in range(num_crops):
            if v != i:
                subloss = subloss - ops.mean(ops.sum(codes * log_p[v], axis=-1))
        total = total + subloss / (num_crops - 1)
    return total / int(num_assign)
