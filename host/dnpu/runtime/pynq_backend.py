"""Backend `pynq`: the NPU in a PYNQ board's programmable logic.

    with dnpu.runtime.open("pynq", config="pynq-z2") as dev:     # on the board's ARM
        ...                                                        # the same Device API

Opening it imports `pynq` (only then: the package exists on PYNQ board images, not on
a workstation), loads `bitstreams/<board>/dnpu.bit` with `pynq.Overlay` (which reads the
`dnpu.hwh` beside it), finds the NPU in `overlay.ip_dict["dnpu_0"]` and reaches its
registers through `pynq.MMIO(phys_addr, addr_range)`. Device memory is one physically
contiguous `pynq.allocate` buffer (the pool, `heap_size` bytes, 32 MiB by default) that
the runtime's allocator carves into 64-byte aligned buffers: the NPU's AXI4 master sees
PS DRAM physical addresses, so a buffer's device address is the pool's `device_address`
plus its offset. The pool is cacheable on the PS: every host write is flushed and every
host read invalidated first (PynqBuffer slices flush exactly their bytes).

A run's budget is in seconds of wall-clock time (`timeout`: a finite number in (0, 604800],
default 10 s; NaN, infinity and the like are refused at the call): the host
writes PROG_BASE and ARG0.., CTRL = START | CLEAR_COUNTERS, then polls STATUS until the
program ends or the deadline passes. There is no retire trace and no waveform on a
board. The board folder is `$DNPU_BITSTREAM_DIR/<board>` (default: `bitstreams/` beside
the package's source tree), `<board>` the profile's name unless `board=` says otherwise.

Off the board, tests/pynq_standin is a `pynq` that implements the subset used here on
the Verilator model (the .hwh generated from hw/csr.toml by dnpu.codegen), so this code
path runs in CI: `PYTHONPATH=tests/pynq_standin`.
"""

from __future__ import annotations

import importlib
import json
import os
import warnings
from pathlib import Path

import numpy as np

from dnpu.spec import csr, isa, mx, resources
from dnpu.spec.config import Config
from dnpu.codegen.emit_hwh import HWH_INSTANCE
from dnpu.runtime.device import ALIGN, Device, RunInfo
from dnpu.runtime.errors import DeviceError
from dnpu.runtime.polled import check_poll_interval, run_polled

__all__ = ["PynqDevice", "bitstream_dir", "IP_NAME"]

IP_NAME = HWH_INSTANCE             # the NPU's instance in the block design: the ip_dict key
POOL_BYTES = 32 << 20
_SOFT_RESET = csr.mask("CTRL", "SOFT_RESET")


def bitstream_dir() -> Path:
    """Where the board folders are: $DNPU_BITSTREAM_DIR, else the package's bitstreams/
    (dnpu.spec.resources)."""
    env = os.environ.get("DNPU_BITSTREAM_DIR")
    return Path(env) if env else resources.data_root() / "bitstreams"


def check_manifest(path: Path, config: Config) -> dict | None:
    """The build manifest beside a bitstream (scripts/vivado_build.py), if there is one:
    DeviceError (attach) when it is unreadable or names another profile's config hash or
    another ISA version than this package's, naming both; None without a manifest (the
    ID registers are still checked when the device attaches)."""
    if not path.is_file():
        return None

    def refuse(why: str):
        return DeviceError(f"{path}: {why}", reason="attach", backend="pynq", profile=config.label)

    try:
        m = json.loads(path.read_text(encoding="utf-8"))
        got_hash, got_isa = int(m["config_hash32"], 16), int(m["isa_version_word"], 16)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, RecursionError) as e:
        raise refuse(f"not a build manifest ({type(e).__name__}: {e}); rebuild with `make bitstream`") from None
    if got_hash != config.config_hash32:
        raise refuse(f"the bitstream was built for config hash 0x{got_hash:08X} (profile {m.get('profile')!r}), "
                     f"not profile {config.label}'s 0x{config.config_hash32:08X}: rebuild it or open it with "
                     f"the profile it was built for")
    if got_isa != isa.VERSION_WORD:
        raise refuse(f"the bitstream implements ISA {got_isa >> 16}.{got_isa & 0xFFFF} (0x{got_isa:08X}), this "
                     f"dnpu package ISA {isa.VERSION_WORD >> 16}.{isa.VERSION_WORD & 0xFFFF} "
                     f"(0x{isa.VERSION_WORD:08X}): rebuild the bitstream or install the matching package")
    return m


