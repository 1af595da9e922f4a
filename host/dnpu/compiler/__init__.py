"""Compiler: one diffusion sampling step as an NPU program.

`sampling_program(config, B, L, V, mode, flow)` emits assembly with hardware
loops over batch rows and positions (never unrolled), assembles it with
`dnpu.spec.isa`, and says where every input and output lives in external memory
(`Program.layout`, offsets from one base address that the runtime chooses).

Two flows, both kept so the benchmark can compare them:

- ``phased``: the paper's flow. Per position: H_PREFETCH_V the logits row into
  vector SRAM, V_RED_MAX_IDX (max and argmax in one instruction), V_SUB_VF and
  V_EXP_V in place, V_RED_SUM, S_RECI_FP. Several passes over the row.
- ``fused``: dnpu's single pass, over tiles of G batch rows (`tile_rows`: the
  largest divisor of B whose tile fits the int and FP SRAMs; G = B whenever the
  batch fits). Per tile one H_SAMPLE_FUSED_N streams the tile's G*L logits rows
  back to back, once each (online max/argmax with the rescaled exp-sum, the
  reciprocal in the background): x0 lands in INT[0, G*L) and the softmax
  probability of x0 in FP[0, G*L); a short loop then masks the confidences.

The commit differs between the flows too. ``phased`` follows the paper: the
FP32 confidences are mapped to BF16 vectors (S_MAP_V_FP) and V_TOPK_MASK_V
ranks those. ``fused`` ranks the FP32 confidences in FP SRAM (V_TOPK_MASK):
BF16 confidences tie where the float64 reference does not, so the fused flow's
commit follows the reference more closely.

Then (phased: per batch row; fused: per tile, with only the top-k per batch row):
confidences of unmasked positions become -inf (phased: S_SEL_FP per position; fused:
one V_MASK_FP over the tile), the commit mask comes
from V_TOPK_MASK (quota k) or from V_TOPK_MASK with k = 1 plus V_THRESH_MASK
(threshold), and V_SELECT_INT writes x_new = where(commit, x0, x). The fused flow
loads mask, x (and k) and stores x_new, x0 and conf once per tile.

External memory (all int32/FP32 little-endian, every buffer 64-byte aligned):
logits (B*L rows, each row `mx.pack`ed on its own at a fixed stride), mask
int32 [B, L] (0/1), x int32 [B, L], k int32 [B] or threshold FP32 [1],
outputs x_new int32 [B, L], x0 int32 [B, L], conf FP32 [B, L].
"""

from __future__ import annotations

import dataclasses
import functools

from dnpu.spec import isa, mx
from dnpu.spec.config import Config
# ALIGN: every buffer starts on a 512-bit boundary, one full beat at any supported width.
from dnpu.spec.mx import PACK_ALIGN as ALIGN

__all__ = ["Program", "Buffer", "CompileError", "sampling_program", "tile_rows", "confidence_row", "ALIGN",
           "ARG_ORDER", "MODES", "FLOWS", "FLOWS_FUSED_FIRST"]

# Which argument register carries which buffer's address.
ARG_ORDER = ("logits", "mask", "x", "commit_arg", "x_new", "x0", "conf")

MODES = ("topk", "threshold")
FLOWS = ("phased", "fused")
# The order the projection, the sweep and the LLaDA-scale step report the flows in: fused first.
FLOWS_FUSED_FIRST = tuple(sorted(FLOWS, key=lambda f: f != "fused"))


class CompileError(ValueError):
    """A shape or option the profile cannot run; the message names the limit."""


@dataclasses.dataclass(frozen=True)
class Buffer:
    name: str
    offset: int  # bytes from the layout base
    nbytes: int
    dtype: str  # "mx", "int32" or "float32"
    shape: tuple[int, ...]
    output: bool = False


