#!/usr/bin/env python3
"""Train the tiny LLaDA-architecture models that dnpu ships (models/tiny-add, models/tiny-rev).

Objective: LLaDA's masked-diffusion loss, as in its supervised fine-tuning. For
each example draw t ~ U(0, 1] (stratified over the batch to lower the
variance), mask every answer token independently with probability
p = (1 - eps) t + eps, keep the prompt visible, and minimise the cross-entropy
on the masked tokens divided by p, averaged over the answer tokens of the batch.
The answer region has a fixed length (the answer, then end-of-text
padding), so generation with a fixed ``gen_length`` sees what training saw.

Everything is deterministic given ``--seed``: the initial weights, the problems
(a NumPy generator) and the masks (a torch generator), on a fixed number of
CPU threads (``--threads``; torch's CPU kernels are deterministic for a fixed
thread count). Each shipped task has its own defaults (TASK_DEFAULTS: output
directory and hyperparameters); an option given on the command line overrides
them. Run:

    scripts/venv-run python scripts/train_tiny.py                  # add3, writes models/tiny-add
    scripts/venv-run python scripts/train_tiny.py --task rev31     # writes models/tiny-rev
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host"))

from dnpu.model import LLaDA, LLaDAConfig, Tokenizer, char_tokenizer_json, get_task, save  # noqa: E402
from dnpu.model.llada import init_weights  # noqa: E402
from dnpu.model.tasks import generation_defaults  # noqa: E402

EPS = 1e-3

# Hyperparameters of a task without its own entry in TASK_DEFAULTS (those of add3).
BASE_DEFAULTS = {"steps": 4000, "batch": 128, "lr": 2e-3, "min_lr_frac": 0.05, "warmup": 200,
                 "weight_decay": 0.01, "d_model": 128, "layers": 4, "heads": 4, "mlp": 384,
                 "rope_theta": 10000.0, "eval_every": 500, "key_noise": 0.0}
# Per task: the output directory and what differs from BASE_DEFAULTS. rev31's context is
# four times add3's, so a step of the same batch costs about four times as much: half the
# batch and fewer steps keep its training under an hour on one shared CPU thread (the
# mirrored copy is learned after about 1,500 steps of 64).
TASK_DEFAULTS = {
    "add3": {"out": "tiny-add"},
    "rev31": {"out": "tiny-rev", "steps": 2500, "batch": 64, "key_noise": 0.12},
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="add3", help="the task (default add3); see dnpu.model.tasks")
    p.add_argument("--out", help="output directory (default: the task's, models/tiny-add for add3, "
                                 "models/tiny-rev for rev31, else models/tiny-<task>)")
    p.add_argument("--seed", type=int, default=0)
    # default None: the task's value (TASK_DEFAULTS, else BASE_DEFAULTS)
    p.add_argument("--steps", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--min-lr-frac", type=float, help="final lr as a fraction of --lr (cosine)")
    p.add_argument("--warmup", type=int)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--d-model", type=int)
    p.add_argument("--layers", type=int)
    p.add_argument("--heads", type=int)
    p.add_argument("--mlp", type=int)
    p.add_argument("--rope-theta", type=float)
    p.add_argument("--key-noise", type=float,
                   help="Gaussian noise added to every key during training, as a fraction of the key's RMS "
                        "per token and head (0 = none); see add_key_noise")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--eval-every", type=int)
    p.add_argument("--eval-problems", type=int, default=256)
    p.add_argument("--log-every", type=int, default=100)
    a = p.parse_args(argv)
    own = TASK_DEFAULTS.get(a.task, {})
    for k, v in BASE_DEFAULTS.items():
        if getattr(a, k) is None:
            setattr(a, k, own.get(k, v))
    if a.out is None:
        a.out = str(REPO / "models" / own.get("out", f"tiny-{a.task}"))
    return a


def lr_at(step: int, a: argparse.Namespace) -> float:
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    frac = (step - a.warmup) / max(1, a.steps - a.warmup)
    return a.lr * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * frac)))


def add_key_noise(model: LLaDA, sigma: float, gen: torch.Generator) -> None:
    """While the model trains, add sigma * rms * N(0, 1) to each key (before RoPE), rms being
    the key's own RMS over its head. A 4-bit KV cache rounds each key by about 11 % of its
    RMS (e2m1); attention trained with noise of that size keeps margins that rounding does
    not flip. The noise is the same for every KV format, so the KV study still compares the
    formats on equal terms; evaluation and the shipped weights see no noise."""
    hd = model.config.d_model // model.config.n_heads

    def hook(module, inputs, out):
        if not module.training:
            return out
        k = out.view(*out.shape[:-1], -1, hd)
        rms = k.detach().pow(2).mean(-1, keepdim=True).sqrt()
        noise = torch.randn(k.shape, generator=gen, dtype=k.dtype)
        return (k + sigma * rms * noise).view_as(out)

    for blk in model.model.transformer.blocks:
        blk.k_proj.register_forward_hook(hook)


@torch.no_grad()
def quick_eval(model: LLaDA, task, tok: Tokenizer, n: int) -> float:
    """Exact match on held-out problems with a plain confidence decode (one token per
    step over the whole answer region, float32): a training-time monitor only; the
    real evaluation is `dnpu eval` (block schedule, NPU sampling, bfloat16)."""
    model.eval()
    prompts, ans = task.encode_problems(tok, task.heldout(n, seed=1234))
    P, G = prompts.shape[1], ans.shape[1]
    mask_id = model.config.mask_token_id
    x = torch.cat([torch.from_numpy(prompts), torch.full((n, G), mask_id)], dim=1)
    for _ in range(G):
        logits = model(x)[:, P:].float()
        p = logits.softmax(-1)
        conf, x0 = p.max(-1)
        masked = x[:, P:] == mask_id
        conf = torch.where(masked, conf, -1.0)
        pos = conf.argmax(-1)
        rows = torch.arange(n)
        x[rows, P + pos] = torch.where(masked[rows, pos], x0[rows, pos], x[rows, P + pos])
    model.train()
    return float((x[:, P:] == torch.from_numpy(ans)).all(-1).float().mean())


def main(argv=None) -> int:
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    task = get_task(a.task)
    tok_json = char_tokenizer_json(64)
    tok = Tokenizer(tok_json)  # pure-Python reader of the same file: training needs no `tokenizers`
    cfg = LLaDAConfig(d_model=a.d_model, n_heads=a.heads, n_layers=a.layers, mlp_hidden_size=a.mlp,
                      vocab_size=tok.vocab_size, mask_token_id=tok.mask_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.eos_token_id, rope_theta=a.rope_theta,
                      max_sequence_length=task.prompt_length + task.gen_length)
    model = LLaDA(cfg)
    init_weights(model, a.seed)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim == 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=a.lr, betas=(0.9, 0.98))
    rng = np.random.default_rng(a.seed)
    gen = torch.Generator().manual_seed(a.seed + 1)
    if a.key_noise:
        add_key_noise(model, a.key_noise, torch.Generator().manual_seed(a.seed + 2))
    nparams = sum(p.numel() for p in model.parameters())
    print(f"task {task.name}: prompt {task.prompt_length} + answer {task.gen_length} tokens; "
          f"model {nparams} parameters; {a.steps} steps of {a.batch}; {a.threads} thread(s)", flush=True)

    B, G, mask_id = a.batch, task.gen_length, cfg.mask_token_id
    t_start = time.time()
    evals = []
    run_loss = 0.0
    for step in range(a.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a)
        prompts, ans = task.encode_batch(tok, *task.sample_train(rng, B))
        prompts, ans = torch.from_numpy(prompts), torch.from_numpy(ans)
        t = (torch.rand(1, generator=gen) + torch.arange(B) / B) % 1.0  # stratified in [0, 1)
        t = 1.0 - t  # (0, 1]
        pmask = (1 - EPS) * t + EPS
        masked = torch.rand(B, G, generator=gen) < pmask[:, None]
        x = torch.cat([prompts, torch.where(masked, mask_id, ans)], dim=1)
        logits = model(x)[:, task.prompt_length:]
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ans.reshape(-1), reduction="none").view(B, G)
        loss = (ce * masked / pmask[:, None]).sum() / (B * G)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        run_loss += loss.item()
        if (step + 1) % a.log_every == 0:
            print(f"step {step + 1:5d}  loss {run_loss / a.log_every:.4f}  lr {lr_at(step, a):.2e}  "
                  f"{time.time() - t_start:7.1f} s", flush=True)
            run_loss = 0.0
        if a.eval_every and ((step + 1) % a.eval_every == 0 or step + 1 == a.steps):
            acc = quick_eval(model, task, tok, a.eval_problems)
            evals.append({"step": step + 1, "exact_match": acc})
            print(f"step {step + 1:5d}  held-out exact match (fp32 monitor decode) {acc:.4f}", flush=True)
    wall = time.time() - t_start

    training = {
        "script": "scripts/train_tiny.py",
        "args": vars(a) | {"out": str(Path(a.out).resolve().relative_to(REPO)) if Path(a.out).resolve()
                           .is_relative_to(REPO) else a.out},
        "objective": "LLaDA masked diffusion: t~U(0,1], mask answer tokens with p=(1-1e-3)t+1e-3, CE/p"
                     + (f"; keys + {a.key_noise} rms N(0,1) noise" if a.key_noise else ""),
        "parameters": nparams,
        "wall_seconds": round(wall, 1),
        "monitor_evals": evals,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    dnpu_task = {"task": task.name, **generation_defaults({}, task)}   # the task's own defaults
    out = save(model, a.out, tokenizer_json=tok_json, dtype=torch.float32,
               extra_files={"training.json": training, "dnpu_task.json": dnpu_task})
    print(f"wrote {out} in {wall:.0f} s of training", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
