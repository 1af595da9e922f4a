`default_nettype none
// dnpu_uart_top: the NPU on a board without a processor, driven over a UART
// (the serial link, docs/SERIAL.md).
//
//   uart_rx/tx -> dnpu_uart_bridge (AXI4-Lite master)
//                   CSR window -> dnpu_top's s_axil (the NPU's registers)
//                   MEM window -> dnpu_axi_ram's lite port
//   dnpu_top's m_axi -> dnpu_axi_ram's AXI4 port
//
// The NPU's DMA sees the RAM at the MEM window's addresses, the same ones the
// host writes its programs and buffers to. The retire trace and sram_write of
// dnpu_top are left open, as on any board.
//
// The profile is chosen like dnpu_top's, with one DNPU_PROFILE_<NAME> define.
// CLKS_PER_BIT defaults to the profile's clock over the link's baud rate; the
// co-simulation shortens it (and GAP_BITS may be shortened in a bench). INFO
// reports both and MEM_BYTES (a power of two, at most the MEM window's
// alignment).

`include "dnpu_cfg.vh"
`include "dnpu_csr.vh"
`include "dnpu_serial.vh"

module dnpu_uart_top #(
    parameter integer CLKS_PER_BIT = `DNPU_SERIAL_BOARD_CLKS_PER_BIT,
    parameter integer GAP_BITS     = `DNPU_SERIAL_FRAME_GAP_BITS,
    parameter integer MEM_BYTES    = 1 << 20
) (
    input  wire clk,
    input  wire rst_n,        // synchronous, active low, like dnpu_top
    input  wire uart_rx,      // idle high
    output wire uart_tx,      // idle high
    output wire busy,         // the NPU's STATUS.BUSY (an LED on a board)
    output wire link_idle     // the bridge waits for a sync byte, no frame in progress, tx idle
);
    localparam integer ADDR_W = `DNPU_CFG_AXI_ADDR_WIDTH;
    localparam integer DATA_W = `DNPU_CFG_AXI_DATA_WIDTH;
    localparam integer ID_W   = `DNPU_CFG_AXI_ID_WIDTH;
    localparam integer CAW    = `DNPU_CSR_ADDR_W;

    // ---- the bridge's AXI4-Lite master ----------------------------------------------
    wire [31:0] b_awaddr, b_wdata, b_araddr, b_rdata;
    wire [2:0]  b_awprot, b_arprot;
    wire [3:0]  b_wstrb;
    wire        b_awvalid, b_awready, b_wvalid, b_wready, b_bvalid, b_bready;
    wire        b_arvalid, b_arready, b_rvalid, b_rready;
    wire [1:0]  b_bresp, b_rresp;

    dnpu_uart_bridge #(.CLKS_PER_BIT(CLKS_PER_BIT), .GAP_BITS(GAP_BITS), .MEM_BYTES(MEM_BYTES)) u_bridge (
        .clk(clk), .rst_n(rst_n), .uart_rx(uart_rx), .uart_tx(uart_tx), .link_idle(link_idle),
        .m_axil_awaddr(b_awaddr), .m_axil_awprot(b_awprot), .m_axil_awvalid(b_awvalid),
        .m_axil_awready(b_awready), .m_axil_wdata(b_wdata), .m_axil_wstrb(b_wstrb),
        .m_axil_wvalid(b_wvalid), .m_axil_wready(b_wready), .m_axil_bresp(b_bresp),
        .m_axil_bvalid(b_bvalid), .m_axil_bready(b_bready), .m_axil_araddr(b_araddr),
        .m_axil_arprot(b_arprot), .m_axil_arvalid(b_arvalid), .m_axil_arready(b_arready),
        .m_axil_rdata(b_rdata), .m_axil_rresp(b_rresp), .m_axil_rvalid(b_rvalid),
        .m_axil_rready(b_rready));

    // The bridge checks every frame against the two windows and holds a transfer's
    // address until its response, so one address compare steers both the request
    // and the response channels.
    localparam [31:0] CSR_BASE = `DNPU_SERIAL_CSR_BASE;
    wire w_csr = b_awaddr[31:CAW] == CSR_BASE[31:CAW];
    wire r_csr = b_araddr[31:CAW] == CSR_BASE[31:CAW];

    wire        c_awready, c_wready, c_bvalid, c_arready, c_rvalid;
    wire [1:0]  c_bresp, c_rresp;
    wire [31:0] c_rdata;
    wire        m_awready, m_wready, m_bvalid, m_arready, m_rvalid;
    wire [1:0]  m_bresp, m_rresp;
    wire [31:0] m_rdata;

    assign b_awready = w_csr ? c_awready : m_awready;
    assign b_wready  = w_csr ? c_wready  : m_wready;
    assign b_bvalid  = w_csr ? c_bvalid  : m_bvalid;
    assign b_bresp   = w_csr ? c_bresp   : m_bresp;
    assign b_arready = r_csr ? c_arready : m_arready;
    assign b_rvalid  = r_csr ? c_rvalid  : m_rvalid;
    assign b_rresp   = r_csr ? c_rresp   : m_rresp;
    assign b_rdata   = r_csr ? c_rdata   : m_rdata;

    // ---- the NPU and its memory ---------------------------------------------------
    wire [ID_W-1:0]     awid, bid, arid, rid;
    wire [ADDR_W-1:0]   awaddr, araddr;
    wire [7:0]          awlen, arlen;
    wire [2:0]          awsize, arsize, awprot, arprot;
    wire [1:0]          awburst, arburst, bresp, rresp;
    wire                awlock, arlock;
    wire [3:0]          awcache, arcache;
    wire                awvalid, awready, wlast, wvalid, wready, bvalid, bready;
    wire                arvalid, arready, rlast, rvalid, rready;
    wire [DATA_W-1:0]   wdata, rdata;
    wire [DATA_W/8-1:0] wstrb;

    /* verilator lint_off PINCONNECTEMPTY */
    dnpu_top u_npu (
        .clk(clk), .rst_n(rst_n),
        .s_axil_awaddr(b_awaddr[CAW-1:0]), .s_axil_awprot(b_awprot), .s_axil_awvalid(b_awvalid && w_csr),
        .s_axil_awready(c_awready), .s_axil_wdata(b_wdata), .s_axil_wstrb(b_wstrb),
        .s_axil_wvalid(b_wvalid && w_csr), .s_axil_wready(c_wready), .s_axil_bresp(c_bresp),
        .s_axil_bvalid(c_bvalid), .s_axil_bready(b_bready && w_csr),
        .s_axil_araddr(b_araddr[CAW-1:0]), .s_axil_arprot(b_arprot), .s_axil_arvalid(b_arvalid && r_csr),
        .s_axil_arready(c_arready), .s_axil_rdata(c_rdata), .s_axil_rresp(c_rresp),
        .s_axil_rvalid(c_rvalid), .s_axil_rready(b_rready && r_csr),
        .m_axi_awid(awid), .m_axi_awaddr(awaddr), .m_axi_awlen(awlen), .m_axi_awsize(awsize),
        .m_axi_awburst(awburst), .m_axi_awlock(awlock), .m_axi_awcache(awcache), .m_axi_awprot(awprot),
        .m_axi_awvalid(awvalid), .m_axi_awready(awready),
        .m_axi_wdata(wdata), .m_axi_wstrb(wstrb), .m_axi_wlast(wlast), .m_axi_wvalid(wvalid),
        .m_axi_wready(wready),
        .m_axi_bid(bid), .m_axi_bresp(bresp), .m_axi_bvalid(bvalid), .m_axi_bready(bready),
        .m_axi_arid(arid), .m_axi_araddr(araddr), .m_axi_arlen(arlen), .m_axi_arsize(arsize),
        .m_axi_arburst(arburst), .m_axi_arlock(arlock), .m_axi_arcache(arcache), .m_axi_arprot(arprot),
        .m_axi_arvalid(arvalid), .m_axi_arready(arready),
        .m_axi_rid(rid), .m_axi_rdata(rdata), .m_axi_rresp(rresp), .m_axi_rlast(rlast),
        .m_axi_rvalid(rvalid), .m_axi_rready(rready),
        .retire_valid(), .retire_pc(), .retire_word(), .retire_x_we(), .retire_x_idx(),
        .retire_x_data(), .retire_f_we(), .retire_f_idx(), .retire_f_data(), .sram_write(),
        .busy(busy));
    /* verilator lint_on PINCONNECTEMPTY */

    dnpu_axi_ram #(.MEM_BYTES(MEM_BYTES), .BASE(`DNPU_SERIAL_MEM_BASE), .DATA_W(DATA_W), .ID_W(ID_W)) u_ram (
        .clk(clk), .rst_n(rst_n),
        .s_axi_awid(awid), .s_axi_awaddr(awaddr[31:0]), .s_axi_awlen(awlen), .s_axi_awvalid(awvalid),
        .s_axi_awready(awready), .s_axi_wdata(wdata), .s_axi_wstrb(wstrb), .s_axi_wlast(wlast),
        .s_axi_wvalid(wvalid), .s_axi_wready(wready), .s_axi_bid(bid), .s_axi_bresp(bresp),
        .s_axi_bvalid(bvalid), .s_axi_bready(bready),
        .s_axi_arid(arid), .s_axi_araddr(araddr[31:0]), .s_axi_arlen(arlen), .s_axi_arvalid(arvalid),
        .s_axi_arready(arready), .s_axi_rid(rid), .s_axi_rdata(rdata), .s_axi_rresp(rresp),
        .s_axi_rlast(rlast), .s_axi_rvalid(rvalid), .s_axi_rready(rready),
        .s_axil_awaddr(b_awaddr), .s_axil_awvalid(b_awvalid && !w_csr), .s_axil_awready(m_awready),
        .s_axil_wdata(b_wdata), .s_axil_wstrb(b_wstrb), .s_axil_wvalid(b_wvalid && !w_csr),
        .s_axil_wready(m_wready), .s_axil_bresp(m_bresp), .s_axil_bvalid(m_bvalid),
        .s_axil_bready(b_bready && !w_csr),
        .s_axil_araddr(b_araddr), .s_axil_arvalid(b_arvalid && !r_csr), .s_axil_arready(m_arready),
        .s_axil_rdata(m_rdata), .s_axil_rresp(m_rresp), .s_axil_rvalid(m_rvalid),
        .s_axil_rready(b_rready && !r_csr));

    // Bursts are INCR of full-width beats (dnpu_top's contract), so the RAM needs
    // neither the size nor the type; cache, lock and protection attributes mean
    // nothing to an on-chip RAM.
    wire unused_ok = &{1'b0, awsize, arsize, awburst, arburst, awlock, arlock, awcache, arcache,
                       awprot, arprot};
endmodule
`default_nettype wire
