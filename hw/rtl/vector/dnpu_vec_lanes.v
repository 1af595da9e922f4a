`default_nettype none
// dnpu_vec_lanes: G of the vector unit's arithmetic lanes, and the pairwise sum of their
// G S2 outputs. dnpu_vec instantiates GROUPS = min(LANES, 8) of these (LANES with
// pipelined adders: the group sum is combinational, the heap registered), G = LANES/GROUPS
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
// With more than one stage the add, mul and exp results come STAGES - 1 cycles after their
// operands and enable (dnpu_vec keeps its control in step); rc, bit and sum stay single-cycle.
//   add: V_ADD/SUB_VV/VF (a - or + b, b = row b or f[s], BF16 result) or, with fuse,
//        S1 of the fused path (FP32 l - m')
//   mul: V_MUL_VV/VF (BF16 result);  exp: V_EXP_V of a, or with fuse S2's EXP(d)
//   sum: the pairwise FP32 sum of e (S3)
//   bit: V_AMAX_VV (amax) or V_INVPOW2_V, numerics.amax_bits / invpow2_bits: integer
//        operations on the BF16 bits, a comparator or an 8-bit subtract per lane, kept
//        apart from the FP units so that they cost no FP logic
//   rc:  V_RECI_V, bf16(RECI(widen(a))) per lane, by the restoring division of
//        hw/rtl/fp/dnpu_fp32_reci.v (same bits), one quotient bit per rc_step cycle: the
//        remainder and quotient are this group's only registers. dnpu_vec holds a16 (the
//        chunk) steady for the 24 steps (rc_first on the first) and reads rc_y after them.
//        A widened BF16 divisor has 16 zero low bits, and so does every remainder of its
//        division, so the remainder is kept without them: 10 bits instead of 26.

module dnpu_vec_lanes #(
    parameter integer G          = 1,
    parameter integer ADD_STAGES = 1,     // the add, mul and exp units' pipeline stages:
    parameter integer MUL_STAGES = 1,     // each result appears STAGES - 1 cycles after
    parameter integer EXP_STAGES = 1      // its operands and enable
) (
    input  wire          clk,
    input  wire          add_en,
    input  wire          mul_en,
    input  wire          exp_en,
    input  wire          sum_en,
    input  wire          bit_en,
    input  wire          amax,        // bit: V_AMAX_VV (else V_INVPOW2_V)
    input  wire          rc_step,     // V_RECI_V: a quotient bit of every lane this cycle
    input  wire          rc_first,    // ... the first of a chunk (remainder from a16)
    input  wire          rc_out,      // ... rc_y is read this cycle
    input  wire          fuse,        // the fused pipeline (else the elementwise engine)
    input  wire          vv,          // second operand from row b (else f[s])
    input  wire          sub,         // V_SUB_*
    input  wire [G*16-1:0] a16,       // this group's part of the chunk of row a (BF16)
    input  wire [G*16-1:0] b16,       // ... of row b
    input  wire [31:0]   s,           // f[s]
    input  wire [31:0]   m,           // fused S1: m' of stage B's row
    input  wire [G*32-1:0] d,         // fused S2: S1's d per lane
    input  wire [G*32-1:0] e,         // S3: S2's e per lane
    output wire [G*32-1:0] add_y,
    output wire [G*32-1:0] mul_y,
    output wire [G*32-1:0] exp_y,
    output reg  [31:0]   sum_y,
    output reg  [G*16-1:0] rc_y,
    output reg  [G*16-1:0] bit_y
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

    // One restoring-division step for an element with fraction f: {quotient bit, next
    // remainder} from the remainder cur (both scaled by 2^-16); the divisor is 1.f.
    function [10:0] rc_step_f;
        input [6:0] rs_f;
        input [9:0] rs_cur;
        reg   [9:0] rs_diff;
        begin
            rs_diff   = rs_cur - {3'b001, rs_f};
            rc_step_f = rs_diff[9] ? {1'b0, rs_cur[8:0], 1'b0} : {1'b1, rs_diff[8:0], 1'b0};
        end
    endfunction

    // The FP32 reciprocal from the 24 quotient bits and the last remainder, exactly as
    // dnpu_fp32_reci rounds it, then narrowed to BF16 as V_EXP_V narrows EXP.
    function [15:0] rc_out_f;
        input [15:0] ro_x;
        input [9:0]  ro_rem;
        input [23:0] ro_q;
        reg          ro_up;
        reg   [24:0] ro_manr;
        reg   [9:0]  ro_em1;
        reg   [30:0] ro_mag;
        reg   [31:0] ro_y;
        begin
            ro_up   = ro_q[0] & ((|ro_rem) | ro_q[1]);
            ro_manr = ~(|ro_x[6:0]) ? 25'h100_0000 : ({2'b01, ro_q[23:1]} + {24'd0, ro_up});
            ro_em1  = 10'd252 - {2'b00, ro_x[14:7]};
            ro_mag  = {ro_em1[7:0], 23'd0} + {6'd0, ro_manr};
            if ((&ro_x[14:7]) & (|ro_x[6:0]))
                ro_y = 32'h7FC0_0000;
            else if (~(|ro_x[14:7]))
                ro_y = {ro_x[15], 31'h7F80_0000};
            else if ((&ro_x[14:7]) | ((ro_em1 + {9'd0, ro_manr[24]}) >= 10'h200))
                ro_y = {ro_x[15], 31'd0};
            else
                ro_y = {ro_x[15], ro_mag};
            rc_out_f = fp_narrow_f(ro_y);
        end
    endfunction

    // Datapath registers without reset: every chunk starts with rc_first and shifts all
    // 24 quotient bits in before rc_out.
    reg [G*10-1:0] rc_rem;
    reg [G*24-1:0] rc_q;
    integer r;
    always @(posedge clk)
        if (rc_step)
            for (r = 0; r < G; r = r + 1)
                {rc_q[24*r +: 24], rc_rem[10*r +: 10]} <= {rc_q[24*r +: 23], rc_step_f(a16[16*r +: 7],
                    rc_first ? 10'd256 - {2'b00, a16[16*r +: 7], 1'b0} : rc_rem[10*r +: 10])};

    localparam [G*16-1:0] ZERO16 = 0;
    integer o;
    always @* begin
        rc_y = ZERO16;
        if (rc_out)
            for (o = 0; o < G; o = o + 1)
                rc_y[16*o +: 16] = rc_out_f(a16[16*o +: 16], rc_rem[10*o +: 10], rc_q[24*o +: 24]);
    end

    // amax: the larger magnitude, its bits (sign cleared). invpow2: 2^-(min(f, 253) - 127)
    // has exponent field 254 - min(f, 253), which is 1 at f = 254; 1.0 at f = 0 or 255.
    reg [14:0] bt_ma, bt_mb;
    reg [7:0]  bt_f;
    integer t;
    always @* begin
        bit_y = ZERO16;
        bt_ma = 15'd0;
        bt_mb = 15'd0;
        bt_f  = 8'd0;
        if (bit_en)
            for (t = 0; t < G; t = t + 1) begin
                bt_ma = a16[16*t +: 15];
                bt_mb = b16[16*t +: 15];
                bt_f  = a16[16*t+7 +: 8];
                if (amax)
                    bit_y[16*t +: 16] = {1'b0, (bt_mb > bt_ma) ? bt_mb : bt_ma};
                else if ((bt_f == 8'd0) | (&bt_f))
                    bit_y[16*t +: 16] = 16'h3F80;
                else
                    bit_y[16*t +: 16] = {1'b0, (bt_f == 8'd254) ? 8'd1 : 8'd254 - bt_f, 7'd0};
            end
    end

    always @* begin
        sum_y = 32'd0;
        if (sum_en)
            sum_y = lane_sum_f(e);
    end

    // The operands of lane l: xa from row a, xb from row b or f[s]; the adder subtracts m'
    // (fused S1, FP32 result) or adds / subtracts xb (BF16 result).
    generate
        if (ADD_STAGES == 1 && MUL_STAGES == 1 && EXP_STAGES == 1) begin : g_comb
            // One always block for all G lanes: Verilator emits one loop instead of G
            // instances (asic-2048 has 256 lanes a group). Zero through a parameter: {G*32{1'b0}}
            // passes Verilator's replication limit at 2048 lanes.
            localparam [G*32-1:0] ZERO = 0;
            reg [G*32-1:0] add_c, mul_c, exp_c;
            reg [31:0] xa, xb;
            integer l;
            always @* begin
                add_c = ZERO;
                mul_c = ZERO;
                exp_c = ZERO;
                xa    = 32'd0;
                xb    = 32'd0;
                if (add_en | mul_en | exp_en)         // an idle group skips the lane loop
                    for (l = 0; l < G; l = l + 1) begin
                        xa = {a16[16*l +: 16], 16'd0};
                        xb = vv ? {b16[16*l +: 16], 16'd0} : s;
                        if (add_en)
                            add_c[32*l +: 32] = fp_add_f(xa, fuse ? m : xb, sub | fuse, ~fuse);
                        if (mul_en)
                            mul_c[32*l +: 32] = fp_mul_f(xa, xb, 1'b1);
                        if (exp_en)
                            exp_c[32*l +: 32] = fp_exp_f(fuse ? d[32*l +: 32] : xa);
                    end
            end
            assign add_y = add_c;
            assign mul_y = mul_c;
            assign exp_y = exp_c;
        end else begin : g_pipe
            // Pipelined units, one instance each per lane: the registers are inside them.
            genvar l;
            for (l = 0; l < G; l = l + 1) begin : g_lane
                wire [31:0] xa = {a16[16*l +: 16], 16'd0};
                wire [31:0] xb = vv ? {b16[16*l +: 16], 16'd0} : s;
                dnpu_fp32_add #(.STAGES(ADD_STAGES)) u_add (
                    .clk(clk), .en(add_en), .a(xa), .b(fuse ? m : xb), .sub(sub | fuse), .bf16(~fuse),
                    .y(add_y[32*l +: 32]));
                dnpu_fp32_mul #(.STAGES(MUL_STAGES)) u_mul (
                    .clk(clk), .en(mul_en), .a(xa), .b(xb), .bf16(1'b1), .y(mul_y[32*l +: 32]));
                dnpu_fp_exp #(.STAGES(EXP_STAGES)) u_exp (
                    .clk(clk), .en(exp_en), .x(fuse ? d[32*l +: 32] : xa), .y(exp_y[32*l +: 32]));
            end
        end
    endgenerate
endmodule

`default_nettype wire
