`default_nettype none
// dnpu_fp32_mul: y = fp32(a * b); with bf16 = 1 rounded once to BF16 (y[15:0] = 0).
// The logic: fp_mul_f and its steps in hw/rtl/common/dnpu_fp_funcs.vh (NUMERICS
// section 2; the NUMERICS example 2^-63(1-2^-24) x 2^-63 -> +0 is its FTZ edge).
//
// en (STAGES = 1): y = 0 while en is 0. The function is called inside `if (en)`, so the
// simulator (Verilator evaluates every module's combinational logic on every clock
// edge) skips the arithmetic of an idle unit (the vector unit has many; see
// hw/rtl/vector/dnpu_vec.v). For synthesis it is an AND gate on the output. These FP
// units stay modules, not inlined functions, because Yosys maps each module once: the
// vector unit with its lanes' arithmetic inlined was one netlist that ABC did not map in
// 45 minutes.
//
// STAGES = 1: combinational, y = 0 while en is 0; clk is unused.
// STAGES = S, 2 <= S <= 2 (FP_MUL_STEPS): y is the result for the inputs and en of
// S - 1 rising edges earlier, 0 where that en was 0; a new operation may enter every
// cycle. No reset: y is defined from the (S - 1)th edge on. The register of
// S = 2 holds the significand product, so that Yosys puts it into the DSP slices.
// The maximum is also host/dnpu/spec/numerics.py FP_MAX_STAGES; tests/rtl/test_fp_pipe.py
// checks that the two agree.
/* verilator tracing_off */
module dnpu_fp32_mul #(
    parameter integer STAGES = 1
) (
    input  wire        clk,
    input  wire        en,
    input  wire [31:0] a,
    input  wire [31:0] b,
    input  wire        bf16,
    output reg  [31:0] y
);
    // Not inlined: a parent that includes the functions too (dnpu_vec_lanes) would then
    // hold two copies of every function in one scope (Verilator's VARHIDDEN).
    /* verilator no_inline_module */
`include "dnpu_fp_funcs.vh"
    localparam integer N = `FP_MUL_STEPS;
    localparam integer W = `FP_MUL_ST_W;
    // bit k: a register after step k (S = 2: after step 0, the product)
    localparam [31:0] CUTS = 32'b1;

    generate
        if (STAGES < 1 || STAGES > N) begin : g_bad
            // elaboration stops here in every tool, and the missing module's name says why
            dnpu_fp32_mul_STAGES_must_be_1_to_2 u_bad ();
        end else if (STAGES == 1) begin : g_comb
            wire unused_clk = clk;
            always @* begin
                y = 32'd0;
                if (en)
                    y = fp_mul_f(a, b, bf16);
            end
        end else begin : g_pipe
            // Segment j computes steps LO .. HI-1 of the operation in its input state; the
            // registered segments compute only under their valid bit (Verilator then skips
            // an idle stage's arithmetic, as with en at STAGES = 1).
            wire [STAGES*W-1:0] st;      // segment j's input state at [j*W +: W]
            wire [STAGES-1:0]   v;       // and whether it holds an operation
            assign st[0 +: W] = fp_mul_in_f(a, b, bf16);
            assign v[0]       = en;
            genvar j;
            for (j = 0; j < STAGES; j = j + 1) begin : g_seg
                localparam integer LO = fp_seg_lo_f(CUTS, N, j);
                localparam integer HI = fp_seg_lo_f(CUTS, N, j + 1);
                if (j < STAGES - 1) begin : g_reg
                    reg [W-1:0] r;
                    reg         rv;
                    always @(posedge clk) begin
                        rv <= v[j];
                        if (v[j])
                            r <= fp_mul_steps_f(LO, HI, st[j*W +: W]);
                    end
                    assign st[(j+1)*W +: W] = r;
                    assign v[j+1]           = rv;
                end else begin : g_out
                    always @* begin
                        y = 32'd0;
                        if (v[j])
                            y = fp_mul_out_f(fp_mul_steps_f(LO, HI, st[j*W +: W]));
                    end
                end
            end
        end
    endgenerate
endmodule

`default_nettype wire
