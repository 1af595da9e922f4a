"""The checks (dnpu.verify): `dnpu check-sampling`, `check-lockstep`, `check-perf`,
`check-generate` and `eval`. A check that runs and finds a difference exits 1."""

from __future__ import annotations

import argparse
import sys

from dnpu.cli.common import (UsageError, add_serial_args, command, env_backend, name_list, non_negative, note,
                             output_file, positive, print_json, progress_bar, write_json)
from dnpu.cli.gen import add_model_args, dtype_name, gen_settings, load_model, model_task
from dnpu.compiler import FLOWS, MODES
from dnpu.runtime import DEFAULT_BACKEND


def _fail(cmd: str, why: str) -> int:
    print(f"dnpu {cmd}: FAILED: {why}", file=sys.stderr)
    return 1


def _cmd_check_sampling(args: argparse.Namespace) -> int:
    from dnpu.verify import sampling

    with progress_bar(f"check-sampling {args.backend}", unit="case") as bar:
        r = sampling.check_sampling(args.backend, cases=args.cases, seed=args.seed, config=args.config,
                                    fmt=args.fmt, progress=bar, max_B=args.max_batch, max_L=args.max_len,
                                    max_V=args.max_vocab)
    print_json(r)
    write_json(args.json, r)
    if r["token_mismatches"] or r["bound_violations"]:
        return _fail("check-sampling", f"{r['token_mismatches']} token mismatches, {r['bound_violations']} "
                                       f"confidence-bound violations; first: {r['first_failure']}")
    return 0


def _cmd_check_lockstep(args: argparse.Namespace) -> int:
    from dnpu.runtime.cosim import CosimError
    from dnpu.verify import lockstep

    printed = []

    def on_mismatch(m) -> None:
        if not printed:                       # the first diverging instruction, in full
            note(m.text)
        printed.append(m)

    try:
        with progress_bar("check-lockstep", unit="program") as bar:
            r = lockstep.check_lockstep(args.programs, args.seed, args.config,
                                        faults=0.0 if args.no_faults else 0.3, stress_every=args.stress_every,
                                        progress=bar, on_mismatch=on_mismatch)
    except CosimError as e:              # the model cannot be built or loaded
        raise UsageError(str(e)) from e
    print_json({k: r[k] for k in ("programs", "mismatches", "cycles", "instructions", "outcomes", "wall_s")})
    write_json(args.json, r)
    if r["mismatches"]:
        return _fail("check-lockstep", f"{r['mismatches']} of {r['programs']} programs diverge "
                                       f"(seed {args.seed}); the first is above")
    return 0


def _print_check_perf(r: dict) -> None:
    print(f"{'config':<8} {'B':>2} {'L':>3} {'V':>6} {'mode':<9} {'flow':<6} {'rtl':>9} {'model':>9} "
          f"{'err%':>7} {'bound':>9} {'rtl/bound':>9}")
    linear = [p for p in r["points_detail"] if p.get("kind") == "linear"]
    for p in r["points_detail"]:
        if p.get("kind") != "linear":
            print(f"{p['config']:<8} {p['B']:>2} {p['L']:>3} {p['V']:>6} {p['mode']:<9} {p['flow']:<6} "
                  f"{p['rtl_cycles']:>9} {p['model_cycles']:>9} {p['error_pct']:>7.3f} {p['bound_cycles']:>9.0f} "
                  f"{p['rtl_over_bound']:>9.3f}")
    if linear:
        print(f"{'config':<8} {'linear M x N x K':>22} {'res':>4} {'rtl':>9} {'model':>9} {'err%':>7} {'MAC/cyc':>8}")
        for p in linear:
            print(f"{p['config']:<8} {p['M']:>6} x {p['N']:>5} x {p['K']:>5} {'yes' if p['residual'] else 'no':>4} "
                  f"{p['rtl_cycles']:>9} {p['model_cycles']:>9} {p['error_pct']:>7.3f} {p['macs_per_cycle']:>8.2f}")
    kernels = r.get("kernel_points_detail", [])
    if kernels:
        print(f"{'config':<8} {'kernel':<10} {'shape':<22} {'rtl':>9} {'model':>9} {'err%':>7}")
        for p in kernels:
            shape = ("x".join(str(v) for v in p["shape"]) if p.get("shape")
                     else f"T={p.get('T')} d={p.get('d_model')} L={p.get('n_layers')}")
            print(f"{p['config']:<8} {p['kernel']:<10} {shape:<22} {p['rtl_cycles']:>9} {p['model_cycles']:>9} "
                  f"{p['error_pct']:>7.3f}")
    for s in r.get("kernel_skipped", []):
        print(f"skipped {s['config']} {s['kernel']} {s.get('shape', '')}: {s['why'][:90]}")
    for s in r["skipped"]:
        what = (f"linear {s['M']}x{s['N']}x{s['K']}" if s.get("kind") == "linear"
                else f"B={s['B']} L={s['L']} V={s['V']} {s['flow']}")
        print(f"skipped {s['config']} {what}: {s['why'][:90]}")
    print(f"points {r['points']}, max |error| {r['max_abs_error_pct']:.3f}% (allowed {r['max_error_allowed_pct']}%)")
    for c, fl in r["rtl_over_bound_v_ge_4096"].items():
        for flow, v in fl.items():
            print(f"{c} {flow}: RTL cycles / bound for V >= 4096: {v['min']:.3f} .. {v['max']:.3f}")
    if r["fused_sim_within_target"] is False:
        print(f"note: the fused flow on sim is above {r['fused_sim_target']}x the bound (see docs/PERF.md)")


