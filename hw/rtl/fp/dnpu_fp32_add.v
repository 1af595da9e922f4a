`default_nettype none
// dnpu_fp32_add: y = fp32(a + b), or fp32(a - b) when sub is 1; with bf16 = 1 the sum
// is rounded once to BF16 (y[31:16], y[15:0] = 0). The logic and why it is exact:
// fp_add_f and its steps in hw/rtl/common/dnpu_fp_funcs.vh (docs/NUMERICS.md section 2).
// With STAGES = 1, en works as in dnpu_fp32_mul.
//
// STAGES = 1: combinational, y = 0 while en is 0; clk is unused.
// STAGES = S, 2 <= S <= 4 (FP_ADD_STEPS): y is the result for the inputs and en of
// S - 1 rising edges earlier, 0 where that en was 0; a new operation may enter every
// cycle. No reset: y is defined from the (S - 1)th edge on. The four steps
// (fp_add_s0_f .. s3: compare and swap, align and add, normalize, round) get their
// registers as CUTS says.
// The maximum is also host/dnpu/spec/numerics.py FP_MAX_STAGES; tests/rtl/test_fp_pipe.py
// checks that the two agree.
/* verilator tracing_off */
module dnpu_fp32_add #(
    parameter integer STAGES = 1
) (
    input  wire        clk,
    input  wire        en,
    input  wire [31:0] a,
    input  wire [31:0] b,
    input  wire        sub,
    input  wire        bf16,
    output reg  [31:0] y
);
    // Not inlined: a parent that includes the functions too (dnpu_vec_lanes) would then
    // hold two copies of every function in one scope (Verilator's VARHIDDEN).
    /* verilator no_inline_module */
`include "dnpu_fp_funcs.vh"
    localparam integer N = `FP_ADD_STEPS;
    localparam integer W = `FP_ADD_ST_W;
    // bit k: a register after step k (S = 2: after step 1; S = 3: steps 1, 2; S = 4: steps 0, 1, 2)
    localparam [31:0] CUTS = STAGES == 2 ? 32'b010 : STAGES == 3 ? 32'b110 : 32'b111;

    generate
        if (STAGES < 1 || STAGES > N) begin : g_bad
            // elaboration stops here in every tool, and the missing module's name says why
            dnpu_fp32_add_STAGES_must_be_1_to_4 u_bad ();
        end else if (STAGES == 1) begin : g_comb
            wire unused_clk = clk;
            always @* begin
                y = 32'd0;
                if (en)
                    y = fp_add_f(a, b, sub, bf16);
            end
        end else begin : g_pipe
            // Segment j computes steps LO .. HI-1 of the operation in its input state; the
            // registered segments compute only under their valid bit (Verilator then skips
            // an idle stage's arithmetic, as with en at STAGES = 1).
            wire [STAGES*W-1:0] st;      // segment j's input state at [j*W +: W]
            wire [STAGES-1:0]   v;       // and whether it holds an operation
            assign st[0 +: W] = fp_add_in_f(a, b, sub, bf16);
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
                            r <= fp_add_steps_f(LO, HI, st[j*W +: W]);
                    end
                    assign st[(j+1)*W +: W] = r;
                    assign v[j+1]           = rv;
                end else begin : g_out
                    always @* begin
                        y = 32'd0;
                        if (v[j])
                            y = fp_add_out_f(fp_add_steps_f(LO, HI, st[j*W +: W]));
                    end
                end
            end
        end
    endgenerate
endmodule

`default_nettype wire
