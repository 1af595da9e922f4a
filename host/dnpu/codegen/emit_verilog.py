"""Verilog headers of `define macros: dnpu_isa.vh (opcodes, fields, used-bit masks, enums),
dnpu_csr.vh (register offsets, field bits, error causes), dnpu_serial.vh (the serial link's
protocol constants) and one dnpu_cfg_<profile>.vh per hardware profile."""

from __future__ import annotations

import json
import re
from typing import Any

from dnpu.codegen.isa_model import CLASSES, Isa
from dnpu.codegen.csr_model import Csr
from dnpu.codegen.serial_model import Serial
from dnpu.codegen.tables import Profile
from dnpu.codegen.validate import CodegenError, enum_width
from dnpu.codegen.text import banner, one_line

RTL_GEN = "hw/rtl/generated"
# Verilog macro prefix of a CSR enum (the spec names err_cause's values DNPU_ERR_<CAUSE>).
ENUM_PREFIX = {"err_cause": "ERR"}


class Defines:
    """The `define lines of one header, refusing a macro defined twice."""

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

    def render(self, sources: str, guard: str, prologue: str = "") -> str:
        """The header: banner, include guard, prologue (Verilog lines), the defines."""
        return (banner(sources, "//") + f"`ifndef {guard}\n`define {guard}\n" + prologue + "\n"
                + "\n".join(self.lines) + "\n\n`endif // " + guard + "\n")


def vhex(width: int, v: int) -> str:
    """A sized Verilog hex literal, e.g. 32'h0000ABCD."""
    return f"{width}'h{v:0{(width + 3) // 4}X}"


def emit_isa_vh(isa: Isa) -> str:
    d = Defines(f"{RTL_GEN}/dnpu_isa.vh")
    d.comment(f"{isa.name} ISA {isa.version[0]}.{isa.version[1]}: opcodes, instruction fields, "
              "used-bit masks, enums.")
    d.comment()
    d.define("DNPU_ISA_VERSION", vhex(32, isa.version_word), "major << 16 | minor")
    d.define("DNPU_ISA_VERSION_MAJOR", isa.version[0])
    d.define("DNPU_ISA_VERSION_MINOR", isa.version[1])
    d.define("DNPU_ISA_WORD_BITS", isa.word_bits)
    d.comment()
    d.comment("Register files")
    for k, r in isa.regs.items():
        d.define(f"DNPU_NREGS_{k.upper()}", r["count"], one_line(r["doc"]))
    d.comment()
    d.comment("Instruction word fields: bits [LSB + W - 1 : LSB]")
    for f in isa.fields.values():
        sg = ", signed" if f.signed else ""
        d.define(f"DNPU_F_{f.name.upper()}_LSB", f.lsb, f"[{f.msb}:{f.lsb}]{sg}")
        d.define(f"DNPU_F_{f.name.upper()}_W", f.width)
    for en, vals in isa.enums.items():
        w = max([enum_width(vals.values())] + [isa.fields[f].width for f in isa.fields_of_kind(en)])
        d.comment()
        d.comment(f"enum {en}")
        d.define(f"DNPU_{en.upper()}_W", w)
        if sorted(vals.values()) == list(range(len(vals))):
            d.define(f"DNPU_{en.upper()}_COUNT", len(vals), f"values 0..{len(vals) - 1}; others are illegal")
        for vn, v in vals.items():
            d.define(f"DNPU_{en.upper()}_{vn.upper()}", f"{w}'d{v}")
    opw = isa.fields["opcode"].width
    for cls in CLASSES:
        if isa.instrs_of(cls):
            d.comment()
            d.comment(f"Opcodes: {cls}")
        for i in isa.instrs_of(cls):
            d.define(f"DNPU_OP_{i.name}", vhex(opw, i.opcode), i.syntax)
    d.comment()
    d.comment("Reserved opcode ranges (decode as ILLEGAL_INSTR until assigned)")
    for r in isa.reserved:
        d.comment(f"  {vhex(opw, r.first)} .. {vhex(opw, r.last)}  {one_line(r.use)}")
    d.comment()
    d.comment("Bits each instruction uses (opcode and operand fields); a word with a bit set")
    d.comment("outside its instruction's mask is illegal (fault ILLEGAL_INSTR).")
    for cls in CLASSES:
        for i in isa.instrs_of(cls):
            d.define(f"DNPU_USED_{i.name}", vhex(32, i.used))
    return d.render(isa.file, "DNPU_ISA_VH")


