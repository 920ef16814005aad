"""Models: GlaViTU (a faithful PyTorch port), its building blocks and the Keras weight importer.

Examples
--------
>>> from glaviz.models import GlaViTU, count_parameters_keras_style
>>> count_parameters_keras_style(GlaViTU())["total"]
10031938
"""

from __future__ import annotations

from typing import Any

from glaviz.models.blocks import FusionBlock, LocationEncoder
from glaviz.models.glavitu import GlaViTU, count_parameters_keras_style

__all__ = [
    "FusionBlock",
    "GlaViTU",
    "KerasImportError",
    "LocationEncoder",
    "count_parameters_keras_style",
    "load_keras_weights",
]


def __getattr__(name: str) -> Any:
    # The importer needs h5py: import it only when asked for.
    if name in ("load_keras_weights", "KerasImportError"):
        from glaviz.models import keras_import

        return getattr(keras_import, name)
    raise AttributeError(f"module 'glaviz.models' has no attribute {name!r}")
