"""The on-disk format of a zoo entry: a folder that is also a Keras preset.

```
config.json           the encoder, as `keras.saving.serialize_keras_object` writes it
model.weights.h5      the encoder's weights
metadata.json         versions, parameter count, input contract, SHA-256 of every file
method/config.json    the whole SSL method (only when saved from a method)
method/model.weights.h5
README.md             the model card (Hub YAML front matter + text)
```

The top level is what keras-hub calls a preset and what `keras.saving.load_model`
reads from a folder, so the encoder loads with plain Keras too. The method lives
in its own sub-folder in the same format rather than in a `.keras` zip: both
halves then load the same way, the Hub lists each file, and the encoder can be
downloaded without the method (`allow_patterns`). The method's weights repeat
the encoder's; that doubles the upload but keeps each half self-contained.
Optimizer state is not saved: a method is reloaded to keep training with a
fresh `compile`.
"""

import datetime
import hashlib
import json
import math
import os
import pathlib
import shutil
import tempfile

import keras
import numpy as np

from kerassl import registry
from kerassl.zoo.errors import (
    ChecksumError,
    NotAKerasslPresetError,
    UnsafePresetError,
    ZooError,
)

FORMAT = "kerassl.preset"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
CARD_FILE = "README.md"
METHOD_DIR = "method"


# ---- what a model is ---------------------------------------------------------------------


def is_method(model):
    """True for an SSL method: a Keras model holding its encoder as `.encoder`.

    Duck-typed rather than `isinstance(model, kerassl.methods.SSLMethod)` so a
    user's own method class (or any wrapper with an encoder) can be published.
    """
    encoder = getattr(model, "encoder", None)
    return isinstance(model, keras.Model) and isinstance(encoder, keras.Model) and encoder is not model


def split_model(model):
    """Returns (encoder, method or None) and checks that both can be saved."""
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"expected a Keras model (an SSL method such as kerassl.SimCLR, or an "
            f"encoder); got {type(model).__name__}."
        )
    method = model if is_method(model) else None
    encoder = model.encoder if method is not None else model
    if not encoder.built:
        raise ValueError(
            f"the encoder '{encoder.name}' is not built, so it has no weights to save. "
            "Call it once on a batch of images (or train the method) first."
        )
    return encoder, method


def encoder_signature(encoder):
    """Input shape, feature size and an architecture fingerprint of an encoder.

    The fingerprint hashes the class and the ordered weight shapes: it is the
    same for two trainings of one architecture (layer names may differ between
    sessions) and differs as soon as a layer, a width or the input changes.
    """
    try:
        input_shape = tuple(encoder.input_shape)
    except (AttributeError, ValueError):
        input_shape = None
    if input_shape is not None and len(input_shape) != 4:
        raise ValueError(
            f"an encoder takes images (batch, height, width, channels); "
            f"'{encoder.name}' takes inputs of shape {input_shape}."
        )
    try:
        output_shape = tuple(encoder.compute_output_shape(input_shape)) if input_shape else None
    except Exception:
        output_shape = None
    if output_shape is None:
        try:
            output_shape = tuple(encoder.output_shape)
        except (AttributeError, ValueError):
            output_shape = None
    if output_shape is not None and len(output_shape) != 2:
        raise ValueError(
            f"an encoder returns one feature vector per image, shape (batch, features); "
            f"'{encoder.name}' returns {output_shape}. Pool it first, e.g. "
            "`kerassl.backbones.wrap(encoder)`."
        )
    shapes = [list(w.shape) for w in encoder.weights]
    fingerprint = hashlib.sha256(
        json.dumps([keras.saving.get_registered_name(type(encoder)), input_shape, shapes]).encode()
    ).hexdigest()
    return {
        "registered_name": keras.saving.get_registered_name(type(encoder)),
        "name": encoder.name,
        "input_shape": list(input_shape[1:]) if input_shape else None,
        "feature_dim": output_shape[-1] if output_shape else None,
        "parameter_count": int(encoder.count_params()),
        "architecture": fingerprint,
    }


