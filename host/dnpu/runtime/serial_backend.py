"""Backend `serial`: the NPU behind dnpu_uart_bridge, reached over a UART (docs/SERIAL.md).

    with dnpu.runtime.open("serial", config="sim", port="/dev/ttyUSB0", baudrate=115200) as dev:
        ...                                                        # the same Device API

The port is any URL pyserial's `serial_for_url` opens (`/dev/ttyUSB0`, `COM3`,
`socket://host:port`, `rfc2217://...`); without one, $DNPU_SERIAL_PORT, else a co-simulated
board (dnpu.runtime.cosim.serial_board: dnpu_uart_top under Verilator, served on a local
TCP port) is started in this process and reached with `socket://`. pyserial is imported
only when this backend is opened.

Attach sends INFO (the protocol version, the windows, MAX_WORDS, the bridge's bit timing),
then reads ID, ISA_VERSION and CONFIG_HASH like every backend. Registers are words of the
CSR window at CSR_BASE + offset (dnpu.spec.csr); device memory is the MEM window, which is
also the heap buffers are allocated from: the NPU's DMA sees the same addresses. Memory moves
in READ/WRITE frames of up to MAX_WORDS words; unaligned ends are read, merged and written
back. A run's budget is in seconds (as on `pynq`): PROG_BASE, ARGs, CTRL = START, then STATUS
is polled until the program ends or the budget passes.

Every reply wait is bounded: the frames' bit times at `baudrate`, the bridge's idle gap
before an error reply (GAP_BITS), its bus timeouts, plus `timeout` seconds of margin. A
missing, short, corrupted or out-of-order reply, or an error status, is a DeviceError of one
line naming the port, the command, its address and SEQ and what came back. A request the
bridge says it did not execute (BAD_CRC, FRAME_TIMEOUT), a READ (reading twice is harmless)
and a WRITE into the MEM window (the same words again) are sent again after the line goes
quiet, at most `retries` more times, and the error says how many tries were made; a CSR
WRITE whose reply was lost is never repeated (CTRL.START twice would start two runs).
"""

from __future__ import annotations

import importlib
import math
import os
import re
import struct
import time
import warnings

from dnpu.spec import csr, mx
from dnpu.spec import serial as sp
from dnpu.spec.config import Config
from dnpu.runtime.device import ALIGN, Device, RunInfo
from dnpu.runtime.errors import DeviceError
from dnpu.runtime.polled import MAX_POLL_INTERVAL, run_polled

__all__ = ["SerialDevice", "PORT_ENV", "BAUD_ENV", "DEFAULT_TIMEOUT", "DEFAULT_RETRIES"]

PORT_ENV = "DNPU_SERIAL_PORT"
BAUD_ENV = "DNPU_SERIAL_BAUDRATE"
DEFAULT_TIMEOUT = 1.0          # s of margin on every reply wait (a USB-UART's latency, a busy host)
DEFAULT_RETRIES = 2            # repeats of a request that is safe to repeat
COSIM_TIMEOUT = 30.0           # margin with the co-simulated board: its clock runs at the host's pace
BITS_PER_BYTE = 10             # 8N1: start, 8 data, stop
READ_SLICE = 0.05              # s one port read may block: the deadlines are checked between reads
_SOFT_RESET = csr.mask("CTRL", "SOFT_RESET")
_CLEAR = csr.mask("CTRL", "CLEAR_COUNTERS")
_CSR_BYTES = 1 << csr.ADDR_WIDTH
_NOT_DONE = (sp.Status.BAD_CRC, sp.Status.FRAME_TIMEOUT)    # replies that say nothing was done
_STATUS_REGS = ("STATUS", "ERR_CAUSE", "ERR_PC", "PC")


class _LinkFault(Exception):
    """One exchange that went wrong on the wire (the caller decides about retrying); silent:
    not one byte came back."""

    def __init__(self, msg: str, silent: bool = False) -> None:
        super().__init__(msg)
        self.silent = silent


def _import_serial():
    try:
        return importlib.import_module("serial")
    except ImportError as e:
        raise DeviceError(f"the serial backend needs pyserial: pip install 'dnpu[serial]' (or pyserial) ({e})",
                          reason="attach", backend="serial") from None


def _number(name: str, value, lo: float, hi: float, integer: bool = False):
    ok = not isinstance(value, bool) and isinstance(value, (int, float))
    v = float(value) if ok else math.nan
    if not (math.isfinite(v) and lo <= v <= hi) or (integer and not v.is_integer()):
        kind = "a whole number" if integer else "a number"
        raise ValueError(f"{name} = {value!r}: must be {kind} in [{lo:g}, {hi:g}]")
    return int(v) if integer else v


