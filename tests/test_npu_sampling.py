"""Sampling on the emulator backend against the torch reference, and the cross-check tool."""

import json
import subprocess

import numpy as np
import pytest

from dnpu import sampling
from dnpu.compiler import FLOWS
from dnpu.sampling import npu
from dnpu.spec import config, mx
from dnpu.verify.sampling import Case, case_bound, check_sampling, classify

from conftest import dnpu_cli

SIM = config.load("sim")


def _step(logits, mask, x, flow, **kw):
    ref = sampling.transfer(logits, mask, x, backend="torch", flow=flow, **kw)
    got = sampling.transfer(logits, mask, x, backend="emu", flow=flow, **kw)
    return ref, got


@pytest.mark.parametrize("flow", FLOWS)
@pytest.mark.parametrize("V", [32, 96, 512, 4096])
def test_emu_matches_torch_on_dominant_logits(flow, V):
    rng = np.random.default_rng(V)
    B, L = 2, 9
    logits = rng.standard_normal((B, L, V)).astype(np.float32)
    top = rng.integers(0, V, (B, L))
    # Confidences spread far apart: the commit decision has no near tie.
    np.put_along_axis(logits, top[..., None], (4.0 + np.arange(B * L).reshape(B, L, 1) * 0.7), axis=-1)
    mask = rng.random((B, L)) < 0.7
    x = rng.integers(0, V, (B, L))
    k = np.minimum(mask.sum(1), 3)
    ref, got = _step(logits, mask, x, flow, k=k)
    np.testing.assert_array_equal(got.x0, ref.x0)
    assert np.all(np.isneginf(got.conf[~mask]))
    case = Case(logits, mask, x, k, None, flow, "dominant")
    bound = case_bound(case, SIM.vector.vlen, "e4m3", SIM.mx.block)
    np.testing.assert_allclose(got.conf[mask], ref.conf[mask], rtol=bound)
    if flow == "fused":  # FP32 ranking: these confidences are far apart
        np.testing.assert_array_equal(got.x_new, ref.x_new)
    else:  # BF16 ranking (the paper's): commits may differ only as near ties
        assert classify(case, ref, got, bound)["token_mismatches"] == 0


@pytest.mark.parametrize("flow", FLOWS)
def test_all_negative_logits_and_threshold_mode(flow):
    rng = np.random.default_rng(7)
    logits = (-80.0 - rng.random((1, 6, 256)) * 30).astype(np.float32)
    logits[0, :, 17] = -50.0  # a clear winner far below zero: a running max started at 0 would miss it
    mask = np.ones((1, 6), bool)
    x = np.zeros((1, 6), np.int64)
    ref, got = _step(logits, mask, x, flow, threshold=0.9)
    np.testing.assert_array_equal(got.x0, np.full((1, 6), 17))
    np.testing.assert_array_equal(got.x_new, ref.x_new)
    assert np.all(got.x_new == 17)  # every position is confident enough to commit


def test_ties_pick_the_lowest_index():
    logits = np.zeros((1, 4, 64), np.float32)
    logits[0, :, [5, 9, 40]] = 3.0
    mask = np.ones((1, 4), bool)
    ref, got = _step(logits, mask, np.zeros((1, 4), np.int64), "fused", k=4)
    assert np.all(got.x0 == 5) and np.all(ref.x0 == 5)


def test_largest_sim_shape_runs():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((4, 64, 8192)).astype(np.float32) * 3
    mask = np.ones((4, 64), bool)
    x = np.zeros((4, 64), np.int64)
    ref, got = _step(logits, mask, x, "fused", k=np.full(4, 8))
    np.testing.assert_array_equal(got.x0, ref.x0)


def test_npu_step_refuses_a_block_the_profile_does_not_decode():
    q = mx.quantize(np.zeros((1, 2, 64), np.float32), "e4m3", block=16)
    with pytest.raises(ValueError, match="decodes MX blocks of 32"):
        npu.run("emu", q, np.ones((1, 2), bool), np.zeros((1, 2)), np.array([1]), None, "fused")


def test_npu_step_refuses_token_ids_beyond_int32():
    q = mx.quantize(np.zeros((1, 2, 64), np.float32), "e4m3")
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 2\*\*31\)"):
        npu.run("emu", q, np.ones((1, 2), bool), np.array([[0, 2**40]]), np.array([1]), None, "fused")


def test_check_sampling_finds_no_mismatch_on_random_cases():
    r = check_sampling("emu", cases=12, seed=5)
    assert r["cases"] == 12
    assert r["token_mismatches"] == 0 and r["bound_violations"] == 0
    assert 0.0 <= r["max_conf_error"] <= r["bound"]


def _case(k=None, threshold=None):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((1, 8, 64)).astype(np.float32)
    logits[0, np.arange(8), np.arange(8) * 3] = 2.0 + np.arange(8)  # well-separated confidences
    return Case(logits, np.ones((1, 8), bool), np.full((1, 8), 63, np.int64),  # x != any x0
                       None if k is None else np.array([k]), threshold, "fused", "test")


def test_classify_counts_a_far_commit_as_a_mismatch_and_a_close_one_as_a_near_tie():
    case = _case(k=3)
    ref = sampling.transfer(case.logits, case.mask, case.x, k=case.k, backend="torch")
    assert classify(case, ref, ref, 1e-3)["token_mismatches"] == 0
    # Committing the least confident position instead of the third: far from the boundary.
    bad = ref.x_new.copy()
    order = np.argsort(-ref.conf[0])
    bad[0, order[2]], bad[0, order[-1]] = case.x[0, order[2]], ref.x0[0, order[-1]]
    r = classify(case, ref, sampling.StepResult(bad, ref.x0, ref.conf), 1e-3)
    assert r["token_mismatches"] == 2 and r["near_ties"] == 0
    # With a bound as wide as the gap, the same swap of the 3rd and 4th is a near tie.
    swap = ref.x_new.copy()
    swap[0, order[2]], swap[0, order[3]] = case.x[0, order[2]], ref.x0[0, order[3]]
    gap = ref.conf[0, order[2]] - ref.conf[0, order[3]]
    r = classify(case, ref, sampling.StepResult(swap, ref.x0, ref.conf), gap)
    assert r["token_mismatches"] == 0 and r["near_ties"] == 2


def test_classify_always_counts_a_wrong_x0():
    case = _case(threshold=0.5)
    ref = sampling.transfer(case.logits, case.mask, case.x, threshold=0.5, backend="torch")
    x0 = ref.x0.copy()
    x0[0, 0] += 1
    r = classify(case, ref, sampling.StepResult(ref.x_new, x0, ref.conf), 1.0)
    assert r["x0_mismatches"] == 1 and r["token_mismatches"] >= 1


def test_cli_check_sampling_writes_the_promised_json(tmp_path):
    out = tmp_path / "cs.json"
    r = subprocess.run(dnpu_cli() + ["check-sampling", "--backend", "emu", "--cases", "4", "--seed", "2",
                                     "--json", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    js = json.loads(out.read_text())
    assert {"cases", "token_mismatches", "near_ties", "max_conf_error", "bound"} <= set(js)
    assert js["cases"] == 4 and js["token_mismatches"] == 0
