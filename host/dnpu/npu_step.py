"""One sampling step on an NPU backend: compile, lay out memory, run, read back.

`dnpu.sampling.transfer(..., backend="emu")` validates and quantizes its
inputs, then calls `run` here. The program comes from `dnpu.compiler`; this
module only fills the program's memory layout and reads its outputs, so every
backend (emulator today; Verilator and the board through `dnpu.runtime`) sees
the same bytes.
"""

from __future__ import annotations

import numpy as np

from dnpu import compiler, mx
from dnpu import config as config_mod
from dnpu.config import Config

__all__ = ["run", "memory_image", "BASE", "NPUError"]

# Where the emulator places a step's layout: non-zero so that a null address
# in a program faults instead of silently reading the layout.
BASE = 0x0001_0000


class NPUError(RuntimeError):
    """The NPU faulted or did not finish; the message carries its state."""


def _packed_rows(q: mx.MXArray) -> np.ndarray:
    """Each logits row (last dimension) packed on its own, rows back to back at a 64-byte stride."""
    V = q.shape[-1]
    rows = int(np.prod(q.shape[:-1]))
    stride = mx.packed_nbytes(V, q.fmt, q.block)
    groups, partial = divmod(V // q.block, mx.GROUP_BLOCKS)
    if not partial and groups * mx.group_nbytes(q.fmt, q.block) == stride:
        # Rows are whole groups and whole 64-byte lines: packing the tensor at once is the same.
        return np.frombuffer(mx.pack(q), np.uint8)
    out = np.empty((rows, stride), np.uint8)
    scales = q.scales.reshape(rows, -1)
    codes = q.codes.reshape(rows, V)
    for r in range(rows):
        row = mx.MXArray(q.fmt, q.block, (V,), scales[r], codes[r])
        out[r] = np.frombuffer(mx.pack(row), np.uint8)
    return out.reshape(-1)


def memory_image(prog: compiler.Program, q: mx.MXArray, mask: np.ndarray, x: np.ndarray,
                 k: np.ndarray | None, threshold: float | None) -> dict[str, bytes]:
    """The bytes of every input buffer of `prog`'s layout."""
    img = {
        "program": prog.binary,
        "logits": _packed_rows(q).tobytes(),
        "mask": np.ascontiguousarray(mask, dtype="<i4").tobytes(),
        "x": np.ascontiguousarray(x, dtype="<i4").tobytes(),
        "commit_arg": (np.ascontiguousarray(k, dtype="<i4").tobytes() if prog.mode == "topk"
                       else np.asarray([threshold], dtype="<f4").tobytes()),
    }
    for name, data in img.items():
        assert len(data) == prog.layout[name].nbytes, (name, len(data), prog.layout[name].nbytes)
    return img


def _read_outputs(prog: compiler.Program, read) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    def get(name: str, dtype: str) -> np.ndarray:
        b = prog.layout[name]
        return np.frombuffer(read(b.offset, b.nbytes), dtype=dtype).reshape(b.shape)

    x_new = get("x_new", "<i4").astype(np.int64)
    x0 = get("x0", "<i4").astype(np.int64)
    conf = get("conf", "<f4").astype(np.float64)
    return x_new, x0, conf


def _run_emu(cfg: Config, prog: compiler.Program, img: dict[str, bytes]):
    from dnpu import emu

    dev = emu.Emulator(cfg)
    dev.map(BASE, prog.nbytes)
    for name, data in img.items():
        dev.write(BASE + prog.layout[name].offset, data)
    # A generous budget: the program's dynamic length is about (10 + 4)·B·L + 20·B instructions.
    budget = 64 + 32 * prog.B * (prog.L + 4)
    res = dev.run(BASE + prog.layout["program"].offset, args=prog.args(BASE), max_instructions=budget)
    if res.status != "halted":
        raise NPUError(f"emu: sampling program did not halt: {res}")
    return _read_outputs(prog, lambda off, n: dev.read(BASE + off, n))


def run(backend: str, q: mx.MXArray, mask: np.ndarray, x: np.ndarray, k: np.ndarray | None,
        threshold: float | None, flow: str, config: str | Config = "sim"):
    """Run one step on `backend`; returns (x_new int64, x0 int64, conf float64), each [B, L]."""
    cfg = config if isinstance(config, Config) else config_mod.load(config)
    if q.block != cfg.mx.block:
        raise ValueError(f"block = {q.block}: profile {cfg.name} decodes MX blocks of {cfg.mx.block}; "
                         f"quantize with block={cfg.mx.block}")
    if len(q.shape) != 3:
        raise ValueError(f"logits must be [B, L, V]; got shape {q.shape}")
    B, L, V = q.shape
    x = np.asarray(x)
    if x.size and (x.min() < 0 or x.max() > np.iinfo(np.int32).max):
        raise ValueError(f"x: token ids must lie in [0, 2**31) for the NPU's int32 SRAM; "
                         f"got [{x.min()}, {x.max()}]")
    mode = "topk" if k is not None else "threshold"
    prog = compiler.sampling_program(cfg, B, L, V, mode=mode, flow=flow, fmt=q.fmt)
    img = memory_image(prog, q, mask, x, k, threshold)
    if backend == "emu":
        return _run_emu(cfg, prog, img)
    raise ValueError(f"backend {backend!r}: this build runs NPU sampling on 'emu' only "
                     f"(the Verilator and board runtimes arrive with dnpu.runtime)")
