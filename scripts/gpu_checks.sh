#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one run, for a machine that has one (a lent device
# machine, or any CUDA box). It uses the python3 there that holds a CUDA build of torch,
# with host/ on PYTHONPATH: no venv and no Verilator (the NPU side is the emulator; its
# cycle counts are the analytical model's, which check-perf ties to the RTL).
#
#   bash scripts/gpu_checks.sh OUTDIR        (PYTHON=... to pick another interpreter)
#
# Writes into OUTDIR: pytest_gpu.txt (the gpu-marked tests, which must pass, not skip),
# bench.json / bench.png / bench.txt (dnpu bench: the forward and PyTorch sampling timed
# with CUDA events) and project.json / project.txt (dnpu project: the asic-2048
# projection beside the GPU's own sampling time at LLaDA scale). Exit status 3 when
# torch sees no CUDA device, else the first failing step's.
set -euo pipefail
out=${1:?usage: bash scripts/gpu_checks.sh OUTDIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$repo"
export PYTHONPATH="$repo/host${PYTHONPATH:+:$PYTHONPATH}"
py=${PYTHON:-python3}

"$py" - <<'EOF'
import sys
import torch
if not torch.cuda.is_available():
    print(f"gpu_checks: torch {torch.__version__} sees no CUDA device", file=sys.stderr)
    sys.exit(3)
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")
EOF

# -rs lists skips; a gpu test that skips on a GPU machine is a failure of this script
"$py" -m pytest -m gpu -rs -q -p no:cacheprovider tests/test_sampling_torch.py tests/test_perf.py \
    tests/test_generate.py 2>&1 | tee "$out/pytest_gpu.txt"
if grep -q "SKIPPED" "$out/pytest_gpu.txt"; then
    echo "gpu_checks: a gpu test skipped on a machine with a GPU (see pytest_gpu.txt)" >&2
    exit 1
fi
"$py" -m dnpu.cli bench --backend emu --json "$out/bench.json" --plot "$out/bench.png" 2>&1 \
    | tee "$out/bench.txt"
"$py" -m dnpu.cli project --config asic-2048 --B 16 --L 32 --V 126464 --json "$out/project.json" 2>&1 \
    | tee "$out/project.txt"
echo "gpu_checks: done; results in $out"
