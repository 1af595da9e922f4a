"""The whole LLaDA forward on the NPU (dnpu.compiler.forward, dnpu.model.npu): the emulator's
logits are the NPU arithmetic composed in NumPy (reference_logits) bit for bit, PyTorch's
forward with the same quantization picks the same tokens but for near-ties, the RTL's logits
are the emulator's, and a model that does not fit says which limit it exceeds."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dnpu.compiler import CompileError
from dnpu.compiler.forward import ForwardShape, forward_program
from dnpu.model import LLaDA, LLaDAConfig, get_task, load
from dnpu.model.llada import init_weights
from dnpu.model.npu import (NEAR_TIE, NpuForward, argmax_mismatches, forward, forward_shape,
                             quantized_torch_logits, reference_logits, reference_step)
from dnpu.spec import config as config_mod
from dnpu.spec import numerics as nm

SIM = config_mod.load("sim")


@pytest.fixture(scope="module")
def tiny():
    return load()[0]


def small_model(**kw) -> LLaDA:
    cfg = LLaDAConfig(**{"d_model": 64, "n_heads": 2, "n_layers": 2, "mlp_hidden_size": 96, "vocab_size": 40,
                         "mask_token_id": 1, "eos_token_id": 0, "max_sequence_length": 64, **kw})
    m = LLaDA(cfg)
    init_weights(m, seed=3, std=0.2)
    return m


def test_emu_is_the_reference_arithmetic(tiny):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, tiny.config.vocab_size, (1, 16))
    info = []
    got = forward(tiny, ids, backend="emu", run_info=info)
    for b in range(1):
        assert np.array_equal(got[b], nm.bf16_value(reference_logits(tiny, ids[b])))
    # logits are the only bytes the step writes; the weights are read, not rewritten
    E = tiny.config.embedding_size
    assert [i.counters["DATA_WR_BYTES"] for i in info] == [2 * 16 * E]


@pytest.mark.parametrize("fmt,d,heads,F,T", [("e2m1", 64, 2, 96, 20), ("e4m3", 32, 1, 64, 36)])
def test_other_shapes_and_formats(fmt, d, heads, F, T):
    """Two heads; one head (the output projection one M_MM_RES) over
    36 keys, which take two key tiles on sim: still the reference bit for bit."""
    m = small_model(d_model=d, n_heads=heads, mlp_hidden_size=F)
    ids = np.random.default_rng(T).integers(0, 40, T)
    got = forward(m, ids, fmt=fmt)
    assert np.array_equal(got[0], nm.bf16_value(reference_logits(m, ids, fmt=fmt)))
    prog = forward_program(SIM, forward_shape(m.config, T), fmt)
    assert (prog.key_tile < T) == (T == 36)


@pytest.mark.parametrize("profile,d,heads", [("sim", 64, 4), ("zcu104", 64, 4), ("zcu104", 128, 4)])
def test_narrow_heads_are_zero_padded(profile, d, heads):
    """A head narrower than the rows it must fill (head_dim 16 on sim, 16 and 32 on zcu104's
    64-wide rows) is zero-padded, each half starting a row: every sum is the same, so the
    logits are the reference's bit for bit, the output projection's weights quantized as
    the padded layout blocks them (effective_weights)."""
    from dnpu.compiler.forward import head_layout

    cfg = config_mod.load(profile)
    m = small_model(d_model=d, n_heads=heads, mlp_hidden_size=d, n_layers=1)
    hdp, _ = head_layout(cfg, d // heads)
    assert hdp > d // heads
    ids = np.random.default_rng(d).integers(0, 40, 16)
    got = forward(m, ids, config=cfg)
    assert np.array_equal(got[0], nm.bf16_value(reference_logits(m, ids, config=cfg)))


def test_torch_with_the_same_quantization_agrees_but_for_near_ties(tiny):
    """PyTorch's BF16 forward with the MX weights on the shipped task's prompts (answers
    masked, half of them partly revealed): every argmax the same or a near-tie."""
    m, tok = load()
    task = get_task("add3")
    a, b = task.sample_train(np.random.default_rng(2), 4)
    p, ans = task.encode_batch(tok, a, b)
    x = np.concatenate([p, np.full_like(ans, m.config.mask_token_id)], 1)
    x[::2, p.shape[1]:p.shape[1] + 4] = ans[::2, :4]
    npu = forward(tiny, x)
    ref = quantized_torch_logits(tiny, x)
    diff, near = argmax_mismatches(npu, ref)
    assert (diff == near).all() and diff.mean() < 0.05
    gen = slice(p.shape[1], None)                                 # the answer region's logits
    assert np.abs(npu - ref)[:, gen].max() <= NEAR_TIE * np.abs(ref[:, gen]).max()
    # the rule catches a real difference: a logit moved by a tenth of the row's range
    bad = npu.copy()
    row = bad[0, -1]
    row[ref[0, -1].argmin()] = row.max() + 0.1 * np.abs(ref[0, -1]).max()
    d2, n2 = argmax_mismatches(bad, ref)
    assert d2[0, -1] and not n2[0, -1]


@pytest.mark.parametrize("vocab", [64, 40])
def test_the_step_on_the_chip_is_the_reference(vocab):
    """Forward and sampling in one program (NpuForward.step): x_new, x0 and the confidences
    are reference_step's bit for bit, for quotas 0, 2 and the whole block and a threshold,
    with a vocabulary that fills its last vector row and one that does not (40: padding
    lanes at -Inf); the logits come back only when asked, and then equal the forward's."""
    from dnpu import runtime

    m = small_model(vocab_size=vocab)
    T, s, L = 20, 12, 6
    ids = np.random.default_rng(vocab).integers(2, vocab, T)
    ids[s:s + L:2] = 1                                   # half the block masked
    fw = NpuForward.compile(m, T)
    with runtime.open("emu") as dev:
        for kw in ({"k": 0}, {"k": 2}, {"k": L}, {"threshold": 0.3}):
            x_new, x0, conf = fw.step(dev, ids, s, L, 1, **kw)
            want = reference_step(m, ids, s, L, 1, **kw)
            assert np.array_equal(x_new, want[0]) and np.array_equal(x0, want[1]), kw
            assert np.array_equal(nm.f32_bits(conf), want[2]), kw
            assert (x_new[1::2] == ids[s + 1:s + L:2]).all()             # unmasked positions stay
        *_, lg = fw.step(dev, ids, s, L, 1, k=1, logits=True)
        assert np.array_equal(lg, fw.run(dev, ids)[s:s + L])
        with pytest.raises(ValueError, match="exactly one of k"):
            fw.step(dev, ids, s, L, 1)
        with pytest.raises(ValueError, match="not inside the 20 positions"):
            fw.step(dev, ids, 16, 6, 1, k=1)


