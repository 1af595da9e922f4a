"""dnpu numerics: the one definition of every arithmetic step (docs/NUMERICS.md).

The emulator (dnpu.emu) is built from these vectorised NumPy primitives and the RTL
implements the same rules bit for bit.  Values travel in two forms:

* **bits**: uint32 arrays for FP32, uint16 arrays for BF16 (what SRAMs and registers hold);
* **values**: float64 arrays holding FP32/BF16 numbers exactly, already read with the DAZ
  rule (a subnormal input reads as a zero of its sign); NaN is any float64 NaN.

The rule every FP result follows (``round_f32`` / ``round_bf16``): the exact result is
rounded once to the destination precision (24 or 8 significant bits), round to nearest,
ties to even, with an unbounded exponent; a rounded magnitude >= 2**128 is +-Inf, one
below 2**-126 is flushed to a zero of the result's sign (FTZ); NaN results are canonical
(FP32 0x7FC00000, BF16 0x7FC0).

Exact emulation: FP32 and BF16 products are exact in float64 (<= 48 significant bits,
exponents far inside float64's range).  A float64 sum can round when the exponents are
far apart, so sums go through TwoSum: s + e equals the exact sum, and ``round_*(s, e)``
uses the sign of e to break the one case that matters, s exactly halfway between two
destination numbers.
"""

from __future__ import annotations

import math
import struct

import numpy as np

__all__ = [
    # constants
    "F32_NAN", "BF16_NAN", "F32_ONE", "F32_POS_INF", "F32_NEG_INF", "BF16_POS_INF", "BF16_NEG_INF",
    "MIN_NORMAL", "U_F32", "U_BF16", "LOG2E_BITS", "EXP_T_BITS", "EXP_D_BITS",
    "EXP_REL_ERR_BOUND", "EXP_MEASURED_REL_ERR", "EXP_BF16_IN_MEASURED_REL_ERR",
    "EXP_BF16_MEASURED_REL_ERR", "exp_rel_errors", "exp_error_sweep", "FP_MAX_STAGES",
    # reading / rounding / conversions
    "f32_value", "bf16_value", "round_f32", "round_bf16", "f32_bits", "bf16_bits", "two_sum",
    "widen_bf16", "narrow_f32", "f32_from_float", "float_from_f32", "round_bf16_f32",
    # arithmetic
    "add", "sub", "mul", "f32_add", "f32_sub", "f32_mul", "exp_values", "exp_f32", "exp_bf16",
    "reci_f32",
    "reci_bf16", "amax_bits", "invpow2_bits",
    "rsqrt_f32",
    # comparisons, reductions
    "gt", "ge", "lt", "argmax", "max_f32", "red_max_idx", "tree_sum", "red_sum", "seq_sum",
    "topk_mask", "thresh_mask",
    # sampling flows and error bounds
    "fused_sample", "phased_confidence", "fused_confidence", "exp_rel_error_bound",
    "p_rel_error_bound", "softmax_spread",
]

F32_NAN = 0x7FC00000
BF16_NAN = 0x7FC0
F32_ONE = 0x3F800000
F32_POS_INF = 0x7F800000
F32_NEG_INF = 0xFF800000
BF16_POS_INF = 0x7F80
BF16_NEG_INF = 0xFF80
MIN_NORMAL = 2.0 ** -126          # smallest normal magnitude, FP32 and BF16 alike
_OVERFLOW = 2.0 ** 128            # a rounded magnitude this large is Inf
U_F32 = 2.0 ** -24                # unit roundoff (half an ulp, relative) of FP32 ...
U_BF16 = 2.0 ** -8                # ... and of BF16 (8 significant bits)

# The most pipeline stages (a unit's STAGES parameter) the RTL's FP32 adder, multiplier and
# EXP unit take: the steps their functions in hw/rtl/common/dnpu_fp_funcs.vh split into
# (FP_ADD_STEPS, FP_MUL_STEPS, FP_EXP_STEPS); tests/rtl/test_fp_pipe.py checks the two agree.
FP_MAX_STAGES = {"add": 4, "mul": 2, "exp": 7}

_SIGN64 = np.uint64(1 << 63)
_DROP = {"f32": 29, "bf16": 45}   # float64 fraction bits a rounding to FP32 / BF16 drops


