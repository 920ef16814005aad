"""The model registry: names, presets, errors, and the registry name of a model instance."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from glaviz.models import registry
from glaviz.models.glavitu import GlaViTU
from glaviz.models.registry import (
    RegistryError,
    available_models,
    build,
    model_spec,
    register_model,
    registry_name,
)
from glaviz.models.setr import SETR

NAMES = ["glavitu", "resunet", "setr", "transunet", "deeplabv3plus"]


@pytest.fixture
def clean_registry(monkeypatch):
    """Let a test register models without leaking them into other tests."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_available_models_lists_models_and_small_presets():
    names = available_models()
    assert names == sorted(names)
    for name in NAMES:
        assert name in names and f"{name}-small" in names
        assert not model_spec(name).is_preset
        assert model_spec(f"{name}-small").is_preset


@pytest.mark.parametrize("name", NAMES)
def test_small_preset_is_smaller_and_takes_overrides(name):
    with torch.device("meta"):
        full, small = build(name), build(f"{name}-small")
    assert type(small) is type(full) and small.config != full.config
    n_small, n_full = (sum(p.numel() for p in m.parameters()) for m in (small, full))
    assert n_small * 10 < n_full
    assert build(f"{name}-small", n_classes=3).config == {**small.config, "n_classes": 3}


def test_directly_constructed_model_has_a_registry_name():
    assert registry_name(SETR.small()) == "setr"
    assert registry_name(GlaViTU.small()) == "glavitu"


def test_unknown_name_lists_known_models():
    with pytest.raises(RegistryError, match="unknown model 'resnet'") as info:
        build("resnet")
    message = str(info.value)
    for name in NAMES:
        assert name in message
    assert "Did you mean 'resunet'" in message
    assert isinstance(info.value, ValueError)


def test_unknown_config_key_is_named_with_accepted_keys():
    with pytest.raises(
        RegistryError, match=r"unknown config key for model 'setr': 'hiden_dim'"
    ) as e:
        build("setr", hiden_dim=32)
    assert "did you mean 'hidden_dim'" in str(e.value)
    assert "Accepted keys: input_channels" in str(e.value)
    with pytest.raises(RegistryError, match="unknown config keys.*'foo'.*'bar'"):
        build("glavitu-small", foo=1, bar=2)


def test_invalid_config_values_still_raise_from_the_model():
    with pytest.raises(ValueError, match="location_encoding must be"):
        build("resunet-small", location_encoding="planet")


def test_register_custom_model_and_refuse_duplicates(clean_registry):
    @register_model("tiny-test")
    class Tiny(nn.Module):
        def __init__(self, *, width: int = 2) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, width, 1)
            self.config = {"width": width}

    assert "tiny-test" in available_models()
    model = build("tiny-test", width=3)
    assert isinstance(model, Tiny) and model.conv.out_channels == 3
    assert registry_name(model) == "tiny-test"
    with pytest.raises(RegistryError, match="already registered"):
        register_model("tiny-test", SETR)
    # registering the same class again under the same name is harmless (module reloads)
    register_model("tiny-test", Tiny)
    with pytest.raises(RegistryError, match="lower case"):
        register_model("Tiny Test", Tiny)
    with pytest.raises(RegistryError, match="nn.Module class"):
        register_model("not-a-model", object)


def test_unregistered_model_has_no_registry_name():
    with pytest.raises(RegistryError, match="not a registered model.*register_model"):
        registry_name(nn.Conv2d(1, 1, 1))
