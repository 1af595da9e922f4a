"""The whole diffusion step at LLaDA-8B scale: the compiled forward program, costed.

`forward_projection()` compiles `dnpu.compiler.forward` for LLaDA-8B's shapes (d_model 4096,
32 heads of 128, MLP 12288, vocabulary 126464) at `seq_len` tokens, the program's sampling
tail on one block of `block` positions, and costs it with `dnpu.perf.analytical.program`
(the instruction-level model `dnpu check-perf` holds within 5 % of the RTL), split by the
program's sections. A program of all 32 layers would need an address space of several
weight images, so the model costs the one-layer and the two-layer programs and extends
the difference: every layer is the same code on other weights, so
    cycles(32 layers) = cycles(1) + 31 * (cycles(2) - cycles(1)),
section by section.

The step keeps every activation of the sequence in vector SRAM (the compiler's schedule:
no activation leaves the chip). asic-2048's 512 rows hold a few tokens of a 4096-wide
model, so the projection runs on a variant of the profile whose vector SRAM is deep
enough (`vector_rows_needed`, the smallest power of two that compiles), every other
parameter unchanged; the result says so. A token-tiled schedule that keeps only a tile of
activations on chip would re-stream the weights per tile instead.
"""

from __future__ import annotations

from typing import Any

from dnpu.compiler import CompileError
from dnpu.compiler.forward import ForwardShape, KvStep, forward_program, head_layout, kv_traffic
from dnpu.perf import analytical
from dnpu.runtime import HEAP_BASE
from dnpu.spec import config as config_mod
from dnpu.spec import mx

__all__ = ["LLADA_8B", "forward_projection", "fitting_variant", "format_forward", "GROUPS"]

# LLaDA-8B's shapes (its published config, shared/REFERENCE.md's summary of it).
LLADA_8B = {"layers": 32, "d_model": 4096, "heads": 32, "mlp": 12288, "vocab": 126464}

# report group -> the forward's sections in it (dnpu.compiler.forward.SECTIONS): the one
# grouping of the projection and of `dnpu bench --forward npu`
GROUPS = {"embedding": ("embedding",), "linear": ("linear",), "attention": ("rope", "attention"),
          "norms/activations": ("norm", "activation"), "sampling": ("sample",), "kv cache": ("kv",),
          "other": ("setup", "store")}


def _shape(model: dict, layers: int, seq_len: int) -> ForwardShape:
    return ForwardShape(d_model=model["d_model"], n_heads=model["heads"], n_layers=layers,
                        mlp_hidden=model["mlp"], embedding_size=model["vocab"], seq_len=seq_len)


def fitting_variant(cfg, seq_len: int, fmt: str = "e4m3", model: dict = LLADA_8B):
    """(profile, program of one layer): cfg itself when the step compiles there, else the
    variant with the smallest power-of-two vector SRAM that holds it."""
    rows = cfg.sram.vector_rows
    last: CompileError | None = None
    while rows <= 1 << 20:
        c = cfg if rows == cfg.sram.vector_rows else analytical.variant(
            cfg, f"{cfg.name}+sram{rows}", sram__vector_rows=rows)
        try:
            return c, forward_program(c, _shape(model, 1, seq_len), fmt)
        except CompileError as e:
            last = e
            rows *= 2
    raise CompileError(f"the model at {seq_len} tokens does not compile on {cfg.name} even with a "
                       f"vector SRAM of {1 << 20} rows: {last}")


