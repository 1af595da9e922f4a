"""The ctypes binding of the co-simulation library (cosim/dnpu_cosim.h): `Model`, one
dnpu_top with its DRAM model, each method one host transaction.

ctypes releases the GIL for the duration of a foreign call, so two threads could otherwise
be inside one handle at once (the C side allows one thread per handle): every call into a
handle holds the Model's lock. Separate Models run in parallel.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np

__all__ = ["Model", "RunStats", "CosimError", "load_library", "ABI_VERSION", "RUN_REASONS", "RETIRE_DTYPE", "TRACE_MAX",
           "check_library", "library_digest", "META_NAME"]

ABI_VERSION = 2                # cosim/dnpu_cosim.h DNPU_COSIM_ABI_VERSION
RUN_REASONS = {0: "idle", 1: "budget", 2: "watchdog", 3: "sim_error", 4: "axil_timeout"}
# dnpu_cosim_retire (cosim/dnpu_cosim.h): one retired instruction of the trace capture.
RETIRE_DTYPE = np.dtype([("cycle", "<u8"), ("pc", "<u4"), ("word", "<u4"), ("x_data", "<u4"),
                         ("f_data", "<u4"), ("x_we", "u1"), ("x_idx", "u1"), ("f_we", "u1"),
                         ("f_idx", "u1"), ("reserved", "<u4")])
assert RETIRE_DTYPE.itemsize == 32
TRACE_MAX = 1 << 24            # DNPU_COSIM_TRACE_MAX: most entries one capture holds
U64_MAX = (1 << 64) - 1        # run budgets and watchdogs are uint64_t cycles
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1   # knob values are int64_t


class CosimError(RuntimeError):
    """Misuse of the harness, or a harness-level failure (not an NPU fault)."""


# ------------------------------------------------------------------------------------------------
# the binding

class RunStats(ctypes.Structure):
    """dnpu_cosim_run_result (cosim/dnpu_cosim.h)."""
    _fields_ = [("cycles", ctypes.c_uint64), ("end_cycle", ctypes.c_uint64), ("retired", ctypes.c_uint64),
                ("last_progress", ctypes.c_uint64), ("r_beats", ctypes.c_uint64), ("w_beats", ctypes.c_uint64),
                ("reason_code", ctypes.c_uint32), ("status", ctypes.c_uint32),
                ("last_retire_pc", ctypes.c_uint32), ("reserved", ctypes.c_uint32)]

    @property
    def reason(self) -> str:
        return RUN_REASONS.get(self.reason_code, f"reason {self.reason_code}")

    def __repr__(self) -> str:
        return (f"RunStats(reason={self.reason!r}, cycles={self.cycles}, status=0x{self.status:X}, "
                f"retired={self.retired}, r_beats={self.r_beats}, w_beats={self.w_beats})")


_P = ctypes.c_void_p
_SIGS = {
    "dnpu_cosim_abi_version": (ctypes.c_int, []),
    "dnpu_cosim_build_info": (ctypes.c_char_p, []),
    "dnpu_cosim_create": (_P, [ctypes.c_uint64]),
    "dnpu_cosim_destroy": (None, [_P]),
    "dnpu_cosim_error": (ctypes.c_char_p, [_P]),
    "dnpu_cosim_set": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_int64]),
    "dnpu_cosim_get": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int64)]),
    "dnpu_cosim_reset": (ctypes.c_int, [_P, ctypes.c_uint32]),
    "dnpu_cosim_step": (ctypes.c_int, [_P, ctypes.c_uint64]),
    "dnpu_cosim_csr_write": (ctypes.c_int, [_P, ctypes.c_uint32, ctypes.c_uint32]),
    "dnpu_cosim_csr_read": (ctypes.c_int, [_P, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32)]),
    "dnpu_cosim_map": (ctypes.c_int, [_P, ctypes.c_uint64, ctypes.c_uint64]),
    "dnpu_cosim_mem_write": (ctypes.c_int, [_P, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64]),
    "dnpu_cosim_mem_read": (ctypes.c_int, [_P, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64]),
    "dnpu_cosim_run": (ctypes.c_int, [_P, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_uint64,
                                      ctypes.POINTER(RunStats)]),
    "dnpu_cosim_wave_open": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_uint64]),
    "dnpu_cosim_wave_close": (ctypes.c_int, [_P]),
    "dnpu_cosim_describe": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_uint64]),
    "dnpu_cosim_trace_start": (ctypes.c_int, [_P, ctypes.c_uint64]),
    "dnpu_cosim_trace_read": (ctypes.c_int64, [_P, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64]),
}


def _serialized(fn):
    """Hold the Model's lock around a method (one thread inside a handle at a time)."""
    @functools.wraps(fn)
    def locked(self, *a, **kw):
        with self._lock:
            return fn(self, *a, **kw)
    return locked


