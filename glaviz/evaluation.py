"""Score predictions: pooled pixel metrics per tile, subregion and region; expert-style outline
comparison; calibration diagnostics.

Pixel scores (:func:`evaluate`, :func:`evaluate_benchmark`, :class:`Evaluator`) pool the
TP/FP/FN/TN counts of all pixels of a tile, subregion or region and compute IoU, precision,
recall, F1, accuracy and area deviation from the pooled counts, never as a mean of per-patch or
per-tile scores. The headline of the paper is the mean and standard deviation of the pooled
IoU over regions (rows ``level == "mean"`` and ``"std"``). Only pixels that are valid (the
prediction's and the reference's ``valid``, a prediction value of 0/1, not 255) and labelled
(reference 0 or 1, not 255) count.

Outline comparison (:func:`glaviz.compare.compare_outlines`,
:func:`glaviz.compare.summarise_against_experts`, re-exported here) measures, per reference
glacier, the area deviation and boundary distances of the predicted outlines, and sets
them against the multi-analyst uncertainty of expert delineation (about 5 % of the area on clean
ice, up to 30 % on debris cover).

:func:`reliability` bins confidence against correctness (:mod:`glaviz.calibration`).

Inputs, everywhere:

* prediction: a Dataset with ``glacier_mask`` (uint8 0/1, 255 nodata) and optionally ``valid``
  and ``confidence`` (as :func:`glaviz.predict` returns), or a mask DataArray or array;
* reference: outlines (GeoDataFrame/GeoSeries, rasterised onto the prediction's grid, which then
  needs a CRS), a mask DataArray or array (0/1, 255 unlabelled), or a scene Dataset with
  ``reference_mask`` (and ``valid``), e.g. :meth:`glaviz.data.benchmark.BenchmarkTile.to_scene`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from typing import TYPE_CHECKING, Any, TypeAlias

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from glaviz.calibration import bin_sums, binary_confidence, ece_from_table, table_from_sums
from glaviz.data.outlines import rasterize_outlines
from glaviz.errors import GridMismatchError, MissingCRSError, warn
from glaviz.metrics import Confusion, confusion

if TYPE_CHECKING:  # pragma: no cover - torch is imported only when a model runs
    from torch import nn

#: What :func:`evaluate` takes: one prediction (a Dataset with ``glacier_mask``, a mask
#: DataArray or array), or many tiles as a list of tuples/dicts or a dict of them.
Predictions: TypeAlias = (
    "xr.Dataset | xr.DataArray | np.ndarray | Sequence[Any] | Mapping[str, Any]"
)

__all__ = [
    "LEVELS",
    "Evaluator",
    "compare_outlines",
    "evaluate",
    "evaluate_benchmark",
    "reliability",
    "summarise_against_experts",
]

#: Row levels of the score tables, in output order.
LEVELS: tuple[str, ...] = ("tile", "subregion", "region", "mean", "std", "overall")
SCORES: tuple[str, ...] = ("iou", "precision", "recall", "f1", "accuracy", "area_deviation")
COUNTS: tuple[str, ...] = ("n_tiles", "n_pixels", "tp", "fp", "fn", "tn")
_META = ("tile", "region", "subregion")


def _values(x: Any) -> np.ndarray:
    return np.asarray(x.values if isinstance(x, (xr.DataArray, xr.Variable)) else x)


def _check_grid(a: Any, b: Any, what: str) -> None:
    sa, sb = np.shape(a), np.shape(b)
    if sa != sb:
        raise GridMismatchError(f"{what} has shape {sb}, the prediction {sa}: put both on one grid")
    if isinstance(a, xr.DataArray) and isinstance(b, xr.DataArray):
        for d in ("y", "x"):
            if d in a.coords and d in b.coords and a.sizes.get(d, 0) > 1:
                ca, cb = a[d].values.astype(float), b[d].values.astype(float)
                tol = 1e-3 * abs(ca[1] - ca[0])
                if ca.shape != cb.shape or not np.allclose(ca, cb, rtol=0, atol=tol):
                    raise GridMismatchError(
                        f"{what} is on another grid than the prediction ({d} coordinates "
                        "differ); reproject it or pass outlines to rasterise"
                    )


def _check_overlap(outlines: Any, grid: xr.DataArray, burnt: xr.DataArray, strict: bool) -> None:
    """Warn (or raise with ``strict``) when reference outlines burn no pixel of the grid."""
    geoms = outlines.geometry if isinstance(outlines, gpd.GeoDataFrame) else outlines
    geoms = geoms[~(geoms.isna() | geoms.is_empty)]
    if not len(geoms) or bool(np.any(_values(burnt) == 1)):
        return
    x0, y0, x1, y1 = (float(v) for v in geoms.to_crs(grid.rio.crs).total_bounds)
    g0, g1, g2, g3 = (float(v) for v in grid.rio.bounds())
    disjoint = x0 >= g2 or x1 <= g0 or y0 >= g3 or y1 <= g1
    where = (
        f"do not overlap the prediction's grid (outlines {x0:.0f}, {y0:.0f} to {x1:.0f}, "
        f"{y1:.0f}; grid {g0:.0f}, {g1:.0f} to {g2:.0f}, {g3:.0f} in {grid.rio.crs})"
        if disjoint
        else "cover no pixel centre of the prediction's grid"
    )
    message = (
        f"the {len(geoms)} reference outline(s) {where}: IoU would be 0 and recall undefined. "
        "Are they outlines of another region, or in another CRS than they declare?"
    )
    if strict:
        raise GridMismatchError(message)
    warn(message + " (evaluate(..., strict=True) raises instead)")


def _pixels(
    prediction: Any, reference: Any, valid: Any = None, strict: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Predicted and reference masks, the counted pixels, confidence and metadata attrs."""
    attrs: dict[str, Any] = {}
    confidence = None
    keep = None
    if isinstance(prediction, xr.Dataset):
        if "glacier_mask" not in prediction:
            raise KeyError(
                "the prediction Dataset has no 'glacier_mask' (variables: "
                f"{list(prediction.data_vars)}); pass glaviz.predict's output or a mask"
            )
        attrs.update(prediction.attrs)
        grid = prediction["glacier_mask"]
        if "valid" in prediction:
            keep = _values(prediction["valid"]).astype(bool)
        if "confidence" in prediction:
            confidence = _values(prediction["confidence"])
        elif "glacier_probability" in prediction:
            confidence = _values(binary_confidence(prediction["glacier_probability"]))
    else:
        grid = prediction
    pred = _values(grid)
    if pred.ndim != 2:
        raise ValueError(f"the prediction mask must be 2-D (y, x), got shape {pred.shape}")
    labelled = np.isin(pred, (0, 1))
    keep = labelled if keep is None else keep & labelled
    if isinstance(reference, (gpd.GeoDataFrame, gpd.GeoSeries)):
        if not isinstance(grid, xr.DataArray) or grid.rio.crs is None:
            raise MissingCRSError.of(
                "the prediction",
                why="reference outlines are rasterised onto its grid: pass a georeferenced "
                "DataArray or Dataset, or a reference mask instead",
            )
        ref_da = rasterize_outlines(reference, like=grid)
        _check_overlap(reference, grid, ref_da, strict)
    elif isinstance(reference, xr.Dataset):
        if "reference_mask" not in reference:
            raise KeyError(
                "the reference Dataset has no 'reference_mask' (variables: "
                f"{list(reference.data_vars)})"
            )
        for k in _META:
            attrs.setdefault(k, reference.attrs.get(k))
        ref_da = reference["reference_mask"]
        if "valid" in reference:
            _check_grid(grid, reference["valid"], "the reference's valid")
            keep &= _values(reference["valid"]).astype(bool)
    else:
        ref_da = reference
    _check_grid(grid, ref_da, "the reference")
    ref = _values(ref_da)
    keep &= np.isin(ref, (0, 1))
    if valid is not None:
        _check_grid(grid, valid, "valid")
        keep &= _values(valid).astype(bool)
    return pred, ref, keep, confidence, attrs


