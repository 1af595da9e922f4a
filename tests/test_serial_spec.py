"""The serial link's protocol tables and frame codec (dnpu.spec.serial, hw/serial.toml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dnpu.codegen.serial_model import load_serial
from dnpu.codegen.validate import CodegenError
from dnpu.spec import serial as s

REPO = Path(__file__).resolve().parents[1]


def test_crc8_is_crc8_smbus():
    # The catalogued check value of CRC-8/SMBUS (poly 0x07, init 0, no reflection, no xorout).
    assert s.crc8(b"123456789") == 0xF4
    assert s.crc8(b"6789", s.crc8(b"12345")) == 0xF4


def test_request_round_trip_and_sizes():
    f = s.encode_request("WRITE", 200, 0x0100_0040, words=[0, 0xFFFF_FFFF, 0x1234_5678])
    assert len(f) == s.request_size("WRITE", 3) == s.REQ_HEADER + 12 + 1
    assert f[0] == s.LINK["req_sync"]
    r = s.parse_request(f)
    assert (r.cmd, r.seq, r.addr, r.nwords, r.words) == (s.Cmd.WRITE, 200, 0x0100_0040, 3,
                                                         (0, 0xFFFF_FFFF, 0x1234_5678))
    rd = s.parse_request(s.encode_request("READ", 1, 0x4000_0010, nwords=s.MAX_WORDS))
    assert rd.nwords == s.MAX_WORDS and rd.words == ()
    assert len(s.encode_request("READ", 1, 0, nwords=1)) == s.request_size(s.Cmd.READ, 1)


@pytest.mark.parametrize("frame, status", [
    (lambda: s.encode_request("READ", 1, 0x100, nwords=0), "BAD_LEN"),
    (lambda: s.encode_request("READ", 1, 0x100, nwords=s.MAX_WORDS + 1), "BAD_LEN"),
    (lambda: s.encode_request("READ", 1, 0x102, nwords=1), "BAD_ADDR"),
    (lambda: (lambda f: f[:-1] + bytes([f[-1] ^ 0xFF]))(s.encode_request("READ", 1, 0x100, nwords=1)),
     "BAD_CRC"),
])
def test_request_refusals(frame, status):
    with pytest.raises(s.FrameError) as e:
        s.parse_request(frame())
    assert e.value.status == s.Status[status]


def test_bad_command_code_is_refused():
    body = bytes([0x7E, 3, 0, 0, 0, 0, 1])
    frame = bytes([s.LINK["req_sync"]]) + body + bytes([s.crc8(body)])
    with pytest.raises(s.FrameError) as e:
        s.parse_request(frame)
    assert e.value.status == s.Status.BAD_CMD


def test_every_single_bit_flip_is_caught():
    f = bytearray(s.encode_request("WRITE", 9, 0x0100_0000, words=[0xA5A5_5A5A, 7]))
    for i in range(1, len(f)):
        for b in range(8):
            g = bytearray(f)
            g[i] ^= 1 << b
            with pytest.raises(s.FrameError):
                s.parse_request(bytes(g))


def test_reply_round_trip_and_refusals():
    r = s.encode_reply(17, s.Status.BUS_ERROR, [1, 2, 3])
    assert len(r) == s.reply_size(3) and s.reply_nwords(r[:s.REPLY_HEADER]) == 3
    assert s.parse_reply(r) == s.Reply(17, s.Status.BUS_ERROR, (1, 2, 3))
    bad = bytearray(r)
    bad[5] ^= 0x10
    with pytest.raises(s.FrameError, match="CRC"):
        s.parse_reply(bytes(bad))
    with pytest.raises(s.FrameError, match="sync"):
        s.reply_nwords(b"\x00\x11\x00")
    with pytest.raises(s.FrameError, match="announces"):
        s.parse_reply(r[:-1])


def test_windows_and_status_docs():
    csr = s.WINDOWS["CSR"]["base"]
    assert s.window_of(csr, 4096, 1 << 20, 4096) == "CSR"
    assert s.window_of(csr + 4092, 8, 1 << 20, 4096) is None
    mem = s.WINDOWS["MEM"]["base"]
    assert s.window_of(mem + (1 << 20) - 4, 4, 1 << 20, 4096) == "MEM"
    assert s.window_of(mem - 4, 8, 1 << 20, 4096) is None
    assert s.status_doc(0).startswith("OK") and "unknown" in s.status_doc(0xEE)


def _copy_with(tmp_path: Path, old: str, new: str) -> Path:
    (tmp_path / "hw").mkdir()
    text = (REPO / "hw/serial.toml").read_text()
    assert old in text
    (tmp_path / "hw/serial.toml").write_text(text.replace(old, new, 1))
    return tmp_path


@pytest.mark.parametrize("old, new, msg", [
    ('name = "INFO"\ncode = 0x03', 'name = "INFO"\ncode = 0x02', "already used"),
    ("rsp_sync = 0x5A", "rsp_sync = 0xA5", "must differ"),
    ("max_words = 64", "max_words = 300", "outside"),
    ('name = "NWORDS"\nbytes = 1\ndoc = "words', 'name = "COUNT"\nbytes = 1\ndoc = "words', "layout"),
    ("base = 0x4000_0000", "base = 0x4000_0010", "4 KiB-aligned"),
])
def test_serial_toml_validation(tmp_path, old, new, msg):
    root = _copy_with(tmp_path, old, new)
    with pytest.raises(CodegenError, match=msg):
        load_serial(root)


def test_shipped_table_loads():
    t = load_serial(REPO)
    assert [c.name for c in t.commands] == list(s.Cmd.__members__)
