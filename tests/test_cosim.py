"""The Verilator co-simulation (cosim/) through dnpu.runtime, against the emulator.

Every program runs on `emu` and `verilator` through the same Device API, with the same
allocations (so the same addresses): output memory, INSTRET and, for faults, the cause,
PC, ERR_PC and STATUS must agree bit for bit. The programs use what dnpu_top executes
today (control, scalar int, FP moves, int/FP SRAM loads/stores, H_LOAD/H_STORE_INT/FP),
under three DRAM models: the profile's, a random back-pressure one (stress) and a slow
narrow one. Also: the build cache (a second open builds nothing), attach refusal, the
budget, the watchdog (a DRAM that stops answering), waveforms, the DRAM knobs, resets and
a long run whose simulated cycles/s is printed. `make test-slow` adds the other profiles
(one model build each).

One model build is shared by the whole session (it is cached across sessions too).
"""

from __future__ import annotations

import random
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

import dnpu.runtime as rt
from dnpu.spec import config, csr, isa
from dnpu.spec.csr import ErrCause
from dnpu.runtime import AttachError, DeviceError, cosim

pytestmark = pytest.mark.rtl

SIM = config.load("sim")
INT_WORDS = SIM.sram.int_words
FP_WORDS = SIM.sram.fp_words
LOOP_DEPTH = SIM.ctrl.loop_depth
BB = SIM.beat_bytes
M32 = 0xFFFF_FFFF
PERIOD_PS = round(1e6 / SIM.clock.f_clk_mhz)

DRAM_MODES = {
    "profile": {},
    "stress": {"stress_seed": 7},
    "slow": {"read_latency": 150, "write_latency": 60, "bytes_per_cycle": 4, "max_reads": 2, "max_writes": 1},
}


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------

def _open(backend: str, **kw):
    return rt.open(backend, config="sim", **kw)


@pytest.fixture
def vdev(model):
    with _open("verilator") as d:
        yield d
        assert d.dram()["protocol_errors"] == 0, d.describe()


@pytest.fixture
def pair(model, request):
    """(emu, verilator) devices; parametrize indirectly with a DRAM mode name."""
    knobs = DRAM_MODES[getattr(request, "param", "profile")]
    with _open("emu") as e, _open("verilator", **knobs) as v:
        yield e, v
        assert v.dram()["protocol_errors"] == 0, v.describe()


# ---------------------------------------------------------------------------
# program helpers
# ---------------------------------------------------------------------------

def asm(*parts) -> bytes:
    """Assembly text, lists of lines and raw words (int) -> program bytes (labels resolve
    within one part)."""
    words: list[int] = []
    for p in parts:
        if isinstance(p, int):
            words.append(p & M32)
        else:
            words.extend(isa.assemble_words(p if isinstance(p, str) else "\n".join(p)))
    return b"".join(w.to_bytes(4, "little") for w in words)


class World:
    """The same buffers on one device: program, input (random), output, and an edge buffer
    allocated last (nothing mapped after it)."""

    def __init__(self, dev, prog: bytes, seed: int = 0, in_bytes: int = 4096, out_bytes: int = 8192):
        self.dev = dev
        self.prog = dev.load(prog)
        self.inp = dev.alloc(in_bytes)
        self.inp.write(np.random.default_rng(seed).bytes(in_bytes))
        self.out = dev.alloc(out_bytes)
        self.edge = dev.alloc(64)
        self.edge.write(bytes(range(64)))

    @property
    def args(self):
        return [self.inp, self.out, self.edge]


def run_both(pair, prog: bytes, seed: int = 0, timeout=None, prog_offset: int = 0, windows=None):
    """Run on both devices; returns [(World, RunInfo | DeviceError)] for emu, verilator."""
    out = []
    for dev in pair:
        w = World(dev, prog, seed)
        if out:
            assert w.prog.addr == out[0][0].prog.addr, "the two devices allocate differently"
        try:
            res = dev.run(w.prog.addr + prog_offset, args=w.args, timeout=timeout, windows=windows)
        except DeviceError as e:
            res = e
        out.append((w, res))
    return out


def assert_same_halt(results, what: str = ""):
    (we, re), (wv, rv) = results
    for r in (re, rv):
        if isinstance(r, DeviceError):
            raise AssertionError(f"{what}: {r}")
    assert rv.instret == re.instret, f"{what}: INSTRET verilator {rv.instret} != emu {re.instret}"
    for name in ("out", "inp", "edge", "prog"):
        e, v = getattr(we, name).read(), getattr(wv, name).read()
        if e != v:
            i = next(k for k in range(len(e)) if e[k] != v[k])
            raise AssertionError(f"{what}: {name} buffer differs first at byte {i}: verilator "
                                 f"{v[i:i + 16].hex()} != emu {e[i:i + 16].hex()}")


# ---------------------------------------------------------------------------
# programs in the RTL's subset
# ---------------------------------------------------------------------------

