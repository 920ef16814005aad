"""Categorical focal loss on softmax (plus an optional soft Dice term), with label smoothing,
ignored pixels and deep supervision."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glaviz.data.tiles import IGNORE

__all__ = ["FocalDiceLoss", "FocalLoss", "deep_supervision_loss"]


class FocalLoss(nn.Module):
    """Categorical focal loss ``-sum_c t_c (1 - p_c)^gamma log p_c`` averaged over pixels.

    Parameters
    ----------
    gamma : float, default 2
        Focusing parameter (the paper's 2).
    alpha : float, default 1
        Constant weight (Keras' focal loss defaults to 0.25, which only rescales the loss; with
        Adam that changes little; the reference does not say which was used: a parameter).
    label_smoothing : float, default 0
        Targets become ``t (1 - s) + s / n_classes`` (the paper's recipe uses 0.1).
    ignore_index : int, default 255
        Label of padding, nodata and unlabelled pixels.
    ignore_mode : {"ignore", "background"}
        ``"ignore"`` leaves those pixels out of the loss; ``"background"`` counts them as
        not-glacier, as the original code did (paper-compatible mode).

    Examples
    --------
    >>> import torch
    >>> logits = torch.zeros(1, 2, 2, 2)
    >>> target = torch.tensor([[[0, 1], [255, 1]]])
    >>> round(float(FocalLoss()(logits, target)), 4)  # 0.25 * ln 2 at p = 0.5
    0.1733
    """

    def __init__(
        self,
        *,
        gamma: float = 2.0,
        alpha: float = 1.0,
        label_smoothing: float = 0.0,
        ignore_index: int = IGNORE,
        ignore_mode: Literal["ignore", "background"] = "ignore",
    ) -> None:
        super().__init__()
        if ignore_mode not in ("ignore", "background"):
            raise ValueError(f"ignore_mode must be 'ignore' or 'background', got {ignore_mode!r}")
        self.gamma = gamma
        self.alpha = alpha
        self.label_smoothing = label_smoothing
        self.ignore_index = ignore_index
        self.ignore_mode = ignore_mode

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Mean focal loss of ``logits`` (B, K, H, W) against integer ``target`` (B, H, W)."""
        n_classes = logits.shape[1]
        target = target.long()
        ignored = target == self.ignore_index
        if self.ignore_mode == "background":
            target = torch.where(ignored, torch.zeros_like(target), target)
            keep = torch.ones_like(ignored)
        else:
            target = torch.where(ignored, torch.zeros_like(target), target)
            keep = ~ignored
        log_p = F.log_softmax(logits.float(), dim=1)
        p = log_p.exp()
        onehot = F.one_hot(target, n_classes).permute(0, 3, 1, 2).to(log_p.dtype)
        if self.label_smoothing:
            onehot = onehot * (1 - self.label_smoothing) + self.label_smoothing / n_classes
        per_pixel = -(onehot * (1 - p).pow(self.gamma) * log_p).sum(1) * self.alpha
        weight = keep.to(per_pixel.dtype)
        return (per_pixel * weight).sum() / weight.sum().clamp_min(1.0)


class FocalDiceLoss(FocalLoss):
    """:class:`FocalLoss` plus ``dice_weight`` x the soft Dice loss of the glacier class.

    The Dice term, ``1 - (2 sum(p t) + 1) / (sum(p) + sum(t) + 1)`` over the batch's counted
    pixels (``p`` the glacier probability, ``t`` 1 on glacier pixels), measures errors against
    the glacier area, as IoU does, rather than against the pixel count: on a small scene where
    glacier and its look-alikes (late snow on rock, debris-covered ice) cover few pixels, it
    keeps them from being traded for the many easy ones. Label smoothing applies to the focal
    term only. The CPU preset (:func:`glaviz.train.presets.fit_small`) trains with it.

    Parameters
    ----------
    dice_weight : float, default 1
        Weight of the Dice term (0 gives :class:`FocalLoss`).
    glacier_class : int, default 1
        The class whose Dice loss is added.
    **kwargs
        :class:`FocalLoss` settings: ``gamma``, ``alpha``, ``label_smoothing``,
        ``ignore_index``, ``ignore_mode``.

    Examples
    --------
    >>> import torch
    >>> target = torch.tensor([[[0, 1], [1, 255]]])  # 255: not counted
    >>> glacier = (target == 1).float()
    >>> logits = torch.stack([9 * (1 - glacier), 9 * glacier], dim=1)
    >>> round(float(FocalDiceLoss()(logits, target)), 3)  # right everywhere
    0.0
    >>> float(FocalDiceLoss()(-logits, target)) > 1  # wrong everywhere: Dice alone is ~1
    True
    """

    def __init__(self, *, dice_weight: float = 1.0, glacier_class: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dice_weight = dice_weight
        self.glacier_class = glacier_class

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Focal plus weighted Dice loss of ``logits`` (B, K, H, W) against ``target`` (B, H, W)."""
        focal = super().forward(logits, target)
        if not self.dice_weight:
            return focal
        ignored = target == self.ignore_index
        keep = torch.ones_like(ignored) if self.ignore_mode == "background" else ~ignored
        weight = keep.to(torch.float32)
        p = torch.softmax(logits.float(), dim=1)[:, self.glacier_class] * weight
        t = ((target == self.glacier_class) & ~ignored).to(torch.float32) * weight
        dice = 1 - (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)
        return focal + self.dice_weight * dice


def deep_supervision_loss(
    loss: nn.Module,
    outputs: Tensor | tuple[Tensor, Tensor],
    target: Tensor,
    *,
    weight: float = 0.5,
) -> Tensor:
    """``loss(main) + weight * loss(deep supervision)``; a plain tensor gives ``loss(main)``."""
    if isinstance(outputs, tuple):
        main, aux = outputs
        return loss(main, target) + weight * loss(aux, target)
    return loss(outputs, target)
