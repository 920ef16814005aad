"""Where predictions go, block by block: memory, Cloud-Optimised GeoTIFFs or Zarr.

The file sinks write each finished block at once into a partial output beside the target and
record it in ``<target>.progress.json`` with the run's fingerprint (model state, scene data,
settings: see :func:`glaviz.predict`); a killed run started again *as the same run* skips the
blocks already written. A different run finding that record is refused
(:class:`~glaviz.errors.ResumeMismatchError`, naming what differs) unless ``overwrite=True``,
which starts afresh: two runs are never spliced. Only when every block is done do the outputs
appear under their final names (GeoTIFFs converted to COG, Zarr renamed), so a target never
holds half a result and an existing output is replaced only with ``overwrite=True``;
temporaries that a killed conversion left beside a target are removed by the next run.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import rasterio
import rasterio.shutil
import rioxarray
import torch
import xarray as xr

from glaviz._io import atomic_write, check_writable, remove_stale_temporaries
from glaviz.errors import ResumeMismatchError

__all__ = [
    "GeoTiffSink",
    "MemorySink",
    "ZarrSink",
    "fingerprint_differences",
    "make_sink",
    "open_prediction",
]

#: GDAL's block cache for the file sinks, in MB. GDAL's default (5 % of RAM) would let memory
#: grow with the size of the output instead of staying bounded by the block.
GDAL_CACHE_MB = 64

#: The partial GeoTIFFs are written uncompressed (a 2048 x 2048 output: 0.015 s instead of 0.2 s
#: in ZSTD level 1, and read back faster by the COG conversion) unless the three would take more
#: than this many GiB on disk (9 bytes per pixel: a 10980 x 10980 Sentinel-2 tile takes 1.0 GiB);
#: larger outputs use ZSTD level 1 (a fifth smaller for noisy probabilities, far smaller for
#: smooth ones). The final COGs are DEFLATE (level 1 with the TIFF predictor: faster than
#: level 6 and no larger), readable everywhere. (A GDAL built without ZSTD, which rasterio's
#: wheels and conda-forge's are not, warns and writes those partials uncompressed.)
PARTIAL_UNCOMPRESSED_MAX_GIB = 2.0
PARTIAL_COMPRESSION: dict[str, str | int] = {"compress": "zstd", "zstd_level": 1}

VARIABLES = {
    "glacier_probability": ("float32", np.nan),
    "glacier_mask": ("uint8", 255),
    "confidence": ("float32", np.nan),
}
#: How the COGs' overviews are computed from the full resolution: the mean of probabilities and
#: confidences (GDAL's default, cubic, overshoots [0, 1] at sharp edges, spreads NaN nodata and
#: costs about twice as much), the nearest pixel of the mask (a class, not a quantity).
OVERVIEW_RESAMPLING = {
    "glacier_probability": "AVERAGE",
    "glacier_mask": "NEAREST",
    "confidence": "AVERAGE",
}
ATTRS: dict[str, dict[str, str | int]] = {
    "glacier_probability": {"long_name": "glacier probability (blended softmax)"},
    "glacier_mask": {"long_name": "glacier mask", "flag_values": "0 1", "nodata": 255},
    "confidence": {"long_name": "confidence, 1 - binary entropy (bits), calibrated if available"},
}


#: What each part of a run's fingerprint stands for (in a refusal to resume).
_PARTS = {
    "format": "the progress record's format (written by another glaviz version)",
    "grid": "the grid (shape, transform or CRS)",
    "model": "the model's state (its weights or BatchNorm statistics)",
    "calibration": "the calibration map",
    "scaling": "the scaling table",
    "location": "the location input",
    "precision": "the precision",
    "device": "the device type",
    "settings": "the settings",
    "data": "the scene's data",
}


def fingerprint_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What differs between two run fingerprints, in words (empty when they are equal).

    Examples
    --------
    >>> fingerprint_differences({"settings": {"window": 32}, "model": "a"},
    ...                         {"settings": {"window": 64}, "model": "b"})
    ["the model's state (its weights or BatchNorm statistics)", 'the settings (window 32 -> 64)']
    """
    out = []
    for key in sorted(set(saved) | set(current), key=lambda k: list(_PARTS).index(k)
                      if k in _PARTS else len(_PARTS)):  # fmt: skip
        a, b = saved.get(key), current.get(key)
        if a == b:
            continue
        what = _PARTS.get(key, key)
        if key == "data" and isinstance(a, Mapping) and isinstance(b, Mapping):
            changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            what += f" (variables {changed})"
        elif key == "settings" and isinstance(a, Mapping) and isinstance(b, Mapping):
            changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            what += f" ({', '.join(f'{k} {a.get(k)} -> {b.get(k)}' for k in changed)})"
        elif key in ("precision", "device", "location") and not isinstance(a, Mapping):
            what += f" ({a} -> {b})"
        out.append(what)
    return out


