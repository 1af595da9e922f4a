"""Memory instructions (H_*) of the emulator: word and row transfers over AXI and the MX
streams (H_PREFETCH_V, H_SAMPLE_FUSED, H_SAMPLE_FUSED_N, H_STORE_MX) with their checks (docs/EXECUTION.md)."""

from __future__ import annotations

import numpy as np

from dnpu.emu.machine import PERM_R, _Fault, _op
from dnpu.spec import isa, mx
from dnpu.spec import numerics as nm
from dnpu.spec.csr import ErrCause

__all__ = ["MemoryUnit"]


class MemoryUnit:
    """Handlers of the H_* instructions and the MX stream checks (a mixin of Emulator)."""

    def _fmt(self, code: int) -> str:
        name = isa.MXFMT_NAMES[code]
        if name not in self.formats:
            raise _Fault(ErrCause.ILLEGAL_INSTR, f"MX format {name} is not decoded by profile "
                                                 f"{self.config.name} (formats: {', '.join(self.formats)})")
        return name

    def _mx_stream(self, addr: int, n: int, fmt: str) -> tuple[int, int]:
        """Checks for an MX stream of n rows at addr: (bytes it occupies, whole-beat span).

        The stream starts at a group; a last partial group is read only as far as its
        blocks go. The hardware reads whole AXI beats, so the span up to the next beat
        boundary must be readable too (its tail is discarded)."""
        self._mx_aligned(addr, n)
        nbytes = mx.stream_nbytes(n * self.vlen, fmt, self.block)
        return nbytes, self._mx_span(addr, nbytes)

    def _mx_span(self, addr: int, nbytes: int) -> int:
        """The whole-beat span of a stream of nbytes at addr, AXI_READ past the top of memory
        (known from the operands alone: before the SRAM range)."""
        beat = self.config.beat_bytes
        span = -(-(addr + nbytes) // beat) * beat - addr
        if addr + span > self.mem.limit:
            raise _Fault(ErrCause.AXI_READ, f"MX stream read of [0x{addr:08X}, +{span}) runs past the "
                                            f"top of the address space")
        return span

    def _mx_aligned(self, addr: int, n: int) -> None:
        """MISALIGNED unless an MX stream of n rows may start at addr."""
        align = mx.stream_align(self.config.beat_bytes)
        if addr % align or (n * self.vlen) % self.block:
            raise _Fault(ErrCause.MISALIGNED,
                         f"MX stream at 0x{addr:08X} of {n} rows x {self.vlen}: the address must be "
                         f"{align}-byte aligned (an MX group start at an AXI beat) and n*VLEN a "
                         f"multiple of the MX block ({self.block})")

    def _mx_mapped(self, addr: int, span: int) -> None:
        """The stream's whole beats must be inside a readable window, then mapped (checked
        after the SRAM range)."""
        self._win(addr, span, PERM_R)
        if not self.mem.is_mapped(addr, span):
            bad = self.mem.first_unmapped(addr, span)
            raise _Fault(ErrCause.AXI_READ, f"MX stream read of [0x{addr:08X}, +{span}) (whole beats) "
                                            f"hits unmapped 0x{bad:08X}")

    def _mx_bf16(self, raw: np.ndarray, n: int, fmt: str) -> np.ndarray:
        total = n * self.vlen
        buf = np.zeros(mx.packed_nbytes(total, fmt, self.block), np.uint8)
        buf[:raw.size] = raw
        q = mx.unpack(buf, (total,), fmt, self.block)
        return mx.dequantize_bf16(q).reshape(n, self.vlen)

    def _fused(self, raw: np.ndarray, n: int, fmt: str) -> tuple[int, int]:
        """(argmax, FP32 bits of the sum of exp(l - max)) of one H_SAMPLE_FUSED stream."""
        return nm.fused_sample(self._mx_bf16(raw, n, fmt).reshape(-1), self.vlen)

    # ---- memory --------------------------------------------------------------------------
    @_op("H_PREFETCH_V")
    def _h_prefetch_v(self, a):
        vd, addr, n = self._x[a["vd"]], self._x[a["addr"]], self._x[a["n"]]
        fmt = self._fmt(a["fmt"])
        if n == 0:
            return None
        nbytes, span = self._mx_stream(addr, n, fmt)
        self._sram("vector", vd, n, self.vector_rows)
        self._mx_mapped(addr, span)
        raw = self._rd(addr, nbytes)
        if self.data_path:
            self._vsram[vd:vd + n] = self._mx_bf16(raw, n, fmt)
        return {"V": (vd, n)}

    @_op("H_SAMPLE_FUSED")
    def _h_sample_fused(self, a):
        addr, n = self._x[a["addr"]], self._x[a["n"]]
        fmt = self._fmt(a["fmt"])
        if n == 0:
            return None
        nbytes, span = self._mx_stream(addr, n, fmt)
        self._mx_mapped(addr, span)
        raw = self._rd(addr, nbytes)
        idx, s = self._fused(raw, n, fmt) if self.data_path else (0, 0)
        w = self._wf(a["sum"], s)
        w.update(self._wx(a["idx"], idx, data=True))
        return w

    @_op("H_SAMPLE_FUSED_N")
    def _h_sample_fused_n(self, a):
        """H_SAMPLE_FUSED over x[count] positions at the packed row stride. Checks in
        order (docs/EXECUTION.md): fmt (ILLEGAL_INSTR); n = 0 or count = 0 retires;
        MISALIGNED (the same for every position: the stride is a multiple of 64);
        SRAM_RANGE (dst + count in the int and the FP SRAM); then position by position
        the stream's AXI_READ (past the top, then unmapped), positions before it written."""
        dst, addr, n, count = self._x[a["dst"]], self._x[a["addr"]], self._x[a["n"]], self._x[a["count"]]
        fmt = self._fmt(a["fmt"])
        if n == 0 or count == 0:
            return None
        self._mx_aligned(addr, n)                 # position 0's: the stride keeps every one aligned
        self._sram("int", dst, count, self.int_words)
        self._sram("FP", dst, count, self.fp_words)
        stride = mx.packed_nbytes(n * self.vlen, fmt, self.block)
        nbytes = mx.stream_nbytes(n * self.vlen, fmt, self.block)
        for p in range(count):
            pa = addr + p * stride
            try:
                self._mx_mapped(pa, self._mx_span(pa, nbytes))
            except _Fault as f:
                raise _Fault(f.cause, f"position {p} of {count} (positions before it written): {f.msg}",
                             f.addr) from None
            raw = self._rd(pa, nbytes)
            if self.data_path:
                idx, s = self._fused(raw, n, fmt)
                self._intsram[dst + p] = idx
                self._fpsram[dst + p] = int(nm.reci_f32(s))
        return {"INT": (dst, count), "FP": (dst, count)}

    def _load_words(self, a, dst_role: str, sram: np.ndarray, what: str) -> dict | None:
        dst, addr, n = self._x[a[dst_role]], self._x[a["addr"]], self._x[a["n"]]
        if n == 0:
            return None
        self._aligned(addr, 4)
        self._sram(what, dst, n, sram.size)
        raw = self._rd(addr, 4 * n)
        if self.data_path:
            sram[dst:dst + n] = raw.view("<u4")
        return {"INT" if what == "int" else "FP": (dst, n)}

    def _store_words(self, a, src_role: str, sram: np.ndarray, what: str) -> dict | None:
        src, addr, n = self._x[a[src_role]], self._x[a["addr"]], self._x[a["n"]]
        if n == 0:
            return None
        self._aligned(addr, 4)
        self._sram(what, src, n, sram.size)
        self._wr_check(addr, 4 * n)
        self._wr(addr, sram[src:src + n], "<u4")
        return {"M": (addr, 4 * n)}

    @_op("H_LOAD_INT")
    def _h_load_int(self, a):
        return self._load_words(a, "idst", self._intsram, "int")

    @_op("H_LOAD_FP")
    def _h_load_fp(self, a):
        return self._load_words(a, "fdst", self._fpsram, "FP")

    @_op("H_STORE_INT")
    def _h_store_int(self, a):
        return self._store_words(a, "isrc", self._intsram, "int")

    @_op("H_STORE_FP")
    def _h_store_fp(self, a):
        return self._store_words(a, "fsrc", self._fpsram, "FP")

    @_op("H_LOAD_V")
    def _h_load_v(self, a):
        vd, addr, n = self._x[a["vd"]], self._x[a["addr"]], self._x[a["n"]]
        if n == 0:
            return None
        self._aligned(addr, 4)
        self._sram("vector", vd, n, self.vector_rows)
        raw = self._rd(addr, 2 * self.vlen * n)
        if self.data_path:
            self._vsram[vd:vd + n] = raw.view("<u2").reshape(n, self.vlen)
        return {"V": (vd, n)}

    @_op("H_STORE_V")
    def _h_store_v(self, a):
        va, addr, n = self._x[a["va"]], self._x[a["addr"]], self._x[a["n"]]
        if n == 0:
            return None
        self._aligned(addr, 4)
        self._sram("vector", va, n, self.vector_rows)
        nbytes = 2 * self.vlen * n
        self._wr_check(addr, nbytes)
        self._wr(addr, self._vsram[va:va + n], "<u2")
        return {"M": (addr, nbytes)}

    @_op("H_STORE_MX")
    def _h_store_mx(self, a):
        """The rows quantized to MX (docs/NUMERICS.md section 7.1): the first
        stream_nbytes of mx.pack(mx.quantize(rows)), what H_PREFETCH_V reads back."""
        vs, addr, n = self._x[a["vs"]], self._x[a["addr"]], self._x[a["n"]]
        fmt = self._fmt(a["fmt"])
        if n == 0:
            return None
        self._mx_aligned(addr, n)
        self._sram("vector", vs, n, self.vector_rows)
        total = n * self.vlen
        nbytes = mx.stream_nbytes(total, fmt, self.block)
        self._wr_check(addr, nbytes)
        if self.data_path:
            rows = nm.widen_bf16(self._vsram[vs:vs + n].reshape(-1)).view(np.float32)   # exact
            packed = np.frombuffer(mx.pack(mx.quantize(rows, fmt, self.block)), np.uint8)[:nbytes]
        else:
            packed = np.zeros(nbytes, np.uint8)
        self._wr(addr, packed, "<u1")
        return {"M": (addr, nbytes)}
