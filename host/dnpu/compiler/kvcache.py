"""Compiler: the KV cache of the forward's steps (docs/NUMERICS.md section 16).

A `KvStep` says what a step does with the cache: a "refresh" runs the whole forward and
stores every layer's keys (before RoPE) and values as they leave the projections; a
"dual" step computes only a range of positions (the block for a dual cache, the block and
everything after it for a prefix cache) and reads every head's keys and values back, the
range's own rows over theirs. `kv_layout` is where they lie in device memory (BF16 rows
or the MX stream `H_STORE_MX` writes and `H_PREFETCH_V` reads; with BAOS the scales
after them), `kv_traffic` what a step moves. The rest are the instruction sequences
dnpu.compiler.forward splices into its program: `kv_io` (one head's transfer),
`baos_refresh` (the shift, scales and smoothed keys of one head), `add_shift` and
`scale_rows`.
"""

from __future__ import annotations

import dataclasses

from dnpu.compiler.attention import head_layout
from dnpu.compiler.kernel import loop
from dnpu.spec import isa, mx
from dnpu.spec.config import Config

__all__ = ["KvStep", "KV_FORMATS", "kv_storage", "kv_layout", "kv_scale_stride", "kv_traffic", "kv_io",
           "per_token", "baos_refresh", "add_shift", "scale_rows"]

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
    (H_STORE_V's layout) or an MX stream (H_STORE_MX's), 64-byte aligned. With BAOS each
    head's scales s and smoothed shift u follow all of them: layer i, head h's at
    2 * layers * heads * stride + (i * n_heads + h) * kv_scale_stride, s as BF16 rows of
    hhp lanes (one per RoPE pair), then u (kv_shift_offset further) as hdp lanes."""
    hdp, hhp = head_layout(cfg, shape.head_dim)
    baos, store = kv_storage(fmt)
    n = shape.seq_len * hdp
    stride = mx.align_up(2 * n if store == "bf16" else mx.packed_nbytes(n, store, cfg.mx.block))
    parts = shape.n_layers * shape.n_heads
    return stride, stride * 2 * parts + (kv_scale_stride(cfg, shape) * parts if baos else 0)


def kv_scale_stride(cfg: Config, shape) -> int:
    """Bytes between two heads' BAOS scales and shift (kv_layout)."""
    hdp, hhp = head_layout(cfg, shape.head_dim)
    return kv_shift_offset(cfg, shape) + mx.align_up(2 * hdp)


def kv_shift_offset(cfg: Config, shape) -> int:
    """Bytes from a head's BAOS scales s to its shift u (kv_layout)."""
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
    total = shape.n_layers * shape.n_heads * (2 * part + (2 * (hhp + hdp) if baos else 0))
    return (total, 0) if kv.mode == "refresh" else (0, total)


