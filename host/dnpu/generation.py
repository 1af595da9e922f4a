"""Diffusion-LLM generation with the sampling step on a chosen backend (the NPU).

The loop is LLaDA's block-wise semi-autoregressive one, with Fast-dLLM's
threshold commit and KV caches (shared/REFERENCE.md):

* The sequence is the prompt followed by ``gen_length`` mask tokens, filled in
  blocks of ``block_length``, left to right; ``steps`` are spread evenly over the
  blocks (:func:`dnpu.sampling.schedule`).
* ``forward="npu"``: the whole step runs on the sampler's NPU backend as one program of
  :mod:`dnpu.compiler.forward` (weights MX-quantized to ``weights_fmt``, placed once for
  the whole generation; no KV cache): the forward, then the sampling of the block on
  the BF16 logits rows in SRAM (the phased flow's arithmetic, the commit of the fused
  flow; ``fmt`` and ``flow`` do not apply), and only the block's tokens come back. With
  ``temperature > 0`` the logits come back for the host's noise and go through
  ``sampling.transfer`` on the backend as below.
* Otherwise (``forward="host"``) the model forward runs on the model's device (CUDA
  when the model is there, else CPU) each step. The host takes the current block's logits
  ``[B, block_length, V]`` and hands them to :func:`dnpu.sampling.transfer`, which
  MX-quantizes them and runs argmax, confidence and commit on ``sampler``
  (``"torch"``: the float64 reference; ``"emu"``, ``"verilator"``, ``"pynq"``: the
  NPU). The commit rule is LLaDA's quota (``k`` per row from
  :func:`dnpu.sampling.num_transfer_tokens` on the block's mask at its start) or,
  with ``threshold``, Fast-dLLM's (best masked position plus every one with
  confidence >= threshold; the block runs until it has no mask left, at most
  ``block_length`` steps, and ``steps`` only has to pass the schedule check).
* A quota step in which no row commits anything (LLaDA's schedule gives zero
  quotas when a block has fewer masks than steps) is skipped without a forward:
  its forward's logits would be unused, so the tokens are the same.

KV caches (``kv_cache``): ``"none"`` runs the whole sequence every step.
``"prefix"``: at each block's first step one full forward also returns every
layer's K/V; later steps feed the block and everything after it and reuse the
prefix K/V. ``"dual"``: same refresh, later steps feed only the block; prefix
and suffix K/V stay frozen until the next block. Keys are cached before RoPE
(see :mod:`dnpu.model.llada`). With a cache the logits are an approximation
(the cached K/V were computed from older tokens), exactly as in Fast-dLLM.

Temperature: 0 (greedy) is the cross-validation mode: every sampler sees the
same logits and the NPU must return the same tokens as ``"torch"``. With
``temperature > 0`` the host perturbs the block's logits before quantization,
in float64 with a seeded CPU generator (torch's for a PyTorch model, NumPy's PCG64 for
a NumPy one): ``l + T * g``, ``g = -log(-log u)``,
``u ~ U(0, 1)`` (standard Gumbel). Its argmax is LLaDA's
``argmax exp(l) / (-log u)^T``; unlike LLaDA, the confidence is then the
softmax of the perturbed logits (the NPU sees one logits tensor), and the noise
is the same for every sampler, so backends still agree token for token.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import numbers
import sys
import time
from typing import Callable, NamedTuple

import numpy as np

from dnpu import sampling
from dnpu.compiler.forward import KvStep
from dnpu.model import kvquant
from dnpu.spec import mx
from dnpu.spec import numerics as nm

__all__ = ["generate", "GenerationStats", "Progress", "StepRecord", "KV_CACHES", "FORWARDS"]

KV_CACHES = ("none", "prefix", "dual")
FORWARDS = ("host", "npu")


class Progress(NamedTuple):
    """Passed to the ``progress`` callback after every step."""

    block: int  # 0-based index of the current block
    num_blocks: int
    step: int  # 1-based step within the block
    max_steps: int  # most steps this block can take (steps per block, or block_length with threshold)
    steps_done: int  # steps (forwards) run so far in the whole generation
    masked_left: int  # mask tokens left in the generated region, all rows


@dataclasses.dataclass
class GenerationStats:
    """Where the time of one :func:`generate` call went (seconds)."""

    forward_s: float = 0.0  # model forwards, including copying the block's logits to the host
    sample_s: float = 0.0  # dnpu.sampling.transfer: quantize + the step on the sampler
    other_s: float = 0.0  # everything else (noise, bookkeeping)
    wall_s: float = 0.0
    forwards: int = 0
    tokens: int = 0  # generated positions, B * gen_length
    forward_cycles: int = 0  # NPU cycles of the forwards (forward="npu" on a clocked backend)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s if self.wall_s > 0 else math.inf

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["tokens_per_s"] = self.tokens_per_s
        return d


@dataclasses.dataclass
class StepRecord:
    """One step of :func:`generate`, kept when ``step_log`` is a list (for ``dnpu bench``).

    The arrays are the exact inputs and output of that step's :func:`dnpu.sampling.transfer`,
    so the step can be replayed on another sampler; ``seq`` is the whole sequence before the
    step (what a ``kv_cache="none"`` forward saw)."""

    block: int  # 0-based block index
    step: int  # 1-based step within the block
    start: int  # the block's first position in the sequence
    forward_s: float  # this step's forward (host clock, CUDA synchronized)
    sample_s: float  # this step's sampling.transfer (host clock: quantize + the sampler)
    logits: object  # CPU torch tensor [B, L, V_padded] handed to transfer (noise included); NumPy model: array
    mask: np.ndarray  # bool [B, L]
    x: np.ndarray  # int64 [B, L], the block before the step
    k: np.ndarray | None  # LLaDA quotas [B], or None with threshold
    threshold: float | None
    x_new: np.ndarray  # int64 [B, L], the block after the step
    seq: object  # CPU int64 tensor [B, P + gen_length] before the step; NumPy model: array
    run_info: object = None  # dnpu.runtime.RunInfo of an NPU sampler (cycles: None on emu); None on torch
    forward_info: list | None = None  # forward="npu": the RunInfo of each row's forward
    kv: object = None  # forward="npu" with a KV cache: the step's dnpu.compiler.kvcache.KvStep


def _prompt_array(prompt_ids) -> np.ndarray:
    """prompt_ids (torch or NumPy, integer [B, P]) as an int64 NumPy array; torch is never
    imported just to check."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(prompt_ids, torch.Tensor):
        t = prompt_ids.detach()
        if t.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
            raise ValueError(f"prompt_ids must hold integer token ids; got {t.dtype}")
        arr = t.cpu().numpy()
    else:
        try:
            arr = np.asarray(prompt_ids)
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"prompt_ids must be an int tensor/array [B, P]; got {type(prompt_ids).__name__}") from e
        if arr.dtype.kind not in "iu":
            raise ValueError(f"prompt_ids must hold integer token ids; got dtype {arr.dtype}")
    if arr.ndim == 1:
        raise ValueError(f"prompt_ids must be [B, P] (a batch of prompts); got shape {tuple(arr.shape)}: "
                         "use prompt_ids[None] for one prompt")
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"prompt_ids must be a non-empty [B, P]; got shape {tuple(arr.shape)}")
    return arr.astype(np.int64)


