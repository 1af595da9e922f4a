"""The LLaDA forward on the NPU: the model's tensors in the compiler's naming, the program
(`dnpu.compiler.forward`) with its weights placed once per opened device, and two
references to check it by.

    logits = dnpu.forward(model, ids, backend="emu")          # float32 [B, T, E], the NPU's BF16

- `reference_logits(model, ids)`: the NPU's arithmetic composed from
  `dnpu.spec.kernels` and `matmul.matmul_bf16` in NumPy, bit for bit what the program
  computes (docs/NUMERICS.md sections 11-15).
- `quantized_torch_logits(model, ids)`: PyTorch's own LLaDA forward in BF16 with the
  linear weights replaced by their MX-quantized values: the same quantization with
  PyTorch's arithmetic, which differs from the NPU's by roundings (near-ties at most in
  the argmax).

What the NPU runs differs from the host model only where it must: weights MX-quantized
(`fmt`), activations BF16 throughout, the RoPE tables in BF16, attention as the
streaming softmax of section 15. Grouped K/V heads are not compiled (LLaDA-8B and the
tiny models have n_kv_heads = n_heads).
"""

from __future__ import annotations

import weakref

import numpy as np

from dnpu.compiler import CompileError, artifact
from dnpu.model import kvquant
from dnpu.compiler.forward import (SECTIONS, ForwardProgram, ForwardShape, KvStep, effective_weights,
                                   forward_program, kv_layout, weight_image)
from dnpu.spec import matmul
from dnpu.spec import config as config_mod
from dnpu.spec import kernels
from dnpu.spec import numerics as nm
from dnpu.spec.config import Config

__all__ = ["forward", "NpuForward", "forward_shape", "npu_tensors", "reference_logits", "reference_forward",
           "reference_cache", "quantized_torch_logits",
           "quantized_torch_model", "reference_step", "NEAR_TIE", "argmax_mismatches"]

# A token the NPU picks over the reference's is a near-tie when, in the reference's
# logits of that position, it trails the reference's pick by at most NEAR_TIE times the
# row's largest magnitude: the spread BF16 activations through the layers give (on the
# shipped model's prompts the NPU's logits are within 6 % of PyTorch's BF16 forward with
# the same weights, 0.4 % on average).
NEAR_TIE = 1 / 16


def forward_shape(cfg, seq_len: int) -> ForwardShape:
    """The compiler's shape of a LLaDAConfig at sequence length seq_len."""
    if cfg.n_kv_heads != cfg.n_heads:
        raise CompileError(f"n_kv_heads = {cfg.n_kv_heads} != n_heads = {cfg.n_heads}: grouped K/V heads are "
                           f"not compiled for the NPU")
    return ForwardShape(cfg.d_model, cfg.n_heads, cfg.n_layers, cfg.mlp_hidden_size, cfg.embedding_size, int(seq_len))


# The compiler's name of each tensor (TENSORS) -> LLaDA's module path, without ".weight".
_GLOBAL_NAMES = {"wte": "model.transformer.wte", "ln_f": "model.transformer.ln_f", "head": "model.transformer.ff_out"}
_LAYER_NAMES = {"attn_norm": "attn_norm", "ff_norm": "ff_norm", "q": "q_proj", "k": "k_proj", "v": "v_proj",
                "o": "attn_out", "gate": "ff_proj", "up": "up_proj", "down": "ff_out"}


def _checkpoint_names(n_layers: int) -> dict[str, str]:
    """The compiler's tensor name -> LLaDA's checkpoint key, every tensor the forward uses."""
    names = {ours: f"{theirs}.weight" for ours, theirs in _GLOBAL_NAMES.items()}
    for i in range(n_layers):
        names |= {f"layers.{i}.{ours}": f"model.transformer.blocks.{i}.{theirs}.weight"
                  for ours, theirs in _LAYER_NAMES.items()}
    return names


