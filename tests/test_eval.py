"""The shipped tiny model and the commands around it: dnpu eval, check-generate, generate."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dnpu import cli
from dnpu.sampling import npu  # noqa: E402
from dnpu.model import DEFAULT_MODEL_DIR, load, model_info  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run_cli(argv, tmp_path, name="out.json"):
    out = tmp_path / name
    rc = cli.main(argv + ["--json", str(out), "--threads", "1", "--device", "cpu"])
    return rc, (json.loads(out.read_text()) if out.exists() else None)


def test_shipped_model_layout():
    files = {p.name for p in DEFAULT_MODEL_DIR.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "dnpu_task.json", "training.json"} <= files
    size = (DEFAULT_MODEL_DIR / "model.safetensors").stat().st_size
    assert 1e6 < size < 2e7, f"the shipped checkpoint should be a few MB, is {size} bytes"
    training = json.loads((DEFAULT_MODEL_DIR / "training.json").read_text())
    assert isinstance(training["args"]["seed"], int) and training["wall_seconds"] < 30 * 60
    model, tok = load(device="cpu")
    assert model.config.embedding_size % 64 == 0 and tok.vocab_size == model.config.vocab_size
    assert model_info()["task"] == "add3"


def test_eval_reaches_90_percent_at_bf16(tmp_path):
    rc, r = run_cli(["eval", "--problems", "200"], tmp_path)
    assert rc == 0
    assert r["task"] == "add3" and r["problems"] == 200 and r["dtype"] == "bfloat16"
    assert r["exact_match"] >= 0.9, r["failures"]


def test_check_generate_emu_matches_torch(tmp_path):
    rc, r = run_cli(["check-generate", "--backend", "emu", "--prompts", "6", "--kv-cache", "dual"], tmp_path)
    assert rc == 0 and r["prompts"] == 6 and r["token_mismatches"] == 0


def test_check_generate_fails_on_a_wrong_backend(tmp_path, monkeypatch, capsys):
    """A backend that commits a wrong token must be caught: exit status 1, mismatches counted."""
    orig = npu.run

    def broken(backend, q, mask, x, k, tau, flow, config):
        x_new, x0, conf = orig(backend, q, mask, x, k, tau, flow, config)
        x_new = np.where(x_new != x, 60, x_new)  # 60: a reserved token the model never writes
        return x_new, x0, conf

    monkeypatch.setattr(npu, "run", broken)
    rc, r = run_cli(["check-generate", "--backend", "emu", "--prompts", "2"], tmp_path)
    assert rc == 1 and r["token_mismatches"] == 16 and r["rows_differing"] == 2
    assert "FAILED" in capsys.readouterr().err


def test_check_generate_npu_forward(tmp_path, monkeypatch, capsys):
    """--forward npu on emu: every step replayed against PyTorch with the same quantization,
    each difference a near-tie; then a chip that commits a wrong token: unexplained
    differences, exit status 1."""
    from dnpu.model.npu import NpuForward

    rc, r = run_cli(["check-generate", "--forward", "npu", "--backend", "emu", "--prompts", "1", "--steps", "2"],
                    tmp_path)
    assert rc == 0 and r["forward"] == "npu" and r["npu_vs_emu_mismatches"] is None
    assert r["unexplained"] == 0 and r["token_mismatches"] == 0
    assert r["npu_vs_torch_mismatches"] == 0 or r["near_ties"] > 0
    orig = NpuForward.step

    def broken(self, dev, ids, start, length, mask_id, **kw):
        out = orig(self, dev, ids, start, length, mask_id, **kw)
        x = np.asarray(ids)[start:start + length]
        return (np.where(out[0] != x, 60, out[0]), *out[1:])   # 60: a token the model never writes

    monkeypatch.setattr(NpuForward, "step", broken)
    rc, r = run_cli(["check-generate", "--forward", "npu", "--backend", "emu", "--prompts", "1", "--steps", "2"],
                    tmp_path, "bad.json")
    assert rc == 1 and r["unexplained"] > 0 and r["npu_vs_torch_mismatches"] > 0
    assert "beyond a near-tie" in capsys.readouterr().err


def test_generate_prints_text_and_timing(tmp_path, capsys):
    rc, r = run_cli(["generate", "--backend", "emu", "--prompt", "123+456=", "--kv-cache", "prefix"], tmp_path)
    assert rc == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "123+456=0579" == r["text"]
    assert "tokens/s" in lines[1] and "forwards" in lines[1]
    t = r["timing"]
    assert t["forwards"] == 8 and t["tokens"] == 8 and t["forward_s"] > 0 and t["sample_s"] > 0
    assert r["settings"]["kv_cache"] == "prefix" and r["backend"] == "emu"


@pytest.mark.parametrize("argv,match", [
    (["eval", "--task", "mul3"], "unknown task"),
    (["generate", "--prompt", "12#3="], "outside the tokenizer's vocabulary"),
    (["generate", "--prompt", "1+2=", "--steps", "3"], "not a multiple of the number of blocks"),
    (["check-generate", "--model", "/nonexistent/model"], "does not exist"),
])
def test_user_errors_exit_2(tmp_path, capsys, argv, match):
    rc, _ = run_cli(argv, tmp_path)
    assert rc == 2 and match in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--kv-cache", "dual", "--threshold", "0.9"]])
def test_eval_on_emu_1000_problems(tmp_path, extra):
    rc, r = run_cli(["eval", "--backend", "emu", "--problems", "1000", "--seed", "7"] + extra, tmp_path)
    assert rc == 0 and r["exact_match"] >= 0.9, r["failures"]
