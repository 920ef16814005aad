"""Presets: a small GlaViTU and a training recipe that work on a laptop CPU in minutes.

The paper's recipe (:func:`glaviz.fit` defaults) is made for the benchmark on GPUs; on a
2-core CPU with one small scene these settings train a useful model in a few minutes (measured
with ``benchmarks/train_everest.py``): patches of 128 pixels, width 16, learning rate 1e-3,
BatchNorm momentum 0.1 (the Keras 0.01 lags far behind in a few hundred batches), every
augmentation but occlusion, and the focal loss plus a soft Dice term of the glacier class
(:class:`~glaviz.train.losses.FocalDiceLoss`: pooled IoU 0.593 instead of 0.572 in the Everest
cross-validation of ``benchmarks/everest_cv.py``, 8 minutes per fold). The demo, the report
notebook and the workshop use them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from torch import nn

from glaviz.data.tiles import Tile
from glaviz.models.glavitu import GlaViTU
from glaviz.train.augment import Augmentation
from glaviz.train.fit import fit
from glaviz.train.losses import FocalDiceLoss

__all__ = ["CPU_RECIPE", "fit_small", "small_glavitu"]

#: ``glaviz.fit`` keyword arguments for short CPU runs on small scenes.
CPU_RECIPE: dict[str, Any] = {
    "batch_size": 8,
    "patch_size": 128,
    "lr": 1e-3,
    "bn_momentum": 0.1,
}


def small_glavitu(
    input_channels: Mapping[str, int], *, width: int = 16, **overrides: Any
) -> GlaViTU:
    """A small GlaViTU for CPU training on 128-pixel patches (about 0.6 M parameters).

    Examples
    --------
    >>> m = small_glavitu({"optical": 4})
    >>> m.config["tile_size"], m.config["width"]
    (128, 16)
    """
    cfg: dict[str, Any] = {
        "input_channels": dict(input_channels),
        "tile_size": CPU_RECIPE["patch_size"],
        "width": width,
        "unet_widths": (width, 2 * width, 4 * width),
        "bottleneck_width": 8 * width,
    }
    cfg.update(overrides)
    return GlaViTU.small(**cfg)


def fit_small(
    model: nn.Module,
    train: Sequence[Tile],
    val: Sequence[Tile] | None = None,
    *,
    epochs: int = 15,
    steps_per_epoch: int = 40,
    checkpoint_dir: str | os.PathLike | None = None,
    seed: int = 0,
    **overrides: Any,
) -> pd.DataFrame:
    """:func:`glaviz.fit` with :data:`CPU_RECIPE` (15 x 40 batches: about 3-4 minutes on 2
    cores for :func:`small_glavitu`); any ``fit`` argument can be overridden.

    The loss is :class:`~glaviz.train.losses.FocalDiceLoss` with the augmentation's label
    smoothing (``loss=`` overrides it; ``glaviz.fit``'s default is the focal loss alone)."""
    augment = overrides.get("augment") or Augmentation().without("occlusion")
    kwargs: dict[str, Any] = {
        **CPU_RECIPE,
        "augment": augment,
        "loss": FocalDiceLoss(
            label_smoothing=augment.label_smoothing,
            ignore_mode=overrides.get("ignore_mode", "ignore"),
        ),
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "checkpoint_dir": checkpoint_dir,
        "seed": seed,
    }
    kwargs.update(overrides)
    return fit(model, train, val, **kwargs)
