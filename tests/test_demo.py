"""The demo runs end to end on the Everest sample through the mirror."""

from __future__ import annotations

from glaviz.demo import load_sample_scene, main


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


def test_load_sample_scene_aligns_mask():
    scene, mask, outlines = load_sample_scene("everest_landsat7")
    assert mask.shape == (scene.sizes["y"], scene.sizes["x"])
    assert mask.rio.crs == scene.rio.crs
    assert outlines["glacier_id"].str.startswith("RGI60-15").all()
