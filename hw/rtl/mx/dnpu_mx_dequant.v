`default_nettype none
// dnpu_mx_dequant: the prefetch engine's MX decoder. Packed MX bytes (docs/MX.md
// layout) come in as AXI data beats; rows of VLEN BF16 values go out, bit-exact
// with dnpu.mx.dequantize_bf16.
//
// ---- Command -------------------------------------------------------------------
// cmd_fmt: `DNPU_MXFMT_* code; cmd_rows: rows of VLEN elements. A command is taken
// (cmd_valid & cmd_ready) only while the block is idle. Then, one cycle later:
//   * bad command (cmd_fmt not a format, or rows*VLEN not a whole number of MX
//     blocks, i.e. VLEN < BLOCK and rows not a multiple of BLOCK/VLEN):
//     cmd_error and done pulse together; no beat is taken, no row is produced;
//   * rows == 0: done pulses alone; no beat, no row;
//   * otherwise the stream below is read and `rows` rows are produced; done
//     pulses one cycle after the last row's m_valid & m_ready.
//
// ---- Beat contract (what the producer must send per good command) --------------
// The stream starts at an MX group boundary, in byte 0 of its first beat (byte k
// of a beat is s_data[8k+7:8k]). With nb = rows*VLEN/BLOCK blocks,
// B = BLOCK*w/8 code bytes per block and G = 16 + 16*B bytes per group:
//     bytes_needed = (nb/16)*G + (nb%16 ? 16 + (nb%16)*B : 0)
//                  = 16*ceil(nb/16) + rows*VLEN*w/8
//     beats        = ceil(bytes_needed / (DATA_W/8))
// exactly that many beats, no more. Bytes of the last beat past bytes_needed
// are dropped (the 64-byte padding of dnpu.mx.pack, or anything). s_ready stays
// low between commands, so the next command's beats may wait on s_data early.
//
// ---- Structure -----------------------------------------------------------------
// A byte realignment buffer (CAP bytes, front = byte 0) takes whole beats and
// gives whole chunks: a 16-byte group header (loads the 16 scale bytes) or one
// slice of SE = min(VLEN, 16*BLOCK) elements (SE*w/8 bytes). Slices never cross a
// group (SE divides 16*BLOCK), so one header's scales cover a slice. A slice goes
// to the D1 register (its codes, and per block the exponent base and NaN flag),
// is decoded by SE lanes (dnpu_mx_lane) into the output register; a row is
// RPS = VLEN/SE slices (1 unless VLEN > 16*BLOCK, e.g. asic-2048's rows span
// four groups). Three register stages: buffer, D1, m_data.
// Rate: one chunk per cycle. s_ready depends only on registers (fill and the
// beat count), never on m_ready; m_ready reaches only the chunk-consume decision.
// With DATA_W = 128, VLEN = 16 and 8-bit codes both a chunk and a beat are 16
// bytes: one beat every cycle, 32 rows per 33 beats at BLOCK 32.

