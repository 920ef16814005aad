"""The pixel inspector: what a click on the map shows, in the kernel and in saved HTML.

Both places read the same arrays (:class:`Inspector`, built from
:class:`glaviz.viz.layers.DisplayData`): in a live notebook :meth:`Inspector.at_latlon` answers a
click; in saved HTML the arrays travel as small compressed value images
(:meth:`Inspector.payload`) that ``static/glaviz-map.js`` decodes and reads in plain JavaScript.
Probabilities and confidences are stored as uint16 (steps of 1/65534) in the HTML, the rest
exactly.

Examples
--------
>>> from glaviz.data import synthetic_scene
>>> from glaviz.viz.layers import display_data
>>> ds = synthetic_scene(height=32, width=32, seed=0)
>>> insp = Inspector.from_display(display_data(ds))
>>> lat, lon = insp.latlon_of(row=5, col=7, transform=ds.rio.transform(), crs=ds.rio.crs)
>>> hit = insp.at_latlon(lat, lon)
>>> hit["row"], hit["col"]
(5, 7)
"""

from __future__ import annotations

import base64
import html
import math
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine
from pyproj import Transformer

from glaviz.viz.layers import ERROR_CLASSES, DisplayData
from glaviz.viz.render import EARTH_RADIUS, MercatorGrid

__all__ = ["Inspector"]

#: The panel's look (the same in glaviz-map.js): small, scrolling, never covering the map.
_STYLE = 'style="font-size:11px;line-height:13px;max-height:260px;overflow:auto"'
#: Arrays stored as uint16 fractions in HTML (value = stored / 65534; 65535 = no data).
_FRACTIONS = ("probability", "confidence")


def _smallest(arr: np.ndarray) -> np.ndarray:
    """The smallest exact dtype: integers (NaN as the type's maximum) or float32."""
    if np.issubdtype(arr.dtype, np.floating):
        finite = np.isfinite(arr)
        vals = arr[finite]
        if vals.size and np.array_equal(vals, np.rint(vals)) and vals.min() >= 0:
            for dtype in (np.uint8, np.uint16):
                top = np.iinfo(dtype).max
                if vals.max() < top:
                    return np.where(finite, arr, top).astype(dtype)
        return arr.astype(np.float32)
    lo, hi = int(arr.min(initial=0)), int(arr.max(initial=0))
    if lo >= 0 and hi < 256:
        return arr.astype(np.uint8)
    return arr.astype(np.int32)


def _tabulated(arr: np.ndarray) -> tuple[np.ndarray, list[float] | None]:
    """Float values with few distinct values (e.g. scaled 8-bit data) as indices + table."""
    finite = np.isfinite(arr)
    table, index = np.unique(arr[finite], return_inverse=True)
    for dtype in (np.uint8, np.uint16):
        top = np.iinfo(dtype).max
        if len(table) < top:
            out = np.full(arr.shape, top, dtype)
            out[finite] = index
            return out, [float(v) for v in table.astype(np.float32)]
    return arr.astype(np.float32), None


def _pack(data: np.ndarray) -> str:
    """Little-endian bytes, zlib, base64; integers of 2-4 bytes byte-shuffled first.

    The shuffle (all first bytes, then all second bytes, ...) groups the slowly varying high
    bytes of indices and quantised fractions: 2-3x smaller after zlib.
    """
    le = np.ascontiguousarray(data, data.dtype.newbyteorder("<"))
    raw = le.view(np.uint8)
    if data.dtype.itemsize > 1 and data.dtype.kind in "iu":
        raw = raw.reshape(-1, data.dtype.itemsize).T.copy()
    return base64.b64encode(zlib.compress(raw.tobytes(), 6)).decode("ascii")


