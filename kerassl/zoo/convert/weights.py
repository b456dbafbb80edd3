"""Reads checkpoint tensors into NumPy without torch: safetensors, or a tensors-only `.bin` reader.

`model.safetensors` is read with the `safetensors` package. A `pytorch_model.bin`
is a zip archive holding a pickle; a general unpickler would run whatever code
the pickle names, so `read_bin` uses one that knows how to rebuild tensors (and
the OrderedDict that holds them) and refuses every other global.
"""

import collections
import collections.abc
import json
import pathlib
import pickle
import struct
import zipfile

import numpy as np

from kerassl.zoo.errors import ConversionError, UnsafePresetError

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

# torch storage classes -> NumPy dtypes (bfloat16 is widened to float32 on read).
_STORAGE_DTYPES = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
}
_SAFETENSORS_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
    "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool",
}


def _bfloat16_to_float32(raw):
    return (np.frombuffer(raw, "<u2").astype("<u4") << 16).view("<f4")


def _frombuffer(raw, dtype):
    if dtype == "bfloat16":
        return _bfloat16_to_float32(raw)
    return np.frombuffer(raw, np.dtype(dtype).newbyteorder("<"))


def read_safetensors(path):
    """{name: array} from a .safetensors file (bfloat16 widened to float32).

    Args:
        path: str or Path.

    Example:
    >>> tensors = kerassl.zoo.convert.weights.read_safetensors("model.safetensors")
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, TypeError, ValueError) as error:
        if "bf16" not in str(error).lower() and "bfloat16" not in str(error).lower():
            raise ConversionError(f"{path} is not a readable safetensors file: {error}") from error
    # NumPy has no bfloat16: read the documented layout (8-byte header size, JSON header, data).
    data = pathlib.Path(path).read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    header.pop("__metadata__", None)
    body = data[8 + size :]
    tensors = {}
    for name, entry in header.items():
        start, end = entry["data_offsets"]
        array = _frombuffer(body[start:end], _SAFETENSORS_DTYPES[entry["dtype"]])
        tensors[name] = array.reshape(entry["shape"])
    return tensors


class LazySafetensors(collections.abc.Mapping):
    """{name: array} over a .safetensors file, each tensor read when it is looked up.

    A converter takes each weight once, so a full-size checkpoint is never held
    in NumPy all at once next to the model's variables.

    Args:
        path: str or Path.
    """

    def __init__(self, path):
        from safetensors import safe_open

        self.path = str(path)
        with safe_open(self.path, "np") as file:
            self.names = list(file.keys())

    def __getitem__(self, name):
        from safetensors import safe_open

        if name not in self.names:
            raise KeyError(name)
        with safe_open(self.path, "np") as file:
            return file.get_tensor(name)

    def __iter__(self):
        return iter(self.names)

    def __len__(self):
        return len(self.names)


def open_checkpoint(path):
    """Like `read_checkpoint`, but a safetensors file of NumPy dtypes is read lazily (a Mapping)."""
    path = pathlib.Path(path)
    if path.is_dir() and (path / WEIGHT_FILES[0]).is_file():
        path = path / WEIGHT_FILES[0]
    if path.suffix == ".safetensors" and path.is_file():
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), "np") as file:
                if all(file.get_slice(name).get_dtype() != "BF16" for name in file.keys()):
                    return LazySafetensors(path)
        except SafetensorError as error:
            raise ConversionError(f"{path} is not a readable safetensors file: {error}") from error
    return read_checkpoint(path)


class _Storage:
    def __init__(self, dtype):
        self.dtype = dtype


def _rebuild_tensor(storage, offset, size, stride, *_):
    if not isinstance(storage, np.ndarray):
        raise UnsafePresetError("a tensor in the .bin file points at something that is not a storage.")
    size, stride = tuple(int(v) for v in size), tuple(int(v) for v in stride)
    if not size:
        return storage[int(offset)].copy()
    needed = int(offset) + sum((n - 1) * s for n, s in zip(size, stride)) + 1
    if min(size) == 0:
        return np.zeros(size, storage.dtype)
    if needed > storage.size or min(stride) < 0:
        raise UnsafePresetError("a tensor in the .bin file reaches outside its storage.")
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[int(offset) :], size, tuple(s * item for s in stride), writeable=False
    )
    return np.array(view)


def _rebuild_parameter(data, *_):
    return data


class _TensorsOnlyUnpickler(pickle.Unpickler):
    """Rebuilds tensors and OrderedDicts; any other global in the pickle is refused."""

    def __init__(self, file, archive, prefix, path):
        super().__init__(file)
        self.archive, self.prefix, self.path = archive, prefix, path

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _Storage(_STORAGE_DTYPES[name])
        raise UnsafePresetError(
            f"{self.path} asks to load the Python object {module}.{name}; a weights file only "
            "holds tensors, so kerassl refuses it (a general unpickler would run code from the "
            "file). Use the repository's model.safetensors if it has one."
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            raise UnsafePresetError(f"{self.path} holds a persistent reference that is not a tensor storage.")
        storage_type, key = pid[1], str(pid[2])
        if not isinstance(storage_type, _Storage):
            raise UnsafePresetError(f"{self.path} holds a storage of an unknown type.")
        try:
            raw = self.archive.read(f"{self.prefix}data/{key}")
        except KeyError as error:
            raise ConversionError(f"{self.path} lacks the data of storage {key}: the file is truncated.") from error
        return _frombuffer(raw, storage_type.dtype)


def read_bin(path):
    """{name: array} from a PyTorch `.bin`/`.pt` zip checkpoint, without torch and without running code.

    Args:
        path: str or Path. A file written by `torch.save` (zip format, torch >= 1.6).

    Raises:
        UnsafePresetError: the pickle names anything but tensors and dicts.
        ConversionError: not a zip checkpoint, or not a flat dict of tensors.

    Example:
    >>> tensors = kerassl.zoo.convert.weights.read_bin("pytorch_model.bin")
    """
    path = pathlib.Path(path)
    if not zipfile.is_zipfile(path):
        raise ConversionError(
            f"{path} is not a zip-format PyTorch checkpoint (the legacy format of torch < 1.6 is "
            "not read). Convert it to safetensors once with torch, or use a revision that holds "
            "model.safetensors."
        )
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if len(pickles) != 1:
            raise ConversionError(f"{path} holds {len(pickles)} data.pkl entries; expected exactly one.")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = prefix + "byteorder"
        if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
            raise ConversionError(f"{path} was written on a big-endian machine; it is not supported.")
        with archive.open(pickles[0]) as file:
            state = _TensorsOnlyUnpickler(file, archive, prefix, path).load()
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise ConversionError(f"{path} does not hold a flat {{name: tensor}} state dict.")
    return dict(state)


def read_checkpoint(path):
    """{name: NumPy array} from model.safetensors or pytorch_model.bin, chosen by the file name.

    Args:
        path: str or Path. A `.safetensors` file, a `.bin`/`.pt` file, or a
            folder holding `model.safetensors` (preferred) or `pytorch_model.bin`.

    Example:
    >>> tensors = kerassl.zoo.convert.read_checkpoint(snapshot_folder)
    >>> tensors["embeddings.cls_token"].shape
    (1, 1, 384)
    """
    path = pathlib.Path(path)
    if path.is_dir():
        for name in WEIGHT_FILES:
            if (path / name).is_file():
                return read_checkpoint(path / name)
        raise ConversionError(
            f"{path} holds neither model.safetensors nor pytorch_model.bin (sharded checkpoints are "
            "not supported)."
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist.")
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    if path.suffix in (".bin", ".pt", ".pth"):
        return read_bin(path)
    raise ConversionError(f"{path}: expected a .safetensors or .bin file.")
