"""`dnpu board ...`: commands for bringing up one NPU. `dnpu board selftest` runs the checks of
dnpu.verify.selftest and prints them as a pass/fail table (exit status 0 all passed, 1 one failed)."""

from __future__ import annotations

import argparse

from dnpu.cli.common import (UsageError, add_serial_args, command, env_backend, non_negative, output_file, positive,
                             write_json)


def format_table(results, backend: str, profile: str) -> str:
    w = max(len(r.name) for r in results)
    lines = [f"{'check':<{w}}  result  detail"]
    lines += [f"{r.name:<{w}}  {'PASS' if r.passed else 'FAIL':<6}  {r.detail}" for r in results]
    n = sum(r.passed for r in results)
    lines.append(f"selftest on {backend} ({profile}): {n}/{len(results)} checks passed")
    return "\n".join(lines)


def _cmd_selftest(args: argparse.Namespace) -> int:
    from dnpu import runtime
    from dnpu.spec import config
    from dnpu.verify import selftest

    if args.bytes % 4:
        raise UsageError(f"--bytes {args.bytes}: the memory test moves 32-bit words, give a multiple of 4")
    backend = runtime.backend_name(args.backend)
    cfg = config.load(args.config)
    results = selftest.selftest(backend, cfg, nbytes=args.bytes, seed=args.seed)
    print(format_table(results, backend, cfg.label))
    ok = all(r.passed for r in results)
    write_json(args.json, {"backend": backend, "profile": cfg.label, "bytes": args.bytes, "passed": ok,
                           "checks": [r.to_json() for r in results]})
    return 0 if ok else 1


def register(sub) -> None:
    p = sub.add_parser("board", help="bring-up of one NPU (a board, the co-simulation or the emulator)")
    bsub = p.add_subparsers(dest="board_cmd", required=True, metavar="SUBCOMMAND")
    s = command(bsub, "selftest", _cmd_selftest,
                "identity registers, a DMA memory test, one sampling step against the emulator, the counters")
    s.set_defaults(cmd="board selftest")     # the name in its one-line errors
    s.add_argument("--backend", default=env_backend(),
                   help="emu, verilator, pynq or serial (default: $DNPU_BACKEND, else emu)")
    add_serial_args(s)
    s.add_argument("--config", default="sim", help="hardware profile the device is built for (default: sim)")
    s.add_argument("--bytes", type=positive, default=64 * 1024,
                   help="bytes of the memory test's buffer, a multiple of 4 (default 65536); the test "
                        "allocates two")
    s.add_argument("--seed", type=non_negative, default=0, help="seed of the sampling step's random logits (default 0)")
    s.add_argument("--json", type=output_file, help="also write the results to this file (after the table)")
