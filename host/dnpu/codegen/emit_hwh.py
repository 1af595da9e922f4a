"""bitstreams/<board>/dnpu.hwh: the part of a Vivado hardware handoff that PYNQ's Overlay
and dnpu.runtime's pynq backend read, one per FPGA profile: the processing system (its PL
clock 0 at the profile's f_clk_mhz, or the fastest rate below it that the IO PLL divides
to) and the NPU, whose AXI4-Lite window and register map (from hw/csr.toml) become
ip_dict["dnpu_0"]. Laid out as Vivado writes one, so that both of PYNQ's parsers read it:
pynqmetadata's RuntimeMetadataParser (what Overlay uses since PYNQ 3) and the older
pynq.pl_server.hwh_parser (tests/test_pynq_real.py runs both)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dnpu.codegen.csr_model import Csr
from dnpu.codegen.isa_model import Isa
from dnpu.codegen.tables import CONFIG_DIR, Profile, default_root, load_tables
from dnpu.codegen.text import banner, one_line
from dnpu.codegen.validate import CodegenError

HWH_INSTANCE = "dnpu_0"         # the NPU's instance name in the block design (ip_dict key)
HWH_WINDOW = 0x1_0000           # bytes of the AXI4-Lite window the address editor assigns
# The processing system of each FPGA family, by part-number prefix: PYNQ's HWH parsers
# find the PS module by MODTYPE and read its PL clock parameters (enable, two divisors, the
# source PLL; PYNQ 4's parser, pynqmetadata, raises on a PL clock without a source select);
# the NPU's registers sit on the PS's first general-purpose master port, its AXI4 master on
# a high-performance slave port into the PS DDR (physical addresses). PL clock 0 divides
# the IO PLL, the source PYNQ's own board designs use, at the rate those boards run it.
PS_FAMILIES = {
    "xc7z": {"arch": "zynq", "modtype": "processing_system7", "vlnv": "xilinx.com:ip:processing_system7:5.5",
             "master": "M_AXI_GP0", "base": 0x4000_0000, "hp": "S_AXI_HP0", "pll_mhz": 1000.0,
             "div": "PCW_FCLK{i}_PERIPHERAL_DIVISOR{j}", "enable": "PCW_FPGA_FCLK{i}_ENABLE",
             "freq": "PCW_FPGA{i}_PERIPHERAL_FREQMHZ", "act_freq": "PCW_ACT_FPGA{i}_PERIPHERAL_FREQMHZ",
             "src": "PCW_FCLK{i}_PERIPHERAL_CLKSRC", "pll": "IO PLL"},
    "xczu": {"arch": "zynquplus", "modtype": "zynq_ultra_ps_e", "vlnv": "xilinx.com:ip:zynq_ultra_ps_e:3.3",
             "master": "M_AXI_HPM0_FPD", "base": 0xA000_0000, "hp": "S_AXI_HP0_FPD", "pll_mhz": 1500.0,
             "div": "PSU__CRL_APB__PL{i}_REF_CTRL__DIVISOR{j}", "enable": "PSU__FPGA_PL{i}_ENABLE",
             "freq": "PSU__CRL_APB__PL{i}_REF_CTRL__FREQMHZ", "act_freq": "PSU__CRL_APB__PL{i}_REF_CTRL__ACT_FREQMHZ",
             "src": "PSU__CRL_APB__PL{i}_REF_CTRL__SRCSEL", "pll": "IOPLL"},
}
# pynqmetadata reads a PL clock's achieved rate under the UltraScale+ name whatever the PS
# (its Zynq-7000 model does not rename it), and PYNQ 4's Overlay.download programs each
# enabled PL clock to that rate: without it a Zynq-7000 overlay gets clk_mhz=None and fails.
# So the PS carries it too, beside the family's own name.
PYNQMETADATA_ACT_FREQ = "PSU__CRL_APB__PL{i}_REF_CTRL__ACT_FREQMHZ"
_HWH_ACCESS = {"ro": "read-only", "rw": "read-write", "wo": "write-only", "w1p": "write-only"}
_AXIMM = 'VLNV="xilinx.com:interface:aximm:1.0"'
NPU_SLAVE = "s_axil"             # the NPU's AXI4-Lite slave interface
NPU_MASTER = "m_axi"             # its AXI4 master to memory
NPU_BLOCK = "reg0"               # the slave's address block (the PS's MEMRANGE names it)


def _xml(v: Any) -> str:
    return (str(v).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _props(indent: int, props: dict[str, Any]) -> list[str]:
    return [f'{" " * indent}<PROPERTY NAME="{k}" VALUE="{_xml(v)}"/>' for k, v in props.items()]


def _divisors(pll_mhz: float, f_mhz: float) -> tuple[int, int] | None:
    """The PL clock divisor pair (each 1..63) giving the fastest rate not above f_mhz, or None.
    Not the nearest rate: f_mhz is the rate the NPU's timing is closed at, so a PL clock above
    it could fail timing on the board, one below only runs slower."""
    fits = [(a * b, a, b) for a in range(1, 64) for b in range(1, 64) if pll_mhz / (a * b) <= f_mhz * (1 + 1e-12)]
    return min(fits)[1:] if fits else None


def _registers(csr: Csr, window: int) -> list[str]:
    """The register map as Vivado writes an IP's: in an address block of the slave interface
    (pynqmetadata takes registers only from there, and only IS_ENABLED ones count as enabled)."""
    L = ["      <ADDRESSBLOCKS>",
         f'        <ADDRESSBLOCK ACCESS="read-write" INTERFACE="{NPU_SLAVE}" NAME="{NPU_BLOCK}" RANGE="{window}" '
         f'USAGE="register">',
         "          <REGISTERS>"]
    for name, off, r in csr.words():
        acc = _HWH_ACCESS[r.access]
        L.append(f'            <REGISTER NAME="{name}">')
        L += _props(14, {"DESCRIPTION": one_line(r.doc), "ADDRESS_OFFSET": f"0x{off:X}", "SIZE": 32,
                         "ACCESS": acc, "IS_ENABLED": "true"})
        if r.fields:
            L.append("              <FIELDS>")
            for f in r.fields:
                L.append(f'                <FIELD NAME="{f.name}">')
                L += _props(18, {"DESCRIPTION": one_line(f.doc), "ACCESS": acc, "BIT_OFFSET": f.lsb,
                                 "BIT_WIDTH": f.width})
                L.append("                </FIELD>")
            L.append("              </FIELDS>")
        L.append("            </REGISTER>")
    L += ["          </REGISTERS>", "        </ADDRESSBLOCK>", "      </ADDRESSBLOCKS>"]
    return L


def ps_family(p: Profile, family: str | None = None) -> tuple[str, dict[str, Any]]:
    """The key and entry of PS_FAMILIES for profile p's part (family: force one)."""
    part = p.flat.get("PROFILE_PART") or ""
    if family is None:
        family = next((k for k in PS_FAMILIES if part.startswith(k)), None)
        if family is None:
            raise CodegenError(f"{p.file}: profile.part {part!r}: no processing system known for it "
                               f"(known part prefixes: {', '.join(PS_FAMILIES)})")
    return family, PS_FAMILIES[family]


