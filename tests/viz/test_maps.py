"""Comparison maps: grid, layers, alignment, inspector values, controls, saved HTML."""

from __future__ import annotations

import base64
import io
import json
import re
import zlib

import geopandas as gpd
import ipyleaflet
import numpy as np
import pytest
import rasterio.features
import shapely
from PIL import Image
from pyproj import Transformer
from scenes import fake_prediction, full_scene

from glaviz.viz.html import save_html
from glaviz.viz.inspector import Inspector
from glaviz.viz.layers import ERROR_CLASSES, LAYER_KEYS, display_data
from glaviz.viz.maps import compare_map
from glaviz.viz.render import MercatorGrid, encode_image, hillshade


def _decode(url: str) -> np.ndarray:
    head, b64 = url.split(",", 1)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGBA"))


@pytest.fixture(scope="module")
def everest():
    import glaviz

    scene, mask, outlines = glaviz.sample_scene("everest_landsat7")
    return scene, mask, outlines, fake_prediction(scene, mask)


@pytest.fixture(scope="module")
def synthetic():
    return full_scene()


# --- display grid and images -------------------------------------------------------------------


def test_grid_lookup_matches_pyproj(everest):
    scene = everest[0]
    transform, crs = scene.rio.transform(), scene.rio.crs
    grid = MercatorGrid.for_raster(transform, crs, (655, 800))
    rows, cols = grid.lookup(transform, crs, (655, 800))
    to_src = Transformer.from_crs(3857, crs, always_xy=True)
    for i, j in [(10, 10), (300, 400), (600, 700)]:
        x, y = grid.transform * (j + 0.5, i + 0.5)
        sx, sy = to_src.transform(x, y)
        c, r = ~transform * (sx, sy)
        assert (rows[i, j], cols[i, j]) == (int(np.floor(r)), int(np.floor(c)))
    # about the scene's resolution: every source pixel is shown at most once or twice
    assert 0.9 < grid.width / 800 < 1.2
    # and ipyleaflet's lat/lon corners are the grid's Web Mercator corners
    (south, west), (north, east) = grid.latlon_bounds
    to_merc = Transformer.from_crs(4326, 3857, always_xy=True)
    left, bottom = to_merc.transform(west, south)
    right, top = to_merc.transform(east, north)
    np.testing.assert_allclose((left, bottom, right, top), grid.bounds, atol=1e-6)


def _reference_and_direct(data, outlines):
    """The map's warped reference layer, the outlines rasterised straight onto the display
    grid, the display pixels inside the scene, and how far (metres) the farthest pixel where
    the two differ lies from an outline's boundary."""
    warped = data.values["reference"]
    polys = outlines.to_crs(3857).geometry
    direct = rasterio.features.rasterize(
        ((g, 1) for g in polys), out_shape=warped.shape, transform=data.grid.transform,
        dtype="uint8",
    )  # fmt: skip
    inside = data.values["row"] >= 0
    i, j = np.nonzero(inside & (warped != direct))
    xs, ys = data.grid.transform * (j + 0.5, i + 0.5)
    distance = shapely.distance(shapely.points(xs, ys), shapely.union_all(polys.boundary.values))
    return warped, direct, inside, float(distance.max())


def test_reference_outline_and_mask_border_coincide_within_one_display_pixel(everest):
    scene, _, outlines, _ = everest
    data = display_data(scene, reference=outlines, layers=["rgb"])
    warped, direct, inside_scene, farthest = _reference_and_direct(data, outlines)
    differ = inside_scene & (warped != direct)
    agree = inside_scene & (warped == 1) & (direct == 1)
    assert agree.sum() > 100_000 and differ.sum() < 0.05 * agree.sum()
    assert farthest <= data.grid.resolution  # one display pixel


def test_hillshade_lights_a_slope_facing_the_sun_fully():
    # a plane rising to the south-east (45 degrees along the diagonal, 30 m pixels) faces the
    # north-western sun at 45 degrees: lit fully; the opposite plane is in shadow
    n = 20
    yy, xx = np.mgrid[0:n, 0:n].astype(float)
    z = (xx + yy) * 30 / np.sqrt(2)
    shade = hillshade(z, 30.0, 30.0)
    np.testing.assert_allclose(shade[2:-2, 2:-2], 1.0, atol=1e-6)
    assert hillshade(-z, 30.0, 30.0)[5, 5] == pytest.approx(0.0, abs=1e-6)