def npu_tensors(model, seq_len: int) -> dict[str, np.ndarray]:
    """The model's tensors as float64 arrays in dnpu.compiler.forward's naming (TENSORS),
    the RoPE tables for positions 0..seq_len-1 (one half: both halves repeat it). `model`:
    a `dnpu.model.LLaDA`, or a `dnpu.model.NumpyLLaDA` (torch is not imported)."""
    sd = model.state_dict()
    if hasattr(model, "parameters"):
        import torch

        def f64(a):
            return a.detach().float().cpu().numpy().astype(np.float64)
        cos, sin = model._rope(int(seq_len), torch.device("cpu"))
    else:
        def f64(a):
            return np.asarray(a, np.float64)
        cos, sin = model.rope(int(seq_len))
    t = {ours: f64(sd[theirs]) for ours, theirs in _checkpoint_names(model.config.n_layers).items()}
    h = model.config.head_dim // 2
    t["cos"] = f64(cos[:, :h])
    t["sin"] = f64(sin[:, :h])
    return t


def reference_logits(model, ids, *, fmt: str = "e4m3", config: str | Config = "sim") -> np.ndarray:
    """The NPU's forward of one sequence `ids` (ints [T]) in NumPy: BF16 bits [T, E]."""
    return reference_forward(model, ids, fmt=fmt, config=config)[0]


def reference_forward(model, ids, *, fmt: str = "e4m3", config: str | Config = "sim", kv=None,
                      cache=None) -> tuple[np.ndarray, list]:
    """The NPU's forward in NumPy, bit for bit what `forward_program(..., kv=kv)` computes:
    (logits BF16 bits [n, E] of the positions the program computes, and per layer the
    (keys before RoPE, values) BF16 bits [T, d] the attention used). A "dual" KvStep reads
    `cache` (per layer (K, V) as the refresh stored them: `reference_cache`) with the
    block's own rows over them."""
    cfg = config if isinstance(config, Config) else config_mod.load(config)
    c = model.config
    ids = np.asarray(ids, np.int64)
    T = ids.size
    shape = forward_shape(c, T)
    prog = forward_program(cfg, shape, fmt, kv)
    q0, n = prog.rows
    t = npu_tensors(model, T)
    wq = effective_weights(cfg, shape, t, fmt)
    vlen = cfg.vector.vlen
    d, H, hd = c.d_model, c.n_heads, c.head_dim
    eps_bits = int(nm.round_f32(np.float64(c.rms_norm_eps)))
    bf = nm.round_bf16
    cos, sin = bf(t["cos"]), bf(t["sin"])

    def norm(x, g):
        return kernels.rms_norm_bf16(x, bf(g), eps_bits, d, vlen)

    baos = kv is not None and kv.fmt.startswith("baos-")
    x = bf(t["wte"])[ids[q0:q0 + n]]
    used = []
    for i in range(c.n_layers):
        L = f"layers.{i}."
        h = norm(x, t[L + "attn_norm"])
        q, k, v = (matmul.matmul_bf16(h, wq[L + w]) for w in ("q", "k", "v"))
        r = None
        if n != T:
            K, V = (np.array(a, np.uint16) for a in cache[i][:2])
            if baos:                         # the cached keys plus the shift, the block's fresh keys smoothed
                r, u = cache[i][2], cache[i][3]
                K = np.concatenate([kvquant.bf16_add(K[:, j * hd:(j + 1) * hd], u[j]) for j in range(H)], axis=1)
                k = np.concatenate([kvquant.baos_smooth(k[:, j * hd:(j + 1) * hd][None], r[j])[0]
                                    for j in range(H)], axis=1)
            K[q0:q0 + n], V[q0:q0 + n] = k, v
            k, v = K, V
        used.append((k, v))
        heads = []
        for j in range(H):
            s = slice(j * hd, (j + 1) * hd)
            qh = kernels.rope_bf16(q[:, s], cos[q0:q0 + n], sin[q0:q0 + n], 1)
            if r is not None:                # the rotated query times s (exact)
                sj = nm.reci_bf16(np.concatenate([r[j], r[j]]))
                qh = nm.bf16_bits(nm.mul(nm.bf16_value(qh), nm.bf16_value(np.broadcast_to(sj, qh.shape)), "bf16"))
            kh = kernels.rope_bf16(k[:, s], cos, sin, 1)
            heads.append(kernels.attention_bf16(qh, kh, v[:, s], prog.key_tile, vlen))
        x = matmul.matmul_bf16(np.concatenate(heads, axis=1), wq[L + "o"], residual_bits=x)
        h = norm(x, t[L + "ff_norm"])
        g, u = (matmul.matmul_bf16(h, wq[L + w]) for w in ("gate", "up"))
        x = matmul.matmul_bf16(kernels.swiglu_bf16(g, u), wq[L + "down"], residual_bits=x)
    return matmul.matmul_bf16(norm(x, t["ln_f"]), wq["head"]), used


