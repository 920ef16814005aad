"""The demo behind ``make demo``: map the glaciers of the Everest sample and write a report.

Fetches the Everest Landsat 7 sample (mirror or download), trains a small GlaViTU on its
western part for a few minutes with the CPU recipe (progress bars), calibrates its confidence on
the validation strip (:func:`glaviz.calibrate`), maps the whole scene,
scores it against the RGI 6.0 outlines and writes ``demo_output/report.html``: one offline
HTML file with the comparison map, metrics and plots. Prints the path and the headline metrics.

Run with ``python -m glaviz.demo [--output DIR] [--epochs N] [--steps N] [--overwrite]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from glaviz.catalog import load_catalog
from glaviz.data.samples import sample_tiles
from glaviz.inference.calibrate import calibrate
from glaviz.models.checkpoint import load_checkpoint
from glaviz.reports import report
from glaviz.train.presets import fit_small, small_glavitu

__all__ = ["main"]


def main(argv: list[str] | None = None) -> dict:
    """Run the demo; returns the headline metrics and paths as a dict."""
    parser = argparse.ArgumentParser(prog="python -m glaviz.demo", description=__doc__)
    parser.add_argument("--sample", default="everest_landsat7")
    parser.add_argument("--output", type=Path, default=Path("demo_output"))
    parser.add_argument("--epochs", type=int, default=15, help="training epochs (default 15)")
    parser.add_argument("--steps", type=int, default=40, help="batches per epoch (default 40)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier demo")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    info = load_catalog().samples[args.sample]
    print(f"glaviz demo on {args.sample}: {info.description} ({info.licence})")
    out: Path = args.output
    html = out / "report.html"
    if html.exists() and not args.overwrite:
        raise SystemExit(f"{html} exists; run with --overwrite (make demo DEMO_ARGS=--overwrite)")

    tiles = sample_tiles(args.sample)
    channels = {g: int(tiles["train"].scene[f"{g}_band"].size) for g in tiles["train"].groups}
    torch.manual_seed(args.seed)
    model = small_glavitu(channels)
    print(
        f"1/3 training a small GlaViTU ({sum(p.numel() for p in model.parameters()):,} "
        f"parameters) on the western part, {args.epochs} epochs x {args.steps} batches"
    )
    fit_small(
        model,
        [tiles["train"]],
        [tiles["val"]],
        epochs=args.epochs,
        steps_per_epoch=args.steps,
        checkpoint_dir=out / "model",
        seed=args.seed,
        live_plot=False,
        resume=False,
    )
    trained = time.perf_counter() - started
    best = out / "model" / "best.safetensors"
    print(f"   trained in {trained / 60:.1f} min; 2/3 calibrating the confidence on the "
          "validation strip")  # fmt: skip
    calibrate(load_checkpoint(best), (tiles["val"].scene, tiles["val"].mask), checkpoint=best,
              progress=False)  # fmt: skip
    print("3/3 mapping the scene and writing the report")
    report(
        {
            "region": "Everest (demo)",
            "sample": args.sample,
            "checkpoint": str(best),
            "seed": args.seed,
        },
        html,
        overwrite=args.overwrite,
    )
    summary = json.loads((out / "report_files" / "summary.json").read_text())
    result = {
        "report": str(html),
        "report_mb": round(html.stat().st_size / 1e6, 1),
        **{k: round(v, 4) for k, v in summary.items()},
        "train_minutes": round(trained / 60, 2),
        "total_minutes": round((time.perf_counter() - started) / 60, 2),
    }
    print(
        f"\nReport: {html.resolve()} ({result['report_mb']} MB, opens offline)\n"
        f"Whole scene against RGI 6.0: IoU {result['iou']:.3f}, precision "
        f"{result['precision']:.3f}, recall {result['recall']:.3f}, area deviation "
        f"{100 * result['area_deviation']:+.1f} %  (the model saw the western part in training)"
    )
    print(json.dumps(result))
    return result


if __name__ == "__main__":  # pragma: no cover
    main()