@dataclass
class Inspector:
    """Values under each pixel of a display grid, for clicks.

    Attributes
    ----------
    grid : MercatorGrid
        The display grid.
    values : dict of str to numpy.ndarray
        Arrays of the grid's shape (``row``/``col`` of the scene pixel, -1 outside).
    labels : dict of str to str
    step : int
        Every ``step``-th grid pixel is kept (bounded size for big scenes).
    """

    grid: MercatorGrid
    values: dict[str, np.ndarray]
    labels: dict[str, str]
    step: int = 1

    @classmethod
    def from_display(cls, data: DisplayData, *, max_size: int = 1024) -> Inspector:
        """Keep the display's arrays, every ``step``-th pixel so that each side <= max_size."""
        step = max(1, math.ceil(max(data.grid.height, data.grid.width) / max_size))
        off = step // 2  # the pixel at the centre of each step x step block
        values = {k: np.ascontiguousarray(v[off::step, off::step]) for k, v in data.values.items()}
        return cls(data.grid, values, dict(data.labels), step)

    def index_of(self, lat: float, lon: float) -> tuple[int, int] | None:
        """``(i, j)`` of the inspector cell under a point, None outside."""
        x = EARTH_RADIUS * math.radians(lon)
        y = EARTH_RADIUS * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))
        col = math.floor((x - self.grid.transform.c) / self.grid.resolution)
        row = math.floor((self.grid.transform.f - y) / self.grid.resolution)
        i, j = row // self.step, col // self.step
        h, w = self.values["row"].shape
        if row < 0 or col < 0 or not (0 <= i < h and 0 <= j < w):
            return None
        return i, j

    def at_latlon(self, lat: float, lon: float) -> dict[str, Any] | None:
        """Values under a point (None outside the scene).

        Returns
        -------
        dict or None
            ``row``, ``col`` (scene pixel), ``lat``, ``lon`` and one entry per array; NaN where
            the scene has no data; ``error`` as its label.
        """
        ij = self.index_of(lat, lon)
        if ij is None or self.values["row"][ij] < 0:
            return None
        out: dict[str, Any] = {"lat": lat, "lon": lon}
        for key, arr in self.values.items():
            v = arr[ij]
            out[key] = int(v) if np.issubdtype(arr.dtype, np.integer) else float(v)
        if "error" in out:
            out["error"] = ERROR_CLASSES.get(out["error"], ("true negative / no data", ""))[0]
        return out

    def describe(self, hit: dict[str, Any] | None) -> str:
        """HTML table of :meth:`at_latlon`'s answer (what the live map shows)."""
        if hit is None:
            return f"<div {_STYLE}><b>Pixel inspector</b><br>click on the scene</div>"
        rows = [
            f"<tr><td>row, column</td><td>{hit['row']}, {hit['col']}</td></tr>",
            f"<tr><td>lat, lon</td><td>{hit['lat']:.5f}, {hit['lon']:.5f}</td></tr>",
        ]
        for key, label in self.labels.items():
            if key in ("row", "col"):
                continue
            v = hit.get(key)
            if isinstance(v, float):
                text = "no data" if math.isnan(v) else f"{v:.4g}"
            elif key in ("mask", "reference") and v == 255:
                text = "no data"
            else:
                text = str(v)
            rows.append(f"<tr><td>{html.escape(label)}</td><td>{html.escape(text)}</td></tr>")
        return f"<div {_STYLE}><b>Pixel inspector</b><table>" + "".join(rows) + "</table></div>"

    @staticmethod
    def latlon_of(row: int, col: int, *, transform: Affine, crs: Any) -> tuple[float, float]:
        """Latitude and longitude of a scene pixel's centre (for tests and links)."""
        x, y = transform * (col + 0.5, row + 0.5)
        lon, lat = Transformer.from_crs(crs, 4326, always_xy=True).transform(x, y)
        return float(lat), float(lon)

    def payload(self) -> dict[str, Any]:
        """The arrays as JSON-ready, zlib-compressed value images for saved HTML."""
        h, w = self.values["row"].shape
        arrays = []
        for key, arr in self.values.items():
            nodata: int | None = None
            table: list[float] | None = None
            if key in _FRACTIONS:
                q = np.where(np.isfinite(arr), np.rint(np.clip(arr, 0, 1) * 65534), 65535)
                data, scale, nodata = q.astype("<u2"), 1 / 65534, 65535
            else:
                data, scale, table = _smallest(arr), 1, None
                if np.issubdtype(arr.dtype, np.floating) and data.dtype == np.float32:
                    data, table = _tabulated(arr)
                if np.issubdtype(arr.dtype, np.floating) and data.dtype != np.float32:
                    nodata = int(np.iinfo(data.dtype).max)
            arrays.append(
                {
                    "key": key,
                    "label": self.labels.get(key, key),
                    "dtype": str(data.dtype),
                    "scale": scale,
                    "nodata": nodata,
                    "table": table,
                    "shuffle": data.dtype.itemsize > 1 and data.dtype.kind in "iu",
                    "data": _pack(data),
                }
            )
        g = self.grid
        return {
            "left": g.transform.c,
            "top": g.transform.f,
            "resolution": g.resolution,
            "step": self.step,
            "width": w,
            "height": h,
            "errorClasses": {str(k): label for k, (label, _) in ERROR_CLASSES.items()},
            "arrays": arrays,
        }
