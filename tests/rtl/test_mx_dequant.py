"""dnpu_mx_dequant (hw/rtl/mx/): packed MX beats in, BF16 rows out, bit for bit
against dnpu.spec.mx.dequantize_bf16.

The file is both the pytest entry (bottom) and the cocotb test module the
simulator imports; the DUT parameters reach the cocotb side through MXDQ_*
environment variables. Golden: dnpu.spec.mx.quantize (and hand-built MXArrays that
hold every code of a format under chosen scales) -> mx.pack -> beats; every
row is compared with mx.dequantize_bf16 of the same MXArray.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

import numpy as np
import pytest

from dnpu.spec import isa, mx

# ---------------------------------------------------------------------------- contract


def beats_needed(n_elements: int, fmt: str, block: int, data_w: int) -> int:
    """AXI beats the producer sends for one command: ceil(mx.stream_nbytes / (DATA_W/8))."""
    return -(-mx.stream_nbytes(n_elements, fmt, block) // (data_w // 8))


# ---------------------------------------------------------------------------- vectors

FMT_CODE = dict(isa.MXFMT)          # name -> `DNPU_MXFMT_* code
BAD_FMTS = [c for c in range(8) if c not in FMT_CODE.values()]


COVER_SCALES = (0x00, 0x01, 0x7F, 0xFE, 0xFF)


def make_mx(rng: np.random.Generator, fmt: str, n: int, block: int,
            cover_scales=COVER_SCALES) -> mx.MXArray:
    """An MXArray of n elements: first blocks that hold every code of fmt under each
    of cover_scales (as many as fit), the rest quantized from random data with
    tiny, huge, zero and NaN/Inf blocks; block order shuffled."""
    f = mx.format_info(fmt)
    nb = n // block
    ncodes = 1 << f.bits
    per_scale = -(-ncodes // block)
    cov_codes = np.resize(np.arange(ncodes, dtype=np.uint8), per_scale * block)
    cov_s, cov_c = [], []
    for s in cover_scales:
        for b in range(per_scale):
            cov_s.append(s)
            cov_c.append(cov_codes[b * block:(b + 1) * block])
    ncov = min(len(cov_s), nb)

    nrand = nb - ncov
    kind = rng.choice(6, size=nrand, p=[0.45, 0.12, 0.12, 0.11, 0.08, 0.12])
    e = np.where(kind == 0, rng.integers(-12, 12, nrand),
        np.where(kind == 1, rng.integers(-175, -110, nrand),      # tiny: flush region
        np.where(kind == 2, rng.integers(110, 140, nrand),        # huge: saturation region
        np.where(kind == 5, rng.integers(-1060, 1000, nrand),     # clamped scales 0 / 254
                 0))))
    x = rng.standard_normal((nrand, block)) * np.ldexp(1.0, e)[:, None]
    # spread magnitudes inside a block too, so subnormal codes show up
    x *= np.ldexp(1.0, -rng.integers(0, 12, (nrand, block)))
    # dnpu.mx.quantize takes only what FP32 holds; scale 254 is covered by cover_scales
    x = np.clip(x, -np.finfo(np.float32).max, np.finfo(np.float32).max)
    x[kind == 3] = 0.0
    x[(kind == 3) & (rng.random(nrand) < 0.5)] = -0.0
    for b in np.flatnonzero(kind == 4):
        x[b, rng.integers(block)] = rng.choice([np.inf, -np.inf, np.nan])
    q = mx.quantize(x.reshape(-1), fmt, block) if nrand else None

    scales = np.empty(nb, np.uint8)
    codes = np.empty((nb, block), np.uint8)
    scales[:ncov] = cov_s[:ncov]
    if ncov:
        codes[:ncov] = np.stack(cov_c[:ncov])
    if nrand:
        scales[ncov:] = q.scales.reshape(-1)
        codes[ncov:] = q.codes.reshape(nrand, block)
    order = rng.permutation(nb)
    return mx.MXArray(fmt=f.name, block=block, shape=(n,), scales=scales[order].copy(),
                      codes=codes[order].reshape(-1).copy())


def exhaustive_mx(fmt: str, block: int, vlen: int) -> mx.MXArray:
    """Every (scale byte, code) pair of fmt: 256 scales x all codes."""
    f = mx.format_info(fmt)
    ncodes = 1 << f.bits
    per = max(ncodes, block)
    codes = np.resize(np.arange(ncodes, dtype=np.uint8), per)
    n = 256 * per
    n = -(-n // vlen) * vlen
    nb = n // block
    scales = np.resize(np.repeat(np.arange(256, dtype=np.uint8), per // block), nb)
    allc = np.resize(codes, n)
    return mx.MXArray(fmt=f.name, block=block, shape=(n,), scales=scales, codes=allc)


@dataclass
class Cmd:
    fmt: int
    rows: int
    err: bool = False
    beats: list = field(default_factory=list)
    exp: list = field(default_factory=list)   # expected rows as ints (lane i at bits 16i)


def row_ints(bf16: np.ndarray, vlen: int) -> list[int]:
    rows = np.ascontiguousarray(bf16.reshape(-1, vlen).astype("<u2"))
    return [int.from_bytes(r.tobytes(), "little") for r in rows]


def stream_cmd(rng: np.random.Generator, m: mx.MXArray, vlen: int, data_w: int) -> Cmd:
    """The command, beats and expected rows for MXArray m."""
    ib = data_w // 8
    n = m.codes.size
    packed = np.frombuffer(mx.pack(m), np.uint8)
    nbytes = mx.stream_nbytes(n, m.fmt, m.block)
    nbeats = beats_needed(n, m.fmt, m.block, data_w)
    assert not packed[nbytes:].any(), "mx.stream_nbytes cuts into packed data"
    assert nbeats * ib <= packed.size
    buf = packed[:nbeats * ib].copy()
    buf[nbytes:] = rng.integers(0, 256, buf.size - nbytes, dtype=np.uint8)  # must be dropped
    beats = [int.from_bytes(buf[i * ib:(i + 1) * ib].tobytes(), "little") for i in range(nbeats)]
    return Cmd(FMT_CODE[m.fmt], n // vlen, beats=beats, exp=row_ints(mx.dequantize_bf16(m), vlen))


# ---------------------------------------------------------------------------- cocotb side

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ReadOnly, RisingEdge
except ImportError:  # pytest collection without cocotb: only the entries below matter
    cocotb = None

DATA_W = int(os.environ.get("MXDQ_DATA_W", "128"))
VLEN = int(os.environ.get("MXDQ_VLEN", "16"))
BLOCK = int(os.environ.get("MXDQ_BLOCK", "32"))
QUICK = os.environ.get("MXDQ_QUICK", "0") == "1"
SEED = int(os.environ.get("MXDQ_SEED", "20260517"))
GE = mx.GROUP_BLOCKS * BLOCK                 # elements per group
MIN_ROWS = max(1, BLOCK // VLEN)             # smallest legal command


def rows_for_groups(groups: float) -> int:
    """Rows covering about `groups` groups, rounded to a legal row count."""
    r = max(MIN_ROWS, int(groups * GE / VLEN))
    return -(-r // MIN_ROWS) * MIN_ROWS


async def setup(dut):
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst_n.value = 0
    dut.cmd_valid.value = 0
    dut.cmd_fmt.value = 0
    dut.cmd_rows.value = 0
    dut.s_valid.value = 0
    dut.s_data.value = 0
    dut.m_ready.value = 0
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst_n.value = 1


def _lanes(v: int) -> list[int]:
    return [(v >> (16 * i)) & 0xFFFF for i in range(VLEN)]


async def run_cmds(dut, cmds: list[Cmd], rnd: random.Random, p_idle=0.0, p_stall=0.0,
                   stats: dict | None = None):
    """Drive cmds (all beats offered eagerly, in order) and check every row, beat
    count, done and cmd_error. p_idle: chance s_valid is low; p_stall: chance m_ready is low."""
    beats = [b for c in cmds for b in c.beats]
    exp = [r for c in cmds for r in c.exp]
    cum_rows, cum_beats, r, b = [], [], 0, 0
    for c in cmds:
        r += len(c.exp)
        b += len(c.beats)
        cum_rows.append(r)
        cum_beats.append(b)
    ci = bi = ri = nd = 0
    cycle = 0
    acc = []                 # cycles with a beat taken
    outc = []                # cycles with a row taken
    limit = 200 + 4 * (len(beats) + len(exp)) * (1 + int(10 * max(p_idle, p_stall)))
    mask = (1 << DATA_W) - 1
    held = None              # row offered but not taken last cycle: must stay, unchanged
    while nd < len(cmds):
        await RisingEdge(dut.clk)
        cycle += 1
        assert cycle < limit, f"timeout: {nd}/{len(cmds)} done, beat {bi}/{len(beats)}, row {ri}/{len(exp)}"
        cv = ci < len(cmds)
        dut.cmd_valid.value = int(cv)
        if cv:
            dut.cmd_fmt.value = cmds[ci].fmt
            dut.cmd_rows.value = cmds[ci].rows
        sv = bi < len(beats) and (p_idle == 0.0 or rnd.random() >= p_idle)
        dut.s_valid.value = int(sv)
        dut.s_data.value = beats[bi] if sv else rnd.getrandbits(DATA_W) & mask
        mr = p_stall == 0.0 or rnd.random() >= p_stall
        dut.m_ready.value = int(mr)
        await ReadOnly()
        if cv and dut.cmd_ready.value:
            ci += 1
        if sv and dut.s_ready.value:
            bi += 1
            acc.append(cycle)
        mv = bool(dut.m_valid.value)
        if held is not None:
            assert mv and dut.m_data.value.to_unsigned() == held, f"row {ri} dropped or changed under back-pressure"
        held = dut.m_data.value.to_unsigned() if mv and not mr else None
        if mr and mv:
            got = dut.m_data.value.to_unsigned()
            assert ri < len(exp), f"extra row {ri} (expected {len(exp)})"
            if got != exp[ri]:
                g, e = _lanes(got), _lanes(exp[ri])
                bad = [(i, hex(g[i]), hex(e[i])) for i in range(VLEN) if g[i] != e[i]]
                raise AssertionError(f"row {ri}: (lane, got, expected) {bad[:8]}")
            ri += 1
            outc.append(cycle)
        err = bool(dut.cmd_error.value)
        if dut.done.value:
            assert nd < ci, "done without a command"
            assert ri == cum_rows[nd], f"cmd {nd}: done after {ri} rows, expected {cum_rows[nd]}"
            assert bi == cum_beats[nd], f"cmd {nd}: done after {bi} beats, expected {cum_beats[nd]}"
            assert err == cmds[nd].err, f"cmd {nd}: cmd_error={err}, expected {cmds[nd].err}"
            nd += 1
        else:
            assert not err, "cmd_error without done"
    # Idle afterwards: no beat taken, no row offered.
    for _ in range(4):
        await RisingEdge(dut.clk)
        dut.cmd_valid.value = 0
        dut.s_valid.value = 1
        dut.m_ready.value = 1
        await ReadOnly()
        assert not dut.s_ready.value and not dut.m_valid.value
    await RisingEdge(dut.clk)
    dut.s_valid.value = 0
    if stats is not None:
        stats.update(acc=acc, outc=outc, cycles=cycle)


def _rng(tag: str) -> tuple[np.random.Generator, random.Random]:
    s = SEED + sum(map(ord, tag))
    return np.random.default_rng(s), random.Random(s)


if cocotb is not None:

    @cocotb.test()
    async def every_format(dut):
        """Each format: random tensors (tiny/huge/zero/NaN blocks) plus every code
        under COVER_SCALES, random idle on the input and back-pressure on the output."""
        await setup(dut)
        nrng, rnd = _rng("formats")
        for name in FMT_CODE:
            cov_blocks = len(COVER_SCALES) * -(-(1 << mx.format_info(name).bits) // BLOCK)
            rows = rows_for_groups(1.3 if QUICK else 2.4) + rows_for_groups(cov_blocks / mx.GROUP_BLOCKS)
            c = stream_cmd(nrng, make_mx(nrng, name, rows * VLEN, BLOCK), VLEN, DATA_W)
            await run_cmds(dut, [c], rnd, p_idle=0.3, p_stall=0.3)
            dut._log.info("%s: %d rows, %d beats ok", name, c.rows, len(c.beats))

    @cocotb.test()
    async def partial_last_group(dut):
        """Last group with 1, 15 and a random number of blocks (where VLEN allows a
        partial group), every format."""
        await setup(dut)
        nrng, rnd = _rng("partial")
        bpr = max(1, VLEN // BLOCK)          # blocks per row
        if (bpr % mx.GROUP_BLOCKS) == 0:
            dut._log.info("VLEN %d = whole groups per row: no partial group possible", VLEN)
        cmds = []
        for i, name in enumerate(FMT_CODE):
            k = [1, 15, int(nrng.integers(2, 15))][i % 3]
            full = 0 if QUICK else int(nrng.integers(0, 3))
            nb = full * mx.GROUP_BLOCKS + k
            nb = -(-nb // bpr) * bpr
            rows = max(MIN_ROWS, nb * BLOCK // VLEN)
            cmds.append(stream_cmd(nrng, make_mx(nrng, name, rows * VLEN, BLOCK), VLEN, DATA_W))
        await run_cmds(dut, cmds, rnd, p_idle=0.25, p_stall=0.25)

    @cocotb.test()
    async def back_to_back(dut):
        """Several commands (formats and sizes mixed) offered back to back, the
        next command's beats waiting on s_data before it is taken."""
        await setup(dut)
        nrng, rnd = _rng("b2b")
        cmds = []
        for i in range(4 if QUICK else 10):
            name = list(FMT_CODE)[int(nrng.integers(len(FMT_CODE)))]
            rows = MIN_ROWS * int(nrng.integers(1, max(2, rows_for_groups(1.5) // MIN_ROWS)))
            cmds.append(stream_cmd(nrng, make_mx(nrng, name, rows * VLEN, BLOCK), VLEN, DATA_W))
        await run_cmds(dut, cmds, rnd, p_idle=0.2, p_stall=0.2)
        await run_cmds(dut, cmds[:3], rnd)       # and with no pauses at all

    @cocotb.test()
    async def one_row(dut):
        """rows = 1 (an error when a row is less than a block), and the smallest
        legal command."""
        await setup(dut)
        nrng, rnd = _rng("one")
        cmds = []
        for name in FMT_CODE:
            if MIN_ROWS == 1:
                cmds.append(stream_cmd(nrng, make_mx(nrng, name, VLEN, BLOCK), VLEN, DATA_W))
            else:
                cmds.append(Cmd(FMT_CODE[name], 1, err=True))
                cmds.append(stream_cmd(nrng, make_mx(nrng, name, MIN_ROWS * VLEN, BLOCK), VLEN, DATA_W))
        await run_cmds(dut, cmds, rnd, p_idle=0.3, p_stall=0.3)

    @cocotb.test()
    async def bad_commands(dut):
        """Unknown formats and misaligned row counts flag cmd_error (with done) and
        take no beat; rows = 0 is a no-op; good commands around them still work."""
        await setup(dut)
        nrng, rnd = _rng("bad")
        good = lambda name, rows: stream_cmd(nrng, make_mx(nrng, name, rows * VLEN, BLOCK), VLEN, DATA_W)
        cmds = [Cmd(f, MIN_ROWS, err=True) for f in BAD_FMTS]
        cmds.append(good("e4m3", MIN_ROWS))
        cmds += [Cmd(f, 0xFFFFFF, err=True) for f in BAD_FMTS]
        cmds.append(Cmd(FMT_CODE["e2m1"], 0))
        if MIN_ROWS > 1:
            cmds += [Cmd(FMT_CODE["e4m3"], MIN_ROWS + 1, err=True),
                     Cmd(FMT_CODE["int8"], MIN_ROWS // 2 + 16 * MIN_ROWS, err=True)]
        cmds.append(good("e3m2", 2 * MIN_ROWS))
        cmds.append(Cmd(BAD_FMTS[0], 2 * MIN_ROWS, err=True))
        await run_cmds(dut, cmds, rnd, p_idle=0.3, p_stall=0.3)

    @cocotb.test(skip=QUICK)
    async def exhaustive_scale_code(dut):
        """Every (scale byte, code) pair of every format, back-pressure on the output."""
        await setup(dut)
        nrng, rnd = _rng("exh")
        cmds = [stream_cmd(nrng, exhaustive_mx(name, BLOCK, VLEN), VLEN, DATA_W) for name in FMT_CODE]
        await run_cmds(dut, cmds, rnd, p_idle=0.05, p_stall=0.1)

    @cocotb.test(skip=QUICK or not (DATA_W == 128 and VLEN == 16))
    async def throughput_e4m3(dut):
        """No pauses, e4m3, a long stream: beats taken per cycle over the active window."""
        await setup(dut)
        nrng, rnd = _rng("tput")
        groups = 64
        c = stream_cmd(nrng, make_mx(nrng, "e4m3", groups * GE, BLOCK, cover_scales=()), VLEN, DATA_W)
        st = {}
        await run_cmds(dut, [c], rnd, stats=st)
        acc, outc = st["acc"], st["outc"]
        win = acc[-1] - acc[0] + 1
        bpc = len(acc) / win
        rwin = outc[-1] - outc[0] + 1
        rpc = len(outc) / rwin
        msg = (f"throughput e4m3 DATA_W={DATA_W} VLEN={VLEN} BLOCK={BLOCK}: {len(acc)} beats in {win} "
               f"cycles = {bpc:.4f} beats/cycle; {len(outc)} rows in {rwin} cycles = {rpc:.4f} rows/cycle "
               f"(ideal {len(outc) / len(acc):.4f}); command total {st['cycles']} cycles")
        dut._log.info(msg)
        print(msg)
        assert bpc >= 0.95, msg


# ---------------------------------------------------------------------------- pytest entries

SOURCES = ["mx/dnpu_mx_dequant.v", "mx/dnpu_mx_lane.v"]

# (DATA_W, VLEN, BLOCK): the sim profile; pynq-z2's; short rows in wide beats
# (6-byte FP6 slices, 8 slices per block); rows of two whole groups each
# (as asic-2048's rows span groups) in 512-bit beats.
VERILATOR_COMBOS = [(128, 16, 32), (64, 32, 32), (256, 8, 64), (512, 256, 8)]
ICARUS_COMBO = (64, 32, 8)

LINT_COMBOS = VERILATOR_COMBOS + [ICARUS_COMBO, (128, 16, 8), (512, 2048, 32)]


def _runner():
    """tests/rtl/cocotb_run, imported as pytest sees this file (package `rtl`) or
    as the simulator does (a top-level module on PYTHONPATH)."""
    try:
        from . import cocotb_run
    except ImportError:
        import cocotb_run
    return cocotb_run


def _run(sim: str, data_w: int, vlen: int, block: int, quick: bool) -> None:
    cr = _runner()
    rtl_sources, run_block = cr.rtl_sources, cr.run_block

    run_block("dnpu_mx_dequant", rtl_sources(*SOURCES), "test_mx_dequant", sim=sim,
              parameters={"DATA_W": data_w, "VLEN": vlen, "BLOCK": block},
              extra_env={"MXDQ_DATA_W": str(data_w), "MXDQ_VLEN": str(vlen),
                         "MXDQ_BLOCK": str(block), "MXDQ_QUICK": "1" if quick else "0"})


@pytest.mark.rtl
@pytest.mark.parametrize("data_w,vlen,block", VERILATOR_COMBOS,
                         ids=[f"w{d}-v{v}-b{b}" for d, v, b in VERILATOR_COMBOS])
def test_mx_dequant_verilator(data_w, vlen, block):
    _run("verilator", data_w, vlen, block, quick=False)


@pytest.mark.rtl
def test_mx_dequant_icarus():
    _run("icarus", *ICARUS_COMBO, quick=True)


@pytest.mark.rtl
def test_mx_dequant_lint():
    cr = _runner()
    for data_w, vlen, block in LINT_COMBOS:
        cr.lint("dnpu_mx_dequant", cr.rtl_sources(*SOURCES),
                parameters={"DATA_W": data_w, "VLEN": vlen, "BLOCK": block})


@pytest.mark.parametrize("fmt", list(mx.FORMATS))
@pytest.mark.parametrize("block", mx.BLOCK_SIZES)
def test_beat_contract_matches_pack(fmt, block):
    """mx.stream_nbytes is pack's image up to its padding; a stream cut there unpacks to
    the same tensor."""
    rng = np.random.default_rng(block)
    for nb in (1, 15, 16, 17, 47, 48):
        n = nb * block
        m = mx.quantize(rng.standard_normal(n), fmt, block)
        packed = mx.pack(m)
        k = mx.stream_nbytes(n, fmt, block)
        assert k <= len(packed) and not any(packed[k:])
        assert k == 16 * -(-nb // 16) + n * mx.format_info(fmt).bits // 8
        buf = packed[:k] + bytes(len(packed) - k)
        back = mx.unpack(buf, (n,), fmt, block)
        assert (back.codes == m.codes).all() and (back.scales == m.scales).all()
        for data_w in (64, 128, 256, 512):
            assert beats_needed(n, fmt, block, data_w) * data_w // 8 >= k > (beats_needed(n, fmt, block, data_w) - 1) * data_w // 8