def emit_csr_vh(csr: Csr) -> str:
    d = Defines(f"{RTL_GEN}/dnpu_csr.vh")
    aw = csr.addr_width
    d.comment("Control/status registers (AXI4-Lite slave): byte offsets, field bits, error causes.")
    d.comment("A 64-bit counter is two words, _LO at the offset and _HI at offset + 4; reading _LO")
    d.comment("latches _HI so LO-then-HI reads are consistent.")
    d.comment()
    d.define("DNPU_CSR_DATA_W", csr.data_width)
    d.define("DNPU_CSR_ADDR_W", aw)
    d.define("DNPU_ID_MAGIC", vhex(32, csr.id_magic), csr.id_ascii)
    d.comment()
    d.comment("Register offsets")
    for r in csr.regs:
        for k, (name, off) in enumerate(r.word_list()):
            d.define(f"DNPU_CSR_{name}", vhex(aw, off), f"{r.access}: {one_line(r.doc)}" if k == 0 else "")
        if r.count > 1:
            d.define(f"DNPU_CSR_{r.name}_COUNT", r.count)
    freg = [r for r in csr.regs if r.fields]
    if freg:
        d.comment()
        d.comment("Register fields: bit position (and width when wider than 1)")
        for r in freg:
            for f in r.fields:
                d.define(f"DNPU_CSR_{r.name}_{f.name}_BIT", f.lsb, one_line(f.doc))
                if f.width > 1:
                    d.define(f"DNPU_CSR_{r.name}_{f.name}_W", f.width)
    for en, vals in csr.enums.items():
        pre = ENUM_PREFIX.get(en, en.upper())
        w = enum_width(v for _, v, _ in vals)
        d.comment()
        d.comment(f"enum {en}" + "".join(f" (register {r.name})" for r in csr.regs if r.enum == en))
        d.define(f"DNPU_{pre}_W", w)
        for vn, v, doc in vals:
            d.define(f"DNPU_{pre}_{vn.upper()}", f"{w}'d{v}", one_line(doc))
    return d.render(csr.file, "DNPU_CSR_VH")


def profile_vh_name(profile: str) -> str:
    return f"dnpu_cfg_{profile.replace('-', '_')}.vh"


def profile_define(profile: str) -> str:
    """The macro that picks a profile's header (dnpu_cfg.vh; dnpu.codegen.rtl re-exports it)."""
    return "DNPU_PROFILE_" + profile.upper().replace("-", "_")


def emit_cfg_vh(p: Profile) -> str:
    tag = re.sub(r"[^A-Za-z0-9]", "_", p.name).upper()
    d = Defines(f"{RTL_GEN}/{profile_vh_name(p.name)}")
    d.comment(f"Hardware profile {p.name!r}: every integer/boolean parameter; strings, lists and")
    d.comment("non-integer numbers are listed as comments. Include exactly one dnpu_cfg_*.vh.")
    d.comment()
    d.define("DNPU_CFG_VH", "")
    d.define(f"DNPU_CFG_PROFILE_{tag}", 1)
    d.define("DNPU_CFG_HASH32", vhex(32, p.config_hash32), "CSR CONFIG_HASH")
    d.comment(f"config_hash = {p.config_hash}")
    d.comment()
    for key in sorted(p.flat):
        v = p.flat[key]
        mname = "DNPU_CFG_" + re.sub(r"[^A-Za-z0-9_]", "_", key).upper()
        if isinstance(v, (bool, int)):
            d.define(mname, int(v))
        else:
            if isinstance(v, tuple):
                v = list(v)
            d.comment(f"{mname} = {json.dumps(v, ensure_ascii=True)}")
    return d.render(f"{p.file} (through dnpu.spec.config)", f"DNPU_CFG_{tag}_VH",
                    "`ifdef DNPU_CFG_VH\n"
                    "  // Another profile header was included first and these macros would silently\n"
                    "  // redefine its values: the next line is a deliberate syntax error.\n"
                    "  ERROR__two_dnpu_cfg_headers_included ERROR__two_dnpu_cfg_headers_included;\n"
                    "`endif\n")


CFG_SELECT_VH = "dnpu_cfg.vh"