class SerialDevice(Device):
    backend = "serial"
    default_budget = 60.0
    budget_unit = "seconds"
    max_budget = 604_800.0             # a week: a longer wait for one run is a hang

    def __init__(self, config: Config, *, port: str | None = None, baudrate: int | None = None,
                 timeout: float | None = None, retries: int = DEFAULT_RETRIES, poll_interval: float = 0.0,
                 **kw) -> None:
        if baudrate is None and os.environ.get(BAUD_ENV):
            try:
                baudrate = int(os.environ[BAUD_ENV])
            except ValueError:
                raise ValueError(f"{BAUD_ENV}={os.environ[BAUD_ENV]!r}: not a whole number of bits per second") \
                    from None
        self.baudrate = _number("baudrate", sp.LINK["baud"] if baudrate is None else baudrate, 1, 1e9, True)
        self.retries = _number("retries", retries, 0, 100, True)
        self.poll_interval = _number("poll_interval", poll_interval, 0, MAX_POLL_INTERVAL)
        port = port or os.environ.get(PORT_ENV) or None
        if timeout is None:
            timeout = COSIM_TIMEOUT if port is None else DEFAULT_TIMEOUT
        self.margin = _number("timeout", timeout, 0.001, 3600)
        self.board = None
        if port is None:                         # a co-simulated board in this process
            from dnpu.runtime.cosim import CosimError, serial_board
            try:
                self.board = serial_board.acquire(config)
            except (CosimError, OSError) as e:
                raise DeviceError(f"no serial port given (port=, --port, ${PORT_ENV}) and the co-simulated "
                                  f"serial board cannot start: {str(e).splitlines()[0]}", reason="attach",
                                  backend=self.backend, profile=config.label) from e
            port = self.board.url
        self.port = str(port)
        self.ser = None
        self._seq = 0
        self._link_down = False        # the last request got no byte back, however often sent
        self.stats = {"frames": 0, "retries": 0, "bytes_sent": 0, "bytes_received": 0}
        self.gap_s = sp.LINK["frame_gap_bits"] / self.baudrate
        self.clks_per_bit = 0
        serial = _import_serial()
        try:
            try:
                self.ser = serial.serial_for_url(self.port, baudrate=self.baudrate, bytesize=8, parity="N",
                                                 stopbits=1, timeout=min(READ_SLICE, self.margin),
                                                 write_timeout=self.margin + 1)
            except (serial.SerialException, ValueError, OSError) as e:
                why = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise DeviceError(f"cannot open the serial port {self.port!r}: {why}", reason="attach",
                                  backend=self.backend, profile=config.label) from None
            self.link = self._info(config)
        except BaseException:
            self._close_link()
            raise
        base, size = self.link["MEM_BASE"], self.link["MEM_BYTES"]
        heap_base = mx.align_up(base)
        heap_size = (base + size - heap_base) // ALIGN * ALIGN
        super().__init__(config, heap_base=heap_base, heap_size=heap_size, **kw)
        self.info.update(port=self.port, baudrate=self.baudrate, link=dict(self.link),
                         cosim_board=self.board is not None)

    # ---- the link ----------------------------------------------------------------------------
    def _info(self, config: Config) -> dict[str, int]:
        """INFO: the bridge's description of itself, checked against this package's protocol."""
        try:
            rep = self._transact(sp.Cmd.INFO)
        except DeviceError as e:
            e.reason, e.profile = "attach", config.label
            e.summary = f"{e.summary} (is a dnpu serial bridge at {self.port}, at {self.baudrate} baud?)"
            e.args = (e.summary,)
            raise
        info = dict(zip(sp.INFO_WORDS, rep.words))

        def refuse(why: str) -> DeviceError:
            return DeviceError(f"{self.port}: {why}", reason="attach", backend=self.backend, profile=config.label)

        if len(rep.words) != len(sp.INFO_WORDS):
            raise refuse(f"INFO replied {len(rep.words)} words, protocol version {sp.LINK['version']} has "
                         f"{len(sp.INFO_WORDS)} ({', '.join(sp.INFO_WORDS)})")
        if info["VERSION"] != sp.LINK["version"]:
            raise refuse(f"the bridge speaks serial protocol version {info['VERSION']}, this dnpu package "
                         f"version {sp.LINK['version']}: rebuild the bitstream or install the matching package")
        for name in ("CSR", "MEM"):
            if info[f"{name}_BASE"] != sp.WINDOWS[name]["base"]:
                raise refuse(f"INFO {name}_BASE 0x{info[name + '_BASE']:08X}, hw/serial.toml says "
                             f"0x{sp.WINDOWS[name]['base']:08X}")
        if not 1 <= info["MAX_WORDS"] <= sp.MAX_WORDS or info["MEM_BYTES"] < ALIGN:
            raise refuse(f"INFO MAX_WORDS {info['MAX_WORDS']} (1..{sp.MAX_WORDS}) or MEM_BYTES "
                         f"{info['MEM_BYTES']} (>= {ALIGN}) out of range")
        self.gap_s = info["GAP_BITS"] / self.baudrate
        self.clks_per_bit = info["CLKS_PER_BIT"]
        return info

    def _next_seq(self) -> int:
        self._seq = self._seq % 255 + 1        # 1..255: a reply with SEQ 0 answers a frame cut short
        return self._seq

    def _deadline_s(self, cmd: sp.Cmd, nwords: int) -> float:
        """How long a reply may take: both frames' bit times, the idle gap before an error reply,
        the bridge's bus timeouts (at its clock, CLKS_PER_BIT x baud), plus the margin."""
        reply_words = len(sp.INFO_WORDS) if cmd == sp.Cmd.INFO else nwords
        nbytes = sp.request_size(cmd, nwords) + sp.reply_size(reply_words)
        bus = 0.0
        if self.clks_per_bit:
            bus = max(nwords, 1) * sp.LINK["bus_timeout_cycles"] / (self.clks_per_bit * self.baudrate)
        return nbytes * BITS_PER_BYTE / self.baudrate + self.gap_s + bus + self.margin

    def _recv(self, n: int, deadline: float) -> bytes:
        """Up to n bytes, returning early only at the deadline (passed by at most READ_SLICE:
        the port's timeout stays fixed, as reconfiguring a tty for every read costs a syscall)."""
        got = bytearray()
        while len(got) < n and time.monotonic() < deadline:
            got += self.ser.read(n - len(got))
        self.stats["bytes_received"] += len(got)
        return bytes(got)

    def _exchange(self, frame: bytes, cmd: sp.Cmd, seq: int, addr: int, nwords: int) -> sp.Reply:
        """Send one request, wait (bounded) for its reply; _LinkFault for anything but a reply
        frame that decodes and answers this request."""
        what = f"{cmd.name} 0x{addr:08X}" + (f" ({nwords} words)" if nwords > 1 else "") + f" seq {seq}"
        limit = self._deadline_s(cmd, nwords)
        t0 = time.monotonic()
        try:
            self.ser.write(frame)
            self.ser.flush()
        except Exception as e:               # pyserial's SerialException, a closed socket, a write timeout
            raise _LinkFault(f"cannot send {what} to {self.port}: {e}") from None
        self.stats["frames"] += 1
        self.stats["bytes_sent"] += len(frame)
        deadline = t0 + limit
        head = self._recv(sp.REPLY_HEADER, deadline)
        if not head:
            raise _LinkFault(f"no reply from {self.port} to {what} within {limit:.2f} s: sent {len(frame)} bytes, "
                             f"received 0", silent=True)
        try:
            n = sp.reply_nwords(head) if len(head) == sp.REPLY_HEADER else None
        except sp.FrameError as e:
            raise _LinkFault(f"bad reply from {self.port} to {what}: {e} (received {head.hex(' ')})") from None
        if n is None:
            raise _LinkFault(f"short reply from {self.port} to {what} within {limit:.2f} s: {len(head)} bytes "
                             f"({head.hex(' ')})")
        want = len(sp.INFO_WORDS) if cmd == sp.Cmd.INFO else nwords if cmd == sp.Cmd.READ else 0
        if n not in (0, want):
            raise _LinkFault(f"bad reply from {self.port} to {what}: its header announces {n} data words, "
                             f"expected {want} or 0 (received {head.hex(' ')})")
        rest = self._recv(sp.reply_size(n) - sp.REPLY_HEADER, deadline)
        frame_in = head + rest
        if len(frame_in) < sp.reply_size(n):
            raise _LinkFault(f"short reply from {self.port} to {what} within {limit:.2f} s: {len(frame_in)} of "
                             f"{sp.reply_size(n)} bytes")
        try:
            rep = sp.parse_reply(frame_in)
        except sp.FrameError as e:
            raise _LinkFault(f"bad reply from {self.port} to {what}: {e}") from None
        # A frame cut short or corrupted leaves the bridge no SEQ it can trust: such a refusal
        # (nothing done) answers whatever it read; every other reply must echo this request's.
        if rep.seq != seq and rep.status not in _NOT_DONE:
            raise _LinkFault(f"reply SEQ {rep.seq} from {self.port} to {what}: not this request's (a stale "
                             f"reply, or frames out of step)")
        return rep

    def _resync(self) -> None:
        """After a failed exchange, drain the line until it has been quiet for a while (the
        rest of a reply, an error reply the bridge sends after its idle gap), bounded."""
        quiet = max(2 * self.gap_s, min(self.margin, 0.25))
        end = time.monotonic() + 4 * quiet + self.gap_s
        last = time.monotonic()
        try:
            while time.monotonic() < end and time.monotonic() - last < quiet:
                if self.ser.read(4096):
                    last = time.monotonic()
            self.ser.reset_input_buffer()
        except Exception:                    # a port that is gone: the next send says so
            pass

    def _transact(self, cmd: sp.Cmd, addr: int = 0, nwords: int = 0, words=()) -> sp.Reply:
        """One request with its safe retries; DeviceError (one line) when it fails."""
        if self.ser is None:
            raise ValueError(f"the {self.backend} device is closed")
        repeatable = cmd != sp.Cmd.WRITE or sp.window_of(addr, 4 * nwords, self._mem_bytes(), _CSR_BYTES) == "MEM"
        faults: list[str] = []
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats["retries"] += 1
            seq = self._next_seq()
            frame = sp.encode_request(cmd, seq, addr, nwords if cmd != sp.Cmd.WRITE else None, words)
            try:
                rep = self._exchange(frame, cmd, seq, addr, nwords)
            except _LinkFault as f:
                faults.append(str(f))
                self._link_down = f.silent
                self._resync()
                if repeatable:
                    continue
                raise self._link_error(f"{f}; a WRITE to the CSR window is not repeated (it may have been "
                                       f"done)", faults[:-1])
            self._link_down = False
            if rep.status == sp.Status.OK:
                return rep
            what = f"{cmd.name} 0x{addr:08X}" + (f" ({nwords} words)" if nwords > 1 else "") + f" seq {seq}"
            why = f"{self.port} answered {what} with {sp.status_doc(rep.status)}"
            if rep.status in _NOT_DONE:
                faults.append(why)
                continue
            raise self._link_error(why, faults)
        raise self._link_error(faults[-1], faults[:-1])

    def _link_error(self, last: str, earlier: list[str]) -> DeviceError:
        tries = len(earlier) + 1
        note = ""
        if tries > 1:
            same = {re.sub(r"0x[0-9A-Fa-f]+|\d+", "#", f) for f in earlier + [last]}
            note = f" ({tries} tries)" if len(same) == 1 else f" ({tries} tries; the first: {earlier[0]})"
        return DeviceError(last + note, reason="link", backend=self.backend, profile=self.config.label
                           if hasattr(self, "config") else None)

    def _mem_bytes(self) -> int:
        return getattr(self, "link", {}).get("MEM_BYTES", 0)

    def _read_words(self, addr: int, n: int) -> list[int]:
        out: list[int] = []
        step = self.link["MAX_WORDS"]
        for k in range(0, n, step):
            m = min(step, n - k)
            out.extend(self._transact(sp.Cmd.READ, addr + 4 * k, m).words)
        return out

    def _write_words(self, addr: int, words) -> None:
        step = self.link["MAX_WORDS"]
        for k in range(0, len(words), step):
            chunk = words[k:k + step]
            self._transact(sp.Cmd.WRITE, addr + 4 * k, len(chunk), chunk)

    # ---- registers -------------------------------------------------------------------------
    def read_csr(self, name: str) -> int:
        self._check_open()
        return self._read_words(self.link["CSR_BASE"] + csr.offset(name), 1)[0]

    def write_csr(self, name: str, value: int) -> None:
        self._check_open()
        self._write_words(self.link["CSR_BASE"] + csr.offset(name), [int(value) & 0xFFFF_FFFF])

    def status(self) -> dict[str, int]:
        # STATUS, ERR_CAUSE, ERR_PC and PC are adjacent words: one READ
        first = csr.offset(_STATUS_REGS[0])
        offs = [csr.offset(n) for n in _STATUS_REGS]
        words = self._read_words(self.link["CSR_BASE"] + first, (max(offs) - first) // 4 + 1)
        return {n: words[(o - first) // 4] for n, o in zip(_STATUS_REGS, offs)}

    def counters(self) -> dict[str, int]:
        """The CSR counters in one burst READ (each LO before its HI, which it latches)."""
        self._check_open()
        offs = [csr.offset(f"{n}_{h}") for n in csr.COUNTERS for h in ("LO", "HI")]
        lo = min(offs)
        words = self._read_words(self.link["CSR_BASE"] + lo, (max(offs) - lo) // 4 + 1)
        out = {n: csr.combine64(words[(offs[2 * i] - lo) // 4], words[(offs[2 * i + 1] - lo) // 4])
               for i, n in enumerate(csr.COUNTERS)}
        out["RD_BYTES"] = out["RD_BEATS"] * self.config.beat_bytes
        out["WR_BYTES"] = out["WR_BEATS"] * self.config.beat_bytes
        return out

    def reset(self, hard: bool = False) -> None:
        """SOFT_RESET. The link has no reset line: hard=True resets the co-simulated board's
        model (rst_n) and, on a real board, also clears the counters (CLEAR_COUNTERS)."""
        self._check_open()
        if hard and self.board is not None:
            self.board.hard_reset()
            return
        self.write_csr("CTRL", _SOFT_RESET | (_CLEAR if hard else 0))

    # ---- memory ------------------------------------------------------------------------------
    def _span(self, addr: int, n: int) -> None:
        if sp.window_of(addr, n, self.link["MEM_BYTES"], _CSR_BYTES) != "MEM":
            base = self.link["MEM_BASE"]
            raise ValueError(f"[0x{addr:X}, +{n}) is outside the bridge's memory window "
                             f"[0x{base:08X}, 0x{base + self.link['MEM_BYTES']:08X})")

    def _map(self, addr: int, nbytes: int) -> None:
        self._span(addr, nbytes)             # on-chip memory: always there

    def _write(self, addr: int, data: bytes) -> None:
        self._check_open()
        if not data:
            return
        self._span(addr, len(data))
        lo, hi = addr & ~3, (addr + len(data) + 3) & ~3
        if (lo, hi) != (addr, addr + len(data)):        # unaligned ends: read, merge, write back
            buf = bytearray(hi - lo)
            head = self._read_words(lo, 1)
            buf[:4] = struct.pack("<I", head[0])
            if hi - 4 > lo:
                buf[-4:] = struct.pack("<I", self._read_words(hi - 4, 1)[0])
            buf[addr - lo:addr - lo + len(data)] = data
            data = bytes(buf)
        self._write_words(lo, list(struct.unpack(f"<{len(data) // 4}I", data)))

    def _read(self, addr: int, n: int) -> bytes:
        self._check_open()
        if n <= 0:
            return b""
        self._span(addr, n)
        lo, hi = addr & ~3, (addr + n + 3) & ~3
        words = self._read_words(lo, (hi - lo) // 4)
        raw = struct.pack(f"<{len(words)}I", *words)
        return raw[addr - lo:addr - lo + n]

    # ---- running -----------------------------------------------------------------------------
    def _run(self, prog: int, args: list[int], budget: float, opts: dict) -> RunInfo:
        return run_polled(self, prog, args, budget, opts, no_trace="the serial link has no retire trace",
                          via=f" through {self.port}")

    def _bytes_moved(self, counters: dict) -> tuple[int | None, int | None, str]:
        bb = self.config.beat_bytes
        return counters.get("RD_BYTES"), counters.get("WR_BYTES"), \
            f"whole {bb}-byte AXI4 beats: RD_BEATS x {bb}, WR_BEATS x {bb}; reads include instruction fetch"

    def _stop(self) -> bool:
        if self._link_down:          # every try of the last request went unanswered: do not wait again
            warnings.warn(f"closing the serial device: {self.port} stopped answering, so the NPU could not be "
                          f"checked or stopped", RuntimeWarning, stacklevel=4)
            return False
        return super()._stop()

    def _close_link(self) -> None:
        ser, self.ser = self.ser, None
        if ser is not None:
            try:
                ser.close()
            except Exception:
                pass
        board, self.board = self.board, None
        if board is not None:
            board.release()

    def _close(self) -> None:
        self._close_link()
