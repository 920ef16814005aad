"""Holoviews figures of glaviz results: calibration, scores, glaciers, training, confidence, scenes.

Each function takes what another glaviz function returns (a table or a prediction Dataset) and
gives back a holoviews object with its bokeh options set: nothing is displayed and no network is
needed. Show it in a notebook, compose it with ``+`` and ``*``, change it with ``.opts(...)``,
or write it into an offline HTML file with :func:`glaviz.viz.save_html`.

=============================  ==============================================================
:func:`reliability_diagram`    :func:`glaviz.evaluation.reliability` tables, ECE before/after
:func:`metric_bars`            :func:`glaviz.evaluate`'s table, one bar group per region
:func:`glacier_deviations`     :func:`glaviz.compare_outlines`'s table against expert bands
:func:`training_history`       the history :func:`glaviz.fit` returns
:func:`confidence_histogram`   a prediction of :func:`glaviz.predict` (dask stays lazy)
:func:`thumbnail_grid`         the table of :func:`glaviz.predict_many`, read decimated
=============================  ==============================================================
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import rasterio
import xarray as xr
from rasterio.enums import Resampling

from glaviz.calibration import binary_confidence, ece_from_table

__all__ = [
    "confidence_histogram",
    "glacier_deviations",
    "metric_bars",
    "reliability_diagram",
    "thumbnail_grid",
    "training_history",
]

_BARE = {"xaxis": None, "yaxis": None, "toolbar": None}  # thumbnails: no axes, no tools
_WITHIN, _OUTSIDE = "within expert uncertainty", "outside expert uncertainty"
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd")
#: Curve labels of the training history (the live plot in glaviz.train.live uses the same).
_LABELS = {
    "train_loss": "train loss",
    "val_loss": "validation loss",
    "val_iou": "validation IoU",
    "val_iou_unknown": "validation IoU (unknown region)",
}


def _bokeh() -> None:
    """Register holoviews' bokeh options (once). Inside a notebook kernel, also load the
    notebook extension with BokehJS inlined, so that plots show with no network."""
    if "bokeh" not in hv.Store.renderers:
        import holoviews.plotting.bokeh  # noqa: F401
    if not getattr(_bokeh, "loaded", False) and _in_kernel():
        hv.extension("bokeh", inline=True, logo=False)
        _bokeh.loaded = True  # type: ignore[attr-defined]


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


def _require(table: Any, columns: Sequence[str], what: str, source: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{what}: expected a pandas DataFrame from {source}, got {type(table)}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise KeyError(
            f"{what}: the table has no column(s) {missing} (columns: {list(table.columns)}); "
            f"pass the table {source} returns"
        )


# --------------------------------------------------------------------------- calibration


def _reliability(table: Any, name: str) -> pd.DataFrame:
    if isinstance(table, tuple) and len(table) == 2:  # glaviz.evaluation.reliability's result
        table = table[0]
    source = "glaviz.evaluation.reliability (or calibration.reliability_table)"
    _require(table, ["count", "confidence", "accuracy"], f"reliability_diagram({name})", source)
    return table


def reliability_diagram(
    before: pd.DataFrame | tuple[pd.DataFrame, float],
    after: pd.DataFrame | tuple[pd.DataFrame, float] | None = None,
    *,
    title: str | None = None,
) -> hv.Overlay:
    """Observed accuracy against mean confidence per bin, with the diagonal and the ECE.

    Parameters
    ----------
    before : pandas.DataFrame or (DataFrame, float)
        A reliability table (:func:`glaviz.calibration.reliability_table`, or the pair that
        :func:`glaviz.evaluation.reliability` returns): columns ``count``, ``confidence``,
        ``accuracy``, one row per bin.
    after : pandas.DataFrame or (DataFrame, float), optional
        The table after calibration, drawn in a second colour.
    title : str, optional
        Default: the ECE of each table (:func:`~glaviz.calibration.ece_from_table`), before
        ``→`` after.

    Returns
    -------
    holoviews.Overlay
        One point per non-empty bin, its area proportional to the bin's pixel count (the hover
        shows the count and ``accuracy - confidence``), joined by a line; the legend holds each
        table's ECE.

    Examples
    --------
    >>> from glaviz.calibration import reliability_table
    >>> t = reliability_table([0.05, 0.15, 0.18, 0.95], [0, 1, 0, 1], bins=10)
    >>> reliability_diagram(t).opts.get(backend="bokeh").kwargs["title"]
    'Reliability: ECE 0.1925'
    """
    _bokeh()
    tables = {"before calibration": _reliability(before, "before")}
    if after is not None:
        tables["after calibration"] = _reliability(after, "after")
    biggest = max(float(np.nanmax(t["count"], initial=0)) for t in tables.values()) or 1.0
    layers: list[hv.Element] = [
        hv.Curve([(0.0, 0.0), (1.0, 1.0)], "confidence", "accuracy", label="perfect calibration")
        .opts(color="grey", line_dash="dashed", backend="bokeh")
    ]  # fmt: skip
    eces = []
    for (name, t), color in zip(tables.items(), _COLORS):
        ece = ece_from_table(t)
        eces.append(ece)
        used = t[t["count"].to_numpy(float) > 0]
        data = used[["confidence", "accuracy", "count"]].astype(float).reset_index(drop=True)
        data["gap"] = data["accuracy"] - data["confidence"]
        data["bin"] = np.asarray(used.index)
        data["size"] = 4 + 16 * np.sqrt(data["count"] / biggest)  # area ~ pixel count
        label = f"{name} (ECE {ece:.4f})" if after is not None else f"ECE {ece:.4f}"
        vdims = ["count", "gap", "bin", "size"]
        layers += [
            hv.Curve(data, "confidence", "accuracy", label=label).opts(
                color=color, alpha=0.6, backend="bokeh"
            ),
            hv.Points(data, ["confidence", "accuracy"], vdims, label=label).opts(
                color=color, size="size", alpha=0.8, tools=["hover"], backend="bokeh"
            ),
        ]
    if title is None:
        title = "Reliability: ECE " + (
            f"{eces[0]:.4f} → {eces[1]:.4f}" if after is not None else f"{eces[0]:.4f}"
        )
    return hv.Overlay(layers).opts(
        title=title, width=420, height=400, xlim=(0, 1), ylim=(0, 1),
        legend_position="top_left", backend="bokeh",
    )  # fmt: skip


# --------------------------------------------------------------------------- scores


def metric_bars(
    table: pd.DataFrame,
    *,
    level: str = "region",
    metrics: Sequence[str] = ("iou", "precision", "recall"),
) -> hv.Bars:
    """Grouped bars of pooled scores: one group per region (or subregion, tile), one bar per score.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`glaviz.evaluate` (columns ``level``, ``name`` and the scores).
    level : str, default "region"
        The rows to draw (``table.level == level``): "tile", "subregion", "region", ...
    metrics : sequence of str
        Score columns, one bar each.

    Returns
    -------
    holoviews.Bars
        Key dimensions ``name`` and ``metric``, value ``score``. Names that repeat within the
        level (subregions of two regions) are shown as ``region/name``.

    Examples
    --------
    >>> t = pd.DataFrame({"level": ["region", "region", "mean"], "name": ["ALP", "GR", "mean"],
    ...                   "iou": [0.5, 0.9, 0.7], "recall": [0.8, 1.0, 0.9]})
    >>> bars = metric_bars(t, metrics=["iou", "recall"])
    >>> bars.dimension_values("score").tolist()
    [0.5, 0.8, 0.9, 1.0]
    """
    _bokeh()
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    if not metrics:
        raise ValueError("metric_bars: give at least one metric")
    _require(table, ["level", "name", *metrics], "metric_bars", "glaviz.evaluate")
    rows = table[table["level"] == level]
    if rows.empty:
        present = list(dict.fromkeys(table["level"]))
        raise ValueError(
            f"metric_bars: the table has no rows of level {level!r} (levels present: {present}); "
            "evaluate with that level (e.g. subregion metadata) or choose another"
        )
    names = rows["name"].astype(str)
    if names.duplicated().any() and "region" in rows:
        names = rows["region"].astype(str) + "/" + names
    data = pd.DataFrame(
        {
            "name": np.repeat(names.to_numpy(), len(metrics)),
            "metric": metrics * len(rows),
            "score": rows[metrics].to_numpy(float).ravel(),
        }
    )
    values = data["score"].dropna()
    ylim = (0, 1.05) if values.between(0, 1).all() else (None, None)
    return hv.Bars(data, ["name", "metric"], "score").opts(
        color="metric", cmap=list(_COLORS), ylim=ylim, tools=["hover"],
        xrotation=45 if len(rows) > 6 else 0, height=320,
        width=max(400, min(1200, 120 + 28 * len(data))),
        title=f"{', '.join(metrics)} per {level}", backend="bokeh",
    )  # fmt: skip


# --------------------------------------------------------------------------- glaciers


def _bands(table: pd.DataFrame, clean: float | None, debris: float | None) -> tuple:
    """Clean-ice and debris bands (%), debris fractions and each glacier's uncertainty (%)."""
    frac = table["debris"].to_numpy(float) if "debris" in table else np.zeros(len(table))
    unc = table["uncertainty_pct"].to_numpy(float)
    if clean is not None or debris is not None:  # as summarise_against_experts
        c, d = 100 * (0.05 if clean is None else clean), 100 * (0.30 if debris is None else debris)
        return c, d, frac, c + frac * (d - c)
    c = float(np.nanmedian(unc[frac == 0])) if (frac == 0).any() else 5.0
    dirty = frac > 0  # the table's own debris value: invert unc = c + frac * (d - c)
    d = float(np.nanmedian(c + (unc[dirty] - c) / frac[dirty])) if dirty.any() else 30.0
    return c, d, frac, unc


