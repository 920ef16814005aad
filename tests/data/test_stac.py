"""Tests of glaviz.data.stac.open_stac against open_scene on the same files, fully offline.

Each test writes Cloud-Optimized GeoTIFFs into tmp_path and a small STAC catalog describing them
with pystac (proj, raster and eo extensions, as Earth Search and the Planetary Computer publish
them), reads the catalog back from disk and opens its items.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import dask.array as da
import numpy as np
import pystac
import pytest
import rasterio
import rasterio.shutil
import xarray as xr
from rasterio.warp import transform_bounds
from rasters import EVEREST_NIR, EVEREST_RGB, write_raster

from glaviz.catalog import load_catalog
from glaviz.data import SceneError, open_scene
from glaviz.data.stac import infer_sensor, open_stac

S2_BANDS = {  # sensor band: (resolution, common name, value)
    "B02": (10, "blue", 1500),
    "B03": (10, "green", 2000),
    "B04": (10, "red", 2500),
    "B08": (10, "nir", 3000),
    "B11": (20, "swir16", 3500),
    "B12": (20, "swir22", 4000),
}
S2_ORIGIN = (470000.0, 3100000.0)  # UTM 45N, near Everest
L8_BANDS = {"B2": "blue", "B3": "green", "B4": "red", "B5": "nir08", "B6": "swir16", "B7": "swir22"}


def _cog(path: Path, data: np.ndarray, *, res: float, origin=S2_ORIGIN, nodata=0) -> Path:
    """Write ``data`` ((y, x) or (bands, y, x)) as a COG (GTiff first, then the COG driver)."""
    tmp = path.with_suffix(".tmp.tif")
    write_raster(tmp, data, crs="EPSG:32645", origin=origin, res=res, nodata=nodata)
    rasterio.shutil.copy(tmp, path, driver="COG")
    tmp.unlink()
    return path


def _footprint(transform, shape) -> tuple[dict, list[float]]:
    h, w = shape
    west, north = transform * (0, 0)
    east, south = transform * (w, h)
    lon0, lat0, lon1, lat1 = transform_bounds("EPSG:32645", "EPSG:4326", west, south, east, north)
    geom = {
        "type": "Polygon",
        "coordinates": [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]],
    }
    return geom, [lon0, lat0, lon1, lat1]


def _asset(path: Path, *, eo: list[dict], raster: list[dict] | None, proj: bool = True) -> dict:
    extra: dict = {"eo:bands": eo}
    if raster is not None:
        extra["raster:bands"] = raster
    if proj:
        with rasterio.open(path) as f:
            extra.update(
                {
                    "proj:code": f"EPSG:{f.crs.to_epsg()}",
                    "proj:transform": list(f.transform)[:6],
                    "proj:shape": [f.height, f.width],
                }
            )
    return extra


def _item(
    item_id: str,
    assets: dict[str, tuple[Path, dict]],
    *,
    when: dt.datetime,
    properties: dict,
    collection: str | None,
    grid_of: Path,
) -> pystac.Item:
    with rasterio.open(grid_of) as f:
        geom, bbox = _footprint(f.transform, (f.height, f.width))
    item = pystac.Item(item_id, geom, bbox, when, dict(properties), collection=collection)
    for key, (path, extra) in assets.items():
        item.add_asset(
            key,
            pystac.Asset(
                str(path), media_type=pystac.MediaType.COG, roles=["data"], extra_fields=extra
            ),
        )
    return item


def _save_and_reload(tmp_path: Path, items: list[pystac.Item]) -> list[pystac.Item]:
    """A self-contained catalog on disk (relative asset hrefs), read back with pystac."""
    cat = pystac.Catalog("glaviz-test", "test catalog")
    for it in items:
        for a in it.assets.values():
            a.href = str(Path(a.href).resolve())
        cat.add_item(it)
    root = tmp_path / "catalog"
    cat.normalize_hrefs(str(root))
    cat.make_all_asset_hrefs_relative()
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    back = pystac.Catalog.from_file(str(root / "catalog.json"))
    return sorted(back.get_items(recursive=True), key=lambda i: i.id)


def _s2_files(folder: Path, seed: int = 0, size: int = 64, origin=S2_ORIGIN) -> dict[str, Path]:
    """Sentinel-2-like single-band COGs: 10 m (size px) and 20 m (size/2 px) with nodata 0."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for band, (res, _, value) in S2_BANDS.items():
        n = size if res == 10 else size // 2
        dn = (value + rng.integers(0, 400, (n, n))).astype(np.uint16)
        dn[:3, :3] = 0  # nodata corner
        out[band] = _cog(folder / f"{band}.tif", dn, res=res, origin=origin)
    return out


