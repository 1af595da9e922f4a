"""Cross-checks of an NPU backend against the PyTorch float64 reference.

`check_sampling` runs random sampling steps on a backend and on torch and
classifies every difference: `x0` must always match; a commit decision may
differ only as a *near tie*, where the float64 confidences involved lie within
the documented confidence bound (docs/NUMERICS.md) of the decision boundary
(the k-th confidence of the row, or the threshold). Anything else is a token
mismatch.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Callable

import numpy as np

from dnpu.spec import config as config_mod
from dnpu.spec import mx, numerics
from dnpu import sampling
from dnpu.compiler import FLOWS

__all__ = ["Case", "random_case", "check_sampling", "classify"]


@dataclasses.dataclass(frozen=True)
class Case:
    logits: np.ndarray  # float32 [B, L, V]
    mask: np.ndarray  # bool [B, L]
    x: np.ndarray  # int64 [B, L]
    k: np.ndarray | None  # int64 [B]
    threshold: float | None
    flow: str
    kind: str  # how the logits were drawn


LOGIT_KINDS = ("normal", "ties", "all_negative", "large_range", "dominant", "flat")


def _logits(rng: np.random.Generator, kind: str, B: int, L: int, V: int) -> np.ndarray:
    shape = (B, L, V)
    if kind == "normal":
        x = rng.standard_normal(shape) * rng.uniform(0.5, 4.0)
    elif kind == "ties":  # few distinct values: many exact ties in the max and in confidences
        x = rng.integers(-3, 3, size=shape).astype(np.float64)
    elif kind == "all_negative":
        x = -60.0 - np.abs(rng.standard_normal(shape)) * 8.0
    elif kind == "large_range":
        x = rng.standard_normal(shape) * 10.0 ** rng.uniform(1.0, 3.0)
    elif kind == "dominant":  # LLaDA-like: one clear winner per position
        x = rng.standard_normal(shape) * 2.0
        idx = rng.integers(0, V, size=(B, L))
        np.put_along_axis(x, idx[..., None], rng.uniform(5.0, 20.0, size=(B, L, 1)), axis=-1)
    elif kind == "flat":  # near-uniform: low confidences, many near-equal
        x = rng.standard_normal(shape) * 0.05
    else:
        raise ValueError(f"unknown logits kind {kind!r}")
    return x.astype(np.float32)


def random_case(rng: np.random.Generator, cfg, max_B: int = 4, max_L: int = 64, max_V: int = 8192) -> Case:
    """A random step within the profile's limits: V a multiple of the block and of VLEN."""
    unit = int(np.lcm(cfg.mx.block, cfg.vector.vlen))
    B = int(rng.integers(1, max_B + 1))
    L = int(rng.integers(1, max_L + 1))
    V = unit * int(rng.integers(1, max(1, max_V // unit) + 1))     # at least one unit
    kind = LOGIT_KINDS[int(rng.integers(len(LOGIT_KINDS)))]
    logits = _logits(rng, kind, B, L, V)
    n_masked = rng.integers(0, L + 1, size=B)
    mask = np.zeros((B, L), bool)
    for b in range(B):
        mask[b, rng.permutation(L)[: n_masked[b]]] = True
    x = rng.integers(0, V, size=(B, L)).astype(np.int64)
    flow = FLOWS[int(rng.integers(len(FLOWS)))]
    if rng.integers(2):
        k = np.array([rng.integers(0, n + 1) for n in n_masked], np.int64)
        return Case(logits, mask, x, k, None, flow, kind)
    return Case(logits, mask, x, None, float(rng.uniform(0.05, 1.0)), flow, kind)


def case_bound(case: Case, vlen: int, fmt: str, block: int) -> float:
    """The documented bound on |conf_npu / conf_ref - 1| for this case (docs/NUMERICS.md, section 9),
    taken at the worst row: the phased flow's bound grows with the softmax spread of the row,
    the fused flow's with how often a chunk raises the running maximum."""
    v = mx.dequantize(mx.quantize(case.logits, fmt, block)).astype(np.float64)
    V = v.shape[-1]
    rows = v.reshape(-1, V)
    if case.flow == "phased":
        d = rows - rows.max(axis=1, keepdims=True)
        w = np.exp(d)
        spread = float(np.max(np.sum(w * -d, axis=1) / np.sum(w, axis=1)))
        return numerics.p_rel_error_bound(V, vlen, "phased", spread=spread)
    chunk_max = rows.reshape(rows.shape[0], -1, vlen).max(axis=2)
    running = np.maximum.accumulate(chunk_max, axis=1)
    rescales = int(np.max(np.sum(chunk_max[:, 1:] > running[:, :-1], axis=1), initial=0))
    return numerics.p_rel_error_bound(V, vlen, "fused", rescales=rescales)


def classify(case: Case, ref: sampling.StepResult, got: sampling.StepResult, bound: float) -> dict:
    """Count token mismatches and near ties of `got` against `ref` for one case."""
    x0_mismatch = int(np.sum(ref.x0 != got.x0))
    masked = case.mask
    conf_err = float(np.max(np.abs(got.conf[masked] / ref.conf[masked] - 1.0), initial=0.0))
    bad_unmasked = int(np.sum(np.isfinite(got.conf[~masked])))
    # x0 matches (checked above), so a differing x_new is a differing commit decision.
    differ = ref.x_new != got.x_new
    near, mismatch = 0, 0

    def close(a: float, b: float) -> bool:
        # Each side of a decision may be off by `bound` (relative; confidences are <= 1).
        return abs(a - b) <= bound * (a + b)

    for b in range(case.mask.shape[0]):
        ranked = np.sort(ref.conf[b][masked[b]])[::-1]  # masked confidences, best first
        committed = ref.x_new[b] != case.x[b]
        for l in np.flatnonzero(differ[b]):
            c = float(ref.conf[b, l])
            is_near = False
            if masked[b, l] and ranked.size:
                if case.k is not None:
                    kb = int(case.k[b])
                    # The decision boundary lies between the k-th confidence and the next one:
                    # a committed position may drop only if it is close to the first one left out,
                    # a left-out position may enter only if it is close to the last one taken.
                    if committed[l]:
                        is_near = kb < ranked.size and close(c, float(ranked[kb]))
                    else:
                        is_near = kb > 0 and close(c, float(ranked[kb - 1]))
                else:
                    is_near = close(c, case.threshold)
                    # The best position always commits: it may change only between near-equal ones.
                    if c == ranked[0]:
                        other = float(ranked[1]) if ranked.size > 1 else None
                    else:
                        other = float(ranked[0])
                    is_near = is_near or (other is not None and close(c, other))
            if is_near:
                near += 1
            else:
                mismatch += 1
    return {"x0_mismatches": x0_mismatch, "token_mismatches": mismatch + x0_mismatch + bad_unmasked,
            "near_ties": near, "max_conf_error": conf_err}


def _check_int(name: str, v, least: int) -> None:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < least:
        raise ValueError(f"{name} must be an int >= {least}; got {v!r}")


def check_sampling(backend: str = "emu", cases: int = 100, seed: int = 0, config: str = "sim",
                   fmt: str = "e4m3", progress: Callable[[int, int], None] | None = None, *, max_B: int = 4,
                   max_L: int = 64, max_V: int = 8192) -> dict:
    """Run `cases` random steps on `backend` and on torch; the JSON-ready summary. ValueError
    for `cases` < 1 (a check of nothing would pass) or a negative `seed`. max_B, max_L, max_V:
    the largest batch, length and vocabulary drawn (a small board's memory, a slow link)."""
    _check_int("cases", cases, 1)
    _check_int("seed", seed, 0)
    _check_int("max_B", max_B, 1)
    _check_int("max_L", max_L, 1)
    _check_int("max_V", max_V, 1)
    cfg = config_mod.load(config)
    rng = np.random.default_rng(seed)
    total = {"cases": cases, "token_mismatches": 0, "near_ties": 0, "max_conf_error": 0.0,
             "bound": 0.0, "bound_violations": 0, "backend": backend, "config": cfg.label, "seed": seed, "first_failure": None}
    for i in range(cases):
        case = random_case(rng, cfg, max_B, max_L, max_V)
        bound = case_bound(case, cfg.vector.vlen, fmt, cfg.mx.block)
        kw = dict(mask=case.mask, x=case.x, k=case.k, threshold=case.threshold, fmt=fmt,
                  block=cfg.mx.block, flow=case.flow)
        ref = sampling.transfer(case.logits, backend="torch", **kw)
        got = sampling.transfer(case.logits, backend=backend, config=config, **kw)
        r = classify(case, ref, got, bound)
        total["token_mismatches"] += r["token_mismatches"]
        total["near_ties"] += r["near_ties"]
        total["max_conf_error"] = max(total["max_conf_error"], r["max_conf_error"])
        total["bound"] = max(total["bound"], bound)
        violated = r["max_conf_error"] > bound
        total["bound_violations"] += int(violated)
        failed = r["token_mismatches"] or violated
        if failed and total["first_failure"] is None:
            total["first_failure"] = {"case": i, "shape": list(case.logits.shape), "flow": case.flow,
                                      "kind": case.kind, "mode": "topk" if case.k is not None else "threshold",
                                      **r, "bound": bound}
        if progress:
            progress(i + 1, cases)
    return total
