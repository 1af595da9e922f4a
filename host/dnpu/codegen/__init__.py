"""One table generates the rest: hw/isa.toml, hw/csr.toml and the hardware profiles
(hw/config/*.toml, through dnpu.spec.config) are turned into Verilog headers, Python
tables and Markdown docs.

    python -m dnpu.codegen [--root DIR] [--out DIR] [--check]

Outputs (paths relative to the repository root):

    hw/rtl/generated/dnpu_isa.vh          opcodes, fields, used-bit masks, enums
    hw/rtl/generated/dnpu_csr.vh          CSR offsets, field bits, error causes
    hw/rtl/generated/dnpu_cfg_<p>.vh      one per hardware profile (- becomes _)
    host/dnpu/spec/generated/__init__.py
    host/dnpu/spec/generated/isa_table.py      plain literals read by dnpu.spec.isa
    host/dnpu/spec/generated/csr_table.py      plain literals read by dnpu.spec.csr
    docs/ISA.md, docs/CSR.md
    bitstreams/<board>/dnpu.hwh           one per FPGA profile: the hardware handoff PYNQ's
                                          Overlay reads (the NPU's AXI4-Lite window on the
                                          PS's general-purpose port and its register map)

Every output is a pure function of the source tables: no timestamps, no absolute
paths, so `--check` can compare byte for byte. The tables are validated first;
a mistake raises CodegenError whose message names the file and the key.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import re
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

__all__ = ["CodegenError", "Isa", "Csr", "Profile", "load_isa", "load_csr", "load_profiles",
           "generate", "write_files", "check", "main", "GENERATED_DIRS", "ISA_TOML", "CSR_TOML",
           "emit_hwh", "hwh_text", "HWH_INSTANCE", "PS_FAMILIES"]

ISA_TOML = "hw/isa.toml"
CSR_TOML = "hw/csr.toml"
CONFIG_DIR = "hw/config"
RTL_GEN = "hw/rtl/generated"
PY_GEN = "host/dnpu/spec/generated"
# Directories codegen owns entirely: a file there that it does not write is stale.
GENERATED_DIRS = (RTL_GEN, PY_GEN)

# Instruction classes, in the order the docs list them.
CLASSES = ("control", "scalar_int", "scalar_fp", "vector", "memory")
CLASS_TITLES = {"control": "Control", "scalar_int": "Scalar integer", "scalar_fp": "Scalar FP",
                "vector": "Vector", "memory": "Memory (external, AXI4)"}
ACCESS = {"ro": "read only", "rw": "read/write", "wo": "write only; reads return 0",
          "w1p": "write-1 pulse: writing 1 triggers, reads return 0"}
# Symbolic CSR reset values: what they stand for.
RESET_SYMBOLS = {"id_magic": "ID magic", "isa_version": "ISA version (major << 16 | minor)",
                 "config_hash": "the profile's config_hash32"}
# Verilog macro prefix of a CSR enum (the spec names err_cause's values DNPU_ERR_<CAUSE>).
ENUM_PREFIX = {"err_cause": "ERR"}

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_UPPER_IDENT = re.compile(r"[A-Z][A-Z0-9_]*\Z")


class CodegenError(Exception):
    """A source table is malformed or inconsistent. The message names file and key."""


def _default_root() -> Path:
    return Path(__file__).resolve().parents[3]


# ----------------------------------------------------------------------------------------
# Loading and validating
# ----------------------------------------------------------------------------------------

class _Errors:
    """Collects every problem so one run reports them all."""

    def __init__(self) -> None:
        self.msgs: list[str] = []

    def add(self, file: str, key: str, msg: str) -> None:
        self.msgs.append(f"{file}: {key}: {msg}")

    def raise_if_any(self) -> None:
        if self.msgs:
            raise CodegenError("\n".join(self.msgs))


_MISSING = object()


def _get(err: _Errors, file: str, key: str, table: dict, name: str, typ: type | tuple,
         default: Any = _MISSING) -> Any:
    """table[name] checked against typ (bool is never an int here)."""
    if name not in table:
        if default is _MISSING:
            err.add(file, key, f"missing {name!r}")
        return None if default is _MISSING else default
    v = table[name]
    types = typ if isinstance(typ, tuple) else (typ,)
    ok = isinstance(v, types) and not (isinstance(v, bool) and bool not in types)
    if not ok:
        want = " or ".join(t.__name__ for t in types)
        err.add(file, key, f"{name} = {v!r}: expected {want}")
        return None if default is _MISSING else default
    return v


def _unknown_keys(err: _Errors, file: str, key: str, table: dict, allowed: tuple[str, ...]) -> None:
    for k in table:
        if k not in allowed:
            err.add(file, key, f"unknown key {k!r} (known: {', '.join(allowed)})")


def _read_toml(root: Path, rel: str) -> tuple[dict, str]:
    path = root / rel
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise CodegenError(f"{rel}: cannot read: {e.strerror}") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as e:
        raise CodegenError(f"{rel}: not valid TOML: {e}") from None


def _header_notes(text: str) -> str:
    """The leading comment block of a TOML file, less its first paragraph (the
    'single source' banner): the conventions the table's entries rely on."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        body = line[1:]
        lines.append(body[1:] if body.startswith(" ") else body)
    paras: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            paras[-1].append(line.rstrip())
        elif paras[-1]:
            paras.append([])
    paras = [p for p in paras if p]
    return "\n\n".join("\n".join(p) for p in paras[1:])


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    signed: bool = False

    @property
    def msb(self) -> int:
        return self.lsb + self.width - 1

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb


@dataclass(frozen=True)
class Operand:
    field: str
    kind: str
    role: str


@dataclass(frozen=True)
class Instr:
    name: str
    opcode: int
    cls: str
    operands: tuple[Operand, ...]
    semantics: str
    used: int


@dataclass(frozen=True)
class Reserved:
    first: int
    last: int
    use: str


@dataclass
class Isa:
    name: str
    version: tuple[int, int]
    word_bits: int
    regs: dict[str, dict[str, Any]]       # kind -> {count, prefix, doc}
    fields: dict[str, Field]
    enums: dict[str, dict[str, int]]
    reserved: list[Reserved]
    instrs: list[Instr]                   # in table order
    notes: str
    file: str = ISA_TOML

    @property
    def version_word(self) -> int:
        return self.version[0] << 16 | self.version[1]

    def kinds(self) -> list[str]:
        return [*self.regs, "imm", "uimm", *self.enums]


