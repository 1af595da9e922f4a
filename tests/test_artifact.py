"""Compiled models on disk (dnpu compile, dnpu.compiler.artifact, NpuForward.load): what the
runtime loads runs the same forward as compiling in process, and an artifact built for
another profile or ISA version, or damaged, is refused with both sides named."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from dnpu.cli import main
from dnpu.compiler import artifact
from dnpu.model import load
from dnpu.model.npu import NpuForward
from dnpu.spec import config as config_mod

SIM = config_mod.load("sim")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("art") / "tiny-sim"
    assert main(["compile", "-o", str(out)]) == 0
    return out


def test_loaded_forward_is_the_compiled_one(compiled):
    from dnpu import runtime

    model, _ = load()
    fw = NpuForward.compile(model, 16)
    loaded = NpuForward.load(compiled)
    assert loaded.image == fw.image and loaded.program.kernel.binary == fw.program.kernel.binary
    assert loaded.program.weight_layout == fw.program.weight_layout
    ids = np.random.default_rng(0).integers(0, 64, 16)
    with runtime.open("emu") as dev:
        a = loaded.run(dev, ids)
        w_first = loaded._buffers(dev, loaded.program)[0].addr
        b = loaded.run(dev, ids[::-1].copy())
        assert loaded._buffers(dev, loaded.program)[0].addr == w_first          # weights placed once per device
    with runtime.open("emu") as dev:
        assert np.array_equal(fw.run(dev, ids), a) and not np.array_equal(a, b)
    m = json.loads((compiled / "manifest.json").read_text())
    assert m["isa_version"] and m["config"]["hash"] == SIM.config_hash and (compiled / "tokenizer.json").is_file()


def test_generate_from_the_artifact(compiled):
    import dnpu
    from dnpu.model import get_task

    model, tok = load()
    task = get_task("add3")
    p, _ = task.encode_batch(tok, [12], [345])
    kw = dict(gen_length=8, block_length=4, steps=2, sampler="emu", forward="npu")
    a = dnpu.generate(model, p, compiled=compiled, **kw)
    assert np.array_equal(a, dnpu.generate(model, p, **kw))
    with pytest.raises(ValueError, match="runs 16 tokens a forward; this generation needs 12"):
        dnpu.generate(model, p, compiled=compiled, **kw | {"gen_length": 4, "block_length": 4, "steps": 1})
    with pytest.raises(ValueError, match="applies to forward='npu' only"):
        dnpu.generate(model, p, compiled=compiled, **kw | {"forward": "host"})


def test_refusals(compiled, tmp_path):
    other = dataclasses.replace(SIM, sram=dataclasses.replace(SIM.sram, vector_rows=2048))
    with pytest.raises(artifact.ArtifactError, match=r"compiled for profile sim \(config hash b?[0-9a-f]{12}\); "
                                                     r"the device is profile sim \(config hash"):
        NpuForward.load(compiled, config=other)
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in compiled.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    m = json.loads((bad / "manifest.json").read_text())
    (bad / "manifest.json").write_text(json.dumps(m | {"isa_version": "0.1"}))
    with pytest.raises(artifact.ArtifactError, match="compiled for ISA 0.1; this runtime and NPU speak ISA"):
        NpuForward.load(bad)
    (bad / "manifest.json").write_text(json.dumps(m))
    data = bytearray((bad / "forward.bin").read_bytes())
    data[100] ^= 1
    (bad / "forward.bin").write_bytes(bytes(data))
    with pytest.raises(artifact.ArtifactError, match="forward.bin: missing or damaged"):
        NpuForward.load(bad)
    with pytest.raises(artifact.ArtifactError, match="no manifest.json"):
        NpuForward.load(tmp_path)


def test_cli_errors(tmp_path, capsys):
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "mine.txt").write_text("x")
    assert main(["compile", "-o", str(keep)]) == 2
    assert "not a compiled model" in capsys.readouterr().err and (keep / "mine.txt").is_file()
    assert main(["compile", "--config", "pynq-z2", "-o", str(tmp_path / "p")]) == 2
    assert "needs the matrix unit" in capsys.readouterr().err and not (tmp_path / "p").exists()
    assert main(["compile", "--seq-len", "0", "-o", str(tmp_path / "z")]) == 2
