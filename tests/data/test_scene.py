"""Tests of glaviz.open_scene on the real Everest sample and rasters written at run time."""

from __future__ import annotations

import json
import warnings

import dask.array as da
import numpy as np
import pytest
import rasterio
import rioxarray
from pyproj import Transformer
from rasterio.transform import from_origin
from rasters import EVEREST_NIR, EVEREST_RGB, write_raster
from scipy import ndimage

from glaviz.data import SceneError, group_array, open_scene, scale


def test_everest_scene_bands_values_and_grid(everest_scene, everest_files):
    ds = everest_scene
    assert list(ds["optical"]["optical_band"].values) == ["blue", "green", "red", "nir"]
    assert ds["optical"].dtype == np.float32
    assert isinstance(ds["optical"].data, da.Array)  # lazy
    with (
        rasterio.open(everest_files[EVEREST_RGB]) as rgb,
        rasterio.open(everest_files[EVEREST_NIR]) as nir,
    ):
        red, blue = rgb.read(1), rgb.read(3)
        assert ds.rio.crs == rgb.crs
        assert ds.rio.transform().almost_equals(rgb.transform)
        np.testing.assert_allclose(ds["optical"].sel(optical_band="red"), red / 255.0, rtol=1e-6)
        np.testing.assert_allclose(ds["optical"].sel(optical_band="blue"), blue / 255.0, rtol=1e-6)
        np.testing.assert_allclose(
            ds["optical"].sel(optical_band="nir"), nir.read(1) / 255.0, rtol=1e-6
        )
    assert ds["valid"].dtype == bool and bool(ds["valid"].all())
    assert json.loads(ds.attrs["sensors"]) == {"optical": "landsat7_display8"}
    assert group_array(ds, "optical").dims == ("band", "y", "x")


def _geographic_dem(path, lon0=86.80, lat0=28.10, n=(200, 240), res=0.0008):
    """A DEM in EPSG:4326 over part of the Everest scene: z linear in lon/lat."""
    h, w = n
    lat = lat0 - res * (np.arange(h) + 0.5)
    lon = lon0 + res * (np.arange(w) + 0.5)
    z = 5000 + 20000 * (lon[None, :] - lon0) - 30000 * (lat[:, None] - lat0)
    write_raster(
        path,
        z.astype(np.float32),
        crs="EPSG:4326",
        transform=from_origin(lon0, lat0, res, res),
        nodata=-9999.0,
    )
    return lambda lo, la: 5000 + 20000 * (lo - lon0) - 30000 * (la - lat0)


def test_dem_in_other_crs_is_warped_onto_optical_grid(tmp_path, everest_files):
    expected = _geographic_dem(tmp_path / "dem4326.tif")
    ds = open_scene(
        [everest_files[EVEREST_RGB], everest_files[EVEREST_NIR]],
        sensor="landsat7_display8",
        dem=tmp_path / "dem4326.tif",
    )
    dem = ds["dem"]
    assert list(dem["dem_band"].values) == ["elevation", "slope"]
    assert "EPSG:4326" in dem.attrs["warped_from"]
    assert ds.rio.crs.to_epsg() == 32645 and dem.shape[1:] == (655, 800)
    valid = ds["valid"].values
    assert 0.1 < valid.mean() < 0.9  # the DEM covers only part of the scene
    elev = dem.sel(dem_band="elevation").values
    assert not valid[~np.isfinite(elev)].any()  # outside the DEM: NaN and not valid
    assert (~valid).sum() - (~np.isfinite(elev)).sum() < 2 * sum(elev.shape)  # + a 1-px rim
    to_ll = Transformer.from_crs(32645, 4326, always_xy=True)
    ys, xs = np.nonzero(ndimage.binary_erosion(valid, iterations=2))  # away from the DEM's edge
    pick = np.linspace(0, len(ys) - 1, 50).astype(int)
    lon, lat = to_ll.transform(ds.x.values[xs[pick]], ds.y.values[ys[pick]])
    got = dem.sel(dem_band="elevation").values[ys[pick], xs[pick]]
    np.testing.assert_allclose(got, expected(np.array(lon), np.array(lat)), atol=0.5)
    slope = dem.sel(dem_band="slope").values[ys[pick], xs[pick]]
    assert np.nanstd(slope) < 2.0 and 5 < np.nanmean(slope) < 40  # a plane has one slope


