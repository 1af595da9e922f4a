`default_nettype none
// dnpu_vec: the vector unit. Executes every V_* instruction, S_MAP_V_FP and the
// datapath of H_SAMPLE_FUSED(_N) for dnpu_core, which has already decoded the
// instruction, made its checks (n = 0, SRAM_RANGE, the MX stream's) and hands
// over the operand registers on `start`; `done` pulses once with the results.
// docs/NUMERICS.md defines every value, dnpu.emu is the golden model.
//
// Lanes. A row holds VLEN BF16 elements; the arithmetic has LANES lanes (the
// profile's vector.lanes), so a row goes through them as C = VLEN/LANES chunks,
// one a cycle. Comparators are cheap, so the max/argmax tree spans the whole
// row; adders, multipliers and EXP units are not, so they exist LANES times.
// V_RECI_V's reciprocal is iterative (one quotient bit a cycle in every lane):
// a full divider per lane would cost far more area than the op is worth.
//
// Pipelining. ADD_STAGES, MUL_STAGES and EXP_STAGES (the profile's [pipeline] add/mul/exp_
// stages) cut every FP32 adder, multiplier and EXP unit of this unit (the lanes' and the
// row pipeline's) into that many stages, for a faster clock: a result comes LA = ADD_STAGES
// - 1 (LM, LE) cycles after its operands, and the engines below wait for it. With 1 every
// unit is a single cycle and the cycle counts below are exact; each count with an "(+ L)"
// grows by the latency named. RESULT_REGS ([pipeline] result_regs) puts a register where a
// unit's last stage would otherwise run into more logic in the same cycle: after S5's
// product and after its sum (so S5's recurrence takes LM + LA + 2 cycles: no forwarding),
// and after the lanes' adder, multiplier and EXP results on their way to the write row
// (V_ADD/SUB/MUL/EXP: their latency + 1).
//
// Three engines, one active at a time:
//
//  * Elementwise (V_ADD/SUB/MUL_VV/VF, V_EXP_V, V_RECI_V, V_FILL_VF, V_AMAX_VV,
//    V_INVPOW2_V), row by row in increasing order: read row a (and row b), C chunk
//    cycles through the lanes, wait for the last chunk's result (M_EDRN: LA for
//    V_ADD/SUB, LM for V_MUL, LE for V_EXP_V, none for the others; each one more with
//    RESULT_REGS, V_RECI_V's too), write the row.
//    V*F / V_EXP_V / V_INVPOW2_V take C + 3 (+ L) cycles a row, V*V (V_AMAX_VV
//    included) C + 4 (+ L), V_FILL_VF one: the cycle
//    model costs V_AMAX_VV as V_ADD_VV and V_INVPOW2_V as V_EXP_V. V_RECI_V
//    takes 25 cycles a chunk (24 quotient bits, then rounding and narrowing
//    while the chunk is stored), so 25*C + 3 (+ RR) a row, for
//    every operand (specials included): n*(25*C + 3) cycles in all, plus the
//    start / done overhead the other elementwise ops have. Row i is written
//    before row i+1 is read, so overlapping source and destination ranges
//    behave as docs/EXECUTION.md says (in order).
//
//  * Row pipeline (V_RED_MAX, V_RED_MAX_IDX, V_RED_SUM, H_SAMPLE_FUSED). Rows
//    arrive from the vector SRAM or, for H_SAMPLE_FUSED, from the MX
//    dequantizer (valid/ready). On arrival the max tree gives the row's
//    maximum c and its lane; the running maximum m and index update (m' = c if
//    c > m). The max-only reductions stop there: one row a cycle. Otherwise the
//    row sits in stage B for C cycles and its chunks flow through
//      S1  d = fp32(l - m')        (V_RED_SUM: d = l)   and rd = fp32(m - m')
//      S2  e = EXP(d)              (V_RED_SUM: e = d)   and r  = EXP(rd)
//      S3  the LANES-lane pairwise sum of e: each group's lanes, then the heap of
//          the group sums, one heap level a cycle (HD = log2(GROUPS) - 1 cycles
//          more than one stage when there are more than two groups)
//      L1.. pairwise combination of the C chunk sums (one level per log2 C)
//      S5  s = fp32(fp32(s * r) + row sum)   (V_RED_SUM: s = fp32(s + row sum))
//    which is NUMERICS' online algorithm with the row as the chunk. A new row
//    is accepted every C cycles, so at C = 1 the fused path takes one row a
//    cycle: the dequantizer's rate, one AXI beat a cycle. With pipelined units
//    S1 takes LA cycles more, S2 LE, each heap level and chunk level LA, S5
//    LM + LA (V_RED_SUM: LA); S5's s feeds the next row's S5, so rows are taken
//    at most every RP = max(C, LM + LA) cycles (the adder's s goes straight into
//    the multiplier) and V_RED_SUM's every max(C, LA + 1).
//
//    H_SAMPLE_FUSED_N runs the same pipeline once per position p < count (a_rs3),
//    n (a_rs2) rows each: rows of p + 1 are taken only once p's last row has
//    left S5 (a few cycles, hidden behind the dequantizer's turn-around between
//    positions). Then, in one cycle, INT[dst + p] = the argmax (int SRAM port),
//    the reciprocal of s starts on this unit's own dnpu_fp32_reci, and m, idx, s
//    restart from -inf, 0, +0. The reciprocal's done (25 cycles later) writes
//    FP[dst + p] (the FP SRAM write port), so it runs under the next position's
//    rows; a position that ends while the previous reciprocal is still running
//    waits for its done. stop / stop_pos (from the core: the stream of position
//    stop_pos faulted AXI_READ, on an error beat or past the top of the address
//    space) end the instruction once every position before stop_pos is written;
//    rows of stop_pos already taken are dropped. They are compared with pos a cycle
//    late (a registered flag, so that the dequantizer's ready follows no compare): a
//    row of stop_pos offered in the cycle stop rises may be taken, and is dropped like
//    the others (no position ends within a cycle of taking its last row). stop in the
//    start cycle is ignored: the core's load/store unit clears it only then. done
//    pulses after the last FP write (res_f / res_x are not used).
//
//  * Word engines (S_MAP_V_FP, V_TOPK_MASK(_V), V_THRESH_MASK, V_SELECT_INT, V_TRANS)
//    on the FP / int SRAM ports, one word a cycle:
//      S_MAP_V_FP      rows*VLEN + 1 cycles (the padding lanes too)
//      V_TRANS         VLEN*VLEN + 1: element e = r*VLEN + l is lane r of source row l
//                      (read at e, arriving at e + 1) put into lane l of the one output
//                      row register, which S_MAP_V_FP builds its rows in as well; the
//                      row is written with its last lane. No VLEN x VLEN buffer: each
//                      source row is read VLEN times, once per output row. The core
//                      checked that the spans do not overlap, so the order of the
//                      reads and writes does not matter; with a destination stride 0
//                      the last row written (r = VLEN-1) is the one left.
//      V_THRESH_MASK   n + 1
//      V_MASK_FP       n + 1 (mask word read from the int SRAM, FP write the next cycle)
//      V_SELECT_INT    3 per element (mask, source, write: in order)
//      V_TOPK_MASK(_V) n*(n+2+RR) + 1: for each j, the rank of element j is the
//                      number of elements ranked before it (i < j: v_i >= v_j,
//                      i > j: v_i > v_j); j is chosen if rank < k and v_j is
//                      not -inf. Exactly the emulator's stable descending order.
//                      With RESULT_REGS the arriving element i (after the vector
//                      SRAM's lane select) is registered before its compare, so
//                      the SRAM's data never reaches the rank in one cycle.

`include "dnpu_isa.vh"

