"""`dnpu board selftest` (dnpu.verify.selftest): every check passes on a good device of every
backend, and each fails, with what it measured, on a device that is wrong in its way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import dnpu.runtime as rt
from dnpu import cli, sampling
from dnpu.spec import config, isa
from dnpu.verify import selftest

from conftest import REPO, dnpu_cli

SIM = config.load("sim")
NBYTES = 16 * 1024         # two int-SRAM chunks on sim: the copy loop runs more than once


def by_name(results):
    return {r.name: r for r in results}


def assert_all_pass(results, nbytes=NBYTES):
    assert [r.name for r in results] == list(selftest.CHECKS)
    bad = [(r.name, r.detail) for r in results if not r.passed]
    assert not bad, bad
    r = by_name(results)
    assert r["memory"].values["bytes_moved"] == 2 * nbytes * len(selftest.PATTERNS) + nbytes
    runs = r["counters"].values["memory_runs"]
    assert [m["pattern"] for m in runs] == [*selftest.PATTERNS, "npu-address"]
    copy = selftest.copy_program(SIM, nbytes // 4)[2]
    fill = selftest.address_program(SIM, nbytes // 4)[2]
    assert [m["INSTRET"] for m in runs] == [copy] * len(selftest.PATTERNS) + [fill]
    return r


def test_all_checks_pass_on_emu():
    r = assert_all_pass(selftest.selftest("emu", "sim", nbytes=NBYTES))
    assert all(m["DATA_WR_BYTES"] == NBYTES for m in r["counters"].values["memory_runs"])


def test_all_checks_pass_on_verilator(model):
    r = assert_all_pass(selftest.selftest("verilator", "sim", nbytes=NBYTES))
    for m in r["counters"].values["memory_runs"]:
        assert m["WR_BEATS"] * SIM.beat_bytes == NBYTES and m["CYCLES"] >= m["INSTRET"] > 0
        if m["pattern"] != "npu-address":       # that one reads only its instructions
            assert m["RD_BEATS"] * SIM.beat_bytes >= NBYTES
    assert r["sampling"].values["cycles"] > 0


def test_all_checks_pass_on_the_pynq_standin(model, tmp_path, monkeypatch):
    from test_pynq import STANDIN, _board_dir

    monkeypatch.syspath_prepend(str(STANDIN))
    monkeypatch.delitem(sys.modules, "pynq", raising=False)
    monkeypatch.setenv("DNPU_BITSTREAM_DIR", str(_board_dir(tmp_path / "bitstreams")))
    try:
        assert_all_pass(selftest.selftest("pynq", "sim", nbytes=NBYTES))
    finally:
        sys.modules.pop("pynq", None)


def test_patterns_are_the_named_ones():
    assert selftest.patterns("walking-ones", 33, 0)[[0, 5, 31, 32]].tolist() == [1, 32, 1 << 31, 1]
    assert selftest.patterns("walking-zeros", 2, 0).tolist() == [0xFFFF_FFFE, 0xFFFF_FFFD]
    assert selftest.patterns("address", 3, 0x0100_0040).tolist() == [0x0100_0040, 0x0100_0044, 0x0100_0048]


# --------------------------------------------------------------------------- each check fails


def test_identity_fails_on_a_wrong_isa_version_from_the_device(monkeypatch):
    with rt.open("emu", config="sim") as dev:
        real = dev.read_csr
        monkeypatch.setattr(dev, "read_csr", lambda n: real(n) ^ 0x10000 if n == "ISA_VERSION" else real(n))
        r = selftest.check_identity(dev)
    assert not r.passed and "ISA_VERSION" in r.detail and "CONFIG_HASH" not in r.detail
    assert r.values["ISA_VERSION"] == {"device": f"0x{isa.VERSION_WORD ^ 0x10000:08X}",
                                       "expected": f"0x{isa.VERSION_WORD:08X}"}


def test_identity_fails_on_a_device_built_for_another_profile():
    """open() refuses it (AttachError): identity names CONFIG_HASH, the device checks cannot run,
    and the sampling step (which opens its own device) still runs and passes."""
    r = by_name(selftest.selftest("emu", "sim", nbytes=NBYTES, expect_config="pynq-z2"))
    assert not r["identity"].passed and "CONFIG_HASH" in r["identity"].detail
    assert r["identity"].values["CONFIG_HASH"]["expected"] == f"0x{config.load('pynq-z2').config_hash32:08X}"
    assert not r["memory"].passed and "did not open" in r["memory"].detail
    assert r["sampling"].passed
    assert not r["counters"].passed and "no memory run" in r["counters"].detail


def test_memory_fails_with_the_address_of_a_dram_fault(model, monkeypatch):
    """A write error injected in the co-simulation's DRAM over one line of the destination:
    the run faults AXI_WRITE and the report names the first word that never landed."""
    with rt.open("verilator", config="sim") as dev:
        real_alloc, allocs = dev.alloc, []
        bad = {}

        def alloc(n, **kw):
            b = real_alloc(n, **kw)
            allocs.append(b)
            if len(allocs) == 4:       # _check_room's two, then check_memory's src and dst
                bad["addr"] = b.addr + 8192 + 64
                dev.set_dram(fail_addr=bad["addr"], fail_bytes=16, fail_resp=2)
            return b

        monkeypatch.setattr(dev, "alloc", alloc)
        r = by_name(selftest.selftest(device=dev, nbytes=NBYTES))
        dev.set_dram(fail_bytes=0)
    mem = r["memory"]
    assert not mem.passed and "AXI_WRITE" in mem.detail, mem.detail
    for name in [*selftest.PATTERNS, "npu-address"]:
        p = mem.values["patterns"][name]
        assert not p["passed"] and "AXI_WRITE" in p["fault"]
        # the faulting H_STORE_INT's beats before the bad one may land (EXECUTION.md): the first
        # wrong word is in its chunk, at or before the injected line
        assert bad["addr"] - 8192 - 64 <= int(p["first_mismatch"], 16) <= bad["addr"], p
    assert mem.detail.startswith("walking-ones: the program faulted: AXI_WRITE at ")
    assert f"first mismatch at {mem.values['patterns']['walking-ones']['first_mismatch']}" in mem.detail
    assert mem.detail.endswith("(also failed: walking-zeros, address, npu-address)")
    assert r["identity"].passed and r["sampling"].passed      # the others still ran


def test_memory_fails_on_a_flipped_bit_at_its_address(monkeypatch):
    with rt.open("emu", config="sim") as dev:
        real_read = dev._read

        def read(addr, n):
            data = bytearray(real_read(addr, n))
            if n == NBYTES:             # the destination's read-back: bit 3 of its word 100 stuck
                data[400] ^= 0x08
            return bytes(data)

        monkeypatch.setattr(dev, "_read", read)
        r = selftest.check_memory(dev, NBYTES)
        dst = int(r.values["dst"], 16)
    assert not r.passed
    for name in [*selftest.PATTERNS, "npu-address"]:
        p = r.values["patterns"][name]
        assert p["mismatched_words"] == 1 and p["first_mismatch"] == f"0x{dst + 400:08X}" and p["offset"] == 400
        assert int(p["expected"], 16) ^ int(p["got"], 16) == 0x08
    assert f"first mismatch at 0x{dst + 400:08X}" in r.detail


def test_only_the_npu_written_pattern_catches_a_host_path_that_aliases(monkeypatch):
    """A host whose view of memory has two words swapped writes and reads through the same swap:
    the copied patterns come back right, the addresses the NPU wrote do not."""
    def swap(data: bytes) -> bytes:
        b = bytearray(data)
        b[0:4], b[4:8] = data[4:8], data[0:4]
        return bytes(b)

    with rt.open("emu", config="sim") as dev:
        real_read, real_write = dev._read, dev._write
        monkeypatch.setattr(dev, "_read", lambda a, n: swap(real_read(a, n)) if n == NBYTES else real_read(a, n))
        monkeypatch.setattr(dev, "_write", lambda a, d: real_write(a, swap(d) if len(d) == NBYTES else d))
        r = selftest.check_memory(dev, NBYTES)
    dst = int(r.values["dst"], 16)
    assert not r.passed and all(r.values["patterns"][n]["passed"] for n in selftest.PATTERNS)
    p = r.values["patterns"]["npu-address"]
    assert (p["first_mismatch"], p["mismatched_words"]) == (f"0x{dst:08X}", 2)
    assert (p["expected"], p["got"]) == (f"0x{dst:08X}", f"0x{dst + 4:08X}")
    assert r.detail.startswith(f"npu-address: first mismatch at 0x{dst:08X}")


def test_sampling_fails_when_the_backend_differs_from_the_emulator(monkeypatch):
    real, calls = sampling.transfer, []

    def transfer(logits, **kw):
        out = real(logits, **kw)
        calls.append(kw["backend"])
        if len(calls) == 1:             # the backend's own step: one confidence one ulp off
            conf = out.conf.copy()
            conf[1, 0] = np.nextafter(conf[1, 0], 2.0)
            out = out._replace(conf=conf)
        return out

    monkeypatch.setattr(sampling, "transfer", transfer)
    r = selftest.check_sampling("emu", SIM)
    assert calls == ["emu", "emu", "torch"]
    assert not r.passed and r.values["conf"] is False and r.values["x0"] is True
    assert "conf (first at position [1, 0])" in r.detail


def test_counters_fail_when_they_do_not_count_the_copy(monkeypatch):
    with rt.open("emu", config="sim") as dev:
        real = dev.counters
        monkeypatch.setattr(dev, "counters", lambda: {**real(), "DATA_WR_BYTES": 0})
        r = by_name(selftest.selftest(device=dev, nbytes=NBYTES))
    assert r["memory"].passed and not r["counters"].passed
    assert f"walking-ones: bytes written 0, expected >= {NBYTES}" in r["counters"].detail


def test_a_check_that_raises_is_one_failed_row_and_the_rest_run(monkeypatch):
    from dnpu.sampling.npu import NPUError

    def transfer(*a, **kw):
        raise NPUError("emu: the sampling program did not halt:\nline two\nline three")

    monkeypatch.setattr(sampling, "transfer", transfer)
    r = by_name(selftest.selftest("emu", "sim", nbytes=NBYTES))
    assert r["sampling"].detail == "NPUError: emu: the sampling program did not halt:"
    assert not r["sampling"].passed and r["memory"].passed and r["counters"].passed


# --------------------------------------------------------------------------- the command


def test_cli_passes_prints_the_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "st.json"
    assert cli.main(["board", "selftest", "--backend", "emu", "--bytes", str(NBYTES), "--json", str(out)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].split() == ["check", "result", "detail"]
    assert [line.split()[:2] for line in text[1:5]] == [[n, "PASS"] for n in selftest.CHECKS]
    assert text[5] == "selftest on emu (sim): 4/4 checks passed"
    doc = json.loads(out.read_text())
    assert {k: doc[k] for k in ("backend", "profile", "bytes", "passed")} == \
        {"backend": "emu", "profile": "sim", "bytes": NBYTES, "passed": True}
    assert [c["name"] for c in doc["checks"]] == list(selftest.CHECKS)
    assert all(set(c) == {"name", "passed", "detail", "values"} and c["passed"] for c in doc["checks"])


def test_cli_exits_1_when_a_check_fails(tmp_path, capsys, monkeypatch):
    # the host's table one minor version ahead of the device (seen by the check, not by attach)
    monkeypatch.setattr(selftest, "isa", SimpleNamespace(VERSION_WORD=isa.VERSION_WORD + 1, load_imm=isa.load_imm,
                                                         assemble=isa.assemble))
    out = tmp_path / "st.json"
    assert cli.main(["board", "selftest", "--backend", "emu", "--bytes", "64", "--json", str(out)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:2] == ["identity", "FAIL"] and "ISA_VERSION" in lines[1]
    doc = json.loads(out.read_text())
    assert doc["passed"] is False and doc["checks"][0]["passed"] is False


@pytest.mark.parametrize("argv,match", [
    (["--bytes", "6"], "--bytes 6: the memory test moves 32-bit words"),
    (["--bytes", "0"], "must be a positive int"),
    (["--bytes", str(1 << 30)], "needs two buffers of that size"),
    (["--backend", "nope"], "unknown backend 'nope'"),
    (["--config", "nope"], "unknown hardware profile"),
    (["--json", "/nonexistent/dir/st.json"], "cannot write /nonexistent/dir/st.json"),
])
def test_cli_user_mistakes_are_one_line_and_exit_2(argv, match, capsys):
    assert cli.main(["board", "selftest", *argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dnpu board selftest: error:") and match in lines[0], captured.err
    assert captured.out == ""


def test_cli_on_the_pynq_standin_from_dnpu_backend(model, tmp_path):
    """The installed command, its backend from $DNPU_BACKEND, on the board path (the stand-in pynq)."""
    from test_pynq import STANDIN, _board_dir

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(STANDIN), os.environ.get("PYTHONPATH", "")]),
               DNPU_BITSTREAM_DIR=str(_board_dir(tmp_path / "bitstreams")), DNPU_BACKEND="pynq")
    out = tmp_path / "st.json"
    p = subprocess.run(dnpu_cli() + ["board", "selftest", "--bytes", "4096", "--json", str(out)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines()[-1] == "selftest on pynq (sim): 4/4 checks passed"
    doc = json.loads(out.read_text())
    assert (doc["backend"], doc["passed"], doc["bytes"]) == ("pynq", True, 4096)


def test_cli_board_needs_a_subcommand(capsys):
    assert cli.main(["board"]) == 2
    assert "required: SUBCOMMAND" in capsys.readouterr().err


def test_readme_documents_the_command():
    assert "dnpu board selftest" in (REPO / "README.md").read_text()
    assert "`selftest` (`dnpu board selftest`" in (REPO / "docs" / "ARCHITECTURE.md").read_text()
