"""Profiles are checked at load for everything the RTL and the compiler assume of them, and
the name a profile is reported by tells an edited copy from the shipped file."""

import shutil
import subprocess

import pytest

from dnpu.spec import config, isa
from dnpu.spec.config import ConfigError

from conftest import REPO, dnpu_cli

SIM_TOML = REPO / "hw" / "config" / "sim.toml"


def _mutated(tmp_path, old: str, new: str, name: str = "sim.toml"):
    """sim.toml with each `|`-separated piece of old replaced by the same piece of new."""
    text = SIM_TOML.read_text()
    for o, n in zip(old.split("|"), new.split("|"), strict=True):
        assert o in text, o
        text = text.replace(o, n, 1)
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("old,new,fragment", [
    ("vlen = 16 |lanes = 16 |rows = 4 ", "vlen = 4 |lanes = 4 |rows = 2 ", "[vector] vlen = 4: must be a power of two from 8 to 2048"),
    ("vlen = 16 ", "vlen = 4096 ", "[vector] vlen = 4096: must be a power of two from 8 to 2048"),
    ("fetch_words = 8", "fetch_words = 1", "[ctrl] fetch_words = 1: must be a power of two from 2 to 256"),
    ("loop_depth = 4", "loop_depth = 1", "[ctrl] loop_depth = 1: must be an integer from 2 to 16"),
    ('formats = ["e4m3", ', "formats = [", "[mx] formats = ['e5m2', 'e3m2', 'e2m3', 'e2m1', 'int8']: must be "
                                           "a list of MX formats that includes 'e4m3'"),
    ("vector_rows = 1024", "vector_rows = 1048576", "the SRAMs hold 33566720 bytes (vector_rows x vlen x 2 + 4 x (fp_words + int_words)); at most 16777216"),
    ("int_words = 2048", "int_words = 4194304", "[sram] int_words = 4194304: must be a power of two from 16 to 1048576"),
])
def test_profile_that_cannot_work_is_refused_at_load(tmp_path, old, new, fragment):
    p = _mutated(tmp_path, old, new)
    with pytest.raises(ConfigError) as e:
        config.load(p)
    msg = str(e.value)
    assert fragment in msg
    assert msg.startswith(f"{p}: ")
    assert "\n" not in msg


def test_shipped_profiles_meet_every_build_rule():
    for name in config.profiles():
        cfg = config.load(name)
        for s, k, ok, _accepted, _why in config.BUILD_RULES:
            assert ok(getattr(getattr(cfg, s), k)), (name, s, k)
        assert config.sram_bytes(cfg) <= config.MAX_SRAM_BYTES
        assert cfg.label == name


def test_block_larger_than_vlen_is_a_working_profile(tmp_path):
    # The RTL's MX decoder aligns a block over BLOCK/VLEN rows (sim itself ships 32 > 16).
    p = _mutated(tmp_path, "block = 32|vlen = 16 |lanes = 16 ", "block = 64|vlen = 8 |lanes = 8 ")
    cfg = config.load(p)
    assert (cfg.vector.vlen, cfg.mx.block) == (8, 64)


def test_a_value_where_a_section_belongs(tmp_path):
    q = tmp_path / "y.toml"
    q.write_text("clock = 3\n" + "\n".join(l for l in SIM_TOML.read_text().splitlines()
                                          if not l.startswith(("[clock]", "f_clk_mhz"))))
    with pytest.raises(ConfigError, match=r"clock = 3: must be a section \[clock\], not a value"):
        config.load(q)


def test_binary_and_unreadable_files_are_config_errors(tmp_path):
    p = tmp_path / "bin.toml"
    p.write_bytes(b"[profile]\nname = \"\xff\xfe\"\n")
    with pytest.raises(ConfigError, match=r"bin\.toml: not a TOML text file \(not UTF-8 at byte"):
        config.load(p)
    d = tmp_path / "dir.toml"
    d.mkdir()
    with pytest.raises(ConfigError, match="no such hardware profile file"):
        config.load(d)


