"""The comparison map: a scene, the model's output and expert outlines on one ipyleaflet map.

:func:`compare_map` returns a plain (subclassed) ``ipyleaflet.Map``: keep adding layers and
controls to it, display it in JupyterLab, or write it to one offline HTML file with
:func:`glaviz.viz.html.save_html`. No web basemap by default: the scene is the base layer, so the
map works where there is no internet.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import ipyleaflet
import ipywidgets
import xarray as xr

from glaviz.viz.detail import DetailRenderer
from glaviz.viz.html import REPORT_ENV, map_data_script
from glaviz.viz.inspector import Inspector
from glaviz.viz.layers import OUTLINE_COLOURS, DisplayData, display_data
from glaviz.viz.render import EARTH_RADIUS, encode_image

__all__ = ["ComparisonMap", "compare_map"]

DEFAULT_SPLIT = ("rgb", "error")
#: Screen size the initial zoom fits the scene into (pixels).
_FIT = (900, 560)


class ComparisonMap(ipyleaflet.Map):
    """An ``ipyleaflet.Map`` that also remembers what glaviz put on it.

    Attributes
    ----------
    image_layers : dict of str to ipyleaflet.ImageOverlay
        By layer key (``"rgb"``, ``"error"``, ...).
    outline_layers : dict of str to ipyleaflet.GeoJSON
        ``reference_outlines`` / ``predicted_outlines``.
    inspector : Inspector
        The values a click shows; :func:`save_html` embeds them for offline clicks.
    display : DisplayData
        The resampled images and values behind the layers.
    links : list of ipywidgets.Link
        Browser-side links (opacity slider to overlays) that saved HTML must keep.
    initially_hidden : list of str
        Layer keys that saved HTML switches off at first (still listed in the layers control).
        The two swiped layers are drawn by the swipe control, not listed there.
    detail : DetailRenderer or None
        For decimated scenes: the full-resolution overlay of the visible window that a live
        map renders when zoomed in (None when every pixel is already shown).
    """

    image_layers: dict[str, ipyleaflet.ImageOverlay]
    outline_layers: dict[str, ipyleaflet.GeoJSON]
    inspector: Inspector
    display: DisplayData
    links: list[Any]
    initially_hidden: list[str]
    detail: DetailRenderer | None

    def _ipython_display_(self) -> None:
        """The widget; inside a report's kernel also the inspector data for the HTML."""
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)
        if os.environ.get(REPORT_ENV):
            display({"text/html": map_data_script([self])}, raw=True)


def _legend_item(label: str, swatch_css: str) -> str:
    swatch = f"display:inline-block;width:14px;margin-right:4px;{swatch_css}"
    return (
        '<div class="glaviz-legend-item" style="line-height:13px">'
        f'<span class="glaviz-swatch" style="{swatch}"></span>{label}</div>'
    )


def _legend_html(data: DisplayData, outlines: Sequence[str]) -> str:
    items = []
    for layer in data.layers.values():
        for label, colour in layer.legend:
            width = "60px" if "gradient" in colour else "14px"
            items.append(_legend_item(label, f"height:10px;width:{width};background:{colour}"))
    for key in outlines:
        colour = OUTLINE_COLOURS[key.split("_")[0]]
        label = (
            "expert (reference) outlines" if key == "reference_outlines" else "predicted outlines"
        )
        items.append(_legend_item(label, f"height:0;border-top:2px solid {colour}"))
    style = "font-size:10px;line-height:12px;max-height:40vh;overflow:auto"
    return f'<div class="glaviz-legend" style="{style}"><b>Legend</b>' + "".join(items) + "</div>"


def _initial_view(data: DisplayData) -> tuple[tuple[float, float], float]:
    (south, west), (north, east) = data.grid.latlon_bounds
    left, bottom, right, top = data.grid.bounds
    world = 2 * math.pi * EARTH_RADIUS
    zooms = [
        math.log2(world * screen / (256 * max(extent, 1e-6)))
        for screen, extent in zip(_FIT, (right - left, top - bottom), strict=True)
    ]
    zoom = math.floor(min(zooms) * 4) / 4  # quarter steps: the scene fills the view
    return ((south + north) / 2, (west + east) / 2), max(0.0, min(18.0, zoom))


