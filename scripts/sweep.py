#!/usr/bin/env python3
"""Design-space sweep of the sampling step with the analytical model (dnpu.perf.analytical).

Sweeps VLEN, memory bandwidth (memory.bytes_per_cycle) and the block shape (B, L) on
in-memory variants of a base profile (default asic-2048: 1 GHz, lanes = VLEN), both flows,
both memory-port variants (`rtl`: the RTL's one AXI4 port; `ideal`: a port and MX decoder at
memory.bytes_per_cycle), in parallel over the machine's cores; writes a CSV and, when
matplotlib is installed, a plot of latency against VLEN, one line per bandwidth.

    scripts/venv-run python scripts/sweep.py --out sweep/            # the default grid
    scripts/venv-run python scripts/sweep.py --vlen 512,2048 --bw 64,1024 --shapes 16x32 \
        --V 126464 --out /tmp/s --jobs 2
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

from dnpu.compiler import FLOWS_FUSED_FIRST
from dnpu.perf.sweep import FIELDS, sweep


def write_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def plot(rows: list[dict], path: Path, shape: tuple[int, int]) -> bool:
    """Latency (ms) against VLEN, one line per bandwidth (ideal port): fused and phased panels,
    the RTL port (which no bandwidth above one beat a cycle helps) dashed. False when matplotlib
    is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    B, L = shape
    ok = [r for r in rows if not r.get("error") and r["B"] == B and r["L"] == L]
    flows = sorted({r["flow"] for r in ok})
    fig, axes = plt.subplots(1, max(1, len(flows)), figsize=(6 * max(1, len(flows)), 4.5), squeeze=False)
    bws = sorted({r["bytes_per_cycle"] for r in ok})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, flow in zip(axes[0], flows):
        for i, bw in enumerate(bws):
            pts = sorted((r["vlen"], r["ms"]) for r in ok
                         if r["flow"] == flow and r["bytes_per_cycle"] == bw and r["port"] == "ideal")
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", marker="o", ms=3,
                        color=colors[i % len(colors)], label=f"{bw} B/cycle")
        # The RTL's one AXI4 port caps every bandwidth above a beat a cycle: one line, the highest.
        pts = sorted((r["vlen"], r["ms"]) for r in ok
                     if r["flow"] == flow and r["bytes_per_cycle"] == bws[-1] and r["port"] == "rtl")
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "--", marker="x", ms=4, color="0.3",
                    label=f"RTL AXI port ({bws[-1]} B/cycle memory)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("VLEN (lanes = VLEN)")
        ax.set_ylabel("sampling step latency (ms)")
        ax.set_title(f"{flow} flow, B={B} L={L} V={ok[0]['V'] if ok else '?'}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def _ints(s: str) -> list[int]:
    return [int(v) for v in s.split(",") if v.strip()]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", default="asic-2048", help="base profile (default asic-2048)")
    p.add_argument("--vlen", default="256,512,1024,2048,4096", help="VLEN values (lanes = VLEN)")
    p.add_argument("--bw", default="64,256,1024,4096", help="memory.bytes_per_cycle values")
    p.add_argument("--shapes", default="16x32,8x32,16x64,1x32", help="block shapes BxL")
    p.add_argument("--V", type=int, default=126464, help="vocabulary (padded per VLEN as the compiler needs)")
    p.add_argument("--modes", default="topk", help="commit modes")
    p.add_argument("--flows", default=",".join(FLOWS_FUSED_FIRST), help="flows")
    p.add_argument("--ports", default="ideal,rtl", help="memory-port variants")
    p.add_argument("--fmt", default="e4m3")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: every core)")
    p.add_argument("--out", default="sweep", help="output folder (sweep.csv, sweep.png)")
    a = p.parse_args(argv)
    shapes = [tuple(int(v) for v in s.lower().split("x")) for s in a.shapes.split(",") if s.strip()]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = sweep(a.base, _ints(a.vlen), _ints(a.bw), shapes, a.V, tuple(a.modes.split(",")),
                 tuple(a.flows.split(",")), tuple(a.ports.split(",")), a.fmt, a.jobs)
    write_csv(rows, out / "sweep.csv")
    plotted = plot(rows, out / "sweep.png", shapes[0])
    bad = sum(1 for r in rows if r.get("error"))
    print(f"{len(rows)} points ({bad} not compilable) in {time.perf_counter() - t0:.1f} s -> {out / 'sweep.csv'}"
          + (f", {out / 'sweep.png'}" if plotted else " (matplotlib not installed: no plot)"))
    B, L = shapes[0]
    print(f"latency (ms), B={B} L={L}, fused flow, ideal port / rtl port:")
    bws = sorted({r["bytes_per_cycle"] for r in rows})
    print("  VLEN " + "".join(f"{str(bw) + ' B/c':>22}" for bw in bws))
    for v in sorted({r["vlen"] for r in rows}):
        cells = []
        for bw in bws:
            got = {r["port"]: r for r in rows if r["vlen"] == v and r["bytes_per_cycle"] == bw and r["B"] == B
                   and r["L"] == L and r["flow"] == "fused" and not r.get("error")}
            cells.append(" / ".join(f"{got[pt]['ms']:.3f}" if pt in got else "-" for pt in ("ideal", "rtl")))
        print(f"  {v:>4} " + "".join(f"{c:>22}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
