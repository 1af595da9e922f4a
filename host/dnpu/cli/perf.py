"""`dnpu check-perf` and `dnpu project` (issue 7): the analytical performance model on the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _progress(label: str):
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        print(f"\r{label}: {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)
    return show


def _cmd_check_perf(args: argparse.Namespace) -> int:
    from dnpu.verify import perf as check

    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    r = check.check_perf(configs, modes=tuple(args.modes.split(",")), flows=tuple(args.flows.split(",")),
                         fmt=args.fmt, seed=args.seed, progress=_progress("check-perf"))
    text = json.dumps(r, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(f"{'config':<8} {'B':>2} {'L':>3} {'V':>6} {'mode':<9} {'flow':<6} {'rtl':>9} {'model':>9} "
          f"{'err%':>7} {'bound':>9} {'rtl/bound':>9}")
    for p in r["points_detail"]:
        print(f"{p['config']:<8} {p['B']:>2} {p['L']:>3} {p['V']:>6} {p['mode']:<9} {p['flow']:<6} "
              f"{p['rtl_cycles']:>9} {p['model_cycles']:>9} {p['error_pct']:>7.3f} {p['bound_cycles']:>9.0f} "
              f"{p['rtl_over_bound']:>9.3f}")
    for s in r["skipped"]:
        print(f"skipped {s['config']} B={s['B']} L={s['L']} V={s['V']} {s['flow']}: {s['why'][:90]}")
    print(f"points {r['points']}, max |error| {r['max_abs_error_pct']:.3f}% (allowed {r['max_error_allowed_pct']}%)")
    for c, fl in r["rtl_over_bound_v_ge_4096"].items():
        for flow, v in fl.items():
            print(f"{c} {flow}: RTL cycles / bound for V >= 4096: {v['min']:.3f} .. {v['max']:.3f}")
    if r["fused_sim_within_target"] is False:
        print(f"note: the fused flow on sim is above {r['fused_sim_target']}x the bound (see docs/PERF.md)")
    if not r["ok"]:
        print(f"dnpu check-perf: FAILED: model error {r['max_abs_error_pct']}% > {r['max_error_allowed_pct']}%",
              file=sys.stderr)
        return 1
    return 0


def _cmd_project(args: argparse.Namespace) -> int:
    from dnpu.perf import project

    p = project.projection(args.config, B=args.B, L=args.L, V=args.V, mode=args.mode, fmt=args.fmt,
                           gpu=not args.no_gpu, gpu_iters=args.gpu_iters)
    if args.json:
        Path(args.json).write_text(json.dumps(p, indent=2) + "\n")
    print(project.format_table(p))
    return 0


def add_commands(sub) -> None:
    s = sub.add_parser("check-perf", help="the analytical cycle model against Verilator RTL cycles on a grid "
                                          "of sampling steps (exit 1 above 5%% error)")
    s.add_argument("--configs", default="sim,pynq-z2", help="comma-separated profiles (default: sim,pynq-z2)")
    s.add_argument("--modes", default="topk,threshold", help="commit modes (default: topk,threshold)")
    s.add_argument("--flows", default="phased,fused", help="flows (default: phased,fused)")
    s.add_argument("--fmt", default="e4m3", help="MX format of the logits")
    s.add_argument("--seed", type=int, default=0, help="random seed of the logits")
    s.add_argument("--json", help="write the summary and every point to this file")
    s.set_defaults(func=_cmd_check_perf)

    s = sub.add_parser("project", help="analytical sampling latency at LLaDA-8B scale beside the paper and a GPU")
    s.add_argument("--config", default="asic-2048", help="hardware profile (default: asic-2048)")
    s.add_argument("--B", type=int, default=16, help="batch rows (default 16)")
    s.add_argument("--L", type=int, default=32, help="positions per row (block length, default 32)")
    s.add_argument("--V", type=int, default=126464, help="vocabulary (default 126464, LLaDA-8B)")
    s.add_argument("--mode", default="topk", choices=("topk", "threshold"), help="commit mode")
    s.add_argument("--fmt", default="e4m3", help="MX format of the logits")
    s.add_argument("--no-gpu", action="store_true", help="skip the GPU timing even when CUDA is available")
    s.add_argument("--gpu-iters", type=int, default=50, help="timed GPU iterations (median)")
    s.add_argument("--json", help="also write the projection to this file")
    s.set_defaults(func=_cmd_project)
