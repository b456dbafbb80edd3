"""Convert an official checkpoint once into a kerassl preset folder (`kerassl zoo pull NAME --out DIR`).

The folder is an ordinary kerassl preset (config.json, model.weights.h5,
metadata.json with checksums, README.md card): `load_encoder(folder)` loads it
without converting again, and `kerassl zoo push` can re-host it with its card,
which carries the original license (CC-BY-NC-4.0 for MAE, MSN and I-JEPA).
"""

import pathlib

from kerassl.backbones.vit import find_transformer
from kerassl.zoo import folder as zoo_folder
from kerassl.zoo.official import input_contract
from kerassl.zoo.hub import _load_converted, resolve_source
from kerassl.zoo.presets import PRESETS, license_label


def _plain(values):
    """A plain list of floats (a layer's list attributes are Keras-tracked wrappers YAML cannot write)."""
    return None if values is None else [float(v) for v in values]


def _card_extra(entry, where):
    license = license_label(entry) if entry else "see the source repository"
    notes = [f"Converted by kerassl from {where} (weights and license of the original authors: {license})."]
    if entry and entry.get("non_commercial"):
        notes.append("CC-BY-NC-4.0: these weights may be used for non-commercial purposes only.")
    if entry and entry.get("revision_provenance"):
        notes.append(f"Pinned revision: {entry['revision']} ({entry['revision_provenance']}).")
    extra = {"summary": entry.get("description") if entry else None, "notes": " ".join(notes)}
    if entry and entry.get("paper"):
        extra["paper"] = entry["paper"]
    if entry and entry.get("paper_result"):
        extra["training"] = {"paper result": entry["paper_result"]}
    return {key: value for key, value in extra.items() if value}


def pull_official(source, out, revision=None, image_size=None, token=None):
    """Converts an official checkpoint and saves it as a kerassl preset folder.

    Args:
        source: str. An official preset name ("dino_vits16"), "hf://org/repo"
            of a supported transformers repo, or a local snapshot folder.
        out: str or Path. The folder to write (must not exist or be empty).
        revision: str or None. Branch, tag, commit or "refs/pr/N".
        image_size: int or None. Build for this size (positions interpolated).
        token: str or None. Hub token.

    Returns:
        pathlib.Path of the written folder.

    Example:
    ```python
    kerassl.zoo.pull.pull_official("dino_vits16", "dino_vits16_kerassl")
    encoder = kerassl.zoo.load_encoder("dino_vits16_kerassl")
    ```
    """
    if out is None:
        raise ValueError("converting an official checkpoint needs a destination: pass --out DIR.")
    entry = PRESETS.get(source) if isinstance(source, str) else None
    path, where, _ = resolve_source(source, revision, token, allow_patterns=["config.json", "preprocessor_config.json"])
    converter = None
    if entry and entry.get("converter"):
        converter = entry["converter"]
    from kerassl.zoo import convert

    config = convert._read_json(pathlib.Path(path) / "config.json", where)
    module = convert.converter_for(config.get("model_type"), where)
    whole_method = hasattr(module, "method_from_checkpoint")
    model = _load_converted(source, revision, token, path, where, image_size, method=whole_method)
    encoder = model.encoder if whole_method else model
    transformer = find_transformer(encoder)
    contract = input_contract(transformer.image_size[0], _plain(transformer.mean), _plain(transformer.std))
    contract.update(image_size=list(transformer.image_size))
    return zoo_folder.save_preset(
        model,
        out,
        dataset=(entry or {}).get("dataset"),
        license=(entry or {}).get("license", "other"),
        input_contract=contract,
        card_extra=_card_extra(entry, where) | ({"converter": converter} if converter else {}),
    )
