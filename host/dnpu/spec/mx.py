"""OCP Microscaling (MX v1.0) codec: quantize, dequantize, and the packed memory layout.

One table, :data:`FORMATS`, holds every fact about the element formats; the
quantizer, the dequantizer and the packer derive from it, and a test checks the
tables in ``docs/MX.md`` against it.

Numerics (the one definition the emulator and the RTL implement bit for bit):

* A block is ``block`` consecutive elements along the last dimension
  (``block`` is a power of two, 8..64, default 32).
* Scale (E8M0 byte) = ``clamp(floor(log2 amax) - emax, -127, 127) + 127`` where
  ``floor(log2 amax)`` is read from the exponent field of the *input* float
  type; a zero or input-subnormal ``amax`` gives the clamped minimum, so an
  all-zero block has scale 0x00.  A block holding any NaN or +-Inf gets scale
  0xFF and all-zero codes.
* Element: ``v = x / 2**(scale-127)`` (exact), clamped to +-max normal, rounded
  to nearest, ties to even, into the element format (subnormals included).
  The sign is always kept: -0.0 and negatives that round to zero get the sign
  bit (e4m3 0x80).  INT8 is two's complement ``c * 2**-6``, codes -127..127
  (no negative zero there: a negative that rounds to zero is 0x00).
* float64 input is rounded from its float64 bits (never pre-rounded to float32,
  which could round twice); float32 and bfloat16 inputs work in float32.  A finite
  float64 value of magnitude 2**128 or more (beyond float32's range, which no NPU
  tensor leaves) is a ValueError, not a saturated block: the scale could not cover it.
  NaN and +-Inf still make a NaN block, as on the NPU.

The quantizer is vectorised integer/IEEE bit manipulation in NumPy; it does not
use ml_dtypes casts (those are the tests' independent oracle).
"""

from __future__ import annotations

import math
import operator
import sys
from dataclasses import dataclass

import numpy as np

__all__ = [
    "MXFormat",
    "FORMATS",
    "format_info",
    "MXArray",
    "quantize",
    "dequantize",
    "dequantize_bf16",
    "pack",
    "unpack",
    "packed_nbytes",
    "stream_nbytes",
    "group_elements",
    "group_nbytes",
    "GROUP_BLOCKS",
    "PACK_ALIGN",
    "align_up",
    "stream_align",
    "BLOCK_SIZES",
    "DEFAULT_BLOCK",
    "SCALE_NAN",
    "BF16_NAN",
    "BF16_MAX",
]


# --------------------------------------------------------------------------- format table


@dataclass(frozen=True)
class MXFormat:
    """Facts about one MX element format.

    ``kind`` is ``"float"`` (sign | exponent | mantissa, IEEE-style subnormals)
    or ``"int"`` (two's complement, value ``code * 2**-mbits``).
    ``special`` says which codes are not finite numbers: ``"none"``; ``"fn"``
    (only S.1111.111 is NaN, as E4M3); ``"ieee"`` (all-ones exponent is
    Inf/NaN, as E5M2).  The quantizer never produces a special code.
    """

    name: str
    bits: int  # w: bits per element code
    ebits: int  # E: exponent bits (0 for int)
    mbits: int  # M: mantissa bits (for int: fraction bits)
    bias: int  # exponent bias (0 for int)
    emax: int  # exponent of the largest binade, used by the scale rule
    max_normal: float  # largest finite magnitude
    kind: str = "float"
    special: str = "none"

    @property
    def emin(self) -> int:
        """Exponent of the smallest normal binade (float formats)."""
        return 1 - self.bias

    @property
    def min_subnormal(self) -> float:
        """Smallest positive magnitude (float: 2**(emin-M); int8: 2**-6)."""
        if self.kind == "int":
            return 2.0 ** -self.mbits
        return 2.0 ** (self.emin - self.mbits)

    @property
    def code_mask(self) -> int:
        return (1 << self.bits) - 1

    @property
    def max_code(self) -> int:
        """Code of +max normal (int8: 127)."""
        if self.kind == "int":
            return round(self.max_normal * 2**self.mbits)
        return _positive_code(self, self.max_normal)


