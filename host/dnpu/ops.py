"""Operators on the NPU: `linear` (the matrix unit), `rms_norm`, `swiglu`, `rope`,
`embedding` and `attention`.

    y = dnpu.ops.linear(x, weight, fmt="e4m3", backend="emu", config="sim-matrix.toml")

`x` `[M, K]` is rounded to BF16 on entry; `weight` `[N, K]` (as `torch.nn.Linear` holds
it) is MX-quantized along K (format `fmt`, blocks of `block`); the result `[M, N]` is
float32 holding the BF16 values the NPU wrote. Backends: "emu", "verilator", "pynq" run
the program of `dnpu.compiler.linear` on that device; "torch" is the float64 reference on
the same quantized operands, rounded to BF16 once (`residual`, if given, added before
that rounding). The NPU's results are within `dnpu.spec.matmul.matmul_error_bound` of it
(docs/NUMERICS.md section 11.1).

    y = dnpu.ops.rms_norm(x, weight, eps=1e-5, backend="emu")

RMSNorm over the rows of `x` `[M, D]` with gain `weight` `[D]`, both rounded to BF16 on
entry, eps rounded to FP32; the program of `dnpu.compiler.norm` (docs/NUMERICS.md section
12), bit for bit `dnpu.spec.kernels.rms_norm_bf16`. "torch" is float64
`x / sqrt(mean(x²) + eps) · weight` of the same operands rounded to BF16 once; the NPU is
within `dnpu.spec.kernels.rms_norm_error_bound(D)` of it, relatively.

    h = dnpu.ops.swiglu(gate, up, backend="emu")

SwiGLU's gate `silu(gate) · up` elementwise over [M, F] (both rounded to BF16 on entry),
the program of `dnpu.compiler.swiglu` (docs/NUMERICS.md section 13), bit for bit
`dnpu.spec.kernels.swiglu_bf16`; "torch" is float64 `gate · up / (1 + exp(-gate))`
rounded once, and the NPU is within `dnpu.spec.kernels.swiglu_error_bound()` of it.

    y = dnpu.ops.rope(x, cos, sin, n_heads, backend="emu")

Rotate-half RoPE of x [L, n_heads·head_dim] with tables cos, sin [L, head_dim/2] (all
rounded to BF16 on entry), the program of `dnpu.compiler.rope` (docs/NUMERICS.md section
14), bit for bit `dnpu.spec.kernels.rope_bf16`; "torch" is float64 of the same operands
rounded once.

    y = dnpu.ops.embedding(ids, table, backend="emu")

The rows `table[ids]` (table [V, D] rounded to BF16 on entry), gathered by the program of
`dnpu.compiler.embed`: a copy, bit for bit the BF16 table rows on every backend.

    o = dnpu.ops.attention(q, k, v, backend="emu", tile=None)

Bidirectional attention per head, `softmax(q·kᵀ/sqrt(hd))·v` for q [H, n, hd] and k, v
[H, T, hd] (rounded to BF16 on entry), as a streaming softmax over key tiles of `tile`
keys (default: all keys in one tile); the program of `dnpu.compiler.attention`
(docs/NUMERICS.md section 15), bit for bit `dnpu.spec.kernels.attention_bf16`. "torch" is
float64 softmax attention of the same operands rounded once; the NPU is within
`dnpu.spec.kernels.attention_error_bound` of it.
"""

from __future__ import annotations

import numpy as np

from dnpu.compiler import CompileError
from dnpu.compiler.linear import linear_program, weight_image
from dnpu.compiler.attention import attention_program, default_tile
from dnpu.compiler.embed import embedding_program
from dnpu.compiler.norm import rms_norm_program
from dnpu.compiler.rope import rope_program
from dnpu.compiler.swiglu import swiglu_program
from dnpu.spec import matmul
from dnpu.spec import config as config_mod
from dnpu.spec import kernels, matrix, mx
from dnpu.spec import numerics as nm
from dnpu.spec.config import Config
from dnpu.runtime import BACKENDS as NPU_BACKENDS, check_run_info

