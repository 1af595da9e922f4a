// dnpu control/status registers: the AXI4-Lite slave behind hw/csr.toml.
//
// Every offset, bit and cause comes from the generated headers (dnpu_csr.vh,
// dnpu_isa.vh); nothing here is numbered by hand.
//
// Bus behaviour (the host runtime and the tests rely on these):
//  - One write and one read may be in flight at once. AW and W may arrive in
//    either order or together; each half waits in a one-entry holding register
//    until its partner arrives and the B channel is free. BVALID / RVALID stay
//    up until accepted. With the master always ready, one write and one read
//    complete per cycle.
//  - Every response is OKAY. An offset with no register reads 0 and a write to
//    it changes nothing; it still gets an OKAY response, so a probe of the map
//    never stalls or faults the bus.
//  - Address bits [1:0] are ignored: WSTRB alone picks the bytes written.
//    AWPROT / ARPROT are accepted and ignored.
//  - WSTRB is honoured byte-wise on rw registers (PROG_BASE, ARGn) and on
//    CTRL: a CTRL bit in a byte whose strobe is low does not pulse.
//  - A read and a write in the same cycle are independent: the read returns
//    the value before the write.
//
// Register behaviour:
//  - CTRL (w1p): writing 1 to START / SOFT_RESET / CLEAR_COUNTERS raises
//    start_o / soft_reset_o / clear_counters_o for exactly one cycle, the cycle
//    after the write is accepted; bits may be combined. Reads return 0.
//  - SOFT_RESET is only a pulse for the controller: this block keeps
//    PROG_BASE, ARGn, the memory windows and the counters (csr.toml: counters
//    and argument registers are kept). Power-on reset disables every window.
//  - WIN_PERMn keeps its three permission bits; the others read 0.
//  - Counters (64 bit): CYCLES counts every cycle, BUSY_CYCLES every cycle with
//    busy_i, the others one per cycle their strobe is high. CLEAR_COUNTERS sets
//    every counter to 0 on the same clock edge that raises clear_counters_o:
//    during the pulse cycle they read 0 and that cycle's events are counted;
//    events in the cycle the CTRL write is accepted are lost.
//  - Reading a counter's _LO word latches its high word into a shadow that the
//    _HI read returns, so LO then HI is one consistent 64-bit value even across
//    a carry. Reading _HI without a preceding _LO read returns the shadow as
//    last latched (the reset value, or 0 after CLEAR_COUNTERS; a LO read in the
//    same cycle as the clear wins, so its pair stays consistent).
//  - COUNTER_INIT is a test hook: the counters' (and shadows') reset value, so a
//    test can start them just below a 32-bit carry. Synthesis leaves it at 0.