module dnpu_vec #(
    parameter integer VLEN      = 16,
    parameter integer LANES     = 16,
    parameter integer VEC_ROWS  = 1024,
    parameter integer INT_WORDS = 2048,
    parameter integer FP_WORDS  = 1024,
    parameter integer ADD_STAGES = 1,         // pipeline stages of every FP32 adder (the lanes',
    parameter integer MUL_STAGES = 1,         // the row pipeline's), multiplier and EXP unit:
    parameter integer EXP_STAGES = 1,         // STAGES - 1 cycles of latency each
    parameter integer MAX_TREE   = 0,         // registers in the row-maximum tree (0 .. log2 VLEN)
    parameter integer RESULT_REGS = 0         // 1: registers after S5's product and sum, EXP's result
) (
    input  wire                     clk,
    input  wire                     rst_n,        // synchronous; also SOFT_RESET / a fault

    input  wire                     start,
    input  wire [6:0]               op,
    input  wire [31:0]              a_rd,         // x[rd]
    input  wire [31:0]              a_rs1,        // x[rs1]
    input  wire [31:0]              a_rs2,        // x[rs2]
    input  wire [31:0]              a_rs3,        // x[rs3]
    input  wire [31:0]              f_s,          // f[rs2]
    output reg                      done,
    output reg  [31:0]              res_f,
    output reg  [31:0]              res_x,

    output reg                      vs_re,
    output reg  [$clog2(VEC_ROWS)-1:0] vs_raddr,
    input  wire [VLEN*16-1:0]       vs_rdata,
    output reg                      vs_we,
    output reg  [$clog2(VEC_ROWS)-1:0] vs_waddr,
    output reg  [VLEN*16-1:0]       vs_wdata,

    output reg                      is_re,
    output reg  [$clog2(INT_WORDS)-1:0] is_raddr,
    input  wire [31:0]              is_rdata,
    output reg                      is_we,
    output reg  [$clog2(INT_WORDS)-1:0] is_waddr,
    output reg  [31:0]              is_wdata,

    output reg                      fs_re,
    output reg  [$clog2(FP_WORDS)-1:0] fs_raddr,
    input  wire [31:0]              fs_rdata,

    output reg                      fs_we,
    output reg  [$clog2(FP_WORDS)-1:0] fs_waddr,
    output reg  [31:0]              fs_wdata,

    input  wire                     dq_valid,
    input  wire [VLEN*16-1:0]       dq_row,
    output wire                     dq_ready,

    input  wire                     stop,         // H_SAMPLE_FUSED_N: position stop_pos faulted
    input  wire [31:0]              stop_pos
);
    localparam integer P      = LANES;
    localparam integer C      = VLEN / LANES;
    // lane groups (dnpu_vec_lanes): eight, or with pipelined adders one lane each, so that
    // every level of S3's sum is a registered heap level (Machine.heap_delay follows)
    localparam integer GROUPS = (P < 8 || ADD_STAGES > 1) ? P : 8;
    localparam integer G      = P / GROUPS;                    // lanes a group
    localparam integer LOG_C  = (C > 1) ? $clog2(C) : 0;
    localparam integer CW     = (C > 1) ? $clog2(C) : 1;      // chunk counter width
    localparam integer LOG_VL = $clog2(VLEN);
    localparam integer VAW    = $clog2(VEC_ROWS);
    localparam integer IAW    = $clog2(INT_WORDS);
    localparam integer FAW    = $clog2(FP_WORDS);
    localparam [31:0] C_M1   = C - 1;
    localparam [CW-1:0] C_LAST = C_M1[CW-1:0];
    localparam [31:0] NEG_INF = 32'hFF80_0000;
    // The FP units' latencies: a result STAGES - 1 cycles after its operands.
    localparam integer LA = ADD_STAGES - 1;
    localparam integer LM = MUL_STAGES - 1;
    localparam integer LE = EXP_STAGES - 1;
    localparam integer RR = (RESULT_REGS != 0) ? 1 : 0;
    localparam integer LAW = LA + RR, LMW = LM + RR, LEW = LE + RR;   // results into wrow
    localparam integer LRW = RR;                                        // V_RECI_V's
    localparam integer LMAX = (LAW > LMW) ? ((LAW > LEW) ? LAW : LEW) : ((LMW > LEW) ? LMW : LEW);

    // ---- the instruction ----------------------------------------------------------
    // The opcode is decoded as the instruction is taken (op_flags_f into oq), and its row
    // count chosen then (q_n), so that no path of the engines starts with an opcode compare.
    reg [31:0] q_rd, q_rs1, q_rs2, q_rs3, q_s, q_n;
    localparam integer NF = 15;
    function [NF-1:0] op_flags_f;
        input [6:0] f_op;
        reg amax;
        begin
            amax = (f_op == `DNPU_OP_V_AMAX_VV);
            op_flags_f = {
                amax,
                amax | (f_op == `DNPU_OP_V_INVPOW2_V),                     // dnpu_vec_lanes' bit functions
                (f_op == `DNPU_OP_V_ADD_VV) | (f_op == `DNPU_OP_V_SUB_VV) | (f_op == `DNPU_OP_V_MUL_VV) | amax,
                (f_op == `DNPU_OP_V_SUB_VV) | (f_op == `DNPU_OP_V_SUB_VF),
                (f_op == `DNPU_OP_V_MUL_VV) | (f_op == `DNPU_OP_V_MUL_VF),
                (f_op == `DNPU_OP_V_EXP_V),
                (f_op == `DNPU_OP_V_RECI_V),
                (f_op == `DNPU_OP_V_RED_MAX) | (f_op == `DNPU_OP_V_RED_MAX_IDX),
                (f_op == `DNPU_OP_V_RED_SUM),
                (f_op == `DNPU_OP_H_SAMPLE_FUSED_N),
                (f_op == `DNPU_OP_H_SAMPLE_FUSED) | (f_op == `DNPU_OP_H_SAMPLE_FUSED_N),
                (f_op == `DNPU_OP_S_MAP_V_FP),
                (f_op == `DNPU_OP_V_TOPK_MASK_V),
                (f_op == `DNPU_OP_V_MASK_FP),
                (f_op == `DNPU_OP_V_TRANS)};
        end
    endfunction
    reg  [NF-1:0] oq;
    wire o_amax, o_bit, o_vv, o_sub, o_mul, o_exp, o_reci, o_rmax, o_rsum, o_fn, o_fuse, o_map, o_tkv,
         o_mfp, o_tr;                 // (V_THRESH_MASK: the word engine's default)
    assign {o_amax, o_bit, o_vv, o_sub, o_mul, o_exp, o_reci, o_rmax, o_rsum, o_fn, o_fuse, o_map, o_tkv,
            o_mfp, o_tr} = oq;
    wire [NF-1:0] op_f = op_flags_f(op);
    // Row count: rs3 for the vector ops, rs2 for S_MAP_V_FP and H_SAMPLE_FUSED(_N).
    wire [31:0] op_n = ((op == `DNPU_OP_S_MAP_V_FP) | (op == `DNPU_OP_H_SAMPLE_FUSED) |
                        (op == `DNPU_OP_H_SAMPLE_FUSED_N)) ? a_rs2 : a_rs3;

    localparam [3:0] M_IDLE = 4'd0,
                     // elementwise
                     M_ERD  = 4'd1,   // read row a
                     M_ERDB = 4'd2,   // row a arrives, read row b (V*V)
                     M_ELAT = 4'd3,   // the last operand row arrives
                     M_ECH  = 4'd4,   // chunks through the lanes
                     M_EWR  = 4'd5,   // write the row
                     M_FILL = 4'd6,
                     // row pipeline
                     M_PIPE = 4'd7,
                     // word engines
                     M_WORD = 4'd8,   // S_MAP_V_FP, V_THRESH_MASK, V_MASK_FP: a word a cycle
                     M_TKJ  = 4'd9,   // top-k: read element j
                     M_TKI  = 4'd10,  // top-k: element j arrives, stream i
                     M_SEL0 = 4'd11,  // select: read mask j
                     M_SEL1 = 4'd12,  // select: mask arrives, read source j
                     M_SEL2 = 4'd13,  // select: source arrives, write
                     M_DONE = 4'd14,
                     M_EDRN = 4'd15;  // elementwise: the last chunk's results still in the units
    reg [3:0]  mode;
    reg [31:0] ri;                    // row / element being worked on (issued)
    reg [CW-1:0] ch;                  // chunk
    reg [4:0]  rc_k;                  // V_RECI_V: cycle within the chunk
    reg [3:0]  drn;                   // M_EDRN: cycles left
    localparam [4:0] RC_LAST = 5'd24; // rounding cycle, after quotient bits 0 .. 23

    // ---- lanes ------------------------------------------------------------------------
    reg  [VLEN*16-1:0] ra, rb;        // operand rows (elementwise); ra = stage B (pipeline)
    reg  [VLEN*16-1:0] wrow;          // result row being built
    reg  [31:0]        m_old;         // stage B: the running max before the row in ra
                                      // (its m' is m_run while B holds it)
    wire [P*16-1:0]    ca = ra[16*P*ch +: 16*P];   // chunk ch of the operand rows
    wire [P*16-1:0]    cb = rb[16*P*ch +: 16*P];
    wire               pipe_sum = o_rsum | o_fuse;

    reg  [P*32-1:0]    s1_d;          // S1 output: d per lane

    // ---- arithmetic ----------------------------------------------------------------------
    // Every adder, multiplier and EXP unit has an enable and computes only while it is
    // enabled (in Verilator: an idle vector unit costs the co-simulation almost nothing):
    // the lanes in GROUPS dnpu_vec_lanes (one adder, multiplier and EXP per lane, shared by
    // the elementwise engine and the fused pipeline; see there why groups), the scalar
    // steps (S1's rd, S2's r, S5, the chunk levels) and the group-sum tree as hw/rtl/fp
    // instances. The max tree's comparators are cheap and stay inline.
