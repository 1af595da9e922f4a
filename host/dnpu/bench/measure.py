"""The measurements of :func:`dnpu.bench.run`, one function per step: set up the model and
prompts, run the generations, time the PyTorch baseline, read the NPU cycles and the
projection, total them, and assemble the JSON-ready result."""

from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dnpu.compiler import FLOWS


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


def timer(device, reps: int, warmup: int = 2) -> Callable[[Callable[[], Any]], float]:
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


def _cycles_model(cache: dict, cfg, B: int, L: int, V: int, mode: str, flow: str, fmt: str):
    """The analytical Estimate of the step, or the reason there is none (a str)."""
    from dnpu.perf import analytical

    key = (cfg.name, B, L, V, mode, flow, fmt)
    if key not in cache:
        try:
            cache[key] = analytical.step(cfg, B, L, V, mode, flow, fmt, pad=True)
        except (analytical.ModelError, ValueError) as e:  # e.g. an instruction the model has no rule for
            cache[key] = f"analytical model of {cfg.name}: {e}"
    return cache[key]


class Stages:
    """Calls ``progress(done, total)`` as the run's `total` steps finish (the first call: 0 done)."""

    def __init__(self, progress: Callable[[int, int], None] | None, total: int):
        self.progress, self.total, self.done = progress, total, 0
        if progress is not None:
            progress(0, total)

    def __call__(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)


# --------------------------------------------------------------------------- set-up


@dataclasses.dataclass
class Setup:
    """The model, its prompts and the settings every step of the run uses."""

    model: Any
    tok: Any
    task: Any
    settings: dict
    problems: list  # the task's held-out problems (tuples)
    ids: Any  # (B, P) prompt tokens
    cfg: Any  # the profile the NPU backend runs
    pcfg: Any  # the profile of the projection
    dev: Any
    env: dict


def check_args(backend: str, flows, prompts, reps: int) -> tuple[str, ...]:
    """The flows as a tuple; ValueError for an argument run() cannot use."""
    from dnpu import sampling

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
    return flows


def setup(model_dir, *, prompts: int, config: str, project_config: str, overrides: dict, seed: int,
          device, dtype: str, threads: int | None) -> Setup:
    """Load the profiles and the model (torch's CPU threads set, see run()), draw the prompts."""
    import torch

    from dnpu.model import load, model_info
    from dnpu.model.tasks import generation_defaults, get_task
    from dnpu.spec import config as config_mod

    cfg = config_mod.load(config)
    pcfg = config_mod.load(project_config)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive int; got {threads!r}")
    model, tok = load(model_dir, device=device, dtype=dtype)
    dev = next(model.parameters()).device
    if threads is None and dev.type == "cpu":
        threads = 1
    if threads is not None:
        torch.set_num_threads(threads)
    info = model_info(model_dir)
    if not info.get("task"):
        raise ValueError("the model names no task (no dnpu_task.json): dnpu bench draws its prompts from it")
    task = get_task(info["task"])
    settings = generation_defaults(info, task)
    for key in ("gen_length", "block_length", "steps"):
        if overrides[key] is not None:
            settings[key] = overrides[key]
    settings.update(threshold=overrides["threshold"], kv_cache=overrides["kv_cache"], fmt=overrides["fmt"],
                    config=cfg.name)
    problems = task.heldout(prompts, seed=seed)
    ids, _ = task.encode_problems(tok, problems)
    return Setup(model, tok, task, settings, problems, ids, cfg, pcfg, dev, environment(dev))


# --------------------------------------------------------------------------- 1. the generations


@dataclasses.dataclass
class Generations:
    """The torch reference generation and one generation per flow on the NPU backend."""

    ref_log: list  # dnpu.generation.StepRecord of every step of the reference
    ref_tokens: np.ndarray
    npu_logs: dict[str, list]  # per flow
    tokens: dict[str, Any]  # generated tokens: "torch", f"{backend}_{flow}"
    mismatches: dict[str, int]  # per flow, tokens that differ from the reference
    walls: dict[str, dict]  # GenerationStats of every generation


