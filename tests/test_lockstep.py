"""The lockstep check (dnpu.verify.lockstep, `dnpu check-lockstep`), its program generator
(dnpu.verify.proggen) and the retire trace it compares (Device.run(trace=...) on emu and on the
co-simulation's retire-port capture)."""

from __future__ import annotations

import json
import subprocess
from collections import Counter

import pytest

import dnpu.runtime as rt
from dnpu import cli
from dnpu.spec import config, isa
from dnpu.verify import lockstep, proggen
from dnpu.spec.csr import ErrCause
from dnpu.runtime import DeviceError, Retire, cosim

from conftest import dnpu_cli

SIM = config.load("sim")
FAULT_CAUSE = {"illegal": ErrCause.ILLEGAL_INSTR, "loop_len0": ErrCause.LOOP_OVERFLOW,
               "misaligned": ErrCause.MISALIGNED, "sram_range": ErrCause.SRAM_RANGE,
               "unmapped": None, "run_off": None,      # None: AXI_READ or AXI_WRITE (a load or a store)
               "perm": ErrCause.WINDOW}                # ... or WINDOW, outside the windows granted


def test_proggen_draws_every_instruction():
    gen = proggen.ProgGen(SIM, 1)
    assert gen.exclude == frozenset()
    assert gen.uncovered == [], f"dnpu.verify.proggen has no generator for {gen.uncovered} (hw/isa.toml grew)"


# ---------------------------------------------------------------------------
# the generator
# ---------------------------------------------------------------------------

def _mnemonics(gp: proggen.GenProgram) -> Counter:
    out = Counter()
    for w in gp.words:
        try:
            out[isa.decode(w).name] += 1
        except isa.DisasmError:
            out["<illegal>"] += 1
    return out


def test_proggen_is_reproducible():
    a, b = proggen.ProgGen(SIM, 7), proggen.ProgGen(SIM, 7)
    for i in (0, 3, 11):
        pa, pb = a.program(i), b.program(i)
        assert pa.words == pb.words and pa.buffers == pb.buffers and pa.fault == pb.fault
    assert a.program(0).words != a.program(1).words
    assert a.program(0).words != proggen.ProgGen(SIM, 8).program(0).words
    assert len(a.program(2).lines) == len(a.program(2).words)


def test_proggen_leaves_out_excluded_instructions():
    excl = frozenset({"S_MUL", "H_STORE_V", "V_ADD_VV"})
    gen = proggen.ProgGen(SIM, 2, exclude=excl)
    seen = Counter()
    for i in range(30):
        seen += _mnemonics(gen.program(i))
    assert not set(seen) & excl
    assert {"S_ADD", "C_LOOPI", "H_PREFETCH_V", "V_EXP_V", "H_SAMPLE_FUSED"} <= set(seen)


def _run_emu(gp: proggen.GenProgram) -> tuple[str, DeviceError | None, int]:
    """gp on the emu backend, loaded and laid out by the runtime (dev.load, then dev.alloc per
    buffer, the edge buffer last) as check-lockstep does: (the run's outcome, the DeviceError of
    a run that did not halt, the program's address)."""
    with rt.open("emu", config=SIM) as dev:
        prog = dev.load(gp.binary)
        bufs = {}
        for b in gp.buffers:
            bufs[b.name] = dev.alloc(len(b.data), zero=False)
            bufs[b.name].write(b.data)
        try:
            dev.run(prog, args=[bufs[n] for n in gp.args], timeout=lockstep.EMU_BUDGET,
                    windows=gp.resolve_windows({"program": prog.addr, **{n: b.addr for n, b in bufs.items()}}))
        except DeviceError as e:
            return e.reason, e, prog.addr
        return "halted", None, prog.addr


