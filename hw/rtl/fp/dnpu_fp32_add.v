`default_nettype none
// dnpu_fp32_add: y = fp32(a + b), or fp32(a - b) when sub is 1; with bf16 = 1 the sum
// is rounded once to BF16 (y[31:16], y[15:0] = 0). Combinational; y = 0 while en is 0
// (see dnpu_fp32_mul for why). The logic and why it is exact: fp_add_f in
// hw/rtl/common/dnpu_fp_funcs.vh (docs/NUMERICS.md section 2).

/* verilator tracing_off */
module dnpu_fp32_add (
    input  wire        en,
    input  wire [31:0] a,
    input  wire [31:0] b,
    input  wire        sub,
    input  wire        bf16,
    output reg  [31:0] y
);
`include "dnpu_fp_funcs.vh"
    always @* begin
        y = 32'd0;
        if (en)
            y = fp_add_f(a, b, sub, bf16);
    end
endmodule

`default_nettype wire
