"""Tests of glaviz.viz.plots: the plotted data are the inputs', and every figure renders to bokeh.

Inputs come from the real functions on small synthetic scenes: a fake prediction (noisy
probability around the reference mask) scored by ``evaluate``, ``reliability`` and
``compare_outlines``; a two-epoch ``fit``; prediction outputs written by the inference sinks.
"""

from __future__ import annotations

import dask
import dask.threaded
import holoviews as hv
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from bokeh.models import Model
from bokeh.plotting import figure
from rasterio.transform import from_origin

from glaviz.calibration import binary_confidence, ece_from_table, fit_calibration
from glaviz.compare import compare_outlines, summarise_against_experts
from glaviz.data import synthetic_scene
from glaviz.evaluation import evaluate, reliability
from glaviz.vector import to_outlines
from glaviz.viz.plots import (
    confidence_histogram,
    glacier_deviations,
    metric_bars,
    reliability_diagram,
    thumbnail_grid,
    training_history,
)


def _fake_prediction(scene: xr.Dataset, seed: int) -> xr.Dataset:
    """A prediction Dataset as glaviz.predict returns it: noisy probability around the truth."""
    rng = np.random.default_rng(seed)
    ref = scene["reference_mask"].values.astype(float)
    p = np.clip(0.15 + 0.7 * ref + rng.normal(0, 0.2, ref.shape), 0, 1).astype(np.float32)
    valid = scene["valid"].values
    like = scene["reference_mask"]
    return xr.Dataset(
        {
            "glacier_probability": like.copy(data=np.where(valid, p, np.nan).astype("f4")),
            "glacier_mask": like.copy(data=np.where(valid, p >= 0.5, 255).astype("u1")),
            "confidence": like.copy(data=np.where(valid, binary_confidence(p), np.nan)),
            "valid": like.copy(data=valid),
        }
    )


def _figures(obj) -> list[figure]:
    """Render with bokeh; the figures of the result in panel order (row by row)."""
    model = hv.render(obj, backend="bokeh")
    assert isinstance(model, Model)
    if isinstance(model, figure):
        return [model]
    cells = sorted(model.children, key=lambda c: (c[1], c[2]))  # a GridPlot of (fig, row, col)
    return [c[0] for c in cells]


@pytest.fixture(scope="module")
def scenes():
    return [synthetic_scene(64, 64, seed=s) for s in (0, 1)]


@pytest.fixture(scope="module")
def predictions(scenes):
    return [_fake_prediction(s, i) for i, s in enumerate(scenes)]


# --------------------------------------------------------------------------- reliability


def test_reliability_diagram_plots_the_bins_and_the_ece(scenes, predictions):
    before, ece_before = reliability(predictions[0], scenes[0])
    pred, ref = predictions[0], scenes[0]
    keep = pred["valid"].values
    correct = pred["glacier_mask"].values[keep] == ref["reference_mask"].values[keep]
    cal = fit_calibration(pred["confidence"].values[keep], correct)
    after, ece_after = reliability(pred.assign(confidence=cal(pred["confidence"])), ref)
    assert ece_after < ece_before  # the calibration did something to show

    overlay = reliability_diagram((before, ece_before), after)
    points = [el for el in overlay if isinstance(el, hv.Points)]
    assert [p.label for p in points] == [
        f"before calibration (ECE {ece_from_table(before):.4f})",
        f"after calibration (ECE {ece_from_table(after):.4f})",
    ]
    for p, table in zip(points, (before, after)):
        used = table[table["count"] > 0]
        np.testing.assert_allclose(p.dimension_values("confidence"), used["confidence"])
        np.testing.assert_allclose(p.dimension_values("accuracy"), used["accuracy"])
        np.testing.assert_array_equal(p.dimension_values("count"), used["count"])
        order = np.argsort(p.dimension_values("count"))  # bigger bins, bigger points
        assert np.all(np.diff(p.dimension_values("size")[order]) >= 0)
    assert p.dimension_values("count").sum() == int(keep.sum())

    (fig,) = _figures(overlay)
    assert fig.title.text == (
        f"Reliability: ECE {ece_from_table(before):.4f} → {ece_from_table(after):.4f}"
    )
    single = reliability_diagram(before, title="mine")
    assert _figures(single)[0].title.text == "mine"


def test_reliability_diagram_names_the_missing_column(scenes, predictions):
    table, _ = reliability(predictions[0], scenes[0])
    with pytest.raises(KeyError, match="accuracy"):
        reliability_diagram(table.drop(columns="accuracy"))
    with pytest.raises(KeyError, match=r"reliability_diagram\(after\).*count"):
        reliability_diagram(table, table.drop(columns="count"))


# --------------------------------------------------------------------------- metric bars


