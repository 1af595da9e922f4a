"""The `dnpu` command line. Each subcommand is a thin shell over a library call."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _cmd_info(args: argparse.Namespace) -> int:
    from dnpu.spec import config, isa

    cfg = config.load(args.config)
    if args.json:
        out = {"profile": cfg.name, "path": cfg.path, "config_hash": cfg.config_hash,
               "config_hash32": cfg.config_hash32, "isa_version": list(isa.VERSION),
               "sections": {s: {k: list(v) if isinstance(v, tuple) else v for k, v in kv.items()}
                            for s, kv in cfg.sections().items()}}
        print(json.dumps(out, indent=2))
    else:
        print(cfg.describe())
        print(f"  isa_version            {isa.VERSION[0]}.{isa.VERSION[1]}")
    return 0


def _cmd_asm(args: argparse.Namespace) -> int:
    from dnpu.spec import isa

    src = Path(args.source)
    try:
        text = src.read_text()
    except OSError as e:
        raise SystemExit(f"dnpu asm: cannot read {src}: {e.strerror}")
    binary = isa.assemble(text, filename=str(src))
    out = Path(args.output) if args.output else src.with_suffix(".bin")
    out.write_bytes(binary)
    print(f"{out}: {len(binary) // 4} instructions, {len(binary)} bytes")
    return 0


def _cmd_disasm(args: argparse.Namespace) -> int:
    from dnpu.spec import isa

    path = Path(args.binary)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SystemExit(f"dnpu disasm: cannot read {path}: {e.strerror}")
    lines = isa.disassemble(data, base=args.base, addresses=not args.bare)
    print("\n".join(lines))
    return 0


def _progress(label: str):
    """A one-line progress meter on stderr (only when it is a terminal)."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        end = "\n" if done == total else ""
        print(f"\r{label}: {done}/{total}", end=end, file=sys.stderr, flush=True)
    return show


def _cmd_check_sampling(args: argparse.Namespace) -> int:
    from dnpu.verify import sampling as checks

    r = checks.check_sampling(args.backend, cases=args.cases, seed=args.seed, config=args.config,
                              fmt=args.fmt, progress=_progress(f"check-sampling {args.backend}"))
    text = json.dumps(r, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)
    ok = r["token_mismatches"] == 0 and r["bound_violations"] == 0
    if not ok:
        print(f"dnpu check-sampling: FAILED: {r['token_mismatches']} token mismatches, "
              f"{r['bound_violations']} confidence-bound violations; first: {r['first_failure']}",
              file=sys.stderr)
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    from dnpu import __version__

    p = argparse.ArgumentParser(prog="dnpu", description="dnpu: an NPU for diffusion-LLM sampling")
    p.add_argument("--version", action="version", version=f"dnpu {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    s = sub.add_parser("info", help="print a hardware profile, its config hash and the ISA version")
    s.add_argument("--config", default="sim", help="profile name (sim, pynq-z2, zcu104, asic-2048) or .toml path")
    s.add_argument("--json", action="store_true", help="print JSON instead of text")
    s.set_defaults(func=_cmd_info)

    s = sub.add_parser("asm", help="assemble a .s file into a program binary")
    s.add_argument("source", help="assembly source")
    s.add_argument("-o", "--output", help="output binary (default: SOURCE with .bin)")
    s.set_defaults(func=_cmd_asm)

    s = sub.add_parser("disasm", help="disassemble a program binary")
    s.add_argument("binary", help="program binary (32-bit little-endian words)")
    s.add_argument("--base", type=lambda v: int(v, 0), default=0, help="address of the first word")
    s.add_argument("--bare", action="store_true", help="no addresses: output re-assembles as is")
    s.set_defaults(func=_cmd_disasm)

    s = sub.add_parser("check-sampling", help="random sampling steps on a backend against the torch reference")
    s.add_argument("--backend", default=os.environ.get("DNPU_BACKEND", "emu"),
                   help="NPU backend to check (default: $DNPU_BACKEND or emu)")
    s.add_argument("--cases", type=int, default=100, help="random steps to run")
    s.add_argument("--seed", type=int, default=0, help="random seed (runs are reproducible)")
    s.add_argument("--config", default="sim", help="hardware profile")
    s.add_argument("--fmt", default="e4m3", help="MX format of the logits")
    s.add_argument("--json", help="also write the summary to this file")
    s.set_defaults(func=_cmd_check_sampling)

    from dnpu.cli import gen as cli_gen  # generate, eval, check-generate (issue 6)

    cli_gen.add_commands(sub)

    from dnpu.cli import lockstep as cli_lockstep
    cli_lockstep.add_parser(sub)

    from dnpu.cli import perf as cli_perf  # check-perf, project (issue 7)

    cli_perf.add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from dnpu.spec.config import ConfigError
    from dnpu.spec.isa import AsmError, DisasmError

    expected = (ConfigError, AsmError, DisasmError)
    try:
        return args.func(args)
    except expected as e:
        print(f"dnpu {args.cmd}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
