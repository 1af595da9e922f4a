`default_nettype none
// dnpu_loop_stack: the hardware loops of C_LOOP / C_LOOPI (EXECUTION.md "Hardware loops").
//
// Entry k: the body's first instruction, its end (the address of its last instruction,
// 33 bits so that a body running past 2^32 compares like the emulator's unbounded
// integers) and the iterations still to run, the current one included.
//
// End rule: after the instruction at `at` retires (or a count-0 body ending at `at` is
// skipped), the loops that end at `at` close, innermost first: one with iterations left
// sends execution back to its start and counts down, one on its last iteration pops and
// the next one out is looked at. Ends nest, so the loops ending at `at` are the top
// entries of the stack. next_pc is where execution continues: at + 4 when no loop ends
// there. A pushed loop's count is never 0 (the core skips such a body instead).
//
// REG_RULE = 1 (the core's DECODE stage): the rule's outcome (next_pc, the new depth, the
// entry that counts down and its new count) is registered while `latch` is high (DECODE),
// from `at` as it is then, and `step` only applies it: `at` (PC, or a skipped body's
// end) and the stack do not change between DECODE and the retire, so the retire's enable
// is the only path from the instruction's end into the stack and the next PC.

module dnpu_loop_stack #(
    parameter integer DEPTH    = 4,
    parameter integer REG_RULE = 0
) (
    input  wire        clk,
    input  wire        rst_n,
    input  wire        clear,        // START, SOFT_RESET: no loop open

    // a C_LOOP / C_LOOPI in EXEC
    input  wire [32:0] new_end,      // its body's last instruction
    output wire        nest_err,     // new_end lies past the innermost open loop's end
    output wire        full,
    input  wire        push,         // it retires: the loop opens
    input  wire [31:0] push_start,   // its body's first instruction
    input  wire [31:0] push_count,

    // the end rule, at `at`: a skipped body's end with `skip`, else PC (the two compared
    // apart and chosen after, so that the choice is not ahead of the compares)
    input  wire [31:0] at_pc,
    input  wire [32:0] at_skip,
    input  wire        skip,
    output wire [31:0] next_pc,
    input  wire        latch,        // REG_RULE = 1: register the rule's outcome at `at`
    input  wire        step          // the instruction at `at` retires (not a push, not C_HALT)
);
    localparam integer SP_W = $clog2(DEPTH + 1);
    localparam integer LS_W = (DEPTH > 1) ? $clog2(DEPTH) : 1;   // entry index
    localparam [31:0]  DEPTH_32   = DEPTH;
    localparam [SP_W-1:0] DEPTH_FULL = DEPTH_32[SP_W-1:0];

    reg [31:0]     ls_start [0:DEPTH-1];
    reg [32:0]     ls_end   [0:DEPTH-1];
    reg [31:0]     ls_rem   [0:DEPTH-1];
    reg [SP_W-1:0] sp;                              // entries in use

    wire [LS_W-1:0] sp_top = sp[LS_W-1:0] - 1'b1;   // innermost entry (when sp != 0)
    wire [LS_W-1:0] sp_new = sp[LS_W-1:0];          // the entry a push fills (sp < DEPTH)
    assign nest_err = (sp != {SP_W{1'b0}}) & (new_end > ls_end[sp_top]);
    assign full     = (sp == DEPTH_FULL);

    wire [31:0]     at = skip ? at_skip[31:0] : at_pc;
    reg  [DEPTH-1:0] at_end;                        // entry k's loop ends at `at`
    integer j;
    always @*
        for (j = 0; j < DEPTH; j = j + 1)
            at_end[j] = skip ? (ls_end[j] == at_skip) : (ls_end[j] == {1'b0, at_pc});

    reg  [31:0]     er_pc;
    reg  [SP_W-1:0] er_sp;
    reg             er_dec;                         // count entry er_idx down
    reg  [LS_W-1:0] er_idx;
    reg             er_stop;
    integer k;
    always @* begin
        er_pc   = at[31:0] + 32'd4;
        er_sp   = sp;
        er_dec  = 1'b0;
        er_idx  = {LS_W{1'b0}};
        er_stop = 1'b0;
        for (k = DEPTH - 1; k >= 0; k = k - 1) begin
            if (!er_stop && k < sp) begin
                if (!at_end[k]) begin
                    er_stop = 1'b1;
                end else if (ls_rem[k] > 32'd1) begin
                    er_pc   = ls_start[k];
                    er_sp   = k[SP_W-1:0] + 1'b1;
                    er_dec  = 1'b1;
                    er_idx  = k[LS_W-1:0];
                    er_stop = 1'b1;
                end else begin
                    er_sp   = k[SP_W-1:0];              // popped
                end
            end
        end
    end

    wire [31:0] er_rem = ls_rem[er_idx] - 32'd1;

    reg  [31:0]     q_pc, q_rem;
    reg  [SP_W-1:0] q_sp;
    reg             q_dec;
    reg  [LS_W-1:0] q_idx;
    always @(posedge clk)
        if (latch) begin
            q_pc  <= er_pc;
            q_sp  <= er_sp;
            q_dec <= er_dec;
            q_idx <= er_idx;
            q_rem <= er_rem;
        end

    wire [31:0]     s_pc  = (REG_RULE != 0) ? q_pc  : er_pc;
    wire [SP_W-1:0] s_sp  = (REG_RULE != 0) ? q_sp  : er_sp;
    wire            s_dec = (REG_RULE != 0) ? q_dec : er_dec;
    wire [LS_W-1:0] s_idx = (REG_RULE != 0) ? q_idx : er_idx;
    wire [31:0]     s_rem = (REG_RULE != 0) ? q_rem : er_rem;
    assign next_pc = s_pc;

    always @(posedge clk) begin
        if (!rst_n || clear) begin
            sp <= {SP_W{1'b0}};
        end else if (push) begin
            ls_start[sp_new] <= push_start;
            ls_end[sp_new]   <= new_end;
            ls_rem[sp_new]   <= push_count;
            sp               <= sp + 1'b1;
        end else if (step) begin
            sp <= s_sp;
            if (s_dec)
                ls_rem[s_idx] <= s_rem;
        end
    end

endmodule

`default_nettype wire