`include "dnpu_fp_funcs.vh"

    // (Lint: fp_cmp_f's eq in tree_f and take_f is unused by design.)
    /* verilator lint_off UNUSEDSIGNAL */
    // The row's maximum by a pairwise tree in which the upper half wins only if strictly
    // greater (equal maxima: the lowest lane; NaNs: the first): {the chosen element, its
    // lane}; fp_canon_f then gives its DAZ-read value (NUMERICS section 5).
    function [32+LOG_VL-1:0] tree_f;
        input [VLEN*16-1:0] tk_row;
        reg   [VLEN*32-1:0] tk_w;
        reg   [VLEN*LOG_VL-1:0] tk_ix;
        reg   [1:0]         tk_g;
        integer tk_l, tk_i;
        begin
            for (tk_i = 0; tk_i < VLEN; tk_i = tk_i + 1) begin
                tk_w[32*tk_i +: 32]          = {tk_row[16*tk_i +: 16], 16'd0};
                tk_ix[LOG_VL*tk_i +: LOG_VL] = tk_i[LOG_VL-1:0];
            end
            for (tk_l = 1; tk_l < VLEN; tk_l = tk_l * 2)
                for (tk_i = 0; tk_i < VLEN / 2; tk_i = tk_i + 1)
                    if (tk_i < VLEN / (2 * tk_l)) begin
                        tk_g = fp_cmp_f(tk_w[64*tk_i+32 +: 32], tk_w[64*tk_i +: 32]);
                        tk_w[32*tk_i +: 32] = tk_g[1] ? tk_w[64*tk_i+32 +: 32] : tk_w[64*tk_i +: 32];
                        tk_ix[LOG_VL*tk_i +: LOG_VL] = tk_g[1] ? tk_ix[LOG_VL*(2*tk_i+1) +: LOG_VL]
                                                               : tk_ix[LOG_VL*(2*tk_i) +: LOG_VL];
                    end
            tree_f = {tk_w[31:0], tk_ix[LOG_VL-1:0]};
        end
    endfunction

    // A row taken into the running maximum: {m', m, idx'} from its maximum c (canonical)
    // and that element's lane, m and idx: m' = c if c > m.
    function [95:0] take_f;
        input [31:0]        tk_c;
        input [LOG_VL-1:0]  tk_lane;
        input [31:0]        tk_m;
        input [31:0]        tk_idx;
        input [31-LOG_VL:0] tk_rown;          // the row's number (its elements: rown * VLEN ..)
        reg   [1:0]         tk_g;
        begin
            tk_g = fp_cmp_f(tk_c, tk_m);
            take_f = {tk_g[1] ? tk_c : tk_m, tk_m, tk_g[1] ? {tk_rown, tk_lane} : tk_idx};
        end
    endfunction

    // The tree with MAX_TREE registers in it: after level cut, cut = floor(k(LOG_VL + 1) /
    // (MAX_TREE + 1)), k = 1 .. MAX_TREE, counting the take's compare as a level of its own,
    // so the parts are even. Every cut is a distinct level for MAX_TREE <= LOG_VL.
    function tree_cut_f;
        input integer tc_l;
        integer tc_k;
        begin
            tree_cut_f = 1'b0;
            for (tc_k = 1; tc_k <= MAX_TREE; tc_k = tc_k + 1)
                if ((tc_k * (LOG_VL + 1)) / (MAX_TREE + 1) == tc_l)
                    tree_cut_f = 1'b1;
        end
    endfunction
    /* verilator lint_on UNUSEDSIGNAL */

    // fill row: BF16(f[s]) in every lane
    wire [15:0] fill16;
    dnpu_f32_to_bf16 u_fill (.a(q_s), .y16(fill16));

    // ---- row pipeline -------------------------------------------------------------------
    // Row input: the vector SRAM's read data the cycle after a read, or the
    // dequantizer's row.
    reg         rd_pend;              // a row read was issued last cycle
    reg  [31:0] rows_in;              // rows accepted (H_SAMPLE_FUSED_N: of this position)
    wire        in_v   = o_fuse ? dq_valid : rd_pend;
    wire [VLEN*16-1:0] in_row = o_fuse ? dq_row : vs_rdata;
    reg         b_v;                  // stage B holds a row (ra)
    // The dequantizer's rows: taken only while the instruction (H_SAMPLE_FUSED_N:
    // the position being taken) still expects one, so that a row offered after
    // the last is left waiting instead of folded into m / idx.
    // rows_more, rows_last and pos_end are rows_in != q_n, rows_in + 1 == q_n and pos ==
    // q_rs3 kept as registers beside the counters, so that the dequantizer's ready does not
    // wait for 32-bit compares.
    reg  [31:0] pos;
    reg  [32:0] pos1;                 // pos + 1, kept beside pos
    reg         rows_more, rows_last, pos_end;
    reg         pos_stop;             // stop & (pos >= stop_pos), a cycle behind stop / stop_pos
    wire        pos_live = ~o_fuse | (rows_more & ~(o_fn & (pos_end | pos_stop)));
    // S5's recurrence: a row's s comes out of S5's adder L5 cycles after its row sum reaches
    // S5, so the summing ops take a row at most every RP cycles (the pipeline from stage B to
    // S5 has a fixed length, so rows reach S5 as far apart as they were taken): the fused
    // path's multiplier takes that s straight from the adder's output (s5_fwd), RP = max(C,
    // L5, 1); V_RED_SUM's adder takes it from s_acc, RP = max(C, L5 + 1).
    // gap: cycles since a row was taken (saturating).
    localparam integer L5F  = LM + LA + 2 * RR;                 // fused: s*r, then + row sum
    localparam integer RPF0 = (C > L5F) ? C : L5F;
    localparam integer RPF  = (RPF0 > 1) ? RPF0 : 1;
    localparam integer RPS  = (C > LA + 1) ? C : LA + 1;        // V_RED_SUM: s + row sum
    localparam [31:0]  RPF32 = RPF, RPS32 = RPS;
    localparam [5:0]   RPF6 = RPF32[5:0], RPS6 = RPS32[5:0];
    reg  [5:0]  gap;
    reg         gap_ok;                                         // gap >= gap_rp
    wire [5:0]  gap_rp = o_rsum ? RPS6 : RPF6;
    // A row is taken (in_go) into the maximum tree and leaves it MAX_TREE cycles later
    // (mt_go) into the running maximum and stage B. RP >= C rows apart, B has always
    // emptied by then: the gap alone decides.
    wire        in_go  = (mode == M_PIPE) & in_v & (o_rmax | gap_ok) & pos_live;
    assign dq_ready = (mode == M_PIPE) & o_fuse & gap_ok & pos_live;
    wire [5:0]  gap_n  = in_go ? 6'd1 : ((gap == 6'd63) ? gap : gap + 6'd1);
    wire        gap_ok_n = gap_n >= gap_rp;
    wire        pipe_clr = (mode == M_DONE);
    wire        vclr     = ~rst_n | pipe_clr;

    wire                mt_go, mt_last;
    wire [VLEN*16-1:0]  mt_row;
    wire [31:0]         mt_c;
    wire [LOG_VL-1:0]   mt_lane;
    wire [31-LOG_VL:0]  mt_rown;
    localparam integer  EW = 32 + LOG_VL;                       // a tree node: value, lane
    generate
        // Without registers the tree stays the function tree_f, one loop for Verilator: the
        // generated levels below cost a statement per node, 2047 of them at asic-2048's VLEN.
        if (MAX_TREE == 0) begin : g_tree0
            wire [EW-1:0] top = tree_f(in_row);
            assign mt_c    = fp_canon_f(top[EW-1 -: 32]);
            assign mt_lane = top[LOG_VL-1:0];
            assign mt_go   = in_go;
            assign mt_row  = in_row;
            assign mt_rown = rows_in[31-LOG_VL:0];
            assign mt_last = rows_last;
        end else begin : g_tree
            // Level l (VLEN >> l nodes) at lv[EW * (2 VLEN - 2 (VLEN >> l)) +: EW * (VLEN >> l)].
            wire [EW*(2*VLEN-1)-1:0] lv;
            genvar l, i;
            for (i = 0; i < VLEN; i = i + 1) begin : g_leaf
                localparam [31:0] I32 = i;
                assign lv[EW*i +: EW] = {in_row[16*i +: 16], 16'd0, I32[LOG_VL-1:0]};
            end
            for (l = 1; l <= LOG_VL; l = l + 1) begin : g_lv
                localparam integer N  = VLEN >> l;
                localparam integer OI = EW * (2 * VLEN - 2 * (VLEN >> (l - 1)));
                localparam integer OO = EW * (2 * VLEN - 2 * N);
                wire [EW*N-1:0] y;
                for (i = 0; i < N; i = i + 1) begin : g_node
                    wire [EW-1:0] lo = lv[OI + EW*(2*i) +: EW];
                    wire [EW-1:0] hi = lv[OI + EW*(2*i+1) +: EW];
                    wire [1:0]    g  = fp_cmp_f(hi[EW-1 -: 32], lo[EW-1 -: 32]);
                    assign y[EW*i +: EW] = g[1] ? hi : lo;
                    wire unused_ok = &{1'b0, g[0]};
                end
                if (tree_cut_f(l)) begin : g_cut
                    reg [EW*N-1:0] q;
                    always @(posedge clk)
                        q <= y;
                    assign lv[OO +: EW*N] = q;
                end else begin : g_wire
                    assign lv[OO +: EW*N] = y;
                end
            end
            wire [EW-1:0] top = lv[EW*(2*VLEN-2) +: EW];
            assign mt_c    = fp_canon_f(top[EW-1 -: 32]);
            assign mt_lane = top[LOG_VL-1:0];
            dnpu_delay #(.W(1), .D(MAX_TREE), .CLR(1)) u_tk_go (.clk(clk), .clr(vclr), .x(in_go), .y(mt_go));
            dnpu_delay #(.W(VLEN*16), .D(MAX_TREE)) u_tk_row (.clk(clk), .clr(1'b0), .x(in_row), .y(mt_row));
            dnpu_delay #(.W(32-LOG_VL), .D(MAX_TREE)) u_tk_rown (.clk(clk), .clr(1'b0), .x(rows_in[31-LOG_VL:0]),
                                                               .y(mt_rown));
            dnpu_delay #(.W(1), .D(MAX_TREE)) u_tk_last (.clk(clk), .clr(1'b0), .x(rows_last),
                                                        .y(mt_last));
        end
    endgenerate

    reg  [31:0] m_run, idx_run;

    // Issue SRAM row reads so that each arrives when it can be taken: the
    // max-only reductions every cycle, the summing ones when B frees next cycle.
    wire        b_v_n  = mt_go | (b_v & ~(ch == C_LAST));
    wire [CW-1:0] ch_n = mt_go ? {CW{1'b0}} : ((b_v & ~(ch == C_LAST)) ? ch + 1'b1 : ch);
    wire        rd_more = (ri != q_n);
    wire        pipe_rd = (mode == M_PIPE) & ~o_fuse & rd_more &
                          (o_rmax | gap_ok_n);

    // S1 / S2 / S3 / chunk levels / S5, each with valid, last-chunk and r.
    // pipe_clr empties S1 .. the chunk levels as an instruction ends: a stopped
    // H_SAMPLE_FUSED_N leaves rows of stop_pos there, which must not reach the
    // next summing instruction's S5 (nothing else advances them outside M_PIPE).
    // (pipe_clr is declared with the maximum tree, whose valid it clears too)
    reg         s1_v, s1_last;
    reg  [31:0] s1_rd;
    reg         s2_v, s2_last;
    reg  [P*32-1:0] s2_e;
    reg  [31:0] s2_r;
    reg         s3_v, s3_last;
    reg  [31:0] s3_sum, s3_r;

    // S1's rd = fp32(m - m') and S2's r = EXP(rd), fused path only. The fused path's S1
    // and S2 results come LA and LE cycles after their chunk (the lanes' adders and EXP
    // units, and these two): b1_* / c1_* carry the chunk's valid and last along.
    // V_RED_SUM's S1 and S2 pass the chunk on at once.
    wire [31:0] s1_rd_y, s2_r_y;
    wire        b1_v, b1_last, c1_v, c1_last;
    dnpu_fp32_add #(.STAGES(ADD_STAGES)) u_s1_rd (.clk(clk), .en(b_v & o_fuse), .a(m_old), .b(m_run),
                                                 .sub(1'b1), .bf16(1'b0), .y(s1_rd_y));
    dnpu_fp_exp   #(.STAGES(EXP_STAGES)) u_s2_r  (.clk(clk), .en(s1_v & o_fuse), .x(s1_rd), .y(s2_r_y));
    dnpu_delay #(.W(1), .D(LA), .CLR(1)) u_b1_v (.clk(clk), .clr(vclr), .x((mode == M_PIPE) & b_v & o_fuse),
                                                .y(b1_v));
    dnpu_delay #(.W(1), .D(LA)) u_b1_last (.clk(clk), .clr(1'b0), .x(ch == C_LAST), .y(b1_last));
    dnpu_delay #(.W(1), .D(LE), .CLR(1)) u_c1_v (.clk(clk), .clr(vclr), .x((mode == M_PIPE) & s1_v & o_fuse),
                                                .y(c1_v));
    dnpu_delay #(.W(1), .D(LE)) u_c1_last (.clk(clk), .clr(1'b0), .x(s1_last), .y(c1_last));

    // S3: the pairwise FP32 sum of the P lanes, (0,1), (2,3), ... then pairs of pairs
    // (NUMERICS section 6): each group sums its G lanes, then a heap of adders sums the
    // groups' sums: node k (1 <= k < GROUPS) adds nodes 2k and 2k + 1, group g is node
    // GROUPS + g, the row's sum is node 1. Three FP32 adders in series were the longest
    // path of the whole NPU, so the heap is registered by level: node k at level
    // floor(log2 k) >= 1 holds its sum in a register, and level l adds in the cycle
    // HD - l after S2 (the groups' own sums, and the deepest level, in S2's cycle; node
    // 1 in S3's). hd_*[j]: S2's valid, last and r j cycles later, for the adders'
    // enables and for S3. The order of the additions, and so every bit, is unchanged.
    // With pipelined adders each level takes ADD_STAGES cycles (LA in the adder, one in q):
    // level l adds in cycle (HD - l)(LA + 1) after S2, and S3 takes node 1 HDL cycles after S2.
    localparam integer LOG_GR = $clog2(GROUPS);
    localparam integer HD     = (LOG_GR > 1) ? LOG_GR - 1 : 0;
    localparam integer HDL    = (GROUPS == 1) ? 0 : HD * (LA + 1) + LA;
    wire [GROUPS*32-1:0] grp_sum;
    wire [31:0] s3_in;
    wire [HDL:0]       hd_v, hd_last;
    wire [32*HDL+31:0] hd_r;
    assign hd_v[0]     = s2_v;
    assign hd_last[0]  = s2_last;
    assign hd_r[31:0]  = s2_r;
    generate
        genvar j;
        for (j = 0; j < HDL; j = j + 1) begin : g_hd
            reg        v, l;
            reg [31:0] r;
            always @(posedge clk) begin
                if (!rst_n | pipe_clr)
                    v <= 1'b0;
                else if (mode == M_PIPE)
                    v <= hd_v[j];
                if (mode == M_PIPE) begin
                    l <= hd_last[j];
                    r <= hd_r[32*j +: 32];
                end
            end
            assign hd_v[j+1]            = v;
            assign hd_last[j+1]         = l;
            assign hd_r[32*(j+1) +: 32] = r;
        end
        if (GROUPS == 1) begin : g_sum1
            assign s3_in = grp_sum;
        end else begin : g_sum
            wire [64*GROUPS-1:32] node /* verilator split_var */;
            assign node[32*GROUPS +: 32*GROUPS] = grp_sum;
            genvar k;
            for (k = 1; k < GROUPS; k = k + 1) begin : g_node
                localparam integer LV = $clog2(k + 1) - 1;         // floor(log2 k)
                wire [31:0] y;
                dnpu_fp32_add #(.STAGES(ADD_STAGES)) u_add (
                    .clk(clk), .en(hd_v[(HD-LV)*(LA+1)]), .a(node[64*k +: 32]), .b(node[64*k+32 +: 32]),
                    .sub(1'b0), .bf16(1'b0), .y(y));
                if (LV == 0) begin : g_top
                    assign node[32*k +: 32] = y;
                end else begin : g_reg
                    reg [31:0] q;
                    always @(posedge clk)
                        if (mode == M_PIPE)
                            q <= y;
                    assign node[32*k +: 32] = q;
                end
            end
            assign s3_in = node[63:32];
        end
    endgenerate

    // chunk-combination levels (C > 1): lv_* index 0 is S3's output
    wire        row_v;
    wire [31:0] row_sum, row_r;
    generate
        if (C == 1) begin : g_c1
            assign row_v   = s3_v;
            assign row_sum = s3_sum;
            assign row_r   = s3_r;
            wire unused_ok = &{1'b0, s3_last};
        end else begin : g_cn
            // level k takes a stream of sums (lv_*[k]) and emits the sum of each
            // consecutive pair (lv_*[k+1]): a hold register and one adder.
            wire [LOG_C:0]       lv_v;
            wire [32*LOG_C+31:0] lv_x;
            wire [32*LOG_C+31:0] lv_r;
            assign lv_v[0]    = s3_v;
            assign lv_x[31:0] = s3_sum;
            assign lv_r[31:0] = s3_r;
            genvar k;
            for (k = 0; k < LOG_C; k = k + 1) begin : g_lv
                // (the pair's sum comes LA cycles after the pair: p_v / p_r follow it)
                reg         h_v, o_v;
                reg  [31:0] h_x, o_x, o_r;
                wire [31:0] pair_y, p_r;
                wire        p_v;
                dnpu_fp32_add #(.STAGES(ADD_STAGES)) u_add (
                    .clk(clk), .en(lv_v[k] & h_v), .a(h_x), .b(lv_x[32*k +: 32]),
                    .sub(1'b0), .bf16(1'b0), .y(pair_y));
                dnpu_delay #(.W(1), .D(LA), .CLR(1)) u_p_v (.clk(clk), .clr(vclr), .x(lv_v[k] & h_v), .y(p_v));
                dnpu_delay #(.W(32), .D(LA)) u_p_r (.clk(clk), .clr(1'b0), .x(lv_r[32*k +: 32]), .y(p_r));
                always @(posedge clk) begin
                    if (!rst_n | pipe_clr) begin
                        h_v <= 1'b0;
                        o_v <= 1'b0;
                    end else begin
                        o_v <= p_v;
                        if (lv_v[k])
                            h_v <= ~h_v;
                    end
                    if (lv_v[k] & ~h_v)
                        h_x <= lv_x[32*k +: 32];
                    if (p_v)
                        o_x <= pair_y;
                    o_r <= p_r;
                end
                assign lv_v[k+1]            = o_v;
                assign lv_x[32*(k+1) +: 32] = o_x;
                assign lv_r[32*(k+1) +: 32] = o_r;
            end
            assign row_v   = lv_v[LOG_C];
            assign row_sum = lv_x[32*LOG_C +: 32];
            assign row_r   = lv_r[32*LOG_C +: 32];
            wire unused_ok = &{1'b0, s3_last};
        end
    endgenerate

    reg  [31:0] s_acc, rows_out;

    // Per lane: the adder (V_ADD/SUB_*: BF16 result; fused S1: FP32 l - m', m' of stage B's
    // row being m_run), the multiplier (V_MUL_*: BF16) and EXP (V_EXP_V of the element; fused
    // S2 of S1's d), and V_RECI_V's reciprocal (rc_k counts its 24 quotient-bit cycles and
    // the rounding cycle, in which the chunk's results are stored), and the integer bit
    // functions of V_AMAX_VV / V_INVPOW2_V. Zero when not enabled.
    wire ln_add_en = ((mode == M_ECH) & ~o_exp & ~o_mul & ~o_reci & ~o_bit) | ((mode == M_PIPE) & b_v & o_fuse);
    wire ln_mul_en = (mode == M_ECH) & o_mul;
    wire ln_exp_en = ((mode == M_ECH) & o_exp) | ((mode == M_PIPE) & s1_v & o_fuse);
    wire ln_rc_step = (mode == M_ECH) & o_reci & (rc_k != RC_LAST);
    wire ln_rc_out  = (mode == M_ECH) & o_reci & (rc_k == RC_LAST);
    wire ln_bit_en  = (mode == M_ECH) & o_bit;
    wire [P*32-1:0] ln_add, ln_mul, ln_exp;
    wire [P*16-1:0] ln_rc, ln_bit;
    wire [P*32-1:0] ew_add, ew_mul, ew_exp;           // the units' results into wrow (RR cycles later)
    dnpu_delay #(.W(P*32), .D(RR)) u_ew_add (.clk(clk), .clr(1'b0), .x(ln_add), .y(ew_add));
    dnpu_delay #(.W(P*32), .D(RR)) u_ew_mul (.clk(clk), .clr(1'b0), .x(ln_mul), .y(ew_mul));
    dnpu_delay #(.W(P*32), .D(RR)) u_ew_exp (.clk(clk), .clr(1'b0), .x(ln_exp), .y(ew_exp));
    wire [P*16-1:0] ew_rc;
    dnpu_delay #(.W(P*16), .D(RR)) u_ew_rc (.clk(clk), .clr(1'b0), .x(ln_rc), .y(ew_rc));

    // Elementwise results: chunk ch issued in M_ECH comes out of its unit ew_lat cycles
    // later (V_AMAX_VV, V_INVPOW2_V: at once; V_RECI_V's last cycle: RR) and is stored into
    // wrow then; ewd_*
    // carry each issued chunk's number along. M_EDRN waits for the last chunk's.
    localparam [31:0] LA32 = LAW, LM32 = LMW, LE32 = LEW, LR32 = LRW;
    localparam [3:0]  LA4 = LA32[3:0], LM4 = LM32[3:0], LE4 = LE32[3:0], LR4 = LR32[3:0];
    localparam integer LMAX_D = (LMAX > 0) ? LMAX : 1;
    wire [3:0]  ew_lat   = o_exp ? LE4 : o_mul ? LM4 : o_reci ? LR4 : o_bit ? 4'd0 : LA4;
    wire        ew_issue = (mode == M_ECH) & ~(o_reci & (rc_k != RC_LAST));
    reg  [LMAX_D:1] ewd_v;
    reg  [CW-1:0]   ewd_ch [1:LMAX_D];
    reg             wr_v;
    reg  [CW-1:0]   wr_ch;
    always @* begin
        wr_v  = ew_issue;
        wr_ch = ch;
        if (ew_lat != 4'd0) begin
            wr_v  = ewd_v[ew_lat];
            wr_ch = ewd_ch[ew_lat];
        end
    end
    integer e;
    always @(posedge clk) begin
        ewd_v[1]  <= rst_n & ew_issue;
        ewd_ch[1] <= ch;
        for (e = 2; e <= LMAX_D; e = e + 1) begin
            ewd_v[e]  <= rst_n & ewd_v[e-1];
            ewd_ch[e] <= ewd_ch[e-1];
        end
    end
    genvar gg;
    generate
        for (gg = 0; gg < GROUPS; gg = gg + 1) begin : g_grp
            dnpu_vec_lanes #(.G(G), .ADD_STAGES(ADD_STAGES), .MUL_STAGES(MUL_STAGES), .EXP_STAGES(EXP_STAGES)) u_lanes (
                .clk(clk), .rc_step(ln_rc_step), .rc_first(rc_k == 5'd0), .rc_out(ln_rc_out),
                .rc_y(ln_rc[16*G*gg +: 16*G]),
                .add_en(ln_add_en), .mul_en(ln_mul_en), .exp_en(ln_exp_en), .sum_en(s2_v),
                .bit_en(ln_bit_en), .amax(o_amax), .bit_y(ln_bit[16*G*gg +: 16*G]),
                .fuse(o_fuse), .vv(o_vv), .sub(o_sub),
                .a16(ca[16*G*gg +: 16*G]), .b16(cb[16*G*gg +: 16*G]), .s(q_s), .m(m_run),
                .d(s1_d[32*G*gg +: 32*G]), .e(s2_e[32*G*gg +: 32*G]),
                .add_y(ln_add[32*G*gg +: 32*G]), .mul_y(ln_mul[32*G*gg +: 32*G]),
                .exp_y(ln_exp[32*G*gg +: 32*G]), .sum_y(grp_sum[32*gg +: 32]));
        end
    endgenerate

    // S5: s = fp32(fp32(s * r) + row sum), V_RED_SUM s = fp32(s + row sum): one adder for
    // both. The product comes LM cycles after the row (m5_* keep its row sum with it), the
    // sum LA cycles after the add; s5_v marks it. RP keeps the next row away until then
    // (fused: until that cycle, s5_fwd).
    wire [31:0] s5_mul_y, s5_y, m5_sum;
    wire        m5_v, s5_v;
    wire        a5_en = o_rsum ? row_v : m5_v;
    // s5_fwd: the previous row's s leaves the adder in the cycle this row enters S5 (never
    // with single-cycle units: there s5_y depends on this very multiply, and RP = C >= 1)
    localparam  FWD    = (L5F > 0 && RR == 0) ? 1'b1 : 1'b0;
    wire        s5_fwd = FWD & s5_v & ~o_rsum;
    dnpu_fp32_mul #(.STAGES(MUL_STAGES)) u_s5_mul (.clk(clk), .en(row_v & ~o_rsum), .a(s5_fwd ? s5_y : s_acc),
                                                  .b(row_r), .bf16(1'b0), .y(s5_mul_y));
    wire [31:0] s5_prod;                              // the product as S5's adder takes it
    dnpu_delay #(.W(32), .D(RR)) u_s5_prod (.clk(clk), .clr(1'b0), .x(s5_mul_y), .y(s5_prod));
    dnpu_delay #(.W(1), .D(LM + RR), .CLR(1)) u_m5_v (.clk(clk), .clr(vclr), .x(row_v & ~o_rsum), .y(m5_v));
    dnpu_delay #(.W(32), .D(LM + RR)) u_m5_sum (.clk(clk), .clr(1'b0), .x(row_sum), .y(m5_sum));
    dnpu_fp32_add #(.STAGES(ADD_STAGES)) u_s5_add (.clk(clk), .en(a5_en), .a(o_rsum ? s_acc : s5_prod),
                                                  .b(o_rsum ? row_sum : m5_sum), .sub(1'b0), .bf16(1'b0),
                                                  .y(s5_y));
    dnpu_delay #(.W(1), .D(LA), .CLR(1)) u_s5_v (.clk(clk), .clr(vclr), .x(a5_en), .y(s5_v));

    // ---- H_SAMPLE_FUSED_N: per-position results ------------------------------------
    // fn_end: position pos is complete (every row through S5) and the reciprocal
    // can take its sum (idle, or delivering the previous one this cycle).
    reg         r_pend;               // a reciprocal is running for position r_pos
    reg  [FAW-1:0] r_pos;
    wire        r_done;
    wire [31:0] rc_y;
    wire        r_busy;
    wire        fn_end  = (mode == M_PIPE) & o_fn & ~pos_end & ~pos_stop &
                          ~rows_more & (rows_out == q_n) & (~r_pend | r_done);
    // pos_stop's next value: both of pos's next values compared, the choice after
    wire        pos_stop_n = stop & (fn_end ? (pos1 >= {1'b0, stop_pos}) : (pos >= stop_pos));
    wire        fn_last = ~r_pend | r_done;       // no reciprocal left after this cycle (if none starts)
    wire        fn_fin  = (mode == M_PIPE) & o_fn & (pos_end | pos_stop) & fn_last;
    dnpu_fp32_reci u_reci (.clk(clk), .rst_n(rst_n), .start(fn_end), .x(s_acc),
                           .busy(r_busy), .done(r_done), .y(rc_y));

    // ---- word engines ---------------------------------------------------------------
    reg         w_pend;               // a word read was issued last cycle
    reg  [31:0] w_j;                  // its element index
    reg  [31:0] tk_vj;                // top-k: element j (FP32 bits)
    reg  [31:0] tk_rank;
    reg         rk_lt0, rk_lt1;       // tk_rank < k, tk_rank + 1 < k (set with tk_rank in M_TKI)
    wire [31:0] rk_p1 = tk_rank + 32'd1;             // from the register: off the element's path
    wire        rk_c1 = (rk_p1 < q_rs2);
    wire        rk_c2 = (tk_rank + 32'd2 < q_rs2);
    reg  [31:0] ti;                   // top-k: i issued
    reg  [LOG_VL-1:0] v_lane;         // lane of the element arriving (vector source)
    reg         sel_m;                // select: the mask word was nonzero
    reg  [VAW-1:0] tr_sa, tr_da;      // V_TRANS: source row read next, destination row written next
    wire [15:0] v_elem = vs_rdata[16*v_lane +: 16];
    wire [31:0] w_val  = o_tkv ? {v_elem, 16'd0} : fs_rdata;   // the arriving element
    // top-k's element i reaches its compare RR cycles after it arrives (c_*: pending, index,
    // value); clear outside M_TKI so that nothing of a finished j is left in flight
    wire        c_pend;
    wire [31:0] c_j, c_val;
    wire        tk_clr    = (mode != M_TKI);
    dnpu_delay #(.W(1), .D(RR), .CLR(1)) u_tk_cpend (.clk(clk), .clr(tk_clr), .x(w_pend), .y(c_pend));
    dnpu_delay #(.W(32), .D(RR)) u_tk_cj (.clk(clk), .clr(1'b0), .x(w_j), .y(c_j));
    dnpu_delay #(.W(32), .D(RR)) u_tk_cval (.clk(clk), .clr(1'b0), .x(w_val), .y(c_val));
    wire [15:0] map16;
    dnpu_f32_to_bf16 u_map (.a(fs_rdata), .y16(map16));
    // Two comparators: top-k compares v_i with v_j, V_THRESH_MASK t with v (the FP SRAM's
    // word), so that the vector SRAM's lanes never reach the threshold's write enable.
    wire        w_gt, w_eq, th_gt, th_eq;
    dnpu_fp_cmp u_wcmp (.a(c_val), .b(tk_vj), .gt(w_gt), .eq(w_eq));
    dnpu_fp_cmp u_tcmp (.a(q_s), .b(fs_rdata), .gt(th_gt), .eq(th_eq));
    wire        unused_th = &{1'b0, th_eq};
    wire [31:0] map_total = ((q_n + VLEN - 1) >> LOG_VL) << LOG_VL;  // n rounded up to rows
    localparam [31:0] TR_TOTAL = VLEN * VLEN;
    wire [31:0] w_total   = o_map ? map_total : (o_tr ? TR_TOTAL : q_n);
    wire        ranks_bf  = (c_j < ri) ? (w_gt | w_eq) : w_gt;       // element c_j ranks before ri
    wire        rank_inc  = (c_j != ri) & ranks_bf;
    wire [31:0] rank_n    = rank_inc ? rk_p1 : tk_rank;
    wire        tk_last   = (c_j == q_n - 32'd1);
    wire        vj_ninf   = (tk_vj == NEG_INF);

    // ---- sequencing --------------------------------------------------------------------
    integer b;
    always @* begin
        vs_re    = 1'b0;
        vs_raddr = q_rs1[VAW-1:0] + ri[VAW-1:0];
        vs_we    = 1'b0;
        vs_waddr = q_rd[VAW-1:0] + ri[VAW-1:0];
        vs_wdata = wrow;
        is_re    = 1'b0;
        is_raddr = q_rs1[IAW-1:0] + ri[IAW-1:0];
        is_we    = 1'b0;
        is_waddr = q_rd[IAW-1:0] + ri[IAW-1:0];
        is_wdata = 32'd1;
        fs_re    = 1'b0;
        fs_raddr = q_rs1[FAW-1:0] + ri[FAW-1:0];
        fs_we    = r_done & r_pend;
        fs_waddr = q_rd[FAW-1:0] + r_pos;
        fs_wdata = rc_y;
        case (mode)
            M_ERD:  vs_re = 1'b1;
            M_ERDB: begin
                vs_re    = 1'b1;
                vs_raddr = q_rs2[VAW-1:0] + ri[VAW-1:0];
            end
            M_EWR:  vs_we = 1'b1;
            M_FILL: begin
                vs_we = 1'b1;
                for (b = 0; b < VLEN; b = b + 1)
                    vs_wdata[16*b +: 16] = fill16;
            end
            M_PIPE: begin
                vs_re    = pipe_rd;
                is_we    = fn_end;
                is_waddr = q_rd[IAW-1:0] + pos[IAW-1:0];
                is_wdata = idx_run;
            end
            M_WORD: begin
                fs_re = ~o_mfp & ~o_tr & (ri < q_n);
                if (o_tr) begin
                    // lane r of the arriving source row completes lane l of output row r
                    vs_re    = ri < w_total;
                    vs_raddr = tr_sa;
                    vs_waddr = tr_da;
                    vs_wdata = wrow;
                    vs_wdata[16*w_j[LOG_VL-1:0] +: 16] = v_elem;
                    vs_we    = w_pend & (w_j[LOG_VL-1:0] == {LOG_VL{1'b1}});
                end else if (o_mfp) begin
                    // V_MASK_FP: INT[imask + j] read, FP[fdst + j] = f[s] where it is 0
                    is_re    = ri < q_n;
                    fs_waddr = q_rd[FAW-1:0] + w_j[FAW-1:0];
                    fs_wdata = q_s;
                    fs_we    = w_pend & (is_rdata == 32'd0);
                end else if (o_map) begin
                    // the row is complete with the lane arriving now
                    vs_waddr = q_rd[VAW-1:0] + w_j[LOG_VL +: VAW];
                    vs_wdata = wrow;
                    vs_wdata[16*w_j[LOG_VL-1:0] +: 16] = (w_j < q_n) ? map16 : NEG_INF[31:16];
                    vs_we    = w_pend & (w_j[LOG_VL-1:0] == {LOG_VL{1'b1}});
                end else begin
                    is_waddr = q_rd[IAW-1:0] + w_j[IAW-1:0];
                    is_we    = w_pend & ~th_gt;                // v >= t: not (t > v)
                end
            end
            M_TKJ, M_TKI: begin
                // M_TKJ reads element ri; M_TKI reads element ti
                if (o_tkv) begin
                    vs_re    = (mode == M_TKJ) | (ti < q_n);
                    vs_raddr = q_rs1[VAW-1:0] + ((mode == M_TKJ) ? ri[LOG_VL +: VAW] : ti[LOG_VL +: VAW]);
                end else begin
                    fs_re    = (mode == M_TKJ) | (ti < q_n);
                    fs_raddr = q_rs1[FAW-1:0] + ((mode == M_TKJ) ? ri[FAW-1:0] : ti[FAW-1:0]);
                end
                is_waddr = q_rd[IAW-1:0] + ri[IAW-1:0];
                is_wdata = {31'd0, (rank_inc ? rk_lt1 : rk_lt0) & ~vj_ninf};   // rank_n < k
                is_we    = (mode == M_TKI) & c_pend & tk_last;
            end
            M_SEL0: is_re = 1'b1;                            // mask j
            M_SEL1: begin
                is_re    = 1'b1;
                is_raddr = q_rs2[IAW-1:0] + ri[IAW-1:0];     // source j
            end
            M_SEL2: begin
                is_we    = sel_m;
                is_wdata = is_rdata;
            end
            default: ;
        endcase
    end

    always @(posedge clk) begin
        if (!rst_n) begin
            mode    <= M_IDLE;
            pos_stop <= 1'b0;
            done    <= 1'b0;
            rd_pend <= 1'b0;
            b_v     <= 1'b0;
            s1_v    <= 1'b0;
            s2_v    <= 1'b0;
            s3_v    <= 1'b0;
            w_pend  <= 1'b0;
            r_pend  <= 1'b0;
        end else begin
            done <= 1'b0;
            pos_stop <= (mode != M_IDLE) & pos_stop_n;
            if (fn_end) begin
                r_pend <= 1'b1;
                r_pos  <= pos[FAW-1:0];
            end else if (r_done) begin
                r_pend <= 1'b0;
            end
            case (mode)
                // The instruction's registers load in every idle cycle, the one with start
                // last: start (the controller's whole decision) reaches only mode.
                M_IDLE: begin
                    oq      <= op_f;
                    q_n     <= op_n;
                    q_rd    <= a_rd;
                    q_rs1   <= a_rs1;
                    q_rs2   <= a_rs2;
                    q_rs3   <= a_rs3;
                    q_s     <= f_s;
                    ri      <= 32'd0;
                    ti      <= 32'd0;
                    ch      <= {CW{1'b0}};
                    m_run   <= NEG_INF;
                    idx_run <= 32'd0;
                    rows_in <= 32'd0;
                    rows_more <= (op_n != 32'd0);
                    rows_last <= (op_n == 32'd1);
                    pos_end <= (a_rs3 == 32'd0);
                    rows_out <= 32'd0;
                    s_acc   <= 32'd0;
                    b_v     <= 1'b0;
                    rd_pend <= 1'b0;
                    w_pend  <= 1'b0;
                    tk_rank <= 32'd0;
                    pos     <= 32'd0;
                    pos1    <= 33'd1;
                    tr_sa   <= a_rs1[VAW-1:0];
                    tr_da   <= a_rd[VAW-1:0];
                    gap     <= 6'd63;
                    gap_ok  <= 1'b1;                      // 63 >= any 6-bit gap_rp
                    if (start) case (op)
                        `DNPU_OP_V_FILL_VF:      mode <= M_FILL;
                        `DNPU_OP_V_RED_MAX, `DNPU_OP_V_RED_MAX_IDX, `DNPU_OP_V_RED_SUM,
                        `DNPU_OP_H_SAMPLE_FUSED, `DNPU_OP_H_SAMPLE_FUSED_N: mode <= M_PIPE;
                        `DNPU_OP_S_MAP_V_FP, `DNPU_OP_V_THRESH_MASK,
                        `DNPU_OP_V_MASK_FP, `DNPU_OP_V_TRANS: mode <= M_WORD;
                        `DNPU_OP_V_TOPK_MASK, `DNPU_OP_V_TOPK_MASK_V: mode <= M_TKJ;
                        `DNPU_OP_V_SELECT_INT:   mode <= M_SEL0;
                        default:                 mode <= M_ERD;
                    endcase
                end

                // -- elementwise
                M_ERD:  mode <= o_vv ? M_ERDB : M_ELAT;
                M_ERDB: begin
                    ra   <= vs_rdata;
                    mode <= M_ELAT;
                end
                M_ELAT: begin
                    if (o_vv) rb <= vs_rdata;
                    else      ra <= vs_rdata;
                    ch   <= {CW{1'b0}};
                    rc_k <= 5'd0;
                    mode <= M_ECH;
                end
                M_ECH: begin
                    if (o_reci & (rc_k != RC_LAST)) begin
                        rc_k <= rc_k + 5'd1;
                    end else begin
                        rc_k <= 5'd0;
                        ch <= ch + 1'b1;
                        if (ch == C_LAST) begin
                            mode <= (ew_lat == 4'd0) ? M_EWR : M_EDRN;
                            drn  <= ew_lat - 4'd1;
                        end
                    end
                end
                M_EDRN: begin
                    drn <= drn - 4'd1;
                    if (drn == 4'd0)
                        mode <= M_EWR;
                end
                M_EWR: begin
                    ri   <= ri + 32'd1;
                    mode <= (ri + 32'd1 == q_n) ? M_DONE : M_ERD;
                end
                M_FILL: begin
                    ri <= ri + 32'd1;
                    if (ri + 32'd1 == q_n)
                        mode <= M_DONE;
                end

                // -- row pipeline
                M_PIPE: begin
                    rd_pend <= pipe_rd;
                    if (pipe_rd)
                        ri <= ri + 32'd1;
                    if (in_go) begin
                        rows_in   <= rows_in + 32'd1;
                        rows_more <= (rows_in + 32'd1 != q_n);
                        rows_last <= (rows_in + 32'd2 == q_n);
                    end
                    if (mt_go) begin
                        {m_run, m_old, idx_run} <= take_f(mt_c, mt_lane, m_run, idx_run, mt_rown);
                        ra      <= mt_row;
                    end
                    b_v <= b_v_n & pipe_sum;
                    ch  <= ch_n;
                    gap    <= gap_n;
                    gap_ok <= gap_ok_n;
                    // S1
                    s1_v    <= (b_v & o_rsum) | b1_v;
                    s1_last <= o_fuse ? b1_last : (ch == C_LAST);
                    if (b_v & o_rsum)
                        for (b = 0; b < P; b = b + 1)
                            s1_d[32*b +: 32] <= {ca[16*b +: 16], 16'd0};
                    if (b1_v) begin                 // l - m' (m' of the chunk's row: m_run at issue)
                        for (b = 0; b < P; b = b + 1)
                            s1_d[32*b +: 32] <= ln_add[32*b +: 32];
                        s1_rd <= s1_rd_y;
                    end
                    // S2
                    s2_v    <= (s1_v & o_rsum) | c1_v;
                    s2_last <= o_fuse ? c1_last : s1_last;
                    if (s1_v & o_rsum)
                        s2_e <= s1_d;
                    if (c1_v) begin
                        for (b = 0; b < P; b = b + 1)
                            s2_e[32*b +: 32] <= ln_exp[32*b +: 32];
                        s2_r <= s2_r_y;
                    end
                    // S3 (HDL cycles of heap levels after S2)
                    s3_v    <= hd_v[HDL];
                    s3_last <= hd_last[HDL];
                    if (hd_v[HDL]) begin
                        s3_sum <= s3_in;
                        s3_r   <= hd_r[32*HDL +: 32];
                    end
                    // S5
                    if (s5_v) begin
                        s_acc <= s5_y;
                        rows_out <= rows_out + 32'd1;
                    end
                    if (o_fn ? fn_fin
                             : o_rmax ? (mt_go & mt_last)
                             : (s5_v & (rows_out + 32'd1 == q_n)))
                        mode <= M_DONE;
                    if (fn_end) begin               // next position: m, idx, s restart
                        pos      <= pos1[31:0];
                        pos1     <= pos1 + 33'd1;
                        pos_end  <= (pos1 == {1'b0, q_rs3});
                        rows_more <= (q_n != 32'd0);
                        rows_last <= (q_n == 32'd1);
                        m_run    <= NEG_INF;
                        idx_run  <= 32'd0;
                        rows_in  <= 32'd0;
                        rows_out <= 32'd0;
                        s_acc    <= 32'd0;
                    end
                end

                // -- word engines
                M_WORD: begin
                    w_pend <= ri < w_total;
                    w_j    <= ri;
                    v_lane <= ri[LOG_VL +: LOG_VL];          // V_TRANS: r of element ri
                    if (ri < w_total) begin
                        ri <= ri + 32'd1;
                        tr_sa <= (ri[LOG_VL-1:0] == {LOG_VL{1'b1}}) ? q_rs1[VAW-1:0] : tr_sa + q_rs2[VAW-1:0];
                    end
                    if ((o_map | o_tr) && w_pend)
                        wrow[16*w_j[LOG_VL-1:0] +: 16] <= o_tr ? v_elem : ((w_j < q_n) ? map16 : NEG_INF[31:16]);
                    if (o_tr && w_pend && (w_j[LOG_VL-1:0] == {LOG_VL{1'b1}}))
                        tr_da <= tr_da + q_rs3[VAW-1:0];
                    if (w_pend && w_j + 32'd1 == w_total)
                        mode <= M_DONE;
                end
                M_TKJ: begin
                    v_lane <= ri[LOG_VL-1:0];
                    ti     <= 32'd0;
                    w_pend <= 1'b0;
                    mode   <= M_TKI;
                end
                M_TKI: begin
                    if (!w_pend && !c_pend) begin
                        tk_vj   <= w_val;                    // element j arrived
                        tk_rank <= 32'd0;
                        rk_lt0  <= (32'd0 < q_rs2);
                        rk_lt1  <= (32'd1 < q_rs2);
                    end else if (c_pend) begin
                        tk_rank <= rank_n;
                        rk_lt0  <= rank_inc ? rk_c1 : rk_lt0;        // rank_n < k
                        rk_lt1  <= rank_inc ? rk_c2 : rk_c1;         // rank_n + 1 < k
                    end
                    w_pend <= ti < q_n;
                    w_j    <= ti;
                    v_lane <= ti[LOG_VL-1:0];
                    if (ti < q_n)
                        ti <= ti + 32'd1;
                    if (c_pend && tk_last) begin
                        ri <= ri + 32'd1;
                        if (ri + 32'd1 == q_n) begin
                            mode <= M_DONE;
                        end else begin
                            mode <= M_TKJ;
                        end
                    end
                end
                M_SEL0: mode <= M_SEL1;
                M_SEL1: begin
                    sel_m <= is_rdata != 32'd0;
                    mode  <= M_SEL2;
                end
                M_SEL2: begin
                    ri   <= ri + 32'd1;
                    mode <= (ri + 32'd1 == q_n) ? M_DONE : M_SEL0;
                end
                M_DONE: begin
                    done  <= 1'b1;
                    res_f <= o_rmax ? m_run : s_acc;
                    res_x <= idx_run;
                    mode  <= M_IDLE;
                end
                default: mode <= M_IDLE;
            endcase
            if (wr_v)
                for (b = 0; b < P; b = b + 1)
                    wrow[16*(P*wr_ch + b) +: 16] <= o_reci ? ew_rc[16*b +: 16]
                                                  : o_bit ? ln_bit[16*b +: 16]
                                                  : o_exp ? fp_narrow_f(ew_exp[32*b +: 32])
                                                  : (o_mul ? ew_mul[32*b+16 +: 16] : ew_add[32*b+16 +: 16]);
            if (pipe_clr) begin
                s1_v <= 1'b0;
                s2_v <= 1'b0;
                s3_v <= 1'b0;
            end
        end
    end

    // The core range-checked every base (base + n within the SRAM), so the
    // address bits above each SRAM's width are zero or irrelevant.
    wire unused_ok = &{1'b0, s2_last, s1_last, q_rd, q_rs1, q_rs2, r_busy};
endmodule

`default_nettype wire
