"""Task accuracy of a model, and generation on an NPU backend checked against torch.

Both draw their prompts from the task's held-out set (:mod:`dnpu.model.tasks`),
seeded, so a run is reproducible, and both generate with
:func:`dnpu.generation.generate`; only the sampler differs.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from dnpu.generation import generate
from dnpu.model.tasks import get_task

__all__ = ["evaluate", "check_generate"]


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
    pairs = task.heldout(problems, seed=seed)
    a = np.array([p[0] for p in pairs], dtype=np.int64)
    b = np.array([p[1] for p in pairs], dtype=np.int64)
    prompts, _ = task.encode_batch(tok, a, b)
    P = prompts.shape[1]
    correct, failures = 0, []
    for lo, hi in _batches(problems, batch):
        out = generate(model, prompts[lo:hi], seed=seed, **gen_kwargs)
        for j, row in enumerate(out[:, P:].tolist()):
            ok = task.score(tok, int(a[lo + j]), int(b[lo + j]), row)
            correct += ok
            if not ok and len(failures) < 10:
                failures.append({"prompt": task.prompt(int(a[lo + j]), int(b[lo + j])),
                                 "expected": task.answer(int(a[lo + j]), int(b[lo + j])),
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
    seed) the two must agree exactly: the samplers see identical logits."""
    task = get_task(task_name)
    if isinstance(prompts, bool) or not isinstance(prompts, int) or prompts < 1:
        raise ValueError(f"prompts must be a positive int; got {prompts!r}")
    pairs = task.heldout(prompts, seed=seed)
    ids, _ = task.encode_batch(tok, [p[0] for p in pairs], [p[1] for p in pairs])
    P = ids.shape[1]
    mismatches, rows, first = 0, 0, None
    for lo, hi in _batches(prompts, batch):
        ref = generate(model, ids[lo:hi], sampler="torch", seed=seed, **gen_kwargs)[:, P:].numpy()
        got = generate(model, ids[lo:hi], sampler=backend, seed=seed, **gen_kwargs)[:, P:].numpy()
        diff = ref != got
        mismatches += int(diff.sum())
        rows += int(diff.any(axis=1).sum())
        if first is None and diff.any():
            r, c = (int(v) for v in np.argwhere(diff)[0])
            first = {"prompt": tok.decode(ids[lo + r]), "position": c, "torch": tok.decode(ref[r]),
                     backend: tok.decode(got[r])}
        if progress is not None:
            progress(hi, prompts)
    return {"prompts": prompts, "token_mismatches": mismatches, "backend": backend, "rows_differing": rows,
            "first_mismatch": first}
