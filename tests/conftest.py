"""Shared test set-up: the sample-data mirror and small helpers that write rasters at run time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rasters import EVEREST_NIR, EVEREST_RGB, ROOT, SHARED, write_raster  # noqa: F401

# The Makefile points GLAVIZ_DATA_MIRROR at ../shared/data; do the same for a bare `pytest`.
if "GLAVIZ_DATA_MIRROR" not in os.environ and (SHARED / "data").is_dir():
    os.environ["GLAVIZ_DATA_MIRROR"] = str(SHARED / "data")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Downloads (if any) go to a temporary cache, never the user's."""
    monkeypatch.setenv("GLAVIZ_CACHE", str(tmp_path_factory.getbasetemp() / "glaviz-cache"))


@pytest.fixture(scope="session")
def everest_files() -> dict[str, Path]:
    from glaviz.data import fetch

    return fetch("everest_landsat7")


@pytest.fixture(scope="session")
def everest_scene(everest_files):
    from glaviz.data import open_scene

    return open_scene(
        [everest_files[EVEREST_RGB], everest_files[EVEREST_NIR]], sensor="landsat7_display8"
    )


@pytest.fixture()
def benchmark_dir(tmp_path) -> Path:
    """Tiny files in the benchmark HDF5 layout (tests/data/make_benchmark.py), written now."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_benchmark", ROOT / "tests" / "data" / "make_benchmark.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "bench").mkdir()
    module.make_benchmark(tmp_path / "bench")
    return tmp_path / "bench"
