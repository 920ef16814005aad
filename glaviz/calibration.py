"""Confidence of glacier predictions and its calibration against observed accuracy.

The raw confidence of a pixel is ``1 - H(p)``, one minus the binary entropy (in bits) of the
glacier probability ``p`` (:func:`binary_confidence`): 0 at ``p = 0.5``, 1 at ``p`` = 0 or 1.
A model's raw confidence is rarely its accuracy, so a validation set is binned into 100 equal
bins of confidence (:func:`reliability_table`) and a smooth, monotone map from confidence to the
observed accuracy of each bin is fitted (:func:`fit_calibration`). The map is a
:class:`CalibrationMap`: knots on a fine grid, applied with ``np.interp`` to numpy, xarray or
dask data, stored in a checkpoint's metadata as JSON (:meth:`CalibrationMap.to_dict`).
:func:`expected_calibration_error` says how far confidence is from accuracy, before and after.

How the map is fitted (the reference used kernel ridge regression with a Laplacian kernel,
weighted by bin counts, anchored at (0, 0) and (1, 1); its hyper-parameters are not published):

1. The non-empty bins give points (mean confidence, accuracy) weighted by their pixel counts;
   the anchors (0, 0) and (1, 1) are added with the weight of the fullest bin (``anchors``
   sets the values at 0 and 1, or drops them).
2. Weighted kernel ridge regression with ``k(x, x') = exp(-gamma |x - x'|)`` of the gap
   ``y - x``: ``f(x) = x + g(x)`` minimising ``sum_i w_i (y_i - f(x_i))^2 + alpha ||g||^2``
   (closed form, ``numpy``/``scipy.linalg``). Regressing the gap rather than ``y`` itself (as a
   plain kernel ridge would) shrinks towards "no calibration" where data are scarce, not towards
   0. With counts as weights, ``alpha`` is measured in pixels: bins holding many more pixels
   than ``alpha`` are followed closely, nearly empty bins are smoothed over.
3. ``f`` is evaluated on ``grid_size`` evenly spaced knots in [0, 1], clipped to [0, 1], made
   non-decreasing by isotonic regression (``scipy.optimize.isotonic_regression``) and pinned
   to ``f(0) = 0``, ``f(1) = 1``: the stored map is monotone with exact anchors.

A note on the anchor (0, 0): for a two-class prediction, pixels of raw confidence near 0
(probability near 0.5) are right about half of the time, so a map through (0, 0) leaves those
few pixels under-confident (a small ECE floor; ``anchors=(0.5, 1.0)`` removes it). It is kept as
the default because the reference uses it.

This module is numpy-level (no torch): the prediction and evaluation code build on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import linalg
from scipy.optimize import isotonic_regression

__all__ = [
    "CalibrationMap",
    "bin_sums",
    "binary_confidence",
    "ece_from_table",
    "expected_calibration_error",
    "fit_calibration",
    "reliability_table",
    "table_from_sums",
]


def binary_confidence(p: Any) -> Any:
    """One minus the binary entropy, in bits, of the glacier probability.

    Parameters
    ----------
    p : array-like, xarray.DataArray or dask array
        Glacier probability in [0, 1] (values outside are clipped; NaN stays NaN).

    Returns
    -------
    Same type as ``p``
        ``1 + p log2 p + (1 - p) log2 (1 - p)``: 0 at ``p = 0.5``, 1 at ``p`` in {0, 1}.
        Floating inputs keep their dtype.

    Examples
    --------
    >>> binary_confidence(np.array([0.0, 0.5, 0.89, 1.0])).round(3).tolist()
    [1.0, 0.0, 0.5, 1.0]
    """
    if not (hasattr(p, "dtype") and np.issubdtype(p.dtype, np.floating)):
        p = np.asarray(p, dtype=np.float64) if not hasattr(p, "astype") else p.astype(np.float64)
    tiny = np.finfo(p.dtype).tiny
    p = p.clip(0, 1)  # the method keeps xarray and dask lazy (np.clip would not)
    q = 1 - p
    out = 1 + p * np.log2(np.maximum(p, tiny)) + q * np.log2(np.maximum(q, tiny))
    return out.clip(0, 1)  # rounding leaves -6e-8 at p = 0.5 in float32


def _flat(values: Any, dtype: Any) -> np.ndarray:
    if isinstance(values, (xr.DataArray, xr.Variable)):
        values = values.values
    return np.asarray(values, dtype=dtype).ravel()


def bin_sums(confidence: Any, correct: Any, bins: int, weights: Any = None) -> np.ndarray:
    """``(3, bins)`` sums per confidence bin: weight, weight x confidence, weight x correct.

    Additive over pieces of data (tiles), so evaluation can pool them: the sum of the pieces'
    sums, passed to :func:`table_from_sums`, equals :func:`reliability_table` of all the data.

    Parameters
    ----------
    confidence : array-like or xarray.DataArray
        Confidence in [0, 1]; NaN pixels are skipped.
    correct : array-like of bool
        Whether each pixel's predicted class is right.
    bins : int
        Number of equal-width bins on [0, 1].
    weights : array-like, optional
        Pixel weights; default 1.

    Returns
    -------
    numpy.ndarray
        ``(3, bins)`` float64: summed weight, weighted confidence and weighted correctness.

    Examples
    --------
    >>> bin_sums([0.05, 0.15, 0.18], [0, 1, 0], bins=2).tolist()
    [[3.0, 0.0], [0.38, 0.0], [1.0, 0.0]]
    """
    if int(bins) != bins or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    conf = _flat(confidence, np.float64)
    corr = _flat(correct, np.float64)
    if conf.shape != corr.shape:
        raise ValueError(
            f"confidence and correct must have one size, got {conf.size} and {corr.size}"
        )
    w = np.ones_like(conf) if weights is None else _flat(weights, np.float64)
    if w.shape != conf.shape:
        raise ValueError(f"weights must have the size of confidence ({conf.size}), got {w.size}")
    keep = np.isfinite(conf) & np.isfinite(corr) & (w > 0)
    if not keep.all():
        conf, corr, w = conf[keep], corr[keep], w[keep]
    if conf.size and (conf.min() < -1e-6 or conf.max() > 1 + 1e-6):
        raise ValueError(
            f"confidence must lie in [0, 1], got values in [{conf.min():.4g}, {conf.max():.4g}]; "
            "raw probabilities need binary_confidence() first"
        )
    idx = np.clip((conf * bins).astype(np.int64), 0, bins - 1)
    return np.stack(
        [
            np.bincount(idx, w, bins),
            np.bincount(idx, w * conf, bins),
            np.bincount(idx, w * corr, bins),
        ]
    )


def table_from_sums(sums: np.ndarray) -> pd.DataFrame:
    """The :func:`reliability_table` of summed :func:`bin_sums`.

    Parameters
    ----------
    sums : numpy.ndarray
        ``(3, bins)`` sums as :func:`bin_sums` returns them (or their sum over pieces of data).

    Returns
    -------
    pandas.DataFrame
        One row per bin, the columns of :func:`reliability_table`.

    Examples
    --------
    >>> a = bin_sums([0.05, 0.15], [0, 1], bins=10)
    >>> b = bin_sums([0.18, 0.95], [0, 1], bins=10)
    >>> whole = reliability_table([0.05, 0.15, 0.18, 0.95], [0, 1, 0, 1], bins=10)
    >>> table_from_sums(a + b).equals(whole)
    True
    """
    bins = sums.shape[1]
    count, conf_sum, corr_sum = sums
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(count > 0, conf_sum / count, np.nan)
        acc = np.where(count > 0, corr_sum / count, np.nan)
    edges = np.linspace(0.0, 1.0, bins + 1)
    return pd.DataFrame(
        {
            "lower": edges[:-1],
            "upper": edges[1:],
            "count": count,
            "confidence": mean_conf,
            "accuracy": acc,
            "gap": acc - mean_conf,
        },
        index=pd.RangeIndex(bins, name="bin"),
    )


def reliability_table(
    confidence: Any, correct: Any, *, bins: int = 100, weights: Any = None
) -> pd.DataFrame:
    """Bin pixels by confidence; mean confidence and observed accuracy per bin.

    Parameters
    ----------
    confidence : array-like or xarray.DataArray
        Confidence in [0, 1] (NaN pixels are skipped).
    correct : array-like of bool
        Whether each pixel's predicted class is right.
    bins : int, default 100
        Number of equal-width bins on [0, 1]; bin ``i`` holds ``[i/bins, (i+1)/bins)``, the last
        one also 1.
    weights : array-like, optional
        Pixel weights (e.g. 0 for pixels that must not count); default 1.

    Returns
    -------
    pandas.DataFrame
        One row per bin (index ``bin``): ``lower``, ``upper`` (edges), ``count`` (pixels, or
        summed weights), ``confidence`` (mean), ``accuracy`` (share correct), ``gap``
        (accuracy - confidence); NaN for empty bins.

    Examples
    --------
    >>> t = reliability_table([0.05, 0.15, 0.18, 0.95], [0, 1, 0, 1], bins=10)
    >>> t.loc[1, ["count", "confidence", "accuracy"]].round(3).tolist()
    [2.0, 0.165, 0.5]
    """
    return table_from_sums(bin_sums(confidence, correct, bins, weights))


def ece_from_table(table: pd.DataFrame) -> float:
    """Expected calibration error of a :func:`reliability_table`.

    ``sum_b n_b |accuracy_b - confidence_b| / sum_b n_b`` over the non-empty bins (NaN when
    every bin is empty).

    Examples
    --------
    >>> t = reliability_table([0.05, 0.15, 0.18, 0.95], [0, 1, 0, 1], bins=10)
    >>> round(ece_from_table(t), 4)
    0.1925
    """
    n = table["count"].to_numpy(float)
    used = n > 0
    if not used.any():
        return float("nan")
    gap = np.abs(table["accuracy"].to_numpy(float) - table["confidence"].to_numpy(float))
    return float(np.sum(n[used] * gap[used]) / np.sum(n[used]))


def expected_calibration_error(
    confidence: Any, correct: Any, *, bins: int = 100, weights: Any = None
) -> float:
    """Expected calibration error: the count-weighted mean ``|accuracy - confidence|`` of bins.

    Parameters
    ----------
    confidence, correct, bins, weights
        As :func:`reliability_table`.

    Returns
    -------
    float
        ECE in [0, 1] (NaN without any pixel).

    Examples
    --------
    Three non-empty bins of ten: {0.05 wrong}, {0.15 right, 0.18 wrong}, {0.95 right}:
    ``(1 * 0.05 + 2 * |0.5 - 0.165| + 1 * 0.05) / 4``.

    >>> round(expected_calibration_error([0.05, 0.15, 0.18, 0.95], [0, 1, 0, 1], bins=10), 4)
    0.1925
    """
    return ece_from_table(reliability_table(confidence, correct, bins=bins, weights=weights))


@dataclass(frozen=True)
class CalibrationMap:
    """A monotone map from raw confidence to calibrated confidence (observed accuracy).

    Piecewise linear between the knots ``(confidence[i], accuracy[i])`` (``np.interp``);
    ``confidence`` strictly increasing in [0, 1], ``accuracy`` non-decreasing in [0, 1].
    ``info`` holds JSON-ready extras (method, hyper-parameters, ECE before and after).

    Examples
    --------
    >>> m = CalibrationMap([0.0, 0.5, 1.0], [0.0, 0.8, 1.0])
    >>> m(np.array([0.25, 0.5, 0.75]))
    array([0.4, 0.8, 0.9])
    >>> CalibrationMap.from_dict(m.to_dict()) == m
    True
    """

    confidence: np.ndarray
    accuracy: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        conf = np.asarray(self.confidence, dtype=np.float64).copy()
        acc = np.asarray(self.accuracy, dtype=np.float64).copy()
        if conf.ndim != 1 or conf.shape != acc.shape or conf.size < 2:
            raise ValueError(
                "calibration map: 'confidence' and 'accuracy' must be 1-D of one length >= 2, "
                f"got shapes {conf.shape} and {acc.shape}"
            )
        both = np.concatenate([conf, acc])
        if not np.isfinite(both).all() or both.min() < 0 or both.max() > 1:
            raise ValueError("calibration map: knots must be finite and lie in [0, 1]")
        if np.any(np.diff(conf) <= 0):
            raise ValueError("calibration map: 'confidence' knots must be strictly increasing")
        if np.any(np.diff(acc) < 0):
            raise ValueError("calibration map: 'accuracy' knots must be non-decreasing")
        conf.flags.writeable = acc.flags.writeable = False
        object.__setattr__(self, "confidence", conf)
        object.__setattr__(self, "accuracy", acc)
        object.__setattr__(self, "info", dict(self.info))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CalibrationMap):
            return NotImplemented
        return (
            np.array_equal(self.confidence, other.confidence)
            and np.array_equal(self.accuracy, other.accuracy)
            and self.info == other.info
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        extra = {k: self.info[k] for k in ("ece_before", "ece_after") if k in self.info}
        return f"CalibrationMap({self.confidence.size} knots{', ' if extra else ''}" + (
            ", ".join(f"{k}={v:.4g}" for k, v in extra.items()) + ")"
        )

    @classmethod
    def identity(cls) -> CalibrationMap:
        """The map that changes nothing."""
        return cls(np.array([0.0, 1.0]), np.array([0.0, 1.0]), {"method": "identity"})

    def _apply(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values)
        dtype = values.dtype if np.issubdtype(values.dtype, np.floating) else np.float64
        return np.interp(values, self.confidence, self.accuracy).astype(dtype, copy=False)

    def __call__(self, confidence: Any) -> Any:
        """Calibrated confidence of ``confidence`` (numpy, xarray or dask; NaN stays NaN).

        Floating inputs keep their dtype; xarray keeps coordinates, attributes and laziness.
        """
        if isinstance(confidence, xr.DataArray):
            floating = np.issubdtype(confidence.dtype, np.floating)
            return xr.apply_ufunc(
                self._apply,
                confidence,
                dask="parallelized",
                output_dtypes=[confidence.dtype if floating else np.float64],
                keep_attrs=True,
            )
        if type(confidence).__module__.startswith("dask"):
            return confidence.map_blocks(self._apply)
        if np.isscalar(confidence):
            return float(self._apply(np.asarray(confidence, dtype=np.float64)))
        return self._apply(confidence)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{"confidence": [...], "accuracy": [...], **info}`` (checkpoint metadata)."""
        return {
            "confidence": self.confidence.tolist(),
            "accuracy": self.accuracy.tolist(),
            **self.info,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CalibrationMap:
        """The map stored by :meth:`to_dict` (other keys go to ``info``)."""
        if not isinstance(data, Mapping) or not {"confidence", "accuracy"} <= set(data):
            raise ValueError(
                "a calibration map needs a mapping with 'confidence' and 'accuracy' lists, got "
                f"{data!r:.200}"
            )
        info = {k: v for k, v in data.items() if k not in ("confidence", "accuracy")}
        return cls(np.asarray(data["confidence"]), np.asarray(data["accuracy"]), info)


def _laplacian(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    return np.exp(-gamma * np.abs(a[:, None] - b[None, :]))


def fit_calibration(
    confidence: Any,
    correct: Any,
    *,
    bins: int = 100,
    weights: Any = None,
    alpha: float = 1.0,
    gamma: float = 1.0,
    grid_size: int = 1001,
    anchors: tuple[float, float] | None = (0.0, 1.0),
    anchor_weight: float | None = None,
) -> CalibrationMap:
    """Fit a smooth monotone map from confidence to observed accuracy (see the module docs).

    Parameters
    ----------
    confidence : array-like or xarray.DataArray
        Raw confidence in [0, 1] of validation pixels (:func:`binary_confidence`).
    correct : array-like of bool
        Whether each pixel's predicted class is right.
    bins : int, default 100
        Bins of the reliability table the map is fitted to.
    weights : array-like, optional
        Pixel weights (0: ignore the pixel).
    alpha : float, default 1.0
        Ridge penalty, in units of bin counts (pixels).
    gamma : float, default 1.0
        Inverse length scale of the Laplacian kernel ``exp(-gamma |x - x'|)``.
    grid_size : int, default 1001
        Knots of the stored map (evenly spaced in [0, 1]).
    anchors : (float, float) or None, default (0.0, 1.0)
        Calibrated values at raw confidence 0 and 1, i.e. the anchors (0, 0) and (1, 1) of the
        reference; the stored map passes through them exactly. ``None``: no anchors.
    anchor_weight : float, optional
        Weight of the anchors in the regression; default the largest bin count.

    Returns
    -------
    CalibrationMap
        With ``info``: ``method``, ``bins``, ``alpha``, ``gamma``, ``n`` (pixels),
        ``ece_before`` and ``ece_after`` (on the fitting data).

    Examples
    --------
    An over-confident model: confidence 0.9 but right only 72.5 % of the time.

    >>> rng = np.random.default_rng(0)
    >>> conf = rng.uniform(0, 1, 20000)
    >>> correct = rng.uniform(0, 1, conf.size) < 0.5 + 0.25 * conf
    >>> cal = fit_calibration(conf, correct)
    >>> round(cal(0.9), 1), cal(0.0), cal(1.0)
    (0.7, 0.0, 1.0)
    >>> cal.info["ece_before"] > 0.2 > 0.02 > cal.info["ece_after"]
    True
    """
    if alpha <= 0 or gamma <= 0:
        raise ValueError(f"alpha and gamma must be positive, got alpha={alpha}, gamma={gamma}")
    if int(grid_size) != grid_size or grid_size < 2:
        raise ValueError(f"grid_size must be an integer >= 2, got {grid_size!r}")
    sums = bin_sums(confidence, correct, bins, weights)
    table = table_from_sums(sums)
    used = table["count"].to_numpy() > 0
    if not used.any():
        raise ValueError("fit_calibration: no pixel with a finite confidence and weight > 0")
    n = table["count"].to_numpy()[used]
    x = table["confidence"].to_numpy()[used]
    y = table["accuracy"].to_numpy()[used]
    wa = float(n.max() if anchor_weight is None else anchor_weight)
    if wa < 0:
        raise ValueError(f"anchor_weight must be >= 0, got {anchor_weight}")
    if anchors is not None:
        lo, hi = (float(a) for a in anchors)
        if not 0 <= lo <= hi <= 1:
            raise ValueError(f"anchors must satisfy 0 <= low <= high <= 1, got {anchors}")
        if wa > 0:
            x, y, n = np.r_[0.0, x, 1.0], np.r_[lo, y, hi], np.r_[wa, n, wa]
    sw = np.sqrt(n)
    system = sw[:, None] * _laplacian(x, x, gamma) * sw[None, :] + alpha * np.eye(x.size)
    coef = sw * linalg.solve(system, sw * (y - x), assume_a="pos")
    grid = np.linspace(0.0, 1.0, int(grid_size))
    fitted = np.clip(grid + _laplacian(grid, x, gamma) @ coef, 0.0, 1.0)
    fitted = np.clip(isotonic_regression(fitted).x, 0.0, 1.0)
    if anchors is not None:
        fitted = np.clip(fitted, lo, hi)
        fitted[0], fitted[-1] = lo, hi
    info: dict[str, Any] = {
        "method": "kernel ridge (Laplacian) on reliability bins + isotonic",
        "bins": int(bins),
        "alpha": float(alpha),
        "gamma": float(gamma),
        "anchors": None if anchors is None else [lo, hi],
        "n": float(sums[0].sum()),
        "ece_before": ece_from_table(table),
    }
    cal = CalibrationMap(grid, fitted, info)
    # ECE after, on the fitting data: calibrate the pixels and bin them again.
    after = reliability_table(cal(confidence), correct, bins=bins, weights=weights)
    info["ece_after"] = ece_from_table(after)
    return CalibrationMap(grid, fitted, info)
