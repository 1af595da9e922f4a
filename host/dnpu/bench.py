"""`dnpu bench`: where the time of a generation goes, PyTorch sampling vs the NPU.

One run generates on a model (default: the shipped tiny model, a few held-out
prompts of its task, its ``dnpu_task.json`` settings) and reports, per step and in
total:

* **forward**: the model forward of the step, replayed ``reps`` times (median) on
  the model's device (``kv_cache="none"``; with a cache, the single timing the
  generation took);
* **PyTorch baseline sampling**: LLaDA's low-confidence sampling written natively
  in PyTorch (softmax in FP32 of the model's logits, argmax, top-k quota or
  Fast-dLLM threshold commit; :func:`dnpu.sampling.reference.rule`) on the step's logits, already on
  the device, in eager mode and under ``torch.compile`` (median of ``reps``; a
  compile failure is recorded, not raised). On a GPU it is timed with CUDA events;
  on a CPU with ``time.perf_counter``, and the table and JSON say so;
* **NPU sampling**: the step run by ``backend`` (``verilator``: the RTL in
  co-simulation) on the ``config`` profile, for each flow (``phased``, ``fused``),
  as the NPU's cycle counter / the profile's clock (``RunInfo.cycles / f_clk``;
  the emulator has no clock, so on ``emu`` the analytical model of the same program
  stands in and the source says so). The analytical cycles of the same program are
  recorded beside the measured ones;
* **projection**: the analytical model (:mod:`dnpu.perf.analytical`) of the same
  step shapes on ``project_config`` (default ``asic-2048``; the vocabulary padded to
  its VLEN), and :func:`dnpu.perf.project.bench_row` at LLaDA-8B scale;
* tokens/s (generated tokens / (forward + sampling), per implementation) and
  sampling's share of the step time.

Every NPU generation is checked token for token against the torch reference
sampler (:func:`dnpu.sampling.transfer` with ``backend="torch"``): the same MX
logits, so the tokens must agree (``tokens_match``; the command exits 1 if not).

    r = dnpu.bench.run(backend="verilator", prompts=4)
    print(dnpu.bench.format_table(r)); dnpu.bench.plot(r, "bench.png")
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["run", "format_table", "plot", "add_command", "environment"]

FLOWS = ("phased", "fused")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def environment(device) -> dict[str, Any]:
    """The machine the baseline ran on: device kind and name, CPU, timer, torch version."""
    import torch

    cuda = device.type == "cuda"
    env = {"device": device.type, "cpu": _cpu_name(), "cpu_count": os.cpu_count(),
           "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
           "python": platform.python_version(), "platform": platform.platform()}
    if cuda:
        env["name"] = env["gpu"] = torch.cuda.get_device_name(device)
        env["timer"] = "CUDA events (median)"
        env["note"] = f"PyTorch baseline on the GPU {env['gpu']}"
    else:
        env["name"] = env["cpu"]
        env["gpu"] = None
        env["timer"] = "time.perf_counter on the CPU (median); no GPU, so no CUDA events"
        env["note"] = (f"no GPU: the PyTorch baseline (forward and sampling) ran on the CPU ({env['cpu']}, "
                       f"torch threads: {env['torch_threads']}); these are CPU timings, not GPU ones")
    return env


def _timer(device, reps: int, warmup: int = 2) -> Callable[[Callable[[], Any]], float]:
    """median seconds of fn() over `reps` calls after `warmup`; CUDA events on a GPU."""
    import torch

    cuda = device.type == "cuda"

    def timed(fn) -> float:
        for _ in range(warmup):
            fn()
        ts = []
        for _ in range(reps):
            if cuda:
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                torch.cuda.synchronize(device)
                a.record()
                fn()
                b.record()
                torch.cuda.synchronize(device)
                ts.append(a.elapsed_time(b) / 1e3)
            else:
                t0 = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t0)
        return statistics.median(ts)
    return timed


# --------------------------------------------------------------------------- the run


def _cycles_model(cache: dict, cfg, B: int, L: int, V: int, mode: str, flow: str, fmt: str):
    """The analytical Estimate of the step, or the reason there is none (a str)."""
    from dnpu.perf import analytical

    key = (cfg.name, B, L, V, mode, flow, fmt)
    if key not in cache:
        try:
            cache[key] = analytical.step(cfg, B, L, V, mode, flow, fmt, pad=True)
        except (analytical.ModelError, ValueError) as e:  # e.g. an instruction the model has no rule for yet
            cache[key] = f"analytical model of {cfg.name}: {e}"
    return cache[key]


def run(model_dir=None, *, backend: str = "verilator", prompts: int = 4, config: str = "sim",
        project_config: str = "asic-2048", flows=FLOWS, gen_length: int | None = None,
        block_length: int | None = None, steps: int | None = None, threshold: float | None = None,
        kv_cache: str = "none", fmt: str = "e4m3", compile: bool = True, reps: int = 20, seed: int = 0,
        device=None, dtype: str = "bf16", threads: int | None = None, llada: bool = True,
        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the benchmark (module docstring); returns the JSON-ready result.

    threads: torch's CPU threads during the run (restored after). None: 1 when the model is on
    the CPU (a tiny model gains nothing from more, and on a shared or busy CPU torch's threads
    wait on each other at every op: 2 threads on a loaded 2-core machine made the tiny model's
    forward 50x slower), else torch's default."""
    import torch

    old_threads = torch.get_num_threads()
    try:
        return _run(model_dir, backend=backend, prompts=prompts, config=config, project_config=project_config,
                    flows=flows, gen_length=gen_length, block_length=block_length, steps=steps,
                    threshold=threshold, kv_cache=kv_cache, fmt=fmt, compile=compile, reps=reps, seed=seed,
                    device=device, dtype=dtype, threads=threads, llada=llada, progress=progress)
    finally:
        torch.set_num_threads(old_threads)


