"""The emulator's machine: modelled external memory, the run loop, fetch and decode, hardware
loops, faults, the trace and the checks every instruction group shares (docs/EXECUTION.md).

The instruction handlers live beside it by group (`scalar`: control, scalar int and FP;
`vector`: V_*; `memory`: H_* transfers and MX streams), each registered with `_op`;
`dnpu.emu.Emulator` puts them together.
"""

from __future__ import annotations

import bisect
import dataclasses
import traceback
from typing import Callable, NamedTuple

import numpy as np

from dnpu.spec import csr, isa
from dnpu.spec import numerics as nm
from dnpu.spec.config import Config
from dnpu.spec.csr import ErrCause

__all__ = ["Core", "RunResult", "TraceEntry", "Memory", "EmuError", "HANDLERS"]

_M32 = 0xFFFFFFFF
_NARGS = csr.REGS["ARG"].count
_STATUS_BUSY = csr.mask("STATUS", "BUSY")
_STATUS_DONE = csr.mask("STATUS", "DONE")
_STATUS_ERROR = csr.mask("STATUS", "ERROR")
_NWIN = csr.REGS["WIN_BASE"].count
PERM_R = csr.mask("WIN_PERM", "R")
PERM_W = csr.mask("WIN_PERM", "W")
PERM_X = csr.mask("WIN_PERM", "X")
_PERM_TEXT = {PERM_R: "read", PERM_W: "write", PERM_X: "fetch"}


class EmuError(ValueError):
    """Host-side misuse of the emulator API (not an NPU fault)."""


class _Fault(Exception):
    def __init__(self, cause: ErrCause, msg: str, addr: int = 0) -> None:
        super().__init__(msg)
        self.cause = cause
        self.msg = msg
        self.addr = addr            # ERR_ADDR (WINDOW faults)


class _HookError(Exception):
    """Carries an exception of the on_exec callback out of the run loop (raised from it)."""


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
    def _spans(self, addr: int, n: int):
        """(position in the transfer, page number, offset in the page, length) of each
        page-bounded piece of [addr, addr + n)."""
        pos = 0
        while pos < n:
            a = addr + pos
            off = a & (self.PAGE - 1)
            k = min(n - pos, self.PAGE - off)
            yield pos, a >> self.PAGE_BITS, off, k
            pos += k

    def load(self, addr: int, n: int) -> np.ndarray:
        out = np.zeros(n, np.uint8)
        for pos, p, off, k in self._spans(addr, n):
            page = self._pages.get(p)
            if page is not None:
                out[pos:pos + k] = page[off:off + k]
        return out

    def store(self, addr: int, data) -> None:
        src = np.frombuffer(bytes(data), np.uint8) if not isinstance(data, np.ndarray) else \
            np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        for pos, p, off, k in self._spans(addr, src.size):
            page = self._pages.get(p)
            if page is None:
                page = self._pages[p] = np.zeros(self.PAGE, np.uint8)
            page[off:off + k] = src[pos:pos + k]

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


