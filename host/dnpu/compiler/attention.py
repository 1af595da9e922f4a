"""Compiler: bidirectional attention of one head as a streaming softmax over key tiles
(the steps and their rounding: docs/NUMERICS.md section 15).

`head_rows(plan)` is the body for one head whose q, k and v rows are in vector SRAM
(q [n, hd], k and v [T, hd], each row hd/VLEN vector rows, keys and values padded to
T_p rows); it leaves o [n, hd] in SRAM. Scores of one key tile ([n, B] in `s`) are all
that is ever held of them. The values enter the matrix unit transposed: `V_TRANS`
blocks write v_tᵀ [hd, B] per tile into `vt`, tile after tile. Running max and sum live
in FP SRAM (m at `fp`, l at `fp + n`).

`attention_program(config, H, n, T, hd, tile)` wraps it for H heads in external memory
(every buffer 64-byte aligned): program, q [H, n, hd], k [H, T, hd], v [H, T, hd] and
o [H, n, hd], all BF16, head after head; per head three `H_LOAD_V`, the body and one
`H_STORE_V`.
"""

from __future__ import annotations

import dataclasses
import functools

from dnpu.spec import isa, matrix
from dnpu.spec.config import Config
from dnpu.compiler.kernel import KernelProgram, build, loop

__all__ = ["AttentionPlan", "plan_head", "head_rows", "attention_program", "default_tile", "ATTENTION_ARGS",
           "CLOBBERS", "head_layout"]

# Which argument register carries which buffer's address.
ATTENTION_ARGS = ("q", "k", "v", "o")

