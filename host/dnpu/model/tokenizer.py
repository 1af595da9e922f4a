"""Tokenizers for dnpu's models: Hugging Face ``tokenizer.json``, with a pure-Python
fallback for character-level vocabularies.

The shipped tiny model uses a character tokenizer: one token per character of
:data:`CHARS`, two special tokens (end-of-text and LLaDA's mask token) and
reserved slots that pad the vocabulary to a multiple of 64 (the NPU's MX block
size 32 and vector length divide the vocabulary it streams). It is written as a
standard ``tokenizer.json`` (WordLevel model, a pre-tokenizer that isolates every
character, a Fuse decoder) so that ``tokenizers.Tokenizer.from_file`` reads it.
When the ``tokenizers`` package is not installed, :class:`Tokenizer` reads such a
character-level file itself; other tokenizer.json files (e.g. LLaDA's BPE) need
the package.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["Tokenizer", "CHARS", "EOS", "MASK", "char_tokenizer_json", "load_tokenizer"]

EOS = "<|endoftext|>"
MASK = "<|mdm_mask|>"
SPECIALS = (EOS, MASK)
# Order fixes the ids: specials 0 and 1, then these characters from id 2.
CHARS = "0123456789+-*/=()., abcdefghijklmnopqrstuvwxyz?:"


def char_tokenizer_json(vocab_multiple: int = 64) -> dict:
    """The ``tokenizer.json`` content of the character tokenizer (vocab padded with
    ``<|reserved_i|>`` tokens to a multiple of ``vocab_multiple``)."""
    tokens = list(SPECIALS) + list(CHARS)
    i = 0
    while len(tokens) % vocab_multiple:
        tokens.append(f"<|reserved_{i}|>")
        i += 1
    vocab = {t: n for n, t in enumerate(tokens)}
    added = [{"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for t in tokens if t.startswith("<|")]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "."}, "behavior": "Isolated", "invert": False},
        "post_processor": None,
        "decoder": {"type": "Fuse"},
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": EOS},
    }


class Tokenizer:
    """``encode(str) -> list[int]``, ``decode(ids) -> str``, plus the special ids.

    ``encode`` rejects text the vocabulary cannot represent (a character tokenizer
    would otherwise map it silently to its unknown token and the model would see
    something else than the user typed).
    """

    def __init__(self, spec: dict, hf=None) -> None:
        self._hf = hf
        model = spec.get("model", {})
        self._vocab: dict[str, int] = dict(model.get("vocab", {}))
        for t in spec.get("added_tokens", []):
            self._vocab[t["content"]] = t["id"]
        self._inv = {i: t for t, i in self._vocab.items()}
        self._special = {t["content"] for t in spec.get("added_tokens", []) if t.get("special")}
        self._char_level = model.get("type") == "WordLevel" and all(
            len(t) == 1 or t in self._special for t in self._vocab)
        if hf is None and not self._char_level:
            raise ValueError("this tokenizer.json is not a character-level WordLevel vocabulary: "
                             "reading it needs the `tokenizers` package (pip install tokenizers)")

    @property
    def backend(self) -> str:
        return "tokenizers" if self._hf is not None else "python"

    @property
    def vocab_size(self) -> int:
        return max(self._inv) + 1 if self._inv else 0

    def token_id(self, token: str) -> int | None:
        return self._vocab.get(token)

    @property
    def eos_token_id(self) -> int | None:
        return self._vocab.get(EOS)

    @property
    def mask_token_id(self) -> int | None:
        return self._vocab.get(MASK)

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise ValueError(f"encode takes a str; got {type(text).__name__}")
        if self._char_level:
            bad = sorted({c for c in text if c not in self._vocab or c in self._special})
            if bad:
                raise ValueError(f"text holds characters outside the tokenizer's vocabulary: {bad!r} "
                                 f"(it knows {''.join(sorted(t for t in self._vocab if len(t) == 1))!r})")
        if self._hf is not None:
            return list(self._hf.encode(text, add_special_tokens=False).ids)
        return [self._vocab[c] for c in text]

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        ids = [int(i) for i in ids]
        bad = [i for i in ids if i not in self._inv]
        if bad:
            raise ValueError(f"token ids outside the vocabulary: {bad[:8]}")
        if self._hf is not None:
            return self._hf.decode(ids, skip_special_tokens=skip_special_tokens)
        toks = [self._inv[i] for i in ids]
        if skip_special_tokens:
            toks = [t for t in toks if t not in self._special]
        return "".join(toks)


def load_tokenizer(path: str | Path, prefer_hf: bool = True) -> Tokenizer:
    """Read ``tokenizer.json`` (a file, or a directory holding one). FileNotFoundError when it
    cannot be read; ValueError naming the file when it is not a tokenizer.json."""
    p = Path(path)
    if p.is_dir():
        p = p / "tokenizer.json"
    try:
        spec = json.loads(p.read_text())
    except OSError as e:
        raise FileNotFoundError(f"cannot read tokenizer {p}: {e.strerror}") from e
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:   # nested past Python's stack
        raise ValueError(f"{p} is not valid JSON: {e}") from e
    if not isinstance(spec, dict) or not isinstance(spec.get("model"), dict):
        raise ValueError(f"{p} is not a tokenizer.json: it needs a JSON object with a \"model\" object")
    hf = None
    if prefer_hf:
        try:
            import tokenizers
        except ImportError:
            tokenizers = None
        if tokenizers is not None:
            try:
                hf = tokenizers.Tokenizer.from_file(str(p))
            except Exception as e:  # noqa: BLE001 - the tokenizers package raises a bare Exception
                raise ValueError(f"{p} is not a valid tokenizer.json: {e}") from None
    try:
        return Tokenizer(spec, hf)
    except ValueError as e:
        raise ValueError(f"{p}: {e}") from None
    except (TypeError, KeyError, AttributeError) as e:   # a vocabulary or added token of the wrong shape
        raise ValueError(f"{p} is not a valid tokenizer.json: {type(e).__name__}: {e}") from None
