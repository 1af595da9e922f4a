"""scripts/vivado_build.py without Vivado: the exit 2 when it is missing, the report parsers on
hand-written samples of Vivado's report formats, and the manifest a build writes (with a stand-in
`vivado` on PATH that drops those samples where the real one writes its outputs)."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from dnpu.codegen.emit_hwh import pl_clock0, ps_family
from dnpu.codegen.tables import load_tables

from conftest import REPO

spec = importlib.util.spec_from_file_location("vivado_build", REPO / "scripts" / "vivado_build.py")
vivado_build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(vivado_build)

# FORMAT SAMPLE, hand-written after the layout of Vivado 2022.1's report_utilization for a
# Zynq-7000 (numbers made up): not the output of a real build.
UTIL_SAMPLE_7SERIES = """\
Copyright 1986-2022 Xilinx, Inc. All Rights Reserved.
| Tool Version : Vivado v.2022.1 (lin64) Build 3526262 Mon Apr 18 15:47:01 MDT 2022
| Design       : dnpu_wrapper
| Device       : 7z020clg400-1

1. Slice Logic
--------------

+----------------------------+-------+-------+------------+-----------+-------+
|          Site Type         |  Used | Fixed | Prohibited | Available | Util% |
+----------------------------+-------+-------+------------+-----------+-------+
| Slice LUTs                 | 31234 |     0 |          0 |     53200 | 58.71 |
|   LUT as Logic             | 30000 |     0 |          0 |     53200 | 56.39 |
| Slice Registers            | 40321 |     0 |          0 |    106400 | 37.90 |
+----------------------------+-------+-------+------------+-----------+-------+

3. Memory
---------

+-------------------+------+-------+------------+-----------+-------+
|     Site Type     | Used | Fixed | Prohibited | Available | Util% |
+-------------------+------+-------+------------+-----------+-------+
| Block RAM Tile    | 98.5 |     0 |          0 |       140 | 70.36 |
|   RAMB36/FIFO*    |   97 |     0 |          0 |       140 | 69.29 |
+-------------------+------+-------+------------+-----------+-------+

4. DSP
------

+-----------+------+-------+------------+-----------+-------+
| Site Type | Used | Fixed | Prohibited | Available | Util% |
+-----------+------+-------+------------+-----------+-------+
| DSPs      |   40 |     0 |          0 |       220 | 18.18 |
+-----------+------+-------+------------+-----------+-------+
"""

# FORMAT SAMPLE: an UltraScale+ table of an older Vivado (no Prohibited column), made-up numbers.
UTIL_SAMPLE_ULTRASCALE = """\
+-------------------+--------+-------+-----------+-------+
|     Site Type     |  Used  | Fixed | Available | Util% |
+-------------------+--------+-------+-----------+-------+
| CLB LUTs          | 120000 |     0 |    230400 | 52.08 |
| CLB Registers     | 150000 |     0 |    460800 | 32.55 |
+-------------------+--------+-------+-----------+-------+
| Block RAM Tile    |    200 |     0 |       312 | 64.10 |
| DSPs              |    300 |     0 |      1728 | 17.36 |
"""

# FORMAT SAMPLE, hand-written after the Design Timing Summary of report_timing_summary
# (made-up slack): not the output of a real build.
TIMING_SAMPLE = """\
------------------------------------------------------------------------------------------------
| Design Timing Summary
| ---------------------
------------------------------------------------------------------------------------------------

    WNS(ns)      TNS(ns)  TNS Failing Endpoints  TNS Total Endpoints      WHS(ns)      THS(ns)  THS Failing Endpoints  THS Total Endpoints     WPWS(ns)     TPWS(ns)  TPWS Failing Endpoints  TPWS Total Endpoints
    -------      -------  ---------------------  -------------------      -------      -------  ---------------------  -------------------     --------     --------  ----------------------  --------------------
     -0.412      -13.250                     61                98765        0.031        0.000                      0                98765        3.750        0.000                       0                 41234


