"""Shared test set-up: the sample-data mirror and small helpers that write rasters at run time."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GLAVIZ_SHARED", ROOT.parent / "shared"))

# The Makefile points GLAVIZ_DATA_MIRROR at ../shared/data; do the same for a bare `pytest`.
if "GLAVIZ_DATA_MIRROR" not in os.environ and (SHARED / "data").is_dir():
    os.environ["GLAVIZ_DATA_MIRROR"] = str(SHARED / "data")

EVEREST_RGB = "LE71400412000304SGS00_RGB.tif"
EVEREST_NIR = "LE71400412000304SGS00_B4.tif"


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


def write_raster(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None = "EPSG:32645",
    origin: tuple[float, float] = (478000.0, 3108140.0),
    res: float = 30.0,
    nodata: float | None = None,
    transform=None,
) -> Path:
    """Write a (bands, y, x) or (y, x) array as a GeoTIFF."""
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    profile = {
        "driver": "GTiff",
        "height": data.shape[1],
        "width": data.shape[2],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "transform": transform or from_origin(origin[0], origin[1], res, res),
    }
    if crs is not None:
        profile["crs"] = crs
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


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