`include "dnpu_isa.vh"

module dnpu_mx_dequant #(
    parameter integer DATA_W = 128,  // AXI data bits: 64, 128, 256 or 512
    parameter integer VLEN   = 16,   // BF16 lanes per output row: a power of two >= 8
    parameter integer BLOCK  = 32    // MX block: 8, 16, 32 or 64
) (
    input  wire                clk,
    input  wire                rst_n,

    input  wire                cmd_valid,
    output wire                cmd_ready,
    input  wire [2:0]          cmd_fmt,
    input  wire [23:0]         cmd_rows,
    output reg                 cmd_error,

    input  wire [DATA_W-1:0]   s_data,
    input  wire                s_valid,
    output wire                s_ready,

    output reg  [VLEN*16-1:0]  m_data,
    output reg                 m_valid,
    input  wire                m_ready,

    output reg                 done
);
    localparam integer IB    = DATA_W / 8;                   // bytes per beat
    localparam integer LI    = $clog2(IB);
    localparam integer LV    = $clog2(VLEN);
    localparam integer LB    = $clog2(BLOCK);
    localparam integer GE    = 16 * BLOCK;                   // elements per group
    localparam integer SE    = (VLEN < GE) ? VLEN : GE;      // elements per slice
    localparam integer RPS   = VLEN / SE;                    // slices per row
    localparam integer SPG   = GE / SE;                      // slices per group
    localparam integer NBS   = (SE >= BLOCK) ? SE / BLOCK : 1;  // blocks (scales) per slice
    localparam integer SPB   = (SE >= BLOCK) ? 1 : BLOCK / SE;  // slices per block
    localparam integer LSPB  = $clog2(SPB);
    localparam integer SCSH  = (SE >= BLOCK) ? NBS : 1;      // scale bytes retired per shift
    localparam integer CMAX  = (SE > 16) ? SE : 16;          // largest chunk, bytes
    localparam integer CAP   = CMAX + IB;                    // never stuck: see s_ready
    // Every chunk size (16, SE, SE*3/4, SE/2) and the beat are multiples of GRAN
    // bytes, so fill is too and the beat lands only on GRAN-byte boundaries.
    localparam integer GRAN  = (SE / 4 < 16) ? ((SE / 4 < IB) ? SE / 4 : IB) : ((IB < 16) ? IB : 16);
    localparam integer LG    = $clog2(GRAN);
    localparam integer FW    = $clog2(CAP + 1);
    localparam integer BW    = 24 + LV + 2;                  // byte/beat counts
    localparam integer JW    = (RPS > 1) ? $clog2(RPS) : 1;
    localparam integer GW    = (SPG > 1) ? $clog2(SPG) : 1;
    localparam integer RALN  = (VLEN < BLOCK) ? $clog2(BLOCK / VLEN) : 0;  // rows must be a multiple of 2^RALN

    localparam integer J_LAST = RPS - 1;
    localparam integer G_LAST = SPG - 1;
    localparam integer C16    = 16;
    localparam integer SB8    = SE;          // slice bytes, 8-bit codes
    localparam integer SB6    = SE * 3 / 4;  // 6-bit codes (SE is a multiple of 4)
    localparam integer SB4    = SE / 2;      // 4-bit codes

    // Bad parameters stop elaboration: this module does not exist.
    generate
        if (IB < 8 || (IB & (IB - 1)) != 0 || VLEN < 8 || (VLEN & (VLEN - 1)) != 0 ||
            BLOCK < 8 || BLOCK > 64 || (BLOCK & (BLOCK - 1)) != 0) begin : g_bad_param
            dnpu_mx_dequant_bad_parameters u_bad ();
        end
    endgenerate

    // ---- command ------------------------------------------------------------------
    reg               active;
    reg  [2:0]        fmt_r;
    reg               c8_r, c6_r;                // code width 8 / 6 (else 4)
    reg  [FW-1:0]     sb_r;                      // slice bytes
    reg  [3:0]        cexp_r;                    // the format's c: BF16 exponent = scale - c + u (dnpu_mx_lane)
    reg  [BW-1:0]     beats_left;
    reg  [23:0]       rows_left;

    reg               fmt_ok, in_c8, in_c6;
    reg  [3:0]        in_cexp;
    always @* begin
        fmt_ok  = 1'b1;
        in_c8   = 1'b0;
        in_c6   = 1'b0;
        in_cexp = 4'd0;
        case (cmd_fmt)
            `DNPU_MXFMT_E4M3: begin in_c8 = 1'b1; in_cexp = 4'd7;  end
            `DNPU_MXFMT_E5M2: begin in_c8 = 1'b1; in_cexp = 4'd15; end
            `DNPU_MXFMT_INT8: begin in_c8 = 1'b1; in_cexp = 4'd6;  end
            `DNPU_MXFMT_E3M2: begin in_c6 = 1'b1; in_cexp = 4'd3;  end
            `DNPU_MXFMT_E2M3: begin in_c6 = 1'b1; in_cexp = 4'd1;  end
            `DNPU_MXFMT_E2M1: begin               in_cexp = 4'd1;  end
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

    // Beat count (the contract above), from the shared MX size arithmetic; it fits BW bits.
`include "dnpu_mx_size.vh"
    wire [47:0] c_elems = {{(48-24){1'b0}}, cmd_rows} << LV;
    wire [47:0] c_beats = mx_need_beats(cmd_fmt, c_elems, LB, LI);

    assign cmd_ready = ~active;
    wire cmd_go = cmd_valid & ~active;

    // ---- byte realignment buffer ----------------------------------------------------
    reg  [CAP*8-1:0]  bq;          // byte 0 = oldest; bytes at >= fill are zero
    reg  [FW-1:0]     fill;
    reg               hdr_needed;
    reg  [GW-1:0]     g;           // slice index within the group
    reg  [JW-1:0]     j;           // slice index within the row
    reg  [127:0]      sc;          // scale bytes, front = the current slice's first block

    // Stage D1 (one slice) and the output register.
    reg               d1_valid;
    reg  [SE*8-1:0]   d1_code;
    reg  [NBS*10-1:0] d1_sbase;    // per block of the slice: scale - c, signed
    reg  [NBS-1:0]    d1_snan;     // per block of the slice: scale == 0xFF
    reg  [JW-1:0]     d1_slot;
    reg               d1_eor;      // last slice of a row
    reg               d1_last;     // last slice of the command
    reg               m_last;

    wire d2_go    = ~m_valid | m_ready;
    wire d1_ready = ~d1_valid | d2_go;

    // Taking a beat needs room for a whole beat on top of the current fill, decided
    // from registers only. CAP = CMAX + IB means a fill too small for the next
    // chunk always leaves room for a beat, so the buffer cannot deadlock.
    assign s_ready = active & (|beats_left) & (fill <= CMAX[FW-1:0]);
    wire s_go = s_valid & s_ready;

    wire working  = active & (|rows_left);
    wire hdr_go   = working & hdr_needed & (fill >= C16[FW-1:0]);
    wire slice_ok = working & ~hdr_needed & (fill >= sb_r);     // a slice goes if D1 can take it
    wire slice_go = slice_ok & d1_ready;
    wire eor      = (j == J_LAST[JW-1:0]);
    wire last_go  = slice_go & eor & (rows_left == 24'd1);

    // The buffer's next state both ways, a slice taken (_s) or not (_n), selected by
    // slice_go last: m_ready, through d1_ready, decides only the final select.
    wire [FW-1:0] wpos_n = hdr_go ? fill - C16[FW-1:0] : fill;
    wire [FW-1:0] wpos_s = fill - sb_r;

    wire [CAP*8-1:0] beat_ext = {{((CAP - IB) * 8){1'b0}}, s_data};
    // take has four nonzero values: constant shifts and a mux, not a barrel shifter.
    wire [CAP*8-1:0] bq_shr_n  = hdr_go ? (bq >> (C16 * 8)) : bq;
    wire [CAP*8-1:0] bq_shr_s  = c8_r ? (bq >> (SB8 * 8)) : (c6_r ? (bq >> (SB6 * 8)) : (bq >> (SB4 * 8)));
    wire [CAP*8-1:0] bq_next_n = bq_shr_n | (s_go ? (beat_ext << {wpos_n[FW-1:LG], {(LG + 3){1'b0}}}) : {CAP*8{1'b0}});
    wire [CAP*8-1:0] bq_next_s = bq_shr_s | (s_go ? (beat_ext << {wpos_s[FW-1:LG], {(LG + 3){1'b0}}}) : {CAP*8{1'b0}});
    wire [CAP*8-1:0] bq_next   = slice_go ? bq_next_s : bq_next_n;
    wire [FW-1:0]    fill_next = (slice_go ? wpos_s : wpos_n) + (s_go ? IB[FW-1:0] : {FW{1'b0}});

    // The scales retire as their blocks do: after each slice when a slice holds
    // whole blocks, after a block's last slice otherwise.
    wire sc_shift;
    generate
        if (SE >= BLOCK) begin : g_sc_every
            assign sc_shift = 1'b1;
        end else begin : g_sc_blk
            assign sc_shift = &g[LSPB-1:0];
        end
    endgenerate

    // Codes of the slice at the front of the buffer, one byte per lane.
    wire [SE*8-1:0] ex_code;
    genvar gi;
    generate
        for (gi = 0; gi < SE; gi = gi + 1) begin : g_ex
            assign ex_code[8*gi +: 8] = c8_r ? bq[8*gi +: 8]
                                      : c6_r ? {2'b00, bq[6*gi +: 6]}
                                      : {4'b0000, bq[4*gi +: 4]};
        end
    endgenerate

    always @(posedge clk) begin
        if (!rst_n) begin
            active     <= 1'b0;
            fmt_r      <= 3'd0;
            c8_r       <= 1'b1;
            c6_r       <= 1'b0;
            sb_r       <= SB8[FW-1:0];
            cexp_r     <= 4'd0;
            beats_left <= {BW{1'b0}};
            rows_left  <= 24'd0;
            cmd_error  <= 1'b0;
            done       <= 1'b0;
            bq         <= {CAP*8{1'b0}};
            fill       <= {FW{1'b0}};
            hdr_needed <= 1'b1;
            g          <= {GW{1'b0}};
            j          <= {JW{1'b0}};
            sc         <= 128'd0;
            d1_valid   <= 1'b0;
            m_valid    <= 1'b0;
            m_last     <= 1'b0;
        end else begin
            cmd_error <= 1'b0;
            done      <= 1'b0;

            if (cmd_go) begin
                fmt_r      <= cmd_fmt;
                c8_r       <= in_c8;
                c6_r       <= in_c6;
                sb_r       <= in_c8 ? SB8[FW-1:0] : (in_c6 ? SB6[FW-1:0] : SB4[FW-1:0]);
                cexp_r     <= in_cexp;
                beats_left <= c_beats[BW-1:0];
                rows_left  <= cmd_rows;
                hdr_needed <= 1'b1;
                g          <= {GW{1'b0}};
                j          <= {JW{1'b0}};
                if (!fmt_ok || !rows_ok) begin
                    cmd_error <= 1'b1;
                    done      <= 1'b1;
                end else if (cmd_rows == 24'd0) begin
                    done      <= 1'b1;
                end else begin
                    active    <= 1'b1;
                end
            end

            if (s_go)
                beats_left <= beats_left - {{(BW-1){1'b0}}, 1'b1};

            // The last slice leaves only the dropped tail of the last beat behind.
            if (last_go) begin
                bq   <= {CAP*8{1'b0}};
                fill <= {FW{1'b0}};
            end else begin
                bq   <= bq_next;
                fill <= fill_next;
            end

            if (hdr_go) begin
                sc         <= bq[127:0];
                hdr_needed <= 1'b0;
            end else if (slice_go) begin
                if (sc_shift)
                    sc <= sc >> (SCSH * 8);
                j <= eor ? {JW{1'b0}} : j + {{(JW-1){1'b0}}, 1'b1};
                if (eor)
                    rows_left <= rows_left - 24'd1;
                if (g == G_LAST[GW-1:0]) begin
                    g          <= {GW{1'b0}};
                    hdr_needed <= 1'b1;
                end else begin
                    g <= g + {{(GW-1){1'b0}}, 1'b1};
                end
            end

            if (slice_go)
                d1_valid <= 1'b1;
            else if (d2_go)
                d1_valid <= 1'b0;

            if (d1_valid && d2_go) begin
                m_valid <= d1_eor;
                m_last  <= d1_last;
            end else if (m_ready) begin
                m_valid <= 1'b0;
            end

            if (m_valid && m_ready && m_last) begin
                done   <= 1'b1;
                active <= 1'b0;
            end
        end
    end

    // Data registers: no reset needed, qualified by d1_valid / m_valid.
    // Once per block, not per lane: the exponent base and the NaN-block flag.
    wire [NBS*10-1:0] ex_sbase;
    wire [NBS-1:0]    ex_snan;
    generate
        for (gi = 0; gi < NBS; gi = gi + 1) begin : g_sb
            assign ex_sbase[10*gi +: 10] = {2'b00, sc[8*gi +: 8]} - {6'd0, cexp_r};
            assign ex_snan[gi]           = &sc[8*gi +: 8];
        end
    endgenerate

    always @(posedge clk) begin
        if (slice_go) begin
            d1_code  <= ex_code;
            d1_sbase <= ex_sbase;
            d1_snan  <= ex_snan;
            d1_slot  <= j;
            d1_eor   <= eor;
            d1_last  <= last_go;
        end
    end

    // ---- lanes ------------------------------------------------------------------------
    wire [SE*16-1:0] dec;
    generate
        for (gi = 0; gi < SE; gi = gi + 1) begin : g_lane
            dnpu_mx_lane u_lane (
                .fmt   (fmt_r),
                .snan  (d1_snan[(SE >= BLOCK) ? gi / BLOCK : 0]),
                .sbase (d1_sbase[10*((SE >= BLOCK) ? gi / BLOCK : 0) +: 10]),
                .code  (d1_code[8*gi +: 8]),
                .bf16  (dec[16*gi +: 16])
            );
        end
    endgenerate

    // The beat count's high bits are zero (BW bits hold it).
    wire unused_ok = &{1'b0, c_beats[47:BW]};

    // Slice d1_slot of a row fills lanes [d1_slot*SE, d1_slot*SE + SE).
    wire d2_load = d1_valid & d2_go;
    generate
        for (gi = 0; gi < VLEN; gi = gi + 1) begin : g_out
            localparam integer SLOT = gi / SE;
            always @(posedge clk)
                if (d2_load && (RPS == 1 || d1_slot == SLOT[JW-1:0]))
                    m_data[16*gi +: 16] <= dec[16*(gi % SE) +: 16];
        end
    endgenerate
endmodule

`default_nettype wire
