"""Tiles: the unit training and validation read patches from.

A tile is anything with a name, a region, its input groups, a shape and a ``read`` method that
returns a :class:`Patch` for a square window. :class:`SceneTile` wraps a scaled scene and its
reference mask; ``glaviz.data.benchmark`` provides tiles streamed from the benchmark HDF5 files.
Windows reaching outside a tile are zero-padded (label ``IGNORE``, ``valid`` False), like the
benchmark's own padding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import xarray as xr
from pyproj import Transformer

from glaviz.data.scene import band_dim, scene_groups

__all__ = ["IGNORE", "Patch", "SceneTile", "Tile", "padded_window", "spatial_split"]

#: Label value of pixels that are padding, nodata or unlabelled.
IGNORE = 255


@dataclass
class Patch:
    """A square window of a tile: model inputs, label and where it is.

    Attributes
    ----------
    inputs : dict of str to numpy.ndarray
        ``(C, size, size)`` float32 per input group, scaled to [0, 1].
    label : numpy.ndarray
        ``(size, size)`` uint8: 0 not glacier, 1 glacier, ``IGNORE`` (255) for padding,
        nodata or unlabelled pixels.
    valid : numpy.ndarray
        ``(size, size)`` bool: the pixel holds data (not padding or nodata).
    region : str or None
        Region code (``"ALP"``...), ``None`` when unknown.
    lonlat : tuple of float or None
        Longitude and latitude (degrees) of the window's centre, when the tile has a CRS.
    """

    inputs: dict[str, np.ndarray]
    label: np.ndarray
    valid: np.ndarray
    region: str | None = None
    lonlat: tuple[float, float] | None = None


@runtime_checkable
class Tile(Protocol):
    """What training and validation need from a tile."""

    name: str
    region: str | None
    subregion: str | None

    @property
    def groups(self) -> tuple[str, ...]: ...

    @property
    def shape(self) -> tuple[int, int]: ...

    def read(self, y: int, x: int, size: int, groups: Sequence[str] | None = None) -> Patch: ...


def padded_window(arr: np.ndarray, y: int, x: int, size: int, fill: float) -> np.ndarray:
    """A copy of ``arr[..., y:y+size, x:x+size]``, with ``fill`` where it reaches outside.

    Examples
    --------
    >>> padded_window(np.ones((1, 2, 2)), -1, 0, 2, 0.0)[0].tolist()
    [[0.0, 0.0], [1.0, 1.0]]
    """
    h, w = arr.shape[-2:]
    out = np.full((*arr.shape[:-2], size, size), fill, dtype=arr.dtype)
    y0, x0 = max(y, 0), max(x, 0)
    y1, x1 = min(y + size, h), min(x + size, w)
    if y1 > y0 and x1 > x0:
        out[..., y0 - y : y1 - y, x0 - x : x1 - x] = arr[..., y0:y1, x0:x1]
    return out


@dataclass
class SceneTile:
    """A scaled scene and its reference mask as a tile (held in memory).

    Parameters
    ----------
    scene : xarray.Dataset
        A scaled scene (:func:`glaviz.scale`), with ``valid``.
    mask : xarray.DataArray or numpy.ndarray
        Reference mask on the scene grid (0/1; other values are treated as unlabelled).
    name, region, subregion : str, optional
        Identification; ``region`` is a catalog region code or ``None`` (unknown).

    Examples
    --------
    >>> from glaviz.data import scale, synthetic_scene
    >>> ds = synthetic_scene(height=50, width=70, seed=0)
    >>> tile = SceneTile(scale(ds), ds["reference_mask"], name="demo")
    >>> p = tile.read(40, 60, 32)  # reaches past the edge: padded
    >>> p.inputs["optical"].shape, bool(p.valid[-1, -1]), int(p.label[-1, -1])
    ((6, 32, 32), False, 255)
    """

    scene: xr.Dataset
    mask: xr.DataArray | np.ndarray
    name: str = "scene"
    region: str | None = None
    subregion: str | None = None
    _arrays: dict[str, np.ndarray] = field(init=False, repr=False)
    _label: np.ndarray = field(init=False, repr=False)
    _valid: np.ndarray = field(init=False, repr=False)
    _to_lonlat: Transformer | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.scene.attrs.get("scaled"):
            raise ValueError(
                f"tile {self.name!r}: the scene is not scaled; pass glaviz.scale(scene)"
            )
        groups = scene_groups(self.scene)
        if not groups:
            raise ValueError(f"tile {self.name!r}: the scene has no input group")
        self._arrays = {
            g: np.ascontiguousarray(self.scene[g].transpose(band_dim(g), "y", "x").values)
            for g in groups
        }
        mask = np.asarray(self.mask)
        shape = self._arrays[groups[0]].shape[1:]
        if mask.shape != shape:
            raise ValueError(
                f"tile {self.name!r}: mask shape {mask.shape} differs from the scene's {shape}"
            )
        self._valid = np.asarray(self.scene["valid"].values, bool)
        label = np.where(np.isin(mask, (0, 1)), mask, IGNORE).astype(np.uint8)
        label[~self._valid] = IGNORE
        self._label = label
        crs = self.scene.rio.crs
        self._to_lonlat = (
            Transformer.from_crs(crs, "EPSG:4326", always_xy=True) if crs is not None else None
        )

    @property
    def groups(self) -> tuple[str, ...]:
        """Input groups of the tile, in reference order."""
        return tuple(self._arrays)

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` in pixels."""
        h, w = self._label.shape
        return h, w

    def read(self, y: int, x: int, size: int, groups: Sequence[str] | None = None) -> Patch:
        """The window with upper-left corner ``(y, x)`` and side ``size`` (zero-padded)."""
        groups = tuple(groups) if groups is not None else self.groups
        missing = [g for g in groups if g not in self._arrays]
        if missing:
            raise KeyError(f"tile {self.name!r} has no input group(s) {missing}")
        lonlat = None
        if self._to_lonlat is not None:
            t = self.scene.rio.transform()
            cx, cy = t * (x + size / 2, y + size / 2)
            lon, lat = self._to_lonlat.transform(cx, cy)
            lonlat = (float(lon), float(lat))
        return Patch(
            inputs={g: padded_window(self._arrays[g], y, x, size, 0.0) for g in groups},
            label=padded_window(self._label, y, x, size, IGNORE),
            valid=padded_window(self._valid, y, x, size, False),
            region=self.region,
            lonlat=lonlat,
        )


