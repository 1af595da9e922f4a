`default_nettype none
// dnpu_fp_exp: y = EXP(x), FP32 -> FP32, docs/NUMERICS.md section 3 exactly.
// Combinational. The logic and the reasons for its widths: fp_exp_f in
// hw/rtl/common/dnpu_fp_funcs.vh (its T/D tables: hw/rtl/common/dnpu_exp_table.vh,
// generated from dnpu.numerics).

module dnpu_fp_exp (
    input  wire [31:0] x,
    output wire [31:0] y
);
`include "dnpu_fp_funcs.vh"
    assign y = fp_exp_f(x);
endmodule

`default_nettype wire
