"""Every image method's tiny test model, by name, for tests that sweep all methods.

`METHODS[name] = (make, input_shape)`: `make(encoder_factory)` builds the method on
`encoder_factory()` (a tiny encoder of `input_shape`, three channels) or on its own
encoder where the method needs one (a ViT for DINO's and MAE's entries, a free-size
encoder for Jigsaw's puzzles). CLIP (captions) and the GAN (its own generator) are
left out: they train on other inputs. Used by tests/distributed/test_data_parallel.py.
"""

from tests.test_autoencoder import make_autoencoder
from tests.test_dino import make_dino, tiny_vit
from tests.test_jigsaw import free_size_encoder, make_jigsaw
from tests.test_mae import make_mae
from tests.test_rotnet import make_rotnet
from tests.test_simclr import make_simclr
from tests.test_staples import METHODS as STAPLES

METHODS = {
    "simclr": (lambda enc: make_simclr(enc(), num_classes=3), (16, 16, 3)),
    "dino_convnet": (lambda enc: make_dino(enc()), (16, 16, 3)),
    "dino_vit": (lambda enc: make_dino(tiny_vit()), (16, 16, 3)),
    "mae": (lambda enc: make_mae(tiny_vit()), (16, 16, 3)),
    "jigsaw": (lambda enc: make_jigsaw(free_size_encoder()), (24, 24, 3)),
    "rotnet": (lambda enc: make_rotnet(enc()), (16, 16, 3)),
    "autoencoder": (lambda enc: make_autoencoder(enc()), (16, 16, 3)),
}
# The staples: a teacher (BYOL, MoCo), a queue (MoCo v2, NNCLR, SwAV), local crops (SwAV).
METHODS.update(
    {name: (lambda enc, make=make: make(enc(), num_classes=3), (16, 16, 3)) for name, (make, _) in STAPLES.items()}
)
