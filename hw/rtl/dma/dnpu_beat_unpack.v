`default_nettype none
// dnpu_beat_unpack: full AXI data beats in, 32-bit words out, one a cycle.
//
// For H_LOAD_INT / H_LOAD_FP: the read engine delivers whole beats starting at
// the beat that holds the first word; this block skips the lanes below the
// first word (start_lane) and stops after start_words words, dropping the
// lanes of the last beat past the range. The int and FP SRAMs take one word
// a cycle, so words leave at that rate; a beat is taken in the cycle its last
// needed word leaves, so a stream of beats is unpacked without bubbles.
//
// A beat that arrived with an error response (s_err) is presented once as a
// word with m_err set and its data ignored; the core faults AXI_READ and
// flushes this block (and aborts the read engine).
//
// start (one cycle, while no transfer is in progress) sets up a transfer;
// flush drops everything.

module dnpu_beat_unpack #(
    parameter integer DATA_W = 128        // >= 64; dnpu_lsu passes the profile's width
) (
    input  wire                         clk,
    input  wire                         rst_n,

    input  wire                         start,
    input  wire [$clog2(DATA_W/32)-1:0] start_lane,
    input  wire [31:0]                  start_words,
    input  wire                         flush,

    input  wire                         s_valid,
    input  wire [DATA_W-1:0]            s_data,
    input  wire                         s_err,
    output wire                         s_ready,

    output wire                         m_valid,
    output wire [31:0]                  m_data,
    output wire                         m_err,
    input  wire                         m_ready
);
    localparam integer LOG_WPB = $clog2(DATA_W / 32);

    reg [DATA_W-1:0]  bbuf;
    reg               bvalid;
    reg               berr;
    reg [LOG_WPB-1:0] lane;
    reg [31:0]        left;        // words not yet handed out

    wire m_hs     = bvalid & m_ready;
    wire buf_last = (lane == {LOG_WPB{1'b1}}) | (left == 32'd1);   // DATA_W/32 is a power of 2

    assign m_valid = bvalid;
    assign m_data  = bbuf[{lane, 5'd0} +: 32];
    assign m_err   = berr;
    // Take the next beat when the buffer is empty or its last needed word
    // leaves now, and words beyond this buffer are still wanted.
    assign s_ready = (left != 32'd0) & (~bvalid | (m_hs & buf_last & (left != 32'd1)));

    wire s_hs = s_valid & s_ready;

    always @(posedge clk) begin
        if (!rst_n || flush) begin
            bvalid <= 1'b0;
            berr   <= 1'b0;
            left   <= 32'd0;
        end else if (start) begin
            bvalid <= 1'b0;
            berr   <= 1'b0;
            left   <= start_words;
            lane   <= start_lane;
        end else begin
            if (m_hs) begin
                left <= left - 32'd1;
                if (buf_last)
                    lane <= {LOG_WPB{1'b0}};
                else
                    lane <= lane + 1'b1;
            end
            if (s_hs) begin
                bvalid <= 1'b1;
                berr   <= s_err;
            end else if (m_hs & buf_last) begin
                bvalid <= 1'b0;
            end
        end
        if (s_hs)
            bbuf <= s_data;
    end

endmodule

`default_nettype wire
