"""The `pynq` board backend (dnpu.runtime.pynq_backend) without a board: the stand-in
`pynq` of tests/pynq_standin (PYNQ's Overlay / MMIO / allocate on the Verilator model,
with a cacheable-buffer model) and the .hwh that dnpu.codegen writes from hw/csr.toml.

The stand-in runs the `sim` profile here (its .hwh generated into a temporary board
folder; the model is the one tests/test_cosim.py builds); the committed
bitstreams/pynq-z2/dnpu.hwh and bitstreams/zcu104/dnpu.hwh are checked as files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import dnpu.runtime as rt
from dnpu import codegen, sampling
from dnpu.compiler import FLOWS
from dnpu.spec import config, csr, isa
from dnpu.spec.csr import ErrCause
from dnpu.runtime import DeviceError

from conftest import REPO, dnpu_cli, pynq_standin_module

STANDIN = REPO / "tests" / "pynq_standin"
SIM = config.load("sim")


# ---------------------------------------------------------------------------
# the .hwh files
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("board,base,mhz", [("pynq-z2", 0x4000_0000, 100.0), ("zcu104", 0xA000_0000, 100.0)])
def test_committed_hwh_describes_the_npu(board, base, mhz):
    path = REPO / "bitstreams" / board / "dnpu.hwh"
    assert path.read_text() == codegen.hwh_text(board), "stale: run `make generate`"
    ip_dict = pynq_standin_module().parse_hwh(path)
    ip = ip_dict["dnpu_0"]
    cfg = config.load(board)
    assert (ip["phys_addr"], ip["addr_range"]) == (base, 0x1_0000)
    par = ip["parameters"]
    assert par["DNPU_PROFILE"] == board and int(par["CONFIG_HASH32"], 16) == cfg.config_hash32
    assert int(par["ISA_VERSION"], 16) == isa.VERSION_WORD and int(par["C_M_AXI_DATA_WIDTH"]) == cfg.axi.data_width
    regs = ip["registers"]
    words = {r.name: r for r in csr.REGS.values()}
    assert len(regs) == sum(r.count * r.width // 32 for r in words.values())
    for name, r in regs.items():
        assert r["address_offset"] == csr.offset(name), name
    assert regs["ARG7"]["address_offset"] == csr.offset("ARG0") + 28
    assert regs["CTRL"]["fields"]["CLEAR_COUNTERS"]["bit_offset"] == csr.REGS["CTRL"].fields["CLEAR_COUNTERS"].lsb
    assert regs["STATUS"]["access"] == "read-only" and regs["PROG_BASE"]["access"] == "read-write"
    # PL clock 0 at the profile's frequency, as PYNQ's parser reads it from the PS
    import xml.etree.ElementTree as ET
    root = ET.parse(path).getroot()
    ps = next(m for m in root.iter("MODULE") if m.get("MODTYPE") in ("processing_system7", "zynq_ultra_ps_e"))
    p = {e.get("NAME"): e.get("VALUE") for e in ps.find("PARAMETERS")}
    if ps.get("MODTYPE") == "processing_system7":
        d0, d1 = int(p["PCW_FCLK0_PERIPHERAL_DIVISOR0"]), int(p["PCW_FCLK0_PERIPHERAL_DIVISOR1"])
        assert p["PCW_FPGA_FCLK0_ENABLE"] == "1" and 1000.0 / (d0 * d1) == mhz
    else:
        d0, d1 = int(p["PSU__CRL_APB__PL0_REF_CTRL__DIVISOR0"]), int(p["PSU__CRL_APB__PL0_REF_CTRL__DIVISOR1"])
        f = 1500.0 / (d0 * d1)                    # the IOPLL does not divide to every frequency
        assert p["PSU__FPGA_PL0_ENABLE"] == "1" and abs(f - mhz) <= 0.07 * mhz
        assert float(p["PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"]) == f


def test_hwh_needs_a_known_part():
    with pytest.raises(codegen.CodegenError, match="no processing system known"):
        codegen.hwh_text("sim")                       # no part: only with an explicit family
    assert 'MODTYPE="processing_system7"' in codegen.hwh_text("sim", family="xc7z")


# ---------------------------------------------------------------------------
# opening the backend
# ---------------------------------------------------------------------------

def test_missing_board_build(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(STANDIN))
    monkeypatch.delitem(sys.modules, "pynq", raising=False)
    monkeypatch.setenv("DNPU_BITSTREAM_DIR", str(tmp_path))
    with pytest.raises(DeviceError, match=r"no board build for .pynq-z2.: \S*dnpu\.bit, \S*dnpu\.hwh missing") as ei:
        rt.open("pynq", config="pynq-z2")
    assert str(tmp_path) in str(ei.value)


def _board_dir(root: Path) -> Path:
    d = root / "sim"
    d.mkdir(parents=True, exist_ok=True)
    (d / "dnpu.hwh").write_text(codegen.hwh_text("sim", family="xc7z"))
    (d / "dnpu.bit").write_bytes(b"stand-in: the PL is the Verilator model\n")
    return root


@pytest.fixture
def standin(model, tmp_path, monkeypatch):
    """The stand-in pynq importable as `pynq`, a board folder for profile sim."""
    monkeypatch.syspath_prepend(str(STANDIN))
    monkeypatch.delitem(sys.modules, "pynq", raising=False)
    monkeypatch.setenv("DNPU_BITSTREAM_DIR", str(_board_dir(tmp_path / "bitstreams")))
    import pynq
    assert getattr(pynq, "STANDIN", False), pynq.__file__
    yield pynq
    sys.modules.pop("pynq", None)


@pytest.fixture
def board(standin):
    with rt.open("pynq", config="sim") as dev:
        yield dev


def test_attach_through_overlay_and_mmio(board, standin):
    assert board.info["id"] == csr.ID_MAGIC and board.info["config_hash32"] == SIM.config_hash32
    assert board.info["phys_addr"] == 0x4000_0000
    base, size = board.info["pool"]
    assert standin.CMA_BASE <= base and base + size <= standin.CMA_BASE + standin.CMA_SIZE
    buf = board.alloc(100)
    assert base <= buf.addr < base + size and buf.addr % rt.ALIGN == 0
    assert board.budget_unit == "seconds"


PROG = """
    S_LD_ARG x1, 0
    S_LD_ARG x2, 1
    S_ADDI x3, x0, 64
    H_LOAD_INT x0, x1, x3
    C_LOOPI 64, @e
      S_LD_INT x4, x5, 0
      S_MUL x4, x4, x4
      S_ST_INT x4, x5, 100
      S_ADDI x5, x5, 1
