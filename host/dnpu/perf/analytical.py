"""Analytical cycle model of the dnpu NPU, calibrated against the RTL.

The controller (hw/rtl/ctrl/dnpu_core.v) is a multi-cycle machine without a pipeline:
every instruction is FETCH + EXEC (+ the state that finishes it), and the next
instruction is fetched only after the previous one retired. Nothing overlaps between
instructions, so a program's cycles are the sum of its instructions' cycles, plus the
instruction-fetch misses, plus a fixed start/stop overhead.

`program()` runs the binary on the functional emulator without its data path
(`dnpu.emu.Emulator(cfg, data_path=False)`): the emulator's decode, hardware loops and x
registers give the dynamic instruction stream, and its per-instruction callback hands
each executed instruction with its operand values to this module, which only assigns
cycles: `instr_cycles` (a closed-form cost per instruction from its counts and
addresses), the misses of the four direct-mapped fetch line buffers, and for the MX
stream instructions (H_PREFETCH_V, H_SAMPLE_FUSED(_N)) `stream_cycles`, a register-level
model of the three coupled rates of that part of the RTL (the DRAM's beats, the
dequantizer's byte buffer, the vector unit's row rate), cached per shape.

    est = step("sim", B=2, L=8, V=4096, mode="topk", flow="fused")
    est.cycles, est.phases, est.seconds, est.ops["H_SAMPLE_FUSED_N"]
    bound(cfg, B, L, V, "e4m3")                   # max(B*L*V/VLEN, bytes/bytes_per_cycle)

Every constant below names its origin: the RTL state machine that produces it, and the
measurement on the Verilator co-simulation (profiles sim, pynq-z2, zcu104; retire-port
traces, `dev.run(..., trace=True)`, cycle of each retire) that confirmed it. docs/PERF.md
has the table. Memory timing is the co-simulation's DRAM model (cosim/dram.h) with the
profile's [memory] section: read_latency cycles from AR to the first R beat, a bandwidth
credit of bytes_per_cycle, at most one beat a cycle; write latency = read latency (the
verilator backend's default).

Two memory-port variants (`port`):

* ``"rtl"`` (default): the RTL as built: one AXI4 read port of axi.data_width bits, the
  read engine's 4 bursts in flight, the dequantizer's one chunk a cycle. On asic-2048 this
  port moves at most 64 bytes a cycle, a sixteenth of its memory.bytes_per_cycle (1024).
* ``"ideal"``: a memory port and MX decoder that keep up with memory.bytes_per_cycle
  (what the asic-2048 profile's HBM figure assumes): a stream of `n` bytes and `r` rows
  takes max(n / bytes_per_cycle, r * (vlen/lanes for H_SAMPLE_FUSED, else 1)) cycles
  after its latency. Used for projections and the design-space sweep.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
from typing import Any

from dnpu import compiler
from dnpu.emu import Emulator
from dnpu.runtime import HEAP_BASE
from dnpu.spec import isa, mx
from dnpu.spec import config as config_mod
from dnpu.spec.config import Config

__all__ = ["Machine", "Estimate", "ModelError", "machine", "instr_cycles", "stream_cycles", "program",
           "step", "bound", "PHASES", "CONSTANTS", "pad_vocab", "variant", "miss_cycles"]

PHASES = ("memory", "vector", "scalar", "control", "matrix")


class ModelError(ValueError):
    """A program the model cannot time (a data-dependent count, a shape the profile rejects)."""


# ---- constants: every one from the RTL, confirmed by Verilator retire traces ------------------
# name: (value, origin)
CONSTANTS: dict[str, tuple[int, str]] = {
    "RUN_OVERHEAD": (8, "harness run(): START write over AXI4-Lite reaches the core, and the STATUS poll "
                        "sees DONE after C_HALT; measured 8 on sim, pynq-z2, zcu104 (straight-line code)"),
    "FE": (2, "dnpu_core FETCH (line hit) + EXEC: every instruction that retires in EXEC (header 'Cost')"),
    "LDW": (1, "S_LD_INT / S_LD_FP: synchronous SRAM read, state LDW"),
    "FPU": (1, "scalar FP arithmetic and S_LT_FP retire in state FPU"),
    "RECI": (26, "S_RECI_FP waits in FPU for dnpu_fp32_reci's done: 28 cycles in all"),
    "RSQRT": (26, "S_RSQRT_FP waits in FPU for dnpu_fp32_rsqrt's done: 28 cycles in all"),
    "MISS": (2, "fetch miss: the core waits in FETCH while dnpu_fetch issues the line read and fills "
                "the line: read_latency + line beats, +2 (engine issue, AR handshake); measured "
                "RL+beats+2 on all three profiles"),
    "LOAD": (4, "H_LOAD_*: EXEC, read engine issue, AR, unpacker register: 4 + RL + words (one word a "
                "cycle; H_LOAD_V: n*VLEN/2 words, a row written with its last word)"),
    "STORE": (6, "H_STORE_INT/FP/V: EXEC, AW, W pipeline, B response: 6 + write_latency + words"),
    "STREAM": (4, "H_PREFETCH_V / H_SAMPLE_FUSED: FETCH, EXEC, read engine issue, AR handshake, done: "
                  "4 + RL + stream cycles (stream_cycles: first beat presentable to the last row delivered)"),
    "FUSED_TAIL": (4, "H_SAMPLE_FUSED after the last row enters dnpu_vec stage B: C chunk cycles, S1..S3, "
                      "log2(C) chunk-sum levels, S5, M_DONE: C + log2(C) + 4"),
    "FN_START": (1, "H_SAMPLE_FUSED_N issues its first read command in VEC, one cycle after EXEC"),
    "FN_END": (4, "H_SAMPLE_FUSED_N: a position's results are final (fn_end) C + log2(C) + 4 cycles "
                  "after its last row's handshake; the next position's rows are taken after it"),
    "RECI_N": (25, "H_SAMPLE_FUSED_N: dnpu_vec's dnpu_fp32_reci: done 25 cycles after fn_end starts it; "
                   "a position's fn_end waits for the previous reciprocal's done"),
    "FN_TAIL": (27, "H_SAMPLE_FUSED_N after the last fn_end: the reciprocal (25), FP write with fn_fin, "
                    "M_DONE, the done pulse: retire 27 cycles after it"),
    "VEC": (4, "dnpu_vec instructions: FETCH + EXEC, then the unit's engine, M_DONE, the done pulse"),
    "EW_VF": (3, "elementwise V*_VF / V_EXP_V: M_ERD, M_ELAT, C chunk cycles, M_EWR: C + 3 a row"),
    "RECI_CHUNK": (25, "V_RECI_V: each chunk of LANES elements takes the lanes' iterative reciprocal "
                       "25 cycles (24 quotient bits, rounding + narrowing): 25 C + 3 a row"),
    "EW_VV": (4, "elementwise V*_VV: M_ERD, M_ERDB, M_ELAT, C chunks, M_EWR: C + 4 a row"),
    "RED_MAX": (5, "V_RED_MAX(_IDX): one row a cycle through the max tree, + 5"),
    "RED_SUM": (9, "V_RED_SUM: a row every C cycles, pipeline S1..S5 + log2(C) levels: rows*C + 9 + log2(C)"),
    "MAP": (5, "S_MAP_V_FP: word engine over whole rows, rows*VLEN + 1, + 4"),
    "THRESH": (5, "V_THRESH_MASK and V_MASK_FP: n + 1 words, + 4; V_TRANS the same word engine over "
                  "VLEN*VLEN elements"),
    "SELECT": (3, "V_SELECT_INT: 3 cycles an element (mask, source, write), + 4"),
    "TOPK": (4, "V_TOPK_MASK(_V): n*(n+2) (M_TKJ + n+1 M_TKI cycles per element j), + 4"),
    "ONE_BEAT_BURST": (1, "H_STORE_*: a last AXI burst holding a single word (lane offset + n = "
                          "k*max_burst*words_per_beat + 1) costs one more cycle (dnpu_axi_wr); measured"),
    "MAT_START": (1, "M_MM* issue their first read command in MAT, one cycle after EXEC"),
    "MAT_TAIL": (3, "M_MM* after the last weight row: the last square's mx.block multiply-add cycles, the "
                    "last tile's m_last output rows (one a cycle, two with FP32 rows out), then 3 "
                    "(dnpu_matrix's done, retire)"),
    "MAT_V": (0, "M_MM_V(_RES): dnpu_matrix takes the command in EXEC's cycle; its done (from the handshake, "
                 "mm_v_unit_cycles) retires the instruction"),
    "RD_MAX_OUT": (4, "dnpu_axi_rd MAX_OUT: bursts in flight; a burst slot is busy RL + burst + 1 cycles"),
}
_K = {k: v for k, (v, _) in CONSTANTS.items()}

# Opcode -> phase of the paper's breakdown, plus the matrix unit's.
_PHASE_OF_CLASS = {"control": "control", "scalar_int": "scalar", "scalar_fp": "scalar", "vector": "vector",
                   "memory": "memory", "matrix": "matrix"}


# ---- the machine a profile describes ----------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Machine:
    """The timing parameters of one profile (and memory-port variant)."""
    name: str
    vlen: int
    lanes: int
    beat_bytes: int
    fetch_words: int
    read_latency: int
    write_latency: int
    bytes_per_cycle: int
    max_burst: int
    mx_block: int
    f_clk_mhz: float
    matrix_rows: int = 0
    port: str = "rtl"
    fetch_lines: int = 4          # FETCH_LINES of hw/rtl/ctrl/dnpu_fetch.v (a localparam): direct-mapped line buffers
    config: Config | None = dataclasses.field(default=None, compare=False, repr=False)  # what program() runs on

    @property
    def C(self) -> int:
        return self.vlen // self.lanes

    @property
    def log2C(self) -> int:
        return self.C.bit_length() - 1

    @property
    def line_bytes(self) -> int:
        return 4 * self.fetch_words

    @property
    def line_beats(self) -> int:
        return max(1, self.line_bytes // self.beat_bytes)

    @property
    def beat_period(self) -> int:
        """Cycles between R beats of the DRAM model: its credit gains bytes_per_cycle a cycle but
        banks at most one beat (cosim/dram.h), so a beat every ceil(beat_bytes / bytes_per_cycle)."""
        return -(-self.beat_bytes // self.bytes_per_cycle)

    @property
    def inflight_rate(self) -> float:
        """Beats a cycle the read engine sustains on a long stream: RD_MAX_OUT bursts in flight,
        each holding its slot for RL + burst + 1 cycles (dnpu_axi_rd)."""
        burst = min(self.max_burst, 4096 // self.beat_bytes)
        return _K["RD_MAX_OUT"] * burst / (self.read_latency + burst + 1)

    @property
    def beat_rate(self) -> float:
        """Sustained beats a cycle of a long read stream."""
        return min(1.0 / self.beat_period, self.inflight_rate)

    @property
    def read_bpc(self) -> float:
        """Sustained read bytes a cycle of a long stream."""
        if self.port == "ideal":
            return float(self.bytes_per_cycle)
        return self.beat_bytes * self.beat_rate

    @property
    def write_word_rate(self) -> float:
        """32-bit words a cycle into the write engine: one, unless the DRAM's credit is slower."""
        return min(1.0, self.beat_bytes / 4 / self.beat_period) if self.port == "rtl" else 1.0


