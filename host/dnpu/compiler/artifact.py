"""A compiled model on disk: everything a runtime needs to run the forward on an NPU,
without the compiler or the original checkpoint.

A directory:

    manifest.json        what it is: format, ISA version, profile name and config hash,
                         the network and sequence length, the program's layout and argument
                         order, the weights image's layout, sha256 of every file
    forward.bin          the program (little-endian instruction words)
    forward.s            its assembly, for reading
    weights.safetensors  the weights image as one uint8 tensor "image" (MX-packed linear
                         weights, BF16 tables and gains, FP32 norm constants, at the
                         offsets of manifest["weights"]["layout"])
    tokenizer.json       the model's tokenizer, when the writer was given one

`write` puts it in place atomically (a temporary directory renamed over the target);
`read` checks the format, the hashes and (given a profile) the ISA version and config
hash, and names both sides of a mismatch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from dnpu.compiler.forward import ForwardProgram, ForwardShape
from dnpu.compiler.kernel import KernelProgram
from dnpu.spec import isa
from dnpu.spec.config import Config

__all__ = ["FORMAT", "ArtifactError", "Artifact", "write", "read"]

FORMAT = "dnpu-compiled-model/1"


class ArtifactError(ValueError):
    """An artifact that cannot be used here: missing, damaged, or built for another NPU."""


class Artifact:
    """A read artifact: the forward program, its weights image, the model's config dict."""

    def __init__(self, path: Path, manifest: dict, program: ForwardProgram, image: bytes) -> None:
        self.path, self.manifest, self.program, self.image = path, manifest, program, image

    @property
    def model_config(self) -> dict:
        return self.manifest["model"]

    @property
    def tokenizer_path(self) -> Path | None:
        p = self.path / "tokenizer.json"
        return p if p.is_file() else None


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(out, prog: ForwardProgram, image: bytes, cfg: Config, model_config: dict, eps: float,
          tokenizer: Path | None = None) -> Path:
    """Write the artifact of `prog` (compiled for `cfg`) and its weights `image` to the
    directory `out`, replacing an earlier artifact there; refuses to replace anything else."""
    from safetensors.numpy import save_file

    out = Path(out)
    if out.exists() and not (out / "manifest.json").is_file():
        raise ArtifactError(f"{out} exists and is not a compiled model (no manifest.json): refusing to replace it")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        k = prog.kernel
        files = {"forward.bin": k.binary, "forward.s": k.asm.encode()}
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        save_file({"image": np.frombuffer(image, np.uint8)}, str(tmp / "weights.safetensors"))
        if tokenizer is not None:
            shutil.copyfile(tokenizer, tmp / "tokenizer.json")
        for f in tmp.iterdir():
            f.chmod(0o644)                      # safetensors writes owner-only files
        digests = {p.name: _sha(p.read_bytes()) for p in sorted(tmp.iterdir())}
        manifest = {
            "format": FORMAT,
            "isa_version": "%d.%d" % isa.VERSION,
            "config": {"name": cfg.name, "hash": cfg.config_hash},
            "model": model_config,
            "rms_norm_eps": eps,
            "shape": {f: getattr(prog.shape, f) for f in ForwardShape.__dataclass_fields__},
            "weights_fmt": prog.fmt,
            "mlp_chunk": prog.mlp_chunk,
            "key_tile": prog.key_tile,
            "sections": [list(x) for x in prog.sections],
            "all_logits_rows": prog.all_logits_rows,
            "program": {"file": "forward.bin", "name": k.name, "tile": k.tile, "shape": dict(k.shape),
                        "layout": {n: list(v) for n, v in k.layout.items()}, "arg_order": list(k.arg_order)},
            "weights": {"file": "weights.safetensors", "nbytes": len(image),
                        "layout": {n: list(v) for n, v in prog.weight_layout.items()}},
            "sha256": digests,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def read(path, cfg: Config | None = None) -> Artifact:
    """Read and check the artifact at `path`; with `cfg`, refuse one built for another
    profile (config hash) or another ISA version. Raises ArtifactError (a ValueError) only,
    naming the file: a missing or malformed manifest, a damaged file, a mismatch."""
    path = Path(path)
    mf = path / "manifest.json"
    if not mf.is_file():
        raise ArtifactError(f"{path} is not a compiled model: no manifest.json (write one with `dnpu compile`)")
    try:
        m = json.loads(mf.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise ArtifactError(f"{mf}: unreadable manifest: {e}") from None
    if not isinstance(m, dict):
        raise ArtifactError(f"{mf}: a manifest is a JSON object, not {type(m).__name__}")
    if m.get("format") != FORMAT:
        raise ArtifactError(f"{mf}: format {m.get('format')!r}, this runtime reads {FORMAT!r}")
    try:
        return _read(path, m, cfg)
    except ArtifactError:
        raise
    except OSError as e:
        raise ArtifactError(f"{e.filename or path}: cannot read: {e.strerror or e}") from None
    except (KeyError, TypeError, AttributeError, ValueError, IndexError, OverflowError) as e:
        # A hand-edited or truncated manifest: a field missing or of the wrong kind.
        raise ArtifactError(f"{mf}: malformed manifest ({type(e).__name__}: {e}); compile the model again") from None


def _member(path: Path, name) -> Path:
    """The file `name` of the artifact: a plain file name, never a path out of the directory."""
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ArtifactError(f"{path / 'manifest.json'}: file name {name!r} is not a file of the artifact")
    return path / name


def _read(path: Path, m: dict, cfg: Config | None) -> Artifact:
    from safetensors.numpy import load_file

    here = "%d.%d" % isa.VERSION
    if m["isa_version"] != here:
        raise ArtifactError(f"{path} was compiled for ISA {m['isa_version']}; this runtime and NPU speak ISA {here}: "
                            f"compile it again")
    if cfg is not None and m["config"]["hash"] != cfg.config_hash:
        raise ArtifactError(f"{path} was compiled for profile {m['config']['name']} (config hash "
                            f"{str(m['config']['hash'])[:12]}); the device is profile {cfg.name} (config hash "
                            f"{cfg.config_hash[:12]})")
    for name, digest in m["sha256"].items():
        f = _member(path, name)
        if not f.is_file() or _sha(f.read_bytes()) != digest:
            raise ArtifactError(f"{f}: missing or damaged (sha256 differs from the manifest's)")
    p = m["program"]
    binary = _member(path, p["file"]).read_bytes()
    kernel = KernelProgram(p["name"], m["config"]["name"], tuple(p["shape"].items()), p["tile"],
                           (path / "forward.s").read_text(), binary,
                           {n: tuple(v) for n, v in p["layout"].items()}, tuple(p["arg_order"]))
    wfile = _member(path, m["weights"]["file"])
    try:
        image = load_file(str(wfile))["image"].tobytes()
    except (OSError, KeyError) as e:
        raise ArtifactError(f"{wfile}: no weights image: {e}") from None
    except Exception as e:  # noqa: BLE001 - safetensors' SafetensorError derives from Exception only
        raise ArtifactError(f"{wfile} is not a valid safetensors file: {e}") from None
    if len(image) != m["weights"]["nbytes"]:
        raise ArtifactError(f"{path}: the weights image has {len(image)} bytes, the manifest says "
                            f"{m['weights']['nbytes']}")
    shape = ForwardShape(**m["shape"])
    bad = [f for f, v in dataclasses.asdict(shape).items() if isinstance(v, bool) or not isinstance(v, int) or v < 1]
    if bad:
        raise ArtifactError(f"{path / 'manifest.json'}: shape {', '.join(bad)} must be positive integers")
    prog = ForwardProgram(kernel, shape, m["weights_fmt"],
                          {n: tuple(v) for n, v in m["weights"]["layout"].items()}, m["mlp_chunk"], m["key_tile"],
                          tuple((int(i), str(k)) for i, k in m.get("sections", [])), int(m["all_logits_rows"]))
    return Artifact(path, m, prog, image)
