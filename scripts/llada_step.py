"""One sampling step at LLaDA's scale on an NPU backend, checked against the torch reference.

    scripts/venv-run python scripts/llada_step.py [--backend verilator] [--config pynq-z2]
        [--flow fused|phased|both] [--B 1 --L 32 --V 126464] [--json OUT]

Random logits [B, L, V] (one clear winner per position so the reference's tokens are not a
near tie), quota k = 4 per row; the step runs through dnpu.sampling.transfer on the backend
and in float64 torch. Prints, per flow: whether x0 and x_new equal the reference's, the
step's wall time and the process's peak resident memory. Exits 1 when tokens differ or the
peak passes --max-rss-mb (default 1536 MiB, 1.5 GiB).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np

from dnpu import sampling
from dnpu.compiler import FLOWS, FLOWS_FUSED_FIRST


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0    # Linux: KiB


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", default="verilator")
    ap.add_argument("--config", default="pynq-z2")
    ap.add_argument("--flow", default="both", choices=[*FLOWS, "both"])
    ap.add_argument("--B", type=int, default=1)
    ap.add_argument("--L", type=int, default=32)
    ap.add_argument("--V", type=int, default=126464)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-rss-mb", type=float, default=1536.0)
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args(argv)

    rng = np.random.default_rng(a.seed)
    lg = (rng.standard_normal((a.B, a.L, a.V)) * 3.0).astype(np.float32)
    for b in range(a.B):
        lg[b, np.arange(a.L), rng.integers(0, a.V, a.L)] += 6.0
    mask = np.ones((a.B, a.L), bool)
    x = np.zeros((a.B, a.L), np.int64)
    t0 = time.perf_counter()
    ref = sampling.transfer(lg, mask, x, k=a.k, backend="torch")
    out = {"B": a.B, "L": a.L, "V": a.V, "backend": a.backend, "config": a.config,
           "torch_s": round(time.perf_counter() - t0, 3), "flows": {}}
    ok = True
    for flow in (FLOWS_FUSED_FIRST if a.flow == "both" else [a.flow]):
        t0 = time.perf_counter()
        got = sampling.transfer(lg, mask, x, k=a.k, backend=a.backend, config=a.config, flow=flow)
        dt = time.perf_counter() - t0
        same = bool(np.array_equal(got.x0, ref.x0) and np.array_equal(got.x_new, ref.x_new))
        ok &= same
        out["flows"][flow] = {"tokens_equal": same, "wall_s": round(dt, 3)}
        print(f"{flow:6s} B={a.B} L={a.L} V={a.V} on {a.backend}/{a.config}: tokens "
              f"{'equal the torch reference' if same else 'DIFFER from the torch reference'}, "
              f"{dt:.1f} s", flush=True)
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(f"peak resident memory of this process: {out['peak_rss_mb']:.0f} MiB "
          f"(limit {a.max_rss_mb:.0f} MiB)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)
    if out["peak_rss_mb"] > a.max_rss_mb:
        print("peak memory over the limit", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
