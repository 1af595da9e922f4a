"""dnpu_uart_bridge (hw/rtl/uart/): the serial link's framed protocol over a UART, as an
AXI4-Lite master, against a model slave that can answer SLVERR / DECERR or never answer.

Every frame comes from dnpu.spec.serial (the host's codec), every reply is compared byte for
byte with the one the codec encodes for the expected outcome, and the slave's memory and
access log show what reached the bus. The UART runs at a short bit time and a short idle
gap; the protocol is the same as on a board.

Also here: dnpu_axi_ram (hw/rtl/mem/) on its own, both ports driven by cocotbext-axi.
"""

from __future__ import annotations

import os
import random

import pytest

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge

from dnpu.spec import csr, serial
from dnpu.spec.serial import Status, encode_reply, encode_request

try:  # collected by pytest as a member of the tests/rtl package
    from .cocotb_run import lint, rtl_sources, run_block
    from .uart_link import UartLink
except ImportError:  # imported by cocotb inside the simulator, tests/rtl on PYTHONPATH
    from cocotb_run import lint, rtl_sources, run_block
    from uart_link import UartLink

CPB = 8                       # clock cycles per bit in the bench
GAP = 24                      # idle bit times that end a frame (the board's is link.frame_gap_bits)
MEM_BYTES = 4096
BUS_TIMEOUT = serial.LINK["bus_timeout_cycles"]
MAXW = serial.MAX_WORDS
CSR_BASE = serial.WINDOWS["CSR"]["base"]
CSR_BYTES = 1 << csr.ADDR_WIDTH
MEM_BASE = serial.WINDOWS["MEM"]["base"]
OKAY, SLVERR, DECERR = 0, 2, 3
M32 = 0xFFFF_FFFF


def _fill(addr: int) -> int:
    """What an unwritten word of the model slave reads: never 0, differs per address."""
    return (addr * 0x9E37_79B1 + 0x1234_5678) & M32 or 1


class LiteSlave:
    """AXI4-Lite slave model on the bridge's m_axil_* port. Channels are sampled and driven
    at falling edges; a handshake completes at the rising edge after READY is driven."""

    def __init__(self, dut):
        self.dut = dut
        self.mem: dict[int, int] = {}
        self.resp: dict[int, int] = {}     # address -> SLVERR / DECERR
        self.hang: set[int] = set()        # addresses whose request is never accepted
        self.log: list[tuple[str, int]] = []
        for n in ("awready", "wready", "bvalid", "arready", "rvalid"):
            getattr(dut, f"m_axil_{n}").value = 0
        dut.m_axil_bresp.value = 0
        dut.m_axil_rresp.value = 0
        dut.m_axil_rdata.value = 0
        cocotb.start_soon(self._run())

    def word(self, addr: int) -> int:
        return self.mem.get(addr, _fill(addr))

    async def _run(self) -> None:
        # Each channel: idle -> READY driven for one cycle (the handshake) -> response
        # VALID held until READY is seen with it. The bridge's READY / VALID outputs are
        # registered, so their value at a falling edge holds through the next rising edge.
        d = self.dut
        r_state = w_state = "idle"
        r_hs = b_hs = False
        while True:
            await FallingEdge(d.clk)
            rready, bready = int(d.m_axil_rready.value), int(d.m_axil_bready.value)
            if r_state == "r" and r_hs:
                d.m_axil_rvalid.value = 0
                r_state = "idle"
            if r_state == "ar":
                d.m_axil_arready.value = 0
                a = self._ar
                d.m_axil_rresp.value = self.resp.get(a, OKAY)
                d.m_axil_rdata.value = self.word(a) if a not in self.resp else 0xDEAD_BEEF
                d.m_axil_rvalid.value = 1
                r_state, r_hs = "r", bool(rready)
            elif r_state == "r":
                r_hs = bool(rready)
            elif int(d.m_axil_arvalid.value):
                a = int(d.m_axil_araddr.value)
                if a not in self.hang:
                    self._ar = a
                    self.log.append(("r", a))
                    d.m_axil_arready.value = 1
                    r_state = "ar"

            if w_state == "b" and b_hs:
                d.m_axil_bvalid.value = 0
                w_state = "idle"
            if w_state == "aw":
                d.m_axil_awready.value = 0
                d.m_axil_wready.value = 0
                a = self._aw
                if a not in self.resp:
                    self.mem[a] = self._w
                d.m_axil_bresp.value = self.resp.get(a, OKAY)
                d.m_axil_bvalid.value = 1
                w_state, b_hs = "b", bool(bready)
            elif w_state == "b":
                b_hs = bool(bready)
            elif int(d.m_axil_awvalid.value) and int(d.m_axil_wvalid.value):
                a = int(d.m_axil_awaddr.value)
                if a not in self.hang:
                    assert int(d.m_axil_wstrb.value) == 0xF
                    self._aw, self._w = a, int(d.m_axil_wdata.value)
                    self.log.append(("w", a))
                    d.m_axil_awready.value = 1
                    d.m_axil_wready.value = 1
                    w_state = "aw"


