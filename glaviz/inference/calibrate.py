"""``glaviz.calibrate``: fit the confidence-to-accuracy map on validation scenes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import xarray as xr
from torch import nn

from glaviz.calibration import CalibrationMap, fit_calibration
from glaviz.data.outlines import rasterize_outlines
from glaviz.inference.predict_scene import predict

__all__ = ["calibrate"]

Validation = xr.Dataset | tuple[xr.Dataset, xr.DataArray | gpd.GeoDataFrame | np.ndarray]


def _pairs(validation: Validation | Sequence[Validation]) -> list[tuple[xr.Dataset, Any]]:
    items = [validation] if isinstance(validation, (xr.Dataset, tuple)) else list(validation)
    pairs = []
    for i, item in enumerate(items):
        if isinstance(item, xr.Dataset):
            if "reference_mask" not in item:
                raise ValueError(
                    f"validation scene {i} has no 'reference_mask'; pass (scene, reference) "
                    "pairs with a mask or outlines"
                )
            pairs.append((item, item["reference_mask"]))
        else:
            scene, reference = item
            if isinstance(reference, gpd.GeoDataFrame | gpd.GeoSeries):
                reference = rasterize_outlines(reference, like=scene)
            pairs.append((scene, reference))
    if not pairs:
        raise ValueError("calibrate needs at least one validation scene")
    return pairs


def calibrate(
    model: nn.Module,
    validation: Validation | Sequence[Validation],
    *,
    checkpoint: str | os.PathLike | None = None,
    bins: int = 100,
    **predict_kwargs: Any,
) -> CalibrationMap:
    """Fit the monotone map from confidence to observed accuracy and attach it to the model.

    Runs :func:`glaviz.predict` without calibration on the validation scenes, bins the raw
    confidence (1 - binary entropy) of every valid, labelled pixel into ``bins`` bins against
    whether the predicted class is right, fits the smooth monotone map
    (:func:`glaviz.calibration.fit_calibration`, anchors (0, 0) and (1, 1)) and stores it in
    ``model.checkpoint_metadata["calibration"]`` (and in ``checkpoint`` when given), so that
    later :func:`glaviz.predict` calls report calibrated confidence.

    Parameters
    ----------
    model : torch.nn.Module
    validation : Dataset, (Dataset, reference) pair, or a sequence of them
        Scenes with ``reference_mask``, or pairs of a scene and its reference (mask DataArray,
        array, or outlines GeoDataFrame). Reference values other than 0/1 are unlabelled.
    checkpoint : path, optional
        A checkpoint file of this model to update in place (atomically).
    bins : int, default 100
    **predict_kwargs
        Passed to :func:`glaviz.predict` (``tta``, ``batch_size``, ...).

    Returns
    -------
    CalibrationMap
        ``info["ece_before"]`` and ``info["ece_after"]`` report the expected calibration error.

    Examples
    --------
    >>> from glaviz.data import synthetic_scene
    >>> from glaviz.models import GlaViTU
    >>> model = GlaViTU.small(tile_size=32)
    >>> cal = calibrate(model, synthetic_scene(48, 48, seed=1, groups=["optical", "dem"]),
    ...                 progress=False)
    >>> model.checkpoint_metadata["calibration"]["accuracy"][-1]
    1.0
    """
    meta = getattr(model, "checkpoint_metadata", None)
    saved = meta.get("calibration") if meta else None
    if meta:
        meta["calibration"] = None  # raw confidence while fitting
    confidence, correct = [], []
    try:
        for scene, reference in _pairs(validation):
            pred = predict(model, scene, **predict_kwargs)
            ref = np.asarray(reference)
            mask = pred["glacier_mask"].values
            keep = (mask != 255) & np.isin(ref, (0, 1))
            confidence.append(pred["confidence"].values[keep])
            correct.append(mask[keep] == ref[keep])
    except BaseException:
        if meta:
            meta["calibration"] = saved
        raise
    cal = fit_calibration(np.concatenate(confidence), np.concatenate(correct), bins=bins)
    if meta is None:
        meta = {}
        # torch annotates Module.__setattr__ for tensors and modules only; any value is set
        model.checkpoint_metadata = meta  # type: ignore[assignment]
    meta["calibration"] = cal.to_dict()
    if checkpoint is not None:
        from glaviz.models.checkpoint import update_checkpoint_metadata

        update_checkpoint_metadata(checkpoint, calibration=cal.to_dict())
    return cal
