"""Bring-up self-test of one NPU (`dnpu board selftest`): the checks a freshly built board
(or a co-simulation, or the emulator) must pass before anything else is run on it.

Each check is a function returning a :class:`Result` (name, passed, a one-line detail, the
measured values), so that the command line only formats them:

- ``identity``: ID, ISA_VERSION and CONFIG_HASH against hw/csr.toml, hw/isa.toml and the profile;
- ``memory``: walking-ones, walking-zeros and address-in-address patterns written by the host
  into one buffer, copied by the NPU's own DMA (H_LOAD_INT into the int SRAM, H_STORE_INT out to
  a second buffer pre-filled with the complement, so a write that never lands shows) and
  compared bit for bit; then each word's address computed and written by the NPU alone, so
  that an address fault of the host's path cannot cancel itself out;
- ``sampling``: one random sampling step on the backend against the emulator, bit for bit, and
  its argmax against the float64 reference;
- ``counters``: the performance counters after each memory run against what the run moved.

:func:`selftest` runs them all; a check that raises (a device fault, a heap too small) fails
with the exception's first line and the others still run.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from dnpu import runtime
from dnpu.spec import config as config_mod
from dnpu.spec import csr, isa
from dnpu.spec.config import Config

__all__ = ["Result", "CHECKS", "DEFAULT_BYTES", "PATTERNS", "selftest", "check_identity", "check_memory",
           "check_sampling", "check_counters", "copy_program", "address_program", "MemoryRun", "patterns", "first_line"]

DEFAULT_BYTES = 64 * 1024
PATTERNS = ("walking-ones", "walking-zeros", "address")
CHECKS = ("identity", "memory", "sampling", "counters")


@dataclasses.dataclass
class Result:
    """One check: `values` holds what was measured (JSON-ready ints, strings, lists)."""
    name: str
    passed: bool
    detail: str
    values: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


# --------------------------------------------------------------------------- identity


def check_identity(dev: runtime.Device) -> Result:
    """ID, ISA_VERSION and CONFIG_HASH as the device reports them, against the tables."""
    want = {"ID": csr.ID_MAGIC, "ISA_VERSION": isa.VERSION_WORD, "CONFIG_HASH": dev.expect_config.config_hash32}
    got = {name: dev.read_csr(name) for name in want}
    bad = [n for n in want if got[n] != want[n]]
    values = {n: {"device": f"0x{got[n]:08X}", "expected": f"0x{want[n]:08X}"} for n in want}
    if bad:
        return Result("identity", False, "; ".join(f"{n} 0x{got[n]:08X} != expected 0x{want[n]:08X}" for n in bad),
                      values)
    v = got["ISA_VERSION"]
    return Result("identity", True, f"ID 0x{got['ID']:08X}, ISA {v >> 16}.{v & 0xFFFF}, CONFIG_HASH "
                                    f"0x{got['CONFIG_HASH']:08X} ({dev.expect_config.label})", values)


def _identity_from_attach(e: runtime.AttachError) -> Result:
    """The identity check of a device that open() refused (AttachError names the field)."""
    field = getattr(e, "field", None)
    values = {}
    if field:
        values[field] = {"device": f"0x{e.device_value:08X}", "expected": f"0x{e.expected_value:08X}"}
    return Result("identity", False, str(e).splitlines()[0], values)


# --------------------------------------------------------------------------- memory


def patterns(name: str, words: int, base: int) -> np.ndarray:
    """Pattern `name` as `words` little-endian 32-bit words; "address" puts each word's own
    device address (from `base`) in it, so aliased address lines show as wrong values."""
    i = np.arange(words, dtype=np.uint64)
    if name == "walking-ones":
        return (np.uint64(1) << (i % 32)).astype(np.uint32)
    if name == "walking-zeros":
        return ~(np.uint64(1) << (i % 32)).astype(np.uint32)
    if name == "address":
        return ((base + 4 * i) & 0xFFFF_FFFF).astype(np.uint32)
    raise ValueError(f"unknown pattern {name!r}: use one of {', '.join(PATTERNS)}")


def copy_program(cfg: Config, words: int) -> tuple[str, int, int]:
    """Assembly copying `words` 32-bit words from ARG0 to ARG1 through the int SRAM in chunks of
    its depth (ARG2: the number of whole chunks), with the chunk size in words and the
    instructions it retires."""
    chunk = min(cfg.sram.int_words, words)
    full, rest = divmod(words, chunk)
    setup = ["S_LD_ARG x1, 0", "S_LD_ARG x2, 1", "S_LD_ARG x6, 2", *isa.load_imm(5, chunk),
             *isa.load_imm(7, 4 * chunk)]
    body = ["H_LOAD_INT x0, x1, x5", "H_STORE_INT x0, x2, x5", "S_ADD x1, x1, x7", "S_ADD x2, x2, x7"]
    tail = [*isa.load_imm(5, rest), "H_LOAD_INT x0, x1, x5", "H_STORE_INT x0, x2, x5"] if rest else []
    lines = setup + [f"C_LOOP x6, {len(body)}"] + body + tail + ["C_HALT"]
    instret = len(setup) + 1 + len(body) * full + len(tail) + 1
    return "\n".join(lines), chunk, instret


def address_program(cfg: Config, words: int) -> tuple[str, int, int]:
    """Assembly writing each of `words` 32-bit words from ARG0 on with its own address, the
    values computed by the NPU (so the host's write path plays no part): a chunk of the int
    SRAM at a time, ARG1 whole chunks. Returns it with the chunk size and the instructions
    it retires."""
    chunk = min(cfg.sram.int_words, words)
    full, rest = divmod(words, chunk)
    setup = ["S_LD_ARG x1, 0", "S_LD_ARG x6, 1", "S_ADDI x3, x1, 0", *isa.load_imm(5, chunk),
             *isa.load_imm(7, 4 * chunk)]
    fill = ["S_ST_INT x3, x4, 0", "S_ADDI x3, x3, 4", "S_ADDI x4, x4, 1"]

    def block(n_reg_setup: list[str]) -> list[str]:
        return [*n_reg_setup, "S_ADDI x4, x0, 0", f"C_LOOP x5, {len(fill)}", *fill, "H_STORE_INT x0, x1, x5"]

    body = block([]) + ["S_ADD x1, x1, x7"]
    tail = block(isa.load_imm(5, rest)) if rest else []
    lines = setup + [f"C_LOOP x6, {len(body)}"] + body + tail + ["C_HALT"]
    per_block = 3 + len(fill) * chunk
    instret = (len(setup) + 1 + full * (per_block + 1) +
               (len(isa.load_imm(5, rest)) + 3 + len(fill) * rest if rest else 0) + 1)
    return "\n".join(lines), chunk, instret


@dataclasses.dataclass
class MemoryRun:
    """One memory-test run that halted, for the counters check."""
    pattern: str
    info: Any                 # its RunInfo
    counters: dict[str, int]  # read right after it
    read_bytes: int           # data bytes the program reads
    written_bytes: int        # data bytes it writes
    instret: int              # instructions it retires


def _compare(dst, want: np.ndarray, fault: str | None) -> dict[str, Any]:
    got = np.frombuffer(dst.read(), dtype=np.uint32)
    diff = np.flatnonzero(got != want)
    rec: dict[str, Any] = {"passed": fault is None and not diff.size, "mismatched_words": int(diff.size)}
    if diff.size:
        i = int(diff[0])
        rec.update(first_mismatch=f"0x{dst.addr + 4 * i:08X}", offset=4 * i,
                   expected=f"0x{int(want[i]):08X}", got=f"0x{int(got[i]):08X}")
    if fault is not None:
        rec["fault"] = fault
    return rec


def _why(name: str, rec: dict) -> str:
    where = "no word wrong" if not rec["mismatched_words"] else (
        f"first mismatch at {rec['first_mismatch']} (offset {rec['offset']}: expected {rec['expected']}, "
        f"got {rec['got']}; {rec['mismatched_words']} words wrong)")
    return f"{name}: " + (f"{rec['fault']}; {where}" if "fault" in rec else where)


def check_memory(dev: runtime.Device, nbytes: int = DEFAULT_BYTES, runs: list | None = None) -> Result:
    """The patterns of :data:`PATTERNS` written by the host and copied by the NPU's DMA, then
    ``npu-address``: each word's address computed and written by the NPU alone. `runs` (a
    list) gets a :class:`MemoryRun` per run that halted."""
    nbytes = int(nbytes)
    if nbytes < 4 or nbytes % 4:
        raise ValueError(f"memory test size {nbytes} bytes: must be a positive multiple of 4")
    words = nbytes // 4
    src, dst = dev.alloc(nbytes, zero=False), dev.alloc(nbytes, zero=False)
    copy_text, chunk, copy_instret = copy_program(dev.config, words)
    addr_text, _, addr_instret = address_program(dev.config, words)
    copy, fill = dev.load(isa.assemble(copy_text)), dev.load(isa.assemble(addr_text))
    values: dict[str, Any] = {"bytes": nbytes, "src": f"0x{src.addr:08X}", "dst": f"0x{dst.addr:08X}",
                              "chunk_words": chunk, "patterns": {}, "bytes_moved": 0}
    jobs = [(name, patterns(name, words, dst.addr), copy, [src, dst, words // chunk], nbytes, copy_instret)
            for name in PATTERNS]
    jobs.append(("npu-address", patterns("address", words, dst.addr), fill, [dst, words // chunk], 0, addr_instret))
    try:
        for name, want, prog, args, reads, instret in jobs:
            if reads:
                src.write(want)
            dst.write(~want)        # a word the NPU never writes shows as wrong
            fault = None
            with dev.lock:          # the counters must be this run's
                try:
                    info = dev.run(prog, args=args)
                    if runs is not None:
                        runs.append(MemoryRun(name, info, dev.counters(), reads, nbytes, instret))
                    values["bytes_moved"] += reads + nbytes
                except runtime.DeviceError as e:
                    fault = str(e).splitlines()[0]
                    dev.reset()
            values["patterns"][name] = _compare(dst, want, fault)
    finally:
        for b in (copy, fill, src, dst):
            b.free()
    failures = [_why(n, rec) for n, rec in values["patterns"].items() if not rec["passed"]]
    if failures:               # the table shows the first; the values hold every pattern's record
        more = [n for n, rec in values["patterns"].items() if not rec["passed"]][1:]
        return Result("memory", False, failures[0] + (f" (also failed: {', '.join(more)})" if more else ""), values)
    return Result("memory", True, f"{len(PATTERNS)} patterns x {nbytes} bytes copied by the NPU's DMA and its own "
                                  f"address pattern written ({values['bytes_moved']} bytes moved), bit for bit",
                  values)


# --------------------------------------------------------------------------- sampling


def check_sampling(backend: str, cfg: Config, seed: int = 0, runs: list | None = None) -> Result:
    """One random top-k sampling step on `backend` against the emulator, bit for bit (tokens,
    argmax, confidences), and the argmax against the float64 reference. `runs` (a list) gets
    the backend's RunInfo of the step."""
    from dnpu import sampling

    rng = np.random.default_rng(seed)
    B, L = 2, 8
    V = 4 * int(np.lcm(cfg.mx.block, cfg.vector.vlen))
    logits = (rng.standard_normal((B, L, V)) * 3).astype(np.float32)
    mask = rng.random((B, L)) < 0.6
    mask[:, 0] = True
    x = rng.integers(0, V, (B, L))
    kw = dict(mask=mask, x=x, k=np.minimum(2, mask.sum(1)), block=cfg.mx.block, config=cfg)
    info: list = []
    got = sampling.transfer(logits, backend=backend, run_info=info, **kw)
    want = sampling.transfer(logits, backend="emu", **kw)
    ref = sampling.transfer(logits, backend="torch", **kw)
    if runs is not None:
        runs.extend(info)
    checks = {"x_new": np.array_equal(got.x_new, want.x_new), "x0": np.array_equal(got.x0, want.x0),
              "conf": np.array_equal(np.asarray(got.conf, np.float64).view(np.uint64),
                                     np.asarray(want.conf, np.float64).view(np.uint64)),
              "x0_vs_reference": np.array_equal(got.x0, ref.x0)}
    values = {"shape": [B, L, V], "seed": seed, **{k: bool(v) for k, v in checks.items()}}
    if info:
        values["instret"] = info[-1].instret
        values["cycles"] = info[-1].cycles
    bad = [k for k, v in checks.items() if not v]
    if bad:
        return Result("sampling", False, f"step [{B}, {L}, {V}] on {backend} differs: " + ", ".join(
            f"{k} (first at position {_first_diff(got, want, ref, k)})" for k in bad), values)
    return Result("sampling", True, f"step [{B}, {L}, {V}]: tokens, argmax and confidences equal the emulator's "
                                    f"bit for bit, argmax the reference's", values)


