"""The dnpu control/status register map, for the runtime, the co-simulation and reports.

Everything here comes from dnpu.spec.generated.csr_table, which `python -m dnpu.codegen`
writes from hw/csr.toml; see docs/CSR.md.

    offset("STATUS")        0x010
    offset("ARG3")          ARG base + 3*4
    offset("CYCLES")        low word of a 64-bit counter (same as "CYCLES_LO")
    offset("CYCLES_HI")     high word (read after the low word: the low read latches it)
    mask("STATUS", "DONE")  the field's bit mask
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from enum import IntEnum

from dnpu.spec.generated import csr_table as _t

__all__ = ["DATA_WIDTH", "ADDR_WIDTH", "ID_MAGIC", "REGS", "COUNTERS", "ADDR_MAP", "Reg", "Field", "ErrCause",
           "offset", "name_at", "field", "mask", "get_field", "set_field", "fields_of",
           "combine64", "isa_version_word", "describe_status", "describe_error", "describe_value"]

DATA_WIDTH: int = _t.DATA_WIDTH
ADDR_WIDTH: int = _t.ADDR_WIDTH
ID_MAGIC: int = _t.ID_MAGIC
_WORD = DATA_WIDTH // 8


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    doc: str

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb

    def get(self, value: int) -> int:
        return (value >> self.lsb) & ((1 << self.width) - 1)

    def set(self, value: int, fval: int) -> int:
        if not 0 <= fval < (1 << self.width):
            raise ValueError(f"field {self.name}: {fval} does not fit {self.width} bit(s)")
        return (value & ~self.mask) | (fval << self.lsb)


@dataclass(frozen=True)
class Reg:
    name: str
    offset: int                  # byte offset of the first (or low) word
    access: str                  # ro | rw | wo | w1p
    width: int                   # 32 or 64 (two words, LO then HI)
    count: int                   # > 1 for an array: NAME0 .. NAME{count-1}
    counter: bool
    reset: int | str             # an int, or id_magic | isa_version | config_hash
    enum: str | None
    doc: str
    fields: dict[str, Field]

    @property
    def words(self) -> int:
        return self.count * self.width // DATA_WIDTH

    @property
    def size(self) -> int:
        """Bytes of address space the register takes."""
        return self.words * _WORD

    def addr(self, index: int = 0) -> int:
        """Offset of element `index` of an array register."""
        if not 0 <= index < self.count:
            raise IndexError(f"{self.name}{index}: {self.name} has {self.count} element(s)")
        return self.offset + index * _WORD


REGS: dict[str, Reg] = {
    r["name"]: Reg(name=r["name"], offset=r["offset"], access=r["access"], width=r["width"],
                   count=r["count"], counter=r["counter"], reset=r["reset"], enum=r["enum"],
                   doc=r["doc"], fields={f["name"]: Field(f["name"], f["lsb"], f["width"], f["doc"])
                                         for f in r["fields"]})
    for r in _t.REGS
}
# The 64-bit performance counters, in register-map order.
COUNTERS: tuple[str, ...] = tuple(r.name for r in REGS.values() if r.counter)


def _word_names() -> dict[int, str]:
    out = {}
    for r in REGS.values():
        if r.width == 64:
            out[r.offset], out[r.offset + _WORD] = f"{r.name}_LO", f"{r.name}_HI"
        elif r.count > 1:
            for k in range(r.count):
                out[r.offset + k * _WORD] = f"{r.name}{k}"
        else:
            out[r.offset] = r.name
    return dict(sorted(out.items()))


ADDR_MAP: dict[int, str] = _word_names()     # byte offset -> word name (ARG3, CYCLES_HI, ...)
_BY_WORD_NAME = {n: a for a, n in ADDR_MAP.items()}


def offset(name: str) -> int:
    """Byte offset of a register word: "STATUS", "ARG3", "ARG" (element 0), "CYCLES" or
    "CYCLES_LO" (low word of a 64-bit register), "CYCLES_HI". KeyError otherwise."""
    key = name.upper()
    if key in REGS:
        return REGS[key].offset
    if key in _BY_WORD_NAME:
        return _BY_WORD_NAME[key]
    m = re.fullmatch(r"([A-Z_][A-Z0-9_]*?)(\d+)", key)
    if m and m.group(1) in REGS and REGS[m.group(1)].count > 1:
        r = REGS[m.group(1)]
        if int(m.group(2)) < r.count:
            return r.addr(int(m.group(2)))
        raise KeyError(f"no CSR {name!r}: {r.name} has elements {r.name}0..{r.name}{r.count - 1}")
    close = difflib.get_close_matches(key, [*REGS, *_BY_WORD_NAME], n=1)
    raise KeyError(f"no CSR {name!r}" + (f"; did you mean {close[0]}?" if close else ""))


def name_at(off: int) -> str:
    """The word name at a byte offset (e.g. 0x084 -> "CYCLES_HI"); KeyError if none."""
    if off not in ADDR_MAP:
        raise KeyError(f"no CSR at offset 0x{off:03X}")
    return ADDR_MAP[off]


def field(reg: str, name: str) -> Field:
    r = REGS[reg.upper()]
    try:
        return r.fields[name.upper()]
    except KeyError:
        raise KeyError(f"{r.name} has no field {name!r} (fields: {', '.join(r.fields) or 'none'})") from None


def mask(reg: str, name: str) -> int:
    """Bit mask of a field, e.g. mask("CTRL", "START") == 1."""
    return field(reg, name).mask


def get_field(reg: str, name: str, value: int) -> int:
    return field(reg, name).get(value)


def set_field(reg: str, name: str, value: int, fval: int) -> int:
    return field(reg, name).set(value, fval)


def fields_of(reg: str, value: int) -> dict[str, int]:
    """Every field of a register value: {"BUSY": 0, "DONE": 1, ...}."""
    return {n: f.get(value) for n, f in REGS[reg.upper()].fields.items()}


def combine64(lo: int, hi: int) -> int:
    """A 64-bit counter from its two words (read LO first, then HI)."""
    return (hi & 0xFFFFFFFF) << 32 | (lo & 0xFFFFFFFF)


def isa_version_word() -> int:
    """What ISA_VERSION must read for this host's ISA (major << 16 | minor)."""
    from dnpu.spec.generated import isa_table
    return isa_table.VERSION_WORD


