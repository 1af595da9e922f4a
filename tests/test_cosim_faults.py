"""Fault injection and random stalls in the co-simulation's DRAM model (cosim/dram.h).

An injected SLVERR or DECERR (by burst count: fail_read_at / fail_write_at, or by address
window: fail_addr / fail_bytes) must become the documented fault (hw/csr.toml: AXI_READ for
a fetch or a data read, AXI_WRITE for a write, ERR_PC the faulting instruction's PC), and a
SOFT_RESET must bring the device back. Random stalls (stress_seed) must reach all five AXI4
channels and leave the results of real programs (a sampling step, a linear layer) bit for bit
what they are without stalls."""

from __future__ import annotations

import numpy as np
import pytest

import dnpu.runtime as rt
from dnpu import compiler, ops
from dnpu.runtime import DeviceError, cosim
from dnpu.sampling import npu as sampling_npu
from dnpu.spec import config, mx
from dnpu.spec.csr import ErrCause

pytestmark = pytest.mark.rtl

SIM = config.load("sim")
SLVERR, DECERR = 2, 3
PROG = """
    S_LD_ARG x1, 0
    S_LD_ARG x2, 1
    S_ADDI x3, x0, 64
    S_ADDI x4, x0, 1
    S_ADDI x5, x0, 2
    S_ADDI x6, x0, 3
    S_ADDI x7, x0, 4
    S_ADDI x8, x0, 5
    H_LOAD_INT x0, x1, x3
    H_STORE_INT x0, x2, x3
    C_HALT"""
LOAD_PC, STORE_PC = 8 * 4, 9 * 4          # byte offsets of H_LOAD_INT and H_STORE_INT


@pytest.fixture
def dev(model):
    with rt.open("verilator", config="sim") as d:
        yield d
        assert d.dram()["protocol_errors"] == 0, d.describe()


class World:
    def __init__(self, dev):
        self.prog = dev.load(PROG)
        self.inp, self.out = dev.alloc(256), dev.alloc(256)
        self.data = np.random.default_rng(5).bytes(256)
        self.inp.write(self.data)


