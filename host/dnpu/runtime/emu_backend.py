"""Backend `emu`: the functional emulator (dnpu.emu) behind the device interface.

The budget is in retired instructions (the emulator has no clock). Counters: INSTRET,
DATA_RD_BYTES / DATA_WR_BYTES (bytes of H_* transfers) and FETCH_BYTES (4 per fetched
instruction), since the last run started (clear_counters) or the last hard reset.
"""

from __future__ import annotations

import time

from dnpu.spec import csr
from dnpu.spec.config import Config
from dnpu.emu import Emulator
from dnpu.runtime.device import Device, Retire, RunInfo

__all__ = ["EmuDevice", "COUNTERS"]

COUNTERS = ("INSTRET", "DATA_RD_BYTES", "DATA_WR_BYTES", "FETCH_BYTES")
_NARGS = csr.REGS["ARG"].count
_START = csr.mask("CTRL", "START")
_SOFT_RESET = csr.mask("CTRL", "SOFT_RESET")
_CLEAR = csr.mask("CTRL", "CLEAR_COUNTERS")
_WIN_REGS = ("WIN_BASE", "WIN_LIMIT", "WIN_PERM")
_NWIN = csr.REGS["WIN_BASE"].count


class EmuDevice(Device):
    backend = "emu"
    default_budget = 10_000_000
    budget_unit = "instructions"

    def __init__(self, config: Config, **kw) -> None:
        super().__init__(config, **kw)
        self.emu = Emulator(config)
        self._close_windows()
        self._counts = dict.fromkeys(COUNTERS, 0)

    def _close_windows(self) -> None:
        """The RTL's power-on state: no window grants anything."""
        for i in range(_NWIN):
            self.emu.set_window(i, 0, 0, 0)

    # ---- registers -------------------------------------------------------------------------
    def read_csr(self, name: str) -> int:
        self._check_open()
        key = name.upper()
        if key in ("INSTRET", "INSTRET_LO"):
            return self._counts["INSTRET"] & 0xFFFFFFFF
        if key == "INSTRET_HI":
            return self._counts["INSTRET"] >> 32
        return int(self.emu.read_csr(key))

    def write_csr(self, name: str, value: int) -> None:
        self._check_open()
        key, value = name.upper(), int(value) & 0xFFFFFFFF
        if key == "PROG_BASE":
            self.emu.prog_base = value
        elif key.startswith("ARG") and key[3:].isdigit() and int(key[3:]) < _NARGS:
            self.emu.args[int(key[3:])] = value
        elif any(key.startswith(r) and key[len(r):].isdigit() and int(key[len(r):]) < _NWIN for r in _WIN_REGS):
            r = next(r for r in _WIN_REGS if key.startswith(r))
            self.emu.set_window(int(key[len(r):]), **{{"WIN_BASE": "base", "WIN_LIMIT": "limit",
                                                       "WIN_PERM": "perm"}[r]: value})
        elif key == "CTRL":
            if value & _START:
                raise ValueError("emu: START through write_csr has no budget; use Device.run()")
            if value & _SOFT_RESET:
                self.emu.soft_reset()
            if value & _CLEAR:
                self._counts = dict.fromkeys(COUNTERS, 0)
        else:
            reg = csr.REGS.get(key)
            access = reg.access if reg else "unknown"
            csr.offset(key)      # KeyError for a name that is no CSR
            raise ValueError(f"emu: CSR {key} is {access}: not writable")

    def counters(self) -> dict[str, int]:
        self._check_open()
        return dict(self._counts)

    def reset(self, hard: bool = False) -> None:
        self._check_open()
        self.emu.soft_reset()
        if hard:
            self._counts = dict.fromkeys(COUNTERS, 0)
            self._close_windows()

    # ---- memory ------------------------------------------------------------------------------
    def _map(self, addr: int, nbytes: int) -> None:
        self.emu.map(addr, nbytes)

    def _write(self, addr: int, data: bytes) -> None:
        self._check_open()
        self.emu.write(addr, data)

    def _read(self, addr: int, n: int) -> bytes:
        self._check_open()
        return self.emu.read(addr, n)

    # ---- running -----------------------------------------------------------------------------
    def _run(self, prog: int, args: list[int], budget: int, opts: dict) -> RunInfo:
        if opts.get("wave"):
            raise ValueError("waveforms come from the RTL: open the 'verilator' backend to record one "
                             "(the emulator has no signals)")
        if opts.get("clear_counters", True):
            self._counts = dict.fromkeys(COUNTERS, 0)
        cap = int(opts.get("trace") or 0)
        t0 = time.perf_counter()
        res = self.emu.run(prog, args=args, max_instructions=budget, trace=bool(cap))
        wall = time.perf_counter() - t0
        trace, dropped = (self._trace(res.trace, cap), max(0, len(res.trace) - cap)) if cap else (None, 0)
        c = self._counts
        c["INSTRET"] += res.instret
        c["DATA_RD_BYTES"] += res.bytes_read
        c["DATA_WR_BYTES"] += res.bytes_written
        c["FETCH_BYTES"] += res.fetch_bytes
        detail = res.message if res.status in ("fault", "internal") else ""
        return RunInfo(backend=self.backend, outcome=res.status, prog=prog, args=list(args), budget=budget,
                       budget_unit=self.budget_unit, cycles=None, instret=res.instret, wall_s=wall,
                       counters=dict(c), detail=detail, trace=trace, trace_dropped=dropped)

    @staticmethod
    def _trace(entries, cap: int) -> list[Retire]:
        """The emulator's TraceEntry list as Retire tuples (its register writes: "x5", "f1")."""
        out = []
        for e in entries[:cap]:
            x = f = None
            for k, v in e.writes.items():
                if k[0] == "x":
                    x = (int(k[1:]), int(v))
                elif k[0] == "f":
                    f = (int(k[1:]), int(v))
            out.append(Retire(e.pc, e.word, x, f))
        return out

    def _bytes_moved(self, counters: dict) -> tuple[int | None, int | None, str]:
        rd = counters.get("DATA_RD_BYTES", 0) + counters.get("FETCH_BYTES", 0)
        return rd, counters.get("DATA_WR_BYTES", 0), \
            f"data {counters.get('DATA_RD_BYTES', 0)} + instruction fetch {counters.get('FETCH_BYTES', 0)} read"