def _s2_item(
    files: dict[str, Path],
    *,
    item_id: str = "S2B_45RVL_20230105_0_L1C",
    when: dt.datetime = dt.datetime(2023, 1, 5, 5, 10, tzinfo=dt.timezone.utc),
    baseline: str | None = "05.09",
    offset: float | None = -0.1,
    collection: str | None = "sentinel-2-l1c",
    proj: bool = True,
    drop: tuple[str, ...] = (),
    platform: str = "sentinel-2b",
) -> pystac.Item:
    """An item like Earth Search's: asset keys are common names, eo names the band numbers."""
    props = {"platform": platform}
    if platform.startswith("sentinel-2"):
        props["constellation"] = "sentinel-2"
    if baseline is not None:
        props["s2:processing_baseline"] = baseline
    assets = {}
    for band, path in files.items():
        if band in drop:
            continue
        _, common, _ = S2_BANDS[band]
        raster = {"nodata": 0, "data_type": "uint16"}
        if offset is not None:
            raster.update(scale=0.0001, offset=offset)
        eo = [{"name": band, "common_name": common}]
        assets[common] = (path, _asset(path, eo=eo, raster=[raster], proj=proj))
    return _item(
        item_id, assets, when=when, properties=props, collection=collection, grid_of=files["B02"]
    )


@pytest.fixture()
def s2(tmp_path):
    files = _s2_files(tmp_path / "s2")
    (item,) = _save_and_reload(tmp_path, [_s2_item(files)])
    return files, item


def _assert_same_scene(got: xr.Dataset, want: xr.Dataset) -> None:
    assert list(got.data_vars) == list(want.data_vars)
    assert got.rio.crs == want.rio.crs
    assert got.rio.transform() == want.rio.transform()
    for name in want.data_vars:
        assert got[name].dims == want[name].dims
        assert got[name].dtype == want[name].dtype
        for c in got[name].coords:
            np.testing.assert_array_equal(got[name][c].values, want[name][c].values)
        np.testing.assert_array_equal(got[name].values, want[name].values)
        assert got[name].attrs == want[name].attrs
    assert got.attrs["sensors"] == want.attrs["sensors"]
    assert got.attrs["scaled"] == want.attrs["scaled"] == 0


# ---- the same scene as open_scene -----------------------------------------------------------


def test_sentinel2_l1c_from_a_catalog_equals_open_scene(s2):
    files, item = s2
    ds = open_stac(item)  # sensor from platform + collection, baseline from s2:processing_baseline
    want = open_scene(files, sensor="sentinel2_l1c", processing_baseline="05.09")
    _assert_same_scene(ds, want)
    assert isinstance(ds["optical"].data, da.Array)  # lazy
    assert ds["optical"].shape == (6, 64, 64)
    assert ds["optical"].attrs["warped_from"] == "EPSG:32645 at 20 x 20"  # B11/B12 resampled
    with rasterio.open(files["B02"]) as f:
        dn = float(f.read(1)[30, 30])
    blue = float(ds["optical"].sel(optical_band="blue")[30, 30])
    assert blue == pytest.approx((dn - 1000) / 10000)  # baseline 05.09: the offset is removed
    assert not bool(ds["valid"][0, 0]) and bool(ds["valid"][40, 40])
    assert json.loads(ds.attrs["stac_items"]) == [item.id]
    assert json.loads(ds.attrs["stac_collections"]) == ["sentinel-2-l1c"]
    assert json.loads(ds.attrs["stac_assets"])["optical"]["B11"] == "swir16"
    srcs = json.loads(ds.attrs["sources"])["optical"]
    assert [Path(s).name for s in srcs] == [f"{b}.tif" for b in S2_BANDS]
    assert all(Path(s).resolve() == files[b].resolve() for s, b in zip(srcs, S2_BANDS))
    assert ds.attrs["datetime"].startswith("2023-01-05T05:10")
    assert ds.attrs["processing_baseline"] == "05.09"
    # the same item as a dict, as the path of its JSON file, in an ItemCollection
    for same in (item.to_dict(), item.get_self_href(), pystac.ItemCollection([item])):
        np.testing.assert_array_equal(open_stac(same)["optical"].values, want["optical"].values)


