`default_nettype none
// dnpu_matrix_pe: one processing element of the matrix unit's output-stationary array, for
// SLOTS activation rows of one output column. Per row, each k is a multiply-add
// acc = fp32(a + fp32(x * w)), a = init on the first k of a tile (+0, or the FP32
// accumulator an earlier instruction left, read with DAZ by the add) and acc otherwise
// (docs/NUMERICS.md section 11: the product is rounded before the add, one FP32 add per k in
// increasing k). On the tile's last k the new sum also goes to the row's shadow register
// sh, which the unit drains while the next tile accumulates.
//
// A step (en) offers one k for the SLOTS rows (v: which take part): w, and per row x and
// init. The operands are registered (A); in the SLOTS cycles after, one row a cycle is
// multiplied, its product registered (B) and added in dnpu_fp32_add with SLOTS stages. The
// add and the rows' accumulators are the only loop, and it holds SLOTS registers, so each
// stage of the loop is a SLOTS-th of one FP32 add: interleaving the rows is what lets the
// adder be pipelined without changing the order of any row's sum. For a step in cycle t,
// row s's new acc (and sh) is written at the end of cycle t + 1 + s + SLOTS, in time for
// its next k when steps come every SLOTS cycles, the fastest the unit offers them; the last
// row's at the end of t + 2*SLOTS (the unit reads sh after that). clr drops the operations
// in flight (flush, reset): none writes acc or sh from the clr cycle on.
//
// x and w are BF16; widening to FP32 is the bit pattern << 16 (exact). The product is
// fp_mul_f called here on the widened operands rather than a dnpu_fp32_mul instance:
// synthesis keeps the hierarchy, so only inside this module does Yosys see the operands'
// zero low halves (an 8x8-bit significand product: half the multiplier's LUTs and one
// DSP slice instead of two). While a stage holds no operation the simulator skips its
// arithmetic (rows beyond a partial group, stall cycles).
//
// Parameters: SLOTS 1 .. 4 (FP_ADD_STEPS, the adder's most stages).

module dnpu_matrix_pe #(
    parameter integer SLOTS = 1
) (
    input  wire                  clk,
    input  wire                  clr,        // synchronous: A and B hold no operation after the edge
    input  wire                  en,         // a step
    input  wire [SLOTS-1:0]      v,          // the rows taking part in it
    input  wire                  first,      // the tile's k = 0: start from init
    input  wire [SLOTS*32-1:0]   init,
    input  wire                  last,       // the tile's k = K-1: copy the results to sh
    input  wire [SLOTS*16-1:0]   x,
    input  wire [15:0]           w,
    output wire [SLOTS*32-1:0]   sh
);
    // Not inlined into dnpu_matrix, so each PE's copy of the functions has a scope of its own.
    /* verilator no_inline_module */
`include "dnpu_fp_funcs.vh"
    localparam integer SW = (SLOTS > 1) ? $clog2(SLOTS) : 1;
    localparam [31:0] SL_M1_32 = SLOTS - 1;
    localparam [SW-1:0] SL_M1 = SL_M1_32[SW-1:0];

    // A: the step's operands; act while its rows are issued, pa the row issued this cycle
    reg  [SLOTS-1:0]    va;
    reg                 fa, la, act;
    reg  [SW-1:0]       pa;
    reg  [SLOTS*16-1:0] xa;
    reg  [15:0]         wa;
    reg  [SLOTS*32-1:0] ia;
    // B: the product
    reg                 vb, fb, lb;
    reg  [SW-1:0]       sb;
    reg  [31:0]         ib, pb;
    reg  [31:0]         prod;
    wire                go = act & va[pa];

    always @(posedge clk) begin
        if (clr)
            act <= 1'b0;
        else if (en) begin
            act <= 1'b1;
            pa  <= {SW{1'b0}};
        end else if (act) begin
            pa  <= pa + 1'b1;
            if (pa == SL_M1)
                act <= 1'b0;
        end
        if (en) begin
            va <= v;
            fa <= first;
            la <= last;
            xa <= x;
            wa <= w;
            ia <= init;
        end
        vb <= go & ~clr;
        if (go) begin
            fb <= fa;
            lb <= la;
            sb <= pa;
            ib <= ia[pa*32 +: 32];
            pb <= prod;
        end
    end

    always @* begin
        prod = 32'd0;
        if (go)
            prod = fp_mul_f({xa[pa*16 +: 16], 16'd0}, {wa, 16'd0}, 1'b0);
    end

    // the adder's SLOTS - 1 registers, and beside them the row and whether it is a tile's last k
    reg  [SLOTS*32-1:0] acc, shr;       // per row: the accumulator, the shadow
    wire [31:0] sum;
    wire        vo, lo;
    wire [SW-1:0] so;
    dnpu_fp32_add #(.STAGES(SLOTS)) u_add (.clk(clk), .en(vb), .a(fb ? ib : acc[sb*32 +: 32]), .b(pb), .sub(1'b0),
                                           .bf16(1'b0), .y(sum));
    generate
        if (SLOTS > 1) begin : g_dly
            reg [SLOTS-2:0]    vd, ld;
            reg [SW-1:0]       sd [0:SLOTS-2];
            integer            i;
            always @(posedge clk) begin
                vd[0] <= vb & ~clr;
                ld[0] <= lb;
                sd[0] <= sb;
                for (i = 1; i < SLOTS - 1; i = i + 1) begin
                    vd[i] <= vd[i-1] & ~clr;
                    ld[i] <= ld[i-1];
                    sd[i] <= sd[i-1];
                end
            end
            assign vo = vd[SLOTS-2];
            assign lo = ld[SLOTS-2];
            assign so = sd[SLOTS-2];
        end else begin : g_nodly
            assign vo = vb;
            assign lo = lb;
            assign so = sb;
        end
    endgenerate

    integer r;
    always @(posedge clk)
        for (r = 0; r < SLOTS; r = r + 1)
            if (vo & ~clr & (so == r[SW-1:0])) begin
                acc[r*32 +: 32] <= sum;
                if (lo)
                    shr[r*32 +: 32] <= sum;
            end
    assign sh = shr;
endmodule

`default_nettype wire
