"""dnpu.sampling.transfer, backend "torch", against an independent float64 NumPy oracle.

The oracle (written here) takes the same MX-quantized logits (dnpu.spec.mx is tested on its
own in test_mx.py), then: ``np.argmax`` (documented: the first maximum wins),
``p = 1 / np.sum(np.exp(l - max))``, and a stable ``np.argsort`` of ``-conf`` over the
masked positions for the ranking (equal confidences keep position order).
"""

from __future__ import annotations

import sys
import types

import ml_dtypes
import numpy as np
import pytest
import torch

import dnpu
import dnpu.sampling
from dnpu.spec import mx
from dnpu.sampling import StepResult, transfer

# --------------------------------------------------------------------------- oracle


def oracle(logits, mask, x, *, k=None, threshold=None, fmt="e4m3", block=32):
    deq = mx.dequantize(mx.quantize(logits, fmt, block)).astype(np.float64)
    B, L, _ = deq.shape
    x0 = np.argmax(deq, axis=-1)
    mx_ = deq.max(axis=-1, keepdims=True)
    p = 1.0 / np.sum(np.exp(deq - mx_), axis=-1)
    conf = np.where(mask, p, -np.inf)
    commit = np.zeros((B, L), bool)
    for b in range(B):
        masked = np.flatnonzero(mask[b])
        ranked = masked[np.argsort(-conf[b, masked], kind="stable")]
        if k is not None:
            kb = k if np.ndim(k) == 0 else k[b]
            commit[b, ranked[:kb]] = True
        elif masked.size:
            commit[b, ranked[0]] = True
            commit[b, masked[conf[b, masked] >= threshold]] = True
    return np.where(commit, x0, x), x0, conf


def assert_same(res, ref):
    x_new, x0, conf = ref
    assert isinstance(res, StepResult)
    assert res.x_new.dtype == np.int64 and res.x0.dtype == np.int64 and res.conf.dtype == np.float64
    np.testing.assert_array_equal(res.x0, x0)
    np.testing.assert_array_equal(np.isneginf(res.conf), np.isneginf(conf))
    np.testing.assert_allclose(res.conf, conf, rtol=1e-13, atol=0)
    np.testing.assert_array_equal(res.x_new, x_new)


def random_case(rng, B, L, V, scale, p_mask=0.6):
    logits = (rng.standard_normal((B, L, V)) * scale).astype(np.float32)
    mask = rng.random((B, L)) < p_mask
    x = rng.integers(0, V, (B, L)).astype(np.int64)
    return logits, mask, x


SHAPES = [(1, 1, 32), (1, 7, 32), (3, 16, 64), (4, 32, 256), (2, 33, 128), (2, 5, 1024)]

# --------------------------------------------------------------------------- random vs oracle


@pytest.mark.parametrize("B,L,V", SHAPES)
@pytest.mark.parametrize("scale", [0.5, 4.0, 20.0])
def test_quota_mode_matches_numpy_oracle_on_random_inputs(B, L, V, scale):
    rng = np.random.default_rng(hash((B, L, V, scale)) % 2**32)
    for _ in range(3):
        logits, mask, x = random_case(rng, B, L, V, scale)
        k = np.array([rng.integers(0, c + 1) for c in mask.sum(1)], np.int64)
        assert_same(transfer(logits, mask, x, k=k), oracle(logits, mask, x, k=k))


@pytest.mark.parametrize("B,L,V", SHAPES)
@pytest.mark.parametrize("tau", [0.05, 0.3, 0.9, 1.0])
def test_threshold_mode_matches_numpy_oracle_on_random_inputs(B, L, V, tau):
    rng = np.random.default_rng(hash((B, L, V, tau)) % 2**32)
    for scale in (0.5, 4.0, 20.0):
        logits, mask, x = random_case(rng, B, L, V, scale)
        assert_same(transfer(logits, mask, x, threshold=tau), oracle(logits, mask, x, threshold=tau))