def test_proggen_programs_are_legal_with_every_instruction():
    """With nothing excluded (the vector unit included) every program runs on the emulator
    and ends in C_HALT, or in the fault that was put in on purpose: the operands the
    generator picks for every instruction of the ISA are legal."""
    gen = proggen.ProgGen(SIM, 3, exclude=frozenset())
    seen, ends = Counter(), Counter()
    for i in range(40):
        gp = gen.program(i)
        seen += _mnemonics(gp)
        outcome, err, base = _run_emu(gp)
        assert outcome in ("halted", "fault"), f"program {i}: {err}"
        tight = gp.windows not in (None, "all")       # cut windows and read- or write-only buffers
        if outcome == "fault" and not (tight and err.err_cause == ErrCause.WINDOW):
            assert gp.fault is not None, f"program {i} faulted without a deliberate fault: {err}\n" \
                                         f"{gp.listing(base, around=err.err_pc)}"
            want = FAULT_CAUSE[gp.fault]
            if want is None:
                cause = ErrCause.WINDOW if gp.windows is None else (ErrCause.AXI_READ, ErrCause.AXI_WRITE)
                assert err.err_cause in (ErrCause.AXI_READ, ErrCause.AXI_WRITE, ErrCause.WINDOW), err
                assert gp.windows == "all" or err.err_cause == cause, f"program {i} ({gp.fault}): {err}"
            else:
                assert err.err_cause == want, f"program {i} ({gp.fault}): {err}"
        ends[outcome] += 1
    assert ends["halted"] >= 20, ends
    missing = set(isa.INSTRS) - set(seen) - gen.absent
    assert not missing, f"40 programs never used {sorted(missing)}"


# ---------------------------------------------------------------------------
# the retire trace through the runtime
# ---------------------------------------------------------------------------

TRACE_SRC = """
    S_LD_ARG x1, 0
    S_ADDI x2, x0, 5
    C_LOOPI 3, @e
    S_ADDI x2, x2, 1
e:  S_LI_FP f1, 0x3F80
    S_ADD_FP f2, f1, f1
    S_ADDI x0, x2, 1
    S_ST_INT x2, x0, 9
    C_HALT
"""


def test_retire_trace_same_on_both_backends(model):
    traces = {}
    for backend in ("emu", "verilator"):
        with rt.open(backend) as dev:
            prog = dev.load(TRACE_SRC)
            assert dev.run(prog).trace is None                       # off unless asked
            info = dev.run(prog, trace=True)
            traces[backend] = info.trace
            assert info.trace_dropped == 0 and len(info.trace) == info.instret == 11
            small = dev.run(prog, trace=4)                            # bounded capture
            assert (len(small.trace), small.trace_dropped) == (4, 7)
            assert small.trace == info.trace[:4]          # the same timing, run after run
    e, v = traces["emu"], traces["verilator"]
    assert [r[:4] for r in v] == [r[:4] for r in e]
    p = e[0].pc
    assert [r.pc - p for r in e] == [0, 4, 8, 12, 12, 12, 16, 20, 24, 28, 32]
    assert e[5] == Retire(p + 12, isa.assemble_words("S_ADDI x2, x2, 1")[0], (2, 8), None)
    assert e[7].f == (2, 0x4000_0000) and e[7].x is None
    assert e[8].x is None                                           # a write to x0 is no write
    assert all(r.cycle is None for r in e)
    cyc = [r.cycle for r in v]
    assert 0 < cyc[0] and all(b > a for a, b in zip(cyc, cyc[1:]))   # cycles of the run
    assert "S_ADD_FP f2, f1, f1" in str(e[7]) and "f2 = 0x40000000" in str(e[7])


def test_retire_trace_of_a_faulting_run(model):
    for backend in ("emu", "verilator"):
        with rt.open(backend) as dev:
            prog = dev.load(f"S_ADDI x3, x0, 7\nC_NOP\nS_LD_INT x4, x3, {SIM.sram.int_words}\nC_HALT")
            with pytest.raises(DeviceError) as ei:
                dev.run(prog, trace=True)
            e = ei.value
            assert e.err_cause == ErrCause.SRAM_RANGE and e.run_info.outcome == "fault"
            assert [r.pc - prog.addr for r in e.trace] == [0, 4]       # the faulting one does not retire
            assert e.trace[0].x == (3, 7)


def test_trace_capacity_is_checked(model):
    with rt.open("verilator") as dev:
        prog = dev.load("C_HALT")
        with pytest.raises(ValueError, match="trace = -1"):
            dev.run(prog, trace=-1)
        with pytest.raises(cosim.CosimError, match="capacity"):
            dev.model.trace_start(cosim.TRACE_MAX + 1)


# ---------------------------------------------------------------------------
# lockstep
# ---------------------------------------------------------------------------

def test_check_lockstep_agrees(model):
    r = lockstep.check_lockstep(8, seed=11)
    assert r["mismatches"] == 0, r["first_mismatch"]
    assert r["programs"] == 8 and sum(r["outcomes"].values()) == 8
    assert r["cycles"] > r["instructions"] > 8 * 20
    assert r["outcomes"].get("halted", 0) >= 4
    assert r["excluded"] == []


