"""`make demo`: generation on the shipped model with the whole diffusion step on the NPU's RTL.

1. Build (or find in the cache) the Verilator co-simulation of the `sim` profile.
2. `dnpu generate --backend verilator --forward npu` on a held-out prompt of the model's
   task: every step's forward (embedding, RMSNorm, projections on the matrix unit, RoPE,
   streaming-softmax attention, SwiGLU, LM head) and its sampling run on the RTL; the host
   only tokenizes and loops.
3. `dnpu bench --forward npu` on the same prompt: the generation again, each step's cycles
   split by kind of work, time and tokens/s at the profile's clock beside PyTorch's forward
   + sampling. Its tokens must equal the emulator's with the same programs (exit 1
   otherwise), and are set beside the host path's (PyTorch forward, torch sampler).
"""

from __future__ import annotations

import sys
import time


def main() -> int:
    from dnpu import cli
    from dnpu.bench.step import format_forward_table, run_forward
    from dnpu.generation import generate
    from dnpu.model import get_task, load, model_info
    from dnpu.model.tasks import generation_defaults
    from dnpu.runtime import cosim

    t0 = time.perf_counter()
    info = model_info()
    task = get_task(info["task"])
    problem = task.heldout(1, seed=0)[0]
    prompt = task.prompt(*problem)
    print(f"dnpu demo: the shipped tiny LLaDA model ({task.name}) with the whole diffusion step on the NPU RTL\n")

    res = cosim.ensure_built("sim", log=lambda m: print(f"  {m} (a minute or two) ...", flush=True))
    print(f"co-simulation model (profile sim): {'built' if res.built else 'cached'} in {res.seconds:.1f} s "
          f"({res.dir})\n")

    print(f"$ dnpu generate --backend verilator --forward npu --threads 1 --prompt '{prompt}'    "
          f"(expected answer {task.answer(*problem)})", flush=True)
    rc = cli.main(["generate", "--backend", "verilator", "--forward", "npu", "--threads", "1", "--prompt", prompt])
    if rc:
        return rc

    print("\n$ dnpu bench --forward npu --backend verilator --prompts 1   (the same prompt)\n", flush=True)
    r = run_forward(backend="verilator", prompts=1, reps=5, seed=0)
    print(format_forward_table(r))

    model, tok = load(device="cpu")
    settings = generation_defaults(info, task)
    ids, _ = task.encode_problems(tok, [problem])
    P = ids.shape[1]
    emu = generate(model, ids, sampler="emu", forward="npu", **settings)[0, P:].tolist()
    host = generate(model, ids, sampler="torch", **settings)[0, P:].tolist()
    rtl = r["generated"][0]
    show = lambda t: tok.decode(t[:t.index(tok.eos_token_id)] if tok.eos_token_id in t else t)  # noqa: E731
    print(f"\ntokens: RTL {show(rtl)!r}, emulator {show(emu)!r}, host path (PyTorch forward) {show(host)!r}, "
          f"expected {task.answer(*problem)!r}")
    print(f"\ndemo wall time {time.perf_counter() - t0:.1f} s. More: `dnpu check-generate --forward npu`, "
          f"`dnpu bench --forward npu --json b.json --plot b.png`, `dnpu compile`, `make test`.")
    if rtl != emu:
        print("demo: FAILED: the RTL's tokens differ from the emulator's running the same programs", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
