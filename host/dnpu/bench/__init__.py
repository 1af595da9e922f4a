"""`dnpu bench`: where the time of a generation goes, PyTorch sampling vs the NPU.

One run generates on a model (default: the shipped tiny model, a few held-out
prompts of its task, its ``dnpu_task.json`` settings) and reports, per step and in
total:

* **forward**: the model forward of the step, replayed ``reps`` times (median) on
  the model's device (``kv_cache="none"``; with a cache, the single timing the
  generation took);
* **PyTorch baseline sampling**: LLaDA's low-confidence sampling written natively
  in PyTorch (softmax in FP32 of the model's logits, argmax, top-k quota or
  Fast-dLLM threshold commit; :func:`dnpu.sampling.reference.rule`) on the step's logits, already on
  the device, in eager mode and under ``torch.compile`` (median of ``reps``; a
  compile failure is recorded, not raised). On a GPU it is timed with CUDA events;
  on a CPU with ``time.perf_counter``, and the table and JSON say so;
* **NPU sampling**: the step run by ``backend`` (``verilator``: the RTL in
  co-simulation) on the ``config`` profile, for each flow (``phased``, ``fused``),
  as the NPU's cycle counter / the profile's clock (``RunInfo.cycles / f_clk``;
  the emulator has no clock, so on ``emu`` the analytical model of the same program
  stands in and the source says so). The analytical cycles of the same program are
  recorded beside the measured ones;
* **projection**: the analytical model (:mod:`dnpu.perf.analytical`) of the same
  step shapes on ``project_config`` (default ``asic-2048``; the vocabulary padded to
  its VLEN), and :func:`dnpu.perf.project.bench_row` at LLaDA-8B scale;
* tokens/s (generated tokens / (forward + sampling), per implementation) and
  sampling's share of the step time.

Every NPU generation is checked token for token against the torch reference
sampler (:func:`dnpu.sampling.transfer` with ``backend="torch"``): the same MX
logits, so the tokens must agree (``tokens_match``; the command exits 1 if not).

    r = dnpu.bench.run(backend="verilator", prompts=4)
    print(dnpu.bench.format_table(r)); dnpu.bench.plot(r, "bench.png")

The measurements are in :mod:`dnpu.bench.measure`, the table and the chart in
:mod:`dnpu.bench.report`.
"""

from __future__ import annotations

from typing import Any, Callable

from dnpu.bench import measure
from dnpu.bench.measure import FLOWS, environment
from dnpu.bench.report import format_table, plot

__all__ = ["run", "format_table", "plot", "environment", "FLOWS"]


def run(model_dir=None, *, backend: str = "verilator", prompts: int = 4, config: str = "sim",
        project_config: str = "asic-2048", flows=FLOWS, gen_length: int | None = None,
        block_length: int | None = None, steps: int | None = None, threshold: float | None = None,
        kv_cache: str = "none", fmt: str = "e4m3", compile: bool = True, reps: int = 20, seed: int = 0,
        device=None, dtype: str = "bf16", threads: int | None = None, llada: bool = True,
        progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Run the benchmark (module docstring); returns the JSON-ready result.

    threads: torch's CPU threads during the run (restored after). None: 1 when the model is on
    the CPU (a tiny model gains nothing from more, and on a shared or busy CPU torch's threads
    wait on each other at every op: 2 threads on a loaded 2-core machine made the tiny model's
    forward 50x slower), else torch's default.
    progress: called as ``progress(done, total)`` as the run's steps (each generation, the
    baseline timings, the NPU cycles, the LLaDA-scale rows) finish."""
    import torch

    flows = measure.check_args(backend, flows, prompts, reps)
    old_threads = torch.get_num_threads()
    try:
        s = measure.setup(model_dir, prompts=prompts, config=config, project_config=project_config,
                          overrides=dict(gen_length=gen_length, block_length=block_length, steps=steps,
                                         threshold=threshold, kv_cache=kv_cache, fmt=fmt),
                          seed=seed, device=device, dtype=dtype, threads=threads)
        stage = measure.Stages(progress, 3 + len(flows) + bool(compile) + bool(llada))
        g = measure.generate_all(s, backend, flows, seed, stage)
        timed = measure.timer(s.dev, reps)
        rows, inputs = measure.time_baseline(s, g.ref_log, timed, kv_cache)
        stage()
        compile_info = {"enabled": False}
        if compile:
            compile_info = measure.time_compiled(rows, inputs, s.dev, timed)
            stage()
        measure.npu_cycles(rows, g.npu_logs, s, backend, flows, fmt)
        totals, skipped = measure.sum_totals(rows, s, backend, flows, s.ids.shape[0] * s.settings["gen_length"])
        stage()
        llada_rows = {}
        if llada:
            llada_rows = measure.llada_scale(s.pcfg, flows, fmt)
            stage()
        return measure.summary(model_dir, s, g, backend=backend, flows=flows, seed=seed, reps=reps, rows=rows,
                               compile_info=compile_info, totals=totals, skipped=skipped, llada_rows=llada_rows)
    finally:
        torch.set_num_threads(old_threads)
