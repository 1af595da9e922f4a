"""Compiler: a linear layer `Y = X · Wᵀ (+ R)` as an NPU program for the matrix unit.

`linear_program(config, M, N, K, fmt, residual)` plans tiles that fit the vector SRAM
and emits straight-line assembly over them:

- **M tiles** of `mt` activation rows (a multiple of `matrix.rows` when there are more
  rows than that): one `H_LOAD_V` brings the tile's rows of X (BF16, `[M, K]`
  row-major in memory, so a tile is contiguous) to `V[0 ..)`.
- **N slices** of `nt` outputs (all of N when it fits beside the X tile): `M_CFG` sets
  the shape, the residual's rows (if any) are loaded into the output rows, `M_MM` (or
  `M_MM_RES` in place) computes them over the whole K, and `H_STORE_V` writes them to
  Y (`[M, N]` BF16 row-major; row by row when the slice is narrower than N).
- **K** is not split: every product of an output is summed by one instruction in
  increasing k (docs/NUMERICS.md section 11). A K whose activation row and one output
  row do not fit the vector SRAM is refused, naming the limit.

Shapes are padded here to the matrix unit's multiples (N to `vector.vlen`, K to
max(vlen, mx.block)); `dnpu.ops.linear` pads the operands with zeros and drops the padded
outputs. External memory (every buffer 64-byte aligned): program, x `[M, K]` BF16,
w (the matrix weight layout of docs/MX.md), r `[M, N]` BF16 (with a residual), y `[M, N]`
BF16.
"""

from __future__ import annotations

import dataclasses
import functools

from dnpu.spec import isa, matrix
from dnpu.spec.config import Config
from dnpu.spec.mx import PACK_ALIGN, align_up

__all__ = ["LinearProgram", "linear_program", "plan", "LINEAR_ARGS"]

# Which argument register carries which buffer's address.
LINEAR_ARGS = ("x", "w", "y", "r")


@dataclasses.dataclass(frozen=True)
class LinearProgram:
    """A compiled linear layer: the binary, its source, the tile plan and the memory layout
    (name -> (offset from the base, bytes))."""

    config_name: str
    M: int
    N: int
    K: int
    fmt: str
    residual: bool
    mt: int                  # activation rows per M tile
    nt: int                  # outputs per N slice
    asm: str
    binary: bytes
    layout: dict[str, tuple[int, int]]

    @property
    def nbytes(self) -> int:
        return max(off + n for off, n in self.layout.values())

    def args(self, base: int) -> list[int]:
        return [base + self.layout[name][0] if name in self.layout else 0 for name in LINEAR_ARGS]