def test_sentinel2_band_files_at_two_resolutions(tmp_path):
    rng = np.random.default_rng(0)
    files = {}
    for band, res in [("B02", 10), ("B03", 10), ("B04", 10), ("B08", 10), ("B11", 20), ("B12", 20)]:
        n = 64 if res == 10 else 32
        dn = np.full((n, n), 1000 + 500 * len(files), np.uint16)
        dn[0, 0] = 0  # nodata
        dn[5:9, 5:9] += rng.integers(0, 3, (4, 4)).astype(np.uint16)
        files[band] = write_raster(
            tmp_path / f"S2A_MSIL1C_20230101T000000_N0509_R000_T45RVL_{band}.tif",
            dn,
            crs="EPSG:32645",
            origin=(470000, 3100000),
            res=res,
        )
    ds = open_scene(files, sensor="sentinel2_l1c")
    opt = ds["optical"]
    assert opt.shape == (6, 64, 64)
    # baseline 05.09 (from the file names) >= 04.00: the 1000 offset is removed
    assert float(opt.sel(optical_band="blue")[30, 30]) == pytest.approx(0.0)
    assert float(opt.sel(optical_band="red")[30, 30]) == pytest.approx(0.1)
    assert float(opt.sel(optical_band="swir2")[30, 30]) == pytest.approx(0.25)
    assert "warped_from" in opt.attrs
    assert not bool(ds["valid"][0, 0])
    older = open_scene(files, sensor="sentinel2_l1c", processing_baseline="03.01")
    assert float(older["optical"].sel(optical_band="blue")[30, 30]) == pytest.approx(0.1)


def test_sentinel2_without_baseline_is_an_error(tmp_path):
    files = {
        b: write_raster(tmp_path / f"{b}.tif", np.full((8, 8), 2000, np.uint16))
        for b in ("B02", "B03", "B04", "B08", "B11", "B12")
    }
    with pytest.raises(ValueError, match="processing_baseline='04.00'"):
        open_scene(files, sensor="sentinel2_l1c")


def test_landsat8_toa_and_thermal_with_mtl(tmp_path):
    mtl = tmp_path / "LC08_MTL.txt"
    mtl.write_text("GROUP = IMAGE_ATTRIBUTES\n    SUN_ELEVATION = 30.0\nEND_GROUP\nEND\n")
    optical = write_raster(tmp_path / "oli.tif", np.full((6, 16, 16), 30000, np.uint16))
    thermal = write_raster(tmp_path / "b10.tif", np.full((16, 16), 25000, np.uint16))
    ds = open_scene(optical, sensor="landsat89_l1", thermal=thermal, metadata=mtl)
    refl = (30000 * 2e-5 - 0.1) / np.sin(np.radians(30.0))
    np.testing.assert_allclose(ds["optical"].values, refl, rtol=1e-5)
    radiance = 25000 * 3.342e-4 + 0.1
    bt = 1321.0789 / np.log(774.8853 / radiance + 1)
    np.testing.assert_allclose(ds["thermal"].values, bt, rtol=1e-5)
    with pytest.raises(ValueError, match="sun_elevation"):
        open_scene(optical, sensor="landsat89_l1")


def test_sar_groups_db_to_log10_and_coherence(tmp_path):
    co = write_raster(tmp_path / "vv.tif", np.full((2, 16, 16), -10.0, np.float32))
    cross = write_raster(tmp_path / "vh.tif", np.full((2, 16, 16), -20.0, np.float32))
    coh = write_raster(tmp_path / "coh.tif", np.full((2, 16, 16), 0.5, np.float32))
    ds = open_scene(co_pol_sar=co, cross_pol_sar=cross, in_sar=coh)
    np.testing.assert_allclose(ds["co_pol_sar"].values, np.log10(0.1 + 1e-6), rtol=1e-6)
    np.testing.assert_allclose(ds["cross_pol_sar"].values, np.log10(0.01 + 1e-6), rtol=1e-6)
    assert list(ds["in_sar"]["in_sar_band"].values) == ["coherence_asc", "coherence_desc"]
    lin = open_scene(
        co_pol_sar=tmp_path / "coh.tif", sensors={"co_pol_sar": "sentinel1_sigma0_linear"}
    )
    np.testing.assert_allclose(lin["co_pol_sar"].values, np.log10(0.5 + 1e-6), rtol=1e-6)


