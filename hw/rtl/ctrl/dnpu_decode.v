`default_nettype none
// dnpu_decode: an instruction word's fields (hw/isa.toml, through the generated
// dnpu_isa.vh) and whether it is ILLEGAL_INSTR (docs/ISA.md): an opcode that is no
// instruction, a bit set that its instruction does not use (`DNPU_USED_<NAME>), or an MX
// format code past the formats (every profile decodes all six); the matrix unit's
// instructions are instructions only on a profile that has one (MATRIX). Combinational.

`include "dnpu_isa.vh"

module dnpu_decode #(
    parameter [0:0] MATRIX = 1'b0       // 1: the profile has a matrix unit (M_* are instructions)
) (
    input  wire [31:0] instr,

    output wire [6:0]  op,
    output wire [3:0]  rd,
    output wire [3:0]  rs1,
    output wire [3:0]  rs2,
    output wire [3:0]  rs3,
    output wire [31:0] imm17,        // sign-extended
    output wire [31:0] imm21,        // zero-extended; S_LUI shifts it into place
    output wire [15:0] imm16,
    output wire [4:0]  shamt,
    output wire [2:0]  argi,
    output wire [31:0] count,        // C_LOOPI's iteration count
    output wire [9:0]  len,          // a loop body's length in instructions
    output wire [2:0]  fmt,          // `DNPU_MXFMT_* of the MX stream instructions
    output wire        illegal
);
    assign op    = instr[`DNPU_F_OPCODE_LSB +: `DNPU_F_OPCODE_W];
    assign rd    = instr[`DNPU_F_RD_LSB  +: `DNPU_F_RD_W];
    assign rs1   = instr[`DNPU_F_RS1_LSB +: `DNPU_F_RS1_W];
    assign rs2   = instr[`DNPU_F_RS2_LSB +: `DNPU_F_RS2_W];
    assign rs3   = instr[`DNPU_F_RS3_LSB +: `DNPU_F_RS3_W];
    assign imm17 = {{(32-`DNPU_F_IMM17_W){instr[`DNPU_F_IMM17_LSB + `DNPU_F_IMM17_W - 1]}},
                    instr[`DNPU_F_IMM17_LSB +: `DNPU_F_IMM17_W]};
    assign imm21 = {{(32-`DNPU_F_IMM21_W){1'b0}}, instr[`DNPU_F_IMM21_LSB +: `DNPU_F_IMM21_W]};
    assign imm16 = instr[`DNPU_F_IMM16_LSB +: `DNPU_F_IMM16_W];
    assign shamt = instr[`DNPU_F_SHAMT_LSB +: `DNPU_F_SHAMT_W];
    assign argi  = instr[`DNPU_F_ARGI_LSB +: `DNPU_F_ARGI_W];
    assign count = {{(32-`DNPU_F_COUNT_W){1'b0}}, instr[`DNPU_F_COUNT_LSB +: `DNPU_F_COUNT_W]};
    assign len   = instr[`DNPU_F_LEN_LSB +: `DNPU_F_LEN_W];
    assign fmt   = instr[`DNPU_F_FMT_LSB +: `DNPU_F_FMT_W];

    // Bits the instruction may set; 0 = not an instruction.
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
                `DNPU_OP_S_RSQRT_FP:  used_mask = `DNPU_USED_S_RSQRT_FP;
                `DNPU_OP_S_LT_FP:     used_mask = `DNPU_USED_S_LT_FP;
                `DNPU_OP_H_LOAD_INT:  used_mask = `DNPU_USED_H_LOAD_INT;
                `DNPU_OP_H_STORE_INT: used_mask = `DNPU_USED_H_STORE_INT;
                `DNPU_OP_H_LOAD_FP:   used_mask = `DNPU_USED_H_LOAD_FP;
                `DNPU_OP_H_STORE_FP:  used_mask = `DNPU_USED_H_STORE_FP;
                `DNPU_OP_H_PREFETCH_V: used_mask = `DNPU_USED_H_PREFETCH_V;
                `DNPU_OP_H_STORE_V:   used_mask = `DNPU_USED_H_STORE_V;
                `DNPU_OP_H_LOAD_V:    used_mask = `DNPU_USED_H_LOAD_V;
                `DNPU_OP_H_STORE_MX:  used_mask = `DNPU_USED_H_STORE_MX;
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
                `DNPU_OP_V_RECI_V:    used_mask = `DNPU_USED_V_RECI_V;
                `DNPU_OP_V_AMAX_VV:   used_mask = `DNPU_USED_V_AMAX_VV;
                `DNPU_OP_V_INVPOW2_V: used_mask = `DNPU_USED_V_INVPOW2_V;
                `DNPU_OP_V_FILL_VF:   used_mask = `DNPU_USED_V_FILL_VF;
                `DNPU_OP_V_RED_MAX:   used_mask = `DNPU_USED_V_RED_MAX;
                `DNPU_OP_V_RED_SUM:   used_mask = `DNPU_USED_V_RED_SUM;
                `DNPU_OP_V_RED_MAX_IDX: used_mask = `DNPU_USED_V_RED_MAX_IDX;
                `DNPU_OP_V_TOPK_MASK: used_mask = `DNPU_USED_V_TOPK_MASK;
                `DNPU_OP_V_TOPK_MASK_V: used_mask = `DNPU_USED_V_TOPK_MASK_V;
                `DNPU_OP_V_THRESH_MASK: used_mask = `DNPU_USED_V_THRESH_MASK;
                `DNPU_OP_V_SELECT_INT: used_mask = `DNPU_USED_V_SELECT_INT;
                `DNPU_OP_V_MASK_FP:   used_mask = `DNPU_USED_V_MASK_FP;
                `DNPU_OP_V_TRANS:     used_mask = `DNPU_USED_V_TRANS;
                `DNPU_OP_M_CFG:       used_mask = MATRIX ? `DNPU_USED_M_CFG : 32'd0;
                `DNPU_OP_M_MM:        used_mask = MATRIX ? `DNPU_USED_M_MM : 32'd0;
                `DNPU_OP_M_MM_RES:    used_mask = MATRIX ? `DNPU_USED_M_MM_RES : 32'd0;
                `DNPU_OP_M_MM_F32:    used_mask = MATRIX ? `DNPU_USED_M_MM_F32 : 32'd0;
                `DNPU_OP_M_MM_ACC_F32: used_mask = MATRIX ? `DNPU_USED_M_MM_ACC_F32 : 32'd0;
                `DNPU_OP_M_MM_ACC:    used_mask = MATRIX ? `DNPU_USED_M_MM_ACC : 32'd0;
                `DNPU_OP_M_MM_ACC_RES: used_mask = MATRIX ? `DNPU_USED_M_MM_ACC_RES : 32'd0;
                `DNPU_OP_M_MM_V:      used_mask = MATRIX ? `DNPU_USED_M_MM_V : 32'd0;
                `DNPU_OP_M_MM_V_RES:  used_mask = MATRIX ? `DNPU_USED_M_MM_V_RES : 32'd0;
                default:              used_mask = 32'd0;
            endcase
        end
    endfunction

    localparam [3:0] MXFMT_N = `DNPU_MXFMT_COUNT;
    wire [31:0] used    = used_mask(op);
    wire        mx_op   = (op == `DNPU_OP_H_PREFETCH_V) | (op == `DNPU_OP_H_STORE_MX) |
                          (op == `DNPU_OP_H_SAMPLE_FUSED) |
                          (op == `DNPU_OP_H_SAMPLE_FUSED_N) | (op == `DNPU_OP_M_MM) |
                          (op == `DNPU_OP_M_MM_RES) | (op == `DNPU_OP_M_MM_F32) |
                          (op == `DNPU_OP_M_MM_ACC_F32) | (op == `DNPU_OP_M_MM_ACC) |
                          (op == `DNPU_OP_M_MM_ACC_RES);
    wire        bad_fmt = mx_op & ({1'b0, fmt} >= MXFMT_N);
    assign illegal = (used == 32'd0) | ((instr & ~used) != 32'd0) | bad_fmt;

endmodule

`default_nettype wire