def input_contract(encoder, overrides=None):
    """What an encoder expects: image size, channels, value range, mean/std.

    kerassl encoders take float images in [0, 1]; a `Normalization` layer inside
    the model (e.g. `resnet18(normalization=...)`) is reported as mean/std that
    the model applies itself, so the caller never normalizes.
    """
    signature = encoder_signature(encoder)
    shape = signature["input_shape"] or [None, None, None]
    contract = {
        "image_size": shape[:2],
        "channels": shape[2],
        "layout": "channels_last (batch, height, width, channels)",
        "dtype": "float32",
        "value_range": [0.0, 1.0],
        "uint8_input": "divide by 255 first: kerassl.images.to_float_images(images)",
        "mean": None,
        "std": None,
        "normalization": "none",
    }
    for layer in getattr(encoder, "layers", []):
        if isinstance(layer, keras.layers.Normalization):
            config = layer.get_config()
            if config.get("mean") is not None and config.get("variance") is not None:
                contract["mean"] = [float(v) for v in np.ravel(config["mean"])]
                contract["std"] = [float(math.sqrt(v)) for v in np.ravel(config["variance"])]
                contract["normalization"] = "inside the model ((x - mean) / std on [0, 1] inputs)"
            break
    contract.update(overrides or {})
    return contract


def method_summary(method):
    """The method's class and its scalar hyper-parameters (nested models left out)."""
    config = method.get_config()
    hyperparameters = {
        key: value
        for key, value in sorted(config.items())
        if isinstance(value, (int, float, str, bool, type(None)))
        and key not in ("name", "trainable", "dtype")
    }
    return {
        "registered_name": keras.saving.get_registered_name(type(method)),
        "class_name": type(method).__name__,
        "parameter_count": int(method.count_params()),
        "hyperparameters": hyperparameters,
    }


# ---- writing -----------------------------------------------------------------------------


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fresh_copy(model):
    """Rebuilds `model` from its config in safe mode and copies its weights.

    Saving the copy proves, at save time, that the config loads with
    `safe_mode=True` and no custom_objects; it also leaves optimizer state and
    compile settings out of the files.
    """
    config = keras.saving.serialize_keras_object(model)
    config.pop("compile_config", None)
    config_json = json.dumps(config, indent=1)
    try:
        # Deserialization consumes the dict it is given: hand it a copy.
        copy = keras.saving.deserialize_keras_object(json.loads(config_json), safe_mode=True)
    except Exception as error:
        raise ZooError(
            f"'{model.name}' ({type(model).__name__}) cannot be rebuilt from its config in "
            f"safe mode, so nobody could load it from the zoo: {error}. Every layer and model "
            "class must be registered with keras.saving.register_keras_serializable and have "
            "a complete get_config; Lambda layers holding Python code are refused."
        ) from error
    if not copy.built:
        raise ZooError(
            f"'{model.name}' does not build from its config (no build_config); give its class "
            "a build() method or call it on data before saving."
        )
    copy.set_weights(model.get_weights())
    return copy, config_json


def _write_model(model, folder):
    copy, config_json = _fresh_copy(model)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(config_json)
    copy.save_weights(str(folder / WEIGHTS_FILE))


def build_metadata(encoder, method=None, dataset=None, metrics=None, license="apache-2.0", contract=None, extra=None):
    """The metadata.json dict, without the file checksums (added once files exist)."""
    from kerassl import __version__

    signature = encoder_signature(encoder)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": "method" if method is not None else "encoder",
        "keras_version": keras.__version__,
        "kerassl_version": __version__,
        "date_saved": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d@%H:%M:%S"),
        "parameter_count": signature["parameter_count"],
        "encoder": signature,
        "method": method_summary(method) if method is not None else None,
        "input_contract": input_contract(encoder, contract),
        "dataset": dataset,
        "metrics": normalize_metrics(metrics),
        "license": license,
        "extra": dict(extra or {}),
        "files": {},
    }


