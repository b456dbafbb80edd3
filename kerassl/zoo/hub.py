"""Publish encoders to the Hugging Face Hub and load them back from anywhere.

Everything goes through the real `huggingface_hub` client: `create_repo` and
one `upload_folder` commit to publish, `snapshot_download` to fetch (Hub cache,
resumable, works offline from the cache with `HF_HUB_OFFLINE=1`). The client's
exceptions are translated into `kerassl.zoo` errors that say what to do.
"""

import json
import os
import pathlib
import re
import tempfile
import urllib.parse

import keras

from kerassl.zoo import convert
from kerassl.zoo import folder as zoo_folder
from kerassl.zoo.errors import (
    ArchitectureMismatchError,
    ChecksumError,
    HubAccessError,
    NotAKerasslPresetError,
    LocalPathNotFoundError,
    PresetNotFoundError,
    UnsafePresetError,
    ZooError,
)
from kerassl.zoo.presets import PRESETS, get_preset

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
# Files a push rewrites; anything else a user added to the repo is kept.
OWNED_PATTERNS = ["method/*"]
ENCODER_FILES = ["config.json", "model.weights.h5", "metadata.json", "README.md"]
# A transformers repo (config.json with a model_type) is converted on load; its weights are
# fetched separately so that only one of model.safetensors / pytorch_model.bin is downloaded.
CONVERSION_FILES = ["preprocessor_config.json"]


def parse_hf_source(source):
    """'hf://org/repo[@revision]' -> (repo_id, revision or None)."""
    body = source[len("hf://") :]
    repo_id, _, revision = body.partition("@")
    repo_id = repo_id.strip("/")
    if not REPO_ID.match(repo_id):
        raise ValueError(
            f"{source!r} is not a Hub source: expected 'hf://org/repo' or "
            "'hf://org/repo@revision' (a branch, tag or commit)."
        )
    return repo_id, revision or None


def _check_repo_id(repo_id):
    if repo_id.startswith("hf://"):
        repo_id, revision = parse_hf_source(repo_id)
        if revision:
            raise ValueError("give the branch to push to as revision=..., not in the repo id.")
    if not REPO_ID.match(repo_id):
        raise ValueError(f"repo_id must look like 'org/repo' (or 'user/repo'); got {repo_id!r}.")
    return repo_id


def _endpoint():
    from huggingface_hub import constants

    return constants.ENDPOINT


def _available_refs(api, repo_id, token):
    try:
        refs = api.list_repo_refs(repo_id, token=token)
    except Exception:
        return ""
    branches = ", ".join(ref.name for ref in refs.branches) or "none"
    tags = ", ".join(ref.name for ref in refs.tags) or "none"
    return f" Branches: {branches}; tags: {tags}."


def download(repo_id, revision=None, token=None, allow_patterns=None, force_download=False):
    """Fetches a repo snapshot into the Hub cache and returns its local folder.

    Args:
        repo_id: str. "org/repo".
        revision: str or None. Branch, tag or commit; None is "main".
        token: str, bool or None. None uses HF_TOKEN or the saved login.
        allow_patterns: list of str or None. Download only matching files.
        force_download: bool. Fetch every file again even if it is cached.

    Returns:
        str: the snapshot folder (read-only; inside the Hub cache).
    """
    import huggingface_hub
    from huggingface_hub import errors as hf_errors

    from kerassl import __version__

    where = f"hf://{repo_id}" + (f"@{revision}" if revision else "")
    try:
        return huggingface_hub.snapshot_download(
            repo_id,
            revision=revision,
            token=token,
            allow_patterns=allow_patterns,
            force_download=bool(force_download),
            library_name="kerassl",
            library_version=__version__,
        )
    except hf_errors.RevisionNotFoundError as error:
        refs = _available_refs(huggingface_hub.HfApi(), repo_id, token)
        raise HubAccessError(
            f"{where}: the repository exists but has no revision {revision!r}.{refs}"
        ) from error
    except hf_errors.RepositoryNotFoundError as error:
        raise HubAccessError(
            f"{where}: no such repository on {_endpoint()}, or it is private and no valid token "
            "was sent. Check the name; for a private repo pass token=... or log in "
            "(`hf auth login`, or set HF_TOKEN)."
        ) from error
    except (hf_errors.LocalEntryNotFoundError, hf_errors.OfflineModeIsEnabled) as error:
        offline = huggingface_hub.constants.HF_HUB_OFFLINE
        reason = "HF_HUB_OFFLINE=1 is set" if offline else f"the Hub at {_endpoint()} could not be reached"
        raise HubAccessError(
            f"{where}: {reason} and this revision is not in the local Hub cache "
            f"({huggingface_hub.constants.HF_HUB_CACHE}). Download it once with network access; "
            "afterwards it loads offline."
        ) from error
    except hf_errors.HfHubHTTPError as error:
        raise HubAccessError(f"{where}: the Hub answered with an error: {error}") from error
    except Exception as error:  # dropped connections, short or inconsistent files
        if not _is_transfer_error(error):
            raise
        raise HubAccessError(
            f"{where}: downloading {_failed_file(error)} failed: {type(error).__name__}: {error}. "
            "The connection dropped or the file arrived incomplete; nothing broken was kept "
            "for loading. Run the load again (downloads resume); if it keeps failing, pass "
            "force_download=True, check the network or proxy, or set HF_HUB_OFFLINE=1 to use "
            "the cache only."
        ) from error


