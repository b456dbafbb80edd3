"""kerassl: self-supervised representation learning for images in Keras 3.

Example:
```python
import kerassl
model = kerassl.SimCLR(kerassl.backbones.resnet18(input_shape=(32, 32, 3)))
model.compile(optimizer="adam")
model.fit(images, epochs=10, batch_size=256)
clf = kerassl.finetune(model.encoder, (x_few, y_few), num_classes=10)
```
"""

__version__ = "0.1.0"

from kerassl import (  # noqa: E402
    augment,
    backbones,
    captions,
    datasets,
    evaluate,
    heads,
    images,
    losses,
    losses_clip,
    losses_distill,
    methods,
    retrieval,
    text,
    vit,
    viz,
    zoo,
)
from kerassl.finetune import finetune  # noqa: E402
from kerassl.methods import (  # noqa: E402
    CLIP,
    DINO,
    GAN,
    MAE,
    Autoencoder,
    Jigsaw,
    RotNet,
    SimCLR,
    SSLMethod,
)

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
    "augment",
    "backbones",
    "captions",
    "datasets",
    "evaluate",
    "finetune",
    "heads",
    "images",
    "losses",
    "losses_clip",
    "losses_distill",
    "methods",
    "retrieval",
    "text",
    "vit",
    "viz",
    "zoo",
]

# The staples and their shared state (appended; see kerassl/methods/two_view.py).
from kerassl import teacher  # noqa: E402
from kerassl.methods import BYOL, NNCLR, VICReg, BarlowTwins, MoCo, SimSiam, SwAV  # noqa: E402

__all__ += ["BYOL", "BarlowTwins", "MoCo", "NNCLR", "SimSiam", "SwAV", "VICReg", "teacher"]
