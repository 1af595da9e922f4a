"""bitstreams/<board>/build.tcl: the Vivado batch build of an FPGA profile (scripts/vivado_build.py
runs it; `make bitstream BOARD=<board>`). A project for the profile's part with every RTL
source of dnpu.codegen.rtl, a block design of the processing system and the NPU (an RTL module
reference of dnpu_top): the NPU's AXI4-Lite slave on the PS's first general-purpose master
port, its AXI4 master on a high-performance slave port into the PS DDR, both through a
SmartConnect, everything on PL clock 0 with a proc_sys_reset. The PS, its ports, the PL clock
rate and the NPU's address window are the ones the generated dnpu.hwh describes (emit_hwh's
tables), so the build's own .hwh matches it. Written for Vivado 2022.1 (the version the .hwh
names) and checked without Vivado by tests/test_vivado_tcl.py, which runs it in tclsh with
the Vivado commands recorded."""

from __future__ import annotations

from typing import Any

from dnpu.codegen.csr_model import Csr
from dnpu.codegen.emit_hwh import (HWH_INSTANCE, NPU_BLOCK, NPU_MASTER, NPU_SLAVE, PS_FAMILIES, npu_window,
                                   pl_clock0, ps_family, ps_instance)
from dnpu.codegen.isa_model import Isa
from dnpu.codegen.rtl import RTL_INCLUDE_DIRS, RTL_TOP, profile_define, rtl_sources
from dnpu.codegen.tables import Profile, default_root
from dnpu.codegen.text import banner
from dnpu.codegen.validate import CodegenError

BD_NAME = "dnpu"                 # the block design (its .hwh is <BD_NAME>.hwh; the .hwh's SYSTEMINFO NAME)
BUILD_DIR = "build"              # under bitstreams/<board>/: the build's outputs (not committed)
# Outputs the build writes into its output folder; vivado_build.py reads them back.
BIT_FILE, HWH_FILE, XSA_FILE = "dnpu.bit", "dnpu.hwh", "dnpu.xsa"
UTIL_REPORT, TIMING_REPORT = "utilization.rpt", "timing_summary.rpt"
# The Vivado side of each processing system of PS_FAMILIES (same keys): the CONFIG properties
# that enable the two ports and set their widths, PL clock 0's and reset's pins, the ports'
# clock pins, the address space the PS masters, the DDR segment its HP port reaches, and the
# block automation rule that makes DDR and fixed IO external (and applies a board preset).
VIVADO_PS = {
    "xc7z": {"use_master": {"PCW_USE_M_AXI_GP0": 1},
             "use_hp": {"PCW_USE_S_AXI_HP0": 1}, "hp_width": "PCW_S_AXI_HP0_DATA_WIDTH", "hp_widths": (32, 64),
             "clk": "FCLK_CLK0", "resetn": "FCLK_RESET0_N", "aclks": ("M_AXI_GP0_ACLK", "S_AXI_HP0_ACLK"),
             "space": "Data", "ddr_seg": "S_AXI_HP0/HP0_DDR_LOWOCM", "act_freq": "PCW_ACT_FPGA0_PERIPHERAL_FREQMHZ",
             "rule": "xilinx.com:bd_rule:processing_system7",
             "rule_config": 'make_external "FIXED_IO, DDR" Master Disable Slave Disable'},
    "xczu": {"use_master": {"PSU__USE__M_AXI_GP0": 1, "PSU__USE__M_AXI_GP1": 0, "PSU__USE__M_AXI_GP2": 0,
                            "PSU__MAXIGP0__DATA_WIDTH": 32},
             "use_hp": {"PSU__USE__S_AXI_GP2": 1}, "hp_width": "PSU__SAXIGP2__DATA_WIDTH", "hp_widths": (32, 64, 128),
             "clk": "pl_clk0", "resetn": "pl_resetn0", "aclks": ("maxihpm0_fpd_aclk", "saxihp0_fpd_aclk"),
             "space": "Data", "ddr_seg": "SAXIGP2/HP0_DDR_LOW", "act_freq": "PSU__CRL_APB__PL0_REF_CTRL__ACT_FREQMHZ",
             "rule": "xilinx.com:bd_rule:zynq_ultra_ps_e", "rule_config": ""},
}
assert VIVADO_PS.keys() == PS_FAMILIES.keys()
# Vivado's board part of each board profile: its preset sets up the PS's DDR and MIO when the
# board files are installed (the ZCU104's ship with Vivado, the PYNQ-Z2's come from TUL). The
# PYNQ image configures the PS itself at boot, so a build without them still works on PYNQ.
BOARD_PARTS = {"pynq-z2": "tul.com.tw:pynq-z2:part0:1.0", "zcu104": "xilinx.com:zcu104:part0:1.1"}
SMC_CTRL, SMC_MEM, RESET = "smc_ctrl", "smc_mem", "rst_pl_clk0"


