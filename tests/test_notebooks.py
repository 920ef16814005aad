"""The notebooks are documentation that runs: each one is executed headless with papermill.

Every notebook under ``notebooks/`` runs here with small budgets (one test id each; ``report``
runs in ``tests/test_reports.py``), offline (``GLAVIZ_OFFLINE=1``: sample data from the mirror
or the cache only), with its outputs under the test's temporary folder. Papermill raises on any
failing cell; each test then checks what the notebook is for (a metrics table with IoU, the
GeoTIFFs and GeoPackages, ...). The static tests check what git holds: outputs cleared, a
``parameters`` cell, and workshop solutions tagged, collapsed and not needed by later cells.
"""

from __future__ import annotations

import ast
import os
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

import glaviz

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SHARED = Path(os.environ.get("GLAVIZ_SHARED", ROOT.parent / "shared"))
KERAS_WEIGHTS = SHARED / "fixtures" / "keras_glavitu" / "A_global_weights.h5"

#: Parameters that keep each notebook to well under a minute on 2 cores.
RUNS: dict[str, dict[str, Any]] = {
    "01_quickstart.ipynb": {"epochs": 1, "steps_per_epoch": 3},
    "02_train.ipynb": {
        "epochs": 2, "steps_per_epoch": 2, "more_epochs": 1, "strategy_steps": 2,
        "synthetic_size": 64, "adapt_epochs": 2,
    },
    "03_predict_and_compare.ipynb": {
        "epochs": 1, "steps_per_epoch": 3, "interrupt_after_s": 1.0,
        "keras_weights": str(KERAS_WEIGHTS),
    },
    "04_evaluate.ipynb": {
        "epochs": 1, "steps_per_epoch": 3, "synthetic_size": 64, "synthetic_steps": 3,
    },
    "workshop/1_bands.ipynb": {"synthetic_size": 128},
    "workshop/2_train_small.ipynb": {"minutes": 0.2, "steps_per_epoch": 3},
    "workshop/3_read_the_map.ipynb": {"epochs": 1, "steps_per_epoch": 3},
}  # fmt: skip

#: The output type of a holoviews figure drawn in a notebook (not its text repr).
HOLOVIEWS = "application/vnd.holoviews_exec.v0+json"

#: Notebooks executed by another test module.
EXECUTED_ELSEWHERE = {"report.ipynb": "tests/test_reports.py"}


def all_notebooks() -> list[str]:
    return sorted(
        str(p.relative_to(NOTEBOOKS))
        for p in NOTEBOOKS.rglob("*.ipynb")
        if ".ipynb_checkpoints" not in p.parts and "outputs" not in p.parts
    )


def tagged(nb: nbformat.NotebookNode, tag: str) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if tag in c.metadata.get("tags", [])]


def text_of(cell: nbformat.NotebookNode) -> str:
    """Everything a code cell printed or displayed, as text (plain and HTML)."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        for kind in ("text/plain", "text/html"):
            parts.append(str(out.get("data", {}).get(kind, "")))
    return "\n".join(parts)


def cell_starting(nb: nbformat.NotebookNode, prefix: str) -> nbformat.NotebookNode:
    found = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(prefix)]
    assert len(found) == 1, f"expected one code cell starting with {prefix!r}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def workshop_dir(tmp_path_factory) -> Path:
    """One working folder for the workshop sequence: notebook 3 uses notebook 2's model."""
    return tmp_path_factory.mktemp("workshop")


