"""The package's import graph follows DESIGN.md's layers: a module imports only from its own layer or
below, and no two subpackages import each other. Checked on the source (AST), imports inside functions
included, so a back-edge cannot hide in a lazy import."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "distalign"

#: bottom to top; a subpackage may import from its own layer or any layer below
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "records"),
    ("survey", "metrics"),
    ("prompts",),
    ("methods", "engines"),
    ("scoring", "calibration"),
    ("report",),
    ("tracking",),
    ("sweep",),
    ("cli",),
)
LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}
#: the package's own top-level modules (``distalign/__init__.py``: only the version)
TOP_LEVEL = {"__init__"}


def _subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "distalign" else None


def _is_part(name: str) -> bool:
    return (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file()


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import statement of a file, at any depth."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    package = list(rel.parts if path.name == "__init__.py" else rel.parts[:-1])
    if path.name == "__init__.py":
        package = package[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.append((node.lineno, module))
            # ``from distalign import survey`` imports the subpackage named by the alias
            if module == "distalign":
                out += [(node.lineno, f"distalign.{a.name}") for a in node.names if _is_part(a.name)]
    return out


def _edges() -> list[tuple[str, str, str, int]]:
    """(importing subpackage, imported subpackage, file, line) for every cross-subpackage import."""
    edges = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        me = rel.parts[0].removesuffix(".py")
        for line, module in _imports(path):
            other = _subpackage(module)
            if other is not None and other != me:
                edges.append((me, other, str(rel), line))
    return edges


def test_every_subpackage_has_a_layer() -> None:
    names = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    names -= {"__pycache__"} | TOP_LEVEL
    assert sorted(names - set(LAYER_OF)) == []


@pytest.mark.parametrize("edge", _edges(), ids=lambda e: f"{e[2]}:{e[3]}")
def test_imports_go_down_the_layers(edge: tuple[str, str, str, int]) -> None:
    me, other, where, line = edge
    assert other in LAYER_OF, f"{where}:{line} imports an unknown subpackage {other!r}"
    assert LAYER_OF[other] <= LAYER_OF[me], (
        f"{where}:{line}: {me} (layer {LAYER_OF[me]}) imports {other} (layer {LAYER_OF[other]}), "
        "a higher layer"
    )


def test_no_two_subpackages_import_each_other() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for me, other, _, _ in _edges():
        graph[me].add(other)
    mutual = sorted({tuple(sorted((a, b))) for a in graph for b in graph[a] if a in graph.get(b, ())})
    assert mutual == []


def test_no_module_imports_itself_in_a_cycle() -> None:
    """Module-level import cycles (within a subpackage too) make import order matter; there are none."""
    graph: dict[str, set[str]] = defaultdict(set)
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if path.name == "__init__.py" else rel.parts)
        modules[name] = path
    for name, path in modules.items():
        for _, module in _imports(path):
            while module and module not in modules:
                module = module.rpartition(".")[0]
            if module and module != name:
                graph[name].add(module)
    seen: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        seen[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if seen.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in seen and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        seen[node] = 2
        return None

    for start in sorted(modules):
        if start not in seen and (cycle := visit(start)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


#: third-party packages only these subpackages may import (DESIGN.md: the borders of the layers)
BORDERS: dict[str, frozenset[str]] = {
    "mlflow": frozenset({"tracking"}),
    "ray": frozenset({"sweep"}),
    "torch": frozenset({"engines"}),
    "transformers": frozenset({"engines"}),
    "vllm": frozenset({"engines"}),
    "litellm": frozenset({"engines"}),
}
#: subpackages of one layer that must not know each other
APART: tuple[tuple[str, str], ...] = (("methods", "engines"),)


def _third_party_imports() -> list[tuple[str, str, str, int]]:
    """(importing subpackage, guarded package, file, line) for every import of a guarded package."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top in BORDERS:
                out.append((me, top, str(path.relative_to(PACKAGE)), line))
    return out


@pytest.mark.parametrize("use", _third_party_imports(), ids=lambda u: f"{u[2]}:{u[3]}")
def test_third_party_packages_stay_behind_their_border(use: tuple[str, str, str, int]) -> None:
    me, package, where, line = use
    assert me in BORDERS[package], (
        f"{where}:{line} imports {package}, allowed only in {sorted(BORDERS[package])}"
    )


@pytest.mark.parametrize("pair", APART, ids=lambda p: f"{p[0]}-{p[1]}")
def test_methods_and_engines_do_not_import_each_other(pair: tuple[str, str]) -> None:
    crossing = [f"{w}:{ln}" for me, other, w, ln in _edges() if {me, other} == set(pair)]
    assert crossing == []