def test_sentinel2_baseline_and_raster_offset(tmp_path):
    files = _s2_files(tmp_path / "s2")
    old = _s2_item(files, baseline="03.01", offset=None)  # before 04.00, no raster offset
    _assert_same_scene(
        open_stac(old), open_scene(files, sensor="sentinel2_l1c", processing_baseline="03.01")
    )
    # a harmonised collection: an old baseline whose DNs carry the offset (raster offset -0.1)
    harmonised = open_stac(_s2_item(files, baseline="03.01", offset=-0.1))
    new = open_scene(files, sensor="sentinel2_l1c", processing_baseline="04.00")
    np.testing.assert_array_equal(harmonised["optical"].values, new["optical"].values)
    assert "raster:bands offset" in harmonised.attrs["processing_baseline_note"]
    assert harmonised.attrs["processing_baseline"] == "03.01"  # the item's, as it said
    # no property: the raster offset decides; an explicit argument overrides everything
    _assert_same_scene(open_stac(_s2_item(files, baseline=None, offset=-0.1)), new)
    explicit = open_stac(_s2_item(files, baseline=None), processing_baseline="02.14")
    _assert_same_scene(
        explicit, open_scene(files, sensor="sentinel2_l1c", processing_baseline="02.14")
    )
    with pytest.raises(SceneError, match=r"S2B_45RVL.*processing_baseline='04.00'"):
        open_stac(_s2_item(files, baseline=None, offset=None))


def test_everest_sample_as_cog_catalog_equals_open_scene(tmp_path, everest_files, everest_scene):
    """The Everest sample's RGB (one 3-band asset) and NIR files, as COGs, with a DEM."""
    rgb = rasterio.open(everest_files[EVEREST_RGB]).read()
    nir = rasterio.open(everest_files[EVEREST_NIR]).read(1)
    origin = (478000.0, 3108140.0)
    rgb_cog = _cog(tmp_path / "rgb.tif", rgb, res=30, origin=origin, nodata=None)
    nir_cog = _cog(tmp_path / "nir.tif", nir, res=30, origin=origin, nodata=None)
    eo = [{"name": "red"}, {"name": "green"}, {"name": "blue"}]
    assets = {
        "rgb": (rgb_cog, _asset(rgb_cog, eo=eo, raster=[{}, {}, {}])),
        "B4": (nir_cog, _asset(nir_cog, eo=[{"name": "B4", "common_name": "nir"}], raster=None)),
    }
    item = _item(
        "LE71400412000304SGS00",
        assets,
        when=dt.datetime(2000, 10, 30, 4, 30),
        properties={"platform": "landsat-7"},
        collection="landsat-c2-l1",
        grid_of=rgb_cog,
    )
    (item,) = _save_and_reload(tmp_path, [item])
    with pytest.raises(SceneError, match=r"LE71400412000304SGS00.*pass open_stac\(\.\.\., sensor="):
        open_stac(item)  # Landsat 7 is not inferred: the display product needs sensor=
    ds = open_stac(item, sensor="landsat7_display8")
    _assert_same_scene(ds, everest_scene)
    dem = tmp_path / "dem.tif"
    write_raster(dem, np.linspace(4000, 6000, 60 * 70, dtype=np.float32).reshape(60, 70), res=300)
    with_dem = open_stac(item, sensor="landsat7_display8", dem=dem)
    want = open_scene(
        [everest_files[EVEREST_RGB], everest_files[EVEREST_NIR]],
        sensor="landsat7_display8",
        dem=dem,
    )
    _assert_same_scene(with_dem, want)
    assert json.loads(with_dem.attrs["sources"])["dem"] == [str(dem)]
    dem_da = xr.open_dataarray(dem, engine="rasterio")
    from_da = open_stac(item, sensor="landsat7_display8", dem=dem_da)
    np.testing.assert_array_equal(from_da["dem"].values, with_dem["dem"].values)


