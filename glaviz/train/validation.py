"""Validation during training: pooled confusion over every window of the validation tiles."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from glaviz.data.tiles import Tile
from glaviz.metrics import Confusion, confusion
from glaviz.models.runtime import autocast
from glaviz.train.sampling import LocationMode, location_vector

__all__ = ["validate"]


@torch.no_grad()
def validate(
    model: nn.Module,
    tiles: Sequence[Tile],
    *,
    groups: Sequence[str],
    patch_size: int,
    batch_size: int = 8,
    location: LocationMode = "none",
    unknown_region: bool = False,
    device: torch.device | str = "cpu",
    precision: str = "32",
    channels_last: bool = False,
) -> Confusion:
    """Pooled glacier confusion of ``model`` over non-overlapping windows covering ``tiles``.

    Only valid, labelled pixels count (the honest pooled IoU, not a per-patch mean).

    Parameters
    ----------
    unknown_region : bool
        With region encoding, feed the "unknown" region instead of the tile's own.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    total = Confusion()
    try:
        for tile in tiles:
            h, w = tile.shape
            corners = [(y, x) for y in range(0, h, patch_size) for x in range(0, w, patch_size)]
            for i in range(0, len(corners), batch_size):
                patches = [
                    tile.read(y, x, patch_size, groups) for y, x in corners[i : i + batch_size]
                ]
                inputs = {
                    g: torch.from_numpy(np.stack([p.inputs[g] for p in patches])).to(device)
                    for g in groups
                }
                if channels_last:
                    inputs = {
                        g: t.contiguous(memory_format=torch.channels_last)
                        for g, t in inputs.items()
                    }
                if location != "none":
                    locs = [
                        location_vector(p, location, unknown_region=unknown_region) for p in patches
                    ]
                    inputs["location"] = torch.from_numpy(np.stack(locs)).to(device)
                with autocast(device, precision):
                    logits = model(inputs)
                pred = logits.argmax(1).cpu().numpy()
                for p, m in zip(patches, pred):
                    total = total + confusion(m, p.label, p.valid)
    finally:
        model.train(was_training)
    return total
