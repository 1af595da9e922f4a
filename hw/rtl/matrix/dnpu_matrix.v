`default_nettype none
// dnpu_matrix: the matrix unit (the M_MM* instructions). Y[M, N] = X[M, K] . W[N, K]^T with
// BF16 operands and FP32 accumulation, bit for bit dnpu.spec.matmul.matmul_bf16
// (docs/NUMERICS.md section 11): per output, acc = +0 or (cmd_ain) the FP32 accumulator an
// earlier instruction left in A, then for k = 0..K-1 in increasing k
// acc = fp32(acc + fp32(x * w)); the result is bf16(acc), bf16(acc + r) rounded once with
// a residual, or (cmd_f32) acc itself as two rows, bits 31:16 then 15:0. dnpu_core checks the operands before it issues (ranges fit, Y does not overlap
// X, R is Y itself or does not overlap Y); the unit assumes them.
//
// Array. ROWS x VLEN outputs, held by (ROWS/SLOTS) x VLEN output-stationary PEs
// (dnpu_matrix_pe), each serving SLOTS rows of one column: one FP32 multiply-add per PE per
// cycle. A step offers one k to every row; the PEs take one every SLOTS cycles (each row's
// multiply-add in one of them, so the adder and accumulator loop can be SLOTS stages deep),
// and a step's sums reach the shadow registers PE_D = 2*SLOTS cycles after it (the
// operands, then each product, are registered first). SLOTS = 1: a step a cycle. N is cut into NT tiles of VLEN columns, M into G = ceil(M/ROWS)
// groups of ROWS rows (the last group may be partial: its missing rows' PEs stay idle and
// are neither read nor written). Tiles run in the weight stream's order: for each group g,
// for each tile j, the tile's K/BLOCK squares.
//
// Weights. The MX decoder delivers, per (g, j), the tile's K rows of VLEN BF16 in square
// order (dnpu.spec.matrix.square_order): square b = every column c's MX block
// W[j*VLEN + c, b*BLOCK .. b*BLOCK+BLOCK-1], c by c, cut into BLOCK rows of VLEN. A square is
// needed whole from its first k (column VLEN-1's block comes last), so the unit buffers
// WBUF squares in a ring; square s computes while later squares load. w_ready is high while
// a row is owed and a square slot is free; exactly G*NT*K rows are taken per command.
//
// Weights from vector SRAM (cmd_wv: M_MM_V). Row n of W is the K/VLEN rows at
// V[vw + n*K/VLEN], so column c's block of square b of tile j, W[j*VLEN + c, b*BLOCK ..],
// lies in V[vw + (j*VLEN + c)*K/VLEN + b*BLOCK/VLEN ..]: max(1, BLOCK/VLEN) whole rows, or,
// with VLEN > BLOCK, the BLOCK lanes at (b % P)*BLOCK of one row (P = VLEN/BLOCK). The unit
// reads them itself on its read port in square order (per g, j, b: columns c in order,
// each column's rows in order), a read per column block (per row of it when BLOCK > VLEN),
// and writes what arrives straight into the ring: a whole ring row, or with P > 1 the
// column's slice of the ring row, which is complete (taken, as a streamed row) with its
// P-th slice. No weight row is buffered outside the ring. A read is issued only while its
// row has a free ring slot (counting the read in flight), so nothing waits on the port.
// W reads come last in the read-port priority (below the X prefetch, A reads and residual
// reads): each square then costs max(VLEN, BLOCK) weight reads plus its X slice reads on
// the one port, and the array (BLOCK cycles a square) waits for the port. w_ready is low.
//
// Activations. Before square s computes, its X slices (each group row's BLOCK k, i.e.
// max(1, BLOCK/VLEN) vector-SRAM rows; with VLEN > BLOCK the one row holding them) are
// read into one half of a double buffer: the next square's slices are prefetched while the
// current square computes. X row i, k: lane k%VLEN of V[vx + i*(K/VLEN) + k/VLEN].
//
// Accumulators in (cmd_ain). Tile (g, j)'s A rows (two per group row i: V[va + 2*(i*NT + j)]
// and the one after) are read into init registers before its first multiply-add, which
// takes them; the next tile's are read while this one computes. Read-port priority: X
// prefetch (the array must not starve), then these reads, then a drain's residual reads.
//
// Output. A tile's last multiply-add writes its sums to a shadow register in each PE as
// well (PE_D cycles after its step), and the next tile starts from its init in the step after; the shadow drains while
// the next tile accumulates, one row a cycle: read R[vr + i*NT + j] (residual only), then
// out = fp_add_f(sh, r, bf16) (without residual: fp_add_f(sh, -0, bf16) = bf16(sh), -0
// kept), then write V[vd + i*NT + j]; with cmd_f32 two writes a row, sh's bits 31:16 to
// V[vd + 2*(i*NT + j)] and bits 15:0 to the row after. Writes come in stream order (g, j), rows i increasing.
// A tile's last multiply-add waits while the previous tile's shadow is still draining.
//
// Vector SRAM ports (dnpu_sram timing: rdata = mem[raddr] the cycle after re). v_re and
// v_raddr are combinational from the unit's registers; v_rdata is sampled exactly one cycle
// after v_re (never later), so the port must be owned by the unit for the whole command.
// X prefetch has priority over residual reads; without a residual the drain needs no reads.
// v_we, v_waddr, v_wdata come from registers (v_we is gated by flush).
//
// Timing, M_MM_V. Every cycle from the handshake's next the port does one read, the
// weight reads filling whatever the X, A and residual reads leave, until the last weight
// read; that row arrives the cycle after, then as M_MM: the last square's SLOTS*BLOCK
// cycles, the last tile's m_last rows drained, PE_D + 2 + OUT_D. With R = G*NT*(K/BLOCK)*max(VLEN, BLOCK) weight
// reads + NT*(K/BLOCK)*M*max(1, BLOCK/VLEN) X reads (+ (M*NT - m_last) residual reads):
//     done ~ R + 1 + SLOTS*BLOCK + m_last + PE_D + 2 + OUT_D
// (dnpu.perf.analytical.mm_v_unit_cycles), or, where the array is the limit (SLOTS*BLOCK
// cycles a square above a square's reads), the first square's reads and then every square's
// SLOTS*BLOCK cycles. The port idles, and the figure runs a few per
// cent short, when the ring is full (a square holds its slot until its last k) or a tile
// end waits for the previous drain; X reads of the last square after the last weight read
// make it long by as many.
//
// Timing. With w_valid always 1 and the read port keeping up, which
// ROWS*(max(1, BLOCK/VLEN) + 1) + 1 <= SLOTS*BLOCK guarantees (a square's X slice reads plus
// a tile end's residual reads fit in the SLOTS*BLOCK cycles a square takes; with cmd_f32
// also 2*ROWS + PE_D + 1 <= SLOTS*BLOCK: a tile's drain ends within the next square):
// handshake in cycle 0, the first square's rows taken in cycles 1 .. BLOCK, the steps
// from cycle BLOCK+1 one every SLOTS cycles (a square computes from the cycle after its
// last row arrives; the ring keeps the next square ready, the loader taking a row a cycle
// while it has room), so the last of the T = G*NT*K steps is in cycle
// BLOCK + 1 + SLOTS*(T-1) (SLOTS = 1: every row taken the cycle after the one before, the
// last in cycle T); the last tile drains m_last = M - (G-1)*ROWS rows (read, convert,
// write: one a cycle, 2 + OUT_D stages, from PE_D cycles after the last step; two cycles
// a row with cmd_f32), and done is high in cycle
//     BLOCK + 1 + SLOTS*(T-1) + m_last * (cmd_f32 ? 2 : 1) + PE_D + 2 + OUT_D
// (SLOTS = 1: T + BLOCK + m_last * (cmd_f32 ? 2 : 1) + 5; OUT_D = 2 where SLOTS > 1).
// The accumulator reads of cmd_ain hide behind the weight stream when 2*ROWS more reads
// fit a tile's K cycles beside the X slices.
// Otherwise the unit stalls (w_ready low while the square ring is full) and stays correct.
//
// Handshakes. cmd_ready = idle and not flush (a command is not taken in a flush cycle);
// operands are sampled at cmd_valid && cmd_ready. done pulses one cycle, the cycle after the
// last v_we; the unit is idle (cmd_ready) in that cycle. flush (synchronous abort): from the
// cycle it is high, w_ready, v_we and done are low, and at its edge the unit returns to
// idle (in-flight reads are dropped). rst_n (synchronous) returns to idle at its edge.
//
// Parameters: VLEN power of two 8..2048, ROWS 1..VLEN, BLOCK 8/16/32/64, WBUF power of
// two >= 2, VEC_ROWS the vector SRAM's depth, SLOTS 1..4 dividing ROWS.

module dnpu_matrix #(
    parameter integer VLEN     = 16,
    parameter integer ROWS     = 4,
    parameter integer BLOCK    = 32,
    parameter integer WBUF     = 2,
    parameter integer VEC_ROWS = 1024,
    parameter integer SLOTS    = 1
) (
    input  wire                        clk,
    input  wire                        rst_n,         // synchronous, active low
    input  wire                        flush,         // synchronous abort

    input  wire                        cmd_valid,
    output wire                        cmd_ready,
    input  wire [31:0]                 cmd_m,         // M >= 1
    input  wire [31:0]                 cmd_ntiles,    // NT = N / VLEN >= 1
    input  wire [31:0]                 cmd_k,         // K >= 1, a multiple of max(VLEN, BLOCK)
    input  wire [$clog2(VEC_ROWS)-1:0] cmd_vx,
    input  wire [$clog2(VEC_ROWS)-1:0] cmd_vd,
    input  wire [$clog2(VEC_ROWS)-1:0] cmd_vr,
    input  wire                        cmd_res,
    input  wire [$clog2(VEC_ROWS)-1:0] cmd_va,       // A (cmd_ain)
    input  wire                        cmd_ain,      // start from A's FP32 accumulators
    input  wire                        cmd_f32,      // write acc as FP32 rows, no rounding
    input  wire [$clog2(VEC_ROWS)-1:0] cmd_vw,       // W (cmd_wv)
    input  wire                        cmd_wv,       // W from vector SRAM rows, not w_data

    input  wire                        w_valid,
    input  wire [VLEN*16-1:0]          w_data,
    output wire                        w_ready,

    output reg                         v_re,
    output reg  [$clog2(VEC_ROWS)-1:0] v_raddr,
    input  wire [VLEN*16-1:0]          v_rdata,
    output wire                        v_we,
    output reg  [$clog2(VEC_ROWS)-1:0] v_waddr,
    output reg  [VLEN*16-1:0]          v_wdata,

    output wire                        done
);
    localparam integer VAW  = $clog2(VEC_ROWS);
    localparam integer LOGV = $clog2(VLEN);
    localparam integer LOGB = $clog2(BLOCK);
    localparam integer WSW  = $clog2(WBUF);
    localparam integer XR   = (BLOCK >= VLEN) ? BLOCK / VLEN : 1;     // SRAM rows per X slice
    localparam integer XW   = (BLOCK >= VLEN) ? BLOCK : VLEN;         // elements per X slice
    localparam integer XPB  = XW / BLOCK;                             // squares per X slice
    localparam integer PW   = (XR > 1) ? $clog2(XR) : 1;
    localparam integer RW   = (ROWS > 1) ? $clog2(ROWS) : 1;
    localparam integer XIW  = $clog2(2 * ROWS);
    localparam integer PE_D = 2 * SLOTS; // cycles from a step to its last row's sums in sh (dnpu_matrix_pe)
    localparam integer PR   = ROWS / SLOTS;                       // physical PE rows
    // the drain's add (dnpu_matrix_out) in two stages where the PEs are pipelined: D1, D2
    localparam integer OUT_D = (SLOTS > 1) ? 2 : 1;
    localparam integer SW   = (SLOTS > 1) ? $clog2(SLOTS) : 1;
    localparam [31:0] SL_M1_32 = SLOTS - 1;
    localparam integer SH_UP = (LOGB >= LOGV) ? LOGB - LOGV : 0;
    localparam integer SH_DN = (LOGB >= LOGV) ? 0 : LOGV - LOGB;
    localparam [31:0] ROWS_32 = ROWS;
    localparam [31:0] WBUF_32 = WBUF;
    localparam [WSW:0] NSQ_FULL = WBUF_32[WSW:0];
    localparam [31:0] XR_M1_32 = XR - 1;
    localparam [PW-1:0] XR_M1 = XR_M1_32[PW-1:0];
    // cmd_wv: slices per ring row (each one column block's BLOCK lanes) and their width
    localparam integer WP   = (VLEN > BLOCK) ? VLEN / BLOCK : 1;
    localparam integer WPW  = (WP > 1) ? $clog2(WP) : 1;
    localparam integer WSL  = VLEN * 16 / WP;
    localparam [31:0] WP_M1_32 = WP - 1;
    localparam [WPW-1:0] WP_M1 = WP_M1_32[WPW-1:0];
    localparam [31:0] VL_M1_32 = VLEN - 1;
    localparam [LOGV-1:0] VL_M1 = VL_M1_32[LOGV-1:0];

    // ---- the command ------------------------------------------------------------------
    reg            busy;
    reg [31:0]     q_m, q_kb_m1, q_nt_m1;
    reg [VAW-1:0]  q_kr, q_nt, q_rkr, q_rnt, q_vd, q_vr, q_va;
    reg            q_res, q_ain, q_f32;
    reg            q_wv;
    reg [VAW-1:0]  q_vw, q_k;

    wire           accept = cmd_valid & cmd_ready;
    wire [31:0]    kr32  = cmd_k >> LOGV;
    wire [31:0]    rkr32 = kr32 * ROWS_32;
    wire [31:0]    rnt32 = cmd_ntiles * ROWS_32;

    assign cmd_ready = ~busy & ~flush;

    // rows of the group starting at row g0
    function [31:0] rows_of;
        input [31:0] m;
        input [31:0] g0;
        reg   [31:0] rem;
        begin
            rem     = m - g0;
            rows_of = (rem > ROWS_32) ? ROWS_32 : rem;
        end
    endfunction

    // the group starting at row g0 is the last one
    function last_group;
        input [31:0] m;
        input [31:0] g0;
        begin
            last_group = ({1'b0, g0} + {1'b0, ROWS_32}) >= {1'b0, m};
        end
    endfunction

    // ---- weight loader: the square ring ------------------------------------------------
    // Registers, not a RAM: every column reads its own row of the square each cycle (VLEN
    // read ports), which no block or distributed RAM has; Yosys's MEMORY_LIBMAP is told so.
    (* ram_style = "logic" *)
    reg [VLEN*16-1:0] wbuf [0:WBUF*BLOCK-1];
    reg [LOGB-1:0] ld_row;
    reg [WSW-1:0]  wslot;
    reg [31:0]     ld_b, ld_j, ld_g0;
    reg            ld_done;
    reg [WSW:0]    nsq;                 // complete squares not yet computed

    // cmd_wv: a weight read's data arrives (slice ld_p of the ring row; wd_sq: the square's last)
    reg            wd_v, wd_sq;
    reg [WPW-1:0]  ld_p;
    wire           wd_row  = wd_v & (ld_p == WP_M1);

    assign w_ready = busy & ~q_wv & ~ld_done & (nsq < NSQ_FULL) & ~flush;
    wire   take_mx = w_valid & w_ready;
    wire   take    = take_mx | wd_row;          // a ring row is complete
    wire   sq_in   = take & (&ld_row);

    // the arriving row's slice of this square's blocks: lanes (b % P)*BLOCK .. with P > 1
    wire [WSL-1:0]     wv_slice;
    generate
        if (WP > 1) begin : g_wslice
            wire [WSL-1:0] sl [0:WP-1];
            genvar gs;
            for (gs = 0; gs < WP; gs = gs + 1) begin : g_sl
                assign sl[gs] = v_rdata[gs*WSL +: WSL];
            end
            assign wv_slice = sl[ld_b[WPW-1:0]];
        end else begin : g_wslice1
            assign wv_slice = v_rdata;
        end
    endgenerate
    wire [VLEN*16-1:0] wb_data = q_wv ? {WP{wv_slice}} : w_data;
    integer wq;
    always @(posedge clk)
        for (wq = 0; wq < WP; wq = wq + 1)
            if (take_mx | (wd_v & (ld_p == wq[WPW-1:0])))
                wbuf[{wslot, ld_row}][wq*WSL +: WSL] <= wb_data[wq*WSL +: WSL];

    // ---- compute position and PE operands ----------------------------------------------
    reg [LOGB-1:0] c_kk;
    reg [WSW-1:0]  cslot;
    reg [31:0]     c_b, c_j, c_g0, c_mg;
    reg [VAW-1:0]  c_gnt;               // g0 * NT
    reg            c_xs, c_done;
    reg [1:0]      xrdy;                // X buffer half holds its square's slices

    reg            sh_full;             // shadow rows still to be read out
    reg [PE_D-1:0] te_q;                // a tile's last step, on its way through the PEs' stages
    reg            d1_v, d1_last;
    wire           sh_block   = sh_full | (|te_q) | (d1_v & ~d1_last);
    wire           c_sq_last  = &c_kk;
    wire           c_tile_end = c_sq_last & (c_b == q_kb_m1);
    wire           c_first = (c_b == 0) & (c_kk == 0);
    reg            ai_full;             // init registers hold the next tile's accumulators
    reg            aid_v, aid_p, aid_last;  // an A read's data arrives (row aid_r, half aid_p)
    reg [RW-1:0]   aid_r;
    reg  [SW-1:0]  ph;                  // cycles until the PEs take the next step
    wire           step = busy & ~c_done & (nsq != 0) & xrdy[c_xs] & ~(c_tile_end & sh_block) &
                          ~(q_ain & c_first & ~ai_full) & (ph == {SW{1'b0}});
    wire           sq_out = step & c_sq_last;

    (* ram_style = "logic" *)                 // ROWS read ports a cycle, as wbuf
    reg [XW*16-1:0] xbuf [0:2*ROWS-1];
    wire [ROWS*16-1:0] x_row;
    wire [VLEN*16-1:0] w_col;
    wire [ROWS*VLEN*32-1:0] sh_all;
    wire [ROWS*VLEN*32-1:0] a_init;     // per row and column: the tile's initial accumulator
    wire [ROWS-1:0]         row_v;      // the group's row exists

    // the k's element in the X slice: with VLEN > BLOCK a slice holds XPB squares
    wire [$clog2(XW)-1:0] xe;
    generate
        if (XPB > 1) begin : g_xe_wide
            assign xe = {c_b[$clog2(XPB)-1:0], c_kk};
        end else begin : g_xe
            assign xe = c_kk;
        end
    endgenerate

    genvar gr, gc, gs;
    generate
        if (SLOTS < 1 || SLOTS > 4 || ROWS % SLOTS != 0) begin : g_bad
            // elaboration stops here in every tool, and the missing module's name says why
            dnpu_matrix_SLOTS_must_be_1_to_4_and_divide_ROWS u_bad ();
        end
        for (gc = 0; gc < VLEN; gc = gc + 1) begin : g_wcol
            // column c's element k of the square: flat index c*BLOCK + k, row / lane of it
            localparam [31:0] CI32 = gc;
            wire [LOGV+LOGB-1:0] e = {CI32[LOGV-1:0], c_kk};
            assign w_col[gc*16 +: 16] = wbuf[{cslot, e[LOGV+LOGB-1:LOGV]}][e[LOGV-1:0]*16 +: 16];
        end
        for (gr = 0; gr < ROWS; gr = gr + 1) begin : g_x
            localparam [31:0] RI32 = gr;
            localparam [XIW-1:0] XI0 = RI32[XIW-1:0];
            localparam [31:0] RI2_32 = gr + ROWS;
            localparam [XIW-1:0] XI1 = RI2_32[XIW-1:0];
            assign row_v[gr] = RI32 < c_mg;
            assign x_row[gr*16 +: 16] = xbuf[c_xs ? XI1 : XI0][xe*16 +: 16];
            for (gc = 0; gc < VLEN; gc = gc + 1) begin : g_ai
                reg [31:0] ainit;           // this row and column's accumulator from A, hi half then lo
                always @(posedge clk)
                    if (aid_v & (aid_r == RI32[RW-1:0])) begin
                        if (aid_p)
                            ainit[15:0] <= v_rdata[gc*16 +: 16];
                        else
                            ainit[31:16] <= v_rdata[gc*16 +: 16];
                    end
                assign a_init[(gr*VLEN + gc)*32 +: 32] = q_ain ? ainit : 32'd0;
            end
        end
        // the array: physical row pr's PEs serve rows pr*SLOTS .. pr*SLOTS + SLOTS-1
        for (gr = 0; gr < PR; gr = gr + 1) begin : g_row
            wire [SLOTS-1:0] v_p = row_v[gr*SLOTS +: SLOTS];
            for (gc = 0; gc < VLEN; gc = gc + 1) begin : g_pe
                wire [SLOTS*32-1:0] init_p, sh_p;
                for (gs = 0; gs < SLOTS; gs = gs + 1) begin : g_slot
                    localparam integer LR = gr*SLOTS + gs;
                    assign init_p[gs*32 +: 32] = a_init[(LR*VLEN + gc)*32 +: 32];
                    assign sh_all[(LR*VLEN + gc)*32 +: 32] = sh_p[gs*32 +: 32];
                end
                dnpu_matrix_pe #(.SLOTS(SLOTS)) u_pe (
                    .clk(clk), .clr(~rst_n | flush), .en(step & v_p[0]), .v(v_p),
                    .first(c_first), .last(c_tile_end), .init(init_p),
                    .x(x_row[gr*SLOTS*16 +: SLOTS*16]), .w(w_col[gc*16 +: 16]), .sh(sh_p));
            end
        end
    endgenerate

    // ---- X prefetch ---------------------------------------------------------------------
    reg [31:0]     pf_b, pf_j, pf_g0, pf_mg, pf_r;
    reg [PW-1:0]   pf_p;
    reg            pf_xs, pf_done;
    reg [VAW-1:0]  pf_gx, pf_rkr;       // vx + g0*(K/VLEN), r*(K/VLEN)
    reg            pfd_v, pfd_last, pfd_xs;
    reg [XIW-1:0]  pfd_xi;
    reg [PW-1:0]   pfd_p;

    wire           pf_req   = busy & ~pf_done & ~xrdy[pf_xs];
    wire [31:0]    pf_boff  = (pf_b << SH_UP) >> SH_DN;     // (b*BLOCK) / VLEN
    wire [VAW-1:0] pf_p_ext;
    wire [VAW-1:0] pf_addr  = pf_gx + pf_rkr + pf_boff[VAW-1:0] + pf_p_ext;
    wire           pf_row_end = (pf_p == XR_M1);
    wire           pf_sq_end  = pf_row_end & (pf_r == pf_mg - 1);
    wire [31:0]    pf_xi32    = (pf_xs ? ROWS_32 : 32'd0) + pf_r;
    generate
        if (VAW > PW) begin : g_pext
            assign pf_p_ext = {{(VAW-PW){1'b0}}, pf_p};
        end else begin : g_pext_n
            assign pf_p_ext = pf_p[VAW-1:0];
        end
    endgenerate

    always @(posedge clk)
        if (pfd_v)
            xbuf[pfd_xi][pfd_p*VLEN*16 +: VLEN*16] <= v_rdata;

    // ---- accumulator preload (cmd_ain) -----------------------------------------------------
    reg [31:0]     ai_j, ai_g0, ai_mg, ai_r;
    reg [VAW-1:0]  ai_gnt, ai_off;      // g0*NT; g0*NT + j + r*NT
    reg            ai_p, ai_issued, ai_fin;
    wire           ai_req      = busy & q_ain & ~ai_issued & ~pf_req;
    wire           ai_row_end  = ai_p;
    wire           ai_tile_end = ai_p & (ai_r == ai_mg - 1);
    wire [VAW-1:0] ai_off2     = ai_off << 1;
    wire [VAW-1:0] ai_addr     = q_va + (ai_off2 | {{(VAW-1){1'b0}}, ai_p});

    // ---- drain ---------------------------------------------------------------------------
    reg [31:0]     dr_r, dr_mg;
    reg [VAW-1:0]  dr_off;              // g0*NT + j + r*NT
    reg            dr_fin;              // the command's last tile
    reg [RW-1:0]   d1_r;
    reg [VAW-1:0]  d1_waddr;
    reg            d1_fin, we_r, we_fin, done_r;
    reg            dr_p, d1_p;          // cmd_f32: the row's half (0: bits 31:16)

    wire           dr_go   = sh_full & (~q_res | (~pf_req & ~ai_req));
    wire           dr_last = (dr_r == dr_mg - 1) & (~q_f32 | dr_p);
    wire [VAW-1:0] dr_off2 = dr_off << 1;
    // The shadow row being drained, through an array select: a variable part-select of
    // sh_all this wide (asic-2048: 65536 bits a row) is an internal error in Verilator.
    wire [VLEN*32-1:0] sh_rows [0:ROWS-1];
    genvar gr2;
    generate
        for (gr2 = 0; gr2 < ROWS; gr2 = gr2 + 1) begin : g_sh_rows
            assign sh_rows[gr2] = sh_all[gr2*VLEN*32 +: VLEN*32];
        end
    endgenerate
    wire [VLEN*32-1:0] sh_row = sh_rows[d1_r];
    wire [VLEN*16-1:0] out_row;         // the row written: in D1, or with OUT_D = 2 in D2
    wire [VLEN*16-1:0] f32_row;         // cmd_f32: the half of sh_row D1 takes

    // with OUT_D = 2 the converted row is written from D2 (wr_*: the stage that writes)
    wire               wr_v, wr_fin;
    wire [VAW-1:0]     wr_addr;
    wire [VLEN*16-1:0] f32_wr;
    generate
        if (OUT_D == 2) begin : g_d2
            reg                d2_v, d2_fin;
            reg [VAW-1:0]      d2_waddr;
            reg [VLEN*16-1:0]  d2_f32;
            always @(posedge clk) begin
                if (~rst_n | flush)
                    d2_v <= 1'b0;
                else
                    d2_v <= d1_v;
                d2_fin <= d1_fin;
                if (d1_v) begin
                    d2_waddr <= d1_waddr;
                    d2_f32   <= f32_row;
                end
            end
            assign wr_v    = d2_v;
            assign wr_fin  = d2_fin;
            assign wr_addr = d2_waddr;
            assign f32_wr  = d2_f32;
        end else begin : g_d1
            assign wr_v    = d1_v;
            assign wr_fin  = d1_fin;
            assign wr_addr = d1_waddr;
            assign f32_wr  = f32_row;
        end
        for (gc = 0; gc < VLEN; gc = gc + 1) begin : g_out
            wire [31:0] y;
            dnpu_matrix_out #(.STAGES(OUT_D)) u_out (.clk(clk), .en(d1_v & ~q_f32), .sh(sh_row[gc*32 +: 32]),
                                                     .res(q_res), .r(v_rdata[gc*16 +: 16]), .y(y));
            assign f32_row[gc*16 +: 16] = d1_p ? sh_row[gc*32 +: 16] : sh_row[gc*32+16 +: 16];
            assign out_row[gc*16 +: 16] = q_f32 ? f32_wr[gc*16 +: 16] : y[31:16];
            wire unused_ok = &{1'b0, y[15:0]};
        end
    endgenerate

    // ---- weight reads (cmd_wv) -------------------------------------------------------------
    // fe_*: the next read's place (group, tile, square, column, row of the column's block);
    // fe_ta = vw + j*K (tile j's first row), fe_ca its column c's block at square b.
    reg [31:0]     fe_b, fe_j, fe_g0;
    reg [LOGV-1:0] fe_c;
    reg [PW-1:0]   fe_t;
    reg            fe_done;
    reg [VAW-1:0]  fe_ta, fe_ca;
    wire [WSW:0]   nsq_fe  = nsq + {{WSW{1'b0}}, wd_v & wd_sq};   // squares complete after the read in flight
    wire           fe_req  = busy & q_wv & ~fe_done & (nsq_fe < NSQ_FULL) & ~pf_req & ~ai_req &
                             ~(sh_full & q_res);
    wire           fe_col_end = (fe_t == XR_M1);
    wire           fe_sq_end  = fe_col_end & (fe_c == VL_M1);
    wire [31:0]    fe_b1      = fe_b + 32'd1;
    wire [31:0]    fe_boff    = (fe_b1 << SH_UP) >> SH_DN;       // ((b+1)*BLOCK) / VLEN
    wire [VAW-1:0] fe_t_ext;
    generate
        if (VAW > PW) begin : g_text
            assign fe_t_ext = {{(VAW-PW){1'b0}}, fe_t};
        end else begin : g_text_n
            assign fe_t_ext = fe_t[VAW-1:0];
        end
    endgenerate

    always @* begin
        v_re    = pf_req | ai_req | (dr_go & q_res) | fe_req;
        v_raddr = pf_req ? pf_addr : ai_req ? ai_addr : (sh_full & q_res) ? q_vr + dr_off : fe_ca + fe_t_ext;
    end

    assign v_we = we_r & ~flush;
    assign done = done_r & ~flush;

    // ---- control ------------------------------------------------------------------------
    always @(posedge clk) begin
        if (~rst_n | flush) begin
            busy    <= 1'b0;
            pfd_v   <= 1'b0;
            d1_v    <= 1'b0;
            we_r    <= 1'b0;
            we_fin  <= 1'b0;
            done_r  <= 1'b0;
            sh_full <= 1'b0;
            te_q    <= 0;
            ph      <= 0;
            xrdy    <= 2'b00;
            aid_v   <= 1'b0;
            ai_full <= 1'b0;
            wd_v    <= 1'b0;
        end else if (accept) begin
            busy    <= 1'b1;
            q_m     <= cmd_m;
            q_kb_m1 <= (cmd_k >> LOGB) - 32'd1;
            q_nt_m1 <= cmd_ntiles - 32'd1;
            q_kr    <= kr32[VAW-1:0];
            q_nt    <= cmd_ntiles[VAW-1:0];
            q_rkr   <= rkr32[VAW-1:0];
            q_rnt   <= rnt32[VAW-1:0];
            q_vd    <= cmd_vd;
            q_vr    <= cmd_vr;
            q_res   <= cmd_res;
            q_va    <= cmd_va;
            q_ain   <= cmd_ain;
            q_f32   <= cmd_f32;
            q_wv    <= cmd_wv;
            q_vw    <= cmd_vw;
            q_k     <= cmd_k[VAW-1:0];
            fe_b    <= 32'd0;
            fe_j    <= 32'd0;
            fe_g0   <= 32'd0;
            fe_c    <= 0;
            fe_t    <= 0;
            fe_done <= 1'b0;
            fe_ta   <= cmd_vw;
            fe_ca   <= cmd_vw;
            wd_v    <= 1'b0;
            ld_p    <= 0;
            ai_j    <= 32'd0;
            ai_g0   <= 32'd0;
            ai_mg   <= rows_of(cmd_m, 32'd0);
            ai_r    <= 32'd0;
            ai_p    <= 1'b0;
            ai_gnt  <= 0;
            ai_off  <= 0;
            ai_issued <= ~cmd_ain;
            ai_fin  <= 1'b0;
            ai_full <= 1'b0;
            aid_v   <= 1'b0;
            dr_p    <= 1'b0;
            ld_row  <= 0;
            wslot   <= 0;
            ld_b    <= 32'd0;
            ld_j    <= 32'd0;
            ld_g0   <= 32'd0;
            ld_done <= 1'b0;
            nsq     <= 0;
            c_kk    <= 0;
            cslot   <= 0;
            c_b     <= 32'd0;
            c_j     <= 32'd0;
            c_g0    <= 32'd0;
            c_mg    <= rows_of(cmd_m, 32'd0);
            c_gnt   <= 0;
            c_xs    <= 1'b0;
            c_done  <= 1'b0;
            xrdy    <= 2'b00;
            pf_b    <= 32'd0;
            pf_j    <= 32'd0;
            pf_g0   <= 32'd0;
            pf_mg   <= rows_of(cmd_m, 32'd0);
            pf_r    <= 32'd0;
            pf_p    <= 0;
            pf_xs   <= 1'b0;
            pf_done <= 1'b0;
            pf_gx   <= cmd_vx;
            pf_rkr  <= 0;
            pfd_v   <= 1'b0;
            sh_full <= 1'b0;
            te_q    <= 0;
            ph      <= 0;
            d1_v    <= 1'b0;
            we_r    <= 1'b0;
            we_fin  <= 1'b0;
            done_r  <= 1'b0;
        end else begin
            // loader
            if (take) begin
                ld_row <= ld_row + 1'b1;
                if (&ld_row) begin
                    wslot <= wslot + 1'b1;
                    if (ld_b == q_kb_m1) begin
                        ld_b <= 32'd0;
                        if (ld_j == q_nt_m1) begin
                            ld_j <= 32'd0;
                            if (last_group(q_m, ld_g0))
                                ld_done <= 1'b1;
                            else
                                ld_g0 <= ld_g0 + ROWS_32;
                        end else
                            ld_j <= ld_j + 32'd1;
                    end else
                        ld_b <= ld_b + 32'd1;
                end
            end
            nsq <= nsq + {{WSW{1'b0}}, sq_in} - {{WSW{1'b0}}, sq_out};

            // weight reads (cmd_wv): issue, then the data the cycle after (into the ring)
            wd_v <= fe_req;
            if (fe_req) begin
                wd_sq <= fe_sq_end;
                fe_t  <= fe_col_end ? {PW{1'b0}} : fe_t + 1'b1;
                if (fe_col_end) begin
                    fe_c  <= fe_c + 1'b1;
                    fe_ca <= fe_ca + q_kr;
                end
                if (fe_sq_end) begin
                    if (fe_b == q_kb_m1) begin
                        fe_b <= 32'd0;
                        if (fe_j == q_nt_m1) begin
                            fe_j  <= 32'd0;
                            fe_ta <= q_vw;
                            fe_ca <= q_vw;
                            if (last_group(q_m, fe_g0))
                                fe_done <= 1'b1;
                            else
                                fe_g0 <= fe_g0 + ROWS_32;
                        end else begin
                            fe_j  <= fe_j + 32'd1;
                            fe_ta <= fe_ta + q_k;
                            fe_ca <= fe_ta + q_k;
                        end
                    end else begin
                        fe_b  <= fe_b1;
                        fe_ca <= fe_ta + fe_boff[VAW-1:0];
                    end
                end
            end
            if (wd_v)
                ld_p <= (ld_p == WP_M1) ? {WPW{1'b0}} : ld_p + 1'b1;

            // X prefetch: issue, then the data the cycle after
            pfd_v <= pf_req;
            if (pf_req) begin
                pfd_xi   <= pf_xi32[XIW-1:0];
                pfd_p    <= pf_p;
                pfd_xs   <= pf_xs;
                pfd_last <= pf_sq_end;
                pf_p     <= pf_row_end ? {PW{1'b0}} : pf_p + 1'b1;
                if (pf_row_end) begin
                    pf_r   <= pf_r + 32'd1;
                    pf_rkr <= pf_rkr + q_kr;
                end
                if (pf_sq_end) begin
                    pf_r   <= 32'd0;
                    pf_rkr <= 0;
                    pf_xs  <= ~pf_xs;
                    if (pf_b == q_kb_m1) begin
                        pf_b <= 32'd0;
                        if (pf_j == q_nt_m1) begin
                            pf_j <= 32'd0;
                            if (last_group(q_m, pf_g0))
                                pf_done <= 1'b1;
                            else begin
                                pf_g0 <= pf_g0 + ROWS_32;
                                pf_mg <= rows_of(q_m, pf_g0 + ROWS_32);
                                pf_gx <= pf_gx + q_rkr;
                            end
                        end else
                            pf_j <= pf_j + 32'd1;
                    end else
                        pf_b <= pf_b + 32'd1;
                end
            end
            if (pfd_v & pfd_last)
                xrdy[pfd_xs] <= 1'b1;

            // accumulator preload: issue, then the data the cycle after (into ainit)
            aid_v <= ai_req;
            if (ai_req) begin
                aid_r    <= ai_r[RW-1:0];
                aid_p    <= ai_p;
                aid_last <= ai_tile_end;
                ai_p     <= ~ai_p;
                if (ai_tile_end) begin
                    ai_issued <= 1'b1;
                    ai_r      <= 32'd0;
                    if (ai_j == q_nt_m1) begin
                        ai_j <= 32'd0;
                        if (last_group(q_m, ai_g0))
                            ai_fin <= 1'b1;
                        else begin
                            ai_g0  <= ai_g0 + ROWS_32;
                            ai_mg  <= rows_of(q_m, ai_g0 + ROWS_32);
                            ai_gnt <= ai_gnt + q_rnt;
                            ai_off <= ai_gnt + q_rnt;
                        end
                    end else begin
                        ai_j   <= ai_j + 32'd1;
                        ai_off <= ai_gnt + ai_j[VAW-1:0] + 1'b1;
                    end
                end else if (ai_row_end) begin
                    ai_r   <= ai_r + 32'd1;
                    ai_off <= ai_off + q_nt;
                end
            end
            if (aid_v & aid_last)
                ai_full <= 1'b1;
            if (step & c_first & q_ain) begin
                ai_full   <= 1'b0;
                ai_issued <= ai_fin;
            end

            // compute: a step every SLOTS cycles at most
            if (step)
                ph <= SL_M1_32[SW-1:0];
            else if (ph != {SW{1'b0}})
                ph <= ph - 1'b1;
            if (step) begin
                c_kk <= c_kk + 1'b1;
                if (c_sq_last) begin
                    cslot       <= cslot + 1'b1;
                    c_xs        <= ~c_xs;
                    xrdy[c_xs]  <= 1'b0;
                    if (c_b == q_kb_m1) begin
                        c_b     <= 32'd0;
                        dr_r    <= 32'd0;
                        dr_p    <= 1'b0;
                        dr_mg   <= c_mg;
                        dr_off  <= c_gnt + c_j[VAW-1:0];
                        dr_fin  <= (c_j == q_nt_m1) & last_group(q_m, c_g0);
                        if (c_j == q_nt_m1) begin
                            c_j <= 32'd0;
                            if (last_group(q_m, c_g0))
                                c_done <= 1'b1;
                            else begin
                                c_g0  <= c_g0 + ROWS_32;
                                c_mg  <= rows_of(q_m, c_g0 + ROWS_32);
                                c_gnt <= c_gnt + q_rnt;
                            end
                        end else
                            c_j <= c_j + 32'd1;
                    end else
                        c_b <= c_b + 32'd1;
                end
            end

            // drain: D0 residual read, D1 convert (v_rdata), D2 write (OUT_D = 2: D1, D2 convert, D3 write)
            d1_v <= dr_go;
            if (dr_go) begin
                d1_r     <= dr_r[RW-1:0];
                d1_p     <= dr_p;
                d1_waddr <= q_vd + (q_f32 ? (dr_off2 | {{(VAW-1){1'b0}}, dr_p}) : dr_off);
                d1_last  <= dr_last;
                d1_fin   <= dr_fin & dr_last;
                dr_p     <= q_f32 & ~dr_p;
                if (~q_f32 | dr_p) begin
                    dr_r   <= dr_r + 32'd1;
                    dr_off <= dr_off + q_nt;
                end
                if (dr_last)
                    sh_full <= 1'b0;
            end
            te_q <= {te_q[PE_D-2:0], step & c_tile_end};
            if (te_q[PE_D-1])
                sh_full <= 1'b1;
            we_r   <= wr_v;
            we_fin <= wr_v & wr_fin;
            done_r <= we_fin;
            if (we_fin)
                busy <= 1'b0;
        end
    end

    always @(posedge clk)
        if (wr_v) begin
            v_waddr <= wr_addr;
            v_wdata <= out_row;
        end

    wire unused_ok = &{1'b0, kr32[31:VAW], rkr32[31:VAW], rnt32[31:VAW], pf_boff[31:VAW], pf_xi32[31:XIW],
                       cmd_k[LOGV-1:0], fe_boff[31:VAW]};
endmodule

`default_nettype wire