def glacier_deviations(
    table: pd.DataFrame,
    *,
    clean_ice_uncertainty: float | None = None,
    debris_uncertainty: float | None = None,
) -> hv.Layout:
    """Per-glacier area deviation and boundary distance against the expert uncertainty bands.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`glaviz.compare_outlines` (index ``glacier_id``; a ``name`` column, when
        present, shows in the hover).
    clean_ice_uncertainty, debris_uncertainty : float, optional
        Relative area uncertainties to judge against, as in
        :func:`glaviz.summarise_against_experts` (default: the table's ``uncertainty_pct``,
        made with 0.05 for clean ice and 0.30 for debris).

    Returns
    -------
    holoviews.Layout
        Left: area deviation (%) against reference area (km², log axis) with the shaded bands
        ±clean-ice (and ±debris where the table has debris) uncertainty; right: the mean of the
        two directions' mean boundary distance (m). Glaciers outside their band are red
        triangles, those within green circles; the hover shows id, name and the figures.

    Examples
    --------
    >>> t = pd.DataFrame({"debris": [0.0, 1.0], "area_ref_km2": [1.0, 2.0],
    ...                   "area_pred_km2": [1.2, 2.2], "area_deviation_pct": [20.0, 10.0],
    ...                   "uncertainty_pct": [5.0, 30.0], "ref_to_pred_mean_m": [30.0, 12.0],
    ...                   "pred_to_ref_mean_m": [10.0, 8.0], "hausdorff_m": [90.0, 40.0]},
    ...                  index=pd.Index(["G1", "G2"], name="glacier_id"))
    >>> area = glacier_deviations(t)[0]
    >>> {p.label: p.dimension_values("glacier_id").tolist() for p in area if p.group == "Points"}
    {'within expert uncertainty': ['G2'], 'outside expert uncertainty': ['G1']}
    """
    _bokeh()
    cols = ["area_ref_km2", "area_deviation_pct", "uncertainty_pct", "ref_to_pred_mean_m"]
    _require(table, [*cols, "pred_to_ref_mean_m"], "glacier_deviations", "glaviz.compare_outlines")
    clean, dirty, frac, unc = _bands(table, clean_ice_uncertainty, debris_uncertainty)
    has_debris = bool((frac > 0).any())
    dev = table["area_deviation_pct"].to_numpy(float)
    ids = table["glacier_id"] if "glacier_id" in table else table.index.to_series()
    optional = ["area_pred_km2", "hausdorff_m"]
    name = {"name": table["name"].fillna("").astype(str).to_numpy()} if "name" in table else {}
    data = pd.DataFrame(
        {
            "glacier_id": ids.astype(str).to_numpy(),
            **name,
            "area_ref_km2": table["area_ref_km2"].to_numpy(float),
            "area_deviation_pct": dev,
            "uncertainty_pct": unc,
            "debris": frac,
            "mean_distance_m": (table["ref_to_pred_mean_m"] + table["pred_to_ref_mean_m"])
            .to_numpy(float) / 2,
            **{c: table[c].to_numpy(float) for c in optional if c in table},
        }
    )  # fmt: skip
    within = np.abs(dev) <= unc  # as summarise_against_experts: NaN deviation is outside
    data["status"] = np.where(within, _WITHIN, _OUTSIDE)
    vdims = [c for c in data.columns if c != "area_ref_km2"]
    style = {_WITHIN: ("#2ca02c", "circle", 7), _OUTSIDE: ("#d62728", "triangle", 10)}

    def panel(y: str, ylabel: str, bands: list[hv.Element]) -> hv.Overlay:
        layers = list(bands)
        for status, (color, marker, size) in style.items():
            part = data[data["status"] == status].dropna(subset=[y])
            dims = [d for d in vdims if d != y]
            layers.append(
                hv.Points(part, ["area_ref_km2", y], dims, label=status).opts(
                    color=color, marker=marker, size=size, tools=["hover"], backend="bokeh"
                )
            )
        return hv.Overlay(layers).opts(
            logx=True, width=440, height=340, xlabel="reference area (km²)", ylabel=ylabel,
            legend_position="top_right", backend="bokeh",
        )  # fmt: skip

    bands = []
    if has_debris:
        bands.append(hv.HSpan(-dirty, dirty).opts(color="#ff7f0e", alpha=0.12, backend="bokeh"))
    bands.append(hv.HSpan(-clean, clean).opts(color="#1f77b4", alpha=0.18, backend="bokeh"))
    bands.append(hv.HLine(0).opts(color="grey", line_width=1, backend="bokeh"))
    n_in = int(within.sum())
    band = f"±{clean:g} % clean ice" + (f", ±{dirty:g} % debris" if has_debris else "")
    area = panel("area_deviation_pct", f"area deviation (%); band {band}", bands).opts(
        title=f"{n_in} of {len(data)} glaciers within uncertainty", backend="bokeh"
    )  # titles do not wrap: the bands went to the axis label
    distance = panel("mean_distance_m", "mean of both directions (m)", []).opts(
        title="mean boundary distance", backend="bokeh"
    )
    return (area + distance).opts(shared_axes=False, backend="bokeh")