@pytest.fixture(scope="module")
def scores(scenes, predictions):
    items = [
        (predictions[0], scenes[0], {"region": "ALP", "subregion": "ALP-1", "tile": "a"}),
        (predictions[1], scenes[1], {"region": "GR", "subregion": "GR-1", "tile": "b"}),
        (predictions[1], scenes[1], {"region": "GR", "subregion": "GR-2", "tile": "c"}),
    ]
    return evaluate(items)


@pytest.mark.parametrize("level", ["region", "subregion"])
def test_metric_bars_heights_are_the_table_scores(scores, level):
    metrics = ("iou", "precision", "recall")
    bars = metric_bars(scores, level=level, metrics=metrics)
    rows = scores[scores.level == level].set_index("name")
    assert len(rows) == (2 if level == "region" else 3)
    got = dict(
        zip(
            zip(bars.dimension_values("name"), bars.dimension_values("metric")),
            bars.dimension_values("score"),
        )
    )
    assert got == {(n, m): pytest.approx(rows.loc[n, m]) for n in rows.index for m in metrics}
    (fig,) = _figures(bars)
    assert [f[0] for f in fig.x_range.factors][:: len(metrics)] == list(rows.index)


def test_metric_bars_names_repeated_subregions_by_region(scenes, predictions):
    items = [
        (predictions[0], scenes[0], {"region": "ALP", "subregion": "S1"}),
        (predictions[1], scenes[1], {"region": "GR", "subregion": "S1"}),
    ]
    table = evaluate(items)
    bars = metric_bars(table, level="subregion", metrics=["iou"])
    assert bars.dimension_values("name").tolist() == ["ALP/S1", "GR/S1"]
    expected = table.loc[table.level == "subregion", "iou"].tolist()
    assert bars.dimension_values("score").tolist() == pytest.approx(expected)


def test_metric_bars_bad_level_or_metric(scores, scenes, predictions):
    with pytest.raises(ValueError, match=r"no rows of level 'subregion'.*'region'"):
        metric_bars(evaluate(predictions[0], scenes[0], region="ALP"), level="subregion")
    with pytest.raises(KeyError, match="'dice'"):
        metric_bars(scores, metrics=["iou", "dice"])


# --------------------------------------------------------------------------- glaciers


@pytest.fixture(scope="module")
def per_glacier(scenes, predictions):
    ref = to_outlines(scenes[0]["reference_mask"])
    ref["glacier_id"] = [f"G{i}" for i in range(len(ref))]
    ref["debris"] = np.arange(len(ref)) % 2 == 1
    table = compare_outlines(to_outlines(predictions[0]), ref, debris_column="debris")
    return table.assign(name=[f"glacier {i}" for i in range(len(table))])


def _status(layout, panel=0):
    return {
        p.label: p.dimension_values("glacier_id").tolist()
        for p in layout[panel]
        if isinstance(p, hv.Points)
    }


def test_glacier_deviations_marks_the_glaciers_outside_the_band(per_glacier):
    t = per_glacier
    within = t["within_uncertainty"]
    assert within.any() and not within.all()  # both kinds to tell apart
    fig = glacier_deviations(t)
    status = _status(fig)
    assert status["outside expert uncertainty"] == t.index[~within].tolist()
    assert status["within expert uncertainty"] == t.index[within].tolist()
    inside = [p for p in fig[0] if isinstance(p, hv.Points)][0]
    np.testing.assert_allclose(
        inside.dimension_values("area_deviation_pct"), t.loc[within, "area_deviation_pct"]
    )
    assert inside.dimension_values("name").tolist() == t.loc[within, "name"].tolist()
    spans = sorted(s.data[1] for s in fig[0] if isinstance(s, hv.HSpan))
    assert spans == pytest.approx([5.0, 30.0])  # clean ice and debris bands
    distance = [p for p in fig[1] if isinstance(p, hv.Points)]
    mean = (t["ref_to_pred_mean_m"] + t["pred_to_ref_mean_m"]) / 2
    got = {g: d for p in distance for g, d in zip(p["glacier_id"], p["mean_distance_m"])}
    assert got == pytest.approx(mean.dropna().to_dict())
    # judged against 5 % everywhere: the count agrees with summarise_against_experts
    strict = _status(glacier_deviations(t, debris_uncertainty=0.05))
    expected = summarise_against_experts(t, debris_uncertainty=0.05).loc["all", "n_within"]
    assert len(strict.get("within expert uncertainty", [])) == expected < within.sum()
    figs = _figures(fig)
    assert figs[0].title.text.startswith(f"{within.sum()} of {len(t)} glaciers within")
    hover = [tool for f in figs for tool in f.tools if tool.__class__.__name__ == "HoverTool"]
    assert len(hover) == 2
    for h in hover:
        assert {"glacier_id", "name", "area_deviation_pct"} <= {label for label, _ in h.tooltips}


