"""Compiler: the KV cache of the forward's steps (docs/NUMERICS.md section 16).

A `KvStep` says what a step does with the cache: a "refresh" runs the whole forward and
stores every layer's keys (before RoPE) and values as they leave the projections; a
"dual" step computes only a range of positions (the block for a dual cache, the block and
everything after it for a prefix cache) and reads every head's keys and values back, the
range's own rows over theirs. `kv_layout` is where they lie in device memory (BF16 rows
or the MX stream `H_STORE_MX` writes and `H_PREFETCH_V` reads; with BAOS the scales
after them), `kv_traffic` what a step moves. The rest are the instruction sequences
dnpu.compiler.forward splices into its program: `kv_io` (one head's transfer),
`baos_refresh` (the scales and smoothed keys of one head) and `scale_rows`.
"""

from __future__ import annotations

import dataclasses

from dnpu.compiler.attention import head_layout
from dnpu.compiler.kernel import loop
from dnpu.spec import isa, mx
from dnpu.spec.config import Config

__all__ = ["KvStep", "KV_FORMATS", "kv_storage", "kv_layout", "kv_scale_stride", "kv_traffic", "kv_io",
           "per_token", "baos_refresh", "scale_rows"]

KV_FORMATS = ("bf16", *mx.FORMATS, *(f"baos-{f}" for f in mx.FORMATS))


def kv_storage(fmt: str) -> tuple[bool, str]:
    """(BAOS?, the format the keys and values are stored in: bf16 or an MX format)."""
    return (True, fmt[5:]) if fmt.startswith("baos-") else (False, fmt)


@dataclasses.dataclass(frozen=True)
class KvStep:
    """What a step does with the KV cache in memory (docs/NUMERICS.md section 16;
    kv_layout gives its layout). "refresh": the whole forward, and every layer's keys
    (before RoPE) and values stored in `fmt` as they leave the projections. "dual": only
    the block [start, start + length) is computed; each head's keys and values are read
    back from the cache and the block's own rows overwrite theirs, then attention runs
    over every position."""

    mode: str
    fmt: str = "bf16"
    start: int = 0
    length: int = 0


def kv_layout(cfg: Config, shape, fmt: str) -> tuple[int, int]:
    """(stride, bytes) of the KV cache in memory: layer i, head h, keys (j = 0) or values
    (j = 1) at ((i * n_heads + h) * 2 + j) * stride, each part the T tokens of the padded
    head (head_layout: hdp features, hdp / VLEN vector rows a token) as BF16 rows
    (H_STORE_V's layout) or an MX stream (H_STORE_MX's), 64-byte aligned. With BAOS the
    scales s follow all of them: layer i, head h's at 2 * layers * heads * stride +
    (i * n_heads + h) * kv_scale_stride, one BF16 row per RoPE half-row (hhp lanes)."""
    hdp, hhp = head_layout(cfg, shape.head_dim)
    baos, store = kv_storage(fmt)
    n = shape.seq_len * hdp
    stride = mx.align_up(2 * n if store == "bf16" else mx.packed_nbytes(n, store, cfg.mx.block))
    parts = shape.n_layers * shape.n_heads
    return stride, stride * 2 * parts + (kv_scale_stride(cfg, shape) * parts if baos else 0)


def kv_scale_stride(cfg: Config, shape) -> int:
    """Bytes between two heads' BAOS scales (kv_layout)."""
    return mx.align_up(2 * head_layout(cfg, shape.head_dim)[1])


def kv_traffic(cfg: Config, shape, kv: KvStep | None) -> tuple[int, int]:
    """(bytes written, bytes read) of the KV cache by one run of the step `kv`: every
    layer's and head's keys and values, as BF16 rows or the MX stream (stream_nbytes)."""
    if kv is None:
        return 0, 0
    hdp, hhp = head_layout(cfg, shape.head_dim)
    baos, store = kv_storage(kv.fmt)
    n = shape.seq_len * hdp
    part = 2 * n if store == "bf16" else mx.stream_nbytes(n, store, cfg.mx.block)
    total = shape.n_layers * shape.n_heads * (2 * part + (2 * hhp if baos else 0))
    return (total, 0) if kv.mode == "refresh" else (0, total)


def kv_io(cfg: Config, shape, kv: KvStep, i: int, h: int, which: int, at: int, load: bool) -> list[str]:
    """Store (load) one head's keys (which = 0), values (1) or BAOS scales (2) at V[at]
    to (from) the cache (kv_layout; the cache's address at INT[5T + 8])."""
    li = isa.load_imm
    stride, _ = kv_layout(cfg, shape, kv.fmt)
    hdp, hhp = head_layout(cfg, shape.head_dim)
    _, store = kv_storage(kv.fmt)
    head = i * shape.n_heads + h
    if which == 2:
        off = 2 * shape.n_layers * shape.n_heads * stride + head * kv_scale_stride(cfg, shape)
        rows, store = hhp // cfg.vector.vlen, "bf16"
    else:
        off, rows = (head * 2 + which) * stride, shape.seq_len * hdp // cfg.vector.vlen
    a = [f"S_LD_INT x7, x0, {5 * shape.seq_len + 8}", *li("x6", off), "S_ADD x7, x7, x6", *li("x4", at),
         *li("x5", rows)]
    if store == "bf16":
        return a + ["H_LOAD_V x4, x7, x5" if load else "H_STORE_V x4, x7, x5"]
    return a + [f"{'H_PREFETCH_V' if load else 'H_STORE_MX'} x4, x7, x5, {store}"]


def per_token(n: int, at: int, hv: int, hh: int, body) -> list[str]:
    """body(row register of half a, of half b) for n tokens of hv rows from V[at]
    (x8: half a's row, x9: half b's; x10 = hv)."""
    li = isa.load_imm
    return [*li("x8", at), *li("x9", at + hh), *li("x10", hv),
            *loop(n, [*body("x8", "x9"), "S_ADD x8, x8, x10", "S_ADD x9, x9, x10"])]


def baos_refresh(p: dict, att, T: int, hv: int, hh: int) -> list[str]:
    """BAOS's scales of one head's keys at att.k (NUMERICS section 16): m at rot, r at
    rot + hh, s at rot + 2hh, the smoothed keys K' at att.vt (free until the attention)."""
    li = isa.load_imm
    m, r, s = p["rot"], p["rot"] + hh, p["rot"] + 2 * hh
    return [*li("x11", m), *li("x12", hh), *li("x13", att.k), "V_AMAX_VV x11, x13, x13, x12",
            *per_token(T, att.k, hv, hh, lambda a, b: [f"V_AMAX_VV x11, x11, {a}, x12", f"V_AMAX_VV x11, x11, {b}, x12"]),
            *li("x13", r), "V_INVPOW2_V x13, x11, x12", *li("x14", s), "V_RECI_V x14, x13, x12",
            *li("x15", att.vt - att.k),
            *per_token(T, att.k, hv, hh, lambda a, b: [f"S_ADD x14, {a}, x15", f"V_MUL_VV x14, {a}, x13, x12",
                                                      f"S_ADD x14, {b}, x15", f"V_MUL_VV x14, {b}, x13, x12"])]


def scale_rows(n: int, at: int, hv: int, hh: int, by: int) -> list[str]:
    """Both halves of n tokens' heads from V[at] multiplied in place by the hh rows at V[by]."""
    li = isa.load_imm
    return [*li("x12", hh), *li("x13", by),
            *per_token(n, at, hv, hh, lambda a, b: [f"V_MUL_VV {a}, {a}, x13, x12", f"V_MUL_VV {b}, {b}, x13, x12"])]