def normalize_metrics(metrics):
    """{name: value} or {name: {"value", "protocol", ...}} -> {name: {"value", "protocol"}}.

    `None` values are kept and mean "not measured yet"; anything else must be a
    finite number, so a card never shows a made-up or broken figure.
    """
    result = {}
    for name, entry in (metrics or {}).items():
        entry = dict(entry) if isinstance(entry, dict) else {"value": entry}
        value = entry.get("value")
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise TypeError(f"metric '{name}' must be a number or None; got {value!r}.")
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"metric '{name}' is {value}; publish only finite measurements.")
        entry["value"] = value
        entry.setdefault("protocol", None)
        result[str(name)] = entry
    return result


def save_preset(model, directory, dataset=None, metrics=None, license="apache-2.0",
                input_contract=None, card_extra=None, repo_id=None, overwrite=False):
    """Saves an encoder, or an SSL method and its encoder, as a zoo folder.

    The folder is written next to its destination and renamed into place, so a
    crash never leaves a half-written preset. See `kerassl.zoo.folder` for the
    layout; `push_to_hub` uploads exactly this folder.

    Args:
        model: keras.Model. A trained SSL method (e.g. `kerassl.SimCLR`) or a
            bare encoder mapping (B, H, W, C) images in [0, 1] to (B, D).
        directory: str or path. The folder to create.
        dataset: str or None. The pretraining dataset, e.g. "cifar10".
        metrics: dict or None. {name: value} or {name: {"value": v,
            "protocol": "how it was measured"}}; None values mean "not measured".
        license: str. A Hub license id.
        input_contract: dict or None. Overrides of the derived input contract
            (e.g. {"mean": [...], "std": [...]} when normalization is external).
        card_extra: dict or None. Extra card content: "summary", "recipe",
            "evaluation", "paper", "training" (a dict), "notes".
        repo_id: str or None. Used in the card's usage snippet.
        overwrite: bool. Replace an existing non-empty folder.

    Returns:
        pathlib.Path of the folder.

    Example:
    ```python
    kerassl.zoo.save_preset(model, "my_encoder", dataset="cifar10",
                            metrics={"knn_accuracy": 0.81})
    encoder = kerassl.zoo.load_encoder("my_encoder")
    ```
    """
    from kerassl.zoo.card import model_card

    encoder, method = split_model(model)
    directory = pathlib.Path(directory)
    if directory.exists() and any(directory.iterdir()) and not overwrite:
        raise FileExistsError(f"{directory} exists and is not empty; pass overwrite=True to replace it.")
    metadata = build_metadata(encoder, method, dataset, metrics, license, input_contract, card_extra)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; the preset is an ordinary folder
    try:
        _write_model(encoder, staging)
        if method is not None:
            _write_model(method, staging / METHOD_DIR)
        for path in sorted(staging.rglob("*")):
            if path.is_file():
                name = path.relative_to(staging).as_posix()
                metadata["files"][name] = {"sha256": sha256_file(path), "size": path.stat().st_size}
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
        (staging / CARD_FILE).write_text(model_card(metadata, repo_id=repo_id))
        _replace_dir(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def _replace_dir(source, destination):
    """Renames `source` to `destination`, replacing it if it exists."""
    if destination.exists():
        old = pathlib.Path(tempfile.mkdtemp(prefix=f".{destination.name}.old.", dir=destination.parent))
        os.rename(destination, old / "x")
        os.rename(source, destination)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(source, destination)


# ---- reading -----------------------------------------------------------------------------


def read_metadata(folder, where=None):
    """Reads and checks metadata.json; raises NotAKerasslPresetError if absent or foreign."""
    folder = pathlib.Path(folder)
    where = where or str(folder)
    path = folder / METADATA_FILE
    if not path.is_file():
        raise NotAKerasslPresetError(
            f"{where} is not a kerassl encoder: it has no {METADATA_FILE}. kerassl loads folders "
            "written by kerassl.zoo.save_preset or push_to_hub."
        )
    try:
        metadata = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise NotAKerasslPresetError(f"{where}: {METADATA_FILE} is not valid JSON ({error}).") from error
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        hint = ""
        if isinstance(metadata, dict) and "keras_version" in metadata:
            hint = " It looks like a plain Keras save: load it with keras.saving.load_model."
        raise NotAKerasslPresetError(
            f"{where} is not a kerassl encoder: its {METADATA_FILE} has no "
            f"'format': '{FORMAT}' entry.{hint}"
        )
    if int(metadata.get("format_version", 0)) > FORMAT_VERSION:
        raise NotAKerasslPresetError(
            f"{where} was saved in format version {metadata['format_version']} by kerassl "
            f"{metadata.get('kerassl_version')}; this kerassl reads up to version "
            f"{FORMAT_VERSION}. Upgrade kerassl: pip install -U kerassl."
        )
    return metadata


def verify_files(folder, metadata, names, where=None):
    """Checks the SHA-256 of `names` against metadata.json before anything is loaded."""
    folder = pathlib.Path(folder)
    where = where or str(folder)
    problems = []
    for name in names:
        expected = metadata.get("files", {}).get(name)
        path = folder / name
        if expected is None:
            problems.append(f"{name}: not listed in {METADATA_FILE}")
        elif not path.is_file():
            problems.append(f"{name}: missing")
        else:
            actual = sha256_file(path)
            if actual != expected["sha256"]:
                problems.append(
                    f"{name}: sha256 {actual[:12]}... but {METADATA_FILE} says {expected['sha256'][:12]}..."
                )
    if problems:
        raise ChecksumError(
            f"{where} failed its checksum verification, nothing was loaded:\n  - "
            + "\n  - ".join(problems)
            + "\nThe download may be corrupt or the files were edited after saving. Download "
            "again (snapshot_download(..., force_download=True) or delete the entry from the "
            "Hub cache with `hf cache delete`), or re-save the model."
        )


def deserialize_safely(config, where):
    """`deserialize_keras_object` with safe_mode=True and a clear message on refusal."""
    _import_registered_classes()
    try:
        return keras.saving.deserialize_keras_object(config, safe_mode=True)
    except Exception as error:
        message = str(error)
        if "safe_mode" in message or "Lambda" in message:
            raise UnsafePresetError(
                f"{where} contains code that Keras refuses to load in safe mode (for example a "
                "Lambda layer holding a Python function). kerassl always loads with "
                "safe_mode=True because such code runs on your machine. If you wrote this model "
                "yourself, replace the Lambda with a registered layer class and save it again."
            ) from error
        raise NotAKerasslPresetError(f"{where}: the model config cannot be deserialized: {error}") from error


def _import_registered_classes():
    """Makes sure every module that registers a kerassl class is imported.

    The list comes from `kerassl.registry`, which records each class's module
    as it registers; importing `kerassl.zoo` has run `kerassl/__init__.py`, so
    the registry already holds every module of the package.
    """
    import importlib

    for module in registry.registered_modules():
        importlib.import_module(module)


def load_model_folder(folder, metadata, prefix, expected, where):
    """Loads config.json + model.weights.h5 under `prefix`, checked against metadata."""
    folder = pathlib.Path(folder)
    names = [f"{prefix}{CONFIG_FILE}", f"{prefix}{WEIGHTS_FILE}"]
    verify_files(folder, metadata, names, where)
    config = json.loads((folder / names[0]).read_text())
    registered = config.get("registered_name") or config.get("class_name")
    if registered != expected["registered_name"]:
        raise NotAKerasslPresetError(
            f"{where}: {names[0]} holds a {registered} but {METADATA_FILE} announces a "
            f"{expected['registered_name']}; the folder was altered or mixed."
        )
    model = deserialize_safely(config, where)
    if not isinstance(model, keras.Model):
        raise NotAKerasslPresetError(f"{where}: {names[0]} holds a {type(model).__name__}, not a Keras model.")
    try:
        model.load_weights(str(folder / names[1]))
    except Exception as error:
        raise ChecksumError(f"{where}: the weights do not fit the model ({error}).") from error
    return model
