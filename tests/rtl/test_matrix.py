"""dnpu_matrix (hw/rtl/matrix/dnpu_matrix.v, dnpu_matrix_pe.v, dnpu_matrix_out.v): the matrix unit on its own,
bit for bit against dnpu.spec.matmul.matmul_bf16 (docs/NUMERICS.md section 11).

Bench (a model, drivers, one monitor, checkers):
  * vector SRAM model in Python with dnpu_sram's contract (synchronous read: v_rdata loads
    mem[v_raddr] at the edge that sees v_re and holds otherwise; read-first; write at the
    edge) on the v_* ports;
  * golden model: X [M, K] and the residual R [M, N] read from the SRAM model as the unit's
    contract lays them out (X row i, k: lane k % VLEN of V[vx + i*K/VLEN + k/VLEN]; R and
    Y (i, tile j): V[base + i*NT + j]), W [N, K] random BF16 bits, Y from
    matmul.matmul_bf16; the expected writes in the contract's order: (group g, tile j) in
    stream order, rows i increasing;
  * weight driver: dnpu.spec.matrix.weight_rows(W) repeated for each of the G groups, a row
    held until taken, random idle cycles (or w_valid always 1); once every owed row is
    taken it offers junk rows, which must not be taken;
  * checker, per cycle: every v_we against the next expected write (address and data),
    nothing written after done or from a flush on, every v_re inside X or R, cmd_ready low
    while busy, done exactly once and only after every expected write.

Stimulus: BF16 values over a range of binades with repeats; special-rich data (NaNs with
payloads, +-Inf, +-0, subnormals (DAZ), the largest finite values, products that overflow
or underflow, whole MX NaN blocks 0x7FC0 in W); values whose sums land on BF16 ties.

cocotb tests (parameters from DNPU_MATRIX_* environment variables):
  random_shapes
              random shapes (M 1 .. 3*ROWS+1, partial groups; NT 1..3; K 1..4 multiples
              of max(VLEN, BLOCK)), random data, with and without residual, in-place
              residual (vr == vd), random weight idle cycles
  specials    X, W, R rich in special values; MX NaN blocks; sparse sums on BF16 ties
              (with a residual: caught only by one rounding of acc + r); an accumulator
              flushed to -0 (the output keeps the sign)
  full_rate   w_valid always 1: a row taken every cycle from the one after the handshake,
              done exactly T + BLOCK + m_last + MAT_TAIL cycles after it (T = G*NT*K, m_last the
              last group's rows; the header's figure, <= T + BLOCK + 2*ROWS + 10), wherever
              the read port keeps up (PORT_OK); elsewhere only correctness
  weights_from_sram
              M_MM_V / M_MM_V_RES (cmd_wv): W read by the unit from the vector SRAM at vw
              (every shape class, W rich in specials incl. subnormals, +-Inf, NaN; ties;
              W overlapping X; residual in place and apart); no w_data row taken; done
              within 6 % + 4 cycles of dnpu.perf.analytical.mm_v_unit_cycles; flushes
  flush_mid   flush in the handshake cycle (the command is not taken), after the first
              row, mid-stream, mid-drain, the cycle before done, at random: no row taken,
              no write, no done from the flush cycle on; the next command is right
"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

from dnpu.perf.matrix_cycles import mm_unit_tail
from dnpu.spec import matmul
from dnpu.spec import matrix as mxs
from dnpu.spec import numerics as nm

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ReadOnly, RisingEdge
except ImportError:  # pytest collection without cocotb: only the entries below matter
    cocotb = None

VLEN = int(os.environ.get("DNPU_MATRIX_VLEN", "16"))
ROWS = int(os.environ.get("DNPU_MATRIX_ROWS", "4"))
BLOCK = int(os.environ.get("DNPU_MATRIX_BLOCK", "32"))
WBUF = int(os.environ.get("DNPU_MATRIX_WBUF", "2"))
VEC_ROWS = int(os.environ.get("DNPU_MATRIX_VEC_ROWS", "1024"))
SLOTS = int(os.environ.get("DNPU_MATRIX_SLOTS", "1"))
SCALE = float(os.environ.get("DNPU_MATRIX_SCALE", "1.0"))
SEED = int(os.environ.get("DNPU_MATRIX_SEED", "20260604"))
KM = max(VLEN, BLOCK)                    # K is a multiple of this
XR = max(1, BLOCK // VLEN)               # vector-SRAM rows per X slice
# the read port keeps up (dnpu_matrix.v, "Timing"): a square's X reads plus a tile's residual
# reads fit in BLOCK cycles, so the unit runs at the weight rate and meets the cycle figure
PORT_OK = ROWS * (XR + 1) + 1 <= SLOTS * BLOCK
# and with a tile's 2*ROWS accumulator reads as well (cmd_ain)
PORT_OK_ACC = ROWS * (XR + 3) + 1 <= SLOTS * BLOCK
# FP32 rows out (cmd_f32): a tile's drain, two cycles a row from PE_D = 2*SLOTS cycles after
# its last step, ends within the next tile's square
DRAIN_OK_F32 = 2 * ROWS + 2 * SLOTS + 1 <= SLOTS * BLOCK
U16, U32 = np.uint16, np.uint32

SPECIAL16 = [0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0xFFC1, 0x7F81, 0x0001, 0x807F, 0x0080,
             0x8080, 0x7F7F, 0xFF7F, 0x3F80, 0xBF80, 0x3F81, 0x4000, 0x7F00, 0x0100, 0x8100,
             0x3C00, 0xBC00, 0x3B80, 0x5F80, 0x1F80, 0x2000, 0x6000]
# sums of these land on BF16 ties (1 + 2^-8, 1 + 3*2^-8, ...) and just off them
# sparse X / W / R for output ties: sums like 2^-8 + 2^-31 (+ 1 as residual) land on BF16 ties
# only after an FP32-first rounding, 1 + 2^-8 is a tie itself
X_TIES = [0x3F80, 0x3B80, 0x3380, 0x3000, 0x3080, 0xBB80, 0x3BC0, 0x3F81, 0xBF80]
W_TIES = [0x3F80, 0x3F00, 0x3B80, 0x3780, 0xBF80]
R_TIES = [0x3F80, 0xBF80, 0x3F81, 0x4000, 0x3B80, 0x0000, 0x8000, 0x3C00]
TIES16 = [0x3F80, 0xBF80, 0x3B80, 0xBB80, 0x3C00, 0x3BC0, 0x3F81, 0x3F82, 0x3380, 0xB380,
          0x4000, 0x3F00, 0x3B00]


# ---------------------------------------------------------------------------- stimulus

def bf16_vals(rng: np.random.Generator, n: int, specials: float = 0.0, ties: float = 0.2,
              scale_exp: tuple[int, int] = (-6, 7), tieset: float = 0.0) -> np.ndarray:
    """n BF16 patterns: normal values over a range of binades, specials, repeats, tie makers."""
    v = rng.standard_normal(n) * np.exp2(rng.integers(*scale_exp, n))
    b = (v.astype(np.float32).view(U32) >> 16).astype(U16)
    ts = rng.random(n) < tieset
    b[ts] = np.array(TIES16, U16)[rng.integers(0, len(TIES16), int(ts.sum()))]
    sp = rng.random(n) < specials
    b[sp] = np.array(SPECIAL16, U16)[rng.integers(0, len(SPECIAL16), int(sp.sum()))]
    tie = rng.random(n) < ties
    if n > 1:
        b[tie] = b[rng.integers(0, n, int(tie.sum()))]
    return b


def row_int(row) -> int:
    return int.from_bytes(np.asarray(row, "<u2").tobytes(), "little")


def int_row(v: int) -> np.ndarray:
    return np.frombuffer(v.to_bytes(2 * VLEN, "little"), "<u2").astype(U16)


# Which M_MM* a command is: (accumulators in from A, FP32 rows out)
MODES = {"mm": (False, False), "f32": (False, True), "acc_f32": (True, True), "acc": (True, False)}


class Cmd:
    """One M_MM*: shape, operand bases, the weights, the mode (MODES; with res the
    residual), and the golden model."""

    def __init__(self, m, nt, k, vx, vd, vr, res, w, mode="mm", va=0, vw=None):
        self.m, self.nt, self.k, self.vx, self.vd, self.vr, self.res, self.w = m, nt, k, vx, vd, vr, res, w
        self.mode, self.va, self.vw = mode, va, vw
        self.ain, self.f32 = MODES[mode]
        self.wv = vw is not None                          # M_MM_V: W [N, K] from V[vw ..]
        self.g = -(-m // ROWS)
        self.kr = k // VLEN
        self.t = 0 if self.wv else self.g * nt * k        # weight rows owed on w_data
        self.m_last = m - (self.g - 1) * ROWS
        self.rows = [] if self.wv else [row_int(r) for r in mxs.weight_rows(w, VLEN, BLOCK)] * self.g

    def expect(self, V: np.ndarray) -> list[tuple[int, int]]:
        m, nt, k = self.m, self.nt, self.k
        if self.wv:
            self.w = V[self.vw:self.vw + nt * k].reshape(nt * VLEN, k).copy()
        x = V[self.vx:self.vx + m * self.kr].reshape(m, k)
        r = V[self.vr:self.vr + m * nt].reshape(m, nt * VLEN) if self.res else None
        acc = mxs.acc_from_rows(V[self.va:self.va + 2 * m * nt], m, nt * VLEN) if self.ain else None
        y = matmul.matmul_bf16(x, self.w, residual_bits=r, acc_bits=acc, out="f32" if self.f32 else "bf16")
        rows = mxs.acc_to_rows(y, VLEN).reshape(m, nt, 2, VLEN) if self.f32 else None
        out = []
        for g in range(self.g):
            for j in range(nt):
                for i in range(g * ROWS, min(m, (g + 1) * ROWS)):
                    if self.f32:
                        out += [(self.vd + 2 * (i * nt + j) + h, row_int(rows[i, j, h])) for h in (0, 1)]
                    else:
                        out.append((self.vd + i * nt + j, row_int(y[i, j * VLEN:(j + 1) * VLEN])))
        return out

    def reads_ok(self) -> set[int]:
        ok = set(range(self.vx, self.vx + self.m * self.kr))
        if self.res:
            ok |= set(range(self.vr, self.vr + self.m * self.nt))
        if self.ain:
            ok |= set(range(self.va, self.va + 2 * self.m * self.nt))
        if self.wv:
            ok |= set(range(self.vw, self.vw + self.nt * self.k))
        return ok

    def cycles_wv(self) -> int:
        """M_MM_V's done cycle after the handshake (dnpu_matrix.v "Timing, M_MM_V")."""
        from dnpu.perf import analytical
        return analytical.mm_v_unit_cycles(self.m, self.nt * VLEN, self.k, vlen=VLEN, rows=ROWS, block=BLOCK,
                                           res=self.res, slots=SLOTS)


