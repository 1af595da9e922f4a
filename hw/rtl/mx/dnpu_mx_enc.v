`default_nettype none
// dnpu_mx_enc: one element of the BF16 -> MX quantizer (dnpu_mx_quant), bit-exact with
// dnpu.mx.quantize for bfloat16 input (docs/MX.md "Quantization", NUMERICS.md 7.1).
//
// Every format is handled as a float: sign, exponent field ef of bias B, M fraction bits,
// IEEE-style subnormals. int8 is the float with B = 1, M = 6 and a one-bit exponent: its
// magnitude code RNE(v * 64), 0..127, is then exactly {ef, fraction}; its sign is applied
// as two's complement at the end (so a negative that rounds to zero is 0x00).
//
// With the block's scale byte S the caller passes base = B - S. An input of exponent
// field E' (1 for a BF16 subnormal, which is not flushed) and significand sig normalised
// to a leading one at bit 7 (lz places, BF16 subnormals only) lands in element binade
//     ef = E' - lz + base.
// ef >= 1: the code is {ef, the top M fraction bits of sig}, rounded; ef <= 0 (an element
// subnormal): sig >> (8 - M - ef), rounded. The code is one integer over both fields, so a
// carry out of the fraction moves to the next binade by itself, and a magnitude past the
// format's largest normal saturates to it (the same as clamping v before rounding, which
// is what the reference does). A NaN block (S = 0xFF) gives code 0.
//
// Two stages: normalisation and the shift amount, a register (advanced by en), then the
// rounding, saturation and sign. The caller decodes the format once for all encoders.

module dnpu_mx_enc (
    input  wire              clk,
    input  wire              en,
    input  wire [3:0]        fm,      // one-hot M: [0] M=1, [1] M=2, [2] M=3, [3] M=6 (int8)
    input  wire              fint,    // int8: two's complement sign
    input  wire [2:0]        fsgn,    // float sign position, one-hot: [0] bit 3, [1] bit 5, [2] bit 7
    input  wire [2:0]        fr,      // 7 - M: the right shift of a normal result
    input  wire [7:0]        maxq,    // magnitude code of the largest normal
    input  wire [9:0]        base,    // B - S, two's complement
    input  wire              nan,     // the block's scale is 0xFF
    input  wire [15:0]       x,       // BF16
    output reg  [7:0]        code     // from the stage register: w bits, zero above
);
    // ---- stage 1 ----------------------------------------------------------------------
    wire       h = |x[14:7];
    wire [6:0] m = x[6:0];

    reg  [2:0] msb;                    // BF16 subnormal: the top set bit of m
    integer    k;
    always @* begin
        msb = 3'd0;
        for (k = 1; k < 7; k = k + 1)
            if (m[k]) msb = k[2:0];
    end
    wire [2:0]  lz  = 3'd7 - msb;
    wire [7:0]  sn  = h ? {1'b1, m} : ({1'b0, m} << lz);   // zero stays zero
    wire [10:0] ein = h ? {3'b000, x[14:7]} : (11'd1 - {8'd0, lz});
    wire [10:0] ef  = ein + {base[9], base};
    wire        efp = ~ef[10] & (ef != 11'd0);                 // ef >= 1: a normal code
    // ef <= 0: shift 8 - M - ef = fr + 1 - ef, at most 9 (everything rounds to 0 there)
    wire [10:0] rs  = {8'd0, fr} + 11'd1 - ef;
    wire [3:0]  rsc = (rs > 11'd9) ? 4'd9 : rs[3:0];

    reg  [7:0] sn_q;
    reg  [3:0] r_q;
    reg  [4:0] ef_q;                   // exponent field of a normal code, else 0
    reg        s_q, nan_q;

    always @(posedge clk) begin
        if (en) begin
            sn_q  <= sn;
            r_q   <= efp ? {1'b0, fr} : rsc;
            ef_q  <= (efp & (h | (m != 7'd0))) ? ef[4:0] : 5'd0;
            s_q   <= x[15];
            nan_q <= nan;
        end
    end

    // ---- stage 2 ----------------------------------------------------------------------
    wire [16:0] ext = {sn_q, 9'd0} >> r_q;                      // r_q <= 9: nothing is lost
    wire [7:0]  q0  = ext[16:9];
    wire        rnd = ext[8] & ((|ext[7:0]) | q0[0]);           // ties to even

    reg  [7:0] qp;
    always @* begin
        case (1'b1)
            fm[0]:   qp = {2'b00, ef_q, q0[0]};
            fm[1]:   qp = {1'b0, ef_q, q0[1:0]};
            fm[2]:   qp = {ef_q, q0[2:0]};
            default: qp = {1'b0, ef_q[0], q0[5:0]};
        endcase
    end
    // q = qp + rnd, saturated to maxq, and its negation: the compare and -qp are made from
    // qp beside the increment, not after it (-(qp + 1) = ~qp; qp + rnd never wraps, as
    // qp <= 127 with the caller's base)
    wire [7:0] q   = qp + {7'd0, rnd};
    wire       sat = (qp > maxq) | (rnd & (qp == maxq));
    wire [7:0] qs  = sat ? maxq : q;
    wire [7:0] nqp = ~qp + 8'd1;
    wire [7:0] nqs = sat ? (~maxq + 8'd1) : (rnd ? ~qp : nqp);

    always @* begin
        if (nan_q)
            code = 8'd0;
        else if (fint)
            code = s_q ? nqs : qs;
        else
            code = qs | {s_q & fsgn[2], 1'b0, s_q & fsgn[1], 1'b0, s_q & fsgn[0], 3'b000};
    end

    // The fraction of M = 6 sits in bits [5:0]; ef_q's high bits are 0 for formats
    // whose exponent field is narrower (the caller's base keeps ef in range).
    wire unused_ok = &{1'b0, ef[9:5], q0[7:6], fm[3]};
endmodule

`default_nettype wire
