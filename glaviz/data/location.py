"""Location inputs of location-encoded models: region one-hot or sin/cos of lat/lon."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from glaviz.catalog import load_catalog

__all__ = ["coordinate_features", "region_one_hot"]


def region_one_hot(code: str | None) -> np.ndarray:
    """The region one-hot (11 regions + "unknown"); ``None`` or ``"unknown"`` set the last slot.

    Examples
    --------
    >>> region_one_hot("HMA").argmax(), region_one_hot(None).argmax()
    (np.int64(5), np.int64(11))
    """
    cat = load_catalog()
    vec = np.zeros(cat.unknown_slot + 1, np.float32)
    vec[cat.region_index(code)] = 1.0
    return vec


def coordinate_features(lon: ArrayLike, lat: ArrayLike) -> np.ndarray:
    """``[sin lat, cos lat, sin lon, cos lon]`` (radians) of longitudes/latitudes in degrees.

    Works on scalars (shape ``(4,)``) and arrays (shape ``(..., 4)``).

    Examples
    --------
    >>> coordinate_features(90.0, 0.0).round(3)
    array([0., 1., 1., 0.], dtype=float32)
    """
    lon, lat = np.radians(np.asarray(lon, float)), np.radians(np.asarray(lat, float))
    return np.stack([np.sin(lat), np.cos(lat), np.sin(lon), np.cos(lon)], -1).astype(np.float32)
