"""Self-supervised methods: one module per method, all on `SSLMethod`."""

from kerassl.methods.base import SSLMethod
from kerassl.methods.clip import CLIP, ZeroShotClassifier
from kerassl.methods.mae import MAE
from kerassl.methods.simclr import SimCLR

__all__ = ["CLIP", "MAE", "SSLMethod", "SimCLR", "ZeroShotClassifier"]
