"""Sliding windows: placement, Gaussian blending weights, and the batched model runner.

Windows of side ``window`` start every ``stride`` pixels along each axis, the last one flush
with the scene's far edge, so every pixel is covered and edges get full windows (a scene smaller
than one window gets one zero-padded window). Each window's glacier probability is weighted by
``exp(-d^2 / 2)`` on a ``[-1, 1]^2`` grid (symmetric for even windows), accumulated and divided
by the accumulated weight. Blending is computed for any rectangle of the scene from the global
window grid, so a scene processed block by block gives exactly the same result as in one piece.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["WindowRunner", "blend_block", "gaussian_weights", "window_starts"]

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
        self.channels_last = device.type == "cuda"

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        if self.device.type == "cuda":
            tensor = tensor.pin_memory().to(self.device, non_blocking=True)
            if tensor.ndim == 4 and self.channels_last:
                tensor = tensor.contiguous(memory_format=torch.channels_last)
            return tensor
        return tensor.to(self.device)

    def _forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.precision == "32":
            logits = self.model(inputs)
        else:
            dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
            with torch.autocast(device_type=self.device.type, dtype=dtype):
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


def _read_window(
    arrays: Mapping[str, np.ndarray], origin: tuple[int, int], y: int, x: int, window: int
) -> dict[str, np.ndarray]:
    """A window (global corner ``(y, x)``) cut from region arrays starting at ``origin``."""
    out = {}
    for g, a in arrays.items():
        h, w = a.shape[-2:]
        ly, lx = y - origin[0], x - origin[1]
        if 0 <= ly and 0 <= lx and ly + window <= h and lx + window <= w:
            out[g] = a[:, ly : ly + window, lx : lx + window]
        else:
            buf = np.zeros((a.shape[0], window, window), np.float32)
            y0, x0 = max(ly, 0), max(lx, 0)
            y1, x1 = min(ly + window, h), min(lx + window, w)
            buf[:, y0 - ly : y1 - ly, x0 - lx : x1 - lx] = a[:, y0:y1, x0:x1]
            out[g] = buf
    return out


def blend_block(
    runner: WindowRunner,
    read: Callable[[int, int, int, int], dict[str, np.ndarray]],
    *,
    shape: tuple[int, int],
    core: tuple[int, int, int, int],
    window: int,
    stride: int,
    batch_size: int = 8,
) -> np.ndarray:
    """Blended glacier probability of the rectangle ``core = (y0, y1, x0, x1)`` of a scene.

    Parameters
    ----------
    runner : WindowRunner
    read : callable
        ``read(y0, y1, x0, x1) -> {group: (C, y1 - y0, x1 - x0) float32}``: scene data of a
        rectangle inside the scene.
    shape : (int, int)
        Scene height and width.
    core : (int, int, int, int)
        The rectangle to compute, in scene pixels.

    Returns
    -------
    numpy.ndarray
        float32 ``(y1 - y0, x1 - x0)`` probabilities.
    """
    height, width = shape
    cy0, cy1, cx0, cx1 = core
    ys = [y for y in window_starts(height, window, stride) if y < cy1 and y + window > cy0]
    xs = [x for x in window_starts(width, window, stride) if x < cx1 and x + window > cx0]
    ry0, ry1 = ys[0], min(ys[-1] + window, height)
    rx0, rx1 = xs[0], min(xs[-1] + window, width)
    arrays = read(ry0, ry1, rx0, rx1)
    weights = gaussian_weights(window)
    acc = np.zeros((cy1 - cy0, cx1 - cx0), np.float64)
    wsum = np.zeros_like(acc)
    corners = [(y, x) for y in ys for x in xs]
    for i in range(0, len(corners), batch_size):
        chunk = corners[i : i + batch_size]
        wins = [_read_window(arrays, (ry0, rx0), y, x, window) for y, x in chunk]
        batch = {g: np.stack([w[g] for w in wins]) for g in arrays}
        prob = runner(batch, chunk)
        for (y, x), p in zip(chunk, prob):
            # the overlap of this window with the core, and with the scene (no weight on padding)
            oy0, oy1 = max(y, cy0), min(y + window, cy1, height)
            ox0, ox1 = max(x, cx0), min(x + window, cx1, width)
            wy, wx = slice(oy0 - y, oy1 - y), slice(ox0 - x, ox1 - x)
            dst = (slice(oy0 - cy0, oy1 - cy0), slice(ox0 - cx0, ox1 - cx0))
            acc[dst] += p[wy, wx] * weights[wy, wx]
            wsum[dst] += weights[wy, wx]
    return (acc / wsum).astype(np.float32)
