"""Compiler: a linear layer `Y = X · Wᵀ (+ R)` as an NPU program for the matrix unit.

`linear_program(config, M, N, K, fmt, residual)` plans tiles that fit the vector SRAM
and emits straight-line assembly over them:

- **M tiles** of `mt` activation rows (a multiple of `matrix.rows` when there are more
  rows than that).
- **N slices** of `nt` outputs (all of N when it fits beside the X tile): `M_CFG` sets
  the shape, the residual's rows (if any) are loaded into the output rows, and
  `H_STORE_V` writes the output rows to Y (`[M, N]` BF16 row-major; row by row when the
  slice is narrower than N).
- **K whole** when one activation row and one output row fit the vector SRAM: one
  `H_LOAD_V` per M tile brings its rows of X (BF16, `[M, K]` row-major in memory, so a
  tile is contiguous) to `V[0 ..)`, and one `M_MM` (`M_MM_RES`) per slice sums every
  product of an output in increasing k.
- **K split** otherwise, into chunks `k_chunks` (multiples of `matrix.k_multiple`, in
  increasing k, sizes within one multiple of each other). For each M tile and N slice,
  each chunk's columns of X are loaded row by row (a strided copy) to `V[0 ..)` and
  multiplied into FP32 accumulators A that follow the X chunk: `M_MM_F32` for the first
  chunk, `M_MM_ACC_F32` for the middle ones, `M_MM_ACC` (`M_MM_ACC_RES`, the residual
  loaded into the output rows first) for the last, writing the BF16 output rows after A.
  The adds are those of one instruction over the whole K, in the same order, so the
  result is bit for bit the unsplit one (docs/NUMERICS.md section 11). Tile sizes are
  chosen by `plan`: the fewest weight streams (whole groups of `matrix.rows` rows per M
  tile where they fit), then the least estimated cycles (X reloaded per N slice, a fixed
  cost per instruction), so K is cut as coarsely as the vector SRAM allows. The one
  remaining limit is one activation row of one K multiple and the 3 rows of one
  output's A and Y (`sram.vector_rows`), named by CompileError.

Shapes are padded here to the matrix unit's multiples (N to `vector.vlen`, K to
max(vlen, mx.block)); `dnpu.ops.linear` pads the operands with zeros and drops the padded
outputs. External memory (every buffer 64-byte aligned): program, x `[M, K]` BF16,
w, r `[M, N]` BF16 (with a residual), y `[M, N]` BF16.

**Weight image** (`weight_image`, the one home of this layout): for each K chunk in
order, `matrix.pack_weights(W[:, k0:k1])` (the matrix weight layout of docs/MX.md: N / vlen
tiles at a stride of `matrix.tile_nbytes(k1 - k0)`), chunks back to back. With K whole it
is the matrix weight layout of W itself.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from dnpu.spec import isa, matrix
from dnpu.spec.config import Config
from dnpu.spec.mx import PACK_ALIGN, align_up

__all__ = ["LinearProgram", "linear_program", "plan", "weight_image", "LINEAR_ARGS"]

# Which argument register carries which buffer's address.
LINEAR_ARGS = ("x", "w", "y", "r")

LOOPI_MAX = 32767                        # C_LOOPI's count field: the strided loads' row loop


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
    k_chunks: tuple[tuple[int, int], ...]   # [k0, k1) per instruction; ((0, K),) when K is whole
    vlen: int
    block: int
    asm: str
    binary: bytes
    layout: dict[str, tuple[int, int]]

    @property
    def nbytes(self) -> int:
        return max(off + n for off, n in self.layout.values())

    def args(self, base: int) -> list[int]:
        return [base + self.layout[name][0] if name in self.layout else 0 for name in LINEAR_ARGS]

    def chunk_offsets(self) -> list[int]:
        """Byte offset of each K chunk's weights in the weight image."""
        offs, off = [], 0
        for k0, k1 in self.k_chunks:
            offs.append(off)
            off += (self.N // self.vlen) * matrix.tile_nbytes(k1 - k0, self.fmt, self.block, self.vlen)
        return offs + [off]


def plan(cfg: Config, M: int, N: int, K: int) -> tuple[int, int, tuple[tuple[int, int], ...]]:
    """(mt, nt, k_chunks): activation rows per M tile, outputs per N slice and the K
    ranges, fitting the vector SRAM (see the module docstring). Raises CompileError
    naming the limit."""
    from dnpu.compiler import CompileError

    try:
        matrix.check_shape(cfg, M, N, K)
    except matrix.ShapeError as e:
        raise CompileError(str(e)) from None
    vlen, rows, R = cfg.vector.vlen, cfg.sram.vector_rows, cfg.matrix.rows
    kv, nv = K // vlen, N // vlen
    if kv + 1 > rows:
        return _plan_split(cfg, M, N, K)
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
    return mt, ntv * vlen, ((0, K),)


def _chunks(K: int, km: int, n: int) -> tuple[tuple[int, int], ...]:
    """K in n ranges of whole multiples of km, in increasing k, the first ones one multiple
    longer where K does not divide evenly."""
    units = K // km
    out, k0 = [], 0
    for c in range(n):
        k1 = k0 + (units // n + (c < units % n)) * km
        out.append((k0, k1))
        k0 = k1
    return tuple(out)


def _plan_split(cfg: Config, M: int, N: int, K: int):
    """The K-split plan over M tiles and N slices with the fewest weight streams (every
    group of `matrix.rows` activation rows streams W again: the dominant cost), then the
    least `_split_cycles`. X chunk (mt * kt / vlen rows), A (2 * mt * ntv) and Y (mt * ntv)
    must fit the vector SRAM."""
    from dnpu.compiler import CompileError

    vlen, rows, R = cfg.vector.vlen, cfg.sram.vector_rows, cfg.matrix.rows
    nv = N // vlen
    km = matrix.k_multiple(vlen, cfg.mx.block)
    if km // vlen + 3 > rows:
        raise CompileError(f"K = {K} must be split, and one chunk of one activation row ({km // vlen} "
                           f"vector-SRAM rows) with one output's FP32 accumulators and BF16 result (3 rows) "
                           f"needs {km // vlen + 3} rows; profile {cfg.name} has sram.vector_rows = {rows}")
    mts = set(range(1, min(M, R) + 1)) | set(range(R, M + 1, R)) | {M}
    ntvs = {-(-nv // s) for s in range(1, nv + 1)}
    best = None
    for mt in sorted(mts):
        if mt > LOOPI_MAX or mt * (km // vlen + 3) > rows:
            break
        for ntv in ntvs:
            ktv = (rows - 3 * mt * ntv) // mt
            if ktv < km // vlen:
                continue
            n = -(-K // (ktv * vlen // km * km))
            full, rest = divmod(M, mt)
            streams = full * -(-mt // R) + -(-rest // R)
            key = (streams, _split_cycles(cfg, M, nv, K, mt, ntv, n), n, -mt, -ntv)
            if best is None or key < best[0]:
                best = (key, (mt, ntv, n))
    mt, ntv, n = best[1]
    return mt, ntv * vlen, _chunks(K, km, n)


def _split_cycles(cfg: Config, M: int, nv: int, K: int, mt: int, ntv: int, n_chunks: int) -> float:
    """A cycle estimate of the costs that differ between K-split plans with the same weight
    streams: X loaded once per N slice at one AXI beat a cycle, and a fixed cost per M_MM*
    (read latency, the first square, the array's rows) and per strided row load."""
    R, lat = cfg.matrix.rows, cfg.memory.read_latency
    slices = -(-nv // ntv)
    x = slices * 2 * M * K / cfg.beat_bytes
    n_mm = -(-M // mt) * slices * n_chunks
    n_loads = slices * n_chunks * M
    return x + n_mm * (lat + cfg.mx.block + R + 8) + n_loads * (lat + 4)


def weight_image(prog: LinearProgram, w) -> bytes:
    """The weight buffer of `prog` from W [N, K] (float, already padded to the program's N
    and K): each K chunk's matrix weight layout, chunks back to back."""
    w = np.asarray(w)
    if w.shape != (prog.N, prog.K):
        raise ValueError(f"weights: expected the program's padded shape [{prog.N}, {prog.K}], "
                         f"got {list(w.shape)}")
    return b"".join(matrix.pack_weights(w[:, k0:k1], prog.fmt, prog.block, prog.vlen)
                    for k0, k1 in prog.k_chunks)


def _header(cfg, M, N, K, fmt, residual, mt, nt, chunks) -> list[str]:
    arg = {name: i for i, name in enumerate(LINEAR_ARGS)}
    split = f", K in {len(chunks)} chunks" if len(chunks) > 1 else ""
    a = [f"# linear layer: profile {cfg.name}, M={M} N={N} K={K}, fmt={fmt}, residual={residual}, "
         f"tiles of {mt} rows x {nt} outputs{split}",
         f"S_LD_ARG x1, {arg['x']}       # X [M, K] BF16",
         f"S_LD_ARG x2, {arg['w']}       # W tiles",
         f"S_LD_ARG x3, {arg['y']}       # Y [M, N] BF16"]
    if residual:
        a.append(f"S_LD_ARG x4, {arg['r']}       # R [M, N] BF16")
    a += isa.load_imm("x14", 2 * N)          # bytes per row of Y and R
    a += isa.load_imm("x15", nt // cfg.vector.vlen)   # vector rows per output row of a slice
    return a


def _source(cfg: Config, M: int, N: int, K: int, fmt: str, residual: bool, mt: int, nt: int) -> str:
    vlen = cfg.vector.vlen
    kv = K // vlen
    tile_bytes = matrix.tile_nbytes(K, fmt, cfg.mx.block, vlen)
    op = "M_MM_RES" if residual else "M_MM"
    a = _header(cfg, M, N, K, fmt, residual, mt, nt, ((0, K),))
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


def _source_split(cfg: Config, M: int, N: int, K: int, fmt: str, residual: bool, mt: int, nt: int,
                  chunks: tuple[tuple[int, int], ...], woffs: list[int]) -> str:
    vlen = cfg.vector.vlen
    va = mt * max(k1 - k0 for k0, k1 in chunks) // vlen     # A follows the largest X chunk
    a = _header(cfg, M, N, K, fmt, residual, mt, nt, chunks)
    a += isa.load_imm("x5", 2 * K)           # bytes per row of X: the chunk loads' stride
    last = len(chunks) - 1
    for m0 in range(0, M, mt):
        rows_m = min(mt, M - m0)
        a += [f"# M tile rows {m0}..{m0 + rows_m - 1}", *isa.load_imm("x8", rows_m)]
        for n0 in range(0, N, nt):
            cols = min(nt, N - n0)
            vy = va + 2 * rows_m * (cols // vlen)           # Y follows A
            ybase = 2 * (m0 * N + n0)
            a += [f"#   N slice outputs {n0}..{n0 + cols - 1}", *isa.load_imm("x9", cols)]
            for c, (k0, k1) in enumerate(chunks):
                ktv = (k1 - k0) // vlen
                a += [f"#     K chunk {k0}..{k1 - 1}"]
                a += isa.load_imm("x6", ktv) + isa.load_imm("x12", 2 * (K * m0 + k0)) + ["S_ADD x12, x1, x12"]
                if rows_m == 1:
                    a += ["H_LOAD_V x0, x12, x6"]
                else:
                    a += ["S_ADD x13, x0, x0",
                          f"C_LOOPI {rows_m}, 3",
                          "  H_LOAD_V x13, x12, x6",
                          "  S_ADD x13, x13, x6",
                          "  S_ADD x12, x12, x5"]
                a += isa.load_imm("x10", k1 - k0) + ["M_CFG x8, x9, x10"]
                tile_bytes = matrix.tile_nbytes(k1 - k0, fmt, cfg.mx.block, vlen)
                a += isa.load_imm("x7", woffs[c] + (n0 // vlen) * tile_bytes) + ["S_ADD x7, x2, x7"]
                if c < last:
                    a += isa.load_imm("x13", va)
                    a += [f"{'M_MM_F32' if c == 0 else 'M_MM_ACC_F32'} x13, x0, x7, {fmt}"]
                    continue
                a += isa.load_imm("x11", vy)
                if residual:
                    a += _rows_transfer("H_LOAD_V", "x4", ybase, rows_m, cols // vlen, cols == N)
                a += isa.load_imm("x13", va)
                a += [f"{'M_MM_ACC_RES' if residual else 'M_MM_ACC'} x11, x0, x7, x13, {fmt}"]
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
    mt, nt, chunks = plan(cfg, M, N, K)
    vlen, block = cfg.vector.vlen, cfg.mx.block
    shell = LinearProgram(cfg.name, M, N, K, fmt, residual, mt, nt, chunks, vlen, block, "", b"", {})
    woffs = shell.chunk_offsets()
    if len(chunks) == 1:
        src = _source(cfg, M, N, K, fmt, residual, mt, nt)
    else:
        src = _source_split(cfg, M, N, K, fmt, residual, mt, nt, chunks, woffs)
    binary = isa.assemble(src, filename=f"<linear {M}x{N}x{K}>")
    sizes = [("program", len(binary)), ("x", 2 * M * K), ("w", woffs[-1])]
    if residual:
        sizes.append(("r", 2 * M * N))
    sizes.append(("y", 2 * M * N))
    layout, off = {}, 0
    for name, n in sizes:
        layout[name] = (off, n)
        off = align_up(off + n, PACK_ALIGN)
    return dataclasses.replace(shell, asm=src, binary=binary, layout=layout)


def linear_program(config: Config, M: int, N: int, K: int, fmt: str = "e4m3",
                   residual: bool = False) -> LinearProgram:
    """Compile Y = X · Wᵀ (+ R) for `config`: N a multiple of vector.vlen and K of
    max(vlen, mx.block) (dnpu.ops.linear pads to them); cached per shape."""
    return _compile(config, int(M), int(N), int(K), fmt, bool(residual))
