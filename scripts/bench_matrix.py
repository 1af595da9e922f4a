#!/usr/bin/env python3
"""The matrix unit's speed on the RTL: cycles of one M_MM per shape, against the array's
peak and the memory's line rate, beside the analytical model's cycles.

    scripts/venv-run python scripts/bench_matrix.py [--config sim] [--backend verilator]
                                                    [--fmt e4m3] [--json OUT] [--shapes 16x64x512,...]

For each shape M x N x K two programs run on the same device and memory image: both load
X (H_LOAD_V) and set the shape (M_CFG); one then runs M_MM. The difference of their
cycle counters is the M_MM's cycles, and the difference of their read-beat counters its
weight beats. Per shape it prints cycles, MACs per cycle (M·N·K / cycles), the array's
peak (a multiply-add per PE a cycle: matrix.rows x vlen / matrix_slots, the PEs interleaving
matrix_slots rows; over the rows a shape can use), utilization, weight
beats per cycle and the model's cycles (dnpu.perf.analytical) with its error.

Targets (checked, exit status 1 when missed): compute-bound shapes (M a multiple of
matrix.rows) at >= 90 % of the peak; memory-bound shapes (M = 1, a GEMV) at >= 0.95 AXI
beats a cycle; the model within 5 % of the RTL everywhere. An M_MM has a fixed cost of about
read_latency + mx.block + matrix.rows + 8 cycles (the first square's load, the last one's
multiply-adds and outputs), so the two speed targets apply to shapes with at least
TARGET_MIN_CYCLES of streaming (ceil(M / rows) * N / vlen * K rows); smaller shapes are
reported, not judged. A last partial row group (M not a multiple of the rows) leaves
array rows idle by construction.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host"))

import dnpu.runtime as rt  # noqa: E402
from dnpu.runtime.cosim.binding import CosimError  # noqa: E402
from dnpu.perf import analytical  # noqa: E402
from dnpu.spec import config as config_mod  # noqa: E402
from dnpu.spec import isa, matrix  # noqa: E402
from dnpu.spec import numerics as nm  # noqa: E402

DEFAULT_SHAPES = ("4x64x512", "16x64x512", "8x128x1024", "1x256x512", "1x512x1024")
TARGET_UTIL = 0.90
TARGET_BEATS = 0.95
TARGET_MODEL = 0.05
TARGET_MIN_CYCLES = 2048


def _programs(cfg, M: int, N: int, K: int, fmt: str) -> tuple[bytes, bytes]:
    vlen = cfg.vector.vlen
    head = ["S_LD_ARG x1, 0", "S_LD_ARG x2, 1", *isa.load_imm("x5", M * K // vlen), "H_LOAD_V x0, x1, x5",
            *isa.load_imm("x6", M), *isa.load_imm("x7", N), *isa.load_imm("x8", K), "M_CFG x6, x7, x8",
            *isa.load_imm("x9", M * K // vlen)]
    base = isa.assemble("\n".join([*head, "C_HALT"]))
    mm = isa.assemble("\n".join([*head, f"M_MM x9, x0, x2, {fmt}", "C_HALT"]))
    return base, mm


def measure(cfg, backend: str, M: int, N: int, K: int, fmt: str, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    x = nm.round_bf16(rng.standard_normal((M, K))).astype("<u2").tobytes()
    w = matrix.pack_weights(rng.standard_normal((N, K)), fmt, cfg.mx.block, cfg.vector.vlen)
    base, mm = _programs(cfg, M, N, K, fmt)
    runs = {}
    with rt.open(backend, config=cfg) as dev:
        xb, wb, pb = dev.alloc(len(x)), dev.alloc(len(w)), dev.alloc(len(mm))
        xb.write(x)
        wb.write(w)
        for name, prog in (("base", base), ("mm", mm)):
            pb.write(prog + bytes(len(mm) - len(prog)))
            info = dev.run(pb.addr, args=[xb.addr, wb.addr])
            runs[name] = info
    cycles = runs["mm"].cycles - runs["base"].cycles
    beats = runs["mm"].counters["RD_BEATS"] - runs["base"].counters["RD_BEATS"]
    macs = M * N * K
    rows, slots = cfg.matrix.rows, cfg.matrix_slots
    array_peak = rows * cfg.vector.vlen // slots             # a multiply-add per PE per cycle
    peak = min(M, rows) * cfg.vector.vlen // slots
    model = analytical.matmul_cycles(cfg, M, N, K, fmt)
    stream_rows = -(-M // rows) * (N // cfg.vector.vlen) * K
    judged = stream_rows >= TARGET_MIN_CYCLES
    return {"M": M, "N": N, "K": K, "fmt": fmt, "cycles": cycles, "macs_per_cycle": macs / cycles,
            "array_peak": array_peak, "shape_peak": peak, "utilization": macs / cycles / array_peak,
            "weight_beats": beats, "beats_per_cycle": beats / cycles, "model_cycles": model,
            "model_error": (model - cycles) / cycles, "compute_bound": judged and M % rows == 0,
            "gemv": judged and M == 1}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="sim")
    ap.add_argument("--backend", default="verilator")
    ap.add_argument("--fmt", default="e4m3")
    ap.add_argument("--shapes", default=",".join(DEFAULT_SHAPES), help="MxNxK,... (default: %(default)s)")
    ap.add_argument("--json", metavar="OUT")
    a = ap.parse_args(argv)
    try:
        cfg = config_mod.load(a.config)
        shapes = [tuple(int(v) for v in s.lower().split("x")) for s in a.shapes.split(",")]
        if any(len(s) != 3 for s in shapes):
            raise ValueError("each shape is MxNxK")
        for M, N, K in shapes:
            matrix.check_shape(cfg, M, N, K)
        if a.backend not in ("verilator", "pynq"):
            raise ValueError(f"--backend {a.backend}: choose verilator or pynq (a backend with a cycle counter)")
        if a.json and not os.access(os.path.dirname(os.path.abspath(a.json)), os.W_OK):
            raise ValueError(f"--json {a.json}: its folder is not writable")
    except (ValueError, config_mod.ConfigError) as e:
        print(f"bench_matrix: error: {e}", file=sys.stderr)
        return 2
    rows = []
    pes = cfg.matrix.rows // cfg.matrix_slots
    print(f"profile {cfg.name}: matrix {cfg.matrix.rows} x {cfg.vector.vlen} on {pes} x {cfg.vector.vlen} PEs, "
          f"{cfg.matrix_slots} row(s) a PE (peak {pes * cfg.vector.vlen} MACs/cycle), fmt {a.fmt}, backend {a.backend}")
    print(f"{'shape':>14} {'cycles':>9} {'MAC/cyc':>8} {'util':>6} {'beats/cyc':>9} {'model':>9} {'err':>6}")
    for M, N, K in shapes:
        try:
            r = measure(cfg, a.backend, M, N, K, a.fmt)
        except (rt.DeviceError, CosimError) as e:      # no co-simulation of the profile, no board
            print(f"bench_matrix: error: {str(e).splitlines()[0]}", file=sys.stderr)
            return 2
        rows.append(r)
        print(f"{f'{M}x{N}x{K}':>14} {r['cycles']:>9} {r['macs_per_cycle']:>8.1f} {r['utilization']:>6.1%} "
              f"{r['beats_per_cycle']:>9.3f} {r['model_cycles']:>9} {r['model_error']:>+6.1%}")
    misses = []
    for r in rows:
        shape = f"{r['M']}x{r['N']}x{r['K']}"
        if r["compute_bound"] and r["utilization"] < TARGET_UTIL:
            misses.append(f"{shape}: utilization {r['utilization']:.1%} < {TARGET_UTIL:.0%}")
        if r["gemv"] and r["beats_per_cycle"] < TARGET_BEATS:
            misses.append(f"{shape}: {r['beats_per_cycle']:.3f} beats/cycle < {TARGET_BEATS}")
        if abs(r["model_error"]) > TARGET_MODEL:
            misses.append(f"{shape}: model off by {r['model_error']:+.1%}")
    out = {"config": cfg.name, "backend": a.backend, "fmt": a.fmt, "targets": {
        "compute_bound_utilization": TARGET_UTIL, "gemv_beats_per_cycle": TARGET_BEATS, "model_error": TARGET_MODEL},
        "shapes": rows, "misses": misses}
    if a.json:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(a.json)) or ".", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(out, f, indent=1)
        os.replace(tmp, a.json)
    for m in misses:
        print(f"MISSED {m}")
    print("all targets met" if not misses else f"{len(misses)} target(s) missed")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
