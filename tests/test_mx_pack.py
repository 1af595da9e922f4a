"""dnpu.spec.mx packed memory layout: pack / unpack / packed_nbytes against a spec-literal reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnpu.spec import mx

WIDTH = {"e4m3": 8, "e5m2": 8, "e3m2": 6, "e2m3": 6, "e2m1": 4, "int8": 8}
BLOCKS = [8, 16, 32, 64]


def ref_pack(scales, codes, w: int, block: int) -> bytes:
    """The layout, written the slow obvious way: groups of 16 blocks, each
    [16 scale bytes][block 0 codes]..[block 15 codes]; a block's codes form a little-endian
    bitstream (element i in bits [i*w, i*w+w)); missing blocks are scale 0 / zero codes;
    zero bytes pad the buffer to a multiple of 64."""
    scales = [int(s) for s in np.asarray(scales).reshape(-1)]
    codes = [int(c) for c in np.asarray(codes).reshape(-1)]
    nb = len(scales)
    out = bytearray()
    for g in range(math.ceil(nb / 16)):
        ids = range(16 * g, 16 * g + 16)
        out += bytes(scales[b] if b < nb else 0 for b in ids)
        for b in ids:
            blk = codes[b * block : (b + 1) * block] if b < nb else [0] * block
            acc = 0
            for i, c in enumerate(blk):
                acc |= c << (i * w)
            out += acc.to_bytes(block * w // 8, "little")
    out += bytes(-len(out) % 64)
    return bytes(out)


def random_mx(rng, fmt, shape, block):
    w = WIDTH[fmt]
    codes = rng.integers(0, 1 << w, shape).astype(np.uint8)
    scales = rng.integers(0, 256, shape[:-1] + (shape[-1] // block,)).astype(np.uint8)
    return mx.MXArray(fmt=fmt, block=block, shape=tuple(shape), scales=scales, codes=codes)


@st.composite
def mx_arrays(draw):
    fmt = draw(st.sampled_from(list(WIDTH)))
    block = draw(st.sampled_from(BLOCKS))
    lead = draw(st.lists(st.integers(1, 4), min_size=0, max_size=2))
    shape = tuple(lead) + (block * draw(st.integers(1, 40)),)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return random_mx(rng, fmt, shape, block)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(q=mx_arrays())
def test_pack_matches_reference_and_round_trips(q):
    buf = mx.pack(q)
    assert isinstance(buf, bytes)
    assert buf == ref_pack(q.scales, q.codes, WIDTH[q.fmt], q.block)
    assert len(buf) == mx.packed_nbytes(q.codes.size, q.fmt, q.block)
    assert len(buf) % 64 == 0
    r = mx.unpack(buf, q.shape, q.fmt, q.block)
    assert (r.fmt, r.block, r.shape) == (q.fmt, q.block, q.shape)
    assert r.scales.dtype == np.uint8 and r.codes.dtype == np.uint8
    np.testing.assert_array_equal(r.scales, q.scales)
    np.testing.assert_array_equal(r.codes, q.codes)


@pytest.mark.parametrize("fmt", list(WIDTH))
@pytest.mark.parametrize("block", BLOCKS)
def test_round_trip_of_quantized_tensor_with_padding(fmt, block):
    """nb = 3*5*(3 blocks) = 45 blocks: the last group has 13 blocks and 3 padding blocks."""
    rng = np.random.default_rng(block)
    x = (rng.standard_normal((3, 5, 3 * block)) * 4).astype(np.float32)
    q = mx.quantize(x, fmt, block)
    buf = mx.pack(q)
    assert len(buf) % 64 == 0
    gbytes = 16 + 16 * block * WIDTH[fmt] // 8
    assert len(buf) == -(-3 * gbytes // 64) * 64
    # padding blocks: scale 0x00 and zero codes; padding bytes zero
    last = np.frombuffer(buf, np.uint8)[2 * gbytes :]
    assert last[13:16].tolist() == [0, 0, 0]
    assert not last[16 + 13 * block * WIDTH[fmt] // 8 :].any()
    r = mx.unpack(buf, x.shape, fmt, block)
    np.testing.assert_array_equal(r.codes, q.codes)
    np.testing.assert_array_equal(r.scales, q.scales)
    np.testing.assert_array_equal(mx.dequantize(r).view(np.uint32), mx.dequantize(q).view(np.uint32))


def test_e2m1_packing_by_hand():
    # two blocks of 8: low nibble first
    codes = np.array([[1, 2, 3, 4, 5, 6, 7, 8], [0xF, 0, 0, 0, 0, 0, 0, 0xA]], np.uint8).reshape(16)
    q = mx.MXArray(fmt="e2m1", block=8, shape=(16,), scales=np.array([0x7F, 0x80], np.uint8), codes=codes)
    want = (
        [0x7F, 0x80] + [0] * 14  # 16 scale bytes: blocks 0, 1, then 14 padding blocks
        + [0x21, 0x43, 0x65, 0x87]  # block 0: (el1<<4)|el0, ...
        + [0x0F, 0x00, 0x00, 0xA0]  # block 1
        + [0] * (14 * 4)  # 14 padding blocks of 8 nibbles
        + [0] * 48  # group is 16 + 64 = 80 bytes; pad to 128
    )
    assert list(mx.pack(q)) == want
    assert mx.packed_nbytes(16, "e2m1", 8) == 128


def test_e3m2_packing_by_hand():
    # 4 six-bit codes → 3 bytes, little-endian:
    # 0x01 | 0x02<<6 | 0x03<<12 | 0x3F<<18 = 0xFC3081 → 81 30 FC
    # 0x20 | 0x15<<6 | 0x00<<12 | 0x2A<<18 = 0xA80560 → 60 05 A8
    codes = np.array([0x01, 0x02, 0x03, 0x3F, 0x20, 0x15, 0x00, 0x2A], np.uint8)
    q = mx.MXArray(fmt="e3m2", block=8, shape=(1, 8), scales=np.array([[0x85]], np.uint8), codes=codes.reshape(1, 8))
    want = [0x85] + [0] * 15 + [0x81, 0x30, 0xFC, 0x60, 0x05, 0xA8] + [0] * (15 * 6) + [0] * 16
    assert list(mx.pack(q)) == want
    assert len(want) == 128
    r = mx.unpack(bytes(want), (1, 8), "e3m2", 8)
    assert r.codes.tolist() == [codes.tolist()] and r.scales.tolist() == [[0x85]]


def test_8bit_block_is_plain_bytes():
    codes = np.arange(32, dtype=np.uint8)
    q = mx.MXArray(fmt="e4m3", block=32, shape=(32,), scales=np.array([3], np.uint8), codes=codes)
    buf = mx.pack(q)
    assert buf[:16] == bytes([3] + [0] * 15)
    assert buf[16:48] == bytes(range(32))


@pytest.mark.parametrize(
    "n, fmt, block, want",
    [
        (32 * 126464, "e4m3", 32, 7904 * (16 + 512)),  # LLaDA logits (32 x vocab): 4,173,312 bytes
        (32 * 126464, "e2m1", 32, 7904 * (16 + 256)),
        (32 * 126464, "e3m2", 32, 7904 * (16 + 384)),
        (32, "e4m3", 32, 576),  # one 528-byte group → 9 beats
        (8, "e2m1", 8, 128),  # one 80-byte group → 2 beats
        (0, "e4m3", 32, 0),
        (17 * 64, "e2m3", 64, 2 * (16 + 768) + 32),  # 1568 → 1600
    ],
)
def test_packed_nbytes(n, fmt, block, want):
    assert mx.packed_nbytes(n, fmt, block) == want
    assert want % 64 == 0
    assert mx.group_elements(fmt, block) == 16 * block
    assert mx.group_nbytes(fmt, block) == 16 + 2 * block * WIDTH[fmt]
    assert mx.GROUP_BLOCKS == 16


def test_unpack_rejects_wrong_length_naming_both():
    q = mx.quantize(np.ones((2, 64), np.float32), "e4m3")
    buf = mx.pack(q)
    with pytest.raises(ValueError, match=rf"must be {len(buf)} bytes; got {len(buf) - 1}"):
        mx.unpack(buf[:-1], (2, 64), "e4m3")
    with pytest.raises(ValueError, match=rf"must be {len(buf)} bytes; got {len(buf) + 64}"):
        mx.unpack(buf + bytes(64), (2, 64), "e4m3")


def test_unpack_accepts_bytes_like():
    q = mx.quantize(np.linspace(-1, 1, 64, dtype=np.float32), "e2m1", 16)
    buf = mx.pack(q)
    for b in (bytearray(buf), memoryview(buf), np.frombuffer(buf, np.uint8)):
        np.testing.assert_array_equal(mx.unpack(b, (64,), "e2m1", 16).codes, q.codes)


def test_pack_and_unpack_validate():
    q = mx.quantize(np.ones(32, np.float32), "e2m1")
    q.codes[3] = 0x10
    with pytest.raises(ValueError, match="do not fit e2m1's 4 bits"):
        mx.pack(q)
    with pytest.raises(ValueError, match="multiple of block 32"):
        mx.unpack(bytes(320), (40,), "e2m1")
    with pytest.raises(ValueError, match="multiple of block 32"):
        mx.packed_nbytes(40, "e2m1", 32)
    with pytest.raises(ValueError, match="unknown MX element format"):
        mx.unpack(bytes(320), (32,), "fp4")
    bad = mx.MXArray(fmt="e4m3", block=32, shape=(32,), scales=np.zeros(2, np.uint8), codes=np.zeros(32, np.uint8))
    with pytest.raises(ValueError, match=r"scales must be uint8 of shape \(1,\)"):
        mx.pack(bad)
