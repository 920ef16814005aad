"""Inference fusions over plain tensors: fewer passes over the feature maps, the same function.

A leaf module: every function takes tensors and plain parameters (weights, biases, BatchNorm
statistics, padding), never a module, so nothing here imports the blocks. The blocks in
:mod:`glaviz.models.blocks` call these functions when a model runs in inference mode
(``model.eval()`` under :func:`torch.no_grad` or :func:`torch.inference_mode`); training and
autograd always take the plain path. Each fusion computes the unfused result up to float
rounding, and the tests compare both paths.

- :func:`fold_batch_norm`: BatchNorm statistics folded into a convolution's weight and bias
  (our own folding: it keeps autograd through the folded weights).
- :func:`conv2d_same`: stride-1 convolution with Keras ``padding='same'``.
- :func:`conv_leaky_relu`: ``'same'`` convolution and LeakyReLU in one oneDNN call on the CPU
  (the activation is applied as the convolution's post-op while the output is still in cache).
- :func:`upsample_conv2x2`: nearest x2 upsampling and a ``'same'`` 2x2 convolution without
  materialising the upsampled map (four phase convolutions, 9/16 of the multiply-adds).
- :func:`pointwise_conv_add`: ``residual + conv1x1(x)`` in one pass: a oneDNN 1x1 convolution
  adding the residual in its epilogue (inference on the CPU), else one GEMM with the residual
  as accumulator.

``ONEDNN_FUSION`` switches the oneDNN paths off (``GLAVIZ_ONEDNN_FUSION=0`` in the
environment, or set the attribute), e.g. to compare timings.

Examples
--------
>>> import torch
>>> x, w, b = torch.rand(1, 3, 16, 16), torch.randn(8, 3, 3, 3), torch.randn(8)
>>> with torch.no_grad():
...     fused = conv_leaky_relu(x, w, b, 0.2)
...     plain = torch.nn.functional.leaky_relu(conv2d_same(x, w, b), 0.2)
>>> torch.allclose(fused, plain, atol=1e-5)
True
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ONEDNN_FUSION",
    "conv2d_same",
    "conv_leaky_relu",
    "fold_batch_norm",
    "is_nhwc",
    "pointwise_conv_add",
    "same_padding",
    "upsample_conv2x2",
]

#: Use the oneDNN fused convolutions (activation or residual post-ops) in CPU inference.
ONEDNN_FUSION: bool = os.environ.get("GLAVIZ_ONEDNN_FUSION", "1") != "0"


def fold_batch_norm(
    weight: Tensor,
    bias: Tensor | None,
    running_mean: Tensor,
    running_var: Tensor,
    eps: float,
    gamma: Tensor | None = None,
    beta: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Fold inference-mode BatchNorm statistics into the preceding layer's weight and bias.

    ``batch_norm(conv(x, weight, bias)) == conv(x, w, b)`` up to rounding, with
    ``w = weight * s``, ``b = (bias - mean) * s + beta`` and ``s = gamma / sqrt(var + eps)``.

    Parameters
    ----------
    weight : Tensor
        ``(out, ...)`` kernel of the layer before the normalisation.
    bias : Tensor, optional
        ``(out,)`` bias of that layer (``None``: no bias).
    running_mean, running_var : Tensor
        ``(out,)`` BatchNorm running statistics.
    eps : float
        BatchNorm epsilon.
    gamma, beta : Tensor, optional
        ``(out,)`` BatchNorm affine scale and shift (``None``: not affine).

    Returns
    -------
    tuple of Tensor
        The folded ``(weight, bias)``; differentiable in every input.

    Examples
    --------
    >>> import torch
    >>> conv, bn = torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4, eps=1e-3).eval()
    >>> _ = bn.running_mean.uniform_(), bn.running_var.uniform_(0.5, 2), bn.weight.data.normal_()
    >>> x = torch.rand(1, 3, 8, 8)
    >>> w, b = fold_batch_norm(
    ...     conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
    ... )
    >>> torch.allclose(bn(conv(x)), torch.nn.functional.conv2d(x, w, b), atol=1e-5)
    True
    """
    scale = torch.rsqrt(running_var + eps)
    if gamma is not None:
        scale = scale * gamma
    shift = -running_mean if bias is None else bias - running_mean
    shift = shift * scale
    if beta is not None:
        shift = shift + beta
    return weight * scale.reshape(-1, *([1] * (weight.ndim - 1))), shift


