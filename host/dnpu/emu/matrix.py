"""Matrix instructions (M_*) of the emulator: the shape registers and the M_MM* products with
their checks in the order of docs/EXECUTION.md ("The matrix unit"), the arithmetic from
`dnpu.spec.matmul.matmul_bf16` (docs/NUMERICS.md section 11)."""

from __future__ import annotations

import numpy as np

from dnpu.emu.machine import PERM_R, _Fault, _op
from dnpu.spec import matmul
from dnpu.spec import matrix, mx
from dnpu.spec import numerics as nm
from dnpu.spec.csr import ErrCause

__all__ = ["MatrixUnit"]


class MatrixUnit:
    """Handlers of the M_* instructions (a mixin of Emulator); `mshape` (M, N, K, as the
    last M_CFG set it) lives in the Core's state."""

    def _matrix_present(self) -> None:
        if not self.config.matrix.rows:
            raise _Fault(ErrCause.ILLEGAL_INSTR, f"profile {self.config.name} has no matrix unit "
                                                 f"([matrix] rows = 0)")

    @_op("M_CFG")
    def _m_cfg(self, a):
        self._matrix_present()
        self.mshape = (self._x[a["m"]], self._x[a["n"]], self._x[a["k"]])
        return None

    @_op("M_MM")
    def _m_mm(self, a):
        return self._matmul(a, vd=self._x[a["vd"]])

    @_op("M_MM_RES")
    def _m_mm_res(self, a):
        return self._matmul(a, vd=self._x[a["vd"]], vr=self._x[a["vr"]])

    @_op("M_MM_F32")
    def _m_mm_f32(self, a):
        return self._matmul(a, vd=self._x[a["va"]], f32=True)

    @_op("M_MM_ACC_F32")
    def _m_mm_acc_f32(self, a):
        va = self._x[a["va"]]
        return self._matmul(a, vd=va, va=va, f32=True)

    @_op("M_MM_ACC")
    def _m_mm_acc(self, a):
        return self._matmul(a, vd=self._x[a["vd"]], va=self._x[a["va"]])

    @_op("M_MM_ACC_RES")
    def _m_mm_acc_res(self, a):
        vd = self._x[a["vd"]]
        return self._matmul(a, vd=vd, vr=vd, va=self._x[a["va"]])

    @_op("M_MM_V")
    def _m_mm_v(self, a):
        return self._matmul(a, vd=self._x[a["vd"]], vw=self._x[a["vw"]])

    @_op("M_MM_V_RES")
    def _m_mm_v_res(self, a):
        return self._matmul(a, vd=self._x[a["vd"]], vr=self._x[a["vr"]], vw=self._x[a["vw"]])

    def _matmul(self, a, *, vd: int, vr: int | None = None, va: int | None = None, f32: bool = False,
                vw: int | None = None):
        """Every M_MM*: Y at V[vd] (FP32 rows when f32), residual R at V[vr], FP32
        accumulators continued from V[va], W streamed in MX from M[x[addr]] or (vw) BF16
        rows at V[vw] (docs/EXECUTION.md "The matrix unit")."""
        self._matrix_present()
        fmt = None if vw is not None else self._fmt(a["fmt"])
        vx = self._x[a["vx"]]
        m, n, k = self.mshape
        if not (m and n and k):
            return None
        km = matrix.k_multiple(self.vlen, self.block)
        if n % self.vlen or k % km:
            raise _Fault(ErrCause.MISALIGNED, f"matrix shape N = {n}, K = {k}: N must be a multiple of "
                                              f"VLEN ({self.vlen}) and K of max(VLEN, block) ({km})")
        tiles = n // self.vlen
        if vw is None:
            addr = self._x[a["addr"]]
            self._mx_aligned(addr, k)           # the tile's stream of VLEN*K elements is k rows
            stride = matrix.tile_nbytes(k, fmt, self.block, self.vlen)
            nbytes = mx.stream_nbytes(self.vlen * k, fmt, self.block)
            last = addr + (tiles - 1) * stride
            span = self._mx_span(last, nbytes)
        xrows, brows = m * k // self.vlen, m * tiles        # X rows, BF16 rows of [M, N]
        yrows = 2 * brows if f32 else brows
        wrows = n * k // self.vlen
        self._sram("vector", vx, xrows, self.vector_rows)
        self._sram("vector", vd, yrows, self.vector_rows)
        if vr is not None:
            self._sram("vector", vr, brows, self.vector_rows)
        if va is not None:
            self._sram("vector", va, 2 * brows, self.vector_rows)
        if vw is not None:
            self._sram("vector", vw, wrows, self.vector_rows)
        if _overlap(vd, yrows, vx, xrows):
            raise _Fault(ErrCause.SRAM_RANGE, f"matrix output rows [{vd}, {vd + yrows}) overlap its "
                                              f"activation rows [{vx}, {vx + xrows})")
        if vr is not None and vr != vd and _overlap(vd, yrows, vr, brows):
            raise _Fault(ErrCause.SRAM_RANGE, f"M_MM_RES residual rows [{vr}, {vr + brows}) overlap its "
                                              f"output rows [{vd}, {vd + yrows}) without being them")
        if va is not None and not f32 and _overlap(vd, yrows, va, 2 * brows):
            raise _Fault(ErrCause.SRAM_RANGE, f"matrix output rows [{vd}, {vd + yrows}) overlap the "
                                              f"accumulator rows [{va}, {va + 2 * brows}) it reads")
        if vw is not None and _overlap(vd, yrows, vw, wrows):
            raise _Fault(ErrCause.SRAM_RANGE, f"matrix output rows [{vd}, {vd + yrows}) overlap the "
                                              f"weight rows [{vw}, {vw + wrows}) it reads")
        if vw is None:
            self._win(addr, last + span - addr, PERM_R)     # every tile, before any is read
            for t in range(tiles):
                ta = addr + t * stride
                self._mx_mapped(ta, span if t == tiles - 1 else self._mx_span(ta, nbytes))
            groups = -(-m // self.config.matrix.rows)
            raw = [self._rd(addr + t * stride, nbytes) for t in range(tiles)]
            self._stats["rd"] += (groups - 1) * tiles * nbytes   # every group streams W again
        if self.data_path:
            if vw is None:
                w = np.concatenate([self._mx_bf16(r, k, fmt).reshape(-1) for r in raw])
                w = matrix.from_square_order(w, n, k, self.vlen, self.block)
            else:
                w = self._vsram[vw:vw + wrows].reshape(n, k)
            x = self._vsram[vx:vx + xrows].reshape(m, k)
            res = None if vr is None else self._vsram[vr:vr + brows].reshape(m, n)
            acc = None if va is None else matrix.acc_from_rows(self._vsram[va:va + 2 * brows], m, n)
            y = matmul.matmul_bf16(x, w, residual_bits=res, acc_bits=acc, out="f32" if f32 else "bf16")
            rows = matrix.acc_to_rows(y, self.vlen) if f32 else y.reshape(yrows, self.vlen)
            self._vsram[vd:vd + yrows] = rows
        return {"V": (vd, yrows)}


def _overlap(a: int, na: int, b: int, nb: int) -> bool:
    return a < b + nb and b < a + na

