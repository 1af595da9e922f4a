"""`make demo`: the most complete thing dnpu can show today.

Generation with NPU sampling in co-simulation is not built yet (issues 3-6);
until it is, this shows the foundation those build on: a hardware profile, one
diffusion step's logits at LLaDA scale through the MX codec and the packed
layout the NPU reads, and a program through the assembler and disassembler.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from dnpu import config, isa, mx

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    print("dnpu demo: the foundation (generation with NPU sampling arrives with issues 3-6)\n")

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
    print("\nNext: `make test` runs the suite; `dnpu info --config pynq-z2` shows the board profile.")


if __name__ == "__main__":
    main()
