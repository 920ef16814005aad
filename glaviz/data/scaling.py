"""The fixed global min-max scaling of GlaViTU inputs (``data_catalog/scaling.yml``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import dask
import numpy as np
import xarray as xr

from glaviz.catalog import load_catalog
from glaviz.data.checks import is_range_checked, range_sample, warn_out_of_range
from glaviz.data.identity import is_registered, register
from glaviz.data.scene import band_dim, scene_groups

__all__ = ["scale"]

#: Bands derived from others (checked through their source band).
_DERIVED = ("slope",)


def scale(
    ds: xr.Dataset,
    *,
    table: Mapping[str, Mapping[str, list]] | None = None,
    clip: bool = False,
    range_warning: float | None = 0.05,
) -> xr.Dataset:
    """Scale every input group of a scene to the model's range: ``(x - min) / (max - min)``.

    Minimum and maximum come per band name from the catalog's scaling table (or ``table``, e.g.
    the one stored in a checkpoint). NaN and nodata become 0 and ``valid`` becomes False there,
    as in the original pipeline where 0 means "minimum"; metrics use ``valid`` to ignore them.

    Parameters
    ----------
    ds : xarray.Dataset
        A scene from :func:`glaviz.open_scene` or :func:`glaviz.data.synthetic_scene`.
    table : mapping, optional
        ``{group: {"bands": [...], "min": [...], "max": [...]}}``; default the catalog's.
    clip : bool, default False
        Clip scaled values to [0, 1] (the original does not).
    range_warning : float or None, default 0.05
        Warn (:class:`~glaviz.errors.InputWarning`, naming the group, the observed range and
        the likely cause) when more than this fraction of a group's valid values lies more
        than 0.5 outside [0, 1] after scaling, or when optical values barely vary: signs of
        the wrong sensor (digital numbers read as reflectance or the reverse), a DEM in feet
        or centimetres, undeclared nodata. Checked on a sample (at most 16 windows of
        128 x 128 pixels); ``None`` skips the check.

    Returns
    -------
    xarray.Dataset
        float32 variables in [0, 1] for in-range data, ``valid`` updated, CRS kept,
        ``attrs["scaled"] = 1``.

    Examples
    --------
    >>> from glaviz.data import synthetic_scene
    >>> s = scale(synthetic_scene(height=32, width=32, seed=1))
    >>> bool((s["optical"] >= 0).all()), s.attrs["scaled"]
    (True, 1)
    """
    if ds.attrs.get("scaled"):
        raise ValueError("the scene is already scaled (attrs['scaled'] == 1); scale it only once")
    table = dict(table or load_catalog().scaling_table())
    out = ds.copy()
    valid = ds["valid"] if "valid" in ds else None
    for group in scene_groups(ds):
        if group not in table:
            raise KeyError(f"the scaling table has no group {group!r}; groups: {sorted(table)}")
        entry = table[group]
        lookup = dict(zip(entry["bands"], zip(entry["min"], entry["max"])))
        dim = band_dim(group)
        names = [str(b) for b in ds[dim].values]
        unknown = [b for b in names if b not in lookup]
        if unknown:
            raise KeyError(
                f"variable {group!r}: bands {unknown} are not in the scaling table "
                f"({list(entry['bands'])})"
            )
        lo = xr.DataArray(np.array([lookup[b][0] for b in names], np.float32), dims=dim)
        hi = xr.DataArray(np.array([lookup[b][1] for b in names], np.float32), dims=dim)
        x = ds[group]
        finite = cast(xr.DataArray, np.isfinite(x)).all(dim)
        valid = finite if valid is None else valid & finite
        y = ((x - lo) / (hi - lo)).astype(np.float32)
        if range_warning is not None and not is_range_checked(x):
            read = [b for b in names if b not in _DERIVED]  # slope follows elevation
            yy, xx = dask.compute(
                *(range_sample(v.sel({dim: read}).rename({dim: "band"})) for v in (y, x))
            )  # one pass over the sampled chunk
            warn_out_of_range(yy, xx, group, threshold=range_warning, sensor=x.attrs.get("sensor"))
        if clip:
            y = y.clip(0, 1)
        out[group] = y.fillna(0).astype(np.float32)
        out[group].attrs = {**x.attrs, "scaled": 1}
        if is_registered(x):  # lazy and made by open_scene: say how this one is made
            register(out[group], {"scale": {"array": x.data.name}, "table": entry, "clip": clip})
    if valid is None:
        raise ValueError(f"the scene holds no input group (variables {list(ds.data_vars)})")
    out["valid"] = valid.astype(bool)
    inputs = [ds[v] for v in (*scene_groups(ds), "valid") if v in ds]
    if all(is_registered(v) for v in inputs):
        register(out["valid"], {"valid_after_scale": [{"array": v.data.name} for v in inputs]})
    out.attrs = {**ds.attrs, "scaled": 1}
    return out
