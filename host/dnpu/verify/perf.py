"""`dnpu check-perf`: the analytical model against RTL cycles on a grid of sampling steps,
on profiles with a matrix unit of linear layers (dnpu.compiler.linear: H_LOAD_V, M_CFG, the
M_MM* instructions, H_STORE_V), and of the transformer kernels (RMSNorm, SwiGLU, RoPE, the
embedding gather, attention) and one small LLaDA forward (KERNEL_GRID, FORWARD_MODEL).

Every point compiles one program, runs it on the `verilator` backend with random data (the
cycle count does not depend on the data: the ISA has no branches and every instruction's
time depends only on its counts and addresses; the embedding gather's row addresses come
from the token ids, and the model takes their alignment within a beat from the table's,
docs/PERF.md) and compares RunInfo.cycles with dnpu.perf.analytical. Each sampling point
also carries the single-pass bound and the measured cycles over it.
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

__all__ = ["DEFAULT_GRID", "LINEAR_GRID", "KERNEL_GRID", "FORWARD_MODEL", "MODES", "FLOWS", "run_point",
           "run_linear_point", "run_kernel_point", "run_forward_point", "kernel_program", "check_perf",
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


# Shapes per transformer kernel, in the order its compiler takes them: rms_norm (M, D),
# swiglu (M, F), rope (L, n_heads, head_dim), embedding (L, D, V), attention (H, n, T, hd)
# with the default key tile. One row or head up to a few SRAM tiles of them; T = 36 splits
# the keys over two tiles on sim. A profile that cannot compile a shape (no matrix unit,
# half a head not whole vector rows) lists it under "kernel_skipped".
KERNEL_GRID: dict[str, list[tuple[int, ...]]] = {
    "rms_norm": [(1, 64), (33, 128), (64, 2048)],
    "swiglu": [(7, 64), (16, 256), (64, 1024)],
    "rope": [(8, 2, 32), (16, 4, 64), (64, 2, 128)],
    "embedding": [(8, 64, 40), (64, 32, 1000), (256, 256, 4096)],
    "attention": [(1, 8, 8, 32), (2, 16, 36, 32), (1, 4, 64, 64)],
}

# The whole forward (dnpu.compiler.forward) of a small random LLaDA at this sequence length.
FORWARD_MODEL = {"d_model": 64, "n_heads": 2, "n_layers": 2, "mlp_hidden_size": 96, "vocab_size": 40,
                 "mask_token_id": 1, "eos_token_id": 0, "max_sequence_length": 64, "seq_len": 16}


def kernel_program(cfg, kernel: str, shape: tuple[int, ...]):
    """The KernelProgram of one KERNEL_GRID point (compiler.CompileError if it does not fit)."""
    from dnpu.compiler.attention import attention_program, default_tile
    from dnpu.compiler.embed import embedding_program
    from dnpu.compiler.norm import rms_norm_program
    from dnpu.compiler.rope import rope_program
    from dnpu.compiler.swiglu import swiglu_program

    if kernel == "attention":
        return attention_program(cfg, *shape, default_tile(cfg, shape[2]))
    return {"rms_norm": rms_norm_program, "swiglu": swiglu_program, "rope": rope_program,
            "embedding": embedding_program}[kernel](cfg, *shape)


def _kernel_data(rng: np.random.Generator, prog, name: str, nbytes: int) -> bytes:
    shape = dict(prog.shape)
    if name == "ids":                                   # rows anywhere in the table
        return rng.integers(0, shape["V"], nbytes // 4).astype("<i4").tobytes()
    if name == "c":                                     # RMSNorm's 1/D and eps
        return np.array([1.0 / shape["D"], 1e-5], "<f4").tobytes()
    x = rng.uniform(-2.0, 2.0, nbytes // 2).astype(np.float32)
    return (x.view(np.uint32) >> 16).astype("<u2").tobytes()


def _row(cfg, kind: str, rtl: int, est, wall: float, **what) -> dict:
    return {"config": cfg.label, "kind": kind, **what, "rtl_cycles": rtl, "model_cycles": est.cycles,
            "error_pct": round(100.0 * (est.cycles - rtl) / rtl, 4), "model_phases": est.phases,
            "instret": est.instret, "sim_seconds": round(wall, 3)}


def run_kernel_point(dev, cfg, kernel: str, shape: tuple[int, ...], seed: int = 0) -> dict:
    """One transformer kernel on an open verilator device: RTL cycles against the model's.
    Raises compiler.CompileError when the shape does not fit the profile."""
    prog = kernel_program(cfg, kernel, shape)
    rng = np.random.default_rng(seed)
    buf = dev.alloc(prog.nbytes)
    try:
        for name, (off, n) in prog.layout.items():
            buf.write(prog.binary if name == "program" else _kernel_data(rng, prog, name, n), offset=off)
        base = buf.addr
        t0 = time.perf_counter()
        info = dev.run(base + prog.layout["program"][0], args=prog.args(base))
        wall = time.perf_counter() - t0
    finally:
        buf.free()
    est = analytical.program(analytical.machine(cfg), prog.binary, prog.args(base), base + prog.layout["program"][0])
    return _row(cfg, "kernel", info.cycles, est, wall, kernel=kernel, shape=list(shape),
                **{k: v for k, v in prog.shape})


def forward_model(spec: dict | None = None):
    """The random LLaDA of FORWARD_MODEL (or `spec`, the same keys) and its sequence length."""
    from dnpu.model import LLaDA, LLaDAConfig
    from dnpu.model.llada import init_weights

    spec = dict(spec or FORWARD_MODEL)
    T = spec.pop("seq_len")
    m = LLaDA(LLaDAConfig(**spec))
    init_weights(m, seed=3, std=0.2)
    return m, T


def run_forward_point(dev, cfg, model, T: int, fmt: str = "e4m3", seed: int = 0) -> dict:
    """The whole forward of `model` at sequence length T on an open verilator device: RTL
    cycles against the model's (the program and weights image placed as NpuForward places
    them). Raises compiler.CompileError when the model does not fit the profile."""
    from dnpu.model.npu import NpuForward

    fw = NpuForward.compile(model, T, config=cfg, fmt=fmt)
    ids = np.random.default_rng(seed).integers(0, model.config.vocab_size, T)
    info: list = []
    t0 = time.perf_counter()
    fw.run(dev, ids, info)
    wall = time.perf_counter() - t0
    run = info[0]                       # where NpuForward placed the program and its buffers
    est = analytical.program(analytical.machine(cfg), fw.program.kernel.binary, run.args, run.prog)
    c = model.config
    return _row(cfg, "forward", run.cycles, est, wall, kernel="forward", fmt=fmt, T=T, d_model=c.d_model,
                n_heads=c.n_heads, n_layers=c.n_layers, mlp_hidden=c.mlp_hidden_size, vocab=c.vocab_size)


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
        "config": cfg.label, "B": B, "L": L, "V": V, "mode": mode, "flow": flow, "fmt": fmt,
        "rtl_cycles": rtl, "model_cycles": est.cycles,
        # BUSY_CYCLES: exact, where rtl_cycles ends at the harness's STATUS poll (up to 2 late)
        "rtl_busy_cycles": info.counters.get("BUSY_CYCLES"),
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
    return {"config": cfg.label, "kind": "linear", "M": M, "N": N, "K": K, "residual": residual, "fmt": fmt,
            "rtl_cycles": rtl, "model_cycles": est.cycles, "error_pct": round(100.0 * (est.cycles - rtl) / rtl, 4),
            "macs_per_cycle": round(M * N * K / rtl, 3), "model_phases": est.phases, "instret": info.instret,
            "sim_seconds": round(wall, 3)}


def check_perf(configs=("sim", "pynq-z2"), grid: dict | None = None, modes=MODES, flows=FLOWS,
               fmt: str = "e4m3", seed: int = 0, progress: Callable[[int, int], None] | None = None, *,
               kernel_grid: dict | None = None, forward: dict | None = None, kernels: bool = True) -> dict:
    """Run the grids on the verilator backend and the model; the summary `dnpu check-perf` writes.
    The sampling and linear points are `points_detail`, the transformer kernels and the forward
    `kernel_points_detail` (kernels=False leaves them out); max_abs_error_pct covers both."""
    from dnpu import runtime

    grid = grid or DEFAULT_GRID
    kgrid = (kernel_grid or KERNEL_GRID) if kernels else {}
    todo = []
    for name in configs:
        shapes = grid.get(name) or DEFAULT_GRID.get(name) or DEFAULT_GRID["sim"]
        for (B, L, V) in shapes:
            for flow in flows:
                for mode in modes:
                    todo.append((name, B, L, V, mode, flow))
    per_config = len(LINEAR_GRID) + sum(map(len, kgrid.values())) + (1 if kernels else 0)
    total = len(todo) + per_config * len(configs)
    points, skipped, kpoints, kskipped = [], [], [], []
    model = forward_model(forward) if kernels else None
    t0 = time.perf_counter()
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

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
                tick()
            for (M, N, K, res) in LINEAR_GRID:
                if cfg.matrix.rows:
                    points.append(run_linear_point(dev, cfg, M, N, K, res, fmt, seed))
                else:
                    skipped.append({"config": name, "kind": "linear", "M": M, "N": N, "K": K, "residual": res,
                                    "why": f"profile {name} has no matrix unit"})
                tick()
            for kernel, shapes in kgrid.items():
                for shape in shapes:
                    try:
                        kpoints.append(run_kernel_point(dev, cfg, kernel, tuple(shape), seed))
                    except compiler.CompileError as e:
                        kskipped.append({"config": name, "kernel": kernel, "shape": list(shape), "why": str(e)})
                    tick()
            if model is not None:
                m, T = model
                try:
                    kpoints.append(run_forward_point(dev, cfg, m, T, fmt, seed))
                except compiler.CompileError as e:
                    kskipped.append({"config": name, "kernel": "forward", "T": T, "why": str(e)})
                tick()
    max_err = max((abs(p["error_pct"]) for p in points + kpoints), default=0.0)
    kernel_errors: dict = {}
    for p in kpoints:
        kernel_errors.setdefault(p["config"], {}).setdefault(p["kernel"], []).append(p["error_pct"])
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
        "kernel_points": len(kpoints),
        "max_abs_error_pct": round(max_err, 4),
        "max_error_allowed_pct": MAX_ERROR_PCT,
        "ok": max_err <= MAX_ERROR_PCT,
        "kernel_max_abs_error_pct": {c: {k: max(map(abs, v)) for k, v in ks.items()}
                                     for c, ks in kernel_errors.items()},
        "rtl_over_bound_v_ge_4096": ratio_summary,
        "fused_sim_target": FUSED_TARGET,
        "fused_sim_within_target": None if fused_sim is None else fused_sim["max"] <= FUSED_TARGET,
        "configs": list(configs), "fmt": fmt, "seed": seed,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "skipped": skipped,
        "kernel_skipped": kskipped,
        "points_detail": points,
        "kernel_points_detail": kpoints,
    }
