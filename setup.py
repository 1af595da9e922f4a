"""The build step pyproject.toml cannot express: the wheel carries the repository's data
folders (hw/, cosim/, models/, bitstreams/: the hardware tables, the RTL and co-simulation
harness sources, the shipped models, the board files) inside the package as dnpu/_data/,
where dnpu.spec.resources finds them. Which files: those MANIFEST.in selects (the sdist's
list), so the sdist and the wheel carry the same data. An editable install copies nothing:
the package reads the source tree."""

import ast
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
RESOURCES = ROOT / "host" / "dnpu" / "spec" / "resources.py"


def _constant(name: str):
    """A literal constant of dnpu.spec.resources, read without importing the package (the
    build environment need not have NumPy)."""
    for node in ast.parse(RESOURCES.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise RuntimeError(f"{RESOURCES} defines no {name}")


class BuildPyWithData(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        dirs = _constant("DATA_DIRS")
        dest = Path(self.build_lib) / "dnpu" / _constant("DATA_PACKAGE_DIR")
        shutil.rmtree(dest, ignore_errors=True)     # no file left from an earlier build of this tree
        self.run_command("egg_info")
        files = sorted(f for f in self.get_finalized_command("egg_info").filelist.files
                       if Path(f).parts[0] in dirs)
        if not any(Path(f).parts[0] == "hw" for f in files):
            raise RuntimeError("MANIFEST.in selected no file under hw/: the wheel would have no hardware tables")
        for f in files:
            out = dest / f
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, out)


setup(cmdclass={"build_py": BuildPyWithData})