class _DocIntEnum(IntEnum):
    @property
    def doc(self) -> str:
        return _ENUM_DOCS[type(self).__name__][self.name]


_ENUM_DOCS: dict[str, dict[str, str]] = {
    "ErrCause": {n: doc for n, _v, doc in _t.ENUMS.get("err_cause", ())},
}
ErrCause = _DocIntEnum("ErrCause", [(n, v) for n, v, _doc in _t.ENUMS["err_cause"]],
                       module=__name__, qualname="ErrCause")
ErrCause.__doc__ = "ERR_CAUSE values (hw/csr.toml enums.err_cause); .doc is the meaning."


def describe_status(value: int) -> str:
    """A human line for a STATUS value, e.g. "STATUS 0x00000005: BUSY, ERROR"."""
    value &= (1 << DATA_WIDTH) - 1
    fields = REGS["STATUS"].fields
    on = [n for n, f in fields.items() if f.get(value)]
    known = 0
    for f in fields.values():
        known |= f.mask
    parts = list(on)
    if value & ~known:
        parts.append(f"unknown bits 0x{value & ~known:08X}")
    if not parts:
        parts = ["idle (" + ", ".join(f"not {n}" for n in fields) + ")"]
    return f"STATUS 0x{value:08X}: " + ", ".join(parts)


def describe_error(cause: int, err_pc: int | None = None) -> str:
    """A human line for an ERR_CAUSE value (and optionally ERR_PC), e.g.
    "ILLEGAL_INSTR (1): unknown opcode, ... (ERR_PC 0x00000010)"."""
    try:
        c = ErrCause(cause)
        s = f"{c.name} ({int(c)}): {c.doc}"
    except ValueError:
        s = f"unknown error cause {cause}"
    if err_pc is not None:
        s += f" (ERR_PC 0x{err_pc:08X})"
    return s


def describe_value(name: str, value: int) -> str:
    """One register word for a report: fields, enum name, or plain hex."""
    key = name.upper()
    base = re.sub(r"(_LO|_HI|\d+)\Z", "", key) if key not in REGS else key
    r = REGS.get(base)
    if r is not None and r.name == "STATUS":
        return describe_status(value)
    if r is not None and r.enum == "err_cause":
        return f"{key} = " + describe_error(value)
    if r is not None and r.fields:
        fs = ", ".join(f"{n}={v}" for n, v in fields_of(r.name, value).items())
        return f"{key} 0x{value:08X} ({fs})"
    return f"{key} 0x{value:08X}"
