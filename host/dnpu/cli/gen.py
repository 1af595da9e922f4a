"""`dnpu generate`: text from a model with the sampling step on an NPU backend (dnpu.generation),
and the model and generation options it shares with `dnpu eval` and `dnpu check-generate`."""

from __future__ import annotations

import argparse

from dnpu import sampling
from dnpu.cli.common import (UsageError, add_serial_args, command, env_backend, non_negative, one_of, output_dir,
                             output_file, positive, progress_bar, write_json)
from dnpu.compiler import FLOWS
from dnpu.generation import FORWARDS, KV_CACHES
from dnpu.model.kvquant import KV_FORMATS_HELP


def add_schedule_args(s: argparse.ArgumentParser) -> None:
    """The generation schedule: length, blocks, steps, commit rule, KV cache (default: the model's)."""
    s.add_argument("--gen-length", dest="gen_length", type=positive, help="tokens to generate (default: the model's)")
    s.add_argument("--block-length", dest="block_length", type=positive, help="block size (default: the model's)")
    s.add_argument("--steps", type=positive, help="sampling steps over all blocks (default: the model's)")
    s.add_argument("--threshold", type=float, help="Fast-dLLM confidence threshold (default: LLaDA quotas)")
    s.add_argument("--kv-cache", dest="kv_cache", default="none", choices=KV_CACHES)
    s.add_argument("--kv-format", dest="kv_format", default="bf16",
                   help=f"how a cache refresh stores K/V: {KV_FORMATS_HELP} (default bf16; needs --kv-cache)")


def add_model_args(s: argparse.ArgumentParser, backend_default: str, numpy_forward: bool = False) -> None:
    """The options of every command that generates: sampler, model, generation settings, device.
    numpy_forward: the command also runs the model's forward in NumPy (`--forward numpy`, and
    `--forward host` where PyTorch is not installed)."""
    s.add_argument("--backend", default=backend_default,
                   help=f"sampler: {one_of(sampling.BACKENDS)} (default {backend_default})")
    add_serial_args(s)
    s.add_argument("--model", help="model directory (config.json, *.safetensors, tokenizer.json); "
                                   "default: the shipped tiny model models/tiny-add")
    add_schedule_args(s)
    if numpy_forward:
        s.add_argument("--forward", default="host", choices=FORWARDS + ("numpy",),
                       help="where the model forward runs: host (default: PyTorch when it is installed, else "
                            "NumPy), numpy (NumPy even with PyTorch: float32 arithmetic, activations rounded to "
                            "--dtype as PyTorch's model rounds them), or npu (the whole step on --backend)")
    else:
        s.add_argument("--forward", default="host", choices=FORWARDS,
                       help="where the model forward runs: host (PyTorch, default) or npu (the whole step on "
                            "--backend)")
    s.add_argument("--weights-fmt", dest="weights_fmt", default="e4m3",
                   help="MX format of the linear weights with --forward npu")
    s.add_argument("--compiled", help="with --forward npu: a directory from `dnpu compile` to run instead of "
                                      "compiling the model")
    s.add_argument("--flow", default="fused", choices=FLOWS, help="NPU sampling flow")
    s.add_argument("--fmt", default="e4m3", help="MX format of the logits")
    s.add_argument("--config", default="sim", help="hardware profile of NPU backends")
    s.add_argument("--temperature", type=float, default=0.0, help="Gumbel noise temperature (0 = greedy)")
    s.add_argument("--seed", type=non_negative, default=0, help="seed of the noise and of the held-out draw")
    s.add_argument("--dtype", default="bf16", help="model dtype: bf16 (default) or fp32")
    s.add_argument("--device", help="torch device of the model (default: cuda when available, else cpu)")
    s.add_argument("--threads", type=positive, help="CPU threads for the forward (default: torch's; PyTorch only)")
    s.add_argument("--json", type=output_file, help="also write the result to this file")


def torch_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def numpy_model(args: argparse.Namespace) -> bool:
    """Whether this run's host model is the NumPy one: --forward numpy, or PyTorch absent
    (--forward host or npu: the NPU's compile reads the weights from either model)."""
    return args.forward == "numpy" or not torch_installed()


