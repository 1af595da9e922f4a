"""The matrix unit's arithmetic (docs/NUMERICS.md, section 11) against an independent
scalar reference: Python floats for the exact BF16 products, NumPy float32 for each FP32
add, Fractions for the one BF16 rounding of acc + residual."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from dnpu.spec import matmul
from dnpu.spec import mx
from dnpu.spec import numerics as N

TINY = 2.0 ** -126


# ---- the scalar reference ------------------------------------------------------------------------

def ref_bf16_read(b: int) -> float:
    """BF16 bits -> float with DAZ."""
    if (b & 0x7F80) == 0:
        return -0.0 if b & 0x8000 else 0.0
    return float(np.uint32(b << 16).view(np.float32))


def ref_ftz(v: np.float32) -> np.float32:
    """IEEE float32 result -> the rule's: a subnormal becomes a zero of its sign."""
    if v != 0 and abs(v) < TINY:
        return np.float32(math.copysign(0.0, float(v)))
    return v


def ref_prod(a: float, b: float) -> np.float32:
    p = a * b                                   # exact: 8 x 8 significant bits in float64
    if p != p:
        return np.float32(np.nan)
    if p != 0 and abs(p) < TINY:
        return np.float32(math.copysign(0.0, p))
    with np.errstate(over="ignore"):
        return np.float32(p)                    # exact, or +-inf when >= 2^128


def ref_add(a: np.float32, b: np.float32) -> np.float32:
    with np.errstate(all="ignore"):
        return ref_ftz(np.float32(a) + np.float32(b))   # IEEE RNE, float32


def ref_round_bf16(x: Fraction | float) -> int:
    """One RNE rounding of an exact value to BF16 bits (FTZ, overflow -> Inf, NaN -> 0x7FC0)."""
    if isinstance(x, float):
        if x != x:
            return 0x7FC0
        if math.isinf(x):
            return 0x7F80 if x > 0 else 0xFF80
        neg0 = math.copysign(1.0, x) < 0
        x = Fraction(x)
    else:
        neg0 = False
    if x == 0:
        return 0x8000 if neg0 else 0
    neg, a = x < 0, abs(x)
    e = math.floor(math.log2(a))
    while Fraction(2) ** e > a:
        e -= 1
    while Fraction(2) ** (e + 1) <= a:
        e += 1
    scale = Fraction(2) ** (e - 7)
    q = a / scale
    n = q.numerator // q.denominator
    rem = q - n
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and n & 1):
        n += 1
    v = n * scale
    s = 0x8000 if neg else 0
    if v >= Fraction(2) ** 128:
        return s | 0x7F80
    if v < Fraction(2) ** -126:
        return s
    return s | (int(np.float32(float(v)).view(np.uint32)) >> 16)


def ref_matmul(x, w, residual=None, acc_in=None, out="bf16"):
    M, K = x.shape
    Nn = w.shape[0]
    res = np.zeros((M, Nn), np.uint16 if out == "bf16" else np.uint32)
    for m in range(M):
        for n in range(Nn):
            acc = np.float32(0.0)
            if acc_in is not None:
                acc = ref_ftz(np.uint32(acc_in[m, n]).view(np.float32))
            for k in range(K):
                acc = ref_add(acc, ref_prod(ref_bf16_read(int(x[m, k])), ref_bf16_read(int(w[n, k]))))
            if residual is not None:
                r = ref_bf16_read(int(residual[m, n]))
                if out == "f32":
                    acc = ref_add(acc, np.float32(r))
                elif np.isfinite(acc) and math.isfinite(r):
                    ex = Fraction(float(acc)) + Fraction(r)
                    if ex == 0:    # IEEE zero sign: -0 only for (-0) + (-0)
                        neg = math.copysign(1, float(acc)) < 0 and math.copysign(1, r) < 0
                        res[m, n] = 0x8000 if neg else 0
                        continue
                    res[m, n] = ref_round_bf16(ex)
                    continue
                else:
                    acc = np.float32(float(acc) + r)
            if out == "f32":
                res[m, n] = 0x7FC00000 if acc != acc else int(np.float32(acc).view(np.uint32))
            else:
                res[m, n] = ref_round_bf16(float(acc))
    return res


