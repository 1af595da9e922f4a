"""Errors of the device runtime: every one says what the device was doing, for a human."""

from __future__ import annotations

from dnpu.spec import csr
from dnpu.spec.csr import ErrCause

__all__ = ["DeviceError", "AttachError"]

class DeviceError(RuntimeError):
    """A run that did not end in C_HALT (fault, budget, watchdog, ...) or a device that is
    unusable. Attributes (None where the backend cannot tell):

    reason        "fault" | "budget" | "watchdog" | "busy" | "sim_error" | "axil_timeout" |
                  "internal" | "attach"
    backend, profile
    pc, status, err_cause (dnpu.spec.csr.ErrCause), err_cause_name, err_pc
    counters      dict of the backend's counters after the run
    bytes_read, bytes_written   bytes moved over the memory port (see bytes_note)
    budget, budget_unit, elapsed   the run's budget and how much of it was used
    prog, run_args   the program address and argument registers of the run
    detail        backend diagnosis (the emulator's fault message, the harness's bus state)
    trace, trace_dropped   the run's retired instructions (list of Retire) when it was
                  started with run(trace=...), else None / 0
    run_info      the RunInfo of the failed run (cycles, wall time), when there was one

    str(e) is a multi-line report.
    """

    def __init__(self, summary: str, *, reason: str = "error", backend: str | None = None,
                 profile: str | None = None, pc: int | None = None, status: int | None = None,
                 err_cause: int | None = None, err_pc: int | None = None, counters: dict | None = None,
                 bytes_read: int | None = None, bytes_written: int | None = None, bytes_note: str = "",
                 budget: int | None = None, budget_unit: str = "", elapsed: int | None = None,
                 prog: int | None = None, args: list[int] | None = None, detail: str = "") -> None:
        super().__init__(summary)
        self.summary = summary
        self.reason = reason
        self.backend = backend
        self.profile = profile
        self.pc = pc
        self.status = status
        self.err_cause = None
        if err_cause is not None:
            try:
                self.err_cause = ErrCause(err_cause)
            except ValueError:
                self.err_cause = int(err_cause)
        self.err_pc = err_pc
        self.counters = dict(counters or {})
        self.bytes_read = bytes_read
        self.bytes_written = bytes_written
        self.bytes_note = bytes_note
        self.budget = budget
        self.budget_unit = budget_unit
        self.elapsed = elapsed
        self.prog = prog
        self.run_args = list(args) if args is not None else None
        self.detail = detail
        self.trace = None
        self.trace_dropped = 0
        self.run_info = None

    @property
    def err_cause_name(self) -> str | None:
        if self.err_cause is None:
            return None
        return self.err_cause.name if isinstance(self.err_cause, ErrCause) else f"unknown ({self.err_cause})"

    def __str__(self) -> str:
        where = ", ".join(x for x in (self.backend, f"profile {self.profile}" if self.profile else None) if x)
        lines = [f"{self.summary}" + (f" [{where}]" if where else "")]

        def row(name: str, text: str) -> None:
            lines.append(f"  {name:<10} {text}")

        if self.pc is not None:
            row("PC", f"0x{self.pc:08X}")
        if self.status is not None:
            row("STATUS", csr.describe_status(self.status).removeprefix("STATUS "))
        if self.err_cause is not None:
            row("ERR_CAUSE", csr.describe_error(int(self.err_cause)))
        if self.err_pc is not None:
            row("ERR_PC", f"0x{self.err_pc:08X}")
        if self.counters:
            # The CSR counters in hw/csr.toml's order, then the backend's own in its order.
            names = [n for n in csr.COUNTERS if n in self.counters] + \
                [n for n in self.counters if n not in csr.COUNTERS]
            row("counters", ", ".join(f"{n} {self.counters[n]}" for n in names))
        if self.bytes_read is not None or self.bytes_written is not None:
            row("moved", f"{self.bytes_read} bytes read, {self.bytes_written} bytes written"
                + (f" ({self.bytes_note})" if self.bytes_note else ""))
        if self.prog is not None:
            args = ", ".join(f"0x{a:08X}" for a in (self.run_args or []))
            row("run", f"program 0x{self.prog:08X}, args [{args}]"
                + (f", budget {self.budget} {self.budget_unit}" if self.budget is not None else "")
                + (f", {self.elapsed} {self.budget_unit} used" if self.elapsed is not None else ""))
        if self.detail:
            lines.append("  detail:")
            lines.extend("    " + ln for ln in self.detail.rstrip().splitlines())
        return "\n".join(lines)


class AttachError(DeviceError):
    """The device's ID, ISA_VERSION or CONFIG_HASH is not what the host expects.
    `field` names the register, `device_value` and `expected_value` the two sides."""

    def __init__(self, summary: str, *, field: str, device_value: int, expected_value: int, **kw) -> None:
        super().__init__(summary, reason="attach", **kw)
        self.field = field
        self.device_value = device_value
        self.expected_value = expected_value