def test_glacier_deviations_names_the_missing_column(per_glacier):
    with pytest.raises(KeyError, match="uncertainty_pct"):
        glacier_deviations(per_glacier.drop(columns="uncertainty_pct"))


# --------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def history():
    from glaviz.data import scale
    from glaviz.data.tiles import SceneTile
    from glaviz.models import GlaViTU
    from glaviz.train import fit

    ds = synthetic_scene(height=64, width=64, seed=0, groups=["optical", "dem"])
    tile = SceneTile(scale(ds), ds["reference_mask"])
    model = GlaViTU.small(tile_size=32)
    return fit(model, [tile], [tile], epochs=2, steps_per_epoch=2, batch_size=2, progress=False)


def test_training_history_curves_are_the_history(history):
    assert history["lr"].iloc[-1] == 0  # the cosine schedule ends at 0: no log axis then
    layout = training_history(history)
    titles = [p.opts.get(backend="bokeh").kwargs["title"] for p in layout]
    assert titles == ["loss", "validation IoU", "learning rate"]
    for panel, column in zip(layout, ("train_loss", "val_iou", "lr")):
        (curve,) = panel
        np.testing.assert_array_equal(curve.dimension_values(0), history["epoch"])
        np.testing.assert_allclose(curve.dimension_values(1), history[column])
    figs = _figures(layout)
    assert len(figs) == 3
    assert [f.y_scale.__class__.__name__ for f in figs] == ["LinearScale"] * 3
    positive = training_history(history.assign(lr=[5e-4, 1e-6]))
    assert _figures(positive)[2].y_scale.__class__.__name__ == "LogScale"
    no_val = training_history(history[["epoch", "lr", "train_loss"]])
    assert len(no_val) == 2


def test_training_history_names_the_missing_column(history):
    with pytest.raises(KeyError, match="'lr'"):
        training_history(history.drop(columns="lr"))


# --------------------------------------------------------------------------- confidence


def test_confidence_histogram_counts_the_valid_pixels(predictions):
    pred = predictions[0]
    n_valid = int(pred["valid"].sum())
    assert n_valid < pred["valid"].size  # the scene has nodata holes
    layout = confidence_histogram(pred, bins=20)
    counts = [h.dimension_values("pixels") for h in layout]
    assert [int(c.sum()) for c in counts] == [n_valid, n_valid]
    keep = pred["valid"].values
    edges = np.linspace(0, 1, 21)
    np.testing.assert_array_equal(counts[0], np.histogram(pred.confidence.values[keep], edges)[0])
    np.testing.assert_array_equal(
        counts[1], np.histogram(pred.glacier_probability.values[keep], edges)[0]
    )
    assert len(_figures(layout)) == 2
    # pixels that have values but are not valid do not count
    west = pred.assign(valid=pred["valid"] & (pred["x"] < pred["x"][32]))
    n_west = int(west["valid"].sum())
    assert 0 < n_west < n_valid
    sums = [int(h.dimension_values("pixels").sum()) for h in confidence_histogram(west)]
    assert sums == [n_west, n_west]


def test_confidence_histogram_reads_dask_data_in_one_pass(predictions):
    pred = predictions[0].chunk({"y": 16, "x": 16})
    calls = []

    def counting_get(dsk, keys, **kwargs):
        calls.append(len(keys))
        return dask.threaded.get(dsk, keys, **kwargs)

    with dask.config.set(scheduler=counting_get):
        lazy = confidence_histogram(pred, bins=20)
    eager = confidence_histogram(predictions[0], bins=20)
    assert len(calls) == 1  # both histograms from one computation
    for a, b in zip(lazy, eager):
        np.testing.assert_array_equal(a.dimension_values("pixels"), b.dimension_values("pixels"))
    assert pred["confidence"].chunks is not None  # the input stays lazy


def test_confidence_histogram_without_confidence_or_probability(predictions):
    raw = confidence_histogram(predictions[0].drop_vars("confidence"), bins=10)
    assert int(raw[0].dimension_values("pixels").sum()) == int(predictions[0]["valid"].sum())
    with pytest.raises(KeyError, match="'confidence'.*'glacier_probability'"):
        confidence_histogram(predictions[0][["glacier_mask", "valid"]])


# --------------------------------------------------------------------------- thumbnails


