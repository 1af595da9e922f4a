"""dnpu_top's vector unit (hw/rtl/vector/dnpu_vec.v): every V_* instruction, S_MAP_V_FP and
H_SAMPLE_FUSED, run against the emulator bit for bit with test_top's lockstep bench (retire
trace, registers, all three SRAMs and memory compared after every program; random AXI
back-pressure unless a test says otherwise).

Vector SRAM contents come from S_MAP_V_FP of FP32 words loaded with H_LOAD_FP, so any BF16
pattern can be placed: NaNs with payloads, +-Inf, +-0, subnormals (DAZ), the largest
finite values, and many repeated values (ties for the reductions and top-k).

Tests (cocotb, Verilator; `vector_masks` also on Icarus):
  vector_elementwise   V_ADD/SUB/MUL_VV/VF, V_EXP_V, V_FILL_VF over special-rich rows,
                       in place and with overlapping ranges (in order, EXECUTION.md)
  vector_reductions    V_RED_MAX, V_RED_MAX_IDX, V_RED_SUM: ties, NaNs, all -inf rows
  vector_masks         S_MAP_V_FP padding, V_TOPK_MASK(_V) (k = 0 .. > n, ties, NaN,
                       -inf), V_THRESH_MASK, V_SELECT_INT (overlapping ranges too), V_MASK_FP
  vector_fused         H_SAMPLE_FUSED on every MX format (NaN blocks, partial groups)
  vector_unit_faults   SRAM_RANGE of every vector instruction, n = 0, H_SAMPLE_FUSED's
                       MISALIGNED / AXI_READ / bad fmt
  fused_stream_rate    one long e4m3 H_SAMPLE_FUSED, memory never stalling: >= 0.95 R
                       beats per cycle over the stream's data window
  vector_fused_n       H_SAMPLE_FUSED_N on every MX format, counts 1..5, partial groups,
                       positions shorter than the reciprocal, dst at the SRAMs' top,
                       back to back with H_SAMPLE_FUSED
  fused_n_faults       H_SAMPLE_FUSED_N: AXI_READ mid-stream (DECERR inside and at the start
                       of a later position, SLVERR, past the top), positions before it
                       written; SRAM_RANGE, MISALIGNED, count / n = 0, bad fmt
  fused_n_stream_rate  three V = 4096 e4m3 positions in one H_SAMPLE_FUSED_N, memory never
                       stalling: >= 0.95 R beats per cycle over the whole multi-position stream
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import cocotb

from dnpu.spec import mx
from dnpu.spec.csr import ErrCause

try:  # collected by pytest as a member of the tests/rtl package
    from .cocotb_run import rtl_sources, run_block
    from . import test_top as T
except ImportError:  # imported by cocotb inside the simulator, tests/rtl on PYTHONPATH
    from cocotb_run import rtl_sources, run_block
    import test_top as T

VLEN, VEC_ROWS, FP_WORDS, INT_WORDS = T.VLEN, T.VEC_ROWS, T.FP_WORDS, T.INT_WORDS
DATA, OUT, HOLE, PROG = T.DATA, T.OUT, T.HOLE, T.PROG
li = T.li

# BF16 patterns worth having in every row
SPECIAL16 = [0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0xFFC1, 0x7F81, 0x0001, 0x807F, 0x0080,
             0x8080, 0x7F7F, 0xFF7F, 0x3F80, 0xBF80, 0x3F81, 0x4000, 0xC2F7, 0x42B1, 0x42FE]


def fp_words(rng: np.random.Generator, n: int, specials: float = 0.15, ties: float = 0.2,
             narrow_exact: float = 0.7) -> np.ndarray:
    """n FP32 words for H_LOAD_FP: mostly BF16-exact values (so S_MAP_V_FP is exact),
    some with low bits set (S_MAP_V_FP rounds them), BF16 specials and repeated values."""
    mag = rng.standard_normal(n) * np.exp2(rng.integers(-8, 9, n))
    w = mag.astype(np.float32).view(np.uint32).copy()
    exact = rng.random(n) < narrow_exact
    w[exact] &= np.uint32(0xFFFF0000)
    sp = rng.random(n) < specials
    w[sp] = np.array(SPECIAL16, np.uint32)[rng.integers(0, len(SPECIAL16), int(sp.sum()))] << 16
    tie = rng.random(n) < ties
    if n > 1:
        w[tie] = w[rng.integers(0, n, int(tie.sum()))]
    return w


def load_fp(words: np.ndarray, fbase: int = 0, addr: int = DATA) -> list[str]:
    """Place words at addr and H_LOAD_FP them into FP[fbase..]."""
    T.world().write(addr, words.astype("<u4").tobytes())
    return li(1, fbase) + li(2, addr) + li(3, words.size) + ["H_LOAD_FP x1, x2, x3"]


def map_rows(vd: int, fsrc: int, n: int) -> list[str]:
    return li(1, vd) + li(2, fsrc) + li(3, n) + ["S_MAP_V_FP x1, x2, x3"]


def ld_f(fd: int, fword: int) -> list[str]:
    return li(9, fword) + [f"S_LD_FP f{fd}, x9, 0"]


async def fill_vsram(tb, rng, rows: int, **kw) -> None:
    """V[0 .. rows) = random special-rich rows (through FP SRAM, in pieces)."""
    per = (FP_WORDS // VLEN) * VLEN
    lines = []
    done = 0
    while done < rows * VLEN:
        n = min(per, rows * VLEN - done)
        lines += load_fp(fp_words(rng, n, **kw), 0, DATA) + map_rows(done // VLEN, 0, n)
        await T.asm_run(tb, lines, "C_HALT", expect="halted")
        lines = []
        done += n


ST_VEC = 9          # dnpu_core's state while dnpu_vec works (hw/rtl/ctrl/dnpu_core.v)


async def run_fault_cases(tb, cases, stress_odd: bool = False) -> None:
    """Each (lines, cause) on both sides; a fault must be at the case's last instruction."""
    for k, (lines, cause) in enumerate(cases):
        tb.w.mem.stress = (k % 2 == 1) if stress_odd else (k % 2 == 0)
        base = PROG + 0x100 * k
        res = await T.asm_run(tb, lines, "C_HALT", base=base,
                              expect="halted" if cause is None else "fault", expect_cause=cause)
        if cause is not None:
            assert res.pc == base + 4 * (len(lines) - 1), (k, res)


