"""Seeded random programs that are valid for the NPU: the lockstep check's source of programs.

    gen = ProgGen(config.load("sim"), seed=5)          # every instruction of the ISA
    p = gen.program(17)                                # the same program for the same (seed, 17)
    p.words, p.buffers, p.args, p.fault                # what to load, how to call it

A program is random instructions within legal ranges: hardware loops (`C_LOOPI` and
`C_LOOP`, nested up to `ctrl.loop_depth`, counts 0..3, bodies that often end together),
scalar int and FP operations, scalar SRAM loads and stores, `H_LOAD/STORE_INT/FP`,
`H_PREFETCH_V` of packed MX tensors in every format of the profile (group-aligned
starts, partial last groups), `H_LOAD_V` (random BF16 rows), `H_STORE_V`, `H_STORE_MX` (stream starts in the scratch area), and the vector unit (`V_*`, `S_MAP_V_FP`,
`H_SAMPLE_FUSED`, `V_TRANS` with strides 0 ..) and the matrix unit (`M_CFG`, then an `M_MM*` of random
shapes, partial row groups included, with the MX buffer's bytes as weights, or `M_MM_V(_RES)`
with weights from vector SRAM rows) with ranges inside the profile's SRAMs and destinations that equal,
overlap by part or avoid their sources (docs/EXECUTION.md: the result of working in
order, row by row or element by element). A program that
halts ends by storing the whole int, FP and vector SRAMs into its output buffer, so a
final memory comparison covers every SRAM. With `faults` > 0 some programs carry one
deliberate fault (an illegal word, a zero-length loop, a misaligned, out-of-range or
unmapped transfer, a store into the data buffer or a load from the output buffer); the
rest of the program is legal either way.

Memory windows (docs/EXECUTION.md): a program runs under the runtime's default grants
(half of them: every buffer read and write, the program executable, so an unmapped or
run-off access faults WINDOW), under windows="all" (a quarter: AXI errors as without
windows), or under tight windows (a quarter: the program X, sometimes cut short so that
fetch faults at a line; data R, sometimes ending off a beat boundary short of its end;
output W, sometimes cut; the MX and edge buffers RW, or the MX buffer alone R and cut, so
that MX streams, H_SAMPLE_FUSED_N's positions and M_MM's weights run out of it), where the
wrong-permission faults and the accesses across a cut fault WINDOW.

`exclude` leaves instructions out (e.g. to bisect a mismatch); by default every
instruction of hw/isa.toml that the generator knows how to emit is drawn. Instructions
the profile does not have (`absent`: the matrix unit's with `[matrix] rows = 0`, which
fault ILLEGAL_INSTR there) are neither drawn nor reported as uncovered.

Registers: x1, x2, x3 hold the data, output and MX buffer addresses (ARG0..ARG2) and are
never written after the prologue; x4..x15 are scratch. Each memory or vector instruction
sets its operand registers just before it (so it stays legal inside loops, whatever the
random instructions around it did to the scratch registers).
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np

from dnpu.spec import isa, mx
from dnpu.spec.config import Config
from dnpu.verify.proggen_matrix import MATMUL_OPS, MATMUL_V_OPS, MatrixGen
from dnpu.verify.proggen_vector import VectorGen

__all__ = ["ProgGen", "GenProgram", "BufferSpec", "HOLE", "absent_instructions"]

M32 = 0xFFFF_FFFF
HOLE = 0x0000_0100          # below every runtime heap: never mapped (AXI errors)
SCRATCH = tuple(range(4, 16))
ALU = ("S_ADD", "S_SUB", "S_MUL", "S_MIN", "S_MAX", "S_SLT")
FP_ALU = ("S_ADD_FP", "S_SUB_FP", "S_MUL_FP", "S_MAX_FP")


def _imm(name: str) -> isa.Operand:
    """The immediate operand of instruction `name` (its width and range come from hw/isa.toml)."""
    return next(o for o in isa.INSTRS[name].operands if not o.is_reg)


ADDI_IMM, LUI_IMM, LI_FP_IMM = _imm("S_ADDI"), _imm("S_LUI"), _imm("S_LI_FP")
# FP32 patterns S_LI_FP may load (high halves): zeros, ones, subnormal, NaN, infinities, ...
FP_PATTERNS = (0x0000, 0x8000, 0x3F80, 0xBF80, 0x4000, 0x0001, 0x807F, 0x7F80, 0xFF80, 0x7FC0,
               0xFFFF, 0x7F7F, 0xC2C8, 0x42B0, 0x3C00, 0xC300)


@dataclasses.dataclass(frozen=True)
class BufferSpec:
    """A buffer a program expects in device memory, allocated in list order."""
    name: str
    data: bytes                 # initial contents (the buffer's size)


@dataclasses.dataclass
class GenProgram:
    """One generated program and the memory it runs in."""
    seed: int
    index: int
    words: list[int]
    lines: list[str]            # one per word: its assembly (or ".word 0x..." for an illegal one)
    buffers: list[BufferSpec]   # allocate in this order: program first, then these
    args: list[str]             # ARG0.. = the addresses of these buffers
    fault: str | None           # the deliberate fault inserted, if any (it may not be reached)
    excluded: frozenset[str]
    # memory windows: None (the runtime's default), "all", or [(from buffer, offset, to
    # buffer, offset, perms)]: [address of from + offset, address of to + offset), where
    # "program" names the program's buffer (`windows(addrs)` resolves them)
    windows: object = None

    def resolve_windows(self, addrs: dict[str, int]):
        """The `windows=` of Device.run for buffers placed at addrs (name -> address)."""
        if self.windows is None or self.windows == "all":
            return self.windows
        return [(addrs[f] + fo, addrs[t] + to - addrs[f] - fo, p) for f, fo, t, to, p in self.windows]

    @property
    def binary(self) -> bytes:
        return b"".join(w.to_bytes(4, "little") for w in self.words)

    def listing(self, base: int, around: int | None = None, context: int = 8) -> str:
        """Address, word and assembly per line; `around` (an address) marks that line with
        '>>' and shows `context` lines either side."""
        lo, hi = 0, len(self.words)
        if around is not None:
            k = (around - base) // 4
            lo, hi = max(0, k - context), min(len(self.words), k + context + 1)
        out = []
        for k in range(lo, hi):
            a = base + 4 * k
            mark = ">>" if a == around else "  "
            out.append(f"{mark} {a:08X}:  {self.words[k]:08X}  {self.lines[k]}")
        return "\n".join(out)


def absent_instructions(cfg: Config) -> frozenset[str]:
    """The instructions of hw/isa.toml that profile `cfg` does not have: they fault
    ILLEGAL_INSTR there (docs/ISA.md). The matrix unit's, when `[matrix] rows = 0`."""
    return frozenset(n for n, ins in isa.INSTRS.items() if ins.cls == "matrix" and not cfg.matrix.rows)


