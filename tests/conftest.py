import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def shared_data() -> Path:
    d = SHARED / "data"
    if not d.is_dir():
        pytest.skip(f"shared test data not found at {d}")
    return d


@pytest.fixture
def hw_copy(tmp_path, monkeypatch) -> Path:
    """A private copy of hw/ (TOML tables only) that DNPU_HW_DIR points at."""
    dst = tmp_path / "hw"
    shutil.copytree(REPO / "hw", dst, ignore=shutil.ignore_patterns("rtl"))
    monkeypatch.setenv("DNPU_HW_DIR", str(dst))
    return dst


@pytest.fixture(scope="session")
def model():
    """The sim profile's co-simulation library (a cosim.BuildResult), built once per RTL
    change and shared by every test and xdist worker (the cache locks a build)."""
    from dnpu.runtime import cosim

    if shutil.which("make") is None or shutil.which(os.environ.get("CXX", "g++")) is None:
        pytest.skip("a C++ compiler and make are needed to build the co-simulation model")
    try:
        cosim.verilator_exe()
    except cosim.CosimBuildError as e:
        pytest.skip(str(e))
    return cosim.ensure_built("sim")


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test (xdist workers share the cores)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def pynq_standin_module():
    """tests/pynq_standin's `pynq` as a module object of its own, without putting it on
    sys.path as `pynq` (for its parse_hwh in file checks)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("pynq_standin_for_tests", REPO / "tests" / "pynq_standin" / "pynq" /
                                                  "__init__.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def dnpu_cli() -> list[str]:
    """The installed console script (the venv's), so tests exercise what users run."""
    exe = shutil.which("dnpu")
    if exe is None:
        pytest.skip("the dnpu console script is not on PATH (run through `make test`)")
    return [exe]


os.environ.setdefault("PYTHONHASHSEED", "0")