class _Host:
    """The model's forward as the loop uses it, for a PyTorch model (`dnpu.model.LLaDA`: on its
    device, logits back as CPU tensors, tokens out as a tensor) or a NumPy one
    (`dnpu.model.NumpyLLaDA`: arrays throughout, torch never imported)."""

    def __init__(self, model) -> None:
        self.model = model
        params = getattr(model, "parameters", None)
        self.torch = params is not None
        self.device = next(params()).device if self.torch else None
        self.cuda = self.torch and self.device.type == "cuda"

    def __call__(self, ids: np.ndarray, **kw):
        if not self.torch:
            return self.model(ids, **kw)
        import torch

        return self.model(torch.from_numpy(np.ascontiguousarray(ids)).to(self.device), **kw)

    def logits(self, lg):
        """A block's logits on the CPU, the vocabulary padded (torch model: a tensor)."""
        if self.torch:
            import torch

            lg = lg.detach().to("cpu") if isinstance(lg, torch.Tensor) else torch.from_numpy(lg)
        return _pad_vocab(lg)

    def sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.device)

    def no_grad(self):
        if not self.torch:
            return contextlib.nullcontext()
        import torch

        return torch.no_grad()

    def noise(self, seed: int, temperature: float):
        """logits -> logits + temperature * g, g standard Gumbel from u ~ U(0, 1) in float64
        with a seeded generator: torch's CPU one for a torch model (the same for every
        sampler of it), NumPy's PCG64 for a NumPy model."""
        if self.torch:
            import torch

            g = torch.Generator(device="cpu").manual_seed(seed)

            def perturb(lg):
                u = torch.rand(lg.shape, generator=g, dtype=torch.float64)
                u = u.clamp_(min=torch.finfo(torch.float64).tiny)
                return lg.double() + temperature * -torch.log(-torch.log(u))
            return perturb
        rng = np.random.default_rng(seed)

        def perturb(lg):
            u = np.maximum(rng.random(lg.shape), np.finfo(np.float64).tiny)
            return lg.astype(np.float64) + temperature * -np.log(-np.log(u))
        return perturb

    def out(self, a: np.ndarray):
        """Tokens or a sequence as the caller's kind: a CPU tensor for a torch model."""
        if not self.torch:
            return a
        import torch

        return torch.from_numpy(a)