async def bad_fmt_is_illegal(tb, name: str) -> None:
    """An fmt code past the formats makes `name` an illegal instruction."""
    base = PROG + 0x4000
    fmt = T.isa.FIELDS["fmt"]
    ops = [0] * len(T.isa.INSTRS[name].operands)
    w = T.isa.encode(name, *ops) | (((1 << fmt.width) - 1) << fmt.lsb)
    T.place(base, T.words("C_NOP") + [w] + T.words("C_HALT"))
    st, cause, epc = await tb.run_rtl_only(base)
    assert (st, cause, epc) == (T.ERROR, ErrCause.ILLEGAL_INSTR, base + 4), (name, st, cause, epc)


async def r_beat_rate(tb, dut, lines, want_beats: int, what: str) -> float:
    """Run lines (memory never stalling); R beats accepted while dnpu_vec works, per cycle
    from the first to the last; the beat count must be want_beats."""
    beats: list[int] = []

    def sample():
        if (int(dut.u_core.state.value) == ST_VEC and int(dut.m_axi_rvalid.value)
                and int(dut.m_axi_rready.value)):
            beats.append(tb.cycle)

    tb.w.mem.per_cycle.append(sample)
    try:
        await T.asm_run(tb, lines, "C_HALT", expect="halted")
    finally:
        tb.w.mem.per_cycle.remove(sample)
    assert len(beats) == want_beats, (len(beats), want_beats)
    window = beats[-1] - beats[0] + 1
    rate = len(beats) / window
    print(f"{what}: {len(beats)} beats / {window} cycles = {rate:.4f} beats/cycle")
    return rate


