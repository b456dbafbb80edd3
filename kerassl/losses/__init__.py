"""Losses as pure `keras.ops` functions, one module per family.

`kerassl.losses.nt_xent(z1, z2)` and the other public names stay here; each
family lives in its own module and is re-exported below.
"""

from kerassl.losses.contrastive import (
    MASK_VALUE,
    alignment,
    check_pair,
    check_temperature,
    contrastive_accuracy,
    l2_normalize,
    nt_xent,
    uniformity,
)

__all__ = [
    "MASK_VALUE",
    "alignment",
    "check_pair",
    "check_temperature",
    "contrastive_accuracy",
    "l2_normalize",
    "nt_xent",
    "uniformity",
]
