"""`dnpu generate`, `dnpu eval` and `dnpu check-generate`: generation on the NPU
(and `dnpu bench`, registered here from :mod:`dnpu.bench`).

Registered by :func:`dnpu.cli.build_parser` through :func:`add_commands`; each
command is a thin shell over :mod:`dnpu.generation` and
:mod:`dnpu.verify.generation`. Errors a user can fix (a bad prompt, a missing or
broken checkpoint, inconsistent generation settings) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

__all__ = ["add_commands"]


def _bar(label: str):
    """A progress bar on stderr, drawn only when stderr is a terminal (logs stay clean)."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int, extra: str = "") -> None:
        width = 24
        fill = int(width * done / total) if total else width
        end = "\n" if done >= total else ""
        print(f"\r{label} [{'#' * fill}{'.' * (width - fill)}] {done}/{total} {extra}", end=end,
              file=sys.stderr, flush=True)
    return show


def _load(args):
    import torch

    from dnpu.model import load, model_info

    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be at least 1; got {args.threads}")
        torch.set_num_threads(args.threads)
    model, tok = load(args.model, device=args.device, dtype=args.dtype)
    return model, tok, model_info(args.model)


def _gen_settings(args, info: dict, task_name: str | None) -> dict:
    from dnpu.model.tasks import generation_defaults
    from dnpu.model.tasks import get_task

    d = generation_defaults(info, get_task(task_name or info.get("task") or "add3"))
    for k in ("gen_length", "block_length", "steps"):
        v = getattr(args, k)
        if v is not None:
            d[k] = v
    d.update(threshold=args.threshold, kv_cache=args.kv_cache, flow=args.flow, fmt=args.fmt,
             temperature=args.temperature, config=args.config)
    return d


def _write_json(path: str | None, obj: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(obj, indent=2) + "\n")


def _fail(cmd: str, e: Exception) -> int:
    print(f"dnpu {cmd}: error: {e}", file=sys.stderr)
    return 2


def _user_errors():
    from dnpu.spec.config import ConfigError
    from dnpu.model import CheckpointError

    return (ValueError, FileNotFoundError, CheckpointError, ConfigError, NotImplementedError)


def _cmd_generate(args: argparse.Namespace) -> int:
    from dnpu.generation import generate

    try:
        model, tok, info = _load(args)
        settings = _gen_settings(args, info, None)
        ids = tok.encode(args.prompt)
        if not ids:
            raise ValueError("the prompt is empty")
        bar = _bar(f"generate {args.backend}")
        prog, last = None, [0, 0]
        if bar is not None:
            def prog(p):  # noqa: E306 - steps of all blocks; a threshold block may end early
                last[:] = [p.block * p.max_steps + p.step, p.num_blocks * p.max_steps]
                bar(*last, f"block {p.block + 1}/{p.num_blocks}")
        out, stats = generate(model, [ids], sampler=args.backend, progress=prog, return_stats=True,
                              seed=args.seed, **settings)
        if bar is not None and last[0] < last[1]:
            bar(last[1], last[1], "done")
    except _user_errors() as e:
        return _fail("generate", e)
    gen = out[0, len(ids):].tolist()
    eos = tok.eos_token_id
    shown = gen[:gen.index(eos)] if eos in gen else gen
    completion = tok.decode(shown)
    print(args.prompt + completion)
    print(f"{stats.forwards} forwards {stats.forward_s * 1e3:.1f} ms, sampling on {args.backend} "
          f"{stats.sample_s * 1e3:.1f} ms, other {stats.other_s * 1e3:.1f} ms; "
          f"{stats.tokens} tokens in {stats.wall_s:.3f} s = {stats.tokens_per_s:.1f} tokens/s "
          f"({model.device.type}, {str(model.dtype).removeprefix('torch.')})")
    _write_json(args.json, {
        "prompt": args.prompt, "completion": completion, "text": args.prompt + completion,
        "tokens": gen, "backend": args.backend, "model": str(args.model or "shipped"),
        "settings": settings | {"seed": args.seed}, "timing": stats.as_dict(),
        "device": model.device.type, "dtype": str(model.dtype).removeprefix("torch."),
    })
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from dnpu.verify.generation import evaluate

    try:
        model, tok, info = _load(args)
        task = args.task or info.get("task")
        if not task:
            raise ValueError("the model names no task (no dnpu_task.json): pass --task, e.g. --task add3")
        settings = _gen_settings(args, info, task)
        r = evaluate(model, tok, task, problems=args.problems, seed=args.seed, batch=args.batch,
                     sampler=args.backend, progress=_bar(f"eval {task}"), **settings)
    except _user_errors() as e:
        return _fail("eval", e)
    r = {"task": r["task"], "problems": r["problems"], "exact_match": r["exact_match"], "correct": r["correct"],
         "backend": args.backend, "dtype": str(model.dtype).removeprefix("torch."),
         "settings": settings | {"seed": args.seed},
         "failures": r["failures"]}
    _write_json(args.json, r)
    print(f"{r['task']}: exact match {r['exact_match']:.4f} ({r['correct']}/{r['problems']}) "
          f"sampler {args.backend}, {r['dtype']}, gen_length {settings['gen_length']} "
          f"block_length {settings['block_length']} steps {settings['steps']} kv_cache {settings['kv_cache']}"
          + (f" threshold {settings['threshold']}" if settings["threshold"] is not None else ""))
    return 0