def test_landsat8_optical_and_thermal(tmp_path):
    mtl = tmp_path / "LC08_MTL.txt"
    mtl.write_text("GROUP = IMAGE_ATTRIBUTES\n    SUN_ELEVATION = 30.0\nEND_GROUP\nEND\n")
    rng = np.random.default_rng(1)
    opt = (20000 + rng.integers(0, 9000, (6, 32, 32))).astype(np.uint16)
    files = {}
    for i, band in enumerate(L8_BANDS):
        files[band] = _cog(tmp_path / f"{band}.tif", opt[i], res=30)
    files["B10"] = _cog(tmp_path / "B10.tif", np.full((32, 32), 25000, np.uint16), res=30)
    assets = {}
    for band, path in files.items():
        common = L8_BANDS.get(band, "lwir11")
        mult, add = (2e-5, -0.1) if band != "B10" else (3.342e-4, 0.1)
        raster = [{"nodata": 0, "scale": mult, "offset": add}]
        eo = [{"name": band, "common_name": common}]
        assets[common] = (path, _asset(path, eo=eo, raster=raster))
    props = {"platform": "landsat-8", "view:sun_elevation": 30.0, "landsat:correction": "L1TP"}
    item = _item(
        "LC08_L1TP_140041_20230105",
        assets,
        when=dt.datetime(2023, 1, 5, 4, 40),
        properties=props,
        collection="landsat-c2-l1",
        grid_of=files["B2"],
    )
    assert infer_sensor(item) == "landsat89_l1"
    ds = open_stac(item)
    want = open_scene(
        [files[b] for b in L8_BANDS], sensor="landsat89_l1", thermal=files["B10"], metadata=mtl
    )
    _assert_same_scene(ds, want)
    assert list(ds.data_vars) == ["optical", "thermal", "valid"]
    assert open_stac(item, groups=["optical"]).data_vars.keys() == {"optical", "valid"}
    # USGS-style radiance scaling (with its unit) is not a contradiction of DN assets
    radiance = {"scale": 0.0123, "offset": -61.5, "unit": "watt/steradian/square_meter/micrometer"}
    item.assets["red"].extra_fields["raster:bands"][0].update(radiance)
    np.testing.assert_array_equal(open_stac(item)["optical"].values, want["optical"].values)
    item.assets["red"].extra_fields["raster:bands"][0].pop("unit")
    # Level-2 surface reflectance assets under the Level-1 spec: refused, naming the item
    for a in item.assets.values():
        a.extra_fields["raster:bands"][0].update(scale=2.75e-05, offset=-0.2)
    with pytest.raises(SceneError, match=r"LC08_L1TP_140041_20230105.*scale 2.75e-05.*sensor="):
        open_stac(item)
    item.properties["landsat:correction"] = "L2SP"
    with pytest.raises(SceneError, match=r"'landsat89_l2', which has no sensor spec"):
        open_stac(item)


