"""The timing parameters of a profile (`Machine`, `machine()`) and the model's constants, each
with the RTL state machine it comes from (docs/PERF.md has the table).

Memory timing is the co-simulation's DRAM model (cosim/dram.h) with the profile's [memory]
section: read_latency cycles from AR to the first R beat, a bandwidth credit of
bytes_per_cycle, at most one beat a cycle; write latency = read latency (the verilator
backend's default). `port` "rtl" is the memory port as built, "ideal" one that keeps up with
memory.bytes_per_cycle (dnpu.perf.analytical's docstring).
"""

from __future__ import annotations

import dataclasses

from dnpu.spec import config as config_mod
from dnpu.spec.config import Config

__all__ = ["ModelError", "CONSTANTS", "Machine", "machine", "miss_cycles"]


class ModelError(ValueError):
    """A program the model cannot time (a data-dependent count, a shape the profile rejects)."""


# ---- constants: every one from the RTL, confirmed by Verilator retire traces ------------------
# name: (value, origin)
CONSTANTS: dict[str, tuple[int, str]] = {
    "RUN_OVERHEAD": (8, "harness run(): START write over AXI4-Lite reaches the core, and the STATUS poll "
                        "sees DONE after C_HALT; measured 8 on sim, pynq-z2, zcu104 (straight-line code)"),
    "FE": (2, "dnpu_core FETCH (line hit) + EXEC: every instruction that retires in EXEC (header 'Cost'); "
              "every instruction's cost has Machine.decode_stage more (DECODE)"),
    "LDW": (1, "S_LD_INT / S_LD_FP: synchronous SRAM read, state LDW"),
    "FPU": (1, "scalar FP arithmetic and S_LT_FP retire in state FPU (pipelined units: scalar_fp_lat more)"),
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
                      "the S3 heap's levels, log2(C) chunk-sum levels, S5, M_DONE: sum_tail(fused) + 4"),
    "FN_START": (1, "H_SAMPLE_FUSED_N issues its first read command in VEC, one cycle after EXEC"),
    "FN_END": (4, "H_SAMPLE_FUSED_N: a position's results are final (fn_end) sum_tail(fused) + 4 cycles "
                  "after its last row's handshake; the next position's rows are taken after it"),
    "RECI_N": (25, "H_SAMPLE_FUSED_N: dnpu_vec's dnpu_fp32_reci: done 25 cycles after fn_end starts it; "
                   "a position's fn_end waits for the previous reciprocal's done"),
    "FN_TAIL": (27, "H_SAMPLE_FUSED_N after the last fn_end: the reciprocal (25), FP write with fn_fin, "
                    "M_DONE, the done pulse: retire 27 cycles after it"),
    "VEC": (4, "dnpu_vec instructions: FETCH + EXEC, then the unit's engine, M_DONE, the done pulse"),
    "EW_VF": (3, "elementwise V*_VF / V_EXP_V / V_INVPOW2_V: M_ERD, M_ELAT, C chunk cycles, the unit's "
                 "latency (M_EDRN, elementwise_lat), M_EWR: C + 3 + latency a row"),
    "RECI_CHUNK": (25, "V_RECI_V: each chunk of LANES elements takes the lanes' iterative reciprocal "
                       "25 cycles (24 quotient bits, rounding + narrowing): 25 C + 3 a row"),
    "EW_VV": (4, "elementwise V*_VV / V_AMAX_VV: M_ERD, M_ERDB, M_ELAT, C chunks, M_EDRN, M_EWR: "
                 "C + 4 + latency a row"),
    "RED_MAX": (5, "V_RED_MAX(_IDX): one row a cycle through the max tree (max_tree cycles deep), + 5"),
    "RED_SUM": (9, "V_RED_SUM: a row every sum_row_period cycles, then the last row's sum_tail: "
                   "9 + (rows - 1) * period + sum_tail"),
    "MAP": (5, "S_MAP_V_FP: word engine over whole rows, rows*VLEN + 1, + 4"),
    "THRESH": (5, "V_THRESH_MASK and V_MASK_FP: n + 1 words, + 4; V_TRANS the same word engine over "
                  "VLEN*VLEN elements"),
    "SELECT": (3, "V_SELECT_INT: 3 cycles an element (mask, source, write), + 4"),
    "TOPK": (4, "V_TOPK_MASK(_V): n*(n+2+result_regs) (M_TKJ + n+1 M_TKI cycles per element j, and "
                 "result_regs' register before the compare), + 4"),
    "ONE_BEAT_BURST": (1, "H_STORE_*: a last AXI burst holding a single word (lane offset + n = "
                          "k*max_burst*words_per_beat + 1) costs one more cycle (dnpu_axi_wr); measured"),
    "MAT_START": (1, "M_MM* issue their first read command in MAT, one cycle after EXEC"),
    "MAT_TAIL": (3, "M_MM*: from the last step's sums in the PEs' shadow registers (2*matrix_slots cycles "
                    "after it, mm_unit_tail) and the last tile's m_last output rows (one a cycle, two with "
                    "FP32 rows out), 3: dnpu_matrix's drain stages, done, retire"),
    "MAT_V": (0, "M_MM_V(_RES): dnpu_matrix takes the command in EXEC's cycle; its done (from the handshake, "
                 "mm_v_unit_cycles) retires the instruction"),
    "SMX_CMD": (4, "H_STORE_MX: EXEC's checks, the commands to dnpu_axi_wr and dnpu_mx_quant, the first row read "
                   "and the last beat's strobes; measured"),
    "SMX_PIPE": (8, "H_STORE_MX: dnpu_mx_quant's scale and drain pipeline from a unit's last row to its "
                    "first beat, and the write engine's W pipeline; measured"),
    "SMX_BURST_GAP": (18, "H_STORE_MX: cycles a write burst holds its slot beyond the write latency; measured"),
    "WR_MAX_OUT": (4, "dnpu_axi_wr MAX_OUT: write bursts in flight"),
}
_K = {k: v for k, (v, _) in CONSTANTS.items()}


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
    read_bursts: int              # [axi] read_bursts: dnpu_axi_rd's bursts in flight, a slot busy RL + burst + 1
    f_clk_mhz: float
    matrix_rows: int = 0
    matrix_slots: int = 1         # rows a matrix PE interleaves (= add_stages: its adder's stages)
    matrix_wbuf: int = 2          # [matrix] weight_buffers: the square ring
    port: str = "rtl"
    fetch_lines: int = 4          # FETCH_LINES of hw/rtl/ctrl/dnpu_fetch.v (a localparam): direct-mapped line buffers
    add_stages: int = 1           # [pipeline] add/mul/exp_stages: the vector unit's FP units take
    mul_stages: int = 1           # stages - 1 cycles more than a single-cycle unit (dnpu_vec)
    exp_stages: int = 1
    decode_stage: int = 0         # [pipeline] decode_stage: dnpu_core's DECODE, a cycle more per instruction
    window_cycle: int = 0         # with DECODE, an instruction's access waits a second EXEC cycle for its
                                  # registered window check (dnpu_lsu): H_LOAD/STORE_*, H_*_V, H_STORE_MX,
                                  # H_PREFETCH_V, H_SAMPLE_FUSED, M_MM* but M_MM_V*
    max_tree: int = 0             # [pipeline] max_tree_stages: cycles a row spends in dnpu_vec's maximum tree
    result_regs: int = 0          # [pipeline] result_regs: registers after the FP units' results (dnpu_vec, dnpu_fpu)
    config: Config | None = dataclasses.field(default=None, compare=False, repr=False)  # what program() runs on

    @property
    def C(self) -> int:
        return self.vlen // self.lanes

    @property
    def log2C(self) -> int:
        return self.C.bit_length() - 1

    @property
    def add_lat(self) -> int:
        """Cycles an FP32 adder of the vector unit adds to a path (dnpu_vec's LA)."""
        return self.add_stages - 1

    @property
    def mul_lat(self) -> int:
        return self.mul_stages - 1

    @property
    def exp_lat(self) -> int:
        return self.exp_stages - 1

    @property
    def heap_delay(self) -> int:
        """Cycles dnpu_vec's S3 heap adds to the row pipeline (its HDL): the lanes' sums meet in
        a heap of min(lanes, 8) group sums (GROUPS; lanes with pipelined adders, one lane a
        group); with single-cycle adders one level a cycle beyond the first, log2(GROUPS) - 1
        (0 for two groups or fewer); each level takes add_lat cycles more, the first included
        (none for one group: no adder)."""
        groups = self.lanes if self.add_stages > 1 else min(self.lanes, 8)
        if groups == 1:
            return 0
        return max(groups.bit_length() - 2, 0) * self.add_stages + self.add_lat

    @property
    def chunk_delay(self) -> int:
        """Cycles of dnpu_vec's log2(C) chunk-combination levels: one each, plus add_lat."""
        return self.log2C * self.add_stages

    def sum_row_period(self, fused: bool) -> int:
        """Cycles between rows dnpu_vec's summing pipeline takes (its RPF / RPS): C, or S5's
        recurrence when longer: s*r then + the row sum, the sum forwarded into the next
        product (fused), or the add alone, through s_acc (V_RED_SUM)."""
        if fused:        # result_regs: the product registered, the sum taken from s_acc (no forwarding)
            return max(self.C, self.mul_lat + self.add_lat + 2 * self.result_regs, 1)
        return max(self.C, self.add_lat + 1)

    def sum_tail(self, fused: bool) -> int:
        """Cycles from the last row's being taken to its s in S5, beyond the fixed per-state
        cycles (FUSED_TAIL, FN_END, RED_SUM): the maximum tree, its C chunk cycles, the heap, the chunk
        levels, and the FP units' latencies on the way (fused: S1's adder, S2's EXP, S5's
        multiplier and adder; V_RED_SUM: S5's adder)."""
        lat = (self.add_lat + self.exp_lat + self.mul_lat + self.result_regs + self.add_lat) if fused else self.add_lat
        return self.max_tree + self.C + self.heap_delay + self.chunk_delay + lat

    def scalar_fp_lat(self, name: str) -> int:
        """Cycles a scalar FP instruction waits in FPU for its pipelined unit (dnpu_fpu), and
        result_regs' register after it."""
        lat = {"S_ADD_FP": self.add_lat, "S_SUB_FP": self.add_lat, "S_MUL_FP": self.mul_lat,
               "S_EXP_FP": self.exp_lat}.get(name)
        return 0 if lat is None else lat + self.result_regs

    def elementwise_lat(self, name: str) -> int:
        """Cycles an elementwise row waits for its last chunk's result (dnpu_vec M_EDRN): the
        unit's latency, and result_regs' register on the way to the write row."""
        if name in ("V_EXP_V",):
            return self.exp_lat + self.result_regs
        if name in ("V_MUL_VF", "V_MUL_VV"):
            return self.mul_lat + self.result_regs
        if name in ("V_ADD_VF", "V_SUB_VF", "V_ADD_VV", "V_SUB_VV"):
            return self.add_lat + self.result_regs
        if name == "V_RECI_V":
            return self.result_regs
        return 0

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
        """Beats a cycle the read engine sustains on a long stream: read_bursts bursts in flight,
        each holding its slot for RL + burst + 1 cycles (dnpu_axi_rd)."""
        burst = min(self.max_burst, 4096 // self.beat_bytes)
        return self.read_bursts * burst / (self.read_latency + burst + 1)

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
                   max_burst=cfg.axi.max_burst, read_bursts=cfg.axi.read_bursts, mx_block=cfg.mx.block,
                   f_clk_mhz=cfg.clock.f_clk_mhz, port=port,
                   matrix_rows=cfg.matrix.rows, matrix_slots=cfg.matrix_slots,
                   matrix_wbuf=cfg.matrix.weight_buffers, add_stages=cfg.pipeline.add_stages,
                   mul_stages=cfg.pipeline.mul_stages, exp_stages=cfg.pipeline.exp_stages,
                   decode_stage=cfg.pipeline.decode_stage, window_cycle=cfg.pipeline.decode_stage,
                   max_tree=cfg.pipeline.max_tree_stages,
                   result_regs=cfg.pipeline.result_regs, config=cfg)


def miss_cycles(m: Machine) -> int:
    """Extra cycles of a fetch-line miss: the line's read latency and beats (dnpu_core waits in
    FETCH while dnpu_fetch fills the line)."""
    return m.read_latency + m.line_beats * (m.beat_period if m.port == "rtl" else 1) + _K["MISS"]
