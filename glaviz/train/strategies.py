"""The strategies that are more than one ``fit`` call: regional models, fine-tuning, and the
bias optimisation that adapts a region-encoded model to an unseen region."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr
from torch import nn
from tqdm.auto import tqdm

from glaviz.catalog import load_catalog
from glaviz.data.tiles import SceneTile, Tile
from glaviz.train.fit import fit

__all__ = ["RegionAdaptation", "adapt_region", "finetune", "fit_regional"]


def fit_regional(
    build: Callable[[], nn.Module],
    train: Sequence[Tile],
    val: Sequence[Tile] | None = None,
    *,
    clusters: Mapping[str, Sequence[str]] | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    **fit_kwargs: Any,
) -> dict[str, pd.DataFrame]:
    """The regional strategy: one fresh model per region or region cluster.

    Parameters
    ----------
    build : callable
        Returns a new, untrained model (called once per cluster).
    train, val : sequence of Tile
        Tiles of all regions; each model sees only its cluster's tiles.
    clusters : mapping, optional
        ``{name: [region codes]}``; default one cluster per region present in ``train``.
    checkpoint_dir : path, optional
        Each cluster writes into ``checkpoint_dir/<name>/``.
    **fit_kwargs
        Passed to :func:`glaviz.fit`.

    Returns
    -------
    dict of str to pandas.DataFrame
        Training history per cluster.
    """
    if clusters is None:
        regions = sorted({t.region for t in train if t.region is not None})
        if not regions:
            raise ValueError("regional training needs tiles with a region (tile.region is None)")
        clusters = {r: [r] for r in regions}
    out = {}
    for name, codes in clusters.items():
        tr = [t for t in train if t.region in codes]
        va = [t for t in (val or []) if t.region in codes]
        if not tr:
            raise ValueError(f"cluster {name!r} ({list(codes)}) has no training tile")
        ckpt = Path(checkpoint_dir) / name if checkpoint_dir is not None else None
        out[name] = fit(
            build(), tr, va or None, strategy="regional", checkpoint_dir=ckpt,
            metadata={"cluster": name, "regions": list(codes)}, **fit_kwargs,
        )  # fmt: skip
    return out


def finetune(
    model: nn.Module, train: Sequence[Tile], val: Sequence[Tile] | None = None, **fit_kwargs: Any
) -> pd.DataFrame:
    """Fine-tune a (global) model on one region: lr 5e-5, cosine to 0 over 80 epochs."""
    return fit(model, train, val, strategy="finetune", **fit_kwargs)


@dataclass
class RegionAdaptation:
    """Result of :func:`adapt_region`.

    Attributes
    ----------
    location : numpy.ndarray
        The learned location input (softmax of ``logits``, sums to 1) to feed the model.
    logits : numpy.ndarray
        The 12 learned logits.
    weights : dict of str to float
        ``location`` per region code (and "unknown").
    history : pandas.DataFrame
        Mean normalised entropy per epoch.
    """

    location: np.ndarray
    logits: np.ndarray
    weights: dict[str, float]
    history: pd.DataFrame


def adapt_region(
    model: nn.Module,
    scene: xr.Dataset | Tile,
    *,
    patch_size: int | None = None,
    crops_per_epoch: int = 16,
    batch_size: int = 4,
    lr: float = 1e-4,
    tolerance: float = 1e-8,
    patience: int = 5,
    max_epochs: int = 500,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> RegionAdaptation:
    """Adapt a region-encoded model to an unseen region by bias optimisation.

    The network is frozen; a 12-logit vector is learned whose softmax is the location input, so
    as to minimise the mean normalised prediction entropy (entropy / log 2) over random crops of
    the target scene. Adam at ``lr``; stops when the epoch's mean entropy changes by less than
    ``tolerance`` for ``patience`` epochs in a row (or after ``max_epochs``).

    Parameters
    ----------
    model : torch.nn.Module
        A model built with ``location_encoding="region"``.
    scene : xarray.Dataset or Tile
        The target scene, scaled (no labels needed).

    Returns
    -------
    RegionAdaptation
    """
    config = getattr(model, "config", {}) or {}
    if config.get("location_encoding") != "region":
        raise ValueError("adapt_region needs a model built with location_encoding='region'")
    tile = scene if isinstance(scene, Tile) else _unlabelled_tile(scene)
    groups = list(config["input_channels"])
    patch_size = patch_size or int(config.get("tile_size", 384))
    n_loc = int(config.get("location_features") or load_catalog().unknown_slot + 1)
    device = torch.device(device)
    was_training = model.training
    flags = [p.requires_grad for p in model.parameters()]
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    logits = torch.zeros(n_loc, device=device, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=lr)
    rng = np.random.default_rng(seed)
    h, w = tile.shape
    history, previous, calm = [], None, 0
    bar = tqdm(total=max_epochs, disable=not progress, desc="adapt_region", unit="epoch")
    try:
        for epoch in range(max_epochs):
            losses = []
            for _ in range(max(1, crops_per_epoch // batch_size)):
                patches = [
                    tile.read(
                        int(rng.integers(min(h - patch_size, 0), max(h - patch_size, 0) + 1)),
                        int(rng.integers(min(w - patch_size, 0), max(w - patch_size, 0) + 1)),
                        patch_size, groups,
                    )
                    for _ in range(batch_size)
                ]  # fmt: skip
                inputs = {
                    g: torch.from_numpy(np.stack([p.inputs[g] for p in patches])).to(device)
                    for g in groups
                }
                valid = torch.from_numpy(np.stack([p.valid for p in patches])).to(device)
                inputs["location"] = torch.softmax(logits, 0).expand(len(patches), -1)
                prob = torch.softmax(model(inputs).float(), 1)
                entropy = -(prob * torch.log(prob.clamp_min(1e-12))).sum(1) / np.log(2.0)
                weight = valid.float()
                loss = (entropy * weight).sum() / weight.sum().clamp_min(1.0)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(float(loss.detach()))
            mean = float(np.mean(losses))
            history.append({"epoch": epoch + 1, "mean_normalised_entropy": mean})
            bar.update(1)
            bar.set_postfix(entropy=f"{mean:.6f}")
            calm = calm + 1 if previous is not None and abs(previous - mean) < tolerance else 0
            previous = mean
            if calm >= patience:
                break
    finally:
        bar.close()
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)
        model.train(was_training)
    location = torch.softmax(logits.detach(), 0).cpu().numpy()
    codes = [*load_catalog().region_codes, "unknown"]
    return RegionAdaptation(
        location=location,
        logits=logits.detach().cpu().numpy(),
        weights={c: float(v) for c, v in zip(codes, location)},
        history=pd.DataFrame(history),
    )


def _unlabelled_tile(scene: Any) -> SceneTile:
    """A tile for a scaled scene without reference labels."""
    zeros = np.zeros((scene.sizes["y"], scene.sizes["x"]), np.uint8)
    return SceneTile(scene, zeros, name="target")
