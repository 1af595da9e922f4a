"""dnpu.runtime shared between threads, and every wait bounded: the device lock (concurrent
callers take turns, separate devices run in parallel), run budgets checked at the call on
every backend, close() stopping a busy NPU before its memory goes, run_info checked before
the run, and the co-simulation library's cache entry checked before it is loaded."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import dnpu.runtime as rt
from dnpu.runtime import DeviceError, cosim
from dnpu.spec import config, csr

SIM = config.load("sim")
BUSY = csr.mask("STATUS", "BUSY")
SQUARES = """
    S_LD_ARG x1, 0
    S_LD_ARG x2, 1
    S_ADDI x3, x0, 64
    S_ADDI x5, x0, 0
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
FOREVER = "C_LOOPI 32767, @e\nC_LOOPI 32767, @e\nC_LOOPI 32767, @e\nS_ADDI x1, x1, 1\ne: C_HALT"


def _squares(words: np.ndarray) -> bytes:
    return ((words.astype(np.uint64) ** 2) & 0xFFFF_FFFF).astype("<u4").tobytes()


def _open(backend: str, **kw):
    return rt.open(backend, config="sim", **kw)


# ---- threads -------------------------------------------------------------------------------

def _hammer(dev, n_threads: int, rounds: int) -> list[str]:
    """n_threads threads, each loading its own program and buffers and running it `rounds`
    times on `dev` with its own data; returns what went wrong (empty: every result exact)."""
    errors: list[str] = []
    start = threading.Barrier(n_threads)

    def work(t: int) -> None:
        try:
            rng = np.random.default_rng(1000 + t)
            prog = dev.load(SQUARES)
            start.wait()
            for r in range(rounds):
                data = rng.integers(0, 2**32, 64, dtype=np.uint64).astype("<u4")
                inp, out = dev.alloc(256), dev.alloc(256)
                inp.write(data)
                info = dev.run(prog, args=[inp, out])
                got = out.read()
                if got != _squares(data) or info.outcome != "halted":
                    errors.append(f"thread {t} round {r}: wrong result")
                inp.free()
                out.free()
        except Exception as e:                    # noqa: BLE001 - reported to the test
            errors.append(f"thread {t}: {e!r}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=600)
    assert not any(th.is_alive() for th in threads), "a thread hung"
    return errors


def test_threads_share_an_emu_device():
    with _open("emu") as dev:
        assert _hammer(dev, n_threads=6, rounds=15) == []
        assert len(dev._buffers) == 6                 # only the programs are left


@pytest.mark.rtl
def test_threads_share_a_verilator_device(model):
    with _open("verilator", stress_seed=3) as dev:
        assert _hammer(dev, n_threads=4, rounds=6) == []
        assert dev.dram()["protocol_errors"] == 0


@pytest.mark.rtl
def test_separate_devices_on_separate_threads(model):
    """Each thread opens, uses and closes its own device (Verilator models and an emulator):
    nothing the models share (Verilated contexts, error strings) may mix them up."""
    errors: list[str] = []
    cycles: dict[int, int] = {}

    def work(t: int, backend: str) -> None:
        try:
            with _open(backend, **({"read_latency": 5 + 10 * t} if backend == "verilator" else {})) as dev:
                errs = _hammer(dev, n_threads=1, rounds=4)
                errors.extend(f"device {t}: {e}" for e in errs)
                prog = dev.load(SQUARES)
                inp, out = dev.alloc(256), dev.alloc(256)
                cycles[t] = dev.run(prog, args=[inp, out]).cycles
                bad = dev.load(f"S_LD_INT x1, x0, {SIM.sram.int_words}\nC_HALT")
                with pytest.raises(DeviceError, match="faulted: SRAM_RANGE") as ei:
                    dev.run(bad)                        # its own fault, reported by its own model
                assert ei.value.err_pc == bad.addr
        except Exception as e:                           # noqa: BLE001
            errors.append(f"device {t}: {e!r}")

    threads = [threading.Thread(target=work, args=(t, b))
               for t, b in enumerate(["verilator", "verilator", "verilator", "emu"])]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=600)
    assert errors == []
    # Each model kept its own DRAM latency: the runs' cycle counts differ accordingly.
    assert cycles[0] < cycles[1] < cycles[2] and cycles[3] is None


