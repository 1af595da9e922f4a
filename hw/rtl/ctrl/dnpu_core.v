`default_nettype none
// dnpu_core: the NPU's controller. docs/EXECUTION.md is the specification and dnpu.emu
// the golden model: every fault must have the emulator's cause and PC, and the core
// retires the same instructions in the same order.
//
// One module per job; this one holds what they share:
//   dnpu_fetch       instruction fetch through line buffers
//   dnpu_decode      instruction fields, ILLEGAL_INSTR
//   dnpu_loop_stack  C_LOOP / C_LOOPI
//   dnpu_fpu         scalar FP arithmetic
//   dnpu_lsu         transfers to and from external memory and the MX streams (with the
//                    dequantizer and H_STORE_MX's quantizer, hw/rtl/mx)
//   dnpu_vec         the vector unit (hw/rtl/vector)
//   dnpu_matrix      the matrix unit (hw/rtl/matrix), on profiles with [matrix] rows > 0
//   dnpu_core        the state machine, the x and f registers, the scalar integer unit,
//                    the int, FP and vector SRAMs (the units share their ports, chosen by
//                    state), fault priority, counter strobes and the retire trace.
//
// A multi-cycle controller, not a pipeline: FETCH (until dnpu_fetch has the word at PC)
// -> EXEC (decode and execute; most instructions retire here) -> FETCH. With
// DECODE_STAGE = 1 ([pipeline] decode_stage), FETCH -> DECODE -> EXEC: DECODE registers
// the decoded fields, the register reads and the checks that depend only on them (dec_q),
// and EXEC starts from those registers; ir, the registers, PC and the loop stack do not
// change between DECODE and EXEC (registers are written only at retire). An instruction
// that needs more cycles retires in the state that completes it: LDW (S_LD_INT /
// S_LD_FP: the SRAMs read synchronously), FPU (scalar FP arithmetic), LOAD / STORE /
// PREF (dnpu_lsu's transfers; a store once every B response is in), VEC (dnpu_vec,
// with H_SAMPLE_FUSED*'s streams) or MAT (dnpu_matrix, fed by dnpu_lsu's weight streams;
// it owns the vector SRAM's ports; M_MM_V's weights it reads itself). M_CFG sets the matrix shape registers at retire. An instruction ends (retires or faults) only once
// its work is complete, so a fault always belongs to the instruction that caused it,
// and registers are written only at retire.
//
// Cost (DECODE_STAGE = 1: one cycle more for every instruction, DECODE):
// FETCH + EXEC = 2 cycles per instruction whose line is resident, 3 for
// S_LD_INT / S_LD_FP and the scalar FP ops but S_RECI_FP and S_RSQRT_FP, which take 28
// (FETCH, EXEC, then 26 in FPU: the reciprocal's done comes 25 edges after the
// edge that starts it); a line miss adds the memory's latency and the line's
// beats; H_LOAD_* / H_STORE_* move one 32-bit word a cycle, a store then waits
// for its last B response; H_STORE_MX moves one AXI beat a cycle once the quantizer has
// its first group (dnpu_mx_quant), then waits for its last B response too.
//
// Fault priority inside one instruction (EXECUTION.md): fetch error, then
// ILLEGAL_INSTR, LOOP_OVERFLOW, MISALIGNED, SRAM_RANGE, WINDOW, AXI_READ/AXI_WRITE.
// One dnpu_window checks every access before it is issued: the line fill in FETCH (a
// line outside the windows is never read: the fetch faults WINDOW at PC), dnpu_lsu's
// transfer otherwise (DECODE_STAGE = 1: one checks the instruction's transfer, registered
// in DECODE, one the line fills, the first H_SAMPLE_FUSED_N's streams); ERR_ADDR
// takes the access's first byte on a WINDOW fault.
// A faulting instruction writes no register and does not retire. PC stays at
// the faulting (or halting) instruction, like dnpu.emu's PC. A transfer's fault or
// SOFT_RESET resets the dequantizer and the vector unit the cycle after (flush); a fault
// in FETCH finds them idle, and so does one in EXEC but for the vector unit, started by
// H_SAMPLE_FUSED before its window check: EXEC's faults flush too.
//
// SOFT_RESET: back to idle with x/f registers, loop stack, status, cause,
// ERR_PC and PC cleared; SRAMs, arguments and counters are kept. A transfer in
// flight is aborted: the engines finish the AXI bursts already issued on their
// own (data dropped, writes with WSTRB = 0) and take the next command after.
// START together with SOFT_RESET starts after the reset. START and SOFT_RESET
// empty the fetch lines (the host may have written a new program).
//
// Counter strobes (to dnpu_csr), registered: instret on each retire;
// stall_fetch in cycles spent waiting for a line fill; stall_mem_rd in cycles
// an H_LOAD_* or H_PREFETCH_V waits for read data; stall_mem_wr in cycles an
// H_STORE_* waits on the AXI write channels (AW/W not ready, or B outstanding
// after the data).
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
    parameter integer MX_BLOCK    = 32,
    parameter integer MATRIX_ROWS = 0,     // the matrix unit's rows; 0 = no matrix unit
    parameter integer MATRIX_WBUF = 2,     // its weight squares buffered
    parameter integer ADD_STAGES  = 1,     // the FP adder, multiplier and EXP pipeline stages
    parameter integer MUL_STAGES  = 1,     // of the vector unit and the scalar FPU ([pipeline])
    parameter integer EXP_STAGES  = 1,
    parameter integer DECODE_STAGE = 0,    // 1: FETCH -> DECODE -> EXEC (see Cost)
    parameter integer MAX_TREE    = 0,     // registers in dnpu_vec's row-maximum tree
    parameter integer RESULT_REGS = 0      // registers after dnpu_vec's S5 product and sum and lane
                                           // results, and dnpu_fpu's pipelined results
) (
    input  wire                             clk,
    input  wire                             rst_n,

    // from dnpu_csr
    input  wire                             start_i,
    input  wire                             soft_reset_i,
    input  wire [31:0]                      prog_base_i,
    input  wire [`DNPU_CSR_ARG_COUNT*32-1:0] args_i,
    input  wire [`DNPU_CSR_WIN_BASE_COUNT*32-1:0] win_base_i,
    input  wire [`DNPU_CSR_WIN_BASE_COUNT*32-1:0] win_limit_i,
    input  wire [`DNPU_CSR_WIN_BASE_COUNT*3-1:0]  win_perm_i,

    // to dnpu_csr
    output wire                             busy_o,
    output reg                              done_o,
    output reg                              error_o,
    output reg  [`DNPU_ERR_W-1:0]           err_cause_o,
    output reg  [31:0]                      err_pc_o,
    output reg  [31:0]                      err_addr_o,
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
    output wire                             wr_cmd_beat,
    output wire [ID_W-1:0]                  wr_cmd_id,
    output wire                             wr_valid,
    output wire [31:0]                      wr_data,
    input  wire                             wr_ready,
    output wire                             wr_bvalid,
    output wire [DATA_W-1:0]                wr_bdata,
    input  wire                             wr_bready,
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
    // ---- geometry -------------------------------------------------------------------
    localparam integer IAW       = $clog2(INT_WORDS);
    localparam integer FAW       = $clog2(FP_WORDS);
    localparam integer VAW       = $clog2(VEC_ROWS);
    localparam integer SAW       = (IAW > FAW) ? ((IAW > VAW) ? IAW : VAW) : ((FAW > VAW) ? FAW : VAW);
    localparam integer LOG_VL    = $clog2(VLEN);
    localparam [31:0]  INT_D32   = INT_WORDS;
    localparam [31:0]  FP_D32    = FP_WORDS;
    localparam [31:0]  VR_D32    = VEC_ROWS;
    localparam [32:0]  INT_DEPTH = {1'b0, INT_D32};
    localparam [32:0]  FP_DEPTH  = {1'b0, FP_D32};
    localparam [32:0]  VR_DEPTH  = {1'b0, VR_D32};
    // AXI IDs only label traffic (one read and one write engine, in order).
    localparam [ID_W-1:0] ID_FETCH = 0;
    localparam [ID_W-1:0] ID_DATA  = 1;

    // (The benches in tests/rtl watch PREF and VEC by their numbers.)
    localparam [3:0] ST_IDLE  = 4'd0,
                     ST_FETCH = 4'd1,   // dnpu_fetch looks PC up (and fills its line)
                     ST_DEC   = 4'd2,   // DECODE_STAGE: ir's fields, operands and checks registered
                     ST_EXEC  = 4'd3,   // decode and execute ir
                     ST_LDW   = 4'd4,   // S_LD_INT / S_LD_FP: SRAM data arrives
                     ST_LOAD  = 4'd5,   // H_LOAD_*: words stream into an SRAM
                     ST_STORE = 4'd6,   // H_STORE_*: words stream out of an SRAM
                     ST_FPU   = 4'd7,   // scalar FP: the unit's result is written
                     ST_PREF  = 4'd8,   // H_PREFETCH_V: beats -> dequantizer -> rows
                     ST_VEC   = 4'd9,   // the vector unit works (dnpu_vec)
                     ST_MAT   = 4'd10;  // the matrix unit works (dnpu_matrix)

    reg [3:0]  state;
    reg [31:0] pc;
    reg [31:0] ir;
    reg        ir_err;                  // ir came in an AXI error beat
    reg        flush;                   // the cycle after a fault or SOFT_RESET

    assign busy_o = (state != ST_IDLE);
    assign pc_o   = pc;

    wire go     = start_i && (state == ST_IDLE || soft_reset_i);     // START is taken
    wire in_ex  = (state == ST_EXEC);
    wire in_ldw = (state == ST_LDW);
    wire in_fpu = (state == ST_FPU);
    wire in_vec = (state == ST_VEC);
    wire in_mat = (state == ST_MAT);

    // ---- registers ------------------------------------------------------------------
    reg [31:0] xr [0:15];                // xr[0] is never written: x0 reads 0
    reg [31:0] fr [0:7];

    // What the instruction in EXEC does (execute, below), and what ends it in whichever
    // state (retire, fault, cause).
    reg        x_fault;
    reg [`DNPU_ERR_W-1:0] x_cause;
    reg        x_retire;
    wire       x_halt;
    wire       x_push;                 // a loop opens (next PC = pc + 4)
    reg [31:0] x_xdata;
    reg [31:0] x_fdata;
    reg        x_ldw;                  // go to LDW
    reg        x_fpu;                  // go to FPU
    reg        x_load, x_store, x_pref, x_vec;   // go to LOAD / STORE / PREF / VEC
    wire       v_start;                          // x_vec before the window check (dnpu_lsu)
    reg        x_mat;                  // go to MAT
    // the matrix unit's shape (M_CFG): M rows, N outputs, K products; 0 after reset, and
    // always without a matrix unit (M_CFG is ILLEGAL_INSTR there), so that synthesis drops
    // M_MM's sizes and streams
    wire [31:0] mm_m, mm_n, mm_k;
    reg        retire;
    reg        fault;
    reg [`DNPU_ERR_W-1:0] cause;
    wire       w_halt = in_ex & x_halt;
    wire       w_push = in_ex & x_push;

    // ---- fetch and decode -----------------------------------------------------------
    wire        if_valid, if_err, if_stall, if_cmd_valid, if_s_ready, if_win_fault, win_ok, if_win_ok;
    wire [31:0] if_instr, if_cmd_addr, if_cmd_beats;

    dnpu_fetch #(.DATA_W(DATA_W), .LINE_WORDS(FETCH_WORDS)) u_fetch (
        .clk(clk), .rst_n(rst_n), .flush(soft_reset_i | go),
        .req(state == ST_FETCH), .pc(pc),
        .instr_valid(if_valid), .instr(if_instr), .instr_err(if_err), .stall(if_stall),
        .cmd_valid(if_cmd_valid), .cmd_ready(rd_cmd_ready), .cmd_addr(if_cmd_addr),
        .cmd_beats(if_cmd_beats), .s_valid(rd_valid), .s_data(rd_data), .s_err(rd_err),
        .s_last(rd_last), .s_ready(if_s_ready), .win_ok(if_win_ok), .win_fault(if_win_fault));

    // Everything below named *_c is computed from ir, the registers and the loop stack,
    // none of which changes between FETCH and the retire. DECODE_STAGE = 0 uses it
    // directly in EXEC; DECODE_STAGE = 1 registers it in DECODE (dec_q, below) and EXEC
    // starts from those registers, so that no path runs from ir through EXEC's work.
    wire [6:0]  op_c;
    wire [3:0]  f_rd_c, f_rs1_c, f_rs2_c, f_rs3_c;
    wire [31:0] imm17_c, imm21_c, cnt15_c;
    wire [15:0] imm16_c;
    wire [4:0]  shamt_c;
    wire [2:0]  argi_c, mxfmt_c;
    wire [9:0]  len10_c;
    wire        illegal_c;

    dnpu_decode #(.MATRIX(MATRIX_ROWS > 0 ? 1'b1 : 1'b0)) u_decode (
        .instr(ir), .op(op_c), .rd(f_rd_c), .rs1(f_rs1_c), .rs2(f_rs2_c), .rs3(f_rs3_c),
        .imm17(imm17_c), .imm21(imm21_c), .imm16(imm16_c), .shamt(shamt_c), .argi(argi_c),
        .count(cnt15_c), .len(len10_c), .fmt(mxfmt_c), .illegal(illegal_c));

    // ---- operands -------------------------------------------------------------------
    // Register reads are plain array selects, not a function: a function that reads
    // module state in a continuous assignment is not re-evaluated by every
    // simulator when that state changes (Icarus is not).
    // DECODE_STAGE = 1 reads them as the word is fetched, from its fields, into registers
    // (op_f; a loop's end and class too): the registers are written only at a retire,
    // which comes before FETCH and after EXEC, and PC does not change in between, so the
    // copies hold until the instruction ends, and DECODE's checks and the transfers start
    // from a register instead of a 16-way select.
    wire [3:0]  rs1_r, rs2_r, rs3_r, rd_r;       // the fields the reads select by
    wire [31:0] xa_r = (rs1_r == 4'd0) ? 32'd0 : xr[rs1_r];
    wire [31:0] xb_r = (rs2_r == 4'd0) ? 32'd0 : xr[rs2_r];
    wire [31:0] xc_r = (rs3_r == 4'd0) ? 32'd0 : xr[rs3_r];
    wire [31:0] xd_r = (rd_r  == 4'd0) ? 32'd0 : xr[rd_r];   // rd as a source: stores, SRAM bases
    wire [31:0] fa_r = fr[rs1_r[2:0]];
    wire [31:0] fb_r = fr[rs2_r[2:0]];
    wire [31:0] fd_r = fr[rd_r[2:0]];
    wire [31:0] xa_c, xb_c, xc_c, xd_c, fa_c, fb_c, fd_c;
    wire [32:0] loop_end_c;                      // C_LOOP*: its body's last instruction
    wire        is_loop_c;                       // C_LOOP / C_LOOPI
    generate
        if (DECODE_STAGE != 0) begin : g_op_fetch
            wire [6:0]  if_op;
            wire [31:0] if_imm17, if_imm21, if_cnt;
            wire [15:0] if_imm16;
            wire [4:0]  if_shamt;
            wire [2:0]  if_argi, if_fmt;
            wire [9:0]  if_len;
            wire        if_illegal;
            dnpu_decode #(.MATRIX(MATRIX_ROWS > 0 ? 1'b1 : 1'b0)) u_if_fields (
                .instr(if_instr), .op(if_op), .rd(rd_r), .rs1(rs1_r), .rs2(rs2_r), .rs3(rs3_r),
                .imm17(if_imm17), .imm21(if_imm21), .imm16(if_imm16), .shamt(if_shamt),
                .argi(if_argi), .count(if_cnt), .len(if_len), .fmt(if_fmt), .illegal(if_illegal));
            reg [31:0] op_f [0:6];
            reg [32:0] loop_end_f;
            reg        is_loop_f;
            always @(posedge clk)
                if (state == ST_FETCH) begin       // the last FETCH cycle's (if_valid) is kept
                    loop_end_f <= {1'b0, pc} + {21'd0, if_len, 2'b00};
                    is_loop_f  <= (if_op == `DNPU_OP_C_LOOP) | (if_op == `DNPU_OP_C_LOOPI);
                    op_f[0] <= xa_r;
                    op_f[1] <= xb_r;
                    op_f[2] <= xc_r;
                    op_f[3] <= xd_r;
                    op_f[4] <= fa_r;
                    op_f[5] <= fb_r;
                    op_f[6] <= fd_r;
                end
            assign {xa_c, xb_c, xc_c, xd_c, fa_c, fb_c, fd_c} =
                {op_f[0], op_f[1], op_f[2], op_f[3], op_f[4], op_f[5], op_f[6]};
            assign loop_end_c = loop_end_f;
            assign is_loop_c  = is_loop_f;
            wire unused_if = &{1'b0, if_imm17, if_imm21, if_cnt, if_imm16, if_shamt,
                               if_argi, if_fmt, if_illegal, f_rs1_c, f_rs3_c[3]};
        end else begin : g_op_exec
            assign {rs1_r, rs2_r, rs3_r, rd_r} = {f_rs1_c, f_rs2_c, f_rs3_c, f_rd_c};
            assign {xa_c, xb_c, xc_c, xd_c, fa_c, fb_c, fd_c} = {xa_r, xb_r, xc_r, xd_r, fa_r, fb_r, fd_r};
            assign loop_end_c = {1'b0, pc} + {21'd0, len10_c, 2'b00};
            assign is_loop_c  = (op_c == `DNPU_OP_C_LOOP) | (op_c == `DNPU_OP_C_LOOPI);
        end
    endgenerate

    wire        lt_s_c   = $signed(xa_c) < $signed(xb_c);
    wire [31:0] saddr_c  = xa_c + imm17_c;      // S_LD/S_ST word address, mod 2^32
    wire        int_in_c = ({1'b0, saddr_c} < INT_DEPTH);
    wire        fp_in_c  = ({1'b0, saddr_c} < FP_DEPTH);

    // Vector-unit instructions (dnpu_vec): n is rs3, but rs2 for S_MAP_V_FP;
    // each base + count must fit its SRAM (dnpu.emu's order; one cause).
    localparam [31:0] VL_M1 = VLEN - 1;
    wire        op_map_c   = (op_c == `DNPU_OP_S_MAP_V_FP);
    wire [31:0] vn_c       = op_map_c ? xb_c : xc_c;
    wire        vn0_c      = (vn_c == 32'd0);
    wire [32:0] vrows_c    = ({1'b0, vn_c} + {1'b0, VL_M1}) >> LOG_VL;   // ceil(n / VLEN)
    function out_of;                                    // base + count > depth
        input [31:0] base;
        input [32:0] count;
        input [32:0] depth;
        begin
            out_of = ({2'b00, base} + {1'b0, count}) > {1'b0, depth};
        end
    endfunction
    wire [32:0] vn33_c     = {1'b0, vn_c};
    // V_TRANS has no count (rs3 is a stride): its spans' last rows base + (VLEN-1)*stride,
    // exact in 48 bits, must be inside the SRAM and the spans must not overlap.
    wire        op_tr_c    = (op_c == `DNPU_OP_V_TRANS);
    wire [47:0] tr_send_c  = {16'd0, xa_c} + ({16'd0, xb_c} << LOG_VL) - {16'd0, xb_c};
    wire [47:0] tr_dend_c  = {16'd0, xd_c} + ({16'd0, xc_c} << LOG_VL) - {16'd0, xc_c};
    wire        tr_bad_c   = (tr_send_c >= {15'd0, VR_DEPTH}) | (tr_dend_c >= {15'd0, VR_DEPTH}) |
                           (({16'd0, xa_c} <= tr_dend_c) & ({16'd0, xd_c} <= tr_send_c));
    reg         v_bad_c;                                   // SRAM_RANGE
    reg         v_op_c;                                    // a dnpu_vec instruction (not fused)
    always @* begin
        v_op_c  = 1'b1;
        v_bad_c = 1'b0;
        case (op_c)
            `DNPU_OP_V_ADD_VV, `DNPU_OP_V_SUB_VV, `DNPU_OP_V_MUL_VV, `DNPU_OP_V_AMAX_VV:
                v_bad_c = out_of(xa_c, vn33_c, VR_DEPTH) | out_of(xb_c, vn33_c, VR_DEPTH) | out_of(xd_c, vn33_c, VR_DEPTH);
            `DNPU_OP_V_ADD_VF, `DNPU_OP_V_SUB_VF, `DNPU_OP_V_MUL_VF, `DNPU_OP_V_EXP_V, `DNPU_OP_V_RECI_V,
            `DNPU_OP_V_INVPOW2_V:
                v_bad_c = out_of(xa_c, vn33_c, VR_DEPTH) | out_of(xd_c, vn33_c, VR_DEPTH);
            `DNPU_OP_V_FILL_VF:
                v_bad_c = out_of(xd_c, vn33_c, VR_DEPTH);
            `DNPU_OP_V_RED_MAX, `DNPU_OP_V_RED_SUM, `DNPU_OP_V_RED_MAX_IDX:
                v_bad_c = out_of(xa_c, vn33_c, VR_DEPTH);
            `DNPU_OP_V_TOPK_MASK, `DNPU_OP_V_THRESH_MASK:
                v_bad_c = out_of(xa_c, vn33_c, FP_DEPTH) | out_of(xd_c, vn33_c, INT_DEPTH);
            `DNPU_OP_V_TOPK_MASK_V:
                v_bad_c = out_of(xa_c, vrows_c, VR_DEPTH) | out_of(xd_c, vn33_c, INT_DEPTH);
            `DNPU_OP_V_SELECT_INT:
                v_bad_c = out_of(xa_c, vn33_c, INT_DEPTH) | out_of(xb_c, vn33_c, INT_DEPTH) | out_of(xd_c, vn33_c, INT_DEPTH);
            `DNPU_OP_S_MAP_V_FP:
                v_bad_c = out_of(xa_c, vn33_c, FP_DEPTH) | out_of(xd_c, vrows_c, VR_DEPTH);
            `DNPU_OP_V_MASK_FP:
                v_bad_c = out_of(xd_c, vn33_c, FP_DEPTH) | out_of(xa_c, vn33_c, INT_DEPTH);
            `DNPU_OP_V_TRANS:
                v_bad_c = tr_bad_c;
            default: v_op_c = 1'b0;
        endcase
    end

    // ---- loops ----------------------------------------------------------------------
    wire [31:0] loop_cnt_c  = (op_c == `DNPU_OP_C_LOOP) ? xa_c : cnt15_c;
    wire        loop_len0_c = (len10_c == 10'd0);
    wire        loop_skip_c = (loop_cnt_c == 32'd0);
    wire        loop_out_c, loop_full_c;
    wire [31:0] er_next;

    // ---- the register its retire writes --------------------------------------------
    // From the opcode alone: an instruction retires in its opcode's state (EXEC, LDW, FPU or
    // VEC), except that a vector-unit instruction with no work (n = 0) retires in EXEC and
    // writes nothing. {x written, at rs2 (else rd); f written, at rs3 (else rd); only in VEC}.
    function [4:0] writes_f;
        input [6:0] o;
        begin
            case (o)
                `DNPU_OP_S_ADDI, `DNPU_OP_S_LUI, `DNPU_OP_S_ADD, `DNPU_OP_S_SUB, `DNPU_OP_S_MUL,
                `DNPU_OP_S_MIN, `DNPU_OP_S_MAX, `DNPU_OP_S_SLT, `DNPU_OP_S_SLLI, `DNPU_OP_S_SRLI,
                `DNPU_OP_S_LD_ARG, `DNPU_OP_S_LD_INT, `DNPU_OP_S_LT_FP:
                    writes_f = 5'b10_00_0;
                `DNPU_OP_S_LI_FP, `DNPU_OP_S_SEL_FP, `DNPU_OP_S_LD_FP, `DNPU_OP_S_ADD_FP,
                `DNPU_OP_S_SUB_FP, `DNPU_OP_S_MUL_FP, `DNPU_OP_S_MAX_FP, `DNPU_OP_S_EXP_FP,
                `DNPU_OP_S_RECI_FP, `DNPU_OP_S_RSQRT_FP:
                    writes_f = 5'b00_10_0;
                `DNPU_OP_V_RED_MAX_IDX:                    writes_f = 5'b11_10_1;   // f[rd], x[rs2]
                `DNPU_OP_H_SAMPLE_FUSED:                   writes_f = 5'b10_11_1;   // x[rd], f[rs3]
                `DNPU_OP_V_RED_MAX, `DNPU_OP_V_RED_SUM:    writes_f = 5'b00_10_1;
                default:                                   writes_f = 5'b00_00_0;
            endcase
        end
    endfunction
    wire [4:0]  wr_c   = writes_f(op_c);
    wire [3:0]  wxi_c  = wr_c[3] ? f_rs2_c : f_rd_c;
    wire [2:0]  wfi_c  = wr_c[1] ? f_rs3_c[2:0] : f_rd_c[2:0];
    wire        wvec_c = wr_c[0];
    reg  [15:0] wx_c;                       // x0 is never written
    reg  [7:0]  wf_c;
    integer wi;
    always @* begin
        for (wi = 0; wi < 16; wi = wi + 1)
            wx_c[wi] = wr_c[4] & (wxi_c == wi[3:0]) & (wi != 0);
        for (wi = 0; wi < 8; wi = wi + 1)
            wf_c[wi] = wr_c[2] & (wfi_c == wi[2:0]);
    end

    // ---- what EXEC starts from: *_c, or its copy registered in DECODE ---------------
    localparam integer SA_W  = (IAW > FAW) ? IAW : FAW;      // S_LD / S_ST address bits used
    localparam integer DEC_W = 398 + SA_W + 16 + 8 + 1;
    wire [DEC_W-1:0] dec_c = {op_c, f_rd_c, f_rs2_c, f_rs3_c[2:0], imm17_c, imm21_c, imm16_c,
                              shamt_c, argi_c, illegal_c,
                              xa_c, xb_c, xc_c, xd_c, fa_c, fb_c, fd_c,
                              lt_s_c, saddr_c[SA_W-1:0], is_loop_c, loop_cnt_c, loop_end_c,
                              wx_c, wf_c, wvec_c};
    // dec_q keeps its own copy of the operands although op_f holds them too: S_MUL's
    // multiplier takes dec_q's flip-flops as its DSP input registers; fed from op_f, the
    // product ran unregistered through three DSPs into the retire (Yosys synth_xilinx).
    reg  [DEC_W-1:0] dec_q;
    wire [DEC_W-1:0] dec = (DECODE_STAGE != 0) ? dec_q : dec_c;

    wire [6:0]  op;
    wire [3:0]  f_rd, f_rs2;
    wire [2:0]  f_rs3;
    wire [31:0] imm17, imm21;
    wire [15:0] imm16;
    wire [4:0]  shamt;
    wire [2:0]  argi;
    wire        illegal;
    wire [31:0] xa, xb, xc, xd, fa, fb, fd;
    wire        lt_s, is_loop;
    wire [SA_W-1:0] saddr;
    wire [31:0] loop_cnt;
    wire [32:0] loop_end;
    wire [15:0] wx;                         // the x register written at the retire, one-hot
    wire [7:0]  wf;                         // the f register
    wire        wvec;                       // ... only by a retire in VEC
    assign {op, f_rd, f_rs2, f_rs3, imm17, imm21, imm16, shamt, argi, illegal,
            xa, xb, xc, xd, fa, fb, fd,
            lt_s, saddr, is_loop, loop_cnt, loop_end, wx, wf, wvec} = dec;

    wire        is_fused = (op == `DNPU_OP_H_SAMPLE_FUSED);
    wire        is_fn    = (op == `DNPU_OP_H_SAMPLE_FUSED_N);
    wire [31:0] prod     = xa * xb;         // the low 32 bits are all S_MUL keeps

    // The end rule applies after the retiring instruction, or at a skipped body's end
    // (DECODE_STAGE = 1: the stack registers its outcome in DECODE, from the instruction
    // being decoded).
    wire        er_skip = (DECODE_STAGE != 0) ? is_loop_c : (in_ex && is_loop);
    wire [32:0] er_e    = (DECODE_STAGE != 0) ? loop_end_c : loop_end;

    // nest_err and full are read in DECODE (or EXEC): the stack and pc are the same in both
    dnpu_loop_stack #(.DEPTH(LOOP_DEPTH), .REG_RULE(DECODE_STAGE != 0 ? 1 : 0)) u_loops (
        .clk(clk), .rst_n(rst_n), .clear(soft_reset_i | go),
        .new_end(loop_end_c), .nest_err(loop_out_c), .full(loop_full_c),
        .push(retire & w_push), .push_start(pc + 32'd4), .push_count(loop_cnt),
        .at_pc(pc), .at_skip(er_e), .skip(er_skip), .next_pc(er_next), .latch(state == ST_DEC), .step(retire & ~w_push & ~w_halt));

    // ---- scalar FP unit -------------------------------------------------------------
    wire        fpu_done, fpu_x;
    wire [31:0] fpu_f;

    dnpu_fpu #(.ADD_STAGES(ADD_STAGES), .MUL_STAGES(MUL_STAGES), .EXP_STAGES(EXP_STAGES),
               .RESULT_REGS(RESULT_REGS)) u_fpu (
        .clk(clk), .rst_n(rst_n & ~soft_reset_i), .op(op),
        .load(in_ex), .start(in_ex & ~soft_reset_i & x_fpu), .a(fa), .b(fb),
        .en(in_fpu), .done(fpu_done), .res_f(fpu_f), .res_x(fpu_x));

    // ---- SRAMs ----------------------------------------------------------------------
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

    // Vector SRAM: VEC_ROWS rows of VLEN BF16 lanes (lane i at bits 16i), one row a cycle.
    reg                  vec_we, vec_re;
    reg  [VAW-1:0]       vec_waddr, vec_raddr;
    reg  [VLEN*16-1:0]   vec_wdata;
    wire [VLEN*16-1:0]   vec_rdata;

    dnpu_sram #(.WIDTH(VLEN * 16), .DEPTH(VEC_ROWS)) u_vec_sram (
        .clk(clk), .we(vec_we), .waddr(vec_waddr), .wdata(vec_wdata),
        .re(vec_re), .raddr(vec_raddr), .rdata(vec_rdata));

    // ---- transfers and MX streams -----------------------------------------------------
    wire                   ls_retire, ls_fault, ls_load, ls_store, ls_pref, ls_vec, ls_vstart, ls_mat;
    wire [`DNPU_ERR_W-1:0] ls_cause;
    wire                   ls_done, ls_err, ls_stall_rd, fn_stop, fn_stop_win, ls_chk_wr;
    wire [31:0]            ls_chk_addr;
    wire [47:0]            ls_chk_last;
    wire [31:0]            ls_ins_addr;
    wire [47:0]            ls_ins_last;
    wire [31:0]            ls_dec_addr;
    wire                   ins_win_ok;
    wire [31:0]            fn_stop_pos;
    wire                   ls_int_we, ls_fp_we, ls_vec_we, ls_int_re, ls_fp_re, ls_vec_re;
    wire [SAW-1:0]         ls_addr;
    wire [31:0]            ls_wdata;
    wire                   ls_row_valid, vu_dq_ready, mu_w_ready;
    wire [VLEN*16-1:0]     ls_row, ls_dq;
    wire                   ls_rd_cmd_valid, ls_rd_ready;
    wire [31:0]            ls_rd_cmd_addr, ls_rd_cmd_beats, ls_wr_cmd_addr;

    dnpu_lsu #(.ADDR_W(ADDR_W), .DATA_W(DATA_W), .INT_WORDS(INT_WORDS), .FP_WORDS(FP_WORDS),
               .VLEN(VLEN), .VEC_ROWS(VEC_ROWS), .MX_BLOCK(MX_BLOCK), .MATRIX_ROWS(MATRIX_ROWS),
               .DECODE_STAGE(DECODE_STAGE), .SRAM_AW(SAW)) u_lsu (
        .clk(clk), .rst_n(rst_n), .soft_reset(soft_reset_i), .fault(xfer_fault), .flush(flush),
        // the operands straight from ir: dnpu_lsu registers its checks itself in DECODE
        .op(op_c), .fmt(mxfmt_c), .a_rd(xd_c), .a_rs1(xa_c), .a_rs2(xb_c), .a_rs3(xc_c),
        .dec(state == ST_DEC), .ex(in_ex), .ex_legal(~ir_err & ~illegal),
        .ex_retire(ls_retire), .ex_fault(ls_fault), .ex_cause(ls_cause),
        .ex_load(ls_load), .ex_store(ls_store), .ex_pref(ls_pref), .ex_vec(ls_vec),
        .ex_vstart(ls_vstart), .ex_mat(ls_mat),
        .mm_m(mm_m), .mm_n(mm_n), .mm_k(mm_k),
        .in_load(state == ST_LOAD), .in_store(state == ST_STORE), .in_pref(state == ST_PREF),
        .in_vec(in_vec), .in_mat_i(in_mat), .done(ls_done), .err(ls_err), .fn_stop(fn_stop),
        .fn_stop_pos(fn_stop_pos), .fn_stop_win(fn_stop_win), .stall_rd(ls_stall_rd),
        .chk_addr(ls_chk_addr), .chk_last(ls_chk_last), .chk_wr(ls_chk_wr), .win_ok(win_ok),
        .ins_chk_addr(ls_ins_addr), .ins_chk_last(ls_ins_last), .ins_dec_addr(ls_dec_addr),
        .ins_win_ok(ins_win_ok),
        .int_we(ls_int_we), .fp_we(ls_fp_we), .vec_we(ls_vec_we),
        .int_re(ls_int_re), .fp_re(ls_fp_re), .vec_re(ls_vec_re),
        .sram_addr(ls_addr), .sram_wdata(ls_wdata),
        .int_rdata(int_rdata), .fp_rdata(fp_rdata), .vec_rdata(vec_rdata),
        .row_valid(ls_row_valid), .dq_data(ls_dq), .row_data(ls_row), .row_ready(in_mat ? mu_w_ready : vu_dq_ready),
        .rd_cmd_valid(ls_rd_cmd_valid), .rd_cmd_ready(rd_cmd_ready), .rd_cmd_addr(ls_rd_cmd_addr),
        .rd_cmd_beats(ls_rd_cmd_beats), .rd_valid(rd_valid), .rd_data(rd_data), .rd_err(rd_err),
        .rd_ready(ls_rd_ready), .rd_abort(rd_abort),
        .wr_cmd_valid(wr_cmd_valid), .wr_cmd_ready(wr_cmd_ready), .wr_cmd_addr(ls_wr_cmd_addr),
        .wr_cmd_words(wr_cmd_words), .wr_cmd_beat(wr_cmd_beat), .wr_valid(wr_valid), .wr_data(wr_data),
        .wr_ready(wr_ready), .wr_bvalid(wr_bvalid), .wr_bdata(wr_bdata), .wr_bready(wr_bready),
        .wr_done(wr_done), .wr_err(wr_err));

    // ---- vector unit ------------------------------------------------------------------
    // Started from EXEC with the operand registers; owns the SRAM ports in VEC.
    wire                 vu_done;
    wire [31:0]          vu_res_f, vu_res_x;
    wire                 vu_vs_re, vu_vs_we, vu_is_re, vu_is_we, vu_fs_re, vu_fs_we;
    wire [VAW-1:0]       vu_vs_raddr, vu_vs_waddr;
    wire [VLEN*16-1:0]   vu_vs_wdata;
    wire [IAW-1:0]       vu_is_raddr, vu_is_waddr;
    wire [FAW-1:0]       vu_fs_raddr, vu_fs_waddr;
    wire [31:0]          vu_is_wdata, vu_fs_wdata;

    dnpu_vec #(.VLEN(VLEN), .LANES(LANES), .VEC_ROWS(VEC_ROWS), .INT_WORDS(INT_WORDS),
               .FP_WORDS(FP_WORDS), .ADD_STAGES(ADD_STAGES), .MUL_STAGES(MUL_STAGES),
               .EXP_STAGES(EXP_STAGES), .MAX_TREE(MAX_TREE), .RESULT_REGS(RESULT_REGS)) u_vec (
        .clk(clk), .rst_n(rst_n & ~soft_reset_i & ~flush),
        .start(in_ex & ~soft_reset_i & v_start), .op(op), .a_rd(xd), .a_rs1(xa), .a_rs2(xb),
        .a_rs3(xc), .f_s(fb),
        .done(vu_done), .res_f(vu_res_f), .res_x(vu_res_x),
        .vs_re(vu_vs_re), .vs_raddr(vu_vs_raddr), .vs_rdata(vec_rdata),
        .vs_we(vu_vs_we), .vs_waddr(vu_vs_waddr), .vs_wdata(vu_vs_wdata),
        .is_re(vu_is_re), .is_raddr(vu_is_raddr), .is_rdata(int_rdata),
        .is_we(vu_is_we), .is_waddr(vu_is_waddr), .is_wdata(vu_is_wdata),
        .fs_re(vu_fs_re), .fs_raddr(vu_fs_raddr), .fs_rdata(fp_rdata),
        .fs_we(vu_fs_we), .fs_waddr(vu_fs_waddr), .fs_wdata(vu_fs_wdata),
        .dq_valid(ls_row_valid), .dq_row(ls_dq), .dq_ready(vu_dq_ready),
        .stop(fn_stop), .stop_pos(fn_stop_pos));

    // ---- matrix unit ------------------------------------------------------------------
    // Started from EXEC with the shape and the operand registers; owns the vector SRAM's
    // ports in MAT; weight rows from dnpu_lsu.
    wire                 mu_done, mu_v_re, mu_v_we;
    wire [VAW-1:0]       mu_v_raddr, mu_v_waddr;
    wire [VLEN*16-1:0]   mu_v_wdata;
    localparam [VLEN*16-1:0] ROW_ZERO = 0;   // a replication this wide trips Verilator's limit

    generate
        if (MATRIX_ROWS > 0) begin : g_matrix
            wire mu_cmd_ready;
            // M_MM_ACC_F32 continues A at rd in place; M_MM_ACC_RES adds its residual in place
            wire op_macc_f32 = (op == `DNPU_OP_M_MM_ACC_F32);
            wire op_macc_res = (op == `DNPU_OP_M_MM_ACC_RES);
            wire op_mmv_res  = (op == `DNPU_OP_M_MM_V_RES);
            wire op_mmv      = (op == `DNPU_OP_M_MM_V) | op_mmv_res;
            // its PEs interleave ADD_STAGES rows, so their accumulating adder has as many stages
            dnpu_matrix #(.VLEN(VLEN), .ROWS(MATRIX_ROWS), .BLOCK(MX_BLOCK), .WBUF(MATRIX_WBUF),
                          .VEC_ROWS(VEC_ROWS), .SLOTS(ADD_STAGES)) u_matrix (
                .clk(clk), .rst_n(rst_n), .flush(soft_reset_i | flush),
                .cmd_valid(in_ex & ~soft_reset_i & x_mat), .cmd_ready(mu_cmd_ready),
                .cmd_m(mm_m), .cmd_ntiles(mm_n >> LOG_VL), .cmd_k(mm_k),
                .cmd_vx(xa[VAW-1:0]), .cmd_vd(xd[VAW-1:0]),
                .cmd_vr(op_macc_res ? xd[VAW-1:0] : xc[VAW-1:0]),
                .cmd_va(op_macc_f32 ? xd[VAW-1:0] : xc[VAW-1:0]),
                .cmd_res((op == `DNPU_OP_M_MM_RES) | op_macc_res | op_mmv_res),
                .cmd_vw(xb[VAW-1:0]), .cmd_wv(op_mmv),
                .cmd_ain(op_macc_f32 | (op == `DNPU_OP_M_MM_ACC) | op_macc_res),
                .cmd_f32((op == `DNPU_OP_M_MM_F32) | op_macc_f32),
                .w_valid(ls_row_valid & in_mat), .w_data(ls_dq), .w_ready(mu_w_ready),
                .v_re(mu_v_re), .v_raddr(mu_v_raddr), .v_rdata(vec_rdata),
                .v_we(mu_v_we), .v_waddr(mu_v_waddr), .v_wdata(mu_v_wdata),
                .done(mu_done));
            // EXEC starts it only when idle: its done came before the previous retire
            wire unused_mu = &{1'b0, mu_cmd_ready};
        end else begin : g_no_matrix
            assign mu_done    = 1'b0;
            assign mu_w_ready = 1'b0;
            assign mu_v_re    = 1'b0;
            assign mu_v_we    = 1'b0;
            assign mu_v_raddr = {VAW{1'b0}};
            assign mu_v_waddr = {VAW{1'b0}};
            assign mu_v_wdata = ROW_ZERO;
        end
    endgenerate

    // ---- execute ----------------------------------------------------------------------
    // Everything an instruction does in its EXEC cycle, as next-state values. What depends
    // on the instruction alone (k_*, from the *_c wires: which state comes next, the fault
    // and its cause, the retire) is decided apart from what dnpu_lsu decides with its
    // engines' handshakes; DECODE_STAGE = 1 registers it in DECODE with dec_q, so that
    // EXEC's engine starts and faults are that register ANDed with the LSU's answer.
    // Written as a sum of products over a one-hot class of the opcode, so that the mapping
    // has no priority chain from the opcode through every case in series.
    reg        c_halt, c_loop, c_alu, c_fpu, c_ld, c_st, c_lsu;
    always @* begin
        c_halt = 1'b0;
        c_loop = 1'b0;
        c_alu  = 1'b0;
        c_fpu  = 1'b0;
        c_ld   = 1'b0;
        c_st   = 1'b0;
        c_lsu  = 1'b0;
        case (op_c)
            `DNPU_OP_C_HALT: c_halt = 1'b1;
            `DNPU_OP_C_LOOP, `DNPU_OP_C_LOOPI: c_loop = 1'b1;
            `DNPU_OP_S_ADDI, `DNPU_OP_S_LUI, `DNPU_OP_S_ADD, `DNPU_OP_S_SUB, `DNPU_OP_S_MUL,
            `DNPU_OP_S_MIN, `DNPU_OP_S_MAX, `DNPU_OP_S_SLT, `DNPU_OP_S_SLLI, `DNPU_OP_S_SRLI,
            `DNPU_OP_S_LD_ARG, `DNPU_OP_S_LI_FP, `DNPU_OP_S_SEL_FP, `DNPU_OP_M_CFG:
                c_alu = 1'b1;                          // M_CFG: legal only with a matrix unit
            `DNPU_OP_S_ADD_FP, `DNPU_OP_S_SUB_FP, `DNPU_OP_S_MUL_FP, `DNPU_OP_S_MAX_FP,
            `DNPU_OP_S_EXP_FP, `DNPU_OP_S_RECI_FP, `DNPU_OP_S_RSQRT_FP, `DNPU_OP_S_LT_FP:
                c_fpu = 1'b1;                          // retires in FPU
            `DNPU_OP_S_LD_INT, `DNPU_OP_S_LD_FP: c_ld = 1'b1;
            `DNPU_OP_S_ST_INT, `DNPU_OP_S_ST_FP: c_st = 1'b1;
            `DNPU_OP_H_LOAD_INT, `DNPU_OP_H_LOAD_FP, `DNPU_OP_H_STORE_INT, `DNPU_OP_H_STORE_FP,
            `DNPU_OP_H_PREFETCH_V, `DNPU_OP_H_STORE_V, `DNPU_OP_H_LOAD_V, `DNPU_OP_H_STORE_MX,
            `DNPU_OP_H_SAMPLE_FUSED, `DNPU_OP_H_SAMPLE_FUSED_N,
            `DNPU_OP_M_MM, `DNPU_OP_M_MM_RES, `DNPU_OP_M_MM_F32, `DNPU_OP_M_MM_ACC_F32,
            `DNPU_OP_M_MM_ACC, `DNPU_OP_M_MM_ACC_RES, `DNPU_OP_M_MM_V, `DNPU_OP_M_MM_V_RES:
                c_lsu = 1'b1;                          // dnpu_lsu decides
            default: ;
        endcase
    end
    // C_NOP: every legal opcode of no other class
    wire c_nop  = ~(c_halt | c_loop | c_alu | c_fpu | c_ld | c_st | c_lsu | v_op_c);
    wire k_ok   = ~ir_err & ~illegal_c;
    wire sp_bad = ((op_c == `DNPU_OP_S_LD_FP) | (op_c == `DNPU_OP_S_ST_FP)) ? ~fp_in_c : ~int_in_c;
    wire lp_bad = loop_len0_c | loop_out_c | (~loop_skip_c & loop_full_c);   // LOOP_OVERFLOW
    wire v_none = vn0_c & ~op_tr_c;                    // no element: retires at once
    // Registered apart: the instruction's class (legal, by the opcode) and its three range
    // checks (loop, scalar SRAM, vector SRAM). EXEC combines them in one or two LUTs; ANDing
    // each check with its class in DECODE put the checks' adds, compares and the opcode's
    // decode on one path.
    wire k_fault0 = ir_err | illegal_c;
    wire [`DNPU_ERR_W-1:0] k_cause0 =
        ({`DNPU_ERR_W{ir_err}}                & `DNPU_ERR_AXI_READ) |
        ({`DNPU_ERR_W{~ir_err & illegal_c}}   & `DNPU_ERR_ILLEGAL_INSTR);
    wire k_done   = k_ok & (c_halt | c_alu | (v_op_c & v_none) | c_nop);   // retires in EXEC
    wire k_halt   = k_ok & c_halt;
    wire k_loop   = k_ok & c_loop;
    wire k_ld     = k_ok & c_ld;
    wire k_st     = k_ok & c_st;
    wire k_fpu    = k_ok & c_fpu;
    wire k_vec    = k_ok & v_op_c & ~v_none;
    wire k_lsu    = k_ok & c_lsu;
    localparam integer K_W = 13 + `DNPU_ERR_W;
    wire [K_W-1:0] kd_c = {k_fault0, k_cause0, k_done, k_halt, k_loop, k_ld, k_st, k_fpu, k_vec,
                           k_lsu, lp_bad, loop_skip_c, sp_bad, v_bad_c};
    reg  [K_W-1:0] kd_q;
    always @(posedge clk) begin
        if (!rst_n)
            kd_q <= {K_W{1'b0}};
        else if (state == ST_DEC)
            kd_q <= kd_c;
    end
    wire                   d_fault0, d_done, d_loop, d_ld, d_st, e_fpu, d_vec, e_lsu;
    wire                   d_lp_bad, d_skip, d_sp_bad, d_v_bad;
    wire [`DNPU_ERR_W-1:0] d_cause0;
    assign {d_fault0, d_cause0, d_done, x_halt, d_loop, d_ld, d_st, e_fpu, d_vec, e_lsu,
            d_lp_bad, d_skip, d_sp_bad, d_v_bad} = (DECODE_STAGE != 0) ? kd_q : kd_c;
    // the classes are exclusive, and none is set with d_fault0: one cause at most
    wire f_loop = d_loop & d_lp_bad;
    wire f_sram = ((d_ld | d_st) & d_sp_bad) | (d_vec & d_v_bad);
    wire                   e_fault  = d_fault0 | f_loop | f_sram;
    wire [`DNPU_ERR_W-1:0] e_cause  = d_cause0 |
        ({`DNPU_ERR_W{f_loop}} & `DNPU_ERR_LOOP_OVERFLOW) |
        ({`DNPU_ERR_W{f_sram}} & `DNPU_ERR_SRAM_RANGE);
    wire e_retire = d_done | (d_loop & ~d_lp_bad) | (d_st & ~d_sp_bad);
    assign x_push = d_loop & ~d_lp_bad & ~d_skip;
    wire e_ldw    = d_ld & ~d_sp_bad;
    wire e_vec    = d_vec & ~d_v_bad;
    always @* begin
        x_fault  = e_fault | (e_lsu & ls_fault);
        x_cause  = e_lsu ? ls_cause : e_cause;
        x_retire = e_retire | (e_lsu & ls_retire);
        x_ldw    = e_ldw;
        x_fpu    = e_fpu;
        x_load   = e_lsu & ls_load;
        x_store  = e_lsu & ls_store;
        x_pref   = e_lsu & ls_pref;
        x_vec    = e_vec | (e_lsu & ls_vec);
        x_mat    = e_lsu & ls_mat;
    end
    assign v_start = e_vec | (e_lsu & ls_vstart);

    // The register an EXEC retire writes (only with x_retire).
    always @* begin
        x_xdata  = 32'd0;
        x_fdata  = 32'd0;
        case (op)
            `DNPU_OP_S_ADDI:   begin x_xdata = xa + imm17; end
            `DNPU_OP_S_LUI:    begin x_xdata = imm21 << `DNPU_F_IMM21_LSB; end
            `DNPU_OP_S_ADD:    begin x_xdata = xa + xb; end
            `DNPU_OP_S_SUB:    begin x_xdata = xa - xb; end
            `DNPU_OP_S_MUL:    begin x_xdata = prod; end
            `DNPU_OP_S_MIN:    begin x_xdata = lt_s ? xa : xb; end
            `DNPU_OP_S_MAX:    begin x_xdata = lt_s ? xb : xa; end
            `DNPU_OP_S_SLT:    begin x_xdata = {31'd0, lt_s}; end
            `DNPU_OP_S_SLLI:   begin x_xdata = xa << shamt; end
            `DNPU_OP_S_SRLI:   begin x_xdata = xa >> shamt; end
            `DNPU_OP_S_LD_ARG: begin x_xdata = args_i[{argi, 5'd0} +: 32]; end
            `DNPU_OP_S_LI_FP:  begin x_fdata = {imm16, 16'd0}; end
            `DNPU_OP_S_SEL_FP: begin x_fdata = (xc != 32'd0) ? fa : fb; end
            default: ;
        endcase
    end

    // ---- retire / fault of the current instruction, whichever state ends it ----------
    always @* begin
        retire = 1'b0;
        fault  = 1'b0;
        cause  = `DNPU_ERR_NONE;
        case (state)
            ST_FETCH: begin                                // misaligned only via PROG_BASE
                fault = (pc[1:0] != 2'b00) | if_win_fault;
                cause = (pc[1:0] != 2'b00) ? `DNPU_ERR_MISALIGNED : `DNPU_ERR_WINDOW;
            end
            ST_EXEC: begin
                retire = x_retire;
                fault  = x_fault;
                cause  = x_cause;
            end
            ST_LDW:  retire = 1'b1;
            ST_FPU:  retire = fpu_done;
            ST_LOAD, ST_PREF: if (ls_err) begin
                fault = 1'b1;
                cause = `DNPU_ERR_AXI_READ;
            end else begin
                retire = ls_done;
            end
            ST_STORE: if (ls_err) begin
                fault = 1'b1;
                cause = `DNPU_ERR_AXI_WRITE;
            end else begin
                retire = ls_done;
            end
            ST_MAT: if (ls_err) begin                     // a weight stream's error beat
                fault = 1'b1;
                cause = `DNPU_ERR_AXI_READ;
            end else begin
                retire = mu_done;
            end
            ST_VEC: if (ls_err) begin                     // an H_SAMPLE_FUSED error beat
                fault = 1'b1;
                cause = `DNPU_ERR_AXI_READ;
            end else if (is_fn & fn_stop) begin          // positions before fn_stop_pos written
                fault = vu_done;
                cause = fn_stop_win ? `DNPU_ERR_WINDOW : `DNPU_ERR_AXI_READ;
            end else begin
                retire = vu_done;
            end
            default: ;
        endcase
        if (soft_reset_i) begin
            retire = 1'b0;
            fault  = 1'b0;
        end
    end

    // A transfer's fault: dnpu_lsu's error (raised only in LOAD, STORE, PREF, VEC and MAT)
    // or H_SAMPLE_FUSED_N's stop. It alone aborts the read engine and flushes the units:
    // FETCH's and EXEC's faults come before the instruction's first command, with the
    // engines and units idle (see dnpu_lsu), so the lookup and the checks do not reach them.
    wire xfer_fault = ~soft_reset_i & (ls_err | (in_vec & is_fn & fn_stop & vu_done));

    // Register written at retire (writes_f, selects registered with the instruction): EXEC's,
    // LDW's SRAM data, FPU's result, or VEC's.
    wire        w_here  = ~wvec | in_vec;
    wire [15:0] w_xsel  = wx & {16{w_here}};
    wire [7:0]  w_fsel  = wf & {8{w_here}};
    wire [31:0] w_xdata = in_ldw ? int_rdata  : (in_fpu ? {31'd0, fpu_x} : (in_vec ? vu_res_x : x_xdata));
    wire [31:0] w_fdata = in_ldw ? fp_rdata   : (in_fpu ? fpu_f : (in_vec ? vu_res_f : x_fdata));
    wire [3:0]  w_xidx  = (op == `DNPU_OP_V_RED_MAX_IDX) ? f_rs2 : f_rd;   // the trace's
    wire [2:0]  w_fidx  = is_fused ? f_rs3 : f_rd[2:0];
    wire [31:0] next_pc = w_push ? pc + 32'd4 : er_next;

    // ---- SRAM ports: the scalar loads and stores in EXEC, dnpu_lsu, dnpu_vec ---------
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
        vec_waddr  = ls_addr[VAW-1:0];
        vec_raddr  = ls_addr[VAW-1:0];
        vec_wdata  = ls_row;
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
            ST_LOAD, ST_STORE, ST_PREF: begin
                int_we     = ls_int_we;
                fp_we      = ls_fp_we;
                vec_we     = ls_vec_we;
                int_re     = ls_int_re;
                fp_re      = ls_fp_re;
                vec_re     = ls_vec_re;
                int_waddr  = ls_addr[IAW-1:0];
                fp_waddr   = ls_addr[FAW-1:0];
                int_raddr  = ls_addr[IAW-1:0];
                fp_raddr   = ls_addr[FAW-1:0];
                sram_wdata = ls_wdata;
            end
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
            ST_MAT: begin
                vec_re     = mu_v_re;
                vec_raddr  = mu_v_raddr;
                vec_we     = mu_v_we & ~soft_reset_i;
                vec_waddr  = mu_v_waddr;
                vec_wdata  = mu_v_wdata;
            end
            default: ;
        endcase
    end
    assign fp_wdata = in_vec ? vu_fs_wdata : sram_wdata;

    // ---- memory windows: the access about to be issued ---------------------------------
    localparam integer LOG_BB = $clog2(DATA_W / 8);
    localparam [31:0]  LINE_M1 = 4 * FETCH_WORDS - 1;   // a line fill's address is aligned
    wire        chk_fetch = (state == ST_FETCH);
    wire        win_fetch = (DECODE_STAGE == 0) && chk_fetch;   // else u_line_window's
    wire [31:0] chk_addr  = win_fetch ? if_cmd_addr : ls_chk_addr;
    // (DECODE_STAGE = 1: it checks H_SAMPLE_FUSED_N's streams alone, reads)
    wire [2:0]  chk_need  = win_fetch ? (3'd1 << `DNPU_CSR_WIN_PERM_X_BIT) :
                            ((ls_chk_wr && DECODE_STAGE == 0) ? (3'd1 << `DNPU_CSR_WIN_PERM_W_BIT) :
                                                                (3'd1 << `DNPU_CSR_WIN_PERM_R_BIT));

    localparam integer NW = `DNPU_CSR_WIN_BASE_COUNT;
    wire [NW-1:0] win_first;
    dnpu_window #(.N(NW), .LOG_BB(LOG_BB)) u_window (
        .base(win_base_i), .limit(win_limit_i), .perm(win_perm_i), .addr(chk_addr),
        .last_x(win_fetch ? {16'd0, if_cmd_addr | LINE_M1} : ls_chk_last), .need(chk_need),
        .pre({NW{1'b0}}), .first(win_first), .ok(win_ok));

    // DECODE_STAGE = 1: the instruction's access (registered in DECODE) has a checker of its
    // own, so that the line fills' and the streams' checks do not wait for its sizes, and
    // so has the line fill (an aligned line: no adder, and no select by state ahead of the
    // fetch's fault and the read engine's command). The half of the access's check that
    // needs only its first byte is made in DECODE (u_ins_first) and registered, so that
    // EXEC's decision waits for the limits' compares alone.
    generate
        if (DECODE_STAGE != 0) begin : g_ins_window
            // the permission it needs, from ir's operation: registered with the access
            wire [2:0] dec_need = ls_chk_wr ? (3'd1 << `DNPU_CSR_WIN_PERM_W_BIT)
                                            : (3'd1 << `DNPU_CSR_WIN_PERM_R_BIT);
            reg  [2:0] ins_need_q;
            wire [NW-1:0] dec_first, line_first, ins_first;
            reg  [NW-1:0] ins_first_q;
            always @(posedge clk)
                if (state == ST_DEC) begin
                    ins_need_q  <= dec_need;
                    ins_first_q <= dec_first;
                end
            dnpu_window #(.N(NW), .LOG_BB(LOG_BB), .SPAN(4 * FETCH_WORDS)) u_line_window (
                .base(win_base_i), .limit(win_limit_i), .perm(win_perm_i), .addr(if_cmd_addr),
                .last_x(48'd0), .need(3'd1 << `DNPU_CSR_WIN_PERM_X_BIT),
                .pre({NW{1'b0}}), .first(line_first), .ok(if_win_ok));
            wire dec_ok;
            dnpu_window #(.N(NW), .LOG_BB(LOG_BB)) u_ins_first (
                .base(win_base_i), .limit(win_limit_i), .perm(win_perm_i), .addr(ls_dec_addr),
                .last_x(48'd0), .need(dec_need), .pre({NW{1'b0}}), .first(dec_first), .ok(dec_ok));
            dnpu_window #(.N(NW), .LOG_BB(LOG_BB), .PRE(1)) u_ins_window (
                .base(win_base_i), .limit(win_limit_i), .perm(win_perm_i), .addr(ls_ins_addr),
                .last_x(ls_ins_last), .need(ins_need_q), .pre(ins_first_q), .first(ins_first),
                .ok(ins_win_ok));
            wire unused_first = &{1'b0, line_first, ins_first, dec_ok};
        end else begin : g_one_window
            assign ins_win_ok = win_ok;
            assign if_win_ok  = win_ok;
            wire unused_ins = &{1'b0, ls_ins_last, ls_dec_addr};
        end
    endgenerate
    wire unused_wfirst = &{1'b0, win_first};

    // ---- engine commands: line fills (FETCH) and dnpu_lsu's (EXEC, VEC) ---------------
    // A 32-bit byte address on the AXI address bus (ADDR_W >= 32). A function, not a
    // replication: {(ADDR_W-32){..}} would be zero-width, illegal in Verilog-2005.
    function [ADDR_W-1:0] axi_addr;
        input [31:0] a;
        begin
            axi_addr = {ADDR_W{1'b0}};
            axi_addr[31:0] = a;
        end
    endfunction

    assign rd_cmd_valid = if_cmd_valid | ls_rd_cmd_valid;
    // FETCH's commands are the line fills, every other state's dnpu_lsu's (chosen by state,
    // not by the fill's valid, so that the lookup is not ahead of the engine's counters)
    assign rd_cmd_addr  = axi_addr(chk_fetch ? if_cmd_addr : ls_rd_cmd_addr);
    assign rd_cmd_beats = chk_fetch ? if_cmd_beats : ls_rd_cmd_beats;
    assign rd_cmd_id    = chk_fetch ? ID_FETCH : ID_DATA;
    assign rd_ready     = if_s_ready | ls_rd_ready;
    assign wr_cmd_addr  = axi_addr(ls_wr_cmd_addr);
    assign wr_cmd_id    = ID_DATA;
    assign wr_abort     = soft_reset_i;

    // ERR_ADDR on a fault: the access's first byte on WINDOW, else 0. In FETCH the fault is
    // WINDOW unless PC is misaligned; the choice leaves the lookup out of it.
    wire [31:0] err_addr_d = chk_fetch ? ((pc[1:0] == 2'b00) ? pc : 32'd0) :
                             ((cause == `DNPU_ERR_WINDOW) ?
                              (((DECODE_STAGE != 0) && !in_vec) ? ls_ins_addr : ls_chk_addr) : 32'd0);

    // ---- state ------------------------------------------------------------------------
    integer i;
    always @(posedge clk) begin
        if (!rst_n) begin
            state       <= ST_IDLE;
            pc          <= 32'd0;
            ir          <= 32'd0;
            ir_err      <= 1'b0;
            flush       <= 1'b0;
            done_o      <= 1'b0;
            error_o     <= 1'b0;
            err_cause_o <= `DNPU_ERR_NONE;
            err_pc_o    <= 32'd0;
            err_addr_o  <= 32'd0;
            for (i = 0; i < 16; i = i + 1) xr[i] <= 32'd0;
            for (i = 0; i < 8; i = i + 1)  fr[i] <= 32'd0;
        end else begin
            flush <= soft_reset_i | xfer_fault | (in_ex & x_fault);
            case (state)
                // ir loads in every FETCH cycle, the one with the word last, so that the
                // lookup reaches only the state
                ST_FETCH: begin
                    ir     <= if_instr;
                    ir_err <= if_err;
                    if (if_valid)
                        state <= (DECODE_STAGE != 0) ? ST_DEC : ST_EXEC;
                end
                ST_DEC: state <= ST_EXEC;
                ST_EXEC: begin
                    if (x_ldw)   state <= ST_LDW;
                    if (x_fpu)   state <= ST_FPU;
                    if (x_load)  state <= ST_LOAD;
                    if (x_store) state <= ST_STORE;
                    if (x_pref)  state <= ST_PREF;
                    if (x_vec)   state <= ST_VEC;
                    if (x_mat)   state <= ST_MAT;
                end
                default: ;
            endcase

            if (retire) begin
                for (i = 1; i < 16; i = i + 1)
                    if (w_xsel[i]) xr[i] <= w_xdata;
                for (i = 0; i < 8; i = i + 1)
                    if (w_fsel[i]) fr[i] <= w_fdata;
                if (w_halt) begin
                    state  <= ST_IDLE;
                    done_o <= 1'b1;
                end else begin
                    state <= ST_FETCH;
                    pc    <= next_pc;
                end
            end
            if (fault) begin
                state       <= ST_IDLE;
                error_o     <= 1'b1;
                err_cause_o <= cause;
                err_pc_o    <= pc;
                err_addr_o  <= err_addr_d;
            end

            // -- host control
            if (soft_reset_i) begin
                state       <= ST_IDLE;
                pc          <= 32'd0;
                done_o      <= 1'b0;
                error_o     <= 1'b0;
                err_cause_o <= `DNPU_ERR_NONE;
                err_pc_o    <= 32'd0;
                err_addr_o  <= 32'd0;
                for (i = 0; i < 16; i = i + 1) xr[i] <= 32'd0;
                for (i = 0; i < 8; i = i + 1)  fr[i] <= 32'd0;
            end
            if (go) begin
                state       <= ST_FETCH;
                pc          <= prog_base_i;
                done_o      <= 1'b0;
                error_o     <= 1'b0;
                err_cause_o <= `DNPU_ERR_NONE;
                err_pc_o    <= 32'd0;
                err_addr_o  <= 32'd0;
            end
        end
    end

    generate
        if (MATRIX_ROWS > 0) begin : g_shape
            reg [31:0] m_q, n_q, k_q;
            always @(posedge clk)
                if (!rst_n || soft_reset_i) begin
                    m_q <= 32'd0;
                    n_q <= 32'd0;
                    k_q <= 32'd0;
                end else if (retire && in_ex && op == `DNPU_OP_M_CFG) begin
                    m_q <= xa;
                    n_q <= xb;
                    k_q <= xc;
                end
            assign mm_m = m_q;
            assign mm_n = n_q;
            assign mm_k = k_q;
        end else begin : g_no_shape
            assign mm_m = 32'd0;
            assign mm_n = 32'd0;
            assign mm_k = 32'd0;
        end
    endgenerate

    always @(posedge clk) begin
        if (!rst_n)
            dec_q <= {DEC_W{1'b0}};
        else if (state == ST_DEC)
            dec_q <= dec_c;
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
            stall_fetch_o  <= if_stall;
            stall_mem_rd_o <= ~soft_reset_i & ls_stall_rd;
            stall_mem_wr_o <= ~soft_reset_i & (state == ST_STORE) & wr_stall;
            retire_valid   <= retire;
            sram_write     <= int_we | fp_we | vec_we;
        end
        retire_x_we   <= retire & (|w_xsel);
        retire_f_we   <= retire & (|w_fsel);
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

endmodule

`default_nettype wire
