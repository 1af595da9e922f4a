"""Load the tables, run every emitter, and write the outputs or compare them with the tree."""

from __future__ import annotations

import argparse
import difflib
import re
import sys
import tempfile
from pathlib import Path

from dnpu.codegen.emit_docs import emit_csr_md, emit_isa_md, emit_serial_md
from dnpu.codegen.emit_exp_table import EXP_TABLE_VH, emit_exp_table
from dnpu.codegen.emit_hwh import emit_hwh
from dnpu.codegen.emit_python import (PY_GEN, emit_csr_table, emit_generated_init, emit_isa_table,
                                      emit_serial_table)
from dnpu.codegen.emit_verilog import (CFG_SELECT_VH, RTL_GEN, emit_cfg_select_vh, emit_cfg_vh, emit_csr_vh,
                                       emit_isa_vh, emit_serial_vh, profile_vh_name)
from dnpu.codegen.emit_vivado import emit_build_tcl
from dnpu.codegen.serial_model import load_serial
from dnpu.codegen.tables import Profile, default_root, load_tables
from dnpu.codegen.validate import CodegenError
from dnpu.spec import config, numerics

# Directories codegen owns entirely: a file there that it does not write is stale.
GENERATED_DIRS = (RTL_GEN, PY_GEN)
DIFF_LINES = 12                  # diff lines --check shows of each stale file


def generate(root: Path | str | None = None, profiles: list[Profile] | None = None) -> dict[str, str]:
    """All outputs for the tables under root: repo-relative path -> text. profiles: use
    these instead of root's hw/config."""
    root = Path(root) if root is not None else default_root()
    t = load_tables(root, profiles)
    serial = load_serial(root)
    out = {
        f"{RTL_GEN}/dnpu_isa.vh": emit_isa_vh(t.isa),
        f"{RTL_GEN}/dnpu_csr.vh": emit_csr_vh(t.csr),
        f"{RTL_GEN}/dnpu_serial.vh": emit_serial_vh(serial, t.profiles),
        EXP_TABLE_VH: emit_exp_table(numerics.EXP_T_BITS, numerics.EXP_D_BITS),
        f"{PY_GEN}/__init__.py": emit_generated_init(),
        f"{PY_GEN}/isa_table.py": emit_isa_table(t.isa),
        f"{PY_GEN}/csr_table.py": emit_csr_table(t.csr),
        f"{PY_GEN}/serial_table.py": emit_serial_table(serial),
        "docs/ISA.md": emit_isa_md(t.isa),
        "docs/CSR.md": emit_csr_md(t.csr, t.isa),
        "docs/SERIAL.md": emit_serial_md(serial, t.csr),
    }
    out[f"{RTL_GEN}/{CFG_SELECT_VH}"] = emit_cfg_select_vh(t.profiles)
    seen: dict[str, str] = {}
    for p in t.profiles:
        fn = profile_vh_name(p.name)
        if fn in seen:
            raise CodegenError(f"{p.file}: profile name {p.name!r} maps to {fn} like {seen[fn]!r}")
        seen[fn] = p.name
        out[f"{RTL_GEN}/{fn}"] = emit_cfg_vh(p)
        if config.is_zynq_board(p.flat.get("PROFILE_TARGET"), p.flat.get("PROFILE_HOST")):
            out[f"bitstreams/{p.name}/dnpu.hwh"] = emit_hwh(p, t.csr, t.isa)
            out[f"bitstreams/{p.name}/build.tcl"] = emit_build_tcl(p, t.csr, t.isa, root)
    return dict(sorted(out.items()))


def write_files(files: dict[str, str], dest: Path) -> list[str]:
    """Write files under dest; returns the paths whose content changed."""
    changed = []
    for rel, text in files.items():
        p = dest / rel
        data = text.encode("utf-8")
        if p.is_file() and p.read_bytes() == data:
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        changed.append(rel)
    return changed


