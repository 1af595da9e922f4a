"""hw/rtl/common/dnpu_exp_table.vh: EXP's T/D tables (docs/NUMERICS.md section 3) from
dnpu.spec.numerics as a Verilog function, exp_table_f, that dnpu_fp_funcs.vh includes."""

from __future__ import annotations

from dnpu.codegen.text import banner
from dnpu.codegen.validate import CodegenError

EXP_TABLE_VH = "hw/rtl/common/dnpu_exp_table.vh"
EXP_SOURCE = "dnpu.spec.numerics"
ENTRIES = 64                   # T[0..64], D[0..63]: exp_table_f's 6-bit index
D_OFFSET = 1 << 16             # D[i] * 2^23 is stored less D_OFFSET, in 17 bits
D_BITS = 17


def exp_table_entries(t_bits: list[int], d_bits: list[int]) -> list[tuple[int, int]]:
    """(t_frac, d_int) for i = 0..63: T[i] = 1 + t_frac * 2^-23, D[i] = d_int * 2^-23.
    Checks the facts dnpu_fp_exp relies on: T[i] in [1, 2), T[64] = 2, D[i] an exact
    multiple of 2^-23 with 2^16 <= d_int < 2^16 + 2^17, T[i] + D[i] == T[i+1]."""
    def bad(what: str, msg: str) -> CodegenError:
        return CodegenError(f"{EXP_SOURCE}: {what}: {msg}")

    if len(t_bits) != ENTRIES + 1 or len(d_bits) != ENTRIES:
        raise bad("EXP_T_BITS, EXP_D_BITS", f"{len(t_bits)} and {len(d_bits)} entries "
                                            f"(exp_table_f needs {ENTRIES + 1} and {ENTRIES})")
    if t_bits[ENTRIES] != 0x40000000:
        raise bad(f"EXP_T_BITS[{ENTRIES}]", f"0x{t_bits[ENTRIES]:08X} is not 2.0")
    t_int = []
    for i, tb in enumerate(t_bits[:ENTRIES]):
        if tb >> 23 != 127:
            raise bad(f"EXP_T_BITS[{i}]", f"0x{tb:08X} is not in [1, 2)")
        t_int.append((1 << 23) | (tb & 0x7FFFFF))
    t_int.append(1 << 24)
    out = []
    for i, db in enumerate(d_bits):
        man = (1 << 23) | (db & 0x7FFFFF)
        sh = 127 - ((db >> 23) & 0xFF)            # D * 2^23 = man * 2^(e - 127)
        if db >> 31 or not 0 <= sh < 24 or man % (1 << sh):
            raise bad(f"EXP_D_BITS[{i}]", f"0x{db:08X} is not a positive multiple of 2^-23 below 1")
        d_int = man >> sh
        if not D_OFFSET <= d_int < D_OFFSET + (1 << D_BITS):
            raise bad(f"EXP_D_BITS[{i}]", f"0x{db:08X} is not (2^16 + d_lo) * 2^-23 with a "
                                          f"{D_BITS}-bit d_lo")
        if t_int[i] + d_int != t_int[i + 1]:
            raise bad(f"EXP_D_BITS[{i}]", f"0x{db:08X} is not T[{i + 1}] - T[{i}]")
        out.append((t_int[i] & 0x7FFFFF, d_int))
    return out


def emit_exp_table(t_bits: list[int], d_bits: list[int]) -> str:
    """The header for numerics' EXP_T_BITS (T[0..64]) and EXP_D_BITS (D[0..63])."""
    rows = "\n".join(f"            6'd{i:<2}: exp_table_f = {{23'h{t:06X}, 17'h{d - D_OFFSET:05X}}};"
                     for i, (t, d) in enumerate(exp_table_entries(t_bits, d_bits)))
    return banner(f"{EXP_SOURCE} (EXP_T_BITS, EXP_D_BITS)", "//") + f"""\
// Regenerate with `make generate` (python -m dnpu.codegen); `make check-generated`
// (python -m dnpu.codegen --check) fails when this file is stale.
//
// exp_table_f(i) = {{t_frac, d_lo}}: the EXP tables of docs/NUMERICS.md section 3 for
// i = 0..63, a function for dnpu_fp_funcs.vh (included there, inside a module):
//   T[i] = 1 + t_frac * 2^-23          (every T[i], i < 64, lies in [1, 2))
//   D[i] = (2^16 + d_lo) * 2^-23       (exact: D[i] = T[i+1] - T[i] is a multiple
//                                       of 2^-23, between 2^16 and 2^16 + 2^17 of them)
// D is stored less 2^16 so that D * m is a 17 x 24 product (one DSP48) plus m << 16.

function [39:0] exp_table_f;
    input [5:0] idx;
    begin
        case (idx)
{rows}
        endcase
    end
endfunction
"""
