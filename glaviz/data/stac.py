"""Scenes straight from STAC items: the same Dataset as :func:`~glaviz.data.scene.open_scene`.

:func:`open_stac` takes STAC items (``pystac.Item``, their JSON dicts or files, an
``ItemCollection`` from ``pystac-client``), finds each sensor band's asset through the ``eo``
band names and common names (or the asset keys), reads the pixels lazily with odc-stac and hands
them, one input group at a time, to :func:`~glaviz.data.scene.open_scene`, so that band order,
conversions, ``valid`` and attributes are exactly those of a scene opened from the same files.

What comes from which STAC field:

- **sensor**: ``platform`` / ``constellation`` / the collection id and the processing level
  (``s2:product_type``, ``processing:level``, ``landsat:correction`` or the collection id):
  Sentinel-2 L1C -> ``sentinel2_l1c``, Sentinel-2 L2A -> ``sentinel2_l2a``, Landsat 8/9
  Level-1 -> ``landsat89_l1`` (:func:`infer_sensor`); anything else needs ``sensor=``.
- **grid**: the ``proj`` extension (``proj:code``/``proj:epsg``/``proj:wkt2``,
  ``proj:transform``, ``proj:shape``) of the reference band's asset (the first band of the first
  group, e.g. Sentinel-2 B02 at 10 m), as ``open_scene`` takes the grid of its first file; or
  ``crs=`` and ``resolution=``. ``bbox=`` (lon/lat) crops it, snapped to whole pixels.
- **nodata**: the file's own nodata tag (used while resampling), the ``raster`` extension's
  ``nodata`` and the sensor spec's ``nodata`` (both masked after reading).
- **scale/offset** (``raster`` extension): the assets must hold the digital numbers the sensor's
  conversion expects (a scale or offset that contradicts it, e.g. Landsat Level-2 surface
  reflectance under a Level-1 spec, is an error naming the item). For Sentinel-2 the offset
  decides whether the radiometric offset of baseline 04.00+ applies, which also covers
  harmonised collections that shifted older baselines.
- **conversion metadata**: ``s2:processing_baseline`` (else ``processing:version``, else
  ``_N0400_`` in the hrefs), ``view:sun_elevation`` for Landsat.
- **provenance**: ``attrs["stac_items"]``, ``["stac_collections"]``, ``["stac_assets"]``,
  ``["datetime"]`` and hrefs (query strings such as access tokens removed) in
  ``attrs["sources"]``.

This module loads the pixels and builds the scenes; reading the items (sensor, band-to-asset
matching, grids) is :mod:`glaviz.data.stac_items`, their conversion metadata
:mod:`glaviz.data.stac_metadata`.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import xarray as xr
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_bounds

from glaviz.catalog import GROUPS, load_catalog
from glaviz.data.scene import DEFAULT_CHUNKS, SceneError, open_scene
from glaviz.data.stac_items import (
    COMMON_NAMES,
    BandSource,
    as_items,
    asset_grid,
    clean_href,
    describe_item,
    find_band,
    infer_sensor,
    item_time,
    nearly_equal,
    no_proj_error,
    solar_day,
)
from glaviz.data.stac_metadata import conversion_metadata
from glaviz.errors import SceneGridError
from glaviz.types import CRSLike

if TYPE_CHECKING:  # pragma: no cover
    import pystac

#: What :func:`open_stac` takes: pystac Items, an ItemCollection, item JSON dicts or paths/URLs
#: of item JSON files, or a sequence of them.
StacItem: TypeAlias = "pystac.Item | Mapping[str, Any] | str | os.PathLike[str]"
StacItems: TypeAlias = "StacItem | pystac.ItemCollection | Iterable[StacItem]"

__all__ = ["COMMON_NAMES", "infer_sensor", "open_stac"]

PathLike = str | os.PathLike


# --------------------------------------------------------------------------------------------
# grids


def _bounds(t: Affine, shape: tuple[int, int]) -> tuple[float, float, float, float]:
    x0, y0 = t.c, t.f
    x1, y1 = t * (shape[1], shape[0])
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def _snap(t: Affine, bounds: Sequence[float]) -> tuple[Affine, tuple[int, int]]:
    """The window of grid ``t`` (north-up) that covers ``bounds``, in whole pixels."""
    eps = 1e-6
    minx, miny, maxx, maxy = bounds
    c0 = math.floor((minx - t.c) / t.a + eps)
    c1 = math.ceil((maxx - t.c) / t.a - eps)
    r0 = math.floor((maxy - t.f) / t.e + eps)
    r1 = math.ceil((miny - t.f) / t.e - eps)
    return Affine(t.a, 0.0, t.c + c0 * t.a, 0.0, t.e, t.f + r0 * t.e), (r1 - r0, c1 - c0)


# --------------------------------------------------------------------------------------------
# loading


def _load_key(s: BandSource) -> str:
    """Asset key in the minimal items: the sensor band (multi-band assets keep their key)."""
    return s.sensor_band if s.n_bands == 1 else s.key


def _odc_name(s: BandSource) -> str:
    return _load_key(s) if s.n_bands == 1 else f"{s.key}.{s.index}"


def _load_item(item: pystac.Item, srcs: Iterable[BandSource], with_proj: bool) -> pystac.Item:
    """A minimal copy of ``item`` with only the assets to read, named alike in every item."""
    import pystac

    proj_ext = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
    raster_ext = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
    out = pystac.Item(
        item.id,
        item.geometry,
        item.bbox,
        item_time(item),
        {},
        stac_extensions=[proj_ext, raster_ext] if with_proj else [raster_ext],
    )
    for s in srcs:
        key = _load_key(s)
        if key in out.assets:
            continue
        extra: dict[str, Any] = {"raster:bands": [{} for _ in range(s.n_bands)]}
        if with_proj:
            grid = asset_grid(item, s.key)
            assert grid is not None
            crs, t, shape = grid
            if crs.to_epsg() is not None:
                extra["proj:code"] = f"EPSG:{crs.to_epsg()}"
            else:
                extra["proj:wkt2"] = crs.to_wkt()
            extra["proj:transform"] = list(t)[:6]
            extra["proj:shape"] = list(shape)
        href = item.assets[s.key].get_absolute_href() or item.assets[s.key].href
        out.add_asset(
            key, pystac.Asset(href, media_type="image/tiff", roles=["data"], extra_fields=extra)
        )
    return out


def _group_zero(*_: Any) -> int:
    return 0


def _open_date(
    items: list[pystac.Item],
    *,
    sensor: str,
    groups: list[str],
    explicit: Mapping[str, str],
    bbox: Sequence[float] | None,
    crs: Any,
    resolution: float | None,
    dem: Any,
    processing_baseline: str | None,
    metadata: Mapping[str, Any] | None,
    resampling: str,
    chunks: Mapping[str, int],
    check_valid: bool,
    patch_url: Callable[[str], str] | None,
) -> xr.Dataset:
    import odc.stac
    from odc.geo.geobox import GeoBox

    cat = load_catalog()
    specs = {g: cat.sensor(sensor).groups[g] for g in groups}
    sources = {
        g: [
            [find_band(it, sb, canon, explicit, sensor) for sb, canon in spec.band_map]
            for it in items
        ]
        for g, spec in specs.items()
    }
    meta, extra_attrs = conversion_metadata(
        items, sources, specs, sensor, processing_baseline, metadata
    )
    all_srcs = [(it, s) for g in groups for it, per in zip(items, sources[g]) for s in per]
    grids = {(it.id, s.key): asset_grid(it, s.key) for it, s in all_srcs}
    with_proj = all(g is not None for g in grids.values())
    ref_group = groups[0]
    ref_src = [per[0] for per in sources[ref_group]]
    load_kw: dict[str, Any] = {}
    if crs is None and resolution is None:
        missing = next(((it, s) for (it, s) in all_srcs if grids[(it.id, s.key)] is None), None)
        if missing is not None:
            raise no_proj_error(
                missing[0],
                missing[1].key,
                "pass crs= and resolution= (e.g. crs='EPSG:32645', resolution=10) to choose one",
            )
        known = {k: g for k, g in grids.items() if g is not None}  # all of them, checked above
        ref_crs, ref_t, _ = known[(items[0].id, ref_src[0].key)]
        if ref_t.b != 0 or ref_t.d != 0 or ref_t.a <= 0 or ref_t.e >= 0:
            raise SceneGridError(
                f"{describe_item(items[0])}: asset {ref_src[0].key!r} has a rotated or flipped "
                f"grid {tuple(ref_t)[:6]}; pass crs= and resolution= to load it north-up"
            )
        boxes = []
        for it, s in zip(items, ref_src):
            g_crs, g_t, g_shape = known[(it.id, s.key)]
            b = _bounds(g_t, g_shape)
            boxes.append(b if g_crs == ref_crs else transform_bounds(g_crs, ref_crs, *b))
        area = (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )
        if bbox is not None:
            bb = transform_bounds("EPSG:4326", ref_crs, *bbox, densify_pts=21)
            area = (
                max(area[0], bb[0]),
                max(area[1], bb[1]),
                min(area[2], bb[2]),
                min(area[3], bb[3]),
            )
            if area[0] >= area[2] or area[1] >= area[3]:
                raise SceneGridError(
                    f"bbox {tuple(bbox)} (lon/lat) does not overlap STAC item(s) "
                    f"{[it.id for it in items]}; give a bbox inside their footprint"
                )
        t, shape = _snap(ref_t, area)
        load_kw["geobox"] = GeoBox(shape, t, ref_crs.to_string())
    else:
        ref_grid = grids[(items[0].id, ref_src[0].key)]
        if crs is None:
            if ref_grid is None:
                raise no_proj_error(items[0], ref_src[0].key, "pass crs= as well as resolution=")
            crs = ref_grid[0]
        if resolution is None:
            if ref_grid is None or CRS.from_user_input(crs) != ref_grid[0]:
                raise SceneError(
                    f"{describe_item(items[0])}: crs={crs!s} given without resolution=; pass "
                    "resolution= in the units of that CRS"
                )
            resolution = abs(ref_grid[1].a)
        if not with_proj and bbox is None and any(it.geometry is None for it in items):
            raise no_proj_error(
                items[0], ref_src[0].key, "and the item has no geometry: pass bbox= as well"
            )
        load_kw.update(crs=CRS.from_user_input(crs).to_string(), resolution=resolution)
        if bbox is not None:
            load_kw["bbox"] = tuple(bbox)
    load_items = [
        _load_item(it, [s for g in groups for s in sources[g][i]], with_proj)
        for i, it in enumerate(items)
    ]
    names = list(dict.fromkeys(_odc_name(s) for g in groups for s in sources[g][0]))
    try:
        with warnings.catch_warnings():
            # odc-geo still calls shapely.ops.transform (deprecated in shapely 2.1)
            warnings.filterwarnings("ignore", "The 'shapely.ops.transform", DeprecationWarning)
            loaded = odc.stac.load(
                load_items,
                bands=names,
                groupby=_group_zero,
                resampling=resampling,
                dtype="float32",
                nodata=np.nan,
                chunks={"y": chunks["y"], "x": chunks["x"]},
                patch_url=patch_url,
                **load_kw,
            )
    except ValueError as err:
        raise SceneError(f"STAC item(s) {[it.id for it in items]}: odc-stac: {err}") from err
    gbox = loaded.odc.geobox
    loaded = loaded.isel(time=0, drop=True).drop_vars("spatial_ref", errors="ignore")
    arrays: dict[str, Any] = {}  # open_scene's sources, by group
    warped: dict[str, str] = {}
    for g in groups:
        bands = []
        for s in sources[g][0]:
            da_ = loaded[_odc_name(s)]
            nodata = s.info.nodata
            if nodata is not None and not np.isnan(nodata):
                da_ = da_.where(da_ != nodata)
            bands.append(da_)
            src_grid = grids[(items[0].id, s.key)]
            if src_grid is not None:
                s_crs, s_t, _ = src_grid
                same = s_crs == CRS.from_user_input(gbox.crs.to_wkt()) and nearly_equal(
                    s_t.a, gbox.transform.a
                )
                if not same or not nearly_equal(s_t.e, gbox.transform.e):
                    warped[g] = f"{s_crs} at {s_t.a:g} x {-s_t.e:g}"
        arr = xr.concat(bands, dim="band", join="override").assign_coords(
            band=[sb for sb, _ in specs[g].band_map]
        )
        arr = arr.rio.write_crs(gbox.crs.to_wkt()).rio.write_transform(gbox.transform)
        arrays[g] = arr
    ids = [it.id for it in items]
    try:
        ds = open_scene(
            **arrays,
            dem=dem,
            sensor=sensor,
            sensors={g: sensor for g in groups},
            reference=groups[0],
            metadata=meta,
            processing_baseline=meta.get("processing_baseline"),
            check_valid=check_valid,
        )
    except SceneError as err:  # the same class, naming the items
        raise type(err)(f"STAC item(s) {ids}: {err}") from err
    except ValueError as err:  # a conversion's missing metadata
        raise SceneError(
            f"STAC item(s) {ids}: {err} (with open_stac, pass metadata= / processing_baseline=)"
        ) from err
    for g, w in warped.items():
        ds[g].attrs["warped_from"] = w
    scene_sources = json.loads(ds.attrs["sources"])
    for g in groups:
        hrefs = [
            clean_href(it.assets[s.key].get_absolute_href() or it.assets[s.key].href)
            for it, per in zip(items, sources[g])
            for s in per
        ]
        scene_sources[g] = list(dict.fromkeys(hrefs))  # a multi-band asset counts once
    ds.attrs["sources"] = json.dumps(scene_sources)
    ds.attrs["stac_items"] = json.dumps(ids)
    ds.attrs["stac_collections"] = json.dumps(
        list(dict.fromkeys(it.collection_id for it in items if it.collection_id))
    )
    ds.attrs["stac_assets"] = json.dumps(
        {g: {s.sensor_band: s.key for s in sources[g][0]} for g in groups}
    )
    ds.attrs["datetime"] = min(item_time(it) for it in items).isoformat()
    ds.attrs.update(extra_attrs)
    return ds


def open_stac(
    items: StacItems,
    *,
    sensor: str | None = None,
    bbox: Sequence[float] | None = None,
    crs: CRSLike | None = None,
    resolution: float | None = None,
    dem: PathLike | xr.DataArray | None = None,
    groups: Sequence[str] | None = None,
    bands: Mapping[str, str] | None = None,
    processing_baseline: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    resampling: str = "bilinear",
    chunks: Mapping[str, int] | None = None,
    check_valid: bool = False,
    patch_url: Callable[[str], str] | None = None,
) -> xr.Dataset | list[xr.Dataset]:
    """Open STAC items as scenes: the Dataset :func:`~glaviz.data.scene.open_scene` builds.

    Parameters
    ----------
    items : pystac.Item, dict, path, ItemCollection or a sequence of them
        STAC items (e.g. from ``pystac_client.Client.search(...).item_collection()``), their
        JSON dicts, or paths/URLs of item JSON files.
    sensor : str, optional
        Catalog sensor (``data_catalog/sensors.yml``); inferred from the items by
        :func:`infer_sensor` when absent. All items must share it.
    bbox : (west, south, east, north), optional
        Crop to this lon/lat box (snapped outward to whole pixels of the grid).
    crs, resolution : optional
        Output CRS and pixel size (in CRS units). Default: the grid of the reference band's
        asset (``proj`` extension); needed when the items carry no ``proj`` information.
    dem : path or DataArray, optional
        A DEM for the ``dem`` group, warped onto the scene grid as ``open_scene`` does.
    groups : sequence of str, optional
        Input groups to read from the items (default every group the sensor provides, e.g.
        Landsat 8/9 ``optical`` and ``thermal``); the first in glaviz's group order
        (``optical`` first) defines the grid.
    bands : dict, optional
        ``{sensor band or canonical band: asset key}`` for assets the automatic matching (asset
        key, ``eo`` band name, ``eo`` common name) does not find.
    processing_baseline : str, optional
        Sentinel-2 processing baseline, overriding the items' metadata.
    metadata : dict, optional
        Conversion metadata overriding the items' (``{"sun_elevation": 41.5}``).
    resampling : str, default "bilinear"
        Resampling of bands on another grid (open_scene's).
    chunks : dict, optional
        Dask chunks ``{"y": 2048, "x": 2048}`` (the default, as open_scene).
    check_valid : bool, default False
        Fail if no pixel holds data in every group. This reads every pixel once (downloads
        remote assets), so it is off by default, unlike open_scene.
    patch_url : callable, optional
        Applied to every href before reading, e.g. ``planetary_computer.sign``.

    Returns
    -------
    xarray.Dataset or list of xarray.Dataset
        One lazy (dask) scene like ``open_scene``'s: float32 ``(<group>_band, y, x)`` variables
        in physical units, ``valid``, ``attrs`` ``sensors``/``sources``/``scaled`` plus
        ``stac_items``, ``stac_collections``, ``stac_assets`` and ``datetime``. Items are
        grouped by solar day (UTC shifted by longitude / 15 h): items of one day (adjacent
        tiles of one pass) are mosaicked into one scene (the earliest item, then the smallest
        id, wins where they overlap); items of several days give a list of scenes, one per
        day, in date order.

    Raises
    ------
    SceneError
        Unknown platform, a sensor missing from the catalog, a band without asset, no grid
        (no ``proj`` data and no ``crs=``), a scale or offset contradicting the sensor's
        conversion, missing conversion metadata; each message names the item and the fix.

    Examples
    --------
    >>> import datetime, pystac
    >>> from glaviz.data import fetch
    >>> f = fetch("everest_landsat7")
    >>> item = pystac.Item("everest", None, None, datetime.datetime(2000, 10, 30), {
    ...     "proj:code": "EPSG:32645", "proj:shape": [655, 800],
    ...     "proj:transform": [30, 0, 478000, 0, -30, 3108140]})
    >>> eo = [{"name": "red"}, {"name": "green"}, {"name": "blue"}]
    >>> item.add_asset("rgb", pystac.Asset(str(f["LE71400412000304SGS00_RGB.tif"]),
    ...                                    extra_fields={"eo:bands": eo}))
    >>> item.add_asset("nir", pystac.Asset(str(f["LE71400412000304SGS00_B4.tif"]),
    ...     extra_fields={"eo:bands": [{"name": "B4", "common_name": "nir"}]}))
    >>> ds = open_stac(item, sensor="landsat7_display8")
    >>> ds["optical"]["optical_band"].values.tolist(), ds["optical"].shape, ds.rio.crs.to_epsg()
    (['blue', 'green', 'red', 'nir'], (4, 655, 800), 32645)
    """
    try:
        import odc.stac  # noqa: F401
        import pystac  # noqa: F401
    except ImportError as err:  # pragma: no cover
        raise ImportError(
            f"open_stac needs odc-stac and pystac ({err}); pip install odc-stac pystac"
        ) from err
    its = as_items(items)
    cat = load_catalog()
    if sensor is None:
        inferred = {it.id: infer_sensor(it) for it in its}
        names = sorted(set(inferred.values()))
        if len(names) > 1:
            raise SceneError(
                f"STAC items of several sensors {inferred}; call open_stac once per sensor"
            )
        sensor = names[0]
        if sensor not in cat.sensors:
            raise SceneError(
                f"{describe_item(its[0])} is {sensor!r}, which has no sensor spec in "
                f"{cat.path / 'sensors.yml'} (known: {sorted(cat.sensors)}); add it there, or "
                "pass sensor=... if one of the known specs describes these assets"
            )
    spec = cat.sensor(sensor)
    if groups is None:
        groups = [g for g in GROUPS if g in spec.groups]
    groups = list(groups)
    bad = [g for g in groups if g not in spec.groups]
    if bad or not groups:
        raise SceneError(
            f"groups={groups}: sensor {sensor!r} provides {sorted(spec.groups)}; pass some of "
            "those (a DEM is given with dem=)"
        )
    groups = [g for g in GROUPS if g in groups]
    by_day: dict[_dt.date, list[pystac.Item]] = {}
    for it in sorted(its, key=lambda i: (item_time(i), i.id)):
        by_day.setdefault(solar_day(it), []).append(it)
    scenes = [
        _open_date(
            day_items,
            sensor=sensor,
            groups=groups,
            explicit=dict(bands or {}),
            bbox=bbox,
            crs=crs,
            resolution=resolution,
            dem=dem,
            processing_baseline=processing_baseline,
            metadata=metadata,
            resampling=resampling,
            chunks={**{k: DEFAULT_CHUNKS[k] for k in ("y", "x")}, **dict(chunks or {})},
            check_valid=check_valid,
            patch_url=patch_url,
        )
        for _, day_items in sorted(by_day.items())
    ]
    return scenes[0] if len(scenes) == 1 else scenes
