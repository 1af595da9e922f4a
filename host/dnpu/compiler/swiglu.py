"""Compiler: SwiGLU's gate `h = silu(g) · u`, elementwise over BF16 g and u, as an NPU program
(the steps and their rounding: docs/NUMERICS.md section 13).

`swiglu_program(config, M, F)` treats g, u and h as M·F/vlen vector rows (F a multiple of
vector.vlen; `dnpu.ops.swiglu` pads with zeros, which give h = 0) and walks tiles of `t`
rows: g to `V[0, t)`, u to `V[t, 2t)` (one `H_LOAD_V` each), then V_MUL_VF by -1,
V_EXP_V, V_ADD_VF 1, V_RECI_V, V_MUL_VV by g and by u, all in `V[2t, 3t)`, then one
`H_STORE_V`. External memory (every buffer 64-byte aligned): program, g [M, F] BF16,
u [M, F] BF16, h [M, F] BF16.
"""

from __future__ import annotations

import functools

from dnpu.spec import isa
from dnpu.spec.config import Config
from dnpu.compiler.kernel import KernelProgram, build

__all__ = ["swiglu_program", "SWIGLU_ARGS", "swiglu_rows"]

# Which argument register carries which buffer's address.
SWIGLU_ARGS = ("g", "u", "h")


def swiglu_rows(vh: str, vg: str, vu: str, n: str, f_neg1: str, f_one: str) -> list[str]:
    """The kernel on n vector rows already in SRAM: h at V[x[vh]] from g at V[x[vg]] and u at
    V[x[vu]], h apart from both (it is written before they are last read). f_neg1, f_one
    hold -1.0 and 1.0."""
    return [f"V_MUL_VF {vh}, {vg}, {f_neg1}, {n}     # -g (exact)",
            f"V_EXP_V {vh}, {vh}, {n}",
            f"V_ADD_VF {vh}, {vh}, {f_one}, {n}",
            f"V_RECI_V {vh}, {vh}, {n}           # sigmoid(g)",
            f"V_MUL_VV {vh}, {vg}, {vh}, {n}",
            f"V_MUL_VV {vh}, {vh}, {vu}, {n}"]


def _source(cfg: Config, M: int, F: int, t: int) -> str:
    rows = M * F // cfg.vector.vlen
    arg = {name: i for i, name in enumerate(SWIGLU_ARGS)}
    a = [f"# SwiGLU gate: profile {cfg.name}, M={M} F={F}, tiles of {t} vector rows",
         f"S_LD_ARG x1, {arg['g']}       # g [M, F] BF16",
         f"S_LD_ARG x2, {arg['u']}       # u [M, F] BF16",
         f"S_LD_ARG x3, {arg['h']}       # h [M, F] BF16",
         "S_LI_FP f1, 0xBF80            # -1.0",
         "S_LI_FP f2, 0x3F80            # 1.0",
         *isa.load_imm("x5", t), *isa.load_imm("x6", 2 * t)]
    bpr = 2 * cfg.vector.vlen                    # bytes a vector row
    for r0 in range(0, rows, t):
        n = min(t, rows - r0)
        a += [f"# rows {r0}..{r0 + n - 1}", *isa.load_imm("x7", n),
              *isa.load_imm("x8", bpr * r0), "S_ADD x9, x1, x8", "H_LOAD_V x0, x9, x7",
              "S_ADD x9, x2, x8", "H_LOAD_V x5, x9, x7",
              *swiglu_rows("x6", "x0", "x5", "x7", "f1", "f2"),
              "S_ADD x9, x3, x8", "H_STORE_V x6, x9, x7"]
    a.append("C_HALT")
    return "\n".join(a) + "\n"


@functools.lru_cache(maxsize=64)
def _compile(cfg: Config, M: int, F: int) -> KernelProgram:
    from dnpu.compiler import CompileError

    vlen = cfg.vector.vlen
    if M < 1 or F < 1:
        raise CompileError(f"shape M={M}, F={F}: both must be at least 1")
    if F % vlen:
        raise CompileError(f"F = {F} must be a multiple of vector.vlen = {vlen} on profile {cfg.name}")
    t = min(M * F // vlen, cfg.sram.vector_rows // 3)
    return build("swiglu", cfg.name, {"M": M, "F": F}, t, _source(cfg, M, F, t),
                 [("g", 2 * M * F), ("u", 2 * M * F), ("h", 2 * M * F)], SWIGLU_ARGS)


def swiglu_program(config: Config, M: int, F: int) -> KernelProgram:
    """Compile h = silu(g) · u over [M, F] (F a multiple of vector.vlen) for `config`; cached."""
    return _compile(config, int(M), int(F))
