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
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_bounds

from glaviz.catalog import GROUPS, SensorGroup, load_catalog
from glaviz.data.convert import processing_baseline_from_paths
from glaviz.data.scene import DEFAULT_CHUNKS, SceneError, open_scene
from glaviz.errors import InputTypeError, SceneGridError

if TYPE_CHECKING:  # pragma: no cover
    import pystac

__all__ = ["COMMON_NAMES", "infer_sensor", "open_stac"]

PathLike = str | os.PathLike

#: STAC ``eo`` common names accepted for each canonical band, in order of preference
#: (Sentinel-2 B08 is ``nir``, Landsat OLI B5 ``nir08``; B8A, also ``nir08``, is never taken
#: when B08 is there).
COMMON_NAMES: dict[str, tuple[str, ...]] = {
    "blue": ("blue",),
    "green": ("green",),
    "red": ("red",),
    "nir": ("nir", "nir08"),
    "swir1": ("swir16",),
    "swir2": ("swir22",),
    "brightness_temperature": ("lwir11", "lwir"),
}

_NOT_DATA_ROLES = {"thumbnail", "overview", "visual", "metadata"}
_NOT_DATA_KEYS = {"visual", "tci", "thumbnail", "rendered_preview", "preview"}


# --------------------------------------------------------------------------------------------
# items


def _as_items(items: Any) -> list[pystac.Item]:
    import pystac

    if isinstance(items, (pystac.Item, Mapping, str, os.PathLike)):
        items = [items]
    elif isinstance(items, pystac.ItemCollection):
        items = list(items)
    out = []
    for it in items:
        if isinstance(it, pystac.Item):
            out.append(it)
        elif isinstance(it, Mapping):
            out.append(pystac.Item.from_dict(dict(it)))
        elif isinstance(it, (str, os.PathLike)):
            out.append(pystac.Item.from_file(str(it)))
        else:
            raise InputTypeError(
                f"open_stac: expected pystac.Item, a STAC item dict or the path of an item JSON, "
                f"got {type(it).__name__}"
            )
    if not out:
        raise SceneError("open_stac: no STAC items given (a search that found nothing?)")
    return out


def _where(item: pystac.Item) -> str:
    coll = f" (collection {item.collection_id!r})" if item.collection_id else ""
    return f"STAC item {item.id!r}{coll}"


def _item_time(item: pystac.Item) -> _dt.datetime:
    t = item.datetime or item.common_metadata.start_datetime
    if t is None:
        raise SceneError(f"{_where(item)} has neither datetime nor start_datetime")
    return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)


def _solar_day(item: pystac.Item) -> _dt.date:
    """UTC time shifted by the footprint's longitude / 15 h (odc-stac's ``solar_day``)."""
    lon = 0.0
    if item.bbox:
        lon = (item.bbox[0] + item.bbox[2]) / 2
    return (_item_time(item) + _dt.timedelta(hours=lon / 15.0)).date()


# --------------------------------------------------------------------------------------------
# sensor inference


def _s2_level(props: Mapping[str, Any], collection: str) -> str | None:
    product = str(props.get("s2:product_type", "")).upper()
    if product.endswith("1C"):
        return "l1c"
    if product.endswith("2A"):
        return "l2a"
    level = str(props.get("processing:level", "")).upper()
    if level in ("L1C", "L2A"):
        return level.lower()
    for lvl in ("l1c", "l2a"):
        if lvl in collection:
            return lvl
    return None


def _landsat_level(props: Mapping[str, Any], collection: str) -> str | None:
    for key in ("landsat:correction", "processing:level"):
        value = str(props.get(key, "")).upper()
        if value.startswith(("L1", "L2")):
            return value[:2].lower()
    m = re.search(r"(?:^|[-_]|c2)l([12])(?:$|[-_])", collection)
    return f"l{m.group(1)}" if m else None


