"""The dnpu instruction set: encode, decode, assemble, disassemble.

Everything here comes from dnpu.spec.generated.isa_table, which `python -m dnpu.codegen`
writes from hw/isa.toml; this module never reads the TOML. See docs/ISA.md.

Assembly syntax, one instruction per line:

    # comment, or ; comment
    loop_end_label:                     # a label: `name:` at the start of a line
    S_ADDI   x1, x0, -5                 # mnemonic (any case), operands separated by commas
    C_LOOPI  4, @body_end               # loop length as @label: the body is the next
    V_ADD_VV x2, x2, x3, x4             #   instructions up to the one just before label
    body_end:
    H_PREFETCH_V x5, x6, x7, e4m3       # MX format operands by name

Registers are x0..x15 and f0..f7 (checked against the operand's kind), `imm` operands
are signed integers (decimal, 0x hex, 0b binary, 0o octal, optional sign), `uimm`
operands are unsigned. Errors raise AsmError("file:line:col: what is wrong").

A program (`assemble`) has at least one instruction: an empty source (blank lines and
comments only) is an AsmError, since the NPU would fetch past it (a program stops only at
C_HALT); `assemble_words` assembles any fragment, an empty one too.

Errors: assemble and assemble_words raise only AsmError, encode only EncodeError, decode,
class_of and disassemble only DisasmError, all of them IsaError, a ValueError.
"""

from __future__ import annotations

import difflib
import re
import struct
from dataclasses import dataclass
from typing import Iterable, NamedTuple

from dnpu.spec.generated import isa_table as _t

__all__ = ["VERSION", "VERSION_WORD", "WORD_BITS", "INSTRS", "BY_OPCODE", "FIELDS", "MXFMT",
           "MXFMT_NAMES", "NREGS", "NREGS_X", "NREGS_F", "CLASSES", "RESERVED", "Field", "Operand",
           "Instr", "Decoded", "IsaError", "EncodeError", "AsmError", "DisasmError", "encode",
           "decode", "class_of", "assemble", "assemble_words", "disassemble", "listing",
           "format_instr", "LUI_SHIFT", "load_imm"]

VERSION: tuple[int, int] = tuple(_t.VERSION)
VERSION_WORD: int = _t.VERSION_WORD
WORD_BITS: int = _t.WORD_BITS
CLASSES: tuple[str, ...] = tuple(_t.CLASSES)
NREGS: dict[str, int] = {k: r["count"] for k, r in _t.REGS.items()}
NREGS_X: int = NREGS["x"]
NREGS_F: int = NREGS["f"]
MXFMT: dict[str, int] = dict(_t.ENUMS.get("mxfmt", {}))
MXFMT_NAMES: dict[int, str] = {v: k for k, v in MXFMT.items()}
RESERVED: tuple[tuple[int, int, str], ...] = tuple((r["first"], r["last"], r["use"]) for r in _t.RESERVED)
_WORD_MASK = (1 << WORD_BITS) - 1


class IsaError(ValueError):
    """Base of the errors below."""


class EncodeError(IsaError):
    """encode() got an unknown mnemonic, a wrong operand count or an out-of-range value."""


class AsmError(IsaError):
    """An assembly source error; the message is `file:line:col: what is wrong`."""

    def __init__(self, filename: str, line: int, col: int, msg: str) -> None:
        super().__init__(f"{filename}:{line}:{col}: {msg}")
        self.filename, self.line, self.col, self.msg = filename, line, col, msg


class DisasmError(IsaError):
    """A word that is not a legal instruction (unknown opcode, stray bits, bad operand)."""


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    signed: bool

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb

    def extract(self, word: int) -> int:
        v = (word >> self.lsb) & ((1 << self.width) - 1)
        if self.signed and v >> (self.width - 1):
            v -= 1 << self.width
        return v

    def insert(self, value: int) -> int:
        return (value & ((1 << self.width) - 1)) << self.lsb


FIELDS: dict[str, Field] = {n: Field(n, f["lsb"], f["width"], f["signed"]) for n, f in _t.FIELDS.items()}
_OPCODE = FIELDS["opcode"]


