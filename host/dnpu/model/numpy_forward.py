"""The LLaDA forward in NumPy: the shipped models' host forward where PyTorch is absent (a
PYNQ board's ARM cores), and a reference independent of PyTorch's kernels.

The architecture is `dnpu.model.llada`'s, term for term (pre-norm blocks, RMSNorm in
float32, bidirectional multi-head attention with optional grouped K/V heads, RoPE in the
rotate-half form on q and k before the dot products, SwiGLU MLP, untied head, the same KV
cache contract). Numerics: the weights are held in ``dtype`` (``"bf16"``: rounded to
bfloat16 once at load, the default, as `dnpu generate --dtype bf16`; ``"fp32"``) and every
operation computes in float32 (NumPy's float32 matmul, exp, rsqrt); with ``"bf16"`` each
activation is then rounded to bfloat16 at the points where PyTorch's BF16 model holds a
BF16 tensor (every linear's output, the normalised activations before and after the gain,
RoPE's outputs, attention's output, SiLU and the gate product, every residual sum; in
attention, like PyTorch's CPU kernel, the unnormalised exponentials before the product
with V, divided by their float32 sum after it), so the two differ only by float32
roundings inside an operation (summation order, exp and the RoPE tables within an ulp)
and the bfloat16 roundings those move. tests/test_numpy_forward.py
bounds the difference on the shipped models and checks their generations agree token for
token.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dnpu.spec import numerics as nm

from .checkpoint import (CheckpointError, LLaDAConfig, check_tensors, checkpoint_shapes, model_dir, read_config,
                         read_numpy_weights)
from .tokenizer import Tokenizer, load_tokenizer

__all__ = ["NumpyLLaDA", "NumpyKV", "load_numpy", "DTYPES"]

DTYPES = ("bf16", "fp32")
_DTYPE_NAMES = {"bf16": "bf16", "bfloat16": "bf16", "fp32": "fp32", "float32": "fp32"}


class NumpyKV(NamedTuple):
    """One layer's cache: keys before RoPE and values, float32 [B, n_kv_heads, T, head_dim]."""

    k: np.ndarray
    v: np.ndarray


def _rotate_half(x: np.ndarray) -> np.ndarray:
    h = x.shape[-1] // 2
    return np.concatenate((-x[..., h:], x[..., :h]), axis=-1)