def _pad_vocab(logits):
    """Pad V up to a multiple of the MX block with each row's minimum logit: a pad never
    wins the argmax (ties go to the lowest index) and leaves the last block's scale as is.
    A torch tensor stays one; a NumPy array too."""
    V = logits.shape[-1]
    pad = -V % mx.DEFAULT_BLOCK
    if not pad:
        return logits
    if isinstance(logits, np.ndarray):
        fill = np.broadcast_to(logits.min(axis=-1, keepdims=True), (*logits.shape[:-1], pad))
        return np.concatenate([logits, fill], axis=-1)
    import torch

    fill = logits.amin(dim=-1, keepdim=True).expand(*logits.shape[:-1], pad)
    return torch.cat([logits, fill], dim=-1)


def generate(model, prompt_ids, *, gen_length: int, block_length: int, steps: int, sampler: str = "torch",
             threshold: float | None = None, kv_cache: str = "none", fmt: str = "e4m3", flow: str = "fused",
             temperature: float = 0.0, seed: int = 0, config="sim",
             progress: Callable[[Progress], None] | None = None, return_stats: bool = False,
             step_log: list | None = None, forward: str = "host", weights_fmt: str = "e4m3", compiled=None,
             kv_format: str = "bf16"):
    """Generate ``gen_length`` tokens after each prompt (see the module docstring).

    Args:
        model: a :class:`dnpu.model.LLaDA` (anything with ``config.mask_token_id`` and
            the ``forward(ids, kv=, start=, return_kv=)`` contract); its device and
            dtype are used as they are (e.g. ``model.to("cuda", torch.bfloat16)``). Or a
            :class:`dnpu.model.NumpyLLaDA` (no ``parameters()``: NumPy arrays throughout,
            torch is not imported).
        prompt_ids: int ``[B, P]`` (torch or NumPy); every row has the same length.
        gen_length, block_length, steps: LLaDA's schedule; ``block_length`` divides
            ``gen_length`` and the number of blocks divides ``steps``; the prompt plus
            ``gen_length`` fit in the model's ``config.max_sequence_length``.
        sampler: ``"torch"`` or an NPU backend (``"emu"``, ``"verilator"``, ``"pynq"``),
            passed to :func:`dnpu.sampling.transfer` as ``backend``.
        threshold: Fast-dLLM confidence threshold in (0, 1]; None = LLaDA quotas.
        kv_cache: ``"none"``, ``"prefix"`` or ``"dual"``.
        kv_format: how a cache refresh stores K/V (docs/NUMERICS.md section 16):
            ``"bf16"`` (default), an MX format, or ``"baos-<MX format>"``; needs a cache.
        fmt, flow, config: MX format of the logits, NPU flow, hardware profile.
        temperature, seed: Gumbel noise (module docstring); 0 = greedy.
        progress: called with a :class:`Progress` after every step.
        return_stats: also return a :class:`GenerationStats`.
        step_log: a list to append one :class:`StepRecord` per step to (the step's
            inputs, outputs, host times and, on an NPU sampler, its RunInfo with the
            cycle count); None (default): nothing is kept.
        forward: ``"host"`` (the model as it is) or ``"npu"`` (the whole forward on the
            sampler's NPU backend; needs an NPU sampler; with a KV cache, temperature 0: the
            cache lives in device memory, refreshed on the chip at each block's first step).
        weights_fmt: MX format of the linear weights with ``forward="npu"``.
        compiled: with ``forward="npu"``, a compiled-model directory (``dnpu compile``) to
            run instead of compiling ``model`` (its sequence length must be P + gen_length).

    Returns:
        int64 CPU tensor ``[B, P + gen_length]`` (prompt, then the generated tokens; a
        NumPy array for a NumPy model),
        or ``(tokens, stats)``.

    Raises:
        ValueError: an argument out of range, checked before any forward (a sequence
            longer than ``max_sequence_length`` included).
    """
    t_wall = time.perf_counter()
    sampler = sampling.check_choice(sampler, "sampler", sampling.BACKENDS)
    kv_cache = sampling.check_choice(kv_cache, "kv_cache", KV_CACHES)
    prompt = _prompt_array(prompt_ids)
    B, P = prompt.shape
    n_max = getattr(model.config, "max_sequence_length", None)
    # First, so that a user who fixes the schedule is not then told the length cannot work;
    # past the length the positions are untrained and the tokens wrong. schedule() below
    # names a gen_length that is not an int.
    if n_max is not None and isinstance(gen_length, numbers.Integral) and P + gen_length > n_max:
        raise ValueError(f"the prompt ({P} tokens) + gen_length ({gen_length}) = {P + gen_length} tokens exceed "
                         f"the model's max_sequence_length {n_max}: shorten the prompt or gen_length")
    steps_per_block = sampling.schedule(gen_length, block_length, steps)
    if threshold is not None:
        threshold = sampling.check_threshold(threshold)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature >= 0 \
            or math.isinf(temperature):
        raise ValueError(f"temperature must be a finite float >= 0; got {temperature!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int; got {seed!r}")
    forward = sampling.check_choice(forward, "forward", FORWARDS)
    kv_format = kvquant.check_kv_format(kv_format)
    if kv_format != "bf16" and kv_cache == "none":
        raise ValueError(f"kv_format={kv_format!r} stores a KV cache: choose kv_cache 'prefix' or 'dual'")
    if forward == "npu" and sampler == "torch":
        raise ValueError("forward='npu' runs on the sampler's backend: choose sampler 'emu', 'verilator' or 'pynq'")
    if compiled is not None and forward != "npu":
        raise ValueError("compiled= (a compiled model) applies to forward='npu' only")
    if forward == "npu" and kv_cache != "none" and temperature > 0:
        raise ValueError("kv_cache with forward='npu' needs temperature 0 (the whole step on the chip)")
    with contextlib.ExitStack() as stack:
        npu = None
        if forward == "npu":
            npu = _npu_forward(model, P + gen_length, config, weights_fmt, sampler, stack, compiled)
        return _generate(model, prompt, npu, gen_length=gen_length, block_length=block_length,
                         steps_per_block=steps_per_block, sampler=sampler, threshold=threshold, kv_cache=kv_cache,
                         fmt=fmt, flow=flow, temperature=temperature, seed=seed, config=config,
                         progress=progress, return_stats=return_stats, step_log=step_log, t_wall=t_wall,
                         kv_format=kv_format)


