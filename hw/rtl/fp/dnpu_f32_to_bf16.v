`default_nettype none
// dnpu_f32_to_bf16: FP32 -> BF16 (DAZ read, RNE to 8 significant bits, FTZ, overflow to
// +-Inf, canonical NaN), NUMERICS section 2. Combinational. The logic: fp_narrow_f in
// hw/rtl/common/dnpu_fp_funcs.vh.

module dnpu_f32_to_bf16 (
    input  wire [31:0] a,
    output wire [15:0] y16
);
`include "dnpu_fp_funcs.vh"
    assign y16 = fp_narrow_f(a);
endmodule

`default_nettype wire
