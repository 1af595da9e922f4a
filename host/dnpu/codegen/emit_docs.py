"""The Markdown references: docs/ISA.md (encoding, formats, every instruction) and
docs/CSR.md (register map, fields, error causes)."""

from __future__ import annotations

from typing import Any

from dnpu.codegen.csr_model import ACCESS, Csr, Reg
from dnpu.codegen.isa_model import CLASSES, Field, Isa, Operand, reg_bits
from dnpu.codegen.text import banner, one_line

CLASS_TITLES = {"control": "Control", "scalar_int": "Scalar integer", "scalar_fp": "Scalar FP",
                "vector": "Vector", "memory": "Memory (external, AXI4)",
                "matrix": "Matrix unit"}


def _md_cell(s: Any) -> str:
    return one_line(str(s)).replace("|", "\\|")


def md_table(head: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _bits(msb: int, lsb: int) -> str:
    return f"[{msb}:{lsb}]" if msb != lsb else f"[{lsb}]"


def _title(file: str, heading: str, intro: str) -> list[str]:
    """The banner comment, the heading and the paragraph on where the page comes from."""
    return [f"<!-- {banner(file, '').strip()} -->", "", f"# {heading}", "",
            f"Generated from `{file}` by `python -m dnpu.codegen`; the same table generates {intro}", ""]


def _operand_doc(isa: Isa, o: Operand) -> str:
    f = isa.fields[o.field]
    where = f"{o.field}{_bits(f.msb, f.lsb)}"
    if o.kind in isa.regs:
        r = isa.regs[o.kind]
        s = f"{o.role}: {o.kind} reg ({o.kind}0..{o.kind}{r['count'] - 1}) in {where}"
        nb = reg_bits(r["count"])
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
    """An ASCII picture of an instruction word: bit numbers over boxed field names."""
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


def _ranges(vals: list[int]) -> str:
    """Sorted opcodes as runs: 0x01, 0x04..0x07."""
    out, i = [], 0
    while i < len(vals):
        j = i
        while j + 1 < len(vals) and vals[j + 1] == vals[j] + 1:
            j += 1
        out.append(f"0x{vals[i]:02X}" if i == j else f"0x{vals[i]:02X}..0x{vals[j]:02X}")
        i = j + 1
    return ", ".join(out) if out else "none"


def emit_isa_md(isa: Isa) -> str:
    opw = isa.fields["opcode"].width
    op = isa.fields["opcode"]
    L = _title(isa.file, f"{isa.name} instruction set, version {isa.version[0]}.{isa.version[1]}",
               "`hw/rtl/generated/dnpu_isa.vh` (RTL decoder) and `host/dnpu/spec/generated/isa_table.py` "
               f"(assembler, emulator). The CSR `ISA_VERSION` reads `0x{isa.version_word:08X}` "
               "(major << 16 | minor).")
    L += ["## Conventions", "", "```text", isa.notes, "```", ""]
    L += ["## Register files", "",
          md_table(["Kind", "Registers", "Doc"],
                   [[k, f"{k}0..{k}{r['count'] - 1}", r["doc"]] for k, r in isa.regs.items()]), ""]
    L += ["## Encoding", "",
          f"Instructions are {isa.word_bits}-bit little-endian words. The opcode is always bits "
          f"[{op.msb}:{op.lsb}]. Every bit outside the "
          "instruction's fields must be 0, and so must the bits of a register field that the "
          "register number does not need (an f register in a 4-bit field uses its low 3 bits); "
          "otherwise the word is illegal. `DNPU_USED_<NAME>` in `dnpu_isa.vh` is each "
          "instruction's mask of bits that may be 1.", "",
          "### Fields", "",
          md_table(["Field", "Bits", "Width", "Signed", "Used by"],
                   [[f.name, f"[{f.msb}:{f.lsb}]", f.width, "yes" if f.signed else "no",
                     ", ".join(isa.kinds_in_field(f.name)) or ("all" if f.name == "opcode" else "-")]
                    for f in isa.fields.values()]), "",
          "### Operand kinds", "",
          md_table(["Kind", "Written as"],
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
              _diagram(isa, [op, *(isa.fields[n] for n in key)]), "```", ""]
    L += ["## Instructions", "",
          md_table(["Class", "Instructions"],
                   [[c, len(isa.instrs_of(c))] for c in CLASSES] + [["total", len(isa.instrs)]]), ""]
    for cls in CLASSES:
        if not isa.instrs_of(cls):
            continue
        L += [f"### {CLASS_TITLES[cls]} (`{cls}`)", "",
              md_table(["Mnemonic", "Opcode", "Syntax", "Operands", "Semantics"],
                       [[f"`{i.name}`", f"0x{i.opcode:02X}", f"`{i.syntax}`",
                         "; ".join(_operand_doc(isa, o) for o in i.operands) or "-", i.semantics]
                        for i in isa.instrs_of(cls)]), ""]
    taken = {i.opcode for i in isa.instrs} | {o for r in isa.reserved for o in range(r.first, r.last + 1)}
    L += ["## Reserved opcode ranges", "",
          "Set aside for the units named below, so their instructions never collide with the "
          "assigned opcodes; they decode as illegal until assigned.", "",
          md_table(["First", "Last", "For"],
                   [[f"0x{r.first:02X}", f"0x{r.last:02X}", r.use] for r in isa.reserved]), "",
          f"Unassigned and unreserved: {_ranges([o for o in range(1 << opw) if o not in taken])}.", ""]
    for en, vals in isa.enums.items():
        L += [f"## Enum `{en}`" + (" (MX element formats)" if en == "mxfmt" else ""), "",
              f"Encoded in field {', '.join(isa.fields_of_kind(en)) or '-'}; other values are illegal.", "",
              md_table(["Name", "Value"], [[f"`{n}`", v] for n, v in vals.items()]), ""]
    return "\n".join(L).rstrip("\n") + "\n"


def _reset_doc(csr: Csr, isa: Isa, r: Reg) -> str:
    if r.reset == "id_magic":
        return f"0x{csr.id_magic:08X}"
    if r.reset == "isa_version":
        return f"0x{isa.version_word:08X} (ISA {isa.version[0]}.{isa.version[1]})"
    if r.reset == "config_hash":
        return "config_hash32 of the profile"
    return f"0x{r.reset:0{r.width // 4}X}"


def _reg_row(csr: Csr, isa: Isa, r: Reg) -> list[Any]:
    end = r.offset + 4 * r.words - 1
    off = f"0x{r.offset:03X}" if r.words == 1 else f"0x{r.offset:03X}..0x{end:03X}"
    if r.width == 64:
        name = f"`{r.name}` (`_LO`, `_HI`)"
    elif r.count > 1:
        name = f"`{r.name}0`..`{r.name}{r.count - 1}`"
    else:
        name = f"`{r.name}`"
    extra = [x for x, on in (("counter", r.counter), (f"values: enum {r.enum}", r.enum),
                             ("fields below", r.fields)) if on]
    doc = r.doc + (f" ({'; '.join(extra)})" if extra else "")
    return [off, name, r.access, r.width, _reset_doc(csr, isa, r), doc]


def emit_csr_md(csr: Csr, isa: Isa) -> str:
    L = _title(csr.file, "dnpu control/status registers",
               "`hw/rtl/generated/dnpu_csr.vh` and `host/dnpu/spec/generated/csr_table.py` (`dnpu.spec.csr`).")
    L += [f"AXI4-Lite slave, {csr.data_width}-bit data, {csr.addr_width}-bit byte "
          f"addresses. `ID` reads `0x{csr.id_magic:08X}` {csr.id_ascii}.", "",
          "```text", csr.notes, "```", "",
          "## Access types", "",
          md_table(["Access", "Meaning"], [[k, v] for k, v in ACCESS.items()]), "",
          "## Register map", "",
          md_table(["Offset", "Name", "Access", "Width", "Reset", "Doc"],
                   [_reg_row(csr, isa, r) for r in csr.regs]), ""]
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
                  md_table(["Bits", "Field", "Doc"],
                           [[_bits(f.msb, f.lsb), f"`{f.name}`", f.doc] for f in r.fields]), ""]
    for en, vals in csr.enums.items():
        users = [r.name for r in csr.regs if r.enum == en]
        title = "Error causes" if en == "err_cause" else f"Enum {en}"
        L += [f"## {title} (`{en}`" + (f", register {', '.join(users)}" if users else "") + ")", "",
              md_table(["Value", "Name", "Meaning"], [[v, f"`{n}`", doc] for n, v, doc in vals]), ""]
    return "\n".join(L).rstrip("\n") + "\n"