def reference_cache(used: list, model_config, kv_fmt: str, config: str | Config = "sim") -> list:
    """What a refresh stores and the later steps read back: per layer the (K, V) of
    `reference_forward`, each head through the MX round trip of kv_fmt in the profile's
    head layout (docs/NUMERICS.md section 16); bf16 keeps them. baos-<fmt>: (K', V, r, u),
    K' the smoothed keys' round trip, r [heads, hd/2] BAOS's scales, u [heads, hd] its
    smoothed shift."""
    cfg = config if isinstance(config, Config) else config_mod.load(config)
    if kv_fmt == "bf16":
        return [(np.array(k), np.array(v)) for k, v in used]
    H, hd = model_config.n_heads, model_config.head_dim
    baos, fmt = kv_fmt.startswith("baos-"), kv_fmt.removeprefix("baos-")
    out = []
    for k, v in used:
        kh, vh = (a.reshape(a.shape[0], H, hd).transpose(1, 0, 2) for a in (k, v))      # [H, T, hd]
        if baos:
            kh, r, u = kvquant.baos_encode(kh)
        kq, vq = (kvquant.roundtrip_bits(a, fmt, cfg).transpose(1, 0, 2).reshape(k.shape) for a in (kh, vh))
        out.append((kq, vq, r, u) if baos else (kq, vq))
    return out


