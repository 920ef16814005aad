"""DeepLabv3+ baseline with a ResNeSt-101 backbone, behind the GlaViTU fusion block.

DeepLabv3+ (Chen et al., "Encoder-Decoder with Atrous Separable Convolution for Semantic Image
Segmentation", ECCV 2018): a dilated backbone (here ResNeSt-101 at output stride 16, as in the
GlaViTU papers), *atrous spatial pyramid pooling* (ASPP: a 1x1 branch, three 3x3 branches with
rates 6, 12, 18 and an image-pooling branch, 256 channels each, concatenated and projected to
256), and a decoder that upsamples the ASPP output x4, concatenates the stride-4 backbone
features reduced to 48 channels, applies 2 x (conv3x3 256 -> BN -> ReLU), a 1x1 convolution to
the classes and a bilinear x4 upsampling to the input size.

The ASPP branches use plain (not depthwise-separable) convolutions, as most DeepLabv3+
re-implementations with ResNet-family backbones do. At output stride 8 the DeepLab papers double
the rates (12, 24, 36); pass ``atrous_rates`` for that.

Examples
--------
>>> import torch
>>> from glaviz.models.deeplab import DeepLabV3Plus
>>> model = DeepLabV3Plus.small(input_channels={"optical": 6, "dem": 2}).eval()
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
from glaviz.models.blocks import keras_batch_norm
from glaviz.models.resnest import RESNEST101_LAYERS, ResNeSt

__all__ = ["ASPP", "DeepLabV3Plus"]


def _conv_bn_relu(
    in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1
) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            padding=dilation * (kernel_size // 2),
            dilation=dilation,
            bias=False,
        ),
        keras_batch_norm(out_channels),
        nn.ReLU(inplace=True),
    )


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling with image pooling and a 1x1 projection.

    Parameters
    ----------
    in_channels : int
        Channels of the backbone output.
    out_channels : int, default 256
        Channels of every branch and of the projection.
    rates : Sequence[int], default (6, 12, 18)
        Dilation rates of the 3x3 branches.
    dropout : float, default 0.0
        Dropout after the projection (the DeepLab reference uses 0.1 to 0.5).

    Notes
    -----
    The image-pooling branch has BatchNorm on a 1 x 1 map: training needs batches of at least
    two samples (PyTorch raises otherwise).

    Examples
    --------
    >>> import torch
    >>> ASPP(16, 8, (1, 2)).eval()(torch.rand(1, 16, 8, 8)).shape
    torch.Size([1, 8, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 256,
        rates: Sequence[int] = (6, 12, 18),
        *,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.branches = nn.ModuleList([_conv_bn_relu(in_channels, out_channels)])
        for r in rates:
            self.branches.append(_conv_bn_relu(in_channels, out_channels, 3, int(r)))
        self.pooling = _conv_bn_relu(in_channels, out_channels)
        self.project = _conv_bn_relu((len(rates) + 2) * out_channels, out_channels)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        outs = [branch(x) for branch in self.branches]
        pooled = self.pooling(F.adaptive_avg_pool2d(x, 1))
        outs.append(pooled.expand(-1, -1, *x.shape[-2:]))
        return self.dropout(self.project(torch.cat(outs, dim=1)))


class DeepLabV3Plus(FusionModel):
    """DeepLabv3+ with ResNeSt-101 (about 63.2 M parameters) behind the GlaViTU fusion block.

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
        Channels of the fused map (the backbone's input).
    backbone_layers : Sequence[int], default (3, 4, 23, 3)
        ResNeSt stages (ResNeSt-101).
    base_width, stem_width : int, default 64
        ResNeSt first-stage planes and deep-stem width.
    radix, cardinality : int, default 2 and 1
        ResNeSt split attention (radix 0 gives a ResNet-D backbone).
    output_stride : {16, 8}, default 16
        Backbone output stride (dilated stages beyond it).
    aspp_channels : int, default 256
        Channels of the ASPP branches and projection.
    atrous_rates : Sequence[int], default (6, 12, 18)
        ASPP dilation rates.
    low_level_channels : int, default 48
        Channels the stride-4 skip is reduced to.
    decoder_channels : int, default 256
        Channels of the decoder's 3x3 convolutions.
    dropout : float, default 0.0
        Spatial dropout in the fusion branches and dropout after the ASPP projection.

    Notes
    -----
    Inputs' height and width must be multiples of ``output_stride``. Training needs batches of
    at least two samples (image-pooling BatchNorm).

    Examples
    --------
    >>> import torch
    >>> m = DeepLabV3Plus.small(input_channels={"dem": 2}, output_stride=8).eval()
    >>> m({"dem": torch.rand(1, 2, 40, 24)}).shape
    torch.Size([1, 2, 40, 24])
    """

    def __init__(
        self,
        *,
        input_channels: Mapping[str, int] | None = None,
        location_encoding: LocationEncoding = "none",
        location_features: int | None = None,
        n_classes: int = 2,
        fusion_width: int = 64,
        backbone_layers: Sequence[int] = RESNEST101_LAYERS,
        base_width: int = 64,
        stem_width: int = 64,
        radix: int = 2,
        cardinality: int = 1,
        output_stride: int = 16,
        aspp_channels: int = 256,
        atrous_rates: Sequence[int] = (6, 12, 18),
        low_level_channels: int = 48,
        decoder_channels: int = 256,
        dropout: float = 0.0,
    ) -> None:
        backbone_layers = [int(n) for n in backbone_layers]
        atrous_rates = [int(r) for r in atrous_rates]
        if len(backbone_layers) != 4:
            raise ValueError(f"backbone_layers must hold 4 stages, got {backbone_layers}")
        if output_stride not in (8, 16):
            raise ValueError(f"output_stride must be 16 or 8, got {output_stride}")
        super().__init__(
            input_channels=input_channels,
            location_encoding=location_encoding,
            location_features=location_features,
            fusion_width=fusion_width,
            size_multiple=output_stride,
            dropout=dropout,
        )
        self._set_config(
            n_classes=int(n_classes),
            fusion_width=int(fusion_width),
            backbone_layers=backbone_layers,
            base_width=int(base_width),
            stem_width=int(stem_width),
            radix=int(radix),
            cardinality=int(cardinality),
            output_stride=int(output_stride),
            aspp_channels=int(aspp_channels),
            atrous_rates=atrous_rates,
            low_level_channels=int(low_level_channels),
            decoder_channels=int(decoder_channels),
            dropout=float(dropout),
        )
        self.n_classes = int(n_classes)
        self.backbone = ResNeSt(
            fusion_width,
            layers=backbone_layers,
            base_width=base_width,
            stem_width=stem_width,
            radix=radix,
            cardinality=cardinality,
            output_stride=output_stride,
        )
        low_ch, high_ch = self.backbone.channels[1], self.backbone.channels[-1]
        self.aspp = ASPP(high_ch, aspp_channels, atrous_rates, dropout=dropout)
        self.low_level = _conv_bn_relu(low_ch, low_level_channels)
        self.decoder = nn.Sequential(
            _conv_bn_relu(aspp_channels + low_level_channels, decoder_channels, 3),
            _conv_bn_relu(decoder_channels, decoder_channels, 3),
        )
        self.head = nn.Conv2d(decoder_channels, self.n_classes, 1)
        self.reset_parameters()

    @classmethod
    def small(cls, **overrides: Any) -> DeepLabV3Plus:
        """Small configuration: fusion 8, ResNeSt (1, 1, 1, 1) of width 8, ASPP and decoder 16.

        Examples
        --------
        >>> DeepLabV3Plus.small().config["backbone_layers"]
        [1, 1, 1, 1]
        """
        cfg: dict[str, Any] = {
            "fusion_width": 8,
            "backbone_layers": (1, 1, 1, 1),
            "base_width": 8,
            "stem_width": 8,
            "aspp_channels": 16,
            "low_level_channels": 8,
            "decoder_channels": 16,
        }
        cfg.update(overrides)
        return cls(**cfg)

    def forward(self, inputs: Mapping[str, Tensor]) -> Tensor:
        """Logits ``(B, n_classes, H, W)`` for ``{group: (B, C, H, W)}`` (+ ``"location"``)."""
        x = self.fuse(inputs)
        size = x.shape[-2:]
        features = self.backbone(x)
        low = self.low_level(features[1])
        high = self.aspp(features[-1])
        high = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=False)
        y = self.head(self.decoder(torch.cat([high, low], dim=1)))
        return F.interpolate(y, size=size, mode="bilinear", align_corners=False)
