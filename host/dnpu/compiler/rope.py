"""Compiler: rotate-half RoPE over the heads of L token rows as an NPU program (the steps and
their rounding: docs/NUMERICS.md section 14).

`rope_program(config, L, n_heads, head_dim)`: x `[L, n_heads·head_dim]` BF16 and the tables
cos, sin `[L, head_dim/2]` BF16 (one half: LLaDA's tables repeat over the two halves).
Half a head, h = head_dim/2, must be whole vector rows (a multiple of vector.vlen). Tiles
of tokens go through the vector SRAM: x, cos and sin by `H_LOAD_V`, then per token and
head (two nested hardware loops) four V_MUL_VV, a V_SUB_VV and a V_ADD_VV into y, then
one `H_STORE_V`. External memory (every buffer 64-byte aligned): program, x, cos, sin, y.
"""

from __future__ import annotations

import functools

from dnpu.spec import isa
from dnpu.spec.config import Config
from dnpu.compiler.kernel import KernelProgram, build

__all__ = ["rope_program", "ROPE_ARGS"]

# Which argument register carries which buffer's address.
ROPE_ARGS = ("x", "cos", "sin", "y")


def _source(cfg: Config, L: int, H: int, hd: int, lt: int) -> str:
    vlen = cfg.vector.vlen
    hv = hd // 2 // vlen                    # vector rows a half head
    xr = H * 2 * hv                         # vector rows a token of x
    arg = {name: i for i, name in enumerate(ROPE_ARGS)}
    # V: the x tile at 0, the y tile after it, the cos and sin tiles, two scratch half heads
    vy, vc = lt * xr, 2 * lt * xr
    vs = vc + lt * hv
    vt = vs + lt * hv
    a = [f"# RoPE: profile {cfg.name}, L={L} heads={H} head_dim={hd}, tiles of {lt} tokens",
         *[f"S_LD_ARG x{1 + i}, {arg[n]}" for i, n in enumerate(ROPE_ARGS)],
         *isa.load_imm("x5", hv), *isa.load_imm("x14", vt), *isa.load_imm("x15", vt + hv)]
    for t0 in range(0, L, lt):
        n = min(lt, L - t0)
        a += [f"# tokens {t0}..{t0 + n - 1}"]
        for reg, off, rows, at in (("x1", 2 * hd * H * t0, n * xr, 0), ("x2", hd * t0, n * hv, vc),
                                   ("x3", hd * t0, n * hv, vs)):
            a += [*isa.load_imm("x6", at), *isa.load_imm("x7", off), f"S_ADD x7, {reg}, x7",
                  *isa.load_imm("x8", rows), "H_LOAD_V x6, x7, x8"]
        # x9: a (this head's first half), x10: y_a, x11 / x12: this token's cos / sin rows
        a += [*isa.load_imm("x9", 0), *isa.load_imm("x10", vy), *isa.load_imm("x11", vc),
              *isa.load_imm("x12", vs),
              f"C_LOOPI {n}, 14",
              f"  C_LOOPI {H}, 11",
              "    S_ADD x13, x9, x5             # b",
              "    V_MUL_VV x14, x9, x11, x5     # a c",
              "    V_MUL_VV x15, x13, x12, x5    # b s",
              "    V_SUB_VV x10, x14, x15, x5    # y_a",
              "    V_MUL_VV x14, x13, x11, x5    # b c",
              "    V_MUL_VV x15, x9, x12, x5     # a s",
              "    S_ADD x13, x10, x5",
              "    V_ADD_VV x13, x14, x15, x5    # y_b",
              "    S_ADD x9, x9, x5              # the next head's a: two halves on",
              "    S_ADD x9, x9, x5",
              "    S_ADD x10, x13, x5            # the next head's y_a",
              "  S_ADD x11, x11, x5",
              "  S_ADD x12, x12, x5",
              *isa.load_imm("x6", vy), *isa.load_imm("x7", 2 * hd * H * t0), "S_ADD x7, x4, x7",
              *isa.load_imm("x8", n * xr), "H_STORE_V x6, x7, x8"]
    a.append("C_HALT")
    return "\n".join(a) + "\n"


@functools.lru_cache(maxsize=64)
def _compile(cfg: Config, L: int, H: int, hd: int) -> KernelProgram:
    from dnpu.compiler import CompileError

    vlen, vrows = cfg.vector.vlen, cfg.sram.vector_rows
    if min(L, H, hd) < 1:
        raise CompileError(f"L={L}, n_heads={H}, head_dim={hd}: each must be at least 1")
    if hd % (2 * vlen):
        raise CompileError(f"head_dim = {hd}: half a head ({hd // 2}) must be whole vector rows, a multiple "
                           f"of vector.vlen = {vlen} on profile {cfg.name}")
    hv = hd // 2 // vlen
    per_token = 2 * H * 2 * hv + 2 * hv          # x, y, cos, sin rows of one token
    lt = min(L, (vrows - 2 * hv) // per_token)
    if lt < 1:
        raise CompileError(f"one token ({H} heads of {hd}) needs {per_token + 2 * hv} vector-SRAM rows; "
                           f"profile {cfg.name} has sram.vector_rows = {vrows}")
    return build("rope", cfg.name, {"L": L, "n_heads": H, "head_dim": hd}, lt, _source(cfg, L, H, hd, lt),
                 [("x", 2 * L * H * hd), ("cos", L * hd), ("sin", L * hd), ("y", 2 * L * H * hd)], ROPE_ARGS)


def rope_program(config: Config, L: int, n_heads: int, head_dim: int) -> KernelProgram:
    """Compile rotate-half RoPE over L tokens of n_heads heads for `config`; cached."""
    return _compile(config, int(L), int(n_heads), int(head_dim))
