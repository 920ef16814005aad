"""Baselines a model must beat: "all glacier" and the best single-band or band-ratio threshold.

:func:`fit_threshold` chooses, on training pixels only, the optical band or normalised band
difference ``(a - b) / (a + b)`` (equivalent to a band ratio) and the threshold and direction
with the highest IoU; :meth:`Threshold.apply` maps another scene with it. The classic glacier
indices (NDSI from green and SWIR, red/SWIR, NIR/SWIR ratios) are among the candidates when the
bands exist.

Examples
--------
>>> from glaviz.data import scale, synthetic_scene
>>> ds = scale(synthetic_scene(height=64, width=64, seed=0, groups=["optical"]))
>>> rule = fit_threshold(ds, ds["reference_mask"])
>>> rule.feature in features(ds)
True
>>> pred = rule.apply(ds)
>>> pred.shape, pred.dtype
((64, 64), dtype('bool'))
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import xarray as xr

from glaviz.data.scene import group_array

__all__ = ["Threshold", "features", "fit_threshold"]


def features(scene: xr.Dataset) -> dict[str, np.ndarray]:
    """Each optical band and each normalised difference of two bands, as float arrays.

    Examples
    --------
    >>> from glaviz.data import synthetic_scene
    >>> ds = synthetic_scene(height=8, width=8, seed=0, groups=["optical"])
    >>> sorted(features(ds))[:3]
    ['blue', 'blue-green', 'blue-nir']
    """
    optical = group_array(scene, "optical")
    names = [str(b) for b in optical["band"].values]
    bands = {b: np.asarray(optical.sel(band=b).values, np.float64) for b in names}
    out = dict(bands)
    for a, b in combinations(bands, 2):
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"{a}-{b}"] = (bands[a] - bands[b]) / (bands[a] + bands[b])
    return out


@dataclass(frozen=True)
class Threshold:
    """A rule ``feature > value`` (or ``<``) meaning glacier, and its training IoU."""

    feature: str
    value: float
    greater: bool
    train_iou: float

    def apply(self, scene: xr.Dataset) -> np.ndarray:
        """Boolean glacier mask of ``scene`` by this rule (False where the feature is NaN)."""
        f = features(scene)[self.feature]
        with np.errstate(invalid="ignore"):
            hit = f > self.value if self.greater else f < self.value
        return np.where(np.isfinite(f), hit, False)


def fit_threshold(
    scenes: xr.Dataset | list[xr.Dataset],
    masks: Any,
    *,
    bins: int = 512,
) -> Threshold:
    """The single-feature threshold with the best pooled IoU on the given (training) pixels.

    Parameters
    ----------
    scenes : xarray.Dataset or list of them
        Scenes with an ``optical`` group (scaled or not) and ``valid``.
    masks : array-like or list of them
        Reference masks (0/1; other values are unlabelled and skipped).
    bins : int, default 512
        Candidate thresholds per feature: quantiles of its training values.

    Returns
    -------
    Threshold
    """
    scenes = scenes if isinstance(scenes, list) else [scenes]
    masks = masks if isinstance(masks, list) else [masks]
    values: dict[str, list[np.ndarray]] = {}
    labels = []
    for scene, mask in zip(scenes, masks, strict=True):
        ref = np.asarray(mask)
        keep = np.isin(ref, (0, 1)) & np.asarray(scene["valid"].values, bool)
        labels.append(ref[keep].astype(bool))
        for name, f in features(scene).items():
            values.setdefault(name, []).append(f[keep])
    y = np.concatenate(labels)
    if y.size == 0:
        raise ValueError("no valid, labelled training pixel to choose a threshold on")
    best = Threshold("", np.nan, True, -1.0)
    positives = y.sum()
    for name, parts in values.items():
        f = np.concatenate(parts)
        ok = np.isfinite(f)
        f, t = f[ok], y[ok]
        order = np.argsort(f, kind="stable")
        f, t = f[order], t[order]
        cum = np.concatenate([[0], np.cumsum(t)])  # glacier pixels among the first k
        candidates = np.unique(np.quantile(f, np.linspace(0, 1, bins)))
        k = np.searchsorted(f, candidates, side="right")  # pixels <= threshold
        n = len(f)
        # rule "f > thr": predicted = pixels after k
        tp_gt = cum[-1] - cum[k]
        fp_gt = (n - k) - tp_gt
        # rule "f < thr": predicted = pixels before the first one equal to thr
        k_lt = np.searchsorted(f, candidates, side="left")
        tp_lt = cum[k_lt]
        fp_lt = k_lt - tp_lt
        for tp, fp, greater in ((tp_gt, fp_gt, True), (tp_lt, fp_lt, False)):
            fn = positives - tp
            iou = tp / np.maximum(tp + fp + fn, 1)
            i = int(np.argmax(iou))
            if iou[i] > best.train_iou:
                best = Threshold(name, float(candidates[i]), greater, float(iou[i]))
    return best
