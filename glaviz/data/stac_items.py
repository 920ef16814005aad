"""Reading STAC items: what each item says, for :func:`~glaviz.data.stac.open_stac`.

Normalises the accepted inputs to ``pystac.Item`` (:func:`as_items`), dates them
(:func:`item_time`, :func:`solar_day`), infers the catalog sensor from ``platform`` /
``constellation`` / the collection and the processing level (:func:`infer_sensor`), matches
each sensor band to an asset through the asset keys and the ``eo`` / ``raster`` / STAC 1.1
band fields (:func:`find_band`), reads asset grids from the ``proj`` extension
(:func:`asset_grid`) and cleans hrefs for provenance (:func:`clean_href`). Nothing here reads
pixels.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from affine import Affine
from rasterio.crs import CRS

from glaviz.catalog import load_catalog
from glaviz.data.scene import SceneError
from glaviz.errors import InputTypeError, SceneGridError

if TYPE_CHECKING:  # pragma: no cover
    import pystac

__all__ = [
    "COMMON_NAMES",
    "BandInfo",
    "BandSource",
    "as_items",
    "asset_grid",
    "clean_href",
    "describe_item",
    "find_band",
    "infer_sensor",
    "item_time",
    "nearly_equal",
    "no_proj_error",
    "solar_day",
]

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


def as_items(items: Any) -> list[pystac.Item]:
    """The ``pystac.Item`` objects of what :func:`~glaviz.data.stac.open_stac` accepts.

    Parameters
    ----------
    items : pystac.Item, dict, path, ItemCollection or a sequence of them

    Returns
    -------
    list of pystac.Item

    Raises
    ------
    InputTypeError
        An element that is none of those.
    SceneError
        No items at all.
    """
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


def describe_item(item: pystac.Item) -> str:
    """``"STAC item 'id' (collection 'c')"``, the subject of error messages."""
    coll = f" (collection {item.collection_id!r})" if item.collection_id else ""
    return f"STAC item {item.id!r}{coll}"


def item_time(item: pystac.Item) -> _dt.datetime:
    """The item's ``datetime`` (else ``start_datetime``), timezone-aware (naive means UTC)."""
    t = item.datetime or item.common_metadata.start_datetime
    if t is None:
        raise SceneError(f"{describe_item(item)} has neither datetime nor start_datetime")
    return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)


def solar_day(item: pystac.Item) -> _dt.date:
    """UTC time shifted by the footprint's longitude / 15 h (odc-stac's ``solar_day``)."""
    lon = 0.0
    if item.bbox:
        lon = (item.bbox[0] + item.bbox[2]) / 2
    return (item_time(item) + _dt.timedelta(hours=lon / 15.0)).date()


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
                f"{describe_item(item)}: a Sentinel-2 item whose processing level (L1C or L2A) "
                "is not in s2:product_type, processing:level or the collection id; pass "
                "sensor='sentinel2_l1c' (or the sensor of your product)"
            )
        return f"sentinel2_{level}"
    m = re.search(r"landsat[-_ ]?0?(\d)\b", text) or re.search(r"\blc0?([89])\b", text)
    if m and m.group(1) in "89":
        level = _landsat_level(props, collection)
        if level is None:
            raise SceneError(
                f"{describe_item(item)}: a Landsat {m.group(1)} item whose processing level is "
                "not in landsat:correction, processing:level or the collection id; pass "
                "sensor='landsat89_l1' for Level-1 digital numbers"
            )
        return f"landsat89_{level}"
    known = sorted(load_catalog().sensors)
    raise SceneError(
        f"{describe_item(item)}: cannot tell the sensor from platform {platform or None!r}, "
        f"constellation {constellation or None!r} (Sentinel-2 L1C/L2A and Landsat 8/9 are "
        f"recognised); pass open_stac(..., sensor=...) with one of {known}"
    )


# --------------------------------------------------------------------------------------------
# assets and their bands


@dataclass(frozen=True)
class BandInfo:
    """One band of an asset: ``eo``/``raster`` band name, common name, nodata, scale, offset."""

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


def _asset_bands(asset: pystac.Asset) -> list[BandInfo]:
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
        BandInfo(
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
class BandSource:
    """Where one sensor band is read from: asset ``key``, its 1-based ``index`` and metadata."""

    sensor_band: str
    canonical: str
    key: str
    index: int  # 1-based band of the asset
    n_bands: int
    info: BandInfo


def find_band(
    item: pystac.Item,
    sensor_band: str,
    canonical: str,
    explicit: Mapping[str, str],
    sensor: str,
) -> BandSource:
    """The asset (and band of it) holding ``sensor_band`` of ``item``.

    Parameters
    ----------
    item : pystac.Item
    sensor_band : str
        The sensor's band name (``"B02"``).
    canonical : str
        Its canonical band (``"blue"``), matched against :data:`COMMON_NAMES`.
    explicit : mapping
        ``{sensor band or canonical band: asset key}`` given by the user; wins over matching.
    sensor : str
        The catalog sensor, for the error message.

    Returns
    -------
    BandSource
        Found, in order, by: an explicit key, the asset key equal to the sensor band, an ``eo``
        band of that name, an ``eo`` common name (preferring the listed order, single-band
        assets, COGs, and a key equal to the common name).

    Raises
    ------
    SceneError
        No such asset; the message names the item, its data assets and the ``bands=`` fix.
    """
    assets = {k: a for k, a in item.assets.items() if _is_data_asset(k, a)}
    bands = {k: _asset_bands(a) for k, a in assets.items()}

    def source(key: str, idx: int) -> BandSource:
        return BandSource(sensor_band, canonical, key, idx + 1, len(bands[key]), bands[key][idx])

    wanted = explicit.get(sensor_band) or explicit.get(canonical)
    if wanted is not None:
        if wanted not in item.assets:
            raise SceneError(
                f"{describe_item(item)}: bands={{{sensor_band!r}: {wanted!r}}} names no asset of "
                f"the item; its assets: {sorted(item.assets)}"
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
        f"{describe_item(item)}: no asset for band {sensor_band!r} ({canonical}) of sensor "
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


def asset_grid(item: pystac.Item, key: str) -> tuple[CRS, Affine, tuple[int, int]] | None:
    """(crs, transform, (height, width)) of asset ``key`` from the proj extension, if complete.

    Asset-level ``proj:`` fields win over the item's; ``None`` when the CRS, transform or shape
    is missing.
    """
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


def no_proj_error(item: pystac.Item, key: str, what: str) -> SceneGridError:
    """The error for asset ``key`` without a complete grid; ``what`` is the fix to suggest."""
    return SceneGridError(
        f"{describe_item(item)}: asset {key!r} has no complete projection information "
        "(proj:code or proj:epsg, proj:transform and proj:shape), so the grid is unknown; "
        f"{what}"
    )


def nearly_equal(a: float, b: float) -> bool:
    """``a`` and ``b`` equal to STAC metadata precision (relative 1e-4, absolute 1e-9)."""
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-9)


# --------------------------------------------------------------------------------------------
# provenance


def clean_href(href: str) -> str:
    """``href`` without its query string (signatures, access tokens) for provenance."""
    return href.split("?", 1)[0]
