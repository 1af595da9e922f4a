#!/usr/bin/env python3
"""The KV quantization study: how each KV-cache storage format changes generation.

For every model and KV format (docs/NUMERICS.md section 16) it generates the model's
held-out problems with a KV cache (`--kv-cache`, default dual) and reports

* ``exact_match``: the task's exact match with the cache stored in that format;
* ``mean_kl``: the mean KL divergence KL(p_bf16 || p_fmt) of the step's token
  distributions, over the masked positions of every step that reads the cache (not the
  refresh steps, whose logits come from a fresh forward), p_bf16 being what the same
  step computes, on the same sequence, with the cache stored in BF16;
* ``top1``: how often the two distributions' argmax agree at those positions.

    scripts/venv-run python scripts/kv_quant_study.py --json kv.json --plot kv.png
    scripts/venv-run python scripts/kv_quant_study.py --models models/tiny-add --formats bf16,e2m1 --problems 50

The JSON is ``{"models": {MODEL: {KV_FORMAT: {"exact_match", "mean_kl", "top1",
"problems", "positions"}}}, "settings": {...}}``; MODEL is the model directory's name.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host"))

DEFAULT_FORMATS = ("bf16", "e4m3", "e2m3", "int8", "e2m1", "baos-e2m1")
DEFAULT_MODELS = (str(REPO / "models" / "tiny-add"), str(REPO / "models" / "tiny-rev"))


class UserError(Exception):
    """A mistake in the command line: one line, exit status 2."""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(DEFAULT_MODELS),
                   help="model directories, comma-separated (default: the shipped tiny-add and tiny-rev)")
    p.add_argument("--formats", default=",".join(DEFAULT_FORMATS), help="KV formats, comma-separated")
    p.add_argument("--problems", type=int, default=200, help="held-out problems per model (default 200)")
    p.add_argument("--batch", type=int, default=50, help="problems generated at once (default 50)")
    p.add_argument("--kv-cache", default="dual", choices=("prefix", "dual"))
    p.add_argument("--config", default="sim", help="hardware profile whose head layout the MX blocks follow")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--plot", help="write a figure here (needs matplotlib)")
    return p.parse_args(argv)


def _kl_top1(model, records, kv_cache: str, V: int) -> tuple[float, int, int]:
    """(sum of KL, agreeing argmaxes, positions) over the records' cache-reading steps."""
    import torch

    kl_sum, agree, n = 0.0, 0, 0
    cache, block = None, None
    with torch.no_grad():
        for r in records:
            if r.block != block:            # the block's first logged step refreshed the cache
                block = r.block
                cache = model(r.seq.to(model.device), return_kv=True)[1]
                continue
            s, L = r.start, r.x.shape[1]
            seq = r.seq.to(model.device)
            if kv_cache == "dual":
                ref = model(seq[:, s:s + L], kv=cache, start=s)
            else:
                ref = model(seq[:, s:], kv=cache, start=s)[:, :L]
            m = torch.from_numpy(r.mask)
            if not m.any():
                continue
            lp = torch.log_softmax(ref.detach().cpu()[..., :V].double(), -1)[m]
            lq = torch.log_softmax(r.logits[..., :V].double(), -1)[m]
            kl_sum += float((lp.exp() * (lp - lq)).sum())
            agree += int((lp.argmax(-1) == lq.argmax(-1)).sum())
            n += int(m.sum())
    return kl_sum, agree, n


def study_model(model_dir: str, formats, *, problems: int, batch: int, kv_cache: str, config: str, seed: int,
                log=print) -> dict:
    from dnpu import generate
    from dnpu.model import get_task, load, model_info
    from dnpu.model.tasks import generation_defaults

    model, tok = load(model_dir, dtype="bf16")
    info = model_info(model_dir)
    if not info.get("task"):
        raise UserError(f"{model_dir}: the model names no task (no dnpu_task.json)")
    task = get_task(info["task"])
    sched = generation_defaults(info, task)
    held = task.heldout(problems, seed=seed)
    prompts, _ = task.encode_problems(tok, held)
    P, V = prompts.shape[1], model.config.vocab_size
    out = {}
    for fmt in formats:
        t0 = time.perf_counter()
        correct, kl, agree, n = 0, 0.0, 0, 0
        for lo in range(0, problems, batch):
            hi = min(problems, lo + batch)
            records: list = []
            gen = generate(model, prompts[lo:hi], kv_cache=kv_cache, kv_format=fmt, config=config, seed=seed,
                           step_log=records, **sched)
            for j, row in enumerate(gen[:, P:].tolist()):
                correct += bool(task.score(tok, *held[lo + j], row))
            k, a, m = _kl_top1(model, records, kv_cache, V)
            kl, agree, n = kl + k, agree + a, n + m
        out[fmt] = {"exact_match": correct / problems, "mean_kl": kl / n if n else 0.0,
                    "top1": agree / n if n else 1.0, "problems": problems, "positions": n}
        e = out[fmt]
        log(f"{Path(model_dir).name} {fmt:>10}: exact match {e['exact_match']:.4f}  mean KL {e['mean_kl']:.3e}  "
            f"top-1 {e['top1']:.4f}  ({n} positions, {time.perf_counter() - t0:.0f} s)")
    return out


def _write_atomic(path: str, data: bytes) -> None:
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".kvstudy.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(result["models"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for i, m in enumerate(models):
        fmts = list(result["models"][m])
        x = np.arange(len(fmts)) + i * 0.8 / len(models)
        em = [result["models"][m][f]["exact_match"] for f in fmts]
        kl = [max(result["models"][m][f]["mean_kl"], 1e-12) for f in fmts]
        axes[0].bar(x, em, width=0.8 / len(models), label=m)
        axes[1].bar(x, kl, width=0.8 / len(models), label=m)
    for ax, title in ((axes[0], "exact match"), (axes[1], "mean KL vs BF16 cache")):
        ax.set_xticks(np.arange(len(fmts)) + 0.4 - 0.4 / len(models))
        ax.set_xticklabels(fmts, rotation=30)
        ax.set_title(title)
        ax.legend()
    axes[1].set_yscale("log")
    fig.suptitle(f"KV cache formats ({result['settings']['kv_cache']} cache)")
    fig.tight_layout()
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".kvstudy.", suffix=Path(path).suffix)
    os.close(fd)
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        import torch

        from dnpu.model.kvquant import check_kv_format

        torch.set_num_threads(args.threads)
        formats = [check_kv_format(f.strip()) for f in args.formats.split(",") if f.strip()]
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        if not formats or not models:
            raise UserError("--formats and --models each need at least one entry")
        if args.problems < 1 or args.batch < 1:
            raise UserError("--problems and --batch must be positive")
        for m in models:
            if not (Path(m) / "config.json").is_file():
                raise UserError(f"{m}: not a model directory (no config.json)")
        if args.plot:
            import importlib.util

            if importlib.util.find_spec("matplotlib") is None:
                raise UserError("--plot needs matplotlib")
        res = {"models": {}, "settings": {"kv_cache": args.kv_cache, "config": args.config, "problems": args.problems,
                                          "seed": args.seed, "formats": formats}}
        for m in models:
            res["models"][Path(m).name] = study_model(m, formats, problems=args.problems, batch=args.batch,
                                                      kv_cache=args.kv_cache, config=args.config, seed=args.seed,
                                                      log=lambda s: print(s, flush=True))
    except (UserError, ValueError) as e:
        print(f"kv_quant_study: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        _write_atomic(args.json, (json.dumps(res, indent=2) + "\n").encode())
    if args.plot:
        plot(res, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
