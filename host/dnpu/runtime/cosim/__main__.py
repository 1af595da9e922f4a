"""`python -m dnpu.runtime.cosim build|key|path|clean`: the co-simulation model's cache."""

from __future__ import annotations

import shutil
import sys

from dnpu.runtime.cosim.build import cache_key, cache_root, ensure_built, entry_path


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m dnpu.runtime.cosim",
                                 description="Build or inspect the cached Verilator co-simulation model.")
    ap.add_argument("action", choices=["build", "key", "path", "clean"])
    ap.add_argument("--profile", default="sim")
    ap.add_argument("--rebuild", action="store_true", help="build even if the cache has the model")
    a = ap.parse_args(argv)
    if a.action == "clean":
        root = cache_root()
        shutil.rmtree(root, ignore_errors=True)
        print(f"removed {root}")
        return 0
    if a.action == "key":
        print(cache_key(a.profile))
        return 0
    if a.action == "path":
        print(entry_path(a.profile))
        return 0
    res = ensure_built(a.profile, rebuild=a.rebuild, log=lambda s: print(s, file=sys.stderr))
    print(res.path)
    print(f"{'built' if res.built else 'cached'} in {res.seconds:.1f} s", file=sys.stderr)
    return 0


sys.exit(main())
