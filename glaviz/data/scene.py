"""Assemble one scene from band files into an ``xarray.Dataset`` on one grid.

Each input group becomes a float32 variable with dims ``(<group>_band, y, x)`` (an xarray Dataset
cannot hold two ``band`` dimensions of different lengths) and a coordinate of canonical band names;
:func:`group_array` returns one group with plain ``(band, y, x)`` dims. A boolean ``valid`` marks
pixels where every band of every group holds data. The grid, CRS and transform are those of the
reference raster (the optical group's first file by default); rasters on another grid are warped
onto it lazily (bilinear) through GDAL's WarpedVRT. Nothing is reprojected silently: the variable's
``attrs["warped_from"]`` records the source CRS and resolution.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import rasterio
import rioxarray
import xarray as xr
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds

from glaviz.catalog import GROUPS, SensorGroup, load_catalog
from glaviz.data.checks import (
    check_file_samples,
    check_resolutions,
    mark_range_checked,
    nodata_for,
    order_band_files,
    raster_info,
    scale_offset,
    warn_undeclared_nodata,
)
from glaviz.data.convert import convert, parse_mtl, processing_baseline_from_paths
from glaviz.data.identity import is_registered, register
from glaviz.data.terrain import slope
from glaviz.errors import SceneCRSError, SceneError, SceneGridError
from glaviz.types import ChunksLike

__all__ = ["SceneError", "band_dim", "group_array", "open_scene"]

PathLike = str | os.PathLike
Source = PathLike | Sequence[PathLike] | Mapping[str, PathLike] | xr.DataArray

DEFAULT_CHUNKS = {"band": -1, "y": 2048, "x": 2048}


def band_dim(group: str) -> str:
    """Name of the band dimension of ``group`` in a scene Dataset (``"optical_band"``)."""
    return f"{group}_band"


def group_array(ds: xr.Dataset, group: str) -> xr.DataArray:
    """One input group of a scene as a ``(band, y, x)`` DataArray (CRS kept).

    Examples
    --------
    >>> from glaviz.data import synthetic_scene
    >>> ds = synthetic_scene(height=64, width=64, seed=0)
    >>> group_array(ds, "dem").dims
    ('band', 'y', 'x')
    """
    if group not in ds:
        raise KeyError(f"scene has no input group {group!r}; groups: {scene_groups(ds)}")
    return ds[group].rename({band_dim(group): "band"})


def scene_groups(ds: xr.Dataset) -> list[str]:
    """Input groups present in a scene, in reference order."""
    return [g for g in GROUPS if g in ds.data_vars]


@dataclass(frozen=True)
class _Grid:
    crs: Any
    transform: Any
    width: int
    height: int
    source: str

    def coords(self) -> dict[str, np.ndarray]:
        """Pixel-centre coordinates of the grid."""
        t = self.transform
        xs = t.c + t.a * (np.arange(self.width) + 0.5)
        ys = t.f + t.e * (np.arange(self.height) + 0.5)
        return {"x": xs, "y": ys}


def _grid_bounds(g: _Grid) -> tuple[float, float, float, float]:
    west, north = g.transform @ (0, 0)
    east, south = g.transform @ (g.width, g.height)
    return min(west, east), min(south, north), max(west, east), max(south, north)


def _open_array(source: Any, chunks: Any) -> xr.DataArray:
    """``rioxarray.open_rasterio`` of one raster (a file with subdatasets is refused)."""
    da_ = rioxarray.open_rasterio(source, chunks=chunks, masked=False)
    if not isinstance(da_, xr.DataArray):
        raise SceneError(f"{source}: a file of several subdatasets; give one raster per file")
    return da_


def _check_file(path: Path, group: str) -> None:
    if not path.exists():
        raise SceneError(
            f"{group}: file {str(path)!r} does not exist; check the path "
            "(or fetch sample data with glaviz.data.fetch)"
        )


def _expand_sources(
    src: Source, spec: SensorGroup, group: str, sensor: str
) -> list[tuple[Path, list[int]]]:
    """(file, 1-based band indexes) pairs in the sensor's band order.

    A list of single-band files named by band (``..._B02.tif``) is sorted into that order;
    files named for another band than the one at their place, and unnamed lists for sensors
    with bands at several resolutions, are refused (see :func:`glaviz.data.checks`).
    """
    names = spec.sensor_bands
    if isinstance(src, Mapping):
        missing = [b for b in names if b not in src]
        extra = [b for b in src if b not in names]
        if missing or extra:
            raise SceneError(
                f"{group}: band files given for {sorted(src)}, the sensor needs exactly "
                f"{list(names)} (missing {missing}, unexpected {extra})"
            )
        out, infos = [], []
        for b in names:
            path = Path(src[b])
            _check_file(path, group)
            info = raster_info(path, group)
            if info.count != 1:
                raise SceneError(
                    f"{group}: {str(path)!r} for band {b!r} has {info.count} bands, expected 1"
                )
            out.append((path, [1]))
            infos.append(info)
        check_resolutions(out, infos, spec, group, sensor)
        return out
    paths = [Path(src)] if isinstance(src, (str, os.PathLike)) else [Path(p) for p in src]
    out, total = [], 0
    for path in paths:
        _check_file(path, group)
        info = raster_info(path, group)
        out.append((path, list(range(1, info.count + 1))))
        total += info.count
    if total != len(names):
        counts = ", ".join(f"{p.name}: {len(b)}" for p, b in out)
        raise SceneError(
            f"{group}: the files hold {total} bands ({counts}) but the sensor expects "
            f"{len(names)} ({list(names)}, in this order); give the right files or sensor"
        )
    return order_band_files(out, [raster_info(p, group) for p, _ in out], spec, group, sensor)


def _grid_of(path: Path, group: str) -> _Grid:
    info = raster_info(path, group)
    if info.crs is None:
        raise SceneCRSError.of(f"{group}: {str(path)!r}", kind="file")
    return _Grid(info.crs, info.transform, info.width, info.height, str(path))


def _same_grid(a: _Grid, b: _Grid) -> bool:
    return (
        a.crs == b.crs
        and a.width == b.width
        and a.height == b.height
        and a.transform.almost_equals(b.transform)
    )


def _open_band_file(
    path: Path,
    bands: list[int],
    ref: _Grid,
    group: str,
    nodata: float | None,
    chunks: Any,
    resampling: Resampling,
    sensor: str,
    spec: SensorGroup,
) -> xr.DataArray:
    """One file's ``bands`` as float32 on the ``ref`` grid: nodata NaN, GDAL scale/offset applied.

    ``nodata`` (the caller's) overrides the file's tag, which overrides the sensor's value.
    """
    grid = _grid_of(path, group)
    info = raster_info(path, group)
    declared = nodata if nodata is not None else info.nodata
    declared = declared if declared is not None else spec.nodata
    warn_undeclared_nodata(info, group, declared)
    gains = scale_offset(info, bands, group, sensor, spec)
    if _same_grid(grid, ref):
        da_ = _open_array(path, chunks)
        file_nodata = declared
        attrs = {}
    else:
        rb = _grid_bounds(ref)
        sb = transform_bounds(grid.crs, ref.crs, *_grid_bounds(grid), densify_pts=21)
        if sb[0] >= rb[2] or sb[2] <= rb[0] or sb[1] >= rb[3] or sb[3] <= rb[1]:
            raise SceneGridError(
                f"{group}: {str(path)!r} does not overlap the scene grid of {ref.source!r} "
                f"(bounds {tuple(round(v) for v in sb)} vs {tuple(round(v) for v in rb)} in "
                f"{ref.crs}); give rasters of the same area"
            )
        src_nodata = declared
        src = rasterio.open(path)
        vrt = WarpedVRT(
            src,
            crs=ref.crs,
            transform=ref.transform,
            width=ref.width,
            height=ref.height,
            resampling=resampling,
            tolerance=0.001,  # pixels; GDAL's default (0.125) shifts values visibly
            src_nodata=src_nodata,
            nodata=np.nan,
            dtype="float32",
        )
        da_ = _open_array(vrt, chunks)
        attrs = {"warped_from": f"{grid.crs} at {grid.transform.a:g} x {-grid.transform.e:g}"}
        file_nodata = np.nan
    da_ = da_.sel(band=bands)
    out = da_.astype(np.float32)
    fill = file_nodata
    if fill is not None and not np.isnan(fill):
        out = out.where(da_ != fill)
    if gains is not None:  # GDAL's unscaled = raw * scale + offset, per band
        scales, offsets = (xr.DataArray(v.astype(np.float32), dims="band") for v in gains)
        out = out * scales + offsets
        attrs = {**attrs, "gdal_scale_offset": f"{path.name}: {gains[0].tolist()}, "
                 f"{gains[1].tolist()}"}  # fmt: skip
    out.attrs = attrs
    return out


def _read_group(
    group: str,
    src: Source,
    spec: SensorGroup,
    ref: _Grid,
    chunks: Any,
    metadata: Mapping[str, Any],
    sensor: str,
    nodata: float | None,
    range_warning: float | None,
) -> tuple[xr.DataArray, list[str]]:
    names = spec.canonical_bands
    if isinstance(src, xr.DataArray):
        arr = src if "band" in src.dims else src.expand_dims(band=[1])
        if arr.rio.crs is None:
            raise SceneCRSError.of(f"{group}: the DataArray")
        if arr.sizes["band"] != len(names):
            raise SceneError(
                f"{group}: the DataArray has {arr.sizes['band']} bands, the sensor expects "
                f"{len(names)} ({list(spec.sensor_bands)})"
            )
        grid = _Grid(arr.rio.crs, arr.rio.transform(), arr.rio.width, arr.rio.height, "")
        if not _same_grid(grid, ref):
            arr = arr.rio.reproject(
                ref.crs,
                transform=ref.transform,
                shape=(ref.height, ref.width),
                resampling=Resampling.bilinear,
                nodata=np.nan,
            )
            attrs_w = {"warped_from": f"{grid.crs} at {grid.transform.a:g} x {-grid.transform.e:g}"}
        else:
            attrs_w = {}
        data = arr.astype(np.float32)
        fill = nodata if nodata is not None else spec.nodata
        if fill is not None:
            data = data.where(arr != fill)
        files = ["<in-memory DataArray>"]
        attrs: dict[str, Any] = attrs_w
    else:
        parts = _expand_sources(src, spec, group, sensor)
        arrays = [
            _open_band_file(p, b, ref, group, nodata, chunks, Resampling.bilinear, sensor, spec)
            for p, b in parts
        ]
        attrs = {k: v for a in arrays for k, v in a.attrs.items()}
        data = xr.concat(arrays, dim="band", join="override") if len(arrays) > 1 else arrays[0]
        files = [str(p) for p, _ in parts]
    data = data.assign_coords({"band": list(names), **ref.coords()})
    data = convert(data, spec.conversion, metadata)
    checked = range_warning is not None and not isinstance(src, xr.DataArray)
    if range_warning is not None and checked:
        table = load_catalog().scaling_table()
        check_file_samples(parts, group, sensor, spec, nodata, metadata, table, range_warning)
    for canon, kind in spec.derived:
        if kind == "slope_degrees" and min(ref.height, ref.width) < 2:
            raise SceneError(
                f"{group}: slope needs at least 2 x 2 pixels, the scene grid "
                f"({ref.source or 'in-memory'}) is {ref.height} x {ref.width}; give a larger area"
            )
        if kind == "slope_degrees":
            elev = data.sel(band="elevation")
            derived = slope(elev).expand_dims(band=[canon])
            data = xr.concat([data, derived], dim="band", join="override")
    order = [b for b in load_catalog().groups[group].bands if b in data["band"].values]
    data = data.sel(band=order)
    if data.chunks is not None:
        data = data.chunk({"band": -1})
    data.attrs = {**attrs, "units": load_catalog().groups[group].unit}
    if checked:
        mark_range_checked(data)  # scale() need not read a sample again
    return data, files


def open_scene(
    optical: Source | None = None,
    *,
    sensor: str | None = None,
    dem: Source | None = None,
    co_pol_sar: Source | None = None,
    cross_pol_sar: Source | None = None,
    in_sar: Source | None = None,
    thermal: Source | None = None,
    sensors: Mapping[str, str] | None = None,
    reference: str | None = None,
    metadata: Mapping[str, Any] | PathLike | None = None,
    processing_baseline: str | None = None,
    chunks: ChunksLike | None = None,
    check_valid: bool = True,
    nodata: float | Mapping[str, float] | None = None,
    range_warning: float | None = 0.05,
) -> xr.Dataset:
    """Assemble a scene from band files into one Dataset on the reference grid.

    Parameters
    ----------
    optical, dem, co_pol_sar, cross_pol_sar, in_sar, thermal : source, optional
        Each input group's data: one (multi-band) file, a list of files read one after the
        other, a dict ``{sensor band name: single-band file}``, or an in-memory DataArray with a
        CRS. The bands must be those of the group's sensor, in its order (data_catalog/sensors.yml).
    sensor : str, optional
        The sensor of the optical (and thermal) group, e.g. ``"sentinel2_l1c"``.
    sensors : dict, optional
        Sensors of other groups (``{"dem": "dem", "co_pol_sar": "sentinel1_sigma0_linear"}``);
        the catalog's ``default_sensors`` fill the rest.
    reference : str, optional
        Group whose first file defines the grid and CRS; default the first group given in
        the order optical, dem, co_pol_sar, cross_pol_sar, in_sar, thermal.
    metadata : dict or path, optional
        Scene metadata used by conversions (``sun_elevation`` for Landsat), or the path of a
        Landsat ``*_MTL.txt`` file.
    processing_baseline : str, optional
        Sentinel-2 processing baseline (``"04.00"``); read from ``_N0400_`` in paths if absent.
    chunks : dict, optional
        Dask chunks for lazy reading (default ``{"band": -1, "y": 2048, "x": 2048}``).
    check_valid : bool, default True
        Fail if no pixel of the scene holds data in every group (computes ``valid.any()``).
    nodata : float or dict, optional
        The value that means "no data" in the files, for every group or per group
        (``{"dem": -9999}``); overrides the files' nodata tags and the sensor's value. Files
        without any, that hold blocks of a common sentinel (-9999, -32768, zero borders of
        optical data), get an :class:`~glaviz.errors.InputWarning` suggesting it.
    range_warning : float or None, default 0.05
        Warn when more than this fraction of a group's valid values would lie far outside
        [0, 1] after :func:`glaviz.scale` (see there), checked on each file's decimated
        sample; ``None`` skips the check.

    Returns
    -------
    xarray.Dataset
        One float32 variable per group (dims ``(<group>_band, y, x)``, physical units), and
        ``valid`` (bool). ``attrs`` record sensors and source files.

    Raises
    ------
    SceneError
        Missing file, raster without CRS (:class:`~glaviz.errors.SceneCRSError`), rasters that
        do not overlap (:class:`~glaviz.errors.SceneGridError`), wrong band count or order for
        the sensor, files coarser than their band, GDAL scale/offset tags on digital numbers
        the sensor converts itself, a DEM under 2 x 2 pixels, or an all-nodata scene; the
        message names the file and the fix.
    CorruptFileError
        A truncated or corrupt file (an ``OSError``; the message suggests ``gdalinfo
        -checksum``).
    KeyError
        Unknown sensor.

    Notes
    -----
    GDAL scale/offset tags are applied (``raw * scale + offset``), after masking nodata.
    Each file's header and a decimated sample are read once at opening (cached by path, size
    and modification time) for these checks.

    Examples
    --------
    >>> from glaviz.data import fetch
    >>> f = fetch("everest_landsat7")
    >>> ds = open_scene([f["LE71400412000304SGS00_RGB.tif"], f["LE71400412000304SGS00_B4.tif"]],
    ...                 sensor="landsat7_display8")
    >>> ds["optical"].sizes["optical_band"], ds.rio.crs.to_epsg()
    (4, 32645)
    """
    cat = load_catalog()
    offered: dict[str, Source | None] = {
        "optical": optical,
        "dem": dem,
        "co_pol_sar": co_pol_sar,
        "cross_pol_sar": cross_pol_sar,
        "in_sar": in_sar,
        "thermal": thermal,
    }
    given: dict[str, Source] = {g: s for g, s in offered.items() if s is not None}
    if not given:
        raise SceneError("open_scene needs at least one input group (optical=..., dem=..., ...)")
    sensor_of: dict[str, str] = {}
    for group in given:
        name: str | None
        if group in ("optical", "thermal") and sensor is not None:
            name = (sensors or {}).get(group, sensor)
        else:
            name = (sensors or {}).get(group) or cat.default_sensors.get(group)
        if name is None:
            raise SceneError(
                f"{group}: no sensor given; pass sensor=... (known: {sorted(cat.sensors)})"
            )
        sensor_spec = cat.sensor(name)
        if group not in sensor_spec.groups:
            raise SceneError(
                f"{group}: sensor {name!r} does not provide this group (it provides "
                f"{sorted(sensor_spec.groups)}); pass the right sensor"
            )
        sensor_of[group] = name
    meta: dict[str, Any] = {}
    if isinstance(metadata, (str, os.PathLike)):
        meta.update(parse_mtl(metadata))
    elif metadata is not None:
        meta.update(metadata)
    ref_group = reference or next(g for g in GROUPS if g in given)
    if ref_group not in given:
        raise SceneError(
            f"reference group {ref_group!r} is not among the groups given {list(given)}"
        )
    ref_src = given[ref_group]
    if isinstance(ref_src, xr.DataArray):
        if ref_src.rio.crs is None:
            raise SceneCRSError.of(f"{ref_group}: the DataArray")
        ref = _Grid(
            ref_src.rio.crs,
            ref_src.rio.transform(),
            ref_src.rio.width,
            ref_src.rio.height,
            "<in-memory DataArray>",
        )
    else:
        first = _expand_sources(
            ref_src,
            cat.sensor(sensor_of[ref_group]).groups[ref_group],
            ref_group,
            sensor_of[ref_group],
        )
        ref = _grid_of(first[0][0], ref_group)
    all_paths = [
        Path(p)
        for s in given.values()
        if not isinstance(s, xr.DataArray)
        for p in (
            [s]
            if isinstance(s, (str, os.PathLike))
            else (s.values() if isinstance(s, Mapping) else s)
        )
    ]
    if processing_baseline is None:
        processing_baseline = processing_baseline_from_paths(all_paths)
    if processing_baseline is not None:
        meta["processing_baseline"] = processing_baseline
    variables: dict[str, xr.DataArray] = {}
    sources: dict[str, list[str]] = {}
    for group in GROUPS:
        if group not in given:
            continue
        spec = cat.sensor(sensor_of[group]).groups[group]
        data, files = _read_group(
            group, given[group], spec, ref, chunks or DEFAULT_CHUNKS, meta,
            sensor_of[group], nodata_for(nodata, group), range_warning,
        )  # fmt: skip
        data.attrs["sensor"] = sensor_of[group]
        variables[group] = data.rename({"band": band_dim(group)})
        sources[group] = files
        if not isinstance(given[group], xr.DataArray):  # how the lazy array is made
            register(variables[group], {
                "open_scene": group, "sensor": sensor_of[group], "spec": repr(spec),
                "files": [{"file": f} for f in files], "nodata": nodata_for(nodata, group),
                "metadata": meta, "grid": [str(ref.crs), list(ref.transform)[:6], ref.height,
                                           ref.width],
                "bands": [str(b) for b in data["band"].values],
            })  # fmt: skip
    finite = [
        cast(xr.DataArray, np.isfinite(data)).all(band_dim(group))
        for group, data in variables.items()
    ]
    valid = finite[0]
    for ok in finite[1:]:
        valid = valid & ok
    ds = xr.Dataset(variables)
    ds["valid"] = valid.astype(bool)
    if all(is_registered(v) for v in variables.values()):
        register(ds["valid"], {"valid_of": [{"array": v.data.name} for v in variables.values()]})
    ds["valid"].attrs = {"long_name": "pixel holds data in every input group"}
    ds = ds.drop_vars("spatial_ref", errors="ignore")
    ds = ds.rio.write_crs(ref.crs).rio.write_transform(ref.transform)
    ds.attrs = {
        "sensors": json.dumps(sensor_of),
        "sources": json.dumps(sources),
        "scaled": 0,
    }
    if check_valid and not bool(ds["valid"].any()):
        raise SceneError(
            f"the scene has no valid pixel: every pixel is nodata or NaN in at least one group "
            f"({', '.join(f'{g}: {sources[g]}' for g in variables)}); check the files' nodata "
            "values and that the rasters cover the same area"
        )
    return ds
