"""dnpu.spec.isa: encode/decode, the assembler and the disassembler, all on the generated table."""

import struct

import pytest
from hypothesis import given, settings, strategies as st

from dnpu.spec import isa
from dnpu.spec.generated import isa_table
from dnpu.spec.isa import AsmError, DisasmError, EncodeError

NAMES = sorted(isa.INSTRS)


# ---- strategies ---------------------------------------------------------------------------

def operand_values(o: isa.Operand) -> st.SearchStrategy[int]:
    if o.kind in isa_table.ENUMS:
        return st.sampled_from(sorted(isa_table.ENUMS[o.kind].values()))
    return st.integers(o.lo, o.hi)


@st.composite
def instructions(draw) -> tuple[str, tuple[int, ...]]:
    name = draw(st.sampled_from(NAMES))
    ops = tuple(draw(operand_values(o)) for o in isa.INSTRS[name].operands)
    return name, ops


programs = st.lists(instructions(), min_size=0, max_size=40)


def binary(prog) -> bytes:
    return b"".join(struct.pack("<I", isa.encode(n, *ops)) for n, ops in prog)


# ---- the table ------------------------------------------------------------------------------

def test_table_shape():
    assert isa.VERSION == tuple(isa_table.VERSION)
    assert isa.VERSION_WORD == isa.VERSION[0] << 16 | isa.VERSION[1]
    assert isa.NREGS_X == 16 and isa.NREGS_F == 8
    assert len(isa.BY_OPCODE) == len(isa.INSTRS)
    for ins in isa.INSTRS.values():
        assert isa.BY_OPCODE[ins.opcode] is ins
        assert ins.cls in isa.CLASSES
        assert ins.used & isa.FIELDS["opcode"].mask == isa.FIELDS["opcode"].mask
        for first, last, _use in isa.RESERVED:
            assert not first <= ins.opcode <= last
    assert isa.MXFMT["e4m3"] == 0 and isa.MXFMT_NAMES[isa.MXFMT["int8"]] == "int8"


def test_isa_module_reads_no_toml():
    import inspect
    src = inspect.getsource(isa)
    assert "tomllib" not in src and "isa.toml\")" not in src


# ---- encode / decode -------------------------------------------------------------------------

@settings(max_examples=500, deadline=None)
@given(instructions())
def test_encode_decode_roundtrip(item):
    name, ops = item
    word = isa.encode(name, *ops)
    assert 0 <= word < 1 << 32
    d = isa.decode(word)
    assert d == (name, ops)
    assert d.word == word
    assert isa.class_of(word) == isa.INSTRS[name].cls
    # the text form assembles back to the same word
    assert isa.assemble_words(d.text()) == [word]


@settings(max_examples=2000, deadline=None)
@given(st.integers(0, 0xFFFFFFFF))
def test_decode_random_word_never_guesses(word):
    """Any 32-bit word either decodes to something that encodes back to exactly that word,
    or raises DisasmError."""
    try:
        d = isa.decode(word)
    except DisasmError as e:
        assert f"0x{word:08X}" in str(e)
        return
    assert isa.encode(d.name, *d.operands) == word


def test_decoded_args_by_role():
    d = isa.decode(isa.encode("S_ST_INT", 3, 4, -7))
    assert d.args == {"rs": 3, "rs1": 4, "imm": -7}
    d = isa.decode(isa.encode("V_RED_MAX_IDX", 1, 2, 3, 4))
    assert d.args == {"rd": 1, "idx": 2, "va": 3, "n": 4}
    assert str(d) == "V_RED_MAX_IDX f1, x2, x3, x4"


def test_encode_known_words():
    assert isa.encode("C_HALT") == 0x01
    # S_ADDI x1, x0, -1: opcode 0x10, rd=1 at bit 7, rs1=0, imm17 all ones
    assert isa.encode("S_ADDI", 1, 0, -1) == 0x10 | 1 << 7 | 0x1FFFF << 15
    assert isa.encode("s_addi", "x1", "x0", -1) == isa.encode("S_ADDI", 1, 0, -1)
    assert isa.encode("H_PREFETCH_V", 1, 2, 3, "e2m1") == isa.encode("H_PREFETCH_V", 1, 2, 3, 4)


