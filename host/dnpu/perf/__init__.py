"""dnpu.perf: the analytical performance model, its check against RTL cycles, the projection.

    from dnpu.perf import analytical
    est = analytical.step("sim", B=2, L=8, V=4096, mode="topk", flow="fused")
    est.cycles, est.phases, est.seconds
    analytical.bound(cfg, B, L, V, "e4m3")          # the single-pass bound

`analytical` is the model (each instruction the emulator executes, run without its data
path, costed at its operand values); `dnpu.verify.perf` runs it beside the Verilator
co-simulation (`dnpu check-perf`); `project` gives the LLaDA-8B-scale projection and the
GPU comparison (`dnpu project`); `sweep` the design-space sweep behind scripts/sweep.py.
docs/PERF.md describes the model and every constant.
"""

from dnpu.perf import analytical  # noqa: F401

__all__ = ["analytical"]