def compare_map(
    scene: xr.Dataset,
    prediction: xr.Dataset | None = None,
    reference: gpd.GeoDataFrame | xr.DataArray | None = None,
    *,
    layers: Sequence[str] | None = None,
    split: tuple[str, str] | None = DEFAULT_SPLIT,
    basemap: ipyleaflet.TileLayer | Mapping[str, Any] | None = None,
    opacity: float = 0.7,
    max_size: int = 2048,
    confidence_threshold: float = 0.95,
    height: str = "600px",
) -> ComparisonMap:
    """An interactive map comparing a scene, a prediction and reference outlines.

    Every layer the data allows is built and listed in a layers control (see
    :mod:`glaviz.viz.layers` for the keys): true and false colour, SAR, DEM hillshade and
    slope, glacier probability, confidence and its low-confidence pixels, the error map against
    the reference, and reference and predicted outlines (hover shows glacier id, name and area).
    A split (swipe) control compares two layers; a legend, a scale bar, an opacity slider for
    the result overlays and a pixel inspector (click: row/column, lat/lon, band values,
    probability, confidence, error class) complete it.

    Rasters in any CRS are resampled onto a Web Mercator grid (nearest neighbour) so that they
    land pixel-true under the outlines. Scenes with a side over ``max_size`` are shown every
    ``f``-th pixel (``map.display.factor``).

    Parameters
    ----------
    scene : xarray.Dataset
        A scene from :func:`glaviz.open_scene`, scaled or not.
    prediction : xarray.Dataset, optional
        :func:`glaviz.predict`'s output on the scene's grid.
    reference : geopandas.GeoDataFrame or xarray.DataArray, optional
        Expert outlines (any CRS; shown clipped to the scene, with each glacier's whole area)
        or a reference mask.
    layers : sequence of str, optional
        Only these layer keys (default: all the data has).
    split : (str, str) or None, default ("rgb", "error")
        Layer keys on the left and right of the swipe control; None for no swipe. With the
        default, a missing key falls back to the first base layer and the topmost overlay.
    basemap : xyzservices.TileProvider or ipyleaflet.TileLayer, optional
        A web basemap under the scene (needs internet). None: no basemap (works offline).
    opacity : float, default 0.7
        Initial opacity of the result overlays (the slider changes it).
    max_size : int, default 2048
        Largest side of the display images.
    confidence_threshold : float, default 0.95
        Confidence below which pixels form the low-confidence layer.
    height : str, default "600px"
        CSS height of the map.

    Returns
    -------
    ComparisonMap
        An ``ipyleaflet.Map``; keep adding to it, display it, or save it with
        :func:`glaviz.save_html`.

    Examples
    --------
    >>> from glaviz.data import synthetic_scene
    >>> ds = synthetic_scene(height=48, width=48, seed=0)
    >>> m = compare_map(ds, reference=ds["reference_mask"])
    >>> sorted(m.image_layers)[:3], list(m.outline_layers)
    (['co_pol', 'coherence', 'cross_pol'], ['reference_outlines'])
    >>> m.inspector.at_latlon(*m.center)["row"] >= 0
    True
    """
    if not 0 <= opacity <= 1:
        raise ValueError(f"opacity must be between 0 and 1, got {opacity}")
    data = display_data(
        scene,
        prediction,
        reference,
        layers=layers,
        max_size=max_size,
        confidence_threshold=confidence_threshold,
    )
    if not data.layers:
        raise ValueError(
            "nothing to show: the scene has no optical, SAR or DEM group and there is no "
            "prediction; pass a scene from glaviz.open_scene or a prediction"
        )
    bounds = data.grid.latlon_bounds
    center, zoom = _initial_view(data)
    base_keys = [k for k, layer in data.layers.items() if not layer.overlay]
    overlay_keys = [k for k, layer in data.layers.items() if layer.overlay]
    shown_overlay = next((k for k in ("error", "probability") if k in overlay_keys), None)
    shown = base_keys[:1] + ([shown_overlay] if shown_overlay else [])
    # Drawing order: the layers shown at first on top of their kind (bases under overlays);
    # each image has its own pane below Leaflet's vector pane (400), which the swipe needs.
    order = [k for k in base_keys if k not in shown] + base_keys[:1]
    order += [k for k in overlay_keys if k != shown_overlay]
    order += [shown_overlay] if shown_overlay else []
    panes = {f"glaviz-{key}": {"zIndex": 210 + i} for i, key in enumerate(order)}
    images: dict[str, ipyleaflet.ImageOverlay] = {}
    for key in order:
        layer = data.layers[key]
        images[key] = ipyleaflet.ImageOverlay(
            url=encode_image(layer.image, fmt=layer.fmt),
            bounds=bounds,
            name=layer.name,
            pane=f"glaviz-{key}",
            opacity=opacity if layer.overlay else 1.0,
            base=not layer.overlay,
        )

    outline_layers: dict[str, ipyleaflet.GeoJSON] = {}
    for key, gdf in data.outlines.items():
        colour = OUTLINE_COLOURS[key.split("_")[0]]
        empty = {"type": "FeatureCollection", "features": []}
        outline_layers[key] = ipyleaflet.GeoJSON(
            data=gdf.__geo_interface__ if len(gdf) else empty,
            name="Expert outlines" if key == "reference_outlines" else "Predicted outlines",
            style={"color": colour, "weight": 2, "fillOpacity": 0.0, "opacity": 1.0},
            hover_style={"weight": 4, "fillOpacity": 0.1},
        )

    # The two swiped layers belong to the swipe control (ipyleaflet draws them there); on the
    # map as well they would be drawn twice.
    swipe = _split_keys(data, split, shown_overlay)
    initial = [images[k] for k in order if k not in (swipe or ())]
    initial += list(outline_layers.values())
    if basemap is not None:
        tiles = basemap if isinstance(basemap, ipyleaflet.TileLayer) else None
        tiles = tiles or ipyleaflet.basemap_to_tiles(basemap)
        tiles.base = True
        initial.insert(0, tiles)

    m = ComparisonMap(
        center=center,
        zoom=zoom,
        layers=tuple(initial),
        panes=panes,
        scroll_wheel_zoom=True,
        zoom_snap=0.25,
        zoom_delta=0.5,
        max_zoom=22,
        layout=ipywidgets.Layout(height=height, width="100%"),
    )
    m.add_class("glaviz-map")
    m.add_class(f"glaviz-map-{m.model_id}")
    m.image_layers, m.outline_layers, m.display = images, outline_layers, data
    m.inspector = Inspector.from_display(data)
    #: keys switched off at first in saved HTML (a live map shows them all, stacked)
    m.initially_hidden = [k for k in order if k not in shown and k not in (swipe or ())]
    m.links = []
    m.add(ipyleaflet.LayersControl(position="topright", collapsed=False))
    if swipe:
        left, right = (images[k] for k in swipe)
        m.add(ipyleaflet.SplitMapControl(left_layer=left, right_layer=right))

    legend = ipywidgets.HTML(_legend_html(data, list(outline_layers)))
    m.add(ipyleaflet.WidgetControl(widget=legend, position="bottomright"))
    m.add(ipyleaflet.ScaleControl(position="bottomleft", imperial=False))
    slider = None
    if overlay_keys:
        slider = ipywidgets.FloatSlider(
            value=opacity,
            min=0.0,
            max=1.0,
            step=0.05,
            description="overlays",
            readout_format=".2f",
            layout=ipywidgets.Layout(width="230px"),
        )
        slider.add_class("glaviz-opacity")
        for key in overlay_keys:
            m.links.append(ipywidgets.jslink((slider, "value"), (images[key], "opacity")))
        m.add(ipyleaflet.WidgetControl(widget=slider, position="topleft"))
    panel = ipywidgets.HTML(m.inspector.describe(None))
    panel.add_class("glaviz-inspector")
    m.add(ipyleaflet.WidgetControl(widget=panel, position="topleft"))

    m.detail = None
    if data.factor > 1:
        keys = list(dict.fromkeys([*shown, *(swipe or ())]))
        detail = m.detail = DetailRenderer(
            m,
            scene,
            prediction,
            reference,
            keys,
            opacity=opacity,
            confidence_threshold=confidence_threshold,
        )

        def on_view(change: dict[str, Any]) -> None:
            added = set(detail.layers)
            detail.update(m.bounds, m.zoom)
            for key in set(detail.layers) - added:
                if m.display.layers[key].overlay and slider is not None:
                    link = ipywidgets.jslink((slider, "value"), (detail.layers[key], "opacity"))
                    m.links.append(link)

        m.observe(on_view, names=["bounds"])

    def on_interaction(**event: Any) -> None:
        if event.get("type") == "click":
            lat, lon = event["coordinates"]
            hit = m.detail.at_latlon(lat, lon) if m.detail is not None else None
            panel.value = m.inspector.describe(hit or m.inspector.at_latlon(lat, lon))

    def on_hover(feature: dict[str, Any], **_: Any) -> None:
        props = feature.get("properties", {})
        panel.value = (
            f"<b>{props.get('glacier_id', '')}</b> {props.get('name') or ''}<br>"
            f"area {props.get('area_km2', float('nan')):.3f} km²"
        )

    m.on_interaction(on_interaction)
    for layer in outline_layers.values():
        layer.on_hover(on_hover)
    return m


def _split_keys(
    data: DisplayData, split: tuple[str, str] | None, overlay: str | None
) -> tuple[str, str] | None:
    """The layer keys to swipe between, or None for no swipe control."""
    if split is None:
        return None
    left, right = split
    if tuple(split) == DEFAULT_SPLIT:
        base = next((k for k, v in data.layers.items() if not v.overlay), None)
        left_key = left if left in data.layers else base
        right_key = right if right in data.layers else overlay
        if left_key is None or right_key is None or left_key == right_key:
            return None
        left, right = left_key, right_key
    missing = [k for k in (left, right) if k not in data.layers]
    if missing:
        raise ValueError(
            f"split layer(s) {missing} are not on this map; available: {list(data.layers)}"
        )
    return left, right
