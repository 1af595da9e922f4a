`default_nettype none
// dnpu_fp_exp: y = EXP(x), FP32 -> FP32. Combinational.
// Implements docs/NUMERICS.md section 3 ("EXP") exactly, with the rule of
// section 2 for its two roundings:
//   t = fp32(x * LOG2E)       (dnpu_fp32_mul, so DAZ and rounding are the same)
//   NaN -> NaN; t >= 128 -> +Inf; t < -126 -> +0; otherwise with j = floor(64 t),
//   n = j >> 6, i = j & 63, r = 64 t - j:
//   q = fp32(D[i] * r), p = fp32(T[i] + q), y = p * 2^n.
// T/D come from dnpu_exp_table (generated from dnpu.numerics).
//
// Why these widths:
//  * |t| >= 2^-6 (t's exponent field >= 121): 64 t has no bits below 2^-23, so
//    64 t is exact as a 14.23 two's-complement fixed-point number and j, i, n
//    and r = k * 2^-23 (k < 2^23) fall out of it.
//  * |t| < 2^-6: j = 0 for t >= 0 (r = 64 t) and j = -1 for t < 0 (r = 1 - 64|t|,
//    which can have ~140 bits). Following the section 3 hardware note, D * r is
//    formed as D * 64 t - D * j: one exact product P = d * m of t's significand,
//    scaled, minus D * j = -D when j = -1.
//  * Every D[i] is a multiple of 2^-23 below 2^-5 (d_int < 2^18), so q is built
//    in a fixed-point frame with LSB 2^-52 (47 bits, q < 2^-5). Bits of the
//    scaled P below the frame are ORed into its LSB (jamming); that is exact
//    enough wherever q matters: for q >= 2^-26 q's round bit is at frame bit 2
//    or above, so the jammed and exact q round alike; for a smaller q, p = T[i]
//    whatever q rounds to (q < 2^-24 never reaches T's half-ulp), and FTZ of a
//    q below 2^-126 cannot matter either. (Enumerating every t with |t| < 2^-6
//    finds no input where plain truncation would change p; the jam costs one OR
//    tree and keeps the argument independent of the table values.)
//  * q is rounded to 24 significant bits in place: a smear of its leading one
//    gives the masks of its round bit and sticky bits, no normalizing shifter.
//  * T[i] + q <= T[i] + D[i] = T[i+1] <= 2 exactly, so p in [1, 2]; p's bits are
//    (126 << 23) + p * 2^23, and adding n to the exponent field gives y (p = 2 at
//    n = 127 becomes 0x7F800000, +Inf, by the same carry). y >= 2^-126 always.

module dnpu_fp_exp (
    input  wire [31:0] x,
    output reg  [31:0] y
);
    localparam [31:0] LOG2E = 32'h3FB8_AA3B;

    wire [31:0] t;
    dnpu_fp32_mul u_t (.a(x), .b(LOG2E), .bf16(1'b0), .y(t));

    wire        ts      = t[31];
    wire [7:0]  te      = t[30:23];
    wire [22:0] tf      = t[22:0];
    wire        t_nan   = (&te) & (|tf);
    wire        t_big   = ~ts & (te >= 8'd134);                   // t >= 128
    wire        t_small = ts & ((te > 8'd133) | ((te == 8'd133) & (tf > 23'h7C_0000))); // t < -126
    wire        t_fix   = te >= 8'd121;                           // |t| >= 2^-6
    wire        t_negsm = ts & (|te) & ~t_fix;                    // -2^-6 < t < 0

    // 64 t = {1, tf} * 2^(te - 144); for 121 <= te <= 133 shift left by te - 121.
    wire [3:0]  sh  = te[3:0] - 4'd9;
    wire [35:0] mag = {12'd0, 1'b1, tf} << sh;
    wire [36:0] x64 = ts ? (37'd0 - {1'b0, mag}) : {1'b0, mag};  // j = x64[36:23]

    wire [5:0]  idx  = t_fix ? x64[28:23] : (t_negsm ? 6'd63 : 6'd0);
    wire [7:0]  n    = t_fix ? x64[36:29] : (t_negsm ? 8'hFF : 8'h00);
    wire [23:0] mult = t_fix ? {1'b0, x64[22:0]} : {|te, tf};

    wire [22:0] t_frac;
    wire [16:0] d_lo;
    dnpu_exp_table u_tab (.idx(idx), .t_frac(t_frac), .d_lo(d_lo));
    wire [17:0] d_int = {1'b0, d_lo} + 18'h1_0000;   // D[i] * 2^23

    // D[i] * r = P * 2^-46 (|t| >= 2^-6) or +-P * 2^(te - 167) (|t| < 2^-6).
    // In the 2^-52 frame: P << 6, or (P << 5) >> (120 - te). d_int = 2^16 + d_lo
    // keeps the multiplier at 17 x 24 bits, one DSP48E1 with its post-adder.
    wire [41:0] prod  = d_lo * mult + {2'b00, mult, 16'd0};
    wire [46:0] pext  = t_fix ? {prod[40:0], 6'd0} : {prod, 5'd0};
    // 120 - te <= 120; from 47 up everything is shifted out, so saturate at 63.
    wire [6:0]  rs7   = 7'd120 - te[6:0];
    wire [5:0]  rs    = t_fix ? 6'd0 : (rs7[6] ? 6'd63 : rs7[5:0]);
    wire [46:0] psh   = pext >> rs;
    wire        plost = |(pext & ~({47{1'b1}} << rs));
    wire [46:0] qfix  = t_negsm ? ({d_int, 29'd0} - {psh[46:1], psh[0] | plost})
                                : {psh[46:1], psh[0] | plost};

    // Round q to 24 significant bits, RNE.
    wire [46:0] s1    = qfix | (qfix >> 1);
    wire [46:0] s2    = s1 | (s1 >> 2);
    wire [46:0] s4    = s2 | (s2 >> 4);
    wire [46:0] s8    = s4 | (s4 >> 8);
    wire [46:0] s16   = s8 | (s8 >> 16);
    wire [46:0] sm    = s16 | (s16 >> 32);   // ones from q's leading one down
    wire [46:0] below = sm >> 24;            // bits under q's ulp
    wire [46:0] stk_m = sm >> 25;
    wire [46:0] half  = below & ~stk_m;
    wire [46:0] ulp   = half << 1;
    wire        q_up  = (|(qfix & half)) & ((|(qfix & stk_m)) | (|(qfix & ulp)));
    wire [46:0] qr    = (qfix & ~below) + (q_up ? ulp : 47'd0);

    // p = fp32(T[i] + q): the frame's bit 52 is 1.0, p's ulp is bit 29.
    wire [53:0] psum  = {2'b01, t_frac, 29'd0} + {7'd0, qr};
    wire [24:0] pm    = psum[53:29];
    wire        p_up  = psum[28] & ((|psum[27:0]) | pm[0]);
    wire [24:0] pr    = pm + {24'd0, p_up};   // p * 2^23, 2^23 <= pr <= 2^24
    wire [7:0]  eb    = 8'd126 + n;           // p's exponent field minus one, plus n
    wire [30:0] mag_y = {eb, 23'd0} + {6'd0, pr};

    always @* begin
        if (t_nan)
            y = 32'h7FC0_0000;
        else if (t_big)
            y = 32'h7F80_0000;
        else if (t_small)
            y = 32'h0000_0000;
        else
            y = {1'b0, mag_y};
    end
endmodule

`default_nettype wire