def test_in_memory_dataarrays(everest_scene):
    opt = everest_scene["optical"].rename({"optical_band": "band"}).load()
    ds = open_scene(opt.sel(band=["red", "green", "blue", "nir"]) * 255, sensor="landsat7_display8")
    np.testing.assert_allclose(ds["optical"].values, everest_scene["optical"].values, rtol=1e-5)


# ---- bad input --------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(SceneError, match=r"optical: file '.*nothere\.tif' does not exist"):
        open_scene(tmp_path / "nothere.tif", sensor="landsat7_display8")


def test_raster_without_crs(tmp_path):
    path = write_raster(tmp_path / "nocrs.tif", np.ones((4, 8, 8), np.uint8), crs=None)
    with pytest.raises(SceneError, match=r"nocrs\.tif' has no CRS; assign one"):
        open_scene(path, sensor="landsat7_display8")


def test_rasters_that_do_not_overlap(tmp_path, everest_files):
    far = write_raster(tmp_path / "far.tif", np.ones((8, 8), np.float32), crs="EPSG:32632")
    with pytest.raises(SceneError, match=r"dem: '.*far\.tif' does not overlap the scene grid"):
        open_scene(
            [everest_files[EVEREST_RGB], everest_files[EVEREST_NIR]],
            sensor="landsat7_display8",
            dem=far,
        )


def test_wrong_band_count_for_sensor(everest_files):
    with pytest.raises(SceneError, match=r"optical: the files hold 3 bands .* expects 4"):
        open_scene(everest_files[EVEREST_RGB], sensor="landsat7_display8")
    with pytest.raises(SceneError, match=r"missing \['B11', 'B12'\]"):
        open_scene(
            {b: everest_files[EVEREST_NIR] for b in ("B02", "B03", "B04", "B08")},
            sensor="sentinel2_l1c",
        )


def test_unknown_sensor(everest_files):
    with pytest.raises(KeyError, match=r"unknown sensor 'landsat5'.*landsat7_display8"):
        open_scene(everest_files[EVEREST_RGB], sensor="landsat5")


def test_all_nodata_scene(tmp_path):
    path = write_raster(
        tmp_path / "empty.tif", np.full((16, 16), -9999.0, np.float32), nodata=-9999.0
    )
    with pytest.raises(SceneError, match=r"no valid pixel.*empty\.tif"):
        open_scene(dem=path)


# ---- wrong input caught or warned about (issue #14) ---------------------------------------


def _dem_with_block(tmp_path, value=-9999.0, nodata=None, name="dem.tif"):
    z = np.linspace(3000, 3600, 32 * 32, dtype=np.float32).reshape(32, 32)
    z[:, :8] = value  # a block of fill values along the western edge
    return write_raster(tmp_path / name, z, nodata=nodata)


def test_undeclared_sentinel_nodata_is_warned_about_and_nodata_fixes_it(tmp_path):
    from glaviz.errors import InputWarning

    path = _dem_with_block(tmp_path)
    with pytest.warns(InputWarning, match=r"dem: '.*dem\.tif' declares no nodata.*-9999") as seen:
        ds = open_scene(dem=path)
    assert "nodata={'dem': -9999}" in str(seen[0].message)
    assert float(ds["dem"].sel(dem_band="slope").max()) > 80  # the cliff it warns about
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        fixed = open_scene(dem=path, nodata={"dem": -9999})
        tagged = open_scene(dem=_dem_with_block(tmp_path, nodata=-9999.0, name="tagged.tif"))
    for ds in (fixed, tagged):
        assert not ds["valid"][:, :8].any() and bool(ds["valid"][:, 9:].all())
        assert float(ds["dem"].sel(dem_band="slope").max()) < 45  # the plane only