def infer_sensor(item: pystac.Item) -> str:
    """The catalog sensor of a STAC item, from its platform, collection and processing level.

    Parameters
    ----------
    item : pystac.Item

    Returns
    -------
    str
        ``"sentinel2_l1c"``, ``"sentinel2_l2a"``, ``"landsat89_l1"`` or ``"landsat89_l2"``
        (whether the catalog holds that sensor is checked by :func:`open_stac`).

    Raises
    ------
    SceneError
        An unknown platform, or a known one whose processing level cannot be told; the
        message names the item and says to pass ``sensor=``.

    Examples
    --------
    >>> import datetime, pystac
    >>> item = pystac.Item("x", None, None, datetime.datetime(2023, 1, 1),
    ...                    {"platform": "sentinel-2b"}, collection="sentinel-2-l1c")
    >>> infer_sensor(item)
    'sentinel2_l1c'
    """
    props = item.properties
    platform = str(props.get("platform", "")).lower()
    constellation = str(props.get("constellation", "")).lower()
    collection = (item.collection_id or "").lower()
    text = " ".join((platform, constellation, collection))
    if re.search(r"sentinel[-_ ]?2", text) or platform in ("s2a", "s2b", "s2c"):
        level = _s2_level(props, collection)
        if level is None:
            raise SceneError(
                f"{_where(item)}: a Sentinel-2 item whose processing level (L1C or L2A) is not "
                "in s2:product_type, processing:level or the collection id; pass "
                "sensor='sentinel2_l1c' (or the sensor of your product)"
            )
        return f"sentinel2_{level}"
    m = re.search(r"landsat[-_ ]?0?(\d)\b", text) or re.search(r"\blc0?([89])\b", text)
    if m and m.group(1) in "89":
        level = _landsat_level(props, collection)
        if level is None:
            raise SceneError(
                f"{_where(item)}: a Landsat {m.group(1)} item whose processing level is not in "
                "landsat:correction, processing:level or the collection id; pass "
                "sensor='landsat89_l1' for Level-1 digital numbers"
            )
        return f"landsat89_{level}"
    known = sorted(load_catalog().sensors)
    raise SceneError(
        f"{_where(item)}: cannot tell the sensor from platform {platform or None!r}, "
        f"constellation {constellation or None!r} (Sentinel-2 L1C/L2A and Landsat 8/9 are "
        f"recognised); pass open_stac(..., sensor=...) with one of {known}"
    )


# --------------------------------------------------------------------------------------------
# assets and their bands


@dataclass(frozen=True)
class _BandInfo:
    name: str | None
    common_name: str | None
    nodata: float | None
    scale: float | None
    offset: float | None
    unit: str | None = None

    @property
    def to_radiance(self) -> bool:
        """The scale/offset give radiance (Landsat Level-1 metadata), not the sensor's quantity."""
        unit = str(self.unit or "").lower()
        return bool(re.search(r"watt|radiance|w\s*/|w\s*m", unit))


def _number(v: Any) -> float | None:
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _asset_bands(asset: pystac.Asset) -> list[_BandInfo]:
    """Per-band metadata of an asset from ``eo:bands``, ``raster:bands`` or STAC 1.1 ``bands``."""
    f = asset.extra_fields
    eo = list(f.get("eo:bands") or [])
    rb = list(f.get("raster:bands") or [])
    common = list(f.get("bands") or [])
    n = max(len(eo), len(rb), len(common), 1)

    def field(i: int, *keys: str) -> Any:
        for lst in (common, eo, rb):
            if i < len(lst) and isinstance(lst[i], Mapping):
                for k in keys:
                    if lst[i].get(k) is not None:
                        return lst[i][k]
        for k in keys:  # asset-level values (STAC 1.1) apply to every band
            if f.get(k) is not None:
                return f[k]
        return None

    return [
        _BandInfo(
            field(i, "name"),
            field(i, "eo:common_name", "common_name"),
            _number(field(i, "nodata")),
            _number(field(i, "raster:scale", "scale")),
            _number(field(i, "raster:offset", "offset")),
            field(i, "unit"),
        )
        for i in range(n)
    ]


def _is_data_asset(key: str, asset: pystac.Asset) -> bool:
    roles = set(asset.roles or [])
    if key.lower() in _NOT_DATA_KEYS or (roles & _NOT_DATA_ROLES and "data" not in roles):
        return False
    media = (asset.media_type or "").lower()
    if media:
        return media.startswith("image/") or "geotiff" in media or "jp2" in media
    return "data" in roles or asset.href.lower().split("?")[0].endswith((".tif", ".tiff", ".jp2"))


@dataclass(frozen=True)
class _BandSource:
    sensor_band: str
    canonical: str
    key: str
    index: int  # 1-based band of the asset
    n_bands: int
    info: _BandInfo


