# Argmax of each of ARG2 logit rows of ARG3 vector rows each (MX-packed, e4m3),
# token ids written as int32 to ARG1. A hand-written example of the ISA; the
# compiler (dnpu.compiler) emits the real sampling programs.
#   ARG0 = address of the packed MX logits, ARG1 = address of the int32 output
#   ARG2 = number of rows, ARG3 = vector-SRAM rows per logits row
    S_LD_ARG   x1, 0            # x1: logits address, advances row by row
    S_LD_ARG   x2, 1            # x2: output address
    S_LD_ARG   x3, 2            # x3: rows to do
    S_LD_ARG   x4, 3            # x4: vector rows per logits row
    S_ADDI     x5, x0, 0        # x5: vector SRAM base row
    S_ADDI     x6, x0, 1        # x6: one word
    S_ADDI     x7, x0, 0        # x7: int SRAM slot of the current row
    S_LD_ARG   x8, 4            # x8: packed bytes per logits row
    C_LOOP     x3, @done
    H_PREFETCH_V x5, x1, x4, e4m3
    V_RED_MAX_IDX f0, x9, x5, x4
    S_ST_INT   x9, x7, 0
    S_ADD      x1, x1, x8
    S_ADDI     x7, x7, 1
done:
    H_STORE_INT x0, x2, x3
    C_HALT
