"""The base every model shares: input configuration, input checks, fusion and location, config.

A glaviz model takes a mapping of input groups (``{"optical": (B, 6, H, W), ...}``, plus
``"location"`` ``(B, L)`` when a location encoding is configured) and returns logits
``(B, n_classes, H, W)``. :class:`FusionModel` owns what every model does the same way:

- the input configuration (:func:`check_input_config`: groups, location encoding and length),
- the input checks (:meth:`FusionModel.check_inputs`: a mapping, no unknown key, every group
  at its channel count, one batch size, one grid, the location vector),
- the fusion block and the optional location encoding added after it (:meth:`FusionModel.fuse`),
- ``config``, ``groups`` and the Keras-like ``reset_parameters``.

A model adds its body and only its own size rule (:meth:`FusionModel.check_sizes`): by default
height and width must be multiples of ``size_multiple`` (the baselines' total stride); GlaViTU
takes tiles of one fixed size.

Examples
--------
>>> import torch
>>> class Tiny(FusionModel):
...     def __init__(self, *, input_channels=None, location_encoding="none",
...                  location_features=None) -> None:
...         super().__init__(input_channels=input_channels, location_encoding=location_encoding,
...                          location_features=location_features, fusion_width=4,
...                          size_multiple=8)
...         self._set_config()
...         self.head = torch.nn.Conv2d(4, 2, 1)
...         self.reset_parameters()
...     def forward(self, inputs):
...         return self.head(self.fuse(inputs))
>>> m = Tiny(input_channels={"dem": 2}).eval()
>>> m({"dem": torch.rand(1, 2, 16, 8)}).shape
torch.Size([1, 2, 16, 8])
>>> m.config
{'input_channels': {'dem': 2}, 'location_encoding': 'none', 'location_features': None}
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Literal

from torch import Tensor, nn

from glaviz.models.blocks import FusionBlock, LocationEncoder

__all__ = [
    "DEFAULT_LOCATION_FEATURES",
    "FusionModel",
    "LocationEncoding",
    "check_input_config",
]

LocationEncoding = Literal["none", "region", "coordinates"]

#: Default location vector length: 11 regions + "unknown" slot, or sin/cos of lat/lon.
DEFAULT_LOCATION_FEATURES: dict[str, int] = {"region": 12, "coordinates": 4}


def check_input_config(
    input_channels: Mapping[str, int] | None,
    location_encoding: str,
    location_features: int | None,
) -> tuple[dict[str, int], int | None]:
    """Validate the input arguments shared by every model: groups and location encoding.

    Returns the input channels as a plain dict (default optical 6 + dem 2) and the location
    vector length (the encoding's default when not given, ``None`` without encoding).

    Examples
    --------
    >>> check_input_config(None, "region", None)
    ({'optical': 6, 'dem': 2}, 12)
    """
    if input_channels is None:
        input_channels = {"optical": 6, "dem": 2}
    channels = {str(k): int(v) for k, v in input_channels.items()}
    if "location" in channels:
        raise ValueError("'location' is reserved for the location vector, not an image group")
    if location_encoding not in ("none", "region", "coordinates"):
        raise ValueError(
            "location_encoding must be 'none', 'region' or 'coordinates', "
            f"got {location_encoding!r}"
        )
    if location_encoding == "none":
        if location_features is not None:
            raise ValueError("location_features given but location_encoding is 'none'")
    elif location_features is None:
        location_features = DEFAULT_LOCATION_FEATURES[location_encoding]
    return channels, location_features


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class FusionModel(nn.Module):
    """Base of every model: fusion block, optional location encoding, checks and ``config``.

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
        map.
    location_features : int, optional
        ``L``: 12 (``"region"``) or 4 (``"coordinates"``) by default.
    fusion_width : int
        Channels of the fused map.
    size_multiple : int, default 1
        The model's total stride: with the default :meth:`check_sizes`, inputs' height and
        width must be multiples of it.
    dropout : float, default 0.0
        Spatial dropout inside the fusion branches.
    """

    def __init__(
        self,
        *,
        input_channels: Mapping[str, int] | None,
        location_encoding: LocationEncoding,
        location_features: int | None,
        fusion_width: int,
        size_multiple: int = 1,
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
        """Record the constructor arguments (after the input configuration) for :attr:`config`."""
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

    # ------------------------------------------------------------------ input checks
    def check_inputs(self, inputs: Mapping[str, Tensor]) -> None:
        """Raise :class:`ValueError` (:class:`TypeError` for a non-mapping) for bad inputs.

        Checks: a mapping, no unexpected key, every group present with its channels, one batch
        size, ``inputs["location"]`` ``(B, L)`` exactly when a location encoding is configured,
        then the model's size rule (:meth:`check_sizes`). Errors name the offending group.
        """
        owner = type(self).__name__
        if not isinstance(inputs, Mapping):
            raise TypeError(
                f"{owner} takes a mapping of input groups to tensors, got {type(inputs).__name__}"
            )
        expected = list(self.input_channels)
        encoder = self.location_encoder
        allowed = set(expected) | ({"location"} if encoder is not None else set())
        for name in inputs:
            if name not in allowed:
                hint = (
                    " (this model has no location encoding)"
                    if name == "location"
                    else f" (expected groups: {expected})"
                )
                raise ValueError(f"unexpected input group {name!r}{hint}")
        self.fusion.check_inputs(inputs)
        batch = int(inputs[expected[0]].shape[0])
        for name in expected[1:]:
            if inputs[name].shape[0] != batch:
                raise ValueError(
                    f"input group {name!r} has batch size {inputs[name].shape[0]}, "
                    f"the others {batch}"
                )
        if encoder is not None:
            n = encoder.in_features
            if "location" not in inputs:
                raise ValueError(
                    f"input 'location' (B, {n}) is missing: the model was built with "
                    f"location_encoding={self.location_encoding!r}"
                )
            if tuple(inputs["location"].shape) != (batch, n):
                raise ValueError(
                    f"input 'location' must have shape ({batch}, {n}), "
                    f"got {tuple(inputs['location'].shape)}"
                )
        self.check_sizes(inputs)

    def check_sizes(self, inputs: Mapping[str, Tensor]) -> None:
        """The size rule: one grid for all groups, sides multiples of :attr:`size_multiple`.

        Models with another rule (GlaViTU's fixed tile) override this method; it runs after
        the other input checks.
        """
        expected = list(self.input_channels)
        first = inputs[expected[0]]
        for name in expected[1:]:
            x = inputs[name]
            if x.shape[-2:] != first.shape[-2:]:
                raise ValueError(
                    f"input group {name!r} has shape {tuple(x.shape)} but {expected[0]!r} has "
                    f"{tuple(first.shape)}: all groups need one batch size and one grid"
                )
        h, w = first.shape[-2:]
        m = self.size_multiple
        if h % m or w % m:
            raise ValueError(
                f"{type(self).__name__} takes inputs whose height and width are multiples of {m} "
                f"(its total stride), got {h} x {w}; pad or crop to "
                f"{-(-h // m) * m} x {-(-w // m) * m} (scene prediction pads for you)"
            )

    # ------------------------------------------------------------------ forward
    def prepare_inputs(self, inputs: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
        """Checked inputs as the fusion block takes them (e.g. a memory format); unchanged here."""
        return inputs

    def fuse(self, inputs: Mapping[str, Tensor]) -> Tensor:
        """Check the inputs, fuse the groups and add the encoded location: ``(B, width, H, W)``."""
        self.check_inputs(inputs)
        inputs = self.prepare_inputs(inputs)
        x = self.fusion(inputs)
        if self.location_encoder is not None:
            x = x + self.location_encoder(inputs["location"])[:, :, None, None]
        return x
