"""Bad input on the command line and to the Python API: one line naming the input and exit
status 2 (a ValueError from the library), never a traceback or a run that tests nothing;
a finished run's summary is never lost to its output file; Ctrl-C ends with one line."""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dnpu import cli
from dnpu.cli import common
from dnpu.model import DEFAULT_MODEL_DIR

TINY = Path(DEFAULT_MODEL_DIR)


def dnpu(capsys, *argv):
    """(exit status, stdout, stderr) of `dnpu ARGV` run in this process: an exception that
    escapes main() (what a user would see as a traceback) fails the test."""
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_user_error(rc, err, *needles):
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dnpu"), err
    assert "Traceback" not in err
    for n in needles:
        assert str(n) in lines[0], (n, err)


def model_copy(tmp_path, name="m") -> Path:
    d = tmp_path / name
    d.mkdir()
    for f in TINY.iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    return d


# --------------------------------------------------------------------------- broken checkpoints

LOADS_A_MODEL = [
    ["generate", "--prompt", "1+2="],
    ["eval", "--problems", "1"],
    ["check-generate", "--backend", "emu", "--prompts", "1"],
    ["bench", "--backend", "emu", "--prompts", "1", "--reps", "1", "--no-compile"],
    ["compile", "-o", "{tmp}/out"],
]


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
@pytest.mark.parametrize("argv", LOADS_A_MODEL, ids=lambda a: a[0])
def test_a_broken_safetensors_file_is_one_line(tmp_path, capsys, argv, damage):
    d = model_copy(tmp_path)
    w = d / "model.safetensors"
    data = w.read_bytes()
    w.write_bytes({"truncated": data[:len(data) // 2], "garbage": os.urandom(4096), "empty": b""}[damage])
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    rc, out, err = dnpu(capsys, *argv, "--model", d)
    assert_user_error(rc, err, f"dnpu {argv[0]}: error:", w, "not a valid safetensors file")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", [b"{}", b'{"model": {}}', b'{"model": {"type": "Nope"}}', b"[1, 2]",
                                     b'{"model": ', b"\xff\xfe garbage"])
def test_a_bad_tokenizer_json_is_one_line(tmp_path, capsys, content):
    d = model_copy(tmp_path)
    (d / "tokenizer.json").write_bytes(content)
    rc, out, err = dnpu(capsys, "generate", "--prompt", "1+2=", "--model", d)
    assert_user_error(rc, err, "dnpu generate: error:", d / "tokenizer.json")


def test_a_bad_config_json_is_one_line(tmp_path, capsys):
    d = model_copy(tmp_path)
    for content in ("{", "[]", '{"d_model": "wide"}'):
        (d / "config.json").write_text(content)
        rc, out, err = dnpu(capsys, "generate", "--prompt", "1+2=", "--model", d)
        assert_user_error(rc, err, d / "config.json")


def test_load_raises_value_errors_naming_the_file(tmp_path):
    from dnpu.model import CheckpointError, load, load_tokenizer

    d = model_copy(tmp_path)
    (d / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load(d, device="cpu")
    (d / "tokenizer.json").write_text('{"model": {"type": "BPE"}}')
    with pytest.raises(ValueError, match="tokenizer.json"):
        load_tokenizer(d)


# --------------------------------------------------------------------------- bad option values

@pytest.mark.parametrize("argv,needles", [
    (["check-sampling", "--seed", "-1"], ["--seed", "-1"]),
    (["check-sampling", "--cases", "1", "--fmt", "e9m9"], ["e9m9"]),
    (["check-sampling", "--cases", "1", "--backend", "gpu"], ["'gpu'"]),
    (["check-sampling", "--cases", "-5"], ["--cases", "-5"]),
    (["check-sampling", "--cases", "0"], ["--cases", "0"]),
    (["check-lockstep", "--programs", "-3"], ["--programs", "-3"]),
    (["check-lockstep", "--stress-every", "-1"], ["--stress-every", "-1"]),
    (["generate", "--prompt", "1+2=", "--device", "tpu"], ["'tpu'"]),
    (["generate", "--prompt", "1+2=", "--backend", "gpu"], ["'gpu'"]),
    (["generate", "--prompt", "1+2=", "--gen-length", "0"], ["--gen-length", "0"]),
    (["generate", "--prompt", "1+2=", "--steps", "-1"], ["--steps", "-1"]),
    (["generate", "--prompt", "1+2=", "--threads", "0"], ["--threads", "0"]),
    (["eval", "--backend", "gpu"], ["'gpu'"]),
    (["eval", "--problems", "0"], ["--problems", "0"]),
    (["eval", "--batch", "-2"], ["--batch", "-2"]),
    (["check-generate", "--backend", "gpu"], ["'gpu'"]),
    (["check-generate", "--prompts", "0"], ["--prompts", "0"]),
    (["bench", "--backend", "gpu"], ["'gpu'"]),
    (["bench", "--reps", "0"], ["--reps", "0"]),
    (["compile", "-o", "x", "--seq-len", "0"], ["--seq-len", "0"]),
    (["check-perf", "--configs", ","], ["--configs", "names nothing"]),
    (["check-perf", "--configs", "sim", "--modes", ","], ["--modes", "names nothing"]),
    (["check-perf", "--configs", "sim", "--flows", "nope"], ["--flows", "'nope'"]),
    (["project", "--B", "0", "--no-gpu"], ["--B", "0"]),
    (["project", "--B", "-4", "--no-gpu"], ["--B", "-4"]),
    (["project", "--seq-len", "0", "--no-gpu"], ["--seq-len", "0"]),
])
def test_a_bad_option_value_is_one_line_naming_it(capsys, argv, needles):
    rc, out, err = dnpu(capsys, *argv)
    assert_user_error(rc, err, *needles)
    assert out == ""                                  # nothing ran


def _options(parser=None):
    parser = parser or cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):     # a command group (`dnpu board ...`)
                yield from ((f"{name} {n}", b) for n, b in _options(p))
            else:
                yield name, a


def test_every_int_option_says_whether_0_or_a_negative_count_means_anything():
    from dnpu.cli.spec import address

    loose = [(cmd, a.option_strings) for cmd, a in _options() if a.type is int]
    assert not loose, f"use common.positive or common.non_negative: {loose}"
    kinds = {a.type for _, a in _options() if a.type not in (None, str, float)}
    assert kinds <= {common.positive, common.non_negative, common.output_file, common.output_dir, address}, kinds


def test_every_output_file_option_is_checked_before_the_run():
    outputs = [(cmd, a) for cmd, a in _options() if a.dest in ("json", "plot", "out", "output")
               and not isinstance(a, argparse._StoreTrueAction)]
    assert len(outputs) >= 10
    for cmd, a in outputs:
        assert a.type in (common.output_file, common.output_dir), (cmd, a.option_strings)


def test_the_checks_reject_a_count_that_tests_nothing():
    from dnpu.verify import lockstep, sampling

    for kw in ({"cases": 0}, {"cases": -5}, {"seed": -1}, {"cases": 1.5}):
        with pytest.raises(ValueError, match=next(iter(kw))):
            sampling.check_sampling("emu", **{"cases": 1, **kw})
    for kw in ({"programs": -3}, {"seed": -1}, {"stress_every": -1}):
        with pytest.raises(ValueError, match=next(iter(kw))):
            lockstep.check_lockstep(**{"programs": 1, **kw})


def test_the_projection_rejects_what_the_cli_rejects():
    from dnpu.perf import analytical, project

    for kw in ({"B": 0}, {"B": -4}, {"L": 0}, {"V": 2.5}, {"seq_len": 0}, {"gpu_iters": 0}):
        with pytest.raises(ValueError, match=next(iter(kw))):
            project.projection("asic-2048", gpu=False, **kw)
    with pytest.raises(ValueError, match="B must be a positive int"):
        analytical.bound("sim", 0, 4, 64)


# --------------------------------------------------------------------------- the model's context length

def test_generate_refuses_more_tokens_than_the_model_holds(capsys):
    for extra in ([], ["--block-length", "1024", "--steps", "1"]):
        rc, out, err = dnpu(capsys, "generate", "--backend", "torch", "--prompt", "123+456=", "--gen-length", "1024",
                            *extra)
        assert_user_error(rc, err, "1024", "max_sequence_length 16")
    rc, out, err = dnpu(capsys, "eval", "--problems", "1", "--gen-length", "100000", "--block-length", "100000",
                        "--steps", "1")
    assert_user_error(rc, err, "100000", "max_sequence_length 16")
    rc, out, err = dnpu(capsys, "compile", "-o", "unused", "--seq-len", "17")
    assert_user_error(rc, err, "--seq-len 17", "max_sequence_length 16")


def test_the_python_api_checks_the_length_before_any_forward():
    import torch

    import dnpu
    from dnpu.model import load

    model, tok = load(device="cpu", dtype="fp32")
    calls = []
    model.register_forward_hook(lambda *a: calls.append(1))
    ids = torch.tensor([tok.encode("123+456=")])
    with pytest.raises(ValueError, match=r"8 tokens\) \+ gen_length \(100000\).*max_sequence_length 16"):
        dnpu.generate(model, ids, gen_length=100000, block_length=4, steps=8)
    with pytest.raises(ValueError, match="max_sequence_length 16"):
        dnpu.generate(model, ids, gen_length=12, block_length=4, steps=4)   # schedule wrong too: length first
    assert not calls
    out = dnpu.generate(model, ids, gen_length=8, block_length=4, steps=8)  # exactly 16 still runs
    assert out.shape == (1, 16) and calls


# --------------------------------------------------------------------------- output files

def _unwritable(tmp_path, kind, monkeypatch) -> Path:
    if kind == "missing directory":
        return tmp_path / "nope" / "r.json"
    if kind == "a directory":
        return tmp_path
    target = tmp_path / "ro"
    target.mkdir()
    real = os.access
    # root may write anywhere: the permission is taken away where the check asks
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == target else real(p, mode))
    return target / "r.json"


