"""Task accuracy of a model, and generation on an NPU backend checked against torch.

Both draw their prompts from the task's held-out set (:mod:`dnpu.model.tasks`),
seeded, so a run is reproducible, and both generate with
:func:`dnpu.generation.generate`; only the sampler differs.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from dnpu.generation import _pad_vocab, generate
from dnpu.model.tasks import get_task

__all__ = ["evaluate", "check_generate", "check_generate_npu", "CONF_NEAR_TIE"]

# Two positions whose commit order differs between two steps are a near-tie when their
# confidences (softmax probabilities of the reference step) differ by at most this much.
CONF_NEAR_TIE = 1 / 16


def _batches(n: int, size: int):
    for i in range(0, n, size):
        yield i, min(n, i + size)


def evaluate(model, tok, task_name: str, *, problems: int = 500, seed: int = 0, batch: int = 250,
             progress: Callable[[int, int], None] | None = None, **gen_kwargs) -> dict:
    """Exact-match accuracy on ``problems`` held-out problems of ``task_name``.

    ``seed`` picks the problems and seeds the noise (temperature > 0); ``gen_kwargs`` go
    to :func:`generate` (gen_length, block_length, steps, sampler, threshold, kv_cache,
    ...). Returns ``{"task", "problems", "exact_match", "correct", "failures"}``
    (``failures``: up to 10 wrong answers, prompt and output).
    """
    task = get_task(task_name)
    if isinstance(problems, bool) or not isinstance(problems, int) or problems < 1:
        raise ValueError(f"problems must be a positive int; got {problems!r}")
    if batch < 1:
        raise ValueError(f"batch must be at least 1; got {batch}")
    held = task.heldout(problems, seed=seed)
    prompts, _ = task.encode_problems(tok, held)
    P = prompts.shape[1]
    correct, failures = 0, []
    for lo, hi in _batches(problems, batch):
        out = generate(model, prompts[lo:hi], seed=seed, **gen_kwargs)
        for j, row in enumerate(out[:, P:].tolist()):
            problem = held[lo + j]
            ok = task.score(tok, *problem, row)
            correct += ok
            if not ok and len(failures) < 10:
                failures.append({"prompt": task.prompt(*problem), "expected": task.answer(*problem),
                                 "got": tok.decode(row)})
        if progress is not None:
            progress(hi, problems)
    return {"task": task.name, "problems": problems, "exact_match": correct / problems, "correct": correct,
            "failures": failures}


def check_generate(model, tok, task_name: str, backend: str, *, prompts: int = 8, seed: int = 0,
                   batch: int = 64, progress: Callable[[int, int], None] | None = None, **gen_kwargs) -> dict:
    """Generate on ``backend`` and on the torch sampler from the same prompts and
    compare every generated token. Returns ``{"prompts", "token_mismatches",
    "backend", "rows_differing", "first_mismatch"}``; with temperature 0 (or the same
    seed) the two must agree exactly: the samplers see identical logits.

    With ``forward="npu"`` (the whole step on the NPU) see :func:`check_generate_npu`."""
    task = get_task(task_name)
    if isinstance(prompts, bool) or not isinstance(prompts, int) or prompts < 1:
        raise ValueError(f"prompts must be a positive int; got {prompts!r}")
    ids, _ = task.encode_problems(tok, task.heldout(prompts, seed=seed))
    if gen_kwargs.get("forward", "host") == "npu":
        return check_generate_npu(model, tok, ids, backend, seed=seed, batch=batch, progress=progress, **gen_kwargs)
    P = ids.shape[1]
    d = _Diff(tok, backend)
    for lo, hi in _batches(prompts, batch):
        ref = generate(model, ids[lo:hi], sampler="torch", seed=seed, **gen_kwargs)[:, P:].numpy()
        got = generate(model, ids[lo:hi], sampler=backend, seed=seed, **gen_kwargs)[:, P:].numpy()
        d.add(ids[lo:hi], ref, got)
        if progress is not None:
            progress(hi, prompts)
    return {"prompts": prompts, "token_mismatches": d.tokens, "backend": backend, "rows_differing": d.rows,
            "first_mismatch": d.first}


class _Diff:
    """Generated tokens of the torch reference against a backend's, batch by batch: how
    many differ, in how many rows, and the first difference."""

    def __init__(self, tok, backend: str) -> None:
        self.tok, self.backend = tok, backend
        self.tokens, self.rows, self.first = 0, 0, None

    def add(self, prompts, ref: np.ndarray, got: np.ndarray) -> None:
        diff = ref != got
        self.tokens += int(diff.sum())
        self.rows += int(diff.any(axis=1).sum())
        if self.first is None and diff.any():
            r, c = (int(v) for v in np.argwhere(diff)[0])
            self.first = {"prompt": self.tok.decode(prompts[r]), "position": c, "torch": self.tok.decode(ref[r]),
                          self.backend: self.tok.decode(got[r])}


def _reference_logits(log: list, ref_model, kv_cache: str, kv_format: str, config):
    """The reference's logits of each step of `log` (StepRecords of one generation): the
    whole sequence's forward, or with a cache the block's (prefix: and all after it) over the cache
    its block's first step refreshed, stored in kv_format as the host path stores it."""
    import torch

    from dnpu.model import kvquant

    cache, block = None, None
    for rec in log:
        s, L = rec.start, rec.mask.shape[1]
        with torch.no_grad():
            if kv_cache == "none":
                yield ref_model(rec.seq).float()[:, s:s + L]
            elif rec.block != block:
                block = rec.block
                full, cache = ref_model(rec.seq, return_kv=True)
                cache = kvquant.quantize_kv(cache, kv_format, config)
                yield full.float()[:, s:s + L]
            elif kv_cache == "prefix":
                yield ref_model(rec.seq[:, s:], kv=cache, start=s).float()[:, :L]
            else:
                yield ref_model(rec.seq[:, s:s + L], kv=cache, start=s).float()