HTTP_CLIENT_PACKAGES = ("httpx", "httpx2", "httpcore", "httpcore2", "h11")  # huggingface_hub's client


def _is_transfer_error(error):
    """A dropped connection or an inconsistent file (huggingface_hub raises OSError for those)."""
    if isinstance(error, (FileNotFoundError, PermissionError)):
        return False
    return isinstance(error, OSError) or any(
        cls.__module__.split(".")[0] in HTTP_CLIENT_PACKAGES for cls in type(error).__mro__
    )


def _in_chain(error, predicate):
    """The first exception in `error`'s chain of causes that `predicate` accepts, or None."""
    seen = set()
    while error is not None and id(error) not in seen:
        if predicate(error):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _failed_file(error):
    """The file a failed download was fetching, from the request URL or the message.

    A regular file comes from `.../resolve/{revision}/{path}`; an LFS file from
    the URL the Hub redirected to (its CDN), which names the file only in its
    `response-content-disposition` query.
    """
    request = getattr(error, "_request", None) or getattr(error, "request_info", None)
    try:
        request = request or error.request  # httpx errors raise without a request
    except (AttributeError, RuntimeError):
        request = None
    url = str(getattr(request, "url", "") or "")
    if "/resolve/" in url:
        return "/".join(url.split("/resolve/", 1)[1].split("?")[0].split("/")[1:])
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    disposition = query.get("response-content-disposition", [""])[0]
    named = re.search(r'filename="([^"]+)"', disposition)
    if named:
        return named.group(1)
    match = re.search(r"\(([^()]+)\)\.?\s*$", str(error))
    return match.group(1) if match else "a file"


def resolve_source(source, revision=None, token=None, allow_patterns=None, force_download=False):
    """Turns a source into (local path, description, preset entry or None)."""
    source = os.fspath(source) if isinstance(source, os.PathLike) else source
    if not isinstance(source, str) or not source:
        raise TypeError(f"source must be a preset name, 'hf://org/repo', a folder or a .keras file; got {source!r}.")
    if source.startswith("hf://"):
        repo_id, pinned = parse_hf_source(source)
        if pinned and revision and pinned != revision:
            raise ValueError(f"{source!r} pins revision {pinned!r} but revision={revision!r} was also given.")
        path = download(repo_id, pinned or revision, token, allow_patterns, force_download)
        return path, f"hf://{repo_id}@{pinned or revision or 'main'}", None
    path = pathlib.Path(source).expanduser()
    if path.is_dir():
        return str(path), str(path), None
    if path.suffix == ".keras":
        if not path.is_file():
            raise LocalPathNotFoundError(f"the file {path} does not exist ({path.resolve()}).")
        return str(path), str(path), None
    if _looks_like_a_path(source) and not path.exists() and source not in PRESETS:
        raise LocalPathNotFoundError(
            f"the local folder {source!r} does not exist ({path.resolve()}). Check the path; "
            "for a preset use its name (kerassl.zoo.list_presets()), for the Hub 'hf://org/repo'."
        )
    if source in PRESETS:
        entry = get_preset(source)
        try:
            local, where, _ = resolve_source(
                f"hf://{entry['hub_id']}", revision or entry.get("revision"), token, allow_patterns,
                force_download,
            )
        except HubAccessError as error:
            if entry.get("published", True):
                raise
            raise HubAccessError(
                f"preset {source!r} is registered but its weights are not published yet "
                f"(hub id {entry['hub_id']}). Train it yourself with the recipe in "
                f"{entry.get('recipe', 'zoo/')} (zoo/rebuild.py), or pick a published preset: "
                f"kerassl.zoo.list_presets(published_only=True). Hub said: {error}"
            ) from error
        return local, f"preset {source!r} ({where})", entry
    if "/" in source and not path.exists() and REPO_ID.match(source):
        raise PresetNotFoundError(
            f"{source!r} is neither a preset nor an existing folder. For a Hub repository write "
            f"'hf://{source}'."
        )
    if path.exists():
        raise NotAKerasslPresetError(f"{path} is a file but not a .keras file; expected a folder or a .keras file.")
    get_preset(source)  # raises PresetNotFoundError with suggestions
    raise AssertionError("unreachable")


