"""One self-contained HTML file for maps and plots: opens with no network and no kernel.

:func:`save_html` inlines everything a browser needs: RequireJS, the ipywidgets HTML manager
(``static/embed-amd.js``), the jupyter-leaflet bundle read from the installed ipyleaflet (so it
always matches the widget state), BokehJS for holoviews plots, the widget state itself (saved
with every attribute, defaults included: the swipe control needs them) and glaviz's own script
(``static/glaviz-map.js``: the pixel inspector over embedded value images, outline tooltips,
layers switched off at first). Nothing is fetched from a CDN.
"""

from __future__ import annotations

import html as html_lib
import json
import os
import sys
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import ipywidgets
from ipywidgets.embed import dependency_state, embed_data

from glaviz._io import atomic_write

__all__ = ["inline_widget_scripts", "map_data_script", "render_html", "save_html"]

#: Set (to anything) while a report's kernel runs: displayed maps then also emit their
#: inspector data, which the report's HTML needs (a live notebook does not).
REPORT_ENV = "GLAVIZ_REPORT"

_STATIC = resources.files("glaviz.viz") / "static"
#: BokehJS parts holoviews plots need (MathJax and tables are left out: 2 MB less).
_BOKEH_COMPONENTS: tuple[Literal["bokeh", "bokeh-gl", "bokeh-widgets"], ...] = (
    "bokeh",
    "bokeh-gl",
    "bokeh-widgets",
)


def _static(name: str) -> str:
    return (_STATIC / name).read_text(encoding="utf-8")


def _script(text: str, **attrs: str) -> str:
    """An inline ``<script>``; ``</script`` inside the text cannot end it early."""
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return f"<script{extra}>" + text.replace("</script", "<\\/script") + "</script>\n"


@cache
def _jupyter_leaflet_js() -> str:
    """The installed jupyter-leaflet AMD bundle, defined under its module name."""
    candidates = [Path(sys.prefix), Path(sys.base_prefix)]
    try:
        from jupyter_core.paths import jupyter_path

        candidates += [Path(p).parent.parent for p in jupyter_path()]
    except ImportError:  # pragma: no cover - jupyter_core comes with ipykernel
        pass
    for root in candidates:
        path = root / "share" / "jupyter" / "nbextensions" / "jupyter-leaflet" / "index.js"
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            if 'define("jupyter-leaflet"' not in text:
                text = text.replace("define([", 'define("jupyter-leaflet",[', 1)
            return text
    raise FileNotFoundError(
        "the jupyter-leaflet JavaScript bundle was not found under "
        f"{[str(c) for c in candidates]}/share/jupyter/nbextensions/jupyter-leaflet; "
        "reinstall ipyleaflet (pip install --force-reinstall ipyleaflet) in this environment"
    )


def _is_holoviews(obj: Any) -> bool:
    return type(obj).__module__.startswith("holoviews")


def _is_bokeh(obj: Any) -> bool:
    return type(obj).__module__.startswith("bokeh")


def _bokeh_parts(objs: list[Any]) -> tuple[str, list[str]]:
    """``(script, divs)`` of holoviews/bokeh objects."""
    from bokeh.embed import components

    models = []
    for obj in objs:
        if _is_holoviews(obj):
            import holoviews as hv

            obj = hv.render(obj, backend="bokeh")
        models.append(obj)
    script, divs = components(models)
    return script, list(divs)


def _bokeh_js() -> str:
    from bokeh.resources import Resources

    res = Resources(mode="inline", components=list(_BOKEH_COMPONENTS))
    return "\n".join(res.js_raw)


def inline_widget_scripts() -> str:
    """RequireJS, the widget manager, jupyter-leaflet and glaviz's map script, inlined."""
    return (
        _script(_static("require.js"))
        + _script(_static("embed-amd.js"))
        + _script(_jupyter_leaflet_js())
        + _script(_static("glaviz-map.js"))
    )


def map_data_script(maps: Sequence[Any]) -> str:
    """``<script class="glaviz-maps">`` with the inspector data of comparison maps."""
    data = {
        w.model_id: {
            "inspector": w.inspector.payload(),
            "hidden": [f"glaviz-{k}" for k in w.initially_hidden],
        }
        for w in maps
        if hasattr(w, "inspector")
    }
    text = json.dumps(data).replace("</", "<\\/")
    return f'<script type="application/json" class="glaviz-maps">{text}</script>\n'


