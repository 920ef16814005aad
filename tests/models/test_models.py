"""One test class for every registered model: build, forward shapes, refused inputs, round trips.

The models come from the registry (every non-preset name, built through its ``-small`` preset
where there is one), so a newly registered model is tested without a new copy of these tests.
Model-specific behaviour stays in ``test_glavitu.py`` and ``test_baselines.py``.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from glaviz.models.checkpoint import load_checkpoint, read_checkpoint_metadata, save_checkpoint
from glaviz.models.registry import available_models, build, model_spec, registry_name

NAMES = [n for n in available_models() if not model_spec(n).is_preset]
OPT_DEM = {"optical": 6, "dem": 2}
SIZE = 64  # GlaViTU-small's tile; a multiple of every small baseline's total stride
REFUSED_SIZE = 40  # neither GlaViTU-small's tile nor a multiple of 16

# torch.numel over parameters at full size, default inputs optical 6 + dem 2 (GlaViTU: the
# Keras count 10,024,386 trainable + the deep-supervision head's 130).
FULL_SIZE_PARAMETERS = {
    "glavitu": 10_024_516,
    "resunet": 32_572_162,
    "setr": 101_720_322,
    "transunet": 105_854_946,
    "deeplabv3plus": 63_196_162,
}


def small(name: str, **config: object) -> torch.nn.Module:
    """``name``'s small preset (the plain entry where there is none)."""
    preset = f"{name}-small"
    return build(preset if preset in available_models() else name, **config)