class _Base:
    def __init__(self, template: xr.Dataset, fingerprint: Mapping[str, Any]) -> None:
        self.template = template  # coords + CRS of the scene grid, no data
        self.fingerprint = json.loads(json.dumps(dict(fingerprint)))  # as it reads back
        self.done: set[str] = set()

    @property
    def shape(self) -> tuple[int, int]:
        return self.template.sizes["y"], self.template.sizes["x"]

    def _dataset(self, arrays: Mapping[str, Any]) -> xr.Dataset:
        coords = {"y": self.template["y"].values, "x": self.template["x"].values}
        ds = xr.Dataset(
            {
                k: xr.DataArray(v, coords=coords, dims=("y", "x"), attrs=ATTRS[k])
                for k, v in arrays.items()
            }  # fmt: skip
        )
        ds["valid"] = ds["glacier_mask"] != 255
        crs, transform = self.template.rio.crs, self.template.rio.transform()
        return ds.rio.write_crs(crs).rio.write_transform(transform)


class MemorySink(_Base):
    """Keeps the whole prediction in memory (the default for interactive use)."""

    def __init__(self, template: xr.Dataset, fingerprint: Mapping[str, Any]) -> None:
        super().__init__(template, fingerprint)
        self.arrays = {
            k: np.full(self.shape, fill, dtype) for k, (dtype, fill) in VARIABLES.items()
        }

    def write(
        self, block: str, rect: tuple[int, int, int, int], values: Mapping[str, np.ndarray]
    ) -> None:
        y0, y1, x0, x1 = rect
        for k, v in values.items():
            self.arrays[k][y0:y1, x0:x1] = v
        self.done.add(block)

    def finalize(self) -> xr.Dataset:
        return self._dataset(self.arrays)


def _open_band(path: Path) -> xr.DataArray:
    """A single-band GeoTIFF written by a sink, lazy (2048 x 2048 chunks), without ``band``."""
    opened = rioxarray.open_rasterio(path, chunks={"y": 2048, "x": 2048}, masked=False)
    if not isinstance(opened, xr.DataArray):  # a list or Dataset: a file with subdatasets
        raise ValueError(f"{str(path)!r} is not a single-band GeoTIFF")
    return opened.squeeze("band", drop=True)


def _atomic_json(path: Path, data: Mapping[str, Any]) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data)))


