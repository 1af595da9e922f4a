`default_nettype none
// dnpu_sram: one on-chip memory (int SRAM, FP SRAM, later vector SRAM rows).
//
// A simple dual-port memory, one write port and one synchronous read port, in
// the form Yosys and Vivado infer as block RAM: a `reg` array written and read
// only inside one clocked block, the read data registered, no reset on the
// array or on the read register.
//
//  - Write: `we` writes `wdata` to `waddr` on the clock edge.
//  - Read: `re` loads `rdata` with the word at `raddr` on the clock edge;
//    without `re` the read register holds its value. Callers use that hold as a
//    one-entry output buffer (the store path in dnpu_lsu streams through it).
//  - A read and a write of the same address in one cycle return the old word
//    (read-first). dnpu_core never depends on it: the instruction after a
//    store reads at the earliest two cycles later.
//  - Contents start as zero: docs/EXECUTION.md makes SRAMs 0 at power-on, and
//    an FPGA's block RAMs take their initial contents from the bitstream, which
//    the initial block below describes (Yosys turns it into the init value).
//    Reset (rst_n, SOFT_RESET) does not touch the contents.

module dnpu_sram #(
    parameter integer WIDTH = 32,     // bits per word
    parameter integer DEPTH = 1024    // words; dnpu_core passes the profile's depth
) (
    input  wire                     clk,
    input  wire                     we,
    input  wire [$clog2(DEPTH)-1:0] waddr,
    input  wire [WIDTH-1:0]         wdata,
    input  wire                     re,
    input  wire [$clog2(DEPTH)-1:0] raddr,
    output reg  [WIDTH-1:0]         rdata
);
    reg [WIDTH-1:0] mem [0:DEPTH-1];

    // Zero through a parameter: a {WIDTH{1'b0}} replication of a wide row (the
    // vector SRAM on asic-2048: 32768 bits) trips Verilator's replication limit.
    localparam [WIDTH-1:0] ZERO = 0;

    integer i;
    initial begin
        for (i = 0; i < DEPTH; i = i + 1)
            mem[i] = ZERO;
        rdata = ZERO;
    end

    always @(posedge clk) begin
        if (we)
            mem[waddr] <= wdata;
        if (re)
            rdata <= mem[raddr];
    end

endmodule

`default_nettype wire
