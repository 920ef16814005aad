"""``glaviz evaluate``: pooled pixel scores of a written prediction against reference outlines."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from glaviz.cli._common import (
    TABLE_SUFFIXES,
    add_command,
    check_output,
    markdown_table,
    open_prediction_arg,
    read_reference,
    write_table,
)

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    """Score the prediction; write the table (CSV/markdown) or print it as markdown."""
    import glaviz

    output = None
    if args.output:
        output = check_output(args.output, "--output", TABLE_SUFFIXES, overwrite=args.overwrite)
    reference = read_reference(args)
    prediction = open_prediction_arg(args.prediction)
    table = glaviz.evaluate(
        prediction, reference, tile=args.tile or Path(args.prediction).stem, region=args.region
    )  # fmt: skip
    if output is None:
        print(markdown_table(table))
    else:
        write_table(table, output)
        print(f"wrote {output}")
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``evaluate``."""
    p = add_command(
        sub, "evaluate", help="score a prediction against reference outlines",
        description="Pooled pixel scores (IoU, precision, recall, F1, accuracy, area deviation, "
        "ECE) of a prediction written by `glaviz predict` against reference outlines rasterised "
        "on its grid. Only valid, labelled pixels count. Without --output the table is printed "
        "as markdown.",
        example="glaviz evaluate out/everest.tif --reference 15_rgi60_glacier_outlines.gpkg\n"
        "glaviz evaluate out/everest.zarr --sample everest_landsat7 --output out/scores.csv",
        handler=run,
    )  # fmt: skip
    p.add_argument("prediction", help="--output of glaviz predict: NAME.tif (or a file) or .zarr")
    p.add_argument("--reference", help="reference outlines (.gpkg, .geojson, .shp)")
    p.add_argument("--sample", metavar="NAME", help="use this catalog sample's outlines")
    p.add_argument("--output", help="table.csv or table.md (default: markdown to stdout)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    p.add_argument("--tile", help="name of the prediction's row (default the file's stem)")
    p.add_argument("--region", help="region code (adds region rows)")
    return p