def _looks_like_a_path(source):
    """./x, ../x, /x, ~/x, x/ or a Windows path: meant as a local folder, not a preset name."""
    return source.startswith((".", "/", "~")) or source.endswith(("/", os.sep)) or (
        os.sep != "/" and os.sep in source
    )


def _load_keras_file(path):
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:
        message = str(error)
        if "safe_mode" in message or "Lambda" in message:
            raise UnsafePresetError(
                f"{path} contains code that Keras refuses to load in safe mode (for example a "
                "Lambda layer holding a Python function). kerassl always loads with "
                "safe_mode=True because such code would run on your machine. If you wrote this "
                "model yourself, replace the Lambda with a registered layer class and save again."
            ) from error
        raise NotAKerasslPresetError(f"{path} could not be loaded as a Keras model: {error}") from error


def _check_encoder(model, where):
    if not isinstance(model, keras.Model):
        raise NotAKerasslPresetError(f"{where} holds a {type(model).__name__}, not a Keras model.")
    try:
        zoo_folder.encoder_signature(model)
    except ValueError as error:
        raise NotAKerasslPresetError(f"{where} is not a kerassl encoder: {error}") from error
    return model


def _load_converted(source, revision, token, path, where, image_size, method, force_download=False):
    """Converts a transformers repo (official checkpoints) into a kerassl encoder or method."""
    if not os.path.isdir(os.fspath(source)):
        for name in convert.WEIGHT_FILES:  # safetensors first; the .bin only where it is all there is
            if not os.path.isfile(os.path.join(path, name)):
                path, _, _ = resolve_source(source, revision, token, [name], force_download)
            if os.path.isfile(os.path.join(path, name)):
                break
    if method:
        extra = convert.method_files(path)  # CLIP: its tokenizer files
        if extra and not os.path.isdir(os.fspath(source)):
            path, _, _ = resolve_source(source, revision, token, extra, force_download)
        return convert.method_from_folder(path, image_size=image_size, where=where)
    return convert.encoder_from_folder(path, image_size=image_size, where=where)


def _is_converted_source(source, revision, token):
    """Whether a source is a transformers repo, read from its config.json alone."""
    if isinstance(source, str) and source in PRESETS and PRESETS[source].get("converter"):
        return True
    if isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
        return convert.is_transformers_folder(source)
    if isinstance(source, str) and source.startswith("hf://"):
        path, _, _ = resolve_source(source, revision, token, allow_patterns=["config.json", "metadata.json"])
        return convert.is_transformers_folder(path)
    return False


