"""Fuzzing the input readers: each raises only its documented error type, whatever the input.

    assembler (isa.assemble, assemble_words)        AsmError
    disassembler (isa.disassemble, decode)          DisasmError
    program loader (Device.load on the emulator)    ValueError (AsmError for a source)
    compiled-model loader (compiler.artifact.read)  ArtifactError
    .hwh parser (the pynq stand-in's parse_hwh)     ValueError
    profile loader (config.load)                    ConfigError
    checkpoint loader (model.load.load)             CheckpointError / ValueError, FileNotFoundError
    MX unpack (mx.unpack, then dequantize_bf16)     ValueError

Every test is deterministic (derandomize) and bounded (max_examples), so the file runs in
seconds as part of `make test`: a bug it finds is found on every run, not by luck.
`DNPU_FUZZ_SCALE=20 pytest tests/test_fuzz.py` runs a longer campaign of random inputs.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dnpu.spec import config, isa, mx
from dnpu.spec.config import ConfigError

from conftest import REPO, pynq_standin_module

SIM_TOML = (REPO / "hw" / "config" / "sim.toml").read_text()
TINY = REPO / "models" / "tiny-add"


# DNPU_FUZZ_SCALE=k runs k times the examples, random ones (a longer campaign by hand).
SCALE = int(os.environ.get("DNPU_FUZZ_SCALE", "1"))


def fuzz(n: int):
    return settings(max_examples=n * SCALE, deadline=None, derandomize=SCALE == 1, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _tmpdir():
    return tempfile.TemporaryDirectory(prefix="dnpu-fuzz-")


# ---- mutations of a valid text ----------------------------------------------------------------

@st.composite
def mutated(draw, text: str, pieces: st.SearchStrategy[str]):
    """`text` cut, spliced with `pieces` or random text, or with bytes overwritten."""
    kind = draw(st.sampled_from(["cut", "splice", "splice", "delete", "bytes"]))
    n = len(text)
    i = draw(st.integers(0, n))
    if kind == "cut":
        return text[:i].encode()
    if kind == "delete":
        j = draw(st.integers(i, min(n, i + 200)))
        return (text[:i] + text[j:]).encode()
    if kind == "splice":
        j = draw(st.integers(i, min(n, i + 40)))
        return (text[:i] + draw(st.one_of(pieces, st.text(max_size=20))) + text[j:]).encode()
    raw = bytearray(text.encode())
    for _ in range(draw(st.integers(1, 8))):
        raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    return bytes(raw)


# ---- assembler and disassembler ----------------------------------------------------------------

MNEMONICS = sorted(isa.INSTRS)
TOKENS = st.one_of(
    st.sampled_from(["x0", "x15", "x16", "f7", "f8", "x01", "e4m3", "int8", "@end", "@nope", "0x", "0x_", "-0",
                     "0b102", "1_000", "9" * 5000, "x²", "f٣", "", " ", "end:", "#", ";", "1e3"]),
    st.integers(-(1 << 40), 1 << 40).map(str), st.text(max_size=8))


@st.composite
def asm_line(draw):
    label = draw(st.sampled_from(["", "end: ", "a.b$: ", "1bad: ", "end:end: "]))
    mnem = draw(st.one_of(st.sampled_from(MNEMONICS), st.sampled_from(MNEMONICS).map(str.lower), st.text(max_size=6)))
    ops = draw(st.lists(TOKENS, max_size=5))
    return label + mnem + " " + draw(st.sampled_from([", ", ",", " , ", ",,"])).join(ops)


@fuzz(400)
@given(st.one_of(st.lists(asm_line(), max_size=12).map("\n".join), st.text(max_size=200)))
def test_assembler_raises_only_asm_error(src):
    try:
        words = isa.assemble_words(src, "f.s")
    except isa.AsmError as e:
        assert str(e).startswith("f.s:")
        return
    assert all(0 <= w < 1 << 32 for w in words)
    if words:
        assert isa.assemble(src, "f.s") == struct.pack(f"<{len(words)}I", *words)
    else:
        with pytest.raises(isa.AsmError):
            isa.assemble(src, "f.s")


@fuzz(200)
@given(st.sampled_from(MNEMONICS), st.lists(st.one_of(st.integers(-(1 << 70), 1 << 70), TOKENS), max_size=5))
def test_encoder_raises_only_encode_error(name, ops):
    try:
        word = isa.encode(name, *ops)
    except isa.EncodeError:
        return
    assert isa.decode(word).name == name


@fuzz(300)
@given(st.binary(max_size=64), st.integers(0, 1 << 32))
def test_disassembler_raises_only_disasm_error(data, base):
    try:
        lines = isa.disassemble(data, base=base, addresses=True)
    except isa.DisasmError:
        return
    assert len(lines) == len(data) // 4


@fuzz(300)
@given(st.one_of(st.integers(-(1 << 40), 1 << 40), st.booleans()))
def test_decode_raises_only_disasm_error(word):
    try:
        d = isa.decode(word)
    except isa.DisasmError:
        return
    assert d.word == word


# ---- program loader -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def emu_device():
    import dnpu.runtime as rt

    with rt.open("emu", config="sim") as dev:
        yield dev


@fuzz(150)
@given(program=st.one_of(st.binary(max_size=256), st.lists(st.integers(-(1 << 40), 1 << 40), max_size=64),
                         st.lists(asm_line(), max_size=6).map("\n".join)))
def test_program_loader_raises_only_value_error(emu_device, program):
    try:
        buf = emu_device.load(program)
    except ValueError:
        return
    with buf:
        got = buf.read()
    if isinstance(program, bytes):
        assert got == program
    elif isinstance(program, list):
        assert got == b"".join((w & 0xFFFFFFFF).to_bytes(4, "little") for w in program)
    else:
        assert got == isa.assemble(program)


# ---- compiled models ---------------------------------------------------------------------------

JSON_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-(1 << 66), 1 << 66),
                                     st.sampled_from([0, 1, -1, 16, "forward.bin", "../manifest.json", "/etc/hostname",
                                                      "e4m3", "1.0", "dnpu-compiled-model/1"]),
                                     st.floats(allow_nan=False), st.text(max_size=8)),
                           lambda c: st.one_of(st.lists(c, max_size=3),
                                               st.dictionaries(st.text(max_size=4), c, max_size=3)), max_leaves=6)


def _json_paths(obj, prefix=()):
    yield prefix
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        yield from _json_paths(v, prefix + (k,))


@st.composite
def manifest_mutation(draw, manifest: dict):
    """The manifest with one to three values (anywhere in it) replaced or removed."""
    m = json.loads(json.dumps(manifest))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _json_paths(m) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = m
        for k in path[:-1]:
            parent = parent[k]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON_VALUES)
    return json.dumps(m).encode()


@pytest.fixture(scope="module")
def compiled_model(tmp_path_factory):
    from dnpu.cli import main

    out = tmp_path_factory.mktemp("fuzz-art") / "tiny-sim"
    assert main(["compile", "-o", str(out)]) == 0
    return out


@fuzz(80)
@given(data=st.data())
def test_compiled_model_loader_raises_only_artifact_error(compiled_model, data):
    from dnpu.compiler import artifact

    manifest = json.loads((compiled_model / "manifest.json").read_text())
    which = data.draw(st.sampled_from(["manifest", "manifest", "manifest", "text", "program", "weights"]))
    with _tmpdir() as d:
        art = Path(d) / "art"
        shutil.copytree(compiled_model, art)
        if which == "manifest":
            (art / "manifest.json").write_bytes(data.draw(manifest_mutation(manifest)))
        elif which == "text":
            (art / "manifest.json").write_bytes(data.draw(mutated(json.dumps(manifest), st.just('"'))))
        else:
            f = art / ("forward.bin" if which == "program" else "weights.safetensors")
            raw = f.read_bytes()
            f.write_bytes(raw[:data.draw(st.integers(0, len(raw) - 1))])
        try:
            a = artifact.read(art, config.load("sim"))
        except artifact.ArtifactError as e:
            assert str(art) in str(e)
            return
    assert a.program.kernel.binary and a.image


# ---- .hwh -----------------------------------------------------------------------------------------

HWH_PIECES = st.sampled_from(['"', "<", ">", "/>", "</MODULE>", "<MODULE>", 'VALUE="0x"', 'BASEVALUE="zz"',
                              'HIGHVALUE=""', 'INSTANCE="nope"', "<MEMRANGE/>", "&amp;", "&bad;", "<!--",
                              'MODTYPE="processing_system7"', "<REGISTER/>", "<PROPERTY/>", "\x00"])


@pytest.fixture(scope="module")
def hwh_parser():
    from dnpu import codegen

    return pynq_standin_module().parse_hwh, codegen.hwh_text("sim", family="xc7z")


@fuzz(150)
@given(data=st.data())
def test_hwh_parser_raises_only_value_error(hwh_parser, data):
    parse, text = hwh_parser
    raw = data.draw(mutated(text, HWH_PIECES))
    with _tmpdir() as d:
        p = Path(d) / "dnpu.hwh"
        p.write_bytes(raw)
        try:
            ip = parse(p)
        except ValueError as e:
            assert str(p) in str(e)
            return
    assert isinstance(ip, dict)


# ---- profile loader ---------------------------------------------------------------------------------

def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return json.dumps(v) if isinstance(v, str) else str(v)


TOML_SCALARS = st.one_of(st.integers(-(1 << 70), 1 << 70), st.sampled_from([0, 1, 2, 3, 7, 8, 16, 4096, 1 << 20,
                                                                             1 << 400, -(1 << 400)]),
                         st.floats(), st.booleans(), st.text(max_size=10),
                         st.sampled_from(["e4m3", "int8", "sim", "fpga", "asic"]))
TOML_VALUES = st.recursive(TOML_SCALARS, lambda c: st.one_of(st.lists(c, max_size=4),
                                                            st.dictionaries(st.text(max_size=5), c, max_size=3)),
                           max_leaves=8)
PROFILE_LINES = [i for i, line in enumerate(SIM_TOML.splitlines()) if " = " in line and not line.startswith("#")]


@st.composite
def profile_text(draw):
    lines = SIM_TOML.splitlines()
    kind = draw(st.sampled_from(["value", "value", "value", "line", "text"]))
    if kind == "text":
        return draw(mutated(SIM_TOML, st.sampled_from(["[", "]", "=", '"', "[vector]", "x = 1", "\n"])))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.sampled_from(PROFILE_LINES))
        key = lines[i].split(" = ")[0]
        if kind == "value":
            lines[i] = f"{key} = {_toml_value(draw(TOML_VALUES))}"
        else:
            lines[i] = draw(st.sampled_from(["", f"{key}x = 1", "[extra]", f"{key} = {{}}", "vector = 3"]))
    return "\n".join(lines).encode()


@fuzz(300)
@given(profile_text())
@example(SIM_TOML.replace("f_clk_mhz = 100.0", f"f_clk_mhz = {1 << 1100}").encode())   # past float's range
@example(SIM_TOML.replace("f_clk_mhz = 100.0", "f_clk_mhz = nan").encode())
@example(SIM_TOML.replace("vlen = 16 ", f"vlen = {1 << 80} ").encode())
@example(SIM_TOML.replace('name = "sim"', "name = " + "[" * 50_000 + "]" * 50_000).encode())   # deep
def test_profile_loader_raises_only_config_error(raw):
    with _tmpdir() as d:
        p = Path(d) / "p.toml"
        p.write_bytes(raw)
        try:
            cfg = config.load(p)
        except ConfigError as e:
            assert str(e).startswith(f"{p}: ") and "\n" not in str(e)
            return
    assert cfg.vector.lanes <= cfg.vector.vlen and isinstance(cfg.label, str)


# ---- checkpoint loader ------------------------------------------------------------------------------

@st.composite
def json_mutation(draw, obj: dict):
    """obj with some fields replaced by random JSON values or removed, or random bytes."""
    if draw(st.integers(0, 5)) == 0:
        return draw(st.one_of(st.binary(max_size=64), mutated(json.dumps(obj, indent=1), st.just('"'))))
    out = dict(obj)
    values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-(1 << 66), 1 << 66),
                                    st.sampled_from([0, 1, 2, 3, 4, 64, 128, 384, 1 << 40, -1]),
                                    st.floats(allow_nan=False), st.text(max_size=8)),
                          lambda c: st.one_of(st.lists(c, max_size=3),
                                              st.dictionaries(st.text(max_size=4), c, max_size=3)), max_leaves=6)
    for _ in range(draw(st.integers(1, 3))):
        k = draw(st.sampled_from(sorted(obj)))
        if draw(st.booleans()):
            out[k] = draw(values)
        else:
            out.pop(k, None)
    return json.dumps(out).encode()


@st.composite
def model_dir_files(draw):
    """(file name, new bytes) for one or two of the model directory's files."""
    which = draw(st.lists(st.sampled_from(["config.json", "model.safetensors", "tokenizer.json"]),
                          min_size=1, max_size=2, unique=True))
    out = []
    for name in which:
        if name == "model.safetensors":
            raw = (TINY / name).read_bytes()
            kind = draw(st.sampled_from(["cut", "header", "bytes", "random"]))
            if kind == "cut":
                raw = raw[:draw(st.one_of(st.integers(0, 64), st.integers(0, len(raw) - 1)))]
            elif kind == "header":                       # the JSON header: its length and text
                hlen = struct.unpack("<Q", raw[:8])[0]
                head = raw[8:8 + hlen].decode()
                new = draw(mutated(head, st.sampled_from(['"dtype":"F64"', '"shape":[1]', '"data_offsets":[0,1]',
                                                          '"F32"', '[0, 99999999]', "{", "}"])))
                raw = struct.pack("<Q", draw(st.sampled_from([len(new), hlen, len(new) + 7, 1 << 62]))) + new + \
                    raw[8 + hlen:]
            elif kind == "bytes":
                b = bytearray(raw)
                for _ in range(draw(st.integers(1, 8))):
                    b[draw(st.integers(0, 512))] = draw(st.integers(0, 255))
                raw = bytes(b)
            else:
                raw = draw(st.binary(max_size=64))
            out.append((name, raw))
        else:
            out.append((name, draw(json_mutation(json.loads((TINY / name).read_text())))))
    return out