def _u64(what: str, v, lo: int = 0) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        try:
            iv = int(v)
        except (TypeError, ValueError, OverflowError):
            raise CosimError(f"{what} = {v!r}: not an integer") from None
        if iv != v:
            raise CosimError(f"{what} = {v!r}: not an integer")
        v = iv
    if not lo <= v <= U64_MAX:
        raise CosimError(f"{what} = {v}: must be in [{lo}, 2**64 - 1] cycles")
    return v


META_NAME = "build.json"        # beside the library: its recorded lib_size and lib_sha256


@functools.lru_cache(maxsize=64)
def _digest(path: str, size: int, mtime_ns: int, ino: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def library_digest(path: str | os.PathLike) -> tuple[int, str]:
    """(size, sha256) of a file, hashed once per process per version of the file."""
    st = os.stat(path)
    return st.st_size, _digest(os.fspath(path), st.st_size, st.st_mtime_ns, st.st_ino)


def check_library(path: str | os.PathLike) -> None:
    """Refuse a library that cannot be loaded safely: a truncated or overwritten shared object
    is mapped by dlopen and then kills the process with SIGBUS when a missing page is touched,
    so its size and sha256 must match what the build recorded in build.json beside it (when
    there is one), and it must at least be an ELF file."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise CosimError(f"{p}: cannot read the co-simulation library ({e})") from None
    if magic != b"\x7fELF":
        raise CosimError(f"{p}: not an ELF shared object (first bytes {magic!r}): a damaged cache entry; "
                         f"rebuild it (python -m dnpu.runtime.cosim build --rebuild)")
    meta_path = p.parent / META_NAME
    if not meta_path.is_file():
        return
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as e:
        raise CosimError(f"{meta_path}: unreadable build record ({e}): a damaged cache entry") from None
    want_size, want_sha = meta.get("lib_size"), meta.get("lib_sha256")
    if want_size is None or want_sha is None:
        raise CosimError(f"{meta_path}: no lib_size / lib_sha256 recorded, so {p.name} cannot be checked "
                         f"before it is loaded: rebuild it (python -m dnpu.runtime.cosim build --rebuild)")
    size, sha = library_digest(p)
    if size != want_size or sha != want_sha:
        raise CosimError(f"{p}: {size} bytes with sha256 {sha[:16]}..., but the build recorded {want_size} "
                         f"bytes with sha256 {str(want_sha)[:16]}...: the library was truncated or "
                         f"overwritten after its build; loading it could crash the process (SIGBUS). "
                         f"Rebuild it (python -m dnpu.runtime.cosim build --rebuild)")


def load_library(path: str, sigs: dict, abi_fn: str, abi_version: int, what: str) -> ctypes.CDLL:
    """A checked model library with the C signatures sigs declared, refused unless its
    abi_fn() returns abi_version (what: the library's kind, for the message)."""
    check_library(path)
    lib = ctypes.CDLL(path)                  # RTLD_LOCAL: several profiles' models can coexist
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    abi = getattr(lib, abi_fn)()
    if abi != abi_version:
        raise CosimError(f"{path}: {what} ABI {abi}, this binding speaks {abi_version}; rebuild it")
    return lib


@functools.lru_cache(maxsize=None)
def _load(path: str) -> ctypes.CDLL:
    return load_library(path, _SIGS, "dnpu_cosim_abi_version", ABI_VERSION, "harness")


class Model:
    """One dnpu_top model with its DRAM model; methods are one host transaction each."""

    def __init__(self, lib_path: str | os.PathLike, clock_period_ps: int = 10_000) -> None:
        self._lock = threading.RLock()
        self._h = None
        self.lib_path = str(lib_path)
        self._lib = _load(self.lib_path)
        h = self._lib.dnpu_cosim_create(int(clock_period_ps))
        if not h:
            raise CosimError(self._lib.dnpu_cosim_error(None).decode())
        self._h = h
        self.build_info = self._lib.dnpu_cosim_build_info().decode()
        self.beat_bytes = self.get("beat_bytes")

    # ---- plumbing ----------------------------------------------------------------------
    def _handle(self):
        if self._h is None:
            raise CosimError("the co-simulation model is closed")
        return self._h

    def _fail(self, what: str) -> CosimError:
        return CosimError(f"{what}: {self._lib.dnpu_cosim_error(self._h).decode()}")

    @_serialized
    def close(self) -> None:
        if getattr(self, "_h", None) is not None:
            self._lib.dnpu_cosim_destroy(self._h)
            self._h = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # ---- knobs and statistics ----------------------------------------------------------
    @_serialized
    def set(self, name: str, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not I64_MIN <= value <= I64_MAX:
            raise CosimError(f"set({name!r}, {value!r}): a knob value is a 64-bit signed integer")
        if self._lib.dnpu_cosim_set(self._handle(), name.encode(), int(value)) < 0:
            raise self._fail(f"set({name!r}, {value})")

    @_serialized
    def get(self, name: str) -> int:
        v = ctypes.c_int64()
        if self._lib.dnpu_cosim_get(self._handle(), name.encode(), ctypes.byref(v)) < 0:
            raise self._fail(f"get({name!r})")
        return v.value

    @property
    def cycle(self) -> int:
        return self.get("cycle")

    # ---- clock -------------------------------------------------------------------------
    @_serialized
    def reset(self, cycles: int = 4) -> None:
        if self._lib.dnpu_cosim_reset(self._handle(), int(cycles)) < 0:
            raise self._fail("reset")

    @_serialized
    def step(self, cycles: int) -> None:
        if self._lib.dnpu_cosim_step(self._handle(), _u64("step cycles", cycles)) < 0:
            raise self._fail("step")

    # ---- AXI4-Lite ---------------------------------------------------------------------
    @_serialized
    def csr_write(self, offset: int, value: int) -> None:
        r = self._lib.dnpu_cosim_csr_write(self._handle(), int(offset), int(value) & 0xFFFFFFFF)
        if r < 0:
            raise self._fail(f"csr_write(0x{offset:03X})")
        if r != 0:
            raise CosimError(f"csr_write(0x{offset:03X}): BRESP {r} (not OKAY)")

    @_serialized
    def csr_read(self, offset: int) -> int:
        v = ctypes.c_uint32()
        r = self._lib.dnpu_cosim_csr_read(self._handle(), int(offset), ctypes.byref(v))
        if r < 0:
            raise self._fail(f"csr_read(0x{offset:03X})")
        if r != 0:
            raise CosimError(f"csr_read(0x{offset:03X}): RRESP {r} (not OKAY)")
        return v.value

    # ---- DRAM model ----------------------------------------------------------------------
    @_serialized
    def map(self, addr: int, nbytes: int) -> None:
        if self._lib.dnpu_cosim_map(self._handle(), int(addr), int(nbytes)) < 0:
            raise self._fail("map")

    @_serialized
    def write(self, addr: int, data) -> None:
        mv = memoryview(data).cast("B") if not isinstance(data, bytes) else data
        buf = bytes(mv) if not isinstance(mv, bytes) else mv
        if self._lib.dnpu_cosim_mem_write(self._handle(), int(addr), buf, len(buf)) < 0:
            raise self._fail("memory write")

    @_serialized
    def read(self, addr: int, n: int) -> bytes:
        buf = ctypes.create_string_buffer(int(n))
        if self._lib.dnpu_cosim_mem_read(self._handle(), int(addr), buf, int(n)) < 0:
            raise self._fail("memory read")
        return buf.raw

    # ---- runs and waveforms ----------------------------------------------------------------
    @_serialized
    def run(self, ctrl: int, budget: int, watchdog: int = 0) -> RunStats:
        """Write ctrl to CTRL (if nonzero) and clock until the program ends, `budget` cycles
        (1 .. 2**64 - 1) pass, or `watchdog` cycles (0 = off) pass without progress."""
        budget, watchdog = _u64("budget", budget, 1), _u64("watchdog", watchdog)
        res = RunStats()
        if self._lib.dnpu_cosim_run(self._handle(), int(ctrl), budget, watchdog, ctypes.byref(res)) < 0:
            raise self._fail("run")
        return res

    @_serialized
    def wave_open(self, path: str | os.PathLike, from_cycle: int = 0) -> None:
        from_cycle = _u64("wave_open from_cycle", from_cycle)
        if self._lib.dnpu_cosim_wave_open(self._handle(), os.fsencode(path), from_cycle) < 0:
            raise self._fail("wave_open")

    @_serialized
    def wave_close(self) -> None:
        if self._lib.dnpu_cosim_wave_close(self._handle()) < 0:
            raise self._fail("wave_close")

    # ---- retire trace --------------------------------------------------------------------
    @_serialized
    def trace_start(self, capacity: int) -> None:
        """Clear the capture buffer and record the next `capacity` retires (later ones are
        counted in get("trace_dropped")); 0 switches capture off and keeps the buffer."""
        if not 0 <= int(capacity) <= TRACE_MAX:
            raise CosimError(f"trace_start({capacity}): capacity must be in [0, {TRACE_MAX}]")
        if self._lib.dnpu_cosim_trace_start(self._handle(), int(capacity)) < 0:
            raise self._fail("trace_start")

    @_serialized
    def trace_read(self) -> np.ndarray:
        """The captured retires, a structured array of RETIRE_DTYPE (cycle, pc, word, x_we,
        x_idx, x_data, f_we, f_idx, f_data)."""
        n = self.get("trace_count")
        out = np.zeros(n, RETIRE_DTYPE)
        if n:
            got = self._lib.dnpu_cosim_trace_read(self._handle(), 0, out.ctypes.data, n)
            if got < 0:
                raise self._fail("trace_read")
            if got != n:
                raise CosimError(f"trace_read: {got} entries copied, {n} held")
        return out

    @_serialized
    def describe(self) -> str:
        n = self._lib.dnpu_cosim_describe(self._handle(), None, 0)
        buf = ctypes.create_string_buffer(n + 1)
        self._lib.dnpu_cosim_describe(self._handle(), buf, n + 1)
        return buf.value.decode(errors="replace")
