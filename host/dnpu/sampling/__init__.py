"""One diffusion-LLM sampling step (LLaDA / Fast-dLLM), and its PyTorch reference.

What a step is
--------------
A diffusion LLM fills a block of masked positions over several steps. After each
model forward, the sampler looks at the logits of every position and decides which
masked positions get their token now ("commit" / "transfer"). For batch row ``b``
and position ``l`` (temperature 0, the cross-validation mode):

* ``x0[b, l] = argmax_v logits[b, l, v]``; **ties: the lowest vocabulary index wins**.
* ``conf[b, l] = softmax(logits[b, l])[x0] = 1 / sum_v exp(logits[b, l, v] - max)``
  where ``mask[b, l]`` is True (the position is still masked and may be committed),
  else ``-inf``.
* Commit rule, one of:

  - **quota** (LLaDA, ``k``): in row ``b``, the ``k[b]`` masked positions with the
    highest confidence; **ties: the lowest position wins**. ``k`` comes from the step
    schedule, :func:`num_transfer_tokens`.
  - **threshold** (Fast-dLLM, ``threshold`` = tau): the best masked position
    (highest confidence, ties: lowest position) plus every masked position with
    ``conf >= tau``. A row with no masked position commits nothing.

* ``x_new = where(commit, x0, x)``. Positions where ``mask`` is False are never
  committed, whatever their confidence.

``mask`` is the set of *candidates*: the caller passes False for positions outside
the current block (LLaDA gives them confidence -inf, which is the same thing), so
``k[b]`` may be at most the number of True entries in row ``b``.

Where the reference's numbers come from
---------------------------------------
Every backend sees the same logits: they are first MX-quantized with
:func:`dnpu.spec.mx.quantize` (``fmt``, ``block``; see ``docs/MX.md``) and dequantized
with :func:`dnpu.spec.mx.dequantize` (float32, exact for every MX value that fits
float32). The ``torch`` backend then works in float64 on those values: the argmax
and the maximum are exact; ``l - max`` and ``exp`` are float64 operations of the
torch device (exp within about 1 ulp); the sum over the vocabulary is done in a
fixed order, a balanced binary tree (``s[i] + s[i + n/2]``, repeatedly, after zero
padding to a power of two), so it does not depend on the device or thread count;
then ``conf = 1 / sum``. ``x0`` and the MX values are therefore identical on every
device; ``conf`` can differ between CPU and CUDA by a few ulps (their float64
``exp`` differ), which changes commits only when two confidences, or a confidence
and ``threshold``, are that close. The NPU backends (``emu``, ``verilator``,
``pynq``) run the NPU's own arithmetic (``docs/NUMERICS.md``) on the same MX
values and are checked against this reference: tokens equal, confidences within
the documented bound.

NaN and Inf
-----------
MX turns a block holding NaN or +-Inf into a NaN block (scale 0xFF): every logit of
that block would dequantize to NaN and the argmax and confidence of that position
would be NaN-driven, i.e. meaningless. :func:`transfer` therefore rejects NaN or
+-Inf input logits with a ValueError naming the first such position. Finite float64
logits so large that their MX value overflows float32 (magnitudes near 2**128) are
rejected too.
"""

from __future__ import annotations

import sys
from typing import NamedTuple

import numpy as np

from dnpu.compiler import FLOWS
from dnpu.runtime import BACKENDS as NPU_BACKENDS
from dnpu.runtime import check_run_info
from dnpu.spec import mx

__all__ = [
    "StepResult",
    "transfer",
    "num_transfer_tokens",
    "schedule",
    "BACKENDS",
    "NPU_BACKENDS",
    "FLOWS",
    "check_choice",
    "check_threshold",
]

BACKENDS = ("torch",) + NPU_BACKENDS


class StepResult(NamedTuple):
    """The outcome of one step (NumPy arrays, shape [B, L])."""

    x_new: np.ndarray  # int64: x with the committed positions set to x0
    x0: np.ndarray  # int64: argmax token of every position (masked or not)
    conf: np.ndarray  # float64: softmax probability of x0 at masked positions, -inf elsewhere


# --------------------------------------------------------------------------- input conversion