async def setup(dut):
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst_n.value = 0
    dut.uart_rx.value = 1
    slave = LiteSlave(dut)
    link = UartLink(dut, CPB, GAP)
    await ClockCycles(dut.clk, 5)
    dut.rst_n.value = 1
    await ClockCycles(dut.clk, 5)
    assert int(dut.link_idle.value) == 1
    return link, slave


def rand_words(rng: random.Random, n: int) -> list[int]:
    return [rng.getrandbits(32) for _ in range(n)]


@cocotb.test()
async def write_read_bursts(dut):
    """WRITE then READ of 1 and MAX_WORDS words in both windows: the bus sees each word
    once, in order, and the READ returns what was written."""
    link, slave = await setup(dut)
    rng = random.Random(1)
    seq = 0
    for base, size in ((MEM_BASE, MEM_BYTES), (CSR_BASE, CSR_BYTES)):
        for n, addr in ((1, base), (MAXW, base + size - 4 * MAXW), (3, base + 8)):
            words = rand_words(rng, n)
            seq += 1
            slave.log.clear()
            await link.transact(encode_request("WRITE", seq, addr, words=words), encode_reply(seq, Status.OK))
            assert slave.log == [("w", addr + 4 * i) for i in range(n)]
            assert [slave.mem[addr + 4 * i] for i in range(n)] == words
            seq += 1
            slave.log.clear()
            await link.transact(encode_request("READ", seq, addr, nwords=n), encode_reply(seq, Status.OK, words))
            assert slave.log == [("r", addr + 4 * i) for i in range(n)]
    # a READ of words nobody wrote returns the slave's contents, not a buffer's leftovers
    await link.transact(encode_request("READ", 0xEE, MEM_BASE + 0x400, nwords=2),
                        encode_reply(0xEE, Status.OK, [_fill(MEM_BASE + 0x400), _fill(MEM_BASE + 0x404)]))
    assert int(dut.link_idle.value) == 1


@cocotb.test()
async def info(dut):
    link, _ = await setup(dut)
    want = {"VERSION": serial.LINK["version"], "CSR_BASE": CSR_BASE, "MEM_BASE": MEM_BASE,
            "MEM_BYTES": MEM_BYTES, "MAX_WORDS": MAXW, "CLKS_PER_BIT": CPB, "GAP_BITS": GAP}
    assert set(want) == set(serial.INFO_WORDS)
    await link.transact(encode_request("INFO", 9), encode_reply(9, Status.OK, [want[k] for k in serial.INFO_WORDS]))
    # INFO ignores ADDR and NWORDS
    await link.transact(encode_request("INFO", 10, 0x1234, nwords=77),
                        encode_reply(10, Status.OK, [want[k] for k in serial.INFO_WORDS]))


def _corrupt_crc(frame: bytes) -> bytes:
    return _flip(frame, len(frame) - 1)


