"""Conversion metadata of STAC items: what the sensor's conversion needs, checked against them.

:func:`conversion_metadata` takes the Sentinel-2 processing baseline (``s2:processing_baseline``,
``processing:version``, the ``raster`` offset or ``_N0400_`` in the hrefs) and the Landsat sun
elevation (``view:sun_elevation``) from the items, and refuses assets whose ``raster`` scale or
offset contradicts the sensor's conversion (another product than the sensor spec describes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from glaviz.catalog import SensorGroup
from glaviz.data.convert import processing_baseline_from_paths
from glaviz.data.scene import SceneError
from glaviz.data.stac_items import BandSource, nearly_equal

if TYPE_CHECKING:  # pragma: no cover
    import pystac

__all__ = ["conversion_metadata"]


# --------------------------------------------------------------------------------------------
# conversion metadata from the item


def _expected_linear(conv: Mapping[str, Any]) -> tuple[float, float] | None:
    """(scale, offset) that turn the asset's values into what the conversion computes first."""
    kind = conv["kind"]
    if kind == "landsat_toa_reflectance" or kind == "landsat_brightness_temperature":
        return float(conv["mult"]), float(conv["add"])
    if kind == "linear":
        return float(conv["scale"]), float(conv["offset"])
    if kind == "identity":
        return 1.0, 0.0
    return None


