"""The generated Vivado builds (bitstreams/<board>/build.tcl) without Vivado: each runs in a real
Tcl interpreter (tclsh, Debian's `tcl`) with every Vivado command it calls defined as a recorder,
and the recorded block design is checked against the profile, the RTL list and the .hwh."""

import base64
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import pytest

from dnpu.codegen.emit_hwh import HWH_INSTANCE, PS_FAMILIES, npu_window, pl_clock0, ps_family, ps_instance
from dnpu.codegen.emit_vivado import VIVADO_PS
from dnpu.codegen.rtl import RTL_INCLUDE_DIRS, RTL_TOP, profile_define, rtl_sources
from dnpu.codegen.tables import load_tables

from conftest import REPO

BOARDS = ("pynq-z2", "zcu104")
# The Vivado commands a build script may call. A command outside this list is an "invalid
# command name" error in tclsh, so a script that starts using a new one fails here until the
# recorder knows it.
VIVADO_COMMANDS = (
    "create_project", "get_board_parts", "set_property", "get_property", "current_project", "add_files",
    "get_filesets", "update_compile_order", "create_bd_design", "create_bd_cell", "apply_bd_automation",
    "get_bd_cells", "get_bd_pins", "get_bd_intf_pins", "connect_bd_intf_net", "connect_bd_net",
    "assign_bd_address", "get_bd_addr_spaces", "get_bd_addr_segs", "validate_bd_design", "save_bd_design",
    "get_files", "generate_target", "make_wrapper", "current_fileset", "launch_runs", "wait_on_run", "get_runs",
    "open_run", "report_utilization", "report_timing_summary", "write_hw_platform",
)
# What Vivado answers to the few queries the script acts on: finished runs, and PL clock 0 at
# the rate the script asked for (get_property of a property the script set returns that value).
PRELUDE = r"""
proc enc {s} { return [binary encode base64 [encoding convertto utf-8 $s]] }
proc record {cmd argl} {
    set words [list $cmd]
    foreach a $argl { lappend words [enc $a] }
    puts [join $words "\t"]
}
array set props {}
proc handle {cmd argl} {
    global props
    switch -- $cmd {
        create_bd_cell - get_bd_cells - get_bd_pins - get_bd_intf_pins - get_bd_addr_spaces -
        get_bd_addr_segs - get_filesets - get_runs - get_files { return [string trimleft [lindex $argl end] /] }
        current_project { return dnpu }
        current_fileset { return sources_1 }
        make_wrapper { return /prj/dnpu_wrapper.v }
        get_board_parts { return {} }
        set_property {
            set objs [lindex $argl end]
            if {[lindex $argl 0] eq "-dict"} {
                foreach {k v} [lindex $argl 1] { set props($objs,$k) $v }
            } else {
                set props($objs,[lindex $argl 0]) [lindex $argl 1]
            }
            return {}
        }
        get_property {
            set k [lindex $argl 0]; set o [lindex $argl 1]
            if {$k eq "PROGRESS"} { return 100% }
            if {$k eq "DIRECTORY"} { return /prj/impl_1 }
            if {[string match *ACT*FREQMHZ $k]} { set k [string map {ACT_ {} __ACT_FREQMHZ __FREQMHZ} $k] }
            if {[info exists props($o,$k)]} { return $props($o,$k) }
            return {}
        }
    }
    return {}
}
foreach c $::vivado_commands {
    proc $c args "record $c \$args; return \[handle $c \$args\]"
}
# file copy/mkdir/delete are recorded, not done: the script writes nothing here.
rename file tcl_file
proc file {sub args} {
    if {$sub in {copy mkdir delete}} { record file [linsert $args 0 $sub]; return }
    return [tcl_file $sub {*}$args]
}
"""


@dataclass
class Recording:
    calls: list = field(default_factory=list)         # (command, [args])

    def of(self, cmd):
        return [a for c, a in self.calls if c == cmd]

    def nets(self, cmd):
        """The connected pin sets: each connect call's pins ("cell/pin")."""
        return [set(a) for a in self.of(cmd)]

    def props(self, obj):
        """The CONFIG/other properties set on obj, the last value of each."""
        out = {}
        for a in self.of("set_property"):
            if a[-1] != obj:
                continue
            if a[0] == "-dict":
                words = tcl_words(a[1])
                out.update(zip(words[::2], words[1::2]))
            else:
                out[a[0]] = a[1]
        return out


def tcl_words(s):
    """Split a Tcl list of simple words and {braced} words (what the scripts' -dict lists hold)."""
    out, i = [], 0
    while i < len(s):
        if s[i].isspace():
            i += 1
        elif s[i] == "{":
            j = s.index("}", i)
            out.append(s[i + 1:j])
            i = j + 1
        else:
            j = i
            while j < len(s) and not s[j].isspace():
                j += 1
            out.append(s[i:j])
            i = j
    return out


