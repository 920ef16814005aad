"""Categorical focal loss on softmax, with label smoothing, ignored pixels and deep supervision."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glaviz.data.tiles import IGNORE

__all__ = ["FocalLoss", "deep_supervision_loss"]


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
