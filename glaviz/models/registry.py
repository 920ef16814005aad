"""One registry for GlaViTU and the baselines, and the conventions every registered model follows.

A registered model is a :class:`torch.nn.Module` class with a keyword-only constructor and a
JSON-serialisable ``config`` property such that ``build(name, **model.config)`` rebuilds it. Its
``forward`` takes a mapping of input groups (``{"optical": (B, 6, H, W), ...}``, plus
``"location"`` ``(B, L)`` when a location encoding is configured) and returns logits
``(B, n_classes, H, W)``. Checkpoints (:mod:`glaviz.models.checkpoint`) store the registry name and
the config, so they rebuild the model without any other flag.

Registered names: ``"glavitu"``, ``"resunet"``, ``"setr"``, ``"transunet"``, ``"deeplabv3plus"``,
and ``"<name>-small"`` presets of each (small widths and depths for CPU and tests).

:class:`FusionModel` is the common base of the baselines: the GlaViTU fusion block, the optional
location encoding added after it, input checks and the ``config`` property.

Examples
--------
>>> from glaviz.models.registry import available_models, build, registry_name
>>> "deeplabv3plus" in available_models()
True
>>> model = build("resunet-small", input_channels={"optical": 6, "dem": 2})
>>> registry_name(model), model.config["widths"]
('resunet', [8, 16, 32, 64])
>>> build("resunet", **model.config).config == model.config
True
"""

from __future__ import annotations

import copy
import difflib
import importlib
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import Tensor, nn

from glaviz.errors import RegistryError
from glaviz.models.blocks import FusionBlock, LocationEncoder, check_model_inputs
from glaviz.models.glavitu import LocationEncoding, check_input_config

__all__ = [
    "FusionModel",
    "ModelSpec",
    "RegistryError",
    "available_models",
    "build",
    "model_spec",
    "register_model",
    "registry_name",
]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
# Modules whose import registers the built-in models (imported on first registry use).
_BUILTIN_MODULES = (
    "glaviz.models.resunet",
    "glaviz.models.setr",
    "glaviz.models.transunet",
    "glaviz.models.deeplab",
)

M = TypeVar("M", bound=type)


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: the model class and how to construct it.

    Attributes
    ----------
    name : str
        Registry name.
    cls : type
        The :class:`torch.nn.Module` subclass built (config keys are checked against its
        constructor).
    factory : callable
        Called with the config keywords; ``cls`` itself, or a preset such as ``GlaViTU.small``.
    description : str
        One line for listings.
    """

    name: str
    cls: type
    factory: Callable[..., nn.Module]
    description: str = ""

    @property
    def is_preset(self) -> bool:
        """Whether this entry builds a preset configuration (not the class defaults)."""
        return self.factory is not self.cls

    def parameters(self) -> list[str]:
        """Names of the constructor's keyword arguments (the accepted config keys)."""
        sig = inspect.signature(self.cls)
        return [
            p.name
            for p in sig.parameters.values()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]


_REGISTRY: dict[str, ModelSpec] = {}
_BUILTINS_LOADED = False