# ---- data ----------------------------------------------------------------------------------------

def rand_bf16(rng, shape, lo=-20, hi=20):
    """Random normal BF16 bits with exponents in [lo, hi)."""
    sign = rng.integers(0, 2, shape).astype(np.uint32) << 15
    exp = (rng.integers(lo, hi, shape) + 127).astype(np.uint32) << 7
    frac = rng.integers(0, 128, shape).astype(np.uint32)
    return (sign | exp | frac).astype(np.uint16)


SPECIALS = np.array([0x7FC0, 0xFFC1, 0x7F80, 0xFF80, 0x0000, 0x8000, 0x0001, 0x807F,
                     0x0080, 0x8080, 0x7F7F, 0xFF7F, 0x3F80, 0xBF80, 0x1F80, 0x2000], np.uint16)


def sprinkle(rng, bits, frac=0.15):
    b = bits.copy()
    mask = rng.random(b.shape) < frac
    b[mask] = rng.choice(SPECIALS, int(mask.sum()))
    return b


SHAPES = [(1, 1, 1), (1, 7, 1), (3, 5, 2), (4, 13, 3), (2, 37, 5), (5, 64, 4), (1, 129, 2)]


# ---- (a) bit exactness ---------------------------------------------------------------------------

@pytest.mark.parametrize("M,K,Nn", SHAPES)
def test_bit_exact_random(M, K, Nn):
    rng = np.random.default_rng(M * 1000 + K * 10 + Nn)
    x = rand_bf16(rng, (M, K))
    w = rand_bf16(rng, (Nn, K))
    for out in ("bf16", "f32"):
        np.testing.assert_array_equal(matmul.matmul_bf16(x, w, out=out), ref_matmul(x, w, out=out))


@pytest.mark.parametrize("M,K,Nn", SHAPES[2:])
def test_bit_exact_wide_exponents(M, K, Nn):
    """Exponents that make adds round, flush (near 2^-126) and overflow."""
    rng = np.random.default_rng(7 + M * K * Nn)
    for lo, hi in ((-70, -50), (55, 70), (-127, 128)):
        x = rand_bf16(rng, (M, K), max(lo, -126), hi)
        w = rand_bf16(rng, (Nn, K), max(lo, -126), hi)
        for out in ("bf16", "f32"):
            np.testing.assert_array_equal(matmul.matmul_bf16(x, w, out=out), ref_matmul(x, w, out=out))


# ---- (b) special values --------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(4))
def test_special_values_random(seed):
    rng = np.random.default_rng(100 + seed)
    x = sprinkle(rng, rand_bf16(rng, (4, 9)))
    w = sprinkle(rng, rand_bf16(rng, (3, 9)))
    r = sprinkle(rng, rand_bf16(rng, (4, 3)))
    for out in ("bf16", "f32"):
        np.testing.assert_array_equal(matmul.matmul_bf16(x, w, out=out), ref_matmul(x, w, out=out))
        np.testing.assert_array_equal(matmul.matmul_bf16(x, w, residual_bits=r, out=out),
                                      ref_matmul(x, w, residual=r, out=out))


def one(xs, ws, **kw):
    return int(matmul.matmul_bf16(np.array([xs], np.uint16), np.array([ws], np.uint16), **kw)[0, 0])