def generate_all(s: Setup, backend: str, flows: tuple[str, ...], seed: int, stage: Stages) -> Generations:
    from dnpu.generation import generate

    P = s.ids.shape[1]
    ref_log: list = []
    ref_out, ref_stats = generate(s.model, s.ids, sampler="torch", seed=seed, return_stats=True,
                                  step_log=ref_log, **s.settings)
    stage()
    ref_tokens = ref_out[:, P:].numpy()
    g = Generations(ref_log, ref_tokens, {}, {"torch": ref_tokens.tolist()}, {},
                    {"torch_reference_sampler": ref_stats.as_dict()})
    for flow in flows:
        log: list = []
        out, st = generate(s.model, s.ids, sampler=backend, flow=flow, seed=seed, return_stats=True,
                           step_log=log, **s.settings)
        got = out[:, P:].numpy()
        g.npu_logs[flow] = log
        g.tokens[f"{backend}_{flow}"] = got.tolist()
        g.mismatches[flow] = int((got != ref_tokens).sum())
        g.walls[f"{backend}_{flow}"] = st.as_dict()
        if len(log) != len(ref_log):
            raise RuntimeError(f"{backend} {flow} took {len(log)} steps, the torch sampler {len(ref_log)}")
        stage()
    return g


# --------------------------------------------------------------------------- 2. the PyTorch baseline


def time_baseline(s: Setup, ref_log: list, timed, kv_cache: str) -> tuple[list[dict], list[tuple]]:
    """Per step: the forward replayed (without a KV cache) and the eager baseline sampling.
    Returns the step rows and the sampling inputs of every step (on the device)."""
    import torch

    from dnpu.sampling.reference import rule

    rows, inputs = [], []
    for i, rec in enumerate(ref_log):
        lg = rec.logits.to(s.dev)
        m = torch.from_numpy(rec.mask).to(s.dev)
        xb = torch.from_numpy(rec.x).to(s.dev)
        kk = torch.from_numpy(rec.k).to(s.dev) if rec.k is not None else None
        inputs.append((lg, m, xb, kk, rec.threshold))
        Bs, L, V = (int(n) for n in rec.logits.shape)
        mode = "topk" if rec.k is not None else "threshold"
        row: dict[str, Any] = {"index": i, "block": rec.block, "step": rec.step, "B": Bs, "L": L, "V": V,
                               "mode": mode, "k": None if rec.k is None else rec.k.tolist(),
                               "committed": int((rec.x_new != rec.x).sum()),
                               "reference_sampler_s": rec.sample_s}
        if kv_cache == "none":
            seq = rec.seq.to(s.dev)
            s0 = rec.start

            def fwd(seq=seq, s0=s0, L=L):
                with torch.no_grad():
                    return s.model(seq)[:, s0:s0 + L]
            row["forward_s"] = timed(fwd)
            row["forward_method"] = "replayed (median)"
        else:
            row["forward_s"] = rec.forward_s
            row["forward_method"] = "timed once during generation (KV cache)"
        row["torch_eager_s"] = timed(lambda a=inputs[i]: rule(*a))
        row["torch_compile_s"] = None
        rows.append(row)
    return rows, inputs


def time_compiled(rows: list[dict], inputs: list[tuple], dev, timed) -> dict[str, Any]:
    """The baseline sampling under torch.compile, after the other timings (its compile workers
    would disturb them); a compile failure is recorded in the returned info, not raised."""
    import torch

    from dnpu.sampling.reference import rule

    info: dict[str, Any] = {"enabled": True}
    try:
        compiled = torch.compile(rule)
        for i, row in enumerate(rows):
            if i == 0:  # compiles now (warm-up of the timer runs it again)
                t0 = time.perf_counter()
                compiled(*inputs[i])
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                info["first_call_s"] = time.perf_counter() - t0
            row["torch_compile_s"] = timed(lambda a=inputs[i]: compiled(*a))
        info["ok"] = True
    except Exception as e:  # noqa: BLE001 - e.g. inductor needs a C++ compiler: record why
        info.update(ok=False, error=f"{type(e).__name__}: {e}"[:500])
        for row in rows:
            row["torch_compile_s"] = None
    return info


