"""Rotate-half RoPE on the NPU (dnpu.compiler.rope, dnpu.ops.rope): the emulator's result is
dnpu.spec.kernels.rope_bf16 bit for bit (docs/NUMERICS.md section 14), the RTL's is the
emulator's, and both are within the section's bound of the exact float64 value, the same
as LLaDA's `x * cos + rotate_half(x) * sin`."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dnpu import ops
from dnpu.compiler import CompileError
from dnpu.compiler.rope import rope_program
from dnpu.spec import config as config_mod
from dnpu.spec import kernels
from dnpu.spec import numerics as nm

SIM = config_mod.load("sim")


def small(rows: int):
    return dataclasses.replace(SIM, sram=dataclasses.replace(SIM.sram, vector_rows=rows))


def tables(L: int, hd: int, theta: float = 10000.0):
    inv = 1.0 / theta ** (np.arange(0, hd, 2) / hd)
    ang = np.outer(np.arange(L), inv)
    return np.cos(ang), np.sin(ang)


@pytest.mark.parametrize("L,H,hd,rows", [(1, 1, 32, 1024), (16, 4, 32, 1024), (9, 2, 64, 40), (5, 3, 32, 20)])
def test_emu_is_the_kernel_arithmetic_and_within_the_bound(L, H, hd, rows):
    cfg = small(rows)
    rng = np.random.default_rng(L * 10 + H)
    x = rng.standard_normal((L, H * hd)) * 3
    c, s = tables(L, hd)
    y = ops.rope(x, c, s, H, backend="emu", config=cfg)
    xb, cb, sb = nm.round_bf16(x), nm.round_bf16(c), nm.round_bf16(s)
    assert (nm.round_bf16(y) == kernels.rope_bf16(xb, cb, sb, H)).all()
    # the exact value of the same operands, in LLaDA's form: x * cat(c, c) + rotate_half(x) * cat(s, s)
    xv = nm.bf16_value(xb).reshape(L, H, hd)
    cc = np.concatenate([nm.bf16_value(cb)] * 2, axis=1)[:, None, :]
    ss = np.concatenate([nm.bf16_value(sb)] * 2, axis=1)[:, None, :]
    rot = np.concatenate([-xv[..., hd // 2:], xv[..., :hd // 2]], axis=-1)
    ref = (xv * cc + rot * ss).reshape(L, H * hd)
    scale = (np.abs(xv * cc) + np.abs(rot * ss)).reshape(L, H * hd)
    ub = nm.U_BF16
    assert (np.abs(y - ref) <= ub * (2 + ub) * scale * (1 + 2.0 ** -40)).all()
    t = ops.rope(x, c, s, H, backend="torch", config=cfg)
    assert (nm.round_bf16(t) == nm.round_bf16(ref)).all()
    if rows < 1024:
        assert rope_program(cfg, L, H, hd).tile < L                           # several tiles


def test_errors():
    with pytest.raises(CompileError, match="half a head"):
        rope_program(SIM, 4, 2, 16)
    with pytest.raises(ValueError, match=r"cos: expected shape \[2, 16\]"):
        ops.rope(np.ones((2, 64)), np.ones((2, 8)), np.ones((2, 16)), 2)
    with pytest.raises(ValueError, match="heads"):
        ops.rope(np.ones((2, 60)), np.ones((2, 15)), np.ones((2, 15)), 4)
    with pytest.raises(ValueError, match="sram.vector_rows"):
        ops.rope(np.ones((1, 4 * 32)), np.ones((1, 16)), np.ones((1, 16)), 4, config=small(8))


@pytest.mark.rtl
def test_verilator_equals_emu(model):
    rng = np.random.default_rng(29)
    L, H, hd = 7, 4, 32
    x = rng.standard_normal((L, H * hd)) * 2.0 ** rng.integers(-30, 30, (L, H * hd))
    x[0, :4] = [np.nan, np.inf, -0.0, 1e38]
    c, s = tables(L, hd)
    got = ops.rope(x, c, s, H, backend="verilator")
    want = ops.rope(x, c, s, H, backend="emu")
    assert (nm.round_bf16(got) == nm.round_bf16(want)).all()
