"""Sliding windows: placement, Gaussian blending weights, and the batched model runner.

Windows of side ``window`` start every ``stride`` pixels along each axis, the last one flush
with the scene's far edge, so every pixel is covered and edges get full windows (a scene smaller
than one window gets one zero-padded window). Each window's glacier probability is weighted by
``exp(-d^2 / 2)`` on a ``[-1, 1]^2`` grid (symmetric for even windows), accumulated and divided
by the accumulated weight. :func:`blend_rows` runs each window once, one window row at a time,
and hands out rows as soon as no later window reaches them.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import nn

from glaviz.inference.stats import PredictStats
from glaviz.models.runtime import autocast, heap_buffers

__all__ = ["WindowRunner", "blend_rows", "gaussian_weights", "window_starts"]

#: The 8 dihedral transforms: (number of 90 degree rotations, flip left-right first).
DIHEDRAL = [(k, flip) for flip in (False, True) for k in range(4)]


def window_starts(n: int, window: int, stride: int) -> list[int]:
    """Start offsets of windows along an axis of ``n`` pixels.

    Examples
    --------
    >>> window_starts(1000, 384, 192)
    [0, 192, 384, 576, 616]
    >>> window_starts(100, 384, 192)  # smaller than a window: one padded window
    [0]
    """
    if window <= 0 or stride <= 0:
        raise ValueError(f"window ({window}) and stride ({stride}) must be positive")
    if n <= window:
        return [0]
    starts = list(range(0, n - window + 1, stride))
    if starts[-1] + window < n:
        starts.append(n - window)
    return starts


def gaussian_weights(window: int) -> np.ndarray:
    """``exp(-(u^2 + v^2) / 2)`` for ``u, v`` evenly spaced on ``[-1, 1]`` (float32, symmetric).

    Computed once per window size (read-only; copy it to modify).

    Examples
    --------
    >>> w = gaussian_weights(4)
    >>> bool((w == w[::-1, ::-1]).all()), round(float(w.max()), 3)
    (True, 0.895)
    """
    return _gaussian_weights(int(window))


@functools.lru_cache(maxsize=8)
def _gaussian_weights(window: int) -> np.ndarray:
    u = np.linspace(-1.0, 1.0, window)
    w = np.exp(-(u[:, None] ** 2 + u[None, :] ** 2) / 2).astype(np.float32)
    w.flags.writeable = False
    return w


def _channels_last(array: np.ndarray) -> bool:
    """Whether a 4-D ``(B, C, H, W)`` array is laid out as a C-contiguous ``(B, H, W, C)``."""
    return array.ndim == 4 and array.transpose(0, 2, 3, 1).flags.c_contiguous


class WindowRunner:
    """Runs a model on batches of windows and returns glacier probabilities.

    Parameters
    ----------
    model : torch.nn.Module
        In evaluation mode; returns logits ``(B, 2, H, W)``.
    groups : sequence of str
        Input groups in the model's order.
    device : torch.device
    precision : {"32", "bf16", "16"}
        Autocast dtype (no-op for "32").
    tta : bool
        Average the softmax over the 8 dihedral transforms.
    location : callable, optional
        ``location(corners) -> (B, L) array`` for location-encoded models.
    stats : PredictStats, optional
        Where the time goes: ``prepare`` (to the device, channels-last), ``model`` (forward
        passes; synchronised on CUDA) and ``probability`` (softmax, TTA, back to the host).
    """

    def __init__(
        self,
        model: nn.Module,
        groups: Sequence[str],
        *,
        device: torch.device,
        precision: str = "32",
        tta: bool = False,
        location: Callable[[list[tuple[int, int]]], np.ndarray] | None = None,
        stats: PredictStats | None = None,
    ) -> None:
        self.model = model
        self.groups = list(groups)
        self.device = device
        self.precision = precision
        self.tta = tta
        self.location = location
        self.stats = stats

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        """On the device; 4-D windows channels-last (faster convolutions on CPUs and GPUs).

        A batch already laid out channels-last (as :func:`blend_rows` builds them) is not
        copied on the CPU; anything else is made contiguous first.
        """
        if not (array.flags.c_contiguous or _channels_last(array)):
            array = np.ascontiguousarray(array)
        tensor = torch.from_numpy(array)
        if self.device.type == "cuda":
            tensor = tensor.pin_memory().to(self.device, non_blocking=True)
        else:
            tensor = tensor.to(self.device)
        if tensor.ndim == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    def _forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        stats = self.stats
        with heap_buffers(), autocast(self.device, self.precision):  # see predict's allocator
            t = time.perf_counter()
            logits = self.model(inputs)
            if stats is not None:
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                t = stats.add("model", t)
                stats.batches += 1
            prob = torch.softmax(logits.float(), dim=1)[:, 1]
            if stats is not None:
                stats.add("probability", t)
            return prob

    @torch.inference_mode()
    def __call__(
        self, batch: Mapping[str, np.ndarray], corners: list[tuple[int, int]]
    ) -> np.ndarray:
        """Glacier probability ``(B, H, W)`` float32 for a batch ``{group: (B, C, H, W)}``."""
        t = time.perf_counter()
        inputs = {g: self._to_device(batch[g]) for g in self.groups}
        if self.location is not None:
            inputs["location"] = self._to_device(self.location(corners).astype(np.float32))
        if self.stats is not None:
            self.stats.add("prepare", t)
        if not self.tta:
            prob = self._forward(inputs)
            t = time.perf_counter()
            out = prob.cpu().numpy()
            if self.stats is not None:
                self.stats.add("probability", t)
            return out
        total: torch.Tensor | None = None
        for k, flip in DIHEDRAL:
            t = time.perf_counter()
            moved = {}
            for g, x in inputs.items():
                if g == "location":
                    moved[g] = x
                    continue
                x = torch.flip(x, dims=(-1,)) if flip else x
                moved[g] = torch.rot90(x, k, dims=(-2, -1))
            if self.stats is not None:
                self.stats.add("prepare", t)
            p = self._forward(moved)
            t = time.perf_counter()
            p = torch.rot90(p, -k, dims=(-2, -1))
            p = torch.flip(p, dims=(-1,)) if flip else p
            total = p if total is None else total + p
            if self.stats is not None:
                self.stats.add("probability", t)
        assert total is not None  # DIHEDRAL has 8 entries
        t = time.perf_counter()
        out = (total / len(DIHEDRAL)).cpu().numpy()
        if self.stats is not None:
            self.stats.add("probability", t)
        return out


def blend_rows(
    runner: WindowRunner,
    read: Callable[[int, int, int, int], dict[str, np.ndarray]],
    *,
    shape: tuple[int, int],
    window: int,
    stride: int,
    batch_size: int = 8,
    start_row: int = 0,
    read_width: int = 2048,
    stats: PredictStats | None = None,
    prefetch: bool = True,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Blended glacier probability of a scene, yielded as finished row strips, top to bottom.

    Windows are run one window row at a time (each window exactly once); rows that no later
    window covers are final and are yielded at once, so memory holds one window row of inputs
    (read ``read_width`` columns at a time) and a ``window``-high accumulator, whatever the
    scene's size.

    Parameters
    ----------
    runner : WindowRunner
    read : callable
        ``read(y0, y1, x0, x1) -> {group: (C, y1 - y0, x1 - x0) float32}`` for a rectangle of
        the scene.
    shape : (int, int)
        Scene height and width.
    start_row : int
        Yield rows from here on (a resumed run): windows reaching below it are run again.
    read_width : int
        Columns of input read at once (plus one window).
    stats : PredictStats, optional
        Adds the time spent in ``read`` (waiting for it), ``prepare`` (padding and batching)
        and ``blend``, and counts ``windows``.
    prefetch : bool, default True
        Read the next rectangle in a background thread while the model runs on this one
        (reads stay one at a time and in order).

    Yields
    ------
    (int, int, numpy.ndarray)
        ``(r0, r1, prob)`` with ``prob`` float32 of shape ``(r1 - r0, width)``; the strips
        tile rows ``start_row .. height`` in order.

    Notes
    -----
    Batches are built channels-last (``(B, C, H, W)`` views of ``(B, H, W, C)`` buffers that
    are reused from batch to batch), the layout the model runs in; the accumulators are
    shifted and weighted in place. None of it changes a value: each window's probability is
    weighted and added in the same order as in the plain procedure.
    """
    stats = stats if stats is not None else PredictStats()
    height, width = shape
    ys = [y for y in window_starts(height, window, stride) if y + window > start_row]
    xs = window_starts(width, window, stride)
    weights = gaussian_weights(window)
    rows = min(window, height)
    acc = np.zeros((rows, width), np.float32)
    wsum = np.zeros((rows, width), np.float32)
    scratch = np.empty((window, window), np.float32)
    buffers: dict[str, np.ndarray] = {}  # group -> (batch, window, window, C)
    top = start_row
    chunks = _column_groups(xs, read_width)
    # the first read is waited for (nothing to overlap it with): its first group is narrow, so
    # the model starts after reading about one window's columns, and the rest of the row is
    # read meanwhile
    narrow = [x for x in xs if x - xs[0] <= max(window, read_width // 4)]
    first = [narrow, *_column_groups(xs[len(narrow) :], read_width)]
    rects = [(y, min(y + window, height), g[0], min(g[-1] + window, width))
             for y in ys for g in (first if y == ys[0] else chunks)]  # fmt: skip
    reads = _in_order(read, rects, prefetch=prefetch)
    for y in ys:
        if y > top:  # rows top..y are final: no later window reaches them
            t = time.perf_counter()
            n = y - top
            out = acc[:n] / wsum[:n]
            acc[: rows - n] = acc[n:].copy()
            acc[rows - n :] = 0
            wsum[: rows - n] = wsum[n:].copy()
            wsum[rows - n :] = 0
            stats.add("blend", t)
            yield top, y, out
            top = y
        y1 = min(y + window, height)
        for group in first if y == ys[0] else chunks:
            t = time.perf_counter()
            x0 = group[0]
            arrays = next(reads)
            t = stats.add("read", t)
            for i in range(0, len(group), batch_size):
                corners = [(y, x) for x in group[i : i + batch_size]]
                batch = {}
                for g, a in arrays.items():
                    buf = buffers.get(g)
                    if buf is None or buf.shape[0] < len(corners):
                        buf = np.empty((batch_size, window, window, a.shape[0]), np.float32)
                        buffers[g] = buf
                    view = buf[: len(corners)].transpose(0, 3, 1, 2)
                    for b, (_, cx) in enumerate(corners):
                        _fill(view[b], a, cx - x0)
                    batch[g] = view
                stats.windows += len(corners)
                t = stats.add("prepare", t)
                prob = runner(batch, corners)
                t = time.perf_counter()
                for (_, x), p in zip(corners, prob):
                    r0 = max(y, top)  # rows above `top` are already out (or not wanted)
                    wy = slice(r0 - y, y1 - y)
                    wx = slice(0, min(x + window, width) - x)
                    dst = (slice(r0 - top, y1 - top), slice(x, x + wx.stop))
                    part = scratch[: wy.stop - wy.start, : wx.stop]
                    np.multiply(p[wy, wx], weights[wy, wx], out=part)
                    acc[dst] += part
                    wsum[dst] += weights[wy, wx]
                t = stats.add("blend", t)
    if height > top:
        t = time.perf_counter()
        n = height - top
        out = acc[:n] / wsum[:n]
        stats.add("blend", t)
        yield top, height, out


def _column_groups(xs: Sequence[int], read_width: int) -> list[list[int]]:
    """Window column starts in runs spanning at most ``read_width`` columns (plus a window)."""
    groups: list[list[int]] = []
    for x in xs:
        if groups and x - groups[-1][0] <= read_width:
            groups[-1].append(x)
        else:
            groups.append([x])
    return groups


def _in_order(
    read: Callable[[int, int, int, int], dict[str, np.ndarray]],
    rects: Sequence[tuple[int, int, int, int]],
    *,
    prefetch: bool,
) -> Iterator[dict[str, np.ndarray]]:
    """``read(*rect)`` for each rectangle in order; with ``prefetch`` the next one is read in a
    background thread while the caller works on the current one (one read at a time)."""
    if not prefetch:
        for rect in rects:
            yield read(*rect)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="glaviz-read") as pool:
        ahead = pool.submit(read, *rects[0]) if rects else None
        for i in range(len(rects)):
            assert ahead is not None
            arrays = ahead.result()  # re-raises the reader's error here, in order
            ahead = pool.submit(read, *rects[i + 1]) if i + 1 < len(rects) else None
            yield arrays


def _fill(dst: np.ndarray, src: np.ndarray, x: int) -> None:
    """``dst (C, w, w) = src[:, :w, x:x + w]``, zero where ``src`` ends (a padded window)."""
    size = dst.shape[-1]
    h, w = min(src.shape[1], size), min(src.shape[2] - x, size)
    dst[:, :h, :w] = src[:, :h, x : x + w]
    if h < size:
        dst[:, h:, :] = 0
    if w < size:
        dst[:, :h, w:] = 0
