"""Self-supervised methods: one module per method, all on `SSLMethod`."""

from kerassl.methods.base import SSLMethod
from kerassl.methods.simclr import SimCLR

__all__ = ["SSLMethod", "SimCLR"]
