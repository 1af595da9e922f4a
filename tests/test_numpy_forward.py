"""The NumPy LLaDA forward (dnpu.model.numpy_forward) against the PyTorch model on the shipped
models: the same checkpoint layout, logits within the stated bounds, and generations equal
token for token on held-out problems of each model's task."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dnpu.generation import generate  # noqa: E402
from dnpu.model import (DEFAULT_MODEL_DIR, CheckpointError, LLaDA, NumpyLLaDA, get_task, load, load_numpy,  # noqa: E402
                        model_info)
from dnpu.model.checkpoint import checkpoint_shapes  # noqa: E402
from dnpu.model.npu import NEAR_TIE, argmax_mismatches  # noqa: E402
from dnpu.model.tasks import generation_defaults  # noqa: E402

MODELS = {"tiny-add": DEFAULT_MODEL_DIR, "tiny-rev": DEFAULT_MODEL_DIR.parent / "tiny-rev"}
# Largest |NumPy - PyTorch| over a row's logits, relative to the row's largest magnitude:
# fp32 differs by float32 summation order and exp; bf16 also by the BF16 roundings those
# move (measured on 64 held-out prompts: 1e-5 in fp32; 1.3 % on tiny-add, 4.9 % on tiny-rev
# in bf16). A token the two pick differently must be a near-tie (dnpu.model.npu.NEAR_TIE).
REL_TOL = {"fp32": 1e-4, "bf16": NEAR_TIE}


def _problems(name: str, n: int, tok):
    info = model_info(MODELS[name])
    task = get_task(info["task"])
    prompts, _ = task.encode_problems(tok, task.heldout(n, seed=0))
    return prompts, generation_defaults(info, task)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_checkpoint_layout_is_the_torch_models(name):
    model, _ = load(MODELS[name], device="cpu")
    assert checkpoint_shapes(model.config) == model.expected_shapes()


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_logits_within_the_bound_of_pytorchs(name, dtype):
    nmod, tok = load_numpy(MODELS[name], dtype=dtype)
    tmod, _ = load(MODELS[name], device="cpu", dtype=dtype)
    prompts, d = _problems(name, 8, tok)
    x = np.concatenate([prompts, np.full((len(prompts), d["gen_length"]), tmod.config.mask_token_id)], axis=1)
    got = nmod(x)
    with torch.no_grad():
        ref = tmod(torch.from_numpy(x)).float().numpy()
    assert got.dtype == np.float32 and got.shape == ref.shape
    rel = np.abs(got - ref).max(-1) / np.abs(ref).max(-1)
    assert rel.max() <= REL_TOL[dtype], f"{name} {dtype}: logits differ by {rel.max():.3g} of the row's largest"
    diff, near = argmax_mismatches(got, ref)
    assert (diff == near).all(), f"{int((diff & ~near).sum())} argmax differences that are not near-ties"


@pytest.mark.parametrize("name,n", [("tiny-add", 16), ("tiny-rev", 4)])
def test_generation_tokens_equal_pytorchs(name, n):
    nmod, tok = load_numpy(MODELS[name])
    tmod, _ = load(MODELS[name], device="cpu", dtype="bf16")
    prompts, d = _problems(name, n, tok)
    got = generate(nmod, prompts, sampler="torch", **d)
    ref = generate(tmod, prompts, sampler="torch", **d)
    assert isinstance(got, np.ndarray) and isinstance(ref, torch.Tensor)
    np.testing.assert_array_equal(got, ref.numpy())


@pytest.mark.parametrize("kv_cache,kv_format", [("prefix", "bf16"), ("dual", "bf16"), ("dual", "e4m3")])
def test_kv_cache_generation_equals_pytorchs(kv_cache, kv_format):
    nmod, tok = load_numpy(MODELS["tiny-add"])
    tmod, _ = load(MODELS["tiny-add"], device="cpu", dtype="bf16")
    prompts, d = _problems("tiny-add", 8, tok)
    kw = d | {"kv_cache": kv_cache, "kv_format": kv_format}
    np.testing.assert_array_equal(generate(nmod, prompts, sampler="torch", **kw),
                                  generate(tmod, prompts, sampler="torch", **kw).numpy())


def test_the_cache_contract_holds():
    """A dual-cache forward of a block with the cache of the same sequence is the full
    forward's rows (as dnpu.model.LLaDA promises)."""
    nmod, tok = load_numpy(MODELS["tiny-add"], dtype="fp32")
    prompts, d = _problems("tiny-add", 2, tok)
    x = np.concatenate([prompts, np.full((2, d["gen_length"]), nmod.config.mask_token_id)], axis=1)
    full, kv = nmod(x, return_kv=True)
    s = prompts.shape[1]
    part = nmod(x[:, s:s + 4], kv=kv, start=s)
    np.testing.assert_allclose(part, full[:, s:s + 4], rtol=0, atol=1e-5 * np.abs(full).max())


def test_noise_is_seeded():
    nmod, tok = load_numpy(MODELS["tiny-add"])
    prompts, d = _problems("tiny-add", 4, tok)
    a, b, c = (generate(nmod, prompts, sampler="torch", temperature=1e3, seed=s, **d) for s in (3, 3, 4))
    np.testing.assert_array_equal(a, b)
    assert (a[:, prompts.shape[1]:] != c[:, prompts.shape[1]:]).any()


def test_refuses_what_the_torch_loader_refuses(tmp_path):
    d = tmp_path / "m"
    shutil.copytree(DEFAULT_MODEL_DIR, d)
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps(cfg | {"d_model": 96}))
    with pytest.raises(CheckpointError) as np_err:
        load_numpy(d)
    with pytest.raises(CheckpointError) as torch_err:
        load(d, device="cpu")
    assert str(np_err.value) == str(torch_err.value) and "mis-shaped tensors" in str(np_err.value)
    with pytest.raises(ValueError, match="unknown dtype 'fp8'"):
        load_numpy(DEFAULT_MODEL_DIR, dtype="fp8")


def test_a_bf16_checkpoint_reads_as_pytorchs(tmp_path):
    from dnpu.model import save

    model, _ = load(DEFAULT_MODEL_DIR, device="cpu")
    save(model, tmp_path / "m", json.loads((DEFAULT_MODEL_DIR / "tokenizer.json").read_text()), dtype=torch.bfloat16)
    nmod, _ = load_numpy(tmp_path / "m", dtype="fp32")
    tmod, _ = load(tmp_path / "m", device="cpu")
    assert str(tmod.dtype) == "torch.bfloat16"
    want = {k: v.float().numpy() for k, v in tmod.state_dict().items()}
    got = nmod.state_dict()
    assert sorted(got) == sorted(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_model_weights_checked_when_built_from_memory():
    model, _ = load(DEFAULT_MODEL_DIR, device="cpu")
    w = {k: v.float().numpy() for k, v in model.state_dict().items()}
    w.pop("model.transformer.ln_f.weight")
    with pytest.raises(CheckpointError, match="missing tensors: model.transformer.ln_f.weight"):
        NumpyLLaDA(model.config, w)
    assert isinstance(model, LLaDA)