def load_isa(root: Path, rel: str = ISA_TOML) -> Isa:
    raw, text = _read_toml(root, rel)
    err = _Errors()
    F = rel
    _unknown_keys(err, F, "top level", raw, ("isa", "regs", "fields", "enums", "reserved", "instr"))

    head = raw.get("isa", {})
    _unknown_keys(err, F, "isa", head, ("name", "version_major", "version_minor", "word_bits"))
    name = _get(err, F, "isa", head, "name", str, "dnpu")
    vmaj = _get(err, F, "isa", head, "version_major", int)
    vmin = _get(err, F, "isa", head, "version_minor", int)
    for k, v in (("version_major", vmaj), ("version_minor", vmin)):
        if v is not None and not 0 <= v <= 0xFFFF:
            err.add(F, f"isa.{k}", f"{v} does not fit 16 bits (ISA_VERSION is major << 16 | minor)")
    word_bits = _get(err, F, "isa", head, "word_bits", int, 32)
    if word_bits != 32:
        err.add(F, "isa.word_bits", f"{word_bits}: only 32-bit instruction words are supported")
        word_bits = 32

    regs: dict[str, dict[str, Any]] = {}
    for rk, rt in raw.get("regs", {}).items():
        key = f"regs.{rk}"
        if not isinstance(rt, dict):
            err.add(F, key, "expected a table")
            continue
        _unknown_keys(err, F, key, rt, ("count", "prefix", "doc"))
        count = _get(err, F, key, rt, "count", int)
        prefix = _get(err, F, key, rt, "prefix", str, rk)
        doc = _get(err, F, key, rt, "doc", str, "")
        if count is not None and count < 1:
            err.add(F, key, f"count = {count}: must be at least 1")
        if not _IDENT.match(rk):
            err.add(F, key, "register file names must be identifiers")
        if prefix != rk:
            err.add(F, key, f"prefix = {prefix!r}: must equal the kind name {rk!r} "
                            "(operands name register files by their prefix)")
        regs[rk] = {"count": count or 1, "prefix": prefix, "doc": doc}
    if not regs:
        err.add(F, "regs", "no register files")

    fields: dict[str, Field] = {}
    for fk, ft in raw.get("fields", {}).items():
        key = f"fields.{fk}"
        if not isinstance(ft, dict):
            err.add(F, key, "expected a table {lsb, width[, signed]}")
            continue
        _unknown_keys(err, F, key, ft, ("lsb", "width", "signed"))
        lsb = _get(err, F, key, ft, "lsb", int)
        width = _get(err, F, key, ft, "width", int)
        signed = _get(err, F, key, ft, "signed", bool, False)
        if not _IDENT.match(fk):
            err.add(F, key, "field names must be identifiers")
        if lsb is None or width is None:
            continue
        if lsb < 0 or width < 1 or lsb + width > word_bits:
            err.add(F, key, f"bits {lsb + width - 1}:{lsb} do not fit a {word_bits}-bit word")
            continue
        fields[fk] = Field(fk, lsb, width, signed)
    if "opcode" not in fields:
        err.add(F, "fields.opcode", "missing: every instruction needs an opcode field")
    elif fields["opcode"].signed:
        err.add(F, "fields.opcode", "the opcode field cannot be signed")

    enums: dict[str, dict[str, int]] = {}
    for en, et in raw.get("enums", {}).items():
        enums[en] = _load_enum(err, F, en, et)
        if en in regs or en in ("imm", "uimm"):
            err.add(F, f"enums.{en}", "an enum cannot share its name with an operand kind")

    op_w = fields["opcode"].width if "opcode" in fields else 7
    reserved: list[Reserved] = []
    rlist = raw.get("reserved", [])
    if not isinstance(rlist, list):
        err.add(F, "reserved", "expected [[reserved]] entries")
        rlist = []
    for i, rt in enumerate(rlist):
        key = f"reserved[{i}]"
        _unknown_keys(err, F, key, rt, ("first", "last", "use"))
        first = _get(err, F, key, rt, "first", int)
        last = _get(err, F, key, rt, "last", int)
        use = _get(err, F, key, rt, "use", str)
        if first is None or last is None or use is None:
            continue
        if not 0 <= first <= last < (1 << op_w):
            err.add(F, key, f"range 0x{first:02X}..0x{last:02X} is empty or beyond the "
                            f"{op_w}-bit opcode field")
            continue
        for other in reserved:
            if first <= other.last and other.first <= last:
                err.add(F, key, f"range 0x{first:02X}..0x{last:02X} overlaps reserved range "
                                f"0x{other.first:02X}..0x{other.last:02X}")
        reserved.append(Reserved(first, last, use))

    kinds = [*regs, "imm", "uimm", *enums]
    instrs: list[Instr] = []
    names: dict[str, str] = {}
    opcodes: dict[int, str] = {}
    ilist = raw.get("instr", [])
    if not isinstance(ilist, list):
        err.add(F, "instr", "expected [[instr]] entries")
        ilist = []
    for i, it in enumerate(ilist):
        iname = it.get("name") if isinstance(it.get("name"), str) else f"#{i}"
        key = f"instr {iname}"
        _unknown_keys(err, F, key, it, ("name", "opcode", "class", "operands", "semantics"))
        nm = _get(err, F, key, it, "name", str)
        opc = _get(err, F, key, it, "opcode", int)
        cls = _get(err, F, key, it, "class", str)
        ops = _get(err, F, key, it, "operands", list)
        sem = _get(err, F, key, it, "semantics", str)
        if nm is None or opc is None or cls is None or ops is None or sem is None:
            continue
        if not _UPPER_IDENT.match(nm):
            err.add(F, key, "names are upper-case identifiers (A-Z, 0-9, _)")
        if nm in names:
            err.add(F, key, "duplicate instruction name")
        names[nm] = nm
        if cls not in CLASSES:
            err.add(F, f"{key}.class", f"unknown class {cls!r} (known: {', '.join(CLASSES)}; "
                                       "a new class goes into dnpu.codegen.CLASSES)")
        if not 0 <= opc < (1 << op_w):
            err.add(F, f"{key}.opcode", f"0x{opc:X} does not fit the {op_w}-bit opcode field")
        else:
            if opc in opcodes:
                err.add(F, f"{key}.opcode", f"0x{opc:02X} already used by {opcodes[opc]}")
            else:
                opcodes[opc] = nm
            for r in reserved:
                if r.first <= opc <= r.last:
                    err.add(F, f"{key}.opcode", f"0x{opc:02X} lies in reserved range "
                                                f"0x{r.first:02X}..0x{r.last:02X} ({r.use})")
        operands: list[Operand] = []
        used_by: dict[str, str] = {}
        claimed: list[tuple[str, Field]] = [("opcode", fields["opcode"])] if "opcode" in fields else []
        for j, spec in enumerate(ops):
            okey = f"{key}.operands[{j}]"
            if not isinstance(spec, str) or not 2 <= len(spec.split(":")) <= 3:
                err.add(F, okey, f"{spec!r}: expected \"field:kind[:role]\"")
                continue
            parts = spec.split(":")
            fname, kind = parts[0], parts[1]
            role = parts[2] if len(parts) == 3 else fname
            if fname not in fields:
                err.add(F, okey, f"{spec!r}: unknown field {fname!r} (known: {', '.join(fields)})")
                continue
            if fname == "opcode":
                err.add(F, okey, f"{spec!r}: the opcode field cannot hold an operand")
                continue
            if kind not in kinds:
                err.add(F, okey, f"{spec!r}: unknown operand kind {kind!r} (known: {', '.join(kinds)})")
                continue
            if not _IDENT.match(role):
                err.add(F, okey, f"{spec!r}: role {role!r} is not an identifier")
            if fname in used_by:
                err.add(F, okey, f"{spec!r}: field {fname} already holds operand {used_by[fname]}")
                continue
            if role in used_by.values():
                err.add(F, okey, f"{spec!r}: two operands named {role!r}")
            used_by[fname] = role
            f = fields[fname]
            for oname, of in claimed:
                if f.lsb <= of.msb and of.lsb <= f.msb:
                    lo, hi = max(f.lsb, of.lsb), min(f.msb, of.msb)
                    err.add(F, okey, f"{spec!r}: field {fname} [{f.msb}:{f.lsb}] overlaps field "
                                     f"{oname} [{of.msb}:{of.lsb}] in bits {hi}:{lo}")
            claimed.append((fname, f))
            _check_kind(err, F, okey, spec, f, kind, regs, enums)
            if not re.search(rf"(?<![A-Za-z0-9_]){re.escape(role)}(?![A-Za-z0-9_])", sem):
                err.add(F, okey, f"{spec!r}: operand {role!r} does not appear in the semantics "
                                 "line (give the role it has there as field:kind:role)")
            operands.append(Operand(fname, kind, role))
        # The bits a valid instruction can set: the opcode, each enum/immediate field whole,
        # and of a register field only the bits a register number needs (f0..f7 in a 4-bit
        # field leaves its top bit unused, so a word naming "f8" is illegal like any other).
        used = fields["opcode"].mask if "opcode" in fields else 0
        for o in operands:
            f = fields[o.field]
            bits = _reg_bits(regs[o.kind]["count"]) if o.kind in regs else f.width
            used |= ((1 << min(bits, f.width)) - 1) << f.lsb
        instrs.append(Instr(nm, opc, cls, tuple(operands), sem, used))

    err.raise_if_any()
    return Isa(name=name, version=(vmaj, vmin), word_bits=word_bits, regs=regs, fields=fields,
               enums=enums, reserved=reserved, instrs=instrs, notes=_header_notes(text), file=rel)


def _reg_bits(count: int) -> int:
    """Bits a register number needs in a register file of count registers."""
    return max(1, (count - 1).bit_length())


def _check_kind(err: _Errors, F: str, okey: str, spec: str, f: Field, kind: str,
                regs: dict, enums: dict) -> None:
    if kind in regs:
        n = regs[kind]["count"]
        if f.signed:
            err.add(F, okey, f"{spec!r}: a register operand cannot live in signed field {f.name}")
        if _reg_bits(n) > f.width:
            err.add(F, okey, f"{spec!r}: field {f.name} ({f.width} bits) cannot hold "
                             f"{kind}{n - 1} (regs.{kind}.count = {n})")
    elif kind == "imm":
        if not f.signed:
            err.add(F, okey, f"{spec!r}: kind imm needs a signed field; {f.name} is unsigned "
                             "(use uimm, or signed = true)")
    elif kind == "uimm":
        if f.signed:
            err.add(F, okey, f"{spec!r}: kind uimm needs an unsigned field; {f.name} is signed")
    else:
        vals = enums[kind].values()
        if f.signed:
            err.add(F, okey, f"{spec!r}: an enum operand cannot live in signed field {f.name}")
        if vals and max(vals).bit_length() > f.width:
            err.add(F, okey, f"{spec!r}: field {f.name} ({f.width} bits) cannot hold enum "
                             f"{kind} value {max(vals)}")


