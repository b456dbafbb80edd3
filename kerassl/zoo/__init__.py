"""The zoo: publish pretrained encoders to the Hugging Face Hub and load them back.

```python
kerassl.zoo.push_to_hub(model, "me/simclr-r18-cifar10", metrics={"knn_accuracy": 0.87},
                        dataset="cifar10")
encoder = kerassl.zoo.load_encoder("hf://me/simclr-r18-cifar10")         # latest
encoder = kerassl.zoo.load_encoder("hf://me/simclr-r18-cifar10@v1.0")    # pinned
encoder = kerassl.zoo.load_encoder("simclr_resnet18_cifar10")            # a preset
model = kerassl.zoo.load_method("hf://me/simclr-r18-cifar10")            # keep training
kerassl.zoo.list_presets("*simclr*")
```
"""

from kerassl.zoo.card import model_card, parse_card
from kerassl.zoo.cli import zoo_cli_main
from kerassl.zoo.errors import (
    ArchitectureMismatchError,
    ChecksumError,
    HubAccessError,
    LocalPathNotFoundError,
    NotAKerasslPresetError,
    PresetNotFoundError,
    UnsafePresetError,
    ZooError,
)
from kerassl.zoo.folder import save_preset
from kerassl.zoo.hub import load_encoder, load_method, push_to_hub
from kerassl.zoo.presets import PRESETS, get_preset, list_presets, register_preset

__all__ = [
    "PRESETS",
    "ArchitectureMismatchError",
    "ChecksumError",
    "HubAccessError",
    "LocalPathNotFoundError",
    "NotAKerasslPresetError",
    "PresetNotFoundError",
    "UnsafePresetError",
    "ZooError",
    "get_preset",
    "list_presets",
    "load_encoder",
    "load_method",
    "model_card",
    "parse_card",
    "push_to_hub",
    "register_preset",
    "save_preset",
    "zoo_cli_main",
]
