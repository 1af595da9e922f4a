"""The LLaDA transformer in PyTorch, with the KV-cache forwards Fast-dLLM needs.

Architecture (shared/REFERENCE.md, LLaDA-8B): token embedding ``wte``; ``n_layers``
pre-norm blocks, each

    h = x + attn_out(attention(attn_norm(x)))
    y = h + ff_out(silu(ff_proj(ff_norm(h))) * up_proj(ff_norm(h)))

then ``ln_f`` and an untied head ``ff_out``. Attention is bidirectional (no causal
mask: a diffusion LM sees the whole sequence), multi-head with optional grouped
K/V heads (``n_kv_heads``), RoPE in the rotate-half form applied to q and k in
float32, scale 1/sqrt(head_dim). RMSNorm is computed in float32 and cast back
before the weight multiplies (as LLaDA does). No biases anywhere.

KV cache
--------
A generation step only changes tokens of the current block, so Fast-dLLM reuses
keys and values of the rest of the sequence. :meth:`LLaDA.forward` supports it
with one rule: given ``kv`` (per layer, keys and values of *all* ``T`` positions
from an earlier forward) and ``start``, the input ``ids`` are the tokens of
positions ``[start, start + n)``; their fresh keys/values replace those slots and
attention runs over all ``T`` positions. Prefix cache = feed the block and
everything after it (``start`` = block start, ``n = T - start``); dual cache =
feed only the block. Keys are cached **before** RoPE (Fast-dLLM's choice,
REFERENCE.md): RoPE is applied to the assembled keys at their absolute
positions on every forward, so a cached key never depends on where the query is.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import LLaDAConfig

__all__ = ["LLaDAConfig", "LLaDA", "KV"]


class KV(NamedTuple):
    """One layer's cache: keys before RoPE and values, each [B, n_kv_heads, T, head_dim]."""

    k: torch.Tensor
    v: torch.Tensor


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # float32 statistics even for bf16 activations: a bf16 mean of squares loses the scale.
        dtype = x.dtype
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class Block(nn.Module):
    """One LLaDA (LLaMA-style) block; parameter names are LLaDA's checkpoint keys."""

    def __init__(self, cfg: LLaDAConfig) -> None:
        super().__init__()
        d, hd = cfg.d_model, cfg.head_dim
        self.n_heads, self.n_kv, self.hd = cfg.n_heads, cfg.n_kv_heads, hd
        self.q_proj = nn.Linear(d, cfg.n_heads * hd, bias=False)
        self.k_proj = nn.Linear(d, cfg.n_kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(d, cfg.n_kv_heads * hd, bias=False)
        self.attn_out = nn.Linear(cfg.n_heads * hd, d, bias=False)
        self.ff_proj = nn.Linear(d, cfg.mlp_hidden_size, bias=False)
        self.up_proj = nn.Linear(d, cfg.mlp_hidden_size, bias=False)
        self.ff_out = nn.Linear(cfg.mlp_hidden_size, d, bias=False)
        self.attn_norm = RMSNorm(d, cfg.rms_norm_eps)
        self.ff_norm = RMSNorm(d, cfg.rms_norm_eps)

    def forward(self, x, cos, sin, kv: KV | None, start: int) -> tuple[torch.Tensor, KV]:
        B, n, _ = x.shape
        h = self.attn_norm(x)
        q = self.q_proj(h).view(B, n, self.n_heads, self.hd).transpose(1, 2)
        k = self.k_proj(h).view(B, n, self.n_kv, self.hd).transpose(1, 2)
        v = self.v_proj(h).view(B, n, self.n_kv, self.hd).transpose(1, 2)
        if kv is not None:  # splice the fresh slots [start, start + n) into the cached sequence
            k = torch.cat((kv.k[:, :, :start], k, kv.k[:, :, start + n:]), dim=2)
            v = torch.cat((kv.v[:, :, :start], v, kv.v[:, :, start + n:]), dim=2)
        new_kv = KV(k, v)
        T = k.shape[2]
        qf = q.float()
        kf = k.float()
        qr = (qf * cos[start:start + n] + _rotate_half(qf) * sin[start:start + n]).to(q.dtype)
        kr = (kf * cos[:T] + _rotate_half(kf) * sin[:T]).to(k.dtype)
        if self.n_kv != self.n_heads:
            rep = self.n_heads // self.n_kv
            kr = kr.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        a = F.scaled_dot_product_attention(qr, kr, v, is_causal=False)
        x = x + self.attn_out(a.transpose(1, 2).reshape(B, n, self.n_heads * self.hd))
        h = self.ff_norm(x)
        x = x + self.ff_out(F.silu(self.ff_proj(h)) * self.up_proj(h))
        return x, new_kv


class _Transformer(nn.Module):
    def __init__(self, cfg: LLaDAConfig) -> None:
        super().__init__()
        self.wte = nn.Embedding(cfg.embedding_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = RMSNorm(cfg.d_model, cfg.rms_norm_eps)
        self.ff_out = nn.Linear(cfg.d_model, cfg.embedding_size, bias=False)


class LLaDA(nn.Module):
    """LLaDA mask predictor. ``model(ids)`` -> logits ``[B, T, V]`` (V = embedding_size).

    Parameters are registered under LLaDA's checkpoint names
    (``model.transformer.blocks.0.q_proj.weight`` ...), so ``state_dict()`` is the
    Hugging Face layout.
    """

    def __init__(self, config: LLaDAConfig) -> None:
        super().__init__()
        self.config = config
        self.model = nn.Module()
        self.model.transformer = _Transformer(config)
        self._rope_cache: dict = {}

    @property
    def device(self) -> torch.device:
        return self.model.transformer.wte.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.transformer.wte.weight.dtype

    # The precision the cos/sin tables are rounded to (float32 = as computed); the NPU's
    # reference sets bfloat16, the tables the NPU multiplies by.
    rope_table_dtype = torch.float32

    def _rope(self, T: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (T, str(device), self.rope_table_dtype)
        if key not in self._rope_cache:
            hd = self.config.head_dim
            inv = 1.0 / (self.config.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.float32, device=device) / hd))
            ang = torch.outer(torch.arange(T, dtype=torch.float32, device=device), inv)
            ang = torch.cat((ang, ang), dim=-1)
            tables = tuple(t.to(self.rope_table_dtype).float() for t in (ang.cos(), ang.sin()))
            self._rope_cache = {key: tables}  # one length at a time is enough
        return self._rope_cache[key]

    def forward(self, ids: torch.Tensor, *, kv: list[KV] | None = None, start: int = 0,
                return_kv: bool = False):
        """Logits of ``ids`` (int64 ``[B, n]``), optionally with a KV cache.

        Without ``kv``: the plain forward of the whole sequence (``start`` must be 0).
        With ``kv`` (from an earlier ``return_kv=True`` call on a sequence of length
        ``T``): ``ids`` holds positions ``[start, start + n)``, ``start + n <= T``;
        the logits are those positions' (see the module docstring).

        Returns logits ``[B, n, V]`` in the model's dtype, or ``(logits, new_kv)`` with
        ``return_kv``, where ``new_kv`` covers all ``T`` positions (the cache with
        this call's slots replaced).
        """
        if not isinstance(ids, torch.Tensor) or ids.dtype != torch.int64 or ids.ndim != 2:
            got = f"{ids.dtype} {tuple(ids.shape)}" if isinstance(ids, torch.Tensor) else type(ids).__name__
            raise ValueError(f"ids must be an int64 tensor [B, T]; got {got}")
        B, n = ids.shape
        if B == 0 or n == 0:
            raise ValueError(f"ids is empty (shape {tuple(ids.shape)})")
        E = self.config.embedding_size
        if int(ids.min()) < 0 or int(ids.max()) >= E:
            raise ValueError(f"token ids must be in [0, {E}); got min {int(ids.min())}, max {int(ids.max())}")
        nl = self.config.n_layers
        if kv is None:
            if start != 0:
                raise ValueError(f"start={start} needs a kv cache: without one the forward covers positions 0..n")
            T = n
        else:
            if len(kv) != nl:
                raise ValueError(f"kv has {len(kv)} layers; the model has {nl}")
            T = kv[0].k.shape[2]
            if kv[0].k.shape[0] != B:
                raise ValueError(f"kv batch {kv[0].k.shape[0]} != ids batch {B}")
            if not (0 <= start and start + n <= T):
                raise ValueError(f"positions [{start}, {start + n}) fall outside the cached sequence of length {T}")
        cos, sin = self._rope(T, ids.device)
        x = self.model.transformer.wte(ids)
        new: list[KV] = []
        for i, blk in enumerate(self.model.transformer.blocks):
            x, layer_kv = blk(x, cos, sin, None if kv is None else kv[i], start)
            if return_kv:
                new.append(layer_kv)
        logits = self.model.transformer.ff_out(self.model.transformer.ln_f(x))
        return (logits, new) if return_kv else logits

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Checkpoint key -> tensor shape, the Hugging Face layout this model loads."""
        return {k: tuple(v.shape) for k, v in self.state_dict().items()}


def init_weights(model: LLaDA, seed: int, std: float = 0.02) -> None:
    """Deterministic init: normal(0, std) matrices, output projections scaled by
    1/sqrt(2 n_layers) (so the residual stream does not grow with depth), norms 1."""
    g = torch.Generator().manual_seed(seed)
    out_std = std / math.sqrt(2 * model.config.n_layers)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if name.endswith("norm.weight") or name.endswith("ln_f.weight"):
                p.fill_(1.0)
            elif ".blocks." in name and name.endswith(("attn_out.weight", "ff_out.weight")):
                p.copy_(torch.randn(p.shape, generator=g) * out_std)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * std)
