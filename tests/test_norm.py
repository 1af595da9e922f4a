"""RMSNorm on the NPU (dnpu.compiler.norm, dnpu.ops.rms_norm): the emulator's result is
dnpu.spec.kernels.rms_norm_bf16 bit for bit (docs/NUMERICS.md section 12), the RTL's is the
emulator's, and both are within rms_norm_error_bound of the exact float64 value."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dnpu import ops
from dnpu.compiler import CompileError
from dnpu.compiler.norm import rms_norm_program
from dnpu.spec import config as config_mod
from dnpu.spec import kernels
from dnpu.spec import numerics as nm

SIM = config_mod.load("sim")


def small(rows: int):
    """sim with a small vector SRAM: several row tiles at small sizes."""
    return dataclasses.replace(SIM, sram=dataclasses.replace(SIM.sram, vector_rows=rows))


def operands(rng, M: int, D: int, spread: int = 8):
    x = rng.standard_normal((M, D)) * 2.0 ** rng.integers(-spread, spread, (M, 1))
    g = rng.standard_normal(D)
    return x, g


def exact(x, g, eps: float) -> np.ndarray:
    xv = nm.bf16_value(nm.round_bf16(x))
    gv = nm.bf16_value(nm.round_bf16(g))
    e = float(nm.f32_value(nm.round_f32(np.float64(eps))))
    return xv / np.sqrt((xv * xv).mean(axis=1, keepdims=True) + e) * gv[None, :]


@pytest.mark.parametrize("M,D,rows,eps", [(1, 16, 1024, 1e-5), (5, 40, 1024, 1e-6), (9, 128, 40, 1e-5),
                                          (3, 96, 24, 0.0), (16, 48, 1024, 1.0)])
def test_emu_is_the_kernel_arithmetic_and_within_the_bound(M, D, rows, eps):
    cfg = small(rows)
    rng = np.random.default_rng(M * 1000 + D)
    x, g = operands(rng, M, D)
    y = ops.rms_norm(x, g, eps, backend="emu", config=cfg)
    vlen = cfg.vector.vlen
    Dp = -(-D // vlen) * vlen
    pad = lambda a, c: np.pad(a, ((0, 0), (0, c - a.shape[1])))            # noqa: E731
    want = kernels.rms_norm_bf16(pad(nm.round_bf16(x), Dp), pad(nm.round_bf16(g)[None, :], Dp)[0],
                                 int(nm.round_f32(np.float64(eps))), D, vlen)[:, :D]
    assert (nm.round_bf16(y) == want).all()
    ref = exact(x, g, eps)
    err = np.abs(y - ref) / np.abs(ref)
    assert err.max() <= kernels.rms_norm_error_bound(D), err.max()
    # the torch backend is the same exact value rounded once
    t = ops.rms_norm(x, g, eps, backend="torch", config=cfg)
    assert (nm.round_bf16(t) == nm.round_bf16(ref)).all()
    if rows < 1024:
        assert rms_norm_program(cfg, M, Dp).tile < M                         # several tiles


def test_the_bound_is_not_loose():
    """The worst case seen over many rows sits within a factor of a few of B: the bound
    tracks the three roundings that matter (squares, x r, t g)."""
    rng = np.random.default_rng(5)
    x, g = operands(rng, 64, 128, spread=2)
    y = ops.rms_norm(x, g, 1e-5, backend="emu")
    ref = exact(x, g, 1e-5)
    worst = (np.abs(y - ref) / np.abs(ref)).max()
    B = kernels.rms_norm_error_bound(128)
    assert B / 4 < worst <= B


def test_program_shape():
    prog = rms_norm_program(small(24), 10, 64)
    names = [ln.split()[0] for ln in prog.asm.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert names.count("S_RSQRT_FP") == -(-10 // prog.tile) and prog.tile == 24 // 4 - 2
    assert prog.layout["c"][1] == 8 and prog.nbytes >= prog.layout["y"][0] + 2 * 10 * 64


def test_errors():
    with pytest.raises(CompileError, match="multiple of vector.vlen"):
        rms_norm_program(SIM, 2, 20)
    with pytest.raises(CompileError, match="sram.vector_rows = 24"):
        rms_norm_program(small(24), 1, 16 * 9)
    x = np.ones((2, 16))
    with pytest.raises(ValueError, match=r"weight: expected shape \[16\]"):
        ops.rms_norm(x, np.ones(8))
    with pytest.raises(ValueError, match="eps"):
        ops.rms_norm(x, np.ones(16), -1.0)
    with pytest.raises(ValueError, match="backend"):
        ops.rms_norm(x, np.ones(16), backend="gpu")
    with pytest.raises(ValueError, match="D at most"):
        ops.rms_norm(np.ones((1, 16 * 9)), np.ones(16 * 9), config=small(24))


@pytest.mark.rtl
def test_verilator_equals_emu(model):
    """The co-simulated RTL (S_RSQRT_FP in its FPU) writes the emulator's bits, specials in x
    included (a zero row gives 0 · RSQRT(eps), a NaN row NaN)."""
    rng = np.random.default_rng(17)
    x, g = operands(rng, 7, 56)
    x[2] = 0.0
    x[4, 3] = np.nan
    x[5, :4] = [1e30, -1e30, 3e-30, 0.0]
    got = ops.rms_norm(x, g, 1e-5, backend="verilator")
    want = ops.rms_norm(x, g, 1e-5, backend="emu")
    assert (nm.round_bf16(got) == nm.round_bf16(want)).all()
    assert np.isnan(got[4]).all() and (got[2] == 0).all()
