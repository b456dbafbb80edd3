"""Losses of self-distillation (DINO).

Pure `keras.ops` functions, like `kerassl.losses`: they take model outputs and
nothing a model owns, check their arguments up front, compute in float32 and
run on every backend inside or outside a compiled step.
"""

from keras import ops

from kerassl.losses.contrastive import check_rank, check_temperature

# 0.1.0 kept these here: kerassl.losses_distill.cosine_schedule and friends still work.
from kerassl.losses.reconstruction import masked_patch_loss, normalize_patches  # noqa: E402,F401
from kerassl.schedules import cosine_schedule, linear_warmup  # noqa: E402,F401


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
    check_rank(student_logits, 3, "student_logits", "(num_crops, batch, K)")
    check_rank(teacher_logits, 3, "teacher_logits", "(num_global, batch, K)")
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
