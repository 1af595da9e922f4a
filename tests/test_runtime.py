"""dnpu.runtime on the `emu` backend: backend choice, attach, buffers, runs, faults, budgets,
counters and the error reports. The same API on `verilator` is in tests/test_cosim.py."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import dnpu.runtime as rt
from dnpu.spec import config, csr, isa
from dnpu.spec.csr import ErrCause
from dnpu.runtime import ALIGN, HEAP_BASE, AttachError, DeviceError

SIM = config.load("sim")


@pytest.fixture
def dev():
    with rt.open("emu") as d:
        yield d


# ---- backend choice ------------------------------------------------------------------------

def test_backend_choice(monkeypatch):
    monkeypatch.delenv("DNPU_BACKEND", raising=False)
    assert rt.backend_name() == "emu" == rt.DEFAULT_BACKEND
    monkeypatch.setenv("DNPU_BACKEND", "verilator")
    assert rt.backend_name() == "verilator"
    assert rt.backend_name("emu") == "emu"               # the argument wins over the environment
    monkeypatch.setenv("DNPU_BACKEND", "EMU ")
    with rt.open() as d:
        assert d.backend == "emu"


def test_backend_unknown_and_pynq_without_pynq(monkeypatch):
    monkeypatch.delenv("DNPU_BACKEND", raising=False)
    with pytest.raises(ValueError, match=r"unknown backend 'fpga'.*emu, verilator, pynq"):
        rt.open("fpga")
    monkeypatch.setenv("DNPU_BACKEND", "cuda")
    with pytest.raises(ValueError, match=r"'cuda' \(DNPU_BACKEND\)"):
        rt.open()
    monkeypatch.setenv("DNPU_BACKEND", "pynq")
    assert rt.backend_name() == "pynq"
    monkeypatch.setitem(sys.modules, "pynq", None)         # no pynq package here: import fails
    with pytest.raises(DeviceError, match=r"needs the `pynq` package.*PYNQ board image") as ei:
        rt.open()
    assert ei.value.reason == "attach" and ei.value.backend == "pynq"


def test_backend_options_are_checked():
    with pytest.raises(TypeError):
        rt.open("emu", read_latency=3)                   # a verilator knob: not silently ignored


# ---- attach ------------------------------------------------------------------------------------

def test_attach_reads_identity(dev):
    assert dev.info["id"] == csr.ID_MAGIC
    assert dev.info["isa_version"] == isa.VERSION_WORD
    assert dev.info["config_hash32"] == SIM.config_hash32
    assert dev.read_csr("ID") == csr.ID_MAGIC


def test_attach_refuses_other_profile():
    other = config.load("pynq-z2")
    with pytest.raises(AttachError) as ei:
        rt.open("emu", config="sim", expect_config="pynq-z2")
    e = ei.value
    assert e.field == "CONFIG_HASH" and e.reason == "attach"
    assert (e.device_value, e.expected_value) == (SIM.config_hash32, other.config_hash32)
    assert f"device CONFIG_HASH 0x{SIM.config_hash32:08X} != profile pynq-z2 0x{other.config_hash32:08X}" in str(e)
    assert isinstance(e, DeviceError)


# ---- buffers -------------------------------------------------------------------------------------

def test_alloc_alignment_zero_and_bounds(dev):
    a = dev.alloc(10)
    b = dev.alloc(100)
    assert a.addr == HEAP_BASE and a.addr % ALIGN == 0 and b.addr % ALIGN == 0
    assert (a.nbytes, a.size) == (10, 64) and b.addr == a.addr + 64
    assert int(b) == b.addr and a.read() == bytes(10)
    b.write(b"\x01\x02\x03", offset=97)
    assert b.read(3, offset=97) == b"\x01\x02\x03"
    b.write(np.arange(4, dtype="<u4"), offset=4)
    assert np.frombuffer(b.read(16, offset=4), "<u4").tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="outside the buffer"):
        b.write(b"xx", offset=99)
    with pytest.raises(ValueError, match="outside the buffer"):
        a.read(11)
    with pytest.raises(ValueError):
        dev.alloc(0)


def test_free_reuse_and_freed_use(dev):
    a = dev.alloc(64)
    a.write(b"\xff" * 64)
    b = dev.alloc(64)
    a.free()
    a.free()                                             # idempotent
    with pytest.raises(ValueError, match="freed"):
        a.read()
    with pytest.raises(ValueError, match="freed"):
        dev.run(a)
    c = dev.alloc(40)                                    # first fit: a's range again, zero-filled
    assert c.addr == a.addr and c.read() == bytes(40)
    b.free()
    c.free()
    d = dev.alloc(128)                                   # the freed pieces merged
    assert d.addr == HEAP_BASE


def test_heap_exhaustion():
    with rt.open("emu", heap_size=4096) as d:
        d.alloc(4000)
        with pytest.raises(MemoryError, match="heap exhausted"):
            d.alloc(128)


def test_load_forms(dev):
    src = "S_ADDI x1, x0, 5\nC_HALT"
    words = isa.assemble_words(src)
    for prog in (src, isa.assemble(src), words):
        buf = dev.load(prog)
        assert buf.read() == isa.assemble(src)
    with pytest.raises(ValueError, match="32-bit words"):
        dev.load(b"\x00\x00\x00")


# ---- runs ------------------------------------------------------------------------------------------

SUM = """
    S_LD_ARG x1, 0          ; input words
    S_LD_ARG x2, 1          ; n
    S_LD_ARG x3, 2          ; output
    H_LOAD_INT x0, x1, x2
    S_ADDI x4, x0, 0        ; running sum
    S_ADDI x5, x0, 0        ; index
    C_LOOP x2, @done        ; a loop label names the first instruction after the body
      S_LD_INT x6, x5, 0
      S_ADD x4, x4, x6
      S_ST_INT x4, x5, 0
      S_ADDI x5, x5, 1
