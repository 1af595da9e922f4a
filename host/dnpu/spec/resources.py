"""Where the package's data files are: the hardware tables (hw/), the RTL and the
co-simulation harness it builds from (hw/rtl/, cosim/), the shipped models (models/) and
the board files (bitstreams/).

Two layouts, one answer (`data_root`): in the source tree (a checkout, or the package
installed editable from it) the data sit beside host/ at the repository's root; in an
installed wheel the build copied them into the package as ``dnpu/_data/`` (setup.py), in
the same layout, and `importlib.resources` finds them there. Every caller joins the same
relative paths (``hw/config``, ``models/tiny-add``, ...) to `data_root()`, so the two
layouts cannot drift apart.
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path

__all__ = ["DATA_PACKAGE_DIR", "DATA_DIRS", "BOARD_MANIFEST", "ResourceError", "data_root", "source_root", "installed_root"]

# The package's folder that holds the data in a wheel (setup.py copies DATA_DIRS into it).
DATA_PACKAGE_DIR = "_data"
# The top-level folders of the repository the package needs at run time.
DATA_DIRS = ("hw", "cosim", "models", "bitstreams")
# What a board build (scripts/vivado_build.py, scripts/ecp5_build.py) writes beside dnpu.bit
# and the runtime checks before it loads one: profile, config hash, ISA version, tools.
BOARD_MANIFEST = "manifest.json"
# A file every layout has: how a candidate root is recognised.
_MARKER = Path("hw") / "isa.toml"


class ResourceError(RuntimeError):
    """Neither layout holds the data: a broken install."""


def source_root() -> Path | None:
    """The repository root when this module runs from a source tree (host/dnpu/spec/), else None."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / _MARKER).is_file() and (root / "host" / "dnpu").is_dir() else None


def installed_root() -> Path | None:
    """``dnpu/_data`` of an installed wheel, else None (a source tree has none)."""
    try:
        d = importlib.resources.files("dnpu") / DATA_PACKAGE_DIR
    except ModuleNotFoundError:
        return None
    # A wheel is installed unpacked: the traversable is a directory on disk (a zip import
    # would have no path the compilers and Verilator could read).
    p = Path(str(d))
    return p if (p / _MARKER).is_file() else None


@functools.cache
def data_root() -> Path:
    """The folder holding hw/, cosim/, models/ and bitstreams/: the installed package's data
    when present, else the source tree's root. ResourceError when neither has them."""
    root = installed_root() or source_root()
    if root is None:
        raise ResourceError(f"dnpu's data files are missing: neither {Path(__file__).resolve().parents[1]}/"
                            f"{DATA_PACKAGE_DIR} nor a source tree holds {_MARKER}; reinstall the package "
                            f"(pip install dnpu) or run from a checkout")
    return root
