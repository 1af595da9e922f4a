"""dnpu_core with [pipeline] decode_stage = 1 (FETCH -> DECODE -> EXEC) on the co-simulation.

pynq-z2 sets it with its other pipeline stages; these tests isolate it: they build the sim
profile with decode_stage = 1 alone from a copy of hw/rtl whose sim header is regenerated from
the edited profile (the cosim cache keys the build by the RTL's contents; the CONFIG_HASH the
model reports is the edited profile's).
They check that the core retires what the emulator retires, fault for fault (random
programs with every instruction, dnpu.verify.lockstep), and that DECODE costs exactly one
cycle per instruction, on the RTL and in the cycle model, against the shipped sim build.
"""

from __future__ import annotations

import shutil

import pytest

from dnpu import runtime as rt
from dnpu.codegen.emit_verilog import emit_cfg_vh, profile_vh_name
from dnpu.codegen.tables import Profile
from dnpu.perf import analytical as an
from dnpu.runtime import cosim
from dnpu.spec import config
from dnpu.verify import lockstep
import dnpu.verify.perf as vperf

# slow tier: a second Verilator build of the whole NPU (2 to 3 minutes) for an option alone
pytestmark = [pytest.mark.rtl, pytest.mark.slow]

SIM = config.load("sim")


def decode_profile(tmp_dir) -> config.Config:
    """The sim profile with decode_stage = 1, as a .toml path profile."""
    text = (config.hw_dir() / "config" / "sim.toml").read_text()
    assert text.count("[pipeline]\n") == 1 and "decode_stage" not in text
    path = tmp_dir / "sim.toml"
    path.write_text(text.replace("[pipeline]\n", "[pipeline]\ndecode_stage = 1\n"))
    cfg = config.load(path)
    assert cfg.name == "sim" and cfg.pipeline.decode_stage == 1
    return cfg


def rtl_with_header(cfg: config.Config, dst) -> None:
    """A copy of the RTL whose header for cfg.name is generated from cfg."""
    shutil.copytree(cosim.rtl_dir(), dst)
    p = Profile(cfg.name, str(cfg.path), dict(cfg.flat()), str(cfg.config_hash), int(cfg.config_hash32))
    (dst / "generated" / profile_vh_name(cfg.name)).write_text(emit_cfg_vh(p))


@pytest.fixture(scope="module")
def decode_cfg(tmp_path_factory, model):
    """The decode_stage = 1 profile, its model built and DNPU_RTL_DIR pointing at its RTL."""
    tmp = tmp_path_factory.mktemp("decode_stage")
    cfg = decode_profile(tmp)
    shipped = cosim.rtl_dir()
    rtl_with_header(cfg, tmp / "rtl")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DNPU_RTL_DIR", str(tmp / "rtl"))
        cosim.ensure_built(cfg.name)
        yield cfg, shipped


def test_the_header_carries_the_stage(decode_cfg):
    decode_cfg, _ = decode_cfg
    hdr = cosim.rtl_dir() / "generated" / profile_vh_name("sim")
    assert "`define DNPU_CFG_PIPELINE_DECODE_STAGE           1" in hdr.read_text()
    assert decode_cfg.config_hash32 != SIM.config_hash32


def test_lockstep_with_decode_stage(decode_cfg):
    decode_cfg, _ = decode_cfg
    r = lockstep.check_lockstep(40, seed=5, config=decode_cfg)
    assert r["mismatches"] == 0, r["first_mismatch"]
    assert r["programs"] == 40 and r["outcomes"].get("halted", 0) >= 20, r["outcomes"]
    faults = {end for end in r["outcomes"] if end.startswith("fault:")}
    assert len(faults) >= 3, r["outcomes"]              # faults of several causes, EXEC's included
    assert r["excluded"] == [] and r["not_generated"] == []


@pytest.mark.parametrize("point", [(1, 2, 512, "topk", "fused"), (2, 4, 1024, "threshold", "phased")])
def test_decode_costs_one_cycle_per_instruction(decode_cfg, point, monkeypatch):
    """The same sampling step on both builds: with DECODE the RTL takes a cycle more per
    instruction and one more per memory access (its registered window check), and the model
    exactly as many more: its error is the shipped profile's, cycle for cycle."""
    decode_cfg, shipped = decode_cfg
    with rt.open("verilator", config=decode_cfg) as dev:
        p1 = vperf.run_point(dev, decode_cfg, *point)
    monkeypatch.setenv("DNPU_RTL_DIR", str(shipped))
    with rt.open("verilator", config=SIM) as dev:
        p0 = vperf.run_point(dev, SIM, *point)
    assert p1["instret"] == p0["instret"] > 40
    more = p1["rtl_busy_cycles"] - p0["rtl_busy_cycles"]
    assert more == p1["model_cycles"] - p0["model_cycles"], (p0, p1)
    assert p0["instret"] < more < 2 * p0["instret"], (p0, p1)   # the accesses: some, not all
    assert an.machine(decode_cfg).decode_stage == 1 and an.machine(SIM).decode_stage == 0
