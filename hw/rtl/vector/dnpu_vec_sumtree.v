`default_nettype none
// dnpu_vec_sumtree: the pairwise FP32 sum of N lanes in the order
// docs/NUMERICS.md fixes for V_RED_SUM and H_SAMPLE_FUSED (section 6): lanes
// (0,1), (2,3), ... then pairs of pairs, every add rounded by the rule.
// Combinational, log2(N) adders deep. A recursive module: two half trees and
// one adder, so the pairing is the definition and needs no index arithmetic.

module dnpu_vec_sumtree #(
    parameter integer N = 16            // a power of two, >= 1
) (
    input  wire [32*N-1:0] x,           // lane i at bits 32i
    output wire [31:0]     y
);
    generate
        if (N == 1) begin : g_leaf
            assign y = x;
        end else begin : g_node
            wire [31:0] lo, hi;
            dnpu_vec_sumtree #(.N(N / 2)) u_lo (.x(x[32*(N/2)-1:0]), .y(lo));
            dnpu_vec_sumtree #(.N(N / 2)) u_hi (.x(x[32*N-1:32*(N/2)]), .y(hi));
            dnpu_fp32_add u_add (.a(lo), .b(hi), .sub(1'b0), .bf16(1'b0), .y(y));
        end
    endgenerate
endmodule

`default_nettype wire