@dataclass(frozen=True)
class Operand:
    """One operand: the field that holds it, its kind (x, f, imm, uimm or an enum name such
    as mxfmt) and its role (the name the semantics line uses)."""
    field: Field
    kind: str
    role: str

    @property
    def is_reg(self) -> bool:
        return self.kind in NREGS

    @property
    def lo(self) -> int:
        if self.is_reg or self.kind == "uimm" or self.kind in _t.ENUMS:
            return 0
        return -(1 << (self.field.width - 1))

    @property
    def hi(self) -> int:
        if self.is_reg:
            return NREGS[self.kind] - 1
        if self.kind == "imm":
            return (1 << (self.field.width - 1)) - 1
        if self.kind in _t.ENUMS:
            return max(_t.ENUMS[self.kind].values())
        return (1 << self.field.width) - 1

    def valid(self, v: int) -> bool:
        if self.kind in _t.ENUMS:
            return v in _t.ENUMS[self.kind].values()
        return self.lo <= v <= self.hi

    def format(self, v: int) -> str:
        """The operand as assembly text."""
        if self.is_reg:
            return f"{self.kind}{v}"
        if self.kind in _t.ENUMS:
            return {val: n for n, val in _t.ENUMS[self.kind].items()}[v]
        if self.kind == "uimm" and self.field.width >= 16:
            return f"0x{v:X}"
        return str(v)

    def describe(self) -> str:
        if self.is_reg:
            return f"an {self.kind} register ({self.kind}0..{self.kind}{NREGS[self.kind] - 1})"
        if self.kind in _t.ENUMS:
            return f"a {self.kind} name ({', '.join(_t.ENUMS[self.kind])})"
        return f"{'an' if self.kind == 'imm' else 'a'} {self.kind} ({self.lo}..{self.hi})"


@dataclass(frozen=True)
class Instr:
    name: str
    opcode: int
    cls: str
    operands: tuple[Operand, ...]
    semantics: str
    used: int          # bits that may be 1 in a legal word (opcode and operand fields)

    @property
    def field_mask(self) -> int:
        """The opcode and operand fields, whole (used is this less unneeded register bits)."""
        m = _OPCODE.mask
        for o in self.operands:
            m |= o.field.mask
        return m

    @property
    def class_(self) -> str:
        return self.cls

    @property
    def syntax(self) -> str:
        return self.name + (" " + ", ".join(o.role for o in self.operands) if self.operands else "")


INSTRS: dict[str, Instr] = {}
for _i in _t.INSTRS:
    INSTRS[_i["name"]] = Instr(
        name=_i["name"], opcode=_i["opcode"], cls=_i["class"],
        operands=tuple(Operand(FIELDS[f], k, r) for f, k, r in _i["operands"]),
        semantics=_i["semantics"], used=_i["used"])
BY_OPCODE: dict[int, Instr] = {i.opcode: i for i in INSTRS.values()}
del _i


class Decoded(NamedTuple):
    """A decoded word: the mnemonic and its operand values in assembly order (register
    numbers, enum values and immediates as ints)."""
    name: str
    operands: tuple[int, ...]

    @property
    def instr(self) -> Instr:
        return INSTRS[self.name]

    @property
    def args(self) -> dict[str, int]:
        """Operand values by role (the names the semantics line uses)."""
        return {o.role: v for o, v in zip(self.instr.operands, self.operands)}

    @property
    def word(self) -> int:
        return encode(self.name, *self.operands)

    def text(self) -> str:
        return format_instr(self.name, self.operands)

    def __str__(self) -> str:
        return self.text()


def _lookup(name: str) -> Instr:
    ins = INSTRS.get(name) or INSTRS.get(name.upper())
    if ins is None:
        raise EncodeError(f"unknown mnemonic {name!r}{_suggest(name)}")
    return ins


