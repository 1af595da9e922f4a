"""A model directory without PyTorch: LLaDA's ``config.json`` (`LLaDAConfig`), the tensor
names and shapes of its checkpoint, ``dnpu_task.json``, and the weights read into NumPy by
safetensors. `dnpu.model.load` (PyTorch) and `dnpu.model.numpy_forward` (NumPy) both read
a directory through here, so they accept and refuse the same checkpoints.

A model directory holds ``config.json`` (LLaDA's field names), the weights in one or more
``*.safetensors`` files under LLaDA's key names (``model.transformer.wte.weight``,
``model.transformer.blocks.{i}.q_proj.weight`` ... ``model.transformer.ff_out.weight``)
and a ``tokenizer.json``. dnpu's own models add ``dnpu_task.json`` (the task they were
trained on and their default generation settings) and ``training.json`` (how they were
trained).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from dnpu.spec import resources

__all__ = ["LLaDAConfig", "CheckpointError", "DEFAULT_MODEL_DIR", "model_dir", "model_info", "read_config", "read_safetensors",
           "checkpoint_shapes", "check_tensors", "read_numpy_weights"]

# The shipped tiny model (dnpu.spec.resources: the source tree's or the installed package's).
DEFAULT_MODEL_DIR = resources.data_root() / "models" / "tiny-add"


class CheckpointError(ValueError):
    """A checkpoint that does not match its config: the message lists every problem."""


@dataclasses.dataclass
class LLaDAConfig:
    """The subset of LLaDA's Hugging Face ``config.json`` that defines the network.

    Field names are LLaDA's, so a real LLaDA ``config.json`` reads as is (extra keys
    are kept in ``extra`` and ignored). ``vocab_size`` is the tokenizer's size;
    ``embedding_size`` (rows of ``wte`` and of the head, ``None`` = vocab_size) may be
    larger, as in LLaDA where it is padded for throughput.
    """

    d_model: int
    n_heads: int
    n_layers: int
    mlp_hidden_size: int
    vocab_size: int
    mask_token_id: int
    eos_token_id: int
    n_kv_heads: int | None = None
    embedding_size: int | None = None
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    max_sequence_length: int = 4096
    pad_token_id: int | None = None
    weight_tying: bool = False
    include_bias: bool = False
    extra: dict = dataclasses.field(default_factory=dict)

    _INT_FIELDS = ("d_model", "n_heads", "n_layers", "mlp_hidden_size", "vocab_size", "mask_token_id",
                   "eos_token_id", "max_sequence_length")

    def __post_init__(self) -> None:
        for name in self._INT_FIELDS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0 or (v == 0 and name != "mask_token_id"
                                                                          and name != "eos_token_id"):
                raise ValueError(f"config {name} must be a positive int; got {v!r}")
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        if self.embedding_size is None:
            self.embedding_size = self.vocab_size
        if self.d_model % self.n_heads:
            raise ValueError(f"config d_model {self.d_model} is not a multiple of n_heads {self.n_heads}")
        if self.n_kv_heads < 1 or self.n_heads % self.n_kv_heads:
            raise ValueError(f"config n_heads {self.n_heads} is not a multiple of n_kv_heads {self.n_kv_heads}")
        if (self.d_model // self.n_heads) % 2:
            raise ValueError(f"head_dim {self.d_model // self.n_heads} must be even for rotate-half RoPE")
        if self.embedding_size < self.vocab_size:
            raise ValueError(f"config embedding_size {self.embedding_size} < vocab_size {self.vocab_size}")
        for name in ("mask_token_id", "eos_token_id"):
            if not 0 <= getattr(self, name) < self.embedding_size:
                raise ValueError(f"config {name} {getattr(self, name)} is outside the embedding "
                                 f"(size {self.embedding_size})")
        if self.weight_tying:
            raise ValueError("config weight_tying=true is not supported: LLaDA's head is untied (ff_out)")
        if self.include_bias:
            raise ValueError("config include_bias=true is not supported: LLaDA has no biases")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @classmethod
    def from_dict(cls, d: dict) -> "LLaDAConfig":
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        missing = [n for n in cls._INT_FIELDS if n not in d and n != "max_sequence_length"]
        if missing:
            raise ValueError(f"config.json lacks required keys: {', '.join(missing)}")
        known = {k: v for k, v in d.items() if k in names}
        extra = {k: v for k, v in d.items() if k not in names}
        act = d.get("activation_type", "silu")
        if act not in ("silu", "swiglu"):
            raise ValueError(f"config activation_type {act!r} is not supported (LLaDA uses silu)")
        return cls(**known, extra=extra)

    def to_dict(self) -> dict:
        """LLaDA-style ``config.json`` content (with the keys LLaDA's loader expects)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        d.update({"architectures": ["LLaDAModelLM"], "model_type": "llada", "activation_type": "silu",
                  "block_type": "llama", "layer_norm_type": "rms", "rope": True, "alibi": False,
                  "attention_layer_norm": False, "mlp_ratio": self.mlp_hidden_size / self.d_model})
        for k, v in self.extra.items():
            d.setdefault(k, v)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