class Evaluator:
    """Pool confusion counts (and confidence bins) over tiles; tables per tile, subregion, region.

    Add tiles one by one (:meth:`add`, memory: a few numbers per tile), then ask for the
    :meth:`table`. :func:`evaluate` and :func:`evaluate_benchmark` are built on it.

    Parameters
    ----------
    bins : int or None, default 100
        Confidence bins for the ``ece`` column (``None``: no ECE).

    Examples
    --------
    >>> ev = Evaluator()
    >>> _ = ev.add(np.array([[1, 1], [0, 0]]), np.array([[1, 0], [0, 0]]), region="ALP")
    >>> _ = ev.add(np.array([[1, 1], [1, 1]]), np.array([[1, 1], [1, 1]]), region="GR")
    >>> t = ev.table().set_index("level")
    >>> t.loc["region", "iou"].tolist(), float(t.loc["mean", "iou"]), float(t.loc["std", "iou"])
    ([0.5, 1.0], 0.75, 0.25)
    """

    def __init__(self, *, bins: int | None = 100) -> None:
        self.bins = bins
        self._tiles: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self._tiles)

    def add(
        self,
        prediction: Any,
        reference: Any,
        *,
        valid: Any = None,
        tile: str | None = None,
        region: str | None = None,
        subregion: str | None = None,
        strict: bool = False,
    ) -> Confusion:
        """Count one tile or scene; metadata not given is read from the inputs' ``attrs``.

        Returns the tile's :class:`~glaviz.metrics.Confusion`. Reference outlines that burn
        no pixel of the grid give an :class:`~glaviz.errors.InputWarning` (with ``strict``:
        a :class:`~glaviz.errors.GridMismatchError`).
        """
        pred, ref, keep, conf, attrs = _pixels(prediction, reference, valid, strict)
        meta = {"tile": tile, "region": region, "subregion": subregion}
        for k in _META:
            meta[k] = meta[k] or attrs.get(k) or None
        meta["tile"] = str(meta["tile"] or f"tile-{len(self._tiles)}")
        c = confusion(pred == 1, ref, keep)
        sums = None
        if self.bins and conf is not None:
            _check_grid(pred, conf, "the confidence")
            sums = bin_sums(conf[keep], pred[keep] == ref[keep], self.bins)
        self._tiles.append({**meta, "confusion": c, "sums": sums})
        return c

    def reliability_table(self) -> pd.DataFrame:
        """Pooled reliability table of all tiles with a confidence (see :func:`reliability`)."""
        sums = [t["sums"] for t in self._tiles if t["sums"] is not None]
        if not sums:
            raise ValueError(
                "no tile had a 'confidence' (or 'glacier_probability') variable, or bins=None"
            )
        return table_from_sums(np.sum(sums, axis=0))

    @staticmethod
    def _row(level: str, name: str, tiles: list[dict[str, Any]], **meta: Any) -> dict[str, Any]:
        c = sum((t["confusion"] for t in tiles), Confusion())
        sums = [t["sums"] for t in tiles if t["sums"] is not None]
        ece = ece_from_table(table_from_sums(np.sum(sums, axis=0))) if sums else np.nan
        where = {"region": meta.get("region"), "subregion": meta.get("subregion")}
        return {"level": level, "name": name, **where, "n_tiles": len(tiles)} | {
            "n_pixels": c.tp + c.fp + c.fn + c.tn,
            **c.scores(),
            "ece": ece,
        }

    def table(self, *, levels: Sequence[str] = LEVELS, ddof: int = 0) -> pd.DataFrame:
        """Scores per level (see :func:`evaluate`, Returns)."""
        bad = [lv for lv in levels if lv not in LEVELS]
        if bad:
            raise ValueError(f"unknown level(s) {bad}; choose from {list(LEVELS)}")
        tiles = self._tiles
        rows: list[dict[str, Any]] = []
        if "tile" in levels:
            rows += [
                self._row("tile", t["tile"], [t], region=t["region"], subregion=t["subregion"])
                for t in tiles
            ]
        if "subregion" in levels:
            keys = dict.fromkeys((t["region"], t["subregion"]) for t in tiles if t["subregion"])
            for reg, sub in keys:
                group = [t for t in tiles if (t["region"], t["subregion"]) == (reg, sub)]
                rows.append(self._row("subregion", sub, group, region=reg, subregion=sub))
        regions = [
            self._row("region", r, [t for t in tiles if t["region"] == r], region=r)
            for r in dict.fromkeys(t["region"] for t in tiles if t["region"])
        ]
        if "region" in levels:
            rows += regions
        for stat in ("mean", "std"):
            if stat in levels and regions:
                frame = pd.DataFrame(regions)[[*SCORES, "ece"]].astype(float)
                values = frame.mean() if stat == "mean" else frame.std(ddof=ddof)
                rows.append(
                    {"level": stat, "name": f"{stat} over regions", **values.to_dict()}
                    | {"n_tiles": sum(r["n_tiles"] for r in regions)}
                )
        if "overall" in levels and tiles:
            rows.append(self._row("overall", "all", tiles))
        columns = ["level", "name", "region", "subregion", *COUNTS, *SCORES, "ece"]
        out = pd.DataFrame(rows, columns=columns)
        out[list(COUNTS)] = out[list(COUNTS)].astype("Int64")
        if not self.bins:
            out = out.drop(columns="ece")
        return out