def pl_clock0(p: Profile, ps: dict[str, Any]) -> tuple[int, int, float]:
    """PL clock 0 of profile p's board: the IO PLL divisor pair and the rate in MHz they give."""
    f_mhz = float(p.flat["CLOCK_F_CLK_MHZ"])
    div = _divisors(ps["pll_mhz"], f_mhz)
    if div is None:
        raise CodegenError(f"{p.file}: clock.f_clk_mhz = {f_mhz:g}: below every PL clock rate the "
                           f"{ps['pll']} ({ps['pll_mhz']:g} MHz) divides to")
    return div[0], div[1], ps["pll_mhz"] / (div[0] * div[1])


def ps_instance(ps: dict[str, Any]) -> str:
    """The processing system's instance name in the block design."""
    return ps["modtype"] + "_0"


def npu_window(csr: Csr) -> int:
    """Bytes of the NPU's AXI4-Lite window in the PS's address map."""
    return max(HWH_WINDOW, 1 << csr.addr_width)


def emit_hwh(p: Profile, csr: Csr, isa: Isa, family: str | None = None) -> str:
    """The .hwh PYNQ's Overlay parses for a board build of profile p. family: a key of
    PS_FAMILIES (default: from the profile's part)."""
    family, ps = ps_family(p, family)
    f_mhz = float(p.flat["CLOCK_F_CLK_MHZ"])
    d0, d1, _ = pl_clock0(p, ps)
    part = p.flat.get("PROFILE_PART") or ""
    window = npu_window(csr)
    base = ps["base"]
    params = {"DNPU_PROFILE": p.name, "CONFIG_HASH": p.config_hash, "CONFIG_HASH32": f"0x{p.config_hash32:08X}",
              "ISA_VERSION": f"0x{isa.version_word:08X}", "CSR_ID": f"0x{csr.id_magic:08X}",
              "C_S_AXIL_ADDR_WIDTH": csr.addr_width, "C_S_AXIL_DATA_WIDTH": csr.data_width,
              "C_M_AXI_ADDR_WIDTH": p.flat["AXI_ADDR_WIDTH"], "C_M_AXI_DATA_WIDTH": p.flat["AXI_DATA_WIDTH"],
              "C_M_AXI_ID_WIDTH": p.flat["AXI_ID_WIDTH"], "FREQ_MHZ": f"{f_mhz:g}"}
    L = [f"<!-- {banner(f'{csr.file} and {p.file}', '').strip()} -->",
         "<!-- The NPU's part of a Vivado hardware handoff: what dnpu.runtime's pynq backend and "
         "PYNQ's Overlay read. A Vivado build of the board writes the full file next to dnpu.bit. -->",
         '<EDKSYSTEM EDWVERSION="1.2" VIVADOVERSION="2022.1">',
         f'  <SYSTEMINFO ARCH="{ps["arch"]}" BOARD="{_xml(p.name)}" DEVICE="{_xml(part)}" NAME="dnpu"/>',
         "  <EXTERNALPORTS/>",
         "  <MODULES>",
         f'    <MODULE FULLNAME="/{HWH_INSTANCE}" INSTANCE="{HWH_INSTANCE}" MODTYPE="dnpu_top" '
         f'VLNV="dnpu:npu:dnpu_top:{isa.version[0]}.{isa.version[1]}">',
         "      <PARAMETERS>",
         *(f'        <PARAMETER NAME="{k}" VALUE="{_xml(v)}"/>' for k, v in params.items()),
         "      </PARAMETERS>",
         "      <MEMORYMAP/>",
         *_registers(csr, window),
         "      <BUSINTERFACES>",
         f'        <BUSINTERFACE BUSNAME="ps_gp0_to_dnpu" NAME="{NPU_SLAVE}" TYPE="SLAVE" {_AXIMM}/>',
         f'        <BUSINTERFACE BUSNAME="dnpu_to_ps_hp0" NAME="{NPU_MASTER}" TYPE="MASTER" {_AXIMM}/>',
         "      </BUSINTERFACES>",
         "    </MODULE>"]
    ps_name = ps_instance(ps)
    L.append(f'    <MODULE FULLNAME="/{ps_name}" INSTANCE="{ps_name}" MODTYPE="{ps["modtype"]}" VLNV="{ps["vlnv"]}">')
    L.append("      <PARAMETERS>")
    for i in range(4):
        on = i == 0
        a, b = (d0, d1) if on else (1, 1)
        clk = {ps["enable"]: int(on), ps["div"].format(i=i, j=0): a, ps["div"].format(i=i, j=1): b,
               ps["src"]: ps["pll"]}
        if on:
            # the rate the divisors give, which is what the NPU is clocked at (the profile's
            # f_clk_mhz where the PLL divides to it, the fastest rate below it where not)
            clk |= dict.fromkeys((ps["freq"], ps["act_freq"], PYNQMETADATA_ACT_FREQ), f"{ps['pll_mhz'] / (a * b):g}")
        L += (f'        <PARAMETER NAME="{k.format(i=i, j=0)}" VALUE="{_xml(v)}"/>' for k, v in clk.items())
    L += ["      </PARAMETERS>",
          "      <MEMORYMAP>",
          f'        <MEMRANGE ADDRESSBLOCK="{NPU_BLOCK}" BASENAME="C_BASEADDR" BASEVALUE="0x{base:08X}" '
          f'HIGHNAME="C_HIGHADDR" HIGHVALUE="0x{base + window - 1:08X}" INSTANCE="{HWH_INSTANCE}" '
          f'IS_DATA="TRUE" MASTERBUSINTERFACE="{ps["master"]}" MEMTYPE="REGISTER" SLAVEBUSINTERFACE="{NPU_SLAVE}"/>',
          "      </MEMORYMAP>",
          "      <BUSINTERFACES>",
          f'        <BUSINTERFACE BUSNAME="ps_gp0_to_dnpu" NAME="{ps["master"]}" TYPE="MASTER" {_AXIMM}/>',
          f'        <BUSINTERFACE BUSNAME="dnpu_to_ps_hp0" NAME="{ps["hp"]}" TYPE="SLAVE" {_AXIMM}/>',
          "      </BUSINTERFACES>",
          "    </MODULE>",
          "  </MODULES>",
          "</EDKSYSTEM>"]
    return "\n".join(L) + "\n"


def hwh_text(profile: str, root: Path | str | None = None, family: str | None = None) -> str:
    """emit_hwh for one profile by name (a profile without a part, e.g. sim, needs family:
    the stand-in board of the tests uses "xc7z")."""
    root = Path(root) if root is not None else default_root()
    t = load_tables(root)
    p = t.profile(profile)
    if p is None:
        raise CodegenError(f"no hardware profile {profile!r} under {root / CONFIG_DIR}")
    return emit_hwh(p, t.csr, t.isa, family)