def spatial_split(
    scene: xr.Dataset,
    mask: xr.DataArray,
    *,
    bounds: Mapping[str, tuple[int, int] | Mapping[str, tuple[int, int]]],
    axis: str = "x",
    region: str | None = None,
) -> dict[str, SceneTile]:
    """Cut a scaled scene into spatially separate rectangles (pixel index ranges).

    Parameters
    ----------
    scene, mask
        A scaled scene and its reference mask on the same grid.
    bounds : dict
        Per split name, a half-open ``(start, stop)`` range along ``axis``, or a dict
        ``{"y": (start, stop), "x": (start, stop)}`` for a rectangle (an axis left out means
        all of it). Splits must not overlap.
    axis : {"x", "y"}
        The axis of plain ``(start, stop)`` ranges: columns (``"x"``) or rows (``"y"``).
    region : str, optional
        Region code given to every tile.

    Examples
    --------
    >>> from glaviz.data import scale, synthetic_scene
    >>> ds = synthetic_scene(height=40, width=100, seed=0)
    >>> parts = spatial_split(scale(ds), ds["reference_mask"],
    ...                       bounds={"train": (0, 50), "val": (50, 60), "test": (60, 100)})
    >>> {k: v.shape for k, v in parts.items()}
    {'train': (40, 50), 'val': (40, 10), 'test': (40, 40)}
    >>> parts = spatial_split(scale(ds), ds["reference_mask"], bounds={
    ...     "train": {"y": (0, 30), "x": (0, 60)}, "val": {"y": (30, 40), "x": (0, 60)},
    ...     "test": {"x": (60, 100)}})
    >>> {k: v.shape for k, v in parts.items()}
    {'train': (30, 60), 'val': (10, 60), 'test': (40, 40)}
    """
    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    rects: dict[str, dict[str, tuple[int, ...]]] = {}
    for name, b in bounds.items():
        rect: dict[str, tuple[int, ...]] = dict(b) if isinstance(b, Mapping) else {axis: tuple(b)}
        unknown = [k for k in rect if k not in ("x", "y")]
        if unknown:
            raise ValueError(f"split {name!r}: unknown axis {unknown}; use 'x' and 'y'")
        for ax in ("y", "x"):
            start, stop = rect.setdefault(ax, (0, scene.sizes[ax]))
            if not 0 <= start < stop <= scene.sizes[ax]:
                raise ValueError(
                    f"split {name!r}: {ax} range ({start}, {stop}) outside 0..{scene.sizes[ax]}"
                )
        rects[name] = rect
    names = list(rects)
    for i, a in enumerate(names):
        for c in names[i + 1 :]:
            if all(rects[a][ax][0] < rects[c][ax][1] and rects[c][ax][0] < rects[a][ax][1]
                   for ax in ("y", "x")):  # fmt: skip
                raise ValueError(f"splits {a!r} and {c!r} overlap: {rects[a]} and {rects[c]}")
    out = {}
    for name, rect in rects.items():
        sel = {ax: slice(*rect[ax]) for ax in ("y", "x")}
        out[name] = SceneTile(scene.isel(sel), mask.isel(sel), name=name, region=region)
    return out