def test_sentinel2_l2a_with_a_catalog_that_has_it(tmp_path, monkeypatch, s2):
    """L2A is inferred; it opens when the catalog has a ``sentinel2_l2a`` sensor."""
    files, _ = s2
    item = _s2_item(files, collection="sentinel-2-l2a", item_id="S2B_45RVL_20230105_0_L2A")
    assert infer_sensor(item) == "sentinel2_l2a"
    cat_dir = tmp_path / "catalog_l2a"
    shutil.copytree(load_catalog().path, cat_dir)
    sensors = (cat_dir / "sensors.yml").read_text()
    if "sentinel2_l2a:" not in sensors:
        entry = (
            "  sentinel2_l2a:\n"
            "    description: Sentinel-2 MSI Level-2A surface reflectance digital numbers.\n"
            "    groups:\n"
            "      optical:\n"
            "        bands: {B02: blue, B03: green, B04: red, B08: nir, B11: swir1, B12: swir2}\n"
            "        nodata: 0\n"
            "        conversion: {kind: sentinel2_l1c, quantification_value: 10000,\n"
            "                     radiometric_offset: -1000, offset_from_baseline: '04.00'}\n"
        )
        sensors = sensors.replace("sensors:\n", "sensors:\n" + entry, 1)
        (cat_dir / "sensors.yml").write_text(sensors)
    monkeypatch.setenv("GLAVIZ_CATALOG", str(cat_dir))
    ds = open_stac(item)
    assert json.loads(ds.attrs["sensors"]) == {"optical": "sentinel2_l2a"}
    want = open_scene(files, sensor="sentinel2_l1c", processing_baseline="05.09")
    np.testing.assert_array_equal(ds["optical"].values, want["optical"].values)


# ---- grids: bbox, crs/resolution, several tiles and dates -----------------------------------


def test_bbox_crops_to_whole_pixels(s2):
    files, item = s2
    full = open_stac(item)
    x0, x1 = S2_ORIGIN[0] + 105, S2_ORIGIN[0] + 395  # pixel 10 .. 39 (partly)
    y0, y1 = S2_ORIGIN[1] - 305, S2_ORIGIN[1] - 95  # row 9 .. 30
    lonlat = transform_bounds("EPSG:32645", "EPSG:4326", x0, y0, x1, y1, densify_pts=21)
    part = open_stac(item, bbox=lonlat)
    t = part.rio.transform()
    col0, row0 = round((t.c - S2_ORIGIN[0]) / 10), round((S2_ORIGIN[1] - t.f) / 10)
    assert 0 < col0 <= 10 and 0 < row0 <= 9
    assert part.sizes["x"] >= 30 and part.sizes["y"] >= 22
    window = full.isel(y=slice(row0, row0 + part.sizes["y"]), x=slice(col0, col0 + part.sizes["x"]))
    np.testing.assert_array_equal(part["optical"].values, window["optical"].values)
    np.testing.assert_array_equal(part["x"].values, window["x"].values)
    with pytest.raises(SceneError, match="does not overlap"):
        open_stac(item, bbox=(10.0, 45.0, 10.1, 45.1))


def test_crs_and_resolution(s2, tmp_path):
    files, item = s2
    coarse = open_stac(item, resolution=20)
    assert coarse.rio.resolution() == (20.0, -20.0) and coarse["optical"].shape == (6, 32, 32)
    assert coarse.rio.crs.to_epsg() == 32645
    # items without proj information: the grid must be given
    files2 = _s2_files(tmp_path / "noproj")
    noproj = _s2_item(files2, proj=False, item_id="S2B_NOPROJ")
    with pytest.raises(SceneError, match=r"S2B_NOPROJ.*proj:transform.*pass crs= and resolution="):
        open_stac(noproj)
    ds = open_stac(noproj, crs="EPSG:32645", resolution=10)
    assert ds.rio.crs.to_epsg() == 32645 and ds.rio.resolution() == (10.0, -10.0)
    assert bool(ds["valid"].any())


