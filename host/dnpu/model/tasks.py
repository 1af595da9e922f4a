"""Synthetic tasks with exact answers, for training and evaluating the tiny models.

``addN`` (e.g. ``add3``, the shipped model's): ``a + b`` with both operands written
with exactly N digits (zero-padded, so every prompt has the same length and a
batch needs no padding): prompt ``"123+045="``, answer the sum with exactly N+1
digits, ``"0168"``, followed by end-of-text tokens that fill the fixed answer
region (``gen_length`` tokens, the next power of two that holds N+1 digits and
one end-of-text). Fixed widths keep every answer digit at the same distance
from the operand digits it depends on, which a small bidirectional model learns
far faster than right-aligned variable-length sums.

A fixed 2% of all operand pairs is held out (a hash of the pair decides, so the
split needs no stored list); training never samples them and evaluation draws
only from them.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

__all__ = ["AdditionTask", "get_task", "TASK_NAMES_HELP", "generation_defaults"]

TASK_NAMES_HELP = "addN: N-digit addition, N in 1..8 (e.g. add3)"
_HELDOUT_MOD = 50  # 1 pair in 50 is held out


@dataclasses.dataclass(frozen=True)
class AdditionTask:
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
        # A fixed integer mix (splitmix64 finaliser) of the pair; uint64 arithmetic wraps.
        z = (a.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ b.astype(np.uint64)
        with np.errstate(over="ignore"):
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))

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
        ids = [int(t) for t in generated]
        eos = tok.eos_token_id
        if eos in ids:
            ids = ids[:ids.index(eos)]
        try:
            text = tok.decode(ids)
        except ValueError:
            return False
        return text == self.answer(a, b)


def get_task(name: str) -> AdditionTask:
    m = re.fullmatch(r"add(\d+)", name or "")
    if not m:
        raise ValueError(f"unknown task {name!r}: tasks are {TASK_NAMES_HELP}")
    return AdditionTask(int(m[1]))


def generation_defaults(info: dict, task) -> dict:
    """gen_length / block_length / steps: the model's ``dnpu_task.json`` when it was
    trained on ``task``, else the task's answer length in two blocks, one token a step."""
    if info.get("task") == task.name:
        return {k: int(info[k]) for k in ("gen_length", "block_length", "steps")}
    g = task.gen_length
    return {"gen_length": g, "block_length": max(1, g // 2), "steps": g}
