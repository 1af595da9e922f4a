"""Attention on the NPU (dnpu.compiler.attention, dnpu.ops.attention): the emulator's result
is dnpu.spec.kernels.attention_bf16 bit for bit (docs/NUMERICS.md section 15), the RTL's is
the emulator's, both are within attention_error_bound of exact float64 softmax attention,
and the scores never leave the chip."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dnpu import ops
from dnpu.compiler import CompileError
from dnpu.compiler.attention import attention_program, default_tile, plan_head
from dnpu.spec import config as config_mod
from dnpu.spec import kernels
from dnpu.spec import numerics as nm

SIM = config_mod.load("sim")
VLEN = SIM.vector.vlen


def operands(rng, H: int, n: int, T: int, hd: int, scale: float = 1.0):
    q = rng.standard_normal((H, n, hd)) * scale
    k = rng.standard_normal((H, T, hd)) * scale
    v = rng.standard_normal((H, T, hd))
    return q, k, v


def exact(q, k, v) -> np.ndarray:
    qv, kv, vv = (nm.bf16_value(nm.round_bf16(a)) for a in (q, k, v))
    s = qv @ kv.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    return (p / p.sum(axis=-1, keepdims=True)) @ vv


def kernel(q, k, v, tile: int) -> np.ndarray:
    return np.stack([kernels.attention_bf16(nm.round_bf16(q[h]), nm.round_bf16(k[h]), nm.round_bf16(v[h]),
                                            tile, VLEN) for h in range(q.shape[0])])


def bound(q, k, v, tile: int) -> np.ndarray:
    return np.stack([kernels.attention_error_bound(nm.round_bf16(q[h]), nm.round_bf16(k[h]),
                                                   nm.round_bf16(v[h]), tile) for h in range(q.shape[0])])


# (H, n, T, hd, tile): one tile, several tiles, a padded last tile, fewer keys than a row,
# one query, more queries than the matrix unit's rows, a head of two K multiples
SHAPES = [(1, 16, 16, 32, None), (2, 5, 70, 32, 32), (1, 3, 40, 32, 64), (1, 1, 3, 32, None),
          (2, 9, 64, 64, 32), (1, 4, 96, 32, 32)]


@pytest.mark.parametrize("H,n,T,hd,tile", SHAPES)
def test_emu_is_the_kernel_arithmetic_and_within_the_bound(H, n, T, hd, tile):
    rng = np.random.default_rng(H * 1000 + n * 100 + T)
    q, k, v = operands(rng, H, n, T, hd, scale=2.0 if T > 50 else 1.0)
    info = []
    o = ops.attention(q, k, v, backend="emu", tile=tile, run_info=info)
    B = default_tile(SIM, T) if tile is None else tile
    assert (nm.round_bf16(o) == kernel(q, k, v, B)).all()
    err = np.abs(o - exact(q, k, v))
    assert (err <= bound(q, k, v, B)).all(), err.max()
    # the scores stay on the chip: the only bytes written are the output's
    assert info[0].counters["DATA_WR_BYTES"] == 2 * H * n * hd
    t = ops.attention(q, k, v, backend="torch")
    assert (nm.round_bf16(t) == nm.round_bf16(exact(q, k, v))).all()


def test_tiles_stream_and_the_bound_is_not_loose():
    """Key tiles of 32 over 128 keys: four passes of the recurrence, whose result differs
    from the one-tile program's in the last bits only (both within the bound, which the
    worst element approaches within a factor of 40)."""
    rng = np.random.default_rng(8)
    q, k, v = operands(rng, 1, 8, 128, 32)
    streamed = ops.attention(q, k, v, tile=32)
    whole = ops.attention(q, k, v, tile=128)
    prog = attention_program(SIM, 1, 8, 128, 32, 32)
    assert prog.asm.count("M_MM_V_RES") == 2 and "C_LOOPI 3," in prog.asm   # a loop of 3 tiles + the last
    ref = exact(q, k, v)
    for o, B in ((streamed, 32), (whole, 128)):
        err = np.abs(o - ref)
        b = bound(q, k, v, B)
        assert (err <= b).all() and (err / b).max() > 1 / 40
    assert not (streamed == whole).all()


def test_specials_propagate():
    """A NaN value reaches exactly the outputs that weigh it: its column, in every row."""
    rng = np.random.default_rng(9)
    q, k, v = operands(rng, 1, 4, 20, 32)
    v[0, 5, 3] = np.nan
    o = ops.attention(q, k, v)
    assert np.isnan(o[0, :, 3]).all() and not np.isnan(np.delete(o[0], 3, axis=1)).any()
    assert np.array_equal(o, nm.bf16_value(kernel(q, k, v, 32)), equal_nan=True)


def test_errors():
    with pytest.raises(CompileError, match=r"multiple of max\(vector.vlen, mx.block\) = 32"):
        attention_program(SIM, 1, 4, 16, 48)
    with pytest.raises(CompileError, match="key tile 48"):
        attention_program(SIM, 1, 4, 16, 32, 48)
    small = dataclasses.replace(SIM, sram=dataclasses.replace(SIM.sram, vector_rows=200))
    with pytest.raises(CompileError, match="sram.vector_rows = 200"):
        plan_head(small, 16, 64, 32, 32)
    nomat = dataclasses.replace(SIM, matrix=dataclasses.replace(SIM.matrix, rows=0))
    with pytest.raises(CompileError, match="needs the matrix unit"):
        attention_program(nomat, 1, 4, 16, 32)
    q = np.ones((1, 4, 32))
    with pytest.raises(ValueError, match=r"v: expected shape \[1, 5, 32\]"):
        ops.attention(q, np.ones((1, 5, 32)), np.ones((1, 6, 32)))
    with pytest.raises(ValueError, match="non-empty"):
        ops.attention(np.ones((4, 32)), q, q)
    with pytest.raises(ValueError, match="head_dim 48"):
        ops.attention(np.ones((1, 4, 48)), np.ones((1, 4, 48)), np.ones((1, 4, 48)))


@pytest.mark.rtl
def test_verilator_equals_emu(model):
    """The co-simulated RTL (M_MM_V / M_MM_V_RES in the matrix unit, V_TRANS in the vector
    unit) writes the emulator's bits over two tiles with a padded last tile."""
    rng = np.random.default_rng(19)
    q, k, v = operands(rng, 2, 6, 45, 32)
    got = ops.attention(q, k, v, backend="verilator", tile=32)
    want = ops.attention(q, k, v, backend="emu", tile=32)
    assert (nm.round_bf16(got) == nm.round_bf16(want)).all()
