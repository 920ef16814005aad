"""The model table: registry names -> builders, and the conventions every model follows.

A registered model is a :class:`torch.nn.Module` class with a keyword-only constructor and a
JSON-serialisable ``config`` property such that ``build(name, **model.config)`` rebuilds it. Its
``forward`` takes a mapping of input groups (``{"optical": (B, 6, H, W), ...}``, plus
``"location"`` ``(B, L)`` when a location encoding is configured) and returns logits
``(B, n_classes, H, W)``. Checkpoints (:mod:`glaviz.models.checkpoint`) store the registry name and
the config, so they rebuild the model without any other flag.

The built-in names are one static table in this module, which imports the models (no model
module imports the registry): ``"glavitu"``, ``"resunet"``, ``"setr"``, ``"transunet"``,
``"deeplabv3plus"``, and ``"<name>-small"`` presets of each (small widths and depths for CPU and
tests). :func:`register_model` adds other models at run time. The shared base of the models is
:class:`glaviz.models.base.FusionModel`.

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

import difflib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

from glaviz.errors import RegistryError
from glaviz.models.deeplab import DeepLabV3Plus
from glaviz.models.glavitu import GlaViTU
from glaviz.models.resunet import ResUNet
from glaviz.models.setr import SETR
from glaviz.models.transunet import TransUNet

__all__ = [
    "ModelSpec",
    "RegistryError",
    "available_models",
    "build",
    "model_spec",
    "register_model",
    "registry_name",
]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

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


def _summary(cls: type) -> str:
    doc = (inspect.getdoc(cls) or "").strip().splitlines()
    return doc[0] if doc else ""


#: The built-in models: name -> class, builder (the class or a preset) and description.
_BUILTIN: tuple[ModelSpec, ...] = (
    ModelSpec("glavitu", GlaViTU, GlaViTU, "GlaViTU (about 10.0 M parameters)"),
    ModelSpec(
        "glavitu-small",
        GlaViTU,
        GlaViTU.small,
        "GlaViTU, small configuration for CPU and tests (about 0.6 M parameters)",
    ),
    ModelSpec("resunet", ResUNet, ResUNet, _summary(ResUNet)),
    ModelSpec(
        "resunet-small", ResUNet, ResUNet.small, "ResU-Net, small configuration for CPU and tests"
    ),
    ModelSpec("setr", SETR, SETR, _summary(SETR)),
    ModelSpec("setr-small", SETR, SETR.small, "SETR, small configuration for CPU and tests"),
    ModelSpec("transunet", TransUNet, TransUNet, _summary(TransUNet)),
    ModelSpec(
        "transunet-small",
        TransUNet,
        TransUNet.small,
        "TransUNet, small configuration for CPU and tests",
    ),
    ModelSpec("deeplabv3plus", DeepLabV3Plus, DeepLabV3Plus, _summary(DeepLabV3Plus)),
    ModelSpec(
        "deeplabv3plus-small",
        DeepLabV3Plus,
        DeepLabV3Plus.small,
        "DeepLabv3+ (ResNeSt), small configuration for CPU and tests",
    ),
)

# The table: the built-ins plus what register_model adds at run time.
_REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in _BUILTIN}


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
        spec = ModelSpec(name, cls, fac, description or _summary(cls))
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


def available_models() -> list[str]:
    """Sorted names of the registered models and presets.

    Examples
    --------
    >>> [n for n in available_models() if not n.endswith("-small")]
    ['deeplabv3plus', 'glavitu', 'resunet', 'setr', 'transunet']
    """
    return sorted(_REGISTRY)


def model_spec(name: str) -> ModelSpec:
    """The registry entry of ``name``; :class:`RegistryError` listing the known names otherwise.

    Examples
    --------
    >>> model_spec("setr-small").cls.__name__
    'SETR'
    """
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
    model.registry_name = registry_name(model)  # type: ignore[assignment]
    return model


def registry_name(model: nn.Module | type) -> str:
    """The canonical registry name of a model (or model class): the non-preset entry of its class.

    Examples
    --------
    >>> from glaviz.models.glavitu import GlaViTU
    >>> registry_name(GlaViTU.small())
    'glavitu'
    """
    cls = model if isinstance(model, type) else type(model)
    candidates = [s for s in _REGISTRY.values() if s.cls is cls]
    if not candidates:
        raise RegistryError(
            f"{cls.__module__}.{cls.__qualname__} is not a registered model; register it with "
            "glaviz.models.registry.register_model(name) so that checkpoints can rebuild it"
        )
    plain = [s for s in candidates if not s.is_preset]
    return (plain or candidates)[0].name
