"""glaviz: GlaViTU glacier mapping in Jupyter.

The top-level namespace gathers the functions of the data flow; submodules are imported on first
use so that ``import glaviz`` stays fast (PyTorch loads only when a model is needed).

Examples
--------
>>> import glaviz
>>> ds = glaviz.data.synthetic_scene(height=64, width=64, seed=0)
>>> scaled = glaviz.scale(ds)
>>> scaled.attrs["scaled"]
1
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0.dev0"

# public name -> module that defines it
_LAZY = {
    "load_catalog": "glaviz.catalog",
    "fetch": "glaviz.data.fetch",
    "open_scene": "glaviz.data.scene",
    "open_stac": "glaviz.data.stac",
    "group_array": "glaviz.data.scene",
    "scale": "glaviz.data.scaling",
    "slope": "glaviz.data.terrain",
    "read_outlines": "glaviz.data.outlines",
    "rasterize_outlines": "glaviz.data.outlines",
    "synthetic_scene": "glaviz.data.synthetic",
    "sample_scene": "glaviz.data.samples",
    "sample_tiles": "glaviz.data.samples",
    "build": "glaviz.models.registry",
    "save_checkpoint": "glaviz.models.checkpoint",
    "load_checkpoint": "glaviz.models.checkpoint",
    "load_keras_weights": "glaviz.models.keras_import",
    "fit": "glaviz.train.fit",
    "fit_regional": "glaviz.train.strategies",
    "finetune": "glaviz.train.strategies",
    "adapt_region": "glaviz.train.strategies",
    "predict": "glaviz.inference.predict_scene",
    "predict_many": "glaviz.inference.distributed",
    "calibrate": "glaviz.inference.calibrate",
    "to_outlines": "glaviz.vector",
    "export_outlines": "glaviz.vector",
    "confidence_bands": "glaviz.vector",
    "evaluate": "glaviz.evaluation",
    "evaluate_benchmark": "glaviz.evaluation",
    "compare_outlines": "glaviz.compare",
    "summarise_against_experts": "glaviz.compare",
    "open_prediction": "glaviz.inference.sinks",
    "report": "glaviz.reports",
    "run_notebook": "glaviz.reports",
    "compare_map": "glaviz.viz.maps",
    "save_html": "glaviz.viz.html",
}
_SUBMODULES = (
    "catalog",
    "errors",
    "data",
    "models",
    "train",
    "inference",
    "metrics",
    "calibration",
    "vector",
    "evaluation",
    "compare",
    "viz",
    "reports",
)

__all__ = sorted([*_LAZY, *_SUBMODULES, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"glaviz.{name}")
    raise AttributeError(f"module 'glaviz' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
