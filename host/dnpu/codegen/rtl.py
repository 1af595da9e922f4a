"""The RTL a build of dnpu_top reads: its source files, include folders and the macro that
picks a profile's header. Shared by the Yosys estimate (scripts/synth_report.py) and the
generated Vivado build (emit_vivado), so that both synthesize the same design."""

from __future__ import annotations

from pathlib import Path

from dnpu.codegen.emit_verilog import RTL_GEN
from dnpu.codegen.tables import default_root

RTL_DIR = "hw/rtl"
RTL_TOP = "dnpu_top"
# `include folders: the generated headers (profile, ISA, CSR) and the shared function bodies
RTL_INCLUDE_DIRS = (RTL_GEN, f"{RTL_DIR}/common")


def rtl_sources(root: Path | str | None = None) -> list[str]:
    """Every synthesizable RTL file (test-bench tops excluded), repo-relative, sorted."""
    root = Path(root) if root is not None else default_root()
    files = sorted(p for p in (root / RTL_DIR).rglob("*.v") if "_tb" not in p.stem)
    return [p.relative_to(root).as_posix() for p in files]


def profile_define(profile: str) -> str:
    """The macro dnpu_top.v tests to include a profile's generated header."""
    return "DNPU_PROFILE_" + profile.upper().replace("-", "_")
