"""The KV cache's storage formats: BF16, MX, and BAOS-smoothed MX (docs/NUMERICS.md section 16).

A cache refresh (a block's first step with ``kv_cache="prefix"`` or ``"dual"``) stores every
layer's keys (before RoPE) and values. In a format other than ``bf16`` each token's head
is stored as MX: its features in the NPU's head layout for the profile
(`dnpu.compiler.forward.head_layout`: each RoPE half starting a vector row, zero-padded),
cut into blocks of ``mx.block``, quantized by `dnpu.spec.mx.quantize` from BF16, and read
back by `dnpu.spec.mx.dequantize_bf16`. `quantize_kv` returns the values the later steps
of the block attend to.

``baos-<fmt>`` shifts and smooths the keys first (Block-Adaptive Online Smoothing,
NUMERICS section 16): per layer, head and channel the shift mu (the middle of the
channel's range over the cached positions), per RoPE channel pair (c, c + head_dim/2) the
power of two ``r = 2^-E`` from the exponent field of the pair's largest magnitude of
K - mu; K' = (K - mu) r is quantized, and read back as (K' + mu r) / r. One scale for both
channels of a pair commutes with RoPE's rotation, so folding ``s = 1/r`` into the rotated
query instead (what the NPU does) gives the same scores.
"""

from __future__ import annotations

import numpy as np

from dnpu.spec import config as config_mod
from dnpu.spec import mx
from dnpu.spec import numerics as nm

__all__ = ["KV_FORMATS_HELP", "check_kv_format", "quantize_kv", "baos_center", "baos_encode", "baos_scales",
           "baos_smooth", "bf16_add", "kv_formats", "roundtrip_bits"]

KV_FORMATS_HELP = "bf16, an MX format (e4m3, e5m2, e3m2, e2m3, e2m1, int8) or baos-<MX format>"


def kv_formats() -> tuple[str, ...]:
    """Every accepted name (the compiler's list: one home)."""
    from dnpu.compiler.kvcache import KV_FORMATS

    return KV_FORMATS


def check_kv_format(name) -> str:
    """The name, or ValueError naming the accepted ones."""
    if not isinstance(name, str) or name not in kv_formats():
        raise ValueError(f"unknown KV format {name!r}: use {KV_FORMATS_HELP}")
    return name


def _split(name: str) -> tuple[bool, str | None]:
    """(BAOS?, MX format or None for bf16)."""
    name = check_kv_format(name)
    if name == "bf16":
        return False, None
    if name.startswith("baos-"):
        return True, name[5:]
    return False, name


def baos_scales(k_bits) -> np.ndarray:
    """BAOS's r = 2^-E per RoPE channel pair of keys ``[..., T, hd]`` (BF16 bits): BF16
    bits ``[..., hd/2]`` (docs/NUMERICS.md section 16: the pair's largest magnitude over
    the positions, V_AMAX_VV, then V_INVPOW2_V)."""
    k = np.asarray(k_bits, np.uint16)
    h = k.shape[-1] // 2
    m = nm.amax_bits(k[..., :h], k[..., h:]).max(axis=-2)
    return nm.invpow2_bits(m)


def baos_smooth(k_bits, r_bits) -> np.ndarray:
    """K' = bf16(K · r) per pair (V_MUL_VV: DAZ, FTZ): keys [..., T, hd], r [..., hd/2]."""
    r = np.asarray(r_bits, np.uint16)
    rr = np.concatenate([r, r], axis=-1)[..., None, :]
    k = np.asarray(k_bits, np.uint16)
    return nm.bf16_bits(nm.mul(nm.bf16_value(k), nm.bf16_value(np.broadcast_to(rr, k.shape)), "bf16"))


def bf16_add(a_bits, b_bits) -> np.ndarray:
    """V_ADD_VV per element (section 2: DAZ, FTZ, the rounding rule), BF16 bits."""
    return _bf16_op(nm.add, a_bits, b_bits)


def _bf16_op(op, a_bits, b_bits) -> np.ndarray:
    """A vector instruction's BF16 result (V_ADD_VV, V_SUB_VV, V_MUL_VV: DAZ, FTZ), bits."""
    return nm.bf16_bits(op(nm.bf16_value(np.asarray(a_bits, np.uint16)),
                           nm.bf16_value(np.asarray(b_bits, np.uint16)), "bf16"))


