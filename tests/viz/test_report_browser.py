"""Reports end to end: two regions in parallel (one failing), opened offline in Chromium."""

from __future__ import annotations

import json

import pytest

from glaviz.reports import report_many

TINY = {"train_epochs": 1, "train_steps": 3}


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reports")
    broken = folder / "broken_dem.tif"
    broken.write_bytes(b"II*\x00 not really a GeoTIFF")  # exists, so only the run can fail
    config = folder / "regions.yml"
    config.write_text(
        f"defaults: {json.dumps(TINY)}\n"
        "regions:\n"
        "- {name: Everest, sample: everest_landsat7}\n"
        f"- {{name: Broken region, sample: '', optical_files: ['{broken}'], "
        "sensor: landsat7_display8}\n"
    )
    table = report_many(config, folder / "out", jobs=2)
    return folder / "out", table


def test_a_failing_region_does_not_stop_the_others(reports):
    out, table = reports
    rows = table.set_index("region")
    assert rows.loc["Everest", "status"] == "ok"
    assert rows.loc["Broken region", "status"] == "failed"
    error = rows.loc["Broken region", "error"]
    assert "CorruptFileError" in error and "broken_dem.tif" in error
    headline = json.loads((out / "Everest_files" / "summary.json").read_text())
    assert rows.loc["Everest", "iou"] == pytest.approx(headline["iou"])
    assert (out / "Everest.html").exists() and (out / "Everest.ipynb").exists()
    assert (out / "Everest_files" / "prediction_glacier_mask.tif").exists()
    provenance = json.loads((out / "Everest_files" / "provenance.json").read_text())
    assert len(provenance["model_sha256"]) == 64 and provenance["parameters"]["train_epochs"] == 1
    summary = (out / "summary.csv").read_text()
    assert "Everest" in summary and "Broken region" in summary


def test_index_and_report_open_offline(offline_page, reports):
    out, table = reports
    page, report = offline_page
    offline_page.goto(out / "index.html")
    assert page.locator("a", has_text="Everest").count() == 1
    assert page.locator("pre.error").count() == 1
    page.locator("a", has_text="Everest").click()
    page.wait_for_function("window.glavizMaps && window.glavizMaps.length === 1")
    page.wait_for_selector("img.leaflet-image-layer")
    page.wait_for_selector("canvas")
    page.wait_for_timeout(1000)
    assert page.locator(".leaflet-sbs-divider").count() == 1
    assert page.locator("canvas").count() >= 3  # the plots
    # code cells are hidden, outputs shown
    assert page.locator(".jp-CodeCell .jp-InputArea").count() == 0
    assert page.locator(".jp-MarkdownCell").count() >= 5
    assert page.locator("text=Provenance").count() == 1
    offline_page.screenshot(full_page=True)
    report.assert_clean()
