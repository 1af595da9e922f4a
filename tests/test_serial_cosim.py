"""The `serial` backend against the RTL: dnpu_uart_top (UART bridge, on-chip memory, NPU) under
Verilator, served on a local TCP port by dnpu.runtime.cosim.serial_board. `dnpu check-sampling`
and `dnpu board selftest` end to end over the simulated UART, and the bridge's answers to a
corrupted and to a cut-short frame. The same backend against a Python model of the bridge,
every failure path: tests/test_serial_backend.py."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from dnpu import runtime
from dnpu.cli import main as cli_main
from dnpu.spec import csr
from dnpu.spec import serial as sp

sys.path.insert(0, str(Path(__file__).parent))
from serial_model import SUM  # noqa: E402

serial = pytest.importorskip("serial")

pytestmark = [pytest.mark.rtl, pytest.mark.xdist_group("serial_cosim")]


@pytest.fixture(scope="module")
def board_lib():
    """The sim profile's serial board library, built once per RTL change (cached)."""
    from dnpu.runtime import cosim
    from dnpu.runtime.cosim.build import UART_TOP

    if shutil.which("make") is None or shutil.which(os.environ.get("CXX", "g++")) is None:
        pytest.skip("a C++ compiler and make are needed to build the co-simulation model")
    try:
        cosim.verilator_exe()
    except cosim.CosimBuildError as e:
        pytest.skip(str(e))
    return cosim.ensure_built("sim", top=UART_TOP)


@pytest.fixture(autouse=True)
def _no_port(monkeypatch):
    for k in ("DNPU_SERIAL_PORT", "DNPU_SERIAL_BAUDRATE"):     # the co-simulated board, and restored after
        monkeypatch.delenv(k, raising=False)



def test_open_without_a_port_uses_the_cosimulated_board(board_lib):
    from dnpu.runtime.cosim.build import UART_MEM_BYTES

    with runtime.open("serial", config="sim") as dev:
        assert dev.board is not None and dev.port == dev.board.url
        link = dev.info["link"]
        assert link["CLKS_PER_BIT"] == sp.LINK["sim_clks_per_bit"] and link["MEM_BYTES"] == UART_MEM_BYTES
        assert link["GAP_BITS"] == sp.LINK["frame_gap_bits"] and link["MAX_WORDS"] == sp.MAX_WORDS
        data = np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes()
        buf = dev.alloc(320)
        buf.write(data, offset=3)                            # unaligned ends, two WRITE frames
        assert buf.read(300, offset=3) == data and buf.read(3) == b"\0\0\0"
        vals = np.arange(1, 41, dtype="<u4")
        inp, out = dev.alloc(160), dev.alloc(160)
        inp.write(vals)
        info = dev.run(dev.load(SUM), args=[inp, 40, out], timeout=60)
        assert info.outcome == "halted" and info.cycles > 0
        assert np.frombuffer(out.read(), "<u4").tolist() == np.cumsum(vals).tolist()
        assert dev.counters()["INSTRET"] == info.instret == 9 + 4 * 40


def test_check_sampling_end_to_end(board_lib, tmp_path, capsys):
    out = tmp_path / "cs.json"
    rc = cli_main(["check-sampling", "--backend", "serial", "--cases", "2", "--max-batch", "1", "--max-len", "8",
                   "--max-vocab", "256", "--json", str(out)])
    assert rc == 0, capsys.readouterr().err
    r = json.loads(out.read_text())
    assert r["backend"] == "serial" and r["cases"] == 2
    assert r["token_mismatches"] == 0 and r["bound_violations"] == 0


def test_board_selftest(board_lib, tmp_path, capsys):
    out = tmp_path / "st.json"
    rc = cli_main(["board", "selftest", "--backend", "serial", "--bytes", "256", "--json", str(out)])
    assert rc == 0, capsys.readouterr()
    r = json.loads(out.read_text())
    assert r["passed"] and r["backend"] == "serial"
    assert [c["name"] for c in r["checks"] if c["passed"]] == ["identity", "memory", "sampling", "counters"]


