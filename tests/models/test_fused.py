"""Inference fusions give the unfused results: BatchNorm folding, conv + LeakyReLU, 1x1 + add."""

from __future__ import annotations

import pytest
import torch

import glaviz.models.fused as fused
from glaviz.models.blocks import ConvBNAct
from glaviz.models.fused import pointwise_conv_add
from glaviz.models.glavitu import GlaViTU


def _plain(block: ConvBNAct, x: torch.Tensor) -> torch.Tensor:
    act = torch.nn.functional.leaky_relu
    y = act(block.bn1(block.conv1(x)), 0.2)
    return act(block.bn2(block.conv2(y)), 0.2)


@pytest.mark.parametrize("channels_last", [False, True])
def test_conv_bn_act_fused_matches_plain_float32(channels_last, randomise_bn):
    torch.manual_seed(0)
    block = ConvBNAct(5, 16).eval()
    randomise_bn(block)
    x = torch.randn(2, 5, 24, 20)
    if channels_last:
        block = block.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        expected = _plain(block, x)
        out = block(x)
        assert fused._fused_dtype(x) == torch.float32  # the oneDNN path was taken
    torch.testing.assert_close(out, expected, atol=2e-5, rtol=1e-5)
    assert out.is_contiguous(memory_format=torch.channels_last) == channels_last


def test_conv_bn_act_under_bfloat16_autocast_is_close_to_float32(monkeypatch, randomise_bn):
    """Fused (where oneDNN has bf16) and plain bf16 paths both against the float32 result."""
    torch.manual_seed(1)
    block = ConvBNAct(4, 8).eval()
    randomise_bn(block, seed=1)
    x = torch.randn(1, 4, 16, 16)
    with torch.no_grad():
        reference = _plain(block, x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            if fused._onednn_bf16():  # this CPU has oneDNN bf16: the fused path must be taken
                assert fused._fused_dtype(x) == torch.bfloat16
            out = block(x)
            monkeypatch.setattr(fused, "ONEDNN_FUSION", False)
            plain = block(x)
    assert out.dtype == plain.dtype == torch.bfloat16
    scale = reference.abs().max().item()
    for low in (out, plain):  # bf16 keeps 8 bits of mantissa: about 1 % of the range
        torch.testing.assert_close(low.float(), reference, atol=0.02 * scale, rtol=0.02)
    assert not torch.equal(out.float(), reference)  # really computed in bfloat16


def test_training_and_autograd_take_the_plain_path(randomise_bn):
    torch.manual_seed(2)
    block = ConvBNAct(3, 4).eval()
    randomise_bn(block, seed=2)
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    assert fused._fused_dtype(x) is None  # grad mode: no fused call
    out = block(x)
    out.sum().backward()
    assert x.grad is not None and block.conv1.weight.grad is not None
    torch.testing.assert_close(out.detach(), _plain(block, x).detach())


@pytest.mark.parametrize("channels_last", [False, True])
def test_whole_model_is_the_same_with_and_without_fusion(monkeypatch, channels_last, randomise_bn):
    torch.manual_seed(3)
    model = GlaViTU.small(tile_size=32).eval()
    randomise_bn(model, seed=3)
    x = {g: torch.rand(2, c, 32, 32) for g, c in model.input_channels.items()}
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = {g: t.contiguous(memory_format=torch.channels_last) for g, t in x.items()}
    calls = {True: 0, False: 0}
    real = fused._onednn_binary

    def spy(inplace):
        calls[inplace] += 1
        return real(inplace)

    monkeypatch.setattr(fused, "_onednn_binary", spy)
    with torch.inference_mode():
        out = model(x)
        monkeypatch.setattr(fused, "ONEDNN_FUSION", False)
        plain = model(x)
    torch.testing.assert_close(out, plain, atol=1e-4, rtol=1e-4)
    # residual 1x1 projections in place, the branch output's 1x1 + residual out of place
    assert calls[True] > 0 and calls[False] > 0


def test_pointwise_conv_add_fused_and_autograd():
    torch.manual_seed(8)
    conv = torch.nn.Conv2d(4, 3, 1)
    x = torch.randn(2, 4, 5, 5).contiguous(memory_format=torch.channels_last)
    r = torch.randn(2, 3, 5, 5).contiguous(memory_format=torch.channels_last)
    expected = r + conv(x)
    torch.testing.assert_close(pointwise_conv_add(r, x, conv.weight, conv.bias), expected)
    assert not torch.equal(r, expected)  # not in place unless asked
    with torch.no_grad():
        assert fused._fused_dtype(x) == torch.float32  # the oneDNN epilogue path
        r_before = r.clone()
        torch.testing.assert_close(pointwise_conv_add(r, x, conv.weight, conv.bias), expected)
        assert torch.equal(r, r_before)
        r2 = r.clone()
        out = pointwise_conv_add(r2, x, conv.weight, conv.bias, inplace=True)
        assert out.data_ptr() == r2.data_ptr()
        torch.testing.assert_close(out, expected)
    r.requires_grad_(True)
    out = pointwise_conv_add(r, x, conv.weight, conv.bias)
    out.sum().backward()
    assert torch.equal(r.grad, torch.ones_like(r))
    assert conv.weight.grad is not None


def test_bfloat16_falls_back_to_plain_where_onednn_lacks_it(monkeypatch):
    block = ConvBNAct(3, 4).eval()
    x = torch.randn(1, 3, 8, 8)
    monkeypatch.setattr(fused, "_onednn_bf16", lambda: False)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert fused._fused_dtype(x) is None  # no fused bf16 call on such CPUs
        assert block(x).dtype == torch.bfloat16  # plain autocast path instead
    with torch.no_grad():
        assert fused._fused_dtype(x) == torch.float32  # float32 still fuses