def _npu_forward(model, T: int, config, weights_fmt: str, backend: str, stack, compiled=None):
    """(the compiled forward, an opened device) for forward='npu'; ValueError when the
    model does not compile for the profile or `compiled` does not fit the generation."""
    from dnpu import runtime
    from dnpu.compiler import CompileError
    from dnpu.model.npu import NpuForward

    try:
        if compiled is not None:
            fw = NpuForward.load(compiled, config=config)
            if fw.seq_len != T:
                raise ValueError(f"{compiled} runs {fw.seq_len} tokens a forward; this generation needs {T} "
                                 f"(prompt + gen_length): compile it with --seq-len {T}")
        else:
            fw = NpuForward.compile(model, T, config=config, fmt=weights_fmt)
    except CompileError as e:
        raise ValueError(f"forward='npu': the model does not compile for the profile: {e}") from None
    dev = stack.enter_context(runtime.open(backend, config=fw.config))
    return fw, dev


def _npu_step(npu, seqs: np.ndarray, s: int, L: int, mask_id: int, quotas, i: int, threshold, want_logits: bool,
              finfo: list, kv=None):
    """One step of every row on the chip (NpuForward.step): (StepResult of the block, the
    block's logits as float32 values when asked, else None). Co-simulated steps are
    traced when logged, for dnpu bench's split of the cycles."""
    fw, dev = npu
    trace = want_logits and dev.budget_unit == "cycles"
    outs = []
    for b, row in enumerate(seqs):
        kw = {"k": int(quotas[b, i])} if quotas is not None else {"threshold": threshold}
        outs.append(fw.step(dev, row, s, L, mask_id, logits=want_logits, run_info=finfo, trace=trace, kv=kv, slot=b, **kw))
    r = sampling.StepResult(*(np.stack([o[j] for o in outs]) for j in range(3)))
    logits = nm.bf16_value(np.stack([o[3] for o in outs])).astype(np.float32) if want_logits else None
    return r, logits


