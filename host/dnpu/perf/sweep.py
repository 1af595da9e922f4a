"""The design-space sweep behind scripts/sweep.py: the sampling step on in-memory variants of
a profile (VLEN with lanes = VLEN, memory.bytes_per_cycle, block shape), both flows and both
memory-port variants, with dnpu.perf.analytical, in parallel worker processes."""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import os

from dnpu.compiler import FLOWS_FUSED_FIRST

__all__ = ["FIELDS", "sweep", "point"]

FIELDS = ["config", "vlen", "lanes", "bytes_per_cycle", "B", "L", "V", "V_padded", "mode", "flow", "port", "fmt",
          "cycles", "ms", "bound_cycles", "over_bound", "memory", "vector", "scalar", "control", "matrix",
          "error"]


def point(args: tuple) -> dict:
    base, vlen, bw, B, L, V, mode, flow, port, fmt = args
    from dnpu.perf import analytical as an

    row = {"config": base, "vlen": vlen, "lanes": vlen, "bytes_per_cycle": bw, "B": B, "L": L, "V": V,
           "mode": mode, "flow": flow, "port": port, "fmt": fmt}
    try:
        cfg = an.variant(base, name=f"{base}-v{vlen}-bw{bw}", vector__vlen=vlen, vector__lanes=vlen,
                         memory__bytes_per_cycle=bw)
        est = an.step(cfg, B, L, V, mode, flow, fmt, port=port, pad=True)
        b = an.bound(cfg, B, L, V, fmt)
    except Exception as e:          # a shape the variant cannot compile: recorded, not fatal
        row["error"] = str(e).splitlines()[0][:200]
        return row
    row.update(V_padded=est.what["V_padded"], cycles=est.cycles, ms=round(est.seconds * 1e3, 6),
               bound_cycles=round(b["cycles"], 1), over_bound=round(est.cycles / b["cycles"], 4),
               error="", **est.phases)
    return row


def sweep(base: str = "asic-2048", vlens=(256, 512, 1024, 2048, 4096), bws=(64, 256, 1024, 4096),
          shapes=((16, 32), (8, 32), (16, 64), (1, 32)), V: int = 126464, modes=("topk",),
          flows=FLOWS_FUSED_FIRST, ports=("ideal", "rtl"), fmt: str = "e4m3", jobs: int | None = None) -> list[dict]:
    """Every point of the grid (one dict per point, FIELDS), computed in `jobs` processes."""
    pts = [(base, v, bw, B, L, V, mode, flow, port, fmt)
           for v, bw, (B, L), mode, flow, port in itertools.product(vlens, bws, shapes, modes, flows, ports)]
    jobs = jobs or os.cpu_count() or 1
    if jobs <= 1:
        return [point(p) for p in pts]
    with cf.ProcessPoolExecutor(max_workers=jobs) as ex:
        return list(ex.map(point, pts, chunksize=max(1, len(pts) // (4 * jobs))))
