"""Loading and saving checkpoints in the Hugging Face layout LLaDA uses, as a PyTorch
model (`dnpu.model.checkpoint` reads the directory: its layout, config and weights).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .checkpoint import (DEFAULT_MODEL_DIR, CheckpointError, check_tensors, model_dir, model_info, read_config,
                         read_weights)
from .llada import LLaDA
from .tokenizer import Tokenizer, load_tokenizer

__all__ = ["load", "save", "CheckpointError", "DEFAULT_MODEL_DIR", "model_info", "pick_device"]


def pick_device(device=None) -> torch.device:
    """``device`` if given, else CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown torch device {device!r}: use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for CUDA but torch.cuda.is_available() is False")
    if dev.type == "meta":
        raise ValueError("device 'meta' holds no data: use cpu, cuda or cuda:N")
    try:        # a device torch knows but this machine lacks (cuda:7 on one GPU, mps off a Mac)
        torch.empty(0, device=dev)
    except (RuntimeError, AssertionError) as e:
        raise ValueError(f"device {device!r} is not available here: {str(e).splitlines()[0]}") from None
    return dev


def _dtype(dtype) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    names = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp32": torch.float32,
             "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16}
    if dtype not in names:
        raise ValueError(f"unknown dtype {dtype!r}: use one of {', '.join(names)}")
    return names[dtype]


def load(path=None, *, device=None, dtype=None) -> tuple[LLaDA, Tokenizer]:
    """Load ``(model, tokenizer)`` from a model directory (default: the shipped tiny model).

    ``device``: default CUDA when available, else CPU. ``dtype``: e.g. ``"bf16"``;
    default: the checkpoint's. The model is in eval mode. Raises
    :class:`CheckpointError` (a ValueError) naming every missing, unexpected or mis-shaped
    tensor, or the file that is not valid (``config.json``, a truncated or corrupt
    ``*.safetensors``), ValueError for a bad ``tokenizer.json``, ``device`` or ``dtype``, and
    FileNotFoundError for a missing directory or file.
    """
    from safetensors.torch import load_file

    d = model_dir(path)
    cfg = read_config(d)
    with torch.device("meta"):
        model = LLaDA(cfg)
    tensors = read_weights(d, load_file)
    check_tensors(d, model.expected_shapes(), {k: tuple(v.shape) for k, v in tensors.items()})
    model.load_state_dict(tensors, assign=True)
    want = _dtype(dtype)
    model = model.to(device=pick_device(device), dtype=want) if want else model.to(pick_device(device))
    model.eval()
    tok = load_tokenizer(d)
    if tok.mask_token_id is not None and tok.mask_token_id != cfg.mask_token_id:
        raise CheckpointError(f"tokenizer's mask token id {tok.mask_token_id} != config mask_token_id "
                              f"{cfg.mask_token_id}")
    return model, tok


def save(model: LLaDA, path, tokenizer_json: dict | None = None, dtype=torch.float32,
         extra_files: dict[str, dict] | None = None) -> Path:
    """Write ``config.json``, ``model.safetensors`` (``dtype``), ``tokenizer.json`` and
    any ``extra_files`` (name -> JSON content) into directory ``path``."""
    from safetensors.torch import save_file

    d = Path(path)
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(model.config.to_json())
    sd = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    save_file(sd, str(d / "model.safetensors"), metadata={"format": "pt"})
    (d / "model.safetensors").chmod(0o644)  # safetensors writes 0600; the checkpoint is shared
    if tokenizer_json is not None:
        (d / "tokenizer.json").write_text(json.dumps(tokenizer_json, indent=1, ensure_ascii=False) + "\n")
    for name, content in (extra_files or {}).items():
        (d / name).write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
    return d
