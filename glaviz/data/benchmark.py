"""Stream tiles from the GlaViTU benchmark HDF5 files (one group per tile, H x W x C datasets).

Layout of the benchmark (CC-BY-4.0, DOI 10.11582/2024.00168): files ``*_train_*.hdf5``,
``*_val_*.hdf5``, ``*_test_*.hdf5``; one HDF5 group per tile named ``<REGION>-<row>-<col>`` with
the attributes :data:`ATTRIBUTES`; float64 ``H x W x C`` datasets, already scaled: the input
groups of :data:`glaviz.catalog.GROUPS` present for the tile, and ``outlines`` (2-channel one-hot:
not glacier, glacier; (0, 0) = no label). Tiles are zero-padded, centred, to multiples of 384.

Conventions this module decides (the reference does not say):

* Padding. ``height - original_height`` is the total padding of the rows. ``padding_height`` is
  read as the padding *before* the data (top rows) unless it equals the total, in which case it is
  the sum of both sides and the top gets ``total // 2`` (see :data:`PADDING` and
  :func:`pad_before`). Both readings agree for centred padding; columns alike.
* Bounds. ``xmin, xmax, ymin, ymax`` are the outer edges of the *unpadded* data
  (``original_height x original_width`` pixels, north up): pixel size ``(xmax - xmin) /
  original_width`` by ``(ymax - ymin) / original_height``; padding extends the grid outwards.
* Validity. ``valid`` is False on the padding only: inside the data 0 is a scaled minimum, not
  missing data. Labels are ``IGNORE`` (255) on padding and where the one-hot is (0, 0).

Nothing reads a whole file: :func:`open_benchmark` lists tiles from group attributes and dataset
shapes (metadata only); :meth:`BenchmarkTile.read` reads one window slice per dataset. Files are
opened lazily, kept open per process and reopened after a fork (torch DataLoader workers); a
pickled set carries no open file.

Examples
--------
>>> import tempfile, h5py, numpy as np
>>> tmp = tempfile.TemporaryDirectory()
>>> path = tmp.name + "/demo_train_ps384.hdf5"
>>> with h5py.File(path, "w") as f:
...     _ = write_tile(f, "ALP-0-0", {"optical": np.full((6, 300, 380), 0.5),
...                    "dem": np.zeros((2, 300, 380))}, np.ones((300, 380), np.uint8),
...                    region="ALP", subregion="ALP", epsg=32632, xmin=300000.0,
...                    ymax=5100000.0, resolution=10.0)
>>> with open_benchmark(path) as bs:
...     tile = bs[0]
...     p = tile.read(-100, 0, 384)  # reaches above the tile: zero-padded
...     scene = tile.to_scene()  # the unpadded data as a scaled scene
...     tile.shape, bs.n_windows(384), p.inputs["optical"].shape, int(p.label[200, 200])
((384, 384), 1, (6, 384, 384), 1)
>>> tile.attrs["pad_top"], bool(p.valid[141, 9]), bool(p.valid[142, 9]), int(p.label[0, 9])
(42, False, True, 255)
>>> scene["optical"].shape, scene.rio.crs.to_epsg(), scene.rio.transform().c, scene.attrs["scaled"]
((6, 300, 380), 32632, 300000.0, 1)
>>> tmp.cleanup()
"""

from __future__ import annotations

import glob
import json
import os
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, overload

import h5py
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from pyproj import CRS, Transformer
from rasterio.transform import Affine

from glaviz.catalog import GROUPS, load_catalog
from glaviz.data.benchmark_write import (
    ATTRIBUTES,
    LABELS,
    MULTIPLE,  # noqa: F401  (re-exported)
    PADDING,
    decode_labels,
    pad_before,
    write_tile,
)
from glaviz.data.scene import band_dim
from glaviz.data.tiles import IGNORE, Patch
from glaviz.errors import BenchmarkError

__all__ = ["ATTRIBUTES", "PADDING", "SPLITS", "BenchmarkError", "BenchmarkSet", "BenchmarkTile"]
__all__ += ["open_benchmark", "pad_before", "write_tile"]

#: Split names, parsed from file names (``*_train_*.hdf5``).
SPLITS: tuple[str, ...] = ("train", "val", "test")

