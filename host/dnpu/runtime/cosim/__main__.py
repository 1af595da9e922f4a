"""`python -m dnpu.runtime.cosim build|key|path|clean`: the co-simulation model's cache;
`serve-serial`: a co-simulated serial board on a TCP port (dnpu.runtime.cosim.serial_board),
for `--backend serial --port socket://127.0.0.1:PORT` in another terminal."""

from __future__ import annotations

import shutil
import sys

from dnpu.runtime.cosim.build import NPU_TOP, TOPS, cache_key, cache_root, ensure_built, entry_path


def _serve(profile: str, port: int) -> int:
    """Serve a co-simulated serial board until Ctrl-C; exit 2 with one line if it cannot start."""
    import time

    from dnpu.runtime.cosim.binding import CosimError
    from dnpu.runtime.cosim.serial_board import SerialBoard

    try:
        board = SerialBoard(profile, port=port, log=lambda s: print(s, file=sys.stderr))
    except (CosimError, OSError) as e:
        print(f"serve-serial: error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    print(board.url, flush=True)
    print(f"serving {board!r}: dnpu ... --backend serial --port {board.url}; Ctrl-C stops", file=sys.stderr)
    try:
        while board._thread.is_alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        board.close()
    if board.error:
        print(f"serve-serial: the board stopped: {board.error}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m dnpu.runtime.cosim",
                                 description="Build or inspect the cached Verilator co-simulation model.")
    ap.add_argument("action", choices=["build", "key", "path", "clean", "serve-serial"])
    ap.add_argument("--profile", "--config", dest="profile", default="sim")
    ap.add_argument("--rebuild", action="store_true", help="build even if the cache has the model")
    ap.add_argument("--top", choices=list(TOPS), default=NPU_TOP,
                    help="build|key|path: the NPU alone (default) or the serial board")
    ap.add_argument("--port", type=int, default=0, help="serve-serial: TCP port on 127.0.0.1 (default: a free one)")
    a = ap.parse_args(argv)
    if a.action == "serve-serial":
        return _serve(a.profile, a.port)
    if a.action == "clean":
        root = cache_root()
        shutil.rmtree(root, ignore_errors=True)
        print(f"removed {root}")
        return 0
    if a.action == "key":
        print(cache_key(a.profile, top=a.top))
        return 0
    if a.action == "path":
        print(entry_path(a.profile, top=a.top))
        return 0
    res = ensure_built(a.profile, rebuild=a.rebuild, log=lambda s: print(s, file=sys.stderr), top=a.top)
    print(res.path)
    print(f"{'built' if res.built else 'cached'} in {res.seconds:.1f} s", file=sys.stderr)
    return 0


sys.exit(main())
