"""dnpu.spec.numerics against exact rational references and the documented figures (docs/NUMERICS.md)."""

from __future__ import annotations

import decimal
import math
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from dnpu.compiler import FLOWS
from dnpu.spec import mx
from dnpu.spec import numerics as N

DOC = Path(__file__).resolve().parents[1] / "docs" / "NUMERICS.md"
ALL_BF16 = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)


# ---- an independent exact reference: rationals ---------------------------------------------------

def ref_round(x: Fraction, p: int, neg_zero: bool = False) -> float:
    """The rule on an exact rational: RNE to p significant bits with an unbounded exponent,
    >= 2^128 -> inf, below 2^-126 -> signed zero.  Returns a float (inf allowed)."""
    if x == 0:
        return -0.0 if neg_zero else 0.0
    neg = x < 0
    a = -x if neg else x
    e = a.numerator.bit_length() - a.denominator.bit_length()      # 2^e <= a < 2^(e+2)
    if a >= Fraction(2) ** (e + 1):
        e += 1
    if a < Fraction(2) ** e:
        e -= 1
    scale = Fraction(2) ** (e - p + 1)
    q = a / scale                                                   # in [2^(p-1), 2^p)
    n = q.numerator // q.denominator
    rem = q - n
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and n & 1):
        n += 1
    v = n * scale
    if v >= Fraction(2) ** 128:
        r = math.inf
    elif v < Fraction(2) ** -126:
        r = 0.0
    else:
        r = float(v)                                                # exact: <= 24 bits
    return -r if neg else r


def bits32(x: float) -> int:
    return int(np.float32(x).view(np.uint32)) if x == x else N.F32_NAN


def fr32(bits: int) -> Fraction | float:
    """Exact value of FP32 bits with DAZ; inf/nan as float."""
    v = float(N.f32_value(np.uint32(bits)))
    return v if not math.isfinite(v) else Fraction(v)


def f32(x: float) -> int:
    """Bits of a float that is an FP32 number."""
    b = np.float32(x)
    assert float(b) == x or x != x
    return int(b.view(np.uint32))


def rand_f32(rng, n: int, lo_exp: int = -130, hi_exp: int = 130) -> np.ndarray:
    """Random FP32 bit patterns with exponents spread over [lo_exp, hi_exp], both signs."""
    m = rng.integers(0, 1 << 23, n)
    e = rng.integers(lo_exp, hi_exp + 1, n) + 127
    e = np.clip(e, 0, 255)
    s = rng.integers(0, 2, n)
    return ((s << 31) | (e << 23) | m).astype(np.uint32)


# ---- reading, rounding ---------------------------------------------------------------------------

def test_daz_reads_subnormals_as_signed_zero():
    v = N.f32_value(np.array([0x00000001, 0x807FFFFF, 0x00800000, 0x7FC00001], np.uint32))
    assert v[0] == 0 and not np.signbit(v[0])
    assert v[1] == 0 and np.signbit(v[1])
    assert v[2] == 2.0 ** -126 and np.isnan(v[3])
    b = N.bf16_value(np.array([0x0001, 0x807F, 0x0080], np.uint16))
    assert b[0] == 0 and np.signbit(b[1]) and b[1] == 0 and b[2] == 2.0 ** -126


def test_round_f32_cases():
    one_ulp = 2.0 ** -23
    cases = [
        (1 + 2.0 ** -24, 0x3F800000),                    # tie -> even (down)
        (1 + 3 * 2.0 ** -24, 0x3F800002),                # tie -> even (up)
        (1 + 2.0 ** -24 + 2.0 ** -50, 0x3F800001),       # above the tie
        (2.0 ** -126, 0x00800000),                       # min normal kept
        (2.0 ** -126 * (1 - 2.0 ** -24), 0x00000000),    # 24-bit value below 2^-126: flushed
        (2.0 ** -126 * (1 - 2.0 ** -26), 0x00800000),    # rounds up to min normal: kept
        (-2.0 ** -127, 0x80000000),                      # flush keeps the sign
        (2.0 ** 128 * (1 - 2.0 ** -25), 0x7F800000),     # rounds to 2^128: Inf
        (2.0 ** 128 * (1 - 2.0 ** -24), 0x7F7FFFFF),     # max finite exactly
        (2.0 ** 128 * (1 - 2.0 ** -24 - 2.0 ** -30), 0x7F7FFFFF),
        (-math.inf, 0xFF800000), (math.nan, 0x7FC00000), (-0.0, 0x80000000),
    ]
    got = N.round_f32(np.array([c[0] for c in cases]))
    for (x, want), g in zip(cases, got):
        assert int(g) == want, (x, hex(int(g)), hex(want))
    assert one_ulp


