"""dnpu_top (hw/rtl/top/): controller, scalar unit, int/FP SRAMs and AXI4 engines, run
against the functional emulator `dnpu.emu` bit for bit.

Every program runs twice: on `Emulator(sim)` and on the RTL (PROG_BASE and ARGs written
through cocotbext-axi's AxiLiteMaster, START, STATUS polled with a cycle budget), with
the same memory image (tests/rtl/axi_mem.py on m_axi: random back-pressure and latency,
SLVERR/DECERR outside the mapped regions, AXI protocol checks). After each run the bench
compares:
  * STATUS, ERR_CAUSE, ERR_PC and PC;
  * the retire trace in lockstep: PC, word and the x / f register written by every
    retired instruction (the emulator's trace=True);
  * INSTRET with the emulator's count, and the counters' invariants;
  * all architectural state: x0..x15, f0..f7, the int, FP and vector SRAMs (read
    through the hierarchy), and every mapped byte of memory.
One emulator mirrors the DUT for the whole simulation (registers and SRAMs carry over
from run to run on both, as on the NPU). Where EXECUTION.md leaves a result unspecified
(the range a faulting transfer would have written), the bench skips that range and
copies the RTL's contents into the mirror.

Tests (cocotb, all on Verilator; scalar_int_ops, loops, faults_partial_and_fetch,
soft_reset and fp_smoke also on Icarus):
  scalar_int_ops           every scalar int instruction over edge values, ARGs, x0
  fp_moves                 S_LI_FP / S_LD_FP / S_ST_FP / S_SEL_FP, H_LOAD_FP / H_STORE_FP
  fp_smoke                 every scalar FP instruction on a few specials (short)
  fp_add_sub, fp_mul       S_ADD_FP / S_SUB_FP / S_MUL_FP: specials pairwise, rounding ties,
                           DAZ/FTZ, zero signs, overflow, NaN/Inf, random operands
  fp_max_lt                S_MAX_FP / S_LT_FP: -0 vs +0, NaN order, DAZ, random operands
  fp_exp                   S_EXP_FP: both saturation thresholds ulp by ulp, tiny t, random
  fp_reci                  S_RECI_FP (multi-cycle): 1/0, 1/Inf, the FTZ edge, back to back
  sram_edges               SRAM ends, x + imm wrap, n = 0 transfers skip every check
  transfers                lane offsets, burst and 4 KiB splits, whole-SRAM transfers
  loops                    nesting, same-end nesting, count 0, full depth, C_HALT in a loop
  faults                   every cause at its PC, cause priority
  faults_partial_and_fetch AXI errors mid-transfer and on fetch, read-ahead never faults
  unknown_opcodes          every opcode outside the ISA table faults ILLEGAL_INSTR; every
                           instruction of the table runs, but those the profile lacks (the
                           matrix unit's with [matrix] rows = 0) fault ILLEGAL_INSTR
  vector_prefetch          H_PREFETCH_V of every MX format of the profile (random tensors,
                           NaN blocks, partial last groups), back to back, then H_STORE_V:
                           rows checked against mx.dequantize_bf16 and the emulator
  vector_load              H_LOAD_V: BF16 rows from every lane offset of a beat, odd row
                           counts, up to the SRAM's top, 500 rows at once, back to back, with
                           and without back-pressure; H_STORE_V round trip
  vector_faults            H_PREFETCH_V / H_STORE_V / H_LOAD_V: every cause, their priority,
                           n = 0
  vector_stream_rate       one long e4m3 prefetch, memory never stalling: >= 0.95 R beats
                           per cycle over the prefetch's data window
  soft_reset               after a fault, during an endless run with transfers in flight,
                           with a reciprocal in flight
  counters                 exact beats and bursts, INSTRET, BUSY_CYCLES, CLEAR_COUNTERS
  random_programs          12 random programs of dnpu.verify.proggen (whole ISA), lockstep
                           (4 in test_top_verilator, 12 in make test-slow)
pytest: test_top_verilator, test_top_icarus (subset), test_top_lint (every profile; asic-2048 in
make test-slow).

File layout: bench helpers, program helpers, the cocotb tests, the pytest entries.
"""

from __future__ import annotations

import logging
import os
import random

import numpy as np
import pytest

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from dnpu.spec import config, csr, isa, mx
from dnpu.spec.csr import ErrCause
from dnpu.emu import Emulator
from dnpu.verify.proggen import HOLE as GEN_HOLE, ProgGen, absent_instructions

try:  # collected by pytest as a member of the tests/rtl package
    from .cocotb_run import REPO, lint, rtl_sources, run_block
    from .axi_mem import AxiMem, burst_plan
except ImportError:  # imported by cocotb inside the simulator, tests/rtl on PYTHONPATH
    from cocotb_run import REPO, lint, rtl_sources, run_block
    from axi_mem import AxiMem, burst_plan

CFG = config.load("sim")
BB = CFG.beat_bytes
WPB = BB // 4
INT_WORDS = CFG.sram.int_words
FP_WORDS = CFG.sram.fp_words
LOOP_DEPTH = CFG.ctrl.loop_depth
FETCH_WORDS = CFG.ctrl.fetch_words
MAX_BURST = CFG.axi.max_burst
VLEN = CFG.vector.vlen
VEC_ROWS = CFG.sram.vector_rows
MX_BLOCK = CFG.mx.block
MX_FORMATS = list(CFG.mx.formats)
M32 = (1 << 32) - 1

# Memory layout, shared by the emulator and the AXI model. Regions are beat-aligned.
PROG, PROG_SIZE = 0x0001_0000, 0x8000
DATA, DATA_SIZE = 0x0002_0000, 0x4000
OUT, OUT_SIZE = 0x0004_0000, 0x4000
EDGE, EDGE_SIZE = 0x0006_0000, 0x40      # a short region with nothing after it
SLV, SLV_SIZE = 0x0008_0000, 0x1000      # answers SLVERR (unmapped for the emulator)
HOLE = 0x0009_0000                       # nothing there: DECERR
GEN, GEN_SIZE = 0x0010_0000, 0x20000     # random_programs' buffers (dnpu.verify.proggen's HOLE is unmapped)
REGIONS = [(PROG, PROG_SIZE), (DATA, DATA_SIZE), (OUT, OUT_SIZE), (EDGE, EDGE_SIZE), (GEN, GEN_SIZE)]
assert not any(b <= GEN_HOLE < b + n for b, n in REGIONS + [(SLV, SLV_SIZE)]), "proggen's HOLE is mapped"

BUSY = csr.mask("STATUS", "BUSY")
DONE = csr.mask("STATUS", "DONE")
ERROR = csr.mask("STATUS", "ERROR")
START = csr.mask("CTRL", "START")
SOFT_RESET = csr.mask("CTRL", "SOFT_RESET")
CLEAR_COUNTERS = csr.mask("CTRL", "CLEAR_COUNTERS")
COUNTERS = list(csr.COUNTERS)
WIN_R, WIN_W, WIN_X = (csr.mask("WIN_PERM", b) for b in "RWX")
WIN_ALL = WIN_R | WIN_W | WIN_X



# ---------------------------------------------------------------------------
# The world: one emulator and one memory model, kept in step for a whole simulation
# ---------------------------------------------------------------------------

class World:
    def __init__(self):
        self.emu = Emulator(CFG)
        self.mem = AxiMem(BB, MAX_BURST, CFG.axi.id_width, CFG.axi.addr_width)
        for base, n in REGIONS:
            self.emu.map(base, n)
            self.mem.map(base, n)
        self.mem.map_error(SLV, SLV_SIZE)

    def write(self, addr: int, data: bytes) -> None:
        self.emu.write(addr, data)
        self.mem.write(addr, data)


_WORLD: World | None = None


def world() -> World:
    global _WORLD
    if _WORLD is None:
        _WORLD = World()
    return _WORLD


# ---------------------------------------------------------------------------
# Bench
# ---------------------------------------------------------------------------

class RunFail(AssertionError):
    pass


