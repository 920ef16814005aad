"""Baseline models (ResU-Net, SETR, TransUNet, DeepLabv3+/ResNeSt) behind the fusion block."""

from __future__ import annotations

import inspect

import pytest
import torch

from glaviz.models.deeplab import DeepLabV3Plus
from glaviz.models.registry import build
from glaviz.models.resnest import ResNeSt
from glaviz.models.resunet import ResUNet
from glaviz.models.setr import SETR, resize_pos_embed
from glaviz.models.transunet import TransUNet

BASELINES = ["resunet", "setr", "transunet", "deeplabv3plus"]
CLASSES = {"resunet": ResUNet, "setr": SETR, "transunet": TransUNet, "deeplabv3plus": DeepLabV3Plus}
ALL_GROUPS = {
    "optical": 6,
    "dem": 2,
    "co_pol_sar": 2,
    "cross_pol_sar": 2,
    "in_sar": 2,
    "thermal": 1,
}
SUBSETS = [{"optical": 6, "dem": 2}, {"dem": 2}, ALL_GROUPS, {"optical": 4}]

# Full-size parameter counts (torch.numel over parameters), default inputs optical 6 + dem 2.
FULL_SIZE_PARAMETERS = {
    "resunet": 32_572_162,
    "setr": 101_720_322,
    "transunet": 105_854_946,
    "deeplabv3plus": 63_196_162,
}


def _inputs(channels, size=32, batch=1, seed=0, location=None):
    g = torch.Generator().manual_seed(seed)
    x = {k: torch.rand(batch, c, size, size, generator=g) for k, c in channels.items()}
    if location is not None:
        x["location"] = location
    return x


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", BASELINES)
@pytest.mark.parametrize("channels", SUBSETS, ids=["optical+dem", "dem", "all", "optical4"])
def test_output_shape_for_group_subsets(name, channels):
    torch.manual_seed(0)
    model = build(f"{name}-small", input_channels=channels).eval()
    assert model.groups == tuple(channels)
    with torch.no_grad():
        out = model(_inputs(channels, size=32, batch=2))
    assert isinstance(out, torch.Tensor)
    assert out.shape == (2, 2, 32, 32)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", BASELINES)
def test_non_square_input_and_n_classes(name):
    model = build(f"{name}-small", input_channels={"dem": 2}, n_classes=3).eval()
    with torch.no_grad():
        out = model({"dem": torch.rand(1, 2, 64, 32)})
    assert out.shape == (1, 3, 64, 32)


@pytest.mark.parametrize("name", BASELINES)
def test_training_backward_reaches_fusion_block(name):
    torch.manual_seed(0)
    model = build(f"{name}-small", input_channels={"optical": 6, "dem": 2}).train()
    x = _inputs({"optical": 6, "dem": 2}, size=32, batch=2)
    target = torch.randint(0, 2, (2, 32, 32))
    out = model(x)
    assert isinstance(out, torch.Tensor), "baselines return a plain tensor in training mode too"
    loss = torch.nn.functional.cross_entropy(out, target)
    loss.backward()
    for group in ("optical", "dem"):
        grad = model.fusion.branches[group].conv.conv1.weight.grad
        assert grad is not None and grad.abs().sum() > 0, group
    assert model.head.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", BASELINES)
@pytest.mark.parametrize("encoding", ["region", "coordinates"])
def test_location_encoding_changes_outputs(name, encoding):
    torch.manual_seed(0)
    model = build(f"{name}-small", input_channels={"dem": 2}, location_encoding=encoding).eval()
    n = 12 if encoding == "region" else 4
    assert model.config["location_features"] == n
    x = _inputs({"dem": 2}, size=32, batch=2)
    loc_a = torch.eye(n)[[0, 0]] if encoding == "region" else torch.zeros(2, n)
    loc_b = torch.eye(n)[[3, 3]] if encoding == "region" else torch.ones(2, n)
    with torch.no_grad():
        a = model({**x, "location": loc_a})
        b = model({**x, "location": loc_b})
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="'location'.*missing"):
        model(x)
    with pytest.raises(ValueError, match=rf"shape \(2, {n}\)"):
        model({**x, "location": torch.zeros(2, n + 1)})


@pytest.mark.parametrize("name", BASELINES)
def test_config_round_trip_reproduces_outputs(name):
    torch.manual_seed(0)
    model = build(
        f"{name}-small", input_channels={"optical": 6, "dem": 2}, location_encoding="region"
    )
    # move the BatchNorm statistics away from their initial values
    with torch.no_grad():
        model.train()(_inputs({"optical": 6, "dem": 2}, batch=2, location=torch.eye(12)[:2]))
    model.eval()
    cfg = model.config
    assert cfg == CLASSES[name](**cfg).config
    rebuilt = build(name, **cfg).eval()
    rebuilt.load_state_dict(model.state_dict())
    x = _inputs({"optical": 6, "dem": 2}, location=torch.eye(12)[[4]])
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt(x))