def outputs(out: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Every head's logits (GlaViTU returns a deep-supervision pair in training mode)."""
    return out if isinstance(out, tuple) else (out,)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_every_model_is_covered() -> None:
    assert set(NAMES) == set(FULL_SIZE_PARAMETERS)


@pytest.mark.parametrize("name", NAMES)
class TestRegisteredModel:
    """The contract every registered model keeps (cf. smp's shared model tests)."""

    def test_build_sets_the_registry_name(self, name: str) -> None:
        model = small(name, input_channels={"dem": 2})
        assert model.registry_name == registry_name(model) == registry_name(type(model)) == name
        assert model.groups == ("dem",)
        again = build(name, **model.config)
        assert type(again) is type(model) and again.config == model.config
        again.load_state_dict(model.state_dict())  # strict: the same structure

    @pytest.mark.parametrize(
        "channels",
        [OPT_DEM, {"dem": 2}, {"co_pol_sar": 2, "cross_pol_sar": 2, "in_sar": 2, "thermal": 1}],
        ids=["optical+dem", "dem", "sar+thermal"],
    )
    def test_forward_shapes_in_eval_and_training(
        self, name: str, channels: dict[str, int], make_inputs: Callable[..., dict]
    ) -> None:
        torch.manual_seed(0)
        model = small(name, input_channels=channels, n_classes=3)
        assert model.groups == tuple(channels)
        x = make_inputs(channels, batch=2, size=SIZE)
        with torch.no_grad():
            out = model.eval()(x)
        assert isinstance(out, torch.Tensor)
        assert out.shape == (2, 3, SIZE, SIZE) and out.dtype == torch.float32
        for logits in outputs(model.train()(x)):
            assert logits.shape == (2, 3, SIZE, SIZE)

    def test_backward_reaches_every_fusion_branch_and_the_head(
        self, name: str, make_inputs: Callable[..., dict]
    ) -> None:
        torch.manual_seed(0)
        model = small(name, input_channels=OPT_DEM).train()
        x = make_inputs(OPT_DEM, batch=2, size=SIZE)
        target = (x["optical"][:, 0] > 0.5).long()
        main = outputs(model(x))[0]
        F.cross_entropy(main, target).backward()
        for group in OPT_DEM:
            grad = model.fusion.branches[group].conv.conv1.weight.grad
            assert grad is not None and grad.abs().sum() > 0, group
        assert model.head.weight.grad.abs().sum() > 0

    @pytest.mark.parametrize("encoding,features", [("region", 12), ("coordinates", 4)])
    def test_location_encoding_changes_the_output(
        self,
        name: str,
        encoding: str,
        features: int,
        make_inputs: Callable[..., dict],
        randomise_bn: Callable[..., torch.nn.Module],
    ) -> None:
        torch.manual_seed(2)
        model = randomise_bn(small(name, location_encoding=encoding)).eval()
        assert model.config["location_features"] == features
        x = make_inputs(OPT_DEM, batch=2, size=SIZE, location=features)
        flipped = dict(x, location=torch.flip(x["location"], dims=[1]))
        with torch.no_grad():
            assert not torch.allclose(model(x), model(flipped))

    @pytest.mark.parametrize(
        "mutate,message",
        [
            (lambda x: x.pop("dem"), r"input group 'dem' is missing"),
            (
                lambda x: x.update(thermal=torch.zeros(2, 1, SIZE, SIZE)),
                r"unexpected input group 'thermal'",
            ),
            (lambda x: x.update(dem=torch.zeros(2, 3, SIZE, SIZE)), r"'dem' must have 2 channels"),
            (lambda x: x.update(dem=torch.zeros(1, 2, SIZE, SIZE)), r"'dem' has batch size 1"),
            (lambda x: x.update(location=torch.zeros(2, 12)), r"no location encoding"),
            (
                lambda x: x.update(
                    {k: torch.zeros(2, c, REFUSED_SIZE, REFUSED_SIZE) for k, c in OPT_DEM.items()}
                ),
                rf"{REFUSED_SIZE} x {REFUSED_SIZE}.*pad",
            ),
        ],  # fmt: skip
        ids=["missing", "unexpected", "channels", "batch", "location-unused", "size"],
    )
    def test_inputs_refused_with_the_group_named(
        self, name: str, mutate: Callable, message: str, make_inputs: Callable[..., dict]
    ) -> None:
        model = small(name, input_channels=OPT_DEM).eval()
        x = make_inputs(OPT_DEM, batch=2, size=SIZE)
        mutate(x)
        with pytest.raises(ValueError, match=message):
            model(x)

    def test_location_and_type_errors(self, name: str, make_inputs: Callable[..., dict]) -> None:
        model = small(name, location_encoding="coordinates").eval()
        x = make_inputs(OPT_DEM, batch=2, size=SIZE)
        with pytest.raises(ValueError, match=r"'location' \(B, 4\) is missing.*coordinates"):
            model(x)
        with pytest.raises(ValueError, match=r"'location' must have shape \(2, 4\), got \(2, 12\)"):
            model(dict(x, location=torch.zeros(2, 12)))
        with pytest.raises(TypeError, match="mapping of input groups"):
            model(torch.zeros(1, 8, SIZE, SIZE))

    def test_config_holds_every_constructor_argument_and_is_a_copy(self, name: str) -> None:
        model = small(name, input_channels={"optical": 6, "in_sar": 2}, n_classes=3)
        params = inspect.signature(type(model)).parameters
        assert all(p.kind is p.KEYWORD_ONLY for p in params.values())
        assert set(model.config) == set(params)
        cfg = json.loads(json.dumps(model.config))
        assert cfg["input_channels"] == {"optical": 6, "in_sar": 2} and cfg["n_classes"] == 3
        assert type(model)(**cfg).config == cfg
        model.config["input_channels"]["optical"] = 1
        assert model.config["input_channels"]["optical"] == 6

    def test_checkpoint_round_trip(
        self, name: str, tmp_path, make_inputs: Callable[..., dict]
    ) -> None:
        torch.manual_seed(0)
        model = small(name, input_channels=OPT_DEM, location_encoding="region")
        with torch.no_grad():  # move the BatchNorm statistics away from their initial values
            model.train()(make_inputs(OPT_DEM, batch=2, size=SIZE, location=12, seed=1))
        model.eval()
        meta_in = {"strategy": "region_encoding", "epochs": 7, "data": "synthetic", "seed": 3}
        path = save_checkpoint(model, tmp_path / name, metadata=meta_in)
        assert path == tmp_path / f"{name}.safetensors"
        loaded = load_checkpoint(path)
        assert type(loaded) is type(model) and not loaded.training
        assert loaded.config == model.config and loaded.registry_name == name
        original, restored = model.state_dict(), loaded.state_dict()
        assert list(original) == list(restored)
        for key in original:  # parameters and BatchNorm buffers (running stats, batch counters)
            assert torch.equal(original[key], restored[key]), key
        assert any(k.endswith("running_var") and not torch.all(v == 1) for k, v in restored.items())
        x = make_inputs(OPT_DEM, batch=1, size=SIZE, location=12, seed=5)
        with torch.no_grad():
            assert torch.equal(model(x), loaded(x))
        meta = loaded.checkpoint_metadata
        assert meta["provenance"]["strategy"] == "region_encoding"
        assert meta["provenance"]["epochs"] == 7 and meta["provenance"]["seed"] == 3
        assert meta["location"] == {"encoding": "region", "features": 12}
        assert meta == read_checkpoint_metadata(path)

    def test_full_size_parameters_and_shapes_on_meta(
        self, name: str, make_inputs: Callable[..., dict]
    ) -> None:
        x = {k: v.to("meta") for k, v in make_inputs(OPT_DEM, batch=1, size=384).items()}
        with torch.device("meta"):
            model = build(name).eval()
            out = model(x)
        assert all(p.is_meta for p in model.parameters())  # nothing allocated
        assert n_params(model) == FULL_SIZE_PARAMETERS[name]
        assert out.shape == (1, 2, 384, 384)