def _find_band(
    item: pystac.Item,
    sensor_band: str,
    canonical: str,
    explicit: Mapping[str, str],
    sensor: str,
) -> _BandSource:
    assets = {k: a for k, a in item.assets.items() if _is_data_asset(k, a)}
    bands = {k: _asset_bands(a) for k, a in assets.items()}

    def source(key: str, idx: int) -> _BandSource:
        return _BandSource(sensor_band, canonical, key, idx + 1, len(bands[key]), bands[key][idx])

    wanted = explicit.get(sensor_band) or explicit.get(canonical)
    if wanted is not None:
        if wanted not in item.assets:
            raise SceneError(
                f"{_where(item)}: bands={{{sensor_band!r}: {wanted!r}}} names no asset of the "
                f"item; its assets: {sorted(item.assets)}"
            )
        info = _asset_bands(item.assets[wanted])
        bands[wanted] = info
        for i, b in enumerate(info):
            if {str(b.name).lower(), str(b.common_name).lower()} & {sensor_band.lower()}:
                return source(wanted, i)
        return source(wanted, 0)
    sb = sensor_band.lower()
    for key in assets:  # 1. the asset key is the sensor's band name (B02, b02)
        if key.lower() == sb and len(bands[key]) == 1:
            return source(key, 0)
    for key in assets:  # 2. an eo band named like the sensor's band
        for i, b in enumerate(bands[key]):
            if b.name is not None and b.name.lower() == sb:
                return source(key, i)
    # 3. common names, preferring: the listed order, single-band assets, COGs, key == name
    names = COMMON_NAMES.get(canonical, (canonical,))
    found = []
    for key, a in assets.items():
        for i, b in enumerate(bands[key]):
            cn = (b.common_name or "").lower()
            if cn in names or (len(bands[key]) == 1 and key.lower() in names and not cn):
                rank = names.index(cn or key.lower())
                not_cog = "cloud-optimized" not in (a.media_type or "").lower()
                found.append(((rank, len(bands[key]), not_cog, key != cn, key), key, i))
    if found:
        _, key, i = min(found)
        return source(key, i)
    raise SceneError(
        f"{_where(item)}: no asset for band {sensor_band!r} ({canonical}) of sensor "
        f"{sensor!r}: no asset key or eo band named {sensor_band!r} and no eo common name in "
        f"{list(names)}; data assets: {sorted(assets)}. Pass open_stac(..., "
        f"bands={{{sensor_band!r}: '<asset key>'}}), or groups=[...] without this group"
    )


# --------------------------------------------------------------------------------------------
# grids


def _proj_field(item: pystac.Item, asset: pystac.Asset, key: str) -> Any:
    if asset.extra_fields.get(key) is not None:
        return asset.extra_fields[key]
    return item.properties.get(key)


def _asset_grid(item: pystac.Item, key: str) -> tuple[CRS, Affine, tuple[int, int]] | None:
    """(crs, transform, (height, width)) of an asset from the proj extension, if complete."""
    asset = item.assets[key]
    code = _proj_field(item, asset, "proj:code")
    epsg = _proj_field(item, asset, "proj:epsg")
    wkt = _proj_field(item, asset, "proj:wkt2")
    projjson = _proj_field(item, asset, "proj:projjson")
    transform = _proj_field(item, asset, "proj:transform")
    shape = _proj_field(item, asset, "proj:shape")
    crs_in = code or (f"EPSG:{epsg}" if epsg is not None else None) or wkt or projjson
    if crs_in is None or transform is None or shape is None:
        return None
    t = Affine(*[float(v) for v in list(transform)[:6]])
    return CRS.from_user_input(crs_in), t, (int(shape[0]), int(shape[1]))


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


def _no_proj_error(item: pystac.Item, key: str, what: str) -> SceneGridError:
    return SceneGridError(
        f"{_where(item)}: asset {key!r} has no complete projection information "
        "(proj:code or proj:epsg, proj:transform and proj:shape), so the grid is unknown; "
        f"{what}"
    )


# --------------------------------------------------------------------------------------------
# conversion metadata from the item


def _expected_linear(conv: Mapping[str, Any]) -> tuple[float, float] | None:
    """(scale, offset) that turn the asset's values into what the conversion computes first."""
    kind = conv["kind"]
    if kind == "landsat_toa_reflectance" or kind == "landsat_brightness_temperature":
        return float(conv["mult"]), float(conv["add"])
    if kind == "linear":
        return float(conv["scale"]), float(conv["offset"])
    if kind == "identity":
        return 1.0, 0.0
    return None


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-9)