def register_model(
    name: str,
    model_cls: type | None = None,
    *,
    factory: Callable[..., nn.Module] | None = None,
    description: str = "",
) -> Any:
    """Register a model class (decorator or plain call), or a preset of one.

    Parameters
    ----------
    name : str
        Lower-case name (letters, digits, ``-``, ``_``, ``.``).
    model_cls : type, optional
        The class; omit it to use ``register_model(name)`` as a class decorator.
    factory : callable, optional
        A preset constructor (e.g. a ``small`` classmethod) called instead of the class;
        config keys are still checked against the class constructor.
    description : str, optional
        One line for listings; the first docstring line by default.

    Returns
    -------
    type
        The class (so that the decorator leaves it unchanged).

    Raises
    ------
    RegistryError
        For an invalid name, or a name already registered for another class or factory.

    Examples
    --------
    >>> from torch import nn
    >>> @register_model("doc-identity")
    ... class Identity(nn.Module):
    ...     def __init__(self, *, n_classes: int = 2) -> None:
    ...         super().__init__()
    ...         self.config = {"n_classes": n_classes}
    >>> build("doc-identity", n_classes=3).config
    {'n_classes': 3}
    >>> _ = _REGISTRY.pop("doc-identity")  # tidy up the example
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise RegistryError(
            f"model name {name!r} must be lower case: letters, digits, '-', '_' or '.'"
        )

    def decorate(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise RegistryError(f"register_model({name!r}) takes an nn.Module class, got {cls!r}")
        fac = factory if factory is not None else cls
        doc = (inspect.getdoc(cls) or "").strip().splitlines()
        spec = ModelSpec(name, cls, fac, description or (doc[0] if doc else ""))
        old = _REGISTRY.get(name)
        if old is not None and not _same_spec(old, spec):
            raise RegistryError(
                f"model name {name!r} is already registered for {old.cls.__module__}."
                f"{old.cls.__qualname__}; choose another name"
            )
        _REGISTRY[name] = spec
        return cls

    if model_cls is not None:
        return decorate(model_cls)
    if factory is not None:
        raise RegistryError("register_model(name, factory=...) also needs the model class")
    return decorate


def _same_spec(a: ModelSpec, b: ModelSpec) -> bool:
    # Re-importing a module (e.g. importlib.reload) re-registers an equivalent entry.
    def key(s: ModelSpec) -> tuple[str, str, str]:
        return (
            f"{s.cls.__module__}.{s.cls.__qualname__}",
            getattr(s.factory, "__module__", ""),
            getattr(s.factory, "__qualname__", repr(s.factory)),
        )

    return key(a) == key(b)


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    from glaviz.models.glavitu import GlaViTU

    register_model("glavitu", GlaViTU, description="GlaViTU (about 10.0 M parameters)")
    register_model(
        "glavitu-small",
        GlaViTU,
        factory=GlaViTU.small,
        description="GlaViTU, small configuration for CPU and tests (about 0.6 M parameters)",
    )
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
    _BUILTINS_LOADED = True


def available_models() -> list[str]:
    """Sorted names of the registered models and presets.

    Examples
    --------
    >>> [n for n in available_models() if not n.endswith("-small")]
    ['deeplabv3plus', 'glavitu', 'resunet', 'setr', 'transunet']
    """
    _load_builtins()
    return sorted(_REGISTRY)


def model_spec(name: str) -> ModelSpec:
    """The registry entry of ``name``; :class:`RegistryError` listing the known names otherwise.

    Examples
    --------
    >>> model_spec("setr-small").cls.__name__
    'SETR'
    """
    _load_builtins()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name).lower(), list(_REGISTRY), n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise RegistryError(
            f"unknown model {name!r}.{hint} Known models: {', '.join(sorted(_REGISTRY))}"
        ) from None


def build(name: str, **config: Any) -> nn.Module:
    """Construct the registered model ``name`` with constructor keywords ``config``.

    Parameters
    ----------
    name : str
        A name from :func:`available_models` (``"glavitu"``, ``"resunet"``, ``"setr"``,
        ``"transunet"``, ``"deeplabv3plus"``, or a ``"-small"`` preset).
    **config
        Constructor arguments; ``build(registry_name(m), **m.config)`` rebuilds ``m``. With a
        preset, the given keys override the preset's.

    Returns
    -------
    torch.nn.Module
        The new model (training mode, fresh weights) with ``model.registry_name`` set to the
        class's canonical registry name.

    Raises
    ------
    RegistryError
        For an unknown name (the message lists the known ones) or unknown config keys (the
        message names them and lists the accepted ones).

    Examples
    --------
    >>> build("setr-small", tile_size=32).config["tile_size"]
    32
    >>> build("setr", widht=3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    glaviz.errors.RegistryError: unknown config key for model 'setr': 'widht'. ...
    """
    spec = model_spec(name)
    accepted = spec.parameters()
    unknown = [k for k in config if k not in accepted]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, accepted, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        plural = "s" if len(unknown) > 1 else ""
        raise RegistryError(
            f"unknown config key{plural} for model {name!r}: {', '.join(hints)}. "
            f"Accepted keys: {', '.join(accepted)}"
        )
    model = spec.factory(**config)
    if not isinstance(model, spec.cls):
        raise RegistryError(f"model {name!r} built a {type(model).__name__}, not {spec.cls}")
    model.registry_name = registry_name(model)
    return model


def registry_name(model: nn.Module | type) -> str:
    """The canonical registry name of a model (or model class): the non-preset entry of its class.

    Examples
    --------
    >>> from glaviz.models.glavitu import GlaViTU
    >>> registry_name(GlaViTU.small())
    'glavitu'
    """
    _load_builtins()
    cls = model if isinstance(model, type) else type(model)
    candidates = [s for s in _REGISTRY.values() if s.cls is cls]
    if not candidates:
        raise RegistryError(
            f"{cls.__module__}.{cls.__qualname__} is not a registered model; register it with "
            "glaviz.models.registry.register_model(name) so that checkpoints can rebuild it"
        )
    plain = [s for s in candidates if not s.is_preset]
    return (plain or candidates)[0].name


# ------------------------------------------------------------------------------------------
# Common base of the baselines


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class FusionModel(nn.Module):
    """Base of the baselines: fusion block, optional location encoding, checks and ``config``.

    Subclasses build their body after ``super().__init__`` (which creates :attr:`fusion` and
    :attr:`location_encoder`), call :meth:`_set_config` with every other constructor argument,
    and in ``forward`` start with ``x = self.fuse(inputs)`` (``(B, fusion_width, H, W)``).

    Parameters
    ----------
    input_channels : Mapping[str, int], optional
        Input groups and channels, in fusion-branch order; ``{"optical": 6, "dem": 2}`` by
        default.
    location_encoding : {"none", "region", "coordinates"}
        Whether ``inputs["location"]`` ``(B, L)`` is encoded and broadcast-added to the fused
        map, as in GlaViTU.
    location_features : int, optional
        ``L``: 12 (``"region"``) or 4 (``"coordinates"``) by default.
    fusion_width : int
        Channels of the fused map.
    size_multiple : int
        The model's total stride: inputs' height and width must be multiples of it.
    dropout : float
        Spatial dropout inside the fusion branches.
    """

    def __init__(
        self,
        *,
        input_channels: Mapping[str, int] | None,
        location_encoding: LocationEncoding,
        location_features: int | None,
        fusion_width: int,
        size_multiple: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        input_channels, location_features = check_input_config(
            input_channels, location_encoding, location_features
        )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.input_channels: dict[str, int] = input_channels
        self.location_encoding: str = location_encoding
        self.location_features = None if location_features is None else int(location_features)
        self.size_multiple = int(size_multiple)
        self.fusion = FusionBlock(input_channels, fusion_width, dropout=dropout)
        self.location_encoder = (
            LocationEncoder(self.location_features, fusion_width)
            if self.location_features is not None
            else None
        )
        self._config: dict[str, Any] = {}

    def _set_config(self, **config: Any) -> None:
        self._config = {
            "input_channels": dict(self.input_channels),
            "location_encoding": self.location_encoding,
            "location_features": self.location_features,
            **_jsonable(config),
        }

    @property
    def config(self) -> dict[str, Any]:
        """Constructor arguments (a JSON-serialisable copy); ``type(m)(**m.config)`` rebuilds."""
        return copy.deepcopy(self._config)

    @property
    def groups(self) -> tuple[str, ...]:
        """Input group names, in fusion-branch order."""
        return tuple(self.input_channels)

    def reset_parameters(self) -> None:
        """Keras-like initialisation: Glorot-uniform kernels, zero biases, norms at identity."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm)):
                m.reset_parameters()

    def check_inputs(self, inputs: Mapping[str, Tensor]) -> None:
        """Raise :class:`ValueError` for inputs the model cannot take.

        Checks: every group present with its channels, no unexpected key, one batch size and
        one spatial size, height and width multiples of :attr:`size_multiple`, and
        ``inputs["location"]`` ``(B, L)`` exactly when a location encoding is configured.
        """
        check_model_inputs(
            type(self).__name__, inputs, self.fusion, self.location_encoder,
            self.location_encoding,
        )  # fmt: skip
        expected = list(self.input_channels)
        first = inputs[expected[0]]
        h, w = first.shape[-2:]
        for name in expected[1:]:
            x = inputs[name]
            if x.shape[-2:] != first.shape[-2:]:
                raise ValueError(
                    f"input group {name!r} has shape {tuple(x.shape)} but {expected[0]!r} has "
                    f"{tuple(first.shape)}: all groups need one batch size and one grid"
                )
        m = self.size_multiple
        if h % m or w % m:
            raise ValueError(
                f"{type(self).__name__} takes inputs whose height and width are multiples of {m} "
                f"(its total stride), got {h} x {w}; pad or crop to "
                f"{-(-h // m) * m} x {-(-w // m) * m} (scene prediction pads for you)"
            )

    def fuse(self, inputs: Mapping[str, Tensor]) -> Tensor:
        """Check the inputs, fuse the groups and add the encoded location: ``(B, width, H, W)``."""
        self.check_inputs(inputs)
        x = self.fusion(inputs)
        if self.location_encoder is not None:
            x = x + self.location_encoder(inputs["location"])[:, :, None, None]
        return x
