"""Models: GlaViTU (a faithful PyTorch port), the baselines, their blocks and the Keras importer.

Layout (each module imports only the ones above it): :mod:`~glaviz.models.fused` (tensor
functions), :mod:`~glaviz.models.blocks` (layers), :mod:`~glaviz.models.base` (the
:class:`FusionModel` every model subclasses), the models (:mod:`~glaviz.models.glavitu`,
:mod:`~glaviz.models.resunet`, :mod:`~glaviz.models.setr`, :mod:`~glaviz.models.transunet`,
:mod:`~glaviz.models.deeplab`), :mod:`~glaviz.models.registry` (the name -> builder table),
:mod:`~glaviz.models.checkpoint`.

Examples
--------
>>> from glaviz.models import GlaViTU, count_parameters_keras_style
>>> count_parameters_keras_style(GlaViTU())["total"]
10031938
"""

from __future__ import annotations

from typing import Any

from glaviz.models.base import FusionModel
from glaviz.models.blocks import FusionBlock, LocationEncoder
from glaviz.models.checkpoint import (
    CheckpointError,
    IncompatibleSceneError,
    check_compatible,
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
    update_checkpoint_metadata,
)
from glaviz.models.deeplab import DeepLabV3Plus
from glaviz.models.glavitu import GlaViTU, count_parameters_keras_style
from glaviz.models.registry import (
    RegistryError,
    available_models,
    build,
    register_model,
    registry_name,
)
from glaviz.models.resunet import ResUNet
from glaviz.models.setr import SETR
from glaviz.models.transunet import TransUNet

__all__ = [
    "SETR",
    "CheckpointError",
    "DeepLabV3Plus",
    "FusionBlock",
    "FusionModel",
    "GlaViTU",
    "IncompatibleSceneError",
    "KerasImportError",
    "LocationEncoder",
    "RegistryError",
    "ResUNet",
    "TransUNet",
    "available_models",
    "build",
    "check_compatible",
    "count_parameters_keras_style",
    "load_checkpoint",
    "load_keras_weights",
    "read_checkpoint_metadata",
    "register_model",
    "registry_name",
    "save_checkpoint",
    "update_checkpoint_metadata",
]


def __getattr__(name: str) -> Any:
    # The importer needs h5py: import it only when asked for.
    if name in ("load_keras_weights", "KerasImportError"):
        from glaviz.models import keras_import

        return getattr(keras_import, name)
    raise AttributeError(f"module 'glaviz.models' has no attribute {name!r}")
