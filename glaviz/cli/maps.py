"""``glaviz map``: one offline HTML comparison map of a scene, a prediction and outlines."""

from __future__ import annotations

import argparse
from typing import Any

from glaviz.cli._common import (
    add_command,
    add_scene_arguments,
    check_output,
    open_prediction_arg,
    read_reference,
    scene_from_args,
)

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    """Build the map and save it as one self-contained HTML file."""
    import glaviz

    output = check_output(args.output, "--output", (".html", ".htm"), overwrite=args.overwrite)
    scene, sample_outlines = scene_from_args(args)
    prediction = open_prediction_arg(args.prediction, "--prediction") if args.prediction else None
    reference = None if args.no_reference else read_reference(args, sample_outlines, required=False)
    split = None if args.no_split else (tuple(args.split) if args.split else None)
    options: dict[str, Any] = {"layers": args.layers, "max_size": args.max_size}
    if args.no_split or split:
        options["split"] = split
    m = glaviz.compare_map(scene, prediction, reference, **options)
    output.parent.mkdir(parents=True, exist_ok=True)
    glaviz.save_html(m, output, overwrite=args.overwrite, title=args.title)
    layers = ", ".join([*m.image_layers, *m.outline_layers])
    print(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB; layers: {layers})")
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``map``."""
    p = add_command(
        sub, "map", help="save an offline HTML comparison map",
        description="One self-contained HTML file (no network, no kernel needed) with the "
        "scene's layers, the prediction (probability, confidence, error map) and reference and "
        "predicted outlines: layers control, swipe, legend, opacity slider, pixel inspector.",
        example="glaviz map --sample everest_landsat7 --prediction out/everest.tif "
        "--output out/everest.html\n"
        "glaviz map --optical scene_RGB.tif scene_B4.tif --sensor landsat7_display8 \\\n"
        "    --prediction out/scene.zarr --reference outlines.gpkg --output out/scene.html",
        handler=run,
    )  # fmt: skip
    add_scene_arguments(p)
    p.add_argument("--prediction", help="NAME.tif or NAME.zarr written by glaviz predict")
    p.add_argument("--reference", help="reference outlines (default: the sample's)")
    p.add_argument("--no-reference", action="store_true", help="no reference outlines")
    p.add_argument("--output", required=True, help="the .html file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    p.add_argument("--title", default="glaviz", help="page title")
    p.add_argument("--layers", nargs="+", metavar="KEY",
                   help="only these layers: rgb false hillshade slope probability confidence "
                   "low_confidence error co_pol cross_pol coherence thermal")  # fmt: skip
    swipe = p.add_mutually_exclusive_group()
    swipe.add_argument("--split", nargs=2, metavar=("LEFT", "RIGHT"),
                       help="layers either side of the swipe (default rgb error)")  # fmt: skip
    swipe.add_argument("--no-split", action="store_true", help="no swipe control")
    p.add_argument("--max-size", type=int, default=2048, metavar="PX",
                   help="largest side of the display images (default 2048)")  # fmt: skip
    return p
