"""The result of :func:`dnpu.bench.run` as text (:func:`format_table`) and as a chart (:func:`plot`)."""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

def _t(s: float | None) -> str:
    """A time in the unit that suits it."""
    if s is None:
        return "-"
    for unit, f in (("s", 1.0), ("ms", 1e3), ("us", 1e6), ("ns", 1e9)):
        if s * f >= 1.0 or unit == "ns":
            return f"{s * f:.3g} {unit}" if s * f < 1000 else f"{s * f:,.0f} {unit}"
    return f"{s:g} s"


def _rate(x: float | None) -> str:
    if not x:
        return "-"
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def _pct(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.1f}%" if x >= 0.01 else f"{100 * x:.2g}%"


def _cy(e: dict) -> str:
    if e["cycles"] is not None:
        return f"{e['cycles']:,}"
    return f"~{e['model_cycles']:,}" if e.get("model_cycles") is not None else "-"


def _table(rows: list[tuple]) -> list[str]:
    w = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out = []
    for j, r in enumerate(rows):
        out.append("  ".join(str(c).ljust(w[i]) if i == 0 else str(c).rjust(w[i]) for i, c in enumerate(r)).rstrip())
        if j == 0:
            out.append("  ".join("-" * x for x in w))
    return out


def format_table(r: dict[str, Any], per_step: bool = True) -> str:
    """The result as text: a header, the per-step table, the totals, the LLaDA-scale rows."""
    env, s, prof, pp = r["environment"], r["settings"], r["profile"], r["projection_profile"]
    flows = s["flows"]
    lines = [f"dnpu bench: {r['model']['path']} ({r['model']['task']}, {r['model']['dtype']}), {s['prompts']} "
             f"prompt(s), gen_length {s['gen_length']} block_length {s['block_length']} steps {s['steps']}, "
             f"kv_cache {s['kv_cache']}, {s['mode']} commit, {s['fmt']} logits",
             f"PyTorch {env['torch']} baseline on {env['device'].upper()}: {env['name']}; timer: {env['timer']}"]
    if env["device"] != "cuda":
        lines.append(f"NOTE: {env['note']}")
    lines.append(f"NPU: {r['backend']} on profile {prof['name']} at {prof['f_clk_mhz']:g} MHz (time = cycles / "
                 f"f_clk); projection: {pp['name']} at {pp['f_clk_mhz']:g} MHz (analytical)")
    mm = ", ".join(f"{f}: {r['token_mismatches'][f]} differ" for f in flows)
    lines.append(f"tokens vs the torch sampler: {'match' if r['tokens_match'] else 'MISMATCH'} ({mm}; "
                 f"{r['generated_tokens']} generated tokens)")
    ci = r["baseline"]["torch_compile"]
    if ci.get("enabled") and not ci.get("ok"):
        lines.append(f"torch.compile failed: {ci.get('error')}")
    for key, why in r.get("not_timed", {}).items():
        lines.append(f"no total for {key}: {why}")
    if per_step and r["steps"]:
        head = ["step", "blk", "BxLxV", "forward", "torch eager", "torch.compile"]
        head += [f"{prof['name']} {f} cycles" for f in flows] + [f"{prof['name']} {f}" for f in flows]
        head += [f"{pp['name']} {f}" for f in flows]
        rows = [tuple(head)]
        for st in r["steps"]:
            rows.append((str(st["index"] + 1), str(st["block"] + 1), f"{st['B']}x{st['L']}x{st['V']}",
                         _t(st["forward_s"]), _t(st["torch_eager_s"]), _t(st["torch_compile_s"]),
                         *(_cy(st["npu"][f]) for f in flows),
                         *(_t(st["npu"][f]["s"]) for f in flows),
                         *(_t(st["projection"][f]["s"]) for f in flows)))
        lines.append("")
        lines.append("per step (~: analytical cycles, the backend has no clock):")
        lines += _table(rows)
    n = max(1, len(r["steps"]))
    rows = [("implementation", "cycles/step", "sampling/step", "sampling total", "forward total", "tokens/s",
             "sampling share")]
    for key, t in r["totals"].items():
        cy = f"{t['cycles'] / n:,.0f}" if t.get("cycles") is not None else (
            f"~{t['model_cycles'] / n:,.0f}" if t.get("model_cycles") is not None else "-")
        rows.append((t["label"], cy, _t(t["per_step_s"]), _t(t["sampling_s"]), _t(t["forward_s"]),
                     _rate(t["tokens_per_s"]),
                     _pct(t["sampling_share"])))
    lines.append("")
    lines.append(f"totals over {len(r['steps'])} steps (forward = the PyTorch forward on {env['device']}):")
    lines += _table(rows)
    if r.get("llada_scale"):
        lines.append("")
        for f, b in r["llada_scale"].items():
            if "error" in b:
                lines.append(f"LLaDA scale, {pp['name']} {f}: {b['error']}")
                continue
            lines.append(f"LLaDA scale (B={b['B']} L={b['L']} V={b['V']}), {b['config']} {f}: {b['cycles']:,} cycles "
                         f"= {b['ms']:.3f} ms per step ({b['over_bound']:.1f}x the single-pass bound"
                         + (f"; paper reports {b['paper_ms']} ms)" if b.get("paper_ms") else ")"))
    return "\n".join(lines)


