"""`dnpu check-perf`: the analytical model against RTL cycles on a grid of sampling steps
and, on profiles with a matrix unit, of linear layers (dnpu.compiler.linear: H_LOAD_V,
M_CFG, the M_MM* instructions, H_STORE_V).

Every point compiles one sampling step (dnpu.compiler), runs it on the `verilator` backend
with random logits (the cycle count does not depend on the data: the ISA has no branches
and every instruction's time depends only on its counts and addresses), and compares
RunInfo.cycles with dnpu.perf.analytical.step(). Each point also carries the single-pass
bound and the measured cycles over it.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from dnpu import compiler, ops
from dnpu.compiler import FLOWS, MODES
from dnpu.spec import mx
from dnpu.sampling import npu
from dnpu.spec import config as config_mod
from dnpu.perf import analytical

__all__ = ["DEFAULT_GRID", "LINEAR_GRID", "MODES", "FLOWS", "run_point", "run_linear_point", "check_perf",
           "MAX_ERROR_PCT", "FUSED_TARGET"]

MAX_ERROR_PCT = 5.0
FUSED_TARGET = 1.2          # the fused flow's goal on `sim` for V >= 4096: RTL cycles / bound
BIG_V = 4096

# (B, L, V) per profile. Small enough for a few minutes on a 2-core machine at ~4M cycles/s
# (about 20 s for both default profiles here); points a flow cannot
# compile (the phased flow keeps a whole row in vector SRAM) are listed under "skipped".
DEFAULT_GRID: dict[str, list[tuple[int, int, int]]] = {
    "sim": [(1, 4, 512), (3, 8, 1024), (2, 8, 4096), (4, 16, 4096), (1, 16, 8192), (2, 32, 16384)],
    "pynq-z2": [(1, 4, 512), (2, 8, 4096), (4, 16, 2048), (1, 8, 16384)],
}


# (M, N, K, residual): linear layers, on every profile with a matrix unit (rows, outputs and
# products that fill whole and partial row groups, N sliced when it does not fit, K split
# over the FP32-accumulator instructions when it does not fit sim's vector SRAM).
LINEAR_GRID = [(1, 64, 256, False), (4, 64, 512, True), (9, 48, 96, False), (16, 128, 256, True),
               (3, 2000, 64, False), (5, 32, 16416, True)]


def _inputs(rng: np.random.Generator, B: int, L: int, V: int, mode: str):
    logits = rng.standard_normal((B, L, V)).astype(np.float32)
    mask = rng.random((B, L)) < 0.7
    x = rng.integers(0, V, (B, L))
    k = np.minimum(mask.sum(1), max(1, L // 4)) if mode == "topk" else None
    thr = None if mode == "topk" else 0.9
    return logits, mask, x, k, thr


def run_point(dev, cfg, B: int, L: int, V: int, mode: str, flow: str, fmt: str = "e4m3",
              seed: int = 0) -> dict:
    """One grid point on an open verilator device `dev` of profile `cfg`: RTL cycles, model
    cycles, the bound. Raises compiler.CompileError when the step does not fit the profile."""
    prog = compiler.sampling_program(cfg, B, L, V, mode=mode, flow=flow, fmt=fmt)
    logits, mask, x, k, thr = _inputs(np.random.default_rng(seed), B, L, V, mode)
    q = mx.quantize(logits, fmt, cfg.mx.block)
    img = npu.memory_image(prog, q, mask, x, k, thr)
    buf = dev.alloc(prog.nbytes)
    try:
        for name, data in img.items():
            buf.write(data, offset=prog.layout[name].offset)
        t0 = time.perf_counter()
        info = dev.run(buf.addr + prog.layout["program"].offset, args=prog.args(buf.addr),
                       timeout=max(1_000_000, 64 * analytical.step(cfg, B, L, V, mode, flow, fmt).cycles))
        wall = time.perf_counter() - t0
        base = buf.addr
    finally:
        buf.free()
    est = analytical.program(analytical.machine(cfg), prog.binary, prog.args(base), base)
    b = analytical.bound(cfg, B, L, V, fmt)
    rtl = info.cycles
    return {
        "config": cfg.name, "B": B, "L": L, "V": V, "mode": mode, "flow": flow, "fmt": fmt,
        "rtl_cycles": rtl, "model_cycles": est.cycles,
        "error_pct": round(100.0 * (est.cycles - rtl) / rtl, 4),
        "bound_cycles": b["cycles"], "bound_vector_cycles": b["vector_cycles"],
        "bound_memory_cycles": b["memory_cycles"], "logits_bytes": b["bytes"],
        "rtl_over_bound": round(rtl / b["cycles"], 4), "model_over_bound": round(est.cycles / b["cycles"], 4),
        "model_phases": est.phases, "instret": info.instret, "sim_seconds": round(wall, 3),
    }


def run_linear_point(dev, cfg, M: int, N: int, K: int, residual: bool, fmt: str = "e4m3", seed: int = 0) -> dict:
    """One linear layer on an open verilator device: RTL cycles against the model's."""
    rng = np.random.default_rng(seed)
    prog, img = ops.linear_image(cfg, rng.standard_normal((M, K)), rng.standard_normal((N, K)),
                                 rng.standard_normal((M, N)) if residual else None, fmt)
    buf = dev.alloc(prog.nbytes)
    try:
        for name, data in img.items():
            buf.write(data, offset=prog.layout[name][0])
        t0 = time.perf_counter()
        info = dev.run(buf.addr + prog.layout["program"][0], args=prog.args(buf.addr))
        wall = time.perf_counter() - t0
        base = buf.addr
    finally:
        buf.free()
    est = analytical.program(analytical.machine(cfg), prog.binary, prog.args(base), base + prog.layout["program"][0])
    rtl = info.cycles
    return {"config": cfg.name, "kind": "linear", "M": M, "N": N, "K": K, "residual": residual, "fmt": fmt,
            "rtl_cycles": rtl, "model_cycles": est.cycles, "error_pct": round(100.0 * (est.cycles - rtl) / rtl, 4),
            "macs_per_cycle": round(M * N * K / rtl, 3), "model_phases": est.phases, "instret": info.instret,
            "sim_seconds": round(wall, 3)}