def _torch_tensor(a):
    """``a`` if it is a torch.Tensor (torch is never imported just to check), else None."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(a, torch.Tensor):
        return a
    return None


def _logits_numpy(logits) -> np.ndarray:
    """float32 or float64 ndarray; bfloat16 is widened to float32 exactly."""
    t = _torch_tensor(logits)
    if t is not None:
        import torch

        t = t.detach()
        if t.dtype == torch.bfloat16:
            t = t.float()  # exact: bfloat16 is the top half of float32
        if t.dtype not in (torch.float32, torch.float64):
            raise ValueError(
                f"logits must be float32, float64 or bfloat16; got torch {t.dtype}: "
                "cast them, e.g. logits.float()"
            )
        return t.cpu().contiguous().numpy()
    try:
        arr = np.asarray(logits)
    except Exception as e:  # noqa: BLE001 - anything NumPy cannot read
        raise ValueError(f"logits must be a NumPy array or torch tensor; got {type(logits).__name__} ({e})") from e
    if arr.dtype.name == "bfloat16" and arr.dtype.itemsize == 2:
        return arr.astype(np.float32)
    if arr.dtype.kind == "f" and arr.dtype.itemsize in (4, 8):
        return np.asarray(arr, dtype=arr.dtype.newbyteorder("="), order="C")
    raise ValueError(
        f"logits must be float32, float64 or bfloat16; got dtype {arr.dtype}: "
        "cast them to float32 (integer, bool and float16 logits are not accepted)"
    )


def _numpy(a, what: str) -> np.ndarray:
    t = _torch_tensor(a)
    if t is not None:
        return t.detach().cpu().numpy()
    try:
        return np.asarray(a)
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"{what} must be a NumPy array or torch tensor; got {type(a).__name__} ({e})") from e


def _mask_numpy(mask) -> np.ndarray:
    arr = _numpy(mask, "mask")
    if arr.dtype != np.bool_:
        raise ValueError(
            f"mask must be a bool array (True = position still masked); got dtype {arr.dtype}: "
            "build it with a comparison, e.g. mask = (x == mask_id)"
        )
    return np.ascontiguousarray(arr)


def _int64(arr: np.ndarray, what: str, hint: str) -> np.ndarray:
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{what} must be an integer array; got dtype {arr.dtype}: {hint}")
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"{what} holds values beyond int64 (max {int(arr.max())}): {hint}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _check_k(k, B: int, mask: np.ndarray) -> np.ndarray:
    if isinstance(k, (bool, np.bool_)):
        raise ValueError(f"k must be an int or an integer array of shape ({B},); got a bool ({k!r})")
    if isinstance(k, (int, np.integer)):
        karr = np.full(B, int(k), dtype=np.int64)
    else:
        raw = _numpy(k, "k")
        if raw.dtype.kind not in "iu":
            raise ValueError(
                f"k must be an int or an integer array of shape ({B},); got dtype {raw.dtype}: "
                "the per-row quota is a count (see num_transfer_tokens)"
            )
        if raw.ndim == 0:
            karr = np.full(B, int(raw), dtype=np.int64)
        elif raw.shape != (B,):
            raise ValueError(
                f"k must have shape ({B},), one quota per batch row of logits/mask/x; got shape {raw.shape}"
            )
        else:
            if raw.dtype == np.uint64 and int(raw.max()) > np.iinfo(np.int64).max:
                raise ValueError(f"k holds values beyond int64 (max {int(raw.max())})")
            karr = raw.astype(np.int64)
    counts = mask.sum(axis=1)
    for b in range(B):
        kb, mb = int(karr[b]), int(counts[b])
        if kb < 0:
            raise ValueError(f"k[{b}] = {kb} is negative: a quota counts positions to commit, use 0 or more")
        if kb > mb:
            raise ValueError(
                f"k[{b}] = {kb} is larger than row {b}'s masked count {mb}: "
                f"a row can commit at most its masked positions; lower k[{b}] to at most {mb}"
            )
    return karr


def check_threshold(threshold) -> float:
    """``threshold`` as a float in (0, 1]; ValueError naming the rule otherwise."""
    if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, (int, float, np.integer, np.floating)):
        raise ValueError(f"threshold must be a float in (0, 1]; got {threshold!r} ({type(threshold).__name__})")
    tau = float(threshold)
    if not (0.0 < tau <= 1.0):  # also rejects NaN
        raise ValueError(
            f"threshold must be in (0, 1] (a softmax probability; Fast-dLLM uses 0.9); got {tau!r}"
        )
    return tau


def check_choice(value, what: str, choices) -> str:
    """``value`` in lower case when it names one of ``choices`` (any case); else ValueError
    ``unknown {what} {value!r}: use one of ...``."""
    if not isinstance(value, str) or value.lower() not in choices:
        raise ValueError(f"unknown {what} {value!r}: use one of {', '.join(repr(c) for c in choices)}")
    return value.lower()


def _check_block(block) -> int:
    ok = isinstance(block, (int, np.integer)) and not isinstance(block, (bool, np.bool_))
    if not ok or int(block) not in mx.BLOCK_SIZES:
        raise ValueError(f"block must be one of {mx.BLOCK_SIZES} (elements per MX scale); got {block!r}")
    return int(block)


def _first_bad(bad: np.ndarray) -> tuple:
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))


# --------------------------------------------------------------------------- transfer


def transfer(
    logits,
    mask,
    x,
    *,
    k=None,
    threshold=None,
    backend: str = "torch",
    fmt: str = "e4m3",
    block: int = mx.DEFAULT_BLOCK,
    flow: str = "fused",
    config="sim",
    device=None,
    run_info: list | None = None,
) -> StepResult:
    """One sampling step at temperature 0 (see the module docstring for the rule).

    Args:
        logits: float32/float64/bfloat16 [B, L, V], NumPy (ml_dtypes bfloat16) or torch;
            V must be a multiple of ``block``. NaN/Inf are rejected.
        mask: bool [B, L], True where the position is masked and may be committed.
        x: integer [B, L], the current tokens (copied where nothing commits).
        k: LLaDA quota, an int (every row) or integer [B]; ``0 <= k[b] <=`` row b's
            masked count. Exactly one of ``k`` and ``threshold``.
        threshold: Fast-dLLM confidence threshold in (0, 1].
        backend: ``"torch"`` (this module's float64 reference) or an NPU backend
            (``"emu"``, ``"verilator"``, ``"pynq"``), run by ``dnpu.sampling.npu``.
        fmt, block: the MX format and block size the logits are quantized to.
        flow: ``"fused"`` or ``"phased"``; how the NPU schedules the step (NPU
            backends only, validated for all).
        config: hardware profile for NPU backends (ignored by ``"torch"``).
        device: torch device for ``backend="torch"`` (default CPU; e.g. ``"cuda"``).
        run_info: optional list; an NPU backend appends the step's
            :class:`dnpu.runtime.RunInfo` to it (``cycles``: the NPU's cycle counter, None
            on ``"emu"``; ``instret``, ``counters``). ``"torch"`` appends nothing.

    Returns:
        :class:`StepResult` ``(x_new int64, x0 int64, conf float64)``, NumPy [B, L].
    """
    backend = check_choice(backend, "backend", BACKENDS)
    flow = check_choice(flow, "flow", FLOWS)
    check_run_info(run_info)
    if not isinstance(fmt, str) or fmt.lower() not in mx.FORMATS:
        raise ValueError(f"unknown fmt {fmt!r} (MX element format): use one of {', '.join(mx.FORMATS)}")
    fmt = fmt.lower()
    block = _check_block(block)
    if device is not None and backend != "torch":
        raise ValueError(
            f"device={device!r} applies only to backend='torch'; the {backend!r} backend runs on the NPU: "
            "leave device unset"
        )

    lg = _logits_numpy(logits)
    if lg.ndim != 3:
        raise ValueError(f"logits must have 3 dimensions [B, L, V]; got shape {lg.shape}")
    B, L, V = lg.shape
    if B == 0 or L == 0 or V == 0:
        raise ValueError(f"logits is empty (shape {lg.shape}): B, L and V must all be at least 1")
    m = _mask_numpy(mask)
    if m.shape != (B, L):
        raise ValueError(f"mask must have shape [B, L] = {(B, L)} to match logits {lg.shape}; got {m.shape}")
    xa = _numpy(x, "x")
    if xa.shape != (B, L):
        raise ValueError(f"x must have shape [B, L] = {(B, L)} to match logits {lg.shape}; got {xa.shape}")
    xa = _int64(xa, "x", "x holds token ids, pass it as int64")
    if V % block:
        pad = -V % block
        raise ValueError(
            f"vocabulary size V = {V} (logits.shape[-1]) is not a multiple of block {block}: "
            f"pad the vocabulary with {pad} entries to {V + pad}, each set to its row's minimum logit "
            "(a pad then never wins the argmax, ties go to the lowest index, and it leaves the block's MX "
            "scale unchanged; a huge negative pad would coarsen the scale of the last block)"
        )

    if (k is None) == (threshold is None):
        both = "both were given" if k is not None else "neither was given"
        raise ValueError(
            f"pass exactly one of k (LLaDA quota per row) and threshold (Fast-dLLM confidence); {both}"
        )
    karr = _check_k(k, B, m) if k is not None else None
    tau = check_threshold(threshold) if threshold is not None else None

    bad = ~np.isfinite(lg)
    if bad.any():
        b, l, v = _first_bad(bad)
        raise ValueError(
            f"logits hold NaN or Inf (first at [{b}, {l}, {v}] = {lg[b, l, v]}): MX would make that whole "
            "block NaN and the argmax meaningless; replace them with finite values (e.g. a large negative logit)"
        )

    def overflow(b, l, v):
        return ValueError(
            f"logits[{b}, {l}, {v}] = {lg[b, l, v]} overflows float32 after MX quantization: "
            "logits must stay well inside float32's range (|x| < 2**127); scale or clip them"
        )

    if lg.dtype == np.float64 and (np.abs(lg) >= 2.0 ** 128).any():   # beyond what MX's scales cover
        raise overflow(*_first_bad(np.abs(lg) >= 2.0 ** 128))
    q = mx.quantize(lg, fmt, block)

    deq = None
    if backend == "torch" or lg.dtype == np.float64:  # float32/bfloat16 MX values always fit float32
        deq = mx.dequantize(q)
        over = ~np.isfinite(deq)
        if over.any():
            raise overflow(*_first_bad(over))

    if backend != "torch":
        from dnpu.sampling import npu

        if run_info is None:
            out = npu.run(backend, q, m, xa, karr, tau, flow, config)
        else:
            out = npu.run(backend, q, m, xa, karr, tau, flow, config, run_info=run_info)
        return _as_result(out, (B, L), backend)

    return _torch_step(deq, m, xa, karr, tau, device)


def _as_result(out, shape, backend) -> StepResult:
    try:
        x_new, x0, conf = out
    except (TypeError, ValueError) as e:
        raise RuntimeError(f"backend {backend!r} returned {type(out).__name__}, not (x_new, x0, conf)") from e
    res = StepResult(
        np.asarray(x_new, dtype=np.int64), np.asarray(x0, dtype=np.int64), np.asarray(conf, dtype=np.float64)
    )
    for name, a in zip(StepResult._fields, res):
        if a.shape != shape:
            raise RuntimeError(f"backend {backend!r} returned {name} of shape {a.shape}, expected {shape}")
    return res


def _torch_device(device):
    import torch

    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device {device!r} is not a torch device: use None, 'cpu' or 'cuda'") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for CUDA but torch.cuda.is_available() is False: use device=None")
    return dev


def _torch_step(deq: np.ndarray, mask: np.ndarray, x: np.ndarray, k, tau, device) -> StepResult:
    import torch

    from dnpu.sampling.reference import rule

    dev = _torch_device(device)
    kt = None if k is None else torch.from_numpy(k).to(dev)
    x_new, x0, conf = rule(torch.from_numpy(deq).to(dev), torch.from_numpy(mask).to(dev),
                           torch.from_numpy(x).to(dev), kt, tau, exact=True)
    return StepResult(
        x_new.cpu().numpy().astype(np.int64, copy=False),
        x0.cpu().numpy().astype(np.int64, copy=False),
        conf.cpu().numpy().astype(np.float64, copy=False),
    )


# --------------------------------------------------------------------------- step schedule (LLaDA)


def _positive_int(v, what: str) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{what} must be a positive int; got {v!r} ({type(v).__name__})")
    if int(v) < 1:
        raise ValueError(f"{what} must be at least 1; got {int(v)}")
    return int(v)


def num_transfer_tokens(mask_block, steps) -> np.ndarray:
    """LLaDA's per-step quotas: int64 [B, steps].

    For each row, ``m`` = number of masked positions in ``mask_block`` (bool [B, Lb],
    the current block), ``base = m // steps``, ``rem = m % steps``; the first ``rem``
    steps commit ``base + 1`` tokens, the others ``base``. Each row sums to ``m``.
    """
    steps = _positive_int(steps, "steps")
    mb = _numpy(mask_block, "mask_block")
    if mb.dtype != np.bool_:
        raise ValueError(
            f"mask_block must be a bool array [B, block_length] (True = masked); got dtype {mb.dtype}: "
            "build it with a comparison, e.g. x[:, start:end] == mask_id"
        )
    if mb.ndim != 2:
        raise ValueError(f"mask_block must have 2 dimensions [B, block_length]; got shape {mb.shape}")
    if mb.size == 0:
        raise ValueError(f"mask_block is empty (shape {mb.shape}): B and block_length must be at least 1")
    m = mb.sum(axis=1, dtype=np.int64)
    base, rem = m // steps, m % steps
    out = np.repeat(base[:, None], steps, axis=1)
    out += np.arange(steps, dtype=np.int64)[None, :] < rem[:, None]
    return out


def schedule(gen_length, block_length, steps) -> int:
    """Steps per block for LLaDA's block-wise generation: ``gen_length`` tokens in blocks
    of ``block_length``, ``steps`` spread evenly over the ``gen_length // block_length``
    blocks. Raises ValueError when the division is not exact."""
    gen_length = _positive_int(gen_length, "gen_length")
    block_length = _positive_int(block_length, "block_length")
    steps = _positive_int(steps, "steps")
    if gen_length % block_length:
        raise ValueError(
            f"gen_length {gen_length} is not a multiple of block_length {block_length}: "
            f"choose a block_length that divides it (or a gen_length that is a multiple of {block_length})"
        )
    num_blocks = gen_length // block_length
    if steps % num_blocks:
        raise ValueError(
            f"steps {steps} is not a multiple of the number of blocks {num_blocks} "
            f"(gen_length {gen_length} / block_length {block_length}): use a multiple of {num_blocks}, "
            f"e.g. {(steps // num_blocks + 1) * num_blocks}"
        )
    return steps // num_blocks
