"""Official checkpoints in the `transformers` layout -> kerassl encoders and methods, on load.

The converter is chosen from the repo's config.json `model_type`. Each family
module exposes `MODEL_TYPES`, `encoder_from_checkpoint(config, tensors,
preprocessor, image_size=None)` and, where the repo holds a whole method,
`method_from_checkpoint(...)`. Weights are read into NumPy (`read_checkpoint`):
no torch at run time.

```python
encoder = kerassl.zoo.convert.encoder_from_folder("path/to/facebook-dino-vits16")
```
"""

import importlib
import json
import pathlib

from kerassl.zoo.convert.weights import WEIGHT_FILES, open_checkpoint, read_checkpoint
from kerassl.zoo.errors import ConversionError

CONVERTERS = {
    "vit": "kerassl.zoo.convert.dino",
    "vit_msn": "kerassl.zoo.convert.msn",
    "vit_mae": "kerassl.zoo.convert.mae",
    "dinov2": "kerassl.zoo.convert.dinov2",
    "dinov2_with_registers": "kerassl.zoo.convert.dinov2",
    "ijepa": "kerassl.zoo.convert.ijepa",
    "clip": "kerassl.zoo.convert.clip",
}
CONFIG_FILES = ["config.json", "preprocessor_config.json"]


def _read_json(path, where):
    try:
        return json.loads(pathlib.Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConversionError(f"{where}: {pathlib.Path(path).name} is not readable JSON: {error}") from error


def is_transformers_folder(folder):
    """True for a folder with a config.json naming a `model_type` and no kerassl metadata.json."""
    folder = pathlib.Path(folder)
    if not (folder / "config.json").is_file() or (folder / "metadata.json").is_file():
        return False
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(config, dict) and "model_type" in config


def converter_for(model_type, where="checkpoint"):
    """The converter module registered for a config's `model_type`."""
    if model_type not in CONVERTERS:
        raise ConversionError(
            f"{where}: config.json has model_type {model_type!r}, which kerassl cannot convert. "
            f"Supported: {', '.join(sorted(CONVERTERS))}."
        )
    return importlib.import_module(CONVERTERS[model_type])


def read_folder(folder, where=None):
    """(config, tensors, preprocessor or None) of a transformers repo snapshot."""
    folder = pathlib.Path(folder)
    where = where or str(folder)
    config = _read_json(folder / "config.json", where)
    preprocessor_path = folder / "preprocessor_config.json"
    preprocessor = _read_json(preprocessor_path, where) if preprocessor_path.is_file() else None
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise ConversionError(f"{where} holds no weights: expected one of {', '.join(WEIGHT_FILES)}.")
    return config, open_checkpoint(folder), preprocessor


def encoder_from_folder(folder, image_size=None, where=None):
    """Converts a transformers repo snapshot into a kerassl encoder.

    Args:
        folder: str or Path. Holds config.json, model.safetensors or
            pytorch_model.bin, and (optionally) preprocessor_config.json.
        image_size: int, (height, width) or None. None: the repo's crop size.
        where: str or None. Names the source in error messages.

    Returns:
        A keras.Model: images (B, H, W, 3), floats in [0, 1] or 0-255 values,
        -> features (B, D); the checkpoint's mean/std are applied inside.

    Example:
    ```python
    encoder = kerassl.zoo.convert.encoder_from_folder("snapshot/", image_size=96)
    ```
    """
    where = where or str(folder)
    config = _read_json(pathlib.Path(folder) / "config.json", where)
    module = converter_for(config.get("model_type"), where)
    config, tensors, preprocessor = read_folder(folder, where)
    return module.encoder_from_checkpoint(config, tensors, preprocessor, image_size=image_size, where=where)


def method_from_folder(folder, image_size=None, where=None):
    """Converts a transformers repo snapshot into a whole kerassl method (MAE with its decoder)."""
    where = where or str(folder)
    config = _read_json(pathlib.Path(folder) / "config.json", where)
    module = converter_for(config.get("model_type"), where)
    if not hasattr(module, "method_from_checkpoint"):
        raise ConversionError(
            f"{where}: a {config.get('model_type')!r} repo holds only an encoder, not a whole method; "
            "use kerassl.zoo.load_encoder."
        )
    config, tensors, preprocessor = read_folder(folder, where)
    extra = {}
    if hasattr(module, "TOKENIZER_FILES"):  # CLIP: the repo's vocab.json and merges.txt
        extra["tokenizer_files"] = {name: pathlib.Path(folder) / name for name in module.TOKENIZER_FILES}
    return module.method_from_checkpoint(
        config, tensors, preprocessor, image_size=image_size, where=where, **extra
    )


def method_files(folder):
    """Repo files a family's whole method needs beyond config, preprocessor and weights."""
    config = _read_json(pathlib.Path(folder) / "config.json", str(folder))
    return list(getattr(converter_for(config.get("model_type"), str(folder)), "TOKENIZER_FILES", ()))


__all__ = ["CONVERTERS", "encoder_from_folder", "method_from_folder", "read_checkpoint", "converter_for"]
