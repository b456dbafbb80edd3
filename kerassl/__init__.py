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

import sys  # noqa: E402

from kerassl import (  # noqa: E402
    augment,
    backbones,
    captions,
    clip_bpe,
    datasets,
    evaluate,
    heads,
    images,
    legacy,
    losses,
    methods,
    registry,
    schedules,
    text,
    viz,
    zoo,
)
from kerassl.backbones import vit  # noqa: E402
from kerassl.evaluate import retrieval  # noqa: E402
from kerassl.losses import clip as losses_clip  # noqa: E402
from kerassl.losses import distill as losses_distill  # noqa: E402

# Modules of 0.1.0 that moved: `import kerassl.vit` and `from kerassl.vit import X`
# keep working.
MOVED_MODULES = {
    "kerassl.vit": vit,
    "kerassl.retrieval": retrieval,
    "kerassl.losses_clip": losses_clip,
    "kerassl.losses_distill": losses_distill,
    "kerassl.viz_attention": viz,  # its attention_maps joined kerassl.viz
}
sys.modules.update(MOVED_MODULES)
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
    backup_and_restore,
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
    "backup_and_restore",
    "captions",
    "clip_bpe",
    "datasets",
    "evaluate",
    "finetune",
    "heads",
    "images",
    "legacy",
    "losses",
    "losses_clip",
    "losses_distill",
    "methods",
    "registry",
    "schedules",
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
