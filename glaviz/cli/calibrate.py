"""``glaviz calibrate``: fit a checkpoint's confidence calibration on a validation scene."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from glaviz.cli._common import (
    CHECKPOINT_SUFFIXES,
    add_command,
    add_compute_arguments,
    add_scene_arguments,
    check_checkpoint,
    check_output,
    read_reference,
    scene_from_args,
    set_threads,
)

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    """Calibrate, store the map in the checkpoint (or a copy), print ECE before and after."""
    import glaviz
    from glaviz._io import atomic_write
    from glaviz.models.checkpoint import load_checkpoint, update_checkpoint_metadata

    checkpoint = check_checkpoint(args.checkpoint)
    output = checkpoint
    if args.output and Path(args.output).resolve() != checkpoint.resolve():
        output = check_output(args.output, "--output", CHECKPOINT_SUFFIXES,
                              overwrite=args.overwrite)  # fmt: skip
    scene, sample_outlines = scene_from_args(args)
    reference = read_reference(args, sample_outlines)
    model = load_checkpoint(checkpoint, scene=scene)
    set_threads(args)
    cal = glaviz.calibrate(
        model, [(scene, reference)], bins=args.bins, tta=args.tta, device=args.device,
        precision=args.precision, batch_size=args.batch_size, progress=not args.quiet,
    )  # fmt: skip

    def write(tmp: Path) -> None:
        if output != checkpoint:
            shutil.copyfile(checkpoint, tmp)
        update_checkpoint_metadata(tmp, calibration=cal.to_dict())

    if output == checkpoint:
        update_checkpoint_metadata(checkpoint, calibration=cal.to_dict())
    else:
        atomic_write(output, write, suffix=".safetensors.tmp")
    print(f"ECE before: {cal.info['ece_before']:.4f}  after: {cal.info['ece_after']:.4f}  "
          f"({int(cal.info.get('n', 0))} pixels, {args.bins} bins)")  # fmt: skip
    print(f"wrote the calibration map into {output}")
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``calibrate``."""
    p = add_command(
        sub, "calibrate", help="calibrate a checkpoint's confidence on a validation scene",
        description="Predict a validation scene, fit the monotone confidence-to-accuracy map "
        "(100 bins, anchors (0,0) and (1,1)) against its reference outlines, print the expected "
        "calibration error before and after, and store the map in the checkpoint (in place, or "
        "in a copy with --output): later predictions report calibrated confidence.",
        example="glaviz calibrate --checkpoint runs/everest/best.safetensors "
        "--sample everest_landsat7\n"
        "glaviz calibrate --checkpoint model.safetensors --optical val_RGB.tif val_B4.tif \\\n"
        "    --sensor landsat7_display8 --reference val_outlines.gpkg "
        "--output model_calibrated.safetensors",
        handler=run,
    )  # fmt: skip
    p.add_argument("--checkpoint", required=True, help="model.safetensors (updated in place)")
    p.add_argument("--output", help="write a calibrated copy instead (.safetensors)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    add_scene_arguments(p)
    p.add_argument("--reference", help="reference outlines (default: the sample's)")
    p.add_argument("--bins", type=int, default=100, help="confidence bins (default 100)")
    add_compute_arguments(p)
    return p
