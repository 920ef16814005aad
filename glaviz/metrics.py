"""Pixel confusion counts and the scores derived from them (pooled, never averaged per patch).

The lowest layer of evaluation: training uses it for checkpoint selection, ``glaviz.evaluation``
builds its tables on it. Only pixels marked valid (and labelled) count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["Confusion", "confusion"]


@dataclass
class Confusion:
    """Pooled pixel counts of the glacier class; add them up over windows, tiles, regions.

    Examples
    --------
    >>> c = Confusion(tp=8, fp=2, fn=2, tn=88)
    >>> round(c.iou, 4), c.precision, c.recall
    (0.6667, 0.8, 0.8)
    >>> (c + c).iou == c.iou
    True
    """

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(
            self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn
        )

    @staticmethod
    def _ratio(num: int, den: int) -> float:
        return float(num) / den if den else float("nan")

    @property
    def iou(self) -> float:
        """Intersection over union of the glacier class (NaN when both are empty)."""
        return self._ratio(self.tp, self.tp + self.fp + self.fn)

    @property
    def precision(self) -> float:
        return self._ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return self._ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return self._ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def accuracy(self) -> float:
        return self._ratio(self.tp + self.tn, self.tp + self.fp + self.fn + self.tn)

    @property
    def area_deviation(self) -> float:
        """``(A_pred - A_ref) / A_ref`` in pixels."""
        return self._ratio((self.tp + self.fp) - (self.tp + self.fn), self.tp + self.fn)

    def scores(self) -> dict[str, float]:
        """All scores and counts as a dict."""
        return {
            "iou": self.iou,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "accuracy": self.accuracy,
            "area_deviation": self.area_deviation,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
        }


def confusion(pred: ArrayLike, reference: ArrayLike, valid: ArrayLike | None = None) -> Confusion:
    """Counts of predicted vs reference glacier pixels where ``valid`` (and reference is 0/1).

    Parameters
    ----------
    pred, reference : array-like
        Binary masks (reference values other than 0/1 are unlabelled and skipped).
    valid : array-like of bool, optional
        Pixels that count.

    Examples
    --------
    >>> confusion([1, 1, 0, 0], [1, 0, 1, 255]).tp
    1
    """
    pred = np.asarray(pred).astype(bool)
    ref = np.asarray(reference)
    keep = np.isin(ref, (0, 1))
    if valid is not None:
        keep &= np.asarray(valid, bool)
    p, r = pred[keep], ref[keep].astype(bool)
    tp = int(np.count_nonzero(p & r))
    fp = int(np.count_nonzero(p & ~r))
    fn = int(np.count_nonzero(~p & r))
    return Confusion(tp, fp, fn, int(p.size - tp - fp - fn))
