"""The `dnpu` command line. Each subcommand is a thin shell over a library call."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _cmd_info(args: argparse.Namespace) -> int:
    from dnpu import config, isa

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
    from dnpu import isa

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
    from dnpu import isa

    path = Path(args.binary)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SystemExit(f"dnpu disasm: cannot read {path}: {e.strerror}")
    lines = isa.disassemble(data, base=args.base, addresses=not args.bare)
    print("\n".join(lines))
    return 0


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
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from dnpu.config import ConfigError

    expected: tuple[type[BaseException], ...] = (ConfigError,)
    try:
        from dnpu.isa import AsmError, DisasmError
        expected += (AsmError, DisasmError)
    except ImportError:
        pass
    try:
        return args.func(args)
    except expected as e:
        print(f"dnpu {args.cmd}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