def _run(model_dir, *, backend, prompts, config, project_config, flows, gen_length, block_length, steps,
         threshold, kv_cache, fmt, compile, reps, seed, device, dtype, threads, llada, progress) -> dict[str, Any]:
    import torch

    from dnpu.spec import config as config_mod
    from dnpu import sampling
    from dnpu.generation import generate
    from dnpu.model import load, model_info
    from dnpu.model.tasks import generation_defaults
    from dnpu.sampling.reference import rule
    from dnpu.model.tasks import get_task

    say = progress or (lambda s: None)
    if backend not in sampling.NPU_BACKENDS:
        raise ValueError(f"backend {backend!r}: dnpu bench times an NPU backend, one of "
                         f"{', '.join(sampling.NPU_BACKENDS)}")
    flows = tuple(flows)
    for f in flows:
        if f not in FLOWS:
            raise ValueError(f"unknown flow {f!r}: use phased and/or fused")
    if not flows:
        raise ValueError("no flow to run: give phased and/or fused")
    if isinstance(prompts, bool) or not isinstance(prompts, int) or prompts < 1:
        raise ValueError(f"prompts must be a positive int; got {prompts!r}")
    if reps < 1:
        raise ValueError(f"reps must be at least 1; got {reps}")
    cfg = config_mod.load(config)
    pcfg = config_mod.load(project_config)
    f_clk = cfg.clock.f_clk_mhz * 1e6

    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive int; got {threads!r}")
    model, tok = load(model_dir, device=device, dtype=dtype)
    if threads is None and next(model.parameters()).device.type == "cpu":
        threads = 1
    if threads is not None:
        torch.set_num_threads(threads)
    info = model_info(model_dir)
    if not info.get("task"):
        raise ValueError("the model names no task (no dnpu_task.json): dnpu bench draws its prompts from it")
    task = get_task(info["task"])
    settings = generation_defaults(info, task)
    for key, v in (("gen_length", gen_length), ("block_length", block_length), ("steps", steps)):
        if v is not None:
            settings[key] = v
    settings.update(threshold=threshold, kv_cache=kv_cache, fmt=fmt, config=cfg.name)
    pairs = task.heldout(prompts, seed=seed)
    ids, _ = task.encode_batch(tok, [p[0] for p in pairs], [p[1] for p in pairs])
    B, P = ids.shape
    dev = next(model.parameters()).device
    env = environment(dev)
    timed = _timer(dev, reps)

    # 1. The reference generation (torch sampler) and one generation per flow on the NPU backend.
    say("generate: torch reference sampler")
    ref_log: list = []
    ref_out, ref_stats = generate(model, ids, sampler="torch", seed=seed, return_stats=True, step_log=ref_log,
                                  **settings)
    ref_tokens = ref_out[:, P:].numpy()
    npu_logs: dict[str, list] = {}
    result_tokens: dict[str, Any] = {"torch": ref_tokens.tolist()}
    mismatches: dict[str, int] = {}
    walls = {"torch_reference_sampler": ref_stats.as_dict()}
    for flow in flows:
        say(f"generate: {backend} {flow}")
        log: list = []
        out, st = generate(model, ids, sampler=backend, flow=flow, seed=seed, return_stats=True, step_log=log,
                           **settings)
        got = out[:, P:].numpy()
        npu_logs[flow] = log
        result_tokens[f"{backend}_{flow}"] = got.tolist()
        mismatches[flow] = int((got != ref_tokens).sum())
        walls[f"{backend}_{flow}"] = st.as_dict()
        if len(log) != len(ref_log):
            raise RuntimeError(f"{backend} {flow} took {len(log)} steps, the torch sampler {len(ref_log)}")

    # 2. The PyTorch baseline on every step: forward replay and eager sampling first, then
    #    torch.compile in a second pass (its compile workers would disturb the other timings).
    say("time the PyTorch baseline")
    model_cache: dict = {}
    rows, inputs = [], []
    for i, rec in enumerate(ref_log):
        lg = rec.logits.to(dev)
        m = torch.from_numpy(rec.mask).to(dev)
        xb = torch.from_numpy(rec.x).to(dev)
        kk = torch.from_numpy(rec.k).to(dev) if rec.k is not None else None
        inputs.append((lg, m, xb, kk, rec.threshold))
        Bs, L, V = (int(s) for s in rec.logits.shape)
        mode = "topk" if rec.k is not None else "threshold"
        row: dict[str, Any] = {"index": i, "block": rec.block, "step": rec.step, "B": Bs, "L": L, "V": V,
                               "mode": mode, "k": None if rec.k is None else rec.k.tolist(),
                               "committed": int((rec.x_new != rec.x).sum()),
                               "reference_sampler_s": rec.sample_s}
        if kv_cache == "none":
            seq = rec.seq.to(dev)
            s0 = rec.start

            def fwd(seq=seq, s0=s0, L=L):
                with torch.no_grad():
                    return model(seq)[:, s0:s0 + L]
            row["forward_s"] = timed(fwd)
            row["forward_method"] = "replayed (median)"
        else:
            row["forward_s"] = rec.forward_s
            row["forward_method"] = "timed once during generation (KV cache)"
        row["torch_eager_s"] = timed(lambda a=inputs[i]: rule(*a))
        row["torch_compile_s"] = None
        rows.append(row)
    compile_info: dict[str, Any] = {"enabled": bool(compile)}
    if compile:
        say("torch.compile the baseline sampling")
        try:
            compiled = torch.compile(rule)
            for i, row in enumerate(rows):
                if i == 0:  # compiles now (warm-up of the timer runs it again)
                    t0 = time.perf_counter()
                    compiled(*inputs[i])
                    if dev.type == "cuda":
                        torch.cuda.synchronize(dev)
                    compile_info["first_call_s"] = time.perf_counter() - t0
                row["torch_compile_s"] = timed(lambda a=inputs[i]: compiled(*a))
            compile_info["ok"] = True
        except Exception as e:  # noqa: BLE001 - e.g. inductor needs a C++ compiler: record why
            compile_info.update(ok=False, error=f"{type(e).__name__}: {e}"[:500])
            for row in rows:
                row["torch_compile_s"] = None
    # 3. The NPU: measured cycles of each flow, the analytical model of the same program, the projection.
    for i, row in enumerate(rows):
        Bs, L, V, mode = row["B"], row["L"], row["V"], row["mode"]
        row["npu"] = {}
        row["projection"] = {}
        for flow in flows:
            ri = npu_logs[flow][i].run_info
            est = _cycles_model(model_cache, cfg, Bs, L, V, mode, flow, fmt)
            model_cycles = est if isinstance(est, str) else est.cycles
            cycles = ri.cycles if ri is not None else None
            src = "RunInfo.cycles" if cycles is not None else f"analytical model ({backend} has no clock)"
            use = cycles if cycles is not None else (None if isinstance(est, str) else est.cycles)
            row["npu"][flow] = {"cycles": cycles, "model_cycles": None if isinstance(est, str) else est.cycles,
                                "source": src, "s": None if use is None else use / f_clk,
                                "instret": ri.instret if ri is not None else None,
                                "cosim_wall_s": ri.wall_s if ri is not None else None}
            if isinstance(est, str):
                row["npu"][flow]["model_error"] = model_cycles
            pe = _cycles_model(model_cache, pcfg, Bs, L, V, mode, flow, fmt)
            row["projection"][flow] = ({"cycles": None, "s": None, "error": pe} if isinstance(pe, str) else
                                       {"cycles": pe.cycles, "s": pe.seconds, "V_padded": pe.what["V_padded"]})

    # 4. Totals per implementation.
    tokens = B * settings["gen_length"]
    fwd_total = sum(r["forward_s"] for r in rows)
    impls: dict[str, tuple[str, list]] = {
        "torch_eager": (f"PyTorch eager ({dev.type})", [r["torch_eager_s"] for r in rows])}
    if all(r["torch_compile_s"] is not None for r in rows):
        impls["torch_compile"] = (f"PyTorch torch.compile ({dev.type})", [r["torch_compile_s"] for r in rows])
    for flow in flows:
        impls[f"npu_{flow}"] = (f"NPU {cfg.name} {flow} ({backend}, {cfg.clock.f_clk_mhz:g} MHz)",
                                [r["npu"][flow]["s"] for r in rows])
    for flow in flows:
        impls[f"projection_{flow}"] = (f"{pcfg.name} {flow} (analytical, {pcfg.clock.f_clk_mhz:g} MHz)",
                                       [r["projection"][flow]["s"] for r in rows])
    totals: dict[str, Any] = {}
    skipped = {}
    for key, (label, ts) in impls.items():
        if any(t is None for t in ts):  # no number for some step (see the step's error)
            skipped[key] = label
            continue
        s_total = sum(ts)
        step_total = fwd_total + s_total
        totals[key] = {"label": label, "sampling_s": s_total, "per_step_s": s_total / len(ts),
                       "forward_s": fwd_total, "total_s": step_total,
                       "tokens_per_s": tokens / step_total if step_total > 0 else None,
                       "sampling_share": s_total / step_total if step_total > 0 else None}
    def total(vals):
        return sum(vals) if all(v is not None for v in vals) else None

    for flow in flows:
        if f"npu_{flow}" in totals:
            totals[f"npu_{flow}"]["cycles"] = total([r["npu"][flow]["cycles"] for r in rows])
            totals[f"npu_{flow}"]["model_cycles"] = total([r["npu"][flow]["model_cycles"] for r in rows])
        if f"projection_{flow}" in totals:
            totals[f"projection_{flow}"]["cycles"] = total([r["projection"][flow]["cycles"] for r in rows])

    llada_rows = {}
    if llada:
        from dnpu.perf.project import bench_row

        say(f"project: {pcfg.name} at LLaDA scale")
        for flow in flows:
            try:
                llada_rows[flow] = bench_row(config=pcfg.name, flow=flow, fmt=fmt)
            except Exception as e:  # noqa: BLE001 - a profile the model cannot place: say so
                llada_rows[flow] = {"error": f"{type(e).__name__}: {e}"}

    def completion(row) -> str:
        eos = tok.eos_token_id
        row = list(row)
        return tok.decode(row[:row.index(eos)] if eos in row else row)

    return {
        "bench": "dnpu bench", "environment": env,
        "model": {"path": str(model_dir or "models/tiny-add (shipped)"), "task": task.name,
                  "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
                  "vocab_size": int(model.config.vocab_size)},
        "settings": settings | {"seed": seed, "prompts": B, "reps": reps, "flows": list(flows),
                                "mode": rows[0]["mode"] if rows else None},
        "backend": backend,
        "profile": {"name": cfg.name, "f_clk_mhz": cfg.clock.f_clk_mhz, "vlen": cfg.vector.vlen},
        "projection_profile": {"name": pcfg.name, "f_clk_mhz": pcfg.clock.f_clk_mhz, "vlen": pcfg.vector.vlen},
        "baseline": {"what": "LLaDA low-confidence sampling in native PyTorch (dnpu.sampling.reference.rule): FP32 "
                             "softmax of the model's logits, argmax, top-k or threshold commit; logits already "
                             "on the device", "timer": env["timer"], "torch_compile": compile_info},
        "prompts": [task.prompt(a, b) for a, b in pairs],
        "completions": {"torch": [completion(r) for r in ref_tokens.tolist()]}
        | {f"{backend}_{f}": [completion(r) for r in result_tokens[f"{backend}_{f}"]] for f in flows},
        "tokens": result_tokens, "token_mismatches": mismatches,
        "tokens_match": not any(mismatches.values()),
        "generated_tokens": tokens, "steps": rows, "totals": totals,
        "not_timed": {k: _why(rows, k) for k in skipped},
        "generate_wall": walls, "llada_scale": llada_rows,
    }


