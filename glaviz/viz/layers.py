"""What a comparison map shows: image layers, outlines and inspector values from a scene.

:func:`display_data` reads a scene, an optional prediction and optional reference outlines once
(every ``f``-th pixel for big scenes), resamples them onto one Web Mercator grid and turns them
into coloured images (:class:`ImageLayer`), outlines in EPSG:4326 and the pixel inspector's
value arrays. :mod:`glaviz.viz.maps` puts these on an ipyleaflet map; nothing here needs a
widget or a browser.

Layer keys (each present only when the data has it):

============  ==========================================================================
``rgb``       optical true colour (red, green, blue), 2-98 % stretch
``false``     optical false colour: SWIR1/NIR/red, else NIR/red/green
``co_pol``    SAR co-polarised backscatter (first band), dB stretch
``cross_pol`` SAR cross-polarised backscatter (first band), dB stretch
``coherence`` InSAR coherence (first band), 0-1
``thermal``   thermal band, 2-98 % stretch
``hillshade`` DEM hillshade (sun from the north-west, 45 degrees)
``slope``     DEM slope, 0-60 degrees
``probability`` glacier probability, 0-1 (viridis)
``confidence``  calibrated confidence, 0.5-1 (cividis)
``low_confidence`` pixels with confidence below the threshold
``error``     prediction against the reference: true positive, false positive, false negative
============  ==========================================================================
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import shapely
import xarray as xr
from affine import Affine
from bokeh.palettes import Cividis256, Inferno256, Viridis256

from glaviz.data.outlines import rasterize_outlines
from glaviz.data.scene import group_array, scene_groups
from glaviz.data.terrain import pixel_sizes_m
from glaviz.errors import MissingCRSError
from glaviz.vector import area_km2, to_outlines
from glaviz.viz.render import (
    MercatorGrid,
    classes_rgba,
    decimation,
    gather,
    hillshade,
    palette_rgba,
    percentile_stretch,
)

__all__ = ["ERROR_CLASSES", "LAYER_KEYS", "DisplayData", "ImageLayer", "display_data"]

#: Error classes of the ``error`` layer: value -> (label, colour). Okabe-Ito colours.
ERROR_CLASSES: dict[int, tuple[str, str]] = {
    1: ("true positive (both glacier)", "#0072B2"),
    2: ("false positive (only predicted)", "#E69F00"),
    3: ("false negative (only reference)", "#CC79A7"),
}
#: Outline colours: reference (expert) and predicted.
OUTLINE_COLOURS = {"reference": "#00E5FF", "predicted": "#FF3B30"}
LOW_CONFIDENCE_COLOUR = "#FF00FF"
LAYER_KEYS = (
    "rgb",
    "false",
    "co_pol",
    "cross_pol",
    "coherence",
    "thermal",
    "hillshade",
    "slope",
    "probability",
    "confidence",
    "low_confidence",
    "error",
)
OUTLINE_KEYS = ("reference_outlines", "predicted_outlines")


@dataclass
class ImageLayer:
    """One coloured raster on the display grid.

    Attributes
    ----------
    key : str
        Short name (``"rgb"``, ``"error"``, ...), used by ``layers=`` and ``split=``.
    name : str
        The name shown in the layers control.
    image : numpy.ndarray
        uint8 ``(y, x, 3)`` (photographic, encoded as JPEG) or ``(y, x, 4)`` (PNG with alpha).
    overlay : bool
        True for result layers drawn over the scene (their opacity follows the slider).
    legend : list of (label, css colour or css gradient)
    """

    key: str
    name: str
    image: np.ndarray
    overlay: bool
    legend: list[tuple[str, str]] = field(default_factory=list)

    @property
    def fmt(self) -> Literal["jpeg", "png"]:
        return "jpeg" if self.image.ndim == 3 and self.image.shape[2] == 3 else "png"


@dataclass
class DisplayData:
    """Everything a comparison map draws, on one Web Mercator grid.

    Attributes
    ----------
    grid : MercatorGrid
        The display grid.
    layers : dict of str to ImageLayer
        In drawing order.
    outlines : dict of str to geopandas.GeoDataFrame
        ``reference_outlines`` / ``predicted_outlines`` in EPSG:4326 with ``glacier_id``,
        ``name`` and ``area_km2``.
    values : dict of str to numpy.ndarray
        Inspector arrays on the display grid: ``row``, ``col`` (scene pixel, -1 outside) and
        one array per input band and result.
    labels : dict of str to str
        A readable label for each inspector array.
    factor : int
        Decimation of the scene (1 = every pixel shown).
    """

    grid: MercatorGrid
    layers: dict[str, ImageLayer]
    outlines: dict[str, gpd.GeoDataFrame]
    values: dict[str, np.ndarray]
    labels: dict[str, str]
    factor: int


def _view(da: xr.DataArray, f: int) -> np.ndarray:
    """Every ``f``-th row and column as numpy."""
    if f > 1:
        da = da.isel(y=slice(None, None, f), x=slice(None, None, f))
    return np.asarray(da.values)


def _views(arrays: dict[str, xr.DataArray], f: int) -> dict[str, np.ndarray]:
    """:func:`_view` of several arrays in ONE dask computation: files that feed several arrays
    (a scene's bands and its ``valid`` mask) are read once, and in parallel."""
    import dask

    lazy = {
        k: (v.isel(y=slice(None, None, f), x=slice(None, None, f)) if f > 1 else v).data
        for k, v in arrays.items()
    }
    computed = dask.compute(*lazy.values())
    return {k: np.asarray(v) for k, v in zip(lazy, computed, strict=True)}


def _gradient(colours: list[str] | tuple[str, ...]) -> str:
    stops = ", ".join([*colours[:: max(1, len(colours) // 8)], colours[-1]])
    return f"linear-gradient(to right, {stops})"


def _band(group: xr.DataArray, *names: str) -> int | None:
    bands = [str(b) for b in group["band"].values]
    return next((bands.index(n) for n in names if n in bands), None)


def _check_grid(scene: xr.Dataset, other: xr.Dataset | xr.DataArray, what: str) -> None:
    same = (
        other.sizes.get("y") == scene.sizes["y"]
        and other.sizes.get("x") == scene.sizes["x"]
        and np.allclose(tuple(other.rio.transform())[:6], tuple(scene.rio.transform())[:6])
    )
    if not same:
        raise ValueError(
            f"the {what} is not on the scene's grid (shape {dict(other.sizes)} vs "
            f"{dict(scene.sizes)}); map the scene with glaviz.predict(model, scene) or pass the "
            f"scene the {what} was made from"
        )


def _outline_frame(
    gdf: gpd.GeoDataFrame, tolerance: float, crs: Any, bounds: tuple[float, float, float, float]
) -> gpd.GeoDataFrame:
    """Outlines for display: id, name, whole area; clipped to the scene's ``bounds`` and
    simplified by ``tolerance`` (both in the scene CRS)."""
    gdf = gdf[~(gdf.geometry.is_empty | gdf.geometry.isna())]
    gdf = gdf[gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    out = gpd.GeoDataFrame(
        {
            "glacier_id": gdf["glacier_id"].astype(str).values
            if "glacier_id" in gdf
            else [f"G{i}" for i in range(len(gdf))],
            "name": [
                None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                for v in (gdf["name"] if "name" in gdf else [None] * len(gdf))
            ],
            "area_km2": np.round(area_km2(gdf), 4),
        },
        geometry=gdf.geometry.values,
        crs=gdf.crs,
    ).to_crs(crs)
    out = out.clip(shapely.box(*bounds), keep_geom_type=True)
    if tolerance > 0:
        out["geometry"] = shapely.simplify(out.geometry.values, tolerance, preserve_topology=True)
    out = out.to_crs(4326)
    # 1e-6 degrees is 0.11 m: far below a pixel, and half the GeoJSON size
    out["geometry"] = shapely.transform(out.geometry.values, lambda c: np.round(c, 6))
    return out


def display_data(
    scene: xr.Dataset,
    prediction: xr.Dataset | None = None,
    reference: gpd.GeoDataFrame | xr.DataArray | None = None,
    *,
    layers: Sequence[str] | None = None,
    max_size: int = 2048,
    confidence_threshold: float = 0.95,
) -> DisplayData:
    """Read and colour what a comparison map shows (see the module notes for layer keys).

    Parameters
    ----------
    scene : xarray.Dataset
        A scene from :func:`glaviz.open_scene` (scaled or not).
    prediction : xarray.Dataset, optional
        :func:`glaviz.predict`'s output on the scene's grid.
    reference : geopandas.GeoDataFrame or xarray.DataArray, optional
        Expert outlines (any CRS) or a reference mask on the scene's grid.
    layers : sequence of str, optional
        Keys to build (default: every one the data has); outline keys are
        ``reference_outlines`` and ``predicted_outlines``.
    max_size : int, default 2048
        Largest side of the display grid; bigger scenes are decimated.
    confidence_threshold : float, default 0.95
        Pixels below this calibrated confidence form the ``low_confidence`` layer.

    Returns
    -------
    DisplayData

    Examples
    --------
    >>> from glaviz.data import synthetic_scene
    >>> ds = synthetic_scene(height=48, width=48, seed=0)
    >>> data = display_data(ds, reference=ds["reference_mask"])
    >>> list(data.layers)
    ['rgb', 'false', 'co_pol', 'cross_pol', 'coherence', 'thermal', 'hillshade', 'slope']
    >>> len(data.outlines["reference_outlines"]) > 0
    True
    """
    if scene.rio.crs is None:
        raise MissingCRSError.of("the scene")
    unknown = set(layers or ()) - set(LAYER_KEYS) - set(OUTLINE_KEYS)
    if unknown:
        raise ValueError(
            f"unknown layer(s) {sorted(unknown)}; known: {[*LAYER_KEYS, *OUTLINE_KEYS]}"
        )
    wanted = set(layers) if layers is not None else set(LAYER_KEYS) | set(OUTLINE_KEYS)
    if prediction is not None:
        _check_grid(scene, prediction, "prediction")
    if isinstance(reference, xr.DataArray):
        _check_grid(scene, reference, "reference mask")

    shape = (scene.sizes["y"], scene.sizes["x"])
    f = decimation(shape, max_size)
    transform = scene.rio.transform() * Affine.scale(f)
    view_shape = (math.ceil(shape[0] / f), math.ceil(shape[1] / f))
    grid = MercatorGrid.for_raster(transform, scene.rio.crs, view_shape, max_size=max_size)
    rows, cols = grid.lookup(transform, scene.rio.crs, view_shape)
    inside = rows >= 0

    needed = {g: group_array(scene, g) for g in scene_groups(scene)}
    if "valid" in scene:
        needed["valid"] = scene["valid"]
    for name in ("glacier_probability", "confidence", "glacier_mask"):
        if prediction is not None and name in prediction:
            needed[name] = prediction[name]
    if isinstance(reference, xr.DataArray):
        needed["reference"] = reference
    views = _views(needed, f)
    valid = views["valid"] if "valid" in views else np.ones(view_shape, bool)
    valid_g = gather(valid, rows, cols, fill=False).astype(bool)
    values: dict[str, np.ndarray] = {
        "row": np.where(inside, rows * f, -1).astype(np.int32),
        "col": np.where(inside, cols * f, -1).astype(np.int32),
    }
    labels = {"row": "row", "col": "column"}
    out: dict[str, ImageLayer] = {}

    def photo(
        key: str, name: str, bands: np.ndarray, legend: list[tuple[str, str]] | None = None
    ) -> None:
        if key in wanted:
            rgb = percentile_stretch(bands, valid_g)
            rgb = np.moveaxis(rgb, 0, -1) if rgb.ndim == 3 else np.repeat(rgb[..., None], 3, -1)
            rgb[~valid_g] = 0
            out[key] = ImageLayer(key, name, rgb, overlay=False, legend=legend or [])

    for group in scene_groups(scene):
        arr = group_array(scene, group)
        data = gather(views[group].astype(np.float32), rows, cols)
        data[:, ~valid_g] = np.nan
        names = [str(b) for b in arr["band"].values]
        for i, band in enumerate(names):
            values[f"{group}:{band}"] = data[i]
            labels[f"{group}:{band}"] = f"{group} {band}"
        if group == "optical":
            rgb = [k for n in ("red", "green", "blue") if (k := _band(arr, n)) is not None]
            if len(rgb) == 3:
                photo("rgb", "True colour", data[rgb])
            for combo, label in (
                (("swir1", "nir", "red"), "False colour (SWIR1, NIR, red)"),
                (("nir", "red", "green"), "False colour (NIR, red, green)"),
            ):
                idx = [k for n in combo if (k := _band(arr, n)) is not None]
                if len(idx) == len(combo):
                    photo("false", label, data[idx])
                    break
        elif group in ("co_pol_sar", "cross_pol_sar"):
            key = "co_pol" if group == "co_pol_sar" else "cross_pol"
            db = 10.0 * data[0]  # scenes hold log10(sigma0)
            photo(key, f"SAR {key.replace('_', '-')} ({names[0]}), dB", db)
        elif group == "in_sar" and "coherence" in wanted:
            grey = palette_rgba(data[0], ["#000000", "#ffffff"])[..., :3]
            out["coherence"] = ImageLayer("coherence", f"InSAR coherence ({names[0]})", grey, False)
        elif group == "thermal":
            photo("thermal", f"Thermal ({names[0]})", data[0])
        elif group == "dem":
            elev_i, slope_i = _band(arr, "elevation"), _band(arr, "slope")
            if elev_i is not None and "hillshade" in wanted:
                dx, dy = pixel_sizes_m(arr)
                z = views[group][elev_i].astype(np.float64)
                fill = np.nanmean(z) if np.isfinite(z).any() else 0.0
                shade = hillshade(
                    np.where(np.isfinite(z), z, fill),
                    np.asarray(dx[::f], float)[:, None] * f,
                    np.asarray(dy[::f], float)[:, None] * f,
                )
                shade_g = gather(shade, rows, cols)
                shade_g[~valid_g] = np.nan
                grey = palette_rgba(shade_g, ["#000000", "#ffffff"])[..., :3]
                out["hillshade"] = ImageLayer("hillshade", "DEM hillshade", grey, False)
            if slope_i is not None and "slope" in wanted:
                rgba = palette_rgba(data[slope_i], Inferno256, vmin=0, vmax=60)
                legend = [("slope 0-60 degrees", _gradient(Inferno256))]
                out["slope"] = ImageLayer("slope", "DEM slope", rgba[..., :3], False, legend)

    mask_g = None
    if prediction is not None:
        if "glacier_probability" in prediction:
            prob = gather(views["glacier_probability"].astype(np.float32), rows, cols)
            values["probability"], labels["probability"] = prob, "glacier probability"
            if "probability" in wanted:
                legend = [("glacier probability 0-1", _gradient(Viridis256))]
                rgba = palette_rgba(prob, Viridis256)
                out["probability"] = ImageLayer(
                    "probability", "Glacier probability", rgba, True, legend
                )
        if "confidence" in prediction:
            conf = gather(views["confidence"].astype(np.float32), rows, cols)
            values["confidence"], labels["confidence"] = conf, "confidence"
            if "confidence" in wanted:
                legend = [("confidence 0.5-1", _gradient(Cividis256))]
                rgba = palette_rgba(conf, Cividis256, vmin=0.5, vmax=1.0)
                out["confidence"] = ImageLayer("confidence", "Confidence", rgba, True, legend)
            if "low_confidence" in wanted:
                low = np.where(np.isfinite(conf) & (conf < confidence_threshold), 1, 0)
                rgba = classes_rgba(low, {1: LOW_CONFIDENCE_COLOUR})
                legend = [(f"confidence < {confidence_threshold:g}", LOW_CONFIDENCE_COLOUR)]
                out["low_confidence"] = ImageLayer(
                    "low_confidence", "Low confidence", rgba, True, legend
                )
        if "glacier_mask" in prediction:
            mask_g = gather(views["glacier_mask"], rows, cols, fill=255)
            values["mask"], labels["mask"] = mask_g, "predicted glacier (1) / not (0)"

    ref_mask = None
    outlines: dict[str, gpd.GeoDataFrame] = {}
    tolerance = 0.5 * abs(transform.a)
    if isinstance(reference, gpd.GeoDataFrame | gpd.GeoSeries):
        ref = reference if isinstance(reference, gpd.GeoDataFrame) else reference.to_frame()
        if ref.crs is None:
            raise MissingCRSError.of("the reference outlines", kind="outlines")
        polygonal = ref.geometry.geom_type.isin(["Polygon", "MultiPolygon"])
        ref = ref[polygonal]
        left, bottom, right, top = scene.rio.bounds()
        bbox = gpd.GeoSeries([shapely.box(left, bottom, right, top)], crs=scene.rio.crs)
        ref = ref[ref.intersects(bbox.to_crs(ref.crs).iloc[0])]
        ref_mask = rasterize_outlines(ref, like=scene)
        if "reference_outlines" in wanted:
            outlines["reference_outlines"] = _outline_frame(
                ref, tolerance, scene.rio.crs, scene.rio.bounds()
            )
    elif isinstance(reference, xr.DataArray):
        ref_mask = reference
        if "reference_outlines" in wanted:
            polys = to_outlines(reference if f == 1 else _as_grid(reference, f, transform))
            polys["glacier_id"] = [f"R{i + 1}" for i in range(len(polys))]
            outlines["reference_outlines"] = _outline_frame(
                polys, tolerance, scene.rio.crs, scene.rio.bounds()
            )
    elif reference is not None:
        raise TypeError(
            f"reference must be outlines (GeoDataFrame) or a mask (DataArray), "
            f"not {type(reference).__name__}"
        )
    if ref_mask is not None:
        ref_view = views["reference"] if "reference" in views else _view(ref_mask, f)
        ref_g = gather(ref_view, rows, cols, fill=255)
        values["reference"], labels["reference"] = ref_g, "reference glacier (1) / not (0)"
        if mask_g is not None:
            ok = valid_g & (mask_g != 255) & (ref_g != 255)
            err = np.zeros(mask_g.shape, np.uint8)
            err[ok & (mask_g == 1) & (ref_g == 1)] = 1
            err[ok & (mask_g == 1) & (ref_g == 0)] = 2
            err[ok & (mask_g == 0) & (ref_g == 1)] = 3
            values["error"], labels["error"] = err, "error class"
            if "error" in wanted:
                rgba = classes_rgba(err, {k: c for k, (_, c) in ERROR_CLASSES.items()})
                legend = [(label, colour) for label, colour in ERROR_CLASSES.values()]
                out["error"] = ImageLayer("error", "Error vs reference", rgba, True, legend)

    if prediction is not None and "glacier_mask" in prediction and "predicted_outlines" in wanted:
        pmask = prediction["glacier_mask"]
        polys = to_outlines(pmask if f == 1 else _as_grid(pmask, f, transform))
        polys["glacier_id"] = [f"P{i + 1}" for i in range(len(polys))]
        outlines["predicted_outlines"] = _outline_frame(
            polys, tolerance, scene.rio.crs, scene.rio.bounds()
        )

    order = [k for k in LAYER_KEYS if k in out]
    return DisplayData(grid, {k: out[k] for k in order}, outlines, values, labels, f)


def _as_grid(da: xr.DataArray, f: int, transform: Affine) -> xr.DataArray:
    """The decimated view of a 2-D mask as a DataArray with the decimated transform."""
    arr = _view(da, f)
    h, w = arr.shape
    xs = transform.c + (np.arange(w) + 0.5) * transform.a
    ys = transform.f + (np.arange(h) + 0.5) * transform.e
    out = xr.DataArray(arr, coords={"y": ys, "x": xs}, dims=("y", "x"), name=da.name)
    return out.rio.write_crs(da.rio.crs).rio.write_transform(transform)
