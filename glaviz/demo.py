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
from glaviz.data import scale
from glaviz.data.samples import sample_scene

__all__ = ["main"]


def main(argv: list[str] | None = None) -> dict:
    """Run the demo and print a summary; returns the summary as a dict."""
    parser = argparse.ArgumentParser(prog="python -m glaviz.demo", description=__doc__)
    parser.add_argument("--sample", default="everest_landsat7")
    parser.add_argument("--output", type=Path, default=Path("demo_output"))
    args = parser.parse_args(argv)
    info = load_catalog().samples[args.sample]
    scene, mask, outlines = sample_scene(args.sample)
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
