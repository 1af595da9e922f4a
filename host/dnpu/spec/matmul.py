"""The matrix unit's arithmetic (docs/NUMERICS.md section 11): BF16 x BF16 products with
FP32 accumulation in increasing k, `matmul_bf16`, and its error bound, built on the
rounding rule and the operations of `dnpu.spec.numerics`."""

from __future__ import annotations

import numpy as np

from dnpu.spec.numerics import (MIN_NORMAL, U_BF16, U_F32, add, bf16_bits, bf16_value, f32_bits, f32_value, mul,
                                round_bf16)

__all__ = ["matmul_bf16", "matmul_error_bound"]

_MM_CHUNK = 1 << 18                  # products held at once: [k-chunk, M, N] float32 stays in cache


def _bf16_exponents(bits) -> np.ndarray:
    """Exponent fields (1..254) of the normal finite BF16 patterns among bits."""
    e = (np.asarray(bits, np.uint16) >> np.uint16(7)) & np.uint16(0xFF)
    return e[(e != 0) & (e != 0xFF)]


def _matmul_args(x_bits, w_bits, out):
    if out not in ("bf16", "f32"):
        raise ValueError(f"out must be 'bf16' or 'f32', got {out!r}")
    x = bf16_value(x_bits)
    w = bf16_value(w_bits)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"need x [M, K] and w [N, K], got {x.shape} and {w.shape}")
    return x, w, (x.shape[0], w.shape[0])


def _matmul_out(acc, residual_bits, out, shape):
    if residual_bits is None:
        return round_bf16(acc) if out == "bf16" else f32_bits(acc)
    r = bf16_value(np.broadcast_to(residual_bits, shape))
    return bf16_bits(add(acc, r, "bf16")) if out == "bf16" else f32_bits(add(acc, r))


