"""The paper's augmentations, applied per sample to every input group and the label alike.

Geometric (all groups, label and valid mask): vertical and horizontal flips, rot90, and
crop-and-rescale (a random square of 80-100 % of the side, nearest-neighbour back to full size).
Photometric (each group independently, input values only): per-channel gamma, occlusion (a zeroed
rectangle in all channels of the group) and noise (a constant per-channel shift plus per-pixel
Gaussian noise). Label smoothing is part of the loss; its strength is carried here so that one
object switches every augmentation by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from glaviz.data.tiles import Patch

__all__ = ["AUGMENTATIONS", "Augmentation"]

#: Names of the switchable augmentations, in the order they are applied.
AUGMENTATIONS = (
    "vflip",
    "hflip",
    "rot90",
    "crop_rescale",
    "gamma",
    "occlusion",
    "noise",
    "label_smoothing",
)


@dataclass(frozen=True)
class Augmentation:
    """Probabilities (and strengths) of each augmentation; 0 switches one off.

    Defaults are the paper's recipe (../shared/GLAVITU.md). Use :meth:`only` / :meth:`without`
    to switch augmentations by name, :meth:`none` for none at all.

    Examples
    --------
    >>> aug = Augmentation().without("occlusion", "noise")
    >>> aug.occlusion, aug.vflip
    (0.0, 0.5)
    >>> Augmentation.only("hflip").enabled
    ('hflip',)
    """

    vflip: float = 0.5
    hflip: float = 0.5
    rot90: float = 0.75
    crop_rescale: float = 0.5
    gamma: float = 0.5
    occlusion: float = 0.5
    noise: float = 0.5
    label_smoothing: float = 0.1
    crop_min_fraction: float = 0.8
    gamma_range: tuple[float, float] = (0.8, 1.2)
    occlusion_max_fraction: float = 0.5  # 192 px of a 384 window
    noise_shift_sigma: float = 0.025
    noise_pixel_sigma: float = 0.005

    @classmethod
    def none(cls) -> Augmentation:
        """No augmentation and no label smoothing."""
        return cls.only()

    @classmethod
    def only(cls, *names: str) -> Augmentation:
        """Only the named augmentations, at the paper's probabilities."""
        _check(names)
        settings: dict[str, Any] = {
            n: getattr(cls(), n) if n in names else 0.0 for n in AUGMENTATIONS
        }
        return cls(**settings)

    def without(self, *names: str) -> Augmentation:
        """This augmentation with the named ones switched off."""
        _check(names)
        off: dict[str, Any] = {n: 0.0 for n in names}
        return replace(self, **off)

    @property
    def enabled(self) -> tuple[str, ...]:
        """Names of the augmentations that are on."""
        return tuple(n for n in AUGMENTATIONS if getattr(self, n) > 0)

    def to_dict(self) -> dict:
        """Plain dict (for checkpoint provenance)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __call__(self, patch: Patch, rng: np.random.Generator) -> Patch:
        """Augment ``patch`` with random draws from ``rng`` (a new Patch; inputs not modified)."""
        arrays = dict(patch.inputs)
        label, valid = patch.label, patch.valid
        size = label.shape[-1]

        def geo(fn: Callable[[np.ndarray], np.ndarray]) -> None:
            nonlocal arrays, label, valid
            arrays = {g: fn(a) for g, a in arrays.items()}
            label, valid = fn(label), fn(valid)

        if rng.random() < self.vflip:
            geo(lambda a: np.flip(a, axis=-2))
        if rng.random() < self.hflip:
            geo(lambda a: np.flip(a, axis=-1))
        if rng.random() < self.rot90:
            k = int(rng.integers(1, 4))
            geo(lambda a: np.rot90(a, k, axes=(-2, -1)))
        if rng.random() < self.crop_rescale:
            side = int(round(size * rng.uniform(self.crop_min_fraction, 1.0)))
            y0, x0 = (int(v) for v in rng.integers(0, size - side + 1, 2))
            idx = y0 + (np.arange(size) * side) // size
            idy = x0 + (np.arange(size) * side) // size
            geo(lambda a: a[..., idx[:, None], idy[None, :]])
        out = {}
        for group, a in arrays.items():
            a = np.array(a, dtype=np.float32, copy=True)
            if rng.random() < self.gamma:
                g = rng.uniform(*self.gamma_range, size=(a.shape[0], 1, 1)).astype(np.float32)
                a = np.power(np.clip(a, 0, None), g)
            if rng.random() < self.occlusion:
                hmax = max(1, int(size * self.occlusion_max_fraction))
                h, w = (int(v) for v in rng.integers(1, hmax + 1, 2))
                y0, x0 = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
                a[:, y0 : y0 + h, x0 : x0 + w] = 0
            if rng.random() < self.noise:
                shift = rng.normal(0, self.noise_shift_sigma, (a.shape[0], 1, 1))
                pixel = rng.normal(0, self.noise_pixel_sigma, a.shape)
                a = a + np.where(valid, shift + pixel, 0).astype(np.float32)
            out[group] = a
        return Patch(
            out,
            np.ascontiguousarray(label),
            np.ascontiguousarray(valid),
            patch.region,
            patch.lonlat,
        )


def _check(names: Iterable[str]) -> None:
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown augmentation(s) {unknown}; known: {list(AUGMENTATIONS)}")
