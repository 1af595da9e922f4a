"""The `serial` backend against a Python model of the UART bridge (tests/serial_model.py) on a
local TCP port: registers, memory (unaligned, several frames), runs, and every link failure
(corrupted, cut short or missing replies, lost request bytes, a silent device, a wrong SEQ,
error statuses) as a one-line DeviceError after a bounded number of tries, never a hang.
The same backend against the RTL bridge in co-simulation: tests/test_serial_cosim.py."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from dnpu import runtime
from dnpu.cli import main as cli_main
from dnpu.runtime import DeviceError
from dnpu.spec import config, csr
from dnpu.spec import serial as sp

sys.path.insert(0, str(Path(__file__).parent))
from serial_model import SUM, BridgeModel  # noqa: E402

pytest.importorskip("serial")

HANG_S = 20            # no test here may take longer: a hang fails instead of stalling the suite
MARGIN = 0.2           # s of margin on every reply wait (the model answers in microseconds)


def bounded(fn, *a, **kw):
    """fn(*a, **kw) on a thread, its result or exception; a test failure if it does not end
    within HANG_S seconds."""
    out: dict = {}

    def go():
        try:
            out["value"] = fn(*a, **kw)
        except BaseException as e:       # handed to the test
            out["error"] = e

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(HANG_S)
    assert not t.is_alive(), f"{getattr(fn, '__name__', fn)} did not return within {HANG_S} s"
    if "error" in out:
        raise out["error"]
    return out["value"]


@pytest.fixture(scope="module")
def cfg():
    return config.load("sim")


@pytest.fixture
def bridge(cfg):
    with BridgeModel(cfg) as br:
        yield br


@pytest.fixture
def dev(bridge, cfg):
    d = bounded(runtime.open, "serial", config=cfg, port=bridge.url, baudrate=bridge.baud, timeout=MARGIN)
    yield d
    bridge.faults.clear()
    d.close()


# ---- the interface -------------------------------------------------------------------------

def test_attach_reads_info_and_identity(dev, bridge):
    assert dev.backend == "serial" and dev.info["id"] == csr.ID_MAGIC
    assert dev.info["link"]["MEM_BYTES"] == bridge.mem_bytes
    assert isinstance(bridge.frames[0], sp.Request) and bridge.frames[0].cmd == sp.Cmd.INFO
    buf = dev.alloc(100)
    assert bridge.mem_base <= buf.addr < bridge.mem_base + bridge.mem_bytes      # the heap is the MEM window


def test_registers(dev, bridge):
    dev.write_csr("ARG3", 0x1234_5678)
    assert dev.read_csr("ARG3") == 0x1234_5678 == bridge.emu.args[3]
    assert dev.read_csr("CONFIG_HASH") == dev.config.config_hash32
    st = dev.status()
    assert set(st) == {"STATUS", "ERR_CAUSE", "ERR_PC", "PC"}
    n = len(bridge.frames)
    dev.counters()
    assert len(bridge.frames) == n + 1          # the counter block in one READ


@pytest.mark.parametrize("offset,n", [(0, 4), (1, 2), (3, 700), (5, 256), (0, 1024)])
def test_memory_unaligned_and_multi_frame(dev, bridge, offset, n):
    buf = dev.alloc(1100)
    before = bytes(bridge.emu.read(buf.addr, 1100))
    data = np.random.default_rng(n + offset).integers(0, 256, n, dtype=np.uint8).tobytes()
    buf.write(data, offset=offset)
    want = before[:offset] + data + before[offset + n:]
    assert bridge.emu.read(buf.addr, 1100) == want      # the bytes around it kept
    assert buf.read(n, offset=offset) == data
    writes = [f for f in bridge.frames if isinstance(f, sp.Request) and f.cmd == sp.Cmd.WRITE]
    assert max(f.nwords for f in writes) <= dev.link["MAX_WORDS"]


def test_memory_outside_the_window(dev, bridge):
    with pytest.raises(ValueError, match="outside the bridge's memory window"):
        dev._read(bridge.mem_base + bridge.mem_bytes - 4, 8)



def test_run_a_program(dev):
    vals = np.arange(1, 101, dtype="<u4")
    inp, out = dev.alloc(400), dev.alloc(400)
    inp.write(vals)
    info = bounded(dev.run, dev.load(SUM), args=[inp, 100, out], timeout=10)
    assert info.outcome == "halted" and info.budget_unit == "seconds"
    assert np.frombuffer(out.read(), "<u4").tolist() == np.cumsum(vals).tolist()
    assert dev.counters()["INSTRET"] == info.instret == 9 + 4 * 100


def test_run_budget_and_fault(dev):
    forever = dev.load("""
        C_LOOPI 32767, @e
          C_LOOPI 32767, @e
            S_ADDI x1, x1, 1
    e:  C_HALT""")
    with pytest.raises(DeviceError) as ei:
        bounded(dev.run, forever, timeout=0.3)
    e = ei.value
    assert e.reason == "budget" and e.status & csr.mask("STATUS", "BUSY")
    assert "polled STATUS" in e.detail and dev.port in e.detail
    dev.reset()
    bad = dev.load("S_ADDI x1, x0, 0x100\nS_ADDI x2, x0, 4\nH_LOAD_INT x0, x1, x2\nC_HALT")
    with pytest.raises(DeviceError) as ei:
        bounded(dev.run, bad, timeout=5)
    assert ei.value.reason == "fault" and ei.value.err_cause_name == "WINDOW"


def test_trace_and_wave_are_refused(dev):
    prog = dev.load("C_HALT")
    with pytest.raises(ValueError, match="retire trace"):
        dev.run(prog, trace=True)
    with pytest.raises(ValueError, match="waveforms"):
        dev.run(prog, wave="x.fst")


# ---- link faults: retried where safe, else one clear line --------------------------------

def test_corrupted_reply_to_a_read_is_retried(dev, bridge):
    bridge.inject("flip_reply", byte=4, bit=3)           # a data byte: the CRC catches it
    assert bounded(dev.read_csr, "ID") == csr.ID_MAGIC
    assert dev.stats["retries"] == 1


def test_corrupted_reply_to_a_register_write_is_not_repeated(dev, bridge):
    bridge.inject("flip_reply", byte=3)                  # the STATUS byte of the WRITE's reply
    with pytest.raises(DeviceError) as ei:
        bounded(dev.write_csr, "ARG0", 7)
    msg = str(ei.value).splitlines()[0]
    assert ei.value.reason == "link" and "bad reply" in msg and "CRC" in msg
    assert "WRITE 0x40000040" in msg and "not repeated" in msg
    assert bounded(dev.read_csr, "ARG0") == 7           # the link is usable again


def test_corrupted_reply_to_a_memory_write_is_repeated(dev, bridge):
    buf = dev.alloc(64)
    bridge.inject("flip_reply", byte=2)                  # NWORDS of the reply
    bounded(buf.write, b"\x11" * 64)
    assert buf.read() == b"\x11" * 64 and dev.stats["retries"] == 1


@pytest.mark.parametrize("byte", [1, 4, 8])
def test_dropped_request_byte_is_refused_and_retried(dev, bridge, byte):
    bridge.inject("drop_request", byte=byte)             # CMD, ADDR or CRC lost on the line
    bounded(dev.write_csr, "ARG1", 0xABCD)               # a CSR write is repeated: it was not done
    assert bridge.emu.args[1] == 0xABCD
    assert any(isinstance(f, str) for f in bridge.frames) and dev.stats["retries"] == 1   # refused once


def test_corrupted_request_is_refused_with_bad_crc(dev, bridge):
    bridge.inject("flip_request", byte=5, bit=7)
    bounded(dev.write_csr, "ARG2", 5)
    assert any(isinstance(f, str) and "CRC" in f for f in bridge.frames) and bridge.emu.args[2] == 5


@pytest.mark.parametrize("byte", [0, 5, 8])
def test_dropped_reply_byte(dev, bridge, byte):
    bridge.inject("drop_reply", byte=byte)               # sync, a data byte, the CRC
    assert bounded(dev.read_csr, "ISA_VERSION") == dev.info["isa_version"]
    assert dev.stats["retries"] == 1


def test_wrong_seq(dev, bridge):
    bridge.inject("wrong_seq")
    assert bounded(dev.read_csr, "ID") == csr.ID_MAGIC and dev.stats["retries"] == 1
    bridge.inject("wrong_seq", count=10)
    with pytest.raises(DeviceError, match=r"reply SEQ \d+ from .* to READ 0x40000000 seq \d+: not this request's"):
        bounded(dev.read_csr, "ID")


def test_silent_device(dev, bridge):
    bridge.inject("silent", count=100)
    with pytest.raises(DeviceError) as ei:
        bounded(dev.read_csr, "STATUS")
    msg = str(ei.value).splitlines()[0]
    assert msg.startswith(f"no reply from {dev.port} to READ 0x40000010 seq ")
    assert "sent 9 bytes, received 0" in msg and f"({dev.retries + 1} tries)" in msg
    n = bridge.replies + len(bridge.frames)
    with pytest.warns(RuntimeWarning, match="stopped answering, so the NPU could not be checked"):
        bounded(dev.close)                                  # at once: no more waiting on a dead link
    assert bridge.replies + len(bridge.frames) == n


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_retries_are_bounded(bridge, cfg, retries):
    d = bounded(runtime.open, "serial", config=cfg, port=bridge.url, baudrate=bridge.baud, timeout=MARGIN,
                retries=retries)
    try:
        bridge.inject("flip_reply", count=100, byte=4)
        n = bridge.replies
        with pytest.raises(DeviceError, match=rf"bad reply .*\({retries + 1} tries\)" if retries else "bad reply"):
            bounded(d.read_csr, "ID")
        assert bridge.replies - n == retries + 1
    finally:
        bridge.faults.clear()
        d.close()


def test_error_statuses_name_the_status(dev, bridge):
    with pytest.raises(DeviceError, match=r"answered READ 0x40000028 seq \d+ with BUS_ERROR \(the bus answered"):
        bounded(dev._transact, sp.Cmd.READ, sp.WINDOWS["CSR"]["base"] + 0x28, 1)
    with pytest.raises(DeviceError, match=r"with BAD_ADDR \(ADDR is not a multiple of 4"):
        bounded(dev._transact, sp.Cmd.READ, 0x10, 1)
    n = bridge.replies
    with pytest.raises(DeviceError, match=r"with BAD_LEN"):
        bounded(dev._transact, sp.Cmd.READ, bridge.mem_base, sp.MAX_WORDS + 1)
    assert bridge.replies == n + 1                       # refused, not retried
    bridge.inject("flip_request", count=10, byte=3)
    with pytest.raises(DeviceError, match=rf"with BAD_CRC .*\({dev.retries + 1} tries\)"):
        bounded(dev.read_csr, "ID")


# ---- opening -------------------------------------------------------------------------------

def test_open_errors_are_attach_errors(cfg, bridge):
    with pytest.raises(DeviceError, match="cannot open the serial port 'socket://127.0.0.1:1'") as ei:
        runtime.open("serial", config=cfg, port="socket://127.0.0.1:1")
    assert ei.value.reason == "attach"
    with pytest.raises(DeviceError, match="protocol 'nope' not known"):
        runtime.open("serial", config=cfg, port="nope://x")
    bridge.inject("silent", count=100)
    with pytest.raises(DeviceError, match=r"no reply .* to INFO .* received 0 .*is a dnpu serial bridge at") as ei:
        bounded(runtime.open, "serial", config=cfg, port=bridge.url, baudrate=bridge.baud, timeout=MARGIN,
                retries=0)
    assert ei.value.reason == "attach"
    for bad in ({"baudrate": 0}, {"timeout": float("nan")}, {"retries": -1}, {"poll_interval": 2}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            runtime.open("serial", config=cfg, port=bridge.url, **bad)


def test_another_protocol_version_is_refused(cfg):
    with BridgeModel(cfg, version=sp.LINK["version"] + 1) as br:
        with pytest.raises(DeviceError, match="serial protocol version 2, this dnpu package version 1"):
            bounded(runtime.open, "serial", config=cfg, port=br.url, baudrate=br.baud, timeout=MARGIN)


def test_another_profile_is_refused(bridge):
    with pytest.raises(runtime.AttachError, match="CONFIG_HASH"):
        bounded(runtime.open, "serial", config="pynq-z2", port=bridge.url, baudrate=bridge.baud, timeout=MARGIN)


def test_port_from_the_environment(cfg, bridge, monkeypatch):
    monkeypatch.setenv("DNPU_SERIAL_PORT", bridge.url)
    monkeypatch.setenv("DNPU_SERIAL_BAUDRATE", str(bridge.baud))
    with bounded(runtime.open, "serial", config=cfg, timeout=MARGIN) as d:
        assert d.port == bridge.url and d.baudrate == bridge.baud and d.board is None


def test_without_pyserial(cfg, monkeypatch):
    monkeypatch.setitem(sys.modules, "serial", None)
    with pytest.raises(DeviceError, match="pyserial") as ei:
        runtime.open("serial", config=cfg, port="socket://127.0.0.1:1")
    assert ei.value.reason == "attach"


# ---- the command line ----------------------------------------------------------------------

def test_cli_selftest_on_the_model(bridge, tmp_path, monkeypatch, capsys):
    for k in ("DNPU_SERIAL_PORT", "DNPU_SERIAL_BAUDRATE"):
        monkeypatch.delenv(k, raising=False)
    out = tmp_path / "st.json"
    rc = bounded(cli_main, ["board", "selftest", "--backend", "serial", "--port", bridge.url, "--baudrate",
                            str(bridge.baud), "--bytes", "512", "--json", str(out)])
    assert rc == 0, capsys.readouterr()
    r = json.loads(out.read_text())
    assert r["passed"] and r["backend"] == "serial" and [c["passed"] for c in r["checks"]] == [True] * 4


@pytest.mark.parametrize("argv,needle", [
    (["--backend", "serial", "--port", "socket://127.0.0.1:1"], "cannot open the serial port"),
    (["--backend", "serial", "--port", "bogus://x"], "protocol 'bogus' not known"),
    (["--backend", "emu", "--port", "/dev/ttyUSB0"], "options of --backend serial, not emu"),
    (["--backend", "serial", "--port", " "], "--port is empty"),
])
def test_cli_user_mistakes(argv, needle, monkeypatch, capsys):
    for k in ("DNPU_SERIAL_PORT", "DNPU_SERIAL_BAUDRATE"):      # restored after the command sets them
        monkeypatch.delenv(k, raising=False)
    assert cli_main(["board", "selftest", *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and err.startswith("dnpu board selftest: error: ")


def test_cli_a_link_that_stops_answering_is_one_line(bridge, monkeypatch, capsys):
    for k in ("DNPU_SERIAL_PORT", "DNPU_SERIAL_BAUDRATE"):
        monkeypatch.delenv(k, raising=False)
    bridge.inject("silent", count=10_000, after=10)          # attached, then the cable is pulled
    with pytest.warns(RuntimeWarning, match="stopped answering"):
        rc = bounded(cli_main, ["check-sampling", "--backend", "serial", "--port", bridge.url, "--baudrate",
                                str(bridge.baud), "--cases", "1", "--max-batch", "1", "--max-len", "4",
                                "--max-vocab", "64"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("dnpu check-sampling: error: no reply from " + bridge.url) and "received 0" in err


def test_soft_and_hard_reset(dev, bridge):
    prog = dev.load("S_ADDI x1, x0, 1\nC_HALT")
    dev.run(prog, timeout=5)
    assert dev.counters()["INSTRET"] == 2
    dev.reset()
    assert dev.counters()["INSTRET"] == 2 and dev.read_csr("STATUS") == 0
    dev.reset(hard=True)                                     # no reset line: SOFT_RESET and CLEAR_COUNTERS
    assert dev.counters()["INSTRET"] == 0


def test_serve_serial_on_a_busy_port_is_one_line():
    import subprocess
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        p = subprocess.run([sys.executable, "-m", "dnpu.runtime.cosim", "serve-serial", "--port", str(port)],
                           capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.startswith(f"serve-serial: error: cannot serve the serial board on "
                                                     f"127.0.0.1:{port}:"), p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_cli_a_step_larger_than_the_board_memory_is_one_line(cfg, monkeypatch, capsys):
    for k in ("DNPU_SERIAL_PORT", "DNPU_SERIAL_BAUDRATE"):
        monkeypatch.delenv(k, raising=False)
    with BridgeModel(cfg, mem_bytes=4096) as br:
        rc = bounded(cli_main, ["check-sampling", "--backend", "serial", "--port", br.url, "--baudrate", str(br.baud),
                                "--cases", "1", "--max-batch", "1", "--max-len", "64", "--max-vocab", "4096"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("dnpu check-sampling: error: device heap exhausted: ") and "smaller sizes" in err


def test_a_tty_port(cfg, bridge):
    """The /dev/tty* path of pyserial (termios, tcflush), through a pseudo-terminal whose other
    end is relayed to the bridge model."""
    import pty
    import select
    import socket

    master, slave = pty.openpty()
    path = os.ttyname(slave)
    host, port = bridge.url.removeprefix("socket://").split(":")
    sock = socket.create_connection((host, int(port)))
    stop = threading.Event()

    def relay():
        while not stop.is_set():
            r, _, _ = select.select([master, sock], [], [], 0.05)
            if master in r:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    return
                sock.sendall(data)
            if sock in r:
                data = sock.recv(4096)
                if not data:
                    return
                os.write(master, data)

    t = threading.Thread(target=relay, daemon=True)
    t.start()
    try:
        d = bounded(runtime.open, "serial", config=cfg, port=path, baudrate=bridge.baud, timeout=MARGIN)
        try:
            assert d.port == path and d.read_csr("ID") == csr.ID_MAGIC
            buf = d.alloc(300)
            bounded(buf.write, bytes(range(256)) + bytes(44), 0)
            assert buf.read(256) == bytes(range(256))
            bridge.inject("drop_reply", byte=5)
            assert bounded(d.read_csr, "ID") == csr.ID_MAGIC and d.stats["retries"] == 1
        finally:
            d.close()
    finally:
        stop.set()
        t.join(5)
        sock.close()
        os.close(master)
        os.close(slave)