def _blocked_while_locked(dev, op) -> None:
    """`op` (a call on dev) waits while another thread holds dev.lock, then completes."""
    done = threading.Event()
    failure: list[BaseException] = []

    def call() -> None:
        try:
            op()
        except BaseException as e:                       # noqa: BLE001
            failure.append(e)
        done.set()

    with dev.lock:
        th = threading.Thread(target=call)
        th.start()
        assert not done.wait(0.15), "the operation ran while another thread held the device lock"
    th.join(timeout=60)
    assert done.is_set() and not failure, failure


@pytest.mark.parametrize("backend", ["emu", pytest.param("verilator", marks=pytest.mark.rtl)])
def test_every_public_operation_takes_the_lock(backend, request):
    if backend == "verilator":
        request.getfixturevalue("model")
    dev = _open(backend)
    prog = dev.load("C_HALT")
    buf = dev.alloc(64)
    ops = {
        "run": lambda: dev.run(prog), "load": lambda: dev.load("C_HALT"), "alloc": lambda: dev.alloc(64),
        "write": lambda: buf.write(b"\1" * 64), "read": lambda: buf.read(), "read_csr": lambda: dev.read_csr("PC"),
        "write_csr": lambda: dev.write_csr("ARG0", 5), "counters": dev.counters, "status": dev.status,
        "reset": dev.reset, "free": buf.free,
    }
    if backend == "verilator":
        ops.update(set_dram=lambda: dev.set_dram(read_latency=3), dram=dev.dram, describe=dev.describe)
    for name, op in ops.items():
        _blocked_while_locked(dev, op)
    _blocked_while_locked(dev, dev.close)
    assert dev.closed


# ---- budgets -------------------------------------------------------------------------------

BAD_COUNTS = [float("nan"), float("inf"), -float("inf"), -1, 0, 0.5, 2**64, float(2**64), "1000", True, None]


@pytest.mark.parametrize("backend,unit", [("emu", "instructions"),
                                          pytest.param("verilator", "cycles", marks=pytest.mark.rtl)])
def test_bad_budgets_are_refused_at_the_call(backend, unit, request):
    if backend == "verilator":
        request.getfixturevalue("model")
    with _open(backend) as dev:
        prog = dev.load("C_HALT")
        for bad in BAD_COUNTS[:-1]:
            with pytest.raises(ValueError, match=r"timeout = .*\[1, 2\*\*64 - 1\] " + unit) as ei:
                dev.run(prog, timeout=bad)
            assert f"on the {backend} backend" in str(ei.value)
        for bad in (float("nan"), -1, 2**64, 1.5):
            with pytest.raises(ValueError, match=r"watchdog = .*\[0, 2\*\*64 - 1\] cycles \(0: off\)"):
                dev.run(prog, watchdog=bad)
        for name, bad in (("trace", -1), ("trace", float("nan")), ("wave_from", -1), ("wave_from", 2**64)):
            with pytest.raises(ValueError, match=rf"{name} = .*\[0, 2\*\*64 - 1\]"):
                dev.run(prog, **{name: bad})
        # the range's ends are accepted (the program halts long before)
        if backend == "emu":
            assert dev.run(prog, timeout=1).outcome == "halted"     # C_HALT is one instruction
        assert dev.run(prog, timeout=2**64 - 1, watchdog=0).outcome == "halted"
        assert dev.run(prog, timeout=1e6).budget == 1_000_000
        assert dev.read_csr("STATUS") & BUSY == 0       # nothing was started by a refused call
        if backend == "verilator":
            with pytest.raises(ValueError, match=r"read_latency = nan"):
                dev.set_dram(read_latency=float("nan"))
            with pytest.raises(ValueError, match=r"watchdog = -5"):
                _open(backend, watchdog=-5)


@pytest.mark.rtl
def test_cosim_binding_checks_its_own_budgets(model):
    m = cosim.Model(model.path)
    try:
        for budget in (0, -1, 2**64):
            with pytest.raises(cosim.CosimError, match=r"budget = .*\[1, 2\*\*64 - 1\] cycles"):
                m.run(0, budget)
        with pytest.raises(cosim.CosimError, match=r"a knob value is a 64-bit signed integer"):
            m.set("read_latency", 2**63)
    finally:
        m.close()


# ---- close() of a busy device ----------------------------------------------------------------

