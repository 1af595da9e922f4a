`default_nettype none
// dnpu_fp_tb_top: a test wrapper, not part of the NPU. LANES copies of every
// hw/rtl/fp unit (docs/NUMERICS.md sections 2-5) side by side on wide buses, so
// that one cocotb write/read applies LANES vectors to each unit
// (tests/rtl/test_fp.py). Lane l uses bits
// [32l +: 32] of a 32-bit bus, [16l +: 16] of bf16_y and bit l of a 1-bit bus.
//   add_y = a + b, sub_y = a - b; op_sub swaps the two (both adders see their
//           sub port toggle); mul_y = a * b; cmp_gt/cmp_eq = dnpu_fp_cmp(a, b)
//   add16_y, sub16_y, mul16_y: the same with bf16 = 1 (rounded once to BF16)
//   exp_y = EXP(x), bf16_y = bf16(x); the sequential units take x on their own
//   start: reci_* = 1/x (dnpu_fp32_reci), rsqrt_* = 1/sqrt(x) (dnpu_fp32_rsqrt).

module dnpu_fp_tb_top #(
    parameter integer LANES = 32
) (
    input  wire                clk,
    input  wire                rst_n,
    input  wire [32*LANES-1:0] a,
    input  wire [32*LANES-1:0] b,
    input  wire [LANES-1:0]    op_sub,
    input  wire [32*LANES-1:0] x,
    input  wire                reci_start,
    input  wire                rsqrt_start,
    output wire [32*LANES-1:0] add_y,
    output wire [32*LANES-1:0] sub_y,
    output wire [32*LANES-1:0] mul_y,
    output wire [32*LANES-1:0] add16_y,
    output wire [32*LANES-1:0] sub16_y,
    output wire [32*LANES-1:0] mul16_y,
    output wire [LANES-1:0]    cmp_gt,
    output wire [LANES-1:0]    cmp_eq,
    output wire [32*LANES-1:0] exp_y,
    output wire [16*LANES-1:0] bf16_y,
    output wire [LANES-1:0]    reci_busy,
    output wire [LANES-1:0]    reci_done,
    output wire [32*LANES-1:0] reci_y,
    output wire [LANES-1:0]    rsqrt_busy,
    output wire [LANES-1:0]    rsqrt_done,
    output wire [32*LANES-1:0] rsqrt_y
);
    genvar l;
    generate
        for (l = 0; l < LANES; l = l + 1) begin : g_lane
            wire [31:0] sum_y;
            wire [31:0] dif_y;
            wire [31:0] sum16_y;
            wire [31:0] dif16_y;
            dnpu_fp32_add u_add (.clk(clk), .en(1'b1),
                                 .a(a[32*l +: 32]), .b(b[32*l +: 32]), .sub(op_sub[l]),  .bf16(1'b0),
                                 .y(sum_y));
            dnpu_fp32_add u_sub (.clk(clk), .en(1'b1),
                                 .a(a[32*l +: 32]), .b(b[32*l +: 32]), .sub(~op_sub[l]), .bf16(1'b0),
                                 .y(dif_y));
            dnpu_fp32_add u_add16 (.clk(clk), .en(1'b1),
                                   .a(a[32*l +: 32]), .b(b[32*l +: 32]), .sub(op_sub[l]),  .bf16(1'b1),
                                   .y(sum16_y));
            dnpu_fp32_add u_sub16 (.clk(clk), .en(1'b1),
                                   .a(a[32*l +: 32]), .b(b[32*l +: 32]), .sub(~op_sub[l]), .bf16(1'b1),
                                   .y(dif16_y));
            assign add_y[32*l +: 32] = op_sub[l] ? dif_y : sum_y;
            assign sub_y[32*l +: 32] = op_sub[l] ? sum_y : dif_y;
            assign add16_y[32*l +: 32] = op_sub[l] ? dif16_y : sum16_y;
            assign sub16_y[32*l +: 32] = op_sub[l] ? sum16_y : dif16_y;

            dnpu_fp32_mul    u_mul (.clk(clk), .en(1'b1), .a(a[32*l +: 32]), .b(b[32*l +: 32]), .bf16(1'b0),
                                    .y(mul_y[32*l +: 32]));
            dnpu_fp32_mul    u_mul16 (.clk(clk), .en(1'b1), .a(a[32*l +: 32]), .b(b[32*l +: 32]), .bf16(1'b1),
                                      .y(mul16_y[32*l +: 32]));
            dnpu_fp_cmp      u_cmp (.a(a[32*l +: 32]), .b(b[32*l +: 32]), .gt(cmp_gt[l]), .eq(cmp_eq[l]));
            dnpu_fp_exp      u_exp (.clk(clk), .en(1'b1), .x(x[32*l +: 32]), .y(exp_y[32*l +: 32]));
            dnpu_f32_to_bf16 u_n16 (.a(x[32*l +: 32]), .y16(bf16_y[16*l +: 16]));
            dnpu_fp32_reci   u_rcp (.clk(clk), .rst_n(rst_n), .start(reci_start), .x(x[32*l +: 32]),
                                    .busy(reci_busy[l]), .done(reci_done[l]), .y(reci_y[32*l +: 32]));
            dnpu_fp32_rsqrt  u_rsq (.clk(clk), .rst_n(rst_n), .start(rsqrt_start), .x(x[32*l +: 32]),
                                    .busy(rsqrt_busy[l]), .done(rsqrt_done[l]), .y(rsqrt_y[32*l +: 32]));
        end
    endgenerate
endmodule

`default_nettype wire
