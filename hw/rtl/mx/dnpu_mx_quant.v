`default_nettype none
// dnpu_mx_quant: H_STORE_MX's MX encoder. Rows of VLEN BF16 values come in; the packed
// MX stream (docs/MX.md "Packed layout") goes out as AXI data beats, bit-exact with the
// first mx.stream_nbytes bytes of dnpu.mx.pack(dnpu.mx.quantize(rows, fmt, BLOCK)).
//
// ---- Command -------------------------------------------------------------------
// cmd_fmt: `DNPU_MXFMT_* code; cmd_rows: rows of VLEN elements. Taken (cmd_valid &
// cmd_ready) only while idle. One cycle later, as in dnpu_mx_dequant: a bad command
// (not a format, or rows*VLEN not whole blocks) pulses cmd_error with done; rows == 0
// pulses done alone; otherwise exactly `rows` rows are taken on s_* and
//     beats = ceil(mx_need_bytes / (DATA_W/8))   (dnpu_mx_size.vh)
// beats given on m_*, byte k of a beat in m_data[8k+7:8k]. m_bytes is the number of
// stream bytes in the beat: DATA_W/8, but in the last beat (m_last) the stream's tail;
// the bytes above it are not the stream's and must not be written. done pulses the cycle
// after the last beat is taken.
//
// ---- Why this shape --------------------------------------------------------------
// A group's 16 scale bytes go out before its codes, and a scale needs its whole block,
// so a group is buffered before any of it leaves: a fill unit of FU = max(16*BLOCK, VLEN)
// elements (one group; several on a profile whose rows span groups), in a RAM ring of
// three units: one drains, one waits complete, one fills. (With two, the fill could start
// only when a drain does, and its few cycles of scale latency would show wherever a
// unit's rows take as long as its beats: the sim profile's 8-bit formats.) Two scale
// banks hold the pending units' scales. The scales are computed on the way in
// (a max tree over the rows' exponent fields: the scale needs only amax's exponent, and a
// NaN/Inf is exponent 0xFF, the largest), so the drain can start with the header.
// The drain encodes at the output's pace, not the input's: E4 = DATA_W/4 encoders
// (dnpu_mx_enc) make one beat of 4-bit codes a cycle, half of them one beat of 8-bit
// codes, all of them 1.5 beats of 6-bit codes; so there are DATA_W/4 encoders whatever
// VLEN is. A chunk (E8 = DATA_W/8 codes for 8-bit formats, E4 otherwise) is cut from a
// RAM line of L = max(VLEN, E4) elements.
//
// Drain pipeline: P0 picks the next item (a group header, or a chunk of the line in the
// RAM's read register, with its blocks' B - scale), P1 holds it, the encoders' first half
// runs P1 -> P2, the second half and the bit packing P2 -> P3, and P3's bytes enter a
// circular output buffer of 3 beats in slots of GRAN bytes (every item is a multiple of
// GRAN: 16 header bytes, one beat, or 1.5 beats). The pipeline advances as a whole
// (adv) when P3 is empty or fits the buffer as it stands: a decision on registers only,
// so m_ready reaches only the buffer's own update, never the RAM or the encoders; three
// beats of room keep one beat a cycle going even for 6-bit items.
// Rate: one beat a cycle when the rows come fast enough (VLEN elements a row a cycle);
// else the rows' pace. Each unit costs one header item; units follow each other with no
// gap. Measured with no back-pressure, from the command to the last beat: the first
// unit's rows (min(rows, FU/VLEN)) + 8 + beats, when beats outnumber rows unit by unit.

`include "dnpu_isa.vh"

module dnpu_mx_quant #(
    parameter integer DATA_W = 128,  // AXI data bits: 64, 128, 256 or 512
    parameter integer VLEN   = 16,   // BF16 lanes per input row: a power of two >= 8
    parameter integer BLOCK  = 32    // MX block: 8, 16, 32 or 64
) (
    input  wire                       clk,
    input  wire                       rst_n,

    input  wire                       cmd_valid,
    output wire                       cmd_ready,
    input  wire [2:0]                 cmd_fmt,
    input  wire [23:0]                cmd_rows,
    output reg                        cmd_error,

    input  wire [VLEN*16-1:0]         s_data,
    input  wire                       s_valid,
    output wire                       s_ready,

    output wire [DATA_W-1:0]          m_data,
    output wire [$clog2(DATA_W/8):0]  m_bytes,
    output wire                       m_last,
    output wire                       m_valid,
    input  wire                       m_ready,

    output reg                        done
);
    localparam integer BB    = DATA_W / 8;                 // bytes per beat
    localparam integer LBB   = $clog2(BB);
    localparam integer LV    = $clog2(VLEN);
    localparam integer LB    = $clog2(BLOCK);
    localparam integer E4    = DATA_W / 4;                 // encoders; codes per 4/6-bit chunk
    localparam integer E8    = DATA_W / 8;                 // codes per 8-bit chunk
    localparam integer LE4   = $clog2(E4);
    localparam integer LE8   = $clog2(E8);
    localparam integer GE    = 16 * BLOCK;                 // elements per group
    localparam integer FU    = (VLEN > GE) ? VLEN : GE;    // elements per fill unit
    localparam integer L     = (VLEN > E4) ? VLEN : E4;    // elements per RAM line
    localparam integer LL    = $clog2(L);
    localparam integer NS    = L / VLEN;                   // rows per line (RAM banks)
    localparam integer LNS   = (NS > 1) ? $clog2(NS) : 1;
    localparam integer LPU   = FU / L;                     // lines per unit
    localparam integer RPU   = FU / VLEN;                  // rows per unit
    localparam integer NBU   = FU / BLOCK;                 // blocks (scale bytes) per unit
    localparam integer NSEG  = (VLEN > BLOCK) ? VLEN / BLOCK : 1;   // blocks per row
    localparam integer SEGL  = (VLEN > BLOCK) ? BLOCK : VLEN;       // lanes per max tree
    localparam integer RPB   = (VLEN < BLOCK) ? BLOCK / VLEN : 1;   // rows per block
    localparam integer LRPB  = (RPB > 1) ? $clog2(RPB) : 1;
    localparam integer NBC   = (E4 > BLOCK) ? E4 / BLOCK : 1;       // blocks per 4/6-bit chunk
    localparam integer CPL4  = L / E4;                     // chunks per line
    localparam integer CPL8  = L / E8;
    localparam integer CPG4  = GE / E4;                    // chunks per group
    localparam integer CPG8  = GE / E8;
    localparam integer SH8   = (E8 >= BLOCK) ? E8 / BLOCK : 1;      // scale bytes retired per shift
    localparam integer SH4   = (E4 >= BLOCK) ? E4 / BLOCK : 1;
    localparam integer K8L   = (E8 < BLOCK) ? $clog2(BLOCK / E8) : 1;   // 2^K8L chunks a block
    localparam integer K4L   = (E4 < BLOCK) ? $clog2(BLOCK / E4) : 1;
    localparam integer GRAN  = (BB / 2 < 16) ? BB / 2 : 16; // output slot bytes
    localparam integer RS    = BB / GRAN;                  // slots per beat
    localparam integer NSL   = 3 * RS;                     // slots in the output buffer
    localparam integer HS    = 16 / GRAN;                  // slots of a header
    localparam integer C6S   = 3 * RS / 2;                 // slots of a 6-bit chunk
    localparam integer CSM   = (HS > C6S) ? HS : C6S;      // largest item, slots
    localparam integer PB    = CSM * GRAN;                 // P3 bytes
    localparam integer SW    = $clog2(NSL + 1);            // slot count bits
    localparam integer PW    = $clog2(NSL);                // slot index bits
    localparam integer FRW   = (RPU > 1) ? $clog2(RPU) : 1;
    localparam integer LLW   = (LPU > 1) ? $clog2(LPU) : 1;
    localparam integer AW    = (LPU > 1) ? $clog2(LPU) + 2 : 2;   // RAM address: third, line
    localparam integer DLW   = $clog2(LPU + 1);
    localparam integer DCW   = $clog2(FU / E8 + 1);
    localparam integer CLW   = $clog2(CPL8);
    localparam integer CGW   = $clog2(CPG8);
    localparam integer BW    = 24 + LV + 2;                // beat counts
    localparam integer RW    = 24 + LV;                    // element counts
    localparam integer RALN  = (VLEN < BLOCK) ? $clog2(BLOCK / VLEN) : 0;

    localparam integer CL8_LAST = CPL8 - 1;
    localparam integer CL4_LAST = CPL4 - 1;
    localparam integer CG8_LAST = CPG8 - 1;
    localparam integer CG4_LAST = CPG4 - 1;
    localparam integer FR_LAST  = RPU - 1;
    localparam [31:0]  FU32     = FU;
    localparam [31:0]  NSL32    = NSL;
    localparam [31:0]  RS32     = RS;
    localparam [31:0]  HS32     = HS;
    localparam [31:0]  C6S32    = C6S;
    localparam [31:0]  BB32     = BB;
    localparam [31:0]  LPU32    = LPU;
    localparam [31:0]  E8M1     = E8 - 1;
    localparam [31:0]  E4M1     = E4 - 1;
    localparam [SW-1:0]  NSL_S  = NSL32[SW-1:0];
    localparam [SW-1:0]  RS_S   = RS32[SW-1:0];
    localparam [SW-1:0]  HS_S   = HS32[SW-1:0];
    localparam [SW-1:0]  C6S_S  = C6S32[SW-1:0];
    localparam [LBB:0]   BB_B   = BB32[LBB:0];

    // Bad parameters stop elaboration: this module does not exist.
    generate
        if (BB < 8 || (BB & (BB - 1)) != 0 || VLEN < 8 || (VLEN & (VLEN - 1)) != 0 ||
            BLOCK < 8 || BLOCK > 64 || (BLOCK & (BLOCK - 1)) != 0) begin : g_bad_param
            dnpu_mx_quant_bad_parameters u_bad ();
        end
    endgenerate

    // ---- command ------------------------------------------------------------------
    reg               active;
    reg               c8_r, c6_r;        // code width 8 / 6 (else 4)
    reg  [3:0]        fm_r;              // one-hot M (dnpu_mx_enc)
    reg               fint_r;
    reg  [2:0]        fsgn_r, fr_r;
    reg  [7:0]        maxq_r;
    reg  [3:0]        bias_r, emax_r;
    reg  [BW-1:0]     beats_left;
    reg  [LBB:0]      lastb;             // stream bytes in the last beat

    reg               fmt_ok, in_c8, in_c6, in_int;
    reg  [3:0]        in_fm, in_bias, in_emax;
    reg  [2:0]        in_fr;
    reg  [7:0]        in_maxq;
    always @* begin
        fmt_ok  = 1'b1;
        in_c8   = 1'b0;
        in_c6   = 1'b0;
        in_int  = 1'b0;
        in_fm   = 4'b0100;
        in_fr   = 3'd4;
        in_bias = 4'd7;
        in_emax = 4'd8;
        in_maxq = 8'h7E;
        case (cmd_fmt)
            `DNPU_MXFMT_E4M3: begin in_c8 = 1'b1; end
            `DNPU_MXFMT_E5M2: begin in_c8 = 1'b1; in_fm = 4'b0010; in_fr = 3'd5; in_bias = 4'd15;
                                    in_emax = 4'd15; in_maxq = 8'h7B; end
            `DNPU_MXFMT_E3M2: begin in_c6 = 1'b1; in_fm = 4'b0010; in_fr = 3'd5; in_bias = 4'd3;
                                    in_emax = 4'd4; in_maxq = 8'h1F; end
            `DNPU_MXFMT_E2M3: begin in_c6 = 1'b1; in_bias = 4'd1; in_emax = 4'd2; in_maxq = 8'h1F; end
            `DNPU_MXFMT_E2M1: begin in_fm = 4'b0001; in_fr = 3'd6; in_bias = 4'd1; in_emax = 4'd2;
                                    in_maxq = 8'h07; end
            `DNPU_MXFMT_INT8: begin in_c8 = 1'b1; in_int = 1'b1; in_fm = 4'b1000; in_fr = 3'd1;
                                    in_bias = 4'd1; in_emax = 4'd0; in_maxq = 8'h7F; end
            default:          fmt_ok = 1'b0;
        endcase
    end

    wire rows_ok;
    generate
        if (RALN > 0) begin : g_rows_aln
            assign rows_ok = ~|cmd_rows[RALN-1:0];
        end else begin : g_rows_any
            assign rows_ok = 1'b1;
        end
    endgenerate

`include "dnpu_mx_size.vh"
    wire [47:0] c_elems = {{(48-24){1'b0}}, cmd_rows} << LV;
    wire [47:0] c_bytes = mx_need_bytes(cmd_fmt, c_elems, LB);
    wire [47:0] c_beats = mx_need_beats(cmd_fmt, c_elems, LB, LBB);
    wire [47:0] c_lastm = c_bytes - 48'd1;
    wire [LBB:0] c_lastb = {1'b0, c_lastm[LBB-1:0]} + {{LBB{1'b0}}, 1'b1};

    assign cmd_ready = ~active;
    wire cmd_go = cmd_valid & ~active;

    // ---- fill: rows into the RAM, block exponents into the scales --------------------------
    reg  [23:0]       f_rows_left;       // rows not yet taken
    reg  [FRW-1:0]    f_row;             // row of the unit
    reg  [1:0]        f_half;            // RAM third being filled
    reg               f_bank;            // scale bank being filled
    reg  [1:0]        pend;              // units opened and not yet handed to the drain
    reg  [1:0]        sc_done;           // per scale bank: its unit's scales are complete
    reg               ob;                // scale bank of the oldest pending unit
    reg  [1:0]        oh;                // ... its RAM third
    reg  [NBU*8-1:0]  sfb0, sfb1;        // the pending units' scale bytes (0 where no block)

    // A new unit opens only while fewer than two are pending: the third RAM third is the
    // draining one.
    assign s_ready = active & (f_rows_left != 24'd0) & ((f_row != {FRW{1'b0}}) | (pend != 2'd2));
    wire   s_go    = s_valid & s_ready;
    wire   f_ulast = (f_row == FR_LAST[FRW-1:0]) | (f_rows_left == 24'd1);

    // F0: the largest exponent field of each PRE lanes of the row; F1: the maxima per block
    // (or per row, VLEN < BLOCK). The max trees' first levels run before F0 so that each
    // cycle has half a tree (the maximum of unsigned fields does not depend on the order).
    localparam integer PRE  = 4;                       // SEGL >= 8: a power of two
    localparam integer NPRE = VLEN / PRE;
    localparam integer SEGP = SEGL / PRE;              // F0 entries per block
    reg               f0_v, f0_ulast, f1_v, f1_ulast, f0_bank, f1_bank;
    reg  [FRW-1:0]    f0_row, f1_row;
    reg  [NPRE*8-1:0] f0_e;
    reg  [NSEG*8-1:0] f1_max;

    function [7:0] max8_f;
        input [7:0] ma, mb;
        max8_f = (ma > mb) ? ma : mb;
    endfunction

    reg  [NPRE*8-1:0] in_e;
    integer           ii;
    always @* begin
        for (ii = 0; ii < NPRE; ii = ii + 1)
            in_e[8*ii +: 8] = max8_f(max8_f(s_data[16*(PRE*ii) + 7 +: 8], s_data[16*(PRE*ii+1) + 7 +: 8]),
                                     max8_f(s_data[16*(PRE*ii+2) + 7 +: 8], s_data[16*(PRE*ii+3) + 7 +: 8]));
    end

    // Max trees, one per block of the row (a NaN or Inf has exponent 0xFF: the largest).
    reg  [7:0]        mt [0:SEGP-1];
    reg  [NSEG*8-1:0] seg_max;
    integer           sg, lv2, kk;
    always @* begin
        for (sg = 0; sg < NSEG; sg = sg + 1) begin
            for (kk = 0; kk < SEGP; kk = kk + 1)
                mt[kk] = f0_e[8*(sg*SEGP + kk) +: 8];
            for (lv2 = SEGP / 2; lv2 >= 1; lv2 = lv2 / 2)
                for (kk = 0; kk < lv2; kk = kk + 1)
                    mt[kk] = (mt[2*kk] > mt[2*kk+1]) ? mt[2*kk] : mt[2*kk+1];
            seg_max[8*sg +: 8] = mt[0];
        end
    end

    // scale byte = clamp(Emax - emax, 0, 254), 0xFF for a NaN/Inf block
    function [7:0] scale_of;
        input [7:0] sm;
        input [3:0] se;
        begin
            if (&sm)
                scale_of = 8'hFF;
            else if (sm > {4'd0, se})
                scale_of = sm - {4'd0, se};
            else
                scale_of = 8'd0;
        end
    endfunction

    // F1 -> scales. VLEN >= BLOCK: each row completes NSEG blocks; else every RPB-th row one.
    wire [NBU*8-1:0]  sfill_w;           // the scale bytes F1 writes this cycle
    wire [NBU-1:0]    sfill_we;
    genvar gi;
    generate
        if (RPB == 1) begin : g_sw_row
            for (gi = 0; gi < NBU; gi = gi + 1) begin : g_b
                localparam integer RI = gi / NSEG;
                assign sfill_we[gi]       = f1_v & (f1_row == RI[FRW-1:0]);
                assign sfill_w[8*gi +: 8] = scale_of(f1_max[8*(gi % NSEG) +: 8], emax_r);
            end
        end else begin : g_sw_blk
            reg  [7:0] acc;              // the block's maximum so far
            wire       bfirst   = (f1_row[LRPB-1:0] == {LRPB{1'b0}});
            wire       blast    = &f1_row[LRPB-1:0];
            wire [7:0] acc_next = (bfirst | (f1_max[7:0] > acc)) ? f1_max[7:0] : acc;
            wire [7:0] sc       = scale_of(acc_next, emax_r);
            always @(posedge clk)
                if (f1_v)
                    acc <= acc_next;
            for (gi = 0; gi < NBU; gi = gi + 1) begin : g_b
                localparam integer BI = gi;
                assign sfill_we[gi]       = f1_v & blast & (f1_row[FRW-1:LRPB] == BI[FRW-LRPB-1:0]);
                assign sfill_w[8*gi +: 8] = sc;
            end
        end
    endgenerate

    // ---- the RAM: NS banks of rows, 2 halves of LPU lines ------------------------------------
    wire [L*16-1:0]   line;              // the read register: the line P0 cuts chunks from
    reg  [1:0]        d_half;
    reg  [LLW-1:0]    d_line;
    wire              rd_go;
    wire [AW-1:0]     raddr, waddr;
    wire [LNS-1:0]    wbank;
    generate
        if (LPU > 1) begin : g_addr_lines
            wire [LLW-1:0] f_line = f_row[FRW-1:FRW-LLW];
            assign waddr = {f_half, f_line};
            assign raddr = {d_half, d_line};
        end else begin : g_addr_half
            assign waddr = f_half;
            assign raddr = d_half;
        end
        if (NS > 1) begin : g_wbank
            assign wbank = f_row[LNS-1:0];
        end else begin : g_wbank1
            assign wbank = 1'b0;
        end
    endgenerate

    generate
        for (gi = 0; gi < NS; gi = gi + 1) begin : g_bank
            (* ram_style = "block" *) reg [VLEN*16-1:0] mem [0:3*LPU-1];
            reg [VLEN*16-1:0] rdata;
            wire we = s_go & (wbank == gi);
            always @(posedge clk) begin
                if (we)
                    mem[waddr] <= s_data;
                if (rd_go)
                    rdata <= mem[raddr];
            end
            assign line[VLEN*16*gi +: VLEN*16] = rdata;
        end
    endgenerate

    // ---- drain: headers and chunks into the pipeline ---------------------------------------
    reg  [RW-1:0]     d_rem;             // elements not yet handed to the drain
    reg               d_busy;            // a unit is draining
    reg               lv;                // the read register holds the next chunk's line
    reg  [DLW-1:0]    d_lines;           // lines of the unit not yet read
    reg  [DCW-1:0]    dc;                // chunks of the unit not yet issued
    reg  [CLW-1:0]    cl;                // chunk of the line
    reg  [CGW-1:0]    cg;                // chunk of the group
    reg               hdr_needed;
    reg  [NBU*8-1:0]  sdr;               // the draining unit's scales, front = the next block

    reg               p1_v, p1_hdr, p2_v, p2_hdr, p3_v, p3_hdr;
    reg  [E4*16-1:0]  p1_e;
    reg  [NBC*10-1:0] p1_base;
    reg  [NBC-1:0]    p1_nan;
    reg  [127:0]      p2_h;
    reg  [PB*8-1:0]   p3_b;

    reg  [NSL*GRAN*8-1:0] sl;            // output slots
    reg  [PW-1:0]     wp;                // next slot written
    reg  [1:0]        rq;                // first slot of the next beat: rq * RS
    reg  [SW-1:0]     cnt;               // slots filled

    wire [SW-1:0] p3_cs    = p3_hdr ? HS_S : (c6_r ? C6S_S : RS_S);
    wire          ins_regs = p3_v & ({1'b0, cnt} + {1'b0, p3_cs} <= {1'b0, NSL_S});
    wire          adv      = ~p3_v | ins_regs;

    wire item_hdr  = d_busy & hdr_needed;
    wire item_chk  = d_busy & ~hdr_needed & lv;
    wire hdr_go    = adv & item_hdr;
    wire chunk_go  = adv & item_chk;
    wire d_fin     = chunk_go & (dc == {{(DCW-1){1'b0}}, 1'b1});
    wire cl_last   = c8_r ? (cl == CL8_LAST[CLW-1:0]) : (cl == CL4_LAST[CLW-1:0]);
    wire cg_last   = c8_r ? (cg == CG8_LAST[CGW-1:0]) : (cg == CG4_LAST[CGW-1:0]);
    wire ho        = sc_done[ob] & (~d_busy | d_fin);       // the oldest unit starts draining
    assign rd_go   = d_busy & (d_lines != {DLW{1'b0}}) & (~lv | (chunk_go & cl_last & ~d_fin));

    // the unit handed over: its elements and chunks
    wire [47:0]    fu48  = {16'd0, FU32};
    wire [47:0]    rem48 = {{(48-RW){1'b0}}, d_rem};
    wire [47:0]    u_el48 = (rem48 > fu48) ? fu48 : rem48;
    wire [RW-1:0]  u_el  = u_el48[RW-1:0];
    wire [47:0]    u_c8  = (u_el48 + {16'd0, E8M1}) >> LE8;
    wire [47:0]    u_c4  = (u_el48 + {16'd0, E4M1}) >> LE4;
    wire [DCW-1:0] u_dc  = c8_r ? u_c8[DCW-1:0] : u_c4[DCW-1:0];
    localparam [DLW-1:0] LPU_D = LPU32[DLW-1:0];

    // scale bytes retired after a chunk
    wire sc8 = (E8 >= BLOCK) ? 1'b1 : (&cg[K8L-1:0]);
    wire sc4 = (E4 >= BLOCK) ? 1'b1 : (&cg[K4L-1:0]);
    wire [NBU*8-1:0] sdr_sh = c8_r ? (sc8 ? (sdr >> (8 * SH8)) : sdr) : (sc4 ? (sdr >> (8 * SH4)) : sdr);

    // P0: the chunk's elements, cut from the line
    reg  [E4*16-1:0]  ch_e;
    reg  [LL-1:0]     ix;
    reg  [CLW+LE8-1:0] b8;
    reg  [CLW+LE4-1:0] b4;
    integer           ei;
    always @* begin
        b8 = {cl, {LE8{1'b0}}};
        b4 = {cl, {LE4{1'b0}}};
        for (ei = 0; ei < E4; ei = ei + 1) begin
            if (c8_r && ei < E8)
                ix = b8[LL-1:0] + ei[LL-1:0];
            else
                ix = b4[LL-1:0] + ei[LL-1:0];
            ch_e[16*ei +: 16] = line[16*ix +: 16];
        end
    end

    // the chunk's blocks: base = bias - scale, NaN flag
    reg  [NBC*10-1:0] w_base;
    reg  [NBC-1:0]    w_nan;
    integer           wb;
    always @* begin
        for (wb = 0; wb < NBC; wb = wb + 1) begin
            w_base[10*wb +: 10] = {6'd0, bias_r} - {2'd0, sdr[8*wb +: 8]};
            w_nan[wb]           = &sdr[8*wb +: 8];
        end
    end

    // ---- encoders ------------------------------------------------------------------------
    wire [E4*8-1:0] cd;
    generate
        for (gi = 0; gi < E4; gi = gi + 1) begin : g_enc
            localparam integer BI = (E4 > BLOCK) ? gi / BLOCK : 0;
            dnpu_mx_enc u_enc (
                .clk(clk), .en(adv), .fm(fm_r), .fint(fint_r), .fsgn(fsgn_r), .fr(fr_r),
                .maxq(maxq_r), .base(p1_base[10*BI +: 10]), .nan(p1_nan[BI]),
                .x(p1_e[16*gi +: 16]), .code(cd[8*gi +: 8]));
        end
    endgenerate

    // P2 -> P3: the codes as a little-endian bitstream of w-bit fields, or the header
    reg  [PB*8-1:0]   pk;
    integer           pi;
    always @* begin
        pk = {PB*8{1'b0}};
        if (p2_hdr)
            pk[127:0] = p2_h;
        else if (c8_r)
            pk[E8*8-1:0] = cd[E8*8-1:0];
        else if (c6_r)
            for (pi = 0; pi < E4; pi = pi + 1)
                pk[6*pi +: 6] = cd[8*pi +: 6];
        else
            for (pi = 0; pi < E4; pi = pi + 1)
                pk[4*pi +: 4] = cd[8*pi +: 4];
    end

    // ---- output buffer ---------------------------------------------------------------------
    wire            src_done = (d_rem == {RW{1'b0}}) & ~d_busy & ~p1_v & ~p2_v & ~p3_v;
    assign m_valid  = active & (beats_left != {BW{1'b0}}) & ((cnt >= RS_S) | src_done);
    wire            out_go   = m_valid & m_ready;
    assign m_last   = (beats_left == {{(BW-1){1'b0}}, 1'b1});
    assign m_bytes  = m_last ? lastb : BB_B;

    // The slots after this cycle's beat (out_go) and insert (ins): both outcomes of the
    // beat's handshake are made from cnt beside it and chosen by it last.
    wire [SW-1:0]   cnt_b    = cnt - RS_S;              // a beat leaves
    wire            ins_b    = p3_v & ({1'b0, cnt_b} + {1'b0, p3_cs} <= {1'b0, NSL_S});
    wire            ins      = out_go ? ins_b : ins_regs;
    wire [SW-1:0]   cnt_nb   = cnt_b + (ins_b ? p3_cs : {SW{1'b0}});
    wire [SW-1:0]   cnt_nn   = cnt + (ins_regs ? p3_cs : {SW{1'b0}});

    generate
        for (gi = 0; gi < RS; gi = gi + 1) begin : g_out
            assign m_data[GRAN*8*gi +: GRAN*8] =
                (rq == 2'd0) ? sl[GRAN*8*gi +: GRAN*8] :
                (rq == 2'd1) ? sl[GRAN*8*(RS + gi) +: GRAN*8] : sl[GRAN*8*(2*RS + gi) +: GRAN*8];
        end
        for (gi = 0; gi < NSL; gi = gi + 1) begin : g_slot
            localparam [31:0] SI = gi;
            wire [31:0] jj = SI + NSL32 - {{(32-PW){1'b0}}, wp};
            wire [31:0] j  = (jj >= NSL32) ? jj - NSL32 : jj;   // part of the item for this slot
            always @(posedge clk)
                if (ins && j < {{(32-SW){1'b0}}, p3_cs})
                    sl[GRAN*8*gi +: GRAN*8] <= p3_b[GRAN*8*j[PW-1:0] +: GRAN*8];
        end
    endgenerate
    wire [31:0] wp_n  = {{(32-PW){1'b0}}, wp} + {{(32-SW){1'b0}}, p3_cs};

    // ---- state ---------------------------------------------------------------------------------
    always @(posedge clk) begin
        if (!rst_n) begin
            active      <= 1'b0;
            cmd_error   <= 1'b0;
            done        <= 1'b0;
            c8_r        <= 1'b1;
            c6_r        <= 1'b0;
            fm_r        <= 4'b0100;
            fint_r      <= 1'b0;
            fsgn_r      <= 3'b100;
            fr_r        <= 3'd4;
            maxq_r      <= 8'h7E;
            bias_r      <= 4'd7;
            emax_r      <= 4'd8;
            beats_left  <= {BW{1'b0}};
            lastb       <= BB_B;
            f_rows_left <= 24'd0;
            f_row       <= {FRW{1'b0}};
            f_half      <= 2'd0;
            f_bank      <= 1'b0;
            pend        <= 2'd0;
            sc_done     <= 2'b00;
            ob          <= 1'b0;
            oh          <= 2'd0;
            f0_v        <= 1'b0;
            f1_v        <= 1'b0;
            sfb0        <= {NBU*8{1'b0}};
            sfb1        <= {NBU*8{1'b0}};
            d_rem       <= {RW{1'b0}};
            d_busy      <= 1'b0;
            d_half      <= 2'd0;
            d_line      <= {LLW{1'b0}};
            d_lines     <= {DLW{1'b0}};
            lv          <= 1'b0;
            dc          <= {DCW{1'b0}};
            cl          <= {CLW{1'b0}};
            cg          <= {CGW{1'b0}};
            hdr_needed  <= 1'b0;
            p1_v        <= 1'b0;
            p2_v        <= 1'b0;
            p3_v        <= 1'b0;
            wp          <= {PW{1'b0}};
            rq          <= 2'd0;
            cnt         <= {SW{1'b0}};
        end else begin
            cmd_error <= 1'b0;
            done      <= 1'b0;

            // fill
            f0_v <= s_go;
            f1_v <= f0_v;
            if (s_go) begin
                f_rows_left <= f_rows_left - 24'd1;
                f_row       <= f_ulast ? {FRW{1'b0}} : f_row + {{(FRW-1){1'b0}}, 1'b1};
                if (f_ulast) begin
                    f_half <= (f_half == 2'd2) ? 2'd0 : f_half + 2'd1;
                    f_bank <= ~f_bank;
                end
            end
            pend <= pend + {1'b0, s_go & (f_row == {FRW{1'b0}})} - {1'b0, ho};
            if (f1_v & f1_ulast)
                sc_done[f1_bank] <= 1'b1;
            for (ii = 0; ii < NBU; ii = ii + 1)
                if (sfill_we[ii]) begin
                    if (f1_bank)
                        sfb1[8*ii +: 8] <= sfill_w[8*ii +: 8];
                    else
                        sfb0[8*ii +: 8] <= sfill_w[8*ii +: 8];
                end

            // drain
            if (rd_go) begin
                d_line  <= d_line + {{(LLW-1){1'b0}}, 1'b1};
                d_lines <= d_lines - {{(DLW-1){1'b0}}, 1'b1};
                lv      <= 1'b1;
            end else if (chunk_go & cl_last) begin
                lv      <= 1'b0;
            end
            if (hdr_go)
                hdr_needed <= 1'b0;
            if (chunk_go) begin
                dc  <= dc - {{(DCW-1){1'b0}}, 1'b1};
                cl  <= cl_last ? {CLW{1'b0}} : cl + {{(CLW-1){1'b0}}, 1'b1};
                cg  <= cg_last ? {CGW{1'b0}} : cg + {{(CGW-1){1'b0}}, 1'b1};
                sdr <= sdr_sh;
                if (cg_last & ~d_fin)
                    hdr_needed <= 1'b1;
                if (d_fin)
                    d_busy <= 1'b0;
            end
            if (ho) begin
                d_busy     <= 1'b1;
                d_half     <= oh;
                oh         <= (oh == 2'd2) ? 2'd0 : oh + 2'd1;
                ob         <= ~ob;
                sc_done[ob] <= 1'b0;
                sdr        <= ob ? sfb1 : sfb0;
                if (ob)
                    sfb1 <= {NBU*8{1'b0}};
                else
                    sfb0 <= {NBU*8{1'b0}};
                d_rem      <= d_rem - u_el;
                dc         <= u_dc;
                d_line     <= {LLW{1'b0}};
                d_lines    <= LPU_D;
                lv         <= 1'b0;
                cl         <= {CLW{1'b0}};
                cg         <= {CGW{1'b0}};
                hdr_needed <= 1'b1;
            end

            // pipeline
            if (adv) begin
                p1_v   <= hdr_go | chunk_go;
                p1_hdr <= hdr_go;
                p2_v   <= p1_v;
                p2_hdr <= p1_hdr;
                p3_v   <= p2_v;
                p3_hdr <= p2_hdr;
            end else if (ins) begin
                p3_v   <= 1'b0;
            end

            // output buffer
            cnt <= out_go ? cnt_nb : cnt_nn;
            if (ins)
                wp <= (wp_n >= NSL32) ? wp_n[PW-1:0] - NSL32[PW-1:0] : wp_n[PW-1:0];
            if (out_go) begin
                rq         <= (rq == 2'd2) ? 2'd0 : rq + 2'd1;
                beats_left <= beats_left - {{(BW-1){1'b0}}, 1'b1};
                if (m_last) begin
                    done   <= 1'b1;
                    active <= 1'b0;
                    cnt    <= {SW{1'b0}};
                    wp     <= {PW{1'b0}};
                    rq     <= 2'd0;
                    p1_v   <= 1'b0;
                    p2_v   <= 1'b0;
                    p3_v   <= 1'b0;
                    d_busy <= 1'b0;
                end
            end

            if (cmd_go) begin
                c8_r        <= in_c8;
                c6_r        <= in_c6;
                fm_r        <= in_fm;
                fint_r      <= in_int;
                fsgn_r      <= {in_c8 & ~in_int, in_c6, ~in_c8 & ~in_c6};
                fr_r        <= in_fr;
                maxq_r      <= in_maxq;
                bias_r      <= in_bias;
                emax_r      <= in_emax;
                beats_left  <= c_beats[BW-1:0];
                lastb       <= c_lastb;
                f_rows_left <= cmd_rows;
                f_row       <= {FRW{1'b0}};
                f_half      <= 2'd0;
                f_bank      <= 1'b0;
                pend        <= 2'd0;
                sc_done     <= 2'b00;
                ob          <= 1'b0;
                oh          <= 2'd0;
                sfb0        <= {NBU*8{1'b0}};
                sfb1        <= {NBU*8{1'b0}};
                d_rem       <= c_elems[RW-1:0];
                d_busy      <= 1'b0;
                cnt         <= {SW{1'b0}};
                wp          <= {PW{1'b0}};
                rq          <= 2'd0;
                if (!fmt_ok || !rows_ok) begin
                    cmd_error   <= 1'b1;
                    done        <= 1'b1;
                    f_rows_left <= 24'd0;
                    d_rem       <= {RW{1'b0}};
                end else if (cmd_rows == 24'd0) begin
                    done        <= 1'b1;
                end else begin
                    active      <= 1'b1;
                end
            end
        end
    end

    // Data registers: no reset needed, qualified by their valid bits.
    always @(posedge clk) begin
        if (s_go) begin
            f0_e     <= in_e;
            f0_row   <= f_row;
            f0_ulast <= f_ulast;
            f0_bank  <= f_bank;
        end
        f1_max   <= seg_max;
        f1_row   <= f0_row;
        f1_ulast <= f0_ulast;
        f1_bank  <= f0_bank;
        if (adv) begin
            p1_e    <= hdr_go ? {{(E4*16-128){1'b0}}, sdr[127:0]} : ch_e;
            p1_base <= w_base;
            p1_nan  <= w_nan;
            p2_h    <= p1_e[127:0];
            p3_b    <= pk;
        end
    end

    // High bits of the sizes are zero for any legal command (RW/BW bits hold them); a
    // scale's high bits beyond the window are unused by construction.
    wire unused_ok = &{1'b0, c_bytes[47:LBB], c_beats[47:BW], c_elems[47:RW], c_lastm[47:LBB],
                       u_c8[47:DCW], u_c4[47:DCW], b4[CLW+LE4-1], wp_n[31:PW], f0_v, u_el48[47:RW]};
endmodule

`default_nettype wire
