`default_nettype none
// dnpu_fp32_mul: y = fp32(a * b); with bf16 = 1 rounded once to BF16 (y[15:0] = 0).
// Combinational. The logic: fp_mul_f in hw/rtl/common/dnpu_fp_funcs.vh (NUMERICS
// section 2; the NUMERICS example 2^-63(1-2^-24) x 2^-63 -> +0 is its FTZ edge).
//
// en: y = 0 while en is 0. The function is called inside `if (en)`, so Verilator,
// which evaluates every module's combinational logic on every clock edge, skips the
// arithmetic of an idle unit (the vector unit has many; see hw/rtl/vector/dnpu_vec.v).
// For synthesis it is an AND gate on the output. These FP units stay modules, not
// inlined functions, because Yosys maps each module once: the vector unit with its
// lanes' arithmetic inlined was one netlist that ABC did not map in 45 minutes.

/* verilator tracing_off */
module dnpu_fp32_mul (
    input  wire        en,
    input  wire [31:0] a,
    input  wire [31:0] b,
    input  wire        bf16,
    output reg  [31:0] y
);
`include "dnpu_fp_funcs.vh"
    always @* begin
        y = 32'd0;
        if (en)
            y = fp_mul_f(a, b, bf16);
    end
endmodule

`default_nettype wire
