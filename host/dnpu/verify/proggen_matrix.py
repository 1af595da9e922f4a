"""The matrix unit's instructions for `dnpu.verify.proggen.ProgGen`: M_CFG with an M_MM* over
MX weight tiles, or with an M_MM_V(_RES) over BF16 weight rows of the vector SRAM."""

from __future__ import annotations

from dnpu.spec import isa, matrix, mx

__all__ = ["MatrixGen", "MATMUL_OPS", "MATMUL_V_OPS"]

# The matrix products g_matmul draws from (M_CFG sets their shape).
MATMUL_OPS = ("M_MM", "M_MM_RES", "M_MM_F32", "M_MM_ACC_F32", "M_MM_ACC", "M_MM_ACC_RES")
# ... and g_matmul_v (weights as BF16 rows of the vector SRAM)
MATMUL_V_OPS = ("M_MM_V", "M_MM_V_RES")


class MatrixGen:
    """Generators of ProgGen, which supplies the profile's sizes (cfg, vlen, rows, block,
    formats, beat), its MX buffer (mx_off, mx_bytes), the unmapped address `hole` and the
    operand helpers (regs, placed)."""

    def g_matmul(self, r, fault: str | None = None):
        """M_CFG with a random shape (sometimes a zero dimension), then one M_MM* over tiles
        read from the MX buffer (any bytes are MX data): X, then Y (two rows per output row
        for the FP32 variants), then R or the accumulators A (read by M_MM_ACC*: random bits,
        any FP32 value; sometimes A is X itself, which only reads it). R is often Y itself.
        Faults: N not a multiple of VLEN, Y overlapping X or the A it reads, unmapped weights."""
        R, vlen = self.cfg.matrix.rows, self.vlen
        km = matrix.k_multiple(vlen, self.block)
        fmt = r.choice(self.formats)
        op = r.choice(MATMUL_OPS)
        M = r.choice((1, R - 1 or 1, R, R + 1, 2 * R + 1, r.randint(1, 3 * R)))
        K = km * r.randint(1, 3)
        NT = r.randint(1, 3)
        stride = matrix.tile_nbytes(K, fmt, self.block, vlen)
        span = lambda nt: (nt - 1) * stride + -(-mx.stream_nbytes(vlen * K, fmt, self.block) // self.beat) * self.beat
        while NT > 1 and span(NT) > self.mx_bytes:
            NT -= 1
        while K > km and span(NT) > self.mx_bytes:
            K -= km
        starts = [o for o in self.mx_off.values() if o + span(NT) <= self.mx_bytes] or [0]
        off = r.choice(starts)
        xr, yr = M * K // vlen, M * NT
        while xr + 4 * yr > self.rows and M > 1:
            M -= 1
            xr, yr = M * K // vlen, M * NT
        ysize = 2 * yr if op in ("M_MM_F32", "M_MM_ACC_F32") else yr
        vx = self.placed(r, xr, self.rows - 4 * yr)
        vd = vx + xr + r.randint(0, self.rows - xr - 4 * yr - vx)
        vr = vd if r.random() < 0.5 or op == "M_MM_ACC_RES" else vd + yr
        va = vd + ysize + r.randint(0, self.rows - 3 * yr - vd - ysize) if op in ("M_MM_ACC", "M_MM_ACC_RES") else vd
        if op in ("M_MM_ACC", "M_MM_ACC_RES") and r.random() < 0.2 and 2 * yr <= self.rows - vx:
            va = vx                                   # A over X: both only read
        if r.random() < 0.05:
            M = 0
        m, n, k, d, x, w, rr = self.regs(r, 7)
        out = (isa.load_imm(m, M) + isa.load_imm(n, NT * vlen) + isa.load_imm(k, K) +
               isa.load_imm(d, vd) + isa.load_imm(x, vx) + isa.load_imm(w, off) + [f"S_ADD x{w}, x{w}, x3"])
        third = va if op in ("M_MM_ACC", "M_MM_ACC_RES") else vr
        out += isa.load_imm(rr, third)
        if fault == "misaligned":
            out += isa.load_imm(m, max(M, 1)) + [f"S_ADDI x{n}, x{n}, {r.randint(1, vlen - 1)}"]
        elif fault == "sram_range":
            over_a = op in ("M_MM_ACC", "M_MM_ACC_RES") and r.random() < 0.5
            bad = third + r.randint(0, 2 * yr - 1) if over_a else vx + r.randint(0, max(0, xr - 1))
            out += isa.load_imm(m, max(M, 1)) + isa.load_imm(d, bad)
        elif fault == "unmapped":
            out += isa.load_imm(m, max(M, 1)) + isa.load_imm(w, self.hole)
        out.append(f"M_CFG x{m}, x{n}, x{k}")
        if op in ("M_MM_RES", "M_MM_ACC", "M_MM_ACC_RES"):
            return out + [f"{op} x{d}, x{x}, x{w}, x{rr}, {fmt}"]
        return out + [f"{op} x{d}, x{x}, x{w}, {fmt}"]

    def g_matmul_v(self, r, fault: str | None = None):
        """M_CFG with a random shape (sometimes a zero dimension), then M_MM_V or M_MM_V_RES with
        W [N, K] as N*K/VLEN rows of the vector SRAM (whatever BF16 bits are there, specials
        included): X, Y, W and a separate R (else R is Y) at random places that do not
        overlap, or W over X (both only read). Faults: N not a multiple of VLEN; Y over X or
        over W, W past the SRAM's end, R over Y without being Y."""
        R, vlen, rows = self.cfg.matrix.rows, self.vlen, self.rows
        km = matrix.k_multiple(vlen, self.block)
        op = r.choice(MATMUL_V_OPS)
        M = r.choice((1, R - 1 or 1, R, R + 1, 2 * R + 1, r.randint(1, 3 * R)))
        K = km * r.randint(1, 2)
        NT = r.randint(1, 3)
        res_apart = op == "M_MM_V_RES" and r.random() < 0.5
        share = r.random() < 0.25

        def need():
            xr, yr, wr = M * K // vlen, M * NT, NT * K
            segs = [("x", max(xr, wr) if share else xr), ("y", yr)]
            segs += [] if share else [("w", wr)]
            segs += [("r", yr)] if res_apart else []
            return xr, yr, wr, segs

        xr, yr, wr, segs = need()
        while sum(n for _, n in segs) > rows:
            if M > 1:
                M -= 1
            elif NT > 1:
                NT -= 1
            elif K > km:
                K -= km
            else:
                break
            xr, yr, wr, segs = need()
        r.shuffle(segs)
        slack = max(0, rows - sum(n for _, n in segs))
        cuts = sorted(r.randint(0, slack) for _ in segs)
        at, pos, prev = {}, 0, 0
        for (name, n), c in zip(segs, cuts):
            pos += c - prev
            prev = c
            at[name] = pos
            pos += n
        vx, vd = at["x"], at["y"]
        vw = vx if share else at["w"]
        vr = at["r"] if res_apart else vd
        if r.random() < 0.05:
            M = 0
        m, n, k, d, x, w, rr = self.regs(r, 7)
        if fault == "misaligned":
            M = max(M, 1)
            N = NT * vlen + r.randint(1, vlen - 1)
        else:
            N = NT * vlen
        if fault == "sram_range":
            M = max(M, 1)
            kind = r.choice(("y_over_x", "y_over_w", "w_past", "r_over_y") if op == "M_MM_V_RES" and yr > 1
                            else ("y_over_x", "y_over_w", "w_past"))
            if kind == "y_over_x":
                vd = vx + r.randint(0, xr - 1)
            elif kind == "y_over_w":
                vd = vw + r.randint(0, wr - 1)
            elif kind == "w_past":
                vw = rows - wr + r.randint(1, wr)
            else:
                vr = vd + r.randint(1, yr - 1)
        out = (isa.load_imm(m, M) + isa.load_imm(n, N) + isa.load_imm(k, K) +
               isa.load_imm(d, vd) + isa.load_imm(x, vx) + isa.load_imm(w, vw) + isa.load_imm(rr, vr))
        out.append(f"M_CFG x{m}, x{n}, x{k}")
        if op == "M_MM_V_RES":
            return out + [f"M_MM_V_RES x{d}, x{x}, x{w}, x{rr}"]
        return out + [f"M_MM_V x{d}, x{x}, x{w}"]
