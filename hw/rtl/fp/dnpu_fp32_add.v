`default_nettype none
// dnpu_fp32_add: y = fp32(a + b), or fp32(a - b) when sub is 1. Combinational.
// Implements docs/NUMERICS.md section 2 ("The rule every FP operation follows":
// DAZ read, one RNE rounding with an unbounded exponent, then overflow / FTZ,
// canonical NaN, IEEE infinities and zero signs) for section 2.2 (S_ADD_FP,
// S_SUB_FP, and the FP32 adds of V_RED_SUM, section 6).
// With bf16 = 1 the exact sum is rounded once to 8 significant bits instead
// (the BF16 results of V_ADD/SUB_VV/VF): y is then a BF16 value in FP32 bits,
// y[15:0] = 0, and y[31:16] the BF16 pattern. BF16 has FP32's exponent range,
// so overflow and FTZ are the same; the jamming argument below holds a fortiori
// (the rounding boundaries are coarser).
//
// Why 3 bits below the significand give the exactly rounded sum: the smaller
// operand is aligned into a 27-bit field (24 bits + 3 below) and every bit
// shifted out below it is ORed into the field's LSB ("jamming"). An inexact
// aligned operand then lies strictly between the same two even field values as
// the exact one. After normalization the round bit sits at field bit 1 or
// higher, so every rounding boundary is an even field value: an effective
// subtraction with exponent gap >= 2 loses at most one leading bit, and with gap
// <= 1 nothing is shifted out (a deep cancellation is exact). The jammed sum
// therefore rounds like the exact sum.
//
// The rounded exponent is kept as a 10-bit two's-complement value, so a result
// that rounds up to 2^-126 survives and only a rounded magnitude below 2^-126 is
// flushed. (With FP32 operands an exact sum below 2^-126 has at most 23 bits, so
// it is never rounded, always flushed.)

module dnpu_fp32_add (
    input  wire [31:0] a,
    input  wire [31:0] b,
    input  wire        sub,
    input  wire        bf16,
    output reg  [31:0] y
);
    wire        sa    = a[31];
    wire        sb    = b[31] ^ sub;
    wire        a_max = &a[30:23];
    wire        b_max = &b[30:23];
    wire        a_nan = a_max & (|a[22:0]);
    wire        b_nan = b_max & (|b[22:0]);
    wire        a_inf = a_max & ~(|a[22:0]);
    wire        b_inf = b_max & ~(|b[22:0]);
    wire        eff_sub = sa ^ sb;

    // DAZ: a zero exponent field reads as magnitude 0. {exponent, fraction}
    // orders magnitudes, so one compare picks the larger operand.
    wire [30:0] ma   = (|a[30:23]) ? a[30:0] : 31'd0;
    wire [30:0] mb   = (|b[30:23]) ? b[30:0] : 31'd0;
    wire        swap = mb > ma;
    wire [30:0] mx   = swap ? mb : ma;
    wire [30:0] mn   = swap ? ma : mb;
    wire        sx   = swap ? sb : sa;   // the sign of any nonzero result

    wire [7:0]  dexp  = mx[30:23] - mn[30:23];
    // A gap of 27 or more shifts everything out; saturating at 31 keeps the
    // barrel shifter at five levels.
    wire [4:0]  d5    = (|dexp[7:5]) ? 5'd31 : dexp[4:0];
    wire [26:0] sig_x = {|mx[30:23], mx[22:0], 3'b000};
    wire [26:0] sig_n = {|mn[30:23], mn[22:0], 3'b000};
    wire [26:0] al    = sig_n >> d5;
    wire        lost  = |(sig_n & ~({27{1'b1}} << d5));
    wire [27:0] aln   = {1'b0, al[26:1], al[0] | lost};
    // One carry chain for both: x - n = x + ~n + 1.
    wire [27:0] sum   = {1'b0, sig_x} + (aln ^ {28{eff_sub}}) + {27'd0, eff_sub};

    // Normalize in five stages (16, 8, 4, 2, 1), each shifting out zeros above
    // the leading one; the stage decisions are the leading-zero count.
    wire        z16  = ~(|sum[27:12]);
    wire [27:0] n1   = z16 ? {sum[11:0], 16'd0} : sum;
    wire        z8   = ~(|n1[27:20]);
    wire [27:0] n2   = z8 ? {n1[19:0], 8'd0} : n1;
    wire        z4   = ~(|n2[27:24]);
    wire [27:0] n3   = z4 ? {n2[23:0], 4'd0} : n2;
    wire        z2   = ~(|n3[27:26]);
    wire [27:0] n4   = z2 ? {n3[25:0], 2'd0} : n3;
    wire        z1   = ~n4[27];
    wire [4:0]  lz   = {z16, z8, z4, z2, z1};   // <= 27 unless sum == 0
    // The leading one moves to bit 27 and drops out: norm holds the bits below it.
    wire [26:0] norm = z1 ? {n4[25:0], 1'b0} : n4[26:0];
    wire        up32 = norm[3] & ((|norm[2:0]) | norm[4]);
    wire        up16 = norm[19] & ((|norm[18:0]) | norm[20]);
    wire [23:0] frt  = bf16 ? {1'b0, norm[26:20], 16'd0} : {1'b0, norm[26:4]};
    wire [23:0] inc  = bf16 ? {7'd0, up16, 16'd0} : {23'd0, up32};
    wire [23:0] frr  = frt + inc;                          // frr[23]: carry to 2.0
    // Field bit 26 carries mx's exponent; the leading one at bit 27 is one above.
    wire [9:0]  er   = {2'b00, mx[30:23]} + 10'd1 + {9'd0, frr[23]} - {5'd0, lz};
    wire        uf   = er[9] | (er == 10'd0);
    wire        of   = ~er[9] & (er >= 10'd255);

    always @* begin
        if (a_nan | b_nan | (a_inf & b_inf & eff_sub))
            y = 32'h7FC0_0000;
        else if (a_inf)
            y = {sa, 31'h7F80_0000};
        else if (b_inf)
            y = {sb, 31'h7F80_0000};
        else if (sum == 28'd0)
            y = {sa & sb, 31'd0};          // exact zero: +0 unless (-0) + (-0)
        else if (uf)
            y = {sx, 31'd0};
        else if (of)
            y = {sx, 31'h7F80_0000};
        else
            y = {sx, er[7:0], frr[22:0]};  // a carry leaves a zero fraction
    end
endmodule

`default_nettype wire