@pytest.mark.parametrize("fmt", sorted(mx.FORMATS))
@pytest.mark.parametrize("block", mx.BLOCK_SIZES)
def test_every_format_and_block_matches_numpy_oracle(fmt, block):
    # Narrow formats (e2m1: 15 values per block) make many exact logit ties.
    rng = np.random.default_rng(sum(map(ord, fmt)) * 100 + block)
    logits, mask, x = random_case(rng, 3, 12, 128, 3.0)
    k = np.minimum(mask.sum(1), 3)
    assert_same(
        transfer(logits, mask, x, k=k, fmt=fmt, block=block), oracle(logits, mask, x, k=k, fmt=fmt, block=block)
    )
    assert_same(
        transfer(logits, mask, x, threshold=0.4, fmt=fmt, block=block),
        oracle(logits, mask, x, threshold=0.4, fmt=fmt, block=block),
    )


def test_float64_and_bfloat16_logits_match_numpy_oracle():
    rng = np.random.default_rng(7)
    logits, mask, x = random_case(rng, 2, 9, 96, 5.0)
    l64 = logits.astype(np.float64) + rng.standard_normal(logits.shape) * 1e-3  # bits beyond float32
    assert_same(transfer(l64, mask, x, k=2), oracle(l64, mask, x, k=2))
    lbf = logits.astype(ml_dtypes.bfloat16)
    res = transfer(lbf, mask, x, k=2)
    assert_same(res, oracle(lbf.astype(np.float32), mask, x, k=2))
    tbf = transfer(torch.from_numpy(logits).to(torch.bfloat16), mask, x, k=2)
    for a, b in zip(tbf, res):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- hand-built cases


def test_exact_logit_ties_lowest_vocab_index_wins():
    logits = np.zeros((1, 3, 64), np.float32)
    logits[0, 0, [5, 40]] = 2.0  # tie across blocks
    logits[0, 1, [17, 3, 30]] = 1.5  # tie inside one block, lowest is 3
    logits[0, 2, :] = -1.0  # every index ties: 0 wins
    mask = np.ones((1, 3), bool)
    res = transfer(logits, mask, np.zeros((1, 3), np.int64), k=3)
    np.testing.assert_array_equal(res.x0, [[5, 3, 0]])
    np.testing.assert_array_equal(res.x_new, [[5, 3, 0]])
    assert res.conf[0, 2] == 1.0 / 64


def test_confidence_ties_lowest_position_wins():
    row_hi = np.zeros(32, np.float32)
    row_hi[4] = 3.0
    row_lo = np.zeros(32, np.float32)
    row_lo[9] = 1.0
    # positions 1 and 3 have identical rows (exactly equal conf), 0 and 2 are lower.
    logits = np.stack([row_lo, row_hi, row_lo, row_hi, row_hi])[None]
    mask = np.array([[True, True, True, True, False]])
    x = np.full((1, 5), 99, np.int64)
    res = transfer(logits, mask, x, k=1)
    assert res.conf[0, 1] == res.conf[0, 3] > res.conf[0, 0]
    np.testing.assert_array_equal(res.x_new, [[99, 4, 99, 99, 99]])
    res = transfer(logits, mask, x, k=3)  # 1, 3, then the tie between 0 and 2 goes to 0
    np.testing.assert_array_equal(res.x_new, [[9, 4, 99, 4, 99]])
    # threshold mode: nothing reaches 1.0, so only the best commits, and the best is a tie.
    res = transfer(logits, mask, x, threshold=1.0)
    np.testing.assert_array_equal(res.x_new, [[99, 4, 99, 99, 99]])


def test_k_equal_to_masked_count_commits_every_masked_position():
    rng = np.random.default_rng(1)
    logits, mask, x = random_case(rng, 3, 10, 64, 3.0)
    mask[2] = False
    res = transfer(logits, mask, x, k=mask.sum(1))
    np.testing.assert_array_equal(res.x_new, np.where(mask, res.x0, x))