FORMATS: dict[str, MXFormat] = {
    f.name: f
    for f in (
        MXFormat("e4m3", bits=8, ebits=4, mbits=3, bias=7, emax=8, max_normal=448.0, special="fn"),
        MXFormat("e5m2", bits=8, ebits=5, mbits=2, bias=15, emax=15, max_normal=57344.0, special="ieee"),
        MXFormat("e3m2", bits=6, ebits=3, mbits=2, bias=3, emax=4, max_normal=28.0),
        MXFormat("e2m3", bits=6, ebits=2, mbits=3, bias=1, emax=2, max_normal=7.5),
        MXFormat("e2m1", bits=4, ebits=2, mbits=1, bias=1, emax=2, max_normal=6.0),
        MXFormat("int8", bits=8, ebits=0, mbits=6, bias=0, emax=0, max_normal=127 / 64, kind="int"),
    )
}

BLOCK_SIZES = (8, 16, 32, 64)
DEFAULT_BLOCK = 32
GROUP_BLOCKS = 16  # blocks per packed group: 16 scale bytes, then the 16 blocks' codes
PACK_ALIGN = 64  # packed buffers are zero-padded to a multiple of this (one 512-bit AXI beat)
SCALE_NAN = 0xFF
BF16_NAN = 0x7FC0
BF16_MAX = 0x7F7F


def format_info(name: str) -> MXFormat:
    """The :class:`MXFormat` for ``name`` (case-insensitive); ValueError if unknown."""
    if isinstance(name, MXFormat):
        name = name.name
    if not isinstance(name, str) or name.lower() not in FORMATS:
        raise ValueError(
            f"unknown MX element format {name!r}: use one of {', '.join(FORMATS)}"
        )
    return FORMATS[name.lower()]


def _positive_code(f: MXFormat, value: float) -> int:
    """Code of a representable non-negative float-format value (table building only)."""
    m, e = math.frexp(value)  # value = m * 2**e, m in [0.5, 1)
    exp = e - 1
    if exp < f.emin:
        return round(value / 2.0 ** (f.emin - f.mbits))
    return ((exp + f.bias) << f.mbits) | round((2 * m - 1) * 2**f.mbits)


def _decode_table(f: MXFormat) -> np.ndarray:
    """float64 value of every code 0..2**w-1 (specials as NaN/Inf)."""
    codes = np.arange(1 << f.bits)
    if f.kind == "int":
        signed = np.where(codes >= 1 << (f.bits - 1), codes - (1 << f.bits), codes)
        return signed.astype(np.float64) * 2.0 ** -f.mbits
    sign = codes >> (f.bits - 1)
    ef = (codes >> f.mbits) & ((1 << f.ebits) - 1)
    mant = codes & ((1 << f.mbits) - 1)
    mag = np.where(
        ef == 0,
        np.ldexp(mant.astype(np.float64), f.emin - f.mbits),
        np.ldexp(1.0 + mant / 2.0**f.mbits, ef - f.bias),
    )
    if f.special == "fn":  # all-ones exponent and mantissa is NaN
        mag = np.where((ef == (1 << f.ebits) - 1) & (mant == (1 << f.mbits) - 1), np.nan, mag)
    elif f.special == "ieee":  # all-ones exponent: Inf (mantissa 0) or NaN
        top = ef == (1 << f.ebits) - 1
        mag = np.where(top, np.where(mant == 0, np.inf, np.nan), mag)
    return np.where(sign == 1, -mag, mag)


_DECODE = {name: _decode_table(f) for name, f in FORMATS.items()}


def _check_block(block) -> int:
    if isinstance(block, (bool, np.bool_)) or not isinstance(block, (int, np.integer)):
        raise ValueError(f"block must be an int, one of {BLOCK_SIZES}; got {block!r}")
    block = int(block)
    if block not in BLOCK_SIZES:
        raise ValueError(f"block must be a power of two from 8 to 64 ({BLOCK_SIZES}); got {block}")
    return block


# --------------------------------------------------------------------------- MXArray


@dataclass(eq=False)
class MXArray:
    """An MX-quantized tensor, unpacked: one scale byte per block, one code byte per element.

    ``shape`` is the logical shape; ``scales`` has shape ``shape[:-1] + (shape[-1]//block,)``
    and ``codes`` has shape ``shape`` (dtype uint8; for w < 8 the code is in the low w bits).
    """

    fmt: str
    block: int
    shape: tuple
    scales: np.ndarray
    codes: np.ndarray

    @property
    def format(self) -> MXFormat:
        return FORMATS[self.fmt]

    @property
    def nblocks(self) -> int:
        return int(self.scales.size)

    def __repr__(self) -> str:
        return f"MXArray(fmt={self.fmt!r}, block={self.block}, shape={self.shape})"


