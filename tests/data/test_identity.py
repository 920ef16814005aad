"""Tests of glaviz.data.identity: what a scene, a file or a tile is, for resuming safely."""

from __future__ import annotations

import json
import os

import numpy as np
import rasterio
from rasterio.transform import from_origin

from glaviz.data import open_scene, scale, synthetic_scene
from glaviz.data.identity import (
    array_identity,
    file_sha256,
    is_registered,
    scene_identity,
    tile_identity,
)
from glaviz.data.tiles import SceneTile


def _dem(path, seed=0, n=64):
    z = np.random.default_rng(seed).uniform(3000, 3100, (n, n)).astype(np.float32)
    profile = {"driver": "GTiff", "width": n, "height": n, "count": 1, "dtype": "float32",
               "crs": "EPSG:32645", "transform": from_origin(478000, 3108140, 30, 30)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(z[None])
    return path


def test_file_hash_is_cached_in_memory_and_on_disk(tmp_path, monkeypatch):
    import hashlib

    import glaviz.data.identity as identity

    path = _dem(tmp_path / "a.tif")
    digest = file_sha256(path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    cache = json.loads(identity._cache_file().read_text())
    assert digest in cache.values()
    identity._MEMORY.clear()
    monkeypatch.setattr(identity, "open", lambda *a, **k: 1 / 0, raising=False)  # not re-read
    assert file_sha256(path) == digest
    monkeypatch.undo()
    _dem(path, seed=1)  # rewritten: another size/mtime, hashed again
    os.utime(path, ns=(1, 1))
    assert file_sha256(path) != digest


def test_a_lazy_scene_is_identified_by_its_files_and_settings(tmp_path):
    path = _dem(tmp_path / "dem.tif")
    a, b = open_scene(dem=path), open_scene(dem=path)
    assert is_registered(a["dem"]) and is_registered(a["valid"])
    assert scene_identity(a, ["dem", "valid"]) == scene_identity(b, ["dem", "valid"])
    sa, sb = scale(a), scale(b)
    assert is_registered(sa["dem"]) and is_registered(sa["valid"])
    assert scene_identity(sa, ["dem", "valid"]) == scene_identity(sb, ["dem", "valid"])
    assert scene_identity(sa, ["dem"]) != scene_identity(a, ["dem"])
    other = open_scene(dem=path, nodata=3000.5)  # other settings: other data
    assert array_identity(other["dem"]) != array_identity(a["dem"])
    edited = a["dem"] * 2  # not what open_scene made: hashed by its values
    assert not is_registered(edited)
    assert array_identity(edited) == array_identity(edited.compute())
    before = array_identity(a["dem"])
    _dem(path, seed=2)  # another acquisition under the same name (a lazy `a` reads it too)
    assert array_identity(open_scene(dem=path)["dem"]) != before


def test_in_memory_scenes_and_tiles_by_content():
    a = synthetic_scene(height=40, width=40, seed=0, groups=["dem"])
    changed = a.copy(deep=True)
    changed["dem"][0, 5, 5] += 1
    assert array_identity(a["dem"]) != array_identity(changed["dem"])
    tile = SceneTile(scale(a), a["reference_mask"], name="t")
    same = SceneTile(scale(a.copy(deep=True)), a["reference_mask"], name="t")
    other = SceneTile(scale(changed), a["reference_mask"], name="t")
    assert tile_identity(tile) == tile_identity(same) != tile_identity(other)
