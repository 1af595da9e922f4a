"""Functional emulator: the bit-exact golden model of the dnpu NPU.

It executes the same binary programs the RTL executes: 32-bit little-endian words fetched
from modelled external memory at PROG_BASE, decoded by `dnpu.spec.isa.decode`, with every
arithmetic step from `dnpu.spec.numerics` (docs/NUMERICS.md) and the execution model of
docs/EXECUTION.md (hardware loops, faults, memory).  Vector and memory instructions are
vectorised with NumPy.

    emu = Emulator(dnpu.spec.config.load("sim"))
    emu.map(0x1000, 4096)                    # a region of modelled DRAM (zero-filled)
    emu.write(0x1000, dnpu.spec.isa.assemble(src))
    res = emu.run(0x1000, args=[...], max_instructions=100_000, trace=True)
    res.status, res.cause, res.pc, emu.x[5], emu.fpsram[:4], emu.read(0x1800, 64)

A program never raises out of `run`: faults come back in the RunResult (status "fault",
cause a `dnpu.spec.csr.ErrCause`, pc the faulting instruction's address).  Misuse of the host
API (writing unmapped memory, bad arguments) raises EmuError.
"""

from __future__ import annotations

import bisect
import dataclasses
import traceback
from typing import Callable, NamedTuple

import numpy as np

from dnpu.spec import csr, isa, mx
from dnpu.spec import numerics as nm
from dnpu.spec.config import Config
from dnpu.spec.csr import ErrCause

__all__ = ["Emulator", "RunResult", "TraceEntry", "Memory", "EmuError", "HANDLERS"]

_M32 = 0xFFFFFFFF
_STATUS_BUSY = csr.mask("STATUS", "BUSY")
_STATUS_DONE = csr.mask("STATUS", "DONE")
_STATUS_ERROR = csr.mask("STATUS", "ERROR")


class EmuError(ValueError):
    """Host-side misuse of the emulator API (not an NPU fault)."""


class _Fault(Exception):
    def __init__(self, cause: ErrCause, msg: str) -> None:
        super().__init__(msg)
        self.cause = cause
        self.msg = msg


def _s32(v: int) -> int:
    return v - (1 << 32) if v & 0x80000000 else v


# ------------------------------------------------------------------------------------------------
# modelled external memory

