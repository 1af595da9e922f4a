`default_nettype none
// dnpu_axi_wr: AXI4 write engine. One command = a run of bytes written to
// consecutive addresses, from one of two inputs: 32-bit words (H_STORE_*, H_STORE_V),
// packed here into full-width beats with byte strobes, or whole beats (H_STORE_MX: the
// quantizer makes beats, and a beat a cycle needs a beat-wide input, not a word a cycle).
//
// Command (taken when cmd_valid & cmd_ready; cmd_ready only while idle):
//   cmd_beat   0: words on s_*; 1: beats on bt_*
//   cmd_addr   byte address of the first word, 4-byte aligned (the core
//              checks MISALIGNED first); lanes below it in the first beat and
//              above the last word in the last beat get WSTRB = 0. Beats:
//              beat-aligned
//   cmd_words  words: words to write, >= 1; exactly that many are taken on s_*.
//              beats: bytes to write, >= 1; ceil(bytes / (DATA_W/8)) beats are
//              taken on bt_*, the last one's bytes past the count get WSTRB = 0
//   cmd_id     AWID of every burst
// done pulses once every burst's B response is in; err (valid with done) is set
// when any BRESP was SLVERR or DECERR (the core faults AXI_WRITE). Waiting for
// every B keeps faults precise: the store retires only when memory took it.
//
// Bursts: INCR, AWSIZE = the full data width, at most MAX_BURST beats, never
// crossing 4 KiB, up to MAX_OUT bursts in flight. An AW is raised as soon as
// a burst slot is free; W beats of a burst go out only after its AW was raised,
// so that an abort never leaves W data without its address.
//
// abort (SOFT_RESET): no new AW; the W beats still owed to bursts whose AW is
// up are sent with WSTRB = 0 (they change no byte) and their B responses are
// collected; then the engine is idle again. No done pulse for an aborted
// command.
//
// stall: a cycle the engine waits on the AXI write channels (AW or W valid
// without ready, or every beat sent and a B response still missing); the
// STALL_MEM_WR counter counts it while a store runs.

module dnpu_axi_wr #(
    parameter integer ADDR_W    = 32,    // dnpu_top passes the profile's values
    parameter integer DATA_W    = 128,   // >= 64
    parameter integer ID_W      = 4,
    parameter integer MAX_BURST = 16
) (
    input  wire                clk,
    input  wire                rst_n,

    input  wire                cmd_valid,
    output wire                cmd_ready,
    input  wire [ADDR_W-1:0]   cmd_addr,
    input  wire [31:0]         cmd_words,
    input  wire                cmd_beat,
    input  wire [ID_W-1:0]     cmd_id,

    input  wire                s_valid,
    input  wire [31:0]         s_data,
    output wire                s_ready,

    input  wire                bt_valid,
    input  wire [DATA_W-1:0]   bt_data,
    output wire                bt_ready,

    input  wire                abort,
    output reg                 done,
    output reg                 err,
    output wire                stall,

    output wire [ID_W-1:0]     m_axi_awid,
    output wire [ADDR_W-1:0]   m_axi_awaddr,
    output wire [7:0]          m_axi_awlen,
    output wire [2:0]          m_axi_awsize,
    output wire [1:0]          m_axi_awburst,
    output wire                m_axi_awlock,
    output wire [3:0]          m_axi_awcache,
    output wire [2:0]          m_axi_awprot,
    output wire                m_axi_awvalid,
    input  wire                m_axi_awready,
    output wire [DATA_W-1:0]   m_axi_wdata,
    output wire [DATA_W/8-1:0] m_axi_wstrb,
    output wire                m_axi_wlast,
    output wire                m_axi_wvalid,
    input  wire                m_axi_wready,
    input  wire [ID_W-1:0]     m_axi_bid,
    input  wire [1:0]          m_axi_bresp,
    input  wire                m_axi_bvalid,
    output wire                m_axi_bready
);
    localparam integer BB      = DATA_W / 8;          // bytes per beat
    localparam integer LOG_BB  = $clog2(BB);
    localparam integer WPB     = DATA_W / 32;         // words per beat
    localparam integer LOG_WPB = $clog2(WPB);
    // As in dnpu_axi_rd: enough bursts in flight to hide the response latency.
    localparam integer MAX_OUT = 4;
    localparam integer OUT_W   = 3;
    localparam integer LOG_OUT = 2;
    localparam [31:0]  MAXB    = MAX_BURST;
    localparam [31:0]  PAGE    = 32'd4096;

    reg                active;
    reg                aborting;
    reg [ID_W-1:0]     id_q;

    // ---- AW: burst addresses ------------------------------------------------
    reg [ADDR_W-1:0]   aw_next;      // next burst address (beat-aligned)
    reg [31:0]         aw_left;      // beats not yet covered by a raised AW
    reg                awvalid_q;
    reg [ADDR_W-1:0]   awaddr_q;
    reg [7:0]          awlen_q;
    reg [OUT_W-1:0]    outstanding;  // AW raised, B not yet received

    wire [31:0] to_page = (PAGE - {20'd0, aw_next[11:0]}) >> LOG_BB;
    wire [31:0] lim     = (aw_left < MAXB) ? aw_left : MAXB;
    wire [31:0] blen    = (lim < to_page) ? lim : to_page;
    wire [31:0] bbytes  = blen << LOG_BB;                 // <= 4096
    wire [ADDR_W-1:0] bstep = {{(ADDR_W-13){1'b0}}, bbytes[12:0]};

    wire aw_hs  = awvalid_q & m_axi_awready;
    wire b_hs   = m_axi_bvalid;                           // bready is always 1
    wire issue  = active & ~aborting & ~awvalid_q & (aw_left != 32'd0)
                & (outstanding != MAX_OUT[OUT_W-1:0]);

    // Burst lengths from AW to W, in order (at most MAX_OUT raised bursts).
    reg [8:0]          lq [0:MAX_OUT-1];
    reg [LOG_OUT-1:0]  lq_wr, lq_rd;
    reg [OUT_W-1:0]    lq_cnt;

    // ---- W: beat packing ----------------------------------------------------
    reg [8:0]          wb_left;      // beats left in the current W burst
    reg                wb_nz;        // wb_left != 0, and words_nz words_left != 0, kept as
    reg                words_nz;     // registers: the input's ready starts at flags
    reg [DATA_W-1:0]   wbuf;
    reg [BB-1:0]       wstrb_q;
    reg [LOG_WPB-1:0]  lane;         // next word's lane in wbuf
    reg                full;         // wbuf holds a complete beat
    reg [31:0]         words_left;   // words (beats: beats) not yet taken on s_* (bt_*)
    reg                bmode;        // the command's data come as beats
    reg [BB-1:0]       blast_strb;   // beats: WSTRB of the last beat

    wire w_valid   = wb_nz & (full | aborting);
    wire w_hs      = w_valid & m_axi_wready;
    wire lq_pop    = ~wb_nz & (lq_cnt != {OUT_W{1'b0}});
    wire last_lane = (lane == {LOG_WPB{1'b1}}) | (words_left == 32'd1);  // WPB is a power of 2

    wire   in_ok   = active & ~aborting & words_nz & (~full | w_hs);
    assign s_ready = in_ok & ~bmode;
    assign bt_ready = in_ok & bmode;
    wire   s_hs    = s_valid & s_ready;
    wire   bt_hs   = bt_valid & bt_ready;

    // Drained: every raised burst has sent its beats and got its response.
    wire drained = ~awvalid_q & (lq_cnt == {OUT_W{1'b0}}) & ~wb_nz
                 & (outstanding == {OUT_W{1'b0}});
    wire idle    = ~active & ~aborting & drained;

    assign cmd_ready = idle;
    assign stall = (awvalid_q & ~m_axi_awready) | (w_valid & ~m_axi_wready)
                 | (active & (aw_left == 32'd0) & ~awvalid_q & (lq_cnt == {OUT_W{1'b0}})
                    & ~wb_nz & (outstanding != {OUT_W{1'b0}}));

    assign m_axi_awid    = id_q;
    assign m_axi_awaddr  = awaddr_q;
    assign m_axi_awlen   = awlen_q;
    assign m_axi_awsize  = LOG_BB[2:0];
    assign m_axi_awburst = 2'b01;                         // INCR
    assign m_axi_awlock  = 1'b0;
    assign m_axi_awcache = 4'b0011;                       // normal, non-cacheable, bufferable
    assign m_axi_awprot  = 3'b000;
    assign m_axi_awvalid = awvalid_q;
    assign m_axi_wdata   = wbuf;
    assign m_axi_wstrb   = aborting ? {BB{1'b0}} : wstrb_q;
    assign m_axi_wlast   = (wb_left == 9'd1);
    assign m_axi_wvalid  = w_valid;
    assign m_axi_bready  = 1'b1;

    // Next strobe/full state of wbuf: a sent beat empties it, a taken word
    // fills its lane (in the same cycle a beat leaves, the word starts the
    // next beat).
    reg [BB-1:0] strb_n;
    reg          full_n;
    always @* begin
        strb_n = w_hs ? {BB{1'b0}} : wstrb_q;
        full_n = w_hs ? 1'b0 : full;
        if (s_hs) begin
            strb_n = strb_n | ({{(BB-4){1'b0}}, 4'hF} << {lane, 2'b00});
            if (last_lane)
                full_n = 1'b1;
        end
        if (bt_hs) begin
            strb_n = (words_left == 32'd1) ? blast_strb : {BB{1'b1}};
            full_n = 1'b1;
        end
    end

    wire [OUT_W-1:0] out_inc = {{(OUT_W-1){1'b0}}, issue};
    wire [OUT_W-1:0] out_dec = {{(OUT_W-1){1'b0}}, b_hs};
    wire [OUT_W-1:0] lq_inc  = {{(OUT_W-1){1'b0}}, issue};
    wire [OUT_W-1:0] lq_dec  = {{(OUT_W-1){1'b0}}, lq_pop};

    // Total beats of a command: from the first word's lane to the last word.
    wire [31:0] cmd_lane  = {{(32-LOG_WPB){1'b0}}, cmd_addr[LOG_BB-1:2]};
    wire [31:0] cmd_wbeats = ((cmd_lane + cmd_words - 32'd1) >> LOG_WPB) + 32'd1;
    wire [31:0] cmd_bbeats = ((cmd_words - 32'd1) >> LOG_BB) + 32'd1;
    wire [31:0] cmd_beats  = cmd_beat ? cmd_bbeats : cmd_wbeats;
    wire [31:0] cmd_btail  = cmd_words - 32'd1;                  // last byte's lane: [LOG_BB-1:0]
    reg  [BB-1:0] cmd_bstrb;
    integer bi;
    always @* begin
        for (bi = 0; bi < BB; bi = bi + 1)
            cmd_bstrb[bi] = (bi[LOG_BB-1:0] <= cmd_btail[LOG_BB-1:0]);
    end

    always @(posedge clk) begin
        if (!rst_n) begin
            active      <= 1'b0;
            aborting    <= 1'b0;
            aw_left     <= 32'd0;
            awvalid_q   <= 1'b0;
            outstanding <= {OUT_W{1'b0}};
            lq_wr       <= {LOG_OUT{1'b0}};
            lq_rd       <= {LOG_OUT{1'b0}};
            lq_cnt      <= {OUT_W{1'b0}};
            wb_left     <= 9'd0;
            wb_nz       <= 1'b0;
            wstrb_q     <= {BB{1'b0}};
            full        <= 1'b0;
            words_left  <= 32'd0;
            words_nz    <= 1'b0;
            bmode       <= 1'b0;
            done        <= 1'b0;
            err         <= 1'b0;
        end else begin
            done        <= 1'b0;
            outstanding <= outstanding + out_inc - out_dec;
            lq_cnt      <= lq_cnt + lq_inc - lq_dec;
            if (aw_hs)
                awvalid_q <= 1'b0;
            if (issue) begin
                awvalid_q <= 1'b1;
                aw_next   <= aw_next + bstep;
                aw_left   <= aw_left - blen;
                lq_wr     <= lq_wr + 1'b1;
            end
            if (lq_pop) begin
                wb_left <= lq[lq_rd];
                wb_nz   <= (lq[lq_rd] != 9'd0);
                lq_rd   <= lq_rd + 1'b1;
            end else if (w_hs) begin
                wb_left <= wb_left - 9'd1;
                wb_nz   <= (wb_left != 9'd1);
            end
            wstrb_q <= strb_n;
            full    <= full_n;
            if (s_hs) begin
                words_left <= words_left - 32'd1;
                words_nz   <= (words_left != 32'd1);
                lane       <= last_lane ? {LOG_WPB{1'b0}} : lane + 1'b1;
            end
            if (bt_hs) begin
                words_left <= words_left - 32'd1;
                words_nz   <= (words_left != 32'd1);
            end
            if (b_hs & m_axi_bresp[1])                    // SLVERR or DECERR
                err <= 1'b1;
            if (active & ~aborting & (aw_left == 32'd0) & drained) begin
                active <= 1'b0;
                done   <= 1'b1;
            end
            // The command's data registers are idle's: they load in every idle cycle, the
            // command's last, so that cmd_valid reaches only the control bits.
            if (idle) begin
                aw_next    <= {cmd_addr[ADDR_W-1:LOG_BB], {LOG_BB{1'b0}}};
                words_left <= cmd_beat ? cmd_bbeats : cmd_words;
                words_nz   <= ((cmd_beat ? cmd_bbeats : cmd_words) != 32'd0);
                bmode      <= cmd_beat;
                blast_strb <= cmd_bstrb;
                lane       <= cmd_addr[LOG_BB-1:2];
            end
            if (cmd_valid & idle) begin
                active     <= 1'b1;
                aw_left    <= cmd_beats;
                err        <= 1'b0;
            end
            if (abort & ~idle) begin
                active   <= 1'b0;
                aborting <= 1'b1;
                aw_left  <= 32'd0;
                done     <= 1'b0;
            end else if (aborting & drained) begin
                aborting   <= 1'b0;
                words_left <= 32'd0;
                words_nz   <= 1'b0;
                wstrb_q    <= {BB{1'b0}};
                full       <= 1'b0;
            end
        end
        if (issue) begin
            awaddr_q   <= aw_next;
            awlen_q    <= blen[7:0] - 8'd1;
            lq[lq_wr]  <= blen[8:0];
        end
        if (s_hs)
            wbuf[{lane, 5'd0} +: 32] <= s_data;
        if (bt_hs)
            wbuf <= bt_data;
        if (cmd_valid & idle)
            id_q <= cmd_id;
    end

    // One ID in flight, responses in order: BID is not needed.
    wire unused_ok = &{1'b0, m_axi_bid, m_axi_bresp[0], cmd_addr[1:0], bbytes[31:13],
                       cmd_btail[31:LOG_BB]};

endmodule

`default_nettype wire
