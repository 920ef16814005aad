"""Tests of patch sampling: epoch rule, determinism, location inputs, DDP index sharding."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from glaviz.data import scale, synthetic_scene
from glaviz.data.tiles import SceneTile
from glaviz.train.sampling import (
    PatchDataset,
    ResumableSampler,
    collate,
    epoch_batches,
    location_vector,
)


@pytest.fixture(scope="module")
def tile():
    ds = synthetic_scene(height=70, width=90, seed=4)
    return SceneTile(scale(ds), ds["reference_mask"], name="t", region="ALP")


def test_epoch_rule():
    tiles = [SimpleNamespace(shape=(768, 768))] * 3 + [SimpleNamespace(shape=(384, 1152))]
    assert epoch_batches(tiles) == (12 + 3) // 8 * 4
    assert epoch_batches([SimpleNamespace(shape=(100, 100))]) == 4  # at least one batch
    assert epoch_batches(tiles, batch_size=5, multiplier=2) == 6


def test_samples_deterministic_per_epoch_and_index(tile):
    data = PatchDataset([tile], groups=["optical", "dem"], patch_size=32, samples_per_epoch=8)
    a, b = data[3], data[3]
    torch.testing.assert_close(a["inputs"]["optical"], b["inputs"]["optical"])
    data.set_epoch(1)
    c = data[3]
    assert not torch.equal(a["inputs"]["optical"], c["inputs"]["optical"])
    assert set(a["inputs"]) == {"optical", "dem"} and a["label"].shape == (32, 32)
    batch = collate([data[i] for i in range(4)])
    assert batch["inputs"]["dem"].shape == (4, 2, 32, 32) and batch["label"].shape == (4, 32, 32)


def test_small_tiles_are_padded_not_refused(tile):
    data = PatchDataset([tile], groups=["optical"], patch_size=128, samples_per_epoch=2)
    s = data[0]
    assert s["inputs"]["optical"].shape == (6, 128, 128)
    assert (s["label"] == 255).any() and not s["valid"].all()


def test_region_encoding_with_unknown_probability(tile):
    data = PatchDataset([tile], groups=["optical"], patch_size=16, samples_per_epoch=2000,
                        location="region", unknown_region_p=0.1)  # fmt: skip
    slots = np.array([int(data[i]["location"].argmax()) for i in range(2000)])
    assert set(slots) == {0, 11}  # ALP or unknown
    assert np.mean(slots == 11) == pytest.approx(0.1, abs=0.025)


def test_coordinate_encoding_radians(tile):
    p = tile.read(10, 10, 20)
    lon, lat = p.lonlat
    vec = location_vector(p, "coordinates")
    np.testing.assert_allclose(
        vec, [np.sin(np.radians(lat)), np.cos(np.radians(lat)),
              np.sin(np.radians(lon)), np.cos(np.radians(lon))], rtol=1e-6,
    )  # fmt: skip
    assert 27 < lat < 29 and 86 < lon < 88  # the synthetic grid sits over Everest
    with pytest.raises(ValueError, match="location mode"):
        location_vector(p, "latlon")


def test_resumable_sampler_shards_and_resumes():
    full = list(ResumableSampler(20))
    shards = [list(ResumableSampler(20, rank=r, world_size=2)) for r in range(2)]
    assert sorted(shards[0] + shards[1]) == full
    assert list(ResumableSampler(20, start=8)) == full[8:]
    assert len(ResumableSampler(20, start=8, rank=1, world_size=2)) == 6


def test_missing_group_is_an_error(tile):
    with pytest.raises(ValueError, match="lacks input group"):
        PatchDataset([tile], groups=["lidar"], patch_size=16, samples_per_epoch=1)