# --------------------------------------------------------------------------- 3. NPU cycles, projection


def npu_cycles(rows: list[dict], npu_logs: dict[str, list], s: Setup, backend: str, flows, fmt: str) -> None:
    """Per step and flow: the NPU's measured cycles (or the analytical model where the backend
    has no clock) and the analytical projection on the projection profile; into the rows."""
    cache: dict = {}
    f_clk = s.cfg.clock.f_clk_mhz * 1e6
    for i, row in enumerate(rows):
        shape = (row["B"], row["L"], row["V"], row["mode"])
        row["npu"] = {}
        row["projection"] = {}
        for flow in flows:
            ri = npu_logs[flow][i].run_info
            est = _cycles_model(cache, s.cfg, *shape, flow, fmt)
            model_cycles = None if isinstance(est, str) else est.cycles
            cycles = ri.cycles if ri is not None else None
            src = "RunInfo.cycles" if cycles is not None else f"analytical model ({backend} has no clock)"
            use = cycles if cycles is not None else model_cycles
            row["npu"][flow] = {"cycles": cycles, "model_cycles": model_cycles,
                                "source": src, "s": None if use is None else use / f_clk,
                                "instret": ri.instret if ri is not None else None,
                                "cosim_wall_s": ri.wall_s if ri is not None else None}
            if isinstance(est, str):
                row["npu"][flow]["model_error"] = est
            pe = _cycles_model(cache, s.pcfg, *shape, flow, fmt)
            row["projection"][flow] = ({"cycles": None, "s": None, "error": pe} if isinstance(pe, str) else
                                       {"cycles": pe.cycles, "s": pe.seconds, "V_padded": pe.what["V_padded"]})


def llada_scale(pcfg, flows, fmt: str) -> dict[str, dict]:
    """dnpu.perf.project.bench_row of every flow (or why there is none)."""
    from dnpu.perf.project import bench_row

    out = {}
    for flow in flows:
        try:
            out[flow] = bench_row(config=pcfg.name, flow=flow, fmt=fmt)
        except Exception as e:  # noqa: BLE001 - a profile the model cannot place: say so
            out[flow] = {"error": f"{type(e).__name__}: {e}"}
    return out


# --------------------------------------------------------------------------- 4. totals


def _sum_or_none(vals: list) -> Any:
    return sum(vals) if all(v is not None for v in vals) else None


