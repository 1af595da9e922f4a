"""hw/rtl/fp: the FP32 units against dnpu.spec.numerics (docs/NUMERICS.md), bit for bit.

One wrapper, dnpu_fp_tb_top (hw/rtl/fp/dnpu_fp_tb_top.v), puts LANES copies of every
unit side by side on wide buses, so one write per input bus and one read per output bus
apply LANES vectors. The combinational units run without a clock: drive, wait 1 ns,
read. The goldens (numerics.f32_add, f32_mul, exp_f32, narrow_f32, reci_f32, rsqrt_f32, gt) are
computed vectorised over a whole vector set; RTL results are compared at the end and a
mismatch fails with the inputs, the RTL bits and the golden bits of the first ones.

Vector sets are deterministic (fixed seeds). DNPU_FP_TEST_SCALE scales their random
parts (1.0 on Verilator, smaller on Icarus); the hand-picked edges and the exhaustive
BF16 sweep of EXP are always applied in full.

EXP's T/D tables reach the RTL through hw/rtl/common/dnpu_exp_table.vh, which dnpu.codegen
writes from dnpu.spec.numerics (`make generate`; `make check-generated` finds it stale).
"""

from __future__ import annotations

import math
import os
import time
from fractions import Fraction

import numpy as np
import pytest

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, Timer

from dnpu.spec import numerics as nm

try:  # collected by pytest as a member of the tests/rtl package
    from .cocotb_run import REPO, lint, rtl_sources, run_block
except ImportError:  # imported by cocotb inside the simulator, tests/rtl on PYTHONPATH
    from cocotb_run import REPO, lint, rtl_sources, run_block

FP_DIR = REPO / "hw" / "rtl" / "fp"
FP_FILES = ["dnpu_fp32_add.v", "dnpu_fp32_mul.v", "dnpu_f32_to_bf16.v", "dnpu_fp_cmp.v",
            "dnpu_fp_exp.v", "dnpu_fp32_reci.v", "dnpu_fp32_rsqrt.v", "dnpu_fp_tb_top.v", "dnpu_fp_pipe_tb.v"]
TOP = "dnpu_fp_tb_top"
LANES = 32
ENV_SCALE = "DNPU_FP_TEST_SCALE"
ENV_LANES = "DNPU_FP_TEST_LANES"
RECI_LATENCY = 25          # rising edges from the one that takes start to done
RSQRT_LATENCY = 25
CLK_NS = 10

U32 = np.uint32


# ---------------------------------------------------------------------------
# vector sets (deterministic)
# ---------------------------------------------------------------------------

EDGES32 = [
    0x00000000, 0x80000000,                          # +-0
    0x00000001, 0x80000001, 0x00400000, 0x007FFFFF, 0x807FFFFF,   # subnormals (read as 0)
    0x00800000, 0x80800000, 0x00800001, 0x00FFFFFF, 0x01000000, 0x01000001,  # min normals
    0x3F800000, 0xBF800000, 0x3F800001, 0xBF800001, 0x3F7FFFFF, 0x3FFFFFFF,
    0x40000000, 0xC0000000, 0x3F000000, 0x40400000, 0x3FC00000, 0xBFC00000,
    0x33800000, 0xB3800000, 0x33000000, 0x34000000, 0x33800001, 0x337FFFFF,   # 2^-24 etc.
    0x4B800000, 0x4B000000, 0x4B7FFFFF, 0xCB800001,  # 2^24, 2^23
    0x1F800000, 0x20000000, 0x1F7FFFFF, 0x20000001, 0x1FFFFFFF, 0x9F800000,  # ~2^-63, 2^-64
    0x5F800000, 0x5F7FFFFF, 0x5F000000, 0xDF800001,  # ~2^64
    0x7F000000, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F7FFFFE, 0x7EFFFFFF,   # max finite region
    0x7E800000, 0x7E800001, 0x7E7FFFFF, 0xFE800000, 0x7E000000,
    0x7F800000, 0xFF800000,                          # +-Inf
    0x7FC00000, 0xFFC00000, 0x7F800001, 0xFFFFFFFF, 0x7FBFFFFF, 0x7FC00001,  # NaNs
    0x3FB8AA3B, 0x3F317218, 0x42B17218, 0x42B17217, 0xC2AEAC50, 0xC2AEAC4F,  # exp-related
    0x3C000000, 0xBC000000, 0x3BB8AA3B, 0xBBB8AA3B,  # |t| ~ 2^-6 (EXP split)
    0x00000100, 0x3E800000, 0x41200000, 0xC1200000, 0x3DCCCCCD, 0xBDCCCCCD,
]

EDGES_NARROW = [
    0x7F7F7FFF, 0x7F7F8000, 0x7F7F8001, 0x7F7FFFFF, 0xFF7F8000, 0xFF7F7FFF,   # overflow edge
    0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF, 0xBF808000, 0xBF818000,   # ties
    0x00800000, 0x00808000, 0x00818000, 0x0080FFFF, 0x807FFFFF, 0x807F8000,   # DAZ/min normal
    0x7F800000, 0x7F800001, 0x7F810000, 0xFF800000, 0x7FFF0000, 0x7FC00000, 0xFFFFFFFF,
    0x3FFF8000, 0x3FFFFFFF, 0x3F7F8000, 0x3F7FFFFF,
]


# M' (NUMERICS 4.1) whose 2^25 / sqrt(M' / 2^23) lies within 2^-20 of a 25-bit unit
# from an odd integer (an FP32 midpoint), above or below: the 14 closest of all 2^24 M'
# (an exhaustive search), where rounding hangs on the remainder's last bits.
RSQRT_HARD_MP = [0x17431C6, 0x113E070, 0x1FFFFFC, 0x0D2208F, 0x0BA2A39, 0x0ED3230, 0x08A5C86,
                 0x0DAE942, 0x1FBC3C2, 0x1FB7758, 0x13BA2D4, 0x185DA2C, 0x0D19305, 0x16AA932]


def _scale() -> float:
    return float(os.environ.get(ENV_SCALE, "1.0"))


def _n(k: int) -> int:
    return max(64, int(k * _scale()))