def _with_cmd(frame: bytes, cmd: int) -> bytes:
    """frame with another CMD byte and a CRC that matches it (the codec only encodes known commands)."""
    body = bytes([cmd]) + frame[2:-1]
    return frame[:1] + body + bytes([serial.crc8(body)])


def _flip(frame: bytes, i: int) -> bytes:
    return frame[:i] + bytes([frame[i] ^ 0x5A]) + frame[i + 1:]


@cocotb.test()
async def refused_frames(dut):
    """BAD_CRC (a WRITE writes nothing), BAD_CMD, BAD_LEN, BAD_ADDR: each answered after the
    idle gap with no data, nothing reaches the bus, and the next frame works."""
    link, slave = await setup(dut)
    mem = MEM_BASE + 0x100
    cases = [
        (_corrupt_crc(encode_request("WRITE", 1, mem, words=[1, 2, 3])), Status.BAD_CRC),
        (_corrupt_crc(encode_request("READ", 2, mem, nwords=4)), Status.BAD_CRC),
        (_flip(encode_request("WRITE", 3, mem, words=[7] * MAXW), 10), Status.BAD_CRC),   # only the CRC tells
        (_with_cmd(encode_request("READ", 4, mem, nwords=1), 0x7E), Status.BAD_CMD),
        (_with_cmd(encode_request("READ", 5, mem, nwords=1), 0x00), Status.BAD_CMD),
        (encode_request("READ", 6, mem, nwords=0), Status.BAD_LEN),
        (encode_request("READ", 7, mem, nwords=MAXW + 1), Status.BAD_LEN),
        (encode_request("WRITE", 8, mem, nwords=0), Status.BAD_LEN),
        (encode_request("WRITE", 9, mem, words=list(range(MAXW + 1))), Status.BAD_LEN),
        (encode_request("READ", 10, mem + 2, nwords=1), Status.BAD_ADDR),
        (encode_request("WRITE", 11, mem + 1, words=[5]), Status.BAD_ADDR),
        (encode_request("READ", 12, MEM_BASE - 4, nwords=1), Status.BAD_ADDR),
        (encode_request("READ", 13, MEM_BASE + MEM_BYTES - 8, nwords=3), Status.BAD_ADDR),
        (encode_request("WRITE", 14, MEM_BASE + MEM_BYTES, words=[1]), Status.BAD_ADDR),
        (encode_request("READ", 15, CSR_BASE + CSR_BYTES - 4, nwords=2), Status.BAD_ADDR),
        (encode_request("READ", 16, 0, nwords=1), Status.BAD_ADDR),
        (encode_request("READ", 17, 0xFFFF_FFFC, nwords=2), Status.BAD_ADDR),
    ]
    for frame, status in cases:
        # the codec's reading of the frame agrees with the status expected here
        with pytest.raises(serial.FrameError) as e:
            req = serial.parse_request(frame)
            if serial.window_of(req.addr, 4 * req.nwords, MEM_BYTES, CSR_BYTES) is None:
                raise serial.FrameError("outside the windows", Status.BAD_ADDR)
        assert e.value.status == status, frame.hex(" ")
        slave.log.clear()
        seq = frame[2]
        await link.transact(frame, encode_reply(seq, status), gap=True)
        assert slave.log == [], f"{status.name}: the bus saw {slave.log}"
        await link.transact(encode_request("READ", seq ^ 0x80, mem, nwords=1),
                            encode_reply(seq ^ 0x80, Status.OK, [slave.word(mem)]))
    assert mem not in slave.mem and mem + 4 not in slave.mem


