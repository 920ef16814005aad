"""SETR baseline (SETR-B/16 with the progressive-upsampling decoder) behind the fusion block.

SETR (Zheng et al., "Rethinking Semantic Segmentation from a Sequence-to-Sequence Perspective
with Transformers", CVPR 2021) cuts the input into 16 x 16 patches, encodes them with a ViT
(SETR-B: 768 dimensions, 12 layers, 12 heads, MLP 3072) and decodes the token grid with
*progressive upsampling* (PUP): four times [conv3x3 -> BN -> ReLU -> bilinear x2], then a 1x1
convolution to the classes. Here the patches are cut from the fused map of the GlaViTU fusion
block (64 channels), as in the papers' baselines.

The transformer blocks are GlaViTU's :class:`~glaviz.models.blocks.TransformerBlock` (pre-norm,
LayerNorm eps 1e-3, exact GELU after *both* MLP layers, the authors' Keras variant; the original
ViT applies GELU after the first only); a final LayerNorm follows, as in ViT.

Examples
--------
>>> import torch
>>> from glaviz.models.setr import SETR
>>> model = SETR.small(input_channels={"optical": 6}).eval()
>>> model({"optical": torch.rand(1, 6, 64, 64)}).shape
torch.Size([1, 2, 64, 64])
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glaviz.models.base import FusionModel, LocationEncoding
from glaviz.models.blocks import (
    PatchEmbedding,
    TransformerBlock,
    keras_batch_norm,
    keras_layer_norm,
)

__all__ = ["SETR", "ViTEncoder", "resize_pos_embed"]


def resize_pos_embed(pos_embed: Tensor, grid: tuple[int, int], new_grid: tuple[int, int]) -> Tensor:
    """Bilinearly resample a learned position embedding ``(1, gh*gw, D)`` to another grid.

    Parameters
    ----------
    pos_embed : Tensor
        ``(1, grid[0] * grid[1], D)``, row-major over the grid.
    grid, new_grid : tuple of int
        Source and target ``(rows, columns)``.

    Returns
    -------
    Tensor
        ``(1, new_grid[0] * new_grid[1], D)``; ``pos_embed`` itself when the grids agree.

    Examples
    --------
    >>> import torch
    >>> resize_pos_embed(torch.rand(1, 16, 8), (4, 4), (2, 6)).shape
    torch.Size([1, 12, 8])
    """
    if tuple(grid) == tuple(new_grid):
        return pos_embed
    d = pos_embed.shape[-1]
    x = pos_embed.reshape(1, grid[0], grid[1], d).permute(0, 3, 1, 2)
    x = F.interpolate(x, size=tuple(new_grid), mode="bilinear", align_corners=False)
    return x.permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], d)


class ViTEncoder(nn.Module):
    """ViT encoder on a feature map: patch embedding, learned positions, blocks, final LayerNorm.

    Parameters
    ----------
    in_channels : int
        Channels of the input map.
    dim, depth, num_heads, mlp_dim : int
        Token dimension, number of :class:`~glaviz.models.blocks.TransformerBlock` s, heads
        and MLP width.
    patch_size : int
        Patch side (1: one token per pixel, as in TransUNet's hybrid encoder).
    grid_size : int
        Side of the token grid the position embedding is learned for (``tile_size //
        stride``). Other grids get the embedding bilinearly resampled (:func:`resize_pos_embed`).
    dropout : float, default 0.0
        MLP dropout in the blocks.

    Notes
    -----
    ``forward`` maps ``(B, C, H, W)`` to ``(B, dim, H / patch_size, W / patch_size)``.

    Examples
    --------
    >>> import torch
    >>> vit = ViTEncoder(4, 16, 1, 2, 32, patch_size=4, grid_size=4)
    >>> vit(torch.rand(1, 4, 16, 24)).shape
    torch.Size([1, 16, 4, 6])
    """

    def __init__(
        self,
        in_channels: int,
        dim: int,
        depth: int,
        num_heads: int,
        mlp_dim: int,
        *,
        patch_size: int,
        grid_size: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"transformer dim {dim} is not divisible by num_heads {num_heads}")
        self.patch_size = int(patch_size)
        self.grid_size = int(grid_size)
        self.patch_embed = PatchEmbedding(in_channels, dim, self.patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid_size**2, dim))
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, num_heads, mlp_dim, dropout=dropout) for _ in range(depth)
        )
        self.norm = keras_layer_norm(dim)

    def forward(self, x: Tensor) -> Tensor:
        gh, gw = x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size
        pos = resize_pos_embed(self.pos_embed, (self.grid_size, self.grid_size), (gh, gw))
        tokens = self.patch_embed(x) + pos
        for block in self.blocks:
            tokens = block(tokens)
        tokens = self.norm(tokens)
        return tokens.transpose(1, 2).reshape(x.shape[0], -1, gh, gw)


class SETR(FusionModel):
    """SETR-PUP baseline (SETR-B/16, about 101.7 M parameters) behind the GlaViTU fusion block.

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
        Channels of the fused map (the patches' channels).
    tile_size : int, default 384
        Training tile side; the learned position embedding covers its patch grid (24 x 24).
    patch_size : int, default 16
        Patch side, a power of two; the decoder upsamples ``log2(patch_size)`` times.
    hidden_dim, transformer_depth, num_heads, mlp_dim : int
        ViT-B: 768, 12, 12, 3072.
    decoder_channels : int, default 256
        Channels of the progressive-upsampling decoder.
    dropout : float, default 0.0
        Spatial dropout in the fusion branches and MLP dropout in the transformer.

    Notes
    -----
    Inputs' height and width must be multiples of ``patch_size`` (the patch grid); other sizes
    raise :class:`ValueError` saying how to pad. A grid other than ``tile_size // patch_size``
    resamples the position embedding bilinearly, so predict on ``tile_size`` windows for the
    trained behaviour.

    Examples
    --------
    >>> import torch
    >>> m = SETR.small(input_channels={"dem": 2}).eval()
    >>> m({"dem": torch.rand(1, 2, 48, 32)}).shape
    torch.Size([1, 2, 48, 32])
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
        patch_size: int = 16,
        hidden_dim: int = 768,
        transformer_depth: int = 12,
        num_heads: int = 12,
        mlp_dim: int = 3072,
        decoder_channels: int = 256,
        dropout: float = 0.0,
    ) -> None:
        if patch_size < 2 or patch_size & (patch_size - 1):
            raise ValueError(f"patch_size must be a power of two >= 2, got {patch_size}")
        if tile_size % patch_size:
            raise ValueError(f"tile_size {tile_size} is not a multiple of patch_size {patch_size}")
        super().__init__(
            input_channels=input_channels,
            location_encoding=location_encoding,
            location_features=location_features,
            fusion_width=fusion_width,
            size_multiple=patch_size,
            dropout=dropout,
        )
        self._set_config(
            n_classes=int(n_classes),
            fusion_width=int(fusion_width),
            tile_size=int(tile_size),
            patch_size=int(patch_size),
            hidden_dim=int(hidden_dim),
            transformer_depth=int(transformer_depth),
            num_heads=int(num_heads),
            mlp_dim=int(mlp_dim),
            decoder_channels=int(decoder_channels),
            dropout=float(dropout),
        )
        self.n_classes = int(n_classes)
        self.tile_size = int(tile_size)
        self.encoder = ViTEncoder(
            fusion_width,
            hidden_dim,
            transformer_depth,
            num_heads,
            mlp_dim,
            patch_size=patch_size,
            grid_size=tile_size // patch_size,
            dropout=dropout,
        )
        n_up = int(round(math.log2(patch_size)))
        self.decoder = nn.ModuleList()
        prev = int(hidden_dim)
        for _ in range(n_up):
            self.decoder.append(
                nn.Sequential(
                    nn.Conv2d(prev, decoder_channels, 3, padding=1),
                    keras_batch_norm(decoder_channels),
                    nn.ReLU(inplace=True),
                )
            )
            prev = int(decoder_channels)
        self.head = nn.Conv2d(prev, self.n_classes, 1)
        self.reset_parameters()

    @classmethod
    def small(cls, **overrides: Any) -> SETR:
        """Small configuration: fusion 8, tile 64, patch 16, ViT dim 32 x 2 blocks, decoder 16.

        Examples
        --------
        >>> SETR.small().config["hidden_dim"]
        32
        """
        cfg: dict[str, Any] = {
            "fusion_width": 8,
            "tile_size": 64,
            "patch_size": 16,
            "hidden_dim": 32,
            "transformer_depth": 2,
            "num_heads": 2,
            "mlp_dim": 64,
            "decoder_channels": 16,
        }
        cfg.update(overrides)
        return cls(**cfg)

    def reset_parameters(self) -> None:
        """Glorot-uniform kernels, zero biases, norms at identity, positions from N(0, 0.02)."""
        super().reset_parameters()
        nn.init.normal_(self.encoder.pos_embed, std=0.02)

    def forward(self, inputs: Mapping[str, Tensor]) -> Tensor:
        """Logits ``(B, n_classes, H, W)`` for ``{group: (B, C, H, W)}`` (+ ``"location"``)."""
        x = self.encoder(self.fuse(inputs))
        for stage in self.decoder:
            x = F.interpolate(stage(x), scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.head(x)
