"""docs/BOARD.md stays true to the code: every dnpu command it shows parses with today's
options, and the files, make targets and extras it names exist."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest

from dnpu.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "BOARD.md").read_text()
# "$ dnpu ..." or "root@pynq:~# dnpu ..." in the code blocks, less any pipe or redirection
COMMANDS = [m.group(1) for m in re.finditer(r"^(?:\$|\S+[#$]) (dnpu [^|>\n]*)", DOC, re.M)]


def test_the_doc_shows_commands():
    assert len(COMMANDS) >= 8
    assert {"selftest", "generate", "rtl", "info"} <= {w for c in COMMANDS for w in c.split()}


@pytest.mark.parametrize("line", COMMANDS)
def test_each_command_parses(line):
    argv = shlex.split(line, comments=True)[1:]
    build_parser().parse_args(argv)          # an unknown option exits 2 (SystemExit) and fails here


def test_named_things_exist():
    for rel in re.findall(r"`((?:docs|bitstreams|hw|tests|models)/[\w./-]+)`", DOC):
        if "/build" not in rel:                 # build outputs are not in the repository
            assert (REPO / rel.rstrip("/")).exists(), rel
    make = (REPO / "Makefile").read_text()
    for target in re.findall(r"make (\w[\w-]*)", DOC):
        assert re.search(rf"^{re.escape(target)}:", make, re.M), f"make {target}"
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra in re.findall(r"whl\[(\w+)\]", DOC):
        assert extra in extras, extra
    for mod in re.findall(r"python -m ([\w.]+)", DOC):
        assert (REPO / "host" / Path(*mod.split("."))).with_suffix("").exists(), mod
