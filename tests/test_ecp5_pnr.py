"""scripts/ecp5_pnr.py: the ECP5 place and route of the NPU out of context. The report
parsing and the refusals are fast; the whole run (Yosys and nextpnr, minutes) is slow."""

import importlib.util
import json
import subprocess
import sys

import pytest

from dnpu.spec import config

from conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
spec = importlib.util.spec_from_file_location("ecp5_pnr", REPO / "scripts" / "ecp5_pnr.py")
ecp5_pnr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ecp5_pnr)

REPORT = {
    "fmax": {"$glbnet$clk$TRELLIS_IO_IN": {"achieved": 61.25, "constraint": 50}},
    "utilization": {"TRELLIS_COMB": {"available": 83640, "used": 41820}, "DP16KD": {"available": 208, "used": 40},
                    "MULT18X18D": {"available": 156, "used": 0}},
    "critical_paths": [{"from": "posedge clk", "to": "posedge clk", "path": [
        {"type": "clk-to-q", "delay": 0.5, "from": {"cell": "u_a"}, "to": {"cell": "u_a"}},
        {"type": "routing", "delay": 1.25, "net": "u_npu.x", "from": {"cell": "u_a"}, "to": {"cell": "u_l"}},
        {"type": "logic", "delay": 0.25, "from": {"cell": "u_l"}, "to": {"cell": "u_l"}},
        {"type": "routing", "delay": 2.0, "net": "u_npu.y", "from": {"cell": "u_l"}, "to": {"cell": "u_b"}},
        {"type": "setup", "delay": 0.125, "from": {"cell": "u_b"}, "to": {"cell": "u_b"}}]}],
}


def test_report_gives_fmax_utilization_and_the_critical_path():
    r = ecp5_pnr.parse_report(REPORT, 50.0)
    assert r["fmax_mhz"] == 61.25 and r["meets_clock"] and r["fits"]
    assert r["utilization"]["TRELLIS_COMB"] == {"used": 41820, "available": 83640}
    cp = r["critical_path"]
    assert (cp["from"], cp["to"], cp["cells"], cp["nets"]) == ("u_a", "u_b", 1, ["u_npu.x", "u_npu.y"])
    assert (cp["delay_ns"], cp["logic_ns"], cp["routing_ns"]) == (4.125, 0.25, 3.25)
    assert not ecp5_pnr.parse_report(REPORT, 62.0)["meets_clock"]
    over = json.loads(json.dumps(REPORT))
    over["utilization"]["DP16KD"]["used"] = 209
    assert not ecp5_pnr.parse_report(over, 50.0)["fits"]
    with pytest.raises(ValueError, match="no Fmax"):
        ecp5_pnr.parse_report({"fmax": {}}, 50.0)


def test_progress_names_nextpnrs_last_step(tmp_path):
    log = tmp_path / "nextpnr.log"
    assert ecp5_pnr.nextpnr_step(log) == "starting"
    log.write_text("Info: Packing IOs..\nInfo: Running simulated annealing placer for refinement.\n"
                   "Info:   at iteration #5: temp = 0.000000, timing cost = 12867\nInfo: HeAP Placer Time: 3s\n")
    assert ecp5_pnr.nextpnr_step(log) == "at iteration #5: temp = 0.000000, timing cost = 12867"


@pytest.mark.parametrize("args,fragment", [
    (["--config", "pynq-z2"], "part 'xc7z020clg400-1' is not an ECP5 part of hw/fpga_parts.toml"),
    (["--config", "nosuch"], "unknown hardware profile 'nosuch'"),
    (["--timeout", "0"], "--timeout must be > 0"),
    (["--json", "/nonexistent/dir/x.json"], "cannot write /nonexistent/dir/x.json"),
    (["--out-dir", "/tmp"], "--out-dir /tmp must lie inside the repository"),
])
def test_a_bad_option_is_one_line_and_exit_2(args, fragment):
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "ecp5_pnr.py"), *args], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert fragment in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_the_ecp5_profile_is_on_an_ecp5_part_and_no_zynq_board():
    import tomllib

    cfg = config.load("ecp5")
    part = tomllib.loads((REPO / "hw" / "fpga_parts.toml").read_text())[cfg.profile.part]
    assert part["family"] == "ecp5" and not cfg.zynq_board
    assert cfg.matrix.rows == 0


@pytest.mark.slow
def test_the_ecp5_profile_meets_its_clock_and_fits(tmp_path):
    """The whole flow on the ecp5 profile: nextpnr's Fmax is at least the profile's clock and
    no resource is over the device's. About 45 minutes here (9 of Yosys, 36 of nextpnr, on
    two busy cores). The out-dir is repo-relative: YoWASP sees the tree from its cwd down."""
    out = tmp_path / "pnr.json"
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "ecp5_pnr.py"), "--config", "ecp5",
                        "--json", str(out), "--out-dir", "build/test-ecp5", "--timeout", "5400"],
                       capture_output=True, text=True, timeout=2 * 5400 + 600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rep = json.loads(out.read_text())
    cfg = config.load("ecp5")
    assert rep["profile"] == "ecp5" and rep["fmax_mhz"] >= cfg.clock.f_clk_mhz
    assert rep["fits"]
    for k, u in rep["utilization"].items():
        assert u["used"] < u["available"] or u["available"] == 0, k
    assert rep["utilization"]["TRELLIS_COMB"]["used"] > 1000      # the NPU, not an emptied-out wrapper
