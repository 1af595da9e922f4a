`default_nettype none
// dnpu_vec_maxtree: maximum and its lane index over N BF16 lanes, in the total
// order of docs/NUMERICS.md section 5 (DAZ, -0 == +0, NaN above every number):
// at every node the upper half wins only if strictly greater, so equal maxima
// resolve to the lowest lane and the first NaN wins. Combinational. y is the
// winning lane widened to FP32 bits as it is (callers canonicalize).

module dnpu_vec_maxtree #(
    parameter integer N  = 16,          // a power of two, >= 1
    parameter integer IW = (N > 1) ? $clog2(N) : 1
) (
    input  wire [16*N-1:0] x,           // lane i at bits 16i
    output wire [31:0]     y,
    output wire [IW-1:0]   idx
);
    generate
        if (N == 1) begin : g_leaf
            assign y   = {x[15:0], 16'd0};
            assign idx = {IW{1'b0}};
        end else if (N == 2) begin : g_pair
            wire gt, eq;
            dnpu_fp_cmp u_cmp (.a({x[31:16], 16'd0}), .b({x[15:0], 16'd0}), .gt(gt), .eq(eq));
            assign y   = gt ? {x[31:16], 16'd0} : {x[15:0], 16'd0};
            assign idx = gt;
            wire unused_ok = &{1'b0, eq};
        end else begin : g_node
            localparam integer HW = $clog2(N / 2);
            wire [31:0]   ylo, yhi;
            wire [HW-1:0] ilo, ihi;
            wire          gt, eq;
            dnpu_vec_maxtree #(.N(N / 2), .IW(HW)) u_lo (.x(x[16*(N/2)-1:0]), .y(ylo), .idx(ilo));
            dnpu_vec_maxtree #(.N(N / 2), .IW(HW)) u_hi (.x(x[16*N-1:16*(N/2)]), .y(yhi), .idx(ihi));
            dnpu_fp_cmp u_cmp (.a(yhi), .b(ylo), .gt(gt), .eq(eq));
            assign y   = gt ? yhi : ylo;
            assign idx = gt ? {1'b1, ihi} : {1'b0, ilo};
            wire unused_ok = &{1'b0, eq};
        end
    endgenerate
endmodule

`default_nettype wire
