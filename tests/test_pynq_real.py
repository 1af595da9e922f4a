"""The generated bitstreams/<board>/dnpu.hwh against the real `pynq` package, off the board.

On a board, `pynq.Overlay` parses the .hwh with pynqmetadata's RuntimeMetadataParser and
then, before loading the bitstream, programs every PL clock from its clock_dict; a file that
parser cannot read, or a clock it reads without a rate, stops the runtime before it starts.
tests/pynq_standin cannot catch that (it has its own small parser), so this runs the real
one: pynq == PYNQ_VERSION, installed into a virtual environment of its own (it pins
numpy<2, which the project's environment does not) and cached under
~/.cache/dnpu/pynq-venv-<version> ($XDG_CACHE_HOME moves it; $DNPU_PYNQ_PYTHON names an
interpreter that already has pynq, for a machine without the package index).

`pip install pynq==4.0.0` is the whole install: pure Python, nothing compiled (it pulls
pynqmetadata, pynqutils, pydantic, ipython, grpcio), about a minute the first time. In
that environment a probe parses each generated .hwh with both of PYNQ's parsers
(pynqmetadata's, what Overlay uses, and the older pynq.pl_server.hwh_parser) and runs
Overlay.download's clock programming on a PS whose PLL runs at the rate the codegen
assumes; what it prints (JSON) is checked here against the tables: the profile (PS family,
PL clock), dnpu.codegen's address map and dnpu.spec.csr's register map (hw/csr.toml).

Slow tier (`make test-pynq`, or `make test-slow`): it needs the package index once."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dnpu import codegen
from dnpu.codegen.emit_hwh import HWH_WINDOW
from dnpu.spec import config, csr, isa

from conftest import REPO, pynq_standin_module

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("pynq_real")]

PYNQ_VERSION = "4.0.0"
BOARDS = [p for p in config.profiles() if config.load(p).zynq_board]
_ACCESS = {"ro": "read-only", "rw": "read-write", "wo": "write-only", "w1p": "write-only"}

# Runs inside the pynq environment: argv[1] = {board: {"hwh": path, "pll_mhz": rate}}.
_PROBE = textwrap.dedent('''
    import json, sys, warnings
    from xml.etree import ElementTree

    import pynq
    from pynq import bitstream, overlay, ps
    from pynq.pl_server import hwh_parser
    from pynq.pl_server.embedded_device import Metadata, RuntimeMetadataParser


    def ips(ip_dict):
        return {k: {"phys_addr": v.get("phys_addr"), "addr_range": v.get("addr_range"), "type": v.get("type"),
                    "parameters": v.get("parameters"),
                    "registers": {n: {"address_offset": int(r["address_offset"]), "size": int(r["size"]),
                                      "access": r["access"],
                                      "fields": {f: [int(x["bit_offset"]), int(x["bit_width"])]
                                                 for f, x in r["fields"].items()}}
                                  for n, r in (v.get("registers") or {}).items()}}
                for k, v in ip_dict.items()}


    def probe(hwh, pll_mhz):
        arch = next(ElementTree.parse(hwh).getroot().iter("SYSTEMINFO")).get("ARCH")
        out = {"pynq": pynq.__version__, "arch": arch}
        # the older parser, by family (pynq picks one by the CPU it runs on)
        legacy = {"zynq": hwh_parser._HWHZynq, "zynquplus": hwh_parser._HWHUltrascale}[arch](hwh_name=hwh)
        out["legacy"] = {"ip_dict": ips(legacy.ip_dict), "clock_dict": legacy.clock_dict}
        # what Overlay gets from BitstreamHandler.get_parser for a .bit with a .hwh beside it and
        # no cached metadata (the xclbin it synthesises next needs XRT's xclbinutil: board only)
        parser = RuntimeMetadataParser(Metadata(input=hwh))
        parser.refresh_hierarchy_dict()
        out["runtime"] = {"ip_dict": ips(parser.ip_dict), "clock_dict": parser.clock_dict}

        # Overlay.download itself, on a PS whose PLLs run at pll_mhz (clock registers in
        # memory instead of the board's SLCR / CRL_APB) and a bitstream load that only records
        class Reg:
            SRCSEL = DIVISOR0 = DIVISOR1 = CLKACT = 0
        cls = {"zynq": ps._ClocksZynq, "zynquplus": ps._ClocksUltrascale}[arch]
        clocks = cls.__new__(cls)
        clocks.PL_CLK_CTRLS = [Reg() for _ in range(4)]
        clocks.PL_SRC_PLL_CTRLS = [None] * 4
        clocks.get_pll_mhz = lambda reg: pll_mhz
        ps.Clocks._real_instance = clocks
        loaded = []
        bitstream.Bitstream.download = lambda self, parser=None: loaded.append(parser)
        ov = overlay.Overlay.__new__(overlay.Overlay)
        ov.__dict__.update(clock_dict=parser.clock_dict, parser=parser, dtbo=None)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            overlay.Overlay.download(ov)
        out["download"] = {"pl_clk_mhz": [clocks.get_pl_clk(i) for i in range(4)],
                           "warnings": [str(m.message) for m in w], "loaded": loaded == [parser]}
        return out


    jobs = json.loads(sys.argv[1])
    print(json.dumps({b: probe(j["hwh"], j["pll_mhz"]) for b, j in jobs.items()}, default=repr))
''')


def _family(board: str) -> dict:
    part = config.load(board).profile.part
    return next(fam for prefix, fam in codegen.PS_FAMILIES.items() if part.startswith(prefix))


def _pl_clock_mhz(board: str) -> float:
    """The PL clock the board can give the NPU: the profile's f_clk_mhz where the PS's IO PLL
    divides to it (two divisors of 1..63), else the fastest rate below it (never above:
    the RTL's timing is closed at f_clk_mhz)."""
    pll, f = _family(board)["pll_mhz"], config.load(board).clock.f_clk_mhz
    return max(pll / (a * b) for a in range(1, 64) for b in range(1, 64) if pll / (a * b) <= f)


def _install(venv: Path) -> Path:
    py = venv / "bin" / "python"
    done = venv / ".dnpu-complete"
    if done.is_file() and py.is_file():
        return py
    shutil.rmtree(venv, ignore_errors=True)       # a half-made one, or one whose base python went
    for cmd in ([sys.executable, "-m", "venv", str(venv)],
                [str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q", f"pynq=={PYNQ_VERSION}"]):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
        if r.returncode:
            pytest.fail(f"installing the real pynq for this test failed ({' '.join(cmd)}): "
                        f"{(r.stdout + r.stderr)[-3000:]}\n(it needs the package index once; or set "
                        f"DNPU_PYNQ_PYTHON to a python with pynq {PYNQ_VERSION})", pytrace=False)
    done.write_text(f"pynq=={PYNQ_VERSION}\n")
    return py


@pytest.fixture(scope="session")
def pynq_python() -> Path:
    if os.environ.get("DNPU_PYNQ_PYTHON"):
        return Path(os.environ["DNPU_PYNQ_PYTHON"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dnpu"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f"pynq-venv-{PYNQ_VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)           # one installer across pytest workers
        return _install(cache / f"pynq-venv-{PYNQ_VERSION}")


@pytest.fixture(scope="session")
def probed(pynq_python) -> dict:
    jobs = {b: {"hwh": str(REPO / "bitstreams" / b / "dnpu.hwh"), "pll_mhz": _family(b)["pll_mhz"]} for b in BOARDS}
    r = subprocess.run([str(pynq_python), "-c", _PROBE, json.dumps(jobs)], capture_output=True, text=True,
                       timeout=600, cwd=REPO)
    assert r.returncode == 0, f"the real pynq could not read the generated .hwh files:\n{r.stderr[-6000:]}"
    return json.loads(r.stdout)


def test_the_committed_hwh_files_are_the_generated_ones():
    """What the probe reads is what the codegen writes now (else `make generate`)."""
    assert BOARDS and {"pynq-z2", "zcu104"} <= set(BOARDS)
    for b in BOARDS:
        assert (REPO / "bitstreams" / b / "dnpu.hwh").read_text() == codegen.hwh_text(b), f"{b}: stale"


def test_it_is_the_pinned_pynq(probed):
    if os.environ.get("DNPU_PYNQ_PYTHON"):
        pytest.skip(f"DNPU_PYNQ_PYTHON names the interpreter (pynq {probed[BOARDS[0]]['pynq']})")
    assert {o["pynq"] for o in probed.values()} == {PYNQ_VERSION}


@pytest.mark.parametrize("parser", ["runtime", "legacy"])
@pytest.mark.parametrize("board", BOARDS)
def test_ip_dict(probed, board, parser):
    cfg, fam = config.load(board), _family(board)
    ip_dict = probed[board][parser]["ip_dict"]
    assert set(ip_dict) == {codegen.HWH_INSTANCE, fam["modtype"] + "_0"}
    ip = ip_dict[codegen.HWH_INSTANCE]
    assert ip["phys_addr"] == fam["base"]
    assert ip["addr_range"] == max(HWH_WINDOW, 1 << csr.ADDR_WIDTH)
    assert ip["type"] == f"dnpu:npu:dnpu_top:{isa.VERSION[0]}.{isa.VERSION[1]}"
    par = ip["parameters"]
    assert par["DNPU_PROFILE"] == board and int(par["CONFIG_HASH32"], 16) == cfg.config_hash32
    assert int(par["ISA_VERSION"], 16) == isa.VERSION_WORD and int(par["CSR_ID"], 16) == csr.ID_MAGIC


@pytest.mark.parametrize("parser", ["runtime", "legacy"])
@pytest.mark.parametrize("board", BOARDS)
def test_register_map(probed, board, parser):
    """Every word of hw/csr.toml's map, at its offset, with its access and fields: what the
    pynq backend checks the overlay against before it touches a register."""
    regs = probed[board][parser]["ip_dict"][codegen.HWH_INSTANCE]["registers"]
    assert {n: r["address_offset"] for n, r in regs.items()} == {n: off for off, n in csr.ADDR_MAP.items()}
    for off, name in csr.ADDR_MAP.items():
        reg = next(r for r in csr.REGS.values() if r.offset <= off < r.offset + r.size)
        got = regs[name]
        assert (got["size"], got["access"]) == (csr.DATA_WIDTH, _ACCESS[reg.access]), name
        assert got["fields"] == {f.name: [f.lsb, f.width] for f in reg.fields.values()}, name
    assert regs["STATUS"]["fields"]["DONE"] == [csr.field("STATUS", "DONE").lsb, 1]


@pytest.mark.parametrize("board", BOARDS)
def test_clock_dict(probed, board):
    """PL clock 0 on, at the board's NPU clock, from the IO PLL; the other three off. The
    runtime parser gives the rate itself (Overlay programs the clock from it), the older one
    the divisors."""
    fam, want = _family(board), _pl_clock_mhz(board)
    assert want <= config.load(board).clock.f_clk_mhz
    rt, old = probed[board]["runtime"]["clock_dict"], probed[board]["legacy"]["clock_dict"]
    assert set(rt) == set(old) == {"0", "1", "2", "3"}
    assert rt["0"]["enable"] == old["0"]["enable"] == 1
    assert [rt[i]["enable"] for i in "123"] == [old[i]["enable"] for i in "123"] == [0, 0, 0]
    assert rt["0"]["frequency"] == want
    for c in (rt["0"], old["0"]):
        assert fam["pll_mhz"] / (c["divisor0"] * c["divisor1"]) == want
    assert {rt[i]["src_sel"] for i in rt} == {fam["pll"]}


def test_pynq_z2_runs_at_the_profile_clock():
    """Where the IO PLL divides to the profile's rate, that is the rate (PYNQ-Z2: 1000 / 10)."""
    assert _pl_clock_mhz("pynq-z2") == config.load("pynq-z2").clock.f_clk_mhz


@pytest.mark.parametrize("board", BOARDS)
def test_overlay_download_programs_the_pl_clock(probed, board):
    """Overlay.download (PYNQ 4) sets each enabled PL clock to clock_dict's rate before it
    loads the bitstream: PL clock 0 ends at the NPU's clock, without a 'closest possible
    value' warning, and the bitstream load is reached."""
    dl = probed[board]["download"]
    assert dl["pl_clk_mhz"][0] == pytest.approx(_pl_clock_mhz(board), abs=1e-6)
    assert dl["warnings"] == [] and dl["loaded"]


@pytest.mark.parametrize("board", BOARDS)
def test_the_standin_reads_what_the_real_parser_reads(probed, board):
    """tests/pynq_standin keeps its own small parser (importing pynqmetadata would tie the
    off-board runs to the real package and its numpy<2); here it must agree with the real
    one on everything the backend reads."""
    mine = pynq_standin_module().parse_hwh(REPO / "bitstreams" / board / "dnpu.hwh")[codegen.HWH_INSTANCE]
    real = probed[board]["runtime"]["ip_dict"][codegen.HWH_INSTANCE]
    for k in ("phys_addr", "addr_range", "type", "parameters"):
        assert mine[k] == real[k], k
    assert {n: (r["address_offset"], r["size"], r["access"],
                {f: [x["bit_offset"], x["bit_width"]] for f, x in r["fields"].items()})
            for n, r in mine["registers"].items()} == \
        {n: (r["address_offset"], r["size"], r["access"], r["fields"]) for n, r in real["registers"].items()}