class Core:
    """State, host access, the run loop and the shared checks of the NPU; the handler
    groups (`dnpu.emu.scalar`, `.vector`, `.memory`) are mixed in by `dnpu.emu.Emulator`.

    data_path=False runs programs on operands only: every instruction is fetched, decoded
    and checked (faults, SRAM ranges, alignment, memory mapping, byte counts) and the x
    registers and loops are updated as always, but the vector and memory instructions,
    S_MAP_V_FP and the scalar FP arithmetic compute and move no data: SRAMs and memory
    keep their contents and the x and f results they would compute from data are 0 (the
    x ones marked in x_data). A program whose control flow does not depend on data runs
    exactly as with the data path, at a cost independent of the data's size (dnpu.perf
    times programs this way)."""

    def __init__(self, config: Config | str = "sim", data_path: bool = True) -> None:
        if isinstance(config, str):
            from dnpu.spec import config as config_mod
            config = config_mod.load(config)
        self.config = config
        self.data_path = bool(data_path)
        self.vlen = config.vector.vlen
        self.vector_rows = config.sram.vector_rows
        self.fp_words = config.sram.fp_words
        self.int_words = config.sram.int_words
        self.loop_depth = config.ctrl.loop_depth
        # instruction fetch reads whole lines of ctrl.fetch_words words, whole beats at least
        self._line = max(4 * config.ctrl.fetch_words, config.beat_bytes)
        self.block = config.mx.block
        self.formats = tuple(config.mx.formats)
        self.mem = Memory(config.axi.addr_width)
        self._vsram = np.zeros((self.vector_rows, self.vlen), np.uint16)
        self._fpsram = np.zeros(self.fp_words, np.uint32)
        self._intsram = np.zeros(self.int_words, np.uint32)
        self._x = [0] * isa.NREGS_X
        self._f = [0] * isa.NREGS_F
        # bit i: x[i] holds a value computed from data (SRAM, memory or an f register), not
        # only from immediates, ARG registers and other such x registers
        self.x_data = 0
        self.prog_base = 0
        self.args = [0] * _NARGS
        self.status = 0
        self.err_cause = ErrCause.NONE
        self.err_pc = 0
        self.err_addr = 0
        self.pc = 0
        # Memory windows [base, limit (inclusive), perm]. The bare emulator checks none until
        # set_window is first called (window 0 reads as granting the 32-bit space), so
        # programs run without setting any, on a 40-bit profile's memory too; the runtime's
        # emu backend programs all of them, as on the RTL, whose power-on reset disables
        # every window.
        self.windows = [[0, _M32, PERM_R | PERM_W | PERM_X]] + [[0, 0, 0] for _ in range(_NWIN - 1)]
        self._win_on = False
        self.instret = 0                 # cumulative, like the INSTRET counter
        self.total_bytes_read = 0
        self.total_bytes_written = 0
        self._loops: list[list[int]] = []   # [start_pc, end_pc, remaining]
        self.mshape = (0, 0, 0)              # the matrix unit's (M, N, K), set by M_CFG
        self._decoded: dict[int, tuple] = {}
        self._fetch: dict[int, int] = {}     # pc -> word, cleared by every memory write
        self._jump: int | None = None        # next pc set by a loop instruction
        self._retired = 0
        self._stats = self._new_stats()
        self._trace: list[TraceEntry] | None = None
        self._on_exec: Callable | None = None
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
            self.x_data &= ~(1 << i)

    def set_f(self, i: int, bits: int) -> None:
        self._f[i] = int(bits) & _M32

    def set_window(self, i: int, base: int | None = None, limit: int | None = None,
                   perm: int | None = None) -> None:
        """WIN_BASEi / WIN_LIMITi / WIN_PERMi (those given). Only while the NPU is idle."""
        if not 0 <= i < _NWIN:
            raise EmuError(f"window {i}: there are {_NWIN} memory windows")
        w = self.windows[i]
        self._win_on = True
        for k, v in enumerate((base, limit, perm)):
            if v is not None:
                w[k] = int(v) & (_M32 if k < 2 else PERM_R | PERM_W | PERM_X)
        self._fetch.clear()           # a word is cached only once its fetch passed the windows

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
        """CTRL.SOFT_RESET: clear status, error, PC, registers, the matrix shape and the loop stack (SRAMs,
        memory, counters and argument registers are kept)."""
        self._x = [0] * isa.NREGS_X
        self._f = [0] * isa.NREGS_F
        self.x_data = 0
        self._loops = []
        self.mshape = (0, 0, 0)
        self.status = 0
        self.err_cause = ErrCause.NONE
        self.err_pc = 0
        self.err_addr = 0
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
        if key.startswith("ARG") and key[3:].isdigit() and int(key[3:]) < _NARGS:
            return self.args[int(key[3:])]
        if key == "ERR_ADDR":
            return self.err_addr
        for k, reg in enumerate(("WIN_BASE", "WIN_LIMIT", "WIN_PERM")):
            if key.startswith(reg) and key[len(reg):].isdigit() and int(key[len(reg):]) < _NWIN:
                return self.windows[int(key[len(reg):])][k]
        csr.offset(key)                  # KeyError for a name that is no CSR
        return 0

    # ---- running -------------------------------------------------------------------------
    def run(self, prog_base: int | None = None, args=(), max_instructions: int = 10_000_000,
            trace: bool = False, on_exec: Callable | None = None) -> RunResult:
        """CTRL.START: run from PROG_BASE until C_HALT, a fault, or max_instructions retired.
        args sets ARG0.. (the others keep their values).  Registers and SRAMs keep their
        values from earlier runs, as on the NPU.

        on_exec(pc, name, args, x) is called for each instruction fetched and decoded,
        before it executes: its address, mnemonic, operand values by role (the decoded
        instruction's, shared: do not modify) and the live x register list (the values it
        reads; do not modify). `x_data` says which of them come from data. An exception
        it raises stops the run before that instruction and propagates out of run()
        (STATUS stays BUSY); resume() keeps the callback."""
        if prog_base is not None:
            self.prog_base = int(prog_base) & _M32
        if len(args) > _NARGS:
            raise EmuError(f"{len(args)} arguments: there are {_NARGS} argument registers")
        for k, v in enumerate(args):
            self.args[k] = int(v) & _M32
        self._loops = []
        self.status = _STATUS_BUSY
        self.err_cause = ErrCause.NONE
        self.err_pc = 0
        self.err_addr = 0
        self.pc = self.prog_base
        self._stats = self._new_stats()
        self._trace = [] if trace else None
        self._on_exec = on_exec
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
        self._fault_addr = 0
        self._retired = 0            # set by _loop as it ends, however it ends
        self._jump = None
        try:
            status, cause, msg, retired = self._loop(int(max_instructions))
        except _HookError as e:        # the caller's callback: its exception is the caller's
            raise e.__cause__ from None
        except Exception:  # an emulator bug, never a program's fault
            status, cause, msg = "internal", ErrCause.NONE, traceback.format_exc()
            retired = self._retired
        st = self._stats
        if status == "halted":
            self.status = _STATUS_DONE
        elif status == "fault":
            self.status = _STATUS_ERROR
            self.err_cause, self.err_pc = cause, self.pc
            self.err_addr = self._fault_addr if cause == ErrCause.WINDOW else 0
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
        hook, xs, loops = self._on_exec, self._x, self._loops
        retired = fetched = 0
        try:
            while retired < budget:
                pc = self.pc
                word = fetch.get(pc)
                if word is None:
                    if pc & 3:
                        return "fault", ErrCause.MISALIGNED, f"instruction fetch at 0x{pc:08X} is not " \
                                                             f"4-byte aligned", retired
                    try:
                        self._win(pc & ~(self._line - 1), self._line, PERM_X, pc)
                    except _Fault as f:
                        self._fault_addr = f.addr
                        return "fault", f.cause, f"instruction {f.msg}", retired
                    if not mem.is_mapped(pc, 4):
                        return "fault", ErrCause.AXI_READ, f"instruction fetch from unmapped 0x{pc:08X}", retired
                    word = fetch[pc] = mem.word(pc)
                fetched += 1
                d = decoded.get(word)
                if d is None:
                    try:
                        dec = isa.decode(word)
                    except isa.DisasmError as e:
                        return "fault", ErrCause.ILLEGAL_INSTR, str(e), retired
                    ins = dec.instr
                    d = decoded[word] = (self._bound[dec.name], dec.args, ins.name, ins.cls, dec)
                handler, a, name, cls, dec = d
                if hook is not None:
                    try:
                        hook(pc, name, a, xs)
                    except Exception as e:
                        raise _HookError from e
                try:
                    writes = handler(a)
                except _Fault as f:
                    self._fault_addr = f.addr
                    return "fault", f.cause, f"{dec.text()}: {f.msg}", retired
                retired += 1
                classes[cls] += 1
                ops[name] = ops.get(name, 0) + 1
                if tr is not None:
                    tr.append(TraceEntry(pc, word, dec.text(), writes or {}))
                if name == "C_HALT":
                    return "halted", ErrCause.NONE, "", retired
                if self._jump is not None:           # a loop instruction chose the next pc
                    self.pc, self._jump = self._jump, None
                elif loops and loops[-1][1] == pc:
                    self.pc = self._next_after(pc)
                else:
                    self.pc = (pc + 4) & _M32
            return "budget", ErrCause.NONE, f"{budget} instructions retired without C_HALT", retired
        finally:
            self._retired = retired
            self.instret += retired
            stats["fetch"] += 4 * fetched

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

    def _win(self, addr: int, n: int, need: int, at: int | None = None) -> None:
        """WINDOW unless the whole AXI beats of [addr, addr + n) lie inside one window granting
        `need` (ERR_ADDR = at, by default addr)."""
        if not self._win_on:
            return
        beat = self.config.beat_bytes
        lo, last = addr & -beat, (addr + n - 1) | (beat - 1)
        for base, limit, perm in self.windows:
            if perm & need == need and base <= lo and last <= limit:
                return
        at = addr if at is None else at
        raise _Fault(ErrCause.WINDOW, f"{_PERM_TEXT[need]} of [0x{lo:08X}, 0x{last:08X}] (whole beats) is "
                                      f"not inside one memory window granting it", at)

    def _past(self, addr: int, n: int, cause: ErrCause) -> None:
        """AXI_READ / AXI_WRITE for a range past the top of the address space (no slave
        answers it), known from the operands: before the window check."""
        if addr + n > self.mem.limit:
            raise _Fault(cause, f"[0x{addr:08X}, +{n}) runs past the top of the address space")

    def _rd(self, addr: int, n: int) -> np.ndarray | None:
        """n bytes read at addr (None without the data path: checked and counted only)."""
        self._past(addr, n, ErrCause.AXI_READ)
        self._win(addr, n, PERM_R)
        if not self.mem.is_mapped(addr, n):
            bad = self.mem.first_unmapped(addr, n)
            raise _Fault(ErrCause.AXI_READ, f"read of [0x{addr:08X}, +{n}) hits unmapped 0x{bad:08X}")
        self._stats["rd"] += n
        return self.mem.load(addr, n) if self.data_path else None

    def _wr_check(self, addr: int, n: int) -> None:
        self._past(addr, n, ErrCause.AXI_WRITE)
        self._win(addr, n, PERM_W)
        if not self.mem.is_mapped(addr, n):
            bad = self.mem.first_unmapped(addr, n)
            raise _Fault(ErrCause.AXI_WRITE, f"write of [0x{addr:08X}, +{n}) hits unmapped 0x{bad:08X}")

    def _wr(self, addr: int, src: np.ndarray, dtype: str) -> None:
        """SRAM words src written to memory at addr as `dtype` (after _wr_check; without the
        data path counted only)."""
        self._stats["wr"] += src.nbytes
        if self.data_path:
            self.mem.store(addr, src.astype(dtype))
            self._fetch.clear()

    # ---- register writes -----------------------------------------------------------------
    def _wx(self, rd: int, v: int, *srcs: int, data: bool = False) -> dict:
        """x[rd] = v, computed from the x registers srcs (and immediates), or from data."""
        if not rd:
            return {}
        self._x[rd] = v & _M32
        for s in srcs:
            data = data or bool(self.x_data >> s & 1)
        self.x_data = self.x_data | 1 << rd if data else self.x_data & ~(1 << rd)
        return {f"x{rd}": self._x[rd]}

    def _wf(self, rd: int, bits) -> dict:
        self._f[rd] = int(bits) & _M32
        return {f"f{rd}": self._f[rd]}

    def _fv(self, r: int) -> np.ndarray:
        return nm.f32_value(np.uint32(self._f[r]))