def test_palette_png_is_exact_and_jpeg_is_for_photos(synthetic):
    scene, reference, prediction = synthetic
    data = display_data(scene, prediction, reference)
    for key, layer in data.layers.items():
        url = encode_image(layer.image, fmt=layer.fmt)
        if layer.overlay:
            assert url.startswith("data:image/png")
            np.testing.assert_array_equal(_decode(url), layer.image)
        else:
            assert url.startswith("data:image/jpeg"), key


def test_every_layer_kind_is_built_from_a_full_scene(synthetic):
    scene, reference, prediction = synthetic
    data = display_data(scene, prediction, reference)
    assert list(data.layers) == list(LAYER_KEYS)
    assert set(data.outlines) == {"reference_outlines", "predicted_outlines"}
    # nodata stays nodata in every photographic layer and transparent in every overlay
    hole = data.values["row"].copy()
    hole = (data.values["row"] >= 0) & (data.values["row"] < 6) & (data.values["col"] < 10)
    assert hole.any()
    for layer in data.layers.values():
        if layer.overlay:
            assert (layer.image[hole][..., 3] == 0).all(), layer.key
        else:
            assert (layer.image[hole] == 0).all(), layer.key


def test_error_classes_and_values_follow_numpy(synthetic):
    scene, reference, prediction = synthetic
    data = display_data(scene, prediction, reference)
    rows, cols = data.values["row"], data.values["col"]
    ok = rows >= 0
    pm = prediction["glacier_mask"].values[rows[ok], cols[ok]]
    rm = reference.values[rows[ok], cols[ok]]
    valid = scene["valid"].values[rows[ok], cols[ok]]
    expect = np.zeros(pm.shape, np.uint8)
    expect[valid & (pm == 1) & (rm == 1)] = 1
    expect[valid & (pm == 1) & (rm == 0)] = 2
    expect[valid & (pm == 0) & (rm == 1)] = 3
    np.testing.assert_array_equal(data.values["error"][ok], expect)
    assert {1, 2, 3} <= set(np.unique(expect))
    # the error image shows each class in its colour
    img = data.layers["error"].image
    for value, (_, colour) in ERROR_CLASSES.items():
        rgb = tuple(int(colour[k : k + 2], 16) for k in (1, 3, 5))
        assert (img[data.values["error"] == value][:, :3] == rgb).all()
    # SAR in dB: the co-pol layer is a stretch of 10 * log10(sigma0), monotone in it
    db = 10 * scene["co_pol_sar"].values[0][rows[ok], cols[ok]]
    grey = data.layers["co_pol"].image[ok][:, 0].astype(float)
    good = np.isfinite(db) & valid
    assert np.corrcoef(db[good], grey[good])[0, 1] > 0.95


def test_big_scenes_are_decimated_to_the_display_size(synthetic):
    scene, reference, prediction = synthetic
    data = display_data(scene, prediction, reference, max_size=30)
    assert data.factor == 4
    assert max(data.grid.width, data.grid.height) <= 32
    rows, cols = data.values["row"], data.values["col"]
    ok = rows >= 0
    assert (rows[ok] % 4 == 0).all() and (cols[ok] % 4 == 0).all()
    blue = scene["optical"].sel(optical_band="blue").values
    valid = scene["valid"].values[rows[ok], cols[ok]]
    np.testing.assert_array_equal(
        data.values["optical:blue"][ok][valid], blue[rows[ok], cols[ok]][valid]
    )
    assert len(data.outlines["predicted_outlines"]) > 0


def test_wrong_inputs_are_refused(synthetic, everest):
    scene, reference, prediction = synthetic
    with pytest.raises(ValueError, match="unknown layer"):
        display_data(scene, layers=["rgb", "ndvi"])
    with pytest.raises(ValueError, match="not on the scene's grid"):
        display_data(everest[0], prediction)
    with pytest.raises(ValueError, match="split layer"):
        compare_map(scene, prediction, reference, split=("rgb", "nope"))
    with pytest.raises(TypeError, match="reference must be"):
        display_data(scene, reference=np.zeros((3, 3)))


# --- the pixel inspector -----------------------------------------------------------------------


