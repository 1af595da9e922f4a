"""A UART line driver and monitor for cocotb benches of the serial link (dnpu_uart_bridge,
dnpu_uart_top), and a request/reply checker built on dnpu.spec.serial's frame codec.

Bits are driven and sampled on clock cycles (CLKS_PER_BIT of them per bit); the monitor
finds each start bit by the line's falling edge and samples mid-bit, so it does not care
how the device's bit clock is aligned to ours.
"""

from __future__ import annotations

from collections import deque

import cocotb
from cocotb.triggers import ClockCycles, Event, FallingEdge, Timer, with_timeout
from cocotb.utils import get_sim_time

from dnpu.spec import serial


class UartLink:
    def __init__(self, dut, cpb: int, gap_bits: int, clk_ns: int = 10):
        self.dut, self.cpb, self.gap_bits, self.clk_ns = dut, cpb, gap_bits, clk_ns
        self.rx: deque[tuple[int, float]] = deque()     # (byte, sim time in ns of its start bit)
        self.framing_errors = 0
        self._got = Event()
        dut.uart_rx.value = 1
        self._mon = cocotb.start_soon(self._monitor())

    # ---- the line ----------------------------------------------------------------------
    async def send(self, data: bytes) -> None:
        """Drive data onto the device's rx line, 8N1, no idle time between bytes."""
        for b in data:
            for bit in [0, *((b >> i) & 1 for i in range(8)), 1]:
                self.dut.uart_rx.value = bit
                await ClockCycles(self.dut.clk, self.cpb)

    async def glitch(self, cycles: int) -> None:
        """Pull the line low for `cycles` clock cycles."""
        self.dut.uart_rx.value = 0
        await ClockCycles(self.dut.clk, cycles)
        self.dut.uart_rx.value = 1

    async def idle(self, bits: float) -> None:
        await ClockCycles(self.dut.clk, max(1, int(bits * self.cpb)))

    async def _monitor(self) -> None:
        half = self.cpb // 2
        while True:
            await FallingEdge(self.dut.uart_tx)
            t0 = get_sim_time("ns")
            await ClockCycles(self.dut.clk, half)
            if int(self.dut.uart_tx.value) != 0:
                continue                                  # a glitch would be a device bug
            b = 0
            for i in range(8):
                await ClockCycles(self.dut.clk, self.cpb)
                b |= int(self.dut.uart_tx.value) << i
            await ClockCycles(self.dut.clk, self.cpb)
            if int(self.dut.uart_tx.value) != 1:
                self.framing_errors += 1
            self.rx.append((b, t0))
            self._got.set()

    # ---- frames ------------------------------------------------------------------------
    def bits_ns(self, bits: float) -> float:
        return bits * self.cpb * self.clk_ns

    async def recv(self, n: int, within_bits: float) -> tuple[bytes, float]:
        """n bytes from the device, the first of which starts within `within_bits` bit times;
        (bytes, start time of the first in ns)."""
        out, t_first = bytearray(), None
        limit = self.bits_ns(within_bits + 10 * n + 10)
        t_end = get_sim_time("ns") + limit
        while len(out) < n:
            if not self.rx:
                left = t_end - get_sim_time("ns")
                assert left > 0, f"device sent {bytes(out).hex(' ')} and then nothing: {n} bytes expected"
                self._got.clear()
                try:
                    await with_timeout(self._got.wait(), int(left) + 1, "ns")
                except cocotb.triggers.SimTimeoutError:
                    raise AssertionError(f"device sent {bytes(out).hex(' ')} and then nothing "
                                         f"within {limit:.0f} ns: {n} bytes expected") from None
                continue
            b, t = self.rx.popleft()
            t_first = t if t_first is None else t_first
            out.append(b)
        return bytes(out), t_first

    async def expect_silence(self, bits: float) -> None:
        await Timer(self.bits_ns(bits), "ns")
        assert not self.rx, f"unexpected bytes from the device: {bytes(b for b, _ in self.rx).hex(' ')}"

    async def transact(self, frame: bytes, reply: bytes, *, gap: bool = False, bus_cycles: int = 0) -> float:
        """Send a request, check that the reply is exactly `reply` and that no byte follows.
        gap: the reply must wait for the line to be idle gap_bits bit times after the
        request. Returns the time in ns from the end of the request to the reply."""
        assert not self.rx, f"stray bytes before a request: {bytes(b for b, _ in self.rx).hex(' ')}"
        await self.send(frame)
        t_sent = get_sim_time("ns")
        # a WRITE's bus transfers (a few cycles a word) come before its reply
        within = (self.gap_bits if gap else 0) + 16 + (8 * serial.MAX_WORDS + bus_cycles) / self.cpb
        got, t_first = await self.recv(len(reply), within)
        assert got == reply, (f"request {frame.hex(' ')}\n  reply    {got.hex(' ')}\n  expected {reply.hex(' ')}"
                              f" ({_describe(reply)})")
        waited = t_first - t_sent
        if gap:
            assert waited >= self.bits_ns(self.gap_bits) - self.bits_ns(10), \
                f"error reply {waited:.0f} ns after the request, before the line had been idle {self.gap_bits} bits"
        assert self.framing_errors == 0, "the device sent a byte with a low stop bit"
        await self.expect_silence(2)
        return waited


def _describe(reply: bytes) -> str:
    try:
        r = serial.parse_reply(reply)
    except serial.FrameError as e:
        return str(e)
    return f"SEQ {r.seq}, {serial.status_doc(int(r.status))}, {len(r.words)} words"
