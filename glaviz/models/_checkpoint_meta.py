"""Checkpoint metadata: the JSON document of a glaviz checkpoint, built, validated and merged.

Private helpers of :mod:`glaviz.models.checkpoint` (which documents the layout and re-exports
the public names): the format constants, :class:`CheckpointError`, the metadata derived from a
model (:func:`_base_metadata`), the validation and merging of caller metadata
(:func:`_apply_changes`), the checks of the metadata read from a file header
(:func:`_metadata_from_header`), and the public :func:`read_header` (a safetensors file's
header) and :func:`shape_problems` (tensors against a model's state dict).
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import glaviz
from glaviz.catalog import load_catalog
from glaviz.errors import CheckpointError

FORMAT = "glaviz-checkpoint"
#: Version of the metadata layout written by this glaviz.
FORMAT_VERSION = 1
#: The safetensors header metadata key holding the JSON document.
METADATA_KEY = "glaviz"
# Keys derived from the model itself: callers cannot set them.
_DERIVED = ("format", "format_version", "model", "config", "inputs", "location", "weights_sha256")
_DERIVED_PROVENANCE = ("glaviz_version", "torch_version", "created")


def _to_json(value: Any, where: str) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _to_json(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return _to_json(value.tolist(), where)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise CheckpointError(f"metadata {where} is {value}: JSON holds only finite numbers")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise CheckpointError(
        f"metadata {where} is a {type(value).__name__}, which JSON cannot hold; pass numbers, "
        "strings, lists or dicts"
    )


def _check_calibration(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not {"confidence", "accuracy"} <= set(value):
        raise CheckpointError(
            "calibration must be None or a mapping with 'confidence' and 'accuracy' lists "
            f"(knots of the calibration map), got {value!r:.200}"
        )
    conf = np.asarray(value["confidence"], dtype=float)
    acc = np.asarray(value["accuracy"], dtype=float)
    if conf.ndim != 1 or conf.shape != acc.shape or conf.size < 2:
        raise CheckpointError(
            "calibration 'confidence' and 'accuracy' must be 1-D of one length >= 2, got "
            f"shapes {conf.shape} and {acc.shape}"
        )
    both = np.concatenate([conf, acc])
    if not np.all(np.isfinite(both)) or both.min() < 0 or both.max() > 1:
        raise CheckpointError("calibration 'confidence' and 'accuracy' must lie in [0, 1]")
    if np.any(np.diff(conf) <= 0):
        raise CheckpointError("calibration 'confidence' knots must be strictly increasing")
    return _to_json(value, "calibration")


def _apply_changes(meta: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Validate caller metadata and merge it into a copy of ``meta`` (see save_checkpoint)."""
    meta = json.loads(json.dumps(meta))
    channels = meta["inputs"]["channels"]
    for key, value in changes.items():
        if key in _DERIVED or key in _DERIVED_PROVENANCE:
            raise CheckpointError(
                f"metadata key {key!r} is derived from the model and cannot be set; "
                "rebuild and re-save the model to change it"
            )
        if key == "bands":
            for group, names in dict(value).items():
                if group not in channels:
                    raise CheckpointError(
                        f"bands given for group {group!r}, which the model does not take "
                        f"(groups: {list(channels)})"
                    )
                if names is not None and len(names) != channels[group]:
                    raise CheckpointError(
                        f"bands[{group!r}] lists {len(names)} names but the model takes "
                        f"{channels[group]} channels for that group"
                    )
                meta["inputs"]["bands"][group] = None if names is None else list(map(str, names))
        elif key == "scaling":
            for group, entry in dict(value).items():
                ok = isinstance(entry, Mapping)
                lengths = {len(entry.get(k, ())) for k in ("bands", "min", "max")} if ok else {0}
                if len(lengths) != 1 or 0 in lengths:
                    raise CheckpointError(
                        f"scaling[{group!r}] needs 'bands', 'min' and 'max' lists of one length"
                    )
            meta["scaling"] = _to_json(value, "scaling")
        elif key == "regions":
            codes = list(value["codes"] if isinstance(value, Mapping) else value)
            slot = value.get("unknown_slot") if isinstance(value, Mapping) else None
            slot = len(codes) if slot is None else int(slot)
            loc = meta["location"]
            if len(set(map(str, codes))) != len(codes):
                raise CheckpointError(f"regions must be distinct region codes, got {codes}")
            if loc["encoding"] == "region" and loc["features"] != slot + 1:
                raise CheckpointError(
                    f"the region list has unknown slot {slot} ({slot + 1} one-hot entries) but "
                    f"the model's location vector has {loc['features']} features; pass "
                    "regions=[...codes in one-hot order...]"
                )
            meta["regions"] = {"codes": list(map(str, codes)), "unknown_slot": slot}
        elif key == "calibration":
            meta["calibration"] = _check_calibration(value)
        elif key == "provenance":
            bad = [k for k in dict(value) if k in _DERIVED_PROVENANCE]
            if bad:
                raise CheckpointError(f"provenance keys {bad} are set by glaviz")
            meta["provenance"].update(_to_json(value, "provenance"))
        else:
            meta["provenance"][str(key)] = _to_json(value, key)
    return meta