def load_encoder(source, revision=None, trainable=True, token=None, image_size=None, force_download=False):
    """Loads a pretrained encoder: images (B, H, W, C) in [0, 1] -> features (B, D).

    Checksums are verified before anything is deserialized, the config is
    deserialized with `safe_mode=True`, and the class is checked against
    metadata.json.

    Args:
        source: str. A registered preset name (see `list_presets()`),
            'hf://org/repo' or 'hf://org/repo@revision', a local folder written
            by `save_preset`, or a `.keras` file (an encoder or a method).
        revision: str or None. Branch, tag or commit for Hub sources.
        trainable: bool. Set to False to freeze the encoder (linear probing).
        token: str, bool or None. Hub token; None uses HF_TOKEN or the login.
        image_size: int, (height, width) or None. Only for official
            checkpoints in the transformers layout (a repo whose config.json
            has a `model_type`, e.g. "hf://facebook/dino-vits16" or the preset
            "dino_vits16"), which are converted on load: the size to build
            for, position embeddings interpolated as transformers'
            `interpolate_pos_encoding=True` does. None: the repo's crop size.
        force_download: bool. Download Hub files again even if cached. A
            file that fails its checksum is downloaded once more anyway
            before `ChecksumError`.

    Returns:
        keras.Model: the encoder. A converted one takes floats in [0, 1] or
        0-255 images and applies the checkpoint's mean/std itself.

    Example:
    ```python
    encoder = kerassl.zoo.load_encoder("hf://me/simclr-r18-cifar10@v1.0", trainable=False)
    features = encoder.predict(kerassl.images.to_float_images(images))
    ```
    """
    return _retry_on_checksum(_load_encoder, source, revision, token, force_download, trainable, image_size)


def _retry_on_checksum(load, source, revision, token, force_download, *args):
    """Loads; a Hub file that fails its SHA-256 is fetched afresh once before the error stands."""
    try:
        return load(source, revision, token, force_download, *args)
    except ChecksumError as error:
        if force_download or not _from_hub(source):
            raise
        try:
            return load(source, revision, token, True, *args)
        except ChecksumError as again:
            raise ChecksumError(
                f"{again} It failed again after a fresh download, so the repository itself "
                "holds files that do not match its metadata.json: ask its owner to push again, "
                "or pin an earlier revision (revision=...)."
            ) from error


def _from_hub(source):
    return isinstance(source, str) and (source.startswith("hf://") or source in PRESETS)


def _load_encoder(source, revision, token, force_download, trainable, image_size):
    # The encoder alone: a method's sub-folder is not downloaded.
    path, where, _ = resolve_source(
        source, revision, token, ENCODER_FILES + CONVERSION_FILES, force_download
    )
    if convert.is_transformers_folder(path):
        encoder = _load_converted(source, revision, token, path, where, image_size, method=False,
                                  force_download=force_download)
    elif image_size is not None:
        raise ValueError(
            f"image_size= applies to official checkpoints converted on load; {where} is a kerassl "
            "preset, whose encoder already takes other sizes (multiples of its patch size for a ViT)."
        )
    elif path.endswith(".keras") and os.path.isfile(path):
        model = _load_keras_file(path)
        encoder = model.encoder if zoo_folder.is_method(model) else model
        encoder = _check_encoder(encoder, where)
    else:
        metadata = zoo_folder.read_metadata(path, where)
        encoder = zoo_folder.load_model_folder(path, metadata, "", metadata["encoder"], where)
        encoder = _check_encoder(encoder, where)
        if zoo_folder.encoder_signature(encoder)["architecture"] != metadata["encoder"]["architecture"]:
            raise NotAKerasslPresetError(f"{where}: the loaded encoder's architecture does not match metadata.json.")
    encoder.trainable = bool(trainable)
    return encoder


def load_method(source, revision=None, token=None, image_size=None, force_download=False):
    """Loads the whole SSL method (encoder, heads, settings) to keep training.

    Args:
        source: str. As for `load_encoder`; the entry must have been saved
            from a method (a `method/` folder, or a `.keras` file of a method).
        revision: str or None. Branch, tag or commit for Hub sources.
        token: str, bool or None. Hub token; None uses HF_TOKEN or the login.
        image_size: int, (height, width) or None. For official checkpoints
            converted on load (e.g. "mae_vitb16" -> a `kerassl.MAE` with the
            official decoder); see `load_encoder`.
        force_download: bool. As for `load_encoder`.

    Returns:
        The method (e.g. a `kerassl.SimCLR`), uncompiled: call `compile` again.

    Example:
    ```python
    model = kerassl.zoo.load_method("hf://me/simclr-r18-cifar10")
    model.compile(optimizer="adam")
    model.fit(more_images, epochs=10)
    ```
    """
    return _retry_on_checksum(_load_method, source, revision, token, force_download, image_size)


