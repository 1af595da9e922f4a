"""`dnpu rtl`: the file list a vendor tool builds a top from is complete (Verilator lints
exactly it) and is dnpu.codegen.rtl's."""

from __future__ import annotations

import json
import subprocess

import pytest

from dnpu.cli import main
from dnpu.codegen import rtl
from dnpu.runtime.tools import find_tool


def _rtl(capsys, *args) -> dict:
    assert main(["rtl", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_lists_are_codegen_rtls(capsys):
    root = rtl.default_root()
    for top in (rtl.RTL_TOP, rtl.SERIAL_TOP):
        got = _rtl(capsys, "--top", top, "--config", "pynq-z2")
        assert got["sources"] == [str(root / f) for f in rtl.rtl_sources(root, top)]
        assert got["define"] == "DNPU_PROFILE_PYNQ_Z2"
    serial_only = set(_rtl(capsys, "--top", rtl.SERIAL_TOP)["sources"]) - set(_rtl(capsys)["sources"])
    assert serial_only and all(any(s in f for s in rtl.SERIAL_ONLY) for f in serial_only)


def test_text_form_and_bad_profile(capsys):
    assert main(["rtl", "--config", "ecp5", "--top", "dnpu_uart_top"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "DNPU_PROFILE_ECP5" in lines[0] and lines[1].startswith("+incdir+")
    assert any(line.endswith("dnpu_uart_top.v") for line in lines)
    assert main(["rtl", "--config", "no-such-board"]) == 2
    assert "unknown hardware profile" in capsys.readouterr().err


@pytest.mark.rtl
def test_verilator_lints_exactly_the_list(capsys):
    exe = find_tool("verilator")
    if exe is None:
        pytest.skip("no verilator")
    got = _rtl(capsys, "--top", rtl.SERIAL_TOP, "--config", "ecp5")
    cmd = [exe, "--lint-only", "-Wno-fatal", "-Wno-lint", "-Wno-style", f"-D{got['define']}",
           "--top-module", got["top"], *(f"-I{d}" for d in got["include_dirs"]), *got["sources"]]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