def test_k_zero_commits_nothing():
    rng = np.random.default_rng(2)
    logits, mask, x = random_case(rng, 2, 10, 64, 3.0)
    res = transfer(logits, mask, x, k=0)
    np.testing.assert_array_equal(res.x_new, x)
    res = transfer(logits, mask, x, k=np.array([0, 1]))
    assert (res.x_new[0] == x[0]).all() and (res.x_new[1] != x[1]).sum() <= 1


def _peaked(L, V, heights, token):
    """Rows with one peak of the given height at `token` and zeros elsewhere."""
    logits = np.zeros((1, L, V), np.float32)
    for l, h in enumerate(heights):
        logits[0, l, token[l]] = h
    return logits


def test_threshold_with_nothing_above_commits_only_the_best():
    heights = [1.0, 2.0, 1.5, 0.5]  # conf about 0.08 .. 0.19 with V = 32
    logits = _peaked(4, 32, heights, [10, 11, 12, 13])
    mask = np.ones((1, 4), bool)
    x = np.full((1, 4), -1, np.int64)
    res = transfer(logits, mask, x, threshold=0.9)
    assert res.conf.max() < 0.9
    np.testing.assert_array_equal(res.x_new, [[-1, 11, -1, -1]])


def test_threshold_with_all_masked_above_commits_all_masked():
    logits = _peaked(5, 32, [20, 30, 40, 20, 25], [1, 2, 3, 4, 5])
    mask = np.array([[True, True, False, True, True]])
    x = np.full((1, 5), 7, np.int64)
    res = transfer(logits, mask, x, threshold=0.9)
    assert (res.conf[mask] >= 0.9).all()
    np.testing.assert_array_equal(res.x_new, [[1, 2, 7, 4, 5]])


def test_threshold_commits_confidences_exactly_equal_to_it():
    # A uniform row has conf exactly 1/32; a peak of 100 over zeros has conf exactly 1.0.
    logits = np.zeros((2, 4, 32), np.float32)
    logits[0, 1, 8] = 1.0  # conf above 1/32: the best of row 0
    logits[1, :, 3] = 100.0
    mask = np.ones((2, 4), bool)
    x = np.full((2, 4), -1, np.int64)
    res = transfer(logits, mask, x, threshold=1 / 32)
    assert res.conf[0, 0] == 1 / 32
    np.testing.assert_array_equal(res.x_new[0], [0, 8, 0, 0])
    res = transfer(logits, mask, x, threshold=1.0)
    assert (res.conf[1] == 1.0).all()
    np.testing.assert_array_equal(res.x_new, [[-1, 8, -1, -1], [3, 3, 3, 3]])


def test_threshold_row_without_masked_positions_commits_nothing():
    logits = _peaked(3, 32, [30, 30, 30], [1, 2, 3])
    logits = np.concatenate([logits, logits])
    mask = np.array([[False, False, False], [False, True, False]])
    x = np.full((2, 3), 7, np.int64)
    res = transfer(logits, mask, x, threshold=0.5)
    np.testing.assert_array_equal(res.x_new, [[7, 7, 7], [7, 2, 7]])


@pytest.mark.parametrize("mode", [{"k": 1}, {"threshold": 0.01}])
def test_unmasked_positions_never_change_even_with_high_conf(mode):
    # Unmasked positions are certain (conf would be 1.0); masked ones are unsure.
    logits = _peaked(6, 64, [50, 0.5, 50, 0.3, 50, 50], [1, 2, 3, 4, 5, 6])
    mask = np.array([[False, True, False, True, False, False]])
    x = np.array([[100, 101, 102, 103, 104, 105]])
    res = transfer(logits, mask, x, **mode)
    np.testing.assert_array_equal(res.x_new[~mask], x[~mask])
    assert res.x_new[0, 1] == 2  # the best masked position commits in both modes


def test_conf_is_minus_inf_exactly_at_unmasked_positions():
    rng = np.random.default_rng(3)
    logits, mask, x = random_case(rng, 4, 20, 64, 8.0)
    res = transfer(logits, mask, x, k=0)
    np.testing.assert_array_equal(np.isneginf(res.conf), ~mask)
    assert ((res.conf[mask] > 0) & (res.conf[mask] <= 1)).all()