def _load_enum(err: _Errors, F: str, en: str, et: Any) -> dict[str, int]:
    """An enum table: NAME = value or NAME = { value = v, doc = "..." }. Returns name -> value
    (load_csr picks the docs up itself)."""
    key = f"enums.{en}"
    out: dict[str, int] = {}
    if not isinstance(et, dict) or not et:
        err.add(F, key, "expected a non-empty table of NAME = value")
        return out
    if not _IDENT.match(en):
        err.add(F, key, "enum names must be identifiers")
    seen: dict[int, str] = {}
    for vn, vv in et.items():
        vkey = f"{key}.{vn}"
        if isinstance(vv, dict):
            _unknown_keys(err, F, vkey, vv, ("value", "doc"))
            _get(err, F, vkey, vv, "doc", str, "")
            vv = _get(err, F, vkey, vv, "value", int)
            if vv is None:
                continue
        if not isinstance(vv, int) or isinstance(vv, bool):
            err.add(F, vkey, f"{vv!r}: expected an integer value")
            continue
        if not _IDENT.match(vn):
            err.add(F, vkey, "enum value names must be identifiers")
        if vv < 0:
            err.add(F, vkey, f"{vv}: enum values are unsigned")
            continue
        if vv in seen:
            err.add(F, vkey, f"value {vv} already used by {seen[vv]}")
        seen[vv] = vn
        out[vn] = vv
    return out


@dataclass(frozen=True)
class CsrField:
    name: str
    lsb: int
    width: int
    doc: str


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


def load_csr(root: Path, rel: str = CSR_TOML) -> Csr:
    raw, text = _read_toml(root, rel)
    err = _Errors()
    F = rel
    _unknown_keys(err, F, "top level", raw, ("csr", "reg", "enums"))
    head = raw.get("csr", {})
    _unknown_keys(err, F, "csr", head, ("data_width", "addr_width", "id_magic"))
    dw = _get(err, F, "csr", head, "data_width", int, 32)
    aw = _get(err, F, "csr", head, "addr_width", int)
    magic = _get(err, F, "csr", head, "id_magic", int)
    if dw != 32:
        err.add(F, "csr.data_width", f"{dw}: only 32-bit registers are supported")
        dw = 32
    if aw is not None and not 3 <= aw <= 32:
        err.add(F, "csr.addr_width", f"{aw}: expected 3..32")
        aw = None
    if magic is not None and not 0 <= magic < (1 << dw):
        err.add(F, "csr.id_magic", f"0x{magic:X} does not fit {dw} bits")

    enums: dict[str, list[tuple[str, int, str]]] = {}
    for en, et in raw.get("enums", {}).items():
        vals = _load_enum(err, F, en, et)
        docs = {k: (v.get("doc", "") if isinstance(v, dict) else "") for k, v in et.items()} \
            if isinstance(et, dict) else {}
        enums[en] = [(k, v, docs.get(k, "")) for k, v in vals.items()]
        for k, v in vals.items():
            if v >= (1 << dw):
                err.add(F, f"enums.{en}.{k}", f"value {v} does not fit a {dw}-bit register")

    regs: list[Reg] = []
    words: dict[int, str] = {}
    names: set[str] = set()
    rlist = raw.get("reg", [])
    if not isinstance(rlist, list):
        err.add(F, "reg", "expected [[reg]] entries")
        rlist = []
    for i, rt in enumerate(rlist):
        rname = rt.get("name") if isinstance(rt.get("name"), str) else f"#{i}"
        key = f"reg {rname}"
        _unknown_keys(err, F, key, rt, ("name", "offset", "access", "reset", "doc", "fields",
                                       "width", "count", "counter", "enum"))
        nm = _get(err, F, key, rt, "name", str)
        off = _get(err, F, key, rt, "offset", int)
        acc = _get(err, F, key, rt, "access", str)
        width = _get(err, F, key, rt, "width", int, 32)
        count = _get(err, F, key, rt, "count", int, 1)
        counter = _get(err, F, key, rt, "counter", bool, False)
        reset = _get(err, F, key, rt, "reset", (int, str), 0)
        enum = _get(err, F, key, rt, "enum", str, None)
        doc = _get(err, F, key, rt, "doc", str, "")
        flist = _get(err, F, key, rt, "fields", list, [])
        if nm is None or off is None or acc is None:
            continue
        if not _UPPER_IDENT.match(nm):
            err.add(F, key, "names are upper-case identifiers (A-Z, 0-9, _)")
        if nm in names:
            err.add(F, key, "duplicate register name")
        names.add(nm)
        if acc not in ACCESS:
            err.add(F, f"{key}.access", f"{acc!r}: expected one of {', '.join(ACCESS)}")
        if width not in (32, 64):
            err.add(F, f"{key}.width", f"{width}: expected 32 or 64")
            width = 32
        if count < 1:
            err.add(F, f"{key}.count", f"{count}: must be at least 1")
            count = 1
        if count > 1 and width != 32:
            err.add(F, key, "an array of 64-bit registers is not supported")
        if count > 1 and re.search(r"\d\Z", nm):
            err.add(F, key, "an array's name cannot end in a digit (elements are NAME0, NAME1, ...)")
        if isinstance(reset, str) and reset not in RESET_SYMBOLS:
            err.add(F, f"{key}.reset", f"{reset!r}: expected an integer or one of "
                                       f"{', '.join(RESET_SYMBOLS)}")
        elif isinstance(reset, int) and not 0 <= reset < (1 << width):
            err.add(F, f"{key}.reset", f"{reset}: does not fit {width} bits")
        if enum is not None and enum not in enums:
            err.add(F, f"{key}.enum", f"unknown enum {enum!r} (known: {', '.join(enums) or 'none'})")
        align = dw // 8
        if off % align:
            err.add(F, f"{key}.offset", f"0x{off:X} is not {align}-byte aligned")
        nwords = count * width // 32
        end = off + nwords * align
        if aw is not None and (off < 0 or end > (1 << aw)):
            err.add(F, f"{key}.offset", f"0x{off:X}..0x{end - 1:X} lies beyond the {aw}-bit "
                                        f"address space (0x{(1 << aw) - 1:X})")
        for w in range(nwords):
            a = off + w * align
            if width == 64:
                label = f"{nm}_{'LO' if w == 0 else 'HI'}"
            elif count > 1:
                label = f"{nm}{w}"
            else:
                label = nm
            if a in words:
                err.add(F, f"{key}.offset", f"{label} at 0x{a:03X} overlaps {words[a]}")
            else:
                words[a] = label
        fields: list[CsrField] = []
        for j, ft in enumerate(flist):
            fkey = f"{key}.fields[{j}]"
            if not isinstance(ft, dict):
                err.add(F, fkey, "expected { name, lsb, width, doc }")
                continue
            _unknown_keys(err, F, fkey, ft, ("name", "lsb", "width", "doc"))
            fn = _get(err, F, fkey, ft, "name", str)
            fl = _get(err, F, fkey, ft, "lsb", int)
            fw = _get(err, F, fkey, ft, "width", int, 1)
            fd = _get(err, F, fkey, ft, "doc", str, "")
            if fn is None or fl is None:
                continue
            fkey = f"{key}.fields.{fn}"
            if not _UPPER_IDENT.match(fn):
                err.add(F, fkey, "field names are upper-case identifiers")
            if fl < 0 or fw < 1 or fl + fw > dw:
                err.add(F, fkey, f"bits {fl + fw - 1}:{fl} lie beyond bit {dw - 1}")
                continue
            for o in fields:
                if o.name == fn:
                    err.add(F, fkey, "duplicate field name")
                if fl <= o.lsb + o.width - 1 and o.lsb <= fl + fw - 1:
                    err.add(F, fkey, f"bits {fl + fw - 1}:{fl} overlap field {o.name}")
            fields.append(CsrField(fn, fl, fw, fd))
        regs.append(Reg(nm, off, acc, width, count, counter, reset, enum, doc, tuple(fields)))

    err.raise_if_any()
    return Csr(data_width=dw, addr_width=aw, id_magic=magic, regs=regs, enums=enums,
               notes=_header_notes(text), file=rel)