_SPLIT_RE = re.compile(r"(?:^|[_.-])(train|val|test)(?=[_.-]|$)")


@lru_cache(maxsize=64)
def _crs(epsg: int) -> CRS:
    return CRS.from_epsg(epsg)


@lru_cache(maxsize=64)
def _to_lonlat(epsg: int, pid: int) -> Transformer:  # pid: never reuse a parent's transformer
    return Transformer.from_crs(_crs(epsg), "EPSG:4326", always_xy=True)


class _Files:
    """The h5py files open in this process; reopened after a fork, never pickled."""

    def __init__(self) -> None:
        self._pid = os.getpid()
        self._open: dict[str, h5py.File] = {}

    def get(self, path: str) -> h5py.File:
        if self._pid != os.getpid():  # forked: the parent's handles are not ours to use
            self._pid, self._open = os.getpid(), {}
        f = self._open.get(path)
        if f is None or not f.id.valid:
            f = self._open[path] = h5py.File(path, "r")
        return f

    def close(self) -> None:
        if self._pid == os.getpid():
            for f in self._open.values():
                f.close()
        self._open = {}

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        _Files.__init__(self)


class BenchmarkTile:
    """One tile of a benchmark file, streamed window by window (a :class:`~glaviz.data.tiles.Tile`).

    Made by :func:`open_benchmark`. ``groups`` are the selected input groups present in the tile;
    ``available`` all groups present. Attributes: ``name`` (the HDF5 group), ``region``,
    ``subregion``, ``split``, ``file``, ``epsg`` and ``attrs`` (the table row).
    """

    def __init__(self, row: Mapping[str, Any], groups: tuple[str, ...], files: _Files) -> None:
        self.attrs = dict(row)
        self.name: str = row["tile"]
        self.region: str | None = row["region"]
        self.subregion: str | None = row["subregion"]
        self.split: str | None = row["split"]
        self.file: str = row["file"]
        self.epsg = int(row["epsg"])
        self.available: tuple[str, ...] = tuple(row["groups"])
        self._groups = groups
        self._files = files

    def __repr__(self) -> str:
        return (
            f"BenchmarkTile({self.name!r}, region={self.region!r}, shape={self.shape}, "
            f"groups={self.groups}, file={Path(self.file).name!r})"
        )

    @property
    def groups(self) -> tuple[str, ...]:
        """Selected input groups present in the tile, in reference order."""
        return self._groups

    @property
    def shape(self) -> tuple[int, int]:
        """Padded ``(height, width)`` in pixels (the datasets' shape)."""
        return int(self.attrs["height"]), int(self.attrs["width"])

    @property
    def inner(self) -> tuple[slice, slice]:
        """Row and column slices of the unpadded data within the padded tile."""
        top, left = int(self.attrs["pad_top"]), int(self.attrs["pad_left"])
        h, w = int(self.attrs["original_height"]), int(self.attrs["original_width"])
        return slice(top, top + h), slice(left, left + w)

    @property
    def transform(self) -> Affine:
        """Affine transform of the padded grid (bounds refer to the unpadded data)."""
        a = self.attrs
        rx = (a["xmax"] - a["xmin"]) / a["original_width"]
        ry = (a["ymax"] - a["ymin"]) / a["original_height"]
        return Affine(
            rx, 0.0, a["xmin"] - a["pad_left"] * rx, 0.0, -ry, a["ymax"] + a["pad_top"] * ry
        )

    def _group(self) -> h5py.Group:
        return self._files.get(self.file)[self.name]

    def _check(self, groups: Sequence[str] | None) -> tuple[str, ...]:
        groups = (groups,) if isinstance(groups, str) else groups
        groups = tuple(groups) if groups is not None else self.groups
        missing = [g for g in groups if g not in self.available]
        if missing:
            raise KeyError(
                f"tile {self.name!r} ({self.file}) has no input group(s) {missing}; "
                f"available: {list(self.available)}"
            )
        return groups

    def _valid(self, y: int, x: int, height: int, width: int) -> np.ndarray:
        """Where the window ``[y, y + height) x [x, x + width)`` holds data (not padding)."""
        (ry, rx), out = self.inner, np.zeros((height, width), bool)
        out[
            max(ry.start - y, 0) : max(ry.stop - y, 0), max(rx.start - x, 0) : max(rx.stop - x, 0)
        ] = True
        return out

    def read(self, y: int, x: int, size: int, groups: Sequence[str] | None = None) -> Patch:
        """The window with upper-left corner ``(y, x)`` and side ``size`` (zero-padded outside).

        Reads ``ds[y0:y1, x0:x1, :]`` of each requested dataset and of ``outlines``, nothing more
        (see the module example).
        """
        groups = self._check(groups)
        h, w = self.shape
        y0, x0, y1, x1 = max(y, 0), max(x, 0), min(y + size, h), min(x + size, w)
        overlap = y1 > y0 and x1 > x0
        win = (slice(y0 - y, y1 - y), slice(x0 - x, x1 - x))
        grp, inputs = self._group(), {}
        for g in groups:
            ds = grp[g]
            out = np.zeros((ds.shape[-1], size, size), np.float32)
            if overlap:
                out[:, win[0], win[1]] = ds[y0:y1, x0:x1, :].transpose(2, 0, 1)
            inputs[g] = out
        valid = self._valid(y, x, size, size)
        label = np.full((size, size), IGNORE, np.uint8)
        if overlap:
            label[win] = decode_labels(grp[LABELS][y0:y1, x0:x1, :])
            label[~valid] = IGNORE
        cx, cy = self.transform * (x + size / 2, y + size / 2)
        lon, lat = _to_lonlat(self.epsg, os.getpid()).transform(cx, cy)
        return Patch(inputs, label, valid, region=self.region, lonlat=(float(lon), float(lat)))

    def to_scene(self, groups: Sequence[str] | None = None, *, crop: bool = True) -> xr.Dataset:
        """The whole tile as a scaled scene Dataset (glaviz layout), padding cropped away.

        Parameters
        ----------
        groups : sequence of str, optional
            Input groups (default: the tile's selected ``groups``).
        crop : bool, default True
            Drop the padding; with False the padded grid is kept (``valid`` False there).

        Returns
        -------
        xarray.Dataset
            float32 ``(<group>_band, y, x)`` variables, ``valid`` (bool), ``reference_mask``
            (uint8: 0, 1, 255 unlabelled), CRS ``EPSG:<epsg>``, ``attrs["scaled"] = 1``
            (see the module example).
        """
        groups = self._check(groups)
        ry, rx = self.inner if crop else (slice(0, self.shape[0]), slice(0, self.shape[1]))
        t = self.transform * Affine.translation(rx.start, ry.start)
        ny, nx = ry.stop - ry.start, rx.stop - rx.start
        coords = {"y": t.f + t.e * (np.arange(ny) + 0.5), "x": t.c + t.a * (np.arange(nx) + 0.5)}
        cat, grp = load_catalog(), self._group()
        ds = xr.Dataset()
        for g in groups:
            data = grp[g][ry, rx, :].transpose(2, 0, 1).astype(np.float32)
            dim = band_dim(g)
            bands = cat.groups[g].bands
            ds[g] = xr.DataArray(
                data,
                coords={dim: list(bands[: data.shape[0]]), **coords},
                dims=(dim, "y", "x"),
                attrs={"units": cat.groups[g].unit, "sensor": "benchmark", "scaled": 1},
            )
        valid = self._valid(ry.start, rx.start, ny, nx)
        mask = decode_labels(grp[LABELS][ry, rx, :])
        mask[~valid] = IGNORE
        ds["valid"] = xr.DataArray(valid, coords=coords, dims=("y", "x"))
        ds["reference_mask"] = xr.DataArray(
            mask,
            coords=coords,
            dims=("y", "x"),
            attrs={"long_name": "reference glacier mask", "flag_values": "0 1 255"},
        )
        ds = ds.rio.write_crs(f"EPSG:{self.epsg}").rio.write_transform(t)
        sources = {g: f"{self.file}::{self.name}/{g}" for g in groups}
        ds.attrs = {"sensors": '{"all": "benchmark"}', "sources": json.dumps(sources), "scaled": 1}
        ds.attrs.update(tile=self.name, region=self.region or "", subregion=self.subregion or "")
        ds.attrs["split"] = self.split or ""
        return ds


