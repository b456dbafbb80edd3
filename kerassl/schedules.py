"""Schedules of a training run as pure `keras.ops` functions of the step.

DINO's teacher momentum follows `cosine_schedule`, its teacher temperature
`linear_warmup`; BYOL and MoCo use the same momentum schedule.

Reference: Caron et al., "Emerging Properties in Self-Supervised Vision
Transformers", ICCV 2021 (https://arxiv.org/abs/2104.14294).
"""

import math

from keras import ops


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
