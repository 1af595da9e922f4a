"""dnpu_uart_top (hw/rtl/top/): the NPU, its on-chip memory and the serial bridge, driven
only through the UART with frames from dnpu.spec.serial, on the sim profile at the
co-simulation's bit time (link.sim_clks_per_bit) and the board's idle gap.

INFO describes the build; the CSR window reaches dnpu_top's registers (ID, ISA_VERSION,
CONFIG_HASH as dnpu.spec and the profile say); the MEM window reaches the RAM; and a small
program, written to MEM and started through CTRL, reads its input from MEM and stores its
result there, as the host's serial backend drives a board.
"""

from __future__ import annotations

import random

import pytest

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from dnpu.spec import config, csr, isa, serial
from dnpu.spec.serial import Status, encode_reply, encode_request

try:  # collected by pytest as a member of the tests/rtl package
    from .cocotb_run import lint, rtl_sources, run_block
    from .uart_link import UartLink
except ImportError:  # imported by cocotb inside the simulator, tests/rtl on PYTHONPATH
    from cocotb_run import lint, rtl_sources, run_block
    from uart_link import UartLink

PROFILE = "sim"
CPB = serial.LINK["sim_clks_per_bit"]
GAP = serial.LINK["frame_gap_bits"]
MEM_BYTES = 1 << 14
MAXW = serial.MAX_WORDS
CSR_BASE = serial.WINDOWS["CSR"]["base"]
MEM_BASE = serial.WINDOWS["MEM"]["base"]
M32 = 0xFFFF_FFFF


class Host:
    """Request/reply over the link with a running SEQ, like the serial backend."""

    def __init__(self, link: UartLink):
        self.link, self.seq = link, 0

    def _next(self) -> int:
        self.seq = (self.seq + 1) & 0xFF
        return self.seq

    async def write(self, addr: int, words) -> None:
        s = self._next()
        await self.link.transact(encode_request("WRITE", s, addr, words=list(words)), encode_reply(s, Status.OK))

    async def read(self, addr: int, n: int, expect: list[int]) -> None:
        s = self._next()
        await self.link.transact(encode_request("READ", s, addr, nwords=n), encode_reply(s, Status.OK, expect))

    async def read_words(self, addr: int, n: int) -> list[int]:
        s = self._next()
        await self.link.send(encode_request("READ", s, addr, nwords=n))
        got, _ = await self.link.recv(serial.reply_size(n), 32)
        r = serial.parse_reply(got)
        assert (r.seq, r.status) == (s, Status.OK), serial.status_doc(int(r.status))
        return list(r.words)

    async def csr_write(self, name: str, value: int) -> None:
        await self.write(CSR_BASE + csr.offset(name), [value & M32])


async def setup(dut) -> Host:
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst_n.value = 0
    dut.uart_rx.value = 1
    link = UartLink(dut, CPB, GAP)
    await ClockCycles(dut.clk, 5)
    dut.rst_n.value = 1
    await ClockCycles(dut.clk, 5)
    assert int(dut.link_idle.value) == 1 and int(dut.busy.value) == 0
    return Host(link)


@cocotb.test()
async def info_and_ids(dut):
    host = await setup(dut)
    want = {"VERSION": serial.LINK["version"], "CSR_BASE": CSR_BASE, "MEM_BASE": MEM_BASE,
            "MEM_BYTES": MEM_BYTES, "MAX_WORDS": MAXW, "CLKS_PER_BIT": CPB, "GAP_BITS": GAP}
    await host.link.transact(encode_request("INFO", 1), encode_reply(1, Status.OK, [want[k] for k in serial.INFO_WORDS]))
    ids = [csr.ID_MAGIC, isa.VERSION_WORD, config.load(PROFILE).config_hash32]
    assert [csr.offset(n) for n in ("ID", "ISA_VERSION", "CONFIG_HASH")] == [0, 4, 8]
    await host.read(CSR_BASE + csr.offset("ID"), 3, ids)
    # a read-write register, through the CSR window
    await host.csr_write("ARG3", 0x1234_5678)
    await host.read(CSR_BASE + csr.offset("ARG3"), 1, [0x1234_5678])


@cocotb.test()
async def mem_window(dut):
    """MEM words written and read back at both ends of the window; one word past it is refused."""
    host = await setup(dut)
    rng = random.Random(5)
    for addr in (MEM_BASE, MEM_BASE + MEM_BYTES - 4 * MAXW, MEM_BASE + 0x104):
        words = [rng.getrandbits(32) for _ in range(MAXW)]
        await host.write(addr, words)
        await host.read(addr, MAXW, words)
    await host.read(MEM_BASE + 0x104, 1, [words[0]])
    s = host._next()
    await host.link.transact(encode_request("READ", s, MEM_BASE + MEM_BYTES - 4, nwords=2),
                             encode_reply(s, Status.BAD_ADDR), gap=True)


