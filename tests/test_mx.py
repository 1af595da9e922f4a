"""dnpu.spec.mx quantize / dequantize against the shared vectors and independent oracles.

Oracles (written here, independent of dnpu.spec.mx's bit tricks):

* scale: ``np.frexp`` on float64 (floor(log2 a) = frexp exponent - 1); a zero or
  input-subnormal amax gives the clamped minimum.
* elements: the float64 value ``x * 2**-e`` (exact), clamped to +-max normal, cast with
  ml_dtypes (float8_e4m3fn, float8_e5m2, float6_e3m2fn, float6_e2m3fn, float4_e2m1fn)
  and read with ``.view(np.uint8)``; int8 is ``np.rint`` (half-even) of ``v * 64`` clipped
  to +-127.  ml_dtypes converts float64 through float32 (it double-rounds: see
  ``test_ml_dtypes_double_rounds_from_float64``), so the float64 value is first rounded to
  float32 *to odd*, which is exact for float32/bfloat16 inputs and makes the
  float32→narrow RNE cast equal to a single rounding of the float64 value (Boldo &
  Melquiond).  A third oracle, exact rational rounding with ``fractions.Fraction``,
  checks that claim and the quantizer directly.
"""

from __future__ import annotations

import bisect
import importlib
import json
import math
import pathlib
import subprocess
import sys
import zlib
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnpu.spec import mx

# The spec, written out independently of dnpu.spec.mx.FORMATS:
# name: (w, E, M, bias, emax, max normal)
SPEC = {
    "e4m3": (8, 4, 3, 7, 8, 448.0),
    "e5m2": (8, 5, 2, 15, 15, 57344.0),
    "e3m2": (6, 3, 2, 3, 4, 28.0),
    "e2m3": (6, 2, 3, 1, 2, 7.5),
    "e2m1": (4, 2, 1, 1, 2, 6.0),
    "int8": (8, 0, 6, 0, 0, 127 / 64),
}
FMTS = list(SPEC)
ML = {
    "e4m3": ml_dtypes.float8_e4m3fn,
    "e5m2": ml_dtypes.float8_e5m2,
    "e3m2": ml_dtypes.float6_e3m2fn,
    "e2m3": ml_dtypes.float6_e2m3fn,
    "e2m1": ml_dtypes.float4_e2m1fn,
}
DTYPES = ["float32", "float64", "bfloat16"]
NP_DTYPE = {"float32": np.float32, "float64": np.float64, "bfloat16": ml_dtypes.bfloat16}
UINT = {"float32": np.uint32, "float64": np.uint64, "bfloat16": np.uint16}
MIN_NORMAL = {"float32": 2.0**-126, "bfloat16": 2.0**-126, "float64": 2.0**-1022}
# largest exponent e with 2**e finite in the dtype
# float64 reaches float32's range only: past it quantize raises (test_float64_beyond_float32_range)
MAX_EXP = {"float32": 127, "bfloat16": 127, "float64": 127}
BLOCKS = [8, 16, 32, 64]
BF16_MAX = float(np.array(0x7F7F, np.uint16).view(ml_dtypes.bfloat16).astype(np.float64))

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def positive_grid(fmt: str) -> np.ndarray:
    """All non-negative finite values of the format, ascending (index = code)."""
    w, E, M, bias, emax, maxn = SPEC[fmt]
    if fmt == "int8":
        return np.arange(128) / 64.0
    vals = [m * 2.0 ** (1 - bias - M) for m in range(2**M)]
    vals += [(1 + m / 2**M) * 2.0 ** (e - bias) for e in range(1, 2**E) for m in range(2**M)]
    return np.array([v for v in vals if v <= maxn])


# ------------------------------------------------------------------------------ oracles


def to_f64(x: np.ndarray) -> np.ndarray:
    return np.asarray(x).astype(np.float64)


def round_to_odd_f32(v: np.ndarray) -> np.ndarray:
    """float64 → float32 rounding to odd (truncate, then set the lsb when inexact)."""
    f = v.astype(np.float32)
    back = f.astype(np.float64)
    bits = f.view(np.uint32).copy()
    inexact = back != v
    bits[inexact & (np.abs(back) > np.abs(v))] -= np.uint32(1)  # rounded away: step back
    bits[inexact] |= np.uint32(1)
    return bits.view(np.float32)