class Bench:
    """Clock, reset, AXI-Lite master, memory model, retire monitor; `run` executes one
    program on the emulator and the RTL and compares everything."""

    def __init__(self, dut):
        self.dut = dut
        self.w = world()
        self.trace: list[tuple] = []
        self.busy_cycles = 0
        self.cycle = 0
        self.backdoor = True

    async def start(self, stress: bool = True, seed: int = 0) -> "Bench":
        dut = self.dut
        dut.rst_n.value = 0
        Clock(dut.clk, 10, unit="ns").start()
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst_n,
                                  reset_active_level=False)
        self.axil.write_if.log.setLevel(logging.WARNING)   # one line per access otherwise
        self.axil.read_if.log.setLevel(logging.WARNING)
        mem = self.w.mem
        mem.stress = stress
        mem.rng = random.Random(seed)
        mem.attach(dut, dut.clk)
        mem.per_cycle = [self._monitor]
        self._sig = {n: getattr(dut, n) for n in (
            "retire_valid", "retire_pc", "retire_word", "retire_x_we", "retire_x_idx",
            "retire_x_data", "retire_f_we", "retire_f_idx", "retire_f_data")}
        self._busy = dut.u_core.busy_o
        await ClockCycles(dut.clk, 3)
        await FallingEdge(dut.clk)
        dut.rst_n.value = 1
        # rst_n clears what SOFT_RESET clears (and the counters); SRAMs and memory stay.
        self.w.emu.soft_reset()
        await ClockCycles(dut.clk, 2)
        # rst_n disables every memory window: window 0 grants everything, on both sides
        for i in range(csr.REGS["WIN_BASE"].count):
            await self.set_window(i, 0, M32 if i == 0 else 0, WIN_ALL if i == 0 else 0)
        return self

    async def set_window(self, i: int, base: int, limit: int, perm: int) -> None:
        for reg, v in (("WIN_BASE", base), ("WIN_LIMIT", limit), ("WIN_PERM", perm)):
            await self.wr(f"{reg}{i}", v)
        self.w.emu.set_window(i, base, limit, perm)

    def _monitor(self) -> None:
        self.cycle += 1
        s = self._sig
        if int(self._busy.value):
            self.busy_cycles += 1
        if int(s["retire_valid"].value):
            xw = (int(s["retire_x_idx"].value), int(s["retire_x_data"].value)) \
                if int(s["retire_x_we"].value) else None
            fw = (int(s["retire_f_idx"].value), int(s["retire_f_data"].value)) \
                if int(s["retire_f_we"].value) else None
            self.trace.append((int(s["retire_pc"].value), int(s["retire_word"].value), xw, fw))

    # ---- CSR access ----------------------------------------------------------------
    async def wr(self, name: str, value: int) -> None:
        await self.axil.write_dword(csr.offset(name), value & M32)

    async def rd(self, name: str) -> int:
        return await self.axil.read_dword(csr.offset(name))

    async def rd64(self, name: str) -> int:
        lo = await self.rd(f"{name}_LO")
        hi = await self.rd(f"{name}_HI")
        return hi << 32 | lo

    async def counters(self) -> dict[str, int]:
        return {n: await self.rd64(n) for n in COUNTERS}

    async def diag(self) -> str:
        c = await self.counters()
        st = await self.rd("STATUS")
        return (f"STATUS=0x{st:X} ({csr.describe_status(st)}), PC=0x{await self.rd('PC'):08X}, "
                f"ERR_CAUSE={await self.rd('ERR_CAUSE')}, ERR_PC=0x{await self.rd('ERR_PC'):08X}, "
                f"counters {c}, bytes read {c['RD_BEATS'] * BB}, written {c['WR_BEATS'] * BB}")

    # ---- running -------------------------------------------------------------------
    async def start_rtl(self, prog_base: int, args) -> None:
        await self.wr("PROG_BASE", prog_base)
        for k, v in enumerate(args):
            await self.wr(f"ARG{k}", v)
        await self.wr("CTRL", CLEAR_COUNTERS)
        self.trace.clear()
        self.busy_cycles = 0
        await self.wr("CTRL", START)

    async def wait_idle(self, budget: int) -> int:
        t0 = self.cycle
        while True:
            st = await self.rd("STATUS")
            if not st & BUSY:
                return st
            if self.cycle - t0 > budget:
                raise RunFail(f"RTL still busy after {budget} cycles: {await self.diag()}")

    async def run(self, prog_base: int, args=(), *, budget: int = 300_000,
                  max_instructions: int = 2_000_000, expect: str | None = None,
                  expect_cause: ErrCause | None = None):
        """Run a program on both; compare; return the emulator's RunResult."""
        w = self.w
        args = [int(a) & M32 for a in args] + [0] * (8 - len(args))
        res = w.emu.run(prog_base, args=args, max_instructions=max_instructions, trace=True)
        assert res.status != "internal", res.message
        assert res.status != "budget", f"emulator: {res}"
        if expect is not None:
            assert res.status == expect, f"test program: expected {expect}, emulator says {res}"
        if expect_cause is not None:
            assert res.cause == expect_cause, f"test program: expected {expect_cause!r}, emulator says {res}"
        await self.start_rtl(prog_base, args)
        st = await self.wait_idle(budget)
        await ClockCycles(self.dut.clk, 2)        # the last retire's trace and counter strobe
        await self.compare(res, st)
        return res

    def unspecified(self, res) -> list[tuple[str, int, int]]:
        """What EXECUTION.md leaves open after res: the destination of a transfer that
        faulted AXI_READ / AXI_WRITE, as ("INT" | "FP", base, n) or ("M", addr, n).
        The faulting instruction wrote no register, so the emulator's registers are
        its operands."""
        emu = self.w.emu
        if res.status != "fault" or res.cause not in (ErrCause.AXI_READ, ErrCause.AXI_WRITE):
            return []
        if not emu.mem.is_mapped(res.pc, 4):
            return []                                  # a fetch fault
        d = isa.decode(emu.mem.word(res.pc))
        if not d.name.startswith("H_") or d.name == "H_SAMPLE_FUSED":    # fused writes no memory
            return []
        x = emu.x
        sram, addr, n = int(x[d.operands[0]]), int(x[d.args["addr"]]), int(x[d.args["n"]])
        if d.name in ("H_PREFETCH_V", "H_LOAD_V"):
            return [("V", sram, n)]
        if d.name.startswith("H_LOAD"):
            return [("FP" if d.name.endswith("FP") else "INT", sram, n)]
        nbytes = 2 * VLEN * n if d.name == "H_STORE_V" else 4 * n
        out = []
        for base, size in REGIONS:
            lo, hi = max(addr, base), min(addr + nbytes, base + size)
            if hi > lo:
                out.append(("M", lo, hi - lo))
        return out

    async def compare(self, res, st, loose: bool = False) -> None:
        """loose: the run began with a START that also aborted a running program
        (SOFT_RESET | START): counters and the trace's head hold the aborted run."""
        w = self.w
        emu = w.emu
        got = {"STATUS": st, "ERR_CAUSE": await self.rd("ERR_CAUSE"),
               "ERR_PC": await self.rd("ERR_PC"), "ERR_ADDR": await self.rd("ERR_ADDR"), "PC": await self.rd("PC")}
        want = {k: emu.read_csr(k) for k in got}
        head = f"emulator: {res}; RTL: {await self.diag()}"
        assert got == want, f"status differs: RTL {got} != emulator {want}\n{head}"
        if loose:
            self.trace = self.trace[len(self.trace) - len(res.trace):]
        self.compare_trace(res.trace, head)
        c = await self.counters()
        if not loose:
            assert c["INSTRET"] == res.instret, f"INSTRET {c['INSTRET']} != {res.instret}\n{head}"
            assert c["BUSY_CYCLES"] == self.busy_cycles, (c, self.busy_cycles)
        assert c["CYCLES"] >= c["BUSY_CYCLES"] > 0, c
        stalls = c["STALL_FETCH"] + c["STALL_MEM_RD"] + c["STALL_MEM_WR"]
        assert stalls <= c["BUSY_CYCLES"], c
        if res.status == "fault" and res.cause == ErrCause.MISALIGNED and res.pc % 4:
            # a misaligned PROG_BASE faults before any fetch
            assert c["RD_BEATS"] == 0 and c["STALL_FETCH"] == 0 and c["INSTRET"] == 0, c
        else:
            assert c["STALL_FETCH"] > 0, c       # START always misses the line buffers
            assert c["RD_BEATS"] >= 1, c
        self.compare_state(self.unspecified(res), head)
        assert not w.mem.errors, f"AXI protocol: {w.mem.errors[:5]}"

    def compare_trace(self, etrace, head: str) -> None:
        rt = self.trace
        for i, (e, r) in enumerate(zip(etrace, rt)):
            xw = fw = None
            for k, v in e.writes.items():
                if k[0] == "x":
                    xw = (int(k[1:]), int(v))
                elif k[0] == "f":
                    fw = (int(k[1:]), int(v))
            want = (e.pc, e.word, xw, fw)
            if r != want:
                ctx = "\n".join(f"  {t.pc:08X} {t.text}" for t in etrace[max(0, i - 4):i + 1])
                raise RunFail(f"retire {i} differs: RTL pc=0x{r[0]:08X} word=0x{r[1]:08X} x={r[2]} "
                              f"f={r[3]}, emulator {e.text} x={xw} f={fw}\n{ctx}\n{head}")
        assert len(rt) == len(etrace), f"RTL retired {len(rt)}, emulator {len(etrace)}\n{head}"

    def rtl_regs(self):
        core = self.dut.u_core
        x = [0] + [int(core.xr[i].value) for i in range(1, 16)]
        f = [int(core.fr[i].value) for i in range(8)]
        return x, f

    def rtl_sram(self, which: str) -> np.ndarray:
        core = self.dut.u_core
        arr = core.u_int_sram.mem if which == "INT" else core.u_fp_sram.mem
        n = INT_WORDS if which == "INT" else FP_WORDS
        return np.array([int(arr[i].value) for i in range(n)], np.uint32)

    def rtl_vsram(self) -> np.ndarray:
        arr = self.dut.u_core.u_vec_sram.mem
        raw = b"".join(int(arr[i].value).to_bytes(2 * VLEN, "little") for i in range(VEC_ROWS))
        return np.frombuffer(raw, "<u2").reshape(VEC_ROWS, VLEN).copy()

    def compare_state(self, unspecified, head: str) -> None:
        emu = self.w.emu
        x, f = self.rtl_regs()
        assert x == [int(v) for v in emu.x], f"x regs: RTL {x} != emulator {list(emu.x)}\n{head}"
        assert f == [int(v) for v in emu.f], f"f regs: RTL {f} != emulator {list(emu.f)}\n{head}"
        skip = {"INT": [], "FP": [], "V": [], "M": []}
        for kind, a, n in unspecified:
            skip[kind].append((a, n))
        for kind, esram in (("INT", emu.intsram), ("FP", emu.fpsram)):
            rs = self.rtl_sram(kind)
            for a, n in skip[kind]:          # unspecified: take the RTL's contents
                esram[a:a + n] = rs[a:a + n]
            bad = np.flatnonzero(rs != esram)
            assert bad.size == 0, (f"{kind} SRAM differs at {bad[:8].tolist()}: RTL "
                                   f"{[hex(v) for v in rs[bad[:8]]]} != emulator "
                                   f"{[hex(v) for v in esram[bad[:8]]]}\n{head}")
        rv, ev = self.rtl_vsram(), emu.vsram
        for a, n in skip["V"]:
            ev[a:a + n] = rv[a:a + n]
        bad = np.flatnonzero((rv != ev).any(axis=1))
        assert bad.size == 0, (f"vector SRAM differs in rows {bad[:8].tolist()}: row {bad[0]} RTL "
                               f"{[hex(v) for v in rv[bad[0]]]} != emulator "
                               f"{[hex(v) for v in ev[bad[0]]]}\n{head}")
        for a, n in skip["M"]:
            self.w.emu.write(a, self.w.mem.read(a, n))
        for base, n in REGIONS:
            r = self.w.mem.read(base, n)
            e = emu.read(base, n)
            if r != e:
                i = next(k for k in range(n) if r[k] != e[k])
                raise RunFail(f"memory differs first at 0x{base + i:08X}: RTL {r[i:i + 16].hex()} "
                              f"!= emulator {e[i:i + 16].hex()}\n{head}")

    async def run_rtl_only(self, prog_base: int, budget: int = 20_000) -> tuple[int, int, int]:
        await self.start_rtl(prog_base, [0] * 8)
        st = await self.wait_idle(budget)
        return st, await self.rd("ERR_CAUSE"), await self.rd("ERR_PC")


# ---------------------------------------------------------------------------
# Program helpers
# ---------------------------------------------------------------------------

def li(rd: int, v: int) -> list[str]:
    """x[rd] = v (any 32-bit value) in two instructions, whatever the value: the tests'
    programs keep their layout when a constant changes."""
    return isa.load_imm(rd, v, always_two=True)


def words(*parts) -> list[int]:
    """Concatenate assembly text (str, or a list of lines) and raw words (int)."""
    out: list[int] = []
    for p in parts:
        if isinstance(p, int):
            out.append(p & M32)
        else:
            src = p if isinstance(p, str) else "\n".join(p)
            out.extend(isa.assemble_words(src))
    return out


def place(addr: int, ws: list[int]) -> int:
    world().write(addr, b"".join(int(x).to_bytes(4, "little") for x in ws))
    return addr


async def asm_run(tb: Bench, *parts, base: int = PROG, args=(), **kw):
    return await tb.run(place(base, words(*parts)), args, **kw)


def rand_bytes(rng: random.Random, n: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(n))


EDGE_VALUES = [0, 1, 2, M32, 0x7FFFFFFF, 0x80000000, 0x80000001, 12345, (-7) & M32, 0x55555555]


# ---------------------------------------------------------------------------
# Tests: instructions
# ---------------------------------------------------------------------------

@cocotb.test(timeout_time=60, timeout_unit="sec")
async def scalar_int_ops(dut):
    """Every scalar int instruction over edge values (wrap, sign, shifts), x0 writes
    dropped, all eight ARGs, then INT SRAM stores and an H_STORE_INT of them."""
    tb = await Bench(dut).start(seed=1)
    lines = []
    for k in range(8):
        lines.append(f"S_LD_ARG x{8 + k}, {k}")
    for a in EDGE_VALUES:
        for b in EDGE_VALUES:
            lines += li(3, a) + li(4, b)
            for op in ("S_ADD", "S_SUB", "S_MUL", "S_MIN", "S_MAX", "S_SLT"):
                lines.append(f"{op} x5, x3, x4")
        for sh in (0, 1, 13, 31):
            lines += [f"S_SLLI x6, x3, {sh}", f"S_SRLI x7, x3, {sh}"]
        for imm in (-65536, -1, 0, 1, 65535):
            lines.append(f"S_ADDI x6, x3, {imm}")
    lines += ["S_LUI x6, 0x1FFFFF", "S_LUI x7, 0", "S_LUI x6, 1",
              "S_ADDI x0, x3, 5", "S_ADD x0, x3, x3", "S_LUI x0, 77", "S_LD_ARG x0, 3",
              "S_ADD x7, x0, x0", "C_NOP"]
    for k in range(1, 16):
        lines.append(f"S_ST_INT x{k}, x0, {100 + k}")
    lines += ["S_LD_INT x3, x0, 105", "S_LD_INT x4, x0, 100",
              "S_ADDI x5, x0, 100", "S_ADDI x6, x0, 16", "S_LD_ARG x7, 0",
              "H_STORE_INT x5, x7, x6", "C_HALT"]
    args = [OUT + 0x100, 0xDEADBEEF, 0x80000000, 1, M32, 0, 0x12345678, 0x7FFFFFFF]
    res = await asm_run(tb, lines, args=args, expect="halted")
    assert res.instret > 1000


