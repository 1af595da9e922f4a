`default_nettype none
// dnpu_window: is an AXI4 access wholly inside one memory window that grants it
// (EXECUTION.md "Memory windows")? Combinational: one instance checks the access about to
// be issued, whichever unit issues it (the core muxes the fetch unit's line fill and
// dnpu_lsu's transfer onto it), so the cost is two 32-bit comparisons per window.
//
// The access counts in whole AXI beats, as the engines move it: from its first byte
// rounded down to a beat to its end rounded up to one. A window is [base, limit], limit
// inclusive, so one window can grant the whole 32-bit address space; a window whose perm
// lacks a needed bit (perm 0: disabled) grants nothing. An access ending past 2^32 is
// never inside.
//
// The access comes as its first and its last byte (last_x, not one past it: the callers
// keep the last byte in their registers, so that no subtractor comes ahead of the
// comparisons). SPAN > 0: the access is the aligned block of SPAN bytes (a power of two)
// at addr, and last_x is not read: its last byte is addr's with the low bits set (the
// fetch unit's line fills).
//
// first[i] is window i's half of the check that needs only the first byte and the need
// (the permission and base <= the first beat). PRE = 1 takes it from pre instead: the
// caller registered first a cycle earlier (the core's DECODE, before the access's last
// byte is known), so that only the limit's compare is left in the cycle that uses ok.

module dnpu_window #(
    parameter integer N      = 4,       // windows
    parameter integer LOG_BB = 4,       // log2 of the AXI beat's bytes
    parameter integer SPAN   = 0,       // > 0: the access is the aligned SPAN bytes at addr
    parameter integer PRE    = 0        // 1: the first-byte half from pre
) (
    input  wire [N*32-1:0] base,        // window i's first byte in bits [32i+31:32i]
    input  wire [N*32-1:0] limit,       // window i's last byte
    input  wire [N*3-1:0]  perm,        // window i's permissions (WIN_PERM's R, W, X bits)
    input  wire [31:0]     addr,        // the access's first byte
    input  wire [47:0]     last_x,      // its last byte, exact (>= addr)
    input  wire [2:0]      need,        // the permission it needs (one bit)
    input  wire [N-1:0]    pre,         // PRE = 1: first, as it was (registered by the caller)
    output reg  [N-1:0]    first,       // window i grants need and begins at or before addr's beat
    output wire            ok
);
    localparam [47:0] BEAT_M1 = (48'd1 << LOG_BB) - 48'd1;

    wire [31:0] lo   = addr & ~BEAT_M1[31:0];
    localparam integer SPAN_B  = (SPAN > (1 << LOG_BB)) ? SPAN : (1 << LOG_BB);
    localparam [31:0]  SPAN_M1 = SPAN_B - 1;
    wire [47:0] last = (SPAN > 0) ? {16'd0, addr | SPAN_M1} : (last_x | BEAT_M1);

    reg     hit;
    integer i;
    always @* begin
        hit = 1'b0;
        for (i = 0; i < N; i = i + 1) begin
            first[i] = ((perm[3*i +: 3] & need) == need) && (base[32*i +: 32] <= lo);
            if (((PRE != 0) ? pre[i] : first[i]) && (last[31:0] <= limit[32*i +: 32]))
                hit = 1'b1;
        end
    end
    if (PRE == 0) begin : g_no_pre
        wire unused_pre = &{1'b0, pre};
    end
    assign ok = hit & (last[47:32] == 16'd0);

endmodule

`default_nettype wire