def test_special_values_exact():
    ONE, MONE, INF, NINF, PZ, NZ = 0x3F80, 0xBF80, 0x7F80, 0xFF80, 0x0000, 0x8000
    assert one([INF], [PZ]) == 0x7FC0                               # Inf * 0
    assert one([INF, NINF], [ONE, ONE]) == 0x7FC0                   # +Inf + -Inf
    assert one([INF, ONE], [ONE, ONE]) == INF
    assert one([0xFFC1], [ONE], out="f32") == N.F32_NAN             # canonical NaN
    assert one([NZ], [ONE]) == PZ                                   # acc starts at +0
    assert one([NZ, NZ], [ONE, MONE]) == PZ
    assert one([0x0001], [0x7F00]) == PZ                            # subnormal input reads as 0
    assert one([0x8001], [0x7F7F]) == PZ                            # -0 product, +0 + -0 = +0
    assert one([0x1F80], [0x1F80]) == PZ                            # 2^-64 * 2^-64 flushes
    assert one([0x5F80], [0x6000]) == INF                           # 2^64 * 2^65 overflows
    assert one([0x5F80, 0xDF80], [0x6000, 0x6000]) == 0x7FC0        # ... Inf - Inf later
    # an FTZ'd negative partial sum is -0, and stays -0 under -0 products
    a = one([0x80C0, 0x0080, 0x8000], [ONE, ONE, ONE], out="f32")
    assert a == 0x80000000
    # a product rounding: none (8 x 8 bits): (1 + 2^-7)^2 exactly in FP32
    assert one([0x3F81], [0x3F81], out="f32") == int(np.float32((1 + 2 ** -7) ** 2).view(np.uint32))


def test_residual_one_rounding():
    """bf16(acc + r) is one rounding of the exact sum, as V_ADD_VF."""
    # acc = 1 + 2^-8 + 2^-23 (FP32 exact): above the BF16 tie -> 1 + 2^-7
    x = np.array([[0x3F80, 0x3B80, 0x3400]], np.uint16)      # 1, 2^-8, 2^-23
    w = np.array([[0x3F80, 0x3F80, 0x3F80]], np.uint16)
    assert int(matmul.matmul_bf16(x, w)[0, 0]) == 0x3F81
    # acc = 2^-8 + 2^-30 (FP32 exact), r = 1: 1 + 2^-8 + 2^-30 rounds once to 1 + 2^-7 ...
    x = np.array([[0x3B80, 0x3080]], np.uint16)              # 2^-8, 2^-30
    w = np.array([[0x3F80, 0x3F80]], np.uint16)
    r = np.array([[0x3F80]], np.uint16)                      # 1.0
    assert int(matmul.matmul_bf16(x, w, out="f32")[0, 0]) == 0x3B800002
    assert int(matmul.matmul_bf16(x, w, residual_bits=r)[0, 0]) == 0x3F81
    # ... while rounding to FP32 first gives the tie 1 + 2^-8, which would round to 1.0
    assert int(matmul.matmul_bf16(x, w, residual_bits=r, out="f32")[0, 0]) == 0x3F808000
    assert int(N.narrow_f32(0x3F808000)) == 0x3F80


def test_mx_nan_block_gives_nan():
    rng = np.random.default_rng(5)
    wf = rng.standard_normal((3, 64)).astype(np.float32)
    wf[1, 40] = np.nan                                       # second block of row 1
    q = mx.quantize(wf, "e4m3", 32)
    wb = mx.dequantize_bf16(q)
    assert (wb[1, 32:] == 0x7FC0).all()
    x = rand_bf16(rng, (2, 64), -3, 3)
    y = matmul.matmul_bf16(x, wb)
    assert (y[:, 1] == 0x7FC0).all() and (y[:, [0, 2]] != 0x7FC0).all()
    np.testing.assert_array_equal(y, ref_matmul(x, wb))


