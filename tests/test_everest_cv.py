"""The Everest cross-validation protocol: fold geometry, baselines, and a training regression."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glaviz.baselines import features, fit_threshold
from glaviz.data.folds import FOLDS, fold_windows, quadrant_folds
from glaviz.metrics import confusion


def _cells(win):
    r0, r1, c0, c1 = win
    return {(r, c) for r in range(r0, r1) for c in range(c0, c1)}


@pytest.mark.parametrize("fold", FOLDS)
def test_folds_keep_training_validation_and_test_apart(fold):
    shape, gap = (65, 80), 6  # the Everest layout, scaled down 10x
    w = fold_windows(shape, fold, gap=gap, val_width=10)
    test, val = np.zeros(shape, bool), np.zeros(shape, bool)
    test[w["test"][0] : w["test"][1], w["test"][2] : w["test"][3]] = True
    val[w["val"][0] : w["val"][1], w["val"][2] : w["val"][3]] = True
    train = np.zeros(shape, int)
    for r0, r1, c0, c1 in w["train"]:
        train[r0:r1, c0:c1] += 1
    assert train.max() == 1  # the training rectangles do not overlap
    assert test.sum() == (shape[0] // 2 if fold[0] == "N" else shape[0] - shape[0] // 2) * 40
    # Chebyshev distance from every training pixel to test and validation is at least the gap
    rows, cols = np.nonzero(train)
    for other in (test, val):
        orow, ocol = np.nonzero(other)
        d = np.maximum(
            np.abs(rows[:, None] - orow[None, :]), np.abs(cols[:, None] - ocol[None, :])
        ).min()
        assert d > gap - 1
    # and the training covers most of what is left
    assert train.sum() > 0.5 * (~test & ~val).sum()


def test_threshold_baseline_is_the_best_rule_on_training_pixels():
    import glaviz

    scene, mask, _ = glaviz.sample_scene("everest_landsat7")
    scaled = glaviz.scale(scene)
    rule = fit_threshold(scaled, mask.values)
    valid = scaled["valid"].values
    got = confusion(rule.apply(scaled), mask.values, valid).iou
    assert got == pytest.approx(rule.train_iou)
    # no other band threshold among a coarse grid does better on the same pixels
    for name, f in features(scaled).items():
        for q in np.nanquantile(f[valid], np.linspace(0.02, 0.98, 25)):
            for hit in (f > q, f < q):
                assert confusion(np.where(np.isfinite(f), hit, False), mask.values, valid).iou <= (
                    got + 1e-9
                ), name


def test_small_glavitu_beats_all_glacier_on_a_held_out_quadrant(tmp_path):
    """CI's training regression: one fold (SW, where 31 % IoU is all-glacier), about a minute."""
    import glaviz
    from glaviz.train.presets import fit_small, small_glavitu

    scene, mask, _ = glaviz.sample_scene("everest_landsat7")
    fold = quadrant_folds(glaviz.scale(scene), mask, folds=["SW"])["SW"]
    torch.manual_seed(0)
    model = small_glavitu({"optical": 4})
    fit_small(
        model, fold["train"], fold["val"], epochs=4, steps_per_epoch=40, checkpoint_dir=tmp_path,
        schedule="cosine", progress=False, live_plot=False,
    )  # fmt: skip
    best = glaviz.load_checkpoint(tmp_path / "best.safetensors")
    test = fold["test"]
    valid = test.scene["valid"].values
    pred = glaviz.predict(best, test.scene, progress=False)["glacier_mask"].values == 1
    model_iou = confusion(pred, np.asarray(test.mask), valid).iou
    all_glacier = confusion(np.ones_like(valid), np.asarray(test.mask), valid).iou
    assert 0.25 < all_glacier < 0.35
    assert model_iou > all_glacier