def test_zero_border_of_optical_data_is_warned_about(tmp_path):
    from glaviz.errors import InputWarning

    rgb = np.full((3, 20, 24), 120, np.uint8)
    rgb[:, :3, :] = 0  # whole rows of 0 in every band: a fill border
    nir = np.full((20, 24), 90, np.uint8)
    nir[:3, :] = 0
    files = [write_raster(tmp_path / "x_RGB.tif", rgb), write_raster(tmp_path / "x_B4.tif", nir)]
    with pytest.warns(InputWarning, match=r"x_RGB\.tif' declares no nodata.*hold 0"):
        open_scene(files, sensor="landsat7_display8")


def test_gdal_scale_and_offset_tags_are_applied(tmp_path):
    raw = np.full((16, 16), 2000, np.int16)  # 2000 * 0.5 + 3000 = 4000 m
    path = write_raster(tmp_path / "dem_scaled.tif", raw)
    with rasterio.open(path, "r+") as dst:
        dst.scales, dst.offsets = (0.5,), (3000.0,)
    ds = open_scene(dem=path)
    np.testing.assert_allclose(ds["dem"].sel(dem_band="elevation").values, 4000.0)


def test_scale_tags_on_digital_numbers_the_sensor_converts_are_refused(tmp_path):
    files = {}
    for b in ("B02", "B03", "B04", "B08", "B11", "B12"):
        files[b] = write_raster(tmp_path / f"T45_{b}.tif", np.full((8, 8), 2000, np.uint16))
        with rasterio.open(files[b], "r+") as dst:
            dst.scales, dst.offsets = (1e-4,), (0.0,)
    with pytest.raises(SceneError, match=r"scale/offset tags .*sentinel2_l1c.*gdal_edit\.py"):
        open_scene(files, sensor="sentinel2_l1c", processing_baseline="04.00")


def test_digital_numbers_opened_as_display_product_are_warned_about(tmp_path):
    from glaviz.errors import InputWarning

    rng = np.random.default_rng(0)
    rgb = rng.integers(3000, 9000, (3, 16, 16)).astype(np.uint16)  # Sentinel-2-like DNs
    nir = rng.integers(3000, 9000, (16, 16)).astype(np.uint16)
    files = [write_raster(tmp_path / "s_RGB.tif", rgb), write_raster(tmp_path / "s_B4.tif", nir)]
    with pytest.warns(InputWarning, match=r"optical \(sensor 'landsat7_display8'\): 100% .*far "
                      r"outside \[0, 1\].*digital numbers"):  # fmt: skip
        ds = open_scene(files, sensor="landsat7_display8")
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        open_scene(files, sensor="landsat7_display8", range_warning=None)
        in_memory = ds.load()  # no longer the arrays open_scene checked
        with pytest.warns(InputWarning, match="far outside"):
            scale(in_memory)
        scale(in_memory, range_warning=None)  # the check can be switched off


def test_reflectance_opened_as_l1c_and_a_dem_in_feet_are_warned_about(tmp_path):
    from glaviz.errors import InputWarning

    rng = np.random.default_rng(1)
    files = {
        b: write_raster(tmp_path / f"T45_{b}.tif", rng.uniform(0.05, 0.9, (16, 16)).astype("f4"))
        for b in ("B02", "B03", "B04", "B08", "B11", "B12")
    }
    with pytest.warns(InputWarning, match=r"look like reflectance already.*sentinel2_l1c"):
        open_scene(files, sensor="sentinel2_l1c", processing_baseline="04.00")
    feet = np.linspace(9000, 26000, 256, dtype=np.float32).reshape(16, 16)  # 2700-7900 m
    with pytest.warns(InputWarning, match=r"dem .*far outside.*not in metres"):
        open_scene(dem=write_raster(tmp_path / "dem_ft.tif", feet))
    # the threshold is a parameter: here a quarter of the values are out of range
    part = np.full((16, 16), 3000.0, np.float32)
    part[:4] = 26000.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        open_scene(dem=write_raster(tmp_path / "dem_part.tif", part), range_warning=0.5)
    with pytest.warns(InputWarning, match="25%"):
        open_scene(dem=tmp_path / "dem_part.tif", range_warning=0.1)


