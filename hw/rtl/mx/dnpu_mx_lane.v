`default_nettype none
// One lane of the MX -> BF16 dequantizer, bit-exact with dnpu.mx.dequantize_bf16
// (docs/MX.md, "Dequantization").
//
// Every code's magnitude is sig * 2^(u - c) with sig an integer of at most 8 bits
// whose leading one is worth 2^(u - c): a float normal has sig = 1.m and u = its
// exponent field, c = bias; a float subnormal has u = 1 + msb(m) - M; int8 has
// u = msb(|code|), c = 6. So code * 2^(scale-127) has BF16 biased exponent
// (scale - c) + u, and the bits below sig's leading one are the BF16 fraction
// (at most 7: always exact). scale - c depends only on the block and the format,
// so the caller computes it once per block (sbase) rather than once per lane.
// No multiplier: a priority encoder, a small shifter and one 10-bit add per lane.

`include "dnpu_isa.vh"

module dnpu_mx_lane (
    input  wire [2:0]        fmt,    // `DNPU_MXFMT_*; illegal codes never reach a lane
    input  wire              snan,   // block scale is 0xFF
    input  wire signed [9:0] sbase,  // scale - c(fmt): c = bias for floats, 6 for int8
    input  wire [7:0]        code,   // element code in the low w bits
    output reg  [15:0]       bf16
);
    reg              s;
    reg              sub;      // float subnormal: u comes from msb(sig)
    reg [7:0]        sig;
    reg [4:0]        ef;       // float exponent field
    reg [1:0]        mm1;      // M - 1 (float)
    reg              is_int;
    reg              is_nan;
    reg              is_inf;
    reg [2:0]        msb;
    reg [6:0]        norm;     // sig below its leading one, left-aligned: the BF16 fraction
    reg signed [5:0] u;        // -2..31
    reg signed [9:0] bexp;     // BF16 biased exponent before saturation/flush: -16..270
    integer          k;

    always @* begin
        s      = code[7];
        ef     = 5'd0;
        sig    = 8'd0;
        mm1    = 2'd0;
        is_int = 1'b0;
        is_nan = 1'b0;
        is_inf = 1'b0;
        case (fmt)
            `DNPU_MXFMT_E4M3: begin
                ef     = {1'b0, code[6:3]};
                sig    = {4'd0, |code[6:3], code[2:0]};
                mm1    = 2'd2;
                is_nan = &code[6:0];          // S.1111.111
            end
            `DNPU_MXFMT_E5M2: begin
                ef     = code[6:2];
                sig    = {5'd0, |code[6:2], code[1:0]};
                mm1    = 2'd1;
                is_inf = &code[6:2] & ~|code[1:0];
                is_nan = &code[6:2] &  |code[1:0];
            end
            `DNPU_MXFMT_E3M2: begin
                s      = code[5];
                ef     = {2'b00, code[4:2]};
                sig    = {5'd0, |code[4:2], code[1:0]};
                mm1    = 2'd1;
            end
            `DNPU_MXFMT_E2M3: begin
                s      = code[5];
                ef     = {3'b000, code[4:3]};
                sig    = {4'd0, |code[4:3], code[2:0]};
                mm1    = 2'd2;
            end
            `DNPU_MXFMT_E2M1: begin
                s      = code[3];
                ef     = {3'b000, code[2:1]};
                sig    = {6'd0, |code[2:1], code[0]};
                mm1    = 2'd0;
            end
            default: begin  // `DNPU_MXFMT_INT8: two's complement, c * 2^-6 (0x80 is -2.0)
                sig    = code[7] ? (~code + 8'd1) : code;
                is_int = 1'b1;
            end
        endcase
        sub = ~is_int & ~|ef;

        msb = 3'd0;
        for (k = 1; k < 8; k = k + 1)
            if (sig[k]) msb = k[2:0];
        norm = sig[6:0] << (3'd7 - msb);

        if (is_int)
            u = {3'b000, msb};
        else if (sub)
            u = $signed({4'b0000, msb[1:0]}) - $signed({4'b0000, mm1});  // 1 + msb - M
        else
            u = {1'b0, ef};
        bexp = sbase + {{4{u[5]}}, u};

        // bexp is in -16..270: "> 254" and "< 1" are bit tests, not comparators.
        if (snan || is_nan)
            bf16 = 16'h7FC0;
        else if (is_inf || (~bexp[9] & (bexp[8] | &bexp[7:0])))
            bf16 = {s, 15'h7F7F};
        else if (sig == 8'd0 || bexp[9] || ~|bexp[8:0])
            bf16 = {s, 15'h0000};
        else
            bf16 = {s, bexp[7:0], norm};
    end
endmodule

`default_nettype wire