# --------------------------------------------------------------------------- training


def _curves(history: pd.DataFrame, columns: Sequence[str], y: str, ylabel: str) -> hv.Overlay:
    """One curve per column against ``epoch``, all on one ``y`` axis."""
    curves = [
        hv.Curve(
            (history["epoch"].to_numpy(float), history[c].to_numpy(float)),
            "epoch", (y, ylabel), label=_LABELS.get(c, c.replace("_", " ")),
        ).opts(color=color, tools=["hover"], backend="bokeh")
        for c, color in zip(columns, _COLORS)
    ]  # fmt: skip
    return hv.Overlay(curves).opts(
        width=380, height=260, legend_position="top_right", backend="bokeh"
    )


def training_history(history: pd.DataFrame) -> hv.Layout:
    """Losses, validation IoU and learning rate per epoch of a training run.

    Parameters
    ----------
    history : pandas.DataFrame
        As :func:`glaviz.fit` returns it: ``epoch``, ``lr``, ``train_loss`` and, with validation
        tiles, ``val_iou`` (and ``val_iou_unknown`` with region encoding); other ``*_loss``
        columns join the loss panel.

    Returns
    -------
    holoviews.Layout
        Panels "loss", "validation IoU" (when the history has it) and "learning rate" (its own
        axis; logarithmic when every rate is positive).

    Examples
    --------
    >>> h = pd.DataFrame({"epoch": [1, 2, 3], "lr": [5e-4, 2.5e-4, 1e-5],
    ...                   "train_loss": [0.4, 0.3, 0.25], "val_iou": [0.5, 0.6, 0.62]})
    >>> fig = training_history(h)
    >>> [p.opts.get(backend="bokeh").kwargs["title"] for p in fig]
    ['loss', 'validation IoU', 'learning rate']
    """
    _bokeh()
    _require(history, ["epoch", "train_loss", "lr"], "training_history", "glaviz.fit")
    if history.empty:
        raise ValueError("training_history: the history has no epoch")
    losses = ["train_loss", *[c for c in history if c.endswith("_loss") and c != "train_loss"]]
    panels = [_curves(history, losses, "loss", "loss").opts(title="loss", backend="bokeh")]
    ious = [c for c in ("val_iou", "val_iou_unknown") if c in history]
    if ious:
        panels.append(
            _curves(history, ious, "iou", "IoU").opts(
                title="validation IoU", ylim=(0, 1), backend="bokeh"
            )
        )
    lr = history["lr"].to_numpy(float)
    panels.append(
        _curves(history, ["lr"], "lr", "learning rate").opts(
            title="learning rate", logy=bool(np.all(lr > 0)), show_legend=False, backend="bokeh"
        )
    )
    return hv.Layout(panels).opts(shared_axes=False, backend="bokeh").cols(3)


