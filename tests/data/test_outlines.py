"""Tests of glaviz.read_outlines / rasterize_outlines on RGI 5/6/7 samples and known shapes."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rioxarray
import shapely

from glaviz.data import fetch, rasterize_outlines, read_outlines, synthetic_scene


def test_everest_agrees_with_reference_mask(everest_scene, everest_files):
    outlines = read_outlines(everest_files["15_rgi60_glacier_outlines.gpkg"])
    assert outlines.crs.to_epsg() == 4326 and len(outlines) == 86
    mask = rasterize_outlines(outlines, like=everest_scene)
    ref = rioxarray.open_rasterio(everest_files["reference_rgi60_mask_on_landsat_grid.tif"])
    agreement = float((mask.values == ref.squeeze().values).mean())
    assert agreement >= 0.999
    assert mask.dtype == np.uint8 and mask.rio.crs == everest_scene.rio.crs
    assert 0.5 < float(mask.mean()) < 0.58


@pytest.mark.parametrize(
    ("dataset", "file", "first_id"),
    [
        ("oggm_hintereisferner", "hintereisferner_rgi6/Hintereisferner_RGI6.shp", "RGI60-11.00897"),
        ("oggm_hintereisferner", "hintereisferner_rgi7/rgi7g_hef.shp", "RGI2000-v7.0-G-11-"),
        ("oggm_oetztal", "oetztal/rgi_oetztal.shp", "RGI50-11."),
    ],
)
def test_rgi_versions_normalised_and_area_preserved(dataset, file, first_id):
    outlines = read_outlines(fetch(dataset, file))
    assert outlines["glacier_id"].iloc[0].startswith(first_id)
    utm = outlines.to_crs("EPSG:32632")
    xmin, ymin, xmax, ymax = utm.total_bounds
    res = 20.0
    ds = synthetic_scene(
        height=int((ymax - ymin) / res) + 4,
        width=int((xmax - xmin) / res) + 4,
        crs="EPSG:32632",
        resolution=res,
        origin=(xmin - 2 * res, ymax + 2 * res),
        groups=["dem"],
    )
    mask = rasterize_outlines(outlines, like=ds)
    area_km2 = float(mask.sum()) * res * res / 1e6
    assert area_km2 == pytest.approx(utm.area.sum() / 1e6, rel=0.02)


def test_known_square_with_hole():
    ds = synthetic_scene(height=50, width=50, seed=0, resolution=10.0, groups=["dem"])
    x0, y0 = float(ds.x[0]) - 5, float(ds.y[0]) + 5  # the grid's corner
    outer = shapely.box(x0 + 100, y0 - 400, x0 + 400, y0 - 100)  # 30 x 30 px
    hole = shapely.box(x0 + 200, y0 - 300, x0 + 300, y0 - 200)  # 10 x 10 px
    poly = gpd.GeoSeries([outer.difference(hole)], crs=ds.rio.crs)
    mask = rasterize_outlines(poly, like=ds).values
    assert mask.sum() == 900 - 100
    assert mask[25, 25] == 0 and mask[12, 12] == 1
    # in another CRS, the same polygon lands on the same pixels
    moved = rasterize_outlines(poly.to_crs("EPSG:4326"), like=ds).values
    assert (moved != mask).sum() <= 4


def test_outlines_without_crs():
    ds = synthetic_scene(height=8, width=8, groups=["dem"])
    with pytest.raises(ValueError, match=r"outlines have no CRS; set the one.*set_crs"):
        rasterize_outlines(gpd.GeoSeries([shapely.box(0, 0, 1, 1)]), like=ds)


# ---- wrong input caught or warned about (issue #14) ---------------------------------------


def test_lines_and_points_are_dropped_with_a_warning(tmp_path):
    from glaviz.errors import InputWarning

    ds = synthetic_scene(height=20, width=20, groups=["dem"])
    x0, y0 = float(ds.x[0]) - 15, float(ds.y[0]) + 15
    box = shapely.box(x0, y0 - 150, x0 + 150, y0)  # 5 x 5 pixels
    line = shapely.LineString([(x0, y0 - 450), (x0 + 600, y0 - 450)])
    point = shapely.Point(x0 + 500, y0 - 500)
    mixed = shapely.GeometryCollection([shapely.box(x0 + 300, y0 - 90, x0 + 390, y0), line])
    gdf = gpd.GeoDataFrame({"RGIID": ["a", "b", "c", "d"]}, geometry=[box, line, point, mixed],
                           crs=ds.rio.crs)  # fmt: skip
    with pytest.warns(InputWarning, match=r"dropped 2 of 4 geometries .*LineString.*Point"):
        mask = rasterize_outlines(gdf, like=ds)
    assert int(mask.sum()) == 25 + 9  # the box and the collection's polygon, no line pixels
    path = tmp_path / "mixed.gpkg"
    gdf.to_file(path)
    with pytest.warns(InputWarning, match=r"outlines '.*mixed\.gpkg': dropped 2 of 4"):
        read = read_outlines(path)
    assert list(read["glacier_id"]) == ["a", "d"]  # RGIID is recognised as RGIId
    assert set(read.geom_type) == {"Polygon"}


def test_id_columns_in_other_capitalisations(tmp_path):
    gdf = gpd.GeoDataFrame({"RGIID": ["RGI60-15.1"], "NAME": ["Khumbu"]},
                           geometry=[shapely.box(0, 0, 1, 1)], crs="EPSG:4326")  # fmt: skip
    gdf.to_file(tmp_path / "caps.gpkg")
    read = read_outlines(tmp_path / "caps.gpkg")
    assert read["glacier_id"].tolist() == ["RGI60-15.1"] and read["name"].tolist() == ["Khumbu"]


def test_rasterize_like_a_bare_array_says_what_to_pass():
    from glaviz.errors import InputTypeError

    box = gpd.GeoSeries([shapely.box(0, 0, 1, 1)], crs="EPSG:4326")
    with pytest.raises(InputTypeError, match=r"like= must be an xarray .* got ndarray"):
        rasterize_outlines(box, like=np.zeros((4, 4)))
    with pytest.raises(TypeError):
        rasterize_outlines(box, like=np.zeros((4, 4)))
