"""SwiGLU's gate on the NPU (dnpu.compiler.swiglu, dnpu.ops.swiglu): the emulator's result is
dnpu.spec.kernels.swiglu_bf16 bit for bit (docs/NUMERICS.md section 13), the RTL's is the
emulator's, and both are within swiglu_error_bound of the exact float64 value."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dnpu import ops
from dnpu.compiler import CompileError
from dnpu.compiler.swiglu import swiglu_program
from dnpu.spec import config as config_mod
from dnpu.spec import kernels
from dnpu.spec import numerics as nm

SIM = config_mod.load("sim")


def small(rows: int):
    return dataclasses.replace(SIM, sram=dataclasses.replace(SIM.sram, vector_rows=rows))


def exact(g, u) -> np.ndarray:
    gv, uv = nm.bf16_value(nm.round_bf16(g)), nm.bf16_value(nm.round_bf16(u))
    return gv * uv / (1 + np.exp(-gv))


@pytest.mark.parametrize("M,F,rows", [(1, 16, 1024), (5, 40, 1024), (7, 96, 12), (16, 384, 96)])
def test_emu_is_the_kernel_arithmetic_and_within_the_bound(M, F, rows):
    cfg = small(rows)
    rng = np.random.default_rng(M * 100 + F)
    g = rng.standard_normal((M, F)) * 4
    u = rng.standard_normal((M, F)) * 2.0 ** rng.integers(-20, 20, (M, F))
    h = ops.swiglu(g, u, backend="emu", config=cfg)
    assert (nm.round_bf16(h) == kernels.swiglu_bf16(nm.round_bf16(g), nm.round_bf16(u))).all()
    ref = exact(g, u)
    err = np.abs(h - ref) / np.abs(ref)
    assert err.max() <= kernels.swiglu_error_bound(), err.max()
    t = ops.swiglu(g, u, backend="torch", config=cfg)
    assert (nm.round_bf16(t) == nm.round_bf16(ref)).all()
    vlen = cfg.vector.vlen
    if rows < 1024:
        assert swiglu_program(cfg, M, -(-F // vlen) * vlen).tile < M * (-(-F // vlen))      # several tiles


def test_bound_is_tight_and_the_saturated_end():
    """The worst relative error over many gates is within a factor of a few of B; beyond EXP's
    range (gate < -88.7) h is a zero against an exact value below 2^-120 |u|."""
    rng = np.random.default_rng(3)
    g = rng.uniform(-80, 30, (64, 64))
    u = rng.standard_normal((64, 64))
    h = ops.swiglu(g, u)
    ref = exact(g, u)
    ok = np.abs(ref) >= 2.0 ** -120                     # nothing flushed
    worst = (np.abs(h - ref) / np.abs(ref))[ok].max()
    B = kernels.swiglu_error_bound()
    assert B / 5 < worst <= B
    far = ops.swiglu(np.full((1, 16), -100.0), np.ones((1, 16)))
    assert (far == 0).all() and np.signbit(far).all()  # -100 * 0 = -0


def test_errors():
    with pytest.raises(CompileError, match="multiple of vector.vlen"):
        swiglu_program(SIM, 2, 20)
    with pytest.raises(ValueError, match="shapes differ"):
        ops.swiglu(np.ones((2, 16)), np.ones((2, 8)))
    with pytest.raises(ValueError, match="backend"):
        ops.swiglu(np.ones((2, 16)), np.ones((2, 16)), backend="cuda")


@pytest.mark.rtl
def test_verilator_equals_emu(model):
    """The co-simulated RTL (V_RECI_V in its lanes) writes the emulator's bits, specials
    included: NaN, +-Inf, +-0, gates beyond EXP's range on both sides."""
    rng = np.random.default_rng(23)
    g = rng.standard_normal((6, 48)) * 8
    u = rng.standard_normal((6, 48))
    g[0, :6] = [np.nan, np.inf, -np.inf, 0.0, -0.0, -200.0]
    g[1, :3] = [200.0, 1e-30, -1e-30]
    u[2, :3] = [np.inf, 0.0, np.nan]
    got = ops.swiglu(g, u, backend="verilator")
    want = ops.swiglu(g, u, backend="emu")
    assert (nm.round_bf16(got) == nm.round_bf16(want)).all()