def _default_bands(channels: Mapping[str, int]) -> dict[str, list[str] | None]:
    """The catalog's canonical band names of each group whose channel count matches."""
    groups = load_catalog().groups
    return {
        g: list(groups[g].bands) if g in groups and len(groups[g].bands) == n else None
        for g, n in channels.items()
    }


def _model_channels(model: nn.Module) -> Mapping[str, int]:
    """``model.input_channels``: the ``{group: channels}`` every registered model exposes."""
    channels = model.input_channels
    if not isinstance(channels, Mapping):
        raise TypeError(
            f"{type(model).__name__}.input_channels must be a mapping {{group: channels}}, "
            f"got {type(channels).__name__}"
        )
    return channels


def _base_metadata(model: nn.Module, name: str, config: dict[str, Any]) -> dict[str, Any]:
    catalog = load_catalog()
    channels = {str(g): int(c) for g, c in _model_channels(model).items()}
    previous = getattr(model, "checkpoint_metadata", None) or {}
    bands = _default_bands(channels)
    bands.update(
        {g: b for g, b in previous.get("inputs", {}).get("bands", {}).items() if g in channels}
    )
    enc = getattr(model, "location_encoding", config.get("location_encoding", "none"))
    loc_encoder = getattr(model, "location_encoder", None)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": name,
        "config": config,
        "inputs": {"groups": list(channels), "channels": channels, "bands": bands},
        "location": {
            "encoding": enc,
            "features": None if loc_encoder is None else int(loc_encoder.in_features),
        },
        "scaling": previous.get("scaling") or catalog.scaling_table(),
        "regions": previous.get("regions")
        or {"codes": list(catalog.region_codes), "unknown_slot": int(catalog.unknown_slot)},
        "calibration": None,
        "provenance": {
            "data": None,
            "strategy": None,
            "epochs": None,
            "glaviz_version": glaviz.__version__,
            "torch_version": torch.__version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
        "weights_sha256": None,
    }
    return _to_json(meta, "metadata")


def _metadata_from_header(header: Mapping[str, Any], path: Path) -> dict[str, Any]:
    raw = (header.get("__metadata__") or {}).get(METADATA_KEY)
    if raw is None:
        raise CheckpointError(
            f"{path} is a safetensors file without glaviz metadata (no {METADATA_KEY!r} header "
            "key), so the architecture is unknown: build the model yourself and "
            "load_state_dict(safetensors.torch.load_file(path)), then save_checkpoint() it"
        )
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: the glaviz metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: the {METADATA_KEY!r} header is not glaviz metadata")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written in checkpoint format {version!r}; this glaviz "
            f"({glaviz.__version__}) reads up to {FORMAT_VERSION}: upgrade glaviz"
        )
    return meta


# ------------------------------------------------------------------------------------------
# the file header and the tensors (public: re-exported by glaviz.models.checkpoint)

_MAX_HEADER = 100_000_000  # the safetensors limit
_PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin", ".tar", ".zip")
_KERAS_SUFFIXES = (".h5", ".hdf5", ".keras")
_PICKLE_HELP = (
    "glaviz never unpickles (unpickling runs arbitrary code). If you trust the file: "
    "model = glaviz.models.registry.build(...); model.load_state_dict(torch.load(path, "
    "weights_only=True)); save_checkpoint(model, 'model.safetensors')"
)
_KERAS_HELP = "import it with glaviz.models.keras_import.load_keras_weights, then save_checkpoint"


