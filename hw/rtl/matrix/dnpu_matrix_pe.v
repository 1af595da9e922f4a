`default_nettype none
// dnpu_matrix_pe: one processing element of the matrix unit's output-stationary array.
// Each step (en) is a multiply-add acc = fp32(a + fp32(x * w)), a = init on the first k of a
// tile (+0, or the FP32 accumulator an earlier instruction left, read with DAZ by the add)
// and acc otherwise (docs/NUMERICS.md section 11: the product is rounded before the add, one
// FP32 add per k in increasing k). On the tile's last k the new sum also goes to sh, the
// shadow register the unit drains from while the next tile accumulates.
//
// Three stages (PE_STAGES in the unit): the step's operands are registered (A), the product
// is registered (B), the add writes acc (and sh) at the end of the third cycle. Only the add
// and acc form a loop; the weight select before A and the multiply before B are off it, so
// the clock is bounded by one FP32 add. acc and sh change two cycles after the step that
// produced them. clr drops the operations in the two stages (flush, reset).
//
// x and w are BF16; widening to FP32 is the bit pattern << 16 (exact). The product is
// fp_mul_f called here on the widened operands rather than a dnpu_fp32_mul instance:
// synthesis keeps the hierarchy, so only inside this module does Yosys see the operands'
// zero low halves (an 8x8-bit significand product: half the multiplier's LUTs and one
// DSP slice instead of two, per PE). The add is the shared dnpu_fp32_add. While a stage
// holds no operation the simulator skips its arithmetic (rows beyond a partial group,
// stall cycles).

module dnpu_matrix_pe (
    input  wire        clk,
    input  wire        clr,        // synchronous: the stages hold no operation after the edge
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
    reg         va, fa, la, vb, fb, lb;
    reg  [15:0] xa, wa;
    reg  [31:0] ia, ib, pb;
    reg  [31:0] acc;
    reg  [31:0] prod;
    wire [31:0] sum;

    always @(posedge clk) begin
        va <= en & ~clr;
        vb <= va & ~clr;
        if (en) begin
            fa <= first;
            la <= last;
            xa <= x;
            wa <= w;
            ia <= init;
        end
        if (va) begin
            fb <= fa;
            lb <= la;
            ib <= ia;
            pb <= prod;
        end
    end

    always @* begin
        prod = 32'd0;
        if (va)
            prod = fp_mul_f({xa, 16'd0}, {wa, 16'd0}, 1'b0);
    end

    dnpu_fp32_add u_add (.clk(clk), .en(vb), .a(fb ? ib : acc), .b(pb), .sub(1'b0), .bf16(1'b0), .y(sum));

    always @(posedge clk) begin
        if (vb) begin
            acc <= sum;
            if (lb)
                sh <= sum;
        end
    end
endmodule

`default_nettype wire
