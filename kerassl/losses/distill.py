"""Losses of self-distillation (DINO) and masked image modelling (MAE).

Pure `keras.ops` functions, like `kerassl.losses`: they take model outputs and
nothing a model owns, check their arguments up front, compute in float32 and
run on every backend inside or outside a compiled step.
"""

import math

from keras import ops

from kerassl.losses.contrastive import check_temperature


def _check_rank(x, rank, name, layout):
    if len(x.shape) != rank:
        raise ValueError(f"{name} must be rank-{rank} {layout}; got shape {tuple(x.shape)}.")


def dino_loss(student_logits, teacher_logits, center, student_temperature=0.1, teacher_temperature=0.04):
    """DINO's cross-entropy between teacher and student crops.

    The teacher's output on each global crop is centred, sharpened with
    `teacher_temperature` and turned into a target distribution (no
    gradient); every student crop except the same global crop must predict
    it: H(P_t(x), P_s(x')) averaged over all pairs with x != x'.

    Args:
        student_logits: tensor (num_crops, batch, K). The first
            `num_global` crops are the global crops the teacher saw, in the
            same order; the rest are local crops.
        teacher_logits: tensor (num_global, batch, K).
        center: tensor (K,) or (1, K). Running mean of teacher outputs.
        student_temperature: float > 0.
        teacher_temperature: float or scalar tensor > 0 (warmed up by DINO).

    Returns:
        Scalar float32 tensor.

    Example:
    >>> loss = kerassl.losses_distill.dino_loss(
    ...     keras.ops.zeros((8, 4, 16)), keras.ops.zeros((2, 4, 16)), keras.ops.zeros((16,)))

    Reference: Caron et al., "Emerging Properties in Self-Supervised Vision
    Transformers", ICCV 2021 (https://arxiv.org/abs/2104.14294), Algorithm 1.
    """
    student_temperature = check_temperature(student_temperature)
    if isinstance(teacher_temperature, (int, float)):
        teacher_temperature = check_temperature(teacher_temperature)
    _check_rank(student_logits, 3, "student_logits", "(num_crops, batch, K)")
    _check_rank(teacher_logits, 3, "teacher_logits", "(num_global, batch, K)")
    num_crops, num_global = student_logits.shape[0], teacher_logits.shape[0]
    if student_logits.shape[2] != teacher_logits.shape[2]:
        raise ValueError(
            f"student and teacher outputs differ in size: {student_logits.shape[2]} vs "
            f"{teacher_logits.shape[2]}."
        )
    if num_crops < num_global or num_crops < 2:
        raise ValueError(
            f"the student needs the teacher's {num_global} global crop(s) first and at "
            f"least 2 crops in all; got {num_crops} student crops."
        )
    student = ops.log_softmax(ops.cast(student_logits, "float32") / student_temperature, axis=-1)
    center = ops.reshape(ops.cast(center, "float32"), (1, 1, -1))
    teacher = ops.softmax((ops.cast(teacher_logits, "float32") - center) / teacher_temperature, axis=-1)
    teacher = ops.stop_gradient(teacher)
    # cross[g, v] = mean over the batch of H(teacher crop g, student crop v).
    cross = -ops.einsum("gbk,vbk->gv", teacher, student) / ops.cast(ops.shape(student)[1], "float32")
    same_crop = ops.eye(num_global, num_crops, dtype="float32")
    pairs = num_global * num_crops - num_global
    return ops.sum(cross * (1.0 - same_crop)) / pairs


def entropy(probabilities, axis=-1):
    """Shannon entropy in nats of distributions along `axis`.

    Args:
        probabilities: tensor of non-negative values summing to 1 along `axis`.
        axis: int.

    Example:
    >>> kerassl.losses_distill.entropy(keras.ops.ones((2, 4)) / 4)  # log(4) each
    """
    probabilities = ops.cast(probabilities, "float32")
    return -ops.sum(probabilities * ops.log(ops.maximum(probabilities, 1e-12)), axis=axis)


def cosine_schedule(step, total_steps, start, end):
    """A value going from `start` to `end` along a half cosine over `total_steps`.

    `end - (end - start) * (cos(pi * step / total) + 1) / 2`, held at `end`
    after `total_steps`; `start` throughout when `total_steps` is 0 (unknown).
    DINO's teacher momentum follows it from 0.996 to 1.

    Args:
        step: scalar tensor or number.
        total_steps: scalar tensor or number.
        start: float.
        end: float.
    """
    step = ops.cast(step, "float32")
    total = ops.cast(total_steps, "float32")
    progress = ops.where(total > 0, ops.minimum(step / ops.maximum(total, 1.0), 1.0), 0.0)
    return end - (end - start) * (ops.cos(math.pi * progress) + 1.0) / 2.0


def linear_warmup(step, warmup_steps, start, end):
    """`start` -> `end` linearly over `warmup_steps`, then `end` (DINO's teacher temperature)."""
    if warmup_steps <= 0:
        return ops.convert_to_tensor(end, "float32")
    progress = ops.minimum(ops.cast(step, "float32") / float(warmup_steps), 1.0)
    return start + (end - start) * progress


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
    >>> loss = kerassl.losses_distill.masked_patch_loss(pred, kerassl.vit.patchify(x, 4), mask)

    Reference: He et al., "Masked Autoencoders Are Scalable Vision Learners",
    CVPR 2022 (https://arxiv.org/abs/2111.06377).
    """
    _check_rank(predictions, 3, "predictions", "(batch, patches, pixels)")
    if tuple(predictions.shape[1:]) != tuple(targets.shape[1:]):
        raise ValueError(
            f"predictions {tuple(predictions.shape)} and targets {tuple(targets.shape)} differ in shape."
        )
    _check_rank(mask, 2, "mask", "(batch, patches)")
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
