"""dnpu.model.tasks: the reversal task (layout, held-out split, scoring), the task-agnostic
problem API every task shares, and the shipped long-context model models/tiny-rev."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dnpu.model import LLaDA, LLaDAConfig, ReverseTask, Tokenizer, char_tokenizer_json, get_task, load  # noqa: E402
from dnpu.model.load import DEFAULT_MODEL_DIR  # noqa: E402
from dnpu.model.tasks import TASK_NAMES_HELP, generation_defaults  # noqa: E402

TINY_REV = DEFAULT_MODEL_DIR.parent / "tiny-rev"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tok():
    return Tokenizer(char_tokenizer_json())


def test_reverse_task_layout(tok):
    task = get_task("rev31")
    assert isinstance(task, ReverseTask) and task.name == "rev31"
    assert (task.prompt_length, task.gen_length) == (32, 32)   # 64 tokens of context
    s = "abcdefghijklmnopqrstuvwxyzabcde"
    assert task.prompt(s) == s + "=" and task.answer(s) == s[::-1]
    assert task.parse_prompt(s + "=") == (s,)
    assert task.parse_prompt(s[:-1] + "=") is None and task.parse_prompt(s[:-1] + "A=") is None
    prompts, ans = task.encode_batch(tok, [s, "z" * 31])
    assert prompts.shape == (2, 32) and ans.shape == (2, 32)
    assert prompts[0].tolist() == tok.encode(s + "=")
    assert tok.decode(ans[0]) == s[::-1] + "<|endoftext|>"
    # an index array (what sample_train gives) encodes the same as its strings
    codes = np.array([[ord(c) - ord("a") for c in s]])
    assert all((x == y).all() for x, y in zip(task.encode_batch(tok, codes), task.encode_batch(tok, [s])))
    # the answer region rounds up to whole blocks of 8
    assert [get_task(f"rev{n}").gen_length for n in (2, 7, 8, 31, 32, 64)] == [8, 8, 16, 32, 40, 72]
    assert generation_defaults({}, task) == {"gen_length": 32, "block_length": 16, "steps": 32}
    with pytest.raises(ValueError, match="31 lowercase letters"):
        task.encode_batch(tok, ["abc"])


def test_reverse_task_split():
    task = get_task("rev31")
    held = task.heldout(300, seed=1)
    assert len(set(held)) == 300 and all(len(p) == 1 and len(p[0]) == 31 for p in held)
    assert task.is_heldout([p[0] for p in held]).all()
    assert held == task.heldout(300, seed=1) and held != task.heldout(300, seed=2)
    (codes,) = task.sample_train(np.random.default_rng(0), 5000)
    assert codes.shape == (5000, 31) and codes.min() >= 0 and codes.max() < 26
    assert not task.is_heldout(codes).any()
    frac = task.is_heldout(np.random.default_rng(3).integers(0, 26, (50000, 31))).mean()
    assert 0.015 < frac < 0.025      # 1 in 50
    with pytest.raises(ValueError, match="at most"):
        get_task("rev2").heldout(100)


def test_reverse_task_score(tok):
    task = get_task("rev8")
    s = "abcdefgh"
    eos = tok.eos_token_id
    assert task.score(tok, s, tok.encode("hgfedcba") + [eos] * 8)
    assert task.score(tok, s, tok.encode("hgfedcba") + [eos, 5, 6])   # after end-of-text: ignored
    assert not task.score(tok, s, tok.encode("hgfedcb") + [eos] * 9)
    assert not task.score(tok, s, tok.encode("hgfedcbaa"))
    assert not task.score(tok, s, tok.encode("hgfedcba")[:7] + [999])   # undecodable


def test_problems_are_task_owned_tuples(tok):
    """encode_problems, prompt, answer and score take what heldout returns, for every task."""
    for name in ("add3", "rev31"):
        task = get_task(name)
        held = task.heldout(4, seed=0)
        prompts, ans = task.encode_problems(tok, held)
        for p, row, a in zip(held, prompts, ans):
            assert tok.decode(row) == task.prompt(*p) and task.parse_prompt(task.prompt(*p)) == tuple(p)
            assert task.score(tok, *p, a)
    assert get_task("add3").encode_problems(tok, [(7, 45)])[0][0].tolist() == tok.encode("007+045=")


@pytest.mark.parametrize("name", ["mul3", "rev", "rev1", "rev65", "add0", "add9", "", None])
def test_get_task_rejects_other_names(name):
    with pytest.raises(ValueError) as e:
        get_task(name)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("unknown task") and TASK_NAMES_HELP in msg
    assert "addN" in TASK_NAMES_HELP and "revN" in TASK_NAMES_HELP


def test_evaluate_runs_any_task(tok):
    """dnpu.verify's evaluate on the reversal task (a random model: the plumbing, not accuracy)."""
    from dnpu.verify.generation import evaluate

    torch.manual_seed(0)
    cfg = LLaDAConfig(d_model=32, n_heads=2, n_layers=1, mlp_hidden_size=32, vocab_size=64, mask_token_id=1,
                      eos_token_id=0, max_sequence_length=16)
    r = evaluate(LLaDA(cfg).eval(), tok, "rev4", problems=3, gen_length=8, block_length=8, steps=8)
    assert r["task"] == "rev4" and r["problems"] == 3 and 0 <= r["correct"] <= 3
    for f in r["failures"]:
        assert get_task("rev4").parse_prompt(f["prompt"]) is not None and f["expected"] == f["prompt"][-2::-1]


def test_shipped_reverse_model():
    """models/tiny-rev: the files of tiny-add, a context exactly the task's, the shipped
    tokenizer, and it reverses held-out strings (fp32, the model's own schedule)."""
    from dnpu.generation import generate
    from dnpu.model import model_info

    files = {p.name for p in TINY_REV.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "dnpu_task.json", "training.json"} <= files
    info = model_info(TINY_REV)
    task = get_task(info["task"])
    assert task.name == "rev31" and info["gen_length"] == task.gen_length
    assert info["gen_length"] % info["block_length"] == 0
    model, tok = load(TINY_REV, device="cpu", dtype="fp32")
    c = model.config
    assert c.max_sequence_length == task.prompt_length + task.gen_length >= 64
    assert c.d_model <= 128 and c.d_model // c.n_heads >= 16 and c.n_layers <= 4
    assert json.loads((TINY_REV / "tokenizer.json").read_text()) == json.loads(json.dumps(char_tokenizer_json()))
    assert tok.vocab_size == c.vocab_size == 64
    training = json.loads((TINY_REV / "training.json").read_text())
    assert training["args"]["task"] == "rev31" and training["monitor_evals"]
    held = task.heldout(4, seed=5)
    ids, _ = task.encode_problems(tok, held)
    out = generate(model, ids, **generation_defaults(info, task))[:, task.prompt_length:]
    assert sum(task.score(tok, *p, row) for p, row in zip(held, out.tolist())) >= 3
