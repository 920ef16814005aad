"""The demo behind ``make demo``: the main job on the embedded Everest sample.

Stages so far: fetch the sample (mirror or download), open and scale the scene, rasterise the RGI
outlines and print a summary. Training, scene mapping and the HTML report join as they land.

Run with ``python -m glaviz.demo [--output DIR]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from glaviz.catalog import load_catalog
from glaviz.data import fetch, open_scene, rasterize_outlines, read_outlines, scale

__all__ = ["load_sample_scene", "main"]


def load_sample_scene(name: str = "everest_landsat7"):
    """Open a catalog sample as a scene plus its reference mask and outlines.

    Returns
    -------
    tuple
        ``(scene, reference_mask, outlines)``: the unscaled scene Dataset, the rasterised
        outlines (uint8 DataArray) and the outlines GeoDataFrame.

    Examples
    --------
    >>> scene, mask, outlines = load_sample_scene()
    >>> scene["optical"].shape[1:] == mask.shape
    True
    """
    entry = load_catalog().samples[name]
    if entry.scene is None:
        raise ValueError(f"sample {name!r} has no scene description in the catalog")
    files = fetch(name)
    groups = {
        key: [files[f] for f in ([v] if isinstance(v, str) else v)]
        for key, v in entry.scene.items()
        if key not in ("sensor", "outlines")
    }
    scene = open_scene(**groups, sensor=entry.scene["sensor"])
    outlines = read_outlines(files[entry.scene["outlines"]])
    mask = rasterize_outlines(outlines, like=scene)
    return scene, mask, outlines


def main(argv: list[str] | None = None) -> dict:
    """Run the demo and print a summary; returns the summary as a dict."""
    parser = argparse.ArgumentParser(prog="python -m glaviz.demo", description=__doc__)
    parser.add_argument("--sample", default="everest_landsat7")
    parser.add_argument("--output", type=Path, default=Path("demo_output"))
    args = parser.parse_args(argv)
    info = load_catalog().samples[args.sample]
    scene, mask, outlines = load_sample_scene(args.sample)
    scaled = scale(scene)
    valid = scaled["valid"].values
    optical = scaled["optical"].values
    summary = {
        "sample": args.sample,
        "size_px": [int(scene.sizes["y"]), int(scene.sizes["x"])],
        "crs": str(scene.rio.crs),
        "pixel_size_m": float(abs(scene.rio.resolution()[0])),
        "groups": {g: list(map(str, scene[f"{g}_band"].values)) for g in ("optical",)},
        "valid_fraction": round(float(valid.mean()), 4),
        "scaled_optical_range": [round(float(optical.min()), 4), round(float(optical.max()), 4)],
        "outlines": int(len(outlines)),
        "reference_glacier_fraction": round(float(np.asarray(mask)[valid].mean()), 4),
        "licence": info.licence,
    }
    print(f"glaviz demo on {args.sample}: {info.description}")
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":  # pragma: no cover
    main()
