"""The vector unit's instructions for `dnpu.verify.proggen.ProgGen`: V_TRANS, S_MAP_V_FP, the
elementwise, reduction, top-k, threshold, select and mask instructions."""

from __future__ import annotations

from dnpu.spec import isa

__all__ = ["VectorGen"]


class VectorGen:
    """Generators of ProgGen, which supplies the profile's sizes (vlen, rows, fpw, intw) and
    the operand helpers (regs, placed, count, range_pair)."""

    def g_trans(self, r, fault: str | None = None):
        """V_TRANS: source and destination strides 0 (one row), 1, small or as large as two
        spans allow, spans apart anywhere in the SRAM (at its top too). Faults: the spans
        overlap, or one runs past the SRAM's end (by a row, or by its stride's wrap)."""
        vlen, rows = self.vlen, self.rows
        top = max(0, (rows - 2) // (2 * (vlen - 1)))       # two spans of this stride fit

        def stride():
            return min(top, r.choice((0, 0, 1, 1, 2, 3, r.randint(0, top), top)))

        for _ in range(50):
            ss, ds = stride(), stride()
            ls, ld = (vlen - 1) * ss + 1, (vlen - 1) * ds + 1
            vs = r.choice((self.placed(r, ls, rows), rows - ls))
            vd = r.choice((self.placed(r, ld, rows), rows - ld, self.placed(r, ld, rows)))
            if vs + ls <= vd or vd + ld <= vs:
                break
        else:
            ss = ds = 0
            vs, vd = 0, rows - 1
        if fault == "sram_range":
            kind = r.choice(("overlap", "overlap", "src_past", "dst_past", "wrap"))
            if kind == "overlap":
                vd = vs + r.randint(0, (vlen - 1) * ss) if r.random() < 0.5 else max(0, vs - (vlen - 1) * ds)
            elif kind == "src_past":
                ss = max(ss, 1)
                vs = rows - (vlen - 1) * ss + r.randint(0, vlen)
            elif kind == "dst_past":
                vd = rows + r.randint(0, 3) - (vlen - 1) * ds
            else:                                           # only an exact product catches this
                ds = (1 << 32) // (vlen - 1) + 1
        a, b, c, d = self.regs(r, 4)
        return (isa.load_imm(a, vd) + isa.load_imm(b, vs) + isa.load_imm(c, ss) + isa.load_imm(d, ds) +
                [f"V_TRANS x{a}, x{b}, x{c}, x{d}"])

    def g_map_v_fp(self, r):
        n = self.count(r, min(self.fpw, self.rows * self.vlen))
        rows = -(-n // self.vlen)
        fs, vd = self.placed(r, n, self.fpw), self.placed(r, rows, self.rows)
        a, b, c = self.regs(r, 3)
        return isa.load_imm(a, vd) + isa.load_imm(b, fs) + isa.load_imm(c, n) + [f"S_MAP_V_FP x{a}, x{b}, x{c}"]

    def g_vv(self, r, op):
        n = self.count(r, self.rows, big=64)
        vd, va = self.range_pair(r, n, self.rows)
        vb = r.choice((va, vd, self.range_pair(r, n, self.rows)[0]))
        d, a, b, c = self.regs(r, 4)
        return isa.load_imm(d, vd) + isa.load_imm(a, va) + isa.load_imm(b, vb) + isa.load_imm(c, n) + [f"{op} x{d}, x{a}, x{b}, x{c}"]

    def g_vf(self, r, op):
        n = self.count(r, self.rows, big=64)
        vd, va = self.range_pair(r, n, self.rows)
        d, a, c = self.regs(r, 3)
        return isa.load_imm(d, vd) + isa.load_imm(a, va) + isa.load_imm(c, n) + [f"{op} x{d}, x{a}, f{r.randint(0, 7)}, x{c}"]

    def g_reci_v(self, r):
        return self.g_unary(r, "V_RECI_V")

    def g_unary(self, r, op):
        n = self.count(r, self.rows, big=64)
        vd, va = self.range_pair(r, n, self.rows)
        d, a, c = self.regs(r, 3)
        return isa.load_imm(d, vd) + isa.load_imm(a, va) + isa.load_imm(c, n) + [f"{op} x{d}, x{a}, x{c}"]

    def g_exp_v(self, r):
        n = self.count(r, self.rows, big=64)
        vd, va = self.range_pair(r, n, self.rows)
        d, a, c = self.regs(r, 3)
        return isa.load_imm(d, vd) + isa.load_imm(a, va) + isa.load_imm(c, n) + [f"V_EXP_V x{d}, x{a}, x{c}"]

    def g_fill(self, r):
        n = self.count(r, self.rows, big=64)
        d, c = self.regs(r, 2)
        return isa.load_imm(d, self.placed(r, n, self.rows)) + isa.load_imm(c, n) + [f"V_FILL_VF x{d}, f{r.randint(0, 7)}, x{c}"]

    def g_red(self, r, op):
        n = self.count(r, self.rows, big=64)
        a, c, idx = self.regs(r, 3)
        out = isa.load_imm(a, self.placed(r, n, self.rows)) + isa.load_imm(c, n)
        fd = r.randint(0, 7)
        if op == "V_RED_MAX_IDX":
            return out + [f"V_RED_MAX_IDX f{fd}, x{idx}, x{a}, x{c}"]
        return out + [f"{op} f{fd}, x{a}, x{c}"]

    # The RTL ranks top-k elements one against each other: n*(n+2+result_regs) cycles, no retire, no bus
    # traffic. TOPK_MAX keeps that inside the lockstep's watchdog and its run time small.
    TOPK_MAX = 300

    def g_topk(self, r):
        n = self.count(r, min(self.fpw, self.intw, self.TOPK_MAX))
        d, s, k, c = self.regs(r, 4)
        return (isa.load_imm(d, self.placed(r, n, self.intw)) + isa.load_imm(s, self.placed(r, n, self.fpw)) +
                isa.load_imm(k, r.randint(0, n + 2)) + isa.load_imm(c, n) + [f"V_TOPK_MASK x{d}, x{s}, x{k}, x{c}"])

    def g_topk_v(self, r):
        n = self.count(r, min(self.intw, self.rows * self.vlen, self.TOPK_MAX))
        rows = -(-n // self.vlen)
        d, a, k, c = self.regs(r, 4)
        return (isa.load_imm(d, self.placed(r, n, self.intw)) + isa.load_imm(a, self.placed(r, rows, self.rows)) +
                isa.load_imm(k, r.randint(0, n + 2)) + isa.load_imm(c, n) + [f"V_TOPK_MASK_V x{d}, x{a}, x{k}, x{c}"])

    def g_thresh(self, r):
        n = self.count(r, min(self.fpw, self.intw))
        d, s, c = self.regs(r, 3)
        return (isa.load_imm(d, self.placed(r, n, self.intw)) + isa.load_imm(s, self.placed(r, n, self.fpw)) + isa.load_imm(c, n) +
                [f"V_THRESH_MASK x{d}, x{s}, f{r.randint(0, 7)}, x{c}"])

    def g_select(self, r):
        n = self.count(r, self.intw)
        dst, src = self.range_pair(r, n, self.intw)
        msk = r.choice((src, dst, self.range_pair(r, n, self.intw)[0]))
        d, m, s, c = self.regs(r, 4)
        return isa.load_imm(d, dst) + isa.load_imm(m, msk) + isa.load_imm(s, src) + isa.load_imm(c, n) + [f"V_SELECT_INT x{d}, x{m}, x{s}, x{c}"]

    def g_mask_fp(self, r):
        n = self.count(r, min(self.fpw, self.intw))
        d, m, c = self.regs(r, 3)
        return (isa.load_imm(d, self.placed(r, n, self.fpw)) + isa.load_imm(m, self.placed(r, n, self.intw)) + isa.load_imm(c, n) +
                [f"V_MASK_FP x{d}, x{m}, f{r.randint(0, 7)}, x{c}"])