def test_generation_with_noise_takes_the_logits_path(tiny):
    """temperature > 0: the logits come back for the host's noise and go through the
    sampling step on the backend; seeded, so two runs agree."""
    import dnpu

    m, tok = load()
    p, _ = get_task("add3").encode_batch(tok, [123], [456])
    kw = dict(gen_length=8, block_length=4, steps=2, sampler="emu", forward="npu", temperature=0.5, seed=3)
    a = dnpu.generate(tiny, p, **kw)
    assert np.array_equal(a, dnpu.generate(tiny, p, **kw)) and (a[:, 8:] != m.config.mask_token_id).all()


def test_errors(tiny):
    with pytest.raises(CompileError, match="mlp_hidden_size = 48 must be a multiple of 32"):
        forward_program(SIM, ForwardShape(64, 4, 1, 48, 32, 8))
    with pytest.raises(CompileError, match="sram.vector_rows = 1024"):
        forward_program(SIM, ForwardShape(128, 4, 1, 384, 64, 200))
    nomat = dataclasses.replace(SIM, matrix=dataclasses.replace(SIM.matrix, rows=0))
    with pytest.raises(CompileError, match="needs the matrix unit"):
        forward_program(nomat, ForwardShape(128, 4, 1, 384, 64, 16))
    with pytest.raises(CompileError, match="grouped K/V heads"):
        forward_shape(small_model(n_kv_heads=1).config, 8)
    with pytest.raises(ValueError, match="does not compile for profile sim"):
        forward(tiny, np.zeros((1, 200), np.int64))
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 64\)"):
        forward(tiny, np.full((1, 16), 64))
    with pytest.raises(ValueError, match="ids: expected a non-empty int array"):
        forward(tiny, np.zeros((1, 16), np.float32))


@pytest.mark.rtl
def test_verilator_step_equals_emu(model):
    """The whole step (forward and sampling in one program) on the RTL: the emulator's
    x_new, x0 and confidence bits, the padded vocabulary included."""
    from dnpu import runtime

    m = small_model()
    ids = np.random.default_rng(6).integers(2, 40, 20)
    ids[10:16] = 1
    fw = NpuForward.compile(m, 20)
    out = {}
    for backend in ("verilator", "emu"):
        with runtime.open(backend) as dev:
            out[backend] = fw.step(dev, ids, 10, 6, 1, threshold=0.2, logits=True)
    for a, b in zip(out["verilator"], out["emu"]):
        assert np.array_equal(a, b)


@pytest.mark.rtl
def test_verilator_equals_emu(model):
    """The co-simulated RTL runs the whole forward of a small model to the emulator's bits."""
    m = small_model()
    ids = np.random.default_rng(5).integers(0, 40, 20)
    info = []
    got = forward(m, ids, backend="verilator", run_info=info)
    assert np.array_equal(got, forward(m, ids, backend="emu"))
    assert info[0].cycles > 0
