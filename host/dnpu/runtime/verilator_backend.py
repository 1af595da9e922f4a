"""Backend `verilator`: dnpu_top's RTL in the C++ co-simulation harness (cosim/).

The model is built on first use and cached (dnpu.runtime.cosim). Python calls the harness
once per transaction: a register access over AXI4-Lite, a block of memory, a whole run
(clocked in C++ until STATUS shows the end, the cycle budget runs out, or the watchdog
sees no retire, no SRAM write and no AXI4 handshake for `watchdog` cycles).

DRAM model knobs (keyword arguments of dnpu.runtime.open, or set_dram later):
read_latency and bytes_per_cycle (default: the profile's [memory]), write_latency
(default: read_latency), max_reads / max_writes (outstanding bursts, default 8),
stress_seed (random gaps on all five AXI4 channels and random latency; 0 = off), the test
switches stall_reads_after / stall_writes_after (stop answering after n more R beats / B
responses; -1 = never), and fault injection: fail_read_at / fail_write_at = n (the n-th read /
write burst accepted from now answers fail_resp; 0 = off), fail_resp (2 SLVERR, 3 DECERR),
fail_addr / fail_bytes (every beat touching that window fails; fail_bytes 0 = off).

Threads: the device's lock (dnpu.runtime.device) serializes every call into the model;
separate devices (separate Verilator models) may run on separate threads at once.
"""

from __future__ import annotations

import os
import time

from dnpu.spec import csr
from dnpu.spec.config import Config
from dnpu.runtime import cosim
from dnpu.runtime.device import U64_MAX, Device, Retire, RunInfo, check_count

__all__ = ["VerilatorDevice", "DRAM_KNOBS", "DRAM_STATS"]

DRAM_KNOBS = ("read_latency", "write_latency", "bytes_per_cycle", "max_reads", "max_writes", "stress_seed",
              "stall_reads_after", "stall_writes_after", "fail_read_at", "fail_write_at", "fail_resp", "fail_addr",
              "fail_bytes")
# Statistics dram() reports besides the knobs: handshakes per channel, the injected error
# responses, and the cycles stress held each channel back (with the extra latency drawn).
DRAM_STATS = ("ar", "r", "aw", "w", "b", "protocol_errors", "cycle", "injected_r", "injected_b", "stress_ar",
              "stress_r", "stress_aw", "stress_w", "stress_b", "stress_latency")
_START = csr.mask("CTRL", "START")
_SOFT_RESET = csr.mask("CTRL", "SOFT_RESET")
_CLEAR = csr.mask("CTRL", "CLEAR_COUNTERS")


