"""`dnpu bench --forward npu`: the whole diffusion step on the NPU, where its cycles go, and
PyTorch's forward + sampling beside it.

One generation with ``forward="npu"`` on ``backend`` (default ``verilator``: the RTL in
co-simulation) of a few held-out prompts of the model's task records, per step, every
row's program run (forward and sampling in one program; a retire trace splits its
cycles by kind of work with :meth:`dnpu.model.npu.NpuForward.section_cycles`). The
kinds are grouped as the report shows them:

    embedding             the gather by token id
    linear                Q/K/V/O, gate/up/down projections and the LM head (matrix unit)
    attention             RoPE and the streaming-softmax attention
    norms/activations     RMSNorm and SwiGLU's gate
    sampling              argmax, confidence and commit on the logits rows in SRAM
    kv cache              with a KV cache: the refresh's stores and the later steps' loads
    other                 constants, the stores of the results, the halt

With a KV cache (``"dual"`` or ``"prefix"``) every step also reports the KV cache's bytes written (a block's
refresh) and read (its later steps), and the cycles the same step takes without a cache,
measured by running the plain forward's step on the same sequence (``cycles_none``): the
totals give the cycles saved.

Cycles become seconds at the profile's clock (``clock.f_clk_mhz``), tokens/s is generated
tokens over that time. The baseline is the host's: the model's PyTorch forward of the
same sequences on its device (CPU here; CUDA events on a GPU) and PyTorch's sampling rule
(:func:`dnpu.sampling.reference.rule`) on its logits, medians of ``reps``. The emulator
has no clock, so this needs ``verilator`` or ``pynq``.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from dnpu.perf.project_forward import GROUPS

__all__ = ["run_forward", "GROUPS", "format_forward_table", "plot_forward"]


def run_forward(model_dir=None, *, backend: str = "verilator", prompts: int = 2, config: str = "sim",
                weights_fmt: str = "e4m3", reps: int = 5, seed: int = 0, threads: int | None = 1,
                kv_cache: str = "none", kv_format: str = "bf16",
                progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Run the benchmark (module docstring); returns the JSON-ready result."""
    import torch

    from dnpu.bench.measure import environment, timer
    from dnpu.generation import generate
    from dnpu.model import get_task, load, model_info
    from dnpu.model.npu import NpuForward
    from dnpu.model.tasks import generation_defaults
    from dnpu.sampling.reference import rule
    from dnpu.spec import config as config_mod

    if backend not in ("verilator", "pynq"):
        raise ValueError(f"backend {backend!r}: the step's cycles come from a clocked backend, verilator or pynq "
                         f"(the emulator has no clock)")
    if isinstance(prompts, bool) or not isinstance(prompts, int) or prompts < 1:
        raise ValueError(f"prompts must be a positive int; got {prompts!r}")
    if reps < 1:
        raise ValueError(f"reps must be at least 1; got {reps}")
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        cfg = config_mod.load(config)
        model, tok = load(model_dir, device="cpu", dtype="bf16")
        info = model_info(model_dir)
        task = get_task(info["task"])
        settings = generation_defaults(info, task)
        ids, _ = task.encode_problems(tok, task.heldout(prompts, seed=seed))
        T = ids.shape[1] + settings["gen_length"]
        fw = NpuForward.compile(model, T, config=cfg, fmt=weights_fmt)
        total = 3
        if progress:
            progress(0, total)
        log: list = []
        t0 = time.perf_counter()
        out = generate(model, ids, sampler=backend, forward="npu", weights_fmt=weights_fmt, config=cfg,
                       step_log=log, seed=seed, kv_cache=kv_cache, kv_format=kv_format, **settings)
        gen_wall = time.perf_counter() - t0
        if progress:
            progress(1, total)
        steps = [_step_row(rec, fw, rec.kv) for rec in log]
        if kv_cache != "none":
            _replay_without_cache(steps, log, fw, backend, cfg, int(model.config.mask_token_id))
        if progress:
            progress(2, total)
        timed = timer(torch.device("cpu"), reps)
        for row, rec in zip(steps, log):
            seq, s0, L = rec.seq, rec.start, rec.mask.shape[1]

            def fwd(seq=seq, s0=s0, L=L):
                with torch.no_grad():
                    return model(seq)[:, s0:s0 + L]
            row["torch_forward_s"] = timed(fwd)
            lg = fwd().float()
            kk = torch.from_numpy(rec.k) if rec.k is not None else None
            a = (lg, torch.from_numpy(rec.mask), torch.from_numpy(rec.x), kk, rec.threshold)
            row["torch_sampling_s"] = timed(lambda a=a: rule(*a))
        if progress:
            progress(3, total)
    finally:
        torch.set_num_threads(old_threads)
    tokens = int(ids.shape[0] * settings["gen_length"])
    f_hz = cfg.clock.f_clk_mhz * 1e6
    groups = {g: int(sum(r["cycles"][g] for r in steps)) for g in GROUPS}
    npu_cycles = sum(groups.values())
    kv_totals = {}
    if kv_cache != "none":
        none = sum(r["cycles_none"] for r in steps)
        kv_totals = {"kv_bytes_written": sum(r["kv_bytes_written"] for r in steps),
                     "kv_bytes_read": sum(r["kv_bytes_read"] for r in steps),
                     "cycles_without_cache": none, "cycles_saved": none - npu_cycles,
                     "speedup_over_no_cache": none / npu_cycles}
    torch_s = float(sum(r["torch_forward_s"] + r["torch_sampling_s"] for r in steps))
    npu_s = npu_cycles / f_hz
    return {
        "forward": "npu", "backend": backend, "config": cfg.label, "f_clk_mhz": cfg.clock.f_clk_mhz,
        "cycles_source": "the NPU's cycle counter, the split from its retire trace",
        "model": str(model_dir or "shipped"), "task": task.name, "prompts": int(ids.shape[0]),
        "settings": settings | {"weights_fmt": weights_fmt, "seed": seed, "kv_cache": kv_cache, "kv_format": kv_format},
        "seq_len": T, "tokens": tokens,
        "steps": steps,
        "totals": {"cycles_by_group": groups, "npu_cycles": npu_cycles, "npu_s": npu_s,
                   "npu_tokens_per_s": tokens / npu_s, "torch_s": torch_s, "torch_tokens_per_s": tokens / torch_s,
                   "npu_over_torch_speed": torch_s / npu_s,
                   "share": {g: v / npu_cycles for g, v in groups.items()}, **kv_totals},
        "generated": out[:, ids.shape[1]:].tolist(),
        "generation_wall_s": round(gen_wall, 3), "environment": environment(torch.device("cpu")),
    }


