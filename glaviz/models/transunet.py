"""TransUNet baseline (R50-ViT-B/16 hybrid with the cascaded upsampler) behind the fusion block.

TransUNet (Chen et al., "TransUNet: Transformers Make Strong Encoders for Medical Image
Segmentation", 2021): a CNN encoder (ResNet-50 stages of 3, 4 and 9 bottlenecks, total stride 16)
whose 1/16 features feed a ViT (patch size 1: one token per feature pixel; ViT-B: 768
dimensions, 12 layers, 12 heads, MLP 3072); the token grid goes through a 3x3 convolution to 512
channels and a *cascaded upsampler*: four times [bilinear x2 -> concatenate the CNN skip
(1/8, 1/4, 1/2, none) -> 2 x (conv3x3 -> BN -> ReLU)] with (256, 128, 64, 16) channels, then a
3x3 convolution to the classes.

Choices: the CNN encoder is :class:`~glaviz.models.resnest.ResNeSt` with ``radix=0``, a plain 7x7
stem and strided shortcuts, i.e. a standard ResNet with BatchNorm (the original uses BiT's
GroupNorm + weight-standardised convolutions); it reads the 64-channel fused map instead of RGB.
Upsampling uses half-pixel centres (``align_corners=False``) like the rest of glaviz. The
transformer blocks are GlaViTU's (see :mod:`glaviz.models.setr`).

Examples
--------
>>> import torch
>>> from glaviz.models.transunet import TransUNet
>>> model = TransUNet.small(input_channels={"optical": 6, "dem": 2}).eval()
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
from glaviz.models.resnest import ResNeSt
from glaviz.models.setr import ViTEncoder

__all__ = ["TransUNet"]


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        keras_batch_norm(out_channels),
        nn.ReLU(inplace=True),
    )


class _DecoderBlock(nn.Module):
    """Bilinear x2 -> concatenate the skip (if any) -> 2 x (conv3x3 -> BN -> ReLU)."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = _conv_bn_relu(in_channels + skip_channels, out_channels)
        self.conv2 = _conv_bn_relu(out_channels, out_channels)

    def forward(self, x: Tensor, skip: Tensor | None) -> Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


