"""Inference fusions: fewer passes over the feature maps, the same function.

Used by the blocks in :mod:`glaviz.models.blocks` when a model runs in inference mode
(``model.eval()`` under :func:`torch.no_grad` or :func:`torch.inference_mode`); training and
autograd always take the plain path. Each fusion computes the unfused result up to float
rounding, and the tests compare both paths.

- :func:`fold_batch_norm` / :func:`conv_bn`: BatchNorm with running statistics folded into the
  preceding convolution's weight and bias.
- :func:`conv_bn_act`: convolution, folded BatchNorm and LeakyReLU in one oneDNN call on the CPU
  (the activation is applied as the convolution's post-op while the output is still in cache).
- :func:`pointwise_conv_add`: ``residual + conv1x1(x)`` in one pass: a oneDNN 1x1 convolution
  adding the residual in its epilogue (inference on the CPU), else one GEMM with the residual
  as accumulator.

``ONEDNN_FUSION`` switches the oneDNN paths off (``GLAVIZ_ONEDNN_FUSION=0`` in the
environment, or set the attribute), e.g. to compare timings.

Examples
--------
>>> import torch
>>> from glaviz.models.blocks import ConvBNAct
>>> block = ConvBNAct(3, 8).eval()
>>> x = torch.rand(1, 3, 16, 16)
>>> with torch.no_grad():
...     fused = block(x)
...     plain = block.act(block.bn2(block.conv2(block.act(block.bn1(block.conv1(x))))))
>>> torch.allclose(fused, plain, atol=1e-5)
True
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:
    from glaviz.models.blocks import Conv2dSame

__all__ = [
    "ONEDNN_FUSION",
    "conv_bn",
    "conv_bn_act",
    "fold_batch_norm",
    "is_nhwc",
    "pointwise_conv_add",
    "uses_running_stats",
]

#: Use the oneDNN fused convolutions (activation or residual post-ops) in CPU inference.
ONEDNN_FUSION: bool = os.environ.get("GLAVIZ_ONEDNN_FUSION", "1") != "0"


def fold_batch_norm(
    weight: Tensor, bias: Tensor | None, bn: nn.BatchNorm1d | nn.BatchNorm2d
) -> tuple[Tensor, Tensor]:
    """Fold an inference-mode BatchNorm into the preceding convolution's weight and bias.

    ``bn(conv(x, weight, bias)) == conv(x, w, b)`` up to rounding, with
    ``w = weight * s``, ``b = (bias - mean) * s + beta`` and ``s = gamma / sqrt(var + eps)``.

    Examples
    --------
    >>> import torch
    >>> from glaviz.models.blocks import keras_batch_norm
    >>> conv, bn = torch.nn.Conv2d(3, 4, 3), keras_batch_norm(4).eval()
    >>> _ = bn.running_mean.uniform_(), bn.running_var.uniform_(0.5, 2), bn.weight.data.normal_()
    >>> x = torch.rand(1, 3, 8, 8)
    >>> w, b = fold_batch_norm(conv.weight, conv.bias, bn)
    >>> torch.allclose(bn(conv(x)), torch.nn.functional.conv2d(x, w, b), atol=1e-5)
    True
    """
    assert bn.running_mean is not None and bn.running_var is not None
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean if bias is None else bias - bn.running_mean
    shift = shift * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    return weight * scale.reshape(-1, *([1] * (weight.ndim - 1))), shift


def uses_running_stats(bn: nn.Module) -> bool:
    """True when ``bn`` normalises with its running statistics (inference mode)."""
    return not bn.training and getattr(bn, "running_mean", None) is not None


def conv_bn(x: Tensor, conv: Conv2dSame, bn: nn.BatchNorm2d) -> Tensor:
    """``bn(conv(x))``; in inference mode the BatchNorm is folded into the convolution.

    Folding saves a full pass over the feature map; parameters and state dict are unchanged.
    """
    if uses_running_stats(bn):
        return conv.conv_with(x, *fold_batch_norm(conv.weight, conv.bias, bn))
    return bn(conv(x))


def is_nhwc(x: Tensor) -> bool:
    """True for a 4-D tensor in ``torch.channels_last`` memory format."""
    return x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last)


def pointwise_conv_add(
    residual: Tensor, x: Tensor, conv: nn.Conv2d, *, inplace: bool = False
) -> Tensor:
    """``residual + conv(x)`` for a 1x1 convolution in one pass over the map when possible.

    With channels-last inputs: in CPU inference one oneDNN 1x1 convolution that adds the
    residual in its epilogue, otherwise a matrix product over the pixels with the residual as
    the GEMM's accumulator (``addmm``). With ``inplace=True`` and no autograd the result
    overwrites ``residual`` (for fresh intermediates that share no memory with ``x``).

    Examples
    --------
    >>> import torch
    >>> conv = torch.nn.Conv2d(4, 3, 1)
    >>> x = torch.rand(2, 4, 5, 5).to(memory_format=torch.channels_last)
    >>> r = torch.rand(2, 3, 5, 5).to(memory_format=torch.channels_last)
    >>> torch.allclose(pointwise_conv_add(r, x, conv), r + conv(x), atol=1e-6)
    True
    """
    plain_1x1 = (
        conv.kernel_size == (1, 1) and conv.stride == (1, 1) and conv.padding == (0, 0)
        and conv.groups == 1 and conv.dilation == (1, 1)
    )  # fmt: skip
    if not (is_nhwc(residual) and is_nhwc(x) and plain_1x1):
        return residual + conv(x)
    dtype = _fused_dtype(x)
    if inplace and residual.untyped_storage().data_ptr() == x.untyped_storage().data_ptr():
        inplace = False  # the epilogue would overwrite its own input
    if dtype is not None and residual.dtype == dtype:
        # oneDNN 1x1 convolution with the residual added in its epilogue (in place if asked)
        args = (
            x.to(dtype), conv.weight.to(dtype), None if conv.bias is None else conv.bias.to(dtype),
            [0, 0], [1, 1], [1, 1], 1, "add", 1.0, None, [], None,
        )  # fmt: skip
        if inplace:
            return _onednn_binary(True)(residual, *args)
        return _onednn_binary(False)(args[0], residual, *args[1:])
    c_out, c_in = conv.weight.shape[:2]
    dtype = residual.dtype
    w = conv.weight.reshape(c_out, c_in).t().to(dtype)
    r2d = residual.permute(0, 2, 3, 1).reshape(-1, c_out)
    x2d = x.permute(0, 2, 3, 1).reshape(-1, c_in).to(dtype)
    grad = torch.is_grad_enabled() and (
        residual.requires_grad or x.requires_grad or w.requires_grad
    )
    out = torch.addmm(r2d, x2d, w) if grad or not inplace else r2d.addmm_(x2d, w)
    if conv.bias is not None:
        out = out + conv.bias.to(dtype) if grad else out.add_(conv.bias.to(dtype))
    n, _, h, wd = residual.shape
    return out.view(n, h, wd, c_out).permute(0, 3, 1, 2)


@lru_cache(maxsize=1)
def _onednn_pointwise() -> object | None:
    """``torch.ops.mkldnn._convolution_pointwise`` where this build has it, else ``None``."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._convolution_pointwise
    except (AttributeError, RuntimeError):
        return None


