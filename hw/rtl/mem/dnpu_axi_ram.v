`default_nettype none
// dnpu_axi_ram: on-chip memory for a board without DRAM: the NPU's AXI4 master
// on one port, the serial bridge's AXI4-Lite master on the other.
//
// MEM_BYTES (a power of two) at byte address BASE. Storage is one true
// dual-port RAM of DATA_W-bit words with byte enables: port A serves the AXI4
// slave, port B the AXI4-Lite slave, which reads a whole word and returns its
// 32-bit lane and writes its lane through the byte enables. Each port does one
// access per cycle and registers its read data (block RAM on an FPGA).
// Both ports writing the same bytes in the same cycle leave them undefined:
// the host does not write memory the NPU is using while it runs.
//
// AXI4 slave (as dnpu_top's master uses it): INCR bursts of full-width beats
// (AxSIZE = log2(DATA_W / 8); AxBURST and AxSIZE are not checked), one burst
// at a time per direction, responses in order with the request's ID. A burst
// that does not lie wholly inside the window is answered DECERR without
// touching the RAM (its write data is taken and dropped, its read beats are
// 0). One beat per cycle on each channel; a read and a write burst share
// port A, taking turns when both have a beat ready.
//
// AXI4-Lite slave: 32-bit, one transfer at a time (a read waits for a pending
// write response and the other way round), AW and W taken together; an
// address outside the window gets DECERR. Address bits [1:0] are ignored.

module dnpu_axi_ram #(
    parameter integer MEM_BYTES = 1 << 20,
    parameter [31:0]  BASE      = 32'h0100_0000,
    parameter integer DATA_W    = 128,
    parameter integer ID_W      = 4
) (
    input  wire                  clk,
    input  wire                  rst_n,          // synchronous, active low

    // AXI4 slave
    input  wire [ID_W-1:0]       s_axi_awid,
    input  wire [31:0]           s_axi_awaddr,
    input  wire [7:0]            s_axi_awlen,
    input  wire                  s_axi_awvalid,
    output wire                  s_axi_awready,
    input  wire [DATA_W-1:0]     s_axi_wdata,
    input  wire [DATA_W/8-1:0]   s_axi_wstrb,
    input  wire                  s_axi_wlast,
    input  wire                  s_axi_wvalid,
    output wire                  s_axi_wready,
    output reg  [ID_W-1:0]       s_axi_bid,
    output reg  [1:0]            s_axi_bresp,
    output reg                   s_axi_bvalid,
    input  wire                  s_axi_bready,
    input  wire [ID_W-1:0]       s_axi_arid,
    input  wire [31:0]           s_axi_araddr,
    input  wire [7:0]            s_axi_arlen,
    input  wire                  s_axi_arvalid,
    output wire                  s_axi_arready,
    output reg  [ID_W-1:0]       s_axi_rid,
    output wire [DATA_W-1:0]     s_axi_rdata,
    output reg  [1:0]            s_axi_rresp,
    output reg                   s_axi_rlast,
    output reg                   s_axi_rvalid,
    input  wire                  s_axi_rready,

    // AXI4-Lite slave, 32-bit
    input  wire [31:0]           s_axil_awaddr,
    input  wire                  s_axil_awvalid,
    output wire                  s_axil_awready,
    input  wire [31:0]           s_axil_wdata,
    input  wire [3:0]            s_axil_wstrb,
    input  wire                  s_axil_wvalid,
    output wire                  s_axil_wready,
    output reg  [1:0]            s_axil_bresp,
    output reg                   s_axil_bvalid,
    input  wire                  s_axil_bready,
    input  wire [31:0]           s_axil_araddr,
    input  wire                  s_axil_arvalid,
    output wire                  s_axil_arready,
    output wire [31:0]           s_axil_rdata,
    output reg  [1:0]            s_axil_rresp,
    output reg                   s_axil_rvalid,
    input  wire                  s_axil_rready
);
    localparam integer BYTES  = DATA_W / 8;
    localparam integer LB     = $clog2(BYTES);            // byte-in-word bits
    localparam integer MW     = $clog2(MEM_BYTES);        // byte-offset bits
    localparam integer AW     = MW - LB;                  // word-index bits
    localparam integer LANES  = DATA_W / 32;
    localparam integer LW     = LANES > 1 ? $clog2(LANES) : 1;
    localparam [LW-1:0] LMASK = LANES[LW-1:0] - 1'b1;     // 0 when one lane
    localparam [1:0] OKAY = 2'b00, DECERR = 2'b11;

    // Inside the window: BASE <= a and a + n <= BASE + MEM_BYTES (33-bit sums).
    function automatic in_win(input [31:0] a, input [32:0] n);
        in_win = a >= BASE && {1'b0, a} + n <= {1'b0, BASE} + MEM_BYTES;
    endfunction
    function automatic [32:0] burst_bytes(input [7:0] len);
        burst_bytes = ({25'd0, len} + 33'd1) << LB;
    endfunction
    // Offsets into the window; their word-index bits address the RAM.
    wire [31:0] ar_off = s_axi_araddr - BASE, aw_off = s_axi_awaddr - BASE;
    wire [31:0] lr_off = s_axil_araddr - BASE, lw_off = s_axil_awaddr - BASE;

    // ---- the RAM ------------------------------------------------------------------
    // no_rw_check: a read of bytes the other port writes in the same cycle may return
    // either value (as the two ports writing the same bytes are undefined above), and a
    // port's own read data in a write cycle is never used (a_q, b_q). Without it Yosys
    // must keep old-data reads across the ports, which no ECP5 EBR mode gives, and
    // builds the RAM from flip-flops.
    (* no_rw_check *)
    reg [DATA_W-1:0] mem [0:(1 << AW) - 1];
    reg              a_en, b_en;
    reg [AW-1:0]     a_addr, b_addr;
    reg [BYTES-1:0]  a_we, b_we;
    reg [DATA_W-1:0] a_wdata, b_wdata;
    reg [DATA_W-1:0] a_q, b_q;

    integer i;
    always @(posedge clk) if (a_en) begin
        for (i = 0; i < BYTES; i = i + 1)
            if (a_we[i]) mem[a_addr][8*i +: 8] <= a_wdata[8*i +: 8];
        a_q <= mem[a_addr];
    end
    integer j;
    always @(posedge clk) if (b_en) begin
        for (j = 0; j < BYTES; j = j + 1)
            if (b_we[j]) mem[b_addr][8*j +: 8] <= b_wdata[8*j +: 8];
        b_q <= mem[b_addr];
    end

    // ---- AXI4 read ----------------------------------------------------------------
    reg          rd_act, rd_ok;
    reg [AW-1:0] rd_idx;
    reg [8:0]    rd_left;          // beats not yet read from the RAM
    reg          rd_zero;          // the beat on R is a DECERR beat: data 0

    // ---- AXI4 write ---------------------------------------------------------------
    reg          wr_act, wr_ok;
    reg [AW-1:0] wr_idx;

    // Port A: a write beat and a read beat take turns when both are ready.
    wire rd_want = rd_act && rd_left != 0 && (!s_axi_rvalid || s_axi_rready);
    wire wr_want = wr_act && s_axi_wvalid && !s_axi_bvalid;
    reg  turn_rd;                  // the read side goes first on a tie
    wire rd_go = rd_want && (!wr_want || turn_rd);
    wire wr_go = wr_want && !rd_go;

    // a_q changes with every port A access, writes included, so a read beat that
    // waits on R (RREADY low) is kept here from the cycle after its read.
    reg              a_fresh;      // a_q is the beat on R
    reg [DATA_W-1:0] a_hold;
    always @(posedge clk) begin
        a_fresh <= rd_go;
        if (a_fresh) a_hold <= a_q;
    end

    assign s_axi_arready = !rd_act;
    assign s_axi_awready = !wr_act;
    assign s_axi_wready  = wr_go;
    assign s_axi_rdata   = rd_zero ? {DATA_W{1'b0}} : a_fresh ? a_q : a_hold;

    always @(*) begin
        a_en    = (rd_go && rd_ok) || (wr_go && wr_ok);
        a_addr  = wr_go ? wr_idx : rd_idx;
        a_we    = wr_go && wr_ok ? s_axi_wstrb : {BYTES{1'b0}};
        a_wdata = s_axi_wdata;
    end

    always @(posedge clk) begin
        if (!rst_n) begin
            rd_act <= 1'b0;
            wr_act <= 1'b0;
            s_axi_rvalid <= 1'b0;
            s_axi_bvalid <= 1'b0;
            turn_rd <= 1'b0;
        end else begin
            if (rd_want && wr_want) turn_rd <= !turn_rd;

            if (s_axi_arvalid && !rd_act) begin
                rd_act  <= 1'b1;
                rd_ok   <= in_win(s_axi_araddr, burst_bytes(s_axi_arlen));
                rd_idx  <= ar_off[MW-1:LB];
                rd_left <= {1'b0, s_axi_arlen} + 9'd1;
                s_axi_rid <= s_axi_arid;
            end
            if (s_axi_rvalid && s_axi_rready) s_axi_rvalid <= 1'b0;
            if (rd_go) begin
                rd_idx  <= rd_idx + 1'b1;
                rd_left <= rd_left - 1'b1;
                s_axi_rvalid <= 1'b1;
                s_axi_rlast  <= rd_left == 9'd1;
                s_axi_rresp  <= rd_ok ? OKAY : DECERR;
                rd_zero      <= !rd_ok;
            end
            if (rd_act && rd_left == 0 && (!s_axi_rvalid || (s_axi_rready && s_axi_rlast)))
                rd_act <= 1'b0;

            if (s_axi_awvalid && !wr_act) begin
                wr_act <= 1'b1;
                wr_ok  <= in_win(s_axi_awaddr, burst_bytes(s_axi_awlen));
                wr_idx <= aw_off[MW-1:LB];
                s_axi_bid <= s_axi_awid;
            end
            if (wr_go) begin
                wr_idx <= wr_idx + 1'b1;
                if (s_axi_wlast) begin
                    s_axi_bvalid <= 1'b1;
                    s_axi_bresp  <= wr_ok ? OKAY : DECERR;
                end
            end
            if (s_axi_bvalid && s_axi_bready) begin
                s_axi_bvalid <= 1'b0;
                wr_act <= 1'b0;
            end
        end
    end

    // ---- AXI4-Lite ----------------------------------------------------------------
    wire lite_free = !s_axil_rvalid && !s_axil_bvalid;
    wire l_rd = lite_free && s_axil_arvalid;
    wire l_wr = lite_free && !s_axil_arvalid && s_axil_awvalid && s_axil_wvalid;
    wire l_ok = in_win(l_rd ? s_axil_araddr : s_axil_awaddr, 33'd4);
    reg  [LW-1:0] l_lane;
    wire [29:0] l_aw = s_axil_awaddr[31:2];
    wire [29:0] l_ar = s_axil_araddr[31:2];
    wire [LW-1:0] wr_lane = l_aw[LW-1:0] & LMASK;
    // Bits above the window are checked by in_win, the byte bits are not used.
    wire unused_ok = &{1'b0, l_aw, l_ar, ar_off, aw_off, lr_off, lw_off};
    assign s_axil_arready = l_rd;
    assign s_axil_awready = l_wr;
    assign s_axil_wready  = l_wr;
    assign s_axil_rdata   = b_q[32*l_lane +: 32];

    always @(*) begin
        b_en    = (l_rd || l_wr) && l_ok;
        b_addr  = l_rd ? lr_off[MW-1:LB] : lw_off[MW-1:LB];
        b_we    = l_wr && l_ok ? {{(BYTES - 4){1'b0}}, s_axil_wstrb} << (4 * wr_lane) : {BYTES{1'b0}};
        b_wdata = {LANES{s_axil_wdata}};
    end

    always @(posedge clk) begin
        if (!rst_n) begin
            s_axil_rvalid <= 1'b0;
            s_axil_bvalid <= 1'b0;
        end else begin
            if (s_axil_rvalid && s_axil_rready) s_axil_rvalid <= 1'b0;
            if (s_axil_bvalid && s_axil_bready) s_axil_bvalid <= 1'b0;
            if (l_rd) begin
                s_axil_rvalid <= 1'b1;
                s_axil_rresp  <= l_ok ? OKAY : DECERR;
                l_lane        <= l_ar[LW-1:0] & LMASK;
            end
            if (l_wr) begin
                s_axil_bvalid <= 1'b1;
                s_axil_bresp  <= l_ok ? OKAY : DECERR;
            end
        end
    end
endmodule
`default_nettype wire