# --------------------------------------------------------------------------- confidence


def confidence_histogram(prediction: xr.Dataset, *, bins: int = 50) -> hv.Layout:
    """Histograms of confidence and glacier probability over the valid pixels of a prediction.

    Parameters
    ----------
    prediction : xarray.Dataset
        From :func:`glaviz.predict`: ``confidence`` and/or ``glacier_probability``, with
        ``valid`` (else ``glacier_mask != 255``, else finite values, count). Without
        ``confidence`` the raw one of ``glacier_probability`` is drawn. Dask-backed variables
        are counted block by block, in one pass over the data, never loaded whole.
    bins : int, default 50
        Equal bins on [0, 1].

    Returns
    -------
    holoviews.Layout
        One :class:`holoviews.Histogram` (value ``pixels``) per variable.

    Examples
    --------
    >>> p = xr.DataArray(np.array([[0.9, 0.2], [np.nan, 0.6]], np.float32), dims=("y", "x"))
    >>> pred = xr.Dataset({"glacier_probability": p, "valid": p.notnull()})
    >>> [int(h.dimension_values("pixels").sum()) for h in confidence_histogram(pred, bins=4)]
    [3, 3]
    """
    _bokeh()
    if not isinstance(prediction, xr.Dataset):
        raise TypeError(
            f"confidence_histogram: expected glaviz.predict's Dataset, got {type(prediction)}"
        )
    if int(bins) != bins or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    arrays = {}
    if "confidence" in prediction:
        arrays["confidence"] = prediction["confidence"]
    elif "glacier_probability" in prediction:
        arrays["confidence"] = binary_confidence(prediction["glacier_probability"])
    else:
        raise KeyError(
            "confidence_histogram: the prediction has neither 'confidence' nor "
            f"'glacier_probability' (variables: {list(prediction.data_vars)})"
        )
    if "glacier_probability" in prediction:
        arrays["glacier_probability"] = prediction["glacier_probability"]
    valid = prediction["valid"].astype(bool) if "valid" in prediction else None
    if valid is None and "glacier_mask" in prediction:
        valid = prediction["glacier_mask"] != 255
    edges = np.linspace(0.0, 1.0, int(bins) + 1)
    counts = {}
    for name, arr in arrays.items():
        data = (arr.where(valid) if valid is not None else arr).data  # NaN: not counted
        if hasattr(data, "dask"):
            import dask.array as da

            counts[name] = da.histogram(data.ravel(), bins=edges)[0]
        else:
            counts[name] = np.histogram(np.asarray(data).ravel(), bins=edges)[0]
    if any(hasattr(c, "dask") for c in counts.values()):
        import dask

        counts = dict(zip(counts, dask.compute(*counts.values())))  # one pass over the data
    labels = {"confidence": "confidence", "glacier_probability": "glacier probability"}
    panels = []
    for (name, c), color in zip(counts.items(), _COLORS):
        style = {"width": 380, "height": 280, "xlim": (0, 1), "tools": ["hover"]}
        hist = hv.Histogram((edges, c), kdims=[(name, labels[name])], vdims=["pixels"])
        panels.append(hist.opts(color=color, alpha=0.8, title=labels[name],  # titles do not
                                ylabel=f"pixels (of {int(c.sum()):,} valid)",  # wrap: short
                                **style, backend="bokeh"))  # fmt: skip
    return hv.Layout(panels).opts(shared_axes=False, backend="bokeh").cols(2)


