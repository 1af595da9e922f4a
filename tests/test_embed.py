"""The embedding gather on the NPU (dnpu.compiler.embed, dnpu.ops.embedding): the rows of
the BF16 table bit for bit, on the emulator, the RTL and the torch reference."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dnpu import ops
from dnpu.compiler import CompileError
from dnpu.compiler.embed import embedding_program
from dnpu.spec import config as config_mod
from dnpu.spec import numerics as nm

SIM = config_mod.load("sim")


def small(rows: int):
    return dataclasses.replace(SIM, sram=dataclasses.replace(SIM.sram, vector_rows=rows))


@pytest.mark.parametrize("L,V,D,rows", [(1, 4, 16, 1024), (16, 64, 128, 1024), (13, 50, 40, 24)])
def test_emu_gathers_the_rows(L, V, D, rows):
    cfg = small(rows)
    rng = np.random.default_rng(L + V)
    table = rng.standard_normal((V, D))
    ids = rng.integers(0, V, L)
    ids[0] = V - 1                                       # the last row too
    y = ops.embedding(ids, table, backend="emu", config=cfg)
    want = nm.bf16_value(nm.round_bf16(table))[ids]
    assert (nm.round_bf16(y) == nm.round_bf16(want)).all()
    assert (ops.embedding(ids, table, backend="torch") == y).all()
    if rows < 1024:
        vlen = cfg.vector.vlen
        assert embedding_program(cfg, L, -(-D // vlen) * vlen, V).tile < L      # several tiles


def test_errors():
    with pytest.raises(ValueError, match=r"ids\[1\] = 9 is outside the table's 8 rows"):
        ops.embedding([0, 9], np.ones((8, 16)))
    with pytest.raises(ValueError, match="ids"):
        ops.embedding(np.array([0.5]), np.ones((8, 16)))
    with pytest.raises(CompileError, match="multiple of vector.vlen"):
        embedding_program(SIM, 2, 20, 4)
    with pytest.raises(ValueError, match="sram.vector_rows"):
        ops.embedding([0], np.ones((2, 16 * 32)), config=small(16))


@pytest.mark.rtl
def test_verilator_equals_emu(model):
    rng = np.random.default_rng(31)
    table = rng.standard_normal((64, 128))
    table[3, :3] = [np.nan, np.inf, -0.0]
    ids = np.array([3, 0, 63, 3, 17, 5, 5, 40])
    got = ops.embedding(ids, table, backend="verilator")
    want = ops.embedding(ids, table, backend="emu")
    assert (nm.round_bf16(got) == nm.round_bf16(want)).all()