def test_round_with_residual_breaks_ties():
    x = np.array([1 + 2.0 ** -24] * 3 + [-(1 + 2.0 ** -24)] * 2)
    r = np.array([2.0 ** -80, -(2.0 ** -80), 0.0, -(2.0 ** -80), 2.0 ** -80])
    got = N.round_f32(x, r)
    assert [hex(int(g)) for g in got] == ["0x3f800001", "0x3f800000", "0x3f800000", "0xbf800001",
                                          "0xbf800000"]
    xb = np.array([1 + 2.0 ** -8, 1 + 2.0 ** -8])
    assert list(N.round_bf16(xb, np.array([2.0 ** -60, 0.0]))) == [0x3F81, 0x3F80]


def test_bf16_narrowing_exhaustive_over_bf16_sums():
    """round_bf16 against the rational reference on every BF16 value + a random FP32 offset."""
    rng = np.random.default_rng(1)
    base = N.bf16_value(ALL_BF16)
    off = N.f32_value(rand_f32(rng, base.size, -140, 130))
    ok = np.isfinite(base) & np.isfinite(off)
    got = N.bf16_value(N.round_bf16(*N.two_sum(base, off)))
    idx = np.flatnonzero(ok)[:: 7]
    for k in idx:
        exact = Fraction(float(base[k])) + Fraction(float(off[k]))
        want = ref_round(exact, 8)
        assert got[k] == want and (want != 0 or np.signbit(got[k]) == (exact < 0)), \
            (float(base[k]), float(off[k]), got[k], want)


