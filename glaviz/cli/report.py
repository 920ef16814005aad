"""``glaviz report``: the parameterised report as one offline HTML file, or one per region."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path
from typing import Any

from glaviz.cli._common import UsageError, add_command, check_output

__all__ = ["add_parser", "parse_param", "run"]


def parse_param(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` with VALUE a Python literal (number, True, list...) or else a string.

    Examples
    --------
    >>> parse_param("train_epochs=3"), parse_param("region=Khumbu West")
    (('train_epochs', 3), ('region', 'Khumbu West'))
    >>> parse_param("optical_files=['a.tif', 'b.tif']")
    ('optical_files', ['a.tif', 'b.tif'])
    """
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise UsageError(f"--param {text!r}: write NAME=VALUE, e.g. --param region=Everest")
    try:
        parsed: Any = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    return name.strip(), parsed


def run(args: argparse.Namespace) -> int:
    """One report (``--param``) or one per region of a YAML file (``--config``)."""
    from glaviz.reports import report, report_many

    if args.config:
        if args.param:
            raise UsageError("give --param values in the --config file's 'defaults:' instead")
        config = Path(args.config)
        if not config.exists():
            raise FileNotFoundError(f"--config {str(config)!r} does not exist")
        out = Path(args.output or "reports")
        table = report_many(
            config, out, jobs=args.jobs, scheduler=args.scheduler, overwrite=args.overwrite
        )
        for row in table.to_dict("records"):
            note = f"IoU {row['iou']:.3f}" if row["status"] == "ok" and "iou" in row else ""
            if row["status"] != "ok":
                note = row.get("error", "")
            print(f"{row['region']}: {row['status']} {note}".rstrip())
        print(f"wrote {out / 'index.html'} and {out / 'summary.csv'}")
        return 0 if (table["status"] == "ok").all() else 1
    output = check_output(
        args.output or "report.html", "--output", (".html", ".htm"), overwrite=args.overwrite
    )
    params = dict(parse_param(p) for p in args.param or [])
    path = report(
        params, output, notebook=args.notebook, overwrite=args.overwrite, show_code=args.show_code
    )
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) and {path.with_suffix('.ipynb')}")
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``report``."""
    p = add_command(
        sub, "report", help="run the report notebook into one offline HTML file",
        description="Runs notebooks/report.ipynb through papermill with your parameters and "
        "writes ONE HTML file that opens offline (map, metrics, plots, per-glacier table, "
        "provenance); the executed notebook is kept beside it. With --config, one report per "
        "region of a YAML file, in parallel on dask.distributed, plus index.html and "
        "summary.csv; a failing region is listed with its error and does not stop the others.",
        example="glaviz report --param region=Everest --param train_epochs=10 "
        "--output out/everest.html\n"
        "glaviz report --param sample=\"''\" --param \"optical_files=['s2_B02.tif', ...]\" "
        "--param sensor=sentinel2_l1c \\\n    --param reference_path=rgi.gpkg --param "
        "checkpoint=model.safetensors --output out/region.html\n"
        "glaviz report --config regions.yml --jobs 4 --output reports/",
        handler=run,
    )  # fmt: skip
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="a report parameter (repeatable): a literal or a string")  # fmt: skip
    p.add_argument("--config", help="YAML file: a list of regions (or defaults: + regions:)")
    p.add_argument("--output", help="the .html file (default report.html), or with --config "
                   "the folder (default reports/)")  # fmt: skip
    p.add_argument("--jobs", type=int, default=1, help="parallel reports (--config)")
    p.add_argument("--scheduler", help="address of a dask scheduler instead of a local cluster")
    p.add_argument("--notebook", default="report", help="the notebook (default: report)")
    p.add_argument("--show-code", action="store_true", help="keep the code cells in the HTML")
    p.add_argument("--overwrite", action="store_true", help="replace existing reports")
    return p
