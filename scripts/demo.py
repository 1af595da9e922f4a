"""`make demo`: generation on the shipped model with the sampling step on the NPU's RTL.

1. Build (or find in the cache) the Verilator co-simulation of the `sim` profile.
2. `dnpu generate --backend verilator` on a held-out prompt of the model's task:
   every sampling step's MX logits go to the RTL, which commits the tokens.
3. `dnpu.bench` on the same prompt: the generation again on the torch reference
   sampler and on the RTL in both flows; the tokens must be identical (exit 1
   otherwise); then the timing table: model forward, NPU cycles and time at the
   profile's clock, PyTorch sampling time, tokens/s, and the asic-2048 projection.
"""

from __future__ import annotations

import sys
import time


def main() -> int:
    from dnpu import bench, cli
    from dnpu.model import get_task, model_info
    from dnpu.runtime import cosim

    t0 = time.perf_counter()
    task = get_task(model_info()["task"])
    a, b = task.heldout(1, seed=0)[0]
    prompt = task.prompt(a, b)
    print(f"dnpu demo: the shipped tiny LLaDA model ({task.name}) with its sampling step on the NPU RTL\n")

    res = cosim.ensure_built("sim", log=lambda m: print(f"  {m} (a minute or two) ...", flush=True))
    print(f"co-simulation model (profile sim): {'built' if res.built else 'cached'} in {res.seconds:.1f} s "
          f"({res.dir})\n")

    print(f"$ dnpu generate --backend verilator --threads 1 --prompt '{prompt}'    "
          f"(expected answer {task.answer(a, b)})", flush=True)
    rc = cli.main(["generate", "--backend", "verilator", "--threads", "1", "--prompt", prompt])
    if rc:
        return rc

    print("\n$ dnpu bench --backend verilator --prompts 1 --no-compile   (the same prompt)\n", flush=True)
    r = bench.run(backend="verilator", prompts=1, compile=False, reps=10, seed=0)
    print(bench.format_table(r, per_step=False))
    print(f"\ndemo wall time {time.perf_counter() - t0:.1f} s. More: `dnpu bench --json b.json --plot b.png` "
          f"(torch.compile, per-step table), `dnpu eval`, `dnpu project`, `make test`.")
    if not r["tokens_match"]:
        print(f"demo: FAILED: the RTL's tokens differ from the torch sampler's: {r['token_mismatches']}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
