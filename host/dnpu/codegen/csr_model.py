"""hw/csr.toml as plain dataclasses: the AXI4-Lite register map (offsets, access types,
reset values, fields) and its enums (the fault causes), validated on load."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dnpu.codegen.validate import Errors, header_notes, load_enum, overlaps, read_toml

CSR_TOML = "hw/csr.toml"

ACCESS = {"ro": "read only", "rw": "read/write", "wo": "write only; reads return 0",
          "w1p": "write-1 pulse: writing 1 triggers, reads return 0"}
# Symbolic CSR reset values: what they stand for.
RESET_SYMBOLS = {"id_magic": "ID magic", "isa_version": "ISA version (major << 16 | minor)",
                 "config_hash": "the profile's config_hash32"}


@dataclass(frozen=True)
class CsrField:
    name: str
    lsb: int
    width: int
    doc: str

    @property
    def msb(self) -> int:
        return self.lsb + self.width - 1


@dataclass(frozen=True)
class Reg:
    name: str
    offset: int
    access: str
    width: int
    count: int
    counter: bool
    reset: int | str
    enum: str | None
    doc: str
    fields: tuple[CsrField, ...]

    @property
    def words(self) -> int:
        return self.count * self.width // 32

    def word_list(self) -> list[tuple[str, int]]:
        """(name, byte offset) of each 32-bit word, as dnpu.spec.csr names them."""
        return word_list(self.name, self.offset, self.width, self.count)


def word_list(name: str, offset: int, width: int, count: int) -> list[tuple[str, int]]:
    """The 32-bit words of a register: NAME; NAME_LO and NAME_HI (64-bit); NAME0..NAMEn-1
    (an array)."""
    out = []
    for k in range(count):
        base = f"{name}{k}" if count > 1 else name
        if width == 64:
            out += [(f"{base}_LO", offset + 8 * k), (f"{base}_HI", offset + 8 * k + 4)]
        else:
            out.append((base, offset + 4 * k))
    return out


@dataclass
class Csr:
    data_width: int
    addr_width: int
    id_magic: int
    regs: list[Reg]
    enums: dict[str, list[tuple[str, int, str]]]    # name -> [(NAME, value, doc)]
    notes: str
    file: str = CSR_TOML

    def reg(self, name: str) -> Reg | None:
        return next((r for r in self.regs if r.name == name), None)

    def words(self) -> list[tuple[str, int, Reg]]:
        """(word name, byte offset, register) of every 32-bit word."""
        return [(n, off, r) for r in self.regs for n, off in r.word_list()]

    @property
    def id_ascii(self) -> str:
        """id_magic as a quoted 4-character string, or "" when not printable."""
        b = self.id_magic.to_bytes(4, "big")
        return f'"{b.decode("ascii")}"' if all(32 <= c < 127 for c in b) else ""


def load_csr(root: Path, rel: str = CSR_TOML) -> Csr:
    raw, text = read_toml(root, rel)
    err = Errors(rel)
    err.unknown_keys("top level", raw, ("csr", "reg", "enums"))
    head = raw.get("csr", {})
    err.unknown_keys("csr", head, ("data_width", "addr_width", "id_magic"))
    dw = err.get("csr", head, "data_width", int, 32)
    aw = err.get("csr", head, "addr_width", int)
    magic = err.get("csr", head, "id_magic", int)
    if dw != 32:
        err.add("csr.data_width", f"{dw}: only 32-bit registers are supported")
        dw = 32
    if aw is not None and not 3 <= aw <= 32:
        err.add("csr.addr_width", f"{aw}: expected 3..32")
        aw = None
    if magic is not None and not 0 <= magic < (1 << dw):
        err.add("csr.id_magic", f"0x{magic:X} does not fit {dw} bits")

    enums: dict[str, list[tuple[str, int, str]]] = {}
    for en, et in raw.get("enums", {}).items():
        enums[en] = load_enum(err, en, et)
        for k, v, _ in enums[en]:
            if v >= (1 << dw):
                err.add(f"enums.{en}.{k}", f"value {v} does not fit a {dw}-bit register")

    regs: list[Reg] = []
    words: dict[int, str] = {}
    names: set[str] = set()
    for key, rt in err.entries(raw, "reg"):
        err.unknown_keys(key, rt, ("name", "offset", "access", "reset", "doc", "fields",
                                   "width", "count", "counter", "enum"))
        nm = err.get(key, rt, "name", str)
        off = err.get(key, rt, "offset", int)
        acc = err.get(key, rt, "access", str)
        width = err.get(key, rt, "width", int, 32)
        count = err.get(key, rt, "count", int, 1)
        counter = err.get(key, rt, "counter", bool, False)
        reset = err.get(key, rt, "reset", (int, str), 0)
        enum = err.get(key, rt, "enum", str, None)
        doc = err.get(key, rt, "doc", str, "")
        flist = err.get(key, rt, "fields", list, [])
        if nm is None or off is None or acc is None:
            continue
        err.unique_name(key, nm, names, "register")
        if acc not in ACCESS:
            err.add(f"{key}.access", f"{acc!r}: expected one of {', '.join(ACCESS)}")
        if width not in (32, 64):
            err.add(f"{key}.width", f"{width}: expected 32 or 64")
            width = 32
        if count < 1:
            err.add(f"{key}.count", f"{count}: must be at least 1")
            count = 1
        if count > 1 and width != 32:
            err.add(key, "an array of 64-bit registers is not supported")
        if count > 1 and re.search(r"\d\Z", nm):
            err.add(key, "an array's name cannot end in a digit (elements are NAME0, NAME1, ...)")
        if isinstance(reset, str) and reset not in RESET_SYMBOLS:
            err.add(f"{key}.reset", f"{reset!r}: expected an integer or one of {', '.join(RESET_SYMBOLS)}")
        elif isinstance(reset, int) and not 0 <= reset < (1 << width):
            err.add(f"{key}.reset", f"{reset}: does not fit {width} bits")
        if enum is not None and enum not in enums:
            err.add(f"{key}.enum", f"unknown enum {enum!r} (known: {', '.join(enums) or 'none'})")
        align = dw // 8
        if off % align:
            err.add(f"{key}.offset", f"0x{off:X} is not {align}-byte aligned")
        end = off + count * width // 32 * align
        if aw is not None and (off < 0 or end > (1 << aw)):
            err.add(f"{key}.offset", f"0x{off:X}..0x{end - 1:X} lies beyond the {aw}-bit "
                                     f"address space (0x{(1 << aw) - 1:X})")
        for label, a in word_list(nm, off, width, count):
            if a in words:
                err.add(f"{key}.offset", f"{label} at 0x{a:03X} overlaps {words[a]}")
            else:
                words[a] = label
        fields = _load_fields(err, key, flist, dw)
        regs.append(Reg(nm, off, acc, width, count, counter, reset, enum, doc, tuple(fields)))

    err.raise_if_any()
    return Csr(data_width=dw, addr_width=aw, id_magic=magic, regs=regs, enums=enums,
               notes=header_notes(text), file=rel)


def _load_fields(err: Errors, key: str, flist: list, dw: int) -> list[CsrField]:
    fields: list[CsrField] = []
    names: set[str] = set()
    for j, ft in enumerate(flist):
        fkey = f"{key}.fields[{j}]"
        if not isinstance(ft, dict):
            err.add(fkey, "expected { name, lsb, width, doc }")
            continue
        err.unknown_keys(fkey, ft, ("name", "lsb", "width", "doc"))
        fn = err.get(fkey, ft, "name", str)
        fl = err.get(fkey, ft, "lsb", int)
        fw = err.get(fkey, ft, "width", int, 1)
        fd = err.get(fkey, ft, "doc", str, "")
        if fn is None or fl is None:
            continue
        fkey = f"{key}.fields.{fn}"
        err.unique_name(fkey, fn, names, "field")
        if fl < 0 or fw < 1 or fl + fw > dw:
            err.add(fkey, f"bits {fl + fw - 1}:{fl} lie beyond bit {dw - 1}")
            continue
        for o in fields:
            if overlaps(fl, fl + fw - 1, o.lsb, o.msb):
                err.add(fkey, f"bits {fl + fw - 1}:{fl} overlap field {o.name}")
        fields.append(CsrField(fn, fl, fw, fd))
    return fields
