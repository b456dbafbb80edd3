"""Encoders: ResNets, a small convnet, Vision Transformers, and `wrap`."""

from kerassl.backbones import vit
from kerassl.backbones.resnet import (
    AUTO_STEM_MAX_SIZE,
    BN_EPSILON,
    BN_MOMENTUM,
    STEMS,
    feature_dim,
    get,
    list_backbones,
    resnet18,
    resnet50,
    small_convnet,
    wrap,
)
from kerassl.backbones.vit import vit_base, vit_small, vit_tiny


class _CallableModule(type(vit)):
    """`kerassl.backbones.vit(...)` builds a ViT, as in 0.1.0, though `vit` is now the module."""

    def __call__(self, *args, **kwargs):
        return self.vit(*args, **kwargs)


vit.__class__ = _CallableModule

__all__ = [
    "AUTO_STEM_MAX_SIZE",
    "BN_EPSILON",
    "BN_MOMENTUM",
    "STEMS",
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
