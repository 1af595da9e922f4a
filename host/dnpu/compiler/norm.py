"""Compiler: RMSNorm `y = x / sqrt(mean(x²) + eps) · g` over the rows of x as an NPU program
(the steps and their rounding: docs/NUMERICS.md section 12).

`rms_norm_program(config, M, D)` keeps the gain `g` in `V[0, dv)` and a scratch row of
squares in `V[dv, 2dv)` (dv = D / vector.vlen vector rows a row of x), and walks tiles of
`mt` rows of x through `V[2dv ..)`: one `H_LOAD_V` a tile, then a hardware loop over its
rows (V_MUL_VV, V_RED_SUM, S_MUL_FP by 1/D, S_ADD_FP eps, S_RSQRT_FP, V_MUL_VF and
V_MUL_VV by g, in place), then one `H_STORE_V`. The FP32 constants 1/D and eps come from
memory (`H_LOAD_FP` to `FP[0, 2)`), so one program serves every eps.

D must be a multiple of vector.vlen: `dnpu.ops.rms_norm` pads x and g with zeros, which add
nothing to the sum of squares (the constant stays 1/D of the true D). External memory
(every buffer 64-byte aligned): program, x [M, D] BF16, g [D] BF16, c FP32 [1/D, eps],
y [M, D] BF16.
"""

from __future__ import annotations

import functools

from dnpu.spec import isa
from dnpu.spec.config import Config
from dnpu.compiler.kernel import KernelProgram, build, loop

__all__ = ["rms_norm_program", "NORM_ARGS", "norm_rows"]

# Which argument register carries which buffer's address.
NORM_ARGS = ("x", "g", "c", "y")


def norm_rows(vx: str, vy: str, vsq: str, vg: str, n: str, f_invd: str, f_eps: str, f_t: str) -> list[str]:
    """One row of section 12: y at V[x[vy]] from x at V[x[vx]] (n vector rows each; vy = vx
    in place), the squares at V[x[vsq]], the gain at V[x[vg]]; f_invd, f_eps hold 1/D and
    eps, f_t is scratch."""
    return [f"V_MUL_VV {vsq}, {vx}, {vx}, {n}     # q = bf16(x x)",
            f"V_RED_SUM {f_t}, {vsq}, {n}",
            f"S_MUL_FP {f_t}, {f_t}, {f_invd}",
            f"S_ADD_FP {f_t}, {f_t}, {f_eps}",
            f"S_RSQRT_FP {f_t}, {f_t}",
            f"V_MUL_VF {vy}, {vx}, {f_t}, {n}     # bf16(x r)",
            f"V_MUL_VV {vy}, {vy}, {vg}, {n}     # bf16(t g)"]


def _source(cfg: Config, M: int, D: int, mt: int) -> str:
    dv = D // cfg.vector.vlen
    arg = {name: i for i, name in enumerate(NORM_ARGS)}
    a = [f"# RMSNorm: profile {cfg.name}, M={M} D={D}, tiles of {mt} rows",
         f"S_LD_ARG x1, {arg['x']}       # x [M, D] BF16",
         f"S_LD_ARG x2, {arg['g']}       # g [D] BF16",
         f"S_LD_ARG x3, {arg['c']}       # FP32 1/D, eps",
         f"S_LD_ARG x4, {arg['y']}       # y [M, D] BF16",
         "S_ADDI x5, x0, 2",
         "H_LOAD_FP x0, x3, x5",
         "S_LD_FP f1, x0, 0             # 1/D",
         "S_LD_FP f2, x0, 1             # eps",
         *isa.load_imm("x6", dv),
         "H_LOAD_V x0, x2, x6           # g at V[0 ..)",
         *isa.load_imm("x7", dv)]         # the squares at V[dv ..)
    for m0 in range(0, M, mt):
        rows = min(mt, M - m0)
        a += [f"# rows {m0}..{m0 + rows - 1}",
              *isa.load_imm("x8", 2 * dv), *isa.load_imm("x9", rows * dv),
              *isa.load_imm("x10", 2 * D * m0), "S_ADD x10, x1, x10",
              "H_LOAD_V x8, x10, x9",
              *loop(rows, [*norm_rows("x8", "x8", "x7", "x0", "x6", "f1", "f2", "f3"), "S_ADD x8, x8, x6"]),
              *isa.load_imm("x8", 2 * dv),
              *isa.load_imm("x10", 2 * D * m0), "S_ADD x10, x4, x10",
              "H_STORE_V x8, x10, x9"]
    a.append("C_HALT")
    return "\n".join(a) + "\n"


@functools.lru_cache(maxsize=64)
def _compile(cfg: Config, M: int, D: int) -> KernelProgram:
    from dnpu.compiler import CompileError

    vlen, vrows = cfg.vector.vlen, cfg.sram.vector_rows
    if M < 1 or D < 1:
        raise CompileError(f"shape M={M}, D={D}: both must be at least 1")
    if D % vlen:
        raise CompileError(f"D = {D} must be a multiple of vector.vlen = {vlen} on profile {cfg.name}")
    dv = D // vlen
    if 3 * dv > vrows:
        raise CompileError(f"D = {D}: the gain, one row of squares and one row of x need {3 * dv} vector-SRAM "
                           f"rows; profile {cfg.name} has sram.vector_rows = {vrows} "
                           f"(D at most {vrows // 3 * vlen})")
    mt = min(M, vrows // dv - 2)
    return build("rms_norm", cfg.name, {"M": M, "D": D}, mt, _source(cfg, M, D, mt),
                 [("x", 2 * M * D), ("g", 2 * D), ("c", 8), ("y", 2 * M * D)], NORM_ARGS)


def rms_norm_program(config: Config, M: int, D: int) -> KernelProgram:
    """Compile RMSNorm over M rows of D (a multiple of vector.vlen) for `config`; cached."""
    return _compile(config, int(M), int(D))
