"""Memory windows (docs/EXECUTION.md "Memory windows"): the runtime grants each run exactly
the buffers it uses, and an access outside them faults WINDOW with the instruction's PC and
the access's address, identically on the emulator and the RTL."""

import numpy as np
import pytest

import dnpu.runtime as rt
from dnpu.emu import Emulator
from dnpu.emu.machine import PERM_R, PERM_W, PERM_X
from dnpu.runtime import windows as win
from dnpu.spec import config, csr, isa, mx

BACKENDS = ["emu", pytest.param("verilator", marks=pytest.mark.rtl)]

# x1 = ARG0, x2 = ARG1; store 8 words from int SRAM 0 at x1 + x3, then halt
STORE = """S_LD_ARG x1, 0
S_ADDI x2, x0, 8
S_ADDI x3, x0, {off}
S_ADD x1, x1, x3
S_ADDI x4, x0, 0
H_STORE_INT x4, x1, x2
C_HALT"""
LOAD = STORE.replace("H_STORE_INT", "H_LOAD_INT")


def _fault(e: rt.DeviceError) -> tuple[str, int]:
    return csr.ErrCause(e.err_cause).name, e.err_pc


@pytest.mark.parametrize("backend", BACKENDS)
def test_store_past_buffer_faults(backend):
    """The reproducer: a store running past its 64-byte buffer into the next one (mapped,
    but not granted) faults WINDOW at the store and leaves the neighbour unchanged."""
    with rt.open(backend, config="sim") as dev:
        prog = dev.load(STORE.format(off=48))
        a = dev.alloc(64)
        b = dev.alloc(64)
        b.write(bytes(range(64)))
        assert b.addr == a.addr + 64                 # neighbours: a store past a lands in b
        with pytest.raises(rt.DeviceError) as ei:
            dev.run(prog, args=[a])
        assert _fault(ei.value) == ("WINDOW", prog.addr + 20)
        assert dev.read_csr("ERR_ADDR") == a.addr + 48
        assert "outside the memory windows granted" in str(ei.value)
        assert b.read() == bytes(range(64))
        dev.run(dev.load(STORE.format(off=32)), args=[a])     # inside its buffer: unchanged
        assert dev.read_csr("ERR_ADDR") == 0 and b.read() == bytes(range(64))


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_outside_and_permissions(backend):
    with rt.open(backend, config="sim") as dev:
        prog = dev.load(LOAD.format(off=48))
        a = dev.alloc(64)
        dev.alloc(64)
        with pytest.raises(rt.DeviceError) as ei:
            dev.run(prog, args=[a])
        assert _fault(ei.value) == ("WINDOW", prog.addr + 20)
        # read-only data: the load passes, a store faults
        ld = dev.load(LOAD.format(off=0))
        st = dev.load(STORE.format(off=0))
        dev.run(ld, args=[a], windows=[(ld, "x"), (a, "r")])
        with pytest.raises(rt.DeviceError) as ei:
            dev.run(st, args=[a], windows=[(st, "x"), (a, "r")])
        assert _fault(ei.value) == ("WINDOW", st.addr + 20)
        dev.run(st, args=[a], windows="all")


@pytest.mark.parametrize("backend", BACKENDS)
def test_fetch_outside_faults(backend):
    """Fetch checks the PC's whole fetch line (ctrl.fetch_words words, 32 bytes on sim): a
    program whose executable window ends after its first line faults at the second."""
    with rt.open(backend, config="sim") as dev:
        src = "\n".join(["C_NOP"] * 12 + ["C_HALT"])
        prog = dev.load(src)
        with pytest.raises(rt.DeviceError) as ei:
            dev.run(prog, windows=[(prog.addr, 32, "x")])
        assert _fault(ei.value) == ("WINDOW", prog.addr + 32)
        assert dev.read_csr("ERR_ADDR") == prog.addr + 32
        assert dev.counters()["INSTRET"] == 8
        with pytest.raises(rt.DeviceError) as ei:     # readable is not executable
            dev.run(prog, windows=[(prog, "rw")])
        assert _fault(ei.value) == ("WINDOW", prog.addr)
        dev.run(prog)


# H_SAMPLE_FUSED over the packed logits at ARG0, its argmax and sum stored to ARG1
FUSED = """S_LD_ARG x1, 0
S_ADDI x2, x0, {rows}
H_SAMPLE_FUSED x3, f1, x1, x2, e4m3
S_ST_INT x3, x0, 0
S_ST_FP f1, x0, 1
S_LD_ARG x5, 1
S_ADDI x6, x0, 2
H_STORE_INT x0, x5, x6
C_HALT"""


