"""The analytical performance model (dnpu.perf): against RTL cycles, the bound, the projection,
the sweep and the CLI."""

import csv
import importlib.util
import json
import subprocess

import pytest

from dnpu.spec import config, isa
from dnpu.perf import analytical as an
from dnpu.perf import project
from dnpu.verify import perf as check

from conftest import REPO, dnpu_cli

SIM = config.load("sim")


def test_bound_formula():
    b = an.bound("asic-2048", 16, 32, 126464, "e4m3")
    assert b["vector_cycles"] == 16 * 32 * 126464 / 2048 == 31616
    # 3952 blocks of 32 -> 247 groups of 16 scale bytes, then one byte a code
    assert an.stream_bytes(126464, "e4m3", 32) == 16 * 247 + 126464
    assert b["bytes"] == 512 * (16 * 247 + 126464)
    assert b["memory_cycles"] == b["bytes"] / 1024
    assert b["cycles"] == max(b["vector_cycles"], b["memory_cycles"])
    assert b["port_cycles"] == b["bytes"] / 64              # one 512-bit AXI4 port
    assert an.stream_bytes(512, "e2m1", 32) == 16 + 256


# Per-instruction cycles measured on the Verilator co-simulation (retire-port traces) of the
# sim profile; each is a steady-state loop iteration with its fetch line resident.
MEASURED_SIM = [
    ("V_TOPK_MASK", 100, 10204), ("V_TOPK_MASK", 1, 7), ("V_SELECT_INT", 32, 100), ("V_THRESH_MASK", 17, 22),
    ("S_MAP_V_FP", 17, 37), ("V_RED_SUM", 250, 259), ("V_RED_MAX_IDX", 64, 69), ("V_SUB_VF", 250, 1004),
    ("V_ADD_VV", 64, 324), ("V_FILL_VF", 16, 20), ("H_LOAD_INT", 33, 57), ("H_STORE_FP", 100, 126),
    ("H_STORE_V", 16, 154), ("S_RECI_FP", 0, 28), ("S_LD_INT", 0, 3), ("S_ADD_FP", 0, 3), ("S_ADDI", 0, 2),
]
MEASURED_STREAMS = [  # (profile, op, rows, fmt, cycles)
    ("sim", "H_PREFETCH_V", 1000, "e4m3", 1059), ("sim", "H_PREFETCH_V", 1000, "e3m2", 1309),
    ("sim", "H_SAMPLE_FUSED", 32, "e4m3", 65), ("sim", "H_SAMPLE_FUSED", 1000, "e2m1", 1064),
    ("pynq-z2", "H_SAMPLE_FUSED", 1000, "e2m1", 4057), ("pynq-z2", "H_PREFETCH_V", 96, "e4m3", 443),
    ("pynq-z2", "H_SAMPLE_FUSED", 256, "e3m2", 1082), ("zcu104", "H_PREFETCH_V", 1000, "e4m3", 5028),
]


@pytest.mark.parametrize("name,n,cycles", MEASURED_SIM)
def test_instruction_costs_match_measured_rtl(name, n, cycles):
    x = [0] * 16
    x[4], x[5], x[1] = n, 3, an.HEAP_BASE
    a = {"n": 4, "addr": 1, "k": 5}
    assert an.instr_cycles(an.machine(SIM), name, a, x)[0] == cycles


@pytest.mark.parametrize("prof,name,rows,fmt,cycles", MEASURED_STREAMS)
def test_stream_costs_match_measured_rtl(prof, name, rows, fmt, cycles):
    x = [0] * 16
    x[4], x[1] = rows, an.HEAP_BASE
    got = an.instr_cycles(an.machine(prof), name, {"n": 4, "addr": 1}, x, fmt)[0]
    assert abs(got - cycles) <= max(2, 0.002 * cycles), (got, cycles)


def test_fetch_miss_and_straight_line_program():
    # 24 instructions over three 8-word lines: 8 + 24*2 + 3 misses of RL + 2 beats + 2 (measured 128 on sim)
    src = "S_LD_ARG x1, 0\nS_LD_ARG x2, 1\nC_LOOPI 1, @e\n" + "S_ADDI x3, x0, 5\n" * 20 + "e:\nC_HALT\n"
    est = an.program(SIM, isa.assemble(src))
    assert an.miss_cycles(an.machine(SIM)) == 24
    assert est.cycles == 128 and est.fetch_misses == 3 and est.instret == 24
    assert sum(est.phases.values()) == est.cycles


def test_data_dependent_count_is_refused():
    src = "S_LD_INT x3, x0, 0\nC_LOOP x3, 1\nC_NOP\nC_HALT\n"
    with pytest.raises(an.ModelError, match="x3"):
        an.program(SIM, isa.assemble(src))


@pytest.mark.parametrize("prof,B,L,V", [("sim", 2, 8, 4096), ("sim", 3, 5, 512), ("sim", 12, 45, 512), ("pynq-z2", 1, 16, 1024),
                                        ("asic-2048", 16, 32, 126976)])
@pytest.mark.parametrize("flow", ["fused", "phased"])
@pytest.mark.parametrize("mode", ["topk", "threshold"])
def test_closed_form_equals_interpreter(prof, B, L, V, flow, mode):
    assert an.step_closed(prof, B, L, V, mode, flow) == an.step(prof, B, L, V, mode, flow).cycles


def test_llada_scale_step():
    est = an.step("asic-2048", 16, 32, 126464, "topk", "fused", pad=True)
    assert est.what["V_padded"] == 126976 and est.cycles > an.bound("asic-2048", 16, 32, 126464)["cycles"]
    assert set(est.phases) == set(an.PHASES) and sum(est.phases.values()) == est.cycles


