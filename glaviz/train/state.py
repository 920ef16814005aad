"""Resumable training state in one safetensors file, written atomically, never pickled.

Tensors (model weights and buffers, optimizer moments, the torch RNG) go into the safetensors
body; everything else (optimizer hyper-parameters, scheduler state, epoch and step, history, best
score, run configuration) goes into the header as JSON.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from glaviz._io import atomic_write

__all__ = ["load_training_state", "save_training_state"]

_KEY = "glaviz_training_state"


def save_training_state(
    path: str | os.PathLike,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any | None,
    info: dict[str, Any],
) -> Path:
    """Write model, optimizer, scheduler, RNG and ``info`` (JSON-able) atomically to ``path``."""
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
    }
    header_json = {_KEY: json.dumps(header)}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=header_json))
    return path


def load_training_state(
    path: str | os.PathLike,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any | None,
) -> dict[str, Any]:
    """Restore what :func:`save_training_state` wrote; returns the ``info`` dict."""
    path = Path(path)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if _KEY not in meta:
            raise ValueError(f"{path} is not a glaviz training state (no {_KEY!r} header)")
        header = json.loads(meta[_KEY])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    model_state = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
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
