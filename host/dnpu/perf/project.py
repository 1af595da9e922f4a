"""`dnpu project`: the analytical sampling latency and whole step at LLaDA-8B scale, beside the paper and a GPU.

`projection()` runs dnpu.perf.analytical on one sampling step (default: asic-2048, B=16,
L=32, V=126464, quota commit) for both flows, at the profile's clock, in two memory-port
variants (`rtl`: the one 512-bit AXI4 port the RTL has; `ideal`: a port and MX decoder
that keep up with memory.bytes_per_cycle), beside the paper's reported numbers and the
single-pass bound. When torch sees a CUDA GPU, the same step (argmax with lowest-index
ties, softmax probability of x0, top-k commit, masked update; logits in BF16 on the GPU,
arithmetic in FP32) is timed there in eager mode and under torch.compile with CUDA events.

`matrix_projection()` (the `matrix` key of the projection) times LLaDA-8B's linear layers on the
profile's matrix unit with `analytical.matmul_cycles`: every layer's Q, K, V, O, gate, up and
down projections and the LM head, for the step's B*L token rows, e4m3 weights, both ports.

`dnpu.perf.project_forward` (the `forward` key, with `seq_len`) costs the whole diffusion
step of LLaDA-8B, the compiled forward program with its sampling tail, on the profile.

`bench_row()` is the one-row summary `dnpu bench` prints for the asic-2048 projection.
"""

from __future__ import annotations

from typing import Any

from dnpu.spec import config as config_mod
from dnpu.compiler import FLOWS_FUSED_FIRST
from dnpu.perf import analytical
from dnpu.perf.project_forward import LLADA_8B, forward_projection, format_forward

__all__ = ["PAPER", "LLADA_8B", "projection", "matrix_projection", "bench_row", "gpu_times", "format_table"]

# arXiv 2601.20706 as summarised in shared/REFERENCE.md ("reported", not reproduced).
PAPER = {
    "source": "arXiv 2601.20706 (reported; shared/REFERENCE.md)",
    "vlen": 2048, "f_clk_mhz": 1000.0, "B": 16, "L": 32, "V": 126464,
    "cycles": 991_038, "ms": 0.99,
    "phase_fractions": {"vector": 0.48, "memory": 0.40, "scalar": 0.12},
    "by_vlen_ms": {"512": 3.41, "1024": 1.79, "2048": 0.99},
    "a6000_ms": 2.51,
    "bound_cycles": 31_616,
}




