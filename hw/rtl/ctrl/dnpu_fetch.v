`default_nettype none
// dnpu_fetch: instruction fetch through four line buffers of LINE_WORDS words each,
// direct-mapped on the low two line-address bits. Four lines keep a loop body of up to
// four consecutive lines resident (the sampling step's batch-row loop), so a loop pays
// for its lines once.
//
// The core asks for the word at pc (req, its FETCH state) and holds pc until
// instr_valid. A miss (pc word-aligned, line not resident, no fill in progress) raises
// cmd_valid for the aligned line, one read-engine command; from the cycle the engine
// takes it the line's slot is invalid, and it is valid again the cycle after its last
// beat: a miss costs the memory's latency and the line's beats, then a lookup.
// A misaligned pc (only PROG_BASE can make one) never misses: the core faults it.
//
// The buffers are emptied by flush (START and SOFT_RESET: the host may have written a
// new program), never otherwise: a program must not write the memory it runs from
// (EXECUTION.md). flush also abandons a fill (the core aborts the read engine, which
// drops the fill's remaining beats). Each word keeps the error flag of the beat it came
// in, and instr_err reports it only when that word is asked for, so reading ahead past
// the end of a program (the rest of its last line) is harmless.
//
// A line is filled only if the core's memory window check passes for it (win_ok, on
// cmd_addr and the line's bytes): otherwise there is no read and win_fault tells the core
// to fault WINDOW at pc. Fills are for pc's own line only, never ahead, so nothing outside
// the windows is read speculatively.

module dnpu_fetch #(
    parameter integer DATA_W     = 128,  // AXI data bits
    parameter integer LINE_WORDS = 8     // words per line (a power of 2)
) (
    input  wire               clk,
    input  wire               rst_n,
    input  wire               flush,

    input  wire               req,
    input  wire [31:0]        pc,
    output wire               instr_valid,
    output wire [31:0]        instr,
    output wire               instr_err,    // the word came in an AXI error beat
    output wire               stall,        // counter strobe: a cycle spent on a miss

    // line fills (dnpu_axi_rd)
    output wire               cmd_valid,
    input  wire               cmd_ready,
    output wire [31:0]        cmd_addr,
    output wire [31:0]        cmd_beats,
    input  wire               s_valid,
    input  wire [DATA_W-1:0]  s_data,
    input  wire               s_err,
    input  wire               s_last,
    output wire               s_ready,

    // memory windows
    input  wire               win_ok,       // cmd_addr's line lies in an executable window
    output wire               win_fault     // pc's line is needed and does not
);
    localparam integer BB          = DATA_W / 8;            // bytes per beat
    localparam integer WPB         = DATA_W / 32;           // words per beat
    localparam integer LOG_WPB     = $clog2(WPB);
    localparam integer LW          = LINE_WORDS;
    localparam integer LOG_LW      = $clog2(LW);
    localparam integer LOG_LB      = LOG_LW + 2;            // log2 bytes per line
    localparam integer LINE_BEATS  = (4 * LW >= BB) ? (4 * LW / BB) : 1;
    localparam integer FETCH_LINES = 4;                     // a power of 2
    localparam integer LOG_FL      = $clog2(FETCH_LINES);
    localparam integer TAG_W       = 32 - LOG_LB;

    reg [31:0]               lbuf [0:FETCH_LINES*LW-1];
    reg [FETCH_LINES*LW-1:0] lerr;
    reg [TAG_W-1:0]          ltag [0:FETCH_LINES-1];
    reg [FETCH_LINES-1:0]    lval;
    reg                      filling;    // the line of pc is being filled
    reg [31:0]               fill_idx;   // its next beat

    wire [TAG_W-1:0]         pc_tag  = pc[31:LOG_LB];
    wire [LOG_FL-1:0]        pc_slot = pc[LOG_LB +: LOG_FL];
    wire [LOG_LW-1:0]        pc_word = pc[LOG_LB-1:2];
    wire                     hit     = lval[pc_slot] & (ltag[pc_slot] == pc_tag);
    wire [LOG_FL+LOG_LW-1:0] hit_idx = {pc_slot, pc_word};

    assign instr_valid = req & hit;
    assign instr       = lbuf[hit_idx];
    assign instr_err   = lerr[hit_idx];

    wire   miss      = req & ~flush & (pc[1:0] == 2'b00) & ~hit & ~filling;
    assign cmd_valid = miss & win_ok;
    assign win_fault = miss & ~win_ok;
    wire [31:0] line_addr = {pc_tag, {LOG_LB{1'b0}}};
    assign cmd_addr  = line_addr;
    assign cmd_beats = LINE_BEATS;
    assign s_ready   = filling;
    assign stall     = cmd_valid | (filling & ~flush);

    // Word offset of the line in its first beat: 0 when a line is one beat or more,
    // else where the line sits in the (wider) beat. Which line words the current
    // beat carries, and their data:
    localparam [31:0] WPB_M1 = WPB - 1;
    wire [31:0] line_lane0 = (line_addr >> 2) & WPB_M1;
    reg  [LW-1:0]    fill_sel;
    reg  [32*LW-1:0] fill_wd;
    reg  [31:0]      fill_pos;
    integer w;
    always @* begin
        fill_sel = {LW{1'b0}};
        fill_wd  = {32*LW{1'b0}};
        fill_pos = 32'd0;
        for (w = 0; w < LW; w = w + 1) begin
            fill_pos = line_lane0 + w;
            fill_sel[w] = (fill_idx == (fill_pos >> LOG_WPB));
            fill_wd[32*w +: 32] = s_data[{fill_pos[LOG_WPB-1:0], 5'd0} +: 32];
        end
    end

    integer i;
    always @(posedge clk) begin
        if (!rst_n) begin
            lval    <= {FETCH_LINES{1'b0}};
            filling <= 1'b0;
        end else begin
            if (cmd_valid & cmd_ready) begin
                lval[pc_slot] <= 1'b0;
                ltag[pc_slot] <= pc_tag;
                fill_idx      <= 32'd0;
                filling       <= 1'b1;
            end
            if (filling & s_valid) begin
                fill_idx <= fill_idx + 32'd1;
                if (s_last) begin
                    lval[pc_slot] <= 1'b1;
                    filling       <= 1'b0;
                end
            end
            if (flush) begin
                lval    <= {FETCH_LINES{1'b0}};
                filling <= 1'b0;
            end
        end
        // Line data (no reset: lval guards it).
        if (filling && s_valid) begin
            for (i = 0; i < LW; i = i + 1) begin
                if (fill_sel[i]) begin
                    lbuf[{pc_slot, i[LOG_LW-1:0]}] <= fill_wd[32*i +: 32];
                    lerr[{pc_slot, i[LOG_LW-1:0]}] <= s_err;
                end
            end
        end
    end

endmodule

`default_nettype wire