def test_fp32_to_bf16_narrowing_exhaustive_high_halves():
    """FP32 -> BF16 for every BF16 pattern with each of a few low halves (ties, +-1 around it),
    against ml_dtypes' IEEE RNE cast (an independent oracle: a normal FP32 input never rounds
    below 2^-126, and subnormal inputs are zeros by DAZ)."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    for low in (0x0000, 0x7FFF, 0x8000, 0x8001, 0xFFFF):
        b32 = (ALL_BF16.astype(np.uint32) << 16) | np.uint32(low)
        got = N.narrow_f32(b32)
        v = N.f32_value(b32)
        fin = np.isfinite(v)
        with np.errstate(over="ignore"):
            ref = v[fin].astype(np.float32).astype(ml_dtypes.bfloat16).astype(np.float64)
        gv = N.bf16_value(got[fin])
        assert np.array_equal(gv, ref), low
        assert np.array_equal(np.signbit(gv), np.signbit(v[fin]))
        assert (got[np.isnan(v)] == N.BF16_NAN).all()
        infs = np.isinf(v)
        assert np.array_equal(N.bf16_value(got[infs]), v[infs])
    # the edges: FP32 max rounds to BF16 +Inf; BF16 max finite stays
    assert int(N.narrow_f32(np.uint32(0x7F7FFFFF))) == 0x7F80
    assert int(N.narrow_f32(np.uint32(0x7F7F7FFF))) == 0x7F7F
    assert int(N.narrow_f32(np.uint32(0x7F7F8000))) == 0x7F80      # tie, odd -> up -> Inf
    assert int(N.narrow_f32(np.uint32(0x00000001))) == 0x0000      # DAZ
    assert int(N.narrow_f32(np.uint32(0x807FFFFF))) == 0x8000


def test_widen_is_exact():
    w = N.widen_bf16(ALL_BF16)
    assert (w >> 16 == ALL_BF16).all() and (w & 0xFFFF == 0).all()


# ---- add / sub / mul ---------------------------------------------------------------------------

def check_binop(op, a_bits: np.ndarray, b_bits: np.ndarray) -> None:
    fn = {"add": N.f32_add, "sub": N.f32_sub, "mul": N.f32_mul}[op]
    got = fn(a_bits, b_bits)
    for a, b, g in zip(a_bits.tolist(), b_bits.tolist(), got.tolist()):
        x, y = fr32(a), fr32(b)
        if isinstance(x, float) or isinstance(y, float):
            xf, yf = float(x), float(y)
            with np.errstate(invalid="ignore"):
                want = {"add": xf + yf, "sub": xf - yf, "mul": xf * yf}[op]
            assert g == bits32(want), (op, hex(a), hex(b), hex(g))
            continue
        exact = {"add": x + y, "sub": x - y, "mul": x * y}[op]
        if exact == 0:     # IEEE zero signs
            xs, ys = math.copysign(1, float(N.f32_value(np.uint32(a)))), \
                math.copysign(1, float(N.f32_value(np.uint32(b))))
            if op == "mul":
                neg = xs * ys < 0
            elif op == "add":
                neg = xs < 0 and ys < 0 and x == 0 and y == 0
            else:
                neg = xs < 0 and ys > 0 and x == 0 and y == 0
            want = -0.0 if neg else 0.0
        else:
            want = ref_round(exact, 24, neg_zero=exact < 0)
        assert g == bits32(want), (op, hex(a), hex(b), hex(g), hex(bits32(want)))


@pytest.mark.parametrize("op", ["add", "sub", "mul"])
def test_f32_random_against_rationals(op):
    rng = np.random.default_rng({"add": 2, "sub": 3, "mul": 4}[op])
    n = 3000
    a = rand_f32(rng, n, -70 if op == "mul" else -130, 70 if op == "mul" else 128)
    b = rand_f32(rng, n, -70 if op == "mul" else -130, 70 if op == "mul" else 128)
    if op != "mul":   # close exponents too: cancellation and ties
        b[: n // 2] = (a[: n // 2] & 0xFF800000) | rng.integers(0, 1 << 23, n // 2).astype(np.uint32)
        b[: n // 4] ^= 0x80000000
    check_binop(op, a, b)


def test_f32_hand_cases():
    F = f32
    # ties
    assert int(N.f32_add(F(1.0), F(2.0 ** -24))) == F(1.0)
    assert int(N.f32_add(F(1 + 2.0 ** -23), F(2.0 ** -24))) == F(1 + 2.0 ** -22)
    # huge exponent gap: float64 sum inexact, FP32 result exact-rounded
    assert int(N.f32_add(F(1.0), F(2.0 ** -60))) == F(1.0)
    assert int(N.f32_add(F(1.0), F(-(2.0 ** -60)))) == F(1.0)
    assert int(N.f32_add(F(1.0), F(-(2.0 ** -25 + 2.0 ** -48)))) == F(1 - 2.0 ** -24)
    # FTZ on a sum: min normal minus min normal * (1 + 2^-23) is -2^-149: flushed to -0
    assert int(N.f32_sub(F(2.0 ** -126), F(2.0 ** -126 * (1 + 2.0 ** -23)))) == 0x80000000
    # DAZ: a subnormal operand is zero
    assert int(N.f32_add(0x00000001, F(1.0))) == F(1.0)
    assert int(N.f32_mul(0x00400000, F(2.0 ** 100))) == 0
    assert int(N.f32_mul(0x80400000, F(2.0 ** 100))) == 0x80000000
    # mul at the FTZ boundary: exact 2^-126 (1 - 2^-24) is a 24-bit value below 2^-126:
    # flushed (IEEE gradual underflow would round it up to 2^-126)
    assert int(N.f32_mul(F(2.0 ** -63 * (1 - 2.0 ** -24)), F(2.0 ** -63))) == 0
    # ... while 2^-126 (1 - 2^-46) rounds (unbounded exponent) to 2^-126 and is kept
    assert int(N.f32_mul(F(2.0 ** -63 * (1 - 2.0 ** -23)), F(2.0 ** -63 * (1 + 2.0 ** -23)))) == 0x00800000
    # overflow
    assert int(N.f32_mul(F(2.0 ** 127), F(2.0))) == 0x7F800000
    assert int(N.f32_add(0x7F7FFFFF, F(2.0 ** 103))) == 0x7F800000      # tie at 2^128 -> Inf
    assert int(N.f32_add(0x7F7FFFFF, F(2.0 ** 102))) == 0x7F7FFFFF
    # NaN / Inf
    assert int(N.f32_add(0x7F800000, 0xFF800000)) == N.F32_NAN
    assert int(N.f32_mul(0x7F800000, 0)) == N.F32_NAN
    assert int(N.f32_add(0x7FA00000, F(1.0))) == N.F32_NAN            # payloads are not kept
    assert int(N.f32_mul(0xFF800000, F(-2.0))) == 0x7F800000
    # zero signs
    assert int(N.f32_add(F(-0.0), F(-0.0))) == 0x80000000
    assert int(N.f32_add(F(-0.0), F(0.0))) == 0
    assert int(N.f32_sub(F(1.5), F(1.5))) == 0
    assert int(N.f32_mul(F(-0.0), F(3.0))) == 0x80000000


def test_mixed_bf16_fp32_ops_round_once():
    """V_*_VF: BF16 element with an FP32 scalar, one rounding to BF16 from the exact result."""
    a = N.bf16_value(np.array([0x3F80], np.uint16))                 # 1.0
    s = np.float64(np.float32(2.0 ** -8 + 2.0 ** -30))             # FP32, just above a BF16 tie
    assert int(N.bf16_bits(N.add(a, s, "bf16"))[0]) == 0x3F81      # one rounding: up
    # two roundings (FP32 first) would tie to even: 1 + 2^-8 -> 1.0
    two = N.round_bf16(N.f32_value(N.f32_add(0x3F800000, np.float32(s).view(np.uint32))))
    assert int(two) == 0x3F80


# ---- EXP -----------------------------------------------------------------------------------------

def test_exp_tables_against_decimal():
    decimal.getcontext().prec = 60
    for i in range(65):
        exact = Fraction(decimal.Decimal(2) ** (decimal.Decimal(i) / 64))
        assert fr32(N.EXP_T_BITS[i]) == Fraction(ref_round(exact, 24)), i
    for i in range(64):
        d = fr32(N.EXP_T_BITS[i + 1]) - fr32(N.EXP_T_BITS[i])
        assert fr32(N.EXP_D_BITS[i]) == Fraction(ref_round(d, 24)), i
    assert N.EXP_T_BITS[0] == 0x3F800000 and N.EXP_T_BITS[64] == 0x40000000
    assert N.LOG2E_BITS == 0x3FB8AA3B


def exp_reference(bits: int) -> float:
    """The documented EXP algorithm in exact rationals (independent of numerics.py's tricks)."""
    x = fr32(bits)
    if isinstance(x, float):
        if math.isnan(x):
            return math.nan
        return math.inf if x > 0 else 0.0
    t = ref_round(x * fr32(N.LOG2E_BITS), 24, neg_zero=x < 0)
    if t >= 128:
        return math.inf
    if t < -126:
        return 0.0
    t = Fraction(t)
    n = math.floor(t)
    f = t - n
    i = math.floor(f * 64)
    r = f * 64 - i
    q = ref_round(fr32(N.EXP_D_BITS[i]) * r, 24)
    p = ref_round(fr32(N.EXP_T_BITS[i]) + Fraction(q), 24)
    v = Fraction(p) * Fraction(2) ** n
    return math.inf if v >= Fraction(2) ** 128 else float(v)


def test_exp_bit_exact_against_rational_algorithm():
    """Every BF16 input (those with |x| >= 96 saturate: +Inf or +0) and random FP32 inputs,
    including tiny negative ones whose fraction f = 1 - |t| has many bits."""
    rng = np.random.default_rng(5)
    b = ALL_BF16.astype(np.uint32) << 16
    v = N.f32_value(b)
    sat = np.abs(v) >= 96
    got_sat = N.exp_f32(b[sat])
    assert (got_sat == np.where(v[sat] > 0, 0x7F800000, 0)).all()
    sel = b[~sat]                                          # NaN included
    extra = np.concatenate([rand_f32(rng, 1500, -40, 6), rand_f32(rng, 300, -130, -20),
                            np.array([0x3F800000, 0x80000001, 0xFF800000, 0x7F800000, 0x42B17218,
                                      0x42B17217, 0xC2AEAC50, 0xC2AEAC4F, 0xC2AEAC51, 0xB3000001],
                                     np.uint32)])
    allb = np.concatenate([sel, extra])
    got = N.exp_f32(allb)
    for x, g in zip(allb.tolist(), got.tolist()):
        assert g == bits32(exp_reference(x)), (hex(x), hex(g))


def test_exp_special_values():
    F = f32
    e = lambda b: int(N.exp_f32(np.uint32(b)))        # noqa: E731
    assert e(F(0.0)) == 0x3F800000 and e(F(-0.0)) == 0x3F800000      # EXP(0) = 1 exactly
    assert e(0x00000001) == 0x3F800000                                 # DAZ
    assert e(0x7F800000) == 0x7F800000 and e(0xFF800000) == 0
    assert e(0x7FC00000) == N.F32_NAN and e(0xFFC12345) == N.F32_NAN
    # t >= 128: +Inf; t = fp32(x * LOG2E) decides, not x
    for b in range(0x42B17200, 0x42B17240):
        t = float(N.f32_value(N.round_f32(float(N.f32_value(np.uint32(b))) * float(
            N.f32_value(np.uint32(N.LOG2E_BITS))))))
        assert (e(b) == 0x7F800000) == (t >= 128)
    # t = -126 exactly gives 2^-126; just below gives +0
    x = -126 / float(N.f32_value(np.uint32(N.LOG2E_BITS)))
    lo = f32(float(np.float32(x)))
    for b in range(lo - 40, lo + 40):
        r = e(b)
        t = float(N.f32_value(N.round_f32(float(N.f32_value(np.uint32(b))) * float(
            N.f32_value(np.uint32(N.LOG2E_BITS))))))
        assert (r == 0) == (t < -126)
        if t >= -126:
            assert float(N.f32_value(np.uint32(r))) >= 2.0 ** -126
    # result >= 1 for x >= 0, <= 1 for x <= 0 (monotone near 0)
    xs = N.f32_value(rand_f32(np.random.default_rng(6), 2000, -30, 6))
    ys = N.f32_value(N.exp_f32(N.f32_bits(xs)))
    assert (ys[xs >= 0] >= 1).all() and (ys[xs <= 0] <= 1).all()


def test_exp_monotone_over_bf16():
    v = N.bf16_value(ALL_BF16)
    order = np.argsort(v, kind="stable")
    order = order[np.isfinite(v[order])]
    y = N.f32_value(N.exp_f32(ALL_BF16.astype(np.uint32) << 16))[order]
    assert (y[1:] >= y[:-1]).all()


def test_exp_error_measured_and_documented():
    """The measured maxima: every BF16 input exactly, a dense FP32 sample, and the
    neighbourhood of the exhaustive sweep's maximiser reproduce the documented figures."""
    rel_bf, x_bf = N.exp_rel_errors(ALL_BF16.astype(np.uint32) << 16)
    assert rel_bf == pytest.approx(N.EXP_BF16_IN_MEASURED_REL_ERR, rel=1e-4)
    assert x_bf == -64.5
    rel_s, _ = N.exp_error_sweep(stride=1021, chunk=1 << 26)
    assert rel_s <= N.EXP_MEASURED_REL_ERR
    near = f32(-87.01713562011719)
    rel_n, x_n = N.exp_rel_errors(np.arange(near - 4096, near + 4096, dtype=np.uint32))
    assert rel_n == pytest.approx(N.EXP_MEASURED_REL_ERR, rel=1e-4) and x_n == -87.01713562011719
    assert N.EXP_MEASURED_REL_ERR <= N.EXP_REL_ERR_BOUND
    # V_EXP_V: BF16 out
    x = N.bf16_value(ALL_BF16)
    y = N.bf16_value(N.exp_bf16(ALL_BF16))
    t = N.f32_value(N.round_f32(x * float(N.f32_value(np.uint32(N.LOG2E_BITS)))))
    ok = (t >= -126) & (t < 128)
    with np.errstate(over="ignore"):
        relb = np.max(np.abs(y[ok] / np.exp(x[ok]) - 1))
    assert relb == pytest.approx(N.EXP_BF16_MEASURED_REL_ERR, rel=1e-4)
    assert relb <= (1 + N.EXP_REL_ERR_BOUND) * (1 + N.U_BF16) - 1
    # the documented numbers are the ones in the module
    doc = DOC.read_text()
    for name in ("EXP_MEASURED_REL_ERR", "EXP_BF16_IN_MEASURED_REL_ERR", "EXP_BF16_MEASURED_REL_ERR"):
        assert f"{getattr(N, name):.4e}" in doc, name
    assert f"{N.EXP_REL_ERR_BOUND:.4e}" in doc


# ---- RECI ----------------------------------------------------------------------------------------

def test_reci_against_rationals():
    rng = np.random.default_rng(7)
    b = np.concatenate([rand_f32(rng, 6000, -130, 130),
                        np.array([0x00800000, 0x80800000, 0x7F7FFFFF, 0x7E800000, 0x7E800001,
                                  0x3F800000, 0x3FFFFFFF, 0x00000001], np.uint32)])
    got = N.reci_f32(b)
    for x, g in zip(b.tolist(), got.tolist()):
        v = fr32(x)
        if isinstance(v, float):
            continue
        if v == 0:
            want = math.copysign(math.inf, float(N.f32_value(np.uint32(x))))
        else:
            want = ref_round(1 / v, 24, neg_zero=v < 0)
        assert g == bits32(want), (hex(x), hex(g))


def test_reci_special_values():
    r = lambda b: int(N.reci_f32(np.uint32(b)))      # noqa: E731
    assert r(0) == 0x7F800000 and r(0x80000000) == 0xFF800000
    assert r(0x00000005) == 0x7F800000 and r(0x80000005) == 0xFF800000   # DAZ: 1/0
    assert r(0x7F800000) == 0 and r(0xFF800000) == 0x80000000
    assert r(0x7FC00000) == N.F32_NAN
    assert r(0x7E800000) == 0x00800000            # 1/2^126 = 2^-126 kept
    assert r(0x7E800001) == 0x00000000            # just below 2^-126: flushed
    assert r(0xFE800001) == 0x80000000
    assert r(0x7F7FFFFF) == 0                     # 1/max -> below min normal
    assert r(0x40400000) == f32(float(np.float32(1 / 3)))


def test_reci_bf16_is_reci_then_narrow():
    """V_RECI_V's arithmetic on every BF16 pattern: the exact reciprocal rounded to FP32 by the
    rule, then that FP32 number rounded to BF16 (NUMERICS 4.2), from rationals."""
    bits = np.arange(0, 65536, 7, dtype=np.uint16)
    got = N.reci_bf16(bits)
    for b, g in zip(bits.tolist(), got.tolist()):
        v = fr32(b << 16)
        if isinstance(v, float):                                  # Inf, NaN
            want32 = 0.0 if math.isinf(v) else math.nan
            want32 = math.copysign(want32, v) if want32 == want32 else want32
        elif v == 0:
            want32 = math.copysign(math.inf, float(N.f32_value(np.uint32(b << 16))))
        else:
            want32 = ref_round(1 / v, 24, neg_zero=v < 0)
        if want32 != want32:
            assert g == 0x7FC0, hex(b)
            continue
        w = Fraction(want32) if math.isfinite(want32) else want32
        want16 = ref_round(w, 8, neg_zero=math.copysign(1, want32) < 0) if isinstance(w, Fraction) else w
        assert g == bits32(want16) >> 16, (hex(b), hex(g))


# ---- RSQRT ---------------------------------------------------------------------------------------

def test_rsqrt_is_correctly_rounded():
    """Against the exact value, independently of rsqrt_f32's integer algorithm: y = RNE(1/sqrt(x))
    iff the midpoints between y and its FP32 neighbours bracket 1/sqrt(x), i.e.
    lo_mid^2 * x <= 1 <= hi_mid^2 * x (1/sqrt(x) is never a midpoint itself)."""
    rng = np.random.default_rng(8)
    b = np.concatenate([rand_f32(rng, 4000, -126, 127) & np.uint32(0x7FFFFFFF),
                        np.array([0x00800000, 0x00800001, 0x7F7FFFFF, 0x3F800000, 0x40800000, 0x407FFFFF,
                                  0x40000000, 0x3FFFFFFF, 0x3E800000, 0x7E800000, 0x7F000000], np.uint32)])
    b = b[(b >> 23 != 0) & (b >> 23 != 0xFF)]                     # normal positives
    got = N.rsqrt_f32(b)
    for x, y in zip(b.tolist(), got.tolist()):
        X = fr32(x)
        Y, lo, hi = fr32(y), fr32(y - 1), fr32(y + 1)
        assert 2 ** -65 < Y < 2 ** 64, (hex(x), hex(y))            # always normal
        assert ((lo + Y) / 2) ** 2 * X <= 1 <= ((Y + hi) / 2) ** 2 * X, (hex(x), hex(y))


def test_rsqrt_special_values():
    r = lambda b: int(N.rsqrt_f32(np.uint32(b)))     # noqa: E731
    assert r(0) == 0x7F800000 and r(0x80000000) == 0xFF800000
    assert r(0x00000005) == 0x7F800000 and r(0x807FFFFF) == 0xFF800000      # DAZ: 1/sqrt(+-0)
    assert r(0x7F800000) == 0                                             # 1/sqrt(+Inf) = +0
    assert r(0xFF800000) == N.F32_NAN and r(0xBF800000) == N.F32_NAN       # negative
    assert r(0x7FC00001) == N.F32_NAN and r(0xFFC00000) == N.F32_NAN
    assert r(f32(4.0)) == f32(0.5) and r(f32(2.0 ** -126)) == f32(2.0 ** 63)  # powers of 4: exact
    assert r(f32(2.0)) == f32(float(np.float32(2 ** -0.5)))
    assert r(0x7F7FFFFF) == 0x1F800000                                    # 1/sqrt(max) rounds to 2^-64


# ---- comparisons, max, argmax -------------------------------------------------------------------

def test_order_rules():
    nan, inf = math.nan, math.inf
    a = np.array([nan, nan, 1.0, -0.0, 0.0, -inf, 1.0])
    b = np.array([nan, 5.0, nan, 0.0, -0.0, -inf, 2.0])
    assert list(N.gt(a, b)) == [False, True, False, False, False, False, False]
    assert list(N.ge(a, b)) == [True, True, False, True, True, True, False]
    assert list(N.lt(a, b)) == [False, False, True, False, False, False, True]


def test_argmax_rules():
    nan = math.nan
    assert N.argmax(np.array([1.0, 3.0, 3.0, 2.0])) == 1
    assert N.argmax(np.array([1.0, nan, 3.0, nan])) == 1
    assert N.argmax(np.array([-0.0, 0.0])) == 0 and N.argmax(np.array([0.0, -0.0])) == 0
    assert N.argmax(np.array([-np.inf, -np.inf])) == 0
    rows = np.array([[1.0, 2.0], [nan, 9.0], [5.0, 5.0]])
    assert list(N.argmax(rows, axis=1)) == [1, 0, 0]


def test_red_max_idx_bits_rules():
    # -0 first: the result is that element's -0; subnormal reads as zero; NaN canonical
    m, i = N.red_max_idx(np.array([0x8000, 0x0000, 0xBF80], np.uint16))
    assert (int(m), int(i)) == (0x80000000, 0)
    m, i = N.red_max_idx(np.array([0x0001, 0x0000], np.uint16))    # subnormal == +0, first wins
    assert (int(m), int(i)) == (0x00000000, 0)
    m, i = N.red_max_idx(np.array([0x3F80, 0x7FA1, 0x7F80, 0xFFC0], np.uint16))
    assert (int(m), int(i)) == (N.F32_NAN, 1)
    m, i = N.red_max_idx(np.array([0xFF80, 0xC000, 0xC000], np.uint16))
    assert (int(m), int(i)) == (0xC0000000, 1)
    assert int(N.max_f32(0x80000000, 0x00000000)) == 0x80000000       # a wins ties
    assert int(N.max_f32(0x00000000, 0x80000000)) == 0x00000000
    assert int(N.max_f32(0x3F800000, 0x7FC00001)) == N.F32_NAN
    assert int(N.max_f32(0x00000003, 0x80000000)) == 0x00000000       # DAZ: +0, a wins


def test_topk_and_thresh_rules():
    v = np.array([0.5, np.nan, 0.5, -np.inf, 0.9, -0.0, 0.0])
    assert list(N.topk_mask(v, 3)) == [1, 1, 0, 0, 1, 0, 0]
    assert list(N.topk_mask(v, 5)) == [1, 1, 1, 0, 1, 1, 0]           # -0 == +0: lower index
    assert list(N.topk_mask(v, 100)) == [1, 1, 1, 0, 1, 1, 1]         # -inf never chosen
    assert list(N.topk_mask(v, 0)) == [0] * 7
    assert list(N.thresh_mask(v, 0.5)) == [True, True, True, False, True, False, False]
    assert list(N.thresh_mask(v, np.nan)) == [False, True, False, False, False, False, False]


# ---- sums ----------------------------------------------------------------------------------------

def test_pairwise_tree_order_matters():
    """A row where the documented pairwise tree and a left-to-right FP32 sum differ."""
    lanes = np.zeros(16)
    lanes[:4] = [2.0 ** 24, 0.0, 1.0, 1.0]
    tree = float(N.tree_sum(lanes))
    seq = 0.0
    for x in lanes:
        seq = float(np.float32(seq) + np.float32(x))
    assert tree == 2.0 ** 24 + 2 and seq == 2.0 ** 24
    # V_RED_SUM over rows: tree inside each row, then rows in order
    rows = N.bf16_bits(np.stack([lanes, np.roll(lanes, 8)]))
    assert int(N.red_sum(rows)) == f32(2.0 ** 25 + 4)
    rows2 = N.bf16_bits(np.array([[2.0 ** 24] + [0.0] * 15, [1.0] * 2 + [0.0] * 14]))
    assert int(N.red_sum(rows2)) == f32(2.0 ** 24 + 2)
    rows3 = N.bf16_bits(np.array([[2.0 ** 24] + [0.0] * 15, [1.0] + [0.0] * 15, [1.0] + [0.0] * 15]))
    assert int(N.red_sum(rows3)) == f32(2.0 ** 24)                    # (2^24 + 1) + 1, ties even


def test_seq_sum_fast_path_equals_scalar_rule():
    rng = np.random.default_rng(8)
    for trial in range(30):
        v = N.f32_value(rand_f32(rng, 200, -128 if trial % 2 else -10, 10))
        if trial % 3 == 0:
            v[5] = np.inf if trial % 2 else -np.inf
        fast = N.seq_sum(v)
        slow = 0.0
        for x in v.tolist():
            slow = N._add32s(slow, x)
        assert (fast == slow or (fast != fast and slow != slow)) and \
            math.copysign(1, fast) == math.copysign(1, slow)
    # an exact subnormal partial sum is flushed (the fast path must notice)
    v = np.array([1.5 * 2.0 ** -126, -(2.0 ** -126), 2.0 ** -126])
    assert N.seq_sum(v) == 2.0 ** -126


def test_acc_starts_at_plus_zero():
    assert int(N.red_sum(np.array([[0x8000, 0x8000]], np.uint16))) == 0   # +0 + (-0) = +0
    assert int(N.f32_bits(N.tree_sum(np.array([-0.0, -0.0])))) == 0x80000000


# ---- fused path details -----------------------------------------------------------------------

def test_fused_rescale_by_one_is_exact_and_nan_propagates():
    assert int(N.exp_f32(np.uint32(0))) == N.F32_ONE
    vlen = 16
    logits = N.bf16_bits(np.array([3.0] * 16 + [1.0] * 16 + [3.0] * 16))
    idx, s = N.fused_sample(logits, vlen)
    e1 = float(N.f32_value(N.exp_f32(N.f32_bits(np.float64(-2.0)))))
    want = 16.0
    want = float(N.f32_value(N.f32_bits(N.add(want, float(N.tree_sum(np.full(16, e1)))))))
    want = float(N.f32_value(N.f32_bits(N.add(want, 16.0))))
    assert idx == 0 and float(N.f32_value(np.uint32(s))) == want
    nanrow = np.concatenate([logits, np.array([0x3F80] * 3 + [0x7FC0] + [0x4000] * 12, np.uint16),
                             np.full(16, 0x7FC0, np.uint16)])
    idx, s = N.fused_sample(nanrow, vlen)
    assert idx == 48 + 3 and s == N.F32_NAN
    idx, p = N.phased_confidence(nanrow, vlen)
    assert idx == 51 and p == N.F32_NAN


# ---- confidence error bounds --------------------------------------------------------------------

def _cases():
    """(name, BF16 logits rows) for the bound tests: several scales and LLaDA-like shapes."""
    rng = np.random.default_rng(9)
    out = []
    for V in (512, 4096, 8192):
        for scale in (0.5, 3.0, 20.0):
            out.append((f"normal V={V} s={scale}", rng.normal(0, scale, (3, V))))
        near = 5.0 + rng.normal(0, 0.03, (2, V))                        # many near-equal
        out.append((f"near-equal V={V}", near))
        dom = rng.normal(0, 1.0, (2, V))
        dom[:, rng.integers(0, V)] += 25.0                              # one dominant logit
        out.append((f"dominant V={V}", dom))
        neg = rng.uniform(-3000, -100, (2, V))                          # very negative logits,
        neg[:, :: V // 8] = rng.normal(-50, 2, (2, 8))                  # a few near the top
        out.append((f"very negative V={V}", neg))
        out.append((f"ascending V={V}", np.sort(rng.normal(0, 3.0, (1, V)))))  # max grows
        flat = np.full((1, V), -9.0)
        flat[0, 7] = 0.0                                                # exp(-9)*V ~ 1: p ~ 0.5
        out.append((f"one-vs-flat V={V}", flat))
        adv = np.full((1, V), -9.0)                                    # l - m = -9.03125 is a
        adv[0, 1] = 2.0 ** -5                                           # BF16 tie: every term
        out.append((f"one-sided rounding V={V}", adv))                  # rounds the same way
    # through MX, as the NPU sees them
    for fmt in ("e4m3", "e2m1", "int8"):
        x = rng.normal(0, 4, (2, 4096)).astype(np.float32)
        out.append((f"mx {fmt}", N.bf16_value(mx.dequantize_bf16(mx.quantize(x, fmt)))))
    return [(name, N.round_bf16(np.asarray(v, np.float64))) for name, v in out]


CASES = _cases()


@pytest.mark.parametrize("flow", FLOWS)
def test_confidence_within_documented_bound(flow):
    vlen = 16
    worst = 0.0
    for name, rows in CASES:
        fn = {"phased": N.phased_confidence, "fused": N.fused_confidence}[flow]
        idx, pbits = fn(rows, vlen)
        vals = N.bf16_value(rows)
        for r in range(rows.shape[0]):
            v = vals[r]
            assert idx[r] == int(np.argmax(v)), name          # x0 exact (lowest index on ties)
            p_ref = 1.0 / np.sum(np.exp(v - v.max()))
            p = float(N.f32_value(pbits[r]))
            V = v.size
            bound = N.p_rel_error_bound(V, vlen, flow)
            err = abs(p - p_ref)
            assert err <= bound * p_ref, (name, err / p_ref, bound)
            assert err <= bound                               # the absolute form (p <= 1)
            # the data-dependent forms of the same formula
            if flow == "phased":
                tight = N.p_rel_error_bound(V, vlen, flow, spread=N.softmax_spread(v))
            else:
                c = v.reshape(-1, vlen).max(axis=1)
                k = int(np.sum(c[1:] > np.maximum.accumulate(c)[:-1]))
                tight = N.p_rel_error_bound(V, vlen, flow, rescales=k)
            assert err <= tight * p_ref, (name, err / p_ref, tight)
            worst = max(worst, err / p_ref)
    # the documented measured maxima over these cases
    doc = DOC.read_text()
    m = re.search(rf"measured {flow} maximum: ([0-9.]+e-[0-9]+)", doc)
    assert m, f"docs/NUMERICS.md lacks 'measured {flow} maximum: ...'"
    assert worst <= float(m.group(1)), worst


def test_bound_table_in_doc_matches_formula():
    doc = DOC.read_text()
    for V in (4096, 8192, 126464):
        for flow in FLOWS:
            assert f"{N.p_rel_error_bound(V, 16, flow):.3e}" in doc, (V, flow)
    assert f"{N.p_rel_error_bound(126464, 16, 'fused', rescales=16):.3e}" in doc


def test_bound_is_not_vacuous():
    """The one-sided case comes within a factor of a few of the phased bound."""
    name, rows = next(c for c in CASES if c[0] == "one-sided rounding V=8192")
    _, p = N.phased_confidence(rows, 16)
    v = N.bf16_value(rows[0])
    p_ref = 1.0 / np.sum(np.exp(v - v.max()))
    rel = abs(float(N.f32_value(p[0])) - p_ref) / p_ref
    assert rel > N.p_rel_error_bound(8192, 16, "phased") / 10