def check_perf(configs=("sim", "pynq-z2"), grid: dict | None = None, modes=MODES, flows=FLOWS,
               fmt: str = "e4m3", seed: int = 0, progress: Callable[[int, int], None] | None = None) -> dict:
    """Run the grid on the verilator backend and the model; the summary `dnpu check-perf` writes."""
    from dnpu import runtime

    grid = grid or DEFAULT_GRID
    todo = []
    for name in configs:
        shapes = grid.get(name) or DEFAULT_GRID.get(name) or DEFAULT_GRID["sim"]
        for (B, L, V) in shapes:
            for flow in flows:
                for mode in modes:
                    todo.append((name, B, L, V, mode, flow))
    points, skipped = [], []
    t0 = time.perf_counter()
    done = 0
    for name in configs:
        cfg = config_mod.load(name)
        with runtime.open("verilator", config=cfg) as dev:
            for (cname, B, L, V, mode, flow) in todo:
                if cname != name:
                    continue
                try:
                    points.append(run_point(dev, cfg, B, L, V, mode, flow, fmt, seed))
                except compiler.CompileError as e:
                    skipped.append({"config": name, "B": B, "L": L, "V": V, "mode": mode, "flow": flow,
                                    "why": str(e)})
                done += 1
                if progress:
                    progress(done, len(todo) + len(LINEAR_GRID) * len(configs))
            for (M, N, K, res) in LINEAR_GRID:
                if cfg.matrix.rows:
                    points.append(run_linear_point(dev, cfg, M, N, K, res, fmt, seed))
                else:
                    skipped.append({"config": name, "kind": "linear", "M": M, "N": N, "K": K, "residual": res,
                                    "why": f"profile {name} has no matrix unit"})
                done += 1
                if progress:
                    progress(done, len(todo) + len(LINEAR_GRID) * len(configs))
    max_err = max((abs(p["error_pct"]) for p in points), default=0.0)
    ratios: dict = {}
    for p in points:
        if p.get("V", 0) >= BIG_V:
            r = ratios.setdefault(p["config"], {}).setdefault(p["flow"], [])
            r.append(p["rtl_over_bound"])
    ratio_summary = {c: {f: {"min": min(v), "max": max(v), "points": len(v)} for f, v in fl.items()}
                     for c, fl in ratios.items()}
    fused_sim = ratio_summary.get("sim", {}).get("fused")
    return {
        "points": len(points),
        "max_abs_error_pct": round(max_err, 4),
        "max_error_allowed_pct": MAX_ERROR_PCT,
        "ok": max_err <= MAX_ERROR_PCT,
        "rtl_over_bound_v_ge_4096": ratio_summary,
        "fused_sim_target": FUSED_TARGET,
        "fused_sim_within_target": None if fused_sim is None else fused_sim["max"] <= FUSED_TARGET,
        "configs": list(configs), "fmt": fmt, "seed": seed,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "skipped": skipped,
        "points_detail": points,
    }
