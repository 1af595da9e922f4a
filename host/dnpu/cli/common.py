"""What every `dnpu` command shares: registering a command, the user-error rule, the
progress bar, atomic output files.

A user mistake (a bad profile, file, option value or checkpoint) is one line on stderr,
``dnpu COMMAND: error: ...``, and exit status 2; :func:`dnpu.cli.main` turns
:data:`USER_ERRORS` into that line. A check that runs and fails exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

__all__ = ["UsageError", "USER_ERRORS", "Parser", "command", "env_backend", "one_of", "progress_bar", "note",
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
