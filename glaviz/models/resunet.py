"""ResU-Net baseline: the GlaViTU fusion block followed by a 4-level residual U-Net.

The papers' ResU-Net baseline (4 levels starting at 64 channels, bottleneck 1024) uses the same
residual blocks as GlaViTU's U-Net: 2 x (conv3x3 -> BN -> LeakyReLU 0.2) plus a bias-free 1x1
projection of the block input, max-pooling between levels, and up steps of nearest x2 -> conv 2x2
-> BN, concatenation with the skip, residual block. A 1x1 convolution gives the logits.

Examples
--------
>>> import torch
>>> from glaviz.models.resunet import ResUNet
>>> model = ResUNet.small(input_channels={"optical": 6, "dem": 2}).eval()
>>> x = {"optical": torch.rand(1, 6, 32, 32), "dem": torch.rand(1, 2, 32, 32)}
>>> model(x).shape
torch.Size([1, 2, 32, 32])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glaviz.models.base import FusionModel, LocationEncoding
from glaviz.models.blocks import ResidualBlock, UpConv

__all__ = ["ResUNet"]


class ResUNet(FusionModel):
    """ResU-Net baseline (about 32.6 M parameters at full size) behind the GlaViTU fusion block.

    Parameters
    ----------
    input_channels : Mapping[str, int], optional
        Input groups and channels, in fusion-branch order (default optical 6 + DEM 2).
    location_encoding : {"none", "region", "coordinates"}, default "none"
        Encode ``inputs["location"]`` and add it to the fused map, as in GlaViTU.
    location_features : int, optional
        Location vector length (12 for ``"region"``, 4 for ``"coordinates"`` by default).
    n_classes : int, default 2
        Output classes (channel 0 = not glacier, 1 = glacier).
    fusion_width : int, default 64
        Channels of the fused map.
    widths : Sequence[int], default (64, 128, 256, 512)
        Encoder level widths (4 levels in the papers).
    bottleneck_width : int, default 1024
        Bottleneck width.
    dropout : float, default 0.0
        Spatial dropout inside the fusion branches and residual blocks.

    Notes
    -----
    Inputs' height and width must be multiples of ``2 ** len(widths)`` (16 by default).
    ``forward`` returns logits ``(B, n_classes, H, W)`` in every mode.

    Examples
    --------
    >>> import torch
    >>> m = ResUNet.small(input_channels={"dem": 2}, location_encoding="region").eval()
    >>> m({"dem": torch.rand(2, 2, 32, 32), "location": torch.eye(12)[:2]}).shape
    torch.Size([2, 2, 32, 32])
    >>> ResUNet(**m.config).config == m.config
    True
    """

    def __init__(
        self,
        *,
        input_channels: Mapping[str, int] | None = None,
        location_encoding: LocationEncoding = "none",
        location_features: int | None = None,
        n_classes: int = 2,
        fusion_width: int = 64,
        widths: Sequence[int] = (64, 128, 256, 512),
        bottleneck_width: int = 1024,
        dropout: float = 0.0,
    ) -> None:
        widths = [int(w) for w in widths]
        if not widths:
            raise ValueError("widths must hold at least one level")
        super().__init__(
            input_channels=input_channels,
            location_encoding=location_encoding,
            location_features=location_features,
            fusion_width=fusion_width,
            size_multiple=2 ** len(widths),
            dropout=dropout,
        )
        self._set_config(
            n_classes=int(n_classes),
            fusion_width=int(fusion_width),
            widths=widths,
            bottleneck_width=int(bottleneck_width),
            dropout=float(dropout),
        )
        self.n_classes = int(n_classes)
        self.encoders = nn.ModuleList()
        prev = int(fusion_width)
        for w in widths:
            self.encoders.append(ResidualBlock(prev, w, dropout=dropout))
            prev = w
        self.bottleneck = ResidualBlock(prev, bottleneck_width, dropout=dropout)
        prev = int(bottleneck_width)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for w in reversed(widths):
            self.ups.append(UpConv(prev, w))
            self.decoders.append(ResidualBlock(2 * w, w, dropout=dropout))
            prev = w
        self.head = nn.Conv2d(prev, self.n_classes, 1)
        self.reset_parameters()

    @classmethod
    def small(cls, **overrides: Any) -> ResUNet:
        """Small configuration for CPU and tests: fusion 8, widths (8, 16, 32, 64), bottleneck 128.

        Examples
        --------
        >>> ResUNet.small(bottleneck_width=32).config["bottleneck_width"]
        32
        """
        cfg: dict[str, Any] = {
            "fusion_width": 8,
            "widths": (8, 16, 32, 64),
            "bottleneck_width": 128,
        }
        cfg.update(overrides)
        return cls(**cfg)

    def forward(self, inputs: Mapping[str, Tensor]) -> Tensor:
        """Logits ``(B, n_classes, H, W)`` for ``{group: (B, C, H, W)}`` (+ ``"location"``)."""
        x = self.fuse(inputs)
        skips = []
        for enc in self.encoders:
            x = enc(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for up, dec, skip in zip(self.ups, self.decoders, reversed(skips)):
            x = dec(torch.cat([up(x), skip], dim=1))
        return self.head(x)