__all__ = ["linear", "linear_image", "rms_norm", "swiglu", "rope", "embedding", "attention", "BACKENDS"]

BACKENDS = NPU_BACKENDS + ("torch",)


def _array(name: str, v, dims: str = "[rows, cols]") -> np.ndarray:
    """v (NumPy or torch, float) as float64, refused unless it is a non-empty array of the
    named dimensions."""
    if hasattr(v, "detach"):
        import torch

        t = v.detach().cpu()
        v = t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()
    a = np.asarray(v)
    if a.dtype.kind != "f" or a.dtype == np.float16:
        raise ValueError(f"{name}: expected float32, float64 or bfloat16 values, got dtype {a.dtype}")
    if a.ndim != dims.count(",") + 1 or 0 in a.shape:
        raise ValueError(f"{name}: expected a non-empty {dims} array, got shape {list(a.shape)}")
    return a.astype(np.float64)


def _profile(config: str | Config | None, backend: str) -> Config:
    """The hardware profile (default "sim") after checking the backend's name."""
    if backend not in BACKENDS:
        raise ValueError(f"backend = {backend!r}: choose one of {', '.join(BACKENDS)}")
    return config if isinstance(config, Config) else config_mod.load(config or "sim")


def _pad(a: np.ndarray, rows: int, cols: int) -> np.ndarray:
    out = np.zeros((rows, cols), a.dtype)
    out[:a.shape[0], :a.shape[1]] = a
    return out


def linear(x, weight, *, fmt: str = "e4m3", block: int = 32, backend: str = "emu",
           config: str | Config | None = None, run_info: list | None = None, residual=None) -> np.ndarray:
    """y = bf16(x · weightᵀ (+ residual)) on `backend`; see the module docstring.

    config: the hardware profile (default "sim"); it must have a matrix unit for the NPU
    backends. run_info: a list the run's dnpu.runtime.RunInfo is appended to. residual:
    [M, N], rounded to BF16 on entry, added with one rounding (M_MM_RES)."""
    check_run_info(run_info)
    cfg = _profile(config, backend)
    if fmt not in mx.FORMATS:
        raise ValueError(f"fmt = {fmt!r}: choose one of {', '.join(mx.FORMATS)}")
    xa, wa = _array("x", x), _array("weight", weight)
    if xa.shape[1] != wa.shape[1]:
        raise ValueError(f"x is [M, K] = {list(xa.shape)} and weight [N, K] = {list(wa.shape)}: K differs")
    M, K = xa.shape
    N = wa.shape[0]
    ra = None if residual is None else _array("residual", residual)
    if ra is not None and ra.shape != (M, N):
        raise ValueError(f"residual: expected shape [{M}, {N}], got {list(ra.shape)}")
    if backend == "torch":
        xb = nm.round_bf16(xa)
        if K % block:
            raise ValueError(f"K = {K} must be a multiple of block = {block} (MX blocks along K)")
        wb = matrix.quantize_weights(wa, fmt, block)
        return _reference(xb, wb, None if ra is None else nm.round_bf16(ra))
    if block != cfg.mx.block:
        raise ValueError(f"block = {block}: profile {cfg.name} decodes MX blocks of {cfg.mx.block}")
    prog, img = linear_image(cfg, xa, wa, ra, fmt)
    y = _run(backend, cfg, prog, img, run_info, "linear-layer").reshape(prog.M, prog.N)
    return nm.bf16_value(y[:, :N]).astype(np.float32)