def test_compiled_programs_nest_at_most_the_required_loop_depth():
    from dnpu.compiler import FLOWS, MODES, sampling_program

    cfg = config.load("sim")

    def depth(binary: bytes) -> int:
        ends: list[int] = []
        deepest = 0
        for i in range(len(binary) // 4):
            ends = [e for e in ends if e >= i]
            d = isa.decode(int.from_bytes(binary[4 * i:4 * i + 4], "little"))
            if d.name in ("C_LOOP", "C_LOOPI"):
                ends.append(i + d.args["len"])
                deepest = max(deepest, len(ends))
        return deepest

    depths = [depth(sampling_program(cfg, 2, 16, 256, m, f).binary) for m in MODES for f in FLOWS]
    assert max(depths) == config.COMPILER_LOOP_DEPTH


def test_label_names_a_modified_copy(tmp_path):
    assert config.load("sim").label == "sim"
    same = tmp_path / "same.toml"
    shutil.copy(SIM_TOML, same)
    assert config.load(same).label == "sim"              # byte-identical hardware: the shipped sim
    p = _mutated(tmp_path, "lanes = 16 ", "lanes = 8 ")
    cfg = config.load(p)
    assert cfg.name == "sim"
    assert cfg.label == f"sim (modified: {p}, config {cfg.config_hash[:8]})"
    assert cfg.describe().splitlines()[0].startswith(f"profile {cfg.label}: ")
    other = _mutated(tmp_path, 'name = "sim"', 'name = "mine"', "mine.toml")
    c2 = config.load(other)
    assert c2.label == f"mine ({other}, config {c2.config_hash[:8]})"


def test_label_in_a_hw_copy_compares_with_the_source_trees_headers(hw_copy):
    p = hw_copy / "config" / "sim.toml"
    assert config.load("sim").label == "sim"
    p.write_text(p.read_text().replace("max_burst = 16", "max_burst = 8"))
    assert config.load("sim").label.startswith(f"sim (modified: {p}, config ")


def test_variants_keep_the_wider_projection_ranges():
    from dnpu.perf import analytical as an

    v = an.variant("asic-2048", vector__vlen=4096, vector__lanes=4096)
    assert v.vector.vlen == 4096


@pytest.mark.parametrize("content,fragment", [
    (SIM_TOML.read_text().replace('formats = ["e4m3", ', "formats = ["), "must be a list of MX formats that includes"),
    (b"\x7fELF\x02\x01\x01\x00\xd0\xcf\x11", "not a TOML text file"),
])
def test_cli_info_bad_profile_file_is_one_line(tmp_path, content, fragment):
    p = tmp_path / "p.toml"
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    r = subprocess.run(dnpu_cli() + ["info", "--config", str(p)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert str(p) in r.stderr and fragment in r.stderr


def test_cli_info_reports_a_modified_profile(tmp_path):
    p = _mutated(tmp_path, "lanes = 16 ", "lanes = 8 ")
    out = subprocess.run(dnpu_cli() + ["info", "--config", str(p)], capture_output=True, text=True,
                         check=True).stdout
    assert out.splitlines()[0].startswith(f"profile sim (modified: {p}, config ")


def test_check_reports_name_a_modified_profile(tmp_path):
    from dnpu.verify import sampling

    p = _mutated(tmp_path, "read_latency = 20|max_burst = 16", "read_latency = 3|max_burst = 8")
    r = sampling.check_sampling("emu", cases=1, config=str(p))
    cfg = config.load(p)
    assert r["config"] == cfg.label == f"sim (modified: {p}, config {cfg.config_hash[:8]})"
    assert sampling.check_sampling("emu", cases=1, config="sim")["config"] == "sim"


def test_fpga_profile_needs_a_zynq_part(tmp_path):
    from dnpu.codegen.emit_hwh import PS_FAMILIES

    assert set(config.ZYNQ_PART_PREFIXES) == set(PS_FAMILIES)
    zcu = (REPO / "hw" / "config" / "zcu104.toml").read_text()
    p = tmp_path / "zcu104.toml"
    p.write_text(zcu.replace('part = "xczu7ev-ffvc1156-2-e"', 'part = "xcvu9p-flga2104-2-e"'))
    with pytest.raises(ConfigError, match=r"\[profile\] part = 'xcvu9p-flga2104-2-e': must be a Zynq part "
                                          r"\(xc7z\.\.\. or xczu\.\.\.\)"):
        config.load(p)


def test_a_non_zynq_fpga_profile_says_host_none(tmp_path):
    """host = "none" lets an fpga profile name any part (no .hwh or Vivado build is written for
    it); without it the part must be a Zynq; a sim or asic profile has no host."""
    zcu = (REPO / "hw" / "config" / "zcu104.toml").read_text()
    p = tmp_path / "zcu104.toml"
    p.write_text(zcu.replace('part = "xczu7ev-ffvc1156-2-e"', 'part = "LFE5U-85F-6BG381C"\nhost = "none"'))
    cfg = config.load(p)
    assert cfg.profile.host == "none" and not cfg.zynq_board
    assert config.load("zcu104").zynq_board and config.load("pynq-z2").zynq_board
    assert not config.load("ecp5").zynq_board and not config.load("sim").zynq_board
    p.write_text(zcu.replace('part = "xczu7ev-ffvc1156-2-e"', 'part = "xczu7ev-ffvc1156-2-e"\nhost = "mmio"'))
    with pytest.raises(ConfigError, match=r"\[profile\] host = 'mmio': must be one of zynq-ps, serial, none"):
        config.load(p)
    q = _mutated(tmp_path, 'target = "sim"', 'target = "sim"\nhost = "none"')
    with pytest.raises(ConfigError, match=r"host = 'none': only fpga profiles have one \(target = 'sim'\)"):
        config.load(q)


def test_codegen_writes_board_files_only_for_zynq_boards():
    from dnpu import codegen

    files = codegen.generate(REPO)
    assert "hw/rtl/generated/dnpu_cfg_ecp5.vh" in files
    assert not [f for f in files if f.startswith("bitstreams/ecp5/")]
    assert "bitstreams/pynq-z2/build.tcl" in files


def test_a_device_names_a_modified_profile_by_its_label(tmp_path):
    """The runtime reports the profile as the CLI does: a device opened on an edited copy
    says so in its repr, its info and the errors it raises."""
    from dnpu import runtime
    from dnpu.runtime.errors import DeviceError

    cfg = config.load(_mutated(tmp_path, "lanes = 16 ", "lanes = 8 "))
    with runtime.open("emu", config=cfg) as dev:
        assert cfg.label in repr(dev) and dev.info["profile"] == cfg.label
        prog = dev.load(f"S_ADDI x3, x0, 7\nS_LD_INT x4, x3, {cfg.sram.int_words}\nC_HALT")
        with pytest.raises(DeviceError) as ei:
            dev.run(prog)
        assert ei.value.profile == cfg.label
