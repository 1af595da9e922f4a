"""One sampling step on an NPU backend: compile, lay out memory, run, read back.

`dnpu.sampling.transfer(..., backend="emu")` validates and quantizes its
inputs, then calls `run` here. The program comes from `dnpu.compiler`; this
module only fills the program's memory layout and reads its outputs through
`dnpu.runtime`, so every backend (emulator, Verilator co-simulation, PYNQ
board) sees the same bytes.

Cycle counts: pass ``run_info=[]`` (a list) to `run` (or to
``sampling.transfer``) and the step's :class:`dnpu.runtime.RunInfo` is appended to
it: ``cycles`` (the NPU's cycle counter on the co-simulation and the board; None
on the emulator, which has no clock), ``instret``, ``counters``, ``wall_s`` (host
time of the run). The step's NPU time is ``cycles / (f_clk_mhz * 1e6)`` of the
profile (``dnpu bench`` reports it).
"""

from __future__ import annotations

import numpy as np

from dnpu import compiler
from dnpu.spec import mx
from dnpu.spec import config as config_mod
from dnpu.spec.config import Config

__all__ = ["run", "memory_image", "NPUError"]


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


def _run_device(backend: str, cfg: Config, prog: compiler.Program, img: dict[str, bytes],
                run_info: list | None = None):
    from dnpu import runtime

    with runtime.open(backend, config=cfg) as dev:
        buf = dev.alloc(prog.nbytes)  # 64-byte aligned, as compiler.ALIGN assumes
        for name, data in img.items():
            buf.write(data, offset=prog.layout[name].offset)
        # The emulator counts instructions: the program runs about (10 + 4)·B·L + 20·B of them.
        # Co-simulation counts cycles: its default budget and no-progress watchdog apply.
        budget = 64 + 32 * prog.B * (prog.L + 4) if dev.budget_unit == "instructions" else None
        try:
            info = dev.run(buf.addr + prog.layout["program"].offset, args=prog.args(buf.addr), timeout=budget)
        except runtime.DeviceError as e:
            raise NPUError(f"{backend}: the sampling program did not halt:\n{e}") from e
        if run_info is not None:
            run_info.append(info)
        return _read_outputs(prog, lambda off, n: buf.read(n, offset=off))


def run(backend: str, q: mx.MXArray, mask: np.ndarray, x: np.ndarray, k: np.ndarray | None,
        threshold: float | None, flow: str, config: str | Config = "sim", run_info: list | None = None):
    """Run one step on `backend`; returns (x_new int64, x0 int64, conf float64), each [B, L].

    run_info: a list to append the run's :class:`dnpu.runtime.RunInfo` to (cycles,
    instret, counters); None (default): not kept."""
    from dnpu.runtime import check_run_info

    check_run_info(run_info)
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
    from dnpu import runtime

    return _run_device(runtime.backend_name(backend), cfg, prog, img, run_info)
