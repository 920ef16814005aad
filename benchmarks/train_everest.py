"""Train a small GlaViTU on the western 60 % of the Everest sample and score the eastern 40 %.

The protocol of shared/data/README.md: train on columns 0-479 (their southern 128 rows validate
and select the checkpoint), test on columns 480-799 mapped with glaviz.predict (blended windows),
valid pixels only. Prints IoU, precision, recall and area deviation on the test strip, and the
training time.

    python benchmarks/train_everest.py            # the defaults quoted in the README
    python benchmarks/train_everest.py --epochs 4 --precision bf16
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch

from glaviz.data.samples import sample_tiles
from glaviz.inference import predict
from glaviz.metrics import confusion
from glaviz.models.checkpoint import load_checkpoint
from glaviz.models.glavitu import GlaViTU
from glaviz.train import Augmentation, fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--steps-per-epoch", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--patch-size", type=int, default=128)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--precision", default="32", choices=["32", "bf16"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tta", action="store_true", help="8-fold TTA when mapping the test strip")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tiles = sample_tiles("everest_landsat7")
    torch.manual_seed(args.seed)
    model = GlaViTU.small(
        input_channels={"optical": 4}, tile_size=args.patch_size, width=args.width,
        unet_widths=(args.width, 2 * args.width, 4 * args.width), bottleneck_width=8 * args.width,
    )  # fmt: skip
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as ckpt:
        history = fit(
            model, [tiles["train"]], [tiles["val"]], epochs=args.epochs,
            steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size,
            patch_size=args.patch_size, lr=args.lr, bn_momentum=0.1,
            augment=Augmentation().without("occlusion"), precision=args.precision,
            checkpoint_dir=ckpt, seed=args.seed,
        )  # fmt: skip
        train_seconds = time.perf_counter() - started
        best = load_checkpoint(f"{ckpt}/best.safetensors")
    test = tiles["test"]
    pred = predict(best, test.scene, precision=args.precision, tta=args.tta, progress=False)
    scores = confusion(pred["glacier_mask"].values == 1, np.asarray(test.mask),
                       test.scene["valid"].values)  # fmt: skip
    print(history.to_string(index=False))
    result = {
        "train_minutes": round(train_seconds / 60, 2),
        "threads": torch.get_num_threads(),
        "test_iou": round(scores.iou, 4),
        "test_precision": round(scores.precision, 4),
        "test_recall": round(scores.recall, 4),
        "test_area_deviation": round(scores.area_deviation, 4),
        "test_pixels": scores.tp + scores.fp + scores.fn + scores.tn,
        "config": vars(args),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
