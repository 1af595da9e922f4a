"""Vector instructions (V_*) of the emulator: NumPy over vector, FP and int SRAM rows, in
the order docs/EXECUTION.md fixes for overlapping ranges."""

from __future__ import annotations

import numpy as np

from dnpu.emu.machine import _Fault, _op
from dnpu.spec import numerics as nm
from dnpu.spec.csr import ErrCause

__all__ = ["VectorUnit"]


class VectorUnit:
    """Handlers of the V_* instructions (a mixin of Emulator)."""

    # ---- vector --------------------------------------------------------------------------
    def _vrows(self, base: int, n: int) -> np.ndarray:
        return nm.bf16_value(self._vsram[base:base + n])

    def _rowwise(self, vd: int, srcs: tuple[int, ...], n: int, fn) -> None:
        """V[vd+i] = fn(i0, i1) row by row in increasing i, each row read after the rows
        before it were written (EXECUTION.md): fn(first, count) maps source rows
        [first, first+count) to result bits. Done in one piece unless a destination row
        is a source row of a later i (0 < vd - src < n). Nothing without the data path."""
        if not self.data_path:
            return
        if any(0 < vd - s < n for s in srcs):
            for i in range(n):
                self._vsram[vd + i:vd + i + 1] = fn(i, 1)
        else:
            self._vsram[vd:vd + n] = fn(0, n)

    def _vv(self, a, op) -> dict | None:
        vd, va, vb, n = self._x[a["vd"]], self._x[a["va"]], self._x[a["vb"]], self._x[a["n"]]
        if n == 0:
            return None
        for base in (va, vb, vd):
            self._sram("vector", base, n, self.vector_rows)
        self._rowwise(vd, (va, vb), n, lambda i, c: nm.bf16_bits(
            op(self._vrows(va + i, c), self._vrows(vb + i, c), "bf16")))
        return {"V": (vd, n)}

    def _vf(self, a, op) -> dict | None:
        vd, va, n = self._x[a["vd"]], self._x[a["va"]], self._x[a["n"]]
        if n == 0:
            return None
        for base in (va, vd):
            self._sram("vector", base, n, self.vector_rows)
        s = self._fv(a["s"]) if self.data_path else None
        self._rowwise(vd, (va,), n, lambda i, c: nm.bf16_bits(op(self._vrows(va + i, c), s, "bf16")))
        return {"V": (vd, n)}

    @_op("V_ADD_VV")
    def _v_add_vv(self, a):
        return self._vv(a, nm.add)

    @_op("V_SUB_VV")
    def _v_sub_vv(self, a):
        return self._vv(a, nm.sub)

    @_op("V_MUL_VV")
    def _v_mul_vv(self, a):
        return self._vv(a, nm.mul)

    @_op("V_ADD_VF")
    def _v_add_vf(self, a):
        return self._vf(a, nm.add)

    @_op("V_SUB_VF")
    def _v_sub_vf(self, a):
        return self._vf(a, nm.sub)

    @_op("V_MUL_VF")
    def _v_mul_vf(self, a):
        return self._vf(a, nm.mul)

    def _unary(self, a, fn) -> dict | None:
        """V[vd+i] = fn(V[va+i] bits) for rows i < n."""
        vd, va, n = self._x[a["vd"]], self._x[a["va"]], self._x[a["n"]]
        if n == 0:
            return None
        self._sram("vector", va, n, self.vector_rows)
        self._sram("vector", vd, n, self.vector_rows)
        self._rowwise(vd, (va,), n, lambda i, c: fn(self._vsram[va + i:va + i + c]))
        return {"V": (vd, n)}

    @_op("V_RECI_V")
    def _v_reci_v(self, a):
        return self._unary(a, nm.reci_bf16)

    @_op("V_INVPOW2_V")
    def _v_invpow2_v(self, a):
        return self._unary(a, nm.invpow2_bits)

    @_op("V_AMAX_VV")
    def _v_amax_vv(self, a):
        vd, va, vb, n = self._x[a["vd"]], self._x[a["va"]], self._x[a["vb"]], self._x[a["n"]]
        if n == 0:
            return None
        for base in (va, vb, vd):
            self._sram("vector", base, n, self.vector_rows)
        self._rowwise(vd, (va, vb), n, lambda i, c: nm.amax_bits(self._vsram[va + i:va + i + c],
                                                                 self._vsram[vb + i:vb + i + c]))
        return {"V": (vd, n)}

    @_op("V_EXP_V")
    def _v_exp_v(self, a):
        return self._unary(a, nm.exp_bf16)

    @_op("V_TRANS")
    def _v_trans(self, a):
        """One VLEN x VLEN block: lane l of V[vd + r*ds] = lane r of V[vs + l*ss]; the spans
        are checked exactly and must not overlap (docs/EXECUTION.md, "Operands")."""
        vd, vs, ss, ds = (self._x[a[k]] for k in ("vd", "vs", "ss", "ds"))
        span = self.vlen - 1
        self._sram("vector", vs, span * ss + 1, self.vector_rows)
        self._sram("vector", vd, span * ds + 1, self.vector_rows)
        if vd <= vs + span * ss and vs <= vd + span * ds:
            raise _Fault(ErrCause.SRAM_RANGE, f"V_TRANS destination rows [{vd}, {vd + span * ds}] overlap "
                                              f"its source rows [{vs}, {vs + span * ss}]")
        if self.data_path:
            block = self._vsram[vs + ss * np.arange(self.vlen)].T
            if ds:
                self._vsram[vd + ds * np.arange(self.vlen)] = block
            else:                               # every row r lands on vd: the last one stays
                self._vsram[vd] = block[-1]
        return {"V": (vd, span * ds + 1)}

    @_op("V_FILL_VF")
    def _v_fill_vf(self, a):
        vd, n = self._x[a["vd"]], self._x[a["n"]]
        if n == 0:
            return None
        self._sram("vector", vd, n, self.vector_rows)
        if self.data_path:
            self._vsram[vd:vd + n] = nm.narrow_f32(self._f[a["s"]])
        return {"V": (vd, n)}

    def _red_max(self, a) -> tuple[int, int] | None:
        va, n = self._x[a["va"]], self._x[a["n"]]
        if n == 0:
            return None
        self._sram("vector", va, n, self.vector_rows)
        if not self.data_path:
            return 0, 0
        m, idx = nm.red_max_idx(self._vsram[va:va + n].reshape(-1))
        return int(m), int(idx)

    @_op("V_RED_MAX")
    def _v_red_max(self, a):
        r = self._red_max(a)
        return None if r is None else self._wf(a["rd"], r[0])

    @_op("V_RED_MAX_IDX")
    def _v_red_max_idx(self, a):
        r = self._red_max(a)
        if r is None:
            return None
        w = self._wf(a["rd"], r[0])
        w.update(self._wx(a["idx"], r[1], data=True))
        return w

    @_op("V_RED_SUM")
    def _v_red_sum(self, a):
        va, n = self._x[a["va"]], self._x[a["n"]]
        if n == 0:
            return None
        self._sram("vector", va, n, self.vector_rows)
        return self._wf(a["rd"], nm.red_sum(self._vsram[va:va + n]) if self.data_path else 0)

    @_op("V_TOPK_MASK")
    def _v_topk_mask(self, a):
        dst, src, k, n = self._x[a["idst"]], self._x[a["fsrc"]], self._x[a["k"]], self._x[a["n"]]
        if n == 0:
            return None
        self._sram("FP", src, n, self.fp_words)
        self._sram("int", dst, n, self.int_words)
        if self.data_path:
            self._intsram[dst:dst + n] = nm.topk_mask(nm.f32_value(self._fpsram[src:src + n]), k)
        return {"INT": (dst, n)}

    @_op("V_TOPK_MASK_V")
    def _v_topk_mask_v(self, a):
        dst, va, k, n = self._x[a["idst"]], self._x[a["va"]], self._x[a["k"]], self._x[a["n"]]
        if n == 0:
            return None
        rows = -(-n // self.vlen)
        self._sram("vector", va, rows, self.vector_rows)
        self._sram("int", dst, n, self.int_words)
        if self.data_path:
            vals = nm.bf16_value(self._vsram[va:va + rows]).reshape(-1)[:n]
            self._intsram[dst:dst + n] = nm.topk_mask(vals, k)
        return {"INT": (dst, n)}

    @_op("V_THRESH_MASK")
    def _v_thresh_mask(self, a):
        dst, src, n = self._x[a["idst"]], self._x[a["fsrc"]], self._x[a["n"]]
        if n == 0:
            return None
        self._sram("FP", src, n, self.fp_words)
        self._sram("int", dst, n, self.int_words)
        if self.data_path:
            hit = nm.thresh_mask(nm.f32_value(self._fpsram[src:src + n]), self._fv(a["t"]))
            self._intsram[dst:dst + n][hit] = 1
        return {"INT": (dst, n)}

    @_op("V_SELECT_INT")
    def _v_select_int(self, a):
        dst, msk, src, n = self._x[a["idst"]], self._x[a["imask"]], self._x[a["isrc"]], self._x[a["n"]]
        if n == 0:
            return None
        for base in (msk, src, dst):
            self._sram("int", base, n, self.int_words)
        if not self.data_path:
            return {"INT": (dst, n)}
        if 0 < dst - msk < n or 0 < dst - src < n:     # element by element, in order
            for j in range(n):
                if self._intsram[msk + j]:
                    self._intsram[dst + j] = self._intsram[src + j]
        else:
            m = self._intsram[msk:msk + n] != 0
            s = self._intsram[src:src + n].copy()
            self._intsram[dst:dst + n][m] = s[m]
        return {"INT": (dst, n)}

    @_op("V_MASK_FP")
    def _v_mask_fp(self, a):
        dst, msk, n = self._x[a["fdst"]], self._x[a["imask"]], self._x[a["n"]]
        if n == 0:
            return None
        self._sram("FP", dst, n, self.fp_words)
        self._sram("int", msk, n, self.int_words)
        if self.data_path:
            off = self._intsram[msk:msk + n] == 0
            self._fpsram[dst:dst + n][off] = self._f[a["s"]]
        return {"FP": (dst, n)}
