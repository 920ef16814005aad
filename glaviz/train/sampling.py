"""Random training patches from tiles, with the paper's epoch rule and location inputs.

Every sample is drawn from a generator seeded by ``(seed, epoch, index)``: the same run gives the
same patches whatever the number of workers or processes, and a run resumed mid-epoch continues
with exactly the patches it would have seen.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Literal, overload

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from glaviz.data.location import coordinate_features, region_one_hot
from glaviz.data.tiles import Patch, Tile
from glaviz.train.augment import Augmentation

__all__ = [
    "LocationMode",
    "PatchDataset",
    "ResumableSampler",
    "collate",
    "epoch_batches",
    "location_vector",
]

LocationMode = Literal["none", "region", "coordinates"]


def epoch_batches(
    tiles: Sequence[Tile], *, patch_size: int = 384, batch_size: int = 8, multiplier: int = 4
) -> int:
    """Batches per epoch: (number of ``patch_size`` windows in all tiles // batch) x multiplier.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> epoch_batches([SimpleNamespace(shape=(768, 1152))] * 4)  # 4 x 6 windows
    12
    """
    windows = sum(math.ceil(t.shape[0] / patch_size) * math.ceil(t.shape[1] / patch_size)
                  for t in tiles)  # fmt: skip
    return max(1, windows // batch_size) * multiplier


@overload
def location_vector(
    patch: Patch, mode: Literal["none"], *, unknown_region: bool = False
) -> None: ...


@overload
def location_vector(
    patch: Patch, mode: Literal["region", "coordinates"], *, unknown_region: bool = False
) -> np.ndarray: ...


@overload
def location_vector(
    patch: Patch, mode: LocationMode, *, unknown_region: bool = False
) -> np.ndarray | None: ...


def location_vector(
    patch: Patch,
    mode: LocationMode,
    *,
    unknown_region: bool = False,
) -> np.ndarray | None:
    """The location input of a patch: region one-hot (12) or sin/cos of lat/lon (4), or None.

    Examples
    --------
    >>> import numpy as np
    >>> from glaviz.data.tiles import Patch
    >>> p = Patch({}, np.zeros((1, 1), np.uint8), np.ones((1, 1), bool), "HMA", (90.0, 0.0))
    >>> location_vector(p, "region").argmax(), location_vector(p, "coordinates").round(3)
    (np.int64(5), array([0., 1., 1., 0.], dtype=float32))
    """
    if mode == "none":
        return None
    if mode == "region":
        return region_one_hot(None if unknown_region else patch.region)
    if mode == "coordinates":
        if patch.lonlat is None:
            raise ValueError("coordinate encoding needs tiles with a CRS (patch.lonlat is None)")
        return coordinate_features(*patch.lonlat)
    raise ValueError(f"location mode must be 'none', 'region' or 'coordinates', got {mode!r}")


class PatchDataset(Dataset):
    """Random ``patch_size`` crops from uniformly chosen tiles, augmented, as tensors.

    Parameters
    ----------
    tiles : sequence of Tile
        Training tiles (:class:`glaviz.data.tiles.SceneTile`, benchmark tiles, ...).
    groups : sequence of str
        Input groups fed to the model.
    patch_size : int, default 384
    samples_per_epoch : int
        Length of one epoch in samples (see :func:`epoch_batches`).
    augment : Augmentation, optional
        Per-sample augmentation; ``None`` for none.
    location : {"none", "region", "coordinates"}
        Location input to add (``sample["location"]``).
    unknown_region_p : float, default 0.1
        With region encoding, the probability of replacing the region by "unknown".
    seed : int
        Base seed.

    Examples
    --------
    >>> from glaviz.data import scale, synthetic_scene
    >>> from glaviz.data.tiles import SceneTile
    >>> ds = synthetic_scene(height=80, width=80, seed=0)
    >>> data = PatchDataset([SceneTile(scale(ds), ds["reference_mask"])], groups=["optical"],
    ...                     patch_size=32, samples_per_epoch=4)
    >>> s = data[0]
    >>> s["inputs"]["optical"].shape, s["label"].dtype
    (torch.Size([6, 32, 32]), torch.int64)
    """

    def __init__(
        self,
        tiles: Sequence[Tile],
        *,
        groups: Sequence[str],
        patch_size: int = 384,
        samples_per_epoch: int,
        augment: Augmentation | None = None,
        location: LocationMode = "none",
        unknown_region_p: float = 0.1,
        seed: int = 0,
    ) -> None:
        if not tiles:
            raise ValueError("no training tiles given")
        for t in tiles:
            missing = [g for g in groups if g not in t.groups]
            if missing:
                raise ValueError(f"tile {t.name!r} lacks input group(s) {missing}")
        self.tiles = list(tiles)
        self.groups = tuple(groups)
        self.patch_size = patch_size
        self.samples_per_epoch = int(samples_per_epoch)
        self.augment = augment
        self.location = location
        self.unknown_region_p = unknown_region_p
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose samples are drawn (call before iterating)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.samples_per_epoch

    def _offset(self, extent: int, rng: np.random.Generator) -> int:
        span = extent - self.patch_size
        return int(rng.integers(min(span, 0), max(span, 0) + 1))

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        tile = self.tiles[int(rng.integers(len(self.tiles)))]
        h, w = tile.shape
        patch = tile.read(self._offset(h, rng), self._offset(w, rng), self.patch_size, self.groups)
        if self.augment is not None:
            patch = self.augment(patch, rng)
        sample = {
            "inputs": {
                g: torch.from_numpy(np.ascontiguousarray(a)) for g, a in patch.inputs.items()
            },
            "label": torch.from_numpy(patch.label.astype(np.int64)),
            "valid": torch.from_numpy(np.ascontiguousarray(patch.valid)),
        }
        unknown = self.location == "region" and rng.random() < self.unknown_region_p
        loc = location_vector(patch, self.location, unknown_region=unknown)
        if loc is not None:
            sample["location"] = torch.from_numpy(loc)
        return sample


def collate(samples: list[dict]) -> dict:
    """Stack samples into a batch (``inputs`` stays a dict of groups)."""
    batch = {
        "inputs": {g: torch.stack([s["inputs"][g] for s in samples]) for g in samples[0]["inputs"]},
        "label": torch.stack([s["label"] for s in samples]),
        "valid": torch.stack([s["valid"] for s in samples]),
    }
    if "location" in samples[0]:
        batch["location"] = torch.stack([s["location"] for s in samples])
    return batch


class ResumableSampler(Sampler[int]):
    """Sequential indices of one epoch from ``start``, this process's share under DDP.

    Indices are strided over ranks (``rank, rank + world, ...``) so that processes together see
    the same samples as one process would.
    """

    def __init__(self, length: int, *, start: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.length = length
        self.start = start
        self.rank = rank
        self.world_size = world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start + self.rank, self.length, self.world_size))

    def __len__(self) -> int:
        return len(range(self.start + self.rank, self.length, self.world_size))
