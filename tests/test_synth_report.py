import importlib.util
import subprocess
import sys
import tomllib

import pytest

from dnpu.spec import config

from conftest import REPO

spec = importlib.util.spec_from_file_location("synth_report", REPO / "scripts" / "synth_report.py")
synth_report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(synth_report)

STAT = """
=== dnpu_top ===
        1   BUFG
        9   FDRE
        2   LUT2

        +----------Count including submodules.
        |
     8643 cells
        1   BUFG
      356   CARRY4
        3   DSP48E1
     3147   FDRE
       12   FDSE
      567   LUT2
     1106   LUT6
       39   RAM32M
        3   RAMB36E1
        2   RAMB18E1
"""


def test_stat_is_read_from_the_whole_hierarchy():
    cells = synth_report.parse_stat(STAT)
    assert cells["FDRE"] == 3147 and cells["LUT6"] == 1106
    use = synth_report.resources(cells)
    assert use["lut"] == 567 + 1106 + 4 * 39
    assert use["lutram_luts"] == 4 * 39
    assert use["ff"] == 3147 + 12
    assert use["dsp"] == 3
    assert use["bram36"] == 3 + 1.0


def test_every_fpga_profile_names_a_known_part():
    parts = tomllib.loads((REPO / "hw" / "fpga_parts.toml").read_text())
    for name in config.profiles():
        cfg = config.load(name)
        if cfg.profile.target == "fpga":
            assert cfg.profile.part in parts, name


def test_sources_exclude_test_benches():
    srcs = synth_report.rtl_sources()
    assert "hw/rtl/top/dnpu_top.v" in srcs
    assert not [s for s in srcs if "_tb" in s]


def test_the_modules_synthesis_inlines_exist_and_exclude_the_vector_lanes():
    text = "\n".join((REPO / src).read_text() for src in synth_report.rtl_sources())
    for name in synth_report.CTRL_INLINE:
        assert f"module {name} " in text or f"module {name}(" in text, name
    assert not [m for m in synth_report.CTRL_INLINE if m.startswith(("dnpu_vec", "dnpu_fp3", "dnpu_fp_"))]


def test_progress_names_the_last_pass_yosys_announced(tmp_path):
    log = tmp_path / "yosys.log"
    assert synth_report.current_pass(log) == "starting"
    log.write_text("1. Executing Verilog-2005 frontend: a.v\n...\n17.47. Executing ABC9 pass.\n"
                   "17.47.1. Executing ABC9_OPS pass (helper functions for ABC9).\nExtracted 5 AND gates\n")
    assert synth_report.current_pass(log) == "ABC9_OPS pass (helper functions for ABC9)"


def test_a_synthesis_past_its_timeout_is_stopped_and_says_where(tmp_path):
    cfg = config.load("pynq-z2")
    out = REPO / "build" / "test-synth-timeout"
    with pytest.raises(SystemExit, match=r"did not finish within 1 s \(in: .+\); killed"):
        synth_report.synthesize(cfg, "xc7", out, timeout=1, progress_every=0.5)


@pytest.mark.slow
@pytest.mark.parametrize("profile,seconds", [("pynq-z2", 1800), ("zcu104", 7200)])
def test_the_board_profiles_fit_their_parts(profile, seconds, tmp_path):
    """The Yosys estimate of a board profile fits its part: scripts/synth_report.py exits 0
    and says so in its JSON. pynq-z2 takes about 8 minutes here, zcu104 (with its matrix
    unit) about an hour."""
    import json

    out = tmp_path / "synth.json"
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "synth_report.py"), "--config", profile,
                        "--json", str(out), "--timeout", str(seconds)],
                       capture_output=True, text=True, timeout=seconds + 600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rep = json.loads(out.read_text())
    assert rep["fits"] and rep["profile"] == profile
    assert all(rep["used"][k] <= rep["available"][k] for k in rep["used"])
