"""Catalog samples as ready scenes and train/validation/test tiles."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import xarray as xr

from glaviz.catalog import SampleDataset, load_catalog
from glaviz.data.fetch import fetch
from glaviz.data.outlines import rasterize_outlines, read_outlines
from glaviz.data.scaling import scale
from glaviz.data.scene import open_scene
from glaviz.data.tiles import SceneTile, spatial_split

__all__ = ["sample_scene", "sample_tiles"]


def _entry(name: str) -> tuple[SampleDataset, Mapping[str, Any]]:
    """The catalog entry of a sample with a scene, and its scene description."""
    cat = load_catalog()
    if name not in cat.samples:
        raise KeyError(f"unknown sample dataset {name!r}; known: {sorted(cat.samples)}")
    entry = cat.samples[name]
    if entry.scene is None:
        scenes = sorted(n for n, s in cat.samples.items() if s.scene is not None)
        raise ValueError(f"sample {name!r} has no scene description; samples with one: {scenes}")
    return entry, entry.scene


def sample_scene(
    name: str = "everest_landsat7",
) -> tuple[xr.Dataset, xr.DataArray, gpd.GeoDataFrame]:
    """Open a catalog sample as a scene plus its reference mask and outlines.

    Returns
    -------
    tuple
        ``(scene, reference_mask, outlines)``: the unscaled scene Dataset, the rasterised
        outlines (uint8 DataArray on the scene grid) and the outlines GeoDataFrame.

    Examples
    --------
    >>> scene, mask, outlines = sample_scene("everest_landsat7")
    >>> scene["optical"].shape[1:] == mask.shape, len(outlines)
    (True, 86)
    """
    _, description = _entry(name)
    files = fetch(name)
    groups: dict[str, Any] = {
        key: [files[f] for f in ([v] if isinstance(v, str) else v)]
        for key, v in description.items()
        if key not in ("sensor", "outlines", "splits", "split_axis")
    }
    scene = open_scene(**groups, sensor=description["sensor"])
    outlines = read_outlines(files[description["outlines"]])
    return scene, rasterize_outlines(outlines, like=scene), outlines


def sample_tiles(
    name: str = "everest_landsat7", *, bounds: dict[str, Any] | None = None
) -> dict[str, SceneTile]:
    """The sample scene, scaled and cut into its spatial splits (catalog ``splits``).

    Examples
    --------
    >>> tiles = sample_tiles("everest_landsat7")
    >>> {k: t.shape for k, t in tiles.items()}
    {'train': (527, 480), 'val': (128, 480), 'test': (655, 320)}
    """
    entry, description = _entry(name)
    bounds = bounds or dict(description.get("splits") or {})
    if not bounds:
        raise ValueError(f"sample {name!r} defines no splits; pass bounds={{'train': (0, n)}}")
    scene, mask, _ = sample_scene(name)
    tiles = spatial_split(
        scale(scene), mask, bounds=bounds, axis=description.get("split_axis", "x"),
        region=entry.region,
    )  # fmt: skip
    for split, tile in tiles.items():
        tile.name = f"{name}:{split}"
    return tiles
