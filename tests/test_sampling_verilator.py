"""Sampling steps compiled by dnpu.compiler, run on the RTL (Verilator co-simulation through
dnpu.runtime: the program and MX logits go in through the NPU's AXI ports, results come back
from the harness's DRAM model) and on the emulator: tokens, argmax and confidence bits must be
identical, for both flows, both commit rules, several MX formats, on the `sim` profile (one row
a cycle through 16 lanes) and `pynq-z2` (32-element rows through 8 lanes, 4 chunks a row), and
in `make test-slow` on `zcu104` (32 lanes)."""

from __future__ import annotations

import numpy as np
import pytest

from dnpu import sampling
from dnpu.compiler import FLOWS

pytestmark = [pytest.mark.rtl, pytest.mark.usefixtures("model")]


def _cases(seed: int, n: int):
    rng = np.random.default_rng(seed)
    for case in range(n):
        B = int(rng.integers(1, 3))
        L = int(rng.choice([3, 8, 32]))
        V = int(rng.choice([64, 320, 1024]))
        lg = (rng.standard_normal((B, L, V)) * rng.choice([0.5, 4.0, 30.0])).astype(np.float32)
        if case % 3 == 0:                          # a confident position now and then
            lg[..., int(rng.integers(0, V))] += 12.0
        if case % 4 == 1:                          # exact ties of the maximum
            lg[..., 7] = lg[..., 3] = lg.max() + 1.0
        if case % 5 == 2:
            lg -= 1000.0                           # all logits far below zero
        mask = rng.random((B, L)) < 0.7
        mask[:, 0] = True
        x = rng.integers(0, V, (B, L))
        fmt = ["e4m3", "e2m1", "int8", "e5m2", "e3m2", "e2m3"][case % 6]
        yield case, lg, mask, x, fmt


def _bits(r) -> list[bytes]:
    return [np.ascontiguousarray(a).tobytes() for a in r]


@pytest.mark.parametrize("profile,seed,n", [
    ("sim", 11, 8), ("pynq-z2", 12, 5),
    # 32 lanes: four a dnpu_vec_lanes group (sim: two, pynq-z2: one); its own model build
    pytest.param("zcu104", 13, 4, marks=pytest.mark.slow)])
def test_verilator_step_is_bit_exact_with_the_emulator(profile, seed, n):
    for case, lg, mask, x, fmt in _cases(seed, n):
        for flow in FLOWS:
            for rule in ({"k": np.minimum(mask.sum(1), 1 + case % 3)}, {"threshold": 0.3}):
                args = dict(backend="emu", flow=flow, config=profile, fmt=fmt, **rule)
                want = sampling.transfer(lg, mask, x, **args)
                got = sampling.transfer(lg, mask, x, **{**args, "backend": "verilator"})
                if _bits(got) != _bits(want):
                    diff = [name for name, a, b in zip(want._fields, want, got)
                            if np.ascontiguousarray(a).tobytes() != np.ascontiguousarray(b).tobytes()]
                    raise AssertionError(f"{profile} case {case} ({lg.shape}, {fmt}, {flow}, {rule}): "
                                         f"RTL differs from the emulator in {diff}")


@pytest.mark.slow
def test_llada_scale_step_on_pynq_z2_matches_torch_within_the_memory_limit(tmp_path):
    """The real-scale step: B=1, L=32, V=126464 on pynq-z2 through Verilator, both flows,
    tokens equal to the float64 reference, peak memory under 1.5 GB (scripts/llada_step.py)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "llada_step.py"
    out = tmp_path / "step.json"
    # its own process, so the peak memory is the step's, not this test session's
    p = subprocess.run([sys.executable, str(script), "--json", str(out)], capture_output=True, text=True,
                       timeout=900)
    assert p.returncode == 0, p.stdout + p.stderr
    r = json.loads(out.read_text())
    assert all(f["tokens_equal"] for f in r["flows"].values()) and set(r["flows"]) == set(FLOWS)
    assert r["peak_rss_mb"] < 1536, r