e:  S_ADDI x6, x0, 100
    H_STORE_INT x6, x2, x3
    C_HALT
"""


def test_program_matches_emu(board):
    data = np.arange(64, dtype="<u4") * 977 + 5
    outs = {}
    for dev in (board, rt.open("emu")):
        with dev:
            prog = dev.load(PROG)
            inp, out = dev.alloc(256), dev.alloc(256)
            inp.write(data)
            info = dev.run(prog, args=[inp, out])
            outs[dev.backend] = (out.read(), info.instret)
    assert outs["pynq"] == outs["emu"]
    assert np.frombuffer(outs["pynq"][0], "<u4").tolist() == ((data.astype(np.uint64) ** 2) & 0xFFFFFFFF).tolist()


def test_counters_and_cycles(board):
    prog = board.load(PROG)
    inp, out = board.alloc(256), board.alloc(256)
    info = board.run(prog, args=[inp, out])
    c = info.counters
    assert info.cycles == c["BUSY_CYCLES"] > c["INSTRET"] == info.instret > 64 * 4
    assert c["RD_BYTES"] == c["RD_BEATS"] * SIM.beat_bytes and c["WR_BEATS"] >= 256 // SIM.beat_bytes


def test_faults_name_cause_and_pc(board):
    prog = board.load(isa.assemble("S_ADDI x1, x0, 1\nC_NOP") + (0x7F).to_bytes(4, "little") +
                      isa.assemble("C_HALT"))
    with pytest.raises(DeviceError) as ei:
        board.run(prog)
    e = ei.value
    assert (e.reason, e.err_cause, e.err_pc) == ("fault", ErrCause.ILLEGAL_INSTR, prog.addr + 8)
    assert f"ILLEGAL_INSTR at 0x{prog.addr + 8:08X}" in str(e) and "counters   CYCLES" in str(e)
    bad = board.load(f"S_LD_INT x1, x0, {SIM.sram.int_words}\nC_HALT")
    with pytest.raises(DeviceError, match="SRAM_RANGE") as ei:
        board.run(bad)
    assert ei.value.err_pc == bad.addr
    assert board.run(board.load("C_HALT")).outcome == "halted"       # usable after a fault


def test_budget_in_seconds_then_reset(board):
    prog = board.load("C_LOOPI 32767, @e\nC_LOOPI 32767, @e\nS_ADDI x1, x1, 1\ne: C_HALT")
    with pytest.raises(DeviceError) as ei:
        board.run(prog, timeout=0.3)
    e = ei.value
    assert e.reason == "budget" and e.status & csr.mask("STATUS", "BUSY")
    assert e.budget == 0.3 and e.budget_unit == "seconds" and 0.3 <= e.elapsed < 5
    assert "budget of 0.3 seconds" in str(e) and "still busy at PC" in str(e)
    with pytest.raises(DeviceError, match="still running"):
        board.run(prog)
    board.reset()
    assert board.read_csr("STATUS") == 0
    assert board.run(board.load("C_HALT"), timeout=2).outcome == "halted"


def test_no_trace_or_waveform_on_a_board(board):
    prog = board.load("C_HALT")
    with pytest.raises(ValueError, match="no retire trace"):
        board.run(prog, trace=True)
    with pytest.raises(ValueError, match="waveforms"):
        board.run(prog, wave="x.fst")


def test_hard_reset_reloads_the_pl_and_keeps_dram(board):
    buf = board.alloc(64)
    buf.write(b"\x07" * 64)
    board.run(board.load("S_ADDI x1, x0, 9\nS_ST_INT x1, x0, 3\nC_HALT"))
    assert board.counters()["INSTRET"] == 3
    board.reset(hard=True)                            # Overlay.download(): a fresh PL
    assert board.counters()["INSTRET"] == 0 and board.read_csr("ID") == csr.ID_MAGIC
    assert buf.read() == b"\x07" * 64
    out = board.alloc(64)
    board.run(board.load("S_LD_ARG x2, 0\nS_ADDI x3, x0, 4\nH_STORE_INT x0, x2, x3\nC_HALT"), args=[out])
    assert out.read(16) == bytes(16)                  # the int SRAM is back at power-on zeros


def test_standin_models_the_cache(board, standin):
    """A write that is not flushed stays in the CPU's view; a read that is not invalidated
    sees stale data: the backend's flush/invalidate are what makes the tests above pass."""
    buf = standin.allocate((64,), dtype=np.uint8)
    buf[:] = 5                                        # not flushed: DRAM still holds zeros
    prog = board.load("S_LD_ARG x1, 0\nS_ADDI x3, x0, 16\nH_LOAD_INT x0, x1, x3\nS_ADDI x4, x0, 8\n"
                      "S_LD_ARG x2, 1\nH_STORE_INT x0, x2, x4\nC_HALT")
    wins = [(prog, "x"), (buf.device_address, 64, "rw")]   # not the device's buffer: granted by hand
    board.run(prog, args=[buf.device_address, buf.device_address + 32], windows=wins)
    assert bytes(buf[32:64]) == b"\x05" * 32          # not invalidated: the CPU's stale view
    buf[32:64].invalidate()
    assert bytes(buf[32:64]) == bytes(32)             # the NPU copied the zeros DRAM held
    buf[:32].flush()
    board.run(prog, args=[buf.device_address, buf.device_address + 32], windows=wins)
    buf[32:].invalidate()
    assert bytes(buf[32:64]) == b"\x05" * 32
    assert buf[8:].device_address == buf.device_address + 8 == buf[8:].physical_address
    buf.freebuffer()