def _load_method(source, revision, token, force_download, image_size):
    if _is_converted_source(source, revision, token):
        path, where, _ = resolve_source(
            source, revision, token, ENCODER_FILES + CONVERSION_FILES, force_download
        )
        return _load_converted(source, revision, token, path, where, image_size, method=True,
                               force_download=force_download)
    if image_size is not None:
        raise ValueError("image_size= applies to official checkpoints converted on load, not to kerassl presets.")
    path, where, _ = resolve_source(source, revision, token, force_download=force_download)
    if path.endswith(".keras") and os.path.isfile(path):
        model = _load_keras_file(path)
        if not zoo_folder.is_method(model):
            raise NotAKerasslPresetError(
                f"{where} holds a bare encoder, not an SSL method; use kerassl.zoo.load_encoder."
            )
        return model
    metadata = zoo_folder.read_metadata(path, where)
    if not metadata.get("method"):
        raise NotAKerasslPresetError(
            f"{where} holds only an encoder (it was published without its method); use "
            "kerassl.zoo.load_encoder, or push the trained method to publish both."
        )
    method = zoo_folder.load_model_folder(path, metadata, f"{zoo_folder.METHOD_DIR}/", metadata["method"], where)
    if not zoo_folder.is_method(method):
        raise NotAKerasslPresetError(f"{where}: method/config.json holds a model without an .encoder.")
    return method


def _existing_metadata(api, repo_id, revision, token):
    """(head commit sha, metadata dict or None, other files) of the target branch, or None if absent."""
    from huggingface_hub import errors as hf_errors

    try:
        info = api.repo_info(repo_id, revision=revision, token=token, files_metadata=False)
    except hf_errors.RevisionNotFoundError:
        return None
    files = [s.rfilename for s in (info.siblings or [])]
    metadata = None
    if zoo_folder.METADATA_FILE in files:
        local = api.hf_hub_download(repo_id, zoo_folder.METADATA_FILE, revision=info.sha, token=token)
        try:
            metadata = json.loads(pathlib.Path(local).read_text())
        except (UnicodeDecodeError, json.JSONDecodeError):
            metadata = {}
    others = [f for f in files if f not in (".gitattributes", "README.md")]
    return info.sha, metadata, others


def _check_overwrite(repo_id, existing, new, overwrite):
    if existing is None or overwrite:
        return
    _, metadata, others = existing
    where = f"hf://{repo_id}"
    if metadata is None:
        if others:
            raise ArchitectureMismatchError(
                f"{where} already holds files that are not a kerassl encoder ({', '.join(others[:5])}); "
                "pushing would mix two models. Use another repo id, or pass overwrite=True."
            )
        return
    if metadata.get("format") != zoo_folder.FORMAT:
        raise ArchitectureMismatchError(
            f"{where} holds a model that was not saved by kerassl; pass overwrite=True to replace it."
        )
    old_method = (metadata.get("method") or {}).get("registered_name")
    new_method = (new.get("method") or {}).get("registered_name")
    old_arch = metadata.get("encoder", {}).get("architecture")
    new_arch = new["encoder"]["architecture"]
    problems = []
    if old_method and new_method and old_method != new_method:
        problems.append(f"method {old_method} -> {new_method}")
    if old_arch != new_arch:
        problems.append(
            f"encoder {metadata.get('encoder', {}).get('name')} {metadata.get('encoder', {}).get('input_shape')} "
            f"-> {new['encoder']['name']} {new['encoder']['input_shape']} (architecture fingerprint differs)"
        )
    if problems:
        raise ArchitectureMismatchError(
            f"{where} already holds a different model ({'; '.join(problems)}). A new version must "
            "keep the method and architecture so pinned users are not surprised. Push to another "
            "repo id, or pass overwrite=True to replace it."
        )