# name: (knobs for a World, expected cause, offset of the faulting instruction, the counter that counts it)
CASES = {
    "fetch-window-slverr": (lambda w: dict(fail_addr=w.prog.addr + 16, fail_bytes=4, fail_resp=SLVERR),
                            ErrCause.AXI_READ, 16, "injected_r"),
    "fetch-first-burst-decerr": (lambda w: dict(fail_read_at=1, fail_resp=DECERR), ErrCause.AXI_READ, 0,
                                 "injected_r"),
    "data-read-window-decerr": (lambda w: dict(fail_addr=w.inp.addr + 64, fail_bytes=16, fail_resp=DECERR),
                                ErrCause.AXI_READ, LOAD_PC, "injected_r"),
    "data-read-second-burst-slverr": (lambda w: dict(fail_read_at=2, fail_resp=SLVERR), ErrCause.AXI_READ,
                                      LOAD_PC, "injected_r"),
    "write-window-slverr": (lambda w: dict(fail_addr=w.out.addr + 128, fail_bytes=16, fail_resp=SLVERR),
                            ErrCause.AXI_WRITE, STORE_PC, "injected_b"),
    "write-first-burst-decerr": (lambda w: dict(fail_write_at=1, fail_resp=DECERR), ErrCause.AXI_WRITE, STORE_PC,
                                 "injected_b"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_injected_error_is_the_documented_fault(dev, case):
    knobs, cause, offset, counter = CASES[case]
    w = World(dev)
    assert dev.run(w.prog, args=[w.inp, w.out]).outcome == "halted"      # clean first
    assert w.out.read() == w.data
    w.out.write(bytes(256))
    before = dev.dram()[counter]
    k = knobs(w)
    dev.set_dram(**k)
    with pytest.raises(DeviceError) as ei:
        dev.run(w.prog, args=[w.inp, w.out])
    e = ei.value
    assert (e.reason, e.err_cause, e.err_pc) == ("fault", cause, w.prog.addr + offset), str(e)
    assert f"faulted: {cause.name} at 0x{w.prog.addr + offset:08X}" in str(e)
    d = dev.dram()
    assert d[counter] > before
    assert "fault injection:" in dev.describe()
    if "window" in case:
        assert d["fail_bytes"] == k["fail_bytes"]                   # a window stays until cleared
        if cause == ErrCause.AXI_WRITE:                             # only the beats in the window are lost
            got = w.out.read()
            assert got[128:144] == bytes(16) and got[:128] == w.data[:128] and got[144:] == w.data[144:]
        dev.set_dram(fail_bytes=0)
    else:
        assert d["fail_read_at"] == 0 and d["fail_write_at"] == 0  # a countdown fires once
    # SOFT_RESET recovers: the next run is correct.
    dev.reset()
    w.out.write(bytes(256))
    assert dev.run(w.prog, args=[w.inp, w.out]).outcome == "halted"
    assert w.out.read() == w.data


def test_fault_knobs_are_checked(dev):
    for knob, bad, why in (("fail_resp", 1, r"must be 2 \(SLVERR\) or 3 \(DECERR\)"),
                           ("fail_resp", 0, "SLVERR"), ("fail_addr", -1, ">= 0"), ("fail_bytes", -64, ">= 0")):
        with pytest.raises(cosim.CosimError, match=why):
            dev.set_dram(**{knob: bad})
    with pytest.raises(TypeError, match="unknown DRAM knob 'fail_at'"):
        dev.set_dram(fail_at=1)
    dev.set_dram(fail_read_at=-3)                                   # negative: off
    assert dev.dram()["fail_read_at"] == 0 and dev.dram()["fail_resp"] == SLVERR


def test_fault_knobs_at_open(model):
    with rt.open("verilator", config="sim", fail_read_at=1, fail_resp=DECERR) as d:
        with pytest.raises(DeviceError, match="AXI_READ") as ei:
            d.run(d.load("C_HALT"))
        assert ei.value.err_pc == ei.value.prog


STATS = ("stress_ar", "stress_r", "stress_aw", "stress_w", "stress_b", "stress_latency")


def _copy_runs(d):
    """Three copies of 4 KiB: dozens of bursts on every channel, so that a channel a stall
    never reached cannot pass by chance (each hold-back has probability 0.25 or more)."""
    prog = d.load("S_LD_ARG x1, 0\nS_LD_ARG x2, 1\nS_ADDI x3, x0, 1024\nH_LOAD_INT x0, x1, x3\n"
                  "H_STORE_INT x0, x2, x3\nC_HALT")
    inp, out = d.alloc(4096), d.alloc(4096)
    data = np.random.default_rng(6).bytes(4096)
    inp.write(data)
    for _ in range(3):
        out.write(bytes(4096))
        assert d.run(prog, args=[inp, out]).outcome == "halted"
        assert out.read() == data
    assert d.dram()["b"] >= 3 * 4096 // (SIM.beat_bytes * SIM.axi.max_burst)


def test_stress_reaches_all_five_channels(model):
    with rt.open("verilator", config="sim", stress_seed=11) as d:
        _copy_runs(d)
        s = d.dram()
        assert all(s[k] > 0 for k in STATS), {k: s[k] for k in STATS}
        assert s["protocol_errors"] == 0
    with rt.open("verilator", config="sim") as d:
        _copy_runs(d)
        s = d.dram()
        assert all(s[k] == 0 for k in STATS), {k: s[k] for k in STATS}


def _sampling_image(flow: str):
    rng = np.random.default_rng(3)
    B, L, V = 2, 8, 256
    q = mx.quantize(rng.standard_normal((B, L, V)).astype(np.float32) * 4, "e4m3", SIM.mx.block)
    mask = rng.random((B, L)) < 0.6
    mask[:, 0] = True
    x = rng.integers(0, V, (B, L))
    k = np.minimum(mask.sum(1), 2)
    prog = compiler.sampling_program(SIM, B, L, V, mode="topk", flow=flow, fmt="e4m3")
    img = sampling_npu.memory_image(prog, q, mask, x, k, None)
    return prog, {n: (prog.layout[n].offset, data) for n, data in img.items()}, prog.layout["program"].offset


def _linear_image():
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((6, 64)), rng.standard_normal((40, 64))
    prog, img = ops.linear_image(SIM, x, w, None, "e4m3")
    return prog, {n: (prog.layout[n][0], data) for n, data in img.items()}, prog.layout["program"][0]


PROGRAMS = {"sampling-fused": lambda: _sampling_image("fused"), "sampling-phased": lambda: _sampling_image("phased"),
            "linear": _linear_image}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_real_programs_under_random_stalls_are_bit_identical(model, name):
    prog, img, entry = PROGRAMS[name]()
    results = {}
    for seed in (0, 1, 2, 3):
        with rt.open("verilator", config="sim", stress_seed=seed) as d:
            buf = d.alloc(prog.nbytes)
            for off, data in img.values():
                buf.write(data, offset=off)
            info = d.run(buf.addr + entry, args=prog.args(buf.addr))
            s = d.dram()
            assert s["protocol_errors"] == 0
            assert (s["stress_r"] > 0) == (seed != 0)
            results[seed] = (buf.read(), info.instret, info.cycles)
    memory, instret, cycles = results[0]
    for seed in (1, 2, 3):
        assert results[seed][0] == memory, f"seed {seed}: memory differs from the run without stalls"
        assert results[seed][1] == instret
        assert results[seed][2] > cycles           # the stalls cost cycles, and nothing else
