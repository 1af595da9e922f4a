import dataclasses
import json
import subprocess

import pytest

from dnpu.spec import config
from dnpu.spec.config import ConfigError

from conftest import dnpu_cli

PROFILES = ["sim", "pynq-z2", "zcu104", "asic-2048"]


def test_every_profile_loads():
    assert set(PROFILES) <= set(config.profiles())
    for name in PROFILES:
        cfg = config.load(name)
        assert cfg.name == name
        v = cfg.vector.vlen
        assert v & (v - 1) == 0
        assert len(cfg.config_hash) == 64
        assert cfg.config_hash32 == int(cfg.config_hash, 16) & 0xFFFFFFFF


def test_asic_profile_is_the_papers_design_point():
    cfg = config.load("asic-2048")
    assert cfg.vector.vlen == 2048 and cfg.clock.f_clk_mhz == 1000.0


def test_hashes_differ_between_profiles():
    hashes = {config.load(p).config_hash for p in PROFILES}
    assert len(hashes) == len(PROFILES)


def test_config_is_frozen():
    cfg = config.load("sim")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.vector.vlen = 32
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.vector = None


def _rewrite(path, old, new):
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def test_hash_ignores_comments_order_name_clock_and_memory(hw_copy):
    base = config.load("sim").config_hash
    p = hw_copy / "config" / "sim.toml"
    text = p.read_text()
    # Reverse the section order and strip comments: same hardware, same hash.
    sections = ["[" + s for s in text.split("\n[")]
    sections[0] = sections[0][1:]
    stripped = "\n".join(l.split("#")[0] for l in "\n".join(reversed(sections)).splitlines())
    p.write_text(stripped)
    assert config.load("sim").config_hash == base
    _rewrite(p, 'description = "Small NPU for fast co-simulation and tests"', 'description = "other words"')
    _rewrite(p, "f_clk_mhz = 100.0", "f_clk_mhz = 50")
    _rewrite(p, "read_latency = 20", "read_latency = 3")
    assert config.load("sim").config_hash == base


@pytest.mark.parametrize("old,new", [("vlen = 16", "vlen = 32"), ("block = 32", "block = 16"),
                                     ("max_burst = 16", "max_burst = 8"),
                                     ("int_words = 2048", "int_words = 4096")])
def test_hash_follows_rtl_parameters(hw_copy, old, new):
    base = config.load("sim").config_hash
    _rewrite(hw_copy / "config" / "sim.toml", old, new)
    assert config.load("sim").config_hash != base


@pytest.mark.parametrize("old,new,fragment", [
    ("vlen = 16", "vlen = 24", "[vector] vlen = 24: must be a power of two"),
    ("vlen = 16", 'vlen = "16"', "[vector] vlen: expected int, got str"),
    ("vlen = 16", "vlen = true", "[vector] vlen: expected int, got bool"),
    ("vlen = 16", "vlen = 16\nwidth = 4", "[vector] unknown key 'width'"),
    ("lanes = 16", "lanes = 32", "[vector] lanes = 32: at most vlen = 16"),
    ("[memory]", "[dram]", "unknown section [dram]"),
    ("block = 32", "block = 128", "[mx] block = 128: must be a power of two from 8 to 64"),
    ('formats = ["e4m3",', 'formats = ["e9m9", "e4m3",', "[mx] formats"),
    ("data_width = 128", "data_width = 96", "[axi] data_width = 96: must be one of 64, 128, 256, 512"),
    ("data_width = 128", "data_width = 32", "[axi] data_width = 32: must be one of 64, 128, 256, 512"),
    ("bytes_per_cycle = 16", "bytes_per_cycle = 32", "one AXI4 port moves at most"),
    ("loop_depth = 4  ", "# ", "[ctrl] loop_depth: missing"),
    ('name = "sim"', 'name = "other"', "must match the file name"),
    ("vlen = 16", "vlen = [", "not valid TOML"),
])
def test_bad_fields_name_file_and_key(hw_copy, old, new, fragment):
    p = hw_copy / "config" / "sim.toml"
    _rewrite(p, old, new)
    with pytest.raises(ConfigError) as e:
        config.load("sim")
    assert fragment in str(e.value)
    assert str(p) in str(e.value)


def test_load_by_path_and_unknown_profile(tmp_path, repo):
    cfg = config.load(repo / "hw" / "config" / "pynq-z2.toml")
    assert cfg.name == "pynq-z2"
    with pytest.raises(ConfigError, match="unknown hardware profile 'nope': choose one of"):
        config.load("nope")
    with pytest.raises(ConfigError, match="no such hardware profile file"):
        config.load(tmp_path / "missing.toml")


def test_fpga_profile_needs_a_part(hw_copy):
    _rewrite(hw_copy / "config" / "zcu104.toml", 'part = "xczu7ev-ffvc1156-2-e"\n', "")
    with pytest.raises(ConfigError, match="part: an fpga profile must name its FPGA part"):
        config.load("zcu104")


def test_flat_keys():
    flat = config.load("sim").flat()
    assert flat["VECTOR_VLEN"] == 16
    assert flat["AXI_DATA_WIDTH"] == 128
    assert flat["MX_FORMATS"][0] == "e4m3"


def test_cli_info_prints_profile_and_hash():
    cfg = config.load("sim")
    out = subprocess.run(dnpu_cli() + ["info", "--config", "sim"], capture_output=True, text=True, check=True).stdout
    assert cfg.config_hash in out
    assert "vector.vlen" in out and " 16" in out
    js = json.loads(subprocess.run(dnpu_cli() + ["info", "--config", "pynq-z2", "--json"],
                                   capture_output=True, text=True, check=True).stdout)
    assert js["config_hash"] == config.load("pynq-z2").config_hash
    assert js["sections"]["vector"]["vlen"] == config.load("pynq-z2").vector.vlen


def test_cli_info_bad_profile_is_a_clear_error():
    r = subprocess.run(dnpu_cli() + ["info", "--config", "nope"], capture_output=True, text=True)
    assert r.returncode == 2
    assert "unknown hardware profile 'nope'" in r.stderr
    assert "Traceback" not in r.stderr
