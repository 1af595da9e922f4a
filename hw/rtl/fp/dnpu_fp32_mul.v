`default_nettype none
// dnpu_fp32_mul: y = fp32(a * b); with bf16 = 1 rounded once to BF16 (y[15:0] = 0).
// Combinational. The logic: fp_mul_f in hw/rtl/common/dnpu_fp_funcs.vh (NUMERICS
// section 2; the NUMERICS example 2^-63(1-2^-24) x 2^-63 -> +0 is its FTZ edge).

module dnpu_fp32_mul (
    input  wire [31:0] a,
    input  wire [31:0] b,
    input  wire        bf16,
    output wire [31:0] y
);
`include "dnpu_fp_funcs.vh"
    assign y = fp_mul_f(a, b, bf16);
endmodule

`default_nettype wire