def matrix_projection(cfg, M: int, fmt: str = "e4m3") -> dict[str, Any]:
    """LLaDA-8B's linear layers for M token rows on cfg's matrix unit, per port: cycles of each
    shape (one M_MM each, N and K as in the model), the forward's total, MACs per cycle."""
    if not cfg.matrix.rows:
        return {"available": False, "reason": f"profile {cfg.name} has no matrix unit"}
    d, f, L = LLADA_8B["d_model"], LLADA_8B["mlp"], LLADA_8B["layers"]
    shapes = {"qkvo": (d, d, 4 * L), "gate_up": (f, d, 2 * L), "down": (d, f, L), "lm_head": (LLADA_8B["vocab"], d, 1)}
    out: dict[str, Any] = {"available": True, "M": M, "fmt": fmt, "rows": cfg.matrix.rows, "cols": cfg.matrix_cols,
                           "peak_macs_per_cycle": cfg.matrix.rows * cfg.matrix_cols, "ports": {}}
    for port in ("rtl", "ideal"):
        m = analytical.machine(cfg, port)
        per, total, macs = {}, 0, 0
        for name, (N, K, times) in shapes.items():
            N = -(-N // m.vlen) * m.vlen
            c = analytical.matmul_cycles(m, M, N, K, fmt)
            per[name] = {"N": N, "K": K, "count": times, "cycles_each": c}
            total += c * times
            macs += M * N * K * times
        out["ports"][port] = {"shapes": per, "cycles": total, "ms": total / (cfg.clock.f_clk_mhz * 1e3),
                              "macs_per_cycle": macs / total,
                              "utilization": macs / total / out["peak_macs_per_cycle"]}
    return out


def _flow_entry(est: analytical.Estimate) -> dict[str, Any]:
    return {"cycles": est.cycles, "ms": est.seconds * 1e3, "phases": dict(est.phases),
            "phase_fractions": {k: round(v, 4) for k, v in est.fractions().items()},
            "fetch_misses": est.fetch_misses, "instret": est.instret,
            "vs_paper": est.cycles / PAPER["cycles"]}


def projection(config: str = "asic-2048", B: int = 16, L: int = 32, V: int = 126464, mode: str = "topk",
               fmt: str = "e4m3", *, gpu: bool = True, gpu_iters: int = 50,
               seq_len: int | None = None, kv_fmt: str | None = None) -> dict[str, Any]:
    """The projection as a JSON-ready dict (see the module docstring); with `seq_len`, also
    the whole step of LLaDA-8B at that many tokens with a block of L (`forward`; with
    `kv_fmt`, the steps of a dual KV cache in that format beside it). ValueError: a size that
    is not a positive int."""
    analytical.check_positive(B=B, L=L, V=V, gpu_iters=gpu_iters)
    if seq_len is not None:
        analytical.check_positive(seq_len=seq_len)
    cfg = config_mod.load(config)
    f = cfg.clock.f_clk_mhz
    out: dict[str, Any] = {"config": cfg.name, "B": B, "L": L, "V": V, "mode": mode, "fmt": fmt,
                           "vlen": cfg.vector.vlen, "lanes": cfg.vector.lanes, "f_clk_mhz": f,
                           "memory_bytes_per_cycle": cfg.memory.bytes_per_cycle,
                           "axi_port_bytes_per_cycle": cfg.beat_bytes}
    flows: dict[str, Any] = {}
    for port in ("rtl", "ideal"):
        for flow in FLOWS_FUSED_FIRST:
            try:
                est = analytical.step(cfg, B, L, V, mode, flow, fmt, port=port, pad=True)
            except analytical.ModelError as e:
                flows.setdefault(port, {})[flow] = {"error": str(e)}
                continue
            out["V_padded"] = est.what["V_padded"]
            flows.setdefault(port, {})[flow] = _flow_entry(est)
    out["flows"] = flows["rtl"]
    out["flows_ideal_port"] = flows["ideal"]
    b = analytical.bound(cfg, B, L, V, fmt)
    out["bound"] = {"cycles": b["cycles"], "ms": b["cycles"] / (f * 1e3), "vector_cycles": b["vector_cycles"],
                    "memory_cycles": b["memory_cycles"], "logits_bytes": b["bytes"],
                    "port_cycles": b["port_cycles"], "port_ms": b["port_cycles"] / (f * 1e3)}
    for port_flows in (out["flows"], out["flows_ideal_port"]):
        for e in port_flows.values():
            if "cycles" in e:
                e["over_bound"] = e["cycles"] / b["cycles"]
    out["matrix"] = matrix_projection(cfg, B * L, fmt)
    if seq_len is not None:
        out["forward"] = forward_projection(cfg, seq_len=seq_len, block=min(L, seq_len), fmt=fmt, kv_fmt=kv_fmt)
    out["paper"] = dict(PAPER)
    out["gpu"] = gpu_times(B, L, V, iters=gpu_iters) if gpu else {"available": False, "reason": "not asked (--no-gpu)"}
    g = out["gpu"]
    if g.get("available"):
        for key in ("eager_ms", "compile_ms"):
            if g.get(key):
                g[f"{key[:-3]}_over_npu_fused"] = g[key] / out["flows"]["fused"]["ms"]
    return out


def _gpu_step(logits, mask, x, k):
    """The sampling step on device tensors, in the PyTorch user's float32 arithmetic."""
    from dnpu.sampling.reference import rule

    return rule(logits, mask, x, k)


def gpu_times(B: int, L: int, V: int, iters: int = 50, warmup: int = 5) -> dict[str, Any]:
    """Milliseconds of one step on the CUDA GPU (eager and torch.compile, CUDA events, median of
    `iters`), or {"available": False, "reason": ...} without one."""
    try:
        import torch
    except ImportError:
        return {"available": False, "reason": "torch is not installed"}
    if not torch.cuda.is_available():
        return {"available": False, "reason": "no CUDA GPU (torch.cuda.is_available() is False): GPU timing skipped"}
    dev = torch.device("cuda")
    g = torch.Generator(device=dev).manual_seed(0)
    logits = torch.randn((B, L, V), device=dev, generator=g).to(torch.bfloat16)
    mask = torch.rand((B, L), device=dev, generator=g) < 0.7
    x = torch.randint(0, V, (B, L), device=dev, generator=g)
    k = torch.clamp(mask.sum(1), max=max(1, L // 4))
    out: dict[str, Any] = {"available": True, "device": torch.cuda.get_device_name(dev),
                           "torch": torch.__version__, "dtype": "bf16 logits, fp32 arithmetic", "iters": iters}

    def timed(fn) -> float:
        for _ in range(warmup):
            fn(logits, mask, x, k)
        torch.cuda.synchronize()
        ts = []
        for _ in range(iters):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn(logits, mask, x, k)
            b.record()
            torch.cuda.synchronize()
            ts.append(a.elapsed_time(b))
        ts.sort()
        return ts[len(ts) // 2]

    out["eager_ms"] = timed(_gpu_step)
    try:
        out["compile_ms"] = timed(torch.compile(_gpu_step))
    except Exception as e:  # a compiler toolchain missing on the machine: report, keep eager
        out["compile_ms"] = None
        out["compile_error"] = f"{type(e).__name__}: {e}"[:500]
    return out


def bench_row(config: str = "asic-2048", B: int = 16, L: int = 32, V: int = 126464, mode: str = "topk",
              fmt: str = "e4m3", flow: str = "fused", port: str = "rtl") -> dict[str, Any]:
    """One row for `dnpu bench`: the analytical latency of a sampling step on `config` (no GPU, no RTL)."""
    cfg = config_mod.load(config)
    est = analytical.step(cfg, B, L, V, mode, flow, fmt, port=port, pad=True)
    b = analytical.bound(cfg, B, L, V, fmt)
    return {"backend": "analytical", "config": cfg.name, "port": port, "flow": flow, "mode": mode, "fmt": fmt,
            "B": B, "L": L, "V": V, "V_padded": est.what["V_padded"], "cycles": est.cycles,
            "f_clk_mhz": cfg.clock.f_clk_mhz, "ms": est.seconds * 1e3,
            "phase_fractions": {k: round(v, 4) for k, v in est.fractions().items()},
            "bound_cycles": b["cycles"], "over_bound": est.cycles / b["cycles"],
            "paper_ms": PAPER["ms"] if cfg.name == "asic-2048" else None}


def format_table(p: dict[str, Any]) -> str:
    """The projection as a text table."""
    f = p["f_clk_mhz"]
    rows = [("what", "cycles", "ms", "x bound", "memory/vector/scalar/control")]

    def fr(e):
        x = e["phase_fractions"]
        return "/".join(f"{100 * x[k]:.0f}%" for k in ("memory", "vector", "scalar", "control"))

    for label, key in (("dnpu RTL port", "flows"), ("dnpu ideal port", "flows_ideal_port")):
        for flow in FLOWS_FUSED_FIRST:
            e = p[key].get(flow, {})
            if "cycles" in e:
                rows.append((f"{label}, {flow}", f"{e['cycles']:,}", f"{e['ms']:.3f}", f"{e['over_bound']:.1f}",
                             fr(e)))
            else:
                rows.append((f"{label}, {flow}", "-", "-", "-", e.get("error", "")[:60]))
    pa = p["paper"]
    rows.append(("paper (reported), VLEN 2048", f"{pa['cycles']:,}", f"{pa['ms']:.2f}",
                 f"{pa['cycles'] / p['bound']['cycles']:.1f}",
                 f"40%/48%/12%/- (memory/vector/scalar)"))
    rows.append(("RTX A6000 (reported)", "-", f"{pa['a6000_ms']:.2f}", "-", ""))
    g = p["gpu"]
    if g.get("available"):
        rows.append((f"{g['device']} eager", "-", f"{g['eager_ms']:.3f}", "-", ""))
        if g.get("compile_ms"):
            rows.append((f"{g['device']} torch.compile", "-", f"{g['compile_ms']:.3f}", "-", ""))
    b = p["bound"]
    rows.append(("single-pass bound max(BLV/VLEN, bytes/bpc)", f"{b['cycles']:,.0f}", f"{b['ms']:.4f}", "1.0",
                 f"vector {b['vector_cycles']:,.0f}, memory {b['memory_cycles']:,.0f}"))
    rows.append(("bound with one AXI port", f"{b['port_cycles']:,.0f}", f"{b['port_ms']:.3f}",
                 f"{b['port_cycles'] / b['cycles']:.1f}", f"{p['axi_port_bytes_per_cycle']} B/cycle port"))
    w = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [f"sampling step on {p['config']} at {f:g} MHz: B={p['B']} L={p['L']} V={p['V']}"
             + (f" (program V padded to {p['V_padded']})" if p.get("V_padded", p["V"]) != p["V"] else "")
             + f", {p['mode']} commit, {p['fmt']} logits"]
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w[j]) if j == 0 or j == 4 else c.rjust(w[j]) for j, c in enumerate(r)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * x for x in w))
    mp = p.get("matrix", {})
    if mp.get("available"):
        for port, e in mp["ports"].items():
            lines.append(f"LLaDA-8B linear layers, {mp['M']} token rows, {port} port: {e['cycles']:,} cycles = "
                         f"{e['ms']:.1f} ms, {e['macs_per_cycle']:,.0f} MACs/cycle of {mp['peak_macs_per_cycle']:,} "
                         f"({100 * e['utilization']:.1f} %)")
    elif mp:
        lines.append(f"matrix unit: {mp['reason']}")
    if p.get("forward"):
        lines.append(format_forward(p["forward"]))
    if not g.get("available"):
        lines.append(f"GPU: {g.get('reason')}")
    else:
        lines.append(f"GPU {g['device']}: eager {g['eager_ms']:.3f} ms"
                     + (f", torch.compile {g['compile_ms']:.3f} ms" if g.get("compile_ms") else "")
                     + f"; GPU eager / NPU fused (RTL port) = {g.get('eager_over_npu_fused', float('nan')):.2f}x")
    return "\n".join(lines)