def oracle_scales(x64: np.ndarray, fmt: str, dtype: str, block: int):
    """(scale bytes, exponent e, non-finite block mask) for blocks of ``x64``."""
    emax = SPEC[fmt][4]
    xb = x64.reshape(-1, block)
    bad = ~np.isfinite(xb).all(axis=1)
    amax = np.abs(np.where(np.isfinite(xb), xb, 0.0)).max(axis=1)
    _, ex = np.frexp(amax)
    fl = ex.astype(np.int64) - 1
    fl[amax < MIN_NORMAL[dtype]] = -(10**6)  # zero / input-subnormal: clamped minimum
    e = np.clip(fl - emax, -127, 127)
    scale = (e + 127).astype(np.uint8)
    scale[bad] = 0xFF
    return scale, e, bad


def oracle_quantize(x64: np.ndarray, fmt: str, dtype: str, block: int):
    """(scales, codes) for the input values ``x64`` (float64, exactly the input)."""
    maxn = SPEC[fmt][5]
    scale, e, bad = oracle_scales(x64, fmt, dtype, block)
    xb = x64.reshape(-1, block)
    v = np.ldexp(np.where(np.isfinite(xb), xb, 0.0), -e[:, None])
    v = np.clip(v, -maxn, maxn)
    if fmt == "int8":
        codes = np.clip(np.rint(v * 64.0), -127, 127).astype(np.int8).view(np.uint8)
    else:
        codes = round_to_odd_f32(v).astype(ML[fmt]).view(np.uint8)
    codes = codes.copy()
    codes[bad] = 0
    return scale, codes.reshape(x64.shape)


_GRID_FRAC = {f: [Fraction(float(g)) for g in positive_grid(f)] for f in FMTS}


def exact_code(v: float, fmt: str) -> int:
    """Exact rational RNE of a finite float64 ``v`` (already divided by the scale)."""
    grid = _GRID_FRAC[fmt]
    a = min(Fraction(abs(v)), grid[-1])
    i = bisect.bisect_left(grid, a)
    if grid[i] != a:
        lo, hi = grid[i - 1], grid[i]
        if a - lo < hi - a or (a - lo == hi - a and (i - 1) % 2 == 0):
            i -= 1
    neg = math.copysign(1.0, v) < 0
    if fmt == "int8":
        return (-i) & 0xFF if neg else i
    return i | (1 << (SPEC[fmt][0] - 1)) if neg else i


def oracle_values(mxa: mx.MXArray) -> np.ndarray:
    """Exact float64 value of every element, NaN in NaN blocks (decoded with ml_dtypes)."""
    if mxa.fmt == "int8":
        base = mxa.codes.view(np.int8).astype(np.float64) / 64.0
    else:
        base = mxa.codes.view(ML[mxa.fmt]).astype(np.float64)
    s = np.repeat(mxa.scales.astype(np.int64), mxa.block, axis=-1)
    v = np.ldexp(base, s - 127)
    v[s == 255] = np.nan
    return v


def oracle_bf16(mxa: mx.MXArray) -> np.ndarray:
    v = oracle_values(mxa)
    a = np.abs(v)
    with np.errstate(invalid="ignore", over="ignore"):
        out = a.astype(ml_dtypes.bfloat16).view(np.uint16).copy()
        out[a < 2.0**-126] = 0
        out[a > BF16_MAX] = 0x7F7F
    out |= np.where(np.signbit(v), 0x8000, 0).astype(np.uint16)
    out[np.isnan(v)] = 0x7FC0
    return out


def same_bits32(a: np.ndarray, b: np.ndarray) -> bool:
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    nan = np.isnan(a) & np.isnan(b)
    return bool(np.all((a.view(np.uint32) == b.view(np.uint32)) | nan))


def cast(x64: np.ndarray, dtype: str) -> np.ndarray:
    """x64 in dtype; float64 past float32's range becomes +-inf there too (a NaN block), as
    quantize refuses finite float64 values of 2**128 or more."""
    if dtype == "float64":
        x64 = np.where(np.isfinite(x64) & (np.abs(x64) >= 2.0**128), np.copysign(np.inf, x64), x64)
    with np.errstate(over="ignore"):
        return x64.astype(NP_DTYPE[dtype])


