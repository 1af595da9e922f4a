"""The Markdown references: docs/ISA.md (encoding, formats, every instruction),
docs/CSR.md (register map, fields, error causes) and docs/SERIAL.md (the serial link's
frames, codes, windows and a worked example)."""

from __future__ import annotations

import struct
from typing import Any

from dnpu.codegen.csr_model import ACCESS, Csr, Reg
from dnpu.codegen.isa_model import CLASSES, Field, Isa, Operand, reg_bits
from dnpu.codegen.serial_model import Serial
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


def _crc8(s: Serial, data: bytes) -> int:
    """CRC-8 as the protocol defines it (MSB first, no reflection, no final XOR)."""
    c = s.link["crc8_init"]
    for b in data:
        c ^= b
        for _ in range(8):
            c = ((c << 1) ^ s.link["crc8_poly"]) & 0xFF if c & 0x80 else (c << 1) & 0xFF
    return c


def serial_example_frames(s: Serial, csr: Csr) -> list[tuple[str, bytes]]:
    """The worked examples of docs/SERIAL.md: (what, frame bytes). Built from the table here
    (dnpu.spec.serial reads the generated table this run may be rewriting); the codegen tests
    check that the codec encodes the same bytes."""
    cmd = {c.name: c.code for c in s.commands}
    st = {c.name: c.code for c in s.statuses}
    base = {w.name: w.base for w in s.windows}

    def frame(sync: int, body: bytes) -> bytes:
        return bytes([sync]) + body + bytes([_crc8(s, body)])

    def req(c: str, seq: int, addr: int, words: tuple[int, ...] = (), n: int | None = None) -> bytes:
        body = struct.pack("<BBIB", cmd[c], seq, addr, len(words) if n is None else n)
        return frame(s.link["req_sync"], body + b"".join(struct.pack("<I", w) for w in words))

    def rsp(seq: int, status: str, words: tuple[int, ...] = ()) -> bytes:
        body = struct.pack("<BB", seq, len(words)) + b"".join(struct.pack("<I", w) for w in words)
        return frame(s.link["rsp_sync"], body + bytes([st[status]]))

    mem = base["MEM"]
    return [
        (f"WRITE SEQ=0x11 two words 0x12345678, 0x9ABCDEF0 to 0x{mem:08X} (MEM)",
         req("WRITE", 0x11, mem, (0x12345678, 0x9ABCDEF0))),
        ("its reply: OK, no data", rsp(0x11, "OK")),
        (f"READ SEQ=0x12 one word at 0x{base['CSR']:08X} (CSR ID)", req("READ", 0x12, base["CSR"], n=1)),
        (f"its reply: OK, the word 0x{csr.id_magic:08X}", rsp(0x12, "OK", (csr.id_magic,))),
        ("READ SEQ=0x13 of 0 words: refused", req("READ", 0x13, mem, n=0)),
        ("its reply, after the line has been idle frame_gap_bits bit times: BAD_LEN", rsp(0x13, "BAD_LEN")),
    ]


def _offsets(fields, start: int = 1) -> tuple[list[list[Any]], str]:
    """Rows (offset, field, bytes, doc) of a frame layout: numeric offsets until the
    variable-length DATA, symbolic after it."""
    rows, off, var = [], start, ""
    for f in fields:
        where = f"{off}" if not var else f"{off} + {var}"
        if isinstance(f.bytes, int):
            last = f"{off + f.bytes - 1}" if not var else f"{off + f.bytes - 1} + {var}"
            rows.append([where if f.bytes == 1 else f"{where} .. {last}", f"`{f.name}`", f.bytes, f.doc])
            off += f.bytes
        else:
            rows.append([f"{where} ..", f"`{f.name}`", f.bytes.replace("*", " x "), f.doc])
            var = f.bytes.replace("*", " x ")
    end = f"{off}" if not var else f"{off} + {var}"
    return rows, end


def emit_serial_md(s: Serial, csr: Csr) -> str:
    L = _title(s.file, "dnpu serial link",
               "`hw/rtl/generated/dnpu_serial.vh` (`dnpu_uart_bridge`) and "
               "`host/dnpu/spec/generated/serial_table.py` (`dnpu.spec.serial`, the host's frame codec).")
    k = s.link
    L += [f"A UART at {k['baud']} baud on a board (8 data bits, no parity, 1 stop bit, least significant "
          f"bit first) between a host and `dnpu_uart_bridge`, an AXI4-Lite master in `dnpu_uart_top` "
          f"that reads and writes the NPU's registers and memory in 32-bit words. Co-simulation "
          f"runs the same protocol with {k['sim_clks_per_bit']} clock cycles per bit.", "",
          "```text", s.notes, "```", "",
          "## Link constants", "",
          md_table(["Name", "Value"],
                   [[f"`{n}`", f"0x{v:02X}" if n.endswith(("sync", "poly", "init")) else v]
                    for n, v in k.items()]), ""]
    rq, rq_end = _offsets(s.request)
    L += ["## Request frame", "",
          md_table(["Offset", "Field", "Bytes", "Doc"],
                   [["0", "sync", 1, f"0x{k['req_sync']:02X}"], *rq,
                    [rq_end, "CRC", 1, "CRC-8 of bytes 1 .. the last before it"]]), "",
          "`DATA` is present in a WRITE only: a READ or INFO request ends with the CRC right "
          "after `NWORDS`.", ""]
    rp, rp_end = _offsets(s.reply)
    L += ["## Reply frame", "",
          md_table(["Offset", "Field", "Bytes", "Doc"],
                   [["0", "sync", 1, f"0x{k['rsp_sync']:02X}"], *rp,
                    [rp_end, "CRC", 1, "CRC-8 of bytes 1 .. the last before it"]]), ""]
    L += ["## Commands", "",
          md_table(["Code", "Name", "Meaning"], [[f"0x{c.code:02X}", f"`{c.name}`", c.doc] for c in s.commands]), "",
          "## Statuses", "",
          md_table(["Code", "Name", "Meaning"], [[f"0x{c.code:02X}", f"`{c.name}`", c.doc] for c in s.statuses]), "",
          "A refused request is checked in this order: CRC, command, length, address. The "
          "bridge knows a request's length from `CMD` and `NWORDS` (an unknown command is read "
          "as a request without `DATA`), so it reads a refused request to its CRC before it "
          "waits for the idle line.", ""]
    L += ["## Address windows", "",
          md_table(["Window", "Base", "Size", "Doc"],
                   [[f"`{w.name}`", f"0x{w.base:08X}",
                     f"{1 << csr.addr_width} bytes (2^{csr.addr_width}, hw/csr.toml)" if w.size == "csr"
                     else "`MEM_BYTES` of the top (INFO word `MEM_BYTES`)", w.doc] for w in s.windows]), "",
          "All the words of one READ or WRITE lie in one window; the window is checked before "
          "anything is done.", ""]
    L += ["## INFO words", "",
          md_table(["Index", "Word", "Doc"], [[c.code, f"`{c.name}`", c.doc] for c in s.info]), ""]
    L += ["## Worked example", "", "Frames in hex, byte 0 first.", ""]
    for what, fr in serial_example_frames(s, csr):
        L += [f"- {what}:", "", "  ```text", "  " + " ".join(f"{b:02X}" for b in fr), "  ```", ""]
    return "\n".join(L).rstrip("\n") + "\n"
