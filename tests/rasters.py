"""Helpers for tests that write rasters at run time (importable as ``rasters``; conftest
re-exports them: ``from conftest import ...`` is ambiguous once several folders have one)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GLAVIZ_SHARED", ROOT.parent / "shared"))
EVEREST_RGB = "LE71400412000304SGS00_RGB.tif"
EVEREST_NIR = "LE71400412000304SGS00_B4.tif"


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