@cocotb.test()
async def cut_short(dut):
    """A frame that stops (a dropped byte) is answered FRAME_TIMEOUT once the line has been
    idle the gap, with its SEQ (0 if cut before it); the next frame works."""
    link, slave = await setup(dut)
    mem = MEM_BASE + 0x40
    good = encode_request("WRITE", 0x31, mem, words=[0xA1, 0xA2])
    for frame, seq in ((good[:5] + good[6:], 0x31),      # one ADDR byte dropped
                       (good[:-1], 0x31),                 # the CRC dropped
                       (good[:2], 0),                     # cut before SEQ
                       (good[:1], 0),                     # the sync byte alone
                       (encode_request("READ", 0x32, mem, nwords=1)[:-1], 0x32)):
        slave.log.clear()
        await link.transact(frame, encode_reply(seq, Status.FRAME_TIMEOUT), gap=True)
        assert slave.log == []
        await link.transact(encode_request("READ", 0x40, mem, nwords=2),
                            encode_reply(0x40, Status.OK, [slave.word(mem), slave.word(mem + 4)]))
    # A break (the line held low for three byte times) inside a frame: no 0x00 bytes are
    # read from it, so the frame is cut short after the bytes before it.
    slave.log.clear()
    await link.send(good[:4])
    await link.glitch(30 * CPB)
    await link.transact(b"", encode_reply(0x31, Status.FRAME_TIMEOUT), gap=True)
    assert slave.log == []
    await link.transact(good, encode_reply(0x31, Status.OK))
    assert [slave.mem[mem], slave.mem[mem + 4]] == [0xA1, 0xA2]


@cocotb.test()
async def bus_errors(dut):
    """SLVERR / DECERR on one word: the words before it are done, a READ sends 0 from that
    word on and reads no further, a WRITE stops there; status BUS_ERROR."""
    link, slave = await setup(dut)
    base = MEM_BASE + 0x200
    for code in (SLVERR, DECERR):
        slave.resp = {base + 8: code}
        slave.mem.clear()
        slave.log.clear()
        await link.transact(encode_request("READ", 0x51, base, nwords=5),
                            encode_reply(0x51, Status.BUS_ERROR, [slave.word(base), slave.word(base + 4), 0, 0, 0]))
        assert slave.log == [("r", base), ("r", base + 4), ("r", base + 8)]
        slave.log.clear()
        await link.transact(encode_request("WRITE", 0x52, base, words=[11, 12, 13, 14]),
                            encode_reply(0x52, Status.BUS_ERROR))
        assert slave.log == [("w", base), ("w", base + 4), ("w", base + 8)]
        assert slave.mem == {base: 11, base + 4: 12}
    slave.resp = {}
    await link.transact(encode_request("READ", 0x53, base + 8, nwords=1),
                        encode_reply(0x53, Status.OK, [slave.word(base + 8)]))


@cocotb.test()
async def bus_timeout(dut):
    """A slave that never accepts a request: BUS_TIMEOUT after bus_timeout_cycles, the READ's
    words 0 from there; the bridge then serves the next frame."""
    link, slave = await setup(dut)
    base = MEM_BASE + 0x300
    slave.hang = {base + 4}
    slave.log.clear()
    waited = await link.transact(encode_request("READ", 0x61, base, nwords=3),
                                 encode_reply(0x61, Status.BUS_TIMEOUT, [slave.word(base), 0, 0]),
                                 bus_cycles=BUS_TIMEOUT + 100)
    assert slave.log == [("r", base)]
    assert waited < link.bits_ns(20), "the reply header and first word go out before the timeout"
    slave.log.clear()
    await link.transact(encode_request("WRITE", 0x62, base, words=[1, 2, 3]),
                        encode_reply(0x62, Status.BUS_TIMEOUT), bus_cycles=BUS_TIMEOUT + 100)
    assert slave.log == [("w", base)] and slave.mem == {base: 1}
    slave.hang = set()
    await link.transact(encode_request("READ", 0x63, base, nwords=2),
                        encode_reply(0x63, Status.OK, [1, slave.word(base + 4)]))


