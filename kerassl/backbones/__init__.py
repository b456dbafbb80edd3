"""Encoders: ResNets, a small convnet, Vision Transformers, `wrap`; decoders for images.

Every builder returns a functional `keras.Model` encoder, float images in [0, 1]
of shape (B, H, W, C) in, pooled features (B, D) out, and takes
`input_shape=(height, width, channels)`. `list_backbones()` names them and
`get(name, **kwargs)` builds one; `wrap(model)` turns any other Keras image
model into an encoder.
"""

import fnmatch

from kerassl.backbones import decoders, vit
from kerassl.backbones.convnet import small_convnet
from kerassl.backbones.resnet import (
    AUTO_STEM_MAX_SIZE,
    BN_EPSILON,
    BN_MOMENTUM,
    STEMS,
    resnet18,
    resnet50,
)
from kerassl.backbones.vit import vit_base, vit_small, vit_tiny
from kerassl.backbones.wrap import feature_dim, wrap


class _CallableModule(type(vit)):
    """`kerassl.backbones.vit(...)` builds a ViT, as in 0.1.0, though `vit` is now the module."""

    def __call__(self, *args, **kwargs):
        return self.vit(*args, **kwargs)


vit.__class__ = _CallableModule

# name -> builder; each takes input_shape=(height, width, channels).
BACKBONES = {
    "resnet18": resnet18,
    "resnet50": resnet50,
    "small_convnet": small_convnet,
    "vit": vit.vit,
    "vit_tiny": vit_tiny,
    "vit_small": vit_small,
    "vit_base": vit_base,
}


def list_backbones(pattern="*"):
    """Names accepted by `kerassl.backbones.get`, sorted.

    Args:
        pattern: str. A shell-style pattern on names, e.g. `"vit*"`.

    Example:
    >>> kerassl.backbones.list_backbones()
    ['resnet18', 'resnet50', 'small_convnet', 'vit', 'vit_base', 'vit_small', 'vit_tiny']
    """
    return sorted(name for name in BACKBONES if fnmatch.fnmatch(name, pattern))


def get(name, **kwargs):
    """Builds a backbone by name.

    Args:
        name: str. One of `kerassl.backbones.list_backbones()`.
        **kwargs: passed to the builder, e.g. `input_shape`, `width`.

    Returns:
        A keras.Model encoder.

    Example:
    >>> encoder = kerassl.backbones.get("resnet18", input_shape=(32, 32, 3), width=16)
    """
    if name not in BACKBONES:
        raise ValueError(
            f"Unknown backbone {name!r}; known backbones: {', '.join(list_backbones())}."
        )
    return BACKBONES[name](**kwargs)


__all__ = [
    "AUTO_STEM_MAX_SIZE",
    "BACKBONES",
    "BN_EPSILON",
    "BN_MOMENTUM",
    "STEMS",
    "decoders",
    "feature_dim",
    "get",
    "list_backbones",
    "resnet18",
    "resnet50",
    "small_convnet",
    "vit",
    "vit_base",
    "vit_small",
    "vit_tiny",
    "wrap",
]