def test_x0_follows_the_quantized_logits():
    # Block 0 (indices 0..31): 1.07 is its max, scale 2**-8 → e4m3 grid step 0.125 → 1.125.
    # Block 1 (32..63): amax 32768 makes 1.1 an e4m3 subnormal with step 2**-9 · 2**7 = 0.25 → 1.0.
    logits = np.zeros((1, 1, 64), np.float32)
    logits[0, 0, 0] = 1.07
    logits[0, 0, 32] = -32768.0
    logits[0, 0, 33] = 1.1
    deq = mx.dequantize(mx.quantize(logits, "e4m3", 32))
    assert deq[0, 0, 0] == 1.125 and deq[0, 0, 33] == 1.0
    assert np.argmax(logits[0, 0]) == 33
    res = transfer(logits, np.ones((1, 1), bool), np.zeros((1, 1), np.int64), k=1)
    assert res.x0[0, 0] == 0 and res.x_new[0, 0] == 0
    expected_p = 1.0 / (1.0 + np.exp(-0.125) + 61 * np.exp(-1.125) + np.exp(-1.125 - 32768.0))
    assert res.conf[0, 0] == pytest.approx(expected_p, rel=1e-14)
    # the tie rule also sees quantized values: 1.0 and 1.06 both become 1.0 in one block.
    logits = np.zeros((1, 1, 32), np.float32)
    logits[0, 0, [0, 5]] = [1.0, 1.06]
    assert transfer(logits, np.ones((1, 1), bool), np.zeros((1, 1), np.int64), k=0).x0[0, 0] == 0


def test_numpy_and_torch_inputs_give_identical_results():
    rng = np.random.default_rng(4)
    logits, mask, x = random_case(rng, 3, 17, 128, 4.0)
    k = np.minimum(mask.sum(1), 2)
    for mode in ({"k": k}, {"threshold": 0.2}):
        a = transfer(logits, mask, x, **mode)
        tmode = {"k": torch.from_numpy(k)} if "k" in mode else mode
        b = transfer(torch.from_numpy(logits), torch.from_numpy(mask), torch.from_numpy(x), **tmode)
        for u, v in zip(a, b):
            assert type(v) is np.ndarray
            np.testing.assert_array_equal(u, v)


def test_k_as_python_int_broadcasts_to_every_row():
    rng = np.random.default_rng(5)
    logits, mask, _ = random_case(rng, 3, 12, 64, 3.0)
    mask[:, :4] = True
    x = np.full((3, 12), -1, np.int64)  # no token id, so every commit shows
    a = transfer(logits, mask, x, k=2)
    b = transfer(logits, mask, x, k=np.full(3, 2, np.int64))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal((a.x_new != x).sum(1), [2, 2, 2])


def test_device_cpu_equals_default():
    rng = np.random.default_rng(6)
    logits, mask, x = random_case(rng, 2, 8, 64, 3.0)
    a = transfer(logits, mask, x, k=1)
    b = transfer(logits, mask, x, k=1, device="cpu")
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


@pytest.mark.gpu
def test_cuda_device_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("torch.cuda.is_available() is False: no CUDA GPU here")
    rng = np.random.default_rng(8)
    for B, L, V in [(2, 32, 256), (1, 32, 126464)]:
        logits, mask, x = random_case(rng, B, L, V, 3.0)
        for mode in ({"k": np.minimum(mask.sum(1), 4)}, {"threshold": 0.1}):
            cpu = transfer(logits, mask, x, **mode)
            gpu = transfer(logits, mask, x, device="cuda", **mode)
            np.testing.assert_array_equal(gpu.x0, cpu.x0)
            np.testing.assert_array_equal(np.isneginf(gpu.conf), np.isneginf(cpu.conf))
            np.testing.assert_allclose(gpu.conf, cpu.conf, rtol=1e-14, atol=0)  # exp differs by ulps at most
            np.testing.assert_array_equal(gpu.x_new, cpu.x_new)