def _first_diff(got, want, ref, key: str) -> list[int]:
    if key == "x0_vs_reference":
        a, b = got.x0, ref.x0
    else:
        a, b = getattr(got, key), getattr(want, key)
        if key == "conf":
            a, b = np.asarray(a, np.float64).view(np.uint64), np.asarray(b, np.float64).view(np.uint64)
    return [int(i) for i in np.argwhere(a != b)[0]]


# --------------------------------------------------------------------------- counters


def check_counters(runs: list) -> Result:
    """Each memory run's counters against its program: INSTRET the instructions it retires, the
    bytes read and written at least its data bytes, CYCLES (a clocked backend) at least
    INSTRET; the sampling run's INSTRET nonzero."""
    mem = [r for r in runs if isinstance(r, MemoryRun)]
    if not mem:
        return Result("counters", False, "no memory run halted: nothing to check the counters against", {})
    problems, per_run = [], []
    for m in mem:
        cnt = m.counters
        clocked = "CYCLES" in cnt
        rd, wr = (cnt["RD_BYTES"], cnt["WR_BYTES"]) if clocked else (cnt["DATA_RD_BYTES"], cnt["DATA_WR_BYTES"])
        per_run.append({"pattern": m.pattern, **{k: int(v) for k, v in cnt.items()}})
        want = [("INSTRET", cnt["INSTRET"], "==", m.instret), ("bytes read", rd, ">=", m.read_bytes),
                ("bytes written", wr, ">=", m.written_bytes)]
        if clocked:
            want.append(("CYCLES", cnt["CYCLES"], ">=", max(1, cnt["INSTRET"])))
        for what, v, op, bound in want:
            if not (v == bound if op == "==" else v >= bound):
                problems.append(f"{m.pattern}: {what} {v}, expected {op} {bound}")
        if m.info.instret != cnt["INSTRET"]:
            problems.append(f"{m.pattern}: INSTRET {cnt['INSTRET']} != the run's {m.info.instret}")
    values: dict[str, Any] = {"memory_runs": per_run}
    for info in (r for r in runs if isinstance(r, runtime.RunInfo)):
        values["sampling_instret"] = info.instret
        if info.instret <= 0:
            problems.append("sampling: INSTRET 0 after a run that halted")
    if problems:
        return Result("counters", False, "; ".join(problems), values)
    c = mem[0].counters
    shown = ("CYCLES", "INSTRET", "RD_BEATS", "WR_BEATS") if "CYCLES" in c else \
        ("INSTRET", "DATA_RD_BYTES", "DATA_WR_BYTES", "FETCH_BYTES")
    return Result("counters", True, f"{len(mem)} memory runs consistent; {mem[0].pattern}: " +
                  ", ".join(f"{k} {c[k]}" for k in shown), values)