def _items(
    prediction: Any, reference: Any, meta: dict[str, Any]
) -> Iterable[tuple[Any, Any, dict]]:
    """Normalise evaluate()'s inputs to (prediction, reference, metadata) triples."""
    many = isinstance(prediction, (list, tuple, Mapping)) and not isinstance(prediction, xr.Dataset)
    if not many:
        if reference is None:
            raise TypeError("evaluate: give a reference (outlines, mask or scene)")
        yield prediction, reference, meta
        return
    if reference is not None:
        raise TypeError(
            "evaluate: with a list or dict of items, each item carries its own reference; "
            "leave reference=None"
        )
    pairs = prediction.items() if isinstance(prediction, Mapping) else enumerate(prediction)
    for key, item in pairs:
        name = {"tile": key} if isinstance(prediction, Mapping) else {}
        if isinstance(item, Mapping):
            extra = {k: v for k, v in item.items() if k not in ("prediction", "reference")}
            yield item["prediction"], item["reference"], {**meta, **name, **extra}
        elif isinstance(item, tuple) and len(item) in (2, 3):
            extra = dict(item[2]) if len(item) == 3 else {}
            yield item[0], item[1], {**meta, **name, **extra}
        else:
            raise TypeError(
                f"evaluate: item {key!r} must be (prediction, reference), (prediction, reference,"
                f" metadata) or a dict with 'prediction' and 'reference', got {type(item)}"
            )