def _tcl_list(items: list[str], indent: str = "    ") -> str:
    return "[list \\\n" + "".join(f"{indent}{i} \\\n" for i in items) + "]"


def _props(d: dict[str, Any]) -> str:
    return " ".join(f"CONFIG.{k} {{{v}}}" for k, v in d.items())


def emit_build_tcl(p: Profile, csr: Csr, isa: Isa, root=None) -> str:
    """The Vivado batch script that builds profile p's bitstream (root: where the RTL is)."""
    family, ps = ps_family(p)
    vps = VIVADO_PS[family]
    part = p.flat["PROFILE_PART"]
    _, _, pl_mhz = pl_clock0(p, ps)
    width = int(p.flat["AXI_DATA_WIDTH"])
    if width not in vps["hp_widths"]:
        raise CodegenError(f"{p.file}: axi.data_width = {width}: the {ps['modtype']}'s {ps['hp']} takes "
                           f"{', '.join(map(str, vps['hp_widths']))} bits")
    psn = ps_instance(ps)
    base, window = ps["base"], npu_window(csr)
    srcs = [f"$root/{s}" for s in rtl_sources(root if root is not None else default_root())]
    incs = [f"$root/{d}" for d in RTL_INCLUDE_DIRS]
    ps_cfg = {**vps["use_master"], **vps["use_hp"], vps["hp_width"]: width,
              ps["enable"].format(i=0): 1, ps["src"].format(i=0): ps["pll"], ps["freq"].format(i=0): f"{pl_mhz:g}"}
    rule_cfg = f"{vps['rule_config']} apply_board_preset $preset".strip()
    board_part = BOARD_PARTS.get(p.name, "")
    return f"""{banner(f'{csr.file} and {p.file}', '#').rstrip()}
# Vivado batch build of the {p.name} bitstream: vivado -mode batch -source build.tcl [-tclargs OUTDIR]
# (scripts/vivado_build.py runs it: `make bitstream BOARD={p.name}`). OUTDIR (default: {BUILD_DIR}/
# beside this script) receives {BIT_FILE}, {HWH_FILE}, {XSA_FILE}, {UTIL_REPORT} and {TIMING_REPORT};
# the Vivado project goes to OUTDIR/vivado. Profile {p.name}, config hash {p.config_hash32:08x},
# ISA {isa.version[0]}.{isa.version[1]}.

set here [file dirname [file normalize [info script]]]
set root [file normalize [file join $here .. ..]]
set out [expr {{[llength $argv] > 0 ? [file normalize [lindex $argv 0]] : [file join $here {BUILD_DIR}]}}]
set jobs [expr {{[llength $argv] > 1 ? [lindex $argv 1] : 4}}]
file mkdir $out

create_project -force {BD_NAME} [file join $out vivado] -part {part}
set preset 0
set board_part {{{board_part}}}
if {{$board_part ne "" && [llength [get_board_parts -quiet $board_part]] > 0}} {{
    set_property board_part $board_part [current_project]
    set preset 1
}} else {{
    puts "WARNING: board files for {p.name} ($board_part) are not installed: the PS keeps its default DDR and MIO settings"
}}

# The RTL, from dnpu.codegen.rtl (the list scripts/synth_report.py synthesizes). The define picks
# the profile's generated header in dnpu_top.v.
add_files -norecurse -fileset sources_1 {_tcl_list(srcs)}
set_property include_dirs {_tcl_list(incs)} [get_filesets sources_1]
set_property verilog_define [list {profile_define(p.name)}] [get_filesets sources_1]
update_compile_order -fileset sources_1

create_bd_design {BD_NAME}
create_bd_cell -type ip -vlnv {ps['vlnv']} {psn}
apply_bd_automation -rule {vps['rule']} -config [list {rule_cfg}] [get_bd_cells {psn}]
# After the automation, whose board preset would otherwise undo them: the NPU's two ports and
# PL clock 0 from the IO PLL at the rate dnpu.hwh states.
set_property -dict [list {_props(ps_cfg)}] [get_bd_cells {psn}]

create_bd_cell -type module -reference {RTL_TOP} {HWH_INSTANCE}
set_property -dict [list CONFIG.ASSOCIATED_BUSIF {{{NPU_SLAVE}:{NPU_MASTER}}} CONFIG.ASSOCIATED_RESET {{rst_n}}] [get_bd_pins {HWH_INSTANCE}/clk]
set_property CONFIG.POLARITY ACTIVE_LOW [get_bd_pins {HWH_INSTANCE}/rst_n]
create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect:1.0 {SMC_CTRL}
set_property -dict [list CONFIG.NUM_SI {{1}} CONFIG.NUM_MI {{1}}] [get_bd_cells {SMC_CTRL}]
create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect:1.0 {SMC_MEM}
set_property -dict [list CONFIG.NUM_SI {{1}} CONFIG.NUM_MI {{1}}] [get_bd_cells {SMC_MEM}]
create_bd_cell -type ip -vlnv xilinx.com:ip:proc_sys_reset:5.0 {RESET}

connect_bd_intf_net [get_bd_intf_pins {psn}/{ps['master']}] [get_bd_intf_pins {SMC_CTRL}/S00_AXI]
connect_bd_intf_net [get_bd_intf_pins {SMC_CTRL}/M00_AXI] [get_bd_intf_pins {HWH_INSTANCE}/{NPU_SLAVE}]
connect_bd_intf_net [get_bd_intf_pins {HWH_INSTANCE}/{NPU_MASTER}] [get_bd_intf_pins {SMC_MEM}/S00_AXI]
connect_bd_intf_net [get_bd_intf_pins {SMC_MEM}/M00_AXI] [get_bd_intf_pins {psn}/{ps['hp']}]
connect_bd_net [get_bd_pins {psn}/{vps['clk']}] [get_bd_pins {psn}/{vps['aclks'][0]}] [get_bd_pins {psn}/{vps['aclks'][1]}] \\
    [get_bd_pins {HWH_INSTANCE}/clk] [get_bd_pins {SMC_CTRL}/aclk] [get_bd_pins {SMC_MEM}/aclk] \\
    [get_bd_pins {RESET}/slowest_sync_clk]
connect_bd_net [get_bd_pins {psn}/{vps['resetn']}] [get_bd_pins {RESET}/ext_reset_in]
connect_bd_net [get_bd_pins {RESET}/peripheral_aresetn] [get_bd_pins {HWH_INSTANCE}/rst_n] \\
    [get_bd_pins {SMC_CTRL}/aresetn] [get_bd_pins {SMC_MEM}/aresetn]

# The register window where dnpu.hwh (and so dnpu.runtime's pynq backend) expects it; the
# NPU's memory master sees the PS DDR at its physical addresses.
assign_bd_address -offset 0x{base:08X} -range 0x{window:08X} \\
    -target_address_space [get_bd_addr_spaces {psn}/{vps['space']}] [get_bd_addr_segs {HWH_INSTANCE}/{NPU_SLAVE}/{NPU_BLOCK}]
assign_bd_address -target_address_space [get_bd_addr_spaces {HWH_INSTANCE}/{NPU_MASTER}] \\
    [get_bd_addr_segs {psn}/{vps['ddr_seg']}]

validate_bd_design
set act [get_property CONFIG.{vps['act_freq']} [get_bd_cells {psn}]]
if {{![string is double -strict $act] || abs($act - {pl_mhz:g}) > 1e-3}} {{
    error "PL clock 0 runs at '$act' MHz, not the {pl_mhz:g} MHz dnpu.hwh states"
}}
save_bd_design

set bd [get_files {BD_NAME}.bd]
generate_target all $bd
add_files -norecurse [make_wrapper -files $bd -top]
set_property top {BD_NAME}_wrapper [current_fileset]
update_compile_order -fileset sources_1

launch_runs synth_1 -jobs $jobs
wait_on_run synth_1
if {{[get_property PROGRESS [get_runs synth_1]] ne "100%"}} {{
    error "synthesis failed: [get_property STATUS [get_runs synth_1]]"
}}
launch_runs impl_1 -to_step write_bitstream -jobs $jobs
wait_on_run impl_1
if {{[get_property PROGRESS [get_runs impl_1]] ne "100%"}} {{
    error "implementation failed: [get_property STATUS [get_runs impl_1]]"
}}

open_run impl_1
report_utilization -file [file join $out {UTIL_REPORT}]
report_timing_summary -max_paths 10 -file [file join $out {TIMING_REPORT}]
file copy -force [file join [get_property DIRECTORY [get_runs impl_1]] {BD_NAME}_wrapper.bit] [file join $out {BIT_FILE}]
file copy -force [lindex [get_files -all -quiet */hw_handoff/{BD_NAME}.hwh] 0] [file join $out {HWH_FILE}]
write_hw_platform -fixed -include_bit -force -file [file join $out {XSA_FILE}]
puts "dnpu build: wrote $out"
"""
