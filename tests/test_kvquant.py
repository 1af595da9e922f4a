"""The KV cache's storage formats (docs/NUMERICS.md section 16): MX round trips in the
profile's head layout, BAOS's scales and their invariance under RoPE, and their use in
generation."""

import dataclasses
import subprocess

import numpy as np
import pytest
import torch

from dnpu.model import KV, kvquant
from dnpu.spec import config, mx
from dnpu.spec import numerics as nm

from conftest import dnpu_cli


def _bf16(x) -> np.ndarray:
    return torch.from_numpy(np.asarray(x, np.float32)).to(torch.bfloat16).float().numpy()


def _kv(rng, B=2, H=3, T=12, hd=32, scales=None):
    k = rng.normal(0, 1, (B, H, T, hd)) * (1 if scales is None else scales)
    v = rng.normal(0, 1, (B, H, T, hd))
    return [KV(torch.tensor(k, dtype=torch.bfloat16), torch.tensor(v, dtype=torch.bfloat16))]


def _mx_roundtrip(x: np.ndarray, fmt: str) -> np.ndarray:
    back = mx.dequantize_bf16(mx.quantize(x.astype(np.float32), fmt))
    return (back.astype(np.uint32) << 16).view(np.float32)


def test_bf16_is_the_cache_itself_and_names_are_checked():
    kv = _kv(np.random.default_rng(0))
    assert kvquant.quantize_kv(kv, "bf16") is kv
    for bad in ("fp8", "baos-bf16", "", None, "E4M3"):
        with pytest.raises(ValueError, match="unknown KV format"):
            kvquant.check_kv_format(bad)
    assert {"bf16", "e2m1", "baos-e2m1", "int8"} <= set(kvquant.kv_formats())


@pytest.mark.parametrize("fmt", ["e4m3", "e2m1", "int8"])
def test_mx_round_trip_per_token_head(fmt):
    """On sim (VLEN 16) a 32-wide head is one MX block: the stored keys and values are the
    MX round trip of each token's head, computed here by dnpu.spec.mx directly."""
    kv = _kv(np.random.default_rng(1))
    (q,) = kvquant.quantize_kv(kv, fmt, "sim")
    for got, src in ((q.k, kv[0].k), (q.v, kv[0].v)):
        assert got.dtype == torch.bfloat16 and got.shape == src.shape
        want = _mx_roundtrip(src.float().numpy(), fmt)
        assert np.array_equal(got.float().numpy(), want)
    assert not torch.equal(q.k, kv[0].k)                     # it did quantize


def test_padded_head_layout_decides_the_blocks():
    """On zcu104 (VLEN 64) each 16-wide RoPE half of a 32-wide head starts a row of its
    own: the halves are separate MX blocks, so an outlier in one half does not flatten the
    other (as it does in sim's one-block head)."""
    k = np.zeros((1, 1, 1, 32), np.float32)
    k[..., :16] = 1000.0
    k[..., 16:] = 0.01 * np.arange(1, 17)
    kv = [KV(torch.tensor(k, dtype=torch.bfloat16), torch.tensor(k, dtype=torch.bfloat16))]
    (sim,) = kvquant.quantize_kv(kv, "e2m1", "sim")
    (zcu,) = kvquant.quantize_kv(kv, "e2m1", "zcu104")
    assert (sim.k[..., 16:] == 0).all()                      # one block: the small half underflows
    half = np.concatenate([_bf16(k[..., 16:]), np.zeros((1, 1, 1, 16), np.float32)], -1)   # its zero-padded row
    assert np.array_equal(zcu.k.float().numpy()[..., 16:], _mx_roundtrip(half, "e2m1")[..., :16])
    assert (zcu.k[..., 16:] != 0).all()


def test_profile_without_the_format_is_an_error():
    sim = config.load("sim")
    cfg = dataclasses.replace(sim, mx=dataclasses.replace(sim.mx, formats=("e4m3",)))
    with pytest.raises(ValueError, match="does not decode e2m1"):
        kvquant.quantize_kv(_kv(np.random.default_rng(2)), "baos-e2m1", cfg)


def test_baos_scales():
    """r = 2^-E of each pair's largest magnitude over the positions (exponent field, E at
    most 126); 1 for a zero, subnormal or non-finite pair."""
    k = np.zeros((1, 4, 10), np.float32)          # T = 4, hd = 10: pairs (c, c + 5)
    k[0, :, 0] = [0.3, -5.0, 1.0, 2.0]            # pair 0: max 5 -> E 2 -> 2^-2
    k[0, 1, 5] = 6.5                              # ... its partner has the larger: 6.5 -> still E 2
    k[0, 2, 1] = 0.75                             # pair 1: E -1 -> 2
    k[0, 0, 7] = 2.0 ** -130                      # pair 2: a subnormal -> 1
    k[0, 3, 3] = np.inf                           # pair 3: Inf -> 1
    k[0, 3, 4] = 3e38                             # pair 4: E 127, clamped to 126 -> 2^-126
    bits = (torch.tensor(k).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16))
    r = kvquant.baos_scales(bits)
    assert nm.bf16_value(r).tolist() == [[0.25, 2.0, 1.0, 1.0, 2.0 ** -126]]
    ks = nm.bf16_value(kvquant.baos_smooth(bits, r))
    assert ks[0, 1, 0] == -1.25 and ks[0, 1, 5] == 1.625 and ks[0, 0, 7] == 0.0     # the subnormal is flushed