DEEP_JSON = ("[" * 50_000 + "]" * 50_000).encode()          # deeper than Python's recursion limit


@fuzz(60)
@given(model_dir_files())
@example([("config.json", DEEP_JSON)])
@example([("tokenizer.json", b'{"model": ' + DEEP_JSON + b"}")])
def test_checkpoint_loader_raises_only_documented_errors(files):
    from dnpu.model.load import load

    with _tmpdir() as d:
        md = Path(d) / "model"
        shutil.copytree(TINY, md)
        for name, raw in files:
            (md / name).write_bytes(raw)
        try:
            model, tok = load(md, device="cpu")
        except (ValueError, FileNotFoundError) as e:     # CheckpointError is a ValueError
            assert str(md) in str(e) or "tokenizer" in str(e), str(e)
            return
    assert model is not None and tok is not None


# ---- MX unpack --------------------------------------------------------------------------------------

@fuzz(400)
@given(fmt=st.one_of(st.sampled_from(sorted(mx.FORMATS)), st.text(max_size=5)),
       block=st.one_of(st.sampled_from(mx.BLOCK_SIZES), st.integers(-70, 200)),
       shape=st.one_of(st.integers(-64, 4096), st.lists(st.integers(-4, 256), max_size=3).map(tuple),
                       st.lists(st.one_of(st.integers(0, 64), st.floats(0, 64), st.none(), st.booleans(),
                                          st.text(max_size=2)), max_size=3).map(tuple)),
       data=st.data())
def test_mx_unpack_raises_only_value_error(fmt, block, shape, data):
    try:
        want = mx.packed_nbytes(math.prod(shape) if isinstance(shape, tuple) else shape, fmt, block)
    except (ValueError, TypeError):
        want = 64
    if not isinstance(want, int) or not 0 <= want < 1 << 20:
        want = 64
    n = data.draw(st.one_of(st.just(want), st.integers(0, 2 * want + 64)))
    buf = data.draw(st.binary(min_size=n, max_size=n))
    if data.draw(st.booleans()):
        buf = np.frombuffer(buf, np.uint8)
    try:
        arr = mx.unpack(buf, shape, fmt, block)
    except ValueError:
        return
    again = mx.unpack(mx.pack(arr), shape, fmt, block)     # the padding is not read: compare contents
    assert np.array_equal(again.codes, arr.codes) and np.array_equal(again.scales, arr.scales)
    bf = mx.dequantize_bf16(arr)
    assert bf.shape == arr.shape and bf.dtype == np.uint16
