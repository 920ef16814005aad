"""Checks of scene inputs that catch wrong data before it is used, naming the file and the fix.

:func:`raster_info` opens a raster once (cached by path, size and modification time): header,
GDAL scale/offset tags and a decimated sample of its values. A file that cannot be opened or
read, or a GeoTIFF whose blocks reach past its end, is a :class:`~glaviz.errors.CorruptFileError`.
On that sample :func:`warn_undeclared_nodata` spots common nodata sentinels used as data;
:func:`order_band_files` checks (or sorts) files against the sensor's band order using the band
names in the file names and the sensor's band resolutions; :func:`warn_out_of_range` checks
scaled values against [0, 1] and names the likely cause.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import rasterio
import xarray as xr
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError

from glaviz.catalog import SensorGroup
from glaviz.errors import CorruptFileError, SceneError, warn

__all__ = [
    "DN_CONVERSIONS",
    "is_range_checked",
    "mark_range_checked",
    "check_file_samples",
    "SENTINELS",
    "RasterInfo",
    "order_band_files",
    "raster_info",
    "scale_offset",
    "warn_out_of_range",
    "warn_undeclared_nodata",
]

#: Values that mark "no data" in common products when no nodata tag says so.
SENTINELS = (-9999.0, -32768.0, -32767.0, float(np.finfo(np.float32).min))
#: Conversions that turn raw digital numbers into physical values themselves.
DN_CONVERSIONS = (
    "sentinel2_l1c",
    "landsat_toa_reflectance",
    "landsat_brightness_temperature",
    "linear",
)
#: Longest side of the decimated sample read from each file.
SAMPLE_SIDE = 512


def _corrupt(path: Path, group: str, what: str) -> CorruptFileError:
    return CorruptFileError(
        f"{group}: {str(path)!r} {what}: the file is truncated or corrupt. Check it with "
        f"`gdalinfo -checksum {path}` and copy or download it again"
    )


@dataclass(frozen=True)
class RasterInfo:
    """What :func:`raster_info` learnt about a raster file."""

    path: Path
    count: int
    width: int
    height: int
    crs: Any
    transform: Any
    nodata: float | None
    scales: tuple[float, ...]
    offsets: tuple[float, ...]
    sample: np.ndarray  # (count, h, w) raw values, every n-th pixel

    def resolution_m(self) -> float | None:
        """The coarser pixel side in metres, or None for a geographic or unknown CRS."""
        if self.crs is None:
            return None
        crs = pyproj.CRS.from_user_input(self.crs)
        if not crs.is_projected or not crs.axis_info:
            return None
        unit = crs.axis_info[0].unit_conversion_factor
        return max(abs(self.transform.a), abs(self.transform.e)) * unit


def _tiff_data_end(src: rasterio.io.DatasetReader) -> int:
    """The largest byte offset any full-resolution block of a GeoTIFF ends at (0 if unknown)."""
    end = 0
    interleave = (src.profile.get("interleave") or "pixel").lower()
    for bidx in range(1, (src.count if interleave == "band" else 1) + 1):
        for (row, col), _ in src.block_windows(bidx):
            off = src.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=bidx)
            size = src.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=bidx)
            if off and size:
                end = max(end, int(off) + int(size))
    return end


@functools.lru_cache(maxsize=16)
def _info(path: str, size: int, mtime_ns: int, group: str) -> RasterInfo:
    p = Path(path)
    try:
        src = rasterio.open(p)
    except RasterioIOError as exc:
        raise _corrupt(p, group, f"cannot be opened as a raster ({exc})") from None
    with src:
        if src.driver == "GTiff":
            end = _tiff_data_end(src)
            if end > size:
                raise _corrupt(p, group, f"ends at byte {size} but its data run to byte {end}")
        h, w = src.height, src.width
        f = max(1, math.ceil(max(h, w) / SAMPLE_SIDE))
        try:
            sample = src.read(
                out_shape=(src.count, max(1, h // f), max(1, w // f)),
                resampling=Resampling.nearest,
            )
        except RasterioIOError as exc:
            raise _corrupt(p, group, f"cannot be read ({exc})") from None
        return RasterInfo(
            p, src.count, w, h, src.crs, src.transform, src.nodata,
            tuple(float(s) for s in src.scales), tuple(float(o) for o in src.offsets), sample,
        )  # fmt: skip


def raster_info(path: str | os.PathLike, group: str) -> RasterInfo:
    """Header, scale/offset tags and a decimated sample of ``path`` (read once, then cached).

    Raises
    ------
    CorruptFileError
        The file cannot be opened or read, or (GeoTIFF) its blocks reach past its end.
    """
    p = Path(path)
    st = p.stat()
    return _info(str(p), st.st_size, st.st_mtime_ns, group)


def warn_undeclared_nodata(info: RasterInfo, group: str, declared: float | None) -> None:
    """Warn if a file without nodata tag holds blocks of a common nodata sentinel.

    The sentinels (-9999, -32768, -32767, the float32 minimum) are never real values; for the
    optical group, whole rows or columns of 0 in every band are a fill border too.
    """
    if declared is not None:
        return
    sample = info.sample.astype(np.float64)
    found: tuple[float, float] | None = None
    for value in SENTINELS:
        frac = float((sample == value).any(axis=0).mean())
        if frac > 0:
            found = (value, frac)
            break
    if found is None and group == "optical":
        zero = (sample == 0).all(axis=0)
        rows, cols = zero.all(axis=1), zero.all(axis=0)
        if rows.any() or cols.any():
            found = (0.0, float((zero & (rows[:, None] | cols[None, :])).mean()))
    if found is None:
        return
    value, frac = found
    effect = (
        f"a step to {value:g} gives slopes of ~90 degrees"
        if group == "dem"
        else "fill is taken for dark ground or extreme values"
    )
    warn(
        f"{group}: {str(info.path)!r} declares no nodata value, but {frac:.1%} of its pixels "
        f"hold {value:g}, which is then used as data ({effect}). If {value:g} means 'no data', "
        f"pass open_scene(..., nodata={{{group!r}: {value:g}}}) or declare it in the file: "
        f"`gdal_edit.py -a_nodata {value:g} {info.path}`"
    )


def scale_offset(
    info: RasterInfo, bands: Sequence[int], group: str, sensor: str, spec: SensorGroup
) -> tuple[np.ndarray, np.ndarray] | None:
    """The GDAL scale and offset of ``bands`` (1-based) to apply, or None when they are 1 and 0.

    Raises
    ------
    SceneError
        The file has scale/offset tags but the sensor converts raw digital numbers itself.
    """
    scales = np.array([info.scales[b - 1] for b in bands], np.float64)
    offsets = np.array([info.offsets[b - 1] for b in bands], np.float64)
    if np.all(scales == 1) and np.all(offsets == 0):
        return None
    kind = spec.conversion["kind"]
    if kind in DN_CONVERSIONS:
        raise SceneError(
            f"{group}: {str(info.path)!r} carries GDAL scale/offset tags (scale "
            f"{scales.tolist()}, offset {offsets.tolist()}) but sensor {sensor!r} converts raw "
            f"digital numbers itself ({kind}): applying both would scale twice. If the file holds "
            f"raw digital numbers, drop the tags (`gdal_edit.py -scale 1 -offset 0 "
            f"{info.path}`); otherwise it is another product than {sensor!r}"
        )
    return scales, offsets


# ------------------------------------------------------------------------------------------
# band order and resolution


def _band_pattern(name: str) -> re.Pattern[str]:
    m = re.fullmatch(r"B0*(\d+[A-Za-z]?)", name)
    core = rf"B0*{m.group(1)}" if m else re.escape(name)
    return re.compile(rf"(?<![A-Za-z0-9]){core}(?![A-Za-z0-9])", re.IGNORECASE)


def bands_named_in(path: Path, names: Sequence[str]) -> list[str]:
    """The sensor band names that appear as words in a file name (``T32_B02.jp2`` -> B02).

    Examples
    --------
    >>> bands_named_in(Path("LC08_T1_B10.TIF"), ["B1", "B10", "B2"])
    ['B10']
    >>> bands_named_in(Path("S2A_B8A_20m.jp2"), ["B08", "B8A"])
    ['B8A']
    """
    return [n for n in names if _band_pattern(n).search(path.name)]


def _resolutions(spec: SensorGroup) -> dict[str, float]:
    return dict(spec.resolution)


def order_band_files(
    parts: list[tuple[Path, list[int]]],
    infos: Sequence[RasterInfo],
    spec: SensorGroup,
    group: str,
    sensor: str,
) -> list[tuple[Path, list[int]]]:
    """Check a list of band files against the sensor's order, or sort it by band names.

    Files are read one after the other in the sensor's band order. When every file is a single
    band named in its file name (``..._B02.jp2``), they are sorted by those names. Otherwise a
    file whose name names a band it does not hold at its place (``[B4.tif, RGB.tif]``) is
    refused, and so is any unnamed list for a sensor with bands at several resolutions (where
    the first file would set the grid).

    Raises
    ------
    SceneError
        Naming the file, the band it names, the bands expected there and the fix.
    """
    names = list(spec.sensor_bands)
    named = [bands_named_in(p, names) for p, _ in parts]
    single = all(len(b) == 1 for _, b in parts) and all(len(n) == 1 for n in named)
    if single and sorted(n[0] for n in named) == sorted(names) and len(parts) == len(names):
        order = {n[0]: i for i, n in enumerate(named)}
        return [parts[order[b]] for b in names]
    res = _resolutions(spec)
    mapping_hint = (
        f"give a {{band: file}} mapping ({', '.join(f'{b!r}: ...' for b in names)}), or "
        "single-band files whose names contain the band names (..._B02.tif), which are sorted"
    )
    if len(set(res.values())) > 1 and len(parts) > 1:
        raise SceneError(
            f"{group}: sensor {sensor!r} has bands at several resolutions "
            f"({', '.join(f'{b}: {r:g} m' for b, r in res.items())}), so a list of files "
            f"{[p.name for p, _ in parts]} is ambiguous (the first sets the grid); {mapping_hint}"
        )
    pos = 0
    for (path, bands), found in zip(parts, named):
        expected = names[pos : pos + len(bands)]
        wrong = [b for b in found if b not in expected]
        if wrong:
            raise SceneError(
                f"{group}: {path.name!r} is named for band {wrong[0]!r} but stands where sensor "
                f"{sensor!r} expects {expected} (files are read one after the other in the "
                f"order {names}); give the files in that order, or {mapping_hint}"
            )
        pos += len(bands)
    check_resolutions(parts, infos, spec, group, sensor)
    return parts


def check_resolutions(
    parts: Sequence[tuple[Path, list[int]]],
    infos: Sequence[RasterInfo],
    spec: SensorGroup,
    group: str,
    sensor: str,
) -> None:
    """Refuse files whose pixel sizes contradict their bands' native resolutions.

    A band recorded finer than (or as fine as) another must not come in a coarser file: with
    Sentinel-2, a 20 m file given for B02 while B03 comes at 10 m means the files are not the
    bands they stand for. Files resampled alike (all at 10 m, or all at 30 m) pass.
    """
    res = _resolutions(spec)
    if not res:
        return
    names = list(spec.sensor_bands)
    entries = []  # (path, bands, native m, file m)
    pos = 0
    for (path, bands), info in zip(parts, infos):
        expected = names[pos : pos + len(bands)]
        pos += len(bands)
        native = min((res[b] for b in expected if b in res), default=None)
        have = info.resolution_m()
        if native is not None and have is not None:
            entries.append((path, expected, native, have))
    for path, names_here, native, have in entries:
        for other, obands, onative, ohave in entries:
            if native <= onative and have > 1.01 * ohave:
                raise SceneError(
                    f"{group}: {str(path)!r} given for band(s) {names_here} of {sensor!r} (native "
                    f"{native:g} m) has {have:g} m pixels, coarser than {str(other)!r} for "
                    f"{obands} (native {onative:g} m) at {ohave:g} m: the files do not hold the "
                    "bands they stand for. Give each band its own file, e.g. as a {band: file} "
                    "mapping"
                )


# ------------------------------------------------------------------------------------------
# value ranges after scaling

_CAUSES: dict[tuple[str, str], str] = {
    ("optical", "high"): "digital numbers where reflectance is expected: is sensor= right? (e.g. "
    "uint16 Sentinel-2 or Landsat digital numbers opened as an 8-bit display product such as "
    "'landsat7_display8')",
    ("optical", "low"): "undeclared nodata (e.g. -9999; pass nodata=) or a wrong radiometric "
    "offset",
    ("dem", "high"): "elevations not in metres (feet are 3.3x, centimetres 100x the metres)",
    ("dem", "low"): "undeclared nodata (e.g. -9999 or -32768; pass nodata=)",
    ("co_pol_sar", "high"): "sigma0 in dB opened as linear, or linear as dB (choose "
    "'sentinel1_sigma0_db' or 'sentinel1_sigma0_linear')",
    ("in_sar", "high"): "coherence outside 0-1: is it coherence?",
    ("thermal", "high"): "not brightness temperature in kelvin (digital numbers?)",
    ("thermal", "low"): "not brightness temperature in kelvin (degrees Celsius?)",
}


def _cause(group: str, kind: str) -> str:
    group = "co_pol_sar" if group == "cross_pol_sar" else group
    return _CAUSES.get(
        (group, kind),
        _CAUSES.get((group, "high"), "values of another unit or product than the sensor's"),
    )


def range_sample(da: xr.DataArray, side: int = 512) -> xr.DataArray:
    """At most ``side`` x ``side`` pixels of a ``(band, y, x)`` array, cheap to compute.

    In-memory arrays give every n-th pixel; lazy (dask) arrays one window inside the chunk at
    the centre of the scene, so that one chunk is read.
    """
    h, w = da.sizes["y"], da.sizes["x"]
    if h * w <= side * side:
        return da
    chunks = getattr(da.data, "chunks", None)
    if chunks is None:
        step = math.ceil(math.sqrt(h * w / side**2))
        return da.isel(y=slice(None, None, step), x=slice(None, None, step))
    window = {}
    for dim, n in (("y", h), ("x", w)):
        bounds = np.cumsum((0, *chunks[da.dims.index(dim)]))
        i = int(np.searchsorted(bounds, n // 2, side="right")) - 1
        lo, hi = int(bounds[i]), int(bounds[i + 1])
        mid = (lo + hi) // 2
        start = max(lo, mid - side // 2)
        window[dim] = slice(start, min(hi, start + side))
    return da.isel(window)


def _per_band(values: Any) -> list[np.ndarray]:
    if isinstance(values, (list, tuple)):
        return [np.asarray(v, np.float64).ravel() for v in values]
    arr = np.asarray(getattr(values, "values", values), np.float64)
    return [b.ravel() for b in arr] if arr.ndim >= 2 else [arr.ravel()]


def warn_out_of_range(
    scaled: xr.DataArray | np.ndarray | Sequence[np.ndarray],
    physical: xr.DataArray | np.ndarray | Sequence[np.ndarray],
    group: str,
    *,
    threshold: float,
    sensor: str | None = None,
    margin: float = 0.5,
) -> None:
    """Warn when a sizeable fraction of valid scaled values lies far outside [0, 1].

    Parameters
    ----------
    scaled, physical : xarray.DataArray, numpy.ndarray or list of arrays
        Samples of the same values after and before scaling, band first (or one array per
        band); NaN is invalid.
    group : str
        The input group (names the likely cause).
    threshold : float
        Fraction of valid values beyond ``margin`` outside [0, 1] that triggers the warning.
    """
    ys, xs = [], []
    for yb, xb in zip(_per_band(scaled), _per_band(physical)):
        ok = np.isfinite(yb) & np.isfinite(xb)
        ys.append(yb[ok])
        xs.append(xb[ok])
    y, x = np.concatenate(ys), np.concatenate(xs)
    if not y.size:
        return
    high, low = float((y > 1 + margin).mean()), float((y < -margin).mean())
    kind = None
    if high + low <= threshold:
        return
    kind = "high" if high >= low else "low"
    what = f"{high + low:.0%} of the valid values lie far outside [0, 1] after scaling"
    on = f" (sensor {sensor!r})" if sensor else ""
    warn(
        f"{group}{on}: {what} (scaled {y.min():.3g} to {y.max():.3g}; input {x.min():.4g} to "
        f"{x.max():.4g}). Likely cause: {_cause(group, kind)}. Check sensor= and the files "
        "given to open_scene; scale(..., range_warning=None) silences this check"
    )


def check_file_samples(
    parts: Sequence[tuple[Path, list[int]]],
    group: str,
    sensor: str,
    spec: SensorGroup,
    nodata: float | None,
    metadata: Mapping[str, Any],
    table: Mapping[str, Any],
    threshold: float,
) -> None:
    """:func:`warn_out_of_range` on the files' decimated samples, converted and scaled.

    The same steps as the scene's data (nodata, GDAL scale/offset, the sensor's conversion,
    the scaling ``table`` entry of ``group``) on each file's sample: cheap, reads nothing more.
    """
    from glaviz.data.convert import convert

    entry = table[group]
    lookup = dict(zip(entry["bands"], zip(entry["min"], entry["max"])))
    canonical = dict(spec.band_map)
    names = list(spec.sensor_bands)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    raw: list[np.ndarray] = []
    pos = 0
    for path, bands in parts:
        info = raster_info(path, group)
        sample = info.sample[[b - 1 for b in bands]].astype(np.float64)
        fill = nodata if nodata is not None else info.nodata
        fill = fill if fill is not None else spec.nodata
        if fill is not None:
            sample[sample == fill] = np.nan
        else:  # undeclared sentinels get their own warning (warn_undeclared_nodata)
            sample[np.isin(sample, SENTINELS)] = np.nan
        raw.append(sample[np.isfinite(sample)])
        gains = scale_offset(info, bands, group, sensor, spec)
        if gains is not None:
            sample = sample * gains[0][:, None, None] + gains[1][:, None, None]
        converted = convert(
            xr.DataArray(sample, dims=("band", "y", "x")), spec.conversion, metadata
        )
        x = np.asarray(converted.values, np.float64)
        for i, band in enumerate(names[pos : pos + len(bands)]):
            lo, hi = lookup[canonical[band]]
            xs.append(x[i].ravel())
            ys.append((x[i].ravel() - lo) / (hi - lo))
        pos += len(bands)
    values = np.concatenate(raw)
    kind = spec.conversion["kind"]
    if kind in DN_CONVERSIONS and values.size and np.percentile(values, 99) <= 2.0:
        warn(
            f"{group} (sensor {sensor!r}): the files hold values from {values.min():.4g} to "
            f"{values.max():.4g}, which look like reflectance already, but {sensor!r} converts "
            f"digital numbers ({kind}: {_DN_HINT.get(kind, 'a scale factor')}), which makes "
            f"them nearly 0. Give digital numbers, or open reflectance with a matching sensor"
        )
        return
    warn_out_of_range(ys, xs, group, threshold=threshold, sensor=sensor)


_DN_HINT = {
    "sentinel2_l1c": "(DN - offset) / 10000",
    "landsat_toa_reflectance": "DN x 2e-5 - 0.1",
    "linear": "DN x scale",
}


#: dask names of group arrays whose file samples open_scene checked (bounded, oldest dropped)
_RANGE_CHECKED: dict[str, None] = {}


def mark_range_checked(data: xr.DataArray) -> None:
    """Remember that ``data`` (lazy) was range-checked on its files' samples."""
    name = getattr(data.data, "name", None)
    if name is not None:
        _RANGE_CHECKED[name] = None
        while len(_RANGE_CHECKED) > 256:
            del _RANGE_CHECKED[next(iter(_RANGE_CHECKED))]


def is_range_checked(data: xr.DataArray) -> bool:
    """Whether ``data`` is, unchanged, an array :func:`mark_range_checked` saw."""
    name = getattr(data.data, "name", None)
    return name is not None and name in _RANGE_CHECKED


def nodata_for(nodata: float | Mapping[str, float] | None, group: str) -> float | None:
    """The nodata value the caller gave for ``group`` (one number for all, or per group)."""
    if isinstance(nodata, Mapping):
        value = nodata.get(group)
    else:
        value = nodata
    return None if value is None else float(value)