# ---- (c) tiling ----------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(3))
def test_k_tiling_invariance(seed):
    rng = np.random.default_rng(200 + seed)
    x = sprinkle(rng, rand_bf16(rng, (3, 41)), 0.03)
    w = sprinkle(rng, rand_bf16(rng, (4, 41)), 0.03)
    r = rand_bf16(rng, (3, 4))
    full = matmul.matmul_bf16(x, w, out="f32")
    for cuts in ([0, 41], [0, 17, 41], [0, 1, 8, 32, 40, 41], [0, 0, 41, 41]):
        acc = None
        for a, b in zip(cuts[:-1], cuts[1:]):
            acc = matmul.matmul_bf16(x[:, a:b], w[:, a:b], acc_bits=acc, out="f32")
        np.testing.assert_array_equal(acc, full)
    a = matmul.matmul_bf16(x[:, :20], w[:, :20], out="f32")
    for out in ("bf16", "f32"):
        np.testing.assert_array_equal(
            matmul.matmul_bf16(x[:, 20:], w[:, 20:], acc_bits=a, residual_bits=r, out=out),
            matmul.matmul_bf16(x, w, residual_bits=r, out=out))
    np.testing.assert_array_equal(
        matmul.matmul_bf16(x[:, 20:], w[:, 20:], acc_bits=a, residual_bits=r),
        ref_matmul(x[:, 20:], w[:, 20:], residual=r, acc_in=a))


# ---- (d) error bound, and the order matters ------------------------------------------------------

@pytest.mark.parametrize("M,K,Nn", [(4, 16, 5), (3, 200, 4), (2, 1000, 3)])
def test_error_bound(M, K, Nn):
    rng = np.random.default_rng(K)
    x = rand_bf16(rng, (M, K), -6, 6)
    w = rand_bf16(rng, (Nn, K), -6, 6)
    r = rand_bf16(rng, (M, Nn), -2, 4)
    xv, wv, rv = N.bf16_value(x), N.bf16_value(w), N.bf16_value(r)
    for res in (None, r):
        for out in ("bf16", "f32"):
            y = matmul.matmul_bf16(x, w, residual_bits=res, out=out)
            yv = N.bf16_value(y) if out == "bf16" else N.f32_value(y)
            bound = matmul.matmul_error_bound(x, w, residual_bits=res, out=out)
            for m in range(M):
                for n in range(Nn):
                    terms = [Fraction(float(a * b)) for a, b in zip(xv[m], wv[n])]
                    exact = sum(terms, Fraction(0)) + (Fraction(float(rv[m, n])) if res is not None else 0)
                    err = abs(Fraction(float(yv[m, n])) - exact)
                    assert err <= Fraction(float(bound[m, n])), (m, n, out, res is None)
    # the bound is not vacuous: an FP32 result's bound is far below the BF16 ulp scale
    S = np.abs(xv[:, None, :] * wv[None, :, :]).sum(-1)
    assert (matmul.matmul_error_bound(x, w, out="f32") <= 2 * K * N.U_F32 * S + 1e-30).all()


def pairwise_f32(x, w):
    """A different order (pairwise tree over k, FP32 adds): what the bit-exact tests reject."""
    p = N.mul(N.bf16_value(x)[:, None, :], N.bf16_value(w)[None, :, :])
    while p.shape[-1] > 1:
        if p.shape[-1] % 2:
            p = np.concatenate([p, np.zeros(p.shape[:-1] + (1,))], axis=-1)
        p = N.add(p[..., 0::2], p[..., 1::2])
    return N.f32_bits(p[..., 0])


def test_order_matters():
    rng = np.random.default_rng(9)
    differ = 0
    for K in (13, 37, 64):
        x = rand_bf16(rng, (6, K))
        w = rand_bf16(rng, (6, K))
        differ += int((matmul.matmul_bf16(x, w, out="f32") != pairwise_f32(x, w)).sum())
    assert differ > 0
    # and in the BF16 result: 1, 2^-8, 2^-24, 2^-24 sequentially is the FP32 tie 1 + 2^-8 (BF16
    # 1.0); pairwise it is 1 + 2^-8 + 2^-23 (BF16 1 + 2^-7)
    x = np.array([[0x3F80, 0x3B80, 0x3380, 0x3380]], np.uint16)
    w = np.full((1, 4), 0x3F80, np.uint16)
    assert int(matmul.matmul_bf16(x, w)[0, 0]) == 0x3F80
    assert int(N.narrow_f32(pairwise_f32(x, w))[0, 0]) == 0x3F81
    # the classic: 2^24 + 1 + 1 sequentially is 2^24; pairwise (1 + 1 first) it is 2^24 + 2
    x = np.array([[0x4B80, 0x3F80, 0x3F80, 0x0000]], np.uint16)
    w = np.array([[0x3F80, 0x3F80, 0x3F80, 0x3F80]], np.uint16)
    assert int(matmul.matmul_bf16(x, w, out="f32")[0, 0]) == 0x4B800000
    assert int(pairwise_f32(x[:, [1, 2, 0, 3]], w)[0, 0]) == 0x4B800001


