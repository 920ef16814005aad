"""Tests of the glaviz command: every sub-command through ``main``, one real subprocess, the
one-line errors, and DDP training under torchrun (gloo, 2 CPUs).

A tiny GlaViTU (random weights, its glacier bias shifted so that about half of the test crop is
glacier) maps the Everest sample's 167 x 193 test crop once through the command; the outputs
are checked against the library called directly on the same inputs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
from rasters import SHARED, write_raster

import glaviz
from glaviz.cli import main
from glaviz.inference import open_prediction
from glaviz.models.checkpoint import load_checkpoint, read_checkpoint_metadata

TRAIN = ["train", "--synthetic", "64", "--model", "glavitu-small", "--model-config",
         '{"tile_size": 32}', "--epochs", "2", "--steps-per-epoch", "3", "--batch-size", "4",
         "--quiet"]  # fmt: skip
COMMANDS = ["fetch", "train", "predict", "evaluate", "compare", "map", "calibrate", "import-keras"]
RGB, NIR = "LE71400412000304SGS00_RGB_test.tif", "LE71400412000304SGS00_B4_test.tif"
OUTLINES = "15_rgi60_glacier_outlines_test.gpkg"
SENSOR = "landsat7_display8"
KERAS = SHARED / "fixtures" / "keras_glavitu"


def one_line_error(err: str, command: str) -> str:
    """The single stderr line of a refused command (asserts there is exactly one)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"glaviz {command}: error: "), err
    return lines[0]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def files(everest_files) -> dict[str, Path]:
    return {
        "rgb": everest_files[RGB],
        "nir": everest_files[NIR],
        "outlines": everest_files[OUTLINES],
    }


@pytest.fixture(scope="module")
def scene_args(files) -> list[str]:
    return ["--optical", str(files["rgb"]), str(files["nir"]), "--sensor", SENSOR]


@pytest.fixture(scope="module")
def scene(files):
    return glaviz.open_scene([files["rgb"], files["nir"]], sensor=SENSOR)


@pytest.fixture(scope="module")
def reference(files) -> gpd.GeoDataFrame:
    return glaviz.read_outlines(files["outlines"])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = glaviz.build("glavitu-small", input_channels={"optical": 4}, tile_size=64)
    with torch.no_grad():  # random weights say "glacier" at p ~ 0.78; centre them near 0.5
        model.head.bias[1] -= 1.25
    return glaviz.save_checkpoint(model, tmp_path_factory.mktemp("model") / "tiny.safetensors")


@pytest.fixture(scope="module")
def expected(checkpoint, scene):
    """The library's own prediction for the same checkpoint and scene."""
    pred = glaviz.predict(load_checkpoint(checkpoint), scene, progress=False)
    mask = pred["glacier_mask"].values
    assert 0.2 < (mask == 1).sum() / (mask != 255).sum() < 0.8  # a mask with two classes
    return pred


@pytest.fixture(scope="module")
def predicted(tmp_path_factory, checkpoint, scene_args) -> tuple[Path, str]:
    """``glaviz predict`` run once: GeoTIFFs and a GeoPackage in out/, and what it printed."""
    out = tmp_path_factory.mktemp("predict") / "out"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        rc = main(["predict", *scene_args, "--checkpoint", str(checkpoint), "--output",
                   str(out / "everest.tif"), "--outlines", str(out / "everest.gpkg"),
                   "--quiet"])  # fmt: skip
    assert rc == 0
    return out, stdout.getvalue()


# --------------------------------------------------------------------------- fetch, train


def test_fetch_lists_files(capsys):
    assert main(["fetch", "everest_landsat7"]) == 0
    out = capsys.readouterr().out
    assert "LE71400412000304SGS00_RGB.tif\t" in out and "15_rgi60_glacier_outlines.gpkg" in out


def test_train_single_process(tmp_path):
    assert main([*TRAIN, "--checkpoint-dir", str(tmp_path)]) == 0
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["world_size"] == 1 and run["epochs"] == 2
    history = pd.read_csv(tmp_path / "history.csv")
    assert list(history["epoch"]) == [1, 2]
    meta = read_checkpoint_metadata(tmp_path / "best.safetensors")
    assert meta["config"]["input_channels"] == {"optical": 6, "dem": 2}