# What head_rows overwrites besides its SRAM rows.
CLOBBERS = ("x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "f1", "f2", "f3", "f4", "f5", "f6")


@dataclasses.dataclass(frozen=True)
class AttentionPlan:
    """One head's shape and its SRAM places: vector-SRAM rows of q, k, v (T_p rows each),
    vt (v transposed, tile after tile), s (one tile's scores), bias (the mask row of the
    last tile), o; FP SRAM words at fp (2n for m and l, then B zeros for the mask)."""

    vlen: int
    n: int
    T: int
    hd: int
    B: int
    q: int
    k: int
    v: int
    vt: int
    s: int
    bias: int
    o: int
    fp: int
    scale_hd: int = 0            # the head_dim of the scale 1/sqrt(hd) (0: hd; a zero-padded head keeps its own)

    @property
    def tp(self) -> int:
        return -(-self.T // self.B) * self.B

    @property
    def tiles(self) -> int:
        return self.tp // self.B

    @property
    def hv(self) -> int:
        return self.hd // self.vlen

    @property
    def bv(self) -> int:
        return self.B // self.vlen

    @property
    def vector_rows(self) -> int:
        """Rows used from the lowest place to the highest end."""
        ends = [(self.q, self.n * self.hv), (self.k, self.tp * self.hv), (self.v, self.tp * self.hv),
                (self.vt, self.tp * self.hv), (self.s, self.n * self.bv), (self.bias, self.bv),
                (self.o, self.n * self.hv)]
        return max(a + r for a, r in ends)


def head_layout(cfg: Config, hd: int) -> tuple[int, int]:
    """(padded head_dim, padded half) of a head on cfg: each half of a head (RoPE's a and b)
    starts a vector row, and the head is a whole K multiple of the matrix unit; a narrower
    head is zero-padded, which changes no sum (docs/NUMERICS.md section 15)."""
    vlen, km = cfg.vector.vlen, matrix.k_multiple(cfg.vector.vlen, cfg.mx.block)
    hhp = -(-(hd // 2) // vlen) * vlen
    while (2 * hhp) % km:
        hhp += vlen
    return 2 * hhp, hhp


def _check_shape(cfg: Config, n: int, T: int, hd: int, B: int) -> None:
    from dnpu.compiler import CompileError

    vlen, km = cfg.vector.vlen, matrix.k_multiple(cfg.vector.vlen, cfg.mx.block)
    if not cfg.matrix.rows:
        raise CompileError(f"attention needs the matrix unit; profile {cfg.name} has [matrix] rows = 0")
    if min(n, T, hd, B) < 1:
        raise CompileError(f"attention shape n={n}, T={T}, hd={hd}, tile={B}: all must be at least 1")
    if hd % km:
        raise CompileError(f"head_dim {hd} must be a multiple of max(vector.vlen, mx.block) = {km} on "
                           f"profile {cfg.name} (the matrix unit's K for the scores)")
    if B % km:
        raise CompileError(f"key tile {B} must be a multiple of max(vector.vlen, mx.block) = {km} on "
                           f"profile {cfg.name} (the matrix unit's K for P.V)")
    if _bf16_exact(hd) is None:
        raise CompileError(f"head_dim {hd} is not exact in BF16 (the scale is RSQRT of S_LI_FP hd)")


def _bf16_exact(v: int) -> int | None:
    """BF16 bits of the integer v when it is exact in BF16, else None."""
    import numpy as np

    from dnpu.spec import numerics as nm

    bits = int(nm.round_bf16(np.float64(v)))
    return bits if float(nm.bf16_value(np.uint16(bits))) == v else None


def plan_head(cfg: Config, n: int, T: int, hd: int, B: int, base: int = 0, fp: int = 0,
              scale_hd: int | None = None) -> AttentionPlan:
    """Places for one head from vector-SRAM row `base` and FP word `fp` on, in the order
    q, k, v, vt, s, bias, o; CompileError naming the SRAM when they do not fit. scale_hd:
    the head_dim of the scale when the head is zero-padded to hd (features that add
    exact zeros to every score and output)."""
    from dnpu.compiler import CompileError

    _check_shape(cfg, n, T, hd, B)
    if scale_hd is not None and _bf16_exact(scale_hd) is None:
        raise CompileError(f"head_dim {scale_hd} is not exact in BF16 (the scale is RSQRT of S_LI_FP hd)")
    vlen = cfg.vector.vlen
    tp = -(-T // B) * B
    hv, bv = hd // vlen, B // vlen
    sizes = [("q", n * hv), ("k", tp * hv), ("v", tp * hv), ("vt", tp * hv), ("s", n * bv), ("bias", bv),
             ("o", n * hv)]
    at, places = base, {}
    for name, rows in sizes:
        places[name] = at
        at += rows
    if at > cfg.sram.vector_rows:
        raise CompileError(f"attention n={n}, T={T} (padded to {tp}), hd={hd}, tile {B}: needs "
                           f"{at - base} vector-SRAM rows from row {base}; profile {cfg.name} has "
                           f"sram.vector_rows = {cfg.sram.vector_rows}")
    if fp + 2 * n + B > cfg.sram.fp_words:
        raise CompileError(f"attention n={n}, tile {B}: needs {2 * n + B} FP-SRAM words from word {fp}; "
                           f"profile {cfg.name} has sram.fp_words = {cfg.sram.fp_words}")
    return AttentionPlan(vlen, n, T, hd, B, fp=fp, scale_hd=scale_hd or hd, **places)


def _addi(rd: str, rs: str, imm: int) -> list[str]:
    if 0 <= imm < 1 << 16:
        return [f"S_ADDI {rd}, {rs}, {imm}"]
    return [*isa.load_imm("x15" if rd != "x15" else "x14", imm), f"S_ADD {rd}, {rs}, {'x15' if rd != 'x15' else 'x14'}"]


def _tile(p: AttentionPlan, masked: bool) -> list[str]:
    """One key tile: x11 at its keys, x12 at its vt; x8 = n, x9 = B/VLEN, x10 = hd/VLEN."""
    li = isa.load_imm
    rows = ([] if not masked else ["V_ADD_VV x13, x13, x11, x9"]) + [
        "V_RED_MAX f3, x13, x9",
        "S_LD_FP f4, x15, 0",
        "S_MAX_FP f5, f4, f3",
        "S_SUB_FP f6, f4, f5",
        "S_EXP_FP f6, f6",
        "S_ST_FP f5, x15, 0",
        "V_SUB_VF x13, x13, f5, x9",
        "V_EXP_V x13, x13, x9",
        "V_RED_SUM f3, x13, x9",
        f"S_LD_FP f4, x15, {p.n}",
        "S_MUL_FP f4, f4, f6",
        "S_ADD_FP f4, f4, f3",
        f"S_ST_FP f4, x15, {p.n}",
        "V_MUL_VF x14, x14, f6, x10",
        "S_ADD x13, x13, x9",
        "S_ADD x14, x14, x10",
        "S_ADDI x15, x15, 1"]
    step = p.B * p.hv                                  # rows of a key tile = rows of a vt tile
    return [*li("x13", p.B), *li("x14", p.hd), "M_CFG x8, x13, x14",
            *li("x13", p.s), *li("x14", p.q), "M_MM_V x13, x14, x11",
            *(li("x11", p.bias) if masked else []),
            *li("x13", p.s), *li("x14", p.o), *li("x15", p.fp),
            *loop(p.n, rows),
            *li("x13", p.hd), *li("x14", p.B), "M_CFG x8, x13, x14",
            *li("x13", p.o), *li("x14", p.s), "M_MM_V_RES x13, x14, x12, x13",
            *([] if masked else [*li("x13", step), "S_ADD x11, x11, x13", "S_ADD x12, x12, x13"])]


def head_rows(p: AttentionPlan) -> list[str]:
    """The body for one head (docstring of the module); q is scaled in place, the padded
    key and value rows are zeroed; overwrites the registers in CLOBBERS."""
    li = isa.load_imm
    tv = p.T - (p.tiles - 1) * p.B                     # keys in the last tile
    a = [f"# attention head: n={p.n} T={p.T} hd={p.hd} tile {p.B}, {p.tiles} tile(s)",
         f"S_LI_FP f1, 0x{_bf16_exact(p.scale_hd or p.hd):04X}",
         "S_RSQRT_FP f1, f1",
         *li("x8", p.n), *li("x9", p.bv), *li("x10", p.hv),
         *li("x13", p.q), *li("x14", p.n * p.hv), "V_MUL_VF x13, x13, f1, x14",
         "S_LI_FP f2, 0x0000",
         "S_LI_FP f3, 0xFF80"]
    if p.tp > p.T:
        pad = (p.tp - p.T) * p.hv
        a += [*li("x14", pad), *li("x13", p.k + p.T * p.hv), "V_FILL_VF x13, f2, x14",
              *li("x13", p.v + p.T * p.hv), "V_FILL_VF x13, f2, x14",
              # the mask row: tv zeros from FP SRAM, -Inf after them
              *li("x15", p.fp + 2 * p.n),
              *loop(tv, ["S_ST_FP f2, x15, 0", "S_ADDI x15, x15, 1"]),
              *li("x15", p.fp + 2 * p.n), *li("x13", p.bias), *li("x14", tv), "S_MAP_V_FP x13, x15, x14"]
        full = -(-tv // p.vlen)
        if full < p.bv:
            a += [*li("x13", p.bias + full), *li("x14", p.bv - full), "V_FILL_VF x13, f3, x14"]
    # v transposed: tile by tile, key block by key block, feature block by feature block
    trans = []
    for fb in range(p.hv):
        trans += [*_addi("x13", "x11", fb), *_addi("x14", "x12", fb * p.B), "V_TRANS x14, x13, x10, x9"]
    trans += [*_addi("x11", "x11", p.hd), "S_ADDI x12, x12, 1"]
    per_tile = loop(p.bv, trans) + _addi("x12", "x12", p.hd * p.bv - p.bv)
    a += [*li("x11", p.v), *li("x12", p.vt), *loop(p.tiles, per_tile)]
    # m = -Inf, l = +0, o = +0
    a += [*li("x15", p.fp), *loop(p.n, ["S_ST_FP f3, x15, 0", f"S_ST_FP f2, x15, {p.n}", "S_ADDI x15, x15, 1"]),
          *li("x13", p.o), *li("x14", p.n * p.hv), "V_FILL_VF x13, f2, x14",
          *li("x11", p.k), *li("x12", p.vt)]
    a += loop(p.tiles - 1, _tile(p, False))
    a += _tile(p, p.tp > p.T)
    a += [*li("x14", p.o), *li("x15", p.fp),
          *loop(p.n, [f"S_LD_FP f4, x15, {p.n}", "S_RECI_FP f4, f4", "V_MUL_VF x14, x14, f4, x10",
                       "S_ADD x14, x14, x10", "S_ADDI x15, x15, 1"])]
    return a


def _source(cfg: Config, H: int, p: AttentionPlan) -> str:
    li = isa.load_imm
    arg = {name: i for i, name in enumerate(ATTENTION_ARGS)}
    qb, kb = p.n * p.hd * 2, p.T * p.hd * 2
    a = [f"# attention: profile {cfg.name}, {H} head(s), n={p.n} T={p.T} hd={p.hd}, key tile {p.B}",
         *(f"S_LD_ARG x{i + 1}, {arg[b]}       # {b} BF16" for i, b in enumerate(ATTENTION_ARGS))]
    for h in range(H):
        a += [f"# head {h}",
              *li("x5", h * qb), "S_ADD x6, x1, x5", *li("x7", p.q), *li("x5", p.n * p.hv), "H_LOAD_V x7, x6, x5",
              *li("x5", h * kb), "S_ADD x6, x2, x5", *li("x7", p.k), *li("x5", p.T * p.hv), "H_LOAD_V x7, x6, x5",
              *li("x5", h * kb), "S_ADD x6, x3, x5", *li("x7", p.v), *li("x5", p.T * p.hv), "H_LOAD_V x7, x6, x5",
              *head_rows(p),
              *li("x5", h * qb), "S_ADD x6, x4, x5", *li("x7", p.o), *li("x5", p.n * p.hv), "H_STORE_V x7, x6, x5"]
    a.append("C_HALT")
    return "\n".join(a) + "\n"


@functools.lru_cache(maxsize=64)
def _compile(cfg: Config, H: int, n: int, T: int, hd: int, B: int) -> KernelProgram:
    from dnpu.compiler import CompileError

    if H < 1:
        raise CompileError(f"attention over {H} heads: at least 1")
    p = plan_head(cfg, n, T, hd, B)
    return build("attention", cfg.name, {"H": H, "n": n, "T": T, "hd": hd, "tile": B}, B, _source(cfg, H, p),
                 [("q", 2 * H * n * hd), ("k", 2 * H * T * hd), ("v", 2 * H * T * hd), ("o", 2 * H * n * hd)],
                 ATTENTION_ARGS)


def default_tile(config: Config, T: int) -> int:
    """The key tile the kernels use unless told: every key in one tile (T rounded up to
    max(vector.vlen, mx.block))."""
    km = matrix.k_multiple(config.vector.vlen, config.mx.block)
    return -(-T // km) * km


def attention_program(config: Config, H: int, n: int, T: int, hd: int, tile: int | None = None) -> KernelProgram:
    """Compile attention of H heads (n queries, T keys, head_dim hd; key tile `tile`,
    default `default_tile`) for `config`; cached."""
    B = default_tile(config, T) if tile is None else int(tile)
    return _compile(config, int(H), int(n), int(T), int(hd), B)