def evaluate(
    prediction: Predictions,
    reference: gpd.GeoDataFrame | xr.DataArray | xr.Dataset | np.ndarray | None = None,
    *,
    valid: xr.DataArray | np.ndarray | None = None,
    tile: str | None = None,
    region: str | None = None,
    subregion: str | None = None,
    levels: Sequence[str] = LEVELS,
    bins: int | None = 100,
    ddof: int = 0,
    strict: bool = False,
) -> pd.DataFrame:
    """Pooled pixel scores of one scene or many tiles, per tile, subregion, region and overall.

    Parameters
    ----------
    prediction : Dataset, DataArray, array, or a list/dict of items
        One prediction (see the module notes), or many tiles: a list of ``(prediction,
        reference)`` or ``(prediction, reference, metadata)`` tuples or of dicts with keys
        ``prediction``, ``reference`` and optionally ``valid``, ``tile``, ``region``,
        ``subregion``; a dict maps tile names to such items. ``metadata`` is a dict with those
        optional keys.
    reference : GeoDataFrame, DataArray, array or Dataset
        The reference of a single prediction (``None`` with a list/dict of items).
    valid : array-like of bool, optional
        Extra pixels to count (ANDed with the inputs' own validity).
    tile, region, subregion : str, optional
        Metadata of a single prediction (default: the inputs' ``attrs``, as
        :meth:`~glaviz.data.benchmark.BenchmarkTile.to_scene` sets them).
    levels : sequence of str
        Row levels to return (default all of :data:`LEVELS`).
    bins : int or None, default 100
        Confidence bins of the ``ece`` column (NaN for predictions without ``confidence``);
        ``None`` drops the column.
    ddof : int, default 0
        Delta degrees of freedom of the ``std`` row (0: population std of the region scores).
    strict : bool, default False
        Reference outlines that burn no pixel of the prediction's grid (another region, a
        wrong CRS) give an :class:`~glaviz.errors.InputWarning`; with ``strict=True`` a
        :class:`~glaviz.errors.GridMismatchError` (a ``ValueError``).

    Returns
    -------
    pandas.DataFrame
        One row per tile (``level`` "tile"), subregion, region, the mean and std of the region
        scores ("mean", "std"; only with regions) and all pixels pooled ("overall"). Columns:
        ``level, name, region, subregion, n_tiles, n_pixels, tp, fp, fn, tn, iou, precision,
        recall, f1, accuracy, area_deviation, ece``; scores come from pooled counts (NaN when
        undefined, e.g. IoU without any glacier pixel in prediction or reference).

    Examples
    --------
    >>> pred = np.array([[1, 1, 0], [0, 0, 255]], np.uint8)  # 255: no prediction
    >>> ref = np.array([[1, 0, 1], [0, 255, 1]], np.uint8)  # 255: unlabelled
    >>> t = evaluate(pred, ref)
    >>> t[["level", "n_pixels", "tp", "fp", "fn", "iou"]].values.tolist()
    [['tile', 4, 1, 1, 1, 0.3333333333333333], ['overall', 4, 1, 1, 1, 0.3333333333333333]]
    >>> items = {"a": (pred, ref, {"region": "ALP"}), "b": (ref, ref, {"region": "GR"})}
    >>> evaluate(items).set_index("name").loc[["ALP", "GR", "mean over regions"], "iou"].round(3)
    name
    ALP                  0.333
    GR                   1.000
    mean over regions    0.667
    Name: iou, dtype: float64
    """
    ev = Evaluator(bins=bins)
    meta = {"valid": valid, "tile": tile, "region": region, "subregion": subregion}
    for pred, ref, m in _items(prediction, reference, meta):
        unknown = set(m) - {"valid", *_META}
        if unknown:
            raise TypeError(f"evaluate: unknown metadata key(s) {sorted(unknown)}")
        ev.add(pred, ref, strict=strict, **m)
    if not len(ev):
        raise ValueError("evaluate: no prediction given (empty list or dict)")
    return ev.table(levels=levels, ddof=ddof)