def _cmd_check_perf(args: argparse.Namespace) -> int:
    from dnpu.verify import perf

    configs = name_list(args.configs, "--configs")
    modes = tuple(name_list(args.modes, "--modes", MODES))
    flows = tuple(name_list(args.flows, "--flows", FLOWS))
    with progress_bar("check-perf", unit="point") as bar:
        r = perf.check_perf(configs, modes=modes, flows=flows, fmt=args.fmt, seed=args.seed, progress=bar)
    _print_check_perf(r)
    write_json(args.json, r)
    if not r["ok"]:
        return _fail("check-perf", f"model error {r['max_abs_error_pct']}% > {r['max_error_allowed_pct']}%")
    return 0


def _model_and_task(args: argparse.Namespace):
    """(model, tokenizer, task name, generation settings) of a command that runs held-out problems."""
    model, tok, info = load_model(args)
    task = model_task(args, info)
    return model, tok, task, gen_settings(args, info, task)


def _cmd_eval(args: argparse.Namespace) -> int:
    from dnpu.verify.generation import evaluate

    model, tok, task, settings = _model_and_task(args)
    with progress_bar(f"eval {task}", unit="problem") as bar:
        r = evaluate(model, tok, task, problems=args.problems, seed=args.seed, batch=args.batch,
                     sampler=args.backend, progress=bar, **settings)
    r = {"task": r["task"], "problems": r["problems"], "exact_match": r["exact_match"], "correct": r["correct"],
         "backend": args.backend, "dtype": dtype_name(model), "settings": settings | {"seed": args.seed},
         "failures": r["failures"]}
    print(f"{r['task']}: exact match {r['exact_match']:.4f} ({r['correct']}/{r['problems']}) "
          f"sampler {args.backend}, {r['dtype']}, gen_length {settings['gen_length']} "
          f"block_length {settings['block_length']} steps {settings['steps']} kv_cache {settings['kv_cache']}"
          + (f" kv_format {settings['kv_format']}" if settings["kv_format"] != "bf16" else "")
          + (f" threshold {settings['threshold']}" if settings["threshold"] is not None else ""))
    write_json(args.json, r)
    return 0


