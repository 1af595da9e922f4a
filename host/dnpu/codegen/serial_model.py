"""hw/serial.toml as plain dataclasses: the serial link's constants, frame layouts, command
and status codes, address windows and INFO words, validated on load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dnpu.codegen.validate import Errors, header_notes, read_toml

SERIAL_TOML = "hw/serial.toml"

# [link] keys: (type, lowest, highest).
LINK_KEYS = {
    "baud": (int, 300, 10_000_000),
    "sim_clks_per_bit": (int, 4, 1 << 16),
    "frame_gap_bits": (int, 20, 1 << 20),
    "max_words": (int, 1, 255),
    "bus_timeout_cycles": (int, 16, 1 << 30),
    "req_sync": (int, 0, 255),
    "rsp_sync": (int, 0, 255),
    "crc8_poly": (int, 1, 255),
    "crc8_init": (int, 0, 255),
    "version": (int, 0, (1 << 32) - 1),
}
# The frame fields the bridge and the host are written for, in order: a table that names
# others is a protocol change both sides must follow, not a table edit.
REQUEST_FIELDS = (("CMD", 1), ("SEQ", 1), ("ADDR", 4), ("NWORDS", 1), ("DATA", "4*NWORDS"))
REPLY_FIELDS = (("SEQ", 1), ("NWORDS", 1), ("DATA", "4*NWORDS"), ("STATUS", 1))
COMMANDS = ("READ", "WRITE", "INFO")
STATUSES = ("OK", "BAD_CRC", "BAD_CMD", "BAD_LEN", "BAD_ADDR", "BUS_ERROR", "BUS_TIMEOUT", "FRAME_TIMEOUT")
WINDOWS = {"CSR": "csr", "MEM": "mem_bytes"}
INFO_WORDS = ("VERSION", "CSR_BASE", "MEM_BASE", "MEM_BYTES", "MAX_WORDS", "CLKS_PER_BIT", "GAP_BITS")


@dataclass(frozen=True)
class Code:
    name: str
    code: int
    doc: str


@dataclass(frozen=True)
class FrameField:
    name: str
    bytes: int | str
    doc: str


@dataclass(frozen=True)
class Window:
    name: str
    base: int
    size: str
    doc: str


@dataclass(frozen=True)
class Serial:
    file: str
    notes: str
    link: dict[str, int]
    request: tuple[FrameField, ...]
    reply: tuple[FrameField, ...]
    commands: tuple[Code, ...]
    statuses: tuple[Code, ...]
    windows: tuple[Window, ...]
    info: tuple[Code, ...]           # code: the word's index in the INFO reply


def _fields(err: Errors, raw: dict, name: str, want: tuple) -> tuple[FrameField, ...]:
    out = []
    for key, t in err.entries(raw, name):
        err.unknown_keys(key, t, ("name", "bytes", "doc"))
        out.append(FrameField(err.get(key, t, "name", str, ""), err.get(key, t, "bytes", (int, str), 0),
                              err.get(key, t, "doc", str, "")))
    got = tuple((f.name, f.bytes) for f in out)
    if got != want:
        err.add(name, f"fields {got} differ from the layout the bridge and host implement {want}")
    return tuple(out)


def _codes(err: Errors, raw: dict, name: str, want: tuple[str, ...]) -> tuple[Code, ...]:
    out, seen_codes = [], {}
    for key, t in err.entries(raw, name):
        err.unknown_keys(key, t, ("name", "code", "doc"))
        c = Code(err.get(key, t, "name", str, ""), err.get(key, t, "code", int, 0), err.get(key, t, "doc", str, ""))
        if not 0 <= c.code <= 255:
            err.add(key, f"code {c.code} does not fit a byte")
        if c.code in seen_codes:
            err.add(key, f"code 0x{c.code:02X} already used by {seen_codes[c.code]}")
        seen_codes[c.code] = c.name
        out.append(c)
    if tuple(c.name for c in out) != want:
        err.add(name, f"entries {tuple(c.name for c in out)} differ from {want}")
    return tuple(out)


def load_serial(root: Path, rel: str = SERIAL_TOML) -> Serial:
    raw, text = read_toml(root, rel)
    err = Errors(rel)
    err.unknown_keys("top level", raw, ("link", "request", "reply", "command", "status", "window", "info"))
    head = raw.get("link", {})
    err.unknown_keys("link", head, tuple(LINK_KEYS))
    link = {}
    for k, (typ, lo, hi) in LINK_KEYS.items():
        v = err.get("link", head, k, typ, lo)
        if not lo <= v <= hi:
            err.add(f"link.{k}", f"{v} outside {lo}..{hi}")
        link[k] = v
    if link["req_sync"] == link["rsp_sync"]:
        err.add("link", "req_sync and rsp_sync must differ")
    request = _fields(err, raw, "request", REQUEST_FIELDS)
    reply = _fields(err, raw, "reply", REPLY_FIELDS)
    commands = _codes(err, raw, "command", COMMANDS)
    statuses = _codes(err, raw, "status", STATUSES)
    if statuses and statuses[0].code != 0:
        err.add("status OK", "OK must be code 0")
    windows = []
    for key, t in err.entries(raw, "window"):
        err.unknown_keys(key, t, ("name", "base", "size", "doc"))
        w = Window(err.get(key, t, "name", str, ""), err.get(key, t, "base", int, 0),
                   err.get(key, t, "size", str, ""), err.get(key, t, "doc", str, ""))
        if WINDOWS.get(w.name) != w.size:
            err.add(key, f"expected one of {WINDOWS} (name: size)")
        if w.base % 4096 or not 0 <= w.base < 1 << 32:
            err.add(key, f"base 0x{w.base:X}: a 4 KiB-aligned 32-bit address")
        windows.append(w)
    if tuple(w.name for w in windows) != tuple(WINDOWS):
        err.add("window", f"expected the windows {tuple(WINDOWS)}")
    info = []
    for i, (key, t) in enumerate(err.entries(raw, "info")):
        err.unknown_keys(key, t, ("name", "doc"))
        info.append(Code(err.get(key, t, "name", str, ""), i, err.get(key, t, "doc", str, "")))
    if tuple(c.name for c in info) != INFO_WORDS:
        err.add("info", f"expected the words {INFO_WORDS}")
    err.raise_if_any()
    return Serial(rel, header_notes(text), link, request, reply, tuple(commands), tuple(statuses),
                  tuple(windows), tuple(info))
