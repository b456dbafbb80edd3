"""Self-supervised losses and diagnostics as pure `keras.ops` functions.

Each function takes embeddings (and nothing else a model owns), checks its
arguments up front, computes in float32 whatever the input dtype, and runs on
every Keras backend inside or outside a compiled step.
"""

from keras import ops

# A masked logit gets exactly zero weight in a softmax or logsumexp. Not a large
# finite constant such as -1e9: that is -inf in float16 anyway, and any finite
# value leaves a weight that depends on the other logits' scale.
MASK_VALUE = float("-inf")


def check_temperature(temperature):
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) and not hasattr(temperature, "__float__"):
        raise TypeError(f"temperature must be a positive number; got {temperature!r}.")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive; got {temperature}.")
    return float(temperature)


def check_pair(z1, z2, name="embeddings", min_batch=2):
    """Checks two (batch, dim) embedding tensors of the same static shape."""
    if len(z1.shape) != 2 or len(z2.shape) != 2:
        raise ValueError(
            f"{name} must be rank-2 (batch, dim); got shapes {tuple(z1.shape)} and "
            f"{tuple(z2.shape)}."
        )
    if tuple(z1.shape) != tuple(z2.shape):
        raise ValueError(
            f"the two {name} must have the same shape; got {tuple(z1.shape)} and "
            f"{tuple(z2.shape)}."
        )
    batch = z1.shape[0]
    if batch is not None and batch < min_batch:
        raise ValueError(
            f"a batch of {batch} image(s) is too small: contrastive losses compare each "
            f"image with the other images of its batch, so they need at least "
            f"{min_batch}. Use a larger batch_size (256 or more learns best)."
        )


def check_rank(x, rank, name, layout):
    if len(x.shape) != rank:
        raise ValueError(f"{name} must be rank-{rank} {layout}; got shape {tuple(x.shape)}.")


def l2_normalize(x, axis=-1, epsilon=1e-12):
    x = ops.cast(x, "float32")
    return x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x), axis=axis, keepdims=True), epsilon))


def _pair_logits(z1, z2, temperature):
    """Cosine-similarity logits of all 2N views against each other, self masked."""
    z = l2_normalize(ops.concatenate([z1, z2], axis=0))
    logits = ops.matmul(z, ops.transpose(z)) / temperature
    size = ops.shape(logits)[0]
    return ops.where(ops.eye(size, dtype="bool"), MASK_VALUE, logits)


def _positive_index(batch_size_tensor, total):
    """Index of each view's positive: i <-> i + N."""
    index = ops.arange(total)
    return (index + batch_size_tensor) % total


