"""Cycles of the matrix unit's instructions: M_MM* (an MX weight stream, `matmul_cycles`) and
M_MM_V(_RES) (both operands from vector SRAM over the unit's one read port, `matmul_v_cycles`)."""

from __future__ import annotations

from dnpu.perf.machine import _K, Machine, ModelError, machine
from dnpu.perf.stream import stream_cycles
from dnpu.spec.config import Config

__all__ = ["MATMUL_EXACT_ROWS", "matmul_cycles", "mm_unit_tail", "mm_v_reads", "mm_v_unit_cycles", "matmul_v_cycles"]


def mm_unit_tail(slots: int) -> int:
    """dnpu_matrix's cycles from the last step to done beyond the last tile's output rows: the
    PEs' 2*slots (the operand and product registers, then one cycle a row interleaved in a PE),
    then MAT_TAIL (the drain's stages, done), one more where the PEs interleave rows (the
    drain's add in two stages, OUT_D)."""
    return 2 * slots + _K["MAT_TAIL"] + (1 if slots > 1 else 0)


# Up to this many weight rows an M_MM's stream is stepped cycle by cycle; beyond, extrapolated.
MATMUL_EXACT_ROWS = 65536


def matmul_cycles(m: Machine | Config | str, M: int, N: int, K: int, fmt: str = "e4m3", *,
                  f32: bool = False) -> int:
    """Cycles of one M_MM* of shape (M, N, K) whose line is resident: FETCH, EXEC, the first
    read command, the memory's latency, G = ceil(M / matrix.rows) passes over the N / vlen
    weight tiles of K rows each to the array's last step (stream_cycles: a row a cycle at
    best, a step every matrix_slots cycles), then the last group's output rows, two cycles
    each when they are written as FP32 rows (`f32`: M_MM_F32, M_MM_ACC_F32), and
    mm_unit_tail. Reading the accumulators
    (M_MM_ACC*) costs nothing more: it hides behind the stream (docs/PERF.md)."""
    if not isinstance(m, Machine):
        m = machine(m)
    if not (M and N and K):
        return _K["FE"] + m.decode_stage
    if not m.matrix_rows:
        raise ModelError(f"profile {m.name} has no matrix unit")
    G = -(-M // m.matrix_rows)
    last = M - (G - 1) * m.matrix_rows
    count = G * (N // m.vlen)
    if count <= 4 or count * K <= MATMUL_EXACT_ROWS:
        s = stream_cycles(m, fmt, K, False, count, matrix=True)
    else:   # tiles stream back to back in a steady state: the fourth costs what the third did
        # (exact on sim; within a few cycles where the read engine's bursts in flight bind)
        s3, s4 = (stream_cycles(m, fmt, K, False, c, matrix=True) for c in (3, 4))
        s = s4 + (count - 4) * (s4 - s3)
    return (_K["STREAM"] + m.window_cycle + _K["MAT_START"] + m.read_latency + s + last * (2 if f32 else 1)
            + mm_unit_tail(m.matrix_slots) + m.decode_stage)


def mm_v_reads(M: int, N: int, K: int, *, vlen: int, rows: int, block: int, res: bool) -> int:
    """Vector-SRAM reads of one M_MM_V(_RES) on the matrix unit's one read port, but the last
    tile's residual rows: every W column block (max(vlen, block) reads a square, each of the
    G*N/vlen tiles K/block squares), every square's X slices (the group's rows, max(1,
    block/vlen) reads each), the residual rows of every tile but the last."""
    G = -(-M // rows)
    last = M - (G - 1) * rows
    nt, sq = N // vlen, K // block
    w = G * nt * sq * max(vlen, block)
    x = nt * sq * M * max(1, block // vlen)
    r = (M * nt - last) if res else 0
    return w + x + r


def mm_v_unit_cycles(M: int, N: int, K: int, *, vlen: int, rows: int, block: int, res: bool,
                     slots: int = 1) -> int:
    """dnpu_matrix's done cycle after the handshake for M_MM_V(_RES) (dnpu_matrix.v, "Timing,
    M_MM_V"): the port is busy every cycle until the last W read (mm_v_reads), the last ring
    row arrives the cycle after it, then as M_MM: the last square's slots*block cycles, the
    last tile's m_last rows drained, mm_unit_tail. Where the array is the limit (a square's
    slots*block cycles above its reads), the first square's reads and then every square's
    slots*block cycles, longer after each tile end by what the square after it must read
    beyond its cycles (its weights and X slices, and the drained tile's residual rows)."""
    G = -(-M // rows)
    last = M - (G - 1) * rows
    reads = mm_v_reads(M, N, K, vlen=vlen, rows=rows, block=block, res=res)
    tiles = G * (N // vlen)
    squares = tiles * (K // block)
    sq_cycles = slots * block
    nt, xr = N // vlen, max(1, block // vlen)
    group_rows = [min(rows, M - g * rows) for g in range(G)]
    ends = [(group_rows[t // nt], group_rows[(t + 1) // nt]) for t in range(tiles - 1)]   # (drained, next)
    extra = sum(max(0, max(vlen, block) + nxt * xr + (cur if res else 0) + 1 - sq_cycles) for cur, nxt in ends)
    array = -(-reads // squares) + 1 + squares * sq_cycles + extra
    return max(reads + 1 + sq_cycles, array) + last + mm_unit_tail(slots)


def matmul_v_cycles(m: Machine | Config | str, M: int, N: int, K: int, *, res: bool = False) -> int:
    """Cycles of one M_MM_V(_RES) whose line is resident: FETCH + EXEC, then the unit
    (mm_v_unit_cycles from its handshake in the MAT state's first cycle), retire with done."""
    if not isinstance(m, Machine):
        m = machine(m)
    if not (M and N and K):
        return _K["FE"] + m.decode_stage
    if not m.matrix_rows:
        raise ModelError(f"profile {m.name} has no matrix unit")
    return _K["FE"] + m.decode_stage + _K["MAT_V"] + mm_v_unit_cycles(M, N, K, vlen=m.vlen, rows=m.matrix_rows,
                                                      block=m.mx_block, res=res, slots=m.matrix_slots)