done: H_STORE_INT x0, x3, x2
    C_HALT
"""


def test_run_prefix_sum(dev):
    rng = np.random.default_rng(1)
    vals = rng.integers(0, 2**32, 100, dtype=np.uint64).astype(np.uint32)
    inp = dev.alloc(400)
    inp.write(vals.astype("<u4"))
    out = dev.alloc(400)
    prog = dev.load(SUM)
    info = dev.run(prog, args=[inp, 100, out])
    assert info.outcome == "halted" and info.cycles is None and info.budget_unit == "instructions"
    got = np.frombuffer(out.read(), "<u4")
    assert got.tolist() == (np.cumsum(vals.astype(np.uint64)) % 2**32).tolist()
    c = dev.counters()
    assert c["INSTRET"] == info.instret == 9 + 4 * 100
    assert c["DATA_RD_BYTES"] == 400 and c["DATA_WR_BYTES"] == 400
    assert c["FETCH_BYTES"] == 4 * info.instret


def test_counters_clear_or_accumulate(dev):
    prog = dev.load("S_ADDI x1, x0, 1\nC_HALT")
    dev.run(prog)
    dev.run(prog, clear_counters=False)
    assert dev.counters()["INSTRET"] == 4
    dev.run(prog)
    assert dev.counters()["INSTRET"] == 2
    dev.reset(hard=True)
    assert dev.counters()["INSTRET"] == 0


def test_run_argument_checks(dev):
    prog = dev.load("C_HALT")
    with pytest.raises(ValueError, match="8 argument registers"):
        dev.run(prog, args=list(range(9)))
    with pytest.raises(ValueError, match=r"timeout = 0: out of range, must be in \[1, 2\*\*64 - 1\] instructions"):
        dev.run(prog, timeout=0)
    with pytest.raises(ValueError, match="32-bit"):
        dev.run(prog, args=[-1])
    with pytest.raises(ValueError, match="verilator"):
        dev.run(prog, wave="x.fst")


def test_fault_report(dev):
    prog = dev.load("S_ADDI x1, x0, 0x100\nS_ADDI x2, x0, 4\nH_LOAD_INT x0, x1, x2\nC_HALT")
    with pytest.raises(DeviceError) as ei:
        dev.run(prog, windows="all")       # unmapped, not outside a window: AXI_READ
    e = ei.value
    assert e.reason == "fault" and e.err_cause == ErrCause.AXI_READ and e.err_cause_name == "AXI_READ"
    assert e.pc == e.err_pc == prog.addr + 8
    assert e.status == csr.mask("STATUS", "ERROR")
    assert e.counters["INSTRET"] == 2
    assert e.bytes_read == 12 and e.bytes_written == 0
    text = str(e)
    assert len(text.splitlines()) >= 8
    for needle in ("the program faulted: AXI_READ at", "ERR_CAUSE  AXI_READ (5)", f"ERR_PC     0x{prog.addr + 8:08X}",
                   "STATUS     0x00000004: ERROR", "counters   INSTRET 2", "hits unmapped 0x00000100", "[emu, profile sim]"):
        assert needle in text, (needle, text)
    dev.reset()
    assert dev.read_csr("STATUS") == 0


def test_budget_busy_and_reset(dev):
    forever = dev.load("""
        C_LOOPI 32767, @e
          C_LOOPI 32767, @e
            C_LOOPI 32767, @e
              S_ADDI x1, x1, 1
    e:  C_HALT""")
    with pytest.raises(DeviceError) as ei:
        dev.run(forever, timeout=1000)
    e = ei.value
    assert e.reason == "budget" and e.err_cause is None and e.elapsed == 1000
    assert e.status == csr.mask("STATUS", "BUSY")
    assert "within its budget of 1000 instructions" in str(e)
    ok = dev.load("C_HALT")
    with pytest.raises(DeviceError, match="still running") as ei:
        dev.run(ok)
    assert ei.value.reason == "busy"
    dev.reset()
    assert dev.run(ok).outcome == "halted"


def test_write_csr_rules(dev):
    dev.write_csr("ARG3", 0x1234)
    assert dev.read_csr("ARG3") == 0x1234
    dev.write_csr("PROG_BASE", 0x40)
    assert dev.read_csr("PROG_BASE") == 0x40
    with pytest.raises(ValueError, match="run"):
        dev.write_csr("CTRL", csr.mask("CTRL", "START"))
    with pytest.raises(ValueError, match="not writable"):
        dev.write_csr("STATUS", 0)
    with pytest.raises(KeyError):
        dev.write_csr("NOPE", 0)


def test_closed_device():
    d = rt.open("emu")
    b = d.alloc(64)
    d.close()
    d.close()
    assert d.closed and b.freed
    with pytest.raises(ValueError, match="closed"):
        d.alloc(64)
    with pytest.raises(ValueError, match="closed"):
        d.counters()


def test_device_error_text_without_registers():
    e = DeviceError("something broke", reason="busy", backend="emu", profile="sim")
    assert str(e) == "something broke [emu, profile sim]"
    e = DeviceError("x", err_cause=99, detail="line one\nline two")
    assert e.err_cause_name == "unknown (99)"
    assert str(e).splitlines()[-2:] == ["    line one", "    line two"]
