"""Compiler: the embedding gather `y[t] = table[ids[t]]` (BF16 rows) as an NPU program.

`embedding_program(config, L, D, V)` loads tiles of token ids into the int SRAM
(`H_LOAD_INT`) and, in a hardware loop per token, turns an id into the address of its
table row (`S_LD_INT`, `S_MUL`, `S_ADD`) and loads that row (`H_LOAD_V`); each tile of rows
leaves by one `H_STORE_V`. A copy, so bit for bit the table's rows. D must be a multiple of
vector.vlen (`dnpu.ops.embedding` pads the table with zeros). The ids are not checked on
the NPU: `dnpu.ops.embedding` refuses one outside the table. External memory (every buffer
64-byte aligned): program, ids int32 [L], table [V, D] BF16, y [L, D] BF16.
"""

from __future__ import annotations

import functools

from dnpu.spec import isa
from dnpu.spec.config import Config
from dnpu.compiler.kernel import KernelProgram, build

__all__ = ["embedding_program", "EMBED_ARGS"]

# Which argument register carries which buffer's address.
EMBED_ARGS = ("ids", "table", "y")


def _source(cfg: Config, L: int, D: int, lt: int) -> str:
    dv = D // cfg.vector.vlen
    arg = {name: i for i, name in enumerate(EMBED_ARGS)}
    a = [f"# embedding gather: profile {cfg.name}, L={L} D={D}, tiles of {lt} tokens",
         *[f"S_LD_ARG x{1 + i}, {arg[n]}" for i, n in enumerate(EMBED_ARGS)],
         *isa.load_imm("x5", dv), *isa.load_imm("x6", 2 * D)]
    for t0 in range(0, L, lt):
        n = min(lt, L - t0)
        a += [f"# tokens {t0}..{t0 + n - 1}",
              *isa.load_imm("x4", 4 * t0), "S_ADD x4, x1, x4", *isa.load_imm("x7", n),
              "H_LOAD_INT x0, x4, x7",
              "S_ADDI x8, x0, 0             # int SRAM index",
              "S_ADDI x9, x0, 0             # vector SRAM row",
              f"C_LOOPI {n}, 6",
              "  S_LD_INT x10, x8, 0",
              "  S_MUL x10, x10, x6",
              "  S_ADD x10, x2, x10",
              "  H_LOAD_V x9, x10, x5",
              "  S_ADD x9, x9, x5",
              "  S_ADDI x8, x8, 1",
              *isa.load_imm("x4", 2 * D * t0), "S_ADD x4, x3, x4", *isa.load_imm("x7", n * dv),
              "H_STORE_V x0, x4, x7"]
    a.append("C_HALT")
    return "\n".join(a) + "\n"


@functools.lru_cache(maxsize=64)
def _compile(cfg: Config, L: int, D: int, V: int) -> KernelProgram:
    from dnpu.compiler import CompileError

    vlen, vrows = cfg.vector.vlen, cfg.sram.vector_rows
    if min(L, D, V) < 1:
        raise CompileError(f"L={L}, D={D}, V={V}: each must be at least 1")
    if D % vlen:
        raise CompileError(f"D = {D} must be a multiple of vector.vlen = {vlen} on profile {cfg.name}")
    dv = D // vlen
    if dv > vrows:
        raise CompileError(f"D = {D}: one row needs {dv} vector-SRAM rows; profile {cfg.name} has "
                           f"sram.vector_rows = {vrows}")
    lt = min(L, vrows // dv, cfg.sram.int_words)
    return build("embedding", cfg.name, {"L": L, "D": D, "V": V}, lt, _source(cfg, L, D, lt),
                 [("ids", 4 * L), ("table", 2 * V * D), ("y", 2 * L * D)], EMBED_ARGS)


def embedding_program(config: Config, L: int, D: int, V: int) -> KernelProgram:
    """Compile the gather of L rows of D (a multiple of vector.vlen) from a table of V rows
    for `config`; cached."""
    return _compile(config, int(L), int(D), int(V))
