"""The MX stream of H_PREFETCH_V, H_SAMPLE_FUSED(_N) and the M_MM* weight tiles: a
register-level model of the three coupled rates of that part of the RTL (the DRAM's beats,
the dequantizer's byte buffer, the vector or matrix unit's row rate), cached per shape."""

from __future__ import annotations

import functools
import math

from dnpu.perf.machine import _K, Machine, ModelError
from dnpu.spec import mx

__all__ = ["stream_cycles"]


@functools.lru_cache(maxsize=4096)
def stream_cycles(m: Machine, fmt: str, rows: int, fused: bool, count: int = 1, matrix: bool = False) -> int:
    """Cycles from the first beat the DRAM could present to the last row delivered (H_PREFETCH_V:
    the dequantizer's last row handshake; H_SAMPLE_FUSED: the vector unit accepting its last row).

    port "rtl": a register-level model of hw/rtl/mx/dnpu_mx_dequant.v (byte buffer of CAP =
    CMAX + beat bytes, s_ready = fill <= CMAX from registers, one 16-byte header or one
    SE-element slice a cycle, D1 and m_data stages), fed by cosim/dram.h's R channel (a credit
    of read_bpc bytes a cycle, one beat a cycle, RVALID held until taken) and drained by
    dnpu_vec's stage B (a row every C cycles) for H_SAMPLE_FUSED, or by the vector SRAM (a row
    a cycle) for H_PREFETCH_V.

    count > 1 (H_SAMPLE_FUSED_N, fused): `count` such streams back to back, to the cycle the
    last position's results are final in dnpu_vec (fn_end). matrix=True (M_MM): `count` weight
    tiles of `rows` rows to dnpu_matrix, whose ring takes a row a cycle while it holds fewer
    than weight_buffers complete squares; the array steps through a complete square's
    mx.block rows one every matrix_slots cycles and frees its slot at the last; to the
    array's last step. The R channel runs on (the
    read engine has the next position's bursts queued); between positions the dequantizer
    turns round (done, a new command, active two cycles after the last row handshake) and
    dnpu_vec takes the next position's first row only after fn_end, C + log2(C) + FN_END
    cycles after the last row's handshake and at least RECI_N cycles after the previous
    fn_end (its reciprocal must be done)."""
    if rows <= 0 or count <= 0:
        return 0
    bits = mx.format_info(fmt).bits
    nbytes = mx.stream_nbytes(rows * m.vlen, fmt, m.mx_block)
    C = m.sum_row_period(True) if fused else 1       # stage B takes a row every C cycles
    end_gap = m.sum_tail(True) + _K["FN_END"]
    S = m.matrix_slots if matrix else 1
    if m.port == "ideal":
        one = max(math.ceil(nbytes / m.bytes_per_cycle), rows * C * S)
        if matrix:
            return count * one + S * m.mx_block
        return one if count == 1 else count * one + count * end_gap

    IB = m.beat_bytes
    GE = mx.group_elements(fmt, m.mx_block)
    SE = min(m.vlen, GE)
    RPS = m.vlen // SE
    SPG = GE // SE
    CMAX = max(SE, 16)
    sb = SE * bits // 8
    total_beats = -(-nbytes // IB)
    total_slices = rows * RPS
    rate = m.bytes_per_cycle
    cap = max(IB, rate)
    credit, rvalid, sent = cap, False, 0              # DRAM R channel
    fill, beats_left, hdr, g = 0, total_beats, True, 0  # dequantizer buffer
    slices_left = total_slices
    pos, dq_on, vec_on, fn_end = 0, 0, 0, -(1 << 30)    # H_SAMPLE_FUSED_N: position, restart cycles
    d1_v = d1_eor = d1_last = False                     # stage D1
    m_v = m_last = False                                # m_data
    b_v, ch = False, 0                                  # dnpu_vec stage B (fused)
    c_last = C - 1
    # matrix: the ring's complete squares not yet computed (registered), the array's position
    nsq, steps, next_step, last_step, row_n = 0, 0, 0, 0, 0
    total_steps = count * rows
    t = 0
    limit = count * (64 * (total_beats + total_slices + rows * C) + 1000)
    while t < limit:
        # -- combinational, from this cycle's registers
        m_ready = ((not b_v or ch == c_last) and t >= vec_on) if fused else True
        s_go = rvalid and beats_left > 0 and fill <= CMAX and t >= dq_on
        d2_go = (not m_v) or m_ready
        d1_ready = (not d1_v) or d2_go
        working = slices_left > 0
        hdr_go = working and hdr and fill >= 16
        slice_go = working and not hdr and fill >= sb and d1_ready
        if matrix:
            m_ready = nsq < m.matrix_wbuf
        row_hs = m_v and m_ready
        if matrix:              # the array's step in this cycle, the ring's count after it
            step = nsq > 0 and t >= next_step
            sq_out = step and steps % m.mx_block == m.mx_block - 1
            if step:
                steps, next_step, last_step = steps + 1, t + S, t
            row_n += row_hs
            nsq += (row_hs and row_n % m.mx_block == 0) - sq_out
        if row_hs and m_last:
            if count > 1 and not matrix:
                fn_end = max(t + end_gap, fn_end + _K["RECI_N"])
            pos += 1
            if pos == count:
                if matrix:      # every square is complete: a step every S cycles to the last
                    last_step = max(next_step, t + 1) + S * (total_steps - steps - 1)
                break
            # the next position: the dequantizer's new command, dnpu_vec after fn_end
            fill, beats_left, hdr, g, slices_left = 0, total_beats, True, 0, total_slices
            d1_v = m_v = m_last = False
            dq_on, vec_on = t + 2, fn_end + 1
            b_v, ch = True, 0
            credit = min(credit + rate, cap)
            if not rvalid and sent < count * total_beats and credit >= IB:
                rvalid, credit, sent = True, credit - IB, sent + 1
            t += 1
            continue
        # -- registers
        take = 16 if hdr_go else (sb if slice_go else 0)
        last_go = slice_go and slices_left == 1
        fill = 0 if last_go else fill - take + (IB if s_go else 0)
        if s_go:
            beats_left -= 1
        if hdr_go:
            hdr = False
        elif slice_go:
            slices_left -= 1
            if g == SPG - 1:
                g, hdr = 0, True
            else:
                g += 1
        # D1 -> m_data
        if d1_v and d2_go:
            m_v, m_last = d1_eor, d1_last
        elif m_ready:
            m_v = False
        if slice_go:
            d1_v = True
            d1_eor = (total_slices - slices_left) % RPS == 0      # slices_left already decremented
            d1_last = last_go
        elif d2_go:
            d1_v = False
        # vector unit stage B
        if fused:
            if row_hs:
                b_v, ch = True, 0
            elif b_v and ch != c_last:
                ch += 1
            else:
                b_v = False
        # DRAM R channel (cosim/dram.h edge(): the handshake, then credit, then the next beat)
        if s_go:
            rvalid = False
        credit = min(credit + rate, cap)
        if not rvalid and sent < count * total_beats and credit >= IB:
            rvalid, credit, sent = True, credit - IB, sent + 1
        t += 1
    else:
        raise ModelError(f"stream model did not finish ({rows} rows of {fmt} on {m.name}): a bug in the model")
    if count > 1 and not matrix:
        return max(fn_end, math.ceil(count * total_beats / m.inflight_rate))
    if matrix:      # the bursts in flight bound the last row; its square's steps follow
        return max(last_step, math.ceil(count * total_beats / m.inflight_rate) + 1 + S * (m.mx_block - 1))
    return max(t, math.ceil(count * total_beats / m.inflight_rate))
