"""Expert-style comparison of predicted and reference outlines, glacier by glacier.

Per reference glacier: the matched predicted area, the area deviation and boundary distances in
both directions, set against the multi-analyst uncertainty of expert delineation (about 5 % of
the area on clean ice, up to 30 % on debris cover; GLAVITU.md, "Evaluation").
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xarray as xr
from pyproj import CRS
from shapely import STRtree

from glaviz.errors import MissingCRSError
from glaviz.vector import _polygonal, boundary_distances, nearest_zones, to_outlines

__all__ = ["compare_outlines", "summarise_against_experts"]


def _metric_crs(gdf: gpd.GeoDataFrame, crs: Any) -> CRS:
    """A projected CRS in metres to measure in: ``crs``, the data's own, or the local UTM zone."""
    if crs is not None:
        out = CRS.from_user_input(crs)
        unit = out.axis_info[0].unit_name if out.axis_info else ""
        if out.is_geographic or unit not in ("metre", "meter"):
            raise ValueError(f"crs must be a projected CRS in metres, got {out.name!r}")
        return out
    out = CRS.from_user_input(gdf.crs)
    unit = out.axis_info[0].unit_name if out.axis_info else ""
    if out.is_projected and unit in ("metre", "meter"):
        return out
    return gdf.estimate_utm_crs()


def _polygons(geoms: gpd.GeoSeries) -> np.ndarray:
    values = geoms.values
    values = values[~(shapely.is_missing(values) | shapely.is_empty(values))]
    bad = ~shapely.is_valid(values)
    if bad.any():
        values[bad] = shapely.make_valid(values[bad])
    return values


def _debris_fraction(reference: gpd.GeoDataFrame, column: str | None) -> np.ndarray:
    if column is None:
        return np.zeros(len(reference))
    if column not in reference.columns:
        raise KeyError(f"debris_column {column!r} is not a column of the reference outlines")
    values = pd.to_numeric(reference[column], errors="coerce").to_numpy(float)
    if np.isnan(values).any() or values.min() < 0 or values.max() > 1:
        raise ValueError(
            f"debris_column {column!r} must hold booleans or fractions in [0, 1] (no missing)"
        )
    return values