@pytest.mark.parametrize("args, frag", [
    (("S_ADDI", 1, 0, 65536), "out of range"),
    (("S_ADDI", 1, 0, -65537), "-65536..65535"),
    (("S_ADD", 16, 0, 0), "x0..x15"),
    (("S_ADD_FP", 8, 0, 0), "f0..f7"),
    (("S_ADD", 1, 2), "takes 3 operand"),
    (("S_LUI", 1, -1), "0..2097151"),
    (("C_LOOPI", 1, 1024), "0..1023"),
    (("H_PREFETCH_V", 1, 2, 3, 6), "mxfmt"),
    (("H_PREFETCH_V", 1, 2, 3, "e9m9"), "mxfmt"),
    (("S_ADD_FP", "x1", 0, 0), "f register"),
    (("S_ADDD", 1, 2, 3), "did you mean S_ADD"),
    (("S_ADD", 1.0, 2, 3), "not an int"),
])
def test_encode_errors(args, frag):
    with pytest.raises(EncodeError, match=None) as ei:
        isa.encode(*args)
    assert frag in str(ei.value)


def test_unknown_opcodes_raise():
    for opc in range(128):
        if opc in isa.BY_OPCODE:
            continue
        with pytest.raises(DisasmError, match=f"unknown opcode 0x{opc:02X}"):
            isa.decode(opc)
    with pytest.raises(DisasmError, match="reserved for matrix unit"):
        isa.decode(0x79)
    with pytest.raises(DisasmError, match="0x00000000"):
        isa.decode(0)                       # zeroed memory is not an instruction
    with pytest.raises(DisasmError, match="unknown opcode"):
        isa.class_of(0x7F)


def test_every_unused_bit_is_illegal():
    """For each instruction, each bit outside its used mask makes the word illegal."""
    for ins in isa.INSTRS.values():
        base = isa.encode(ins.name, *(o.lo if o.kind not in isa_table.ENUMS else 0 for o in ins.operands))
        for bit in range(32):
            word = base | 1 << bit
            if ins.used >> bit & 1:
                continue
            with pytest.raises(DisasmError) as ei:
                isa.decode(word)
            assert f"0x{word:08X}" in str(ei.value) and ins.name in str(ei.value)


def test_reserved_bits_and_bad_operands_messages():
    with pytest.raises(DisasmError, match=r"0x80000012: S_ADD with bits 0x80000000 set outside"):
        isa.decode(isa.encode("S_ADD", 0, 0, 0) | 1 << 31)
    # an f register field's top bit: f8..f15 do not exist
    with pytest.raises(DisasmError, match=r"operand rd = f9 is not an f register"):
        isa.decode(isa.encode("S_ADD_FP", 1, 2, 3) | 1 << 10)
    with pytest.raises(DisasmError, match=r"operand fmt = 7"):
        isa.decode(isa.encode("H_PREFETCH_V", 1, 2, 3, 0) | 7 << 23)
    with pytest.raises(DisasmError, match="32-bit word"):
        isa.decode(1 << 32)


@pytest.mark.parametrize("reg, ok", [("x0", True), ("x15", True), ("x16", False), ("x99", False)])
def test_x_register_limits(reg, ok):
    src = f"S_ADD {reg}, x1, x2"
    if ok:
        assert isa.decode(isa.assemble_words(src)[0]).operands[0] == int(reg[1:])
    else:
        with pytest.raises(AsmError, match=r"<string>:1:7: no register .*x0\.\.x15"):
            isa.assemble(src)


@pytest.mark.parametrize("reg, ok", [("f0", True), ("f7", True), ("f8", False), ("f15", False)])
def test_f_register_limits(reg, ok):
    src = f"S_ADD_FP f1, {reg}, f2"
    if ok:
        assert isa.decode(isa.assemble_words(src)[0]).operands[1] == int(reg[1:])
    else:
        with pytest.raises(AsmError, match=r"<string>:1:14: no register .*f0\.\.f7"):
            isa.assemble(src)


# ---- assembler --------------------------------------------------------------------------------

def test_assemble_syntax():
    src = """
    # a comment line
    ; another
      s_addi x1, x0, -5        # lower-case mnemonic, negative imm
      S_ADDI x2,x1,0x10        ; hex, no spaces
      S_ADDI x3, x2, 0b101
      S_ADDI x4, x3, +7
      S_LUI  x5, 0x1FFFFF
      S_LI_FP f1, 0xFF80
      H_PREFETCH_V x1, x2, x3, INT8
      C_HALT
    """
    words = isa.assemble_words(src, "t.s")
    assert [isa.decode(w) for w in words] == [
        ("S_ADDI", (1, 0, -5)), ("S_ADDI", (2, 1, 16)), ("S_ADDI", (3, 2, 5)), ("S_ADDI", (4, 3, 7)),
        ("S_LUI", (5, 0x1FFFFF)), ("S_LI_FP", (1, 0xFF80)), ("H_PREFETCH_V", (1, 2, 3, 5)),
        ("C_HALT", ()),
    ]
    assert isa.assemble(src) == struct.pack("<8I", *words)
    assert isa.assemble_words("") == [] and isa.assemble_words("# nothing\n\n") == []
    for empty in ("", "# nothing\n\n", "  ; c\n"):
        with pytest.raises(isa.AsmError, match=r"^e\.s:1:1: no instructions: a program needs at least one"):
            isa.assemble(empty, "e.s")