# LLaDA's module path of each linear weight of a block -> (rows, columns) from the config.
def _block_shapes(c: LLaDAConfig) -> dict[str, tuple[int, ...]]:
    d, hd, f = c.d_model, c.head_dim, c.mlp_hidden_size
    return {"q_proj": (c.n_heads * hd, d), "k_proj": (c.n_kv_heads * hd, d), "v_proj": (c.n_kv_heads * hd, d),
            "attn_out": (d, c.n_heads * hd), "ff_proj": (f, d), "up_proj": (f, d), "ff_out": (d, f),
            "attn_norm": (d,), "ff_norm": (d,)}


def checkpoint_shapes(c: LLaDAConfig) -> dict[str, tuple[int, ...]]:
    """Checkpoint key -> tensor shape: the Hugging Face layout of a LLaDA with config c
    (what `dnpu.model.LLaDA.expected_shapes` gives, without building the model)."""
    t = "model.transformer"
    out = {f"{t}.wte.weight": (c.embedding_size, c.d_model)}
    for i in range(c.n_layers):
        out |= {f"{t}.blocks.{i}.{name}.weight": shape for name, shape in _block_shapes(c).items()}
    out |= {f"{t}.ln_f.weight": (c.d_model,), f"{t}.ff_out.weight": (c.embedding_size, c.d_model)}
    return out


def model_dir(path=None) -> Path:
    """`path` as a model directory (default: the shipped model); FileNotFoundError when absent."""
    p = Path(path) if path is not None else DEFAULT_MODEL_DIR
    if not p.is_dir():
        hint = " (the shipped model: run scripts/train_tiny.py to rebuild it)" if path is None else ""
        raise FileNotFoundError(f"model directory {p} does not exist{hint}")
    return p


def model_info(path=None) -> dict:
    """``dnpu_task.json`` of a model directory ({} when absent)."""
    f = model_dir(path) / "dnpu_task.json"
    return json.loads(f.read_text()) if f.is_file() else {}


def read_config(d: Path) -> LLaDAConfig:
    """The LLaDAConfig of model directory d; CheckpointError naming what is wrong with it."""
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
        cfg.head_dim    # noqa: B018 - a config that cannot be built fails here, with its file named
    except (TypeError, ValueError, ZeroDivisionError) as e:    # a field of the wrong type or value
        raise CheckpointError(f"{cfg_file}: {e}") from None
    return cfg


def check_tensors(d: Path | str, expected: dict[str, tuple[int, ...]], shapes: dict[str, tuple[int, ...]]) -> None:
    """CheckpointError listing every missing, unexpected and mis-shaped tensor of `shapes`
    (what the files hold) against `expected` (what the config needs)."""
    missing = sorted(set(expected) - set(shapes))
    extra = sorted(set(shapes) - set(expected))
    shaped = sorted(f"{k}: {shapes[k]}, expected {expected[k]}"
                    for k in set(expected) & set(shapes) if shapes[k] != expected[k])
    problems = []
    if missing:
        problems.append("missing tensors: " + ", ".join(missing))
    if extra:
        problems.append("unexpected tensors: " + ", ".join(extra))
    if shaped:
        problems.append("mis-shaped tensors: " + "; ".join(shaped))
    if problems:
        raise CheckpointError(f"checkpoint {d} does not match its config.json: " + " | ".join(problems))


