"""The lazy top-level namespaces: one list of names (the ``__init__.pyi`` stubs), light imports."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import glaviz
import glaviz.viz

ROOT = Path(__file__).resolve().parents[1]


def _stub_names(package: str) -> dict[str, str]:
    """Public name -> module it comes from, read from the package's ``__init__.pyi``."""
    path = ROOT.joinpath(*package.split("."), "__init__.pyi")
    names = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            assert node.level == 1, f"{path}: only `from .x import y` is read at run time"
            for alias in node.names:
                assert alias.asname is None, f"{path}: {alias.name} renamed"
                names[alias.name] = f"{package}.{node.module}" if node.module else package
    return names


@pytest.mark.parametrize("package", ["glaviz", "glaviz.viz"])
def test_the_stub_is_the_namespace(package):
    module = importlib.import_module(package)
    names = _stub_names(package)
    extra = {"__version__"} if package == "glaviz" else set()
    assert sorted(module.__all__) == module.__all__
    assert set(module.__all__) == set(names) | extra
    assert dir(module) == module.__all__
    for name, source in names.items():
        value = getattr(module, name)
        if source == package:  # a submodule
            assert value is importlib.import_module(f"{package}.{name}")
        else:
            assert value is getattr(importlib.import_module(source), name), name
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


def test_import_glaviz_is_light():
    code = (
        "import sys, glaviz, glaviz.viz; "
        "heavy = ('numpy', 'torch', 'xarray', 'rasterio', 'pandas', 'geopandas', 'ipyleaflet', "
        "'holoviews', 'glaviz.data', 'glaviz.viz.maps'); "
        "print([m for m in heavy if m in sys.modules]); "
        "glaviz.scale; print('xarray' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "True False"]


def test_version():
    from packaging.version import Version

    assert str(Version(glaviz.__version__)) == glaviz.__version__  # PEP 440, normalised
    assert "__version__" in dir(glaviz)


def test_functions_are_looked_up_on_every_access(monkeypatch):
    """Replacing a function in its module replaces it in the namespace too (no stale cache)."""
    import glaviz.evaluation
    import glaviz.viz.plots

    assert glaviz.evaluate is glaviz.evaluation.evaluate  # resolved once

    def fake(*args, **kwargs):
        return "fake"

    monkeypatch.setattr(glaviz.evaluation, "evaluate", fake)
    monkeypatch.setattr(glaviz.viz.plots, "metric_bars", fake)
    assert glaviz.evaluate is fake and glaviz.viz.metric_bars is fake


def _public_functions():
    """(name, function) of every public function and public method of the two namespaces."""
    import inspect

    import glaviz.viz

    for mod in (glaviz, glaviz.viz):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isfunction(obj):
                yield name, obj
            elif inspect.isclass(obj) and obj.__module__.startswith("glaviz"):
                for attr, member in vars(obj).items():
                    if inspect.isfunction(member) and (attr == "__init__" or attr[0] != "_"):
                        yield f"{name}.{attr}", member


def test_no_bare_any_in_public_signatures() -> None:
    """Public parameters and returns name their types (``**kwargs: Any`` passes options on)."""
    import ast
    import inspect
    import textwrap

    bare = []
    checked = 0
    for name, func in _public_functions():
        node = ast.parse(textwrap.dedent(inspect.getsource(func))).body[0]
        assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        checked += 1
        args = node.args
        named = args.posonlyargs + args.args + args.kwonlyargs
        named += [args.vararg] if args.vararg else []
        for a in named:
            if a.annotation is not None and ast.unparse(a.annotation) == "Any":
                bare.append(f"{name}({a.arg})")
        if node.returns is not None and ast.unparse(node.returns) == "Any":
            bare.append(f"{name} -> Any")
    assert checked > 40 and bare == []
