"""The names of ``glaviz``: read by type checkers, and at run time by ``lazy_loader.attach_stub``
(``glaviz/__init__.py``), which imports each submodule on first use.

Add a public name here, nowhere else: ``from .module import name`` and ``__all__``.
"""

from . import (
    calibration,
    catalog,
    compare,
    data,
    errors,
    evaluation,
    inference,
    metrics,
    models,
    reports,
    train,
    vector,
    viz,
)
from .catalog import load_catalog
from .compare import (
    compare_outlines,
    summarise_against_experts,
)
from .data.fetch import fetch
from .data.outlines import rasterize_outlines, read_outlines
from .data.samples import sample_scene, sample_tiles
from .data.scaling import scale
from .data.scene import group_array, open_scene
from .data.stac import open_stac
from .data.synthetic import synthetic_scene
from .data.terrain import slope
from .evaluation import evaluate, evaluate_benchmark
from .inference.calibrate import calibrate
from .inference.distributed import predict_many
from .inference.predict_scene import predict
from .inference.sinks import open_prediction
from .models.checkpoint import (
    load_checkpoint,
    save_checkpoint,
)
from .models.keras_import import load_keras_weights
from .models.registry import build
from .reports import report, run_notebook
from .train.fit import fit
from .train.strategies import (
    adapt_region,
    finetune,
    fit_regional,
)
from .vector import (
    confidence_bands,
    export_outlines,
    to_outlines,
)
from .viz.html import save_html
from .viz.maps import compare_map

__version__: str

__all__ = [
    "__version__",
    "adapt_region",
    "build",
    "calibrate",
    "calibration",
    "catalog",
    "compare",
    "compare_map",
    "compare_outlines",
    "confidence_bands",
    "data",
    "errors",
    "evaluate",
    "evaluate_benchmark",
    "evaluation",
    "export_outlines",
    "fetch",
    "finetune",
    "fit",
    "fit_regional",
    "group_array",
    "inference",
    "load_catalog",
    "load_checkpoint",
    "load_keras_weights",
    "metrics",
    "models",
    "open_prediction",
    "open_scene",
    "open_stac",
    "predict",
    "predict_many",
    "rasterize_outlines",
    "read_outlines",
    "report",
    "reports",
    "run_notebook",
    "sample_scene",
    "sample_tiles",
    "save_checkpoint",
    "save_html",
    "scale",
    "slope",
    "summarise_against_experts",
    "synthetic_scene",
    "to_outlines",
    "train",
    "vector",
    "viz",
]
