`default_nettype none
// dnpu_top: the NPU as the SoC sees it. One clock, synchronous active-low reset.
//
//   s_axil_*  AXI4-Lite slave: the control/status registers (dnpu_csr, map in
//             docs/CSR.md)
//   m_axi_*   AXI4 master to memory: instruction fetch, loads and stores, each
//             only inside the memory windows the host granted (WIN_* registers;
//             none after power-on reset), else the NPU faults WINDOW unissued.
//             INCR bursts of full-width beats (AxSIZE = log2 of the data bytes),
//             at most `DNPU_CFG_AXI_MAX_BURST beats, never across a 4 KiB
//             boundary, beat-aligned addresses; several bursts may be in flight
//             on each of read and write, one ID each at a time, so responses
//             come back in order. BREADY is always 1.
//   retire_*  trace of retired instructions (one cycle after each retire): PC,
//             word and the x / f register written, for lockstep checks against
//             dnpu.emu's trace. Leave unconnected on a board.
//   sram_write an int, FP or vector SRAM was written the cycle before: progress
//             without a retire or bus traffic (V_TOPK_MASK works for n(n+2)+1 cycles
//             before it retires), which the co-simulation's watchdog counts.
//             Leave unconnected on a board.
//   busy      STATUS.BUSY: a program is running (a board's LED; the serial
//             co-simulation sleeps while the NPU and the link are idle).
//
// The hardware profile is chosen at compile time with one define,
// DNPU_PROFILE_<NAME> (DNPU_PROFILE_SIM, DNPU_PROFILE_PYNQ_Z2, ...), which selects
// the generated hw/rtl/generated/dnpu_cfg_<profile>.vh through the generated
// dnpu_cfg.vh; every size below comes from it. Defining none is an error (a board
// build must never silently get the simulation profile); defining two is an error
// in the headers.

`include "dnpu_cfg.vh"
`include "dnpu_csr.vh"

