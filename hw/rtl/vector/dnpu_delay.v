`default_nettype none
// dnpu_delay: x delayed by D clock edges (D = 0: a wire), W bits. The vector unit keeps its
// control (valid, last chunk, the row's r) in step with pipelined FP units through these.
// With CLR = 1 the registers are cleared by clr (synchronous): use it for valid bits, so
// that nothing in flight survives a reset or the end of an instruction; data needs none.

module dnpu_delay #(
    parameter integer W   = 1,
    parameter integer D   = 1,
    parameter integer CLR = 0
) (
    input  wire         clk,
    input  wire         clr,
    input  wire [W-1:0] x,
    output wire [W-1:0] y
);
    generate
        if (D == 0) begin : g_wire
            assign y = x;
            wire unused_ok = &{1'b0, clk, clr};
        end else begin : g_reg
            reg [W-1:0] q [0:D-1];
            integer i;
            always @(posedge clk) begin
                q[0] <= (CLR != 0 && clr) ? {W{1'b0}} : x;
                for (i = 1; i < D; i = i + 1)
                    q[i] <= (CLR != 0 && clr) ? {W{1'b0}} : q[i-1];
            end
            assign y = q[D-1];
            if (CLR == 0) begin : g_noclr
                wire unused_ok = &{1'b0, clr};
            end
        end
    endgenerate
endmodule

`default_nettype wire