def test_sampling_step_on_the_board_path(standin):
    """dnpu.sampling on backend pynq: the compiler's program through Overlay/MMIO/allocate on
    the RTL, bit for bit the emulator's result."""
    rng = np.random.default_rng(3)
    B, L, V = 2, 5, 256
    logits = rng.standard_normal((B, L, V)).astype(np.float32) * 3
    mask = rng.random((B, L)) < 0.6
    x = rng.integers(0, V, (B, L))
    for flow in FLOWS:
        kw = dict(mask=mask, x=x, k=np.array([1, 2]), fmt="e4m3", block=SIM.mx.block, flow=flow, config="sim")
        got = sampling.transfer(logits, backend="pynq", **kw)
        want = sampling.transfer(logits, backend="emu", **kw)
        assert np.array_equal(got.x_new, want.x_new) and np.array_equal(got.x0, want.x0), flow
        assert np.array_equal(got.conf, want.conf, equal_nan=True), flow


def test_cli_check_sampling_through_the_standin(model, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(STANDIN), os.environ.get("PYTHONPATH", "")]),
               DNPU_BITSTREAM_DIR=str(_board_dir(tmp_path / "bitstreams")), DNPU_BACKEND="pynq")
    out = tmp_path / "s.json"
    p = subprocess.run(dnpu_cli() + ["check-sampling", "--cases", "2", "--seed", "4", "--json", str(out)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    r = json.loads(out.read_text())
    assert (r["backend"], r["cases"], r["token_mismatches"], r["bound_violations"]) == ("pynq", 2, 0, 0)


def test_bad_budgets_are_refused_at_the_call(board):
    """A board's budget is wall-clock seconds: NaN or infinity would poll forever."""
    prog = board.load("C_HALT")
    for bad in (float("nan"), float("inf"), -1.0, 0, 604_800.5, 10**9, "1", True):
        with pytest.raises(ValueError, match=r"timeout = .*\(0, 604800\] seconds on the pynq backend"):
            board.run(prog, timeout=bad)
    assert board.run(prog, timeout=604_800).outcome == "halted"


FOREVER = "C_LOOPI 32767, @e\nC_LOOPI 32767, @e\nC_LOOPI 32767, @e\nS_ADDI x1, x1, 1\ne: C_HALT"
BUSY = csr.mask("STATUS", "BUSY")


def test_close_stops_a_busy_npu_before_freeing_the_pool(board):
    with pytest.raises(DeviceError, match="budget"):
        board.run(board.load(FOREVER), timeout=0.05)
    assert board.read_csr("STATUS") & BUSY
    pool, seen = board.pool, []
    real = pool.freebuffer
    pool.freebuffer = lambda: (seen.append(board.mmio.read(csr.offset("STATUS"))), real())[1]
    board.close()
    assert len(seen) == 1 and not seen[0] & BUSY, f"STATUS 0x{seen[0]:X} when the pool was freed"


def test_close_keeps_the_pool_of_an_npu_that_does_not_stop(board, monkeypatch):
    """If SOFT_RESET does not take (here: a reset() that writes nothing), the NPU may go on
    writing the pool: close() must warn and not hand the pool back for reuse."""
    with pytest.raises(DeviceError, match="budget"):
        board.run(board.load(FOREVER), timeout=0.05)
    monkeypatch.setattr(board, "reset", lambda hard=False: None)
    monkeypatch.setattr(board, "STOP_POLLS", 5)
    pool, freed = board.pool, []
    pool.freebuffer = lambda: freed.append(True)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        board.close()
    text = [str(w.message) for w in rec if w.category is RuntimeWarning]
    assert len(text) == 1 and "still BUSY after SOFT_RESET" in text[0] and "is not freed" in text[0], text
    assert freed == [] and board.closed


def test_bad_poll_interval_is_refused_before_anything_is_allocated(standin):
    for bad in (float("nan"), -0.1, 2.0, "0.1", None):
        with pytest.raises(ValueError, match=r"poll_interval = .*\[0, 1\] \(the STATUS polls"):
            rt.open("pynq", config="sim", poll_interval=bad)
    assert standin._PL.allocs == {}
    with rt.open("pynq", config="sim", poll_interval=0.001) as dev:
        assert dev.run(dev.load("C_HALT"), timeout=5).outcome == "halted"


# ---------------------------------------------------------------------------
# a board build of another profile or ISA is refused
# ---------------------------------------------------------------------------

def _manifest(standin_dir: Path, **over) -> Path:
    """A build manifest as scripts/vivado_build.py writes it, for profile sim, with `over`."""
    cfg = config.load("sim")
    m = {"profile": "sim", "config_hash32": f"0x{cfg.config_hash32:08X}",
         "isa_version_word": f"0x{isa.VERSION_WORD:08X}"} | over
    p = standin_dir / "sim" / "manifest.json"
    p.write_text(json.dumps(m))
    return p


def test_a_matching_manifest_attaches(standin):
    _manifest(Path(os.environ["DNPU_BITSTREAM_DIR"]))
    with rt.open("pynq", config="sim") as dev:
        assert dev.read_csr("CONFIG_HASH") == config.load("sim").config_hash32


def test_a_manifest_of_another_profile_is_refused_naming_both(standin):
    cfg = config.load("sim")
    p = _manifest(Path(os.environ["DNPU_BITSTREAM_DIR"]), profile="zcu104",
                  config_hash32=f"0x{cfg.config_hash32 ^ 1:08X}")
    with pytest.raises(DeviceError) as ei:
        rt.open("pynq", config="sim")
    msg = str(ei.value)
    assert msg.startswith(f"{p}: ") and ei.value.reason == "attach"
    assert f"0x{cfg.config_hash32 ^ 1:08X}" in msg and f"0x{cfg.config_hash32:08X}" in msg and "'zcu104'" in msg


def test_a_manifest_of_another_isa_is_refused_naming_both(standin):
    other = isa.VERSION_WORD + 1
    _manifest(Path(os.environ["DNPU_BITSTREAM_DIR"]), isa_version_word=f"0x{other:08X}")
    with pytest.raises(DeviceError, match=f"ISA {other >> 16}.{other & 0xFFFF} \\(0x{other:08X}\\), this dnpu "
                                          f"package ISA .*\\(0x{isa.VERSION_WORD:08X}\\)"):
        rt.open("pynq", config="sim")


@pytest.mark.parametrize("text", ["", "{", "[]", '{"config_hash32": 5}', '{"config_hash32": "0x1"}'])
def test_an_unreadable_manifest_is_refused(standin, text):
    p = Path(os.environ["DNPU_BITSTREAM_DIR"]) / "sim" / "manifest.json"
    p.write_text(text)
    with pytest.raises(DeviceError, match=f"{p}: not a build manifest"):
        rt.open("pynq", config="sim")


def test_registers_of_another_profile_are_refused(standin, tmp_path):
    """Without a manifest the ID registers decide: the PL (built for sim) reports sim's hash,
    and an edited copy of the profile is refused naming both."""
    from dnpu.runtime.errors import AttachError

    path = tmp_path / "sim.toml"
    path.write_text((config.hw_dir() / "config" / "sim.toml").read_text().replace("vlen = 16", "vlen = 32"))
    edited = config.load(path)
    with pytest.raises(AttachError) as ei:
        rt.open("pynq", config=edited)
    assert str(ei.value).startswith(f"device CONFIG_HASH 0x{config.load('sim').config_hash32:08X} != profile "
                                    f"{edited.label} 0x{edited.config_hash32:08X}")
