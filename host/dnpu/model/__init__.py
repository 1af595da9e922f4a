"""dLLM models for dnpu: the LLaDA architecture in PyTorch, its checkpoint loader,
tokenizers and the synthetic tasks the shipped tiny models are trained on.

``dnpu.model.load(path=None) -> (model, tokenizer)``; no path: the shipped tiny
model (``models/tiny-add``).
"""

from .llada import KV, LLaDA, LLaDAConfig
from .load import DEFAULT_MODEL_DIR, CheckpointError, load, model_info, pick_device, save
from .tasks import AdditionTask, ReverseTask, get_task
from .tokenizer import Tokenizer, char_tokenizer_json, load_tokenizer

__all__ = ["LLaDA", "LLaDAConfig", "KV", "load", "save", "model_info", "pick_device", "CheckpointError",
           "DEFAULT_MODEL_DIR", "Tokenizer", "load_tokenizer", "char_tokenizer_json", "AdditionTask", "ReverseTask",
           "get_task"]
