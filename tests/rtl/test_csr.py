"""dnpu_csr (hw/rtl/ctrl/dnpu_csr.v): the AXI4-Lite control/status register block.

cocotb coroutines (run inside the simulator) and the pytest entries that build and
run them on Verilator and Icarus. Offsets, bits and causes come from `dnpu.spec.csr`
(generated from hw/csr.toml), never from numbers written here.

Timing convention of the benches: every sample is taken 2 ns after a falling edge
(mid-cycle, everything settled); "cycle n" is the one between rising edges n and
n + 1. A handshake seen in cycle n completes on rising edge n + 1.
"""

from __future__ import annotations

import os
import random
from collections import deque

import pytest

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, Timer
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiResp

from dnpu.spec import csr
from dnpu.spec.isa import VERSION_WORD

try:  # collected by pytest as a member of the tests/rtl package
    from .cocotb_run import lint, rtl_sources, run_block
except ImportError:  # imported by cocotb inside the simulator, tests/rtl on PYTHONPATH
    from cocotb_run import lint, rtl_sources, run_block

ENV_HASH = "DNPU_CSR_TEST_CONFIG_HASH"
ENV_INIT = "DNPU_CSR_TEST_COUNTER_INIT"
# Two words below a 32-bit carry, with a non-zero high word: exercises the carry and
# the 64-bit parameter path on both simulators.
CARRY_INIT = (2 << 32) - 256

WORD = csr.DATA_WIDTH // 8
M32 = (1 << 32) - 1
M64 = (1 << 64) - 1

STROBES = {"BUSY_CYCLES": "busy_i", "INSTRET": "instret_i", "RD_BEATS": "rd_beat_i",
           "WR_BEATS": "wr_beat_i", "STALL_FETCH": "stall_fetch_i",
           "STALL_MEM_RD": "stall_mem_rd_i", "STALL_MEM_WR": "stall_mem_wr_i"}
PULSES = {"START": "start_o", "SOFT_RESET": "soft_reset_o", "CLEAR_COUNTERS": "clear_counters_o"}
CTRL_INPUTS = ("busy_i", "done_i", "error_i", "err_cause_i", "err_pc_i", "err_addr_i", "pc_i", *STROBES.values())
RW_WORDS = ["PROG_BASE"] + [f"ARG{i}" for i in range(csr.REGS["ARG"].count)]
STATUS_INPUTS = {"BUSY": "busy_i", "DONE": "done_i", "ERROR": "error_i"}


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)), 0)


def _merge(old: int, data: int, strb: int) -> int:
    for b in range(WORD):
        if strb >> b & 1:
            old = (old & ~(0xFF << 8 * b)) | (data & (0xFF << 8 * b))
    return old


def _strb_all() -> int:
    return (1 << WORD) - 1


# ---------------------------------------------------------------------------
# Bench
# ---------------------------------------------------------------------------

