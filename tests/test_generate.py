"""dnpu.generate: LLaDA's block loop, Fast-dLLM's threshold and caches, NPU samplers."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import dnpu  # noqa: E402
from dnpu import generation, sampling  # noqa: E402
from dnpu.model import LLaDA, LLaDAConfig, get_task, load  # noqa: E402
from dnpu.model.llada import init_weights  # noqa: E402

MASK = 1

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_model(layers=2, vocab=64, seed=0, std=0.3):
    cfg = LLaDAConfig(d_model=32, n_heads=4, n_layers=layers, mlp_hidden_size=48, vocab_size=vocab,
                      mask_token_id=MASK, eos_token_id=0)
    m = LLaDA(cfg)
    init_weights(m, seed, std=std)
    return m.eval()


def prompts(n=3, P=5, vocab=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(2, vocab, (n, P), generator=g)


@pytest.fixture(scope="module")
def shipped():
    model, tok = load(device="cpu", dtype="bf16")
    task = get_task("add3")
    pairs = task.heldout(4, seed=11)
    ids, _ = task.encode_batch(tok, [a for a, _ in pairs], [b for _, b in pairs])
    return model, tok, ids


def test_dnpu_generate_is_the_function():
    assert dnpu.generate is generation.generate
    with pytest.raises(AttributeError):
        dnpu.no_such_thing  # noqa: B018


@pytest.mark.parametrize("kv_cache,threshold,flow", [("none", None, "fused"), ("dual", 0.9, "fused"),
                                                      ("prefix", None, "phased")])
def test_emu_sampler_equals_torch_sampler_on_shipped_model(shipped, kv_cache, threshold, flow):
    model, tok, ids = shipped
    kw = dict(gen_length=8, block_length=4, steps=8, kv_cache=kv_cache, threshold=threshold, flow=flow)
    ref = dnpu.generate(model, ids, sampler="torch", **kw)
    got = dnpu.generate(model, ids, sampler="emu", **kw)
    assert torch.equal(ref, got)
    assert not (got == model.config.mask_token_id).any()


def test_emu_equals_torch_with_gumbel_noise(shipped):
    model, _, ids = shipped
    kw = dict(gen_length=8, block_length=8, steps=8, temperature=1.0, seed=5)
    a = dnpu.generate(model, ids[:2], sampler="torch", **kw)
    assert torch.equal(a, dnpu.generate(model, ids[:2], sampler="emu", **kw))
    assert torch.equal(a, dnpu.generate(model, ids[:2], sampler="torch", **kw)), "same seed, same tokens"


def test_shape_prompt_kept_and_quota_schedule():
    model = random_model()
    p = prompts()
    seen = []
    out, stats = dnpu.generate(model, p, gen_length=8, block_length=4, steps=4, progress=seen.append,
                               return_stats=True)
    assert out.dtype == torch.int64 and out.shape == (3, 13) and out.device.type == "cpu"
    assert torch.equal(out[:, :5], p) and not (out == MASK).any()
    # 2 blocks x 2 steps, quota 2 per row per step: masked count drops by 3 rows x 2 tokens each step.
    assert [s.masked_left for s in seen] == [18, 12, 6, 0]
    assert [(s.block, s.step) for s in seen] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert stats.forwards == 4 and stats.tokens == 24 and stats.wall_s >= stats.forward_s + stats.sample_s


def test_sampler_sees_only_the_current_block(monkeypatch):
    model = random_model()
    calls = []
    orig = sampling.transfer

    def spy(logits, mask, x, **kw):
        calls.append((tuple(logits.shape), mask.copy(), kw["k"].tolist()))
        return orig(logits, mask, x, **kw)

    monkeypatch.setattr(sampling, "transfer", spy)
    out = dnpu.generate(model, prompts(1), gen_length=8, block_length=4, steps=8)
    assert [c[0] for c in calls] == [(1, 4, 64)] * 8
    assert [int(c[1].sum()) for c in calls] == [4, 3, 2, 1] * 2  # the block's masks, one commit a step
    assert [c[2] for c in calls] == [[1]] * 8
    assert not (out == MASK).any()


def test_zero_quota_steps_are_skipped():
    model = random_model()
    seen = []
    out, stats = dnpu.generate(model, prompts(2), gen_length=4, block_length=4, steps=8, progress=seen.append,
                               return_stats=True)
    assert stats.forwards == 4 and not (out == MASK).any()  # 4 masks over 8 steps: quotas 1,1,1,1,0,0,0,0


def test_threshold_runs_until_block_is_full():
    model = random_model()
    out, stats = dnpu.generate(model, prompts(2), gen_length=8, block_length=4, steps=2, threshold=1.0,
                               return_stats=True)
    # Confidence 1.0 is out of reach for a random model: exactly one commit (the best) per step.
    assert stats.forwards == 8 and not (out == MASK).any()
    out2, stats2 = dnpu.generate(model, prompts(2), gen_length=8, block_length=4, steps=2, threshold=1e-9,
                                 return_stats=True)
    assert stats2.forwards == 2 and not (out2 == MASK).any()  # every masked position clears the threshold


@pytest.mark.parametrize("kv_cache", ["prefix", "dual"])
def test_caches_exact_for_one_layer_model(kv_cache):
    """In a one-layer model cached K/V depend only on their own (unchanged) tokens, so the
    caches reproduce the uncached generation."""
    model = random_model(layers=1, std=0.5)
    p = prompts(3, seed=2)
    kw = dict(gen_length=16, block_length=4, steps=8)
    assert torch.equal(dnpu.generate(model, p, kv_cache=kv_cache, **kw), dnpu.generate(model, p, **kw))


def test_caches_use_fewer_positions():
    model = random_model()
    calls = []
    orig = model.forward

    def spy(ids, **kw):
        calls.append((ids.shape[1], kw.get("start", 0), kw.get("kv") is not None))
        return orig(ids, **kw)

    model.forward = spy
    p = prompts(1)
    dnpu.generate(model, p, gen_length=8, block_length=4, steps=4, kv_cache="prefix")
    assert calls == [(13, 0, False), (8, 5, True), (13, 0, False), (4, 9, True)]
    calls.clear()
    dnpu.generate(model, p, gen_length=8, block_length=4, steps=4, kv_cache="dual")
    assert calls == [(13, 0, False), (4, 5, True), (13, 0, False), (4, 9, True)]


def test_vocab_not_multiple_of_mx_block_is_padded():
    model = random_model(vocab=48)
    out = dnpu.generate(model, prompts(2, vocab=48), gen_length=4, block_length=4, steps=4, sampler="emu")
    assert int(out.max()) < 48 and not (out == MASK).any()


def test_temperature_seeds_differ_and_noise_is_host_side():
    model = random_model()
    p = prompts(2)
    kw = dict(gen_length=8, block_length=8, steps=8, temperature=2.0)
    a = dnpu.generate(model, p, seed=1, **kw)
    assert torch.equal(a, dnpu.generate(model, p, seed=1, **kw))
    assert not torch.equal(a, dnpu.generate(model, p, seed=2, **kw))
    assert not torch.equal(a, dnpu.generate(model, p, gen_length=8, block_length=8, steps=8))


@pytest.mark.parametrize("kw,match", [
    (dict(sampler="gpu"), "unknown sampler"),
    (dict(kv_cache="full"), "unknown kv_cache"),
    (dict(gen_length=6), "not a multiple of block_length"),
    (dict(steps=3), "not a multiple of the number of blocks"),
    (dict(threshold=1.5), r"threshold must be in \(0, 1\]"),
    (dict(temperature=-1.0), "temperature"),
    (dict(fmt="e9m9"), "unknown fmt"),
])
def test_bad_settings_raise(kw, match):
    model = random_model()
    args = dict(gen_length=8, block_length=4, steps=4) | kw
    with pytest.raises(ValueError, match=match):
        dnpu.generate(model, prompts(1), **args)


def test_bad_prompt_raises():
    model = random_model()
    with pytest.raises(ValueError, match=r"prompt_ids\[None\]"):
        dnpu.generate(model, torch.tensor([2, 3]), gen_length=4, block_length=4, steps=4)
    with pytest.raises(ValueError, match="integer"):
        dnpu.generate(model, np.zeros((1, 3)), gen_length=4, block_length=4, steps=4)


@pytest.mark.gpu
def test_cuda_forward_emu_equals_torch():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    model, tok = load(device="cuda", dtype="bf16")
    task = get_task("add3")
    pairs = task.heldout(64, seed=3)
    ids, _ = task.encode_batch(tok, [a for a, _ in pairs], [b for _, b in pairs])
    kw = dict(gen_length=8, block_length=4, steps=8, kv_cache="dual")
    assert torch.equal(dnpu.generate(model, ids, sampler="torch", **kw),
                       dnpu.generate(model, ids, sampler="emu", **kw))