@cocotb.test()
async def npu_program(dut):
    """A program in MEM, started through CTRL: it loads words from MEM, adds and subtracts,
    and stores the results to MEM; the host polls STATUS and reads them back."""
    host = await setup(dut)
    prog_at, in_at, out_at = MEM_BASE, MEM_BASE + 0x400, MEM_BASE + 0x800
    words_in = [0x8000_0001, 0x7FFF_FFFF, 12345, 0xFFFF_FFF0]
    program = isa.assemble("\n".join([
        "S_LD_ARG x1, 0", "S_LD_ARG x2, 1", "S_ADDI x3, x0, 4", "S_ADDI x4, x0, 0",
        "H_LOAD_INT x4, x1, x3",                   # INT[0..3] = the input words
        "S_LD_INT x5, x0, 0", "S_LD_INT x6, x0, 1", "S_LD_INT x7, x0, 2", "S_LD_INT x8, x0, 3",
        "S_ADD x9, x5, x6", "S_ADD x9, x9, x7", "S_ADD x9, x9, x8", "S_SUB x10, x7, x8",
        "S_ST_INT x9, x0, 4", "S_ST_INT x10, x0, 5", "S_ADDI x3, x0, 6",
        "H_STORE_INT x4, x2, x3",                  # M[out..] = INT[0..5]
        "C_HALT"]))
    prog_words = [int.from_bytes(program[i:i + 4], "little") for i in range(0, len(program), 4)]
    await host.write(prog_at, prog_words)
    await host.write(in_at, words_in)
    await host.write(out_at, [0] * 6)
    perm = csr.mask("WIN_PERM", "R") | csr.mask("WIN_PERM", "W") | csr.mask("WIN_PERM", "X")
    await host.csr_write("WIN_BASE0", MEM_BASE)
    await host.csr_write("WIN_LIMIT0", MEM_BASE + MEM_BYTES - 1)
    await host.csr_write("WIN_PERM0", perm)
    await host.csr_write("PROG_BASE", prog_at)
    await host.write(CSR_BASE + csr.offset("ARG0"), [in_at, out_at])

    seen_busy = []

    async def watch():
        while True:
            await RisingEdge(dut.busy)
            seen_busy.append(True)
    cocotb.start_soon(watch())
    await host.csr_write("CTRL", csr.mask("CTRL", "START"))
    for _ in range(50):
        st = (await host.read_words(CSR_BASE + csr.offset("STATUS"), 1))[0]
        if not st & csr.mask("STATUS", "BUSY"):
            break
    else:
        raise AssertionError("the program still runs after 50 STATUS reads")
    assert st & csr.mask("STATUS", "DONE") and not st & csr.mask("STATUS", "ERROR"), csr.describe_status(st)
    assert seen_busy, "the busy output never rose while the program ran"
    assert int(dut.busy.value) == 0
    total = sum(words_in) & M32
    await host.read(out_at, 6, [*words_in, total, (words_in[2] - words_in[3]) & M32])


# ---------------------------------------------------------------------------
# pytest entries
# ---------------------------------------------------------------------------

def _sources():
    from dnpu.codegen.rtl import SERIAL_TOP, rtl_sources as top_sources
    return rtl_sources(*(s.removeprefix("hw/rtl/") for s in top_sources(top=SERIAL_TOP)))


def test_source_lists():
    """The serial top's files are in its own source list and out of dnpu_top's (the Zynq
    builds and the Yosys estimate read that one)."""
    from dnpu.codegen.rtl import RTL_TOP, SERIAL_ONLY, SERIAL_TOP, rtl_sources as top_sources
    npu, board = top_sources(top=RTL_TOP), top_sources(top=SERIAL_TOP)
    extra = set(board) - set(npu)
    assert set(npu) < set(board) and all(f.startswith(SERIAL_ONLY) for f in extra)
    assert {f"hw/rtl/top/{SERIAL_TOP}.v", "hw/rtl/mem/dnpu_axi_ram.v", "hw/rtl/uart/dnpu_uart_bridge.v"} <= extra
    assert "hw/rtl/top/dnpu_top.v" in npu
    with pytest.raises(ValueError, match="unknown RTL top"):
        top_sources(top="dnpu_uart")


@pytest.mark.rtl
@pytest.mark.slow          # the NPU's Verilator build: minutes on two cores (its run: ~15 s)
def test_uart_top_verilator():
    run_block("dnpu_uart_top", _sources(), __name__, defines={"DNPU_PROFILE_SIM": 1},
              parameters={"CLKS_PER_BIT": CPB, "MEM_BYTES": MEM_BYTES})


@pytest.mark.rtl
@pytest.mark.parametrize("profile", ["SIM", "PYNQ_Z2", "ZCU104", "ECP5"])
def test_uart_top_lint(profile):
    """Verilator -Wall is clean on dnpu_uart_top and everything under it (the board defaults)."""
    lint("dnpu_uart_top", _sources(), defines={f"DNPU_PROFILE_{profile}": None})