def plan(cfg: Config, M: int, N: int, K: int) -> tuple[int, int]:
    """(mt, nt): activation rows per M tile and outputs per N slice that fit the vector
    SRAM (X tile + output rows). Raises CompileError naming the limit."""
    from dnpu.compiler import CompileError

    try:
        matrix.check_shape(cfg, M, N, K)
    except matrix.ShapeError as e:
        raise CompileError(str(e)) from None
    vlen, rows, R = cfg.vector.vlen, cfg.sram.vector_rows, cfg.matrix.rows
    kv, nv = K // vlen, N // vlen
    km = matrix.k_multiple(vlen, cfg.mx.block)
    if kv + 1 > rows:
        raise CompileError(f"K = {K}: one activation row ({kv} vector-SRAM rows) and one output row need "
                           f"{kv + 1} rows; profile {cfg.name} has sram.vector_rows = {rows} "
                           f"(K at most {(rows - 1) * vlen // km * km})")
    fit = rows // (kv + nv)
    if fit >= 1:
        mt, ntv = min(M, fit), nv
    else:                                     # not even one whole output row: slice N
        mt = min(M, R)
        while mt > 1 and rows - mt * kv < mt:
            mt -= 1
        ntv = min(nv, (rows - mt * kv) // mt)
    if mt > R:
        mt -= mt % R                          # whole groups of the array's rows
    return mt, ntv * vlen


def _source(cfg: Config, M: int, N: int, K: int, fmt: str, residual: bool, mt: int, nt: int) -> str:
    vlen = cfg.vector.vlen
    kv, nv, ntv = K // vlen, N // vlen, nt // vlen
    tile_bytes = matrix.tile_nbytes(K, fmt, cfg.mx.block, vlen)
    arg = {name: i for i, name in enumerate(LINEAR_ARGS)}
    op = "M_MM_RES" if residual else "M_MM"
    a = [f"# linear layer: profile {cfg.name}, M={M} N={N} K={K}, fmt={fmt}, residual={residual}, "
         f"tiles of {mt} rows x {nt} outputs",
         f"S_LD_ARG x1, {arg['x']}       # X [M, K] BF16",
         f"S_LD_ARG x2, {arg['w']}       # W tiles",
         f"S_LD_ARG x3, {arg['y']}       # Y [M, N] BF16"]
    if residual:
        a.append(f"S_LD_ARG x4, {arg['r']}       # R [M, N] BF16")
    a += isa.load_imm("x14", 2 * N)          # bytes per row of Y and R
    a += isa.load_imm("x15", ntv)            # vector rows per output row of a slice
    a += isa.load_imm("x10", K)
    for m0 in range(0, M, mt):
        rows_m = min(mt, M - m0)
        vy = rows_m * kv                     # the slice's output rows follow the X tile
        a += [f"# M tile rows {m0}..{m0 + rows_m - 1}"]
        a += isa.load_imm("x5", 2 * K * m0) + ["S_ADD x5, x1, x5"]
        a += isa.load_imm("x6", rows_m * kv)
        a += ["H_LOAD_V x0, x5, x6", *isa.load_imm("x8", rows_m)]
        for n0 in range(0, N, nt):
            cols = min(nt, N - n0)
            a += [f"#   N slice outputs {n0}..{n0 + cols - 1}"]
            a += isa.load_imm("x9", cols) + ["M_CFG x8, x9, x10"]
            a += isa.load_imm("x7", (n0 // vlen) * tile_bytes) + ["S_ADD x7, x2, x7"]
            a += isa.load_imm("x11", vy)
            ybase = 2 * (m0 * N + n0)
            if residual:
                a += _rows_transfer("H_LOAD_V", "x4", ybase, rows_m, cols // vlen, cols == N)
                a += [f"{op} x11, x0, x7, x11, {fmt}"]
            else:
                a += [f"{op} x11, x0, x7, {fmt}"]
            a += _rows_transfer("H_STORE_V", "x3", ybase, rows_m, cols // vlen, cols == N)
    a.append("C_HALT")
    return "\n".join(a) + "\n"


def _rows_transfer(op: str, base_reg: str, byte_off: int, rows_m: int, vrows: int, whole: bool) -> list[str]:
    """`op` (H_LOAD_V / H_STORE_V) between the slice's output rows at V[x11..] and the
    [M, N] BF16 matrix at base_reg + byte_off: one transfer when the slice spans whole rows
    of the matrix, else one per activation row (x14 = bytes per matrix row)."""
    a = isa.load_imm("x12", byte_off) + [f"S_ADD x12, {base_reg}, x12"]
    if whole:
        return a + isa.load_imm("x13", rows_m * vrows) + [f"{op} x11, x12, x13"]
    return a + ["S_ADD x13, x11, x0",
                f"C_LOOPI {rows_m}, 3",
                f"  {op} x13, x12, x15",
                "  S_ADD x13, x13, x15",
                "  S_ADD x12, x12, x14"]


@functools.lru_cache(maxsize=64)
def _compile(cfg: Config, M: int, N: int, K: int, fmt: str, residual: bool) -> LinearProgram:
    from dnpu.compiler import CompileError

    if fmt not in cfg.mx.formats:
        raise CompileError(f"fmt = {fmt!r}: profile {cfg.name} decodes {', '.join(cfg.mx.formats)}")
    mt, nt = plan(cfg, M, N, K)
    src = _source(cfg, M, N, K, fmt, residual, mt, nt)
    binary = isa.assemble(src, filename=f"<linear {M}x{N}x{K}>")
    sizes = [("program", len(binary)), ("x", 2 * M * K),
             ("w", (N // cfg.vector.vlen) * matrix.tile_nbytes(K, fmt, cfg.mx.block, cfg.vector.vlen))]
    if residual:
        sizes.append(("r", 2 * M * N))
    sizes.append(("y", 2 * M * N))
    layout, off = {}, 0
    for name, n in sizes:
        layout[name] = (off, n)
        off = align_up(off + n, PACK_ALIGN)
    return LinearProgram(cfg.name, M, N, K, fmt, residual, mt, nt, src, binary, layout)


def linear_program(config: Config, M: int, N: int, K: int, fmt: str = "e4m3",
                   residual: bool = False) -> LinearProgram:
    """Compile Y = X · Wᵀ (+ R) for `config`: N a multiple of vector.vlen and K of
    max(vlen, mx.block) (dnpu.ops.linear pads to them); cached per shape."""
    return _compile(config, int(M), int(N), int(K), fmt, bool(residual))
