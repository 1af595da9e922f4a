"""scripts/gpu_checks.sh: the one-run GPU checks for a machine with a CUDA GPU."""

import os
import subprocess
import sys

import pytest
import torch

from conftest import REPO


def test_gpu_checks_refuse_a_machine_without_cuda(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: the script would run the real checks")
    r = subprocess.run(["bash", str(REPO / "scripts" / "gpu_checks.sh"), str(tmp_path / "out")],
                       env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "sees no CUDA device" in r.stderr
    assert not (tmp_path / "out" / "pytest_gpu.txt").exists()       # stopped before any check