def reliability(
    prediction: Any, reference: Any = None, *, valid: Any = None, bins: int = 100
) -> tuple[pd.DataFrame, float]:
    """Reliability table and ECE of predictions' confidence against their correctness.

    ``correct`` is ``glacier_mask == reference`` on the counted pixels; the confidence is the
    prediction's ``confidence`` (calibrated when the model has a map), else the raw confidence
    of ``glacier_probability``. Inputs as :func:`evaluate` (one prediction or many items).

    Returns
    -------
    (pandas.DataFrame, float)
        The pooled :func:`~glaviz.calibration.reliability_table` and its ECE.

    Examples
    --------
    >>> p = xr.DataArray(np.array([[0.95, 0.6], [0.02, 0.45]], np.float32), dims=("y", "x"))
    >>> pred = xr.Dataset({"glacier_probability": p, "glacier_mask": (p >= 0.5).astype("u1")})
    >>> table, ece = reliability(pred, np.array([[1, 0], [0, 0]]), bins=10)
    >>> int(table["count"].sum()), round(ece, 3)
    (4, 0.348)
    """
    ev = Evaluator(bins=bins)
    meta = {"valid": valid, "tile": None, "region": None, "subregion": None}
    for pred, ref, m in _items(prediction, reference, meta):
        ev.add(pred, ref, **m)
    table = ev.reliability_table()
    return table, ece_from_table(table)


