"""Build a board's bitstream with Vivado from the generated bitstreams/<board>/build.tcl.

    python scripts/vivado_build.py --board pynq-z2 [--out DIR] [--jobs N]     (make bitstream BOARD=...)

Runs `vivado -mode batch` on the script (Vivado must be on PATH: source its settings64.sh),
then writes manifest.json beside dnpu.bit and the full dnpu.hwh in the output folder (default
bitstreams/<board>/build/, not committed): the profile, its config hash, the ISA version, the
git revision, the Vivado version, the utilization and the worst negative slack, read from
Vivado's reports. Exit 2 when something the build needs is missing (Vivado, the board, an
up-to-date build.tcl), 1 when Vivado fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host"))

from dnpu.cli.common import atomic_output  # noqa: E402
from dnpu.codegen import driver  # noqa: E402
from dnpu.codegen.emit_hwh import PYNQMETADATA_ACT_FREQ, pl_clock0, ps_family  # noqa: E402
from dnpu.codegen.emit_vivado import (BIT_FILE, BUILD_DIR, HWH_FILE, TIMING_REPORT, UTIL_REPORT,  # noqa: E402
                                      XSA_FILE)
from dnpu.codegen.tables import load_tables  # noqa: E402
from dnpu.spec import resources  # noqa: E402

MANIFEST = resources.BOARD_MANIFEST
# Rows of report_utilization's tables, by resource: 7-series names, then UltraScale+ ones.
UTIL_ROWS = {"lut": ("Slice LUTs", "CLB LUTs"), "ff": ("Slice Registers", "CLB Registers"),
             "bram36": ("Block RAM Tile",), "dsp": ("DSPs",)}


class Missing(Exception):
    """Something the build needs is not there (exit 2)."""


def parse_utilization(text: str) -> dict[str, dict[str, float]]:
    """Used and available of each UTIL_ROWS resource from a report_utilization file: the first
    row of that name in a table whose header has "Site Type", "Used" and "Available"."""
    out: dict[str, dict[str, float]] = {}
    cols = None
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if "Site Type" in cells and "Used" in cells and "Available" in cells:
            cols = (cells.index("Used"), cells.index("Available"))
            continue
        if cols is None or len(cells) <= max(cols):
            continue
        for key, names in UTIL_ROWS.items():
            if key not in out and cells[0] in names:
                try:
                    out[key] = {"used": float(cells[cols[0]]), "available": float(cells[cols[1]])}
                except ValueError:
                    pass
    return out


def parse_timing_summary(text: str) -> dict[str, float | None]:
    """WNS and WHS (ns) from the Design Timing Summary table of a report_timing_summary file
    (None where Vivado prints no number, e.g. a design without constrained paths)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        heads = line.split()
        if heads[:2] == ["WNS(ns)", "TNS(ns)"]:
            vals = next((ln.split() for ln in lines[i + 1:] if ln.strip() and not set(ln.strip()) <= {"-", " "}),
                        [])
            # the header's names have spaces ("TNS Failing Endpoints"): take the columns by
            # their order, WNS first and WHS fifth
            def num(k):
                try:
                    return float(vals[k])
                except (IndexError, ValueError):
                    return None
            return {"wns_ns": num(0), "whs_ns": num(4)}
    raise ValueError("no Design Timing Summary (WNS(ns) TNS(ns) ...) in the timing report")


def parse_vivado_version(log: str) -> str | None:
    """"2022.1" from the banner of a Vivado log ("Vivado v2022.1 (64-bit)")."""
    m = re.search(r"Vivado v(\d{4}\.\d+(?:\.\d+)?)", log)
    return m.group(1) if m else None


def complete_hwh(text: str) -> tuple[str, list[str]]:
    """Vivado's .hwh with each Zynq-7000 PL clock's achieved rate also under the name PYNQ 4's
    pynqmetadata reads on every PS (PYNQMETADATA_ACT_FREQ; without it Overlay.download programs
    the PL clock with clk_mhz=None, see bitstreams/README.md), placed after the PS's own
    parameter so the rest of the file stays as Vivado wrote it. Returns the names added."""
    added = []

    def add(m: re.Match) -> str:
        name = PYNQMETADATA_ACT_FREQ.format(i=m.group(3))
        if f'NAME="{name}"' in text or name in added:
            return m.group(0)
        added.append(name)
        return f'{m.group(0)}\n{m.group(1)}<PARAMETER NAME="{name}" VALUE="{m.group(4)}"/>'
    out = re.sub(r'^([ \t]*)(<PARAMETER NAME="PCW_ACT_FPGA(\d)_PERIPHERAL_FREQMHZ" VALUE="([^"]*)"/>)',
                 add, text, flags=re.M)
    return out, added