# --------------------------------------------------------------------------- scenes


def _decimated(output: str, variable: str, max_size: int) -> tuple[np.ndarray, tuple]:
    """``variable`` of one predict_many output, at most ``max_size`` pixels per side, + bounds."""
    if output.rstrip("/").lower().endswith(".zarr"):
        arr = xr.open_zarr(output, consolidated=False)[variable]
        h, w = arr.sizes["y"], arr.sizes["x"]
        step = max(1, math.ceil(max(h, w) / max_size))
        x, y = arr["x"].values, arr["y"].values
        dx = abs(x[1] - x[0]) if w > 1 else 1.0
        dy = abs(y[1] - y[0]) if h > 1 else 1.0
        small = arr.isel(y=slice(None, None, step), x=slice(None, None, step)).values
        if h > 1 and y[0] < y[-1]:
            small = small[::-1]
        bounds = (x.min() - dx / 2, y.min() - dy / 2, x.max() + dx / 2, y.max() + dy / 2)
        nodata = arr.attrs.get("nodata", arr.encoding.get("_FillValue"))
    else:
        stem = output[:-4] if output.lower().endswith(".tif") else output
        with rasterio.open(f"{stem}_{variable}.tif") as src:
            step = max(1, math.ceil(max(src.height, src.width) / max_size))
            shape = (math.ceil(src.height / step), math.ceil(src.width / step))
            # a reduced out_shape makes GDAL read the COG's overviews, not the full raster
            small = src.read(1, out_shape=shape, resampling=Resampling.nearest)
            bounds, nodata = tuple(src.bounds), src.nodata
    small = small.astype(np.float32)
    if nodata is not None and not np.isnan(nodata):
        small[small == nodata] = np.nan
    return small, bounds