def check_against_oracle(x: np.ndarray, fmt: str, dtype: str, block: int):
    x64 = to_f64(x)
    got = mx.quantize(x, fmt, block)
    want_s, want_c = oracle_quantize(x64, fmt, dtype, block)
    assert got.fmt == fmt and got.block == block and got.shape == x.shape
    assert got.scales.dtype == np.uint8 and got.codes.dtype == np.uint8
    assert got.scales.shape == x.shape[:-1] + (x.shape[-1] // block,)
    np.testing.assert_array_equal(got.scales.reshape(-1), want_s)
    bad = np.nonzero(got.codes != want_c)
    assert not bad[0].size, (
        f"{fmt}/{dtype}/b{block}: first mismatch at {bad[0][0]}: x={x64[tuple(i[0] for i in bad)]!r} "
        f"got {got.codes[tuple(i[0] for i in bad)]:#x} want {want_c[tuple(i[0] for i in bad)]:#x}"
    )
    return got


# ------------------------------------------------------------------------------ the public name


def test_dnpu_mx_is_the_spec_module():
    """`dnpu.mx` is public (ARCHITECTURE.md): `import dnpu.mx` and `from dnpu.mx import ...`
    give dnpu.spec.mx itself, in this process and as the first import of a fresh one."""
    import dnpu
    import dnpu.mx
    import dnpu.spec.mx
    from dnpu.mx import quantize

    assert dnpu.mx is dnpu.spec.mx is mx and quantize is mx.quantize
    assert importlib.import_module("dnpu.mx") is mx
    code = ("from dnpu.mx import quantize\nimport dnpu.mx, dnpu.spec.mx\n"
            "assert dnpu.mx is dnpu.spec.mx and quantize is dnpu.spec.mx.quantize\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------------------ format table


def test_format_table_matches_spec():
    assert list(mx.FORMATS) == FMTS
    for name, (w, E, M, bias, emax, maxn) in SPEC.items():
        f = mx.format_info(name)
        assert (f.name, f.bits, f.ebits, f.mbits, f.bias, f.emax, f.max_normal) == (name, w, E, M, bias, emax, maxn)
        assert f is mx.format_info(name.upper())
        grid = positive_grid(name)
        assert grid[-1] == maxn and f.max_code == len(grid) - 1
        assert f.min_subnormal == grid[1]
        if name != "int8":
            assert w == 1 + E + M
            # emax is the exponent of max normal's binade
            assert 2.0**emax <= maxn < 2.0 ** (emax + 1)


def test_docs_tables_match_code():
    doc = pathlib.Path(__file__).resolve().parents[1] / "docs" / "MX.md"
    text = doc.read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0].strip("`") in SPEC and len(cells) == 9:
            rows[cells[0].strip("`")] = cells
    assert set(rows) == set(SPEC)
    for name, c in rows.items():
        f = mx.FORMATS[name]
        assert int(c[1]) == f.bits and int(c[2]) == f.ebits and int(c[3].split()[0]) == f.mbits
        assert c[4] == ("–" if f.kind == "int" else str(f.bias)) and int(c[5]) == f.emax
        assert float(Fraction(c[6])) == f.max_normal
        assert 2.0 ** int(c[7].split("^")[1]) == f.min_subnormal
    for w in (8, 6, 4):
        line = next(l for l in text.splitlines() if l.startswith(f"| w = {w} |"))
        sizes = [int(v) for v in line.strip("| ").split("|")[1:]]
        fmt = next(n for n, s in SPEC.items() if s[0] == w)
        assert sizes == [mx.group_nbytes(fmt, b) for b in BLOCKS]
    n = 32 * 126464
    for fmts in (("e4m3", "e5m2", "int8"), ("e3m2", "e2m3"), ("e2m1",)):
        assert f"{'/'.join(fmts)} {mx.packed_nbytes(n, fmts[0], 32):,} bytes" in " ".join(text.split())


def test_ml_dtypes_double_rounds_from_float64():
    """Why the oracle rounds to odd first: ml_dtypes goes float64 → float32 → narrow."""
    v = np.array([1.0625 + 2.0**-40])  # just above the e4m3 tie 1.0625 → RNE gives 1.125 (0x39)
    assert v.astype(ml_dtypes.float8_e4m3fn).view(np.uint8)[0] == 0x38  # double rounded
    assert round_to_odd_f32(v).astype(ml_dtypes.float8_e4m3fn).view(np.uint8)[0] == 0x39
    assert exact_code(float(v[0]), "e4m3") == 0x39


# ------------------------------------------------------------------------------ shared vectors


@pytest.fixture
def vectors(shared_data) -> dict:
    """The shared MX test vectors (conftest's shared_data: the repo's sibling ../shared/data)."""
    path = shared_data / "mx_test_vectors.json"
    if not path.exists():
        pytest.skip(f"shared test vectors not found at {path}")
    return json.loads(path.read_text())


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_shared_vectors(vectors, fmt, dtype):
    v = vectors[fmt]
    x = np.array(v["input"], NP_DTYPE[dtype])
    q = mx.quantize(x, fmt, block=len(x))
    assert q.scales.tolist() == [v["scale_byte"]]
    assert q.codes.tolist() == v["codes"]
    want = np.array(v["dequant"], np.float32)
    got = mx.dequantize(q)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))  # -0.0 != 0.0 here