@cocotb.test(timeout_time=60, timeout_unit="sec")
async def fp_moves(dut):
    """S_LI_FP, S_LD_FP, S_ST_FP, S_SEL_FP (x[c] zero and non-zero), H_LOAD_FP and
    H_STORE_FP: FP32 bit patterns (NaN payloads, -0, inf, subnormals) move unchanged."""
    tb = await Bench(dut).start(seed=2)
    rng = random.Random(2)
    pats = [0x7FC00001, 0x80000000, 0xFF800000, 0x00000001, 0x3F800000, 0xFFFFFFFF, 0x7F800001]
    data = b"".join(p.to_bytes(4, "little") for p in pats) + rand_bytes(rng, 4 * 57)
    world().write(DATA + 0x200, data)
    lines = ["S_LD_ARG x1, 0", "S_LD_ARG x2, 1", "S_ADDI x3, x0, 64", "S_ADDI x4, x0, 7",
             "H_LOAD_FP x4, x1, x3"]
    for k, bits in enumerate((0x7FC0, 0xFF80, 0x8000, 0x3F80, 0x0001, 0xFFFF, 0x7F80, 0x0000)):
        lines.append(f"S_LI_FP f{k}, 0x{bits:04X}")
    lines += [f"S_ST_FP f{k}, x0, {FP_WORDS - 1 - k}" for k in range(8)]
    lines += [f"S_LD_FP f{k}, x4, {k * 3}" for k in range(8)]
    lines += ["S_ADDI x5, x0, 1", "S_SEL_FP f0, f1, f2, x5", "S_SEL_FP f3, f4, f5, x0",
              "S_SEL_FP f6, f6, f7, x5", "S_LUI x6, 0x100000", "S_SEL_FP f7, f0, f1, x6",
              "S_ST_FP f0, x4, -7", "S_ST_FP f3, x4, -6", "S_ST_FP f6, x4, -5", "S_ST_FP f7, x4, -4",
              "S_ADDI x7, x0, 80", "H_STORE_FP x0, x2, x7",
              f"S_ADDI x8, x0, {FP_WORDS - 8}", "S_ADDI x9, x0, 8", "S_ADDI x10, x2, 1024",
              "H_STORE_FP x8, x10, x9", "C_HALT"]
    await asm_run(tb, lines, args=[DATA + 0x200, OUT + 0x400], expect="halted")


# ---------------------------------------------------------------------------
# Tests: scalar FP arithmetic (docs/NUMERICS.md; the emulator decides every bit)
# ---------------------------------------------------------------------------

def f32b(v: float) -> int:
    """FP32 bits of the float nearest v."""
    return int(np.array([v], np.float32).view(np.uint32)[0])


def _b2f(bits: int) -> float:
    return float(np.array([bits], np.uint32).view(np.float32)[0])


# Operands every FP family sees: zeros, subnormals (DAZ), the normal range's ends,
# infinities, NaNs with and without payload, and ordinary numbers.
FP_SPECIALS = [
    0x00000000, 0x80000000,                         # +-0
    0x00000001, 0x807FFFFF, 0x00400000,             # subnormals: read as +-0
    0x00800000, 0x80800000, 0x00800001, 0x00FFFFFF,  # around the smallest normal
    0x3F800000, 0xBF800000, 0x3F800001, 0x3F7FFFFF, 0x3FC00000, 0x40000000, 0xC0400000,
    0x33800000, 0x33000000,                         # 2^-24, 2^-25
    0x7F7FFFFF, 0xFF7FFFFF, 0x7F000000,             # the largest finite, 2^127
    0x7F800000, 0xFF800000,                         # +-Inf
    0x7FC00000, 0x7F800001, 0xFFFFFFFF, 0xFFC00000,  # NaNs (payloads, sign)
]

# Add/sub: ties to even, just-above/below ties, cancellation, zero signs, FTZ of a
# result below 2^-126, overflow by rounding, Inf - Inf, sticky over a large gap.
FP_ADD_CASES = [
    (0x3F800000, 0x33800000), (0x3F800001, 0x33800000), (0x3F800000, 0x33800001),
    (0x4B800000, 0x3F800000), (0x4B800001, 0x3F800000), (0x4B800000, 0x40400000),
    (0x3F800000, 0xBF7FFFFF), (0x3F800000, 0xB3000000), (0x3F800000, 0xB3000001),
    (0x3F800000, 0xB3800001), (0x3F800000, 0x0C000000), (0x3F800000, 0x8C000000),
    (0x00800001, 0x80800000), (0x00800000, 0x80800001), (0x00800000, 0x00800000),
    (0x01000000, 0x80FFFFFF), (0x00FFFFFF, 0x80800000), (0x00800000, 0x00000001),
    (0x7F7FFFFF, 0x73000000), (0x7F7FFFFF, 0x72FFFFFF), (0x7F7FFFFF, 0x73000001),
    (0xFF7FFFFF, 0xF3000000), (0x7F7FFFFF, 0x7F7FFFFF), (0x7F7FFFFF, 0x7F000000),
    (0x7F800000, 0xFF800000), (0x7F800000, 0x7F800000), (0x7F800000, 0xFF7FFFFF),
    (0x80000000, 0x80000000), (0x80000001, 0x80000005), (0x00000001, 0x80000001),
    (0x40490FDB, 0xC0490FDB), (0x3DCCCCCD, 0x3E4CCCCD), (0x4B7FFFFF, 0x3F000000),
]

# Mul: the NUMERICS FTZ example 2^-63(1-2^-24) x 2^-63 -> +0, products at 2^-126,
# overflow, 0 x Inf, zero and subnormal signs.
FP_MUL_CASES = [
    (0x1FFFFFFF, 0x20000000), (0x20000000, 0x20000000), (0x20000001, 0x1FFFFFFF),
    (0x1FFFFFFF, 0x1FFFFFFF), (0x20000000, 0x1F800000), (0x1FC00000, 0x1FAAAAAB),
    (0x5F800000, 0x5F800000), (0x5F7FFFFF, 0x5F800000), (0x5F800000, 0x5F000000),
    (0x7F7FFFFF, 0x3F800001), (0x7F7FFFFF, 0x3F7FFFFF), (0x7F000000, 0x40000000),
    (0x00000000, 0x7F800000), (0x80000001, 0xFF800000), (0x7F800000, 0xBF800000),
    (0x80000000, 0x40A00000), (0x80000003, 0x40400000), (0x3FFFFFFF, 0x3FFFFFFF),
    (0x3F800001, 0x3F7FFFFF), (0x3FAAAAAB, 0x40400000),
]

# Max / LT: -0 vs +0 both ways, NaN vs numbers and NaN, subnormal vs zero, equal values.
FP_CMP_CASES = [
    (0x80000000, 0x00000000), (0x00000000, 0x80000000), (0x00000001, 0x80000000),
    (0x80000001, 0x00000002), (0x807FFFFF, 0x00000000), (0x7F800001, 0x7FC00000),
    (0xFFFFFFFF, 0x7F800000), (0x7F800000, 0xFFC00000), (0xFF800000, 0x7F800001),
    (0x3F800000, 0x3F800000), (0xBF800000, 0xBF800001), (0x00800000, 0x80800000),
]


def _exp_operands(rng: random.Random) -> list[int]:
    """EXP: specials, both thresholds (t = fp32(x * LOG2E) crossing 128 and -126) bit by
    bit, |t| < 2^-6 (the tiny-t path), n = 127 with p rounding to 2, random values."""
    ops = list(FP_SPECIALS)
    log2e = _b2f(0x3FB8AA3B)
    for t in (128.0, -126.0, 127.0, -125.0, 1.0, -1.0):
        c = f32b(t / log2e)
        ops += [(c + d) & M32 for d in range(-24, 25)]
    for e in range(100, 124):                      # 2^-27 .. 2^-4: around |t| = 2^-6
        for s in (0, 1):
            ops.append(s << 31 | e << 23 | rng.getrandbits(23))
            ops.append(s << 31 | e << 23)
    ops += [f32b(rng.uniform(-90.0, 90.0)) for _ in range(120)]
    ops += [f32b(rng.uniform(-1.0, 1.0)) for _ in range(40)]
    ops += [rng.getrandbits(32) for _ in range(60)]
    return ops


def _reci_operands(rng: random.Random) -> list[int]:
    """RECI: 1/+-0 and 1/subnormal = +-Inf, 1/+-Inf = +-0, NaN, the FTZ edge
    1/0x7E800000 = 2^-126 kept and 1/0x7E800001 flushed, powers of two, random values."""
    ops = list(FP_SPECIALS)
    ops += [0x7E800000, 0x7E800001, 0xFE800000, 0xFE800001, 0x7E7FFFFF, 0x7E7FFFFE,
            0x7EFFFFFF, 0x00800000, 0x80FFFFFF, 0x40400000, 0x3F800000, 0x3FFFFFFF]
    ops += [rng.getrandbits(1) << 31 | e << 23 for e in range(1, 255, 7)]
    ops += [rng.getrandbits(1) << 31 | rng.randint(1, 254) << 23 | rng.getrandbits(23) for _ in range(60)]
    ops += [rng.getrandbits(32) for _ in range(30)]
    return ops


def _binary_random(rng: random.Random, n: int) -> list[tuple[int, int]]:
    """Random pairs: any bits, close exponents (cancellation, alignment) and opposite
    signs, near-equal magnitudes."""
    out = []
    for k in range(n):
        a = rng.getrandbits(32)
        kind = k % 4
        if kind == 0:
            b = rng.getrandbits(32)
        elif kind == 1:
            e = (a >> 23 & 0xFF) + rng.randint(-26, 26)
            b = rng.getrandbits(1) << 31 | (min(max(e, 0), 255) << 23) | rng.getrandbits(23)
        elif kind == 2:
            b = (a ^ 0x80000000) ^ rng.getrandbits(rng.randint(0, 8))
        else:
            a = rng.getrandbits(1) << 31 | rng.randint(100, 150) << 23 | rng.getrandbits(23)
            b = rng.getrandbits(1) << 31 | rng.randint(100, 150) << 23 | rng.getrandbits(23)
        out.append((a, b))
    return out


def _mul_edges(rng: random.Random, n: int) -> list[tuple[int, int]]:
    """Products rounding around 2^-126 (kept or flushed) and 2^128 (overflow)."""
    out = []
    for k in range(n):
        low = k % 2 == 0
        target = 2.0 ** -126 if low else 2.0 ** 128
        e = rng.randint(60, 66) if low else rng.randint(186, 192)
        a = rng.getrandbits(1) << 31 | e << 23 | rng.getrandbits(23)
        b = f32b(target / abs(_b2f(a)))
        out.append((a, (b + rng.randint(-2, 2)) & 0x7FFFFFFF | rng.getrandbits(1) << 31))
    return out


def _pair_words(pairs) -> list[int]:
    return [w for p in pairs for w in p]


async def _fp_batches(tb: Bench, operands: list[int], arity: int, body: list[str], n_fp: int,
                      n_int: int = 0) -> None:
    """Run `body` once per operand group (arity words; the body reads them at x3, x3+1),
    writing n_fp results at FP SRAM x4.. and n_int at INT SRAM x5.., in as many programs as
    the FP SRAM needs; H_STORE_FP / H_STORE_INT the results. Everything is compared with
    the emulator after each program (registers, SRAMs, memory, trace)."""
    assert len(operands) % arity == 0
    groups = len(operands) // arity
    per = FP_WORDS // (arity + n_fp)
    for k0 in range(0, groups, per):
        n = min(per, groups - k0)
        words_in = operands[k0 * arity:(k0 + n) * arity]
        world().write(DATA, b"".join(int(v).to_bytes(4, "little") for v in words_in))
        lines = ["S_LD_ARG x1, 0", "S_LD_ARG x2, 1", f"S_ADDI x6, x0, {n * arity}",
                 "H_LOAD_FP x0, x1, x6", "S_ADDI x3, x0, 0", f"S_ADDI x4, x0, {n * arity}",
                 "S_ADDI x5, x0, 0", f"S_ADDI x6, x0, {n}"]
        step = [f"S_ADDI x3, x3, {arity}", f"S_ADDI x4, x4, {n_fp}"]
        if n_int:
            step.append(f"S_ADDI x5, x5, {n_int}")
        lines += [f"C_LOOP x6, {len(body) + len(step)}"] + body + step
        lines += [f"S_ADDI x7, x0, {n * arity}", f"S_ADDI x8, x0, {n * n_fp}",
                  "H_STORE_FP x7, x2, x8"]
        if n_int:
            lines += [f"S_ADDI x8, x0, {n * n_int}", f"S_ADDI x9, x2, {4 * n * n_fp}",
                      "H_STORE_INT x0, x9, x8"]
        lines.append("C_HALT")
        await asm_run(tb, lines, args=[DATA, OUT], expect="halted")