def _bits(rng, n):
    return rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(U32)


def _compose(s, e, f):
    return ((np.asarray(s, np.uint64) << 31) | (np.asarray(e, np.uint64) << 23)
            | np.asarray(f, np.uint64)).astype(U32)


def _short_frac(rng, n, keep):
    """23-bit fractions with only their top `keep` bits random (the rest 0): exact
    products and sums land on rounding ties often."""
    f = rng.integers(0, 1 << 23, n, dtype=np.int64)
    keep = np.asarray(keep)
    return (f >> (23 - keep)) << (23 - keep)


def _f32(v):
    """FP32 bits of float64 values (nearest; for building inputs only)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(v, np.float64).astype(np.float32).view(U32)


def _realistic(rng, n):
    v = rng.standard_normal(n) * 10.0 ** rng.uniform(-6, 6, n)
    return _f32(v)


def binary_vectors() -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """(a, b, op_sub, counts by class) for add, sub, mul and cmp."""
    rng = np.random.default_rng(20240611)
    parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    e = np.array(EDGES32, U32)
    parts["edges x edges"] = (np.repeat(e, e.size), np.tile(e, e.size))

    n = _n(200000)
    parts["random bits"] = (_bits(rng, n), _bits(rng, n))
    n = _n(100000)
    a = _realistic(rng, n)
    b = np.where(rng.random(n) < 0.5, _realistic(rng, n),
                 _f32(nm.f32_value(a) * (1 + rng.standard_normal(n) * 10.0 ** rng.uniform(-8, 0, n))))
    parts["realistic"] = (a, b)

    # mul: products around 2^-126 (FTZ boundary, rounding up to 2^-126 included)
    n = _n(50000)
    s = rng.integers(0, 2, (2, n))
    ea = rng.integers(1, 255, n)
    eb = np.clip(127 - ea + rng.integers(-2, 3, n), 1, 254)
    fa = np.where(rng.random(n) < 0.3, _short_frac(rng, n, rng.integers(1, 23, n)),
                  rng.integers(0, 1 << 23, n))
    fb = rng.integers(0, 1 << 23, n)
    a1, b1 = _compose(s[0], ea, fa), _compose(s[1], eb, fb)
    m = n // 2                                     # b next to 2^-126 / a: products a hair
    av = nm.f32_value(a1[:m])                     # below / above 2^-126
    bt = _f32(np.abs(2.0 ** -126 / av)).astype(np.int64) + rng.integers(-3, 4, m)
    ok = (bt > 0x00800000) & (bt < 0x7F000000)
    b1[:m] = np.where(ok, (bt | (s[1][:m] << 31)).astype(U32), b1[:m])
    parts["mul near 2^-126"] = (a1, b1)

    # mul: products around 2^128 (overflow), and short significands (ties)
    n = _n(20000)
    ea = rng.integers(127, 255, n)
    eb = np.clip(381 - ea + rng.integers(-3, 3, n), 1, 254)
    parts["mul near 2^128"] = (_compose(rng.integers(0, 2, n), ea, rng.integers(0, 1 << 23, n)),
                               _compose(rng.integers(0, 2, n), eb, rng.integers(0, 1 << 23, n)))
    n = _n(50000)
    k = rng.integers(1, 24, (2, n))
    parts["short significands"] = (
        _compose(rng.integers(0, 2, n), rng.integers(60, 190, n), _short_frac(rng, n, k[0])),
        _compose(rng.integers(0, 2, n), rng.integers(60, 190, n), _short_frac(rng, n, k[1])))

    # add: exponent gaps 0..40 with short significands (ties in both directions)
    n = _n(60000)
    ea = rng.integers(1, 255, n)
    eb = np.clip(ea - rng.integers(0, 41, n), 1, 254)
    k = rng.integers(1, 24, (2, n))
    a1 = _compose(rng.integers(0, 2, n), ea, _short_frac(rng, n, k[0]))
    b1 = _compose(rng.integers(0, 2, n), eb, _short_frac(rng, n, k[1]))
    sw = rng.random(n) < 0.5
    parts["add exponent gaps"] = (np.where(sw, b1, a1), np.where(sw, a1, b1))

    # add: exactly half an ulp of a (or a hair off): RNE ties, up and down by parity
    n = _n(30000)
    ea = rng.integers(25, 255, n)
    a1 = _compose(rng.integers(0, 2, n), ea, rng.integers(0, 1 << 23, n))
    fb = np.where(rng.random(n) < 0.5, 0, rng.choice([1, (1 << 23) - 1, 1 << 22], n))
    b1 = _compose(rng.integers(0, 2, n), ea - 24 + rng.integers(-1, 2, n), fb)
    parts["add half-ulp ties"] = (a1, b1)

    # add: cancellation (|b| within a few ulps of |a|, or one binade apart)
    n = _n(50000)
    a1 = _compose(rng.integers(0, 2, n), rng.integers(1, 255, n), rng.integers(0, 1 << 23, n))
    delta = rng.integers(-40, 41, n) + np.where(rng.random(n) < 0.2, rng.integers(-(1 << 24), 1 << 24, n), 0)
    mb = np.clip((a1 & U32(0x7FFFFFFF)).astype(np.int64) + delta, 0, 0x7F7FFFFF)
    b1 = ((rng.integers(0, 2, n) << 31) | mb).astype(U32)
    parts["add cancellation"] = (a1, b1)

    # add: results below 2^-126 (flushed, exact) and around it
    n = _n(20000)
    parts["add tiny results"] = (
        _compose(rng.integers(0, 2, n), rng.integers(0, 5, n), rng.integers(0, 1 << 23, n)),
        _compose(rng.integers(0, 2, n), rng.integers(0, 5, n), rng.integers(0, 1 << 23, n)))

    # huge exponent gaps (far apart, either order)
    n = _n(20000)
    ea = rng.integers(150, 255, n)
    parts["huge gaps"] = (_compose(rng.integers(0, 2, n), ea, rng.integers(0, 1 << 23, n)),
                          _compose(rng.integers(0, 2, n), rng.integers(1, ea - 25, n), rng.integers(0, 1 << 23, n)))

    # cmp: equal values and neighbours, +-0 and NaN payloads
    n = _n(20000)
    a1 = _bits(rng, n)
    kind = rng.integers(0, 4, n)
    b1 = np.where(kind == 0, a1, np.where(kind == 1, a1 ^ U32(0x80000000),
                  np.where(kind == 2, (a1.astype(np.int64) + rng.integers(-2, 3, n)).astype(U32),
                           (a1 & U32(0x807FFFFF)))))
    parts["cmp near-equal"] = (a1, b1)

    a = np.concatenate([p[0] for p in parts.values()]).astype(U32)
    b = np.concatenate([p[1] for p in parts.values()]).astype(U32)
    op_sub = np.random.default_rng(7).integers(0, 2, a.size).astype(np.uint8)
    return a, b, op_sub, {k: int(v[0].size) for k, v in parts.items()}


def _exp_interesting(rng, pool: int) -> np.ndarray:
    """Inputs from a random pool where EXP's double rounding is delicate: D[i] * r on an
    FP32 midpoint (q's tie), T[i] + q on a midpoint (p's tie), or rounding T[i] + D[i] * r
    directly would give another p than rounding q first."""
    x = _f32(rng.uniform(-87.3, 88.7, pool))
    xv = nm.f32_value(x)
    lg = nm.f32_value(np.array([nm.LOG2E_BITS], U32))[0]
    t = nm.mul(xv, lg)
    t64 = t * 64.0
    j = np.floor(t64)
    i = (j.astype(np.int64)) & 63
    r = t64 - j                                     # exact for |t| >= 2^-6 (the pool)
    d = nm.f32_value(np.array(nm.EXP_D_BITS, U32))[i]
    tt = nm.f32_value(np.array(nm.EXP_T_BITS, U32))[i]
    qe = d * r                                      # exact (18 x 23 bits)
    q = nm.mul(d, r)
    mq, _ = np.frexp(qe)
    q_tie = (qe != 0) & (np.mod(mq * 2.0 ** 25, 2.0) == 1.0)
    p_tie = np.mod((tt + q) * 2.0 ** 24, 2.0) == 1.0
    direct = nm.add(tt, qe) != nm.add(tt, q)
    cap = _n(30000)
    return np.concatenate([x[m][:cap] for m in (q_tie & ~p_tie & ~direct, p_tie, direct)])


def exp_vectors() -> tuple[np.ndarray, dict[str, int]]:
    """FP32 inputs for EXP (and narrowing): every BF16 input widened, then a sample."""
    rng = np.random.default_rng(31337)
    parts: dict[str, np.ndarray] = {}
    parts["every BF16 input, widened"] = nm.widen_bf16(np.arange(1 << 16, dtype=np.uint16))
    parts["edges"] = np.array(EDGES32 + EDGES_NARROW, U32)
    parts["random bits"] = _bits(rng, _n(40000))
    parts["uniform [-90, 90]"] = _f32(rng.uniform(-90, 90, _n(150000)))
    parts["uniform [-90, 0] (sampling)"] = _f32(rng.uniform(-90, 0, _n(50000)))
    k = _n(40000)
    hi = _f32(np.array([128.0, -126.0]) / nm.f32_value(np.array([nm.LOG2E_BITS], U32))[0])
    parts["t near 128 / -126"] = (np.repeat(hi, k // 2).astype(np.int64)
                                  + rng.integers(-3000, 3001, 2 * (k // 2))).astype(U32)
    k = _n(60000)
    parts["|t| < 2^-5 (small-t paths)"] = _compose(rng.integers(0, 2, k), rng.integers(0, 123, k),
                                                   rng.integers(0, 1 << 23, k))
    k = _n(30000)
    parts["t near integers / table steps"] = _f32(
        (rng.integers(-8064, 8192, k) + rng.uniform(-1e-4, 1e-4, k)) / 64.0
        / nm.f32_value(np.array([nm.LOG2E_BITS], U32))[0])
    parts["double-rounding cases"] = _exp_interesting(rng, _n(4_000_000))
    x = np.concatenate(list(parts.values())).astype(U32)
    return x, {k: int(v.size) for k, v in parts.items()}


def narrow_vectors() -> tuple[np.ndarray, dict[str, int]]:
    rng = np.random.default_rng(4242)
    parts: dict[str, np.ndarray] = {}
    parts["edges"] = np.array(EDGES32 + EDGES_NARROW, U32)
    parts["random bits"] = _bits(rng, _n(200000))
    n = _n(100000)
    low = rng.choice(np.array([0x8000, 0x7FFF, 0x8001, 0x0000, 0xFFFF], U32), n)
    parts["ties and neighbours"] = (_bits(rng, n) & U32(0xFFFF0000)) | low
    n = _n(20000)
    parts["near max finite"] = (U32(0x7F7F0000) | (_bits(rng, n) & U32(0x0000FFFF))
                                | (rng.integers(0, 2, n).astype(U32) << U32(31)))
    parts["realistic"] = _realistic(rng, _n(50000))
    x = np.concatenate(list(parts.values())).astype(U32)
    return x, {k: int(v.size) for k, v in parts.items()}


def reci_vectors() -> tuple[np.ndarray, dict[str, int]]:
    rng = np.random.default_rng(777)
    parts: dict[str, np.ndarray] = {}
    parts["edges"] = np.array(EDGES32, U32)
    e = np.arange(256, dtype=np.uint64)
    parts["powers of two, all exponents, both signs"] = np.concatenate(
        [_compose(0, e, 0), _compose(1, e, 0), _compose(0, e, 1), _compose(0, e, (1 << 23) - 1)])
    parts["random bits"] = _bits(rng, _n(100000))
    n = _n(30000)
    parts["exponent fields 250..254 and 1..3 (FTZ / large)"] = _compose(
        rng.integers(0, 2, n), rng.choice([1, 2, 3, 250, 251, 252, 253, 254], n), rng.integers(0, 1 << 23, n))
    parts["realistic"] = _realistic(rng, _n(30000))
    n = _n(20000)
    parts["short significands"] = _compose(rng.integers(0, 2, n), rng.integers(1, 255, n),
                                           _short_frac(rng, n, rng.integers(1, 24, n)))
    x = np.concatenate(list(parts.values())).astype(U32)
    return x, {k: int(v.size) for k, v in parts.items()}


def _rsqrt_x(mp, e_odd, e_even):
    """FP32 bits with the given M' values: M' < 2^24 at odd exponent e_odd, else at even
    exponent e_even (M' = 2M)."""
    mp = np.asarray(mp, np.int64)
    low = mp < (1 << 24)
    return np.where(low, _compose(0, e_odd, mp - (1 << 23)),
                    _compose(0, e_even, (mp >> 1) - (1 << 23))).astype(U32)


def rsqrt_vectors() -> tuple[np.ndarray, dict[str, int]]:
    rng = np.random.default_rng(1729)
    parts: dict[str, np.ndarray] = {}
    parts["edges"] = np.array(EDGES32, U32)
    e = np.arange(1, 255, dtype=np.int64)
    p2 = _compose(0, e, 0).astype(np.int64)          # odd e: powers of 4
    parts["powers of 2 and 4, every exponent, and neighbours +-1, +-2"] = np.concatenate(
        [p2 + d for d in (0, 1, -1, 2, -2)]).astype(U32)
    parts["all-ones fractions, every exponent"] = _compose(0, np.arange(256), (1 << 23) - 1)
    parts["hardest to round, 6 exponents"] = np.concatenate(
        [_rsqrt_x(RSQRT_HARD_MP, eo, ee) for eo, ee in ((1, 2), (127, 126), (253, 254))])
    n = _n(3000)
    parts["random normal positives, every exponent"] = _compose(
        0, rng.integers(1, 255, n), rng.integers(0, 1 << 23, n))
    n = _n(500)
    parts["short significands"] = _compose(0, rng.integers(1, 255, n),
                                           _short_frac(rng, n, rng.integers(1, 24, n)))
    n = _n(500)
    parts["negatives (normal, subnormal, -0, -Inf, NaN)"] = _compose(
        1, rng.choice([0, 0, 255, *range(1, 255)], n), rng.integers(0, 1 << 23, n))
    n = _n(300)
    parts["+-0, subnormals, +-Inf, NaN payloads"] = np.concatenate([
        np.array([0, 0x80000000, 0x7F800000, 0xFF800000], U32),
        _compose(rng.integers(0, 2, n), 0, rng.integers(1, 1 << 23, n)),
        _compose(rng.integers(0, 2, n), 255, rng.integers(1, 1 << 23, n))])
    parts["random bits"] = _bits(rng, _n(1000))
    x = np.concatenate(list(parts.values())).astype(U32)
    return x, {k: int(v.size) for k, v in parts.items()}


def _rsqrt_y(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Y mod 2, frac) of NUMERICS 4.1 for normal positive FP32 bits: the round bit, and
    2^25 / sqrt(M' / 2^23) - Y, about (2^73 - Y^2 M') / (2 Y M')."""
    rb, fr = [], []
    for b in np.asarray(bits, U32).tolist():
        e, f = (b >> 23) & 0xFF, b & 0x7FFFFF
        mp = ((1 << 23) | f) << (1 - (e & 1))
        y = math.isqrt((1 << 73) // mp)
        rb.append(y & 1)
        fr.append(((1 << 73) - y * y * mp) / (2 * y * mp))
    return np.array(rb, bool), np.array(fr, np.float64)


# ---------------------------------------------------------------------------
# goldens
# ---------------------------------------------------------------------------

def golden_binary(a, b, op_sub):
    add = nm.f32_add(a, b).astype(U32)
    sub = nm.f32_sub(a, b).astype(U32)
    av, bv = nm.f32_value(a), nm.f32_value(b)
    gt_ab, gt_ba = nm.gt(av, bv), nm.gt(bv, av)
    # BF16 results (V_ADD/SUB/MUL_VV/VF) in FP32 bits: the BF16 pattern in the top half
    b16 = {k: (nm.bf16_bits(f(av, bv, "bf16")).astype(U32) << U32(16))
           for k, f in (("add16_y", nm.add), ("sub16_y", nm.sub), ("mul16_y", nm.mul))}
    return {"add_y": add, "sub_y": sub, "mul_y": nm.f32_mul(a, b).astype(U32),
            "cmp_gt": gt_ab.astype(U32), "cmp_eq": (~gt_ab & ~gt_ba).astype(U32), **b16}


# ---------------------------------------------------------------------------
# bus packing and the apply loop
# ---------------------------------------------------------------------------

def _lanes() -> int:
    return int(os.environ.get(ENV_LANES, str(LANES)))


def _pack(vals: np.ndarray, width: int) -> int:
    if width == 1:
        return int.from_bytes(np.packbits(vals.astype(np.uint8), bitorder="little").tobytes(), "little")
    dt = {32: "<u4", 16: "<u2"}[width]
    return int.from_bytes(vals.astype(dt).tobytes(), "little")


def _unpack(v: int, width: int, lanes: int) -> np.ndarray:
    nbytes = (width * lanes + 7) // 8
    raw = v.to_bytes(nbytes, "little")
    if width == 1:
        return np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")[:lanes].astype(U32)
    return np.frombuffer(raw, {32: "<u4", 16: "<u2"}[width]).astype(U32)


def _padded(arr: np.ndarray, lanes: int) -> np.ndarray:
    pad = (-arr.size) % lanes
    return np.concatenate([arr, np.repeat(arr[-1:], pad)]) if pad else arr


async def apply_comb(dut, drive: dict[str, tuple[np.ndarray, int]], outs: dict[str, int]) -> dict[str, np.ndarray]:
    """Drive the combinational inputs LANES vectors at a time, wait 1 ns, read `outs`.
    drive: name -> (values, element width); outs: name -> element width."""
    lanes = _lanes()
    n = next(iter(drive.values()))[0].size
    ins = {k: (getattr(dut, k), _padded(v, lanes), w) for k, (v, w) in drive.items()}
    hout = {k: (getattr(dut, k), w) for k, w in outs.items()}
    res = {k: np.empty(n + (-n) % lanes, U32) for k in outs}
    for s in range(0, n, lanes):
        for h, v, w in ins.values():
            h.value = _pack(v[s:s + lanes], w)
        await Timer(1, unit="ns")
        for k, (h, w) in hout.items():
            res[k][s:s + lanes] = _unpack(h.value.to_unsigned(), w, lanes)
    return {k: v[:n] for k, v in res.items()}


def check(name: str, got: np.ndarray, want: np.ndarray, inputs: dict[str, np.ndarray], width: int = 32,
          quiet: bool = False):
    """Fail on any mismatch, listing the first ones with inputs, RTL and golden bits."""
    want = np.asarray(want).astype(U32)
    bad = np.nonzero(got != want)[0]
    if bad.size:
        hx = (width + 3) // 4
        lines = [f"{name}: {bad.size} of {got.size} vectors differ from dnpu.spec.numerics; first ones:"]
        for k in bad[:25]:
            ins = " ".join(f"{n}=0x{int(v[k]):08X}" for n, v in inputs.items())
            lines.append(f"  {ins}: rtl 0x{int(got[k]):0{hx}X}, golden 0x{int(want[k]):0{hx}X}")
        raise AssertionError("\n".join(lines))
    if not quiet:
        dut_log(f"{name}: {got.size} vectors, all bit-exact")


def dut_log(msg: str):
    cocotb.log.info(msg)


def _log_counts(title: str, counts: dict[str, int]):
    dut_log(f"{title}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


# ---------------------------------------------------------------------------
# cocotb tests
# ---------------------------------------------------------------------------

@cocotb.test()
async def binary_ops(dut):
    """add, sub (both adders' sub port toggled per lane), mul and cmp on the same
    vectors: edges x edges, random bits, realistic values, FTZ/overflow boundaries,
    ties, cancellation, exponent gaps, near-equal compares."""
    a, b, op_sub, counts = binary_vectors()
    _log_counts("binary vectors", counts)
    t0 = time.perf_counter()
    got = await apply_comb(dut, {"a": (a, 32), "b": (b, 32), "op_sub": (op_sub, 1)},
                           {"add_y": 32, "sub_y": 32, "mul_y": 32, "cmp_gt": 1, "cmp_eq": 1,
                            "add16_y": 32, "sub16_y": 32, "mul16_y": 32})
    dut_log(f"binary ops: {a.size} vectors in {time.perf_counter() - t0:.1f} s")
    want = golden_binary(a, b, op_sub)
    ins = {"a": a, "b": b}
    check("dnpu_fp32_add (a + b)", got["add_y"], want["add_y"], ins)
    check("dnpu_fp32_add (a - b)", got["sub_y"], want["sub_y"], ins)
    check("dnpu_fp32_mul", got["mul_y"], want["mul_y"], ins)
    check("dnpu_fp32_add bf16 (a + b)", got["add16_y"], want["add16_y"], ins)
    check("dnpu_fp32_add bf16 (a - b)", got["sub16_y"], want["sub16_y"], ins)
    check("dnpu_fp32_mul bf16", got["mul16_y"], want["mul16_y"], ins)
    check("dnpu_fp_cmp gt", got["cmp_gt"], want["cmp_gt"], ins, width=1)
    check("dnpu_fp_cmp eq", got["cmp_eq"], want["cmp_eq"], ins, width=1)


@cocotb.test()
async def exp_and_narrow(dut):
    """EXP over every BF16 input widened (V_EXP_V's inputs) plus an FP32 sample (edges,
    thresholds t ~ 128 / -126, the small-|t| paths, double-rounding cases); the
    narrowing unit on the same inputs. Also V_EXP_V end to end: narrowing the RTL's EXP
    of each widened BF16 input equals numerics.exp_bf16."""
    x, counts = exp_vectors()
    _log_counts("EXP vectors", counts)
    t0 = time.perf_counter()
    got = await apply_comb(dut, {"x": (x, 32)}, {"exp_y": 32, "bf16_y": 16})
    dut_log(f"EXP/narrow: {x.size} vectors in {time.perf_counter() - t0:.1f} s")
    check("dnpu_fp_exp", got["exp_y"], nm.exp_f32(x), {"x": x})
    check("dnpu_f32_to_bf16 (on the EXP inputs)", got["bf16_y"], nm.narrow_f32(x), {"x": x}, width=16)
    nb = 1 << 16
    check("V_EXP_V = bf16(EXP(widen(x)))", nm.narrow_f32(got["exp_y"][:nb]).astype(U32),
          nm.exp_bf16(np.arange(nb, dtype=np.uint16)), {"x": x[:nb]}, width=16)


@cocotb.test()
async def narrow_sample(dut):
    """FP32 -> BF16 over a broad sample: random bits, ties and their neighbours, the
    overflow edge 0x7F7F7FFF / 0x7F7F8000, DAZ inputs."""
    x, counts = narrow_vectors()
    _log_counts("narrowing vectors", counts)
    got = await apply_comb(dut, {"x": (x, 32)}, {"bf16_y": 16})
    check("dnpu_f32_to_bf16", got["bf16_y"], nm.narrow_f32(x), {"x": x}, width=16)


async def _clock_and_reset(dut):
    dut.reci_start.value = 0
    dut.rsqrt_start.value = 0
    dut.rst_n.value = 0
    Clock(dut.clk, CLK_NS, unit="ns").start()
    for _ in range(3):
        await FallingEdge(dut.clk)
    dut.rst_n.value = 1
    await FallingEdge(dut.clk)


SEQ_UNITS = {"reci": ("dnpu_fp32_reci", RECI_LATENCY, nm.reci_f32),
             "rsqrt": ("dnpu_fp32_rsqrt", RSQRT_LATENCY, nm.rsqrt_f32)}


async def _handshake(dut, unit: str, xs: list[np.ndarray]):
    """Cycle by cycle on the <unit>_* ports: busy for the LATENCY cycles after the taking
    edge, done one cycle, y held until the next done, start ignored while busy, a start
    in the done cycle taken at once, reset clears busy/done. xs: three operand sets."""
    name, latency, golden = SEQ_UNITS[unit]
    start, hbusy, hdone, hy = (getattr(dut, f"{unit}_{k}") for k in ("start", "busy", "done", "y"))
    lanes = _lanes()
    full = (1 << lanes) - 1
    await _clock_and_reset(dut)
    assert int(hbusy.value) == 0 and int(hdone.value) == 0
    ys = [golden(v).astype(U32) for v in xs]

    def sample():
        """(busy, done, y); y is None until the first done (the datapath has no reset)."""
        yv = hy.value
        return (int(hbusy.value), int(hdone.value),
                _unpack(yv.to_unsigned(), 32, lanes) if yv.is_resolvable else None)

    # op 0 taken; op 1 presented while busy (ignored); op 2 presented in op 0's done cycle.
    dut.x.value = _pack(xs[0], 32)
    start.value = 1
    await FallingEdge(dut.clk)                # taken on the rising edge just passed
    start.value = 0
    for c in range(1, latency + 1):           # c: cycles after the taking edge
        await Timer(2, unit="ns")
        busy, done, y = sample()
        if c < latency:
            assert (busy, done) == (full, 0), f"{name} cycle {c}: busy {busy:X} done {done:X}"
        if c == 5:
            dut.x.value = _pack(xs[1], 32)
            start.value = 1                   # ignored: busy
        if c == 6:
            start.value = 0
        await FallingEdge(dut.clk)
    await Timer(2, unit="ns")
    busy, done, y = sample()
    assert (busy, done) == (0, full), f"{name} done cycle: busy {busy:X} done {done:X}"
    check(f"{name} (handshake op 0)", y, ys[0], {"x": xs[0]})
    dut.x.value = _pack(xs[2], 32)
    start.value = 1                           # taken at the end of the done cycle
    await FallingEdge(dut.clk)
    start.value = 0
    dut.x.value = _pack(xs[1], 32)            # x is sampled only on the taking edge
    for c in range(1, latency + 1):
        await Timer(2, unit="ns")
        busy, done, y = sample()
        assert (busy, done) == (full, 0), f"{name} op 2, cycle {c}: busy {busy:X} done {done:X}"
        check(f"{name} (y holds until the next done)", y, ys[0], {"x": xs[0]}, quiet=True)
        await FallingEdge(dut.clk)
    await Timer(2, unit="ns")
    busy, done, y = sample()
    assert (busy, done) == (0, full)
    check(f"{name} (handshake op 2)", y, ys[2], {"x": xs[2]})
    await FallingEdge(dut.clk)
    await Timer(2, unit="ns")
    busy, done, y = sample()
    assert (busy, done) == (0, 0), "done is a one-cycle pulse"
    check(f"{name} (y holds after done)", y, ys[2], {"x": xs[2]})
    # Reset in the middle of an operation.
    await FallingEdge(dut.clk)
    start.value = 1
    await FallingEdge(dut.clk)
    start.value = 0
    await FallingEdge(dut.clk)
    dut.rst_n.value = 0
    await FallingEdge(dut.clk)
    dut.rst_n.value = 1
    for _ in range(latency + 3):
        await Timer(2, unit="ns")
        assert int(hbusy.value) == 0 and int(hdone.value) == 0, f"{name} reset"
        await FallingEdge(dut.clk)


async def _apply_seq(dut, unit: str, x: np.ndarray, title: str):
    """Start <unit> on LANES operands at a time, read y in the done cycle (LATENCY edges
    after the taking edge, done checked there), compare with the golden."""
    name, latency, golden = SEQ_UNITS[unit]
    lanes = _lanes()
    full = (1 << lanes) - 1
    xp = _padded(x, lanes)
    got = np.empty(xp.size, U32)
    await _clock_and_reset(dut)
    t0 = time.perf_counter()
    hx, hs, hd, hy = dut.x, getattr(dut, f"{unit}_start"), getattr(dut, f"{unit}_done"), getattr(dut, f"{unit}_y")
    for s in range(0, xp.size, lanes):
        hx.value = _pack(xp[s:s + lanes], 32)
        hs.value = 1
        await FallingEdge(dut.clk)
        hs.value = 0
        # the done cycle: LATENCY edges after the taking edge, 2 ns into it
        await Timer(CLK_NS * latency + 2 - CLK_NS // 2, unit="ns")
        assert int(hd.value) == full, f"{name}: done not high {latency} cycles after start"
        got[s:s + lanes] = _unpack(hy.value.to_unsigned(), 32, lanes)
        await FallingEdge(dut.clk)
    dut_log(f"{title}: {x.size} vectors in {time.perf_counter() - t0:.1f} s")
    check(name, got[:x.size], golden(x), {"x": x})


def _edge_windows(lanes: int, starts=(0, 20, 40)) -> list[np.ndarray]:
    return [np.array(EDGES32[i:i + lanes] + EDGES32[:max(0, i + lanes - len(EDGES32))], U32)[:lanes]
            for i in starts]


@cocotb.test()
async def reci_handshake(dut):
    """RECI's handshake (see _handshake) on windows of the edge operands."""
    await _handshake(dut, "reci", _edge_windows(_lanes()))


@cocotb.test()
async def reci_values(dut):
    """RECI on edges (powers of two at every exponent, 0x7E800000 / 0x7E800001, +-0,
    subnormals, Inf, NaN), random bits, large/small exponents, realistic values."""
    x, counts = reci_vectors()
    _log_counts("RECI vectors", counts)
    await _apply_seq(dut, "reci", x, "RECI")


@cocotb.test()
async def rsqrt_handshake(dut):
    """RSQRT's handshake (see _handshake): an edge window (specials, powers of 4), random
    positives, another edge window."""
    lanes = _lanes()
    rng = np.random.default_rng(99)
    w = _edge_windows(lanes, (0, 40))
    pos = _compose(0, rng.integers(1, 255, lanes), rng.integers(0, 1 << 23, lanes))
    await _handshake(dut, "rsqrt", [w[0], pos, w[1]])


@cocotb.test()
async def rsqrt_values(dut):
    """RSQRT on edges, powers of 2 and 4 at every exponent and their neighbours, all-ones
    fractions, the hardest-to-round M', random positives over every exponent, short
    significands, negatives, +-0, subnormals, Inf, NaN payloads, random bits."""
    x, counts = rsqrt_vectors()
    _log_counts("RSQRT vectors", counts)
    await _apply_seq(dut, "rsqrt", x, "RSQRT")


# ---------------------------------------------------------------------------
# pytest entries
# ---------------------------------------------------------------------------

def _run(sim: str, scale: float, monkeypatch, lanes: int = LANES):
    run_block(TOP, rtl_sources(*(f"fp/{f}" for f in FP_FILES)), "test_fp", sim=sim,
              parameters={"LANES": lanes},
              extra_env={ENV_SCALE: str(scale), ENV_LANES: str(lanes)})


@pytest.mark.rtl
def test_fp_verilator(monkeypatch):
    """Every unit, full vector sets (>= 200k per binary op, every BF16 input for EXP)."""
    _run("verilator", 1.0, monkeypatch)


@pytest.mark.rtl
@pytest.mark.slow              # the second simulator: make test-slow (Verilator runs these in make test)
def test_fp_icarus(monkeypatch):
    """The same tests on Icarus with the random parts scaled down."""
    _run("icarus", 0.03, monkeypatch)


@pytest.mark.rtl
@pytest.mark.parametrize("src", FP_FILES)
def test_fp_lint(src):
    """verilator --lint-only -Wall is clean (no warning at all) with each file's module
    as the top."""
    lint(src.removesuffix(".v"), rtl_sources(*(f"fp/{f}" for f in FP_FILES)))


def test_fp_sources_listed():
    """Every .v in hw/rtl/fp is built and linted here."""
    assert sorted(p.name for p in FP_DIR.glob("*.v")) == sorted(FP_FILES)


def _rne_ties(v: np.ndarray, resid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ties rounded down to even, ties rounded up to even) among float64 values v (+ an
    exact residual) at FP32 precision: v exactly halfway between two 24-bit numbers."""
    bits = np.abs(v).view(np.uint64)
    tie = (bits & np.uint64((1 << 29) - 1)) == np.uint64(1 << 28)
    if resid is not None:
        tie &= resid == 0
    odd = ((bits >> np.uint64(29)) & np.uint64(1)).astype(bool)
    return tie & ~odd, tie & odd


def test_vector_coverage():
    """The vector sets reach the cases the brief names (checked on the goldens, no
    simulator): FTZ boundary both ways, overflow by rounding, RNE ties both ways (and a
    tie broken by a far-away bit), exact cancellation, EXP's three t paths and
    saturations, narrowing ties and overflow, RECI's FTZ edge."""
    a, b, _, _ = binary_vectors()
    av, bv = nm.f32_value(a), nm.f32_value(b)
    mag = np.uint32(0x7FFFFFFF)
    with np.errstate(invalid="ignore", over="ignore"):
        p = av * bv                                     # exact in float64
        mul = nm.f32_mul(a, b) & mag
        fin = np.isfinite(p)
        tiny = fin & (p != 0) & (np.abs(p) < nm.MIN_NORMAL)
        s, e = nm.two_sum(av, bv)
        add = nm.f32_add(a, b) & mag
    dn, up = _rne_ties(np.where(fin & (np.abs(p) >= nm.MIN_NORMAL), p, 0.0))
    sfin = np.isfinite(s)
    adn, aup = _rne_ties(np.where(sfin & (np.abs(s) >= nm.MIN_NORMAL), s, 0.0), e)
    half = (np.abs(s).view(np.uint64) & np.uint64((1 << 29) - 1)) == np.uint64(1 << 28)
    cov = {
        "mul: exact < 2^-126 rounds up to 2^-126": tiny & (mul == 0x00800000),
        "mul: exact < 2^-126 flushed": tiny & (mul == 0),
        "mul: finite product rounds to Inf": fin & (np.abs(p) < 2.0 ** 128) & (mul == 0x7F800000),
        "mul: tie to even, down": dn, "mul: tie to even, up": up,
        "add: tie to even, down": adn, "add: tie to even, up": aup,
        # (An FP32 + FP32 sum that float64 rounds is never near an FP32 midpoint, so the
        # sticky decides only through exact sums like these.)
        "add: sticky decides (one bit off a tie)": sfin & (np.abs(s) >= nm.MIN_NORMAL) & (e == 0) & (
            np.abs((np.abs(s).view(np.uint64) & np.uint64((1 << 29) - 1)).astype(np.int64) - (1 << 28)) <= 1 << 5)
            & ~half,
        "add: exact cancellation of nonzero operands": (av != 0) & (s == 0),
        "add: nonzero result flushed": sfin & (s != 0) & (np.abs(s) < nm.MIN_NORMAL),
        "add: finite operands overflow": np.isfinite(av) & np.isfinite(bv) & (add == 0x7F800000),
        "add: Inf - Inf": np.isinf(av) & np.isinf(bv) & (np.sign(av) != np.sign(bv)),
        "cmp: equal with different bits": (a != b) & ~nm.gt(av, bv) & ~nm.gt(bv, av),
        "cmp: NaN against NaN": np.isnan(av) & np.isnan(bv),
    }
    x, _ = exp_vectors()
    xv = nm.f32_value(x)
    lg = nm.f32_value(np.array([nm.LOG2E_BITS], U32))[0]
    with np.errstate(invalid="ignore"):
        t = nm.mul(xv, lg)
    ey = nm.exp_f32(x)
    cov.update({
        "exp: |t| >= 2^-6": (np.abs(t) >= 2.0 ** -6) & (np.abs(t) < 126),
        "exp: 0 < t < 2^-6": (t > 0) & (t < 2.0 ** -6),
        "exp: -2^-6 < t < 0": (t < 0) & (t > -(2.0 ** -6)),
        "exp: p = 2 (t < 0 tiny gives exactly 1.0)": (t < 0) & (ey == nm.F32_ONE),
        "exp: finite x to +Inf": np.isfinite(xv) & (ey == nm.F32_POS_INF),
        "exp: finite x to +0": np.isfinite(xv) & (ey == 0),
        "exp: result 2^-126 (n = -126)": ey == 0x00800000,
    })
    xn, _ = narrow_vectors()
    low = xn & U32(0xFFFF)
    normal = ((xn >> U32(23)) & U32(0xFF)) - U32(1) < U32(254)
    cov.update({
        "bf16: tie to even, down": normal & (low == 0x8000) & ((xn & U32(0x10000)) == 0),
        "bf16: tie to even, up": normal & (low == 0x8000) & ((xn & U32(0x10000)) != 0),
        "bf16: finite rounds to Inf": normal & ((nm.narrow_f32(xn) & np.uint16(0x7FFF)) == 0x7F80),
        "bf16: subnormal read as zero": ((xn & U32(0x7F800000)) == 0) & ((xn & U32(0x7FFFFF)) != 0),
    })
    xr, _ = reci_vectors()
    cov.update({
        "reci: 1/0x7E800000 kept as 2^-126": xr == 0x7E800000,
        "reci: 1/0x7E800001 flushed": xr == 0x7E800001,
        "reci: 1/subnormal = Inf": ((xr & U32(0x7F800000)) == 0) & ((xr & U32(0x7FFFFF)) != 0),
    })
    xs, _ = rsqrt_vectors()
    ex, fx, neg = (xs >> U32(23)) & U32(0xFF), xs & U32(0x7FFFFF), (xs >> U32(31)) == 1
    norm = ~neg & (ex > 0) & (ex < 255)
    ri, frac = np.zeros(xs.size, bool), np.full(xs.size, 0.5)
    ri[norm], frac[norm] = _rsqrt_y(xs[norm])
    cov.update({
        "rsqrt: power of 4 (exact)": norm & (fx == 0) & ((ex & U32(1)) == 1),
        "rsqrt: power of 2, not of 4": norm & (fx == 0) & ((ex & U32(1)) == 0),
        "rsqrt: round bit 1 (rounded up)": ri,
        "rsqrt: round bit 0 (rounded down)": norm & ~ri & (fx != 0),
        "rsqrt: within 2^-20 of a midpoint, above": ri & (frac < 2.0 ** -20),
        "rsqrt: within 2^-20 of a midpoint, below": norm & ~ri & (1 - frac < 2.0 ** -20),
        "rsqrt: +-0 and subnormals to +-Inf, both signs": (ex == 0) & neg,
        "rsqrt: +0": xs == 0,
        "rsqrt: positive subnormal": (ex == 0) & (fx != 0) & ~neg,
        "rsqrt: negative normal to NaN": neg & (ex > 0) & (ex < 255),
        "rsqrt: -Inf to NaN": xs == 0xFF800000,
        "rsqrt: +Inf to +0": xs == 0x7F800000,
        "rsqrt: NaN with payload, both signs": (ex == 255) & (fx != 0) & (fx != 0x400000),
        "rsqrt: largest result exponent (x = 2^-126)": xs == 0x00800000,
        "rsqrt: smallest result exponent (x near 2^128)": norm & (ex == 254),
    })
    missing = [k for k, m in cov.items() if not np.any(m)]
    assert not missing, f"vector sets miss: {missing}"


def _f32_fraction(b: int) -> Fraction:
    """Exact value of normal FP32 bits b."""
    e, f = (b >> 23) & 0xFF, b & 0x7FFFFF
    assert 0 < e < 255, hex(b)
    return (-1) ** (b >> 31) * Fraction((1 << 23) | f) * Fraction(2) ** (e - 150)


def test_rsqrt_golden_correctly_rounded():
    """numerics.rsqrt_f32 (the RTL's golden) checked without its own algorithm: for normal
    positive x, y is a normal FP32 number and 1/sqrt(x) lies between the midpoints to
    y's neighbours (taken by bit pattern, so binade edges come right):
    mlo^2 x <= 1 <= mhi^2 x, equality only where y is exact (powers of 4). Specials by
    table."""
    rng = np.random.default_rng(2718)
    n = 2000
    x = np.concatenate([
        _compose(0, rng.integers(1, 255, n), rng.integers(0, 1 << 23, n)),
        _compose(0, np.arange(1, 255), 0), _compose(0, np.arange(1, 255), (1 << 23) - 1),
        _rsqrt_x(RSQRT_HARD_MP, 127, 126), _rsqrt_x(RSQRT_HARD_MP, 1, 254)]).astype(U32)
    y = nm.rsqrt_f32(x)
    bad = []
    for xb, yb in zip(x.tolist(), y.tolist()):
        xv, yv = _f32_fraction(xb), _f32_fraction(yb)
        mlo = (_f32_fraction(yb - 1) + yv) / 2
        mhi = (yv + _f32_fraction(yb + 1)) / 2
        if not (yv > 0 and mlo * mlo * xv <= 1 <= mhi * mhi * xv):
            bad.append(f"x=0x{xb:08X} y=0x{yb:08X}")
        elif mlo * mlo * xv == 1 or mhi * mhi * xv == 1:
            bad.append(f"x=0x{xb:08X} y=0x{yb:08X} (a midpoint: impossible)")
    assert not bad, f"{len(bad)} of {x.size} not correctly rounded: {bad[:10]}"
    special = {0x00000000: 0x7F800000, 0x80000000: 0xFF800000, 0x00000001: 0x7F800000,
               0x807FFFFF: 0xFF800000, 0x7F800000: 0x00000000, 0xFF800000: 0x7FC00000,
               0xBF800000: 0x7FC00000, 0x80800000: 0x7FC00000, 0x7F800001: 0x7FC00000,
               0xFFFFFFFF: 0x7FC00000, 0x7FC00000: 0x7FC00000, 0x00800000: 0x5F000000,
               0x3F800000: 0x3F800000, 0x40800000: 0x3F000000}
    got = nm.rsqrt_f32(np.array(list(special), U32)).tolist()
    assert got == list(special.values()), [f"0x{g:08X}" for g in got]