def test_shared_vectors_cover_every_format(vectors):
    assert set(vectors) == set(FMTS)


# ------------------------------------------------------------------------------ hand-checked cases


def test_float64_rounds_once():
    """float64 input is rounded from its own bits: values just above a tie round up."""
    x = np.zeros(32)
    x[0] = 448.0  # pins the scale to 2**0 for e4m3
    x[1] = 1.0625 + 2.0**-40  # above the tie between 1.0 and 1.125
    x[2] = -(1.0625 + 2.0**-40)
    assert mx.quantize(x, "e4m3").codes[1:3].tolist() == [0x39, 0xB9]
    # as float32 the same number *is* the tie, which goes to even (1.0)
    assert mx.quantize(x.astype(np.float32), "e4m3").codes[1:3].tolist() == [0x38, 0xB8]
    y = np.zeros(8)
    y[0] = 6.0
    y[1] = 2.5 + 2.0**-45  # e2m1: above the 2.0/3.0 tie → 3.0 (code 5)
    assert mx.quantize(y, "e2m1", block=8).codes[1] == 5


@pytest.mark.parametrize("fmt", FMTS)
def test_all_zero_block_mixed_signs(fmt):
    x = np.zeros(32, np.float32)
    x[1::3] = -0.0
    q = mx.quantize(x, fmt)
    assert q.scales.tolist() == [0]
    sign = 0 if fmt == "int8" else 1 << (SPEC[fmt][0] - 1)  # int8 has no -0
    assert q.codes.tolist() == [sign if np.signbit(v) else 0 for v in x]
    assert same_bits32(mx.dequantize(q), x if fmt != "int8" else np.zeros(32, np.float32))


