// dnpu_mx_size.vh: the sizes of a packed MX stream (docs/MX.md "Packed layout"), as
// Verilog functions: the one copy of that arithmetic in the RTL, for the core's transfer
// checks and commands (dnpu_lsu) and the dequantizer's beat count (dnpu_mx_dequant).
// `include it inside a module body, after dnpu_isa.vh (the `DNPU_MXFMT_* codes).
//
// n elements of format fmt, in blocks of 2^lb elements (n a multiple of the block;
// n < 2^44 so no sum below overflows 48 bits). w = 8, 6 or 4 bits per code; nb = n / 2^lb
// blocks in g = ceil(nb / 16) groups, each group 16 scale bytes and its 16 blocks' codes.
//   mx_code_bytes(fmt, n)             n * w / 8
//   mx_need_bytes(fmt, n, lb)         16*g + n*w/8: the stream up to its last code byte,
//                                     what the dequantizer reads (its beat contract)
//   mx_need_beats(fmt, n, lb, lbb)    ceil(mx_need_bytes / 2^lbb): AXI beats of 2^lbb bytes
//   mx_packed_nbytes(fmt, n, lb)      dnpu.mx.packed_nbytes(n, fmt, 2^lb): g whole groups
//                                     rounded up to 64 bytes, the stride of packed rows
// Shifts and adds only: no multiplier. An fmt code past the formats counts as 8-bit (such
// an instruction is ILLEGAL_INSTR before any size is used).

function [47:0] mx_code_bytes;
    input [2:0]  ms_fmt;
    input [47:0] ms_n;
    begin
        case (ms_fmt)
            `DNPU_MXFMT_E3M2, `DNPU_MXFMT_E2M3: mx_code_bytes = (ms_n >> 1) + (ms_n >> 2);
            `DNPU_MXFMT_E2M1:                   mx_code_bytes = ms_n >> 1;
            default:                            mx_code_bytes = ms_n;
        endcase
    end
endfunction

// 16 * ceil(nb / 16): the scale bytes of g groups.
function [47:0] mx_group_hdr;
    input [47:0] mh_n;
    input [31:0] mh_lb;
    begin
        mx_group_hdr = (((mh_n >> mh_lb) + 48'd15) >> 4) << 4;
    end
endfunction

function [47:0] mx_need_bytes;
    input [2:0]  mb_fmt;
    input [47:0] mb_n;
    input [31:0] mb_lb;
    begin
        mx_need_bytes = mx_group_hdr(mb_n, mb_lb) + mx_code_bytes(mb_fmt, mb_n);
    end
endfunction

function [47:0] mx_need_beats;
    input [2:0]  mt_fmt;
    input [47:0] mt_n;
    input [31:0] mt_lb;
    input [31:0] mt_lbb;
    begin
        mx_need_beats = (mx_need_bytes(mt_fmt, mt_n, mt_lb) + ((48'd1 << mt_lbb) - 48'd1)) >> mt_lbb;
    end
endfunction

// g whole groups hold 16*g*2^lb elements: their codes, with the scale bytes, rounded up to 64.
function [47:0] mx_packed_nbytes;
    input [2:0]  mp_fmt;
    input [47:0] mp_n;
    input [31:0] mp_lb;
    reg   [47:0] mp_hdr;
    begin
        mp_hdr           = mx_group_hdr(mp_n, mp_lb);
        mx_packed_nbytes = ((mp_hdr + mx_code_bytes(mp_fmt, mp_hdr << mp_lb) + 48'd63) >> 6) << 6;
    end
endfunction
