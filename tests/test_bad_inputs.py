"""Broken input files are one error naming the file: in the library (its documented error
type) and on the command line (one line on stderr, exit status 2, no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import dnpu.runtime as rt
from dnpu import codegen
from dnpu.runtime import DeviceError

from conftest import REPO, dnpu_cli, pynq_standin_module

STANDIN = REPO / "tests" / "pynq_standin"


def _one_line_error(r: subprocess.CompletedProcess, *fragments: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1, r.stderr
    for f in fragments:
        assert f in r.stderr, (f, r.stderr)


def truncated_board(root):
    d = root / "sim"
    d.mkdir(parents=True)
    text = codegen.hwh_text("sim", family="xc7z")
    (d / "dnpu.hwh").write_text(text[: len(text) // 2])
    (d / "dnpu.bit").write_bytes(b"stand-in bitstream\n")
    return d / "dnpu.hwh"


# ---- assembler ------------------------------------------------------------------------------

def test_asm_of_a_non_utf8_file(tmp_path):
    src = tmp_path / "bad.s"
    src.write_bytes(b"C_HALT\n\xff\xfe # not UTF-8\n")
    r = subprocess.run(dnpu_cli() + ["asm", str(src)], capture_output=True, text=True)
    _one_line_error(r, f"{src}: not an assembly text file (not UTF-8 at byte 7)")
    assert not (tmp_path / "bad.bin").exists()


@pytest.mark.parametrize("text", ["", "# only a comment\n\n   ; and another\n"])
def test_asm_of_an_empty_source(tmp_path, text):
    src = tmp_path / "empty.s"
    src.write_text(text)
    r = subprocess.run(dnpu_cli() + ["asm", str(src)], capture_output=True, text=True)
    _one_line_error(r, f"{src}:1:1: no instructions: a program needs at least one")
    assert not (tmp_path / "empty.bin").exists()


# ---- .hwh --------------------------------------------------------------------------------------

def test_truncated_hwh_is_a_value_error_naming_the_file(tmp_path):
    hwh = truncated_board(tmp_path)
    with pytest.raises(ValueError, match=rf"^{hwh}: not a well-formed \.hwh \(XML\): "):
        pynq_standin_module().parse_hwh(hwh)


def test_truncated_hwh_is_an_attach_error(tmp_path, monkeypatch):
    hwh = truncated_board(tmp_path / "bitstreams")
    monkeypatch.syspath_prepend(str(STANDIN))
    monkeypatch.delitem(sys.modules, "pynq", raising=False)
    monkeypatch.setenv("DNPU_BITSTREAM_DIR", str(tmp_path / "bitstreams"))
    try:
        with pytest.raises(DeviceError) as ei:
            rt.open("pynq", config="sim")
    finally:
        sys.modules.pop("pynq", None)
    assert ei.value.reason == "attach"
    assert str(ei.value).startswith(f"{hwh}: pynq cannot load the overlay dnpu.bit with this hardware handoff "
                                    "file (ValueError: not a well-formed .hwh (XML)")


def test_cli_with_a_truncated_hwh(tmp_path):
    hwh = truncated_board(tmp_path / "bitstreams")
    env = dict(os.environ, DNPU_BITSTREAM_DIR=str(tmp_path / "bitstreams"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(STANDIN), os.environ.get("PYTHONPATH")])))
    r = subprocess.run(dnpu_cli() + ["check-sampling", "--backend", "pynq", "--config", "sim", "--cases", "1"],
                       capture_output=True, text=True, env=env, timeout=300)
    _one_line_error(r, f"dnpu check-sampling: error: {hwh}: pynq cannot load the overlay")