def _step_row(rec, fw, kv=None) -> dict[str, Any]:
    """One step: its program runs' cycles by group, summed over the batch's rows, and its
    KV cache traffic."""
    from dnpu.compiler.forward import kv_traffic

    sections: dict[str, int] = {}
    for info in rec.forward_info:
        for k, v in fw.section_cycles(info, kv).items():
            sections[k] = sections.get(k, 0) + v
    groups = {g: int(sum(sections.get(s, 0) for s in ss)) for g, ss in GROUPS.items()}
    wr, rd = kv_traffic(fw.config, fw.program.shape, kv)
    rows = len(rec.forward_info)
    return {"block": rec.block, "step": rec.step, "rows": rows, "cycles": groups,
            "committed": int((rec.x_new != rec.x).sum()), "kv": kv.mode if kv else None,
            "kv_bytes_written": wr * rows, "kv_bytes_read": rd * rows}


def _replay_without_cache(steps: list, log: list, fw, backend: str, cfg, mask_id: int) -> None:
    """cycles_none of each step: the plain forward's step on the same sequences."""
    from dnpu import runtime

    with runtime.open(backend, config=cfg) as dev:
        for row, rec in zip(steps, log):
            infos: list = []
            for b, seq in enumerate(rec.seq.numpy()):
                kw = {"k": int(rec.k[b])} if rec.k is not None else {"threshold": rec.threshold}
                fw.step(dev, seq, rec.start, rec.mask.shape[1], mask_id, run_info=infos, **kw)
            row["cycles_none"] = int(sum(i.cycles for i in infos))


def format_forward_table(r: dict[str, Any]) -> str:
    """The summary table: cycles by group, their share, NPU time and tokens/s at the clock,
    PyTorch's forward + sampling beside them."""
    t = r["totals"]
    lines = [f"whole step on the NPU: {r['backend']} ({r['cycles_source']}), profile {r['config']} at "
             f"{r['f_clk_mhz']:g} MHz; {r['prompts']} prompt(s), {len(r['steps'])} steps, {r['tokens']} tokens",
             "", f"{'':<20}{'cycles':>12}{'share':>9}"]
    for g, v in t["cycles_by_group"].items():
        lines.append(f"{g:<20}{v:>12,}{100 * t['share'][g]:>8.1f}%")
    lines += [f"{'total':<20}{t['npu_cycles']:>12,}"]
    if "cycles_saved" in t:
        s = r["settings"]
        lines += ["", f"KV cache {s['kv_cache']} in {s['kv_format']}: {t['kv_bytes_written']:,} bytes written, "
                      f"{t['kv_bytes_read']:,} read; without a cache {t['cycles_without_cache']:,} cycles: "
                      f"{t['cycles_saved']:,} saved ({t['speedup_over_no_cache']:.2f}x)"]
    lines += ["",
              f"NPU at {r['f_clk_mhz']:g} MHz: {1e3 * t['npu_s']:.2f} ms, {t['npu_tokens_per_s']:.1f} tokens/s",
              f"PyTorch forward + sampling ({r['environment']['device']}): {1e3 * t['torch_s']:.2f} ms, "
              f"{t['torch_tokens_per_s']:.1f} tokens/s",
              f"NPU / PyTorch speed: {t['npu_over_torch_speed']:.2f}x"]
    return "\n".join(lines)


def plot_forward(r: dict[str, Any], path) -> None:
    """A bar per step: the NPU's cycles by group (stacked), as time at the clock, beside
    PyTorch's forward + sampling time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = r["steps"]
    x = np.arange(len(steps))
    f_hz = r["f_clk_mhz"] * 1e6
    fig, ax = plt.subplots(figsize=(max(6, len(steps) * 0.8), 4))
    bottom = np.zeros(len(steps))
    for g in GROUPS:
        v = np.array([s["cycles"][g] / f_hz * 1e3 for s in steps])
        ax.bar(x - 0.2, v, 0.4, bottom=bottom, label=f"NPU {g}")
        bottom += v
    ax.bar(x + 0.2, [1e3 * (s["torch_forward_s"] + s["torch_sampling_s"]) for s in steps], 0.4,
           label=f"PyTorch forward + sampling ({r['environment']['device']})", color="0.6")
    ax.set_xticks(x, [f"b{s['block']}s{s['step']}" for s in steps])
    ax.set_ylabel("ms per step")
    ax.set_title(f"whole step on the NPU ({r['config']}, {r['f_clk_mhz']:g} MHz) vs PyTorch")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, format=str(path).rsplit(".", 1)[-1] if "." in str(path) else "png")
    plt.close(fig)