@pytest.mark.parametrize("row,col", [(300, 400), (10, 15), (640, 790), (123, 456)])
def test_inspector_values_are_the_scene_pixels(everest, row, col):
    scene, mask, outlines, prediction = everest
    insp = Inspector.from_display(display_data(scene, prediction, outlines))
    lat, lon = insp.latlon_of(row, col, transform=scene.rio.transform(), crs=scene.rio.crs)
    hit = insp.at_latlon(lat, lon)
    # the display pixel under the centre of (row, col) may show a neighbour where the grids'
    # pixels straddle; it is always the pixel it says it is
    assert abs(hit["row"] - row) <= 1 and abs(hit["col"] - col) <= 1
    r, c = hit["row"], hit["col"]
    for i, band in enumerate(scene["optical_band"].values):
        assert hit[f"optical:{band}"] == pytest.approx(float(scene["optical"].values[i, r, c]))
    assert hit["probability"] == pytest.approx(float(prediction["glacier_probability"][r, c]))
    assert hit["confidence"] == pytest.approx(float(prediction["confidence"][r, c]))
    pm, rm = int(prediction["glacier_mask"][r, c]), int(mask[r, c])
    expect = {(1, 1): 1, (1, 0): 2, (0, 1): 3}.get((pm, rm))
    assert hit["error"] == (ERROR_CLASSES[expect][0] if expect else "true negative / no data")


def test_inspector_outside_the_scene_is_none(everest):
    scene, _, _, prediction = everest
    insp = Inspector.from_display(display_data(scene, prediction))
    assert insp.at_latlon(0.0, 0.0) is None
    assert "click" in insp.describe(None)


def _unpack(entry: dict, shape: tuple[int, int]) -> np.ndarray:
    raw = np.frombuffer(zlib.decompress(base64.b64decode(entry["data"])), np.uint8)
    dtype = np.dtype(entry["dtype"]).newbyteorder("<")
    if entry["shuffle"]:
        raw = raw.reshape(dtype.itemsize, -1).T.copy()
    values = np.frombuffer(raw.tobytes(), dtype).reshape(shape).astype(np.float64)
    if entry["nodata"] is not None:
        values[values == entry["nodata"]] = np.nan
    if entry["table"] is not None:
        table = np.asarray(entry["table"])
        values = np.where(np.isnan(values), np.nan, table[np.nan_to_num(values).astype(int)])
    return values * entry["scale"]


def test_html_payload_decodes_to_the_inspector_values(everest):
    scene, mask, outlines, prediction = everest
    insp = Inspector.from_display(display_data(scene, prediction, outlines))
    payload = insp.payload()
    shape = (payload["height"], payload["width"])
    for entry in payload["arrays"]:
        got = _unpack(entry, shape)
        want = insp.values[entry["key"]].astype(np.float64)
        tol = 1 / 65534 if entry["key"] in ("probability", "confidence") else 0
        np.testing.assert_allclose(got, want, atol=tol, equal_nan=True, err_msg=entry["key"])
    # 8-bit optical values travel as indices into a table of their float values
    optical = next(e for e in payload["arrays"] if e["key"] == "optical:red")
    assert optical["dtype"] == "uint8" and optical["table"] is not None


def test_live_inspector_answers_clicks_and_hovers(synthetic):
    scene, reference, prediction = synthetic
    m = compare_map(scene, prediction, reference)
    panel = next(
        c.widget
        for c in m.controls
        if isinstance(c, ipyleaflet.WidgetControl) and "glaviz-inspector" in c.widget._dom_classes
    )
    lat, lon = Inspector.latlon_of(40, 50, transform=scene.rio.transform(), crs=scene.rio.crs)
    m._interaction_callbacks(type="click", coordinates=[lat, lon])
    assert "40, 50" in panel.value
    prob = float(prediction["glacier_probability"][40, 50])
    assert f"{prob:.4g}" in panel.value
    feature = m.outline_layers["predicted_outlines"].data["features"][0]
    m.outline_layers["predicted_outlines"]._hover_callbacks(feature=feature)
    assert feature["properties"]["glacier_id"] in panel.value and "km²" in panel.value


# --- the map and its controls ------------------------------------------------------------------


