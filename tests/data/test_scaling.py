"""Tests of glaviz.scale: the fixed min-max table, NaN handling, CRS kept."""

from __future__ import annotations

import numpy as np
import pytest

from glaviz.catalog import load_catalog
from glaviz.data import scale, synthetic_scene


def test_min_max_values_from_table():
    ds = synthetic_scene(height=32, width=32, seed=0, nodata_holes=0)
    ds["dem"].loc[{"dem_band": "elevation"}] = -103.30
    ds["optical"].loc[{"optical_band": "nir"}] = 2.6781
    ds["thermal"][:] = 161.04
    out = scale(ds)
    np.testing.assert_allclose(out["dem"].sel(dem_band="elevation"), 0.0, atol=1e-6)
    np.testing.assert_allclose(out["optical"].sel(optical_band="nir"), 1.0, atol=1e-6)
    np.testing.assert_allclose(out["thermal"], 0.5, atol=1e-6)
    red = ds["optical"].sel(optical_band="red").values
    np.testing.assert_allclose(
        out["optical"].sel(optical_band="red"), (red + 0.0186) / (2.2303 + 0.0186), rtol=1e-5
    )
    assert all(out[g].dtype == np.float32 for g in ("optical", "dem", "in_sar"))
    assert out.rio.crs == ds.rio.crs and out.attrs["scaled"] == 1


def test_nan_becomes_zero_and_invalid():
    ds = synthetic_scene(height=48, width=48, seed=2, nodata_holes=3)
    holes = ~ds["valid"].values
    assert holes.any()
    ds["co_pol_sar"][0, 0, 0] = np.nan
    out = scale(ds)
    assert not bool(out["valid"][0, 0])
    assert float(out["co_pol_sar"][0, 0, 0]) == 0.0
    assert (out["optical"].values[:, holes] == 0).all()
    assert not out["valid"].values[holes].any()
    assert all(np.isfinite(out[g]).all() for g in ("optical", "dem", "co_pol_sar", "thermal"))


def test_subset_of_bands_uses_band_names(everest_scene):
    out = scale(everest_scene)
    table = load_catalog().groups["optical"]
    blue = everest_scene["optical"].sel(optical_band="blue").values
    lo, hi = table.band("blue").min, table.band("blue").max
    np.testing.assert_allclose(
        out["optical"].sel(optical_band="blue"), (blue - lo) / (hi - lo), rtol=1e-5
    )


def test_scaling_twice_and_unknown_band_are_errors():
    ds = synthetic_scene(height=16, width=16, seed=0)
    with pytest.raises(ValueError, match="already scaled"):
        scale(scale(ds))
    renamed = ds.assign_coords(optical_band=["b1", "green", "red", "nir", "swir1", "swir2"])
    with pytest.raises(KeyError, match=r"variable 'optical': bands \['b1'\]"):
        scale(renamed)
