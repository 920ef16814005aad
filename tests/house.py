"""The import graph of glaviz/, for the house tests (tests/test_house.py, tests/models)."""

from __future__ import annotations

import ast
from pathlib import Path

import glaviz

ROOT = Path(glaviz.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = ("glaviz", *path.relative_to(ROOT).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


#: Dotted module name (a package by its own name) -> its file.
MODULES = _modules()


def owner(name: str) -> str:
    """The module an imported dotted name lives in (``glaviz.data.scale`` -> ``glaviz.data``)."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def import_graph() -> dict[str, set[str]]:
    """Module -> the glaviz modules it imports, anywhere in the file (inside functions too)."""
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("glaviz"):
                assert node.module is not None
                deps.update(owner(f"{node.module}.{a.name}") for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(owner(a.name) for a in node.names if a.name.startswith("glaviz"))
        graph[name] = deps - {name}
    return graph
