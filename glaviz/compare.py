"""Expert-style comparison of predicted and reference outlines, glacier by glacier.

Per reference glacier: the matched predicted area, the area deviation and boundary distances in
both directions, set against the multi-analyst uncertainty of expert delineation (about 5 % of
the area on clean ice, up to 30 % on debris cover; GLAVITU.md, "Evaluation").
:func:`boundary_distances` and :func:`nearest_zones` are the geometry behind
:func:`compare_outlines`.
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
from glaviz.types import CRSLike
from glaviz.vector import to_outlines

__all__ = [
    "boundary_distances",
    "compare_outlines",
    "nearest_zones",
    "summarise_against_experts",
]


def _polygonal(geom: Any) -> Any:
    """The polygons of a geometry (an intersection may add lines and points), as one geometry."""
    if geom is None or shapely.get_type_id(geom) in (3, 6):
        return geom
    parts = shapely.get_parts(geom)
    return shapely.union_all(parts[np.isin(shapely.get_type_id(parts), (3, 6))])


def _rings(geom: Any) -> np.ndarray:
    """The boundary lines (exterior and hole rings) of a polygonal geometry."""
    geom = _polygonal(geom)
    if geom is None or shapely.is_empty(geom):
        return np.empty(0, dtype=object)
    return shapely.get_parts(shapely.boundary(geom))


def boundary_distances(source: Any, target: Any, *, spacing: float = 5.0) -> dict[str, float]:
    """Distances from the boundary of ``source`` to the nearest point of ``target``'s boundary.

    Boundaries include hole rings. Points are sampled every ``spacing`` (CRS units, at most;
    evenly along each ring), their nearest distance to ``target``'s boundary segments is found
    with an :class:`shapely.STRtree` (exact point-to-segment distances).

    Parameters
    ----------
    source, target : shapely Polygon or MultiPolygon
        In one projected CRS.
    spacing : float, default 5.0
        Sampling step along ``source``'s boundary.

    Returns
    -------
    dict
        ``mean``, ``median``, ``p95`` of the sampled distances and ``max``, the directed
        Hausdorff distance (over the samples and ``source``'s vertices; exact to within
        ``spacing``). NaN when either boundary is empty.

    Examples
    --------
    A 100 m square and the same shifted 10 m east:

    >>> d = boundary_distances(shapely.box(10, 0, 110, 100), shapely.box(0, 0, 100, 100))
    >>> d["max"], round(d["mean"], 6), d["median"]
    (10.0, 5.0, 5.0)
    """
    if not spacing > 0:
        raise ValueError(f"spacing must be positive, got {spacing}")
    src, tgt = _rings(source), _rings(target)
    nan = float("nan")
    if src.size == 0 or tgt.size == 0:
        return {"mean": nan, "median": nan, "p95": nan, "max": nan}
    samples = []
    for line in src:
        n = max(int(np.ceil(line.length / spacing)), 1)
        samples.append(shapely.line_interpolate_point(line, (np.arange(n) + 0.5) * line.length / n))
    points = np.concatenate(samples)
    vertices = shapely.points(shapely.get_coordinates(src))
    segments = []
    for line in tgt:
        xy = shapely.get_coordinates(line)
        if len(xy) > 1:
            segments.append(shapely.linestrings(np.stack([xy[:-1], xy[1:]], axis=1)))
    tree = STRtree(np.concatenate(segments))
    _, d = tree.query_nearest(points, return_distance=True, all_matches=False)
    _, dv = tree.query_nearest(vertices, return_distance=True, all_matches=False)
    return {
        "mean": float(d.mean()),
        "median": float(np.median(d)),
        "p95": float(np.percentile(d, 95)),
        "max": float(max(d.max(), dv.max())),
    }


def nearest_zones(
    geometries: Any, *, spacing: float, extent: tuple[float, float, float, float] | None = None
) -> np.ndarray:
    """Split the plane into zones: each point goes to the nearest of ``geometries``.

    A Voronoi diagram of points every ``spacing`` along the geometries' boundaries, its cells
    merged per geometry; each zone contains its own geometry and none of the others (where the
    geometries do not overlap). Used to share predicted ice among adjacent reference glaciers.

    Parameters
    ----------
    geometries : array-like of shapely polygons
        Non-empty, in one projected CRS.
    spacing : float
        Boundary sampling step (CRS units); zone borders are exact to about this.
    extent : (xmin, ymin, xmax, ymax), optional
        Area the zones must cover (default the geometries' bounds), enlarged by a margin.

    Returns
    -------
    numpy.ndarray of shapely geometries
        One zone per geometry, in order.

    Examples
    --------
    >>> zones = nearest_zones([shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 10)],
    ...                       spacing=1.0, extent=(-10, -10, 40, 20))
    >>> zones[0].contains(shapely.Point(14, 5)), zones[1].contains(shapely.Point(16, 5))
    (True, True)
    """
    geoms = np.asarray(list(geometries), dtype=object)
    bounds = shapely.total_bounds(geoms)
    if extent is not None:
        bounds = np.r_[np.minimum(bounds[:2], extent[:2]), np.maximum(bounds[2:], extent[2:])]
    margin = max(bounds[2] - bounds[0], bounds[3] - bounds[1], spacing) * 0.5
    frame = shapely.box(*(bounds + np.r_[-margin, -margin, margin, margin]))
    if geoms.size == 1:
        return np.array([frame], dtype=object)
    xy_parts, label_parts = [], []
    for i, g in enumerate(geoms):
        c = np.unique(shapely.get_coordinates(shapely.segmentize(_rings(g), spacing)), axis=0)
        xy_parts.append(c)
        label_parts.append(np.full(len(c), i))
    xy, labels = np.concatenate(xy_parts), np.concatenate(label_parts)
    xy, first = np.unique(xy, axis=0, return_index=True)  # shared boundaries: one owner
    labels = labels[first]
    # GEOS' Voronoi fails on the collinear, cocircular points of pixel outlines: jitter them a
    # little (seeded) and work near the origin for precision.
    origin = bounds[:2] - margin
    local = shapely.transform(frame, lambda c: c - origin)
    for amplitude in (1e-4, 1e-3, 1e-2):
        rng = np.random.default_rng(0)
        pts_xy = xy - origin + rng.uniform(-amplitude, amplitude, xy.shape) * spacing
        try:
            cells = shapely.voronoi_polygons(shapely.multipoints(pts_xy), extend_to=local)
            break
        except shapely.errors.GEOSException:  # pragma: no cover - degenerate input
            continue
    else:  # pragma: no cover
        raise ValueError("nearest_zones: could not build the Voronoi diagram of the outlines")
    cells = shapely.transform(shapely.get_parts(cells), lambda c: c + origin)
    pts, cell_idx = STRtree(cells).query(shapely.points(pts_xy + origin), predicate="within")
    owner = np.full(cells.size, -1)
    owner[cell_idx] = labels[pts]
    own_tree = STRtree(geoms)
    zones = np.empty(geoms.size, dtype=object)
    for i, g in enumerate(geoms):
        cell = shapely.union_all(cells[owner == i])
        others = [j for j in own_tree.query(cell) if j != i]
        if others:
            cell = shapely.difference(cell, shapely.union_all(geoms[others]))
        zones[i] = _polygonal(shapely.intersection(shapely.union(cell, g), frame))
    return zones


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
    crs: CRSLike | None = None,
) -> pd.DataFrame:
    """Per reference glacier: matched predicted area, area deviation and boundary distances.

    Matching. The predicted outlines are dissolved into connected polygons; a polygon matches a
    reference glacier when their intersection has a positive area, and polygons matching no
    glacier are false detections (``attrs["n_unmatched"]``, ``attrs["unmatched_area_km2"]``).
    A matched polygon often spans several adjacent glaciers (one ice body, several glaciers
    split at ice divides), so the matched predicted ice is shared among the reference glaciers
    by nearest reference glacier (:func:`nearest_zones`): each glacier's predicted outline is
    the matched ice within its zone. Per-glacier predicted areas add up to the matched
    predicted area; no predicted pixel is counted twice.

    Distances are between the boundaries (holes included) of a glacier and its predicted
    outline, sampled every ``spacing`` metres, both directions (:func:`boundary_distances`).
    Everything is measured in a projected CRS in metres: ``crs``, the reference's own CRS when
    it is one, else the local UTM zone (geographic input).

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