def test_train_needs_data(tmp_path, capsys):
    assert main(["train", "--checkpoint-dir", str(tmp_path)]) == 2
    assert "--sample NAME, --hdf5" in one_line_error(capsys.readouterr().err, "train")


def test_ddp_two_processes_with_torchrun(tmp_path):
    with socket.socket() as sock:  # a free port, not a fixed one another job may hold
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", str(port), "-m", "glaviz.cli", *TRAIN, "--threads", "1",
           "--checkpoint-dir", str(tmp_path)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["world_size"] == 2
    first, second = run["parameters_sha256_per_rank"]
    assert first == second  # gradients were averaged: both processes hold the same weights
    assert (tmp_path / "best.safetensors").exists() and (tmp_path / "last.safetensors").exists()
    assert run["final"]["steps"] == 6


def test_train_on_benchmark_hdf5(tmp_path, benchmark_dir):
    out = tmp_path / "run"
    args = ["train", "--hdf5", str(benchmark_dir / "tiny_train_ps384.hdf5"),
            "--val-hdf5", str(benchmark_dir / "tiny_val_ps384.hdf5"),
            "--model", "glavitu-small", "--model-config", '{"tile_size": 64}',
            "--strategy", "region_encoding", "--epochs", "1", "--steps-per-epoch", "2",
            "--batch-size", "2", "--quiet", "--checkpoint-dir", str(out)]  # fmt: skip
    assert main(args) == 0
    meta = read_checkpoint_metadata(out / "best.safetensors")
    assert meta["config"]["location_encoding"] == "region"
    assert meta["config"]["input_channels"] == {"optical": 6, "dem": 2}
    assert "val_iou_unknown" in pd.read_csv(out / "history.csv").columns


# --------------------------------------------------------------------------- help