class Memory:
    """Sparse little-endian byte store behind the AXI4 master.  Only mapped regions exist:
    an NPU read of an unmapped byte is an AXI read error (DECERR), a write an AXI write
    error.  Mapped bytes start as zero."""

    PAGE_BITS = 16
    PAGE = 1 << PAGE_BITS

    def __init__(self, addr_bits: int = 32) -> None:
        self.limit = 1 << addr_bits
        self._pages: dict[int, np.ndarray] = {}
        self._starts: list[int] = []      # sorted, merged, disjoint [start, end) regions
        self._ends: list[int] = []

    # regions -----------------------------------------------------------------------------
    def map(self, addr: int, nbytes: int) -> None:
        addr, nbytes = int(addr), int(nbytes)
        if addr < 0 or nbytes < 0 or addr + nbytes > self.limit:
            raise EmuError(f"map(0x{addr:X}, {nbytes}): outside the {self.limit.bit_length() - 1}-bit "
                           f"address space")
        if nbytes == 0:
            return
        start, end = addr, addr + nbytes
        i = bisect.bisect_left(self._ends, start)       # first region ending at/after start
        j = bisect.bisect_right(self._starts, end)      # regions starting at/before end
        if i < j:
            start = min(start, self._starts[i])
            end = max(end, self._ends[j - 1])
        self._starts[i:j] = [start]
        self._ends[i:j] = [end]

    def regions(self) -> list[tuple[int, int]]:
        """Mapped regions as (start, nbytes)."""
        return [(s, e - s) for s, e in zip(self._starts, self._ends)]

    def is_mapped(self, addr: int, nbytes: int) -> bool:
        if nbytes <= 0:
            return True
        i = bisect.bisect_right(self._starts, addr) - 1
        return i >= 0 and addr + nbytes <= self._ends[i]

    def first_unmapped(self, addr: int, nbytes: int) -> int:
        """The first unmapped byte address in [addr, addr + nbytes) (assumes one exists)."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and addr < self._ends[i]:
            return self._ends[i]
        return addr

    # raw access (no checks) ----------------------------------------------------------------
    def load(self, addr: int, n: int) -> np.ndarray:
        out = np.zeros(n, np.uint8)
        pos = 0
        while pos < n:
            a = addr + pos
            p, off = a >> self.PAGE_BITS, a & (self.PAGE - 1)
            k = min(n - pos, self.PAGE - off)
            page = self._pages.get(p)
            if page is not None:
                out[pos:pos + k] = page[off:off + k]
            pos += k
        return out

    def store(self, addr: int, data) -> None:
        src = np.frombuffer(bytes(data), np.uint8) if not isinstance(data, np.ndarray) else \
            np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        n = src.size
        pos = 0
        while pos < n:
            a = addr + pos
            p, off = a >> self.PAGE_BITS, a & (self.PAGE - 1)
            k = min(n - pos, self.PAGE - off)
            page = self._pages.get(p)
            if page is None:
                page = self._pages[p] = np.zeros(self.PAGE, np.uint8)
            page[off:off + k] = src[pos:pos + k]
            pos += k

    def word(self, addr: int) -> int:
        page = self._pages.get(addr >> self.PAGE_BITS)
        if page is None:
            return 0
        off = addr & (self.PAGE - 1)
        if off <= self.PAGE - 4:
            return int(page[off:off + 4].view("<u4")[0])
        return int(self.load(addr, 4).view("<u4")[0])


# ------------------------------------------------------------------------------------------------
# results

class TraceEntry(NamedTuple):
    """One retired instruction: its address, word, assembly text and what it wrote:
    {"x5": value, "f1": bits, "V": (row, nrows), "FP": (word, n), "INT": (word, n),
    "M": (byte address, nbytes)}."""
    pc: int
    word: int
    text: str
    writes: dict


@dataclasses.dataclass
class RunResult:
    """How a run ended.  status: "halted" (C_HALT retired), "fault" (cause, pc = the faulting
    instruction), "budget" (max_instructions retired without halting; pc = the next
    instruction) or "internal" (an emulator bug; message has the traceback)."""
    status: str
    cause: ErrCause
    pc: int
    instret: int
    class_counts: dict[str, int]
    op_counts: dict[str, int]
    bytes_read: int            # data bytes read over AXI (prefetch, loads, fused sampling)
    bytes_written: int         # data bytes written over AXI (stores)
    fetch_bytes: int           # instruction bytes fetched (4 per fetched word)
    message: str = ""
    trace: list[TraceEntry] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "halted"

    @property
    def err_pc(self) -> int:
        return self.pc if self.status == "fault" else 0

    def __str__(self) -> str:
        head = f"{self.status} at pc 0x{self.pc:08X}"
        if self.status == "fault":
            head += f": {csr.describe_error(int(self.cause))}"
        if self.message:
            head += f" ({self.message})"
        return (f"{head}; {self.instret} instructions retired, {self.bytes_read} bytes read, "
                f"{self.bytes_written} bytes written")


# ------------------------------------------------------------------------------------------------
# the emulator

HANDLERS: dict[str, str] = {}


def _op(name: str) -> Callable:
    def deco(fn: Callable) -> Callable:
        if name in HANDLERS:
            raise RuntimeError(f"two emulator handlers for {name}")
        HANDLERS[name] = fn.__name__
        return fn
    return deco


class Emulator:
    """The NPU as a Python object.  See the module docstring and docs/EXECUTION.md."""

    def __init__(self, config: Config | str = "sim") -> None:
        if isinstance(config, str):
            from dnpu.spec import config as config_mod
            config = config_mod.load(config)
        self.config = config
        self.vlen = config.vector.vlen
        self.vector_rows = config.sram.vector_rows
        self.fp_words = config.sram.fp_words
        self.int_words = config.sram.int_words
        self.loop_depth = config.ctrl.loop_depth
        self.block = config.mx.block
        self.formats = tuple(config.mx.formats)
        self.mem = Memory(config.axi.addr_width)
        self._vsram = np.zeros((self.vector_rows, self.vlen), np.uint16)
        self._fpsram = np.zeros(self.fp_words, np.uint32)
        self._intsram = np.zeros(self.int_words, np.uint32)
        self._x = [0] * isa.NREGS_X
        self._f = [0] * isa.NREGS_F
        self.prog_base = 0
        self.args = [0] * 8
        self.status = 0
        self.err_cause = ErrCause.NONE
        self.err_pc = 0
        self.pc = 0
        self.instret = 0                 # cumulative, like the INSTRET counter
        self.total_bytes_read = 0
        self.total_bytes_written = 0
        self._loops: list[list[int]] = []   # [start_pc, end_pc, remaining]
        self._decoded: dict[int, tuple] = {}
        self._fetch: dict[int, int] = {}     # pc -> word, cleared by every memory write
        self._jump: int | None = None        # next pc set by a loop instruction
        self._retired = 0
        self._stats = self._new_stats()
        self._trace: list[TraceEntry] | None = None
        self._bound = {name: getattr(self, meth) for name, meth in HANDLERS.items()}

    # ---- host access ----------------------------------------------------------------------
    @property
    def x(self) -> np.ndarray:
        """x0..x15 (uint32, a read-only copy)."""
        a = np.array(self._x, np.uint32)
        a.flags.writeable = False
        return a

    @property
    def f(self) -> np.ndarray:
        """f0..f7 as FP32 bits (uint32, a read-only copy); `f_values` gives float32."""
        a = np.array(self._f, np.uint32)
        a.flags.writeable = False
        return a

    @property
    def f_values(self) -> np.ndarray:
        return self.f.view(np.float32)

    @property
    def vsram(self) -> np.ndarray:
        """Vector SRAM, uint16 BF16 bits [vector_rows, vlen] (the live array)."""
        return self._vsram

    @property
    def fpsram(self) -> np.ndarray:
        """FP SRAM, uint32 FP32 bits [fp_words] (the live array)."""
        return self._fpsram

    @property
    def intsram(self) -> np.ndarray:
        """Int SRAM, uint32 [int_words] (the live array; .view(np.int32) for signed)."""
        return self._intsram

    def set_x(self, i: int, value: int) -> None:
        if i:
            self._x[i] = int(value) & _M32

    def set_f(self, i: int, bits: int) -> None:
        self._f[i] = int(bits) & _M32

    def map(self, addr: int, nbytes: int) -> None:
        """Declare [addr, addr + nbytes) as memory (zero-filled where not yet written)."""
        self.mem.map(addr, nbytes)

    def write(self, addr: int, data, auto_map: bool = False) -> None:
        """Host write into mapped memory (auto_map=True maps the range first)."""
        data = bytes(data) if not isinstance(data, np.ndarray) else data.tobytes()
        if auto_map:
            self.mem.map(addr, len(data))
        if not self.mem.is_mapped(addr, len(data)):
            raise EmuError(f"write(0x{addr:X}, {len(data)} bytes): not all mapped; "
                           f"map() the region first (mapped: {self._regions_text()})")
        self.mem.store(addr, data)
        self._fetch.clear()

    def read(self, addr: int, n: int) -> bytes:
        """Host read of mapped memory."""
        if not self.mem.is_mapped(addr, n):
            raise EmuError(f"read(0x{addr:X}, {n}): not all mapped (mapped: {self._regions_text()})")
        return self.mem.load(addr, n).tobytes()

    def _regions_text(self) -> str:
        r = self.mem.regions()
        return ", ".join(f"0x{s:X}+{n}" for s, n in r[:6]) + (" ..." if len(r) > 6 else "") or "none"

    def soft_reset(self) -> None:
        """CTRL.SOFT_RESET: clear status, error, PC, registers and the loop stack (SRAMs,
        memory, counters and argument registers are kept)."""
        self._x = [0] * isa.NREGS_X
        self._f = [0] * isa.NREGS_F
        self._loops = []
        self.status = 0
        self.err_cause = ErrCause.NONE
        self.err_pc = 0
        self.pc = 0

    def read_csr(self, name: str) -> int:
        """The value a CSR word would read (counters the emulator does not model read 0)."""
        key = name.upper()
        fixed = {"ID": csr.ID_MAGIC, "ISA_VERSION": isa.VERSION_WORD,
                 "CONFIG_HASH": self.config.config_hash32, "STATUS": self.status,
                 "ERR_CAUSE": int(self.err_cause), "ERR_PC": self.err_pc, "PC": self.pc,
                 "PROG_BASE": self.prog_base, "INSTRET": self.instret & _M32,
                 "INSTRET_LO": self.instret & _M32, "INSTRET_HI": self.instret >> 32}
        if key in fixed:
            return fixed[key]
        if key.startswith("ARG") and key[3:].isdigit() and int(key[3:]) < 8:
            return self.args[int(key[3:])]
        csr.offset(key)                  # KeyError for a name that is no CSR
        return 0

    # ---- running -------------------------------------------------------------------------
    def run(self, prog_base: int | None = None, args=(), max_instructions: int = 10_000_000,
            trace: bool = False) -> RunResult:
        """CTRL.START: run from PROG_BASE until C_HALT, a fault, or max_instructions retired.
        args sets ARG0.. (the others keep their values).  Registers and SRAMs keep their
        values from earlier runs, as on the NPU."""
        if prog_base is not None:
            self.prog_base = int(prog_base) & _M32
        if len(args) > 8:
            raise EmuError(f"{len(args)} arguments: there are 8 argument registers")
        for k, v in enumerate(args):
            self.args[k] = int(v) & _M32
        self._loops = []
        self.status = _STATUS_BUSY
        self.err_cause = ErrCause.NONE
        self.err_pc = 0
        self.pc = self.prog_base
        self._stats = self._new_stats()
        self._trace = [] if trace else None
        return self._go(max_instructions)

    def resume(self, max_instructions: int = 10_000_000) -> RunResult:
        """Continue a run that stopped on its instruction budget (status "budget"), with its
        PC and loop stack; counts and trace in the result cover this call only."""
        if self.status != _STATUS_BUSY:
            raise EmuError("resume: no run stopped on its budget (STATUS is not BUSY)")
        self._stats = self._new_stats()
        if self._trace is not None:
            self._trace = []
        return self._go(max_instructions)

    @staticmethod
    def _new_stats() -> dict:
        return {"classes": dict.fromkeys(isa.CLASSES, 0), "ops": {}, "rd": 0, "wr": 0, "fetch": 0}

    def _go(self, max_instructions: int) -> RunResult:
        self._retired = 0
        self._jump = None
        try:
            status, cause, msg, retired = self._loop(int(max_instructions))
        except Exception:  # an emulator bug, never a program's fault
            status, cause, msg = "internal", ErrCause.NONE, traceback.format_exc()
            retired = self._retired
        st = self._stats
        if status == "halted":
            self.status = _STATUS_DONE
        elif status == "fault":
            self.status = _STATUS_ERROR
            self.err_cause, self.err_pc = cause, self.pc
        elif status == "budget":
            self.status = _STATUS_BUSY       # the program has not finished
        else:
            self.status = 0
        self.total_bytes_read += st["rd"]
        self.total_bytes_written += st["wr"]
        return RunResult(status=status, cause=cause, pc=self.pc, instret=retired,
                         class_counts=st["classes"], op_counts=st["ops"], bytes_read=st["rd"],
                         bytes_written=st["wr"], fetch_bytes=st["fetch"], message=msg,
                         trace=self._trace)

    def _loop(self, budget: int) -> tuple[str, ErrCause, str, int]:
        mem = self.mem
        stats = self._stats
        classes, ops = stats["classes"], stats["ops"]
        decoded = self._decoded
        tr = self._trace
        fetch = self._fetch
        while self._retired < budget:
            pc = self.pc
            word = fetch.get(pc)
            if word is None:
                if pc & 3:
                    return "fault", ErrCause.MISALIGNED, f"instruction fetch at 0x{pc:08X} is not " \
                                                         f"4-byte aligned", self._retired
                if not mem.is_mapped(pc, 4):
                    return "fault", ErrCause.AXI_READ, f"instruction fetch from unmapped 0x{pc:08X}", \
                        self._retired
                word = fetch[pc] = mem.word(pc)
            stats["fetch"] += 4
            d = decoded.get(word)
            if d is None:
                try:
                    dec = isa.decode(word)
                except isa.DisasmError as e:
                    return "fault", ErrCause.ILLEGAL_INSTR, str(e), self._retired
                ins = dec.instr
                d = decoded[word] = (self._bound[dec.name], dec.args, ins.name, ins.cls, dec)
            handler, a, name, cls, dec = d
            try:
                writes = handler(a)
            except _Fault as f:
                return "fault", f.cause, f"{dec.text()}: {f.msg}", self._retired
            self._retired += 1
            self.instret += 1
            classes[cls] += 1
            ops[name] = ops.get(name, 0) + 1
            if tr is not None:
                tr.append(TraceEntry(pc, word, dec.text(), writes or {}))
            if name == "C_HALT":
                return "halted", ErrCause.NONE, "", self._retired
            if self._jump is None:
                self.pc = self._next_after(pc)
            else:                                # a loop instruction chose the next pc
                self.pc, self._jump = self._jump, None
        return "budget", ErrCause.NONE, f"{budget} instructions retired without C_HALT", self._retired

    def _next_after(self, end_pc: int) -> int:
        """The next PC once the instruction at end_pc retired (or a count-0 loop skipped a
        body ending there): close every loop ending at end_pc, innermost first."""
        st = self._loops
        while st and st[-1][1] == end_pc:
            top = st[-1]
            top[2] -= 1
            if top[2] > 0:
                return top[0]
            st.pop()
        return (end_pc + 4) & _M32

    # ---- checks --------------------------------------------------------------------------
    def _sram(self, what: str, base: int, n: int, depth: int) -> None:
        if base + n > depth:
            unit = "rows" if what == "vector" else "words"
            raise _Fault(ErrCause.SRAM_RANGE, f"{what} SRAM {unit} [{base}, {base + n}) outside "
                                              f"0..{depth - 1}")

    def _aligned(self, addr: int, k: int) -> None:
        if addr % k:
            raise _Fault(ErrCause.MISALIGNED, f"address 0x{addr:08X} is not {k}-byte aligned")

    def _rd(self, addr: int, n: int) -> np.ndarray:
        if not self.mem.is_mapped(addr, n):
            bad = self.mem.first_unmapped(addr, n)
            raise _Fault(ErrCause.AXI_READ, f"read of [0x{addr:08X}, +{n}) hits unmapped 0x{bad:08X}")
        self._stats["rd"] += n
        return self.mem.load(addr, n)

    def _wr_check(self, addr: int, n: int) -> None:
        if not self.mem.is_mapped(addr, n):
            bad = self.mem.first_unmapped(addr, n)
            raise _Fault(ErrCause.AXI_WRITE, f"write of [0x{addr:08X}, +{n}) hits unmapped 0x{bad:08X}")

    def _wr(self, addr: int, data: np.ndarray) -> None:
        self.mem.store(addr, data)
        self._stats["wr"] += data.nbytes
        self._fetch.clear()

    def _fmt(self, code: int) -> str:
        name = isa.MXFMT_NAMES[code]
        if name not in self.formats:
            raise _Fault(ErrCause.ILLEGAL_INSTR, f"MX format {name} is not decoded by profile "
                                                 f"{self.config.name} (formats: {', '.join(self.formats)})")
        return name

    def _mx_stream(self, addr: int, n: int, fmt: str) -> tuple[int, int]:
        """Checks for an MX stream of n rows at addr: (bytes it occupies, whole-beat span).

        The stream starts at a group; a last partial group is read only as far as its
        blocks go. The hardware reads whole AXI beats, so the span up to the next beat
        boundary must be readable too (its tail is discarded)."""
        self._mx_aligned(addr, n)
        total = n * self.vlen
        blocks = total // self.block
        groups, rest = divmod(blocks, mx.GROUP_BLOCKS)
        gbytes = mx.group_nbytes(fmt, self.block)
        block_bytes = (gbytes - mx.GROUP_BLOCKS) // mx.GROUP_BLOCKS
        nbytes = groups * gbytes + (mx.GROUP_BLOCKS + rest * block_bytes if rest else 0)
        beat = self.config.beat_bytes
        span = -(-(addr + nbytes) // beat) * beat - addr
        if addr + span > self.mem.limit:  # known from the operands alone: before the SRAM range
            raise _Fault(ErrCause.AXI_READ, f"MX stream read of [0x{addr:08X}, +{span}) runs past the "
                                            f"top of the address space")
        return nbytes, span

    def _mx_aligned(self, addr: int, n: int) -> None:
        """MISALIGNED unless an MX stream of n rows may start at addr."""
        align = max(mx.GROUP_BLOCKS, self.config.beat_bytes)  # a group start in byte 0 of a beat
        if addr % align or (n * self.vlen) % self.block:
            raise _Fault(ErrCause.MISALIGNED,
                         f"MX stream at 0x{addr:08X} of {n} rows x {self.vlen}: the address must be "
                         f"{align}-byte aligned (an MX group start at an AXI beat) and n*VLEN a "
                         f"multiple of the MX block ({self.block})")

    def _mx_mapped(self, addr: int, span: int) -> None:
        """The stream's whole beats must be mapped (checked after the SRAM range)."""
        if not self.mem.is_mapped(addr, span):
            bad = self.mem.first_unmapped(addr, span)
            raise _Fault(ErrCause.AXI_READ, f"MX stream read of [0x{addr:08X}, +{span}) (whole beats) "
                                            f"hits unmapped 0x{bad:08X}")

    def _mx_bf16(self, raw: np.ndarray, n: int, fmt: str) -> np.ndarray:
        total = n * self.vlen
        buf = np.zeros(mx.packed_nbytes(total, fmt, self.block), np.uint8)
        buf[:raw.size] = raw
        q = mx.unpack(buf, (total,), fmt, self.block)
        return mx.dequantize_bf16(q).reshape(n, self.vlen)

    # ---- control -------------------------------------------------------------------------
    def _loop_start(self, count: int, length: int) -> None:
        pc = self.pc
        if length == 0:
            raise _Fault(ErrCause.LOOP_OVERFLOW, "loop length 0")
        end = pc + 4 * length
        if self._loops and end > self._loops[-1][1]:
            raise _Fault(ErrCause.LOOP_OVERFLOW, f"loop body ending at 0x{end:08X} extends past the "
                                                 f"enclosing loop's end 0x{self._loops[-1][1]:08X}")
        if count == 0:
            self._jump = self._next_after(end)
            return
        if len(self._loops) >= self.loop_depth:
            raise _Fault(ErrCause.LOOP_OVERFLOW, f"loops nested deeper than ctrl.loop_depth = "
                                                 f"{self.loop_depth}")
        self._loops.append([pc + 4, end, count])
        self._jump = pc + 4

    @_op("C_HALT")
    def _c_halt(self, a):
        return None

    @_op("C_NOP")
    def _c_nop(self, a):
        return None

    @_op("C_LOOP")
    def _c_loop(self, a):
        self._loop_start(self._x[a["rs1"]], a["len"])

    @_op("C_LOOPI")
    def _c_loopi(self, a):
        self._loop_start(a["count"], a["len"])

    # ---- scalar int ----------------------------------------------------------------------
    def _wx(self, rd: int, v: int) -> dict:
        if rd:
            self._x[rd] = v & _M32
            return {f"x{rd}": self._x[rd]}
        return {}

    @_op("S_ADDI")
    def _s_addi(self, a):
        return self._wx(a["rd"], self._x[a["rs1"]] + a["imm"])

    @_op("S_LUI")
    def _s_lui(self, a):
        return self._wx(a["rd"], a["imm"] << 11)

    @_op("S_ADD")
    def _s_add(self, a):
        return self._wx(a["rd"], self._x[a["rs1"]] + self._x[a["rs2"]])

    @_op("S_SUB")
    def _s_sub(self, a):
        return self._wx(a["rd"], self._x[a["rs1"]] - self._x[a["rs2"]])

    @_op("S_MUL")
    def _s_mul(self, a):
        return self._wx(a["rd"], self._x[a["rs1"]] * self._x[a["rs2"]])

    @_op("S_MIN")
    def _s_min(self, a):
        return self._wx(a["rd"], min(_s32(self._x[a["rs1"]]), _s32(self._x[a["rs2"]])))

    @_op("S_MAX")
    def _s_max(self, a):
        return self._wx(a["rd"], max(_s32(self._x[a["rs1"]]), _s32(self._x[a["rs2"]])))

    @_op("S_SLT")
    def _s_slt(self, a):
        return self._wx(a["rd"], int(_s32(self._x[a["rs1"]]) < _s32(self._x[a["rs2"]])))

    @_op("S_SLLI")
    def _s_slli(self, a):
        return self._wx(a["rd"], self._x[a["rs1"]] << a["shamt"])

    @_op("S_SRLI")
    def _s_srli(self, a):
        return self._wx(a["rd"], self._x[a["rs1"]] >> a["shamt"])

    @_op("S_LD_ARG")
    def _s_ld_arg(self, a):
        return self._wx(a["rd"], self.args[a["argi"]])

    @_op("S_LD_INT")
    def _s_ld_int(self, a):
        addr = (self._x[a["rs1"]] + a["imm"]) & _M32
        self._sram("int", addr, 1, self.int_words)
        return self._wx(a["rd"], int(self._intsram[addr]))

    @_op("S_ST_INT")
    def _s_st_int(self, a):
        addr = (self._x[a["rs1"]] + a["imm"]) & _M32
        self._sram("int", addr, 1, self.int_words)
        self._intsram[addr] = self._x[a["rs"]]
        return {"INT": (addr, 1)}

    # ---- scalar FP -----------------------------------------------------------------------
    def _wf(self, rd: int, bits) -> dict:
        self._f[rd] = int(bits) & _M32
        return {f"f{rd}": self._f[rd]}

    def _fv(self, r: int) -> np.ndarray:
        return nm.f32_value(np.uint32(self._f[r]))

    @_op("S_ADD_FP")
    def _s_add_fp(self, a):
        return self._wf(a["rd"], nm.f32_bits(nm.add(self._fv(a["rs1"]), self._fv(a["rs2"]))))

    @_op("S_SUB_FP")
    def _s_sub_fp(self, a):
        return self._wf(a["rd"], nm.f32_bits(nm.sub(self._fv(a["rs1"]), self._fv(a["rs2"]))))

    @_op("S_MUL_FP")
    def _s_mul_fp(self, a):
        return self._wf(a["rd"], nm.f32_bits(nm.mul(self._fv(a["rs1"]), self._fv(a["rs2"]))))

    @_op("S_MAX_FP")
    def _s_max_fp(self, a):
        return self._wf(a["rd"], nm.max_f32(self._f[a["rs1"]], self._f[a["rs2"]]))

    @_op("S_EXP_FP")
    def _s_exp_fp(self, a):
        return self._wf(a["rd"], nm.exp_f32(self._f[a["rs1"]]))

    @_op("S_RECI_FP")
    def _s_reci_fp(self, a):
        return self._wf(a["rd"], nm.reci_f32(self._f[a["rs1"]]))

    @_op("S_LI_FP")
    def _s_li_fp(self, a):
        return self._wf(a["rd"], a["bits"] << 16)

    @_op("S_LD_FP")
    def _s_ld_fp(self, a):
        addr = (self._x[a["rs1"]] + a["imm"]) & _M32
        self._sram("FP", addr, 1, self.fp_words)
        return self._wf(a["rd"], self._fpsram[addr])

    @_op("S_ST_FP")
    def _s_st_fp(self, a):
        addr = (self._x[a["rs1"]] + a["imm"]) & _M32
        self._sram("FP", addr, 1, self.fp_words)
        self._fpsram[addr] = self._f[a["fs"]]
        return {"FP": (addr, 1)}

    @_op("S_LT_FP")
    def _s_lt_fp(self, a):
        return self._wx(a["rd"], int(nm.lt(self._fv(a["rs1"]), self._fv(a["rs2"]))))

    @_op("S_SEL_FP")
    def _s_sel_fp(self, a):
        return self._wf(a["rd"], self._f[a["a"]] if self._x[a["c"]] else self._f[a["b"]])

    @_op("S_MAP_V_FP")
    def _s_map_v_fp(self, a):
        vd, fs, n = self._x[a["vdst"]], self._x[a["fsrc"]], self._x[a["n"]]
        if n == 0:
            return None
        rows = -(-n // self.vlen)
        self._sram("FP", fs, n, self.fp_words)
        self._sram("vector", vd, rows, self.vector_rows)
        out = np.full(rows * self.vlen, nm.BF16_NEG_INF, np.uint16)
        out[:n] = nm.narrow_f32(self._fpsram[fs:fs + n])
        self._vsram[vd:vd + rows] = out.reshape(rows, self.vlen)
        return {"V": (vd, rows)}

    # ---- vector --------------------------------------------------------------------------
    def _vrows(self, base: int, n: int) -> np.ndarray:
        return nm.bf16_value(self._vsram[base:base + n])

    def _rowwise(self, vd: int, srcs: tuple[int, ...], n: int, fn) -> None:
        """V[vd+i] = fn(i0, i1) row by row in increasing i, each row read after the rows
        before it were written (EXECUTION.md): fn(first, count) maps source rows
        [first, first+count) to result bits. Done in one piece unless a destination row
        is a source row of a later i (0 < vd - src < n)."""
        if any(0 < vd - s < n for s in srcs):
            for i in range(n):
                self._vsram[vd + i:vd + i + 1] = fn(i, 1)
        else:
            self._vsram[vd:vd + n] = fn(0, n)

    def _vv(self, a, op) -> dict | None:
        vd, va, vb, n = self._x[a["vd"]], self._x[a["va"]], self._x[a["vb"]], self._x[a["n"]]
        if n == 0:
            return None
        for base in (va, vb, vd):
            self._sram("vector", base, n, self.vector_rows)
        self._rowwise(vd, (va, vb), n, lambda i, c: nm.bf16_bits(
            op(self._vrows(va + i, c), self._vrows(vb + i, c), "bf16")))
        return {"V": (vd, n)}

    def _vf(self, a, op) -> dict | None:
        vd, va, n = self._x[a["vd"]], self._x[a["va"]], self._x[a["n"]]
        if n == 0:
            return None
        for base in (va, vd):
            self._sram("vector", base, n, self.vector_rows)
        s = self._fv(a["s"])
        self._rowwise(vd, (va,), n, lambda i, c: nm.bf16_bits(op(self._vrows(va + i, c), s, "bf16")))
        return {"V": (vd, n)}

    @_op("V_ADD_VV")
    def _v_add_vv(self, a):
        return self._vv(a, nm.add)

    @_op("V_SUB_VV")
    def _v_sub_vv(self, a):
        return self._vv(a, nm.sub)

    @_op("V_MUL_VV")
    def _v_mul_vv(self, a):
        return self._vv(a, nm.mul)

    @_op("V_ADD_VF")
    def _v_add_vf(self, a):
        return self._vf(a, nm.add)

    @_op("V_SUB_VF")
    def _v_sub_vf(self, a):
        return self._vf(a, nm.sub)

    @_op("V_MUL_VF")
    def _v_mul_vf(self, a):
        return self._vf(a, nm.mul)

    @_op("V_EXP_V")
    def _v_exp_v(self, a):
        vd, va, n = self._x[a["vd"]], self._x[a["va"]], self._x[a["n"]]
        if n == 0:
            return None
        self._sram("vector", va, n, self.vector_rows)
        self._sram("vector", vd, n, self.vector_rows)
        self._rowwise(vd, (va,), n, lambda i, c: nm.exp_bf16(self._vsram[va + i:va + i + c]))
        return {"V": (vd, n)}

    @_op("V_FILL_VF")
    def _v_fill_vf(self, a):
        vd, n = self._x[a["vd"]], self._x[a["n"]]
        if n == 0:
            return None
        self._sram("vector", vd, n, self.vector_rows)
        self._vsram[vd:vd + n] = nm.narrow_f32(self._f[a["s"]])
        return {"V": (vd, n)}

    def _red_max(self, a) -> tuple[int, int] | None:
        va, n = self._x[a["va"]], self._x[a["n"]]
        if n == 0:
            return None
        self._sram("vector", va, n, self.vector_rows)
        m, idx = nm.red_max_idx(self._vsram[va:va + n].reshape(-1))
        return int(m), int(idx)

    @_op("V_RED_MAX")
    def _v_red_max(self, a):
        r = self._red_max(a)
        return None if r is None else self._wf(a["rd"], r[0])

    @_op("V_RED_MAX_IDX")
    def _v_red_max_idx(self, a):
        r = self._red_max(a)
        if r is None:
            return None
        w = self._wf(a["rd"], r[0])
        w.update(self._wx(a["idx"], r[1]))
        return w

    @_op("V_RED_SUM")
    def _v_red_sum(self, a):
        va, n = self._x[a["va"]], self._x[a["n"]]
        if n == 0:
            return None
        self._sram("vector", va, n, self.vector_rows)
        return self._wf(a["rd"], nm.red_sum(self._vsram[va:va + n]))

    @_op("V_TOPK_MASK")
    def _v_topk_mask(self, a):
        dst, src, k, n = self._x[a["idst"]], self._x[a["fsrc"]], self._x[a["k"]], self._x[a["n"]]
        if n == 0:
            return None
        self._sram("FP", src, n, self.fp_words)
        self._sram("int", dst, n, self.int_words)
        self._intsram[dst:dst + n] = nm.topk_mask(nm.f32_value(self._fpsram[src:src + n]), k)
        return {"INT": (dst, n)}

    @_op("V_TOPK_MASK_V")
    def _v_topk_mask_v(self, a):
        dst, va, k, n = self._x[a["idst"]], self._x[a["va"]], self._x[a["k"]], self._x[a["n"]]
        if n == 0:
            return None
        rows = -(-n // self.vlen)
        self._sram("vector", va, rows, self.vector_rows)
        self._sram("int", dst, n, self.int_words)
        vals = nm.bf16_value(self._vsram[va:va + rows]).reshape(-1)[:n]
        self._intsram[dst:dst + n] = nm.topk_mask(vals, k)
        return {"INT": (dst, n)}

    @_op("V_THRESH_MASK")
    def _v_thresh_mask(self, a):
        dst, src, n = self._x[a["idst"]], self._x[a["fsrc"]], self._x[a["n"]]
        if n == 0:
            return None
        self._sram("FP", src, n, self.fp_words)
        self._sram("int", dst, n, self.int_words)
        hit = nm.thresh_mask(nm.f32_value(self._fpsram[src:src + n]), self._fv(a["t"]))
        self._intsram[dst:dst + n][hit] = 1
        return {"INT": (dst, n)}

    @_op("V_SELECT_INT")
    def _v_select_int(self, a):
        dst, msk, src, n = self._x[a["idst"]], self._x[a["imask"]], self._x[a["isrc"]], self._x[a["n"]]
        if n == 0:
            return None
        for base in (msk, src, dst):
            self._sram("int", base, n, self.int_words)
        if 0 < dst - msk < n or 0 < dst - src < n:     # element by element, in order
            for j in range(n):
                if self._intsram[msk + j]:
                    self._intsram[dst + j] = self._intsram[src + j]
        else:
            m = self._intsram[msk:msk + n] != 0
            s = self._intsram[src:src + n].copy()
            self._intsram[dst:dst + n][m] = s[m]
        return {"INT": (dst, n)}

    @_op("V_MASK_FP")
    def _v_mask_fp(self, a):
        dst, msk, n = self._x[a["fdst"]], self._x[a["imask"]], self._x[a["n"]]
        if n == 0:
            return None
        self._sram("FP", dst, n, self.fp_words)
        self._sram("int", msk, n, self.int_words)
        off = self._intsram[msk:msk + n] == 0
        self._fpsram[dst:dst + n][off] = self._f[a["s"]]
        return {"FP": (dst, n)}

    # ---- memory --------------------------------------------------------------------------
    @_op("H_PREFETCH_V")
    def _h_prefetch_v(self, a):
        vd, addr, n = self._x[a["vd"]], self._x[a["addr"]], self._x[a["n"]]
        fmt = self._fmt(a["fmt"])
        if n == 0:
            return None
        nbytes, span = self._mx_stream(addr, n, fmt)
        self._sram("vector", vd, n, self.vector_rows)
        self._mx_mapped(addr, span)
        raw = self._rd(addr, nbytes)
        self._vsram[vd:vd + n] = self._mx_bf16(raw, n, fmt)
        return {"V": (vd, n)}

    @_op("H_SAMPLE_FUSED")
    def _h_sample_fused(self, a):
        addr, n = self._x[a["addr"]], self._x[a["n"]]
        fmt = self._fmt(a["fmt"])
        if n == 0:
            return None
        nbytes, span = self._mx_stream(addr, n, fmt)
        self._mx_mapped(addr, span)
        raw = self._rd(addr, nbytes)
        idx, s = nm.fused_sample(self._mx_bf16(raw, n, fmt).reshape(-1), self.vlen)
        w = self._wf(a["sum"], s)
        w.update(self._wx(a["idx"], idx))
        return w

    @_op("H_SAMPLE_FUSED_N")
    def _h_sample_fused_n(self, a):
        """H_SAMPLE_FUSED over x[count] positions at the packed row stride. Checks in
        order (docs/EXECUTION.md): fmt (ILLEGAL_INSTR); n = 0 or count = 0 retires;
        MISALIGNED (the same for every position: the stride is a multiple of 64);
        SRAM_RANGE (dst + count in the int and the FP SRAM); then position by position
        the stream's AXI_READ (past the top, then unmapped), positions before it written."""
        dst, addr, n, count = self._x[a["dst"]], self._x[a["addr"]], self._x[a["n"]], self._x[a["count"]]
        fmt = self._fmt(a["fmt"])
        if n == 0 or count == 0:
            return None
        self._mx_aligned(addr, n)                 # position 0's: the stride keeps every one aligned
        self._sram("int", dst, count, self.int_words)
        self._sram("FP", dst, count, self.fp_words)
        stride = mx.packed_nbytes(n * self.vlen, fmt, self.block)
        for p in range(count):
            pa = addr + p * stride
            try:
                nbytes, span = self._mx_stream(pa, n, fmt)
                self._mx_mapped(pa, span)
            except _Fault as f:
                raise _Fault(f.cause, f"position {p} of {count} (positions before it written): {f.msg}") from None
            raw = self._rd(pa, nbytes)
            idx, s = nm.fused_sample(self._mx_bf16(raw, n, fmt).reshape(-1), self.vlen)
            self._intsram[dst + p] = idx
            self._fpsram[dst + p] = int(nm.reci_f32(s))
        return {"INT": (dst, count), "FP": (dst, count)}

    def _load_words(self, a, dst_role: str, sram: np.ndarray, what: str) -> dict | None:
        dst, addr, n = self._x[a[dst_role]], self._x[a["addr"]], self._x[a["n"]]
        if n == 0:
            return None
        self._aligned(addr, 4)
        self._sram(what, dst, n, sram.size)
        sram[dst:dst + n] = self._rd(addr, 4 * n).view("<u4")
        return {"INT" if what == "int" else "FP": (dst, n)}

    def _store_words(self, a, src_role: str, sram: np.ndarray, what: str) -> dict | None:
        src, addr, n = self._x[a[src_role]], self._x[a["addr"]], self._x[a["n"]]
        if n == 0:
            return None
        self._aligned(addr, 4)
        self._sram(what, src, n, sram.size)
        self._wr_check(addr, 4 * n)
        self._wr(addr, sram[src:src + n].astype("<u4"))
        return {"M": (addr, 4 * n)}

    @_op("H_LOAD_INT")
    def _h_load_int(self, a):
        return self._load_words(a, "idst", self._intsram, "int")

    @_op("H_LOAD_FP")
    def _h_load_fp(self, a):
        return self._load_words(a, "fdst", self._fpsram, "FP")

    @_op("H_STORE_INT")
    def _h_store_int(self, a):
        return self._store_words(a, "isrc", self._intsram, "int")

    @_op("H_STORE_FP")
    def _h_store_fp(self, a):
        return self._store_words(a, "fsrc", self._fpsram, "FP")

    @_op("H_STORE_V")
    def _h_store_v(self, a):
        va, addr, n = self._x[a["va"]], self._x[a["addr"]], self._x[a["n"]]
        if n == 0:
            return None
        self._aligned(addr, 4)
        self._sram("vector", va, n, self.vector_rows)
        nbytes = 2 * self.vlen * n
        self._wr_check(addr, nbytes)
        self._wr(addr, self._vsram[va:va + n].astype("<u2"))
        return {"M": (addr, nbytes)}


def _check_handlers() -> None:
    """Every ISA instruction has a handler and every handler an instruction (import time)."""
    missing = sorted(set(isa.INSTRS) - set(HANDLERS))
    extra = sorted(set(HANDLERS) - set(isa.INSTRS))
    if missing or extra:
        raise ImportError(f"dnpu.emu is out of step with the ISA table: no handler for "
                          f"{missing or 'none'}; handlers for unknown instructions {extra or 'none'}")


_check_handlers()
