"""`dnpu bench --forward npu` (dnpu.bench.step): the whole step's RTL cycles split by kind of
work add up to the cycle counter, the rates follow from the cycles and the clock, the table
and chart are written, and a backend without a clock is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dnpu.bench.step import GROUPS, format_forward_table, run_forward
from dnpu.cli import main


def test_emu_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="clocked backend"):
        run_forward(backend="emu")


@pytest.mark.rtl
def test_split_adds_up_on_the_rtl(model, tmp_path):
    from dnpu import runtime
    from dnpu.model import load
    from dnpu.model.npu import NpuForward

    m, _ = load()
    fw = NpuForward.compile(m, 16)
    ids = np.arange(16) % 60
    with runtime.open("verilator") as dev:
        infos = []
        fw.run(dev, ids, infos, trace=True)
    sc = fw.section_cycles(infos[0])
    assert sum(sc.values()) == infos[0].cycles and sc["linear"] > sc["attention"] > 0 and sc["embedding"] > 0


@pytest.mark.rtl
@pytest.mark.slow
def test_cli_report(model, tmp_path):
    out, plot = tmp_path / "b.json", tmp_path / "b.png"
    rc = main(["bench", "--forward", "npu", "--prompts", "1", "--reps", "1", "--quiet", "--json", str(out),
               "--plot", str(plot)])
    assert rc == 0 and plot.stat().st_size > 0
    r = json.loads(out.read_text())
    t = r["totals"]
    assert set(t["cycles_by_group"]) == set(GROUPS) and t["cycles_by_group"]["sampling"] > 0
    assert t["npu_cycles"] == sum(t["cycles_by_group"].values())
    per_step = [sum(s["cycles"].values()) for s in r["steps"]]
    assert sum(per_step) == t["npu_cycles"]
    assert t["npu_s"] == pytest.approx(t["npu_cycles"] / (r["f_clk_mhz"] * 1e6))
    assert t["npu_tokens_per_s"] == pytest.approx(r["tokens"] / t["npu_s"])
    # every step runs the same program on one row: its forward's cycles do not depend on the tokens
    assert len({s["cycles"]["linear"] + s["cycles"]["attention"] for s in r["steps"]}) == 1
    assert "tokens/s" in format_forward_table(r)


@pytest.mark.rtl
@pytest.mark.slow
def test_cli_report_with_a_dual_cache(model, tmp_path):
    """With --kv-cache dual: refresh steps write the cache, the others read it, each step's
    cycles without a cache are measured, and the cache saves cycles on the shipped model."""
    out = tmp_path / "b.json"
    rc = main(["bench", "--forward", "npu", "--prompts", "1", "--reps", "1", "--quiet", "--kv-cache", "dual",
               "--kv-format", "bf16", "--json", str(out)])
    assert rc == 0
    r = json.loads(out.read_text())
    t, steps = r["totals"], r["steps"]
    assert [s["kv"] for s in steps[:2]] == ["refresh", "dual"]
    for s in steps:
        assert (s["kv_bytes_written"] > 0) == (s["kv"] == "refresh") and (s["kv_bytes_read"] > 0) == (s["kv"] == "dual")
        assert s["cycles"]["kv cache"] > 0
        if s["kv"] == "dual":
            assert sum(s["cycles"].values()) < s["cycles_none"]
    assert t["cycles_saved"] == t["cycles_without_cache"] - t["npu_cycles"] > 0
    assert t["kv_bytes_written"] == sum(s["kv_bytes_written"] for s in steps)
    assert "KV cache dual in bf16" in format_forward_table(r)