def stray_files(root: Path, files: dict[str, str]) -> list[str]:
    """Files in GENERATED_DIRS under root that are not among files (caches aside)."""
    out = []
    for d in GENERATED_DIRS:
        base = root / d
        if not base.is_dir():
            continue
        for p in sorted(base.rglob("*")):
            rel = p.relative_to(root).as_posix()
            if "__pycache__" not in p.parts and not p.is_dir() and rel not in files:
                out.append(rel)
    return out


def _stale_report(rel: str, cur: bytes, new: bytes, out) -> None:
    print(f"stale: {rel}", file=out)
    diff = list(difflib.unified_diff(cur.decode("utf-8", "replace").splitlines(),
                                     new.decode("utf-8").splitlines(),
                                     f"{rel} (in tree)", f"{rel} (generated)", n=1, lineterm=""))
    for line in diff[:DIFF_LINES]:
        print(f"    {line}", file=out)
    if len(diff) > DIFF_LINES:
        print(f"    ... {len(diff) - DIFF_LINES} more diff lines", file=out)


def check(root: Path | str | None = None, out=sys.stdout) -> int:
    """Compare freshly generated files with the tree: 0 when up to date, 1 otherwise."""
    root = Path(root) if root is not None else default_root()
    files = generate(root)
    problems = 0
    with tempfile.TemporaryDirectory(prefix="dnpu-codegen-") as tmp:
        write_files(files, Path(tmp))       # compare the bytes a write would put there
        for rel in files:
            new = (Path(tmp) / rel).read_bytes()
            cur_p = root / rel
            if not cur_p.is_file():
                print(f"missing: {rel}", file=out)
                problems += 1
            elif cur_p.read_bytes() != new:
                _stale_report(rel, cur_p.read_bytes(), new, out)
                problems += 1
    for rel in stray_files(root, files):
        print(f"unexpected: {rel} (not written by dnpu.codegen)", file=out)
        problems += 1
    if problems:
        print(f"dnpu.codegen --check: {problems} problem(s); run `python -m dnpu.codegen` "
              "to regenerate", file=out)
        return 1
    print(f"dnpu.codegen --check: OK ({len(files)} generated files up to date)", file=out)
    return 0


def _write(root: Path, dest: Path | None) -> None:
    """Write the outputs under dest (default root); under root, also remove the header of
    a profile that is gone and warn about other stray files."""
    files = generate(root)
    changed = write_files(files, dest if dest is not None else root)
    removed, extras = [], []
    if dest is None:
        for rel in stray_files(root, files):
            # A profile header whose profile is gone is ours to remove; anything else
            # in the generated folders is reported, never deleted.
            if re.fullmatch(rf"{RTL_GEN}/dnpu_cfg_[A-Za-z0-9_]+\.vh", rel):
                (root / rel).unlink()
                removed.append(rel)
            else:
                extras.append(rel)
    for rel in changed:
        print(f"wrote {rel}")
    for rel in removed:
        print(f"removed stale {rel}")
    for rel in extras:
        print(f"warning: {rel} is not written by dnpu.codegen (remove it)", file=sys.stderr)
    print(f"dnpu.codegen: {len(files)} files, {len(changed)} changed"
          + (f", {len(removed)} removed" if removed else ""))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m dnpu.codegen",
        description="Generate the Verilog headers, Python tables, docs and .hwh files from "
                    "hw/isa.toml, hw/csr.toml, the hardware profiles and dnpu.spec.numerics.")
    ap.add_argument("--root", type=Path, default=None,
                    help="repository root (default: the one this package lives in)")
    ap.add_argument("--out", type=Path, default=None,
                    help="write the outputs under this directory instead of --root")
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 if any generated file is stale, missing or unexpected")
    args = ap.parse_args(argv)
    root = args.root if args.root is not None else default_root()
    try:
        if args.check:
            return check(root)
        _write(root, args.out)
        return 0
    except CodegenError as e:
        print(f"dnpu.codegen: error:\n{e}", file=sys.stderr)
        return 2
