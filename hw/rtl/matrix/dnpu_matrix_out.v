`default_nettype none
// dnpu_matrix_out: one column of the matrix unit's drain, y = bf16(sh + r) rounded once
// with a residual r (BF16), else bf16(sh): fp_add_f(sh, -0, bf16), -0 leaving sh itself
// (a -0 sh included) before the rounding (docs/NUMERICS.md section 11). y[15:0] = 0.
//
// STAGES = 1: combinational, y = 0 while en is 0; clk is unused. STAGES = 2: y is the
// result for the inputs and en of the edge before (a register after the adder's steps 0
// and 1, as dnpu_fp32_add with two stages), 0 where that en was 0.
//
// A module of its own rather than a dnpu_fp32_add instance: synthesis keeps the hierarchy,
// so only here does Yosys see the constants (BF16 rounding, the residual's zero low half)
// and drop the FP32 rounding path and part of the alignment. While en is low the
// simulator skips the arithmetic.
/* verilator tracing_off */
module dnpu_matrix_out #(
    parameter integer STAGES = 1
) (
    input  wire        clk,
    input  wire        en,
    input  wire [31:0] sh,
    input  wire        res,
    input  wire [15:0] r,
    output reg  [31:0] y
);
    // Not inlined into dnpu_matrix, so each column's copy of the functions has a scope of its own.
    /* verilator no_inline_module */
`include "dnpu_fp_funcs.vh"
    generate
        if (STAGES < 1 || STAGES > 2) begin : g_bad
            // elaboration stops here in every tool, and the missing module's name says why
            dnpu_matrix_out_STAGES_must_be_1_or_2 u_bad ();
        end else if (STAGES == 1) begin : g_comb
            wire unused_clk = clk;
            always @* begin
                y = 32'd0;
                if (en)
                    y = fp_add_f(sh, res ? {r, 16'd0} : 32'h8000_0000, 1'b0, 1'b1);
            end
        end else begin : g_pipe
            reg                      v;
            reg [`FP_ADD_ST_W-1:0]   st;
            always @(posedge clk) begin
                v <= en;
                if (en)
                    st <= fp_add_s1_f(fp_add_s0_f(fp_add_in_f(sh, res ? {r, 16'd0} : 32'h8000_0000, 1'b0, 1'b1)));
            end
            always @* begin
                y = 32'd0;
                if (v)
                    y = fp_add_out_f(fp_add_s3_f(fp_add_s2_f(st)));
            end
        end
    endgenerate
endmodule

`default_nettype wire
