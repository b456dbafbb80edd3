"""Self-supervised methods: one module per method, all on `SSLMethod`."""

from kerassl.methods.autoencoder import Autoencoder
from kerassl.methods.base import SSLMethod
from kerassl.methods.clip import CLIP, ZeroShotClassifier
from kerassl.methods.dino import DINO
from kerassl.methods.gan import GAN
from kerassl.methods.jigsaw import Jigsaw
from kerassl.methods.mae import MAE
from kerassl.methods.resume import backup_and_restore
from kerassl.methods.rotnet import RotNet
from kerassl.methods.simclr import SimCLR

__all__ = [
    "CLIP",
    "DINO",
    "GAN",
    "MAE",
    "Autoencoder",
    "Jigsaw",
    "RotNet",
    "SSLMethod",
    "SimCLR",
    "ZeroShotClassifier",
    "backup_and_restore",
]

# The staples on the two-view base (kerassl/methods/two_view.py).
from kerassl.methods.barlow_twins import BarlowTwins  # noqa: E402
from kerassl.methods.byol import BYOL  # noqa: E402
from kerassl.methods.moco import MoCo  # noqa: E402
from kerassl.methods.nnclr import NNCLR  # noqa: E402
from kerassl.methods.simsiam import SimSiam  # noqa: E402
from kerassl.methods.swav import SwAV  # noqa: E402
from kerassl.methods.vicreg import VICReg  # noqa: E402

__all__ += ["BYOL", "BarlowTwins", "MoCo", "NNCLR", "SimSiam", "SwAV", "VICReg"]