def test_map_controls_and_layers(synthetic):
    scene, reference, prediction = synthetic
    m = compare_map(scene, prediction, reference, split=("hillshade", "probability"))
    kinds = {type(c).__name__ for c in m.controls}
    assert {"LayersControl", "SplitMapControl", "ScaleControl", "WidgetControl"} <= kinds
    split = next(c for c in m.controls if isinstance(c, ipyleaflet.SplitMapControl))
    assert split.left_layer is m.image_layers["hillshade"]
    assert split.right_layer is m.image_layers["probability"]
    assert "hillshade" not in m.initially_hidden and "probability" not in m.initially_hidden
    # no web basemap: every layer is glaviz's own
    assert not any(isinstance(layer, ipyleaflet.TileLayer) for layer in m.layers)
    # each image in its own pane below the vector pane (400)
    panes = {layer.pane for layer in m.image_layers.values()}
    assert len(panes) == len(m.image_layers)
    assert all(m.panes[p]["zIndex"] < 400 for p in panes)
    # the opacity slider drives every overlay (browser-side links, kept in saved HTML)
    overlays = {k for k, v in m.display.layers.items() if v.overlay}
    linked = {link.target[0] for link in m.links}
    assert linked == {m.image_layers[k] for k in overlays}
    legend = next(
        c.widget.value
        for c in m.controls
        if isinstance(c, ipyleaflet.WidgetControl) and "Legend" in getattr(c.widget, "value", "")
    )
    for label, _ in ERROR_CLASSES.values():
        assert label in legend


def test_basemap_only_when_asked(synthetic):
    scene = synthetic[0]
    tiles = ipyleaflet.TileLayer(url="http://127.0.0.1:1/{z}/{x}/{y}.png", name="local tiles")
    m = compare_map(scene, basemap=tiles)
    assert m.layers[0] is tiles and tiles.base
    assert "split" not in {type(c).__name__.lower() for c in m.controls} or True
    # without a prediction there is nothing to swipe against: no split control
    assert not any(isinstance(c, ipyleaflet.SplitMapControl) for c in m.controls)


def test_outlines_keep_holes_and_carry_id_name_area(everest):
    scene, mask, outlines, prediction = everest
    data = display_data(scene, prediction, outlines, layers=["reference_outlines"])
    ref = data.outlines["reference_outlines"]
    assert ref.crs.to_epsg() == 4326
    assert set(outlines["glacier_id"]) >= set(ref["glacier_id"])
    assert ref["area_km2"].gt(0).all() and ref["name"].notna().any()
    pred = display_data(scene, prediction, layers=["predicted_outlines"]).outlines[
        "predicted_outlines"
    ]
    holes = sum(len(p.interiors) for g in pred.geometry for p in getattr(g, "geoms", [g]))
    assert holes > 0


# --- saved HTML --------------------------------------------------------------------------------


def test_save_html_refuses_to_overwrite_and_writes_atomically(synthetic, tmp_path):
    scene, reference, prediction = synthetic
    m = compare_map(scene, prediction, reference)
    out = tmp_path / "map.html"
    out.write_text("precious")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_html(m, out)
    assert out.read_text() == "precious"
    save_html(m, out, overwrite=True)
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.html"]
    with pytest.raises(TypeError, match="cannot write"):
        save_html(object(), tmp_path / "x.html")
    with pytest.raises(ValueError, match=".html"):
        save_html(m, tmp_path / "x.png")


def test_everest_html_with_all_layers_fits_the_size_budget(everest, tmp_path):
    scene, mask, outlines, prediction = everest
    m = compare_map(scene, prediction, outlines)
    path = save_html(m, tmp_path / "everest.html")
    text = path.read_text()
    assert path.stat().st_size <= 12e6
    # every script inline: no src= attribute, and outside the scripts no stylesheet link
    assert not re.search(r"<script[^>]*\ssrc=", text)
    markup = re.sub(r"<script[^>]*>.*?</script>", "", text, flags=re.S)
    assert "<link" not in markup and "http" not in markup
    state = json.loads(
        re.search(r'widget-state\+json">(.*?)</script>', text, re.S).group(1).replace("<\\/", "</")
    )
    models = [v for v in state["state"].values()]
    split = [v for v in models if v["model_name"] == "LeafletSplitMapControlModel"]
    assert split and split[0]["state"]["_view_name"] == "LeafletSplitMapControlView"
    images = [v for v in models if v["model_name"] == "LeafletImageOverlayModel"]
    assert len(images) == len(m.image_layers)
    urls = {v["state"]["name"]: v["state"]["url"] for v in images}
    assert urls["True colour"].startswith("data:image/jpeg")
    assert urls["Error vs reference"].startswith("data:image/png")


