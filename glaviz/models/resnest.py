"""ResNeSt backbones (split-attention networks) as plain :class:`torch.nn.Module` s.

ResNeSt (Zhang et al., "ResNeSt: Split-Attention Networks", 2020) is a ResNet whose 3x3
bottleneck convolution is replaced by a *split-attention* convolution: the convolution produces
``radix`` groups of feature maps, a small gating network (global pooling -> 1x1 conv -> BN -> ReLU
-> 1x1 conv -> softmax over the radix splits) weighs them, and their weighted sum is the output.
ResNeSt-101, the DeepLabv3+ backbone of the GlaViTU papers, uses radix 2, cardinality 1, a deep
stem (three 3x3 convolutions, 64-128 channels), average-pool downsampling in the shortcut
(``avg_down``) and in the block (``avd``), and stages of (3, 4, 23, 3) bottlenecks.

With ``radix=0`` the bottleneck is a plain ResNet bottleneck (3x3 conv -> BN -> ReLU); with a plain
stem and no average-pool downsampling the network is the classic ResNet-50/101, which
:class:`~glaviz.models.transunet.TransUNet` uses as its CNN encoder.

Written from the paper's description; no weights are shipped (the input is the fused map of
:class:`~glaviz.models.blocks.FusionBlock`, not RGB, so ImageNet weights would not apply).

Examples
--------
>>> import torch
>>> from glaviz.models.resnest import ResNeSt
>>> net = ResNeSt(8, layers=(1, 1, 1, 1), base_width=8, stem_width=8, output_stride=16).eval()
>>> [tuple(f.shape[1:]) for f in net(torch.rand(1, 8, 64, 64))]
[(16, 32, 32), (32, 16, 16), (64, 8, 8), (128, 4, 4), (256, 4, 4)]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from glaviz.models.blocks import keras_batch_norm

__all__ = [
    "RESNEST101_LAYERS",
    "ResNeSt",
    "ResNeStBottleneck",
    "SplitAttentionConv2d",
]

#: Bottlenecks per stage of ResNeSt-101 (and ResNet-101).
RESNEST101_LAYERS: tuple[int, ...] = (3, 4, 23, 3)


class SplitAttentionConv2d(nn.Module):
    """Split-attention convolution (the ResNeSt ``SplAtConv2d``), followed by BN and ReLU.

    Parameters
    ----------
    in_channels, channels : int
        Input and output channels.
    kernel_size, stride, dilation : int
        Of the (grouped) convolution; padding keeps ``H / stride``.
    cardinality : int, default 1
        Number of cardinal groups.
    radix : int, default 2
        Splits per cardinal group (>= 1; radix 1 gates with a sigmoid instead of a softmax).
    reduction_factor : int, default 4
        The gate's hidden width is ``max(channels * radix // reduction_factor, 32)``.

    Examples
    --------
    >>> import torch
    >>> SplitAttentionConv2d(8, 16, stride=2)(torch.rand(2, 8, 8, 8)).shape
    torch.Size([2, 16, 4, 4])
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        *,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        cardinality: int = 1,
        radix: int = 2,
        reduction_factor: int = 4,
    ) -> None:
        super().__init__()
        if radix < 1:
            raise ValueError(f"radix must be >= 1, got {radix}")
        inter = max(channels * radix // reduction_factor, 32)
        self.radix = int(radix)
        self.cardinality = int(cardinality)
        self.channels = int(channels)
        self.conv = nn.Conv2d(
            in_channels,
            channels * radix,
            kernel_size,
            stride=stride,
            padding=dilation * (kernel_size // 2),
            dilation=dilation,
            groups=cardinality * radix,
            bias=False,
        )
        self.bn0 = keras_batch_norm(channels * radix)
        self.fc1 = nn.Conv2d(channels, inter, 1, groups=cardinality)
        self.bn1 = keras_batch_norm(inter)
        self.fc2 = nn.Conv2d(inter, channels * radix, 1, groups=cardinality)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn0(self.conv(x)))
        b = x.shape[0]
        if self.radix > 1:
            splits = x.view(b, self.radix, self.channels, *x.shape[2:])
            gap = splits.sum(dim=1)
        else:
            gap = x
        gap = F.adaptive_avg_pool2d(gap, 1)
        att = self.fc2(F.relu(self.bn1(self.fc1(gap))))
        if self.radix > 1:
            # (B, card * radix * c) -> softmax over the radix axis, per cardinal group.
            att = att.view(b, self.cardinality, self.radix, -1).transpose(1, 2)
            att = F.softmax(att, dim=1).reshape(b, self.radix, self.channels, 1, 1)
            return (splits * att).sum(dim=1)
        return x * att.sigmoid()


class ResNeStBottleneck(nn.Module):
    """ResNeSt bottleneck: 1x1 -> split-attention 3x3 (-> avg-pool stride) -> 1x1, plus shortcut.

    Parameters
    ----------
    in_channels : int
        Input channels.
    planes : int
        Bottleneck width; the output has ``planes * 4`` channels.
    stride, dilation : int
        Of the block (the stride moves to an average pool when ``avd`` applies).
    radix : int, default 2
        Split-attention radix; 0 gives a plain ResNet bottleneck (3x3 conv -> BN -> ReLU).
    cardinality : int, default 1
        Cardinal groups.
    bottleneck_width : int, default 64
        Group width per 64 planes (ResNeXt convention).
    avd : bool, default True
        Replace the strided 3x3 convolution by a stride-1 one followed by ``AvgPool2d(3, stride)``
        (applied in the first block of every stage and wherever the stride is > 1).
    avg_down : bool, default True
        In the projection shortcut, downsample with ``AvgPool2d(stride)`` before a stride-1 1x1
        convolution instead of a strided 1x1 convolution.
    is_first : bool, default False
        Whether this is the first block of its stage.

    Examples
    --------
    >>> import torch
    >>> ResNeStBottleneck(16, 8, stride=2)(torch.rand(2, 16, 8, 8)).shape
    torch.Size([2, 32, 4, 4])
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        *,
        stride: int = 1,
        dilation: int = 1,
        radix: int = 2,
        cardinality: int = 1,
        bottleneck_width: int = 64,
        avd: bool = True,
        avg_down: bool = True,
        is_first: bool = False,
    ) -> None:
        super().__init__()
        group_width = int(planes * (bottleneck_width / 64.0)) * cardinality
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, group_width, 1, bias=False)
        self.bn1 = keras_batch_norm(group_width)
        use_avd = avd and (stride > 1 or is_first)
        conv_stride = 1 if use_avd else stride
        self.avd = nn.AvgPool2d(3, stride, padding=1) if use_avd else None
        if radix >= 1:
            self.conv2: nn.Module = SplitAttentionConv2d(
                group_width,
                group_width,
                stride=conv_stride,
                dilation=dilation,
                cardinality=cardinality,
                radix=radix,
            )
        else:
            self.conv2 = nn.Sequential(
                nn.Conv2d(
                    group_width,
                    group_width,
                    3,
                    stride=conv_stride,
                    padding=dilation,
                    dilation=dilation,
                    groups=cardinality,
                    bias=False,
                ),
                keras_batch_norm(group_width),
                nn.ReLU(inplace=True),
            )
        self.conv3 = nn.Conv2d(group_width, out_channels, 1, bias=False)
        self.bn3 = keras_batch_norm(out_channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            layers: list[nn.Module] = []
            if avg_down:
                if stride != 1:
                    layers.append(
                        nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)
                    )
                layers.append(nn.Conv2d(in_channels, out_channels, 1, bias=False))
            else:
                layers.append(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False))
            layers.append(keras_batch_norm(out_channels))
            self.downsample = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.conv2(out)
        if self.avd is not None:
            out = self.avd(out)
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class ResNeSt(nn.Module):
    """ResNeSt (or, with ``radix=0``, ResNet) feature extractor without the classifier.

    Parameters
    ----------
    in_channels : int
        Channels of the input map (here the fused map, not RGB).
    layers : Sequence[int], default (3, 4, 23, 3)
        Bottlenecks per stage (1 to 4 stages); (3, 4, 23, 3) is ResNeSt-101.
    base_width : int, default 64
        Planes of the first stage (doubling per stage; outputs have ``4 * planes`` channels).
    stem_width : int, default 64
        Deep stem: 3x3 convolutions to ``stem_width``, ``stem_width``, ``2 * stem_width``
        channels (ResNeSt-101: 64). Plain stem: one 7x7 stride-2 convolution to ``base_width``.
    deep_stem : bool, default True
        Deep stem (ResNeSt) or plain 7x7 stem (ResNet).
    radix, cardinality, bottleneck_width : int
        See :class:`ResNeStBottleneck` (ResNeSt-101: 2, 1, 64).
    avd, avg_down : bool, default True
        See :class:`ResNeStBottleneck`.
    output_stride : {32, 16, 8}, default 32
        Total stride of the last stage. 16 dilates the fourth stage (rate 2), 8 the third and
        fourth (rates 2 and 4), as in DeepLab; the first block of a dilated stage uses half the
        rate (ResNeSt's convention).

    Notes
    -----
    ``forward`` returns the stem output (stride 2, before max pooling) followed by every stage's
    output (strides 4, 8, 16, 32 or dilated), as a list; :attr:`channels` holds their channels.
    The split-attention gate normalises a pooled ``(B, C, 1, 1)`` map with BatchNorm, so
    training needs batches of at least two samples.

    Examples
    --------
    >>> import torch
    >>> net = ResNeSt(4, layers=(1, 1), base_width=8, stem_width=8)
    >>> net.channels, net.strides
    ([16, 32, 64], [2, 4, 8])
    """

    def __init__(
        self,
        in_channels: int,
        *,
        layers: Sequence[int] = RESNEST101_LAYERS,
        base_width: int = 64,
        stem_width: int = 64,
        deep_stem: bool = True,
        radix: int = 2,
        cardinality: int = 1,
        bottleneck_width: int = 64,
        avd: bool = True,
        avg_down: bool = True,
        output_stride: int = 32,
    ) -> None:
        super().__init__()
        layers = [int(n) for n in layers]
        if not 1 <= len(layers) <= 4 or min(layers) < 1:
            raise ValueError(f"layers must hold 1 to 4 positive block counts, got {layers}")
        dilations = {32: (1, 1, 1, 1), 16: (1, 1, 1, 2), 8: (1, 1, 2, 4)}
        if output_stride not in dilations:
            raise ValueError(f"output_stride must be 32, 16 or 8, got {output_stride}")
        if deep_stem:
            stem_out = 2 * stem_width
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, stem_width, 3, stride=2, padding=1, bias=False),
                keras_batch_norm(stem_width),
                nn.ReLU(inplace=True),
                nn.Conv2d(stem_width, stem_width, 3, padding=1, bias=False),
                keras_batch_norm(stem_width),
                nn.ReLU(inplace=True),
                nn.Conv2d(stem_width, stem_out, 3, padding=1, bias=False),
                keras_batch_norm(stem_out),
                nn.ReLU(inplace=True),
            )
        else:
            stem_out = base_width
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, stem_out, 7, stride=2, padding=3, bias=False),
                keras_batch_norm(stem_out),
                nn.ReLU(inplace=True),
            )
        self.channels: list[int] = [stem_out]
        self.strides: list[int] = [2]
        self.stages = nn.ModuleList()
        prev, stride_now = stem_out, 4
        for i, n_blocks in enumerate(layers):
            planes = base_width * 2**i
            dilation = dilations[output_stride][i]
            stride = 1 if i == 0 or dilation > 1 else 2
            stride_now *= stride
            blocks: list[nn.Module] = []
            for j in range(n_blocks):
                # ResNeSt convention: the first block of a dilated stage uses half the rate.
                d = max(dilation // 2, 1) if j == 0 else dilation
                blocks.append(
                    ResNeStBottleneck(
                        prev,
                        planes,
                        stride=stride if j == 0 else 1,
                        dilation=d,
                        radix=radix,
                        cardinality=cardinality,
                        bottleneck_width=bottleneck_width,
                        avd=avd,
                        avg_down=avg_down,
                        is_first=j == 0,
                    )
                )
                prev = planes * ResNeStBottleneck.expansion
            self.stages.append(nn.Sequential(*blocks))
            self.channels.append(prev)
            self.strides.append(stride_now)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        features = [x]
        x = F.max_pool2d(x, 3, stride=2, padding=1)
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features