# --------------------------------------------------------------------------- NPU dispatch


def test_npu_backend_gets_the_quantized_logits_and_arguments(monkeypatch):
    calls = []

    def run(backend, q, mask, x, k, threshold, flow, config):
        calls.append((backend, q, mask, x, k, threshold, flow, config))
        return x.copy(), np.zeros_like(x), np.full(x.shape, 0.5)

    fake = types.SimpleNamespace(run=run)
    monkeypatch.setitem(sys.modules, "dnpu.sampling.npu", fake)
    monkeypatch.setattr(dnpu.sampling, "npu", fake, raising=False)
    rng = np.random.default_rng(9)
    logits, mask, x = random_case(rng, 2, 6, 64, 3.0)
    mask[:, 0] = True
    res = transfer(torch.from_numpy(logits), mask, x.astype(np.int32), k=1, backend="emu", fmt="e5m2",
                   block=16, flow="phased", config="small")
    backend, q, m, xx, k, tau, flow, config = calls[0]
    want = mx.quantize(logits, "e5m2", 16)
    assert isinstance(q, mx.MXArray) and (q.fmt, q.block, q.shape) == ("e5m2", 16, logits.shape)
    np.testing.assert_array_equal(q.scales, want.scales)
    np.testing.assert_array_equal(q.codes, want.codes)
    assert m.dtype == np.bool_ and xx.dtype == np.int64 and k.dtype == np.int64
    np.testing.assert_array_equal(k, [1, 1])
    assert (backend, tau, flow, config) == ("emu", None, "phased", "small")
    assert isinstance(res, StepResult) and res.conf.dtype == np.float64
    transfer(logits, mask, x, threshold=0.9, backend="verilator")
    assert calls[1][4] is None and calls[1][5] == 0.9 and calls[1][6] == "fused"


def test_emu_backend_agrees_with_torch_on_well_separated_confidences():
    # Confidences well apart from each other and from the threshold, so any NPU
    # arithmetic within its documented bound commits the same positions.
    heights = [6.0, 1.0, 4.0, 2.5, 8.0, 0.0, 5.0, 3.0]
    logits = _peaked(8, 64, heights, [3, 9, 17, 33, 40, 2, 63, 50])
    logits = np.concatenate([logits, logits[:, ::-1]])
    mask = np.array([[True] * 8, [True, False] * 4])
    x = np.full((2, 8), 5, np.int64)
    for mode in ({"k": np.array([3, 2])}, {"threshold": 0.5}):
        ref = transfer(logits, mask, x, **mode)
        emu = transfer(logits, mask, x, backend="emu", **mode)
        np.testing.assert_array_equal(emu.x0, ref.x0)
        np.testing.assert_array_equal(emu.x_new, ref.x_new)
        np.testing.assert_array_equal(np.isneginf(emu.conf), ~mask)
        np.testing.assert_allclose(emu.conf[mask], ref.conf[mask], atol=1e-2)


# --------------------------------------------------------------------------- validation

L3 = np.zeros((2, 4, 32), np.float32)
M3 = np.ones((2, 4), bool)
X3 = np.zeros((2, 4), np.int64)


def _mask_row1_three():
    m = M3.copy()
    m[1, 3] = False
    return m