def _generate(model, prompt, npu, *, gen_length, block_length, steps_per_block, sampler, threshold, kv_cache, fmt,
              flow, temperature, seed, config, progress, return_stats, step_log, t_wall, kv_format="bf16"):
    host = _Host(model)
    mask_id = int(model.config.mask_token_id)
    B, P = prompt.shape
    num_blocks = gen_length // block_length
    perturb = host.noise(seed, temperature) if temperature > 0 else None
    stats = GenerationStats(tokens=B * gen_length)

    x = np.concatenate([prompt, np.full((B, gen_length), mask_id, np.int64)], axis=1)
    steps_done = 0
    with host.no_grad():
        for blk in range(num_blocks):
            s = P + blk * block_length
            e = s + block_length
            quotas = None
            if threshold is None:
                quotas = sampling.num_transfer_tokens(x[:, s:e] == mask_id, steps_per_block)
            max_steps = steps_per_block if threshold is None else block_length
            kv = None
            for i in range(max_steps):
                mask_block = x[:, s:e] == mask_id
                if not mask_block.any():
                    break
                if quotas is not None and not quotas[:, i].any():
                    continue
                t0 = time.perf_counter()
                finfo: list = []
                infos: list = []
                on_chip = npu is not None and perturb is None     # the whole step, tokens back
                kv_step = None
                if on_chip:
                    if kv_cache != "none":     # prefix: the block and everything after it
                        n = block_length if kv_cache == "dual" else x.shape[1] - s
                        kv_step = KvStep("dual", kv_format, s, n) if kv is not None else KvStep("refresh", kv_format)
                        kv = True
                    r, logits = _npu_step(npu, x, s, block_length, mask_id, quotas, i, threshold,
                                          step_log is not None, finfo, kv_step)
                elif npu is not None:
                    fw, dev = npu
                    rows = [fw.run(dev, row, finfo) for row in x]
                    logits = nm.bf16_value(np.stack(rows)[:, s:e]).astype(np.float32)
                elif kv_cache == "none":
                    logits = host(x)[:, s:e]
                elif i == 0 or kv is None:  # block start: full forward, refresh the cache
                    full, kv = host(x, return_kv=True)
                    kv = kvquant.quantize_kv(kv, kv_format, config)
                    logits = full[:, s:e]
                elif kv_cache == "prefix":
                    logits = host(x[:, s:], kv=kv, start=s)[:, :block_length]
                else:  # dual
                    logits = host(x[:, s:e], kv=kv, start=s)
                if logits is not None:
                    logits = host.logits(logits)
                host.sync()
                t1 = time.perf_counter()
                stats.forward_s += t1 - t0
                stats.forwards += 1
                stats.forward_cycles += sum(inf.cycles or 0 for inf in finfo)
                x_block = x[:, s:e].copy()
                t2 = t3 = t1
                if not on_chip:
                    if perturb is not None:
                        logits = perturb(logits)
                    extra = {"run_info": infos} if step_log is not None else {}
                    commit = {"k": quotas[:, i]} if quotas is not None else {"threshold": threshold}
                    t2 = time.perf_counter()
                    stats.other_s += t2 - t1
                    r = sampling.transfer(logits, mask_block, x_block, backend=sampler, fmt=fmt, flow=flow,
                                          config=config, **commit, **extra)
                    t3 = time.perf_counter()
                    stats.sample_s += t3 - t2
                if step_log is not None:
                    step_log.append(StepRecord(
                        blk, i + 1, s, t1 - t0, t3 - t2, logits, mask_block, x_block.copy(),
                        None if quotas is None else quotas[:, i].copy(), threshold, r.x_new, host.out(x.copy()),
                        infos[-1] if infos else None, finfo or None, kv_step))
                x[:, s:e] = r.x_new
                steps_done += 1
                if progress is not None:
                    progress(Progress(blk, num_blocks, i + 1, max_steps, steps_done,
                                      int((x[:, P:] == mask_id).sum())))
    stats.wall_s = time.perf_counter() - t_wall
    stats.other_s = max(0.0, stats.wall_s - stats.forward_s - stats.sample_s)
    out = host.out(x)
    return (out, stats) if return_stats else out
