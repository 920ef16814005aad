"""Tests of glaviz.evaluation against values computed by hand on tiny masks and polygons."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
import xarray as xr
from rasterio.transform import from_origin

from glaviz.compare import boundary_distances, nearest_zones
from glaviz.data import synthetic_scene
from glaviz.evaluation import (
    Evaluator,
    compare_outlines,
    evaluate,
    evaluate_benchmark,
    reliability,
    summarise_against_experts,
)
from glaviz.vector import to_outlines

UTM = "EPSG:32632"


def _da(data, *, crs=UTM, origin=(600000.0, 5200000.0), res=10.0):
    data = np.asarray(data)
    h, w = data.shape
    coords = {
        "y": origin[1] - res * (np.arange(h) + 0.5),
        "x": origin[0] + res * (np.arange(w) + 0.5),
    }
    da = xr.DataArray(data, coords=coords, dims=("y", "x"))
    return da.rio.write_crs(crs).rio.write_transform(from_origin(*origin, res, res))


def _row(table, level, name=None):
    rows = table[(table.level == level) & ((table.name == name) if name else True)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


# --------------------------------------------------------------------------- pixel scores


def test_hand_counts_and_invalid_pixels():
    pred = np.array([[1, 1, 0, 0], [1, 0, 255, 1]], np.uint8)
    ref = np.array([[1, 0, 1, 0], [1, 255, 1, 1]], np.uint8)
    valid = np.array([[True, True, True, True], [True, True, True, False]])
    # counted: (0,0) tp, (0,1) fp, (0,2) fn, (0,3) tn, (1,0) tp; (1,1) unlabelled,
    # (1,2) no prediction, (1,3) invalid
    row = _row(evaluate(pred, ref, valid=valid), "overall")
    assert (row.tp, row.fp, row.fn, row.tn, row.n_pixels) == (2, 1, 1, 1, 5)
    assert row.iou == pytest.approx(2 / 4)
    assert row.precision == pytest.approx(2 / 3) and row.recall == pytest.approx(2 / 3)
    assert row.f1 == pytest.approx(2 / 3) and row.accuracy == pytest.approx(3 / 5)
    assert row.area_deviation == pytest.approx(0.0)
    # the prediction Dataset's own `valid` does the same as valid=
    ds = xr.Dataset({"glacier_mask": _da(pred), "valid": _da(valid)})
    assert _row(evaluate(ds, _da(ref)), "overall").n_pixels == 5


def test_pooled_not_mean_of_tiles():
    big = np.zeros((20, 20), np.uint8)
    big[:10] = 1  # 200 glacier pixels, predicted perfectly: IoU 1
    small_ref = np.zeros((20, 20), np.uint8)
    small_ref[0, :10] = 1  # 10 glacier pixels, all missed: IoU 0
    items = [
        (big, big, {"tile": "a", "region": "ALP"}),
        (np.zeros_like(small_ref), small_ref, {"tile": "b", "region": "ALP"}),
    ]
    t = evaluate(items)
    tiles = t[t.level == "tile"]
    assert tiles.iou.tolist() == [1.0, 0.0]  # per-tile mean would be 0.5
    pooled = 200 / 210
    assert _row(t, "region", "ALP").iou == pytest.approx(pooled)
    assert _row(t, "overall").iou == pytest.approx(pooled)
    assert tiles.iou.mean() != pytest.approx(pooled)


def test_region_mean_std_and_subregions():
    ref = np.array([[1, 1, 1, 1]], np.uint8)
    preds = {  # IoU 0.5, 1.0, 0.75
        "ALP": np.array([[1, 1, 0, 0]], np.uint8),
        "GR": ref,
        "HMA": np.array([[1, 1, 1, 0]], np.uint8),
    }
    items = {f"{r}-0": (p, ref, {"region": r, "subregion": f"{r}-s"}) for r, p in preds.items()}
    items["HMA-1"] = (ref, ref, {"region": "HMA", "subregion": "HMA-t"})  # HMA pooled: 7/8
    t = evaluate(items)
    assert t.level.tolist() == ["tile"] * 4 + ["subregion"] * 4 + ["region"] * 3 + [
        "mean",
        "std",
        "overall",
    ]
    assert t[t.level == "tile"].name.tolist() == ["ALP-0", "GR-0", "HMA-0", "HMA-1"]
    assert _row(t, "subregion", "HMA-s").iou == pytest.approx(0.75)
    assert _row(t, "subregion", "HMA-t").region == "HMA"
    ious = np.array([0.5, 1.0, 7 / 8])
    np.testing.assert_allclose(t[t.level == "region"].iou, ious)
    assert _row(t, "mean").iou == pytest.approx(ious.mean())
    assert _row(t, "std").iou == pytest.approx(ious.std())
    t1 = evaluate(items, ddof=1, levels=("region", "std"))
    assert t1.level.tolist() == ["region"] * 3 + ["std"]
    assert _row(t1, "std").iou == pytest.approx(ious.std(ddof=1))
    assert _row(t, "overall").iou == pytest.approx(13 / 16)


def test_reference_outlines_scene_and_attrs():
    scene = synthetic_scene(height=48, width=40, seed=2, groups=["dem"])
    scene.attrs.update(region="ALP", subregion="ALP-x", tile="s1")
    ref = scene["reference_mask"]
    pred = xr.Dataset({"glacier_mask": ref.copy(), "valid": scene["valid"]})
    outlines = to_outlines(ref)
    row = _row(evaluate(pred, outlines), "overall")
    assert row.iou == 1.0 and row.n_pixels == int(scene["valid"].sum())
    # a scene as reference: its reference_mask, valid and attrs
    t = evaluate(pred, scene)
    assert _row(t, "region", "ALP").iou == 1.0 and _row(t, "tile")["name"] == "s1"
    assert _row(t, "tile").subregion == "ALP-x"
    # outlines in another CRS land on the same pixels (almost)
    moved = evaluate(pred, outlines.to_crs("EPSG:4326"))
    assert _row(moved, "overall").iou > 0.97


def test_ece_column_and_reliability():
    ref = np.array([[1, 1, 0, 0]], np.uint8)
    pred = xr.Dataset(
        {
            "glacier_mask": _da(np.array([[1, 0, 0, 0]], np.uint8)),
            "confidence": _da(np.array([[0.9, 0.9, 0.3, 0.3]], np.float32)),
        }
    )
    # bin 90: 0.9 with 1 of 2 right; bin 30: 0.3 with 2 of 2 right -> (2*0.4 + 2*0.7) / 4
    row = _row(evaluate(pred, _da(ref)), "overall")
    assert row.ece == pytest.approx(0.55, abs=1e-6)
    table, ece = reliability([(pred, _da(ref)), (pred, _da(ref))])
    assert ece == pytest.approx(0.55, abs=1e-6) and table["count"].sum() == 8
    assert "ece" not in evaluate(pred, _da(ref), bins=None).columns
    assert np.isnan(_row(evaluate(ref, ref), "overall").ece)  # no confidence


def test_errors():
    pred = _da(np.ones((4, 4), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        evaluate(pred, np.ones((3, 4), np.uint8))
    with pytest.raises(ValueError, match="another grid"):
        evaluate(pred, _da(np.ones((4, 4), np.uint8), origin=(600100.0, 5200000.0)))
    with pytest.raises(KeyError, match="glacier_mask"):
        evaluate(xr.Dataset({"x": pred}), pred)
    with pytest.raises(ValueError, match="georeferenced"):
        evaluate(np.ones((4, 4)), gpd.GeoSeries([shapely.box(0, 0, 1, 1)], crs=UTM))
    with pytest.raises(TypeError, match="leave reference=None"):
        evaluate([(pred, pred)], pred)
    with pytest.raises(TypeError, match="unknown metadata"):
        evaluate([(pred, pred, {"regoin": "ALP"})])
    with pytest.raises(ValueError, match="unknown level"):
        Evaluator().table(levels=("tiles",))


def test_evaluate_benchmark_streams_tiles(benchmark_dir):
    from glaviz.data.benchmark import open_benchmark

    calls = []

    def stand_in(model, scene, *, flip=0):
        """Predict the reference, wrong on the first `flip` rows; nodata where invalid."""
        calls.append((model, scene.attrs["tile"]))
        mask = scene["reference_mask"].values.copy()
        mask[mask == 255] = 0
        mask[:flip] = 1 - mask[:flip]
        mask[~scene["valid"].values] = 255
        return xr.Dataset({"glacier_mask": scene["reference_mask"].copy(data=mask)})

    with open_benchmark(benchmark_dir / "*_train_*.hdf5") as bs:
        t = evaluate_benchmark(
            "model", bs, predict_fn=stand_in, predict_kwargs={"flip": 5}, progress=False
        )
        expected = evaluate(
            [(stand_in("model", s, flip=5), s) for s in (tile.to_scene() for tile in bs)]
        )
    assert [c[0] for c in calls] == ["model"] * 6
    assert t[t.level == "region"].name.tolist() == ["ALP", "HMA"]
    assert t[t.level == "tile"].name.tolist() == ["ALP-0-0", "ALP-0-1", "HMA-1-0"]
    assert t[t.level == "subregion"].name.tolist() == ["ALP-west", "ALP-east", "HMA-karakoram"]
    cols = ["tp", "fp", "fn", "tn", "iou"]
    np.testing.assert_allclose(
        t[t.level == "region"][cols].to_numpy(float),
        expected[expected.level == "region"][cols].to_numpy(float),
    )
    reg = t[t.level == "region"].iou
    assert 0.8 < reg.min() < 1.0
    assert _row(t, "mean").iou == pytest.approx(reg.mean())


# --------------------------------------------------------------------------- outlines


def _gdf(geoms, crs=UTM, **cols):
    return gpd.GeoDataFrame(cols, geometry=list(geoms), crs=crs)


def test_boundary_distances_and_nearest_zones():
    d = boundary_distances(shapely.box(0, 0, 10, 10), shapely.box(0, 0, 10, 10), spacing=1.0)
    assert d == {"mean": 0.0, "median": 0.0, "p95": 0.0, "max": 0.0}
    empty = boundary_distances(shapely.Polygon(), shapely.box(0, 0, 1, 1))
    assert all(np.isnan(v) for v in empty.values())
    # pixel-like outlines (collinear, cocircular points) side by side and one apart
    geoms = [shapely.box(0, 0, 30, 30), shapely.box(30, 0, 60, 30), shapely.box(0, 60, 90, 90)]
    zones = nearest_zones(geoms, spacing=3.0, extent=(-50, -50, 150, 150))
    assert all(z.contains(g.buffer(-0.5)) for z, g in zip(zones, geoms))
    overlap = sum(a.intersection(b).area for i, a in enumerate(zones) for b in zones[i + 1 :])
    assert overlap < 1e-6
    frame = shapely.box(-50, -50, 150, 150)
    assert shapely.union_all(zones).contains(frame)
    assert zones[0].contains(shapely.Point(10, 40)) and zones[2].contains(shapely.Point(10, 50))
    with pytest.raises(ValueError, match="spacing"):
        boundary_distances(geoms[0], geoms[1], spacing=0)


def test_shifted_square():
    ref = _gdf([shapely.box(0, 0, 100, 100)], glacier_id=["G1"])
    pred = _gdf([shapely.box(10, 0, 110, 100)])
    r = compare_outlines(pred, ref).loc["G1"]
    assert r.area_ref_km2 == pytest.approx(0.01) and r.area_pred_km2 == pytest.approx(0.01)
    assert r.area_deviation_pct == pytest.approx(0.0)
    assert r.iou == pytest.approx(90 / 110)
    for d in ("ref_to_pred", "pred_to_ref"):
        assert r[f"{d}_max_m"] == pytest.approx(10.0)
        assert r[f"{d}_mean_m"] == pytest.approx(5.0)
        assert r[f"{d}_median_m"] == pytest.approx(5.0)
        assert r[f"{d}_p95_m"] == pytest.approx(10.0)
    assert r.hausdorff_m == pytest.approx(10.0) and r.n_matched == 1
    assert bool(r.within_uncertainty)


def test_known_areas_hole_and_geographic_input():
    hole = shapely.box(0, 0, 100, 100).difference(shapely.box(40, 40, 60, 60))
    ref = _gdf([hole, shapely.box(300, 0, 400, 100)], glacier_id=["holed", "big"])
    pred = _gdf([shapely.box(0, 0, 100, 100), shapely.box(300, 0, 400, 200)])
    t = compare_outlines(pred, ref)
    h = t.loc["holed"]
    assert h.area_ref_km2 == pytest.approx(0.0096)
    assert h.area_deviation_pct == pytest.approx(100 * 400 / 9600)
    assert h.pred_to_ref_max_m == pytest.approx(0.0)  # the outer edge is right
    assert h.ref_to_pred_max_m == pytest.approx(40.0)  # the nunatak's edge: 40 m from ice edge
    assert h.ref_to_pred_mean_m == pytest.approx(80 * 40 / 480)
    assert h.ref_to_pred_median_m == pytest.approx(0.0)
    b = t.loc["big"]
    assert b.area_pred_km2 == pytest.approx(0.02) and b.area_deviation_pct == pytest.approx(100)
    assert b.hausdorff_m == pytest.approx(100.0) and not b.within_uncertainty
    # the same in geographic coordinates: measured in the local UTM zone, about the same
    t = compare_outlines(pred.translate(5e5, 5e6), ref.translate(5e5, 5e6))  # mid-zone
    geo = compare_outlines(
        pred.translate(5e5, 5e6).to_crs("EPSG:4326"), ref.translate(5e5, 5e6).to_crs("EPSG:4326")
    )
    assert geo.attrs["crs"] == "EPSG:32632"
    np.testing.assert_allclose(geo.area_deviation_pct, t.area_deviation_pct, atol=0.01)
    np.testing.assert_allclose(geo.hausdorff_m, t.hausdorff_m, atol=0.05)


def test_adjacent_glaciers_share_one_blob_missed_and_false_detection():
    ref = _gdf(
        [shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100), shapely.box(500, 0, 600, 50)],
        glacier_id=["west", "east", "missed"],
    )
    blob = shapely.box(0, 0, 200, 100)  # one predicted ice body over west and east
    pred = _gdf([blob, shapely.box(800, 0, 900, 100)])  # plus a false detection
    t = compare_outlines(pred, ref)
    for g in ("west", "east"):
        assert t.loc[g, "n_matched"] == 1
        assert t.loc[g, "area_pred_km2"] == pytest.approx(0.01, rel=1e-6)
        assert t.loc[g, "hausdorff_m"] == pytest.approx(0.0, abs=1e-6)
    m = t.loc["missed"]
    assert m.n_matched == 0 and m.area_pred_km2 == 0 and m.area_deviation_pct == -100
    assert np.isnan(m.hausdorff_m)
    assert t.attrs["n_unmatched"] == 1 and t.attrs["unmatched_area_km2"] == pytest.approx(0.01)
    # predicted ice is never counted twice
    assert t.area_pred_km2.sum() == pytest.approx(blob.area / 1e6)


def test_debris_uncertainty_and_summary():
    boxes = [shapely.box(i * 200, 0, i * 200 + 100, 100) for i in range(4)]
    ref = _gdf(boxes, glacier_id=list("abcd"), debris=[False, False, True, True])
    grow = [1.03, 1.10, 1.20, 1.40]  # +3 %, +10 %, +20 %, +40 % area (taller boxes)
    pred = _gdf([shapely.box(i * 200, 0, i * 200 + 100, 100 * g) for i, g in enumerate(grow)])
    t = compare_outlines(pred, ref, debris_column="debris")
    np.testing.assert_allclose(t.area_deviation_pct, [3, 10, 20, 40], atol=1e-6)
    assert t.uncertainty_pct.tolist() == pytest.approx([5, 5, 30, 30])
    assert t.within_uncertainty.tolist() == [True, False, True, False]
    s = summarise_against_experts(t)
    assert s.index.tolist() == ["clean ice", "debris", "all"]
    assert s.n_within.tolist() == [1, 1, 2] and s.n_glaciers.tolist() == [2, 2, 4]
    assert s.loc["all", "share_within"] == 0.5
    assert s.loc["all", "area_deviation_pct"] == pytest.approx(18.25)
    assert s.loc["debris", "median_hausdorff_m"] == pytest.approx(30.0)
    strict = summarise_against_experts(t, clean_ice_uncertainty=0.02, debris_uncertainty=0.5)
    assert strict.n_within.tolist() == [0, 2, 2]
    assert summarise_against_experts(t, min_area_km2=1.0).loc["all", "n_glaciers"] == 0


def test_compare_prediction_dataset_and_errors():
    m = np.zeros((20, 20), np.uint8)
    m[5:15, 5:15] = 1
    ref = to_outlines(_da(m))
    t = compare_outlines(xr.Dataset({"glacier_mask": _da(m)}), ref)
    assert t.iloc[0].area_deviation_pct == 0 and t.iloc[0].hausdorff_m == 0
    with pytest.raises(ValueError, match="no CRS"):
        compare_outlines(ref.set_crs(None, allow_override=True), ref)
    with pytest.raises(ValueError, match="fractions"):
        compare_outlines(ref, ref.assign(debris=[2.0]), debris_column="debris")
    with pytest.raises(KeyError, match="debris_column"):
        compare_outlines(ref, ref, debris_column="nope")


def test_evaluate_benchmark_with_the_real_predict(benchmark_dir):
    """The default path: glaviz.predict on each streamed tile, pooled per region."""
    import torch

    from glaviz.data.benchmark import open_benchmark
    from glaviz.inference import predict
    from glaviz.models.glavitu import GlaViTU

    torch.manual_seed(0)
    model = GlaViTU.small(input_channels={"optical": 6, "dem": 2}, tile_size=64).eval()
    with open_benchmark(benchmark_dir / "*_val_*.hdf5") as bs:
        t = evaluate_benchmark(model, bs, predict_kwargs={"stride": 64}, progress=False)
        scenes = [tile.to_scene() for tile in bs]
    n_valid = sum(int(s["valid"].sum()) for s in scenes)
    # the same model through glaviz.predict tile by tile, scored by evaluate
    expected = evaluate([(predict(model, s, stride=64), s) for s in scenes])
    overall = _row(t, "overall")
    assert overall.tp + overall.fp + overall.fn + overall.tn <= n_valid
    assert overall.n_tiles == len(t[t.level == "tile"]) == len(scenes) >= 1
    cols = ["tp", "fp", "fn", "tn"]
    assert [getattr(overall, c) for c in cols] == [
        getattr(_row(expected, "overall"), c) for c in cols
    ]


def test_outlines_that_miss_the_scene_are_warned_about_or_refused():
    from glaviz.errors import GridMismatchError, InputWarning

    pred = _da(np.ones((10, 10), np.uint8))  # 600000..600100, 5199900..5200000
    far = gpd.GeoSeries([shapely.box(700000, 5100000, 700500, 5100500)], crs=UTM)
    with pytest.warns(InputWarning, match=r"1 reference outline\(s\) do not overlap the "
                      r"prediction's grid .*EPSG:32632.*another region"):  # fmt: skip
        table = evaluate(pred, far)
    assert _row(table, "overall").iou == 0
    with pytest.raises(GridMismatchError, match="do not overlap"):
        evaluate(pred, far, strict=True)
    with pytest.raises(ValueError, match="do not overlap"):  # still a ValueError
        evaluate([(pred, far)], strict=True)
    tiny = gpd.GeoSeries([shapely.box(600001, 5199991, 600004, 5199994)], crs=UTM)
    with pytest.warns(InputWarning, match="cover no pixel centre"):
        evaluate(pred, tiny)
    import warnings

    with warnings.catch_warnings():  # outlines on the grid: not a word
        warnings.simplefilter("error", InputWarning)
        evaluate(pred, gpd.GeoSeries([shapely.box(600000, 5199950, 600050, 5200000)], crs=UTM))