def kv_io(cfg: Config, shape, kv: KvStep, i: int, h: int, which: int, at: int, load: bool) -> list[str]:
    """Store (load) one head's keys (which = 0), values (1), BAOS scales s (2) or BAOS shift
    u (3) at V[at] to (from) the cache (kv_layout; the cache's address at INT[5T + 8])."""
    li = isa.load_imm
    stride, _ = kv_layout(cfg, shape, kv.fmt)
    hdp, hhp = head_layout(cfg, shape.head_dim)
    _, store = kv_storage(kv.fmt)
    head = i * shape.n_heads + h
    if which >= 2:
        off = 2 * shape.n_layers * shape.n_heads * stride + head * kv_scale_stride(cfg, shape)
        if which == 3:
            off += kv_shift_offset(cfg, shape)
        rows, store = (hhp if which == 2 else hdp) // cfg.vector.vlen, "bf16"
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
    """BAOS at a refresh for one head's keys at att.k (NUMERICS section 16): the smoothed
    keys K' at att.vt (free until the attention), s at p["rot"] + 2hh, u at
    att.o + 2hv + hh (returned by baos_places). att.o (free until the attention) holds
    the range's ends, then mu, then u; p["rot"] holds m, r and s."""
    li = isa.load_imm
    m, r, s = p["rot"], p["rot"] + hh, p["rot"] + 2 * hh
    hi, lo, tmp, u = baos_places(att, hv, hh)
    amax = [*li("x11", m), *li("x12", hh)]
    a = [*amax, *li("x13", att.k), "V_AMAX_VV x11, x13, x13, x12",
         *per_token(T, att.k, hv, hh, lambda a, b: [f"V_AMAX_VV x11, x11, {a}, x12", f"V_AMAX_VV x11, x11, {b}, x12"])]
    # the ends of each channel's range, moved by m so that V_AMAX_VV orders them
    a += ["S_LI_FP f1, 0x0000", *li("x4", hi), *li("x5", 2 * hv), "V_FILL_VF x4, f1, x5",
          *li("x4", tmp), *li("x5", m), *li("x6", hh), *li("x7", hi), *li("x11", hi + hh), *li("x13", lo),
          *li("x14", lo + hh),
          *per_token(T, att.k, hv, hh, lambda a, b: [
              f"V_ADD_VV x4, {a}, x5, x6", "V_AMAX_VV x7, x7, x4, x6", f"V_ADD_VV x4, {b}, x5, x6",
              "V_AMAX_VV x11, x11, x4, x6", f"V_SUB_VV x4, x5, {a}, x6", "V_AMAX_VV x13, x13, x4, x6",
              f"V_SUB_VV x4, x5, {b}, x6", "V_AMAX_VV x14, x14, x4, x6"]),
          # mu = (hi - lo) / 2 over hi, both halves at once
          *li("x4", hv), *li("x13", lo), "V_SUB_VV x7, x7, x13, x4", "S_LI_FP f1, 0x3F00", "V_MUL_VF x7, x7, f1, x4",
          # d = K - mu at att.vt
          *li("x15", att.vt - att.k),
          *per_token(T, att.k, hv, hh, lambda a, b: [f"S_ADD x4, {a}, x15", f"V_SUB_VV x4, {a}, x7, x6",
                                                    f"S_ADD x4, {b}, x15", f"V_SUB_VV x4, {b}, x11, x6"])]
    # r and s from the pair's largest magnitude of d, then K' = d r and u = mu r in place
    a += [*amax, *li("x13", att.vt), "V_AMAX_VV x11, x13, x13, x12",
          *per_token(T, att.vt, hv, hh, lambda a, b: [f"V_AMAX_VV x11, x11, {a}, x12", f"V_AMAX_VV x11, x11, {b}, x12"]),
          *li("x13", r), "V_INVPOW2_V x13, x11, x12", *li("x14", s), "V_RECI_V x14, x13, x12",
          *per_token(T, att.vt, hv, hh, lambda a, b: [f"V_MUL_VV {a}, {a}, x13, x12", f"V_MUL_VV {b}, {b}, x13, x12"]),
          *li("x4", hi), *li("x5", u), "V_MUL_VV x5, x4, x13, x12", *li("x4", hi + hh), *li("x5", u + hh),
          "V_MUL_VV x5, x4, x13, x12"]
    return a


def baos_places(att, hv: int, hh: int) -> tuple[int, int, int, int]:
    """Vector-SRAM rows baos_refresh works in, inside att.o: (hi, later mu; lo; a
    scratch half; u). Needs 3hv + hh rows of att.o's n * hv."""
    o = att.o
    return o, o + hv, o + 2 * hv, o + 2 * hv + hh


def add_shift(T: int, at: int, hv: int, hh: int, u: int) -> list[str]:
    """Both halves of T tokens' heads from V[at] plus the shift u (hv rows at V[u]) in place."""
    li = isa.load_imm
    return [*li("x12", hh), *li("x13", u), *li("x14", u + hh),
            *per_token(T, at, hv, hh, lambda a, b: [f"V_ADD_VV {a}, {a}, x13, x12", f"V_ADD_VV {b}, {b}, x14, x12"])]


def scale_rows(n: int, at: int, hv: int, hh: int, by: int) -> list[str]:
    """Both halves of n tokens' heads from V[at] multiplied in place by the hh rows at V[by]."""
    li = isa.load_imm
    return [*li("x12", hh), *li("x13", by),
            *per_token(n, at, hv, hh, lambda a, b: [f"V_MUL_VV {a}, {a}, x13, x12", f"V_MUL_VV {b}, {b}, x13, x12"])]
