"""Parameterised notebooks and reports: papermill runs, offline HTML, many regions at once.

:func:`run_notebook` executes any notebook with parameters (checked before a kernel starts);
:func:`report` runs ``notebooks/report.ipynb`` and writes ONE self-contained HTML file that opens
offline with the interactive map and plots working (code hidden, the executed notebook kept
beside it); :func:`report_many` writes one report per region in parallel on
``dask.distributed`` plus an ``index.html`` and a summary table.

Parameter files (papermill's ``parameters`` cell) follow two conventions that the checks use:
a parameter whose name ends in ``_path``, ``_file`` or ``_files``, or is ``checkpoint``, names
files that must exist (``None`` or ``""`` means "not given"); and each parameter's type is the
type of its default (``None`` defaults accept anything).
"""

from __future__ import annotations

import html as html_lib
import json
import os
import re
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from glaviz._io import atomic_write
from glaviz.viz.html import REPORT_ENV

__all__ = ["check_parameters", "notebook_path", "report", "report_many", "run_notebook"]


def _notebooks_dir() -> Path:
    """``notebooks/`` of a checkout (editable install), else the installed package data."""
    checkout = Path(__file__).resolve().parents[1] / "notebooks"
    if (checkout / "report.ipynb").exists():
        return checkout
    from importlib import resources

    return Path(str(resources.files("glaviz.notebooks")))


#: Where glaviz's notebooks live (``notebooks/`` in a checkout, package data otherwise).
NOTEBOOKS = _notebooks_dir()
_FILE_SUFFIXES = ("_path", "_file", "_files")


def notebook_path(notebook: str | os.PathLike) -> Path:
    """A notebook by path, or by name among glaviz's notebooks (``"report"``, ``"01_quickstart"``).

    Examples
    --------
    >>> notebook_path("report").name
    'report.ipynb'
    """
    path = Path(notebook)
    if path.suffix != ".ipynb":
        named = NOTEBOOKS / f"{notebook}.ipynb"
        if named.exists():
            return named
        path = path.with_suffix(".ipynb")
    if not path.exists():
        known = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) if NOTEBOOKS.is_dir() else []
        raise FileNotFoundError(
            f"notebook {str(notebook)!r} not found; give a path to a .ipynb or one of {known}"
        )
    return path


def _declared(notebook: Path) -> dict[str, Any]:
    import papermill

    params = papermill.inspect_notebook(str(notebook))
    if not params:
        raise ValueError(
            f"{str(notebook)!r} has no cell tagged 'parameters'; tag one so papermill can drive it"
        )
    return params


def _literal(text: str | None) -> Any:
    import ast

    try:
        return ast.literal_eval(text) if text is not None else None
    except (ValueError, SyntaxError):
        return None


def _is_file_parameter(name: str) -> bool:
    return name.endswith(_FILE_SUFFIXES) or name == "checkpoint"


