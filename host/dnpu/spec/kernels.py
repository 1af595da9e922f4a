"""The arithmetic of kernels built from several instructions (docs/NUMERICS.md sections 12-14),
composed from `dnpu.spec.numerics`' instruction-level functions, so a compiled kernel's
result can be checked bit for bit and its error bounded."""

from __future__ import annotations

import numpy as np

from dnpu.spec import numerics as nm

__all__ = ["rms_norm_constants", "rms_norm_bf16", "rms_norm_error_bound", "swiglu_bf16", "swiglu_error_bound", "rope_bf16"]


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