def _message(scene: str, text: str, color: str) -> hv.Text:
    lines = textwrap.wrap(str(text).strip().splitlines()[0] if str(text).strip() else "", 38)
    body = "\n".join(lines[:8] + (["..."] if len(lines) > 8 else [])) or "(no error text)"
    return hv.Text(0.5, 0.5, body).opts(
        title=scene, text_color=color, text_font_size="9pt", xlim=(0, 1), ylim=(0, 1),
        width=220, height=220, **_BARE, backend="bokeh",
    )  # fmt: skip


def thumbnail_grid(
    results: pd.DataFrame,
    *,
    max_size: int = 256,
    columns: int = 4,
    variable: str = "glacier_mask",
) -> hv.Layout:
    """Small images of the outputs of :func:`glaviz.predict_many`, failed scenes with their error.

    Parameters
    ----------
    results : pandas.DataFrame
        The table :func:`glaviz.predict_many` returns: ``scene``, ``status``, ``output`` (the
        GeoTIFF stem ``<dir>/<scene>`` or the ``.zarr`` store) and ``error``.
    max_size : int, default 256
        Largest side of a thumbnail in pixels. The raster is read decimated by an integer step
        (``ceil(side / max_size)``): GeoTIFFs through ``out_shape`` (the COG overviews), Zarr by
        strided selection; whole rasters are never read.
    columns : int, default 4
        Thumbnails per row.
    variable : {"glacier_mask", "glacier_probability", "confidence"}
        What each thumbnail shows (nodata transparent).

    Returns
    -------
    holoviews.Layout
        One :class:`holoviews.Image` per successful scene (titled with its name), one
        :class:`holoviews.Text` with the first line of the error per failed scene (or per output
        that cannot be read).

    Examples
    --------
    >>> t = pd.DataFrame({"scene": ["a"], "status": ["failed"], "output": ["out/a"],
    ...                   "error": ["MissingCRS: the scene has no CRS\\nTraceback ..."]})
    >>> thumbnail_grid(t)[0].text
    'MissingCRS: the scene has no CRS'
    """
    _bokeh()
    _require(results, ["scene", "status", "output"], "thumbnail_grid", "glaviz.predict_many")
    for name, value in (("max_size", max_size), ("columns", columns)):
        if int(value) != value or value < 1:
            raise ValueError(f"thumbnail_grid: {name} must be a positive integer, got {value!r}")
    if results.empty:
        raise ValueError("thumbnail_grid: the results table has no scene")
    cmap = ["#e8e8e8", "#1f77b4"] if variable == "glacier_mask" else "Blues"
    panels: list[hv.Element] = []
    for row in results.itertuples(index=False):
        scene = str(row.scene)
        if row.status != "ok":
            panels.append(_message(f"{scene}: {row.status}", getattr(row, "error", ""), "#b2182b"))
            continue
        try:
            small, (left, bottom, right, top) = _decimated(str(row.output), variable, max_size)
        except Exception as err:  # a moved or partial output must not hide the other scenes
            panels.append(
                _message(f"{scene}: unreadable", f"{type(err).__name__}: {err}", "#b2182b")
            )
            continue
        h, w = small.shape
        zoom = 200 / max(h, w)  # the longer side: 200 screen pixels
        image = hv.Image(small, bounds=(left, bottom, right, top), vdims=[variable])
        panels.append(image.opts(
            title=scene, cmap=cmap, clim=(0, 1), frame_height=round(h * zoom),
            frame_width=round(w * zoom), tools=["hover"], **_BARE, backend="bokeh",
        ))  # fmt: skip
    return hv.Layout(panels).opts(shared_axes=False, backend="bokeh").cols(int(columns))
