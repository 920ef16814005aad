"""Sliding windows: placement, Gaussian blending weights, and the batched model runner.

Windows of side ``window`` start every ``stride`` pixels along each axis, the last one flush
with the scene's far edge, so every pixel is covered and edges get full windows (a scene smaller
than one window gets one zero-padded window). Each window's glacier probability is weighted by
``exp(-d^2 / 2)`` on a ``[-1, 1]^2`` grid (symmetric for even windows), accumulated and divided
by the accumulated weight. :func:`blend_rows` runs each window once, one window row at a time,
and hands out rows as soon as no later window reaches them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from glaviz.data.tiles import padded_window
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

    Examples
    --------
    >>> w = gaussian_weights(4)
    >>> bool((w == w[::-1, ::-1]).all()), round(float(w.max()), 3)
    (True, 0.895)
    """
    u = np.linspace(-1.0, 1.0, window)
    return np.exp(-(u[:, None] ** 2 + u[None, :] ** 2) / 2).astype(np.float32)


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
    ) -> None:
        self.model = model
        self.groups = list(groups)
        self.device = device
        self.precision = precision
        self.tta = tta
        self.location = location

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        """On the device; 4-D windows channels-last (faster convolutions on CPUs and GPUs)."""
        tensor = torch.from_numpy(array)
        if self.device.type == "cuda":
            tensor = tensor.pin_memory().to(self.device, non_blocking=True)
        else:
            tensor = tensor.to(self.device)
        if tensor.ndim == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    def _forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        with heap_buffers(), autocast(self.device, self.precision):  # see predict's allocator
            logits = self.model(inputs)
            return torch.softmax(logits.float(), dim=1)[:, 1]

    @torch.inference_mode()
    def __call__(
        self, batch: Mapping[str, np.ndarray], corners: list[tuple[int, int]]
    ) -> np.ndarray:
        """Glacier probability ``(B, H, W)`` float32 for a batch ``{group: (B, C, H, W)}``."""
        inputs = {g: self._to_device(np.ascontiguousarray(batch[g])) for g in self.groups}
        if self.location is not None:
            inputs["location"] = self._to_device(self.location(corners).astype(np.float32))
        if not self.tta:
            return self._forward(inputs).cpu().numpy()
        total = None
        for k, flip in DIHEDRAL:
            moved = {}
            for g, t in inputs.items():
                if g == "location":
                    moved[g] = t
                    continue
                t = torch.flip(t, dims=(-1,)) if flip else t
                moved[g] = torch.rot90(t, k, dims=(-2, -1))
            p = torch.rot90(self._forward(moved), -k, dims=(-2, -1))
            p = torch.flip(p, dims=(-1,)) if flip else p
            total = p if total is None else total + p
        return (total / len(DIHEDRAL)).cpu().numpy()


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

    Yields
    ------
    (int, int, numpy.ndarray)
        ``(r0, r1, prob)`` with ``prob`` float32 of shape ``(r1 - r0, width)``; the strips
        tile rows ``start_row .. height`` in order.
    """
    height, width = shape
    ys = [y for y in window_starts(height, window, stride) if y + window > start_row]
    xs = window_starts(width, window, stride)
    weights = gaussian_weights(window)
    rows = min(window, height)
    acc = np.zeros((rows, width), np.float32)
    wsum = np.zeros((rows, width), np.float32)
    top = start_row
    chunks, current = [], [xs[0]]
    for x in xs[1:]:
        if x - current[0] > read_width:
            chunks.append(current)
            current = []
        current.append(x)
    chunks.append(current)
    for y in ys:
        if y > top:  # rows top..y are final: no later window reaches them
            n = y - top
            yield top, y, acc[:n] / wsum[:n]
            acc = np.concatenate([acc[n:], np.zeros((n, width), np.float32)])
            wsum = np.concatenate([wsum[n:], np.zeros((n, width), np.float32)])
            top = y
        y1 = min(y + window, height)
        for group in chunks:
            x0, x1 = group[0], min(group[-1] + window, width)
            arrays = read(y, y1, x0, x1)
            for i in range(0, len(group), batch_size):
                corners = [(y, x) for x in group[i : i + batch_size]]
                batch = {
                    g: np.stack([padded_window(a, 0, cx - x0, window, 0.0) for _, cx in corners])
                    for g, a in arrays.items()
                }
                prob = runner(batch, corners)
                for (_, x), p in zip(corners, prob):
                    r0 = max(y, top)  # rows above `top` are already out (or not wanted)
                    wy = slice(r0 - y, y1 - y)
                    wx = slice(0, min(x + window, width) - x)
                    dst = (slice(r0 - top, y1 - top), slice(x, x + wx.stop))
                    acc[dst] += p[wy, wx] * weights[wy, wx]
                    wsum[dst] += weights[wy, wx]
    if height > top:
        n = height - top
        yield top, height, acc[:n] / wsum[:n]