@pytest.mark.parametrize("backend", ["emu", pytest.param("verilator", marks=pytest.mark.rtl)])
def test_close_stops_a_busy_npu_before_releasing_memory(backend, request):
    if backend == "verilator":
        request.getfixturevalue("model")
    dev = _open(backend)
    with pytest.raises(DeviceError) as ei:
        dev.run(dev.load(FOREVER), timeout=5000)
    assert ei.value.reason == "budget" and dev.read_csr("STATUS") & BUSY
    seen = []
    if backend == "verilator":
        m = dev.model
        real = m.close
        m.close = lambda: (seen.append(m.csr_read(csr.offset("STATUS"))), real())[1]
    else:
        real = dev._close
        dev._close = lambda: (seen.append(dev.emu.read_csr("STATUS")), real())[1]
    dev.close()
    assert len(seen) == 1 and not seen[0] & BUSY, f"STATUS 0x{seen[0]:X} when the memory was released"
    assert dev.closed


# ---- run_info ----------------------------------------------------------------------------------

def test_run_info_must_be_a_list():
    from dnpu import ops, sampling

    logits = np.zeros((1, 2, 32), np.float32)
    for bad in ({}, "infos", 3):
        with pytest.raises(TypeError, match=r"run_info = .*must be a list .* not " + type(bad).__name__):
            sampling.transfer(logits, np.ones((1, 2), bool), np.zeros((1, 2), np.int64), k=1, backend="emu",
                              run_info=bad)
        with pytest.raises(TypeError, match="run_info"):
            ops.rms_norm(np.ones((1, 16)), np.ones(16), backend="emu", run_info=bad)
    infos = []
    sampling.transfer(logits, np.ones((1, 2), bool), np.zeros((1, 2), np.int64), k=1, backend="emu",
                      run_info=infos)
    assert len(infos) == 1 and infos[0].outcome == "halted"


# ---- the co-simulation library's cache entry -----------------------------------------------------

def _truncated_entry(model, tmp_path):
    """A copy of the model's cache entry with its library cut in half: (library, its size)."""
    entry = tmp_path / model.dir.name
    shutil.copytree(model.dir, entry)
    lib = entry / cosim.LIB_NAME
    size = lib.stat().st_size
    with open(lib, "r+b") as f:
        f.truncate(size // 2)
    return lib, size


@pytest.mark.rtl
def test_a_truncated_cached_library_is_refused(model, tmp_path):
    lib, size = _truncated_entry(model, tmp_path)
    # Loading it must be a clean error, not SIGBUS: try in a child process.
    code = f"from dnpu.runtime import cosim\ncosim.Model({str(lib)!r})\n"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 1, (p.returncode, p.stderr[-2000:])
    assert "CosimError" in p.stderr and f"{size // 2} bytes" in p.stderr and "truncated or overwritten" in p.stderr


@pytest.mark.rtl
@pytest.mark.slow            # rebuilds the co-simulation model: a minute of CPU
def test_a_truncated_cached_library_is_rebuilt(model, tmp_path):
    lib, size = _truncated_entry(model, tmp_path)
    # ensure_built sees the damage and builds the entry again.
    before = cosim.BUILD_COUNT
    logs = []
    res = cosim.ensure_built("sim", cache_dir=tmp_path, log=logs.append)
    assert res.built and cosim.BUILD_COUNT == before + 1 and res.path == lib
    assert lib.stat().st_size == size and "damaged" in logs[0]
    m = cosim.Model(lib)
    assert m.beat_bytes == SIM.beat_bytes
    m.close()


@pytest.mark.rtl
def test_build_steps_run_under_a_timeout(model, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"DNPU_COSIM_BUILD_TIMEOUT = 'nan'"):
        monkeypatch.setenv("DNPU_COSIM_BUILD_TIMEOUT", "nan")
        cosim.build_timeout()
    monkeypatch.delenv("DNPU_COSIM_BUILD_TIMEOUT")
    assert cosim.build_timeout() == cosim.BUILD_TIMEOUT
    t0 = time.monotonic()
    with pytest.raises(cosim.CosimBuildError, match=r"ran past the build timeout of 0.2 s and was killed"):
        cosim.ensure_built("sim", cache_dir=tmp_path, timeout=0.2)
    assert time.monotonic() - t0 < 60
    assert not (tmp_path / model.dir.name).exists()
    assert (tmp_path / f"{model.dir.name}.failed" / "build.log").is_file()
