"""The package's layers (docs/ARCHITECTURE.md): every import in host/dnpu, those inside
functions included, goes to the module's own part or to a lower layer, and the import
graph has no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "host" / "dnpu"

# Lowest first. A part may import itself and the parts of lower layers, never a part of
# its own layer or a higher one. The package root (dnpu/__init__.py: the version and the
# public re-exports) is outside the layers.
LAYERS = [
    ("spec",),
    ("codegen",),
    ("emu", "compiler"),
    ("runtime",),
    ("sampling", "model", "ops"),
    ("generation",),
    ("perf",),
    ("verify",),
    ("bench",),
    ("cli",),
]
RANK = {part: i for i, parts in enumerate(LAYERS) for part in parts}
MAX_TOP_LEVEL = 14
MAX_LINES = 700


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The most specific dnpu module that `name` (a dotted path, maybe ending in a
    non-module attribute) names."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(mod: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".")
                base = base[:len(base) - node.level + (1 if is_pkg else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names = [f"{prefix}.{a.name}" for a in node.names] if prefix else []
        else:
            continue
        for n in names:
            if n == "dnpu" or n.startswith("dnpu."):
                target = _resolve(n, modules)
                if target is not None and target != mod:
                    out.append((target, node.lineno))
    return out


def _part(mod: str) -> str | None:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else None


def _graph() -> dict[str, list[tuple[str, int]]]:
    modules = _modules()
    return {m: _imports(m, p, modules) for m, p in modules.items()}


def test_every_part_has_a_layer():
    parts = {_part(m) for m in _modules()} - {None}
    assert parts <= set(RANK), f"parts of host/dnpu with no layer in this test: {sorted(parts - set(RANK))}"


def test_no_upward_or_sideways_import():
    bad = []
    for mod, targets in _graph().items():
        src = _part(mod)
        if src is None:                       # the package root
            continue
        for target, line in targets:
            dst = _part(target)
            if dst is not None and dst != src and RANK[dst] >= RANK[src]:
                bad.append(f"{mod}:{line} imports {target} (layer {RANK[dst]} >= {RANK[src]})")
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_no_import_cycle():
    graph = {m: sorted({t for t, _ in ts}) for m, ts in _graph().items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in graph.get(m, []):
            if state.get(t) == 1:
                return stack[stack.index(t):] + [t]
            if t not in state:
                found = visit(t)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in graph:
        if m not in state:
            cycle = visit(m)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_walker_sees_imports_inside_functions(tmp_path):
    """The checks above would pass vacuously if function-level imports were missed."""
    modules = {"dnpu": PKG / "__init__.py", "dnpu.cli": PKG / "cli" / "__init__.py",
               "dnpu.spec": PKG / "spec" / "__init__.py", "dnpu.spec.mx": PKG / "spec" / "mx.py"}
    f = tmp_path / "x.py"
    f.write_text("def f():\n    from dnpu.cli import main\n\n\ndef g():\n    from ..spec import mx\n")
    assert _imports("dnpu.spec.x", f, modules) == [("dnpu.cli", 2), ("dnpu.spec.mx", 6)]


def test_package_stays_small_enough_to_read():
    top = [p.name for p in PKG.iterdir() if p.name != "__pycache__"]
    assert len(top) <= MAX_TOP_LEVEL, f"host/dnpu has {len(top)} top-level entries: {sorted(top)}"
    long = {str(p.relative_to(PKG)): n for p in PKG.rglob("*.py")
            if "generated" not in p.parts and (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by job): {long}"


@pytest.mark.parametrize("part", sorted(RANK))
def test_part_exists(part):
    assert (PKG / part).is_dir() or (PKG / f"{part}.py").is_file()
