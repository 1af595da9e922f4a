"""The sampling rule in PyTorch: the one definition that the float64 reference, the
host baseline of `dnpu bench` and the GPU timing of `dnpu project` all run.

One step of LLaDA's low-confidence remasking (docs/NUMERICS.md, "Sampling semantics"):

- x0[b, l]: the lowest vocabulary index among the maxima of logits[b, l, :];
- conf[b, l] = 1 / sum_v exp(logits[b, l, v] - max) where mask[b, l], else -inf;
- commit: with quotas ``k`` [B], the k[b] masked positions of row b with the highest
  conf, ties to the lower position; with ``threshold``, every masked position with
  conf >= threshold plus the row's most confident one (lowest position on ties);
- x_new = where(commit, x0, x).

``exact=True`` is the reference the NPU is checked against: float64 arithmetic and a
fixed-order pairwise sum. ``exact=False`` is what a PyTorch user runs: the logits'
float32 arithmetic and torch's own reduction order.
"""

from __future__ import annotations

import math

__all__ = ["rule", "tree_sum"]


def tree_sum(t):
    """Sum over the last dimension in a fixed order: zero-pad to a power of two, then
    repeatedly add the upper half onto the lower half (elementwise IEEE adds)."""
    import torch

    n = t.shape[-1]
    n2 = 1 << max(0, (n - 1).bit_length())
    if n2 != n:
        t = torch.nn.functional.pad(t, (0, n2 - n))
    while n2 > 1:
        n2 //= 2
        t = t[..., :n2] + t[..., n2:]
    return t[..., 0]


def rule(logits, mask, x, k=None, threshold: float | None = None, *, exact: bool = False):
    """(x_new, x0, conf) of one step on torch tensors of one device: ``logits`` [B, L, V],
    ``mask`` bool [B, L], ``x`` int64 [B, L], and either ``k`` int64 [B] or ``threshold``."""
    import torch

    if (k is None) == (threshold is None):
        raise ValueError("give exactly one of k (quota per row) and threshold")
    lg = logits.double() if exact else logits.float()
    B, L, V = lg.shape
    top = lg.amax(dim=-1, keepdim=True)
    vidx = torch.arange(V, device=lg.device)
    x0 = torch.where(lg == top, vidx, V).amin(dim=-1)      # torch.argmax's tie rule is undocumented
    e = torch.exp(lg - top)
    conf = 1.0 / (tree_sum(e) if exact else e.sum(dim=-1))
    conf = torch.where(mask, conf, torch.full_like(conf, -math.inf))
    pos = torch.arange(L, device=lg.device).expand(B, L)
    if k is not None:
        # Rank by descending conf, ties by ascending position: a stable ascending sort of -conf
        # (unmasked positions, -conf = +inf, sort last; a masked conf is in (0, 1]).
        order = torch.sort(-conf, dim=1, stable=True).indices
        rank = torch.empty_like(order)
        rank.scatter_(1, order, pos)
        commit = (rank < k.unsqueeze(1)) & mask
    else:
        best_conf = conf.amax(dim=1, keepdim=True)
        best_pos = torch.where(mask & (conf == best_conf), pos, L).amin(dim=1, keepdim=True)
        commit = mask & ((conf >= threshold) | (pos == best_pos))  # best_pos = L: no masked position
    return torch.where(commit, x0, x), x0, conf
