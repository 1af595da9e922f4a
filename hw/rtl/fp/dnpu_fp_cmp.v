`default_nettype none
// dnpu_fp_cmp: gt = (a > b), eq = (a == b) in the total order of docs/NUMERICS.md
// section 5 (DAZ, -0 == +0, NaN above every number and equal to every NaN).
// Combinational. lt(a, b) = gt(b, a), ge = gt | eq; S_MAX_FP picks b iff gt(b, a).
// The logic: fp_cmp_f in hw/rtl/common/dnpu_fp_funcs.vh.

module dnpu_fp_cmp (
    input  wire [31:0] a,
    input  wire [31:0] b,
    output wire        gt,
    output wire        eq
);
`include "dnpu_fp_funcs.vh"
    assign {gt, eq} = fp_cmp_f(a, b);
endmodule

`default_nettype wire
