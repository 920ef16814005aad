"""Spatial cross-validation folds: hold out one quadrant, train on the rest with gaps.

:func:`quadrant_folds` cuts a scene into four folds (NW, NE, SW, SE: split at the middle row
and column). For each fold the held-out quadrant is the test tile; the other three quadrants
give the training tiles and a validation strip (for checkpoint selection) along the far edge,
with a ``gap`` of unused pixels between training, validation and test. Training patches are
cut inside their tiles, so they never hold a test or validation pixel; the gap (default half a
128-pixel patch) also keeps the test away from the pixels next to training ones, which look
alike (spatial autocorrelation).

Examples
--------
>>> from glaviz.data import scale, synthetic_scene
>>> ds = synthetic_scene(height=300, width=320, seed=0, groups=["optical"])
>>> folds = quadrant_folds(scale(ds), ds["reference_mask"], gap=16, val_width=48)
>>> sorted(folds), [t.shape for t in folds["NE"]["train"]], folds["NE"]["test"].shape
(['NE', 'NW', 'SE', 'SW'], [(134, 256), (166, 80)], (150, 160))
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from glaviz.data.tiles import SceneTile

__all__ = ["FOLDS", "fold_windows", "quadrant_folds"]

FOLDS = ("NW", "NE", "SW", "SE")
Window = tuple[int, int, int, int]  # row0, row1, col0, col1


def fold_windows(
    shape: tuple[int, int], fold: str, *, gap: int = 64, val_width: int = 96
) -> dict[str, Any]:
    """Pixel windows ``(row0, row1, col0, col1)`` of one fold's test, validation and training.

    The validation strip is the ``val_width`` columns at the edge opposite the test quadrant
    (full height); training is the rest of the other three quadrants, as two rectangles, at
    least ``gap`` pixels from the test quadrant and from the validation strip.

    Examples
    --------
    >>> w = fold_windows((655, 800), "NE")
    >>> w["test"], w["val"], w["train"]
    ((0, 327, 400, 800), (0, 655, 0, 96), [(391, 655, 160, 800), (0, 391, 160, 336)])
    """
    if fold not in FOLDS:
        raise ValueError(f"unknown fold {fold!r}; folds: {FOLDS}")
    h, w = shape
    mr, mc = h // 2, w // 2
    north, west = fold[0] == "N", fold[1] == "W"
    test = (0 if north else mr, mr if north else h, 0 if west else mc, mc if west else w)
    # validation: the far columns (east edge when the test is west, and vice versa)
    val = (0, h, w - val_width, w) if west else (0, h, 0, val_width)
    c0, c1 = (0, w - val_width - gap) if west else (val_width + gap, w)
    # the other row half: full width (minus validation and gap)
    band = (mr + gap, h, c0, c1) if north else (0, mr - gap, c0, c1)
    # the test's row half, beside the test quadrant
    side_rows = (0, mr + gap) if north else (mr - gap, h)
    side_cols = (mc + gap, c1) if west else (c0, mc - gap)
    side = (*side_rows, *side_cols)
    for name, (r0, r1, q0, q1) in (("training band", band), ("training side", side)):
        if r1 - r0 < 1 or q1 - q0 < 1:
            raise ValueError(
                f"fold {fold}: the {name} is empty for a {h} x {w} scene with gap={gap} and "
                f"val_width={val_width}; use a smaller gap or validation strip"
            )
    return {"test": test, "val": val, "train": [band, side]}


def _tile(scene: xr.Dataset, mask: Any, win: Window, name: str, region: str | None) -> SceneTile:
    r0, r1, c0, c1 = win
    sel = {"y": slice(r0, r1), "x": slice(c0, c1)}
    m = mask.isel(sel) if isinstance(mask, xr.DataArray) else np.asarray(mask)[r0:r1, c0:c1]
    return SceneTile(scene.isel(sel), m, name=name, region=region)


def quadrant_folds(
    scene: xr.Dataset,
    mask: Any,
    *,
    gap: int = 64,
    val_width: int = 96,
    region: str | None = None,
    folds: tuple[str, ...] | list[str] = FOLDS,
) -> dict[str, dict[str, Any]]:
    """Tiles of each quadrant fold: ``{"NE": {"train": [...], "val": [...], "test": tile}}``.

    Parameters
    ----------
    scene : xarray.Dataset
        A scaled scene.
    mask : xarray.DataArray or numpy.ndarray
        Its reference mask.
    gap : int, default 64
        Unused pixels between training and test or validation (half a 128 patch).
    val_width : int, default 96
        Width of the validation strip.
    region : str, optional
        Region code of the tiles.
    folds : sequence of str
        Which folds (default all four).

    Returns
    -------
    dict
        Per fold: ``train`` (list of SceneTile), ``val`` (list of one SceneTile), ``test``
        (SceneTile) and ``windows`` (:func:`fold_windows`).
    """
    shape = (scene.sizes["y"], scene.sizes["x"])
    out = {}
    for fold in folds:
        win = fold_windows(shape, fold, gap=gap, val_width=val_width)
        out[fold] = {
            "train": [
                _tile(scene, mask, w, f"{fold}:train{i}", region)
                for i, w in enumerate(win["train"])
            ],
            "val": [_tile(scene, mask, win["val"], f"{fold}:val", region)],
            "test": _tile(scene, mask, win["test"], f"{fold}:test", region),
            "windows": win,
        }
    return out
