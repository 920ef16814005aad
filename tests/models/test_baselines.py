"""Baseline models (ResU-Net, SETR, TransUNet, DeepLabv3+/ResNeSt): what only the baselines do.

The contract every model keeps (build, shapes, refused inputs, round trips) is tested once for all
registered models in ``test_models.py``.
"""

from __future__ import annotations

import pytest
import torch

from glaviz.models.deeplab import DeepLabV3Plus
from glaviz.models.registry import build
from glaviz.models.resnest import ResNeSt
from glaviz.models.resunet import ResUNet
from glaviz.models.setr import SETR, resize_pos_embed
from glaviz.models.transunet import TransUNet

BASELINES = ["resunet", "setr", "transunet", "deeplabv3plus"]
OPT_DEM = {"optical": 6, "dem": 2}


def _inputs(channels, size=32, batch=1, seed=0, location=None):
    g = torch.Generator().manual_seed(seed)
    x = {k: torch.rand(batch, c, size, size, generator=g) for k, c in channels.items()}
    if location is not None:
        x["location"] = location
    return x


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", BASELINES)
def test_size_rule_is_the_total_stride_on_any_grid(name):
    model = build(f"{name}-small", input_channels=OPT_DEM, n_classes=3).eval()
    stride = model.size_multiple
    with torch.no_grad():  # non-square grids run
        out = model({"optical": torch.rand(1, 6, 64, 32), "dem": torch.rand(1, 2, 64, 32)})
    assert out.shape == (1, 3, 64, 32)
    with pytest.raises(ValueError, match=rf"multiples of {stride}.*pad or crop"):
        model(_inputs(OPT_DEM, size=stride * 2 + 8))
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


def test_position_embedding_resampling_keeps_rows_and_columns():
    """Row-major grid, bilinear with half-pixel centres: compared with the formula, not torch."""
    rows, cols = torch.meshgrid(torch.arange(2.0), torch.arange(6.0), indexing="ij")
    pos = torch.stack([rows, cols], dim=-1).reshape(1, 12, 2)
    assert resize_pos_embed(pos, (2, 6), (2, 6)) is pos
    up = resize_pos_embed(pos, (2, 6), (4, 12)).reshape(4, 12, 2)

    def source(n_out: int, n_in: int) -> torch.Tensor:  # the sampled source coordinate
        scale = n_in / n_out
        return ((torch.arange(n_out) + 0.5) * scale - 0.5).clamp(0, n_in - 1)

    torch.testing.assert_close(up[..., 0], source(4, 2)[:, None].expand(4, 12))
    torch.testing.assert_close(up[..., 1], source(12, 6)[None, :].expand(4, 12))


def test_setr_runs_on_other_patch_grids():
    setr = SETR.small(input_channels={"dem": 2}, tile_size=64).eval()
    assert setr.encoder.pos_embed.shape == (1, 16, 32)  # the tile size fixes the learned grid
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


@pytest.mark.slow
@pytest.mark.parametrize("name", BASELINES)
def test_full_size_forward(name):
    torch.manual_seed(0)
    model = build(name).eval()
    with torch.no_grad():
        out = model(_inputs({"optical": 6, "dem": 2}, size=32))
    assert out.shape == (1, 2, 32, 32)
    assert torch.isfinite(out).all()