def compare_outlines(
    predicted: gpd.GeoDataFrame | gpd.GeoSeries | xr.Dataset | xr.DataArray,
    reference: gpd.GeoDataFrame | gpd.GeoSeries,
    *,
    id_column: str | None = None,
    debris_column: str | None = None,
    clean_ice_uncertainty: float = 0.05,
    debris_uncertainty: float = 0.30,
    spacing: float = 5.0,
    crs: Any = None,
) -> pd.DataFrame:
    """Per reference glacier: matched predicted area, area deviation and boundary distances.

    Matching. The predicted outlines are dissolved into connected polygons; a polygon matches a
    reference glacier when their intersection has a positive area, and polygons matching no
    glacier are false detections (``attrs["n_unmatched"]``, ``attrs["unmatched_area_km2"]``).
    A matched polygon often spans several adjacent glaciers (one ice body, several glaciers
    split at ice divides), so the matched predicted ice is shared among the reference glaciers
    by nearest reference glacier (:func:`glaviz.vector.nearest_zones`): each glacier's
    predicted outline is the matched ice within its zone. Per-glacier predicted areas add up
    to the matched predicted area; no predicted pixel is counted twice.

    Distances are between the boundaries (holes included) of a glacier and its predicted
    outline, sampled every ``spacing`` metres, both directions (:func:`glaviz.vector.
    boundary_distances`). Everything is measured in a projected CRS in metres: ``crs``, the
    reference's own CRS when it is one, else the local UTM zone (geographic input).

    Parameters
    ----------
    predicted : GeoDataFrame, GeoSeries, or a prediction Dataset / mask DataArray
        Predicted outlines (a prediction is polygonised with :func:`glaviz.vector.to_outlines`).
    reference : GeoDataFrame or GeoSeries
        Reference glacier outlines, one row per glacier, with a CRS.
    id_column : str, optional
        Column naming the glaciers (default ``glacier_id`` when present, else the row index).
    debris_column : str, optional
        Boolean (debris-covered glacier) or fraction of debris cover in [0, 1]; the uncertainty
        of a glacier is ``clean + fraction * (debris - clean)``. Default: all clean ice.
    clean_ice_uncertainty, debris_uncertainty : float
        Relative area uncertainty of expert outlines (0.05 and 0.30).
    spacing : float, default 5.0
        Boundary sampling step in metres.
    crs : CRS-like, optional
        Projected CRS in metres to measure in.

    Returns
    -------
    pandas.DataFrame
        Index ``glacier_id``; columns ``debris`` (fraction), ``area_ref_km2``,
        ``area_pred_km2``, ``area_deviation_pct`` (100 (A_pred - A_ref) / A_ref), ``iou``,
        ``n_matched`` (predicted polygons intersecting the glacier), ``uncertainty_pct``,
        ``within_uncertainty``, ``ref_to_pred_{mean,median,p95,max}_m`` and
        ``pred_to_ref_{mean,median,p95,max}_m`` (``max``: directed Hausdorff distance) and
        ``hausdorff_m``; distances NaN for a missed glacier.

    Examples
    --------
    A 100 m square glacier mapped 10 m too far east:

    >>> ref = gpd.GeoDataFrame({"glacier_id": ["G1"]},
    ...                        geometry=[shapely.box(0, 0, 100, 100)], crs="EPSG:32632")
    >>> pred = gpd.GeoSeries([shapely.box(10, 0, 110, 100)], crs="EPSG:32632")
    >>> t = compare_outlines(pred, ref)
    >>> t.loc["G1", ["area_deviation_pct", "hausdorff_m", "ref_to_pred_mean_m"]].tolist()
    [0.0, 10.0, 5.0]
    """
    if isinstance(predicted, (xr.Dataset, xr.DataArray)):
        predicted = to_outlines(predicted)
    for what, gdf in (("predicted", predicted), ("reference", reference)):
        if not isinstance(gdf, (gpd.GeoDataFrame, gpd.GeoSeries)):
            raise TypeError(f"{what} outlines must be a GeoDataFrame, got {type(gdf).__name__}")
        if gdf.crs is None:
            raise MissingCRSError.of(f"the {what} outlines", kind="outlines")
    if isinstance(reference, gpd.GeoSeries):
        reference = gpd.GeoDataFrame(geometry=reference)
    work = _metric_crs(reference, crs)
    reference = reference[~(reference.geometry.isna() | reference.geometry.is_empty)]
    ref = reference.to_crs(work)
    ref_geoms = _polygons(ref.geometry)
    id_column = id_column or ("glacier_id" if "glacier_id" in ref.columns else None)
    ids = ref[id_column].astype(str).to_numpy() if id_column else ref.index.astype(str)
    debris = _debris_fraction(ref, debris_column)
    uncertainty = 100 * (
        clean_ice_uncertainty + debris * (debris_uncertainty - clean_ice_uncertainty)
    )

    pred_geoms = _polygons(predicted.geometry.to_crs(work))
    parts = shapely.get_parts(shapely.union_all(pred_geoms)) if pred_geoms.size else pred_geoms
    parts = parts[shapely.area(parts) > 0] if parts.size else parts
    tree = STRtree(parts)
    matched = np.zeros(parts.size, bool)
    n_matched = np.zeros(ref_geoms.size, int)
    for i, glacier in enumerate(ref_geoms):
        cand = tree.query(glacier, predicate="intersects")
        cand = cand[shapely.area(shapely.intersection(parts[cand], glacier)) > 0]
        n_matched[i], matched[cand] = cand.size, True
    ice = shapely.union_all(parts[matched])
    if ref_geoms.size > 1:
        extent = shapely.total_bounds(np.r_[ref_geoms, parts])
        zones = shapely.intersection(ice, nearest_zones(ref_geoms, spacing=spacing, extent=extent))
        zones = np.array([_polygonal(z) for z in zones], dtype=object)
    else:
        zones = np.array([ice] * ref_geoms.size, dtype=object)

    rows = []
    for i, (glacier, mine) in enumerate(zip(ref_geoms, zones)):
        a_ref, a_pred = glacier.area / 1e6, shapely.area(mine) / 1e6
        union = shapely.union(glacier, mine).area
        row = {
            "glacier_id": ids[i],
            "debris": debris[i],
            "area_ref_km2": a_ref,
            "area_pred_km2": a_pred,
            "area_deviation_pct": 100 * (a_pred - a_ref) / a_ref if a_ref else np.nan,
            "iou": shapely.intersection(glacier, mine).area / union if union else np.nan,
            "n_matched": int(n_matched[i]),
            "uncertainty_pct": uncertainty[i],
        }
        for name, (a, b) in (("ref_to_pred", (glacier, mine)), ("pred_to_ref", (mine, glacier))):
            d = boundary_distances(a, b, spacing=spacing)
            row.update({f"{name}_{k}_m": v for k, v in d.items()})
        rows.append(row)
    out = pd.DataFrame(rows, columns=[*_COMPARE_COLUMNS]).set_index("glacier_id")
    out.insert(
        out.columns.get_loc("uncertainty_pct") + 1,
        "within_uncertainty",
        out["area_deviation_pct"].abs() <= out["uncertainty_pct"],
    )
    out["hausdorff_m"] = out[["ref_to_pred_max_m", "pred_to_ref_max_m"]].max(axis=1, skipna=False)
    out.attrs.update(
        crs=work.to_string(),
        n_unmatched=int((~matched).sum()),
        unmatched_area_km2=float(shapely.area(parts[~matched]).sum() / 1e6),
    )
    return out


