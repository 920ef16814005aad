"""Self-describing model checkpoints: one ``.safetensors`` file, weights plus JSON metadata.

A checkpoint holds the model's ``state_dict`` (parameters and BatchNorm buffers) as safetensors
tensors and, in the safetensors header under the single key ``"glaviz"``, a JSON document that
says everything needed to rebuild and use the model; loading never repeats training flags and
never unpickles anything. The metadata (``model.checkpoint_metadata`` after loading):

``format``, ``format_version``
    ``"glaviz-checkpoint"`` and :data:`FORMAT_VERSION`.
``model``, ``config``
    Registry name and constructor arguments: ``build(model, **config)`` rebuilds the network.
``inputs``
    ``{"groups": [...], "channels": {group: n}, "bands": {group: [names] or None}}``; band
    names default to the catalog's canonical names when the channel count matches.
``location``
    ``{"encoding": "none" | "region" | "coordinates", "features": L or None}``.
``scaling``
    The min-max table ``{group: {"bands", "min", "max"}}`` (the catalog's unless given), ready
    for :func:`glaviz.scale` ``(table=...)``.
``regions``
    ``{"codes": [...], "unknown_slot": int}``: the region one-hot order of region encoding.
``calibration``
    ``None`` until calibrated; then ``{"confidence": [...], "accuracy": [...], ...}``: knots of
    the monotone map from raw to calibrated confidence (strictly increasing ``confidence`` in
    [0, 1], ``np.interp`` between knots), plus any other keys (e.g. ``"ece_before"``). Set it
    with :func:`update_checkpoint_metadata`.
``provenance``
    ``data``, ``strategy``, ``epochs`` (``None`` unless given), ``glaviz_version``,
    ``torch_version``, ``created`` (UTC, ISO 8601) and any other key the caller passes.
``weights_sha256``
    Checksum of the tensors (names, dtypes, shapes, bytes): loading detects corrupted data.

Examples
--------
>>> import tempfile, pathlib
>>> from glaviz.models.registry import build
>>> model = build("resunet-small", input_channels={"optical": 6, "dem": 2})
>>> path = save_checkpoint(model, pathlib.Path(tempfile.mkdtemp()) / "resunet")
>>> load_checkpoint(path).checkpoint_metadata["inputs"]["channels"]
{'optical': 6, 'dem': 2}
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import xarray as xr
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from glaviz._io import atomic_write
from glaviz.errors import CheckpointError, CheckpointMismatchError, IncompatibleSceneError
from glaviz.models._checkpoint_meta import (
    FORMAT,  # noqa: F401  (re-exported)
    FORMAT_VERSION,
    METADATA_KEY,
    _apply_changes,
    _base_metadata,
    _default_bands,
    _metadata_from_header,
    _model_channels,
    _to_json,
    read_header,
    shape_problems,
)
from glaviz.models.registry import build, registry_name
from glaviz.models.runtime import resolve_device

__all__ = [
    "FORMAT_VERSION",
    "CheckpointError",
    "IncompatibleSceneError",
    "check_compatible",
    "load_checkpoint",
    "model_sha256",
    "read_checkpoint_metadata",
    "read_header",
    "save_checkpoint",
    "shape_problems",
    "update_checkpoint_metadata",
]

SUFFIX = ".safetensors"


# ------------------------------------------------------------------------------------------
# file helpers


def _weights_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().to("cpu").contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().data)  # a memoryview, no copy
    return h.hexdigest()


def model_sha256(model: nn.Module, *, include_buffers: bool = True) -> str:
    """The identity of a model's state: sha256 of every tensor (name, dtype, shape, bytes).

    Parameters and buffers (BatchNorm running statistics): two models differing only in their
    BatchNorm statistics differ here. Equal to a checkpoint's ``weights_sha256`` for the model
    saved in it or loaded from it; :func:`glaviz.predict` and :func:`glaviz.fit` use it to
    recognise a run. DDP and ``torch.compile`` wrappers are unwrapped.

    Parameters
    ----------
    model : torch.nn.Module
        Any module.
    include_buffers : bool, default True
        ``False`` hashes the parameters only (e.g. to check that DDP processes agree, whose
        BatchNorm statistics stay per process).

    Returns
    -------
    str
        64 hex digits.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from glaviz.models.registry import build
    >>> m = build("resunet-small", input_channels={"dem": 2})
    >>> p = save_checkpoint(m, pathlib.Path(tempfile.mkdtemp()) / "r")
    >>> model_sha256(m) == read_checkpoint_metadata(p)["weights_sha256"]
    True
    >>> bn = next(b for b in m.modules() if isinstance(b, torch.nn.BatchNorm2d))
    >>> state, params = model_sha256(m), model_sha256(m, include_buffers=False)
    >>> bn.running_mean += 1  # BatchNorm statistics only
    >>> model_sha256(m) == state, model_sha256(m, include_buffers=False) == params
    (False, True)
    """
    model = _unwrap(model)
    state = model.state_dict()
    if not include_buffers:
        names = {n for n, _ in model.named_parameters()}
        state = {k: v for k, v in state.items() if k in names}
    return _weights_sha256(state)


def _plain_tensors(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, contiguous tensors owning their storage (safetensors refuses shared memory)."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, value in state.items():
        t = value.detach().to("cpu").contiguous()
        if t.numel():
            storage = t.untyped_storage()
            if storage.data_ptr() in seen or storage.nbytes() != t.numel() * t.element_size():
                t = t.clone()
            seen.add(t.untyped_storage().data_ptr())
        out[key] = t
    return out


def _unwrap(model: nn.Module) -> nn.Module:
    while isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        model = model.module
    return getattr(model, "_orig_mod", model)  # torch.compile wrapper


# ------------------------------------------------------------------------------------------
# public API


def save_checkpoint(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` as one self-describing ``.safetensors`` checkpoint, atomically.

    Parameters
    ----------
    model : torch.nn.Module
        A registered model (:func:`glaviz.models.registry.build`, GlaViTU or a baseline; DDP
        and ``torch.compile`` wrappers are unwrapped).
    path : str or os.PathLike
        Target file; ``.safetensors`` is appended when there is no suffix. Parent folders are
        created.
    metadata : Mapping, optional
        ``bands`` ``{group: [names]}``, ``scaling`` (default the catalog's table), ``regions``
        (codes in one-hot order, or ``{"codes", "unknown_slot"}``; default the catalog's),
        ``calibration`` (see the module docs), ``provenance`` (a mapping merged into it) and
        any other JSON-ready key, stored under ``provenance`` (``data``, ``strategy``,
        ``epochs``, ``best_val_iou``, ...). A model loaded from a checkpoint keeps its bands,
        scaling and regions unless given.
    overwrite : bool, default False
        Replace an existing file (otherwise :class:`FileExistsError`).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    CheckpointError
        Unregistered model, a config that does not rebuild it, invalid metadata.

    Notes
    -----
    The file is written to a temporary file in the same folder, flushed, then renamed over
    ``path`` (:func:`os.replace`): an interrupted save leaves any previous file intact.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from glaviz.models.registry import build
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.safetensors"
    >>> m = build("glavitu-small", input_channels={"dem": 2})
    >>> save_checkpoint(m, p, metadata={"epochs": 3}) == p
    True
    >>> save_checkpoint(m, p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileExistsError: ... already exists; pass overwrite=True to replace it
    """
    model = _unwrap(model)
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(SUFFIX)
    if path.suffix.lower() != SUFFIX:
        raise CheckpointError(
            f"{path}: glaviz checkpoints are single {SUFFIX} files; name it "
            f"{path.with_suffix(SUFFIX).name}"
        )
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"checkpoint {path} already exists; pass overwrite=True to replace it"
        )
    try:
        name = registry_name(model)
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    config = getattr(model, "config", None)
    if not isinstance(config, Mapping) or not hasattr(model, "input_channels"):
        raise CheckpointError(
            f"{type(model).__name__} has no 'config' mapping or 'input_channels': registered "
            "models must expose both to be saved"
        )
    config = _to_json(dict(config), "config")
    tensors = _plain_tensors(model.state_dict())
    with torch.device("meta"):  # structure only: no memory, no initialisation cost
        reference = build(name, **config)
    problems = shape_problems(reference.state_dict(), tensors)
    if problems:
        raise CheckpointError(
            f"build({name!r}, **model.config) does not rebuild this model ({'; '.join(problems)})"
            "; its config must hold every constructor argument"
        )
    meta = _apply_changes(_base_metadata(model, name, config), dict(metadata or {}))
    meta["weights_sha256"] = _weights_sha256(tensors)
    header = {METADATA_KEY: json.dumps(meta, allow_nan=False, separators=(",", ":"))}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=header))
    return path