class NumpyLLaDA:
    """LLaDA mask predictor in NumPy. ``model(ids)`` -> logits float32 ``[B, T, V]``.

    ``weights`` maps LLaDA's checkpoint keys to arrays (`dnpu.model.checkpoint`); they are
    stored as float32 holding ``dtype``'s values.
    """

    device = "cpu"

    def __init__(self, config: LLaDAConfig, weights: dict[str, np.ndarray], dtype: str = "bf16") -> None:
        if not isinstance(dtype, str) or dtype.lower() not in _DTYPE_NAMES:
            raise ValueError(f"unknown dtype {dtype!r} for the NumPy model: use one of {', '.join(_DTYPE_NAMES)}")
        self.config = config
        self.dtype = _DTYPE_NAMES[dtype.lower()]
        self._r = nm.round_bf16_f32 if self.dtype == "bf16" else (lambda x: x)
        check_tensors("the weights given", checkpoint_shapes(config),
                      {k: tuple(np.shape(v)) for k, v in weights.items()})
        self._w = {k: self._r(np.asarray(v, np.float32)) for k, v in weights.items()}
        self._rope_cache: dict = {}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Checkpoint key -> the weight as the forward multiplies by it (float32)."""
        return dict(self._w)

    def rope(self, T: int) -> tuple[np.ndarray, np.ndarray]:
        """(cos, sin) float32 [T, head_dim] for positions 0..T-1, computed as `LLaDA._rope` does."""
        if T not in self._rope_cache:
            hd = self.config.head_dim
            inv = np.float32(1.0) / (np.float32(self.config.rope_theta)
                                     ** (np.arange(0, hd, 2, dtype=np.float32) / np.float32(hd)))
            ang = np.outer(np.arange(T, dtype=np.float32), inv).astype(np.float32)
            ang = np.concatenate((ang, ang), axis=-1)
            self._rope_cache = {T: (np.cos(ang), np.sin(ang))}
        return self._rope_cache[T]

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        xf = x * (np.float32(1.0) / np.sqrt(np.mean(x * x, axis=-1, keepdims=True)
                                            + np.float32(self.config.rms_norm_eps)))
        return self._r(self._w[name] * self._r(xf))

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        w = self._w[name]       # one 2-D product: NumPy loops a stacked one slice by slice
        return self._r((x.reshape(-1, x.shape[-1]) @ w.T).reshape(*x.shape[:-1], w.shape[0]))

    def _block(self, i: int, x, cos, sin, kv: NumpyKV | None, start: int):
        c, r = self.config, self._r
        p = f"model.transformer.blocks.{i}."
        B, n, _ = x.shape
        H, Hk, hd = c.n_heads, c.n_kv_heads, c.head_dim
        h = self._norm(x, p + "attn_norm.weight")
        q = self._linear(h, p + "q_proj.weight").reshape(B, n, H, hd).transpose(0, 2, 1, 3)
        k = self._linear(h, p + "k_proj.weight").reshape(B, n, Hk, hd).transpose(0, 2, 1, 3)
        v = self._linear(h, p + "v_proj.weight").reshape(B, n, Hk, hd).transpose(0, 2, 1, 3)
        if kv is not None:      # splice the fresh slots [start, start + n) into the cached sequence
            k = np.concatenate((kv.k[:, :, :start], k, kv.k[:, :, start + n:]), axis=2)
            v = np.concatenate((kv.v[:, :, :start], v, kv.v[:, :, start + n:]), axis=2)
        new_kv = NumpyKV(k, v)
        T = k.shape[2]
        qr = r(q * cos[start:start + n] + _rotate_half(q) * sin[start:start + n])
        kr = r(k * cos[:T] + _rotate_half(k) * sin[:T])
        if Hk != H:
            kr, v = np.repeat(kr, H // Hk, axis=1), np.repeat(v, H // Hk, axis=1)
        s = (qr @ kr.transpose(0, 1, 3, 2)) * np.float32(1.0 / np.sqrt(hd))
        e = np.exp(s - s.max(axis=-1, keepdims=True))
        a = r((r(e) @ v) / e.sum(axis=-1, keepdims=True))      # as PyTorch's CPU attention kernel in BF16
        x = r(x + self._linear(a.transpose(0, 2, 1, 3).reshape(B, n, H * hd), p + "attn_out.weight"))
        h = self._norm(x, p + "ff_norm.weight")
        g = self._linear(h, p + "ff_proj.weight")
        silu = r(g / (np.float32(1.0) + np.exp(-g)))
        y = r(silu * self._linear(h, p + "up_proj.weight"))
        return r(x + self._linear(y, p + "ff_out.weight")), new_kv

    def forward(self, ids, *, kv: list[NumpyKV] | None = None, start: int = 0, return_kv: bool = False):
        """Logits float32 ``[B, n, V]`` of ``ids`` (integer ``[B, n]``), with the KV cache
        contract of `dnpu.model.LLaDA.forward`; ``(logits, new_kv)`` with ``return_kv``."""
        a = np.asarray(ids)
        if a.ndim != 2 or a.dtype.kind not in "iu":
            raise ValueError(f"ids must be an integer array [B, T]; got {a.dtype} {a.shape}")
        B, n = a.shape
        if B == 0 or n == 0:
            raise ValueError(f"ids is empty (shape {a.shape})")
        E, nl = self.config.embedding_size, self.config.n_layers
        if int(a.min()) < 0 or int(a.max()) >= E:
            raise ValueError(f"token ids must be in [0, {E}); got min {int(a.min())}, max {int(a.max())}")
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
        cos, sin = self.rope(T)
        x = self._w["model.transformer.wte.weight"][a]
        new: list[NumpyKV] = []
        for i in range(nl):
            x, layer_kv = self._block(i, x, cos, sin, None if kv is None else kv[i], start)
            new.append(layer_kv)
        logits = self._linear(self._norm(x, "model.transformer.ln_f.weight"), "model.transformer.ff_out.weight")
        return (logits, new) if return_kv else logits

    __call__ = forward


def load_numpy(path=None, *, dtype: str = "bf16") -> tuple[NumpyLLaDA, Tokenizer]:
    """``(model, tokenizer)`` of a model directory (default: the shipped tiny model) without
    PyTorch; the weights read by safetensors' NumPy reader. Raises what `dnpu.model.load`
    raises for the same directory (CheckpointError, FileNotFoundError, ValueError)."""
    d = model_dir(path)
    cfg = read_config(d)
    tensors = read_numpy_weights(d)
    check_tensors(d, checkpoint_shapes(cfg), {k: tuple(v.shape) for k, v in tensors.items()})
    model = NumpyLLaDA(cfg, tensors, dtype)
    tok = load_tokenizer(d)
    if tok.mask_token_id is not None and tok.mask_token_id != cfg.mask_token_id:
        raise CheckpointError(f"tokenizer's mask token id {tok.mask_token_id} != config mask_token_id "
                              f"{cfg.mask_token_id}")
    return model, tok
