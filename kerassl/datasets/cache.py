"""The on-disk cache: unpacked archives and decoded arrays, written under a temporary
name and renamed, so an interrupted run never leaves a half-written cache.

The directory is `$KERASSL_CACHE`, else `~/.cache/kerassl`.
"""

import hashlib
import os
import pathlib
import shutil
import tarfile
import tempfile

import numpy as np


ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


def cache_dir():
    """The directory for unpacked archives and decoded arrays.

    `$KERASSL_CACHE` when set, else `~/.cache/kerassl`. Created on demand.
    """
    root = os.environ.get("KERASSL_CACHE") or os.path.join("~", ".cache", "kerassl")
    path = pathlib.Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def extract_archive(path):
    """Unpacks a tarball once under `cache_dir()` and returns the folder.

    The folder name carries a hash of the archive's content, so a changed
    archive is unpacked again. Unpacking goes to a temporary folder renamed
    when complete; members that would land outside it are refused.

    Example:
    >>> root = kerassl.datasets.extract_archive("cifar10-jpeg.tar.gz")
    """
    path = existing_path(path)
    target = cache_dir() / "archives" / f"{_archive_stem(path)}-{_content_key(path)}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = pathlib.Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
    try:
        with tarfile.open(path) as archive:
            if hasattr(tarfile, "data_filter"):
                archive.extractall(temp, filter="data")
            else:  # Python without PEP 706: refuse paths that escape `temp`.
                for member in archive.getmembers():
                    resolved = (temp / member.name).resolve()
                    if temp.resolve() not in resolved.parents and resolved != temp.resolve():
                        raise ValueError(f"{path} holds an unsafe path: {member.name}")
                archive.extractall(temp)
        try:
            os.rename(temp, target)
        except OSError:
            if not target.is_dir():  # Not another process winning the race.
                raise
    except tarfile.TarError as error:
        raise ValueError(f"Could not read the archive {path}: {error}") from error
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    return target


def existing_path(path):
    path = pathlib.Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"No such file or folder: {path}")
    return path


def is_archive(path):
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _archive_stem(path):
    name = path.name
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _content_key(path):
    """A short hash naming a cache entry: file content, or a folder's listing."""
    digest = hashlib.sha256()
    if path.is_file():
        with open(path, "rb") as file:
            for chunk in iter(lambda: file.read(1 << 20), b""):
                digest.update(chunk)
    else:
        digest.update(str(path.resolve()).encode())
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            stat = file.stat()
            digest.update(f"{file.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]


def cached_arrays(name, path, decode):
    """Returns decode(folder) for a folder or tarball, cached as an .npz."""
    cached = cache_dir() / "arrays" / f"{name}-{_archive_stem(path)}-{_content_key(path)}.npz"
    if cached.is_file():
        try:
            return read_npz(cached)
        except (OSError, ValueError, KeyError):
            cached.unlink(missing_ok=True)  # Unreadable: decode again.
    folder = extract_archive(path) if is_archive(path) else path
    if not folder.is_dir():
        raise ValueError(
            f"{path} is neither a folder nor a .tar.gz/.tgz/.tar archive nor an .npz."
        )
    arrays = decode(folder)
    _write_npz(cached, arrays)
    return arrays


def _write_npz(path, arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=".partial-", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)
        os.chmod(temp, _default_file_mode())  # mkstemp makes files private (0600).
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def _default_file_mode():
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def read_npz(path):
    keys = ("x_train", "y_train", "x_test", "y_test")
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in keys if k not in data.files]
        if missing:
            raise KeyError(
                f"{path} lacks the arrays {missing}; expected keys {list(keys)} "
                f"(found {data.files})."
            )
        return {k: data[k] for k in keys}


def skip_wrapper_folder(folder):
    """Descends through single folders that hold only folders (archive wrappers)."""
    while True:
        entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
        if len(entries) != 1 or not entries[0].is_dir():
            return folder
        inner = [p for p in entries[0].iterdir() if not p.name.startswith(".")]
        if not inner or any(not p.is_dir() for p in inner):
            return folder
        folder = entries[0]