def push_to_hub(model, repo_id, metrics=None, dataset=None, private=False, token=None,
                revision=None, commit_message=None, overwrite=False, card_extra=None,
                license="apache-2.0", input_contract=None, tag=None):
    """Publishes an encoder (and its method) to the Hub in one commit, with a model card.

    The folder written by `save_preset` is uploaded with `upload_folder`;
    the commit is made against the branch head that was checked, so a push that
    races another one fails instead of silently replacing it.

    Args:
        model: keras.Model. A trained SSL method (its encoder and the method are
            both published) or a bare encoder.
        repo_id: str. "user/repo" or "org/repo"; created if absent.
        metrics: dict or None. {name: value} or {name: {"value", "protocol"}}.
        dataset: str or None. The pretraining dataset (Hub dataset id or name).
        private: bool. Create the repo private (an existing repo keeps its visibility).
        token: str or None. A write token; None uses HF_TOKEN or the saved login.
        revision: str or None. Branch to commit to (created from main if absent).
        commit_message: str or None.
        overwrite: bool. Allow replacing a different method or architecture.
        card_extra: dict or None. Extra card content (see `save_preset`).
        license: str. A Hub license id.
        input_contract: dict or None. Overrides of the derived input contract.
        tag: str or None. Also tag the new commit (e.g. "v1.0") for pinned loads.

    Returns:
        str: the URL of the commit.

    Example:
    ```python
    url = kerassl.zoo.push_to_hub(model, "me/simclr-r18-cifar10",
                                  metrics={"knn_accuracy": 0.87}, dataset="cifar10", tag="v1.0")
    encoder = kerassl.zoo.load_encoder("hf://me/simclr-r18-cifar10@v1.0")
    ```
    """
    import huggingface_hub

    from kerassl import __version__

    repo_id = _check_repo_id(repo_id)
    encoder, method = zoo_folder.split_model(model)
    new = zoo_folder.build_metadata(encoder, method, dataset, metrics, license, input_contract, card_extra)
    api = huggingface_hub.HfApi(token=token, library_name="kerassl", library_version=__version__)
    branch = revision or "main"
    info = None
    try:
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        existing = _existing_metadata(api, repo_id, branch, token)
        if existing is None:
            api.create_branch(repo_id, branch=branch, exist_ok=True)
            existing = _existing_metadata(api, repo_id, branch, token)
        _check_overwrite(repo_id, existing, new, overwrite)
        with tempfile.TemporaryDirectory(prefix="kerassl-push-") as staging:
            local = zoo_folder.save_preset(
                model, pathlib.Path(staging) / "entry", dataset=dataset, metrics=metrics, license=license,
                input_contract=input_contract, card_extra=card_extra, repo_id=repo_id,
            )
            what = f"{new['method']['class_name']} " if new["method"] else ""
            info = api.upload_folder(
                repo_id=repo_id,
                folder_path=str(local),
                revision=branch,
                commit_message=commit_message or f"Upload {what}encoder {encoder.name} with kerassl {__version__}",
                parent_commit=existing[0] if existing else None,
                delete_patterns=OWNED_PATTERNS,
            )
        if tag:
            api.create_tag(repo_id, tag=tag, revision=info.oid)
    except ZooError:
        raise
    except Exception as error:  # the client wraps a failed LFS upload in a RuntimeError: read the chain
        where = (
            "Nothing was committed: the repository is still at its previous commit."
            if info is None else f"The files were committed ({info.commit_url}); only the tag {tag!r} is missing."
        )
        http_error = _in_chain(error, lambda e: isinstance(e, huggingface_hub.errors.HfHubHTTPError))
        if http_error is not None:
            status = getattr(getattr(http_error, "response", None), "status_code", None)
            hint = ""
            if status in (401, 403):
                hint = (" Pushing needs a write token: pass token=..., set HF_TOKEN, or run `hf auth login`.")
            elif status == 412:
                hint = " Someone pushed to this branch meanwhile; load the new version and push again."
            raise HubAccessError(f"pushing to hf://{repo_id} failed: {http_error}.{hint} {where}") from error
        transfer_error = _in_chain(error, _is_transfer_error)
        if transfer_error is None:
            raise
        if info is not None:
            raise HubAccessError(f"tagging hf://{repo_id} was interrupted: {transfer_error}. {where}") from error
        raise HubAccessError(
            f"pushing to hf://{repo_id} was interrupted: {type(transfer_error).__name__}: "
            f"{str(transfer_error).rstrip('.')}. The Hub makes a commit whole or not at all, so the repository is "
            "still at its previous commit; push again (files already uploaded are not sent twice)."
        ) from error
    return info.commit_url
