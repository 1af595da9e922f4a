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
function [31:0] fp_add_f;
    input [31:0] aa_a;
    input [31:0] aa_b;
    input        aa_sub;
    input        aa_bf16;
    reg        aa_sa, aa_sb, aa_a_max, aa_b_max, aa_a_nan, aa_b_nan, aa_a_inf, aa_b_inf, aa_eff_sub, aa_swap, aa_sx;
    reg [30:0] aa_ma, aa_mb, aa_mx, aa_mn;
    reg [7:0]  aa_dexp;
    reg [4:0]  aa_d5, aa_lz;
    reg [26:0] aa_sig_x, aa_sig_n, aa_al, aa_norm;
    reg        aa_lost, aa_z16, aa_z8, aa_z4, aa_z2, aa_z1, aa_up32, aa_up16, aa_uf, aa_of;
    reg [27:0] aa_aln, aa_sum, aa_n1, aa_n2, aa_n3, aa_n4;
    reg [23:0] aa_frt, aa_inc, aa_frr;
    reg [9:0]  aa_er;
    begin
        aa_sa      = aa_a[31];
        aa_sb      = aa_b[31] ^ aa_sub;
        aa_a_max   = &aa_a[30:23];
        aa_b_max   = &aa_b[30:23];
        aa_a_nan   = aa_a_max & (|aa_a[22:0]);
        aa_b_nan   = aa_b_max & (|aa_b[22:0]);
        aa_a_inf   = aa_a_max & ~(|aa_a[22:0]);
        aa_b_inf   = aa_b_max & ~(|aa_b[22:0]);
        aa_eff_sub = aa_sa ^ aa_sb;
        // DAZ: a zero exponent field reads as magnitude 0; {exponent, fraction} orders
        // magnitudes, so one compare picks the larger operand.
        aa_ma    = (|aa_a[30:23]) ? aa_a[30:0] : 31'd0;
        aa_mb    = (|aa_b[30:23]) ? aa_b[30:0] : 31'd0;
        aa_swap  = aa_mb > aa_ma;
        aa_mx    = aa_swap ? aa_mb : aa_ma;
        aa_mn    = aa_swap ? aa_ma : aa_mb;
        aa_sx    = aa_swap ? aa_sb : aa_sa;                 // the sign of any nonzero result
        aa_dexp  = aa_mx[30:23] - aa_mn[30:23];
        aa_d5    = (|aa_dexp[7:5]) ? 5'd31 : aa_dexp[4:0];   // a gap >= 27 shifts everything out
        aa_sig_x = {|aa_mx[30:23], aa_mx[22:0], 3'b000};
        aa_sig_n = {|aa_mn[30:23], aa_mn[22:0], 3'b000};
        aa_al    = aa_sig_n >> aa_d5;
        aa_lost  = |(aa_sig_n & ~({27{1'b1}} << aa_d5));
        aa_aln   = {1'b0, aa_al[26:1], aa_al[0] | aa_lost};
        aa_sum   = {1'b0, aa_sig_x} + (aa_aln ^ {28{aa_eff_sub}}) + {27'd0, aa_eff_sub};   // x - n = x + ~n + 1
        // normalize in five stages; the stage decisions are the leading-zero count
        aa_z16   = ~(|aa_sum[27:12]);
        aa_n1    = aa_z16 ? {aa_sum[11:0], 16'd0} : aa_sum;
        aa_z8    = ~(|aa_n1[27:20]);
        aa_n2    = aa_z8 ? {aa_n1[19:0], 8'd0} : aa_n1;
        aa_z4    = ~(|aa_n2[27:24]);
        aa_n3    = aa_z4 ? {aa_n2[23:0], 4'd0} : aa_n2;
        aa_z2    = ~(|aa_n3[27:26]);
        aa_n4    = aa_z2 ? {aa_n3[25:0], 2'd0} : aa_n3;
        aa_z1    = ~aa_n4[27];
        aa_lz    = {aa_z16, aa_z8, aa_z4, aa_z2, aa_z1};
        aa_norm  = aa_z1 ? {aa_n4[25:0], 1'b0} : aa_n4[26:0];   // the bits below the leading one
        aa_up32  = aa_norm[3] & ((|aa_norm[2:0]) | aa_norm[4]);
        aa_up16  = aa_norm[19] & ((|aa_norm[18:0]) | aa_norm[20]);
        aa_frt   = aa_bf16 ? {1'b0, aa_norm[26:20], 16'd0} : {1'b0, aa_norm[26:4]};
        aa_inc   = aa_bf16 ? {7'd0, aa_up16, 16'd0} : {23'd0, aa_up32};
        aa_frr   = aa_frt + aa_inc;                              // frr[23]: carry to 2.0
        aa_er    = {2'b00, aa_mx[30:23]} + 10'd1 + {9'd0, aa_frr[23]} - {5'd0, aa_lz};
        aa_uf    = aa_er[9] | (aa_er == 10'd0);
        aa_of    = ~aa_er[9] & (aa_er >= 10'd255);
        if (aa_a_nan | aa_b_nan | (aa_a_inf & aa_b_inf & aa_eff_sub))
            fp_add_f = 32'h7FC0_0000;
        else if (aa_a_inf)
            fp_add_f = {aa_sa, 31'h7F80_0000};
        else if (aa_b_inf)
            fp_add_f = {aa_sb, 31'h7F80_0000};
        else if (aa_sum == 28'd0)
            fp_add_f = {aa_sa & aa_sb, 31'd0};               // exact zero: +0 unless (-0) + (-0)
        else if (aa_uf)
            fp_add_f = {aa_sx, 31'd0};
        else if (aa_of)
            fp_add_f = {aa_sx, 31'h7F80_0000};
        else
            fp_add_f = {aa_sx, aa_er[7:0], aa_frr[22:0]};       // a carry leaves a zero fraction
    end
endfunction

// ---- fp_mul_f: fp32(a * b); bf16 rounds once to 8 bits (S_MUL_FP, V_MUL_*, EXP's t) ------
// The 24x24 significand product is exact (48 bits) and rounded once; the rounded exponent
// is 10-bit two's complement, so a product that rounds up to 2^-126 is kept.
function [31:0] fp_mul_f;
    input [31:0] mm_a;
    input [31:0] mm_b;
    input        mm_bf16;
    reg        mm_sy, mm_a_max, mm_b_max, mm_a_zero, mm_b_zero, mm_a_nan, mm_b_nan, mm_a_inf, mm_b_inf;
    reg        mm_hi, mm_g, mm_st, mm_up32, mm_up16, mm_uf, mm_of;
    reg [47:0] mm_prod;
    reg [22:0] mm_fr;
    reg [23:0] mm_frt, mm_inc, mm_frr;
    reg [9:0]  mm_er;
    begin
        mm_sy     = mm_a[31] ^ mm_b[31];
        mm_a_max  = &mm_a[30:23];
        mm_b_max  = &mm_b[30:23];
        mm_a_zero = ~(|mm_a[30:23]);                  // DAZ
        mm_b_zero = ~(|mm_b[30:23]);
        mm_a_nan  = mm_a_max & (|mm_a[22:0]);
        mm_b_nan  = mm_b_max & (|mm_b[22:0]);
        mm_a_inf  = mm_a_max & ~(|mm_a[22:0]);
        mm_b_inf  = mm_b_max & ~(|mm_b[22:0]);
        // zero, Inf and NaN operands are overridden below, so the hidden bit is 1
        mm_prod   = {1'b1, mm_a[22:0]} * {1'b1, mm_b[22:0]};
        mm_hi     = mm_prod[47];
        mm_fr     = mm_hi ? mm_prod[46:24] : mm_prod[45:23];    // below the leading one
        mm_g      = mm_hi ? mm_prod[23] : mm_prod[22];
        mm_st     = (|mm_prod[21:0]) | (mm_hi & mm_prod[22]);
        mm_up32   = mm_g & (mm_st | mm_fr[0]);
        mm_up16   = mm_fr[15] & ((|mm_fr[14:0]) | mm_g | mm_st | mm_fr[16]);
        mm_frt    = mm_bf16 ? {1'b0, mm_fr[22:16], 16'd0} : {1'b0, mm_fr};
        mm_inc    = mm_bf16 ? {7'd0, mm_up16, 16'd0} : {23'd0, mm_up32};
        mm_frr    = mm_frt + mm_inc;                          // frr[23]: carry to 2.0
        mm_er     = {2'b00, mm_a[30:23]} + {2'b00, mm_b[30:23]} + {9'd0, mm_hi} + {9'd0, mm_frr[23]} - 10'd127;
        mm_uf     = mm_er[9] | (mm_er == 10'd0);
        mm_of     = ~mm_er[9] & (mm_er >= 10'd255);
        if (mm_a_nan | mm_b_nan | (mm_a_inf & mm_b_zero) | (mm_b_inf & mm_a_zero))
            fp_mul_f = 32'h7FC0_0000;
        else if (mm_a_inf | mm_b_inf)
            fp_mul_f = {mm_sy, 31'h7F80_0000};
        else if (mm_a_zero | mm_b_zero | mm_uf)
            fp_mul_f = {mm_sy, 31'd0};
        else if (mm_of)
            fp_mul_f = {mm_sy, 31'h7F80_0000};
        else
            fp_mul_f = {mm_sy, mm_er[7:0], mm_frr[22:0]};
    end
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
function [31:0] fp_exp_f;
    input [31:0] ee_x;
    reg [31:0] ee_t;
    reg        ee_ts, ee_t_nan, ee_t_big, ee_t_small, ee_t_fix, ee_t_negsm, ee_plost, ee_q_up, ee_p_up;
    reg [7:0]  ee_te, ee_n, ee_eb;
    reg [22:0] ee_tf, ee_t_frac;
    reg [3:0]  ee_sh;
    reg [35:0] ee_mag;
    reg [36:0] ee_x64;
    reg [5:0]  ee_idx, ee_rs;
    reg [23:0] ee_mult;
    reg [16:0] ee_d_lo;
    reg [39:0] ee_tab;
    reg [17:0] ee_d_int;
    reg [41:0] ee_prod;
    reg [46:0] ee_pext, ee_psh, ee_qfix, ee_s1, ee_s2, ee_s4, ee_s8, ee_s16, ee_sm, ee_below, ee_stk_m, ee_half, ee_ulp, ee_qr;
    reg [6:0]  ee_rs7;
    reg [53:0] ee_psum;
    reg [24:0] ee_pm, ee_pr;
    reg [30:0] ee_mag_y;
    begin
        ee_t       = fp_mul_f(ee_x, 32'h3FB8_AA3B, 1'b0);        // LOG2E
        ee_ts      = ee_t[31];
        ee_te      = ee_t[30:23];
        ee_tf      = ee_t[22:0];
        ee_t_nan   = (&ee_te) & (|ee_tf);
        ee_t_big   = ~ee_ts & (ee_te >= 8'd134);                     // t >= 128
        ee_t_small = ee_ts & ((ee_te > 8'd133) | ((ee_te == 8'd133) & (ee_tf > 23'h7C_0000)));  // t < -126
        ee_t_fix   = ee_te >= 8'd121;                             // |t| >= 2^-6
        ee_t_negsm = ee_ts & (|ee_te) & ~ee_t_fix;                      // -2^-6 < t < 0
        // 64 t = {1, tf} * 2^(te - 144); for 121 <= te <= 133 shift left by te - 121
        ee_sh      = ee_te[3:0] - 4'd9;
        ee_mag     = {12'd0, 1'b1, ee_tf} << ee_sh;
        ee_x64     = ee_ts ? (37'd0 - {1'b0, ee_mag}) : {1'b0, ee_mag};   // j = x64[36:23]
        ee_idx     = ee_t_fix ? ee_x64[28:23] : (ee_t_negsm ? 6'd63 : 6'd0);
        ee_n       = ee_t_fix ? ee_x64[36:29] : (ee_t_negsm ? 8'hFF : 8'h00);
        ee_mult    = ee_t_fix ? {1'b0, ee_x64[22:0]} : {|ee_te, ee_tf};
        ee_tab     = exp_table_f(ee_idx);
        ee_t_frac  = ee_tab[39:17];
        ee_d_lo    = ee_tab[16:0];
        ee_d_int   = {1'b0, ee_d_lo} + 18'h1_0000;                // D[i] * 2^23
        // D[i] * r = P * 2^-46 (|t| >= 2^-6) or +-P * 2^(te - 167) (|t| < 2^-6); in the
        // 2^-52 frame: P << 6, or (P << 5) >> (120 - te)
        ee_prod    = ee_d_lo * ee_mult + {2'b00, ee_mult, 16'd0};
        ee_pext    = ee_t_fix ? {ee_prod[40:0], 6'd0} : {ee_prod, 5'd0};
        ee_rs7     = 7'd120 - ee_te[6:0];                         // >= 47 shifts everything out
        ee_rs      = ee_t_fix ? 6'd0 : (ee_rs7[6] ? 6'd63 : ee_rs7[5:0]);
        ee_psh     = ee_pext >> ee_rs;
        ee_plost   = |(ee_pext & ~({47{1'b1}} << ee_rs));
        ee_qfix    = ee_t_negsm ? ({ee_d_int, 29'd0} - {ee_psh[46:1], ee_psh[0] | ee_plost})
                          : {ee_psh[46:1], ee_psh[0] | ee_plost};
        // round q to 24 significant bits, RNE
        ee_s1      = ee_qfix | (ee_qfix >> 1);
        ee_s2      = ee_s1 | (ee_s1 >> 2);
        ee_s4      = ee_s2 | (ee_s2 >> 4);
        ee_s8      = ee_s4 | (ee_s4 >> 8);
        ee_s16     = ee_s8 | (ee_s8 >> 16);
        ee_sm      = ee_s16 | (ee_s16 >> 32);                        // ones from q's leading one down
        ee_below   = ee_sm >> 24;                                 // bits under q's ulp
        ee_stk_m   = ee_sm >> 25;
        ee_half    = ee_below & ~ee_stk_m;
        ee_ulp     = ee_half << 1;
        ee_q_up    = (|(ee_qfix & ee_half)) & ((|(ee_qfix & ee_stk_m)) | (|(ee_qfix & ee_ulp)));
        ee_qr      = (ee_qfix & ~ee_below) + (ee_q_up ? ee_ulp : 47'd0);
        // p = fp32(T[i] + q): the frame's bit 52 is 1.0, p's ulp is bit 29
        ee_psum    = {2'b01, ee_t_frac, 29'd0} + {7'd0, ee_qr};
        ee_pm      = ee_psum[53:29];
        ee_p_up    = ee_psum[28] & ((|ee_psum[27:0]) | ee_pm[0]);
        ee_pr      = ee_pm + {24'd0, ee_p_up};                        // p * 2^23, 2^23 <= pr <= 2^24
        ee_eb      = 8'd126 + ee_n;                                // p's exponent field - 1, plus n
        ee_mag_y   = {ee_eb, 23'd0} + {6'd0, ee_pr};
        if (ee_t_nan)
            fp_exp_f = 32'h7FC0_0000;
        else if (ee_t_big)
            fp_exp_f = 32'h7F80_0000;
        else if (ee_t_small)
            fp_exp_f = 32'h0000_0000;
        else
            fp_exp_f = {1'b0, ee_mag_y};
    end
endfunction