def read_checkpoint_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a checkpoint, from its header only (the weights are not read).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from glaviz.models.registry import build
    >>> p = save_checkpoint(build("setr-small"), pathlib.Path(tempfile.mkdtemp()) / "s")
    >>> meta = read_checkpoint_metadata(p)
    >>> meta["model"], meta["inputs"]["channels"], meta["calibration"]
    ('setr', {'optical': 6, 'dem': 2}, None)
    """
    path = Path(path)
    header, _ = read_header(path)
    return _metadata_from_header(header, path)


def update_checkpoint_metadata(path: str | os.PathLike[str], **changes: Any) -> dict[str, Any]:
    """Change a checkpoint's metadata in place (atomically), leaving the weights untouched.

    Parameters
    ----------
    path : str or os.PathLike
        A glaviz checkpoint.
    **changes
        As ``metadata`` of :func:`save_checkpoint`: ``calibration``, ``bands``, ``scaling``,
        ``regions``, ``provenance`` (merged), other keys go into ``provenance``. Keys derived
        from the model (``model``, ``config``, ``inputs``, ...) are refused.

    Returns
    -------
    dict
        The new metadata.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from glaviz.models.registry import build
    >>> p = save_checkpoint(build("resunet-small"), pathlib.Path(tempfile.mkdtemp()) / "r")
    >>> cal = {"confidence": [0.0, 0.5, 1.0], "accuracy": [0.0, 0.7, 1.0], "ece_after": 0.01}
    >>> update_checkpoint_metadata(p, calibration=cal)["calibration"]["accuracy"]
    [0.0, 0.7, 1.0]
    >>> read_checkpoint_metadata(p)["calibration"]["ece_after"]
    0.01
    """
    path = Path(path)
    header, offset = read_header(path)
    meta = _apply_changes(_metadata_from_header(header, path), changes)
    header = dict(header)
    header["__metadata__"] = {
        **header.get("__metadata__", {}),
        METADATA_KEY: json.dumps(meta, allow_nan=False, separators=(",", ":")),
    }
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # safetensors pads the header to 8 bytes

    def write(tmp: Path) -> None:
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            dst.write(struct.pack("<Q", len(raw)))
            dst.write(raw)
            src.seek(offset)
            while chunk := src.read(1 << 24):
                dst.write(chunk)

    atomic_write(path, write)
    return meta


def check_compatible(
    metadata_or_model: Mapping[str, Any] | nn.Module,
    scene: xr.Dataset,
    *,
    strict: bool = False,
) -> list[str]:
    """Check that a scene holds the input groups and bands a checkpoint (or model) takes.

    Parameters
    ----------
    metadata_or_model : Mapping or torch.nn.Module
        Checkpoint metadata (:func:`read_checkpoint_metadata`) or a model (its
        ``checkpoint_metadata`` when loaded from a checkpoint, else its ``input_channels`` and
        the catalog's band names where the counts match).
    scene : xarray.Dataset
        A scene from :func:`glaviz.open_scene` / :func:`glaviz.data.synthetic_scene`.
    strict : bool, default False
        Also refuse groups the model does not use (by default they are ignored).

    Returns
    -------
    list of str
        The model's input groups, in the order it takes them.

    Raises
    ------
    IncompatibleSceneError
        Naming the missing (and extra) groups, the expected and found band counts (and names
        when known), and what to do.

    Examples
    --------
    >>> from glaviz.data import synthetic_scene
    >>> from glaviz.models.registry import build
    >>> model = build("resunet-small", input_channels={"optical": 6, "dem": 2})
    >>> check_compatible(model, synthetic_scene(32, 32, groups=["optical", "dem"]))
    ['optical', 'dem']
    >>> check_compatible(model, synthetic_scene(32, 32, groups=["optical"]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    glaviz.errors.IncompatibleSceneError: ... missing input groups ['dem']...
    """
    obj = metadata_or_model
    if isinstance(obj, nn.Module):
        model = _unwrap(obj)
        own = dict(_model_channels(model))
        obj = getattr(model, "checkpoint_metadata", None) or {
            "inputs": {"channels": own, "bands": _default_bands(own)}
        }
    channels: dict[str, int] = dict(obj["inputs"]["channels"])
    bands: dict[str, list[str] | None] = dict(obj["inputs"].get("bands") or {})
    # where scenes meet models; imported here so that `import glaviz.models` stays free of
    # the raster stack (rasterio, rioxarray, geopandas)
    from glaviz.data.scene import band_dim, scene_groups

    known = scene_groups(scene)
    present = known + [
        str(v) for v in scene.data_vars if v not in known and band_dim(str(v)) in scene[v].dims
    ]
    missing = [g for g in channels if g not in scene.data_vars]
    extra = [g for g in present if g not in channels]
    problems = [f"missing input groups {missing}"] if missing else []
    if strict and extra:
        problems.append(f"groups the model does not take {extra} (strict=True)")
    for group, n in channels.items():
        dim = band_dim(group)
        if group in missing or dim not in scene[group].dims:
            if group not in missing:
                problems.append(f"variable {group!r} has no {dim!r} dimension")
            continue
        found = int(scene.sizes[dim])
        names = [str(b) for b in scene[dim].values] if dim in scene.coords else None
        want = bands.get(group)
        if found != n:
            problems.append(
                f"group {group!r}: the model expects {n} bands{f' {want}' if want else ''}, "
                f"the scene has {found}{f' {names}' if names else ''}"
            )
        elif want and names and names != list(want):
            problems.append(
                f"group {group!r}: the model expects bands {want}, the scene has {names}"
            )
    if problems:
        unused = f" (unused: {extra})" if extra and not strict else ""
        raise IncompatibleSceneError(
            f"the scene does not match the model's inputs: {'; '.join(problems)}. The model "
            f"takes {channels}; the scene has groups {present}{unused}. Open the scene with the "
            "missing groups/bands (glaviz.open_scene), or use a model trained on what the scene "
            "holds (build(..., input_channels={...}))"
        )
    return list(channels)


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    device: str | torch.device = "cpu",
    scene: xr.Dataset | None = None,
) -> nn.Module:
    """Rebuild a model from a checkpoint: architecture from the metadata, weights verified.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.safetensors`` file written by :func:`save_checkpoint`. Pickles (``.pt``,
        ``.pth``, ...) and Keras files are refused with a message saying how to convert them.
    device : str or torch.device, default "cpu"
        Where the model lives (``"auto"``: CUDA when available).
    scene : xarray.Dataset, optional
        Refuse early (before reading the weights) if the scene lacks the model's input groups
        or bands (see :func:`check_compatible`).

    Returns
    -------
    torch.nn.Module
        The model in evaluation mode, with ``model.checkpoint_metadata`` (dict) and
        ``model.registry_name`` set.

    Raises
    ------
    CheckpointError
        Not a glaviz checkpoint, corrupted data (checksum), or weights that do not fit the
        rebuilt architecture (the message names the missing, unexpected and mis-shaped tensors).
    IncompatibleSceneError
        With ``scene=``, when the scene does not match.

    Examples
    --------
    >>> import tempfile, pathlib, torch
    >>> from glaviz.models.registry import build
    >>> m = build("deeplabv3plus-small", input_channels={"dem": 2}).eval()
    >>> p = save_checkpoint(m, pathlib.Path(tempfile.mkdtemp()) / "d")
    >>> x = {"dem": torch.rand(1, 2, 32, 32)}
    >>> torch.equal(load_checkpoint(p)(x), m(x))
    True
    """
    path = Path(path)
    meta = read_checkpoint_metadata(path)
    if scene is not None:
        try:
            check_compatible(meta, scene)
        except IncompatibleSceneError as exc:
            raise IncompatibleSceneError(f"checkpoint {path}: {exc}") from None
    try:
        model = build(meta["model"], **meta["config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild model {meta['model']!r}: {exc}") from None
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path}: cannot read the weights ({exc}); the file is truncated or corrupted: "
            "copy or download it again"
        ) from None
    problems = shape_problems(model.state_dict(), tensors)
    if problems:
        raise CheckpointMismatchError(
            f"{path}: the weights do not fit {meta['model']!r} built from the stored config: "
            + "; ".join(problems)
        )
    digest = meta.get("weights_sha256")
    if digest and _weights_sha256(tensors) != digest:
        raise CheckpointError(
            f"{path}: the weights do not match their checksum: the file is corrupted; copy or "
            "download it again"
        )
    model.load_state_dict(tensors, strict=True)
    model.to(resolve_device(device)).eval()
    # torch annotates Module.__setattr__ for tensors and modules only; any value is set
    model.checkpoint_metadata = meta  # type: ignore[assignment]
    model.registry_name = meta["model"]
    return model