def git_revision() -> str:
    """HEAD's hash, with "-dirty" when the tree has changes (unknown outside a git checkout)."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("-dirty" if dirty else "")


def manifest(board: str, out: Path, vivado_version: str | None) -> dict:
    t = load_tables(REPO)
    p = t.profile(board)
    _, ps = ps_family(p)
    timing = parse_timing_summary((out / TIMING_REPORT).read_text(errors="replace"))
    wns, whs = timing["wns_ns"], timing["whs_ns"]
    files = {f: hashlib.sha256((out / f).read_bytes()).hexdigest()
             for f in (BIT_FILE, HWH_FILE, XSA_FILE) if (out / f).is_file()}
    return {"profile": board, "part": p.flat["PROFILE_PART"], "config_hash": p.config_hash,
            "config_hash32": f"0x{p.config_hash32:08X}", "isa_version": f"{t.isa.version[0]}.{t.isa.version[1]}",
            "isa_version_word": f"0x{t.isa.version_word:08X}", "git_revision": git_revision(),
            "vivado_version": vivado_version, "pl_clock_mhz": pl_clock0(p, ps)[2],
            "utilization": parse_utilization((out / UTIL_REPORT).read_text(errors="replace")),
            "wns_ns": wns, "whs_ns": whs,
            "timing_met": wns is not None and whs is not None and wns >= 0 and whs >= 0,
            "sha256": files}


def build(board: str, out: Path | None, jobs: int) -> int:
    tcl = REPO / "bitstreams" / board / "build.tcl"
    if not tcl.is_file():
        boards = sorted(d.name for d in (REPO / "bitstreams").iterdir() if (d / "build.tcl").is_file())
        raise Missing(f"no bitstreams/{board}/build.tcl (boards: {', '.join(boards)}; `make generate` writes them)")
    if driver.generate(REPO).get(f"bitstreams/{board}/build.tcl") != tcl.read_text():
        raise Missing(f"bitstreams/{board}/build.tcl is stale: run `make generate`")
    vivado = shutil.which("vivado")
    if vivado is None:
        raise Missing("Vivado is not on PATH (no `vivado`): install Vivado and source its settings64.sh")
    out = (out or tcl.parent / BUILD_DIR).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)      # a failed build leaves no manifest of an older one
    log = out / "vivado.log"
    cmd = [vivado, "-mode", "batch", "-nojournal", "-notrace", "-log", str(log), "-source", str(tcl),
           "-tclargs", str(out), str(jobs)]
    print(f"vivado_build: {' '.join(cmd)}", flush=True)
    r = subprocess.run(cmd, cwd=out)             # Vivado leaves .Xil/ and friends in its cwd
    if r.returncode != 0:
        print(f"vivado_build: Vivado failed (exit {r.returncode}); see {log}", file=sys.stderr)
        return 1
    for f in (BIT_FILE, HWH_FILE, UTIL_REPORT, TIMING_REPORT):
        if not (out / f).is_file():
            print(f"vivado_build: Vivado exited 0 but wrote no {out / f}", file=sys.stderr)
            return 1
    version = parse_vivado_version(log.read_text(errors="replace")) if log.is_file() else None
    hwh, added = complete_hwh((out / HWH_FILE).read_text())
    if added:
        with atomic_output(out / HWH_FILE) as tmp:
            tmp.write_text(hwh)
    m = manifest(board, out, version)
    m["hwh_added_parameters"] = added
    with atomic_output(out / MANIFEST) as tmp:
        tmp.write_text(json.dumps(m, indent=2) + "\n")
    print(f"vivado_build: {board}: {out / BIT_FILE}, WNS {m['wns_ns']} ns, manifest {out / MANIFEST}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", required=True, help="FPGA profile (pynq-z2, zcu104)")
    ap.add_argument("--out", type=Path, default=None, help=f"output folder (default bitstreams/<board>/{BUILD_DIR})")
    ap.add_argument("--jobs", type=int, default=4, help="Vivado run jobs (default 4)")
    args = ap.parse_args(argv)
    try:
        return build(args.board, args.out, args.jobs)
    except Missing as e:
        print(f"vivado_build: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