def _conversion_metadata(
    items: Sequence[pystac.Item],
    sources: Mapping[str, list[list[_BandSource]]],
    specs: Mapping[str, SensorGroup],
    sensor: str,
    processing_baseline: str | None,
    metadata: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metadata for the conversions, provenance attrs) of one date's items."""
    meta: dict[str, Any] = {}
    attrs: dict[str, Any] = {}
    ids = ", ".join(repr(it.id) for it in items)
    for group, spec in specs.items():
        conv = spec.conversion
        # a scale to radiance (with its unit) says nothing against DN assets: not checked
        infos = [s.info for per in sources[group] for s in per if not s.info.to_radiance]
        scales = {s.scale for s in infos if s.scale is not None}
        offsets = {s.offset for s in infos if s.offset is not None}
        if conv["kind"] == "sentinel2_l1c":
            q = float(conv["quantification_value"])
            bad = [s for s in scales if not _close(s, 1.0 / q)]
            if bad:
                raise SceneError(
                    f"STAC item(s) {ids}: raster:bands scale {bad[0]:g} but sensor {sensor!r} "
                    f"expects digital numbers / {q:g} (scale {1 / q:g}); these assets are "
                    "another product: pass the right sensor="
                )
            baseline = reported = processing_baseline
            if baseline is None:
                found = {
                    str(it.properties.get("s2:processing_baseline"))
                    for it in items
                    if it.properties.get("s2:processing_baseline") is not None
                } or {
                    str(it.properties.get("processing:version"))
                    for it in items
                    if it.properties.get("processing:version") is not None
                }
                if len(found) > 1:
                    raise SceneError(
                        f"STAC items {ids} of one date have different processing baselines "
                        f"{sorted(found)}; open them separately (or pass processing_baseline=)"
                    )
                baseline = found.pop() if found else None
                if baseline is None:
                    hrefs = [
                        it.assets[s.key].href for it, per in zip(items, sources[group]) for s in per
                    ]
                    baseline = processing_baseline_from_paths([Path(h) for h in hrefs])
                reported = baseline
                with_offset = float(conv["radiometric_offset"]) / q
                if offsets:
                    if len(offsets) > 1:
                        raise SceneError(
                            f"STAC item(s) {ids}: the bands' raster:bands offsets differ "
                            f"({sorted(offsets)}); pass processing_baseline= to choose"
                        )
                    off = offsets.pop()
                    # the asset's own statement about its values decides (harmonised
                    # collections shift older baselines by the same offset)
                    if _close(off, with_offset):
                        if baseline is None or _older(baseline, conv["offset_from_baseline"]):
                            baseline = str(conv["offset_from_baseline"])
                            attrs["processing_baseline_note"] = (
                                f"radiometric offset applied (as from baseline {baseline}) "
                                f"because raster:bands offset is {off:g}"
                            )
                    elif _close(off, 0.0):
                        if baseline is None or not _older(baseline, conv["offset_from_baseline"]):
                            baseline = "00.00"
                            attrs["processing_baseline_note"] = (
                                "no radiometric offset because raster:bands offset is 0"
                            )
                    else:
                        raise SceneError(
                            f"STAC item(s) {ids}: raster:bands offset {off:g} is neither 0 nor "
                            f"{with_offset:g}; pass processing_baseline= to choose"
                        )
            if baseline is None:
                raise SceneError(
                    f"STAC item(s) {ids}: the Sentinel-2 processing baseline is unknown (no "
                    "s2:processing_baseline property, no raster:bands offset, no _N0400_ in the "
                    "hrefs); pass open_stac(..., processing_baseline='04.00')"
                )
            meta["processing_baseline"] = baseline
            if processing_baseline is not None or reported is not None:
                attrs["processing_baseline"] = processing_baseline or reported
            continue
        expected = _expected_linear(conv)
        if expected is not None:
            bad_s = [s for s in scales if not _close(s, expected[0])]
            bad_o = [o for o in offsets if not _close(o, expected[1])]
            if bad_s or bad_o:
                got = f"scale {bad_s[0]:g}" if bad_s else f"offset {bad_o[0]:g}"
                raise SceneError(
                    f"STAC item(s) {ids}: {group} assets have raster:bands {got}, but sensor "
                    f"{sensor!r} expects values scaled by {expected[0]:g} + {expected[1]:g} "
                    "(its conversion); these assets are another product (e.g. Level-2 surface "
                    "reflectance): pass the right sensor="
                )
        if conv["kind"] == "landsat_toa_reflectance":
            suns = [
                float(it.properties["view:sun_elevation"])
                for it in items
                if it.properties.get("view:sun_elevation") is not None
            ]
            if suns:
                meta["sun_elevation"] = float(np.mean(suns))
                attrs["sun_elevation"] = meta["sun_elevation"]
            elif not metadata or not any(k.lower() == "sun_elevation" for k in metadata):
                raise SceneError(
                    f"STAC item(s) {ids}: Landsat TOA reflectance needs the sun elevation and "
                    "the item has no view:sun_elevation; pass "
                    "open_stac(..., metadata={'sun_elevation': ...})"
                )
    if metadata:
        meta.update(metadata)
    return meta, attrs


