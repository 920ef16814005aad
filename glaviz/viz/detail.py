"""Full-resolution detail for big scenes in a live map: re-render the visible extent on zoom.

A comparison map of a big scene shows every ``f``-th pixel (:func:`glaviz.viz.layers.
display_data`). In a live notebook, :class:`DetailRenderer` watches the map's view: once the
user zooms in past the overview's own resolution, it reads only the visible window of the scene
at full resolution, colours it the same way and lays it over the overview in the same panes
(so the swipe clips it alike); clicks inside it inspect full-resolution pixels. Zooming back out
removes it. Saved HTML has no kernel and keeps the overview.
"""

from __future__ import annotations

import math
from typing import Any

import geopandas as gpd
import ipyleaflet
import numpy as np
import xarray as xr
from pyproj import Transformer

from glaviz.viz.inspector import Inspector
from glaviz.viz.layers import DisplayData, display_data
from glaviz.viz.render import encode_image

__all__ = ["DetailRenderer"]


class DetailRenderer:
    """Keeps a full-resolution overlay of the visible part of a decimated scene.

    Parameters
    ----------
    m : glaviz.viz.maps.ComparisonMap
        The map (its ``display`` is the overview).
    scene, prediction, reference
        What the map was made from.
    keys : sequence of str
        Layer keys to render in detail (those on the map at first: base, overlay, swipe).
    opacity : float
        Opacity of overlay layers.
    max_size : int, default 1536
        Largest side of a detail image (the visible window is decimated to fit if needed).
    confidence_threshold : float
        As for the overview.
    """

    def __init__(
        self,
        m: Any,
        scene: xr.Dataset,
        prediction: xr.Dataset | None,
        reference: gpd.GeoDataFrame | xr.DataArray | None,
        keys: list[str],
        *,
        opacity: float,
        confidence_threshold: float,
        max_size: int = 1536,
    ) -> None:
        self.m, self.scene, self.prediction, self.reference = m, scene, prediction, reference
        self.keys = [k for k in keys if k in m.display.layers]
        self.opacity, self.max_size = opacity, max_size
        self.confidence_threshold = confidence_threshold
        self.layers: dict[str, ipyleaflet.ImageOverlay] = {}
        self.inspector: Inspector | None = None
        self.data: DisplayData | None = None
        self.window: tuple[int, int, int, int] | None = None
        self._to_scene = Transformer.from_crs(4326, scene.rio.crs, always_xy=True)

    def _window(self, bounds: Any) -> tuple[int, int, int, int] | None:
        (south, west), (north, east) = bounds
        xs, ys = self._to_scene.transform([west, east, west, east], [south, south, north, north])
        inverse = ~self.scene.rio.transform()
        cols, rows = inverse * (np.asarray(xs), np.asarray(ys))
        height, width = self.scene.sizes["y"], self.scene.sizes["x"]
        r0 = max(0, math.floor(min(rows)))
        r1 = min(height, math.ceil(max(rows)))
        c0 = max(0, math.floor(min(cols)))
        c1 = min(width, math.ceil(max(cols)))
        if r1 - r0 < 2 or c1 - c0 < 2:
            return None
        return r0, r1, c0, c1

    def clear(self) -> None:
        """Remove the detail overlays (zoomed out, or outside the scene)."""
        for layer in self.layers.values():
            if layer in self.m.layers:
                self.m.remove(layer)
        self.layers, self.inspector, self.data, self.window = {}, None, None, None

    def update(self, bounds: Any, zoom: float) -> bool:
        """Render the visible window when zoomed in past the overview; True if rendered."""
        if zoom <= self.m.display.grid.native_zoom + 0.25 or not bounds or not bounds[0]:
            self.clear()
            return False
        window = self._window(bounds)
        if window is None:
            self.clear()
            return False
        if window == self.window:
            return True
        r0, r1, c0, c1 = window
        sel = {"y": slice(r0, r1), "x": slice(c0, c1)}
        ref = self.reference
        if isinstance(ref, xr.DataArray):
            ref = ref.isel(sel)
        pred = self.prediction.isel(sel) if self.prediction is not None else None
        data = display_data(
            self.scene.isel(sel),
            pred,
            ref,
            layers=self.keys,
            max_size=self.max_size,
            confidence_threshold=self.confidence_threshold,
        )
        for name in ("row", "col"):  # scene pixels, not window pixels
            offset = r0 if name == "row" else c0
            v = data.values[name]
            data.values[name] = np.where(v >= 0, v + offset, -1).astype(np.int32)
        bounds_ll = data.grid.latlon_bounds
        for key in self.keys:
            layer = data.layers.get(key)
            if layer is None:
                continue
            url = encode_image(layer.image, fmt=layer.fmt)
            if key in self.layers:
                self.layers[key].url, self.layers[key].bounds = url, bounds_ll
                continue
            overlay = ipyleaflet.ImageOverlay(
                url=url,
                bounds=bounds_ll,
                name=f"{layer.name} (full resolution)",
                pane=f"glaviz-{key}",
                opacity=self.opacity if layer.overlay else 1.0,
            )
            self.layers[key] = overlay
            self.m.add(overlay)
        self.data, self.window = data, window
        self.inspector = Inspector.from_display(data)
        return True

    def at_latlon(self, lat: float, lon: float) -> dict[str, Any] | None:
        """Full-resolution values under a point inside the detail window, else None."""
        return self.inspector.at_latlon(lat, lon) if self.inspector is not None else None