def _suggest(name: str) -> str:
    close = difflib.get_close_matches(name.upper(), INSTRS, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def _operand_value(ins: Instr, o: Operand, v: object) -> int:
    """An int operand value, or a register/enum name accepted for convenience."""
    if isinstance(v, str):
        s = v.strip()
        if o.is_reg and s[:1].lower() == o.kind and s[1:].isascii() and s[1:].isdigit():
            v = int(s[1:])
        elif o.kind in _t.ENUMS and s.lower() in _t.ENUMS[o.kind]:
            v = _t.ENUMS[o.kind][s.lower()]
        else:
            raise EncodeError(f"{ins.name} operand {o.role}: {v!r} is not {o.describe()}")
    if isinstance(v, bool) or not isinstance(v, int):
        raise EncodeError(f"{ins.name} operand {o.role}: {v!r} is not an int")
    if not o.valid(v):
        raise EncodeError(f"{ins.name} operand {o.role} = {v} out of range: expected {o.describe()}")
    return v


def encode(name: str, *operand_values: int | str) -> int:
    """The 32-bit word for `name` with operands in assembly order (ints; "x3"/"f1"/"e4m3"
    strings are accepted too). Raises EncodeError on any bad value."""
    ins = _lookup(name)
    if len(operand_values) != len(ins.operands):
        raise EncodeError(f"{ins.name} takes {len(ins.operands)} operand(s) "
                          f"({', '.join(o.role for o in ins.operands) or 'none'}), "
                          f"got {len(operand_values)}")
    word = _OPCODE.insert(ins.opcode)
    for o, v in zip(ins.operands, operand_values):
        word |= o.field.insert(_operand_value(ins, o, v))
    return word


def _reserved_use(opc: int) -> str | None:
    return next((use for first, last, use in RESERVED if first <= opc <= last), None)


def decode(word: int) -> Decoded:
    """Decode one word; raises DisasmError (with the word in hex and why) for an unknown
    opcode, a bit set outside the instruction's fields, or an invalid operand value."""
    if isinstance(word, bool) or not isinstance(word, int) or not 0 <= word <= _WORD_MASK:
        raise DisasmError(f"{word!r} is not a {WORD_BITS}-bit word")
    opc = _OPCODE.extract(word)
    ins = BY_OPCODE.get(opc)
    if ins is None:
        use = _reserved_use(opc)
        why = f"reserved for {use}" if use else "not assigned"
        raise DisasmError(f"0x{word:08X}: unknown opcode 0x{opc:02X} ({why})")
    stray = word & ~ins.field_mask & _WORD_MASK
    if stray:
        raise DisasmError(f"0x{word:08X}: {ins.name} with bits 0x{stray:08X} set outside its fields "
                          f"(legal bits 0x{ins.used:08X})")
    vals = []
    for o in ins.operands:
        v = o.field.extract(word)
        if not o.valid(v):
            shown = f"{o.kind}{v}" if o.is_reg else str(v)
            raise DisasmError(f"0x{word:08X}: {ins.name} operand {o.role} = {shown} is not "
                              f"{o.describe()}")
        vals.append(v)
    # With every field valid, only legal bits can be set (the RTL checks the same mask).
    assert word & ~ins.used & _WORD_MASK == 0, hex(word)
    return Decoded(ins.name, tuple(vals))


def class_of(word: int) -> str:
    """The class (control, scalar_int, ...) of the instruction a word's opcode names.
    Raises DisasmError for an unknown opcode; other bits are not checked (decode does that)."""
    opc = _OPCODE.extract(word & _WORD_MASK)
    ins = BY_OPCODE.get(opc)
    if ins is None:
        raise DisasmError(f"0x{word & _WORD_MASK:08X}: unknown opcode 0x{opc:02X}")
    return ins.cls


def format_instr(name: str, operands: Iterable[int]) -> str:
    """Assembly text for an instruction (re-assembles to the same word)."""
    ins = _lookup(name)
    ops = [o.format(v) for o, v in zip(ins.operands, operands)]
    return ins.name + (" " + ", ".join(ops) if ops else "")


# ---- assembler ---------------------------------------------------------------------------

_LABEL_RE = re.compile(r"[A-Za-z_.][A-Za-z0-9_.$]*")
_INT_RE = re.compile(r"[+-]?(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|[0-9][0-9_]*)\Z")
_REG_RE = re.compile(r"([A-Za-z]+)([0-9]+)\Z")
# Operands that may be written @label: a loop's body length.
_LOOP_LEN_FIELD = "len"


@dataclass
class _Line:
    lineno: int
    index: int                                  # instruction index in the program
    ins: Instr
    mcol: int                                   # column of the mnemonic
    ops: list[tuple[str, int]]                  # operand text and its column


def _parse_int(s: str) -> int | None:
    if not _INT_RE.match(s):
        return None
    t = s.replace("_", "")
    sign = -1 if t.startswith("-") else 1
    t = t.lstrip("+-")
    try:                        # "0x_" has no digits; 5000 digits pass Python's int limit
        return sign * int(t, 0 if t[:2].lower() in ("0x", "0b", "0o") else 10)
    except ValueError:
        return None


def _split_operands(text: str, start_col: int) -> list[tuple[str, int]]:
    """Comma-separated operands with the 1-based column each starts at."""
    out: list[tuple[str, int]] = []
    pos = 0
    for part in text.split(","):
        lead = len(part) - len(part.lstrip())
        out.append((part.strip(), start_col + pos + lead))
        pos += len(part) + 1
    return out


def assemble_words(text: str, filename: str = "<string>") -> list[int]:
    """Assemble source text into instruction words (see the module docstring); an empty
    source gives []. Raises AsmError (only), naming file, line and column."""
    labels: dict[str, tuple[int, int]] = {}         # name -> (instruction index, line)
    lines: list[_Line] = []

    def fail(lineno: int, col: int, msg: str) -> AsmError:
        return AsmError(filename, lineno, col, msg)

    for lineno, raw in enumerate(text.splitlines(), 1):
        cut = min((i for i in (raw.find("#"), raw.find(";")) if i >= 0), default=len(raw))
        code = raw[:cut].rstrip()
        col0 = len(code) - len(code.lstrip())
        rest = code[col0:]
        if not rest:
            continue
        m = re.match(r"([A-Za-z_.][A-Za-z0-9_.$]*)\s*:", rest)
        if m:
            name = m.group(1)
            if name in labels:
                raise fail(lineno, col0 + 1, f"duplicate label {name!r} "
                                             f"(first defined on line {labels[name][1]})")
            labels[name] = (len(lines), lineno)
            after = rest[m.end():]
            col0 += m.end() + (len(after) - len(after.lstrip()))
            rest = after.strip()
            if not rest:
                continue
        m = re.match(r"\S+", rest)
        mnem = m.group(0)
        mcol = col0 + 1
        ins = INSTRS.get(mnem.upper())
        if ins is None:
            if mnem.endswith(":"):
                raise fail(lineno, mcol, f"bad label {mnem[:-1]!r}: a label is a name "
                                         "(letters, digits, _ . $) followed by ':'")
            raise fail(lineno, mcol, f"unknown mnemonic {mnem!r}{_suggest(mnem)}")
        optext = rest[m.end():]
        ops = _split_operands(optext, mcol + m.end()) if optext.strip() else []
        lines.append(_Line(lineno, len(lines), ins, mcol, ops))

    words = []
    for ln in lines:
        ins = ln.ins
        n = len(ins.operands)
        if len(ln.ops) != n:
            want = f"{n} operand{'s' if n != 1 else ''}"
            if n:
                want += f" ({', '.join(o.role for o in ins.operands)})"
            col = ln.ops[n][1] if len(ln.ops) > n else ln.mcol
            raise fail(ln.lineno, col, f"{ins.name} takes {want}, got {len(ln.ops)}")
        word = _OPCODE.insert(ins.opcode)
        for k, (o, (tok, col)) in enumerate(zip(ins.operands, ln.ops), 1):
            what = f"operand {k} ({o.role}) of {ins.name}"
            if not tok:
                raise fail(ln.lineno, col, f"{what} is empty")
            v = _asm_operand(o, tok, what, ln, labels, lambda c, msg: fail(ln.lineno, c, msg), col)
            word |= o.field.insert(v)
        words.append(word)
    return words


def _asm_operand(o: Operand, tok: str, what: str, ln: _Line, labels: dict, fail, col: int) -> int:
    if o.is_reg:
        m = _REG_RE.match(tok)
        if m is None or m.group(1).lower() not in NREGS:
            raise fail(col, f"{what} must be {o.describe()}, got {tok!r}")
        kind, num = m.group(1).lower(), int(m.group(2))
        if kind != o.kind:
            raise fail(col, f"{what} must be {o.describe()}, got {kind} register {tok!r}")
        if num >= NREGS[kind] or (len(m.group(2)) > 1 and m.group(2).startswith("0")):
            raise fail(col, f"no register {tok!r}: {what} must be {o.describe()}")
        return num
    if o.kind in _t.ENUMS:
        vals = _t.ENUMS[o.kind]
        if tok.lower() not in vals:
            raise fail(col, f"{what}: unknown {o.kind} {tok!r} (expected one of {', '.join(vals)})")
        return vals[tok.lower()]
    if tok.startswith("@"):
        if o.field.name != _LOOP_LEN_FIELD:
            raise fail(col, f"{what}: a @label is only allowed as a loop length")
        name = tok[1:]
        if name not in labels:
            close = difflib.get_close_matches(name, labels, n=1)
            raise fail(col, f"unknown label {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""))
        target = labels[name][0]
        v = target - ln.index - 1
        if v < 1:
            raise fail(col, f"label {name!r} gives an empty or negative loop body ({v}): the "
                            f"label must follow at least one instruction after {ln.ins.name}")
        if v > o.hi:
            raise fail(col, f"loop body up to label {name!r} is {v} instructions, out of range "
                            f"{o.lo}..{o.hi}")
        return v
    v = _parse_int(tok)
    if v is None:
        raise fail(col, f"{what} must be {o.describe()}, got {tok!r}")
    if not o.lo <= v <= o.hi:
        raise fail(col, f"immediate {tok} out of range for {what}: {o.lo}..{o.hi}")
    return v


def assemble(text: str, filename: str = "<string>") -> bytes:
    """Assemble source text into a program binary: 32-bit little-endian words. Raises
    AsmError for a source error and for a source without instructions."""
    words = assemble_words(text, filename)
    if not words:
        raise AsmError(filename, 1, 1, "no instructions: a program needs at least one (it stops at C_HALT)")
    return struct.pack(f"<{len(words)}I", *words)


# ---- disassembler ------------------------------------------------------------------------

def _words(data: bytes, base: int) -> list[int]:
    if len(data) % 4:
        raise DisasmError(f"binary of {len(data)} bytes is not a whole number of 32-bit words")
    return list(struct.unpack(f"<{len(data) // 4}I", data))


def disassemble(data: bytes, base: int = 0, addresses: bool = False) -> list[str]:
    """One line per word. Without addresses the lines re-assemble to the same bytes; with
    addresses each line is `ADDR:  WORD  instruction` (a listing). Raises DisasmError naming
    the offset and the word for any illegal word: never a guess."""
    out = []
    for k, w in enumerate(_words(bytes(data), base)):
        addr = base + 4 * k
        try:
            text = decode(w).text()
        except DisasmError as e:
            raise DisasmError(f"offset 0x{addr:X}: {e}") from None
        out.append(f"{addr:08X}:  {w:08X}  {text}" if addresses else text)
    return out


def listing(data: bytes, base: int = 0) -> str:
    """The text form with addresses and words, one instruction a line."""
    return "\n".join(disassemble(data, base, addresses=True)) + ("\n" if data else "")


def _imm_operand(name: str) -> Operand:
    return next(o for o in INSTRS[name].operands if not o.is_reg)


# S_LUI writes its immediate shifted left by the bits the immediate lacks of a word.
LUI_SHIFT: int = WORD_BITS - _imm_operand("S_LUI").field.width


def load_imm(rd: str | int, value: int, *, always_two: bool = False) -> list[str]:
    """Assembly that sets register ``rd`` ("x5" or 5) to the 32-bit ``value`` (taken
    modulo 2**32): one S_ADDI when the value fits its signed immediate, else S_LUI of the
    high bits (shifted left by LUI_SHIFT) and S_ADDI of the low ones. ``always_two`` emits
    the S_LUI + S_ADDI pair for every value, so the instruction count does not depend on it."""
    reg = f"x{rd}" if isinstance(rd, int) else rd
    addi = _imm_operand("S_ADDI")
    v = value & _WORD_MASK
    signed = v - (1 << WORD_BITS) if v >> (WORD_BITS - 1) else v
    if not always_two and addi.lo <= signed <= addi.hi:
        return [f"S_ADDI {reg}, x0, {signed}"]
    return [f"S_LUI {reg}, {v >> LUI_SHIFT}", f"S_ADDI {reg}, {reg}, {v & ((1 << LUI_SHIFT) - 1)}"]