def test_variant_is_validated():
    v = an.variant("asic-2048", vector__vlen=512, vector__lanes=512, memory__bytes_per_cycle=256)
    assert (v.vector.vlen, v.memory.bytes_per_cycle, v.clock.f_clk_mhz) == (512, 256, 1000.0)
    with pytest.raises(config.ConfigError):
        an.variant("asic-2048", vector__vlen=1000)                 # not a power of two
    with pytest.raises(config.ConfigError):
        an.variant("sim", memory__bytes_per_cycle=64)               # more than one 128-bit beat a cycle


@pytest.mark.rtl
@pytest.mark.parametrize("B,L,V,mode,flow", [(1, 2, 512, "topk", "fused"), (2, 4, 1024, "threshold", "phased"),
                                             (1, 3, 4096, "threshold", "fused")])
def test_model_matches_rtl_cycles(B, L, V, mode, flow):
    from dnpu import runtime

    with runtime.open("verilator", config=SIM) as dev:
        p = check.run_point(dev, SIM, B, L, V, mode, flow)
    assert abs(p["error_pct"]) < 1.0, p
    assert p["rtl_over_bound"] == pytest.approx(p["rtl_cycles"] / p["bound_cycles"], rel=1e-3)


def test_projection_json_keys():
    p = project.projection(gpu=False)
    assert {"config", "B", "L", "V", "V_padded", "f_clk_mhz", "flows", "flows_ideal_port", "bound", "paper",
            "gpu"} <= set(p)
    for port in ("flows", "flows_ideal_port"):
        for flow in ("fused", "phased"):
            e = p[port][flow]
            assert {"cycles", "ms", "phases", "phase_fractions", "over_bound"} <= set(e)
            assert e["ms"] == pytest.approx(e["cycles"] / 1e6)         # 1 GHz
    assert p["paper"]["cycles"] == 991_038 and p["paper"]["a6000_ms"] == 2.51
    assert p["gpu"] == {"available": False, "reason": "not asked (--no-gpu)"}
    row = project.bench_row()
    assert row["config"] == "asic-2048" and row["cycles"] == p["flows"]["fused"]["cycles"]
    assert "paper" in project.format_table(p)


def test_gpu_timing_says_when_there_is_no_gpu():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: test_gpu_timing covers it")
    g = project.gpu_times(2, 4, 256)
    assert g["available"] is False and "CUDA" in g["reason"]


@pytest.mark.gpu
def test_gpu_timing():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    g = project.gpu_times(2, 8, 4096, iters=3)
    assert g["available"] and g["eager_ms"] > 0


def _sweep_module():
    spec = importlib.util.spec_from_file_location("sweep", REPO / "scripts" / "sweep.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_sweep_tiny_grid(tmp_path):
    sweep = _sweep_module()
    rc = sweep.main(["--vlen", "512,2048", "--bw", "64,1024", "--shapes", "2x8", "--V", "8192",
                     "--flows", "fused", "--ports", "ideal,rtl", "--jobs", "2", "--out", str(tmp_path)])
    assert rc == 0
    rows = list(csv.DictReader(open(tmp_path / "sweep.csv")))
    assert len(rows) == 2 * 2 * 2 and all(r["error"] == "" and int(r["cycles"]) > 0 for r in rows)
    ideal = {(int(r["vlen"]), int(r["bytes_per_cycle"])): int(r["cycles"]) for r in rows if r["port"] == "ideal"}
    assert ideal[(2048, 1024)] < ideal[(2048, 64)]                 # bandwidth helps the ideal port
    if importlib.util.find_spec("matplotlib"):
        assert (tmp_path / "sweep.png").stat().st_size > 1000


def test_check_perf_exit_code_on_large_error(monkeypatch, capsys):
    from dnpu import cli
    from dnpu.cli import perf as cli_perf  # noqa: F401

    fake = {"points": 1, "max_abs_error_pct": 9.0, "max_error_allowed_pct": 5.0, "ok": False,
            "rtl_over_bound_v_ge_4096": {}, "fused_sim_target": 1.2, "fused_sim_within_target": None,
            "skipped": [], "points_detail": []}
    monkeypatch.setattr(check, "check_perf", lambda *a, **k: fake)
    assert cli.main(["check-perf", "--configs", "sim"]) == 1
    fake.update(max_abs_error_pct=1.0, ok=True)
    assert cli.main(["check-perf", "--configs", "sim"]) == 0


def test_project_cli(tmp_path):
    out = tmp_path / "p.json"
    r = subprocess.run(dnpu_cli() + ["project", "--config", "asic-2048", "--B", "16", "--L", "32", "--V", "126464",
                                     "--no-gpu", "--json", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "0.99" in r.stdout and "fused" in r.stdout
    assert json.loads(out.read_text())["flows"]["fused"]["cycles"] > 0
    r = subprocess.run(dnpu_cli() + ["project", "--config", "no-such-profile", "--no-gpu"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "unknown hardware profile" in r.stderr


@pytest.mark.rtl
def test_check_perf_cli_small_grid(tmp_path):
    out = tmp_path / "cp.json"
    r = subprocess.run(dnpu_cli() + ["check-perf", "--configs", "sim", "--flows", "fused", "--modes", "topk",
                                     "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    j = json.loads(out.read_text())
    assert j["points"] == len(j["points_detail"]) == len(check.DEFAULT_GRID["sim"])
    assert j["max_abs_error_pct"] <= 5.0
    for p in j["points_detail"]:
        assert {"rtl_cycles", "model_cycles", "error_pct", "bound_cycles", "rtl_over_bound"} <= set(p)
