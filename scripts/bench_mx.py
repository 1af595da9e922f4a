#!/usr/bin/env python3
"""Throughput of dnpu.spec.mx on a LLaDA-scale tensor (32 x 126464 float32 logits).

For every element format: quantize, dequantize (float32), dequantize_bf16, pack and
unpack, each timed as the median of --runs runs after one warm-up.  Exits 1 if the
e4m3 quantize median exceeds --limit-ms (50 ms by default); the figure is printed
either way.

    python scripts/bench_mx.py [--runs 15] [--block 32] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "host"))

import numpy as np  # noqa: E402

from dnpu.spec import mx  # noqa: E402

SHAPE = (32, 126464)  # LLaDA: 32 positions x vocabulary 126464


def median_ms(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15, help="timed runs per measurement (median)")
    ap.add_argument("--block", type=int, default=32)
    ap.add_argument("--limit-ms", type=float, default=50.0, help="e4m3 quantize budget")
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    x = (rng.standard_normal(SHAPE) * 3.0).astype(np.float32)
    n = x.size
    print(
        f"dnpu.spec.mx bench: shape {SHAPE} float32 ({n:,} elements), block {args.block}, "
        f"median of {args.runs}; numpy {np.__version__}, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}"
    )
    hdr = f"{'format':6} {'op':16} {'ms':>9} {'Melem/s':>9}"
    print(hdr)
    print("-" * len(hdr))
    results = {"shape": list(SHAPE), "block": args.block, "runs": args.runs, "formats": {}}
    for fmt in mx.FORMATS:
        q = mx.quantize(x, fmt, args.block)
        buf = mx.pack(q)
        ops = {
            "quantize": lambda: mx.quantize(x, fmt, args.block),
            "dequantize": lambda: mx.dequantize(q),
            "dequantize_bf16": lambda: mx.dequantize_bf16(q),
            "pack": lambda: mx.pack(q),
            "unpack": lambda: mx.unpack(buf, SHAPE, fmt, args.block),
        }
        res = {"packed_bytes": len(buf)}
        for name, fn in ops.items():
            ms = median_ms(fn, args.runs)
            res[name] = {"ms": round(ms, 3), "elements_per_s": round(n / (ms / 1e3))}
            print(f"{fmt:6} {name:16} {ms:9.2f} {n / (ms / 1e3) / 1e6:9.1f}")
        results["formats"][fmt] = res

    e4m3_ms = results["formats"]["e4m3"]["quantize"]["ms"]
    ok = e4m3_ms <= args.limit_ms
    results["e4m3_quantize_ms"] = e4m3_ms
    results["limit_ms"] = args.limit_ms
    results["pass"] = ok
    print(f"e4m3 quantize of {SHAPE}: {e4m3_ms:.2f} ms (limit {args.limit_ms:g} ms): {'PASS' if ok else 'FAIL'}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
