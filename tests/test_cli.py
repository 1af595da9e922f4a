import argparse
import io
import json
import struct
import subprocess
import sys

import pytest

from dnpu import cli
from dnpu.cli.common import UsageError, atomic_output, progress_bar, write_json
from dnpu.spec import isa, mx

from conftest import dnpu_cli


def run(*args, **kw):
    return subprocess.run(dnpu_cli() + list(args), capture_output=True, text=True, **kw)


def test_asm_disasm_round_trip_through_the_cli(tmp_path, repo):
    src = repo / "examples" / "argmax_rows.s"
    binary = tmp_path / "prog.bin"
    r = run("asm", str(src), "-o", str(binary))
    assert r.returncode == 0, r.stderr
    data = binary.read_bytes()
    assert data == isa.assemble(src.read_text())
    assert len(data) // 4 == 16
    r = run("disasm", str(binary), "--bare")
    assert r.returncode == 0, r.stderr
    again = tmp_path / "again.s"
    again.write_text(r.stdout)
    r = run("asm", str(again), "-o", str(tmp_path / "again.bin"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "again.bin").read_bytes() == data
    # The loop body ends right before the `done:` label: five instructions.
    assert "C_LOOP x3, 5" in (tmp_path / "again.s").read_text()


def test_asm_error_names_file_line_and_column(tmp_path):
    src = tmp_path / "bad.s"
    src.write_text("C_NOP\n  S_ADDI x1, x2, f3\n")
    r = run("asm", str(src))
    assert r.returncode == 2
    assert f"{src}:2:" in r.stderr
    assert "Traceback" not in r.stderr


def test_disasm_unknown_opcode_is_an_error_not_a_guess(tmp_path):
    f = tmp_path / "junk.bin"
    f.write_bytes(struct.pack("<2I", isa.encode("C_NOP"), 0x7F))
    r = run("disasm", str(f))
    assert r.returncode == 2
    assert "0x0000007f" in r.stderr.lower()
    assert "C_NOP" not in r.stdout


def test_isa_mx_format_enum_names_the_codec_formats():
    assert set(isa.MXFMT) == set(mx.FORMATS)


# --------------------------------------------------------------------------- the command line's shared rules

COMMANDS = {"info", "rtl", "asm", "disasm", "compile", "generate", "check-sampling", "check-lockstep", "check-perf",
            "check-generate", "eval", "project", "bench", "board"}


def test_every_command_is_registered_once_by_its_module():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == COMMANDS
    assert all(callable(m.register) for m in cli.MODULES)


@pytest.mark.parametrize("argv,match", [
    (["info", "--config", "nope"], "unknown hardware profile"),
    (["rtl", "--top", "nope"], "invalid choice"),
    (["asm", "/nonexistent/prog.s"], "cannot read /nonexistent/prog.s"),
    (["disasm", "prog.bin", "--base", "zz"], "invalid address value"),
    (["project", "--B", "0", "--no-gpu"], "must be a positive int"),
    (["check-sampling", "--cases", "1", "--fmt", "nope"], "unknown MX element format"),
    ([], "required: COMMAND"),
])
def test_a_user_mistake_is_one_line_and_exit_status_2(argv, match):
    r = run(*argv)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dnpu") and match in lines[0], r.stderr


def test_outputs_are_written_whole_or_not_at_all(tmp_path):
    out = tmp_path / "r.json"
    write_json(out, {"a": [1, 2]})
    assert json.loads(out.read_text()) == {"a": [1, 2]}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]          # no temporary left beside it
    with pytest.raises(UsageError, match="cannot write"):
        write_json(tmp_path / "missing" / "r.json", {})
    with pytest.raises(RuntimeError), atomic_output(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("the writer failed")
    assert json.loads(out.read_text()) == {"a": [1, 2]}                # the old file stands
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with progress_bar("x") as bar:
        assert bar is None                                             # a log or a pipe: no bar
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    with progress_bar("x", quiet=True) as bar:
        assert bar is None
    with progress_bar("check-x", unit="case") as bar:
        for i in range(1, 4):
            bar(i, 3, f"at {i}")
    text = term.getvalue()
    assert "check-x" in text and "3/3" in text and "at 3" in text


def test_python_m_dnpu_cli():
    r = subprocess.run([sys.executable, "-m", "dnpu.cli", "info", "--config", "sim"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("profile sim"), r.stderr