@pytest.mark.parametrize("name", BASELINES)
def test_config_holds_every_constructor_argument(name):
    cls = CLASSES[name]
    params = inspect.signature(cls).parameters
    assert all(p.kind is p.KEYWORD_ONLY for p in params.values())
    assert set(cls.small().config) == set(params)


@pytest.mark.parametrize("name", BASELINES)
def test_input_errors_name_the_problem(name):
    model = build(f"{name}-small", input_channels={"optical": 6, "dem": 2}).eval()
    stride = model.size_multiple
    with pytest.raises(ValueError, match=rf"multiples of {stride}.*pad or crop"):
        model(_inputs({"optical": 6, "dem": 2}, size=stride * 2 + 8))
    with pytest.raises(ValueError, match="'dem' is missing"):
        model({"optical": torch.rand(1, 6, 32, 32)})
    with pytest.raises(ValueError, match="'dem' must have 2 channels"):
        model({"optical": torch.rand(1, 6, 32, 32), "dem": torch.rand(1, 3, 32, 32)})
    with pytest.raises(ValueError, match="no location encoding"):
        model({**_inputs({"optical": 6, "dem": 2}), "location": torch.zeros(1, 12)})
    with pytest.raises(ValueError, match="one batch size and one grid"):
        model({"optical": torch.rand(1, 6, 32, 32), "dem": torch.rand(1, 2, 64, 64)})


def test_total_strides():
    assert ResUNet.small().size_multiple == 16
    assert ResUNet.small(widths=(8, 16)).size_multiple == 4
    assert SETR.small(patch_size=8).size_multiple == 8
    assert TransUNet.small().size_multiple == 16
    assert DeepLabV3Plus.small(output_stride=8).size_multiple == 8
    with pytest.raises(ValueError, match="output_stride must be 16 or 8"):
        DeepLabV3Plus.small(output_stride=32)
    with pytest.raises(ValueError, match="power of two"):
        SETR.small(patch_size=12)


def test_setr_and_transunet_position_embedding_resampling():
    pos = torch.arange(16.0).reshape(1, 16, 1)
    assert torch.equal(resize_pos_embed(pos, (4, 4), (4, 4)), pos)
    up = resize_pos_embed(pos, (4, 4), (8, 8))
    assert up.shape == (1, 64, 1)
    assert up.min() >= 0 and up.max() <= 15
    # the tile size fixes the learned grid; other patch grids still run
    setr = SETR.small(input_channels={"dem": 2}, tile_size=64).eval()
    assert setr.encoder.pos_embed.shape == (1, 16, 32)
    with torch.no_grad():
        assert setr({"dem": torch.rand(1, 2, 96, 48)}).shape == (1, 2, 96, 48)


def test_resnest_matches_published_parameter_counts():
    fc = 2048 * 1000 + 1000  # ImageNet classifier, not part of the backbone
    with torch.device("meta"):
        resnest50 = ResNeSt(3, layers=(3, 4, 6, 3), stem_width=32)
        resnest101 = ResNeSt(3, layers=(3, 4, 23, 3), stem_width=64)
        resnet50 = ResNeSt(
            3, layers=(3, 4, 6, 3), radix=0, deep_stem=False, avd=False, avg_down=False
        )
    assert _n_params(resnest50) + fc == 27_483_240  # ResNeSt-50 (timm resnest50d)
    assert _n_params(resnest101) + fc == 48_275_016  # ResNeSt-101 (timm resnest101e)
    assert _n_params(resnet50) + fc == 25_557_032  # ResNet-50 (torchvision)
    assert resnest101.channels == [128, 256, 512, 1024, 2048]


def test_resnest_output_stride_dilates():
    net = ResNeSt(4, layers=(1, 1, 2, 2), base_width=8, stem_width=8, output_stride=8).eval()
    with torch.no_grad():
        feats = net(torch.rand(1, 4, 32, 32))
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 4, 4]
    assert net.strides == [2, 4, 8, 8, 8]


@pytest.mark.parametrize("name", BASELINES)
def test_full_size_parameter_counts_and_shapes_on_meta(name):
    with torch.device("meta"):
        model = build(name).eval()
        out = model(_inputs({"optical": 6, "dem": 2}, size=384))
    assert _n_params(model) == FULL_SIZE_PARAMETERS[name]
    assert out.shape == (1, 2, 384, 384)


@pytest.mark.slow
@pytest.mark.parametrize("name", BASELINES)
def test_full_size_forward(name):
    torch.manual_seed(0)
    model = build(name).eval()
    assert _n_params(model) == FULL_SIZE_PARAMETERS[name]
    with torch.no_grad():
        out = model(_inputs({"optical": 6, "dem": 2}, size=32))
    assert out.shape == (1, 2, 32, 32)
    assert torch.isfinite(out).all()
