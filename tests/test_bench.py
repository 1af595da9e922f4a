"""dnpu bench (dnpu.bench): the timing comparison, and the per-step cycle collection behind it
(sampling.transfer(run_info=), generate(step_log=))."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dnpu import bench, cli, generate, sampling
from dnpu.compiler import FLOWS  # noqa: E402
from dnpu.spec import config, mx  # noqa: E402
from dnpu.model import load  # noqa: E402
from dnpu.sampling.reference import rule  # noqa: E402

TOTAL_KEYS = {"label", "sampling_s", "per_step_s", "forward_s", "total_s", "tokens_per_s", "sampling_share"}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_run(backend="emu", **kw):
    args = dict(backend=backend, prompts=2, compile=False, reps=1, llada=False, device="cpu", threads=1)
    return bench.run(**(args | kw))


def check_consistent(r: dict) -> None:
    """Totals are the sums of the steps; tokens/s and shares follow from them; times are positive."""
    n = len(r["steps"])
    assert n > 0
    fwd = sum(s["forward_s"] for s in r["steps"])
    assert all(s["forward_s"] > 0 and s["torch_eager_s"] > 0 for s in r["steps"])
    for key, t in r["totals"].items():
        assert TOTAL_KEYS <= set(t), key
        assert t["sampling_s"] > 0 and t["forward_s"] == pytest.approx(fwd)
        assert t["total_s"] == pytest.approx(t["forward_s"] + t["sampling_s"])
        assert t["per_step_s"] == pytest.approx(t["sampling_s"] / n)
        assert t["tokens_per_s"] == pytest.approx(r["generated_tokens"] / t["total_s"])
        assert t["sampling_share"] == pytest.approx(t["sampling_s"] / t["total_s"])
        assert 0 < t["sampling_share"] < 1
    assert r["totals"]["torch_eager"]["sampling_s"] == pytest.approx(sum(s["torch_eager_s"] for s in r["steps"]))
    f_clk = r["profile"]["f_clk_mhz"] * 1e6
    for s in r["steps"]:
        for flow, e in s["npu"].items():
            if e["s"] is not None:
                used = e["cycles"] if e["cycles"] is not None else e["model_cycles"]
                assert used > 0 and e["s"] == pytest.approx(used / f_clk)
        for flow, e in s["projection"].items():
            if e["s"] is not None:
                assert e["cycles"] > 0 and e["s"] == pytest.approx(e["cycles"] / 1e9)  # asic-2048: 1 GHz
    # an implementation without a total says why (an analytical model without a rule for a new instruction)
    for key, why in r["not_timed"].items():
        assert why.startswith("analytical model of"), (key, why)


# --------------------------------------------------------------------------- the collectors


def test_transfer_run_info_collects_one_run_per_npu_step():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((2, 4, 64)).astype(np.float32) * 3
    mask = np.ones((2, 4), bool)
    x = np.zeros((2, 4), np.int64)
    infos: list = []
    r = sampling.transfer(logits, mask, x, k=2, backend="emu", run_info=infos)
    assert len(infos) == 1 and infos[0].backend == "emu" and infos[0].cycles is None and infos[0].instret > 0
    assert np.array_equal(r.x_new, sampling.transfer(logits, mask, x, k=2, backend="emu").x_new)
    sampling.transfer(logits, mask, x, k=2, backend="torch", run_info=infos)
    assert len(infos) == 1  # the torch reference runs no NPU program


def test_generate_step_log_replays_the_generation():
    model, _ = load(device="cpu", dtype="fp32")
    prompts = torch.tensor([[3, 4, 5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 15, 16, 17, 18]])
    log: list = []
    out = generate(model, prompts, gen_length=8, block_length=4, steps=8, sampler="emu", step_log=log)
    plain = generate(model, prompts, gen_length=8, block_length=4, steps=8, sampler="emu")
    assert torch.equal(out, plain)  # logging changes nothing
    assert [(s.block, s.step) for s in log] == [(b, i) for b in range(2) for i in range(1, 5)]
    for s in log:
        assert s.run_info is not None and s.run_info.backend == "emu" and s.forward_s > 0
        again = sampling.transfer(s.logits, s.mask, s.x, k=s.k, backend="emu")  # the step's exact inputs
        assert np.array_equal(again.x_new, s.x_new)
        assert torch.equal(s.seq[:, s.start:s.start + 4], torch.from_numpy(s.x))
    assert np.array_equal(log[-1].x_new, out[:, -4:].numpy())


def test_torch_sample_is_the_reference_rule():
    """The baseline commits what the float64 reference commits when confidences are well apart."""
    rng = np.random.default_rng(5)
    B, L, V = 3, 6, 64
    logits = rng.standard_normal((B, L, V)).astype(np.float32)
    logits[np.arange(B)[:, None], np.arange(L)[None, :], rng.integers(0, V, (B, L))] += \
        rng.permutation(np.linspace(1.0, 9.0, B * L)).reshape(B, L).astype(np.float32)
    deq = mx.dequantize(mx.quantize(logits, "e4m3"))
    mask = rng.random((B, L)) < 0.7
    mask[:, 0] = True
    x = np.full((B, L), 7, np.int64)
    k = np.minimum(mask.sum(1), 2)
    t = torch.from_numpy(deq)
    got, _, _ = rule(t, torch.from_numpy(mask), torch.from_numpy(x), k=torch.from_numpy(k))
    ref = sampling.transfer(deq, mask, x, k=k, backend="torch")
    assert np.array_equal(got.numpy(), ref.x_new)
    got, _, _ = rule(t, torch.from_numpy(mask), torch.from_numpy(x), threshold=0.5)
    ref = sampling.transfer(deq, mask, x, threshold=0.5, backend="torch")
    assert np.array_equal(got.numpy(), ref.x_new)


# --------------------------------------------------------------------------- the bench


def test_bench_on_emu_reports_every_implementation():
    r = small_run()
    assert r["tokens_match"] and r["token_mismatches"] == dict.fromkeys(FLOWS, 0)
    assert r["environment"]["device"] == "cpu" and r["environment"]["gpu"] is None
    assert "no GPU" in r["environment"]["note"] and "perf_counter" in r["environment"]["timer"]
    assert r["environment"]["torch"] == torch.__version__ and r["environment"]["cpu"]
    assert r["profile"] == {"name": "sim", "f_clk_mhz": config.load("sim").clock.f_clk_mhz, "vlen": 16}
    assert r["projection_profile"]["name"] == "asic-2048"
    s = r["settings"]
    assert (s["gen_length"], s["block_length"], s["steps"]) == (8, 4, 8)  # models/tiny-add/dnpu_task.json
    assert r["generated_tokens"] == 2 * 8 and len(r["steps"]) == 8 and len(r["prompts"]) == 2
    for st in r["steps"]:
        assert (st["B"], st["L"], st["V"], st["mode"]) == (2, 4, 64, "topk")
        for flow in FLOWS:
            e = st["npu"][flow]
            assert e["cycles"] is None and "no clock" in e["source"]  # the emulator has no clock
    expected = {"torch_eager"} | {f"{impl}_{flow}" for impl in ("npu", "projection") for flow in FLOWS}
    assert set(r["totals"]) | set(r["not_timed"]) == expected
    assert {"torch_eager", "npu_phased", "projection_phased"} <= set(r["totals"])
    assert r["baseline"]["torch_compile"] == {"enabled": False}
    check_consistent(r)
    json.dumps(r)  # JSON-ready
    text = bench.format_table(r)
    assert "NOTE: no GPU" in text and "tokens vs the torch sampler: match" in text


def test_bench_records_a_failing_torch_compile(monkeypatch):
    def broken(fn, *a, **kw):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", broken)
    r = small_run(prompts=1, flows=("phased",), compile=True)
    c = r["baseline"]["torch_compile"]
    assert c["enabled"] and not c["ok"] and "no C++ compiler" in c["error"]
    assert "torch_compile" not in r["totals"] and all(s["torch_compile_s"] is None for s in r["steps"])
    assert "torch.compile failed" in bench.format_table(r)


def test_bench_threshold_mode_and_kv_cache():
    calls = []
    r = small_run(prompts=1, flows=("phased",), threshold=0.9, kv_cache="dual",
                  progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 4) for i in range(5)]  # torch and phased generations, baseline, NPU cycles
    assert r["tokens_match"] and all(s["mode"] == "threshold" and s["k"] is None for s in r["steps"])
    assert all("KV cache" in s["forward_method"] for s in r["steps"])
    check_consistent(r)


def test_bench_rejects_bad_arguments():
    with pytest.raises(ValueError, match="NPU backend"):
        bench.run(backend="torch")
    with pytest.raises(ValueError, match="unknown flow"):
        bench.run(backend="emu", flows=("fast",))


def test_bench_command_writes_json_and_png(tmp_path, capsys):
    out, png = tmp_path / "b.json", tmp_path / "b.png"
    rc = cli.main(["bench", "--backend", "emu", "--prompts", "1", "--reps", "1", "--no-compile", "--quiet",
                   "--flows", "phased", "--device", "cpu", "--json", str(out), "--plot", str(png)])
    assert rc == 0
    r = json.loads(out.read_text())
    assert r["backend"] == "emu" and r["settings"]["flows"] == ["phased"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    text = capsys.readouterr().out
    assert "totals over 8 steps" in text and "LLaDA scale" in text
    ll = r["llada_scale"]["phased"]
    assert (ll["B"], ll["L"], ll["V"], ll["config"]) == (16, 32, 126464, "asic-2048") and ll["ms"] > 0
    assert math.isclose(ll["ms"], ll["cycles"] / (ll["f_clk_mhz"] * 1e3))
    assert cli.main(["bench", "--backend", "emu", "--prompts", "0"]) == 2


@pytest.mark.rtl
def test_bench_on_verilator_times_the_rtl_cycle_counter():
    r = small_run("verilator", prompts=1)
    assert r["tokens_match"]
    f_clk = r["profile"]["f_clk_mhz"] * 1e6
    for st in r["steps"]:
        for flow in FLOWS:
            e = st["npu"][flow]
            assert e["source"] == "RunInfo.cycles" and e["cycles"] > 0 and e["instret"] > 0
            assert e["s"] == pytest.approx(e["cycles"] / f_clk)
            assert e["model_cycles"] is None or e["model_cycles"] > 0  # its agreement: dnpu check-perf
    for flow in FLOWS:
        t = r["totals"][f"npu_{flow}"]
        assert t["cycles"] == sum(st["npu"][flow]["cycles"] for st in r["steps"])
        assert t["sampling_s"] == pytest.approx(t["cycles"] / f_clk)
    assert r["steps"][0]["npu"]["fused"]["cycles"] < r["steps"][0]["npu"]["phased"]["cycles"]
    check_consistent(r)