def test_band_files_in_the_wrong_order_are_refused(everest_files):
    with pytest.raises(SceneError, match=r"B4\.tif' is named for band 'B4' but stands where .*"
                       r"expects \['red'\]"):  # fmt: skip
        open_scene([everest_files[EVEREST_NIR], everest_files[EVEREST_RGB]],
                   sensor="landsat7_display8")  # fmt: skip


def _s2_files(tmp_path, names=None):
    files = {}
    for band, res in [("B02", 10), ("B03", 10), ("B04", 10), ("B08", 10), ("B11", 20), ("B12", 20)]:
        n = 32 if res == 10 else 16
        name = (names or {}).get(band, f"S2B_T45RVL_{band}.tif")
        files[band] = write_raster(tmp_path / name, np.full((n, n), 2000 + 100 * len(files),
                                   np.uint16), origin=(470000, 3100000), res=res)  # fmt: skip
    return files


def test_sentinel2_list_is_sorted_by_band_names_or_refused(tmp_path):
    files = _s2_files(tmp_path)
    shuffled = [files[b] for b in ("B11", "B04", "B02", "B12", "B08", "B03")]
    ds = open_scene(shuffled, sensor="sentinel2_l1c", processing_baseline="04.00")
    assert ds.rio.resolution()[0] == 10 and ds["optical"].shape == (6, 32, 32)
    np.testing.assert_allclose(ds["optical"].isel(y=3, x=3).values,
                               [0.1, 0.11, 0.12, 0.13, 0.14, 0.15], rtol=1e-5)  # fmt: skip
    anonymous = _s2_files(tmp_path, names={b: f"band{i}.tif" for i, b in enumerate(files)})
    with pytest.raises(SceneError, match=r"several resolutions .*\{band: file\} mapping"):
        open_scene([anonymous[b] for b in ("B11", "B02", "B03", "B04", "B08", "B12")],
                   sensor="sentinel2_l1c", processing_baseline="04.00")  # fmt: skip


def test_a_band_file_at_the_wrong_resolution_is_refused(tmp_path):
    files = _s2_files(tmp_path)
    swapped = {**files, "B02": files["B11"], "B11": files["B02"]}
    with pytest.raises(SceneError, match=r"B11\.tif' given for band\(s\) \['B02'\].* 20 m pixels, "
                       r"coarser than"):  # fmt: skip
        open_scene(swapped, sensor="sentinel2_l1c", processing_baseline="04.00")


@pytest.mark.parametrize("layout", ["plain", "cog"])
def test_truncated_geotiff_names_the_file_and_the_check(tmp_path, layout):
    import rasterio.shutil

    from glaviz.errors import CorruptFileError

    rng = np.random.default_rng(0)
    z = rng.integers(1000, 4000, (512, 512)).astype(np.int16)
    plain = write_raster(tmp_path / "full.tif", z)
    src = tmp_path / f"{layout}.tif"
    rasterio.shutil.copy(plain, src, driver="COG" if layout == "cog" else "GTiff", TILED="YES",
                         COMPRESS="DEFLATE")  # fmt: skip
    raw = src.read_bytes()
    cut = tmp_path / f"{layout}_cut.tif"
    cut.write_bytes(raw[: int(len(raw) * 0.6)])
    with pytest.raises(CorruptFileError, match=r"dem: '.*_cut\.tif' .*truncated or corrupt.*"
                       r"gdalinfo -checksum"):  # fmt: skip
        open_scene(dem=cut)
    with pytest.raises(OSError):  # still the builtin an except clause may catch
        open_scene(dem=cut)


def test_one_pixel_wide_dem_says_slope_needs_two_by_two(tmp_path):
    from glaviz.data import slope
    from glaviz.errors import InputValueError

    path = write_raster(tmp_path / "strip.tif", np.linspace(3000, 3100, 40, dtype="f4")[:, None])
    with pytest.raises(SceneError, match=r"slope needs at least 2 x 2 pixels.*40 x 1"):
        open_scene(dem=path)
    strip = rioxarray.open_rasterio(path).squeeze("band", drop=True)
    with pytest.raises(InputValueError, match=r"slope needs at least 2 x 2 pixels"):
        slope(strip)
