"""Resumable training state in one safetensors file, written atomically, never pickled.

Tensors (model weights and buffers, optimizer moments, the torch RNG) go into the safetensors
body; everything else (optimizer hyper-parameters, scheduler state, epoch and step, history, best
score, run configuration) goes into the header as JSON, with the run's identity
(:func:`run_identity`: model config, data, seed, schedule, augmentation, strategy), so that a
resume of another run can be refused (:func:`identity_differences`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from glaviz._io import atomic_write
from glaviz.errors import CheckpointError, CheckpointMismatchError

__all__ = [
    "identity_differences",
    "load_training_state",
    "read_training_identity",
    "run_identity",
    "save_training_state",
]

_KEY = "glaviz_training_state"


def save_training_state(
    path: str | os.PathLike,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any | None,
    info: dict[str, Any],
    identity: dict[str, Any] | None = None,
) -> Path:
    """Write model, optimizer, scheduler, RNG, ``info`` and ``identity`` atomically to ``path``."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        tensors[f"model/{k}"] = v.detach().cpu().contiguous()
    opt = optimizer.state_dict()
    opt_state_json: dict[str, dict[str, Any]] = {}
    for idx, state in opt["state"].items():
        plain = {}
        for name, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim/{idx}/{name}"] = value.detach().cpu().contiguous()
            else:
                plain[name] = value
        opt_state_json[str(idx)] = plain
    tensors["rng/torch"] = torch.get_rng_state()
    header = {
        "param_groups": opt["param_groups"],
        "optim_plain": opt_state_json,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "info": info,
        "identity": identity,
    }
    header_json = {_KEY: json.dumps(header)}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=header_json))
    return path


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def run_identity(
    model: nn.Module, train: Sequence[Any], val: Sequence[Any] | None, **settings: Any
) -> dict[str, Any]:
    """What makes a training run this run (JSON-able): resumable only when all of it is equal.

    The model's registry name and config, the content identity of every training and
    validation tile (:func:`glaviz.data.identity.tile_identity`) and ``settings`` (seed,
    schedule, augmentation, strategy, loss, ...). The initial weights are not part of it.
    """
    from glaviz.data.identity import tile_identity

    name = getattr(model, "registry_name", None) or type(model).__name__
    return _json({
        "format": 1,
        "model": {"name": name, "config": dict(getattr(model, "config", {}) or {})},
        "data": {"train": [tile_identity(t) for t in train],
                 "val": [tile_identity(t) for t in (val or [])]},
        **settings,
    })  # fmt: skip


def identity_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The settings two run identities differ in, in words (empty when they are the same run).

    Examples
    --------
    >>> identity_differences({"seed": 0, "model": {"name": "a", "config": {"depth": 4}}},
    ...                      {"seed": 1, "model": {"name": "a", "config": {"depth": 2}}})
    ['model config depth: 4 -> 2', 'seed: 0 -> 1']
    """
    out = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        if a == b:
            continue
        if key == "model" and isinstance(a, dict) and isinstance(b, dict):
            if a.get("name") != b.get("name"):
                out.append(f"model: {a.get('name')} -> {b.get('name')}")
            ca, cb = a.get("config") or {}, b.get("config") or {}
            out += [f"model config {k}: {ca.get(k)} -> {cb.get(k)}"
                    for k in sorted(set(ca) | set(cb)) if ca.get(k) != cb.get(k)]  # fmt: skip
        elif key == "data" and isinstance(a, dict) and isinstance(b, dict):
            for split in ("train", "val"):
                if a.get(split) != b.get(split):
                    out.append(f"{split} tiles ({len(a.get(split) or [])} -> "
                               f"{len(b.get(split) or [])} tiles, other content)")  # fmt: skip
        else:
            text = f"{key}: {a} -> {b}"
            out.append(text if len(text) <= 160 else f"{key} (differs)")
    return out


def read_training_identity(path: str | os.PathLike) -> dict[str, Any] | None:
    """The run identity recorded in a training state (header only), or None if there is none.

    Raises
    ------
    CheckpointError
        ``path`` is not a glaviz training state (a pickle, another format, truncated).
    """
    from glaviz.models.checkpoint import read_header

    path = Path(path)
    header, _ = read_header(path)
    meta = header.get("__metadata__") or {}
    if _KEY not in meta:
        raise CheckpointError(
            f"{path} is not a glaviz training state (no {_KEY!r} header): another run's or "
            "another tool's file; remove it, or pass resume=False or another checkpoint_dir"
        )
    return json.loads(meta[_KEY]).get("identity")


def load_training_state(
    path: str | os.PathLike,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any | None,
) -> dict[str, Any]:
    """Restore what :func:`save_training_state` wrote; returns the ``info`` dict.

    Raises
    ------
    CheckpointError
        ``path`` is not a glaviz training state (a pickle, another format, truncated).
    CheckpointMismatchError
        Its weights do not fit ``model`` (another architecture or configuration).
    """
    from glaviz.models.checkpoint import read_header, shape_problems

    path = Path(path)
    header_raw, _ = read_header(path)  # pickles, HDF5 and truncated files, naming the path
    meta = header_raw.get("__metadata__") or {}
    if _KEY not in meta:
        raise CheckpointError(
            f"{path} is not a glaviz training state (no {_KEY!r} header): another run's or "
            "another tool's file; remove it, or pass resume=False or another checkpoint_dir"
        )
    with safe_open(str(path), framework="pt") as f:
        header = json.loads(meta[_KEY])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    model_state = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    problems = shape_problems(model.state_dict(), model_state)
    if problems:
        raise CheckpointMismatchError(
            f"{path}: the saved training state does not fit this model ({'; '.join(problems)})"
            "; it belongs to another architecture or configuration: pass resume=False or "
            "another checkpoint_dir"
        )
    model.load_state_dict(model_state)
    state: dict[int, dict[str, Any]] = {}
    for idx, plain in header["optim_plain"].items():
        state[int(idx)] = dict(plain)
    for k, v in tensors.items():
        if k.startswith("optim/"):
            _, idx, name = k.split("/", 2)
            state.setdefault(int(idx), {})[name] = v
    optimizer.load_state_dict({"state": state, "param_groups": header["param_groups"]})
    if scheduler is not None and header["scheduler"] is not None:
        scheduler.load_state_dict(header["scheduler"])
    torch.set_rng_state(tensors["rng/torch"])
    return header["info"]
