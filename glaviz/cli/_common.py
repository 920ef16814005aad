"""What the sub-commands share: input groups and scenes, checks of paths, tables, sub-parsers.

Heavy modules (torch, xarray, geopandas) are imported inside the functions, so that
``glaviz --help`` and argument errors stay fast.
"""

from __future__ import annotations

import argparse
import math
import os
import textwrap
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import geopandas as gpd
    import pandas as pd
    import xarray as xr

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "TABLE_SUFFIXES",
    "VECTOR_READ_SUFFIXES",
    "VECTOR_SUFFIXES",
    "UsageError",
    "add_command",
    "add_compute_arguments",
    "add_scene_arguments",
    "check_checkpoint",
    "check_input",
    "check_output",
    "markdown_table",
    "open_prediction_arg",
    "read_reference",
    "sample_outlines",
    "scene_from_args",
    "set_threads",
    "write_table",
]

#: Input groups of :func:`glaviz.open_scene` with their command-line options.
GROUP_OPTIONS: dict[str, str] = {
    "optical": "--optical",
    "dem": "--dem",
    "co_pol_sar": "--co-pol-sar",
    "cross_pol_sar": "--cross-pol-sar",
    "in_sar": "--in-sar",
    "thermal": "--thermal",
}
#: Outline files written by :func:`glaviz.export_outlines` (read: also FlatGeobuf, zip).
VECTOR_SUFFIXES: tuple[str, ...] = (".gpkg", ".geojson", ".json", ".shp")
VECTOR_READ_SUFFIXES = (*VECTOR_SUFFIXES, ".fgb", ".zip", ".gml", ".kml")
TABLE_SUFFIXES: tuple[str, ...] = (".csv", ".md")
CHECKPOINT_SUFFIXES: tuple[str, ...] = (".safetensors",)
_KERAS_SUFFIXES = (".h5", ".hdf5", ".keras")


class UsageError(ValueError):
    """Bad usage or input found by the command line itself (exit status 2)."""


# --------------------------------------------------------------------------- sub-parsers


