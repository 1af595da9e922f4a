"""The RTL a build of dnpu_top (or of the serial top, dnpu_uart_top) reads: its source files,
include folders and the macro that picks a profile's header. Shared by the Yosys estimate
(scripts/synth_report.py) and the generated Vivado build (emit_vivado), so that both
synthesize the same design."""

from __future__ import annotations

from pathlib import Path

from dnpu.codegen.emit_verilog import RTL_GEN, profile_define  # noqa: F401 (the RTL builds' name for it)
from dnpu.codegen.tables import default_root

RTL_DIR = "hw/rtl"
RTL_TOP = "dnpu_top"
# The bare-board top: dnpu_top with a UART bridge and on-chip memory instead of a Zynq PS.
# The files only it reads stay out of dnpu_top's builds.
SERIAL_TOP = "dnpu_uart_top"
SERIAL_ONLY = (f"{RTL_DIR}/uart/", f"{RTL_DIR}/mem/dnpu_axi_ram.v", f"{RTL_DIR}/top/{SERIAL_TOP}.v")
# `include folders: the generated headers (profile, ISA, CSR) and the shared function bodies
RTL_INCLUDE_DIRS = (RTL_GEN, f"{RTL_DIR}/common")


def rtl_sources(root: Path | str | None = None, top: str = RTL_TOP) -> list[str]:
    """The synthesizable RTL files (test-bench tops excluded) a build of top (RTL_TOP or
    SERIAL_TOP) reads, repo-relative, sorted."""
    if top not in (RTL_TOP, SERIAL_TOP):
        raise ValueError(f"unknown RTL top {top!r}: {RTL_TOP} or {SERIAL_TOP}")
    root = Path(root) if root is not None else default_root()
    files = sorted(p.relative_to(root).as_posix() for p in (root / RTL_DIR).rglob("*.v") if "_tb" not in p.stem)
    return [f for f in files if top == SERIAL_TOP or not f.startswith(SERIAL_ONLY)]