def _why(rows: list, key: str) -> str:
    """Why implementation `key` has no total: the first step's error."""
    for r in rows:
        e = (r["npu"][key[4:]].get("model_error") if key.startswith("npu_")
             else r["projection"][key.split("_", 1)[1]].get("error") if key.startswith("projection_") else None)
        if e:
            return e
    return "not timed on every step"


# --------------------------------------------------------------------------- output


def _t(s: float | None) -> str:
    """A time in the unit that suits it."""
    if s is None:
        return "-"
    for unit, f in (("s", 1.0), ("ms", 1e3), ("us", 1e6), ("ns", 1e9)):
        if s * f >= 1.0 or unit == "ns":
            return f"{s * f:.3g} {unit}" if s * f < 1000 else f"{s * f:,.0f} {unit}"
    return f"{s:g} s"


def _rate(x: float | None) -> str:
    if not x:
        return "-"
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def _pct(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.1f}%" if x >= 0.01 else f"{100 * x:.2g}%"


def _cy(e: dict) -> str:
    if e["cycles"] is not None:
        return f"{e['cycles']:,}"
    return f"~{e['model_cycles']:,}" if e.get("model_cycles") is not None else "-"


def _table(rows: list[tuple]) -> list[str]:
    w = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out = []
    for j, r in enumerate(rows):
        out.append("  ".join(str(c).ljust(w[i]) if i == 0 else str(c).rjust(w[i]) for i, c in enumerate(r)).rstrip())
        if j == 0:
            out.append("  ".join("-" * x for x in w))
    return out


