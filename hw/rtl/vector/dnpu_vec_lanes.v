`default_nettype none
// dnpu_vec_lanes: G of the vector unit's arithmetic lanes, and the pairwise sum of their
// G S2 outputs. dnpu_vec instantiates GROUPS = min(LANES, 8) of these, G = LANES/GROUPS
// each, lanes [gG, (g+1)G) in group g, and adds the group sums in a pairwise tree: since
// G is a power of two, that is NUMERICS section 6's pairwise sum of all LANES lanes.
//
// Why groups: Yosys maps each distinct module once, and ABC did not map the vector unit
// with all its lanes inline in 45 minutes; Verilator generates code per instance, and
// one instance per lane made asic-2048's 2048-lane model 185 MB of C++. Eight groups keep
// both small: at pynq-z2's 8 lanes a group is one lane.
//
// Inside a group the hw/rtl/common/dnpu_fp_funcs.vh functions are called under their
// enables (Verilator skips the arithmetic of idle lanes; synthesis builds one adder,
// multiplier and EXP unit per lane plus G - 1 tree adders). Outputs are 0 when disabled.
//   add: V_ADD/SUB_VV/VF (a - or + b, b = row b or f[s], BF16 result) or, with fuse,
//        S1 of the fused path (FP32 l - m')
//   mul: V_MUL_VV/VF (BF16 result);  exp: V_EXP_V of a, or with fuse S2's EXP(d)
//   sum: the pairwise FP32 sum of e (S3)

module dnpu_vec_lanes #(
    parameter integer G = 1
) (
    input  wire          add_en,
    input  wire          mul_en,
    input  wire          exp_en,
    input  wire          sum_en,
    input  wire          fuse,        // the fused pipeline (else the elementwise engine)
    input  wire          vv,          // second operand from row b (else f[s])
    input  wire          sub,         // V_SUB_*
    input  wire [G*16-1:0] a16,       // this group's part of the chunk of row a (BF16)
    input  wire [G*16-1:0] b16,       // ... of row b
    input  wire [31:0]   s,           // f[s]
    input  wire [31:0]   m,           // fused S1: m' of stage B's row
    input  wire [G*32-1:0] d,         // fused S2: S1's d per lane
    input  wire [G*32-1:0] e,         // S3: S2's e per lane
    output reg  [G*32-1:0] add_y,
    output reg  [G*32-1:0] mul_y,
    output reg  [G*32-1:0] exp_y,
    output reg  [31:0]   sum_y
);
`include "dnpu_fp_funcs.vh"

    // The pairwise FP32 sum of the G lanes: (0,1), (2,3), ... then pairs of pairs. In
    // place: pair i of a level lands in slot i, which no later pair of that level reads.
    function [31:0] lane_sum_f;
        input [G*32-1:0] ls_v;
        reg   [G*32-1:0] ls_w;
        integer ls_l, ls_i;
        begin
            ls_w = ls_v;
            for (ls_l = 1; ls_l < G; ls_l = ls_l * 2)
                for (ls_i = 0; ls_i < G / 2; ls_i = ls_i + 1)
                    if (ls_i < G / (2 * ls_l))
                        ls_w[32*ls_i +: 32] = fp_add_f(ls_w[64*ls_i +: 32], ls_w[64*ls_i+32 +: 32],
                                                       1'b0, 1'b0);
            lane_sum_f = ls_w[31:0];
        end
    endfunction

    // zero through a parameter: {G*32{1'b0}} passes Verilator's replication limit at 2048 lanes
    localparam [G*32-1:0] ZERO = 0;
    reg [31:0] xa, xb;
    integer l;
    always @* begin
        add_y = ZERO;
        mul_y = ZERO;
        exp_y = ZERO;
        sum_y = 32'd0;
        xa    = 32'd0;
        xb    = 32'd0;
        if (add_en | mul_en | exp_en)         // an idle group skips the lane loop
            for (l = 0; l < G; l = l + 1) begin
                xa = {a16[16*l +: 16], 16'd0};
                xb = vv ? {b16[16*l +: 16], 16'd0} : s;
                if (add_en)
                    add_y[32*l +: 32] = fp_add_f(xa, fuse ? m : xb, sub | fuse, ~fuse);
                if (mul_en)
                    mul_y[32*l +: 32] = fp_mul_f(xa, xb, 1'b1);
                if (exp_en)
                    exp_y[32*l +: 32] = fp_exp_f(fuse ? d[32*l +: 32] : xa);
            end
        if (sum_en)
            sum_y = lane_sum_f(e);
    end
endmodule

`default_nettype wire