@pytest.fixture(scope="module")
def many_results(tmp_path_factory):
    """Outputs as predict_many leaves them: a COG stem, a Zarr store and a failed scene."""
    from glaviz.inference.sinks import make_sink

    out = tmp_path_factory.mktemp("many")
    h, w, res = 1024, 1536, 30.0
    coords = {"y": 3108140.0 - res * (np.arange(h) + 0.5), "x": 478000.0 + res * np.arange(w)}
    template = xr.Dataset(coords=coords).rio.write_crs("EPSG:32645")
    template = template.rio.write_transform(from_origin(477985.0, 3108140.0, res, res))
    yy, xx = np.mgrid[0:h, 0:w]
    p = (0.5 + 0.5 * np.sin(xx / 50.0) * np.cos(yy / 70.0)).astype(np.float32)
    valid = (yy - 500) ** 2 + (xx - 700) ** 2 > 150**2
    values = {
        "glacier_probability": np.where(valid, p, np.nan).astype(np.float32),
        "glacier_mask": np.where(valid, p >= 0.5, 255).astype(np.uint8),
        "confidence": np.where(valid, binary_confidence(p), np.nan).astype(np.float32),
    }
    for target in (out / "cog", out / "store.zarr"):
        sink = make_sink(target, template, {})
        sink.write("0", (0, h, 0, w), values)
        sink.finalize()
    error = "ValueError: the scene has no CRS; set it with .rio.write_crs\nTraceback (most ..."
    rows = [
        {"scene": "cog", "status": "ok", "output": str(out / "cog"), "error": ""},
        {"scene": "broken", "status": "failed", "output": str(out / "broken"), "error": error},
        {"scene": "store", "status": "ok", "output": str(out / "store.zarr"), "error": ""},
    ]
    return pd.DataFrame(rows), values


def test_thumbnail_grid_decimates_and_shows_errors(many_results):
    results, values = many_results
    grid = thumbnail_grid(results, max_size=384, columns=2)
    cog, failed, store = grid
    assert isinstance(cog, hv.Image) and isinstance(store, hv.Image)
    for img in (cog, store):
        assert img.dimension_values("glacier_mask", flat=False).shape == (256, 384)  # step 4
    # the COG is read at its overview (factor 4), not decimated from the full raster
    with rasterio.open(results.output[0] + "_glacier_mask.tif", overview_level=1) as src:
        overview = src.read(1).astype(np.float32)
    overview[overview == 255] = np.nan
    shown = np.flipud(cog.dimension_values("glacier_mask", flat=False))
    np.testing.assert_array_equal(shown, overview)
    expected = values["glacier_mask"][::4, ::4].astype(np.float32)
    expected[expected == 255] = np.nan
    np.testing.assert_array_equal(np.flipud(store.dimension_values(2, flat=False)), expected)
    assert isinstance(failed, hv.Text)
    assert failed.text.replace("\n", " ") == results.error[1].splitlines()[0]
    assert "broken" in failed.opts.get(backend="bokeh").kwargs["title"]
    assert len(_figures(grid)) == 3


def test_thumbnail_grid_small_rasters_unreadable_outputs_and_bad_input(many_results, tmp_path):
    results, _ = many_results
    prob = thumbnail_grid(results.iloc[[0]], max_size=100, variable="glacier_probability")
    (img,) = prob
    assert img.dimension_values(2, flat=False).shape == (64, 96)  # step ceil(1536 / 100) = 16
    gone = results.iloc[[0]].assign(output=str(tmp_path / "missing"))
    (text,) = thumbnail_grid(gone)
    assert isinstance(text, hv.Text) and str(tmp_path / "missing") in text.text.replace("\n", "")
    with pytest.raises(KeyError, match="'status'"):
        thumbnail_grid(results.drop(columns="status"))
    with pytest.raises(ValueError, match="max_size"):
        thumbnail_grid(results, max_size=0)


def test_titles_fit_their_figures(scenes, predictions, per_glacier):
    """bokeh titles do not wrap: a long one is cut at the figure's edge (the report's histogram
    and glacier panels were). About 8.7 px per character of the 12 px bold title, and 85 px of
    axis and margin, as measured in the report rendered by Chromium."""
    pred = predictions[0]
    table, _ = reliability(pred, scenes[0])
    figures = [
        *_figures(confidence_histogram(pred)),
        *_figures(glacier_deviations(per_glacier)),
        *_figures(glacier_deviations(per_glacier.assign(debris=1.0))),
        *_figures(reliability_diagram(table)),
        *_figures(reliability_diagram(table, table)),
        *_figures(reliability_diagram(table, title="Reliability (uncalibrated): ECE 0.732")),
    ]
    for fig in figures:
        assert len(fig.title.text) * 8.7 <= fig.width - 85, fig.title.text
    ylabels = [f.yaxis[0].axis_label for f in _figures(confidence_histogram(pred))]
    n_valid = int(pred["valid"].sum())
    assert ylabels == [f"pixels (of {n_valid:,} valid)"] * 2  # the count moved off the title