@pytest.fixture()
def run_notebook(tmp_path, workshop_dir, monkeypatch):
    """Execute a notebook with papermill; returns the executed notebook and its folder."""
    import papermill

    # No downloads: the samples come from the mirror (conftest) or the cache.
    monkeypatch.setenv("GLAVIZ_OFFLINE", "1")
    # Threads sleep instead of spinning while they wait (libgomp): on a shared 2-core machine
    # spinning threads slow PyTorch down several-fold (measured: predict 4.5 s instead of
    # 16-37 s under load). The kernels inherit the setting; results are unchanged.
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")

    def run(name: str) -> tuple[nbformat.NotebookNode, Path]:
        cwd = workshop_dir if name.startswith("workshop/") else tmp_path
        executed = tmp_path / f"executed_{Path(name).name}"
        started = time.perf_counter()
        papermill.execute_notebook(
            str(NOTEBOOKS / name), str(executed), parameters=RUNS[name],
            kernel_name="python3", cwd=str(cwd), progress_bar=False,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        print(f"{name}: {seconds:.1f} s")
        return nbformat.read(executed, as_version=4), cwd

    return run


# ------------------------------------------------------------------------- what git holds


def test_every_notebook_is_executed_by_a_test():
    names = all_notebooks()
    assert set(RUNS) <= set(names), f"missing notebooks: {sorted(set(RUNS) - set(names))}"
    for name in names:
        if name in EXECUTED_ELSEWHERE:
            test = ROOT / EXECUTED_ELSEWHERE[name]
            assert name in test.read_text(), f"{test} does not run {name}"
        else:
            assert name in RUNS, f"notebooks/{name} is not executed by any test: add it to RUNS"


@pytest.mark.parametrize("name", all_notebooks())
def test_notebook_is_clean_in_git(name):
    """Outputs cleared, one ``parameters`` code cell, the python3 kernel."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "papermill" not in nb.metadata, "an executed notebook was committed"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {i} has outputs: clear them"
            assert cell.execution_count is None, f"cell {i} has an execution count"
            assert not {"papermill", "execution"} & set(cell.metadata), f"cell {i} metadata"
    parameters = tagged(nb, "parameters")
    assert len(parameters) == 1 and parameters[0].cell_type == "code"
    for key in RUNS.get(name, {}):
        assert f"\n{key} = " in f"\n{parameters[0].source}", f"no parameter {key!r}"
    if name in RUNS:
        assert '\noutput_dir = "outputs/' in f"\n{parameters[0].source}"


def _names(source: str, ctx: type) -> set[str]:
    """Names a cell's code stores (``ast.Store``) or reads (``ast.Load``)."""
    nodes = ast.walk(ast.parse(source))
    return {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)}


