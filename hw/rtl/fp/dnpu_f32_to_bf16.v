`default_nettype none
// dnpu_f32_to_bf16: y16 = bf16(a), FP32 -> BF16 narrowing. Combinational.
// Implements docs/NUMERICS.md section 2.1 ("Conversions", FP32 -> BF16) with the
// rule of section 2: DAZ read, RNE to 8 significant bits, FTZ, overflow -> Inf,
// NaN -> 0x7FC0.
//
// A normal input keeps its exponent field, so adding the rounding increment to
// the top 16 bits carries a full fraction into the exponent, and 0x7F7F + 1
// into 0x7F80 (+Inf) -- the overflow rule for free (0x7F7F8000 and up -> Inf).
// A normal input never rounds below 2^-126, so FTZ only concerns DAZ inputs.

module dnpu_f32_to_bf16 (
    input  wire [31:0] a,
    output reg  [15:0] y16
);
    wire exp_max = &a[30:23];
    wire up      = a[15] & ((|a[14:0]) | a[16]);

    always @* begin
        if (exp_max & (|a[22:0]))
            y16 = 16'h7FC0;
        else if (exp_max)
            y16 = a[31:16];                  // +-Inf: the fraction is zero
        else if (~(|a[30:23]))
            y16 = {a[31], 15'd0};            // DAZ
        else
            y16 = a[31:16] + {15'd0, up};
    end
endmodule

`default_nettype wire
