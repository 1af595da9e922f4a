"""Control and scalar instructions (C_*, S_*) of the emulator, bit-exact per docs/NUMERICS.md."""

from __future__ import annotations

from typing import Callable

import numpy as np

from dnpu.emu.machine import _M32, _Fault, _op
from dnpu.spec import isa, numerics as nm
from dnpu.spec.csr import ErrCause

__all__ = ["ScalarUnit"]


def _s32(v: int) -> int:
    return v - (1 << 32) if v & 0x80000000 else v


class ScalarUnit:
    """Handlers of the control, scalar int and scalar FP instructions (a mixin of Emulator)."""

    # ---- control -------------------------------------------------------------------------
    def _loop_start(self, count: int, length: int) -> None:
        pc = self.pc
        if length == 0:
            raise _Fault(ErrCause.LOOP_OVERFLOW, "loop length 0")
        end = pc + 4 * length
        if self._loops and end > self._loops[-1][1]:
            raise _Fault(ErrCause.LOOP_OVERFLOW, f"loop body ending at 0x{end:08X} extends past the "
                                                 f"enclosing loop's end 0x{self._loops[-1][1]:08X}")
        if count == 0:
            self._jump = self._next_after(end)
            return
        if len(self._loops) >= self.loop_depth:
            raise _Fault(ErrCause.LOOP_OVERFLOW, f"loops nested deeper than ctrl.loop_depth = "
                                                 f"{self.loop_depth}")
        self._loops.append([pc + 4, end, count])
        self._jump = pc + 4

    @_op("C_HALT")
    def _c_halt(self, a):
        return None

    @_op("C_NOP")
    def _c_nop(self, a):
        return None

    @_op("C_LOOP")
    def _c_loop(self, a):
        self._loop_start(self._x[a["rs1"]], a["len"])

    @_op("C_LOOPI")
    def _c_loopi(self, a):
        self._loop_start(a["count"], a["len"])

    # ---- scalar int ----------------------------------------------------------------------
    @_op("S_ADDI")
    def _s_addi(self, a):
        return self._wx(a["rd"], self._x[a["rs1"]] + a["imm"], a["rs1"])

    @_op("S_LUI")
    def _s_lui(self, a):
        return self._wx(a["rd"], a["imm"] << isa.LUI_SHIFT)

    @_op("S_ADD")
    def _s_add(self, a):
        return self._wx(a["rd"], self._x[a["rs1"]] + self._x[a["rs2"]], a["rs1"], a["rs2"])

    @_op("S_SUB")
    def _s_sub(self, a):
        return self._wx(a["rd"], self._x[a["rs1"]] - self._x[a["rs2"]], a["rs1"], a["rs2"])

    @_op("S_MUL")
    def _s_mul(self, a):
        return self._wx(a["rd"], self._x[a["rs1"]] * self._x[a["rs2"]], a["rs1"], a["rs2"])

    @_op("S_MIN")
    def _s_min(self, a):
        return self._wx(a["rd"], min(_s32(self._x[a["rs1"]]), _s32(self._x[a["rs2"]])), a["rs1"], a["rs2"])

    @_op("S_MAX")
    def _s_max(self, a):
        return self._wx(a["rd"], max(_s32(self._x[a["rs1"]]), _s32(self._x[a["rs2"]])), a["rs1"], a["rs2"])

    @_op("S_SLT")
    def _s_slt(self, a):
        return self._wx(a["rd"], int(_s32(self._x[a["rs1"]]) < _s32(self._x[a["rs2"]])), a["rs1"], a["rs2"])

    @_op("S_SLLI")
    def _s_slli(self, a):
        return self._wx(a["rd"], self._x[a["rs1"]] << a["shamt"], a["rs1"])

    @_op("S_SRLI")
    def _s_srli(self, a):
        return self._wx(a["rd"], self._x[a["rs1"]] >> a["shamt"], a["rs1"])

    @_op("S_LD_ARG")
    def _s_ld_arg(self, a):
        return self._wx(a["rd"], self.args[a["argi"]])

    @_op("S_LD_INT")
    def _s_ld_int(self, a):
        addr = (self._x[a["rs1"]] + a["imm"]) & _M32
        self._sram("int", addr, 1, self.int_words)
        return self._wx(a["rd"], int(self._intsram[addr]), data=True)

    @_op("S_ST_INT")
    def _s_st_int(self, a):
        addr = (self._x[a["rs1"]] + a["imm"]) & _M32
        self._sram("int", addr, 1, self.int_words)
        self._intsram[addr] = self._x[a["rs"]]
        return {"INT": (addr, 1)}

    # ---- scalar FP -----------------------------------------------------------------------
    def _fpu(self, rd: int, result: Callable[[], int]) -> dict:
        """f[rd] = result(), the scalar FP unit's arithmetic (0 without the data path)."""
        return self._wf(rd, result() if self.data_path else 0)

    @_op("S_ADD_FP")
    def _s_add_fp(self, a):
        return self._fpu(a["rd"], lambda: nm.f32_bits(nm.add(self._fv(a["rs1"]), self._fv(a["rs2"]))))

    @_op("S_SUB_FP")
    def _s_sub_fp(self, a):
        return self._fpu(a["rd"], lambda: nm.f32_bits(nm.sub(self._fv(a["rs1"]), self._fv(a["rs2"]))))

    @_op("S_MUL_FP")
    def _s_mul_fp(self, a):
        return self._fpu(a["rd"], lambda: nm.f32_bits(nm.mul(self._fv(a["rs1"]), self._fv(a["rs2"]))))

    @_op("S_MAX_FP")
    def _s_max_fp(self, a):
        return self._fpu(a["rd"], lambda: nm.max_f32(self._f[a["rs1"]], self._f[a["rs2"]]))

    @_op("S_EXP_FP")
    def _s_exp_fp(self, a):
        return self._fpu(a["rd"], lambda: nm.exp_f32(self._f[a["rs1"]]))

    @_op("S_RECI_FP")
    def _s_reci_fp(self, a):
        return self._fpu(a["rd"], lambda: nm.reci_f32(self._f[a["rs1"]]))

    @_op("S_RSQRT_FP")
    def _s_rsqrt_fp(self, a):
        return self._fpu(a["rd"], lambda: nm.rsqrt_f32(self._f[a["rs1"]]))

    @_op("S_LI_FP")
    def _s_li_fp(self, a):
        return self._wf(a["rd"], a["bits"] << 16)

    @_op("S_LD_FP")
    def _s_ld_fp(self, a):
        addr = (self._x[a["rs1"]] + a["imm"]) & _M32
        self._sram("FP", addr, 1, self.fp_words)
        return self._wf(a["rd"], self._fpsram[addr])

    @_op("S_ST_FP")
    def _s_st_fp(self, a):
        addr = (self._x[a["rs1"]] + a["imm"]) & _M32
        self._sram("FP", addr, 1, self.fp_words)
        self._fpsram[addr] = self._f[a["fs"]]
        return {"FP": (addr, 1)}

    @_op("S_LT_FP")
    def _s_lt_fp(self, a):
        return self._wx(a["rd"], int(nm.lt(self._fv(a["rs1"]), self._fv(a["rs2"]))) if self.data_path else 0,
                        data=True)

    @_op("S_SEL_FP")
    def _s_sel_fp(self, a):
        return self._wf(a["rd"], self._f[a["a"]] if self._x[a["c"]] else self._f[a["b"]])

    @_op("S_MAP_V_FP")
    def _s_map_v_fp(self, a):
        vd, fs, n = self._x[a["vdst"]], self._x[a["fsrc"]], self._x[a["n"]]
        if n == 0:
            return None
        rows = -(-n // self.vlen)
        self._sram("FP", fs, n, self.fp_words)
        self._sram("vector", vd, rows, self.vector_rows)
        if self.data_path:
            out = np.full(rows * self.vlen, nm.BF16_NEG_INF, np.uint16)
            out[:n] = nm.narrow_f32(self._fpsram[fs:fs + n])
            self._vsram[vd:vd + rows] = out.reshape(rows, self.vlen)
        return {"V": (vd, rows)}
