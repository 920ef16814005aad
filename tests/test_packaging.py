"""Packaging habits: the package list, the torch pin in the Makefile, conda mirroring pip."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import tomllib
import yaml

import glaviz

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(req: str) -> str:
    return re.split(r"[<>=\[ ;]", req, maxsplit=1)[0].lower()


def test_every_package_is_listed():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "glaviz").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert found | {"glaviz.data_catalog", "glaviz.notebooks"} == listed


def test_conda_environment_mirrors_pip_dependencies():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)}
    conda = {"torch" if n == "pytorch" else n for n in conda}
    pip_deps = (
        PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["dev"]
    )
    missing = {_name(d) for d in pip_deps} - conda
    assert not missing, f"environment.yml lacks {sorted(missing)}"
    pip_section = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    assert any(p.strip().startswith("-e .") for p in pip_section)


def test_makefile_installs_pinned_torch_first():
    text = (ROOT / "Makefile").read_text()
    assert "TORCH_SPEC ?= torch==2.13.0" in text
    torch_at = text.index('install --quiet "$(TORCH_SPEC)"')
    glaviz_at = text.index('install --quiet -e ".[dev]"')
    assert torch_at < glaviz_at
    for target in ("demo:", "test:", "lab:"):
        assert re.search(rf"^{target} .*setup", text, re.M), target
    assert "GLAVIZ_DATA_MIRROR" in text
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_no_torchvision_family_dependency():
    deps = {_name(d) for d in PYPROJECT["project"]["dependencies"]}
    assert not deps & {"torchvision", "timm", "segmentation-models-pytorch"}


def test_stubs_and_py_typed_ship():
    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    for path in [*(ROOT / "glaviz").rglob("*.pyi"), ROOT / "glaviz" / "py.typed"]:
        package = ".".join(path.parent.relative_to(ROOT).parts)
        assert any(path.match(f"{package.replace('.', '/')}/{g}") for g in data.get(package, [])), (
            path
        )


def test_one_version_source():
    """pyproject reads the version from the package, statically (a literal, no import)."""
    assert "version" not in PYPROJECT["project"]
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    attr = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    module, name = attr.rsplit(".", 1)
    init = ROOT.joinpath(*module.split("."), "__init__.py")
    literals = [
        node.value.value
        for node in ast.parse(init.read_text()).body
        if isinstance(node, ast.Assign)
        and [getattr(t, "id", None) for t in node.targets] == [name]
        and isinstance(node.value, ast.Constant)
    ]
    assert literals == [glaviz.__version__]
