"""Losses of masked image modelling (MAE): pixel regression on hidden patches.

Reference: He et al., "Masked Autoencoders Are Scalable Vision Learners",
CVPR 2022 (https://arxiv.org/abs/2111.06377).
"""

from keras import ops

from kerassl.losses.contrastive import check_rank


def masked_patch_loss(predictions, targets, mask, normalize_targets=True, epsilon=1e-6):
    """MAE's loss: mean squared error on the hidden patches only.

    Args:
        predictions: tensor (B, N, P). The decoder's pixels for every patch.
        targets: tensor (B, N, P). The true patch pixels (`kerassl.vit.patchify`).
        mask: tensor (B, N). 1 where the patch was hidden from the encoder.
        normalize_targets: bool. Compare against each patch's pixels
            normalized by its own mean and variance (MAE's "norm_pix_loss",
            better representations).
        epsilon: float. Added to the variance.

    Returns:
        Scalar float32 tensor: the per-patch MSE averaged over hidden patches.

    Example:
    >>> loss = kerassl.losses.reconstruction.masked_patch_loss(pred, kerassl.vit.patchify(x, 4), mask)

    Reference: He et al., "Masked Autoencoders Are Scalable Vision Learners",
    CVPR 2022 (https://arxiv.org/abs/2111.06377).
    """
    check_rank(predictions, 3, "predictions", "(batch, patches, pixels)")
    if tuple(predictions.shape[1:]) != tuple(targets.shape[1:]):
        raise ValueError(
            f"predictions {tuple(predictions.shape)} and targets {tuple(targets.shape)} differ in shape."
        )
    check_rank(mask, 2, "mask", "(batch, patches)")
    targets = ops.cast(targets, "float32")
    if normalize_targets:
        targets = normalize_patches(targets, epsilon)
    error = ops.mean(ops.square(ops.cast(predictions, "float32") - targets), axis=-1)
    mask = ops.cast(mask, "float32")
    return ops.sum(error * mask) / ops.maximum(ops.sum(mask), 1.0)


def normalize_patches(patches, epsilon=1e-6):
    """Each patch minus its mean, over the square root of its variance + epsilon."""
    mean = ops.mean(patches, axis=-1, keepdims=True)
    variance = ops.var(patches, axis=-1, keepdims=True)
    return (patches - mean) / ops.sqrt(variance + epsilon)