@dataclasses.dataclass(frozen=True)
class Program:
    """A compiled sampling step: the binary, its source, and its memory layout."""

    config_name: str
    B: int
    L: int
    V: int
    mode: str
    flow: str
    fmt: str
    asm: str
    binary: bytes
    layout: dict[str, Buffer]
    row_stride: int  # bytes between consecutive packed logits rows

    @property
    def nbytes(self) -> int:
        """External memory the step needs, program included."""
        return max(b.offset + b.nbytes for b in self.layout.values())

    def args(self, base: int) -> list[int]:
        """Argument register values (ARG0..) for a layout placed at `base`."""
        return [base + self.layout[name].offset for name in ARG_ORDER]


def _limits(cfg: Config, B: int, L: int, V: int, mode: str, flow: str, fmt: str) -> None:
    name = cfg.name
    for what, v in (("B", B), ("L", L), ("V", V)):
        if not isinstance(v, int) or v < 1:
            raise CompileError(f"{what} = {v!r}: must be a positive integer")
    if mode not in MODES:
        raise CompileError(f"mode {mode!r}: choose one of {MODES}")
    if flow not in FLOWS:
        raise CompileError(f"flow {flow!r}: choose one of {FLOWS}")
    if fmt not in cfg.mx.formats:
        raise CompileError(f"MX format {fmt!r}: profile {name} decodes only {list(cfg.mx.formats)}")
    vlen, block = cfg.vector.vlen, cfg.mx.block
    if V % block or V % vlen:
        raise CompileError(f"V = {V}: must be a multiple of the MX block ({block}) and of VLEN ({vlen}) "
                           f"on profile {name}; pad the vocabulary")
    rows = V // vlen
    conf_rows = -(-L // vlen)
    if flow == "phased" and rows + conf_rows > cfg.sram.vector_rows:
        raise CompileError(f"V = {V}, L = {L}: the phased flow holds a whole logits row and the row's "
                           f"confidences in vector SRAM, {rows} + {conf_rows} rows > sram.vector_rows = "
                           f"{cfg.sram.vector_rows} on profile {name}; use flow='fused' or a larger profile")
    # The fused flow loads k per tile of rows (at least one row); the phased flow loads all B k.
    int_words = 4 * L + ((B if flow == "phased" else 1) if mode == "topk" else 0)
    if int_words > cfg.sram.int_words:
        raise CompileError(f"L = {L}, B = {B}: needs {int_words} int SRAM words > sram.int_words = "
                           f"{cfg.sram.int_words} on profile {name}")
    if L + 1 > cfg.sram.fp_words:
        raise CompileError(f"L = {L}: needs {L + 1} FP SRAM words > sram.fp_words = {cfg.sram.fp_words} "
                           f"on profile {name}")
    count_max = (1 << isa.FIELDS["count"].width) - 1
    if B > count_max:
        raise CompileError(f"B = {B}: the batch loop counts at most {count_max} rows")
    if 3 * L >= 1 << 16:
        raise CompileError(f"L = {L}: int SRAM offsets 3L must fit a 17-bit signed immediate")


def tile_rows(cfg: Config, B: int, L: int, mode: str) -> int:
    """Batch rows per tile of the fused flow: the largest divisor G of B whose tile fits the
    SRAMs (INT: x0, x/x_new, mask and commit for G*L positions, plus G k values in topk mode;
    FP: G*L confidences plus the threshold) and whose int SRAM offsets fit S_LD_INT's 17-bit
    immediate. G = B whenever the whole batch fits; 1 when nothing larger does."""
    for g in range(B, 0, -1):
        if B % g:
            continue
        n = g * L
        if (4 * n + (g if mode == "topk" else 0) <= cfg.sram.int_words and n + 1 <= cfg.sram.fp_words
                and 3 * n < 1 << 16):
            return g
    return 1


def _layout(B: int, L: int, V: int, mode: str, row_stride: int, program_bytes: int) -> dict[str, Buffer]:
    specs = [
        ("program", program_bytes, "int32", (program_bytes // 4,), False),
        ("logits", B * L * row_stride, "mx", (B, L, V), False),
        ("mask", 4 * B * L, "int32", (B, L), False),
        ("x", 4 * B * L, "int32", (B, L), False),
        ("commit_arg", 4 * B if mode == "topk" else 4, "int32" if mode == "topk" else "float32",
         (B,) if mode == "topk" else (1,), False),
        ("x_new", 4 * B * L, "int32", (B, L), True),
        ("x0", 4 * B * L, "int32", (B, L), True),
        ("conf", 4 * B * L, "float32", (B, L), True),
    ]
    layout, off = {}, 0
    for name, nbytes, dtype, shape, out in specs:
        layout[name] = Buffer(name, off, nbytes, dtype, shape, out)
        off = mx.align_up(off + nbytes)
    return layout


def confidence_row(va: str, n: str, idx: str) -> list[str]:
    """The phased flow on one logits row of n vector rows at V[x[va]] (docs/NUMERICS.md
    section 9): f0 = its max, x[idx] = the argmax, the row shifted and exponentiated in
    place, f1 = their sum, f2 = 1/f1, the softmax probability of the argmax."""
    return [f"V_RED_MAX_IDX f0, {idx}, {va}, {n}", f"V_SUB_VF {va}, {va}, f0, {n}", f"V_EXP_V {va}, {va}, {n}",
            f"V_RED_SUM f1, {va}, {n}", "S_RECI_FP f2, f1"]


def _source(cfg: Config, B: int, L: int, V: int, mode: str, flow: str, fmt: str, row_stride: int) -> str:
    if flow == "fused":
        return _source_fused(cfg, B, L, V, mode, fmt, row_stride)
    rows = V // cfg.vector.vlen
    arg = {name: i for i, name in enumerate(ARG_ORDER)}
    # Register plan. INT SRAM: [0,L) mask, [L,2L) x then x_new, [2L,3L) x0, [3L,4L) commit,
    # [4L,4L+B) k. FP SRAM: [0,L) conf, [L] threshold. x8 = row_stride.
    a = [f"# sampling step: profile {cfg.name}, B={B} L={L} V={V}, mode={mode}, flow={flow}, fmt={fmt}",
         f"S_LD_ARG x1, {arg['logits']}       # logits row pointer",
         f"S_LD_ARG x2, {arg['mask']}       # mask row pointer",
         f"S_LD_ARG x3, {arg['x']}       # x row pointer",
         f"S_LD_ARG x4, {arg['commit_arg']}       # k vector / threshold",
         f"S_LD_ARG x5, {arg['x_new']}       # x_new row pointer",
         f"S_LD_ARG x6, {arg['x0']}       # x0 row pointer",
         f"S_LD_ARG x7, {arg['conf']}       # conf row pointer",
         *isa.load_imm("x8", row_stride), *isa.load_imm("x9", L), *isa.load_imm("x10", rows),
         *isa.load_imm("x11", 2 * L), *isa.load_imm("x12", 3 * L),
         "S_LI_FP f6, 0xFF80        # -inf: the confidence of an unmasked position"]
    if mode == "topk":
        a += ["S_SLLI x13, x9, 2         # x13 = 4L: where k lands in int SRAM",
              f"S_ADDI x15, x0, {B}",
              "H_LOAD_INT x13, x4, x15",
              "S_ADD x4, x13, x0         # x4 = int SRAM address of k[b]"]
    else:
        a += ["S_ADDI x15, x0, 1",
              "H_LOAD_FP x9, x4, x15     # FP[L] = threshold",
              "S_LD_FP f7, x9, 0"]
    a += [f"C_LOOPI {B}, @row_end",
          "  H_LOAD_INT x0, x2, x9     # mask",
          "  H_LOAD_INT x9, x3, x9     # INT[L,2L) = x",
          "  S_ADDI x13, x0, 0         # l = 0",
          "  C_LOOP x9, @pos_end",
          f"    H_PREFETCH_V x0, x1, x10, {fmt}",
          *confidence_row("x0", "x10", "x14"),
          "    S_LD_INT x15, x13, 0      # mask[l]",
          "    S_SEL_FP f3, f2, f6, x15  # conf = mask ? p : -inf",
          "    S_ST_FP f3, x13, 0",
          f"    S_ST_INT x14, x13, {2 * L}    # x0[l]",
          "    S_ADD x1, x1, x8",
          "    S_ADDI x13, x13, 1",
          "  pos_end:",
          # The paper's phase 4: confidences to BF16 vectors (after the logits row), top-k there.
          "  S_MAP_V_FP x10, x0, x9      # V[rows..] = BF16(conf)"]
    topk = "V_TOPK_MASK_V x12, x10, x15, x9"
    if mode == "topk":
        a += ["  S_LD_INT x15, x4, 0       # k[b]",
              f"  {topk}",
              "  S_ADDI x4, x4, 1"]
    else:
        a += ["  S_ADDI x15, x0, 1",
              f"  {topk}   # the best masked position always commits",
              "  V_THRESH_MASK x12, x0, f7, x9  # and every one at or above the threshold"]
    a += ["  V_SELECT_INT x9, x12, x11, x9   # x_new = where(commit, x0, x)",
          "  H_STORE_INT x9, x5, x9",
          "  H_STORE_INT x11, x6, x9",
          "  H_STORE_FP x0, x7, x9",
          "  S_SLLI x15, x9, 2         # 4L bytes per int32/FP32 row",
          "  S_ADD x2, x2, x15",
          "  S_ADD x3, x3, x15",
          "  S_ADD x5, x5, x15",
          "  S_ADD x6, x6, x15",
          "  S_ADD x7, x7, x15",
          "row_end:",
          "C_HALT"]
    return "\n".join(a) + "\n"


def _source_fused(cfg: Config, B: int, L: int, V: int, mode: str, fmt: str, row_stride: int) -> str:
    """The fused flow over tiles of G = tile_rows(...) batch rows, n = G*L positions a tile.

    INT SRAM: [0,n) x0, [n,2n) x then x_new, [2n,3n) mask, [3n,4n) commit, [4n,4n+G) k.
    FP SRAM: [0,n) conf, [n] threshold. H_SAMPLE_FUSED_N writes x0 to INT[0,n) and the
    probabilities to FP[0,n) (one dst for both); the tile's logits rows are consecutive at the
    row stride (the layout packs the B*L rows back to back), so one instruction streams them all.
    Per tile: one load each of mask, x (and k), one H_SAMPLE_FUSED_N, the confidence mask over
    the n positions, then per batch row only its top-k (quota k, or k = 1 for threshold) over its
    L confidences; V_THRESH_MASK and V_SELECT_INT are elementwise, so they run once over the tile.
    Registers: x1 logits, x2 mask, x3 x, x4 k / threshold, x5 x_new, x6 x0, x7 conf (external
    pointers); x8 = n*row_stride, x9 = L, x10 = rows, x11 = n, x12 = 2n (k pointer in the row
    loop), x13 position / row offset, x14 commit offset, x15 scratch."""
    G = tile_rows(cfg, B, L, mode)
    n, T = G * L, B // G
    rows = V // cfg.vector.vlen
    arg = {name: i for i, name in enumerate(ARG_ORDER)}
    a = [f"# sampling step: profile {cfg.name}, B={B} L={L} V={V}, mode={mode}, flow=fused, fmt={fmt}, "
         f"{T} tile(s) of {G} row(s)",
         f"S_LD_ARG x1, {arg['logits']}       # logits pointer",
         f"S_LD_ARG x2, {arg['mask']}       # mask pointer",
         f"S_LD_ARG x3, {arg['x']}       # x pointer",
         f"S_LD_ARG x4, {arg['commit_arg']}       # k vector / threshold",
         f"S_LD_ARG x5, {arg['x_new']}       # x_new pointer",
         f"S_LD_ARG x6, {arg['x0']}       # x0 pointer",
         f"S_LD_ARG x7, {arg['conf']}       # conf pointer",
         *isa.load_imm("x8", row_stride), *isa.load_imm("x9", L), *isa.load_imm("x10", rows),
         *isa.load_imm("x11", n), *isa.load_imm("x12", 2 * n),
         "S_MUL x8, x8, x11          # a tile's logits: n rows",
         "S_LI_FP f6, 0xFF80        # -inf: the confidence of an unmasked position"]
    if mode == "threshold":
        a += ["S_ADDI x15, x0, 1",
              "H_LOAD_FP x11, x4, x15     # FP[n] = threshold",
              "S_LD_FP f7, x11, 0"]
    a += [f"C_LOOPI {T}, @tile_end",
          "  H_LOAD_INT x12, x2, x11    # INT[2n,3n) = mask",
          "  H_LOAD_INT x11, x3, x11    # INT[n,2n) = x",
          f"  H_SAMPLE_FUSED_N x0, x1, x10, x11, {fmt}   # INT[p] = x0, FP[p] = its probability, p < n",
          "  S_ADD x1, x1, x8",
          "  V_MASK_FP x0, x12, f6, x11   # conf = mask ? p : -inf, p < n",
          "  S_ADD x14, x12, x11        # x14 = 3n: the commit mask",
          "  S_ADDI x13, x0, 0          # the row's confidences: FP[rL, rL+L)"]
    if mode == "topk":
        a += ["  S_ADD x12, x14, x11        # x12 = 4n: the tile's k",
              f"  S_ADDI x15, x0, {G}",
              "  H_LOAD_INT x12, x4, x15",
              f"  C_LOOPI {G}, @row_end",
              "    S_LD_INT x15, x12, 0      # k[r]",
              "    V_TOPK_MASK x14, x13, x15, x9",
              "    S_ADDI x12, x12, 1",
              "    S_ADD x13, x13, x9",
              "    S_ADD x14, x14, x9",
              "  row_end:",
              "  S_SUB x14, x14, x11        # 3n",
              "  S_SUB x12, x14, x11        # 2n",
              f"  S_ADDI x4, x4, {4 * G}        # the next tile's k"]
    else:
        a += ["  S_ADDI x15, x0, 1",
              f"  C_LOOPI {G}, @row_end",
              "    V_TOPK_MASK x14, x13, x15, x9   # the best masked position always commits",
              "    S_ADD x13, x13, x9",
              "    S_ADD x14, x14, x9",
              "  row_end:",
              "  S_SUB x14, x14, x11        # 3n",
              "  V_THRESH_MASK x14, x0, f7, x11  # and every one at or above the threshold"]
    a += ["  V_SELECT_INT x11, x14, x0, x11   # x_new = where(commit, x0, x)",
          "  H_STORE_INT x11, x5, x11",
          "  H_STORE_INT x0, x6, x11",
          "  H_STORE_FP x0, x7, x11",
          "  S_SLLI x15, x11, 2         # 4n bytes per int32/FP32 tile",
          "  S_ADD x2, x2, x15",
          "  S_ADD x3, x3, x15",
          "  S_ADD x5, x5, x15",
          "  S_ADD x6, x6, x15",
          "  S_ADD x7, x7, x15",
          "tile_end:",
          "C_HALT"]
    return "\n".join(a) + "\n"


@functools.lru_cache(maxsize=64)
def _compile(cfg: Config, B: int, L: int, V: int, mode: str, flow: str, fmt: str) -> Program:
    _limits(cfg, B, L, V, mode, flow, fmt)
    row_stride = mx.packed_nbytes(V, fmt, cfg.mx.block)  # a multiple of 64: rows stay aligned
    src = _source(cfg, B, L, V, mode, flow, fmt, row_stride)
    binary = isa.assemble(src, filename=f"<sampling {mode}/{flow}>")
    layout = _layout(B, L, V, mode, row_stride, len(binary))
    return Program(cfg.name, B, L, V, mode, flow, fmt, src, binary, layout, row_stride)


def sampling_program(config: Config, B: int, L: int, V: int, mode: str = "topk",
                     flow: str = "fused", fmt: str = "e4m3") -> Program:
    """Compile one sampling step for `config` (a loaded profile); cached per shape."""
    return _compile(config, B, L, V, mode, flow, fmt)
