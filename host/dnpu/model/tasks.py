"""Synthetic tasks with exact answers, for training and evaluating the tiny models.

``addN`` (e.g. ``add3``, the default shipped model's): ``a + b`` with both
operands written with exactly N digits (zero-padded, so every prompt has the same
length and a batch needs no padding): prompt ``"123+045="``, answer the sum with
exactly N+1 digits, ``"0168"``, followed by end-of-text tokens that fill the fixed
answer region (``gen_length`` tokens, the next power of two that holds N+1 digits
and one end-of-text). Fixed widths keep every answer digit at the same distance
from the operand digits it depends on, which a small bidirectional model learns
far faster than right-aligned variable-length sums.

``revN`` (e.g. ``rev31``, the long-context model's): reverse a string of N
lowercase letters: prompt the N letters and ``=`` (``"hello="`` in ``rev5``),
answer the letters in reverse order, ``"olleh"``, followed by end-of-text tokens
that fill the answer region (``gen_length``: N+1 rounded up to a multiple of 8, so
it splits into whole blocks of 8). Every answer letter copies the prompt letter
mirrored about ``=``, so answer positions attend across the whole context;
``rev31`` fills exactly 64 tokens (32 of prompt, 32 of answer).

A problem is a tuple the task owns (``(a, b)`` for addition, ``(letters,)`` for
reversal); ``prompt``, ``answer`` and ``score`` take its fields, ``heldout``
returns a list of them and ``encode_problems`` encodes such a list, so callers
need not know the task.

A fixed 2% of all problems is held out (a hash of the problem decides, so the
split needs no stored list); training never samples them and evaluation draws only
from them.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

__all__ = ["AdditionTask", "ReverseTask", "get_task", "TASK_NAMES_HELP", "generation_defaults"]

TASK_NAMES_HELP = ("addN: N-digit addition, N in 1..8 (e.g. add3); "
                   "revN: reverse N lowercase letters, N in 2..64 (e.g. rev31)")
_HELDOUT_MOD = 50  # 1 problem in 50 is held out


def _mix64(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on uint64 arrays (the arithmetic wraps)."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _decoded_answer(tok, generated) -> str | None:
    """The generated region up to its first end-of-text, as text; None if it holds a
    token the tokenizer cannot decode."""
    ids = [int(t) for t in generated]
    eos = tok.eos_token_id
    if eos in ids:
        ids = ids[:ids.index(eos)]
    try:
        return tok.decode(ids)
    except ValueError:
        return None


class _Task:
    def encode_problems(self, tok, problems) -> tuple[np.ndarray, np.ndarray]:
        """``encode_batch`` of a list of problems (tuples, as ``heldout`` returns them)."""
        if not problems:
            raise ValueError("no problems to encode")
        return self.encode_batch(tok, *(list(col) for col in zip(*problems)))


@dataclasses.dataclass(frozen=True)
class AdditionTask(_Task):
    digits: int

    def __post_init__(self) -> None:
        if not 1 <= self.digits <= 8:
            raise ValueError(f"addition task digits must be in 1..8; got {self.digits}")

    @property
    def name(self) -> str:
        return f"add{self.digits}"

    @property
    def limit(self) -> int:
        return 10 ** self.digits

    @property
    def prompt_length(self) -> int:
        return 2 * self.digits + 2

    @property
    def gen_length(self) -> int:
        need = self.digits + 2  # the sum's N+1 digits and one end-of-text
        return 1 << (need - 1).bit_length()

    def prompt(self, a: int, b: int) -> str:
        d = self.digits
        return f"{a:0{d}d}+{b:0{d}d}="

    def answer(self, a: int, b: int) -> str:
        return f"{a + b:0{self.digits + 1}d}"

    def parse_prompt(self, text: str) -> tuple[int, int] | None:
        """The operands of a prompt in this task's form, else None."""
        m = re.fullmatch(rf"(\d{{{self.digits}}})\+(\d{{{self.digits}}})=", text)
        return (int(m[1]), int(m[2])) if m else None

    @staticmethod
    def _hash(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return _mix64((a.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ b.astype(np.uint64))

    def is_heldout(self, a, b) -> np.ndarray:
        return (self._hash(np.asarray(a), np.asarray(b)) % np.uint64(_HELDOUT_MOD)) == 0

    def heldout(self, n: int, seed: int = 0) -> list[tuple[int, int]]:
        """``n`` distinct held-out pairs, in a seeded random order."""
        rng = np.random.default_rng(seed)
        out: list[tuple[int, int]] = []
        seen: set[tuple[int, int]] = set()
        total = self.limit * self.limit // _HELDOUT_MOD
        if n > total // 2:
            raise ValueError(f"{self.name} holds about {total} held-out problems; ask for at most {total // 2}")
        while len(out) < n:
            a = rng.integers(0, self.limit, 4 * n + 64)
            b = rng.integers(0, self.limit, 4 * n + 64)
            keep = self.is_heldout(a, b)
            for x, y in zip(a[keep].tolist(), b[keep].tolist()):
                if (x, y) not in seen:
                    seen.add((x, y))
                    out.append((x, y))
                    if len(out) == n:
                        break
        return out

    def sample_train(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` training pairs (never held out): operand arrays ``a``, ``b``."""
        a_parts, b_parts, have = [], [], 0
        while have < n:
            a = rng.integers(0, self.limit, n)
            b = rng.integers(0, self.limit, n)
            keep = ~self.is_heldout(a, b)
            a_parts.append(a[keep])
            b_parts.append(b[keep])
            have += int(keep.sum())
        return np.concatenate(a_parts)[:n], np.concatenate(b_parts)[:n]

    def encode_batch(self, tok, a, b) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of prompts ``[n, prompt_length]`` and answer regions ``[n, gen_length]``
        (vectorised: training encodes a batch every step)."""
        a = np.asarray(a, dtype=np.int64)
        b = np.asarray(b, dtype=np.int64)
        digit_ids = np.array([tok.encode(c)[0] for c in "0123456789"], dtype=np.int64)
        plus, eq = tok.encode("+")[0], tok.encode("=")[0]

        def digits(v: np.ndarray, width: int) -> np.ndarray:
            pw = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
            return digit_ids[(v[:, None] // pw[None, :]) % 10]

        n, d = len(a), self.digits
        col = lambda t: np.full((n, 1), t, dtype=np.int64)  # noqa: E731
        prompts = np.concatenate([digits(a, d), col(plus), digits(b, d), col(eq)], axis=1)
        ans = np.full((n, self.gen_length), tok.eos_token_id, dtype=np.int64)
        ans[:, :d + 1] = digits(a + b, d + 1)
        return prompts, ans

    def score(self, tok, a: int, b: int, generated) -> bool:
        """Exact match: the generated region, up to its first end-of-text, is the sum."""
        return _decoded_answer(tok, generated) == self.answer(a, b)


@dataclasses.dataclass(frozen=True)
class ReverseTask(_Task):
    length: int

    ALPHABET = "abcdefghijklmnopqrstuvwxyz"

    def __post_init__(self) -> None:
        if not 2 <= self.length <= 64:
            raise ValueError(f"reverse task length must be in 2..64; got {self.length}")

    @property
    def name(self) -> str:
        return f"rev{self.length}"

    @property
    def prompt_length(self) -> int:
        return self.length + 1

    @property
    def gen_length(self) -> int:
        need = self.length + 1  # the reversed letters and one end-of-text
        return -(-need // 8) * 8

    def prompt(self, letters: str) -> str:
        return f"{letters}="

    def answer(self, letters: str) -> str:
        return letters[::-1]

    def parse_prompt(self, text: str) -> tuple[str] | None:
        """The problem of a prompt in this task's form, else None."""
        m = re.fullmatch(rf"([a-z]{{{self.length}}})=", text)
        return (m[1],) if m else None

    def _codes(self, letters) -> np.ndarray:
        """``[n, length]`` alphabet indices of strings, or of such an index array as is."""
        if isinstance(letters, str):
            letters = [letters]
        arr = np.asarray(letters)
        if arr.dtype.kind in "iu":
            codes = arr.astype(np.int64)
        else:
            if any(len(s) != self.length or not set(s) <= set(self.ALPHABET) for s in letters):
                raise ValueError(f"{self.name} problems are {self.length} lowercase letters")
            flat = np.frombuffer("".join(letters).encode("ascii"), dtype=np.uint8)
            codes = flat.reshape(len(letters), self.length).astype(np.int64) - ord("a")
        if codes.ndim != 2 or codes.shape[1] != self.length:
            raise ValueError(f"{self.name} problems are {self.length} letters; got shape {codes.shape}")
        return codes

    def _strings(self, codes: np.ndarray) -> list[str]:
        return [bytes(row).decode("ascii") for row in (codes + ord("a")).astype(np.uint8)]

    def _hash(self, codes: np.ndarray) -> np.ndarray:
        z = np.full(len(codes), self.length, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(self.length):
                z = _mix64(z * np.uint64(0x9E3779B97F4A7C15) + codes[:, j].astype(np.uint64) + np.uint64(1))
        return z

    def is_heldout(self, letters) -> np.ndarray:
        """Per problem, whether it is held out (strings or an index array)."""
        return (self._hash(self._codes(letters)) % np.uint64(_HELDOUT_MOD)) == 0

    def heldout(self, n: int, seed: int = 0) -> list[tuple[str]]:
        """``n`` distinct held-out problems ``(letters,)``, in a seeded random order."""
        total = len(self.ALPHABET) ** self.length // _HELDOUT_MOD
        if n > total // 2:
            raise ValueError(f"{self.name} holds about {total} held-out problems; ask for at most {total // 2}")
        rng = np.random.default_rng(seed)
        out: list[tuple[str]] = []
        seen: set[str] = set()
        while len(out) < n:
            codes = rng.integers(0, len(self.ALPHABET), (4 * n + 64, self.length))
            for s in self._strings(codes[self.is_heldout(codes)]):
                if s not in seen:
                    seen.add(s)
                    out.append((s,))
                    if len(out) == n:
                        break
        return out

    def sample_train(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray]:
        """``n`` training problems (never held out), as one ``[n, length]`` array of
        alphabet indices (``encode_batch`` takes it as is)."""
        parts, have = [], 0
        while have < n:
            codes = rng.integers(0, len(self.ALPHABET), (n, self.length))
            keep = codes[~self.is_heldout(codes)]
            parts.append(keep)
            have += len(keep)
        return (np.concatenate(parts)[:n],)

    def encode_batch(self, tok, letters) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of prompts ``[n, prompt_length]`` and answer regions ``[n, gen_length]``
        of strings or an index array (vectorised: training encodes a batch every step)."""
        codes = self._codes(letters)
        letter_ids = np.array([tok.encode(c)[0] for c in self.ALPHABET], dtype=np.int64)
        eq = tok.encode("=")[0]
        n, N = codes.shape
        prompts = np.concatenate([letter_ids[codes], np.full((n, 1), eq, dtype=np.int64)], axis=1)
        ans = np.full((n, self.gen_length), tok.eos_token_id, dtype=np.int64)
        ans[:, :N] = letter_ids[codes[:, ::-1]]
        return prompts, ans

    def score(self, tok, letters: str, generated) -> bool:
        """Exact match: the generated region, up to its first end-of-text, is the reversal."""
        return _decoded_answer(tok, generated) == self.answer(letters)


def get_task(name: str) -> AdditionTask | ReverseTask:
    m = re.fullmatch(r"(add|rev)(\d+)", name or "")
    if not m:
        raise ValueError(f"unknown task {name!r}: tasks are {TASK_NAMES_HELP}")
    try:
        return (AdditionTask if m[1] == "add" else ReverseTask)(int(m[2]))
    except ValueError:
        raise ValueError(f"unknown task {name!r}: tasks are {TASK_NAMES_HELP}") from None


def generation_defaults(info: dict, task) -> dict:
    """gen_length / block_length / steps: the model's ``dnpu_task.json`` when it was
    trained on ``task``, else the task's answer length in two blocks, one token a step."""
    if info.get("task") == task.name:
        return {k: int(info[k]) for k in ("gen_length", "block_length", "steps")}
    g = task.gen_length
    return {"gen_length": g, "block_length": max(1, g // 2), "steps": g}
