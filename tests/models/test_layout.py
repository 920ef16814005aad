"""The layout of glaviz/models: leaves at the bottom, the registry imported only above them."""

from __future__ import annotations

from house import MODULES, import_graph


def _models_graph() -> dict[str, set[str]]:
    """Module stem -> stems of the glaviz.models modules it imports (``__init__``: the package).

    No import cycle and no module over 600 lines: ``tests/test_house.py``, for all of glaviz.
    """
    ours = [n for n in MODULES if n == "glaviz.models" or n.startswith("glaviz.models.")]
    stem = {n: n.split(".")[2] if n.count(".") == 2 else "__init__" for n in ours}
    graph = import_graph()
    return {stem[n]: {stem[d] for d in graph[n] if d in stem} for n in ours}


def test_leaves_and_the_registry() -> None:
    graph = _models_graph()
    assert graph["fused"] == set(), "fused.py is a leaf over tensors"
    assert graph["blocks"] == {"fused"}
    assert graph["base"] == {"blocks"}
    importers = sorted(k for k, deps in graph.items() if "registry" in deps)
    assert importers == ["__init__", "checkpoint"], "no model module imports the registry"
