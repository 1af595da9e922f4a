"""Functional emulator: the bit-exact golden model of the dnpu NPU.

It executes the same binary programs the RTL executes: 32-bit little-endian words fetched
from modelled external memory at PROG_BASE, decoded by `dnpu.spec.isa.decode`, with every
arithmetic step from `dnpu.spec.numerics` (docs/NUMERICS.md) and the execution model of
docs/EXECUTION.md (hardware loops, faults, memory).  Vector and memory instructions are
vectorised with NumPy.

    emu = Emulator(dnpu.spec.config.load("sim"))
    emu.map(0x1000, 4096)                    # a region of modelled DRAM (zero-filled)
    emu.write(0x1000, dnpu.spec.isa.assemble(src))
    res = emu.run(0x1000, args=[...], max_instructions=100_000, trace=True)
    res.status, res.cause, res.pc, emu.x[5], emu.fpsram[:4], emu.read(0x1800, 64)

A program never raises out of `run`: faults come back in the RunResult (status "fault",
cause a `dnpu.spec.csr.ErrCause`, pc the faulting instruction's address).  Misuse of the host
API (writing unmapped memory, bad arguments) raises EmuError.

`run(..., on_exec=fn)` calls fn(pc, name, args, x) for every instruction before it
executes, with its operand values by role and the x registers it reads; `emu.x_data`
marks the x registers computed from data.  `Emulator(cfg, data_path=False)` runs the same
instruction stream on operands only, without moving or computing data (the cycle model,
dnpu.perf.analytical, costs programs that way).

Modules: `machine` (state, memory, run loop, faults, trace, shared checks), `scalar`
(C_*, S_*), `vector` (V_*), `memory` (H_* and MX streams), `matrix` (M_*).
"""

from __future__ import annotations

from dnpu.emu.machine import HANDLERS, Core, EmuError, Memory, RunResult, TraceEntry
from dnpu.emu.matrix import MatrixUnit
from dnpu.emu.memory import MemoryUnit
from dnpu.emu.scalar import ScalarUnit
from dnpu.emu.vector import VectorUnit
from dnpu.spec import isa

__all__ = ["Emulator", "RunResult", "TraceEntry", "Memory", "EmuError", "HANDLERS"]


class Emulator(ScalarUnit, VectorUnit, MemoryUnit, MatrixUnit, Core):
    """The NPU as a Python object.  See the module docstring and docs/EXECUTION.md."""


def _check_handlers() -> None:
    """Every ISA instruction has a handler and every handler an instruction (import time)."""
    missing = sorted(set(isa.INSTRS) - set(HANDLERS))
    extra = sorted(set(HANDLERS) - set(isa.INSTRS))
    if missing or extra:
        raise ImportError(f"dnpu.emu is out of step with the ISA table: no handler for "
                          f"{missing or 'none'}; handlers for unknown instructions {extra or 'none'}")


_check_handlers()
