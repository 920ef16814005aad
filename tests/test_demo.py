"""The demo runs end to end on the Everest sample through the mirror."""

from __future__ import annotations

from glaviz.data.samples import sample_scene, sample_tiles
from glaviz.demo import main


def test_demo_summary(tmp_path, capsys):
    summary = main(["--output", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert "everest_landsat7" in out and "CC-BY-4.0" in out
    assert summary["size_px"] == [655, 800]
    assert summary["crs"] == "EPSG:32645"
    assert summary["outlines"] == 86
    assert 0.5 < summary["reference_glacier_fraction"] < 0.58
    lo, hi = summary["scaled_optical_range"]
    assert 0.0 <= lo < hi <= 1.0


def test_sample_tiles_follow_the_everest_protocol():
    tiles = sample_tiles("everest_landsat7")
    assert {k: t.shape for k, t in tiles.items()} == {
        "train": (527, 480), "val": (128, 480), "test": (655, 320),
    }  # fmt: skip
    assert tiles["test"].region == "HMA" and tiles["train"].groups == ("optical",)
    x_train_end = float(tiles["train"].scene.x[-1])
    assert float(tiles["test"].scene.x[0]) > x_train_end


def test_sample_scene_aligns_mask():
    scene, mask, outlines = sample_scene("everest_landsat7")
    assert mask.shape == (scene.sizes["y"], scene.sizes["x"])
    assert mask.rio.crs == scene.rio.crs
    assert outlines["glacier_id"].str.startswith("RGI60-15").all()
