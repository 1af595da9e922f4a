"""dnpu.spec.csr: the register map API over the generated table, and its agreement with the
generated Verilog header."""

import re

import pytest

from dnpu.spec import csr, isa
from dnpu.spec.generated import csr_table

from conftest import REPO


def test_offsets_unique_aligned_in_range():
    seen: dict[int, str] = {}
    for r in csr.REGS.values():
        assert r.offset % 4 == 0, r.name
        assert r.offset + r.size <= 1 << csr.ADDR_WIDTH, r.name
        for w in range(r.words):
            a = r.offset + 4 * w
            assert a not in seen, f"{r.name} word {w} overlaps {seen.get(a)}"
            seen[a] = r.name
    assert len(csr.ADDR_MAP) == sum(r.words for r in csr.REGS.values()) == len(seen)
    for a, name in csr.ADDR_MAP.items():
        assert csr.offset(name) == a and csr.name_at(a) == name


def test_fixed_registers():
    assert csr.offset("ID") == 0x000
    assert csr.ID_MAGIC == 0x444E5055 == int.from_bytes(b"DNPU", "big")
    assert csr.REGS["ID"].reset == "id_magic" and csr.REGS["ID"].access == "ro"
    assert csr.REGS["ISA_VERSION"].reset == "isa_version"
    assert csr.isa_version_word() == isa.VERSION[0] << 16 | isa.VERSION[1]
    assert csr.offset("status") == csr.REGS["STATUS"].offset      # case-insensitive


def test_64bit_counters():
    counters = [r for r in csr.REGS.values() if r.counter]
    assert {r.name for r in counters} >= {"CYCLES", "BUSY_CYCLES", "INSTRET", "RD_BEATS", "WR_BEATS"}
    for r in counters:
        assert r.width == 64 and r.words == 2 and r.access == "ro"
        lo = csr.offset(r.name)
        assert csr.offset(f"{r.name}_LO") == lo == r.offset
        assert csr.offset(f"{r.name}_HI") == lo + 4
        assert csr.name_at(lo + 4) == f"{r.name}_HI"
    assert csr.combine64(0xFFFFFFFF, 0x1) == 0x1_FFFFFFFF


def test_arg_array():
    arg = csr.REGS["ARG"]
    assert arg.count == 8 == 2 ** isa.FIELDS["argi"].width
    assert arg.access == "rw"
    for k in range(arg.count):
        assert csr.offset(f"ARG{k}") == arg.offset + 4 * k == arg.addr(k)
    assert csr.offset("ARG") == csr.offset("ARG0")
    with pytest.raises(KeyError, match="ARG0..ARG7"):
        csr.offset("ARG8")
    with pytest.raises(IndexError):
        arg.addr(8)


def test_unknown_names():
    with pytest.raises(KeyError, match="did you mean STATUS"):
        csr.offset("STATSU")
    with pytest.raises(KeyError):
        csr.name_at(0x028)
    with pytest.raises(KeyError, match="fields: START"):
        csr.field("CTRL", "GO")


def test_fields():
    assert csr.mask("CTRL", "START") == 1
    assert csr.mask("CTRL", "SOFT_RESET") == 2
    assert csr.mask("STATUS", "ERROR") == 4
    assert csr.get_field("STATUS", "DONE", 0b010) == 1
    assert csr.set_field("STATUS", "ERROR", 0b001, 1) == 0b101
    assert csr.fields_of("STATUS", 0b011) == {"BUSY": 1, "DONE": 1, "ERROR": 0}
    with pytest.raises(ValueError):
        csr.set_field("STATUS", "BUSY", 0, 2)


def test_err_cause_enum():
    assert [(c.name, int(c)) for c in csr.ErrCause] == [(n, v) for n, v, _ in csr_table.ENUMS["err_cause"]]
    assert csr.ErrCause.NONE == 0
    assert csr.ErrCause.ILLEGAL_INSTR == 1
    assert csr.ErrCause(3) is csr.ErrCause.LOOP_OVERFLOW
    assert "AXI4 read" in csr.ErrCause.AXI_READ.doc
    assert all(c.doc for c in csr.ErrCause)
    assert csr.REGS["ERR_CAUSE"].enum == "err_cause"


def test_describe_status():
    assert csr.describe_status(0b101) == "STATUS 0x00000005: BUSY, ERROR"
    assert csr.describe_status(0b010) == "STATUS 0x00000002: DONE"
    assert csr.describe_status(0) == "STATUS 0x00000000: idle (not BUSY, not DONE, not ERROR)"
    assert "unknown bits 0x00000100" in csr.describe_status(0x102)


def test_describe_error():
    s = csr.describe_error(csr.ErrCause.ILLEGAL_INSTR)
    assert s.startswith("ILLEGAL_INSTR (1): unknown opcode")
    assert csr.describe_error(4, err_pc=0x40).endswith("(ERR_PC 0x00000040)")
    assert csr.describe_error(0) == "NONE (0): no fault"
    assert csr.describe_error(99) == "unknown error cause 99"
    assert csr.describe_value("ERR_CAUSE", 2).startswith("ERR_CAUSE = SRAM_RANGE (2)")
    assert csr.describe_value("CTRL", 1) == "CTRL 0x00000001 (START=1, SOFT_RESET=0, CLEAR_COUNTERS=0)"
    assert csr.describe_value("CYCLES_HI", 7) == "CYCLES_HI 0x00000007"


def _defines(path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        m = re.match(r"`define\s+(\w+)\s*(.*?)\s*(//.*)?$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def _vint(v: str) -> int:
    m = re.fullmatch(r"(\d+)'([hd])([0-9A-Fa-f_]+)", v)
    if m:
        return int(m.group(3), 16 if m.group(2) == "h" else 10)
    return int(v)


def test_verilog_header_agrees():
    d = _defines(REPO / "hw/rtl/generated/dnpu_csr.vh")
    words = {k[len("DNPU_CSR_"):]: _vint(v) for k, v in d.items()
             if k.startswith("DNPU_CSR_") and not k.endswith(("_BIT", "_W", "_COUNT", "_VH"))}
    assert words == {n: a for a, n in csr.ADDR_MAP.items()}
    assert _vint(d["DNPU_ID_MAGIC"]) == csr.ID_MAGIC
    assert _vint(d["DNPU_CSR_ARG_COUNT"]) == csr.REGS["ARG"].count
    assert _vint(d["DNPU_CSR_STATUS_DONE_BIT"]) == csr.field("STATUS", "DONE").lsb
    for c in csr.ErrCause:
        assert _vint(d[f"DNPU_ERR_{c.name}"]) == int(c)
    assert 2 ** _vint(d["DNPU_ERR_W"]) > max(csr.ErrCause)
