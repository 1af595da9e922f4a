"""What stands in for ml-dtypes and safetensors where they have no wheel (armv7l boards):
the NumPy safetensors reader and the host's bfloat16 rounding, against those packages."""

from __future__ import annotations

import json

import ml_dtypes
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from dnpu.model.checkpoint import CheckpointError, read_safetensors
from dnpu.spec import numerics as nm


def test_round_bf16_f32_equals_ml_dtypes_cast():
    rng = np.random.default_rng(5)
    bits = rng.integers(0, 1 << 32, 200_000, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    x = x[np.isfinite(x)]
    edge = np.array([0.0, -0.0, 1e-45, -1e-45, 1.1754942e-38, 3.3895314e38, 3.4028235e38, -3.4028235e38,
                     1.00390625, 1.01171875, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -9], np.float32)
    x = np.concatenate([x, edge])
    want = x.astype(ml_dtypes.bfloat16).astype(np.float32)
    got = nm.round_bf16_f32(x)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_reader_equals_safetensors(tmp_path):
    rng = np.random.default_rng(1)
    tensors = {
        "w.f32": rng.standard_normal((3, 5)).astype(np.float32),
        "w.bf16": rng.standard_normal((4, 8)).astype(ml_dtypes.bfloat16),
        "w.f16": rng.standard_normal(7).astype(np.float16),
        "ids.i64": rng.integers(-9, 9, (2, 3)).astype(np.int64),
        "mask.u8": rng.integers(0, 255, 6).astype(np.uint8),
        "scalar": np.array(2.5, np.float32),
        "empty": np.zeros((0, 4), np.float32),
    }
    f = tmp_path / "m.safetensors"
    save_file(tensors, str(f), metadata={"format": "np"})
    ref = load_file(str(f))
    got = read_safetensors(str(f))
    assert got.keys() == ref.keys()
    for k, v in ref.items():
        g = got[k]
        assert g.shape == v.shape, k
        if v.dtype == ml_dtypes.bfloat16:
            assert g.dtype == np.float32 and np.array_equal(g, v.astype(np.float32)), k
        else:
            assert g.dtype == v.dtype and np.array_equal(g, v), k
    got["w.f32"][0, 0] = 9.0                     # a private, writable copy
    assert read_safetensors(str(f))["w.f32"][0, 0] != 9.0


def _file(tmp_path, header: dict, data: bytes, hlen: int | None = None) -> str:
    h = json.dumps(header).encode()
    f = tmp_path / "bad.safetensors"
    f.write_bytes((len(h) if hlen is None else hlen).to_bytes(8, "little") + h + data)
    return str(f)


def _raw(tmp_path, data: bytes) -> str:
    f = tmp_path / "raw.safetensors"
    f.write_bytes(data)
    return str(f)


@pytest.mark.parametrize("case, match", [
    (lambda p: _file(p, {}, b"", hlen=1 << 40), "header in"),
    (lambda p: _raw(p, b"\x01\x02"), "2 bytes"),
    (lambda p: _file(p, {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8), "bytes 0..16"),
    (lambda p: _file(p, {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}}, b"\0" * 16), "bytes 0..16"),
    (lambda p: _file(p, {"a": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8), "unreadable"),
    (lambda p: _file(p, {"a": {"shape": [1]}}, b""), "unreadable"),
])
def test_reader_refuses_malformed_files(tmp_path, case, match):
    with pytest.raises(CheckpointError, match=match):
        read_safetensors(case(tmp_path))


def test_reader_refuses_a_header_that_is_not_json(tmp_path):
    f = tmp_path / "x.safetensors"
    f.write_bytes((4).to_bytes(8, "little") + b"\xff{[}")
    with pytest.raises(CheckpointError, match="header"):
        read_safetensors(str(f))
