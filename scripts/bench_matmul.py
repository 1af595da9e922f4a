"""Time matmul.matmul_bf16 (the emulator's matrix unit) against the slow per-step reference,
in one process, and check that both give the same bits.

    scripts/venv-run python scripts/bench_matmul.py [--reps N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from dnpu.spec import matmul
from dnpu.spec import numerics as nm

SHAPES = [  # (M, N, K)
    (16, 32, 128), (16, 128, 128), (16, 384, 128), (16, 384, 384), (16, 128, 384),
    (1, 384, 384), (2, 128, 256), (4, 32, 128), (4, 384, 384),
]


def bf16(rng, shape, scale=1.0):
    v = (rng.standard_normal(shape) * scale).astype(np.float32)
    return (v.view(np.uint32) >> np.uint32(16)).astype(np.uint16)


def best(f, reps):
    t = []
    for _ in range(reps):
        s = time.perf_counter()
        y = f()
        t.append(time.perf_counter() - s)
    return min(t), y


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'M':>3} {'N':>4} {'K':>4} {'case':<10} {'reference ms':>12} {'fast ms':>8} {'speedup':>8}")
    tot_ref = tot_new = 0.0
    for M, N, K in SHAPES:
        x = bf16(rng, (M, K))
        w = bf16(rng, (N, K), 0.05)
        r = bf16(rng, (M, N))
        cases = {"bf16": {}, "bf16+res": {"residual_bits": r}, "f32": {"out": "f32"}}
        # tiny activations: products below 2^-126 and subnormal partial sums
        xt = bf16(rng, (M, K), 2.0 ** -120)
        for name, kw in list(cases.items()) + [("tiny", {"x": xt})]:
            kw = dict(kw)
            xx = kw.pop("x", x)
            t_ref, y_ref = best(lambda: matmul._matmul_bf16_reference(xx, w, **kw), a.reps)
            t_new, y_new = best(lambda: matmul.matmul_bf16(xx, w, **kw), a.reps)
            assert np.array_equal(y_ref, y_new), (M, N, K, name)
            tot_ref += t_ref
            tot_new += t_new
            print(f"{M:>3} {N:>4} {K:>4} {name:<10} {t_ref * 1e3:>12.2f} {t_new * 1e3:>8.2f} "
                  f"{t_ref / t_new:>7.1f}x")
    print(f"total: reference {tot_ref * 1e3:.1f} ms, fast {tot_new * 1e3:.1f} ms, "
          f"{tot_ref / tot_new:.1f}x; all results bit-identical")


if __name__ == "__main__":
    main()