@pytest.mark.parametrize("fmt", FMTS)
def test_negative_that_rounds_to_zero_keeps_sign(fmt):
    x = np.zeros(32)
    x[0] = SPEC[fmt][5]
    x[1] = -SPEC[fmt][5] * 2.0**-40
    q = mx.quantize(x, fmt)
    assert q.scales[0] == 127
    assert q.codes[1] == (0 if fmt == "int8" else 1 << (SPEC[fmt][0] - 1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("special", [np.inf, -np.inf, np.nan])
def test_nonfinite_block_is_nan_block(dtype, special):
    x = np.linspace(-3, 3, 64)
    x[40] = special
    q = mx.quantize(cast(x, dtype), "e4m3")
    assert q.scales.tolist() == [1 - 8 + 127, 0xFF]  # first block: amax 3, floor(log2 3) = 1, emax 8
    assert q.codes[32:].tolist() == [0] * 32
    assert np.isnan(mx.dequantize(q)[32:]).all()
    assert (mx.dequantize_bf16(q)[32:] == 0x7FC0).all()


def test_input_subnormal_amax_gives_minimum_scale():
    x = np.zeros(32, np.float32)
    x[0] = np.float32(2.0**-146)  # float32 subnormals
    x[1] = -np.float32(2.0**-149)
    x[2] = np.float32(2.0**-140)
    for fmt in FMTS:
        q = mx.quantize(x, fmt)
        assert q.scales[0] == 0  # floor(log2) from the exponent field: 0 → clamped minimum
        # v = x * 2**127 = 2**-19, -2**-22: below half of every format's min subnormal → signed zero
        assert q.codes[0] == 0
        assert q.codes[1] == (0 if fmt == "int8" else 1 << (SPEC[fmt][0] - 1))
    # 2**-140 * 2**127 = 2**-13 = 8 e5m2 subnormal steps (2**-16)
    assert mx.quantize(x, "e5m2").codes[2] == 8


def test_scale_clamps_at_254_and_elements_saturate():
    # int8's emax is 0: float32's top binade needs the largest scale, 2**127.
    x = np.zeros(32)
    x[0] = 1.5 * 2.0**127
    x[1] = -float(np.finfo(np.float32).max)
    q = mx.quantize(x, "int8")
    assert q.scales[0] == 254
    assert q.codes[:2].tolist() == [96, (-127) & 0xFF]          # 1.5 * 64; -1.98 saturates to -127
    assert np.isfinite(mx.dequantize(q)).all()
    assert mx.dequantize_bf16(q)[:2].tolist() == [0x7F40, 0xFF7E]


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("big", [2.0**128, 1e300, -2.0**200, float(np.finfo(np.float64).max)])
def test_float64_beyond_float32_range(fmt, big):
    x = np.zeros(64)
    x[40] = big
    with pytest.raises(ValueError, match=r"quantize: block 1 \(elements 32\.\.63 of the flattened input\) "
                                         r"holds .*beyond the FP32 range \(\|x\| < 2\*\*128\)"):
        mx.quantize(x, fmt)
    x[40] = np.nextafter(2.0**128, 0)                          # the largest float64 below: quantized
    assert mx.quantize(x, fmt).scales[1] == min(254, 127 + 127 - SPEC[fmt][4])
    x[40] = np.inf                                            # non-finite: a NaN block, no error
    assert mx.quantize(x, fmt).scales[1] == mx.SCALE_NAN


@pytest.mark.parametrize("fmt", FMTS)
def test_max_normal_and_just_above_saturate(fmt):
    maxn = SPEC[fmt][5]
    emax = SPEC[fmt][4]
    x = np.zeros(32)
    x[:6] = [maxn, np.nextafter(maxn, np.inf), (maxn + 2.0 ** (emax + 1)) / 2, -maxn,
             -np.nextafter(2.0 ** (emax + 1), 0), maxn * (1 - 2.0**-20)]
    q = mx.quantize(x, fmt)
    top = positive_grid(fmt).size - 1
    neg = (-top) & 0xFF if fmt == "int8" else top | (1 << (SPEC[fmt][0] - 1))
    assert q.scales[0] == 127
    assert q.codes[:6].tolist() == [top, top, top, neg, neg, top]


# ------------------------------------------------------------------------------ property tests


def nudge(x: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Move finite nonzero elements ``steps`` (+1 away from zero / -1 toward) ulps in x's dtype."""
    u = {2: np.uint16, 4: np.uint32, 8: np.uint64}[x.dtype.itemsize]
    bits = x.view(u).copy()
    ok = np.isfinite(x.astype(np.float64)) & (x.astype(np.float64) != 0) & (steps != 0)
    bits[ok & (steps > 0)] += u(1)
    bits[ok & (steps < 0)] -= u(1)
    return bits.view(x.dtype)


KINDS = ["grid", "tie", "tie", "near", "rand", "sub", "zero", "max", "above", "tiny"]


@st.composite
def mx_input(draw, fmt: str, dtype: str):
    """(array, block): adversarial blocks for ``fmt`` in ``dtype``."""
    w, E, M, bias, emax, maxn = SPEC[fmt]
    grid = positive_grid(fmt)
    mids = (grid[:-1] + grid[1:]) / 2
    top = grid[grid >= 2.0**emax]
    block = draw(st.sampled_from(BLOCKS))
    nblocks = draw(st.integers(1, 3))
    hi = MAX_EXP[dtype] - emax  # the block's top binade may be the dtype's last one
    lo = -149 if dtype != "float64" else -1074
    values, steps = [], []
    for _ in range(nblocks):
        es = draw(st.one_of(st.integers(-8, 8), st.integers(lo - 4, hi), st.sampled_from([lo, lo + 20, -127 - emax, hi])))
        mode = draw(st.sampled_from(["mixed", "mixed", "mixed", "zeros", "one kind"]))
        kinds = {"mixed": st.sampled_from(KINDS), "zeros": st.just("zero")}.get(mode)
        if kinds is None:  # every element of one kind: all ties, all subnormal, ...
            kinds = st.just(draw(st.sampled_from(KINDS)))
        elems = draw(
            st.lists(
                st.tuples(kinds, st.integers(0, 2**20), st.booleans(), st.sampled_from([-1, 0, 1])),
                min_size=block,
                max_size=block,
            )
        )
        blk = []
        for kind, k, neg, step in elems:
            if kind == "grid":
                t = grid[k % grid.size]
            elif kind in ("tie", "near"):
                t = mids[k % mids.size]
            elif kind == "rand":
                t = maxn * 1.05 * k / 2**20
            elif kind == "sub":
                t = (k % 2 ** (M + 3)) * grid[1] / 4  # element-subnormal range, quarter steps
            elif kind == "zero":
                t = 0.0
            elif kind == "max":
                t = maxn
            elif kind == "above":
                t = maxn + (2.0 ** (emax + 1) - maxn) * (k % 1024) / 1024
            else:  # tiny: far below the block's quantum
                t = grid[1] * 2.0 ** -(k % 40 + 2)
            blk.append(-t if neg else t)
            steps.append(step if kind in ("near", "rand", "grid") else 0)
        if mode != "zeros" and draw(st.integers(0, 4)) > 0:  # usually pin the scale with a top-binade anchor
            blk[draw(st.integers(0, block - 1))] = float(top[draw(st.integers(0, top.size - 1))])
        if draw(st.integers(0, 9)) == 0:
            blk[draw(st.integers(0, block - 1))] = draw(st.sampled_from([np.inf, -np.inf, np.nan]))
        with np.errstate(over="ignore"):  # int8 "rand" can pass 2**1024 in float64: becomes Inf
            values.append(np.ldexp(np.array(blk), es))
    x = cast(np.concatenate(values), dtype)
    x = nudge(x, np.array(steps))
    shape = draw(st.sampled_from([(nblocks * block,), (1, nblocks * block), (nblocks, block)]))
    return x.reshape(shape), block


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=40, **SETTINGS)
@given(data=st.data())
def test_quantize_matches_oracle_adversarial(fmt, dtype, data):
    x, block = data.draw(mx_input(fmt, dtype))
    check_against_oracle(x, fmt, dtype, block)


@pytest.mark.parametrize("fmt", FMTS)
@settings(max_examples=60, **SETTINGS)
@given(data=st.data())
def test_quantize_matches_exact_rational_oracle_float64(fmt, data):
    """Third oracle, no ml_dtypes: exact Fraction rounding of every float64 element."""
    x, block = data.draw(mx_input(fmt, "float64"))
    q = mx.quantize(x, fmt, block)
    s, e, bad = oracle_scales(x, fmt, "float64", block)
    np.testing.assert_array_equal(q.scales.reshape(-1), s)
    xb = x.reshape(-1, block)
    cb = q.codes.reshape(-1, block)
    for b in range(xb.shape[0]):
        want = [0] * block if bad[b] else [exact_code(math.ldexp(float(v), -int(e[b])), fmt) for v in xb[b]]
        assert cb[b].tolist() == want, (b, xb[b])
    # and the rounded-to-odd ml_dtypes oracle agrees with the rational one
    np.testing.assert_array_equal(oracle_quantize(x, fmt, "float64", block)[1], q.codes)


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("block", BLOCKS)
def test_quantize_matches_oracle_random_magnitudes(fmt, dtype, block):
    """Volume: random normals, each block at its own magnitude, wide exponent range."""
    rng = np.random.default_rng(zlib.crc32(f"{fmt}/{dtype}/{block}".encode()))
    nb = 512
    lo, hi = (-150, 120) if dtype != "float64" else (-1080, 120)
    exps = rng.integers(lo, hi, nb)
    exps[: nb // 2] = rng.integers(-20, 20, nb // 2)  # half the blocks at ordinary magnitudes
    x64 = rng.standard_normal((nb, block)) * np.ldexp(1.0, exps)[:, None]
    x64[rng.random((nb, block)) < 0.02] = 0.0
    x64[rng.random((nb, block)) < 0.02] *= -0.0
    x64[rng.integers(0, nb, 4), rng.integers(0, block, 4)] = [np.inf, -np.inf, np.nan, np.nan]
    x = cast(x64, dtype).reshape(8, nb * block // 8)
    check_against_oracle(x, fmt, dtype, block)


# ------------------------------------------------------------------------------ dequantize


def random_mx(rng, fmt: str, shape, block: int, valid_only: bool) -> mx.MXArray:
    """Random codes (all codes, or only those quantize can produce) and random scales 0..255."""
    w = SPEC[fmt][0]
    ncodes = 1 << w
    codes = rng.integers(0, ncodes, shape).astype(np.uint8)
    if valid_only:
        top = positive_grid(fmt).size - 1
        mag = rng.integers(0, top + 1, shape)
        neg = rng.random(shape) < 0.5
        if fmt == "int8":
            codes = np.where(neg, (-mag) & 0xFF, mag).astype(np.uint8)
        else:
            codes = (mag | np.where(neg, 1 << (w - 1), 0)).astype(np.uint8)
    sshape = shape[:-1] + (shape[-1] // block,)
    scales = rng.integers(0, 256, sshape).astype(np.uint8)
    scales.reshape(-1)[:3] = [0, 254, 255][: scales.size]
    return mx.MXArray(fmt=fmt, block=block, shape=tuple(shape), scales=scales, codes=codes)


def every_code_every_scale(fmt: str) -> mx.MXArray:
    """Row r: every code of the format (repeated to a multiple of 64), all blocks at scale byte r."""
    n = 1 << SPEC[fmt][0]
    width = max(n, 64)
    codes = np.tile(np.arange(n, dtype=np.uint8), (256, width // n))
    scales = np.repeat(np.arange(256, dtype=np.uint8)[:, None], width // 64, axis=1)
    return mx.MXArray(fmt=fmt, block=64, shape=codes.shape, scales=scales, codes=codes)


@pytest.mark.parametrize("fmt", FMTS)
def test_dequantize_matches_oracle_all_codes_all_scales(fmt):
    """Every code at every scale byte (exhaustive)."""
    q = every_code_every_scale(fmt)
    codes = q.codes
    want = oracle_values(q)
    with np.errstate(over="ignore"):
        want32 = want.astype(np.float32)
    got = mx.dequantize(q)
    assert got.dtype == np.float32 and got.shape == codes.shape
    assert same_bits32(got, want32)
    assert np.isnan(got[255]).all()


@pytest.mark.parametrize("fmt", FMTS)
def test_dequantize_bf16_matches_rule_all_codes_all_scales(fmt):
    q = every_code_every_scale(fmt)
    got = mx.dequantize_bf16(q)
    assert got.dtype == np.uint16 and got.shape == q.codes.shape
    np.testing.assert_array_equal(got, oracle_bf16(q))
    assert (got[255] == 0x7FC0).all()


@pytest.mark.parametrize("fmt", FMTS)
def test_dequantize_bf16_exact_where_bf16_normal(fmt):
    """Wherever the exact value is a BF16 normal number, the BF16 result equals it exactly."""
    rng = np.random.default_rng(7)
    q = random_mx(rng, fmt, (64, 256), 32, valid_only=True)
    v = oracle_values(q)
    got = mx.dequantize_bf16(q).view(ml_dtypes.bfloat16).astype(np.float64)
    normal = (np.abs(v) >= 2.0**-126) & (np.abs(v) <= BF16_MAX)
    assert normal.sum() > 1000
    np.testing.assert_array_equal(got[normal], v[normal])
    assert (np.signbit(got[normal]) == np.signbit(v[normal])).all()
    # every code value fits BF16's 8 significant bits
    for c in positive_grid(fmt):
        m, _ = math.frexp(c)
        assert (m * 2**8) == int(m * 2**8)


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("block", [8, 64])
def test_dequantize_random_shapes_match_oracles(fmt, block):
    rng = np.random.default_rng(block)
    q = random_mx(rng, fmt, (3, 2, 4 * block), block, valid_only=False)
    want = oracle_values(q)
    with np.errstate(over="ignore"):
        assert same_bits32(mx.dequantize(q), want.astype(np.float32))
    np.testing.assert_array_equal(mx.dequantize_bf16(q), oracle_bf16(q))


@pytest.mark.parametrize("fmt", FMTS)
def test_dequantize_of_quantize_is_the_rounded_value(fmt):
    """Round trip through the oracle: dequantize(quantize(x)) = code value * 2**(scale-127)."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((16, 128)) * 10.0).astype(np.float32)
    q = mx.quantize(x, fmt)
    s, e, _ = oracle_scales(x.astype(np.float64), fmt, "float32", 32)
    got = mx.dequantize(q).astype(np.float64).reshape(-1, 32)
    v = np.clip(np.ldexp(x.astype(np.float64).reshape(-1, 32), -e[:, None]), -SPEC[fmt][5], SPEC[fmt][5])
    grid = positive_grid(fmt)
    # each dequantized value is the nearest grid point (times the scale) to v
    dist = np.abs(np.abs(v)[..., None] - grid).min(axis=-1)
    np.testing.assert_array_equal(np.abs(np.abs(got) * np.ldexp(1.0, -e)[:, None] - np.abs(v)), dist)


# ------------------------------------------------------------------------------ torch input


def test_torch_inputs_match_numpy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((4, 96)) * np.ldexp(1.0, rng.integers(-30, 30, (4, 1)))).astype(np.float32)
    x[0, :5] = [0.0, -0.0, 448.0, -1e-30, 3.0]
    for fmt in ("e4m3", "e2m1", "int8"):
        ref = mx.quantize(x, fmt)
        for t in (torch.from_numpy(x), torch.from_numpy(x.astype(np.float64)), torch.from_numpy(x).requires_grad_(True)):
            got = mx.quantize(t, fmt)
            np.testing.assert_array_equal(got.scales, ref.scales)
            np.testing.assert_array_equal(got.codes, ref.codes)
        # non-contiguous tensor
        tt = torch.from_numpy(np.ascontiguousarray(x.T)).T
        assert not tt.is_contiguous()
        np.testing.assert_array_equal(mx.quantize(tt, fmt).codes, ref.codes)


def test_torch_bfloat16_uses_exact_bits():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    x64 = rng.standard_normal((2, 64)) * 7.0
    x64[0, 0] = -0.0
    x64[0, 1] = 2.0**-130  # bf16 subnormal
    tb = torch.tensor(x64, dtype=torch.bfloat16)
    nb = tb.view(torch.int16).numpy().view(np.uint16).view(ml_dtypes.bfloat16)  # same bits as numpy bf16
    for fmt in FMTS:
        got = mx.quantize(tb, fmt, block=32)
        ref = mx.quantize(nb, fmt, block=32)
        np.testing.assert_array_equal(got.codes, ref.codes)
        np.testing.assert_array_equal(got.scales, ref.scales)
        check_against_oracle(nb, fmt, "bfloat16", 32)


def test_torch_bad_dtype_rejected():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="cast to float32"):
        mx.quantize(torch.zeros(32, dtype=torch.float16), "e4m3")
    with pytest.raises(ValueError, match="cast to float32"):
        mx.quantize(torch.zeros(32, dtype=torch.int32), "e4m3")


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "x, fmt, block, fragment",
    [
        (np.zeros(32, np.int32), "e4m3", 32, "cast to float32"),
        (np.zeros(32, np.float16), "e4m3", 32, "float16 and integer arrays are not accepted"),
        (np.zeros((2, 48), np.float32), "e4m3", 32, "pad the last dimension to a multiple of 32"),
        (np.zeros(24, np.float32), "e2m1", 16, "pad the last dimension to a multiple of 16"),
        (np.float32(1.0), "e4m3", 32, "at least one dimension"),
        (np.zeros(32, np.float32), "e4m4", 32, "unknown MX element format 'e4m4': use one of e4m3"),
        (np.zeros(32, np.float32), "e4m3", 12, "power of two from 8 to 64"),
        (np.zeros(256, np.float32), "e4m3", 128, "power of two from 8 to 64"),
        (np.zeros(32, np.float32), "e4m3", 4, "power of two from 8 to 64"),
        (np.zeros(32, np.float32), "e4m3", 32.0, "must be an int"),
        (np.zeros(32, np.float32), "e4m3", True, "must be an int"),
        (np.array(["a"] * 32), "e4m3", 32, "cast to float32"),
    ],
)
def test_bad_input_raises_helpful_valueerror(x, fmt, block, fragment):
    with pytest.raises(ValueError, match=fragment):
        mx.quantize(x, fmt, block)


def test_format_info_unknown():
    with pytest.raises(ValueError, match="use one of e4m3, e5m2, e3m2, e2m3, e2m1, int8"):
        mx.format_info("fp8")


def test_dequantize_rejects_codes_wider_than_format():
    q = mx.quantize(np.ones(32, np.float32), "e2m1")
    q.codes[0] = 0x1F
    with pytest.raises(ValueError, match="do not fit e2m1's 4 bits"):
        mx.dequantize(q)


def test_quantize_accepts_empty_and_multi_dim():
    q = mx.quantize(np.zeros((0, 64), np.float32), "e4m3")
    assert q.codes.shape == (0, 64) and q.scales.shape == (0, 2)
    x = np.arange(2 * 3 * 64, dtype=np.float32).reshape(2, 3, 64)
    q = mx.quantize(x, "e5m2", block=16)
    assert q.codes.shape == (2, 3, 64) and q.scales.shape == (2, 3, 4)
    np.testing.assert_array_equal(q.codes.reshape(-1), mx.quantize(x.reshape(-1), "e5m2", 16).codes)