@cocotb.test(timeout_time=300, timeout_unit="sec")
async def vector_elementwise(dut):
    tb = await T.Bench(dut).start(seed=31)
    rng = np.random.default_rng(31)
    rows = 48
    await fill_vsram(tb, rng, rows)
    # scalar operands: specials and ordinary values in FP[0..8)
    fw = np.array([0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x00000001,
                   0x3F800001, 0x40490FDB], np.uint32)
    pre = load_fp(fw, 0, DATA + 0x1000) + [f"S_LD_FP f{k}, x0, {k}" for k in range(8)]
    await T.asm_run(tb, pre, "C_HALT", expect="halted")
    ops = []
    for name in ("V_ADD_VV", "V_SUB_VV", "V_MUL_VV"):
        for vd, va, vb, n in ((100, 0, 8, 8), (8, 8, 16, 4), (17, 16, 0, 5), (15, 16, 24, 6), (200, 3, 3, 1)):
            ops.append(li(4, vd) + li(5, va) + li(6, vb) + li(7, n) + [f"{name} x4, x5, x6, x7"])
    for name in ("V_ADD_VF", "V_SUB_VF", "V_MUL_VF"):
        for vd, va, f, n in ((120, 24, 0, 8), (24, 24, 2, 3), (33, 32, 7, 4), (300, 0, 4, 16), (301, 40, 6, 8)):
            ops.append(li(4, vd) + li(5, va) + li(7, n) + [f"{name} x4, x5, f{f}, x7"])
    for vd, va, n in ((140, 0, 24), (0, 0, 3), (41, 40, 5)):
        ops.append(li(4, vd) + li(5, va) + li(7, n) + ["V_EXP_V x4, x5, x7"])
    for vd, f, n in ((160, 7, 3), (163, 4, 1), (170, 5, 2)):
        ops.append(li(4, vd) + li(7, n) + [f"V_FILL_VF x4, f{f}, x7"])
    for k, lines in enumerate(ops):
        tb.w.mem.stress = k % 2 == 0
        await T.asm_run(tb, lines, "C_HALT", expect="halted", base=PROG + 0x100 * (k % 32))
    # a loop of them back to back (the unit restarts right after done)
    body = li(4, 400) + li(5, 0) + li(6, 8) + li(7, 2)
    loop = ["C_LOOPI 5, 4", "V_SUB_VF x4, x5, f6, x7", "V_EXP_V x4, x4, x7", "V_MUL_VV x4, x4, x6, x7",
            "S_ADDI x4, x4, 2"]
    await T.asm_run(tb, body, loop, "C_HALT", expect="halted")