@pytest.mark.parametrize("src, line, col, frag", [
    ("S_ADDD x1, x2, x3", 1, 1, "unknown mnemonic 'S_ADDD'; did you mean S_ADD?"),
    ("\n\n   V_ADD_V x1, x2, x3, x4", 3, 4, "did you mean V_ADD_VV?"),
    ("FROB x1", 1, 1, "unknown mnemonic 'FROB'"),
    ("S_ADD x1, x2", 1, 1, "S_ADD takes 3 operands (rd, rs1, rs2), got 2"),
    ("S_ADD x1, x2, x3, x4", 1, 19, "takes 3 operands"),
    ("C_HALT x1", 1, 8, "C_HALT takes 0 operands, got 1"),
    ("S_ADD x1,, x3", 1, 10, "operand 2 (rs1) of S_ADD is empty"),
    ("S_ADD_FP f1, x2, f3", 1, 14, "must be an f register (f0..f7), got x register 'x2'"),
    ("S_ADD x1, f2, x3", 1, 11, "must be an x register (x0..x15), got f register 'f2'"),
    ("S_ADD x1, 5, x3", 1, 11, "must be an x register"),
    ("S_ADDI x1, x0, 65536", 1, 16, "immediate 65536 out of range for operand 3 (imm) of S_ADDI: -65536..65535"),
    ("S_ADDI x1, x0, -65537", 1, 16, "-65536..65535"),
    ("S_LUI x1, -1", 1, 11, "immediate -1 out of range for operand 2 (imm) of S_LUI: 0..2097151"),
    ("S_SLLI x1, x2, 32", 1, 16, "0..31"),
    ("S_LD_ARG x1, 8", 1, 14, "0..7"),
    ("C_LOOPI 32768, 1", 1, 9, "0..32767"),
    ("S_ADDI x1, x0, five", 1, 16, "must be an imm (-65536..65535), got 'five'"),
    ("S_ADDI x1, x0, @a\na: C_HALT", 1, 16, "only allowed as a loop length"),
    ("H_PREFETCH_V x1, x2, x3, e9m9", 1, 26, "unknown mxfmt 'e9m9' (expected one of e4m3"),
    ("C_LOOPI 2, @nowhere\nC_NOP\nend:", 1, 12, "unknown label 'nowhere'"),
    ("C_LOOPI 2, @ned\nC_NOP\nend:", 1, 12, "did you mean 'end'?"),
    ("a:\nC_NOP\n  a:\n", 3, 3, "duplicate label 'a' (first defined on line 1)"),
    ("top:\nC_NOP\nC_LOOPI 2, @top", 3, 12, "empty or negative loop body"),
    ("C_LOOPI 2, @here\nhere: C_NOP", 1, 12, "empty or negative loop body (0)"),
    ("C_NOP\n  S_ADD x1, x2, x3  # ok\n\tS_SUB x1, x2", 3, 2, "S_SUB takes 3 operands"),
    ("lbl: S_ADD x1, x2, x99", 1, 20, "no register 'x99'"),
    ("1abc: C_NOP", 1, 1, "bad label '1abc'"),
])
def test_asm_errors(src, line, col, frag):
    with pytest.raises(AsmError) as ei:
        isa.assemble(src, filename="prog.s")
    msg = str(ei.value)
    assert msg.startswith(f"prog.s:{line}:{col}: "), msg
    assert frag in msg, msg
    assert (ei.value.line, ei.value.col) == (line, col)


def test_default_filename():
    with pytest.raises(AsmError, match=r"^<string>:1:1: unknown mnemonic"):
        isa.assemble("NOPE")


