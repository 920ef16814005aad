"""Tests of glaviz.calibration: confidence, reliability bins, ECE and the calibration map."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from glaviz.calibration import (
    CalibrationMap,
    binary_confidence,
    ece_from_table,
    expected_calibration_error,
    fit_calibration,
    reliability_table,
)


def test_binary_confidence_values_and_types():
    p = np.array([0.0, 0.5, 1.0, 0.25, 0.75, np.nan])
    h = -(0.25 * np.log2(0.25) + 0.75 * np.log2(0.75))
    np.testing.assert_allclose(binary_confidence(p), [1, 0, 1, 1 - h, 1 - h, np.nan])
    p32 = np.linspace(0, 1, 11, dtype=np.float32)
    out = binary_confidence(p32)
    assert out.dtype == np.float32 and np.isfinite(out).all() and out.min() >= 0
    assert binary_confidence(np.float32([0.5, 0.5000001])).min() == 0  # never -6e-8
    assert reliability_table([-1e-8, 1 + 1e-8], [1, 1], bins=2)["count"].tolist() == [1, 1]
    arr = xr.DataArray(da.from_array(p32, chunks=4), dims="x", attrs={"units": "1"})
    lazy = binary_confidence(arr)
    assert isinstance(lazy.data, da.Array)
    np.testing.assert_allclose(lazy.values, out)
    assert binary_confidence([0, 1]).tolist() == [1.0, 1.0]


def test_reliability_table_by_hand():
    conf = [0.0, 0.05, 0.1, 0.15, 0.99, 1.0, np.nan]
    correct = [True, False, True, True, False, True, True]
    t = reliability_table(conf, correct, bins=10)
    assert len(t) == 10 and t.index.name == "bin"
    assert t.loc[0, "count"] == 2 and t.loc[0, "accuracy"] == 0.5
    assert t.loc[0, "confidence"] == pytest.approx(0.025)
    assert t.loc[1, "count"] == 2 and t.loc[1, "accuracy"] == 1.0
    assert t.loc[9, "count"] == 2  # 1.0 falls in the last bin
    assert t.loc[9, "lower"] == pytest.approx(0.9) and t.loc[9, "upper"] == 1.0
    assert np.isnan(t.loc[5, "accuracy"]) and t.loc[5, "count"] == 0
    w = reliability_table(conf, correct, bins=10, weights=[1, 3, 1, 1, 1, 1, 1])
    assert w.loc[0, "count"] == 4 and w.loc[0, "accuracy"] == 0.25
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        reliability_table([1.5], [True])
    with pytest.raises(ValueError, match="one size"):
        reliability_table([0.5, 0.5], [True])


def test_ece_by_hand():
    # bins of 0.25: {0.1 right, 0.2 wrong} -> |0.5 - 0.15|; {0.6 right} -> 0.4; {0.9 right}
    # -> 0.1: (2 * 0.35 + 0.4 + 0.1) / 4 = 0.3
    ece = expected_calibration_error([0.1, 0.2, 0.6, 0.9], [1, 0, 1, 1], bins=4)
    assert ece == pytest.approx(0.3)
    assert ece_from_table(reliability_table([0.1, 0.2, 0.6, 0.9], [1, 0, 1, 1], bins=4)) == ece
    assert np.isnan(expected_calibration_error([np.nan], [True]))


def test_ece_of_a_perfectly_calibrated_sample_is_small():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0, 1, 1_000_000)
    correct = rng.uniform(0, 1, conf.size) < conf
    assert expected_calibration_error(conf, correct) < 0.005
    assert expected_calibration_error(conf, ~correct) > 0.3


def _overconfident(n, rng):
    """A classifier that reports sharpened probabilities: p_model = sigmoid(3 logit p_true)."""
    p_true = rng.uniform(0, 1, n)
    label = rng.uniform(0, 1, n) < p_true
    p_model = 1 / (1 + np.exp(-3 * np.log(p_true / (1 - p_true))))
    correct = (p_model >= 0.5) == label
    return binary_confidence(p_model), correct


def test_fit_calibration_fixes_overconfidence_on_held_out_data():
    rng = np.random.default_rng(1)
    conf, correct = _overconfident(300_000, rng)
    test_conf, test_correct = _overconfident(300_000, rng)
    before = expected_calibration_error(test_conf, test_correct)
    cal = fit_calibration(conf, correct)
    after = expected_calibration_error(cal(test_conf), test_correct)
    assert before > 0.1 and after < 0.02
    # the (0, 0) anchor costs a little in the lowest bins (accuracy there is 0.5, not 0)
    cal_half = fit_calibration(conf, correct, anchors=(0.5, 1.0))
    after_half = expected_calibration_error(cal_half(test_conf), test_correct)
    assert after_half < min(after, 0.01)
    assert cal_half(0.0) == 0.5 and cal_half.info["anchors"] == [0.5, 1.0]
    assert cal.info["ece_before"] == pytest.approx(expected_calibration_error(conf, correct))
    assert cal.info["ece_after"] < 0.02
    # monotone with exact anchors
    assert cal.confidence[0] == 0 and cal.confidence[-1] == 1
    assert cal(0.0) == 0.0 and cal(1.0) == 1.0
    assert np.all(np.diff(cal.confidence) > 0) and np.all(np.diff(cal.accuracy) >= 0)
    grid = np.linspace(0, 1, 5001)
    assert np.all(np.diff(cal(grid)) >= 0)


def test_fit_is_monotone_on_noisy_sparse_bins():
    rng = np.random.default_rng(2)
    conf = rng.uniform(0, 1, 300)
    correct = rng.uniform(0, 1, 300) < 0.5
    cal = fit_calibration(conf, correct, alpha=1e-3, gamma=50.0)
    assert np.all(np.diff(cal.accuracy) >= 0)
    assert cal.accuracy.min() >= 0 and cal.accuracy.max() <= 1
    with pytest.raises(ValueError, match="no pixel"):
        fit_calibration([np.nan], [True])
    with pytest.raises(ValueError, match="positive"):
        fit_calibration(conf, correct, alpha=0)


def test_map_round_trip_and_types():
    rng = np.random.default_rng(3)
    cal = fit_calibration(*_overconfident(20_000, rng), grid_size=201)
    data = json.loads(json.dumps(cal.to_dict(), allow_nan=False))
    assert {"confidence", "accuracy", "ece_before", "ece_after", "method"} <= set(data)
    back = CalibrationMap.from_dict(data)
    assert back == cal and back.info["bins"] == 100
    x = np.linspace(0, 1, 7, dtype=np.float32)
    y = cal(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, np.interp(x, data["confidence"], data["accuracy"]), rtol=1e-6)
    arr = xr.DataArray(da.from_array(x, chunks=3), dims="x", name="confidence")
    lazy = cal(arr)
    assert isinstance(lazy.data, da.Array) and lazy.name == "confidence"
    np.testing.assert_allclose(lazy.values, y)
    np.testing.assert_allclose(cal(da.from_array(x, chunks=3)).compute(), y)
    assert np.isnan(cal(np.array([np.nan]))[0])
    assert CalibrationMap.identity()(0.3) == pytest.approx(0.3)


def test_map_validation():
    with pytest.raises(ValueError, match="strictly increasing"):
        CalibrationMap([0.0, 0.0, 1.0], [0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="non-decreasing"):
        CalibrationMap([0.0, 0.5, 1.0], [0.0, 0.7, 0.6])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        CalibrationMap([0.0, 1.0], [0.0, 1.2])
    with pytest.raises(ValueError, match="'confidence' and 'accuracy'"):
        CalibrationMap.from_dict({"confidence": [0, 1]})