def test_two_tiles_of_one_date_are_mosaicked_and_dates_give_a_list(tmp_path):
    left = _s2_files(tmp_path / "left", seed=1, size=32)
    right = _s2_files(
        tmp_path / "right", seed=2, size=32, origin=(S2_ORIGIN[0] + 320, S2_ORIGIN[1])
    )
    t = dt.datetime(2023, 1, 5, 5, 10, tzinfo=dt.timezone.utc)
    items = _save_and_reload(
        tmp_path,
        [
            _s2_item(left, item_id="A_20230105", when=t),
            _s2_item(right, item_id="B_20230105", when=t),
            _s2_item(left, item_id="A_20230115", when=t + dt.timedelta(days=10)),
        ],
    )
    scenes = open_stac(items)
    assert isinstance(scenes, list) and len(scenes) == 2
    mosaic, later = scenes
    assert json.loads(mosaic.attrs["stac_items"]) == ["A_20230105", "B_20230105"]
    assert json.loads(later.attrs["stac_items"]) == ["A_20230115"]
    assert mosaic["optical"].shape == (6, 32, 64) and later["optical"].shape == (6, 32, 32)
    assert mosaic.rio.transform().c == S2_ORIGIN[0]
    want_left = open_scene(left, sensor="sentinel2_l1c", processing_baseline="05.09")
    want_right = open_scene(right, sensor="sentinel2_l1c", processing_baseline="05.09")
    # 10 m bands are pasted exactly; 20 m bands are resampled near the seam from both tiles
    ten = ["blue", "green", "red", "nir"]
    np.testing.assert_array_equal(
        mosaic["optical"].sel(optical_band=ten).isel(x=slice(0, 32)).values,
        want_left["optical"].sel(optical_band=ten).values,
    )
    np.testing.assert_array_equal(
        mosaic["optical"].sel(optical_band=ten).isel(x=slice(32, 64)).values,
        want_right["optical"].sel(optical_band=ten).values,
    )
    np.testing.assert_array_equal(
        mosaic["optical"].isel(x=slice(4, 28)).values,
        want_left["optical"].isel(x=slice(4, 28)).values,
    )
    assert len(json.loads(mosaic.attrs["sources"])["optical"]) == 12
    _assert_same_scene(later, want_left)


# ---- bad items ------------------------------------------------------------------------------


def test_missing_band_asset_names_the_item_and_the_fix(tmp_path, s2):
    files, _ = s2
    item = _s2_item(files, drop=("B11",), item_id="S2B_NO_B11")
    with pytest.raises(SceneError, match=r"S2B_NO_B11.*'B11' \(swir1\).*bands=\{'B11'"):
        open_stac(item)
    # the fix: point the band at an asset (here another copy of the file)
    proj = _asset(files["B11"], eo=[], raster=None)
    item.add_asset("band11", pystac.Asset(str(files["B11"]), extra_fields=proj))
    ds = open_stac(item, bands={"B11": "band11"})
    want = open_scene(files, sensor="sentinel2_l1c", processing_baseline="05.09")
    np.testing.assert_array_equal(ds["optical"].values, want["optical"].values)
    with pytest.raises(SceneError, match=r"names no asset"):
        open_stac(item, bands={"B11": "nothere"})


def test_unknown_platform_and_mixed_sensors(s2):
    files, item = s2
    odd = _s2_item(files, platform="pleiades-1a", collection=None, item_id="PHR_1")
    with pytest.raises(
        SceneError, match=r"'PHR_1'.*'pleiades-1a'.*pass open_stac\(\.\.\., sensor="
    ):
        open_stac(odd)
    nolevel = _s2_item(files, collection=None, item_id="S2_NOLEVEL")
    with pytest.raises(SceneError, match=r"S2_NOLEVEL.*L1C or L2A.*sensor='sentinel2_l1c'"):
        open_stac(nolevel)
    ds = open_stac(nolevel, sensor="sentinel2_l1c")
    assert ds["optical"].shape == (6, 64, 64)
    l2a = _s2_item(files, collection="sentinel-2-l2a", item_id="S2_L2A")
    with pytest.raises(SceneError, match="several sensors"):
        open_stac([item, l2a])
    with pytest.raises(SceneError, match=r"groups=\['dem'\].*provides \['optical'\]"):
        open_stac(item, groups=["dem"])