@cocotb.test(timeout_time=60, timeout_unit="sec")
async def fp_smoke(dut):
    """Every scalar FP instruction once per pair of a few specials, straight-line (the
    short test that also runs on Icarus); results to both SRAMs and out through AXI."""
    tb = await Bench(dut).start(seed=16)
    vals = [0x80000000, 0x00000001, 0x3F800000, 0xC0400000, 0x7F7FFFFF, 0x7F800000, 0x7F800001,
            0x42B17218, 0x7E800001]
    world().write(DATA + 0x100, b"".join(v.to_bytes(4, "little") for v in vals))
    lines = ["S_LD_ARG x1, 0", "S_LD_ARG x2, 1", f"S_ADDI x3, x0, {len(vals)}", "H_LOAD_FP x0, x1, x3"]
    out = 16
    for i in range(len(vals)):
        lines += [f"S_LD_FP f1, x0, {i}", "S_EXP_FP f3, f1", "S_RECI_FP f4, f1",
                  f"S_ST_FP f3, x0, {out}", f"S_ST_FP f4, x0, {out + 1}"]
        out += 2
        for j in (0, 2, 5, 6, 7):
            lines += [f"S_LD_FP f2, x0, {j}", "S_ADD_FP f5, f1, f2", "S_SUB_FP f6, f1, f2",
                      "S_MUL_FP f7, f1, f2", "S_MAX_FP f0, f1, f2", "S_LT_FP x4, f1, f2",
                      f"S_ST_FP f5, x0, {out}", f"S_ST_FP f6, x0, {out + 1}",
                      f"S_ST_FP f7, x0, {out + 2}", f"S_ST_FP f0, x0, {out + 3}",
                      f"S_ST_INT x4, x0, {out}"]
            out += 4
    lines += [f"S_ADDI x5, x0, {out}", "H_STORE_FP x0, x2, x5", "C_HALT"]
    await asm_run(tb, lines, args=[DATA + 0x100, OUT + 0x800], expect="halted")


@cocotb.test(timeout_time=180, timeout_unit="sec")
async def fp_add_sub(dut):
    """S_ADD_FP / S_SUB_FP: every pair of specials both ways, hand-picked rounding, FTZ,
    zero-sign and overflow cases, random pairs; rd = rs (an accumulator) too."""
    tb = await Bench(dut).start(seed=11)
    rng = random.Random(11)
    pairs = [(a, b) for a in FP_SPECIALS for b in FP_SPECIALS] + FP_ADD_CASES + _binary_random(rng, 240)
    body = ["S_LD_FP f1, x3, 0", "S_LD_FP f2, x3, 1",
            "S_ADD_FP f3, f1, f2", "S_SUB_FP f4, f1, f2", "S_ADD_FP f5, f2, f1", "S_SUB_FP f6, f2, f1",
            "S_ST_FP f3, x4, 0", "S_ST_FP f4, x4, 1", "S_ST_FP f5, x4, 2", "S_ST_FP f6, x4, 3",
            "S_ADD_FP f7, f7, f3"]
    await _fp_batches(tb, _pair_words(pairs), 2, body, 4)
    await asm_run(tb, ["S_LI_FP f1, 0x3F80", "S_ADD_FP f1, f1, f1", "S_SUB_FP f2, f1, f1",
                       "S_LI_FP f3, 0x8000", "S_SUB_FP f4, f3, f2", "S_ADD_FP f5, f3, f3", "C_HALT"],
                  expect="halted")


@cocotb.test(timeout_time=120, timeout_unit="sec")
async def fp_mul(dut):
    """S_MUL_FP: pairs of specials, products rounding at 2^-126 (kept / flushed) and at
    2^128 (overflow), 0 x Inf, signs of zeros, random pairs; squares (rs1 = rs2)."""
    tb = await Bench(dut).start(seed=12)
    rng = random.Random(12)
    pairs = ([(a, b) for a in FP_SPECIALS for b in FP_SPECIALS] + FP_MUL_CASES
             + _mul_edges(rng, 80) + _binary_random(rng, 160))
    body = ["S_LD_FP f1, x3, 0", "S_LD_FP f2, x3, 1", "S_MUL_FP f3, f1, f2", "S_MUL_FP f4, f2, f1",
            "S_MUL_FP f5, f1, f1", "S_ST_FP f3, x4, 0", "S_ST_FP f4, x4, 1", "S_ST_FP f5, x4, 2"]
    await _fp_batches(tb, _pair_words(pairs), 2, body, 3)


@cocotb.test(timeout_time=120, timeout_unit="sec")
async def fp_max_lt(dut):
    """S_MAX_FP (b if b > a else a, as its DAZ value, NaN canonical) and S_LT_FP (into x
    registers, x0 dropped): every pair of specials both ways, -0/+0 ties, NaN order,
    subnormal vs zero, random pairs; rd = rs1."""
    tb = await Bench(dut).start(seed=13)
    rng = random.Random(13)
    pairs = [(a, b) for a in FP_SPECIALS for b in FP_SPECIALS] + FP_CMP_CASES + _binary_random(rng, 160)
    body = ["S_LD_FP f1, x3, 0", "S_LD_FP f2, x3, 1", "S_MAX_FP f3, f1, f2", "S_MAX_FP f4, f2, f1",
            "S_LT_FP x9, f1, f2", "S_LT_FP x10, f2, f1", "S_LT_FP x11, f1, f1", "S_LT_FP x0, f2, f1",
            "S_ST_FP f3, x4, 0", "S_ST_FP f4, x4, 1", "S_ST_INT x9, x5, 0", "S_ST_INT x10, x5, 1",
            "S_ST_INT x11, x5, 2", "S_MAX_FP f1, f1, f2", "S_ST_FP f1, x4, 2"]
    await _fp_batches(tb, _pair_words(pairs), 2, body, 3, n_int=3)


@cocotb.test(timeout_time=120, timeout_unit="sec")
async def fp_exp(dut):
    """S_EXP_FP: specials (EXP(+-0) = 1, +-Inf, NaN, subnormals), x around both
    saturation thresholds ulp by ulp, the |t| < 2^-6 path, random values; rd = rs."""
    tb = await Bench(dut).start(seed=14)
    rng = random.Random(14)
    body = ["S_LD_FP f1, x3, 0", "S_EXP_FP f2, f1", "S_ST_FP f2, x4, 0", "S_EXP_FP f1, f1",
            "S_ST_FP f1, x4, 1"]
    await _fp_batches(tb, _exp_operands(rng), 1, body, 2)


@cocotb.test(timeout_time=120, timeout_unit="sec")
async def fp_reci(dut):
    """S_RECI_FP (multi-cycle): 1/0, 1/subnormal, 1/Inf, NaN, the FTZ edge around
    0x7E800000, powers of two, random values; back-to-back reciprocals (1/(1/x)) and a
    reciprocal feeding the next instruction."""
    tb = await Bench(dut).start(seed=15)
    rng = random.Random(15)
    body = ["S_LD_FP f1, x3, 0", "S_RECI_FP f2, f1", "S_RECI_FP f3, f2", "S_MUL_FP f4, f2, f1",
            "S_ST_FP f2, x4, 0", "S_ST_FP f3, x4, 1", "S_ST_FP f4, x4, 2", "S_RECI_FP f1, f1",
            "S_LT_FP x9, f1, f2", "S_ST_INT x9, x5, 0"]
    await _fp_batches(tb, _reci_operands(rng), 1, body, 3, n_int=1)


@cocotb.test(timeout_time=60, timeout_unit="sec")
async def sram_edges(dut):
    """SRAM words at both ends, x + imm wrapping mod 2^32, n = 0 transfers that would
    fault if they were checked (misaligned, out of range, unmapped)."""
    tb = await Bench(dut).start(seed=3)
    lines = (li(3, M32) + li(4, 0xDEAD0001) + li(5, INT_WORDS - 1) + [
        "S_ST_INT x4, x3, 3",                     # word (2^32 - 1 + 3) mod 2^32 = 2
        f"S_ST_INT x4, x0, {INT_WORDS - 1}", f"S_ST_INT x3, x5, 0",
        f"S_ST_INT x5, x5, {-(INT_WORDS - 1)}",
        "S_LD_INT x6, x3, 3", f"S_LD_INT x7, x0, {INT_WORDS - 1}", "S_LD_INT x8, x0, 0",
        "S_LI_FP f1, 0x4040", f"S_ST_FP f1, x0, {FP_WORDS - 1}", f"S_LD_FP f2, x0, {FP_WORDS - 1}",
        "S_ST_FP f1, x3, 1", "S_LD_FP f3, x3, 1",
        # n = 0: no check at all
        "S_ADDI x9, x0, 0"] + li(10, HOLE + 2) + li(11, 0xFFFFFF00) + [
        "H_LOAD_INT x11, x10, x9", "H_STORE_INT x11, x10, x9", "H_LOAD_FP x11, x10, x9",
        "H_STORE_FP x11, x10, x9",
        # the last words of each SRAM through AXI
        "S_LD_ARG x12, 0", "S_ADDI x13, x0, 5", f"S_ADDI x14, x0, {INT_WORDS - 5}",
        f"S_ADDI x15, x0, {FP_WORDS - 5}",
        "H_LOAD_INT x14, x12, x13", "H_LOAD_FP x15, x12, x13",
        "S_ADDI x12, x12, 0x40", "H_STORE_INT x14, x12, x13",
        "S_ADDI x12, x12, 0x40", "H_STORE_FP x15, x12, x13", "C_HALT"])
    world().write(OUT + 0x800, bytes(range(20)))
    await asm_run(tb, lines, args=[OUT + 0x800], expect="halted")


def _transfer_prog(specs) -> list[str]:
    """H_LOAD_INT/H_STORE_INT per (op, sram base, byte address, n)."""
    lines = []
    for op, base, addr, n in specs:
        lines += [f"S_ADDI x3, x0, {base}"] + li(4, addr) + li(5, n) + [f"{op} x3, x4, x5"]
    return lines + ["C_HALT"]