def nt_xent(z1, z2, temperature=0.5, batch_z1=None, batch_z2=None, offset=0):
    """Normalized temperature-scaled cross entropy (the SimCLR loss).

    The 2N embeddings of two views are L2-normalized; each one must pick its
    positive (the other view of the same image) among the 2N - 1 others by
    cosine similarity divided by `temperature`. The loss is the mean
    cross-entropy over all 2N anchors, so each anchor sees 2N - 2 negatives.

    On several devices, `z1` and `z2` are this device's rows and `batch_z1`,
    `batch_z2` the whole batch's (`kerassl.distributed.all_gather`), of which
    the local rows start at `offset`: the local anchors then find their
    positive among all 2M - 1 views of the global batch of M images. The mean
    of this loss over devices is the one-device loss on the global batch.

    Args:
        z1: tensor (N, D). Embeddings of the first views.
        z2: tensor (N, D). Embeddings of the second views, row-aligned with z1.
        temperature: float > 0.
        batch_z1: tensor (M, D) or None. The first views of the global batch;
            None: `z1` (one device).
        batch_z2: tensor (M, D) or None. Likewise for the second views.
        offset: int or int scalar tensor. Row of `batch_z1` where `z1` starts
            (`replica_index() * N`).

    Returns:
        A float32 scalar.

    Example:
    >>> z1 = keras.random.normal((8, 16)); z2 = keras.random.normal((8, 16))
    >>> loss = kerassl.losses.nt_xent(z1, z2, temperature=0.5)

    Reference: Chen et al., "A Simple Framework for Contrastive Learning of
    Visual Representations", ICML 2020 (https://arxiv.org/abs/2002.05709), Eq. 1.
    """
    temperature = check_temperature(temperature)
    check_pair(z1, z2)
    if batch_z1 is None and batch_z2 is None:
        logits = _pair_logits(z1, z2, temperature)
        total = ops.shape(logits)[0]
        positives = _positive_index(ops.shape(z1)[0], total)
        positive_logits = ops.take_along_axis(logits, positives[:, None], axis=1)[:, 0]
        return ops.mean(ops.logsumexp(logits, axis=1) - positive_logits)
    if batch_z1 is None or batch_z2 is None:
        raise ValueError("pass both batch_z1 and batch_z2 (the gathered views), or neither.")
    check_pair(batch_z1, batch_z2, "gathered embeddings")
    anchors = l2_normalize(ops.concatenate([z1, z2], axis=0))
    keys = l2_normalize(ops.concatenate([batch_z1, batch_z2], axis=0))
    logits = ops.matmul(anchors, ops.transpose(keys)) / temperature
    local, total = ops.shape(z1)[0], ops.shape(batch_z1)[0]
    rows = ops.arange(local, dtype="int32") + ops.cast(offset, "int32")
    own = ops.concatenate([rows, rows + total], axis=0)
    positives = ops.concatenate([rows + total, rows], axis=0)
    is_self = ops.equal(ops.arange(2 * total, dtype="int32")[None, :], own[:, None])
    logits = ops.where(is_self, MASK_VALUE, logits)
    positive_logits = ops.take_along_axis(logits, positives[:, None], axis=1)[:, 0]
    return ops.mean(ops.logsumexp(logits, axis=1) - positive_logits)


def contrastive_accuracy(z1, z2):
    """Fraction of the 2N views whose most similar other view is their positive.

    Chance is 1 / (2N - 1); 1.0 means every view finds its partner.

    Args:
        z1: tensor (N, D).
        z2: tensor (N, D).
    """
    check_pair(z1, z2)
    logits = _pair_logits(z1, z2, 1.0)
    total = ops.shape(logits)[0]
    positives = _positive_index(ops.shape(z1)[0], total)
    hits = ops.equal(ops.argmax(logits, axis=1), positives)
    return ops.mean(ops.cast(hits, "float32"))


def alignment(z1, z2, alpha=2.0):
    """Mean distance between normalized positive pairs, E ||f(x) - f(y)||^alpha.

    Lower is better; with `uniformity` it tells learning apart from collapse
    (a collapsed encoder has perfect alignment and terrible uniformity).

    Reference: Wang and Isola, "Understanding Contrastive Representation
    Learning through Alignment and Uniformity on the Hypersphere", ICML 2020
    (https://arxiv.org/abs/2005.10242).
    """
    check_pair(z1, z2, min_batch=1)
    distance = ops.sqrt(ops.maximum(ops.sum(ops.square(l2_normalize(z1) - l2_normalize(z2)), axis=-1), 0.0))
    return ops.mean(distance**alpha)


def uniformity(z, t=2.0):
    """log E exp(-t ||f(x) - f(y)||^2) over distinct pairs of normalized embeddings.

    More negative is more uniform; 0 means every embedding is the same point
    (collapse). Same reference as `alignment`.

    Args:
        z: tensor (N, D), N >= 2.
        t: float > 0.
    """
    check_pair(z, z, min_batch=2)
    z = l2_normalize(z)
    squared = ops.maximum(2.0 - 2.0 * ops.matmul(z, ops.transpose(z)), 0.0)
    size = ops.shape(z)[0]
    off_diagonal = ops.logical_not(ops.eye(size, dtype="bool"))
    logits = ops.where(off_diagonal, -t * squared, MASK_VALUE)
    count = ops.cast(size * (size - 1), "float32")
    return ops.logsumexp(ops.reshape(logits, (-1,))) - ops.log(count)