EDGE_VALUES = [0, 1, 2, M32, 0x7FFFFFFF, 0x80000000, 12345, (-7) & M32, 0x55555555]


def prog_scalar() -> bytes:
    lines = []
    for k in range(3):
        lines.append(f"S_LD_ARG x{13 + k}, {k}")
    slot = 0
    for a in EDGE_VALUES:
        for b in EDGE_VALUES[::2]:
            # S_LUI + S_ADDI for every value: S_LUI at its edge immediates (0, all ones) too
            lines += isa.load_imm(3, a, always_two=True) + isa.load_imm(4, b, always_two=True)
            for op in ("S_ADD", "S_SUB", "S_MUL", "S_MIN", "S_MAX", "S_SLT"):
                lines += [f"{op} x5, x3, x4", f"S_ST_INT x5, x0, {slot}"]
                slot += 1
        for sh in (0, 1, 13, 31):
            lines += [f"S_SLLI x6, x3, {sh}", f"S_SRLI x7, x3, {sh}", f"S_ST_INT x6, x0, {slot}",
                      f"S_ST_INT x7, x0, {slot + 1}"]
            slot += 2
    lines += isa.load_imm(8, slot) + ["H_STORE_INT x0, x14, x8", "C_HALT"]
    return asm(lines)


def prog_loops() -> bytes:
    return asm("""
        S_LD_ARG x15, 1
        C_LOOPI 3, @e1
          S_ADDI x3, x3, 1
          C_LOOPI 2, @e1
            S_ADDI x4, x4, 1
    e1: C_LOOPI 0, @e2
          S_ADDI x5, x5, 100
    e2: S_ADDI x6, x0, 5
        C_LOOP x6, @e3
          S_ADDI x6, x6, 7
          C_LOOPI 2, @e3b
            C_LOOPI 3, @e3b
              C_LOOPI 2, @e3b
                S_ADDI x8, x8, 1
    e3b:  S_ADDI x9, x9, 1
    e3: C_LOOPI 1000, @e4
          S_ADDI x10, x10, 3
    e4: S_ST_INT x3, x0, 0
        S_ST_INT x4, x0, 1
        S_ST_INT x5, x0, 2
        S_ST_INT x6, x0, 3
        S_ST_INT x8, x0, 4
        S_ST_INT x9, x0, 5
        S_ST_INT x10, x0, 6
        S_ADDI x11, x0, 7
        H_STORE_INT x0, x15, x11
        C_HALT
    """)


def prog_transfers() -> bytes:
    """H_LOAD_INT/FP at every lane offset, around beat and burst sizes, the whole input
    buffer (4 KiB) and the whole output buffer (8 KiB: both cross a 4 KiB boundary wherever
    they lie), then H_STORE_INT/FP of SRAM ranges at every lane."""
    wpb = BB // 4
    lines = ["S_LD_ARG x1, 0", "S_LD_ARG x2, 1"]
    specs = []
    for off in range(wpb):
        for n in (1, 3, wpb, wpb + 1, 16 * wpb, 16 * wpb + 1, 100):
            specs.append((off, n))
    base = 0
    for k, (off, n) in enumerate(specs):
        op = "H_LOAD_FP" if k % 3 == 0 else "H_LOAD_INT"
        depth = FP_WORDS if op == "H_LOAD_FP" else INT_WORDS
        sbase = base % (depth - n)
        lines += [f"S_ADDI x3, x0, {sbase}", f"S_ADDI x4, x1, {4 * off + 16 * (k % 7)}", f"S_ADDI x5, x0, {n}",
                  f"{op} x3, x4, x5"]
        base += 37
    lines += ["S_ADDI x3, x0, 0", "S_ADDI x4, x1, 0", "S_ADDI x5, x0, 1024", "H_LOAD_INT x3, x4, x5"]  # all 4 KiB
    lines += ["S_ADDI x3, x0, 0", "S_ADDI x4, x2, 0", f"S_ADDI x5, x0, {INT_WORDS}", "H_STORE_INT x3, x4, x5"]
    outs = [(0, 4, 7), (3, 4096 - 12, 40), (1, 100, 3), (2, 4096 + 8, 300)]   # (lane, byte offset, n)
    for k, (lane, boff, n) in enumerate(outs):
        op = "H_STORE_FP" if k % 2 else "H_STORE_INT"
        lines += [f"S_ADDI x3, x0, {13 * k}", f"S_ADDI x4, x2, {boff + 4 * lane}", f"S_ADDI x5, x0, {n}",
                  f"{op} x3, x4, x5"]
    lines += ["S_ADDI x3, x0, 0", f"S_ADDI x4, x2, {8192 - 4 * 512}", "S_ADDI x5, x0, 512", "H_STORE_INT x3, x4, x5",
              "C_HALT"]
    return asm(lines)


