"""Seeded synthetic multi-sensor scenes for tests, SAR code paths and workshops."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from rasterio.transform import from_origin
from scipy import ndimage

from glaviz.catalog import GROUPS, load_catalog
from glaviz.data.scene import band_dim
from glaviz.data.terrain import slope

__all__ = ["synthetic_scene"]

# Mean physical values per surface class: clean ice/snow, debris-covered ice, rock.
_OPTICAL = np.array(
    [
        [0.78, 0.75, 0.72, 0.62, 0.09, 0.07],
        [0.13, 0.15, 0.17, 0.23, 0.24, 0.19],
        [0.10, 0.12, 0.15, 0.21, 0.28, 0.23],
    ],
    np.float32,
)
_CO_POL = np.array([[-1.7, -1.6], [-1.0, -1.05], [-0.8, -0.85]], np.float32)  # log10 sigma0
_CROSS_POL = np.array([[-2.6, -2.5], [-1.9, -1.95], [-1.7, -1.75]], np.float32)
_COHERENCE = np.array([[0.15, 0.2], [0.35, 0.4], [0.75, 0.8]], np.float32)
_THERMAL = np.array([[266.0], [279.0], [284.0]], np.float32)  # K at 4000 m


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    return field / (field.std() + 1e-12)


def synthetic_scene(
    height: int = 256,
    width: int = 256,
    *,
    groups: Sequence[str] = GROUPS,
    seed: int = 0,
    crs: str = "EPSG:32645",
    resolution: float = 30.0,
    origin: tuple[float, float] = (478000.0, 3108140.0),
    glacier_fraction: float = 0.35,
    debris_fraction: float = 0.3,
    nodata_holes: int = 2,
) -> xr.Dataset:
    """A plausible glacier scene with every input group, a reference mask and nodata holes.

    The terrain is a sum of smooth mountains; glaciers fill the high, not too steep ground, their
    lowest part (``debris_fraction`` of glacier pixels by elevation) is debris-covered and looks
    like rock in the optical bands but stays distinct in SAR coherence and temperature, as in
    real debris-covered tongues. Values are physical quantities (reflectance, metres, degrees,
    log10 sigma0, coherence, kelvin) as :func:`glaviz.open_scene` returns them, so
    :func:`glaviz.scale` applies.

    Parameters
    ----------
    height, width : int
        Size in pixels.
    groups : sequence of str
        Input groups to include (default all six).
    seed : int
        Random seed; the same seed gives the same scene.
    crs, resolution, origin
        Grid: CRS, pixel size in CRS units and the (x, y) of the upper-left corner.
    glacier_fraction : float
        Approximate share of glacier pixels.
    debris_fraction : float
        Share of glacier pixels that are debris-covered.
    nodata_holes : int
        Number of elliptical holes with no optical/thermal data (``valid`` False).

    Returns
    -------
    xarray.Dataset
        Group variables (dims ``(<group>_band, y, x)``), ``valid`` (bool), ``reference_mask``
        (uint8, 1 = glacier) and ``debris`` (bool), with CRS and transform.

    Examples
    --------
    >>> ds = synthetic_scene(height=64, width=96, seed=3)
    >>> ds["optical"].shape, ds.rio.crs.to_epsg()
    ((6, 64, 96), 32645)
    >>> 0.2 < float(ds["reference_mask"].mean()) < 0.5
    True
    """
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise ValueError(f"groups: unknown input group(s) {unknown}; known: {list(GROUPS)}")
    rng = np.random.default_rng(seed)
    shape = (height, width)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    elev = np.full(shape, 3000.0)
    scale_px = max(height, width)
    for _ in range(3 + int(rng.integers(0, 3))):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        s = rng.uniform(0.15, 0.35) * scale_px
        elev += rng.uniform(1500, 3500) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    elev += 150 * _smooth_noise(rng, shape, max(2.0, scale_px / 40))
    transform = from_origin(origin[0], origin[1], resolution, resolution)
    coords = {
        "y": origin[1] - resolution * (np.arange(height) + 0.5),
        "x": origin[0] + resolution * (np.arange(width) + 0.5),
    }
    elev_da = xr.DataArray(elev.astype(np.float32), coords=coords, dims=("y", "x"))
    elev_da = elev_da.rio.write_crs(crs).rio.write_transform(transform)
    slp = slope(elev_da).values
    score = (
        elev
        + 120 * _smooth_noise(rng, shape, max(1.5, scale_px / 60))
        - 8 * np.maximum(slp - 30, 0)
    )
    glacier = score > np.quantile(score, 1 - glacier_fraction)
    glacier = ndimage.binary_opening(glacier, iterations=1)
    debris = np.zeros(shape, bool)
    if glacier.any() and debris_fraction > 0:
        debris = glacier & (elev < np.quantile(elev[glacier], debris_fraction))
    cls = np.where(glacier & ~debris, 0, np.where(debris, 1, 2))
    illum = np.clip(1.0 + 0.25 * np.gradient(elev, axis=1) / resolution, 0.6, 1.3)
    holes = np.zeros(shape, bool)
    for _ in range(nodata_holes):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(0.04, 0.1) * height, rng.uniform(0.04, 0.1) * width
        holes |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1

    def per_class(table: np.ndarray, noise: float, factor: np.ndarray | None = None) -> np.ndarray:
        data = table[cls].transpose(2, 0, 1).copy()
        data += noise * rng.standard_normal(data.shape).astype(np.float32)
        if factor is not None:
            data *= factor[None].astype(np.float32)
        return data.astype(np.float32)

    values = {
        "optical": per_class(_OPTICAL, 0.02, illum),
        "dem": np.stack([elev, slp]).astype(np.float32),
        "co_pol_sar": per_class(_CO_POL, 0.08),
        "cross_pol_sar": per_class(_CROSS_POL, 0.08),
        "in_sar": np.clip(per_class(_COHERENCE, 0.05), 0, 1),
        "thermal": per_class(_THERMAL, 1.0) - 0.0065 * (elev - 4000)[None].astype(np.float32),
    }
    values["optical"][:, holes] = np.nan
    values["thermal"][:, holes] = np.nan
    cat = load_catalog()
    data_vars = {}
    for g in GROUPS:
        if g not in groups:
            continue
        dim = band_dim(g)
        data_vars[g] = xr.DataArray(
            values[g],
            coords={dim: list(cat.groups[g].bands), **coords},
            dims=(dim, "y", "x"),
            attrs={"units": cat.groups[g].unit, "sensor": "synthetic"},
        )
    ds = xr.Dataset(data_vars)
    valid = np.ones(shape, bool)
    for g in data_vars:
        valid &= np.isfinite(values[g]).all(0)
    ds["valid"] = xr.DataArray(valid, coords=coords, dims=("y", "x"))
    ds["reference_mask"] = xr.DataArray(glacier.astype(np.uint8), coords=coords, dims=("y", "x"))
    ds["debris"] = xr.DataArray(debris, coords=coords, dims=("y", "x"))
    ds = ds.rio.write_crs(crs).rio.write_transform(transform)
    ds.attrs = {"sensors": '{"all": "synthetic"}', "sources": "{}", "scaled": 0, "seed": seed}
    return ds