def _step_near_ties(rec, ref_logits, sampler_kwargs: dict) -> tuple[int, int]:
    """(near-ties, unexplained) positions where the NPU's step `rec` (a StepRecord of a
    forward="npu" generation) and the same step with the PyTorch reference's logits commit
    differently. A different token is a near-tie when the argmax flip is
    (dnpu.model.npu.argmax_mismatches); a different commit set when the confidences of the
    positions swapped are within CONF_NEAR_TIE."""
    import torch

    from dnpu import sampling
    from dnpu.model.npu import argmax_mismatches
    from dnpu.sampling.reference import rule

    npu_logits = rec.logits[..., :ref_logits.shape[-1]].float()
    if rec.run_info is None:
        # sampled on the chip from the BF16 logits: the rule on the reference's, unquantized
        k = None if rec.k is None else torch.from_numpy(rec.k)
        out = rule(ref_logits.double(), torch.from_numpy(rec.mask), torch.from_numpy(rec.x), k, rec.threshold,
                   exact=True)
        r = sampling.StepResult(*(t.numpy() for t in out))
    else:
        kw = {"k": rec.k} if rec.k is not None else {"threshold": rec.threshold}
        r = sampling.transfer(_pad_vocab(ref_logits), rec.mask, rec.x, backend="torch", **kw, **sampler_kwargs)
    diff = r.x_new != rec.x_new
    if not diff.any():
        return 0, 0
    _, near_tok = argmax_mismatches(npu_logits.numpy(), ref_logits.numpy())
    near, bad = 0, 0
    for b, l in zip(*np.nonzero(diff)):
        committed_npu, committed_ref = rec.x_new[b, l] != rec.x[b, l], r.x_new[b, l] != rec.x[b, l]
        if committed_npu and committed_ref:
            ok = near_tok[b, l]
        else:
            # committed by one only: it swapped places with one the other committed
            other = np.flatnonzero((r.x_new[b] != rec.x[b]) != (rec.x_new[b] != rec.x[b]))
            conf = r.conf[b]
            ok = bool(np.abs(conf[other] - conf[l]).min() <= CONF_NEAR_TIE) if other.size > 1 else False
        near += int(ok)
        bad += int(not ok)
    return near, bad


def check_generate_npu(model, tok, ids, backend: str, *, seed: int = 0, batch: int = 64,
                       progress: Callable[[int, int], None] | None = None, **gen_kwargs) -> dict:
    """Generation with the whole step on the NPU (forward="npu") on ``backend``, checked
    two ways: token for token against the same generation on the emulator
    (``npu_vs_emu_mismatches``, must be 0; not run when ``backend`` is "emu") and against
    PyTorch's forward with the same quantization (``dnpu.model.npu.quantized_torch_model``)
    and the torch sampler (``npu_vs_torch_mismatches``). Every step of the NPU's run is
    replayed with the reference's logits; a position the two commit differently is a
    near-tie (``near_ties``) or unexplained (``unexplained``, must be 0)."""
    from dnpu.model.npu import quantized_torch_model

    weights_fmt = gen_kwargs.get("weights_fmt", "e4m3")
    ref_model = quantized_torch_model(model, fmt=weights_fmt, config=gen_kwargs.get("config", "sim"))
    host_kwargs = {k: v for k, v in gen_kwargs.items() if k not in ("forward", "weights_fmt")}
    sampler_kwargs = {"fmt": gen_kwargs.get("fmt", "e4m3")}
    P, n = ids.shape[1], ids.shape[0]
    emu_mis = None if backend == "emu" else 0
    near, bad = 0, 0
    d = _Diff(tok, backend)
    for lo, hi in _batches(n, batch):
        log: list = []
        got = generate(model, ids[lo:hi], sampler=backend, seed=seed, step_log=log, **gen_kwargs)[:, P:].numpy()
        if emu_mis is not None:
            emu = generate(model, ids[lo:hi], sampler="emu", seed=seed, **gen_kwargs)[:, P:].numpy()
            emu_mis += int((emu != got).sum())
        d.add(ids[lo:hi], generate(ref_model, ids[lo:hi], sampler="torch", seed=seed, **host_kwargs)[:, P:].numpy(),
              got)
        refs = _reference_logits(log, ref_model, gen_kwargs.get("kv_cache", "none"),
                                 gen_kwargs.get("kv_format", "bf16"), gen_kwargs.get("config", "sim"))
        for rec, ref_logits in zip(log, refs):
            a, b = _step_near_ties(rec, ref_logits, sampler_kwargs)
            near += a
            bad += b
        if progress is not None:
            progress(hi, n)
    return {"prompts": n, "backend": backend, "forward": "npu", "weights_fmt": weights_fmt,
            "npu_vs_emu_mismatches": emu_mis, "npu_vs_torch_mismatches": d.tokens, "rows_differing": d.rows,
            "near_ties": near, "unexplained": bad, "first_mismatch": d.first,
            "token_mismatches": (emu_mis or 0) + bad}