module dnpu_top (
    input  wire                                   clk,
    input  wire                                   rst_n,

    // AXI4-Lite slave: control/status registers
    input  wire [`DNPU_CSR_ADDR_W-1:0]            s_axil_awaddr,
    input  wire [2:0]                             s_axil_awprot,
    input  wire                                   s_axil_awvalid,
    output wire                                   s_axil_awready,
    input  wire [`DNPU_CSR_DATA_W-1:0]            s_axil_wdata,
    input  wire [`DNPU_CSR_DATA_W/8-1:0]          s_axil_wstrb,
    input  wire                                   s_axil_wvalid,
    output wire                                   s_axil_wready,
    output wire [1:0]                             s_axil_bresp,
    output wire                                   s_axil_bvalid,
    input  wire                                   s_axil_bready,
    input  wire [`DNPU_CSR_ADDR_W-1:0]            s_axil_araddr,
    input  wire [2:0]                             s_axil_arprot,
    input  wire                                   s_axil_arvalid,
    output wire                                   s_axil_arready,
    output wire [`DNPU_CSR_DATA_W-1:0]            s_axil_rdata,
    output wire [1:0]                             s_axil_rresp,
    output wire                                   s_axil_rvalid,
    input  wire                                   s_axil_rready,

    // AXI4 master: memory
    output wire [`DNPU_CFG_AXI_ID_WIDTH-1:0]      m_axi_awid,
    output wire [`DNPU_CFG_AXI_ADDR_WIDTH-1:0]    m_axi_awaddr,
    output wire [7:0]                             m_axi_awlen,
    output wire [2:0]                             m_axi_awsize,
    output wire [1:0]                             m_axi_awburst,
    output wire                                   m_axi_awlock,
    output wire [3:0]                             m_axi_awcache,
    output wire [2:0]                             m_axi_awprot,
    output wire                                   m_axi_awvalid,
    input  wire                                   m_axi_awready,
    output wire [`DNPU_CFG_AXI_DATA_WIDTH-1:0]    m_axi_wdata,
    output wire [`DNPU_CFG_AXI_DATA_WIDTH/8-1:0]  m_axi_wstrb,
    output wire                                   m_axi_wlast,
    output wire                                   m_axi_wvalid,
    input  wire                                   m_axi_wready,
    input  wire [`DNPU_CFG_AXI_ID_WIDTH-1:0]      m_axi_bid,
    input  wire [1:0]                             m_axi_bresp,
    input  wire                                   m_axi_bvalid,
    output wire                                   m_axi_bready,
    output wire [`DNPU_CFG_AXI_ID_WIDTH-1:0]      m_axi_arid,
    output wire [`DNPU_CFG_AXI_ADDR_WIDTH-1:0]    m_axi_araddr,
    output wire [7:0]                             m_axi_arlen,
    output wire [2:0]                             m_axi_arsize,
    output wire [1:0]                             m_axi_arburst,
    output wire                                   m_axi_arlock,
    output wire [3:0]                             m_axi_arcache,
    output wire [2:0]                             m_axi_arprot,
    output wire                                   m_axi_arvalid,
    input  wire                                   m_axi_arready,
    input  wire [`DNPU_CFG_AXI_ID_WIDTH-1:0]      m_axi_rid,
    input  wire [`DNPU_CFG_AXI_DATA_WIDTH-1:0]    m_axi_rdata,
    input  wire [1:0]                             m_axi_rresp,
    input  wire                                   m_axi_rlast,
    input  wire                                   m_axi_rvalid,
    output wire                                   m_axi_rready,

    // retire trace
    output wire                                   retire_valid,
    output wire [31:0]                            retire_pc,
    output wire [31:0]                            retire_word,
    output wire                                   retire_x_we,
    output wire [3:0]                             retire_x_idx,
    output wire [31:0]                            retire_x_data,
    output wire                                   retire_f_we,
    output wire [2:0]                             retire_f_idx,
    output wire [31:0]                            retire_f_data,
    output wire                                   sram_write,
    output wire                                   busy
);
    localparam integer ADDR_W = `DNPU_CFG_AXI_ADDR_WIDTH;
    localparam integer DATA_W = `DNPU_CFG_AXI_DATA_WIDTH;
    localparam integer ID_W   = `DNPU_CFG_AXI_ID_WIDTH;

    // ---- control/status registers -------------------------------------------------
    wire        start, soft_reset, clear_counters;
    wire        done, error;
    wire [`DNPU_ERR_W-1:0] err_cause;
    wire [31:0] err_pc, err_addr, pc, prog_base;
    wire [`DNPU_CSR_WIN_BASE_COUNT*32-1:0] win_base, win_limit;
    wire [`DNPU_CSR_WIN_BASE_COUNT*3-1:0]  win_perm;
    wire [`DNPU_CSR_ARG_COUNT*`DNPU_CSR_DATA_W-1:0] args;
    wire        instret, stall_fetch, stall_mem_rd, stall_mem_wr;

    // Beat strobes straight from the bus handshakes: every beat is counted,
    // also those dropped after an abort.
    wire rd_beat = m_axi_rvalid & m_axi_rready;
    wire wr_beat = m_axi_wvalid & m_axi_wready;

    dnpu_csr #(.CONFIG_HASH(`DNPU_CFG_HASH32)) u_csr (
        .clk(clk), .rst_n(rst_n),
        .s_axil_awaddr(s_axil_awaddr), .s_axil_awprot(s_axil_awprot),
        .s_axil_awvalid(s_axil_awvalid), .s_axil_awready(s_axil_awready),
        .s_axil_wdata(s_axil_wdata), .s_axil_wstrb(s_axil_wstrb),
        .s_axil_wvalid(s_axil_wvalid), .s_axil_wready(s_axil_wready),
        .s_axil_bresp(s_axil_bresp), .s_axil_bvalid(s_axil_bvalid), .s_axil_bready(s_axil_bready),
        .s_axil_araddr(s_axil_araddr), .s_axil_arprot(s_axil_arprot),
        .s_axil_arvalid(s_axil_arvalid), .s_axil_arready(s_axil_arready),
        .s_axil_rdata(s_axil_rdata), .s_axil_rresp(s_axil_rresp),
        .s_axil_rvalid(s_axil_rvalid), .s_axil_rready(s_axil_rready),
        .start_o(start), .soft_reset_o(soft_reset), .clear_counters_o(clear_counters),
        .busy_i(busy), .done_i(done), .error_i(error), .err_cause_i(err_cause),
        .err_pc_i(err_pc), .err_addr_i(err_addr), .pc_i(pc),
        .prog_base_o(prog_base), .args_o(args),
        .win_base_o(win_base), .win_limit_o(win_limit), .win_perm_o(win_perm),
        .instret_i(instret), .rd_beat_i(rd_beat), .wr_beat_i(wr_beat),
        .stall_fetch_i(stall_fetch), .stall_mem_rd_i(stall_mem_rd), .stall_mem_wr_i(stall_mem_wr));

    // ---- controller -----------------------------------------------------------------
    wire              rd_cmd_valid, rd_cmd_ready, rd_valid, rd_err, rd_last, rd_ready, rd_abort;
    wire [ADDR_W-1:0] rd_cmd_addr;
    wire [31:0]       rd_cmd_beats;
    wire [ID_W-1:0]   rd_cmd_id;
    wire [DATA_W-1:0] rd_data;
    wire              wr_cmd_valid, wr_cmd_ready, wr_valid, wr_ready, wr_done, wr_err;
    wire              wr_stall, wr_abort, wr_cmd_beat, wr_bvalid, wr_bready;
    wire [DATA_W-1:0] wr_bdata;
    wire [ADDR_W-1:0] wr_cmd_addr;
    wire [31:0]       wr_cmd_words, wr_data;
    wire [ID_W-1:0]   wr_cmd_id;

    dnpu_core #(
        .ADDR_W(ADDR_W), .DATA_W(DATA_W), .ID_W(ID_W),
        .FETCH_WORDS(`DNPU_CFG_CTRL_FETCH_WORDS), .LOOP_DEPTH(`DNPU_CFG_CTRL_LOOP_DEPTH),
        .INT_WORDS(`DNPU_CFG_SRAM_INT_WORDS), .FP_WORDS(`DNPU_CFG_SRAM_FP_WORDS),
        .VLEN(`DNPU_CFG_VECTOR_VLEN), .LANES(`DNPU_CFG_VECTOR_LANES),
        .VEC_ROWS(`DNPU_CFG_SRAM_VECTOR_ROWS),
        .MX_BLOCK(`DNPU_CFG_MX_BLOCK),
        .MATRIX_ROWS(`DNPU_CFG_MATRIX_ROWS), .MATRIX_WBUF(`DNPU_CFG_MATRIX_WEIGHT_BUFFERS),
        .ADD_STAGES(`DNPU_CFG_PIPELINE_ADD_STAGES), .MUL_STAGES(`DNPU_CFG_PIPELINE_MUL_STAGES),
        .EXP_STAGES(`DNPU_CFG_PIPELINE_EXP_STAGES),
        .DECODE_STAGE(`DNPU_CFG_PIPELINE_DECODE_STAGE),
        .MAX_TREE(`DNPU_CFG_PIPELINE_MAX_TREE_STAGES),
        .RESULT_REGS(`DNPU_CFG_PIPELINE_RESULT_REGS)
    ) u_core (
        .clk(clk), .rst_n(rst_n),
        .start_i(start), .soft_reset_i(soft_reset), .prog_base_i(prog_base), .args_i(args),
        .win_base_i(win_base), .win_limit_i(win_limit), .win_perm_i(win_perm),
        .busy_o(busy), .done_o(done), .error_o(error), .err_cause_o(err_cause),
        .err_pc_o(err_pc), .err_addr_o(err_addr), .pc_o(pc),
        .instret_o(instret), .stall_fetch_o(stall_fetch), .stall_mem_rd_o(stall_mem_rd),
        .stall_mem_wr_o(stall_mem_wr),
        .rd_cmd_valid(rd_cmd_valid), .rd_cmd_ready(rd_cmd_ready), .rd_cmd_addr(rd_cmd_addr),
        .rd_cmd_beats(rd_cmd_beats), .rd_cmd_id(rd_cmd_id),
        .rd_valid(rd_valid), .rd_data(rd_data), .rd_err(rd_err), .rd_last(rd_last),
        .rd_ready(rd_ready), .rd_abort(rd_abort),
        .wr_cmd_valid(wr_cmd_valid), .wr_cmd_ready(wr_cmd_ready), .wr_cmd_addr(wr_cmd_addr),
        .wr_cmd_words(wr_cmd_words), .wr_cmd_beat(wr_cmd_beat), .wr_cmd_id(wr_cmd_id),
        .wr_valid(wr_valid), .wr_data(wr_data), .wr_ready(wr_ready),
        .wr_bvalid(wr_bvalid), .wr_bdata(wr_bdata), .wr_bready(wr_bready),
        .wr_done(wr_done), .wr_err(wr_err), .wr_stall(wr_stall), .wr_abort(wr_abort),
        .retire_valid(retire_valid), .retire_pc(retire_pc), .retire_word(retire_word),
        .retire_x_we(retire_x_we), .retire_x_idx(retire_x_idx), .retire_x_data(retire_x_data),
        .retire_f_we(retire_f_we), .retire_f_idx(retire_f_idx), .retire_f_data(retire_f_data),
        .sram_write(sram_write));

    // ---- AXI4 engines ----------------------------------------------------------------
    dnpu_axi_rd #(.ADDR_W(ADDR_W), .DATA_W(DATA_W), .ID_W(ID_W),
                  .MAX_BURST(`DNPU_CFG_AXI_MAX_BURST), .MAX_OUT(`DNPU_CFG_AXI_READ_BURSTS)) u_rd (
        .clk(clk), .rst_n(rst_n),
        .cmd_valid(rd_cmd_valid), .cmd_ready(rd_cmd_ready), .cmd_addr(rd_cmd_addr),
        .cmd_beats(rd_cmd_beats), .cmd_id(rd_cmd_id),
        .m_valid(rd_valid), .m_data(rd_data), .m_err(rd_err), .m_last(rd_last),
        .m_ready(rd_ready), .abort(rd_abort),
        .m_axi_arid(m_axi_arid), .m_axi_araddr(m_axi_araddr), .m_axi_arlen(m_axi_arlen),
        .m_axi_arsize(m_axi_arsize), .m_axi_arburst(m_axi_arburst), .m_axi_arlock(m_axi_arlock),
        .m_axi_arcache(m_axi_arcache), .m_axi_arprot(m_axi_arprot),
        .m_axi_arvalid(m_axi_arvalid), .m_axi_arready(m_axi_arready),
        .m_axi_rid(m_axi_rid), .m_axi_rdata(m_axi_rdata), .m_axi_rresp(m_axi_rresp),
        .m_axi_rlast(m_axi_rlast), .m_axi_rvalid(m_axi_rvalid), .m_axi_rready(m_axi_rready));

    dnpu_axi_wr #(.ADDR_W(ADDR_W), .DATA_W(DATA_W), .ID_W(ID_W),
                  .MAX_BURST(`DNPU_CFG_AXI_MAX_BURST)) u_wr (
        .clk(clk), .rst_n(rst_n),
        .cmd_valid(wr_cmd_valid), .cmd_ready(wr_cmd_ready), .cmd_addr(wr_cmd_addr),
        .cmd_words(wr_cmd_words), .cmd_beat(wr_cmd_beat), .cmd_id(wr_cmd_id),
        .s_valid(wr_valid), .s_data(wr_data), .s_ready(wr_ready),
        .bt_valid(wr_bvalid), .bt_data(wr_bdata), .bt_ready(wr_bready),
        .abort(wr_abort), .done(wr_done), .err(wr_err), .stall(wr_stall),
        .m_axi_awid(m_axi_awid), .m_axi_awaddr(m_axi_awaddr), .m_axi_awlen(m_axi_awlen),
        .m_axi_awsize(m_axi_awsize), .m_axi_awburst(m_axi_awburst), .m_axi_awlock(m_axi_awlock),
        .m_axi_awcache(m_axi_awcache), .m_axi_awprot(m_axi_awprot),
        .m_axi_awvalid(m_axi_awvalid), .m_axi_awready(m_axi_awready),
        .m_axi_wdata(m_axi_wdata), .m_axi_wstrb(m_axi_wstrb), .m_axi_wlast(m_axi_wlast),
        .m_axi_wvalid(m_axi_wvalid), .m_axi_wready(m_axi_wready),
        .m_axi_bid(m_axi_bid), .m_axi_bresp(m_axi_bresp), .m_axi_bvalid(m_axi_bvalid),
        .m_axi_bready(m_axi_bready));

    // CLEAR_COUNTERS acts inside dnpu_csr alone.
    wire unused_ok = &{1'b0, clear_counters};

endmodule

`default_nettype wire
