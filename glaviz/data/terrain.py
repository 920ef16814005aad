"""Terrain derivatives: slope in degrees, correct in projected and geographic CRSs."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pyproj
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from glaviz.errors import InputValueError, MissingCRSError

__all__ = ["pixel_sizes_m", "slope"]


def pixel_sizes_m(dem: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel width and height in metres for every row of ``dem`` (arrays of shape ``(H,)``).

    In a projected CRS both are constant (the transform's resolution times the unit's size in
    metres); in a geographic CRS they are geodesic distances on the CRS's ellipsoid at each row's
    latitude.
    """
    crs = dem.rio.crs
    if crs is None:
        raise MissingCRSError.of(
            f"DEM {dem.name or ''!r}", why="slope needs it to know pixel sizes in metres"
        )
    resx, resy = (abs(r) for r in dem.rio.resolution())
    height = dem.sizes["y"]
    pcrs = pyproj.CRS.from_user_input(crs)
    if pcrs.is_geographic:
        geod = pcrs.get_geod() or pyproj.Geod(ellps="WGS84")
        lat = np.asarray(dem["y"].values, dtype=float)
        lon = np.zeros_like(lat)
        _, _, dx = geod.inv(lon - resx / 2, lat, lon + resx / 2, lat)
        _, _, dy = geod.inv(lon, lat - resy / 2, lon, lat + resy / 2)
        return np.asarray(dx), np.asarray(dy)
    unit = pcrs.axis_info[0].unit_conversion_factor if pcrs.axis_info else 1.0
    return np.full(height, resx * unit), np.full(height, resy * unit)


def _slope_block(z: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    if z.shape[0] < 2 or z.shape[1] < 2:
        return np.full(z.shape, np.nan, dtype=np.float32)
    gy, gx = np.gradient(z)
    gx = gx / dx
    gy = gy / dy
    return np.degrees(np.arctan(np.hypot(gx, gy))).astype(np.float32)


def slope(dem: xr.DataArray) -> xr.DataArray:
    """Slope in degrees of a DEM in metres, with central differences (one-sided at edges).

    Works lazily on dask-backed DEMs (overlapping blocks) and keeps CRS, transform and coords.

    Parameters
    ----------
    dem : xarray.DataArray
        2-D elevation ``(y, x)`` in metres with a CRS (``dem.rio.crs``); NaN for nodata.

    Returns
    -------
    xarray.DataArray
        float32 slope in degrees on the same grid (NaN next to nodata).

    Examples
    --------
    >>> import numpy as np, xarray as xr, rioxarray
    >>> y, x = np.arange(5) * -30.0, np.arange(5) * 30.0
    >>> z = xr.DataArray(np.tile(x, (5, 1)), coords={"y": y, "x": x}, dims=("y", "x"))
    >>> z = z.rio.write_crs("EPSG:32632")
    >>> float(slope(z).mean().round(2))  # a 45 degree ramp
    45.0
    """
    if dem.ndim != 2:
        raise ValueError(f"slope expects a 2-D (y, x) DEM, got dims {dem.dims}")
    if min(dem.shape) < 2:
        raise InputValueError(
            f"slope needs at least 2 x 2 pixels, the DEM {dem.name or ''!r} has "
            f"{dem.shape[0]} x {dem.shape[1]}; give a larger area"
        )
    dx, dy = pixel_sizes_m(dem)
    dx2 = np.broadcast_to(dx[:, None], dem.shape)
    dy2 = np.broadcast_to(dy[:, None], dem.shape)
    data = dem.data
    if isinstance(data, da.Array):
        # one column per row, broadcast lazily (a full-size copy is 1 GiB for 8192 x 8192)
        ddx, ddy = (
            da.broadcast_to(
                da.from_array(d[:, None], chunks=(data.chunks[0], 1)), dem.shape,
                chunks=data.chunks,
            )
            for d in (dx, dy)
        )  # fmt: skip
        out = da.map_overlap(
            _slope_block, data, ddx, ddy, depth=1, boundary="none", dtype=np.float32
        )
    else:
        out = _slope_block(np.asarray(data), dx2, dy2)
    result = dem.copy(data=out)
    result.name = "slope"
    result.attrs = {"units": "degrees", "long_name": "terrain slope"}
    return result.rio.write_crs(dem.rio.crs).rio.write_transform(dem.rio.transform())
