"""Tests of glaviz.vector: polygonise masks, areas, confidence bands, atomic export."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
import xarray as xr
from pyproj import Geod
from rasterio.transform import from_origin
from scipy import ndimage

from glaviz.data import rasterize_outlines, synthetic_scene
from glaviz.vector import area_km2, confidence_bands, export_outlines, to_outlines


def _grid(data, *, crs="EPSG:32632", origin=(600000.0, 5200000.0), res=10.0, name="mask"):
    """A georeferenced (y, x) DataArray."""
    data = np.asarray(data)
    h, w = data.shape
    coords = {
        "y": origin[1] - res * (np.arange(h) + 0.5),
        "x": origin[0] + res * (np.arange(w) + 0.5),
    }
    da = xr.DataArray(data, coords=coords, dims=("y", "x"), name=name)
    return da.rio.write_crs(crs).rio.write_transform(from_origin(*origin, res, res))


@pytest.fixture(scope="module")
def scene():
    return synthetic_scene(height=96, width=80, seed=4, groups=["dem"])


@pytest.mark.parametrize("connectivity", [4, 8])
def test_round_trip_synthetic_reference(scene, connectivity):
    ref = scene["reference_mask"]
    gdf = to_outlines(ref, connectivity=connectivity)
    assert gdf.crs == scene.rio.crs and len(gdf) > 1
    assert gdf.geometry.is_valid.all()
    back = rasterize_outlines(gdf, like=scene)
    np.testing.assert_array_equal(back.values, ref.values)
    # area equals the pixel count (30 m pixels in a projected CRS)
    assert gdf["area_km2"].sum() == pytest.approx(int(ref.sum()) * 900 / 1e6, rel=1e-12)
    assert gdf["area_km2"].is_monotonic_decreasing


def test_area_per_polygon_is_its_pixel_count(scene):
    ref = scene["reference_mask"].values
    labels, n = ndimage.label(ref)  # 4-connected, as to_outlines' default
    sizes = np.sort(np.bincount(labels.ravel())[1:])[::-1]
    gdf = to_outlines(scene["reference_mask"])
    assert len(gdf) == n
    np.testing.assert_allclose(gdf["area_km2"].to_numpy(), sizes * 900 / 1e6, rtol=1e-12)


def test_hole_is_kept():
    m = np.zeros((12, 12), np.uint8)
    m[2:10, 2:10] = 1
    m[5:7, 4:8] = 0  # a 2 x 4 nunatak
    gdf = to_outlines(_grid(m))
    assert len(gdf) == 1
    poly = gdf.geometry[0]
    assert poly.geom_type == "Polygon" and len(poly.interiors) == 1
    assert shapely.Polygon(poly.interiors[0]).area == pytest.approx(8 * 100)
    assert gdf["area_km2"][0] == pytest.approx((64 - 8) * 100 / 1e6)
    back = rasterize_outlines(gdf, like=_grid(m))
    np.testing.assert_array_equal(back.values, m)


def test_geographic_crs_area_is_true_area():
    m = np.zeros((40, 50), np.uint8)
    m[5:35, 10:45] = 1
    m[15:20, 20:25] = 0
    da = _grid(m, crs="EPSG:4326", origin=(86.9, 28.1), res=0.001)
    gdf = to_outlines(da)
    assert gdf.crs.is_geographic
    geod_area = abs(Geod(ellps="WGS84").geometry_area_perimeter(gdf.geometry[0])[0]) / 1e6
    assert gdf["area_km2"][0] == pytest.approx(geod_area, rel=1e-4)
    # and about (35 x 30 - 25) pixels of ~ 98 m x 111 m, nothing like square degrees
    assert 0.9 < gdf["area_km2"][0] / (1025 * 0.0979 * 0.1109) < 1.1
    # an explicit equal-area CRS agrees
    assert area_km2(gdf, crs="EPSG:6933")[0] == pytest.approx(geod_area, rel=1e-3)


def test_projected_crs_in_feet_converts_units():
    sq = gpd.GeoSeries([shapely.box(0, 0, 1000, 1000)], crs="EPSG:2229")  # US survey feet
    assert area_km2(sq)[0] == pytest.approx((1000 * 1200 / 3937) ** 2 / 1e6, rel=1e-9)


def test_min_area_and_simplify(scene):
    ref = scene["reference_mask"]
    full = to_outlines(ref)
    big = to_outlines(ref, min_area=0.05)
    assert (big["area_km2"] >= 0.05).all()
    assert len(big) == int((full["area_km2"] >= 0.05).sum())
    simple = to_outlines(ref, simplify=30.0)
    assert simple.geometry.is_valid.all() and len(simple) == len(full)
    assert shapely.get_num_coordinates(simple.geometry.values).sum() < (
        shapely.get_num_coordinates(full.geometry.values).sum()
    )
    assert simple["area_km2"].sum() == pytest.approx(full["area_km2"].sum(), rel=0.05)
    holes = shapely.get_num_interior_rings(full.geometry.values).sum()
    assert shapely.get_num_interior_rings(simple.geometry.values).sum() == holes


def test_prediction_dataset_nodata_and_valid():
    mask = np.ones((6, 8), np.uint8)
    mask[:, 6:] = 255  # nodata is never glacier
    valid = np.ones((6, 8), bool)
    valid[:3, :2] = False
    pred = xr.Dataset({"glacier_mask": _grid(mask), "valid": _grid(valid)})
    gdf = to_outlines(pred)
    assert gdf["area_km2"].sum() == pytest.approx((36 - 6) * 100 / 1e6)
    assert to_outlines(pred, value=0).empty
    empty = to_outlines(_grid(np.zeros((4, 4), np.uint8)))
    assert empty.empty and list(empty.columns) == ["area_km2", "geometry"]
    assert empty.crs.to_epsg() == 32632


def test_errors():
    with pytest.raises(ValueError, match="no CRS"):
        to_outlines(xr.DataArray(np.ones((3, 3)), dims=("y", "x")))
    with pytest.raises(ValueError, match=r"2-D with dims \(y, x\)"):
        to_outlines(_grid(np.ones((3, 3))).expand_dims(band=2))
    with pytest.raises(KeyError, match="glacier_mask"):
        to_outlines(xr.Dataset({"other": _grid(np.ones((3, 3)))}))
    with pytest.raises(ValueError, match="connectivity"):
        to_outlines(_grid(np.ones((3, 3))), connectivity=6)
    with pytest.raises(TypeError, match="DataArray"):
        to_outlines(np.ones((3, 3)))


def test_confidence_bands():
    conf = np.ones((10, 10), np.float32)
    conf[2:4, 2:6] = 0.5  # 8 px
    conf[7, 7] = 0.949  # 1 px, just below the threshold
    conf[0, 9] = 0.95  # at the threshold: not a band
    conf[9, 0] = np.nan  # no data: not a band
    valid = np.ones((10, 10), bool)
    valid[2, 2] = False
    pred = xr.Dataset({"confidence": _grid(conf), "valid": _grid(valid)})
    bands = confidence_bands(pred)
    assert bands.attrs["threshold"] == 0.95
    assert sorted((bands["area_km2"] * 1e6 / 100).round().astype(int)) == [1, 7]
    assert len(confidence_bands(pred, 0.5)) == 0
    assert len(confidence_bands(pred["confidence"], 0.99, min_area=0.0005)) == 1


@pytest.mark.parametrize("name", ["out.gpkg", "out.geojson", "out.shp"])
def test_export_formats_round_trip(scene, tmp_path, name):
    gdf = to_outlines(scene["reference_mask"])
    path = export_outlines(gdf, tmp_path / name)
    back = gpd.read_file(path)
    assert back.crs == gdf.crs and len(back) == len(gdf)
    np.testing.assert_allclose(back["area_km2"], gdf["area_km2"])
    assert shapely.equals(back.geometry.values, gdf.geometry.values).all()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_outlines(gdf, tmp_path / name)
    export_outlines(gdf.iloc[:2], tmp_path / name, overwrite=True)
    assert len(gpd.read_file(path)) == 2


def test_export_shapefile_parts_and_errors(scene, tmp_path):
    gdf = to_outlines(scene["reference_mask"]).iloc[:3]
    (tmp_path / "g.qix").write_bytes(b"stale index")
    with pytest.raises(FileExistsError, match="g.qix"):
        export_outlines(gdf, tmp_path / "g.shp")
    export_outlines(gdf, tmp_path / "g.shp", overwrite=True)
    parts = sorted(p.suffix for p in tmp_path.iterdir())
    assert {".shp", ".shx", ".dbf", ".prj"} <= set(parts) and ".qix" not in parts
    with pytest.raises(ValueError, match="extension"):
        export_outlines(gdf, tmp_path / "g.kml")
    with pytest.raises(ValueError, match="no CRS"):
        export_outlines(gdf.set_crs(None, allow_override=True), tmp_path / "n.gpkg")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_outlines(gdf, tmp_path / "missing" / "g.gpkg")
    series = export_outlines(gdf.geometry, tmp_path / "s.geojson")
    assert len(gpd.read_file(series)) == 3