@pytest.mark.slow
def test_check_lockstep_agrees_on_the_pipelined_pynq_z2(model):
    """pynq-z2's [pipeline] (FP units in stages, DECODE, the maximum tree's and the result
    registers) changes when things happen, never what: random programs, faults included, retire
    for retire as on the emulator. (Slow tier: a second NPU build, 3 to 5 minutes.)"""
    cfg = config.load("pynq-z2")
    st = cfg.pipeline
    assert st.add_stages > 1 and st.decode_stage and st.max_tree_stages and st.result_regs
    r = lockstep.check_lockstep(40, seed=5, config=cfg)
    assert r["mismatches"] == 0, r["first_mismatch"]
    assert r["programs"] == 40 and r["outcomes"].get("halted", 0) >= 20, r["outcomes"]
    assert len([end for end in r["outcomes"] if end.startswith("fault:")]) >= 3, r["outcomes"]
    assert r["excluded"] == [] and r["not_generated"] == []


def _corrupt(retire_index: int):
    """A run_pair whose RTL side has retire #retire_index's x write changed (a fake divergence)."""
    real = lockstep.run_pair

    def run_pair(cfg, gp, **kw):
        emu, rtl, base = real(cfg, gp, **kw)
        if gp.index == 1:
            r = rtl.trace[retire_index]
            x = (r.x[0], r.x[1] ^ 0x10) if r.x else (9, 0x1234)
            rtl.trace[retire_index] = r._replace(x=x)
        return emu, rtl, base
    return run_pair


def test_cli_json(model, tmp_path):
    out = tmp_path / "ls.json"
    p = subprocess.run(dnpu_cli() + ["check-lockstep", "--programs", "4", "--seed", "3", "--json", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    r = json.loads(out.read_text())
    assert (r["programs"], r["mismatches"]) == (4, 0) and isinstance(r["cycles"], int) and r["cycles"] > 0
    assert json.loads(p.stdout)["cycles"] == r["cycles"]


def test_cli_fails_on_a_mismatch(model, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(lockstep, "run_pair", _corrupt(5))
    out = tmp_path / "ls.json"
    rc = cli.main(["check-lockstep", "--programs", "3", "--seed", "3", "--json", str(out)])
    assert rc == 1
    r = json.loads(out.read_text())
    assert (r["programs"], r["mismatches"]) == (3, 1)
    err = capsys.readouterr().err
    assert "lockstep mismatch in program 1 of seed 3" in err
    assert "retire #5 differs in x write" in err
    assert "emulator: pc 0x" in err and "RTL:      pc 0x" in err and "cycle" in err
    assert ">> " in err                                 # the listing marks the instruction
    assert "FAILED: 1 of 3 programs diverge" in err
    assert r["first_mismatch"].splitlines()[0] in err


def test_compare_reports_each_kind_of_difference():
    gp = proggen.ProgGen(SIM, 0, faults=0).program(0)
    base = rt.HEAP_BASE
    regs = {"STATUS": 2, "ERR_CAUSE": 0, "ERR_PC": 0, "PC": base + 8}
    tr = [Retire(base, gp.words[0], (1, 5), None), Retire(base + 4, gp.words[1], (2, 6), None)]

    def side(backend, **kw):
        d = dict(backend=backend, outcome="halted", trace=list(tr), trace_dropped=0, regs=dict(regs),
                 instret=2, cycles=None if backend == "emu" else 40, memory={"out": bytes(64)})
        d.update(kw)
        return lockstep.Side(**d)

    assert lockstep.compare(gp, side("emu"), side("verilator"), base) is None
    m = lockstep.compare(gp, side("emu"), side("verilator", trace=tr[:1], instret=1), base)
    assert m.what == "trace length" and "the emulator retired 2 instructions, the RTL 1" in m.text
    m = lockstep.compare(gp, side("emu"), side("verilator", regs={**regs, "PC": base + 12}), base)
    assert m.what == "status" and f"PC 0x{base + 12:08X}" in m.text
    m = lockstep.compare(gp, side("emu"), side("verilator", memory={"out": bytes(9) + b"\1" + bytes(54)}), base)
    assert m.what == "memory" and "buffer 'out' differs first at byte 9" in m.text
    m = lockstep.compare(gp, side("emu"), side("verilator", outcome="watchdog", error="bus hung"), base)
    assert m.what == "run" and "bus hung" in m.text
    m = lockstep.compare(gp, side("emu"), side("verilator", trace=[tr[0], tr[1]._replace(word=0)]), base)
    assert m.what == "retire" and "retire #1 differs in word" in m.text
