"""Where and in what precision a model runs: one place for training, inference and loading."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["autocast", "resolve_device", "resolve_precision"]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device``, or CUDA when available else CPU for ``None`` / ``"auto"``.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_precision(device: torch.device, precision: str | None = None) -> str:
    """``precision``, or the default for ``device``: bf16 (fp16 where unsupported) on CUDA, else 32.

    Examples
    --------
    >>> resolve_precision(torch.device("cpu")), resolve_precision(torch.device("cpu"), "bf16")
    ('32', 'bf16')
    """
    if precision is not None:
        if precision not in ("32", "bf16", "16"):
            raise ValueError(f"precision must be '32', 'bf16' or '16', got {precision!r}")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "16"
    return "32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast for ``precision`` ("32", "bf16", "16") on ``device``; a no-op for "32"."""
    if precision == "32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
