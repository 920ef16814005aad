"""A saved comparison map in headless Chromium with the network blocked: everything works.

The scene has every input group (optical, DEM, co- and cross-polarised SAR, InSAR coherence,
thermal), so every layer kind is built, saved and rendered.
"""

from __future__ import annotations

import pytest
from scenes import full_scene

from glaviz.viz.html import save_html
from glaviz.viz.inspector import Inspector
from glaviz.viz.layers import ERROR_CLASSES, LAYER_KEYS
from glaviz.viz.maps import compare_map

POINT_JS = """([lat, lon]) => {
  const m = window.glavizMaps[0].map;
  const p = m.latLngToContainerPoint([lat, lon]);
  const r = m.getContainer().getBoundingClientRect();
  return [r.x + p.x, r.y + p.y];
}"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    scene, reference, prediction = full_scene(96, 112)
    m = compare_map(scene, prediction, reference, height="560px")
    path = save_html(m, tmp_path_factory.mktemp("html") / "map.html")
    return scene, reference, prediction, m, path


def _inspect(page, scene, row: int, col: int) -> str:
    lat, lon = Inspector.latlon_of(row, col, transform=scene.rio.transform(), crs=scene.rio.crs)
    x, y = page.evaluate(POINT_JS, [lat, lon])
    page.evaluate("document.querySelector('.glaviz-map').removeAttribute('data-glaviz-inspected')")
    page.mouse.click(x, y)
    page.wait_for_selector("[data-glaviz-inspected]")
    return page.locator(".glaviz-inspector").inner_text()


def test_saved_map_works_offline_in_chromium(offline_page, saved):
    scene, reference, prediction, m, path = saved
    page, report = offline_page
    page.set_viewport_size({"width": 1200, "height": 800})
    offline_page.goto(path)
    page.wait_for_function("window.glavizMaps && window.glavizMaps.length === 1")
    page.wait_for_selector("img.leaflet-image-layer")
    page.wait_for_timeout(500)

    # every layer kind is built; the swiped two are drawn by the swipe control, the others are
    # listed in the layers control, the hidden ones switched off
    assert set(m.image_layers) == set(LAYER_KEYS)
    swiped = {m.image_layers["rgb"].name, m.image_layers["error"].name}
    labels = page.locator(".leaflet-control-layers label").all_inner_texts()
    names = {layer.name for layer in m.image_layers.values()} - swiped
    assert names | {"Expert outlines", "Predicted outlines"} == {t.strip() for t in labels}
    shown = len(m.image_layers) - len(m.initially_hidden)
    assert page.locator("img.leaflet-image-layer").count() == shown
    paths = sum(len(layer.data["features"]) for layer in m.outline_layers.values())
    assert page.locator("path.leaflet-interactive").count() == paths

    # switching a hidden layer on adds its image
    probability = m.image_layers["probability"].name
    page.locator(".leaflet-control-layers label", has_text=probability).click()
    assert page.locator("img.leaflet-image-layer").count() == shown + 1

    # the swipe: dragging the divider moves the clip of the left layer's pane
    assert page.locator(".leaflet-sbs-divider").count() == 1
    pane = page.locator(".leaflet-glaviz-rgb-pane")
    before = pane.evaluate("e => e.style.clip")
    box = page.locator(".leaflet-sbs-divider").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] - 150, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    after = pane.evaluate("e => e.style.clip")
    assert before and after and before != after

    # the opacity slider moves every overlay's opacity (no kernel: browser-side links)
    error_img = page.locator(".leaflet-glaviz-error-pane img")
    assert float(error_img.evaluate("e => getComputedStyle(e).opacity")) == pytest.approx(0.7)
    handle = page.locator(".glaviz-opacity .noUi-handle, .glaviz-opacity [role=slider]").first
    handle.focus()
    for _ in range(4):
        page.keyboard.press("ArrowLeft")
    page.wait_for_timeout(200)
    assert float(error_img.evaluate("e => getComputedStyle(e).opacity")) < 0.6

    # the pixel inspector: known pixels show their probability and error class
    err = m.display.values["error"]
    for row, col in [(40, 50), (70, 20), (20, 90)]:
        text = _inspect(page, scene, row, col)
        assert f"{row}, {col}" in text
        prob = float(prediction["glacier_probability"][row, col])
        assert f"glacier probability\t{float(f'{prob:.4g}'):g}" in text
        pm, rm = int(prediction["glacier_mask"][row, col]), int(reference[row, col])
        expect = {(1, 1): 1, (1, 0): 2, (0, 1): 3}.get((pm, rm))
        label = ERROR_CLASSES[expect][0] if expect else "true negative / no data"
        assert f"error class\t{label}" in text
    assert {1, 2, 3} <= set(err[err > 0].tolist())

    # hovering a predicted outline shows its id and area
    feature = m.outline_layers["predicted_outlines"].data["features"][0]
    lon, lat = feature["geometry"]["coordinates"][0][0]
    x, y = page.evaluate(POINT_JS, [lat, lon])
    page.mouse.move(x, y)
    page.wait_for_selector(".leaflet-tooltip", timeout=5000)
    tooltips = " ".join(page.locator(".leaflet-tooltip").all_inner_texts())
    assert "km²" in tooltips and ("P" in tooltips or "R" in tooltips)

    offline_page.screenshot()
    report.assert_clean()


def test_saved_page_with_plots_renders_offline(offline_page, saved, tmp_path):
    import holoviews as hv

    from glaviz.evaluation import reliability
    from glaviz.viz.plots import confidence_histogram, reliability_diagram

    scene, reference, prediction, m, _ = saved
    table = reliability(prediction, reference)
    page_items = [
        "<h2>Region X</h2>",
        m,
        reliability_diagram(table),
        confidence_histogram(prediction),
        hv.Curve([(0, 0.9), (1, 0.5), (2, 0.3)], "epoch", "loss"),
    ]
    path = save_html(page_items, tmp_path / "page.html")
    page, report = offline_page
    offline_page.goto(path)
    page.wait_for_function("window.glavizMaps && window.glavizMaps.length === 1")
    # BokehJS draws each plot into canvases inside shadow roots
    page.wait_for_selector("canvas")
    page.wait_for_timeout(500)
    assert page.locator("canvas").count() >= 3  # Playwright's CSS locators pierce shadow roots
    assert page.locator("h2", has_text="Region X").count() == 1
    offline_page.screenshot()
    report.assert_clean()
