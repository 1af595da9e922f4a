"""Compiler: the whole LLaDA forward (embedding to logits, no KV cache) as one NPU program
whose activations never leave the vector SRAM.

`forward_program(config, shape, fmt)` plans the SRAM once and chains the kernels of
docs/NUMERICS.md in it, with the same arithmetic as the one-kernel programs:

- embedding: per token `S_LD_INT`, `S_MUL`, `H_LOAD_V` of its table row into x;
- per layer: RMSNorm (section 12) of x into h; per head, the q, k and v projections
  (`M_MM`, N = head_dim, section 11) straight into the attention plan's rows, RoPE in
  place on q and k (section 14), attention (section 15, `dnpu.compiler.attention`), and
  the output projection as a K split over the heads (`M_MM_F32`, `M_MM_ACC_F32`…,
  `M_MM_ACC_RES` into x: bit for bit one `M_MM_RES` over the whole K); RMSNorm into h;
  the MLP in chunks of the hidden size (gate and up by `M_MM`, SwiGLU's gate, section
  13), the down projection again a K split into x;
- the final norm and the LM head, whose logits `[T, E]` stay in vector SRAM;
- the sampling step on them (`sample_rows`): per position of the block [s, s + L) the
  phased flow's arithmetic on the BF16 row (docs/NUMERICS.md section 8: max and argmax,
  shift, EXP, sum, RECI; vocabulary padding masked to -Inf), the mask from the ids
  (x == mask_id), then V_MASK_FP, V_TOPK_MASK (quota k, or 1 with a threshold),
  V_THRESH_MASK and V_SELECT_INT, as the fused sampling program commits. x_new, x0 and
  conf of the block leave by `H_STORE_INT` / `H_STORE_FP`; the logits only when asked
  (`logits_rows`). With L = 0 the program is the plain forward.

Arguments (FORWARD_ARGS): the ids (int32 [T]), the logits buffer (BF16 [T, E] padded to
vector rows, filled from position s on), the step's values (PARAMS), the step's outputs
(int32 x_new [T], int32 x0 [T], FP32 conf [T], the block's first L of each), the weights
image, and the counts s, L and the logits rows to store; and the weights image (`weight_layout`: every tensor at a 64-byte aligned offset, linear
weights MX-packed per slice in the matrix weight layout, the rest BF16, the norm
constants FP32).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from dnpu.compiler import confidence_row
from dnpu.compiler.attention import head_layout, head_rows, plan_head
from dnpu.compiler.kvcache import (KV_FORMATS, KvStep, add_shift, baos_places, baos_refresh, kv_io, kv_layout,
                                   kv_storage, kv_traffic, scale_rows)
from dnpu.compiler.kernel import KernelProgram, build, loop
from dnpu.compiler.norm import norm_rows
from dnpu.compiler.swiglu import swiglu_rows
from dnpu.spec import isa, matrix, mx
from dnpu.spec import numerics as nm
from dnpu.spec.config import Config

__all__ = ["ForwardShape", "ForwardProgram", "forward_program", "weight_image", "FORWARD_ARGS", "TENSORS",
           "SECTIONS", "PARAMS", "PARAM_THRESHOLD", "PARAM_KV", "sample_rows", "head_layout", "effective_weights",
           "KvStep", "kv_layout", "kv_traffic", "KV_FORMATS"]

# The kinds of work a forward's instructions do, for profiles of where its cycles go.
SECTIONS = ("setup", "embedding", "norm", "linear", "rope", "attention", "activation", "sample", "store", "kv")

# Which argument register carries which buffer's address: the ids and the logits lie
# with the program (`kernel.layout`), the weights image wherever the device placed it.
# The sampling step's block and how much of the logits to store are arguments, not memory,
# because they set loop and transfer counts (which the cycle model must know): the block's
# first position s, its length L (0: no sampling) and the logits rows (of E padded to
# vector rows) to store from position s on (0: none).
FORWARD_ARGS = ("ids", "logits", "params", "out", "weights", "start", "length", "logits_rows")
_REG = {"ids": "x1", "weights": "x2", "logits": "x3"}

# The step's values (int32 words of the "params" buffer; the threshold as FP32 at word
# PARAM_THRESHOLD; the KV cache's address at PARAM_KV): the quota k and the mask token id.
# The cache's address is data, not an argument register: the eight are taken, and the
# cycle model needs only the counts.
PARAMS = ("k", "mask_id")
PARAM_THRESHOLD = 2
PARAM_KV = 3
PARAM_WORDS = PARAM_KV + 1

# The tensors weight_image takes (per layer i: "layers.{i}.<name>"), by role:
# BF16 tables and gains, linear weights [out, in] (MX-packed per slice), RoPE tables.
TENSORS = {"wte": "[E, d] embedding table", "ln_f": "[d] final norm gain", "head": "[E, d] LM head",
           "cos": "[T, hd/2] RoPE cos", "sin": "[T, hd/2] RoPE sin",
           "attn_norm": "[d] gain", "q": "[d, d]", "k": "[d, d]", "v": "[d, d]", "o": "[d, d]",
           "ff_norm": "[d] gain", "gate": "[F, d]", "up": "[F, d]", "down": "[d, F]"}


@dataclasses.dataclass(frozen=True)
class ForwardShape:
    """The network (LLaDA, multi-head, no biases) and the sequence length T compiled for."""

    d_model: int
    n_heads: int
    n_layers: int
    mlp_hidden: int
    embedding_size: int
    seq_len: int

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


@dataclasses.dataclass(frozen=True)
class ForwardProgram:
    """The compiled forward: the program (`kernel`: binary, source, argument order), the
    weights image's layout {name: (offset, bytes)}, the MX format of its linear weights,
    the chunk of the MLP hidden size, the attention key tile, and where each kind of
    work starts: (instruction index, one of SECTIONS), in program order."""

    kernel: KernelProgram
    shape: ForwardShape
    fmt: str
    weight_layout: dict[str, tuple[int, int]]
    mlp_chunk: int
    key_tile: int
    sections: tuple[tuple[int, str], ...] = ()
    all_logits_rows: int = 0          # vector rows of every position's logits
    kv: KvStep | None = None

    def section_of(self, word: int) -> str:
        """The kind of work (SECTIONS) instruction `word` (index from the program start) does."""
        kind = "setup"
        for first, name in self.sections:
            if first > word:
                break
            kind = name
        return kind

    @property
    def weights_nbytes(self) -> int:
        return max(o + n for o, n in self.weight_layout.values())

    def args(self, base: int, weights: int, start: int = 0, length: int = 0,
             logits_rows: int | None = None) -> list[int]:
        """The argument registers for the program and its buffers at `base`, the weights
        image at `weights`, and a step's block [start, start + length) with the logits rows
        to store (default: the plain forward, every position's logits, no sampling)."""
        rows = self.all_logits_rows if logits_rows is None else logits_rows
        return [*self.kernel.args(base), weights, start, length, rows]

    @staticmethod
    def params(k: int, mask_id: int, threshold: float, kv: int = 0) -> bytes:
        """The "params" buffer of a step (PARAMS; threshold +Inf with a quota; the KV
        cache's address, with a KvStep)."""
        words = np.zeros(PARAM_WORDS, "<u4")
        words[:len(PARAMS)] = [k, mask_id]
        words[PARAM_THRESHOLD] = nm.round_f32(np.float64(threshold))
        words[PARAM_KV] = kv
        return words.tobytes()

    @property
    def rows(self) -> tuple[int, int]:
        """(first position, positions) the program computes."""
        kv = self.kv
        return (kv.start, kv.length) if kv is not None and kv.mode == "dual" else (0, self.shape.seq_len)


def _head_index(hd: int, hhp: int) -> np.ndarray:
    """The padded head's features: the source feature of each, -1 for padding."""
    idx = np.full(2 * hhp, -1, np.int64)
    idx[:hd // 2] = np.arange(hd // 2)
    idx[hhp:hhp + hd // 2] = np.arange(hd // 2, hd)
    return idx


def _slices(cfg: Config, shape: ForwardShape, chunk: int) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(image entry, source tensor, row indices, column indices) of every linear weight
    slice; an index of -1 is a zero row or column (head padding, vocabulary padding)."""
    d, hd, F, E = shape.d_model, shape.head_dim, shape.mlp_hidden, shape.embedding_size
    _, hhp = head_layout(cfg, hd)
    hidx = _head_index(hd, hhp)
    vlen = cfg.vector.vlen
    all_d = np.arange(d)
    out = []
    for i in range(shape.n_layers):
        p = f"layers.{i}."
        for h in range(shape.n_heads):
            heads = np.where(hidx < 0, -1, h * hd + hidx)
            for w in ("q", "k", "v"):
                out.append((f"{p}{w}.{h}", p + w, heads, all_d))
            out.append((f"{p}o.{h}", p + "o", all_d, heads))
        for c0 in range(0, F, chunk):
            c = np.arange(c0, min(F, c0 + chunk))
            out += [(f"{p}gate.{c0}", p + "gate", c, all_d), (f"{p}up.{c0}", p + "up", c, all_d),
                    (f"{p}down.{c0}", p + "down", all_d, c)]
    head_rows = np.full(-(-E // vlen) * vlen, -1, np.int64)
    head_rows[:E] = np.arange(E)
    out.append(("head", "head", head_rows, all_d))
    return out


def _layout(cfg: Config, shape: ForwardShape, fmt: str, chunk: int) -> dict[str, tuple[int, int]]:
    d, E, T, hd = shape.d_model, shape.embedding_size, shape.seq_len, shape.head_dim
    vlen, block = cfg.vector.vlen, cfg.mx.block
    _, hhp = head_layout(cfg, hd)
    sizes = [("consts", 8), ("wte", 2 * E * d), ("ln_f", 2 * d), ("cos", 2 * T * hhp), ("sin", 2 * T * hhp)]
    for i in range(shape.n_layers):
        sizes += [(f"layers.{i}.attn_norm", 2 * d), (f"layers.{i}.ff_norm", 2 * d)]
    for name, _, rows, cols in _slices(cfg, shape, chunk):
        sizes.append((name, matrix.tile_nbytes(len(cols), fmt, block, vlen) * (len(rows) // vlen)))
    layout, off = {}, 0
    for name, n in sizes:
        layout[name] = (off, n)
        off = mx.align_up(off + n, mx.PACK_ALIGN)
    return layout


class _Sram:
    """Vector-SRAM places, allocated upwards."""

    def __init__(self) -> None:
        self.top = 0

    def take(self, rows: int) -> int:
        at, self.top = self.top, self.top + rows
        return at


def _plan(cfg: Config, shape: ForwardShape, n: int | None = None):
    """SRAM places for a program computing n of the T positions (default all); the MLP
    chunk is planned for n = T, so every variant shares the weights image."""
    from dnpu.compiler import CompileError

    vlen, km = cfg.vector.vlen, matrix.k_multiple(cfg.vector.vlen, cfg.mx.block)
    d, T, hd, F, E = shape.d_model, shape.seq_len, shape.head_dim, shape.mlp_hidden, shape.embedding_size
    n = T if n is None else n
    if not cfg.matrix.rows:
        raise CompileError(f"the forward needs the matrix unit; profile {cfg.name} has [matrix] rows = 0")
    if min(d, shape.n_heads, shape.n_layers, F, E, T) < 1 or d % shape.n_heads:
        raise CompileError(f"shape {shape}: sizes must be positive and d_model a multiple of n_heads")
    for what, v, m in (("d_model", d, km), ("mlp_hidden_size", F, km)):
        if v % m:
            raise CompileError(f"{what} = {v} must be a multiple of {m} on profile {cfg.name} "
                               f"(vector.vlen = {vlen}, mx.block = {cfg.mx.block})")
    if 5 * T + 9 > cfg.sram.int_words or T + 16 > cfg.sram.fp_words:
        raise CompileError(f"seq_len {T}: the ids and the sampling step need {5 * T + 9} int-SRAM and {T + 16} "
                           f"FP-SRAM words; profile {cfg.name} has sram.int_words = {cfg.sram.int_words}, "
                           f"sram.fp_words = {cfg.sram.fp_words}")
    hdp, hhp = head_layout(cfg, hd)
    dv, hh = d // vlen, hhp // vlen
    s = _Sram()
    p = {"x": s.take(n * dv), "h": s.take(n * dv), "gain": s.take(dv), "sq": s.take(dv),
         "cos": s.take(T * hh), "sin": s.take(T * hh), "rot": s.take(4 * hh), "acc": s.take(2 * n * dv)}
    base = s.top
    att = None
    for B in range(-(-T // km) * km, 0, -km):     # the largest key tile that fits
        try:
            att = plan_head(cfg, n, T, hdp, B, base=base, fp=2, scale_hd=hd)
            break
        except CompileError:
            if B == km:
                raise
    free = cfg.sram.vector_rows - (base + 4 * (T - n) * dv)      # as for n = T: x, h and acc at T rows
    chunk = 0
    for c in range(km, F + 1, km):          # the largest chunk of whole K multiples that fits
        if F % c == 0 and 3 * T * c // vlen <= free:
            chunk = c
    Ep = -(-E // vlen) * vlen
    need = max(att.vector_rows, base + 3 * n * (chunk or km) // vlen, base + n * Ep // vlen + 1)
    if not chunk or need > cfg.sram.vector_rows:
        raise CompileError(f"the forward of {n} of T={T} tokens, d_model={d}, mlp {F}, vocab {E} needs {need} "
                           f"vector-SRAM rows; profile {cfg.name} has sram.vector_rows = {cfg.sram.vector_rows}")
    return p, att, chunk, B


def _at(reg: str, layout, name: str) -> list[str]:
    """reg = the address of image entry `name` (x2 holds the image's base)."""
    return [*isa.load_imm(reg, layout[name][0]), f"S_ADD {reg}, x2, {reg}"]


def _mm(op: str, layout, name: str, fmt: str, M: int, N: int, K: int, vd: int, vx: int,
        va: int | None = None) -> list[str]:
    li = isa.load_imm
    a = [*li("x4", M), *li("x5", N), *li("x6", K), "M_CFG x4, x5, x6", *_at("x7", layout, name),
         *li("x4", vd), *li("x5", vx)]
    if op == "M_MM_ACC_RES":
        return a + [*li("x6", va), f"{op} x4, x5, x7, x6, {fmt}"]
    if op == "M_MM_RES":
        return a + [f"{op} x4, x5, x7, x4, {fmt}"]
    return a + [f"{op} x4, x5, x7, {fmt}"]


def _norm(p: dict, layout, gain: str, T: int, dv: int) -> list[str]:
    """h = RMSNorm(x) with the gain `gain` (section 12; FP[0] = 1/d, FP[1] = eps)."""
    li = isa.load_imm
    return [*li("x4", p["gain"]), *li("x5", dv), *_at("x6", layout, gain), "H_LOAD_V x4, x6, x5",
            "S_LD_FP f1, x0, 0", "S_LD_FP f2, x0, 1",
            *li("x8", p["x"]), *li("x9", p["h"]), *li("x10", p["sq"]), *li("x11", p["gain"]),
            *loop(T, [*norm_rows("x8", "x9", "x10", "x11", "x5", "f1", "f2", "f3"), "S_ADD x8, x8, x5",
                      "S_ADD x9, x9, x5"])]


def _rope(p: dict, at: int, T: int, hh: int, pos0: int = 0) -> list[str]:
    """Rotate-half RoPE in place on T tokens of one head at row `at`, the first at
    position pos0 (section 14)."""
    li = isa.load_imm
    return [*li("x8", at), *li("x9", p["cos"] + pos0 * hh), *li("x10", p["sin"] + pos0 * hh), *li("x11", hh),
            *li("x12", p["rot"]), *li("x13", p["rot"] + hh), *li("x14", p["rot"] + 2 * hh),
            *li("x15", p["rot"] + 3 * hh),
            *loop(T, ["S_ADD x5, x8, x11", "V_MUL_VV x12, x8, x9, x11", "V_MUL_VV x13, x5, x10, x11",
                      "V_MUL_VV x14, x5, x9, x11", "V_MUL_VV x15, x8, x10, x11",
                      "V_SUB_VV x8, x12, x13, x11", "V_ADD_VV x5, x14, x15, x11",
                      "S_ADD x8, x5, x11", "S_ADD x9, x9, x11", "S_ADD x10, x10, x11"])]


def _source(cfg: Config, shape: ForwardShape, fmt: str, layout, p: dict, att, chunk: int,
            kv: KvStep | None = None) -> str:
    li = isa.load_imm
    vlen = cfg.vector.vlen
    d, T, F, H = shape.d_model, shape.seq_len, shape.mlp_hidden, shape.n_heads
    hd, hhp = head_layout(cfg, shape.head_dim)          # the padded head from here on
    dv, hh, hv = d // vlen, hhp // vlen, hd // vlen
    Ep = -(-shape.embedding_size // vlen) * vlen
    dual = kv is not None and kv.mode == "dual"
    baos = kv is not None and kv_storage(kv.fmt)[0]
    q0, n = (kv.start, kv.length) if dual else (0, T)
    arg = {name: i for i, name in enumerate(FORWARD_ARGS)}
    a = [f"# LLaDA forward: profile {cfg.name}, T={T} d={d} heads={H} layers={shape.n_layers} "
         f"mlp={F} (chunks of {chunk}) vocab={shape.embedding_size}, weights {fmt}"
         + (f", KV cache {kv.mode} in {kv.fmt}" + (f", block [{q0}, {q0 + n})" if dual else "") if kv else ""),
         *(f"S_LD_ARG {_REG[b]}, {arg[b]}" for b in _REG),
         "#@ setup", *_at("x6", layout, "consts"), "S_ADDI x5, x0, 2", "H_LOAD_FP x0, x6, x5",
         *li("x5", T * hh), *li("x4", p["cos"]), *_at("x6", layout, "cos"), "H_LOAD_V x4, x6, x5",
         *li("x4", p["sin"]), *_at("x6", layout, "sin"), "H_LOAD_V x4, x6, x5",
         "#@ embedding",
         *li("x5", T), "H_LOAD_INT x0, x1, x5",
         *li("x5", dv), *li("x6", 2 * d), *_at("x11", layout, "wte"), *li("x12", p["x"]), *li("x9", q0),
         *loop(n, ["S_LD_INT x8, x9, 0", "S_MUL x8, x8, x6", "S_ADD x8, x11, x8", "H_LOAD_V x12, x8, x5",
                   "S_ADD x12, x12, x5", "S_ADDI x9, x9, 1"])]
    if kv is not None:                       # the cache's address, from the step's params
        a += [f"S_LD_ARG x4, {arg['params']}", f"S_ADDI x4, x4, {4 * PARAM_KV}", "S_ADDI x5, x0, 1",
              *li("x6", 5 * T + 8), "H_LOAD_INT x6, x4, x5"]
    for i in range(shape.n_layers):
        L = f"layers.{i}."
        a += [f"# layer {i}: attention", "#@ norm", *_norm(p, layout, L + "attn_norm", n, dv)]
        for h in range(H):
            a += [f"# layer {i} head {h}", "#@ linear", *_mm("M_MM", layout, f"{L}q.{h}", fmt, n, hd, d, att.q, p["h"])]
            if dual:                         # the cached keys and values, the block's own rows over theirs
                a += ["#@ kv", *kv_io(cfg, shape, kv, i, h, 0, att.k, True), *kv_io(cfg, shape, kv, i, h, 1, att.v, True)]
                if baos:                     # s at vt, r = 1/s after it (exact: powers of two), u after r
                    a += [*kv_io(cfg, shape, kv, i, h, 2, att.vt, True), *li("x4", att.vt + hh),
                          *li("x5", att.vt), *li("x6", hh), "V_RECI_V x4, x5, x6",
                          *kv_io(cfg, shape, kv, i, h, 3, att.vt + 2 * hh, True),
                          *add_shift(T, att.k, hv, hh, att.vt + 2 * hh)]
                a += ["#@ linear", *_mm("M_MM", layout, f"{L}k.{h}", fmt, n, hd, d, att.k + q0 * hv, p["h"]),
                      *_mm("M_MM", layout, f"{L}v.{h}", fmt, n, hd, d, att.v + q0 * hv, p["h"])]
                if baos:                     # the block's fresh keys into the smoothed space
                    a += ["#@ kv", *scale_rows(n, att.k + q0 * hv, hv, hh, att.vt + hh)]
            else:
                a += [*_mm("M_MM", layout, f"{L}k.{h}", fmt, T, hd, d, att.k, p["h"]),
                      *_mm("M_MM", layout, f"{L}v.{h}", fmt, T, hd, d, att.v, p["h"])]
                if kv is not None and baos:  # refresh: smoothed keys (before RoPE), their scales, values
                    a += ["#@ kv", *baos_refresh(p, att, T, hv, hh), *kv_io(cfg, shape, kv, i, h, 0, att.vt, False),
                          *kv_io(cfg, shape, kv, i, h, 2, p["rot"] + 2 * hh, False),
                          *kv_io(cfg, shape, kv, i, h, 3, baos_places(att, hv, hh)[3], False),
                          *kv_io(cfg, shape, kv, i, h, 1, att.v, False)]
                elif kv is not None:         # refresh: keys before RoPE, and values
                    a += ["#@ kv", *kv_io(cfg, shape, kv, i, h, 0, att.k, False),
                          *kv_io(cfg, shape, kv, i, h, 1, att.v, False)]
            a += ["#@ rope", *_rope(p, att.q, n, hh, q0), *_rope(p, att.k, T, hh)]
            if dual and baos:                # the rotated queries times s
                a += ["#@ kv", *scale_rows(n, att.q, hv, hh, att.vt)]
            a += ["#@ attention", *head_rows(att), "#@ linear"]
            if H == 1:
                a += _mm("M_MM_RES", layout, f"{L}o.0", fmt, n, d, hd, p["x"], att.o)
            elif h == 0:
                a += _mm("M_MM_F32", layout, f"{L}o.0", fmt, n, d, hd, p["acc"], att.o)
            elif h < H - 1:
                a += _mm("M_MM_ACC_F32", layout, f"{L}o.{h}", fmt, n, d, hd, p["acc"], att.o)
            else:
                a += _mm("M_MM_ACC_RES", layout, f"{L}o.{h}", fmt, n, d, hd, p["x"], att.o, va=p["acc"])
        a += [f"# layer {i}: MLP", "#@ norm", *_norm(p, layout, L + "ff_norm", n, dv)]
        g, u, act = att.q, att.q + n * chunk // vlen, att.q + 2 * n * chunk // vlen
        starts = list(range(0, F, chunk))
        for j, c0 in enumerate(starts):
            a += ["#@ linear", *_mm("M_MM", layout, f"{L}gate.{c0}", fmt, n, chunk, d, g, p["h"]),
                  *_mm("M_MM", layout, f"{L}up.{c0}", fmt, n, chunk, d, u, p["h"]),
                  "#@ activation", *li("x8", act), *li("x9", g), *li("x10", u), *li("x11", n * chunk // vlen),
                  "S_LI_FP f1, 0xBF80", "S_LI_FP f2, 0x3F80",
                  *swiglu_rows("x8", "x9", "x10", "x11", "f1", "f2"), "#@ linear"]
            if len(starts) == 1:
                a += _mm("M_MM_RES", layout, f"{L}down.{c0}", fmt, n, d, chunk, p["x"], act)
            elif j == 0:
                a += _mm("M_MM_F32", layout, f"{L}down.{c0}", fmt, n, d, chunk, p["acc"], act)
            elif j < len(starts) - 1:
                a += _mm("M_MM_ACC_F32", layout, f"{L}down.{c0}", fmt, n, d, chunk, p["acc"], act)
            else:
                a += _mm("M_MM_ACC_RES", layout, f"{L}down.{c0}", fmt, n, d, chunk, p["x"], act, va=p["acc"])
    lg = att.q
    a += ["# final norm and LM head", "#@ norm", *_norm(p, layout, "ln_f", n, dv),
          "#@ linear", *_mm("M_MM", layout, "head", fmt, n, Ep, d, lg, p["h"]),
          *sample_rows(cfg, T, shape.embedding_size, lg, lg + n * Ep // vlen, arg, q0), "C_HALT"]
    return "\n".join(a) + "\n"


def sample_rows(cfg: Config, T: int, E: int, lg: int, bias: int, arg: dict[str, int], first: int = 0) -> list[str]:
    """The sampling step on the logits rows at V[lg] (positions from `first` on, each E
    padded to vector rows), the ids in INT[0, T); V[bias] is scratch for the padding's
    mask row. See the module docstring; registers x4..x15, f0..f7."""
    li = isa.load_imm
    vlen = cfg.vector.vlen
    er = -(-E // vlen)
    P0, F0, C0 = T, 8, 16                    # params, threshold, conf
    Q0, Q1, Q2, Q3 = T + 8, 2 * T + 8, 3 * T + 8, 4 * T + 8       # x0, x then x_new, mask, commit
    pad = E % vlen
    a = ["#@ sample", f"S_LD_ARG x4, {arg['params']}", *li("x5", P0), f"S_ADDI x6, x0, {len(PARAMS)}",
         "H_LOAD_INT x5, x4, x6", "S_ADDI x6, x0, 1", f"S_ADDI x7, x4, {4 * PARAM_THRESHOLD}", *li("x5", F0),
         "H_LOAD_FP x5, x7, x6", *li("x4", P0),
         f"S_LD_ARG x8, {arg['start']}", f"S_LD_ARG x9, {arg['length']}", f"S_LD_ARG x12, {arg['logits_rows']}",
         *li("x10", er), *([*li("x13", first), "S_SUB x11, x8, x13", "S_MUL x11, x11, x10"] if first else
                           ["S_MUL x11, x8, x10"]), *li("x13", lg), "S_ADD x11, x11, x13",
         "#@ store", "H_STORE_V x11, x3, x12", "#@ sample"]
    mask_pad = []
    if pad:                                  # lanes past E: -Inf, so they never win nor weigh
        a += ["S_LI_FP f3, 0x0000", *li("x5", C0), "S_ADDI x6, x0, 1",
              *loop(pad, ["S_ST_FP f3, x5, 0", "S_ADD x5, x5, x6"]),
              *li("x5", C0), *li("x7", bias), *li("x6", pad), "S_MAP_V_FP x7, x5, x6"]
        mask_pad = ["S_ADD x13, x11, x10", "S_ADDI x13, x13, -1", *li("x7", bias), "V_ADD_VV x13, x13, x7, x6"]
    body = [*mask_pad,
            *confidence_row("x11", "x10", "x7"), f"S_ST_FP f2, x5, {C0}", f"S_ST_INT x7, x5, {Q0}",
            "S_LD_INT x12, x15, 0", f"S_ST_INT x12, x5, {Q1}",
            "S_SUB x12, x12, x14", "S_SLT x13, x12, x0", "S_SLT x12, x0, x12", "S_ADD x12, x12, x13",
            "S_SLT x12, x12, x6", f"S_ST_INT x12, x5, {Q2}",
            "S_ADD x11, x11, x10", "S_ADDI x15, x15, 1", "S_ADDI x5, x5, 1"]
    a += ["S_LD_INT x14, x4, 1", "S_ADD x15, x8, x0", "S_ADDI x5, x0, 0", "S_ADDI x6, x0, 1",
          "S_LI_FP f6, 0xFF80",
          f"C_LOOP x9, {len(body)}", *body,
          *li("x5", C0), *li("x7", Q2), "V_MASK_FP x5, x7, f6, x9",
          "S_LD_INT x12, x4, 0", *li("x13", Q3), "V_TOPK_MASK x13, x5, x12, x9",
          *li("x7", F0), "S_LD_FP f7, x7, 0", "V_THRESH_MASK x13, x5, f7, x9",
          *li("x14", Q1), *li("x15", Q0), "V_SELECT_INT x14, x13, x15, x9",
          "#@ store", f"S_LD_ARG x4, {arg['out']}", "H_STORE_INT x14, x4, x9",
          *li("x7", 4 * T), "S_ADD x8, x4, x7", "H_STORE_INT x15, x8, x9", "S_ADD x8, x8, x7",
          "H_STORE_FP x5, x8, x9"]
    return a


def _sections(src: str, words: int) -> tuple[tuple[int, str], ...]:
    """(index of the first instruction, kind) of each "#@ kind" marker in src, merged when
    a kind follows itself."""
    out: list[tuple[int, str]] = []
    n = 0
    for line in src.splitlines():
        t = line.strip()
        if t.startswith("#@"):
            kind = t[2:].strip()
            assert kind in SECTIONS, kind
            if out and out[-1][0] == n:
                out.pop()
            if not out or out[-1][1] != kind:
                out.append((n, kind))
        elif t and not t.startswith("#"):
            n += 1
    assert n == words, (n, words)
    return tuple(out)


def _check_kv(cfg: Config, shape: ForwardShape, kv: KvStep | None) -> None:
    from dnpu.compiler import CompileError

    if kv is None:
        return
    if kv.mode not in ("refresh", "dual"):
        raise CompileError(f"KV step mode {kv.mode!r}: use 'refresh' or 'dual'")
    store = kv_storage(kv.fmt)[1]
    if kv.fmt not in KV_FORMATS or (store != "bf16" and store not in cfg.mx.formats):
        raise CompileError(f"KV format {kv.fmt!r}: use bf16, an MX format profile {cfg.name} decodes "
                           f"({', '.join(cfg.mx.formats)}) or baos-<one of them>")
    if kv.mode == "dual" and not (0 <= kv.start and 1 <= kv.length and kv.start + kv.length <= shape.seq_len):
        raise CompileError(f"KV dual block [{kv.start}, {kv.start + kv.length}) is not inside the "
                           f"{shape.seq_len} positions")


@functools.lru_cache(maxsize=32)
def _compile(cfg: Config, shape: ForwardShape, fmt: str, kv: KvStep | None = None) -> ForwardProgram:
    from dnpu.compiler import CompileError

    if fmt not in cfg.mx.formats:
        raise CompileError(f"weight format {fmt!r} is not decoded by profile {cfg.name} "
                           f"(mx.formats: {', '.join(cfg.mx.formats)})")
    _check_kv(cfg, shape, kv)
    n = kv.length if kv is not None and kv.mode == "dual" else shape.seq_len
    p, att, chunk, B = _plan(cfg, shape, n)
    if kv is not None and kv.mode == "refresh" and kv_storage(kv.fmt)[0] and shape.seq_len < 4:
        raise CompileError(f"a BAOS refresh works in the attention's output rows and needs seq_len >= 4, "
                           f"not {shape.seq_len}")
    layout = _layout(cfg, shape, fmt, chunk)
    Ep = -(-shape.embedding_size // cfg.vector.vlen) * cfg.vector.vlen
    src = _source(cfg, shape, fmt, layout, p, att, chunk, kv)
    kp = build("forward", cfg.name, dataclasses.asdict(shape) | {"fmt": fmt}, shape.seq_len, src,
               [("ids", 4 * shape.seq_len), ("logits", 2 * shape.seq_len * Ep), ("params", 4 * PARAM_WORDS),
                ("out", 12 * shape.seq_len)], FORWARD_ARGS[:4])
    return ForwardProgram(kp, shape, fmt, layout, chunk, B, _sections(src, len(kp.binary) // 4),
                          n * Ep // cfg.vector.vlen, kv)


def forward_program(config: Config, shape: ForwardShape, fmt: str = "e4m3", kv: KvStep | None = None) -> ForwardProgram:
    """Compile the forward of `shape` for `config` with linear weights in MX format `fmt`
    (with `kv`, a step with the KV cache: KvStep); cached. CompileError naming the limit
    when it does not fit the profile."""
    return _compile(config, shape, fmt, kv)


def _slice(full: np.ndarray, rows: np.ndarray, cols: np.ndarray):
    """(the slice of `full` at those indices with zeros where an index is -1, the rows
    taken, the columns taken)."""
    w = np.zeros((len(rows), len(cols)))
    r_ok, c_ok = rows >= 0, cols >= 0
    w[np.ix_(r_ok, c_ok)] = full[np.ix_(rows[r_ok], cols[c_ok])]
    return w, r_ok, c_ok


def effective_weights(cfg: Config, shape: ForwardShape, tensors: dict[str, np.ndarray], fmt: str) -> dict[str, np.ndarray]:
    """The BF16 bits the matrix unit multiplies by, per linear weight (TENSORS' names, the
    full [out, in] shape): each slice of the weights image MX-quantized along its K as the
    decoder sees it. For every tensor but the output projection of a zero-padded head this
    is the tensor quantized along K; a padded head's halves each start their own blocks."""
    prog = forward_program(cfg, shape, fmt)
    out: dict[str, np.ndarray] = {}
    for name, src, rows, cols in _slices(cfg, shape, prog.mlp_chunk):
        full = np.asarray(tensors[src], np.float64)
        w, r_ok, c_ok = _slice(full, rows, cols)
        q = matrix.quantize_weights(w, fmt, cfg.mx.block)
        dst = out.setdefault(src, np.zeros(full.shape, np.uint16))
        dst[np.ix_(rows[r_ok], cols[c_ok])] = q[np.ix_(r_ok, c_ok)]
    return out


def weight_image(prog: ForwardProgram, cfg: Config, tensors: dict[str, np.ndarray], eps: float) -> bytes:
    """The weights image of `prog`: `tensors` (float arrays named as TENSORS says, per layer
    "layers.{i}.<name>") rounded to BF16 or MX-packed, placed by `prog.weight_layout`."""
    s = prog.shape
    img = bytearray(prog.weights_nbytes)

    def put(name: str, data: bytes) -> None:
        off, n = prog.weight_layout[name]
        assert len(data) <= n, (name, len(data), n)
        img[off:off + len(data)] = data

    def get(name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in tensors:
            raise KeyError(f"weights: tensor {name!r} is missing")
        a = np.asarray(tensors[name], np.float64)
        if a.shape != shape:
            raise ValueError(f"weights: {name} has shape {list(a.shape)}, expected {list(shape)}")
        return a

    bf = lambda a: nm.round_bf16(a).astype("<u2").tobytes()         # noqa: E731
    d, E, T, hd, F = s.d_model, s.embedding_size, s.seq_len, s.head_dim, s.mlp_hidden
    put("consts", np.array([int(nm.round_f32(np.float64(1.0) / d)), int(nm.round_f32(np.float64(eps)))],
                           "<u4").tobytes())
    put("wte", bf(get("wte", (E, d))))
    put("ln_f", bf(get("ln_f", (d,))))
    _, hhp = head_layout(cfg, hd)
    for t in ("cos", "sin"):                  # the padding lanes multiply zero features: 0
        put(t, bf(np.pad(get(t, (T, hd // 2)), ((0, 0), (0, hhp - hd // 2)))))
    full = {"q": (d, d), "k": (d, d), "v": (d, d), "o": (d, d), "gate": (F, d), "up": (F, d), "down": (d, F)}
    cache: dict[str, np.ndarray] = {}
    for i in range(s.n_layers):
        for g in ("attn_norm", "ff_norm"):
            put(f"layers.{i}.{g}", bf(get(f"layers.{i}.{g}", (d,))))
        for w, shp in full.items():
            cache[f"layers.{i}.{w}"] = get(f"layers.{i}.{w}", shp)
    cache["head"] = get("head", (E, d))
    for name, src, rows, cols in _slices(cfg, s, prog.mlp_chunk):
        put(name, matrix.pack_weights(_slice(cache[src], rows, cols)[0], prog.fmt, cfg.mx.block, cfg.vector.vlen))
    return bytes(img)
