"""GlaViTU (PyTorch port) and its blocks: modes, parameter counts, tile rule, errors, config.

The contract every model keeps (build, shapes, refused inputs, round trips) is tested once for all
registered models in ``test_models.py``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from glaviz.models.blocks import (
    ConvBNAct,
    FusionBlock,
    LocationEncoder,
    PatchEmbedding,
    UpConv,
    keras_batch_norm,
)
from glaviz.models.glavitu import GlaViTU, count_parameters_keras_style

OPT_DEM = {"optical": 6, "dem": 2}
SAR5 = {"optical": 6, "dem": 2, "co_pol_sar": 2, "cross_pol_sar": 2, "in_sar": 2}


# --------------------------------------------------------------------------- parameter counts
def test_reference_parameter_counts_match_keras():
    model = GlaViTU()
    assert count_parameters_keras_style(model) == {
        "total": 10_031_938,
        "trainable": 10_024_386,
        "non_trainable": 7_552,
    }
    with_ds = count_parameters_keras_style(model, include_deep_supervision=True)
    assert with_ds["total"] == 10_031_938 + 130
    assert with_ds["non_trainable"] == 7_552


def test_region_encoding_sar_parameter_counts_match_keras():
    model = GlaViTU(input_channels=SAR5, location_encoding="region")
    counts = count_parameters_keras_style(model)
    assert counts["total"] == 10_178_370
    assert counts["trainable"] == 10_169_794
    assert count_parameters_keras_style(model, include_deep_supervision=True)["total"] == (
        10_178_500
    )


def test_frozen_parameters_count_as_non_trainable():
    model = GlaViTU.small()
    before = count_parameters_keras_style(model)
    model.head.requires_grad_(False)
    after = count_parameters_keras_style(model)
    n_head = sum(p.numel() for p in model.head.parameters())
    assert after["total"] == before["total"]
    assert after["trainable"] == before["trainable"] - n_head
    assert after["non_trainable"] == before["non_trainable"] + n_head


def test_no_deep_supervision_head_when_disabled():
    model = GlaViTU.small(deep_supervision=False)
    assert model.deep_supervision_head is None
    counts = count_parameters_keras_style(model, include_deep_supervision=True)
    assert counts == count_parameters_keras_style(model)


# --------------------------------------------------------------------------- forward
@pytest.fixture
def small_model() -> GlaViTU:
    """A fresh model per test (training-mode calls update its BatchNorm statistics)."""
    torch.manual_seed(0)
    return GlaViTU.small().eval()


def test_train_returns_main_and_deep_supervision(small_model, make_inputs):
    out = small_model.train()(make_inputs(OPT_DEM))
    assert isinstance(out, tuple) and len(out) == 2
    main, ds = out
    assert main.shape == ds.shape == (2, 2, 64, 64)
    assert not torch.allclose(main, ds)


def test_train_without_deep_supervision_returns_tensor(make_inputs):
    model = GlaViTU.small(deep_supervision=False).train()
    out = model(make_inputs(OPT_DEM))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 2, 64, 64)
    with pytest.raises(ValueError, match="deep_supervision=False"):
        model.forward_with_deep_supervision(make_inputs(OPT_DEM))


def test_forward_with_deep_supervision_in_eval_matches_eval_forward(small_model, make_inputs):
    small_model.eval()
    x = make_inputs(OPT_DEM)
    with torch.no_grad():
        main, ds = small_model.forward_with_deep_supervision(x)
        assert torch.equal(main, small_model(x))
    assert ds.shape == main.shape


def test_training_step_updates_weights_and_statistics(make_inputs):
    torch.manual_seed(1)
    model = GlaViTU.small(location_encoding="region").train()
    x = make_inputs(OPT_DEM, location=12)
    target = (x["optical"][:, 0] > 0.5).long()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    head_before = model.head.weight.detach().clone()
    mean_before = model.unet.ups[0].bn.running_mean.clone()
    main, ds = model(x)
    loss = F.cross_entropy(main, target) + 0.5 * F.cross_entropy(ds, target)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.setr.pos_embed.grad.abs().sum() > 0
    assert model.location_encoder.dense1.weight.grad.abs().sum() > 0
    opt.step()
    assert not torch.equal(model.head.weight, head_before)
    assert not torch.equal(model.unet.ups[0].bn.running_mean, mean_before)


def test_gradient_reaches_location_of_frozen_eval_model(make_inputs):
    """Unseen-region adaptation: frozen network in eval mode, learn the location vector."""
    torch.manual_seed(12)
    model = GlaViTU.small(location_encoding="region").eval().requires_grad_(False)
    logits = torch.zeros(1, 12, requires_grad=True)
    x = make_inputs(OPT_DEM, batch=1)
    probs = model(dict(x, location=logits.softmax(1))).softmax(1)
    entropy = -(probs * probs.clamp_min(1e-8).log()).sum(1).mean()
    entropy.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


def test_input_order_does_not_matter(small_model, make_inputs):
    small_model.eval()
    x = make_inputs(OPT_DEM)
    reordered = {"dem": x["dem"], "optical": x["optical"]}
    with torch.no_grad():
        torch.testing.assert_close(small_model(x), small_model(reordered))


def test_channels_last_and_contiguous_agree(make_inputs, randomise_bn):
    model = randomise_bn(GlaViTU.small(), seed=3).eval()
    x = make_inputs(OPT_DEM)
    with torch.no_grad():
        model.channels_last = False
        a = model(x)
        model.channels_last = True
        b = model(x)
        c = model.to(memory_format=torch.channels_last)(x)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(a, c, atol=1e-4, rtol=1e-4)


def test_other_tile_sizes_and_patch_sizes(make_inputs):
    model = GlaViTU.small(
        input_channels={"dem": 2},
        tile_size=96,
        patch_size=8,
        unet_widths=(8, 16),
        bottleneck_width=32,
    )
    with torch.no_grad():
        out = model.eval()(make_inputs({"dem": 2}, batch=1, size=96))
    assert out.shape == (1, 2, 96, 96)
    assert model.setr.pos_embed.shape == (1, 144, 16)


def test_bfloat16_autocast_runs_close_to_float32(small_model, make_inputs):
    small_model.eval()
    x = make_inputs(OPT_DEM)
    with torch.no_grad():
        ref = small_model(x).softmax(1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = small_model(x).float().softmax(1)
    assert (low - ref).abs().max() < 0.1


# --------------------------------------------------------------------------- errors
def test_size_rule_is_the_tile(small_model, make_inputs):
    x = make_inputs(OPT_DEM)
    with pytest.raises(ValueError, match=r"'dem' has spatial size 48 x 64.*pad"):
        small_model(dict(x, dem=torch.zeros(2, 2, 48, 64)))
    with pytest.raises(ValueError, match=r"'optical' has spatial size 128 x 128.*64 x 64 tiles"):
        small_model(make_inputs(OPT_DEM, size=128))  # a multiple of the tile is refused too


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"patch_size": 12}, "power of two"),
        ({"tile_size": 72}, "not a multiple of patch_size"),
        ({"tile_size": 80, "patch_size": 16, "unet_widths": (8, 8, 8, 8, 8)}, "divisible by 2"),
        ({"num_heads": 3}, "not divisible by num_heads"),
        ({"location_encoding": "gps"}, "location_encoding must be"),
        ({"location_features": 5}, "location_encoding is 'none'"),
        ({"input_channels": {"location": 2}}, "reserved"),
        ({"input_channels": {"co-pol": 2}}, "identifier"),
        ({"input_channels": {}}, "at least one input group"),
    ],
)
def test_constructor_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GlaViTU.small(**kwargs)


# --------------------------------------------------------------------------- config


def test_default_config_is_the_reference():
    cfg = GlaViTU().config
    assert cfg["input_channels"] == OPT_DEM
    assert (cfg["tile_size"], cfg["patch_size"], cfg["transformer_depth"]) == (384, 16, 12)
    assert (cfg["unet_widths"], cfg["bottleneck_width"]) == ([64, 128, 256], 512)
    assert cfg["location_encoding"] == "none" and cfg["location_features"] is None


# --------------------------------------------------------------------------- blocks
def test_fusion_block_sums_branches_in_mapping_order():
    torch.manual_seed(4)
    block = FusionBlock({"a": 3, "b": 1}, width=8).eval()
    x = {"a": torch.rand(2, 3, 16, 16), "b": torch.rand(2, 1, 16, 16)}
    with torch.no_grad():
        expected = block.branches["a"](x["a"]) + block.branches["b"](x["b"])
        torch.testing.assert_close(block(x), expected)
    assert list(block.state_dict())[0].startswith("branches.a.")


def test_location_encoder_uses_keras_slope_and_batch_norm():
    enc = LocationEncoder(4, 8)
    assert enc.act.negative_slope == pytest.approx(0.3)
    assert (enc.bn1.eps, enc.bn1.momentum) == (1e-3, 0.01)
    with pytest.raises(ValueError, match=r"shape \(B, 4\)"):
        enc(torch.zeros(2, 5))


def test_batch_norm_folding_matches_unfolded(randomise_bn):
    torch.manual_seed(5)
    block = randomise_bn(ConvBNAct(5, 7)).eval()
    x = torch.randn(2, 5, 12, 12)
    ref = F.leaky_relu(block.bn1(block.conv1(x)), 0.2)
    ref = F.leaky_relu(block.bn2(block.conv2(ref)), 0.2)
    with torch.no_grad():
        torch.testing.assert_close(block(x), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("training", [False, True])
def test_upconv_phase_decomposition_equals_upsample_then_conv(
    channels_last, training, randomise_bn
):
    torch.manual_seed(6)
    up = randomise_bn(UpConv(6, 4)).train(training)
    x = torch.randn(2, 6, 5, 7)
    skip = torch.randn(2, 4, 10, 14)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        skip = skip.contiguous(memory_format=torch.channels_last)
    # direct Keras form: nearest x2, pad bottom/right, conv 2x2, BN
    ref = F.conv2d(F.pad(F.interpolate(x, scale_factor=2.0), (0, 1, 0, 1)), up.conv.weight)
    ref = F.batch_norm(
        ref, up.bn.running_mean, up.bn.running_var, up.bn.weight, up.bn.bias, training, 0.0, 1e-3
    )
    with torch.no_grad():
        torch.testing.assert_close(up(x), ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(up(x, skip), torch.cat([ref, skip], 1), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(up.forward_reference(x), ref, atol=1e-5, rtol=1e-5)


def test_upconv_gradients_match_reference():
    torch.manual_seed(7)
    up = UpConv(3, 2).train()
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    up = up.double()
    torch.autograd.gradcheck(lambda t: up(t), (x,))
    g1 = torch.autograd.grad(up(x).square().sum(), up.conv.weight)[0]
    g2 = torch.autograd.grad(up.forward_reference(x).square().sum(), up.conv.weight)[0]
    torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize("channels", [16, 64])
def test_patch_embedding_matches_keras_flatten_order_and_bfloat16(channels):
    torch.manual_seed(9)
    emb = PatchEmbedding(channels, 8, 4)
    x = torch.rand(2, channels, 8, 12)
    # Keras: patches flattened in (row, column, channel) order, then Dense (p*p*C -> dim)
    kernel = emb.proj.weight.permute(2, 3, 1, 0).reshape(-1, 8)  # (p*p*C, dim)
    patches = x.permute(0, 2, 3, 1).reshape(2, 2, 4, 3, 4, channels).transpose(2, 3)
    expected = patches.reshape(2, 6, -1) @ kernel + emb.proj.bias
    with torch.no_grad():
        torch.testing.assert_close(emb(x), expected, atol=1e-5, rtol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = emb(x.contiguous(memory_format=torch.channels_last)).float()
    assert (low - expected).abs().max() < 0.02 * expected.abs().max()


def test_keras_batch_norm_defaults():
    assert (keras_batch_norm(3).eps, keras_batch_norm(3).momentum) == (1e-3, 0.01)
    assert isinstance(keras_batch_norm(3, dim=1), torch.nn.BatchNorm1d)
