"""dLLM models for dnpu: the LLaDA architecture in PyTorch and in NumPy, its checkpoint
loader, tokenizers and the synthetic tasks the shipped tiny models are trained on.

``dnpu.model.load(path=None) -> (model, tokenizer)`` (PyTorch) and
``dnpu.model.load_numpy(path=None)`` (NumPy: no PyTorch needed); no path: the shipped tiny
model (``models/tiny-add``).

The PyTorch names (`LLaDA`, `KV`, `load`, `save`, `pick_device`) are imported on first
use, so ``from dnpu.model import kvquant`` or the NumPy model works where torch is not
installed.
"""

import sys
import types

from .checkpoint import DEFAULT_MODEL_DIR, CheckpointError, LLaDAConfig, model_info
from .numpy_forward import NumpyLLaDA, load_numpy
from .tasks import AdditionTask, ReverseTask, get_task
from .tokenizer import Tokenizer, char_tokenizer_json, load_tokenizer

__all__ = ["LLaDA", "LLaDAConfig", "KV", "load", "load_numpy", "NumpyLLaDA", "save", "model_info", "pick_device",
           "CheckpointError", "DEFAULT_MODEL_DIR", "Tokenizer", "load_tokenizer", "char_tokenizer_json",
           "AdditionTask", "ReverseTask", "get_task"]

_TORCH_NAMES = {"LLaDA": "llada", "KV": "llada", "load": "load", "save": "load", "pick_device": "load"}


def __getattr__(name):
    if name in _TORCH_NAMES:
        import importlib

        value = getattr(importlib.import_module(f".{_TORCH_NAMES[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Package(types.ModuleType):
    """`dnpu.model.load` is the function, as when the package imported it eagerly: importing
    the submodule of the same name (which sets the package's attribute to the module) leaves
    the name to the function."""

    def __setattr__(self, name, value):
        if name == "load" and isinstance(value, types.ModuleType):
            self.__dict__.pop("load", None)     # resolved by __getattr__ on next use
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
