`default_nettype none
// dnpu_uart_bridge: the serial link's framed protocol (docs/SERIAL.md, from
// hw/serial.toml) on a UART, as an AXI4-Lite master of 32-bit words.
//
// Every code, size and window comes from dnpu_serial.vh / dnpu_csr.vh.
//
// Reading a request: bytes before a sync byte are dropped. After it, the CRC
// is updated byte by byte; the header tells how long the frame is (DATA only
// in a WRITE; an unknown command is taken as a frame without DATA), so a
// refused frame is still read to its CRC byte. A WRITE's words go to a buffer
// of MAX_WORDS words and reach the bus only after the CRC has matched, so a
// corrupted WRITE writes nothing. Checks, in the codec's order
// (dnpu.spec.serial.parse_request): CRC, command, NWORDS, address (aligned,
// and all words inside one window).
//
// A refused frame is answered only after the line has been idle for GAP_BITS
// bit times: the rest of a frame the host thinks is longer (a corrupted
// NWORDS) must not be read as a new frame. The same idle time inside a frame
// ends it with FRAME_TIMEOUT, so a dropped byte never leaves the bridge
// waiting forever.
//
// Executing: one bus transfer at a time, each bounded by BUS_TIMEOUT cycles.
// A READ's reply header goes out first and each word is sent as soon as it is
// read, so the status (after the data) says whether a bus error or timeout hit
// a word; that word and the rest are sent as 0 and not read. A WRITE stops at
// the first failing word. After a timeout the transfer is abandoned (its
// VALID dropped): a slave that never answers is broken, and the status tells
// the host to reset the board rather than trust a late response.
//
// The bus address is held from a transfer's request to its response, so an
// interconnect may decode the response channels from it.

`include "dnpu_serial.vh"
`include "dnpu_csr.vh"

module dnpu_uart_bridge #(
    parameter integer CLKS_PER_BIT = 868,
    parameter integer GAP_BITS     = `DNPU_SERIAL_FRAME_GAP_BITS,
    parameter integer MEM_BYTES    = 1 << 20,
    parameter integer BUS_TIMEOUT  = `DNPU_SERIAL_BUS_TIMEOUT_CYCLES
) (
    input  wire        clk,
    input  wire        rst_n,                  // synchronous, active low
    input  wire        uart_rx,
    output wire        uart_tx,
    output wire        link_idle,              // waiting for a sync byte, nothing to send

    // AXI4-Lite master, 32-bit, full 32-bit addresses
    output reg  [31:0] m_axil_awaddr,
    output wire [2:0]  m_axil_awprot,
    output reg         m_axil_awvalid,
    input  wire        m_axil_awready,
    output reg  [31:0] m_axil_wdata,
    output wire [3:0]  m_axil_wstrb,
    output reg         m_axil_wvalid,
    input  wire        m_axil_wready,
    input  wire [1:0]  m_axil_bresp,
    input  wire        m_axil_bvalid,
    output wire        m_axil_bready,
    output reg  [31:0] m_axil_araddr,
    output wire [2:0]  m_axil_arprot,
    output reg         m_axil_arvalid,
    input  wire        m_axil_arready,
    input  wire [31:0] m_axil_rdata,
    input  wire [1:0]  m_axil_rresp,
    input  wire        m_axil_rvalid,
    output wire        m_axil_rready
);
    localparam integer MAX_WORDS = `DNPU_SERIAL_MAX_WORDS;
    localparam integer WI_W      = $clog2(MAX_WORDS + 1);   // word index / count
    localparam integer BI_W      = $clog2(MAX_WORDS);       // write buffer index
    localparam [WI_W-1:0] MAXW   = MAX_WORDS[WI_W-1:0];
    localparam [7:0]      MAX8   = MAX_WORDS[7:0];
    localparam integer GAP_CYCLES = GAP_BITS * CLKS_PER_BIT;
    localparam integer GAP_W     = $clog2(GAP_CYCLES + 1);
    localparam integer TO_W      = $clog2(BUS_TIMEOUT + 1);
    localparam [32:0] CSR_LO = {1'b0, `DNPU_SERIAL_CSR_BASE};
    localparam [32:0] CSR_HI = CSR_LO + (33'd1 << `DNPU_CSR_ADDR_W);
    localparam [32:0] MEM_LO = {1'b0, `DNPU_SERIAL_MEM_BASE};
    localparam [32:0] MEM_HI = MEM_LO + MEM_BYTES;

    // ---- the UART ------------------------------------------------------------------
    wire [7:0] rx_data;
    wire       rx_valid, rx_frame_err, rx_line, rx_idle;
    reg  [7:0] tx_data;
    reg        tx_valid;
    wire       tx_ready;

    dnpu_uart_rx #(.CLKS_PER_BIT(CLKS_PER_BIT)) u_rx (
        .clk(clk), .rst_n(rst_n), .rx(uart_rx), .data(rx_data), .valid(rx_valid),
        .frame_err(rx_frame_err), .line(rx_line), .idle(rx_idle));
    dnpu_uart_tx #(.CLKS_PER_BIT(CLKS_PER_BIT)) u_tx (
        .clk(clk), .rst_n(rst_n), .data(tx_data), .valid(tx_valid), .ready(tx_ready), .tx(uart_tx));

    // Cycles the line has been high: any low level (a start bit, a 0 data bit, a
    // glitch) restarts it.
    reg [GAP_W-1:0] idle_cnt;
    wire gap = idle_cnt == GAP_CYCLES[GAP_W-1:0];
    always @(posedge clk)
        if (!rst_n || !rx_line) idle_cnt <= {GAP_W{1'b0}};
        else if (!gap)          idle_cnt <= idle_cnt + 1'b1;

    function automatic [7:0] crc8(input [7:0] crc, input [7:0] b);
        integer i;
        reg [7:0] c;
        begin
            c = crc ^ b;
            for (i = 0; i < 8; i = i + 1)
                c = c[7] ? {c[6:0], 1'b0} ^ `DNPU_SERIAL_CRC8_POLY : {c[6:0], 1'b0};
            crc8 = c;
        end
    endfunction

    // ---- state ---------------------------------------------------------------------
    localparam [3:0] S_SYNC = 4'd0,  S_HDR = 4'd1,  S_DATA = 4'd2,  S_CRC = 4'd3,
                     S_DRAIN = 4'd4, S_WBUS = 4'd5, T_SYNC = 4'd6,  T_SEQ = 4'd7,
                     T_NW = 4'd8,    T_FETCH = 4'd9, T_WORD = 4'd10, T_STATUS = 4'd11,
                     T_CRC = 4'd12;
    reg [3:0]  state;
    reg [2:0]  hdr_i;                  // header bytes received after the sync byte
    reg [7:0]  crc;                    // request CRC while reading, reply CRC while sending
    reg [7:0]  cmd, seq, nwords;
    reg [31:0] addr;
    reg [9:0]  data_left;              // DATA bytes still to come (4 * 255 at most)
    reg [23:0] wacc;                   // a WRITE word's first three bytes
    reg [1:0]  bsel;                   // byte of the word being received / sent
    reg [WI_W-1:0] widx;               // word being buffered / executed / sent
    reg [WI_W-1:0] rnw;                // reply NWORDS
    reg [7:0]  status;
    reg [31:0] word;                   // the word being sent
    reg        failed;                 // a bus error or timeout hit: no more transfers
    reg        issued;                 // the current transfer's request is out
    reg [TO_W-1:0] tcnt;
    reg [31:0] wbuf [0:MAX_WORDS-1];

    wire is_read  = cmd == `DNPU_SERIAL_CMD_READ;
    wire is_write = cmd == `DNPU_SERIAL_CMD_WRITE;
    wire is_info  = cmd == `DNPU_SERIAL_CMD_INFO;

    // The checks on a whole frame, rx_data being its CRC byte.
    wire [32:0] a_lo = {1'b0, addr};
    wire [32:0] a_hi = a_lo + {23'd0, nwords, 2'b00};
    wire in_window = (a_lo >= CSR_LO && a_hi <= CSR_HI) || (a_lo >= MEM_LO && a_hi <= MEM_HI);
    reg  [7:0] verdict;
    always @(*) begin
        if (rx_data != crc)                                        verdict = `DNPU_SERIAL_ST_BAD_CRC;
        else if (!is_read && !is_write && !is_info)                verdict = `DNPU_SERIAL_ST_BAD_CMD;
        else if (!is_info && (nwords == 8'd0 || nwords > MAX8)) verdict = `DNPU_SERIAL_ST_BAD_LEN;
        else if (!is_info && (addr[1:0] != 2'b00 || !in_window))   verdict = `DNPU_SERIAL_ST_BAD_ADDR;
        else                                                       verdict = `DNPU_SERIAL_ST_OK;
    end

    reg [31:0] info_word;
    always @(*) begin
        case (widx)
        `DNPU_SERIAL_INFO_VERSION:      info_word = `DNPU_SERIAL_VERSION;
        `DNPU_SERIAL_INFO_CSR_BASE:     info_word = `DNPU_SERIAL_CSR_BASE;
        `DNPU_SERIAL_INFO_MEM_BASE:     info_word = `DNPU_SERIAL_MEM_BASE;
        `DNPU_SERIAL_INFO_MEM_BYTES:    info_word = MEM_BYTES;
        `DNPU_SERIAL_INFO_MAX_WORDS:    info_word = MAX_WORDS;
        `DNPU_SERIAL_INFO_CLKS_PER_BIT: info_word = CLKS_PER_BIT;
        `DNPU_SERIAL_INFO_GAP_BITS:     info_word = GAP_BITS;
        default:                        info_word = 32'd0;
        endcase
    end

    // A byte with a low stop bit is not delivered: the frame it belonged to ends in a
    // CRC mismatch or, short of a byte, in FRAME_TIMEOUT.
    wire unused_ok = &{1'b0, rx_frame_err, m_axil_bresp[0], m_axil_rresp[0]};

    assign m_axil_awprot = 3'b000;
    assign m_axil_arprot = 3'b000;
    assign m_axil_wstrb  = 4'hF;
    assign m_axil_bready = state == S_WBUS && issued;
    assign m_axil_rready = state == T_FETCH && issued;
    assign link_idle = state == S_SYNC && rx_idle && tx_ready && !tx_valid;

    wire [WI_W-1:0] nw = nwords[WI_W-1:0];
    wire timeout = tcnt == BUS_TIMEOUT[TO_W-1:0];
    wire tx_free = tx_ready && !tx_valid;      // the last byte has been taken

    // Send one reply byte (when the transmitter is free) and go on to next_state.
    task automatic send(input [7:0] b, input [3:0] next_state);
        begin
            tx_data  <= b;
            tx_valid <= 1'b1;
            crc      <= crc8(crc, b);
            state    <= next_state;
        end
    endtask

    always @(posedge clk) begin
        tx_valid <= 1'b0;
        if (!rst_n) begin
            state <= S_SYNC;
            m_axil_awvalid <= 1'b0;
            m_axil_wvalid  <= 1'b0;
            m_axil_arvalid <= 1'b0;
            issued <= 1'b0;
            seq    <= 8'd0;
            cmd    <= 8'd0;
        end else begin
            case (state)
            S_SYNC: if (rx_valid && rx_data == `DNPU_SERIAL_REQ_SYNC) begin
                state <= S_HDR;
                hdr_i <= 3'd0;
                crc   <= `DNPU_SERIAL_CRC8_INIT;
                seq   <= 8'd0;               // a frame cut before its SEQ is answered with 0
                cmd   <= 8'd0;
            end
            S_HDR, S_DATA, S_CRC: if (rx_valid) begin
                if (state != S_CRC) crc <= crc8(crc, rx_data);
                if (state == S_HDR) begin
                    hdr_i <= hdr_i + 1'b1;
                    case (hdr_i)
                    3'd0: cmd <= rx_data;
                    3'd1: seq <= rx_data;
                    3'd2: addr[7:0]   <= rx_data;
                    3'd3: addr[15:8]  <= rx_data;
                    3'd4: addr[23:16] <= rx_data;
                    3'd5: addr[31:24] <= rx_data;
                    default: begin
                        nwords    <= rx_data;
                        data_left <= {rx_data, 2'b00};
                        bsel      <= 2'd0;
                        widx      <= {WI_W{1'b0}};
                        state     <= is_write && rx_data != 8'd0 ? S_DATA : S_CRC;
                    end
                    endcase
                end else if (state == S_DATA) begin
                    data_left <= data_left - 1'b1;
                    bsel      <= bsel + 1'b1;
                    wacc      <= {rx_data, wacc[23:8]};
                    if (bsel == 2'd3) begin
                        // Words past MAX_WORDS are counted, not kept: the frame is refused.
                        if (widx < MAXW) wbuf[widx[BI_W-1:0]] <= {rx_data, wacc};
                        widx <= widx == MAXW ? widx : widx + 1'b1;
                    end
                    if (data_left == 10'd1) state <= S_CRC;
                end else begin
                    status <= verdict;
                    widx   <= {WI_W{1'b0}};
                    failed <= 1'b0;
                    rnw    <= {WI_W{1'b0}};
                    crc    <= `DNPU_SERIAL_CRC8_INIT;
                    if (verdict != `DNPU_SERIAL_ST_OK) state <= S_DRAIN;
                    else if (is_write)                 state <= S_WBUS;
                    else begin
                        rnw   <= is_info ? `DNPU_SERIAL_INFO_COUNT : nw;
                        state <= T_SYNC;
                    end
                end
            end else if (gap) begin
                status <= `DNPU_SERIAL_ST_FRAME_TIMEOUT;
                rnw    <= {WI_W{1'b0}};
                crc    <= `DNPU_SERIAL_CRC8_INIT;
                state  <= T_SYNC;
            end
            S_DRAIN: if (gap) state <= T_SYNC;

            S_WBUS: begin                            // write wbuf[widx] to addr + 4 * widx
                if (!issued) begin
                    m_axil_awaddr  <= addr + {{(30 - WI_W){1'b0}}, widx, 2'b00};
                    m_axil_wdata   <= wbuf[widx[BI_W-1:0]];
                    m_axil_awvalid <= 1'b1;
                    m_axil_wvalid  <= 1'b1;
                    issued <= 1'b1;
                    tcnt   <= {TO_W{1'b0}};
                end else begin
                    tcnt <= tcnt + 1'b1;
                    if (m_axil_awready) m_axil_awvalid <= 1'b0;
                    if (m_axil_wready)  m_axil_wvalid  <= 1'b0;
                    if (m_axil_bvalid || timeout) begin
                        issued <= 1'b0;
                        m_axil_awvalid <= 1'b0;
                        m_axil_wvalid  <= 1'b0;
                        if (!m_axil_bvalid) begin
                            status <= `DNPU_SERIAL_ST_BUS_TIMEOUT;
                            state  <= T_SYNC;
                        end else if (m_axil_bresp[1]) begin
                            status <= `DNPU_SERIAL_ST_BUS_ERROR;
                            state  <= T_SYNC;
                        end else if (widx + 1'b1 == nw) begin
                            state  <= T_SYNC;
                        end else begin
                            widx   <= widx + 1'b1;
                        end
                    end
                end
            end

            // ---- the reply --------------------------------------------------------
            T_SYNC: if (tx_free) begin
                send(`DNPU_SERIAL_RSP_SYNC, T_SEQ);
                crc <= `DNPU_SERIAL_CRC8_INIT;           // the sync byte is outside the CRC
            end
            T_SEQ:  if (tx_free) send(seq, T_NW);
            T_NW:   if (tx_free) begin
                send({{(8 - WI_W){1'b0}}, rnw}, rnw != 0 ? T_FETCH : T_STATUS);
                widx <= {WI_W{1'b0}};
            end
            T_FETCH: begin                           // the word to send: INFO, or a bus read
                bsel <= 2'd0;
                if (is_info) begin
                    word  <= info_word;
                    state <= T_WORD;
                end else if (failed) begin
                    word  <= 32'd0;
                    state <= T_WORD;
                end else if (!issued) begin
                    m_axil_araddr  <= addr + {{(30 - WI_W){1'b0}}, widx, 2'b00};
                    m_axil_arvalid <= 1'b1;
                    issued <= 1'b1;
                    tcnt   <= {TO_W{1'b0}};
                end else begin
                    tcnt <= tcnt + 1'b1;
                    if (m_axil_arready) m_axil_arvalid <= 1'b0;
                    if (m_axil_rvalid || timeout) begin
                        issued <= 1'b0;
                        m_axil_arvalid <= 1'b0;
                        state <= T_WORD;
                        word  <= m_axil_rvalid && !m_axil_rresp[1] ? m_axil_rdata : 32'd0;
                        if (!m_axil_rvalid) begin
                            status <= `DNPU_SERIAL_ST_BUS_TIMEOUT;
                            failed <= 1'b1;
                        end else if (m_axil_rresp[1]) begin
                            status <= `DNPU_SERIAL_ST_BUS_ERROR;
                            failed <= 1'b1;
                        end
                    end
                end
            end
            T_WORD: if (tx_free) begin
                send(word[7:0], bsel == 2'd3 ? (widx + 1'b1 == rnw ? T_STATUS : T_FETCH) : T_WORD);
                word <= {8'd0, word[31:8]};
                bsel <= bsel + 1'b1;
                if (bsel == 2'd3) widx <= widx + 1'b1;
            end
            T_STATUS: if (tx_free) send(status, T_CRC);
            T_CRC:    if (tx_free) send(crc, S_SYNC);
            default:  state <= S_SYNC;
            endcase
        end
    end
endmodule
`default_nettype wire
