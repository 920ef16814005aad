"""The layout of glaviz/models: leaves at the bottom, no import cycle, small modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import glaviz.models

MODELS_DIR = Path(glaviz.models.__file__).parent
MAX_LINES = 600


def _imports() -> dict[str, set[str]]:
    """Module stem -> stems of the glaviz.models modules it imports (anywhere in the file)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(MODELS_DIR.glob("*.py")):
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith("glaviz.models."):
                    deps.add(node.module.split(".")[2])
                elif node.module == "glaviz.models":
                    deps.update(alias.name for alias in node.names)
            elif isinstance(node, ast.Import):
                deps.update(
                    a.name.split(".")[2] for a in node.names if a.name.startswith("glaviz.models.")
                )
        graph[path.stem] = deps
    return graph


def test_no_import_cycle_inside_models() -> None:
    graph = {k: v for k, v in _imports().items() if k != "__init__"}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            pytest.fail(f"import cycle: {' -> '.join([*path, name])}")
        if name in done or name not in graph:
            return
        for dep in sorted(graph[name]):
            visit(dep, [*path, name])
        done.add(name)

    for name in graph:
        visit(name, [])


def test_leaves_and_the_registry() -> None:
    graph = _imports()
    assert graph["fused"] == set(), "fused.py is a leaf over tensors"
    assert graph["blocks"] == {"fused"}
    assert graph["base"] == {"blocks"}
    importers = sorted(k for k, deps in graph.items() if "registry" in deps)
    assert importers == ["__init__", "checkpoint"], "no model module imports the registry"


@pytest.mark.parametrize("path", sorted(MODELS_DIR.glob("*.py")), ids=lambda p: p.name)
def test_modules_stay_small(path: Path) -> None:
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.name} has {n} lines (at most {MAX_LINES})"
