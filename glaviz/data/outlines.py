"""Glacier outlines (RGI 5/6/7, GLIMS) in, reference masks out."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio.features
import rioxarray  # noqa: F401  (registers the .rio accessor)
import shapely
import xarray as xr
from shapely import make_valid

from glaviz.errors import InputTypeError, MissingCRSError, warn

__all__ = ["polygons_only", "read_outlines", "rasterize_outlines"]

#: Columns of the inventories that hold a glacier's id and name, in order of preference
#: (matched in any capitalisation: ``RGIID`` is ``RGIId``).
ID_COLUMNS = ("RGIId", "rgi_id", "glac_id", "GLIMSId", "glims_id", "anlys_id")
NAME_COLUMNS = ("Name", "glac_name", "name")

_POLYGONAL = (3, 6)  # shapely type ids of Polygon and MultiPolygon


def _column(columns: list[str], candidates: tuple[str, ...]) -> str | None:
    by_lower: dict[str, str] = {}
    for c in columns:
        by_lower.setdefault(str(c).lower(), c)
    return next((by_lower[c.lower()] for c in candidates if c.lower() in by_lower), None)


def polygons_only(geoms: gpd.GeoSeries, where: str) -> gpd.GeoSeries:
    """The polygonal part of each geometry; lines, points and empties dropped with a warning.

    A geometry collection keeps its polygons. Lines or points would otherwise be burnt into a
    reference mask as glacier.

    Examples
    --------
    >>> import warnings
    >>> s = gpd.GeoSeries([shapely.box(0, 0, 1, 1), shapely.LineString([(0, 0), (1, 1)])])
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     kept = polygons_only(s, "outlines")
    >>> len(kept), "1 LineString" in str(seen[0].message)
    (1, True)
    """
    geoms = geoms[~(geoms.isna() | geoms.is_empty)]
    values = geoms.values
    types = shapely.get_type_id(values)
    fixed = []
    for geom, kind in zip(values, types):
        if kind in _POLYGONAL:
            fixed.append(geom)
        else:
            parts = shapely.get_parts(geom)
            parts = parts[np.isin(shapely.get_type_id(parts), _POLYGONAL)]
            fixed.append(shapely.union_all(parts) if len(parts) else None)
    keep = np.array([g is not None for g in fixed], bool)
    if not keep.all():
        dropped = gpd.GeoSeries(values[~keep]).geom_type.value_counts()
        kinds = ", ".join(f"{n} {t}" for t, n in dropped.items())
        warn(
            f"{where}: dropped {int((~keep).sum())} of {len(keep)} geometries that are not "
            f"polygons ({kinds}): only polygons outline glaciers (lines and points would be "
            "burnt as glacier). Check the file's layer, or filter the geometries yourself"
        )
    out = gpd.GeoSeries(np.array(fixed, dtype=object)[keep], index=geoms.index[keep],
                        crs=geoms.crs)  # fmt: skip
    return out


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
        raise MissingCRSError.of(f"outlines {str(path)!r}", kind="outline_file")
    types = shapely.get_type_id(gdf.geometry.values)
    if not np.isin(types[types >= 0], _POLYGONAL).all():  # lines, points, collections
        geoms = polygons_only(gdf.geometry, f"outlines {str(path)!r}")
        gdf = gdf.loc[geoms.index].copy()
        gdf[gdf.geometry.name] = geoms
    id_col = _column(list(gdf.columns), ID_COLUMNS)
    gdf["glacier_id"] = gdf[id_col].astype(str) if id_col else [f"G{i}" for i in range(len(gdf))]
    name_col = _column(list(gdf.columns), NAME_COLUMNS)
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
    if not isinstance(like, (xr.Dataset, xr.DataArray)):
        raise InputTypeError(
            f"like= must be an xarray Dataset or DataArray with x/y coordinates and a CRS (a "
            f"scene, a prediction), got {type(like).__name__}; for a bare array, build a "
            "DataArray with coords and .rio.write_crs(...), or pass the scene it came from"
        )
    crs = like.rio.crs
    if crs is None:
        raise MissingCRSError.of("the target grid (like=...)")
    if outlines.crs is None:
        raise MissingCRSError.of("the outlines", kind="outlines")
    geoms = outlines.geometry if isinstance(outlines, gpd.GeoDataFrame) else outlines
    geoms = polygons_only(geoms, "rasterize_outlines").to_crs(crs)
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
