`default_nettype none
// dnpu_lsu: the transfers between external memory and the SRAMs, and the sequencing of
// the MX streams. For the instruction the core executes it makes the checks (the
// emulator's order, EXECUTION.md), raises the read / write engine commands and says when
// the transfer is complete or failed; the core owns the state machine (LOAD, STORE, PREF,
// VEC), the SRAMs and the register file, and keeps the instruction and its operand
// registers unchanged until it ends.
//
// H_LOAD_INT / H_LOAD_FP (LOAD): SRAM base in rd, byte address in rs1, words in rs2.
// The read engine delivers whole beats, dnpu_beat_unpack cuts them into words, one
// SRAM write a cycle (the int and FP SRAMs are 32 bits wide); retires with the last word.
// H_STORE_INT / H_STORE_FP (STORE): one SRAM read a cycle into the write engine, whose
// data path waits on the SRAM's read register (its hold is a one-entry buffer); retires
// when every B response is in. Checks: n = 0 retires with no check, MISALIGNED (rs1 not a
// word address), SRAM_RANGE, then a range past the top of the address space: it would
// wrap on the bus and no slave answers it, so it faults AXI_READ / AXI_WRITE like an
// unmapped range (the emulator's memory ends there too), without a transaction.
//
// H_PREFETCH_V (PREF): vector SRAM row base in rd, byte address in rs1, rows in rs2.
// Checks: n = 0; MISALIGNED (address a multiple of max(16, beat bytes), n*VLEN a whole
// number of MX blocks); a stream past the top of the address space (AXI_READ: known
// from the operands, so before SRAM_RANGE, as EXECUTION.md and dnpu.emu order them);
// SRAM_RANGE. An unmapped stream is found only by reading it (AXI_READ after the range
// check). Then the read engine gets exactly the beats the stream needs (the dequantizer's
// contract, dnpu_mx_size.vh) and the dequantizer its command, in the same cycle; beats go
// straight from the engine into the dequantizer and rows out of it into the vector SRAM,
// one a cycle; it retires on the dequantizer's done. An error beat faults AXI_READ (rows
// before it may be written: unspecified).
// H_STORE_V (STORE): H_STORE_*'s checks, the range in the vector SRAM; rows go out as
// BF16 words (two lanes a word, lane 0 in the low half), VLEN/2 words a row, one word
// a cycle.
// H_STORE_MX (STORE): H_PREFETCH_V's checks in a store's order (n = 0, MISALIGNED,
// SRAM_RANGE, then a stream past the top of the address space, AXI_WRITE: a store knows
// nothing is written before its range checks). Then the write engine (beat input, the
// stream's mx_need_bytes) and the quantizer take their commands in the same cycle; rows
// are read out of the vector SRAM as H_STORE_V's, a whole row at a time, into the
// quantizer, whose beats go straight to the engine, one a cycle. Retires when every B
// response is in, as every store.
// H_LOAD_V (LOAD): the mirror of H_STORE_V: H_LOAD_*'s checks and path, with the range
// in the vector SRAM and n*VLEN/2 words; the unpacked words shift into a row register
// (the vector SRAM is written a whole row at a time) and each row's last word writes it,
// so a row costs VLEN/2 cycles; retires with the last row. An error beat faults
// AXI_READ as for H_LOAD_* (rows before it are written).
// H_SAMPLE_FUSED (VEC): H_PREFETCH_V's checks and stream, no SRAM range; the rows go to
// the vector unit instead (row_valid / row_ready).
//
// H_SAMPLE_FUSED_N (VEC): in EXEC: n = 0 or count = 0 retires with no check, MISALIGNED
// (position 0's stream; the stride between positions, mx.packed_nbytes of n*VLEN
// elements, is a multiple of 64, so every position's alignment is the same), SRAM_RANGE
// (dst + count past the int or the FP SRAM); then the vector unit starts. In VEC one read
// command per position is issued as soon as the read engine takes it (dnpu_axi_rd queues
// a command once the previous one's bursts are issued, so the latency is paid once) and
// one dequantizer command per position as soon as the dequantizer is idle. A position
// whose stream runs past the top of the address space (found when its command is due: no
// command is issued) or whose beat comes with an AXI error (the engine is aborted at
// once) sets fn_stop at that position; the vector unit finishes and writes every position
// before it, then the core faults AXI_READ.
//
// M_MM* (MAT; matrix profiles only): shape M, N, K from M_CFG (mm_m, mm_n,
// mm_k), output rows at rd, activations at rs1, weights at rs2, residual at rs3. In EXEC
// (EXECUTION.md "The matrix unit"): M, N or K = 0 retires with no check; MISALIGNED (N
// not a multiple of VLEN, K not of max(VLEN, BLOCK), the weight address not an MX stream
// start); AXI_READ if the last tile's whole beats run past the top of the address space;
// SRAM_RANGE (X, Y, R, A outside the vector SRAM, Y overlapping X, R overlapping Y without
// being Y, M_MM_ACC(_RES)'s Y overlapping its A at rs3; the FP32 variants' Y is two rows
// per VLEN outputs). Then MAT streams G = ceil(M / MATRIX_ROWS) passes over the N / VLEN weight
// tiles (tile j at rs2 + j * packed_nbytes(VLEN*K)), one read command and one dequantizer
// command of K rows per tile, H_SAMPLE_FUSED_N's pipelining; the rows go to the matrix
// unit (row_valid / row_ready). An error beat faults AXI_READ at once (err).
// M_MM_V / M_MM_V_RES (MAT): W [N, K] BF16 at rs2 in the vector SRAM, N*K/VLEN rows, which
// the matrix unit reads itself: no stream, no dequantizer command. The checks are M_MM's
// without the weight address's alignment and AXI_READ, and SRAM_RANGE for W outside the
// SRAM or overlapping Y (W = nt rows of K: the stream end's multiplier with stride K).
//
// Memory windows (EXECUTION.md): chk_addr / chk_last / chk_wr describe the instruction's
// access, the core's dnpu_window answers win_ok. In EXEC the window is the last check
// before the access starts (every operand check passed), so a faulting instruction issues
// nothing: one command covers the instruction's bytes, M_MM*'s check covers every weight
// tile at once. H_SAMPLE_FUSED_N checks each position's stream when its command is due,
// after the top of the address space, as that check (fn_stop_win says which it was).
//
// DECODE_STAGE = 1 (the core's DECODE): the operands are valid from DECODE on and do not
// change until the instruction ends, so DECODE registers what EXEC's decision reads (the
// operation's class, every check's outcome, the access's first and last byte) and EXEC
// decides from those registers, a window check of that access and the engines' handshakes.
// The window check's answer is registered too: an instruction with an access spends a
// second cycle in EXEC, and decides there.
//
// A fault in a transfer's state (LOAD, STORE, PREF, VEC, MAT) or SOFT_RESET aborts the
// read engine at once and resets the dequantizer the cycle after (flush, from the core,
// which resets the vector unit with it); the engines finish the AXI bursts already
// issued on their own. A fault in FETCH or EXEC needs neither: it comes before the
// instruction's first command, and every instruction before it retired only once its
// transfer was complete. The vector unit's start (ex_vstart) does not wait for the window
// check, so that the window's compares do not run into it: a fault in EXEC flushes the
// vector unit (and the idle dequantizer) the cycle after as well.

`include "dnpu_isa.vh"
`include "dnpu_csr.vh"

module dnpu_lsu #(
    parameter integer ADDR_W    = 32,
    parameter integer DATA_W    = 128,
    parameter integer INT_WORDS = 2048,
    parameter integer FP_WORDS  = 1024,
    parameter integer VLEN      = 16,
    parameter integer VEC_ROWS  = 1024,
    parameter integer MX_BLOCK  = 32,
    parameter integer MATRIX_ROWS = 0,     // the matrix unit's rows (a power of two); 0 = none
    parameter integer DECODE_STAGE = 0,    // 1: the checks are registered in the core's DECODE
    // SRAM word / row address bits, of the deepest SRAM (derived: not to be set otherwise)
    parameter integer SRAM_AW   = $clog2((INT_WORDS > FP_WORDS ? INT_WORDS : FP_WORDS) > VEC_ROWS ?
                                         (INT_WORDS > FP_WORDS ? INT_WORDS : FP_WORDS) : VEC_ROWS)
) (
    input  wire                    clk,
    input  wire                    rst_n,
    input  wire                    soft_reset,
    input  wire                    fault,        // the core faults in a transfer's state this cycle
    input  wire                    flush,        // the cycle after that or SOFT_RESET

    // the instruction and its operands x[rd], x[rs1], x[rs2], x[rs3]
    input  wire [6:0]              op,
    input  wire [2:0]              fmt,
    input  wire [31:0]             a_rd,
    input  wire [31:0]             a_rs1,
    input  wire [31:0]             a_rs2,
    input  wire [31:0]             a_rs3,

    // EXEC: what the instruction does this cycle (ex_*: for the core's execute step)
    input  wire                    dec,          // the core is in DECODE (DECODE_STAGE = 1)
    input  wire                    ex,           // the core is in EXEC
    input  wire                    ex_legal,     // ... with no fetch error and no ILLEGAL_INSTR
    output reg                     ex_retire,    // n = 0: retires without an access
    output reg                     ex_fault,
    output reg  [`DNPU_ERR_W-1:0]  ex_cause,
    output reg                     ex_load,      // the transfer starts: LOAD / STORE / PREF / VEC next
    output reg                     ex_store,
    output reg                     ex_pref,
    output reg                     ex_vec,
    output reg                     ex_vstart,    // ex_vec before the window check: the vector
                                                 // unit's start (a WINDOW fault flushes it)
    output reg                     ex_mat,       // M_MM / M_MM_RES: MAT next

    // the matrix unit's shape (M_CFG)
    input  wire [31:0]             mm_m,
    input  wire [31:0]             mm_n,
    input  wire [31:0]             mm_k,

    // the transfer's state in the core
    input  wire                    in_load,
    input  wire                    in_store,
    input  wire                    in_pref,
    input  wire                    in_vec,
    input  wire                    in_mat_i,
    output wire                    done,         // LOAD / STORE / PREF: complete, retire
    output wire                    err,          // LOAD / PREF / H_SAMPLE_FUSED / MAT: AXI_READ; STORE: AXI_WRITE
    output reg                     fn_stop,      // H_SAMPLE_FUSED_N: position fn_stop_pos faulted AXI_READ
    output reg  [31:0]             fn_stop_pos,
    output reg                     fn_stop_win,  // ... outside the memory windows (WINDOW)

    // the access to check against the memory windows, and the answer (dnpu_window)
    output wire [31:0]             chk_addr,
    output wire [47:0]             chk_last,     // the access's last byte
    output wire                    chk_wr,
    input  wire                    win_ok,
    // DECODE_STAGE = 1: the instruction's access (registered in DECODE) has a window of its
    // own, read in EXEC, and chk_addr / chk_last are H_SAMPLE_FUSED_N's streams only
    output wire [31:0]             ins_chk_addr,
    output wire [47:0]             ins_chk_last,
    output wire [31:0]             ins_dec_addr, // its first byte in DECODE (not registered)
    input  wire                    ins_win_ok,
    output wire                    stall_rd,     // counter strobe: LOAD / PREF waits for read data

    // SRAM requests: LOAD writes words (H_LOAD_V: rows), PREF rows, STORE reads words or rows
    output wire                    int_we,
    output wire                    fp_we,
    output wire                    vec_we,
    output wire                    int_re,
    output wire                    fp_re,
    output wire                    vec_re,
    output wire [SRAM_AW-1:0]      sram_addr,
    output wire [31:0]             sram_wdata,
    input  wire [31:0]             int_rdata,
    input  wire [31:0]             fp_rdata,
    input  wire [VLEN*16-1:0]      vec_rdata,

    // dequantized rows: to the vector unit in VEC, to the matrix unit in MAT (dq_data, the
    // dequantizer's output register, so that no select by state lies on their way); row_data
    // is the vector SRAM's write data: PREF's rows, and in LOAD H_LOAD_V's row
    output wire                    row_valid,
    output wire [VLEN*16-1:0]      dq_data,
    output wire [VLEN*16-1:0]      row_data,
    input  wire                    row_ready,

    // read engine (dnpu_axi_rd; the core arbitrates its command with dnpu_fetch)
    output wire                    rd_cmd_valid,
    input  wire                    rd_cmd_ready,
    output wire [31:0]             rd_cmd_addr,
    output wire [31:0]             rd_cmd_beats,
    input  wire                    rd_valid,
    input  wire [DATA_W-1:0]       rd_data,
    input  wire                    rd_err,
    output wire                    rd_ready,
    output wire                    rd_abort,

    // write engine (dnpu_axi_wr)
    output wire                    wr_cmd_valid,
    input  wire                    wr_cmd_ready,
    output wire [31:0]             wr_cmd_addr,
    output wire [31:0]             wr_cmd_words,
    output wire                    wr_cmd_beat,  // H_STORE_MX: the data are the quantizer's beats
    output wire                    wr_valid,
    output wire [31:0]             wr_data,
    input  wire                    wr_ready,
    output wire                    wr_bvalid,
    output wire [DATA_W-1:0]       wr_bdata,
    input  wire                    wr_bready,
    input  wire                    wr_done,
    input  wire                    wr_err
);
    localparam integer BB       = DATA_W / 8;             // bytes per beat
    localparam integer LOG_BB   = $clog2(BB);
    localparam integer WPB      = DATA_W / 32;            // words per beat
    localparam integer LOG_WPB  = $clog2(WPB);
    localparam integer LOG_VL   = $clog2(VLEN);
    localparam integer LOG_BLK  = $clog2(MX_BLOCK);
    localparam integer MXA      = (BB > 16) ? BB : 16;    // MX stream alignment, bytes
    localparam integer LOG_MXA  = $clog2(MXA);
    // n*VLEN a multiple of the block: n a multiple of BLOCK/VLEN when VLEN < BLOCK.
    localparam integer RALN     = (VLEN < MX_BLOCK) ? (LOG_BLK - LOG_VL) : 0;
    localparam [31:0]  RALN_M   = (32'd1 << RALN) - 32'd1;
    localparam [31:0]  INT_D32  = INT_WORDS;
    localparam [31:0]  FP_D32   = FP_WORDS;
    localparam [31:0]  VR_D32   = VEC_ROWS;
    localparam [32:0]  INT_DEPTH = {1'b0, INT_D32};
    localparam [32:0]  FP_DEPTH  = {1'b0, FP_D32};
    localparam [32:0]  VR_DEPTH  = {1'b0, VR_D32};
    // One byte past the top of the AXI address space, in 35 bits (0 = beyond).
    localparam [34:0]  ADDR_TOP  = (ADDR_W >= 35) ? 35'd0 : (35'd1 << ADDR_W);
    localparam integer TOP_SH    = (ADDR_W >= 35) ? 35 : ADDR_W;   // a byte at or past ADDR_TOP
    localparam [31:0]  VW_LAST   = VLEN / 2 - 1;          // H_STORE_V: last word of a row

    wire op_hload  = (op == `DNPU_OP_H_LOAD_INT)  | (op == `DNPU_OP_H_LOAD_FP);
    wire op_hstore = (op == `DNPU_OP_H_STORE_INT) | (op == `DNPU_OP_H_STORE_FP);
    wire op_loadv  = (op == `DNPU_OP_H_LOAD_V);
    wire op_pref   = (op == `DNPU_OP_H_PREFETCH_V);
    wire op_storev = (op == `DNPU_OP_H_STORE_V);
    wire op_smx    = (op == `DNPU_OP_H_STORE_MX);
    wire op_fused  = (op == `DNPU_OP_H_SAMPLE_FUSED);
    wire op_fn     = (op == `DNPU_OP_H_SAMPLE_FUSED_N);
    wire h_is_fp   = (op == `DNPU_OP_H_LOAD_FP) | (op == `DNPU_OP_H_STORE_FP);
    wire op_mmv    = (op == `DNPU_OP_M_MM_V) | (op == `DNPU_OP_M_MM_V_RES);   // W from vector SRAM
    wire op_mres   = (op == `DNPU_OP_M_MM_RES) | (op == `DNPU_OP_M_MM_V_RES);
    wire op_mf32   = (op == `DNPU_OP_M_MM_F32) | (op == `DNPU_OP_M_MM_ACC_F32);   // FP32 rows out
    wire op_macc   = (op == `DNPU_OP_M_MM_ACC) | (op == `DNPU_OP_M_MM_ACC_RES);   // reads A at rs3
    // Without a matrix unit the M_MM* opcodes are ILLEGAL_INSTR and MAT is never entered:
    // constants, so that synthesis keeps none of M_MM's sizes and streams.
    localparam         MM_ON   = (MATRIX_ROWS > 0);
    wire op_mm     = ((op == `DNPU_OP_M_MM) | op_mres | op_mf32 | op_macc | op_mmv) & MM_ON;
    wire in_mat    = in_mat_i & MM_ON;

    // ---- checks and sizes ------------------------------------------------------------
    // Sizes past the range checks are used only once those passed (n <= the SRAM's
    // depth), and 48 bits never overflow before that.
`include "dnpu_mx_size.vh"
    wire        h_n0     = (a_rs2 == 32'd0);
    wire        h_misal  = (a_rs1[1:0] != 2'b00);
    wire [32:0] h_end    = {1'b0, a_rd} + {1'b0, a_rs2};
    wire        h_range  = h_end > (h_is_fp ? FP_DEPTH : INT_DEPTH);
    // an access's last byte: its end less one, added from the address less one so that no
    // subtractor follows the sizes (mod 2^48: exact, as every checked access has a byte).
    // It runs past the top of the address space when a bit at or above TOP_SH is set: no
    // compare follows the adder.
    function past_top(input [47:0] last);
        past_top = (ADDR_TOP != 35'd0) && ((last >> TOP_SH) != 48'd0);
    endfunction
    wire [47:0] am1      = {16'd0, a_rs1} - 48'd1;
    wire [47:0] h_last   = am1 + {14'd0, a_rs2, 2'b00};
    wire        h_past   = past_top(h_last);
    wire [31:0] h_lane0  = {{(32-LOG_WPB){1'b0}}, a_rs1[LOG_BB-1:2]};

    wire        v_range  = h_end > VR_DEPTH;
    wire        p_misal  = (a_rs1[LOG_MXA-1:0] != {LOG_MXA{1'b0}}) | ((a_rs2 & RALN_M) != 32'd0);
    wire [47:0] p_elems  = {16'd0, a_rs2} << LOG_VL;      // n*VLEN
    wire [47:0] p_beats  = mx_need_beats(fmt, p_elems, LOG_BLK, LOG_BB);
    wire [47:0] p_bytes  = mx_need_bytes(fmt, p_elems, LOG_BLK);     // H_STORE_MX writes these
    wire [47:0] p_last   = am1 + (p_beats << LOG_BB);
    wire        p_past   = past_top(p_last);
    wire [47:0] sv_last  = am1 + (p_elems << 1);             // H_STORE_V: 2 bytes a lane
    wire        sv_past  = past_top(sv_last);
    wire [31:0] sv_words = p_elems[32:1];                     // n*VLEN/2
    wire [31:0] ld_words = op_loadv ? sv_words : a_rs2;       // LOAD: words to read
    wire [31:0] h_beats  = ((h_lane0 + ld_words - 32'd1) >> LOG_WPB) + 32'd1;
    wire [32:0] fn_end   = {1'b0, a_rd} + {1'b0, a_rs3};
    wire        fn_range = (fn_end > INT_DEPTH) | (fn_end > FP_DEPTH);

    // M_MM: shape, weight stream and vector-SRAM ranges (products in 64 bits: M, N, K are
    // any 32-bit values until the range check has passed).
    localparam integer LOG_KM = (LOG_VL > LOG_BLK) ? LOG_VL : LOG_BLK;   // K: max(VLEN, BLOCK)
    localparam integer LOG_MR = (MATRIX_ROWS > 1) ? $clog2(MATRIX_ROWS) : 0;
    localparam [31:0]  MR_M1  = (MATRIX_ROWS > 1) ? MATRIX_ROWS - 1 : 0;
    wire        mm_zero  = (mm_m == 32'd0) | (mm_n == 32'd0) | (mm_k == 32'd0);
    wire [31:0] mm_nt    = mm_n >> LOG_VL;                            // weight tiles
    wire [31:0] mm_groups = (mm_m + MR_M1) >> LOG_MR;                 // row groups
    wire [31:0] mm_kv    = mm_k >> LOG_VL;                            // X rows per activation row
    wire        mm_misal = (mm_n[LOG_VL-1:0] != {LOG_VL{1'b0}}) | (mm_k[LOG_KM-1:0] != {LOG_KM{1'b0}}) |
                           (~op_mmv & (a_rs2[LOG_MXA-1:0] != {LOG_MXA{1'b0}}));
    wire [47:0] mm_elems = {16'd0, mm_k} << LOG_VL;                   // a tile's elements
    // The shape's sizes and products, registered every cycle, for each of the eight format
    // codes: M_CFG changes the shape at its retire, and a FETCH cycle follows every retire,
    // so the next instruction's checks (DECODE's, or EXEC's) read them settled. The checks
    // then add and compare only, with no multiplier or format arithmetic before them.
    reg  [8*48-1:0] mq_beats, mq_strd;
    reg  [8*80-1:0] mq_lastf;
    reg  [79:0]     mq_lastk;
    reg  [63:0]     mq_xrows, mq_brows, mq_count;
    integer mf;
    always @(posedge clk) begin
        for (mf = 0; mf < 8; mf = mf + 1) begin
            mq_beats[mf*48 +: 48] <= mx_need_beats(mf[2:0], mm_elems, LOG_BLK, LOG_BB);
            mq_strd[mf*48 +: 48]  <= mx_packed_nbytes(mf[2:0], mm_elems, LOG_BLK);
            mq_lastf[mf*80 +: 80] <= {48'd0, mm_nt - 32'd1} * {32'd0, mx_packed_nbytes(mf[2:0], mm_elems, LOG_BLK)};
        end
        mq_lastk <= {48'd0, mm_nt - 32'd1} * {32'd0, 16'd0, mm_k};
        mq_xrows <= {32'd0, mm_m} * {32'd0, mm_kv};
        mq_brows <= {32'd0, mm_m} * {32'd0, mm_nt};
        mq_count <= {32'd0, mm_groups} * {32'd0, mm_nt};
    end
    wire [47:0] mm_beats = mq_beats[fmt*48 +: 48];
    wire [47:0] mm_strd  = mq_strd[fmt*48 +: 48];
    // M_MM_V: a tile is K rows of the vector SRAM
    wire [79:0] mm_last  = op_mmv ? mq_lastk : mq_lastf[fmt*80 +: 80];
    wire [80:0] mm_top   = {49'd0, a_rs2} + {1'b0, mm_last} + {33'd0, mm_beats << LOG_BB};
    wire        mm_past  = ~op_mmv & (ADDR_TOP != 35'd0) & (mm_top > {46'd0, ADDR_TOP});
    wire [80:0] mm_wend  = {49'd0, a_rs2} + {1'b0, mm_last} + {49'd0, mm_k};
    wire [63:0] mm_xrows = mq_xrows;
    wire [63:0] mm_brows = mq_brows;                                  // BF16 rows of [M, N]
    wire [64:0] mm_arows = {mm_brows, 1'b0};                          // FP32 rows of [M, N]
    wire [64:0] mm_yrows = op_mf32 ? mm_arows : {1'b0, mm_brows};
    wire [64:0] mm_xend  = {33'd0, a_rs1} + {1'b0, mm_xrows};
    wire [65:0] mm_yend  = {34'd0, a_rd} + {1'b0, mm_yrows};
    wire [64:0] mm_rend  = {33'd0, a_rs3} + {1'b0, mm_brows};
    wire [65:0] mm_aend  = {34'd0, a_rs3} + {1'b0, mm_arows};
    wire [65:0] mm_depth = {33'd0, VR_DEPTH};
    wire        mm_range = ({1'b0, mm_xend} > mm_depth) | (mm_yend > mm_depth) |
                           (op_mmv & ((mm_wend > {15'd0, mm_depth}) |
                                      (({49'd0, a_rs2} < {15'd0, mm_yend}) & ({49'd0, a_rd} < mm_wend)))) |
                           (op_mres & ({1'b0, mm_rend} > mm_depth)) | (op_macc & (mm_aend > mm_depth)) |
                           (({33'd0, a_rd} < mm_xend) & ({34'd0, a_rs1} < mm_yend)) |
                           (op_mres & (a_rs3 != a_rd) & ({33'd0, a_rs3} < mm_yend[64:0]) &
                            ({33'd0, a_rd} < mm_rend)) |
                           (op_macc & ({34'd0, a_rs3} < mm_yend) & ({34'd0, a_rd} < mm_aend));
    // tiles streamed: G passes over the NT tiles (valid once the range check passed)
    wire [63:0] mm_count  = mq_count;

    // ---- EXEC --------------------------------------------------------------------------
    // What the decision reads (sdec_f, below): the class and every check's outcome.
    localparam integer CK_W = 24;
    wire [CK_W-1:0] ck_c = {op_hload, op_hstore, op_pref, op_fused, op_smx, op_storev, op_loadv, op_fn,
                            op_mm, op_mmv, h_n0, h_misal, h_range, h_past, p_misal, p_past,
                            v_range, sv_past, fn_range, (a_rs3 == 32'd0), mm_zero, mm_misal,
                            mm_past, mm_range};
    // the classes the transfer's states read past EXEC (DECODE_STAGE: registered in DECODE)
    reg  [2:0] cls_q;
    always @(posedge clk)
        if (dec) cls_q <= {op_fused, op_smx, op_fn};
    wire e_op_fused, e_op_smx, e_op_fn;
    assign {e_op_fused, e_op_smx, e_op_fn} = (DECODE_STAGE != 0) ? cls_q : {op_fused, op_smx, op_fn};
    // the window: its check is as deep as the sizes before it, so it takes EXEC's side.
    // DECODE_STAGE = 1 registers its answer in EXEC's first cycle (win_ok_q) and an access
    // waits for it in EXEC (a cycle more), so that no decision follows the limits' compares.
    reg  win_ok_q, ex_seen;           // ex_seen: EXEC's cycles after its first
    always @(posedge clk) begin
        win_ok_q <= ins_win_ok;
        ex_seen  <= rst_n & ex & ~soft_reset;
    end
    wire e_win_ok = (DECODE_STAGE != 0) ? win_ok_q : win_ok;
    wire e_win_v  = (DECODE_STAGE != 0) ? ex_seen : 1'b1;
    wire unused_win_q = &{1'b0, win_ok_q, ex_seen};     // DECODE_STAGE = 0: not read
    // The decision's part that the instruction alone settles (its class and its checks, in
    // their priority): n = 0's retire, a fault and its cause, or the kind of access it
    // starts. A sum of products of one-hot flags, so that EXEC applies it to the engines'
    // handshakes and the window in a few levels; DECODE_STAGE = 1 registers it in DECODE.
    localparam integer SD_W = 12 + `DNPU_ERR_W;
    function [SD_W-1:0] sdec_f(input [CK_W-1:0] ck);
        reg hload, hstore, pref, fused, smx, storev, loadv, fnn, mm, mmv, hn0, hmis, hrange, hpast;
        reg pmis, ppast, vrange, svpast, fnrange, fnn0, mmzero, mmmis, mmpast, mmrange;
        reg c_h, c_p, c_x, c_v;
        reg r_h, r_p, r_x, r_v, r_f, r_m;             // retire (n = 0)
        reg f_mis, f_range, f_read, f_write;          // the faults, by cause
        reg g_h, g_p, g_x, g_v, g_f, g_m;             // go: the access starts
        begin
            {hload, hstore, pref, fused, smx, storev, loadv, fnn, mm, mmv, hn0, hmis, hrange, hpast,
             pmis, ppast, vrange, svpast, fnrange, fnn0, mmzero, mmmis, mmpast, mmrange} = ck;
            c_h = hload | hstore;
            c_p = pref | fused;
            c_x = smx;
            c_v = storev | loadv;
            r_h = c_h & hn0;
            r_p = c_p & hn0;
            r_x = c_x & hn0;
            r_v = c_v & hn0;
            r_f = fnn & (hn0 | fnn0);
            r_m = mm & mmzero;
            f_mis   = (c_h & ~hn0 & hmis) | (c_p & ~hn0 & pmis) | (c_x & ~hn0 & pmis) |
                      (c_v & ~hn0 & hmis) | (fnn & ~(hn0 | fnn0) & pmis) | (mm & ~mmzero & mmmis);
            f_range = (c_h & ~hn0 & ~hmis & hrange) | (pref & ~hn0 & ~pmis & ~ppast & vrange) |
                      (c_x & ~hn0 & ~pmis & vrange) | (c_v & ~hn0 & ~hmis & vrange) |
                      (fnn & ~(hn0 | fnn0) & ~pmis & fnrange) |
                      (mm & ~mmzero & ~mmmis & ~mmpast & mmrange);
            f_read  = (hload & ~hn0 & ~hmis & ~hrange & hpast) | (c_p & ~hn0 & ~pmis & ppast) |
                      (loadv & ~hn0 & ~hmis & ~vrange & svpast) | (mm & ~mmzero & ~mmmis & mmpast);
            f_write = (hstore & ~hn0 & ~hmis & ~hrange & hpast) | (c_x & ~hn0 & ~pmis & ~vrange & ppast) |
                      (storev & ~hn0 & ~hmis & ~vrange & svpast);
            g_h = c_h & ~hn0 & ~hmis & ~hrange & ~hpast;
            g_p = c_p & ~hn0 & ~pmis & ~ppast & ~(pref & vrange);
            g_x = c_x & ~hn0 & ~pmis & ~vrange & ~ppast;
            g_v = c_v & ~hn0 & ~hmis & ~vrange & ~svpast;
            g_f = fnn & ~(hn0 | fnn0) & ~pmis & ~fnrange;
            g_m = mm & ~mmzero & ~mmmis & ~mmpast & ~mmrange;
            sdec_f = {r_h | r_p | r_x | r_v | r_f | r_m,
                      f_mis | f_range | f_read | f_write,
                      ({`DNPU_ERR_W{f_mis}}   & `DNPU_ERR_MISALIGNED) |
                      ({`DNPU_ERR_W{f_range}} & `DNPU_ERR_SRAM_RANGE) |
                      ({`DNPU_ERR_W{f_read}}  & `DNPU_ERR_AXI_READ) |
                      ({`DNPU_ERR_W{f_write}} & `DNPU_ERR_AXI_WRITE),
                      g_h & hload, g_h & hstore, g_p & pref, g_p & fused, g_x,
                      g_v & loadv, g_v & storev, g_f, g_m & ~mmv, g_m & mmv};
        end
    endfunction
    reg  [SD_W-1:0] sd_q;
    always @(posedge clk)
        if (dec) sd_q <= sdec_f(ck_c);
    wire                  s_retire, s_fault, s_ld, s_st, s_pf, s_fu, s_smx, s_lv, s_sv, s_fn, s_mmw, s_mmv;
    wire [`DNPU_ERR_W-1:0] s_cause;
    assign {s_retire, s_fault, s_cause, s_ld, s_st, s_pf, s_fu, s_smx, s_lv, s_sv, s_fn, s_mmw, s_mmv} =
        (DECODE_STAGE != 0) ? sd_q : sdec_f(ck_c);
    wire dq_cmd_ready, q_cmd_ready;
    reg  x_rd, x_wr, x_dq;          // raise a read / write / dequantizer command
    reg  x_acc;                     // ... or a matrix stream: the window decides
    always @* begin
        // the access, as the engines take it: both of H_PREFETCH_V / H_SAMPLE_FUSED's in the
        // same cycle (the dequantizer is idle here: its done came before the previous
        // retire), H_STORE_MX's with the quantizer's (idle too: its last beat came before)
        ex_retire = s_retire;
        ex_fault  = s_fault;
        ex_cause  = s_cause;
        x_rd      = s_ld | s_lv | ((s_pf | s_fu) & dq_cmd_ready);
        x_dq      = (s_pf | s_fu) & dq_cmd_ready & rd_cmd_ready;
        x_wr      = s_st | s_sv | (s_smx & q_cmd_ready);
        ex_load   = (s_ld | s_lv) & rd_cmd_ready;        // else wait in EXEC for the engine
        ex_store  = ((s_st | s_sv) & wr_cmd_ready) | (s_smx & wr_cmd_ready & q_cmd_ready);
        ex_pref   = s_pf & x_dq;
        ex_vec    = (s_fu & x_dq) | s_fn;                 // H_SAMPLE_FUSED_N: AXI_READ per position, in VEC
        ex_mat    = s_mmw | s_mmv;                        // commands are issued in MAT
        // an access starts only inside the windows: with DECODE_STAGE it waits in EXEC's
        // first cycle for the registered answer; the vector unit starts once the answer is
        // in, without waiting for it to be good (a WINDOW fault flushes it)
        x_acc     = x_rd | x_wr | s_mmw;
        ex_vstart = ex_vec & ~(x_acc & ~e_win_v);
        if (x_acc & ~(e_win_v & e_win_ok)) begin
            if (e_win_v) begin
                ex_fault = 1'b1;
                ex_cause = `DNPU_ERR_WINDOW;
            end
            ex_load  = 1'b0;
            ex_store = 1'b0;
            ex_pref  = 1'b0;
            ex_vec   = 1'b0;
            ex_mat   = 1'b0;
            x_rd     = 1'b0;
            x_wr     = 1'b0;
            x_dq     = 1'b0;
        end
    end
    wire ex_go = ex & ex_legal & ~soft_reset;

    // ---- transfer state ------------------------------------------------------------------
    reg  [31:0] mo_base;               // SRAM word (vector: row) address of the range
    reg  [31:0] mo_n;                  // words (vector: rows)
    reg  [31:0] mo_cnt;                // words / rows written (LOAD, PREF) or read (STORE)
    reg         mo_last;               // mo_cnt == mo_n - 1, kept with mo_cnt: done is a flag,
                                       // not a 32-bit compare ahead of the retire
    reg         mo_fp;                 // FP SRAM, else int SRAM
    reg         mo_vec;                // H_STORE_V / H_LOAD_V / H_STORE_MX: vector SRAM rows
    reg         mo_mx;                 // H_STORE_MX: whole rows into the quantizer
    reg         st_hold;               // the SRAM read register holds an unsent word
    reg  [LOG_VL-2:0] vst_w;           // H_STORE_V / H_LOAD_V: word of the row sent / taken next

    // H_SAMPLE_FUSED_N's streams, one per position; M_MM's, one per weight tile
    reg  [47:0] fn_addr;               // next position's stream address
    reg  [47:0] fn_stride, fn_pbeats;
    reg  [47:0] fn_last;               // its stream's last byte (H_SAMPLE_FUSED_N), kept with
                                       // fn_addr: no adder ahead of its window check
    reg  [31:0] fn_rq, fn_dq;          // next position to read / to dequantize
    reg  [31:0] fn_bpos;               // position of the next beat delivered
    reg  [31:0] fn_bleft;              // beats of its stream after that one (mod 2^32): a
    reg         fn_blast;              // down-counter and its zero flag, so that the beat
    reg         fn_pb1;                // ends a position without an add and compare
    wire        in_fn   = in_vec & e_op_fn;       // the decision's registered class, past EXEC too
    wire        in_fuse = in_vec & (e_op_fused | e_op_fn);
    reg         fn_rq_end;             // fn_rq == count, kept with fn_rq (a flag, not a compare)
    wire        fn_more = in_fn & ~fn_rq_end & ~fn_stop;
    wire        fn_past = fn_more & past_top(fn_last);
    wire        fn_wbad = fn_more & ~fn_past & ~win_ok;       // outside the windows
    wire        fn_err  = in_fn & rd_valid & rd_err;          // an error beat of position fn_bpos
    wire        fn_rd   = fn_more & ~fn_past & ~fn_wbad & ~fn_err & ~soft_reset;
    // fn_dq == count and "fn_stop and fn_dq >= fn_stop_pos" kept as flags beside fn_dq, so
    // that the dequantizer's command valid follows registers alone. The stop flag's next
    // value compares both of fn_dq's next values (fn_dq1 = fn_dq + 1 is a register too)
    // with each of fn_stop_pos's, and chooses after.
    reg         fn_dq_end, fn_dq_stop;
    reg  [32:0] fn_dq1;
    wire        fn_dqv  = in_fn & ~fn_dq_end & ~fn_dq_stop & ~soft_reset;
    wire        fn_dq_step = fn_dqv & dq_cmd_ready;
    wire        fn_ge_b = fn_dq_step ? (fn_dq1 >= {1'b0, fn_bpos}) : (fn_dq >= fn_bpos);
    wire        fn_ge_r = fn_dq_step ? (fn_dq1 >= {1'b0, fn_rq}) : (fn_dq >= fn_rq);
    wire        fn_ge_s = fn_dq_step ? (fn_dq1 >= {1'b0, fn_stop_pos}) : (fn_dq >= fn_stop_pos);
    reg  [47:0] mt_base;               // M_MM: tile 0's address
    reg  [31:0] mt_count;              // streams in all (G * NT)
    reg  [31:0] mt_left;               // tiles after the next read command's in its pass (mod
    reg         mt_last;               // 2^32), counted down with its zero flag as fn_bleft
    wire        mt_err  = in_mat & rd_valid & rd_err;
    wire        mt_rd   = in_mat & (fn_rq != mt_count) & ~mt_err & ~soft_reset;
    wire        mt_dqv  = in_mat & (fn_dq != mt_count) & ~soft_reset;
    wire        in_seq  = in_fn | in_mat;             // one stream per position or tile

    wire [47:0] mm_top48 = (mm_top[80:48] != 33'd0) ? {48{1'b1}} : mm_top[47:0];
    wire [31:0] ins_addr = op_mm ? a_rs2 : a_rs1;
    wire [47:0] ins_last = op_mm ? mm_top48 - 48'd1 :
                           ((op_hload | op_hstore) ? h_last : ((op_loadv | op_storev) ? sv_last : p_last));
    reg  [31:0] ins_addr_q;
    reg  [47:0] ins_last_q;
    always @(posedge clk)
        if (dec) begin
            ins_addr_q <= ins_addr;
            ins_last_q <= ins_last;
        end
    // the engines' command sizes too: EXEC's handshake then starts them from registers
    wire [31:0] ex_rbeats = (op_pref | op_fused) ? p_beats[31:0] : h_beats;
    wire [31:0] ex_wwords = op_smx ? p_bytes[31:0] : (op_storev ? sv_words : a_rs2);
    reg  [31:0] ex_rbeats_q, ex_wwords_q, ld_words_q;
    always @(posedge clk)
        if (dec) begin
            ex_rbeats_q <= ex_rbeats;
            ex_wwords_q <= ex_wwords;
            ld_words_q  <= ld_words;
        end
    wire [31:0] e_rbeats = (DECODE_STAGE != 0) ? ex_rbeats_q : ex_rbeats;
    wire [31:0] e_wwords = (DECODE_STAGE != 0) ? ex_wwords_q : ex_wwords;
    wire [31:0] e_ldwords = (DECODE_STAGE != 0) ? ld_words_q : ld_words;
    assign ins_chk_addr = (DECODE_STAGE != 0) ? ins_addr_q : ins_addr;
    assign ins_dec_addr = ins_addr;
    assign ins_chk_last = (DECODE_STAGE != 0) ? ins_last_q : ins_last;
    wire   fn_chk       = in_fn | (DECODE_STAGE != 0);
    assign chk_addr = fn_chk ? fn_addr[31:0] : ins_addr;
    assign chk_last = fn_chk ? fn_last : ins_last;
    assign chk_wr   = op_hstore | op_storev | op_smx;

    // ---- engines -------------------------------------------------------------------------
    wire             dq_stream = in_pref | in_fuse | in_mat;
    wire             dq_s_ready, dq_row_valid, dq_done, dq_cmd_error;
    wire [VLEN*16-1:0] dq_row;

    dnpu_mx_dequant #(.DATA_W(DATA_W), .VLEN(VLEN), .BLOCK(MX_BLOCK)) u_mx (
        .clk(clk), .rst_n(rst_n & ~flush),
        .cmd_valid((ex_go & x_dq) | fn_dqv | mt_dqv), .cmd_ready(dq_cmd_ready), .cmd_fmt(fmt),
        .cmd_rows(in_mat ? mm_k[23:0] : a_rs2[23:0]), .cmd_error(dq_cmd_error),
        .s_data(rd_data), .s_valid(rd_valid & ~rd_err & dq_stream), .s_ready(dq_s_ready),
        .m_data(dq_row), .m_valid(dq_row_valid), .m_ready(~(in_fuse | in_mat) | row_ready),
        .done(dq_done));

    wire        up_valid, up_err, up_s_ready;
    wire [31:0] up_data;

    dnpu_beat_unpack #(.DATA_W(DATA_W)) u_unpack (
        .clk(clk), .rst_n(rst_n),
        .start(ex_go & ex_load), .start_lane(a_rs1[LOG_BB-1:2]), .start_words(e_ldwords),
        .flush(rd_abort),
        .s_valid(rd_valid & in_load), .s_data(rd_data), .s_err(rd_err), .s_ready(up_s_ready),
        .m_valid(up_valid), .m_data(up_data), .m_err(up_err), .m_ready(1'b1));

    assign rd_cmd_valid = (ex_go & x_rd) | fn_rd | mt_rd;
    assign rd_cmd_addr  = in_seq ? fn_addr[31:0] : a_rs1;
    assign rd_cmd_beats = in_seq ? fn_pbeats[31:0] : e_rbeats;
    assign rd_ready     = (in_load & up_s_ready) | (dq_stream & dq_s_ready);
    assign rd_abort     = soft_reset | fault | fn_err | mt_err;

    // STORE: an SRAM read whenever the read register is free or its last word (H_STORE_MX:
    // the row) leaves.
    wire q_s_ready;
    wire st_rd_more = (mo_cnt != mo_n);
    wire wr_hs      = wr_valid & wr_ready;
    wire st_hs      = mo_mx ? (st_hold & q_s_ready) : wr_hs;
    wire st_wlast   = ~mo_vec | mo_mx | (vst_w == VW_LAST[LOG_VL-2:0]);   // last word of the held item
    wire st_re      = in_store & st_rd_more & (~st_hold | (st_hs & st_wlast));

    assign wr_cmd_valid = ex_go & x_wr;
    assign wr_cmd_addr  = a_rs1;
    assign wr_cmd_words = e_wwords;
    assign wr_cmd_beat  = op_smx;
    assign wr_valid     = in_store & st_hold & ~mo_mx;

    // H_STORE_MX's encoder: rows from the SRAM's read register, beats to the write engine.
    wire               q_m_valid, q_m_last, q_done, q_cmd_error;
    wire [LOG_BB:0]    q_m_bytes;

    dnpu_mx_quant #(.DATA_W(DATA_W), .VLEN(VLEN), .BLOCK(MX_BLOCK)) u_mxq (
        .clk(clk), .rst_n(rst_n & ~flush),
        .cmd_valid(ex_go & e_op_smx & ex_store), .cmd_ready(q_cmd_ready), .cmd_fmt(fmt),
        .cmd_rows(a_rs2[23:0]), .cmd_error(q_cmd_error),
        .s_data(vec_rdata), .s_valid(in_store & mo_mx & st_hold), .s_ready(q_s_ready),
        .m_data(wr_bdata), .m_bytes(q_m_bytes), .m_last(q_m_last), .m_valid(q_m_valid),
        .m_ready(in_store & wr_bready), .done(q_done));
    assign wr_bvalid = in_store & q_m_valid;
    assign wr_data      = mo_vec ? vec_rdata[{vst_w, 5'd0} +: 32] : (mo_fp ? fp_rdata : int_rdata);

    // ---- results and SRAM requests -------------------------------------------------------
    // LOAD: ld_word takes an unpacked word; the last word of an item (a word, or a row of
    // H_LOAD_V: st_wlast) writes it.
    wire ld_word = in_load & up_valid & ~up_err;
    wire ld_item = ld_word & st_wlast;
    wire ld_last = ld_item & mo_last;
    wire st_end  = in_store & wr_done;
    assign done = ld_last | st_end | (in_pref & dq_done);
    assign err  = (in_load & up_valid & up_err) | (st_end & wr_err) |
                  ((in_pref | (in_vec & e_op_fused)) & rd_valid & rd_err) | mt_err;
    assign stall_rd = (in_load & ~up_valid) | (in_pref & dq_s_ready & ~rd_valid);

    // H_LOAD_V's row register: words 0 .. VLEN/2-2 of the row, the oldest (lane 0) at the
    // bottom; the row's last word completes it on the way into the SRAM (row_data).
    reg  [VLEN*16-33:0] ldv_row;
    generate
        if (VLEN > 4) begin : g_ldv_shift
            always @(posedge clk)
                if (ld_word & mo_vec)
                    ldv_row <= {up_data, ldv_row[VLEN*16-33:32]};
        end else begin : g_ldv_one
            always @(posedge clk)
                if (ld_word & mo_vec)
                    ldv_row <= up_data;
        end
    endgenerate

    wire ld_we = ld_item & ~soft_reset;
    assign int_we     = ld_we & ~mo_fp & ~mo_vec;
    assign fp_we      = ld_we & mo_fp;
    assign vec_we     = (in_pref & dq_row_valid & ~soft_reset) | (ld_we & mo_vec);
    assign int_re     = st_re & ~mo_fp & ~mo_vec;
    assign fp_re      = st_re & mo_fp;
    assign vec_re     = st_re & mo_vec;
    assign sram_addr  = mo_base[SRAM_AW-1:0] + mo_cnt[SRAM_AW-1:0];
    assign sram_wdata = up_data;
    assign row_valid  = dq_row_valid & (in_fuse | in_mat);
    assign row_data   = in_load ? {up_data, ldv_row} : dq_row;
    assign dq_data    = dq_row;

    always @(posedge clk) begin
        if (!rst_n) begin
            st_hold <= 1'b0;
        end else begin
            if (ex) begin                      // operands of a transfer, used if one follows
                mo_base   <= a_rd;
                mo_n      <= a_rs2;
                mo_cnt    <= 32'd0;
                mo_last   <= (a_rs2 == 32'd1);
                mo_fp     <= h_is_fp;
                mo_vec    <= op_storev | op_loadv | op_smx;
                mo_mx     <= op_smx;
                vst_w     <= {(LOG_VL-1){1'b0}};
                st_hold   <= 1'b0;
                fn_addr   <= {16'd0, op_mm ? a_rs2 : a_rs1};
                fn_stride <= op_mm ? mm_strd : mx_packed_nbytes(fmt, p_elems, LOG_BLK);
                fn_pbeats <= op_mm ? mm_beats : p_beats;
                fn_last   <= p_last;
                mt_base   <= {16'd0, a_rs2};
                mt_count  <= op_mmv ? 32'd0 : mm_count[31:0];      // M_MM_V: no stream
                mt_left   <= mm_nt - 32'd1;
                mt_last   <= (mm_nt == 32'd1);
                fn_rq     <= 32'd0;
                fn_rq_end <= (a_rs3 == 32'd0);
                fn_dq     <= 32'd0;
                fn_dq1    <= 33'd1;
                fn_dq_end <= (a_rs3 == 32'd0);
                fn_dq_stop <= 1'b0;
                fn_bpos   <= 32'd0;
                fn_bleft  <= p_beats[31:0] - 32'd1;
                fn_blast  <= (p_beats[31:0] == 32'd1);
                fn_pb1    <= (p_beats[31:0] == 32'd1);
                fn_stop   <= 1'b0;
                fn_stop_win <= 1'b0;
            end
            if (in_fn) begin
                if (fn_rd & rd_cmd_ready) begin
                    fn_addr   <= fn_addr + fn_stride;
                    fn_last   <= fn_last + fn_stride;
                    fn_rq     <= fn_rq + 32'd1;
                    fn_rq_end <= (fn_rq + 32'd1 == a_rs3);
                end
                if (fn_dq_step) begin
                    fn_dq     <= fn_dq1[31:0];
                    fn_dq1    <= fn_dq1 + 33'd1;
                    fn_dq_end <= (fn_dq1 == {1'b0, a_rs3});
                end
                fn_dq_stop <= fn_err ? fn_ge_b : ((fn_past | fn_wbad) ? fn_ge_r : (fn_stop & fn_ge_s));
                if (rd_valid & rd_ready & ~rd_err) begin
                    if (fn_blast) begin
                        fn_bleft <= fn_pbeats[31:0] - 32'd1;
                        fn_blast <= fn_pb1;
                        fn_bpos  <= fn_bpos + 32'd1;
                    end else begin
                        fn_bleft <= fn_bleft - 32'd1;
                        fn_blast <= (fn_bleft == 32'd1);
                    end
                end
                if (fn_err) begin                  // the first error beat aborts the engine
                    fn_stop     <= 1'b1;
                    fn_stop_pos <= fn_bpos;
                    fn_stop_win <= 1'b0;
                end else if (fn_past | fn_wbad) begin   // no command for this position
                    fn_stop     <= 1'b1;
                    fn_stop_pos <= fn_rq;
                    fn_stop_win <= fn_wbad;
                end
            end
            if (in_mat) begin
                if (mt_rd & rd_cmd_ready) begin   // G passes over the tiles
                    fn_rq <= fn_rq + 32'd1;
                    if (mt_last) begin
                        mt_left <= mm_nt - 32'd1;
                        mt_last <= (mm_nt == 32'd1);
                        fn_addr <= mt_base;
                    end else begin
                        mt_left <= mt_left - 32'd1;
                        mt_last <= (mt_left == 32'd1);
                        fn_addr <= fn_addr + fn_stride;
                    end
                end
                if (mt_dqv & dq_cmd_ready) begin
                    fn_dq     <= fn_dq1[31:0];
                    fn_dq1    <= fn_dq1 + 33'd1;
                end
            end
            if ((in_pref & dq_row_valid) | ld_item | (in_store & st_re)) begin
                mo_cnt  <= mo_cnt + 32'd1;
                mo_last <= (mo_cnt + 32'd2 == mo_n);
            end
            if (ld_word & mo_vec)
                vst_w <= st_wlast ? {(LOG_VL-1){1'b0}} : vst_w + 1'b1;
            if (in_store) begin
                st_hold <= st_re | (st_hold & ~(st_hs & st_wlast));
                if (wr_hs)
                    vst_w <= st_wlast ? {(LOG_VL-1){1'b0}} : vst_w + 1'b1;
            end
            if (soft_reset)
                st_hold <= 1'b0;
        end
    end

    // SRAM bases beyond the address bits were range-checked before use; the dequantizer
    // never sees a bad command (EXEC checked it); the sizes' high bits are zero once the
    // range check passed.
    // The engine knows the stream's byte count and the quantizer stops by itself: its beat
    // size, last flag and done are not needed here.
    wire unused_ok = &{1'b0, mo_base[31:SRAM_AW], dq_cmd_error, fn_pbeats[47:32], mm_top[80:32],
                       mm_count[63:32], mt_base[47:32], mm_k[31:24], q_cmd_error, q_m_bytes,
                       q_m_last, q_done, p_bytes[47:32]};

endmodule

`default_nettype wire