def evaluate_benchmark(
    model: nn.Module,
    benchmark_set: Iterable[Any],
    *,
    predict_kwargs: Mapping[str, Any] | None = None,
    predict_fn: Callable[..., xr.Dataset] | None = None,
    groups: Sequence[str] | None = None,
    levels: Sequence[str] = LEVELS,
    bins: int | None = 100,
    ddof: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Predict every tile of a benchmark split and pool the scores per region (the paper's table).

    Streams: one tile at a time is read (``tile.to_scene(groups)``), predicted, counted and
    dropped, so memory holds one tile.

    Parameters
    ----------
    model : torch.nn.Module
        The model (anything ``predict_fn`` accepts).
    benchmark_set : BenchmarkSet or iterable of tiles
        From :func:`glaviz.data.benchmark.open_benchmark`, e.g. ``split="test"``; any tiles
        with ``to_scene()``, ``name``, ``region`` and ``subregion``.
    predict_kwargs : mapping, optional
        Passed to the prediction (``tta``, ``batch_size``, ...).
    predict_fn : callable, optional
        ``predict_fn(model, scene, **predict_kwargs) -> Dataset``; default
        :func:`glaviz.predict`.
    groups : sequence of str, optional
        Input groups to read (default each tile's selected groups).
    levels, bins, ddof
        As :func:`evaluate`.
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        As :func:`evaluate`; ``levels=("region", "mean", "std")`` gives the per-region table.

    Examples
    --------
    >>> import tempfile, h5py
    >>> from glaviz.data.benchmark import open_benchmark, write_tile
    >>> path = tempfile.mkdtemp() + "/demo_test_ps384.hdf5"
    >>> with h5py.File(path, "w") as f:
    ...     _ = write_tile(f, "ALP-0-0", {"optical": np.ones((6, 40, 50))},
    ...                    np.ones((40, 50), np.uint8), region="ALP", subregion="ALP",
    ...                    epsg=32632, xmin=0.0, ymax=0.0, resolution=10.0, multiple=64)
    >>> def all_glacier(model, scene):
    ...     return xr.Dataset({"glacier_mask": xr.ones_like(scene["reference_mask"])})
    >>> with open_benchmark(path, groups="optical") as bs:
    ...     t = evaluate_benchmark(None, bs, predict_fn=all_glacier, progress=False)
    >>> t.loc[t.level == "region", ["name", "n_pixels", "iou"]].values.tolist()
    [['ALP', 2000, 1.0]]
    """
    if predict_fn is None:
        from glaviz.inference import predict

        predict_fn = predict
    from tqdm.auto import tqdm

    kwargs = dict(predict_kwargs or {})
    ev = Evaluator(bins=bins)
    total = len(benchmark_set) if isinstance(benchmark_set, Sized) else None
    for tile in tqdm(benchmark_set, total=total, desc="evaluate", disable=not progress):
        scene = tile.to_scene(groups) if groups is not None else tile.to_scene()
        pred = predict_fn(model, scene, **kwargs)
        ev.add(
            pred,
            scene,
            tile=getattr(tile, "name", None),
            region=getattr(tile, "region", None),
            subregion=getattr(tile, "subregion", None),
        )
        del scene, pred
    if not len(ev):
        raise ValueError("evaluate_benchmark: the benchmark set holds no tile")
    return ev.table(levels=levels, ddof=ddof)


from glaviz.compare import compare_outlines, summarise_against_experts  # noqa: E402
