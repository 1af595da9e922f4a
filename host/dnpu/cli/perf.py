"""`dnpu project`: the analytical performance model (dnpu.perf) at LLaDA-8B scale, beside the paper
and a GPU. Its check against the RTL, `dnpu check-perf`, is in dnpu.cli.verify."""

from __future__ import annotations

import argparse

from dnpu.cli.common import command, output_file, positive, write_json
from dnpu.compiler import MODES


def _cmd_project(args: argparse.Namespace) -> int:
    from dnpu.perf import project

    p = project.projection(args.config, B=args.B, L=args.L, V=args.V, mode=args.mode, fmt=args.fmt,
                           gpu=not args.no_gpu, gpu_iters=args.gpu_iters,
                           seq_len=None if args.no_forward else args.seq_len, kv_fmt=args.kv_format)
    print(project.format_table(p))
    write_json(args.json, p)
    return 0


def register(sub) -> None:
    s = command(sub, "project", _cmd_project,
                "analytical sampling latency and whole step at LLaDA-8B scale beside the paper and a GPU")
    s.add_argument("--config", default="asic-2048", help="hardware profile (default: asic-2048)")
    s.add_argument("--B", type=positive, default=16, help="batch rows (default 16)")
    s.add_argument("--L", type=positive, default=32, help="positions per row (block length, default 32)")
    s.add_argument("--V", type=positive, default=126464, help="vocabulary (default 126464, LLaDA-8B)")
    s.add_argument("--mode", default="topk", choices=MODES, help="commit mode")
    s.add_argument("--fmt", default="e4m3", help="MX format of the logits")
    s.add_argument("--no-gpu", action="store_true", help="skip the GPU timing even when CUDA is available")
    s.add_argument("--gpu-iters", type=positive, default=50, help="timed GPU iterations (median)")
    s.add_argument("--seq-len", type=positive, default=128,
                   help="tokens of the sequence for the whole step of LLaDA-8B (default 128; its block is --L)")
    s.add_argument("--no-forward", action="store_true", help="only the sampling step and the linear layers")
    s.add_argument("--kv-format", help="also the whole step's dual KV cache in this format (bf16, an MX format or "
                                       "baos-<MX format>): a refresh and a later step, their cycles and KV bytes")
    s.add_argument("--json", type=output_file, help="also write the projection to this file")
