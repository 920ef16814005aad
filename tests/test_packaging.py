"""Packaging habits: the package list, the torch pin in the Makefile, conda mirroring pip."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
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


def _make_dry_run(target: str, venv: Path) -> list[str]:
    """The commands ``make TARGET`` would run from scratch (``make -n -B``), one per line."""
    run = subprocess.run(
        ["make", "-n", "-B", target, f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return run.stdout.splitlines()


@pytest.mark.parametrize(
    ("target", "command"),
    [
        ("demo", "-m glaviz.demo"),
        ("test", "-m pytest"),
        ("lab", "jupyter lab notebooks/"),
        ("lint", "/bin/mypy glaviz"),
    ],
)
def test_make_installs_pinned_torch_before_glaviz(tmp_path, target, command):
    lines = _make_dry_run(target, tmp_path / "venv")
    torch_at = [i for i, c in enumerate(lines) if 'pip install --quiet "torch==2.13.0"' in c]
    glaviz_at = [i for i, c in enumerate(lines) if 'pip install --quiet -e ".[dev]"' in c]
    own_at = [i for i, c in enumerate(lines) if command in c]
    assert len(torch_at) == len(glaviz_at) == 1, lines
    assert own_at and torch_at[0] < glaviz_at[0] < own_at[0], lines
    assert all(c.startswith(str(tmp_path / "venv")) for c in lines[torch_at[0] : glaviz_at[0]])


def test_make_uses_the_mirror_beside_the_checkout(tmp_path):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(ROOT / "Makefile", checkout)
    mirror = tmp_path / "shared" / "data"
    mirror.mkdir(parents=True)
    (mirror / "README.md").write_text("the sample data\n")
    show = ["make", "-s", "--eval", "show-mirror: ; @echo $$GLAVIZ_DATA_MIRROR", "show-mirror"]
    env = {k: v for k, v in os.environ.items() if k != "GLAVIZ_DATA_MIRROR"}

    def shown(env: dict[str, str]) -> str:
        run = subprocess.run(show, cwd=checkout, env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        return run.stdout.strip()

    assert shown(env) == str(mirror)
    assert shown({**env, "GLAVIZ_DATA_MIRROR": "/elsewhere"}) == "/elsewhere"  # the user's wins
    (mirror / "README.md").unlink()
    assert shown(env) == ""  # no mirror beside the checkout: fetch downloads


def test_ci_runs_make_test():
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
