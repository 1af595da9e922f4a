"""`make demo`: the most complete thing dnpu can show today.

Generation with NPU sampling in co-simulation is not built yet (the RTL, the
Verilator runtime and the model come with issues 4-6); until it is, this shows
what exists: a hardware profile, one diffusion step's logits at LLaDA scale
through the MX codec, a program through the assembler, and one sampling step
compiled for the NPU and run on the functional emulator (the bit-exact model the
RTL will be checked against) beside the PyTorch float64 reference.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from dnpu import config, isa, mx, sampling

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    print("dnpu demo: what exists today (generation with NPU sampling in co-sim arrives with issues 4-6)\n")

    cfg = config.load("sim")
    print(cfg.describe(), "\n")

    # One sampling step's logits at LLaDA scale: 32 positions x 126464 vocabulary.
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((32, 126464), dtype=np.float32) * 3.0)
    mx.quantize(logits, "e4m3")  # warm-up
    t0 = time.perf_counter()
    q = mx.quantize(logits, "e4m3", block=cfg.mx.block)
    t_q = time.perf_counter() - t0
    packed = mx.pack(q)
    deq = mx.dequantize(q)
    rel = np.abs(deq - logits) / np.maximum(np.abs(logits), 1e-30)
    agree = np.mean(np.argmax(deq, axis=-1) == np.argmax(logits, axis=-1))
    print(f"MX e4m3, block {cfg.mx.block}: 32 x 126464 logits quantized in {t_q * 1e3:.1f} ms")
    print(f"  packed {len(packed):,} bytes vs {logits.nbytes:,} as float32 "
          f"({logits.nbytes / len(packed):.2f}x smaller), {len(packed) // cfg.beat_bytes:,} "
          f"full {cfg.axi.data_width}-bit beats")
    print(f"  median relative error {np.median(rel):.4f}; argmax unchanged on {agree:.0%} of positions "
          f"(quantization ties can move it: the NPU samples the quantized values, as the reference does)\n")

    src = REPO / "examples" / "argmax_rows.s"
    binary = isa.assemble(src.read_text(), filename=str(src.relative_to(REPO)))
    print(f"{src.relative_to(REPO)}: {len(binary) // 4} instructions; disassembled:")
    for line in isa.disassemble(binary):
        print("  " + line)
    # One sampling step on the emulator (the NPU's binary program) and on torch.
    B, L, V = 1, 32, 4096
    logits = rng.standard_normal((B, L, V), dtype=np.float32) * 2.0
    logits[0, np.arange(L), rng.integers(0, V, L)] += np.linspace(2.0, 9.0, L, dtype=np.float32)
    mask = np.ones((B, L), bool)
    x = np.full((B, L), V - 1, np.int64)
    print(f"\nOne LLaDA sampling step, B={B} L={L} V={V}, commit k=8, e4m3 logits:")
    ref = sampling.transfer(logits, mask, x, k=8, backend="torch")
    for flow in ("phased", "fused"):
        t0 = time.perf_counter()
        got = sampling.transfer(logits, mask, x, k=8, backend="emu", flow=flow)
        dt = time.perf_counter() - t0
        err = np.max(np.abs(got.conf / ref.conf - 1))
        print(f"  emu {flow:6s}: x0 equal {np.array_equal(got.x0, ref.x0)}, x_new equal "
              f"{np.array_equal(got.x_new, ref.x_new)}, max relative confidence error {err:.2e} "
              f"({dt * 1e3:.0f} ms in the emulator)")
    print(f"  committed positions: {np.flatnonzero(ref.x_new[0] != x[0]).tolist()}")
    print("\nNext: `make test` runs the suite; `dnpu info --config pynq-z2` shows the board profile.")


if __name__ == "__main__":
    main()
