"""Glacier outlines (RGI 5/6/7, GLIMS) in, reference masks out."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio.features
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from shapely import make_valid

__all__ = ["read_outlines", "rasterize_outlines"]

#: Columns of the inventories that hold a glacier's id and name, in order of preference.
ID_COLUMNS = ("RGIId", "rgi_id", "glac_id", "GLIMSId", "glims_id", "anlys_id")
NAME_COLUMNS = ("Name", "glac_name", "name")


def read_outlines(path: str | os.PathLike, *, layer: str | None = None) -> gpd.GeoDataFrame:
    """Read glacier outlines and add the common columns ``glacier_id`` and ``name``.

    Works for RGI 5.0/6.0 (``RGIId``, ``Name``), RGI 7.0 (``rgi_id``, ``glac_name``) and GLIMS
    (``glac_id``); other columns are kept as they are.

    Examples
    --------
    >>> from glaviz.data import fetch
    >>> gdf = read_outlines(fetch("oggm_hintereisferner", "hintereisferner_rgi7/rgi7g_hef.shp"))
    >>> gdf["glacier_id"].str.startswith("RGI2000").all()
    np.True_
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"outline file {str(path)!r} does not exist")
    gdf = gpd.read_file(path, layer=layer)
    if gdf.crs is None:
        raise ValueError(
            f"outlines {str(path)!r} have no CRS; add a .prj file or set one with "
            "gdf.set_crs('EPSG:4326')"
        )
    id_col = next((c for c in ID_COLUMNS if c in gdf.columns), None)
    gdf["glacier_id"] = gdf[id_col].astype(str) if id_col else [f"G{i}" for i in range(len(gdf))]
    name_col = next((c for c in NAME_COLUMNS if c in gdf.columns), None)
    gdf["name"] = gdf[name_col] if name_col else None
    return gdf


def rasterize_outlines(
    outlines: gpd.GeoDataFrame | gpd.GeoSeries,
    *,
    like: xr.Dataset | xr.DataArray,
    all_touched: bool = False,
) -> xr.DataArray:
    """Rasterise glacier outlines onto the grid of ``like`` (pixel centres inside -> 1).

    Outlines in another CRS are transformed to the grid's CRS first; holes (nunataks) stay 0.

    Parameters
    ----------
    outlines : geopandas.GeoDataFrame or GeoSeries
        Polygons or multipolygons with a CRS (RGI 5/6/7, GLIMS or any).
    like : xarray.Dataset or DataArray
        Anything with ``x``/``y`` coordinates and a CRS (``like.rio.crs``), e.g. a scene.
    all_touched : bool, default False
        Burn every pixel a polygon touches instead of those whose centre is inside.

    Returns
    -------
    xarray.DataArray
        uint8 ``(y, x)`` mask named ``reference_mask`` (1 = glacier), with the grid's CRS.

    Examples
    --------
    >>> from glaviz.data import synthetic_scene
    >>> import geopandas as gpd, shapely
    >>> ds = synthetic_scene(height=40, width=40, seed=0)
    >>> x0, y0 = float(ds.x[10]) - 15, float(ds.y[10]) + 15  # a pixel corner
    >>> box = gpd.GeoSeries([shapely.box(x0, y0 - 300, x0 + 300, y0)], crs=ds.rio.crs)
    >>> int(rasterize_outlines(box, like=ds).sum())
    100
    """
    crs = like.rio.crs
    if crs is None:
        raise ValueError("the target grid (like=...) has no CRS; set it with .rio.write_crs()")
    if outlines.crs is None:
        raise ValueError(
            "the outlines have no CRS; set the one they are in, e.g. "
            "outlines.set_crs('EPSG:4326'), before rasterising"
        )
    geoms = outlines.geometry if isinstance(outlines, gpd.GeoDataFrame) else outlines
    geoms = geoms[~(geoms.is_empty | geoms.isna())].to_crs(crs)
    geoms = geoms.apply(lambda g: g if g.is_valid else make_valid(g))
    height, width = like.sizes["y"], like.sizes["x"]
    transform = like.rio.transform()
    if len(geoms):
        burned = rasterio.features.rasterize(
            ((g, 1) for g in geoms),
            out_shape=(height, width),
            transform=transform,
            fill=0,
            all_touched=all_touched,
            dtype="uint8",
        )
    else:
        burned = np.zeros((height, width), np.uint8)
    out = xr.DataArray(
        burned,
        coords={"y": like["y"].values, "x": like["x"].values},
        dims=("y", "x"),
        name="reference_mask",
        attrs={"long_name": "reference glacier mask", "flag_values": "0 1"},
    )
    return out.rio.write_crs(crs).rio.write_transform(transform)