def load_model(args: argparse.Namespace, numpy_ok: bool = False):
    """(model, tokenizer, model_info) of --model on --device in --dtype, with --threads.
    numpy_ok: the caller runs a `dnpu.model.NumpyLLaDA` too, loaded when `numpy_model`."""
    from dnpu.model import model_info

    args.backend = sampling.check_choice(args.backend, "--backend", sampling.BACKENDS)   # before the load
    if numpy_ok and numpy_model(args):
        from dnpu.model import load_numpy

        if args.backend == "torch":
            raise UsageError(need_torch("--backend torch (the PyTorch sampler)"))
        for opt, val in (("--device", args.device), ("--threads", args.threads)):
            if val is not None:
                raise UsageError(need_torch(f"{opt} (PyTorch's)") if not torch_installed() else
                                 f"{opt} applies to the PyTorch model; --forward numpy runs on the CPU")
        model, tok = load_numpy(args.model, dtype=args.dtype)
        return model, tok, model_info(args.model)
    import torch

    from dnpu.model import load

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    model, tok = load(args.model, device=args.device, dtype=args.dtype)
    return model, tok, model_info(args.model)


def model_task(args: argparse.Namespace, info: dict) -> str:
    """--task, else the task the model was trained on."""
    task = getattr(args, "task", None) or info.get("task")
    if not task:
        raise ValueError("the model names no task (no dnpu_task.json): pass --task, e.g. --task add3")
    return task


def gen_settings(args: argparse.Namespace, info: dict, task_name: str | None) -> dict:
    """The keyword arguments of dnpu.generate: the task's defaults, overridden by the options given."""
    from dnpu.model.tasks import generation_defaults, get_task

    d = generation_defaults(info, get_task(task_name or info.get("task") or "add3"))
    for k in ("gen_length", "block_length", "steps"):
        v = getattr(args, k)
        if v is not None:
            d[k] = v
    d.update(threshold=args.threshold, kv_cache=args.kv_cache, kv_format=args.kv_format, flow=args.flow, fmt=args.fmt,
             temperature=args.temperature, config=args.config, weights_fmt=args.weights_fmt,
             forward="host" if args.forward == "numpy" else args.forward,
             compiled=args.compiled)
    return d


def need_torch(what: str) -> str:
    return f"{what} needs PyTorch, which is not installed: pip install 'dnpu[torch]'"


def dtype_name(model) -> str:
    return str(model.dtype).removeprefix("torch.")


def where(model) -> str:
    """Where the host forward ran: the torch device type, or "numpy"."""
    return "numpy" if not hasattr(model, "parameters") else model.device.type


def _generate(args: argparse.Namespace, model, ids: list[int], settings: dict):
    """dnpu.generate on one prompt, drawing the steps of all blocks as one bar."""
    from dnpu.generation import generate

    with progress_bar(f"generate {args.backend}", unit="step") as bar:
        prog, last = None, [0, 0]
        if bar is not None:
            def prog(p):  # noqa: E306 - a threshold block may end before its last step
                last[:] = [p.block * p.max_steps + p.step, p.num_blocks * p.max_steps]
                bar(*last, f"block {p.block + 1}/{p.num_blocks}")
        out, stats = generate(model, [ids], sampler=args.backend, progress=prog, return_stats=True,
                              seed=args.seed, **settings)
        if bar is not None and last[0] < last[1]:
            bar(last[1], last[1], "done")
    return out, stats


