"""Tests of glaviz.data.synthetic_scene."""

from __future__ import annotations

import numpy as np
import pytest

from glaviz.catalog import GROUPS
from glaviz.data import scale, synthetic_scene


def test_seeded_and_complete():
    a = synthetic_scene(height=64, width=80, seed=7)
    b = synthetic_scene(height=64, width=80, seed=7)
    c = synthetic_scene(height=64, width=80, seed=8)
    assert all(g in a for g in GROUPS)
    for g in GROUPS:
        np.testing.assert_array_equal(a[g].values, b[g].values)
    assert not np.array_equal(a["reference_mask"].values, c["reference_mask"].values)
    assert a.rio.crs.to_epsg() == 32645 and a.rio.transform().a == 30.0
    assert a["optical"].shape == (6, 64, 80) and a["thermal"].shape == (1, 64, 80)


def test_plausible_glaciers_debris_and_holes():
    ds = synthetic_scene(height=128, width=128, seed=1, glacier_fraction=0.35, debris_fraction=0.3)
    glacier = ds["reference_mask"].values.astype(bool)
    debris = ds["debris"].values
    assert 0.25 < glacier.mean() < 0.45
    assert debris.any() and not (debris & ~glacier).any()
    elev = ds["dem"].sel(dem_band="elevation").values
    assert np.median(elev[glacier]) > np.median(elev[~glacier])
    assert np.median(elev[debris]) < np.median(elev[glacier & ~debris])
    opt = ds["optical"]
    green = opt.sel(optical_band="green").values
    swir = opt.sel(optical_band="swir1").values
    ndsi = (green - swir) / (green + swir)
    clean = glacier & ~debris & ds["valid"].values
    assert np.nanmedian(ndsi[clean]) > 0.6  # clean ice is snow-like
    assert np.nanmedian(ndsi[debris & ds["valid"].values]) < 0.1  # debris looks like rock
    coh = ds["in_sar"].sel(in_sar_band="coherence_asc").values
    assert np.median(coh[debris]) < np.median(coh[~glacier]) - 0.2  # but decorrelates
    valid = ds["valid"].values
    assert 0.8 < valid.mean() < 1.0
    assert np.isnan(opt.values[:, ~valid]).all()


def test_subset_of_groups_and_scaling_range():
    ds = synthetic_scene(height=32, width=32, groups=["optical", "dem", "co_pol_sar"], seed=0)
    assert [g for g in GROUPS if g in ds] == ["optical", "dem", "co_pol_sar"]
    s = scale(ds)
    for g in ("optical", "dem", "co_pol_sar"):
        assert float(s[g].min()) >= 0.0 and float(s[g].max()) <= 1.05
    with pytest.raises(ValueError, match="unknown input group"):
        synthetic_scene(groups=["lidar"])
