"""`dnpu info`, `dnpu rtl`, `dnpu asm`, `dnpu disasm`: the hardware profiles, what a vendor tool
builds from, and the instruction set (dnpu.spec)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dnpu.cli.common import UsageError, command, output_file, print_json, write_bytes


def _cmd_info(args: argparse.Namespace) -> int:
    from dnpu.spec import config, isa

    cfg = config.load(args.config)
    if args.json:
        print_json({"profile": cfg.name, "label": cfg.label, "path": cfg.path, "config_hash": cfg.config_hash,
                    "config_hash32": cfg.config_hash32, "isa_version": list(isa.VERSION),
                    "sections": {s: {k: list(v) if isinstance(v, tuple) else v for k, v in kv.items()}
                                 for s, kv in cfg.sections().items()}})
    else:
        print(cfg.describe())
        print(f"  isa_version            {isa.VERSION[0]}.{isa.VERSION[1]}")
    return 0


def _cmd_rtl(args: argparse.Namespace) -> int:
    from dnpu.codegen import rtl
    from dnpu.spec import config

    cfg = config.load(args.config)
    root = rtl.default_root()
    out = {"top": args.top, "profile": cfg.name, "define": rtl.profile_define(cfg.name),
           "include_dirs": [str(root / d) for d in rtl.RTL_INCLUDE_DIRS],
           "sources": [str(root / f) for f in rtl.rtl_sources(root, args.top)]}
    if args.json:
        print_json(out)
    else:
        print(f"# {out['top']} for profile {out['profile']}: define {out['define']}; include folders, then sources")
        print("\n".join([f"+incdir+{d}" for d in out["include_dirs"]] + out["sources"]))
    return 0


def address(text: str) -> int:
    """An address in any base Python reads (0x100, 256)."""
    return int(text, 0)


def _read(path: Path, how: str):
    try:
        return path.read_text(encoding="utf-8") if how == "text" else path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: not an assembly text file (not UTF-8 at byte {e.start})") from None


def _cmd_asm(args: argparse.Namespace) -> int:
    from dnpu.spec import isa

    src = Path(args.source)
    binary = isa.assemble(_read(src, "text"), filename=str(src))
    out = Path(args.output) if args.output else src.with_suffix(".bin")
    write_bytes(out, binary)
    print(f"{out}: {len(binary) // 4} instructions, {len(binary)} bytes")
    return 0


def _cmd_disasm(args: argparse.Namespace) -> int:
    from dnpu.spec import isa

    lines = isa.disassemble(_read(Path(args.binary), "bytes"), base=args.base, addresses=not args.bare)
    print("\n".join(lines))
    return 0


def register(sub) -> None:
    s = command(sub, "info", _cmd_info, "print a hardware profile, its config hash and the ISA version")
    s.add_argument("--config", default="sim", help="profile name (sim, pynq-z2, zcu104, asic-2048) or .toml path")
    s.add_argument("--json", action="store_true", help="print JSON instead of text")

    s = command(sub, "rtl", _cmd_rtl, "the RTL sources, include folders and profile define of a build "
                                      "(for a vendor tool: Vivado, Quartus, Yosys)")
    s.add_argument("--top", default="dnpu_top", choices=("dnpu_top", "dnpu_uart_top"),
                   help="the NPU for a SoC (AXI ports) or the bare-board serial top (UART pins)")
    s.add_argument("--config", default="sim", help="profile name or .toml path")
    s.add_argument("--json", action="store_true", help="print JSON instead of a file list")

    s = command(sub, "asm", _cmd_asm, "assemble a .s file into a program binary")
    s.add_argument("source", help="assembly source")
    s.add_argument("-o", "--output", type=output_file, help="output binary (default: SOURCE with .bin)")

    s = command(sub, "disasm", _cmd_disasm, "disassemble a program binary")
    s.add_argument("binary", help="program binary (32-bit little-endian words)")
    s.add_argument("--base", type=address, default=0, help="address of the first word")
    s.add_argument("--bare", action="store_true", help="no addresses: output re-assembles as is")