def reference_step(model, ids, start: int, length: int, mask_id: int, *, k: int | None = None,
                   threshold: float | None = None, fmt: str = "e4m3", config: str | Config = "sim"):
    """The NPU's whole step in NumPy (NpuForward.step's arithmetic): the block's logits of
    `reference_logits`, the phased flow's x0 and confidence on the BF16 rows (vocabulary
    padding at -Inf), masked where ids != mask_id, V_TOPK_MASK (k, or 1 with a threshold),
    V_THRESH_MASK, V_SELECT_INT. Returns (x_new, x0, conf FP32 bits)."""
    cfg = config if isinstance(config, Config) else config_mod.load(config)
    ids = np.asarray(ids, np.int64)
    vlen = cfg.vector.vlen
    lg = reference_logits(model, ids, fmt=fmt, config=cfg)[start:start + length]
    E = lg.shape[1]
    rows = np.full((length, -(-E // vlen) * vlen), nm.BF16_NEG_INF, np.uint16)
    rows[:, :E] = lg
    x0, p = nm.phased_confidence(rows, vlen)
    x = ids[start:start + length]
    mask = x == mask_id
    conf = np.where(mask, nm.f32_value(p), -np.inf)
    commit = nm.topk_mask(conf, 1 if k is None else k).astype(bool)
    commit |= nm.thresh_mask(conf, np.inf if threshold is None else float(nm.f32_value(nm.round_f32(threshold))))
    conf_bits = np.where(mask, p, np.uint32(nm.F32_NEG_INF)).astype(np.uint32)
    return np.where(commit, x0, x), x0.astype(np.int64), conf_bits


def quantized_torch_model(model, *, fmt: str = "e4m3", config: str | Config = "sim"):
    """A CPU BF16 copy of the model with the NPU's quantization on `config`: every linear
    weight as the matrix unit multiplies by it (`dnpu.compiler.forward.effective_weights`:
    MX format fmt along K), the embedding and gains in BF16, the RoPE tables rounded to
    BF16. Its forward is PyTorch's arithmetic on the NPU's operands."""
    import copy

    import torch

    cfg = config if isinstance(config, Config) else config_mod.load(config)
    q = copy.deepcopy(model).to("cpu", torch.float32)
    wq = effective_weights(cfg, forward_shape(model.config, 1), npu_tensors(model, 1), fmt)
    params = dict(q.named_parameters())
    with torch.no_grad():
        for ours, theirs in _checkpoint_names(model.config.n_layers).items():
            if ours in wq:                          # the linear weights; the rest stays (BF16)
                params[theirs].copy_(torch.from_numpy(nm.bf16_value(wq[ours])))
    q = q.to(torch.bfloat16)
    q.rope_table_dtype = torch.bfloat16
    return q


def quantized_torch_logits(model, ids, *, fmt: str = "e4m3", config: str | Config = "sim") -> np.ndarray:
    """float32 logits [B, T, E] of ids [B, T] by `quantized_torch_model`."""
    import torch

    with torch.no_grad():
        out = quantized_torch_model(model, fmt=fmt, config=config)(torch.as_tensor(np.asarray(ids),
                                                                                   dtype=torch.int64))
    return out.float().numpy()


def argmax_mismatches(npu, ref) -> tuple[np.ndarray, np.ndarray]:
    """(positions whose argmax differs, those of them that are near-ties) of logits [..., E]."""
    npu, ref = np.asarray(npu, np.float64), np.asarray(ref, np.float64)
    a, r = npu.argmax(-1), ref.argmax(-1)
    diff = a != r
    gap = np.take_along_axis(ref, r[..., None], -1)[..., 0] - np.take_along_axis(ref, a[..., None], -1)[..., 0]
    near = diff & (gap <= NEAR_TIE * np.abs(ref).max(-1))
    return diff, near


class NpuForward:
    """A compiled forward (one model, one sequence length, one profile, one weight format):
    the program and its weights image, built once (`compile`) or read from a compiled-model
    directory (`load`, written by `save` / `dnpu compile`), placed once per opened device."""

    def __init__(self, program: ForwardProgram, image: bytes, config: Config, embedding_size: int) -> None:
        self.program, self.image, self.config = program, image, config
        self.embedding_size = int(embedding_size)
        self._placed: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # dev -> {what: buffer}

    @classmethod
    def compile(cls, model, seq_len: int, *, config: str | Config = "sim", fmt: str = "e4m3") -> "NpuForward":
        cfg = config if isinstance(config, Config) else config_mod.load(config)
        prog = forward_program(cfg, forward_shape(model.config, seq_len), fmt)
        image = weight_image(prog, cfg, npu_tensors(model, seq_len), model.config.rms_norm_eps)
        return cls(prog, image, cfg, model.config.embedding_size)

    @classmethod
    def load(cls, path, *, config: str | Config = "sim") -> "NpuForward":
        """The forward of the compiled-model directory `path`, refused (ArtifactError) when
        it was built for another profile or ISA version."""
        cfg = config if isinstance(config, Config) else config_mod.load(config)
        art = artifact.read(path, cfg)
        return cls(art.program, art.image, cfg, art.model_config["embedding_size"])

    def save(self, out, model_config, tokenizer=None):
        """Write this forward as a compiled-model directory `out` (dnpu.compiler.artifact)."""
        return artifact.write(out, self.program, self.image, self.config, model_config.to_dict(),
                              model_config.rms_norm_eps, tokenizer)

    @property
    def seq_len(self) -> int:
        return self.program.shape.seq_len

    def variant(self, kv: KvStep | None) -> ForwardProgram:
        """The program of a step with the KV cache (KvStep; None: the plain forward). Every
        variant reads the same weights image."""
        if kv is None:
            return self.program
        prog = forward_program(self.config, self.program.shape, self.program.fmt, kv)
        if prog.weight_layout != self.program.weight_layout:
            raise CompileError(f"the {kv.mode} program's weights layout differs from the forward's")
        return prog

    def _buffers(self, dev, prog: ForwardProgram):
        placed = self._placed.setdefault(dev, {})
        if "weights" not in placed:
            w = dev.alloc(len(self.image), zero=False)
            w.write(self.image)
            placed["weights"] = w
        p = placed.get(("program", prog.kv))
        if p is None:
            p = placed[("program", prog.kv)] = dev.alloc(prog.kernel.nbytes)
            p.write(prog.kernel.binary, offset=prog.kernel.layout["program"][0])
        return placed["weights"], p

    def cache(self, dev, fmt: str, slot: int = 0):
        """The device's KV cache buffer `slot` (one per sequence in flight) for KV format
        `fmt` (kv_layout), allocated once."""
        placed = self._placed.setdefault(dev, {})
        key = ("kv", fmt, int(slot))
        if key not in placed:
            placed[key] = dev.alloc(kv_layout(self.config, self.program.shape, fmt)[1])
        return placed[key]

    def run(self, dev, ids, run_info: list | None = None, *, trace: bool = False) -> np.ndarray:
        """Logits BF16 bits [T, E] of one sequence `ids` (ints [T]) on the opened device;
        trace: record the retires (RunInfo.trace) for `section_cycles`."""
        T = self.seq_len
        out = self._go(dev, self.program, ids, self.program.params(0, 0, np.inf), (0, 0, T * self._er), run_info,
                       trace)
        return self._logits(self.program, out, T)

    def step(self, dev, ids, start: int, length: int, mask_id: int, *, k: int | None = None,
             threshold: float | None = None, logits: bool = False, run_info: list | None = None,
             trace: bool = False, kv: KvStep | None = None, slot: int = 0):
        """One whole diffusion step: the forward of `ids` and the sampling of positions
        [start, start + length) on the chip (quota k, or a threshold: exactly one). Returns
        (x_new, x0, conf) of the block (int64, int64, float64 [length]) and, with `logits`,
        the block's logits (BF16 bits [length, E]); otherwise they never leave the chip.
        kv: a step with the device's KV cache in kv.fmt (a "refresh" stores it, a "dual"
        step computing [kv.start, kv.start + kv.length), which begins with the block and
        holds it, reads it: the block alone for a dual cache, the block and all after it
        for a prefix cache); slot: which of the device's caches (one per sequence)."""
        T = self.seq_len
        if kv is not None and kv.mode == "dual" and (kv.start != start or kv.length < length):
            raise ValueError(f"the dual step computes [{kv.start}, {kv.start + kv.length}), which must begin "
                             f"with the block [{start}, {start + length}) and hold it")
        if (k is None) == (threshold is None):
            raise ValueError("give exactly one of k (a quota) and threshold")
        if not (0 <= start and 1 <= length and start + length <= T):
            raise ValueError(f"block [{start}, {start + length}) is not inside the {T} positions")
        if k is not None and not 0 <= k <= length:
            raise ValueError(f"k = {k} is outside [0, {length}]")
        kk, t = (k, np.inf) if k is not None else (1, threshold)
        prog = self.variant(kv)
        cache = self.cache(dev, kv.fmt, slot) if kv is not None else None
        p = self._go(dev, prog, ids, prog.params(kk, mask_id, t, cache.addr if cache else 0),
                     (start, length, length * self._er if logits else 0), run_info, trace,
                     grant=[cache] if cache else [])
        off = prog.kernel.layout["out"][0]
        words = np.frombuffer(p.read(12 * T, offset=off), "<u4")
        x_new = words[:length].view("<i4").astype(np.int64)
        x0 = words[T:T + length].view("<i4").astype(np.int64)
        conf = nm.f32_value(words[2 * T:2 * T + length].copy())
        return (x_new, x0, conf, self._logits(prog, p, length)) if logits else (x_new, x0, conf)

    @property
    def _er(self) -> int:
        return -(-self.embedding_size // self.config.vector.vlen)

    def _logits(self, prog: ForwardProgram, p, rows: int) -> np.ndarray:
        off = prog.kernel.layout["logits"][0]
        Ep = self._er * self.config.vector.vlen
        return np.frombuffer(p.read(2 * rows * Ep, offset=off), "<u2").reshape(rows, Ep)[:, :self.embedding_size].copy()

    def _go(self, dev, prog: ForwardProgram, ids, params: bytes, counts: tuple[int, int, int], run_info, trace: bool,
            grant=()):
        from dnpu import runtime

        runtime.check_run_info(run_info)
        ids = np.asarray(ids)
        E, T = self.embedding_size, self.seq_len
        if ids.shape != (T,):
            raise ValueError(f"ids: expected {T} token ids (the compiled sequence length), got shape {list(ids.shape)}")
        if ids.size and (ids.min() < 0 or ids.max() >= E):
            raise ValueError(f"token ids must be in [0, {E}); got min {ids.min()}, max {ids.max()}")
        w, p = self._buffers(dev, prog)
        k = prog.kernel
        p.write(ids.astype("<i4").tobytes(), offset=k.layout["ids"][0])
        p.write(params, offset=k.layout["params"][0])
        try:
            info = dev.run(p.addr + k.layout["program"][0], args=prog.args(p.addr, w.addr, *counts),
                           trace=len(k.binary) * 64 if trace else False, grant=grant)   # the KV cache: by address in params
        except runtime.DeviceError as e:
            raise RuntimeError(f"{dev.backend}: the forward program did not halt:\n{e}") from e
        if run_info is not None:
            run_info.append(info)
        return p

    def section_cycles(self, info, kv: KvStep | None = None) -> dict[str, int]:
        """Cycles of a traced co-simulated run (`run(..., trace=True)`, or a `step` with
        `kv`) by the kind of work (dnpu.compiler.forward.SECTIONS): each retire's cycles
        since the one before go to its instruction's section; what follows the last retire
        (the halt) to "store"."""
        prog = self.variant(kv)
        if info.trace is None or info.cycles is None or info.trace_dropped:
            raise ValueError("section_cycles needs a complete retire trace with cycles (run(..., trace=True) "
                             "on a clocked backend)")
        out = dict.fromkeys(SECTIONS, 0)
        last = 0
        for r in info.trace:
            out[prog.section_of((r.pc - info.prog) // 4)] += r.cycle - last
            last = r.cycle
        out["store"] += info.cycles - last
        return out


_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def forward(model, ids, *, backend: str = "emu", config: str | Config | None = None, fmt: str = "e4m3",
            run_info: list | None = None) -> np.ndarray:
    """The logits the NPU computes for ids [B, T] (or [T]): float32 [B, T, E] holding BF16
    values. The compiled program and weights image are kept per model, sequence length,
    profile and format; `run_info` collects one RunInfo per sequence."""
    from dnpu import runtime

    runtime.check_run_info(run_info)
    cfg = config_mod.load(config or "sim") if not isinstance(config, Config) else config
    a = np.asarray(ids.detach().cpu().numpy() if hasattr(ids, "detach") else ids)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.size == 0 or a.dtype.kind not in "iu":
        raise ValueError(f"ids: expected a non-empty int array [B, T], got shape {list(a.shape)} dtype {a.dtype}")
    per = _CACHE.setdefault(model, {})
    key = (a.shape[1], cfg.name, cfg.config_hash, fmt)
    try:
        fw = per.get(key) or per.setdefault(key, NpuForward.compile(model, a.shape[1], config=cfg, fmt=fmt))
    except CompileError as e:
        raise ValueError(f"the model does not compile for profile {cfg.name}: {e}") from None
    with runtime.open(backend, config=cfg) as dev:
        out = np.stack([fw.run(dev, row, run_info) for row in a])
    return nm.bf16_value(out).astype(np.float32)