@cocotb.test()
async def back_to_back_and_noise(dut):
    """Frames sent the moment the previous reply ends; junk bytes before a sync byte; glitches
    shorter than half a bit on the idle line: none of it disturbs the next frame."""
    link, slave = await setup(dut)
    rng = random.Random(7)
    base = MEM_BASE + 0x800
    model = {}
    for k in range(12):
        n = rng.randint(1, 8)
        a = base + 4 * rng.randint(0, 32)
        if rng.random() < 0.5:
            words = rand_words(rng, n)
            await link.transact(encode_request("WRITE", k, a, words=words), encode_reply(k, Status.OK))
            model.update({a + 4 * i: w for i, w in enumerate(words)})
        else:
            await link.transact(encode_request("READ", k, a, nwords=n),
                                encode_reply(k, Status.OK, [model.get(a + 4 * i, _fill(a + 4 * i)) for i in range(n)]))
        if k % 3 == 1:
            await link.send(bytes([0x00, 0xFF, serial.LINK["rsp_sync"], 0x13]))   # not a sync byte
        if k % 3 == 2:
            for _ in range(3):
                await link.glitch(CPB // 2 - 1)
                await link.idle(1)
    assert all(slave.mem[a] == w for a, w in model.items())
    assert int(dut.link_idle.value) == 1


# ---------------------------------------------------------------------------
# dnpu_axi_ram on its own
# ---------------------------------------------------------------------------

def _present(bus):
    """bus without the optional signals the port lacks (AxSIZE, AxBURST, AxPROT, ...): a
    channel sees a missing optional signal as an attribute set to None and would check its
    width."""
    for ch in ("write", "read"):
        if hasattr(bus, ch):
            _present(getattr(bus, ch))
    for ch in ("aw", "w", "b", "ar", "r"):
        c = getattr(bus, ch, None)
        for name in [n for n, v in getattr(c, "_signals", {}).items() if v is None]:
            del c._signals[name]
            delattr(c, name)
    return bus


@cocotb.test(skip=os.environ.get("DNPU_UART_TOP") != "dnpu_axi_ram")
async def axi_ram(dut):
    """AXI4 bursts (full width, byte strobes, DECERR outside the window) and the 32-bit
    AXI4-Lite port see the same memory."""
    from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiMaster, AxiResp
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst_n.value = 0
    axi = AxiMaster(_present(AxiBus.from_prefix(dut, "s_axi")), dut.clk, dut.rst_n, reset_active_level=False)
    lite = AxiLiteMaster(_present(AxiLiteBus.from_prefix(dut, "s_axil")), dut.clk, dut.rst_n,
                         reset_active_level=False)
    await ClockCycles(dut.clk, 4)
    dut.rst_n.value = 1
    await ClockCycles(dut.clk, 2)
    bb = len(dut.s_axi_wdata) // 8
    size = int(os.environ["DNPU_RAM_BYTES"])
    rng = random.Random(3)
    ref = bytearray(size)
    for _ in range(20):
        beats = rng.randint(1, 16)
        off = bb * rng.randint(0, size // bb - beats)
        data = bytes(rng.getrandbits(8) for _ in range(beats * bb))
        await axi.write(MEM_BASE + off, data)
        ref[off:off + len(data)] = data
        r = await axi.read(MEM_BASE + off, len(data))
        assert r.data == data and r.resp == AxiResp.OKAY
    # lite writes with byte enables, read back through both ports
    for _ in range(40):
        off = 4 * rng.randint(0, size // 4 - 1)
        first = rng.randint(0, 3)
        w = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4 - first)))
        await lite.write(MEM_BASE + off + first, w)         # byte strobes for the bytes given
        ref[off + first:off + first + len(w)] = w
        assert (await lite.read(MEM_BASE + off, 4)).data == bytes(ref[off:off + 4])
    r = await axi.read(MEM_BASE, size)
    assert r.data == bytes(ref)
    # outside the window: DECERR, memory untouched
    for addr in (MEM_BASE - 2 * bb, MEM_BASE + size, MEM_BASE + size - bb):
        n = 2 * bb
        r = await axi.read(addr, n)
        assert r.resp == AxiResp.DECERR and r.data == bytes(n)
        w = await axi.write(addr, bytes([0xFF]) * n)
        assert w.resp == AxiResp.DECERR
    assert (await lite.read(MEM_BASE + size, 4)).resp == AxiResp.DECERR
    assert (await lite.write(MEM_BASE - 4, b"\xff" * 4)).resp == AxiResp.DECERR
    assert (await axi.read(MEM_BASE, size)).data == bytes(ref)

    # Reads of one half while the other half is written, R and W stalling at random: a
    # write beat taking port A must not disturb a read beat waiting on R.
    def stalls(seed):
        g = random.Random(seed)
        while True:
            yield g.random() < 0.4
    axi.read_if.r_channel.set_pause_generator(stalls(1))
    axi.write_if.w_channel.set_pause_generator(stalls(2))
    half = size // 2

    async def writer():
        for _ in range(12):
            beats = rng.randint(1, 16)
            off = half + bb * rng.randint(0, half // bb - beats)
            data = bytes(rng.getrandbits(8) for _ in range(beats * bb))
            await axi.write(MEM_BASE + off, data)
            ref[off:off + len(data)] = data
    w = cocotb.start_soon(writer())
    for _ in range(12):
        beats = rng.randint(1, 16)
        off = bb * rng.randint(0, half // bb - beats)
        assert (await axi.read(MEM_BASE + off, beats * bb)).data == bytes(ref[off:off + beats * bb])
    await w
    axi.read_if.r_channel.set_pause_generator(None)
    assert (await axi.read(MEM_BASE, size)).data == bytes(ref)


# ---------------------------------------------------------------------------
# pytest entries
# ---------------------------------------------------------------------------

BRIDGE_SRC = ["uart/dnpu_uart_bridge.v", "uart/dnpu_uart_rx.v", "uart/dnpu_uart_tx.v"]
BRIDGE_PARAMS = {"CLKS_PER_BIT": CPB, "GAP_BITS": GAP, "MEM_BYTES": MEM_BYTES}
BRIDGE_TESTS = ["write_read_bursts", "info", "refused_frames", "cut_short", "bus_errors", "bus_timeout",
                "back_to_back_and_noise"]
RAM_BYTES = 2048


@pytest.mark.rtl
def test_uart_bridge_verilator():
    run_block("dnpu_uart_bridge", rtl_sources(*BRIDGE_SRC), __name__, parameters=BRIDGE_PARAMS,
              testcase=BRIDGE_TESTS)


@pytest.mark.rtl
@pytest.mark.slow          # the same cases on the second simulator (~35 s)
def test_uart_bridge_icarus():
    run_block("dnpu_uart_bridge", rtl_sources(*BRIDGE_SRC), __name__, sim="icarus", parameters=BRIDGE_PARAMS,
              testcase=BRIDGE_TESTS)


@pytest.mark.rtl
@pytest.mark.parametrize("data_w", [128, 64])
def test_axi_ram_verilator(data_w):
    run_block("dnpu_axi_ram", rtl_sources("mem/dnpu_axi_ram.v"), __name__,
              parameters={"MEM_BYTES": RAM_BYTES, "DATA_W": data_w},
              extra_env={"DNPU_UART_TOP": "dnpu_axi_ram", "DNPU_RAM_BYTES": str(RAM_BYTES)}, testcase="axi_ram")


@pytest.mark.rtl
def test_uart_lint():
    """Verilator -Wall is clean on the UART, the bridge and the RAM, at board and bench sizes."""
    for top in ("dnpu_uart_rx", "dnpu_uart_tx"):
        lint(top, rtl_sources(f"uart/{top}.v"))
        lint(top, rtl_sources(f"uart/{top}.v"), parameters={"CLKS_PER_BIT": CPB})
    lint("dnpu_uart_bridge", rtl_sources(*BRIDGE_SRC))
    lint("dnpu_uart_bridge", rtl_sources(*BRIDGE_SRC), parameters=BRIDGE_PARAMS)
    for w in (64, 128, 512):
        lint("dnpu_axi_ram", rtl_sources("mem/dnpu_axi_ram.v"), parameters={"DATA_W": w})
