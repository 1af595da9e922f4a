"""`dnpu bench`: forward and sampling times of a generation, NPU cycles, the projection (dnpu.bench)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dnpu import runtime
from dnpu.cli.common import (UsageError, add_serial_args, atomic_output, command, non_negative, one_of, output_file,
                             positive, progress_bar, write_json)
from dnpu.cli.gen import add_schedule_args
from dnpu.compiler import FLOWS


def _cmd_bench(args: argparse.Namespace) -> int:
    from dnpu import bench

    if args.plot and not Path(args.plot).suffix:
        raise UsageError(f"--plot {args.plot}: give the chart's format as the file extension, e.g. .png")
    if args.forward == "npu":
        return _bench_forward(args)
    if args.kv_format != "bf16":
        raise UsageError("--kv-format applies to --forward npu (the host bench keeps the cache in bf16)")
    flows = tuple(f.strip() for f in args.flows.split(",") if f.strip())
    with progress_bar("bench", quiet=args.quiet, unit="stage") as bar:
        r = bench.run(args.model, backend=args.backend, prompts=args.prompts, config=args.config,
                      project_config=args.project_config, flows=flows, gen_length=args.gen_length,
                      block_length=args.block_length, steps=args.steps, threshold=args.threshold,
                      kv_cache=args.kv_cache, fmt=args.fmt, compile=not args.no_compile, reps=args.reps,
                      seed=args.seed, device=args.device, dtype=args.dtype, threads=args.threads, progress=bar)
    print(bench.format_table(r))
    write_json(args.json, r)
    if args.plot:
        with atomic_output(args.plot) as tmp:
            bench.plot(r, tmp)
        print(f"plot: {args.plot}")
    if not r["tokens_match"]:
        print(f"dnpu bench: FAILED: {args.backend} tokens differ from the torch sampler: {r['token_mismatches']}",
              file=sys.stderr)
        return 1
    return 0


def _bench_forward(args: argparse.Namespace) -> int:
    from dnpu.bench.step import format_forward_table, plot_forward, run_forward

    with progress_bar("bench --forward npu", quiet=args.quiet, unit="stage") as bar:
        r = run_forward(args.model, backend=args.backend, prompts=args.prompts, config=args.config,
                        weights_fmt=args.weights_fmt, reps=args.reps, seed=args.seed, threads=args.threads or 1,
                        kv_cache=args.kv_cache, kv_format=args.kv_format, progress=bar)
    print(format_forward_table(r))
    write_json(args.json, r)
    if args.plot:
        with atomic_output(args.plot) as tmp:
            plot_forward(r, tmp)
        print(f"plot: {args.plot}")
    return 0


_BACKEND = "verilator"      # the default: cycles of the RTL


def register(sub) -> None:
    s = command(sub, "bench", _cmd_bench, "time a generation: PyTorch forward and sampling vs NPU cycles, and "
                                          "the asic-2048 projection (table, --json, --plot)")
    s.add_argument("--backend", default=_BACKEND, help=f"NPU backend: {_BACKEND} (default), "
                   f"{one_of(b for b in runtime.BACKENDS if b != _BACKEND)}")
    add_serial_args(s)
    s.add_argument("--model", help="model directory (default: the shipped tiny model models/tiny-add)")
    s.add_argument("--prompts", type=positive, default=4, help="held-out prompts of the model's task, one batch "
                                                          "(default 4)")
    add_schedule_args(s)
    s.add_argument("--forward", default="host", choices=("host", "npu"),
                   help="host: the model forward in PyTorch, the sampling on the NPU (default); npu: the whole "
                        "step on the NPU, its cycles split by kind of work")
    s.add_argument("--weights-fmt", dest="weights_fmt", default="e4m3", help="with --forward npu: MX format of "
                                                                             "the linear weights")
    s.add_argument("--flows", default=",".join(FLOWS), help="NPU flows, comma-separated (default %(default)s)")
    s.add_argument("--fmt", default="e4m3", help="MX format of the logits")
    s.add_argument("--config", default="sim", help="hardware profile the NPU backend runs (default sim)")
    s.add_argument("--project-config", dest="project_config", default="asic-2048",
                   help="profile of the analytical projection (default asic-2048)")
    s.add_argument("--reps", type=positive, default=20, help="timed repetitions per step, median (default 20)")
    s.add_argument("--no-compile", dest="no_compile", action="store_true", help="skip torch.compile")
    s.add_argument("--seed", type=non_negative, default=0, help="seed of the held-out prompt draw")
    s.add_argument("--dtype", default="bf16", help="model dtype: bf16 (default) or fp32")
    s.add_argument("--device", help="torch device of the model (default: cuda when available, else cpu)")
    s.add_argument("--threads", type=positive, help="torch CPU threads (default: 1 for a model on the CPU, where "
                                               "the tiny model gains nothing from more; else torch's)")
    s.add_argument("--json", type=output_file, help="write the full result to this file")
    s.add_argument("--plot", type=output_file, help="write a PNG chart to this file")
    s.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