_COMPARE_COLUMNS = [
    "glacier_id", "debris", "area_ref_km2", "area_pred_km2", "area_deviation_pct", "iou",
    "n_matched", "uncertainty_pct",
    *[f"{d}_{s}_m" for d in ("ref_to_pred", "pred_to_ref") for s in ("mean", "median", "p95",
                                                                      "max")],
]  # fmt: skip


def summarise_against_experts(
    table: pd.DataFrame,
    *,
    clean_ice_uncertainty: float | None = None,
    debris_uncertainty: float | None = None,
    min_area_km2: float = 0.0,
) -> pd.DataFrame:
    """How many glaciers of a :func:`compare_outlines` table lie within the expert uncertainty.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`compare_outlines`.
    clean_ice_uncertainty, debris_uncertainty : float, optional
        Relative area uncertainties to judge against (default: those the table was made with,
        its ``uncertainty_pct``; the paper's 0.05 and 0.30).
    min_area_km2 : float, default 0.0
        Leave out reference glaciers smaller than this (relative errors of tiny glaciers are
        large for experts too).

    Returns
    -------
    pandas.DataFrame
        Rows ``clean ice`` (debris fraction 0), ``debris`` (> 0) where present, and ``all``;
        columns ``n_glaciers``, ``n_within``, ``share_within``, ``n_missed`` (no predicted ice),
        ``area_ref_km2``, ``area_pred_km2``, ``area_deviation_pct`` (of the summed areas),
        ``median_abs_area_deviation_pct``, ``median_mean_distance_m`` (median over glaciers of
        the two directions' mean distance, averaged) and ``median_hausdorff_m``. ``attrs``
        carry the table's unmatched predicted area.

    Examples
    --------
    >>> t = pd.DataFrame({"debris": [0.0, 0.0, 1.0], "area_ref_km2": [1.0, 2.0, 1.0],
    ...                   "area_pred_km2": [1.04, 2.5, 1.2], "uncertainty_pct": [5, 5, 30]})
    >>> t["area_deviation_pct"] = 100 * (t.area_pred_km2 - t.area_ref_km2) / t.area_ref_km2
    >>> s = summarise_against_experts(t)
    >>> s["n_within"].to_dict()
    {'clean ice': 1, 'debris': 1, 'all': 2}
    """
    t = table[table["area_ref_km2"] >= min_area_km2]
    debris = t["debris"].to_numpy(float)
    unc = t["uncertainty_pct"].to_numpy(float)
    if clean_ice_uncertainty is not None or debris_uncertainty is not None:
        clean = 0.05 if clean_ice_uncertainty is None else clean_ice_uncertainty
        dirty = 0.30 if debris_uncertainty is None else debris_uncertainty
        unc = 100 * (clean + debris * (dirty - clean))
    within = t["area_deviation_pct"].abs().to_numpy() <= unc
    groups = {"clean ice": debris == 0, "debris": debris > 0, "all": np.ones(len(t), bool)}
    rows = {}
    for name, sel in groups.items():
        if name != "all" and not sel.any():
            continue
        g = t[sel]
        a_ref, a_pred = g["area_ref_km2"].sum(), g["area_pred_km2"].sum()
        row = {
            "n_glaciers": int(sel.sum()),
            "n_within": int(within[sel].sum()),
            "share_within": within[sel].mean() if sel.any() else np.nan,
            "n_missed": int((g["area_pred_km2"] == 0).sum()),
            "area_ref_km2": a_ref,
            "area_pred_km2": a_pred,
            "area_deviation_pct": 100 * (a_pred - a_ref) / a_ref if a_ref else np.nan,
            "median_abs_area_deviation_pct": g["area_deviation_pct"].abs().median(),
        }
        if "ref_to_pred_mean_m" in g:
            mean_d = (g["ref_to_pred_mean_m"] + g["pred_to_ref_mean_m"]) / 2
            row["median_mean_distance_m"] = mean_d.median()
            row["median_hausdorff_m"] = g["hausdorff_m"].median()
        rows[name] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.attrs.update({k: v for k, v in table.attrs.items() if k.startswith(("n_un", "unm"))})
    return out