def sum_totals(rows: list[dict], s: Setup, backend: str, flows, tokens: int) -> tuple[dict, dict]:
    """Per implementation: sampling and forward totals, tokens/s, sampling's share; and the
    implementations without a number on some step (key: label), which get no total."""
    dev, cfg, pcfg = s.dev.type, s.cfg, s.pcfg
    fwd_total = sum(r["forward_s"] for r in rows)
    impls: dict[str, tuple[str, list]] = {"torch_eager": (f"PyTorch eager ({dev})", [r["torch_eager_s"] for r in rows])}
    if all(r["torch_compile_s"] is not None for r in rows):
        impls["torch_compile"] = (f"PyTorch torch.compile ({dev})", [r["torch_compile_s"] for r in rows])
    for flow in flows:
        impls[f"npu_{flow}"] = (f"NPU {cfg.label} {flow} ({backend}, {cfg.clock.f_clk_mhz:g} MHz)",
                                [r["npu"][flow]["s"] for r in rows])
    for flow in flows:
        impls[f"projection_{flow}"] = (f"{pcfg.name} {flow} (analytical, {pcfg.clock.f_clk_mhz:g} MHz)",
                                       [r["projection"][flow]["s"] for r in rows])
    out: dict[str, Any] = {}
    skipped = {}
    for key, (label, ts) in impls.items():
        if any(t is None for t in ts):  # no number for some step (see the step's error)
            skipped[key] = label
            continue
        s_total = sum(ts)
        step_total = fwd_total + s_total
        out[key] = {"label": label, "sampling_s": s_total, "per_step_s": s_total / len(ts),
                    "forward_s": fwd_total, "total_s": step_total,
                    "tokens_per_s": tokens / step_total if step_total > 0 else None,
                    "sampling_share": s_total / step_total if step_total > 0 else None}
    for flow in flows:
        if f"npu_{flow}" in out:
            out[f"npu_{flow}"]["cycles"] = _sum_or_none([r["npu"][flow]["cycles"] for r in rows])
            out[f"npu_{flow}"]["model_cycles"] = _sum_or_none([r["npu"][flow]["model_cycles"] for r in rows])
        if f"projection_{flow}" in out:
            out[f"projection_{flow}"]["cycles"] = _sum_or_none([r["projection"][flow]["cycles"] for r in rows])
    return out, skipped


def why_not_timed(rows: list, key: str) -> str:
    """Why implementation `key` has no total: the first step's error."""
    for r in rows:
        e = (r["npu"][key[4:]].get("model_error") if key.startswith("npu_")
             else r["projection"][key.split("_", 1)[1]].get("error") if key.startswith("projection_") else None)
        if e:
            return e
    return "not timed on every step"


# --------------------------------------------------------------------------- 5. the result


def summary(model_dir, s: Setup, g: Generations, *, backend: str, flows, seed: int, reps: int, rows: list,
            compile_info: dict, totals: dict, skipped: dict, llada_rows: dict) -> dict[str, Any]:
    """The JSON-ready result of run() (its keys: dnpu.bench)."""
    model, tok, task, cfg, pcfg = s.model, s.tok, s.task, s.cfg, s.pcfg
    B = s.ids.shape[0]

    def completion(row) -> str:
        eos = tok.eos_token_id
        row = list(row)
        return tok.decode(row[:row.index(eos)] if eos in row else row)

    return {
        "bench": "dnpu bench", "environment": s.env,
        "model": {"path": str(model_dir or "models/tiny-add (shipped)"), "task": task.name,
                  "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
                  "vocab_size": int(model.config.vocab_size)},
        "settings": s.settings | {"seed": seed, "prompts": B, "reps": reps, "flows": list(flows),
                                  "mode": rows[0]["mode"] if rows else None},
        "backend": backend,
        "profile": {"name": cfg.label, "f_clk_mhz": cfg.clock.f_clk_mhz, "vlen": cfg.vector.vlen},
        "projection_profile": {"name": pcfg.name, "f_clk_mhz": pcfg.clock.f_clk_mhz, "vlen": pcfg.vector.vlen},
        "baseline": {"what": "LLaDA low-confidence sampling in native PyTorch (dnpu.sampling.reference.rule): FP32 "
                             "softmax of the model's logits, argmax, top-k or threshold commit; logits already "
                             "on the device", "timer": s.env["timer"], "torch_compile": compile_info},
        "prompts": [task.prompt(*p) for p in s.problems],
        "completions": {"torch": [completion(r) for r in g.ref_tokens.tolist()]}
        | {f"{backend}_{f}": [completion(r) for r in g.tokens[f"{backend}_{f}"]] for f in flows},
        "tokens": g.tokens, "token_mismatches": g.mismatches,
        "tokens_match": not any(g.mismatches.values()),
        "generated_tokens": B * s.settings["gen_length"], "steps": rows, "totals": totals,
        "not_timed": {k: why_not_timed(rows, k) for k in skipped},
        "generate_wall": g.walls, "llada_scale": llada_rows,
    }
