"""``glaviz.predict``: map a whole scene of any size, block by block, with bounded memory."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr
from pyproj import Transformer
from rasterio.errors import RasterioIOError
from scipy import ndimage
from torch import nn
from tqdm.auto import tqdm

from glaviz.calibration import CalibrationMap, binary_confidence
from glaviz.catalog import load_catalog
from glaviz.data.identity import scene_identity
from glaviz.data.location import coordinate_features, region_one_hot
from glaviz.data.scaling import scale
from glaviz.data.scene import band_dim
from glaviz.errors import CorruptFileError, MissingCRSError
from glaviz.inference.reading import SceneReader
from glaviz.inference.sinks import make_sink
from glaviz.inference.stats import PredictStats
from glaviz.inference.windows import WindowRunner, blend_rows, window_starts
from glaviz.models.runtime import (
    cpu_allocator_cache,
    describe_precision,
    release_cached_memory,
    resolve_device,
    resolve_precision,
)

__all__ = ["binary_confidence", "predict"]


#: Rows per pass when an output strip's mask, confidence and nodata are filled in.
_FINISH_ROWS = 256


def _calibration(model: nn.Module) -> Callable[[np.ndarray], np.ndarray] | None:
    meta = getattr(model, "checkpoint_metadata", None) or {}
    calib = meta.get("calibration")
    if not calib:
        return None
    cal = CalibrationMap.from_dict(calib)
    return lambda c: np.asarray(cal(c), np.float32)


def _groups(model: nn.Module, scene: xr.Dataset) -> list[str]:
    from glaviz.models.checkpoint import check_compatible

    return check_compatible(model, scene)


def _location_fn(
    model: nn.Module, scene: xr.Dataset, location: Any, window: int
) -> Callable[[list[tuple[int, int]]], np.ndarray] | None:
    encoding = (getattr(model, "config", {}) or {}).get("location_encoding", "none") or "none"
    if encoding == "none":
        if location is not None:
            raise ValueError("location= was given but the model takes no location input")
        return None
    if encoding == "region":
        if location is None or isinstance(location, str):
            vec = region_one_hot(location)
        else:
            vec = np.asarray(getattr(location, "location", location), np.float32)
        return lambda corners: np.repeat(vec[None], len(corners), 0)
    if scene.rio.crs is None:
        raise MissingCRSError.of("the scene", why="coordinate encoding needs latitudes")
    to_ll = Transformer.from_crs(scene.rio.crs, "EPSG:4326", always_xy=True)
    t = scene.rio.transform()

    def coords(corners: list[tuple[int, int]]) -> np.ndarray:
        cy = np.array([y for y, _ in corners]) + window / 2
        cx = np.array([x for _, x in corners]) + window / 2
        return coordinate_features(*to_ll.transform(t.c + t.a * cx, t.f + t.e * cy))

    return coords


def _digest(obj: Any) -> str | None:
    if obj is None:
        return None
    if isinstance(obj, str):
        return obj
    obj = getattr(obj, "location", obj)  # a RegionAdaptation
    if isinstance(obj, (np.ndarray, list, tuple)):
        obj = np.asarray(obj, np.float64).tolist()
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _fingerprint(
    model: nn.Module,
    scene: xr.Dataset,
    groups: Sequence[str],
    *,
    scaling: Any,
    location: Any,
    precision: str,
    device: torch.device,
    **settings: Any,
) -> dict[str, Any]:
    """What makes a run this run: resuming is allowed only when all of it is equal.

    The model's full state (:func:`~glaviz.models.checkpoint.model_sha256`: parameters and
    buffers), its calibration map, the scaling table, the location input, precision, device
    type, the settings, the grid and the scene's data (:func:`~glaviz.data.identity.
    scene_identity` of the model's groups and ``valid``: source files by content, in-memory
    arrays by their bytes).
    """
    from glaviz.models.checkpoint import model_sha256

    meta = getattr(model, "checkpoint_metadata", None) or {}
    return {
        "format": 2,
        "grid": {"shape": [int(scene.sizes["y"]), int(scene.sizes["x"])],
                 "transform": list(scene.rio.transform())[:6], "crs": str(scene.rio.crs)},
        "model": model_sha256(model),
        "calibration": _digest(meta.get("calibration")),
        "scaling": _digest(scaling),
        "location": _digest(location),
        "precision": precision,
        "device": device.type,
        "settings": settings,
        "data": scene_identity(scene, [*groups, *(["valid"] if "valid" in scene else [])]),
    }  # fmt: skip


def predict(
    model: nn.Module,
    scene: xr.Dataset,
    *,
    window: int | None = None,
    stride: int | None = None,
    batch_size: int | None = None,
    tta: bool = False,
    median_filter: bool = False,
    location: str | Sequence[float] | np.ndarray | None = None,
    output: str | os.PathLike | None = None,
    overwrite: bool = False,
    resume: bool = True,
    block_size: int = 2048,
    device: str | torch.device | None = None,
    precision: Literal["32", "bf16", "16"] | None = None,
    progress: bool = True,
    stats: PredictStats | None = None,
) -> xr.Dataset:
    """Map glaciers over a whole scene with Gaussian-blended sliding windows.

    Parameters
    ----------
    model : torch.nn.Module
        GlaViTU or a baseline (e.g. from :func:`glaviz.models.load_checkpoint`).
    scene : xarray.Dataset
        A scene from :func:`glaviz.open_scene` (lazy is fine), scaled or not: an unscaled scene
        is scaled with the checkpoint's table (else the catalog's).
    window, stride : int
        Window side (default the model's ``tile_size``, 384 for GlaViTU) and step (default half).
    batch_size : int, optional
        Windows per forward pass; default 8 on CUDA and 2 on the CPU, where bigger batches only
        add memory traffic (reference GlaViTU, 2 cores: 0.61 s per window at 2, 0.71 s at 8).
    tta : bool
        8-fold dihedral test-time augmentation.
    median_filter : bool
        Median filter (size 3) on the label map.
    location : str, array or RegionAdaptation, optional
        Region-encoded models: a region code (default "unknown") or a location vector (e.g.
        :func:`glaviz.train.adapt_region`'s result). Coordinate-encoded models compute sin/cos
        of each window centre's latitude/longitude themselves.
    output : path, optional
        ``*.zarr`` for one Zarr store, otherwise a GeoTIFF stem: ``<stem>_glacier_mask.tif``
        etc. as Cloud-Optimised GeoTIFFs. Blocks are written as they finish (memory bounded by
        the block, not the scene); a killed run resumes without recomputing finished blocks.
        ``None`` keeps the result in memory.
    overwrite, resume : bool
        Replace existing outputs; continue a run that was killed. A killed run is resumed only
        if it is the same run: same model state (parameters and BatchNorm buffers,
        :func:`~glaviz.models.checkpoint.model_sha256`), calibration map, scaling table,
        location input, precision, device type, settings, grid and scene data (source files
        by path, size, mtime and content hash; in-memory arrays by their bytes). Another run
        recorded for the same output is refused (:class:`~glaviz.errors.ResumeMismatchError`,
        naming the output and what differs) unless ``overwrite=True``, which starts afresh;
        ``resume=False`` always starts afresh.
    block_size : int
        Rows per output strip: written (and recorded for resuming) one strip at a time.
    device, precision
        Default CUDA if available (bf16 autocast, channels_last, pinned transfers), else CPU
        float32; ``precision="bf16"`` also helps CPUs with AMX/AVX512-BF16 (on CPUs without,
        where it would run >5x slower, float32 runs instead with a
        :class:`~glaviz.errors.PerformanceWarning`; ``attrs["compute"]`` says what ran).
    progress : bool
        A progress bar over the scene's rows.
    stats : PredictStats, optional
        Filled in (after being reset) with the seconds spent in each part of the run: the
        model's forward passes against reading, batching, blending, confidence, writing...
        (:class:`~glaviz.inference.PredictStats`; ``stats.overhead`` is the time outside the
        model over the time in it). Measuring changes no result.

    Returns
    -------
    xarray.Dataset
        ``glacier_probability`` (float32), ``glacier_mask`` (uint8, 255 on nodata),
        ``confidence`` (float32, calibrated when the checkpoint holds a calibration map) and
        ``valid`` on the scene's grid, CRS and transform kept. ``attrs`` record the settings,
        ``precision`` (the one that ran) and ``compute`` (device, dtype, CPU ISA).

    Raises
    ------
    ResumeMismatchError
        ``output`` holds an unfinished run of another model, scene or settings (a
        ``ValueError``).
    FileExistsError
        Finished outputs exist and ``overwrite`` is False.
    OutputNotWritableError
        The output folder cannot be written (a ``PermissionError``).
    CorruptFileError
        A source file of the (lazy) scene fails to read (an ``OSError``).

    Notes
    -----
    The fingerprint of a file output costs one hash of the model state and, per source file,
    one streaming sha256 the first time (then cached by path, size, mtime and inode, also on
    disk); in-memory scenes are hashed from their arrays.

    Examples
    --------
    >>> from glaviz.data import synthetic_scene
    >>> from glaviz.models import GlaViTU
    >>> scene = synthetic_scene(height=50, width=70, seed=0, groups=["optical", "dem"])
    >>> model = GlaViTU.small(tile_size=32)
    >>> pred = predict(model, scene, progress=False)
    >>> pred["glacier_mask"].shape, pred.rio.crs == scene.rio.crs
    ((50, 70), True)
    """
    started = time.perf_counter()
    if stats is None:
        stats = PredictStats()
        sync = False  # synchronising CUDA for the model's share only when asked for figures
    else:
        stats.reset()
        sync = True
    given = scene
    groups = _groups(model, scene)
    scaling: str | Mapping[str, Mapping[str, list[Any]]] = "scaled by the caller"
    if not scene.attrs.get("scaled"):
        meta = getattr(model, "checkpoint_metadata", None) or {}
        scaling = meta.get("scaling") or load_catalog().scaling_table()
        scene = scale(scene, table=scaling)
    config = getattr(model, "config", {}) or {}
    window = window or int(config.get("tile_size", 384))
    stride = stride or max(1, window // 2)
    device = resolve_device(device)
    compute_precision = resolve_precision(device, precision)
    fingerprint = None
    if output is not None:  # only a file output can be resumed
        fingerprint = _fingerprint(
            model, given, groups, scaling=scaling, location=location,
            precision=compute_precision, device=device, window=window, stride=stride, tta=tta,
            median=median_filter, block=block_size,
        )  # fmt: skip
    # predict leaves the model as it found it: mode, device and memory format
    was_training = model.training
    first = next(model.parameters(), None)
    was_device = first.device if first is not None else device
    kernels = [p for p in model.parameters() if p.dim() == 4]
    was_channels_last = any(  # 1x1 kernels are both; a 3x3 one tells
        p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
        for p in kernels
    )
    batch_size = batch_size or (8 if device.type == "cuda" else 2)
    model.eval().to(device)
    # faster on CPUs (oneDNN) and GPUs alike; torch's Module.to overloads omit memory_format=,
    # which Module.to accepts at runtime and documents (hence the ignores, here and below)
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    runner = WindowRunner(
        model, groups, device=device, precision=compute_precision, tta=tta,
        location=_location_fn(model, scene, location, window),
        stats=stats if sync or device.type != "cuda" else None,
    )  # fmt: skip
    calibrate = _calibration(model)
    height, width = scene.sizes["y"], scene.sizes["x"]
    template = scene[["valid"]].drop_vars("valid")
    sink = make_sink(
        output, template, fingerprint or {},
        overwrite=overwrite, resume=resume, block_size=block_size,
    )  # fmt: skip
    reader = SceneReader({g: scene[g].transpose(band_dim(g), "y", "x") for g in groups})

    def read(y0: int, y1: int, x0: int, x1: int) -> dict[str, np.ndarray]:
        try:
            return reader(y0, y1, x0, x1)
        except RasterioIOError as exc:
            raise _read_failed(scene, y0, y1, x0, x1, exc) from exc

    halo = 1 if median_filter else 0
    strips = [(r, min(r + block_size, height)) for r in range(0, height, block_size)]
    todo = [(r0, r1) for r0, r1 in strips if str(r0) not in sink.done]
    n_windows = len(window_starts(height, window, stride)) * len(
        window_starts(width, window, stride)
    )
    bar = tqdm(total=height, initial=height - sum(r1 - r0 for r0, r1 in todo), unit="row",
               disable=not progress, desc=f"predict ({n_windows} windows)")  # fmt: skip

    def finish(r0: int, r1: int, prob: np.ndarray, p0: int) -> None:
        """Mask, confidence and nodata for rows r0..r1 (``prob`` starts at row ``p0``)."""
        t = time.perf_counter()
        mask = (prob > 0.5).astype(np.uint8)
        if median_filter:
            mask = ndimage.median_filter(mask, size=3, mode="nearest")
        rows = slice(r0 - p0, r1 - p0)
        prob, mask = prob[rows], mask[rows]
        valid = np.asarray(scene["valid"][r0:r1, :].values, bool)
        out: dict[str, np.ndarray] = {
            "glacier_probability": np.empty(prob.shape, np.float32),
            "glacier_mask": np.empty(prob.shape, np.uint8),
            "confidence": np.empty(prob.shape, np.float32),
        }
        for c in range(0, r1 - r0, _FINISH_ROWS):  # keeps the temporaries small on wide scenes
            part, ok = slice(c, c + _FINISH_ROWS), valid[c : c + _FINISH_ROWS]
            conf = np.asarray(binary_confidence(prob[part]), np.float32)
            if calibrate is not None:
                conf = calibrate(conf)
            out["glacier_probability"][part] = np.where(ok, prob[part], np.nan)
            out["glacier_mask"][part] = np.where(ok, mask[part], 255)
            out["confidence"][part] = np.where(ok, conf, np.nan)
        t = stats.add("finish", t)
        sink.write(str(r0), (r0, r1, 0, width), out)
        stats.add("write", t)
        release_cached_memory()  # resident memory bounded by the block, not by the run
        bar.update(r1 - r0)

    with cpu_allocator_cache(device.type == "cpu", heap_everywhere=False):
        try:
            if todo:
                start = max(todo[0][0] - halo, 0)
                # finished rows from p0 on, joined once per strip (not once per window row)
                pieces: list[np.ndarray] = []
                p0 = start
                queue = list(todo)
                stats.add("setup", started)
                for _, r1, prob in blend_rows(
                    runner, read, shape=(height, width), window=window, stride=stride,
                    batch_size=batch_size, start_row=start, stats=stats,
                ):  # fmt: skip
                    pieces.append(prob)
                    # a strip is done once the rows below it (median filter halo) are final too
                    while queue and r1 >= min(queue[0][1] + halo, height):
                        s0, s1 = queue.pop(0)
                        t = time.perf_counter()
                        pending = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
                        stats.add("finish", t)
                        lo, hi = max(s0 - halo, p0), min(s1 + halo, r1)
                        finish(s0, s1, pending[lo - p0 : hi - p0], lo)
                        keep = max(s1 - halo, p0)
                        pieces, p0 = [pending[keep - p0 :]], keep
                        del pending
            else:
                stats.add("setup", started)
        finally:
            bar.close()
            model.train(was_training)
            model.to(was_device)
            if not was_channels_last:
                model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    t = time.perf_counter()
    result = sink.finalize()
    stats.add("finalize", t)
    stats.pixels = int(height) * int(width)
    stats.total = time.perf_counter() - started
    result.attrs = {
        "window": window, "stride": stride, "tta": int(tta), "median_filter": int(median_filter),
        "calibrated": int(calibrate is not None), "precision": compute_precision,
        "compute": describe_precision(device, compute_precision),
        "model": str(getattr(model, "registry_name", type(model).__name__)),
    }  # fmt: skip
    return result


def _read_failed(
    scene: xr.Dataset, y0: int, y1: int, x0: int, x1: int, exc: Exception
) -> CorruptFileError:
    """A read error deep in a lazy scene, as an error naming the scene's files."""
    try:
        sources = [f for files in json.loads(scene.attrs.get("sources", "{}")).values()
                   for f in files]  # fmt: skip
    except (TypeError, ValueError):
        sources = []
    files = ", ".join(repr(f) for f in sources) or "the scene's source files"
    return CorruptFileError(
        f"reading rows {y0}-{y1}, columns {x0}-{x1} of the scene failed ({exc}): one of "
        f"{files} is truncated or corrupt. Check them with `gdalinfo -checksum <file>` and "
        "copy or download the bad one again"
    )
