`default_nettype none
// dnpu_axi_rd: AXI4 read engine. One command = a run of whole data beats from
// external memory; the beats come out in order on a valid/ready stream.
//
// Command (taken when cmd_valid & cmd_ready; cmd_ready while idle, and also while
// a command is still being delivered once every burst of it has been issued
// (the queued command's bursts follow at once, its beats come after the
// previous command's in order: H_SAMPLE_FUSED_N streams positions back to back
// this way, paying the read latency once):
//   cmd_addr   byte address of the first byte wanted; the engine starts at the
//              beat that holds it (the low log2(DATA_W/8) bits are dropped), so
//              every burst is beat-aligned and every beat is full width
//   cmd_beats  beats to read, >= 1 (the caller counts them from its byte range)
//   cmd_id     ARID of every burst of the command
// Out: m_data/m_err/m_last per beat, m_err = RRESP is SLVERR or DECERR (the
// caller faults AXI_READ), m_last on the last beat of the commands taken so far.
//
// Bursts: INCR, ARSIZE = the full data width, at most MAX_BURST beats, never
// crossing a 4 KiB boundary (AXI4 rule), up to MAX_OUT bursts in flight so the
// memory's read latency overlaps the previous burst's data: a stream sustains at most
// MAX_OUT * MAX_BURST beats per (latency + MAX_BURST + 1) cycles.
//
// abort (the core faulted or took SOFT_RESET): no new burst is issued; an AR
// already raised stays up until accepted (AXI4 does not allow withdrawing it),
// and the R beats of every burst already issued are accepted and dropped.
// cmd_ready comes back when the last of them has arrived, so the next command
// never sees a stale beat. The engine never waits on m_ready while aborting.
//
// Only one ID is in flight at a time and AXI4 keeps one ID's responses in
// order, so RID is not needed to route beats.

module dnpu_axi_rd #(
    parameter integer ADDR_W    = 32,    // dnpu_top passes the profile's values
    parameter integer DATA_W    = 128,
    parameter integer ID_W      = 4,
    parameter integer MAX_BURST = 16,
    parameter integer MAX_OUT   = 4      // bursts in flight (the profile's axi.read_bursts)
) (
    input  wire                clk,
    input  wire                rst_n,

    input  wire                cmd_valid,
    output wire                cmd_ready,
    input  wire [ADDR_W-1:0]   cmd_addr,
    input  wire [31:0]         cmd_beats,
    input  wire [ID_W-1:0]     cmd_id,

    output wire                m_valid,
    output wire [DATA_W-1:0]   m_data,
    output wire                m_err,
    output wire                m_last,
    input  wire                m_ready,

    input  wire                abort,

    output wire [ID_W-1:0]     m_axi_arid,
    output wire [ADDR_W-1:0]   m_axi_araddr,
    output wire [7:0]          m_axi_arlen,
    output wire [2:0]          m_axi_arsize,
    output wire [1:0]          m_axi_arburst,
    output wire                m_axi_arlock,
    output wire [3:0]          m_axi_arcache,
    output wire [2:0]          m_axi_arprot,
    output wire                m_axi_arvalid,
    input  wire                m_axi_arready,
    input  wire [ID_W-1:0]     m_axi_rid,
    input  wire [DATA_W-1:0]   m_axi_rdata,
    input  wire [1:0]          m_axi_rresp,
    input  wire                m_axi_rlast,
    input  wire                m_axi_rvalid,
    output wire                m_axi_rready
);
    localparam integer BB      = DATA_W / 8;          // bytes per beat
    localparam integer LOG_BB  = $clog2(BB);
    localparam integer OUT_W   = (MAX_OUT < 3) ? 2 : $clog2(MAX_OUT + 1);   // 0 .. MAX_OUT
    localparam [31:0]  MAXB    = MAX_BURST;
    localparam [31:0]  PAGE    = 32'd4096;            // AXI4 bursts must not cross 4 KiB

    reg                active;       // a command is being delivered
    reg                aborting;     // dropping the beats of bursts already issued
    reg [ADDR_W-1:0]   ar_next;      // next burst address (beat-aligned)
    reg [31:0]         ar_left;      // beats not yet requested
    reg [31:0]         rx_left;      // beats not yet delivered
    reg [OUT_W-1:0]    outstanding;  // bursts issued whose last beat has not arrived
    reg                arvalid_q;
    reg [ADDR_W-1:0]   araddr_q;
    reg [7:0]          arlen_q;
    reg [ID_W-1:0]     arid_q;
    reg [ID_W-1:0]     cmd_id_q;

    // Next burst: as long as allowed, up to the 4 KiB boundary.
    wire [31:0] to_page = (PAGE - {20'd0, ar_next[11:0]}) >> LOG_BB;
    wire [31:0] lim     = (ar_left < MAXB) ? ar_left : MAXB;
    wire [31:0] blen    = (lim < to_page) ? lim : to_page;
    wire [31:0] bbytes  = blen << LOG_BB;            // <= 4096
    wire [ADDR_W-1:0] bstep = {{(ADDR_W-13){1'b0}}, bbytes[12:0]};

    wire ar_hs   = arvalid_q & m_axi_arready;
    wire r_hs    = m_axi_rvalid & m_axi_rready;
    wire issue   = active & ~aborting & ~arvalid_q & (ar_left != 32'd0)
                 & (outstanding != MAX_OUT[OUT_W-1:0]);
    wire idle    = ~active & ~aborting & ~arvalid_q & (outstanding == {OUT_W{1'b0}});

    // Queueing behind an active command: all its bursts issued (ar_left = 0).
    wire queue   = active & ~aborting & (ar_left == 32'd0);
    assign cmd_ready = idle | queue;
    wire cmd_go  = cmd_valid & cmd_ready;
    wire rx_take = m_valid & m_ready;
    // The beats still to deliver after this cycle: every outcome of the command and of the
    // consumer's ready made beside them, chosen by them last (no adder after m_ready).
    wire [31:0] rx_base = idle ? 32'd0 : rx_left;
    wire [31:0] rx_cmd  = rx_base + cmd_beats;
    wire [31:0] rx_cmd1 = rx_base + (cmd_beats - 32'd1);
    wire [31:0] rx_dec  = rx_left - 32'd1;
    wire [31:0] rx_next = cmd_go ? (rx_take ? rx_cmd1 : rx_cmd) : (rx_take ? rx_dec : rx_left);

    assign m_valid = m_axi_rvalid & active & ~aborting;
    assign m_data  = m_axi_rdata;
    assign m_err   = m_axi_rresp[1];                  // SLVERR (10) or DECERR (11)
    assign m_last  = (rx_left == 32'd1);
    assign m_axi_rready = aborting | (active & m_ready);

    assign m_axi_arid    = arid_q;
    assign m_axi_araddr  = araddr_q;
    assign m_axi_arlen   = arlen_q;
    assign m_axi_arsize  = LOG_BB[2:0];
    assign m_axi_arburst = 2'b01;                     // INCR
    assign m_axi_arlock  = 1'b0;
    assign m_axi_arcache = 4'b0011;                   // normal, non-cacheable, bufferable
    assign m_axi_arprot  = 3'b000;
    assign m_axi_arvalid = arvalid_q;

    wire [OUT_W-1:0] out_inc = {{(OUT_W-1){1'b0}}, issue};
    wire [OUT_W-1:0] out_dec = {{(OUT_W-1){1'b0}}, r_hs & m_axi_rlast};
    // the count with the issue, less one chosen by the last beat: the beat's handshake (the
    // consumer's ready) is a select after the adders, not an input of them
    wire [OUT_W-1:0] out_up  = outstanding + out_inc;

    always @(posedge clk) begin
        if (!rst_n) begin
            active      <= 1'b0;
            aborting    <= 1'b0;
            ar_left     <= 32'd0;
            rx_left     <= 32'd0;
            outstanding <= {OUT_W{1'b0}};
            arvalid_q   <= 1'b0;
        end else begin
            // Bursts count as outstanding from the moment AR is raised: a raised
            // AR is committed (it may not be withdrawn).
            outstanding <= out_dec[0] ? out_up - 1'b1 : out_up;
            if (ar_hs)
                arvalid_q <= 1'b0;
            if (issue) begin
                arvalid_q <= 1'b1;
                ar_next   <= ar_next + bstep;
                ar_left   <= ar_left - blen;
            end
            if (rx_take & (rx_left == 32'd1))
                active <= 1'b0;
            rx_left <= rx_next;
            // ar_next is free whenever a command may be taken (idle, or every burst of the
            // active one issued): it loads then, so that cmd_valid reaches only the counters.
            if (cmd_ready)
                ar_next <= {cmd_addr[ADDR_W-1:LOG_BB], {LOG_BB{1'b0}}};
            if (cmd_go) begin
                active  <= 1'b1;
                ar_left <= cmd_beats;
            end
            if (abort & ~idle) begin
                active   <= 1'b0;
                aborting <= 1'b1;
                ar_left  <= 32'd0;
            end else if (aborting & ~arvalid_q & (outstanding == out_dec)) begin
                aborting <= 1'b0;                      // the last dropped beat is in
            end
        end
        if (issue) begin
            araddr_q <= ar_next;
            arlen_q  <= blen[7:0] - 8'd1;
            arid_q   <= cmd_id_q;
        end
        if (cmd_go)
            cmd_id_q <= cmd_id;
    end

    // RID is not needed (see above); RRESP[1] alone tells an error; the
    // command's low address bits only pick bytes inside the first beat.
    wire unused_ok = &{1'b0, m_axi_rid, m_axi_rresp[0], cmd_addr[LOG_BB-1:0], bbytes[31:13]};

endmodule

`default_nettype wire