def machine(cfg: Config | str, port: str = "rtl") -> Machine:
    """The timing parameters of a profile (a Config, a name or a .toml path)."""
    if not isinstance(cfg, Config):
        cfg = config_mod.load(cfg)
    if port not in ("rtl", "ideal"):
        raise ValueError(f"port {port!r}: choose 'rtl' or 'ideal'")
    return Machine(name=cfg.name, vlen=cfg.vector.vlen, lanes=cfg.vector.lanes, beat_bytes=cfg.beat_bytes,
                   fetch_words=cfg.ctrl.fetch_words, read_latency=cfg.memory.read_latency,
                   write_latency=cfg.memory.read_latency, bytes_per_cycle=cfg.memory.bytes_per_cycle,
                   max_burst=cfg.axi.max_burst, mx_block=cfg.mx.block, f_clk_mhz=cfg.clock.f_clk_mhz, port=port,
                   matrix_rows=cfg.matrix.rows, config=cfg)


# ---- MX streams ------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def stream_cycles(m: Machine, fmt: str, rows: int, fused: bool, count: int = 1, matrix: bool = False) -> int:
    """Cycles from the first beat the DRAM could present to the last row delivered (H_PREFETCH_V:
    the dequantizer's last row handshake; H_SAMPLE_FUSED: the vector unit accepting its last row).

    port "rtl": a register-level model of hw/rtl/mx/dnpu_mx_dequant.v (byte buffer of CAP =
    CMAX + beat bytes, s_ready = fill <= CMAX from registers, one 16-byte header or one
    SE-element slice a cycle, D1 and m_data stages), fed by cosim/dram.h's R channel (a credit
    of read_bpc bytes a cycle, one beat a cycle, RVALID held until taken) and drained by
    dnpu_vec's stage B (a row every C cycles) for H_SAMPLE_FUSED, or by the vector SRAM (a row
    a cycle) for H_PREFETCH_V.

    count > 1 (H_SAMPLE_FUSED_N, fused): `count` such streams back to back, to the cycle the
    last position's results are final in dnpu_vec (fn_end). matrix=True (M_MM): `count` weight
    tiles of `rows` rows to dnpu_matrix, which takes a row every cycle; to the last row's
    handshake. The R channel runs on (the
    read engine has the next position's bursts queued); between positions the dequantizer
    turns round (done, a new command, active two cycles after the last row handshake) and
    dnpu_vec takes the next position's first row only after fn_end, C + log2(C) + FN_END
    cycles after the last row's handshake and at least RECI_N cycles after the previous
    fn_end (its reciprocal must be done)."""
    if rows <= 0 or count <= 0:
        return 0
    bits = mx.format_info(fmt).bits
    nbytes = mx.stream_nbytes(rows * m.vlen, fmt, m.mx_block)
    C = m.C if fused else 1
    end_gap = m.C + m.log2C + _K["FN_END"]
    if m.port == "ideal":
        one = max(math.ceil(nbytes / m.bytes_per_cycle), rows * C)
        return one if count == 1 else count * one + (0 if matrix else count * end_gap)

    IB = m.beat_bytes
    GE = mx.group_elements(fmt, m.mx_block)
    SE = min(m.vlen, GE)
    RPS = m.vlen // SE
    SPG = GE // SE
    CMAX = max(SE, 16)
    sb = SE * bits // 8
    total_beats = -(-nbytes // IB)
    total_slices = rows * RPS
    rate = m.bytes_per_cycle
    cap = max(IB, rate)
    credit, rvalid, sent = cap, False, 0              # DRAM R channel
    fill, beats_left, hdr, g = 0, total_beats, True, 0  # dequantizer buffer
    slices_left = total_slices
    pos, dq_on, vec_on, fn_end = 0, 0, 0, -(1 << 30)    # H_SAMPLE_FUSED_N: position, restart cycles
    d1_v = d1_eor = d1_last = False                     # stage D1
    m_v = m_last = False                                # m_data
    b_v, ch = False, 0                                  # dnpu_vec stage B (fused)
    c_last = C - 1
    t = 0
    limit = count * (64 * (total_beats + total_slices + rows * C) + 1000)
    while t < limit:
        # -- combinational, from this cycle's registers
        m_ready = ((not b_v or ch == c_last) and t >= vec_on) if fused else True
        s_go = rvalid and beats_left > 0 and fill <= CMAX and t >= dq_on
        d2_go = (not m_v) or m_ready
        d1_ready = (not d1_v) or d2_go
        working = slices_left > 0
        hdr_go = working and hdr and fill >= 16
        slice_go = working and not hdr and fill >= sb and d1_ready
        row_hs = m_v and m_ready
        if row_hs and m_last:
            if count > 1 and not matrix:
                fn_end = max(t + end_gap, fn_end + _K["RECI_N"])
            pos += 1
            if pos == count:
                break
            # the next position: the dequantizer's new command, dnpu_vec after fn_end
            fill, beats_left, hdr, g, slices_left = 0, total_beats, True, 0, total_slices
            d1_v = m_v = m_last = False
            dq_on, vec_on = t + 2, fn_end + 1
            b_v, ch = True, 0
            credit = min(credit + rate, cap)
            if not rvalid and sent < count * total_beats and credit >= IB:
                rvalid, credit, sent = True, credit - IB, sent + 1
            t += 1
            continue
        # -- registers
        take = 16 if hdr_go else (sb if slice_go else 0)
        last_go = slice_go and slices_left == 1
        fill = 0 if last_go else fill - take + (IB if s_go else 0)
        if s_go:
            beats_left -= 1
        if hdr_go:
            hdr = False
        elif slice_go:
            slices_left -= 1
            if g == SPG - 1:
                g, hdr = 0, True
            else:
                g += 1
        # D1 -> m_data
        if d1_v and d2_go:
            m_v, m_last = d1_eor, d1_last
        elif m_ready:
            m_v = False
        if slice_go:
            d1_v = True
            d1_eor = (total_slices - slices_left) % RPS == 0      # slices_left already decremented
            d1_last = last_go
        elif d2_go:
            d1_v = False
        # vector unit stage B
        if fused:
            if row_hs:
                b_v, ch = True, 0
            elif b_v and ch != c_last:
                ch += 1
            else:
                b_v = False
        # DRAM R channel (cosim/dram.h edge(): the handshake, then credit, then the next beat)
        if s_go:
            rvalid = False
        credit = min(credit + rate, cap)
        if not rvalid and sent < count * total_beats and credit >= IB:
            rvalid, credit, sent = True, credit - IB, sent + 1
        t += 1
    else:
        raise ModelError(f"stream model did not finish ({rows} rows of {fmt} on {m.name}): a bug in the model")
    if count > 1 and not matrix:
        return max(fn_end, math.ceil(count * total_beats / m.inflight_rate))
    return max(t, math.ceil(count * total_beats / m.inflight_rate))


# Up to this many weight rows an M_MM's stream is stepped cycle by cycle; beyond, extrapolated.
MATMUL_EXACT_ROWS = 65536


def matmul_cycles(m: Machine | Config | str, M: int, N: int, K: int, fmt: str = "e4m3", *,
                  f32: bool = False) -> int:
    """Cycles of one M_MM* of shape (M, N, K) whose line is resident: FETCH, EXEC, the first
    read command, the memory's latency, G = ceil(M / matrix.rows) passes over the N / vlen
    weight tiles of K rows each (stream_cycles, a row a cycle at best), then the last
    square's mx.block cycles and the last group's output rows, two cycles each when they
    are written as FP32 rows (`f32`: M_MM_F32, M_MM_ACC_F32). Reading the accumulators
    (M_MM_ACC*) costs nothing more: it hides behind the stream (docs/PERF.md)."""
    if not isinstance(m, Machine):
        m = machine(m)
    if not (M and N and K):
        return _K["FE"]
    if not m.matrix_rows:
        raise ModelError(f"profile {m.name} has no matrix unit")
    G = -(-M // m.matrix_rows)
    last = M - (G - 1) * m.matrix_rows
    count = G * (N // m.vlen)
    if count <= 4 or count * K <= MATMUL_EXACT_ROWS:
        s = stream_cycles(m, fmt, K, False, count, matrix=True)
    else:   # tiles stream back to back in a steady state: the fourth costs what the third did
        # (exact on sim; within a few cycles where the read engine's bursts in flight bind)
        s3, s4 = (stream_cycles(m, fmt, K, False, c, matrix=True) for c in (3, 4))
        s = s4 + (count - 4) * (s4 - s3)
    return (_K["STREAM"] + _K["MAT_START"] + m.read_latency + s + m.mx_block + last * (2 if f32 else 1)
            + _K["MAT_TAIL"])


def mm_v_reads(M: int, N: int, K: int, *, vlen: int, rows: int, block: int, res: bool) -> int:
    """Vector-SRAM reads of one M_MM_V(_RES) on the matrix unit's one read port, but the last
    tile's residual rows: every W column block (max(vlen, block) reads a square, each of the
    G*N/vlen tiles K/block squares), every square's X slices (the group's rows, max(1,
    block/vlen) reads each), the residual rows of every tile but the last."""
    G = -(-M // rows)
    last = M - (G - 1) * rows
    nt, sq = N // vlen, K // block
    w = G * nt * sq * max(vlen, block)
    x = nt * sq * M * max(1, block // vlen)
    r = (M * nt - last) if res else 0
    return w + x + r


def mm_v_unit_cycles(M: int, N: int, K: int, *, vlen: int, rows: int, block: int, res: bool) -> int:
    """dnpu_matrix's done cycle after the handshake for M_MM_V(_RES) (dnpu_matrix.v, "Timing,
    M_MM_V"): the port is busy every cycle until the last W read (mm_v_reads), the last ring
    row arrives the cycle after it, then as M_MM: the last square's block cycles, the last
    tile's m_last rows drained, 3."""
    G = -(-M // rows)
    last = M - (G - 1) * rows
    return mm_v_reads(M, N, K, vlen=vlen, rows=rows, block=block, res=res) + 1 + block + last + 3


def matmul_v_cycles(m: Machine | Config | str, M: int, N: int, K: int, *, res: bool = False) -> int:
    """Cycles of one M_MM_V(_RES) whose line is resident: FETCH + EXEC, then the unit
    (mm_v_unit_cycles from its handshake in the MAT state's first cycle), retire with done."""
    if not isinstance(m, Machine):
        m = machine(m)
    if not (M and N and K):
        return _K["FE"]
    if not m.matrix_rows:
        raise ModelError(f"profile {m.name} has no matrix unit")
    return _K["FE"] + _K["MAT_V"] + mm_v_unit_cycles(M, N, K, vlen=m.vlen, rows=m.matrix_rows,
                                                      block=m.mx_block, res=res)


# ---- per-instruction cycles ---------------------------------------------------------------------------
def _x(x: list, r: int, what: str, name: str) -> int:
    v = x[r]
    if v is None:
        raise ModelError(f"{name}: {what} comes from x{r}, which holds data loaded at run time "
                         f"(S_LD_INT, a reduction's index, ...): the model cannot time it")
    return v


def instr_cycles(m: Machine, name: str, a: dict, x: list, fmt: str | None = None) -> tuple[int, int]:
    """(cycles, of which vector-phase cycles) of one instruction whose fetch line is resident:
    FETCH + EXEC + the state that finishes it. `a`: the decoded operands by role, `x`: the
    integer registers (None for a data-dependent value). Fetch misses are added by the caller."""
    FE = _K["FE"]
    if name in ("C_HALT", "C_NOP", "C_LOOP", "C_LOOPI", "S_ADDI", "S_LUI", "S_ADD", "S_SUB", "S_MUL",
                "S_MIN", "S_MAX", "S_SLT", "S_SLLI", "S_SRLI", "S_LD_ARG", "S_ST_INT", "S_ST_FP", "S_LI_FP",
                "S_SEL_FP"):
        return FE, 0
    if name in ("S_LD_INT", "S_LD_FP"):
        return FE + _K["LDW"], 0
    if name in ("S_ADD_FP", "S_SUB_FP", "S_MUL_FP", "S_MAX_FP", "S_EXP_FP", "S_LT_FP"):
        return FE + _K["FPU"], 0
    if name == "S_RECI_FP":
        return FE + _K["RECI"], 0
    if name == "S_RSQRT_FP":
        return FE + _K["RSQRT"], 0
    RL, WL = m.read_latency, m.write_latency
    if name not in _PHASE:
        raise ModelError(f"{name}: no timing rule for class {isa.INSTRS[name].cls!r} (add it to dnpu.perf.analytical)")
    if name in ("H_LOAD_INT", "H_LOAD_FP", "H_STORE_INT", "H_STORE_FP", "H_LOAD_V"):
        n = _x(x, a["n"], "the row count" if name == "H_LOAD_V" else "the word count", name)
        if n == 0:
            return FE, 0
        if name.startswith("H_LOAD"):
            words = n * m.vlen // 2 if name == "H_LOAD_V" else n
            lane0 = (_x(x, a["addr"], "the address", name) % m.beat_bytes) // 4
            beats = -(-(lane0 + words) // (m.beat_bytes // 4))
            return _K["LOAD"] + RL + max(words, beats * m.beat_period), 0
        words = (x[a["addr"]] or 0) % m.beat_bytes // 4 + n           # from the first beat's lane 0
        return _K["STORE"] + WL + math.ceil(n / m.write_word_rate) + _one_beat_burst(m, words), 0
    if name == "H_STORE_V":
        n = _x(x, a["n"], "the row count", name)
        if n == 0:
            return FE, 0
        return _K["STORE"] + WL + math.ceil(n * m.vlen // 2 / m.write_word_rate), 0
    if name == "H_SAMPLE_FUSED_N":
        n = _x(x, a["n"], "the row count", name)
        count = _x(x, a["count"], "the position count", name)
        if n == 0 or count == 0:
            return FE, 0
        if count == 1:
            s = stream_cycles(m, fmt, n, True) + m.C + m.log2C + _K["FN_END"]
        else:
            s = stream_cycles(m, fmt, n, True, count)
        cyc = _K["STREAM"] + _K["FN_START"] + RL + s + _K["FN_TAIL"]
        mem_s = min(s, math.ceil(count * mx.stream_nbytes(n * m.vlen, fmt, m.mx_block) / m.read_bpc))
        return cyc, (s - mem_s) + _K["FN_TAIL"]
    if name in ("H_PREFETCH_V", "H_SAMPLE_FUSED"):
        n = _x(x, a["n"], "the row count", name)
        if n == 0:
            return FE, 0
        fused = name == "H_SAMPLE_FUSED"
        s = stream_cycles(m, fmt, n, fused)
        cyc = _K["STREAM"] + RL + s
        if not fused:
            return cyc, 0
        tail = m.C + m.log2C + _K["FUSED_TAIL"]
        # The part of the stream beyond what the memory needs is the vector unit's.
        mem_s = min(s, math.ceil(mx.stream_nbytes(n * m.vlen, fmt, m.mx_block) / m.read_bpc))
        return cyc + tail, (s - mem_s) + tail
    # dnpu_vec instructions
    if name == "V_TRANS":                  # no count: always one VLEN x VLEN block
        c = _K["THRESH"] + m.vlen * m.vlen
        return c, c
    if name == "S_MAP_V_FP":
        n = _x(x, a["n"], "the element count", name)
        return (FE, FE) if n == 0 else (_K["MAP"] + -(-n // m.vlen) * m.vlen,) * 2
    n = _x(x, a["n"], "the count", name)
    if n == 0:
        return FE, FE
    C = m.C
    if name in ("V_ADD_VF", "V_SUB_VF", "V_MUL_VF", "V_EXP_V"):
        c = _K["VEC"] + n * (C + _K["EW_VF"])
    elif name in ("V_ADD_VV", "V_SUB_VV", "V_MUL_VV"):
        c = _K["VEC"] + n * (C + _K["EW_VV"])
    elif name == "V_RECI_V":
        c = _K["VEC"] + n * (_K["RECI_CHUNK"] * C + _K["EW_VF"])
    elif name == "V_FILL_VF":
        c = _K["VEC"] + n
    elif name in ("V_RED_MAX", "V_RED_MAX_IDX"):
        c = _K["RED_MAX"] + n
    elif name == "V_RED_SUM":
        c = _K["RED_SUM"] + m.log2C + n * C
    elif name in ("V_THRESH_MASK", "V_MASK_FP"):
        c = _K["THRESH"] + n
    elif name == "V_SELECT_INT":
        c = _K["VEC"] + _K["SELECT"] * n
    elif name in ("V_TOPK_MASK", "V_TOPK_MASK_V"):
        c = _K["TOPK"] + n * (n + 2)
    else:
        raise ModelError(f"{name}: no timing rule (a new instruction? add it to dnpu.perf.analytical)")
    return c, c


def _one_beat_burst(m: Machine, words: int) -> int:
    per_burst = m.max_burst * m.beat_bytes // 4
    return _K["ONE_BEAT_BURST"] if words > 1 and words % per_burst == 1 else 0


def miss_cycles(m: Machine) -> int:
    """Extra cycles of a fetch-line miss: the line's read latency and beats (dnpu_core waits in
    FETCH while dnpu_fetch fills the line)."""
    return m.read_latency + m.line_beats * (m.beat_period if m.port == "rtl" else 1) + _K["MISS"]


# ---- the estimate ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class Estimate:
    """Cycles of one program run as the RTL would count them (RunInfo.cycles)."""
    machine: Machine
    cycles: int
    instret: int
    phases: dict[str, int]            # memory, vector, scalar, control (sum = cycles)
    ops: dict[str, list[int]]         # opcode -> [count, cycles (fetch misses not included)]
    fetch_misses: int
    fetch_cycles: int                 # cycles lost to fetch misses (inside phases["control"])
    what: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.cycles / (self.machine.f_clk_mhz * 1e6)

    def fractions(self) -> dict[str, float]:
        return {k: v / self.cycles for k, v in self.phases.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"profile": self.machine.name, "port": self.machine.port, "cycles": self.cycles,
                "f_clk_mhz": self.machine.f_clk_mhz, "seconds": self.seconds, "instret": self.instret,
                "phases": dict(self.phases), "phase_fractions": {k: round(v, 4) for k, v in self.fractions().items()},
                "fetch_misses": self.fetch_misses, "fetch_cycles": self.fetch_cycles,
                "ops": {k: {"count": c, "cycles": cy} for k, (c, cy) in sorted(self.ops.items())}, **self.what}


# ---- a program: the emulator's execution, costed instruction by instruction -----------------------------
_PHASE = {name: _PHASE_OF_CLASS[ins.cls] for name, ins in isa.INSTRS.items() if ins.cls in _PHASE_OF_CLASS}


def _data_error(name: str, what: str, r: int) -> ModelError:
    return ModelError(f"{name}: {what} comes from x{r}, which holds data loaded at run time "
                      f"(S_LD_INT, a reduction's index, ...): the model cannot time it")


def program(cfg: Config | str | Machine, binary: bytes, args=(), prog_addr: int = HEAP_BASE, *,
            port: str = "rtl", max_instructions: int = 50_000_000) -> Estimate:
    """Cycles of running `binary` at `prog_addr` with ARG0.. = `args` (ints), as
    `Device.run(...).cycles` counts them on the verilator backend.

    The program runs on the emulator without its data path (`dnpu.emu.Emulator(cfg,
    data_path=False)`, every address mapped and reading zero): its decode, hardware loops
    and x registers give the dynamic instruction stream, and each executed instruction is
    costed with its operand values (`instr_cycles`) plus the fetch line misses of its PC.
    The program must halt without a fault; a loop count, transfer count or load address
    computed from data (the emulator's `x_data`) raises ModelError."""
    m = cfg if isinstance(cfg, Machine) else machine(cfg, port)
    if m.config is None:
        raise ValueError(f"machine {m.name}: built without its Config; use analytical.machine(cfg)")
    emu = Emulator(m.config, data_path=False)
    emu.map(0, emu.mem.limit)
    emu.write(prog_addr, binary)
    on_exec, finish = _costing(m, emu, prog_addr, len(binary))
    res = emu.run(prog_addr, args, max_instructions, on_exec=on_exec)
    if res.status == "budget":
        raise ModelError(f"no C_HALT within {max_instructions} instructions")
    if res.status != "halted":
        raise ModelError(f"the program does not halt: {res}")
    return finish(res.instret)


def _costing(m: Machine, emu: Emulator, prog_addr: int, nbytes: int):
    """The emulator's on_exec callback that costs each instruction, and the function that
    sums the costs into an Estimate once the run halted."""
    lb, nl, beat = m.line_bytes, m.fetch_lines, m.beat_bytes
    tags: list = [None] * nl
    misses = 0
    count: dict[int, int] = collections.defaultdict(int)     # pc -> executions
    names: dict[int, str] = {}
    varying: dict[int, list[int]] = {}   # pc -> [cycles, of which vector-phase] of an operand-costed pc
    static: dict[int, tuple] = {}        # pc -> (args, fmt, timing registers, their mask)
    cache: dict[tuple, tuple[int, int]] = {}
    fixed = {name: instr_cycles(m, name, {}, [])[0] for name, ph in _PHASE.items()
             if ph in ("control", "scalar") and name != "S_MAP_V_FP"}
    end = prog_addr + nbytes

    def on_exec(pc: int, name: str, a: dict, x: list) -> None:
        nonlocal misses
        if not prog_addr <= pc < end:
            raise ModelError(f"PC 0x{pc:08X} outside the program ({nbytes // 4} words at 0x{prog_addr:08X})")
        line = pc // lb
        slot = line % nl
        if tags[slot] != line:
            tags[slot] = line
            misses += 1
        count[pc] += 1
        if isa.INSTRS[name].cls == "matrix":       # the shape is the matrix unit's state
            names[pc] = name
            if name == "M_CFG":
                for role in ("m", "n", "k"):
                    if emu.x_data >> a[role] & 1:
                        raise _data_error(name, "the matrix shape", a[role])
                c = _K["FE"]
            elif name in ("M_MM_V", "M_MM_V_RES"):
                key = (emu.mshape, name)
                c = cache.get(key)
                if c is None:
                    c = cache[key] = matmul_v_cycles(m, *emu.mshape, res=name == "M_MM_V_RES")
            else:
                f32 = name in ("M_MM_F32", "M_MM_ACC_F32")
                key = (emu.mshape, a["fmt"], f32)
                c = cache.get(key)
                if c is None:
                    c = cache[key] = matmul_cycles(m, *emu.mshape, isa.MXFMT_NAMES[a["fmt"]], f32=f32)
            v = varying.setdefault(pc, [0, 0])
            v[0] += c
            return
        if name in fixed:
            if name == "C_LOOP" and emu.x_data >> a["rs1"] & 1:
                raise _data_error(name, "the loop count", a["rs1"])
            names[pc] = name
            return
        st = static.get(pc)
        if st is None or st[0] is not a:
            regs = (a.get("n"), a.get("count"), a.get("addr"))
            mask = sum(1 << r for r in regs if r is not None)
            st = static[pc] = (a, isa.MXFMT_NAMES.get(a["fmt"]) if "fmt" in a else None, regs, mask)
            names[pc] = name
        _, fmt, (rn, rc, ra), mask = st
        if emu.x_data & mask:                 # costed without the data values (ModelError if it needs them)
            xd = emu.x_data
            c, vec = instr_cycles(m, name, a, [None if xd >> i & 1 else v for i, v in enumerate(x)], fmt)
        else:
            key = (pc, None if rn is None else x[rn], None if rc is None else x[rc],
                   None if ra is None else x[ra] % beat)
            cv = cache.get(key)
            if cv is None:
                cv = cache[key] = instr_cycles(m, name, a, x, fmt)
            c, vec = cv
        v = varying.get(pc)
        if v is None:
            varying[pc] = [c, vec]
        else:
            v[0] += c
            v[1] += vec

    def finish(instret: int) -> Estimate:
        miss = miss_cycles(m)
        phases = dict.fromkeys(PHASES, 0)
        ops: dict[str, list[int]] = {}
        total = _K["RUN_OVERHEAD"] + misses * miss
        for pc, n in count.items():
            name = names[pc]
            cyc, vec = varying[pc] if pc in varying else (n * fixed[name], 0)
            total += cyc
            phases["vector"] += vec                  # dnpu_vec's share (all of a V_* instruction's)
            phases[_PHASE[name]] += cyc - vec        # the rest: memory for H_*, else the class's
            o = ops.setdefault(name, [0, 0])
            o[0] += n
            o[1] += cyc
        phases["control"] += _K["RUN_OVERHEAD"] + misses * miss
        return Estimate(m, total, instret, phases, ops, misses, misses * miss)

    return on_exec, finish


# ---- the sampling step --------------------------------------------------------------------------------
def pad_vocab(cfg: Config, V: int) -> int:
    """V rounded up to what the compiler accepts (a multiple of VLEN and of the MX block)."""
    q = math.lcm(cfg.vector.vlen, cfg.mx.block)
    return -(-V // q) * q


def _cfg(cfg: Config | str) -> Config:
    return cfg if isinstance(cfg, Config) else config_mod.load(cfg)


def step(cfg: Config | str, B: int, L: int, V: int, mode: str = "topk", flow: str = "fused",
         fmt: str = "e4m3", *, port: str = "rtl", pad: bool = False) -> Estimate:
    """Cycles of one sampling step (`dnpu.compiler.sampling_program`) run as dnpu.sampling.npu runs
    it: the program and its buffers in one allocation at the heap base. pad=True rounds V up to
    a multiple of VLEN and the MX block first (what the compiler requires; the vocabulary is
    padded with logits that never win)."""
    c = _cfg(cfg)
    Vp = pad_vocab(c, V) if pad else V
    try:
        prog = compiler.sampling_program(c, B, L, Vp, mode=mode, flow=flow, fmt=fmt)
    except compiler.CompileError as e:
        raise ModelError(str(e)) from None
    est = program(machine(c, port), prog.binary, prog.args(HEAP_BASE), HEAP_BASE)
    est.what = {"B": B, "L": L, "V": V, "V_padded": Vp, "mode": mode, "flow": flow, "fmt": fmt}
    return est


def bound(cfg: Config | str, B: int, L: int, V: int, fmt: str = "e4m3") -> dict[str, float]:
    """The single-pass bound of a sampling step: every logit through the vector unit once at VLEN
    elements a cycle, or the packed MX logits through memory once at bytes_per_cycle, whichever is
    slower: max(B*L*V/VLEN, bytes/bytes_per_cycle). Also the same with the RTL's one AXI port
    (at most axi.data_width/8 bytes a cycle) as `port_cycles`. A row's bytes are those of V
    rounded up to whole MX blocks."""
    c = _cfg(cfg)
    nbytes = B * L * mx.stream_nbytes(-(-V // c.mx.block) * c.mx.block, fmt, c.mx.block)
    vec = B * L * V / c.vector.vlen
    mem = nbytes / c.memory.bytes_per_cycle
    port = nbytes / min(c.memory.bytes_per_cycle, c.beat_bytes)
    return {"cycles": max(vec, mem), "vector_cycles": vec, "memory_cycles": mem, "bytes": nbytes,
            "port_cycles": max(vec, port)}


def variant(cfg: Config | str, name: str | None = None, **changes: Any) -> Config:
    """A validated in-memory copy of a profile with `changes` as section__key=value
    (e.g. vector__vlen=1024, memory__bytes_per_cycle=256), checked by the same schema
    validators and cross-checks as dnpu.spec.config.load."""
    c = _cfg(cfg)
    sections = {s: dataclasses.asdict(getattr(c, s)) for s in config_mod.SCHEMA}
    for key, v in changes.items():
        s, _, k = key.partition("__")
        if s not in config_mod.SCHEMA or k not in config_mod.SCHEMA[s]:
            raise config_mod.ConfigError(f"variant: unknown setting {key!r} (use section__key)")
        typ, check, _req, _doc = config_mod.SCHEMA[s][k]
        where = f"variant of {c.name}: [{s}] {k}"
        v = config_mod._typed(where, typ, v)
        if check is not None and (why := check(v)) is not None:
            raise config_mod.ConfigError(f"{where} = {v!r}: must be {why}")
        sections[s][k] = v
    if name:
        sections["profile"]["name"] = name
    built = {s: config_mod._SECTION_CLASSES[s](**kv) for s, kv in sections.items()}
    out = Config(path=f"<variant of {c.name}>", **built)
    config_mod._cross_check(out)
    return out