def read_header(path: str | os.PathLike[str]) -> tuple[dict[str, Any], int]:
    """The safetensors header of a file (parsed JSON) and the offset of its tensor data.

    Only the header is read. Files that are not safetensors are refused with a message saying
    what they are: PyTorch pickles (by suffix or content), Keras/HDF5 files, truncated or
    corrupted headers.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.safetensors`` file: a checkpoint
        (:func:`~glaviz.models.checkpoint.save_checkpoint`) or a training state
        (:func:`glaviz.train.state.save_training_state`).

    Returns
    -------
    header : dict
        The JSON header: ``{tensor name: {"dtype", "shape", "data_offsets"}}`` and, when
        present, ``"__metadata__"`` (``{str: str}``).
    offset : int
        Where the tensor data starts in the file (8 + the header's length).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    CheckpointError
        ``path`` is a pickle, a Keras/HDF5 file or not a readable safetensors file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from glaviz.models.checkpoint import save_checkpoint
    >>> from glaviz.models.registry import build
    >>> p = save_checkpoint(build("resunet-small"), pathlib.Path(tempfile.mkdtemp()) / "r")
    >>> header, offset = read_header(p)
    >>> sorted(header["__metadata__"]), offset == 8 + int.from_bytes(p.read_bytes()[:8], "little")
    (['glaviz'], True)
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in _PICKLE_SUFFIXES:
        raise CheckpointError(f"{path}: {suffix} files are PyTorch pickles; {_PICKLE_HELP}")
    if suffix in _KERAS_SUFFIXES:
        raise CheckpointError(f"{path}: a Keras weight file; {_KERAS_HELP}")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(9)
        n = struct.unpack("<Q", head[:8])[0] if len(head) == 9 else -1
        # safetensors: a plausible header length, then the JSON header's "{" (checked first:
        # a length whose first bytes happen to be a pickle's or a zip's magic is still one)
        plausible = 0 < n <= _MAX_HEADER and 8 + n <= size and head[8:] == b"{"
        if not plausible and (head[:2] == b"PK" or head[:1] == b"\x80"):
            raise CheckpointError(
                f"{path} is a pickle (torch.save), not safetensors; {_PICKLE_HELP}"
            )
        if head.startswith(b"\x89HDF"):
            raise CheckpointError(f"{path} is an HDF5 (Keras) file; {_KERAS_HELP}")
        if n <= 0 or n > _MAX_HEADER or 8 + n > size:
            raise CheckpointError(
                f"{path} is not a safetensors file (bad header length {n} for a file of {size} "
                "bytes): truncated, corrupted or another format"
            )
        raw = head[8:] + fh.read(n - 1)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable safetensors header ({exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: the safetensors header is not a JSON object")
    return header, 8 + n


def shape_problems(
    expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor]
) -> list[str]:
    """How a state dict differs from the one a model expects, by tensor names and shapes.

    Parameters
    ----------
    expected : Mapping[str, torch.Tensor]
        The model's ``state_dict()`` (on the ``meta`` device is enough: only shapes are read).
    found : Mapping[str, torch.Tensor]
        The tensors to load, e.g. read from a checkpoint.

    Returns
    -------
    list of str
        One line per kind of problem present: missing tensors, unexpected tensors, shape
        mismatches, each with its count and the first 8 names. Empty when the tensors fit.

    Examples
    --------
    >>> import torch
    >>> expected = {"w": torch.zeros(2, 3), "b": torch.zeros(2)}
    >>> shape_problems(expected, {"w": torch.zeros(2, 3), "b": torch.zeros(2)})
    []
    >>> for line in shape_problems(expected, {"w": torch.zeros(3, 3), "x": torch.zeros(1)}):
    ...     print(line)
    missing tensors (1): b
    unexpected tensors (1): x
    shape mismatches (1): w: expected (2, 3), found (3, 3)
    """
    shape = {k: tuple(v.shape) for k, v in found.items()}
    groups = {
        "missing tensors": [k for k in expected if k not in found],
        "unexpected tensors": [k for k in found if k not in expected],
        "shape mismatches": [
            f"{k}: expected {tuple(v.shape)}, found {shape[k]}"
            for k, v in expected.items()
            if k in shape and tuple(v.shape) != shape[k]
        ],
    }
    return [
        f"{what} ({len(keys)}): {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''}"
        for what, keys in groups.items()
        if keys
    ]
