"""dnpu.runtime: one small device interface, several backends (after VTA's driver.h).

    import dnpu.runtime as rt
    with rt.open("verilator", config="sim") as dev:     # "emu", "verilator", "pynq", "serial"; None: $DNPU_BACKEND, else "emu"
        prog = dev.load(dnpu.spec.isa.assemble(src))          # a Buffer in device memory
        out = dev.alloc(4096)                            # 64-byte aligned, zero-filled
        info = dev.run(prog, args=[out], timeout=1_000_000)   # cycles (verilator) / instructions (emu) / s (pynq, serial)
        out.read(64), dev.counters(), info.cycles
        dev.reset()                                      # SOFT_RESET

`open` attaches: it reads ID, ISA_VERSION and CONFIG_HASH over the register interface and
refuses a device that is not the one the host expects (AttachError). Every run is bounded:
a fault, a budget or watchdog stop raises DeviceError with PC, STATUS, ERR_CAUSE, ERR_PC,
counters and bytes moved; a budget that is not a valid bound (NaN, infinite, zero, negative,
too large for the backend) is a ValueError at the call.

A Device may be shared between threads: every operation holds the device's lock
(`dev.lock`, re-entrant), so concurrent callers take turns; `with dev.lock:` makes a
sequence of calls atomic. Separate devices run in parallel.

Backends: `emu` (dnpu.emu, the functional emulator), `verilator` (the RTL in the C++
co-simulation harness of cosim/, built and cached on first use) and `pynq` (the NPU on a
PYNQ board: pynq.Overlay of bitstreams/<board>/, pynq.allocate memory, MMIO registers;
`pynq` is imported only when this backend is opened) and `serial` (any board with the
UART bridge dnpu_uart_top, over pyserial's serial_for_url: `/dev/tty*`, `socket://`; without
a port a co-simulated board in this process).
"""

from __future__ import annotations

import os

from dnpu.spec import config as _config
from dnpu.spec.config import Config
from dnpu.runtime.device import (ALIGN, HEAP_BASE, HEAP_SIZE, Buffer, Device, Retire, RunInfo,
                                 check_run_info)
from dnpu.runtime.errors import AttachError, DeviceError

__all__ = ["open", "backend_name", "Device", "Buffer", "RunInfo", "Retire", "DeviceError", "AttachError", "BACKENDS",
           "DEFAULT_BACKEND", "ALIGN", "HEAP_BASE", "HEAP_SIZE", "check_run_info"]

BACKENDS = ("emu", "verilator", "pynq", "serial")
DEFAULT_BACKEND = "emu"


def backend_name(backend: str | None = None) -> str:
    """The backend `open` would use: the argument, else $DNPU_BACKEND, else "emu"."""
    chosen = backend if backend else os.environ.get("DNPU_BACKEND") or DEFAULT_BACKEND
    name = chosen.strip().lower()
    source = "argument backend=" if backend else ("DNPU_BACKEND" if os.environ.get("DNPU_BACKEND") else "default")
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {chosen!r} ({source}): choose one of {', '.join(BACKENDS)}")
    return name


def _as_config(c: str | os.PathLike | Config) -> Config:
    return c if isinstance(c, Config) else _config.load(c)


def open(backend: str | None = None, config: str | os.PathLike | Config = "sim", *,
         expect_config: str | os.PathLike | Config | None = None, **kw) -> Device:  # noqa: A001
    """Open and attach a device.

    backend        "emu" | "verilator" | "pynq" | "serial"; None: $DNPU_BACKEND, else "emu"
    config         the hardware profile (name, .toml path or Config) the device is built for
    expect_config  the profile the host expects to find (default: config); attach refuses a
                   device whose CONFIG_HASH differs from it
    **kw           backend options: heap_base, heap_size (emu, verilator); verilator: watchdog, cache_dir,
                   rebuild, build_log, build_timeout, and the DRAM knobs read_latency, write_latency,
                   bytes_per_cycle, max_reads, max_writes, stress_seed, stall_reads_after,
                   stall_writes_after, fail_read_at, fail_write_at, fail_resp, fail_addr,
                   fail_bytes; pynq: board (default: the profile's name), bitstreams
                   (default $DNPU_BITSTREAM_DIR or bitstreams/), download, heap_size (the
                   pynq.allocate pool, default 32 MiB), poll_interval (s); serial: port (a pyserial
                   URL; default $DNPU_SERIAL_PORT, else a co-simulated board started here), baudrate
                   (default $DNPU_SERIAL_BAUDRATE, else hw/serial.toml's), timeout (s of margin on
                   every reply wait), retries, poll_interval (s)
    """
    name = backend_name(backend)
    cfg = _as_config(config)
    expect = _as_config(expect_config) if expect_config is not None else None
    if name == "emu":
        from dnpu.runtime.emu_backend import EmuDevice as cls
    elif name == "verilator":
        from dnpu.runtime.verilator_backend import VerilatorDevice as cls
    elif name == "serial":                   # imports pyserial only now
        from dnpu.runtime.serial_backend import SerialDevice as cls
    else:                                    # imports pynq only now
        from dnpu.runtime.pynq_backend import PynqDevice as cls
    dev = cls(cfg, expect_config=expect, **kw)
    try:
        dev.attach()
    except BaseException:
        dev.close()
        raise
    return dev
