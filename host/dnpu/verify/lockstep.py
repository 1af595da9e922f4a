"""Lockstep check: the RTL (Verilator co-simulation) against the emulator, instruction by
instruction, on random valid programs from `dnpu.verify.proggen`.

    r = check_lockstep(programs=200, seed=5)     # {"programs": 200, "mismatches": 0, "cycles": ...}

Every program runs on a fresh `emu` device and a fresh `verilator` device (power-on state,
the same allocations, so the same addresses) with `run(..., trace=True)`: the emulator's
per-instruction trace and the RTL's retire port, captured by the harness. Per retired
instruction they must agree on PC, word and the x / f register written (index and value);
then on the final STATUS, ERR_CAUSE, ERR_PC, ERR_ADDR, PC and INSTRET; and, for a program that
halted, on every byte of its buffers (its epilogue stores all three SRAMs there). A
deliberate fault must be the same fault at the same PC on both; what a faulting transfer
leaves behind is unspecified (docs/EXECUTION.md), so memory is compared only after a halt.

Every third program runs under random DRAM back-pressure (the harness's stress_seed): the
timing changes, the results must not. The first mismatch is described in full (the
program listing around it, the instruction, both sides' values); `cycles` is the total of
RTL cycles simulated over all runs.
"""

from __future__ import annotations

import dataclasses
import numbers
import time
from typing import Callable

from dnpu.spec import config as config_mod
from dnpu.spec import csr
from dnpu.spec.config import Config
from dnpu.verify.proggen import GenProgram, ProgGen

__all__ = ["check_lockstep", "run_pair", "compare", "Mismatch", "Side"]

EMU_BUDGET = 2_000_000          # instructions: generated programs retire a few thousand
RTL_BUDGET = 50_000_000         # cycles (the watchdog ends a hung run much earlier)
WATCHDOG = 1_000_000            # cycles without a retire, an SRAM write or an AXI4 handshake


@dataclasses.dataclass
class Side:
    """One backend's run of a program."""
    backend: str
    outcome: str                # "halted", "fault", "budget", "watchdog", ...
    trace: list                 # [dnpu.runtime.Retire]
    trace_dropped: int
    regs: dict[str, int]        # STATUS, ERR_CAUSE, ERR_PC, PC
    instret: int
    cycles: int | None
    memory: dict[str, bytes]    # buffer name -> contents after the run
    error: str = ""             # the DeviceError's report, if the run did not halt


@dataclasses.dataclass
class Mismatch:
    program: int
    seed: int
    what: str                   # "retire", "trace length", "status", "memory", "run"
    text: str                   # the full report

    def __str__(self) -> str:
        return self.text


def _run_one(backend: str, cfg: Config, gp: GenProgram, trace_cap: int, knobs: dict) -> tuple[Side, dict]:
    import dnpu.runtime as rt

    if backend == "verilator":
        knobs = {"watchdog": WATCHDOG, **knobs}
    with rt.open(backend, config=cfg, **knobs) as dev:
        prog = dev.load(gp.binary)
        bufs = {}
        for b in gp.buffers:
            buf = dev.alloc(len(b.data), zero=False)
            buf.write(b.data)
            bufs[b.name] = buf
        budget = EMU_BUDGET if dev.budget_unit == "instructions" else RTL_BUDGET
        err = ""
        windows = gp.resolve_windows({"program": prog.addr, **{n: b.addr for n, b in bufs.items()}})
        try:
            info = dev.run(prog, args=[bufs[n] for n in gp.args], timeout=budget, trace=trace_cap,
                           windows=windows)
        except rt.DeviceError as e:
            if e.run_info is None:
                raise
            info, err = e.run_info, str(e)
        regs = dev.status()
        regs["ERR_ADDR"] = dev.read_csr("ERR_ADDR")
        instret = dev.counters()["INSTRET"]
        memory = {name: buf.read() for name, buf in bufs.items()} if info.outcome == "halted" else {}
        addrs = {"program": prog.addr, **{n: b.addr for n, b in bufs.items()}}
        return Side(backend, info.outcome, info.trace or [], info.trace_dropped, regs, instret, info.cycles,
                    memory, err), addrs


