`default_nettype none
// dnpu_fp32_reci: y = fp32(1 / x), the correctly rounded reciprocal of
// docs/NUMERICS.md section 4 ("RECI", S_RECI_FP) with the rule of section 2:
// DAZ read, RNE, FTZ; 1/+-0 = +-Inf (so 1/subnormal = +-Inf), 1/+-Inf = +-0,
// NaN -> 0x7FC00000; 1/0x7E800000 = 0x00800000 is kept, 1/0x7E800001 -> +0.
//
// Handshake: start is taken on a rising edge where busy is low (ignored while
// busy is high); x is sampled on that edge. busy is high from then until done.
// done is high for one cycle, LATENCY = 25 edges after the taking edge, with y
// valid; y holds until the next done. busy is low in the done cycle, so a start
// there is taken on the edge that ends it: one reciprocal per 26 cycles. Every
// operand, specials included, takes the same LATENCY, so a scheduler can count
// cycles instead of waiting on done.
//
// Restoring division, one quotient bit per cycle: for x = M * 2^(e - 150)
// (M = 1.f * 2^23), Q = 2^48 / M lies in (2^24, 2^25) unless f = 0. Its top bit
// is 1, so 24 iterations give the 23 fraction bits and the round bit; the last
// remainder is the sticky bit. 1/x = (Q / 2^24) * 2^(126 - e), i.e. biased
// exponent 253 - e, plus one if rounding carries. A power of two (f = 0)
// is exact: biased exponent 254 - e, which keeps 2^-126 and flushes 2^-127.
// (Correct rounding needs no tie case: 1/x is never a midpoint, section 4, but
// the sticky bit makes RNE exact regardless.)

module dnpu_fp32_reci (
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
    reg [7:0]  ex;
    reg        is_nan;
    reg        is_inf;
    reg        is_zero;
    reg        pow2;
    reg [23:0] dvs;    // M
    reg [25:0] rem;    // partial remainder, < 2M before each step
    reg [23:0] q;

    assign busy = busy_r;

    wire [25:0] diff = rem - {2'b00, dvs};
    wire        qbit = ~diff[25];

    // Rounding and exponent, from the registers after the last iteration.
    wire        up    = q[0] & ((|rem) | q[1]);
    wire [24:0] manr  = pow2 ? 25'h100_0000 : ({2'b01, q[23:1]} + {24'd0, up});
    wire [9:0]  e_m1  = 10'd252 - {2'b00, ex};          // biased exponent - 1, no carry
    wire [30:0] mag   = {e_m1[7:0], 23'd0} + {6'd0, manr};  // mod 2^31: carries land right

    reg  [31:0] res;
    always @* begin
        if (is_nan)
            res = 32'h7FC0_0000;
        else if (is_zero)
            res = {sgn, 31'h7F80_0000};
        else if (is_inf | ((e_m1 + {9'd0, manr[24]}) >= 10'h200))
            res = {sgn, 31'd0};    // 1/Inf, or FTZ: final biased exponent <= 0
        else
            res = {sgn, mag};
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
                sgn     <= x[31];
                ex      <= x[30:23];
                is_nan  <= (&x[30:23]) & (|x[22:0]);
                is_inf  <= (&x[30:23]) & ~(|x[22:0]);
                is_zero <= ~(|x[30:23]);
                pow2    <= ~(|x[22:0]);
                dvs     <= {1'b1, x[22:0]};
                rem     <= 26'h100_0000 - {2'b00, x[22:0], 1'b0};   // 2 * (2^24 - M)
            end
        end else if (cnt != ITER) begin
            rem <= qbit ? {diff[24:0], 1'b0} : {rem[24:0], 1'b0};
            q   <= {q[22:0], qbit};
        end else if (rst_n) begin
            y <= res;        // with done: a reset in this cycle leaves y as it was
        end
    end
endmodule

`default_nettype wire