@pytest.mark.parametrize("command", COMMANDS)
def test_help_describes_and_gives_an_example(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: glaviz {command} ")
    example = out[out.index("\nexample:\n") :]
    assert f"  glaviz {command} " in example or "-m glaviz.cli train" in example


# --------------------------------------------------------------------------- predict


def test_predict_writes_the_prediction_on_the_scene_grid(predicted, scene, expected):
    out, printed = predicted
    for variable in ("glacier_probability", "glacier_mask", "confidence"):
        path = out / f"everest_{variable}.tif"
        assert f"wrote {path}" in printed
        with rasterio.open(path) as src:
            assert src.crs == scene.rio.crs
            assert src.transform == scene.rio.transform()
            assert (src.height, src.width) == (scene.sizes["y"], scene.sizes["x"])
            values = src.read(1)
        np.testing.assert_allclose(values, expected[variable].values, rtol=0, atol=1e-6)
    mask = expected["glacier_mask"].values
    assert f"glacier pixels: {(mask == 1).sum()} of {(mask != 255).sum()} valid" in printed


def test_predict_outlines_are_the_mask_polygons(predicted, expected):
    out, printed = predicted
    gdf = gpd.read_file(out / "everest.gpkg")
    assert len(gdf) > 1 and f"wrote {out / 'everest.gpkg'} ({len(gdf)} polygons" in printed
    burnt = glaviz.rasterize_outlines(gdf, like=expected)  # pixel centres inside the polygons
    np.testing.assert_array_equal(burnt.values, expected["glacier_mask"].values == 1)
    pixel_km2 = 30 * 30 / 1e6
    assert gdf["area_km2"].sum() == pytest.approx((expected["glacier_mask"] == 1).sum() * pixel_km2)


def test_predict_zarr_overwrite_min_area_and_simplify(tmp_path, checkpoint, scene_args, expected,
                                                      capsys):  # fmt: skip
    store = tmp_path / "everest.zarr"
    store.mkdir()
    (store / "keep.txt").write_text("an older result")
    args = ["predict", *scene_args, "--checkpoint", str(checkpoint), "--output", str(store),
            "--outlines", str(tmp_path / "everest.geojson"), "--min-area", "0.05",
            "--simplify", "30", "--quiet"]  # fmt: skip
    assert main(args) == 2
    assert "pass --overwrite" in one_line_error(capsys.readouterr().err, "predict")
    assert (store / "keep.txt").read_text() == "an older result"

    assert main([*args, "--overwrite", "--no-resume"]) == 0
    pred = open_prediction(store)
    assert pred.rio.crs == expected.rio.crs and pred.rio.transform() == expected.rio.transform()
    np.testing.assert_array_equal(pred["glacier_mask"].values, expected["glacier_mask"].values)
    gdf = gpd.read_file(tmp_path / "everest.geojson")
    want = glaviz.to_outlines(expected, min_area=0.05, simplify=30)
    assert len(gdf) == len(want) and (gdf["area_km2"] >= 0.05).all()
    np.testing.assert_allclose(np.sort(gdf.to_crs(want.crs).area), np.sort(want.area), rtol=1e-9)


# --------------------------------------------------------------------------- evaluate


def test_evaluate_csv_has_the_library_scores(predicted, expected, reference, files, tmp_path):
    out, _ = predicted
    csv = tmp_path / "scores.csv"
    args = [
        "evaluate",
        str(out / "everest_glacier_mask.tif"),
        "--reference",
        str(files["outlines"]),
    ]
    assert main([*args, "--output", str(csv)]) == 0
    got = pd.read_csv(csv).set_index("level")
    want = glaviz.evaluate(expected, reference).set_index("level")
    assert got.loc["overall", "iou"] == pytest.approx(want.loc["overall", "iou"], rel=1e-12)
    for column in ("tp", "fp", "fn", "tn"):
        assert got.loc["overall", column] == want.loc["overall", column]
    assert got.loc["tile", "name"] == "everest_glacier_mask"


def test_evaluate_prints_markdown_and_keeps_an_existing_table(predicted, expected, reference,
                                                              files, tmp_path, capsys):  # fmt: skip
    out, _ = predicted
    args = ["evaluate", str(out / "everest"), "--reference", str(files["outlines"])]
    assert main(args) == 0
    printed = capsys.readouterr().out
    iou = glaviz.evaluate(expected, reference).set_index("level").loc["overall", "iou"]
    assert printed.startswith("| level | name |")
    assert re.search(rf"\| overall \| all \|.*\| {iou:.4g} \|", printed)

    table = tmp_path / "table.md"
    table.write_text("keep me")
    assert main([*args, "--output", str(table)]) == 2
    line = one_line_error(capsys.readouterr().err, "evaluate")
    assert str(table) in line and "--overwrite" in line
    assert table.read_text() == "keep me"
    assert main([*args, "--output", str(table), "--overwrite"]) == 0
    assert table.read_text().startswith("| level | name |")


def test_evaluate_entry_point_in_a_subprocess(predicted, files, tmp_path):
    out, _ = predicted
    csv = tmp_path / "scores.csv"
    cmd = [sys.executable, "-m", "glaviz.cli", "evaluate", str(out / "everest.tif"),
           "--reference", str(files["outlines"]), "--output", str(csv)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == f"wrote {csv}\n"
    assert list(pd.read_csv(csv)["level"]) == ["tile", "overall"]


# --------------------------------------------------------------------------- compare


def test_compare_writes_the_per_glacier_table(predicted, expected, reference, files, tmp_path,
                                              capsys):  # fmt: skip
    out, _ = predicted
    ref = ["--reference", str(files["outlines"]), "--spacing", "30"]
    csv, summary = tmp_path / "glaciers.csv", tmp_path / "summary.csv"
    args = ["compare", str(out / "everest.tif"), *ref, "--output", str(csv), "--summary",
            str(summary)]  # fmt: skip
    assert main(args) == 0
    got = pd.read_csv(csv, index_col="glacier_id")
    want = glaviz.compare_outlines(glaviz.to_outlines(expected), reference, spacing=30)
    assert list(got.index) == list(want.index) == list(reference["glacier_id"])
    for column in ("area_ref_km2", "area_pred_km2", "iou", "hausdorff_m"):
        np.testing.assert_allclose(got[column], want[column], rtol=1e-9)
    s = pd.read_csv(summary, index_col=0)
    assert s.loc["all", "n_glaciers"] == len(reference)
    assert s.loc["all", "n_within"] == want["within_uncertainty"].sum()

    md = tmp_path / "glaciers.md"  # the outlines predict wrote, compared as they are
    assert main(["compare", str(out / "everest.gpkg"), *ref, "--output", str(md)]) == 0
    text = md.read_text()
    assert "## Against expert uncertainty" in text and "## Per glacier" in text
    per_glacier = text[text.index("## Per glacier") :]
    assert all(f"| {g} |" in per_glacier for g in reference["glacier_id"])
    assert "| all | 7 |" in capsys.readouterr().out  # the summary, printed


# --------------------------------------------------------------------------- map


def test_map_writes_one_offline_html_with_the_widget_state(predicted, expected, reference, files,
                                                           tmp_path, capsys):  # fmt: skip
    out, _ = predicted
    with rasterio.open(files["rgb"]) as src:  # the scene as single-band files, BAND=FILE
        rgb, transform, crs = src.read(), src.transform, src.crs.to_string()
    with rasterio.open(files["nir"]) as src:
        nir = src.read(1)
    bands = {n: write_raster(tmp_path / f"{n}.tif", a, crs=crs, transform=transform)
             for n, a in zip(("red", "green", "blue", "B4"), [*rgb, nir])}  # fmt: skip
    html = tmp_path / "everest.html"
    args = ["map", "--optical", *[f"{n}={p}" for n, p in bands.items()], "--sensor", SENSOR,
            "--prediction", str(out / "everest.tif"), "--reference", str(files["outlines"]),
            "--output", str(html)]  # fmt: skip
    assert main(args) == 0
    assert f"wrote {html}" in capsys.readouterr().out
    text = html.read_text()
    assert not re.search(r"<script[^>]*\ssrc=", text)  # everything inline: works offline
    state = json.loads(
        re.search(r'widget-state\+json">(.*?)</script>', text, re.S).group(1).replace("<\\/", "</")
    )["state"]
    names = {v["state"].get("name"): v for v in state.values()}
    assert {"True colour", "Glacier probability", "Error vs reference"} <= set(names)
    expert = names["Expert outlines"]["state"]["data"]["features"]
    assert {f["properties"]["glacier_id"] for f in expert} <= set(reference["glacier_id"])
    predicted_outlines = names["Predicted outlines"]["state"]["data"]["features"]
    assert len(predicted_outlines) == len(glaviz.to_outlines(expected))
    assert any(v["model_name"] == "LeafletSplitMapControlModel" for v in state.values())

    assert main(args) == 2  # exists: refused, untouched
    assert "--overwrite" in one_line_error(capsys.readouterr().err, "map")
    assert html.read_text() == text


# --------------------------------------------------------------------------- calibrate


def test_calibrate_a_sample_into_a_copy(checkpoint, scene, reference, expected, tmp_path,
                                        monkeypatch, capsys):  # fmt: skip
    import glaviz.data.samples

    def crop(name: str):  # the test crop stands in for the whole sample (fast)
        assert name == "everest_landsat7"
        return scene, glaviz.rasterize_outlines(reference, like=scene), reference

    monkeypatch.setattr(glaviz.data.samples, "sample_scene", crop)
    before = checkpoint.read_bytes()
    copy = tmp_path / "calibrated.safetensors"
    args = ["calibrate", "--checkpoint", str(checkpoint), "--sample", "everest_landsat7",
            "--output", str(copy), "--quiet"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    cal = read_checkpoint_metadata(copy)["calibration"]
    assert f"ECE before: {cal['ece_before']:.4f}  after: {cal['ece_after']:.4f}" in printed
    # the uncalibrated ECE is the one evaluate reports for the same prediction and outlines
    ece = glaviz.evaluate(expected, reference).set_index("level").loc["overall", "ece"]
    assert cal["ece_before"] == pytest.approx(ece, rel=1e-9)
    assert cal["ece_after"] < cal["ece_before"]
    assert checkpoint.read_bytes() == before  # the original is untouched
    assert read_checkpoint_metadata(checkpoint)["calibration"] is None


# --------------------------------------------------------------------------- import-keras


def test_import_keras_logits_match_the_keras_model(tmp_path, capsys):
    weights = KERAS / "A_global_weights.h5"
    out = tmp_path / "global.safetensors"
    assert main(["import-keras", str(weights), "--output", str(out)]) == 0
    assert "inputs optical (6), dem (2)" in capsys.readouterr().out
    model = load_checkpoint(out)
    assert model.checkpoint_metadata["provenance"]["imported_from"] == weights.name
    with np.load(KERAS / "A_global_io.npz") as io_:
        x = {g: torch.from_numpy(io_[f"in_{g}"][:1]).permute(0, 3, 1, 2).float() / 255.0
             for g in ("optical", "dem")}  # fmt: skip
        keras = torch.from_numpy(io_["logits_main"][:1]).permute(0, 3, 1, 2)
    with torch.inference_mode():
        logits = model(x)
    assert logits.shape == keras.shape == (1, 2, 384, 384)
    assert (logits - keras).abs().max().item() <= 1e-3  # the tolerance of tests/models

    stamp = out.stat().st_mtime_ns
    assert main(["import-keras", str(weights), "--output", str(out)]) == 2
    line = one_line_error(capsys.readouterr().err, "import-keras")
    assert str(out) in line and "--overwrite" in line
    assert out.stat().st_mtime_ns == stamp


# --------------------------------------------------------------------------- errors


@pytest.fixture()
def dem_file(tmp_path) -> Path:
    return write_raster(tmp_path / "dem.tif", np.full((40, 40), 5000.0, np.float32))


ERRORS = {
    "missing scene file": (
        ["predict", "--optical", "{tmp}/nowhere.tif", "--sensor", SENSOR, "--checkpoint",
         "{ckpt}", "--output", "{tmp}/o.tif"], "nowhere.tif' does not exist"),
    "unknown output format": (
        ["predict", "{scene}", "--checkpoint", "{ckpt}", "--output", "{tmp}/o.png"],
        "o.png': cannot tell the format"),
    "optical without sensor": (
        ["predict", "--optical", "{outlines}", "--checkpoint", "{ckpt}", "--output", "{tmp}/o.tif"],
        "--optical needs the sensor of its files: add --sensor NAME (known: dem, landsat7"),
    "sensors not GROUP=SENSOR": (
        ["predict", "{scene}", "--sensors", "dem", "--checkpoint", "{ckpt}", "--output",
         "{tmp}/o.tif"], "--sensors 'dem': write GROUP=SENSOR"),
    "missing checkpoint": (
        ["predict", "{scene}", "--checkpoint", "{tmp}/m.safetensors", "--output", "{tmp}/o.tif"],
        "m.safetensors': no such file"),
    "keras checkpoint": (
        ["predict", "{scene}", "--checkpoint", "{tmp}/w.h5", "--output", "{tmp}/o.tif"],
        "glaviz import-keras"),
    "nothing to write": (["predict", "{scene}", "--checkpoint", "{ckpt}"], "nothing to write"),
    "sample and files": (
        ["predict", "{scene}", "--sample", "everest_landsat7", "--checkpoint", "{ckpt}",
         "--output", "{tmp}/o.tif"], "either --sample or scene files"),
    "scene without the model's inputs": (
        ["calibrate", "--checkpoint", "{ckpt}", "--dem", "{dem}", "--reference", "{outlines}"],
        "optical"),
    "missing prediction": (
        ["evaluate", "{tmp}/p.zarr", "--reference", "{outlines}"], "p.zarr' does not exist"),
    "raster as reference": (
        ["evaluate", "{tmp}/p.zarr", "--reference", "{dem}"], "dem.tif': expected a .gpkg"),
    "no reference": (["compare", "{tmp}/p.gpkg"], "no reference: give --reference"),
    "unknown sample": (
        ["evaluate", "{tmp}/p.tif", "--sample", "atlantis"], "'atlantis': no sample"),
    "map to png": (["map", "{scene}", "--output", "{tmp}/m.png"], "m.png': cannot tell"),
    "missing weights": (["import-keras", "{tmp}/missing.h5"], "missing.h5': no such file"),
    "weights not HDF5": (["import-keras", "{tmp}/w.h5"], "w.h5: not a readable HDF5 file"),
    "config not JSON": (
        ["import-keras", "{keras}", "--output", "{tmp}/k.safetensors", "--config", "{{bad"],
        "--config is not JSON"),
    "weights not h5": (["import-keras", "{ckpt}"], "expected a .h5 or .hdf5 file"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ERRORS))
def test_bad_input_is_one_line_and_status_2(case, tmp_path, checkpoint, scene_args, files,
                                            dem_file, capsys):  # fmt: skip
    (tmp_path / "w.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    argv, message = ERRORS[case]
    values = {"tmp": tmp_path, "ckpt": checkpoint, "dem": dem_file, "outlines": files["outlines"],
              "keras": KERAS / "A_global_weights.h5"}  # fmt: skip
    args = []
    for a in argv:
        args += scene_args if a == "{scene}" else [a.format(**values)]
    assert main(args) == 2
    assert message in one_line_error(capsys.readouterr().err, args[0])
    assert not any(tmp_path.glob("o*.tif")) and not any(tmp_path.glob("[mk].*"))


def test_other_failures_exit_1_and_traceback_shows_them(predicted, files, monkeypatch, capsys):
    out, _ = predicted

    def broken(*args, **kwargs):
        raise RuntimeError("the disk caught fire\nsecond line")

    monkeypatch.setattr(glaviz.evaluation, "evaluate", broken)
    args = ["evaluate", str(out / "everest.tif"), "--reference", str(files["outlines"])]
    assert main(args) == 1
    line = one_line_error(capsys.readouterr().err, "evaluate")
    assert "RuntimeError: the disk caught fire second line" in line
    with pytest.raises(RuntimeError, match="caught fire"):
        main(["--traceback", *args])


def test_report_passes_parameters_and_refuses_bad_ones(tmp_path, monkeypatch, capsys):
    import glaviz.reports

    seen = {}

    def fake_report(params, output, **kwargs):
        seen.update(params=params, output=output, **kwargs)
        output.write_text("<html></html>")
        return output

    monkeypatch.setattr(glaviz.reports, "report", fake_report)
    out = tmp_path / "r.html"
    args = ["report", "--param", "region=Khumbu West", "--param", "train_epochs=3"]
    assert main([*args, "--param", "optical_files=['a.tif']", "--output", str(out)]) == 0
    assert seen["params"] == {
        "region": "Khumbu West", "train_epochs": 3, "optical_files": ["a.tif"]
    }  # fmt: skip
    assert seen["output"] == out and seen["overwrite"] is False
    # an existing report is refused before anything runs; a bad --param is one line
    seen.clear()
    assert main([*args, "--output", str(out)]) == 2
    assert not seen and "--overwrite" in capsys.readouterr().err
    assert main(["report", "--param", "nonsense", "--output", str(tmp_path / "x.html")]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err


def test_report_checks_parameters_before_the_kernel(tmp_path, capsys):
    assert main(["report", "--param", "regoin=X", "--output", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no parameter 'regoin'" in err[0]
    assert not (tmp_path / "r.html").exists()


def test_report_config_exit_status_follows_the_regions(tmp_path, monkeypatch, capsys):
    import glaviz.reports

    def fake_many(config, out, **kwargs):
        out.mkdir(parents=True, exist_ok=True)
        return pd.DataFrame(
            [
                {"region": "A", "status": "ok", "iou": 0.81, "error": None},
                {"region": "B", "status": "failed", "iou": None, "error": "ValueError: bad"},
            ]
        )

    monkeypatch.setattr(glaviz.reports, "report_many", fake_many)
    config = tmp_path / "regions.yml"
    config.write_text("- {name: A}\n- {name: B}\n")
    assert main(["report", "--config", str(config), "--output", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    assert "A: ok IoU 0.810" in out and "B: failed ValueError: bad" in out