OUTPUT_OPTIONS = [
    ["check-sampling", "--cases", "1", "--json"],
    ["check-lockstep", "--programs", "1", "--json"],
    ["check-perf", "--json"],
    ["check-generate", "--prompts", "1", "--json"],
    ["eval", "--problems", "1", "--json"],
    ["generate", "--prompt", "1+2=", "--json"],
    ["project", "--no-gpu", "--json"],
    ["bench", "--backend", "emu", "--json"],
    ["bench", "--backend", "emu", "--plot"],
    ["asm", "examples/argmax_rows.s", "--output"],
]


@pytest.mark.parametrize("kind", ["missing directory", "a directory", "no permission"])
@pytest.mark.parametrize("argv", OUTPUT_OPTIONS, ids=lambda a: f"{a[0]} {a[-1]}")
def test_an_unwritable_output_is_refused_before_the_run(tmp_path, capsys, monkeypatch, repo, argv, kind):
    monkeypatch.chdir(repo)
    path = _unwritable(tmp_path, kind, monkeypatch)
    rc, out, err = dnpu(capsys, *argv, path)
    assert_user_error(rc, err, f"{argv[-1]}: cannot write {path}:")
    assert out == ""


def test_compile_refuses_an_output_it_cannot_use_before_compiling(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    rc, out, err = dnpu(capsys, "compile", "-o", f)
    assert_user_error(rc, err, f"cannot write {f}")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    rc, out, err = dnpu(capsys, "compile", "-o", tmp_path / "mine")
    assert_user_error(rc, err, "not a compiled model")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def _vanishing_dir(d: Path, monkeypatch, module, name, result):
    """Replace `module.name` with a run that returns `result` and removes the output's
    directory `d` on its way (a full disk, a deleted folder: the write fails after the run)."""
    d.mkdir()

    def run(*a, **kw):
        d.rmdir()
        return result(*a, **kw)
    monkeypatch.setattr(module, name, run)
    return d / "r.json"


def test_a_write_that_fails_after_the_run_keeps_the_summary(tmp_path, capsys, monkeypatch):
    from dnpu.verify import lockstep, sampling

    real = sampling.check_sampling
    path = _vanishing_dir(tmp_path / "a", monkeypatch, sampling, "check_sampling", real)
    rc, out, err = dnpu(capsys, "check-sampling", "--backend", "emu", "--cases", "1", "--json", path)
    assert_user_error(rc, err, f"cannot write {path}")
    assert json.loads(out)["cases"] == 1                       # printed before the write failed

    summary = {"programs": 1, "mismatches": 0, "cycles": 10, "instructions": 5, "outcomes": {"halted": 1},
               "wall_s": 0.1}
    path = _vanishing_dir(tmp_path / "b", monkeypatch, lockstep, "check_lockstep", lambda *a, **kw: dict(summary))
    rc, out, err = dnpu(capsys, "check-lockstep", "--programs", "1", "--json", path)
    assert_user_error(rc, err, f"cannot write {path}")
    assert json.loads(out) == summary


def test_project_prints_before_it_writes(tmp_path, capsys, monkeypatch):
    from dnpu.perf import project

    path = _vanishing_dir(tmp_path / "a", monkeypatch, project, "projection", lambda *a, **kw: {"B": 16})
    monkeypatch.setattr(project, "format_table", lambda p: f"the table of B={p['B']}")
    rc, out, err = dnpu(capsys, "project", "--no-gpu", "--json", path)
    assert_user_error(rc, err, f"cannot write {path}")
    assert out == "the table of B=16\n"


# --------------------------------------------------------------------------- Ctrl-C

def test_ctrl_c_in_a_generation_is_one_line_and_status_130(capsys, monkeypatch):
    from dnpu import generation

    def interrupted(*a, **kw):                       # what Python raises on SIGINT (a real one: below)
        raise KeyboardInterrupt
    monkeypatch.setattr(generation, "generate", interrupted)
    rc, out, err = dnpu(capsys, "generate", "--backend", "torch", "--prompt", "1+2=")
    assert rc == 130 and err == "dnpu generate: interrupted\n", err


def _interruptible() -> None:
    """In the child before exec: SIGINT delivered and handled by default, as from a terminal,
    whatever the test runner's process has ignored or blocked (both are inherited)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_a_long_check_cleanly():
    # The check's own modules are imported before 'ready': on a loaded machine their import
    # (NumPy, the emulator) can outlast the second below, and Ctrl-C must land in the cases.
    code = ("import sys; from dnpu import cli; import dnpu.verify.sampling; print('ready', flush=True); "
            "sys.exit(cli.main(['check-sampling', '--backend', 'emu', '--cases', '100000']))")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=_interruptible)
    try:
        assert p.stdout.readline() == "ready\n"
        time.sleep(1.0)                              # into the cases
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 130, err
    assert err == "dnpu check-sampling: interrupted\n"
    assert out == ""