def test_bad_arguments():
    with pytest.raises(ValueError):
        matmul.matmul_bf16(np.zeros((2, 3), np.uint16), np.zeros((2, 4), np.uint16))
    with pytest.raises(ValueError):
        matmul.matmul_bf16(np.zeros((2, 3), np.uint16), np.zeros((2, 3), np.uint16), out="fp8")


# ---- (e) the fast path against the step-by-step reference -----------------------------------------

F32_SPECIALS = np.array([0x7FC00000, 0xFFC00001, 0x7F800000, 0xFF800000, 0x00000000, 0x80000000,
                         0x00000001, 0x807FFFFF, 0x00800000, 0x80800000, 0x7F7FFFFF, 0xFF7FFFFF,
                         0x3F800000, 0xBF800000, 0x0C000001, 0x33800000], np.uint32)


def operands(rng, M, K, Nn, mode):
    """x, w BF16 bits built to reach the rule's corners: mode "plain" (moderate exponents),
    "wide" (the whole range: rounding adds, flushed products, overflow), "tiny" (products near
    2^-126), "huge" (overflow), "cancel" (pairs of products that nearly cancel, near 2^-126:
    subnormal partial sums that FTZ flushes, signed zeros)."""
    lo, hi = {"plain": (-8, 8), "wide": (-126, 128), "tiny": (-70, -55), "huge": (55, 70),
              "cancel": (-66, -58)}[mode]
    x = rand_bf16(rng, (M, K), lo, hi)
    w = rand_bf16(rng, (Nn, K), lo, hi)
    if mode == "cancel":
        x[:, 1::2] = x[:, 0:K - 1:2] ^ np.uint16(0x8000)
        w[:, 1::2] = w[:, 0:K - 1:2] + rng.integers(0, 2, (Nn, K // 2)).astype(np.uint16)
    return x, w


def acc_operand(rng, M, Nn):
    """FP32 accumulators: random, small exponents (multiples of less than 2^-126), specials."""
    a = ((rng.integers(0, 2, (M, Nn)).astype(np.uint32) << 31)
         | ((rng.integers(1, 255, (M, Nn)).astype(np.uint32)) << 23)
         | rng.integers(0, 1 << 23, (M, Nn)).astype(np.uint32))
    small = rng.random((M, Nn)) < 0.3
    e = rng.integers(1, 104, int(small.sum())).astype(np.uint32)
    a[small] = (a[small] & np.uint32(0x807FFFFF)) | (e << 23)
    sp = rng.random((M, Nn)) < 0.15
    a[sp] = rng.choice(F32_SPECIALS, int(sp.sum()))
    return a


def assert_fast_is_reference(x, w, r, a):
    for out in ("bf16", "f32"):
        for res in (None, r):
            for acc in (None, a):
                kw = dict(residual_bits=res, acc_bits=acc, out=out)
                np.testing.assert_array_equal(
                    matmul.matmul_bf16(x, w, **kw), matmul._matmul_bf16_reference(x, w, **kw),
                    err_msg=f"{x.shape} {w.shape} out={out} res={res is not None} acc={acc is not None}")


FAST_SHAPES = [(1, 1, 1), (1, 5, 3), (2, 33, 7), (4, 64, 16), (3, 128, 40), (16, 24, 9), (1, 200, 64)]


@pytest.mark.parametrize("mode", ["plain", "wide", "tiny", "huge", "cancel"])
@pytest.mark.parametrize("M,K,Nn", FAST_SHAPES)
def test_fast_matches_reference(M, K, Nn, mode):
    rng = np.random.default_rng([M, K, Nn, len(mode)])
    for specials in (0.0, 0.05):
        x, w = operands(rng, M, K, Nn, mode)
        if specials:
            x, w = sprinkle(rng, x, specials), sprinkle(rng, w, specials)
        r = sprinkle(rng, rand_bf16(rng, (M, Nn), -10, 10), 0.2)
        a = acc_operand(rng, M, Nn)
        assert_fast_is_reference(x, w, r, a)
        # an accumulator the unit wrote, continued
        a2 = matmul.matmul_bf16(x, w, out="f32")
        np.testing.assert_array_equal(matmul.matmul_bf16(x, w, acc_bits=a2, out="f32"),
                                      matmul._matmul_bf16_reference(x, w, acc_bits=a2, out="f32"))


@pytest.mark.parametrize("chunk", [1, 5, 64])
def test_fast_matches_reference_across_chunks(monkeypatch, chunk):
    """Partial sums that go subnormal in a later chunk of k, or in several."""
    monkeypatch.setattr(matmul, "_MM_CHUNK", chunk)
    rng = np.random.default_rng(chunk)
    for mode in ("cancel", "tiny", "wide"):
        for M, K, Nn in ((2, 40, 3), (3, 17, 5), (1, 64, 2)):
            x, w = operands(rng, M, K, Nn, mode)
            x = sprinkle(rng, x, 0.02)
            assert_fast_is_reference(x, w, rand_bf16(rng, (M, Nn)), acc_operand(rng, M, Nn))


def test_fast_corner_cases():
    ONE, MONE, NZ = 0x3F80, 0xBF80, 0x8000
    # 2^-124 - 2^-124 (1 + 2^-7) = -2^-131 is flushed to -0, which -0 products keep ...
    w = np.full((1, 3), ONE, np.uint16)
    x = np.array([[0x0180, 0x8181, NZ]], np.uint16)
    assert int(matmul.matmul_bf16(x, w, out="f32")[0, 0]) == 0x80000000
    # ... and a later 2^-125 gives 2^-125 exactly (unflushed it would be 2^-125 - 2^-131)
    x = np.array([[0x0180, 0x8181, 0x0100]], np.uint16)
    assert int(matmul.matmul_bf16(x, w, out="f32")[0, 0]) == 0x01000000
    # products on a 2^-126 grid, but an accumulator off it: (2^-112 + 2^-135) - 2^-112 is
    # flushed, so + 2^-112 gives 2^-112 (unflushed: 2^-112 + 2^-135)
    x = np.array([[0x2380, 0x2380]], np.uint16)                    # 2^-56
    w = np.array([[0xA380, 0x2380]], np.uint16)
    acc = np.array([[0x07800001]], np.uint32)
    assert int(matmul.matmul_bf16(x, w, acc_bits=acc, out="f32")[0, 0]) == 0x07800000
    # K = 0: the accumulator (DAZ read) or +0
    e = np.zeros((2, 0), np.uint16)
    a = np.array([[0x00000001], [0x80000000]], np.uint32)
    w = np.zeros((1, 0), np.uint16)
    np.testing.assert_array_equal(matmul.matmul_bf16(e, w, acc_bits=a, out="f32"), [[0], [0x80000000]])
    np.testing.assert_array_equal(matmul.matmul_bf16(e, w), [[0], [0]])
    # every operand zero, Inf or NaN (no exponent to bound the products with)
    x = np.array([[0x7F80, 0x0000, 0xFFC1]], np.uint16)
    w = np.array([[ONE, MONE, ONE], [0x0000, 0x8000, 0x0000]], np.uint16)
    for out in ("bf16", "f32"):
        np.testing.assert_array_equal(matmul.matmul_bf16(x[:, :2], w[:, :2], out=out),
                                      matmul._matmul_bf16_reference(x[:, :2], w[:, :2], out=out))
        np.testing.assert_array_equal(matmul.matmul_bf16(x, w, out=out),
                                      matmul._matmul_bf16_reference(x, w, out=out))
