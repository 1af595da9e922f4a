"""A Python model of dnpu_uart_bridge's side of the serial protocol (docs/SERIAL.md), serving one
TCP client at a time, for the serial backend's tests: no Verilator, every error path in
milliseconds.

    with BridgeModel(config) as br:                    # br.url: socket://127.0.0.1:PORT
        br.inject("flip_reply", byte=4)                # the next reply has a bit flipped
        dev = runtime.open("serial", config=config, port=br.url, baudrate=br.baud)

Behind the bridge: the functional emulator (dnpu.emu) for the NPU, its memory mapped as the
MEM window, the CSR window decoded by dnpu.spec.csr. CTRL.START runs the emulator SLICE
instructions at a time, one slice per STATUS read, so a program that loops keeps BUSY set
as the RTL does. Framing as the RTL's: bytes before a sync byte are ignored; a frame cut
short ends after GAP_BITS idle bit times with FRAME_TIMEOUT; a refused frame is answered
after the line has been idle that long.

Faults (inject(kind, count=1, after=0, **where); each consumed by the next `count` frames
once `after` frames have passed):
  flip_reply (byte=k, bit=b)     flip one bit of the reply
  drop_reply (byte=k)            leave one byte out of the reply
  drop_request (byte=k)          lose one byte of the incoming request
  flip_request (byte=k, bit=b)   a bit of the incoming request flipped on the line
  silent                         read the request, execute it, send nothing
  wrong_seq                      reply with another SEQ
"""

from __future__ import annotations

import socket
import threading

from dnpu.emu import Emulator
from dnpu.spec import csr
from dnpu.spec import serial as sp

__all__ = ["BridgeModel"]

_START = csr.mask("CTRL", "START")
_SOFT_RESET = csr.mask("CTRL", "SOFT_RESET")
_CLEAR = csr.mask("CTRL", "CLEAR_COUNTERS")
_BUSY = csr.mask("STATUS", "BUSY")
_CSR_BYTES = 1 << csr.ADDR_WIDTH
SLICE = 2000


