"""The demo runs end to end on the Everest sample through the mirror."""

from __future__ import annotations

import json

import pytest

from glaviz.data.samples import sample_scene, sample_tiles
from glaviz.demo import main


def test_demo_trains_maps_and_writes_the_report(tmp_path, capsys):
    out = tmp_path / "out"
    result = main(["--output", str(out), "--epochs", "1", "--steps", "3"])
    printed = capsys.readouterr().out
    assert "everest_landsat7" in printed and "CC-BY-4.0" in printed
    html = out / "report.html"
    assert html.exists() and str(html.resolve()) in printed
    assert (out / "model" / "best.safetensors").exists()
    text = html.read_text()
    assert "Everest (demo)" in text and "widget-state+json" in text
    # the scores are the report's, and come from one confusion matrix: IoU = PR / (P + R - PR)
    summary = json.loads((out / "report_files" / "summary.json").read_text())
    assert {k: result[k] for k in summary} == {k: round(v, 4) for k, v in summary.items()}
    p, r = summary["precision"], summary["recall"]
    assert summary["iou"] == pytest.approx(p * r / (p + r - p * r) if p * r else 0.0)
    assert f"IoU {result['iou']:.3f}" in printed
    # the confidence was calibrated on the validation strip, and the report says so
    from glaviz.models.checkpoint import load_checkpoint

    meta = load_checkpoint(out / "model" / "best.safetensors").checkpoint_metadata
    assert meta.get("calibration") and "2/3 calibrating" in printed
    assert "Reliability (calibrated): ECE 0." in text
    # a second run does not overwrite the report unless asked
    with pytest.raises(SystemExit, match="--overwrite"):
        main(["--output", str(out), "--epochs", "1", "--steps", "3"])


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
