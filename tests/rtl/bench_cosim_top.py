"""The cocotb side of scripts/bench_cosim.py: one program on dnpu_top, clocked per cycle
from Python, for the simulated-cycles-per-second comparison with the C++ harness.

Not a test (no test_ prefix: pytest does not collect it); scripts/bench_cosim.py builds
dnpu_top with the cocotb runner and runs this module. Everything per cycle is Python:
the clock (a coroutine toggling clk through Timer), the AXI4 memory (tests/rtl/axi_mem.py,
the profile's read latency, no stress) and the AXI4-Lite master (cocotbext-axi). The run
is measured like the harness's: cycles from the START write until a STATUS read shows the
program ended, plus the two cycles the harness adds for the counter strobes; host time
over the same span.

Input: $DNPU_BENCH_IN, a JSON file {"beat_bytes", "max_burst", "id_width", "addr_width",
"read_latency", "regions": [[addr, hex bytes], ...], "prog", "args", "budget", "outputs":
[[addr, nbytes], ...]}. Output: $DNPU_BENCH_OUT, JSON {"cycles", "wall_s", "status",
"counters", "outputs": [hex, ...]}.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import cocotb
from cocotb.triggers import RisingEdge, Timer
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from dnpu.spec import csr

try:  # imported by the simulator as rtl.bench_cosim_top (tests/ on sys.path)
    from .axi_mem import AxiMem
except ImportError:
    from axi_mem import AxiMem

BUSY, DONE, ERROR = csr.mask("STATUS", "BUSY"), csr.mask("STATUS", "DONE"), csr.mask("STATUS", "ERROR")
START, CLEAR = csr.mask("CTRL", "START"), csr.mask("CTRL", "CLEAR_COUNTERS")


@cocotb.test()
async def bench(dut):
    spec = json.loads(Path(os.environ["DNPU_BENCH_IN"]).read_text())
    cycles = [0]

    async def clock():                      # the clock, one Python iteration per cycle
        while True:
            dut.clk.value = 0
            await Timer(5, unit="ns")
            dut.clk.value = 1
            cycles[0] += 1
            await Timer(5, unit="ns")

    dut.rst_n.value = 0
    cocotb.start_soon(clock())
    mem = AxiMem(spec["beat_bytes"], spec["max_burst"], spec["id_width"], spec["addr_width"])
    mem.latency = max(1, spec["read_latency"])
    mem.stress = False
    for addr, data in spec["regions"]:
        raw = bytes.fromhex(data)
        mem.map(addr, len(raw))
        mem.write(addr, raw)
    mem.attach(dut, dut.clk)
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst_n, reset_active_level=False)
    axil.write_if.log.setLevel(logging.WARNING)
    axil.read_if.log.setLevel(logging.WARNING)
    for _ in range(4):
        await RisingEdge(dut.clk)
    dut.rst_n.value = 1
    for _ in range(2):
        await RisingEdge(dut.clk)

    # rst_n disables every memory window: grant window 0 the whole address space
    await axil.write_dword(csr.offset("WIN_BASE0"), 0)
    await axil.write_dword(csr.offset("WIN_LIMIT0"), 0xFFFF_FFFF)
    await axil.write_dword(csr.offset("WIN_PERM0"), sum(csr.mask("WIN_PERM", b) for b in "RWX"))
    await axil.write_dword(csr.offset("PROG_BASE"), spec["prog"])
    for k, a in enumerate(spec["args"]):
        await axil.write_dword(csr.offset(f"ARG{k}"), a)
    c0, t0 = cycles[0], time.perf_counter()
    await axil.write_dword(csr.offset("CTRL"), START | CLEAR)
    for _ in range(4):                      # as the harness: the first poll cannot see the last DONE
        await RisingEdge(dut.clk)
    while True:
        st = await axil.read_dword(csr.offset("STATUS"))
        if not st & BUSY and st & (DONE | ERROR):
            break
        assert cycles[0] - c0 < spec["budget"], f"still busy after {spec['budget']} cycles (STATUS 0x{st:X})"
    for _ in range(2):
        await RisingEdge(dut.clk)
    n, wall = cycles[0] - c0, time.perf_counter() - t0
    counters = {}
    for r in csr.REGS.values():
        if r.counter:
            lo = await axil.read_dword(csr.offset(f"{r.name}_LO"))
            hi = await axil.read_dword(csr.offset(f"{r.name}_HI"))
            counters[r.name] = csr.combine64(lo, hi)
    out = {"cycles": n, "wall_s": wall, "status": st, "counters": counters,
           "outputs": [mem.read(a, k).hex() for a, k in spec["outputs"]], "protocol_errors": mem.errors[:5]}
    Path(os.environ["DNPU_BENCH_OUT"]).write_text(json.dumps(out))
