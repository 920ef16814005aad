"""Tests of glaviz.data.slope in projected and geographic CRSs, eager and lazy."""

from __future__ import annotations

import numpy as np
import pytest
import rioxarray
import xarray as xr

from glaviz.data import fetch, slope
from glaviz.data.terrain import pixel_sizes_m


def _grid(z: np.ndarray, res: float, crs: str, x0: float = 500000.0, y0: float = 5000000.0):
    h, w = z.shape
    coords = {"y": y0 - res * (np.arange(h) + 0.5), "x": x0 + res * (np.arange(w) + 0.5)}
    return xr.DataArray(z, coords=coords, dims=("y", "x")).rio.write_crs(crs)


@pytest.mark.parametrize("angle", [10.0, 30.0, 60.0])
def test_projected_plane_has_its_angle(angle):
    x = np.arange(40) * 30.0
    z = np.tile(x * np.tan(np.radians(angle)), (30, 1))
    out = slope(_grid(z, 30.0, "EPSG:32632"))
    np.testing.assert_allclose(out.values, angle, atol=1e-4)
    assert out.rio.crs.to_epsg() == 32632 and out.attrs["units"] == "degrees"


def test_geographic_pixel_sizes_follow_latitude():
    z = np.zeros((3, 3))
    dem = _grid(z, 0.001, "EPSG:4326", x0=10.0, y0=60.0015)
    dx, dy = pixel_sizes_m(dem)
    lat = np.radians(60.0)
    assert dx[1] == pytest.approx(
        0.001 * np.pi / 180 * 6378137 * np.cos(lat) / np.sqrt(1 - 0.00669438 * np.sin(lat) ** 2),
        rel=1e-4,
    )
    assert dy[1] == pytest.approx(
        111412.0 * 0.001, rel=1e-3
    )  # metres per degree of latitude at 60N
    assert dx[1] < dy[1] * 0.6


def test_geographic_plane_east_facing_45_degrees():
    res = 0.0005
    dem = _grid(np.zeros((20, 30)), res, "EPSG:4326", x0=11.0, y0=46.8)
    dx, _ = pixel_sizes_m(dem)
    z = np.arange(30)[None, :] * dx[:, None]  # rises one pixel width per pixel: 45 degrees
    out = slope(dem.copy(data=z))
    np.testing.assert_allclose(out.values, 45.0, atol=1e-6)


def test_real_srtm_geographic_agrees_with_utm():
    dem = rioxarray.open_rasterio(fetch("oggm_hintereisferner", "hintereisferner_srtm.tif"))
    dem = dem.squeeze("band", drop=True).astype("float32")
    geo = slope(dem)
    utm = dem.rio.reproject("EPSG:32632", resolution=60.0, nodata=np.nan)
    projected = slope(utm)
    assert float(geo.mean()) == pytest.approx(float(projected.mean()), rel=0.03)
    # ignoring the latitude dependence (degrees as if metres) would be grossly wrong
    naive = np.degrees(np.arctan(np.hypot(*np.gradient(dem.values.astype(float), 0.00083333))))
    assert naive.mean() > 80


def test_lazy_equals_eager():
    rng = np.random.default_rng(0)
    z = np.cumsum(rng.normal(0, 5, (70, 90)), axis=1)
    dem = _grid(z, 30.0, "EPSG:32645")
    eager = slope(dem)
    lazy = slope(dem.chunk({"y": 25, "x": 40}))
    assert lazy.chunks is not None
    np.testing.assert_allclose(lazy.values, eager.values, rtol=1e-6)


def test_needs_crs():
    with pytest.raises(ValueError, match="has no CRS"):
        slope(
            xr.DataArray(np.zeros((4, 4)), dims=("y", "x"), coords={"y": range(4), "x": range(4)})
        )