def same_padding(kernel_size: int) -> tuple[int, tuple[int, int, int, int] | None]:
    """Keras ``'same'`` padding of a stride-1 kernel: symmetric part and extra bottom/right part.

    Odd kernels pad ``(k - 1) / 2`` on every side; even kernels need one more row and column of
    zeros at the bottom/right than at the top/left (as in TensorFlow). Returns the symmetric
    padding and the extra :func:`torch.nn.functional.pad` tuple (left, right, top, bottom), or
    ``None`` when there is none.

    Examples
    --------
    >>> same_padding(3), same_padding(2)
    ((1, None), (0, (0, 1, 0, 1)))
    """
    total = kernel_size - 1
    before = total // 2
    extra = total - 2 * before
    return before, ((0, extra, 0, extra) if extra else None)


def conv2d_same(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """Stride-1 convolution of square ``weight`` with Keras ``padding='same'``.

    Examples
    --------
    >>> import torch
    >>> conv2d_same(torch.zeros(1, 3, 5, 7), torch.zeros(4, 3, 2, 2), None).shape
    torch.Size([1, 4, 5, 7])
    """
    padding, extra = same_padding(int(weight.shape[-1]))
    if extra is not None:
        x = F.pad(x, extra)
    return F.conv2d(x, weight, bias, 1, padding)


def is_nhwc(x: Tensor) -> bool:
    """True for a 4-D tensor in ``torch.channels_last`` memory format.

    Examples
    --------
    >>> import torch
    >>> is_nhwc(torch.zeros(1, 3, 2, 2).contiguous(memory_format=torch.channels_last))
    True
    """
    return x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last)


def upsample_conv2x2(
    x: Tensor, weight: Tensor, bias: Tensor | None, *, skip: Tensor | None = None
) -> Tensor:
    """``conv2d_same(upsample_nearest_x2(x), weight, bias)`` computed by output phases.

    Each of the four output phases ``(2i + a, 2j + b)`` is a convolution of the low-resolution
    input whose kernel sums the taps that land on the same source pixel (1x1 for phase (0, 0),
    1x2, 2x1 and 2x2 for the others; the 'same' zero padding is at the bottom/right). With
    ``skip`` ``(B, S, 2H, 2W)`` the result is ``cat([upsampled, skip], 1)``, written into one
    buffer (no extra copy). The output keeps ``x``'s memory format.

    Parameters
    ----------
    x : Tensor
        ``(B, in, H, W)``.
    weight : Tensor
        ``(out, in, 2, 2)``.
    bias : Tensor, optional
        ``(out,)``.
    skip : Tensor, optional
        Concatenated after the upsampled channels.

    Examples
    --------
    >>> import torch
    >>> x, w = torch.rand(1, 3, 4, 5), torch.randn(2, 3, 2, 2)
    >>> up = torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
    >>> torch.allclose(upsample_conv2x2(x, w, None), conv2d_same(up, w, None), atol=1e-5)
    True
    """
    rows = weight.sum(dim=2, keepdim=True)  # (out, in, 1, 2): phase a = 0, both rows -> i
    y00 = F.conv2d(x, rows.sum(dim=3, keepdim=True), bias)
    y01 = F.conv2d(x, rows, bias, padding=(0, 1))[:, :, :, 1:]
    y10 = F.conv2d(x, weight.sum(dim=3, keepdim=True), bias, padding=(1, 0))[:, :, 1:, :]
    y11 = F.conv2d(x, weight, bias, padding=1)[:, :, 1:, 1:]
    n, c, h, wd = y00.shape
    c_total = c + (skip.shape[1] if skip is not None else 0)
    phases = ((0, 0, y00), (0, 1, y01), (1, 0, y10), (1, 1, y11))
    if is_nhwc(x):
        buf = y00.new_empty((n, h, 2, wd, 2, c_total))
        for a, b, y in phases:
            buf[:, :, a, :, b, :c] = y.permute(0, 2, 3, 1)
        out = buf.view(n, 2 * h, 2 * wd, c_total).permute(0, 3, 1, 2)
    else:
        buf = y00.new_empty((n, c_total, h, 2, wd, 2))
        for a, b, y in phases:
            buf[:, :c, :, a, :, b] = y
        out = buf.view(n, c_total, 2 * h, 2 * wd)
    if skip is not None:
        out[:, c:] = skip
    return out