def _apart(a, na, b, nb) -> bool:
    return a + na <= b or b + nb <= a


def random_cmd(rng: random.Random, nrng: np.random.Generator, *, m=None, nt=None, kmul=None, res=None,
               inplace=None, wvals=None, mode="mm", wv=False) -> Cmd:
    """Random shape and placement by the rules: Y apart from X; R = Y or apart from Y (the
    accumulating modes add R in place only); A = Y for acc_f32, apart from Y for acc (A
    and R may overlap X: they are only read). wv (M_MM_V): W's N*K/VLEN rows in the vector
    SRAM apart from Y (they may overlap X and R), with wvals' bits written there."""
    ain, f32 = MODES[mode]
    m = m or rng.randint(1, 3 * ROWS + 1)
    while True:
        nt_ = nt or rng.randint(1, 3)
        k = KM * (kmul or rng.randint(1, 4))
        if not wv or nt_ * k + m * nt_ + m * (k // VLEN) <= VEC_ROWS // 2:
            break
        if nt and kmul:                              # explicit shape: smaller M
            m = max(1, m // 2)
    nt = nt_
    res = (rng.random() < 0.6 if res is None else res) and not f32
    inplace = res and (ain or (rng.random() < 0.4 if inplace is None else inplace))
    nx, ny = m * (k // VLEN), m * nt * (2 if f32 else 1)
    assert nx + 2 * ny + 2 * m * nt <= VEC_ROWS, "shape does not fit the vector SRAM"
    while True:
        vx = rng.randrange(0, VEC_ROWS - nx + 1)
        vd = rng.randrange(0, VEC_ROWS - ny + 1)
        if _apart(vd, ny, vx, nx):
            break
    vr = vd
    if res and not inplace:
        while True:                                  # R may overlap X, never Y
            vr = rng.randrange(0, VEC_ROWS - ny + 1)
            if _apart(vr, ny, vd, ny):
                break
    va = vd
    if mode == "acc":
        while True:
            va = rng.randrange(0, VEC_ROWS - 2 * m * nt + 1)
            if _apart(va, 2 * m * nt, vd, ny):
                break
    w = wvals(nt * VLEN, k) if wvals else bf16_vals(nrng, nt * VLEN * k).reshape(nt * VLEN, k)
    vw = None
    if wv:
        while True:
            vw = rng.randrange(0, VEC_ROWS - nt * k + 1)
            if _apart(vw, nt * k, vd, ny):
                break
    return Cmd(m, nt, k, vx, vd, vr, res, w, mode=mode, va=va, vw=vw)


# ---------------------------------------------------------------------------- bench

class Bench:
    """The vector SRAM model, the drivers and the checker around one dnpu_matrix."""

    def __init__(self, dut, tag: str):
        self.dut = dut
        s = SEED + sum(map(ord, tag))
        self.rng = random.Random(s)
        self.nrng = np.random.default_rng(s)
        self.V = np.zeros((VEC_ROWS, VLEN), U16)
        self.cycle = 0

    async def start(self):
        dut = self.dut
        Clock(dut.clk, 10, unit="ns").start()
        dut.rst_n.value = 0
        dut.flush.value = 0
        dut.cmd_valid.value = 0
        for p in ("cmd_m", "cmd_ntiles", "cmd_k", "cmd_vx", "cmd_vd", "cmd_vr", "cmd_res", "cmd_va",
                  "cmd_ain", "cmd_f32", "cmd_vw", "cmd_wv"):
            getattr(dut, p).value = 0
        dut.w_valid.value = 0
        dut.w_data.value = 0
        dut.v_rdata.value = 0
        self.rd = None                      # read issued last cycle: address
        self.wr = None                      # write issued last cycle: (address, data)
        for _ in range(3):
            await RisingEdge(dut.clk)
        dut.rst_n.value = 1
        await RisingEdge(dut.clk)
        await ReadOnly()

    def fill(self, **kw):
        self.V[:] = bf16_vals(self.nrng, VEC_ROWS * VLEN, **kw).reshape(VEC_ROWS, VLEN)

    def _edge(self):
        """The SRAM at the clock edge: the read first (read-first), then the write."""
        if self.rd is not None:
            self.dut.v_rdata.value = row_int(self.V[self.rd])
        if self.wr is not None:
            self.V[self.wr[0]] = int_row(self.wr[1])

    async def run(self, c: Cmd, *, p_idle: float = 0.0, full_rate: bool = False,
                  flush_at: int | None = None, tail: int = 4, wvals_at_vw: bool = False) -> dict:
        """Issue c and check it to the end. flush_at: cycles after the handshake at which flush
        is high for one cycle (nothing may happen from then on). Returns the handshake cycle,
        the cycles rows were taken and the done cycle."""
        dut, rng = self.dut, self.rng
        if c.wv and wvals_at_vw:
            self.V[c.vw:c.vw + c.nt * c.k] = c.w.reshape(-1, VLEN)
        want = c.expect(self.V.copy())
        reads_ok = c.reads_ok()
        errors: list[str] = []
        pos = 0
        di = 0                              # next weight row to offer
        held = False
        took: list[int] = []
        done_at = None
        flushed = False
        k = 0
        budget = 4 * c.t + 8 * c.g * c.nt * (c.k // BLOCK) * (ROWS * (XR + 1) + 4) + 200
        if c.wv:
            budget += 2 * c.g * c.nt * c.k * max(1, VLEN // BLOCK)
        if flush_at is not None:
            budget = flush_at + 30

        def err(msg):
            if len(errors) < 10:
                errors.append(f"cycle {k}: {msg}")

        while True:
            await RisingEdge(dut.clk)
            self.cycle += 1
            self._edge()
            # -- drive
            if k == 0:
                dut.cmd_valid.value = 1
                dut.cmd_m.value, dut.cmd_ntiles.value, dut.cmd_k.value = c.m, c.nt, c.k
                dut.cmd_vx.value, dut.cmd_vd.value, dut.cmd_vr.value = c.vx, c.vd, c.vr
                dut.cmd_res.value = int(c.res)
                dut.cmd_va.value, dut.cmd_ain.value, dut.cmd_f32.value = c.va, int(c.ain), int(c.f32)
                dut.cmd_vw.value, dut.cmd_wv.value = c.vw or 0, int(c.wv)
            elif k == 1:                    # operands are sampled at the handshake only
                dut.cmd_valid.value = 0
                dut.cmd_m.value, dut.cmd_ntiles.value = rng.getrandbits(32), rng.getrandbits(32)
                dut.cmd_k.value = rng.getrandbits(32)
                dut.cmd_vx.value, dut.cmd_vd.value, dut.cmd_vr.value = (rng.randrange(VEC_ROWS) for _ in range(3))
                dut.cmd_res.value = rng.getrandbits(1)
                dut.cmd_va.value = rng.randrange(VEC_ROWS)
                dut.cmd_ain.value, dut.cmd_f32.value = rng.getrandbits(1), rng.getrandbits(1)
                dut.cmd_vw.value, dut.cmd_wv.value = rng.randrange(VEC_ROWS), rng.getrandbits(1)
            fl = flush_at is not None and k == flush_at
            dut.flush.value = int(fl)
            if fl:
                flushed = True
            if not held:
                if di < c.t:
                    held = full_rate or rng.random() >= p_idle
                    if held:
                        dut.w_data.value = c.rows[di]
                else:                       # junk: must not be taken
                    held = full_rate or rng.random() < 0.5
                    if held:
                        dut.w_data.value = rng.getrandbits(16 * VLEN)
            dut.w_valid.value = int(held)
            await ReadOnly()
            # -- monitor
            if k == 0 and not fl and not dut.cmd_ready.value:
                err("cmd_ready low when idle")
            if k == 0 and fl and dut.cmd_ready.value:
                err("cmd_ready high in a flush cycle")
            if held and dut.w_ready.value:
                if flushed:
                    err("weight row taken at / after flush")
                if di >= c.t:
                    err(f"took weight row {di}, beyond the {c.t} owed")
                took.append(k)
                di += 1
                held = False
            if 0 < k and done_at is None and not flushed and dut.cmd_ready.value and not dut.done.value:
                err("cmd_ready high while busy")
            self.wr = None
            if dut.v_we.value:
                a, d = dut.v_waddr.value.to_unsigned(), dut.v_wdata.value.to_unsigned()
                if flushed:
                    err(f"write [{a}] at / after flush")
                elif done_at is not None:
                    err(f"write [{a}] after done")
                elif pos >= len(want):
                    err(f"unexpected write [{a}] = 0x{d:0{4 * VLEN}X} (all {len(want)} made)")
                else:
                    if (a, d) != want[pos]:
                        wa, wd = want[pos]
                        got, exp = int_row(d), int_row(wd)
                        bad = [f"lane {i}: {got[i]:04X} != {exp[i]:04X}" for i in np.flatnonzero(got != exp)[:4]]
                        err(f"write {pos}: [{a}] expected [{wa}]; {'; '.join(bad)}")
                    pos += 1
                self.wr = (a, d)
            self.rd = None
            if dut.v_re.value:
                a = dut.v_raddr.value.to_unsigned()
                if not flushed and a not in reads_ok:
                    err(f"read [{a}] outside X / R / A")
                self.rd = a
            if dut.done.value:
                if flushed:
                    err("done at / after flush")
                elif done_at is not None:
                    err("done twice")
                elif k == 0:
                    err("done in the handshake cycle")
                else:
                    done_at = k
                    if pos != len(want):
                        err(f"done after {pos} of {len(want)} writes")
                    if di != c.t:
                        err(f"done after {di} of {c.t} weight rows")
            k += 1
            if errors:
                break
            if done_at is not None and k - done_at > tail:
                break
            if flushed and k - flush_at > 25:
                break
            if k > budget:
                err(f"no done after {budget} cycles ({pos} of {len(want)} writes, {di} of {c.t} rows)")
                break
        await RisingEdge(dut.clk)
        self.cycle += 1
        self._edge()
        self.rd = self.wr = None
        dut.flush.value = 0
        dut.w_valid.value = 0
        await ReadOnly()
        what = f"{c.mode} M={c.m} NT={c.nt} K={c.k} vx={c.vx} vd={c.vd} vr={c.vr} va={c.va} res={c.res} vw={c.vw}"
        assert not errors, f"{what}:\n" + "\n".join(errors)
        return {"took": took, "done": done_at, "writes": pos}


def _scale(n: int) -> int:
    return max(1, int(n * SCALE))


if cocotb is not None:

    @cocotb.test()
    async def random_shapes(dut):
        """Random shapes (partial groups, NT 1..3, K 1..4 multiples), random data, with and
        without residual, in place, random weight idle cycles."""
        tb = Bench(dut, "random")
        await tb.start()
        for case in range(_scale(24)):
            tb.fill(specials=0.02)
            c = random_cmd(tb.rng, tb.nrng, m=[1, ROWS, ROWS + 1, 3 * ROWS + 1, None][case % 5],
                           res=[None, True, False][case % 3], inplace=case % 4 == 1 or None)
            await tb.run(c, p_idle=tb.rng.choice([0.0, 0.2, 0.5, 0.8]))

    @cocotb.test()
    async def specials(dut):
        """X, W, R rich in NaN (payloads), +-Inf, +-0, subnormals, max finite, overflowing /
        underflowing products; W with whole MX NaN blocks (0x7FC0); sparse sums that land on
        BF16 ties, before and after adding the residual (one rounding, not FP32 first); a
        negative partial sum flushed to -0 that stays -0 (the output keeps the sign)."""
        tb = Bench(dut, "specials")
        await tb.start()
        nrng = tb.nrng

        def sparse(vals, shape, p_zero):
            v = np.array(vals, U16)[nrng.integers(0, len(vals), shape)]
            v[nrng.random(shape) < p_zero] = 0
            return v

        for case in range(_scale(12)):
            kind = ["special", "ties", "negzero", "special", "ties", "ties"][case % 6]
            res = case % 2 == 0 if kind != "negzero" else case % 4 == 2
            if kind == "special":
                tb.fill(specials=0.25, scale_exp=(-60, 60))

                def wvals(n, k):
                    w = bf16_vals(nrng, n * k, specials=0.2, scale_exp=(-60, 60)).reshape(n, k)
                    for _ in range(2):               # an MX NaN block: BLOCK k of one row
                        r, b = nrng.integers(0, n), nrng.integers(0, k // BLOCK)
                        w[r, b * BLOCK:(b + 1) * BLOCK] = 0x7FC0
                    return w
            elif kind == "ties":
                tb.fill()

                def wvals(n, k):
                    return sparse(W_TIES, (n, k), 0.8)
            else:
                tb.fill()

                def wvals(n, k):
                    w = bf16_vals(nrng, n * k, ties=0.0).reshape(n, k) & 0x7FFF
                    w[:, 0], w[:, 1] = 0xBF00, 0x3EC0         # -0.5, 0.375
                    return w
            c = random_cmd(tb.rng, nrng, res=res, inplace=case % 4 == 2, wvals=wvals)
            X = tb.V[c.vx:c.vx + c.m * c.kr].reshape(c.m, c.k)      # a view: writes go to V
            if kind == "ties":
                X[:] = sparse(X_TIES, X.shape, 0.7)
                if c.res:
                    tb.V[c.vr:c.vr + c.m * c.nt] = sparse(R_TIES, (c.m * c.nt, VLEN), 0.1)
            elif kind == "negzero":
                # 2^-124 * -0.5 + 2^-124 * 0.375 = -2^-127: flushed to -0, then only -0 products
                X[:, :2] = 0x0180
                X[:, 2:] = 0x8000
                if c.res:
                    tb.V[c.vr:c.vr + c.m * c.nt] = 0x8000
            await tb.run(c, p_idle=0.3)

    @cocotb.test()
    async def accumulators(dut):
        """Every mode (FP32 rows out, A continued in place or read into a BF16 Y, with an
        in-place residual) on random shapes, random A bits (NaN, Inf, subnormal: DAZ) and
        idle cycles; then chains f32 -> acc_f32 -> acc over one A, whose last Y is the
        whole K's M_MM bit for bit (matmul.matmul_bf16 of the concatenated K)."""
        tb = Bench(dut, "accumulators")
        await tb.start()
        for case in range(_scale(16)):
            tb.fill(specials=0.1, scale_exp=(-40, 40))
            mode = ["f32", "acc_f32", "acc", "acc"][case % 4]
            c = random_cmd(tb.rng, tb.nrng, m=[1, ROWS, ROWS + 1, 3 * ROWS + 1, None][case % 5],
                           res=case % 8 == 2, mode=mode)
            await tb.run(c, p_idle=tb.rng.choice([0.0, 0.3, 0.7]))
        for case in range(_scale(3)):
            tb.fill(specials=0.02)
            m, nt = tb.rng.randint(1, 2 * ROWS + 1), tb.rng.randint(1, 2)
            parts = [random_cmd(tb.rng, tb.nrng, m=m, nt=nt, kmul=1, mode=md, res=case == 1 and md == "acc")
                     for md in ("f32", "acc_f32", "acc")]
            f32, mid, last = parts
            # one A for the chain (last's A apart from its Y), X slices where f32 put them
            mid.vd = mid.va = last.va = f32.vd
            while not (_apart(last.vd, m * nt, f32.vd, 2 * m * nt) and _apart(last.vx, m * last.kr, last.vd, m * nt)
                       and _apart(last.vx, m * last.kr, f32.vd, 2 * m * nt)):
                last.vd = last.vr = tb.rng.randrange(0, VEC_ROWS - m * nt + 1)
                last.vx = tb.rng.randrange(0, VEC_ROWS - m * last.kr + 1)
            while not _apart(mid.vx, m * mid.kr, f32.vd, 2 * m * nt):
                mid.vx = tb.rng.randrange(0, VEC_ROWS - m * mid.kr + 1)
            xs = [tb.V[p.vx:p.vx + m * p.kr].reshape(m, p.k).copy() for p in parts]
            r0 = tb.V[last.vr:last.vr + m * nt].reshape(m, nt * VLEN).copy() if last.res else None
            for p in parts:
                await tb.run(p, p_idle=0.2)
            whole = matmul.matmul_bf16(np.concatenate(xs, axis=1), np.concatenate([p.w for p in parts], axis=1),
                                   residual_bits=r0)
            got = tb.V[last.vd:last.vd + m * nt].reshape(m, nt * VLEN)
            assert (got == whole).all(), f"chain M={m} NT={nt}: {np.count_nonzero(got != whole)} outputs differ"

    @cocotb.test()
    async def full_rate(dut):
        """w_valid always 1: a row every cycle from the one after the handshake, and done
        exactly BLOCK + 1 + SLOTS*(T-1) + m_last + mm_unit_tail(SLOTS) cycles after it."""
        tb = Bench(dut, "full_rate")
        await tb.start()
        for case in range(_scale(12)):
            tb.fill(specials=0.02)
            mode = list(MODES)[case % len(MODES)]
            c = random_cmd(tb.rng, tb.nrng, m=[3 * ROWS + 1, 2 * ROWS, 1, None, None][case % 5],
                           kmul=[1, 2, 1, None, 3][case % 5], res=case % 3 == 0, inplace=case == 2,
                           mode=mode)
            r = await tb.run(c, full_rate=True)
            assert len(r["took"]) == c.t and r["took"][0] == 1, f"first row taken in cycle {r['took'][0]}"
            if not (PORT_OK_ACC if c.ain else PORT_OK) or (c.f32 and not DRAIN_OK_F32):   # correct only
                continue
            # every row the cycle after the one before; with SLOTS > 1 the first square's, then
            # the array's pace (a square in SLOTS*BLOCK cycles)
            n = c.t if SLOTS == 1 else BLOCK
            gap = next((i for i, t in enumerate(r["took"][:n]) if t != i + 1), None)
            assert gap is None, (f"M={c.m} NT={c.nt} K={c.k} res={c.res} {c.mode}: rows not taken every cycle "
                                 f"1..{n}: first gap at {gap}: {r['took'][:40]}")
            want = BLOCK + 1 + SLOTS * (c.t - 1) + c.m_last * (2 if c.f32 else 1) + mm_unit_tail(SLOTS)
            assert r["done"] == want, \
                f"{c.mode} M={c.m} NT={c.nt} K={c.k} res={c.res}: done at {r['done']}, expected {want}"

    @cocotb.test()
    async def weights_from_sram(dut):
        """M_MM_V / M_MM_V_RES (cmd_wv): W [N, K] BF16 rows the unit reads from the vector SRAM
        itself; every shape class (M 1, ROWS, ROWS + 1, 3*ROWS + 1: partial groups; NT 1..3; K
        1..4 multiples), W rich in specials (subnormals: DAZ, +-Inf, NaN payloads, products
        that overflow / flush), sparse ties, W overlapping X, residual in place and apart; no
        row taken on w_data; done in the cycle dnpu.perf.analytical.mm_v_unit_cycles gives;
        flush mid-command, then a right command."""
        tb = Bench(dut, "weights_from_sram")
        await tb.start()
        nrng = tb.nrng
        for case in range(_scale(16)):
            kind = ["plain", "special", "ties", "overlap"][case % 4]
            tb.fill(specials=0.3 if kind == "special" else 0.02,
                    scale_exp=(-60, 60) if kind == "special" else (-6, 7))
            c = random_cmd(tb.rng, nrng, m=[1, ROWS, ROWS + 1, 3 * ROWS + 1, None][case % 5],
                           res=[True, None, False][case % 3], inplace=case % 4 == 1 or None, wv=True)
            if kind == "ties":
                v = np.array(W_TIES, U16)[nrng.integers(0, len(W_TIES), c.nt * c.k * VLEN)]
                v[nrng.random(v.size) < 0.8] = 0
                tb.V[c.vw:c.vw + c.nt * c.k] = v.reshape(-1, VLEN)
                x = np.array(X_TIES, U16)[nrng.integers(0, len(X_TIES), c.m * c.k)]
                x[nrng.random(x.size) < 0.7] = 0
                tb.V[c.vx:c.vx + c.m * c.kr] = x.reshape(-1, VLEN)
            elif kind == "overlap" and c.vx + c.nt * c.k <= VEC_ROWS and \
                    _apart(c.vx, c.nt * c.k, c.vd, c.m * c.nt):
                c.vw = c.vx                              # W and X share rows: both only read
            r = await tb.run(c, p_idle=0.0)
            want = c.cycles_wv()
            dut._log.info(f"wv M={c.m} NT={c.nt} K={c.k} res={c.res}: done {r['done']} model {want}")
            # the model counts the port's reads; ring-full and drain stalls it does not model
            assert abs(r["done"] - want) <= 0.06 * want + 4, \
                f"M_MM_V M={c.m} NT={c.nt} K={c.k} res={c.res}: done at {r['done']}, model {want}"
        for case in range(_scale(4)):
            tb.fill(specials=0.05)
            c = random_cmd(tb.rng, nrng, res=case % 2 == 0, wv=True)
            at = [1, 2 * BLOCK + 3, c.cycles_wv() - 2, tb.rng.randint(1, c.cycles_wv())][case % 4]
            await tb.run(c, flush_at=at)
            await tb.run(random_cmd(tb.rng, nrng, res=case % 2 == 1, wv=True))

    @cocotb.test()
    async def flush_mid(dut):
        """flush at random points (before the first row, mid-square, mid-drain, at the end):
        nothing taken, written or done from its cycle on; the next command is right."""
        tb = Bench(dut, "flush_mid")
        await tb.start()
        for case in range(_scale(12)):
            tb.fill(specials=0.02)
            c = random_cmd(tb.rng, tb.nrng, res=case % 2 == 0)
            full = c.t + BLOCK + c.m_last + 3
            at = [0, 1, BLOCK + 1, full - 2, full - 1, tb.rng.randint(1, full)][case % 6]
            await tb.run(c, flush_at=at, full_rate=case % 2 == 1, p_idle=0.2)
            c2 = random_cmd(tb.rng, tb.nrng)
            await tb.run(c2, p_idle=0.2)


# ---------------------------------------------------------------------------- pytest entries

SOURCES = ["matrix/dnpu_matrix.v", "matrix/dnpu_matrix_pe.v", "matrix/dnpu_matrix_out.v", "fp/dnpu_fp32_add.v"]
# (VLEN, ROWS, BLOCK, WBUF, VEC_ROWS): the sim profile's vector shape; a small odd array with
# VLEN = BLOCK; four squares buffered; VLEN > BLOCK (two squares per X row); on Icarus a
# full array (ROWS = VLEN) whose X and residual reads exceed BLOCK cycles a square (stalls).
SIM = (16, 4, 32, 2, 1024)
SMALL = (8, 3, 8, 2, 512)
WIDE_BUF = (32, 2, 32, 4, 512)
WIDE = (64, 2, 32, 2, 256)
PORT_BOUND = (8, 8, 8, 2, 512)
# (..., SLOTS): PEs interleaving rows: four in one physical row (zcu104's shape, narrower); two
# in each of three rows with small squares (partial groups leave whole PEs and single slots idle)
SLOTTED = (16, 4, 32, 2, 1024, 4)
SLOTTED_SMALL = (8, 6, 8, 2, 512, 2)
LINT = [SIM, SMALL, WIDE_BUF, WIDE, PORT_BOUND, (8, 1, 64, 2, 64), (8, 8, 8, 2, 16), (128, 3, 16, 8, 4096),
        SLOTTED, SLOTTED_SMALL, (8, 8, 8, 2, 64, 2), (16, 12, 16, 2, 256, 3)]


def _runner():
    try:
        from . import cocotb_run
    except ImportError:
        import cocotb_run
    return cocotb_run


def _params(shape):
    vlen, rows, block, wbuf, vrows, *slots = shape
    return {"VLEN": vlen, "ROWS": rows, "BLOCK": block, "WBUF": wbuf, "VEC_ROWS": vrows, "SLOTS": slots[0] if slots else 1}


def _run(sim: str, shape: tuple, scale: float = 1.0, testcase: list[str] | None = None) -> None:
    cr = _runner()
    p = _params(shape)
    cr.run_block("dnpu_matrix", cr.rtl_sources(*SOURCES), "test_matrix", sim=sim, testcase=testcase,
                 parameters=p, extra_env={**{f"DNPU_MATRIX_{k}": str(v) for k, v in p.items()},
                                          "DNPU_MATRIX_SCALE": str(scale)})


def _id(shape):
    return "vlen{}-rows{}-block{}-wbuf{}".format(*shape[:4]) + (f"-slots{shape[5]}" if len(shape) > 5 else "")


@pytest.mark.rtl
# WIDE_BUF (a four-square ring) and WIDE (vlen 64) only in the slow tier: each set is a
# Verilator build of its own, and SIM and SMALL already cover the array's edge cases
@pytest.mark.parametrize("shape", [SIM, SMALL, SLOTTED, SLOTTED_SMALL, pytest.param(WIDE_BUF, marks=pytest.mark.slow),
                                   pytest.param(WIDE, marks=pytest.mark.slow)], ids=_id)
def test_matrix_verilator(shape):
    _run("verilator", shape, scale=1.0 if shape == SIM else 0.5)


@pytest.mark.rtl
@pytest.mark.slow              # the second simulator: make test-slow (Verilator runs these in make test)
def test_matrix_icarus():
    _run("icarus", PORT_BOUND, scale=0.25)


@pytest.mark.rtl
def test_matrix_lint():
    cr = _runner()
    for shape in LINT:
        cr.lint("dnpu_matrix", cr.rtl_sources(*SOURCES), parameters=_params(shape))
