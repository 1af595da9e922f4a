"""dnpu_window (hw/rtl/ctrl/): is an access wholly inside one memory window that grants it,
in whole AXI beats (docs/EXECUTION.md "Memory windows")? Against the emulator's rule
(dnpu.emu's Core._win), on random windows and accesses biased to the edges: limits off
beat boundaries, accesses ending exactly at a limit or one beat past it, the whole 32-bit
space, ends past 2^32, each permission alone.

The file is both the pytest entry (bottom) and the cocotb test module the simulator
imports; LOG_BB reaches the cocotb side through WIN_LOG_BB, PRE through WIN_PRE. With
PRE = 1 the bench feeds the module's own first-byte half (`first`) back into `pre`, as the
core does a cycle later, and the answer must be the same.
"""

from __future__ import annotations

import os
import random

import pytest

from dnpu.spec import csr

try:
    import cocotb
    from cocotb.triggers import Timer
except ImportError:  # pytest collection without cocotb: only the entries below matter
    cocotb = None

N = csr.REGS["WIN_BASE"].count
LOG_BB = int(os.environ.get("WIN_LOG_BB", "4"))
PRE = int(os.environ.get("WIN_PRE", "0"))
M32 = (1 << 32) - 1
PERMS = [csr.mask("WIN_PERM", b) for b in "RWX"]


def model(wins, addr: int, end: int, need: int) -> bool:
    """The emulator's rule: the access's whole beats inside one window granting `need`."""
    bb = 1 << LOG_BB
    lo, last = addr & -bb, (end - 1) | (bb - 1)
    return any(p & need == need and b <= lo and last <= lim for b, lim, p in wins)


def model_first(wins, addr: int, need: int) -> int:
    """Per window (bit i): it grants `need` and begins at or before the first beat."""
    lo = addr & -(1 << LOG_BB)
    return sum(1 << i for i, (b, _, p) in enumerate(wins) if p & need == need and b <= lo)


def random_case(r: random.Random):
    bb = 1 << LOG_BB
    wins = []
    for _ in range(N):
        b = r.choice([0, r.randrange(0, 1 << 20), r.randrange(0, 1 << 32)]) & ~r.choice([0, bb - 1])
        size = r.choice([bb, 2 * bb, r.randrange(1, 1 << 12), r.randrange(1, 1 << 24)])
        lim = min(M32, b + size - 1) if r.random() < 0.95 else M32
        wins.append((b, lim, r.randrange(8) if r.random() < 0.3 else r.choice(PERMS + [7])))
    b, lim, _ = r.choice(wins)
    kind = r.random()
    if kind < 0.6:            # near a window's ends
        addr = max(0, min(M32, r.choice([b, lim - bb + 1, lim + 1, b - 1]) + r.randrange(-2 * bb, 2 * bb)))
        n = r.choice([1, 4, bb, 2 * bb, r.randrange(1, 256)])
    else:
        addr, n = r.randrange(0, 1 << 32), r.randrange(1, 1 << 16)
    end = addr + n
    if r.random() < 0.05:
        end = (1 << 32) + r.randrange(0, 1 << 20)     # past the top: never inside
    return wins, addr, end, r.choice(PERMS)


if cocotb is not None:

    @cocotb.test()
    async def random_accesses(dut):
        r = random.Random(16)
        hits = 0
        for k in range(4000):
            wins, addr, end, need = random_case(r)
            dut.base.value = sum(b << (32 * i) for i, (b, _, _) in enumerate(wins))
            dut.limit.value = sum(lim << (32 * i) for i, (_, lim, _) in enumerate(wins))
            dut.perm.value = sum(p << (3 * i) for i, (_, _, p) in enumerate(wins))
            dut.addr.value = addr
            dut.last_x.value = end - 1
            dut.need.value = need
            dut.pre.value = 0
            await Timer(1, unit="ns")
            first = int(dut.first.value)
            assert first == model_first(wins, addr, need), (k, bin(first))
            if PRE:                             # ok comes from pre: none given, none granted
                assert int(dut.ok.value) == 0, (k, "ok without pre")
                dut.pre.value = first
                await Timer(1, unit="ns")
            want = model(wins, addr, end, need)
            assert int(dut.ok.value) == want, (k, [tuple(map(hex, w)) for w in wins], hex(addr), hex(end), need)
            hits += want
        assert 400 < hits < 3600, hits          # both answers well covered


def _runner():
    try:
        from . import cocotb_run
    except ImportError:
        import cocotb_run
    return cocotb_run


@pytest.mark.rtl
@pytest.mark.parametrize("log_bb,pre", [(3, 0), (4, 0), (6, 0), (4, 1)])   # 64-, 128-, 512-bit beats
def test_window_verilator(log_bb, pre):
    cr = _runner()
    cr.run_block("dnpu_window", cr.rtl_sources("ctrl/dnpu_window.v"), "test_window", sim="verilator",
                 parameters={"N": N, "LOG_BB": log_bb, "PRE": pre},
                 extra_env={"WIN_LOG_BB": str(log_bb), "WIN_PRE": str(pre)})


def test_model_is_the_emulators_rule():
    """The bench's model and dnpu.emu agree (sim: 16-byte beats)."""
    from dnpu.emu import Emulator
    from dnpu.emu.machine import _Fault

    if LOG_BB != 4:
        pytest.skip("the sim profile's beat")
    e = Emulator("sim")
    r = random.Random(3)
    for _ in range(2000):
        wins, addr, end, need = random_case(r)
        if end > 1 << 32:
            continue
        for i, w in enumerate(wins):
            e.set_window(i, *w)
        try:
            e._win(addr, end - addr, need)
            got = True
        except _Fault:
            got = False
        assert got == model(wins, addr, end, need)