class Bench:
    """Clock, reset, an optional cocotbext-axi master, and a per-cycle monitor that
    records pulses and handshakes and checks that B and R hold while stalled."""

    def __init__(self, dut):
        self.dut = dut
        self.axi: AxiLiteMaster | None = None
        self.cycle = 0
        self.reset_cycle = 0       # rst_n first seen high on rising edge reset_cycle + 1
        self.pulses = {k: [] for k in PULSES}
        self.hs = {"aw": [], "w": [], "ar": [], "b": [], "r": []}   # (cycle, payload)
        self.counter_init = _env_int(ENV_INIT, 0)
        self.config_hash = _env_int(ENV_HASH, 0)

    async def start(self, *, raw: bool = False) -> "Bench":
        dut = self.dut
        for name in CTRL_INPUTS:
            getattr(dut, name).value = 0
        for name in ("awvalid", "wvalid", "arvalid", "bready", "rready", "awaddr", "araddr",
                     "awprot", "arprot", "wdata", "wstrb"):
            getattr(dut, f"s_axil_{name}").value = 0
        dut.rst_n.value = 0
        Clock(dut.clk, 10, unit="ns").start()
        if not raw:
            self.axi = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst_n,
                                     reset_active_level=False)
        cocotb.start_soon(self._monitor())
        await ClockCycles(dut.clk, 4)
        await FallingEdge(dut.clk)
        dut.rst_n.value = 1
        self.reset_cycle = self.cycle + 1   # the monitor counts this cycle 2 ns from now
        await ClockCycles(dut.clk, 2)
        return self

    async def _monitor(self):
        dut = self.dut
        stalled_b = stalled_r = None
        while True:
            await FallingEdge(dut.clk)
            await Timer(2, unit="ns")
            self.cycle += 1
            if not dut.rst_n.value:
                continue
            c = self.cycle
            for k, sig in PULSES.items():
                if getattr(dut, sig).value:
                    self.pulses[k].append(c)
            if dut.s_axil_awvalid.value and dut.s_axil_awready.value:
                self.hs["aw"].append((c, int(dut.s_axil_awaddr.value)))
            if dut.s_axil_wvalid.value and dut.s_axil_wready.value:
                self.hs["w"].append((c, int(dut.s_axil_wdata.value)))
            if dut.s_axil_arvalid.value and dut.s_axil_arready.value:
                self.hs["ar"].append((c, int(dut.s_axil_araddr.value)))
            bvalid, rvalid = int(dut.s_axil_bvalid.value), int(dut.s_axil_rvalid.value)
            b = int(dut.s_axil_bresp.value) if bvalid else None
            r = (int(dut.s_axil_rdata.value), int(dut.s_axil_rresp.value)) if rvalid else None
            # AXI: once VALID is up it stays, payload unchanged, until READY.
            assert stalled_b is None or b == stalled_b, f"cycle {c}: B changed while stalled"
            assert stalled_r is None or r == stalled_r, f"cycle {c}: R changed while stalled"
            bready, rready = int(dut.s_axil_bready.value), int(dut.s_axil_rready.value)
            stalled_b = b if bvalid and not bready else None
            stalled_r = r if rvalid and not rready else None
            if bvalid and bready:
                self.hs["b"].append((c, b))
                assert b == AxiResp.OKAY
            if rvalid and rready:
                self.hs["r"].append((c, r[0]))
                assert r[1] == AxiResp.OKAY

    def clear_records(self):
        for v in (*self.pulses.values(), *self.hs.values()):
            v.clear()

    async def cycles(self, n: int):
        await ClockCycles(self.dut.clk, n)

    async def rd(self, name: str) -> int:
        return await self.axi.read_dword(csr.offset(name))

    async def rd_at(self, name: str) -> tuple[int, int]:
        """Read a word; also return the cycle whose end (the next rising edge) sampled it."""
        addr = csr.offset(name)
        val = await self.axi.read_dword(addr)
        cyc = [c for c, a in self.hs["ar"] if a == addr][-1]
        return val, cyc

    async def wr(self, name: str, value: int):
        resp = await self.axi.write(csr.offset(name), (value & M32).to_bytes(WORD, "little"))
        assert resp.resp == AxiResp.OKAY

    async def rd64(self, name: str) -> int:
        lo = await self.rd(f"{name}_LO")
        hi = await self.rd(f"{name}_HI")
        return csr.combine64(lo, hi)

    async def all_counters(self) -> dict[str, int]:
        return {n: await self.rd64(n) for n in csr.COUNTERS}

    async def drive(self, **values) -> int:
        """Set controller inputs at a falling edge; return the cycle they start in (the
        next rising edge samples them)."""
        await FallingEdge(self.dut.clk)
        for k, v in values.items():
            getattr(self.dut, k).value = v
        return self.cycle + 1               # the monitor labels this cycle 2 ns from now


def _check_map_assumptions():
    assert set(csr.COUNTERS) == {"CYCLES", *STROBES}, "csr.toml counters changed: update STROBES"
    assert set(PULSES) == set(csr.REGS["CTRL"].fields)
    assert set(STATUS_INPUTS) == set(csr.REGS["STATUS"].fields)


# ---------------------------------------------------------------------------
# cocotb tests
# ---------------------------------------------------------------------------

@cocotb.test(timeout_time=200, timeout_unit="us")
async def identity(dut):
    """ID, ISA_VERSION and CONFIG_HASH read the Python values; writes do not change them."""
    _check_map_assumptions()
    tb = await Bench(dut).start()
    want = {"ID": csr.ID_MAGIC, "ISA_VERSION": VERSION_WORD, "CONFIG_HASH": tb.config_hash}
    for name, v in want.items():
        assert await tb.rd(name) == v, f"{name}: 0x{await tb.rd(name):08X} != 0x{v:08X}"
        await tb.wr(name, ~v)
        assert await tb.rd(name) == v


