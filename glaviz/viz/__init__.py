"""Seeing results: interactive comparison maps, plots and offline HTML.

:func:`compare_map` builds an ipyleaflet map of a scene, a prediction and reference outlines;
:func:`save_html` writes a map, a plot or a list of both into ONE self-contained HTML file that
works with no network and no kernel; :mod:`glaviz.viz.plots` holds the holoviews figures.
Submodules load on first use; the names are listed once, in the type stub ``__init__.pyi``
(read by ``lazy_loader.attach_stub``).
"""

from __future__ import annotations

from glaviz._lazy import attach_stub

__getattr__, __dir__, __all__ = attach_stub(__name__, __file__)
