"""Reading a scene's input windows: each chunk of a lazy scene computed once, in bounded memory.

:func:`glaviz.predict` reads one window row (``window`` rows, ``read_width`` columns at a time)
per step, and window rows overlap (by half a window at the default stride). Slicing a lazy
(dask) scene computes every chunk the slice touches in full (reading the source files, scaling,
resampling), so without a cache a 2048-row chunk would be computed for each of the ~12 window
rows that cross it, and again for each column group. :class:`SceneReader` computes the chunks
a read needs in one dask call and keeps them while later reads still need them (up to a memory
budget: a chunk that does not fit is computed again when needed, as before). The pixels are
the same either way: a chunk-aligned slice computes exactly what the chunk computes.
"""

from __future__ import annotations

from collections.abc import Mapping

import dask
import dask.array as da
import numpy as np
import xarray as xr

__all__ = ["READ_CACHE_MB", "SceneReader"]

#: Memory for the chunks of a lazy scene kept between reads, in MiB (about one row of 1024 x
#: 1024 chunks of 8 float32 bands across a 10980-pixel Sentinel-2 tile).
READ_CACHE_MB = 384


def _bounds(sizes: tuple[int, ...]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


class SceneReader:
    """``reader(y0, y1, x0, x1) -> {group: (C, y1 - y0, x1 - x0) float32}`` for a scene.

    Reads are expected top to bottom (as :func:`~glaviz.inference.windows.blend_rows` makes
    them): cached chunks that end above a read's first row are dropped. The arrays returned
    are channels-last in memory (``(C, h, w)`` views of ``(h, w, C)`` arrays), the layout the
    model runs in, so that batching windows copies contiguous pixel runs.

    Parameters
    ----------
    arrays : mapping of str to xarray.DataArray
        ``(band, y, x)`` arrays of the input groups: in-memory, lazily indexed or dask.
    cache_mb : float
        Memory budget for kept chunks of dask arrays, in MiB (0 keeps none).

    Examples
    --------
    >>> import dask.array as da
    >>> a = xr.DataArray(da.arange(96).reshape(2, 6, 8).rechunk((2, 4, 4)),
    ...                  dims=("band", "y", "x"))
    >>> reader = SceneReader({"optical": a})
    >>> out = reader(1, 5, 2, 7)["optical"]
    >>> out.shape, bool((out == a[:, 1:5, 2:7].values).all()), reader.computed
    ((2, 4, 5), True, 4)
    >>> _ = reader(3, 6, 0, 8); reader.computed  # the same chunks: none computed again
    4
    """

    def __init__(self, arrays: Mapping[str, xr.DataArray], *, cache_mb: float = READ_CACHE_MB):
        self.arrays = dict(arrays)
        self.budget = int(cache_mb * 2**20)
        self.cache: dict[tuple[str, int, int], np.ndarray] = {}
        self.cached = 0  # bytes held in the cache
        self.computed = 0  # chunks computed so far
        self.grids: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for g, a in self.arrays.items():
            if isinstance(a.data, da.Array):
                self.grids[g] = (_bounds(a.data.chunks[1]), _bounds(a.data.chunks[2]))

    def _forget_above(self, y0: int) -> None:
        for key in [k for k in self.cache if self.grids[k[0]][0][k[1] + 1] <= y0]:
            self.cached -= self.cache.pop(key).nbytes

    def __call__(self, y0: int, y1: int, x0: int, x1: int) -> dict[str, np.ndarray]:
        """The scene's input groups over rows ``y0..y1`` and columns ``x0..x1``."""
        self._forget_above(y0)
        out: dict[str, np.ndarray] = {}
        pieces: list[tuple[str, int, int]] = []
        for g, a in self.arrays.items():
            hwc = np.empty((y1 - y0, x1 - x0, a.shape[0]), np.float32)
            out[g] = hwc.transpose(2, 0, 1)
            if g not in self.grids:
                out[g][...] = np.asarray(a[:, y0:y1, x0:x1].values, np.float32)
                continue
            ys, xs = self.grids[g]
            i0, i1 = np.searchsorted(ys, y0, "right") - 1, np.searchsorted(ys, y1, "left")
            j0, j1 = np.searchsorted(xs, x0, "right") - 1, np.searchsorted(xs, x1, "left")
            pieces += [(g, int(i), int(j)) for i in range(i0, i1) for j in range(j0, j1)]
        missing = [k for k in pieces if k not in self.cache]
        if missing:
            computed = dask.compute(*[self._chunk(k) for k in missing])
            self.computed += len(missing)
        got = dict(zip(missing, computed)) if missing else {}
        for key in pieces:
            g, i, j = key
            block = self.cache.get(key)
            if block is None:
                block = np.asarray(got[key], np.float32)
                if self.cached + block.nbytes <= self.budget:
                    self.cache[key] = block
                    self.cached += block.nbytes
            ys, xs = self.grids[g]
            r0, r1 = max(y0, ys[i]), min(y1, ys[i + 1])
            c0, c1 = max(x0, xs[j]), min(x1, xs[j + 1])
            out[g][:, r0 - y0 : r1 - y0, c0 - x0 : c1 - x0] = block[
                :, r0 - ys[i] : r1 - ys[i], c0 - xs[j] : c1 - xs[j]
            ]
        return out

    def _chunk(self, key: tuple[str, int, int]) -> da.Array:
        g, i, j = key
        ys, xs = self.grids[g]
        return self.arrays[g].data[:, ys[i] : ys[i + 1], xs[j] : xs[j + 1]]