def test_label_loop_lengths():
    src = """
        S_ADDI x1, x0, 3
        C_LOOP x1, @outer_end        # body: 4 instructions
          S_ADDI x2, x2, 1
          C_LOOPI 5, @inner_end      # body: 2 instructions
            V_ADD_VV x3, x3, x4, x5
            S_ADDI x6, x6, 1
    inner_end:
          S_ADDI x7, x7, 1
    outer_end: C_HALT
    """
    d = [isa.decode(w) for w in isa.assemble_words(src)]
    assert d[1] == ("C_LOOP", (1, 5))
    assert d[3] == ("C_LOOPI", (5, 2))
    # labels produce the same bytes as the numbers the disassembler prints
    text = "\n".join(isa.disassemble(isa.assemble(src)))
    assert "C_LOOP x1, 5" in text and "C_LOOPI 5, 2" in text
    assert isa.assemble(text) == isa.assemble(src)


def test_label_at_end_of_program_and_limits():
    body = "C_NOP\n" * 1023
    words = isa.assemble_words("C_LOOPI 1, @end\n" + body + "end:\n")
    assert isa.decode(words[0]) == ("C_LOOPI", (1, 1023))
    with pytest.raises(AsmError, match=r"^<string>:1:12: loop body up to label 'end' is 1024 "
                                       r"instructions, out of range 0\.\.1023"):
        isa.assemble("C_LOOPI 1, @end\n" + body + "C_NOP\nend:\n")


# ---- disassembler -----------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(programs, st.integers(0, 0xFFFF).map(lambda a: a * 4))
def test_disassemble_reassembles(prog, base):
    data = binary(prog)
    lines = isa.disassemble(data, base=base)
    assert len(lines) == len(prog)
    assert struct.pack(f"<{len(prog)}I", *isa.assemble_words("\n".join(lines))) == data
    if prog:                                  # an empty source is no program
        assert isa.assemble("\n".join(lines)) == data
    listing = isa.disassemble(data, base=base, addresses=True)
    for k, line in enumerate(listing):
        assert line.startswith(f"{base + 4 * k:08X}:  {struct.unpack_from('<I', data, 4 * k)[0]:08X}  ")
        assert line.endswith(lines[k])


def test_disassemble_errors():
    with pytest.raises(DisasmError, match="not a whole number of 32-bit words"):
        isa.disassemble(b"\x01\x00\x00")
    good = isa.assemble("C_NOP\nC_NOP")
    with pytest.raises(DisasmError, match=r"offset 0x108: 0x0000007F: unknown opcode 0x7F"):
        isa.disassemble(good + struct.pack("<I", 0x7F), base=0x100)
    with pytest.raises(DisasmError, match=r"offset 0x4: 0x80000002: C_NOP with bits"):
        isa.disassemble(good[:4] + struct.pack("<I", 0x80000002))
    assert isa.disassemble(b"") == []


def test_listing_text():
    data = isa.assemble("S_ADDI x1, x0, 5\nC_HALT")
    text = isa.listing(data, base=0x40)
    assert text.splitlines()[0] == f"00000040:  {isa.encode('S_ADDI', 1, 0, 5):08X}  S_ADDI x1, x0, 5"
    assert text.splitlines()[1] == "00000044:  00000001  C_HALT"


@given(st.one_of(st.integers(-(1 << 33), 1 << 33), st.sampled_from([0, -1, 65535, -65536, 65536, 0x7FFFFFFF, 0x80000000])))
@settings(max_examples=300, deadline=None)
def test_load_imm_sets_the_value(value):
    """Executing load_imm's words by their semantics lines (S_ADDI: x[rd] = x[rs1] + imm,
    S_LUI: x[rd] = imm << (32 - imm width)) leaves value mod 2**32 in the register."""
    lines = isa.load_imm("x7", value)
    x = [0] * isa.NREGS_X
    lui_shift = isa.WORD_BITS - next(o for o in isa.INSTRS["S_LUI"].operands if not o.is_reg).field.width
    for w in struct.unpack(f"<{len(lines)}I", isa.assemble("\n".join(lines))):
        d = isa.decode(w)
        a = d.args
        if d.name == "S_ADDI":
            x[a["rd"]] = (x[a["rs1"]] + a["imm"]) & 0xFFFF_FFFF
        else:
            assert d.name == "S_LUI"
            x[a["rd"]] = (a["imm"] << lui_shift) & 0xFFFF_FFFF
    assert x[7] == value & 0xFFFF_FFFF
    v = value & 0xFFFF_FFFF
    signed = v - (1 << 32) if v >> 31 else v
    assert len(lines) == (1 if -(1 << 16) <= signed < (1 << 16) else 2)
    assert isa.load_imm(7, value) == lines