def cross_check(isa: Isa, csr: Csr, profiles: list["Profile"] = ()) -> None:
    """Checks that span tables: S_LD_ARG's argi field indexes exactly the ARG registers,
    and every profile's MX formats are ones the ISA can encode."""
    err = _Errors()
    ld = next((i for i in isa.instrs if i.name == "S_LD_ARG"), None)
    arg = csr.reg("ARG")
    if ld is None:
        err.add(isa.file, "instr S_LD_ARG", "missing (it reads the ARG registers)")
    elif arg is None:
        err.add(csr.file, "reg ARG", "missing (S_LD_ARG reads it)")
    else:
        op = next((o for o in ld.operands if o.field == "argi"), None)
        if op is None:
            err.add(isa.file, "instr S_LD_ARG.operands", "has no operand in field argi")
        else:
            w = isa.fields["argi"].width
            if 2 ** w != arg.count:
                err.add(isa.file, "fields.argi",
                        f"width {w} indexes {2 ** w} argument registers, but {csr.file}: "
                        f"reg ARG has count = {arg.count} (2**width must equal count)")
    fmts = isa.enums.get("mxfmt", {})
    for p in profiles:
        v = p.flat.get("MX_FORMATS")
        if isinstance(v, list):
            bad = [x for x in v if x not in fmts]
            if bad:
                err.add(p.file, "[mx] formats", f"{bad} not in {isa.file} enums.mxfmt "
                                                f"({', '.join(fmts)})")
    err.raise_if_any()


# ----------------------------------------------------------------------------------------
# Hardware profiles (through dnpu.spec.config)
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Profile:
    name: str
    file: str            # repo-relative path of its TOML
    flat: dict[str, Any]
    config_hash: str
    config_hash32: int


@contextlib.contextmanager
def _hw_dir_env(hw: Path) -> Iterator[None]:
    old = os.environ.get("DNPU_HW_DIR")
    os.environ["DNPU_HW_DIR"] = str(hw)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("DNPU_HW_DIR", None)
        else:
            os.environ["DNPU_HW_DIR"] = old


def load_profiles(root: Path) -> list[Profile]:
    """Every profile in <root>/hw/config, loaded by dnpu.spec.config (pointed at root's hw/)."""
    from dnpu.spec import config

    out = []
    with _hw_dir_env(root / "hw"):
        try:
            names = config.profiles()
            for name in names:
                cfg = config.load(name)
                p = Path(getattr(cfg, "path", "") or root / CONFIG_DIR / f"{name}.toml")
                try:
                    rel = p.resolve().relative_to(root.resolve()).as_posix()
                except ValueError:
                    rel = f"{CONFIG_DIR}/{name}.toml"
                out.append(Profile(name, rel, dict(cfg.flat()), str(cfg.config_hash),
                                   int(cfg.config_hash32)))
        except CodegenError:
            raise
        except Exception as e:  # a ConfigError names its file and key already
            raise CodegenError(f"hardware profile: {e}") from e
    return out


# ----------------------------------------------------------------------------------------
# Emitters
# ----------------------------------------------------------------------------------------

def _banner(sources: str, c: str) -> str:
    return f"{c} generated by dnpu.codegen from {sources}; do not edit\n"