class ProgGen(MatrixGen, VectorGen):
    """Random valid programs for one hardware profile; program(i) is a pure function of
    (config, seed, i, options)."""

    def __init__(self, config: Config, seed: int = 0, *, exclude: set[str] | frozenset[str] | None = None,
                 faults: float = 0.3, size: int = 40, max_count: int = 3) -> None:
        self.cfg = config
        self.seed = int(seed)
        self.exclude = frozenset(exclude or ())
        self.faults = float(faults)
        self.size = int(size)
        self.max_count = int(max_count)
        c = config
        self.vlen = c.vector.vlen
        self.rows = c.sram.vector_rows
        self.fpw = c.sram.fp_words
        self.intw = c.sram.int_words
        self.depth = c.ctrl.loop_depth
        self.block = c.mx.block
        self.formats = list(c.mx.formats)
        self.beat = c.beat_bytes
        self.hole = HOLE
        self.mx_align = mx.stream_align(self.beat)
        # Buffers: data (random words for H_LOAD_*), out (scratch for stores, then the SRAM
        # dump), mx (one packed tensor per format), edge (64 bytes, allocated last).
        self.data_bytes = 0x4000
        self.scratch_bytes = 0x4000
        self.dump_int = self.scratch_bytes
        self.dump_fp = self.dump_int + 4 * self.intw
        self.dump_v = self.dump_fp + 4 * self.fpw
        self.out_bytes = self.dump_v + 2 * self.vlen * self.rows
        # MX tensors: enough rows for a few groups and a partial last group.
        unit = self.block // np.gcd(self.block, self.vlen)      # rows per whole block multiple
        self.row_unit = unit
        group_rows = max(1, mx.GROUP_BLOCKS * self.block // self.vlen)
        self.mx_rows = min(self.rows, max(unit, (3 * group_rows + unit) // unit * unit))
        self.mx_off: dict[str, int] = {}
        off = 0
        for f in self.formats:
            self.mx_off[f] = off
            off += mx.packed_nbytes(self.mx_rows * self.vlen, f, self.block)
        self.mx_bytes = off
        self.gens = self._generators()

    # ---- the instruction menu -------------------------------------------------------------
    def _generators(self) -> list[tuple[float, tuple[str, ...], object]]:
        """(weight, the instructions it emits, generator); those emitting an excluded
        instruction are left out."""
        menu = [
            (14, ALU, self.g_alu),
            (4, ("S_ADDI", "S_LUI"), self.g_imm),
            (3, ("S_SLLI", "S_SRLI"), self.g_shift),
            (2, ("S_LD_ARG",), self.g_ld_arg),
            (5, ("S_LD_INT", "S_ST_INT"), self.g_int_sram),
            (4, ("S_LI_FP",), self.g_li_fp),
            (4, ("S_LD_FP", "S_ST_FP"), self.g_fp_sram),
            (2, ("S_SEL_FP",), self.g_sel_fp),
            (6, FP_ALU, self.g_fp_alu),
            (2, ("S_LT_FP",), self.g_lt_fp),
            (2, ("S_EXP_FP",), self.g_exp_fp),
            (1, ("S_RECI_FP",), self.g_reci_fp),
            (1, ("S_RSQRT_FP",), self.g_rsqrt_fp),
            (1, ("C_NOP",), self.g_nop),
            (8, ("H_LOAD_INT", "H_LOAD_FP", "H_STORE_INT", "H_STORE_FP"), self.g_transfer),
            (5, ("H_PREFETCH_V",), self.g_prefetch),
            (3, ("H_STORE_V",), self.g_store_v),
            (3, ("H_STORE_MX",), self.g_store_mx),
            (3, ("H_LOAD_V",), self.g_load_v),
            (2, ("H_SAMPLE_FUSED",), self.g_sample_fused),
            (2, ("H_SAMPLE_FUSED_N",), self.g_sample_fused_n),
            (2, ("S_MAP_V_FP",), self.g_map_v_fp),
            (2, ("V_ADD_VV",), lambda r: self.g_vv(r, "V_ADD_VV")),
            (2, ("V_SUB_VV",), lambda r: self.g_vv(r, "V_SUB_VV")),
            (2, ("V_MUL_VV",), lambda r: self.g_vv(r, "V_MUL_VV")),
            (2, ("V_ADD_VF",), lambda r: self.g_vf(r, "V_ADD_VF")),
            (2, ("V_SUB_VF",), lambda r: self.g_vf(r, "V_SUB_VF")),
            (2, ("V_MUL_VF",), lambda r: self.g_vf(r, "V_MUL_VF")),
            (2, ("V_EXP_V",), self.g_exp_v),
            (2, ("V_RECI_V",), self.g_reci_v),
            (2, ("V_AMAX_VV",), lambda r: self.g_vv(r, "V_AMAX_VV")),
            (2, ("V_INVPOW2_V",), lambda r: self.g_unary(r, "V_INVPOW2_V")),
            (2, ("V_FILL_VF",), self.g_fill),
            (2, ("V_RED_MAX",), lambda r: self.g_red(r, "V_RED_MAX")),
            (2, ("V_RED_SUM",), lambda r: self.g_red(r, "V_RED_SUM")),
            (2, ("V_RED_MAX_IDX",), lambda r: self.g_red(r, "V_RED_MAX_IDX")),
            (2, ("V_TOPK_MASK",), self.g_topk),
            (2, ("V_TOPK_MASK_V",), self.g_topk_v),
            (2, ("V_THRESH_MASK",), self.g_thresh),
            (2, ("V_SELECT_INT",), self.g_select),
            (2, ("V_MASK_FP",), self.g_mask_fp),
            (3, ("M_CFG", *MATMUL_OPS), self.g_matmul),
            (2, ("V_TRANS",), self.g_trans),
            (2, ("M_CFG", *MATMUL_V_OPS), self.g_matmul_v),
        ]
        covered = {n for _, names, _ in menu for n in names} | {"C_HALT", "C_LOOP", "C_LOOPI"}
        self.absent = absent_instructions(self.cfg)
        # An instruction hw/isa.toml gained and this menu lacks is not generated: listed
        # here (check-lockstep reports it, tests/test_lockstep.py fails on it). So is a
        self.uncovered = sorted(set(isa.INSTRS) - covered - self.absent)
        # (a menu entry for an instruction hw/isa.toml does not have is skipped)
        return [(w, names, g) for w, names, g in menu
                if not set(names) & (self.exclude | self.absent) and set(names) <= set(isa.INSTRS)]

    def enabled(self) -> list[str]:
        """The instructions this generator may emit."""
        out = {n for _, names, _ in self.gens for n in names} | {"C_HALT", "C_LOOP", "C_LOOPI"}
        return sorted(out - self.exclude)

    # ---- operand helpers ----------------------------------------------------------------------
    @staticmethod
    def regs(r: random.Random, k: int) -> list[int]:
        """k distinct scratch registers."""
        return r.sample(SCRATCH, k)

    @staticmethod
    def src(r: random.Random) -> int:
        return r.choice((0, 1, 2, 3) + SCRATCH)

    @staticmethod
    def count(r: random.Random, limit: int, big: int = 200) -> int:
        """An element/row count in [0, limit]: 0, small, around bursts, or anything."""
        if limit <= 0:
            return 0
        c = r.choice((0, 1, 2, 3, 4, 5, 8, 16, 17, 33, 64, r.randint(1, big), r.randint(1, limit)))
        return min(c, limit)

    @staticmethod
    def placed(r: random.Random, n: int, depth: int) -> int:
        """A base with base + n <= depth."""
        return r.randint(0, max(0, depth - n))

    def range_pair(self, r: random.Random, n: int, depth: int) -> tuple[int, int]:
        """(dst, src) ranges of n in [0, depth): the same (in place), overlapping by part
        (EXECUTION.md: the result is that of working in order), or disjoint."""
        a = self.placed(r, n, depth)
        k = r.random()
        if k < 0.3 or n == 0:
            return a, a
        if k < 0.55:
            lo, hi = max(0, a - n + 1), min(depth - n, a + n - 1)
            return r.randint(lo, hi), a
        for _ in range(20):
            b = self.placed(r, n, depth)
            if b + n <= a or a + n <= b:
                return b, a
        return a, a

    # ---- scalar ------------------------------------------------------------------------------------
    def g_alu(self, r):
        return [f"{r.choice(ALU)} x{r.choice(SCRATCH)}, x{self.src(r)}, x{self.src(r)}"]

    def g_imm(self, r):
        if r.random() < 0.7:
            return [f"S_ADDI x{r.choice(SCRATCH)}, x{self.src(r)}, {r.randint(ADDI_IMM.lo, ADDI_IMM.hi)}"]
        return [f"S_LUI x{r.choice(SCRATCH)}, {r.getrandbits(LUI_IMM.field.width)}"]

    def g_shift(self, r):
        return [f"{r.choice(('S_SLLI', 'S_SRLI'))} x{r.choice(SCRATCH)}, x{self.src(r)}, {r.randint(0, 31)}"]

    def g_ld_arg(self, r):
        return [f"S_LD_ARG x{r.choice(SCRATCH)}, {r.randint(0, 7)}"]

    def g_int_sram(self, r):
        if r.random() < 0.5:
            return [f"S_ST_INT x{self.src(r)}, x0, {r.randint(0, self.intw - 1)}"]
        if r.random() < 0.7:
            return [f"S_LD_INT x{r.choice(SCRATCH)}, x0, {r.randint(0, self.intw - 1)}"]
        b, d = self.regs(r, 2)        # base register + negative/positive offset
        a = r.randint(0, self.intw - 1)
        off = r.randint(-a, min(65535, self.intw - 1 - a)) if a else r.randint(0, min(65535, self.intw - 1))
        base = (a - off) & M32
        return isa.load_imm(b, base) + [f"S_LD_INT x{d}, x{b}, {off}"]

    def g_li_fp(self, r):
        bits = r.choice(FP_PATTERNS) if r.random() < 0.5 else r.getrandbits(LI_FP_IMM.field.width)
        return [f"S_LI_FP f{r.randint(0, 7)}, 0x{bits:04X}"]

    def g_fp_sram(self, r):
        if r.random() < 0.5:
            return [f"S_ST_FP f{r.randint(0, 7)}, x0, {r.randint(0, self.fpw - 1)}"]
        return [f"S_LD_FP f{r.randint(0, 7)}, x0, {r.randint(0, self.fpw - 1)}"]

    def g_sel_fp(self, r):
        return [f"S_SEL_FP f{r.randint(0, 7)}, f{r.randint(0, 7)}, f{r.randint(0, 7)}, x{self.src(r)}"]

    def g_fp_alu(self, r):
        return [f"{r.choice(FP_ALU)} f{r.randint(0, 7)}, f{r.randint(0, 7)}, f{r.randint(0, 7)}"]

    def g_lt_fp(self, r):
        return [f"S_LT_FP x{r.choice((0,) + SCRATCH)}, f{r.randint(0, 7)}, f{r.randint(0, 7)}"]

    def g_exp_fp(self, r):
        return [f"S_EXP_FP f{r.randint(0, 7)}, f{r.randint(0, 7)}"]

    def g_reci_fp(self, r):
        return [f"S_RECI_FP f{r.randint(0, 7)}, f{r.randint(0, 7)}"]

    def g_rsqrt_fp(self, r):
        return [f"S_RSQRT_FP f{r.randint(0, 7)}, f{r.randint(0, 7)}"]

    def g_nop(self, r):
        return ["C_NOP"]

    # ---- external memory ------------------------------------------------------------------------
    def g_transfer(self, r, fault: str | None = None):
        fp = r.random() < 0.4
        store = r.random() < 0.5
        op = ("H_STORE_" if store else "H_LOAD_") + ("FP" if fp else "INT")
        depth = self.fpw if fp else self.intw
        area, size = (2, self.scratch_bytes) if store else (1, self.data_bytes)
        n = self.count(r, min(depth, size // 4))
        s = self.placed(r, n, depth)
        off = 4 * r.randint(0, (size - 4 * n) // 4)
        a, b, c = self.regs(r, 3)
        out = isa.load_imm(a, s) + isa.load_imm(c, n) + isa.load_imm(b, off) + [f"S_ADD x{b}, x{b}, x{area}"]
        if fault == "misaligned":
            out += [f"S_ADDI x{c}, x0, {max(n, 1)}", f"S_ADDI x{b}, x{b}, {r.choice((1, 2, 3))}"]
        elif fault == "sram_range":
            out += [f"S_ADDI x{c}, x0, {max(n, 1)}"] + isa.load_imm(a, depth - max(n, 1) + 1)
        elif fault == "unmapped":
            out += [f"S_ADDI x{c}, x0, {max(n, 1)}"] + isa.load_imm(b, HOLE + 4 * r.randint(0, 16))
        elif fault == "run_off":       # past the edge buffer (allocated last, nothing after it)
            out += [f"S_LD_ARG x{b}, 3", f"S_ADDI x{b}, x{b}, {4 * r.randint(0, 15)}",
                    f"S_ADDI x{c}, x0, {r.randint(17, 64)}"] + isa.load_imm(a, 0)
        elif fault == "perm":          # the other buffer: read-only data, write-only output
            out += [f"S_ADDI x{c}, x0, {max(n, 1)}", f"S_ADD x{b}, x{b}, x{1 if area == 2 else 2}",
                    f"S_SUB x{b}, x{b}, x{area}"]
        return out + [f"{op} x{a}, x{b}, x{c}"]

    def mx_stream(self, r) -> tuple[str, int, int]:
        """(format, byte offset in the mx buffer, rows) of a legal MX stream: it starts at a
        group boundary that is an AXI beat boundary and n*VLEN is a whole number of blocks."""
        fmt = r.choice(self.formats)
        gbytes = mx.group_nbytes(fmt, self.block)
        gelems = mx.group_elements(fmt, self.block)
        starts = [g for g in range(0, self.mx_rows * self.vlen // gelems + 1)
                  if (g * gbytes) % self.mx_align == 0 and (g * gelems) % self.vlen == 0]
        g = r.choice(starts)
        row0 = g * gelems // self.vlen
        room = (self.mx_rows - row0) // self.row_unit
        n = self.row_unit * r.choice((0, 1, 2, r.randint(0, max(0, room)), room)) if room > 0 else 0
        return fmt, self.mx_off[fmt] + g * gbytes, min(n, self.rows)

    def g_prefetch(self, r, fault: str | None = None):
        fmt, off, n = self.mx_stream(r)
        v = self.placed(r, n, self.rows)
        a, b, c = self.regs(r, 3)
        out = isa.load_imm(a, v) + isa.load_imm(c, n) + isa.load_imm(b, off) + [f"S_ADD x{b}, x{b}, x3"]
        if fault == "misaligned":
            out += [f"S_ADDI x{b}, x{b}, {r.choice((4, 8, 12))}", f"S_ADDI x{c}, x0, {self.row_unit}"]
        elif fault == "sram_range":
            out += [f"S_ADDI x{c}, x0, {self.row_unit}"] + isa.load_imm(a, self.rows - self.row_unit + 1)
        return out + [f"H_PREFETCH_V x{a}, x{b}, x{c}, {fmt}"]

    def g_sample_fused(self, r):
        fmt, off, n = self.mx_stream(r)
        idx, b, c = self.regs(r, 3)
        return isa.load_imm(c, n) + isa.load_imm(b, off) + [f"S_ADD x{b}, x{b}, x3",
                                          f"H_SAMPLE_FUSED x{idx}, f{r.randint(0, 7)}, x{b}, x{c}, {fmt}"]

    def g_sample_fused_n(self, r):
        """count positions of n rows each at the packed row stride, from a format's tensor on
        (later positions may run into the next format's bytes: still mapped, still MX)."""
        fmt = r.choice(self.formats)
        n = self.row_unit * r.randint(1, max(1, min(self.mx_rows, 64) // self.row_unit))
        stride = mx.packed_nbytes(n * self.vlen, fmt, self.block)
        off = self.mx_off[fmt]
        most = min(8, (self.mx_bytes - off) // stride, self.intw, self.fpw)
        count = r.choice((0, 1, r.randint(0, most), most)) if r.random() < 0.9 else 0
        if r.random() < 0.05:
            n = 0
        d, b, c, k = self.regs(r, 4)
        return (isa.load_imm(d, self.placed(r, count, min(self.intw, self.fpw))) + isa.load_imm(b, off) + [f"S_ADD x{b}, x{b}, x3"] +
                isa.load_imm(c, n) + isa.load_imm(k, count) + [f"H_SAMPLE_FUSED_N x{d}, x{b}, x{c}, x{k}, {fmt}"])

    def g_load_v(self, r, fault: str | None = None):
        """Rows of the data buffer's random bytes as BF16 (any pattern: NaN, Inf, subnormal)."""
        rb = 2 * self.vlen                                   # bytes a row
        n = self.count(r, min(self.rows, self.data_bytes // rb), big=64)
        v = self.placed(r, n, self.rows)
        off = 4 * r.randint(0, (self.data_bytes - rb * n) // 4)
        a, b, c = self.regs(r, 3)
        out = isa.load_imm(a, v) + isa.load_imm(c, n) + isa.load_imm(b, off) + [f"S_ADD x{b}, x{b}, x1"]
        if fault == "misaligned":
            out += [f"S_ADDI x{c}, x0, {max(n, 1)}", f"S_ADDI x{b}, x{b}, {r.choice((1, 2, 3))}"]
        elif fault == "sram_range":
            out += [f"S_ADDI x{c}, x0, {max(n, 1)}"] + isa.load_imm(a, self.rows - max(n, 1) + 1)
        elif fault == "unmapped":
            out += [f"S_ADDI x{c}, x0, {max(n, 1)}"] + isa.load_imm(b, HOLE + 4 * r.randint(0, 16))
        elif fault == "run_off":       # past the edge buffer (64 bytes, allocated last)
            k = 64 // rb + 1
            out += [f"S_LD_ARG x{b}, 3", f"S_ADDI x{b}, x{b}, {4 * r.randint(0, 15)}",
                    f"S_ADDI x{c}, x0, {r.randint(k, k + 3)}"] + isa.load_imm(a, 0)
        return out + [f"H_LOAD_V x{a}, x{b}, x{c}"]

    def g_store_v(self, r):
        n = self.count(r, min(self.rows, self.scratch_bytes // (2 * self.vlen)), big=64)
        v = self.placed(r, n, self.rows)
        off = 4 * r.randint(0, (self.scratch_bytes - 2 * self.vlen * n) // 4)
        a, b, c = self.regs(r, 3)
        return isa.load_imm(a, v) + isa.load_imm(c, n) + isa.load_imm(b, off) + [f"S_ADD x{b}, x{b}, x2", f"H_STORE_V x{a}, x{b}, x{c}"]

    def g_store_mx(self, r, fault: str | None = None):
        """Rows quantized into the scratch area at a stream start, in a format of the profile:
        the rows hold whatever earlier instructions left (NaN, Inf, subnormals included)."""
        fmt = r.choice(self.formats)
        most = 0
        while mx.stream_nbytes((most + self.row_unit) * self.vlen, fmt, self.block) <= self.scratch_bytes \
                and most + self.row_unit <= min(self.rows, 256):
            most += self.row_unit
        n = r.choice((0, self.row_unit, r.randint(0, most) // self.row_unit * self.row_unit, most))
        v = self.placed(r, n, self.rows)
        room = self.scratch_bytes - mx.stream_nbytes(n * self.vlen, fmt, self.block)
        off = self.mx_align * r.randint(0, room // self.mx_align)
        a, b, c = self.regs(r, 3)
        out = isa.load_imm(a, v) + isa.load_imm(c, n) + isa.load_imm(b, off) + [f"S_ADD x{b}, x{b}, x2"]
        if fault:
            out += [f"S_ADDI x{c}, x0, {self.row_unit}"] + isa.load_imm(a, self.placed(r, self.row_unit, self.rows))
        if fault == "misaligned":
            out += [f"S_ADDI x{b}, x{b}, {r.choice((4, 8, 12))}"]
        elif fault == "sram_range":
            out += isa.load_imm(a, self.rows - self.row_unit + 1)
        elif fault == "unmapped":
            out += isa.load_imm(b, HOLE)
        return out + [f"H_STORE_MX x{a}, x{b}, x{c}, {fmt}"]

    # ---- structure ----------------------------------------------------------------------------------
    def simple(self, r) -> list[str]:
        weights = [w for w, _, _ in self.gens]
        _, _, g = r.choices(self.gens, weights)[0]
        return g(r)

    def nest(self, r, depth: int, budget: int) -> list:
        items: list = []
        for _ in range(r.randint(max(1, budget // 2), budget)):
            if depth < self.depth and r.random() < 0.18:
                items.append(("loop", r.randint(0, self.max_count), r.random() < 0.3,
                              self.nest(r, depth + 1, max(1, budget // 3))))
            else:
                items.append(("ins", self.simple(r)))
        return items

    def emit(self, r, items) -> list[str]:
        out: list[str] = []
        for it in items:
            if it[0] == "ins":
                out += it[1]
                continue
            _, count, by_reg, body = it
            lines = self.emit(r, body)
            if by_reg:
                rr = r.choice(SCRATCH)
                out += [f"S_ADDI x{rr}, x0, {count}", f"C_LOOP x{rr}, {len(lines)}"]
            else:
                out.append(f"C_LOOPI {count}, {len(lines)}")
            out += lines
        return out

    def fault_lines(self, r, kind: str) -> list[str]:
        if kind == "loop_len0":
            return [f"C_LOOPI {r.randint(1, 3)}, 0"]
        if kind == "perm":
            return self.g_transfer(r, kind)
        if kind in ("misaligned", "sram_range") and r.random() < 0.4 and "H_PREFETCH_V" not in self.exclude:
            return self.g_prefetch(r, kind)
        if kind in ("misaligned", "sram_range", "unmapped") and r.random() < 0.2 and "H_STORE_MX" not in self.exclude:
            return self.g_store_mx(r, kind)
        if r.random() < 0.25 and "H_LOAD_V" not in self.exclude:
            return self.g_load_v(r, kind)
        if (kind in ("misaligned", "sram_range", "unmapped") and r.random() < 0.3 and not
                {"M_CFG", *MATMUL_OPS} & (self.exclude | self.absent)):
            return self.g_matmul(r, kind)
        if (kind in ("misaligned", "sram_range") and r.random() < 0.5 and not
                {"M_CFG", *MATMUL_V_OPS} & (self.exclude | self.absent)):
            return self.g_matmul_v(r, kind)
        if kind == "sram_range" and r.random() < 0.5 and "V_TRANS" not in self.exclude:
            return self.g_trans(r, kind)
        return self.g_transfer(r, kind)

    def epilogue(self) -> list[str]:
        """Store the whole int, FP and vector SRAMs into the dump area of the output buffer."""
        out = []
        for op, n, off in (("H_STORE_INT", self.intw, self.dump_int), ("H_STORE_FP", self.fpw, self.dump_fp),
                           ("H_STORE_V", self.rows, self.dump_v)):
            if op in self.exclude:
                continue
            out += isa.load_imm(4, 0) + isa.load_imm(5, n) + isa.load_imm(6, off) + ["S_ADD x6, x6, x2", f"{op} x4, x6, x5"]
        return out

    # ---- data ---------------------------------------------------------------------------------------
    def mx_image(self, rng: np.random.Generator) -> bytes:
        buf = bytearray(self.mx_bytes)
        n = self.mx_rows * self.vlen
        for f in self.formats:
            bits = mx.FORMATS[f].bits
            nb = n // self.block
            scales = rng.integers(112, 142, nb, dtype=np.uint8)          # 2^-15 .. 2^14
            special = rng.random(nb)
            scales[special < 0.05] = 0xFF                                # NaN blocks
            scales[(special >= 0.05) & (special < 0.1)] = rng.choice(np.array([0, 1, 254], np.uint8))
            codes = rng.integers(0, 1 << bits, n, dtype=np.uint16).astype(np.uint8)
            packed = mx.pack(mx.MXArray(f, self.block, (n,), scales, codes))
            buf[self.mx_off[f]:self.mx_off[f] + len(packed)] = packed
        return bytes(buf)

    def program(self, index: int) -> GenProgram:
        """Program number `index` of this seed."""
        # Changing this string changes every generated program, for every seed.
        r = random.Random(f"dnpu.proggen/{self.seed}/{index}")
        rng = np.random.default_rng(r.getrandbits(64))
        fault = None
        if self.faults > 0 and r.random() < self.faults:
            fault = r.choice(("illegal", "loop_len0", "misaligned", "sram_range", "unmapped", "run_off", "perm"))
        # top-level items one by one, so that a fault goes between two of them (never into
        # a loop body, whose length is already encoded)
        chunks = [self.emit(r, [it]) for it in self.nest(r, 0, self.size)]
        bad = None
        if fault is not None:
            if fault == "illegal":
                bad = r.choice([0x0000_0000, 0x0000_007F, isa.encode("S_ADD", 1, 2, 3) | 1 << 20,
                                isa.encode("C_NOP") | 1 << 31])
                chunk = [None]
            else:
                chunk = list(self.fault_lines(r, fault))
            chunks.insert(r.randint(0, len(chunks)), chunk)
        prologue = ["S_LD_ARG x1, 0", "S_LD_ARG x2, 1", "S_LD_ARG x3, 2"]
        lines = prologue + [ln for c in chunks for ln in c] + self.epilogue() + ["C_HALT"]
        legal = isa.assemble_words("\n".join(ln for ln in lines if ln is not None))
        if len(legal) != sum(ln is not None for ln in lines):
            raise RuntimeError("dnpu.verify.proggen: an assembly line did not give exactly one word")
        it = iter(legal)
        words = [bad if ln is None else next(it) for ln in lines]
        lines = [f".word 0x{bad:08X}  (illegal)" if ln is None else ln for ln in lines]
        data = rng.integers(0, 256, self.data_bytes, dtype=np.uint8).tobytes()
        buffers = [BufferSpec("data", data), BufferSpec("out", bytes(self.out_bytes)),
                   BufferSpec("mx", self.mx_image(rng)), BufferSpec("edge", bytes(range(64)))]
        return GenProgram(seed=self.seed, index=index, words=words, lines=lines, buffers=buffers,
                          args=["data", "out", "mx", "edge"], fault=fault, excluded=self.exclude,
                          windows=self.windows(index, 4 * len(words)))

    def windows(self, index: int, prog_bytes: int):
        """Program `index`'s memory windows (GenProgram.windows), from their own stream so
        that the programs do not depend on them."""
        r = random.Random(f"dnpu.proggen.windows/{self.seed}/{index}")
        mode = r.random()
        if mode < 0.5:
            return None
        if mode < 0.75:
            return "all"
        line = max(4 * self.cfg.ctrl.fetch_words, self.beat)
        prog_end = -(-prog_bytes // 64) * 64
        if r.random() < 0.15:              # fetch faults at the first line past the cut
            prog_end = line * r.randint(1, max(1, prog_end // line))
        data_end = self.data_bytes - (r.randint(1, 40) if r.random() < 0.3 else 0)
        out_end = r.randint(self.scratch_bytes // 2, self.out_bytes) if r.random() < 0.15 else self.out_bytes
        mx = ("mx", 0, "edge", 64, "rw")
        if r.random() < 0.4:               # the MX streams and weights run out of their window
            mx = ("mx", 0, "mx", r.randint(self.mx_bytes // 4, self.mx_bytes), "r")
        return [("program", 0, "program", prog_end, "x"), ("data", 0, "data", data_end, "r"),
                ("out", 0, "out", out_end, "w"), mx]
