"""``glaviz predict``: map a scene with a checkpoint; GeoTIFFs or Zarr, and outlines."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from glaviz.cli._common import (
    VECTOR_SUFFIXES,
    UsageError,
    add_command,
    add_compute_arguments,
    add_scene_arguments,
    check_checkpoint,
    check_output,
    refuse_existing,
    scene_from_args,
    set_threads,
)

__all__ = ["add_parser", "prediction_files", "run"]

_VARIABLES = ("glacier_probability", "glacier_mask", "confidence")


def prediction_files(output: Path) -> list[Path]:
    """The files (or the store) :func:`glaviz.predict` writes for ``output``.

    Examples
    --------
    >>> [p.name for p in prediction_files(Path("out/everest.tif"))]
    ['everest_glacier_probability.tif', 'everest_glacier_mask.tif', 'everest_confidence.tif']
    >>> [p.name for p in prediction_files(Path("out/everest.zarr"))]
    ['everest.zarr']
    """
    if output.suffix.lower() == ".zarr":
        return [output]
    stem = output.with_suffix("") if output.suffix.lower() in (".tif", ".tiff") else output
    return [stem.parent / f"{stem.name}_{v}.tif" for v in _VARIABLES]


def _check_raster_output(path: str, overwrite: bool) -> Path:
    output = Path(path)
    if output.suffix.lower() not in ("", ".tif", ".tiff", ".zarr"):
        raise UsageError(
            f"--output {path!r}: cannot tell the format; give out/NAME.tif (three GeoTIFFs "
            "NAME_glacier_mask.tif, ...) or out/NAME.zarr (one Zarr store)"
        )
    refuse_existing(prediction_files(output), "--output", overwrite=overwrite)
    return output


def run(args: argparse.Namespace) -> int:
    """Predict, write the rasters and the outlines, print what was written."""
    import glaviz
    from glaviz.models.checkpoint import load_checkpoint

    output = _check_raster_output(args.output, args.overwrite) if args.output else None
    outlines = None
    if args.outlines:
        outlines = check_output(args.outlines, "--outlines", VECTOR_SUFFIXES,
                                overwrite=args.overwrite)  # fmt: skip
    if output is None and outlines is None:
        raise UsageError(
            "nothing to write: give --output out/NAME.tif (or .zarr) and/or --outlines "
            "out/NAME.gpkg"
        )
    checkpoint = check_checkpoint(args.checkpoint)
    scene, _ = scene_from_args(args)
    model = load_checkpoint(checkpoint, scene=scene)
    set_threads(args)
    prediction = glaviz.predict(
        model, scene, output=output, overwrite=args.overwrite, resume=args.resume,
        tta=args.tta, median_filter=args.median_filter, location=args.region,
        window=args.window, stride=args.stride, batch_size=args.batch_size,
        device=args.device, precision=args.precision, progress=not args.quiet,
    )  # fmt: skip
    if output is not None:
        for path in prediction_files(output):
            print(f"wrote {path}")
    mask = prediction["glacier_mask"].values
    n_valid = int((mask != 255).sum())
    n_glacier = int((mask == 1).sum())
    share = f" ({100 * n_glacier / n_valid:.1f} %)" if n_valid else ""
    print(f"glacier pixels: {n_glacier} of {n_valid} valid{share}")
    if outlines is not None:
        gdf = glaviz.to_outlines(prediction, min_area=args.min_area, simplify=args.simplify)
        outlines.parent.mkdir(parents=True, exist_ok=True)
        glaviz.export_outlines(gdf, outlines, overwrite=args.overwrite)
        print(f"wrote {outlines} ({len(gdf)} polygons, {gdf['area_km2'].sum():.3f} km²)")
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``predict``."""
    p = add_command(
        sub, "predict", help="map glaciers in a scene with a checkpoint",
        description="Map a whole scene with a checkpoint (sliding windows, Gaussian blending): "
        "GeoTIFFs <stem>_glacier_probability/_glacier_mask/_confidence.tif or one Zarr store, "
        "written block by block (a killed run resumes), and the glacier outlines.",
        example="glaviz predict --sample everest_landsat7 --checkpoint model.safetensors \\\n"
        "    --output out/everest.tif --outlines out/everest.gpkg --min-area 0.01\n"
        "glaviz predict --optical B02=T32TPS_B02.jp2 B03=T32TPS_B03.jp2 B04=T32TPS_B04.jp2 \\\n"
        "    B08=T32TPS_B08.jp2 B11=T32TPS_B11.jp2 B12=T32TPS_B12.jp2 --sensor sentinel2_l1c \\\n"
        "    --dem dem.tif --checkpoint model.safetensors --output out/scene.zarr --tta",
        handler=run,
    )  # fmt: skip
    p.add_argument("--checkpoint", required=True, help="model.safetensors")
    add_scene_arguments(p)
    out = p.add_argument_group("outputs")
    out.add_argument("--output", help="out/NAME.tif (three GeoTIFFs) or out/NAME.zarr")
    out.add_argument("--outlines", help="glacier outlines: .gpkg, .geojson or .shp")
    out.add_argument("--min-area", type=float, default=0.0, metavar="KM2",
                     help="drop outline polygons smaller than this (km²; RGI: 0.01)")  # fmt: skip
    out.add_argument("--simplify", type=float, metavar="TOLERANCE",
                     help="simplify outlines (Douglas-Peucker, in CRS units)")  # fmt: skip
    out.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    out.add_argument(
        "--resume", action=argparse.BooleanOptionalAction, default=True,
        help="continue a killed run without recomputing finished blocks (default: yes)",
    )  # fmt: skip
    add_compute_arguments(p)
    g = p.add_argument_group("windows")
    g.add_argument("--window", type=int, help="window side (default the model's tile size)")
    g.add_argument("--stride", type=int, help="window step (default half the window)")
    g.add_argument("--median-filter", action="store_true", help="3x3 median filter on the mask")
    g.add_argument("--region", help="region code for region-encoded models (default unknown)")
    return p
