"""Losses as pure `keras.ops` functions, one module per family.

- `contrastive`: NT-Xent (SimCLR), alignment and uniformity, shared checks.
- `clip`: CLIP's symmetric image-text loss.
- `distill`: DINO's self-distillation loss.
- `reconstruction`: MAE's masked-patch loss.
- `gan`: the GAN's discriminator and generator losses.

Every public name is re-exported here: `kerassl.losses.nt_xent(z1, z2)`. A new
family is one more module and one more import block below.
"""

from kerassl.losses.clip import clip_accuracy, clip_logits, clip_loss
from kerassl.losses.contrastive import (
    MASK_VALUE,
    alignment,
    check_pair,
    check_rank,
    check_temperature,
    contrastive_accuracy,
    l2_normalize,
    nt_xent,
    uniformity,
)
from kerassl.losses.distill import dino_loss, entropy
from kerassl.losses.gan import discriminator_loss, generator_loss, sigmoid_cross_entropy
from kerassl.losses.reconstruction import masked_patch_loss, normalize_patches

__all__ = [
    "MASK_VALUE",
    "alignment",
    "check_pair",
    "check_rank",
    "check_temperature",
    "clip_accuracy",
    "clip_logits",
    "clip_loss",
    "contrastive_accuracy",
    "dino_loss",
    "discriminator_loss",
    "entropy",
    "generator_loss",
    "l2_normalize",
    "masked_patch_loss",
    "normalize_patches",
    "nt_xent",
    "sigmoid_cross_entropy",
    "uniformity",
]