def _cmd_generate(args: argparse.Namespace) -> int:
    model, tok, info = load_model(args, numpy_ok=True)
    settings = gen_settings(args, info, None)
    ids = tok.encode(args.prompt)
    if not ids:
        raise ValueError("the prompt is empty")
    out, stats = _generate(args, model, ids, settings)
    gen = out[0, len(ids):].tolist()
    eos = tok.eos_token_id
    completion = tok.decode(gen[:gen.index(eos)] if eos in gen else gen)
    print(args.prompt + completion)
    if args.forward == "npu":
        npu = ""
        if stats.forward_cycles:
            from dnpu.spec import config as config_mod

            mhz = config_mod.load(args.config).clock.f_clk_mhz
            npu = (f"; the forwards took {stats.forward_cycles:,} NPU cycles = "
                   f"{stats.forward_cycles / (mhz * 1e3):.2f} ms at {mhz:g} MHz")
        print(f"{stats.forwards} forwards and samplings on {args.backend}: {stats.wall_s:.3f} s of host time"
              f"{npu} (`dnpu bench --forward npu` splits the step)")
    else:
        print(f"{stats.forwards} forwards {stats.forward_s * 1e3:.1f} ms, sampling on {args.backend} "
              f"{stats.sample_s * 1e3:.1f} ms, other {stats.other_s * 1e3:.1f} ms; "
              f"{stats.tokens} tokens in {stats.wall_s:.3f} s = {stats.tokens_per_s:.1f} tokens/s "
              f"({where(model)}, {dtype_name(model)})")
    write_json(args.json, {
        "prompt": args.prompt, "completion": completion, "text": args.prompt + completion,
        "tokens": gen, "backend": args.backend, "model": str(args.model or "shipped"),
        "settings": settings | {"seed": args.seed}, "timing": stats.as_dict(),
        "device": where(model), "dtype": dtype_name(model),
    })
    return 0


def register(sub) -> None:
    register_compile(sub)
    s = command(sub, "generate", _cmd_generate, "generate text with the sampling step on an NPU backend")
    s.add_argument("--prompt", required=True, help='prompt text, e.g. "123+456="')
    add_model_args(s, env_backend(), numpy_forward=True)


def _cmd_compile(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dnpu.compiler import CompileError
    from dnpu.model import load_numpy
    from dnpu.model.npu import NpuForward

    out = Path(args.out)
    if out.exists() and not (out / "manifest.json").is_file():    # before the compile, not after
        raise UsageError(f"-o {out} exists and is not a compiled model (no manifest.json): refusing to replace it")
    if torch_installed():
        from dnpu.model import load

        model, tok = load(args.model, device="cpu", dtype="fp32")
    else:                       # the same weights (fp32), read into NumPy
        model, tok = load_numpy(args.model, dtype="fp32")
    n_max = model.config.max_sequence_length
    T = args.seq_len if args.seq_len is not None else n_max
    if T > n_max:
        raise UsageError(f"--seq-len {T} is longer than the model's max_sequence_length {n_max}")
    try:
        fw = NpuForward.compile(model, T, config=args.config, fmt=args.weights_fmt)
    except CompileError as e:
        raise ValueError(f"the model does not compile for profile {args.config}: {e}") from None
    src = Path(args.model) if args.model else None
    from dnpu.model import DEFAULT_MODEL_DIR

    tokenizer = (src or Path(DEFAULT_MODEL_DIR)) / "tokenizer.json"
    try:
        out = fw.save(out, model.config, tokenizer if tokenizer.is_file() else None)
    except OSError as e:
        raise UsageError(f"cannot write {out}: {e.strerror or e}") from e
    p = fw.program
    print(f"{out}: forward of {T} tokens for profile {fw.config.label}, {len(p.kernel.binary) // 4} instructions, "
          f"weights {p.weights_nbytes} bytes ({p.fmt}), MLP chunks of {p.mlp_chunk}, key tile {p.key_tile}")
    return 0


def register_compile(sub) -> None:
    s = command(sub, "compile", _cmd_compile, "compile a model's whole forward for an NPU profile into a directory "
                                               "the runtime loads (program, weights image, manifest)")
    s.add_argument("--model", help="model directory (default: the shipped tiny model)")
    s.add_argument("--config", default="sim", help="hardware profile (default sim)")
    s.add_argument("--weights-fmt", dest="weights_fmt", default="e4m3", help="MX format of the linear weights")
    s.add_argument("--seq-len", dest="seq_len", type=positive, help="tokens per forward (default: the model's "
                                                               "max_sequence_length)")
    s.add_argument("-o", "--out", required=True, type=output_dir,
                   help="output directory (replaced if it holds a compiled model)")
