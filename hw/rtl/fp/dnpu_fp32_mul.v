`default_nettype none
// dnpu_fp32_mul: y = fp32(a * b). Combinational.
// Implements docs/NUMERICS.md section 2 (DAZ read, one RNE rounding with an
// unbounded exponent, then overflow / FTZ, canonical NaN, 0 x Inf = NaN, sign =
// XOR) for section 2.2 (S_MUL_FP); section 3 uses it for t = fp32(x * LOG2E).
//
// The 24x24 significand product is exact (48 bits); it is rounded once. The
// rounded exponent is a 10-bit two's-complement value, so a product just below
// 2^-126 that rounds up to 2^-126 is kept and one that rounds to a 24-bit value
// below 2^-126 is flushed (the NUMERICS example 2^-63(1-2^-24) x 2^-63 -> +0).
// With bf16 = 1 the product is rounded once to 8 significant bits (V_MUL_VV/VF):
// y[15:0] = 0 and y[31:16] is the BF16 pattern.

module dnpu_fp32_mul (
    input  wire [31:0] a,
    input  wire [31:0] b,
    input  wire        bf16,
    output reg  [31:0] y
);
    wire        sy     = a[31] ^ b[31];
    wire        a_max  = &a[30:23];
    wire        b_max  = &b[30:23];
    wire        a_zero = ~(|a[30:23]);   // DAZ
    wire        b_zero = ~(|b[30:23]);
    wire        a_nan  = a_max & (|a[22:0]);
    wire        b_nan  = b_max & (|b[22:0]);
    wire        a_inf  = a_max & ~(|a[22:0]);
    wire        b_inf  = b_max & ~(|b[22:0]);

    // Zero, Inf and NaN operands are overridden below, so the hidden bit is 1.
    wire [47:0] prod = {1'b1, a[22:0]} * {1'b1, b[22:0]};
    wire        hi   = prod[47];
    wire [22:0] fr   = hi ? prod[46:24] : prod[45:23];   // below the leading one
    wire        g    = hi ? prod[23] : prod[22];
    wire        st   = (|prod[21:0]) | (hi & prod[22]);
    wire        up32 = g & (st | fr[0]);
    wire        up16 = fr[15] & ((|fr[14:0]) | g | st | fr[16]);
    wire [23:0] frt  = bf16 ? {1'b0, fr[22:16], 16'd0} : {1'b0, fr};
    wire [23:0] inc  = bf16 ? {7'd0, up16, 16'd0} : {23'd0, up32};
    wire [23:0] frr  = frt + inc;                          // frr[23]: carry to 2.0
    wire [9:0]  er   = {2'b00, a[30:23]} + {2'b00, b[30:23]} + {9'd0, hi}
                     + {9'd0, frr[23]} - 10'd127;
    wire        uf   = er[9] | (er == 10'd0);
    wire        of   = ~er[9] & (er >= 10'd255);

    always @* begin
        if (a_nan | b_nan | (a_inf & b_zero) | (b_inf & a_zero))
            y = 32'h7FC0_0000;
        else if (a_inf | b_inf)
            y = {sy, 31'h7F80_0000};
        else if (a_zero | b_zero | uf)
            y = {sy, 31'd0};
        else if (of)
            y = {sy, 31'h7F80_0000};
        else
            y = {sy, er[7:0], frr[22:0]};  // a carry leaves a zero fraction
    end
endmodule

`default_nettype wire
