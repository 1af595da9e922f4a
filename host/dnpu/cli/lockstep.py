"""`dnpu check-lockstep`: the RTL against the emulator, retire by retire, on random programs
(dnpu.verify.lockstep). Registered by dnpu.cli.build_parser."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _cmd_check_lockstep(args: argparse.Namespace) -> int:
    from dnpu.verify import lockstep
    from dnpu.runtime.cosim import CosimError

    printed = []

    def on_mismatch(m) -> None:
        if not printed:                       # the first diverging instruction, in full
            print(m.text, file=sys.stderr)
        printed.append(m)

    progress = None
    if sys.stderr.isatty():
        def progress(done: int, total: int) -> None:
            print(f"\rcheck-lockstep: {done}/{total}", end="\n" if done == total else "", file=sys.stderr,
                  flush=True)
    try:
        r = lockstep.check_lockstep(args.programs, args.seed, args.config, faults=0.0 if args.no_faults else 0.3,
                                    stress_every=args.stress_every, progress=progress, on_mismatch=on_mismatch)
    except CosimError as e:              # the model cannot be built or loaded
        print(f"dnpu check-lockstep: error: {e}", file=sys.stderr)
        return 2
    text = json.dumps(r, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    summary = {k: r[k] for k in ("programs", "mismatches", "cycles", "instructions", "outcomes", "wall_s")}
    print(json.dumps(summary, indent=2))
    if r["mismatches"]:
        print(f"dnpu check-lockstep: FAILED: {r['mismatches']} of {r['programs']} programs diverge "
              f"(seed {args.seed}); the first is above", file=sys.stderr)
        return 1
    return 0


def add_parser(sub) -> None:
    s = sub.add_parser("check-lockstep",
                       help="random programs on the RTL (Verilator) and the emulator, compared retire by retire")
    s.add_argument("--programs", type=int, default=100, help="random programs to run (default 100)")
    s.add_argument("--seed", type=int, default=0, help="generator seed (programs are reproducible)")
    s.add_argument("--config", default="sim", help="hardware profile (default sim)")
    s.add_argument("--json", help="also write the summary to this file")
    s.add_argument("--no-faults", action="store_true", help="no deliberate faults in the programs")
    s.add_argument("--stress-every", type=int, default=3, metavar="K",
                   help="every K-th program runs under random DRAM back-pressure (0: never; default 3)")
    s.set_defaults(func=_cmd_check_lockstep)
