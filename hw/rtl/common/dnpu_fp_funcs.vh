// dnpu_fp_funcs.vh: the FP arithmetic of docs/NUMERICS.md as Verilog functions, the
// single home of that logic. `include it inside a module body (no include guard: every
// module that uses the functions needs its own copy).
//
// Why functions: the hw/rtl/fp modules are thin wrappers that call them under an enable
// (Verilator then skips an idle unit's arithmetic), the core's scalar FP unit calls them
// in one case statement, and the function bodies are the one copy of the logic.
//
// Every function follows "the rule" of NUMERICS section 2: DAZ read, one RNE rounding
// with an unbounded exponent, then overflow / FTZ, canonical NaN 0x7FC00000.

`include "dnpu_exp_table.vh"

// ---- fp_seg_lo_f: the pipelined units' (hw/rtl/fp) register placement ----------------------
// A unit of n steps with a register after step k where bit k of cuts is set runs in
// segments; segment j begins at the step returned (segment 0 at step 0, and the segment
// after the last, j = number of cuts + 1, at n).
function integer fp_seg_lo_f;
    input [31:0] sl_cuts;
    input integer sl_n;
    input integer sl_j;
    integer sl_k, sl_c;
    begin
        fp_seg_lo_f = (sl_j == 0) ? 0 : sl_n;
        sl_c = 0;
        for (sl_k = 0; sl_k < 31; sl_k = sl_k + 1)
            if (sl_k < sl_n - 1 && sl_cuts[sl_k]) begin
                sl_c = sl_c + 1;
                if (sl_c == sl_j)
                    fp_seg_lo_f = sl_k + 1;
            end
    end
endfunction

// ---- fp_add_f: fp32(a + b), or fp32(a - b) when sub; bf16 rounds once to 8 bits -------
// (S_ADD_FP/S_SUB_FP, V_RED_SUM's adds, V_ADD/SUB_* with bf16 = 1: y[15:0] = 0.)
// Why 3 bits below the significand give the exactly rounded sum: the smaller operand is
// aligned into a 27-bit field (24 bits + 3 below) and every bit shifted out below it is
// ORed into the field's LSB ("jamming"). An inexact aligned operand then lies strictly
// between the same two even field values as the exact one. After normalization the
// round bit sits at field bit 1 or higher (bit 17 or higher for BF16), so every rounding
// boundary is an even field value: an effective subtraction with exponent gap >= 2 loses
// at most one leading bit, and with gap <= 1 nothing is shifted out (a deep cancellation
// is exact). The jammed sum therefore rounds like the exact sum. The rounded exponent is
// a 10-bit two's-complement value, so a result that rounds up to 2^-126 survives and only
// a rounded magnitude below 2^-126 is flushed.
// The unit splits into FP_ADD_STEPS steps that pass a packed state of FP_ADD_ST_W bits,
// so that hw/rtl/fp/dnpu_fp32_add.v can register the state between any two of them:
//   step 0: DAZ, special operands, the larger magnitude, the exponent gap
//   step 1: alignment with jamming, the 28-bit sum
//   step 2: normalization (the leading-zero count), the exact-zero test
//   step 3: rounding, the exponent, overflow / FTZ, the special results
// fp_add_f is their composition; fp_add_step_f(k, st) is step k, fp_add_steps_f(lo, hi,
// st) steps lo .. hi-1. State layouts (bit 0 first), after:
//   in_f:  a[31:0], b[63:32], sub[64], bf16[65]
//   step0: sig_x[23:0], sig_n[47:24], d5[52:48], ex[60:53], sx[61], eff_sub[62],
//          zsign[63], nan[64], inf[65], inf_sign[66], bf16[67]
//   step1: sum[27:0], ex[35:28], sx[36], zsign[37], nan[38], inf[39], inf_sign[40], bf16[41]
//   step2: norm[26:0], lz[31:27], ex[39:32], sx[40], zsign[41], nan[42], inf[43],
//          inf_sign[44], bf16[45], zero[46]
//   step3: y[31:0]
`define FP_ADD_STEPS 4
`define FP_ADD_ST_W  68

// a step reads the fields of its state layout, not every bit
/* verilator lint_off UNUSEDSIGNAL */
function [`FP_ADD_ST_W-1:0] fp_add_in_f;
    input [31:0] ai_a;
    input [31:0] ai_b;
    input        ai_sub;
    input        ai_bf16;
    fp_add_in_f = {2'd0, ai_bf16, ai_sub, ai_b, ai_a};
endfunction

function [`FP_ADD_ST_W-1:0] fp_add_s0_f;
    input [`FP_ADD_ST_W-1:0] a0_st;
    reg [31:0] a0_a, a0_b;
    reg        a0_sa, a0_sb, a0_a_max, a0_b_max, a0_a_nan, a0_b_nan, a0_a_inf, a0_b_inf, a0_eff_sub, a0_swap, a0_sx;
    reg [30:0] a0_ma, a0_mb, a0_mx, a0_mn;
    reg [7:0]  a0_dexp;
    reg [4:0]  a0_d5;
    begin
        a0_a       = a0_st[31:0];
        a0_b       = a0_st[63:32];
        a0_sa      = a0_a[31];
        a0_sb      = a0_b[31] ^ a0_st[64];
        a0_a_max   = &a0_a[30:23];
        a0_b_max   = &a0_b[30:23];
        a0_a_nan   = a0_a_max & (|a0_a[22:0]);
        a0_b_nan   = a0_b_max & (|a0_b[22:0]);
        a0_a_inf   = a0_a_max & ~(|a0_a[22:0]);
        a0_b_inf   = a0_b_max & ~(|a0_b[22:0]);
        a0_eff_sub = a0_sa ^ a0_sb;
        // DAZ: a zero exponent field reads as magnitude 0; {exponent, fraction} orders
        // magnitudes, so one compare picks the larger operand.
        a0_ma    = (|a0_a[30:23]) ? a0_a[30:0] : 31'd0;
        a0_mb    = (|a0_b[30:23]) ? a0_b[30:0] : 31'd0;
        a0_swap  = a0_mb > a0_ma;
        a0_mx    = a0_swap ? a0_mb : a0_ma;
        a0_mn    = a0_swap ? a0_ma : a0_mb;
        a0_sx    = a0_swap ? a0_sb : a0_sa;                 // the sign of any nonzero result
        a0_dexp  = a0_mx[30:23] - a0_mn[30:23];
        a0_d5    = (|a0_dexp[7:5]) ? 5'd31 : a0_dexp[4:0];   // a gap >= 27 shifts everything out
        fp_add_s0_f = {a0_st[65], a0_a_inf ? a0_sa : a0_sb, a0_a_inf | a0_b_inf,
                       a0_a_nan | a0_b_nan | (a0_a_inf & a0_b_inf & a0_eff_sub), a0_sa & a0_sb,
                       a0_eff_sub, a0_sx, a0_mx[30:23], a0_d5,
                       |a0_mn[30:23], a0_mn[22:0], |a0_mx[30:23], a0_mx[22:0]};
    end
endfunction

function [`FP_ADD_ST_W-1:0] fp_add_s1_f;
    input [`FP_ADD_ST_W-1:0] a1_st;
    reg [26:0] a1_sig_x, a1_sig_n, a1_al;
    reg [4:0]  a1_d5;
    reg        a1_lost, a1_eff_sub;
    reg [27:0] a1_aln, a1_sum;
    begin
        a1_sig_x   = {a1_st[23:0], 3'b000};
        a1_sig_n   = {a1_st[47:24], 3'b000};
        a1_d5      = a1_st[52:48];
        a1_eff_sub = a1_st[62];
        a1_al      = a1_sig_n >> a1_d5;
        a1_lost    = |(a1_sig_n & ~({27{1'b1}} << a1_d5));
        a1_aln     = {1'b0, a1_al[26:1], a1_al[0] | a1_lost};
        a1_sum     = {1'b0, a1_sig_x} + (a1_aln ^ {28{a1_eff_sub}}) + {27'd0, a1_eff_sub};   // x - n = x + ~n + 1
        fp_add_s1_f = {26'd0, a1_st[67:63], a1_st[61:53], a1_sum};
    end
endfunction

function [`FP_ADD_ST_W-1:0] fp_add_s2_f;
    input [`FP_ADD_ST_W-1:0] a2_st;
    reg [27:0] a2_sum, a2_n1, a2_n2, a2_n3, a2_n4;
    reg        a2_z16, a2_z8, a2_z4, a2_z2, a2_z1;
    reg [26:0] a2_norm;
    begin
        a2_sum   = a2_st[27:0];
        // normalize in five stages; the stage decisions are the leading-zero count
        a2_z16   = ~(|a2_sum[27:12]);
        a2_n1    = a2_z16 ? {a2_sum[11:0], 16'd0} : a2_sum;
        a2_z8    = ~(|a2_n1[27:20]);
        a2_n2    = a2_z8 ? {a2_n1[19:0], 8'd0} : a2_n1;
        a2_z4    = ~(|a2_n2[27:24]);
        a2_n3    = a2_z4 ? {a2_n2[23:0], 4'd0} : a2_n2;
        a2_z2    = ~(|a2_n3[27:26]);
        a2_n4    = a2_z2 ? {a2_n3[25:0], 2'd0} : a2_n3;
        a2_z1    = ~a2_n4[27];
        a2_norm  = a2_z1 ? {a2_n4[25:0], 1'b0} : a2_n4[26:0];   // the bits below the leading one
        fp_add_s2_f = {21'd0, a2_sum == 28'd0, a2_st[41:28], a2_z16, a2_z8, a2_z4, a2_z2, a2_z1, a2_norm};
    end
endfunction

function [`FP_ADD_ST_W-1:0] fp_add_s3_f;
    input [`FP_ADD_ST_W-1:0] a3_st;
    reg [26:0] a3_norm;
    reg [4:0]  a3_lz;
    reg [7:0]  a3_ex;
    reg        a3_sx, a3_zs, a3_nan, a3_inf, a3_inf_s, a3_bf16, a3_zero, a3_up32, a3_up16, a3_uf, a3_of;
    reg [23:0] a3_frt, a3_inc, a3_frr;
    reg [9:0]  a3_er;
    reg [31:0] a3_y;
    begin
        {a3_zero, a3_bf16, a3_inf_s, a3_inf, a3_nan, a3_zs, a3_sx, a3_ex, a3_lz, a3_norm} = a3_st[46:0];
        a3_up32  = a3_norm[3] & ((|a3_norm[2:0]) | a3_norm[4]);
        a3_up16  = a3_norm[19] & ((|a3_norm[18:0]) | a3_norm[20]);
        a3_frt   = a3_bf16 ? {1'b0, a3_norm[26:20], 16'd0} : {1'b0, a3_norm[26:4]};
        a3_inc   = a3_bf16 ? {7'd0, a3_up16, 16'd0} : {23'd0, a3_up32};
        a3_frr   = a3_frt + a3_inc;                              // frr[23]: carry to 2.0
        a3_er    = {2'b00, a3_ex} + 10'd1 + {9'd0, a3_frr[23]} - {5'd0, a3_lz};
        a3_uf    = a3_er[9] | (a3_er == 10'd0);
        a3_of    = ~a3_er[9] & (a3_er >= 10'd255);
        if (a3_nan)
            a3_y = 32'h7FC0_0000;
        else if (a3_inf)
            a3_y = {a3_inf_s, 31'h7F80_0000};
        else if (a3_zero)
            a3_y = {a3_zs, 31'd0};                    // exact zero: +0 unless (-0) + (-0)
        else if (a3_uf)
            a3_y = {a3_sx, 31'd0};
        else if (a3_of)
            a3_y = {a3_sx, 31'h7F80_0000};
        else
            a3_y = {a3_sx, a3_er[7:0], a3_frr[22:0]};       // a carry leaves a zero fraction
        fp_add_s3_f = {36'd0, a3_y};
    end
endfunction

function [`FP_ADD_ST_W-1:0] fp_add_step_f;
    input integer            as_k;
    input [`FP_ADD_ST_W-1:0] as_st;
    case (as_k)
        0:       fp_add_step_f = fp_add_s0_f(as_st);
        1:       fp_add_step_f = fp_add_s1_f(as_st);
        2:       fp_add_step_f = fp_add_s2_f(as_st);
        default: fp_add_step_f = fp_add_s3_f(as_st);
    endcase
endfunction

// steps lo .. hi-1 (constant bounds, so that both simulators and Yosys unroll the loop)
function [`FP_ADD_ST_W-1:0] fp_add_steps_f;
    input integer            ar_lo;
    input integer            ar_hi;
    input [`FP_ADD_ST_W-1:0] ar_st;
    integer ar_k;
    begin
        fp_add_steps_f = ar_st;
        for (ar_k = 0; ar_k < `FP_ADD_STEPS; ar_k = ar_k + 1)
            if (ar_k >= ar_lo && ar_k < ar_hi)
                fp_add_steps_f = fp_add_step_f(ar_k, fp_add_steps_f);
    end
endfunction

function [31:0] fp_add_out_f;
    input [`FP_ADD_ST_W-1:0] ao_st;
    fp_add_out_f = ao_st[31:0];
endfunction

/* verilator lint_on UNUSEDSIGNAL */

function [31:0] fp_add_f;
    input [31:0] aa_a;
    input [31:0] aa_b;
    input        aa_sub;
    input        aa_bf16;
    fp_add_f = fp_add_out_f(fp_add_s3_f(fp_add_s2_f(fp_add_s1_f(fp_add_s0_f(
                   fp_add_in_f(aa_a, aa_b, aa_sub, aa_bf16))))));
endfunction

// ---- fp_mul_f: fp32(a * b); bf16 rounds once to 8 bits (S_MUL_FP, V_MUL_*, EXP's t) ------
// The 24x24 significand product is exact (48 bits) and rounded once; the rounded exponent
// is 10-bit two's complement, so a product that rounds up to 2^-126 is kept.
// Two steps, FP_MUL_ST_W bits of state between them (hw/rtl/fp/dnpu_fp32_mul.v):
//   step 0: the significand product and the operand classes; a register on its state
//           takes the product into the DSP slices' own registers
//   step 1: rounding, the exponent, overflow / FTZ, the special results
// State layouts (bit 0 first), after:
//   in_f:  a[31:0], b[63:32], bf16[64]
//   step0: prod[47:0], es[57:48] (ea + eb - 127, 10-bit two's complement), sy[58],
//          nan[59], inf[60], zero[61], bf16[62]
//   step1: y[31:0]
`define FP_MUL_STEPS 2
`define FP_MUL_ST_W  65

// a step reads the fields of its state layout, not every bit
/* verilator lint_off UNUSEDSIGNAL */
function [`FP_MUL_ST_W-1:0] fp_mul_in_f;
    input [31:0] mi_a;
    input [31:0] mi_b;
    input        mi_bf16;
    fp_mul_in_f = {mi_bf16, mi_b, mi_a};
endfunction

function [`FP_MUL_ST_W-1:0] fp_mul_s0_f;
    input [`FP_MUL_ST_W-1:0] m0_st;
    reg [31:0] m0_a, m0_b;
    reg        m0_a_max, m0_b_max, m0_a_zero, m0_b_zero, m0_a_nan, m0_b_nan, m0_a_inf, m0_b_inf;
    reg [47:0] m0_prod;
    reg [9:0]  m0_es;
    begin
        m0_a      = m0_st[31:0];
        m0_b      = m0_st[63:32];
        m0_a_max  = &m0_a[30:23];
        m0_b_max  = &m0_b[30:23];
        m0_a_zero = ~(|m0_a[30:23]);                  // DAZ
        m0_b_zero = ~(|m0_b[30:23]);
        m0_a_nan  = m0_a_max & (|m0_a[22:0]);
        m0_b_nan  = m0_b_max & (|m0_b[22:0]);
        m0_a_inf  = m0_a_max & ~(|m0_a[22:0]);
        m0_b_inf  = m0_b_max & ~(|m0_b[22:0]);
        // zero, Inf and NaN operands are overridden in step 1, so the hidden bit is 1
        m0_prod   = {1'b1, m0_a[22:0]} * {1'b1, m0_b[22:0]};
        m0_es     = {2'b00, m0_a[30:23]} + {2'b00, m0_b[30:23]} - 10'd127;
        fp_mul_s0_f = {2'd0, m0_st[64], m0_a_zero | m0_b_zero, m0_a_inf | m0_b_inf,
                       m0_a_nan | m0_b_nan | (m0_a_inf & m0_b_zero) | (m0_b_inf & m0_a_zero),
                       m0_a[31] ^ m0_b[31], m0_es, m0_prod};
    end
endfunction

function [`FP_MUL_ST_W-1:0] fp_mul_s1_f;
    input [`FP_MUL_ST_W-1:0] m1_st;
    reg        m1_sy, m1_nan, m1_inf, m1_zero, m1_bf16;
    reg        m1_hi, m1_g, m1_sticky, m1_up32, m1_up16, m1_uf, m1_of;
    reg [47:0] m1_prod;
    reg [22:0] m1_fr;
    reg [23:0] m1_frt, m1_inc, m1_frr;
    reg [9:0]  m1_es, m1_er;
    reg [31:0] m1_y;
    begin
        {m1_bf16, m1_zero, m1_inf, m1_nan, m1_sy, m1_es, m1_prod} = m1_st[62:0];
        m1_hi     = m1_prod[47];
        m1_fr     = m1_hi ? m1_prod[46:24] : m1_prod[45:23];    // below the leading one
        m1_g      = m1_hi ? m1_prod[23] : m1_prod[22];
        m1_sticky = (|m1_prod[21:0]) | (m1_hi & m1_prod[22]);
        m1_up32   = m1_g & (m1_sticky | m1_fr[0]);
        m1_up16   = m1_fr[15] & ((|m1_fr[14:0]) | m1_g | m1_sticky | m1_fr[16]);
        m1_frt    = m1_bf16 ? {1'b0, m1_fr[22:16], 16'd0} : {1'b0, m1_fr};
        m1_inc    = m1_bf16 ? {7'd0, m1_up16, 16'd0} : {23'd0, m1_up32};
        m1_frr    = m1_frt + m1_inc;                          // frr[23]: carry to 2.0
        m1_er     = m1_es + {9'd0, m1_hi} + {9'd0, m1_frr[23]};
        m1_uf     = m1_er[9] | (m1_er == 10'd0);
        m1_of     = ~m1_er[9] & (m1_er >= 10'd255);
        if (m1_nan)
            m1_y = 32'h7FC0_0000;
        else if (m1_inf)
            m1_y = {m1_sy, 31'h7F80_0000};
        else if (m1_zero | m1_uf)
            m1_y = {m1_sy, 31'd0};
        else if (m1_of)
            m1_y = {m1_sy, 31'h7F80_0000};
        else
            m1_y = {m1_sy, m1_er[7:0], m1_frr[22:0]};
        fp_mul_s1_f = {33'd0, m1_y};
    end
endfunction

function [`FP_MUL_ST_W-1:0] fp_mul_step_f;
    input integer            ms_k;
    input [`FP_MUL_ST_W-1:0] ms_st;
    case (ms_k)
        0:       fp_mul_step_f = fp_mul_s0_f(ms_st);
        default: fp_mul_step_f = fp_mul_s1_f(ms_st);
    endcase
endfunction

function [`FP_MUL_ST_W-1:0] fp_mul_steps_f;
    input integer            mr_lo;
    input integer            mr_hi;
    input [`FP_MUL_ST_W-1:0] mr_st;
    integer mr_k;
    begin
        fp_mul_steps_f = mr_st;
        for (mr_k = 0; mr_k < `FP_MUL_STEPS; mr_k = mr_k + 1)
            if (mr_k >= mr_lo && mr_k < mr_hi)
                fp_mul_steps_f = fp_mul_step_f(mr_k, fp_mul_steps_f);
    end
endfunction

function [31:0] fp_mul_out_f;
    input [`FP_MUL_ST_W-1:0] mo_st;
    fp_mul_out_f = mo_st[31:0];
endfunction

/* verilator lint_on UNUSEDSIGNAL */

function [31:0] fp_mul_f;
    input [31:0] mm_a;
    input [31:0] mm_b;
    input        mm_bf16;
    fp_mul_f = fp_mul_out_f(fp_mul_s1_f(fp_mul_s0_f(fp_mul_in_f(mm_a, mm_b, mm_bf16))));
endfunction

// ---- fp_cmp_f: {gt, eq} of a vs b in NUMERICS section 5's total order ---------------------
// DAZ, -0 == +0, NaN above every number and equal to every NaN. One unsigned compare of
// the raw magnitudes serves every sign combination; a zero counts as non-negative.
function [1:0] fp_cmp_f;
    input [31:0] cc_a;
    input [31:0] cc_b;
    reg cc_a_nan, cc_b_nan, cc_a_z, cc_b_z, cc_m_gt, cc_m_eq, cc_a_pos, cc_b_pos, cc_n_gt, cc_n_eq;
    begin
        cc_a_nan = (&cc_a[30:23]) & (|cc_a[22:0]);
        cc_b_nan = (&cc_b[30:23]) & (|cc_b[22:0]);
        cc_a_z   = ~(|cc_a[30:23]);
        cc_b_z   = ~(|cc_b[30:23]);
        cc_m_gt  = ~cc_a_z & (cc_b_z | (cc_a[30:0] > cc_b[30:0]));
        cc_m_eq  = cc_a_z ? cc_b_z : (~cc_b_z & (cc_a[30:0] == cc_b[30:0]));
        cc_a_pos = ~cc_a[31] | cc_a_z;
        cc_b_pos = ~cc_b[31] | cc_b_z;
        cc_n_gt  = cc_a_pos ? (~cc_b_pos | cc_m_gt) : (~cc_b_pos & ~cc_m_gt & ~cc_m_eq);
        cc_n_eq  = cc_m_eq & (cc_a_pos == cc_b_pos);
        fp_cmp_f = {cc_a_nan ? ~cc_b_nan : (~cc_b_nan & cc_n_gt), cc_a_nan ? cc_b_nan : (~cc_b_nan & cc_n_eq)};
    end
endfunction

// ---- fp_canon_f: an FP32 operand's DAZ-read value (NUMERICS section 5) ------------------
// A subnormal reads as the zero of its sign, a NaN as the canonical NaN.
function [31:0] fp_canon_f;
    input [31:0] cn_c;
    begin
        if ((&cn_c[30:23]) & (|cn_c[22:0]))
            fp_canon_f = 32'h7FC0_0000;
        else if (~(|cn_c[30:23]))
            fp_canon_f = {cn_c[31], 31'd0};
        else
            fp_canon_f = cn_c;
    end
endfunction

// ---- fp_narrow_f: FP32 -> BF16 (DAZ, RNE, FTZ, overflow to Inf, canonical NaN) -----------
// A normal input keeps its exponent field, so adding the rounding increment to the top
// half carries into the exponent (and to Inf) by itself; a normal input never rounds
// below 2^-126, so FTZ only concerns DAZ inputs.
function [15:0] fp_narrow_f;
    input [31:0] nn_a;
    reg nn_exp_max, nn_up;
    begin
        nn_exp_max = &nn_a[30:23];
        nn_up      = nn_a[15] & ((|nn_a[14:0]) | nn_a[16]);
        if (nn_exp_max & (|nn_a[22:0]))
            fp_narrow_f = 16'h7FC0;
        else if (nn_exp_max)
            fp_narrow_f = nn_a[31:16];                 // +-Inf: the fraction is zero
        else if (~(|nn_a[30:23]))
            fp_narrow_f = {nn_a[31], 15'd0};           // DAZ
        else
            fp_narrow_f = nn_a[31:16] + {15'd0, nn_up};
    end
endfunction

// ---- fp_exp_f: EXP(x), FP32 -> FP32 (NUMERICS section 3) ------------------------------------
//   t = fp32(x * LOG2E); NaN -> NaN; t >= 128 -> +Inf; t < -126 -> +0; otherwise with
//   j = floor(64 t), n = j >> 6, i = j & 63, r = 64 t - j:
//   q = fp32(D[i] * r), p = fp32(T[i] + q), y = p * 2^n.   (T/D: dnpu_exp_table.vh)
// Why these widths:
//  * |t| >= 2^-6 (t's exponent field >= 121): 64 t has no bits below 2^-23, so 64 t is
//    exact as a 14.23 two's-complement fixed-point number and j, i, n and r = k * 2^-23
//    (k < 2^23) fall out of it.
//  * |t| < 2^-6: j = 0 for t >= 0 (r = 64 t) and j = -1 for t < 0 (r = 1 - 64|t|, which
//    can have ~140 bits). Following the section 3 hardware note, D * r is formed as
//    D * 64 t - D * j: one exact product P = d * m of t's significand, scaled, minus
//    D * j = -D when j = -1.
//  * Every D[i] is a multiple of 2^-23 below 2^-5 (d_int < 2^18), so q is built in a
//    fixed-point frame with LSB 2^-52 (47 bits, q < 2^-5). Bits of the scaled P below the
//    frame are ORed into its LSB (jamming); that is exact enough wherever q matters: for
//    q >= 2^-26 q's round bit is at frame bit 2 or above, so the jammed and exact q round
//    alike; for a smaller q, p = T[i] whatever q rounds to (q < 2^-24 never reaches T's
//    half-ulp), and FTZ of a q below 2^-126 cannot matter either.
//  * q is rounded to 24 significant bits in place: a smear of its leading one gives the
//    masks of its round bit and sticky bits, no normalizing shifter.
//  * T[i] + q <= T[i] + D[i] = T[i+1] <= 2 exactly, so p in [1, 2]; p's bits are
//    (126 << 23) + p * 2^23, and adding n to the exponent field gives y (p = 2 at n = 127
//    becomes 0x7F800000, +Inf, by the same carry). y >= 2^-126 always.
// D is stored less 2^16 so that D * m is a 17 x 24 product (one DSP48) plus m << 16.
//
// Seven steps, FP_EXP_ST_W bits of state between them (hw/rtl/fp/dnpu_fp_exp.v):
//   step 0, 1: fp_mul_f's steps for t = x * LOG2E (the product; its rounding)
//   step 2: t's classes, 64 t in fixed point, i, n, the multiplier, the small-t shift
//   step 3: the table read and D * m (a register on its state lands in the DSP slice)
//   step 4: q in the 2^-52 frame (+ m << 16, the small-t shift with jamming, 1 - ...)
//   step 5: q rounded to 24 significant bits
//   step 6: p = T[i] + q rounded, y = p * 2^n, the special results
// State layouts (bit 0 first), after:
//   in_f, step 0, step 1: fp_mul_f's (in_f: fp_mul_in_f(x, LOG2E, 0); step 1: t[31:0])
//   step2: mult[23:0], idx[29:24], n[37:30], rs[43:38], t_fix[44], t_negsm[45], spc[47:46]
//   step3: dm[40:0] (d_lo * mult), mult[64:41], d_lo[81:65], t_frac[104:82], n[112:105],
//          rs[118:113], t_fix[119], t_negsm[120], spc[122:121]
//   step4: qfix[46:0], t_frac[69:47], n[77:70], spc[79:78]
//   step5: qr[46:0], t_frac[69:47], n[77:70], spc[79:78]
//   step6: y[31:0]
// spc: 0 a number, 1 NaN, 2 +Inf (t >= 128), 3 +0 (t < -126).
`define FP_EXP_STEPS 7
`define FP_EXP_ST_W  123

// a step reads the fields of its state layout, not every bit
/* verilator lint_off UNUSEDSIGNAL */
function [`FP_EXP_ST_W-1:0] fp_exp_in_f;
    input [31:0] ei_x;
    fp_exp_in_f = {{(`FP_EXP_ST_W-`FP_MUL_ST_W){1'b0}}, fp_mul_in_f(ei_x, 32'h3FB8_AA3B, 1'b0)};   // LOG2E
endfunction

function [`FP_EXP_ST_W-1:0] fp_exp_s2_f;
    input [`FP_EXP_ST_W-1:0] e2_st;
    reg [31:0] e2_t;
    reg        e2_ts, e2_t_nan, e2_t_big, e2_t_small, e2_t_fix, e2_t_negsm;
    reg [7:0]  e2_te, e2_n;
    reg [22:0] e2_tf;
    reg [3:0]  e2_sh;
    reg [35:0] e2_mag;
    reg [36:0] e2_x64;
    reg [5:0]  e2_idx, e2_rs;
    reg [6:0]  e2_rs7;
    reg [23:0] e2_mult;
    reg [1:0]  e2_spc;
    begin
        e2_t       = e2_st[31:0];
        e2_ts      = e2_t[31];
        e2_te      = e2_t[30:23];
        e2_tf      = e2_t[22:0];
        e2_t_nan   = (&e2_te) & (|e2_tf);
        e2_t_big   = ~e2_ts & (e2_te >= 8'd134);                     // t >= 128
        e2_t_small = e2_ts & ((e2_te > 8'd133) | ((e2_te == 8'd133) & (e2_tf > 23'h7C_0000)));  // t < -126
        e2_spc     = e2_t_nan ? 2'd1 : e2_t_big ? 2'd2 : e2_t_small ? 2'd3 : 2'd0;
        e2_t_fix   = e2_te >= 8'd121;                             // |t| >= 2^-6
        e2_t_negsm = e2_ts & (|e2_te) & ~e2_t_fix;                      // -2^-6 < t < 0
        // 64 t = {1, tf} * 2^(te - 144); for 121 <= te <= 133 shift left by te - 121
        e2_sh      = e2_te[3:0] - 4'd9;
        e2_mag     = {12'd0, 1'b1, e2_tf} << e2_sh;
        e2_x64     = e2_ts ? (37'd0 - {1'b0, e2_mag}) : {1'b0, e2_mag};   // j = x64[36:23]
        e2_idx     = e2_t_fix ? e2_x64[28:23] : (e2_t_negsm ? 6'd63 : 6'd0);
        e2_n       = e2_t_fix ? e2_x64[36:29] : (e2_t_negsm ? 8'hFF : 8'h00);
        e2_mult    = e2_t_fix ? {1'b0, e2_x64[22:0]} : {|e2_te, e2_tf};
        e2_rs7     = 7'd120 - e2_te[6:0];                         // >= 47 shifts everything out
        e2_rs      = e2_t_fix ? 6'd0 : (e2_rs7[6] ? 6'd63 : e2_rs7[5:0]);
        fp_exp_s2_f = {{(`FP_EXP_ST_W-48){1'b0}}, e2_spc, e2_t_negsm, e2_t_fix, e2_rs, e2_n, e2_idx, e2_mult};
    end
endfunction

function [`FP_EXP_ST_W-1:0] fp_exp_s3_f;
    input [`FP_EXP_ST_W-1:0] e3_st;
    reg [23:0] e3_mult;
    reg [39:0] e3_tab;
    reg [40:0] e3_dm;
    begin
        e3_mult = e3_st[23:0];
        e3_tab  = exp_table_f(e3_st[29:24]);
        // D[i] * r = P * 2^-46 (|t| >= 2^-6) or +-P * 2^(te - 167) (|t| < 2^-6), P =
        // D[i] * 2^23 * mult = d_lo * mult + mult << 16
        e3_dm   = e3_tab[16:0] * e3_mult;
        fp_exp_s3_f = {e3_st[47:30], e3_tab[39:17], e3_tab[16:0], e3_mult, e3_dm};
    end
endfunction

function [`FP_EXP_ST_W-1:0] fp_exp_s4_f;
    input [`FP_EXP_ST_W-1:0] e4_st;
    reg [40:0] e4_dm;
    reg [23:0] e4_mult;
    reg [16:0] e4_d_lo;
    reg [22:0] e4_t_frac;
    reg [7:0]  e4_n;
    reg [5:0]  e4_rs;
    reg        e4_t_fix, e4_t_negsm, e4_plost;
    reg [1:0]  e4_spc;
    reg [17:0] e4_d_int;
    reg [41:0] e4_prod;
    reg [46:0] e4_pext, e4_psh, e4_qfix;
    begin
        {e4_spc, e4_t_negsm, e4_t_fix, e4_rs, e4_n, e4_t_frac, e4_d_lo, e4_mult, e4_dm} = e4_st;
        e4_d_int   = {1'b0, e4_d_lo} + 18'h1_0000;                // D[i] * 2^23
        // in the 2^-52 frame: P << 6, or (P << 5) >> (120 - te)
        e4_prod    = {1'b0, e4_dm} + {2'b00, e4_mult, 16'd0};
        e4_pext    = e4_t_fix ? {e4_prod[40:0], 6'd0} : {e4_prod, 5'd0};
        e4_psh     = e4_pext >> e4_rs;
        e4_plost   = |(e4_pext & ~({47{1'b1}} << e4_rs));
        e4_qfix    = e4_t_negsm ? ({e4_d_int, 29'd0} - {e4_psh[46:1], e4_psh[0] | e4_plost})
                          : {e4_psh[46:1], e4_psh[0] | e4_plost};
        fp_exp_s4_f = {{(`FP_EXP_ST_W-80){1'b0}}, e4_spc, e4_n, e4_t_frac, e4_qfix};
    end
endfunction

function [`FP_EXP_ST_W-1:0] fp_exp_s5_f;
    input [`FP_EXP_ST_W-1:0] e5_st;
    reg [46:0] e5_qfix, e5_s1, e5_s2, e5_s4, e5_s8, e5_s16, e5_sm, e5_below, e5_stk_m, e5_half, e5_ulp, e5_qr;
    reg        e5_q_up;
    begin
        e5_qfix    = e5_st[46:0];
        // round q to 24 significant bits, RNE
        e5_s1      = e5_qfix | (e5_qfix >> 1);
        e5_s2      = e5_s1 | (e5_s1 >> 2);
        e5_s4      = e5_s2 | (e5_s2 >> 4);
        e5_s8      = e5_s4 | (e5_s4 >> 8);
        e5_s16     = e5_s8 | (e5_s8 >> 16);
        e5_sm      = e5_s16 | (e5_s16 >> 32);                        // ones from q's leading one down
        e5_below   = e5_sm >> 24;                                 // bits under q's ulp
        e5_stk_m   = e5_sm >> 25;
        e5_half    = e5_below & ~e5_stk_m;
        e5_ulp     = e5_half << 1;
        e5_q_up    = (|(e5_qfix & e5_half)) & ((|(e5_qfix & e5_stk_m)) | (|(e5_qfix & e5_ulp)));
        e5_qr      = (e5_qfix & ~e5_below) + (e5_q_up ? e5_ulp : 47'd0);
        fp_exp_s5_f = {e5_st[`FP_EXP_ST_W-1:47], e5_qr};
    end
endfunction

function [`FP_EXP_ST_W-1:0] fp_exp_s6_f;
    input [`FP_EXP_ST_W-1:0] e6_st;
    reg [46:0] e6_qr;
    reg [22:0] e6_t_frac;
    reg [7:0]  e6_n, e6_eb;
    reg [1:0]  e6_spc;
    reg [53:0] e6_psum;
    reg [24:0] e6_pm, e6_pr;
    reg        e6_p_up;
    reg [30:0] e6_mag_y;
    reg [31:0] e6_y;
    begin
        {e6_spc, e6_n, e6_t_frac, e6_qr} = e6_st[79:0];
        // p = fp32(T[i] + q): the frame's bit 52 is 1.0, p's ulp is bit 29
        e6_psum    = {2'b01, e6_t_frac, 29'd0} + {7'd0, e6_qr};
        e6_pm      = e6_psum[53:29];
        e6_p_up    = e6_psum[28] & ((|e6_psum[27:0]) | e6_pm[0]);
        e6_pr      = e6_pm + {24'd0, e6_p_up};                        // p * 2^23, 2^23 <= pr <= 2^24
        e6_eb      = 8'd126 + e6_n;                                // p's exponent field - 1, plus n
        e6_mag_y   = {e6_eb, 23'd0} + {6'd0, e6_pr};
        case (e6_spc)
            2'd1:    e6_y = 32'h7FC0_0000;
            2'd2:    e6_y = 32'h7F80_0000;
            2'd3:    e6_y = 32'h0000_0000;
            default: e6_y = {1'b0, e6_mag_y};
        endcase
        fp_exp_s6_f = {{(`FP_EXP_ST_W-32){1'b0}}, e6_y};
    end
endfunction

function [`FP_EXP_ST_W-1:0] fp_exp_step_f;
    input integer            es_k;
    input [`FP_EXP_ST_W-1:0] es_st;
    case (es_k)
        0:       fp_exp_step_f = {{(`FP_EXP_ST_W-`FP_MUL_ST_W){1'b0}}, fp_mul_s0_f(es_st[`FP_MUL_ST_W-1:0])};
        1:       fp_exp_step_f = {{(`FP_EXP_ST_W-`FP_MUL_ST_W){1'b0}}, fp_mul_s1_f(es_st[`FP_MUL_ST_W-1:0])};
        2:       fp_exp_step_f = fp_exp_s2_f(es_st);
        3:       fp_exp_step_f = fp_exp_s3_f(es_st);
        4:       fp_exp_step_f = fp_exp_s4_f(es_st);
        5:       fp_exp_step_f = fp_exp_s5_f(es_st);
        default: fp_exp_step_f = fp_exp_s6_f(es_st);
    endcase
endfunction

function [`FP_EXP_ST_W-1:0] fp_exp_steps_f;
    input integer            er_lo;
    input integer            er_hi;
    input [`FP_EXP_ST_W-1:0] er_st;
    integer er_k;
    begin
        fp_exp_steps_f = er_st;
        for (er_k = 0; er_k < `FP_EXP_STEPS; er_k = er_k + 1)
            if (er_k >= er_lo && er_k < er_hi)
                fp_exp_steps_f = fp_exp_step_f(er_k, fp_exp_steps_f);
    end
endfunction

function [31:0] fp_exp_out_f;
    input [`FP_EXP_ST_W-1:0] eo_st;
    fp_exp_out_f = eo_st[31:0];
endfunction

/* verilator lint_on UNUSEDSIGNAL */

function [31:0] fp_exp_f;
    input [31:0] ee_x;
    fp_exp_f = fp_exp_out_f(fp_exp_s6_f(fp_exp_s5_f(fp_exp_s4_f(fp_exp_s3_f(fp_exp_s2_f(
                   {{(`FP_EXP_ST_W-`FP_MUL_ST_W){1'b0}},
                    fp_mul_s1_f(fp_mul_s0_f(fp_mul_in_f(ee_x, 32'h3FB8_AA3B, 1'b0)))}))))));   // LOG2E
endfunction