@pytest.mark.parametrize("config_name", ["sim", pytest.param("pynq-z2", marks=pytest.mark.slow)])
@pytest.mark.rtl
def test_fused_window_fault_then_run(config_name):
    """The vector unit takes H_SAMPLE_FUSED's start before the window check; when the
    stream is outside the windows the instruction faults WINDOW and the unit is flushed, so
    the next run samples as the emulator does."""
    cfg = config.load(config_name)
    V = 16 * cfg.vector.vlen
    rng = np.random.default_rng(5)
    q = mx.quantize(rng.normal(0, 4, (1, V)).astype(np.float32), "e4m3", cfg.mx.block)
    data = mx.pack(mx.MXArray("e4m3", q.block, (V,), q.scales[0], q.codes[0]))
    rows = V // cfg.vector.vlen
    outs = {}
    for backend in ("emu", "verilator"):
        with rt.open(backend, config=config_name) as dev:
            # the faulting run streams half the rows: a unit left running would take the
            # next run's rows as its own and answer for the first half
            bad, good = dev.load(FUSED.format(rows=rows // 2)), dev.load(FUSED.format(rows=rows))
            logits, out = dev.alloc(len(data)), dev.alloc(64)
            logits.write(data)
            with pytest.raises(rt.DeviceError) as ei:
                dev.run(bad, args=[logits, out], windows=[(bad, "x"), (out, "rw")])
            assert _fault(ei.value) == ("WINDOW", bad.addr + 8)
            assert dev.read_csr("ERR_ADDR") == logits.addr
            dev.run(good, args=[logits, out])
            outs[backend] = out.read()[:8]
    assert outs["verilator"] == outs["emu"]
    assert outs["emu"] != bytes(8)                   # an argmax and a nonzero sum were stored


def test_plan():
    ext = [(0x1000, 64), (0x1040, 128), (0x2000, 64), (0x3000, 64), (0x4000, 64), (0x5000, 64)]
    # program in 0x1000's buffer; args into 0x1040 (an address inside it) and 0x2000; a count
    assert win.plan(ext, 0x1000, [0x1050, 0x2000, 7]) == [
        (0x1000, 0x103F, win.X), (0x1040, 0x10BF, win.R | win.W), (0x2000, 0x203F, win.R | win.W), (0, 0, 0)]
    # the program's buffer is also an argument: rwx; touching rw buffers merge
    assert win.plan(ext, 0x1000, [0x1000, 0x1040])[0] == (0x1000, 0x103F, win.R | win.W | win.X)
    assert win.plan(ext[3:], 0x3000, [0x4000, 0x5000], [0x3000])[0] == (0x3000, 0x303F, 7)
    with pytest.raises(ValueError, match="need 5 memory windows.*the NPU has 4"):
        win.plan(ext, 0x1000, [0x1040, 0x2000, 0x3000, 0x4000])
    assert win.plan(ext, 0, [], windows="all")[0] == (0, 0xFFFF_FFFF, 7)
    assert win.plan(ext, 0, [], windows=[(0x10, 16, "rx")])[0] == (0x10, 0x1F, win.R | win.X)
    for bad in ([(0x10, 16, "rq")], [(0x10, 0, "r")], "none", [(1, 2)]):
        with pytest.raises(ValueError):
            win.plan(ext, 0, [], windows=bad)


def test_emulator_rule():
    """Whole beats (16 bytes on sim): a window not on beat boundaries grants only the beats
    wholly inside it; the bare emulator starts open, its windows are set by set_window."""
    e = Emulator("sim")
    e.map(0x1000, 0x1000)
    e.write(0x1000, isa.assemble(STORE.format(off=0)))
    assert e.run(0x1000, args=[0x1800]).ok
    e.set_window(0, 0x1000, 0x103F, PERM_X)
    e.set_window(1, 0x1800, 0x181E, PERM_R | PERM_W)   # one byte short of 32: only 0x1800..0x180F
    r = e.run(0x1000, args=[0x1800])
    assert (r.status, r.cause.name, r.pc) == ("fault", "WINDOW", 0x1014)
    e.set_window(1, limit=0x181F)
    assert e.run(0x1000, args=[0x1800]).ok
    e.set_window(1, perm=PERM_R)
    assert e.run(0x1000, args=[0x1800]).cause.name == "WINDOW"
    assert e.read_csr("ERR_ADDR") == 0x1800
    assert e.read_csr("WIN_LIMIT1") == 0x181F and e.read_csr("WIN_PERM0") == PERM_X
