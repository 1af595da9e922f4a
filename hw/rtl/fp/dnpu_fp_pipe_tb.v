`default_nettype none
// dnpu_fp_pipe_tb: a test wrapper, not part of the NPU: the pipelined FP units.
//   UNIT = 0 (tests/rtl/test_fp_pipe.py): every STAGES from 2 to each unit's maximum side
//     by side on the same inputs, y[32k +: 32] from
//       k = 0 .. A-2:            dnpu_fp32_add, STAGES = k + 2 (a, b, sub, bf16)
//       k = A-1 .. A+M-3:        dnpu_fp32_mul, STAGES = k - A + 3 (a, b, bf16)
//       k = A+M-2 .. A+M+E-4:    dnpu_fp_exp, STAGES = k - A - M + 4 (x)
//     with A, M, E the maxima (FP_ADD_STEPS, FP_MUL_STEPS, FP_EXP_STEPS).
//   UNIT = 1, 2, 3 (the synthesis check): dnpu_fp32_add, dnpu_fp32_mul or dnpu_fp_exp at
//     STAGES with its inputs and its output registered, so that every path of the unit
//     runs from a register to a register; y[31:0] is the output register.

module dnpu_fp_pipe_tb #(
    parameter integer UNIT   = 0,
    parameter integer STAGES = 2
) (
    input  wire                 clk,
    input  wire                 en,
    input  wire [31:0]          a,
    input  wire [31:0]          b,
    input  wire                 sub,
    input  wire                 bf16,
    input  wire [31:0]          x,
    output wire [32*NOUT-1:0]   y
);
`include "dnpu_fp_funcs.vh"
    localparam integer A = `FP_ADD_STEPS;
    localparam integer M = `FP_MUL_STEPS;
    localparam integer E = `FP_EXP_STEPS;
    localparam integer NOUT = A + M + E - 3;

    genvar k;
    generate
        if (UNIT == 0) begin : g_all
            wire unused = &{1'b0, STAGES[0]};
            for (k = 0; k < A - 1; k = k + 1) begin : g_add
                dnpu_fp32_add #(.STAGES(k + 2)) u (.clk(clk), .en(en), .a(a), .b(b), .sub(sub), .bf16(bf16),
                                                   .y(y[32*k +: 32]));
            end
            for (k = 0; k < M - 1; k = k + 1) begin : g_mul
                dnpu_fp32_mul #(.STAGES(k + 2)) u (.clk(clk), .en(en), .a(a), .b(b), .bf16(bf16),
                                                   .y(y[32*(A-1+k) +: 32]));
            end
            for (k = 0; k < E - 1; k = k + 1) begin : g_exp
                dnpu_fp_exp #(.STAGES(k + 2)) u (.clk(clk), .en(en), .x(x), .y(y[32*(A+M-2+k) +: 32]));
            end
        end else begin : g_one
            reg        en_q, sub_q, bf16_q;
            reg [31:0] a_q, b_q, x_q, y_q;
            wire [31:0] u_y;
            always @(posedge clk) begin
                en_q   <= en;
                a_q    <= a;
                b_q    <= b;
                sub_q  <= sub;
                bf16_q <= bf16;
                x_q    <= x;
                y_q    <= u_y;
            end
            if (UNIT == 1) begin : g_add
                wire unused = &{1'b0, x_q};
                dnpu_fp32_add #(.STAGES(STAGES)) u (.clk(clk), .en(en_q), .a(a_q), .b(b_q), .sub(sub_q),
                                                    .bf16(bf16_q), .y(u_y));
            end else if (UNIT == 2) begin : g_mul
                wire unused = &{1'b0, x_q, sub_q};
                dnpu_fp32_mul #(.STAGES(STAGES)) u (.clk(clk), .en(en_q), .a(a_q), .b(b_q), .bf16(bf16_q),
                                                    .y(u_y));
            end else begin : g_exp
                wire unused = &{1'b0, a_q, b_q, sub_q, bf16_q};
                dnpu_fp_exp #(.STAGES(STAGES)) u (.clk(clk), .en(en_q), .x(x_q), .y(u_y));
            end
            assign y = {{(32*NOUT-32){1'b0}}, y_q};
        end
    endgenerate
endmodule

`default_nettype wire
