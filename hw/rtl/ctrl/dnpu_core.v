`default_nettype none
// dnpu_core: the NPU's controller. Fetch, decode, hardware loops, the scalar
// integer unit, the scalar FP unit, the int and FP SRAMs and the word
// load/store path to external memory. docs/EXECUTION.md is the specification
// and dnpu.emu the golden model: every fault must have the emulator's cause
// and PC, and retire the same instructions in the same order.
//
// ---- What runs here (this increment) ----------------------------------------
//   control     C_HALT, C_NOP, C_LOOP, C_LOOPI
//   scalar int  S_ADDI, S_LUI, S_ADD, S_SUB, S_MUL, S_MIN, S_MAX, S_SLT,
//               S_SLLI, S_SRLI, S_LD_ARG, S_LD_INT, S_ST_INT
//   FP moves    S_LI_FP, S_LD_FP, S_ST_FP, S_SEL_FP
//   scalar FP   S_ADD_FP, S_SUB_FP, S_MUL_FP, S_MAX_FP, S_EXP_FP, S_RECI_FP,
//               S_LT_FP (one shared instance of each hw/rtl/fp unit)
//   memory      H_LOAD_INT, H_STORE_INT, H_LOAD_FP, H_STORE_FP, H_PREFETCH_V,
//               H_STORE_V (vector SRAM, one instance of hw/rtl/mx/dnpu_mx_dequant)
//   vector      every V_*, S_MAP_V_FP, H_SAMPLE_FUSED and H_SAMPLE_FUSED_N, in
//               hw/rtl/vector/dnpu_vec (state VEC: EXEC makes the checks, the
//               unit does the work and pulses done with the f / x results;
//               H_SAMPLE_FUSED's rows come from the dequantizer like
//               H_PREFETCH_V's, into the unit)
//
// ---- H_SAMPLE_FUSED_N ----------------------------------------------------------
// EXEC: fmt (ILLEGAL_INSTR, with the decode), n = 0 or count = 0 retires with
// no check, MISALIGNED (position 0's stream; the stride, mx.packed_nbytes of
// n*VLEN elements, is a multiple of 64, so every position's is the same),
// SRAM_RANGE (dst + count past the int or the FP SRAM); then VEC with the
// vector unit started. In VEC the core keeps one read command per position
// going (address fn_addr, += stride each; p_beats beats) as soon as the read
// engine takes it (dnpu_axi_rd queues a command once the previous one's bursts
// are issued, so the latency is paid once) and one dequantizer command per
// position as soon as the dequantizer is idle; beats go to the dequantizer as
// for H_SAMPLE_FUSED, rows to dnpu_vec, which writes INT[dst+p] (argmax) and,
// from its own reciprocal unit, FP[dst+p] through its SRAM ports. A position
// whose stream runs past the top of the address space (found when its command
// is due: no command is issued) or whose beat comes with an AXI error (the
// engine is aborted at once) sets fn_stop at that position; the unit finishes
// and writes every position before it, then done: the instruction faults
// AXI_READ (positions >= it not written), else it retires on done.
//
// ---- Not yet in RTL: see issue 4 ---------------------------------------------
// Instructions listed here decode as ILLEGAL_INSTR (the emulator executes them);
// tools (tests/rtl/test_top.py, dnpu.proggen) read this list. It is empty:
//   (none)
//
// ---- Structure ---------------------------------------------------------------
// A multi-cycle controller (no pipeline yet): FETCH (line buffer lookup, or a
// line fill through the read engine) -> EXEC (decode and execute; most
// instructions retire here) -> FETCH. Scalar SRAM loads take one more cycle
// (LDW: synchronous-read SRAM), H_LOAD_* stream words in LOAD, H_STORE_* in
// STORE, each retiring when its transfer is complete (a store when every B
// response is in), so a fault always belongs to the instruction that caused it.
// Scalar FP arithmetic (S_ADD/SUB/MUL/MAX/EXP/RECI_FP, S_LT_FP) retires in FPU:
// EXEC registers the operands (fpu_a, fpu_b), FPU writes the unit's result (sfp_f).
// So every path through a combinational FP unit starts at a flop and ends at the
// register file (one whole unit per cycle, no register read or decode in front
// of it). S_RECI_FP starts the iterative reciprocal in EXEC (from the register
// file: the unit samples its operand) and waits in FPU for its done. SOFT_RESET
// resets the reciprocal unit too, so a new program never finds it busy.
//
// Cost: FETCH + EXEC = 2 cycles per instruction whose line is resident, 3 for
// S_LD_INT / S_LD_FP and the scalar FP ops but S_RECI_FP, which takes 28
// (FETCH, EXEC, then 26 in FPU: the reciprocal's done comes 25 edges after the
// edge that starts it); a line miss adds the memory's latency and the line's
// beats; H_LOAD_* / H_STORE_* move one 32-bit word a cycle (the int and FP
// SRAMs are 32 bits wide), a store then waits for its last B response.
//
// Vector SRAM: VEC_ROWS rows of VLEN BF16 lanes (lane i at bits 16i), one row
// per cycle, synchronous read (dnpu_sram). H_PREFETCH_V (state PREF): EXEC
// makes the emulator's checks (fmt, n = 0, MISALIGNED: address a multiple of
// max(16, beat bytes) and n*VLEN a multiple of MX_BLOCK, a stream past the top
// of the address space (AXI_READ: known from the operands, so before SRAM_RANGE,
// as EXECUTION.md and dnpu.emu say), SRAM_RANGE; an unmapped stream is found only
// by reading it (AXI_READ after the range check)), then gives the read engine exactly the
// beats the stream needs (the dequantizer's bytes_needed contract) and the
// dequantizer its command in the same cycle; beats go straight from the engine
// into the dequantizer, rows out of it into the vector SRAM, one a cycle; the
// instruction retires on the dequantizer's done. An error beat faults AXI_READ
// (rows before it may be written: unspecified); the engine is aborted and the
// dequantizer reset the cycle after (dq_flush), also on SOFT_RESET. H_STORE_V
// streams rows through STORE as BF16 words (two lanes a word, lane 0 in the
// low half), VLEN/2 words a row, one word a cycle. Every profile decodes all
// six MX formats (mx.formats), so only an fmt code past them is ILLEGAL_INSTR.
//
// Fetch: FETCH_LINES = 4 line buffers of FETCH_WORDS words, direct-mapped on
// the low two line-address bits; a miss reads the aligned line in one burst.
// Four lines keep a loop body of up to four consecutive lines resident (the
// sampling step's batch-row loop). The buffers are emptied
// at START and SOFT_RESET (the host may have written a new program), never
// otherwise: a program must not write the memory it runs from (EXECUTION.md).
// Each word keeps the error flag of the beat it came in: a read error only
// faults (AXI_READ, ERR_PC = that word's address) when the word is executed,
// so read-ahead past the end of a program is harmless.
//
// Fault priority inside one instruction (EXECUTION.md): fetch error, then
// ILLEGAL_INSTR, LOOP_OVERFLOW, MISALIGNED, SRAM_RANGE, AXI_READ/AXI_WRITE.
// A faulting instruction writes no register and does not retire. PC stays at
// the faulting (or halting) instruction, like dnpu.emu's PC.
//
// SOFT_RESET: back to idle with x/f registers, loop stack, status, cause,
// ERR_PC and PC cleared; SRAMs, arguments and counters are kept. A transfer in
// flight is aborted: the engines finish the AXI bursts already issued on their
// own (data dropped, writes with WSTRB = 0) and take the next command after.
// START together with SOFT_RESET starts after the reset.
//
// Counter strobes (to dnpu_csr), registered: instret on each retire;
// stall_fetch in cycles spent waiting for a line fill; stall_mem_rd in cycles
// an H_LOAD_* waits for read data; stall_mem_wr in cycles an H_STORE_* waits on
// the AXI write channels (AW/W not ready, or B outstanding after the data).
//
// Retire trace (registered, one cycle after the retire): PC, word, and the x
// or f register written (x0 writes are dropped, as in the emulator's trace).

`include "dnpu_isa.vh"
`include "dnpu_csr.vh"

module dnpu_core #(
    // dnpu_top passes the profile's values (hw/config/*.toml via dnpu_cfg_*.vh).
    parameter integer ADDR_W      = 32,
    parameter integer DATA_W      = 128,
    parameter integer ID_W        = 4,
    parameter integer FETCH_WORDS = 8,
    parameter integer LOOP_DEPTH  = 4,
    parameter integer INT_WORDS   = 2048,
    parameter integer FP_WORDS    = 1024,
    parameter integer VLEN        = 16,
    parameter integer LANES       = 16,
    parameter integer VEC_ROWS    = 1024,
    parameter integer MX_BLOCK    = 32
) (
    input  wire                             clk,
    input  wire                             rst_n,

    // from dnpu_csr
    input  wire                             start_i,
    input  wire                             soft_reset_i,
    input  wire [31:0]                      prog_base_i,
    input  wire [`DNPU_CSR_ARG_COUNT*32-1:0] args_i,

    // to dnpu_csr
    output wire                             busy_o,
    output reg                              done_o,
    output reg                              error_o,
    output reg  [`DNPU_ERR_W-1:0]           err_cause_o,
    output reg  [31:0]                      err_pc_o,
    output wire [31:0]                      pc_o,
    output reg                              instret_o,
    output reg                              stall_fetch_o,
    output reg                              stall_mem_rd_o,
    output reg                              stall_mem_wr_o,

    // read engine (dnpu_axi_rd)
    output wire                             rd_cmd_valid,
    input  wire                             rd_cmd_ready,
    output wire [ADDR_W-1:0]                rd_cmd_addr,
    output wire [31:0]                      rd_cmd_beats,
    output wire [ID_W-1:0]                  rd_cmd_id,
    input  wire                             rd_valid,
    input  wire [DATA_W-1:0]                rd_data,
    input  wire                             rd_err,
    input  wire                             rd_last,
    output wire                             rd_ready,
    output wire                             rd_abort,

    // write engine (dnpu_axi_wr)
    output wire                             wr_cmd_valid,
    input  wire                             wr_cmd_ready,
    output wire [ADDR_W-1:0]                wr_cmd_addr,
    output wire [31:0]                      wr_cmd_words,
    output wire [ID_W-1:0]                  wr_cmd_id,
    output wire                             wr_valid,
    output wire [31:0]                      wr_data,
    input  wire                             wr_ready,
    input  wire                             wr_done,
    input  wire                             wr_err,
    input  wire                             wr_stall,
    output wire                             wr_abort,

    // retire trace
    output reg                              retire_valid,
    output reg  [31:0]                      retire_pc,
    output reg  [31:0]                      retire_word,
    output reg                              retire_x_we,
    output reg  [3:0]                       retire_x_idx,
    output reg  [31:0]                      retire_x_data,
    output reg                              retire_f_we,
    output reg  [2:0]                       retire_f_idx,
    output wire [31:0]                      retire_f_data,
    output reg                              sram_write      // an SRAM was written the cycle before
);
    // ---- geometry ---------------------------------------------------------------
    localparam integer BB        = DATA_W / 8;            // bytes per AXI beat
    localparam integer LOG_BB    = $clog2(BB);
    localparam integer WPB       = DATA_W / 32;           // words per beat
    localparam integer LOG_WPB   = $clog2(WPB);
    localparam integer LW        = FETCH_WORDS;           // words per fetch line (power of 2)
    localparam integer LOG_LW    = $clog2(LW);
    localparam integer LOG_LB    = LOG_LW + 2;            // log2 bytes per line
    localparam integer LINE_BEATS = (4 * LW >= BB) ? (4 * LW / BB) : 1;
    localparam integer FETCH_LINES = 4;                   // see the header (a power of 2)
    localparam integer LOG_FL    = $clog2(FETCH_LINES);
    localparam integer TAG_W     = 32 - LOG_LB;
    localparam integer IAW       = $clog2(INT_WORDS);
    localparam integer FAW       = $clog2(FP_WORDS);
    localparam integer SP_W      = $clog2(LOOP_DEPTH + 1);
    localparam integer LS_W      = (LOOP_DEPTH > 1) ? $clog2(LOOP_DEPTH) : 1;  // stack index
    localparam [31:0]  INT_D32   = INT_WORDS;
    localparam [31:0]  FP_D32    = FP_WORDS;
    localparam [32:0]  INT_DEPTH = {1'b0, INT_D32};
    localparam [32:0]  FP_DEPTH  = {1'b0, FP_D32};
    localparam [31:0]  DEPTH_32  = LOOP_DEPTH;
    localparam [SP_W-1:0] DEPTH_FULL = DEPTH_32[SP_W-1:0];
    // One byte past the top of the AXI address space, in 35 bits (0 = beyond).
    localparam [34:0]  ADDR_TOP  = (ADDR_W >= 35) ? 35'd0 : (35'd1 << ADDR_W);
    // AXI IDs only label traffic (one read and one write engine, in order).
    localparam [ID_W-1:0] ID_FETCH = 0;
    localparam [ID_W-1:0] ID_DATA  = 1;

    localparam [3:0] ST_IDLE  = 4'd0,
                     ST_FETCH = 4'd1,   // look up PC in the line buffers
                     ST_FILL  = 4'd2,   // a line fill is in flight
                     ST_EXEC  = 4'd3,   // decode and execute ir
                     ST_LDW   = 4'd4,   // S_LD_INT / S_LD_FP: SRAM data arrives
                     ST_LOAD  = 4'd5,   // H_LOAD_*: words stream into an SRAM
                     ST_STORE = 4'd6,   // H_STORE_*: words stream out of an SRAM
                     ST_FPU   = 4'd7,   // scalar FP: the unit's result is written
                     ST_PREF  = 4'd8,   // H_PREFETCH_V: beats -> dequantizer -> rows
                     ST_VEC   = 4'd9;   // the vector unit works (dnpu_vec)

    reg [3:0]  state;
    reg [31:0] pc;
    reg [31:0] ir;
    reg        ir_err;                  // ir came in an AXI error beat

    assign busy_o = (state != ST_IDLE);
    assign pc_o   = pc;

    // ---- registers ----------------------------------------------------------------
    reg [31:0] xr [0:15];                // xr[0] is never written: x0 reads 0
    reg [31:0] fr [0:7];

    // ---- loop stack (EXECUTION.md "Hardware loops") ---------------------------------
    // Entry k: start PC, end (address of the body's last instruction, 33 bits so a
    // body running past 2^32 compares like the emulator's unbounded integers) and
    // the iterations still to run including the current one.
    reg [31:0]     ls_start [0:LOOP_DEPTH-1];
    reg [32:0]     ls_end   [0:LOOP_DEPTH-1];
    reg [31:0]     ls_rem   [0:LOOP_DEPTH-1];
    reg [SP_W-1:0] sp;                  // entries in use

    // ---- fetch line buffers ------------------------------------------------------
    reg [31:0]             lbuf  [0:FETCH_LINES*LW-1];
    reg [FETCH_LINES*LW-1:0] lerr;
    reg [TAG_W-1:0]        ltag  [0:FETCH_LINES-1];
    reg [FETCH_LINES-1:0]  lval;

    wire [TAG_W-1:0]  pc_tag  = pc[31:LOG_LB];
    wire [LOG_FL-1:0] pc_slot = pc[LOG_LB +: LOG_FL];
    wire [LOG_LW-1:0] pc_word = pc[LOG_LB-1:2];
    wire              hit     = lval[pc_slot] & (ltag[pc_slot] == pc_tag);
    wire [LOG_FL+LOG_LW-1:0] hit_idx = {pc_slot, pc_word};

    reg  [31:0]       fill_idx;        // beat of the line being filled
    // Word offset of the line in its first beat: 0 when a line is one beat or
    // more, else where the line sits in the (wider) beat.
    localparam [31:0] WPB_M1 = WPB - 1;
    wire [31:0] line_addr  = {pc_tag, {LOG_LB{1'b0}}};
    wire [31:0] line_lane0 = (line_addr >> 2) & WPB_M1;
    // Which line words the current fill beat carries, and their data.
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
            fill_wd[32*w +: 32] = rd_data[{fill_pos[LOG_WPB-1:0], 5'd0} +: 32];
        end
    end

    // ---- decode --------------------------------------------------------------------
    wire [6:0]  op     = ir[`DNPU_F_OPCODE_LSB +: `DNPU_F_OPCODE_W];
    wire [3:0]  f_rd   = ir[`DNPU_F_RD_LSB  +: `DNPU_F_RD_W];
    wire [3:0]  f_rs1  = ir[`DNPU_F_RS1_LSB +: `DNPU_F_RS1_W];
    wire [3:0]  f_rs2  = ir[`DNPU_F_RS2_LSB +: `DNPU_F_RS2_W];
    wire [3:0]  f_rs3  = ir[`DNPU_F_RS3_LSB +: `DNPU_F_RS3_W];
    wire [31:0] imm17  = {{(32-`DNPU_F_IMM17_W){ir[`DNPU_F_IMM17_LSB + `DNPU_F_IMM17_W - 1]}},
                          ir[`DNPU_F_IMM17_LSB +: `DNPU_F_IMM17_W]};
    wire [31:0] imm21  = {{(32-`DNPU_F_IMM21_W){1'b0}}, ir[`DNPU_F_IMM21_LSB +: `DNPU_F_IMM21_W]};
    wire [15:0] imm16  = ir[`DNPU_F_IMM16_LSB +: `DNPU_F_IMM16_W];
    wire [4:0]  shamt  = ir[`DNPU_F_SHAMT_LSB +: `DNPU_F_SHAMT_W];
    wire [2:0]  argi   = ir[`DNPU_F_ARGI_LSB +: `DNPU_F_ARGI_W];
    wire [31:0] cnt15  = {{(32-`DNPU_F_COUNT_W){1'b0}}, ir[`DNPU_F_COUNT_LSB +: `DNPU_F_COUNT_W]};
    wire [9:0]  len10  = ir[`DNPU_F_LEN_LSB +: `DNPU_F_LEN_W];

    // Bits the instruction may set; 0 = not an instruction of this RTL.
    function [31:0] used_mask;
        input [6:0] opc;
        begin
            case (opc)
                `DNPU_OP_C_HALT:      used_mask = `DNPU_USED_C_HALT;
                `DNPU_OP_C_NOP:       used_mask = `DNPU_USED_C_NOP;
                `DNPU_OP_C_LOOP:      used_mask = `DNPU_USED_C_LOOP;
                `DNPU_OP_C_LOOPI:     used_mask = `DNPU_USED_C_LOOPI;
                `DNPU_OP_S_ADDI:      used_mask = `DNPU_USED_S_ADDI;
                `DNPU_OP_S_LUI:       used_mask = `DNPU_USED_S_LUI;
                `DNPU_OP_S_ADD:       used_mask = `DNPU_USED_S_ADD;
                `DNPU_OP_S_SUB:       used_mask = `DNPU_USED_S_SUB;
                `DNPU_OP_S_MUL:       used_mask = `DNPU_USED_S_MUL;
                `DNPU_OP_S_MIN:       used_mask = `DNPU_USED_S_MIN;
                `DNPU_OP_S_MAX:       used_mask = `DNPU_USED_S_MAX;
                `DNPU_OP_S_SLT:       used_mask = `DNPU_USED_S_SLT;
                `DNPU_OP_S_SLLI:      used_mask = `DNPU_USED_S_SLLI;
                `DNPU_OP_S_SRLI:      used_mask = `DNPU_USED_S_SRLI;
                `DNPU_OP_S_LD_ARG:    used_mask = `DNPU_USED_S_LD_ARG;
                `DNPU_OP_S_LD_INT:    used_mask = `DNPU_USED_S_LD_INT;
                `DNPU_OP_S_ST_INT:    used_mask = `DNPU_USED_S_ST_INT;
                `DNPU_OP_S_LI_FP:     used_mask = `DNPU_USED_S_LI_FP;
                `DNPU_OP_S_LD_FP:     used_mask = `DNPU_USED_S_LD_FP;
                `DNPU_OP_S_ST_FP:     used_mask = `DNPU_USED_S_ST_FP;
                `DNPU_OP_S_SEL_FP:    used_mask = `DNPU_USED_S_SEL_FP;
                `DNPU_OP_S_ADD_FP:    used_mask = `DNPU_USED_S_ADD_FP;
                `DNPU_OP_S_SUB_FP:    used_mask = `DNPU_USED_S_SUB_FP;
                `DNPU_OP_S_MUL_FP:    used_mask = `DNPU_USED_S_MUL_FP;
                `DNPU_OP_S_MAX_FP:    used_mask = `DNPU_USED_S_MAX_FP;
                `DNPU_OP_S_EXP_FP:    used_mask = `DNPU_USED_S_EXP_FP;
                `DNPU_OP_S_RECI_FP:   used_mask = `DNPU_USED_S_RECI_FP;
                `DNPU_OP_S_LT_FP:     used_mask = `DNPU_USED_S_LT_FP;
                `DNPU_OP_H_LOAD_INT:  used_mask = `DNPU_USED_H_LOAD_INT;
                `DNPU_OP_H_STORE_INT: used_mask = `DNPU_USED_H_STORE_INT;
                `DNPU_OP_H_LOAD_FP:   used_mask = `DNPU_USED_H_LOAD_FP;
                `DNPU_OP_H_STORE_FP:  used_mask = `DNPU_USED_H_STORE_FP;
                `DNPU_OP_H_PREFETCH_V: used_mask = `DNPU_USED_H_PREFETCH_V;
                `DNPU_OP_H_STORE_V:   used_mask = `DNPU_USED_H_STORE_V;
                `DNPU_OP_H_SAMPLE_FUSED: used_mask = `DNPU_USED_H_SAMPLE_FUSED;
                `DNPU_OP_H_SAMPLE_FUSED_N: used_mask = `DNPU_USED_H_SAMPLE_FUSED_N;
                `DNPU_OP_S_MAP_V_FP:  used_mask = `DNPU_USED_S_MAP_V_FP;
                `DNPU_OP_V_ADD_VV:    used_mask = `DNPU_USED_V_ADD_VV;
                `DNPU_OP_V_SUB_VV:    used_mask = `DNPU_USED_V_SUB_VV;
                `DNPU_OP_V_MUL_VV:    used_mask = `DNPU_USED_V_MUL_VV;
                `DNPU_OP_V_ADD_VF:    used_mask = `DNPU_USED_V_ADD_VF;
                `DNPU_OP_V_SUB_VF:    used_mask = `DNPU_USED_V_SUB_VF;
                `DNPU_OP_V_MUL_VF:    used_mask = `DNPU_USED_V_MUL_VF;
                `DNPU_OP_V_EXP_V:     used_mask = `DNPU_USED_V_EXP_V;
                `DNPU_OP_V_FILL_VF:   used_mask = `DNPU_USED_V_FILL_VF;
                `DNPU_OP_V_RED_MAX:   used_mask = `DNPU_USED_V_RED_MAX;
                `DNPU_OP_V_RED_SUM:   used_mask = `DNPU_USED_V_RED_SUM;
                `DNPU_OP_V_RED_MAX_IDX: used_mask = `DNPU_USED_V_RED_MAX_IDX;
                `DNPU_OP_V_TOPK_MASK: used_mask = `DNPU_USED_V_TOPK_MASK;
                `DNPU_OP_V_TOPK_MASK_V: used_mask = `DNPU_USED_V_TOPK_MASK_V;
                `DNPU_OP_V_THRESH_MASK: used_mask = `DNPU_USED_V_THRESH_MASK;
                `DNPU_OP_V_SELECT_INT: used_mask = `DNPU_USED_V_SELECT_INT;
                `DNPU_OP_V_MASK_FP:   used_mask = `DNPU_USED_V_MASK_FP;
                default:              used_mask = 32'd0;
            endcase
        end
    endfunction

    wire [31:0] used    = used_mask(op);
    wire [2:0]  mxfmt   = ir[`DNPU_F_FMT_LSB +: `DNPU_F_FMT_W];
    localparam [3:0] MXFMT_N = `DNPU_MXFMT_COUNT;
    wire        is_fused = (op == `DNPU_OP_H_SAMPLE_FUSED);
    wire        is_fn    = (op == `DNPU_OP_H_SAMPLE_FUSED_N);
    wire        bad_fmt = ((op == `DNPU_OP_H_PREFETCH_V) | is_fused | is_fn) & ({1'b0, mxfmt} >= MXFMT_N);
    wire        illegal = (used == 32'd0) | ((ir & ~used) != 32'd0) | bad_fmt;

    // ---- operands ------------------------------------------------------------------
    // Register reads are plain array selects, not a function: a function that reads
    // module state in a continuous assignment is not re-evaluated by every
    // simulator when that state changes (Icarus is not).
    wire [31:0] xa = (f_rs1 == 4'd0) ? 32'd0 : xr[f_rs1];
    wire [31:0] xb = (f_rs2 == 4'd0) ? 32'd0 : xr[f_rs2];
    wire [31:0] xc = (f_rs3 == 4'd0) ? 32'd0 : xr[f_rs3];
    wire [31:0] xd = (f_rd  == 4'd0) ? 32'd0 : xr[f_rd];   // rd as a source: stores, SRAM bases
    wire [31:0] fa = fr[f_rs1[2:0]];
    wire [31:0] fb = fr[f_rs2[2:0]];
    wire [31:0] fd = fr[f_rd[2:0]];

    wire        lt_s   = $signed(xa) < $signed(xb);
    wire [31:0] prod   = xa * xb;         // the low 32 bits are all S_MUL keeps
    wire [31:0] saddr  = xa + imm17;      // S_LD/S_ST word address, mod 2^32
    wire        int_in = ({1'b0, saddr} < INT_DEPTH);
    wire        fp_in  = ({1'b0, saddr} < FP_DEPTH);

    // H_LOAD_* / H_STORE_*: SRAM base in rd, byte address in rs1, count in rs2.
    wire        h_is_fp  = (op == `DNPU_OP_H_LOAD_FP) | (op == `DNPU_OP_H_STORE_FP);
    wire        h_n0     = (xb == 32'd0);
    wire        h_misal  = (xa[1:0] != 2'b00);
    wire [32:0] h_end    = {1'b0, xd} + {1'b0, xb};
    wire        h_range  = h_end > (h_is_fp ? FP_DEPTH : INT_DEPTH);
    wire [34:0] h_top    = {3'b000, xa} + {1'b0, xb, 2'b00};
    // A range running past the top of the address space would wrap on the bus;
    // no slave answers it, so it faults like an unmapped range (the emulator's
    // memory ends there too), without a transaction.
    wire        h_past   = (ADDR_TOP != 35'd0) & (h_top > ADDR_TOP);
    wire [31:0] h_lane0  = {{(32-LOG_WPB){1'b0}}, xa[LOG_BB-1:2]};
    wire [31:0] h_beats  = ((h_lane0 + xb - 32'd1) >> LOG_WPB) + 32'd1;

    // H_PREFETCH_V / H_STORE_V: vector SRAM row base in rd, byte address in rs1,
    // rows in rs2. Sizes below are used only once the range check passed
    // (n <= VEC_ROWS), so 48 bits never overflow.
    localparam integer VAW     = $clog2(VEC_ROWS);
    localparam integer LOG_VL  = $clog2(VLEN);
    localparam [31:0]  VR_32   = VEC_ROWS;
    localparam [32:0]  VR_DEPTH = {1'b0, VR_32};
    localparam integer MXA     = (BB > 16) ? BB : 16;      // stream alignment, bytes
    localparam integer LOG_MXA = $clog2(MXA);
    localparam integer LOG_BLK = $clog2(MX_BLOCK);
    // n*VLEN a multiple of the block: n a multiple of BLOCK/VLEN when VLEN < BLOCK.
    localparam integer RALN    = (VLEN < MX_BLOCK) ? (LOG_BLK - LOG_VL) : 0;
    localparam [31:0]  RALN_M  = (32'd1 << RALN) - 32'd1;
    wire        v_range  = h_end > VR_DEPTH;
    wire        p_misal  = (xa[LOG_MXA-1:0] != {LOG_MXA{1'b0}}) | ((xb & RALN_M) != 32'd0);
    wire [47:0] p_elems  = {16'd0, xb} << LOG_VL;            // n*VLEN
    wire [47:0] p_blocks = p_elems >> LOG_BLK;
    wire [47:0] p_hdr    = ((p_blocks + 48'd15) >> 4) << 4;  // 16 bytes per (partial) group
    reg  [47:0] p_code;                                      // code bytes
    always @* begin
        case (mxfmt)
            `DNPU_MXFMT_E3M2, `DNPU_MXFMT_E2M3: p_code = (p_elems * 48'd3) >> 2;
            `DNPU_MXFMT_E2M1:                   p_code = p_elems >> 1;
            default:                            p_code = p_elems;
        endcase
    end
    wire [47:0] p_bytes  = p_hdr + p_code;
    // H_SAMPLE_FUSED_N's position stride: mx.packed_nbytes(n*VLEN) = whole groups
    // (p_hdr/16 of them, 16*MX_BLOCK elements each) rounded up to 64 bytes.
    wire [47:0] g_elems  = p_hdr << LOG_BLK;                 // elements of the whole groups
    reg  [47:0] g_code;
    always @* begin
        case (mxfmt)
            `DNPU_MXFMT_E3M2, `DNPU_MXFMT_E2M3: g_code = (g_elems * 48'd3) >> 2;
            `DNPU_MXFMT_E2M1:                   g_code = g_elems >> 1;
            default:                            g_code = g_elems;
        endcase
    end
    wire [47:0] fn_stride_c = ((p_hdr + g_code + 48'd63) >> 6) << 6;
    localparam [31:0]  BB_M1   = BB - 1;
    wire [47:0] p_beats  = (p_bytes + {16'd0, BB_M1}) >> LOG_BB;
    wire [47:0] p_top    = {16'd0, xa} + (p_beats << LOG_BB);
    wire        p_past   = (ADDR_TOP != 35'd0) & (p_top > {13'd0, ADDR_TOP});
    wire [47:0] sv_top   = {16'd0, xa} + (p_elems << 1);     // H_STORE_V: 2 bytes a lane
    wire        sv_past  = (ADDR_TOP != 35'd0) & (sv_top > {13'd0, ADDR_TOP});
    wire [31:0] sv_words = p_elems[32:1];                    // n*VLEN/2

    // Vector-unit instructions (dnpu_vec): n is rs3, but rs2 for S_MAP_V_FP;
    // each base + count must fit its SRAM (dnpu.emu's order; one cause).
    localparam [31:0] VL_M1 = VLEN - 1;
    wire        op_map   = (op == `DNPU_OP_S_MAP_V_FP);
    wire [31:0] vn       = op_map ? xb : xc;
    wire        vn0      = (vn == 32'd0);
    wire [32:0] vrows    = ({1'b0, vn} + {1'b0, VL_M1}) >> LOG_VL;   // ceil(n / VLEN)
    function out_of;                                    // base + count > depth
        input [31:0] base;
        input [32:0] count;
        input [32:0] depth;
        begin
            out_of = ({2'b00, base} + {1'b0, count}) > {1'b0, depth};
        end
    endfunction
    wire [32:0] vn33     = {1'b0, vn};
    reg         v_bad;                                   // SRAM_RANGE
    reg         v_op;                                    // a dnpu_vec instruction (not fused)
    always @* begin
        v_op  = 1'b1;
        v_bad = 1'b0;
        case (op)
            `DNPU_OP_V_ADD_VV, `DNPU_OP_V_SUB_VV, `DNPU_OP_V_MUL_VV:
                v_bad = out_of(xa, vn33, VR_DEPTH) | out_of(xb, vn33, VR_DEPTH) | out_of(xd, vn33, VR_DEPTH);
            `DNPU_OP_V_ADD_VF, `DNPU_OP_V_SUB_VF, `DNPU_OP_V_MUL_VF, `DNPU_OP_V_EXP_V:
                v_bad = out_of(xa, vn33, VR_DEPTH) | out_of(xd, vn33, VR_DEPTH);
            `DNPU_OP_V_FILL_VF:
                v_bad = out_of(xd, vn33, VR_DEPTH);
            `DNPU_OP_V_RED_MAX, `DNPU_OP_V_RED_SUM, `DNPU_OP_V_RED_MAX_IDX:
                v_bad = out_of(xa, vn33, VR_DEPTH);
            `DNPU_OP_V_TOPK_MASK, `DNPU_OP_V_THRESH_MASK:
                v_bad = out_of(xa, vn33, FP_DEPTH) | out_of(xd, vn33, INT_DEPTH);
            `DNPU_OP_V_TOPK_MASK_V:
                v_bad = out_of(xa, vrows, VR_DEPTH) | out_of(xd, vn33, INT_DEPTH);
            `DNPU_OP_V_SELECT_INT:
                v_bad = out_of(xa, vn33, INT_DEPTH) | out_of(xb, vn33, INT_DEPTH) | out_of(xd, vn33, INT_DEPTH);
            `DNPU_OP_S_MAP_V_FP:
                v_bad = out_of(xa, vn33, FP_DEPTH) | out_of(xd, vrows, VR_DEPTH);
            `DNPU_OP_V_MASK_FP:
                v_bad = out_of(xd, vn33, FP_DEPTH) | out_of(xa, vn33, INT_DEPTH);
            default: v_op = 1'b0;
        endcase
    end

    // ---- loops ---------------------------------------------------------------------
    wire        is_loop   = (op == `DNPU_OP_C_LOOP) | (op == `DNPU_OP_C_LOOPI);
    wire [31:0] loop_cnt  = (op == `DNPU_OP_C_LOOP) ? xa : cnt15;
    wire [32:0] loop_end  = {1'b0, pc} + {21'd0, len10, 2'b00};
    wire [LS_W-1:0] sp_top = sp[LS_W-1:0] - 1'b1;  // innermost entry (used when sp != 0)
    wire [LS_W-1:0] sp_new = sp[LS_W-1:0];  // the entry a push fills (sp < LOOP_DEPTH)
    wire        loop_len0 = (len10 == 10'd0);
    wire        loop_out  = (sp != {SP_W{1'b0}}) & (loop_end > ls_end[sp_top]);
    wire        loop_skip = (loop_cnt == 32'd0);
    wire        loop_full = (sp == DEPTH_FULL);

    // End rule: after the instruction at e retires (or a count-0 body ending at
    // e is skipped), close loops ending at e innermost first. Ends nest, so the
    // loops that end at e are the top entries of the stack.
    wire [32:0] er_e = (state == ST_EXEC && is_loop) ? loop_end : {1'b0, pc};
    reg  [31:0]     er_next;
    reg  [SP_W-1:0] er_sp;
    reg             er_dec;           // decrement entry er_idx
    reg  [LS_W-1:0] er_idx;
    reg             er_stop;
    integer k;
    always @* begin
        er_next = er_e[31:0] + 32'd4;
        er_sp   = sp;
        er_dec  = 1'b0;
        er_idx  = {LS_W{1'b0}};
        er_stop = 1'b0;
        for (k = LOOP_DEPTH - 1; k >= 0; k = k - 1) begin
            if (!er_stop && k < sp) begin
                if (ls_end[k] != er_e) begin
                    er_stop = 1'b1;
                end else if (ls_rem[k] > 32'd1) begin
                    er_next = ls_start[k];
                    er_sp   = k[SP_W-1:0] + 1'b1;
                    er_dec  = 1'b1;
                    er_idx  = k[LS_W-1:0];
                    er_stop = 1'b1;
                end else begin
                    er_sp   = k[SP_W-1:0];                  // popped
                end
            end
        end
    end

    // ---- SRAMs ---------------------------------------------------------------------
    reg              int_we, fp_we, int_re, fp_re;
    reg  [IAW-1:0]   int_waddr, int_raddr;
    reg  [FAW-1:0]   fp_waddr, fp_raddr;
    reg  [31:0]      sram_wdata;
    wire [31:0]      int_rdata, fp_rdata;

    dnpu_sram #(.WIDTH(32), .DEPTH(INT_WORDS)) u_int_sram (
        .clk(clk), .we(int_we), .waddr(int_waddr), .wdata(sram_wdata),
        .re(int_re), .raddr(int_raddr), .rdata(int_rdata));

    // The FP SRAM has its own write data in VEC: H_SAMPLE_FUSED_N may write an
    // int word and an FP word in the same cycle.
    wire [31:0]      fp_wdata;

    dnpu_sram #(.WIDTH(32), .DEPTH(FP_WORDS)) u_fp_sram (
        .clk(clk), .we(fp_we), .waddr(fp_waddr), .wdata(fp_wdata),
        .re(fp_re), .raddr(fp_raddr), .rdata(fp_rdata));

    // ---- word load/store streams -------------------------------------------------
    reg  [31:0] mo_base;               // SRAM word (vector: row) address of the range
    reg  [31:0] mo_n;                  // words (vector: rows)
    reg  [31:0] mo_cnt;                // words / rows written (LOAD, PREF) or read (STORE)
    reg         mo_fp;                 // FP SRAM, else int SRAM
    reg         mo_vec;                // H_STORE_V: vector SRAM rows
    reg         st_hold;               // the SRAM read register holds an unsent word
    reg  [LOG_VL-2:0] vst_w;           // H_STORE_V: word of the held row sent next

    // ---- vector SRAM and the MX dequantizer ------------------------------------------
    reg                  vec_we, vec_re;
    reg  [VAW-1:0]       vec_waddr, vec_raddr;
    wire [VLEN*16-1:0]   vec_rdata;
    wire [VLEN*16-1:0]   dq_row;
    wire                 dq_row_valid, dq_s_ready, dq_done, dq_cmd_ready, dq_cmd_error;
    wire                 dq_cmd_valid;
    reg                  dq_flush;     // reset the dequantizer (after a fault / SOFT_RESET)
    // The dequantizer streams for H_PREFETCH_V (rows to the vector SRAM) and for
    // H_SAMPLE_FUSED (rows to dnpu_vec).
    wire                 in_fn     = (state == ST_VEC) & is_fn;
    wire                 in_fuse   = (state == ST_VEC) & (is_fused | is_fn);
    wire                 dq_stream = (state == ST_PREF) | in_fuse;

    reg  [VLEN*16-1:0]   vec_wdata;

    dnpu_sram #(.WIDTH(VLEN * 16), .DEPTH(VEC_ROWS)) u_vec_sram (
        .clk(clk), .we(vec_we), .waddr(vec_waddr), .wdata(vec_wdata),
        .re(vec_re), .raddr(vec_raddr), .rdata(vec_rdata));

    // ---- vector unit ------------------------------------------------------------------
    // Started from EXEC with the operand registers; owns the SRAM ports in VEC.
    // Reset with the dequantizer after a fault, and by SOFT_RESET at once.
    wire                 vu_done, vu_dq_ready;
    wire [31:0]          vu_res_f, vu_res_x;
    wire                 vu_vs_re, vu_vs_we, vu_is_re, vu_is_we, vu_fs_re;
    wire [VAW-1:0]       vu_vs_raddr, vu_vs_waddr;
    wire [VLEN*16-1:0]   vu_vs_wdata;
    wire [IAW-1:0]       vu_is_raddr, vu_is_waddr;
    wire [31:0]          vu_is_wdata;
    wire [FAW-1:0]       vu_fs_raddr;
    wire                 vu_fs_we;
    wire [FAW-1:0]       vu_fs_waddr;
    wire [31:0]          vu_fs_wdata;
    wire                 vu_start;

    // ---- H_SAMPLE_FUSED_N's stream sequencing (state VEC) ---------------------------
    // One read command and one dequantizer command per position, each issued as
    // soon as its engine takes it (the read engine queues a command once the
    // previous one's bursts are all issued), so positions stream back to back.
    reg  [47:0] fn_addr;               // next position's stream address
    reg  [47:0] fn_stride, fn_span, fn_pbeats;
    reg  [31:0] fn_rq, fn_dq;          // next position to read / to dequantize
    reg  [31:0] fn_bpos, fn_bcnt;      // position and beat of the next beat delivered
    reg         fn_stop;               // position fn_stop_pos faulted AXI_READ
    reg  [31:0] fn_stop_pos;
    wire        fn_more   = in_fn & (fn_rq != xc) & ~fn_stop;
    wire        fn_past   = fn_more & (ADDR_TOP != 35'd0) & ((fn_addr + fn_span) > {13'd0, ADDR_TOP});
    wire        fn_err    = in_fn & rd_valid & rd_err;      // an error beat of position fn_bpos
    wire        fn_rd     = fn_more & ~fn_past & ~fn_err & ~soft_reset_i;
    wire        fn_dqv    = in_fn & (fn_dq != xc) & ~(fn_stop & (fn_dq >= fn_stop_pos)) & ~soft_reset_i;

    dnpu_vec #(.VLEN(VLEN), .LANES(LANES), .VEC_ROWS(VEC_ROWS), .INT_WORDS(INT_WORDS),
               .FP_WORDS(FP_WORDS)) u_vec (
        .clk(clk), .rst_n(rst_n & ~soft_reset_i & ~dq_flush),
        .start(vu_start), .op(op), .a_rd(xd), .a_rs1(xa), .a_rs2(xb), .a_rs3(xc), .f_s(fb),
        .done(vu_done), .res_f(vu_res_f), .res_x(vu_res_x),
        .vs_re(vu_vs_re), .vs_raddr(vu_vs_raddr), .vs_rdata(vec_rdata),
        .vs_we(vu_vs_we), .vs_waddr(vu_vs_waddr), .vs_wdata(vu_vs_wdata),
        .is_re(vu_is_re), .is_raddr(vu_is_raddr), .is_rdata(int_rdata),
        .is_we(vu_is_we), .is_waddr(vu_is_waddr), .is_wdata(vu_is_wdata),
        .fs_re(vu_fs_re), .fs_raddr(vu_fs_raddr), .fs_rdata(fp_rdata),
        .fs_we(vu_fs_we), .fs_waddr(vu_fs_waddr), .fs_wdata(vu_fs_wdata),
        .dq_valid(dq_row_valid & in_fuse), .dq_row(dq_row), .dq_ready(vu_dq_ready),
        .stop(fn_stop), .stop_pos(fn_stop_pos));

    dnpu_mx_dequant #(.DATA_W(DATA_W), .VLEN(VLEN), .BLOCK(MX_BLOCK)) u_mx (
        .clk(clk), .rst_n(rst_n & ~dq_flush),
        .cmd_valid(dq_cmd_valid), .cmd_ready(dq_cmd_ready), .cmd_fmt(mxfmt),
        .cmd_rows(xb[23:0]), .cmd_error(dq_cmd_error),
        .s_data(rd_data), .s_valid(rd_valid & ~rd_err & dq_stream),
        .s_ready(dq_s_ready),
        .m_data(dq_row), .m_valid(dq_row_valid), .m_ready(~in_fuse | vu_dq_ready),
        .done(dq_done));

    wire        up_valid, up_err, up_s_ready;
    wire [31:0] up_data;
    wire        up_start;

    dnpu_beat_unpack #(.DATA_W(DATA_W)) u_unpack (
        .clk(clk), .rst_n(rst_n),
        .start(up_start), .start_lane(xa[LOG_BB-1:2]), .start_words(xb),
        .flush(rd_abort),
        .s_valid(rd_valid & (state == ST_LOAD)), .s_data(rd_data), .s_err(rd_err),
        .s_ready(up_s_ready),
        .m_valid(up_valid), .m_data(up_data), .m_err(up_err), .m_ready(1'b1));

    wire        st_rd_more = (mo_cnt != mo_n);
    wire        wr_hs      = wr_valid & wr_ready;
    localparam [31:0] VW_LAST = VLEN / 2 - 1;
    wire        st_wlast   = ~mo_vec | (vst_w == VW_LAST[LOG_VL-2:0]);   // last word of the held item
    wire        st_re      = (state == ST_STORE) & st_rd_more & (~st_hold | (wr_hs & st_wlast));

    assign wr_valid = (state == ST_STORE) & st_hold;
    assign wr_data  = mo_vec ? vec_rdata[{vst_w, 5'd0} +: 32] : (mo_fp ? fp_rdata : int_rdata);

    // ---- scalar FP unit ------------------------------------------------------------
    // fpu_a / fpu_b are loaded in EXEC of a scalar FP op and hold through FPU (ir holds
    // too, so the op decodes from it). The result is sfp_f of them, called where FPU
    // writes the register (and the trace): one adder, multiplier, EXP and comparator in
    // synthesis; in Verilator evaluated only in that cycle (see dnpu_fp_funcs.vh).
    wire        op_add  = (op == `DNPU_OP_S_ADD_FP);
    wire        op_sub  = (op == `DNPU_OP_S_SUB_FP);
    wire        op_mul  = (op == `DNPU_OP_S_MUL_FP);
    wire        op_max  = (op == `DNPU_OP_S_MAX_FP);
    wire        op_exp  = (op == `DNPU_OP_S_EXP_FP);
    wire        op_reci = (op == `DNPU_OP_S_RECI_FP);
    wire        op_lt   = (op == `DNPU_OP_S_LT_FP);
    wire        is_fpu  = op_add | op_sub | op_mul | op_max | op_exp | op_reci | op_lt;

    reg  [31:0] fpu_a, fpu_b;
    wire [31:0] reci_y;
    wire        b_gt_a, cmp_eq, reci_busy, reci_done;
    wire        reci_start;

    // gt(b, a): S_LT_FP is a < b = gt(b, a).
    dnpu_fp_cmp   u_fp_cmp (.a(fpu_b), .b(fpu_a), .gt(b_gt_a), .eq(cmp_eq));
    // SOFT_RESET aborts a reciprocal in flight (the unit's reset is synchronous), so
    // the next S_RECI_FP finds it idle.
    dnpu_fp32_reci u_fp_reci (.clk(clk), .rst_n(rst_n & ~soft_reset_i), .start(reci_start),
                              .x(fa), .busy(reci_busy), .done(reci_done), .y(reci_y));

`include "dnpu_fp_funcs.vh"

    // The f register result of a scalar FP op in FPU. S_MAX_FP: b if b > a (ties: -0 vs
    // +0, equal values, two NaNs keep rs1), as the chosen operand's DAZ-read value
    // (NUMERICS section 5: a subnormal is a zero of its sign, a NaN the canonical NaN).
    // (Lint: fp_cmp_f's eq is not needed here.)
    /* verilator lint_off UNUSEDSIGNAL */
    function [31:0] sfp_f;
        input [6:0]  sf_op;
        input [31:0] sf_a, sf_b, sf_reci;
        reg   [1:0]  sf_c;
        reg   [31:0] sf_m;
        begin
            case (sf_op)
                `DNPU_OP_S_MUL_FP:  sfp_f = fp_mul_f(sf_a, sf_b, 1'b0);
                `DNPU_OP_S_EXP_FP:  sfp_f = fp_exp_f(sf_a);
                `DNPU_OP_S_RECI_FP: sfp_f = sf_reci;
                `DNPU_OP_S_MAX_FP: begin
                    sf_c = fp_cmp_f(sf_b, sf_a);
                    sf_m = sf_c[1] ? sf_b : sf_a;
                    if ((&sf_m[30:23]) & (|sf_m[22:0]))
                        sfp_f = 32'h7FC0_0000;
                    else if (~(|sf_m[30:23]))
                        sfp_f = {sf_m[31], 31'd0};
                    else
                        sfp_f = sf_m;
                end
                default:            sfp_f = fp_add_f(sf_a, sf_b, sf_op == `DNPU_OP_S_SUB_FP, 1'b0);
            endcase
        end
    endfunction
    /* verilator lint_on UNUSEDSIGNAL */

    // ---- execute -------------------------------------------------------------------
    // Everything an instruction does in its last cycle, as next-state values.
    reg        x_fault;
    reg [`DNPU_ERR_W-1:0] x_cause;
    reg        x_retire;               // retires this cycle
    reg        x_halt;
    reg        x_push;                 // a loop is pushed (next PC = pc + 4)
    reg        x_xwe;
    reg [31:0] x_xdata;
    reg        x_fwe;
    reg [31:0] x_fdata;
    reg        x_ldw;                  // go to LDW
    reg        x_fpu;                  // go to FPU (scalar FP arithmetic)
    reg        x_rd_cmd, x_wr_cmd;     // H_LOAD / H_STORE transfer command
    reg        x_load;                 // ... taken: go to LOAD
    reg        x_pref;                 // H_PREFETCH_V / H_SAMPLE_FUSED stream taken
    reg        x_vec;                  // dnpu_vec starts: go to VEC

    assign up_start   = (state == ST_EXEC) & ~soft_reset_i & x_load;
    assign dq_cmd_valid = ((state == ST_EXEC) & ~soft_reset_i & x_pref) | fn_dqv;
    assign reci_start = (state == ST_EXEC) & ~soft_reset_i & x_fpu & op_reci;
    assign vu_start   = (state == ST_EXEC) & ~soft_reset_i & x_vec;

    always @* begin
        x_fault  = 1'b0;
        x_cause  = `DNPU_ERR_NONE;
        x_retire = 1'b0;
        x_halt   = 1'b0;
        x_push   = 1'b0;
        x_xwe    = 1'b0;
        x_xdata  = 32'd0;
        x_fwe    = 1'b0;
        x_fdata  = 32'd0;
        x_ldw    = 1'b0;
        x_fpu    = 1'b0;
        x_rd_cmd = 1'b0;
        x_wr_cmd = 1'b0;
        x_load   = 1'b0;
        x_pref   = 1'b0;
        x_vec    = 1'b0;
        if (ir_err) begin
            x_fault = 1'b1;
            x_cause = `DNPU_ERR_AXI_READ;
        end else if (illegal) begin
            x_fault = 1'b1;
            x_cause = `DNPU_ERR_ILLEGAL_INSTR;
        end else begin
            case (op)
                `DNPU_OP_C_HALT: begin
                    x_retire = 1'b1;
                    x_halt   = 1'b1;
                end
                `DNPU_OP_C_LOOP, `DNPU_OP_C_LOOPI: begin
                    if (loop_len0 | loop_out) begin
                        x_fault = 1'b1;
                        x_cause = `DNPU_ERR_LOOP_OVERFLOW;
                    end else if (loop_skip) begin
                        x_retire = 1'b1;              // the end rule at loop_end
                    end else if (loop_full) begin
                        x_fault = 1'b1;
                        x_cause = `DNPU_ERR_LOOP_OVERFLOW;
                    end else begin
                        x_retire = 1'b1;
                        x_push   = 1'b1;
                    end
                end
                `DNPU_OP_S_ADDI:   begin x_retire = 1'b1; x_xwe = 1'b1; x_xdata = xa + imm17; end
                `DNPU_OP_S_LUI:    begin x_retire = 1'b1; x_xwe = 1'b1;
                                         x_xdata = imm21 << `DNPU_F_IMM21_LSB; end
                `DNPU_OP_S_ADD:    begin x_retire = 1'b1; x_xwe = 1'b1; x_xdata = xa + xb; end
                `DNPU_OP_S_SUB:    begin x_retire = 1'b1; x_xwe = 1'b1; x_xdata = xa - xb; end
                `DNPU_OP_S_MUL:    begin x_retire = 1'b1; x_xwe = 1'b1; x_xdata = prod; end
                `DNPU_OP_S_MIN:    begin x_retire = 1'b1; x_xwe = 1'b1; x_xdata = lt_s ? xa : xb; end
                `DNPU_OP_S_MAX:    begin x_retire = 1'b1; x_xwe = 1'b1; x_xdata = lt_s ? xb : xa; end
                `DNPU_OP_S_SLT:    begin x_retire = 1'b1; x_xwe = 1'b1; x_xdata = {31'd0, lt_s}; end
                `DNPU_OP_S_SLLI:   begin x_retire = 1'b1; x_xwe = 1'b1; x_xdata = xa << shamt; end
                `DNPU_OP_S_SRLI:   begin x_retire = 1'b1; x_xwe = 1'b1; x_xdata = xa >> shamt; end
                `DNPU_OP_S_LD_ARG: begin x_retire = 1'b1; x_xwe = 1'b1;
                                         x_xdata = args_i[{argi, 5'd0} +: 32]; end
                `DNPU_OP_S_LI_FP:  begin x_retire = 1'b1; x_fwe = 1'b1; x_fdata = {imm16, 16'd0}; end
                `DNPU_OP_S_SEL_FP: begin x_retire = 1'b1; x_fwe = 1'b1;
                                         x_fdata = (xc != 32'd0) ? fa : fb; end
                `DNPU_OP_S_ADD_FP, `DNPU_OP_S_SUB_FP, `DNPU_OP_S_MUL_FP, `DNPU_OP_S_MAX_FP,
                `DNPU_OP_S_EXP_FP, `DNPU_OP_S_RECI_FP, `DNPU_OP_S_LT_FP: begin
                    x_fpu = 1'b1;                      // retires in FPU
                end
                `DNPU_OP_S_LD_INT, `DNPU_OP_S_LD_FP: begin
                    if ((op == `DNPU_OP_S_LD_FP) ? ~fp_in : ~int_in) begin
                        x_fault = 1'b1;
                        x_cause = `DNPU_ERR_SRAM_RANGE;
                    end else begin
                        x_ldw = 1'b1;                  // retires in LDW
                    end
                end
                `DNPU_OP_S_ST_INT, `DNPU_OP_S_ST_FP: begin
                    if ((op == `DNPU_OP_S_ST_FP) ? ~fp_in : ~int_in) begin
                        x_fault = 1'b1;
                        x_cause = `DNPU_ERR_SRAM_RANGE;
                    end else begin
                        x_retire = 1'b1;
                    end
                end
                `DNPU_OP_H_LOAD_INT, `DNPU_OP_H_LOAD_FP,
                `DNPU_OP_H_STORE_INT, `DNPU_OP_H_STORE_FP: begin
                    if (h_n0) begin
                        x_retire = 1'b1;               // n = 0: no check, no access
                    end else if (h_misal) begin
                        x_fault = 1'b1;
                        x_cause = `DNPU_ERR_MISALIGNED;
                    end else if (h_range) begin
                        x_fault = 1'b1;
                        x_cause = `DNPU_ERR_SRAM_RANGE;
                    end else if (h_past) begin
                        x_fault = 1'b1;
                        x_cause = (op == `DNPU_OP_H_LOAD_INT || op == `DNPU_OP_H_LOAD_FP)
                                ? `DNPU_ERR_AXI_READ : `DNPU_ERR_AXI_WRITE;
                    end else if (op == `DNPU_OP_H_LOAD_INT || op == `DNPU_OP_H_LOAD_FP) begin
                        x_rd_cmd = 1'b1;
                        x_load   = rd_cmd_ready;       // else wait here for the engine
                    end else begin
                        x_wr_cmd = 1'b1;              // STORE once the engine takes it
                    end
                end
                `DNPU_OP_H_PREFETCH_V: begin
                    if (h_n0) begin
                        x_retire = 1'b1;
                    end else if (p_misal) begin
                        x_fault = 1'b1;
                        x_cause = `DNPU_ERR_MISALIGNED;
                    end else if (p_past) begin     // before SRAM_RANGE, as dnpu.emu
                        x_fault = 1'b1;
                        x_cause = `DNPU_ERR_AXI_READ;
                    end else if (v_range) begin
                        x_fault = 1'b1;
                        x_cause = `DNPU_ERR_SRAM_RANGE;
                    end else begin
                        // both take their command in the same cycle (the
                        // dequantizer is idle here: done came before retire)
                        x_rd_cmd = dq_cmd_ready;
                        x_pref   = dq_cmd_ready & rd_cmd_ready;
                    end
                end
                `DNPU_OP_H_STORE_V: begin
                    if (h_n0) begin
                        x_retire = 1'b1;
                    end else if (h_misal) begin
                        x_fault = 1'b1;
                        x_cause = `DNPU_ERR_MISALIGNED;
                    end else if (v_range) begin
                        x_fault = 1'b1;
                        x_cause = `DNPU_ERR_SRAM_RANGE;
                    end else if (sv_past) begin
                        x_fault = 1'b1;
                        x_cause = `DNPU_ERR_AXI_WRITE;
                    end else begin
                        x_wr_cmd = 1'b1;
                    end
                end
                `DNPU_OP_H_SAMPLE_FUSED_N: begin       // streams and results in VEC
                    if (h_n0 | (xc == 32'd0)) begin
                        x_retire = 1'b1;
                    end else if (p_misal) begin        // the same for every position
                        x_fault = 1'b1;
                        x_cause = `DNPU_ERR_MISALIGNED;
                    end else if (out_of(xd, {1'b0, xc}, INT_DEPTH) | out_of(xd, {1'b0, xc}, FP_DEPTH)) begin
                        x_fault = 1'b1;
                        x_cause = `DNPU_ERR_SRAM_RANGE;
                    end else begin
                        x_vec = 1'b1;                  // AXI_READ, per position, in VEC
                    end
                end
                `DNPU_OP_H_SAMPLE_FUSED: begin         // H_PREFETCH_V's checks, no SRAM
                    if (h_n0) begin
                        x_retire = 1'b1;
                    end else if (p_misal) begin
                        x_fault = 1'b1;
                        x_cause = `DNPU_ERR_MISALIGNED;
                    end else if (p_past) begin
                        x_fault = 1'b1;
                        x_cause = `DNPU_ERR_AXI_READ;
                    end else begin
                        x_rd_cmd = dq_cmd_ready;
                        x_pref   = dq_cmd_ready & rd_cmd_ready;
                        x_vec    = x_pref;
                    end
                end
                default: begin
                    if (v_op) begin                    // dnpu_vec
                        if (vn0) begin
                            x_retire = 1'b1;
                        end else if (v_bad) begin
                            x_fault = 1'b1;
                            x_cause = `DNPU_ERR_SRAM_RANGE;
                        end else begin
                            x_vec = 1'b1;
                        end
                    end else begin                     // C_NOP
                        x_retire = 1'b1;
                    end
                end
            endcase
        end
    end

    // ---- retire / fault of the current instruction, whichever state ends it ----
    wire ld_last   = (state == ST_LOAD) & up_valid & ~up_err & (mo_cnt == mo_n - 32'd1);
    wire st_end    = (state == ST_STORE) & wr_done;
    reg        retire;
    reg        fault;
    reg [`DNPU_ERR_W-1:0] cause;
    always @* begin
        retire = 1'b0;
        fault  = 1'b0;
        cause  = `DNPU_ERR_NONE;
        case (state)
            ST_FETCH: if (pc[1:0] != 2'b00) begin          // only via PROG_BASE
                fault = 1'b1;
                cause = `DNPU_ERR_MISALIGNED;
            end
            ST_EXEC: begin
                retire = x_retire;
                fault  = x_fault;
                cause  = x_cause;
            end
            ST_LDW:  retire = 1'b1;
            ST_FPU:  retire = op_reci ? reci_done : 1'b1;
            ST_LOAD: if (up_valid & up_err) begin
                fault = 1'b1;
                cause = `DNPU_ERR_AXI_READ;
            end else begin
                retire = ld_last;
            end
            ST_PREF: if (rd_valid & rd_err) begin
                fault = 1'b1;
                cause = `DNPU_ERR_AXI_READ;
            end else begin
                retire = dq_done;
            end
            ST_VEC: if (is_fused & rd_valid & rd_err) begin
                fault = 1'b1;
                cause = `DNPU_ERR_AXI_READ;
            end else if (is_fn & fn_stop) begin   // positions before fn_stop_pos written
                fault = vu_done;
                cause = `DNPU_ERR_AXI_READ;
            end else begin
                retire = vu_done;
            end
            ST_STORE: if (st_end & wr_err) begin
                fault = 1'b1;
                cause = `DNPU_ERR_AXI_WRITE;
            end else begin
                retire = st_end;
            end
            default: ;
        endcase
        if (soft_reset_i) begin
            retire = 1'b0;
            fault  = 1'b0;
        end
    end

    // Register written at retire: EXEC's, LDW's SRAM data, or FPU's result.
    wire        ldw_fp  = (op == `DNPU_OP_S_LD_FP);
    wire        in_ldw  = (state == ST_LDW);
    wire        in_fpu  = (state == ST_FPU);
    // VEC: V_RED_MAX_IDX writes f[rd] and x[rs2], H_SAMPLE_FUSED x[rd] and
    // f[rs3], V_RED_MAX / V_RED_SUM f[rd]; the rest no register.
    wire        in_vec  = (state == ST_VEC);
    wire        op_rmi  = (op == `DNPU_OP_V_RED_MAX_IDX);
    wire        vec_xwe = op_rmi | is_fused;
    wire        vec_fwe = op_rmi | is_fused | (op == `DNPU_OP_V_RED_MAX) | (op == `DNPU_OP_V_RED_SUM);
    wire        w_xwe   = in_ldw ? ~ldw_fp    : (in_fpu ? op_lt : (in_vec ? vec_xwe : x_xwe));
    wire [31:0] w_xdata = in_ldw ? int_rdata  : (in_fpu ? {31'd0, b_gt_a} : (in_vec ? vu_res_x : x_xdata));
    wire        w_fwe   = in_ldw ? ldw_fp     : (in_fpu ? ~op_lt : (in_vec ? vec_fwe : x_fwe));
    // (in FPU the value is sfp_f, computed where it is written)
    wire [31:0] w_fdata = in_ldw ? fp_rdata   : (in_vec ? vu_res_f : x_fdata);
    wire [3:0]  w_xidx  = (in_vec & op_rmi) ? f_rs2 : f_rd;
    wire [2:0]  w_fidx  = (in_vec & is_fused) ? f_rs3[2:0] : f_rd[2:0];
    wire        w_halt  = (state == ST_EXEC) & x_halt;
    wire        w_push  = (state == ST_EXEC) & x_push;
    wire [31:0] next_pc = w_push ? pc + 32'd4 : er_next;

    // ---- SRAM port control ---------------------------------------------------------
    always @* begin
        int_we     = 1'b0;
        fp_we      = 1'b0;
        int_re     = 1'b0;
        fp_re      = 1'b0;
        int_waddr  = saddr[IAW-1:0];
        fp_waddr   = saddr[FAW-1:0];
        int_raddr  = saddr[IAW-1:0];
        fp_raddr   = saddr[FAW-1:0];
        sram_wdata = (op == `DNPU_OP_S_ST_FP) ? fd : xd;
        vec_we     = 1'b0;
        vec_re     = 1'b0;
        vec_waddr  = mo_base[VAW-1:0] + mo_cnt[VAW-1:0];
        vec_raddr  = mo_base[VAW-1:0] + mo_cnt[VAW-1:0];
        vec_wdata  = dq_row;
        case (state)
            ST_EXEC: begin
                if (x_retire & ~soft_reset_i) begin
                    int_we = (op == `DNPU_OP_S_ST_INT);
                    fp_we  = (op == `DNPU_OP_S_ST_FP);
                end
                if (x_ldw) begin
                    int_re = (op == `DNPU_OP_S_LD_INT);
                    fp_re  = (op == `DNPU_OP_S_LD_FP);
                end
            end
            ST_LOAD: begin
                int_waddr  = mo_base[IAW-1:0] + mo_cnt[IAW-1:0];
                fp_waddr   = mo_base[FAW-1:0] + mo_cnt[FAW-1:0];
                sram_wdata = up_data;
                if (up_valid & ~up_err & ~soft_reset_i) begin
                    int_we = ~mo_fp;
                    fp_we  = mo_fp;
                end
            end
            ST_STORE: begin
                int_raddr = mo_base[IAW-1:0] + mo_cnt[IAW-1:0];
                fp_raddr  = mo_base[FAW-1:0] + mo_cnt[FAW-1:0];
                int_re    = st_re & ~mo_fp & ~mo_vec;
                fp_re     = st_re & mo_fp;
                vec_re    = st_re & mo_vec;
            end
            ST_PREF:  vec_we = dq_row_valid & ~soft_reset_i;
            ST_VEC: begin
                vec_re     = vu_vs_re;
                vec_raddr  = vu_vs_raddr;
                vec_we     = vu_vs_we & ~soft_reset_i;
                vec_waddr  = vu_vs_waddr;
                vec_wdata  = vu_vs_wdata;
                int_re     = vu_is_re;
                int_raddr  = vu_is_raddr;
                int_we     = vu_is_we & ~soft_reset_i;
                int_waddr  = vu_is_waddr;
                sram_wdata = vu_is_wdata;
                fp_re      = vu_fs_re;
                fp_raddr   = vu_fs_raddr;
                fp_we      = vu_fs_we & ~soft_reset_i;
                fp_waddr   = vu_fs_waddr;
            end
            default: ;
        endcase
    end

    // ---- engine commands -----------------------------------------------------------
    // A 32-bit byte address on the AXI address bus (ADDR_W >= 32). A function, not a
    // replication: {(ADDR_W-32){..}} would be zero-width, illegal in Verilog-2005.
    function [ADDR_W-1:0] axi_addr;
        input [31:0] a;
        begin
            axi_addr = {ADDR_W{1'b0}};
            axi_addr[31:0] = a;
        end
    endfunction

    wire fetch_miss = (state == ST_FETCH) & (pc[1:0] == 2'b00) & ~hit & ~soft_reset_i;
    wire exec_rd    = (state == ST_EXEC) & x_rd_cmd & ~soft_reset_i;

    assign fp_wdata     = (state == ST_VEC) ? vu_fs_wdata : sram_wdata;
    assign rd_cmd_valid = fetch_miss | exec_rd | fn_rd;
    assign rd_cmd_addr  = axi_addr(exec_rd ? xa : (in_fn ? fn_addr[31:0] : line_addr));
    wire   is_pref      = (op == `DNPU_OP_H_PREFETCH_V);
    assign rd_cmd_beats = exec_rd ? ((is_pref | is_fused) ? p_beats[31:0] : h_beats)
                        : (in_fn ? fn_pbeats[31:0] : LINE_BEATS);
    assign rd_cmd_id    = (exec_rd | in_fn) ? ID_DATA : ID_FETCH;
    assign rd_ready     = (state == ST_FILL) | ((state == ST_LOAD) & up_s_ready) |
                          (dq_stream & dq_s_ready);
    assign rd_abort     = soft_reset_i | fault | fn_err;

    assign wr_cmd_valid = (state == ST_EXEC) & x_wr_cmd & ~soft_reset_i;
    assign wr_cmd_addr  = axi_addr(xa);
    assign wr_cmd_words = (op == `DNPU_OP_H_STORE_V) ? sv_words : xb;
    assign wr_cmd_id    = ID_DATA;
    assign wr_abort     = soft_reset_i;

    // ---- state -----------------------------------------------------------------------
    integer i;
    always @(posedge clk) begin
        if (!rst_n) begin
            state       <= ST_IDLE;
            pc          <= 32'd0;
            ir          <= 32'd0;
            ir_err      <= 1'b0;
            done_o      <= 1'b0;
            error_o     <= 1'b0;
            err_cause_o <= `DNPU_ERR_NONE;
            err_pc_o    <= 32'd0;
            sp          <= {SP_W{1'b0}};
            lval        <= {FETCH_LINES{1'b0}};
            st_hold     <= 1'b0;
            dq_flush    <= 1'b0;
            for (i = 0; i < 16; i = i + 1) xr[i] <= 32'd0;
            for (i = 0; i < 8; i = i + 1)  fr[i] <= 32'd0;
        end else begin
            dq_flush <= soft_reset_i | fault;
            // -- per state
            case (state)
                ST_FETCH: if (hit) begin
                    ir     <= lbuf[hit_idx];
                    ir_err <= lerr[hit_idx];
                    state  <= ST_EXEC;
                end else if (fetch_miss & rd_cmd_ready) begin
                    lval[pc_slot] <= 1'b0;
                    ltag[pc_slot] <= pc_tag;
                    fill_idx      <= 32'd0;
                    state         <= ST_FILL;
                end
                ST_FILL: if (rd_valid) begin
                    fill_idx <= fill_idx + 32'd1;
                    if (rd_last) begin
                        lval[pc_slot] <= 1'b1;
                        state         <= ST_FETCH;
                    end
                end
                ST_EXEC: begin
                    if (x_ldw)
                        state <= ST_LDW;
                    if (x_fpu)
                        state <= ST_FPU;
                    if (is_fpu) begin          // operands of a scalar FP op
                        fpu_a <= fa;
                        fpu_b <= fb;
                    end
                    if (exec_rd & rd_cmd_ready) begin
                        state <= is_fused ? ST_VEC : (is_pref ? ST_PREF : ST_LOAD);
                    end
                    if (x_vec)
                        state <= ST_VEC;
                    if (wr_cmd_valid & wr_cmd_ready) begin
                        state <= ST_STORE;
                    end
                    // operands of a transfer, used if LOAD / STORE follows
                    mo_base <= xd;
                    mo_n    <= xb;
                    mo_cnt  <= 32'd0;
                    mo_fp   <= h_is_fp;
                    mo_vec  <= (op == `DNPU_OP_H_STORE_V);
                    vst_w   <= {(LOG_VL-1){1'b0}};
                    st_hold <= 1'b0;
                    // H_SAMPLE_FUSED_N's stream state, used if VEC follows
                    fn_addr   <= {16'd0, xa};
                    fn_stride <= fn_stride_c;
                    fn_pbeats <= p_beats;
                    fn_span   <= p_beats << LOG_BB;
                    fn_rq     <= 32'd0;
                    fn_dq     <= 32'd0;
                    fn_bpos   <= 32'd0;
                    fn_bcnt   <= 32'd0;
                    fn_stop   <= 1'b0;
                end
                ST_VEC: if (is_fn) begin
                    if (fn_rd & rd_cmd_ready) begin
                        fn_addr <= fn_addr + fn_stride;
                        fn_rq   <= fn_rq + 32'd1;
                    end
                    if (fn_dqv & dq_cmd_ready)
                        fn_dq <= fn_dq + 32'd1;
                    if (rd_valid & rd_ready & ~rd_err) begin
                        if (fn_bcnt + 32'd1 == fn_pbeats[31:0]) begin
                            fn_bcnt <= 32'd0;
                            fn_bpos <= fn_bpos + 32'd1;
                        end else begin
                            fn_bcnt <= fn_bcnt + 32'd1;
                        end
                    end
                    if (fn_err) begin                  // the first error beat aborts the engine
                        fn_stop     <= 1'b1;
                        fn_stop_pos <= fn_bpos;
                    end else if (fn_past) begin        // no command for this position
                        fn_stop     <= 1'b1;
                        fn_stop_pos <= fn_rq;
                    end
                end
                ST_PREF: if (dq_row_valid)
                    mo_cnt <= mo_cnt + 32'd1;
                ST_LOAD: if (up_valid & ~up_err)
                    mo_cnt <= mo_cnt + 32'd1;
                ST_STORE: begin
                    if (st_re)
                        mo_cnt <= mo_cnt + 32'd1;
                    st_hold <= st_re | (st_hold & ~(wr_hs & st_wlast));
                    if (wr_hs)
                        vst_w <= st_wlast ? {(LOG_VL-1){1'b0}} : vst_w + 1'b1;
                end
                default: ;
            endcase

            // -- retire: registers, loop stack, next PC
            if (retire) begin
                if (w_xwe && w_xidx != 4'd0)
                    xr[w_xidx] <= w_xdata;
                if (w_fwe)
                    fr[w_fidx] <= in_fpu ? sfp_f(op, fpu_a, fpu_b, reci_y) : w_fdata;
                if (w_halt) begin
                    state  <= ST_IDLE;
                    done_o <= 1'b1;
                end else begin
                    state <= ST_FETCH;
                    pc    <= next_pc;
                end
                if (w_push) begin
                    ls_start[sp_new] <= pc + 32'd4;
                    ls_end[sp_new]   <= loop_end;
                    ls_rem[sp_new]   <= loop_cnt;
                    sp           <= sp + 1'b1;
                end else if (!w_halt) begin
                    sp <= er_sp;
                    if (er_dec)
                        ls_rem[er_idx] <= ls_rem[er_idx] - 32'd1;
                end
            end
            if (fault) begin
                state       <= ST_IDLE;
                error_o     <= 1'b1;
                err_cause_o <= cause;
                err_pc_o    <= pc;
            end

            // -- host control
            if (soft_reset_i) begin
                state       <= ST_IDLE;
                pc          <= 32'd0;
                done_o      <= 1'b0;
                error_o     <= 1'b0;
                err_cause_o <= `DNPU_ERR_NONE;
                err_pc_o    <= 32'd0;
                sp          <= {SP_W{1'b0}};
                lval        <= {FETCH_LINES{1'b0}};
                st_hold     <= 1'b0;
                for (i = 0; i < 16; i = i + 1) xr[i] <= 32'd0;
                for (i = 0; i < 8; i = i + 1)  fr[i] <= 32'd0;
            end
            if (start_i && (state == ST_IDLE || soft_reset_i)) begin
                state       <= ST_FETCH;
                pc          <= prog_base_i;
                done_o      <= 1'b0;
                error_o     <= 1'b0;
                err_cause_o <= `DNPU_ERR_NONE;
                err_pc_o    <= 32'd0;
                sp          <= {SP_W{1'b0}};
                lval        <= {FETCH_LINES{1'b0}};
            end
        end
        // Line fill data (no reset: lval guards it).
        if (state == ST_FILL && rd_valid) begin
            for (i = 0; i < LW; i = i + 1) begin
                if (fill_sel[i]) begin
                    lbuf[{pc_slot, i[LOG_LW-1:0]}] <= fill_wd[32*i +: 32];
                    lerr[{pc_slot, i[LOG_LW-1:0]}] <= rd_err;
                end
            end
        end
    end

    // ---- counter strobes and retire trace ---------------------------------------------
    always @(posedge clk) begin
        if (!rst_n) begin
            instret_o      <= 1'b0;
            stall_fetch_o  <= 1'b0;
            stall_mem_rd_o <= 1'b0;
            stall_mem_wr_o <= 1'b0;
            retire_valid   <= 1'b0;
            sram_write     <= 1'b0;
        end else begin
            instret_o      <= retire;
            stall_fetch_o  <= fetch_miss | ((state == ST_FILL) & ~soft_reset_i);
            stall_mem_rd_o <= ~soft_reset_i & (((state == ST_LOAD) & ~up_valid) |
                                                ((state == ST_PREF) & dq_s_ready & ~rd_valid));
            stall_mem_wr_o <= ~soft_reset_i & (state == ST_STORE) & wr_stall;
            retire_valid   <= retire;
            sram_write     <= int_we | fp_we | vec_we;
        end
        retire_x_we   <= retire & w_xwe & (w_xidx != 4'd0);
        retire_f_we   <= retire & w_fwe;
        if (retire) begin                 // the rest is read only with retire_valid
            retire_pc     <= pc;
            retire_word   <= ir;
            retire_x_idx  <= w_xidx;
            retire_x_data <= w_xdata;
            retire_f_idx  <= w_fidx;
        end
    end

    // The f value a retire wrote, read back from the register file the cycle after (no
    // second retire can come that soon): one scalar FP unit, not a copy for the trace.
    assign retire_f_data = fr[retire_f_idx];

    // SRAM bases beyond the address bits were range-checked before use. The
    // comparator's eq is for the vector unit; the reciprocal is never busy in EXEC
    // (FPU waits for its done).
    // The dequantizer never sees a bad command (EXEC checked it); p_*, sv_* high
    // bits are zero once the range check passed.
    wire unused_ok = &{1'b0, mo_base[31:(IAW > FAW ? IAW : FAW)], cmp_eq, reci_busy,
                       dq_cmd_error, p_beats[47:32], p_elems[47:33], p_elems[0], fn_pbeats[47:32]};

endmodule

`default_nettype wire