def plot(r: dict[str, Any], path) -> None:
    """A PNG: left, the mean per-step time of every sampling implementation beside the model
    forward (log scale, values on the bars); right, the same per step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    env, prof = r["environment"], r["profile"]
    fwd = [st["forward_s"] for st in r["steps"]]
    colors = {"forward": "#555555", "torch_eager": "#1f77b4", "torch_compile": "#6baed6", "npu_phased": "#d62728",
              "npu_fused": "#ff9896", "projection_phased": "#2ca02c", "projection_fused": "#98df8a"}
    series = [("model forward", fwd, colors["forward"])]
    labels = {"torch_eager": "torch eager", "torch_compile": "torch.compile"}
    for key, t in r["totals"].items():
        if key in labels:
            per = [st[f"{key}_s"] for st in r["steps"]]
            name = f"{labels[key]} ({env['device']})"
        elif key.startswith("npu_"):
            f = key[4:]
            per = [st["npu"][f]["s"] for st in r["steps"]]
            name = f"NPU {prof['name']} {f} ({prof['f_clk_mhz']:g} MHz, {r['backend']})"
        else:
            f = key[len("projection_"):]
            per = [st["projection"][f]["s"] for st in r["steps"]]
            name = f"{r['projection_profile']['name']} {f} (analytical)"
        series.append((name, per, colors.get(key, "#9467bd")))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(14, 5.5), gridspec_kw={"width_ratios": [1.25, 1]})
    means = [statistics.fmean(v) * 1e6 for _, v, _ in series]
    ys = np.arange(len(series))[::-1]
    a1.barh(ys, means, color=[c for _, _, c in series])
    a1.set_yticks(ys, [n for n, _, _ in series])
    a1.set_xscale("log")
    a1.set_xlabel("time per step, µs (log scale; mean over steps)")
    for y, v in zip(ys, means):
        a1.text(v, y, f" {_t(v / 1e6)}", va="center", fontsize=9)
    a1.set_xlim(min(means) / 3, max(means) * 8)
    a1.set_title("sampling per step vs the model forward")
    steps = np.arange(1, len(fwd) + 1)
    for n, v, c in series:
        a2.plot(steps, np.asarray(v) * 1e6, "o-", color=c, label=n, lw=2 if n == "model forward" else 1.2)
    a2.set_yscale("log")
    a2.set_xlabel("step")
    a2.set_ylabel("µs (log scale)")
    a2.set_xticks(steps)
    a2.set_title("per step")
    a2.legend(fontsize=8, loc="best")
    a2.grid(True, which="both", alpha=0.3)
    s = r["settings"]
    dev = env["name"] if env["device"] == "cuda" else f"CPU {env['name']} (no GPU)"
    fig.suptitle(f"dnpu bench: {r['model']['task']}, B={s['prompts']}, {len(fwd)} steps; PyTorch {env['torch']} "
                 f"on {dev}; NPU {r['backend']} {prof['name']}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