def _fused_dtype(x: Tensor) -> torch.dtype | None:
    """The compute dtype of the oneDNN path for ``x``, or ``None`` when it does not apply."""
    if not ONEDNN_FUSION or x.device.type != "cpu" or torch.is_grad_enabled():
        return None
    if not torch.backends.mkldnn.enabled or _onednn_pointwise() is None:
        return None
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
    if dtype == torch.bfloat16 and not _onednn_bf16():
        return None  # CPUs without oneDNN bf16 support (e.g. no AVX-512): plain autocast path
    return dtype if dtype in (torch.float32, torch.bfloat16) else None


def _onednn_binary(inplace: bool) -> Any:
    """oneDNN convolution with a binary post-op (``_`` variant: in place into the residual)."""
    ops = torch.ops.mkldnn
    return ops._convolution_pointwise_.binary if inplace else ops._convolution_pointwise.binary


@lru_cache(maxsize=1)
def _onednn_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def conv_bn_act(x: Tensor, conv: Conv2dSame, bn: nn.BatchNorm2d, negative_slope: float) -> Tensor:
    """``leaky_relu(bn(conv(x)), negative_slope)``, fused where possible.

    In inference mode on the CPU (no autograd, float32 or bfloat16 autocast, odd kernel) this
    is one oneDNN convolution with the BatchNorm folded in and the activation as post-op;
    otherwise the plain sequence. Under autocast the fused call computes in the autocast dtype,
    as the unfused convolution would.

    Examples
    --------
    >>> import torch
    >>> from glaviz.models.blocks import Conv2dSame, keras_batch_norm
    >>> conv, bn = Conv2dSame(4, 6, 3), keras_batch_norm(6).eval()
    >>> x = torch.randn(2, 4, 9, 9)
    >>> with torch.no_grad():
    ...     y = conv_bn_act(x, conv, bn, 0.2)
    ...     ref = torch.nn.functional.leaky_relu(bn(conv(x)), 0.2)
    >>> torch.allclose(y, ref, atol=1e-5)
    True
    """
    dtype = _fused_dtype(x)
    if dtype is None or conv._extra_pad is not None or not uses_running_stats(bn):
        y = conv_bn(x, conv, bn)
        return F.leaky_relu(y, negative_slope, inplace=True)  # y is a fresh tensor
    w, b = fold_batch_norm(conv.weight, conv.bias, bn)
    op = _onednn_pointwise()
    return op(  # type: ignore[operator]
        x.to(dtype), w.to(dtype), b.to(dtype), list(conv.padding), list(conv.stride),
        list(conv.dilation), conv.groups, "leaky_relu", [float(negative_slope)], "",
    )  # fmt: skip
