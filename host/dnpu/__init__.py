"""dnpu: an NPU for diffusion-LLM sampling, its runtime, and its reference models."""

__version__ = "0.1.0"
