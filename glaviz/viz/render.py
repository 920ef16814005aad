"""Rasters to web images: the Web Mercator display grid, colour stretches and image encoding.

An ipyleaflet ``ImageOverlay`` stretches an image linearly between two lat/lon corners, which is
linear in Web Mercator (EPSG:3857), the map's projection. So every raster is resampled onto a
north-up Web Mercator grid first (:class:`MercatorGrid`); then the image lands on the map
pixel-true, whatever the scene's CRS.

Resampling is nearest-neighbour through one lookup table per grid (:meth:`MercatorGrid.lookup`):
each display pixel shows the source pixel under its centre, so every layer, the outlines and the
pixel inspector agree on which scene pixel is where. Big scenes are first decimated by an integer
factor (every ``f``-th row and column) so that the display grid stays bounded.

Examples
--------
>>> from glaviz.data import synthetic_scene
>>> ds = synthetic_scene(height=40, width=50, seed=0)
>>> grid = MercatorGrid.for_raster(ds.rio.transform(), ds.rio.crs, (40, 50))
>>> rows, cols = grid.lookup(ds.rio.transform(), ds.rio.crs, (40, 50))
>>> rows.shape == (grid.height, grid.width), int(rows.max()), int(cols.max())
(True, 39, 49)
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from affine import Affine
from PIL import Image
from pyproj import CRS, Transformer
from rasterio.warp import calculate_default_transform

__all__ = [
    "MercatorGrid",
    "decimation",
    "encode_image",
    "gather",
    "hillshade",
    "palette_rgba",
    "percentile_stretch",
]

WEB_MERCATOR = CRS.from_epsg(3857)
#: Earth radius of the spherical Web Mercator projection, metres.
EARTH_RADIUS = 6378137.0


def decimation(shape: tuple[int, int], max_size: int) -> int:
    """Integer factor ``f`` such that every ``f``-th pixel keeps both sides <= ``max_size``.

    Examples
    --------
    >>> decimation((655, 800), 2048), decimation((10980, 10980), 2048)
    (1, 6)
    """
    return max(1, math.ceil(max(shape) / max_size))


@dataclass(frozen=True)
class MercatorGrid:
    """A north-up grid in Web Mercator: where the display images live.

    Parameters
    ----------
    transform : affine.Affine
        Pixel to EPSG:3857 metres (no rotation, square pixels).
    width, height : int
        Size in pixels.
    """

    transform: Affine
    width: int
    height: int

    @classmethod
    def for_raster(
        cls, transform: Affine, crs: Any, shape: tuple[int, int], *, max_size: int = 2048
    ) -> MercatorGrid:
        """The grid covering a raster at about its resolution, at most ``max_size`` a side."""
        height, width = shape
        left, top = transform * (0, 0)
        right, bottom = transform * (width, height)
        dst, w, h = calculate_default_transform(
            CRS.from_user_input(crs),
            WEB_MERCATOR,
            width,
            height,
            left=min(left, right),
            bottom=min(top, bottom),
            right=max(left, right),
            top=max(top, bottom),
        )
        res = max(abs(dst.a), abs(dst.e))
        scale = max(1.0, max(w, h) / max_size)
        res *= scale
        x0, y0 = dst.c, dst.f
        x1, y1 = x0 + dst.a * w, y0 + dst.e * h
        w = max(1, math.ceil((x1 - x0) / res))
        h = max(1, math.ceil((y0 - y1) / res))
        return cls(Affine(res, 0.0, x0, 0.0, -res, y0), w, h)

    @property
    def resolution(self) -> float:
        """Pixel size in Web Mercator metres."""
        return float(self.transform.a)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in EPSG:3857 metres."""
        left, top = self.transform.c, self.transform.f
        return left, top - self.resolution * self.height, left + self.resolution * self.width, top

    @property
    def latlon_bounds(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """``((south, west), (north, east))``, the form ipyleaflet's ``bounds`` take."""
        left, bottom, right, top = self.bounds
        to_ll = Transformer.from_crs(WEB_MERCATOR, 4326, always_xy=True)
        west, south = to_ll.transform(left, bottom)
        east, north = to_ll.transform(right, top)
        return (south, west), (north, east)

    @property
    def native_zoom(self) -> float:
        """The web-map zoom at which one grid pixel is one screen pixel."""
        return math.log2(2 * math.pi * EARTH_RADIUS / (256 * self.resolution))

    def lookup(
        self, transform: Affine, crs: Any, shape: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Source ``(row, col)`` under each grid pixel's centre; -1 outside the source.

        Parameters
        ----------
        transform, crs, shape
            The source raster's affine transform, CRS and ``(height, width)``.

        Returns
        -------
        tuple of numpy.ndarray
            int32 arrays of shape ``(height, width)`` of this grid.
        """
        xs = self.transform.c + (np.arange(self.width) + 0.5) * self.resolution
        ys = self.transform.f - (np.arange(self.height) + 0.5) * self.resolution
        to_src = Transformer.from_crs(WEB_MERCATOR, CRS.from_user_input(crs), always_xy=True)
        # Project a lattice of every 16th pixel exactly and interpolate linearly between its
        # nodes: over 16 display pixels a map projection is linear to far below a pixel
        # (Everest, UTM: 2.4 mm, 1e-4 of a pixel), and projecting every pixel of a 2048 x 2048
        # grid costs about a second.
        step = 16
        ci = np.unique(np.r_[np.arange(0, self.width, step), self.width - 1])
        ri = np.unique(np.r_[np.arange(0, self.height, step), self.height - 1])
        gx, gy = np.meshgrid(xs[ci], ys[ri])
        nx, ny = to_src.transform(gx, gy)
        nx, ny = np.asarray(nx, np.float64), np.asarray(ny, np.float64)
        # along x for each lattice row, then along y for each pixel row
        cols_all = np.arange(self.width)
        ax = np.stack([np.interp(cols_all, ci, row) for row in nx])
        ay = np.stack([np.interp(cols_all, ci, row) for row in ny])
        k = np.clip(np.searchsorted(ri, np.arange(self.height), side="right") - 1, 0, len(ri) - 2)
        rows = np.empty((self.height, self.width), np.int32)
        cols = np.empty_like(rows)
        inverse = ~transform
        for i in range(0, self.height, 256):  # bounded temporaries on big grids
            kk = k[i : i + 256] if len(ri) > 1 else np.zeros(min(256, self.height - i), int)
            if len(ri) > 1:
                span = (ri[kk + 1] - ri[kk]).astype(np.float64)
                w = ((np.arange(i, i + len(kk)) - ri[kk]) / span)[:, None]
                sx = (1 - w) * ax[kk] + w * ax[kk + 1]
                sy = (1 - w) * ay[kk] + w * ay[kk + 1]
            else:
                sx, sy = ax[kk], ay[kk]
            c, r = inverse * (sx, sy)
            r = np.floor(np.asarray(r)).astype(np.int64)
            c = np.floor(np.asarray(c)).astype(np.int64)
            inside = (r >= 0) & (r < shape[0]) & (c >= 0) & (c < shape[1]) & np.isfinite(sx)
            rows[i : i + 256] = np.where(inside, r, -1)
            cols[i : i + 256] = np.where(inside, c, -1)
        return rows, cols


def gather(
    values: np.ndarray, rows: np.ndarray, cols: np.ndarray, *, fill: float | int = np.nan
) -> np.ndarray:
    """Pick ``values[..., rows, cols]``; ``fill`` where ``rows`` is -1.

    Examples
    --------
    >>> v = np.arange(6.0).reshape(2, 3)
    >>> gather(v, np.array([[1, -1]]), np.array([[2, 0]]))
    array([[ 5., nan]])
    """
    inside = rows >= 0
    out = values[..., np.where(inside, rows, 0), np.where(inside, cols, 0)]
    if np.issubdtype(out.dtype, np.integer) and isinstance(fill, float) and math.isnan(fill):
        out = out.astype(np.float32)
    out[..., ~inside] = fill
    return out


def percentile_stretch(
    bands: np.ndarray,
    valid: np.ndarray | None = None,
    *,
    percentiles: tuple[float, float] = (2, 98),
) -> np.ndarray:
    """Stretch each band between two percentiles of its valid pixels to uint8.

    Parameters
    ----------
    bands : numpy.ndarray
        ``(band, y, x)`` or ``(y, x)`` values; NaN counts as invalid.
    valid : numpy.ndarray of bool, optional
        Pixels to compute the percentiles over (and to show).
    percentiles : tuple of float
        Lower and upper percentile mapped to 0 and 255.

    Returns
    -------
    numpy.ndarray
        uint8 array of the same shape (0 where invalid).

    Examples
    --------
    >>> percentile_stretch(np.array([[0.0, 1.0, 2.0, np.nan]]), percentiles=(0, 100))
    array([[  0, 128, 255,   0]], dtype=uint8)
    """
    arr = np.asarray(bands, np.float32)
    squeeze = arr.ndim == 2
    arr = arr[None] if squeeze else arr
    ok = np.isfinite(arr).all(axis=0)
    if valid is not None:
        ok &= np.asarray(valid, bool)
    out = np.zeros(arr.shape, np.uint8)
    for i, band in enumerate(arr):
        sample = band[ok]
        if sample.size == 0:
            continue
        if sample.size > 1_000_000:  # percentiles of a regular subsample: same to 1/255
            sample = sample[:: sample.size // 1_000_000]
        lo, hi = np.percentile(sample, percentiles)
        span = hi - lo if hi > lo else 1.0
        scaled = np.clip((band - lo) / span, 0, 1) * 255
        out[i] = np.where(ok, np.rint(np.nan_to_num(scaled)), 0).astype(np.uint8)
    return out[0] if squeeze else out


def _hex_to_rgb(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)


def palette_rgba(
    values: np.ndarray,
    palette: list[str] | tuple[str, ...],
    *,
    vmin: float = 0.0,
    vmax: float = 1.0,
    alpha: int = 255,
) -> np.ndarray:
    """Map values onto a palette of hex colours; NaN becomes transparent.

    Examples
    --------
    >>> palette_rgba(np.array([[0.0, 1.0, np.nan]]), ["#000000", "#ffffff"])[0, :, :3].tolist()
    [[0, 0, 0], [255, 255, 255], [0, 0, 0]]
    """
    lut = np.array([_hex_to_rgb(c) for c in palette], np.uint8)
    if len(lut) > 255:  # 255 colours + transparent: the image fits a palette PNG exactly
        lut = lut[np.rint(np.linspace(0, len(lut) - 1, 255)).astype(np.int64)]
    v = np.asarray(values, np.float32)
    ok = np.isfinite(v)
    idx = np.clip((np.nan_to_num(v) - vmin) / max(vmax - vmin, 1e-12), 0, 1) * (len(lut) - 1)
    rgba = np.zeros((*v.shape, 4), np.uint8)
    rgba[..., :3] = lut[np.rint(idx).astype(np.int64)]
    rgba[..., 3] = np.where(ok, alpha, 0)
    rgba[~ok, :3] = 0
    return rgba


def classes_rgba(classes: np.ndarray, colours: dict[int, str]) -> np.ndarray:
    """Colour integer classes; classes not in ``colours`` are transparent.

    Examples
    --------
    >>> classes_rgba(np.array([[0, 2]]), {2: "#ff0000"})[0, :, 0].tolist()
    [0, 255]
    """
    rgba = np.zeros((*classes.shape, 4), np.uint8)
    for value, colour in colours.items():
        hit = classes == value
        rgba[hit, :3] = _hex_to_rgb(colour)
        rgba[hit, 3] = 255
    return rgba


def hillshade(
    elevation: np.ndarray,
    dx: float | np.ndarray,
    dy: float | np.ndarray,
    *,
    azimuth: float = 315.0,
    altitude: float = 45.0,
) -> np.ndarray:
    """Hillshade (0-1) of an elevation grid with pixel sizes ``dx``, ``dy`` in metres.

    Examples
    --------
    >>> flat = hillshade(np.zeros((4, 4)), 30.0, 30.0)
    >>> round(float(flat[1, 1]), 3) == round(math.sin(math.radians(45)), 3)
    True
    """
    z = np.asarray(elevation, np.float64)
    drow, dcol = np.gradient(z)
    p = dcol / dx  # dz/d(east)
    q = -drow / dy  # dz/d(north): rows grow southwards
    az, alt = math.radians(azimuth), math.radians(altitude)
    light = (math.sin(az) * math.cos(alt), math.cos(az) * math.cos(alt), math.sin(alt))
    shade = (-p * light[0] - q * light[1] + light[2]) / np.sqrt(1 + p * p + q * q)
    return np.clip(shade, 0, 1).astype(np.float32)


def encode_image(
    image: np.ndarray, *, fmt: Literal["png", "jpeg"] = "png", quality: int = 85
) -> str:
    """Encode an ``(y, x)``, ``(y, x, 3)`` or ``(y, x, 4)`` uint8 image as a ``data:`` URL.

    JPEG (for photographic layers) drops the alpha channel: transparent pixels become black.

    Examples
    --------
    >>> encode_image(np.zeros((2, 2, 4), np.uint8))[:22]
    'data:image/png;base64,'
    """
    img = np.ascontiguousarray(image, np.uint8)
    buf = io.BytesIO()
    if fmt == "jpeg":
        Image.fromarray(img).convert("RGB").save(buf, format="JPEG", quality=quality, optimize=True)
    else:
        _png(img).save(buf, format="PNG", compress_level=6)
    return f"data:image/{fmt};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _png(img: np.ndarray) -> Image.Image:
    """A palette image when there are at most 256 colours (exact, 3-4x smaller), else RGB(A)."""
    if img.ndim == 3 and img.shape[2] in (3, 4):
        flat = img.reshape(-1, img.shape[2])
        packed = np.zeros(len(flat), np.uint32)
        for i in range(img.shape[2]):
            packed |= flat[:, i].astype(np.uint32) << (8 * i)
        colours = np.unique(packed[:: max(1, len(packed) // 100_000)])  # candidates
        if len(colours) <= 256:
            index = np.minimum(np.searchsorted(colours, packed), len(colours) - 1)
            missed = colours[index] != packed
            if missed.any():  # colours the sample did not see
                colours = np.union1d(colours, np.unique(packed[missed]))
                index = np.minimum(np.searchsorted(colours, packed), len(colours) - 1)
        if len(colours) <= 256:
            table = np.stack([(colours >> (8 * i)) & 255 for i in range(4)], 1).astype(np.uint8)
            if img.shape[2] == 3:
                table[:, 3] = 255
            pil = Image.fromarray(index.reshape(img.shape[:2]).astype(np.uint8), mode="P")
            pil.putpalette(table[:, :3].ravel().tolist())
            if (table[:, 3] < 255).any():
                pil.info["transparency"] = bytes(table[:, 3].tolist())
            return pil
    return Image.fromarray(img)