class VerilatorDevice(Device):
    backend = "verilator"
    default_budget = 50_000_000
    budget_unit = "cycles"

    def __init__(self, config: Config, *, watchdog: int = 100_000, cache_dir: str | os.PathLike | None = None,
                 rebuild: bool = False, build_log=None, read_latency: int | None = None,
                 write_latency: int | None = None, bytes_per_cycle: int | None = None,
                 max_reads: int | None = None, max_writes: int | None = None, stress_seed: int = 0,
                 stall_reads_after: int = -1, stall_writes_after: int = -1, build_timeout: float | None = None,
                 **kw) -> None:
        faults = {k: kw.pop(k) for k in DRAM_KNOBS if k.startswith("fail_") and k in kw}
        super().__init__(config, **kw)
        self.model = None
        self.build = cosim.ensure_built(config.name, cache_dir=cache_dir, rebuild=rebuild, log=build_log,
                                        timeout=build_timeout)
        period_ps = max(1, round(1e6 / config.clock.f_clk_mhz))
        self.model = cosim.Model(self.build.path, clock_period_ps=period_ps)
        self.beat_bytes = self.model.beat_bytes
        self.watchdog = check_count("watchdog", watchdog, 0, U64_MAX, "cycles (0: off)")
        rl = config.memory.read_latency if read_latency is None else read_latency
        self.set_dram(read_latency=rl, write_latency=rl if write_latency is None else write_latency,
                      bytes_per_cycle=config.memory.bytes_per_cycle if bytes_per_cycle is None else bytes_per_cycle,
                      max_reads=8 if max_reads is None else max_reads,
                      max_writes=8 if max_writes is None else max_writes, stress_seed=stress_seed,
                      stall_reads_after=stall_reads_after, stall_writes_after=stall_writes_after, **faults)
        self.info.update(model=str(self.build.path), model_key=self.build.key, built=self.build.built,
                         build_seconds=round(self.build.seconds, 2), harness=self.model.build_info)

    # ---- DRAM model ------------------------------------------------------------------------
    def set_dram(self, **knobs: int) -> None:
        """Change DRAM model knobs (see the module docstring); takes effect at the next cycle."""
        self._check_open()
        for k, v in knobs.items():
            if k not in DRAM_KNOBS:
                raise TypeError(f"unknown DRAM knob {k!r} (knobs: {', '.join(DRAM_KNOBS)})")
            self.model.set(k, check_count(k, v, -(1 << 63), (1 << 63) - 1))

    def dram(self) -> dict[str, int]:
        """The DRAM model's knobs and statistics (DRAM_STATS: handshakes, protocol_errors,
        injected error responses, stress hold-backs)."""
        self._check_open()
        names = DRAM_KNOBS + DRAM_STATS
        return {n: self.model.get(n) for n in names}

    def describe(self) -> str:
        """The harness's view of the bus right now (outstanding bursts, last handshakes, ...)."""
        self._check_open()
        return self.model.describe()

    # ---- registers -------------------------------------------------------------------------
    def read_csr(self, name: str) -> int:
        self._check_open()
        return self.model.csr_read(csr.offset(name))

    def write_csr(self, name: str, value: int) -> None:
        self._check_open()
        self.model.csr_write(csr.offset(name), value)

    def reset(self, hard: bool = False) -> None:
        self._check_open()
        if hard:
            self.model.reset(4)
        else:
            self.model.csr_write(csr.offset("CTRL"), _SOFT_RESET)
            self.model.step(2)

    # ---- memory ------------------------------------------------------------------------------
    def _map(self, addr: int, nbytes: int) -> None:
        self.model.map(addr, nbytes)

    def _write(self, addr: int, data: bytes) -> None:
        self._check_open()
        self.model.write(addr, data)

    def _read(self, addr: int, n: int) -> bytes:
        self._check_open()
        return self.model.read(addr, n)

    # ---- running -----------------------------------------------------------------------------
    def _run(self, prog: int, args: list[int], budget: int, opts: dict) -> RunInfo:
        m = self.model
        m.csr_write(csr.offset("PROG_BASE"), prog)
        for k, a in enumerate(args):
            m.csr_write(csr.offset(f"ARG{k}"), a)
        watchdog = self.watchdog if opts.get("watchdog") is None else int(opts["watchdog"])
        wave = opts.get("wave")
        if wave:
            os.makedirs(os.path.dirname(os.path.abspath(wave)), exist_ok=True)
            m.wave_open(wave, m.cycle + max(0, int(opts.get("wave_from", 0))))
        ctrl = _START | (_CLEAR if opts.get("clear_counters", True) else 0)
        cap = int(opts.get("trace") or 0)
        if cap:
            m.trace_start(min(cap, cosim.TRACE_MAX))
        try:
            t0 = time.perf_counter()
            r = m.run(ctrl, budget, watchdog)
            wall = time.perf_counter() - t0
        finally:
            if wave:
                m.wave_close()
            if cap:
                m.trace_start(0)
        trace, dropped = (self._trace(m.trace_read(), r.end_cycle - r.cycles), m.get("trace_dropped")) \
            if cap else (None, 0)
        reason = r.reason
        if reason == "idle":
            outcome = "halted" if r.status & csr.mask("STATUS", "DONE") else "fault"
        else:
            outcome = reason
        detail = ""
        if outcome in ("budget", "watchdog", "sim_error", "axil_timeout"):
            detail = (f"harness: {r.cycles} cycles simulated, {r.retired} instructions retired, last retire "
                      f"PC 0x{r.last_retire_pc:08X}, last retire or AXI4 handshake at cycle {r.last_progress} "
                      f"(now {r.end_cycle}; watchdog {watchdog or 'off'})\n" + m.describe())
        counters = self.counters() if outcome == "halted" else {}
        return RunInfo(backend=self.backend, outcome=outcome, prog=prog, args=list(args), budget=budget,
                       budget_unit=self.budget_unit, cycles=r.cycles,
                       instret=counters.get("INSTRET", r.retired), wall_s=wall, counters=counters, detail=detail,
                       trace=trace, trace_dropped=dropped)

    @staticmethod
    def _trace(a, c0: int) -> list[Retire]:
        """The harness's capture (cosim.RETIRE_DTYPE records) as Retire tuples, cycles counted
        from c0 (the run's first cycle: the START write's)."""
        cols = [a[k].tolist() for k in ("pc", "word", "x_we", "x_idx", "x_data", "f_we", "f_idx", "f_data")]
        cols.append((a["cycle"] - c0).tolist())
        return [Retire(pc, word, (xi, xd) if xw else None, (fi, fd) if fw else None, cyc)
                for pc, word, xw, xi, xd, fw, fi, fd, cyc in zip(*cols)]

    def _bytes_moved(self, counters: dict) -> tuple[int | None, int | None, str]:
        return counters.get("RD_BYTES"), counters.get("WR_BYTES"), \
            f"whole {self.beat_bytes}-byte AXI4 beats: RD_BEATS x {self.beat_bytes}, WR_BEATS x " \
            f"{self.beat_bytes}; reads include instruction fetch"

    def _close(self) -> None:
        if self.model is not None:
            self.model.close()
            self.model = None

    def _check_open(self) -> None:
        super()._check_open()
        if self.model is None:
            raise ValueError("the verilator device has no model (closed)")