def _check_mx(mx: MXArray) -> MXFormat:
    if not isinstance(mx, MXArray):
        raise ValueError(f"expected an MXArray (from dnpu.spec.mx.quantize or unpack); got {type(mx).__name__}")
    f = format_info(mx.fmt)
    block = _check_block(mx.block)
    shape = tuple(mx.shape)
    if not shape or shape[-1] % block:
        raise ValueError(f"MXArray shape {shape} has no last dimension that is a multiple of block {block}")
    sshape = shape[:-1] + (shape[-1] // block,)
    for what, arr, want in (("scales", mx.scales, sshape), ("codes", mx.codes, shape)):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or arr.shape != want:
            got = (getattr(arr, "dtype", type(arr).__name__), getattr(arr, "shape", None))
            raise ValueError(f"MXArray.{what} must be uint8 of shape {want}; got {got}")
    return f


# --------------------------------------------------------------------------- input conversion

# float type → (uint type, mantissa bits p, exponent bias B)
_FLOAT = {
    np.dtype(np.float32): (np.uint32, 23, 127),
    np.dtype(np.float64): (np.uint64, 52, 1023),
}

_ACCEPTED = "float32, float64 or bfloat16 (NumPy/ml_dtypes or torch)"


def _bf16_bits_to_f32(u16: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns → float32 (exact: bfloat16 is the top half of float32)."""
    out = u16.astype(np.uint32)
    out <<= 16
    return out.view(np.float32)


def _to_numpy(x) -> np.ndarray:
    """float32/float64 ndarray (bfloat16 widened exactly to float32), C-contiguous, native order."""
    torch = sys.modules.get("torch")  # torch is only ever imported by the caller
    if torch is not None and isinstance(x, torch.Tensor):
        t = x.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        t = t.contiguous()
        if t.dtype == torch.bfloat16:
            return _bf16_bits_to_f32(t.view(torch.int16).numpy().view(np.uint16))
        if t.dtype in (torch.float32, torch.float64):
            return t.numpy()
        raise ValueError(
            f"quantize accepts {_ACCEPTED}; got torch {t.dtype}: cast to float32 first "
            "(e.g. x.float()); float16 is not accepted"
        )
    arr = np.asarray(x)
    if arr.dtype.name == "bfloat16" and arr.dtype.itemsize == 2:
        return _bf16_bits_to_f32(np.asarray(arr, order="C").view(np.uint16))
    if arr.dtype.kind == "f" and arr.dtype.itemsize in (4, 8):
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        return np.asarray(arr, order="C")  # (np.ascontiguousarray would make 0-d arrays 1-d)
    raise ValueError(
        f"quantize accepts {_ACCEPTED}; got dtype {arr.dtype}: cast to float32 first "
        "(float16 and integer arrays are not accepted)"
    )


# --------------------------------------------------------------------------- quantize


# floor(log2 |x|) of the largest finite float32: float64 inputs must stay below 2**128.
_MAX_LOG2 = 127


def quantize(x, fmt: str, block: int = DEFAULT_BLOCK) -> MXArray:
    """Quantize ``x`` to MX format ``fmt`` with ``block`` elements per shared scale.

    ``x`` is a float32/float64/bfloat16 NumPy array or torch tensor whose last
    dimension is a multiple of ``block``.  See the module docstring for the rule.
    Raises ValueError (only) for a bad format, block, dtype or shape, and for a finite
    float64 value of magnitude 2**128 or more (beyond float32's range).
    """
    f = format_info(fmt)
    block = _check_block(block)
    arr = _to_numpy(x)
    if arr.ndim == 0:
        raise ValueError(
            f"got a 0-d array (a scalar): quantize needs at least one dimension, the last a multiple "
            f"of block {block}; pad and reshape it, e.g. to ({block},)"
        )
    shape = arr.shape
    if shape[-1] % block:
        raise ValueError(
            f"last dimension {shape[-1]} is not a multiple of block {block}: "
            f"pad the last dimension to a multiple of {block}"
        )
    n = arr.size
    nb = n // block
    scales_shape = shape[:-1] + (shape[-1] // block,)
    utype, p, bias_f = _FLOAT[arr.dtype]
    nbits = 8 * arr.dtype.itemsize
    xbits = arr.reshape(nb, block).view(utype)

    ftype = arr.dtype.type
    with np.errstate(all="ignore"):
        # |x| as bits: the working buffer for everything below.  Elementwise passes run on
        # flat views (faster than (nb, block) in NumPy); only the reduction and the
        # per-block multiply use the 2-D shape.
        work = np.bitwise_and(xbits, utype((1 << (nbits - 1)) - 1))
        flat = work.reshape(-1)
        amax = work.max(axis=1) if nb else np.zeros(0, utype)
        expmask = utype(((1 << (nbits - 1 - p)) - 1) << p)
        nan_block = amax >= expmask  # Inf or NaN somewhere in the block
        # floor(log2 amax) from the exponent field; 0 (zero/subnormal) → clamped minimum
        e = (amax >> utype(p)).astype(np.int64) - bias_f - f.emax
        # Only float64 reaches past float32's binades: there the clamped scale would quietly
        # saturate the block to a value no NPU tensor (BF16, FP32) holds (inf once dequantized).
        big = (e + f.emax > _MAX_LOG2) & ~nan_block
        if big.any():
            i = int(np.argmax(big))
            raise ValueError(
                f"quantize: block {i} (elements {i * block}..{i * block + block - 1} of the flattened "
                f"input) holds {float(np.abs(arr.reshape(nb, block)[i]).max()):.9g}, beyond the FP32 range "
                f"(|x| < 2**{_MAX_LOG2 + 1}) that MX scales cover; scale or clip the input first"
            )
        np.clip(e, -127, 127, out=e)
        scales = (e + 127).astype(np.uint8)
        scales[nan_block] = SCALE_NAN

        # T = |x| * 2**-e: exact (a power of two; whatever it underflows rounds to 0 anyway)
        mul = np.ldexp(1.0, -e).astype(ftype)
        np.multiply(work.view(ftype), mul[:, None], out=work.view(ftype))
        t = flat.view(ftype)
        # saturate: non-negative floats order like their bits (Inf/NaN, in NaN blocks only, too)
        np.minimum(flat, utype(np.array(f.max_normal, ftype).view(utype)), out=flat)
        sign = np.signbit(arr.reshape(-1)).view(np.uint8)  # 1 where x is negative (or -0.0)

        codes = np.empty(n, np.uint8)
        if f.kind == "int":
            # Adding C = 2**(p-M) rounds T (< 2) to a multiple of 2**-M, ties to even; the low
            # bits of fl(T + C) are then q = round(T * 2**M) in 0..127 (bits(C) ends in 0x00).
            np.add(t, ftype(2.0 ** (p - f.mbits)), out=t)
            np.copyto(codes, flat, casting="unsafe")
            codes ^= np.negative(sign)  # two's complement negation where negative:
            codes += sign  # (q ^ 0xFF) + 1 mod 256; a negative zero becomes 0x00
        else:
            # Per element, C = 2**(max(eT, emin) + p - M) has ulp(C) = the target's quantum in
            # T's binade (its subnormal quantum below emin), so fl(T + C) = C + q*ulp(C) with
            # q = RNE(T / ulp(C)) in 0..2**(M+1), and with Ef = max(exponent field of T, emin+B):
            #   code = q + ((Ef - B - emin) << M)
            #        = bits(S) - bits(C) + (bits(C) >> (p-M)) - ((p - M + B + emin) << M).
            # bits(C) ends in a zero byte, so mod 256: code = bits(S) + (bits(C) >> (p-M)) + K.
            cbits = np.bitwise_and(flat, expmask)
            np.maximum(cbits, utype((f.emin + bias_f) << p), out=cbits)
            cbits += utype((p - f.mbits) << p)
            np.add(t, cbits.view(ftype), out=t)
            cbits >>= utype(p - f.mbits)
            cbits += flat
            np.copyto(codes, cbits, casting="unsafe")
            k = (-((p - f.mbits + bias_f + f.emin) << f.mbits)) & 0xFF
            if k:
                codes += np.uint8(k)
            sign <<= np.uint8(f.bits - 1)
            codes |= sign
        codes = codes.reshape(nb, block)
        if nan_block.any():
            codes[nan_block] = 0

    return MXArray(
        fmt=f.name,
        block=block,
        shape=tuple(shape),
        scales=scales.reshape(scales_shape),
        codes=codes.reshape(shape),
    )


# --------------------------------------------------------------------------- dequantize


# Both dequantizers are a lookup in a (scale byte, code) → result table of 256 x 256
# entries per format, built once from the exact float64 value code * 2**(scale-127).


def _exact_table(f: MXFormat) -> np.ndarray:
    """float64 (256, 256): [scale byte, code] → exact value (NaN in row 0xFF)."""
    dec = np.full(256, np.nan)
    dec[: 1 << f.bits] = _DECODE[f.name]  # codes wider than w are rejected before lookup
    v = np.ldexp(1.0, np.arange(256) - 127)[:, None] * dec[None, :]  # exact: |v| in [2**-143, 2**143]
    v[SCALE_NAN, :] = np.nan
    return v


def _bf16_rule(v: np.ndarray) -> np.ndarray:
    """The BF16 rule (see dequantize_bf16) on exact float64 values → uint16 bit patterns."""
    b = v.view(np.uint64)
    sign = (b >> np.uint64(48)).astype(np.uint16) & np.uint16(0x8000)
    bexp = ((b >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.int64) - (1023 - 127)
    mant = ((b >> np.uint64(45)) & np.uint64(0x7F)).astype(np.uint16)  # the top 7 fraction bits
    assert not (b[np.isfinite(v)] & np.uint64((1 << 45) - 1)).any()  # <= 8 significant bits: exact
    mag = (np.clip(bexp, 0, 255).astype(np.uint16) << np.uint16(7)) | mant
    mag[bexp <= 0] = 0  # below BF16's min normal 2**-126 (or zero): zero, sign kept
    mag[bexp >= 255] = BF16_MAX  # beyond BF16's max finite (or an Inf code): saturate
    out = mag | sign
    out[np.isnan(v)] = BF16_NAN  # NaN block (or a NaN code)
    return out


_TABLES: dict[tuple[str, str], np.ndarray] = {}


def _table(f: MXFormat, kind: str) -> np.ndarray:
    key = (f.name, kind)
    if key not in _TABLES:
        v = _exact_table(f)
        if kind == "f32":
            with np.errstate(over="ignore"):
                t = v.astype(np.float32)  # IEEE: beyond float32 → +-inf, tiny → subnormal/0
        else:
            t = _bf16_rule(v)
        _TABLES[key] = t.reshape(-1)
    return _TABLES[key]


def _lookup(mx: MXArray, kind: str) -> np.ndarray:
    f = _check_mx(mx)
    nb = mx.scales.size
    codes = mx.codes.reshape(nb, mx.block)
    if f.bits < 8 and codes.size and int(codes.max()) > f.code_mask:
        raise ValueError(f"codes do not fit {f.name}'s {f.bits} bits (max {int(codes.max()):#x})")
    idx = np.empty((nb, mx.block), np.uint16)  # scale byte << 8 | code
    np.bitwise_or(codes, (mx.scales.reshape(nb, 1).astype(np.uint16) << np.uint16(8)), out=idx)
    return np.take(_table(f, kind), idx).reshape(mx.shape)


def dequantize(mx: MXArray) -> np.ndarray:
    """float32 array of shape ``mx.shape``: ``code * 2**(scale-127)`` computed exactly in
    float64, then cast to float32 (magnitudes beyond float32 become +-inf, IEEE rounding).
    A NaN block (scale 0xFF) dequantizes to NaN everywhere."""
    return _lookup(mx, "f32")


def dequantize_bf16(mx: MXArray) -> np.ndarray:
    """BF16 bit patterns (uint16, shape ``mx.shape``) of the dequantized tensor.

    The one rule (the RTL dequantizer implements exactly this): take the exact value
    ``v = code * 2**(scale-127)``.

    * If ``|v|`` is a BF16 normal number it is returned exactly (a code has at most 8
      significant bits, so it always fits BF16's 8).
    * ``|v|`` above BF16's largest finite (0x7F7F) saturates to +-0x7F7F.
    * ``|v|`` below 2**-126 (BF16's smallest normal) flushes to a zero that keeps
      the sign (0x0000 / 0x8000); so do zero codes.
    * A NaN block (scale 0xFF) gives 0x7FC0 for every element.

    Codes quantize never writes (E4M3 S.1111.111, E5M2 exponent 11111) follow the same
    rule with v = NaN → 0x7FC0 and v = +-Inf → +-0x7F7F.
    """
    return _lookup(mx, "bf16")


# --------------------------------------------------------------------------- packed layout


def align_up(n: int, a: int = PACK_ALIGN) -> int:
    """``n`` rounded up to a multiple of ``a`` (default PACK_ALIGN: the start and size of
    every packed buffer and every device buffer)."""
    return -(-n // a) * a


def stream_align(beat_bytes: int) -> int:
    """The byte alignment of an MX stream's start address on a memory port of ``beat_bytes``
    a beat: a group boundary (its GROUP_BLOCKS scale bytes) in byte 0 of an AXI beat."""
    return max(GROUP_BLOCKS, beat_bytes)


def group_elements(fmt: str, block: int = DEFAULT_BLOCK) -> int:
    """Elements per packed group (GROUP_BLOCKS blocks)."""
    format_info(fmt)
    return GROUP_BLOCKS * _check_block(block)


def group_nbytes(fmt: str, block: int = DEFAULT_BLOCK) -> int:
    """Bytes per packed group: 16 scale bytes + 16 blocks of block*w/8 code bytes."""
    f = format_info(fmt)
    return GROUP_BLOCKS + GROUP_BLOCKS * _check_block(block) * f.bits // 8


def packed_nbytes(n_elements: int, fmt: str, block: int = DEFAULT_BLOCK) -> int:
    """Size of :func:`pack`'s buffer for ``n_elements`` elements:
    ``ceil(nb/16) * group_nbytes`` rounded up to a multiple of PACK_ALIGN (64)."""
    block = _check_block(block)
    n_elements = int(n_elements)
    if n_elements < 0 or n_elements % block:
        raise ValueError(f"n_elements {n_elements} must be a non-negative multiple of block {block}")
    groups = -(-(n_elements // block) // GROUP_BLOCKS)
    return align_up(groups * group_nbytes(fmt, block))


def stream_nbytes(n_elements: int, fmt: str, block: int = DEFAULT_BLOCK) -> int:
    """Bytes the NPU reads of a packed stream of ``n_elements`` elements, from its first
    group to its last block: 16 scale bytes per group begun, then the codes of the
    ``n_elements / block`` blocks (a last partial group is read only as far as its blocks
    go; the padding of :func:`packed_nbytes` is not read)."""
    block = _check_block(block)
    n_elements = int(n_elements)
    if n_elements < 0 or n_elements % block:
        raise ValueError(f"n_elements {n_elements} must be a non-negative multiple of block {block}")
    nb = n_elements // block
    return GROUP_BLOCKS * -(-nb // GROUP_BLOCKS) + n_elements * format_info(fmt).bits // 8


def _pack_codes(c: np.ndarray, w: int) -> np.ndarray:
    """Little-endian bitstream of w-bit codes (len(c) * w divisible by 8... by 24 for w=6)."""
    if w == 8:
        return c
    if w == 4:
        c = c.reshape(-1, 2)
        return c[:, 0] | (c[:, 1] << np.uint8(4))
    if w == 6:  # 4 codes → 3 bytes: bits [0,6) [6,12) [12,18) [18,24)
        c = c.reshape(-1, 4)
        out = np.empty((c.shape[0], 3), np.uint8)
        out[:, 0] = c[:, 0] | (c[:, 1] << np.uint8(6))
        out[:, 1] = (c[:, 1] >> np.uint8(2)) | (c[:, 2] << np.uint8(4))
        out[:, 2] = (c[:, 2] >> np.uint8(4)) | (c[:, 3] << np.uint8(2))
        return out.reshape(-1)
    raise AssertionError(w)


def _unpack_codes(b: np.ndarray, w: int) -> np.ndarray:
    if w == 8:
        return b.copy()
    if w == 4:
        out = np.empty((b.size, 2), np.uint8)
        out[:, 0] = b & np.uint8(0x0F)
        out[:, 1] = b >> np.uint8(4)
        return out.reshape(-1)
    if w == 6:
        b = b.reshape(-1, 3)
        out = np.empty((b.shape[0], 4), np.uint8)
        out[:, 0] = b[:, 0] & np.uint8(0x3F)
        out[:, 1] = (b[:, 0] >> np.uint8(6)) | ((b[:, 1] & np.uint8(0x0F)) << np.uint8(2))
        out[:, 2] = (b[:, 1] >> np.uint8(4)) | ((b[:, 2] & np.uint8(0x03)) << np.uint8(4))
        out[:, 3] = b[:, 2] >> np.uint8(2)
        return out.reshape(-1)
    raise AssertionError(w)


def pack(mx: MXArray) -> bytes:
    """The packed memory image the NPU reads (layout in docs/MX.md).

    Blocks b0..b(nb-1) in row-major order, in groups of 16: each group is 16 scale
    bytes (byte j = scale of the group's block j) then the 16 blocks' codes, each
    block a little-endian bitstream (element i in bits [i*w, i*w+w)).  The last group
    is padded with scale 0x00 / zero-code blocks, and the buffer with zero bytes to a
    multiple of 64 (:func:`packed_nbytes`).
    """
    f = _check_mx(mx)
    block = mx.block
    n = mx.codes.size
    nb = mx.scales.size
    codes = mx.codes.reshape(-1)
    if n and int(codes.max()) > f.code_mask:
        raise ValueError(f"codes do not fit {f.name}'s {f.bits} bits (max {int(codes.max()):#x})")
    groups = -(-nb // GROUP_BLOCKS)
    gbytes = group_nbytes(f.name, block)
    out = np.zeros(packed_nbytes(n, f.name, block), np.uint8)
    body = out[: groups * gbytes].reshape(groups, gbytes)
    s = np.zeros(groups * GROUP_BLOCKS, np.uint8)
    s[:nb] = mx.scales.reshape(-1)
    body[:, :GROUP_BLOCKS] = s.reshape(groups, GROUP_BLOCKS)
    c = np.zeros(groups * GROUP_BLOCKS * block, np.uint8)
    c[:n] = codes
    body[:, GROUP_BLOCKS:] = _pack_codes(c, f.bits).reshape(groups, gbytes - GROUP_BLOCKS)
    return out.tobytes()


def unpack(buf, shape, fmt: str, block: int = DEFAULT_BLOCK) -> MXArray:
    """Inverse of :func:`pack`: the MXArray of logical ``shape`` stored in ``buf``
    (bytes-like or uint8 array); the padding after the last group is not read.  Raises
    ValueError (only) for an unknown format, a bad block or shape, or a length other than
    packed_nbytes."""
    f = format_info(fmt)
    block = _check_block(block)
    dims = shape if isinstance(shape, (tuple, list)) else (shape,)
    try:                       # whole numbers only: 2.5, True or "4" are mistakes, not sizes
        if any(isinstance(d, bool) for d in dims):
            raise TypeError
        shape = tuple(operator.index(d) for d in dims)
    except TypeError:
        raise ValueError(f"shape {shape!r}: expected an int or a tuple of ints") from None
    if not shape or shape[-1] % block or any(d < 0 for d in shape):
        raise ValueError(f"shape {shape} needs a last dimension that is a multiple of block {block}")
    n = math.prod(shape)
    nb = n // block
    try:
        b = np.frombuffer(buf, np.uint8) if not isinstance(buf, np.ndarray) else buf.reshape(-1).view(np.uint8)
    except (TypeError, ValueError) as e:
        raise ValueError(f"buf must be bytes-like or a uint8 array; got {type(buf).__name__} ({e})") from None
    want = packed_nbytes(n, f.name, block)
    if b.size != want:
        raise ValueError(
            f"packed buffer for shape {shape} {f.name} block {block} must be {want} bytes; got {b.size}"
        )
    groups = -(-nb // GROUP_BLOCKS)
    gbytes = group_nbytes(f.name, block)
    body = b[: groups * gbytes].reshape(groups, gbytes)
    scales = body[:, :GROUP_BLOCKS].reshape(-1)[:nb].copy()
    codes = _unpack_codes(np.ascontiguousarray(body[:, GROUP_BLOCKS:]).reshape(-1), f.bits)[:n]
    return MXArray(
        fmt=f.name,
        block=block,
        shape=shape,
        scales=scales.reshape(shape[:-1] + (shape[-1] // block,)),
        codes=np.ascontiguousarray(codes).reshape(shape),
    )