def pointwise_conv_add(
    residual: Tensor, x: Tensor, weight: Tensor, bias: Tensor | None, *, inplace: bool = False
) -> Tensor:
    """``residual + conv2d(x, weight, bias)`` for a 1x1 kernel, in one pass when possible.

    With channels-last inputs: in CPU inference one oneDNN 1x1 convolution that adds the
    residual in its epilogue, otherwise a matrix product over the pixels with the residual as
    the GEMM's accumulator (``addmm``). With ``inplace=True`` and no autograd the result
    overwrites ``residual`` (for fresh intermediates that share no memory with ``x``).

    Parameters
    ----------
    residual : Tensor
        ``(B, out, H, W)``.
    x : Tensor
        ``(B, in, H, W)``.
    weight : Tensor
        ``(out, in, 1, 1)`` kernel (stride 1, no padding).
    bias : Tensor, optional
        ``(out,)``.
    inplace : bool, default False
        May write the result into ``residual``.

    Examples
    --------
    >>> import torch
    >>> conv = torch.nn.Conv2d(4, 3, 1)
    >>> x = torch.rand(2, 4, 5, 5).to(memory_format=torch.channels_last)
    >>> r = torch.rand(2, 3, 5, 5).to(memory_format=torch.channels_last)
    >>> out = pointwise_conv_add(r, x, conv.weight, conv.bias)
    >>> torch.allclose(out, r + conv(x), atol=1e-6)
    True
    """
    if weight.ndim != 4 or tuple(weight.shape[-2:]) != (1, 1):
        raise ValueError(f"pointwise_conv_add takes a 1x1 kernel, got {tuple(weight.shape)}")
    if not (is_nhwc(residual) and is_nhwc(x)):
        return residual + F.conv2d(x, weight, bias)
    dtype = _fused_dtype(x)
    if inplace and residual.untyped_storage().data_ptr() == x.untyped_storage().data_ptr():
        inplace = False  # the epilogue would overwrite its own input
    if dtype is not None and residual.dtype == dtype:
        # oneDNN 1x1 convolution with the residual added in its epilogue (in place if asked)
        args: tuple[Any, ...] = (
            x.to(dtype), weight.to(dtype), None if bias is None else bias.to(dtype),
            [0, 0], [1, 1], [1, 1], 1, "add", 1.0, None, [], None,
        )  # fmt: skip
        if inplace:
            return _onednn_binary(True)(residual, *args)
        return _onednn_binary(False)(args[0], residual, *args[1:])
    c_out, c_in = weight.shape[:2]
    dtype = residual.dtype
    w = weight.reshape(c_out, c_in).t().to(dtype)
    r2d = residual.permute(0, 2, 3, 1).reshape(-1, c_out)
    x2d = x.permute(0, 2, 3, 1).reshape(-1, c_in).to(dtype)
    grad = torch.is_grad_enabled() and (
        residual.requires_grad or x.requires_grad or w.requires_grad
    )
    out = torch.addmm(r2d, x2d, w) if grad or not inplace else r2d.addmm_(x2d, w)
    if bias is not None:
        out = out + bias.to(dtype) if grad else out.add_(bias.to(dtype))
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


def conv_leaky_relu(x: Tensor, weight: Tensor, bias: Tensor, negative_slope: float) -> Tensor:
    """``leaky_relu(conv2d_same(x, weight, bias), negative_slope)``, fused where possible.

    In inference on the CPU (no autograd, float32 or bfloat16 autocast, odd kernel) this is
    one oneDNN convolution with the activation as post-op; otherwise the plain sequence. Under
    autocast the fused call computes in the autocast dtype, as the unfused convolution would.
    Pass BatchNorm-folded weights (:func:`fold_batch_norm`) for conv -> BN -> LeakyReLU.

    Examples
    --------
    >>> import torch
    >>> x, w, b = torch.randn(2, 4, 9, 9), torch.randn(6, 4, 3, 3), torch.randn(6)
    >>> with torch.no_grad():
    ...     y = conv_leaky_relu(x, w, b, 0.2)
    ...     ref = torch.nn.functional.leaky_relu(torch.nn.functional.conv2d(x, w, b, 1, 1), 0.2)
    >>> torch.allclose(y, ref, atol=1e-5)
    True
    """
    dtype = _fused_dtype(x)
    padding, extra = same_padding(int(weight.shape[-1]))
    if dtype is None or extra is not None:
        y = conv2d_same(x, weight, bias)
        return F.leaky_relu(y, negative_slope, inplace=True)  # y is a fresh tensor
    op = _onednn_pointwise()
    return op(  # type: ignore[operator]
        x.to(dtype), weight.to(dtype), bias.to(dtype), [padding, padding], [1, 1], [1, 1], 1,
        "leaky_relu", [float(negative_slope)], "",
    )  # fmt: skip
