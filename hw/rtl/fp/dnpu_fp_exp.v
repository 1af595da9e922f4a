`default_nettype none
// dnpu_fp_exp: y = EXP(x), FP32 -> FP32, docs/NUMERICS.md section 3 exactly.
// Combinational; y = 0 while en is 0 (see dnpu_fp32_mul for why). The logic and the
// reasons for its widths: fp_exp_f in
// hw/rtl/common/dnpu_fp_funcs.vh (its T/D tables: hw/rtl/common/dnpu_exp_table.vh,
// generated from dnpu.numerics).

/* verilator tracing_off */
module dnpu_fp_exp (
    input  wire        en,
    input  wire [31:0] x,
    output reg  [31:0] y
);
`include "dnpu_fp_funcs.vh"
    always @* begin
        y = 32'd0;
        if (en)
            y = fp_exp_f(x);
    end
endmodule

`default_nettype wire
