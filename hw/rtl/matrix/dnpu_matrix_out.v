`default_nettype none
// dnpu_matrix_out: one column of the matrix unit's drain, y = bf16(sh + r) rounded once
// with a residual r (BF16), else bf16(sh): fp_add_f(sh, -0, bf16), -0 leaving sh itself
// (a -0 sh included) before the rounding (docs/NUMERICS.md section 11). y[15:0] = 0.
//
// A module of its own rather than a dnpu_fp32_add instance: synthesis keeps the hierarchy,
// so only here does Yosys see the constants (BF16 rounding, the residual's zero low half)
// and drop the FP32 rounding path and part of the alignment. With en low, y = 0 and the
// simulator skips the arithmetic.
/* verilator tracing_off */
module dnpu_matrix_out (
    input  wire        en,
    input  wire [31:0] sh,
    input  wire        res,
    input  wire [15:0] r,
    output reg  [31:0] y
);
    // Not inlined into dnpu_matrix, so each column's copy of the functions has a scope of its own.
    /* verilator no_inline_module */
`include "dnpu_fp_funcs.vh"
    always @* begin
        y = 32'd0;
        if (en)
            y = fp_add_f(sh, res ? {r, 16'd0} : 32'h8000_0000, 1'b0, 1'b1);
    end
endmodule

`default_nettype wire