def conversion_metadata(
    items: Sequence[pystac.Item],
    sources: Mapping[str, list[list[BandSource]]],
    specs: Mapping[str, SensorGroup],
    sensor: str,
    processing_baseline: str | None,
    metadata: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metadata for the conversions, provenance attrs) of one date's items.

    Parameters
    ----------
    items : sequence of pystac.Item
        The items of one date (one scene).
    sources : mapping
        ``{group: [[BandSource per band] per item]}`` from :func:`find_band`.
    specs : mapping
        ``{group: SensorGroup}`` of the sensor.
    sensor : str
        The catalog sensor, for messages.
    processing_baseline : str, optional
        The user's Sentinel-2 baseline, overriding the items'.
    metadata : mapping, optional
        The user's conversion metadata, overriding the items'.

    Returns
    -------
    (dict, dict)
        The ``metadata`` for :func:`~glaviz.data.scene.open_scene` (``processing_baseline``,
        ``sun_elevation``...) and the attrs recording where it came from.

    Raises
    ------
    SceneError
        A ``raster`` scale or offset contradicting the sensor's conversion, items of one date
        with different baselines, or conversion metadata that is nowhere to be found.
    """
    meta: dict[str, Any] = {}
    attrs: dict[str, Any] = {}
    ids = ", ".join(repr(it.id) for it in items)
    for group, spec in specs.items():
        conv = spec.conversion
        # a scale to radiance (with its unit) says nothing against DN assets: not checked
        infos = [s.info for per in sources[group] for s in per if not s.info.to_radiance]
        scales = {s.scale for s in infos if s.scale is not None}
        offsets = {s.offset for s in infos if s.offset is not None}
        if conv["kind"] == "sentinel2_l1c":
            q = float(conv["quantification_value"])
            bad = [s for s in scales if not nearly_equal(s, 1.0 / q)]
            if bad:
                raise SceneError(
                    f"STAC item(s) {ids}: raster:bands scale {bad[0]:g} but sensor {sensor!r} "
                    f"expects digital numbers / {q:g} (scale {1 / q:g}); these assets are "
                    "another product: pass the right sensor="
                )
            baseline = reported = processing_baseline
            if baseline is None:
                found = {
                    str(it.properties.get("s2:processing_baseline"))
                    for it in items
                    if it.properties.get("s2:processing_baseline") is not None
                } or {
                    str(it.properties.get("processing:version"))
                    for it in items
                    if it.properties.get("processing:version") is not None
                }
                if len(found) > 1:
                    raise SceneError(
                        f"STAC items {ids} of one date have different processing baselines "
                        f"{sorted(found)}; open them separately (or pass processing_baseline=)"
                    )
                baseline = found.pop() if found else None
                if baseline is None:
                    hrefs = [
                        it.assets[s.key].href for it, per in zip(items, sources[group]) for s in per
                    ]
                    baseline = processing_baseline_from_paths([Path(h) for h in hrefs])
                reported = baseline
                with_offset = float(conv["radiometric_offset"]) / q
                if offsets:
                    if len(offsets) > 1:
                        raise SceneError(
                            f"STAC item(s) {ids}: the bands' raster:bands offsets differ "
                            f"({sorted(offsets)}); pass processing_baseline= to choose"
                        )
                    off = offsets.pop()
                    # the asset's own statement about its values decides (harmonised
                    # collections shift older baselines by the same offset)
                    if nearly_equal(off, with_offset):
                        if baseline is None or _older(baseline, conv["offset_from_baseline"]):
                            baseline = str(conv["offset_from_baseline"])
                            attrs["processing_baseline_note"] = (
                                f"radiometric offset applied (as from baseline {baseline}) "
                                f"because raster:bands offset is {off:g}"
                            )
                    elif nearly_equal(off, 0.0):
                        if baseline is None or not _older(baseline, conv["offset_from_baseline"]):
                            baseline = "00.00"
                            attrs["processing_baseline_note"] = (
                                "no radiometric offset because raster:bands offset is 0"
                            )
                    else:
                        raise SceneError(
                            f"STAC item(s) {ids}: raster:bands offset {off:g} is neither 0 nor "
                            f"{with_offset:g}; pass processing_baseline= to choose"
                        )
            if baseline is None:
                raise SceneError(
                    f"STAC item(s) {ids}: the Sentinel-2 processing baseline is unknown (no "
                    "s2:processing_baseline property, no raster:bands offset, no _N0400_ in the "
                    "hrefs); pass open_stac(..., processing_baseline='04.00')"
                )
            meta["processing_baseline"] = baseline
            if processing_baseline is not None or reported is not None:
                attrs["processing_baseline"] = processing_baseline or reported
            continue
        expected = _expected_linear(conv)
        if expected is not None:
            bad_s = [s for s in scales if not nearly_equal(s, expected[0])]
            bad_o = [o for o in offsets if not nearly_equal(o, expected[1])]
            if bad_s or bad_o:
                got = f"scale {bad_s[0]:g}" if bad_s else f"offset {bad_o[0]:g}"
                raise SceneError(
                    f"STAC item(s) {ids}: {group} assets have raster:bands {got}, but sensor "
                    f"{sensor!r} expects values scaled by {expected[0]:g} + {expected[1]:g} "
                    "(its conversion); these assets are another product (e.g. Level-2 surface "
                    "reflectance): pass the right sensor="
                )
        if conv["kind"] == "landsat_toa_reflectance":
            suns = [
                float(it.properties["view:sun_elevation"])
                for it in items
                if it.properties.get("view:sun_elevation") is not None
            ]
            if suns:
                meta["sun_elevation"] = float(np.mean(suns))
                attrs["sun_elevation"] = meta["sun_elevation"]
            elif not metadata or not any(k.lower() == "sun_elevation" for k in metadata):
                raise SceneError(
                    f"STAC item(s) {ids}: Landsat TOA reflectance needs the sun elevation and "
                    "the item has no view:sun_elevation; pass "
                    "open_stac(..., metadata={'sun_elevation': ...})"
                )
    if metadata:
        meta.update(metadata)
    return meta, attrs


def _older(a: str, b: str) -> bool:
    def t(v: str) -> tuple[int, ...]:
        try:
            return tuple(int(p) for p in str(v).split("."))
        except ValueError:
            raise SceneError(f"processing baseline {v!r} is not of the form '04.00'") from None

    return t(a) < t(b)