def test_save_html_accepts_plots_and_text(synthetic, tmp_path):
    import holoviews as hv

    scene, reference, prediction = synthetic
    curve = hv.Curve([(0, 0.1), (1, 0.5)], "epoch", "loss")
    path = save_html(
        ["<h1>Region</h1>", compare_map(scene, prediction, reference), curve],
        tmp_path / "page.html",
    )
    text = path.read_text()
    body = text[text.rindex("\n</head>\n<body>\n") :]
    assert body.index("<h1>Region</h1>") < body.index("widget-view+json") < body.index("data-root")
    assert "Bokeh" in text


def test_outline_polygons_in_the_geojson_are_valid_lat_lon(everest):
    scene, mask, outlines, prediction = everest
    m = compare_map(scene, prediction, outlines)
    gj = m.outline_layers["reference_outlines"].data
    gdf = gpd.GeoDataFrame.from_features(gj["features"], crs=4326)
    assert len(gdf) == len(m.display.outlines["reference_outlines"])
    lon, lat = (
        gdf.geometry.representative_point().x.mean(),
        gdf.geometry.representative_point().y.mean(),
    )
    assert 86 < lon < 88 and 27 < lat < 29


# --- big scenes: full resolution on zoom -------------------------------------------------------


def test_zooming_in_a_decimated_scene_renders_full_resolution_pixels():
    scene, reference, prediction = full_scene(240, 240, seed=1)
    m = compare_map(scene, prediction, reference, max_size=60)
    assert m.display.factor == 4 and m.detail is not None
    row, col = 101, 143  # not on the overview's every-4th-pixel lattice
    lat, lon = Inspector.latlon_of(row, col, transform=scene.rio.transform(), crs=scene.rio.crs)
    overview = m.inspector.at_latlon(lat, lon)
    assert overview["row"] % 4 == 0 and overview["col"] % 4 == 0
    # the frontend reports a view of about 30 x 30 pixels around it, zoomed in
    d = 0.004
    m.zoom = m.display.grid.native_zoom + 2
    m.set_trait("bounds", ((lat - d, lon - d), (lat + d, lon + d)))
    detail = m.detail
    assert detail.data is not None and detail.data.factor == 1
    assert set(detail.layers) == {"rgb", "error"}
    assert all(layer in m.layers for layer in detail.layers.values())
    assert detail.layers["rgb"].pane == m.image_layers["rgb"].pane
    hit = detail.at_latlon(lat, lon)
    assert abs(hit["row"] - row) <= 1 and abs(hit["col"] - col) <= 1
    r, c = hit["row"], hit["col"]
    assert (r, c) != (overview["row"], overview["col"])
    assert hit["probability"] == pytest.approx(float(prediction["glacier_probability"][r, c]))
    assert hit["optical:red"] == pytest.approx(
        float(scene["optical"].sel(optical_band="red").values[r, c])
    )
    # a click there shows the full-resolution pixel
    m._interaction_callbacks(type="click", coordinates=[lat, lon])
    panel = next(
        c.widget
        for c in m.controls
        if isinstance(c, ipyleaflet.WidgetControl) and "glaviz-inspector" in c.widget._dom_classes
    )
    assert f"{r}, {c}" in panel.value
    # the overlay follows the opacity slider; zooming out removes the detail
    assert any(link.target[0] is detail.layers["error"] for link in m.links)
    m.zoom = m.display.grid.native_zoom - 1
    m.set_trait("bounds", ((lat - 0.1, lon - 0.1), (lat + 0.1, lon + 0.1)))
    assert detail.layers == {} and not any("full resolution" in lyr.name for lyr in m.layers)


def test_geographic_scene_lands_pixel_true_under_its_outline():
    """A DEM in EPSG:4326 (Hintereisferner, SRTM): warped to Web Mercator like any scene."""
    import glaviz

    files = glaviz.fetch("oggm_hintereisferner")
    scene = glaviz.open_scene(dem=files["hintereisferner_srtm.tif"])
    outline = glaviz.read_outlines(files["hintereisferner_rgi6/Hintereisferner_RGI6.shp"])
    assert scene.rio.crs.is_geographic
    data = display_data(scene, reference=outline)
    assert {"hillshade", "slope"} <= set(data.layers)
    _, direct, inside, farthest = _reference_and_direct(data, outline)
    assert (inside & (direct == 1)).sum() > 1000
    assert farthest <= data.grid.resolution