# --------------------------------------------------------------------------- all of them


def _guard(name: str, fn: Callable[[], Result]) -> Result:
    try:
        return fn()
    except Exception as e:     # a self-test reports every failure as a row, never a traceback
        return Result(name, False, first_line(e), {"error": type(e).__name__})


def _check_room(dev: runtime.Device, nbytes: int) -> None:
    """ValueError (the caller's mistake, not a failed check) when the device cannot hold the
    memory test's two buffers."""
    held = []
    try:
        for _ in range(2):
            held.append(dev.alloc(nbytes, zero=False))
    except MemoryError as e:
        raise ValueError(f"a memory test of {nbytes} bytes needs two buffers of that size; the {dev.backend} "
                         f"device has no room for them ({str(e).splitlines()[0]})") from e
    finally:
        for b in held:
            b.free()


def selftest(backend: str | None = None, config: str | Config = "sim", *, nbytes: int = DEFAULT_BYTES,
             seed: int = 0, device: runtime.Device | None = None, **open_kw) -> list[Result]:
    """Every check of :data:`CHECKS` on one device, in order. `device`: an open device to use
    (it stays open); else one is opened on `backend` with `open_kw` and closed at the end,
    before the sampling step (which opens its own)."""
    nbytes = int(nbytes)
    if nbytes < 4 or nbytes % 4:
        raise ValueError(f"--bytes {nbytes}: the memory test moves 32-bit words, give a positive multiple of 4")
    cfg = device.config if device is not None else \
        config if isinstance(config, Config) else config_mod.load(config)
    backend = device.backend if device is not None else runtime.backend_name(backend)
    runs: list = []
    results: dict[str, Result] = {}
    dev = device
    try:
        if dev is None:
            try:
                dev = runtime.open(backend, config=cfg, **open_kw)
            except runtime.AttachError as e:
                results["identity"] = _identity_from_attach(e)
            except runtime.DeviceError as e:
                if e.reason == "attach":    # no board build, an unreadable .hwh: the setup's mistake
                    raise
                results["identity"] = Result("identity", False, first_line(e), {"error": type(e).__name__})
        if dev is not None:
            _check_room(dev, nbytes)
            results["identity"] = _guard("identity", lambda: check_identity(dev))
            results["memory"] = _guard("memory", lambda: check_memory(dev, nbytes, runs))
        else:
            results["memory"] = Result("memory", False, "not run: the device did not open", {})
    finally:
        if device is None and dev is not None:
            dev.close()
    results["sampling"] = _guard("sampling", lambda: check_sampling(backend, cfg, seed, runs))
    results["counters"] = _guard("counters", lambda: check_counters(runs))
    return [results[n] for n in CHECKS]