def _sections(m, prog, block: int) -> tuple[dict[str, int], analytical.Estimate]:
    """Cycles of one run of prog by section, and the estimate."""
    base = HEAP_BASE
    weights = mx.align_up(base + prog.kernel.nbytes, 1 << 16)
    args = prog.args(base, weights, start=prog.shape.seq_len - block, length=block, logits_rows=0)
    est = analytical.program(m, prog.kernel.binary, args, base, pc_cycles=True)
    out: dict[str, int] = {}
    for pc, c in est.pc_cycles.items():
        s = prog.section_of((pc - base) // 4)
        out[s] = out.get(s, 0) + c
    out["setup"] = out.get("setup", 0) + est.cycles - sum(est.pc_cycles.values())   # start/stop, fetch misses
    return out, est


def _extended(m, one, two, layers: int, block: int) -> dict[str, int]:
    """Cycles by section of `layers` layers from the one- and two-layer programs."""
    s1, _ = _sections(m, one, block)
    s2, _ = _sections(m, two, block)
    return {k: s1.get(k, 0) + (layers - 1) * (s2.get(k, 0) - s1.get(k, 0)) for k in set(s1) | set(s2)}


def forward_projection(config: str = "asic-2048", seq_len: int = 128, block: int = 32, fmt: str = "e4m3",
                       model: dict = LLADA_8B, kv_fmt: str | None = None) -> dict[str, Any]:
    """One diffusion step of `model` (default LLaDA-8B; keys as LLADA_8B) as the module
    docstring says, for both memory ports: cycles, ms, steps/s and the split into GROUPS;
    beside it how the compiler laid the step out on the profile (padded head, key tile).
    With `kv_fmt`, also the steps of a dual KV cache in that format (`kv`): a block's
    refresh (the step and the cache's stores) and a later step (the last block of the
    sequence: its rows computed, the cache read back), their cycles and KV bytes."""
    cfg = config_mod.load(config) if isinstance(config, str) else config
    if not 1 <= block <= seq_len:
        raise ValueError(f"block {block} must be in 1..seq_len ({seq_len})")
    layers = model["layers"]
    c, one = fitting_variant(cfg, seq_len, fmt, model)
    two = forward_program(c, _shape(model, 2, seq_len), fmt)
    hd = model["d_model"] // model["heads"]
    out: dict[str, Any] = {"config": cfg.name, "seq_len": seq_len, "block": block, "fmt": fmt, "layers": layers,
                           "model": dict(model), "f_clk_mhz": cfg.clock.f_clk_mhz,
                           "vector_rows": cfg.sram.vector_rows, "vector_rows_needed": c.sram.vector_rows,
                           "head_dim": hd, "head_dim_padded": head_layout(c, hd)[0], "key_tile": one.key_tile,
                           "mlp_chunk": one.mlp_chunk, "program_words_one_layer": len(one.kernel.binary) // 4,
                           "weights_bytes_one_layer": one.weights_nbytes, "ports": {}}
    kv_progs = {}
    if kv_fmt:
        full = _shape(model, layers, seq_len)
        for mode, kv in (("refresh", KvStep("refresh", kv_fmt)), ("dual", KvStep("dual", kv_fmt, seq_len - block, block))):
            kv_progs[mode] = (forward_program(c, _shape(model, 1, seq_len), fmt, kv),
                              forward_program(c, _shape(model, 2, seq_len), fmt, kv), kv_traffic(c, full, kv))
    for port in ("rtl", "ideal"):
        m = analytical.machine(c, port)
        sec = _extended(m, one, two, layers, block)
        total = sum(sec.values())
        groups = {g: sum(sec.get(s, 0) for s in ss) for g, ss in GROUPS.items()}
        ms = total / (cfg.clock.f_clk_mhz * 1e3)
        out["ports"][port] = {"cycles": total, "ms": ms, "steps_per_s": 1e3 / ms, "groups": groups,
                              "fractions": {g: v / total for g, v in groups.items()}}
        if kv_progs:
            out["ports"][port]["kv"] = kv = {"fmt": kv_fmt}
            for mode, (p1, p2, (wr, rd)) in kv_progs.items():
                cyc = sum(_extended(m, p1, p2, layers, block).values())
                kv[mode] = {"cycles": cyc, "ms": cyc / (cfg.clock.f_clk_mhz * 1e3), "over_no_cache": cyc / total,
                            "kv_bytes_written": wr, "kv_bytes_read": rd}
    return out


def format_forward(p: dict[str, Any]) -> str:
    """The projection as a few lines of text."""
    lines = [f"whole step of a {p['layers']}-layer LLaDA (heads {p['model']['heads']}, d {p['model']['d_model']}, MLP {p['model']['mlp']}, "
             f"vocab {p['model']['vocab']}) at {p['seq_len']} tokens, block {p['block']}, {p['fmt']} weights, "
             f"on {p['config']} at {p['f_clk_mhz']:g} MHz"]
    if p["vector_rows_needed"] != p["vector_rows"]:
        lines.append(f"  (activations on chip: vector SRAM of {p['vector_rows_needed']:,} rows assumed; "
                     f"the profile has {p['vector_rows']:,})")
    pads = ([f"heads of {p['head_dim']} padded to {p['head_dim_padded']}"] if p["head_dim_padded"] != p["head_dim"]
            else []) + ([f"{p['seq_len']} keys padded to a tile of {p['key_tile']}"] if p["key_tile"] > p["seq_len"]
                        else [])
    if pads:
        lines.append(f"  (attention at the profile's row width: {', '.join(pads)})")
    for port, e in p["ports"].items():
        split = ", ".join(f"{g} {100 * f:.1f}%" for g, f in e["fractions"].items() if f >= 0.0005)
        lines.append(f"  {port} port: {e['cycles']:,} cycles = {e['ms']:.1f} ms a step ({e['steps_per_s']:.2f} "
                     f"steps/s): {split}")
        if "kv" in e:
            r, d = e["kv"]["refresh"], e["kv"]["dual"]
            lines.append(f"    dual {e['kv']['fmt']} KV cache: refresh {r['cycles']:,} cycles "
                         f"({r['over_no_cache']:.2f}x, {r['kv_bytes_written'] / 2**20:,.0f} MiB written), later step "
                         f"{d['cycles']:,} ({d['over_no_cache']:.2f}x, {d['kv_bytes_read'] / 2**20:,.0f} MiB read)")
    return "\n".join(lines)
