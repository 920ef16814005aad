"""Tests of glaviz.catalog: the shipped catalog and the validation of malformed files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from glaviz.catalog import GROUPS, CatalogError, load_catalog

CATALOG = Path(__file__).resolve().parents[1] / "data_catalog"


def test_groups_and_scaling_match_reference():
    cat = load_catalog()
    assert tuple(cat.groups) == GROUPS
    assert cat.groups["optical"].bands == ("blue", "green", "red", "nir", "swir1", "swir2")
    assert cat.groups["dem"].band("elevation").min == pytest.approx(-103.30)
    assert cat.groups["dem"].band("slope").max == pytest.approx(88.98)
    assert cat.groups["co_pol_sar"].band("co_pol_desc").max == pytest.approx(15.6351)
    assert cat.groups["cross_pol_sar"].band("cross_pol_asc").max == pytest.approx(1.3886)
    assert cat.groups["thermal"].band("brightness_temperature").max == pytest.approx(322.08)
    table = cat.scaling_table()
    assert table["optical"]["min"][0] == pytest.approx(-0.0037)
    assert table["optical"]["max"][-1] == pytest.approx(2.1602)
    assert [len(table[g]["bands"]) for g in GROUPS] == [6, 2, 2, 2, 2, 1]


def test_sensors_map_bands_to_groups_in_order():
    cat = load_catalog()
    s2 = cat.sensor("sentinel2_l1c").groups["optical"]
    assert s2.sensor_bands == ("B02", "B03", "B04", "B08", "B11", "B12")
    assert s2.canonical_bands == cat.groups["optical"].bands
    l7 = cat.sensor("landsat7_display8").groups["optical"]
    assert l7.canonical_bands == ("red", "green", "blue", "nir")
    assert cat.sensor("landsat89_l1").groups["thermal"].conversion["k2"] == pytest.approx(1321.0789)
    assert cat.sensor("dem").groups["dem"].derived == (("slope", "slope_degrees"),)
    with pytest.raises(KeyError, match="unknown sensor 'modis'.*sentinel2_l1c"):
        cat.sensor("modis")


def test_regions_one_hot_order():
    cat = load_catalog()
    assert cat.region_codes == (
        "ALP", "AN", "AWA", "CA", "GR", "HMA", "LL", "NZ", "SA", "SC", "SVAL",
    )  # fmt: skip
    assert cat.region_index("ALP") == 0
    assert cat.region_index("SVAL") == 10
    assert cat.region_index(None) == cat.unknown_slot == 11
    assert all(r.subregions for r in cat.regions)
    with pytest.raises(KeyError, match="XX"):
        cat.region_index("XX")


def test_samples_have_origin_licence_and_checksums():
    cat = load_catalog()
    ev = cat.samples["everest_landsat7"]
    assert ev.base_url.startswith("https://")
    assert "CC-BY-4.0" in ev.licence and "BSD-3" in ev.licence
    assert ev.files["LE71400412000304SGS00_RGB.tif"].sha256.startswith("7d0505a8")
    assert ev.scene["sensor"] == "landsat7_display8"
    for ds in cat.samples.values():
        assert ds.files and all(len(f.sha256) == 64 for f in ds.files.values())


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "catalog"
    shutil.copytree(CATALOG, dst, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return dst


def _edit(path: Path, fn) -> None:
    data = yaml.safe_load(path.read_text())
    fn(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize(
    ("file", "edit", "message"),
    [
        (
            "sensors.yml",
            lambda d: d["sensors"]["sentinel2_l1c"]["groups"]["optical"].update(colour="red"),
            r"sensors.yml: sensors\.sentinel2_l1c\.groups\.optical: unknown key\(s\) \['colour'\]",
        ),
        (
            "sensors.yml",
            lambda d: d["sensors"]["dem"]["groups"]["dem"].pop("conversion"),
            r"sensors.yml: sensors\.dem\.groups\.dem: missing field\(s\) \['conversion'\]",
        ),
        (
            "sensors.yml",
            lambda d: d["sensors"]["landsat89_l1"]["groups"]["thermal"]["conversion"].pop("k1"),
            r"sensors\.landsat89_l1\.groups\.thermal\.conversion: missing field\(s\) \['k1'\]",
        ),
        (
            "samples.yml",
            lambda d: d["samples"]["everest_landsat7"].pop("licence"),
            r"samples.yml: samples\.everest_landsat7: missing field\(s\) \['licence'\]",
        ),
        (
            "samples.yml",
            lambda d: d["samples"]["oggm_oetztal"]["files"]["oetztal/srtm_oetztal.tif"].update(
                sha256="abc"
            ),
            r"samples\.oggm_oetztal\.files\.oetztal/srtm_oetztal\.tif\.sha256",
        ),
        (
            "scaling.yml",
            lambda d: d["scaling"]["optical"]["bands"]["red"].update(max=-1.0),
            r"scaling.yml: scaling\.optical\.bands\.red: max \(-1\.0\) must be greater",
        ),
        (
            "regions.yml",
            lambda d: d["regions"][0].pop("name"),
            r"regions.yml: regions\[0\]: missing field\(s\) \['name'\]",
        ),
    ],
)
def test_malformed_catalog_names_file_and_entry(tmp_path, file, edit, message):
    folder = _copy(tmp_path)
    _edit(folder / file, edit)
    with pytest.raises(CatalogError, match=message):
        load_catalog(folder)


def test_missing_catalog_file(tmp_path):
    folder = _copy(tmp_path)
    (folder / "regions.yml").unlink()
    with pytest.raises(CatalogError, match="regions.yml: catalog file is missing"):
        load_catalog(folder)
