"""``predict_many``: map many scenes in parallel on a dask.distributed cluster."""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import pandas as pd
from tqdm.auto import tqdm

if TYPE_CHECKING:  # for annotations only: torch, xarray and distributed load where used
    import xarray as xr
    from distributed import Client
    from torch import nn

__all__ = ["predict_many"]

#: A scene of :func:`predict_many`: :func:`glaviz.open_scene` keyword arguments, a callable
#: returning a scene, or a scene.
SceneSpec: TypeAlias = "Mapping[str, Any] | Callable[[], xr.Dataset] | xr.Dataset"

#: Per worker process: (checkpoint, device) -> model.
_MODELS: dict[tuple[str, str], nn.Module] = {}


def _worker_device() -> str:
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    try:
        from distributed import get_worker

        name = get_worker().name
        index = int(name) if str(name).isdigit() else abs(hash(name))
    except (ImportError, ValueError):
        index = 0
    return f"cuda:{index % torch.cuda.device_count()}"


def _model(checkpoint: str, device: str) -> nn.Module:
    """The model of ``checkpoint``, loaded once per worker process and device."""
    key = (checkpoint, device)
    if key not in _MODELS:
        from glaviz.models.checkpoint import load_checkpoint

        _MODELS[key] = load_checkpoint(checkpoint, device=device)
    return _MODELS[key]


def _open(spec: SceneSpec) -> xr.Dataset:
    import xarray as xr

    from glaviz.data.scene import open_scene

    if isinstance(spec, xr.Dataset):
        return spec
    if callable(spec):
        return spec()
    # a Dataset was returned above; repeated because mypy's callable() narrowing loses that
    if isinstance(spec, Mapping) and not isinstance(spec, xr.Dataset):
        return open_scene(**spec)
    raise TypeError(
        f"a scene must be open_scene keyword arguments (a dict), a callable returning a "
        f"Dataset, or a Dataset; got {type(spec).__name__}"
    )


def _run_scene(
    name: str, spec: SceneSpec, checkpoint: str, output: str, predict_kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Predict one scene on a worker; failures are returned, not raised."""
    from glaviz.inference.predict_scene import predict

    started = time.perf_counter()
    device = predict_kwargs.pop("device", None) or _worker_device()
    try:
        scene = _open(spec)
        result = predict(_model(checkpoint, device), scene, output=output, device=device,
                         progress=False, **predict_kwargs)  # fmt: skip
        mask = result["glacier_mask"]
        valid = int((mask != 255).sum())
        glacier = int((mask == 1).sum())
        return {
            "scene": name, "status": "ok", "output": output, "device": device,
            "pixels": int(mask.size), "valid_pixels": valid,
            "glacier_fraction": glacier / valid if valid else float("nan"),
            "seconds": round(time.perf_counter() - started, 3), "error": "",
        }  # fmt: skip
    except Exception as err:  # one failing scene must not stop the others
        return {
            "scene": name, "status": "failed", "output": output, "device": device,
            "pixels": 0, "valid_pixels": 0, "glacier_fraction": float("nan"),
            "seconds": round(time.perf_counter() - started, 3),
            "error": f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=3)}",
        }  # fmt: skip


def predict_many(
    scenes: Mapping[str, SceneSpec] | Sequence[SceneSpec],
    model: str | os.PathLike | nn.Module,
    client: Client | str | None = None,
    *,
    output_dir: str | os.PathLike,
    output_format: str = "tif",
    n_workers: int = 2,
    threads_per_worker: int = 1,
    progress: bool = True,
    **predict_kwargs: Any,
) -> pd.DataFrame:
    """Predict many scenes in parallel, one task per scene, each writing its own outputs.

    Parameters
    ----------
    scenes : mapping or sequence
        Scenes by name (or in a list: ``scene_0``, ...). Each is a dict of
        :func:`glaviz.open_scene` keyword arguments (files are opened on the worker), a callable
        returning a scene, or a Dataset.
    model : path or torch.nn.Module
        A checkpoint path (each worker loads it once) or a model, saved once to
        ``output_dir/model.safetensors`` and loaded from there by the workers.
    client : dask.distributed.Client or str, optional
        A client, or a scheduler address; default a ``LocalCluster`` of ``n_workers`` processes
        with ``threads_per_worker`` threads each, closed at the end. With GPUs, each worker
        uses one (``cuda:<worker index % device count>``).
    output_dir : path
        ``<output_dir>/<scene>_glacier_mask.tif`` ... (or ``<scene>.zarr`` with
        ``output_format="zarr"``).
    **predict_kwargs
        Passed to :func:`glaviz.predict` (``tta``, ``batch_size``, ``overwrite``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per scene: status ("ok"/"failed"), output, device, pixel counts, glacier
        fraction, seconds and the error of a failed scene.
    """
    from distributed import Client, LocalCluster, as_completed

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    items = dict(scenes) if isinstance(scenes, Mapping) else {
        f"scene_{i}": s for i, s in enumerate(scenes)
    }  # fmt: skip
    if isinstance(model, (str, os.PathLike)):
        checkpoint = str(Path(model).resolve())
    else:
        from glaviz.models.checkpoint import save_checkpoint

        checkpoint = str(save_checkpoint(model, out / "model.safetensors", overwrite=True))
    if output_format not in ("tif", "zarr"):
        raise ValueError(f"output_format must be 'tif' or 'zarr', got {output_format!r}")
    own = None
    if client is None:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                               processes=True, dashboard_address=None)  # fmt: skip
        own = client = Client(cluster)
    elif isinstance(client, str):
        own = client = Client(client)
    try:
        futures = []
        for name, spec in items.items():
            target = out / (f"{name}.zarr" if output_format == "zarr" else name)
            futures.append(client.submit(_run_scene, name, spec, checkpoint, str(target),
                                         dict(predict_kwargs), pure=False))  # fmt: skip
        rows = []
        bar = tqdm(total=len(futures), disable=not progress, desc="predict_many", unit="scene")
        for future in as_completed(futures):
            rows.append(future.result())
            bar.update(1)
        bar.close()
    finally:
        if own is not None:
            own_cluster = own.cluster
            own.close()
            if own_cluster is not None:
                own_cluster.close()
    return pd.DataFrame(rows).sort_values("scene").reset_index(drop=True)
