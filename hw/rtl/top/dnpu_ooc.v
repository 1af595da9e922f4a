`default_nettype none
// dnpu_ooc: dnpu_top out of context, for a place-and-route timing report of the NPU alone
// (scripts/ecp5_pnr.py). Every NPU input comes from a flip-flop here and every NPU output
// goes into one, so each path the timer reports starts and ends in the fabric, as it would
// behind a board's interconnect, never at a pin. Five pins keep the wrapper within any
// package: the input flip-flops are one shift register fed from scan_i, and the output
// flip-flops take the NPU's outputs (load_i high) or shift them out to scan_o, so no NPU
// input is a constant and no output goes unobserved (synthesis keeps everything a board's
// ports would). The retire trace and sram_write stay unconnected, as on a board.
//
// The profile define is dnpu_top's (DNPU_PROFILE_<name>).

`include "dnpu_cfg.vh"
`include "dnpu_csr.vh"

module dnpu_ooc (
    input  wire clk,
    input  wire rst_n,
    input  wire scan_i,
    input  wire load_i,
    output wire scan_o
);
    localparam integer AW  = `DNPU_CFG_AXI_ADDR_WIDTH;
    localparam integer DW  = `DNPU_CFG_AXI_DATA_WIDTH;
    localparam integer IW  = `DNPU_CFG_AXI_ID_WIDTH;
    localparam integer CAW = `DNPU_CSR_ADDR_W;
    localparam integer CDW = `DNPU_CSR_DATA_W;
    // NPU input bits: AXI4-Lite AW, W, B, AR, R; AXI4 AW, W, B, AR, R handshakes and payloads
    localparam integer IN_W  = (CAW + 3 + 1) + (CDW + CDW / 8 + 1) + 1 + (CAW + 3 + 1) + 1
                             + 1 + 1 + (IW + 2 + 1) + 1 + (IW + DW + 2 + 1 + 1);
    // NPU output bits: AXI4-Lite ready, response and read data; AXI4 AW, W, B, AR, R
    localparam integer OUT_W = 1 + 1 + (2 + 1) + 1 + (CDW + 2 + 1)
                             + (IW + AW + 8 + 3 + 2 + 1 + 4 + 3 + 1) + (DW + DW / 8 + 1 + 1) + 1
                             + (IW + AW + 8 + 3 + 2 + 1 + 4 + 3 + 1) + 1;

    reg rst_q;
    reg [IN_W-1:0]  in_q;
    reg [OUT_W-1:0] out_q;
    always @(posedge clk) begin
        rst_q <= rst_n;
        in_q  <= {in_q[IN_W-2:0], scan_i};
    end

    wire [CAW-1:0] s_axil_awaddr, s_axil_araddr;
    wire [2:0]     s_axil_awprot, s_axil_arprot;
    wire [CDW-1:0] s_axil_wdata, s_axil_rdata;
    wire [CDW/8-1:0] s_axil_wstrb;
    wire [1:0]     s_axil_bresp, s_axil_rresp;
    wire s_axil_awvalid, s_axil_awready, s_axil_wvalid, s_axil_wready, s_axil_bvalid, s_axil_bready;
    wire s_axil_arvalid, s_axil_arready, s_axil_rvalid, s_axil_rready;

    wire [IW-1:0]  m_axi_awid, m_axi_bid, m_axi_arid, m_axi_rid;
    wire [AW-1:0]  m_axi_awaddr, m_axi_araddr;
    wire [7:0]     m_axi_awlen, m_axi_arlen;
    wire [2:0]     m_axi_awsize, m_axi_arsize, m_axi_awprot, m_axi_arprot;
    wire [1:0]     m_axi_awburst, m_axi_arburst, m_axi_bresp, m_axi_rresp;
    wire [3:0]     m_axi_awcache, m_axi_arcache;
    wire [DW-1:0]  m_axi_wdata, m_axi_rdata;
    wire [DW/8-1:0] m_axi_wstrb;
    wire m_axi_awlock, m_axi_awvalid, m_axi_awready, m_axi_wlast, m_axi_wvalid, m_axi_wready;
    wire m_axi_bvalid, m_axi_bready, m_axi_arlock, m_axi_arvalid, m_axi_arready;
    wire m_axi_rlast, m_axi_rvalid, m_axi_rready;

    assign {s_axil_awaddr, s_axil_awprot, s_axil_awvalid, s_axil_wdata, s_axil_wstrb, s_axil_wvalid,
            s_axil_bready, s_axil_araddr, s_axil_arprot, s_axil_arvalid, s_axil_rready,
            m_axi_awready, m_axi_wready, m_axi_bid, m_axi_bresp, m_axi_bvalid, m_axi_arready,
            m_axi_rid, m_axi_rdata, m_axi_rresp, m_axi_rlast, m_axi_rvalid} = in_q;

    wire [OUT_W-1:0] outs = {
        s_axil_awready, s_axil_wready, s_axil_bresp, s_axil_bvalid, s_axil_arready,
        s_axil_rdata, s_axil_rresp, s_axil_rvalid,
        m_axi_awid, m_axi_awaddr, m_axi_awlen, m_axi_awsize, m_axi_awburst, m_axi_awlock, m_axi_awcache,
        m_axi_awprot, m_axi_awvalid, m_axi_wdata, m_axi_wstrb, m_axi_wlast, m_axi_wvalid, m_axi_bready,
        m_axi_arid, m_axi_araddr, m_axi_arlen, m_axi_arsize, m_axi_arburst, m_axi_arlock, m_axi_arcache,
        m_axi_arprot, m_axi_arvalid, m_axi_rready};

    always @(posedge clk)
        out_q <= load_i ? outs : {out_q[OUT_W-2:0], 1'b0};
    assign scan_o = out_q[OUT_W-1];

    /* verilator lint_off PINCONNECTEMPTY */
    dnpu_top u_npu (
        .clk(clk), .rst_n(rst_q),
        .s_axil_awaddr(s_axil_awaddr), .s_axil_awprot(s_axil_awprot), .s_axil_awvalid(s_axil_awvalid),
        .s_axil_awready(s_axil_awready),
        .s_axil_wdata(s_axil_wdata), .s_axil_wstrb(s_axil_wstrb), .s_axil_wvalid(s_axil_wvalid),
        .s_axil_wready(s_axil_wready),
        .s_axil_bresp(s_axil_bresp), .s_axil_bvalid(s_axil_bvalid), .s_axil_bready(s_axil_bready),
        .s_axil_araddr(s_axil_araddr), .s_axil_arprot(s_axil_arprot), .s_axil_arvalid(s_axil_arvalid),
        .s_axil_arready(s_axil_arready),
        .s_axil_rdata(s_axil_rdata), .s_axil_rresp(s_axil_rresp), .s_axil_rvalid(s_axil_rvalid),
        .s_axil_rready(s_axil_rready),
        .m_axi_awid(m_axi_awid), .m_axi_awaddr(m_axi_awaddr), .m_axi_awlen(m_axi_awlen),
        .m_axi_awsize(m_axi_awsize), .m_axi_awburst(m_axi_awburst), .m_axi_awlock(m_axi_awlock),
        .m_axi_awcache(m_axi_awcache), .m_axi_awprot(m_axi_awprot), .m_axi_awvalid(m_axi_awvalid),
        .m_axi_awready(m_axi_awready),
        .m_axi_wdata(m_axi_wdata), .m_axi_wstrb(m_axi_wstrb), .m_axi_wlast(m_axi_wlast),
        .m_axi_wvalid(m_axi_wvalid), .m_axi_wready(m_axi_wready),
        .m_axi_bid(m_axi_bid), .m_axi_bresp(m_axi_bresp), .m_axi_bvalid(m_axi_bvalid),
        .m_axi_bready(m_axi_bready),
        .m_axi_arid(m_axi_arid), .m_axi_araddr(m_axi_araddr), .m_axi_arlen(m_axi_arlen),
        .m_axi_arsize(m_axi_arsize), .m_axi_arburst(m_axi_arburst), .m_axi_arlock(m_axi_arlock),
        .m_axi_arcache(m_axi_arcache), .m_axi_arprot(m_axi_arprot), .m_axi_arvalid(m_axi_arvalid),
        .m_axi_arready(m_axi_arready),
        .m_axi_rid(m_axi_rid), .m_axi_rdata(m_axi_rdata), .m_axi_rresp(m_axi_rresp),
        .m_axi_rlast(m_axi_rlast), .m_axi_rvalid(m_axi_rvalid), .m_axi_rready(m_axi_rready),
        .retire_valid(), .retire_pc(), .retire_word(), .retire_x_we(), .retire_x_idx(),
        .retire_x_data(), .retire_f_we(), .retire_f_idx(), .retire_f_data(), .sram_write(),
        .busy()                     // STATUS.BUSY, also readable through the CSR port
    );
    /* verilator lint_on PINCONNECTEMPTY */
endmodule

`default_nettype wire
