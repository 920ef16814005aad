"""The names of ``glaviz.viz``: read by type checkers, and at run time by
``lazy_loader.attach_stub`` (``glaviz/viz/__init__.py``), which imports each on first use.
"""

from . import (
    html,
    inspector,
    layers,
    maps,
    plots,
    render,
)
from .html import save_html
from .maps import compare_map
from .plots import (
    confidence_histogram,
    glacier_deviations,
    metric_bars,
    reliability_diagram,
    thumbnail_grid,
    training_history,
)

__all__ = [
    "compare_map",
    "confidence_histogram",
    "glacier_deviations",
    "html",
    "inspector",
    "layers",
    "maps",
    "metric_bars",
    "plots",
    "reliability_diagram",
    "render",
    "save_html",
    "thumbnail_grid",
    "training_history",
]
