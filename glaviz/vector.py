"""Masks to outlines: polygonise, simplify, measure areas, export.

:func:`to_outlines` turns a glacier mask (or a prediction's ``glacier_mask``) into polygons, one
per connected glacier region, holes (nunataks) kept, with their area in km²;
:func:`confidence_bands` does the same for pixels whose calibrated confidence is below a
threshold; :func:`export_outlines` writes outlines atomically to GeoPackage, GeoJSON or
Shapefile. The inverse, outlines to a mask, is :func:`glaviz.data.rasterize_outlines`: a mask
polygonised here and rasterised there comes back identical.

Conventions:

* Polygons follow pixel edges exactly (no smoothing) unless ``simplify`` is given; pixel-centre
  rasterisation of them gives back the same pixels.
* ``connectivity=4`` (default): pixels touching only at a corner are separate polygons; every
  polygon is valid as produced. With 8, diagonal neighbours join one (multi)polygon, repaired
  with ``shapely.make_valid`` where the ring touches itself.
* Areas (:func:`area_km2`): planar in a projected CRS (metres, or the CRS's unit converted), so
  they equal pixel counts times pixel area; for a geographic CRS, in a Lambert azimuthal
  equal-area projection centred on the data (ellipsoidal, authalic): true areas.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio.features
import rioxarray  # noqa: F401  (registers the .rio accessor)
import shapely
import xarray as xr
from pyproj import CRS
from shapely.geometry import shape

from glaviz.errors import MissingCRSError
from glaviz.types import CRSLike

__all__ = [
    "area_km2",
    "confidence_bands",
    "export_outlines",
    "to_outlines",
]

#: File extensions :func:`export_outlines` writes, and their GDAL drivers.
DRIVERS: dict[str, str] = {
    ".gpkg": "GPKG",
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".shp": "ESRI Shapefile",
}
#: Files that belong to a shapefile (written, replaced or refused together).
SHAPEFILE_PARTS: tuple[str, ...] = (".dbf", ".shx", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".shp")


def area_km2(
    geometries: gpd.GeoSeries | gpd.GeoDataFrame, *, crs: CRSLike | None = None
) -> np.ndarray:
    """Area of each geometry in km².

    Parameters
    ----------
    geometries : geopandas.GeoSeries or GeoDataFrame
        Polygons with a CRS.
    crs : CRS-like, optional
        Compute the areas in this CRS instead. By default: the geometries' CRS when projected
        (planar area, the CRS's linear unit converted to metres), otherwise a Lambert azimuthal
        equal-area projection centred on the data.

    Returns
    -------
    numpy.ndarray
        float64 areas in km² (0 for empty or missing geometries).

    Examples
    --------
    >>> import shapely
    >>> sq = gpd.GeoSeries([shapely.box(0, 0, 1000, 2000)], crs="EPSG:32632")
    >>> area_km2(sq).tolist()
    [2.0]
    >>> deg = gpd.GeoSeries([shapely.box(10, 0, 10.01, 0.01)], crs="EPSG:4326")
    >>> round(float(area_km2(deg)[0]), 3)  # 0.01 deg x 0.01 deg at the equator
    1.231
    """
    geoms = geometries.geometry if isinstance(geometries, gpd.GeoDataFrame) else geometries
    if geoms.crs is None and crs is None:
        raise MissingCRSError.of("the geometries", kind="outlines", why="needed to measure areas")
    if len(geoms) == 0:
        return np.zeros(0)
    target = CRS.from_user_input(crs) if crs is not None else CRS.from_user_input(geoms.crs)
    if geoms.crs is not None and target != geoms.crs:
        geoms = geoms.to_crs(target)
    if target.is_geographic:
        ok = geoms[~(geoms.isna() | geoms.is_empty)]
        if len(ok) == 0:
            return np.zeros(len(geoms))
        x0, y0, x1, y1 = ok.total_bounds
        laea = CRS.from_proj4(
            f"+proj=laea +lat_0={(y0 + y1) / 2} +lon_0={(x0 + x1) / 2} +datum=WGS84 +units=m"
        )
        dense = gpd.GeoSeries(shapely.segmentize(geoms.values, 0.005), crs=target)
        areas = dense.to_crs(laea).area.to_numpy(float)
        factor = 1.0
    else:
        areas = geoms.area.to_numpy(float)
        factor = target.axis_info[0].unit_conversion_factor if target.axis_info else 1.0
    return np.nan_to_num(areas) * factor**2 / 1e6


def _from_prediction(
    obj: xr.DataArray | xr.Dataset, name: str, valid: Any, caller: str
) -> tuple[xr.DataArray, Any]:
    """``obj[name]`` and its ``valid`` (unless given) from a prediction Dataset, else as is."""
    if not isinstance(obj, xr.Dataset):
        return obj, valid
    if name not in obj:
        raise KeyError(
            f"{caller}: the Dataset has no {name!r} variable; pass the DataArray itself "
            f"(variables: {list(obj.data_vars)})"
        )
    if valid is None and "valid" in obj:
        valid = obj["valid"]
    return obj[name], valid


def _grid(da: xr.DataArray, what: str) -> tuple[xr.DataArray, Any, Any]:
    """``da`` as a 2-D ``(y, x)`` array with its CRS and transform, or a clear error."""
    if not isinstance(da, xr.DataArray):
        raise TypeError(
            f"{what} must be an xarray DataArray (or a prediction Dataset) with x/y coordinates "
            f"and a CRS, got {type(da).__name__}"
        )
    extra = [d for d in da.dims if d not in ("y", "x")]
    if any(da.sizes[d] != 1 for d in extra) or set(da.dims) - set(extra) != {"y", "x"}:
        raise ValueError(f"{what} must be 2-D with dims (y, x), got dims {dict(da.sizes)}")
    da = da.squeeze(extra, drop=True).transpose("y", "x") if extra else da.transpose("y", "x")
    crs = da.rio.crs
    if crs is None:
        raise MissingCRSError.of(what)
    return da, crs, da.rio.transform()


def _polygonise(
    selected: np.ndarray,
    transform: Any,
    crs: Any,
    *,
    connectivity: int,
    simplify: float | None,
    min_area: float,
    area_crs: Any,
) -> gpd.GeoDataFrame:
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    if simplify is not None and simplify < 0:
        raise ValueError(f"simplify must be a tolerance >= 0 in CRS units, got {simplify}")
    if min_area < 0:
        raise ValueError(f"min_area must be >= 0 (km²), got {min_area}")
    selected = np.ascontiguousarray(selected, dtype=bool)
    geoms = np.array(
        [
            shape(g)
            for g, _ in rasterio.features.shapes(
                selected.view(np.uint8),
                mask=selected,
                connectivity=connectivity,
                transform=transform,
            )
        ],
        dtype=object,
    )
    if geoms.size:
        bad = ~shapely.is_valid(geoms)
        if bad.any():
            geoms[bad] = shapely.make_valid(geoms[bad])
        if simplify:
            geoms = shapely.simplify(geoms, simplify, preserve_topology=True)
    out = gpd.GeoDataFrame(
        {"area_km2": np.zeros(geoms.size)}, geometry=gpd.GeoSeries(list(geoms), crs=crs)
    )
    out["area_km2"] = area_km2(out, crs=area_crs)
    out = out[out["area_km2"] >= min_area] if min_area > 0 else out
    return out.sort_values("area_km2", ascending=False, kind="stable").reset_index(drop=True)


def to_outlines(
    mask: xr.DataArray | xr.Dataset,
    *,
    value: int = 1,
    valid: xr.DataArray | np.ndarray | None = None,
    simplify: float | None = None,
    min_area: float = 0.0,
    connectivity: int = 4,
    area_crs: CRSLike | None = None,
) -> gpd.GeoDataFrame:
    """Polygonise a mask: one polygon per connected region of ``value``, holes kept.

    Parameters
    ----------
    mask : xarray.DataArray or Dataset
        A 2-D mask with a CRS (``.rio.crs``), e.g. ``reference_mask``, or a prediction Dataset
        (its ``glacier_mask`` is used and its ``valid``, when present, applies).
    value : int, default 1
        The pixel value to outline (1 = glacier); other values, including nodata 255, are not.
    valid : array-like of bool, optional
        Pixels that may be outlined (others never are).
    simplify : float, optional
        Douglas-Peucker tolerance in CRS units, topology-preserving per polygon (rings stay
        simple, holes stay inside). Neighbouring polygons are simplified independently.
    min_area : float, default 0.0
        Drop polygons smaller than this, in **km²** (RGI's minimum glacier size is 0.01 km²).
    connectivity : {4, 8}, default 4
        Pixel connectivity of a region (see the module notes).
    area_crs : CRS-like, optional
        CRS for the ``area_km2`` column (see :func:`area_km2`).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``area_km2`` and ``geometry`` (Polygon; MultiPolygon only where an
        8-connected ring had to be repaired), in the mask's CRS, largest first.

    Examples
    --------
    >>> from glaviz.data import synthetic_scene
    >>> ds = synthetic_scene(height=64, width=64, seed=0, groups=["dem"])
    >>> gdf = to_outlines(ds["reference_mask"])
    >>> gdf.crs == ds.rio.crs, list(gdf.columns)
    (True, ['area_km2', 'geometry'])
    >>> px_km2 = 30 * 30 / 1e6  # 30 m pixels
    >>> bool(np.isclose(gdf["area_km2"].sum(), int(ds["reference_mask"].sum()) * px_km2))
    True
    """
    mask, valid = _from_prediction(mask, "glacier_mask", valid, "to_outlines")
    da, crs, transform = _grid(mask, "mask")
    selected = np.asarray(da.values) == value
    if valid is not None:
        v = np.asarray(valid.values if isinstance(valid, xr.DataArray) else valid, dtype=bool)
        if v.shape != selected.shape:
            raise ValueError(f"valid has shape {v.shape}, the mask {selected.shape}")
        selected &= v
    return _polygonise(
        selected,
        transform,
        crs,
        connectivity=connectivity,
        simplify=simplify,
        min_area=min_area,
        area_crs=area_crs,
    )


def confidence_bands(
    confidence: xr.DataArray | xr.Dataset,
    threshold: float = 0.95,
    *,
    valid: xr.DataArray | np.ndarray | None = None,
    simplify: float | None = None,
    min_area: float = 0.0,
    connectivity: int = 4,
    area_crs: CRSLike | None = None,
) -> gpd.GeoDataFrame:
    """Polygons of the pixels whose (calibrated) confidence is below ``threshold``.

    Parameters
    ----------
    confidence : xarray.DataArray or Dataset
        Confidence in [0, 1] with a CRS, or a prediction Dataset (its ``confidence`` and
        ``valid`` are used).
    threshold : float, default 0.95
        Pixels with ``confidence < threshold`` form the bands (the paper's 0.95).
    valid : array-like of bool, optional
        Pixels that count; NaN confidence never does.
    simplify, min_area, connectivity, area_crs
        As :func:`to_outlines` (``min_area`` in km²).

    Returns
    -------
    geopandas.GeoDataFrame
        ``area_km2`` and ``geometry``, largest first; ``attrs["threshold"]`` records the
        threshold.

    Examples
    --------
    >>> from glaviz.data import synthetic_scene
    >>> ds = synthetic_scene(height=32, width=32, seed=0, groups=["dem"])
    >>> conf = xr.ones_like(ds["dem"].isel(dem_band=0, drop=True))
    >>> conf[8:12, 8:16] = 0.6  # one low-confidence band of 4 x 8 pixels
    >>> bands = confidence_bands(conf)
    >>> len(bands), round(float(bands["area_km2"][0]), 4)
    (1, 0.0288)
    """
    confidence, valid = _from_prediction(confidence, "confidence", valid, "confidence_bands")
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
    da, crs, transform = _grid(confidence, "confidence")
    values = np.asarray(da.values)
    if not np.issubdtype(values.dtype, np.floating):
        values = values.astype(np.float64)
    # compare in the data's precision: float32 0.95 is not below a threshold of 0.95
    selected = np.isfinite(values) & (values < np.asarray(threshold, values.dtype))
    if valid is not None:
        v = np.asarray(valid.values if isinstance(valid, xr.DataArray) else valid, dtype=bool)
        if v.shape != selected.shape:
            raise ValueError(f"valid has shape {v.shape}, the confidence {selected.shape}")
        selected &= v
    out = _polygonise(
        selected,
        transform,
        crs,
        connectivity=connectivity,
        simplify=simplify,
        min_area=min_area,
        area_crs=area_crs,
    )
    out.attrs["threshold"] = float(threshold)
    return out


def _targets(path: Path, driver: str) -> list[Path]:
    """Files that writing ``path`` creates or replaces (the sidecar set of a shapefile)."""
    if driver != "ESRI Shapefile":
        return [path]
    return [path.with_suffix(s) for s in SHAPEFILE_PARTS if s != ".shp"] + [path]


def export_outlines(
    outlines: gpd.GeoDataFrame | gpd.GeoSeries,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    layer: str | None = None,
) -> Path:
    """Write outlines to GeoPackage, GeoJSON or Shapefile (by extension), atomically.

    The file is written under a temporary name in the target folder and renamed into place, so
    readers never see a half-written file. A shapefile's parts (``.shp .shx .dbf .prj .cpg``)
    are each renamed into place, ``.shp`` last, and stale parts of a replaced shapefile
    (``.qix``, ``.sbn``, ...) are removed.

    Parameters
    ----------
    outlines : geopandas.GeoDataFrame or GeoSeries
        Outlines with a CRS (e.g. from :func:`to_outlines`).
    path : str or os.PathLike
        ``*.gpkg``, ``*.geojson`` / ``*.json`` or ``*.shp``. GeoJSON keeps a non-WGS84 CRS
        as GDAL's ``crs`` member; reproject to ``EPSG:4326`` first for strict RFC 7946 files.
    overwrite : bool, default False
        Replace an existing file (all parts of an existing shapefile).
    layer : str, optional
        Layer name (GeoPackage; default the file's stem).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        Unknown extension, or outlines without a CRS.
    FileExistsError
        The file (or a shapefile part) exists and ``overwrite`` is False.
    FileNotFoundError
        The target folder does not exist.

    Examples
    --------
    >>> import tempfile, shapely
    >>> gdf = gpd.GeoDataFrame({"area_km2": [1.0]}, geometry=[shapely.box(0, 0, 1e3, 1e3)],
    ...                        crs="EPSG:32632")
    >>> p = export_outlines(gdf, Path(tempfile.mkdtemp()) / "glaciers.gpkg")
    >>> gpd.read_file(p)["area_km2"].tolist()
    [1.0]
    """
    if isinstance(outlines, gpd.GeoSeries):
        outlines = gpd.GeoDataFrame(geometry=outlines)
    if not isinstance(outlines, gpd.GeoDataFrame):
        raise TypeError(f"outlines must be a GeoDataFrame, got {type(outlines).__name__}")
    path = Path(path)
    driver = DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise ValueError(
            f"cannot tell the format of {str(path)!r} from its extension; use one of "
            f"{sorted(DRIVERS)} (GeoPackage, GeoJSON, Shapefile)"
        )
    if outlines.crs is None:
        raise MissingCRSError.of(
            "the outlines", kind="outlines", why=f"refusing to write {str(path)!r}"
        )
    if not path.parent.is_dir():
        raise FileNotFoundError(f"the folder {str(path.parent)!r} does not exist")
    targets = _targets(path, driver)
    existing = [p for p in targets if p.exists() or p.is_symlink()]
    if any(p.is_dir() for p in existing):
        raise IsADirectoryError(f"{str(path)!r} (or a part of it) is a directory")
    if existing and not overwrite:
        names = ", ".join(p.name for p in existing)
        raise FileExistsError(f"{str(path)!r} exists ({names}); pass overwrite=True to replace it")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        kwargs: dict[str, Any] = {"driver": driver, "engine": "pyogrio"}
        if driver == "GPKG":
            kwargs["layer"] = layer or path.stem
        outlines.to_file(tmp / path.name, **kwargs)
        written = {p.name for p in tmp.iterdir()}
        parts = [p.name for p in targets[:-1] if p.name in written]
        parts += sorted(written - {p.name for p in targets})  # anything else GDAL wrote
        for name in [*parts, path.name]:  # the main file last
            os.replace(tmp / name, path.parent / name)
        for stale in existing:
            if stale.name not in written:
                stale.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path