class BridgeModel:
    def __init__(self, config, *, mem_bytes: int = 1 << 18, baud: int = 1_000_000, clks_per_bit: int = 100,
                 gap_bits: int | None = None, max_words: int | None = None, version: int | None = None) -> None:
        self.config = config
        self.mem_base = sp.WINDOWS["MEM"]["base"]
        self.mem_bytes = mem_bytes
        self.baud = baud
        self.gap_bits = sp.LINK["frame_gap_bits"] if gap_bits is None else gap_bits
        self.gap_s = self.gap_bits / baud
        self.info_words = {"VERSION": sp.LINK["version"] if version is None else version,
                           "CSR_BASE": sp.WINDOWS["CSR"]["base"], "MEM_BASE": self.mem_base,
                           "MEM_BYTES": mem_bytes, "MAX_WORDS": max_words or sp.MAX_WORDS,
                           "CLKS_PER_BIT": clks_per_bit, "GAP_BITS": self.gap_bits}
        self.emu = Emulator(config)
        self.emu.map(self.mem_base, mem_bytes)
        for i in range(csr.REGS["WIN_BASE"].count):
            self.emu.set_window(i, 0, 0, 0)
        self.counts = {"INSTRET": 0, "RD": 0, "WR": 0, "BUSY": 0}
        self.faults: list[list] = []        # [kind, count, where, frames still to let pass]
        self.frames: list[sp.Request | str] = []    # what arrived, in order (a str: a refused frame)
        self.replies = 0
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(1)
        self._sock.settimeout(0.05)
        self.url = f"socket://127.0.0.1:{self._sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="serial-bridge-model", daemon=True)
        self._thread.start()

    def __enter__(self) -> "BridgeModel":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def inject(self, kind: str, count: int = 1, after: int = 0, **where) -> None:
        assert kind in ("flip_reply", "drop_reply", "drop_request", "flip_request", "silent", "wrong_seq"), kind
        with self._lock:
            self.faults.append([kind, count, where, after])

    def _take(self, kind: str) -> dict | None:
        with self._lock:
            for f in self.faults:
                if f[0] == kind and f[1] > 0:
                    if f[3] > 0:
                        f[3] -= 1
                        return None
                    f[1] -= 1
                    return f[2]
        return None

    # ---- the wire ------------------------------------------------------------------------------
    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (socket.timeout, OSError):
                continue
            with conn:
                self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        frame = bytearray()
        nin = 0                     # bytes of the current request seen on the line (fault positions)
        refused: tuple[int, int] | None = None     # (seq, status) to send once the line is idle
        drop = flip = None
        while not self._stop.is_set():
            waiting = bool(frame) or refused is not None
            conn.settimeout(self.gap_s if waiting else 0.05)
            try:
                data = conn.recv(4096)
            except socket.timeout:
                if refused is not None:
                    self._send(conn, *refused, ())
                    refused = None
                elif frame:                                    # cut short: FRAME_TIMEOUT
                    seq = frame[2] if len(frame) > 2 else 0
                    self.frames.append("cut short")
                    frame.clear()
                    self._send(conn, seq, sp.Status.FRAME_TIMEOUT, ())
                continue
            except OSError:
                return
            if not data:
                return
            for b in data:
                if refused is not None:
                    continue                                   # ignored until the line is idle
                if not frame:
                    if b != sp.LINK["req_sync"]:
                        continue
                    nin = 0
                    drop, flip = self._take("drop_request"), self._take("flip_request")
                if drop is not None and nin == drop.get("byte", 1):
                    nin += 1
                    continue
                if flip is not None and nin == flip.get("byte", 1):
                    b ^= 1 << flip.get("bit", 0)
                nin += 1
                frame.append(b)
                if len(frame) >= sp.REQ_HEADER + 1:
                    n = frame[7]
                    want = sp.REQ_HEADER + 1 + (4 * n if frame[1] == sp.Cmd.WRITE and 1 <= n <= sp.MAX_WORDS else 0)
                    if len(frame) == want:
                        refused = self._frame(conn, bytes(frame))
                        frame.clear()

    def _frame(self, conn, frame: bytes) -> tuple[int, int] | None:
        """Execute a whole frame and reply; (seq, status) of a refusal to send after the gap."""
        try:
            req = sp.parse_request(frame)
        except sp.FrameError as e:
            self.frames.append(f"refused: {e}")
            return frame[2], e.status
        if req.cmd != sp.Cmd.INFO and sp.window_of(req.addr, 4 * req.nwords, self.mem_bytes, _CSR_BYTES) is None:
            self.frames.append(f"refused: address 0x{req.addr:08X}")
            return req.seq, sp.Status.BAD_ADDR
        self.frames.append(req)
        if req.cmd == sp.Cmd.INFO:
            words, st = [self.info_words[n] for n in sp.INFO_WORDS], sp.Status.OK
        elif req.cmd == sp.Cmd.READ:
            words, st = self._read(req.addr, req.nwords)
        else:
            words, st = (), self._write(req.addr, req.words)
        self._send(conn, req.seq, st, words)
        return None

    def _send(self, conn, seq: int, status, words) -> None:
        if self._take("silent") is not None:
            return
        if self._take("wrong_seq") is not None:
            seq = (seq + 1) & 0xFF
        out = bytearray(sp.encode_reply(seq, status, words))
        f = self._take("flip_reply")
        if f is not None:
            out[f.get("byte", 1)] ^= 1 << f.get("bit", 0)
        f = self._take("drop_reply")
        if f is not None:
            del out[f.get("byte", 1)]
        self.replies += 1
        try:
            conn.sendall(bytes(out))
        except OSError:
            pass

    # ---- behind the bridge ---------------------------------------------------------------------
    def _read(self, addr: int, n: int):
        out = []
        for k in range(n):
            a = addr + 4 * k
            if a >= self.mem_base and a < self.mem_base + self.mem_bytes:
                out.append(int.from_bytes(self.emu.read(a, 4), "little"))
                continue
            v = self._csr_read(a - sp.WINDOWS["CSR"]["base"])
            if v is None:                   # a hole in the register map: SLVERR, the rest reads 0
                return out + [0] * (n - k), sp.Status.BUS_ERROR
            out.append(v)
        return out, sp.Status.OK

    def _write(self, addr: int, words) -> int:
        for k, w in enumerate(words):
            a = addr + 4 * k
            if a >= self.mem_base and a < self.mem_base + self.mem_bytes:
                self.emu.write(a, int(w).to_bytes(4, "little"))
            elif not self._csr_write(a - sp.WINDOWS["CSR"]["base"], w):
                return sp.Status.BUS_ERROR
        return sp.Status.OK

    def _name(self, off: int) -> str | None:
        try:
            return csr.name_at(off)
        except (KeyError, ValueError):
            return None

    def _csr_read(self, off: int) -> int | None:
        name = self._name(off)
        if name is None:
            return None
        if name == "STATUS" and self.emu.status & _BUSY:
            self._advance()
        c = self.counts
        per_beat = self.config.beat_bytes
        counters = {"CYCLES": c["BUSY"], "BUSY_CYCLES": c["BUSY"], "INSTRET": c["INSTRET"],
                    "RD_BEATS": c["RD"] // per_beat, "WR_BEATS": c["WR"] // per_beat}
        base, _, half = name.rpartition("_")
        if half in ("LO", "HI") and base in csr.COUNTERS:
            v = counters.get(base, 0)
            return v & 0xFFFF_FFFF if half == "LO" else v >> 32
        return int(self.emu.read_csr(name)) & 0xFFFF_FFFF

    def _csr_write(self, off: int, value: int) -> bool:
        name = self._name(off)
        if name is None:
            return False
        value &= 0xFFFF_FFFF
        if name == "PROG_BASE":
            self.emu.prog_base = value
        elif name.startswith("ARG"):
            self.emu.args[int(name[3:])] = value
        elif name.startswith("WIN_"):
            reg, i = name.rstrip("0123456789"), int(name[len(name.rstrip("0123456789")):])
            self.emu.set_window(i, **{{"WIN_BASE": "base", "WIN_LIMIT": "limit", "WIN_PERM": "perm"}[reg]: value})
        elif name == "CTRL":
            if value & _SOFT_RESET:
                self.emu.soft_reset()
            if value & _CLEAR:
                self.counts = dict.fromkeys(self.counts, 0)
            if value & _START and not self.emu.status & _BUSY:
                self._account(self.emu.run(max_instructions=SLICE))
        return True                          # writes to read-only registers are ignored, as on the RTL

    def _advance(self) -> None:
        self._account(self.emu.resume(SLICE))

    def _account(self, res) -> None:
        c = self.counts
        c["INSTRET"] += res.instret
        c["BUSY"] += max(1, res.instret)
        c["RD"] += res.bytes_read + res.fetch_bytes
        c["WR"] += res.bytes_written


# A tiny program for runs over the link: prefix sums of the ARG1 ints at ARG0, into ARG2.
SUM = """
    S_LD_ARG x1, 0
    S_LD_ARG x2, 1
    S_LD_ARG x3, 2
    H_LOAD_INT x0, x1, x2
    S_ADDI x4, x0, 0
    S_ADDI x5, x0, 0
    C_LOOP x2, @done
      S_LD_INT x6, x5, 0
      S_ADD x4, x4, x6
      S_ST_INT x4, x5, 0
      S_ADDI x5, x5, 1
done: H_STORE_INT x0, x3, x2
    C_HALT
"""
