"""Digital numbers to the physical quantities of the scaling table (reflectance, K, log10 sigma0).

Each conversion kind of ``data_catalog/sensors.yml`` is one function here. They work on float
arrays (numpy or dask, inside xarray) and keep NaN as NaN.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np
import xarray as xr

__all__ = ["convert", "parse_mtl", "processing_baseline_from_paths"]


def processing_baseline_from_paths(paths: list[Path]) -> str | None:
    """The Sentinel-2 processing baseline (``"04.00"``) from ``_N0400_`` in a SAFE path, if any."""
    for p in paths:
        m = re.search(r"_N(\d{2})(\d{2})_", str(p))
        if m:
            return f"{m.group(1)}.{m.group(2)}"
    return None


def parse_mtl(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a Landsat ``*_MTL.txt`` metadata file into a flat ``{KEY: value}`` dict.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x_MTL.txt"
    >>> _ = p.write_text('GROUP = IMAGE_ATTRIBUTES\\n    SUN_ELEVATION = 41.5\\nEND')
    >>> parse_mtl(p)["SUN_ELEVATION"]
    '41.5'
    """
    out: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        if "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip().strip('"')
    return out


def _meta_number(metadata: Mapping[str, Any], key: str, why: str) -> float:
    for k in (key, key.upper(), key.lower()):
        if k in metadata:
            return float(metadata[k])
    raise ValueError(
        f"metadata {key!r} is needed {why}: pass open_scene(..., metadata={{{key!r}: ...}}) "
        "or the path of the scene's MTL file as metadata"
    )


def _identity(x: xr.DataArray, spec: Mapping[str, Any], meta: Mapping[str, Any]) -> xr.DataArray:
    return x


def _linear(x: xr.DataArray, spec: Mapping[str, Any], meta: Mapping[str, Any]) -> xr.DataArray:
    return x * float(spec["scale"]) + float(spec["offset"])


def _s2_l1c(x: xr.DataArray, spec: Mapping[str, Any], meta: Mapping[str, Any]) -> xr.DataArray:
    baseline = meta.get("processing_baseline")
    if baseline is None:
        raise ValueError(
            "Sentinel-2 L1C needs the processing baseline to remove the radiometric offset "
            "(baseline 04.00 and later add 1000 to every DN): pass "
            "open_scene(..., processing_baseline='04.00') (see the SAFE name, _N0400_)"
        )
    offset = 0.0
    if _baseline_tuple(str(baseline)) >= _baseline_tuple(str(spec["offset_from_baseline"])):
        offset = float(spec["radiometric_offset"])
    return (x + offset) / float(spec["quantification_value"])


def _baseline_tuple(b: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in b.split("."))
    except ValueError:
        raise ValueError(f"processing_baseline {b!r} is not of the form '04.00'") from None


def _landsat_toa(x: xr.DataArray, spec: Mapping[str, Any], meta: Mapping[str, Any]) -> xr.DataArray:
    sun = _meta_number(meta, "sun_elevation", "for Landsat TOA reflectance (degrees)")
    return (x * float(spec["mult"]) + float(spec["add"])) / math.sin(math.radians(sun))


def _landsat_bt(x: xr.DataArray, spec: Mapping[str, Any], meta: Mapping[str, Any]) -> xr.DataArray:
    radiance = x * float(spec["mult"]) + float(spec["add"])
    return float(spec["k2"]) / cast(xr.DataArray, np.log(float(spec["k1"]) / radiance + 1.0))


def _db_log10(x: xr.DataArray, spec: Mapping[str, Any], meta: Mapping[str, Any]) -> xr.DataArray:
    return cast(xr.DataArray, np.log10(10.0 ** (x / 10.0) + float(spec["epsilon"])))


def _lin_log10(x: xr.DataArray, spec: Mapping[str, Any], meta: Mapping[str, Any]) -> xr.DataArray:
    return cast(xr.DataArray, np.log10(x + float(spec["epsilon"])))


_KINDS: dict[str, Callable[[xr.DataArray, Mapping[str, Any], Mapping[str, Any]], xr.DataArray]] = {
    "identity": _identity,
    "linear": _linear,
    "sentinel2_l1c": _s2_l1c,
    "landsat_toa_reflectance": _landsat_toa,
    "landsat_brightness_temperature": _landsat_bt,
    "sigma0_db_to_log10": _db_log10,
    "sigma0_linear_to_log10": _lin_log10,
}


def convert(
    x: xr.DataArray, spec: Mapping[str, Any], metadata: Mapping[str, Any] | None = None
) -> xr.DataArray:
    """Apply the catalog conversion ``spec`` (a ``conversion:`` entry) to float data ``x``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> dn = xr.DataArray(np.array([1000.0, 11000.0]))
    >>> spec = {"kind": "sentinel2_l1c", "quantification_value": 10000,
    ...         "radiometric_offset": -1000, "offset_from_baseline": "04.00"}
    >>> convert(dn, spec, {"processing_baseline": "04.00"}).values.tolist()
    [0.0, 1.0]
    """
    out = _KINDS[spec["kind"]](x, spec, metadata or {})
    return out.astype(np.float32)