def matmul_bf16(x_bits, w_bits, *, residual_bits=None, acc_bits=None, out: str = "bf16"):
    """y[m, n] for BF16 bits x [M, K], w [N, K]: p_k = fp32(x[m,k] * w[n,k]) (DAZ reads),
    acc = acc_bits (FP32 [M, N], DAZ read) or +0, acc = fp32(acc + p_k) for k = 0..K-1.
    out="bf16": uint16 bf16(acc) or bf16(acc + r) (one rounding of the exact sum);
    out="f32": uint32 acc or fp32(acc + r).  r = residual_bits (BF16 [M, N]) widened.

    The K loop runs in NumPy float32, whose multiply and add are IEEE 754 RNE.  On operands
    that are zero, Inf, NaN or normal, IEEE and the rule differ only below 2**-126: for a
    product (IEEE keeps a subnormal or rounds it, the rule flushes it to a zero of its sign)
    and for a sum (exact in IEEE, both addends being multiples of 2**-149; flushed by the
    rule).  Products are flushed after the multiply when the operands' exponents allow a
    tiny one (a 16-bit product below 2**-126 never rounds up to it).  Partial sums run
    unflushed through a chunk of k; the outputs that had a subnormal one are redone,
    flushing after every add (an unflushed run is right up to its first subnormal, so the
    test misses none).  NaN payloads do not matter: every NaN result is made canonical.
    _matmul_bf16_reference is the same arithmetic step by step in float64."""
    x, w, shape = _matmul_args(x_bits, w_bits, out)
    M, N = shape
    K = x.shape[1]
    acc = (np.zeros(shape, np.float32) if acc_bits is None
           else f32_value(np.broadcast_to(acc_bits, shape)).astype(np.float32))
    if K and M and N:
        ex, ew = _bf16_exponents(x_bits), _bf16_exponents(w_bits)
        if ex.size and ew.size:
            lo = int(ex.min()) + int(ew.min()) - 254          # every product is >= 2**lo
        else:
            lo = 0                                            # every product is 0, Inf or NaN
        flush_products = lo < -126
        # Partial sums cannot be subnormal when every product and acc_in is a multiple of
        # 2**-126: so are their exact sums, and the RNE roundings of those (a nonzero one is
        # >= 2**-126).  A BF16 product is a multiple of 2**(lo - 14); an FP32 number of
        # exponent field >= 104 is a multiple of 2**-126.
        check_sums = lo - 14 < -126
        if not check_sums and acc_bits is not None:
            ea = (acc.view(np.uint32) >> np.uint32(23)) & np.uint32(0xFF)
            check_sums = bool(np.any((ea != 0) & (ea < 104)))
        xT = np.ascontiguousarray(x.T, np.float32)[:, :, None]
        wT = np.ascontiguousarray(w.T, np.float32)[:, None, :]
        kc = max(1, min(K, _MM_CHUNK // (M * N)))
        with np.errstate(all="ignore"):
            for k0 in range(0, K, kc):
                k1 = min(K, k0 + kc)
                p = _mm_products(xT[k0:k1], wT[k0:k1], flush_products)
                c = p.reshape(k1 - k0, M * N)
                np.add(acc.reshape(-1), c[0], out=c[0])      # a real add: +0 + -0 is +0
                for k in range(1, k1 - k0):
                    np.add(c[k - 1], c[k], out=c[k])
                last = c[-1]
                if check_sums:
                    # magnitude bits in 1 .. 0x7FFFFF: a subnormal
                    mag1 = (c.view(np.uint32) - np.uint32(1)) & np.uint32(0x7FFFFFFF)
                    bad = (mag1 < np.uint32(0x7FFFFF)).any(axis=0)
                    if bad.any():
                        i = np.flatnonzero(bad)
                        m, n = np.divmod(i, N)
                        p = _mm_products(xT[k0:k1, m, 0], wT[k0:k1, 0, n], flush_products)
                        last[i] = _mm_steps_ftz(acc.reshape(-1)[i], p)
                acc = last.reshape(shape)
    return _matmul_out(acc.astype(np.float64), residual_bits, out, shape)


def _mm_products(a, b, flush: bool) -> np.ndarray:
    """a * b by the rule for float32 arrays of BF16 values: the IEEE product is exact, or Inf
    from 2**128 up as the rule has it; below 2**-126 it is a subnormal or a zero of the right
    sign (a 16-bit product never rounds up to 2**-126), which flush makes a zero."""
    p = a * b
    if flush:
        _ftz32(p)
    return p


def _ftz32(v) -> None:
    """In place: float32 subnormals become zeros of their sign."""
    u = v.view(np.uint32)
    # branch-free: a masked ufunc (where=) mispredicts on mixed data and is several times slower
    m = ((u & np.uint32(0x7F800000)) != 0).astype(np.uint32)
    m *= np.uint32(0x7FFFFFFF)
    m |= np.uint32(0x80000000)
    u &= m


def _mm_steps_ftz(acc, p) -> np.ndarray:
    """acc = fp32(acc + p[k]) for each k, flushing a subnormal partial sum to a zero of its sign."""
    acc = acc.copy()
    for k in range(p.shape[0]):
        np.add(acc, p[k], out=acc)
        _ftz32(acc)
    return acc


def _matmul_bf16_reference(x_bits, w_bits, *, residual_bits=None, acc_bits=None, out: str = "bf16"):
    """matmul_bf16 the slow, obvious way: float64 values, TwoSum and the rule's rounding at
    every step.  Kept as the reference the fast path is tested against."""
    x, w, shape = _matmul_args(x_bits, w_bits, out)
    acc = np.zeros(shape) if acc_bits is None else f32_value(np.broadcast_to(acc_bits, shape))
    for k in range(x.shape[1]):
        acc = add(acc, mul(x[:, k, None], w[None, :, k]))
    return _matmul_out(acc, residual_bits, out, shape)


def matmul_error_bound(x_bits, w_bits, *, residual_bits=None, out: str = "bf16") -> np.ndarray:
    """Per-element bound on |y - (d + r)|, d = sum_k x w exact, r the residual value (or 0):
    gamma_K S + (2K + 1)(1 + gamma_K) 2^-126, plus u_b (|d + r| + gamma_K S) for a BF16 result, u for an
    FP32 result with a residual; S = sum_k |x w|, gamma_K = K u / (1 - K u).  Valid while
    nothing overflows (no Inf or NaN input, |partial sums| < 2^128).  Evaluated in float64
    with |d| and S enlarged by their float64 summation error."""
    x = bf16_value(x_bits)
    w = bf16_value(w_bits)
    K = x.shape[1]
    prod = x[:, None, :] * w[None, :, :]                 # exact
    g64 = K * 2.0 ** -53 / (1 - K * 2.0 ** -53)
    S = np.sum(np.abs(prod), axis=-1) * (1 + g64)
    d = np.sum(prod, axis=-1)
    if residual_bits is not None:
        d = d + bf16_value(np.broadcast_to(residual_bits, d.shape))
    D = np.abs(d) + 2 * g64 * S + np.abs(d) * 2.0 ** -52
    gk = K * U_F32 / (1 - K * U_F32)
    b = gk * S + (2 * K + 1) * MIN_NORMAL * (1 + gk)
    uo = U_BF16 if out == "bf16" else (U_F32 if residual_bits is not None else 0.0)
    return (b + uo * (D + b)) * (1 + 2.0 ** -40)
