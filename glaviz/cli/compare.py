"""``glaviz compare``: glacier-by-glacier comparison with reference outlines."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from glaviz.cli._common import (
    TABLE_SUFFIXES,
    VECTOR_READ_SUFFIXES,
    add_command,
    check_input,
    check_output,
    markdown_table,
    open_prediction_arg,
    read_reference,
    write_table,
)

__all__ = ["add_parser", "run"]


def _predicted_outlines(args: argparse.Namespace) -> Any:
    """Outlines of a prediction (polygonised) or an outlines file as they are."""
    import glaviz

    if Path(args.prediction).suffix.lower() in VECTOR_READ_SUFFIXES:
        from glaviz.data.outlines import read_outlines

        return read_outlines(check_input(args.prediction, "prediction", VECTOR_READ_SUFFIXES))
    prediction = open_prediction_arg(args.prediction)
    return glaviz.to_outlines(prediction, min_area=args.min_area, simplify=args.simplify)


def run(args: argparse.Namespace) -> int:
    """Compare, summarise against expert uncertainty, write or print the tables."""
    import glaviz

    output = summary_out = None
    if args.output:
        output = check_output(args.output, "--output", TABLE_SUFFIXES, overwrite=args.overwrite)
    if args.summary:
        summary_out = check_output(args.summary, "--summary", TABLE_SUFFIXES,
                                   overwrite=args.overwrite)  # fmt: skip
    reference = read_reference(args)
    predicted = _predicted_outlines(args)
    table = glaviz.compare_outlines(
        predicted, reference, debris_column=args.debris_column, spacing=args.spacing
    )  # fmt: skip
    summary = glaviz.summarise_against_experts(table, min_area_km2=args.min_glacier_area)
    unmatched = (
        f"predicted polygons matching no reference glacier: {table.attrs['n_unmatched']} "
        f"({table.attrs['unmatched_area_km2']:.3f} km²)"
    )
    summary_md = "## Against expert uncertainty\n\n" + markdown_table(summary, index=True)
    both_md = f"{summary_md}\n\n{unmatched}\n\n## Per glacier\n\n" + markdown_table(
        table, index=True
    )
    if summary_out is not None:
        write_table(summary, summary_out, index=True)
        print(f"wrote {summary_out}")
    if output is None:
        print(both_md)
        return 0
    write_table(table, output, index=True, markdown=both_md)
    print(f"wrote {output}")
    if summary_out is None:
        print(f"{summary_md}\n\n{unmatched}")
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``compare``."""
    p = add_command(
        sub, "compare", help="compare predicted and reference outlines glacier by glacier",
        description="Per reference glacier: predicted area, area deviation, IoU and boundary "
        "distances (mean, median, p95, Hausdorff, metres), and how many glaciers lie within "
        "the expert uncertainty (5 % clean ice, 30 % debris). The prediction is polygonised "
        "(or give the outlines `glaviz predict --outlines` wrote). A .md --output holds both "
        "tables, a .csv the per-glacier table; without --output both are printed.",
        example="glaviz compare out/everest.tif --reference 15_rgi60_glacier_outlines.gpkg "
        "--output out/glaciers.csv\n"
        "glaviz compare out/everest.gpkg --sample everest_landsat7 --output out/glaciers.md",
        handler=run,
    )  # fmt: skip
    p.add_argument("prediction", help="NAME.tif or .zarr from glaviz predict, or outlines")
    p.add_argument("--reference", help="reference outlines (.gpkg, .geojson, .shp)")
    p.add_argument("--sample", metavar="NAME", help="use this catalog sample's outlines")
    p.add_argument("--output", help="per-glacier table: .csv or .md (default: stdout)")
    p.add_argument("--summary", help="also write the summary table: .csv or .md")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--min-area", type=float, default=0.0, metavar="KM2",
                   help="drop predicted polygons smaller than this (km²)")  # fmt: skip
    p.add_argument("--simplify", type=float, metavar="TOLERANCE",
                   help="simplify predicted outlines (CRS units)")  # fmt: skip
    p.add_argument("--min-glacier-area", type=float, default=0.0, metavar="KM2",
                   help="leave smaller reference glaciers out of the summary")  # fmt: skip
    p.add_argument("--debris-column", help="reference column: debris flag or fraction")
    p.add_argument("--spacing", type=float, default=5.0, metavar="M",
                   help="boundary sampling step in metres (default 5)")  # fmt: skip
    return p