def _import_pynq():
    try:
        return importlib.import_module("pynq")
    except ImportError as e:
        raise DeviceError(
            "the pynq backend needs the `pynq` package, which comes with the PYNQ board image "
            "(run dnpu on the board's ARM, or `pip install 'dnpu[board]'` there); on this machine use "
            f"backend 'verilator' or 'emu' (import pynq: {e})", reason="attach", backend="pynq") from None


class PynqDevice(Device):
    backend = "pynq"
    default_budget = 10.0
    budget_unit = "seconds"
    max_budget = 604_800.0             # a week: a longer wait for one run is a hang

    def __init__(self, config: Config, *, board: str | None = None, bitstreams: str | os.PathLike | None = None,
                 download: bool = True, heap_size: int = POOL_BYTES, poll_interval: float = 0.0, **kw) -> None:
        poll = check_poll_interval(poll_interval)       # checked first: nothing is allocated yet
        self.pynq = _import_pynq()
        self.board = board or config.name
        folder = Path(bitstreams) if bitstreams else bitstream_dir()
        self.bitfile = folder / self.board / "dnpu.bit"
        hwh = self.bitfile.with_suffix(".hwh")
        missing = [p for p in (self.bitfile, hwh) if not p.is_file()]
        if missing:
            have = sorted(p.parent.name for p in folder.glob("*/dnpu.bit")) if folder.is_dir() else []
            raise DeviceError(f"no board build for {self.board!r}: {', '.join(map(str, missing))} missing "
                              f"(boards with a dnpu.bit under {folder}: {', '.join(have) or 'none'}; the .hwh "
                              f"comes from `make generate`, the .bit from the board's Vivado build, see "
                              f"bitstreams/README.md; DNPU_BITSTREAM_DIR moves the folder)",
                              reason="attach", backend="pynq", profile=config.label)
        check_manifest(self.bitfile.with_name(resources.BOARD_MANIFEST), config)
        try:
            self.overlay = self.pynq.Overlay(str(self.bitfile), download=download)
        except Exception as e:   # pynq's .hwh parser and loader raise many types: one attach error
            why = (str(e).splitlines() or [repr(e)])[0].removeprefix(f"{hwh}: ")
            raise DeviceError(f"{hwh}: pynq cannot load the overlay {self.bitfile.name} with this hardware "
                              f"handoff file ({type(e).__name__}: {why}); regenerate it with `make generate`",
                              reason="attach", backend="pynq", profile=config.label) from e
        ip = self.overlay.ip_dict.get(IP_NAME)
        if ip is None:
            raise DeviceError(f"{hwh}: no IP {IP_NAME!r} in the overlay (IPs: {', '.join(self.overlay.ip_dict)})",
                              reason="attach", backend="pynq", profile=config.label)
        need = 1 << max(r.offset for r in csr.REGS.values()).bit_length()
        if ip["addr_range"] < need:
            raise DeviceError(f"{hwh}: {IP_NAME}'s window is {ip['addr_range']} bytes; the register map "
                              f"needs {need}", reason="attach", backend="pynq", profile=config.label)
        self._check_registers(hwh, ip.get("registers") or {})
        self.phys_addr = int(ip["phys_addr"])
        self.mmio = self.pynq.MMIO(self.phys_addr, int(ip["addr_range"]))
        size = mx.align_up(int(heap_size))
        self.pool = self.pynq.allocate((size,), dtype=np.uint8)
        base = int(self.pool.device_address)
        if base % ALIGN:
            raise DeviceError(f"pynq.allocate gave a buffer at 0x{base:X}, not {ALIGN}-byte aligned",
                              reason="attach", backend="pynq")
        self.poll_interval = poll
        super().__init__(config, heap_base=base, heap_size=size, **kw)
        self.beat_bytes = config.beat_bytes
        self.info.update(board=self.board, bitfile=str(self.bitfile), phys_addr=self.phys_addr,
                         pool=(base, size))

    @staticmethod
    def _check_registers(hwh: Path, regs: dict) -> None:
        """The .hwh's register map (when it has one) must be the one this package speaks."""
        bad = []
        for name, r in regs.items():
            try:
                off = csr.offset(name)
            except KeyError:
                bad.append(f"{name} (unknown to dnpu.spec.csr)")
                continue
            if int(r["address_offset"]) != off:
                bad.append(f"{name} at 0x{int(r['address_offset']):X}, dnpu.spec.csr says 0x{off:X}")
        if bad:
            raise DeviceError(f"{hwh}: the register map differs from hw/csr.toml: {'; '.join(bad[:5])} "
                              f"(a stale .hwh: `make generate`, or a bitstream of another dnpu version)",
                              reason="attach", backend="pynq")

    # ---- registers -------------------------------------------------------------------------
    def read_csr(self, name: str) -> int:
        self._check_open()
        return int(self.mmio.read(csr.offset(name))) & 0xFFFF_FFFF

    def write_csr(self, name: str, value: int) -> None:
        self._check_open()
        self.mmio.write(csr.offset(name), int(value) & 0xFFFF_FFFF)

    def reset(self, hard: bool = False) -> None:
        """SOFT_RESET; hard=True downloads the bitstream again (the PL's full reset; DRAM kept)."""
        self._check_open()
        if hard:
            self.overlay.download()
        else:
            self.write_csr("CTRL", _SOFT_RESET)

    # ---- memory ------------------------------------------------------------------------------
    def _span(self, addr: int, n: int) -> slice:
        off = addr - self._heap.base
        if off < 0 or off + n > self._heap.size:
            raise ValueError(f"[0x{addr:X}, +{n}) is outside the pynq.allocate pool "
                             f"[0x{self._heap.base:X}, +{self._heap.size})")
        return slice(off, off + n)

    def _map(self, addr: int, nbytes: int) -> None:
        self._span(addr, nbytes)         # the pool is PS DRAM: mapped already

    def _write(self, addr: int, data: bytes) -> None:
        self._check_open()
        view = self.pool[self._span(addr, len(data))]
        view[:] = np.frombuffer(data, np.uint8)
        view.flush()                     # out of the PS caches, into DRAM where the NPU reads

    def _read(self, addr: int, n: int) -> bytes:
        self._check_open()
        view = self.pool[self._span(addr, n)]
        view.invalidate()                # drop stale cache lines: the NPU wrote DRAM
        return view.tobytes()

    # ---- running -----------------------------------------------------------------------------
    def _run(self, prog: int, args: list[int], budget: float, opts: dict) -> RunInfo:
        return run_polled(self, prog, args, budget, opts, no_trace="a board has no retire trace (dnpu_top's "
                          "retire port is left unconnected)")

    def _bytes_moved(self, counters: dict) -> tuple[int | None, int | None, str]:
        return counters.get("RD_BYTES"), counters.get("WR_BYTES"), \
            f"whole {self.beat_bytes}-byte AXI4 beats: RD_BEATS x {self.beat_bytes}, WR_BEATS x " \
            f"{self.beat_bytes}; reads include instruction fetch"

    def _close(self) -> None:
        pool = getattr(self, "pool", None)
        if pool is not None:
            if self._left_running:
                # The NPU may still write into the pool: freeing it would let a DMA land in memory
                # the kernel hands to someone else. Leak it instead (until the process ends).
                warnings.warn(f"pynq: the NPU is still BUSY after SOFT_RESET (an AXI burst that never "
                              f"completes?); its {self._heap.size}-byte pool at 0x{self._heap.base:X} is not "
                              f"freed", RuntimeWarning, stacklevel=5)
            else:
                pool.freebuffer()
            self.pool = None
