"""The CPU preset's recipe: what ``fit_small`` hands to ``glaviz.fit``."""

from __future__ import annotations

import pytest

from glaviz.train import presets
from glaviz.train.augment import Augmentation
from glaviz.train.losses import FocalDiceLoss, FocalLoss


@pytest.fixture()
def handed(monkeypatch):
    seen: dict = {}
    monkeypatch.setattr(presets, "fit", lambda model, train, val, **kw: seen.update(kw))
    return seen


def test_fit_small_trains_with_focal_dice_and_the_augmentations_smoothing(handed):
    presets.fit_small(None, [], None)
    loss = handed["loss"]
    assert type(loss) is FocalDiceLoss and loss.dice_weight == 1.0 and loss.gamma == 2.0
    assert loss.label_smoothing == handed["augment"].label_smoothing == 0.1
    assert "occlusion" not in handed["augment"].enabled
    assert {k: handed[k] for k in presets.CPU_RECIPE} == presets.CPU_RECIPE


def test_fit_small_loss_follows_overrides(handed):
    presets.fit_small(None, [], None, augment=Augmentation(label_smoothing=0.0),
                      ignore_mode="background")  # fmt: skip
    assert handed["loss"].label_smoothing == 0.0 and handed["loss"].ignore_mode == "background"
    own = FocalLoss()
    presets.fit_small(None, [], None, loss=own)
    assert handed["loss"] is own
