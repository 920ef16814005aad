"""Tests of the focal (and focal + Dice) loss against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from glaviz.train.losses import FocalDiceLoss, FocalLoss, deep_supervision_loss


def test_hand_computed_value():
    # one pixel, p(glacier) = 0.8, target glacier: -(1 - 0.8)^2 ln 0.8
    logits = torch.tensor([0.0, math.log(4.0)]).view(1, 2, 1, 1)
    target = torch.ones(1, 1, 1, dtype=torch.long)
    assert float(FocalLoss()(logits, target)) == pytest.approx(-(0.2**2) * math.log(0.8), rel=1e-5)
    smooth = FocalLoss(label_smoothing=0.1)(logits, target)
    expected = -(0.95 * 0.2**2 * math.log(0.8) + 0.05 * 0.8**2 * math.log(0.2))
    assert float(smooth) == pytest.approx(expected, rel=1e-5)


def test_gamma_zero_is_cross_entropy_and_focal_is_smaller():
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 5, 5)
    target = torch.randint(0, 2, (2, 5, 5))
    ce = F.cross_entropy(logits, target)
    assert float(FocalLoss(gamma=0)(logits, target)) == pytest.approx(float(ce), rel=1e-5)
    assert float(FocalLoss()(logits, target)) < float(ce)


def test_ignored_pixels():
    logits = torch.tensor([[5.0, -5.0], [5.0, -5.0]]).T.reshape(1, 2, 1, 2)
    target = torch.tensor([[[0, 255]]])
    ignore = FocalLoss()(logits, target)
    background = FocalLoss(ignore_mode="background")(logits, target)
    only_first = FocalLoss()(logits[..., :1], target[..., :1])
    assert float(ignore) == pytest.approx(float(only_first))
    assert float(background) == pytest.approx(float(only_first))  # both pixels confident bg
    wrong = torch.tensor([[[1, 255]]])
    assert float(FocalLoss(ignore_mode="background")(logits, wrong)) == pytest.approx(
        float(FocalLoss()(logits, wrong)) / 2, rel=1e-4
    )
    with pytest.raises(ValueError, match="ignore_mode"):
        FocalLoss(ignore_mode="drop")


def test_deep_supervision_weight():
    torch.manual_seed(1)
    main, aux = torch.randn(1, 2, 4, 4), torch.randn(1, 2, 4, 4)
    target = torch.randint(0, 2, (1, 4, 4))
    loss = FocalLoss()
    total = deep_supervision_loss(loss, (main, aux), target)
    assert float(total) == pytest.approx(float(loss(main, target) + 0.5 * loss(aux, target)))
    assert float(deep_supervision_loss(loss, main, target)) == pytest.approx(
        float(loss(main, target))
    )


def test_focal_dice_adds_the_soft_dice_of_the_glacier_class():
    torch.manual_seed(2)
    logits = torch.randn(2, 2, 4, 4)
    target = torch.randint(0, 2, (2, 4, 4))
    target[0, 0, :2] = 255  # not counted
    keep = target != 255
    p = torch.softmax(logits, 1)[:, 1][keep]
    t = (target == 1)[keep].float()
    dice = 1 - (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)
    focal = FocalLoss(label_smoothing=0.1)(logits, target)
    both = FocalDiceLoss(label_smoothing=0.1, dice_weight=0.5)(logits, target)
    assert float(both) == pytest.approx(float(focal + 0.5 * dice), rel=1e-5)
    assert float(FocalDiceLoss(dice_weight=0)(logits, target)) == pytest.approx(
        float(FocalLoss()(logits, target))
    )
    # in background mode the ignored pixels count as not-glacier
    bg = FocalDiceLoss(ignore_mode="background")(logits, target)
    p_all = torch.softmax(logits, 1)[:, 1]
    t_all = (target == 1).float()
    dice_all = 1 - (2 * (p_all * t_all).sum() + 1) / (p_all.sum() + t_all.sum() + 1)
    expected = FocalLoss(ignore_mode="background")(logits, target) + dice_all
    assert float(bg) == pytest.approx(float(expected), rel=1e-5)


def test_focal_dice_gradient_pushes_missed_glacier_up():
    logits = torch.zeros(1, 2, 2, 2, requires_grad=True)
    target = torch.tensor([[[1, 0], [0, 0]]])
    FocalDiceLoss(gamma=0.0, dice_weight=1.0)(logits, target).backward()
    grad = logits.grad
    assert grad is not None
    assert float(grad[0, 1, 0, 0]) < 0 < float(grad[0, 1, 1, 1])  # glacier up there, down elsewhere
    # the Dice term weighs the one glacier pixel more than cross-entropy alone does
    ce = torch.zeros(1, 2, 2, 2, requires_grad=True)
    FocalLoss(gamma=0.0)(ce, target).backward()
    assert ce.grad is not None
    assert abs(float(grad[0, 1, 0, 0])) > abs(float(ce.grad[0, 1, 0, 0]))