class BenchmarkSet(Sequence):
    """Tiles of one or more benchmark files (a sequence of :class:`BenchmarkTile`).

    ``table`` lists the tiles (one row per tile, in order), ``dropped`` the tiles the filters of
    :func:`open_benchmark` removed and why (``reason``). Use as a context manager, or ``close()``.
    """

    def __init__(
        self, tiles: list[BenchmarkTile], table: pd.DataFrame, dropped: pd.DataFrame, files: _Files
    ) -> None:
        self._tiles = tiles
        self.table = table
        self.dropped = dropped
        self._files = files

    def __len__(self) -> int:
        return len(self._tiles)

    @overload
    def __getitem__(self, index: int) -> BenchmarkTile: ...
    @overload
    def __getitem__(self, index: slice) -> list[BenchmarkTile]: ...
    def __getitem__(self, index: int | slice) -> BenchmarkTile | list[BenchmarkTile]:
        return self._tiles[index]

    def __iter__(self) -> Iterator[BenchmarkTile]:
        return iter(self._tiles)

    def __repr__(self) -> str:
        return (
            f"BenchmarkSet({len(self)} tiles, regions={list(self.regions)}, "
            f"files={self.table['file'].nunique()}, dropped={len(self.dropped)})"
        )

    @property
    def regions(self) -> tuple[str, ...]:
        """Region codes of the tiles, in catalog order."""
        present = set(self.table["region"])
        return tuple(c for c in load_catalog().region_codes if c in present)

    def tile(self, name: str) -> BenchmarkTile:
        """The tile named ``name`` (an HDF5 group name such as ``"ALP-0-1"``)."""
        found = [t for t in self._tiles if t.name == name]
        if len(found) != 1:
            what = "no tile" if not found else f"{len(found)} tiles (in {[t.file for t in found]})"
            raise KeyError(f"{what} named {name!r} in the set")
        return found[0]

    def windows(self, size: int = 384, stride: int | None = None) -> Iterator[tuple[int, int, int]]:
        """``(tile index, y, x)`` of the windows inside each tile, row by row (``stride=size``)."""
        stride = stride or size
        for i, t in enumerate(self._tiles):
            h, w = t.shape
            for y in range(0, h - size + 1, stride):
                for x in range(0, w - size + 1, stride):
                    yield i, y, x

    def n_windows(self, size: int = 384) -> int:
        """Number of non-overlapping ``size`` windows inside the tiles (the paper's epoch length).

        ``sum((height // size) * (width // size))`` over the padded tiles, as the reference's
        samplers count patches (see the module example).
        """
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        return sum((t.shape[0] // size) * (t.shape[1] // size) for t in self._tiles)

    def close(self) -> None:
        """Close the files this process opened (they reopen on the next read)."""
        self._files.close()

    def __enter__(self) -> BenchmarkSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _names(value: str | Sequence[str] | None, what: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    values = (value,) if isinstance(value, str) else tuple(value)
    if not all(isinstance(v, str) for v in values):
        raise TypeError(f"{what} must be strings, got {values!r}")
    return values


def _expand(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise FileNotFoundError("no benchmark file given (empty list)")
    out: list[str] = []
    for item in items:
        s = os.fspath(item)
        if glob.has_magic(s):
            found = sorted(glob.glob(s))
            if not found:
                raise FileNotFoundError(f"no benchmark file matches the pattern {s!r}")
        elif not os.path.isfile(s):
            raise FileNotFoundError(f"benchmark file {s!r} does not exist")
        else:
            found = [s]
        out += [str(Path(p).resolve()) for p in found if str(Path(p).resolve()) not in out]
    return out


def _split_of(path: str) -> str | None:
    m = _SPLIT_RE.search(Path(path).name.lower())
    return m.group(1) if m else None


def _attr(value: Any) -> Any:
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode()
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(())[()]
    return value.item() if isinstance(value, np.generic) else value


def _scan(path: str, padding: str, check: tuple[str, ...] | None) -> list[dict[str, Any]]:
    """One row per tile group of ``path``, from attributes and dataset shapes only."""
    cat, split, rows = load_catalog(), _split_of(path), []
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise BenchmarkError(f"{path!r} is not a readable HDF5 file ({e})") from None
    with f:
        for key in f:
            where = f"{path!r}, tile {key!r}"
            grp = f[key]
            if not isinstance(grp, h5py.Group):
                raise BenchmarkError(
                    f"{path!r}: {key!r} is a dataset at the file root; the benchmark layout has "
                    "one group per tile (<REGION>-<row>-<col>) holding the datasets"
                )
            missing = [a for a in ATTRIBUTES if a not in grp.attrs]
            if missing:
                raise BenchmarkError(
                    f"{where}: missing attribute(s) {missing}; the benchmark layout needs "
                    f"{list(ATTRIBUTES)}"
                )
            a = {k: _attr(grp.attrs[k]) for k in ATTRIBUTES}
            for k in ATTRIBUTES[3:10]:  # epsg, sizes and paddings
                if not isinstance(a[k], (int, float)) or a[k] != int(a[k]):
                    raise BenchmarkError(f"{where}: attribute {k}={a[k]!r} is not an integer")
                a[k] = int(a[k])
            if a["region"] not in cat.region_codes:
                raise BenchmarkError(
                    f"{where}: unknown region {a['region']!r}; known: {list(cat.region_codes)}"
                )
            try:
                _crs(a["epsg"])
                tops = [
                    pad_before(a[f"padding_{d}"], a[d] - a[f"original_{d}"], padding)
                    for d in ("height", "width")
                ]
            except (ValueError, RuntimeError) as e:  # pyproj's CRSError is a RuntimeError
                raise BenchmarkError(f"{where}: inconsistent attributes: {e}") from None
            if min(a["original_height"], a["original_width"]) < 1 or not (
                a["xmax"] > a["xmin"] and a["ymax"] > a["ymin"]
            ):
                raise BenchmarkError(f"{where}: empty tile or bounds {a}")
            present = []
            for name in grp:
                if name not in GROUPS and name != LABELS:
                    continue
                ds = grp[name]
                shape = getattr(ds, "shape", None)
                ok = (
                    shape is not None and len(shape) == 3 and shape[:2] == (a["height"], a["width"])
                )
                want = 2 if name == LABELS else len(cat.groups[name].bands)
                if ok and shape is not None and (name == LABELS or check is None or name in check):
                    ok = shape[2] == want
                if not ok:
                    raise BenchmarkError(
                        f"{where}: dataset {name!r} has shape {shape}; the layout needs height x "
                        f"width x channels = ({a['height']}, {a['width']}, {want})"
                    )
                if name != LABELS:
                    present.append(name)
            if LABELS not in grp:
                raise BenchmarkError(f"{where}: no {LABELS!r} dataset (the labels)")
            groups = tuple(g for g in GROUPS if g in present)
            row = {"file": path, "tile": key, "split": split, **a, "groups": groups}
            rows.append({**row, "pad_top": tops[0], "pad_left": tops[1]})
    if not rows:
        raise BenchmarkError(f"{path!r} holds no tile group")
    return rows


def open_benchmark(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    split: str | Sequence[str] | None = None,
    regions: str | Sequence[str] | None = None,
    subregions: str | Sequence[str] | None = None,
    groups: str | Sequence[str] | None = ("optical", "dem"),
    require_groups: bool = True,
    padding: str = PADDING,
) -> BenchmarkSet:
    """List the tiles of benchmark HDF5 files (attributes only) and select some.

    Parameters
    ----------
    paths : path, glob pattern or list of them
        Benchmark files; the split is parsed from each name (``*_train_*.hdf5``).
    split, regions, subregions : str or sequence of str, optional
        Keep tiles of these splits (``train``, ``val``, ``test``), region codes, subregions.
    groups : str or sequence of str, optional
        Input groups to read (default optical and DEM); ``None``: all groups of each tile.
    require_groups : bool, default True
        Drop tiles lacking any of ``groups`` (with a warning; see ``BenchmarkSet.dropped``).
        With False they are kept and their ``groups`` are those present.
    padding : {"auto", "before", "total"}
        How ``padding_height``/``padding_width`` are read (:func:`pad_before`).

    Returns
    -------
    BenchmarkSet

    Raises
    ------
    FileNotFoundError
        A missing file, or a pattern matching none.
    BenchmarkError
        A file not in the layout (names the file, tile and what is missing), unknown region,
        group or split names, or no tile left after filtering (names the filter).

    Examples
    --------
    >>> import tempfile, h5py, numpy as np
    >>> tmp = tempfile.TemporaryDirectory()
    >>> d = tmp.name
    >>> with h5py.File(d + "/bm_train_ps384.hdf5", "w") as f:
    ...     for name, region in [("ALP-0-0", "ALP"), ("GR-0-0", "GR")]:
    ...         _ = write_tile(f, name, {"optical": np.ones((6, 40, 50))},
    ...                        np.zeros((40, 50), np.uint8), region=region, subregion=region,
    ...                        epsg=3413, xmin=0.0, ymax=0.0, resolution=10.0, multiple=64)
    >>> bs = open_benchmark(d + "/*_train_*.hdf5", regions="GR", groups="optical")
    >>> len(bs), bs.table.loc[0, ["tile", "split", "region"]].tolist(), bs.n_windows(32)
    (1, ['GR-0-0', 'train', 'GR'], 4)
    >>> len(bs.dropped), bs.dropped.loc[0, "reason"]
    (1, "region not in ['GR']")
    >>> tmp.cleanup()
    """
    cat = load_catalog()
    splits, codes = _names(split, "split"), _names(regions, "regions")
    subs, wanted = _names(subregions, "subregions"), _names(groups, "groups")
    for what, given, known in (
        ("split", splits, SPLITS),
        ("region", codes, cat.region_codes),
        ("input group", wanted, GROUPS),
    ):
        bad = [v for v in given or () if v not in known]
        if bad:
            raise BenchmarkError(f"unknown {what}(s) {bad}; known: {list(known)}")
    if wanted is not None:
        wanted = tuple(g for g in GROUPS if g in wanted)
    files = _expand(paths)
    rows = [r for p in files for r in _scan(p, padding, wanted)]
    if subs is not None:
        known_subs = sorted({r["subregion"] for r in rows})
        bad = [s for s in subs if s not in known_subs]
        if bad:
            raise BenchmarkError(f"unknown subregion(s) {bad}; the files hold {known_subs}")
    table = pd.DataFrame(rows)
    keep = pd.Series(True, index=table.index)
    reason = pd.Series("", index=table.index, dtype=object)
    stages = [f"{len(table)} tile(s) in {len(files)} file(s)"]
    for column, given in (("split", splits), ("region", codes), ("subregion", subs)):
        if given is not None:
            drop = keep & ~table[column].isin(given)
            reason[drop] = f"{column} not in {list(given)}"
            keep &= ~drop
            stages.append(f"{column}={list(given)} kept {int(keep.sum())}")
    lacking = table["groups"].map(lambda g: [w for w in wanted or () if w not in g])
    if require_groups and wanted is not None:
        drop = keep & lacking.map(bool)
        if drop.any():
            reason[drop] = lacking[drop].map(lambda m: f"lacks input group(s) {m}")
            counts = {g: int(sum(g in m for m in lacking[drop])) for g in wanted}
            warnings.warn(
                f"open_benchmark: dropped {int(drop.sum())} of {int(keep.sum())} tile(s) lacking "
                f"requested input groups ({ {g: n for g, n in counts.items() if n} }); see "
                "BenchmarkSet.dropped, or pass require_groups=False",
                stacklevel=2,
            )
        keep &= ~drop
        stages.append(f"groups={list(wanted)} kept {int(keep.sum())}")
    if not keep.any():
        raise BenchmarkError(
            f"no tile left after filtering {[Path(p).name for p in files]}: "
            + "; ".join(stages)
            + f" (splits {sorted({str(s) for s in table['split']})}, regions "
            f"{sorted(set(table['region']))}, subregions {sorted(set(table['subregion']))})"
        )
    dropped = table[~keep].assign(reason=reason[~keep]).reset_index(drop=True)
    table = table[keep].reset_index(drop=True)
    handles = _Files()
    tiles = [
        BenchmarkTile(
            row,
            row["groups"] if wanted is None else tuple(g for g in wanted if g in row["groups"]),
            handles,
        )
        for row in table.to_dict("records")
    ]
    return BenchmarkSet(tiles, table, dropped, handles)
