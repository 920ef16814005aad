"""Tests of glaviz.errors: one tree of exceptions that also derive from the builtins."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
import xarray as xr

from glaviz import errors
from glaviz.errors import GlavizError, MissingCRSError

ROOT = Path(__file__).resolve().parents[1]

#: (class, the builtin(s) it must still be) for every error of the tree
BUILTINS = {
    "CatalogError": ValueError,
    "DataUnavailableError": FileNotFoundError,
    "ChecksumError": ValueError,
    "BenchmarkError": ValueError,
    "InputError": ValueError,
    "SceneError": ValueError,
    "SceneCRSError": ValueError,
    "SceneGridError": ValueError,
    "MissingCRSError": ValueError,
    "GridMismatchError": ValueError,
    "InputValueError": ValueError,
    "InputTypeError": TypeError,
    "CorruptFileError": OSError,
    "OutputNotWritableError": PermissionError,
    "RegistryError": ValueError,
    "KerasImportError": ValueError,
    "CheckpointError": ValueError,
    "IncompatibleSceneError": ValueError,
    "CheckpointMismatchError": ValueError,
    "ResumeMismatchError": ValueError,
}


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_error_is_a_glaviz_error_and_its_builtin(name):
    cls = getattr(errors, name)
    assert issubclass(cls, GlavizError) and issubclass(cls, BUILTINS[name])
    assert name in errors.__all__


def test_old_names_are_the_same_classes():
    from glaviz.catalog import CatalogError
    from glaviz.data import ChecksumError, DataUnavailableError, SceneError
    from glaviz.data.benchmark import BenchmarkError
    from glaviz.models import IncompatibleSceneError, KerasImportError, RegistryError
    from glaviz.models.checkpoint import CheckpointError

    old = (CatalogError, ChecksumError, DataUnavailableError, SceneError, BenchmarkError,
           IncompatibleSceneError, KerasImportError, RegistryError, CheckpointError)  # fmt: skip
    for cls in old:
        assert getattr(errors, cls.__name__) is cls
    assert issubclass(errors.SceneCRSError, SceneError)
    assert issubclass(errors.SceneCRSError, MissingCRSError)
    assert issubclass(errors.IncompatibleSceneError, CheckpointError)


def test_warnings_are_user_warnings():
    assert issubclass(errors.InputWarning, errors.GlavizWarning)
    assert issubclass(errors.PerformanceWarning, errors.GlavizWarning)
    assert issubclass(errors.GlavizWarning, UserWarning)


def test_the_module_imports_nothing_heavy():
    code = (
        "import sys, glaviz.errors; "
        "print([m for m in ('numpy', 'torch', 'xarray', 'rasterio', 'yaml', 'pandas') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---- one wording of "has no CRS" ------------------------------------------------------------

_CRS_MESSAGE = re.compile(r"(has|have) no CRS( \([^)]*\))?; (assign one|set |add a \.prj)")


def _no_crs_grid():
    return xr.DataArray(np.zeros((4, 5)), dims=("y", "x"), coords={"y": np.arange(4.0) * -30,
                        "x": np.arange(5.0) * 30})  # fmt: skip


def _outlines(crs="EPSG:32645"):
    return gpd.GeoDataFrame({"glacier_id": ["G1"]}, geometry=[shapely.box(0, -90, 60, 0)], crs=crs)


def _calls(tmp_path):
    """Every public way to hand glaviz something without CRS."""
    from glaviz.compare import compare_outlines
    from glaviz.data import open_scene, rasterize_outlines, read_outlines, slope
    from glaviz.evaluation import evaluate
    from glaviz.vector import area_km2, export_outlines, to_outlines

    nocrs_tif = tmp_path / "nocrs.tif"
    with rasterio.open(nocrs_tif, "w", driver="GTiff", width=8, height=8, count=1,
                       dtype="float32") as dst:  # fmt: skip
        dst.write(np.ones((1, 8, 8), np.float32))
    shp = tmp_path / "o.shp"

    def outline_file():
        _outlines(None).to_file(shp)
        return read_outlines(shp)

    grid = _no_crs_grid()
    with_crs = grid.rio.write_crs("EPSG:32645")
    return {
        "scene file": lambda: open_scene(dem=nocrs_tif),
        "scene array": lambda: open_scene(dem=grid.expand_dims(band=[1])),
        "slope": lambda: slope(grid),
        "outline file": outline_file,
        "rasterize grid": lambda: rasterize_outlines(_outlines(), like=grid),
        "rasterize outlines": lambda: rasterize_outlines(_outlines(None), like=with_crs),
        "area": lambda: area_km2(_outlines(None)),
        "to_outlines": lambda: to_outlines(grid.astype(np.uint8)),
        "export": lambda: export_outlines(_outlines(None), tmp_path / "x.gpkg"),
        "compare": lambda: compare_outlines(_outlines(None), _outlines()),
        "evaluate": lambda: evaluate(grid.astype(np.uint8), _outlines()),
    }


@pytest.mark.parametrize(
    "case",
    ["scene file", "scene array", "slope", "outline file", "rasterize grid", "rasterize outlines",
     "area", "to_outlines", "export", "compare", "evaluate"],
)  # fmt: skip
def test_missing_crs_is_one_error_with_one_wording(case, tmp_path):
    with pytest.raises(MissingCRSError) as info:
        _calls(tmp_path)[case]()
    assert isinstance(info.value, ValueError)
    assert _CRS_MESSAGE.search(str(info.value)), str(info.value)


def test_no_other_module_words_a_missing_crs_itself():
    offenders = []
    for path in sorted((ROOT / "glaviz").rglob("*.py")):
        rel = path.relative_to(ROOT / "glaviz").as_posix()
        # glaviz.errors words it; plots.py only shows such a message in an example
        if rel in ("errors.py", "viz/plots.py"):
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"[\"'][^\"']*(no CRS|without (a )?CRS)", line):  # in a string
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert not offenders, offenders