def test_rtl_bridge_refuses_corrupted_and_cut_short_frames(board_lib):
    """Raw frames on the RTL bridge: a wrong CRC is answered BAD_CRC, a frame with a byte
    missing FRAME_TIMEOUT (each once the line was idle GAP_BITS), and the link works after."""
    from dnpu.runtime.cosim.serial_board import SerialBoard

    with SerialBoard("sim") as board:
        ser = serial.serial_for_url(board.url, timeout=60)
        try:
            def ask(frame: bytes, nwords: int) -> sp.Reply:
                ser.write(frame)
                head = ser.read(sp.REPLY_HEADER)
                n = sp.reply_nwords(head)
                assert n in (0, nwords)
                return sp.parse_reply(head + ser.read(sp.reply_size(n) - sp.REPLY_HEADER))

            read_id = sp.encode_request("READ", seq=9, addr=sp.WINDOWS["CSR"]["base"] + csr.offset("ID"), nwords=1)
            bad = read_id[:-1] + bytes([read_id[-1] ^ 0x01])
            rep = ask(bad, 1)
            assert rep.status == sp.Status.BAD_CRC and rep.words == ()
            rep = ask(read_id[:4] + read_id[5:], 1)             # an ADDR byte lost on the line
            assert rep.status == sp.Status.FRAME_TIMEOUT and rep.words == ()
            rep = ask(read_id, 1)
            assert rep == sp.Reply(9, sp.Status.OK, (csr.ID_MAGIC,))
        finally:
            ser.close()


def test_backend_retries_a_dropped_request_byte_on_the_rtl(board_lib):
    with runtime.open("serial", config="sim") as dev:
        real_write = dev.ser.write
        dropped = []

        def lossy(data):
            if not dropped:
                dropped.append(data)
                data = data[:3] + data[4:]                  # the line loses one byte, once
            return real_write(data)

        dev.ser.write = lossy
        dev.write_csr("ARG5", 0xCAFE_F00D)                  # refused (FRAME_TIMEOUT), then sent again
        dev.ser.write = real_write
        assert dropped and dev.stats["retries"] == 1
        assert dev.read_csr("ARG5") == 0xCAFE_F00D


def test_the_two_tops_have_their_own_cache_keys(tmp_path):
    """dnpu_top's key ignores the serial board's files (its cached model stays valid when they
    change); the board's key follows them and dnpu_top's sources."""
    from dnpu.runtime import cosim
    from dnpu.runtime.cosim.build import NPU_TOP, UART_TOP

    rtl, src = tmp_path / "rtl", tmp_path / "cosim"
    shutil.copytree(cosim.rtl_dir(), rtl)
    shutil.copytree(cosim.cosim_dir(), src)

    def keys():
        return tuple(cosim.cache_key("sim", rtl=rtl, src=src, top=t) for t in (NPU_TOP, UART_TOP))

    npu, uart = keys()
    assert npu != uart
    for f in (src / "uart_harness.cpp", rtl / "uart" / "dnpu_uart_bridge.v", rtl / "top" / "dnpu_uart_top.v"):
        text = f.read_text()
        f.write_text(text + "\n")
        assert keys()[0] == npu and keys()[1] != uart, f
        f.write_text(text)
    core = rtl / "ctrl" / "dnpu_core.v"
    core.write_text(core.read_text() + "\n")
    assert keys()[0] != npu and keys()[1] != uart
    with pytest.raises(ValueError, match="unknown co-simulation top 'nope'"):
        cosim.cache_key("sim", top="nope")


def test_serve_serial_for_another_terminal(board_lib):
    """`python -m dnpu.runtime.cosim serve-serial` prints the URL a host then opens; Ctrl-C ends it."""
    import selectors
    import signal
    import subprocess
    import sys

    def interruptible() -> None:      # SIGINT as from a terminal, whatever the runner ignores or blocks
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    p = subprocess.Popen([sys.executable, "-m", "dnpu.runtime.cosim", "serve-serial", "--config", "sim"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
    try:
        sel = selectors.DefaultSelector()
        sel.register(p.stdout, selectors.EVENT_READ)
        assert sel.select(timeout=300), "serve-serial printed no URL within 300 s"
        url = p.stdout.readline().strip()
        assert url.startswith("socket://127.0.0.1:")
        with runtime.open("serial", config="sim", port=url) as dev:
            assert dev.board is None and dev.read_csr("ID") == csr.ID_MAGIC
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=120) == 0              # generous: the suite's other worker may be compiling
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
