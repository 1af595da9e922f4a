"""dnpu: an NPU for diffusion-LLM inference, its runtime, and its reference models.

Layers, each importing only from those above it in this list (docs/ARCHITECTURE.md):
spec, codegen, emu and compiler, runtime, sampling, model and ops, generation, perf,
verify, bench, cli.
"""

import sys as _sys

from dnpu.spec import mx  # noqa: F401  (public: `dnpu.mx`, `import dnpu.mx`)

__version__ = "0.1.0"

# `import dnpu.mx` / `from dnpu.mx import ...` name the spec module itself.
_sys.modules.setdefault(f"{__name__}.mx", mx)


def __getattr__(name):
    # `dnpu.generate(...)` without importing torch on `import dnpu`: the function lives in
    # dnpu.generation (a module named `generate` would shadow the function once imported).
    if name == "generate":
        from dnpu.generation import generate

        return generate
    if name == "forward":
        from dnpu.model.npu import forward

        return forward
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