@cocotb.test(timeout_time=200, timeout_unit="us")
async def ctrl_pulses(dut):
    """Each CTRL bit gives exactly one one-cycle pulse, the cycle after the write lands;
    bits combine; 0, unused bits and a strobe-masked byte give none; CTRL reads 0."""
    tb = await Bench(dut).start()
    ctrl = csr.offset("CTRL")
    cases = [[k] for k in PULSES] + [list(PULSES)]
    for names in cases:
        tb.clear_records()
        value = 0
        for k in names:
            value |= csr.mask("CTRL", k)
        await tb.wr("CTRL", value)
        await tb.cycles(4)
        fire = max(tb.hs["aw"][-1][0], tb.hs["w"][-1][0])
        for k in PULSES:
            want = [fire + 1] if k in names else []
            assert tb.pulses[k] == want, f"CTRL=0x{value:X}: {k} high in cycles {tb.pulses[k]}, want {want}"
        assert await tb.rd("CTRL") == 0
    used = 0
    for k in PULSES:
        used |= csr.mask("CTRL", k)
    tb.clear_records()
    await tb.wr("CTRL", 0)
    await tb.wr("CTRL", ~used & M32)
    # Every CTRL bit set, but only the strobes of bytes that hold no CTRL bit.
    used_bytes = {f.lsb // 8 for f in csr.REGS["CTRL"].fields.values()}
    for b in range(WORD):
        if b not in used_bytes:
            assert (await tb.axi.write(ctrl + b, b"\xff")).resp == AxiResp.OKAY
    await tb.cycles(4)
    assert all(not v for v in tb.pulses.values()), tb.pulses
    assert await tb.rd("CTRL") == 0


@cocotb.test(timeout_time=200, timeout_unit="us")
async def status_mirror(dut):
    """STATUS, ERR_CAUSE, ERR_PC and PC read the controller's inputs."""
    tb = await Bench(dut).start()
    rng = random.Random(1)
    causes = list(csr.ErrCause)
    for i in range(3 * len(causes)):
        bits = {k: rng.randrange(2) for k in STATUS_INPUTS}
        cause = causes[i % len(causes)]
        err_pc, pc = rng.getrandbits(32), rng.getrandbits(32)
        await tb.drive(err_cause_i=int(cause), err_pc_i=err_pc, pc_i=pc,
                       **{STATUS_INPUTS[k]: v for k, v in bits.items()})
        status = 0
        for k, v in bits.items():
            status = csr.set_field("STATUS", k, status, v)
        assert await tb.rd("STATUS") == status, csr.describe_status(await tb.rd("STATUS"))
        assert await tb.rd("ERR_CAUSE") == cause
        assert await tb.rd("ERR_PC") == err_pc
        assert await tb.rd("PC") == pc


@cocotb.test(timeout_time=500, timeout_unit="us")
async def prog_base_and_args(dut):
    """PROG_BASE and ARGn: reset 0, read back, drive their outputs, WSTRB byte-wise,
    no aliasing, and SOFT_RESET keeps them."""
    tb = await Bench(dut).start()
    rng = random.Random(2)
    model = {n: 0 for n in RW_WORDS}

    def check_outputs():
        assert int(dut.prog_base_o.value) == model["PROG_BASE"]
        args = int(dut.args_o.value)
        for i in range(csr.REGS["ARG"].count):
            assert (args >> 32 * i) & M32 == model[f"ARG{i}"], f"args_o ARG{i}"

    for n in RW_WORDS:
        assert await tb.rd(n) == 0, f"{n} reset value"
    check_outputs()
    for n in RW_WORDS:
        model[n] = rng.getrandbits(32)
        await tb.wr(n, model[n])
    for n in RW_WORDS:
        assert await tb.rd(n) == model[n], n
    check_outputs()
    # Partial writes: single bytes, halves, and a random strobe pattern per register.
    for n in RW_WORDS:
        base = csr.offset(n)
        for b in range(WORD):
            v = rng.getrandbits(8)
            await tb.axi.write(base + b, bytes([v]))
            model[n] = _merge(model[n], v << 8 * b, 1 << b)
        for h in range(0, WORD, 2):
            v = rng.getrandbits(16)
            await tb.axi.write(base + h, v.to_bytes(2, "little"))
            model[n] = _merge(model[n], v << 8 * h, 3 << h)
        assert await tb.rd(n) == model[n], n
    check_outputs()
    for n in RW_WORDS:
        assert await tb.rd(n) == model[n], n
    await tb.wr("CTRL", csr.mask("CTRL", "SOFT_RESET"))
    await tb.cycles(3)
    for n in RW_WORDS:
        assert await tb.rd(n) == model[n], f"{n} changed by SOFT_RESET"
    check_outputs()


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def counter_strobes(dut):
    """Every counter counts its own strobe and nothing else; BUSY_CYCLES counts only
    busy cycles; CYCLES counts clock edges; SOFT_RESET keeps the counters."""
    tb = await Bench(dut).start()
    rng = random.Random(3)
    # Counters start at their reset value (CYCLES has run since reset).
    init = tb.counter_init
    for n in STROBES:
        assert await tb.rd64(n) == init, n
    # Each strobe alone.
    for name, sig in STROBES.items():
        before = await tb.all_counters()
        n_on = 0
        for _ in range(40):
            v = rng.randrange(2)
            n_on += v
            await tb.drive(**{sig: v})
        await tb.drive(**{sig: 0})
        after = await tb.all_counters()
        for n in STROBES:
            want = n_on if n == name else 0
            assert (after[n] - before[n]) & M64 == want, f"{sig} x{n_on}: {n} moved by {after[n] - before[n]}"
        assert after["CYCLES"] - before["CYCLES"] > 40
    # All strobes at once, independent random patterns.
    before = await tb.all_counters()
    n_on = dict.fromkeys(STROBES, 0)
    for _ in range(60):
        vals = {n: rng.randrange(2) for n in STROBES}
        for n, v in vals.items():
            n_on[n] += v
        await tb.drive(**{STROBES[n]: v for n, v in vals.items()})
    await tb.drive(**dict.fromkeys(STROBES.values(), 0))
    await tb.wr("CTRL", csr.mask("CTRL", "SOFT_RESET"))
    after = await tb.all_counters()
    for n in STROBES:
        assert (after[n] - before[n]) & M64 == n_on[n], n
    # CYCLES: the difference of two reads is the clock edges between their samples.
    v1, c1 = await tb.rd_at("CYCLES_LO")
    await tb.cycles(rng.randrange(5, 30))
    v2, c2 = await tb.rd_at("CYCLES_LO")
    assert (v2 - v1) & M32 == c2 - c1
    # ... and counts from its reset value since reset.
    assert v1 == (init + c1 - tb.reset_cycle) & M32


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def counter_hi_latch(dut):
    """Reading _LO latches _HI; _HI alone returns the latch. With COUNTER_INIT just below
    a carry, the counter carries between the LO and the HI read."""
    tb = await Bench(dut).start()
    init = tb.counter_init
    near_carry = (init & M32) > M32 - 1000
    # HI before any LO read: the shadow's reset value.
    for n in csr.COUNTERS:
        assert await tb.rd(f"{n}_HI") == init >> 32, n
    # CYCLES moves during every pair; the pair equals the count at the LO sample. When the
    # carry is under 30 cycles away, wait past it before reading HI.
    carry_at = tb.reset_cycle + (1 << 32) - (init & M32)     # first cycle after the carry
    straddled = False
    for _ in range(80):
        lo_v, c = await tb.rd_at("CYCLES_LO")
        if 0 < carry_at - c <= 30:
            await tb.cycles(32)
            straddled = True
        hi_v = await tb.rd("CYCLES_HI")
        assert csr.combine64(lo_v, hi_v) == (init + c - tb.reset_cycle) & M64, (hex(lo_v), hex(hi_v))
        if c > carry_at + 20 or (not near_carry and c > tb.reset_cycle + 100):
            break
    assert straddled == near_carry
    # LO, then strobe increments (across the carry when near one), then HI: HI is the
    # high word at the LO read.
    n_inc = (1 << 32) - (init & M32) + 20 if near_carry else 100
    lo = {n: await tb.rd(f"{n}_LO") for n in STROBES}
    for _ in range(n_inc):
        await tb.drive(**dict.fromkeys(STROBES.values(), 1))
    await tb.drive(**dict.fromkeys(STROBES.values(), 0))
    for n in STROBES:
        assert lo[n] == init & M32
        assert await tb.rd(f"{n}_HI") == init >> 32, f"{n}_HI is not the latch of the LO read"
        assert await tb.rd64(n) == (init + n_inc) & M64, n
    if near_carry:
        assert (init + n_inc) >> 32 != init >> 32
    # HI read again returns the same latch although the counter moves on.
    ca = await tb.rd64("CYCLES")
    await tb.cycles(20)
    assert await tb.rd("CYCLES_HI") == await tb.rd("CYCLES_HI") == ca >> 32


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def clear_counters(dut):
    """CLEAR_COUNTERS zeroes every counter and shadow on the edge that raises the pulse;
    the pulse cycle's events count."""
    tb = await Bench(dut).start()
    for _ in range(30):
        await tb.drive(**dict.fromkeys(STROBES.values(), 1))
    await tb.rd("INSTRET_LO")      # latch a non-zero shadow that the clear must zero
    # Strobes stay on through the clear, so every counter tracks CYCLES from the pulse.
    tb.clear_records()
    await tb.wr("CTRL", csr.mask("CTRL", "CLEAR_COUNTERS"))
    off = await tb.drive(**dict.fromkeys(STROBES.values(), 0))
    (pulse,) = tb.pulses["CLEAR_COUNTERS"]
    for n in csr.COUNTERS:
        assert await tb.rd(f"{n}_HI") == 0, f"{n}_HI shadow not cleared"
    # Zeroed on the edge that raised the pulse; strobes sampled on the edges after it,
    # up to the one before `off`, count.
    for n in STROBES:
        assert await tb.rd64(n) == off - pulse, n
    v, c = await tb.rd_at("CYCLES_LO")
    assert v == c - pulse
    assert await tb.rd("CYCLES_HI") == 0


@cocotb.test(timeout_time=500, timeout_unit="us")
async def windows_and_err_addr(dut):
    """WIN_BASEn / WIN_LIMITn: read back and drive win_base_o / win_limit_o, WSTRB byte-wise;
    WIN_PERMn: 0 after reset, keeps its three bits (in byte 0); all kept by SOFT_RESET.
    ERR_ADDR mirrors err_addr_i."""
    tb = await Bench(dut).start()
    rng = random.Random(5)
    nwin = csr.REGS["WIN_BASE"].count
    assert int(dut.win_perm_o.value) == 0
    model = {}
    for i in range(nwin):
        assert await tb.rd(f"WIN_PERM{i}") == 0, "a window is enabled after reset"
        for r in ("WIN_BASE", "WIN_LIMIT"):
            model[f"{r}{i}"] = rng.getrandbits(32)
            await tb.wr(f"{r}{i}", model[f"{r}{i}"])
            v = rng.getrandbits(8)
            await tb.axi.write(csr.offset(f"{r}{i}") + 2, bytes([v]))
            model[f"{r}{i}"] = _merge(model[f"{r}{i}"], v << 16, 1 << 2)
        model[f"WIN_PERM{i}"] = i + 4
        await tb.wr(f"WIN_PERM{i}", M32 & ~7 | (i + 4))                 # bits above 2 dropped
        await tb.axi.write(csr.offset(f"WIN_PERM{i}") + 1, bytes([0xFF]))  # byte 1 holds none

    async def check():
        for n, v in model.items():
            assert await tb.rd(n) == v, n
        for r, sig, w in (("WIN_BASE", dut.win_base_o, 32), ("WIN_LIMIT", dut.win_limit_o, 32),
                          ("WIN_PERM", dut.win_perm_o, 3)):
            for i in range(nwin):
                assert (int(sig.value) >> w * i) & ((1 << w) - 1) == model[f"{r}{i}"], f"{r}{i} output"

    await check()
    await tb.wr("CTRL", csr.mask("CTRL", "SOFT_RESET"))
    await tb.cycles(3)
    await check()
    for v in (0, 0x1234_5678, M32):
        await tb.drive(err_addr_i=v)
        assert await tb.rd("ERR_ADDR") == v


@cocotb.test(timeout_time=500, timeout_unit="us")
async def unmapped_offsets(dut):
    """An offset with no register reads 0, takes writes without effect, answers OKAY;
    writes to read-only registers change nothing."""
    tb = await Bench(dut).start()
    rng = random.Random(4)
    space = range(0, 1 << csr.ADDR_WIDTH, WORD)
    holes = [a for a in space if a not in csr.ADDR_MAP]
    near = [a for a in holes if a <= max(csr.ADDR_MAP) + 0x40]
    far = rng.sample([a for a in holes if a not in near], 24) + [holes[-1]]
    probe = near + far
    for a in probe:
        resp = await tb.axi.write(a, M32.to_bytes(WORD, "little"))
        assert resp.resp == AxiResp.OKAY, hex(a)
    # Every input non-zero while the holes are read, so a read mux that leaks shows.
    await tb.drive(**dict.fromkeys(STROBES.values(), 1), done_i=1, error_i=1,
                   err_cause_i=max(csr.ErrCause), err_pc_i=rng.getrandbits(32) | 1,
                   pc_i=rng.getrandbits(32) | 1)
    for a in probe:
        r = await tb.axi.read(a, WORD)
        assert r.resp == AxiResp.OKAY and int.from_bytes(r.data, "little") == 0, hex(a)
    await tb.drive(**dict.fromkeys(STROBES.values(), 0), done_i=0, error_i=0, err_cause_i=0,
                   err_pc_i=0, pc_i=0)
    for n in ("STATUS", "ERR_CAUSE", "ERR_PC", "PC"):
        await tb.wr(n, M32)
    await tb.cycles(3)
    assert all(not v for v in tb.pulses.values()), tb.pulses
    for n in RW_WORDS + ["STATUS", "ERR_CAUSE", "ERR_PC", "PC", "CTRL"]:
        assert await tb.rd(n) == 0, n
    assert int(dut.prog_base_o.value) == 0 and int(dut.args_o.value) == 0


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def cocotbext_backpressure(dut):
    """cocotbext-axi with random pauses on all five channels (AW/W order random, B/R
    stalled); the monitor checks B/R hold while stalled."""
    tb = await Bench(dut).start()
    rng = random.Random(5)

    def pauses(p):
        while True:
            yield rng.random() < p

    m = tb.axi
    m.write_if.aw_channel.set_pause_generator(pauses(0.5))
    m.write_if.w_channel.set_pause_generator(pauses(0.5))
    m.write_if.b_channel.set_pause_generator(pauses(0.6))
    m.read_if.ar_channel.set_pause_generator(pauses(0.3))
    m.read_if.r_channel.set_pause_generator(pauses(0.6))
    model = {n: 0 for n in RW_WORDS}
    const = {"ID": csr.ID_MAGIC, "ISA_VERSION": VERSION_WORD, "CONFIG_HASH": tb.config_hash}
    events = []
    for _ in range(60):
        n = rng.choice(RW_WORDS)
        b0 = rng.randrange(WORD)
        ln = rng.randint(1, WORD - b0)
        data = rng.getrandbits(8 * ln)
        model[n] = _merge(model[n], data << 8 * b0, ((1 << ln) - 1) << b0)
        events.append(m.init_write(csr.offset(n) + b0, data.to_bytes(ln, "little")))
        k = rng.choice(list(const))
        events.append((k, m.init_read(csr.offset(k), WORD)))
    for e in events:
        if isinstance(e, tuple):
            k, ev = e
            await ev.wait()
            assert int.from_bytes(ev.data.data, "little") == const[k], k
        else:
            await e.wait()
            assert e.data.resp == AxiResp.OKAY
    for n in RW_WORDS:
        assert await tb.rd(n) == model[n], n
    aw = [c for c, _ in tb.hs["aw"]]
    w = [c for c, _ in tb.hs["w"]]
    order = {("aw<w" if a < b else "w<aw" if b < a else "same") for a, b in zip(aw, w)}
    assert {"aw<w", "w<aw"} <= order, f"pauses did not mix AW/W order: {order}"
    assert len(tb.hs["b"]) == len(aw) == len(w)


class RawMaster:
    """Drives the s_axil_* pins itself so a test fixes, cycle by cycle, when each VALID
    and READY rises. Decisions are made at the falling edge and hold through the next
    rising edge; a VALID, once raised, stays until its handshake (AXI rule)."""

    def __init__(self, dut, rng: random.Random):
        self.dut, self.rng = dut, rng
        self.aw, self.w, self.ar = deque(), deque(), deque()
        self.gate = {ch: (lambda: True) for ch in ("aw", "w", "ar", "b", "r")}
        self.hs = {ch: [] for ch in ("aw", "w", "ar", "b", "r")}
        self.cycle = 0

    def write(self, name: str, data: int, strb: int | None = None):
        self.aw.append(csr.offset(name))
        self.w.append((data & M32, _strb_all() if strb is None else strb))

    def read(self, name: str):
        self.ar.append(csr.offset(name))

    async def run(self, max_cycles: int = 5000):
        dut, rng = self.dut, self.rng
        n_w, n_r = len(self.aw), len(self.ar)
        cur = {"aw": None, "w": None, "ar": None}
        queues = {"aw": self.aw, "w": self.w, "ar": self.ar}
        for _ in range(max_cycles):
            if len(self.hs["b"]) == n_w and len(self.hs["r"]) == n_r:
                break
            await FallingEdge(dut.clk)
            self.cycle += 1
            for ch in cur:
                if cur[ch] is None and queues[ch] and self.gate[ch]():
                    cur[ch] = queues[ch].popleft()
            # Payload is noise whenever VALID is low, so sampling it then would show.
            dut.s_axil_awvalid.value = cur["aw"] is not None
            dut.s_axil_awaddr.value = cur["aw"] if cur["aw"] is not None else rng.getrandbits(csr.ADDR_WIDTH)
            dut.s_axil_awprot.value = rng.getrandbits(3)
            dut.s_axil_wvalid.value = cur["w"] is not None
            wd, ws = cur["w"] if cur["w"] is not None else (rng.getrandbits(32), rng.getrandbits(WORD))
            dut.s_axil_wdata.value, dut.s_axil_wstrb.value = wd, ws
            dut.s_axil_arvalid.value = cur["ar"] is not None
            dut.s_axil_araddr.value = cur["ar"] if cur["ar"] is not None else rng.getrandbits(csr.ADDR_WIDTH)
            dut.s_axil_arprot.value = rng.getrandbits(3)
            bready, rready = self.gate["b"](), self.gate["r"]()
            dut.s_axil_bready.value, dut.s_axil_rready.value = bready, rready
            await Timer(1, unit="ns")
            for ch in cur:
                if cur[ch] is not None and getattr(dut, f"s_axil_{ch}ready").value:
                    self.hs[ch].append((self.cycle, cur[ch]))
                    cur[ch] = None
            if bready and dut.s_axil_bvalid.value:
                self.hs["b"].append((self.cycle, int(dut.s_axil_bresp.value)))
            if rready and dut.s_axil_rvalid.value:
                self.hs["r"].append((self.cycle, int(dut.s_axil_rdata.value)))
        else:
            raise AssertionError(f"AXI-Lite traffic did not finish in {max_cycles} cycles: "
                                 f"{len(self.hs['b'])}/{n_w} B, {len(self.hs['r'])}/{n_r} R")
        await FallingEdge(dut.clk)
        for ch in ("awvalid", "wvalid", "arvalid", "bready", "rready"):
            getattr(dut, f"s_axil_{ch}").value = 0
        return self

    def read_data(self) -> list[int]:
        return [d for _, d in self.hs["r"]]


def _delay_gate(n: int):
    """Closed for n calls, then open."""
    left = [n]

    def gate():
        left[0] -= 1
        return left[0] < 0
    return gate


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def raw_aw_w_order(dut):
    """W long before AW, AW long before W, both together: each write lands once, with
    one B; a B held back keeps BVALID up and parks the next write."""
    tb = await Bench(dut).start(raw=True)
    rng = random.Random(6)
    for aw_delay, w_delay in ((6, 0), (0, 6), (0, 0), (3, 3)):
        m = RawMaster(dut, rng)
        v = rng.getrandbits(32)
        m.write("ARG1", v)
        m.gate["aw"], m.gate["w"] = _delay_gate(aw_delay), _delay_gate(w_delay)
        await m.run()
        (caw, _), (cw, _) = m.hs["aw"][0], m.hs["w"][0]
        assert (caw - cw) == aw_delay - w_delay, (caw, cw)   # the early half is taken at once
        assert m.hs["b"] == [(max(caw, cw) + 1, AxiResp.OKAY)]
        assert int(dut.args_o.value) >> 32 & M32 == v
    # B held 10 cycles with a second write behind it: BVALID holds, write 2 parks.
    m = RawMaster(dut, rng)
    m.write("ARG2", 0x1111_1111)
    m.write("ARG2", 0x2222_2222)
    m.gate["b"] = _delay_gate(10)
    await m.run()
    (cb1, _), (cb2, _) = m.hs["b"]
    assert cb1 == 11 and cb2 == cb1 + 1, m.hs
    assert [c for c, _ in m.hs["aw"]] == [1, 2], "second AW parked in the holding register"
    m = RawMaster(dut, rng)
    m.read("ARG2")
    await m.run()
    assert m.read_data() == [0x2222_2222]
    # CTRL: every bit set in WDATA but the strobe of the bytes holding CTRL bits low.
    ctrl_bytes = 0
    for f in csr.REGS["CTRL"].fields.values():
        ctrl_bytes |= 1 << f.lsb // 8
    tb.clear_records()
    m = RawMaster(dut, rng)
    m.write("CTRL", M32, _strb_all() & ~ctrl_bytes)
    await m.run()
    await tb.cycles(3)
    assert all(not v for v in tb.pulses.values()), tb.pulses
    m = RawMaster(dut, rng)
    m.write("CTRL", M32, ctrl_bytes)
    await m.run()
    await tb.cycles(3)
    assert all(len(v) == 1 for v in tb.pulses.values()), tb.pulses


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def raw_throughput(dut):
    """With the master always ready: one write and one read complete every cycle."""
    tb = await Bench(dut).start(raw=True)
    rng = random.Random(7)
    n = 32
    m = RawMaster(dut, rng)
    const = {"ID": csr.ID_MAGIC, "ISA_VERSION": VERSION_WORD, "CONFIG_HASH": tb.config_hash}
    names = list(const)
    want_r = []
    model = {}
    for i in range(n):
        w = RW_WORDS[i % len(RW_WORDS)]
        model[w] = rng.getrandbits(32)
        m.write(w, model[w])
        k = names[i % len(names)]
        m.read(k)
        want_r.append(const[k])
    await m.run()
    for ch in ("aw", "w", "ar", "b", "r"):
        cs = [c for c, _ in m.hs[ch]]
        assert cs == list(range(cs[0], cs[0] + n)), f"{ch} handshakes not back to back: {cs}"
    assert m.hs["b"][0][0] == m.hs["aw"][0][0] + 1 and m.hs["r"][0][0] == m.hs["ar"][0][0] + 1
    assert m.read_data() == want_r
    m = RawMaster(dut, rng)
    for w in model:
        m.read(w)
    await m.run()
    assert m.read_data() == list(model.values())


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def raw_random_traffic(dut):
    """Random VALID gaps on AW/W/AR and random READY on B/R, reads and writes in flight
    together; every write lands (byte strobes honoured), every read is right."""
    tb = await Bench(dut).start(raw=True)
    rng = random.Random(8)
    const = {"ID": csr.ID_MAGIC, "ISA_VERSION": VERSION_WORD, "CONFIG_HASH": tb.config_hash,
             "CTRL": 0, "PC": 0}
    model = {n: 0 for n in RW_WORDS}
    m = RawMaster(dut, rng)
    for ch, p in (("aw", 0.4), ("w", 0.4), ("ar", 0.5), ("b", 0.4), ("r", 0.4)):
        m.gate[ch] = lambda p=p: rng.random() < p
    want_r = []
    for _ in range(150):
        n = rng.choice(RW_WORDS)
        d, s = rng.getrandbits(32), rng.getrandbits(WORD)
        model[n] = _merge(model[n], d, s)
        m.write(n, d, s)
        k = rng.choice(list(const))
        m.read(k)
        want_r.append(const[k])
    await m.run()
    assert m.read_data() == want_r
    assert all(r == AxiResp.OKAY for _, r in m.hs["b"])
    aw = [c for c, _ in m.hs["aw"]]
    w = [c for c, _ in m.hs["w"]]
    assert any(a < b for a, b in zip(aw, w)) and any(b < a for a, b in zip(aw, w))
    m2 = RawMaster(dut, rng)
    m2.gate["r"] = lambda: rng.random() < 0.3
    for n in RW_WORDS:
        m2.read(n)
    await m2.run()
    assert m2.read_data() == [model[n] for n in RW_WORDS]


# ---------------------------------------------------------------------------
# pytest entries
# ---------------------------------------------------------------------------

CSR_SRC = "ctrl/dnpu_csr.v"
COUNTER_TESTS = ["counter_strobes", "counter_hi_latch", "clear_counters"]


def _run(sim: str):
    # The cocotb runner hands the simulator this process's sys.path as PYTHONPATH (it
    # overrides run_block's), which holds tests/ but not tests/rtl: a bare "test_csr"
    # would load tests/test_csr.py. Our own dotted name (rtl.test_csr) is unambiguous.
    module = __name__
    from dnpu.spec import config
    h = config.load("sim").config_hash32
    srcs = rtl_sources(CSR_SRC)
    # Sized literals: both simulators take them, and a hash with bit 31 set stays unsigned.
    base = {"CONFIG_HASH": f"32'h{h:08X}"}
    env = {ENV_HASH: hex(h)}
    run_block("dnpu_csr", srcs, module, sim=sim, parameters=base, extra_env=env)
    run_block("dnpu_csr", srcs, module, sim=sim,
              parameters={**base, "COUNTER_INIT": f"64'h{CARRY_INIT:X}"},
              extra_env={**env, ENV_INIT: hex(CARRY_INIT)}, testcase=COUNTER_TESTS)


@pytest.mark.rtl
def test_csr_verilator():
    _run("verilator")


@pytest.mark.rtl
def test_csr_icarus():
    _run("icarus")


@pytest.mark.rtl
def test_csr_lint():
    """Verilator -Wall is clean on dnpu_csr.v: no warning at all."""
    lint("dnpu_csr", rtl_sources(CSR_SRC))
