"""LLaDA's step schedule: dnpu.sampling.num_transfer_tokens and schedule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dnpu.sampling import num_transfer_tokens, schedule, transfer


def llada_get_num_transfer_tokens(mask_index: torch.Tensor, steps: int) -> torch.Tensor:
    """ML-GSAI/LLaDA generate.py's rule, written the way it is written there."""
    mask_num = mask_index.sum(dim=1, keepdim=True)
    base = mask_num // steps
    remainder = mask_num % steps
    out = torch.zeros(mask_num.size(0), steps, dtype=torch.int64) + base
    for i in range(mask_num.size(0)):
        out[i, : remainder[i]] += 1
    return out


def _mask_with_counts(counts, length):
    m = np.zeros((len(counts), length), bool)
    for b, c in enumerate(counts):
        m[b, :c] = True
    return m


@pytest.mark.parametrize(
    "m,steps,expected",
    [
        (10, 4, [3, 3, 2, 2]),
        (8, 4, [2, 2, 2, 2]),
        (3, 5, [1, 1, 1, 0, 0]),
        (0, 3, [0, 0, 0]),
        (32, 1, [32]),
        (7, 7, [1] * 7),
        (1, 2, [1, 0]),
    ],
)
def test_num_transfer_tokens_follows_llada_rule_on_examples(m, steps, expected):
    out = num_transfer_tokens(_mask_with_counts([m], 32), steps)
    assert out.dtype == np.int64 and out.shape == (1, steps)
    assert out[0].tolist() == expected


def test_num_transfer_tokens_matches_llada_code_and_sums_to_masked_count():
    rng = np.random.default_rng(0)
    for steps in (1, 2, 3, 4, 5, 8, 32, 40):
        mask = rng.random((6, 32)) < rng.random((6, 1))  # varied densities, some rows empty or full
        mask[0] = False
        mask[1] = True
        out = num_transfer_tokens(mask, steps)
        np.testing.assert_array_equal(out, llada_get_num_transfer_tokens(torch.from_numpy(mask), steps).numpy())
        np.testing.assert_array_equal(out.sum(1), mask.sum(1))
        assert (np.diff(out, axis=1) <= 0).all()  # never increasing: the first `rem` steps get one more
        assert (out.max(1) - out.min(1) <= 1).all()


def test_num_transfer_tokens_accepts_torch_masks():
    mask = torch.zeros((2, 16), dtype=torch.bool)
    mask[0, :10] = True
    mask[1, 3:6] = True
    np.testing.assert_array_equal(num_transfer_tokens(mask, 4), [[3, 3, 2, 2], [1, 1, 1, 0]])


@pytest.mark.parametrize(
    "mask,steps,fragment",
    [
        (np.ones((1, 8), bool), 0, "steps must be at least 1"),
        (np.ones((1, 8), bool), -2, "steps must be at least 1"),
        (np.ones((1, 8), bool), 2.0, "steps must be a positive int"),
        (np.ones((1, 8), bool), True, "steps must be a positive int"),
        (np.ones((1, 8), np.int64), 2, "mask_block must be a bool array"),
        (np.ones(8, bool), 2, "mask_block must have 2 dimensions"),
        (np.ones((1, 0), bool), 2, "mask_block is empty"),
    ],
)
def test_num_transfer_tokens_rejects_bad_arguments(mask, steps, fragment):
    with pytest.raises(ValueError) as ei:
        num_transfer_tokens(mask, steps)
    assert fragment in str(ei.value)


@pytest.mark.parametrize(
    "gen_length,block_length,steps,expected",
    [(256, 32, 64, 8), (256, 256, 128, 128), (128, 32, 128, 32), (32, 32, 1, 1), (64, 8, 8, 1)],
)
def test_schedule_gives_steps_per_block(gen_length, block_length, steps, expected):
    assert schedule(gen_length, block_length, steps) == expected


@pytest.mark.parametrize(
    "args,fragment",
    [
        ((100, 32, 4), "gen_length 100 is not a multiple of block_length 32"),
        ((256, 32, 60), "steps 60 is not a multiple of the number of blocks 8"),
        ((256, 32, 4), "use a multiple of 8, e.g. 8"),
        ((0, 32, 4), "gen_length must be at least 1"),
        ((256, 0, 4), "block_length must be at least 1"),
        ((256, 32, 0), "steps must be at least 1"),
        ((256.0, 32, 8), "gen_length must be a positive int"),
    ],
)
def test_schedule_rejects_bad_arguments(args, fragment):
    with pytest.raises(ValueError) as ei:
        schedule(*args)
    assert fragment in str(ei.value)


def test_schedule_and_quotas_fill_every_block_in_exactly_the_scheduled_steps():
    # LLaDA's outer loop with a random "model": after steps_per_block steps of
    # transfer(k=quota), every masked position of the block holds a token.
    MASK_ID = 1000
    gen_length, block_length, steps = 24, 8, 9
    spb = schedule(gen_length, block_length, steps)
    rng = np.random.default_rng(1)
    B, V = 2, 64
    x = np.full((B, gen_length), MASK_ID, np.int64)
    for blk in range(gen_length // block_length):
        lo, hi = blk * block_length, (blk + 1) * block_length
        quotas = num_transfer_tokens(x[:, lo:hi] == MASK_ID, spb)
        for i in range(spb):
            mask = x == MASK_ID
            mask[:, hi:] = False  # only the current block is a candidate
            before = (x == MASK_ID).sum()
            logits = rng.standard_normal((B, gen_length, V)).astype(np.float32) * 3
            x = transfer(logits, mask, x, k=quotas[:, i]).x_new
            assert before - (x == MASK_ID).sum() == quotas[:, i].sum()
        assert not (x[:, :hi] == MASK_ID).any() and (x[:, hi:] == MASK_ID).all()
