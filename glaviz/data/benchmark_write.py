"""Write tiles in the GlaViTU benchmark HDF5 layout; the layout's attributes and padding convention.

The names shared by the writer and the reader (:mod:`glaviz.data.benchmark`, which re-exports
them): :data:`ATTRIBUTES` of every tile group, the label dataset :data:`LABELS`, the reading of
``padding_height``/``padding_width`` (:data:`PADDING`, :func:`pad_before`), the one-hot label
encoding (:func:`decode_labels` reads it back) and :func:`write_tile`, which pads a tile
(centred, zeros) to multiples of :data:`MULTIPLE`.

Examples
--------
>>> import tempfile, h5py, numpy as np
>>> tmp = tempfile.TemporaryDirectory()
>>> with h5py.File(tmp.name + "/demo_val_ps384.hdf5", "w") as f:
...     grp = write_tile(f, "GR-0-0", {"dem": np.ones((2, 30, 50))}, np.zeros((30, 50)),
...                      region="GR", subregion="GR", epsg=3413, xmin=0.0, ymax=0.0,
...                      resolution=10.0, multiple=64)
...     sorted(grp), grp["dem"].shape, int(grp.attrs["padding_height"]), float(grp.attrs["xmax"])
(['dem', 'outlines'], (64, 64, 2), 17, 500.0)
>>> tmp.cleanup()
"""

from __future__ import annotations

from collections.abc import Mapping

import h5py
import numpy as np

from glaviz.catalog import GROUPS
from glaviz.data.tiles import IGNORE

__all__ = [
    "ATTRIBUTES",
    "LABELS",
    "MULTIPLE",
    "PADDING",
    "decode_labels",
    "pad_before",
    "write_tile",
]

#: Attributes every tile group must carry.
ATTRIBUTES: tuple[str, ...] = (
    "region", "subregion", "tile_name", "epsg", "height", "width", "original_height",
    "original_width", "padding_height", "padding_width", "xmin", "xmax", "ymin", "ymax",
)  # fmt: skip
#: Name of the label dataset (2-channel one-hot: not glacier, glacier).
LABELS = "outlines"
#: Default reading of ``padding_height``/``padding_width``: ``"auto"``, ``"before"`` or ``"total"``.
PADDING = "auto"
#: Side to which :func:`write_tile` pads tiles (a multiple of it).
MULTIPLE = 384


def pad_before(padding: int, total: int, convention: str = PADDING) -> int:
    """Rows (or columns) of padding before the data, from the attribute and the total padding.

    ``"before"``: ``padding`` is the top/left side, the rest (``total - padding``) is after.
    ``"total"``: ``padding`` is the total; the top/left gets ``total // 2``. ``"auto"``:
    ``"total"`` when ``padding == total``, ``"before"`` otherwise.

    Examples
    --------
    >>> pad_before(17, 34), pad_before(34, 34), pad_before(0, 1), pad_before(5, 5, "before")
    (17, 17, 0, 5)
    """
    if convention not in ("auto", "before", "total"):
        raise ValueError(
            f"padding convention must be 'auto', 'before' or 'total', not {convention!r}"
        )
    if convention == "total" or (convention == "auto" and padding == total):
        if padding != total:
            raise ValueError(f"padding {padding} is not the total padding {total}")
        return total // 2
    if not 0 <= padding <= total:
        raise ValueError(f"padding {padding} outside 0..{total} (the total padding)")
    return padding


def decode_labels(onehot: np.ndarray) -> np.ndarray:
    """``(h, w, 2)`` one-hot labels to uint8: argmax where labelled, ``IGNORE`` where (0, 0).

    Parameters
    ----------
    onehot : numpy.ndarray
        ``(h, w, 2)`` one-hot (not glacier, glacier), as stored in the :data:`LABELS` dataset.

    Returns
    -------
    numpy.ndarray
        ``(h, w)`` uint8: 0 not glacier, 1 glacier, ``IGNORE`` unlabelled.

    Examples
    --------
    >>> onehot = np.array([[[1, 0], [0, 1], [0, 0]]])
    >>> decode_labels(onehot).tolist()
    [[0, 1, 255]]
    """
    labelled = onehot.sum(axis=-1) > 0
    return np.where(labelled, np.argmax(onehot, axis=-1), IGNORE).astype(np.uint8)


def write_tile(
    parent: h5py.Group,
    name: str,
    inputs: Mapping[str, np.ndarray],
    label: np.ndarray,
    *,
    region: str,
    subregion: str,
    epsg: int,
    xmin: float,
    ymax: float,
    resolution: float,
    tile_name: str | None = None,
    multiple: int = MULTIPLE,
) -> h5py.Group:
    """Write one tile in the benchmark layout (centred zero padding to ``multiple``).

    ``inputs`` are scaled ``(C, H, W)`` arrays in catalog band order; ``label`` is ``(H, W)``
    with 0, 1 and anything else (e.g. 255) unlabelled. ``padding_height``/``padding_width`` are
    written as the top/left padding (``total // 2``). Useful to pack own scenes for
    :func:`~glaviz.data.benchmark.open_benchmark` and for tests; see the module example.
    """
    label = np.asarray(label)
    h, w = label.shape
    H, W = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    top, left = (H - h) // 2, (W - w) // 2
    unknown = sorted(set(inputs) - set(GROUPS))
    if unknown:
        raise ValueError(f"unknown input group(s) {unknown}; known: {list(GROUPS)}")
    grp = parent.create_group(name)

    def padded(arr: np.ndarray) -> np.ndarray:
        out = np.zeros((H, W, arr.shape[-1]), np.float64)
        out[top : top + h, left : left + w] = arr
        return out

    for g in GROUPS:
        if g in inputs:
            arr = np.asarray(inputs[g], np.float64)
            if arr.shape[1:] != (h, w):
                raise ValueError(f"{g}: shape {arr.shape} does not match the label's {(h, w)}")
            grp[g] = padded(arr.transpose(1, 2, 0))
    grp[LABELS] = padded(np.stack([label == 0, label == 1], axis=-1))
    xmax, ymin = xmin + w * resolution, ymax - h * resolution
    values = (region, subregion, tile_name or name, int(epsg), H, W, h, w, top, left)
    grp.attrs.update(zip(ATTRIBUTES, (*values, *map(float, (xmin, xmax, ymin, ymax)))))
    return grp
