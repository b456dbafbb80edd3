"""The registry of published encoders: plain data, in the style of timm's pretrained configs.

Each entry says where the weights live (Hub id and pinned revision) and what
they are: method, backbone, pretraining data, input contract, measured metrics
with their protocol, license and paper. The `zoo/<name>/` folder of the
repository holds the recipe that produced the entry and its metrics JSON.

An entry with `"published": False` is registered so its name, recipe and
contract are known, but its weights have not been uploaded yet: loading it
fails with a clear message rather than silently falling back to anything.
"""

import copy
import difflib
import fnmatch

from kerassl.zoo.errors import PresetNotFoundError
from kerassl.zoo.official import OFFICIAL_PRESETS

CIFAR10_CONTRACT = {
    "image_size": [32, 32],
    "channels": 3,
    "layout": "channels_last (batch, height, width, channels)",
    "dtype": "float32",
    "value_range": [0.0, 1.0],
    "uint8_input": "divide by 255 first: kerassl.images.to_float_images(images)",
    "mean": None,
    "std": None,
    "normalization": "none",
}

KNN_PROTOCOL = (
    "weighted kNN (k=200, T=0.1, cosine) on frozen encoder features; bank: the "
    "50,000 CIFAR-10 training images, queries: the 10,000 test images"
)

PRESETS = {
    "simclr_resnet18_cifar10": {
        "name": "simclr_resnet18_cifar10",
        "description": "SimCLR ResNet-18 (CIFAR stem: 3x3 conv, no max-pool) pretrained on CIFAR-10 without labels.",
        "hub_id": "kerassl/simclr-resnet18-cifar10",
        "revision": None,  # pinned to a tag or commit once published
        "published": False,
        "method": "SimCLR",
        "backbone": "resnet18",
        "backbone_kwargs": {"input_shape": [32, 32, 3], "stem": "cifar"},
        "feature_dim": 512,
        "dataset": "cifar10",
        "input_contract": CIFAR10_CONTRACT,
        "metrics": {"knn_accuracy": {"value": None, "protocol": KNN_PROTOCOL}},
        "license": "apache-2.0",
        "paper": "https://arxiv.org/abs/2002.05709",
        "recipe": "zoo/simclr_resnet18_cifar10",
    },
}

# The authors' own checkpoints, converted on load (kerassl/zoo/official.py).
PRESETS.update(OFFICIAL_PRESETS)


def list_presets(pattern="*", published_only=False, details=False):
    """Names of registered presets matching a shell-style pattern.

    Args:
        pattern: str. An `fnmatch` pattern, case-insensitive, e.g. "*dino*".
        published_only: bool. Leave out entries whose weights are not on the Hub yet.
        details: bool. Return (name, license, description) tuples instead of
            names, so non-commercial licenses (MAE, MSN, I-JEPA: CC-BY-NC-4.0)
            are seen before anything is downloaded.

    Returns:
        Sorted list of preset names (or tuples with `details=True`).

    Example:
    >>> kerassl.zoo.list_presets("simclr*")
    ['simclr_resnet18_cifar10']
    """
    pattern = pattern.lower()
    names = sorted(
        name
        for name, entry in PRESETS.items()
        if fnmatch.fnmatchcase(name.lower(), pattern) and (entry.get("published") or not published_only)
    )
    if details:
        return [(name, license_label(PRESETS[name]), PRESETS[name].get("description", "")) for name in names]
    return names


def license_label(entry):
    """The entry's license id, flagged when it forbids commercial use."""
    license = entry.get("license") or "unknown"
    return f"{license} (non-commercial)" if "-nc" in license.lower() else license


def get_preset(name):
    """A copy of a preset's registry entry.

    Args:
        name: str. A name from `list_presets()`.

    Returns:
        dict with keys name, description, hub_id, revision, published, method,
        backbone, dataset, input_contract, metrics, license, paper, recipe.

    Example:
    >>> kerassl.zoo.get_preset("simclr_resnet18_cifar10")["hub_id"]
    'kerassl/simclr-resnet18-cifar10'
    """
    if name not in PRESETS:
        close = difflib.get_close_matches(str(name), list(PRESETS), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise PresetNotFoundError(
            f"no preset named {name!r}.{hint} Known presets: {', '.join(list_presets()) or 'none'} "
            "(see kerassl.zoo.list_presets()). To load from the Hub use 'hf://org/repo'."
        )
    return copy.deepcopy(PRESETS[name])


def register_preset(name, hub_id, revision=None, published=True, **fields):
    """Adds (or replaces) a registry entry, e.g. for an organization's own zoo.

    Args:
        name: str. The preset name users will pass to `load_encoder`.
        hub_id: str. "org/repo" on the Hub.
        revision: str or None. Tag, branch or commit to pin.
        published: bool. Whether the weights are on the Hub.
        **fields: the other registry fields (method, backbone, dataset,
            input_contract, metrics, license, paper, description, recipe).

    Example:
    ```python
    kerassl.zoo.register_preset("acme_dino_vits", "acme/dino-vits", revision="v1.0",
                                method="DINO", backbone="vit_small", dataset="acme-photos")
    ```
    """
    if not isinstance(hub_id, str) or hub_id.count("/") != 1:
        raise ValueError(f"hub_id must look like 'org/repo'; got {hub_id!r}.")
    PRESETS[name] = {"name": name, "hub_id": hub_id, "revision": revision, "published": published, **fields}
    return copy.deepcopy(PRESETS[name])