def check_parameters(
    notebook: str | os.PathLike, parameters: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Refuse unknown names, wrong types and missing files before a kernel starts.

    Parameters
    ----------
    notebook : str or os.PathLike
        The notebook (path or glaviz notebook name).
    parameters : mapping
        Values for its ``parameters`` cell.

    Returns
    -------
    dict
        The parameters (unchanged), JSON-ready.

    Raises
    ------
    ValueError
        Naming the parameter, what is wrong and the fix.

    Examples
    --------
    >>> check_parameters("report", {"region": "Everest"})
    {'region': 'Everest'}
    >>> check_parameters("report", {"regoin": "Everest"})
    Traceback (most recent call last):
    ...
    ValueError: report.ipynb has no parameter 'regoin'; its parameters: ...
    """
    path = notebook_path(notebook)
    declared = _declared(path)
    parameters = dict(parameters or {})
    for name, value in parameters.items():
        if name not in declared:
            raise ValueError(
                f"{path.name} has no parameter {name!r}; its parameters: {sorted(declared)}"
            )
        default = _literal(declared[name].get("default"))
        if default is not None and value is not None:
            ok = isinstance(value, type(default)) or (
                isinstance(default, float) and isinstance(value, int)
            )
            if isinstance(default, bool) != isinstance(value, bool) or not ok:
                raise ValueError(
                    f"parameter {name!r} of {path.name} must be a {type(default).__name__} "
                    f"(like its default {default!r}), got {value!r}"
                )
        if _is_file_parameter(name) and value not in (None, ""):
            files = value if isinstance(value, list | tuple) else [value]
            for f in files:
                if not Path(str(f)).exists():
                    raise ValueError(
                        f"parameter {name!r} of {path.name}: file {str(f)!r} does not exist; "
                        "give an existing path (relative paths are from the current folder)"
                    )
    try:
        json.dumps(parameters)
    except TypeError as err:
        raise ValueError(
            f"parameters must be JSON values (str, numbers, lists, dicts): {err}"
        ) from None
    return parameters


def _absolute(parameters: dict[str, Any]) -> dict[str, Any]:
    """File parameters as absolute paths (the kernel may run in another folder)."""
    out = {}
    for name, value in parameters.items():
        if _is_file_parameter(name) and value not in (None, ""):
            if isinstance(value, list | tuple):
                value = [str(Path(v).resolve()) for v in value]
            else:
                value = str(Path(value).resolve())
        out[name] = value
    return out


def run_notebook(
    notebook: str | os.PathLike,
    parameters: Mapping[str, Any] | None = None,
    output: str | os.PathLike | None = None,
    *,
    cwd: str | os.PathLike | None = None,
    kernel_name: str = "python3",
    log_output: bool = False,
    overwrite: bool = True,
) -> Path:
    """Execute a notebook with parameters through papermill.

    Parameters
    ----------
    notebook : str or os.PathLike
        A path, or the name of one of glaviz's notebooks (``"01_quickstart"``).
    parameters : mapping, optional
        Values for the notebook's ``parameters`` cell, checked first (:func:`check_parameters`).
    output : str or os.PathLike, optional
        The executed notebook (default: ``<name>.out.ipynb`` in the current folder).
    cwd : str or os.PathLike, optional
        Folder the kernel runs in (default: the output's folder).
    kernel_name : str, default "python3"
    log_output : bool, default False
        Stream the notebook's output to this process's log.
    overwrite : bool, default True
        Replace an existing executed notebook.

    Returns
    -------
    pathlib.Path
        The executed notebook.
    """
    import papermill

    path = notebook_path(notebook)
    params = _absolute(check_parameters(path, parameters))
    out = Path(output) if output is not None else Path(f"{path.stem}.out.ipynb")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{str(out)!r} exists; pass overwrite=True or choose another path")
    out.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(
        str(path),
        str(out),
        parameters=params,
        kernel_name=kernel_name,
        cwd=str(cwd or out.parent),
        progress_bar=False,
        log_output=log_output,
    )
    return out


def notebook_to_html(notebook: str | os.PathLike, *, show_code: bool = False) -> str:
    """An executed notebook as ONE offline HTML page (widgets and plots working, no CDN).

    The widget manager, RequireJS, jupyter-leaflet and glaviz's map script are inlined as in
    :func:`glaviz.save_html`; MathJax and other CDN scripts are left out.
    """
    import nbformat
    from nbconvert import HTMLExporter

    from glaviz.viz.html import inline_widget_scripts

    nb = nbformat.read(str(notebook), as_version=4)
    exporter = HTMLExporter(
        template_name="lab",
        exclude_input=not show_code,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        require_js_url="glaviz-inline:require.js",
        widget_renderer_url="glaviz-inline:embed-amd.js",
        mathjax_url="",
    )
    body, _ = exporter.from_notebook_node(nb)
    body = re.sub(
        r'<script[^>]*src="glaviz-inline:require\.js"[^>]*>\s*</script>',
        lambda _: "",
        body,
    )
    # nbconvert's lab template appends the widget manager from a URL once the DOM is ready;
    # the inlined manager renders the widgets itself on load.
    body, n = re.subn(
        r"<script>\s*\(function\(\) \{\s*function addWidgetsRenderer\(\).*?</script>",
        lambda _: inline_widget_scripts(),
        body,
        count=1,
        flags=re.S,
    )
    if n != 1 and "widget-view+json" in body:  # pragma: no cover - a changed nbconvert template
        raise RuntimeError(
            "nbconvert's template changed: glaviz could not inline the widget manager; "
            "report this with `pip show nbconvert`"
        )
    body = _inline_panel_assets(body)
    # Anything else from a CDN (MathJax, mermaid) would fail offline: reports do not need them.
    body = re.sub(r'<script[^>]*src="https?://[^"]*"[^>]*>\s*</script>', "", body)
    body = re.sub(r'<link[^>]*href="https?://[^"]*"[^>]*>', "", body)
    return body


def _inline_panel_assets(body: str) -> str:
    """Stylesheets that holoviews' plots (through panel) name by CDN URL, as data: URLs from
    the installed panel package (the same files), so the page needs no network."""
    import base64

    try:
        import panel
    except ImportError:  # pragma: no cover - holoviews brings panel
        return body
    dist = Path(panel.__file__).parent / "dist"

    def local(match: re.Match[str]) -> str:
        path = dist / match.group(1)
        if not path.is_file():
            return match.group(0)
        kind = "text/css" if path.suffix == ".css" else "application/javascript"
        return f"data:{kind};base64," + base64.b64encode(path.read_bytes()).decode("ascii")

    return re.sub(
        r"https://cdn\.holoviz\.org/panel/[^/\"']+/dist/([^\"'?\s\\]+)(?:\?v=[^\"'\s\\]*)?",
        local,
        body,
    )


def report(
    parameters: Mapping[str, Any] | None = None,
    output: str | os.PathLike = "report.html",
    *,
    notebook: str | os.PathLike = "report",
    overwrite: bool = False,
    show_code: bool = False,
    kernel_name: str = "python3",
) -> Path:
    """Run the report notebook and write ONE offline HTML file (the executed notebook beside it).

    Parameters
    ----------
    parameters : mapping, optional
        Values for the report notebook's ``parameters`` cell (sample or scene files, sensor,
        checkpoint or a brief training, reference outlines, region name, TTA, ...); unknown
        names, wrong types and missing files are refused before the kernel starts.
    output : str or os.PathLike, default "report.html"
        The HTML file; the executed notebook is written beside it as ``<stem>.ipynb`` and the
        notebook's own outputs (prediction rasters, outlines) under ``<stem>_files/``.
    notebook : str or os.PathLike, default "report"
        The notebook to run (a path or a glaviz notebook name).
    overwrite : bool, default False
        Replace existing outputs; otherwise an existing HTML file is an error.
    show_code : bool, default False
        Keep the code cells in the HTML (hidden by default).
    kernel_name : str, default "python3"

    Returns
    -------
    pathlib.Path
        The HTML file.
    """
    output = Path(output)
    if output.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"report writes an .html file; got {str(output)!r}")
    if output.exists() and not overwrite:
        raise FileExistsError(
            f"{str(output)!r} exists; pass overwrite=True (--overwrite) or choose another path"
        )
    params = dict(parameters or {})
    declared = _declared(notebook_path(notebook))
    if "output_dir" in declared and "output_dir" not in params:
        params["output_dir"] = str((output.parent / f"{output.stem}_files").resolve())
    check_parameters(notebook, params)
    executed = output.with_suffix(".ipynb")
    old = os.environ.get(REPORT_ENV)
    os.environ[REPORT_ENV] = "1"  # the kernel inherits it: maps emit their inspector data
    try:
        run_notebook(notebook, params, executed, kernel_name=kernel_name)
    finally:
        if old is None:
            os.environ.pop(REPORT_ENV, None)
        else:
            os.environ[REPORT_ENV] = old
    text = notebook_to_html(executed, show_code=show_code)
    atomic_write(output, lambda tmp: tmp.write_text(text, encoding="utf-8"), suffix=".html.tmp")
    return output


def _one_region(entry: dict[str, Any], output_dir: str, overwrite: bool, notebook: str) -> dict:
    """Worker task: one region's report; never raises (the error goes into the row)."""
    name = str(entry.get("name") or entry.get("region") or "region")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "region"
    out = Path(output_dir) / f"{slug}.html"
    params = {k: v for k, v in entry.items() if k != "name"}
    params.setdefault("region", name)
    started = time.perf_counter()
    row: dict[str, Any] = {"region": name, "report": out.name}
    try:
        report(params, out, notebook=notebook, overwrite=overwrite)
        row["status"] = "ok"
        summary = out.with_name(f"{out.stem}_files") / "summary.json"
        if summary.exists():
            row.update(json.loads(summary.read_text()))
    except Exception as err:  # noqa: BLE001 - a failing region is reported, not raised
        row["status"] = "failed"
        row["error"] = f"{type(err).__name__}: {err}".strip()
        row["traceback"] = traceback.format_exc(limit=3)
    row["seconds"] = round(time.perf_counter() - started, 1)
    return row


def _index_html(table: pd.DataFrame, title: str) -> str:
    rows = []
    for rec in table.to_dict("records"):
        link = f'<a href="{html_lib.escape(rec["report"])}">{html_lib.escape(rec["region"])}</a>'
        if rec["status"] != "ok":
            link = html_lib.escape(rec["region"])
        cells = [link, html_lib.escape(rec["status"])]
        for key in ("iou", "precision", "recall", "area_deviation"):
            v = rec.get(key)
            cells.append("" if v is None or v != v else f"{v:.3f}")
        err = rec.get("error")
        cells.append(
            f'<pre class="error">{html_lib.escape(err)}</pre>' if err == err and err else ""
        )
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(
        f"<th>{h}</th>"
        for h in ("region", "status", "IoU", "precision", "recall", "area dev.", "error")
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html_lib.escape(title)}</title><style>body{{font-family:sans-serif}}"
        "td,th{padding:2px 8px;text-align:left}pre.error{color:#b00;margin:0;"
        "white-space:pre-wrap}</style></head><body>"
        f"<h1>{html_lib.escape(title)}</h1><table><tr>{head}</tr>{''.join(rows)}</table>"
        "</body></html>\n"
    )


