"""Losses as pure `keras.ops` functions, one module per family.

- `contrastive`: NT-Xent (SimCLR), alignment and uniformity, shared checks.
- `clip`: CLIP's symmetric image-text loss.
- `distill`: DINO's self-distillation loss.
- `reconstruction`: MAE's masked-patch loss.
- `gan`: the GAN's discriminator and generator losses.
- `byol` (BYOL, SimSiam), `moco`, `barlow_twins`, `vicreg`, `swav`, `nnclr`: the staples.

Every public name is re-exported here: `kerassl.losses.nt_xent(z1, z2)`. A new
family is one more module and one more import block below.
"""

from kerassl.losses.barlow_twins import barlow_twins, batch_standardize
from kerassl.losses.byol import byol_loss, embedding_std, negative_cosine_similarity, simsiam_loss
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
from kerassl.losses.moco import moco_v2_loss, moco_v3_loss
from kerassl.losses.nnclr import nearest_neighbour, nnclr_loss
from kerassl.losses.swav import sinkhorn_knopp, swav_loss
from kerassl.losses.vicreg import vicreg
from kerassl.losses.distill import dino_loss, entropy
from kerassl.losses.gan import discriminator_loss, generator_loss, sigmoid_cross_entropy
from kerassl.losses.reconstruction import masked_patch_loss, normalize_patches

__all__ = [
    "MASK_VALUE",
    "alignment",
    "barlow_twins",
    "batch_standardize",
    "byol_loss",
    "check_pair",
    "check_rank",
    "check_temperature",
    "clip_accuracy",
    "clip_logits",
    "clip_loss",
    "contrastive_accuracy",
    "dino_loss",
    "discriminator_loss",
    "embedding_std",
    "entropy",
    "generator_loss",
    "l2_normalize",
    "masked_patch_loss",
    "moco_v2_loss",
    "moco_v3_loss",
    "nearest_neighbour",
    "negative_cosine_similarity",
    "nnclr_loss",
    "normalize_patches",
    "nt_xent",
    "sigmoid_cross_entropy",
    "simsiam_loss",
    "sinkhorn_knopp",
    "swav_loss",
    "uniformity",
    "vicreg",
]
