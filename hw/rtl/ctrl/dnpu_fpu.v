`default_nettype none
// dnpu_fpu: the scalar FP unit: S_ADD_FP, S_SUB_FP, S_MUL_FP, S_MAX_FP, S_EXP_FP,
// S_RECI_FP, S_RSQRT_FP and S_LT_FP, with one adder, multiplier, EXP, comparator,
// reciprocal and reciprocal square root.
//
// load (the core's EXEC) registers the operands a = f[rs1], b = f[rs2] when op is one of
// these; in the core's FPU state (en) the result is a function of those registers alone
// (op comes from the core's instruction register, which holds too). So every path through
// the combinational arithmetic starts at a flop and ends at the core's register file: one
// whole unit per cycle, no register read or decode in front of it. The result is 0 outside
// en, which in Verilator also skips the arithmetic (dnpu_fp_funcs.vh).
//
// The adder, multiplier and EXP unit have ADD_STAGES, MUL_STAGES and EXP_STAGES pipeline
// stages (the profile's [pipeline] section): their result, and done, come that many
// FPU cycles minus one after the first (a counter, k, since load). S_RECI_FP and
// S_RSQRT_FP are iterative: start (in EXEC) hands a to the unit, which samples it, and
// done comes 25 edges later; S_MAX_FP and S_LT_FP are done in their first FPU cycle.
// RESULT_REGS = 1 ([pipeline] result_regs) registers the adder's, multiplier's and EXP's
// result before the register file: those take one FPU cycle more. rst_n also comes with
// SOFT_RESET (synchronous), so a new program never finds either busy.

`include "dnpu_isa.vh"

