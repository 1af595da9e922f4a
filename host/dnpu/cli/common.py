"""What every `dnpu` command shares: registering a command, the user-error rule, option
types, the progress bar, atomic output files.

A user mistake (a bad profile, file, option value or checkpoint) is one line on stderr,
``dnpu COMMAND: error: ...``, and exit status 2; :func:`dnpu.cli.main` turns
:data:`USER_ERRORS` into that line. A check that runs and fails exits 1. Ctrl-C stops a
command with one line, ``dnpu COMMAND: interrupted``, and exit status 130.

Output files are checked when the options are parsed (:func:`output_file`), so a run is
never lost to a path that cannot be written; a command prints its summary before it
writes the file, and writes it atomically (:func:`atomic_output`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

__all__ = ["UsageError", "USER_ERRORS", "Parser", "command", "env_backend", "add_serial_args", "use_serial_args",
           "one_of", "positive", "non_negative", "name_list", "output_file", "output_dir", "progress_bar", "note",
           "atomic_output", "write_bytes", "write_json", "print_json"]


class UsageError(Exception):
    """A mistake the user can fix, raised by a command: reported as one line, exit status 2."""


# ConfigError, AsmError, DisasmError, CheckpointError and the library's argument checks are
# ValueErrors; a missing model directory or file is a FileNotFoundError.
USER_ERRORS = (UsageError, ValueError, FileNotFoundError, NotImplementedError)


class Parser(argparse.ArgumentParser):
    """argparse with the one-line error of every other user mistake (exit status 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def command(sub, name: str, func: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
    """Add subcommand `name` running `func(args) -> exit status`; returns its parser for the arguments."""
    s = sub.add_parser(name, help=help)
    s.set_defaults(func=func)
    return s


def env_backend() -> str:
    """The default NPU backend of the checking commands: the one dnpu.runtime.open would use
    ($DNPU_BACKEND, else emu). An unknown $DNPU_BACKEND is returned as written, so that the
    command that runs it reports the mistake rather than every command's --help."""
    from dnpu import runtime

    try:
        return runtime.backend_name()
    except ValueError:
        return os.environ["DNPU_BACKEND"]


def add_serial_args(s: argparse.ArgumentParser) -> None:
    """--port and --baudrate of `--backend serial` (a board behind the UART bridge)."""
    from dnpu.runtime.serial_backend import BAUD_ENV, PORT_ENV
    from dnpu.spec.serial import LINK

    s.add_argument("--port", help=f"with --backend serial: the board's serial port as a pyserial URL "
                                  f"(/dev/ttyUSB0, socket://HOST:PORT); default ${PORT_ENV}, else a "
                                  f"co-simulated board started by this command")
    s.add_argument("--baudrate", type=positive, help=f"with --backend serial: bits per second (default "
                                                     f"${BAUD_ENV}, else {LINK['baud']})")


def use_serial_args(args: argparse.Namespace) -> None:
    """Hand --port / --baudrate to every device the command opens ($DNPU_SERIAL_PORT,
    $DNPU_SERIAL_BAUDRATE: the checks open their devices themselves); UsageError when they are
    given with another backend."""
    port, baud = getattr(args, "port", None), getattr(args, "baudrate", None)
    if port is None and baud is None:
        return
    from dnpu import runtime
    from dnpu.runtime.serial_backend import BAUD_ENV, PORT_ENV

    backend = runtime.backend_name(getattr(args, "backend", None))
    if backend != "serial":
        raise UsageError(f"--port and --baudrate are options of --backend serial, not {backend}")
    if port is not None:
        if not port.strip():
            raise UsageError("--port is empty: give the board's serial port (/dev/ttyUSB0, socket://HOST:PORT)")
        os.environ[PORT_ENV] = port
    if baud is not None:
        os.environ[BAUD_ENV] = str(baud)


def positive(text: str) -> int:
    """An option's count (``type=positive``): 0 or less would run nothing and pass, so it is refused."""
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {text}")
    return v


def non_negative(text: str) -> int:
    """An option's int that may be 0 (a seed, "never"), never negative."""
    v = int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be an int >= 0, got {text}")
    return v


def name_list(text: str, option: str, choices=None) -> list[str]:
    """The comma-separated names of `option`; UsageError when there is none (the run would test
    nothing and pass) or one is not in `choices`."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError(f"{option} {text!r} names nothing: give one or more, comma-separated")
    bad = [n for n in names if choices is not None and n not in choices]
    if bad:
        raise UsageError(f"{option}: unknown {', '.join(map(repr, bad))}: use {one_of(choices)}")
    return names


def one_of(names) -> str:
    """Names as prose: "a", "a or b", "a, b or c"."""
    names = list(names)
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)


# --------------------------------------------------------------------------- progress


@contextlib.contextmanager
def progress_bar(label: str, *, quiet: bool = False, unit: str = "it") -> Iterator[Callable | None]:
    """A ``progress(done, total, postfix="")`` callback drawing one tqdm bar on stderr, closed on exit.

    None (no bar, the library skips its calls) with `quiet` or when stderr is not a
    terminal, so that logs and pipes stay clean."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    bar = None  # drawn from the first call on, when the total is known

    def update(done: int, total: int, postfix: str = "") -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(desc=label, unit=unit, total=total, initial=done, file=sys.stderr, dynamic_ncols=True)
        elif bar.total != total:
            bar.total = total
        if postfix:
            bar.set_postfix_str(postfix, refresh=False)
        bar.update(done - bar.n)

    try:
        yield update
    except BaseException:
        if bar is not None:
            bar.leave = False  # an error message follows on a clean line
        raise
    finally:
        if bar is not None:
            bar.close()


def note(text: str) -> None:
    """A line on stderr that does not break a progress bar being drawn."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stderr)


# --------------------------------------------------------------------------- output files


def _unwritable(path: Path) -> str | None:
    """Why a file cannot be created or replaced at `path`, or None."""
    if str(path) == "":
        return "the path is empty"
    if path.is_dir():
        return "it is a directory"
    parent = path.parent
    if not parent.is_dir():
        return f"no directory {parent}" if not parent.exists() else f"{parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"no permission to write in {parent}"
    if path.exists() and not os.access(path, os.W_OK):
        return "the file is read-only"
    return None


def output_file(text: str) -> str:
    """An output file option (``type=output_file``): refused when parsing, before a run whose
    result it would lose, if the file cannot be written (its directory is missing or not
    writable, it is a directory or read-only)."""
    why = _unwritable(Path(text))
    if why:
        raise argparse.ArgumentTypeError(f"cannot write {text}: {why}")
    return text


def output_dir(text: str) -> str:
    """An output directory option, created with its parents: refused when parsing if it is a
    file or its nearest existing ancestor is not a writable directory."""
    p = Path(text)
    if str(p) == "":
        raise argparse.ArgumentTypeError("cannot write an empty path")
    if p.exists() and not p.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text}: it is a file, not a directory")
    up = p.parent if not p.exists() else p
    while not up.exists():
        up = up.parent
    if not up.is_dir() or not os.access(up, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text}: no permission to write in {up}"
                                         if up.is_dir() else f"cannot write {text}: {up} is not a directory")
    return text


@contextlib.contextmanager
def atomic_output(path) -> Iterator[Path]:
    """A temporary path beside `path` (same suffix) to write; it replaces `path` only when the
    block succeeds, so a reader never sees half a file. A write that fails is a UsageError."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from e
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path, data: bytes) -> None:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def write_json(path, obj: Any) -> None:
    """`obj` as indented JSON in `path` (atomically); nothing when `path` is None or empty."""
    if path:
        write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2))
