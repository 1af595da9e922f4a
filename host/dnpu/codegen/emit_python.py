"""The Python tables dnpu.spec reads: host/dnpu/spec/generated/isa_table.py (for
dnpu.spec.isa), csr_table.py (for dnpu.spec.csr) and the package's __init__.py, as plain
literals."""

from __future__ import annotations

from typing import Any

from dnpu.codegen.csr_model import CSR_TOML, Csr
from dnpu.codegen.isa_model import CLASSES, ISA_TOML, Isa
from dnpu.codegen.serial_model import SERIAL_TOML, Serial
from dnpu.codegen.text import banner

PY_GEN = "host/dnpu/spec/generated"


class Hex(int):
    """An int printed as 0x%0*X in a generated Python table."""

    def __new__(cls, v: int, digits: int = 2) -> "Hex":
        o = super().__new__(cls, v)
        o.digits = digits
        return o


def py_literal(obj: Any, indent: int = 0, width: int = 100) -> str:
    """obj as Python source: on one line when it fits width, else one item a line."""
    if isinstance(obj, Hex):
        return f"0x{int(obj):0{obj.digits}X}"
    if isinstance(obj, (bool, int, float, str)) or obj is None:
        return repr(obj)
    if isinstance(obj, dict):
        items = [f"{k!r}: {py_literal(v, indent + 4, width)}" for k, v in obj.items()]
        opening, closing, trailer = "{", "}", ""
    elif isinstance(obj, (list, tuple)):
        items = [py_literal(v, indent + 4, width) for v in obj]
        opening, closing, trailer = "(", ")", "," if len(items) == 1 else ""
    else:
        raise TypeError(f"cannot emit {type(obj).__name__}")
    flat = opening + ", ".join(items) + trailer + closing
    if "\n" not in flat and indent + len(flat) <= width:
        return flat
    pad = " " * (indent + 4)
    return opening + "\n" + "".join(f"{pad}{it},\n" for it in items) + " " * indent + closing


def py_module(source: str, doc: str, names: list[tuple[str, Any]]) -> str:
    out = [banner(source, "#").rstrip(), f'"""{doc}"""', ""]
    out += [f"{n} = {py_literal(v)}" for n, v in names]
    return "\n".join(out) + "\n"


def emit_isa_table(isa: Isa) -> str:
    opd = (isa.fields["opcode"].width + 3) // 4
    return py_module(isa.file, "The instruction set as plain literals, read by dnpu.spec.isa.", [
        ("NAME", isa.name),
        ("VERSION", tuple(isa.version)),
        ("VERSION_WORD", Hex(isa.version_word, 8)),
        ("WORD_BITS", isa.word_bits),
        ("NOTES", isa.notes),
        ("REGS", {k: dict(r) for k, r in isa.regs.items()}),
        ("FIELDS", {f.name: {"lsb": f.lsb, "width": f.width, "signed": f.signed}
                    for f in isa.fields.values()}),
        ("ENUMS", {k: dict(v) for k, v in isa.enums.items()}),
        ("CLASSES", CLASSES),
        ("RESERVED", tuple({"first": Hex(r.first, opd), "last": Hex(r.last, opd), "use": r.use}
                           for r in isa.reserved)),
        ("INSTRS", tuple({"name": i.name, "opcode": Hex(i.opcode, opd), "class": i.cls,
                          "operands": tuple((o.field, o.kind, o.role) for o in i.operands),
                          "used": Hex(i.used, 8), "semantics": i.semantics}
                         for i in isa.instrs)),
    ])


def emit_csr_table(csr: Csr) -> str:
    ad = (csr.addr_width + 3) // 4
    return py_module(csr.file, "The CSR map as plain literals, read by dnpu.spec.csr.", [
        ("DATA_WIDTH", csr.data_width),
        ("ADDR_WIDTH", csr.addr_width),
        ("ID_MAGIC", Hex(csr.id_magic, 8)),
        ("NOTES", csr.notes),
        ("REGS", tuple({"name": r.name, "offset": Hex(r.offset, ad), "access": r.access,
                        "width": r.width, "count": r.count, "counter": r.counter,
                        "reset": r.reset if isinstance(r.reset, str) else Hex(r.reset, 8),
                        "enum": r.enum, "doc": r.doc,
                        "fields": tuple({"name": f.name, "lsb": f.lsb, "width": f.width, "doc": f.doc}
                                        for f in r.fields)}
                       for r in csr.regs)),
        ("ENUMS", {en: tuple(vals) for en, vals in csr.enums.items()}),
    ])


def emit_serial_table(s: Serial) -> str:
    return py_module(s.file, "The serial link's protocol as plain literals, read by dnpu.spec.serial.", [
        ("NOTES", s.notes),
        ("LINK", {k: Hex(v) if k.endswith(("sync", "poly", "init")) else v for k, v in s.link.items()}),
        ("REQUEST", tuple({"name": f.name, "bytes": f.bytes, "doc": f.doc} for f in s.request)),
        ("REPLY", tuple({"name": f.name, "bytes": f.bytes, "doc": f.doc} for f in s.reply)),
        ("COMMANDS", {c.name: Hex(c.code) for c in s.commands}),
        ("STATUSES", {c.name: Hex(c.code) for c in s.statuses}),
        ("STATUS_DOCS", {c.name: c.doc for c in s.statuses}),
        ("WINDOWS", {w.name: {"base": Hex(w.base, 8), "size": w.size, "doc": w.doc} for w in s.windows}),
        ("INFO", tuple(c.name for c in s.info)),
    ])


def emit_generated_init() -> str:
    return (banner(f"{ISA_TOML}, {CSR_TOML} and {SERIAL_TOML}", "#")
            + '"""Tables written by `python -m dnpu.codegen`: isa_table (hw/isa.toml),\n'
              'csr_table (hw/csr.toml) and serial_table (hw/serial.toml). Regenerate, never\n'
              'edit; `--check` finds stale files."""\n')