class _FileSink(_Base):
    def __init__(
        self,
        template: xr.Dataset,
        fingerprint: Mapping[str, Any],
        progress: Path,
        targets: list[Path],
        *,
        overwrite: bool,
        resume: bool,
        label: str = "",
    ) -> None:
        super().__init__(template, fingerprint)
        label = label or str(targets[0])
        check_writable(progress, repr(label))  # a read-only folder, named (not a temporary)
        existing = [str(t) for t in targets if t.exists()]
        if existing and not overwrite:
            raise FileExistsError(
                f"prediction output(s) {existing} exist; pass overwrite=True to replace them "
                "or choose another output path"
            )
        remove_stale_temporaries(progress, ".tmp")
        self.progress = progress
        self.overwrite = overwrite
        self.resumed = False
        if resume and progress.exists() and self._partial_exists():
            try:
                saved = json.loads(progress.read_text())
                differences = fingerprint_differences(saved["fingerprint"], self.fingerprint)
            except (ValueError, KeyError, TypeError):
                saved, differences = {}, ["the progress record (unreadable)"]
            if not differences:
                self.done = set(saved["done"])
                self.resumed = True
            elif not overwrite:
                raise ResumeMismatchError(
                    f"{label}: an unfinished prediction of another run is recorded in "
                    f"{str(progress)!r}; it differs in {'; '.join(differences)}. Resuming "
                    "would splice the two runs into one output: pass overwrite=True to discard "
                    "it and start afresh, or write to another output"
                )
        if not self.resumed:
            self._create()
            self._save_progress()

    def _save_progress(self) -> None:
        _atomic_json(self.progress, {"fingerprint": self.fingerprint, "done": sorted(self.done)})

    def write(
        self, block: str, rect: tuple[int, int, int, int], values: Mapping[str, np.ndarray]
    ) -> None:
        self._write(rect, values)
        self.done.add(block)
        self._save_progress()

    def _partial_exists(self) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def _create(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _write(
        self, rect: tuple[int, int, int, int], values: Mapping[str, np.ndarray]
    ) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class GeoTiffSink(_FileSink):
    """One Cloud-Optimised GeoTIFF per variable: ``<stem>_glacier_probability.tif`` ..."""

    def __init__(
        self,
        path: str | os.PathLike,
        template: xr.Dataset,
        fingerprint: Mapping[str, Any],
        *,
        overwrite: bool,
        resume: bool,
        block_size: int = 512,
    ) -> None:
        path = Path(path)
        stem = path.with_suffix("") if path.suffix.lower() in (".tif", ".tiff") else path
        self.targets = {k: stem.parent / f"{stem.name}_{k}.tif" for k in VARIABLES}
        self.partials = {k: stem.parent / f".{stem.name}_{k}.partial.tif" for k in VARIABLES}
        self.block_size = block_size
        super().__init__(
            template, fingerprint, stem.parent / f"{stem.name}.progress.json",
            list(self.targets.values()), overwrite=overwrite, resume=resume, label=str(path),
        )  # fmt: skip
        for target in self.targets.values():  # a kill during the COG conversion left these
            remove_stale_temporaries(target, ".tif")

    def _partial_exists(self) -> bool:
        return all(p.exists() for p in self.partials.values())

    def _create(self) -> None:
        h, w = self.shape
        size = h * w * sum(np.dtype(dtype).itemsize for dtype, _ in VARIABLES.values())
        compression = PARTIAL_COMPRESSION if size > PARTIAL_UNCOMPRESSED_MAX_GIB * 2**30 else {}
        for k, (dtype, fill) in VARIABLES.items():
            profile = {
                "driver": "GTiff", "height": h, "width": w, "count": 1, "dtype": dtype,
                "crs": self.template.rio.crs, "transform": self.template.rio.transform(),
                "nodata": fill, "tiled": True, "blockxsize": 256, "blockysize": 256,
                "BIGTIFF": "IF_SAFER",
            }  # fmt: skip
            with rasterio.open(self.partials[k], "w", **profile, **compression):
                pass

    def _write(self, rect: tuple[int, int, int, int], values: Mapping[str, np.ndarray]) -> None:
        y0, y1, x0, x1 = rect
        window = rasterio.windows.Window(x0, y0, x1 - x0, y1 - y0)
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
            for k, v in values.items():
                with rasterio.open(self.partials[k], "r+") as dst:
                    dst.write(np.asarray(v)[None], window=window)

    def finalize(self) -> xr.Dataset:
        for k in VARIABLES:

            def to_cog(tmp: Path, k: str = k) -> None:
                rasterio.shutil.copy(self.partials[k], tmp, driver="COG", COMPRESS="DEFLATE",
                                     LEVEL=1, PREDICTOR="YES", BLOCKSIZE=self.block_size,
                                     RESAMPLING=OVERVIEW_RESAMPLING[k],
                                     NUM_THREADS=str(torch.get_num_threads()))  # fmt: skip

            with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
                atomic_write(self.targets[k], to_cog, suffix=".tif")
        for p in self.partials.values():
            p.unlink()
        self.progress.unlink()
        arrays = {k: _open_band(self.targets[k]).data for k in VARIABLES}
        return self._dataset(arrays)


class ZarrSink(_FileSink):
    """One Zarr store with the three variables and the grid's CRS."""

    def __init__(
        self,
        path: str | os.PathLike,
        template: xr.Dataset,
        fingerprint: Mapping[str, Any],
        *,
        overwrite: bool,
        resume: bool,
        block_size: int = 2048,
    ) -> None:
        self.target = Path(path)
        self.partial = self.target.parent / f".{self.target.name}.partial"
        self.chunk = block_size
        super().__init__(
            template, fingerprint, self.target.parent / f"{self.target.name}.progress.json",
            [self.target], overwrite=overwrite, resume=resume,
        )  # fmt: skip
        backup = self.target.parent / f".{self.target.name}.old"
        if backup.is_dir() and self.target.exists():  # a kill between the two renames
            shutil.rmtree(backup)

    def _partial_exists(self) -> bool:
        return self.partial.exists()

    def _create(self) -> None:
        if self.partial.exists():
            shutil.rmtree(self.partial)
        chunks = (min(self.chunk, self.shape[0]), min(self.chunk, self.shape[1]))
        lazy = {
            k: da.full(self.shape, fill, dtype=dtype, chunks=chunks)
            for k, (dtype, fill) in VARIABLES.items()
        }
        ds = self._dataset(lazy).drop_vars("valid")
        ds.to_zarr(self.partial, compute=False, mode="w", consolidated=False)

    def _write(self, rect: tuple[int, int, int, int], values: Mapping[str, np.ndarray]) -> None:
        y0, y1, x0, x1 = rect
        block = xr.Dataset({k: (("y", "x"), np.asarray(v)) for k, v in values.items()})
        block.to_zarr(
            self.partial, region={"y": slice(y0, y1), "x": slice(x0, x1)}, consolidated=False
        )

    def finalize(self) -> xr.Dataset:
        if self.target.exists():
            backup = self.target.parent / f".{self.target.name}.old"
            os.replace(self.target, backup)
            os.replace(self.partial, self.target)
            shutil.rmtree(backup)
        else:
            os.replace(self.partial, self.target)
        self.progress.unlink()
        ds = xr.open_zarr(self.target, decode_coords="all", consolidated=False)
        out = self._dataset({k: ds[k].data for k in VARIABLES})
        return out


def make_sink(
    output: str | os.PathLike | None,
    template: xr.Dataset,
    fingerprint: Mapping[str, Any],
    *,
    overwrite: bool = False,
    resume: bool = True,
    block_size: int = 2048,
) -> MemorySink | GeoTiffSink | ZarrSink:
    """The sink for ``output``: None (memory), ``*.zarr`` (Zarr) or a GeoTIFF path/stem."""
    if output is None:
        return MemorySink(template, fingerprint)
    if str(output).rstrip("/").lower().endswith(".zarr"):
        return ZarrSink(output, template, fingerprint, overwrite=overwrite, resume=resume,
                        block_size=block_size)  # fmt: skip
    return GeoTiffSink(output, template, fingerprint, overwrite=overwrite, resume=resume)


def open_prediction(path: str | os.PathLike) -> xr.Dataset:
    """Reopen a prediction that :func:`glaviz.predict` wrote with ``output=path``.

    Parameters
    ----------
    path : str or os.PathLike
        The ``output`` given to :func:`glaviz.predict`: a ``*.zarr`` store, or a GeoTIFF stem
        (``out/everest.tif`` or ``out/everest``) or one of its files
        (``out/everest_glacier_mask.tif``).

    Returns
    -------
    xarray.Dataset
        ``glacier_mask`` (uint8, 255 on nodata) and, when written, ``glacier_probability`` and
        ``confidence`` (lazy, dask), plus ``valid`` (mask != 255), with the CRS and transform
        of the files: what :func:`glaviz.predict` returned.

    Raises
    ------
    FileNotFoundError
        No prediction at ``path`` (the message names the files looked for).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from glaviz.data import synthetic_scene
    >>> from glaviz.inference import predict
    >>> from glaviz.models import GlaViTU
    >>> scene = synthetic_scene(height=40, width=48, seed=0, groups=["optical", "dem"])
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "p.tif"
    >>> pred = predict(GlaViTU.small(tile_size=32), scene, output=out, progress=False)
    >>> again = open_prediction(out.parent / "p_glacier_mask.tif")
    >>> bool((again["glacier_mask"] == pred["glacier_mask"]).all()), again.rio.crs == scene.rio.crs
    (True, True)
    """
    path = Path(path)
    if str(path).rstrip("/").lower().endswith(".zarr"):
        if not path.is_dir():
            raise FileNotFoundError(f"prediction store {str(path)!r} does not exist")
        store = xr.open_zarr(path, decode_coords="all", consolidated=False)
        if "glacier_mask" not in store:
            raise FileNotFoundError(
                f"{str(path)!r} holds no 'glacier_mask' (variables: {list(store.data_vars)}); "
                "is it a store written by glaviz.predict?"
            )
        arrays = {k: store[k].data for k in VARIABLES if k in store}
        template = store[["glacier_mask"]].drop_vars("glacier_mask")
    else:
        stem = path.with_suffix("") if path.suffix.lower() in (".tif", ".tiff") else path
        for name in VARIABLES:  # one of the files: strip its variable suffix
            if stem.name.endswith(f"_{name}"):
                stem = stem.with_name(stem.name[: -len(name) - 1])
        files = {k: stem.parent / f"{stem.name}_{k}.tif" for k in VARIABLES}
        if not files["glacier_mask"].is_file():
            raise FileNotFoundError(
                f"no prediction at {str(path)!r}: {str(files['glacier_mask'])!r} does not exist; "
                "give the output path given to glaviz.predict (a GeoTIFF stem or a .zarr store)"
            )
        opened = {k: _open_band(f) for k, f in files.items() if f.is_file()}
        arrays = {k: a.data for k, a in opened.items()}
        template = opened["glacier_mask"].to_dataset(name="m").drop_vars("m")
    return _Base(template, {})._dataset(arrays)
