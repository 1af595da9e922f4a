"""The `dnpu` command line. Each command is a thin shell over a library call.

Every module in :data:`MODULES` has one ``register(sub)`` that adds its commands to the
subparsers with :func:`dnpu.cli.common.command`; the shared rules (user errors, the
progress bar, atomic output files) are in :mod:`dnpu.cli.common`.
"""

from __future__ import annotations

import argparse
import os
import sys

from dnpu.cli import bench, board, gen, perf, spec, verify
from dnpu.cli.common import USER_ERRORS, Parser, use_serial_args
from dnpu.runtime.errors import DeviceError

MODULES = (spec, gen, verify, perf, bench, board)

__all__ = ["MODULES", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from dnpu import __version__

    p = Parser(prog="dnpu", description="dnpu: an NPU for diffusion-LLM sampling")
    p.add_argument("--version", action="version", version=f"dnpu {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    for module in MODULES:
        module.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit status: 0 ok, 1 a check failed, 2 a user mistake (one line on
    stderr), 130 stopped by Ctrl-C (one line)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:     # --help, --version, or an option argparse refused (its one line is out)
        return e.code if isinstance(e.code, int) else int(e.code is not None)
    except KeyboardInterrupt:
        print("dnpu: interrupted", file=sys.stderr)
        return 130
    try:
        use_serial_args(args)
        return args.func(args)
    except USER_ERRORS as e:
        print(f"dnpu {args.cmd}: error: {e}", file=sys.stderr)
        return 2
    except DeviceError as e:
        if e.reason not in ("attach", "link"):
            raise
        # a device that cannot be opened (no board build, an unreadable .hwh) or a serial link that
        # stops answering (a cable, a board without power) is the setup's mistake
        print(f"dnpu {args.cmd}: error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    except MemoryError as e:
        if not str(e).startswith("device heap exhausted"):
            raise
        # sizes that do not fit the device's memory (a bare board's on-chip RAM): the user's choice
        print(f"dnpu {args.cmd}: error: {e}: choose smaller sizes or a device with more memory", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        if e.name != "torch":
            raise
        # a PyTorch path on an install without the extra (a board): the setup's choice, one line
        print(f"dnpu {args.cmd}: error: this command needs PyTorch, which is not installed: "
              f"pip install 'dnpu[torch]' (without it: dnpu generate --backend emu|verilator|pynq)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dnpu {args.cmd}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader stopped early (`dnpu info | head`): no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