def add_command(
    sub: Any,
    name: str,
    *,
    help: str,
    description: str,
    example: str,
    handler: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    """One sub-command with a description, an example in its ``--help`` and its handler.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The ``add_subparsers()`` result of the ``glaviz`` parser.
    name, help, description : str
        Command name, one-line help (in ``glaviz --help``) and the text of its own ``--help``.
    example : str
        Shell lines shown under "example:" (indented as given).
    handler : callable
        ``handler(args) -> exit status``.

    Returns
    -------
    argparse.ArgumentParser
        The command's parser, to add arguments to.
    """
    parser = sub.add_parser(
        name,
        help=help,
        description=textwrap.fill(description, width=88, break_on_hyphens=False),
        epilog="example:\n" + "\n".join(f"  {line}" for line in example.strip().splitlines()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=handler)
    return parser


def add_scene_arguments(parser: argparse.ArgumentParser) -> None:
    """``--sample`` or one option per input group, ``--sensor``, ``--sensors``, ``--metadata``."""
    g = parser.add_argument_group(
        "scene", "a catalog sample, or the scene's files per input group (as glaviz.open_scene)"
    )
    g.add_argument("--sample", metavar="NAME", help="catalog sample, e.g. everest_landsat7")
    for group, option in GROUP_OPTIONS.items():
        g.add_argument(
            option, nargs="+", metavar="FILE", dest=group,
            help=f"{group} file(s) in the sensor's band order, or BAND=FILE pairs",
        )  # fmt: skip
    g.add_argument("--sensor", help="sensor of the optical/thermal files, e.g. landsat7_display8")
    g.add_argument(
        "--sensors", nargs="+", metavar="GROUP=SENSOR",
        help="sensors of other groups, e.g. co_pol_sar=sentinel1_sigma0_db",
    )  # fmt: skip
    g.add_argument("--metadata", metavar="FILE", help="Landsat *_MTL.txt (sun elevation)")


def add_compute_arguments(parser: argparse.ArgumentParser, *, tta: bool = True) -> None:
    """Inference settings shared by predict and calibrate."""
    g = parser.add_argument_group("inference")
    if tta:
        g.add_argument("--tta", action="store_true", help="8-fold test-time augmentation")
    g.add_argument("--device", help="cpu, cuda, cuda:1 (default: CUDA when available)")
    g.add_argument(
        "--precision", choices=["32", "bf16", "16"],
        help="default float32 on CPUs, bf16 autocast on CUDA",
    )  # fmt: skip
    g.add_argument("--batch-size", type=int, help="windows per pass (default 2 CPU, 8 CUDA)")
    g.add_argument("--threads", type=int, help="torch CPU threads")
    g.add_argument("--quiet", action="store_true", help="no progress bars")


def set_threads(args: argparse.Namespace) -> None:
    """Apply ``--threads``."""
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)


# --------------------------------------------------------------------------- paths


def _suffix(path: Path) -> str:
    return path.suffix.lower()


def check_input(path: str | os.PathLike, option: str, suffixes: Sequence[str] = ()) -> Path:
    """An existing input file (or folder) with one of ``suffixes`` (any when empty).

    Raises
    ------
    UsageError
        Wrong extension, or nothing at ``path``; the message names the option and the file.

    Examples
    --------
    >>> check_input("table.txt", "--reference", (".gpkg",))
    Traceback (most recent call last):
    ...
    glaviz.cli._common.UsageError: --reference 'table.txt': expected a .gpkg file
    """
    path = Path(path)
    if suffixes and _suffix(path) not in suffixes:
        raise UsageError(f"{option} {str(path)!r}: expected a {' or '.join(suffixes)} file")
    if not path.exists():
        raise UsageError(f"{option} {str(path)!r}: no such file; check the path")
    return path


def check_output(
    path: str | os.PathLike, option: str, suffixes: Sequence[str], *, overwrite: bool
) -> Path:
    """An output path with one of ``suffixes`` that may be written (``--overwrite``).

    Raises
    ------
    UsageError
        Wrong extension, or the file exists and ``overwrite`` is False.
    """
    path = Path(path)
    if _suffix(path) not in suffixes:
        raise UsageError(
            f"{option} {str(path)!r}: cannot tell the format; give a name ending in "
            + " or ".join(suffixes)
        )
    refuse_existing([path], option, overwrite=overwrite)
    return path


def refuse_existing(paths: Iterable[Path], option: str, *, overwrite: bool) -> None:
    """Raise :class:`UsageError` when one of ``paths`` exists and ``overwrite`` is False."""
    existing = [str(p) for p in paths if p.exists() or p.is_symlink()]
    if existing and not overwrite:
        what = existing[0]
        if len(existing) > 1:
            what += f" (and {len(existing) - 1} more)"
        raise UsageError(
            f"{option}: {what} exists; pass --overwrite to replace it or choose another path"
        )


def check_checkpoint(path: str | os.PathLike, option: str = "--checkpoint") -> Path:
    """An existing glaviz checkpoint; Keras files are sent to ``glaviz import-keras``."""
    path = Path(path)
    if _suffix(path) in _KERAS_SUFFIXES:
        raise UsageError(
            f"{option} {str(path)!r} is a Keras weight file; convert it first with "
            f"`glaviz import-keras {path} --output {path.with_suffix('.safetensors')}`"
        )
    if not path.is_file():
        raise UsageError(
            f"{option} {str(path)!r}: no such file; give a .safetensors checkpoint written by "
            "`glaviz train`, glaviz.save_checkpoint or `glaviz import-keras`"
        )
    return path


# --------------------------------------------------------------------------- scenes and data


def _source(files: list[str], option: str) -> Any:
    """One file, a list of files, or ``{band: file}`` from ``BAND=FILE`` items."""
    pairs = ["=" in f and not Path(f).exists() for f in files]
    if any(pairs):
        if not all(pairs):
            raise UsageError(f"{option}: give either files or BAND=FILE pairs, not both")
        return dict(f.split("=", 1) for f in files)
    return files[0] if len(files) == 1 else list(files)


def scene_from_args(args: argparse.Namespace) -> tuple[xr.Dataset, gpd.GeoDataFrame | None]:
    """The scene of ``--sample`` or the group options, and the sample's outlines (or None)."""
    given = {g: getattr(args, g) for g in GROUP_OPTIONS if getattr(args, g, None)}
    if args.sample and given:
        raise UsageError(
            f"give either --sample or scene files ({', '.join(GROUP_OPTIONS[g] for g in given)}), "
            "not both"
        )
    if args.sample:
        from glaviz.data.samples import sample_scene

        scene, _, outlines = sample_scene(args.sample)
        return scene, outlines
    if not given:
        raise UsageError(
            "no scene: give its files (--optical FILE... --sensor NAME, --dem FILE, ...) or a "
            "catalog sample (--sample everest_landsat7)"
        )
    from glaviz.data.scene import open_scene

    sensors = None
    if args.sensors:
        bad = [s for s in args.sensors if "=" not in s]
        if bad:
            raise UsageError(f"--sensors {bad[0]!r}: write GROUP=SENSOR, e.g. dem=dem")
        sensors = dict(s.split("=", 1) for s in args.sensors)
    for group in ("optical", "thermal"):
        if group in given and args.sensor is None and group not in (sensors or {}):
            from glaviz.catalog import load_catalog

            raise UsageError(
                f"{GROUP_OPTIONS[group]} needs the sensor of its files: add --sensor NAME "
                f"(known: {', '.join(sorted(load_catalog().sensors))})"
            )
    sources = {g: _source(files, GROUP_OPTIONS[g]) for g, files in given.items()}
    scene = open_scene(
        **sources, sensor=args.sensor, sensors=sensors, metadata=args.metadata
    )  # fmt: skip
    return scene, None


def sample_outlines(name: str) -> gpd.GeoDataFrame:
    """The reference outlines of a catalog sample (without opening its scene)."""
    from glaviz.catalog import load_catalog
    from glaviz.data.fetch import fetch
    from glaviz.data.outlines import read_outlines

    samples = load_catalog().samples
    entry = samples.get(name)
    outlines = (entry.scene or {}).get("outlines") if entry is not None else None
    if not outlines:
        known = sorted(n for n, s in samples.items() if (s.scene or {}).get("outlines"))
        raise UsageError(f"--sample {name!r}: no sample with reference outlines; known: {known}")
    return read_outlines(fetch(name, outlines))


def read_reference(
    args: argparse.Namespace, sample: gpd.GeoDataFrame | None = None, *, required: bool = True
) -> gpd.GeoDataFrame | None:
    """``--reference`` outlines, else the sample's; :class:`UsageError` when required and none."""
    if args.reference:
        from glaviz.data.outlines import read_outlines

        return read_outlines(check_input(args.reference, "--reference", VECTOR_READ_SUFFIXES))
    if sample is None and getattr(args, "sample", None):
        sample = sample_outlines(args.sample)
    if sample is None and required:
        raise UsageError(
            "no reference: give --reference outlines.gpkg (RGI/GLIMS outlines) or --sample NAME"
        )
    return sample


def open_prediction_arg(path: str | os.PathLike, option: str = "prediction") -> xr.Dataset:
    """:func:`glaviz.inference.open_prediction` with a command-line message when absent."""
    from glaviz.inference.sinks import open_prediction

    try:
        return open_prediction(path)
    except FileNotFoundError as exc:
        raise UsageError(f"{option}: {exc}") from None


# --------------------------------------------------------------------------- tables


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    try:
        import pandas as pd

        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(table: pd.DataFrame, *, index: bool = False) -> str:
    """A DataFrame as a GitHub-flavoured markdown table (floats to 4 significant digits).

    Columns without any value are left out.

    Examples
    --------
    >>> import pandas as pd
    >>> print(markdown_table(pd.DataFrame({"name": ["a"], "iou": [2 / 3], "x": [None]})))
    | name | iou |
    |:---|---:|
    | a | 0.6667 |
    """
    import pandas as pd

    df = table.rename_axis(table.index.name or "").reset_index() if index else table
    df = df.loc[:, [c for c in df.columns if not df[c].isna().all()]]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and df[c].dtype != bool for c in df]
    lines = [
        "| " + " | ".join(str(c) for c in df.columns) + " |",
        "|" + "|".join("---:" if n else ":---" for n in numeric) + "|",
    ]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


def write_table(
    table: pd.DataFrame, path: Path, *, index: bool = False, markdown: str | None = None
) -> Path:
    """Write ``table`` as CSV (full precision) or markdown (``markdown`` text if given)."""
    from glaviz._io import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    if _suffix(path) == ".csv":
        atomic_write(path, lambda tmp: table.to_csv(tmp, index=index), suffix=".csv.tmp")
    else:
        text = (markdown if markdown is not None else markdown_table(table, index=index)) + "\n"
        atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), suffix=".md.tmp")
    return path