@pytest.mark.parametrize("name", [n for n in all_notebooks() if n.startswith("workshop/")])
def test_workshop_solutions_are_hidden_and_optional(name):
    """Each exercise has a runnable cell, then a collapsed solution no later cell depends on."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    solutions = [i for i, c in enumerate(nb.cells) if "solution" in c.metadata.get("tags", [])]
    assert solutions, "a workshop notebook without exercises"
    for i in solutions:
        cell = nb.cells[i]
        assert cell.cell_type == "code"
        assert cell.metadata["jupyter"]["source_hidden"] is True
        before = nb.cells[i - 1]
        assert before.cell_type == "code" and "solution" not in before.metadata.get("tags", [])
        assert "←" in before.source, "the exercise cell should say what to change"
    # A student copy without the solution cells must still run: later cells use no name that
    # only a solution defines.
    defined: set[str] = set()
    only_in_solutions: set[str] = set()
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        stored = _names(cell.source, ast.Store)
        if i in solutions:
            only_in_solutions |= stored - defined
            continue
        used = _names(cell.source, ast.Load) & only_in_solutions
        assert not used, f"cell {i} uses {sorted(used)}, defined only in a solution"
        defined |= stored
        only_in_solutions -= stored


def test_workshop_readme_has_the_one_command():
    text = (NOTEBOOKS / "workshop" / "README.md").read_text()
    assert "python -m glaviz.data.prepare_offline" in text
    assert "GLAVIZ_OFFLINE=1" in text


# ------------------------------------------------------------------------- execution


def check_01_quickstart(nb, cwd):
    (metrics,) = tagged(nb, "metrics")
    html = "".join(str(o.get("data", {}).get("text/html", "")) for o in metrics.outputs)
    assert "<th>iou</th>" in html and "test strip" in html
    maps = [c for c in nb.cells if "compare_map(" in c.source]
    assert len(maps) == 2
    for cell in maps:
        assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
                   for o in cell.outputs)  # fmt: skip
    assert (cwd / "outputs" / "01_quickstart" / "model" / "best.safetensors").is_file()


def check_02_train(nb, cwd):
    run = cwd / "outputs" / "02_train"
    assert {p.name for p in (run / "everest").iterdir()} == {"best.safetensors", "last.safetensors"}
    provenance = glaviz.models.read_checkpoint_metadata(run / "everest" / "best.safetensors")
    assert provenance["provenance"]["bn_momentum"] == 0.1
    # the resume demo: interrupted after epoch 1, then the same call finished the run
    assert "interrupted: stopped after epoch 1" in text_of(cell_starting(nb, "def stop_after"))
    resumed = text_of(cell_starting(nb, "resumed = ")).splitlines()
    assert any(line.startswith("0 ") for line in resumed)
    assert any(line.startswith("1 ") for line in resumed)  # more_epochs=1: epochs 1 and 2
    assert "epochs" in text_of(cell_starting(nb, "from glaviz.errors import ResumeMismatchError"))
    figure = cell_starting(nb, "glaviz.viz.training_history(")
    assert any(HOLOVIEWS in o.get("data", {}) for o in figure.outputs)
    summary = text_of(cell_starting(nb, "pd.Series({"))
    for strategy in ("global", "regional ALP+NZ", "fine-tuned", "region encoding, unknown",
                     "coordinate encoding"):  # fmt: skip
        assert strategy in summary


def check_03_predict_and_compare(nb, cwd):
    import geopandas as gpd
    import rasterio

    out = cwd / "outputs" / "03_predict_and_compare"
    for variable in ("glacier_probability", "glacier_mask", "confidence"):
        with rasterio.open(out / f"everest_{variable}.tif") as src:
            assert (src.height, src.width, src.crs.to_epsg()) == (655, 800, 32645)
    assert not (out / "everest.progress.json").exists()  # finished: no partial run left
    outlines = gpd.read_file(out / "everest_outlines.gpkg")
    assert len(outlines) >= 1 and "area_km2" in outlines and outlines.crs.to_epsg() == 32645
    assert gpd.read_file(out / "everest_confidence_bands.gpkg").crs.to_epsg() == 32645
    assert (out / "everest_outlines.geojson").is_file()
    assert (out / "everest_map.html").stat().st_size > 1_000_000
    # calibration went into the notebook's copy of the model
    meta = glaviz.models.read_checkpoint_metadata(out / "model.safetensors")
    assert meta["calibration"]["accuracy"][-1] == 1.0
    # the guarded Keras section ran with the fixture's weights
    assert (out / "authors_model.safetensors").is_file()
    refused = text_of(cell_starting(nb, "if keras_weights:\n    try"))
    assert refused.startswith("Everest sample:") and "dem" in refused


def check_04_evaluate(nb, cwd):
    import pandas as pd

    out = cwd / "outputs" / "04_evaluate"
    scores = pd.read_csv(out / "scores.csv")
    regions = scores[scores["level"] == "region"]
    assert sorted(regions["name"]) == ["ALP", "HMA", "NZ"]
    assert {"mean over regions", "all"} <= set(scores["name"])
    assert scores["iou"].between(0, 1).all()
    glaciers = pd.read_csv(out / "glaciers.csv", index_col="glacier_id")
    assert len(glaciers) == 86 and glaciers["within_uncertainty"].dtype == bool
    assert glaciers["inside_scene"].sum() == 61
    (metrics,) = tagged(nb, "metrics")
    assert "iou" in text_of(metrics)
    for call in ("metric_bars", "reliability_diagram", "glacier_deviations",
                 "confidence_histogram"):  # fmt: skip
        cell = next(c for c in nb.cells if f"glaviz.viz.{call}(" in c.source)
        assert any(HOLOVIEWS in o.get("data", {}) for o in cell.outputs), call


def check_workshop_1_bands(nb, cwd):
    assert (cwd / "outputs" / "1_bands" / "synthetic_layers.html").is_file()
    solutions = tagged(nb, "solution")
    assert len(solutions) == 2
    assert "iou" in text_of(solutions[0]) and "debris" in text_of(solutions[1])


def check_workshop_2_train_small(nb, cwd):
    assert (cwd / "outputs" / "2_train_small" / "model" / "best.safetensors").is_file()
    figure = cell_starting(nb, "glaviz.viz.training_history(")
    assert any(HOLOVIEWS in o.get("data", {}) for o in figure.outputs)
    assert "everything is glacier: IoU" in text_of(tagged(nb, "solution")[0])


def check_workshop_3_read_the_map(nb, cwd):
    assert (cwd / "outputs" / "3_read_the_map" / "everest_map.html").is_file()
    model_cell = cell_starting(nb, "if not Path(checkpoint).is_file()")
    if (cwd / "outputs" / "2_train_small" / "model" / "best.safetensors").is_file():
        assert "not found" not in text_of(model_cell)  # it used notebook 2's model
    assert "false negative" in text_of(tagged(nb, "solution")[0])


#: What each executed notebook must have produced, beyond running without error.
CHECKS = {
    "01_quickstart.ipynb": check_01_quickstart,
    "02_train.ipynb": check_02_train,
    "03_predict_and_compare.ipynb": check_03_predict_and_compare,
    "04_evaluate.ipynb": check_04_evaluate,
    "workshop/1_bands.ipynb": check_workshop_1_bands,
    "workshop/2_train_small.ipynb": check_workshop_2_train_small,
    "workshop/3_read_the_map.ipynb": check_workshop_3_read_the_map,
}


@pytest.mark.parametrize("name", list(RUNS))
def test_notebook_runs(name, run_notebook):
    """Papermill raises on a failing cell; then the notebook's own results are checked."""
    nb, cwd = run_notebook(name)
    CHECKS[name](nb, cwd)