def prog_fp_moves() -> bytes:
    lines = ["S_LD_ARG x1, 0", "S_LD_ARG x2, 1", "S_ADDI x3, x0, 64", "S_ADDI x4, x0, 7", "H_LOAD_FP x4, x1, x3"]
    for k, bits in enumerate((0x7FC0, 0xFF80, 0x8000, 0x3F80, 0x0001, 0xFFFF, 0x7F80, 0x0000)):
        lines.append(f"S_LI_FP f{k}, 0x{bits:04X}")
    lines += [f"S_ST_FP f{k}, x0, {FP_WORDS - 1 - k}" for k in range(8)]
    lines += [f"S_LD_FP f{k}, x4, {k * 3}" for k in range(8)]
    lines += ["S_ADDI x5, x0, 1", "S_SEL_FP f0, f1, f2, x5", "S_SEL_FP f3, f4, f5, x0", "S_SEL_FP f6, f6, f7, x5",
              "S_ST_FP f0, x4, -7", "S_ST_FP f3, x4, -6", "S_ST_FP f6, x4, -5",
              "S_ADDI x7, x0, 80", "H_STORE_FP x0, x2, x7",
              f"S_ADDI x8, x0, {FP_WORDS - 8}", "S_ADDI x9, x0, 8", "S_ADDI x10, x2, 1024",
              "H_STORE_FP x8, x10, x9", "C_HALT"]
    return asm(lines)


_ALU = ("S_ADD", "S_SUB", "S_MUL", "S_MIN", "S_MAX", "S_SLT")