def format_table(r: dict[str, Any], per_step: bool = True) -> str:
    """The result as text: a header, the per-step table, the totals, the LLaDA-scale rows."""
    env, s, prof, pp = r["environment"], r["settings"], r["profile"], r["projection_profile"]
    flows = s["flows"]
    lines = [f"dnpu bench: {r['model']['path']} ({r['model']['task']}, {r['model']['dtype']}), {s['prompts']} "
             f"prompt(s), gen_length {s['gen_length']} block_length {s['block_length']} steps {s['steps']}, "
             f"kv_cache {s['kv_cache']}, {s['mode']} commit, {s['fmt']} logits",
             f"PyTorch {env['torch']} baseline on {env['device'].upper()}: {env['name']}; timer: {env['timer']}"]
    if env["device"] != "cuda":
        lines.append(f"NOTE: {env['note']}")
    lines.append(f"NPU: {r['backend']} on profile {prof['name']} at {prof['f_clk_mhz']:g} MHz (time = cycles / "
                 f"f_clk); projection: {pp['name']} at {pp['f_clk_mhz']:g} MHz (analytical)")
    mm = ", ".join(f"{f}: {r['token_mismatches'][f]} differ" for f in flows)
    lines.append(f"tokens vs the torch sampler: {'match' if r['tokens_match'] else 'MISMATCH'} ({mm}; "
                 f"{r['generated_tokens']} generated tokens)")
    ci = r["baseline"]["torch_compile"]
    if ci.get("enabled") and not ci.get("ok"):
        lines.append(f"torch.compile failed: {ci.get('error')}")
    for key, why in r.get("not_timed", {}).items():
        lines.append(f"no total for {key}: {why}")
    if per_step and r["steps"]:
        head = ["step", "blk", "BxLxV", "forward", "torch eager", "torch.compile"]
        head += [f"{prof['name']} {f} cycles" for f in flows] + [f"{prof['name']} {f}" for f in flows]
        head += [f"{pp['name']} {f}" for f in flows]
        rows = [tuple(head)]
        for st in r["steps"]:
            rows.append((str(st["index"] + 1), str(st["block"] + 1), f"{st['B']}x{st['L']}x{st['V']}",
                         _t(st["forward_s"]), _t(st["torch_eager_s"]), _t(st["torch_compile_s"]),
                         *(_cy(st["npu"][f]) for f in flows),
                         *(_t(st["npu"][f]["s"]) for f in flows),
                         *(_t(st["projection"][f]["s"]) for f in flows)))
        lines.append("")
        lines.append("per step (~: analytical cycles, the backend has no clock):")
        lines += _table(rows)
    n = max(1, len(r["steps"]))
    rows = [("implementation", "cycles/step", "sampling/step", "sampling total", "forward total", "tokens/s",
             "sampling share")]
    for key, t in r["totals"].items():
        cy = f"{t['cycles'] / n:,.0f}" if t.get("cycles") is not None else (
            f"~{t['model_cycles'] / n:,.0f}" if t.get("model_cycles") is not None else "-")
        rows.append((t["label"], cy, _t(t["per_step_s"]), _t(t["sampling_s"]), _t(t["forward_s"]),
                     _rate(t["tokens_per_s"]),
                     _pct(t["sampling_share"])))
    lines.append("")
    lines.append(f"totals over {len(r['steps'])} steps (forward = the PyTorch forward on {env['device']}):")
    lines += _table(rows)
    if r.get("llada_scale"):
        lines.append("")
        for f, b in r["llada_scale"].items():
            if "error" in b:
                lines.append(f"LLaDA scale, {pp['name']} {f}: {b['error']}")
                continue
            lines.append(f"LLaDA scale (B={b['B']} L={b['L']} V={b['V']}), {b['config']} {f}: {b['cycles']:,} cycles "
                         f"= {b['ms']:.3f} ms per step ({b['over_bound']:.1f}x the single-pass bound"
                         + (f"; paper reports {b['paper_ms']} ms)" if b.get("paper_ms") else ")"))
    return "\n".join(lines)