def _load_config(config: str | os.PathLike | Sequence[Mapping[str, Any]]) -> list[dict]:
    if isinstance(config, str | os.PathLike):
        import yaml

        data = yaml.safe_load(Path(config).read_text())
        entries = data.get("regions", data) if isinstance(data, dict) else data
        defaults = data.get("defaults", {}) if isinstance(data, dict) else {}
        if not isinstance(entries, list):
            raise ValueError(
                f"{str(config)!r} must hold a list of regions (or 'regions:' with a list, and "
                "optional 'defaults:')"
            )
        return [{**defaults, **dict(e)} for e in entries]
    return [dict(e) for e in config]


def report_many(
    config: str | os.PathLike | Sequence[Mapping[str, Any]],
    output_dir: str | os.PathLike,
    *,
    jobs: int = 1,
    scheduler: str | None = None,
    overwrite: bool = False,
    notebook: str = "report",
    title: str = "glaviz reports",
) -> pd.DataFrame:
    """One report per region, in parallel, plus ``index.html`` and ``summary.csv``.

    Parameters
    ----------
    config : path to a YAML file, or a list of dicts
        Each entry: report parameters plus ``name``. A YAML file holds a list, or
        ``{"defaults": {...}, "regions": [...]}``.
    output_dir : str or os.PathLike
        Folder of the reports, ``index.html`` and ``summary.csv``.
    jobs : int, default 1
        Parallel reports on a ``dask.distributed`` LocalCluster (processes).
    scheduler : str, optional
        Address of an existing dask scheduler instead of a LocalCluster.
    overwrite : bool, default False
        Replace existing reports.
    notebook : str, default "report"
    title : str

    Returns
    -------
    pandas.DataFrame
        One row per region: ``status`` (``ok``/``failed``), ``error``, headline metrics,
        ``seconds``. Every entry is checked first; a region failing while it runs is reported
        in the index and does not stop the others.
    """
    entries = _load_config(config)
    names = [str(e.get("name") or e.get("region") or "") for e in entries]
    if any(not n for n in names) or len(set(names)) != len(names):
        raise ValueError(f"every region needs a unique 'name'; got {names}")
    for entry in entries:  # refuse bad parameters before any kernel starts
        params = {k: v for k, v in entry.items() if k != "name"}
        try:
            check_parameters(notebook, params)
        except ValueError as err:
            raise ValueError(f"region {entry.get('name')!r}: {err}") from None
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if jobs <= 1 and scheduler is None:
        rows = [_one_region(e, str(out), overwrite, notebook) for e in entries]
    else:
        from dask.distributed import Client, LocalCluster

        cluster = None
        if scheduler is None:
            cluster = LocalCluster(
                n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None
            )
        client = Client(scheduler or cluster)
        try:
            futures = [
                client.submit(_one_region, e, str(out), overwrite, notebook, pure=False)
                for e in entries
            ]
            rows = client.gather(futures)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    table = pd.DataFrame(rows)
    text = _index_html(table, title)
    atomic_write(out / "index.html", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    cols = [c for c in table.columns if c != "traceback"]
    atomic_write(out / "summary.csv", lambda tmp: table[cols].to_csv(tmp, index=False))
    return table