def _cmd_check_generate(args: argparse.Namespace) -> int:
    from dnpu.verify.generation import check_generate

    try:
        model, tok, info = _load(args)
        task = args.task or info.get("task")
        if not task:
            raise ValueError("the model names no task (no dnpu_task.json): pass --task, e.g. --task add3")
        settings = _gen_settings(args, info, task)
        r = check_generate(model, tok, task, args.backend, prompts=args.prompts, seed=args.seed,
                           batch=args.batch,
                           progress=_bar(f"check-generate {args.backend}"), **settings)
    except _user_errors() as e:
        return _fail("check-generate", e)
    r["settings"] = settings | {"seed": args.seed}
    _write_json(args.json, r)
    print(json.dumps(r, indent=2))
    if r["token_mismatches"]:
        print(f"dnpu check-generate: FAILED: {r['token_mismatches']} generated tokens differ between "
              f"{args.backend} and torch in {r['rows_differing']} of {r['prompts']} prompts; "
              f"first: {r['first_mismatch']}", file=sys.stderr)
        return 1
    return 0


def _common(s: argparse.ArgumentParser, backend_default: str) -> None:
    s.add_argument("--backend", default=backend_default,
                   help=f"sampler: torch, emu, verilator or pynq (default {backend_default})")
    s.add_argument("--model", help="model directory (config.json, *.safetensors, tokenizer.json); "
                                   "default: the shipped tiny model models/tiny-add")
    s.add_argument("--gen-length", dest="gen_length", type=int, help="tokens to generate (default: the model's)")
    s.add_argument("--block-length", dest="block_length", type=int, help="block size (default: the model's)")
    s.add_argument("--steps", type=int, help="sampling steps over all blocks (default: the model's)")
    s.add_argument("--threshold", type=float, help="Fast-dLLM confidence threshold (default: LLaDA quotas)")
    s.add_argument("--kv-cache", dest="kv_cache", default="none", choices=("none", "prefix", "dual"))
    s.add_argument("--flow", default="fused", choices=("fused", "phased"), help="NPU sampling flow")
    s.add_argument("--fmt", default="e4m3", help="MX format of the logits")
    s.add_argument("--config", default="sim", help="hardware profile of NPU backends")
    s.add_argument("--temperature", type=float, default=0.0, help="Gumbel noise temperature (0 = greedy)")
    s.add_argument("--seed", type=int, default=0, help="seed of the noise and of the held-out draw")
    s.add_argument("--dtype", default="bf16", help="model dtype: bf16 (default) or fp32")
    s.add_argument("--device", help="torch device of the model (default: cuda when available, else cpu)")
    s.add_argument("--threads", type=int, help="CPU threads for the forward (default: torch's)")
    s.add_argument("--json", help="also write the result to this file")


def add_commands(sub) -> None:
    """Register generate, eval, check-generate and bench on `dnpu`'s subparsers."""
    env_backend = os.environ.get("DNPU_BACKEND", "emu")

    s = sub.add_parser("generate", help="generate text with the sampling step on an NPU backend")
    s.add_argument("--prompt", required=True, help='prompt text, e.g. "123+456="')
    _common(s, env_backend)
    s.set_defaults(func=_cmd_generate)

    s = sub.add_parser("eval", help="exact-match accuracy of a model on held-out problems of its task")
    s.add_argument("--task", help="task name, e.g. add3 (default: the model's)")
    s.add_argument("--problems", type=int, default=500, help="held-out problems (default 500)")
    s.add_argument("--batch", type=int, default=250, help="prompts per generate call")
    _common(s, "torch")
    s.set_defaults(func=_cmd_eval)

    s = sub.add_parser("check-generate", help="generation on an NPU backend vs the torch sampler, token for token")
    s.add_argument("--task", help="task whose held-out prompts to use (default: the model's)")
    s.add_argument("--prompts", type=int, default=8, help="prompts (default 8)")
    s.add_argument("--batch", type=int, default=64, help="prompts per generate call")
    _common(s, env_backend)
    s.set_defaults(func=_cmd_check_generate)

    from dnpu import bench  # dnpu bench: forward and sampling times, NPU cycles, the asic-2048 projection

    bench.add_command(sub)