def _cmd_check_generate(args: argparse.Namespace) -> int:
    from dnpu.verify.generation import check_generate

    model, tok, task, settings = _model_and_task(args)
    with progress_bar(f"check-generate {args.backend}", unit="prompt") as bar:
        r = check_generate(model, tok, task, args.backend, prompts=args.prompts, seed=args.seed,
                           batch=args.batch, progress=bar, **settings)
    r["settings"] = settings | {"seed": args.seed}
    print_json(r)
    write_json(args.json, r)
    if r.get("forward") == "npu":
        if r["token_mismatches"]:
            return _fail("check-generate", f"the NPU forward on {args.backend}: {r['npu_vs_emu_mismatches']} "
                                           f"tokens differ from the emulator's, {r['unexplained']} commits differ "
                                           f"from the PyTorch reference's beyond a near-tie; first: "
                                           f"{r['first_mismatch']}")
        return 0
    if r["token_mismatches"]:
        return _fail("check-generate", f"{r['token_mismatches']} generated tokens differ between "
                                       f"{args.backend} and torch in {r['rows_differing']} of {r['prompts']} "
                                       f"prompts; first: {r['first_mismatch']}")
    return 0


def register(sub) -> None:
    s = command(sub, "check-sampling", _cmd_check_sampling,
                "random sampling steps on a backend against the torch reference")
    s.add_argument("--backend", default=env_backend(), help=f"NPU backend to check (default: $DNPU_BACKEND or {DEFAULT_BACKEND})")
    add_serial_args(s)
    s.add_argument("--cases", type=positive, default=100, help="random steps to run")
    s.add_argument("--seed", type=non_negative, default=0, help="random seed (runs are reproducible)")
    s.add_argument("--config", default="sim", help="hardware profile")
    s.add_argument("--fmt", default="e4m3", help="MX format of the logits")
    s.add_argument("--max-batch", dest="max_batch", type=positive, default=4, help="largest batch drawn (default 4)")
    s.add_argument("--max-len", dest="max_len", type=positive, default=64,
                   help="largest sequence length drawn (default 64)")
    s.add_argument("--max-vocab", dest="max_vocab", type=positive, default=8192,
                   help="largest vocabulary drawn, rounded down to the profile's unit (default 8192; a small "
                        "board's memory or a slow serial link wants less)")
    s.add_argument("--json", type=output_file, help="also write the summary to this file")

    s = command(sub, "check-lockstep", _cmd_check_lockstep,
                "random programs on the RTL (Verilator) and the emulator, compared retire by retire")
    s.add_argument("--programs", type=positive, default=100, help="random programs to run (default 100)")
    s.add_argument("--seed", type=non_negative, default=0, help="generator seed (programs are reproducible)")
    s.add_argument("--config", default="sim", help="hardware profile (default sim)")
    s.add_argument("--json", type=output_file, help="also write the summary to this file")
    s.add_argument("--no-faults", action="store_true", help="no deliberate faults in the programs")
    s.add_argument("--stress-every", type=non_negative, default=3, metavar="K",
                   help="every K-th program runs under random DRAM back-pressure (0: never; default 3)")

    s = command(sub, "check-perf", _cmd_check_perf, "the analytical cycle model against Verilator RTL cycles "
                                                    "on a grid of sampling steps (exit 1 above 5%% error)")
    s.add_argument("--configs", default="sim,pynq-z2", help="comma-separated profiles (default: sim,pynq-z2)")
    s.add_argument("--modes", default=",".join(MODES), help="commit modes (default: %(default)s)")
    s.add_argument("--flows", default=",".join(FLOWS), help="flows (default: %(default)s)")
    s.add_argument("--fmt", default="e4m3", help="MX format of the logits")
    s.add_argument("--seed", type=non_negative, default=0, help="random seed of the logits")
    s.add_argument("--json", type=output_file, help="write the summary and every point to this file")

    s = command(sub, "check-generate", _cmd_check_generate,
                "generation on an NPU backend vs the torch sampler, token for token")
    s.add_argument("--task", help="task whose held-out prompts to use (default: the model's)")
    s.add_argument("--prompts", type=positive, default=8, help="prompts (default 8)")
    s.add_argument("--batch", type=positive, default=64, help="prompts per generate call")
    add_model_args(s, env_backend())

    s = command(sub, "eval", _cmd_eval, "exact-match accuracy of a model on held-out problems of its task")
    s.add_argument("--task", help="task name, e.g. add3 or rev31 (default: the model's)")
    s.add_argument("--problems", type=positive, default=500, help="held-out problems (default 500)")
    s.add_argument("--batch", type=positive, default=250, help="prompts per generate call")
    add_model_args(s, "torch")
