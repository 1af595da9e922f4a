`default_nettype none
// dnpu_matrix_pe: one processing element of the matrix unit's output-stationary array.
// Each cycle with en: acc = fp32(a + fp32(x * w)), a = init on the first k of a tile (+0,
// or the FP32 accumulator an earlier instruction left, read with DAZ by the add) and acc
// otherwise (docs/NUMERICS.md section 11: the product is rounded before the add, one
// FP32 add per k in increasing k). On the tile's last k the new sum also goes to sh, the
// shadow register the unit drains from while the next tile accumulates.
//
// x and w are BF16; widening to FP32 is the bit pattern << 16 (exact). The product is
// fp_mul_f called here on the widened operands rather than a dnpu_fp32_mul instance:
// synthesis keeps the hierarchy, so only inside this module does Yosys see the operands'
// zero low halves (an 8x8-bit significand product: half the multiplier's LUTs and one
// DSP slice instead of two, per PE). The add is the shared dnpu_fp32_add. With en low
// the simulator skips an idle PE's arithmetic (rows beyond a partial group, stall cycles).

module dnpu_matrix_pe (
    input  wire        clk,
    input  wire        en,
    input  wire        first,      // the tile's k = 0: start from init
    input  wire [31:0] init,
    input  wire        last,       // the tile's k = K-1: copy the result to sh
    input  wire [15:0] x,
    input  wire [15:0] w,
    output reg  [31:0] sh
);
    // Not inlined into dnpu_matrix, so each PE's copy of the functions has a scope of its own.
    /* verilator no_inline_module */
`include "dnpu_fp_funcs.vh"
    reg  [31:0] acc;
    reg  [31:0] prod;
    wire [31:0] sum;

    always @* begin
        prod = 32'd0;
        if (en)
            prod = fp_mul_f({x, 16'd0}, {w, 16'd0}, 1'b0);
    end
    dnpu_fp32_add u_add (.clk(clk), .en(en), .a(first ? init : acc), .b(prod), .sub(1'b0), .bf16(1'b0), .y(sum));

    always @(posedge clk) begin
        if (en) begin
            acc <= sum;
            if (last)
                sh <= sum;
        end
    end
endmodule

`default_nettype wire
