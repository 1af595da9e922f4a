`default_nettype none
// dnpu_fp32_rsqrt: y = fp32(1 / sqrt(x)), the correctly rounded reciprocal
// square root of docs/NUMERICS.md section 4.1 ("RSQRT", S_RSQRT_FP), bit for
// bit numerics.rsqrt_f32: DAZ read, RNE; 1/sqrt(+-0) = +-Inf (so a subnormal
// gives +-Inf), 1/sqrt(+Inf) = +0, a NaN or a negative nonzero x (-Inf
// included) gives 0x7FC00000. A finite result is always normal (biased
// exponent 63 to 190), so there is no overflow and no FTZ.
//
// Handshake: as dnpu_fp32_reci. start is taken on a rising edge where busy is
// low (ignored while busy is high); x is sampled on that edge. busy is high
// from then until done. done is high for one cycle, LATENCY = 25 edges after
// the taking edge, with y valid; y holds until the next done. busy is low in
// the done cycle, so a start there is taken on the edge that ends it: one
// result per 26 cycles. Every operand, specials included, takes the same
// LATENCY, so a scheduler can count cycles instead of waiting on done.
//
// Algorithm (NUMERICS 4.1): x = (M' / 2^23) * 4^k with M' / 2^23 in [1, 4);
// Y = the largest integer with Y^2 * M' <= 2^73, found one bit at a time.
// Unless x is a power of 4 (M' = 2^23, Y = 2^25, handled as an exact case),
// 2^24 <= Y < 2^25: bit 24 is known, so the 24 bits 23..0 take 24 cycles
// (LATENCY = 24 + 1 rounding cycle). The bits of Y above i are Yh = Y >> (i+1);
// instead of T = Y^2 * M' and U = Y * M' (up to 76 and 50 bits) the unit keeps
// both scaled by 2^-2i, so their low zero bits are never stored:
//   r = (2^73 - Yh^2 * M' * 2^(2i+2)) / 2^(2i+2)   the remainder, >= 0
//   S = 4 * Yh * M' + M'                            the trial subtrahend
// Bit i is kept when 4r >= S, i.e. (Y + 2^i)^2 * M' <= 2^73; then
// r' = 4r - S (else r' = 4r) and S' = 2S + 3M' (else S' = 2S - M'), both
// candidates of S' formed beside the compare so only the compare and a mux sit
// between r's flops. Start: Y = 2^24, r = 2^25 - M', S = 5M'. After bit 0,
// r = 2^73 - Y^2 * M' exactly: the sticky bit is r != 0.
//
// Widths (checked over every M' in [2^23, 2^25)): before each compare
// 4r < 2^51 (r < 2^49) and S < 2^50; every kept remainder r' < 2*Yh'*M' + M'
// < 2^50. So r and S are 50 bits and the compare is a 51-bit subtraction whose
// sign bit is exact: 4r - S lies in (-2^50, 2^50).
//
// Rounding: Y's bits 24..1 are the significand 1.f of 2/sqrt(M'/2^23), bit 0
// the round bit; RNE with the sticky bit. Biased exponent 126 - k, which is
// (380 - e) >> 1 for both parities of e; a power of 4 has significand 2.0 at
// that exponent, i.e. 2^-k exactly. (No tie is possible, section 4.1, but the
// sticky bit makes RNE exact regardless.)

module dnpu_fp32_rsqrt (
    input  wire        clk,
    input  wire        rst_n,
    input  wire        start,
    input  wire [31:0] x,
    output wire        busy,
    output reg         done,
    output reg  [31:0] y
);
    localparam [4:0] ITER = 5'd24;   // cnt = ITER is the rounding cycle

    reg        busy_r;
    reg [4:0]  cnt;
    reg        sgn;
    reg [7:0]  e_m1;     // result's biased exponent - 1 (for a non-power of 4)
    reg        o_nan;
    reg        o_inf;
    reg        o_zero;
    reg        pow4;
    reg [24:0] mp;       // M'
    reg [49:0] r;
    reg [49:0] s;
    reg [23:0] q;        // bits 23..0 of Y

    assign busy = busy_r;

    // Operand decode, on the start edge.
    wire [7:0]  ex_in = x[30:23];
    wire [24:0] mp_in = x[23] ? {2'b01, x[22:0]} : {1'b1, x[22:0], 1'b0};   // e odd: M, even: 2M
    wire        e_zero = ~(|ex_in);
    wire        e_max  = &ex_in;
    wire        f_zero = ~(|x[22:0]);

    // One bit of Y.
    wire [50:0] d     = {r[48:0], 2'b00} - {1'b0, s};
    wire        kbit  = ~d[50];
    wire [26:0] m3    = {2'b00, mp} + {1'b0, mp, 1'b0};
    wire [49:0] s2    = {s[48:0], 1'b0};
    wire [49:0] s_up  = s2 + {23'd0, m3};
    wire [49:0] s_dn  = s2 - {25'd0, mp};

    // Rounding and exponent, from the registers after the last iteration.
    wire        up    = q[0] & ((|r) | q[1]);
    wire [24:0] manr  = pow4 ? 25'h100_0000 : ({2'b01, q[23:1]} + {24'd0, up});
    wire [30:0] mag   = {e_m1, 23'd0} + {6'd0, manr};   // manr's carry lands in the exponent

    reg  [31:0] res;
    always @* begin
        if (o_nan)
            res = 32'h7FC0_0000;
        else if (o_inf)
            res = {sgn, 31'h7F80_0000};
        else if (o_zero)
            res = 32'd0;
        else
            res = {1'b0, mag};
    end

    always @(posedge clk) begin
        if (!rst_n) begin
            busy_r <= 1'b0;
            done   <= 1'b0;
            cnt    <= 5'd0;
        end else begin
            done <= 1'b0;
            if (!busy_r) begin
                if (start) begin
                    busy_r <= 1'b1;
                    cnt    <= 5'd0;
                end
            end else if (cnt != ITER) begin
                cnt <= cnt + 5'd1;
            end else begin
                busy_r <= 1'b0;
                done   <= 1'b1;
            end
        end
    end

    // Datapath registers need no reset: they are loaded with start.
    always @(posedge clk) begin
        if (!busy_r) begin
            if (start) begin
                sgn    <= x[31];
                // (378 - e) >> 1 = 189 - ceil(e / 2)
                e_m1   <= 8'd189 - {1'b0, ex_in[7:1]} - {7'd0, ex_in[0]};
                o_nan  <= (e_max & ~f_zero) | (x[31] & ~e_zero);
                o_inf  <= e_zero;
                o_zero <= e_max;
                pow4   <= x[23] & f_zero;
                mp     <= mp_in;
                r      <= {24'd0, 26'h200_0000 - {1'b0, mp_in}};
                s      <= {22'd0, {1'b0, mp_in, 2'b00} + {3'b000, mp_in}};
            end
        end else if (cnt != ITER) begin
            r <= kbit ? {d[49:0]} : {r[47:0], 2'b00};
            s <= kbit ? s_up : s_dn;
            q <= {q[22:0], kbit};
        end else if (rst_n) begin
            y <= res;        // with done: a reset in this cycle leaves y as it was
        end
    end
endmodule

`default_nettype wire