BAD = [
    ("logits ndim", dict(logits=np.zeros((4, 32), np.float32)), "3 dimensions [B, L, V]"),
    ("logits int", dict(logits=np.zeros((2, 4, 32), np.int32)), "logits must be float32, float64 or bfloat16"),
    ("logits float16", dict(logits=np.zeros((2, 4, 32), np.float16)), "cast them to float32"),
    ("logits torch f16", dict(logits=torch.zeros((2, 4, 32), dtype=torch.float16)), "logits.float()"),
    ("mask not bool", dict(mask=np.ones((2, 4), np.int64)), "mask must be a bool array"),
    ("mask shape", dict(mask=np.ones((2, 5), bool)), "mask must have shape [B, L] = (2, 4)"),
    ("mask ndim", dict(mask=np.ones((2, 4, 1), bool)), "mask must have shape"),
    ("x shape", dict(x=np.zeros((3, 4), np.int64)), "x must have shape [B, L] = (2, 4)"),
    ("x float", dict(x=np.zeros((2, 4), np.float32)), "x must be an integer array"),
    ("x bool", dict(x=np.zeros((2, 4), bool)), "x must be an integer array"),
    ("V not multiple", dict(logits=np.zeros((2, 4, 40), np.float32)), "pad the vocabulary with 24 entries"),
    ("V vs block", dict(logits=np.zeros((2, 4, 32), np.float32), block=64), "not a multiple of block 64"),
    ("both", dict(k=1, threshold=0.5), "both were given"),
    ("neither", dict(k=None), "neither was given"),
    ("k negative", dict(k=np.array([1, -1])), "k[1] = -1 is negative"),
    (
        "k too large",
        dict(k=np.array([1, 4]), mask=_mask_row1_three()),
        "k[1] = 4 is larger than row 1's masked count 3",
    ),
    ("k int too large", dict(k=4, mask=_mask_row1_three()), "row 1's masked count 3"),
    ("k shape", dict(k=np.array([1, 1, 1])), "k must have shape (2,)"),
    ("k float", dict(k=np.array([1.0, 1.0])), "k must be an int or an integer array"),
    ("k bool", dict(k=True), "got a bool"),
    ("threshold 0", dict(k=None, threshold=0.0), "threshold must be in (0, 1]"),
    ("threshold big", dict(k=None, threshold=1.5), "threshold must be in (0, 1]"),
    ("threshold nan", dict(k=None, threshold=float("nan")), "threshold must be in (0, 1]"),
    ("threshold str", dict(k=None, threshold="0.9"), "threshold must be a float"),
    ("backend", dict(backend="tpu"), "unknown backend 'tpu'"),
    ("flow", dict(flow="pipelined"), "unknown flow 'pipelined'"),
    ("fmt", dict(fmt="fp8"), "unknown fmt 'fp8'"),
    ("block", dict(block=12), "block must be one of"),
    ("empty B", dict(logits=np.zeros((0, 4, 32), np.float32), mask=M3[:0], x=X3[:0]), "logits is empty"),
    ("empty L", dict(logits=np.zeros((2, 0, 32), np.float32), mask=M3[:, :0], x=X3[:, :0]), "logits is empty"),
    ("empty V", dict(logits=np.zeros((2, 4, 0), np.float32)), "logits is empty"),
    ("device", dict(device="tpu:0"), "is not a torch device"),
    ("device with npu", dict(device="cpu", backend="emu"), "device='cpu' applies only to backend='torch'"),
]


@pytest.mark.parametrize("kwargs,fragment", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_invalid_arguments_raise_value_error_saying_why(kwargs, fragment):
    args = dict(logits=L3, mask=M3, x=X3, k=1)
    args.update(kwargs)
    with pytest.raises(ValueError) as ei:
        transfer(args.pop("logits"), args.pop("mask"), args.pop("x"), **args)
    assert fragment in str(ei.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_logits_raise_value_error_naming_the_position(bad):
    logits = L3.copy()
    logits[1, 2, 7] = bad
    with pytest.raises(ValueError, match=r"NaN or Inf \(first at \[1, 2, 7\]"):
        transfer(logits, M3, X3, k=1)


def test_float64_logits_beyond_float32_range_raise_value_error():
    logits = L3.astype(np.float64)
    logits[0, 1, 3] = 1e300
    with pytest.raises(ValueError, match=r"logits\[0, 1, 3\] = 1e\+300 overflows float32"):
        transfer(logits, M3, X3, k=1)


def test_cuda_device_without_cuda_raises_value_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here; this checks the message on machines without it")
    with pytest.raises(ValueError, match="torch.cuda.is_available"):
        transfer(L3, M3, X3, k=1, device="cuda")
