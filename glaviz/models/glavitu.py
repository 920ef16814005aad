"""GlaViTU: the hybrid convolution-transformer glacier mapping network, in PyTorch.

A faithful port of the authors' Keras model (Maslov et al., Nature Communications 16, 43, 2025).
With the same weights it gives the same outputs as the original (see
:func:`glaviz.models.keras_import.load_keras_weights`). The forward pass is:

1. :class:`~glaviz.models.blocks.FusionBlock`: one branch per input group, summed -> ``F``.
2. Optional :class:`~glaviz.models.blocks.LocationEncoder`, broadcast-added to ``F``.
3. :class:`SETRBranch`: ViT encoder on 16x16 patches + progressive upsampling decoder,
   ``S = F + SETR(F)``. The deep-supervision head (training only) reads ``S``.
4. :class:`ResUNetBranch`: residual U-Net, ``U = S + ResUNetBranch(S)``.
5. Head: 1x1 convolution to ``n_classes`` logits (softmax gives the probabilities; channel 0 =
   not glacier, channel 1 = glacier).

Examples
--------
>>> import torch
>>> from glaviz.models.glavitu import GlaViTU
>>> model = GlaViTU.small(tile_size=64).eval()
>>> x = {"optical": torch.rand(1, 6, 64, 64), "dem": torch.rand(1, 2, 64, 64)}
>>> model(x).shape
torch.Size([1, 2, 64, 64])
>>> GlaViTU(**model.config).config == model.config
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glaviz.models.base import (
    DEFAULT_LOCATION_FEATURES,
    FusionModel,
    LocationEncoding,
    check_input_config,
)
from glaviz.models.blocks import (
    Conv2dSame,
    PatchEmbedding,
    ResidualBlock,
    TransformerBlock,
    UpConv,
    conv_bn,
    keras_batch_norm,
)
from glaviz.models.fused import pointwise_conv_add

__all__ = [
    "DEFAULT_LOCATION_FEATURES",
    "GlaViTU",
    "LocationEncoding",
    "ResUNetBranch",
    "SETRBranch",
    "check_input_config",
    "count_parameters_keras_style",
]


class SETRBranch(nn.Module):
    """SETR-like transformer branch with a progressive-upsampling (PUP) decoder.

    Patches of ``patch_size`` are embedded to ``width`` channels, a learned position embedding is
    added (no class token), ``depth`` pre-norm :class:`~glaviz.models.blocks.TransformerBlock` s
    follow, and the token grid is decoded without nonlinearity by ``log2(patch_size) - 1`` steps of
    [conv3x3 -> BN -> bilinear x2] and a final [conv3x3 -> BN -> conv1x1 -> bilinear x2].

    Parameters
    ----------
    width : int
        Channels of the input and output maps (= token dimension).
    tile_size : int
        Side of the input map (fixes the number of tokens of the position embedding).
    patch_size : int
        Patch side, a power of two dividing ``tile_size``.
    depth, num_heads, mlp_dim : int
        Transformer depth, heads and MLP width.
    dropout : float, default 0.0
        MLP dropout.

    Examples
    --------
    >>> import torch
    >>> SETRBranch(8, 32, 8, 1, 2, 16)(torch.rand(1, 8, 32, 32)).shape
    torch.Size([1, 8, 32, 32])
    """

    def __init__(
        self,
        width: int,
        tile_size: int,
        patch_size: int,
        depth: int,
        num_heads: int,
        mlp_dim: int,
        *,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.grid = tile_size // patch_size
        self.patch_embed = PatchEmbedding(width, width, patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid, width))
        self.blocks = nn.ModuleList(
            TransformerBlock(width, num_heads, mlp_dim, dropout=dropout) for _ in range(depth)
        )
        n_up = int(round(math.log2(patch_size)))
        self.decoder_convs = nn.ModuleList(Conv2dSame(width, width, 3) for _ in range(n_up))
        self.decoder_bns = nn.ModuleList(keras_batch_norm(width) for _ in range(n_up))
        self.decoder_out = nn.Conv2d(width, width, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, c = x.shape[:2]
        tokens = self.patch_embed(x) + self.pos_embed
        for block in self.blocks:
            tokens = block(tokens)
        # (B, N, C) -> (B, C, g, g); the transpose is a free channels-last view.
        y = tokens.transpose(1, 2).reshape(b, c, self.grid, self.grid)
        last = len(self.decoder_convs) - 1
        for i, (conv, bn) in enumerate(zip(self.decoder_convs, self.decoder_bns)):
            y = conv_bn(y, cast(Conv2dSame, conv), cast(nn.BatchNorm2d, bn))
            if i == last:
                y = self.decoder_out(y)
            y = F.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)
        return y


class ResUNetBranch(nn.Module):
    """Residual U-Net whose output has the input's channels (a residual branch).

    Encoder: :class:`~glaviz.models.blocks.ResidualBlock` per level (max-pool 2 between levels),
    bottleneck block; decoder: :class:`~glaviz.models.blocks.UpConv`, concatenation
    ``[upsampled, skip]``, residual block; final 1x1 convolution (with bias) back to
    ``in_channels``.

    Parameters
    ----------
    in_channels : int
        Channels of the input and of the output.
    widths : Sequence[int]
        Encoder widths per level (the reference: 64, 128, 256).
    bottleneck_width : int
        Width of the bottleneck (the reference: 512).
    dropout : float, default 0.0
        Spatial dropout inside each residual block.

    Examples
    --------
    >>> import torch
    >>> ResUNetBranch(8, (8, 16), 32)(torch.rand(1, 8, 16, 16)).shape
    torch.Size([1, 8, 16, 16])
    """

    def __init__(
        self,
        in_channels: int,
        widths: Sequence[int],
        bottleneck_width: int,
        *,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        self.encoders = nn.ModuleList()
        prev = in_channels
        for w in widths:
            self.encoders.append(ResidualBlock(prev, w, dropout=dropout))
            prev = w
        self.bottleneck = ResidualBlock(prev, bottleneck_width, dropout=dropout)
        prev = bottleneck_width
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for w in reversed(widths):
            self.ups.append(UpConv(prev, w))
            self.decoders.append(ResidualBlock(2 * w, w, dropout=dropout))
            prev = w
        self.out = nn.Conv2d(prev, in_channels, 1)

    def forward(self, x: Tensor, residual: Tensor | None = None) -> Tensor:
        """The U-Net output ``(B, in_channels, H, W)``, plus ``residual`` when given."""
        skips = []
        for enc in self.encoders:
            x = enc(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for up, dec, skip in zip(self.ups, self.decoders, reversed(skips)):
            x = dec(up(x, skip))
        if residual is None:
            return self.out(x)
        return pointwise_conv_add(residual, x, self.out.weight, self.out.bias)


class GlaViTU(FusionModel):
    """GlaViTU: fusion block, optional location encoding, SETR branch, residual U-Net.

    Parameters
    ----------
    input_channels : Mapping[str, int], default ``{"optical": 6, "dem": 2}``
        Input groups and channel counts, in fusion-branch order. Any non-empty subset of the
        catalog groups (or other identifier names) is valid.
    location_encoding : {"none", "region", "coordinates"}, default "none"
        Whether ``inputs["location"]`` ``(B, L)`` is encoded and added to the fused map.
    location_features : int, optional
        ``L``: 12 for ``"region"`` (11 regions + unknown), 4 for ``"coordinates"`` by default.
    n_classes : int, default 2
        Output classes (channel 0 = not glacier, 1 = glacier).
    width : int, default 64
        Width of the fused map, the transformer tokens and the residual paths.
    unet_widths : Sequence[int], default (64, 128, 256)
        Residual U-Net level widths.
    bottleneck_width : int, default 512
        Residual U-Net bottleneck width.
    transformer_depth, num_heads, mlp_dim, patch_size : int
        Transformer depth (12), heads (4), MLP width (256) and patch side (16).
    tile_size : int, default 384
        Input side; the learned position embedding fixes it (predict pads/windows to it).
    deep_supervision : bool, default True
        Build the deep-supervision head; in training mode ``forward`` then returns
        ``(logits, deep_supervision_logits)``.
    dropout : float, default 0.0
        Spatial dropout in the convolution blocks and MLP dropout in the transformer (the
        released weights were trained without dropout).

    Attributes
    ----------
    config : dict
        JSON-serialisable constructor arguments: ``GlaViTU(**model.config)`` rebuilds the model.

    Examples
    --------
    >>> import torch
    >>> model = GlaViTU.small(input_channels={"optical": 6}, location_encoding="coordinates")
    >>> x = {"optical": torch.rand(2, 6, 64, 64), "location": torch.rand(2, 4)}
    >>> logits, ds_logits = model.train()(x)
    >>> logits.shape, ds_logits.shape
    (torch.Size([2, 2, 64, 64]), torch.Size([2, 2, 64, 64]))
    >>> model.eval()(x).shape
    torch.Size([2, 2, 64, 64])
    """

    def __init__(
        self,
        *,
        input_channels: Mapping[str, int] | None = None,
        location_encoding: LocationEncoding = "none",
        location_features: int | None = None,
        n_classes: int = 2,
        width: int = 64,
        unet_widths: Sequence[int] = (64, 128, 256),
        bottleneck_width: int = 512,
        transformer_depth: int = 12,
        num_heads: int = 4,
        mlp_dim: int = 256,
        patch_size: int = 16,
        tile_size: int = 384,
        deep_supervision: bool = True,
        dropout: float = 0.0,
    ) -> None:
        unet_widths = tuple(int(w) for w in unet_widths)
        if not unet_widths:
            raise ValueError("unet_widths must hold at least one level")
        if patch_size < 2 or patch_size & (patch_size - 1):
            raise ValueError(f"patch_size must be a power of two >= 2, got {patch_size}")
        if tile_size % patch_size:
            raise ValueError(f"tile_size {tile_size} is not a multiple of patch_size {patch_size}")
        if tile_size % 2 ** len(unet_widths):
            raise ValueError(
                f"tile_size {tile_size} is not divisible by 2**{len(unet_widths)} "
                "(one halving per U-Net level)"
            )
        if width % num_heads:
            raise ValueError(f"width {width} is not divisible by num_heads {num_heads}")
        super().__init__(
            input_channels=input_channels,
            location_encoding=location_encoding,
            location_features=location_features,
            fusion_width=width,
            dropout=dropout,
        )
        self._set_config(
            n_classes=int(n_classes),
            width=int(width),
            unet_widths=list(unet_widths),
            bottleneck_width=int(bottleneck_width),
            transformer_depth=int(transformer_depth),
            num_heads=int(num_heads),
            mlp_dim=int(mlp_dim),
            patch_size=int(patch_size),
            tile_size=int(tile_size),
            deep_supervision=bool(deep_supervision),
            dropout=float(dropout),
        )
        self.tile_size = int(tile_size)
        self.n_classes = int(n_classes)
        #: Run the convolutions in channels-last layout (inputs are converted on entry); faster
        #: with oneDNN on CPU and with tensor cores on GPU. Not part of :attr:`config`.
        self.channels_last: bool = True

        self.setr = SETRBranch(
            width,
            tile_size,
            patch_size,
            transformer_depth,
            num_heads,
            mlp_dim,
            dropout=dropout,
        )
        self.deep_supervision_head = nn.Conv2d(width, n_classes, 1) if deep_supervision else None
        self.unet = ResUNetBranch(width, unet_widths, bottleneck_width, dropout=dropout)
        self.head = nn.Conv2d(width, n_classes, 1)
        self.reset_parameters()

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def small(cls, **overrides: Any) -> GlaViTU:
        """A small configuration for tests and CPU training (about 0.6 M parameters).

        Width 16, U-Net widths (16, 32, 64), bottleneck 128, 2 transformer blocks of 2 heads,
        MLP 32, patch 16, tile 64; any constructor argument can be overridden.

        Examples
        --------
        >>> m = GlaViTU.small(tile_size=96)
        >>> m.config["tile_size"], m.config["width"]
        (96, 16)
        """
        cfg: dict[str, Any] = {
            "width": 16,
            "unet_widths": (16, 32, 64),
            "bottleneck_width": 128,
            "transformer_depth": 2,
            "num_heads": 2,
            "mlp_dim": 32,
            "patch_size": 16,
            "tile_size": 64,
        }
        cfg.update(overrides)
        return cls(**cfg)

    def reset_parameters(self) -> None:
        """Keras-like initialisation: Glorot-uniform kernels, zero biases, BN/LN at identity.

        The position embedding is drawn from N(0, 0.02).
        """
        super().reset_parameters()
        nn.init.normal_(self.setr.pos_embed, std=0.02)

    # ------------------------------------------------------------------ forward
    def check_sizes(self, inputs: Mapping[str, Tensor]) -> None:
        """GlaViTU's size rule: every group ``(B, C, tile_size, tile_size)``.

        The other input checks (groups, channels, batch, location) are
        :meth:`~glaviz.models.base.FusionModel.check_inputs`'.

        Examples
        --------
        >>> import torch
        >>> m = GlaViTU.small(input_channels={"dem": 2})
        >>> m.check_inputs({"dem": torch.zeros(1, 2, 32, 32)})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: input group 'dem' has spatial size 32 x 32 but the model takes 64 x 64 tiles ...
        """
        for name in self.input_channels:
            h, w = inputs[name].shape[-2:]
            if h != self.tile_size or w != self.tile_size:
                raise ValueError(
                    f"input group {name!r} has spatial size {h} x {w} but the model takes "
                    f"{self.tile_size} x {self.tile_size} tiles (the learned position embedding "
                    "fixes the size); pad or window larger/smaller inputs, as predict does"
                )

    def prepare_inputs(self, inputs: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
        """The image groups in channels-last layout when :attr:`channels_last` is set."""
        if not self.channels_last:
            return inputs
        fmt = torch.channels_last
        return {k: v.contiguous(memory_format=fmt) if v.ndim == 4 else v for k, v in inputs.items()}

    def forward_features(self, inputs: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Return ``(final_features, stage3_features)``, both ``(B, width, H, W)``.

        ``stage3_features`` (fused map + SETR branch) feeds the deep-supervision head; the
        final features (stage 3 + residual U-Net) feed the main head.
        """
        x = self.fuse(inputs)
        x = x + self.setr(x)
        return self.unet(x, residual=x), x

    def forward(self, inputs: Mapping[str, Tensor]) -> Tensor | tuple[Tensor, Tensor]:
        """Logits ``(B, n_classes, H, W)``; in training mode with deep supervision, a tuple.

        Parameters
        ----------
        inputs : Mapping[str, Tensor]
            Each group ``(B, C, tile_size, tile_size)``, values scaled to [0, 1]; with a location
            encoding also ``"location"`` ``(B, L)``.

        Returns
        -------
        Tensor or tuple of Tensor
            Pre-softmax logits of the main head; ``(logits, deep_supervision_logits)`` when
            ``self.training`` and the deep-supervision head exists.
        """
        features, stage3 = self.forward_features(inputs)
        logits = self.head(features)
        if self.training and self.deep_supervision_head is not None:
            return logits, self.deep_supervision_head(stage3)
        return logits

    def forward_with_deep_supervision(self, inputs: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """``(logits, deep_supervision_logits)`` in any mode (needs the deep-supervision head).

        Examples
        --------
        >>> import torch
        >>> m = GlaViTU.small(input_channels={"dem": 2}).eval()
        >>> main, ds = m.forward_with_deep_supervision({"dem": torch.rand(1, 2, 64, 64)})
        >>> main.shape == ds.shape
        True
        """
        if self.deep_supervision_head is None:
            raise ValueError("this model was built with deep_supervision=False")
        features, stage3 = self.forward_features(inputs)
        return self.head(features), self.deep_supervision_head(stage3)


def count_parameters_keras_style(
    model: nn.Module, *, include_deep_supervision: bool = False
) -> dict[str, int]:
    """Count parameters the way Keras' ``model.summary()`` does.

    ``trainable`` = parameters with ``requires_grad``; ``non_trainable`` = frozen parameters plus
    BatchNorm running means and variances (Keras' moving statistics; ``num_batches_tracked`` is
    not counted); ``total`` = both.

    Parameters
    ----------
    model : torch.nn.Module
        Any module; for :class:`GlaViTU` the deep-supervision head can be left out.
    include_deep_supervision : bool, default False
        Count the deep-supervision head (the Keras *training* model) or not (the inference model).

    Returns
    -------
    dict
        ``{"total": int, "trainable": int, "non_trainable": int}``.

    Examples
    --------
    >>> count_parameters_keras_style(GlaViTU())
    {'total': 10031938, 'trainable': 10024386, 'non_trainable': 7552}
    """
    skip: set[int] = set()
    head = getattr(model, "deep_supervision_head", None)
    if not include_deep_supervision and isinstance(head, nn.Module):
        skip = {id(t) for t in head.parameters()} | {id(t) for t in head.buffers()}
    trainable = non_trainable = 0
    for p in model.parameters():
        if id(p) in skip:
            continue
        if p.requires_grad:
            trainable += p.numel()
        else:
            non_trainable += p.numel()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            for buf in (m.running_mean, m.running_var):
                if buf is not None and id(buf) not in skip:
                    non_trainable += buf.numel()
    return {
        "total": trainable + non_trainable,
        "trainable": trainable,
        "non_trainable": non_trainable,
    }
