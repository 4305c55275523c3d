"""Read PyTorch legacy (pre-1.6) state-dict files into numpy arrays without torch or unsafe pickles.

The legacy format is five things back to back: a pickled magic number, a pickled protocol version,
a pickled dict of system info, the pickled state dict (tensors refer to storages by persistent id),
a pickled list of storage keys, then for each key an int64 element count and the raw bytes.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# Storage classes of the legacy format and the little-endian dtype of their elements.
_STORAGE_DTYPES: dict[str, str] = {
    "DoubleStorage": "<f8",
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class UnsafePickleError(pickle.UnpicklingError):
    """A weights file asked to load something other than tensors and plain containers."""


class _StorageType:
    """Stand-in for a torch.*Storage class: only its element dtype matters here."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    """A storage whose bytes come after the pickle; `array` is filled in once they are read."""

    def __init__(self, dtype: np.dtype, numel: int):
        self.dtype = dtype
        self.numel = numel
        self.array: np.ndarray | None = None


class _PendingTensor:
    """A tensor waiting for its storage's bytes: offset, size and stride in elements."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def materialize(self) -> np.ndarray:
        """Return the tensor as a fresh C-contiguous numpy array."""
        base = self.storage.array
        assert base is not None, "storage bytes were never read"
        if not self.size:
            return np.array(base[self.offset])
        item = base.itemsize
        view = np.lib.stride_tricks.as_strided(
            base[self.offset :],
            shape=tuple(self.size),
            strides=tuple(s * item for s in self.stride),
            writeable=False,
        )
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    return _PendingTensor(storage, int(storage_offset), tuple(size), tuple(stride))


# The only globals a state dict needs; everything else (os.system, builtins.eval...) is refused.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds tensors and ordered dicts and refuses every other global."""

    def __init__(self, file: BinaryIO, storages: dict[str, _Storage] | None = None):
        super().__init__(file)
        self.storages = storages if storages is not None else {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load {module}.{name}: a weights file may only contain tensors "
                "and ordered dicts (this file may be malicious or not a state dict)"
            ) from None

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage" and len(pid) >= 5):
            raise UnsafePickleError(f"unexpected persistent id {pid!r} in a legacy weights file")
        _, storage_type, key, _location, numel = pid[:5]
        view_metadata = pid[5] if len(pid) > 5 else None
        if not isinstance(storage_type, _StorageType):
            raise UnsafePickleError(f"persistent id names {storage_type!r}, not a storage type")
        if view_metadata is not None:
            raise UnsafePickleError("storage views (pre-0.4 files) are not supported")
        key = str(key)
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type.dtype, int(numel))
        return self.storages[key]


def _load_plain(file: BinaryIO) -> Any:
    """Unpickle one header object that must not reference any global or storage."""
    return _RestrictedUnpickler(file).load()


def _materialize(obj: Any) -> Any:
    """Replace every pending tensor in nested dicts/lists/tuples by its numpy array."""
    if isinstance(obj, _PendingTensor):
        return obj.materialize()
    if isinstance(obj, collections.OrderedDict):
        return collections.OrderedDict((k, _materialize(v)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: _materialize(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(v) for v in obj)
    return obj


def load_state_dict_stream(file: BinaryIO) -> dict[str, Any]:
    """Read a legacy-format PyTorch file from an open binary stream into a dict of numpy arrays."""
    head = file.read(2)
    if head == b"PK":
        raise ValueError(
            "this is a zip-format (PyTorch >= 1.6) file; only the legacy format is read"
        )
    file.seek(-2, io.SEEK_CUR)
    if _load_plain(file) != LEGACY_MAGIC:
        raise ValueError("not a legacy PyTorch file: wrong magic number")
    if _load_plain(file) != LEGACY_PROTOCOL:
        raise ValueError("unsupported legacy PyTorch protocol version")
    sys_info = _load_plain(file)
    if not sys_info.get("little_endian", True):
        raise ValueError("big-endian weights files are not supported")
    storages: dict[str, _Storage] = {}
    result = _RestrictedUnpickler(file, storages).load()
    keys = _load_plain(file)
    for key in keys:
        storage = storages[str(key)]
        (numel,) = struct.unpack("<q", file.read(8))
        if numel != storage.numel:
            raise ValueError(f"storage {key}: {numel} elements on disk, {storage.numel} expected")
        nbytes = numel * storage.dtype.itemsize
        raw = file.read(nbytes)
        if len(raw) != nbytes:
            raise ValueError(f"storage {key} is truncated: the file ends early")
        storage.array = np.frombuffer(raw, dtype=storage.dtype)
    if not isinstance(result, Mapping):
        raise ValueError(f"the file holds a {type(result).__name__}, not a state dict")
    return dict(_materialize(result))


def load_state_dict(path: str | Path) -> dict[str, Any]:
    """Read a legacy-format PyTorch state dict (.pth) into {name: numpy array}, refusing code."""
    with open(path, "rb") as file:
        return load_state_dict_stream(file)