def plot(r: dict[str, Any], path) -> None:
    """A PNG: left, the mean per-step time of every sampling implementation beside the model
    forward (log scale, values on the bars); right, the same per step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    env, prof = r["environment"], r["profile"]
    fwd = [st["forward_s"] for st in r["steps"]]
    colors = {"forward": "#555555", "torch_eager": "#1f77b4", "torch_compile": "#6baed6", "npu_phased": "#d62728",
              "npu_fused": "#ff9896", "projection_phased": "#2ca02c", "projection_fused": "#98df8a"}
    series = [("model forward", fwd, colors["forward"])]
    labels = {"torch_eager": "torch eager", "torch_compile": "torch.compile"}
    for key, t in r["totals"].items():
        if key in labels:
            per = [st[f"{key}_s"] for st in r["steps"]]
            name = f"{labels[key]} ({env['device']})"
        elif key.startswith("npu_"):
            f = key[4:]
            per = [st["npu"][f]["s"] for st in r["steps"]]
            name = f"NPU {prof['name']} {f} ({prof['f_clk_mhz']:g} MHz, {r['backend']})"
        else:
            f = key[len("projection_"):]
            per = [st["projection"][f]["s"] for st in r["steps"]]
            name = f"{r['projection_profile']['name']} {f} (analytical)"
        series.append((name, per, colors.get(key, "#9467bd")))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(14, 5.5), gridspec_kw={"width_ratios": [1.25, 1]})
    means = [statistics.fmean(v) * 1e6 for _, v, _ in series]
    ys = np.arange(len(series))[::-1]
    a1.barh(ys, means, color=[c for _, _, c in series])
    a1.set_yticks(ys, [n for n, _, _ in series])
    a1.set_xscale("log")
    a1.set_xlabel("time per step, µs (log scale; mean over steps)")
    for y, v in zip(ys, means):
        a1.text(v, y, f" {_t(v / 1e6)}", va="center", fontsize=9)
    a1.set_xlim(min(means) / 3, max(means) * 8)
    a1.set_title("sampling per step vs the model forward")
    steps = np.arange(1, len(fwd) + 1)
    for n, v, c in series:
        a2.plot(steps, np.asarray(v) * 1e6, "o-", color=c, label=n, lw=2 if n == "model forward" else 1.2)
    a2.set_yscale("log")
    a2.set_xlabel("step")
    a2.set_ylabel("µs (log scale)")
    a2.set_xticks(steps)
    a2.set_title("per step")
    a2.legend(fontsize=8, loc="best")
    a2.grid(True, which="both", alpha=0.3)
    s = r["settings"]
    dev = env["name"] if env["device"] == "cuda" else f"CPU {env['name']} (no GPU)"
    fig.suptitle(f"dnpu bench: {r['model']['task']}, B={s['prompts']}, {len(fwd)} steps; PyTorch {env['torch']} "
                 f"on {dev}; NPU {r['backend']} {prof['name']}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- the command


def _cmd(args) -> int:
    import json

    from dnpu.cli import gen as cli_gen

    try:
        flows = tuple(f.strip() for f in args.flows.split(",") if f.strip())
        show = (lambda m: print(f"dnpu bench: {m}", file=sys.stderr, flush=True)) if not args.quiet else None
        r = run(args.model, backend=args.backend, prompts=args.prompts, config=args.config,
                project_config=args.project_config, flows=flows, gen_length=args.gen_length,
                block_length=args.block_length, steps=args.steps, threshold=args.threshold,
                kv_cache=args.kv_cache, fmt=args.fmt, compile=not args.no_compile, reps=args.reps,
                seed=args.seed, device=args.device, dtype=args.dtype, threads=args.threads, progress=show)
    except cli_gen._user_errors() as e:
        print(f"dnpu bench: error: {e}", file=sys.stderr)
        return 2
    print(format_table(r))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2) + "\n")
    if args.plot:
        plot(r, args.plot)
        print(f"plot: {args.plot}")
    if not r["tokens_match"]:
        print(f"dnpu bench: FAILED: {args.backend} tokens differ from the torch sampler: {r['token_mismatches']}",
              file=sys.stderr)
        return 1
    return 0


def add_command(sub) -> None:
    """Register `dnpu bench` on `dnpu`'s subparsers."""
    s = sub.add_parser("bench", help="time a generation: PyTorch forward and sampling vs NPU cycles, and the "
                                     "asic-2048 projection (table, --json, --plot)")
    s.add_argument("--backend", default="verilator", help="NPU backend: verilator (default), emu or pynq")
    s.add_argument("--model", help="model directory (default: the shipped tiny model models/tiny-add)")
    s.add_argument("--prompts", type=int, default=4, help="held-out prompts of the model's task, one batch "
                                                          "(default 4)")
    s.add_argument("--gen-length", dest="gen_length", type=int, help="tokens to generate (default: the model's)")
    s.add_argument("--block-length", dest="block_length", type=int, help="block size (default: the model's)")
    s.add_argument("--steps", type=int, help="sampling steps over all blocks (default: the model's)")
    s.add_argument("--threshold", type=float, help="Fast-dLLM confidence threshold (default: LLaDA quotas)")
    s.add_argument("--kv-cache", dest="kv_cache", default="none", choices=("none", "prefix", "dual"))
    s.add_argument("--flows", default="phased,fused", help="NPU flows, comma-separated (default phased,fused)")
    s.add_argument("--fmt", default="e4m3", help="MX format of the logits")
    s.add_argument("--config", default="sim", help="hardware profile the NPU backend runs (default sim)")
    s.add_argument("--project-config", dest="project_config", default="asic-2048",
                   help="profile of the analytical projection (default asic-2048)")
    s.add_argument("--reps", type=int, default=20, help="timed repetitions per step, median (default 20)")
    s.add_argument("--no-compile", dest="no_compile", action="store_true", help="skip torch.compile")
    s.add_argument("--seed", type=int, default=0, help="seed of the held-out prompt draw")
    s.add_argument("--dtype", default="bf16", help="model dtype: bf16 (default) or fp32")
    s.add_argument("--device", help="torch device of the model (default: cuda when available, else cpu)")
    s.add_argument("--threads", type=int, help="torch CPU threads (default: 1 for a model on the CPU, where "
                                               "the tiny model gains nothing from more; else torch's)")
    s.add_argument("--json", help="write the full result to this file")
    s.add_argument("--plot", help="write a PNG chart to this file")
    s.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    s.set_defaults(func=_cmd)