def _older(a: str, b: str) -> bool:
    def t(v: str) -> tuple[int, ...]:
        try:
            return tuple(int(p) for p in str(v).split("."))
        except ValueError:
            raise SceneError(f"processing baseline {v!r} is not of the form '04.00'") from None

    return t(a) < t(b)


# --------------------------------------------------------------------------------------------
# loading


def _load_key(s: _BandSource) -> str:
    """Asset key in the minimal items: the sensor band (multi-band assets keep their key)."""
    return s.sensor_band if s.n_bands == 1 else s.key


def _odc_name(s: _BandSource) -> str:
    return _load_key(s) if s.n_bands == 1 else f"{s.key}.{s.index}"


def _load_item(item: pystac.Item, srcs: Iterable[_BandSource], with_proj: bool) -> pystac.Item:
    """A minimal copy of ``item`` with only the assets to read, named alike in every item."""
    import pystac

    proj_ext = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
    raster_ext = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
    out = pystac.Item(
        item.id,
        item.geometry,
        item.bbox,
        _item_time(item),
        {},
        stac_extensions=[proj_ext, raster_ext] if with_proj else [raster_ext],
    )
    for s in srcs:
        key = _load_key(s)
        if key in out.assets:
            continue
        extra: dict[str, Any] = {"raster:bands": [{} for _ in range(s.n_bands)]}
        if with_proj:
            grid = _asset_grid(item, s.key)
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


def _clean_href(href: str) -> str:
    return href.split("?", 1)[0]  # drop signatures / tokens from provenance


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
            [_find_band(it, sb, canon, explicit, sensor) for sb, canon in spec.band_map]
            for it in items
        ]
        for g, spec in specs.items()
    }
    meta, extra_attrs = _conversion_metadata(
        items, sources, specs, sensor, processing_baseline, metadata
    )
    all_srcs = [(it, s) for g in groups for it, per in zip(items, sources[g]) for s in per]
    grids = {(it.id, s.key): _asset_grid(it, s.key) for it, s in all_srcs}
    with_proj = all(g is not None for g in grids.values())
    ref_group = groups[0]
    ref_src = [per[0] for per in sources[ref_group]]
    load_kw: dict[str, Any] = {}
    if crs is None and resolution is None:
        missing = next(((it, s) for (it, s) in all_srcs if grids[(it.id, s.key)] is None), None)
        if missing is not None:
            raise _no_proj_error(
                missing[0],
                missing[1].key,
                "pass crs= and resolution= (e.g. crs='EPSG:32645', resolution=10) to choose one",
            )
        ref_crs, ref_t, _ = grids[(items[0].id, ref_src[0].key)]
        if ref_t.b != 0 or ref_t.d != 0 or ref_t.a <= 0 or ref_t.e >= 0:
            raise SceneGridError(
                f"{_where(items[0])}: asset {ref_src[0].key!r} has a rotated or flipped grid "
                f"{tuple(ref_t)[:6]}; pass crs= and resolution= to load it north-up"
            )
        boxes = []
        for it, s in zip(items, ref_src):
            g_crs, g_t, g_shape = grids[(it.id, s.key)]
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
                raise _no_proj_error(items[0], ref_src[0].key, "pass crs= as well as resolution=")
            crs = ref_grid[0]
        if resolution is None:
            if ref_grid is None or CRS.from_user_input(crs) != ref_grid[0]:
                raise SceneError(
                    f"{_where(items[0])}: crs={crs!s} given without resolution=; pass "
                    "resolution= in the units of that CRS"
                )
            resolution = abs(ref_grid[1].a)
        if not with_proj and bbox is None and any(it.geometry is None for it in items):
            raise _no_proj_error(
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
    arrays: dict[str, xr.DataArray] = {}
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
                same = s_crs == CRS.from_user_input(gbox.crs.to_wkt()) and _close(
                    s_t.a, gbox.transform.a
                )
                if not same or not _close(s_t.e, gbox.transform.e):
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
            _clean_href(it.assets[s.key].get_absolute_href() or it.assets[s.key].href)
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
    ds.attrs["datetime"] = min(_item_time(it) for it in items).isoformat()
    ds.attrs.update(extra_attrs)
    return ds


def open_stac(
    items: Any,
    *,
    sensor: str | None = None,
    bbox: Sequence[float] | None = None,
    crs: Any = None,
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
    its = _as_items(items)
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
                f"{_where(its[0])} is {sensor!r}, which has no sensor spec in "
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
    for it in sorted(its, key=lambda i: (_item_time(i), i.id)):
        by_day.setdefault(_solar_day(it), []).append(it)
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