@cocotb.test(timeout_time=300, timeout_unit="sec")
async def vector_reductions(dut):
    tb = await T.Bench(dut).start(seed=32)
    rng = np.random.default_rng(32)
    rows = 40
    await fill_vsram(tb, rng, rows, specials=0.05)
    # rows with exact ties of the maximum, -inf rows, NaN late, -0/+0 maxima
    special = np.zeros((8, VLEN), np.uint32)
    special[0] = 0x3F800000
    special[1] = 0xFF800000
    special[2] = 0xFF800000
    special[2, VLEN - 1] = 0x7FC10000
    special[3] = 0x80000000
    special[3, VLEN // 2] = 0x00000000
    special[4] = 0x00010000                       # subnormal BF16: reads as +0 (DAZ)
    special[5] = 0x7F800000
    special[5, 3] = 0xFF800000
    special[6] = 0xFF7F0000
    special[7] = 0x42000000
    special[7, 5] = 0x42010000
    pre = load_fp(special.reshape(-1), 0, DATA + 0x2000) + map_rows(rows, 0, special.size)
    await T.asm_run(tb, pre, "C_HALT", expect="halted")
    cases = [(0, 1), (0, 7), (3, 20), (rows, 1), (rows + 1, 1), (rows + 1, 2), (rows + 2, 1), (rows + 3, 2),
             (rows + 4, 1), (rows + 5, 1), (rows + 6, 2), (rows, 8), (0, rows + 8), (rows - 1, 3)]
    for k, (va, n) in enumerate(cases):
        tb.w.mem.stress = k % 3 != 0
        lines = li(5, va) + li(7, n) + ["V_RED_MAX f1, x5, x7", "V_RED_MAX_IDX f2, x6, x5, x7",
                                        "V_RED_SUM f3, x5, x7", "V_RED_MAX_IDX f4, x0, x5, x7"]
        await T.asm_run(tb, lines, "C_HALT", expect="halted", base=PROG + 0x100 * k)


@cocotb.test(timeout_time=300, timeout_unit="sec")
async def vector_masks(dut):
    tb = await T.Bench(dut).start(seed=33)
    rng = np.random.default_rng(33)
    fast = os.environ.get("DNPU_TOP_QUICK") == "1"      # the Icarus subset
    # FP values with ties, NaNs and -inf in FP[0..64)
    vals = fp_words(rng, 64, specials=0.3, ties=0.4)
    vals[[5, 17]] = 0xFF800000
    vals[9] = 0x7FC00000
    vals[30] = 0x7FC00000
    # ints in INT[0..128): mask 0/1/other, sources
    ints = rng.integers(-3, 3, 128).astype(np.int64) & 0xFFFFFFFF
    T.world().write(DATA + 0x3000, ints.astype("<u4").tobytes())
    pre = (load_fp(vals, 0, DATA) + li(1, 0) + li(2, DATA + 0x3000) + li(3, 128) + ["H_LOAD_INT x1, x2, x3"]
           + map_rows(0, 0, 64) + map_rows(10, 3, 37) + map_rows(20, 60, 4) + map_rows(30, 2, 1))
    await T.asm_run(tb, pre, "C_HALT", expect="halted")
    ops = []
    topk = [(200, 0, 3, 20), (230, 0, 0, 7), (240, 4, 64, 9), (250, 0, 1, 1), (260, 8, 5, 32),
            (300, 0, 0xFFFFFFFF, 12)]
    for dst, src, k, n in topk[:3] if fast else topk:
        ops.append(li(4, dst) + li(5, src) + li(6, k) + li(7, n) + ["V_TOPK_MASK x4, x5, x6, x7"])
    topv = [(400, 0, 5, 40), (450, 10, 2, 37), (500, 20, 4, 4), (510, 30, 1, VLEN), (530, 1, 3, 20)]
    for dst, va, k, n in topv[:2] if fast else topv:
        ops.append(li(4, dst) + li(5, va) + li(6, k) + li(7, n) + ["V_TOPK_MASK_V x4, x5, x6, x7"])
    for dst, src, fidx, n in ((600, 0, 0, 64), (600, 10, 1, 20), (700, 5, 2, 9)):
        ops.append(li(4, dst) + li(5, src) + li(9, fidx) + ["S_LD_FP f3, x9, 0"] + li(7, n)
                   + ["V_THRESH_MASK x4, x5, f3, x7"])
    for dst, m, s, n in ((800, 0, 64, 40), (1, 0, 64, 30), (64, 60, 63, 20), (70, 72, 71, 10)):
        ops.append(li(4, dst) + li(5, m) + li(6, s) + li(7, n) + ["V_SELECT_INT x4, x5, x6, x7"])
    for dst, m, fidx, n in ((0, 0, 5, 64), (100, 30, 9, 40), (300, 127, 17, 1)):   # fill: a NaN, -inf, ...
        ops.append(li(4, dst) + li(5, m) + li(9, fidx) + ["S_LD_FP f2, x9, 0"] + li(7, n)
                   + ["V_MASK_FP x4, x5, f2, x7"])
    for k, lines in enumerate(ops):
        tb.w.mem.stress = k % 2 == 1
        await T.asm_run(tb, lines, "C_HALT", expect="halted", base=PROG + 0x100 * (k % 32),
                        budget=1_000_000)


def fused_lines(addr: int, n: int, fmt: str, idx: int = 10, f: int = 5) -> list[str]:
    return li(2, addr) + li(3, n) + [f"H_SAMPLE_FUSED x{idx}, f{f}, x2, x3, {fmt}"]


@cocotb.test(timeout_time=300, timeout_unit="sec")
async def vector_fused(dut):
    tb = await T.Bench(dut).start(seed=34)
    rng = np.random.default_rng(34)
    rpb = max(1, T.MX_BLOCK // VLEN)
    ge_rows = mx.GROUP_BLOCKS * T.MX_BLOCK // VLEN
    addr = DATA
    plans = []
    for k, fmt in enumerate(T.MX_FORMATS):
        for rows in (ge_rows + rpb * (1 + k), rpb):
            m = T.make_mx(rng, fmt, rows)
            if k % 2:                                       # no NaN blocks: a finite sum
                m = mx.MXArray(fmt=m.fmt, block=m.block, shape=m.shape,
                               scales=np.where(m.scales == 0xFF, 0x70, m.scales).astype(np.uint8),
                               codes=m.codes)
            buf = mx.pack(m)
            T.world().write(addr, buf)
            plans.append((fmt, addr, rows))
            addr += len(buf) + 16 * int(rng.integers(0, 3))
    assert addr <= DATA + T.DATA_SIZE
    for k, (fmt, a, rows) in enumerate(plans):
        tb.w.mem.stress = k % 2 == 0
        await T.asm_run(tb, fused_lines(a, rows, fmt, idx=1 + k % 15, f=k % 8), "C_HALT", expect="halted",
                        base=PROG + 0x100 * k)
    # back to back with a prefetch and reductions of the same rows (the phased pieces)
    fmt, a, rows = plans[0]
    await T.asm_run(tb, fused_lines(a, rows, fmt), T.prefetch_lines(0, a, rows, fmt),
                    li(7, rows), "V_RED_MAX_IDX f1, x11, x1, x7", fused_lines(a, rows, fmt, idx=12, f=2),
                    "C_HALT", expect="halted")


@cocotb.test(timeout_time=300, timeout_unit="sec")
async def vector_unit_faults(dut):
    tb = await T.Bench(dut).start(seed=35)
    E = ErrCause
    R, F, I = VEC_ROWS, FP_WORDS, INT_WORDS

    def op4(name, a, b, c, d, mid="x6"):
        return li(4, a) + li(5, b) + li(6, c) + li(7, d) + [f"{name} x4, x5, {mid}, x7"]

    cases = [
        (op4("V_ADD_VV", R - 1, 0, 0, 2), E.SRAM_RANGE),
        (op4("V_SUB_VV", 0, R - 1, 0, 2), E.SRAM_RANGE),
        (op4("V_MUL_VV", 0, 0, R, 1), E.SRAM_RANGE),
        (op4("V_ADD_VV", R + 5, R + 5, R + 5, 0), None),                  # n = 0: no check
        (op4("V_SUB_VF", R - 3, 0, 0, 4, "f1"), E.SRAM_RANGE),
        (op4("V_MUL_VF", 0, 0xFFFFFFFF, 0, 4, "f1"), E.SRAM_RANGE),       # no wrap-around
        (li(4, 0) + li(5, R - 2) + li(7, 3) + ["V_EXP_V x4, x5, x7"], E.SRAM_RANGE),
        (li(4, R) + li(7, 1) + ["V_FILL_VF x4, f0, x7"], E.SRAM_RANGE),
        (li(5, R - 1) + li(7, 2) + ["V_RED_MAX f1, x5, x7"], E.SRAM_RANGE),
        (li(5, R) + li(7, 1) + ["V_RED_SUM f1, x5, x7"], E.SRAM_RANGE),
        (li(5, 0) + li(7, R + 1) + ["V_RED_MAX_IDX f1, x2, x5, x7"], E.SRAM_RANGE),
        (op4("V_TOPK_MASK", 0, F - 2, 1, 3), E.SRAM_RANGE),
        (op4("V_TOPK_MASK", I - 1, 0, 1, 2), E.SRAM_RANGE),
        (op4("V_TOPK_MASK_V", 0, R - 1, 1, VLEN + 1), E.SRAM_RANGE),      # 2 rows
        (op4("V_TOPK_MASK_V", 0, R - 1, 1, VLEN), None),                  # 1 row: fits
        (op4("V_THRESH_MASK", 0, F, 0, 1, "f0"), E.SRAM_RANGE),
        (op4("V_SELECT_INT", 0, 0, I - 1, 2), E.SRAM_RANGE),
        (op4("V_SELECT_INT", I, I, I, 0), None),
        (op4("V_MASK_FP", F - 1, 0, 0, 2, "f1"), E.SRAM_RANGE),
        (op4("V_MASK_FP", 0, I - 1, 0, 2, "f1"), E.SRAM_RANGE),
        (op4("V_MASK_FP", F, I, 0, 0, "f1"), None),
        (li(1, R - 1) + li(2, 0) + li(3, VLEN + 1) + ["S_MAP_V_FP x1, x2, x3"], E.SRAM_RANGE),
        (li(1, 0) + li(2, F - 1) + li(3, 2) + ["S_MAP_V_FP x1, x2, x3"], E.SRAM_RANGE),
        (fused_lines(DATA + 4, 4, "e4m3"), E.MISALIGNED),
        (fused_lines(HOLE, 64, "e4m3"), E.AXI_READ),
        (fused_lines(T.SLV, 64, "e5m2"), E.AXI_READ),
        (fused_lines(T.M32 & ~63, 64, "int8"), E.AXI_READ),                # past the top
        (fused_lines(HOLE + 1, 0, "e4m3"), None),
    ]
    if max(1, T.MX_BLOCK // VLEN) > 1:
        cases.append((fused_lines(DATA, 1, "e4m3"), E.MISALIGNED))
    await run_fault_cases(tb, cases)
    await bad_fmt_is_illegal(tb, "H_SAMPLE_FUSED")


@cocotb.test(timeout_time=240, timeout_unit="sec")
async def fused_stream_rate(dut):
    """One long e4m3 H_SAMPLE_FUSED, memory never stalling: R beats accepted per cycle from
    the stream's first data beat to its last must be >= 0.95."""
    tb = await T.Bench(dut).start(stress=False, seed=36)
    rng = np.random.default_rng(36)
    ge_rows = mx.GROUP_BLOCKS * T.MX_BLOCK // VLEN
    gbytes = mx.group_nbytes("e4m3", T.MX_BLOCK)
    groups = (T.DATA_SIZE - 64) // gbytes
    rows = groups * ge_rows
    m = T.make_mx(rng, "e4m3", rows)
    T.world().write(DATA, mx.pack(m))
    rate = await r_beat_rate(tb, dut, fused_lines(DATA, rows, "e4m3"), -(-(groups * gbytes) // T.BB),
                             "fused_stream_rate")
    assert rate >= 0.95, rate


def fused_n_lines(dst: int, addr: int, n: int, count: int, fmt: str) -> list[str]:
    return li(1, dst) + li(2, addr) + li(3, n) + li(4, count) + [f"H_SAMPLE_FUSED_N x1, x2, x3, x4, {fmt}"]


def place_positions(rng, fmt: str, rows: int, count: int, addr: int, finite: bool | None = None) -> int:
    """count packed logits rows of `rows` vector rows at addr, one every packed_nbytes
    (H_SAMPLE_FUSED_N's stride); every other one without NaN blocks (a finite sum)
    unless finite says. Returns the stride."""
    stride = mx.packed_nbytes(rows * VLEN, fmt, T.MX_BLOCK)
    for p in range(count):
        m = T.make_mx(rng, fmt, rows)
        if (p % 2 == 1) if finite is None else finite:
            m = mx.MXArray(fmt=m.fmt, block=m.block, shape=m.shape,
                           scales=np.where(m.scales == 0xFF, 0x70, m.scales).astype(np.uint8), codes=m.codes)
        buf = mx.pack(m)
        assert len(buf) == stride
        T.world().write(addr + p * stride, buf)
    return stride


@cocotb.test(timeout_time=400, timeout_unit="sec")
async def vector_fused_n(dut):
    tb = await T.Bench(dut).start(seed=37)
    rng = np.random.default_rng(37)
    rpb = max(1, T.MX_BLOCK // VLEN)
    ge_rows = mx.GROUP_BLOCKS * T.MX_BLOCK // VLEN
    top = min(FP_WORDS, INT_WORDS)
    k = 0
    for j, fmt in enumerate(T.MX_FORMATS):
        for rows, count in ((ge_rows + rpb * (1 + j), 1 + j % 3), (rpb, 5), (2 * ge_rows, 2)):
            stride = place_positions(rng, fmt, rows, count, DATA)
            assert count * stride <= T.DATA_SIZE
            dst = (top - count) if k % 3 == 2 else 7 * k
            tb.w.mem.stress = k % 2 == 0
            await T.asm_run(tb, fused_n_lines(dst, DATA, rows, count, fmt), "C_HALT", expect="halted",
                            base=PROG + 0x100 * (k % 64))
            k += 1
    # back to back: H_SAMPLE_FUSED_N, H_SAMPLE_FUSED of one of its rows, H_SAMPLE_FUSED_N again,
    # and count / n = 0 between them
    fmt, rows, count = "e4m3", ge_rows, 4
    stride = place_positions(rng, fmt, rows, count, DATA)
    tb.w.mem.stress = True
    await T.asm_run(tb, fused_n_lines(100, DATA, rows, count, fmt), fused_lines(DATA + stride, rows, fmt),
                    li(5, 0), "H_SAMPLE_FUSED_N x1, x2, x3, x5, e4m3", "H_SAMPLE_FUSED_N x1, x2, x5, x4, e4m3",
                    fused_n_lines(200, DATA + stride, rows, count - 1, fmt), "C_HALT", expect="halted")
    # in a hardware loop, as the compiler uses it
    await T.asm_run(tb, li(1, 300) + li(2, DATA) + li(3, rows) + li(4, 2) + li(6, 2 * stride),
                    ["C_LOOPI 2, 3", "H_SAMPLE_FUSED_N x1, x2, x3, x4, e4m3", "S_ADD x2, x2, x6",
                     "S_ADDI x1, x1, 2"], "C_HALT", expect="halted")


@cocotb.test(timeout_time=400, timeout_unit="sec")
async def fused_n_faults(dut):
    tb = await T.Bench(dut).start(seed=38)
    rng = np.random.default_rng(38)
    E = ErrCause
    rpb = max(1, T.MX_BLOCK // VLEN)
    ge_rows = mx.GROUP_BLOCKS * T.MX_BLOCK // VLEN
    fmt, rows = "e4m3", ge_rows
    stride = mx.packed_nbytes(rows * VLEN, fmt, T.MX_BLOCK)
    end_d, end_o = DATA + T.DATA_SIZE, OUT + T.OUT_SIZE
    cases = []
    # DECERR in the middle of position 2 (its first beats are mapped), at the start of position 1
    b = end_d - 2 * stride - ((stride // 2) & ~63)
    place_positions(rng, fmt, rows, 2, b)
    T.world().write(b + 2 * stride, bytes(end_d - b - 2 * stride))
    cases.append((fused_n_lines(10, b, rows, 4, fmt), E.AXI_READ))
    b2 = end_o - stride
    place_positions(rng, fmt, rows, 1, b2, finite=True)
    cases.append((fused_n_lines(20, b2, rows, 3, fmt), E.AXI_READ))
    cases.append((fused_n_lines(30, T.SLV, rows, 2, fmt), E.AXI_READ))                # SLVERR at 0
    cases.append((fused_n_lines(40, (T.M32 & ~63) - stride, rows, 3, fmt), E.AXI_READ))  # then past the top
    cases.append((fused_n_lines(50, T.M32 & ~63, rows, 2, fmt), E.AXI_READ))          # past the top at 0
    cases.append((fused_n_lines(60, HOLE, rows, 1, "e2m1"), E.AXI_READ))
    # SRAM_RANGE (int or FP), before any stream; MISALIGNED first
    cases.append((fused_n_lines(FP_WORDS - 2, DATA, rows, 3, fmt), E.SRAM_RANGE))
    cases.append((fused_n_lines(INT_WORDS - 1, HOLE, rows, 2, fmt), E.SRAM_RANGE))
    cases.append((fused_n_lines(0, DATA, rows, 0xFFFFFFFF, fmt), E.SRAM_RANGE))
    cases.append((fused_n_lines(FP_WORDS, DATA + 4, rows, 1, fmt), E.MISALIGNED))
    if rpb > 1:
        cases.append((fused_n_lines(0, DATA, 1, 1, fmt), E.MISALIGNED))
    # count = 0 / n = 0: no checks
    cases.append((fused_n_lines(INT_WORDS + 9, HOLE + 4, rows, 0, fmt), None))
    cases.append((fused_n_lines(INT_WORDS + 9, HOLE + 4, 0, 3, fmt), None))
    # a good one after the faults: the engines recovered
    place_positions(rng, fmt, rows, 2, DATA)
    cases.append((fused_n_lines(70, DATA, rows, 2, fmt), None))
    await run_fault_cases(tb, cases, stress_odd=True)
    await bad_fmt_is_illegal(tb, "H_SAMPLE_FUSED_N")


@cocotb.test(timeout_time=300, timeout_unit="sec")
async def fused_n_stream_rate(dut):
    """Three V = 4096 e4m3 positions in one H_SAMPLE_FUSED_N, memory never stalling: R beats
    accepted per cycle from the first data beat to the last must be >= 0.95 (the read
    latency and the turn-around between positions included)."""
    tb = await T.Bench(dut).start(stress=False, seed=39)
    rng = np.random.default_rng(39)
    rows, count = 4096 // VLEN, 3
    stride = place_positions(rng, "e4m3", rows, count, DATA, finite=True)
    assert count * stride <= T.DATA_SIZE
    per = -(-stride // T.BB)            # V = 4096: whole groups, no padding
    rate = await r_beat_rate(tb, dut, fused_n_lines(0, DATA, rows, count, "e4m3"), count * per,
                             "fused_n_stream_rate")
    assert rate >= 0.95, rate


# ---------------------------------------------------------------------------
# pytest entries
# ---------------------------------------------------------------------------

def _run(sim: str, testcase=None, extra_env=None):
    run_block("dnpu_top", rtl_sources(*T.TOP_SOURCES), __name__, sim=sim, defines=T.DEFINES,
              testcase=testcase, extra_env=extra_env)


@pytest.mark.rtl
def test_top_vector_verilator():
    _run("verilator")


@pytest.mark.rtl
@pytest.mark.slow              # the second simulator: make test-slow (Verilator runs these in make test)
def test_top_vector_icarus():
    # the word engines, and the lanes' arithmetic with its group-sum tree (dnpu_vec_lanes)
    _run("icarus", ["vector_masks", "vector_reductions", "vector_elementwise", "vector_fused"],
         extra_env={"DNPU_TOP_QUICK": "1"})