class TransUNet(FusionModel):
    """TransUNet baseline (about 105.9 M parameters) behind the GlaViTU fusion block.

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
    tile_size : int, default 384
        Training tile side; the position embedding covers its 1/16 grid (24 x 24).
    backbone_layers : Sequence[int], default (3, 4, 9)
        Bottlenecks of the three ResNet stages (R50-ViT-B/16 hybrid).
    base_width : int, default 64
        Planes of the first ResNet stage (stem and skip channels: ``base_width``,
        ``4 * base_width``, ``8 * base_width``; ViT input ``16 * base_width``).
    hidden_dim, transformer_depth, num_heads, mlp_dim : int
        ViT-B: 768, 12, 12, 3072.
    head_channels : int, default 512
        Channels of the 3x3 convolution between the token grid and the upsampler.
    decoder_channels : Sequence[int], default (256, 128, 64, 16)
        Channels of the four cascaded-upsampler blocks.
    dropout : float, default 0.0
        Spatial dropout in the fusion branches and MLP dropout in the transformer.

    Notes
    -----
    Inputs' height and width must be multiples of 16 (the encoder's total stride). A 1/16 grid
    other than ``tile_size // 16`` resamples the position embedding bilinearly.

    Examples
    --------
    >>> import torch
    >>> m = TransUNet.small(input_channels={"dem": 2}, location_encoding="coordinates").eval()
    >>> m({"dem": torch.rand(1, 2, 32, 48), "location": torch.rand(1, 4)}).shape
    torch.Size([1, 2, 32, 48])
    """

    def __init__(
        self,
        *,
        input_channels: Mapping[str, int] | None = None,
        location_encoding: LocationEncoding = "none",
        location_features: int | None = None,
        n_classes: int = 2,
        fusion_width: int = 64,
        tile_size: int = 384,
        backbone_layers: Sequence[int] = (3, 4, 9),
        base_width: int = 64,
        hidden_dim: int = 768,
        transformer_depth: int = 12,
        num_heads: int = 12,
        mlp_dim: int = 3072,
        head_channels: int = 512,
        decoder_channels: Sequence[int] = (256, 128, 64, 16),
        dropout: float = 0.0,
    ) -> None:
        backbone_layers = [int(n) for n in backbone_layers]
        decoder_channels = [int(c) for c in decoder_channels]
        if len(backbone_layers) != 3:
            raise ValueError(f"backbone_layers must hold 3 stages, got {backbone_layers}")
        if len(decoder_channels) != 4:
            raise ValueError(f"decoder_channels must hold 4 widths, got {decoder_channels}")
        if tile_size % 16:
            raise ValueError(f"tile_size {tile_size} is not a multiple of 16 (the total stride)")
        super().__init__(
            input_channels=input_channels,
            location_encoding=location_encoding,
            location_features=location_features,
            fusion_width=fusion_width,
            size_multiple=16,
            dropout=dropout,
        )
        self._set_config(
            n_classes=int(n_classes),
            fusion_width=int(fusion_width),
            tile_size=int(tile_size),
            backbone_layers=backbone_layers,
            base_width=int(base_width),
            hidden_dim=int(hidden_dim),
            transformer_depth=int(transformer_depth),
            num_heads=int(num_heads),
            mlp_dim=int(mlp_dim),
            head_channels=int(head_channels),
            decoder_channels=decoder_channels,
            dropout=float(dropout),
        )
        self.n_classes = int(n_classes)
        self.tile_size = int(tile_size)
        self.backbone = ResNeSt(
            fusion_width,
            layers=backbone_layers,
            base_width=base_width,
            deep_stem=False,
            radix=0,
            avd=False,
            avg_down=False,
        )
        # channels at strides 2, 4, 8, 16
        stem_ch, c4, c8, c16 = self.backbone.channels
        self.vit = ViTEncoder(
            c16,
            hidden_dim,
            transformer_depth,
            num_heads,
            mlp_dim,
            patch_size=1,
            grid_size=tile_size // 16,
            dropout=dropout,
        )
        self.conv_more = _conv_bn_relu(hidden_dim, head_channels)
        prev = int(head_channels)
        self.skip_channels = [c8, c4, stem_ch, 0]
        self.decoder = nn.ModuleList()
        for skip_ch, out_ch in zip(self.skip_channels, decoder_channels):
            self.decoder.append(_DecoderBlock(prev, skip_ch, out_ch))
            prev = out_ch
        self.head = nn.Conv2d(prev, self.n_classes, 3, padding=1)
        self.reset_parameters()

    @classmethod
    def small(cls, **overrides: Any) -> TransUNet:
        """Small configuration: fusion 8, tile 64, ResNet (1, 1, 1) of base 8, ViT dim 32, 2 blocks.

        Examples
        --------
        >>> TransUNet.small().config["backbone_layers"]
        [1, 1, 1]
        """
        cfg: dict[str, Any] = {
            "fusion_width": 8,
            "tile_size": 64,
            "backbone_layers": (1, 1, 1),
            "base_width": 8,
            "hidden_dim": 32,
            "transformer_depth": 2,
            "num_heads": 2,
            "mlp_dim": 64,
            "head_channels": 32,
            "decoder_channels": (32, 16, 8, 8),
        }
        cfg.update(overrides)
        return cls(**cfg)

    def reset_parameters(self) -> None:
        """Glorot-uniform kernels, zero biases, norms at identity, positions from N(0, 0.02)."""
        super().reset_parameters()
        nn.init.normal_(self.vit.pos_embed, std=0.02)

    def forward(self, inputs: Mapping[str, Tensor]) -> Tensor:
        """Logits ``(B, n_classes, H, W)`` for ``{group: (B, C, H, W)}`` (+ ``"location"``)."""
        stem, f4, f8, f16 = self.backbone(self.fuse(inputs))
        x = self.conv_more(self.vit(f16))
        for block, skip in zip(self.decoder, (f8, f4, stem, None)):
            x = block(x, skip)
        return self.head(x)
