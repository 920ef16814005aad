"""Reusable building blocks with Keras-faithful semantics.

These plain :class:`torch.nn.Module` classes reproduce the numerics of the original Keras GlaViTU
layers (BatchNorm epsilon 1e-3, LayerNorm epsilon 1e-3, exact GELU, ``'same'`` padding that pads
even kernels at the bottom/right) so that weights converted from the authors' ``.h5`` files give
the same outputs. All blocks work on ``(B, C, H, W)`` tensors in either memory format
(``torch.contiguous_format`` or ``torch.channels_last``).

Stable API used by GlaViTU and by the baseline models:

- :class:`FusionBlock` ``(in_channels: Mapping[str, int], width: int = 64)``: per-group branches,
  summed; ``forward(inputs: Mapping[str, Tensor]) -> Tensor``.
- :class:`LocationEncoder` ``(in_features: int, width: int = 64)``: ``(B, L) -> (B, width)``.

Examples
--------
>>> import torch
>>> from glaviz.models.blocks import FusionBlock, LocationEncoder
>>> fusion = FusionBlock({"optical": 6, "dem": 2}, width=16).eval()
>>> x = {"optical": torch.rand(1, 6, 32, 32), "dem": torch.rand(1, 2, 32, 32)}
>>> fusion(x).shape
torch.Size([1, 16, 32, 32])
>>> LocationEncoder(12, 16).eval()(torch.eye(12)[:2]).shape
torch.Size([2, 16])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glaviz.models.fused import (
    conv2d_same,
    conv_leaky_relu,
    fold_batch_norm,
    pointwise_conv_add,
    same_padding,
    upsample_conv2x2,
)

__all__ = [
    "KERAS_BN_EPS",
    "KERAS_BN_MOMENTUM",
    "KERAS_LN_EPS",
    "Conv2dSame",
    "ConvBNAct",
    "FusionBlock",
    "FusionBranch",
    "LocationEncoder",
    "MultiHeadSelfAttention",
    "PatchEmbedding",
    "ResidualBlock",
    "SqueezeExcitation",
    "TransformerBlock",
    "UpConv",
    "conv_bn",
    "conv_bn_act",
    "fold_bn",
    "keras_batch_norm",
    "keras_layer_norm",
    "uses_running_stats",
]

#: Keras ``BatchNormalization`` default epsilon.
KERAS_BN_EPS: float = 1e-3
#: PyTorch momentum equivalent to Keras' ``momentum=0.99`` (PyTorch weighs the *new* batch).
KERAS_BN_MOMENTUM: float = 0.01
#: Keras ``LayerNormalization`` default epsilon.
KERAS_LN_EPS: float = 1e-3


def keras_batch_norm(num_features: int, *, dim: int = 2) -> nn.BatchNorm1d | nn.BatchNorm2d:
    """Batch normalisation with Keras defaults (eps 1e-3, Keras momentum 0.99).

    ``dim=2`` gives :class:`~torch.nn.BatchNorm2d` for ``(B, C, H, W)`` maps, ``dim=1``
    :class:`~torch.nn.BatchNorm1d` for ``(B, C)`` vectors.

    Examples
    --------
    >>> bn = keras_batch_norm(8)
    >>> bn.eps, bn.momentum
    (0.001, 0.01)
    """
    if dim == 2:
        return nn.BatchNorm2d(num_features, eps=KERAS_BN_EPS, momentum=KERAS_BN_MOMENTUM)
    if dim == 1:
        return nn.BatchNorm1d(num_features, eps=KERAS_BN_EPS, momentum=KERAS_BN_MOMENTUM)
    raise ValueError(f"dim must be 1 or 2, got {dim}")


def keras_layer_norm(num_features: int) -> nn.LayerNorm:
    """Layer normalisation over the last axis with the Keras epsilon (1e-3).

    Examples
    --------
    >>> keras_layer_norm(64).eps
    0.001
    """
    return nn.LayerNorm(num_features, eps=KERAS_LN_EPS)


class Conv2dSame(nn.Conv2d):
    """Stride-1 convolution with Keras ``padding='same'``.

    Odd (square) kernels pad symmetrically (native PyTorch padding, no copy). Even kernels need
    one more row/column of zeros at the bottom/right than at the top/left, as in TensorFlow
    (:func:`glaviz.models.fused.conv2d_same`).

    Examples
    --------
    >>> import torch
    >>> conv = Conv2dSame(3, 4, 2, bias=False)
    >>> conv(torch.zeros(1, 3, 5, 7)).shape
    torch.Size([1, 4, 5, 7])
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, *, bias: bool = True
    ) -> None:
        before, _ = same_padding(kernel_size)
        super().__init__(in_channels, out_channels, kernel_size, padding=before, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return conv2d_same(x, self.weight, self.bias)


def uses_running_stats(bn: nn.Module) -> bool:
    """True when ``bn`` normalises with its running statistics (inference mode).

    Examples
    --------
    >>> uses_running_stats(keras_batch_norm(4).eval()), uses_running_stats(keras_batch_norm(4))
    (True, False)
    """
    return not bn.training and getattr(bn, "running_mean", None) is not None


def fold_bn(
    weight: Tensor, bias: Tensor | None, bn: nn.BatchNorm1d | nn.BatchNorm2d
) -> tuple[Tensor, Tensor]:
    """``bn``'s running statistics folded into a layer's ``weight`` and ``bias``.

    :func:`glaviz.models.fused.fold_batch_norm` over the module's tensors.

    Examples
    --------
    >>> import torch
    >>> conv, bn = torch.nn.Conv2d(3, 4, 1), keras_batch_norm(4).eval()
    >>> w, b = fold_bn(conv.weight, conv.bias, bn)
    >>> x = torch.rand(1, 3, 4, 4)
    >>> torch.allclose(bn(conv(x)), torch.nn.functional.conv2d(x, w, b), atol=1e-5)
    True
    """
    mean, var = bn.running_mean, bn.running_var
    assert mean is not None and var is not None
    return fold_batch_norm(weight, bias, mean, var, bn.eps, bn.weight, bn.bias)


def conv_bn(x: Tensor, conv: Conv2dSame, bn: nn.BatchNorm1d | nn.BatchNorm2d) -> Tensor:
    """``bn(conv(x))``; in inference mode the BatchNorm is folded into the convolution.

    Folding saves a full pass over the feature map; parameters and state dict are unchanged.

    Examples
    --------
    >>> import torch
    >>> conv, bn = Conv2dSame(3, 4, 3), keras_batch_norm(4).eval()
    >>> x = torch.rand(1, 3, 8, 8)
    >>> torch.allclose(conv_bn(x, conv, bn), bn(conv(x)), atol=1e-5)
    True
    """
    if uses_running_stats(bn):
        return conv2d_same(x, *fold_bn(conv.weight, conv.bias, bn))
    return bn(conv(x))


def conv_bn_act(
    x: Tensor, conv: Conv2dSame, bn: nn.BatchNorm1d | nn.BatchNorm2d, negative_slope: float
) -> Tensor:
    """``leaky_relu(bn(conv(x)), negative_slope)``; one oneDNN call in CPU inference.

    In inference mode the BatchNorm is folded and :func:`glaviz.models.fused.conv_leaky_relu`
    applies the activation as the convolution's post-op; otherwise the plain sequence.

    Examples
    --------
    >>> import torch
    >>> conv, bn = Conv2dSame(4, 6, 3), keras_batch_norm(6).eval()
    >>> x = torch.randn(2, 4, 9, 9)
    >>> with torch.no_grad():
    ...     y = conv_bn_act(x, conv, bn, 0.2)
    ...     ref = torch.nn.functional.leaky_relu(bn(conv(x)), 0.2)
    >>> torch.allclose(y, ref, atol=1e-5)
    True
    """
    if uses_running_stats(bn):
        return conv_leaky_relu(x, *fold_bn(conv.weight, conv.bias, bn), negative_slope)
    return F.leaky_relu(bn(conv(x)), negative_slope, inplace=True)  # a fresh tensor


class ConvBNAct(nn.Module):
    """Two times (conv 3x3 'same' -> BatchNorm -> LeakyReLU), then optional spatial dropout.

    The Keras ``ConvBatchNormAct_x2`` block; LeakyReLU slope 0.2 (``tf.nn.leaky_relu``); channel
    dropout ``dropout`` after the second activation (0 disables it). ``act`` holds the slope;
    ``forward`` applies it through :func:`conv_bn_act` (one oneDNN call in CPU
    inference), so hooks on ``act`` do not fire.

    Examples
    --------
    >>> import torch
    >>> ConvBNAct(3, 8)(torch.rand(2, 3, 16, 16)).shape
    torch.Size([2, 8, 16, 16])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.conv1 = Conv2dSame(in_channels, out_channels, 3)
        self.bn1 = keras_batch_norm(out_channels)
        self.conv2 = Conv2dSame(out_channels, out_channels, 3)
        self.bn2 = keras_batch_norm(out_channels)
        self.act = nn.LeakyReLU(negative_slope, inplace=True)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        slope = self.act.negative_slope
        x = conv_bn_act(x, self.conv1, self.bn1, slope)
        x = conv_bn_act(x, self.conv2, self.bn2, slope)
        return self.dropout(x)


class SqueezeExcitation(nn.Module):
    """Squeeze-excitation gate: global average pool -> dense + LeakyReLU(0.2) -> dense + sigmoid.

    The resulting per-channel weights (:meth:`gate`) multiply the input.

    Examples
    --------
    >>> import torch
    >>> SqueezeExcitation(8)(torch.rand(2, 8, 4, 4)).shape
    torch.Size([2, 8, 4, 4])
    """

    def __init__(self, channels: int, *, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.squeeze = nn.Linear(channels, channels)
        self.excite = nn.Linear(channels, channels)
        self.negative_slope = negative_slope

    def gate(self, x: Tensor) -> Tensor:
        """The per-channel weights ``(B, C, 1, 1)`` in [0, 1]."""
        s = x.mean(dim=(2, 3))
        s = F.leaky_relu(self.squeeze(s), self.negative_slope)
        return torch.sigmoid(self.excite(s))[:, :, None, None]

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(x)


class FusionBranch(nn.Module):
    """One input group's branch of the fusion block: :class:`ConvBNAct` then SE gate.

    Examples
    --------
    >>> import torch
    >>> FusionBranch(2, 8)(torch.rand(1, 2, 8, 8)).shape
    torch.Size([1, 8, 8, 8])
    """

    def __init__(self, in_channels: int, width: int = 64, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.conv = ConvBNAct(in_channels, width, dropout=dropout)
        self.se = SqueezeExcitation(width)

    def forward(self, x: Tensor) -> Tensor:
        return self.se(self.conv(x))


class FusionBlock(nn.Module):
    """Multi-source fusion: one branch per input group, branch outputs summed.

    Each branch is conv3x3 -> BN -> LeakyReLU(0.2), twice, to ``width`` channels, then a
    squeeze-excitation gate. Branches are summed in the order of ``in_channels``. ``forward``
    takes a mapping holding at least every configured group as ``(B, C, H, W)``; other keys
    (for example ``"location"``) are ignored; a missing group or a wrong channel count raises
    :class:`ValueError` naming the group.

    Parameters
    ----------
    in_channels : Mapping[str, int]
        Input group name -> number of channels, e.g. ``{"optical": 6, "dem": 2}``. The order
        is the order of the branches (and of their parameters in the state dict).
    width : int, default 64
        Output channels.
    dropout : float, default 0.0
        Spatial dropout inside each branch (inactive in the reference training).

    Examples
    --------
    >>> import torch
    >>> block = FusionBlock({"optical": 6, "dem": 2}, width=8)
    >>> block.groups
    ('optical', 'dem')
    >>> out = block({"optical": torch.rand(2, 6, 16, 16), "dem": torch.rand(2, 2, 16, 16)})
    >>> out.shape
    torch.Size([2, 8, 16, 16])
    """

    def __init__(
        self, in_channels: Mapping[str, int], width: int = 64, *, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if not in_channels:
            raise ValueError("FusionBlock needs at least one input group")
        for name, channels in in_channels.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"input group name {name!r} must be a Python identifier")
            if int(channels) < 1:
                raise ValueError(f"input group {name!r} must have >= 1 channel, got {channels}")
        self.in_channels: dict[str, int] = {k: int(v) for k, v in in_channels.items()}
        self.width = int(width)
        self.branches = nn.ModuleDict(
            {k: FusionBranch(v, self.width, dropout=dropout) for k, v in self.in_channels.items()}
        )

    @property
    def groups(self) -> tuple[str, ...]:
        """Names of the input groups, in branch order."""
        return tuple(self.in_channels)

    def check_inputs(self, inputs: Mapping[str, Tensor]) -> None:
        """Raise :class:`ValueError` for a missing group or a wrong shape/channel count.

        Examples
        --------
        >>> import torch
        >>> FusionBlock({"dem": 2}, 4).check_inputs({"dem": torch.zeros(1, 3, 8, 8)})
        Traceback (most recent call last):
        ...
        ValueError: input group 'dem' must have 2 channels (B, 2, H, W), got shape (1, 3, 8, 8)
        """
        for name, channels in self.in_channels.items():
            if name not in inputs:
                raise ValueError(
                    f"input group {name!r} is missing (expected groups: {list(self.in_channels)},"
                    f" got: {list(inputs)})"
                )
            x = inputs[name]
            if x.ndim != 4 or x.shape[1] != channels:
                raise ValueError(
                    f"input group {name!r} must have {channels} channels (B, {channels}, H, W),"
                    f" got shape {tuple(x.shape)}"
                )

    def forward(self, inputs: Mapping[str, Tensor]) -> Tensor:
        self.check_inputs(inputs)
        out: Tensor | None = None
        for name, module in self.branches.items():
            branch = cast(FusionBranch, module)
            y = branch.conv(inputs[name])
            gate = branch.se.gate(y)
            # Gate and sum in one pass per branch (addcmul), the same sum as Keras'.
            out = y * gate if out is None else torch.addcmul(out, y, gate)
        assert out is not None
        return out


class LocationEncoder(nn.Module):
    """Location vector encoder: (dense -> BN -> LeakyReLU(0.3)) x 2.

    Parameters
    ----------
    in_features : int
        Length ``L`` of the location vector (12 for the region one-hot with "unknown" slot, 4
        for ``[sin lat, cos lat, sin lon, cos lon]``).
    width : int, default 64
        Output features (the fused map's channels, to which the output is broadcast-added).
    negative_slope : float, default 0.3
        LeakyReLU slope (Keras ``LeakyReLU`` layer default).

    ``forward`` maps ``(B, L)`` to ``(B, width)``; add ``out[:, :, None, None]`` to a map.

    Examples
    --------
    >>> import torch
    >>> enc = LocationEncoder(4, 8).eval()
    >>> enc(torch.rand(3, 4)).shape
    torch.Size([3, 8])
    """

    def __init__(self, in_features: int, width: int = 64, *, negative_slope: float = 0.3) -> None:
        super().__init__()
        self.in_features = int(in_features)
        self.width = int(width)
        self.dense1 = nn.Linear(self.in_features, self.width)
        self.bn1 = keras_batch_norm(self.width, dim=1)
        self.dense2 = nn.Linear(self.width, self.width)
        self.bn2 = keras_batch_norm(self.width, dim=1)
        self.act = nn.LeakyReLU(negative_slope)

    def forward(self, location: Tensor) -> Tensor:
        if location.ndim != 2 or location.shape[1] != self.in_features:
            raise ValueError(
                f"location must have shape (B, {self.in_features}), got {tuple(location.shape)}"
            )
        x = self.act(self.bn1(self.dense1(location)))
        return self.act(self.bn2(self.dense2(x)))


class ResidualBlock(nn.Module):
    """:class:`ConvBNAct` plus a bias-free 1x1 projection of the input (always applied).

    Examples
    --------
    >>> import torch
    >>> ResidualBlock(4, 8)(torch.rand(1, 4, 8, 8)).shape
    torch.Size([1, 8, 8, 8])
    """

    def __init__(self, in_channels: int, out_channels: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.conv = ConvBNAct(in_channels, out_channels, dropout=dropout)
        self.proj = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return pointwise_conv_add(self.conv(x), x, self.proj.weight, self.proj.bias, inplace=True)


class UpConv(nn.Module):
    """U-Net up step: nearest x2 upsampling -> conv 2x2 'same' (no bias) -> BatchNorm.

    Computed without materialising the upsampled map, by phases
    (:func:`glaviz.models.fused.upsample_conv2x2`): exactly the same function as the direct form
    (:meth:`forward_reference`) with 9/16 of its multiply-adds.

    Examples
    --------
    >>> import torch
    >>> up = UpConv(8, 4).eval()
    >>> x = torch.rand(1, 8, 5, 5)
    >>> up(x).shape
    torch.Size([1, 4, 10, 10])
    >>> torch.allclose(up(x), up.forward_reference(x), atol=1e-5)
    True
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = Conv2dSame(in_channels, out_channels, 2, bias=False)
        self.bn = keras_batch_norm(out_channels)

    def forward_reference(self, x: Tensor) -> Tensor:
        """The literal Keras computation (upsample, pad bottom/right, convolve, normalise)."""
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.bn(self.conv(x))

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        """Upsampled ``(B, out, 2H, 2W)``, or ``cat([upsampled, skip], 1)`` if ``skip`` is given.

        In inference mode the concatenation is written in place (no extra copy).
        """
        if uses_running_stats(self.bn):  # BatchNorm folded, skip written into the buffer
            return upsample_conv2x2(x, *fold_bn(self.conv.weight, None, self.bn), skip=skip)
        out = self.bn(upsample_conv2x2(x, self.conv.weight, None))
        return out if skip is None else torch.cat([out, skip.to(out.dtype)], dim=1)


class PatchEmbedding(nn.Module):
    """Non-overlapping patches -> linear projection (parameters of a strided convolution).

    Parameters
    ----------
    in_channels : int
        Channels of the input map.
    dim : int
        Token dimension.
    patch_size : int
        Side of the square patches (also the stride).

    ``forward`` maps ``(B, C, H, W)`` to tokens ``(B, (H/p)*(W/p), dim)`` in row-major order of
    the patch grid. A Keras ``Dense`` on patches flattened in (row, column, channel) order has
    kernel ``(p*p*C, dim)``; reshaped to ``(p, p, C, dim)`` and permuted to ``(dim, C, p, p)`` it
    is this module's ``proj.weight``.

    When ``in_channels`` is a multiple of 32 the projection runs as a strided convolution (fastest
    with oneDNN); otherwise the patches are gathered and multiplied with the flattened kernel,
    because oneDNN's bfloat16 convolution (torch 2.13, CPU) returns wrong results for large
    kernels over few input channels. Both forms compute the same function.

    Examples
    --------
    >>> import torch
    >>> PatchEmbedding(3, 8, 4)(torch.rand(2, 3, 16, 16)).shape
    torch.Size([2, 16, 8])
    """

    def __init__(self, in_channels: int, dim: int, patch_size: int) -> None:
        super().__init__()
        self.patch_size = int(patch_size)
        self.proj = nn.Conv2d(in_channels, dim, self.patch_size, stride=self.patch_size)

    def forward(self, x: Tensor) -> Tensor:
        if self.proj.in_channels % 32 == 0:
            return self.proj(x).flatten(2).transpose(1, 2)
        b, c, h, w = x.shape
        p = self.patch_size
        gh, gw = h // p, w // p
        patches = x[:, :, : gh * p, : gw * p].permute(0, 2, 3, 1).reshape(b, gh, p, gw, p, c)
        patches = patches.transpose(2, 3).reshape(b, gh * gw, p * p * c)
        weight = self.proj.weight.permute(0, 2, 3, 1).reshape(self.proj.out_channels, -1)
        return F.linear(patches, weight, self.proj.bias)


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention with biases, via :func:`F.scaled_dot_product_attention`.

    Query, key and value projections are fused in one :class:`~torch.nn.Linear` (``qkv``, output
    ordered query | key | value, each head-major); scores are scaled by ``1/sqrt(head_dim)``
    (``head_dim`` defaults to ``dim // num_heads``); ``dropout`` acts on the attention weights
    in training mode.

    Examples
    --------
    >>> import torch
    >>> MultiHeadSelfAttention(16, 4)(torch.rand(2, 10, 16)).shape
    torch.Size([2, 10, 16])
    """

    def __init__(
        self, dim: int, num_heads: int, *, head_dim: int | None = None, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if head_dim is None:
            if dim % num_heads:
                raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
            head_dim = dim // num_heads
        self.num_heads = int(num_heads)
        self.head_dim = int(head_dim)
        inner = self.num_heads * self.head_dim
        self.qkv = nn.Linear(dim, 3 * inner)
        self.proj = nn.Linear(inner, dim)
        self.dropout = float(dropout)

    def forward(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        out = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0
        )
        return self.proj(out.transpose(1, 2).reshape(b, n, -1))


class TransformerBlock(nn.Module):
    """Pre-norm transformer block (the Keras GlaViTU variant).

    ``x + MHSA(LN(x))`` then ``x + MLP(LN(x))`` where the MLP is dense ``mlp_dim`` + GELU ->
    (dropout) -> dense ``dim`` + GELU (GELU on both layers, exact erf form). LayerNorm eps 1e-3.

    Examples
    --------
    >>> import torch
    >>> TransformerBlock(16, 4, 32)(torch.rand(2, 10, 16)).shape
    torch.Size([2, 10, 16])
    """

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = keras_layer_norm(dim)
        self.attn = MultiHeadSelfAttention(dim, num_heads)
        self.norm2 = keras_layer_norm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_dim),
            nn.GELU(),
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
            nn.Linear(mlp_dim, dim),
            nn.GELU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))
