"""The arithmetic of kernels built from several instructions (docs/NUMERICS.md sections 12-15),
composed from `dnpu.spec.numerics`' instruction-level functions, so a compiled kernel's
result can be checked bit for bit and its error bounded."""

from __future__ import annotations

import numpy as np

from dnpu.spec import matmul
from dnpu.spec import numerics as nm

__all__ = ["rms_norm_constants", "rms_norm_bf16", "rms_norm_error_bound", "swiglu_bf16", "swiglu_error_bound", "rope_bf16",
           "attention_scale", "attention_bf16", "attention_error_bound"]


def rms_norm_constants(d: int, eps: float) -> tuple[int, int]:
    """The FP32 bits of the kernel's two constants: fp32(1/d) and fp32(eps)."""
    return int(nm.round_f32(np.float64(1.0) / d)), int(nm.round_f32(np.float64(eps)))


def rms_norm_bf16(x_bits, g_bits, eps_bits: int, d: int, vlen: int) -> np.ndarray:
    """RMSNorm of BF16 rows x [M, Dp] (Dp = D padded to whole vector rows with zeros) with
    gain g [Dp] and FP32 eps, as the NPU computes it: q = bf16(x x), s = V_RED_SUM(q),
    v = fp32(fp32(s * fp32(1/d)) + eps), r = RSQRT(v), y = bf16(bf16(x r) g)."""
    x = np.asarray(x_bits, np.uint16)
    g = np.asarray(g_bits, np.uint16)
    m, dp = x.shape
    xv = nm.bf16_value(x)
    q = nm.round_bf16(xv * xv)                                  # exact product, one rounding
    s = np.array([nm.red_sum(q[i].reshape(dp // vlen, vlen)) for i in range(m)], np.uint32)
    c = np.uint32(rms_norm_constants(d, 0.0)[0])
    v = nm.f32_add(nm.f32_mul(s, c), np.uint32(eps_bits))
    r = nm.rsqrt_f32(v)
    t = nm.round_bf16(xv * nm.f32_value(r)[:, None])
    return nm.round_bf16(nm.bf16_value(t) * nm.bf16_value(g)[None, :])


def rms_norm_error_bound(d: int) -> float:
    """B of docs/NUMERICS.md section 12: |y - y*| <= B |y*| when nothing overflows or flushes."""
    u, ub = nm.U_F32, nm.U_BF16
    g = d * u / (1 - d * u)
    alpha = (1 + ub) * (1 + g) - 1
    zeta = (1 + alpha) * (1 + u) ** 3 - 1
    return ((1 + ub) ** 2 * (1 + u) * (1 - zeta) ** -0.5 - 1) * (1 + 2.0 ** -40)


def swiglu_bf16(g_bits, u_bits) -> np.ndarray:
    """silu(g) * u elementwise as the NPU computes it (docs/NUMERICS.md section 13):
    n = bf16(-g), e = V_EXP_V(n), s = bf16(e + 1), r = V_RECI_V(s), h = bf16(bf16(g r) u)."""
    g = nm.bf16_value(np.asarray(g_bits, np.uint16))
    u = nm.bf16_value(np.asarray(u_bits, np.uint16))
    e = nm.exp_bf16(nm.round_bf16(-g))
    s = nm.bf16_bits(nm.add(nm.bf16_value(e), 1.0, "bf16"))
    r = nm.reci_bf16(s)
    t = nm.bf16_bits(nm.mul(g, nm.bf16_value(r), "bf16"))
    return nm.bf16_bits(nm.mul(nm.bf16_value(t), u, "bf16"))


def swiglu_error_bound() -> float:
    """B of docs/NUMERICS.md section 13: |h - h*| <= B |h*| while EXP does not overflow and
    nothing is flushed."""
    u, ub, E = nm.U_F32, nm.U_BF16, nm.EXP_REL_ERR_BOUND
    a = (1 + E) * (1 + ub) - 1
    return ((1 + ub) ** 3 * (1 + u) / ((1 - a) * (1 - ub)) - 1) * (1 + 2.0 ** -40)


def rope_bf16(x_bits, cos_bits, sin_bits, n_heads: int) -> np.ndarray:
    """Rotate-half RoPE as the NPU computes it (docs/NUMERICS.md section 14): x [L, H*2h]
    BF16, cos / sin [L, h] BF16; per head y_a = bf16(bf16(a c) - bf16(b s)),
    y_b = bf16(bf16(b c) + bf16(a s))."""
    x = nm.bf16_value(np.asarray(x_bits, np.uint16))
    L, d = x.shape
    h = d // (2 * n_heads)
    xv = x.reshape(L, n_heads, 2, h)
    c = nm.bf16_value(np.asarray(cos_bits, np.uint16))[:, None, :]
    s = nm.bf16_value(np.asarray(sin_bits, np.uint16))[:, None, :]
    a, b = xv[:, :, 0], xv[:, :, 1]
    ya = nm.bf16_bits(nm.sub(nm.mul(a, c, "bf16"), nm.mul(b, s, "bf16"), "bf16"))
    yb = nm.bf16_bits(nm.add(nm.mul(b, c, "bf16"), nm.mul(a, s, "bf16"), "bf16"))
    return np.stack([ya, yb], axis=2).reshape(L, d)


def attention_scale(hd: int) -> int:
    """FP32 bits of c = RSQRT(hd), the score scale (hd is exact in FP32)."""
    return int(nm.rsqrt_f32(np.uint32(nm.round_f32(np.float64(hd)))))


def attention_bf16(q_bits, k_bits, v_bits, tile: int, vlen: int) -> np.ndarray:
    """One head of bidirectional attention as the NPU computes it (docs/NUMERICS.md section
    15): q [n, hd], k, v [T, hd] BF16; keys in tiles of `tile` (T padded with zero rows, their
    scores masked to -Inf), the streaming max / sum / output recurrence; vlen fixes V_RED_SUM's
    order. Returns [n, hd] BF16."""
    q = np.asarray(q_bits, np.uint16)
    k = np.asarray(k_bits, np.uint16)
    v = np.asarray(v_bits, np.uint16)
    n, hd = q.shape
    T = k.shape[0]
    tp = -(-T // tile) * tile
    kp = np.zeros((tp, hd), np.uint16)
    vp = np.zeros((tp, hd), np.uint16)
    kp[:T], vp[:T] = k, v
    c = nm.f32_value(np.uint32(attention_scale(hd)))
    qs = nm.bf16_bits(nm.mul(nm.bf16_value(q), c, "bf16"))
    m = np.full(n, 0xFF800000, np.uint32)                      # -Inf
    l = np.zeros(n, np.uint32)
    o = np.zeros((n, hd), np.uint16)
    for t0 in range(0, tp, tile):
        s = matmul.matmul_bf16(qs, kp[t0:t0 + tile])
        if t0 + tile > T:
            mu = np.where(np.arange(t0, t0 + tile) < T, 0.0, -np.inf)
            s = nm.bf16_bits(nm.add(nm.bf16_value(s), mu[None, :], "bf16"))
        p = np.empty_like(s)
        for i in range(n):
            mt = nm.red_max_idx(s[i])[0]
            m2 = nm.max_f32(m[i], mt)
            a = nm.exp_f32(nm.f32_sub(m[i], m2))
            p[i] = nm.exp_bf16(nm.bf16_bits(nm.sub(nm.bf16_value(s[i]), nm.f32_value(m2), "bf16")))
            l[i] = nm.f32_add(nm.f32_mul(l[i], a), np.uint32(nm.red_sum(p[i].reshape(-1, vlen))))
            o[i] = nm.bf16_bits(nm.mul(nm.bf16_value(o[i]), nm.f32_value(a), "bf16"))
            m[i] = m2
        o = matmul.matmul_bf16(p, vp[t0:t0 + tile].T, residual_bits=o)
    r = nm.f32_value(nm.reci_f32(l))
    return nm.bf16_bits(nm.mul(nm.bf16_value(o), r[:, None], "bf16"))


def attention_error_bound(q_bits, k_bits, v_bits, tile: int) -> np.ndarray:
    """Per-element bound on |o - o*| (docs/NUMERICS.md section 15), o* = softmax(q kᵀ/sqrt(hd)) v
    exact for the same BF16 operands, while nothing overflows, flushes or underflows in EXP.
    Each weight exp(s_j - m) is off by at most a relative rho: the score's FP32 dot product
    and BF16 roundings (q' = bf16(q c), s, s - m'), EXP and the BF16 p, and the rescales
    a = exp(m - m') of the later tiles; the normalised weights then move o by at most
    rho/(1 - rho) sum_j P_j |v_j - o*|. The roundings of the running o (two BF16 a tile, the
    FP32 P.V sums), of l (FP32), 1/l and the output add kappa relative to sum_j P_j |v_j|."""
    q = nm.bf16_value(np.asarray(q_bits, np.uint16))
    k = nm.bf16_value(np.asarray(k_bits, np.uint16))
    v = nm.bf16_value(np.asarray(v_bits, np.uint16))
    n, hd = q.shape
    T = k.shape[0]
    nt = -(-T // tile)
    u, ub, E = nm.U_F32, nm.U_BF16, nm.EXP_REL_ERR_BOUND
    c = 1.0 / np.sqrt(hd)
    S = c * (q @ k.T)                                          # exact scores (float64)
    A = c * (np.abs(q) @ np.abs(k).T)
    g_hd = hd * u / (1 - hd * u)
    e = ((1 + u) * (1 + ub) * (1 + g_hd) * (1 + ub) - 1) * A   # |s - S|
    big = np.max(np.abs(S) + e, axis=1, keepdims=True)          # bounds |s| and |m'|
    eps = e + ub * (1 + ub) * (np.abs(S) + e + big)             # the shifted score's error
    a_err = ((1 + E) * np.exp(2 * u * big)) ** (nt - 1)          # rescales of later tiles
    rho = np.max(np.exp(eps), axis=1, keepdims=True) * (1 + E) * (1 + ub) * a_err - 1
    P = np.exp(S - S.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    o = P @ v
    d1 = rho / (1 - rho) * np.einsum("nt,ntd->nd", P, np.abs(v[None, :, :] - o[:, None, :]))
    g_b = tile * u / (1 - tile * u)
    kappa_o = (1 + ub) ** (2 * nt) * (1 + g_b) ** nt - 1
    kappa_l = (1 + u) ** (2 * nt) * (1 + g_b) ** nt - 1
    kappa = (1 + kappa_o) * (1 + kappa_l) * (1 + u) * (1 + ub) - 1
    return (d1 + kappa * (1 + rho) / (1 - rho) * (P @ np.abs(v))) * (1 + 2.0 ** -20)
