"""The serial link's framed protocol (docs/SERIAL.md): frame encoding, decoding and the CRC,
for the host backend, the co-simulation and the RTL tests.

Everything here comes from dnpu.spec.generated.serial_table, which `python -m dnpu.codegen`
writes from hw/serial.toml.

    encode_request("READ", seq=7, addr=0x4000_0000, nwords=4)   request frame bytes
    encode_request("WRITE", seq=8, addr=0x0100_0000, words=[1, 2])
    parse_request(frame)            Request, or FrameError(status) the bridge would reply with
    encode_reply(seq, status, words)                            reply frame bytes
    reply_nwords(frame[:3])         the data words a reply announces (its length follows)
    parse_reply(frame)              Reply(seq, status, words), or FrameError
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from dnpu.spec.generated import serial_table as _t

__all__ = ["LINK", "Cmd", "Status", "WINDOWS", "INFO_WORDS", "REQ_HEADER", "REPLY_HEADER", "REPLY_TRAILER",
           "MAX_WORDS", "FrameError", "Request", "Reply", "crc8", "encode_request", "parse_request", "request_size",
           "encode_reply", "reply_nwords", "reply_size", "parse_reply", "status_doc", "window_of"]

LINK: dict[str, int] = dict(_t.LINK)
MAX_WORDS: int = LINK["max_words"]
Cmd = IntEnum("Cmd", {k: int(v) for k, v in _t.COMMANDS.items()})
Status = IntEnum("Status", {k: int(v) for k, v in _t.STATUSES.items()})
WINDOWS: dict[str, dict] = {k: dict(v) for k, v in _t.WINDOWS.items()}
INFO_WORDS: tuple[str, ...] = tuple(_t.INFO)

REQ_HEADER = 8          # sync, CMD, SEQ, ADDR (4), NWORDS
REPLY_HEADER = 3        # sync, SEQ, NWORDS
REPLY_TRAILER = 2       # STATUS, CRC


def _crc_table(poly: int) -> tuple[int, ...]:
    out = []
    for b in range(256):
        c = b
        for _ in range(8):
            c = ((c << 1) ^ poly) & 0xFF if c & 0x80 else (c << 1) & 0xFF
        out.append(c)
    return tuple(out)


_CRC = _crc_table(LINK["crc8_poly"])


def crc8(data: bytes, crc: int | None = None) -> int:
    """CRC-8 of data (MSB first, no reflection, no final XOR), continuing from crc."""
    c = LINK["crc8_init"] if crc is None else crc
    for b in data:
        c = _CRC[c ^ b]
    return c


class FrameError(ValueError):
    """A frame that does not decode; status: the code a bridge replies with for it."""

    def __init__(self, msg: str, status: Status = Status.BAD_CRC) -> None:
        super().__init__(msg)
        self.status = status


@dataclass(frozen=True)
class Request:
    cmd: Cmd
    seq: int
    addr: int
    nwords: int
    words: tuple[int, ...] = ()


@dataclass(frozen=True)
class Reply:
    seq: int
    status: Status
    words: tuple[int, ...] = ()


def status_doc(status: int) -> str:
    """'NAME (what it means)' for a status code, or 'unknown status 0xNN'."""
    try:
        s = Status(status)
    except ValueError:
        return f"unknown status 0x{status:02X}"
    return f"{s.name} ({_t.STATUS_DOCS[s.name]})"


def window_of(addr: int, nbytes: int, mem_bytes: int, csr_bytes: int) -> str | None:
    """The window (CSR, MEM) that holds all of addr .. addr+nbytes-1, or None."""
    sizes = {"CSR": csr_bytes, "MEM": mem_bytes}
    for name, w in WINDOWS.items():
        if w["base"] <= addr and addr + nbytes <= w["base"] + sizes[name]:
            return name
    return None


def request_size(cmd: Cmd | str, nwords: int) -> int:
    """Bytes of a request frame, CRC included."""
    return REQ_HEADER + (4 * nwords if _cmd(cmd) == Cmd.WRITE else 0) + 1


def _cmd(cmd: Cmd | str | int) -> Cmd:
    return Cmd[cmd] if isinstance(cmd, str) else Cmd(cmd)


def encode_request(cmd: Cmd | str, seq: int, addr: int = 0, nwords: int | None = None,
                   words=()) -> bytes:
    """A request frame. WRITE: nwords defaults to len(words). Values are not range-checked
    beyond their field widths, so tests can build frames the bridge must refuse."""
    c = _cmd(cmd)
    words = tuple(int(w) & 0xFFFF_FFFF for w in words)
    n = len(words) if nwords is None else nwords
    body = struct.pack("<BBIB", int(c), seq & 0xFF, addr & 0xFFFF_FFFF, n & 0xFF)
    body += b"".join(struct.pack("<I", w) for w in words)
    return bytes([LINK["req_sync"]]) + body + bytes([crc8(body)])


def parse_request(frame: bytes) -> Request:
    """The bridge's reading of a whole request frame: FrameError with the status it would
    reply with when the frame is refused (address windows are the caller's to check)."""
    if len(frame) < REQ_HEADER + 1 or frame[0] != LINK["req_sync"]:
        raise FrameError("not a request frame", Status.FRAME_TIMEOUT)
    cmd, seq, addr, n = struct.unpack_from("<BBIB", frame, 1)
    if crc8(frame[1:-1]) != frame[-1]:
        raise FrameError(f"CRC 0x{frame[-1]:02X}, expected 0x{crc8(frame[1:-1]):02X}", Status.BAD_CRC)
    if cmd not in Cmd._value2member_map_:
        raise FrameError(f"unknown command 0x{cmd:02X}", Status.BAD_CMD)
    c = Cmd(cmd)
    if c != Cmd.INFO and not 1 <= n <= MAX_WORDS:
        raise FrameError(f"NWORDS {n} outside 1..{MAX_WORDS}", Status.BAD_LEN)
    if c != Cmd.INFO and addr % 4:
        raise FrameError(f"address 0x{addr:08X} is not a multiple of 4", Status.BAD_ADDR)
    words = ()
    if c == Cmd.WRITE:
        if len(frame) != REQ_HEADER + 4 * n + 1:
            raise FrameError(f"WRITE of {n} words in {len(frame)} bytes", Status.FRAME_TIMEOUT)
        words = struct.unpack_from(f"<{n}I", frame, REQ_HEADER)
    return Request(c, seq, addr, n if c != Cmd.INFO else 0, tuple(words))


def reply_size(nwords: int) -> int:
    """Bytes of a reply frame carrying nwords data words."""
    return REPLY_HEADER + 4 * nwords + REPLY_TRAILER


def encode_reply(seq: int, status: Status | int, words=()) -> bytes:
    words = tuple(int(w) & 0xFFFF_FFFF for w in words)
    body = struct.pack("<BB", seq & 0xFF, len(words)) + b"".join(struct.pack("<I", w) for w in words)
    body += bytes([int(status)])
    return bytes([LINK["rsp_sync"]]) + body + bytes([crc8(body)])


def reply_nwords(header: bytes) -> int:
    """The data words a reply's first REPLY_HEADER bytes announce; FrameError when they are
    not a reply header."""
    if len(header) < REPLY_HEADER:
        raise FrameError(f"reply header of {len(header)} bytes")
    if header[0] != LINK["rsp_sync"]:
        raise FrameError(f"reply starts with 0x{header[0]:02X}, not the sync byte 0x{LINK['rsp_sync']:02X}")
    if header[2] > MAX_WORDS:
        raise FrameError(f"reply announces {header[2]} words, more than {MAX_WORDS}")
    return header[2]


def parse_reply(frame: bytes) -> Reply:
    """A whole reply frame; FrameError on a wrong sync byte, length or CRC."""
    n = reply_nwords(frame[:REPLY_HEADER])
    if len(frame) != reply_size(n):
        raise FrameError(f"reply of {len(frame)} bytes, its header announces {reply_size(n)}")
    if crc8(frame[1:-1]) != frame[-1]:
        raise FrameError(f"reply CRC 0x{frame[-1]:02X}, expected 0x{crc8(frame[1:-1]):02X}")
    words = struct.unpack_from(f"<{n}I", frame, REPLY_HEADER)
    st = frame[-2]
    return Reply(frame[1], Status(st) if st in Status._value2member_map_ else st, tuple(words))
