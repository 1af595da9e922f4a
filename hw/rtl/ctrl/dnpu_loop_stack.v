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
// REG_RULE = 1 (the core's DECODE stage): which entries end at `at` (the compares) is
// registered while `latch` is high (DECODE), from `at` as it is then; the rest of the rule
// runs from that register and the stack: `at` (PC, or a skipped body's end) and the stack
// do not change between DECODE and the retire. The stack takes a push or the rule's outcome
// the cycle after `push` or `step` (a retire is followed by at least one FETCH cycle, in
// which nothing reads the stack and the registered compares still hold), so that the
// retire, which settles late in its cycle, reaches next_pc alone; `clear` in either cycle
// wins.

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

    reg  [DEPTH-1:0] at_end_c;                      // entry k's loop ends at `at`
    integer j;
    always @*
        for (j = 0; j < DEPTH; j = j + 1)
            at_end_c[j] = skip ? (ls_end[j] == at_skip) : (ls_end[j] == {1'b0, at_pc});
    reg  [DEPTH-1:0] at_end_q;
    always @(posedge clk)
        if (latch)
            at_end_q <= at_end_c;
    wire [DEPTH-1:0] at_end = (REG_RULE != 0) ? at_end_q : at_end_c;

    // at + 4 from each side and every entry's count minus one, ahead of the priority below,
    // so that no carry chain follows it
    wire [31:0]     at_pc4   = at_pc + 32'd4;
    wire [31:0]     at_skip4 = at_skip[31:0] + 32'd4;
    wire [31:0]     rem_m1 [0:DEPTH-1];
    genvar i;
    generate
        for (i = 0; i < DEPTH; i = i + 1) begin : g_rem
            assign rem_m1[i] = ls_rem[i] - 32'd1;
        end
    endgenerate

    reg  [31:0]     er_pc;
    reg  [SP_W-1:0] er_sp;
    reg             er_dec;                         // count entry er_idx down
    reg  [LS_W-1:0] er_idx;
    reg             er_stop;
    integer k;
    always @* begin
        er_pc   = skip ? at_skip4 : at_pc4;
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

    wire [31:0] er_rem = rem_m1[er_idx];
    assign next_pc = er_pc;

    // REG_RULE = 1: a retire's push or step applies a cycle later, from copies of its
    // operands taken every cycle (no enable: only the push and step flags see the retire)
    reg        step_q, push_q;
    reg [31:0] pstart_q, pcount_q;
    reg [32:0] pend_q;
    always @(posedge clk) begin
        step_q   <= rst_n & ~clear & step;
        push_q   <= rst_n & ~clear & push;
        pstart_q <= push_start;
        pcount_q <= push_count;
        pend_q   <= new_end;
    end
    wire        s_step   = (REG_RULE != 0) ? step_q   : step;
    wire        s_push   = (REG_RULE != 0) ? push_q   : push;
    wire [31:0] s_pstart = (REG_RULE != 0) ? pstart_q : push_start;
    wire [31:0] s_pcount = (REG_RULE != 0) ? pcount_q : push_count;
    wire [32:0] s_pend   = (REG_RULE != 0) ? pend_q   : new_end;
    wire unused_q = &{1'b0, at_end_q, step_q, push_q, pstart_q, pcount_q, pend_q};   // REG_RULE = 0

    always @(posedge clk) begin
        if (!rst_n || clear) begin
            sp <= {SP_W{1'b0}};
        end else if (s_push) begin
            ls_start[sp_new] <= s_pstart;
            ls_end[sp_new]   <= s_pend;
            ls_rem[sp_new]   <= s_pcount;
            sp               <= sp + 1'b1;
        end else if (s_step) begin
            sp <= er_sp;
            if (er_dec)
                ls_rem[er_idx] <= er_rem;
        end
    end

endmodule

`default_nettype wire
