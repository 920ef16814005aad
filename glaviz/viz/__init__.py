"""Seeing results: interactive comparison maps, plots and offline HTML.

:func:`compare_map` builds an ipyleaflet map of a scene, a prediction and reference outlines;
:func:`save_html` writes a map, a plot or a list of both into ONE self-contained HTML file that
works with no network and no kernel; :mod:`glaviz.viz.plots` holds the holoviews figures.
"""
