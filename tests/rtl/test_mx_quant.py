"""dnpu_mx_quant (hw/rtl/mx/): BF16 rows in, packed MX beats out, bit for bit against the
first mx.stream_nbytes bytes of dnpu.spec.mx.pack(dnpu.spec.mx.quantize(rows)).

The file is both the pytest entry (bottom) and the cocotb test module the simulator
imports; the DUT parameters reach the cocotb side through MXQ_* environment variables.
Rows are random BF16 bit patterns built block by block: ordinary spreads, zeros and
negative zeros, BF16 subnormals (alone and under small normals), the largest magnitudes,
exact ties of every format, blocks with a NaN or an Inf.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

import ml_dtypes
import numpy as np
import pytest

from dnpu.spec import isa, mx

FMT_CODE = dict(isa.MXFMT)          # name -> `DNPU_MXFMT_* code
BAD_FMTS = [c for c in range(8) if c not in FMT_CODE.values()]

# ---------------------------------------------------------------------------- vectors


def _bf16_bits(x: np.ndarray) -> np.ndarray:
    """float64 -> BF16 bit patterns, round to nearest even (via ml_dtypes)."""
    return np.asarray(x, np.float64).astype(np.float32).astype(ml_dtypes.bfloat16).view(np.uint16)


def make_rows(rng: np.random.Generator, n: int, block: int) -> np.ndarray:
    """n elements (a multiple of block) of BF16 bits, one kind of block at a time."""
    nb = n // block
    out = np.empty((nb, block), np.uint16)
    for b in range(nb):
        kind = rng.choice(9, p=[0.25, 0.08, 0.1, 0.1, 0.1, 0.1, 0.07, 0.1, 0.1])
        if kind == 0:      # ordinary spread, magnitudes over a few binades
            e = int(rng.integers(-30, 30))
            x = rng.standard_normal(block) * 2.0 ** e * np.ldexp(1.0, -rng.integers(0, 14, block))
            v = _bf16_bits(x)
        elif kind == 1:    # zeros and negative zeros
            v = np.where(rng.random(block) < 0.5, 0x8000, 0x0000).astype(np.uint16)
        elif kind == 2:    # BF16 subnormals only (exponent field 0), some zeros
            v = rng.integers(0, 0x80, block).astype(np.uint16) | (rng.integers(0, 2, block) << 15).astype(np.uint16)
        elif kind == 3:    # subnormals under small normals (exponent fields 0..12)
            ef = rng.integers(0, 13, block)
            v = ((ef << 7) | rng.integers(0, 0x80, block) | (rng.integers(0, 2, block) << 15)).astype(np.uint16)
        elif kind == 4:    # the largest magnitudes (exponent field 0xFE), and their neighbours
            ef = rng.integers(0xF0, 0xFF, block)
            v = ((ef << 7) | rng.integers(0, 0x80, block) | (rng.integers(0, 2, block) << 15)).astype(np.uint16)
            v[rng.integers(block)] = rng.choice([0x7F7F, 0xFF7F])
        elif kind == 5:    # ties: few mantissa bits around one binade, so v lands on halves
            e0 = int(rng.integers(100, 150))
            ef = e0 - rng.integers(0, 12, block)
            mant = rng.integers(0, 16, block) << 3          # low mantissa bits 0: many exact halves
            v = ((ef << 7) | mant | (rng.integers(0, 2, block) << 15)).astype(np.uint16)
            v[rng.integers(block)] = (e0 << 7) | 0x7F       # amax with a full mantissa
        elif kind == 6:    # NaN or +-Inf somewhere
            v = _bf16_bits(rng.standard_normal(block))
            for _ in range(int(rng.integers(1, 3))):
                v[rng.integers(block)] = rng.choice([0x7F80, 0xFF80, 0x7FC0, 0xFFC1, 0x7F81])
        elif kind == 7:    # random bit patterns (finite), any exponent
            v = rng.integers(0, 0x10000, block).astype(np.uint16)
            v[(v & 0x7F80) == 0x7F80] &= 0xBFFF
        else:              # scale clamps: amax with a tiny exponent field (scale 0) or huge
            ef = rng.integers(1, 10, block) if rng.random() < 0.5 else rng.integers(0xE0, 0xFF, block)
            v = ((ef << 7) | rng.integers(0, 0x80, block) | (rng.integers(0, 2, block) << 15)).astype(np.uint16)
        out[b] = v
    return out.reshape(-1)


def golden(bits: np.ndarray, fmt: str, block: int) -> bytes:
    n = bits.size
    q = mx.quantize(bits.view(ml_dtypes.bfloat16), fmt, block)
    return mx.pack(q)[:mx.stream_nbytes(n, fmt, block)]


@dataclass
class Cmd:
    fmt: int
    rows: int
    err: bool = False
    data: list = field(default_factory=list)   # input rows as ints (lane i at bits 16i)
    exp: bytes = b""                           # expected stream


def row_ints(bits: np.ndarray, vlen: int) -> list[int]:
    rows = np.ascontiguousarray(bits.reshape(-1, vlen).astype("<u2"))
    return [int.from_bytes(r.tobytes(), "little") for r in rows]


def stream_cmd(rng: np.random.Generator, fmt: str, rows: int, vlen: int, block: int) -> Cmd:
    bits = make_rows(rng, rows * vlen, block)
    return Cmd(FMT_CODE[fmt], rows, data=row_ints(bits, vlen), exp=golden(bits, fmt, block))


# ---------------------------------------------------------------------------- cocotb side

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ReadOnly, RisingEdge
except ImportError:  # pytest collection without cocotb: only the entries below matter
    cocotb = None

DATA_W = int(os.environ.get("MXQ_DATA_W", "128"))
VLEN = int(os.environ.get("MXQ_VLEN", "16"))
BLOCK = int(os.environ.get("MXQ_BLOCK", "32"))
QUICK = os.environ.get("MXQ_QUICK", "0") == "1"
SEED = int(os.environ.get("MXQ_SEED", "20260611"))
BB = DATA_W // 8
GE = mx.GROUP_BLOCKS * BLOCK                 # elements per group
FU = max(GE, VLEN)                           # elements per fill unit
MIN_ROWS = max(1, BLOCK // VLEN)             # smallest legal command


def rows_for_groups(groups: float) -> int:
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


async def run_cmds(dut, cmds: list[Cmd], rnd: random.Random, p_idle=0.0, p_stall=0.0,
                   stats: dict | None = None):
    """Drive cmds (rows offered eagerly, in order) and check every beat, m_bytes, m_last,
    done and cmd_error. p_idle: chance s_valid is low; p_stall: chance m_ready is low."""
    rows = [r for c in cmds for r in c.data]
    cum_rows, r = [], 0
    for c in cmds:
        r += len(c.data)
        cum_rows.append(r)
    ci = ri = nd = 0
    got = bytearray()
    cycle = 0
    acc, outc = [], []
    nbeats = sum(-(-len(c.exp) // BB) for c in cmds)
    limit = 300 + 6 * (len(rows) + nbeats) * (1 + int(10 * max(p_idle, p_stall)))
    mask = (1 << (VLEN * 16)) - 1
    held = None
    start = None
    while nd < len(cmds):
        await RisingEdge(dut.clk)
        cycle += 1
        assert cycle < limit, f"timeout: {nd}/{len(cmds)} done, row {ri}/{len(rows)}, {len(got)} bytes"
        cv = ci < len(cmds)
        dut.cmd_valid.value = int(cv)
        if cv:
            dut.cmd_fmt.value = cmds[ci].fmt
            dut.cmd_rows.value = cmds[ci].rows
        sv = ri < len(rows) and (p_idle == 0.0 or rnd.random() >= p_idle)
        dut.s_valid.value = int(sv)
        dut.s_data.value = rows[ri] if sv else rnd.getrandbits(VLEN * 16) & mask
        mr = p_stall == 0.0 or rnd.random() >= p_stall
        dut.m_ready.value = int(mr)
        await ReadOnly()
        if cv and dut.cmd_ready.value:
            ci += 1
            if start is None:
                start = cycle
        if sv and dut.s_ready.value:
            ri += 1
            acc.append(cycle)
        mv = bool(dut.m_valid.value)
        beat = (dut.m_data.value.to_unsigned(), int(dut.m_bytes.value), bool(dut.m_last.value)) if mv else None
        if held is not None:
            assert mv and beat == held, f"beat at byte {len(got)} dropped or changed under back-pressure"
        held = beat if mv and not mr else None
        if mr and mv:
            data, nbytes, last = beat
            assert nd < len(cmds), "beat with no command outstanding"
            exp = cmds[nd].exp
            left = len(exp) - len(got)
            assert left > 0, f"cmd {nd}: extra beat"
            want_n = min(BB, left)
            assert nbytes == want_n, f"cmd {nd}: m_bytes {nbytes}, expected {want_n}"
            assert last == (left <= BB), f"cmd {nd}: m_last {last} with {left} bytes left"
            b = data.to_bytes(BB, "little")[:nbytes]
            w = exp[len(got):len(got) + nbytes]
            if b != w:
                off = len(got)
                bad = [(off + i, hex(b[i]), hex(w[i])) for i in range(nbytes) if b[i] != w[i]]
                raise AssertionError(f"cmd {nd} fmt {cmds[nd].fmt}: (byte, got, expected) {bad[:8]}")
            got += b
            outc.append(cycle)
        err = bool(dut.cmd_error.value)
        if dut.done.value:
            assert nd < ci, "done without a command"
            assert ri == cum_rows[nd], f"cmd {nd}: done after {ri} rows, expected {cum_rows[nd]}"
            assert len(got) == len(cmds[nd].exp), f"cmd {nd}: done after {len(got)} bytes of {len(cmds[nd].exp)}"
            assert err == cmds[nd].err, f"cmd {nd}: cmd_error={err}, expected {cmds[nd].err}"
            nd += 1
            got = bytearray()
        else:
            assert not err, "cmd_error without done"
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
        stats.update(acc=acc, outc=outc, cycles=cycle, start=start)


def _rng(tag: str) -> tuple[np.random.Generator, random.Random]:
    s = SEED + sum(map(ord, tag))
    return np.random.default_rng(s), random.Random(s)


if cocotb is not None:

    @cocotb.test()
    async def every_format(dut):
        """Each format, a few groups, random idle on the input and back-pressure on the output."""
        await setup(dut)
        nrng, rnd = _rng("formats")
        for name in FMT_CODE:
            c = stream_cmd(nrng, name, rows_for_groups(1.5 if QUICK else 3.3), VLEN, BLOCK)
            await run_cmds(dut, [c], rnd, p_idle=0.3, p_stall=0.3)
            dut._log.info("%s: %d rows, %d bytes ok", name, c.rows, len(c.exp))

    @cocotb.test()
    async def partial_last_group(dut):
        """Last group with 1, 15 and a random number of blocks (where VLEN allows), every format."""
        await setup(dut)
        nrng, rnd = _rng("partial")
        bpr = max(1, VLEN // BLOCK)
        cmds = []
        for i, name in enumerate(FMT_CODE):
            for k in (1, 15, int(nrng.integers(2, 15))):
                full = 0 if QUICK else int(nrng.integers(0, 3))
                nb = full * mx.GROUP_BLOCKS + k
                nb = -(-nb // bpr) * bpr
                rows = max(MIN_ROWS, nb * BLOCK // VLEN)
                cmds.append(stream_cmd(nrng, name, rows, VLEN, BLOCK))
        await run_cmds(dut, cmds, rnd, p_idle=0.25, p_stall=0.25)

    @cocotb.test()
    async def back_to_back(dut):
        """Commands of mixed formats and sizes back to back, with and without pauses."""
        await setup(dut)
        nrng, rnd = _rng("b2b")
        cmds = []
        for _ in range(4 if QUICK else 12):
            name = list(FMT_CODE)[int(nrng.integers(len(FMT_CODE)))]
            rows = MIN_ROWS * int(nrng.integers(1, max(2, rows_for_groups(2.5) // MIN_ROWS)))
            cmds.append(stream_cmd(nrng, name, rows, VLEN, BLOCK))
        await run_cmds(dut, cmds, rnd, p_idle=0.2, p_stall=0.4)
        await run_cmds(dut, cmds[:4], rnd)

    @cocotb.test()
    async def bad_commands(dut):
        """Unknown formats and misaligned row counts flag cmd_error with done and take no row;
        rows = 0 is a no-op; the smallest commands work."""
        await setup(dut)
        nrng, rnd = _rng("bad")
        cmds = [Cmd(f, MIN_ROWS, err=True) for f in BAD_FMTS]
        cmds.append(stream_cmd(nrng, "e4m3", MIN_ROWS, VLEN, BLOCK))
        cmds.append(Cmd(FMT_CODE["e2m1"], 0))
        if MIN_ROWS > 1:
            cmds += [Cmd(FMT_CODE["e4m3"], MIN_ROWS + 1, err=True), Cmd(FMT_CODE["int8"], 1, err=True)]
        for name in FMT_CODE:
            cmds.append(stream_cmd(nrng, name, MIN_ROWS, VLEN, BLOCK))
        cmds.append(Cmd(BAD_FMTS[0], 2 * MIN_ROWS, err=True))
        await run_cmds(dut, cmds, rnd, p_idle=0.3, p_stall=0.3)

    @cocotb.test(skip=QUICK)
    async def throughput(dut):
        """No pauses, a long stream per format: the beats come one a cycle from the first to
        the last when a unit's beats outnumber its rows (the output is the bottleneck), else
        at the rows' pace; the whole command within a fixed latency of that."""
        await setup(dut)
        nrng, rnd = _rng("tput")
        units = 24
        rows = units * FU // VLEN
        for name in FMT_CODE:
            c = stream_cmd(nrng, name, rows, VLEN, BLOCK)
            st = {}
            await run_cmds(dut, [c], rnd, stats=st)
            outc = st["outc"]
            nbeats = len(outc)
            win = outc[-1] - outc[0] + 1
            total = outc[-1] - st["start"] + 1
            upb = -(-mx.stream_nbytes(FU, name, BLOCK) // BB)      # beats per unit
            rpu = FU // VLEN
            msg = (f"{name} DATA_W={DATA_W} VLEN={VLEN} BLOCK={BLOCK}: {nbeats} beats, {rows} rows; "
                   f"beats over {win} cycles, command to last beat {total} cycles")
            dut._log.info(msg)
            print(msg)
            if upb >= rpu + 1:
                assert win == nbeats, msg
                assert total <= nbeats + rpu + 8, msg
            else:
                assert total <= rows + upb + 8, msg


# ---------------------------------------------------------------------------- pytest entries

SOURCES = ["mx/dnpu_mx_quant.v", "mx/dnpu_mx_enc.v"]

# (DATA_W, VLEN, BLOCK): the sim profile; zcu104's; pynq-z2's; short rows, small blocks
# (a last chunk only half in the stream).
VERILATOR_COMBOS = [(128, 16, 32), (128, 64, 32), (64, 32, 32), (128, 16, 8)]
LINT_COMBOS = VERILATOR_COMBOS + [(512, 2048, 32), (256, 8, 64), (512, 256, 8), (64, 16, 8)]


def _runner():
    try:
        from . import cocotb_run
    except ImportError:
        import cocotb_run
    return cocotb_run


def _run(sim: str, data_w: int, vlen: int, block: int, quick: bool) -> None:
    cr = _runner()
    cr.run_block("dnpu_mx_quant", cr.rtl_sources(*SOURCES), "test_mx_quant", sim=sim,
                 parameters={"DATA_W": data_w, "VLEN": vlen, "BLOCK": block},
                 extra_env={"MXQ_DATA_W": str(data_w), "MXQ_VLEN": str(vlen),
                            "MXQ_BLOCK": str(block), "MXQ_QUICK": "1" if quick else "0"})


@pytest.mark.rtl
@pytest.mark.parametrize("data_w,vlen,block", VERILATOR_COMBOS,
                         ids=[f"w{d}-v{v}-b{b}" for d, v, b in VERILATOR_COMBOS])
def test_mx_quant_verilator(data_w, vlen, block):
    _run("verilator", data_w, vlen, block, quick=False)


@pytest.mark.rtl
def test_mx_quant_lint():
    cr = _runner()
    for data_w, vlen, block in LINT_COMBOS:
        cr.lint("dnpu_mx_quant", cr.rtl_sources(*SOURCES),
                parameters={"DATA_W": data_w, "VLEN": vlen, "BLOCK": block})


@pytest.mark.parametrize("fmt", list(mx.FORMATS))
def test_vectors_cover_the_corners(fmt):
    """The generator's rows reach what the bench claims: subnormal inputs that give nonzero
    codes, NaN blocks, saturated codes, negative zeros, and ties."""
    rng = np.random.default_rng(7)
    bits = make_rows(rng, 64 * 32, 32)
    q = mx.quantize(bits.view(ml_dtypes.bfloat16), fmt, 32)
    f = mx.format_info(fmt)
    sub = ((bits & 0x7F80) == 0) & ((bits & 0x7F) != 0)
    codes = q.codes.reshape(-1)
    mag = codes & ((1 << (f.bits - 1)) - 1) if f.kind == "float" else np.abs(codes.astype(np.int8).astype(int))
    assert (mag[sub] != 0).any()
    assert (q.scales == mx.SCALE_NAN).any() and (q.scales == 0).any()
    assert (mag == f.max_code).any()