def render_html(objs: Any | Sequence[Any], *, title: str = "glaviz") -> str:
    """The text of the self-contained page :func:`save_html` writes.

    Parameters
    ----------
    objs : widget, holoviews object, bokeh model, str, or a list of them
        Maps and other ipywidgets, plots, and HTML snippets (str) in page order.
    title : str
        The page title.

    Returns
    -------
    str
        One HTML document.
    """
    items = list(objs) if isinstance(objs, list | tuple) else [objs]
    widgets = [o for o in items if isinstance(o, ipywidgets.Widget)]
    plots = [o for o in items if _is_holoviews(o) or _is_bokeh(o)]
    for o in items:
        if not (isinstance(o, ipywidgets.Widget | str) or o in plots):
            raise TypeError(
                f"save_html cannot write a {type(o).__name__}; give it a map (or another "
                "ipywidget), a holoviews/bokeh plot, an HTML string, or a list of them"
            )
    head = [
        '<meta charset="utf-8">',
        f"<title>{html_lib.escape(title)}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<style>body{font-family:sans-serif;margin:12px}.glaviz-item{margin-bottom:16px}"
        ".glaviz-inspector table td{padding:0 6px 0 0}</style>",
    ]
    bokeh_script, divs = _bokeh_parts(plots) if plots else ("", [])
    if plots:  # before RequireJS, so that BokehJS does not register as an anonymous module
        head.append(_script(_bokeh_js()))
    body: list[str] = []
    if widgets:
        links = [link for w in widgets for link in getattr(w, "links", [])]
        state = dependency_state(widgets + links, drop_defaults=False)
        data = embed_data(views=widgets, drop_defaults=False, state=state)
        head.append(
            _script(
                json.dumps(data["manager_state"]).replace("</", "<\\/"),
                type="application/vnd.jupyter.widget-state+json",
            )
        )
        head.append(map_data_script(widgets))
        head.append(inline_widget_scripts())
    specs = iter(data["view_specs"]) if widgets else iter(())
    plot_divs = iter(divs)
    for o in items:
        if isinstance(o, str):
            body.append(f'<div class="glaviz-item">{o}</div>')
        elif isinstance(o, ipywidgets.Widget):
            spec = json.dumps(next(specs)).replace("</", "<\\/")
            body.append(
                '<div class="glaviz-item">'
                f'<script type="application/vnd.jupyter.widget-view+json">{spec}</script></div>'
            )
        else:
            body.append(f'<div class="glaviz-item">{next(plot_divs)}</div>')
    if plots:
        body.append(bokeh_script)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n'
        + "\n".join(head)
        + "\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def save_html(
    objs: Any | Sequence[Any],
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    title: str = "glaviz",
) -> Path:
    """Write maps and plots into ONE HTML file that works offline, without a kernel.

    The swipe, layers control, legend, opacity slider, outline tooltips and pixel inspector
    keep working in the saved file; every script is inlined (no CDN request).

    Parameters
    ----------
    objs : map, widget, holoviews object, bokeh model, str, or a list of them
        What to put on the page, in order (a :func:`glaviz.compare_map` map, plots from
        :mod:`glaviz.viz.plots`, HTML snippets).
    path : str or os.PathLike
        The ``.html`` file to write (atomically).
    overwrite : bool, default False
        Replace an existing file; otherwise an existing file is an error.
    title : str, default "glaviz"
        The page title.

    Returns
    -------
    pathlib.Path
        The file written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from glaviz.data import synthetic_scene
    >>> from glaviz.viz.maps import compare_map
    >>> ds = synthetic_scene(height=32, width=32, seed=0)
    >>> out = save_html(compare_map(ds), pathlib.Path(tempfile.mkdtemp()) / "map.html")
    >>> text = out.read_text()
    >>> 'src="http' in text, "glaviz-maps" in text
    (False, True)
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{str(path)!r} exists; pass overwrite=True to replace it or choose another path"
        )
    if path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"save_html writes .html files; got {str(path)!r}")
    text = render_html(objs, title=title)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), suffix=".html.tmp")
    return path
