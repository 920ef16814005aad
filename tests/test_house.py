"""The house of glaviz/: small modules, no import cycle, and imports that flow one way.

The data flow is data -> models -> train / inference -> evaluation -> viz -> reports -> cli;
a module may import from its own layer or the ones before it, never from a later one (the
import of a later layer inside a function counts too: it is a cycle waiting to happen).
"""

from __future__ import annotations

import pytest
from house import MODULES, import_graph

MAX_LINES = 600

#: Layer of each top-level part of the package (the first name after ``glaviz.``).
LAYERS: dict[str, int] = {
    "_io": 0, "_lazy": 0, "errors": 0, "types": 0, "catalog": 0, "data": 0,
    "metrics": 1, "vector": 1, "calibration": 1, "baselines": 1,
    "models": 2,
    "train": 3, "inference": 3,
    "evaluation": 4, "compare": 4,
    "viz": 5,
    "reports": 6, "demo": 7, "cli": 8,
    "": 9,  # the glaviz namespace itself
}  # fmt: skip


_graph = import_graph  # a name the self-check below can patch


def _layer(module: str) -> int:
    part = module.split(".")[1] if "." in module else ""
    if part not in LAYERS:
        pytest.fail(f"{module}: a new top-level part of glaviz; give it a layer in LAYERS")
    return LAYERS[part]


def test_no_module_over_600_lines() -> None:
    long = {n: len(p.read_text().splitlines()) for n, p in MODULES.items()}
    assert {n: k for n, k in long.items() if k > MAX_LINES} == {}


def test_no_import_cycle() -> None:
    graph = _graph()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            pytest.fail(f"import cycle: {' -> '.join([*path[path.index(name) :], name])}")
        if name in done:
            return
        for dep in sorted(graph[name]):
            # a package importing its own submodules (its __init__) is not a cycle
            if not dep.startswith(name + "."):
                visit(dep, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_imports_flow_one_way() -> None:
    upward = [
        f"{m} -> {d}"
        for m, deps in sorted(_graph().items())
        for d in sorted(deps)
        if _layer(d) > _layer(m) and d != "glaviz"  # the lazy namespace loads nothing itself
    ]
    assert upward == []


def test_the_checker_sees_a_cycle_and_an_upward_import(monkeypatch) -> None:
    """The two tests above can fail: a fake data module importing viz is caught by both."""
    graph = _graph()
    graph["glaviz.data"] = graph["glaviz.data"] | {"glaviz.viz"}
    graph["glaviz.viz"] = graph["glaviz.viz"] | {"glaviz.data"}
    monkeypatch.setattr(f"{__name__}._graph", lambda: graph)
    with pytest.raises(pytest.fail.Exception, match="import cycle"):
        test_no_import_cycle()
    with pytest.raises(AssertionError, match="glaviz.data -> glaviz.viz"):
        test_imports_flow_one_way()