def emit_cfg_select_vh(profiles: list[Profile]) -> str:
    """dnpu_cfg.vh: the profile header one DNPU_PROFILE_<NAME> define selects, for every RTL
    file that needs the profile's sizes (dnpu_top and its wrappers), whatever order a tool
    reads them in; none defined is an error (a board build must never silently get the
    simulation profile), two are an error in the profile headers."""
    lines = [banner("hw/config/*.toml", "//").rstrip(),
             "// Define exactly one of: " + ", ".join(profile_define(p.name) for p in profiles) + "."]
    for p in profiles:
        lines += [f"`ifdef {profile_define(p.name)}", f"`include \"{profile_vh_name(p.name)}\"", "`endif"]
    lines += ["`ifndef DNPU_CFG_VH",
              "  // No profile define given: the next line is a deliberate syntax error.",
              "  ERROR__define_one_DNPU_PROFILE_x ERROR__define_one_DNPU_PROFILE_x;",
              "`endif"]
    return "\n".join(lines) + "\n"


def emit_serial_vh(s: Serial, profiles: list[Profile]) -> str:
    d = Defines(f"{RTL_GEN}/dnpu_serial.vh")
    d.comment("Serial link (dnpu_uart_bridge): link constants, frame sizes, command and status")
    d.comment("codes, address windows and INFO word indices. The protocol is in docs/SERIAL.md.")
    d.comment()
    d.comment("Link constants ([link])")
    for k, v in s.link.items():
        name = f"DNPU_SERIAL_{k.upper()}"
        if k.endswith(("sync", "poly", "init")):
            d.define(name, vhex(8, v))
        elif k == "version":
            d.define(name, vhex(32, v))
        else:
            d.define(name, v)
    fixed = [f for f in s.request if isinstance(f.bytes, int)]
    d.comment()
    d.comment("Frame sizes in bytes: sync + fixed fields (request), sync + fixed fields before DATA (reply)")
    d.define("DNPU_SERIAL_REQ_HEADER_BYTES", 1 + sum(f.bytes for f in fixed),
             "sync, " + ", ".join(f.name for f in fixed) + "; then DATA (WRITE) and the CRC")
    head = []
    for f in s.reply:
        if not isinstance(f.bytes, int):
            break
        head.append(f)
    d.define("DNPU_SERIAL_REPLY_HEADER_BYTES", 1 + sum(f.bytes for f in head),
             "sync, " + ", ".join(f.name for f in head) + "; then DATA, STATUS and the CRC")
    d.comment()
    d.comment("Commands (request CMD)")
    for c in s.commands:
        d.define(f"DNPU_SERIAL_CMD_{c.name}", vhex(8, c.code), one_line(c.doc))
    d.comment()
    d.comment("Statuses (reply STATUS)")
    for c in s.statuses:
        d.define(f"DNPU_SERIAL_ST_{c.name}", vhex(8, c.code), one_line(c.doc))
    d.comment()
    d.comment("Address windows: base byte address (CSR size 2^DNPU_CSR_ADDR_W, MEM size a top parameter)")
    for w in s.windows:
        d.define(f"DNPU_SERIAL_{w.name}_BASE", vhex(32, w.base), one_line(w.doc))
    d.comment()
    d.comment("INFO reply: the index of each word")
    for c in s.info:
        d.define(f"DNPU_SERIAL_INFO_{c.name}", c.code, one_line(c.doc))
    d.define("DNPU_SERIAL_INFO_COUNT", len(s.info))
    d.comment()
    d.comment(f"Clock cycles per bit at {s.link['baud']} baud on the board of the profile that")
    d.comment("DNPU_PROFILE_<NAME> selects: its clock.f_clk_mhz over the baud rate, rounded.")
    for p in profiles:
        f_mhz = float(p.flat["CLOCK_F_CLK_MHZ"])
        d.lines.append(f"`ifdef {profile_define(p.name)}")
        d.names.discard("DNPU_SERIAL_BOARD_CLKS_PER_BIT")    # one branch is taken
        d.define("DNPU_SERIAL_BOARD_CLKS_PER_BIT", max(1, round(f_mhz * 1e6 / s.link["baud"])),
                 f"{f_mhz:g} MHz, profile {p.name}")
        d.lines.append("`endif")
    return d.render(f"{s.file} and the profiles' clocks", "DNPU_SERIAL_VH")