Timing constraints are not met.
"""

LOG_SAMPLE = "\n****** Vivado v2022.1 (64-bit)\n  **** SW Build 3526262 on Mon Apr 18 15:47:01 MDT 2022\n"


def test_utilization_is_read_from_both_families_tables():
    u = vivado_build.parse_utilization(UTIL_SAMPLE_7SERIES)
    assert u == {"lut": {"used": 31234, "available": 53200}, "ff": {"used": 40321, "available": 106400},
                 "bram36": {"used": 98.5, "available": 140}, "dsp": {"used": 40, "available": 220}}
    u = vivado_build.parse_utilization(UTIL_SAMPLE_ULTRASCALE)
    assert u["lut"] == {"used": 120000, "available": 230400} and u["ff"]["used"] == 150000
    assert u["bram36"]["used"] == 200 and u["dsp"] == {"used": 300, "available": 1728}


def test_timing_summary_gives_wns_and_whs():
    assert vivado_build.parse_timing_summary(TIMING_SAMPLE) == {"wns_ns": -0.412, "whs_ns": 0.031}
    na = TIMING_SAMPLE.replace("     -0.412      -13.250", "        NA           NA")
    assert vivado_build.parse_timing_summary(na)["wns_ns"] is None
    with pytest.raises(ValueError, match="Design Timing Summary"):
        vivado_build.parse_timing_summary("no table here\n")


def test_vivado_version_from_the_log_banner():
    assert vivado_build.parse_vivado_version(LOG_SAMPLE) == "2022.1"
    assert vivado_build.parse_vivado_version("nothing\n") is None


def test_hwh_gets_the_pl_clock_rate_pynqmetadata_reads():
    """A Zynq-7000 .hwh as Vivado writes it (the generated one without the parameter Vivado
    leaves out) gets it back, at the PS's own achieved rate and in the generated file's place."""
    gen = (REPO / "bitstreams" / "pynq-z2" / "dnpu.hwh").read_text()
    line = next(ln for ln in gen.splitlines(keepends=True) if 'NAME="PSU__CRL_APB__PL0_REF_CTRL__ACT_FREQMHZ"' in ln)
    assert 'VALUE="100"' in line
    vivados = gen.replace(line, "")
    assert vivado_build.complete_hwh(vivados) == (gen, ["PSU__CRL_APB__PL0_REF_CTRL__ACT_FREQMHZ"])
    assert vivado_build.complete_hwh(gen) == (gen, [])
    zcu = (REPO / "bitstreams" / "zcu104" / "dnpu.hwh").read_text()
    assert vivado_build.complete_hwh(zcu) == (zcu, [])


def test_without_vivado_it_says_so_and_exits_2(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))          # no vivado (nor anything else) on PATH
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "vivado_build.py"), "--board", "pynq-z2",
                        "--out", str(tmp_path / "o")], capture_output=True, text=True, env=env)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "vivado_build: Vivado is not on PATH (no `vivado`): install Vivado and source its settings64.sh"]
    assert not (tmp_path / "o").exists()


def test_make_bitstream_without_vivado_exits_2(tmp_path):
    path = os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep)
                           if not os.path.exists(os.path.join(d, "vivado")))
    r = subprocess.run(["make", "-s", "bitstream", "BOARD=pynq-z2", f"BITSTREAM_OUT={tmp_path / 'o'}"],
                       cwd=REPO, capture_output=True, text=True, env=dict(os.environ, PATH=path))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Vivado is not on PATH" in r.stderr


def test_unknown_board_exits_2(capsys):
    assert vivado_build.main(["--board", "sim"]) == 2
    err = capsys.readouterr().err
    assert "no bitstreams/sim/build.tcl" in err and "pynq-z2" in err and "zcu104" in err


@pytest.mark.parametrize("board", ["pynq-z2", "zcu104"])
def test_a_build_writes_the_manifest(board, tmp_path, monkeypatch):
    """A stand-in `vivado` (a shell script) writes the sample reports and stand-in outputs where
    build.tcl writes them (its -tclargs folder); the manifest holds the profile's facts and the
    figures parsed from the reports."""
    samples = tmp_path / "samples"
    samples.mkdir()
    (samples / "utilization.rpt").write_text(UTIL_SAMPLE_7SERIES)
    (samples / "timing_summary.rpt").write_text(TIMING_SAMPLE)
    (samples / "dnpu.bit").write_bytes(b"not a bitstream")
    (samples / "dnpu.hwh").write_text('<EDKSYSTEM>\n  <PARAMETER NAME="PCW_ACT_FPGA0_PERIPHERAL_FREQMHZ" '
                                      'VALUE="100.000000"/>\n</EDKSYSTEM>\n')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "vivado"
    fake.write_text(f"""#!/bin/sh
while [ $# -gt 0 ]; do
  case "$1" in -log) log=$2;; -source) src=$2;; -tclargs) out=$2;; esac; shift
done
printf '%s\\n' "$src" > "$out/sourced"
printf '\\n****** Vivado v2022.1 (64-bit)\\n' > "$log"
cp {samples}/* "$out"/
""")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "out"
    assert vivado_build.main(["--board", board, "--out", str(out)]) == 0
    assert (out / "sourced").read_text().strip() == str(REPO / "bitstreams" / board / "build.tcl")
    m = json.loads((out / "manifest.json").read_text())
    t = load_tables(REPO)
    p = t.profile(board)
    assert m["profile"] == board and m["part"] == p.flat["PROFILE_PART"]
    assert m["config_hash"] == p.config_hash and m["config_hash32"] == f"0x{p.config_hash32:08X}"
    assert m["isa_version"] == f"{t.isa.version[0]}.{t.isa.version[1]}"
    assert m["vivado_version"] == "2022.1"
    assert m["pl_clock_mhz"] == pl_clock0(p, ps_family(p)[1])[2]
    assert m["utilization"]["lut"] == {"used": 31234, "available": 53200}
    assert m["wns_ns"] == -0.412 and m["whs_ns"] == 0.031 and m["timing_met"] is False
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    assert m["git_revision"].removesuffix("-dirty") == head
    assert set(m["sha256"]) == {"dnpu.bit", "dnpu.hwh"}
    # the .hwh completed for PYNQ 4 (its parameter added after the PS's own)
    hwh = (out / "dnpu.hwh").read_text()
    assert m["hwh_added_parameters"] == ["PSU__CRL_APB__PL0_REF_CTRL__ACT_FREQMHZ"]
    assert hwh.splitlines()[2] == '  <PARAMETER NAME="PSU__CRL_APB__PL0_REF_CTRL__ACT_FREQMHZ" VALUE="100.000000"/>'
    assert not [f for f in os.listdir(out) if f.endswith(".tmp.json")]


def test_a_failed_vivado_leaves_no_manifest(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "vivado").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "vivado").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("{}")                 # from an earlier build
    assert vivado_build.main(["--board", "pynq-z2", "--out", str(out)]) == 1
    assert not (out / "manifest.json").exists()