@cocotb.test(timeout_time=120, timeout_unit="sec")
async def transfers(dut):
    """H_LOAD_*/H_STORE_* at every lane offset, lengths around the beat and burst sizes,
    across 4 KiB boundaries and over the whole int SRAM; the memory model checks burst
    length, alignment and 4 KiB rules on every burst."""
    tb = await Bench(dut).start(seed=4)
    rng = random.Random(4)
    world().write(DATA, rand_bytes(rng, DATA_SIZE))
    specs = []
    base = 0
    for off in range(WPB):
        for n in (1, 2, 3, WPB, WPB + 1, 2 * WPB - 1, MAX_BURST * WPB, MAX_BURST * WPB + 1, 100):
            specs.append(("H_LOAD_INT", base % 1500, DATA + 4 * off + 0x40 * len(specs), n))
            base += 37
    specs += [("H_LOAD_INT", 0, DATA + 0x1000 - 12, 40),      # crosses 4 KiB
              ("H_LOAD_FP", 3, DATA + 0x2000 - 4 * 70, 300),
              ("H_LOAD_INT", 0, DATA, INT_WORDS)]             # the whole SRAM
    await asm_run(tb, _transfer_prog(specs), expect="halted")
    specs = []
    for off in range(WPB):
        for n in (1, 2, 3, WPB, WPB + 1, MAX_BURST * WPB + 3, 77):
            specs.append(("H_STORE_INT", (13 * len(specs)) % 1800, OUT + 4 * off + 0x200 * len(specs), n))
    specs += [("H_STORE_INT", 5, OUT + 0x1000 - 20, 50),     # crosses 4 KiB
              ("H_STORE_FP", 0, OUT + 0x3000 - 4 * 33, FP_WORDS // 4)]
    await asm_run(tb, _transfer_prog(specs), expect="halted")


@cocotb.test(timeout_time=60, timeout_unit="sec")
async def loops(dut):
    """Nested loops: same-end nesting, count 0 (immediate and register), a count-0 body
    ending on an enclosing loop's end, the full depth, a trip count not re-read, and
    C_HALT inside a loop (the next START empties the stack)."""
    tb = await Bench(dut).start(seed=5)
    src = """
        S_ADDI x3, x0, 0
        C_LOOPI 3, @e1
          S_ADDI x3, x3, 1
          C_LOOPI 2, @e1
            S_ADDI x4, x4, 1
    e1: C_LOOPI 0, @e2
          S_ADDI x5, x5, 100
    e2: S_ADDI x6, x0, 0
        C_LOOP x6, @e3
          S_ADDI x5, x5, 1000
    e3: S_ADDI x7, x0, 4
        C_LOOP x7, @e4
          S_ADDI x7, x7, 5
          C_LOOPI 2, @e4b
            C_LOOPI 3, @e4b
              C_LOOPI 2, @e4b
                S_ADDI x8, x8, 1
    e4b:  S_ADDI x9, x9, 1
    e4: C_LOOPI 3, @e5
          S_ADDI x10, x10, 1
          C_LOOPI 0, @e5
            S_ADDI x11, x11, 1
    e5: C_LOOPI 2, @e6
          C_LOOPI 2, @e6
            C_LOOPI 2, @e6
              C_LOOPI 2, @e6
                S_ADDI x12, x12, 1
    e6: S_ADDI x13, x0, 1
        C_LOOPI 1, @e7
          S_ADDI x13, x13, 1
    e7: S_LUI x14, 0
        C_LOOPI 1000, @e8
          S_ADDI x14, x14, 3
    e8: S_ST_INT x14, x0, 7
        C_LOOPI 5, @e9
          S_ADDI x15, x15, 1
          C_HALT
    e9: C_NOP
    """
    await asm_run(tb, src, expect="halted")
    # Start again: the stack left by C_HALT must be gone (a push of 4 more would
    # otherwise overflow).
    await asm_run(tb, """
        C_LOOPI 2, @a
          C_LOOPI 2, @a
            C_LOOPI 2, @a
              C_LOOPI 2, @a
                S_ADDI x1, x1, 1
    a:  C_HALT
    """, base=PROG + 0x1000, expect="halted")


# ---------------------------------------------------------------------------
# Tests: faults
# ---------------------------------------------------------------------------

def _op(name: str) -> int:
    return isa.INSTRS[name].opcode


FAULTS = [
    # (name, program before the faulting word, the faulting word or None, cause);
    # args: ARG0 = DATA, ARG1 = OUT
    ("opcode 0x00", ["S_ADDI x1, x0, 1", "C_NOP"], 0x00000000, ErrCause.ILLEGAL_INSTR),
    ("opcode unassigned 0x05", ["C_NOP"], 0x05, ErrCause.ILLEGAL_INSTR),
    ("opcode unassigned 0x1D", [], 0x1D | (3 << 7), ErrCause.ILLEGAL_INSTR),
    ("opcode reserved 0x62", [], 0x62, ErrCause.ILLEGAL_INSTR),
    ("opcode reserved 0x7F", ["C_NOP"] * 9, 0x7F, ErrCause.ILLEGAL_INSTR),
    ("unused bit in S_ADD", ["C_NOP"], isa.encode("S_ADD", 1, 2, 3) | (1 << 31), ErrCause.ILLEGAL_INSTR),
    ("unused bit in C_HALT", [], _op("C_HALT") | (1 << 7), ErrCause.ILLEGAL_INSTR),
    ("f register 8 in S_LI_FP", [], isa.encode("S_LI_FP", 1, 0x3F80) | (1 << 10), ErrCause.ILLEGAL_INSTR),
    ("unused bit in S_LD_ARG", [], isa.encode("S_LD_ARG", 1, 2) | (1 << 14), ErrCause.ILLEGAL_INSTR),
    ("f register 8 in S_ADD_FP rs2", [], isa.encode("S_ADD_FP", 1, 2, 3) | (1 << 18), ErrCause.ILLEGAL_INSTR),
    ("f register 8 in S_MUL_FP rd", ["S_LI_FP f1, 0x3F80"], isa.encode("S_MUL_FP", 1, 1, 1) | (1 << 10),
     ErrCause.ILLEGAL_INSTR),
    ("rs2 bits in S_RECI_FP", [], isa.encode("S_RECI_FP", 1, 2) | (1 << 15), ErrCause.ILLEGAL_INSTR),
    ("f register 8 in S_LT_FP rs1", [], isa.encode("S_LT_FP", 1, 2, 3) | (1 << 14), ErrCause.ILLEGAL_INSTR),
    ("unused bit in C_LOOP with length 0", [], _op("C_LOOP") | (1 << 7), ErrCause.ILLEGAL_INSTR),
    ("S_LD_INT past the end", [f"S_LD_INT x1, x0, {INT_WORDS}"], None, ErrCause.SRAM_RANGE),
    ("S_ST_FP past the end", ["S_ADDI x2, x0, 5", f"S_ST_FP f0, x2, {FP_WORDS - 5}"], None,
     ErrCause.SRAM_RANGE),
    ("S_LD_FP x + imm below 0", ["S_ADDI x2, x0, 3", "S_LD_FP f1, x2, -4"], None, ErrCause.SRAM_RANGE),
    ("H_LOAD_INT base + n = depth + 1",
     ["S_LD_ARG x1, 0", f"S_ADDI x2, x0, {INT_WORDS - 3}", "S_ADDI x3, x0, 4",
      "H_LOAD_INT x2, x1, x3"], None, ErrCause.SRAM_RANGE),
    ("H_STORE_FP base + n wraps 2^32",
     ["S_LD_ARG x1, 1", "S_ADDI x2, x0, -1", "S_ADDI x3, x0, 2", "H_STORE_FP x2, x1, x3"], None,
     ErrCause.SRAM_RANGE),
    ("loop length 0", ["S_ADDI x1, x0, 1", "C_LOOPI 3, 0"], None, ErrCause.LOOP_OVERFLOW),
    ("loop length 0 from a register count", ["S_ADDI x1, x0, 0", "C_LOOP x1, 0"], None,
     ErrCause.LOOP_OVERFLOW),
    ("body sticks out", ["C_LOOPI 2, 3", "C_NOP", "C_LOOPI 2, 2", "C_NOP", "C_NOP", "C_HALT"], None,
     ErrCause.LOOP_OVERFLOW),
    ("count-0 body sticks out", ["C_LOOPI 2, 2", "C_LOOPI 0, 2", "C_NOP", "C_NOP", "C_HALT"], None,
     ErrCause.LOOP_OVERFLOW),
    ("nested deeper than loop_depth",
     [f"C_LOOPI 2, {LOOP_DEPTH + 1 - k}" for k in range(LOOP_DEPTH + 1)] + ["C_NOP", "C_HALT"], None,
     ErrCause.LOOP_OVERFLOW),
    ("H_LOAD_INT misaligned", ["S_LD_ARG x1, 0", "S_ADDI x1, x1, 2", "S_ADDI x3, x0, 4",
                               "H_LOAD_INT x0, x1, x3"], None, ErrCause.MISALIGNED),
    ("H_STORE_INT misaligned and out of range (MISALIGNED first)",
     ["S_LD_ARG x1, 1", "S_ADDI x1, x1, 1", "S_ADDI x3, x0, 4", "S_ADDI x2, x0, -1",
      "H_STORE_INT x2, x1, x3"], None, ErrCause.MISALIGNED),
    ("H_LOAD_FP out of range and unmapped (SRAM_RANGE first)",
     li(1, HOLE) + ["S_ADDI x3, x0, 8", f"S_ADDI x2, x0, {FP_WORDS - 4}", "H_LOAD_FP x2, x1, x3"],
     None, ErrCause.SRAM_RANGE),
    ("H_LOAD_INT from unmapped (DECERR)", li(1, HOLE) + ["S_ADDI x3, x0, 20", "H_LOAD_INT x0, x1, x3"],
     None, ErrCause.AXI_READ),
    ("H_LOAD_FP from a SLVERR region", li(1, SLV + 0x40) + ["S_ADDI x3, x0, 3", "H_LOAD_FP x0, x1, x3"],
     None, ErrCause.AXI_READ),
    ("H_LOAD_INT past the top of the address space",
     li(1, 0xFFFFFFF0) + ["S_ADDI x3, x0, 8", "H_LOAD_INT x0, x1, x3"], None, ErrCause.AXI_READ),
    ("H_STORE_INT to unmapped (DECERR)", li(1, HOLE + 0x20) + ["S_ADDI x3, x0, 9",
                                                               "H_STORE_INT x0, x1, x3"],
     None, ErrCause.AXI_WRITE),
    ("H_STORE_FP to a SLVERR region", li(1, SLV) + ["S_ADDI x3, x0, 100", "H_STORE_FP x0, x1, x3"],
     None, ErrCause.AXI_WRITE),
]


@cocotb.test(timeout_time=120, timeout_unit="sec")
async def faults(dut):
    """Each fault cause at its PC, as the emulator reports it (cause priority included)."""
    tb = await Bench(dut).start(seed=6)
    for k, (name, pre, raw, cause) in enumerate(FAULTS):
        ws = words(pre) + ([raw] if raw is not None else []) + words("C_HALT")
        base = PROG + 0x2000 + 0x100 * k
        try:
            await tb.run(place(base, ws), [DATA, OUT], expect="fault", expect_cause=cause)
        except AssertionError as e:
            raise AssertionError(f"fault case {name!r}: {e}") from None


@cocotb.test(timeout_time=120, timeout_unit="sec")
async def faults_partial_and_fetch(dut):
    """AXI errors in the middle of a transfer (the destination is unspecified) and on
    instruction fetch: PROG_BASE unmapped, misaligned, SLVERR, a program running off the
    end of its region, and read-ahead into unmapped memory that is never executed."""
    tb = await Bench(dut).start(seed=7)
    rng = random.Random(7)
    world().write(DATA + DATA_SIZE - 0x100, rand_bytes(rng, 0x100))
    # load that runs off the end of DATA after 64 good words
    n = 64 + 40
    await asm_run(tb, li(1, DATA + DATA_SIZE - 0x100) + li(3, n) + ["S_ADDI x2, x0, 300",
                  "H_LOAD_INT x2, x1, x3", "C_HALT"],
                  expect="fault", expect_cause=ErrCause.AXI_READ)
    # store that runs off the end of OUT
    await asm_run(tb, li(1, OUT + OUT_SIZE - 0x80) + li(3, 200) + ["H_STORE_INT x0, x1, x3", "C_HALT"],
                  expect="fault", expect_cause=ErrCause.AXI_WRITE)
    # fetch: PROG_BASE in a hole, in the SLVERR region, misaligned
    for pb, cause in ((HOLE, ErrCause.AXI_READ), (SLV + 0x20, ErrCause.AXI_READ),
                      (PROG + 2, ErrCause.MISALIGNED), (PROG + 0x4001, ErrCause.MISALIGNED)):
        await tb.run(pb, [], expect="fault", expect_cause=cause)
    # EDGE is 16 words with nothing after it. A program in its last line halts: the
    # read-ahead of its line is fine, and nothing past it is fetched.
    await asm_run(tb, ["S_ADDI x1, x0, 7", "C_HALT"], base=EDGE + EDGE_SIZE - 8, expect="halted")
    # ... and one that runs off the end faults at the first unmapped address.
    await asm_run(tb, ["S_ADDI x1, x0, 7", "C_NOP", "C_NOP"], base=EDGE + EDGE_SIZE - 12,
                  expect="fault", expect_cause=ErrCause.AXI_READ)
    # a loop whose body spans the region end: faults on its first pass into the hole
    await asm_run(tb, ["C_LOOPI 3, 4", "S_ADDI x2, x2, 1", "C_NOP"], base=EDGE + EDGE_SIZE - 12,
                  expect="fault", expect_cause=ErrCause.AXI_READ)


@cocotb.test(timeout_time=240, timeout_unit="sec")
async def windows(dut):
    """Memory windows (EXECUTION.md): each access kind inside, at the edge of and past a
    window, with the wrong permission, and in memory that is mapped but not granted; the
    whole-beat rule with a limit off a beat boundary; WINDOW before an unmapped read, after
    a range past the top of the address space; a fetch line outside the executable window.
    ERR_ADDR is compared with the emulator's, and a faulting store writes nothing."""
    tb = await Bench(dut).start(seed=31)
    rng = np.random.default_rng(31)
    ge_rows = mx.GROUP_BLOCKS * MX_BLOCK // VLEN
    world().write(DATA, mx.pack(make_mx(rng, "e4m3", 2 * ge_rows)))
    world().write(OUT, bytes(0x1000))
    align = mx.stream_align(BB)
    dl, ol = DATA + 0x1000, OUT + 0x1000 - 5          # OUT's window: its last beat not whole
    await tb.set_window(0, PROG, PROG + PROG_SIZE - 1, WIN_X)
    await tb.set_window(1, DATA, dl - 1, WIN_R)
    await tb.set_window(2, OUT, ol, WIN_W)
    await tb.set_window(3, EDGE, EDGE + EDGE_SIZE - 1, WIN_R | WIN_W)

    def ld(addr, n):
        return li(1, addr) + li(3, n) + ["H_LOAD_INT x0, x1, x3"]

    def st(addr, n):
        return li(1, addr) + li(3, n) + ["H_STORE_INT x0, x1, x3"]

    E = ErrCause
    row = 2 * VLEN
    cases = [
        (ld(dl - 64, 16), None), (ld(dl - 64, 17), E.WINDOW), (ld(dl - 4, 1), None),
        (ld(DATA - 4, 1), E.WINDOW),
        (st(DATA, 1), E.WINDOW), (ld(OUT, 1), E.WINDOW),               # read-only, write-only
        (st(ol - BB - 3, 1), None), (st(ol - 3, 1), E.WINDOW),          # the partial last beat
        (st(EDGE + EDGE_SIZE - 8, 3), E.WINDOW),                       # past EDGE: WINDOW, not AXI_WRITE
        (ld(HOLE, 1), E.WINDOW),                                        # ungranted before unmapped
        (ld(M32 & ~3, 2), E.AXI_READ),                                  # past the top first
        (st(M32 & ~3, 2), E.AXI_WRITE),
        (load_v_lines(0, dl - 2 * row, 2), None), (load_v_lines(0, dl - row, 2), E.WINDOW),
        (store_v_lines(0, OUT, 2), None), (store_v_lines(0, ol + 1 - 2 * row, 2), E.WINDOW),
        (prefetch_lines(0, DATA, ge_rows, "e4m3"), None),
        (prefetch_lines(0, dl - align, ge_rows, "e4m3"), E.WINDOW),
        (prefetch_lines(VEC_ROWS, dl - align, ge_rows, "e4m3"), E.SRAM_RANGE),   # before WINDOW
        (prefetch_lines(0, OUT, ge_rows, "e4m3"), E.WINDOW),
    ]
    for k, (lines, cause) in enumerate(cases):
        tb.w.mem.stress = k % 2 == 0
        base = PROG + 0x2000 + 0x100 * k
        res = await asm_run(tb, lines, "C_HALT", base=base,
                            expect="halted" if cause is None else "fault", expect_cause=cause)
        if cause is not None:
            assert res.pc == base + 4 * (len(lines) - 1), (k, res)
    assert tb.w.mem.read(ol - 3, 3) == bytes(3)                        # nothing was written
    # fetch: the window ends after the program's second line; the third line faults
    line = max(4 * FETCH_WORDS, BB)
    base = PROG + 0x4000
    await tb.set_window(0, base, base + 2 * line - 1, WIN_X)
    res = await asm_run(tb, ["C_NOP"] * (3 * line // 4), "C_HALT", base=base,
                        expect="fault", expect_cause=E.WINDOW)
    assert res.pc == base + 2 * line and tb.w.emu.read_csr("ERR_ADDR") == res.pc, res
    await tb.set_window(0, base, base + line - 1, WIN_X)
    await tb.set_window(3, base + line, base + 3 * line - 1, WIN_R | WIN_W)   # readable, not executable
    res = await asm_run(tb, ["C_NOP"] * 2 * (line // 4), "C_HALT", base=base, expect="fault",
                        expect_cause=E.WINDOW)
    assert res.pc == base + line, res


@cocotb.test(timeout_time=120, timeout_unit="sec")
async def unknown_opcodes(dut):
    """Every 7-bit opcode the ISA table does not define (reserved ranges included) faults
    ILLEGAL_INSTR at its PC; and every instruction of the table (the emulator's set)
    executes: its word with all operand fields 0 runs as on the emulator, never
    ILLEGAL_INSTR, but for those the profile does not have (proggen.absent_instructions:
    the matrix unit's with [matrix] rows = 0), which fault ILLEGAL_INSTR on both."""
    tb = await Bench(dut).start(seed=8)
    opf = isa.FIELDS["opcode"]
    defined = {i.opcode for i in isa.INSTRS.values()}
    unknown = [o for o in range(1 << opf.width) if o not in defined]
    assert unknown, "the opcode space is full?"
    for k, opc in enumerate(unknown):
        base = PROG + 0x6000 + 0x10 * (k % 64)
        place(base, words("C_NOP") + [opf.insert(opc) | (k << 7)] + words("C_HALT"))
        st, cause, epc = await tb.run_rtl_only(base)
        assert (st, cause, epc) == (ERROR, ErrCause.ILLEGAL_INSTR, base + 4), \
            f"opcode 0x{opc:02X}: STATUS=0x{st:X} cause {cause} ERR_PC 0x{epc:X}"
    absent = absent_instructions(CFG)
    for k, (name, ins) in enumerate(sorted(isa.INSTRS.items())):
        base = PROG + 0x6400 + 0x10 * k
        res = await tb.run(place(base, words("C_NOP") + [opf.insert(ins.opcode)] + words("C_HALT")))
        if name in absent:
            assert (res.status, res.cause, res.pc) == ("fault", ErrCause.ILLEGAL_INSTR, base + 4), \
                f"{name} (not in profile {CFG.name}): {res}"
        else:
            assert res.cause != ErrCause.ILLEGAL_INSTR, f"{name}: {res}"


# ---------------------------------------------------------------------------
# Tests: vector SRAM, H_PREFETCH_V, H_STORE_V, H_LOAD_V
# ---------------------------------------------------------------------------

def make_mx(rng: np.random.Generator, fmt: str, rows: int) -> mx.MXArray:
    """rows*VLEN elements of format fmt: random magnitudes over a wide range, some
    all-zero, tiny and huge blocks, and NaN blocks (scale 0xFF)."""
    n = rows * VLEN
    nb = n // MX_BLOCK
    x = rng.standard_normal(n) * np.exp2(rng.integers(-20, 20, nb)).repeat(MX_BLOCK)
    x = x.reshape(nb, MX_BLOCK)
    for b in rng.choice(nb, size=max(1, nb // 6), replace=False):
        x[b] = rng.choice([0.0, 1e-38, 1e30]) * rng.standard_normal(MX_BLOCK)
    q = mx.quantize(x.reshape(-1).astype(np.float32), fmt, MX_BLOCK)
    scales = q.scales.copy()
    scales[rng.choice(nb, size=max(1, nb // 8), replace=False)] = 0xFF       # NaN blocks
    return mx.MXArray(fmt=q.fmt, block=MX_BLOCK, shape=q.shape, scales=scales, codes=q.codes)


def mx_rows(m: mx.MXArray) -> np.ndarray:
    return mx.dequantize_bf16(m).reshape(-1, VLEN)


def prefetch_lines(vd: int, addr: int, n: int, fmt: str) -> list[str]:
    return li(1, vd) + li(2, addr) + li(3, n) + [f"H_PREFETCH_V x1, x2, x3, {fmt}"]


def store_v_lines(va: int, addr: int, n: int) -> list[str]:
    return li(4, va) + li(5, addr) + li(6, n) + ["H_STORE_V x4, x5, x6"]


def load_v_lines(vd: int, addr: int, n: int) -> list[str]:
    return li(7, vd) + li(8, addr) + li(9, n) + ["H_LOAD_V x7, x8, x9"]


@cocotb.test(timeout_time=240, timeout_unit="sec")
async def vector_prefetch(dut):
    """Every MX format the profile decodes: random tensors with NaN blocks, row counts
    ending in a partial last group (and one whole group), prefetched back to back into
    vector SRAM, compared row by row with mx.dequantize_bf16, then stored with
    H_STORE_V and read back from memory (lockstep with the emulator throughout)."""
    tb = await Bench(dut).start(seed=21)
    rng = np.random.default_rng(21)
    rpb = max(1, MX_BLOCK // VLEN)                # rows per block
    ge_rows = mx.GROUP_BLOCKS * MX_BLOCK // VLEN  # rows per group
    plans = []                                    # (fmt, vd, addr, rows, rows_bf16)
    addr, vd = DATA, 0
    for k, fmt in enumerate(MX_FORMATS):
        for rows in (ge_rows + rpb * (1 + 2 * k), rpb * (3 + k), ge_rows):
            m = make_mx(rng, fmt, rows)
            buf = mx.pack(m)
            world().write(addr, buf)
            plans.append((fmt, vd, addr, rows, mx_rows(m)))
            addr += len(buf) + 16 * int(rng.integers(0, 4))   # 16-byte (group) alignment
            vd += rows
    assert addr <= DATA + DATA_SIZE and vd <= VEC_ROWS, (addr, vd)
    # back to back: one program, every prefetch in a row, then the stores
    lines = []
    for fmt, v, a, rows, _ in plans:
        lines += prefetch_lines(v, a, rows, fmt)
    out = OUT
    outs = []
    for fmt, v, a, rows, _ in plans:
        if out + 2 * VLEN * rows > OUT + OUT_SIZE:
            break
        lines += store_v_lines(v, out + 4 * (len(outs) % 3), rows)
        outs.append((out + 4 * (len(outs) % 3), rows, v))
        out += 2 * VLEN * rows + 16
    for stress in (True, False):
        tb.w.mem.stress = stress
        await asm_run(tb, lines, "C_HALT", expect="halted")
        vs = tb.rtl_vsram()
        for fmt, v, a, rows, want in plans:
            bad = np.flatnonzero((vs[v:v + rows] != want).any(axis=1))
            assert bad.size == 0, f"{fmt} rows {rows} at V[{v}]: rows {bad[:4].tolist()} differ"
        for o, rows, v in outs:
            got = np.frombuffer(tb.w.mem.read(o, 2 * VLEN * rows), "<u2").reshape(rows, VLEN)
            assert (got == vs[v:v + rows]).all(), f"H_STORE_V of V[{v}], {rows} rows at 0x{o:X}"
        world().write(OUT, bytes(OUT_SIZE))
    # one-row and in-place overwrites: a second prefetch over rows already holding data
    fmt, v, a, rows, _ = plans[0]
    await asm_run(tb, prefetch_lines(v + 5 * rpb, a, rpb, fmt), store_v_lines(0, OUT + 8, 1),
                  "C_HALT", expect="halted")


@cocotb.test(timeout_time=240, timeout_unit="sec")
async def vector_load(dut):
    """H_LOAD_V: random bytes (every BF16 pattern) as rows, from each word lane of a beat,
    odd and even row counts, the last rows of the vector SRAM, 500 rows at once, back to
    back in one program; the rows are checked against memory directly and after an
    H_STORE_V round trip (lockstep with the emulator throughout, with and without
    back-pressure)."""
    tb = await Bench(dut).start(seed=24)
    rng = random.Random(24)
    rb = 2 * VLEN                                          # bytes a row
    world().write(DATA, rand_bytes(rng, DATA_SIZE))
    plans = []                                             # (vd, addr, rows)
    addr = DATA
    for k, rows in enumerate((1, 2, 3, 7, 16, 33)):
        a = addr + 4 * (k % WPB)                           # each lane offset of a beat
        plans.append((40 * k + 1, a, rows))
        addr = a + rb * rows + 4 * rng.randrange(8)
    plans.append((VEC_ROWS - 5, DATA + 4 * (WPB - 1), 5))  # up to the SRAM's top
    assert addr <= DATA + DATA_SIZE
    for stress in (True, False):
        tb.w.mem.stress = stress
        lines = [ln for v, a, n in plans for ln in load_v_lines(v, a, n)]
        out, outs = OUT, []
        for v, a, n in plans:
            lines += store_v_lines(v, out + 4 * (len(outs) % WPB), n)
            outs.append((out + 4 * (len(outs) % WPB), v, a, n))
            out += rb * n + rb
        assert out <= OUT + OUT_SIZE
        await asm_run(tb, lines, "C_HALT", expect="halted")
        vs = tb.rtl_vsram()
        for o, v, a, n in outs:
            want = np.frombuffer(tb.w.mem.read(a, rb * n), "<u2").reshape(n, VLEN)
            assert (vs[v:v + n] == want).all(), f"H_LOAD_V of {n} rows at 0x{a:X} into V[{v}]"
            got = np.frombuffer(tb.w.mem.read(o, rb * n), "<u2").reshape(n, VLEN)
            assert (got == want).all(), f"H_STORE_V of V[{v}], {n} rows at 0x{o:X}"
        world().write(OUT, bytes(OUT_SIZE))
        world().write(DATA, rand_bytes(rng, DATA_SIZE))
    # one long load: 500 rows over rows already written, back-pressure on
    tb.w.mem.stress = True
    n = min(500, VEC_ROWS, (DATA_SIZE - 16) // rb)
    await asm_run(tb, load_v_lines(VEC_ROWS - n, DATA + 8, n), "C_HALT", expect="halted")
    want = np.frombuffer(tb.w.mem.read(DATA + 8, rb * n), "<u2").reshape(n, VLEN)
    assert (tb.rtl_vsram()[VEC_ROWS - n:] == want).all()


@cocotb.test(timeout_time=120, timeout_unit="sec")
async def vector_faults(dut):
    """H_PREFETCH_V, H_STORE_V and H_LOAD_V: MISALIGNED (address, n*VLEN not whole blocks),
    SRAM_RANGE, AXI_READ / AXI_WRITE (DECERR, SLVERR, a stream or store running off a
    region mid-way), an fmt code past the formats (ILLEGAL_INSTR), the priority
    between them, n = 0 skipping every check."""
    tb = await Bench(dut).start(seed=22)
    rng = np.random.default_rng(22)
    rpb = max(1, MX_BLOCK // VLEN)
    ge_rows = mx.GROUP_BLOCKS * MX_BLOCK // VLEN
    m = make_mx(rng, "e4m3", 2 * ge_rows)
    world().write(DATA, mx.pack(m))
    align = mx.stream_align(BB)
    E = ErrCause
    cases = [
        (prefetch_lines(0, DATA + 4, rpb, "e4m3"), E.MISALIGNED),
        (prefetch_lines(0, DATA + align // 2, rpb, "e2m1"), E.MISALIGNED),
        (prefetch_lines(VEC_ROWS - 1, DATA, rpb, "e5m2"), E.SRAM_RANGE),
        (prefetch_lines(VEC_ROWS, DATA + 4, rpb, "e5m2"), E.MISALIGNED),      # priority
        (prefetch_lines(VEC_ROWS - rpb + 1, DATA, rpb, "int8"), E.SRAM_RANGE),
        # past the top of the address space (known from the operands) comes before the
        # SRAM range; an unmapped stream inside the address space comes after it
        (prefetch_lines(VEC_ROWS, M32 & ~(align - 1), ge_rows, "int8"), E.AXI_READ),
        (prefetch_lines(VEC_ROWS, HOLE, ge_rows, "e4m3"), E.SRAM_RANGE),
        (prefetch_lines(0, M32 & ~(align - 1), ge_rows, "e4m3"), E.AXI_READ),  # past the top
        (prefetch_lines(0, HOLE, ge_rows, "e4m3"), E.AXI_READ),
        (prefetch_lines(3, SLV, 2 * ge_rows, "e3m2"), E.AXI_READ),
        (prefetch_lines(7, EDGE, ge_rows, "e2m3"), E.AXI_READ),                # runs off EDGE
        (prefetch_lines(VEC_ROWS + 5, DATA + 1, 0, "e4m3"), None),            # n = 0
        (store_v_lines(0, OUT + 2, 1), E.MISALIGNED),
        (store_v_lines(VEC_ROWS - 2, OUT, 3), E.SRAM_RANGE),
        (store_v_lines(VEC_ROWS - 2, OUT + 1, 3), E.MISALIGNED),
        (store_v_lines(0, HOLE, 2), E.AXI_WRITE),
        (store_v_lines(0, M32 & ~3, 2), E.AXI_WRITE),
        (store_v_lines(1, EDGE + EDGE_SIZE - 4 * VLEN, 4), E.AXI_WRITE),      # runs off EDGE
        (store_v_lines(VEC_ROWS + 9, HOLE + 2, 0), None),
        # H_LOAD_V: H_LOAD_INT's order (MISALIGNED, SRAM_RANGE, then the read)
        (load_v_lines(0, DATA + 2, 1), E.MISALIGNED),
        (load_v_lines(VEC_ROWS - 2, DATA, 3), E.SRAM_RANGE),
        (load_v_lines(VEC_ROWS - 2, DATA + 1, 3), E.MISALIGNED),
        (load_v_lines(M32, DATA, 2), E.SRAM_RANGE),                           # vd + n wraps 2^32
        (load_v_lines(VEC_ROWS, HOLE, 1), E.SRAM_RANGE),                      # before the read
        (load_v_lines(VEC_ROWS, M32 & ~3, 1), E.SRAM_RANGE),                  # ... even past the top
        (load_v_lines(0, HOLE, 2), E.AXI_READ),
        (load_v_lines(5, SLV + 4, 3), E.AXI_READ),
        (load_v_lines(0, M32 & ~3, 2), E.AXI_READ),                           # past the top
        (load_v_lines(9, EDGE + 4, EDGE_SIZE // (2 * VLEN) + 1), E.AXI_READ),  # runs off EDGE
        (load_v_lines(VEC_ROWS + 9, HOLE + 2, 0), None),                      # n = 0
    ]
    if rpb > 1:
        cases.append((prefetch_lines(0, DATA, rpb + 1, "e4m3"), E.MISALIGNED))
    for k, (lines, cause) in enumerate(cases):
        tb.w.mem.stress = k % 2 == 0
        base = PROG + 0x2000 + 0x100 * k
        res = await asm_run(tb, lines, "C_HALT", base=base,
                            expect="halted" if cause is None else "fault", expect_cause=cause)
        if cause is not None:
            assert res.pc == base + 4 * (len(lines) - 1), (k, res)
    # fmt codes past the formats: ILLEGAL_INSTR (the emulator agrees)
    for code in range(len(isa.MXFMT_NAMES), 8):
        w = isa.encode("H_PREFETCH_V", 1, 2, 3, "e4m3") | code << 23     # fmt[25:23]
        base = place(PROG + 0x3000 + 0x20 * code, words(prefetch_lines(0, DATA, rpb, "e4m3")[:-1])
                     + [w] + words("C_HALT"))
        await tb.run(base, expect="fault", expect_cause=E.ILLEGAL_INSTR)
    # after every fault, a clean prefetch works (the dequantizer was flushed), and a
    # clean H_LOAD_V (the unpacker was flushed)
    await asm_run(tb, prefetch_lines(10, DATA, 2 * ge_rows, "e4m3"), "C_HALT", expect="halted")
    assert (tb.rtl_vsram()[10:10 + 2 * ge_rows] == mx_rows(m)).all()
    await asm_run(tb, load_v_lines(VEC_ROWS - 3, DATA + 12, 3), "C_HALT", expect="halted")
    want = np.frombuffer(tb.w.mem.read(DATA + 12, 6 * VLEN), "<u2").reshape(3, VLEN)
    assert (tb.rtl_vsram()[VEC_ROWS - 3:] == want).all()


@cocotb.test(timeout_time=120, timeout_unit="sec")
async def vector_stream_rate(dut):
    """One long e4m3 H_PREFETCH_V, the memory never stalling (every READY 1, fixed
    latency): R beats accepted per cycle from the prefetch's first data beat to its
    last must be >= 0.95."""
    tb = await Bench(dut).start(stress=False, seed=23)
    rng = np.random.default_rng(23)
    ge_rows = mx.GROUP_BLOCKS * MX_BLOCK // VLEN
    gbytes = mx.group_nbytes("e4m3", MX_BLOCK)
    groups = min(VEC_ROWS // ge_rows, (DATA_SIZE - 64) // gbytes)
    rows = groups * ge_rows
    m = make_mx(rng, "e4m3", rows)
    world().write(DATA, mx.pack(m))
    core, d = dut.u_core, dut
    beats: list[int] = []

    def sample():
        if int(core.state.value) == 8 and int(d.m_axi_rvalid.value) and int(d.m_axi_rready.value):
            beats.append(tb.cycle)

    tb.w.mem.per_cycle.append(sample)
    try:
        await asm_run(tb, prefetch_lines(0, DATA, rows, "e4m3"), "C_HALT", expect="halted")
    finally:
        tb.w.mem.per_cycle.remove(sample)
    want_beats = -(-(groups * gbytes) // BB)
    assert len(beats) == want_beats, (len(beats), want_beats)
    window = beats[-1] - beats[0] + 1
    rate = len(beats) / window
    dut._log.info(f"H_PREFETCH_V e4m3 {rows} rows: {len(beats)} R beats in {window} cycles "
                  f"= {rate:.4f} beats/cycle")
    print(f"vector_stream_rate: {len(beats)} beats / {window} cycles = {rate:.4f} beats/cycle")
    assert rate >= 0.95, rate
    assert (tb.rtl_vsram()[:rows] == mx_rows(m)).all()


# ---------------------------------------------------------------------------
# Tests: control, counters
# ---------------------------------------------------------------------------

# An endless run with transfers in flight. GOOD does the same transfers once, so after
# GOOD has run, any number of whole or partial iterations of INFINITE leaves SRAM and
# memory as they were, and a SOFT_RESET at any cycle can be compared with the emulator.
GOOD = """
    S_LD_ARG x1, 0
    S_LD_ARG x2, 1
    S_ADDI x3, x0, 64
    H_LOAD_INT x0, x1, x3
    H_STORE_INT x0, x2, x3
    S_ST_INT x3, x0, 100
    S_ADDI x5, x5, 1
    C_HALT
"""
INFINITE = """
    S_LD_ARG x1, 0
    S_LD_ARG x2, 1
    S_ADDI x3, x0, 64
    C_LOOPI 32767, @end
      C_LOOPI 32767, @end
        C_LOOPI 32767, @end
          S_ADDI x4, x4, 1
          H_LOAD_INT x0, x1, x3
          H_STORE_INT x0, x2, x3
          S_ST_INT x3, x0, 100
end: C_HALT
"""
GOOD_AT, INFINITE_AT = PROG + 0x7000, PROG + 0x7400
# An endless stream of reciprocals, and a program whose first reciprocal follows a
# SOFT_RESET | START at once: it must find the reciprocal unit idle.
RECI_LOOP = """
    S_LI_FP f1, 0x4040
    C_LOOPI 32767, @end
      C_LOOPI 32767, @end
        S_RECI_FP f2, f1
        S_EXP_FP f3, f2
end: C_HALT
"""
RECI_FIRST = """
    S_LI_FP f1, 0x40A0
    S_RECI_FP f2, f1
    S_MUL_FP f3, f2, f1
    S_RECI_FP f4, f3
    C_HALT
"""
RECI_LOOP_AT, RECI_FIRST_AT = PROG + 0x7A00, PROG + 0x7B00


async def _expect_reset_state(tb: Bench) -> None:
    for reg in ("STATUS", "ERR_CAUSE", "ERR_PC", "PC"):
        assert await tb.rd(reg) == 0, f"{reg} after SOFT_RESET: {await tb.diag()}"
    x, f = tb.rtl_regs()
    assert x == [0] * 16 and f == [0] * 8, (x, f)


@cocotb.test(timeout_time=120, timeout_unit="sec")
async def soft_reset(dut):
    """SOFT_RESET after a fault and during a run that never ends (transfers in flight):
    status, cause, PC and registers clear, SRAMs stay, the AXI bursts already issued
    finish cleanly, and a good program runs next. START while busy is ignored;
    SOFT_RESET | START in one write starts after the reset, also while a reciprocal is
    in flight (the next S_RECI_FP finds the unit idle)."""
    tb = await Bench(dut).start(seed=9)
    w = world()
    rng = random.Random(9)
    w.write(DATA, rand_bytes(rng, 0x400))
    place(GOOD_AT, words(GOOD))
    place(INFINITE_AT, words(INFINITE))
    args = [DATA, OUT + 0x2000]
    # 1. after a fault
    await asm_run(tb, li(1, HOLE) + ["S_ADDI x3, x0, 4", "S_LI_FP f2, 0x4000", "H_LOAD_INT x0, x1, x3"],
                  expect="fault", expect_cause=ErrCause.AXI_READ)
    await tb.wr("CTRL", SOFT_RESET)
    w.emu.soft_reset()
    await ClockCycles(dut.clk, 2)
    await _expect_reset_state(tb)
    await tb.run(GOOD_AT, args, expect="halted")
    # 2. during an endless run, at several points of its transfers
    for delay in (40, 150, 411, 1000, 2333):
        res = w.emu.run(INFINITE_AT, args=args + [0] * 6, max_instructions=3000)
        assert res.status == "budget", res
        w.emu.soft_reset()
        await tb.start_rtl(INFINITE_AT, args)
        await ClockCycles(dut.clk, delay)
        assert await tb.rd("STATUS") == BUSY, await tb.diag()
        await tb.wr("CTRL", START)                 # ignored while busy: no restart
        await ClockCycles(dut.clk, 30)
        assert await tb.rd("STATUS") == BUSY, await tb.diag()
        assert [t[0] for t in tb.trace].count(INFINITE_AT) == 1, "START restarted a running program"
        await tb.wr("CTRL", SOFT_RESET)
        await ClockCycles(dut.clk, 2)
        await _expect_reset_state(tb)
        await ClockCycles(dut.clk, 300)            # the engines drain what they issued
        assert not w.mem.aw_q and not w.mem.w_q and not w.mem.ar_q, "AXI bursts left open"
        assert w.mem.r_cur is None and w.mem.r_out is None and w.mem.b_out is None, "AXI left open"
        assert not w.mem.errors, w.mem.errors[:5]
        await tb.run(GOOD_AT, args, expect="halted")
    # 3. SOFT_RESET | START in one write, aborting the endless run
    w.emu.soft_reset()
    res = w.emu.run(GOOD_AT, args=args + [0] * 6, trace=True)
    await tb.start_rtl(INFINITE_AT, args)
    await ClockCycles(dut.clk, 200)
    await tb.wr("PROG_BASE", GOOD_AT)
    await tb.wr("CTRL", SOFT_RESET | START)
    st = await tb.wait_idle(50_000)
    await ClockCycles(dut.clk, 2)
    await tb.compare(res, st, loose=True)
    # 4. the same with S_RECI_FP in flight, at every phase of a loop iteration
    place(RECI_LOOP_AT, words(RECI_LOOP))
    place(RECI_FIRST_AT, words(RECI_FIRST))
    w.mem.stress = False                # a short fetch: the new S_RECI_FP comes early
    for delay in range(60, 104, 3):
        w.emu.soft_reset()
        res = w.emu.run(RECI_FIRST_AT, args=[0] * 8, trace=True)
        await tb.start_rtl(RECI_LOOP_AT, [0] * 8)
        await tb.wr("PROG_BASE", RECI_FIRST_AT)
        await ClockCycles(dut.clk, delay)
        assert await tb.rd("STATUS") == BUSY, await tb.diag()
        await tb.wr("CTRL", SOFT_RESET | START)
        st = await tb.wait_idle(5_000)
        await ClockCycles(dut.clk, 2)
        await tb.compare(res, st, loose=True)
    w.mem.stress = True


def _bursts(addr: int, nbytes: int) -> list[tuple[int, int]]:
    """The (address, beats) bursts the engines must issue for [addr, addr + nbytes)."""
    return burst_plan(addr, (addr + nbytes - 1) // BB - addr // BB + 1, MAX_BURST, BB)


@cocotb.test(timeout_time=60, timeout_unit="sec")
async def counters(dut):
    """Exact RD_BEATS / WR_BEATS and bursts for known transfers, INSTRET, BUSY_CYCLES
    against a cycle-by-cycle count, stall counters plausible, CLEAR_COUNTERS."""
    tb = await Bench(dut).start(stress=False)
    w = world()
    base = PROG + 0x7800                  # line-aligned: the program is one fetch line
    assert base % (4 * FETCH_WORDS) == 0
    src = ["S_LD_ARG x1, 0", "S_LD_ARG x2, 1", "S_ADDI x3, x0, 8", "H_LOAD_INT x0, x1, x3",
           "S_ADDI x4, x0, 5", "H_STORE_INT x0, x2, x4", "C_HALT"]
    assert len(src) <= FETCH_WORDS
    w.mem.log.clear()
    await asm_run(tb, src, base=base, args=[DATA + 0x100, OUT + 0x3004], expect="halted")
    c = await tb.counters()
    line_beats = max(1, 4 * FETCH_WORDS // BB)
    assert c["RD_BEATS"] == line_beats + 32 // BB, c
    assert c["WR_BEATS"] == len(range((OUT + 0x3004) // BB, (OUT + 0x3004 + 20 - 1) // BB + 1)), c
    assert c["INSTRET"] == 7
    assert c["STALL_FETCH"] > 0 and c["STALL_MEM_RD"] > 0 and c["STALL_MEM_WR"] > 0, c
    want = ([("ar", a, n) for a, n in _bursts(base, 4 * FETCH_WORDS)]
            + [("ar", a, n) for a, n in _bursts(DATA + 0x100, 32)]
            + [("aw", a, n) for a, n in _bursts(OUT + 0x3004, 20)])
    assert [e[:3] for e in w.mem.log] == want, w.mem.log
    # long transfers: burst splitting at MAX_BURST and at 4 KiB
    base2 = PROG + 0x7900
    la, ln = DATA + 0x1000 - 4 * 37, 300
    sa, sn = OUT + 0x2000 - 4 * 90, 333
    w.mem.log.clear()
    await asm_run(tb, li(1, la) + li(2, ln) + li(3, sa) + li(4, sn) + [
        "H_LOAD_INT x0, x1, x2", "H_STORE_INT x0, x3, x4", "C_HALT"], base=base2, expect="halted")
    c = await tb.counters()
    fetch = [e for e in w.mem.log if e[0] == "ar" and e[1] < DATA]
    data_r = [e[:3] for e in w.mem.log if e[0] == "ar" and e[1] >= DATA]
    data_w = [e[:3] for e in w.mem.log if e[0] == "aw"]
    assert data_r == [("ar", a, n) for a, n in _bursts(la, 4 * ln)], data_r
    assert data_w == [("aw", a, n) for a, n in _bursts(sa, 4 * sn)], data_w
    assert c["RD_BEATS"] == sum(e[2] for e in fetch) + sum(n for _, _, n in data_r), c
    assert c["WR_BEATS"] == sum(n for _, _, n in data_w), c
    # CLEAR_COUNTERS zeroes them; CYCLES runs on while idle, the others do not
    await tb.wr("CTRL", CLEAR_COUNTERS)
    await ClockCycles(dut.clk, 50)
    c = await tb.counters()
    assert c["CYCLES"] >= 50 and all(c[k] == 0 for k in COUNTERS if k != "CYCLES"), c


# ---------------------------------------------------------------------------
# Random programs
# ---------------------------------------------------------------------------

@cocotb.test(timeout_time=600, timeout_unit="sec")
async def random_programs(dut):
    """Seeded random programs of dnpu.verify.proggen (the whole ISA the core executes: loops,
    scalar int/FP, transfers, prefetch of every MX format, the vector unit, deliberate
    faults), lockstep with the emulator on the cocotb AXI memory with random back-pressure.
    DNPU_TOP_RANDOM overrides the count (default 12)."""
    n_prog = int(os.environ.get("DNPU_TOP_RANDOM", "12"))
    tb = await Bench(dut).start(seed=10)
    gen = ProgGen(CFG, seed=10)
    statuses: dict[str, int] = {}
    for i in range(n_prog):
        gp = gen.program(i)
        addrs, a = {}, GEN
        for b in gp.buffers:                 # the runtime's allocation rule: aligned, in order
            a = mx.align_up(a)
            world().write(a, b.data)
            addrs[b.name] = a
            a += len(b.data)
        assert a <= GEN + GEN_SIZE, (a - GEN, [(b.name, len(b.data)) for b in gp.buffers])
        base = place(PROG + (i % 4) * 0x1000 + 4 * (i % 7), gp.words)
        tb.w.mem.stress = i % 3 != 0
        try:
            res = await tb.run(base, [addrs[n] for n in gp.args], budget=2_000_000)
        except AssertionError as e:
            listing = "\n".join(f"  {base + 4 * k:08X} {line}" for k, line in enumerate(gp.lines))
            raise AssertionError(f"dnpu.verify.proggen seed 10 program {i} (fault: {gp.fault}):\n{listing}\n{e}") \
                from None
        key = res.status if res.status != "fault" else res.cause.name
        statuses[key] = statuses.get(key, 0) + 1
    dut._log.info(f"random programs: {statuses}")
    assert statuses.get("halted", 0) >= n_prog // 2, statuses


# ---------------------------------------------------------------------------
# pytest entries
# ---------------------------------------------------------------------------

# Every synthesizable file (test wrappers *_tb* excluded), as the synthesis report takes them.
TOP_SOURCES = sorted(str(p.relative_to(REPO / "hw" / "rtl")) for p in (REPO / "hw" / "rtl").rglob("*.v")
                     if "_tb" not in p.stem)
DEFINES = {"DNPU_PROFILE_SIM": 1}
ICARUS_SUBSET = ["scalar_int_ops", "loops", "faults_partial_and_fetch", "soft_reset", "fp_smoke"]


def _run(sim: str, testcase=None, extra_env=None):
    # Our own dotted name (rtl.test_top) is unambiguous on the simulator's sys.path.
    run_block("dnpu_top", rtl_sources(*TOP_SOURCES), __name__, sim=sim, defines=DEFINES,
              testcase=testcase, extra_env=extra_env)


@pytest.mark.rtl
def test_top_verilator():
    # every cocotb test; random_programs on its first 4 programs (stress on and off), all 12
    # in test_top_random_programs_verilator (`make test-slow`)
    _run("verilator", extra_env={"DNPU_TOP_RANDOM": "4"})


@pytest.mark.rtl
@pytest.mark.slow
def test_top_random_programs_verilator():
    _run("verilator", "random_programs", extra_env={"DNPU_TOP_RANDOM": "12"})


@pytest.mark.rtl
@pytest.mark.slow              # the second simulator: make test-slow (Verilator runs these in make test)
def test_top_icarus():
    _run("icarus", ICARUS_SUBSET)


@pytest.mark.rtl
@pytest.mark.parametrize("profile", ["SIM", "PYNQ_Z2", "ZCU104",
                                     # 2048 lanes: ~5 min and 3 GB of elaboration, so `make test-slow`
                                     pytest.param("ASIC_2048", marks=pytest.mark.slow)])
def test_top_lint(profile):
    """Verilator -Wall is clean on dnpu_top and every file under it, for every profile
    (asic-2048 in `make test-slow`)."""
    lint("dnpu_top", rtl_sources(*TOP_SOURCES), defines={f"DNPU_PROFILE_{profile}": None})