class _Defines:
    """Verilog `define lines, refusing a macro defined twice."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: list[str] = []
        self.names: set[str] = set()
        self.width = 40

    def define(self, name: str, value: Any, comment: str = "") -> None:
        if name in self.names:
            raise CodegenError(f"{self.file}: macro {name} would be defined twice "
                               "(two table entries map to the same name)")
        self.names.add(name)
        line = f"`define {name:<{self.width}} {value}"
        if comment:
            line += f"  // {comment}"
        self.lines.append(line.rstrip())

    def comment(self, text: str = "") -> None:
        self.lines.append(f"// {text}".rstrip() if text else "")


def _one_line(s: str) -> str:
    return " ".join(s.split())


def _hex(width: int, v: int) -> str:
    return f"{width}'h{v:0{(width + 3) // 4}X}"


def emit_isa_vh(isa: Isa) -> str:
    d = _Defines(f"{RTL_GEN}/dnpu_isa.vh")
    d.comment(f"{isa.name} ISA {isa.version[0]}.{isa.version[1]}: opcodes, instruction fields, "
              "used-bit masks, enums.")
    d.comment()
    d.define("DNPU_ISA_VERSION", _hex(32, isa.version_word), "major << 16 | minor")
    d.define("DNPU_ISA_VERSION_MAJOR", isa.version[0])
    d.define("DNPU_ISA_VERSION_MINOR", isa.version[1])
    d.define("DNPU_ISA_WORD_BITS", isa.word_bits)
    d.comment()
    d.comment("Register files")
    for k, r in isa.regs.items():
        d.define(f"DNPU_NREGS_{k.upper()}", r["count"], _one_line(r["doc"]))
    d.comment()
    d.comment("Instruction word fields: bits [LSB + W - 1 : LSB]")
    for f in isa.fields.values():
        sg = ", signed" if f.signed else ""
        d.define(f"DNPU_F_{f.name.upper()}_LSB", f.lsb, f"[{f.msb}:{f.lsb}]{sg}")
        d.define(f"DNPU_F_{f.name.upper()}_W", f.width)
    for en, vals in isa.enums.items():
        w = max(1, max(vals.values()).bit_length())
        for fname in {o.field for i in isa.instrs for o in i.operands if o.kind == en}:
            w = max(w, isa.fields[fname].width)
        d.comment()
        d.comment(f"enum {en}")
        d.define(f"DNPU_{en.upper()}_W", w)
        if sorted(vals.values()) == list(range(len(vals))):
            d.define(f"DNPU_{en.upper()}_COUNT", len(vals), f"values 0..{len(vals) - 1}; others are illegal")
        for vn, v in vals.items():
            d.define(f"DNPU_{en.upper()}_{vn.upper()}", f"{w}'d{v}")
    opw = isa.fields["opcode"].width
    for cls in CLASSES:
        ins = [i for i in isa.instrs if i.cls == cls]
        if not ins:
            continue
        d.comment()
        d.comment(f"Opcodes: {cls}")
        for i in ins:
            d.define(f"DNPU_OP_{i.name}", _hex(opw, i.opcode), _asm_syntax(i))
    d.comment()
    d.comment("Reserved opcode ranges (decode as ILLEGAL_INSTR until assigned)")
    for r in isa.reserved:
        d.comment(f"  {_hex(opw, r.first)} .. {_hex(opw, r.last)}  {_one_line(r.use)}")
    d.comment()
    d.comment("Bits each instruction uses (opcode and operand fields); a word with a bit set")
    d.comment("outside its instruction's mask is illegal (fault ILLEGAL_INSTR).")
    for cls in CLASSES:
        for i in isa.instrs:
            if i.cls == cls:
                d.define(f"DNPU_USED_{i.name}", _hex(32, i.used))
    guard = "DNPU_ISA_VH"
    return (_banner(isa.file, "//") + f"`ifndef {guard}\n`define {guard}\n\n"
            + "\n".join(d.lines) + "\n\n`endif // " + guard + "\n")


def _enum_prefix(en: str) -> str:
    return ENUM_PREFIX.get(en, en.upper())


def emit_csr_vh(csr: Csr) -> str:
    d = _Defines(f"{RTL_GEN}/dnpu_csr.vh")
    aw = csr.addr_width
    d.comment("Control/status registers (AXI4-Lite slave): byte offsets, field bits, error causes.")
    d.comment("A 64-bit counter is two words, _LO at the offset and _HI at offset + 4; reading _LO")
    d.comment("latches _HI so LO-then-HI reads are consistent.")
    d.comment()
    d.define("DNPU_CSR_DATA_W", csr.data_width)
    d.define("DNPU_CSR_ADDR_W", aw)
    d.define("DNPU_ID_MAGIC", _hex(32, csr.id_magic), _magic_ascii(csr.id_magic))
    d.comment()
    d.comment("Register offsets")
    for r in csr.regs:
        note = f"{r.access}: {_one_line(r.doc)}"
        if r.width == 64:
            d.define(f"DNPU_CSR_{r.name}_LO", _hex(aw, r.offset), note)
            d.define(f"DNPU_CSR_{r.name}_HI", _hex(aw, r.offset + 4))
        elif r.count > 1:
            for k in range(r.count):
                d.define(f"DNPU_CSR_{r.name}{k}", _hex(aw, r.offset + 4 * k), note if k == 0 else "")
            d.define(f"DNPU_CSR_{r.name}_COUNT", r.count)
        else:
            d.define(f"DNPU_CSR_{r.name}", _hex(aw, r.offset), note)
    freg = [r for r in csr.regs if r.fields]
    if freg:
        d.comment()
        d.comment("Register fields: bit position (and width when wider than 1)")
        for r in freg:
            for f in r.fields:
                d.define(f"DNPU_CSR_{r.name}_{f.name}_BIT", f.lsb, _one_line(f.doc))
                if f.width > 1:
                    d.define(f"DNPU_CSR_{r.name}_{f.name}_W", f.width)
    for en, vals in csr.enums.items():
        pre = _enum_prefix(en)
        w = max(1, max(v for _, v, _ in vals).bit_length())
        d.comment()
        d.comment(f"enum {en}" + "".join(f" (register {r.name})" for r in csr.regs if r.enum == en))
        d.define(f"DNPU_{pre}_W", w)
        for vn, v, doc in vals:
            d.define(f"DNPU_{pre}_{vn.upper()}", f"{w}'d{v}", _one_line(doc))
    guard = "DNPU_CSR_VH"
    return (_banner(csr.file, "//") + f"`ifndef {guard}\n`define {guard}\n\n"
            + "\n".join(d.lines) + "\n\n`endif // " + guard + "\n")


def _magic_ascii(v: int) -> str:
    b = v.to_bytes(4, "big")
    return f'"{b.decode("ascii")}"' if all(32 <= c < 127 for c in b) else ""


def profile_vh_name(profile: str) -> str:
    return f"dnpu_cfg_{profile.replace('-', '_')}.vh"


def emit_cfg_vh(p: Profile) -> str:
    tag = re.sub(r"[^A-Za-z0-9]", "_", p.name).upper()
    d = _Defines(f"{RTL_GEN}/{profile_vh_name(p.name)}")
    d.comment(f"Hardware profile {p.name!r}: every integer/boolean parameter; strings, lists and")
    d.comment("non-integer numbers are listed as comments. Include exactly one dnpu_cfg_*.vh.")
    d.comment()
    d.define("DNPU_CFG_VH", "")
    d.define(f"DNPU_CFG_PROFILE_{tag}", 1)
    d.define("DNPU_CFG_HASH32", _hex(32, p.config_hash32), "CSR CONFIG_HASH")
    d.comment(f"config_hash = {p.config_hash}")
    d.comment()
    for key in sorted(p.flat):
        v = p.flat[key]
        mname = "DNPU_CFG_" + re.sub(r"[^A-Za-z0-9_]", "_", key).upper()
        if isinstance(v, bool):
            d.define(mname, int(v))
        elif isinstance(v, int):
            d.define(mname, v)
        else:
            if isinstance(v, tuple):
                v = list(v)
            d.comment(f"{mname} = {json.dumps(v, ensure_ascii=True)}")
    guard = f"DNPU_CFG_{tag}_VH"
    return (_banner(f"{p.file} (through dnpu.spec.config)", "//") + f"`ifndef {guard}\n`define {guard}\n"
            + "`ifdef DNPU_CFG_VH\n"
              "  // Another profile header was included first and these macros would silently\n"
              "  // redefine its values: the next line is a deliberate syntax error.\n"
              "  ERROR__two_dnpu_cfg_headers_included ERROR__two_dnpu_cfg_headers_included;\n"
              "`endif\n\n"
            + "\n".join(d.lines) + "\n\n`endif // " + guard + "\n")


# ---- PYNQ hardware handoff (.hwh) -----------------------------------------------------------

HWH_INSTANCE = "dnpu_0"         # the NPU's instance name in the block design (ip_dict key)
HWH_WINDOW = 0x1_0000           # bytes of the AXI4-Lite window the address editor assigns
# The processing system of each FPGA family, by part-number prefix: PYNQ's HWH parser
# finds the PS module by MODTYPE and reads its PL clock parameters; the NPU's registers sit
# on the PS's first general-purpose master port, its AXI4 master on a high-performance
# slave port into the PS DDR (physical addresses).
PS_FAMILIES = {
    "xc7z": {"arch": "zynq", "modtype": "processing_system7", "vlnv": "xilinx.com:ip:processing_system7:5.5",
             "master": "M_AXI_GP0", "base": 0x4000_0000, "hp": "S_AXI_HP0", "pll_mhz": 1000.0,
             "div": "PCW_FCLK{i}_PERIPHERAL_DIVISOR{j}", "enable": "PCW_FPGA_FCLK{i}_ENABLE",
             "freq": "PCW_FPGA{i}_PERIPHERAL_FREQMHZ"},
    "xczu": {"arch": "zynquplus", "modtype": "zynq_ultra_ps_e", "vlnv": "xilinx.com:ip:zynq_ultra_ps_e:3.3",
             "master": "M_AXI_HPM0_FPD", "base": 0xA000_0000, "hp": "S_AXI_HP0_FPD", "pll_mhz": 1500.0,
             "div": "PSU__CRL_APB__PL{i}_REF_CTRL__DIVISOR{j}", "enable": "PSU__FPGA_PL{i}_ENABLE",
             "freq": "PSU__CRL_APB__PL{i}_REF_CTRL__FREQMHZ"},
}
_HWH_ACCESS = {"ro": "read-only", "rw": "read-write", "wo": "write-only", "w1p": "write-only"}


def _xml(v: Any) -> str:
    return (str(v).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _csr_words(csr: Csr) -> list[tuple[str, int, Reg]]:
    """(word name, byte offset, register) of every 32-bit word, as dnpu.spec.csr names them."""
    out = []
    for r in csr.regs:
        for k in range(r.count):
            base = f"{r.name}{k}" if r.count > 1 else r.name
            if r.width == 64:
                out += [(f"{base}_LO", r.offset + 8 * k, r), (f"{base}_HI", r.offset + 8 * k + 4, r)]
            else:
                out.append((base, r.offset + 4 * k, r))
    return out


def _divisors(pll_mhz: float, f_mhz: float) -> tuple[int, int]:
    """The PL clock divisor pair (each 1..63) whose frequency is closest to f_mhz."""
    best = min(((abs(pll_mhz / (a * b) - f_mhz), a, b) for a in range(1, 64) for b in range(1, 64)))
    return best[1], best[2]


def emit_hwh(p: Profile, csr: Csr, isa: Isa, family: str | None = None) -> str:
    """The .hwh PYNQ's Overlay parses for a board build of profile p: the PS (with its PL
    clock 0 at the profile's f_clk_mhz) and the NPU, whose AXI4-Lite window and register map
    (from hw/csr.toml) become ip_dict["dnpu_0"]. family: a key of PS_FAMILIES (default: from
    the profile's part)."""
    part = p.flat.get("PROFILE_PART") or ""
    if family is None:
        family = next((k for k in PS_FAMILIES if part.startswith(k)), None)
        if family is None:
            raise CodegenError(f"{p.file}: profile.part {part!r}: no processing system known for it "
                               f"(known part prefixes: {', '.join(PS_FAMILIES)})")
    ps = PS_FAMILIES[family]
    f_mhz = float(p.flat["CLOCK_F_CLK_MHZ"])
    d0, d1 = _divisors(ps["pll_mhz"], f_mhz)
    window = max(HWH_WINDOW, 1 << csr.addr_width)
    base = ps["base"]
    L = [f"<!-- {_banner(f'{csr.file} and {p.file}', '').strip()} -->",
         "<!-- The NPU's part of a Vivado hardware handoff: what dnpu.runtime's pynq backend and "
         "PYNQ's Overlay read. A Vivado build of the board writes the full file next to dnpu.bit. -->",
         f'<EDKSYSTEM EDWVERSION="1.2" VIVADOVERSION="2022.1">',
         f'  <SYSTEMINFO ARCH="{ps["arch"]}" BOARD="{_xml(p.name)}" DEVICE="{_xml(part)}" NAME="dnpu"/>',
         "  <EXTERNALPORTS/>",
         "  <MODULES>"]
    params = {"DNPU_PROFILE": p.name, "CONFIG_HASH": p.config_hash, "CONFIG_HASH32": f"0x{p.config_hash32:08X}",
              "ISA_VERSION": f"0x{isa.version_word:08X}", "CSR_ID": f"0x{csr.id_magic:08X}",
              "C_S_AXIL_ADDR_WIDTH": csr.addr_width, "C_S_AXIL_DATA_WIDTH": csr.data_width,
              "C_M_AXI_ADDR_WIDTH": p.flat["AXI_ADDR_WIDTH"], "C_M_AXI_DATA_WIDTH": p.flat["AXI_DATA_WIDTH"],
              "C_M_AXI_ID_WIDTH": p.flat["AXI_ID_WIDTH"], "FREQ_MHZ": f"{f_mhz:g}"}
    L.append(f'    <MODULE FULLNAME="/{HWH_INSTANCE}" INSTANCE="{HWH_INSTANCE}" MODTYPE="dnpu_top" '
             f'VLNV="dnpu:npu:dnpu_top:{isa.version[0]}.{isa.version[1]}">')
    L.append("      <PARAMETERS>")
    L += [f'        <PARAMETER NAME="{k}" VALUE="{_xml(v)}"/>' for k, v in params.items()]
    L.append("      </PARAMETERS>")
    L.append("      <MEMORYMAP/>")
    L.append("      <REGISTERS>")
    for name, off, r in _csr_words(csr):
        acc = _HWH_ACCESS[r.access]
        L.append(f'        <REGISTER NAME="{name}">')
        L += [f'          <PROPERTY NAME="DESCRIPTION" VALUE="{_xml(_one_line(r.doc))}"/>',
              f'          <PROPERTY NAME="ADDRESS_OFFSET" VALUE="0x{off:X}"/>',
              '          <PROPERTY NAME="SIZE" VALUE="32"/>',
              f'          <PROPERTY NAME="ACCESS" VALUE="{acc}"/>']
        if r.fields:
            L.append("          <FIELDS>")
            for f in r.fields:
                L += [f'            <FIELD NAME="{f.name}">',
                      f'              <PROPERTY NAME="DESCRIPTION" VALUE="{_xml(_one_line(f.doc))}"/>',
                      f'              <PROPERTY NAME="ACCESS" VALUE="{acc}"/>',
                      f'              <PROPERTY NAME="BIT_OFFSET" VALUE="{f.lsb}"/>',
                      f'              <PROPERTY NAME="BIT_WIDTH" VALUE="{f.width}"/>',
                      "            </FIELD>"]
            L.append("          </FIELDS>")
        L.append("        </REGISTER>")
    L.append("      </REGISTERS>")
    L.append("      <BUSINTERFACES>")
    L.append('        <BUSINTERFACE BUSNAME="ps_gp0_to_dnpu" NAME="s_axil" TYPE="SLAVE" VLNV="xilinx.com:interface:aximm:1.0"/>')
    L.append('        <BUSINTERFACE BUSNAME="dnpu_to_ps_hp0" NAME="m_axi" TYPE="MASTER" VLNV="xilinx.com:interface:aximm:1.0"/>')
    L.append("      </BUSINTERFACES>")
    L.append("    </MODULE>")
    ps_name = ps["modtype"] + "_0"
    L.append(f'    <MODULE FULLNAME="/{ps_name}" INSTANCE="{ps_name}" MODTYPE="{ps["modtype"]}" VLNV="{ps["vlnv"]}">')
    L.append("      <PARAMETERS>")
    for i in range(4):
        on = i == 0
        a, b = (d0, d1) if on else (1, 1)
        L.append(f'        <PARAMETER NAME="{ps["enable"].format(i=i)}" VALUE="{int(on)}"/>')
        L.append(f'        <PARAMETER NAME="{ps["div"].format(i=i, j=0)}" VALUE="{a}"/>')
        L.append(f'        <PARAMETER NAME="{ps["div"].format(i=i, j=1)}" VALUE="{b}"/>')
        if on:
            L.append(f'        <PARAMETER NAME="{ps["freq"].format(i=i)}" VALUE="{ps["pll_mhz"] / (a * b):g}"/>')
    L.append("      </PARAMETERS>")
    L.append("      <MEMORYMAP>")
    L.append(f'        <MEMRANGE ADDRESSBLOCK="reg0" BASENAME="C_BASEADDR" BASEVALUE="0x{base:08X}" '
             f'HIGHNAME="C_HIGHADDR" HIGHVALUE="0x{base + window - 1:08X}" INSTANCE="{HWH_INSTANCE}" '
             f'IS_DATA="TRUE" MASTERBUSINTERFACE="{ps["master"]}" MEMTYPE="REGISTER" SLAVEBUSINTERFACE="s_axil"/>')
    L.append("      </MEMORYMAP>")
    L.append("      <BUSINTERFACES>")
    L.append(f'        <BUSINTERFACE BUSNAME="ps_gp0_to_dnpu" NAME="{ps["master"]}" TYPE="MASTER" '
             f'VLNV="xilinx.com:interface:aximm:1.0"/>')
    L.append(f'        <BUSINTERFACE BUSNAME="dnpu_to_ps_hp0" NAME="{ps["hp"]}" TYPE="SLAVE" '
             f'VLNV="xilinx.com:interface:aximm:1.0"/>')
    L.append("      </BUSINTERFACES>")
    L.append("    </MODULE>")
    L.append("  </MODULES>")
    L.append("</EDKSYSTEM>")
    return "\n".join(L) + "\n"


def hwh_text(profile: str, root: Path | str | None = None, family: str | None = None) -> str:
    """emit_hwh for one profile by name (a profile without a part, e.g. sim, needs family:
    the stand-in board of the tests uses "xc7z")."""
    root = Path(root) if root is not None else _default_root()
    p = next((x for x in load_profiles(root) if x.name == profile), None)
    if p is None:
        raise CodegenError(f"no hardware profile {profile!r} under {root / CONFIG_DIR}")
    return emit_hwh(p, load_csr(root), load_isa(root), family)


# ---- Python literals ---------------------------------------------------------------------

class _Hex(int):
    """An int printed as 0x%0*X in a generated Python table."""

    def __new__(cls, v: int, digits: int = 2) -> "_Hex":
        o = super().__new__(cls, v)
        o.digits = digits
        return o


def _py(obj: Any, indent: int = 0, width: int = 100) -> str:
    if isinstance(obj, _Hex):
        return f"0x{int(obj):0{obj.digits}X}"
    if isinstance(obj, (bool, int, float, str)) or obj is None:
        return repr(obj)
    pad = " " * (indent + 4)
    if isinstance(obj, dict):
        items = [f"{k!r}: {_py(v, indent + 4, width)}" for k, v in obj.items()]
        flat = "{" + ", ".join(items) + "}"
        if "\n" not in flat and indent + len(flat) <= width:
            return flat
        return "{\n" + "".join(f"{pad}{it},\n" for it in items) + " " * indent + "}"
    if isinstance(obj, (list, tuple)):
        items = [_py(v, indent + 4, width) for v in obj]
        flat = "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        if "\n" not in flat and indent + len(flat) <= width:
            return flat
        return "(\n" + "".join(f"{pad}{it},\n" for it in items) + " " * indent + ")"
    raise TypeError(f"cannot emit {type(obj).__name__}")


def _py_module(source: str, doc: str, names: list[tuple[str, Any]]) -> str:
    out = [_banner(source, "#").rstrip(), f'"""{doc}"""', ""]
    for n, v in names:
        out.append(f"{n} = {_py(v, 0)}")
    return "\n".join(out) + "\n"


def emit_isa_table(isa: Isa) -> str:
    opd = (isa.fields["opcode"].width + 3) // 4
    return _py_module(isa.file, "The instruction set as plain literals, read by dnpu.spec.isa.", [
        ("NAME", isa.name),
        ("VERSION", tuple(isa.version)),
        ("VERSION_WORD", _Hex(isa.version_word, 8)),
        ("WORD_BITS", isa.word_bits),
        ("NOTES", isa.notes),
        ("REGS", {k: dict(r) for k, r in isa.regs.items()}),
        ("FIELDS", {f.name: {"lsb": f.lsb, "width": f.width, "signed": f.signed}
                    for f in isa.fields.values()}),
        ("ENUMS", {k: dict(v) for k, v in isa.enums.items()}),
        ("CLASSES", CLASSES),
        ("RESERVED", tuple({"first": _Hex(r.first, opd), "last": _Hex(r.last, opd), "use": r.use}
                           for r in isa.reserved)),
        ("INSTRS", tuple({"name": i.name, "opcode": _Hex(i.opcode, opd), "class": i.cls,
                          "operands": tuple((o.field, o.kind, o.role) for o in i.operands),
                          "used": _Hex(i.used, 8), "semantics": i.semantics}
                         for i in isa.instrs)),
    ])


def emit_csr_table(csr: Csr) -> str:
    ad = (csr.addr_width + 3) // 4
    return _py_module(csr.file, "The CSR map as plain literals, read by dnpu.spec.csr.", [
        ("DATA_WIDTH", csr.data_width),
        ("ADDR_WIDTH", csr.addr_width),
        ("ID_MAGIC", _Hex(csr.id_magic, 8)),
        ("NOTES", csr.notes),
        ("REGS", tuple({"name": r.name, "offset": _Hex(r.offset, ad), "access": r.access,
                        "width": r.width, "count": r.count, "counter": r.counter,
                        "reset": r.reset if isinstance(r.reset, str) else _Hex(r.reset, 8),
                        "enum": r.enum, "doc": r.doc,
                        "fields": tuple({"name": f.name, "lsb": f.lsb, "width": f.width, "doc": f.doc}
                                        for f in r.fields)}
                       for r in csr.regs)),
        ("ENUMS", {en: tuple((n, v, doc) for n, v, doc in vals) for en, vals in csr.enums.items()}),
    ])


def emit_generated_init() -> str:
    return (_banner(f"{ISA_TOML} and {CSR_TOML}", "#")
            + '"""Tables written by `python -m dnpu.codegen`: isa_table (hw/isa.toml) and\n'
              'csr_table (hw/csr.toml). Regenerate, never edit; `--check` finds stale files."""\n')


# ---- Markdown ------------------------------------------------------------------------------

def _md_cell(s: str) -> str:
    return _one_line(str(s)).replace("|", "\\|")


def _md_table(head: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        out.append("| " + " | ".join(_md_cell(c) for c in r) + " |")
    return "\n".join(out)


def _asm_syntax(i: Instr) -> str:
    return i.name + (" " + ", ".join(o.role for o in i.operands) if i.operands else "")


def _operand_doc(isa: Isa, o: Operand) -> str:
    f = isa.fields[o.field]
    bits = f"[{f.msb}:{f.lsb}]" if f.width > 1 else f"[{f.lsb}]"
    where = f"{o.field}{bits}"
    if o.kind in isa.regs:
        r = isa.regs[o.kind]
        s = f"{o.role}: {o.kind} reg ({o.kind}0..{o.kind}{r['count'] - 1}) in {where}"
        nb = _reg_bits(r["count"])
        if nb < f.width:
            top = f"bits {f.msb}:{f.lsb + nb}" if f.width - nb > 1 else f"bit {f.msb}"
            s += f" ({top} must be 0)"
        return s
    if o.kind == "imm":
        lo, hi = -(1 << (f.width - 1)), (1 << (f.width - 1)) - 1
        return f"{o.role}: signed {lo}..{hi} in {where}"
    if o.kind == "uimm":
        return f"{o.role}: unsigned 0..{(1 << f.width) - 1} in {where}"
    return f"{o.role}: {o.kind} name in {where}"


def _diagram(isa: Isa, fields: list[Field]) -> str:
    segs: list[tuple[int, int, str]] = []
    pos = isa.word_bits - 1
    for f in sorted(fields, key=lambda f: -f.lsb):
        if f.msb < pos:
            segs.append((pos, f.msb + 1, "0"))
        segs.append((f.msb, f.lsb, f.name))
        pos = f.lsb - 1
    if pos >= 0:
        segs.append((pos, 0, "0"))
    hdrs, cells, widths = [], [], []
    for msb, lsb, label in segs:
        w = max(len(label) + 2, len(str(msb)) + len(str(lsb)) + 2 if msb != lsb else len(str(msb)) + 2)
        widths.append(w)
        if msb != lsb:
            hdrs.append(str(msb).ljust(w - len(str(lsb))) + str(lsb))
        else:
            hdrs.append(str(msb).center(w))
        cells.append(label.center(w))
    border = "+" + "+".join("-" * w for w in widths) + "+"
    return "\n".join([" " + " ".join(hdrs), border, "|" + "|".join(cells) + "|", border])


def emit_isa_md(isa: Isa) -> str:
    opw = isa.fields["opcode"].width
    L: list[str] = [f"<!-- {_banner(isa.file, '').strip()} -->", "",
                    f"# {isa.name} instruction set, version {isa.version[0]}.{isa.version[1]}", "",
                    f"Generated from `{isa.file}` by `python -m dnpu.codegen`; the same table "
                    "generates `hw/rtl/generated/dnpu_isa.vh` (RTL decoder) and "
                    "`host/dnpu/spec/generated/isa_table.py` (assembler, emulator). The CSR "
                    f"`ISA_VERSION` reads `0x{isa.version_word:08X}` (major << 16 | minor).", "",
                    "## Conventions", "", "```text", isa.notes, "```", ""]
    L += ["## Register files", "",
          _md_table(["Kind", "Registers", "Doc"],
                    [[k, f"{k}0..{k}{r['count'] - 1}", r["doc"]] for k, r in isa.regs.items()]), ""]
    L += ["## Encoding", "",
          f"Instructions are {isa.word_bits}-bit little-endian words. The opcode is always bits "
          f"[{isa.fields['opcode'].msb}:{isa.fields['opcode'].lsb}]. Every bit outside the "
          "instruction's fields must be 0, and so must the bits of a register field that the "
          "register number does not need (an f register in a 4-bit field uses its low 3 bits); "
          "otherwise the word is illegal. `DNPU_USED_<NAME>` in `dnpu_isa.vh` is each "
          "instruction's mask of bits that may be 1.", "",
          "### Fields", "",
          _md_table(["Field", "Bits", "Width", "Signed", "Used by"],
                    [[f.name, f"[{f.msb}:{f.lsb}]", f.width, "yes" if f.signed else "no",
                      ", ".join(sorted({o.kind for i in isa.instrs for o in i.operands
                                        if o.field == f.name})) or ("all" if f.name == "opcode" else "-")]
                     for f in isa.fields.values()]), "",
          "### Operand kinds", "",
          _md_table(["Kind", "Written as"],
                    [*([k, f"`{k}0`..`{k}{r['count'] - 1}`"] for k, r in isa.regs.items()),
                     ["imm", "signed integer: decimal, `0x` hex, `0b` binary, may be negative"],
                     ["uimm", "unsigned integer: decimal, `0x` hex, `0b` binary; a loop length may "
                              "also be `@label` (the body ends just before `label:`)"],
                     *([e, "one of " + ", ".join(f"`{n}`" for n in v)] for e, v in isa.enums.items())]),
          "", "### Formats", ""]
    layouts: dict[tuple[str, ...], list[str]] = {}
    for i in isa.instrs:
        key = tuple(sorted((o.field for o in i.operands), key=lambda n: -isa.fields[n].lsb))
        layouts.setdefault(key, []).append(i.name)
    for key, users in layouts.items():
        L += [f"Used by {', '.join(users)}:", "", "```text",
              _diagram(isa, [isa.fields["opcode"], *(isa.fields[n] for n in key)]), "```", ""]
    L += ["## Instructions", "",
          _md_table(["Class", "Instructions"],
                    [[c, sum(1 for i in isa.instrs if i.cls == c)] for c in CLASSES]
                    + [["total", len(isa.instrs)]]), ""]
    for cls in CLASSES:
        ins = [i for i in isa.instrs if i.cls == cls]
        if not ins:
            continue
        L += [f"### {CLASS_TITLES[cls]} (`{cls}`)", "",
              _md_table(["Mnemonic", "Opcode", "Syntax", "Operands", "Semantics"],
                        [[f"`{i.name}`", f"0x{i.opcode:02X}", f"`{_asm_syntax(i)}`",
                          "; ".join(_operand_doc(isa, o) for o in i.operands) or "-", i.semantics]
                         for i in ins]), ""]
    free = [o for o in range(1 << opw)
            if all(i.opcode != o for i in isa.instrs) and all(not r.first <= o <= r.last
                                                               for r in isa.reserved)]
    L += ["## Reserved opcode ranges", "",
          "Kept free for later stages so they never collide with today's opcodes; they decode as "
          "illegal until assigned.", "",
          _md_table(["First", "Last", "For"],
                    [[f"0x{r.first:02X}", f"0x{r.last:02X}", r.use] for r in isa.reserved]), "",
          f"Unassigned and unreserved: {_ranges(free)}.", ""]
    for en, vals in isa.enums.items():
        fields_used = sorted({o.field for i in isa.instrs for o in i.operands if o.kind == en})
        L += [f"## Enum `{en}`" + (" (MX element formats)" if en == "mxfmt" else ""), "",
              f"Encoded in field {', '.join(fields_used) or '-'}; other values are illegal.", "",
              _md_table(["Name", "Value"], [[f"`{n}`", v] for n, v in vals.items()]), ""]
    return "\n".join(L).rstrip("\n") + "\n"


def _ranges(vals: list[int]) -> str:
    out, i = [], 0
    while i < len(vals):
        j = i
        while j + 1 < len(vals) and vals[j + 1] == vals[j] + 1:
            j += 1
        out.append(f"0x{vals[i]:02X}" if i == j else f"0x{vals[i]:02X}..0x{vals[j]:02X}")
        i = j + 1
    return ", ".join(out) if out else "none"


def _reset_doc(csr: Csr, isa: Isa, r: Reg) -> str:
    if r.reset == "id_magic":
        return f"0x{csr.id_magic:08X}"
    if r.reset == "isa_version":
        return f"0x{isa.version_word:08X} (ISA {isa.version[0]}.{isa.version[1]})"
    if r.reset == "config_hash":
        return "config_hash32 of the profile"
    return f"0x{r.reset:0{r.width // 4}X}"


def emit_csr_md(csr: Csr, isa: Isa) -> str:
    L: list[str] = [f"<!-- {_banner(csr.file, '').strip()} -->", "",
                    "# dnpu control/status registers", "",
                    f"Generated from `{csr.file}` by `python -m dnpu.codegen`; the same table "
                    "generates `hw/rtl/generated/dnpu_csr.vh` and "
                    "`host/dnpu/spec/generated/csr_table.py` (`dnpu.spec.csr`).", "",
                    f"AXI4-Lite slave, {csr.data_width}-bit data, {csr.addr_width}-bit byte "
                    f"addresses. `ID` reads `0x{csr.id_magic:08X}` {_magic_ascii(csr.id_magic)}.", "",
                    "```text", csr.notes, "```", "",
                    "## Access types", "",
                    _md_table(["Access", "Meaning"], [[k, v] for k, v in ACCESS.items()]), "",
                    "## Register map", ""]
    rows = []
    for r in csr.regs:
        end = r.offset + 4 * r.words - 1
        off = f"0x{r.offset:03X}" if r.words == 1 else f"0x{r.offset:03X}..0x{end:03X}"
        if r.width == 64:
            name = f"`{r.name}` (`_LO`, `_HI`)"
        elif r.count > 1:
            name = f"`{r.name}0`..`{r.name}{r.count - 1}`"
        else:
            name = f"`{r.name}`"
        extra = []
        if r.counter:
            extra.append("counter")
        if r.enum:
            extra.append(f"values: enum {r.enum}")
        if r.fields:
            extra.append("fields below")
        doc = r.doc + (f" ({'; '.join(extra)})" if extra else "")
        rows.append([off, name, r.access, r.width, _reset_doc(csr, isa, r), doc])
    L += [_md_table(["Offset", "Name", "Access", "Width", "Reset", "Doc"], rows), ""]
    c64 = [r for r in csr.regs if r.width == 64]
    if c64:
        L += ["## 64-bit registers", "",
              "A 64-bit register is two words: the low word at its offset (`NAME_LO`, also plain "
              "`NAME` in `dnpu.spec.csr.offset`) and the high word at offset + 4 (`NAME_HI`). Reading "
              "the low word latches the high word, so read LO first, then HI: the pair is one "
              "consistent 64-bit value. Reading HI alone returns the latch from the last LO read.",
              "", "Registers: " + ", ".join(f"`{r.name}`" for r in c64) + ".", ""]
    freg = [r for r in csr.regs if r.fields]
    if freg:
        L += ["## Fields", ""]
        for r in freg:
            L += [f"### {r.name} (0x{r.offset:03X}, {r.access})", "",
                  _md_table(["Bits", "Field", "Doc"],
                            [[f"[{f.lsb + f.width - 1}:{f.lsb}]" if f.width > 1 else f"[{f.lsb}]",
                              f"`{f.name}`", f.doc] for f in r.fields]), ""]
    for en, vals in csr.enums.items():
        users = [r.name for r in csr.regs if r.enum == en]
        title = "Error causes" if en == "err_cause" else f"Enum {en}"
        L += [f"## {title} (`{en}`" + (f", register {', '.join(users)}" if users else "") + ")", "",
              _md_table(["Value", "Name", "Meaning"], [[v, f"`{n}`", doc] for n, v, doc in vals]), ""]
    return "\n".join(L).rstrip("\n") + "\n"


# ----------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------

def generate(root: Path | str | None = None, profiles: list[Profile] | None = None) -> dict[str, str]:
    """All outputs for the tables under root: repo-relative path -> text."""
    root = Path(root) if root is not None else _default_root()
    isa = load_isa(root)
    csr = load_csr(root)
    if profiles is None:
        profiles = load_profiles(root)
    cross_check(isa, csr, profiles)
    out = {
        f"{RTL_GEN}/dnpu_isa.vh": emit_isa_vh(isa),
        f"{RTL_GEN}/dnpu_csr.vh": emit_csr_vh(csr),
        f"{PY_GEN}/__init__.py": emit_generated_init(),
        f"{PY_GEN}/isa_table.py": emit_isa_table(isa),
        f"{PY_GEN}/csr_table.py": emit_csr_table(csr),
        "docs/ISA.md": emit_isa_md(isa),
        "docs/CSR.md": emit_csr_md(csr, isa),
    }
    seen: dict[str, str] = {}
    for p in profiles:
        fn = profile_vh_name(p.name)
        if fn in seen:
            raise CodegenError(f"{p.file}: profile name {p.name!r} maps to {fn} like {seen[fn]!r}")
        seen[fn] = p.name
        out[f"{RTL_GEN}/{fn}"] = emit_cfg_vh(p)
        if p.flat.get("PROFILE_TARGET") == "fpga":
            out[f"bitstreams/{p.name}/dnpu.hwh"] = emit_hwh(p, csr, isa)
    return dict(sorted(out.items()))


def write_files(files: dict[str, str], dest: Path) -> list[str]:
    """Write files under dest; returns the paths whose content changed."""
    changed = []
    for rel, text in files.items():
        p = dest / rel
        data = text.encode("utf-8")
        if p.is_file() and p.read_bytes() == data:
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        changed.append(rel)
    return changed


def _extras(root: Path, files: dict[str, str]) -> list[str]:
    out = []
    for d in GENERATED_DIRS:
        base = root / d
        if not base.is_dir():
            continue
        for p in sorted(base.rglob("*")):
            rel = p.relative_to(root).as_posix()
            if "__pycache__" in p.parts or p.is_dir():
                continue
            if rel not in files:
                out.append(rel)
    return out


def check(root: Path | str | None = None, out=sys.stdout) -> int:
    """Compare freshly generated files with the tree: 0 when up to date, 1 otherwise."""
    root = Path(root) if root is not None else _default_root()
    files = generate(root)
    problems = 0
    with tempfile.TemporaryDirectory(prefix="dnpu-codegen-") as tmp:
        write_files(files, Path(tmp))
        for rel in files:
            new = (Path(tmp) / rel).read_bytes()
            cur_p = root / rel
            if not cur_p.is_file():
                print(f"missing: {rel}", file=out)
                problems += 1
                continue
            cur = cur_p.read_bytes()
            if cur == new:
                continue
            problems += 1
            print(f"stale: {rel}", file=out)
            diff = list(difflib.unified_diff(cur.decode("utf-8", "replace").splitlines(),
                                             new.decode("utf-8").splitlines(),
                                             f"{rel} (in tree)", f"{rel} (generated)", n=1, lineterm=""))
            for line in diff[:12]:
                print(f"    {line}", file=out)
            if len(diff) > 12:
                print(f"    ... {len(diff) - 12} more diff lines", file=out)
    for rel in _extras(root, files):
        print(f"unexpected: {rel} (not written by dnpu.codegen)", file=out)
        problems += 1
    if problems:
        print(f"dnpu.codegen --check: {problems} problem(s); run `python -m dnpu.codegen` "
              "to regenerate", file=out)
        return 1
    print(f"dnpu.codegen --check: OK ({len(files)} generated files up to date)", file=out)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dnpu.codegen", description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=None,
                    help="repository root (default: the one this package lives in)")
    ap.add_argument("--out", type=Path, default=None,
                    help="write the outputs under this directory instead of --root")
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 if any generated file is stale, missing or unexpected")
    args = ap.parse_args(argv)
    root = args.root if args.root is not None else _default_root()
    try:
        if args.check:
            return check(root)
        files = generate(root)
        dest = args.out if args.out is not None else root
        changed = write_files(files, dest)
        removed, extras = [], []
        if args.out is None:
            for rel in _extras(root, files):
                # A profile header whose profile is gone is ours to remove; anything else
                # in the generated folders is reported, never deleted.
                if re.fullmatch(rf"{RTL_GEN}/dnpu_cfg_[A-Za-z0-9_]+\.vh", rel):
                    (root / rel).unlink()
                    removed.append(rel)
                else:
                    extras.append(rel)
        for rel in changed:
            print(f"wrote {rel}")
        for rel in removed:
            print(f"removed stale {rel}")
        for rel in extras:
            print(f"warning: {rel} is not written by dnpu.codegen (remove it)", file=sys.stderr)
        print(f"dnpu.codegen: {len(files)} files, {len(changed)} changed"
              + (f", {len(removed)} removed" if removed else ""))
        return 0
    except CodegenError as e:
        print(f"dnpu.codegen: error:\n{e}", file=sys.stderr)
        return 2

