"""scripts/bench_cosim.py, harness side only (the cocotb side builds a second model and
runs for seconds: `scripts/venv-run python scripts/bench_cosim.py` measures both)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from conftest import REPO

pytestmark = pytest.mark.rtl


def _bench():
    spec = importlib.util.spec_from_file_location("bench_cosim", REPO / "scripts" / "bench_cosim.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("args", [["--program", "prefetch", "--rows", "32", "--reps", "4"],
                                  ["--program", "sampling", "--B", "1", "--L", "2", "--V", "256"]])
def test_harness_side_reports_cycles_per_second(tmp_path, args, capsys):
    out = tmp_path / "b.json"
    assert _bench().main(args + ["--repeat", "2", "--no-cocotb", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["harness_cycles_per_s"] > 1000 and r["harness_runs"] == 2
    assert r["harness_cycles"] >= 2 * r["busy_cycles"] > 0       # two runs of the program, each counted
    assert r["cocotb_cycles_per_s"] is None and r["ratio"] is None
    assert r["targets_met"]["harness_cycles_per_s"] == (r["harness_cycles_per_s"] >= 1_000_000)
    assert "M simulated cycles/s" in capsys.readouterr().out