# ---------------------------------------------------------------------------------------------
# reading (DAZ), rounding (RNE, unbounded exponent, FTZ), bit patterns

def f32_value(bits) -> np.ndarray:
    """float64 values of FP32 bit patterns, read with DAZ (subnormal -> zero of its sign)."""
    u = np.asarray(bits, dtype=np.uint32)
    u = np.where((u & np.uint32(0x7F800000)) == 0, u & np.uint32(0x80000000), u)
    with np.errstate(invalid="ignore"):                  # signalling NaN patterns
        return u.view(np.float32).astype(np.float64)


def bf16_value(bits) -> np.ndarray:
    """float64 values of BF16 bit patterns, read with DAZ."""
    return f32_value(np.asarray(bits, dtype=np.uint16).astype(np.uint32) << np.uint32(16))


def two_sum(a, b) -> tuple[np.ndarray, np.ndarray]:
    """(s, e) with s = fl64(a + b) and s + e == a + b exactly (Knuth's TwoSum; e = 0 when s
    is not finite)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        s = a + b
        bb = s - a
        e = (a - (s - bb)) + (b - bb)
    e = np.where(np.isfinite(s), e, 0.0)
    return s, e


def _round(x, resid, fmt: str) -> np.ndarray:
    """float64 value of x (+ resid) rounded by the rule to FP32 or BF16 (NaN stays NaN)."""
    x = np.asarray(x, np.float64)
    drop = _DROP[fmt]
    mag = x.view(np.uint64) & ~_SIGN64
    keep = mag >> np.uint64(drop)
    rem = mag & np.uint64((1 << drop) - 1)
    half = np.uint64(1 << (drop - 1))
    odd = (keep & np.uint64(1)).astype(bool)
    tie = rem == half
    if resid is None:
        up = (rem > half) | (tie & odd)
    else:
        r = np.asarray(resid, np.float64)
        away = (r != 0) & (np.signbit(r) == np.signbit(x))   # exact value beyond s: round up
        up = (rem > half) | (tie & (away | ((r == 0) & odd)))
    keep = keep + up.astype(np.uint64)
    v = (keep << np.uint64(drop)).view(np.float64)
    v = np.where(v >= _OVERFLOW, np.inf, np.where(v < MIN_NORMAL, 0.0, v))
    v = np.copysign(v, x)
    return np.where(np.isnan(x), np.nan, v)


def f32_bits(v) -> np.ndarray:
    """uint32 bit patterns of float64 values that are FP32 numbers (NaN -> 0x7FC00000)."""
    v = np.asarray(v, np.float64)
    out = v.astype(np.float32).view(np.uint32)
    return np.where(np.isnan(v), np.uint32(F32_NAN), out)


def bf16_bits(v) -> np.ndarray:
    """uint16 bit patterns of float64 values that are BF16 numbers (NaN -> 0x7FC0)."""
    v = np.asarray(v, np.float64)
    out = (v.astype(np.float32).view(np.uint32) >> np.uint32(16)).astype(np.uint16)
    return np.where(np.isnan(v), np.uint16(BF16_NAN), out)


def round_f32(x, resid=None) -> np.ndarray:
    """FP32 bits of the float64 value x (+ the exact residual resid, as from two_sum) rounded
    once by the rule: RNE with an unbounded exponent, >= 2**128 -> +-Inf, below 2**-126 ->
    signed zero, NaN -> 0x7FC00000."""
    return f32_bits(_round(x, resid, "f32"))


def round_bf16(x, resid=None) -> np.ndarray:
    """BF16 bits of x (+ resid) rounded once by the rule (NaN -> 0x7FC0)."""
    return bf16_bits(_round(x, resid, "bf16"))


def widen_bf16(bits) -> np.ndarray:
    """BF16 -> FP32 bit patterns: exact (the BF16 bits are the top half)."""
    return np.asarray(bits, np.uint16).astype(np.uint32) << np.uint32(16)


def narrow_f32(bits) -> np.ndarray:
    """FP32 -> BF16 bit patterns: DAZ read, RNE to 8 significant bits, FTZ, overflow -> +-Inf."""
    return round_bf16(f32_value(bits))


def round_bf16_f32(x) -> np.ndarray:
    """float32 x rounded to bfloat16 as the host libraries cast (torch's .to(bfloat16),
    ml_dtypes: nearest, ties to even, subnormals kept, unlike the NPU's flushing rule), as
    float32; on the bits, so NumPy alone does it. x must be finite (NaN would need its own
    case)."""
    u = np.ascontiguousarray(x, np.float32).view(np.uint32)
    u = (u + (np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1)))) & np.uint32(0xFFFF0000)
    return u.view(np.float32)


def f32_from_float(x) -> np.ndarray:
    """FP32 bits of host floats, rounded by the rule (a convenience for tests and hosts)."""
    return round_f32(np.asarray(x, np.float64))


def float_from_f32(bits) -> np.ndarray:
    """float64 values of FP32 bits without DAZ (what the bits mean in IEEE 754)."""
    return np.asarray(bits, np.uint32).view(np.float32).astype(np.float64)


# scalar rounding for the sequential recurrences (same rule; pure Python for speed)

_PACK_D = struct.Struct("<d")
_PACK_Q = struct.Struct("<Q")


def _r32s(x: float, e: float = 0.0) -> float:
    """Scalar _round(x, e, "f32")."""
    if x != x:
        return math.nan
    b = _PACK_Q.unpack(_PACK_D.pack(x))[0]
    mag = b & 0x7FFFFFFFFFFFFFFF
    if mag >= 0x7FF0000000000000:
        return x
    keep, rem = mag >> 29, mag & 0x1FFFFFFF
    if rem > 0x10000000:
        keep += 1
    elif rem == 0x10000000:
        if e != 0.0:
            keep += (e > 0.0) == (x > 0.0)
        else:
            keep += keep & 1
    v = _PACK_D.unpack(_PACK_Q.pack(keep << 29))[0]
    if v >= _OVERFLOW:
        v = math.inf
    elif v < MIN_NORMAL:
        v = 0.0
    return -v if b >> 63 else v


def _add32s(a: float, b: float) -> float:
    """Scalar FP32 a + b (values) by the rule."""
    s = a + b
    if s - s != 0.0:                       # Inf or NaN
        return s if s == s else math.nan
    bb = s - a
    return _r32s(s, (a - (s - bb)) + (b - bb))


# ---------------------------------------------------------------------------------------------
# add, sub, mul

def add(a, b, fmt: str = "f32") -> np.ndarray:
    """Values a + b rounded once by the rule to fmt ("f32" or "bf16"), as float64 values."""
    s, e = two_sum(a, b)
    return _round(s, e, fmt)


def sub(a, b, fmt: str = "f32") -> np.ndarray:
    """Values a - b rounded once by the rule."""
    return add(a, -np.asarray(b, np.float64), fmt)


def mul(a, b, fmt: str = "f32") -> np.ndarray:
    """Values a * b rounded once by the rule (the float64 product of two <= 24-bit
    significands is exact)."""
    with np.errstate(invalid="ignore"):
        p = np.asarray(a, np.float64) * np.asarray(b, np.float64)
    return _round(p, None, fmt)


def f32_add(a_bits, b_bits) -> np.ndarray:
    """FP32 bits of a + b (S_ADD_FP)."""
    return f32_bits(add(f32_value(a_bits), f32_value(b_bits)))


def f32_sub(a_bits, b_bits) -> np.ndarray:
    """FP32 bits of a - b (S_SUB_FP)."""
    return f32_bits(sub(f32_value(a_bits), f32_value(b_bits)))


def f32_mul(a_bits, b_bits) -> np.ndarray:
    """FP32 bits of a * b (S_MUL_FP)."""
    return f32_bits(mul(f32_value(a_bits), f32_value(b_bits)))


# ---------------------------------------------------------------------------------------------
# EXP

LOG2E_BITS = 0x3FB8AA3B                 # FP32 nearest to log2(e)
_LOG2E = float(np.uint32(LOG2E_BITS).view(np.float32))
EXP_INDEX_BITS = 6                      # 64 table intervals per octave


def _exp2_table() -> tuple[list[int], list[int]]:
    """T[i] = FP32 nearest 2**(i/64), i = 0..64 (decided with exact integer arithmetic), and
    D[i] = fp32(T[i+1] - T[i]) by the rule, i = 0..63."""
    t = []
    for i in range(64):
        target = 1 << (i + 23 * 64)                      # m**64 vs 2**i * 2**(23*64)
        m = int(2.0 ** (i / 64) * 2 ** 23)
        while m ** 64 > target:
            m -= 1
        while (m + 1) ** 64 <= target:
            m += 1
        if (2 * m + 1) ** 64 < 1 << (i + 24 * 64):      # 2**(i/64) above the midpoint
            m += 1                                        # (never equal: irrational for i > 0)
        t.append(m / 2.0 ** 23)
    t.append(2.0)
    tv = np.array(t)
    d = _round(tv[1:] - tv[:-1], None, "f32")            # the difference is exact in float64
    return [int(b) for b in f32_bits(tv)], [int(b) for b in f32_bits(d)]


EXP_T_BITS, EXP_D_BITS = _exp2_table()
_T64 = f32_value(np.array(EXP_T_BITS, np.uint32))
_D64 = f32_value(np.array(EXP_D_BITS, np.uint32))


def exp_values(x) -> np.ndarray:
    """EXP on FP32 values (float64 in, DAZ already applied), FP32 values out.

    t = fp32(x * LOG2E); NaN -> NaN; t >= 128 -> +Inf; t < -126 -> +0; otherwise
    n = floor(t), f = t - n, i = floor(64 f), r = 64 f - i, and
    result = fp32(T[i] + fp32(D[i] * r)) * 2**n.  D[i]*r is computed exactly as
    D[i]*(64 t) - D[i]*j with j = floor(64 t) = 64 n + i (two exact float64 products).
    """
    x = np.asarray(x, np.float64)
    with np.errstate(invalid="ignore"):
        t = _round(x * _LOG2E, None, "f32")
    nan = np.isnan(t)
    with np.errstate(invalid="ignore"):
        big = t >= 128.0
        small = t < -126.0
    ok = ~(nan | big | small)
    t64 = np.where(ok, t, 0.0) * 64.0
    j = np.floor(t64)
    ji = j.astype(np.int64)
    i = ji & 63
    n = ji >> 6
    d = _D64[i]
    s, e = two_sum(d * t64, -(d * j))                    # = D[i] * r exactly
    q = _round(s, e, "f32")
    s, e = two_sum(_T64[i], q)
    p = _round(s, e, "f32")                              # in [1, 2]
    res = np.ldexp(p, n.astype(np.int32))
    res = np.where(res >= _OVERFLOW, np.inf, res)        # only p = 2 at n = 127
    return np.where(ok, res, np.where(big, np.inf, np.where(small, 0.0, np.nan)))


def exp_f32(bits) -> np.ndarray:
    """S_EXP_FP: FP32 bits in, FP32 bits out."""
    return f32_bits(exp_values(f32_value(bits)))


def exp_bf16(bits) -> np.ndarray:
    """V_EXP_V per element: BF16 widened to FP32, EXP, the FP32 result narrowed to BF16."""
    return round_bf16(exp_values(bf16_value(bits)))


# ---------------------------------------------------------------------------------------------
# RECI

def reci_f32(bits) -> np.ndarray:
    """S_RECI_FP: correctly rounded 1/x by the rule (1/+-0 = +-Inf, 1/+-Inf = +-0, NaN ->
    NaN).  The float64 quotient is correctly rounded to 53 bits; it cannot land on an FP32
    midpoint unless 1/x is one, and 1/x of a 24-bit x never is, so one more rounding is
    exact rounding."""
    x = f32_value(bits)
    with np.errstate(divide="ignore"):
        q = 1.0 / x
    return round_f32(q)


def reci_bf16(bits) -> np.ndarray:
    """V_RECI_V per element (docs/NUMERICS.md section 4.2): the BF16 element widened to FP32,
    S_RECI_FP's correctly rounded reciprocal, that FP32 result narrowed to BF16."""
    return round_bf16(f32_value(reci_f32(widen_bf16(bits))))


def amax_bits(a_bits, b_bits) -> np.ndarray:
    """V_AMAX_VV per element (docs/NUMERICS.md section 16): the larger of the two BF16
    magnitudes (bits & 0x7FFF, compared as integers), its bits."""
    a = np.asarray(a_bits, np.uint16) & np.uint16(0x7FFF)
    b = np.asarray(b_bits, np.uint16) & np.uint16(0x7FFF)
    return np.maximum(a, b)


def invpow2_bits(bits) -> np.ndarray:
    """V_INVPOW2_V per element (docs/NUMERICS.md section 16): 2^-E for E = min(f, 253) - 127
    and f the BF16 exponent field, 1.0 where f is 0 or 255."""
    f = (np.asarray(bits, np.uint16) >> np.uint16(7)) & np.uint16(0xFF)
    y = ((254 - np.minimum(f, 253)).astype(np.uint16) << np.uint16(7)).astype(np.uint16)
    return np.where((f == 0) | (f == 255), np.uint16(0x3F80), y).astype(np.uint16)


def rsqrt_f32(bits) -> np.ndarray:
    """S_RSQRT_FP: correctly rounded 1/sqrt(x) (docs/NUMERICS.md section 4.1): DAZ read,
    1/sqrt(+-0) = +-Inf, 1/sqrt(+Inf) = +0, x < 0 or NaN -> NaN.  Y = the largest integer
    with Y^2 M' <= 2^73 (M', k: x = (M' / 2^23) 4^k, M' / 2^23 in [1, 4)), then RNE of Y's
    25 bits with the sticky bit Y^2 M' != 2^73; exact integer arithmetic."""
    u = np.asarray(bits, dtype=np.uint32)
    out = np.empty(u.shape, np.uint32)
    for i, b in np.ndenumerate(u):
        out[i] = _rsqrt_bits(int(b))
    return out


def _rsqrt_bits(b: int) -> int:
    sign, e, f = b >> 31, (b >> 23) & 0xFF, b & 0x7FFFFF
    if e == 0xFF and f:
        return F32_NAN
    if e == 0:                                   # +-0 and subnormals (DAZ): +-Inf
        return (sign << 31) | 0x7F800000
    if sign:
        return F32_NAN
    if e == 0xFF:
        return 0
    m = (1 << 23) | f
    mp, k = (m, (e - 127) // 2) if e % 2 else (2 * m, (e - 128) // 2)
    if mp == 1 << 23:                            # a power of 4: exact
        return (127 - k) << 23
    y = math.isqrt((1 << 73) // mp)              # floor(sqrt(floor(z))) = floor(sqrt(z))
    sticky = y * y * mp != 1 << 73
    sig, rnd = y >> 1, y & 1                     # 24-bit significand, round bit
    sig += rnd & (sticky | (sig & 1))
    exp = 126 - k
    if sig >> 24:                                # rounded up to 2.0
        sig, exp = sig >> 1, exp + 1
    return (exp << 23) | (sig & 0x7FFFFF)


# ---------------------------------------------------------------------------------------------
# comparisons, max / argmax (NaN above every number, NaNs equal, -0 == +0)

def gt(a, b) -> np.ndarray:
    """a > b on values with the NaN rule."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    an, bn = np.isnan(a), np.isnan(b)
    with np.errstate(invalid="ignore"):
        return (an & ~bn) | (~an & ~bn & (a > b))


def ge(a, b) -> np.ndarray:
    """a >= b on values with the NaN rule (NaN >= anything; a number >= NaN is false)."""
    return ~gt(b, a)


def lt(a, b) -> np.ndarray:
    """a < b on values with the NaN rule."""
    return gt(b, a)


def argmax(v, axis: int = -1) -> np.ndarray:
    """Index of the maximum along axis: the first NaN if there is one, else the lowest index
    among equal maxima (-0 == +0)."""
    v = np.asarray(v, np.float64)
    isn = np.isnan(v)
    first_nan = np.argmax(isn, axis=axis)
    am = np.argmax(np.where(isn, -np.inf, v), axis=axis)   # first occurrence of the max
    return np.where(isn.any(axis=axis), first_nan, am)


def max_f32(a_bits, b_bits) -> np.ndarray:
    """S_MAX_FP: b if b > a else a (a wins ties), as the chosen operand's DAZ-read value
    (a subnormal becomes a zero of its sign; NaN is canonical)."""
    a, b = f32_value(a_bits), f32_value(b_bits)
    return f32_bits(np.where(gt(b, a), b, a))


def red_max_idx(bits) -> tuple[np.ndarray, np.ndarray]:
    """V_RED_MAX(_IDX) over the last axis of BF16 bits: (FP32 bits of the maximum, index).
    The maximum is the chosen element's DAZ-read value widened to FP32 (NaN canonical)."""
    v = bf16_value(bits)
    idx = argmax(v, axis=-1)
    m = np.take_along_axis(v, idx[..., None], axis=-1)[..., 0]
    return f32_bits(m), idx


def topk_mask(values, k: int) -> np.ndarray:
    """V_TOPK_MASK on FP32 values (float64, DAZ read): int32 0/1 marking the k largest
    (NaN ranks above every number; ties -> lowest index; -inf is never chosen)."""
    v = np.asarray(values, np.float64)
    n = v.shape[0]
    out = np.zeros(n, np.int32)
    if n == 0 or k <= 0:
        return out
    isn = np.isnan(v)
    order = np.lexsort((np.arange(n), -np.where(isn, 0.0, v), ~isn))
    out[order[: min(k, n)]] = 1
    out[v == -np.inf] = 0
    return out


def thresh_mask(values, t: float) -> np.ndarray:
    """V_THRESH_MASK's condition: values >= t with the NaN rule (bool)."""
    return ge(values, t)


# ---------------------------------------------------------------------------------------------
# sums

def tree_sum(v) -> np.ndarray:
    """Pairwise FP32 sum over the last axis (a power of two): lanes (0,1), (2,3), ... then
    pairs of pairs; every add by the rule.  Values in, FP32 values out."""
    v = np.asarray(v, np.float64)
    w = v.shape[-1]
    if w & (w - 1):
        raise ValueError(f"tree_sum needs a power-of-two width, got {w}")
    while v.shape[-1] > 1:
        v = add(v[..., 0::2], v[..., 1::2])
    return v[..., 0]


def seq_sum(v) -> float:
    """FP32 acc = +0; acc = fp32(acc + v[k]) for k in order (v: FP32 values, 1-D).  Returns
    the value.  Fast path: NumPy float32 accumulate is IEEE RNE, which equals the rule for
    sums of two FP32 numbers except that an exact subnormal result is kept instead of
    flushed; if one occurs the scalar loop is used."""
    v = np.asarray(v, np.float64).reshape(-1)
    if v.size == 0:
        return 0.0
    with np.errstate(all="ignore"):
        acc = np.add.accumulate(np.concatenate(([np.float32(0.0)], v.astype(np.float32))),
                                dtype=np.float32)
        a = np.abs(acc)
        if not np.any((a < np.float32(MIN_NORMAL)) & (a != 0)):
            r = float(acc[-1])
            return math.nan if r != r else r
    acc_s = 0.0
    for x in v.tolist():
        acc_s = _add32s(acc_s, x)
    return acc_s


def red_sum(bits) -> int:
    """V_RED_SUM over BF16 bits shaped (rows, VLEN): FP32 bits of
    acc = +0; acc = fp32(acc + tree_sum(row)) for the rows in order."""
    rows = bf16_value(bits)
    if rows.ndim != 2:
        raise ValueError("red_sum takes (rows, VLEN)")
    return int(f32_bits(seq_sum(tree_sum(rows))))


# ---------------------------------------------------------------------------------------------
# the fused sampling path (H_SAMPLE_FUSED) and the two confidence flows

def fused_sample(bits, vlen: int) -> tuple[int, int]:
    """H_SAMPLE_FUSED on BF16 logits bits (1-D, a multiple of vlen): (idx, FP32 bits of s).

    Chunks of vlen: (c, ci) = max/argmax of the chunk; m' = c if c > m else m (m starts at
    -inf), idx = base + ci when c > m; e_j = EXP(fp32(l_j - m')); chunk_sum = tree_sum(e);
    s = fp32(fp32(s * EXP(fp32(m - m'))) + chunk_sum) with s starting at +0; m = m'.
    """
    v = bf16_value(bits).reshape(-1, vlen)
    R = v.shape[0]
    if R == 0:
        return 0, 0
    idx = int(argmax(v.reshape(-1)))        # = the first occurrence the online rule keeps
    ci = argmax(v, axis=1)
    c = v[np.arange(R), ci]
    with np.errstate(invalid="ignore"):
        mnew = np.maximum.accumulate(c)     # running max (NaN propagates, as NaN > all)
    e = exp_values(sub(v, mnew[:, None]))
    csum = tree_sum(e).tolist()
    mold = np.concatenate(([-np.inf], mnew[:-1]))
    resc = exp_values(sub(mold, mnew)).tolist()
    s = 0.0
    for k in range(R):
        r = resc[k]
        if r != 1.0:                        # r == 1 exactly when m' = m: s * 1 = s
            s = _r32s(s * r)                # exact float64 product, one rounding
        s = _add32s(s, csum[k])
    return idx, int(f32_bits(s))


def _confidence_rows(bits, row_fn) -> tuple[np.ndarray, np.ndarray]:
    """row_fn(row) -> (idx, FP32 sum) on every row of (..., V); then S_RECI_FP of the sum."""
    b = np.asarray(bits, np.uint16)
    lead = b.shape[:-1]
    b = b.reshape(-1, b.shape[-1])
    idxs = np.zeros(b.shape[0], np.int64)
    ps = np.zeros(b.shape[0], np.uint32)
    for r in range(b.shape[0]):
        idx, s = row_fn(b[r])
        idxs[r], ps[r] = idx, reci_f32(s)
    return idxs.reshape(lead), ps.reshape(lead)


def phased_confidence(bits, vlen: int) -> tuple[np.ndarray, np.ndarray]:
    """The phased flow on BF16 logits rows (..., V), V a multiple of vlen: V_RED_MAX_IDX,
    V_SUB_VF (BF16 result), V_EXP_V (BF16), V_RED_SUM (FP32), S_RECI_FP.
    Returns (idx int64, FP32 bits of p)."""
    def row(r):
        mbits, idx = red_max_idx(r)
        d = round_bf16(*two_sum(bf16_value(r), -f32_value(mbits)))
        return idx, red_sum(exp_bf16(d).reshape(-1, vlen))

    return _confidence_rows(bits, row)


def fused_confidence(bits, vlen: int) -> tuple[np.ndarray, np.ndarray]:
    """The fused flow: H_SAMPLE_FUSED then S_RECI_FP.  Returns (idx int64, FP32 bits of p)."""
    return _confidence_rows(bits, lambda r: fused_sample(r, vlen))


# ---------------------------------------------------------------------------------------------
# error bounds (derivations in docs/NUMERICS.md)

_LOG2E_ERR = abs(_LOG2E - 1.0 / math.log(2.0))          # |LOG2E - log2 e| (float64 is enough)
_EXP_H = 2.0 ** -EXP_INDEX_BITS
# relative error of EXP's mantissa part p against 2**f, f = t - n:
#   linear interpolation (chord above a convex curve): (h ln2)^2 / 8 * 2^h,
#   T rounding 2^-24, D rounding and q rounding 2^-30 each, p rounding 2^-24 (p >= 1).
_EXP_CORE = (_EXP_H * math.log(2.0)) ** 2 / 8 * 2.0 ** _EXP_H + 2.0 ** -23 + 2.0 ** -29
EXP_MAX_ARG = 128.0 / _LOG2E                             # beyond: t >= 128, +Inf


def exp_rel_error_bound(xmax: float = EXP_MAX_ARG) -> float:
    """Bound on |EXP(x) / exp(x) - 1| for |x| <= xmax where EXP does not saturate
    (-126 <= t < 128): (1 + core) * 2**(xmax |LOG2E - log2 e| + halfulp(t)) - 1."""
    tmax = min(abs(xmax) * _LOG2E, 127.99)
    half_ulp_t = 2.0 ** (math.floor(math.log2(tmax)) - 24) if tmax >= MIN_NORMAL else 0.0
    dt = abs(xmax) * _LOG2E_ERR + half_ulp_t
    return (1.0 + _EXP_CORE) * 2.0 ** dt - 1.0


EXP_REL_ERR_BOUND = exp_rel_error_bound()
# Measured maxima (docs/NUMERICS.md; tests/test_numerics.py re-measures what is cheap):
EXP_MEASURED_REL_ERR = 1.8522e-5       # FP32 EXP, exhaustive over every FP32 input (exp_error_sweep)
EXP_BF16_IN_MEASURED_REL_ERR = 1.7773e-5   # FP32 EXP over every BF16 input
EXP_BF16_MEASURED_REL_ERR = 3.8988e-3  # V_EXP_V (BF16 result) over every BF16 input


def exp_rel_errors(bits) -> tuple[float, float]:
    """(max |EXP(x)/exp(x) - 1|, the x where it occurs) over FP32 bit patterns, counting the
    inputs where EXP does not saturate (-126 <= t < 128; float64 exp as the reference)."""
    x = f32_value(bits)
    with np.errstate(invalid="ignore", over="ignore"):
        t = _round(x * _LOG2E, None, "f32")
        ok = (t >= -126.0) & (t < 128.0)
        rel = np.abs(exp_values(x[ok]) / np.exp(x[ok]) - 1.0)
    if rel.size == 0:
        return 0.0, math.nan
    k = int(np.argmax(rel))
    return float(rel[k]), float(x[ok][k])


def exp_error_sweep(stride: int = 1, chunk: int = 1 << 22) -> tuple[float, float]:
    """exp_rel_errors over every stride-th FP32 pattern with |x| < 88.75 (both signs); with
    stride 1 this is the exhaustive figure EXP_MEASURED_REL_ERR (about 10 CPU-minutes)."""
    hi = 0x42B18000                      # 88.75: beyond it t >= 128 (+Inf)
    best = (0.0, math.nan)
    for sign in (0, 0x80000000):
        for lo in range(0, hi, chunk):
            b = np.arange(lo, min(lo + chunk, hi), stride, dtype=np.uint32) | np.uint32(sign)
            best = max(best, exp_rel_errors(b))
    return best

# EXP arguments in the sampling flows are <= 0; a term counts only while EXP does not
# flush it (t >= -126, x >= -87.34); allowing for the rounding of the argument:
_DMAX = 87.7
_SLACK_ABS = 2.0 ** -100               # covers flushed terms (each < 2^-125.9, S >= 1)


def softmax_spread(values) -> float:
    """Lambda = sum_j w_j (m - l_j), w = softmax(l), in float64 over a 1-D row of values
    (finite).  Lambda <= ln V always (it equals entropy - ln S)."""
    v = np.asarray(values, np.float64)
    d = v - v.max()
    w = np.exp(d)
    return float(np.sum(w * -d) / np.sum(w))


def p_rel_error_bound(V: int, vlen: int, flow: str, spread: float | None = None,
                      rescales: int | None = None) -> float:
    """Bound on |p_npu / p_ref - 1| for p = 1 / sum_j exp(l_j - max l) over V finite BF16
    logits, against float64 on the same values (docs/NUMERICS.md, "Confidence error").

    phased: spread = Lambda (default its worst case ln V);
    fused:  rescales = how often the running max strictly increases after the first chunk
            (default the worst case, rows - 1).
    """
    u, ub, eE = U_F32, U_BF16, EXP_REL_ERR_BOUND
    rows = -(-V // vlen)
    lg = int(round(math.log2(vlen)))
    slack = V * _SLACK_ABS
    if flow == "phased":
        lam = math.log(V) if spread is None else spread
        k = lg + rows - 1
        gk = k * u / (1 - k * u)
        y = _DMAX * ub
        c = math.expm1(y) / y
        hi = (1 + eE) * (1 + ub) * (1 + gk) * (1 + c * ub * lam) + slack
        lo = (1 - eE) * (1 - ub) * (1 - gk) * (1 - ub * lam) - slack
    elif flow == "fused":
        kr = rows - 1 if rescales is None else rescales
        ud = math.expm1(_DMAX * u)
        hi = (1 + ud) * (1 + eE) * (1 + u) ** (lg + rows) * ((1 + ud) * (1 + eE) * (1 + u)) ** kr + slack
        lo = (1 - ud) * (1 - eE) * (1 - u) ** (lg + rows) * ((1 - ud) * (1 - eE) * (1 - u)) ** kr - slack
    else:
        raise ValueError(f"flow must be 'phased' or 'fused', got {flow!r}")
    return max((1 + u) / lo - 1, 1 - (1 - u) / hi)
