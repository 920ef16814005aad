"""Seeing results: interactive comparison maps, plots and offline HTML.

:func:`compare_map` builds an ipyleaflet map of a scene, a prediction and reference outlines;
:func:`save_html` writes a map, a plot or a list of both into ONE self-contained HTML file that
works with no network and no kernel; :mod:`glaviz.viz.plots` holds the holoviews figures.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "compare_map": "glaviz.viz.maps",
    "save_html": "glaviz.viz.html",
    "reliability_diagram": "glaviz.viz.plots",
    "metric_bars": "glaviz.viz.plots",
    "glacier_deviations": "glaviz.viz.plots",
    "training_history": "glaviz.viz.plots",
    "confidence_histogram": "glaviz.viz.plots",
    "thumbnail_grid": "glaviz.viz.plots",
}
_SUBMODULES = ("html", "inspector", "layers", "maps", "plots", "render")
__all__ = sorted([*_LAZY, *_SUBMODULES])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"glaviz.viz.{name}")
    raise AttributeError(f"module 'glaviz.viz' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
