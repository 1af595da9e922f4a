"""The device interface every backend implements (after VTA's driver.h), and buffers.

A backend supplies the primitives (register access, memory map/write/read, one run,
counters, reset); this module does the rest the same way for all of them: attach checks,
allocation, program loading, the run protocol and error reports.

Threads: a Device may be shared. Every public operation (run, load, alloc, a buffer's
read/write/free, register access, counters, reset, close, and the backends' own, e.g.
set_dram) holds the device's lock (a threading.RLock, `dev.lock`), so concurrent callers
take turns, one whole operation each. A sequence that must not be interleaved with other
threads' calls (a run and the counters() read after it) holds `with dev.lock:` around it.
Separate devices are independent and run in parallel.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import math
import numbers
import threading
import warnings
from typing import NamedTuple

import numpy as np

from dnpu.spec import csr, isa, mx
from dnpu.spec.config import Config
# ALIGN: every buffer is aligned and sized to the widest AXI beat (EXECUTION.md).
from dnpu.spec.mx import PACK_ALIGN as ALIGN
from dnpu.runtime.errors import AttachError, DeviceError
from dnpu.runtime import windows as _windows

__all__ = ["Device", "Buffer", "RunInfo", "Retire", "ALIGN", "HEAP_BASE", "HEAP_SIZE", "TRACE_DEFAULT",
           "U64_MAX", "check_count", "check_run_info"]

_NARGS = csr.REGS["ARG"].count
HEAP_BASE = 0x0100_0000         # below it nothing is mapped: a null pointer faults
HEAP_SIZE = 0x4000_0000         # 1 GiB of device address space (memory is sparse in both models)

_BUSY = csr.mask("STATUS", "BUSY")
_M32 = 0xFFFF_FFFF
TRACE_DEFAULT = 1 << 20         # retires a run(trace=True) records at most
U64_MAX = (1 << 64) - 1         # cycle and instruction budgets are counted in 64 bits


def check_count(name: str, value, lo: int, hi: int, unit: str = "") -> int:
    """`value` as an int in [lo, hi], else ValueError naming `name` and the range. Integral
    floats (1e6) are accepted; NaN, infinities, fractions, bools and non-numbers are not."""
    rng = f"[{lo}, {'2**64 - 1' if hi == U64_MAX else hi}]" + (f" {unit}" if unit else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} = {value!r}: must be a whole number in {rng}")
    if not isinstance(value, numbers.Integral):
        f = float(value)
        if not (math.isfinite(f) and f.is_integer()):
            raise ValueError(f"{name} = {value!r}: must be a whole number in {rng}")
    v = int(value)
    if not lo <= v <= hi:
        raise ValueError(f"{name} = {value!r}: out of range, must be in {rng}")
    return v


def check_run_info(run_info, where: str = "run_info"):
    """`run_info` if it is None or a list-like (something with append) that a RunInfo can be
    appended to; a TypeError now, before any work, instead of an AttributeError after the run."""
    if run_info is not None and not callable(getattr(run_info, "append", None)):
        raise TypeError(f"{where} = {run_info!r}: must be a list (each run's dnpu.runtime.RunInfo is "
                        f"appended to it) or None, not {type(run_info).__name__}")
    return run_info


class Retire(NamedTuple):
    """One retired instruction, the same on every backend: the RTL's retire port (co-simulation)
    or the emulator's trace. x / f: the register written as (index, value or FP32 bits), None
    when the instruction wrote none (a write to x0 is no write). cycle: on the co-simulation,
    the clock cycle of the run (counted from the START write) at which the retire port showed
    it; None on the emulator."""
    pc: int
    word: int
    x: tuple[int, int] | None
    f: tuple[int, int] | None
    cycle: int | None = None

    def text(self) -> str:
        """The instruction, disassembled (or the raw word when it does not decode)."""
        try:
            return isa.decode(self.word).text()
        except isa.DisasmError:
            return f".word 0x{self.word:08X}"

    def __str__(self) -> str:
        return f"0x{self.pc:08X}: {self.text():<32} {self.writes()}"

    def writes(self) -> str:
        parts = [f"{r}{v[0]} = 0x{v[1]:08X}" for r, v in (("x", self.x), ("f", self.f)) if v is not None]
        return ", ".join(parts) or "(no register write)"


@dataclasses.dataclass
class RunInfo:
    """A finished run. `cycles` is None on backends without a clock (emu)."""
    backend: str
    outcome: str                # "halted" for a returned RunInfo
    prog: int
    args: list[int]
    budget: int
    budget_unit: str            # "cycles" (verilator), "instructions" (emu) or "seconds" (pynq)
    cycles: int | None
    instret: int
    wall_s: float               # host time of the run itself
    counters: dict[str, int]
    detail: str = ""
    trace: list[Retire] | None = None   # run(trace=...): the retired instructions, in order
    trace_dropped: int = 0              # retires past the trace's capacity (not recorded)

    @property
    def cycles_per_s(self) -> float | None:
        """Simulated cycles per second of host time (co-simulation speed)."""
        if self.cycles is None or self.wall_s <= 0:
            return None
        return self.cycles / self.wall_s


class Buffer:
    """A region of device memory: `addr` (also int(buf)), `nbytes`; write/read at an offset."""

    __slots__ = ("device", "addr", "nbytes", "size", "_freed")

    def __init__(self, device: "Device", addr: int, nbytes: int, size: int) -> None:
        self.device = device
        self.addr = addr
        self.nbytes = nbytes
        self.size = size            # bytes reserved (nbytes rounded up to ALIGN)
        self._freed = False

    def __index__(self) -> int:
        return self.addr

    __int__ = __index__

    def __repr__(self) -> str:
        state = " freed" if self._freed else ""
        return f"<Buffer 0x{self.addr:08X} {self.nbytes} bytes on {self.device.backend}{state}>"

    def __enter__(self) -> "Buffer":
        return self

    def __exit__(self, *exc) -> None:
        self.free()

    @property
    def freed(self) -> bool:
        return self._freed

    def _span(self, offset: int, n: int, what: str) -> None:
        if self._freed:
            raise ValueError(f"{what} on a freed buffer (0x{self.addr:08X})")
        if offset < 0 or n < 0 or offset + n > self.nbytes:
            raise ValueError(f"{what}: bytes [{offset}, {offset + n}) outside the buffer's {self.nbytes} bytes")

    def write(self, data, offset: int = 0) -> None:
        """Copy bytes (bytes, bytearray, memoryview or a NumPy array's raw bytes) in at `offset`."""
        raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(memoryview(data).cast("B"))
        with self.device.lock:
            self._span(int(offset), len(raw), "write")
            self.device._write(self.addr + int(offset), raw)

    def read(self, n: int | None = None, offset: int = 0) -> bytes:
        """`n` bytes from `offset` (default: to the end of the buffer)."""
        offset = int(offset)
        n = self.nbytes - offset if n is None else int(n)
        with self.device.lock:
            self._span(offset, n, "read")
            return self.device._read(self.addr + offset, n)

    def free(self) -> None:
        """Give the range back to the allocator (idempotent). The memory stays mapped until
        a later alloc reuses it: a program that still uses it does not fault."""
        with self.device.lock:
            if not self._freed:
                self._freed = True
                self.device._release(self)


class _Heap:
    """First-fit allocator over [base, base + size) in ALIGN units."""

    def __init__(self, base: int, size: int) -> None:
        if base % ALIGN or size % ALIGN or size <= 0:
            raise ValueError(f"heap [0x{base:X}, +0x{size:X}): base and size must be multiples of {ALIGN}")
        self.base, self.size = base, size
        self.free_starts = [base]
        self.free_sizes = [size]

    def alloc(self, n: int) -> int:
        for i, (s, k) in enumerate(zip(self.free_starts, self.free_sizes)):
            if k >= n:
                if k == n:
                    del self.free_starts[i], self.free_sizes[i]
                else:
                    self.free_starts[i], self.free_sizes[i] = s + n, k - n
                return s
        free = sum(self.free_sizes)
        raise MemoryError(f"device heap exhausted: {n} bytes wanted, {free} free in "
                          f"{len(self.free_sizes)} piece(s) (largest {max(self.free_sizes, default=0)}) of "
                          f"[0x{self.base:08X}, 0x{self.base + self.size:08X})")

    def release(self, s: int, n: int) -> None:
        i = bisect.bisect_left(self.free_starts, s)
        self.free_starts.insert(i, s)
        self.free_sizes.insert(i, n)
        # merge with the right, then the left neighbour
        if i + 1 < len(self.free_starts) and s + n == self.free_starts[i + 1]:
            self.free_sizes[i] += self.free_sizes.pop(i + 1)
            self.free_starts.pop(i + 1)
        if i > 0 and self.free_starts[i - 1] + self.free_sizes[i - 1] == s:
            self.free_sizes[i - 1] += self.free_sizes.pop(i)
            self.free_starts.pop(i)


def _addr(x) -> int:
    if isinstance(x, Buffer):
        if x.freed:
            raise ValueError(f"{x!r} is freed")
        return x.addr
    v = int(x)
    if not 0 <= v <= _M32:
        raise ValueError(f"{x}: not a 32-bit device address or value")
    return v


# Methods that run under the device's lock, wherever a class defines them (a backend's
# overrides and its own public operations included): see the module docstring.
_SERIALIZED = ("read_csr", "write_csr", "counters", "reset", "close", "attach", "alloc", "load", "status", "run",
               "error", "_map", "_write", "_read", "_release", "set_dram", "dram", "describe")


def _serialize(cls) -> None:
    for name in _SERIALIZED:
        fn = cls.__dict__.get(name)
        if fn is None or not callable(fn) or getattr(fn, "_dnpu_locked", False):
            continue

        def make(fn):
            @functools.wraps(fn)
            def locked(self, *a, **kw):
                with self._lock:
                    return fn(self, *a, **kw)
            locked._dnpu_locked = True
            return locked

        setattr(cls, name, make(fn))


class Device:
    """One NPU. Use `dnpu.runtime.open(...)`, which builds the backend and attaches.

        with dnpu.runtime.open("verilator", config="sim") as dev:
            prog = dev.load(isa.assemble(src))          # a Buffer
            out = dev.alloc(4096)
            dev.run(prog, args=[out], timeout=1_000_000)
            out.read(64); dev.counters()

    Backend primitives (subclasses): read_csr, write_csr, counters, reset, _map, _write,
    _read, _run, _close, _bytes_moved; class attributes backend, default_budget, budget_unit,
    max_budget. Safe to share between threads (module docstring): public operations hold
    `lock`.
    """

    backend = "?"
    default_budget = 10_000_000
    budget_unit = "cycles"
    max_budget = U64_MAX            # the largest run budget the backend's counter holds

    def __new__(cls, *args, **kw):
        self = super().__new__(cls)
        # Before any __init__ runs: backends touch the device before Device.__init__.
        self._lock = threading.RLock()
        return self

    def __init_subclass__(cls, **kw) -> None:
        super().__init_subclass__(**kw)
        _serialize(cls)

    @property
    def lock(self) -> threading.RLock:
        """The device's lock (re-entrant): hold it to make several operations one."""
        return self._lock

    def __init__(self, config: Config, *, expect_config: Config | None = None,
                 heap_base: int = HEAP_BASE, heap_size: int = HEAP_SIZE) -> None:
        self.config = config
        self.expect_config = expect_config or config
        self._heap = _Heap(heap_base, heap_size)
        self._buffers: dict[int, Buffer] = {}
        self._closed = False
        self.info: dict = {"backend": self.backend, "profile": config.label}

    # ---- backend primitives ---------------------------------------------------------------
    def read_csr(self, name: str) -> int:
        raise NotImplementedError

    def write_csr(self, name: str, value: int) -> None:
        raise NotImplementedError

    def counters(self) -> dict[str, int]:
        """The performance counters (since the last run started, by default): the CSR
        counters of hw/csr.toml, plus RD_BYTES and WR_BYTES (beats x the AXI beat size)."""
        self._check_open()
        out = {}
        for n in csr.COUNTERS:               # LO first: it latches HI
            lo = self.read_csr(f"{n}_LO")
            hi = self.read_csr(f"{n}_HI")
            out[n] = csr.combine64(lo, hi)
        out["RD_BYTES"] = out["RD_BEATS"] * self.config.beat_bytes
        out["WR_BYTES"] = out["WR_BEATS"] * self.config.beat_bytes
        return out

    def reset(self, hard: bool = False) -> None:
        """SOFT_RESET: abort a run, clear status, registers and loop stack (memory, SRAMs,
        counters and arguments kept). hard=True: a full reset (rst_n on the co-simulation;
        counters cleared)."""
        raise NotImplementedError

    def _map(self, addr: int, nbytes: int) -> None:
        raise NotImplementedError

    def _write(self, addr: int, data: bytes) -> None:
        raise NotImplementedError

    def _read(self, addr: int, n: int) -> bytes:
        raise NotImplementedError

    def _run(self, prog: int, args: list[int], budget: int, opts: dict) -> RunInfo:
        raise NotImplementedError

    def _bytes_moved(self, counters: dict) -> tuple[int | None, int | None, str]:
        return None, None, ""

    def _close(self) -> None:
        pass

    # ---- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the device (idempotent); its buffers become unusable. A program still
        running (a run stopped by its budget or watchdog) is stopped first by SOFT_RESET, so
        that the NPU does not go on reading and writing memory that is being released."""
        if not self._closed:
            try:
                self._left_running = not self._stop()
            finally:
                self._closed = True
                for b in list(self._buffers.values()):
                    b._freed = True
                self._buffers.clear()
                self._close()

    _left_running = False          # close() could not stop the NPU (the backend decides what to keep)
    STOP_POLLS = 1000              # STATUS reads close() waits for BUSY to drop after SOFT_RESET

    def _stop(self) -> bool:
        """SOFT_RESET a busy NPU and wait (bounded) until it is idle; False if it stays busy
        (the backend's _close decides what that means for its memory)."""
        try:
            if not self.read_csr("STATUS") & _BUSY:
                return True
            self.reset()
            for _ in range(self.STOP_POLLS):
                if not self.read_csr("STATUS") & _BUSY:
                    return True
        except Exception as e:      # an unreadable device: release it all the same
            warnings.warn(f"closing the {self.backend} device: could not check or stop the NPU ({e})",
                          RuntimeWarning, stacklevel=4)
            return False
        return False

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"the {self.backend} device is closed")

    def __repr__(self) -> str:
        return f"<dnpu {self.backend} device, profile {self.config.label}{' (closed)' if self._closed else ''}>"

    # ---- attach ------------------------------------------------------------------------------
    def attach(self) -> None:
        """Read ID, ISA_VERSION and CONFIG_HASH over the register interface; refuse a device
        that is not what this host expects (AttachError naming both sides)."""
        self._check_open()
        exp = self.expect_config
        dev_id = self.read_csr("ID")
        dev_isa = self.read_csr("ISA_VERSION")
        dev_hash = self.read_csr("CONFIG_HASH")
        self.info.update(id=dev_id, isa_version=dev_isa, config_hash32=dev_hash)
        if dev_id != csr.ID_MAGIC:
            raise AttachError(f"device ID 0x{dev_id:08X} != 0x{csr.ID_MAGIC:08X} (\"DNPU\"): no dnpu NPU answers "
                              f"on the register interface", field="ID", device_value=dev_id,
                              expected_value=csr.ID_MAGIC, backend=self.backend, profile=self.config.label)
        host_isa = isa.VERSION_WORD
        if dev_isa != host_isa:
            raise AttachError(f"device ISA_VERSION {dev_isa >> 16}.{dev_isa & 0xFFFF} (0x{dev_isa:08X}) != host "
                              f"ISA {host_isa >> 16}.{host_isa & 0xFFFF} (0x{host_isa:08X}): the NPU and this "
                              f"dnpu package implement different instruction sets", field="ISA_VERSION",
                              device_value=dev_isa, expected_value=host_isa, backend=self.backend,
                              profile=self.config.label)
        want = exp.config_hash32
        if dev_hash != want:
            raise AttachError(f"device CONFIG_HASH 0x{dev_hash:08X} != profile {exp.label} 0x{want:08X}: the "
                              f"{self.backend} device was built for another hardware profile (or "
                              f"{exp.path} changed after the device was built)", field="CONFIG_HASH",
                              device_value=dev_hash, expected_value=want, backend=self.backend,
                              profile=self.config.label)

    # ---- memory ------------------------------------------------------------------------------
    def alloc(self, nbytes: int, *, zero: bool = True) -> Buffer:
        """A buffer of `nbytes` at a 64-byte aligned device address, mapped in the device's
        memory and zero-filled (zero=False skips the fill)."""
        self._check_open()
        nbytes = int(nbytes)
        if nbytes <= 0:
            raise ValueError(f"alloc({nbytes}): a buffer needs at least one byte")
        size = mx.align_up(nbytes)
        addr = self._heap.alloc(size)
        try:
            self._map(addr, size)
            if zero:
                self._write(addr, bytes(size))
        except BaseException:
            self._heap.release(addr, size)
            raise
        buf = Buffer(self, addr, nbytes, size)
        self._buffers[addr] = buf
        return buf

    def _release(self, buf: Buffer) -> None:
        if self._buffers.get(buf.addr) is buf:
            del self._buffers[buf.addr]
            self._heap.release(buf.addr, buf.size)

    def load(self, program) -> Buffer:
        """Place a program in device memory: bytes (`dnpu.spec.isa.assemble` output), a list of
        32-bit words, or assembly text. Returns its Buffer (pass it, or int(it), to run).
        Raises ValueError for a program that is empty or not whole 32-bit words (AsmError, a
        ValueError, for assembly text that does not assemble), MemoryError when the device
        heap has no room for it."""
        if isinstance(program, str):
            program = isa.assemble(program)
        elif isinstance(program, (list, tuple)):
            program = b"".join((int(w) & _M32).to_bytes(4, "little") for w in program)
        raw = program.tobytes() if isinstance(program, np.ndarray) else bytes(program)
        if not raw or len(raw) % 4:
            raise ValueError(f"a program is a non-empty sequence of 32-bit words; got {len(raw)} bytes")
        buf = self.alloc(len(raw), zero=False)
        buf.write(raw)
        return buf

    # ---- running -----------------------------------------------------------------------------
    def status(self) -> dict[str, int]:
        return {n: self.read_csr(n) for n in ("STATUS", "ERR_CAUSE", "ERR_PC", "PC")}

    def run(self, prog, args=(), timeout: int | None = None, *, wave=None, wave_from: int = 0,
            watchdog: int | None = None, clear_counters: bool = True, trace: bool | int = False,
            grant=(), windows=None) -> RunInfo:
        """Run the program at `prog` (a Buffer or an address) with ARG0.. = args (Buffers or
        ints; the other argument registers keep their values) until C_HALT.

        timeout: the budget, in cycles on `verilator`, in retired instructions on `emu`
        (a whole number in [1, 2**64 - 1]), in seconds of wall-clock time on `pynq` (a finite
        number in (0, 604800], a week); default: the backend's default_budget. NaN, infinities,
        zero, negative or too large values are a ValueError at the call, so every run ends.
        wave / wave_from: an FST waveform of the run
        (from its cycle wave_from on; co-simulation only). watchdog: cycles without a retire,
        an SRAM write or an AXI handshake before the co-simulation gives up (0 .. 2**64 - 1,
        0: off; None: the device's setting;
        the emulator cannot hang on a bus and ignores it). clear_counters: counters() then
        describes this run alone. trace: record every retired instruction (True: up to
        TRACE_DEFAULT of them, an int: up to that many) as a list of Retire in
        RunInfo.trace, or in DeviceError.trace when the run fails (retires past the capacity
        are counted in trace_dropped); the co-simulation reads the RTL's retire port, the
        emulator gives its own trace. grant / windows: the memory windows the program may
        touch (`dnpu.runtime.windows`): by default the program's buffer (fetch) and the buffers
        the arguments and `grant` point into (read and write), whole; windows= replaces that.

        Returns a RunInfo; raises DeviceError for a fault, a budget or watchdog stop, a
        device still busy from an earlier run, or a simulator failure."""
        self._check_open()
        prog_addr = _addr(prog)
        args = [_addr(a) for a in args]
        if len(args) > _NARGS:
            raise ValueError(f"{len(args)} arguments: the NPU has {_NARGS} argument registers")
        budget = self.default_budget if timeout is None else self._budget(timeout)
        if watchdog is not None:
            watchdog = check_count("watchdog", watchdog, 0, U64_MAX, "cycles (0: off)")
        if self.read_csr("STATUS") & _BUSY:
            raise self.error("busy", "the device is still running a program (an earlier run stopped on its "
                                     "budget or watchdog): reset() it first", prog_addr, args, budget)
        cap = 0 if trace is False or trace is None else TRACE_DEFAULT if trace is True else \
            check_count("trace", trace, 0, U64_MAX, "retires")
        wave_from = check_count("wave_from", wave_from, 0, U64_MAX, "cycles")
        wins = _windows.plan([(b.addr, b.size) for b in self._buffers.values()], prog_addr, args,
                             [_addr(g) for g in grant], windows)
        for i, (base, limit, perm) in enumerate(wins):
            self.write_csr(f"WIN_BASE{i}", base)
            self.write_csr(f"WIN_LIMIT{i}", limit)
            self.write_csr(f"WIN_PERM{i}", perm)
        info = self._run(prog_addr, args, budget, {"wave": wave, "wave_from": int(wave_from),
                                                   "watchdog": watchdog, "clear_counters": clear_counters,
                                                   "trace": cap})
        if info.outcome == "halted":
            return info
        summaries = {
            "fault": "the program faulted",
            "budget": f"the program did not halt within its budget of {budget} {self.budget_unit}",
            "watchdog": "the co-simulation watchdog stopped the run: no instruction retired, no SRAM was "
                        "written and no AXI4 handshake happened for too long (a hung bus?)",
            "sim_error": "the simulated RTL reported an error ($stop/$fatal)",
            "axil_timeout": "the register interface did not answer",
            "internal": "the emulator failed (a bug in dnpu.emu, not in the program)",
        }
        summary = summaries.get(info.outcome, info.outcome)
        if info.outcome == "fault":
            cause = self.read_csr("ERR_CAUSE")
            try:
                name = csr.ErrCause(cause).name
            except ValueError:
                name = f"cause {cause}"
            summary = f"the program faulted: {name} at 0x{self.read_csr('ERR_PC'):08X}"
            if name == "WINDOW":
                summary += (f", address 0x{self.read_csr('ERR_ADDR'):08X} outside the memory windows granted "
                            f"({_windows.describe(wins)})")
        elapsed = {"cycles": info.cycles, "instructions": info.instret,
                   "seconds": round(info.wall_s, 3)}.get(self.budget_unit)
        err = self.error(info.outcome, summary, prog_addr, args, budget, elapsed=elapsed, detail=info.detail)
        err.trace, err.trace_dropped, err.run_info = info.trace, info.trace_dropped, info
        raise err

    def _budget(self, timeout) -> int | float:
        """run()'s timeout as a budget: a whole number of cycles or instructions in
        [1, max_budget]; a seconds budget (budget_unit "seconds") a finite number in
        (0, max_budget]. Anything else is a ValueError naming the range."""
        if self.budget_unit != "seconds":
            return check_count("timeout", timeout, 1, self.max_budget,
                               f"{self.budget_unit} on the {self.backend} backend")
        rng = f"(0, {self.max_budget:g}] seconds on the {self.backend} backend"
        if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
            raise ValueError(f"timeout = {timeout!r}: must be a number of seconds in {rng}")
        t = float(timeout)
        if not (math.isfinite(t) and 0 < t <= self.max_budget):
            raise ValueError(f"timeout = {timeout!r}: must be a finite number of seconds in {rng}")
        return t

    def error(self, reason: str, summary: str, prog: int | None = None, args=None, budget: int | None = None,
              elapsed: int | None = None, detail: str = "") -> DeviceError:
        """A DeviceError with the device's registers, counters and bytes moved read now."""
        regs = self.status()
        cnt = self.counters()
        rd, wr, note = self._bytes_moved(cnt)
        err = regs["ERR_CAUSE"] if (regs["ERR_CAUSE"] or reason == "fault") else None
        return DeviceError(summary, reason=reason, backend=self.backend, profile=self.config.label,
                           pc=regs["PC"], status=regs["STATUS"], err_cause=err,
                           err_pc=regs["ERR_PC"] if err is not None else None, counters=cnt,
                           bytes_read=rd, bytes_written=wr, bytes_note=note, budget=budget,
                           budget_unit=self.budget_unit, elapsed=elapsed, prog=prog, args=args, detail=detail)


_serialize(Device)
