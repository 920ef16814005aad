"""4-fold spatial cross-validation on the Everest sample: a small GlaViTU against two baselines.

For each quadrant (NW, NE, SW, SE; split at the middle row and column) a small GlaViTU is
trained on the other three quadrants (``glaviz.data.folds.quadrant_folds``: a validation strip
along the far edge selects the checkpoint, with a gap of half a patch between training,
validation and test), then ``glaviz.predict`` maps the held-out quadrant (blended windows, the
quadrant padded as predict does). Only valid pixels count. The same test pixels are scored for
two baselines: "all glacier", and the best single band or normalised band difference threshold
chosen on the training tiles only (``glaviz.baselines.fit_threshold``).

Scores per fold and pooled over the four folds (TP/FP/FN summed, not a mean of IoUs): IoU,
precision, recall, F1, area deviation. Fixed seeds. Prints a table and one JSON line.

    python benchmarks/everest_cv.py                       # 4 folds, 10 minutes of training each
    python benchmarks/everest_cv.py --folds NE --minutes 2
    python benchmarks/everest_cv.py --folds NW SE --batches 600 --patch-size 256 --batch-size 2

Recipe variants for comparisons (README, accuracy section): ``--batches`` trains a fixed number
of batches instead of a time budget (so that variants compare on a busy machine), and
``--patch-size``/``--batch-size``, ``--augment strong``, ``--loss focal``, ``--derived``
(NDVI, NDWI and texture as extra channels; the threshold baseline keeps the bands) and
``--area-weighted`` (training tiles drawn in proportion to their area) change the recipe.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from glaviz.baselines import fit_threshold
from glaviz.data import scale
from glaviz.data.folds import FOLDS, quadrant_folds
from glaviz.data.samples import sample_scene
from glaviz.inference import predict
from glaviz.metrics import confusion
from glaviz.models.checkpoint import load_checkpoint
from glaviz.models.runtime import cpu_summary
from glaviz.train.augment import Augmentation
from glaviz.train.losses import FocalDiceLoss, FocalLoss
from glaviz.train.presets import fit_small, small_glavitu


def scores(c) -> dict[str, float]:
    return {
        "iou": c.iou,
        "precision": c.precision,
        "recall": c.recall,
        "f1": c.f1,
        "area_deviation": c.area_deviation,
    }


def batches_per_second(channels: dict[str, int], tiles: list, args) -> float:
    """Training speed measured on a throwaway model (so the budget becomes a batch count)."""
    probe = small_glavitu(channels, width=args.width, tile_size=args.patch_size)
    kw = recipe(args)
    fit_small(
        probe, tiles, None, epochs=1, steps_per_epoch=3, progress=False, live_plot=False, **kw
    )
    started = time.perf_counter()
    fit_small(
        probe, tiles, None, epochs=1, steps_per_epoch=8, progress=False, live_plot=False, **kw
    )
    return 8 / (time.perf_counter() - started)


def recipe(args) -> dict:
    """``fit_small`` overrides chosen on the command line (defaults: the preset's)."""
    kw: dict = {"patch_size": args.patch_size, "batch_size": args.batch_size}
    smoothing = Augmentation().label_smoothing
    if args.loss == "focal":  # the preset's loss before 2026-12-02
        kw["loss"] = FocalLoss(label_smoothing=smoothing)
    elif args.loss == "ce+dice":
        kw["loss"] = FocalDiceLoss(gamma=0.0, label_smoothing=smoothing)
    if args.augment == "strong":
        kw["augment"] = Augmentation(gamma=0.8, gamma_range=(0.6, 1.5), noise=0.8,
                                     noise_shift_sigma=0.05, occlusion=0.3,
                                     occlusion_max_fraction=0.3)  # fmt: skip
    return kw


def with_derived(scaled):
    """The scaled scene with three channels derived from the bands appended to ``optical``:
    NDVI and NDWI (green-NIR) mapped to [0, 1], and the local standard deviation of brightness
    in 5 x 5 pixels (texture: debris-covered ice is hummocky)."""
    from scipy.ndimage import uniform_filter

    opt = scaled["optical"]
    b = {n: np.asarray(opt.sel(optical_band=n).values, np.float32) for n in opt.optical_band.values}
    eps = 1e-6
    ndvi = (b["nir"] - b["red"]) / (b["nir"] + b["red"] + eps)
    ndwi = (b["green"] - b["nir"]) / (b["green"] + b["nir"] + eps)
    bright = (b["red"] + b["green"] + b["blue"]) / 3
    mean = uniform_filter(bright, 5)
    std = np.sqrt(np.maximum(uniform_filter(bright * bright, 5) - mean * mean, 0))
    extra = np.stack([(ndvi + 1) / 2, (ndwi + 1) / 2, np.clip(std * 4, 0, 1)])
    values = np.concatenate([np.asarray(opt.values, np.float32), extra])
    names = list(opt.optical_band.values) + ["ndvi", "ndwi", "texture"]
    out = scaled.drop_vars("optical").drop_dims("optical_band")
    out["optical"] = xr.DataArray(values, dims=opt.dims, coords={"optical_band": names})
    out["optical"].attrs.update(opt.attrs)
    return out


def run_fold(fold: dict, channels: dict[str, int], args, workdir: Path) -> dict:
    """Train, map the test quadrant, score it and the baselines on the same pixels."""
    steps = args.steps_per_epoch
    record = workdir / "run.json"
    if args.reuse and (workdir / "best.safetensors").exists():  # score a trained fold again
        run = json.loads(record.read_text()) if record.exists() else {}
        minutes, epochs = run.get("train_minutes", float("nan")), run.get("epochs", 0)
        best_val = run.get("best_val_iou", float("nan"))
    else:
        torch.manual_seed(args.seed)
        train = fold["train"]
        if args.area_weighted:  # tiles drawn in proportion to their area (repeats in the list)
            smallest = min(t.shape[0] * t.shape[1] for t in train)
            train = [t for t in train for _ in range(round(2 * t.shape[0] * t.shape[1] / smallest))]
        if args.batches:
            total = args.batches
        else:
            rate = batches_per_second(channels, fold["train"], args)
            total = max(steps, int(rate * args.minutes * 60 * 0.9))  # 10 % for validation
        epochs = max(1, total // steps)
        torch.manual_seed(args.seed)
        model = small_glavitu(channels, width=args.width, tile_size=args.patch_size)
        started = time.perf_counter()
        history = fit_small(
            model, train, fold["val"], epochs=epochs, steps_per_epoch=steps,
            checkpoint_dir=workdir, seed=args.seed, progress=not args.quiet, live_plot=False,
            schedule=args.schedule, lr=args.lr, resume=False, **recipe(args),
        )  # fmt: skip
        minutes = (time.perf_counter() - started) / 60
        best_val = float(history["val_iou"].max())
        record.write_text(
            json.dumps({"train_minutes": minutes, "epochs": epochs, "best_val_iou": best_val})
        )
    best = load_checkpoint(workdir / "best.safetensors")
    test = fold["test"]
    valid = np.asarray(test.scene["valid"].values, bool)
    ref = np.asarray(test.mask)
    pred = predict(best, test.scene, tta=args.tta, progress=False)
    model_c = confusion(pred["glacier_mask"].values == 1, ref, valid)
    all_c = confusion(np.ones_like(valid), ref, valid)
    plain = fold.get("plain", fold)  # the baseline sees the bands only
    rule = fit_threshold(
        [t.scene for t in plain["train"]], [np.asarray(t.mask) for t in plain["train"]]
    )
    rule_c = confusion(rule.apply(plain["test"].scene), ref, valid)
    confusions = {"model": model_c, "all_glacier": all_c, "threshold": rule_c}
    if args.val_threshold:  # the probability threshold with the best IoU on validation
        val = fold["val"][0]
        vprob = predict(best, val.scene, tta=args.tta, progress=False)["glacier_probability"]
        vok = np.asarray(val.scene["valid"].values, bool)
        candidates = np.linspace(0.05, 0.95, 19)
        ious = [
            confusion(np.nan_to_num(vprob.values) > c, np.asarray(val.mask), vok).iou
            for c in candidates
        ]
        cut = float(candidates[int(np.argmax(ious))])
        prob = np.nan_to_num(pred["glacier_probability"].values)
        confusions["model_val_threshold"] = confusion(prob > cut, ref, valid)
    return {
        "confusions": confusions,
        "threshold_rule": f"{rule.feature} {'>' if rule.greater else '<'} {rule.value:.4f}",
        "train_minutes": round(minutes, 2),
        "epochs": epochs,
        "batches": epochs * steps,
        "best_val_iou": round(best_val, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", nargs="+", default=list(FOLDS), choices=FOLDS)
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per fold")
    parser.add_argument("--batches", type=int,
                        help="train this many batches per fold instead of a time budget "
                        "(for comparing recipes on a loaded machine)")  # fmt: skip
    parser.add_argument("--patch-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--augment", default="preset", choices=["preset", "strong"])
    parser.add_argument(
        "--loss",
        default="preset",
        choices=["preset", "focal", "ce+dice"],
        help="the preset's focal + soft Dice loss, the focal loss alone (the preset before "
        "2026-12-02), or cross-entropy + soft Dice",
    )
    parser.add_argument(
        "--derived", action="store_true", help="append NDVI, NDWI and texture to the bands"
    )
    parser.add_argument("--area-weighted", action="store_true",
                        help="draw training tiles in proportion to their area")  # fmt: skip
    parser.add_argument("--steps-per-epoch", type=int, default=40)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--schedule", default="cosine", choices=["cosine", "warm_restarts"])
    parser.add_argument("--gap", type=int, default=64)
    parser.add_argument("--val-width", type=int, default=96)
    parser.add_argument("--tta", action="store_true")
    parser.add_argument("--val-threshold", action="store_true",
                        help="also score the model with the probability threshold that is best "
                        "on the validation strip")  # fmt: skip
    parser.add_argument("--reuse", action="store_true",
                        help="score the checkpoints of an earlier run in --workdir again "
                        "(e.g. with --tta or --val-threshold) instead of training")  # fmt: skip
    parser.add_argument("--threads", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/glaviz-everest-cv"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# CPU: {cpu_summary()}; budget {args.minutes} min per fold")
    scene, mask, _ = sample_scene("everest_landsat7")
    scaled = scale(scene)
    folds = quadrant_folds(scaled, mask, gap=args.gap, val_width=args.val_width, region="HMA",
                           folds=args.folds)  # fmt: skip
    if args.derived:
        plain = folds
        folds = quadrant_folds(with_derived(scaled), mask, gap=args.gap,
                               val_width=args.val_width, region="HMA",
                               folds=args.folds)  # fmt: skip
        for name in folds:
            folds[name]["plain"] = plain[name]
    channels = {"optical": int(next(iter(folds.values()))["test"].scene["optical_band"].size)}
    results = {}
    for name, fold in folds.items():
        results[name] = run_fold(fold, channels, args, args.workdir / name)
        c = results[name]["confusions"]
        print(f"{name}: model IoU {c['model'].iou:.3f}, all glacier {c['all_glacier'].iou:.3f}, "
              f"threshold {c['threshold'].iou:.3f} ({results[name]['threshold_rule']}); "
              f"{results[name]['train_minutes']} min, "
              f"{results[name]['batches']} batches")  # fmt: skip
    rows = []
    kinds = list(next(iter(results.values()))["confusions"])
    for kind in kinds:
        for name, r in results.items():
            rows.append({"fold": name, "method": kind, **scores(r["confusions"][kind])})
        parts = [r["confusions"][kind] for r in results.values()]
        pooled = parts[0]
        for part in parts[1:]:
            pooled = pooled + part
        rows.append({"fold": "pooled", "method": kind, **scores(pooled)})
    print(f"\n{'fold':7} {'method':20} {'IoU':>6} {'prec':>6} {'recall':>6} {'F1':>6} {'area':>7}")
    for r in rows:
        print(f"{r['fold']:7} {r['method']:20} {r['iou']:6.3f} {r['precision']:6.3f} "
              f"{r['recall']:6.3f} {r['f1']:6.3f} {100 * r['area_deviation']:+6.1f}%")  # fmt: skip
    beats = all(
        r["confusions"]["model"].iou > max(r["confusions"]["all_glacier"].iou,
                                           r["confusions"]["threshold"].iou)
        for r in results.values()
    )  # fmt: skip
    summary = {
        "cpu": cpu_summary(),
        "minutes_per_fold": args.minutes,
        "pooled": {r["method"]: round(r["iou"], 4) for r in rows if r["fold"] == "pooled"},
        "per_fold": {
            name: {k: round(c.iou, 4) for k, c in r["confusions"].items()}
            | {"train_minutes": r["train_minutes"], "rule": r["threshold_rule"]}
            for name, r in results.items()
        },
        "model_beats_both_baselines_on_every_fold": beats,
        "tta": args.tta,
        "config": {k: str(v) for k, v in vars(args).items()},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