def _rand_instr(rng: random.Random) -> list[str]:
    r = lambda: rng.randint(3, 12)   # noqa: E731
    k = rng.randrange(12)
    if k < 4:
        return [f"{rng.choice(_ALU)} x{r()}, x{r()}, x{r()}"]
    if k == 4:
        return [f"S_ADDI x{r()}, x{r()}, {rng.randint(-65536, 65535)}"]
    if k == 5:
        return [f"S_LUI x{r()}, {rng.randrange(1 << 21)}"]
    if k == 6:
        return [f"{rng.choice(('S_SLLI', 'S_SRLI'))} x{r()}, x{r()}, {rng.randrange(32)}"]
    if k == 7:
        return [f"S_ST_INT x{r()}, x0, {rng.randrange(INT_WORDS)}", f"S_LD_INT x{r()}, x0, {rng.randrange(INT_WORDS)}"]
    if k == 8:
        f = rng.randrange(8)
        return [f"S_LI_FP f{f}, 0x{rng.randrange(1 << 16):04X}", f"S_ST_FP f{f}, x0, {rng.randrange(FP_WORDS)}",
                f"S_LD_FP f{rng.randrange(8)}, x0, {rng.randrange(FP_WORDS)}"]
    if k == 9:
        return [f"S_SEL_FP f{rng.randrange(8)}, f{rng.randrange(8)}, f{rng.randrange(8)}, x{r()}"]
    n = rng.choice((0, 1, 2, 5, 8, 33, 64, 130))
    if k == 10:                                  # input buffer (4 KiB) -> SRAM
        op, depth = rng.choice((("H_LOAD_INT", INT_WORDS), ("H_LOAD_FP", FP_WORDS)))
        boff = 4 * rng.randrange((4096 - 4 * n) // 4 + 1)
        return [f"S_ADDI x13, x0, {rng.randrange(depth - n + 1)}", f"S_ADDI x14, x1, {boff}",
                f"S_ADDI x15, x0, {n}", f"{op} x13, x14, x15"]
    op, depth = rng.choice((("H_STORE_INT", INT_WORDS), ("H_STORE_FP", FP_WORDS)))
    boff = 4 * rng.randrange((8192 - 4 * n) // 4 + 1)
    return [f"S_ADDI x13, x0, {rng.randrange(depth - n + 1)}", f"S_ADDI x14, x2, {boff}",
            f"S_ADDI x15, x0, {n}", f"{op} x13, x14, x15"]


def prog_random(seed: int) -> bytes:
    """A random program that halts without faulting; ends by storing its registers."""
    rng = random.Random(seed)
    lines = ["S_LD_ARG x1, 0", "S_LD_ARG x2, 1"]
    for _ in range(rng.randint(20, 45)):
        if rng.random() < 0.12:
            body = [ln for _ in range(rng.randint(1, 4)) for ln in _rand_instr(rng)]
            lines += [f"C_LOOPI {rng.randint(0, 6)}, {len(body)}"] + body
        else:
            lines += _rand_instr(rng)
    lines += [f"S_ST_INT x{k}, x0, {INT_WORDS - 16 + k}" for k in range(1, 16)]
    lines += [f"S_ST_FP f{k}, x0, {FP_WORDS - 8 + k}" for k in range(8)]
    lines += [f"S_ADDI x13, x0, {INT_WORDS - 16}", "S_ADDI x14, x0, 16", "S_ADDI x15, x2, 0",
              "H_STORE_INT x13, x15, x14", f"S_ADDI x13, x0, {FP_WORDS - 8}", "S_ADDI x14, x0, 8",
              "S_ADDI x15, x2, 64", "H_STORE_FP x13, x15, x14", "C_HALT"]
    return asm(lines)


PROGRAMS = {"scalar": prog_scalar, "loops": prog_loops, "transfers": prog_transfers, "fp_moves": prog_fp_moves}


# ---------------------------------------------------------------------------
# build cache
# ---------------------------------------------------------------------------

def test_build_cache_second_open_builds_nothing(model, capsys):
    first = model
    # The session's model, unless hw/rtl changed since the session started (then this builds).
    res = cosim.ensure_built("sim")
    lib, meta = res.path, res.dir / "build.json"
    stamps = (lib.stat().st_mtime_ns, meta.stat().st_mtime_ns, (res.dir / "build.log").stat().st_mtime_ns)
    builds = cosim.BUILD_COUNT
    with _open("verilator") as d:
        assert d.info["built"] is False and d.info["model"] == str(lib)
        assert d.info["model_key"] == res.key
    again = cosim.ensure_built("sim")
    assert not again.built and again.path == lib
    assert cosim.BUILD_COUNT == builds, "a second open ran the build"
    assert (lib.stat().st_mtime_ns, meta.stat().st_mtime_ns, (res.dir / "build.log").stat().st_mtime_ns) == stamps
    assert res.dir.name == f"sim-{res.key}"
    with capsys.disabled():
        how = f"built in {first.seconds:.1f} s" if first.built else "taken from the cache"
        print(f"\n[cosim] model {first.dir.name}: {how} (second open {again.seconds * 1000:.0f} ms)")


def test_cache_key_tracks_sources(tmp_path):
    rtl, src = tmp_path / "rtl", tmp_path / "cosim"
    shutil.copytree(cosim.rtl_dir(), rtl)
    shutil.copytree(cosim.cosim_dir(), src)
    key = cosim.cache_key("sim", rtl=rtl, src=src)
    assert key == cosim.cache_key("sim", rtl=cosim.rtl_dir(), src=cosim.cosim_dir())
    assert cosim.cache_key("pynq-z2", rtl=rtl, src=src) != key
    core = rtl / "ctrl" / "dnpu_core.v"
    text = core.read_text()
    core.write_text(text + "\n// a comment\n")
    assert cosim.cache_key("sim", rtl=rtl, src=src) != key
    core.write_text(text)
    (rtl / "ctrl" / "notes.txt").write_text("not a source")
    (src / "README.md").write_text("not a source either")
    assert cosim.cache_key("sim", rtl=rtl, src=src) == key
    hdr = rtl / "generated" / "dnpu_csr.vh"
    hdr.write_text(hdr.read_text() + "\n")
    assert cosim.cache_key("sim", rtl=rtl, src=src) != key
    hdr.write_text(hdr.read_text()[:-1])
    (src / "harness.cpp").write_text((src / "harness.cpp").read_text() + "\n")
    assert cosim.cache_key("sim", rtl=rtl, src=src) != key


def test_unknown_profile_header(tmp_path):
    with pytest.raises(cosim.CosimBuildError, match="no RTL header for profile 'nope'"):
        cosim.ensure_built("nope", cache_dir=tmp_path)


# ---------------------------------------------------------------------------
# attach
# ---------------------------------------------------------------------------

def test_attach_reads_identity_over_axi_lite(vdev):
    assert vdev.info["id"] == csr.ID_MAGIC
    assert vdev.info["isa_version"] == isa.VERSION_WORD
    assert vdev.info["config_hash32"] == SIM.config_hash32
    assert vdev.info["harness"].startswith("profile=sim data_width=128")


def test_attach_refuses_other_profile(model):
    other = config.load("zcu104")
    with pytest.raises(AttachError) as ei:
        _open("verilator", expect_config="zcu104")
    assert (ei.value.field, ei.value.device_value, ei.value.expected_value) == \
        ("CONFIG_HASH", SIM.config_hash32, other.config_hash32)
    assert f"device CONFIG_HASH 0x{SIM.config_hash32:08X} != profile zcu104 0x{other.config_hash32:08X}" \
        in str(ei.value)


def test_attach_refuses_modified_config(model, tmp_path):
    """A profile edited after the RTL was generated: the model (from the cache, built from
    the committed RTL headers) reports the old hash and the host refuses it."""
    toml = (config.hw_dir() / "config" / "sim.toml").read_text()
    assert "vlen = 16" in toml
    path = tmp_path / "sim.toml"
    path.write_text(toml.replace("vlen = 16", "vlen = 32"))
    edited = config.load(path)
    builds = cosim.BUILD_COUNT
    with pytest.raises(AttachError) as ei:
        rt.open("verilator", config=edited)
    assert str(ei.value).startswith(f"device CONFIG_HASH 0x{SIM.config_hash32:08X} != profile {edited.label} "
                                    f"0x{edited.config_hash32:08X}")
    assert edited.label.startswith(f"sim (modified: {path}, config ")
    assert cosim.BUILD_COUNT == builds


# ---------------------------------------------------------------------------
# the same programs on both backends
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("pair", list(DRAM_MODES), indirect=True)
@pytest.mark.parametrize("name", list(PROGRAMS))
def test_program_matches_emu(pair, name):
    assert_same_halt(run_both(pair, PROGRAMS[name]()), name)


@pytest.mark.parametrize("mode", ["profile", "stress"])
def test_random_programs_match_emu(model, mode):
    for seed in range(16):
        knobs = dict(DRAM_MODES[mode])
        if "stress_seed" in knobs:
            knobs["stress_seed"] = seed + 1
        with _open("emu") as e, _open("verilator", **knobs) as v:
            assert_same_halt(run_both((e, v), prog_random(seed), seed=seed), f"random program {seed} ({mode})")
            assert v.dram()["protocol_errors"] == 0, v.describe()


# ---------------------------------------------------------------------------
# faults: the same cause, PC and ERR_PC on both backends
# ---------------------------------------------------------------------------

def _fault_cases():
    hole = 0x100                                   # below the heap: never mapped
    return [
        ("opcode 0", asm("S_ADDI x1, x0, 1", "C_NOP", 0x00000000, "C_HALT"), 0, ErrCause.ILLEGAL_INSTR),
        ("unused bit", asm("C_NOP", isa.encode("S_ADD", 1, 2, 3) | (1 << 31), "C_HALT"), 0,
         ErrCause.ILLEGAL_INSTR),
        ("S_LD_INT past the end", asm(f"S_LD_INT x1, x0, {INT_WORDS}", "C_HALT"), 0, ErrCause.SRAM_RANGE),
        ("H_LOAD_FP base + n > depth", asm("S_LD_ARG x1, 0", f"S_ADDI x2, x0, {FP_WORDS - 3}", "S_ADDI x3, x0, 4",
                                            "H_LOAD_FP x2, x1, x3", "C_HALT"), 0, ErrCause.SRAM_RANGE),
        ("loop length 0", asm("S_ADDI x1, x0, 1", "C_LOOPI 3, 0", "C_HALT"), 0, ErrCause.LOOP_OVERFLOW),
        ("loops too deep", asm([f"C_LOOPI 2, {LOOP_DEPTH + 1 - k}" for k in range(LOOP_DEPTH + 1)] +
                               ["C_NOP", "C_HALT"]), 0, ErrCause.LOOP_OVERFLOW),
        ("H_LOAD_INT misaligned", asm("S_LD_ARG x1, 0", "S_ADDI x1, x1, 2", "S_ADDI x3, x0, 4",
                                      "H_LOAD_INT x0, x1, x3", "C_HALT"), 0, ErrCause.MISALIGNED),
        ("PROG_BASE misaligned", asm("C_HALT"), 2, ErrCause.MISALIGNED),
        ("H_LOAD_INT from unmapped", asm(isa.load_imm(1, hole), "S_ADDI x3, x0, 20", "H_LOAD_INT x0, x1, x3",
                                         "C_HALT"), 0, ErrCause.AXI_READ),
        ("H_LOAD_INT runs off the last buffer", asm("S_LD_ARG x1, 2", "S_ADDI x1, x1, 32", "S_ADDI x3, x0, 20",
                                                    "H_LOAD_INT x0, x1, x3", "C_HALT"), 0, ErrCause.AXI_READ),
        ("H_STORE_INT to unmapped", asm(isa.load_imm(1, hole), "S_ADDI x3, x0, 9", "H_STORE_INT x0, x1, x3",
                                        "C_HALT"), 0, ErrCause.AXI_WRITE),
        ("H_STORE_FP runs off the last buffer", asm("S_LD_ARG x1, 2", "S_ADDI x3, x0, 100",
                                                    "H_STORE_FP x0, x1, x3", "C_HALT"), 0, ErrCause.AXI_WRITE),
    ]


def _window_cases():
    """The unmapped and run-off cases under the runtime's default grants: the memory is
    outside every window, which is checked before the access."""
    return [(f"{name}, default windows", prog, off, ErrCause.WINDOW if c in (ErrCause.AXI_READ, ErrCause.AXI_WRITE)
             else c) for name, prog, off, c in _fault_cases() if "unmapped" in name or "runs off" in name]


@pytest.mark.parametrize("case", _fault_cases() + _window_cases(), ids=lambda c: c[0])
def test_fault_matches_emu(pair, case):
    name, prog, offset, cause = case
    windows = None if "default windows" in name else "all"
    (we, ee), (wv, ev) = run_both(pair, prog, prog_offset=offset, windows=windows)
    for backend, e in (("emu", ee), ("verilator", ev)):
        assert isinstance(e, DeviceError), f"{name}: {backend} did not fault: {e}"
        assert e.reason == "fault" and e.err_cause == cause, f"{name} on {backend}:\n{e}"
    fields = lambda e: (e.err_cause, e.err_pc, e.pc, e.status)   # noqa: E731
    assert fields(ev) == fields(ee), f"{name}:\nverilator {ev}\nemu {ee}"
    assert ev.err_pc >= we.prog.addr + offset
    assert ev.counters["INSTRET"] == ee.counters["INSTRET"]
    text = str(ev)
    assert f"ERR_CAUSE  {cause.name} ({int(cause)})" in text and "counters   CYCLES" in text
    assert "RD_BEATS x 16" in text


def test_fetch_from_unmapped(pair):
    """Outside every window (the runtime grants no buffer there): WINDOW, nothing read;
    granted but unmapped: AXI_READ."""
    for windows, cause in ((None, ErrCause.WINDOW), ("all", ErrCause.AXI_READ)):
        errs = []
        for dev in pair:
            with pytest.raises(DeviceError) as ei:
                dev.run(0x200, windows=windows)
            errs.append((ei.value, dev.read_csr("ERR_ADDR")))
        assert [(e.err_cause, e.err_pc, e.pc, a) for e, a in errs] == \
            [(cause, 0x200, 0x200, 0x200 if cause == ErrCause.WINDOW else 0)] * 2


# ---------------------------------------------------------------------------
# bounded runs: budget, watchdog
# ---------------------------------------------------------------------------

FOREVER = asm("""
    C_LOOPI 32767, @e
      C_LOOPI 32767, @e
        C_LOOPI 32767, @e
          S_ADDI x1, x1, 1
e:  C_HALT""")


def test_budget_then_busy_then_reset(pair):
    for dev in pair:
        w = World(dev, FOREVER)
        with pytest.raises(DeviceError) as ei:
            dev.run(w.prog, timeout=20_000)
        e = ei.value
        assert e.reason == "budget" and e.status & csr.mask("STATUS", "BUSY") and e.err_cause is None
        assert e.elapsed == 20_000, e
        assert w.prog.addr <= e.pc < w.prog.addr + 20
        assert f"budget of 20000 {dev.budget_unit}" in str(e)
        with pytest.raises(DeviceError, match="still running") as ei:
            dev.run(w.prog)
        assert ei.value.reason == "busy"
        dev.reset()
        assert dev.read_csr("STATUS") == 0
        w2 = World(dev, asm("S_ADDI x1, x0, 3", "S_ST_INT x1, x0, 0", "S_LD_ARG x2, 1", "S_ADDI x3, x0, 1",
                            "H_STORE_INT x0, x2, x3", "C_HALT"))
        dev.run(w2.prog, args=w2.args)
        assert w2.out.read(4) == b"\x03\x00\x00\x00"
    assert "detail:" in str(e) and "reads: 0 burst(s)" in str(e)        # the verilator one: bus idle


@pytest.mark.parametrize("stall", ["reads", "writes"])
def test_watchdog_on_a_stalled_dram(vdev, stall):
    """The DRAM stops answering: the watchdog (no retire, no AXI4 handshake) ends the run
    long before the budget, with the bus state in the report; clearing the switch and a
    SOFT_RESET bring the device back."""
    prog = asm("S_LD_ARG x1, 0", "S_LD_ARG x2, 1", "S_ADDI x3, x0, 1024", "H_LOAD_INT x0, x1, x3",
               "H_STORE_INT x0, x2, x3", "C_HALT")
    w = World(vdev, prog)
    vdev.set_dram(**{f"stall_{stall}_after": 40 if stall == "reads" else 1})
    with pytest.raises(DeviceError) as ei:
        vdev.run(w.prog, args=w.args, timeout=10_000_000, watchdog=3000)
    e = ei.value
    assert e.reason == "watchdog", e
    assert e.elapsed < 10_000, e
    assert e.status & csr.mask("STATUS", "BUSY")
    text = str(e)
    assert "watchdog stopped the run" in text and f"{stall} are stalled: stall_{stall}_after ran out" in text
    pending = r"reads: [1-9]\d* burst\(s\) accepted" if stall == "reads" else r"[1-9]\d* B response\(s\) pending"
    assert re.search(pending, text), text
    vdev.set_dram(**{f"stall_{stall}_after": -1})
    vdev.reset()
    vdev.run(w.prog, args=w.args, timeout=1_000_000, watchdog=3000)
    assert w.out.read(4096) == w.inp.read(4096)


def test_watchdog_recovery_by_hard_reset(vdev):
    w = World(vdev, asm("S_LD_ARG x1, 0", "S_ADDI x3, x0, 512", "H_LOAD_INT x0, x1, x3", "C_HALT"))
    vdev.set_dram(stall_reads_after=0)
    with pytest.raises(DeviceError, match="watchdog"):
        vdev.run(w.prog, args=w.args, watchdog=500)
    vdev.set_dram(stall_reads_after=-1)
    vdev.reset(hard=True)                              # rst_n: in-flight bursts dropped
    assert vdev.counters()["CYCLES"] < 50
    assert vdev.run(w.prog, args=w.args, watchdog=500).outcome == "halted"


def test_a_long_top_k_is_progress_not_a_hang(pair):
    """V_TOPK_MASK over n = 400 words works n(n+2)+1 = 160 801 cycles before it retires,
    with no bus traffic: past the default 100 000-cycle watchdog. Its mask writes (one per
    n + 2 cycles, the sram_write port) are progress, so it runs to the emulator's result."""
    n = 400
    prog = asm("S_LD_ARG x1, 0", "S_LD_ARG x2, 1", f"S_ADDI x3, x0, {n}", "H_LOAD_FP x0, x1, x3",
               "S_ADDI x4, x0, 37", "V_TOPK_MASK x0, x0, x4, x3", "H_STORE_INT x0, x2, x3", "C_HALT")
    e, v = pair
    assert v.watchdog == 100_000
    results = run_both(pair, prog)
    assert_same_halt(results, "top-k of 400")
    (_, _), (wv, rv) = results
    assert rv.cycles > n * (n + 2) > v.watchdog, rv.cycles
    mask = np.frombuffer(wv.out.read(4 * n), "<u4")
    assert mask.sum() == 37, mask.sum()


# ---------------------------------------------------------------------------
# waveforms
# ---------------------------------------------------------------------------

def _fst_times(path: Path) -> tuple[int, int, int]:
    """(start, end, number of variables) from an FST file's header block."""
    d = path.read_bytes()[:57]
    assert d[0] == 0, "not an FST header block"
    start, end = struct.unpack(">QQ", d[9:25])
    (nvars,) = struct.unpack(">Q", d[49:57])
    return start, end, nvars


def test_waveform_whole_run_and_from_cycle(vdev, tmp_path):
    prog = vdev.load("S_ADDI x1, x0, 5\nC_LOOPI 100, @e\nS_ADDI x1, x1, 1\ne: C_HALT")
    vdev.run(prog)
    assert not list(tmp_path.iterdir()) and vdev.model.get("wave_open") == 0   # off unless asked
    full, late = tmp_path / "full.fst", tmp_path / "sub" / "late.fst"
    t = vdev.model.cycle                                # what run() spends programming the windows
    for _ in range(3 * csr.REGS["WIN_BASE"].count):
        vdev.write_csr("WIN_BASE3", 0)                  # unused by these runs
    setup = vdev.model.cycle - t
    c0 = vdev.model.cycle
    a = vdev.run(prog, wave=full)
    b = vdev.run(prog, wave=late, wave_from=150)
    assert vdev.model.get("wave_open") == 0
    s0, e0, nv = _fst_times(full)
    s1, e1, _ = _fst_times(late)
    assert nv > 100                                     # every signal of the design
    assert a.cycles == b.cycles
    assert c0 * PERIOD_PS < s0 <= (c0 + setup + 10) * PERIOD_PS  # starts as the run starts
    assert abs((e0 - s0) - a.cycles * PERIOD_PS) <= 10 * PERIOD_PS
    assert abs(((e0 - s0) - (e1 - s1)) - 150 * PERIOD_PS) <= 2 * PERIOD_PS
    assert full.stat().st_size > 1000 and late.stat().st_size < full.stat().st_size


# ---------------------------------------------------------------------------
# DRAM model, counters, resets
# ---------------------------------------------------------------------------

LOAD_HEAVY = asm(["S_LD_ARG x1, 0", "S_LD_ARG x2, 1", "S_ADDI x3, x0, 1024",
                  "C_LOOPI 4, @e", "H_LOAD_INT x0, x1, x3", "e: H_STORE_INT x0, x2, x3", "C_HALT"])


def test_dram_latency_and_bandwidth(model):
    cycles = {}
    outs = set()
    for name, knobs in {"profile": {}, "latency200": {"read_latency": 200},
                        "bw1": {"bytes_per_cycle": 1}}.items():
        with _open("verilator", **knobs) as d:
            w = World(d, LOAD_HEAVY)
            info = d.run(w.prog, args=w.args)
            cycles[name] = info.counters["BUSY_CYCLES"]
            outs.add(w.out.read(4096))
            assert info.counters["RD_BYTES"] == info.counters["RD_BEATS"] * BB
            if name == "profile":
                k = d.dram()
                assert (k["read_latency"], k["bytes_per_cycle"], k["write_latency"]) == \
                    (SIM.memory.read_latency, SIM.memory.bytes_per_cycle, SIM.memory.read_latency)
                assert k["r"] == info.counters["RD_BEATS"] and k["w"] == info.counters["WR_BEATS"]
    assert len(outs) == 1
    assert cycles["latency200"] > cycles["profile"] + 4 * 150, cycles
    # H_LOAD_INT takes a word (4 bytes) a cycle: at 1 byte a cycle each of the 4 x 256 beats
    # read (and as many written) takes 16 cycles instead of 4
    assert cycles["bw1"] > cycles["profile"] + 4 * 256 * 8, cycles


def test_map_and_host_access_rules(vdev):
    m = vdev.model
    with pytest.raises(cosim.CosimError, match="beats"):
        m.map(0x2000_0008, 64)
    with pytest.raises(cosim.CosimError, match="not mapped"):
        m.read(0x100, 4)
    with pytest.raises(cosim.CosimError, match="unknown knob"):
        m.set("latency", 3)
    with pytest.raises(TypeError, match="unknown DRAM knob"):
        vdev.set_dram(latency=3)
    m.map(0x2000_0000, 64)
    m.map(0x2000_0040, 64)                                # adjacent regions merge
    m.write(0x2000_0030, b"x" * 32)
    assert m.read(0x2000_0030, 34) == b"x" * 32 + b"\0\0"


def test_counters_and_soft_vs_hard_reset(pair):
    e, v = pair
    res = run_both(pair, prog_loops())
    assert_same_halt(res, "loops")
    c = v.counters()
    info = res[1][1]
    assert c["INSTRET"] == e.counters()["INSTRET"] == info.instret
    assert c["CYCLES"] >= c["BUSY_CYCLES"] > c["INSTRET"] * 2 - 1
    assert c["STALL_FETCH"] + c["STALL_MEM_RD"] + c["STALL_MEM_WR"] <= c["BUSY_CYCLES"]
    assert abs(info.cycles - c["BUSY_CYCLES"]) < 40
    v.reset()                                             # SOFT_RESET keeps the counters
    assert v.counters()["INSTRET"] == c["INSTRET"]
    v.reset(hard=True)
    assert v.counters()["INSTRET"] == 0


def test_two_models_in_one_process(model):
    with _open("verilator") as a, _open("verilator") as b:
        ba, bb = a.alloc(64), b.alloc(64)
        assert ba.addr == bb.addr
        ba.write(b"A" * 64)
        assert bb.read() == bytes(64)


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["pynq-z2", "zcu104", "asic-2048"])
def test_other_profiles_match_emu(model, profile):
    """The harness at other bus widths (64-bit data; 512-bit data with 40-bit addresses):
    one model build per profile, so `make test-slow` only."""
    with rt.open("verilator", config=profile, stress_seed=3) as v, rt.open("emu", config=profile) as e:
        assert v.info["harness"].startswith(f"profile={profile} ")
        for name in ("loops", "fp_moves", "transfers"):
            assert_same_halt(run_both((e, v), PROGRAMS[name]()), f"{profile} {name}")
        assert_same_halt(run_both((e, v), prog_random(3), seed=3), f"{profile} random")
        assert v.dram()["protocol_errors"] == 0, v.describe()


# ---------------------------------------------------------------------------
# speed
# ---------------------------------------------------------------------------

def test_long_integer_program_cycles_per_second(vdev, capsys):
    """A long scalar loop nest (~3M cycles): the result is checked against Python, the
    simulated cycles/s is printed (not asserted: the benchmark script compares later)."""
    outer, inner = 1000, 500
    prog = vdev.load(f"""
        S_LD_ARG x1, 0
        S_ADDI x2, x0, 0
        S_ADDI x5, x0, 7
        C_LOOPI {outer}, @o
          S_ADDI x3, x3, 1
          C_LOOPI {inner}, @i
            S_ADD x2, x2, x5
            S_MUL x6, x2, x5
            S_SRLI x7, x6, 3
            S_SUB x5, x7, x3
    i:    S_ADDI x4, x4, 1
    o:  S_ST_INT x2, x0, 0
        S_ST_INT x5, x0, 1
        S_ADDI x4, x0, 2
        H_STORE_INT x0, x1, x4
        C_HALT""")
    out = vdev.alloc(64)
    info = vdev.run(prog, args=[out], timeout=20_000_000)
    x2, x3, x5 = 0, 0, 7
    for _ in range(outer):
        x3 += 1
        for _ in range(inner):
            x2 = (x2 + x5) & M32
            x5 = ((((x2 * x5) & M32) >> 3) - x3) & M32
    assert np.frombuffer(out.read(8), "<u4").tolist() == [x2, x5]
    assert info.instret == 4 + outer * (3 + 4 * inner) + 5
    with capsys.disabled():
        print(f"\n[cosim] {info.cycles} cycles ({info.instret} instructions) in {info.wall_s:.2f} s: "
              f"{info.cycles_per_s / 1e6:.2f} M simulated cycles/s")