def rms_norm(x, weight, eps: float = 1e-5, *, backend: str = "emu", config: str | Config | None = None,
             run_info: list | None = None) -> np.ndarray:
    """y = x / sqrt(mean(x²) + eps) · weight over the rows of x [M, D] on `backend`; see the
    module docstring. Returns [M, D] float32 holding BF16 values."""
    check_run_info(run_info)
    cfg = _profile(config, backend)
    xa = _array("x", x)
    ga = np.asarray(weight.detach().cpu().float().numpy() if hasattr(weight, "detach") else weight, np.float64)
    if ga.ndim != 1 or ga.shape[0] != xa.shape[1]:
        raise ValueError(f"weight: expected shape [{xa.shape[1]}] (x is [M, D] = {list(xa.shape)}), "
                         f"got {list(ga.shape)}")
    if not (np.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps = {eps!r}: must be a finite number >= 0")
    M, D = xa.shape
    xb, gb = nm.round_bf16(xa), nm.round_bf16(ga)
    c_bits, eps_bits = kernels.rms_norm_constants(D, eps)
    if backend == "torch":
        import torch

        xv = torch.from_numpy(nm.bf16_value(xb))
        ms = (xv * xv).mean(dim=1, keepdim=True) + float(nm.f32_value(np.uint32(eps_bits)))
        y = xv / torch.sqrt(ms) * torch.from_numpy(nm.bf16_value(gb))[None, :]
        return nm.bf16_value(nm.round_bf16(y.numpy())).astype(np.float32)
    Dp = -(-D // cfg.vector.vlen) * cfg.vector.vlen
    try:
        prog = rms_norm_program(cfg, M, Dp)
    except CompileError as e:
        raise ValueError(f"rms_norm [{M}, {D}]: {e}") from None
    c = np.array([c_bits, eps_bits], "<u4")
    img = {"program": prog.binary, "x": _pad(xb, M, Dp).astype("<u2").tobytes(),
           "g": _pad(gb[None, :], 1, Dp).astype("<u2").tobytes(), "c": c.tobytes()}
    y = _run(backend, cfg, prog, img, run_info, "RMSNorm").reshape(M, Dp)
    return nm.bf16_value(y[:, :D]).astype(np.float32)


def linear_image(cfg: Config, x: np.ndarray, w: np.ndarray, r: np.ndarray | None, fmt: str):
    """(program, {buffer name: bytes}) of x [M, K] · w [N, K]ᵀ (+ r [M, N]) on profile cfg,
    float64 operands padded to the matrix unit's multiples (N to vlen, K to max(vlen, block))
    with zeros, the weights in the program's layout (`dnpu.compiler.linear.weight_image`).
    ValueError naming the limit when the shape does not fit."""
    M, K = x.shape
    N = w.shape[0]
    vlen = cfg.vector.vlen
    Np = -(-N // vlen) * vlen
    km = matrix.k_multiple(vlen, cfg.mx.block)
    Kp = -(-K // km) * km
    try:
        prog = linear_program(cfg, M, Np, Kp, fmt, r is not None)
    except CompileError as e:
        raise ValueError(f"linear [{M}, {K}] x [{N}, {K}]^T: {e}") from None
    img = {"program": prog.binary,
           "x": nm.round_bf16(_pad(x, M, Kp)).astype("<u2").tobytes(),
           "w": weight_image(prog, _pad(w, Np, Kp))}
    if r is not None:
        img["r"] = nm.round_bf16(_pad(r, M, Np)).astype("<u2").tobytes()
    return prog, img


def _reference(xb: np.ndarray, wb: np.ndarray, rb: np.ndarray | None) -> np.ndarray:
    """PyTorch float64 x · wᵀ (+ r) of the BF16 operands (DAZ reads), rounded to BF16 once."""
    import torch

    y = torch.from_numpy(nm.bf16_value(xb)) @ torch.from_numpy(nm.bf16_value(wb)).T
    if rb is not None:
        y = y + torch.from_numpy(nm.bf16_value(rb))
    y = y.numpy()
    return nm.bf16_value(nm.round_bf16(y)).astype(np.float32)


def swiglu(gate, up, *, backend: str = "emu", config: str | Config | None = None,
           run_info: list | None = None) -> np.ndarray:
    """h = silu(gate) · up elementwise over [M, F] on `backend`; see the module docstring.
    Returns [M, F] float32 holding BF16 values."""
    check_run_info(run_info)
    cfg = _profile(config, backend)
    ga, ua = _array("gate", gate), _array("up", up)
    if ga.shape != ua.shape:
        raise ValueError(f"gate is {list(ga.shape)} and up {list(ua.shape)}: the shapes differ")
    M, F = ga.shape
    gb, ub = nm.round_bf16(ga), nm.round_bf16(ua)
    if backend == "torch":
        import torch

        gv, uv = torch.from_numpy(nm.bf16_value(gb)), torch.from_numpy(nm.bf16_value(ub))
        h = gv * uv / (1 + torch.exp(-gv))
        return nm.bf16_value(nm.round_bf16(h.numpy())).astype(np.float32)
    Fp = -(-F // cfg.vector.vlen) * cfg.vector.vlen
    try:
        prog = swiglu_program(cfg, M, Fp)
    except CompileError as e:
        raise ValueError(f"swiglu [{M}, {F}]: {e}") from None
    img = {"program": prog.binary, "g": _pad(gb, M, Fp).astype("<u2").tobytes(),
           "u": _pad(ub, M, Fp).astype("<u2").tobytes()}
    h = _run(backend, cfg, prog, img, run_info, "SwiGLU", out="h").reshape(M, Fp)
    return nm.bf16_value(h[:, :F]).astype(np.float32)


def rope(x, cos, sin, n_heads: int, *, backend: str = "emu", config: str | Config | None = None,
         run_info: list | None = None) -> np.ndarray:
    """Rotate-half RoPE of x [L, n_heads * head_dim] on `backend`; see the module docstring.
    Returns [L, n_heads * head_dim] float32 holding BF16 values."""
    check_run_info(run_info)
    cfg = _profile(config, backend)
    xa, ca, sa = _array("x", x), _array("cos", cos), _array("sin", sin)
    L, d = xa.shape
    if n_heads < 1 or d % (2 * n_heads):
        raise ValueError(f"x has {d} values a token: not n_heads = {n_heads} heads of an even head_dim")
    h = d // n_heads // 2
    for name, t in (("cos", ca), ("sin", sa)):
        if t.shape != (L, h):
            raise ValueError(f"{name}: expected shape [{L}, {h}] (L, head_dim / 2), got {list(t.shape)}")
    xb, cb, sb = nm.round_bf16(xa), nm.round_bf16(ca), nm.round_bf16(sa)
    if backend == "torch":
        import torch

        xv = torch.from_numpy(nm.bf16_value(xb)).reshape(L, n_heads, 2, h)
        cv = torch.from_numpy(nm.bf16_value(cb))[:, None, :]
        sv = torch.from_numpy(nm.bf16_value(sb))[:, None, :]
        a, b = xv[:, :, 0], xv[:, :, 1]
        y = torch.stack([a * cv - b * sv, b * cv + a * sv], dim=2).reshape(L, d)
        return nm.bf16_value(nm.round_bf16(y.numpy())).astype(np.float32)
    try:
        prog = rope_program(cfg, L, n_heads, 2 * h)
    except CompileError as e:
        raise ValueError(f"rope [{L}, {d}]: {e}") from None
    img = {"program": prog.binary, "x": xb.astype("<u2").tobytes(), "cos": cb.astype("<u2").tobytes(),
           "sin": sb.astype("<u2").tobytes()}
    y = _run(backend, cfg, prog, img, run_info, "RoPE").reshape(L, d)
    return nm.bf16_value(y).astype(np.float32)


def embedding(ids, table, *, backend: str = "emu", config: str | Config | None = None,
              run_info: list | None = None) -> np.ndarray:
    """table[ids] on `backend`; see the module docstring. ids: L token ids (1-D, integers in
    [0, V)). Returns [L, D] float32 holding BF16 values."""
    check_run_info(run_info)
    cfg = _profile(config, backend)
    ta = _array("table", table)
    V, D = ta.shape
    ia = np.asarray(ids.detach().cpu().numpy() if hasattr(ids, "detach") else ids)
    if ia.ndim != 1 or ia.size == 0 or ia.dtype.kind not in "iu":
        raise ValueError(f"ids: expected a non-empty 1-D array of integers, got shape {ia.shape} "
                         f"dtype {ia.dtype}")
    bad = np.flatnonzero((ia < 0) | (ia >= V))
    if bad.size:
        raise ValueError(f"ids[{bad[0]}] = {ia[bad[0]]} is outside the table's {V} rows")
    tb = nm.round_bf16(ta)
    if backend == "torch":
        return nm.bf16_value(tb[ia]).astype(np.float32)
    Dp = -(-D // cfg.vector.vlen) * cfg.vector.vlen
    L = ia.size
    try:
        prog = embedding_program(cfg, L, Dp, V)
    except CompileError as e:
        raise ValueError(f"embedding of {L} ids from [{V}, {D}]: {e}") from None
    img = {"program": prog.binary, "ids": ia.astype("<i4").tobytes(),
           "table": _pad(tb, V, Dp).astype("<u2").tobytes()}
    y = _run(backend, cfg, prog, img, run_info, "embedding").reshape(L, Dp)
    return nm.bf16_value(y[:, :D]).astype(np.float32)


def attention(q, k, v, *, backend: str = "emu", config: str | Config | None = None, tile: int | None = None,
              run_info: list | None = None) -> np.ndarray:
    """softmax(q kᵀ / sqrt(hd)) v per head on `backend`; see the module docstring.
    q [H, n, hd], k and v [H, T, hd]. Returns [H, n, hd] float32 holding BF16 values."""
    check_run_info(run_info)
    cfg = _profile(config, backend)
    qa, ka, va = (_array(name, t, "[heads, rows, head_dim]") for name, t in (("q", q), ("k", k), ("v", v)))
    H, n, hd = qa.shape
    T = ka.shape[1]
    for name, a in (("k", ka), ("v", va)):
        if a.shape != (H, T, hd):
            raise ValueError(f"{name}: expected shape [{H}, {T}, {hd}] (q is {list(qa.shape)}, k "
                             f"{list(ka.shape)}), got {list(a.shape)}")
    qb, kb, vb = (nm.round_bf16(a) for a in (qa, ka, va))
    if backend == "torch":
        import torch

        qv, kv, vv = (torch.from_numpy(nm.bf16_value(b)) for b in (qb, kb, vb))
        p = torch.softmax(qv @ kv.transpose(1, 2) / np.sqrt(hd), dim=-1)
        return nm.bf16_value(nm.round_bf16((p @ vv).numpy())).astype(np.float32)
    try:
        prog = attention_program(cfg, H, n, T, hd, default_tile(cfg, T) if tile is None else tile)
    except CompileError as e:
        raise ValueError(f"attention of {H} head(s), q [{n}, {hd}], k/v [{T}, {hd}]: {e}") from None
    img = {"program": prog.binary, **{name: b.astype("<u2").tobytes() for name, b in (("q", qb), ("k", kb), ("v", vb))}}
    o = _run(backend, cfg, prog, img, run_info, "attention", out="o").reshape(H, n, hd)
    return nm.bf16_value(o).astype(np.float32)


def _run(backend: str, cfg: Config, prog, img: dict[str, bytes], run_info: list | None,
         what: str, out: str = "y") -> np.ndarray:
    """Run prog with its buffers on a `backend` device: the BF16 bits of its output buffer
    `out`, flat."""
    from dnpu import runtime

    with runtime.open(backend, config=cfg) as dev:
        buf = dev.alloc(prog.nbytes)
        for name, data in img.items():
            assert len(data) == prog.layout[name][1], (name, len(data), prog.layout[name])
            buf.write(data, offset=prog.layout[name][0])
        try:
            info = dev.run(buf.addr + prog.layout["program"][0], args=prog.args(buf.addr))
        except runtime.DeviceError as e:
            raise RuntimeError(f"{backend}: the {what} program did not halt:\n{e}") from e
        if run_info is not None:
            run_info.append(info)
        off, n = prog.layout[out]
        return np.frombuffer(buf.read(n, offset=off), "<u2")
