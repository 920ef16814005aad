"""Tests of glaviz.data.prepare_offline: every sample into the cache, usable offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pooch
import pytest

from glaviz.catalog import load_catalog
from glaviz.data import DataUnavailableError, fetch
from glaviz.data.prepare_offline import main, prepare

B4 = "LE71400412000304SGS00_B4.tif"


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("GLAVIZ_CACHE", str(path))
    return path


def test_every_sample_lands_in_the_cache_and_works_offline(cache, monkeypatch, capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    catalog = load_catalog()
    for name, entry in catalog.samples.items():
        for fname, spec in entry.files.items():
            copy = cache / name / fname
            assert pooch.file_hash(str(copy), alg="sha256") == spec.sha256
            assert f"{name}" in out and fname in out
    assert "Ready: 4 sample(s)" in out and "GLAVIZ_OFFLINE=1" in out
    # the venue: no mirror, no network; the notebooks' fetch finds everything in the cache
    monkeypatch.delenv("GLAVIZ_DATA_MIRROR")
    monkeypatch.setenv("GLAVIZ_OFFLINE", "1")
    files = fetch("everest_landsat7")
    assert all(p.parent == cache / "everest_landsat7" for p in files.values())
    # a second run finds the files in the cache
    assert main(["everest_landsat7"]) == 0
    assert "ready (was in the cache)" in capsys.readouterr().out


def test_missing_file_exits_1_and_says_how_to_fix(cache, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("GLAVIZ_DATA_MIRROR", str(tmp_path / "empty"))
    monkeypatch.setenv("GLAVIZ_OFFLINE", "1")
    assert main(["everest_landsat7"]) == 1
    out = capsys.readouterr().out
    assert f"everest_landsat7       {B4}" in out and "MISSING" in out
    assert "7 of 7 file(s) are missing" in out and "GLAVIZ_DATA_MIRROR" in out
    with pytest.raises(DataUnavailableError):
        fetch("everest_landsat7", B4)


def test_corrupt_cache_copy_is_replaced_from_the_mirror(cache):
    bad = cache / "everest_landsat7" / B4
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a tif")
    statuses = {s.file: s for s in prepare(["everest_landsat7"])}
    assert statuses[B4].ready and statuses[B4].source == "mirror"
    spec = load_catalog().samples["everest_landsat7"].files[B4]
    assert pooch.file_hash(str(bad), alg="sha256") == spec.sha256
    assert not list(bad.parent.glob(".*.tmp"))  # no temporary file left behind


def test_unknown_sample_is_refused(cache, capsys):
    with pytest.raises(KeyError, match="unknown sample dataset.*'nope'.*everest_landsat7"):
        prepare(["nope"])
    assert main(["nope"]) == 2
    assert "known:" in capsys.readouterr().err


def test_runs_as_a_module(cache):
    env = {**os.environ, "GLAVIZ_CACHE": str(cache)}
    done = subprocess.run(
        [sys.executable, "-m", "glaviz.data.prepare_offline", "oggm_hintereisferner"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Ready: 1 sample(s), 10 file(s)" in done.stdout
    assert (cache / "oggm_hintereisferner" / "hintereisferner_srtm.tif").is_file()
