"""dnpu: an NPU for diffusion-LLM sampling, its runtime, and its reference models."""

__version__ = "0.1.0"


def __getattr__(name):
    # `dnpu.generate(...)` without importing torch on `import dnpu`: the function lives in
    # dnpu.generation (a module named `generate` would shadow the function once imported).
    if name == "generate":
        from .generation import generate

        return generate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