def run_pair(cfg: Config, gp: GenProgram, *, stress_seed: int = 0,
             trace_cap: int = 1 << 20) -> tuple[Side, Side, int]:
    """Run one generated program on emu and verilator; (emu side, RTL side, program address)."""
    emu, a_emu = _run_one("emu", cfg, gp, trace_cap, {})
    rtl, a_rtl = _run_one("verilator", cfg, gp, trace_cap, {"stress_seed": stress_seed})
    if a_emu != a_rtl:
        raise RuntimeError(f"the emu and verilator devices allocated differently: {a_emu} vs {a_rtl}")
    return emu, rtl, a_emu["program"]


def _fmt_retire(r) -> str:
    if r is None:
        return "(nothing retired)"
    cyc = f", cycle {r.cycle}" if r.cycle is not None else ""
    return f"pc 0x{r.pc:08X} word 0x{r.word:08X} ({r.text()}): {r.writes()}{cyc}"


def _regs_text(regs: dict) -> str:
    cause = regs["ERR_CAUSE"]
    try:
        cname = csr.ErrCause(cause).name
    except ValueError:
        cname = str(cause)
    return (f"STATUS 0x{regs['STATUS']:X} ({csr.describe_status(regs['STATUS']).removeprefix('STATUS ')}), "
            f"ERR_CAUSE {cname}, ERR_PC 0x{regs['ERR_PC']:08X}, ERR_ADDR 0x{regs.get('ERR_ADDR', 0):08X}, "
            f"PC 0x{regs['PC']:08X}")


def compare(gp: GenProgram, emu: Side, rtl: Side, base: int) -> Mismatch | None:
    """The first difference between the two runs of gp (None: they agree)."""
    head = (f"lockstep mismatch in program {gp.index} of seed {gp.seed} (dnpu check-lockstep --seed {gp.seed} "
            f"--programs {gp.index + 1}; "
            f"ProgGen(config, {gp.seed}).program({gp.index}); deliberate fault: {gp.fault or 'none'})")
    ends = (f"  emulator: {emu.outcome}, {_regs_text(emu.regs)}, INSTRET {emu.instret}\n"
            f"  RTL:      {rtl.outcome}, {_regs_text(rtl.regs)}, INSTRET {rtl.instret}, {rtl.cycles} cycles")

    def report(what: str, lines: list[str], at: int | None) -> Mismatch:
        listing = gp.listing(base, around=at) if at is not None else gp.listing(base)
        text = "\n".join([head] + lines + ["final state:", ends, f"program at 0x{base:08X}:", listing])
        if rtl.error and rtl.outcome not in ("halted", "fault"):
            text += "\nRTL run:\n" + "\n".join("  " + ln for ln in rtl.error.splitlines())
        return Mismatch(gp.index, gp.seed, what, text)

    if rtl.outcome not in ("halted", "fault") or emu.outcome not in ("halted", "fault"):
        last = rtl.trace[-1] if rtl.trace else None
        return report("run", [f"the runs did not both end (emulator {emu.outcome}, RTL {rtl.outcome}); "
                              f"the RTL's last retire: {_fmt_retire(last)}"],
                      last.pc if last else None)
    key = lambda t: (t.pc, t.word, t.x, t.f)   # noqa: E731
    for i, (e, r) in enumerate(zip(emu.trace, rtl.trace)):
        if key(e) != key(r):
            fields = [n for n, a, b in (("PC", e.pc, r.pc), ("word", e.word, r.word), ("x write", e.x, r.x),
                                        ("f write", e.f, r.f)) if a != b]
            prev = "\n".join(f"    #{j}: {emu.trace[j]}" for j in range(max(0, i - 3), i))
            return report("retire", [
                f"retire #{i} differs in {', '.join(fields)}:",
                f"  instruction {e.text()} at 0x{e.pc:08X}",
                f"  emulator: {_fmt_retire(e)}",
                f"  RTL:      {_fmt_retire(r)}",
                "the retires before it (emulator):" if prev else "(the first retire)"] +
                ([prev] if prev else []), e.pc)
    if emu.trace_dropped or rtl.trace_dropped:
        return report("trace length", [f"a trace outgrew its capacity (emulator dropped {emu.trace_dropped}, "
                                       f"RTL dropped {rtl.trace_dropped}): the check is incomplete"], None)
    if len(emu.trace) != len(rtl.trace):
        i = min(len(emu.trace), len(rtl.trace))
        longer, side = (emu.trace, "emulator") if len(emu.trace) > i else (rtl.trace, "RTL")
        last = emu.trace[i - 1] if i else None
        return report("trace length", [
            f"the emulator retired {len(emu.trace)} instructions, the RTL {len(rtl.trace)}; after "
            f"retire #{i - 1} ({_fmt_retire(last)}) only the {side} goes on:",
            f"  {side}: {_fmt_retire(longer[i])}"], longer[i].pc)
    if emu.regs != rtl.regs or emu.instret != rtl.instret:
        at = emu.regs["ERR_PC"] if emu.outcome == "fault" else (emu.trace[-1].pc if emu.trace else None)
        return report("status", ["the final state differs (every retire agreed)"], at)
    if emu.outcome == "halted":
        for name, e in emu.memory.items():
            r = rtl.memory[name]
            if e != r:
                i = next(k for k in range(len(e)) if e[k] != r[k])
                return report("memory", [f"buffer '{name}' differs first at byte {i} (every retire agreed): "
                                         f"RTL {r[i:i + 16].hex()} != emulator {e[i:i + 16].hex()}"], None)
    return None


