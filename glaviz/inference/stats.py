"""Where :func:`glaviz.predict`'s time goes: model passes against everything around them."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields

__all__ = ["PredictStats"]

#: The parts of a run, in the order they happen (all in seconds).
PARTS = (
    "setup",
    "read",
    "prepare",
    "model",
    "probability",
    "blend",
    "finish",
    "write",
    "finalize",
)


@dataclass
class PredictStats:
    """Seconds spent in each part of one :func:`glaviz.predict` run (pass ``stats=``).

    The parts do not overlap; ``total`` is the wall time of the whole call and ``other`` what
    no part accounts for (the loop itself, progress bar, freeing memory). Measuring costs a
    few ``time.perf_counter`` calls per batch and changes no result; on CUDA the model's
    share is synchronised (one ``torch.cuda.synchronize`` per batch) only when a
    ``PredictStats`` is passed.

    Attributes
    ----------
    setup : float
        Scaling an unscaled scene lazily, the run's fingerprint (file outputs: hashes of the
        model and the scene's data), creating the output.
    read : float
        Reading (and computing, for lazy scenes) the input windows' pixels.
    prepare : float
        Padding and batching windows (channels-last), moving them to the device.
    model : float
        The model's forward passes: what the overhead is measured against.
    probability : float
        Softmax, test-time augmentation's un-rotations and the copy back to the host.
    blend : float
        Gaussian weighting and accumulation, division by the accumulated weight.
    finish : float
        Mask, median filter, confidence, calibration and nodata of each output strip.
    write : float
        Handing finished strips to the output (memory, GeoTIFF or Zarr).
    finalize : float
        Converting to Cloud-Optimised GeoTIFFs or renaming the Zarr store; reopening.
    total : float
        Wall time of the whole call.
    windows, batches : int
        Windows and forward passes run (with TTA each batch runs 8 passes).
    pixels : int
        Output pixels (height x width).

    Examples
    --------
    >>> from glaviz.data import synthetic_scene
    >>> from glaviz.inference import predict
    >>> from glaviz.models import GlaViTU
    >>> stats = PredictStats()
    >>> scene = synthetic_scene(height=40, width=48, seed=0, groups=["optical", "dem"])
    >>> _ = predict(GlaViTU.small(tile_size=32), scene, stats=stats, progress=False)
    >>> stats.windows, stats.model > 0, abs(sum(stats.parts().values()) + stats.other
    ...                                     - stats.total) < 1e-9
    (4, True, True)
    """

    setup: float = 0.0
    read: float = 0.0
    prepare: float = 0.0
    model: float = 0.0
    probability: float = 0.0
    blend: float = 0.0
    finish: float = 0.0
    write: float = 0.0
    finalize: float = 0.0
    total: float = 0.0
    windows: int = 0
    batches: int = 0
    pixels: int = 0

    def add(self, part: str, since: float) -> float:
        """Add the time from ``since`` (a ``time.perf_counter()``) to ``part``; return now."""
        now = time.perf_counter()
        setattr(self, part, getattr(self, part) + now - since)
        return now

    def reset(self) -> None:
        """Zero every figure (a ``PredictStats`` passed again starts afresh)."""
        for f in fields(self):
            setattr(self, f.name, type(getattr(self, f.name))())

    def parts(self) -> dict[str, float]:
        """``{part: seconds}`` of the parts of a run, in order (``total`` and ``other`` aside)."""
        return {p: getattr(self, p) for p in PARTS}

    @property
    def other(self) -> float:
        """Seconds of ``total`` that no part accounts for."""
        return self.total - sum(self.parts().values())

    @property
    def outside(self) -> float:
        """Seconds outside the model's forward passes: ``total - model``."""
        return self.total - self.model

    @property
    def overhead(self) -> float:
        """``outside / model``: 0.1 means the run took 10 % longer than its model passes."""
        return self.outside / self.model if self.model > 0 else float("nan")

    def as_dict(self) -> dict[str, float | int]:
        """The figures, ``other`` and ``overhead`` as a plain dict (e.g. for JSON)."""
        return {**asdict(self), "other": self.other, "overhead": self.overhead}

    def summary(self) -> str:
        """One line: model, total and overhead, then each part's share of the model time.

        Examples
        --------
        >>> PredictStats(model=10.0, read=0.5, total=11.0).summary().split(";")[0]
        'model 10.00 s, total 11.00 s, overhead 10.0 %'
        """
        shares = ", ".join(
            f"{p} {100 * s / self.model:.1f}" for p, s in self.parts().items()
            if p != "model" and self.model > 0
        )  # fmt: skip
        return (
            f"model {self.model:.2f} s, total {self.total:.2f} s, overhead "
            f"{100 * self.overhead:.1f} %; % of model time: {shares}, other "
            f"{100 * self.other / self.model if self.model > 0 else float('nan'):.1f}"
        )