def baos_center(k_bits) -> np.ndarray:
    """BAOS's shift mu per channel of keys ``[..., T, hd]`` (BF16 bits): BF16 bits
    ``[..., hd]``, about the midpoint of the channel's range over the positions
    (docs/NUMERICS.md section 16: with m the pair's largest magnitude every K + m and
    m - K is non-negative, so V_AMAX_VV's largest magnitudes of them are the range's ends
    moved by m, and m cancels in their difference)."""
    k = np.asarray(k_bits, np.uint16)
    h = k.shape[-1] // 2
    m = nm.amax_bits(k[..., :h], k[..., h:]).max(axis=-2)
    mm = np.concatenate([m, m], axis=-1)[..., None, :]
    hi = (_bf16_op(nm.add, k, mm) & np.uint16(0x7FFF)).max(axis=-2)
    lo = (_bf16_op(nm.sub, mm, k) & np.uint16(0x7FFF)).max(axis=-2)
    half = np.full(hi.shape, 0x3F00, np.uint16)
    return _bf16_op(nm.mul, _bf16_op(nm.sub, hi, lo), half)


def baos_encode(k_bits) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BAOS at a refresh (docs/NUMERICS.md section 16), keys ``[..., T, hd]`` as BF16 bits:
    (K' the smoothed keys [..., T, hd], r [..., hd/2], u = mu * r [..., hd]), BF16 bits.
    K' is what is quantized; a later step reads K' back and adds u, giving (K - mu) r + mu r
    in the smoothed space."""
    k = np.asarray(k_bits, np.uint16)
    mu = baos_center(k)
    d = _bf16_op(nm.sub, k, mu[..., None, :])
    r = baos_scales(d)
    rr = np.concatenate([r, r], axis=-1)
    return baos_smooth(d, r), r, _bf16_op(nm.mul, mu, rr)


def _to_bf16_f32(t) -> np.ndarray:
    if isinstance(t, np.ndarray):       # a NumPy model's cache (dnpu.model.numpy_forward)
        return nm.round_bf16_f32(t)                                    # as torch's .to(bfloat16)
    import torch

    return t.detach().to("cpu", torch.bfloat16).to(torch.float32).numpy()


def _roundtrip(x: np.ndarray, fmt: str, cfg, hd: int) -> np.ndarray:
    """MX round trip of heads [..., hd] in the profile's head layout (float32 BF16 values)."""
    from dnpu.compiler.forward import head_layout

    block = cfg.mx.block
    hdp, hhp = head_layout(cfg, hd)
    h = hd // 2
    pad = np.zeros(x.shape[:-1] + (hdp,), np.float32)
    pad[..., :h] = x[..., :h]
    pad[..., hhp:hhp + h] = x[..., h:]
    back = mx.dequantize_bf16(mx.quantize(pad.astype(np.float32), fmt, block))
    vals = (back.astype(np.uint32) << 16).view(np.float32).reshape(pad.shape)
    return np.concatenate([vals[..., :h], vals[..., hhp:hhp + h]], axis=-1)


def roundtrip_bits(bits: np.ndarray, fmt: str, cfg) -> np.ndarray:
    """The MX round trip of heads [..., hd] given as BF16 bits: BF16 bits."""
    x = (np.asarray(bits, np.uint16).astype(np.uint32) << 16).view(np.float32)
    y = _roundtrip(x, fmt, cfg, x.shape[-1])
    return (y.view(np.uint32) >> 16).astype(np.uint16)


def quantize_kv(kv: list, kv_format: str, config="sim") -> list:
    """The cache as the later steps read it back (module docstring): a list like `kv`
    (`dnpu.model.llada.KV` of tensors, each in its dtype and device, or a NumPy model's
    `NumpyKV` of arrays)."""
    baos, fmt = _split(kv_format)
    if fmt is None:
        return kv
    cfg = config if isinstance(config, config_mod.Config) else config_mod.load(config)
    if fmt not in cfg.mx.formats:
        raise ValueError(f"KV format {kv_format}: profile {cfg.name} does not decode {fmt} "
                         f"(formats: {', '.join(cfg.mx.formats)})")
    out = []
    for layer in kv:
        k, v = _to_bf16_f32(layer.k), _to_bf16_f32(layer.v)
        hd = k.shape[-1]
        if hd % 2:
            raise ValueError(f"head_dim {hd} must be even (RoPE's halves)")
        if baos:
            kb = (k.view(np.uint32) >> 16).astype(np.uint16)
            ks, r, u = baos_encode(kb)
            back = roundtrip_bits(ks, fmt, cfg)
            kr = nm.bf16_value(_bf16_op(nm.add, back, u[..., None, :]))
            s_ = nm.bf16_value(nm.reci_bf16(np.concatenate([r, r], axis=-1)))[..., None, :]
            kq = (kr * s_).astype(np.float32)                         # exact: s is a power of two
        else:
            kq = _roundtrip(k, fmt, cfg, hd)
        vq = _roundtrip(v, fmt, cfg, hd)
        if isinstance(layer.k, np.ndarray):
            out.append(type(layer)(kq.astype(layer.k.dtype), vq.astype(layer.v.dtype)))
            continue
        import torch

        out.append(type(layer)(torch.from_numpy(kq).to(layer.k.device, layer.k.dtype),
                               torch.from_numpy(vq).to(layer.v.device, layer.v.dtype)))
    return out
