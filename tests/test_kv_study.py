"""scripts/kv_quant_study.py: the JSON it writes, the zero divergence of the BF16 cache, a
4-bit cache that diverges, and one-line errors."""

import importlib.util
import json

import pytest

from conftest import REPO


def _study():
    spec = importlib.util.spec_from_file_location("kv_quant_study", REPO / "scripts" / "kv_quant_study.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_study_json_on_the_shipped_model(tmp_path):
    out = tmp_path / "kv.json"
    rc = _study().main(["--models", str(REPO / "models" / "tiny-add"), "--formats", "bf16,e4m3,e2m1", "--problems", "20",
                        "--batch", "10", "--json", str(out)])
    assert rc == 0
    j = json.loads(out.read_text())
    r = j["models"]["tiny-add"]
    assert set(r) == {"bf16", "e4m3", "e2m1"} and j["settings"]["kv_cache"] == "dual"
    for e in r.values():
        assert {"exact_match", "mean_kl", "top1", "problems", "positions"} <= set(e) and e["positions"] > 0
    assert r["bf16"]["mean_kl"] == 0.0 and r["bf16"]["top1"] == 1.0      # the reference against itself
    assert r["e2m1"]["mean_kl"] > r["e4m3"]["mean_kl"] > 0                # 4 bits diverge more than 8


@pytest.mark.parametrize("argv,why", [(["--formats", "fp4"], "unknown KV format"),
                                      (["--models", "no/such/dir"], "not a model directory"),
                                      (["--problems", "0"], "positive")])
def test_study_user_errors(argv, why, capsys):
    assert _study().main(["--models", str(REPO / "models" / "tiny-add"), *argv]) == 2
    err = capsys.readouterr().err
    assert why in err and "Traceback" not in err and err.count("\n") == 1