def record(board, tmp_path, argv=()) -> Recording:
    tclsh = shutil.which("tclsh")
    if tclsh is None:
        pytest.fail("tclsh is not installed: scripts/setup.sh installs Debian's `tcl` (run `make setup`)")
    prelude = tmp_path / "prelude.tcl"
    prelude.write_text(f"set vivado_commands {{{' '.join(VIVADO_COMMANDS)}}}\n{PRELUDE}\n"
                       f"set argv {{{' '.join(argv)}}}\nset argc {len(argv)}\n"
                       f"source {{{REPO / 'bitstreams' / board / 'build.tcl'}}}\n")
    r = subprocess.run([tclsh, str(prelude)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rec = Recording()
    for line in r.stdout.splitlines():
        cmd, *args = line.split("\t")
        if cmd in VIVADO_COMMANDS or cmd == "file":
            rec.calls.append((cmd, [base64.b64decode(a).decode() for a in args]))
    return rec


@pytest.fixture(scope="module")
def tables():
    return load_tables(REPO)


def _hwh(board):
    return ET.parse(REPO / "bitstreams" / board / "dnpu.hwh").getroot()


@pytest.mark.parametrize("board", BOARDS)
def test_project_part_sources_and_top(board, tables, tmp_path):
    p = tables.profile(board)
    rec = record(board, tmp_path)
    (proj,) = rec.of("create_project")
    assert proj[proj.index("-part") + 1] == p.flat["PROFILE_PART"] == _hwh(board).find("SYSTEMINFO").get("DEVICE")
    added = [f for a in rec.of("add_files") if "sources_1" in a for f in a[a.index("-fileset") + 2:]]
    added = [f.removeprefix(str(REPO) + "/") for w in added for f in w.split()]
    assert added == rtl_sources(REPO)
    fs = rec.props("sources_1")
    assert fs["verilog_define"] == profile_define(board)
    assert fs["include_dirs"].split() == [str(REPO / d) for d in RTL_INCLUDE_DIRS]
    assert ["-type", "module", "-reference", RTL_TOP, HWH_INSTANCE] in rec.of("create_bd_cell")
    assert rec.props("sources_1")["top"] == "dnpu_wrapper"
    # synthesis, implementation to the bitstream, the reports and outputs the runner reads
    assert rec.of("launch_runs")[-1][:3] == ["impl_1", "-to_step", "write_bitstream"]
    out = REPO / "bitstreams" / board / "build"
    copies = {a[-1] for a in rec.of("file") if a[0] == "copy"}
    assert copies == {str(out / "dnpu.bit"), str(out / "dnpu.hwh")}
    assert rec.of("report_utilization") == [["-file", str(out / "utilization.rpt")]]
    assert rec.of("report_timing_summary")[0][-1] == str(out / "timing_summary.rpt")


def test_output_folder_from_the_command_line(tmp_path):
    rec = record("pynq-z2", tmp_path, argv=[str(tmp_path / "o")])
    assert ["mkdir", str(tmp_path / "o")] in rec.of("file")
    assert rec.of("create_project")[0][2] == str(tmp_path / "o" / "vivado")


@pytest.mark.parametrize("board", BOARDS)
def test_block_design_matches_the_hwh(board, tables, tmp_path):
    p = tables.profile(board)
    family, ps = ps_family(p)
    vps = VIVADO_PS[family]
    psn = ps_instance(ps)
    rec = record(board, tmp_path)
    # the PS of the part's family
    cells = {a[-1]: a for a in rec.of("create_bd_cell")}
    assert cells[psn][:3] == ["-type", "ip", "-vlnv"] and cells[psn][3] == ps["vlnv"]
    assert ps["vlnv"].split(":")[2] == {"xc7z": "processing_system7", "xczu": "zynq_ultra_ps_e"}[
        next(k for k in PS_FAMILIES if p.flat["PROFILE_PART"].startswith(k))]
    # every NPU interface reaches the PS: s_axil from the general-purpose master, m_axi to the
    # HP slave, each through one interconnect cell
    intf = rec.nets("connect_bd_intf_net")
    assert all(len(n) == 2 for n in intf)

    def path(start):
        """The pins start reaches through the interface nets and the cells in between."""
        seen, todo = set(), [start]
        while todo:
            pin = todo.pop()
            for n in intf:
                if pin in n:
                    (other,) = n - {pin}
                    if other not in seen:
                        seen.add(other)
                        cell = other.split("/")[0]
                        todo += [q for m in intf for q in m if q.startswith(cell + "/") and q != other
                                 and cell != HWH_INSTANCE and cell != psn]
        return seen
    assert f"{psn}/{ps['master']}" in path(f"{HWH_INSTANCE}/s_axil")
    assert f"{psn}/{ps['hp']}" in path(f"{HWH_INSTANCE}/m_axi")
    assert ps["hp"].startswith(("S_AXI_HP", "S_AXI_HPC"))
    # one clock net: PL clock 0 to the NPU, both PS port clocks, the interconnects and the reset
    # block; the reset block's output resets the NPU
    clk = [n for n in rec.nets("connect_bd_net") if f"{psn}/{vps['clk']}" in n]
    assert len(clk) == 1
    assert {f"{HWH_INSTANCE}/clk", *(f"{psn}/{c}" for c in vps["aclks"])} <= clk[0]
    rst_cells = [a[-1] for a in rec.of("create_bd_cell") if "proc_sys_reset" in " ".join(a)]
    assert len(rst_cells) == 1
    assert {f"{rst_cells[0]}/slowest_sync_clk"} <= clk[0]
    assert {f"{psn}/{vps['resetn']}", f"{rst_cells[0]}/ext_reset_in"} in rec.nets("connect_bd_net")
    rstn = [n for n in rec.nets("connect_bd_net") if f"{HWH_INSTANCE}/rst_n" in n]
    assert rstn == [rstn[0]] and f"{rst_cells[0]}/peripheral_aresetn" in rstn[0]
    # every AXI cell between them is clocked and reset from the same nets
    for c in {q.split("/")[0] for n in intf for q in n} - {psn, HWH_INSTANCE}:
        assert f"{c}/aclk" in clk[0] and f"{c}/aresetn" in rstn[0], c

    # PL clock 0: enabled, from the IO PLL, at the rate the .hwh states
    cfg = rec.props(psn)
    _, _, mhz = pl_clock0(p, ps)
    assert float(cfg[f"CONFIG.{ps['freq'].format(i=0)}"]) == mhz
    assert cfg[f"CONFIG.{ps['enable'].format(i=0)}"] == "1"
    assert cfg[f"CONFIG.{ps['src'].format(i=0)}"] == ps["pll"]
    hwh = _hwh(board)
    hps = {e.get("NAME"): e.get("VALUE") for e in hwh.find(f".//MODULE[@INSTANCE='{psn}']/PARAMETERS")}
    assert float(hps[ps["freq"].format(i=0)]) == mhz
    # the HP port as wide as the NPU's memory master
    assert cfg[f"CONFIG.{vps['hp_width']}"] == str(p.flat["AXI_DATA_WIDTH"])

    # the register window: offset and range as the .hwh's MEMRANGE
    mr = hwh.find(f".//MODULE[@INSTANCE='{psn}']/MEMORYMAP/MEMRANGE")
    base, high = int(mr.get("BASEVALUE"), 16), int(mr.get("HIGHVALUE"), 16)
    addr = [a for a in rec.of("assign_bd_address") if f"{HWH_INSTANCE}/s_axil/{mr.get('ADDRESSBLOCK')}" in a]
    assert len(addr) == 1
    a = addr[0]
    assert int(a[a.index("-offset") + 1], 16) == base == ps["base"]
    assert int(a[a.index("-range") + 1], 16) == high - base + 1 == npu_window(tables.csr)
    assert a[a.index("-target_address_space") + 1] == f"{psn}/{vps['space']}"
    assert mr.get("MASTERBUSINTERFACE") == ps["master"]
    ddr = [a for a in rec.of("assign_bd_address") if f"{psn}/{vps['ddr_seg']}" in a]
    assert len(ddr) == 1 and ddr[0][ddr[0].index("-target_address_space") + 1] == f"{HWH_INSTANCE}/m_axi"
    assert vps["ddr_seg"].split("/")[0] in (ps["hp"], "SAXIGP2")
    assert rec.of("validate_bd_design") == [[]]


def test_a_failed_run_stops_the_script(tmp_path):
    """The script errors out (Vivado's batch mode then exits non-zero) when a run is not complete."""
    text = (REPO / "bitstreams" / "pynq-z2" / "build.tcl").read_text()
    assert 'ne "100%"' in text
    bad = tmp_path / "bitstreams" / "pynq-z2"
    bad.mkdir(parents=True)
    prelude = tmp_path / "prelude.tcl"
    prelude.write_text(f"set vivado_commands {{{' '.join(VIVADO_COMMANDS)}}}\n{PRELUDE}\n"
                       "rename get_property gp0\n"
                       "proc get_property args { if {[lindex $args 0] eq \"PROGRESS\"} { return 50% }; "
                       "return [gp0 {*}$args] }\n"
                       f"set argv {{}}\nsource {{{REPO / 'bitstreams' / 'pynq-z2' / 'build.tcl'}}}\n")
    r = subprocess.run([shutil.which("tclsh") or "tclsh", str(prelude)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0 and "synthesis failed" in r.stderr
    assert "\treport_utilization" not in r.stdout and not any(
        line.startswith("report_utilization") for line in r.stdout.splitlines())