`default_nettype none

`include "dnpu_csr.vh"
`include "dnpu_isa.vh"

module dnpu_csr #(
    parameter [31:0] CONFIG_HASH  = 32'h0000_0000,
    parameter [63:0] COUNTER_INIT = 64'd0
) (
    input  wire                                            clk,
    input  wire                                            rst_n,

    // AXI4-Lite slave
    input  wire [`DNPU_CSR_ADDR_W-1:0]                     s_axil_awaddr,
    input  wire [2:0]                                      s_axil_awprot,
    input  wire                                            s_axil_awvalid,
    output wire                                            s_axil_awready,
    input  wire [`DNPU_CSR_DATA_W-1:0]                     s_axil_wdata,
    input  wire [`DNPU_CSR_DATA_W/8-1:0]                   s_axil_wstrb,
    input  wire                                            s_axil_wvalid,
    output wire                                            s_axil_wready,
    output wire [1:0]                                      s_axil_bresp,
    output reg                                             s_axil_bvalid,
    input  wire                                            s_axil_bready,
    input  wire [`DNPU_CSR_ADDR_W-1:0]                     s_axil_araddr,
    input  wire [2:0]                                      s_axil_arprot,
    input  wire                                            s_axil_arvalid,
    output wire                                            s_axil_arready,
    output reg  [`DNPU_CSR_DATA_W-1:0]                     s_axil_rdata,
    output wire [1:0]                                      s_axil_rresp,
    output reg                                             s_axil_rvalid,
    input  wire                                            s_axil_rready,

    // CTRL pulses to the controller
    output reg                                             start_o,
    output reg                                             soft_reset_o,
    output reg                                             clear_counters_o,

    // Run state from the controller
    input  wire                                            busy_i,
    input  wire                                            done_i,
    input  wire                                            error_i,
    input  wire [`DNPU_ERR_W-1:0]                          err_cause_i,
    input  wire [31:0]                                     err_pc_i,
    input  wire [31:0]                                     err_addr_i,
    input  wire [31:0]                                     pc_i,

    // Program base and arguments (ARGi in bits [32i+31:32i])
    output wire [31:0]                                     prog_base_o,
    output wire [`DNPU_CSR_ARG_COUNT*`DNPU_CSR_DATA_W-1:0] args_o,
    // Memory windows (window i in bits [32i+31:32i], perm in [3i+2:3i])
    output wire [`DNPU_CSR_WIN_BASE_COUNT*32-1:0]           win_base_o,
    output wire [`DNPU_CSR_WIN_BASE_COUNT*32-1:0]           win_limit_o,
    output wire [`DNPU_CSR_WIN_BASE_COUNT*3-1:0]            win_perm_o,

    // One-cycle event strobes for the performance counters
    input  wire                                            instret_i,
    input  wire                                            rd_beat_i,
    input  wire                                            wr_beat_i,
    input  wire                                            stall_fetch_i,
    input  wire                                            stall_mem_rd_i,
    input  wire                                            stall_mem_wr_i
);

    localparam AW    = `DNPU_CSR_ADDR_W;
    localparam DW    = `DNPU_CSR_DATA_W;
    localparam NB    = DW / 8;
    localparam NARG  = `DNPU_CSR_ARG_COUNT;
    localparam NWIN  = `DNPU_CSR_WIN_BASE_COUNT;
    localparam [AW-1:0] WORD_BYTES = NB;
    localparam [1:0] RESP_OKAY = 2'b00;

    // Counter slots; the order only has to agree with cnt_lo_off / cnt_hi_off.
    localparam CNT_CYCLES       = 0;
    localparam CNT_BUSY_CYCLES  = 1;
    localparam CNT_INSTRET      = 2;
    localparam CNT_RD_BEATS     = 3;
    localparam CNT_WR_BEATS     = 4;
    localparam CNT_STALL_FETCH  = 5;
    localparam CNT_STALL_MEM_RD = 6;
    localparam CNT_STALL_MEM_WR = 7;
    localparam NCNT             = 8;

    function [AW-1:0] cnt_lo_off;
        input integer slot;
        begin
            case (slot)
                CNT_CYCLES:       cnt_lo_off = `DNPU_CSR_CYCLES_LO;
                CNT_BUSY_CYCLES:  cnt_lo_off = `DNPU_CSR_BUSY_CYCLES_LO;
                CNT_INSTRET:      cnt_lo_off = `DNPU_CSR_INSTRET_LO;
                CNT_RD_BEATS:     cnt_lo_off = `DNPU_CSR_RD_BEATS_LO;
                CNT_WR_BEATS:     cnt_lo_off = `DNPU_CSR_WR_BEATS_LO;
                CNT_STALL_FETCH:  cnt_lo_off = `DNPU_CSR_STALL_FETCH_LO;
                CNT_STALL_MEM_RD: cnt_lo_off = `DNPU_CSR_STALL_MEM_RD_LO;
                default:          cnt_lo_off = `DNPU_CSR_STALL_MEM_WR_LO;
            endcase
        end
    endfunction

    function [AW-1:0] cnt_hi_off;
        input integer slot;
        begin
            case (slot)
                CNT_CYCLES:       cnt_hi_off = `DNPU_CSR_CYCLES_HI;
                CNT_BUSY_CYCLES:  cnt_hi_off = `DNPU_CSR_BUSY_CYCLES_HI;
                CNT_INSTRET:      cnt_hi_off = `DNPU_CSR_INSTRET_HI;
                CNT_RD_BEATS:     cnt_hi_off = `DNPU_CSR_RD_BEATS_HI;
                CNT_WR_BEATS:     cnt_hi_off = `DNPU_CSR_WR_BEATS_HI;
                CNT_STALL_FETCH:  cnt_hi_off = `DNPU_CSR_STALL_FETCH_HI;
                CNT_STALL_MEM_RD: cnt_hi_off = `DNPU_CSR_STALL_MEM_RD_HI;
                default:          cnt_hi_off = `DNPU_CSR_STALL_MEM_WR_HI;
            endcase
        end
    endfunction

    // ARGn sit at consecutive words from ARG0 (csr.toml `count`).
    function [AW-1:0] arg_off;
        input integer idx;
        integer i;
        begin
            arg_off = `DNPU_CSR_ARG0;
            for (i = 0; i < idx; i = i + 1)
                arg_off = arg_off + WORD_BYTES;
        end
    endfunction

    // Window i's registers at consecutive words from WIN_BASE0 / WIN_LIMIT0 / WIN_PERM0.
    function [AW-1:0] win_off;
        input [AW-1:0] first;
        input integer idx;
        integer i;
        begin
            win_off = first;
            for (i = 0; i < idx; i = i + 1)
                win_off = win_off + WORD_BYTES;
        end
    endfunction
    function [DW-1:0] merge_bytes;
        input [DW-1:0] old;
        input [DW-1:0] data;
        input [NB-1:0] strb;
        integer b;
        begin
            merge_bytes = old;
            for (b = 0; b < NB; b = b + 1)
                if (strb[b]) merge_bytes[8*b +: 8] = data[8*b +: 8];
        end
    endfunction

    // ------------------------------------------------------------------
    // Write channel: AW and W each park in a one-entry holding register when
    // their partner or the B channel is not ready, so either order works and
    // READY never depends combinationally on VALID.
    // ------------------------------------------------------------------
    reg           aw_full;
    reg  [AW-1:0] aw_addr_q;
    reg           w_full;
    reg  [DW-1:0] w_data_q;
    reg  [NB-1:0] w_strb_q;

    assign s_axil_awready = ~aw_full;
    assign s_axil_wready  = ~w_full;
    assign s_axil_bresp   = RESP_OKAY;

    wire          wr_fire = (aw_full | s_axil_awvalid) & (w_full | s_axil_wvalid)
                          & (~s_axil_bvalid | s_axil_bready);
    wire [AW-1:0] wr_addr = aw_full ? aw_addr_q : s_axil_awaddr;
    wire [DW-1:0] wr_data = w_full  ? w_data_q  : s_axil_wdata;
    wire [NB-1:0] wr_strb = w_full  ? w_strb_q  : s_axil_wstrb;
    wire [AW-1:0] wr_word = {wr_addr[AW-1:2], 2'b00};

    always @(posedge clk) begin
        if (!rst_n) begin
            aw_full       <= 1'b0;
            w_full        <= 1'b0;
            s_axil_bvalid <= 1'b0;
        end else begin
            aw_full       <= ~wr_fire & (aw_full | s_axil_awvalid);
            w_full        <= ~wr_fire & (w_full  | s_axil_wvalid);
            s_axil_bvalid <= wr_fire | (s_axil_bvalid & ~s_axil_bready);
        end
        if (s_axil_awvalid & ~aw_full) aw_addr_q <= s_axil_awaddr;
        if (s_axil_wvalid  & ~w_full) begin
            w_data_q <= s_axil_wdata;
            w_strb_q <= s_axil_wstrb;
        end
    end

    // A CTRL bit only counts when the strobe of its byte lane is set.
    wire ctrl_wr     = wr_fire & (wr_word == `DNPU_CSR_CTRL);
    wire do_start    = ctrl_wr & wr_strb[`DNPU_CSR_CTRL_START_BIT / 8]
                               & wr_data[`DNPU_CSR_CTRL_START_BIT];
    wire do_soft_rst = ctrl_wr & wr_strb[`DNPU_CSR_CTRL_SOFT_RESET_BIT / 8]
                               & wr_data[`DNPU_CSR_CTRL_SOFT_RESET_BIT];
    wire do_clear    = ctrl_wr & wr_strb[`DNPU_CSR_CTRL_CLEAR_COUNTERS_BIT / 8]
                               & wr_data[`DNPU_CSR_CTRL_CLEAR_COUNTERS_BIT];

    reg  [DW-1:0]      prog_base_q;
    reg  [NARG*DW-1:0] args_q;
    reg  [NWIN*32-1:0] win_base_q, win_limit_q;
    reg  [NWIN*3-1:0]  win_perm_q;
    integer wa;

    always @(posedge clk) begin
        if (!rst_n) begin
            start_o          <= 1'b0;
            soft_reset_o     <= 1'b0;
            clear_counters_o <= 1'b0;
            prog_base_q      <= {DW{1'b0}};
            args_q           <= {NARG*DW{1'b0}};
            win_perm_q       <= {NWIN*3{1'b0}};
        end else begin
            start_o          <= do_start;
            soft_reset_o     <= do_soft_rst;
            clear_counters_o <= do_clear;
            if (wr_fire && wr_word == `DNPU_CSR_PROG_BASE)
                prog_base_q <= merge_bytes(prog_base_q, wr_data, wr_strb);
            for (wa = 0; wa < NARG; wa = wa + 1)
                if (wr_fire && wr_word == arg_off(wa))
                    args_q[DW*wa +: DW] <= merge_bytes(args_q[DW*wa +: DW], wr_data, wr_strb);
            for (wa = 0; wa < NWIN; wa = wa + 1)       // the bits sit in byte 0
                if (wr_fire && wr_word == win_off(`DNPU_CSR_WIN_PERM0, wa) && wr_strb[0])
                    win_perm_q[3*wa +: 3] <= wr_data[2:0];
        end
        // Bases and limits need no reset: a window with perm 0 grants nothing.
        for (wa = 0; wa < NWIN; wa = wa + 1) begin
            if (rst_n && wr_fire && wr_word == win_off(`DNPU_CSR_WIN_BASE0, wa))
                win_base_q[32*wa +: 32] <= merge_bytes(win_base_q[32*wa +: 32], wr_data, wr_strb);
            if (rst_n && wr_fire && wr_word == win_off(`DNPU_CSR_WIN_LIMIT0, wa))
                win_limit_q[32*wa +: 32] <= merge_bytes(win_limit_q[32*wa +: 32], wr_data, wr_strb);
        end
    end
    assign win_base_o  = win_base_q;
    assign win_limit_o = win_limit_q;
    assign win_perm_o  = win_perm_q;

    assign prog_base_o = prog_base_q;
    assign args_o      = args_q;

    // ------------------------------------------------------------------
    // Read channel: AR parks like AW when R is back-pressured; the read data
    // is registered at the accept, so RDATA holds while RVALID waits.
    // ------------------------------------------------------------------
    reg           ar_full;
    reg  [AW-1:0] ar_addr_q;

    assign s_axil_arready = ~ar_full;
    assign s_axil_rresp   = RESP_OKAY;

    wire          rd_fire = (ar_full | s_axil_arvalid) & (~s_axil_rvalid | s_axil_rready);
    wire [AW-1:0] rd_addr = ar_full ? ar_addr_q : s_axil_araddr;
    wire [AW-1:0] rd_word = {rd_addr[AW-1:2], 2'b00};

    // ------------------------------------------------------------------
    // Performance counters
    // ------------------------------------------------------------------
    reg  [64*NCNT-1:0] cnt_q;
    reg  [32*NCNT-1:0] cnt_hi_shadow_q;
    wire [NCNT-1:0]    cnt_inc;

    assign cnt_inc[CNT_CYCLES]       = 1'b1;
    assign cnt_inc[CNT_BUSY_CYCLES]  = busy_i;
    assign cnt_inc[CNT_INSTRET]      = instret_i;
    assign cnt_inc[CNT_RD_BEATS]     = rd_beat_i;
    assign cnt_inc[CNT_WR_BEATS]     = wr_beat_i;
    assign cnt_inc[CNT_STALL_FETCH]  = stall_fetch_i;
    assign cnt_inc[CNT_STALL_MEM_RD] = stall_mem_rd_i;
    assign cnt_inc[CNT_STALL_MEM_WR] = stall_mem_wr_i;

    integer ca;

    always @(posedge clk) begin
        if (!rst_n) begin
            for (ca = 0; ca < NCNT; ca = ca + 1) begin
                cnt_q[64*ca +: 64]           <= COUNTER_INIT;
                cnt_hi_shadow_q[32*ca +: 32] <= COUNTER_INIT[63:32];
            end
        end else begin
            for (ca = 0; ca < NCNT; ca = ca + 1) begin
                if (do_clear)
                    cnt_q[64*ca +: 64] <= 64'd0;
                else
                    cnt_q[64*ca +: 64] <= cnt_q[64*ca +: 64] + {63'd0, cnt_inc[ca]};
                if (rd_fire && rd_word == cnt_lo_off(ca))
                    cnt_hi_shadow_q[32*ca +: 32] <= cnt_q[64*ca+32 +: 32];
                else if (do_clear)
                    cnt_hi_shadow_q[32*ca +: 32] <= 32'd0;
            end
        end
    end

    // ------------------------------------------------------------------
    // Read mux
    // ------------------------------------------------------------------
    reg [DW-1:0] rd_value;
    integer ra;

    always @* begin
        rd_value = {DW{1'b0}};
        case (rd_word)
            `DNPU_CSR_ID:          rd_value = `DNPU_ID_MAGIC;
            `DNPU_CSR_ISA_VERSION: rd_value = `DNPU_ISA_VERSION;
            `DNPU_CSR_CONFIG_HASH: rd_value = CONFIG_HASH;
            `DNPU_CSR_STATUS: begin
                rd_value[`DNPU_CSR_STATUS_BUSY_BIT]  = busy_i;
                rd_value[`DNPU_CSR_STATUS_DONE_BIT]  = done_i;
                rd_value[`DNPU_CSR_STATUS_ERROR_BIT] = error_i;
            end
            `DNPU_CSR_ERR_CAUSE:   rd_value[`DNPU_ERR_W-1:0] = err_cause_i;
            `DNPU_CSR_ERR_PC:      rd_value = err_pc_i;
            `DNPU_CSR_ERR_ADDR:    rd_value = err_addr_i;
            `DNPU_CSR_PC:          rd_value = pc_i;
            `DNPU_CSR_PROG_BASE:   rd_value = prog_base_q;
            default:               rd_value = {DW{1'b0}};
        endcase
        for (ra = 0; ra < NARG; ra = ra + 1)
            if (rd_word == arg_off(ra)) rd_value = args_q[DW*ra +: DW];
        for (ra = 0; ra < NWIN; ra = ra + 1) begin
            if (rd_word == win_off(`DNPU_CSR_WIN_BASE0, ra))  rd_value = win_base_q[32*ra +: 32];
            if (rd_word == win_off(`DNPU_CSR_WIN_LIMIT0, ra)) rd_value = win_limit_q[32*ra +: 32];
            if (rd_word == win_off(`DNPU_CSR_WIN_PERM0, ra))  rd_value = {29'd0, win_perm_q[3*ra +: 3]};
        end
        for (ra = 0; ra < NCNT; ra = ra + 1) begin
            if (rd_word == cnt_lo_off(ra)) rd_value = cnt_q[64*ra +: 32];
            if (rd_word == cnt_hi_off(ra)) rd_value = cnt_hi_shadow_q[32*ra +: 32];
        end
    end

    always @(posedge clk) begin
        if (!rst_n) begin
            ar_full       <= 1'b0;
            s_axil_rvalid <= 1'b0;
        end else begin
            ar_full       <= ~rd_fire & (ar_full | s_axil_arvalid);
            s_axil_rvalid <= rd_fire | (s_axil_rvalid & ~s_axil_rready);
        end
        if (s_axil_arvalid & ~ar_full) ar_addr_q <= s_axil_araddr;
        if (rd_fire) s_axil_rdata <= rd_value;
    end

    // Protection is not checked (single master, no secure world) and the word
    // offset ignores the byte address bits: tie them off for lint.
    wire unused_ok = &{1'b0, s_axil_awprot, s_axil_arprot, wr_addr[1:0], rd_addr[1:0]};

endmodule

`default_nettype wire
