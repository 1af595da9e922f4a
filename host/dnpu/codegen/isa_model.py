"""hw/isa.toml as plain dataclasses: register files, instruction fields, enums, reserved
opcode ranges and instructions, validated on load (load_isa raises CodegenError naming
every problem by file and key)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnpu.codegen.validate import IDENT, Errors, header_notes, load_enum, overlaps, read_toml

ISA_TOML = "hw/isa.toml"

# Instruction classes, in the order the outputs list them.
CLASSES = ("control", "scalar_int", "scalar_fp", "vector", "memory", "matrix")


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

    @property
    def syntax(self) -> str:
        """The assembly form: mnemonic and operand roles."""
        return self.name + (" " + ", ".join(o.role for o in self.operands) if self.operands else "")


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
        return operand_kinds(self.regs, self.enums)

    def instrs_of(self, cls: str) -> list[Instr]:
        return [i for i in self.instrs if i.cls == cls]

    def fields_of_kind(self, kind: str) -> list[str]:
        """The fields that hold an operand of this kind in some instruction, sorted."""
        return sorted({o.field for i in self.instrs for o in i.operands if o.kind == kind})

    def kinds_in_field(self, field: str) -> list[str]:
        """The operand kinds some instruction puts in this field, sorted."""
        return sorted({o.kind for i in self.instrs for o in i.operands if o.field == field})


def operand_kinds(regs: dict, enums: dict) -> list[str]:
    """Every operand kind: the register files, imm, uimm and the enums."""
    return [*regs, "imm", "uimm", *enums]


def reg_bits(count: int) -> int:
    """Bits a register number needs in a register file of count registers."""
    return max(1, (count - 1).bit_length())


def load_isa(root: Path, rel: str = ISA_TOML) -> Isa:
    raw, text = read_toml(root, rel)
    err = Errors(rel)
    err.unknown_keys("top level", raw, ("isa", "regs", "fields", "enums", "reserved", "instr"))

    head = raw.get("isa", {})
    err.unknown_keys("isa", head, ("name", "version_major", "version_minor", "word_bits"))
    name = err.get("isa", head, "name", str, "dnpu")
    vmaj = err.get("isa", head, "version_major", int)
    vmin = err.get("isa", head, "version_minor", int)
    for k, v in (("version_major", vmaj), ("version_minor", vmin)):
        if v is not None and not 0 <= v <= 0xFFFF:
            err.add(f"isa.{k}", f"{v} does not fit 16 bits (ISA_VERSION is major << 16 | minor)")
    word_bits = err.get("isa", head, "word_bits", int, 32)
    if word_bits != 32:
        err.add("isa.word_bits", f"{word_bits}: only 32-bit instruction words are supported")
        word_bits = 32

    regs = _load_regs(err, raw)
    fields = _load_fields(err, raw, word_bits)
    enums: dict[str, dict[str, int]] = {}
    for en, et in raw.get("enums", {}).items():
        enums[en] = {n: v for n, v, _ in load_enum(err, en, et)}
        if en in regs or en in ("imm", "uimm"):
            err.add(f"enums.{en}", "an enum cannot share its name with an operand kind")
    op_w = fields["opcode"].width if "opcode" in fields else 7
    reserved = _load_reserved(err, raw, op_w)
    instrs = _load_instrs(err, raw, regs, fields, enums, reserved, op_w)
    err.raise_if_any()
    return Isa(name=name, version=(vmaj, vmin), word_bits=word_bits, regs=regs, fields=fields,
               enums=enums, reserved=reserved, instrs=instrs, notes=header_notes(text), file=rel)


def _load_regs(err: Errors, raw: dict) -> dict[str, dict[str, Any]]:
    regs: dict[str, dict[str, Any]] = {}
    for key, rk, rt in err.tables(raw, "regs"):
        err.unknown_keys(key, rt, ("count", "prefix", "doc"))
        count = err.get(key, rt, "count", int)
        prefix = err.get(key, rt, "prefix", str, rk)
        doc = err.get(key, rt, "doc", str, "")
        if count is not None and count < 1:
            err.add(key, f"count = {count}: must be at least 1")
        if not IDENT.match(rk):
            err.add(key, "register file names must be identifiers")
        if prefix != rk:
            err.add(key, f"prefix = {prefix!r}: must equal the kind name {rk!r} "
                         "(operands name register files by their prefix)")
        regs[rk] = {"count": count or 1, "prefix": prefix, "doc": doc}
    if not regs:
        err.add("regs", "no register files")
    return regs


def _load_fields(err: Errors, raw: dict, word_bits: int) -> dict[str, Field]:
    fields: dict[str, Field] = {}
    for key, fk, ft in err.tables(raw, "fields", "a table {lsb, width[, signed]}"):
        err.unknown_keys(key, ft, ("lsb", "width", "signed"))
        lsb = err.get(key, ft, "lsb", int)
        width = err.get(key, ft, "width", int)
        signed = err.get(key, ft, "signed", bool, False)
        if not IDENT.match(fk):
            err.add(key, "field names must be identifiers")
        if lsb is None or width is None:
            continue
        if lsb < 0 or width < 1 or lsb + width > word_bits:
            err.add(key, f"bits {lsb + width - 1}:{lsb} do not fit a {word_bits}-bit word")
            continue
        fields[fk] = Field(fk, lsb, width, signed)
    if "opcode" not in fields:
        err.add("fields.opcode", "missing: every instruction needs an opcode field")
    elif fields["opcode"].signed:
        err.add("fields.opcode", "the opcode field cannot be signed")
    return fields


def _load_reserved(err: Errors, raw: dict, op_w: int) -> list[Reserved]:
    reserved: list[Reserved] = []
    for key, rt in err.entries(raw, "reserved"):
        err.unknown_keys(key, rt, ("first", "last", "use"))
        first = err.get(key, rt, "first", int)
        last = err.get(key, rt, "last", int)
        use = err.get(key, rt, "use", str)
        if first is None or last is None or use is None:
            continue
        if not 0 <= first <= last < (1 << op_w):
            err.add(key, f"range 0x{first:02X}..0x{last:02X} is empty or beyond the "
                         f"{op_w}-bit opcode field")
            continue
        for other in reserved:
            if overlaps(first, last, other.first, other.last):
                err.add(key, f"range 0x{first:02X}..0x{last:02X} overlaps reserved range "
                             f"0x{other.first:02X}..0x{other.last:02X}")
        reserved.append(Reserved(first, last, use))
    return reserved


def _load_instrs(err: Errors, raw: dict, regs: dict, fields: dict[str, Field], enums: dict,
                 reserved: list[Reserved], op_w: int) -> list[Instr]:
    instrs: list[Instr] = []
    names: set[str] = set()
    opcodes: dict[int, str] = {}
    for key, it in err.entries(raw, "instr"):
        err.unknown_keys(key, it, ("name", "opcode", "class", "operands", "semantics"))
        nm = err.get(key, it, "name", str)
        opc = err.get(key, it, "opcode", int)
        cls = err.get(key, it, "class", str)
        ops = err.get(key, it, "operands", list)
        sem = err.get(key, it, "semantics", str)
        if nm is None or opc is None or cls is None or ops is None or sem is None:
            continue
        err.unique_name(key, nm, names, "instruction")
        if cls not in CLASSES:
            err.add(f"{key}.class", f"unknown class {cls!r} (known: {', '.join(CLASSES)}; "
                                    "a new class goes into dnpu.codegen.isa_model.CLASSES)")
        if not 0 <= opc < (1 << op_w):
            err.add(f"{key}.opcode", f"0x{opc:X} does not fit the {op_w}-bit opcode field")
        else:
            if opc in opcodes:
                err.add(f"{key}.opcode", f"0x{opc:02X} already used by {opcodes[opc]}")
            else:
                opcodes[opc] = nm
            for r in reserved:
                if r.first <= opc <= r.last:
                    err.add(f"{key}.opcode", f"0x{opc:02X} lies in reserved range "
                                             f"0x{r.first:02X}..0x{r.last:02X} ({r.use})")
        operands = _load_operands(err, key, ops, sem, regs, fields, enums)
        # The bits a valid instruction can set: the opcode, each enum/immediate field whole,
        # and of a register field only the bits a register number needs (f0..f7 in a 4-bit
        # field leaves its top bit unused, so a word naming "f8" is illegal like any other).
        used = fields["opcode"].mask if "opcode" in fields else 0
        for o in operands:
            f = fields[o.field]
            bits = reg_bits(regs[o.kind]["count"]) if o.kind in regs else f.width
            used |= ((1 << min(bits, f.width)) - 1) << f.lsb
        instrs.append(Instr(nm, opc, cls, tuple(operands), sem, used))
    return instrs


def _load_operands(err: Errors, key: str, ops: list, sem: str, regs: dict, fields: dict[str, Field],
                   enums: dict) -> list[Operand]:
    kinds = operand_kinds(regs, enums)
    operands: list[Operand] = []
    used_by: dict[str, str] = {}
    claimed: list[Field] = [fields["opcode"]] if "opcode" in fields else []
    for j, spec in enumerate(ops):
        okey = f"{key}.operands[{j}]"
        if not isinstance(spec, str) or not 2 <= len(spec.split(":")) <= 3:
            err.add(okey, f"{spec!r}: expected \"field:kind[:role]\"")
            continue
        parts = spec.split(":")
        fname, kind = parts[0], parts[1]
        role = parts[2] if len(parts) == 3 else fname
        if fname not in fields:
            err.add(okey, f"{spec!r}: unknown field {fname!r} (known: {', '.join(fields)})")
            continue
        if fname == "opcode":
            err.add(okey, f"{spec!r}: the opcode field cannot hold an operand")
            continue
        if kind not in kinds:
            err.add(okey, f"{spec!r}: unknown operand kind {kind!r} (known: {', '.join(kinds)})")
            continue
        if not IDENT.match(role):
            err.add(okey, f"{spec!r}: role {role!r} is not an identifier")
        if fname in used_by:
            err.add(okey, f"{spec!r}: field {fname} already holds operand {used_by[fname]}")
            continue
        if role in used_by.values():
            err.add(okey, f"{spec!r}: two operands named {role!r}")
        used_by[fname] = role
        f = fields[fname]
        for of in claimed:
            if overlaps(f.lsb, f.msb, of.lsb, of.msb):
                lo, hi = max(f.lsb, of.lsb), min(f.msb, of.msb)
                err.add(okey, f"{spec!r}: field {fname} [{f.msb}:{f.lsb}] overlaps field "
                              f"{of.name} [{of.msb}:{of.lsb}] in bits {hi}:{lo}")
        claimed.append(f)
        _check_kind(err, okey, spec, f, kind, regs, enums)
        if not re.search(rf"(?<![A-Za-z0-9_]){re.escape(role)}(?![A-Za-z0-9_])", sem):
            err.add(okey, f"{spec!r}: operand {role!r} does not appear in the semantics "
                          "line (give the role it has there as field:kind:role)")
        operands.append(Operand(fname, kind, role))
    return operands


def _check_kind(err: Errors, okey: str, spec: str, f: Field, kind: str, regs: dict, enums: dict) -> None:
    """Whether field f can hold an operand of this kind."""
    if kind in regs:
        n = regs[kind]["count"]
        if f.signed:
            err.add(okey, f"{spec!r}: a register operand cannot live in signed field {f.name}")
        if reg_bits(n) > f.width:
            err.add(okey, f"{spec!r}: field {f.name} ({f.width} bits) cannot hold "
                          f"{kind}{n - 1} (regs.{kind}.count = {n})")
    elif kind == "imm":
        if not f.signed:
            err.add(okey, f"{spec!r}: kind imm needs a signed field; {f.name} is unsigned "
                          "(use uimm, or signed = true)")
    elif kind == "uimm":
        if f.signed:
            err.add(okey, f"{spec!r}: kind uimm needs an unsigned field; {f.name} is signed")
    else:
        vals = enums[kind].values()
        if f.signed:
            err.add(okey, f"{spec!r}: an enum operand cannot live in signed field {f.name}")
        if vals and max(vals).bit_length() > f.width:
            err.add(okey, f"{spec!r}: field {f.name} ({f.width} bits) cannot hold enum "
                          f"{kind} value {max(vals)}")