def check_lockstep(programs: int = 100, seed: int = 0, config: str | Config = "sim", *, faults: float = 0.3,
                   stress_every: int = 3, exclude: set[str] | None = None, size: int = 40,
                   progress: Callable[[int, int], None] | None = None,
                   on_mismatch: Callable[[Mismatch], None] | None = None) -> dict:
    """Run `programs` generated programs of `seed` in lockstep; the JSON-ready summary:
    programs, mismatches, cycles (total RTL cycles), plus instructions (retired, RTL),
    outcomes (per end: "halted", "fault:<CAUSE>"), excluded (the opcodes left out on request:
    `exclude`), not_generated (ISA instructions dnpu.verify.proggen has no generator
    for), first_mismatch (the report text or None), wall_s. ValueError for `programs` < 1 (a
    check of nothing would pass), a negative `seed` or `stress_every`."""
    for name, v, least in (("programs", programs, 1), ("seed", seed, 0), ("stress_every", stress_every, 0)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < least:
            raise ValueError(f"{name} must be an int >= {least}; got {v!r}")
    cfg = config if isinstance(config, Config) else config_mod.load(config)
    gen = ProgGen(cfg, seed, exclude=exclude, faults=faults, size=size)
    out = {"programs": int(programs), "mismatches": 0, "cycles": 0, "seed": int(seed), "config": cfg.label,
           "instructions": 0, "outcomes": {}, "excluded": sorted(gen.exclude), "not_generated": gen.uncovered,
           "first_mismatch": None, "wall_s": 0.0}
    t0 = time.perf_counter()
    for i in range(int(programs)):
        gp = gen.program(i)
        stress = (seed * 7919 + i) % 65535 + 1 if stress_every and i % stress_every == stress_every - 1 else 0
        emu, rtl, base = run_pair(cfg, gp, stress_seed=stress)
        out["cycles"] += rtl.cycles or 0
        out["instructions"] += len(rtl.trace)
        end = rtl.outcome
        if end == "fault":
            try:
                end = f"fault:{csr.ErrCause(rtl.regs['ERR_CAUSE']).name}"
            except ValueError:
                end = f"fault:{rtl.regs['ERR_CAUSE']}"
        out["outcomes"][end] = out["outcomes"].get(end, 0) + 1
        m = compare(gp, emu, rtl, base)
        if m is not None:
            out["mismatches"] += 1
            if out["first_mismatch"] is None:
                out["first_mismatch"] = m.text
            if on_mismatch:
                on_mismatch(m)
        if progress:
            progress(i + 1, int(programs))
    out["outcomes"] = dict(sorted(out["outcomes"].items()))
    out["wall_s"] = round(time.perf_counter() - t0, 2)
    return out
