"""Shared fixtures of the model tests: the Keras parity fixture and small GlaViTU inputs."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

#: The two variants of ``shared/fixtures/keras_glavitu``.
KERAS_VARIANTS = ("A_global", "B_regionencoding_sar")


def keras_fixture_dir() -> Path:
    """``$GLAVIZ_SHARED/fixtures/keras_glavitu`` or ``../shared/fixtures/keras_glavitu``."""
    env = os.environ.get("GLAVIZ_SHARED")
    root = Path(env) if env else Path(__file__).resolve().parents[3] / "shared"
    return root / "fixtures" / "keras_glavitu"


@pytest.fixture(scope="session")
def keras_dir() -> Path:
    """The Keras parity fixture folder; a missing fixture FAILS the test (it must not pass)."""
    d = keras_fixture_dir()
    missing = [
        f"{v}{suffix}"
        for v in KERAS_VARIANTS
        for suffix in ("_weights.h5", "_io.npz", "_weights_layout.json")
        if not (d / f"{v}{suffix}").is_file()
    ]
    if missing:
        pytest.fail(
            f"Keras parity fixture missing in {d} ({', '.join(missing)}). Put the shared folder "
            "beside the checkout (../shared) or set GLAVIZ_SHARED to it.",
            pytrace=False,
        )
    return d


class KerasVariant:
    """One fixture variant: weight file, layout description and inputs/outputs (lazy)."""

    def __init__(self, directory: Path, name: str) -> None:
        self.name = name
        self.weights = directory / f"{name}_weights.h5"
        self.layout: dict[str, Any] = json.loads(
            (directory / f"{name}_weights_layout.json").read_text()
        )
        with np.load(directory / f"{name}_io.npz") as z:
            self.io = {k: z[k] for k in z.files}

    def torch_inputs(self) -> dict[str, torch.Tensor]:
        """Inputs as the Keras model saw them: ``in_<group> / 255`` float32, channels first."""
        out = {}
        for key, arr in self.io.items():
            if not key.startswith("in_"):
                continue
            t = torch.from_numpy(arr)
            if key == "in_location":
                out["location"] = t.float()
            else:
                out[key[3:]] = t.permute(0, 3, 1, 2).float() / 255.0
        return out

    def keras_logits(self, head: str) -> torch.Tensor:
        """Stored Keras logits ``(B, 2, H, W)``; ``head`` is ``main`` or ``deepsupervision``."""
        return torch.from_numpy(self.io[f"logits_{head}"]).permute(0, 3, 1, 2)


@pytest.fixture(scope="session")
def keras_variants(keras_dir: Path) -> Callable[[str], KerasVariant]:
    """Factory returning a cached :class:`KerasVariant` by name."""
    cache: dict[str, KerasVariant] = {}

    def get(name: str) -> KerasVariant:
        if name not in cache:
            cache[name] = KerasVariant(keras_dir, name)
        return cache[name]

    return get


def random_inputs(
    channels: Mapping[str, int],
    *,
    batch: int = 2,
    size: int = 64,
    location: int | None = None,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Uniform [0, 1) input groups ``(batch, C, size, size)`` and an optional location vector."""
    g = torch.Generator().manual_seed(seed)
    out = {k: torch.rand(batch, c, size, size, generator=g) for k, c in channels.items()}
    if location is not None:
        out["location"] = torch.rand(batch, location, generator=g)
    return out


def randomise_batch_norm(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm non-trivial affine parameters and running statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.2 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
    return model


@pytest.fixture(scope="session")
def make_inputs() -> Callable[..., dict[str, torch.Tensor]]:
    """:func:`random_inputs` as a fixture (test modules do not import conftest)."""
    return random_inputs


@pytest.fixture(scope="session")
def randomise_bn() -> Callable[..., torch.nn.Module]:
    """:func:`randomise_batch_norm` as a fixture."""
    return randomise_batch_norm