module dnpu_fpu #(
    parameter integer ADD_STAGES = 1,
    parameter integer MUL_STAGES = 1,
    parameter integer EXP_STAGES = 1,
    parameter integer RESULT_REGS = 0      // 1: the pipelined units' result registered
) (
    input  wire        clk,
    input  wire        rst_n,

    input  wire [6:0]  op,
    input  wire        load,
    input  wire        start,        // EXEC of an FPU op that executes (the iterative ones use it)
    input  wire [31:0] a,
    input  wire [31:0] b,

    input  wire        en,
    output wire        done,
    output reg  [31:0] res_f,        // f[rd]: every op but S_LT_FP
    output wire        res_x         // x[rd] of S_LT_FP: a < b
);
    wire op_lt   = (op == `DNPU_OP_S_LT_FP);
    wire op_reci = (op == `DNPU_OP_S_RECI_FP);
    wire op_rsq  = (op == `DNPU_OP_S_RSQRT_FP);
    wire op_add  = (op == `DNPU_OP_S_ADD_FP) | (op == `DNPU_OP_S_SUB_FP);
    wire op_mul  = (op == `DNPU_OP_S_MUL_FP);
    wire op_exp  = (op == `DNPU_OP_S_EXP_FP);
    wire is_fpu  = (op == `DNPU_OP_S_ADD_FP) | (op == `DNPU_OP_S_SUB_FP) | (op == `DNPU_OP_S_MUL_FP) |
                   (op == `DNPU_OP_S_MAX_FP) | (op == `DNPU_OP_S_EXP_FP) | op_reci | op_rsq | op_lt;

    reg  [31:0] a_q, b_q;
    reg  [3:0]  k;                       // FPU cycles since load
    always @(posedge clk) begin
        if (load & is_fpu) begin
            a_q <= a;
            b_q <= b;
        end
        if (load)
            k <= 4'd0;
        else if (en & (k != 4'hF))
            k <= k + 4'd1;
    end
    localparam [31:0] LA32 = ADD_STAGES - 1 + RESULT_REGS, LM32 = MUL_STAGES - 1 + RESULT_REGS,
                      LE32 = EXP_STAGES - 1 + RESULT_REGS;
    localparam [3:0]  LA = LA32[3:0], LM = LM32[3:0], LE = LE32[3:0];

    // The result's source, its latency and S_MAX_FP's result are settled at load (EXEC), so
    // that in FPU a unit's last stage meets only a select on its way to the register file.
    reg         s_mul, s_exp, s_reci, s_rsq, s_max, s_lt;
    reg  [3:0]  lat;
    reg  [31:0] max_q;
    always @(posedge clk)
        if (load) begin
            s_mul  <= op_mul;
            s_exp  <= op_exp;
            s_reci <= op_reci;
            s_rsq  <= op_rsq;
            s_max  <= (op == `DNPU_OP_S_MAX_FP);
            s_lt   <= op_lt;
            lat    <= op_add ? LA : op_mul ? LM : op_exp ? LE : 4'd0;
            if (op == `DNPU_OP_S_MAX_FP)
                max_q <= max_f(a, b);
        end

    // The units compute under en from the held operands; each result is final lat cycles on.
    wire [31:0] add_y, mul_y, exp_y;
    dnpu_fp32_add #(.STAGES(ADD_STAGES)) u_add (.clk(clk), .en(en & op_add), .a(a_q), .b(b_q),
                                               .sub(op == `DNPU_OP_S_SUB_FP), .bf16(1'b0), .y(add_y));
    dnpu_fp32_mul #(.STAGES(MUL_STAGES)) u_mul (.clk(clk), .en(en & op_mul), .a(a_q), .b(b_q), .bf16(1'b0),
                                               .y(mul_y));
    dnpu_fp_exp   #(.STAGES(EXP_STAGES)) u_exp (.clk(clk), .en(en & op_exp), .x(a_q), .y(exp_y));

    wire [31:0] reci_y, rsq_y;
    wire        b_gt_a, cmp_eq, reci_busy, reci_done, rsq_busy, rsq_done;

    // gt(b, a): S_LT_FP is a < b = gt(b, a).
    dnpu_fp_cmp    u_fp_cmp  (.a(b_q), .b(a_q), .gt(b_gt_a), .eq(cmp_eq));
    dnpu_fp32_reci u_fp_reci (.clk(clk), .rst_n(rst_n), .start(start & op_reci),
                              .x(a), .busy(reci_busy), .done(reci_done), .y(reci_y));
    dnpu_fp32_rsqrt u_fp_rsq (.clk(clk), .rst_n(rst_n), .start(start & op_rsq),
                              .x(a), .busy(rsq_busy), .done(rsq_done), .y(rsq_y));

    assign done  = s_reci ? reci_done : s_rsq ? rsq_done : (k == lat);
    assign res_x = b_gt_a;

`include "dnpu_fp_funcs.vh"

    // S_MAX_FP: b if b > a (ties: -0 vs +0, equal values, two NaNs keep rs1), as the
    // chosen operand's DAZ-read value (NUMERICS section 5: a subnormal is a zero of its
    // sign, a NaN the canonical NaN).
    /* verilator lint_off UNUSEDSIGNAL */        // fp_cmp_f's eq
    function [31:0] max_f;
        input [31:0] ma, mb;
        reg   [1:0]  c;
        reg   [31:0] m;
        begin
            c = fp_cmp_f(mb, ma);
            m = c[1] ? mb : ma;
            max_f = fp_canon_f(m);
        end
    endfunction
    /* verilator lint_on UNUSEDSIGNAL */

    wire [31:0] unit_y = s_mul ? mul_y : s_exp ? exp_y : add_y;
    wire [31:0] pipe_y;
    generate
        if (RESULT_REGS != 0) begin : g_res_reg
            reg [31:0] y_q;
            always @(posedge clk)
                y_q <= unit_y;
            assign pipe_y = y_q;
        end else begin : g_res_wire
            assign pipe_y = unit_y;
        end
    endgenerate

    always @* begin
        res_f = 32'd0;
        if (en & ~s_lt)
            res_f = s_reci ? reci_y : s_rsq ? rsq_y : s_max ? max_q : pipe_y;
    end

    // Not needed here: the comparators' eq, and busy (the core waits for done).
    wire unused_ok = &{1'b0, cmp_eq, reci_busy, rsq_busy};

endmodule

`default_nettype wire
