"""Loading and saving checkpoints in the Hugging Face layout LLaDA uses.

A model directory holds ``config.json`` (LLaDA's field names), the weights in one
or more ``*.safetensors`` files under LLaDA's key names
(``model.transformer.wte.weight``, ``model.transformer.blocks.{i}.q_proj.weight``
... ``model.transformer.ff_out.weight``) and a ``tokenizer.json``. dnpu's own
models add ``dnpu_task.json`` (the task they were trained on and their default
generation settings) and ``training.json`` (how they were trained).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .llada import LLaDA, LLaDAConfig
from .tokenizer import Tokenizer, load_tokenizer

__all__ = ["load", "save", "CheckpointError", "DEFAULT_MODEL_DIR", "model_info", "pick_device"]

# The shipped tiny model, in the repository (the package is installed editable).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[3] / "models" / "tiny-add"


class CheckpointError(ValueError):
    """A checkpoint that does not match its config: the message lists every problem."""


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


def _model_dir(path) -> Path:
    p = Path(path) if path is not None else DEFAULT_MODEL_DIR
    if not p.is_dir():
        hint = " (the shipped model: run scripts/train_tiny.py to rebuild it)" if path is None else ""
        raise FileNotFoundError(f"model directory {p} does not exist{hint}")
    return p


def _read_weights(d: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(d.glob("*.safetensors"))
    if not files:
        raise CheckpointError(f"{d} holds no *.safetensors file")
    tensors: dict[str, torch.Tensor] = {}
    dup: list[str] = []
    for f in files:
        try:
            loaded = load_file(str(f))
        except OSError as e:
            raise CheckpointError(f"cannot read {f}: {e.strerror or e}") from None
        except Exception as e:  # noqa: BLE001 - safetensors' SafetensorError derives from Exception only
            raise CheckpointError(f"{f} is not a valid safetensors file (truncated or corrupt?): {e}") from None
        for k, v in loaded.items():
            if k in tensors:
                dup.append(f"{k} (again in {f.name})")
            tensors[k] = v
    if dup:
        raise CheckpointError(f"{d}: tensors stored twice: {', '.join(dup)}")
    return tensors


def model_info(path=None) -> dict:
    """``dnpu_task.json`` of a model directory ({} when absent)."""
    f = _model_dir(path) / "dnpu_task.json"
    return json.loads(f.read_text()) if f.is_file() else {}


def load(path=None, *, device=None, dtype=None) -> tuple[LLaDA, Tokenizer]:
    """Load ``(model, tokenizer)`` from a model directory (default: the shipped tiny model).

    ``device``: default CUDA when available, else CPU. ``dtype``: e.g. ``"bf16"``;
    default: the checkpoint's. The model is in eval mode. Raises
    :class:`CheckpointError` (a ValueError) naming every missing, unexpected or mis-shaped
    tensor, or the file that is not valid (``config.json``, a truncated or corrupt
    ``*.safetensors``), ValueError for a bad ``tokenizer.json``, ``device`` or ``dtype``, and
    FileNotFoundError for a missing directory or file.
    """
    d = _model_dir(path)
    cfg_file = d / "config.json"
    try:
        cfg_dict = json.loads(cfg_file.read_text())
    except OSError as e:
        raise FileNotFoundError(f"cannot read {cfg_file}: {e.strerror}") from e
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:   # nested past Python's stack
        raise CheckpointError(f"{cfg_file} is not valid JSON: {e}") from None
    if not isinstance(cfg_dict, dict):
        raise CheckpointError(f"{cfg_file} must hold a JSON object; got {type(cfg_dict).__name__}")
    try:
        cfg = LLaDAConfig.from_dict(cfg_dict)
        with torch.device("meta"):
            model = LLaDA(cfg)
    except (TypeError, ValueError, ZeroDivisionError) as e:    # a field of the wrong type or value
        raise CheckpointError(f"{cfg_file}: {e}") from None
    expected = model.expected_shapes()
    tensors = _read_weights(d)
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    shaped = sorted(f"{k}: {tuple(tensors[k].shape)}, expected {expected[k]}"
                    for k in set(expected) & set(tensors) if tuple(tensors[k].shape) != expected[k])
    problems = []
    if missing:
        problems.append("missing tensors: " + ", ".join(missing))
    if extra:
        problems.append("unexpected tensors: " + ", ".join(extra))
    if shaped:
        problems.append("mis-shaped tensors: " + "; ".join(shaped))
    if problems:
        raise CheckpointError(f"checkpoint {d} does not match its config.json: " + " | ".join(problems))
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
