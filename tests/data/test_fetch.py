"""Tests of glaviz.data.fetch: mirror, cache, sha256 checks, downloads and offline errors."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest
import yaml

from glaviz.catalog import load_catalog
from glaviz.data import ChecksumError, DataUnavailableError, fetch

CATALOG = Path(__file__).resolve().parents[2] / "data_catalog"
B4 = "LE71400412000304SGS00_B4.tif"


def test_fetch_from_mirror(monkeypatch):
    mirror = Path(__import__("os").environ["GLAVIZ_DATA_MIRROR"])
    path = fetch("everest_landsat7", B4)
    assert path == mirror / "everest_landsat7" / B4
    everything = fetch("everest_landsat7")
    assert set(everything) == set(load_catalog().samples["everest_landsat7"].files)
    assert all(p.is_file() for p in everything.values())


def test_shapefile_comes_with_sidecars(monkeypatch, tmp_path):
    shp = fetch("oggm_hintereisferner", "hintereisferner_rgi6/Hintereisferner_RGI6.shp")
    for ext in (".shx", ".dbf", ".prj"):
        assert shp.with_suffix(ext).is_file()


def test_unknown_dataset_and_file():
    with pytest.raises(KeyError, match="unknown sample dataset 'nope'.*everest_landsat7"):
        fetch("nope")
    with pytest.raises(KeyError, match="has no file 'x.tif'"):
        fetch("everest_landsat7", "x.tif")


def test_checksum_mismatch_in_mirror(monkeypatch, tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "everest_landsat7").mkdir(parents=True)
    original = fetch("everest_landsat7", B4)
    bad = mirror / "everest_landsat7" / B4
    bad.write_bytes(original.read_bytes()[:-10] + b"0123456789")
    monkeypatch.setenv("GLAVIZ_DATA_MIRROR", str(mirror))
    with pytest.raises(
        ChecksumError, match=rf"{B4}.*does not match the catalog.*GLAVIZ_DATA_MIRROR"
    ):
        fetch("everest_landsat7", B4)


def test_offline_without_mirror_names_dataset_and_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("GLAVIZ_DATA_MIRROR", str(tmp_path / "empty"))
    monkeypatch.setenv("GLAVIZ_OFFLINE", "1")
    with pytest.raises(DataUnavailableError, match=r"'everest_landsat7'.*GLAVIZ_DATA_MIRROR"):
        fetch("everest_landsat7", B4)
    monkeypatch.delenv("GLAVIZ_DATA_MIRROR")
    with pytest.raises(DataUnavailableError, match=r"'exploradores_aster'.*GLAVIZ_DATA_MIRROR"):
        fetch("exploradores_aster")


@pytest.fixture()
def http_catalog(tmp_path, monkeypatch):
    """A copy of the catalog whose Everest base_url is a server on this machine's loopback."""
    served = tmp_path / "served"
    (served / "data" / "Everest_Landsat").mkdir(parents=True)
    shutil.copy(fetch("everest_landsat7", B4), served / "data" / "Everest_Landsat" / B4)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    folder = tmp_path / "catalog"
    shutil.copytree(CATALOG, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    data = yaml.safe_load((folder / "samples.yml").read_text())
    data["samples"]["everest_landsat7"]["base_url"] = f"http://127.0.0.1:{server.server_port}/"
    (folder / "samples.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("GLAVIZ_CATALOG", str(folder))
    monkeypatch.setenv("GLAVIZ_DATA_MIRROR", str(tmp_path / "no-mirror"))
    monkeypatch.setenv("GLAVIZ_CACHE", str(tmp_path / "cache"))
    yield served
    server.shutdown()
    server.server_close()


def test_download_into_cache_then_reuse(http_catalog, tmp_path, monkeypatch):
    path = fetch("everest_landsat7", B4)
    assert path == tmp_path / "cache" / "everest_landsat7" / B4
    assert path.read_bytes() == (http_catalog / "data" / "Everest_Landsat" / B4).read_bytes()
    # A second call uses the cache: works offline, with the server's copy gone.
    (http_catalog / "data" / "Everest_Landsat" / B4).unlink()
    monkeypatch.setenv("GLAVIZ_OFFLINE", "1")
    assert fetch("everest_landsat7", B4) == path


def test_download_checksum_mismatch(http_catalog, tmp_path):
    target = http_catalog / "data" / "Everest_Landsat" / B4
    target.write_bytes(b"not the landsat file")
    with pytest.raises(ChecksumError, match=rf"{B4}.*does not match the catalog sha256"):
        fetch("everest_landsat7", B4)
    assert not (tmp_path / "cache" / "everest_landsat7" / B4).exists()


def test_download_failure_is_clear(http_catalog):
    with pytest.raises(DataUnavailableError, match=r"download from http://127\.0\.0\.1.*failed"):
        fetch("everest_landsat7", "LE71400412000304SGS00_RGB.tif")


def test_whole_sample_without_the_mirror_leaves_out_mirror_only_files(monkeypatch, tmp_path):
    """A user without the project's mirror still gets the sample's public files."""
    mirror = tmp_path / "mirror" / "everest_landsat7"
    mirror.mkdir(parents=True)
    real = fetch("everest_landsat7")
    for name, path in real.items():  # a mirror with every public file, none mirror-only
        if name != "reference_rgi60_mask_on_landsat_grid.tif":
            (mirror / name).symlink_to(path)
    monkeypatch.setenv("GLAVIZ_DATA_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setenv("GLAVIZ_CACHE", str(tmp_path / "cache"))
    files = fetch("everest_landsat7")
    assert "reference_rgi60_mask_on_landsat_grid.tif" not in files
    assert "LE71400412000304SGS00_RGB.tif" in files
    with pytest.raises(DataUnavailableError, match="no public download"):
        fetch("everest_landsat7", "reference_rgi60_mask_on_landsat_grid.tif")
