"""MoCo's losses: v2's InfoNCE against a queue, v3's in-batch loss scaled by 2T."""

from keras import ops

from kerassl.losses.contrastive import check_pair, check_temperature, l2_normalize


def _cross_entropy_diagonal(logits):
    """Mean cross-entropy of each row against the column of the same index."""
    positives = ops.diagonal(logits)
    return ops.mean(ops.logsumexp(logits, axis=1) - positives)


def moco_v3_loss(q, k, temperature=1.0):
    """MoCo v3's contrastive loss of queries against in-batch keys, times 2T.

    As `contrastive_loss` in `facebookresearch/moco-v3` moco/builder.py:
    queries and keys L2-normalized, `logits = q @ k.T / T`, cross-entropy
    with each query's own key as the label, multiplied by `2 * T`. The method
    adds the two directions, `loss(q1, k2) + loss(q2, k1)`.

    Args:
        q: tensor (N, D). Predictions of the online branch.
        k: tensor (N, D). Momentum-encoder keys (no gradient).
        temperature: float > 0. 1.0 for ResNets, 0.2 for ViTs (the authors').

    Returns:
        A float32 scalar.

    Example:
    >>> loss = kerassl.losses.moco_v3_loss(q1, k2) + kerassl.losses.moco_v3_loss(q2, k1)

    Reference: Chen, Xie and He, "An Empirical Study of Training
    Self-Supervised Vision Transformers", ICCV 2021
    (https://arxiv.org/abs/2104.02057), Algorithm 1.
    """
    temperature = check_temperature(temperature)
    check_pair(q, k, name="queries and keys")
    k = ops.stop_gradient(l2_normalize(k))
    logits = ops.matmul(l2_normalize(q), ops.transpose(k)) / temperature
    return _cross_entropy_diagonal(logits) * (2.0 * temperature)


def moco_v2_loss(q, k, queue, temperature=0.2):
    """InfoNCE of each query against its key and a queue of negatives (MoCo v1/v2).

    As `forward` in `facebookresearch/moco` moco/builder.py: q and k
    normalized, `l_pos = q . k`, `l_neg = q @ queue.T`, logits
    `[l_pos, l_neg] / T`, cross-entropy with label 0. The queue rows are
    normalized keys of earlier batches.

    Args:
        q: tensor (N, D). Queries.
        k: tensor (N, D). Keys of the other view (no gradient).
        queue: tensor (M, D). Negatives (no gradient).
        temperature: float > 0. 0.2 in MoCo v2 (0.07 in v1).

    Returns:
        A float32 scalar; log(M + 1) when every embedding is the same.

    Example:
    >>> loss = kerassl.losses.moco_v2_loss(q, k, bank.update(k))

    Reference: Chen et al., "Improved Baselines with Momentum Contrastive
    Learning", 2020 (https://arxiv.org/abs/2003.04297); He et al., CVPR 2020,
    Algorithm 1.
    """
    temperature = check_temperature(temperature)
    check_pair(q, k, name="queries and keys", min_batch=1)
    if len(queue.shape) != 2 or queue.shape[-1] != q.shape[-1]:
        raise ValueError(f"queue must be (M, {q.shape[-1]}); got shape {tuple(queue.shape)}.")
    q = l2_normalize(q)
    k = ops.stop_gradient(l2_normalize(k))
    queue = ops.stop_gradient(ops.cast(queue, "float32"))
    positive = ops.sum(q * k, axis=-1, keepdims=True)
    negatives = ops.matmul(q, ops.transpose(queue))
    logits = ops.concatenate([positive, negatives], axis=1) / temperature
    return ops.mean(ops.logsumexp(logits, axis=1) - logits[:, 0])
