"""A run on a device whose only view of the NPU is its registers (a board over PYNQ's MMIO,
a bare board over the serial link): start through CTRL, poll STATUS against a budget in
seconds, then read the counters. The backends that have it share this one loop."""

from __future__ import annotations

import math
import time

from dnpu.spec import csr
from dnpu.runtime.device import RunInfo

__all__ = ["MAX_POLL_INTERVAL", "check_poll_interval", "run_polled"]

MAX_POLL_INTERVAL = 1.0        # s between STATUS polls at most
_START = csr.mask("CTRL", "START")
_CLEAR = csr.mask("CTRL", "CLEAR_COUNTERS")
_BUSY = csr.mask("STATUS", "BUSY")
_DONE = csr.mask("STATUS", "DONE")
_ERROR = csr.mask("STATUS", "ERROR")


def check_poll_interval(value) -> float:
    """value as seconds between STATUS polls; ValueError unless a number in [0, MAX_POLL_INTERVAL]."""
    poll = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    if not (math.isfinite(poll) and 0 <= poll <= MAX_POLL_INTERVAL):
        raise ValueError(f"poll_interval = {value!r}: must be a number of seconds in "
                         f"[0, {MAX_POLL_INTERVAL:g}] (the STATUS polls of a run)")
    return poll


def run_polled(dev, prog: int, args: list[int], budget: float, opts: dict, *, no_trace: str,
               via: str = "") -> RunInfo:
    """Run the program at prog on dev (a Device with read_csr, write_csr, counters and
    poll_interval) for at most budget seconds. no_trace: why a retire trace is not offered;
    via: how the registers are reached, for a budget stop's message."""
    if opts.get("wave"):
        raise ValueError("waveforms come from the RTL simulation: open the 'verilator' backend to record one")
    if opts.get("trace"):
        raise ValueError(f"{no_trace}: trace runs on the 'verilator' or 'emu' backend")
    dev.write_csr("PROG_BASE", prog)
    for k, a in enumerate(args):
        dev.write_csr(f"ARG{k}", a)
    clear = opts.get("clear_counters", True)
    t0 = time.perf_counter()
    deadline = t0 + budget
    dev.write_csr("CTRL", _START | (_CLEAR if clear else 0))
    polls, status = 0, 0
    while True:
        status = dev.read_csr("STATUS")
        polls += 1
        if not status & _BUSY and status & (_DONE | _ERROR):
            # The previous run's DONE/ERROR until START reaches the core: with the counters
            # cleared by the same write, a run that has begun has BUSY_CYCLES > 0.
            if not clear or dev.read_csr("BUSY_CYCLES_LO") or dev.read_csr("BUSY_CYCLES_HI"):
                break
        if time.perf_counter() >= deadline:
            break
        if dev.poll_interval:
            time.sleep(dev.poll_interval)
    wall = time.perf_counter() - t0
    if status & _BUSY or not status & (_DONE | _ERROR):
        outcome = "budget"
    else:
        outcome = "halted" if status & _DONE else "fault"
    counters = dev.counters()
    detail = ""
    if outcome == "budget":
        detail = (f"polled STATUS {polls} times over {wall:.3f} s{via}; last STATUS 0x{status:X}; the NPU is "
                  f"still busy at PC 0x{dev.read_csr('PC'):08X}")
    return RunInfo(backend=dev.backend, outcome=outcome, prog=prog, args=list(args), budget=budget,
                   budget_unit=dev.budget_unit, cycles=counters["BUSY_CYCLES"], instret=counters["INSTRET"],
                   wall_s=wall, counters=counters, detail=detail)