def read_weights(d: Path, load_file) -> dict:
    """Every tensor of d's ``*.safetensors`` files, each read by `load_file` (a safetensors
    loader: ``safetensors.torch.load_file`` or ``safetensors.numpy.load_file``);
    CheckpointError for no file, an unreadable one or a tensor stored twice."""
    files = sorted(d.glob("*.safetensors"))
    if not files:
        raise CheckpointError(f"{d} holds no *.safetensors file")
    tensors: dict = {}
    dup: list[str] = []
    for f in files:
        try:
            loaded = load_file(str(f))
        except OSError as e:
            raise CheckpointError(f"cannot read {f}: {e.strerror or e}") from None
        except CheckpointError:
            raise
        except Exception as e:  # noqa: BLE001 - safetensors' SafetensorError derives from Exception only
            raise CheckpointError(f"{f} is not a valid safetensors file (truncated or corrupt?): {e}") from None
        for k, v in loaded.items():
            if k in tensors:
                dup.append(f"{k} (again in {f.name})")
            tensors[k] = v
    if dup:
        raise CheckpointError(f"{d}: tensors stored twice: {', '.join(dup)}")
    return tensors


# safetensors dtype -> NumPy dtype for the reader below (BF16 is widened to float32, exactly).
_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4",
              "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    """The tensors of one .safetensors file with NumPy alone: an 8-byte little-endian header
    length, a JSON header (name -> dtype, shape, data_offsets into the bytes after it), the
    data. For boards where the safetensors package has no wheel (a PYNQ-Z2's armv7l);
    BF16 tensors come back as float32 (exact). CheckpointError on a malformed file."""
    raw = Path(path).read_bytes()
    bad = f"{path} is not a valid safetensors file (truncated or corrupt?)"
    if len(raw) < 8:
        raise CheckpointError(f"{bad}: {len(raw)} bytes")
    n = int.from_bytes(raw[:8], "little")
    if n > len(raw) - 8:
        raise CheckpointError(f"{bad}: a {n}-byte header in {len(raw)} bytes")
    try:
        header = json.loads(raw[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{bad}: header: {e}") from None
    data = memoryview(raw)[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        try:
            dt = np.dtype(_ST_DTYPES[t["dtype"]])
            shape = tuple(int(d) for d in t["shape"])
            lo, hi = (int(x) for x in t["data_offsets"])
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: tensor {name!r}: unreadable entry {t!r} ({e})") from None
        count = int(np.prod(shape, dtype=np.int64))
        if not 0 <= lo <= hi <= len(data) or hi - lo != count * dt.itemsize:
            raise CheckpointError(f"{bad}: tensor {name!r} bytes {lo}..{hi} of {len(data)}")
        a = np.frombuffer(data[lo:hi], dt).reshape(shape)
        if t["dtype"] == "BF16":
            a = (a.astype(np.uint32) << np.uint32(16)).view(np.float32)
        out[name] = a.astype(a.dtype.newbyteorder("="), copy=True)
    return out


def _numpy_load_file(path: str) -> dict[str, np.ndarray]:
    try:
        import ml_dtypes  # noqa: F401 - registers bfloat16 with NumPy: safetensors reads BF16 tensors as it
        from safetensors.numpy import load_file
    except ImportError:               # no wheel for this machine (armv7l): NumPy reads the format
        return read_safetensors(path)
    try:
        return load_file(path)
    except (KeyError, TypeError) as e:      # a dtype this safetensors cannot map to NumPy
        raise CheckpointError(f"{path}: safetensors cannot read its tensors into NumPy ({e}): convert the "
                              f"checkpoint to F32 or BF16, or load it with PyTorch (pip install 'dnpu[torch]')") \
            from None


def read_numpy_weights(d: Path) -> dict[str, np.ndarray]:
    """`read_weights` with safetensors' NumPy reader (no PyTorch)."""
    return read_weights(d, _numpy_load_file)