def test_baos_center_and_encode():
    """mu is the midpoint of each channel's range (to BF16 rounding: the ends moved by m
    and back); K - mu is what the scales are taken of; the later step's K' + u times s
    gives the keys back to the rounding of the subtraction and the addition."""
    rng = np.random.default_rng(5)
    T, hd = 12, 8
    k = _bf16(rng.normal(0, 1, (T, hd)) + np.array([4.0, -3.0, 0.0, 10.0, 0.5, -0.25, 7.0, 1.0]))
    bits = (k.view(np.uint32) >> 16).astype(np.uint16)
    mu = nm.bf16_value(kvquant.baos_center(bits))
    mid = (k.max(0) + k.min(0)) / 2
    np.testing.assert_allclose(mu, mid, atol=np.abs(k).max() * 2.0 ** -6)
    kp, r, u = kvquant.baos_encode(bits)
    d = nm.bf16_value(kvquant._bf16_op(nm.sub, bits, kvquant.baos_center(bits)[None]))
    np.testing.assert_array_equal(r, kvquant.baos_scales(nm.bf16_bits(d)))
    np.testing.assert_array_equal(nm.bf16_value(kp), d * np.concatenate([nm.bf16_value(r)] * 2))
    # the smoothed keys are centred: each pair's largest in [1, 2), so a 4-bit block holds less range
    kpv = nm.bf16_value(kp)
    pair = np.maximum(np.abs(kpv[:, :hd // 2]), np.abs(kpv[:, hd // 2:])).max(0)
    assert (pair >= 1).all() and (pair < 2).all()
    s = 1 / np.concatenate([nm.bf16_value(r)] * 2)
    back = nm.bf16_value(kvquant.bf16_add(kp, u[None])) * s
    np.testing.assert_allclose(back, k, rtol=2.0 ** -7, atol=np.abs(k).max() * 2.0 ** -7)


def test_baos_smoothed_keys_and_rope_invariance():
    """Smoothed keys lie in (-2, 2), each pair's largest in [1, 2); the scale of a pair
    commutes with its rotation, so the scores of the rotated query times s against the
    rotated smoothed key are the scores."""
    rng = np.random.default_rng(3)
    T, hd = 10, 16
    k = _bf16(rng.normal(0, 1, (T, hd)) * 2.0 ** rng.integers(-4, 6, hd))
    q = rng.normal(0, 1, hd)
    bits = (k.view(np.uint32) >> 16).astype(np.uint16)
    r = kvquant.baos_scales(bits)
    ks = nm.bf16_value(kvquant.baos_smooth(bits, r))
    s = 1 / np.concatenate([nm.bf16_value(r)] * 2)
    pair = np.maximum(np.abs(ks[:, :hd // 2]), np.abs(ks[:, hd // 2:])).max(0)
    assert np.abs(ks).max() < 2 and (pair >= 1).all()
    np.testing.assert_array_equal(ks * s, k)                  # exact: powers of two

    def rope(x, pos):
        h = hd // 2
        ang = pos * 10000.0 ** (-np.arange(h) / h)
        c, sn = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))
        rot = np.concatenate([-x[..., h:], x[..., :h]], -1)
        return x * c + rot * sn

    pos = np.arange(T)[:, None]
    want = rope(k, pos) @ rope(q, 3.0)
    got = rope(ks, pos) @ (rope(q, 3.0) * s)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_baos_beats_plain_mx_on_outlier_channels():
    """Keys whose channels differ by orders of magnitude (what BAOS is for): at 4 bits, the
    smoothed cache is closer to the BF16 keys than plain MX, and BAOS's rounding is only MX's
    (the scales are exact)."""
    rng = np.random.default_rng(4)
    hd = 32
    scales = np.concatenate([2.0 ** rng.integers(-3, 7, hd // 2)] * 2)
    kv = _kv(rng, T=16, hd=hd, scales=scales)
    ref = kv[0].k.float().numpy()
    plain = kvquant.quantize_kv(kv, "e2m1", "sim")[0].k.float().numpy()
    baos = kvquant.quantize_kv(kv, "baos-e2m1", "sim")[0].k.float().numpy()
    err = lambda a: float(np.mean((a - ref) ** 2 / (scales ** 2)))       # noqa: E731 - per-channel relative
    assert err(baos) < 0.5 * err(plain)
    assert torch.equal(kvquant.quantize_kv(kv, "baos-e2m1", "sim")[0].v, kvquant.quantize_kv(kv, "e2m1", "sim")[0].v)


def test_generate_checks_the_kv_format():
    from dnpu import generate
    from dnpu.model import load

    model, tok = load(None, dtype="bf16")
    ids = [tok.encode("123+456=")]
    with pytest.raises(ValueError, match="stores a KV cache"):
        generate(model, ids, gen_length=8, block_length=4, steps=8, kv_format="e2m1")
    with pytest.raises(ValueError, match="unknown KV format"):
        generate(model, ids, gen_length=8, block_length=4, steps=8, kv_cache="dual", kv_format="fp4")
    a = generate(model, ids, gen_length=8, block_length=4, steps=8, kv_cache="dual")
    b = generate(model, ids, gen_length=8, block_length=4, steps=8, kv_cache="dual", kv_format="e4m3")
    assert a.shape == b.shape == (1, 16)


def test_cli_kv_format_errors_are_one_line():
    r = subprocess.run(dnpu_cli() + ["generate", "--prompt", "123+456=", "--kv-format", "e2m1"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "stores a KV cache" in r.stderr and "Traceback" not in r.stderr
