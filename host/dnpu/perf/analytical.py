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

The parts live by job: `dnpu.perf.machine` (a profile's timing parameters and every
constant, each naming the RTL state machine that produces it and the measurement on the
Verilator co-simulation that confirmed it; docs/PERF.md has the table), `dnpu.perf.stream`
(the MX stream model), `dnpu.perf.matrix_cycles` (the M_MM* formulas); this module costs
instructions and programs and re-exports their names.

Two memory-port variants (`port`):

* ``"rtl"`` (default): the RTL as built: one AXI4 read port of axi.data_width bits, the
  read engine's axi.read_bursts bursts in flight, the dequantizer's one chunk a cycle. On asic-2048 this
  port moves at most 64 bytes a cycle, a sixteenth of its memory.bytes_per_cycle (1024).
* ``"ideal"``: a memory port and MX decoder that keep up with memory.bytes_per_cycle
  (what the asic-2048 profile's HBM figure assumes): a stream of `n` bytes and `r` rows
  takes max(n / bytes_per_cycle, r * (vlen/lanes for H_SAMPLE_FUSED, else 1)) cycles
  after its latency. Used for projections and the design-space sweep.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import numbers
from typing import Any

from dnpu import compiler
from dnpu.emu import Emulator
from dnpu.perf.machine import _K, CONSTANTS, Machine, ModelError, machine, miss_cycles
from dnpu.perf.matrix_cycles import (MATMUL_EXACT_ROWS, matmul_cycles, matmul_v_cycles, mm_unit_tail, mm_v_reads,
                                     mm_v_unit_cycles)
from dnpu.perf.stream import stream_cycles
from dnpu.runtime import HEAP_BASE
from dnpu.spec import isa, mx
from dnpu.spec import config as config_mod
from dnpu.spec.config import Config

__all__ = ["Machine", "Estimate", "ModelError", "machine", "instr_cycles", "stream_cycles", "store_mx_cycles", "program",
           "step", "bound", "check_positive", "PHASES", "CONSTANTS", "pad_vocab", "variant", "miss_cycles",
           "matmul_cycles", "matmul_v_cycles", "mm_unit_tail", "mm_v_reads", "mm_v_unit_cycles",
           "MATMUL_EXACT_ROWS"]

PHASES = ("memory", "vector", "scalar", "control", "matrix")

# Opcode -> phase of the paper's breakdown, plus the matrix unit's.
_PHASE_OF_CLASS = {"control": "control", "scalar_int": "scalar", "scalar_fp": "scalar", "vector": "vector",
                   "memory": "memory", "matrix": "matrix"}


# ---- per-instruction cycles ---------------------------------------------------------------------------
def _x(x: list, r: int, what: str, name: str) -> int:
    v = x[r]
    if v is None:
        raise ModelError(f"{name}: {what} comes from x{r}, which holds data loaded at run time "
                         f"(S_LD_INT, a reduction's index, ...): the model cannot time it")
    return v


def instr_cycles(m: Machine, name: str, a: dict, x: list, fmt: str | None = None) -> tuple[int, int]:
    """(cycles, of which vector-phase cycles) of one instruction whose fetch line is resident:
    FETCH (+ DECODE with m.decode_stage) + EXEC + the state that finishes it. `a`: the decoded
    operands by role, `x`: the integer registers (None for a data-dependent value). Fetch
    misses are added by the caller."""
    c, vec = _instr_cycles(m, name, a, x, fmt)
    # DECODE belongs to the vector phase where all of the instruction does (a V_* instruction)
    return c + m.decode_stage, vec + (m.decode_stage if vec == c else 0)


def _instr_cycles(m: Machine, name: str, a: dict, x: list, fmt: str | None) -> tuple[int, int]:
    FE = _K["FE"]
    if name in ("C_HALT", "C_NOP", "C_LOOP", "C_LOOPI", "S_ADDI", "S_LUI", "S_ADD", "S_SUB", "S_MUL",
                "S_MIN", "S_MAX", "S_SLT", "S_SLLI", "S_SRLI", "S_LD_ARG", "S_ST_INT", "S_ST_FP", "S_LI_FP",
                "S_SEL_FP"):
        return FE, 0
    if name in ("S_LD_INT", "S_LD_FP"):
        return FE + _K["LDW"], 0
    if name in ("S_ADD_FP", "S_SUB_FP", "S_MUL_FP", "S_MAX_FP", "S_EXP_FP", "S_LT_FP"):
        return FE + _K["FPU"] + m.scalar_fp_lat(name), 0
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
            return _K["LOAD"] + m.window_cycle + RL + max(words, beats * m.beat_period), 0
        words = (x[a["addr"]] or 0) % m.beat_bytes // 4 + n           # from the first beat's lane 0
        return _K["STORE"] + m.window_cycle + WL + math.ceil(n / m.write_word_rate) + _one_beat_burst(m, words), 0
    if name == "H_STORE_V":
        n = _x(x, a["n"], "the row count", name)
        if n == 0:
            return FE, 0
        return _K["STORE"] + m.window_cycle + WL + math.ceil(n * m.vlen // 2 / m.write_word_rate), 0
    if name == "H_STORE_MX":
        n = _x(x, a["n"], "the row count", name)
        return (FE, 0) if n == 0 else (store_mx_cycles(m, n, fmt), 0)
    if name == "H_SAMPLE_FUSED_N":
        n = _x(x, a["n"], "the row count", name)
        count = _x(x, a["count"], "the position count", name)
        if n == 0 or count == 0:
            return FE, 0
        if count == 1:
            s = stream_cycles(m, fmt, n, True) + m.sum_tail(True) + _K["FN_END"]
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
        cyc = _K["STREAM"] + m.window_cycle + RL + s
        if not fused:
            return cyc, 0
        tail = m.sum_tail(True) + _K["FUSED_TAIL"]
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
    if name in ("V_ADD_VF", "V_SUB_VF", "V_MUL_VF", "V_EXP_V", "V_INVPOW2_V"):
        c = _K["VEC"] + n * (C + _K["EW_VF"] + m.elementwise_lat(name))
    elif name in ("V_ADD_VV", "V_SUB_VV", "V_MUL_VV", "V_AMAX_VV"):
        c = _K["VEC"] + n * (C + _K["EW_VV"] + m.elementwise_lat(name))
    elif name == "V_RECI_V":
        c = _K["VEC"] + n * (_K["RECI_CHUNK"] * C + _K["EW_VF"] + m.elementwise_lat(name))
    elif name == "V_FILL_VF":
        c = _K["VEC"] + n
    elif name in ("V_RED_MAX", "V_RED_MAX_IDX"):
        c = _K["RED_MAX"] + m.max_tree + n
    elif name == "V_RED_SUM":
        c = _K["RED_SUM"] + (n - 1) * m.sum_row_period(False) + m.sum_tail(False)
    elif name in ("V_THRESH_MASK", "V_MASK_FP"):
        c = _K["THRESH"] + n
    elif name == "V_SELECT_INT":
        c = _K["VEC"] + _K["SELECT"] * n
    elif name in ("V_TOPK_MASK", "V_TOPK_MASK_V"):
        c = _K["TOPK"] + n * (n + 2 + m.result_regs)
    else:
        raise ModelError(f"{name}: no timing rule (a new instruction? add it to dnpu.perf.analytical)")
    return c, c


def store_mx_cycles(m: Machine, n: int, fmt: str) -> int:
    """H_STORE_MX of n rows (dnpu_lsu, dnpu_mx_quant, dnpu_axi_wr): FETCH, EXEC and the
    command, then whichever is slower of the quantizer's output (the first unit's rows fill,
    its pipeline, then one beat a cycle, one cycle lost at every burst boundary), its input
    (a row a cycle, then the last unit's beats) and the write engine's bursts in flight; then
    the last B response. A unit is max(16 blocks, one row)."""
    beat, burst = m.beat_bytes, min(m.max_burst, 4096 // m.beat_bytes)
    B = -(-mx.stream_nbytes(n * m.vlen, fmt, m.mx_block) // beat)
    unit_rows = max(16 * m.mx_block, m.vlen) // m.vlen
    last = n - (n - 1) // unit_rows * unit_rows
    last_beats = -(-mx.stream_nbytes(last * m.vlen, fmt, m.mx_block) // beat)
    out = min(n, unit_rows) + _K["SMX_PIPE"] + B + (-(-B // burst) - 1)
    rows = n + _K["SMX_PIPE"] + last_beats
    inflight = math.ceil(B * (m.write_latency + _K["SMX_BURST_GAP"]) / (_K["WR_MAX_OUT"] * burst))
    return _K["FE"] + m.window_cycle + _K["SMX_CMD"] + max(out, rows, inflight) + m.write_latency


def _one_beat_burst(m: Machine, words: int) -> int:
    per_burst = m.max_burst * m.beat_bytes // 4
    return _K["ONE_BEAT_BURST"] if words > 1 and words % per_burst == 1 else 0


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
    pc_cycles: dict[int, int] = dataclasses.field(default_factory=dict)   # pc -> cycles, when asked

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
            port: str = "rtl", max_instructions: int = 50_000_000, pc_cycles: bool = False) -> Estimate:
    """Cycles of running `binary` at `prog_addr` with ARG0.. = `args` (ints), as
    `Device.run(...).cycles` counts them on the verilator backend.

    The program runs on the emulator without its data path (`dnpu.emu.Emulator(cfg,
    data_path=False)`, every address mapped and reading zero): its decode, hardware loops
    and x registers give the dynamic instruction stream, and each executed instruction is
    costed with its operand values (`instr_cycles`) plus the fetch line misses of its PC.
    The program must halt without a fault; a loop count, transfer count or load address
    computed from data (the emulator's `x_data`) raises ModelError. pc_cycles=True also
    gives each instruction's cycles by PC (`Estimate.pc_cycles`, fetch misses and the
    start/stop overhead not included)."""
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
    return finish(res.instret, pc_cycles)


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
                c = _K["FE"] + m.decode_stage
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
            # The address is left out: a data-dependent one (a gather's row) is costed at the
            # value computed with the data read as zero, see docs/PERF.md "Data-dependent addresses".
            mask = sum(1 << r for r in regs[:2] if r is not None)
            st = static[pc] = (a, isa.MXFMT_NAMES.get(a["fmt"]) if "fmt" in a else None, regs, mask)
            names[pc] = name
        _, fmt, (rn, rc, ra), mask = st
        if emu.x_data & mask:                 # costed without the data values (ModelError if it needs them)
            xd = emu.x_data if ra is None else emu.x_data & ~(1 << ra)
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

    def finish(instret: int, by_pc: bool = False) -> Estimate:
        miss = miss_cycles(m)
        phases = dict.fromkeys(PHASES, 0)
        ops: dict[str, list[int]] = {}
        per_pc: dict[int, int] = {}
        total = _K["RUN_OVERHEAD"] + misses * miss
        for pc, n in count.items():
            name = names[pc]
            cyc, vec = varying[pc] if pc in varying else (n * fixed[name], 0)
            total += cyc
            if by_pc:
                per_pc[pc] = cyc
            phases["vector"] += vec                  # dnpu_vec's share (all of a V_* instruction's)
            phases[_PHASE[name]] += cyc - vec        # the rest: memory for H_*, else the class's
            o = ops.setdefault(name, [0, 0])
            o[0] += n
            o[1] += cyc
        phases["control"] += _K["RUN_OVERHEAD"] + misses * miss
        return Estimate(m, total, instret, phases, ops, misses, misses * miss, pc_cycles=per_pc)

    return on_exec, finish


# ---- the sampling step --------------------------------------------------------------------------------
def pad_vocab(cfg: Config, V: int) -> int:
    """V rounded up to what the compiler accepts (a multiple of VLEN and of the MX block)."""
    q = math.lcm(cfg.vector.vlen, cfg.mx.block)
    return -(-V // q) * q


def _cfg(cfg: Config | str) -> Config:
    return cfg if isinstance(cfg, Config) else config_mod.load(cfg)


def check_positive(**values: Any) -> None:
    """ValueError naming the first value that is not an int >= 1 (a shape of 0 divides by zero
    further on; a negative one gives negative cycles)."""
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must be a positive int; got {v!r}")


def step(cfg: Config | str, B: int, L: int, V: int, mode: str = "topk", flow: str = "fused",
         fmt: str = "e4m3", *, port: str = "rtl", pad: bool = False) -> Estimate:
    """Cycles of one sampling step (`dnpu.compiler.sampling_program`) run as dnpu.sampling.npu runs
    it: the program and its buffers in one allocation at the heap base. pad=True rounds V up to
    a multiple of VLEN and the MX block first (what the compiler requires; the vocabulary is
    padded with logits that never win)."""
    check_positive(B=B, L=L, V=V)
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
    check_positive(B=B, L=L, V=V)
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
