"""Scenes and predictions for the map tests, built at run time."""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter
from scipy.ndimage import shift as nd_shift


def fake_prediction(
    scene: xr.Dataset, reference: xr.DataArray, *, shift: tuple[int, int] = (3, 5)
) -> xr.Dataset:
    """A prediction-shaped Dataset: the reference moved by ``shift`` pixels and blurred.

    It has true and false positives and negatives, probabilities strictly between 0 and 1 and
    nodata where the scene has none, like :func:`glaviz.predict`'s output.
    """
    ref = np.asarray(reference.values, np.float32)
    prob = gaussian_filter(nd_shift(ref, shift, order=0), 2.0).astype(np.float32)
    prob = np.clip(prob, 0.001, 0.999)
    valid = np.asarray(scene["valid"].values, bool)
    conf = 1 - 2 * np.minimum(prob, 1 - prob)
    ds = xr.Dataset(
        {
            "glacier_probability": (("y", "x"), np.where(valid, prob, np.nan).astype(np.float32)),
            "glacier_mask": (("y", "x"), np.where(valid, prob > 0.5, 255).astype(np.uint8)),
            "confidence": (("y", "x"), np.where(valid, conf, np.nan).astype(np.float32)),
            "valid": (("y", "x"), valid),
        },
        coords={"y": scene["y"].values, "x": scene["x"].values},
    )
    return ds.rio.write_crs(scene.rio.crs).rio.write_transform(scene.rio.transform())


def full_scene(height: int = 96, width: int = 112, seed: int = 0):
    """A synthetic scene with every input group, its reference mask and a prediction."""
    from glaviz.data import synthetic_scene

    scene = synthetic_scene(height=height, width=width, seed=seed)
    # a nodata hole, so that every layer meets nodata
    scene["valid"] = scene["valid"].copy(data=scene["valid"].values.copy())
    scene["valid"].values[:6, :10] = False
    reference = scene["reference_mask"]
    return scene, reference, fake_prediction(scene, reference)
