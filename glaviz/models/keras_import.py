"""Import the authors' Keras GlaViTU weight files (legacy ``.h5``) into :class:`GlaViTU`.

The file is read with :mod:`h5py` only (no pickle, no TensorFlow). Keras auto-numbers the
weight names (``conv2d_5``, ``dense_26``, ...) differently between model variants and sessions,
so weights are mapped by *structure and load order*: the root attribute ``layer_names`` lists the
top-level layers, each layer group's ``weight_names`` lists its weights in Keras load order
(trainable weights first, then the BatchNorm moving statistics in layer order).

Top-level layers with weights, in order: optional location encoder, fusion block, SETR
branch, residual U-Net, optional deep-supervision head, output head. Everything the PyTorch
model needs is inferred from the shapes: input groups (the weight-less layers before the first
weighted one, in file order; ``location`` is the location input), their channel counts (first
convolution of each fusion branch), location encoding (12 features -> ``"region"``, 4 ->
``"coordinates"``), width, patch and tile size, transformer depth/heads/MLP width, U-Net widths,
classes and whether a deep-supervision head is present.

Examples
--------
With one of the authors' weight files (``tests/models/test_keras_import.py`` runs this on the
parity fixture)::

    from glaviz.models.keras_import import load_keras_weights
    model = load_keras_weights("GlaViTU_global_weights.h5")
    model.config["input_channels"]   # {'optical': 6, 'dem': 2}
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np
import torch

from glaviz.errors import KerasImportError
from glaviz.models.blocks import TransformerBlock
from glaviz.models.glavitu import GlaViTU

__all__ = [
    "KerasImportError",
    "KerasLayer",
    "KerasWeightFile",
    "infer_config",
    "iter_weight_names",
    "load_keras_weights",
]


@dataclass(frozen=True)
class KerasLayer:
    """One top-level Keras layer: its name and its weights ``(name, array)`` in load order."""

    name: str
    weights: tuple[tuple[str, np.ndarray], ...]


@dataclass(frozen=True)
class KerasWeightFile:
    """The content of a legacy Keras ``.h5`` weight file, as plain numpy arrays.

    Attributes
    ----------
    path : str
        The file read.
    layers : tuple of KerasLayer
        Top-level layers in the order of the ``layer_names`` attribute.
    keras_version : str
        The ``keras_version`` attribute ('' if absent).
    """

    path: str
    layers: tuple[KerasLayer, ...]
    keras_version: str

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> KerasWeightFile:
        """Read every weight of a legacy Keras weight (or full-model) ``.h5`` file.

        Raises
        ------
        KerasImportError
            If the file is not HDF5 or has no Keras ``layer_names`` attribute.
        """
        path = os.fspath(path)
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            raise KerasImportError(f"{path}: not a readable HDF5 file ({exc})") from exc
        with f:
            root: h5py.Group = f
            if "layer_names" not in root.attrs and "model_weights" in root:
                root = root["model_weights"]  # a full-model file from model.save(...)
            if "layer_names" not in root.attrs:
                hint = (
                    " (this looks like a Keras 3 '.weights.h5' file, which is not supported)"
                    if "layers" in root or "_layer_checkpoint_dependencies" in root
                    else ""
                )
                raise KerasImportError(
                    f"{path}: not a Keras legacy HDF5 weight file: no 'layer_names' attribute{hint}"
                )
            layers = []
            for name in _strings(root.attrs["layer_names"]):
                if name not in root:
                    raise KerasImportError(f"{path}: layer {name!r} is listed but has no group")
                group = root[name]
                weights = []
                for wname in _strings(group.attrs.get("weight_names", [])):
                    if wname not in group:
                        raise KerasImportError(
                            f"{path}: weight {wname!r} of layer {name!r} is listed but missing"
                        )
                    weights.append((wname, np.asarray(group[wname][()])))
                layers.append(KerasLayer(name, tuple(weights)))
            version = root.attrs.get("keras_version", b"")
        if isinstance(version, bytes):
            version = version.decode()
        return cls(path, tuple(layers), str(version))


def _strings(values: Any) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


# --------------------------------------------------------------------------- structure
@dataclass(frozen=True)
class _Structure:
    inputs: tuple[str, ...]
    location: KerasLayer | None
    fusion: KerasLayer
    setr: KerasLayer
    unet: KerasLayer
    deep_supervision: KerasLayer | None
    output: KerasLayer


def _shape(layer: KerasLayer, i: int) -> tuple[int, ...]:
    return tuple(layer.weights[i][1].shape) if i < len(layer.weights) else ()


def _split_layers(wf: KerasWeightFile) -> _Structure:
    """Assign the top-level layers of a file to GlaViTU's parts, by position and shape."""
    names = [layer.name for layer in wf.layers]
    weighted = [layer for layer in wf.layers if layer.weights]
    if not weighted:
        raise KerasImportError(f"{wf.path}: not a GlaViTU weight file: no layer has weights")
    first = names.index(weighted[0].name)
    inputs = tuple(n for n in names[:first])

    def is_conv_block(layer: KerasLayer) -> bool:
        return len(_shape(layer, 0)) == 4 and _shape(layer, 0)[:2] == (3, 3)

    parts = list(weighted)
    location = None
    if parts and len(_shape(parts[0], 0)) == 2 and len(parts[0].weights) == 12:
        location = parts.pop(0)
    heads: list[KerasLayer] = []
    while parts and len(parts[-1].weights) == 2 and len(_shape(parts[-1], 0)) == 2:
        heads.insert(0, parts.pop())
    if len(parts) != 3 or not is_conv_block(parts[0]) or not is_conv_block(parts[2]):
        raise KerasImportError(
            f"{wf.path}: not a GlaViTU weight file: expected weighted layers [location encoder], "
            "fusion block, SETR, ResUNet, [deep supervision], output; found "
            + ", ".join(f"{layer.name} ({len(layer.weights)} weights)" for layer in weighted)
        )
    if len(_shape(parts[1], 0)) != 2:
        raise KerasImportError(
            f"{wf.path}: layer {parts[1].name!r} should be the SETR branch starting with the patch "
            f"embedding kernel (P*P*C, width), found shape {_shape(parts[1], 0)}"
        )
    if not 1 <= len(heads) <= 2:
        raise KerasImportError(
            f"{wf.path}: expected 1 or 2 output heads (Dense kernel + bias) after the U-Net, "
            f"found {len(heads)}"
        )
    if len(heads) == 2:
        by_name = {h.name: h for h in heads}
        if "output" in by_name and "deepsupervision" in by_name:
            ds, out = by_name["deepsupervision"], by_name["output"]
        else:  # the training model lists deep supervision first, then the main output
            ds, out = heads
    else:
        ds, out = None, heads[0]
    return _Structure(inputs, location, parts[0], parts[1], parts[2], ds, out)


def infer_config(wf: KerasWeightFile) -> dict[str, Any]:
    """Infer :class:`GlaViTU` constructor arguments from a weight file's shapes.

    Parameters
    ----------
    wf : KerasWeightFile
        A file read with :meth:`KerasWeightFile.read`.

    Returns
    -------
    dict
        Keyword arguments for :class:`GlaViTU` (``dropout`` is 0: the file does not record it).

    Raises
    ------
    KerasImportError
        Naming the layer and the shapes that do not fit GlaViTU.
    """
    s = _split_layers(wf)
    cfg: dict[str, Any] = {}

    # Fusion block: per branch 8 trainable + 2 squeeze + 2 excite + 4 statistics = 16.
    fusion = s.fusion
    if len(fusion.weights) % 16:
        raise KerasImportError(
            f"{wf.path}: fusion layer {fusion.name!r} has {len(fusion.weights)} weights, "
            "expected 16 per input group"
        )
    n_branches = len(fusion.weights) // 16
    kernels = [_shape(fusion, 8 * i) for i in range(n_branches)]
    for i, k in enumerate(kernels):
        if len(k) != 4 or k[:2] != (3, 3):
            raise KerasImportError(
                f"{wf.path}: fusion branch {i} should start with a (3, 3, C, width) kernel, "
                f"found {fusion.weights[8 * i][0]!r} with shape {k}"
            )
    width = kernels[0][3]
    groups = [n for n in s.inputs if n != "location"]
    if len(groups) != n_branches:
        raise KerasImportError(
            f"{wf.path}: the fusion block has {n_branches} branches but the file lists "
            f"{len(groups)} image inputs {groups}; pass config={{'input_channels': {{...}}}}"
        )
    cfg["input_channels"] = {g: k[2] for g, k in zip(groups, kernels)}
    cfg["width"] = width

    if s.location is not None:
        features = _shape(s.location, 0)[0]
        kinds = {v: k for k, v in {"region": 12, "coordinates": 4}.items()}
        if features not in kinds:
            raise KerasImportError(
                f"{wf.path}: location encoder {s.location.name!r} takes {features} features; only "
                "12 (region) and 4 (coordinates) are known: pass config={'location_encoding': ...}"
            )
        cfg["location_encoding"] = kinds[features]
        cfg["location_features"] = features

    # SETR: patch kernel, bias, position embedding, 16 per transformer block, decoder.
    setr = s.setr
    pk, pos = _shape(setr, 0), _shape(setr, 2)
    patch = math.isqrt(pk[0] // width) if pk and pk[0] % width == 0 else 0
    if patch < 2 or patch * patch * width != pk[0] or patch & (patch - 1) or len(pos) != 2:
        raise KerasImportError(
            f"{wf.path}: SETR layer {setr.name!r}: patch embedding kernel {pk} is not "
            f"(P*P*{width}, {width}) for a power-of-two P, or position embedding {pos} is not 2-D"
        )
    grid = math.isqrt(pos[0])
    if grid * grid != pos[0]:
        raise KerasImportError(
            f"{wf.path}: SETR position embedding has {pos[0]} tokens, not a square grid"
        )
    n_up = int(round(math.log2(patch)))
    rest = len(setr.weights) - 3 - (6 * n_up + 2)
    if rest < 0 or rest % 16:
        raise KerasImportError(
            f"{wf.path}: SETR layer {setr.name!r} has {len(setr.weights)} weights, which is not "
            f"3 + 16 x depth + {6 * n_up + 2} (decoder for patch size {patch})"
        )
    cfg.update(patch_size=patch, tile_size=grid * patch, transformer_depth=rest // 16)
    if rest:
        q = _shape(setr, 5)
        if len(q) != 3:
            raise KerasImportError(
                f"{wf.path}: expected a (width, heads, head_dim) query kernel at "
                f"{setr.weights[5][0]!r}, found {q}"
            )
        cfg["num_heads"] = q[1]
        cfg["mlp_dim"] = _shape(setr, 15)[1]

    # ResUNet: 31 weights per level + 15 (bottleneck, output conv, bottleneck statistics).
    unet = s.unet
    if (len(unet.weights) - 15) % 31 or len(unet.weights) < 46:
        raise KerasImportError(
            f"{wf.path}: ResUNet layer {unet.name!r} has {len(unet.weights)} weights, expected "
            "31 x levels + 15"
        )
    levels = (len(unet.weights) - 15) // 31
    cfg["unet_widths"] = [_shape(unet, 9 * i)[3] for i in range(levels)]
    cfg["bottleneck_width"] = _shape(unet, 9 * levels)[3]
    cfg["n_classes"] = _shape(s.output, 0)[1]
    cfg["deep_supervision"] = s.deep_supervision is not None
    return cfg


# --------------------------------------------------------------------------- conversion
def _conv(a: np.ndarray) -> np.ndarray:  # (kH, kW, in, out) -> (out, in, kH, kW)
    return a.transpose(3, 2, 0, 1)


def _dense(a: np.ndarray) -> np.ndarray:  # (in, out) -> (out, in)
    return a.T


def _dense_1x1(a: np.ndarray) -> np.ndarray:  # (in, out) -> (out, in, 1, 1)
    return a.T[:, :, None, None]


def _same(a: np.ndarray) -> np.ndarray:
    return a


# torch shape -> expected Keras shape, for each conversion
_KERAS_SHAPE: dict[Callable[[np.ndarray], np.ndarray], Callable[[tuple[int, ...]], tuple]] = {
    _conv: lambda t: (t[2], t[3], t[1], t[0]),
    _dense: lambda t: (t[1], t[0]),
    _dense_1x1: lambda t: (t[1], t[0]),
    _same: lambda t: t,
}


class _Loader:
    """Consume one Keras layer's weights in load order into a PyTorch state dict."""

    def __init__(self, path: str, layer: KerasLayer, state: dict[str, torch.Tensor]) -> None:
        self.path, self.layer, self.state = path, layer, state
        self.pos = 0
        self.bn_queue: list[str] = []

    def take(self, expected: tuple[int, ...]) -> np.ndarray:
        if self.pos >= len(self.layer.weights):
            raise KerasImportError(
                f"{self.path}: layer {self.layer.name!r} has only {len(self.layer.weights)} "
                f"weights; the model needs more (next expected shape {expected})"
            )
        name, arr = self.layer.weights[self.pos]
        if tuple(arr.shape) != tuple(expected):
            raise KerasImportError(
                f"{self.path}: layer {self.layer.name!r}, weight #{self.pos} {name!r}: expected "
                f"shape {tuple(expected)}, found {tuple(arr.shape)}"
            )
        self.pos += 1
        return arr

    def put(self, key: str, convert: Callable[[np.ndarray], np.ndarray]) -> None:
        target = self.state[key]
        arr = convert(self.take(_KERAS_SHAPE[convert](tuple(target.shape))))
        self.state[key] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))

    def conv(self, prefix: str, *, bias: bool = True) -> None:
        self.put(f"{prefix}.weight", _conv)
        if bias:
            self.put(f"{prefix}.bias", _same)

    def dense(self, prefix: str, *, as_1x1: bool = False, bias: bool = True) -> None:
        self.put(f"{prefix}.weight", _dense_1x1 if as_1x1 else _dense)
        if bias:
            self.put(f"{prefix}.bias", _same)

    def norm(self, prefix: str, *, batch: bool = True) -> None:
        self.put(f"{prefix}.weight", _same)
        self.put(f"{prefix}.bias", _same)
        if batch:
            self.bn_queue.append(prefix)

    def conv_bn_act(self, prefix: str) -> None:
        self.conv(f"{prefix}.conv1")
        self.norm(f"{prefix}.bn1")
        self.conv(f"{prefix}.conv2")
        self.norm(f"{prefix}.bn2")

    def finish(self) -> None:
        """Read the BatchNorm moving statistics, then check nothing is left."""
        for prefix in self.bn_queue:
            self.put(f"{prefix}.running_mean", _same)
            self.put(f"{prefix}.running_var", _same)
        if self.pos != len(self.layer.weights):
            raise KerasImportError(
                f"{self.path}: layer {self.layer.name!r} has {len(self.layer.weights)} weights, "
                f"the model uses {self.pos}; first unused: {self.layer.weights[self.pos][0]!r}"
            )


def _load_attention(ld: _Loader, prefix: str, width: int, heads: int, head_dim: int) -> None:
    """Keras MultiHeadAttention (query, key, value, output EinsumDense) -> fused qkv Linear."""
    inner = heads * head_dim
    ws, bs = [], []
    for _ in range(3):
        ws.append(ld.take((width, heads, head_dim)).reshape(width, inner).T)
        bs.append(ld.take((heads, head_dim)).reshape(inner))
    ld.state[f"{prefix}.qkv.weight"] = torch.from_numpy(np.concatenate(ws, 0).astype(np.float32))
    ld.state[f"{prefix}.qkv.bias"] = torch.from_numpy(np.concatenate(bs, 0).astype(np.float32))
    out = ld.take((heads, head_dim, width)).reshape(inner, width).T
    ld.state[f"{prefix}.proj.weight"] = torch.from_numpy(np.ascontiguousarray(out, np.float32))
    ld.put(f"{prefix}.proj.bias", _same)


def _iter_residual(ld: _Loader, prefix: str) -> None:
    ld.conv_bn_act(f"{prefix}.conv")
    ld.put(f"{prefix}.proj.weight", _dense_1x1)


def _convert(wf: KerasWeightFile, model: GlaViTU) -> dict[str, torch.Tensor]:
    s = _split_layers(wf)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    path = wf.path

    if (s.location is None) != (model.location_encoder is None):
        raise KerasImportError(
            f"{path}: the file {'has no' if s.location is None else 'has a'} location encoder, "
            f"the model has location_encoding={model.location_encoding!r}"
        )
    if s.location is not None:
        ld = _Loader(path, s.location, state)
        ld.dense("location_encoder.dense1")
        ld.norm("location_encoder.bn1")
        ld.dense("location_encoder.dense2")
        ld.norm("location_encoder.bn2")
        ld.finish()

    ld = _Loader(path, s.fusion, state)
    groups = list(model.fusion.branches)
    for g in groups:
        ld.conv_bn_act(f"fusion.branches.{g}.conv")
    for g in groups:
        ld.dense(f"fusion.branches.{g}.se.squeeze")
    for g in groups:
        ld.dense(f"fusion.branches.{g}.se.excite")
    ld.finish()

    ld = _Loader(path, s.setr, state)
    setr = model.setr
    width = setr.pos_embed.shape[-1]
    p = setr.patch_embed.patch_size
    key = "setr.patch_embed.proj.weight"
    c_in = state[key].shape[1]
    kernel = ld.take((p * p * c_in, width)).reshape(p, p, c_in, width)
    state[key] = torch.from_numpy(np.ascontiguousarray(_conv(kernel), np.float32))
    ld.put("setr.patch_embed.proj.bias", _same)
    pos = ld.take(tuple(setr.pos_embed.shape[1:]))
    state["setr.pos_embed"] = torch.from_numpy(np.ascontiguousarray(pos[None], np.float32))
    for i, block in enumerate(setr.blocks):
        assert isinstance(block, TransformerBlock)  # ModuleList items are typed as Module
        pre = f"setr.blocks.{i}"
        ld.norm(f"{pre}.norm1", batch=False)
        _load_attention(ld, f"{pre}.attn", width, block.attn.num_heads, block.attn.head_dim)
        ld.norm(f"{pre}.norm2", batch=False)
        ld.dense(f"{pre}.mlp.0")
        ld.dense(f"{pre}.mlp.3")
    for i in range(len(setr.decoder_convs)):
        ld.conv(f"setr.decoder_convs.{i}")
        ld.norm(f"setr.decoder_bns.{i}")
    ld.conv("setr.decoder_out")
    ld.finish()

    ld = _Loader(path, s.unet, state)
    for i in range(len(model.unet.encoders)):
        _iter_residual(ld, f"unet.encoders.{i}")
    _iter_residual(ld, "unet.bottleneck")
    for i in range(len(model.unet.decoders)):
        ld.conv(f"unet.ups.{i}.conv", bias=False)
        ld.norm(f"unet.ups.{i}.bn")
        _iter_residual(ld, f"unet.decoders.{i}")
    ld.dense("unet.out", as_1x1=True)
    ld.finish()

    if model.deep_supervision_head is not None:
        if s.deep_supervision is None:
            raise KerasImportError(
                f"{path}: the file has no deep-supervision head; build with deep_supervision=False"
            )
        ld = _Loader(path, s.deep_supervision, state)
        ld.dense("deep_supervision_head", as_1x1=True)
        ld.finish()
    ld = _Loader(path, s.output, state)
    ld.dense("head", as_1x1=True)
    ld.finish()
    return state


def load_keras_weights(
    path: str | os.PathLike[str],
    *,
    device: str | torch.device = "cpu",
    config: Mapping[str, Any] | None = None,
) -> GlaViTU:
    """Build a :class:`GlaViTU` from an authors' Keras ``.h5`` weight file.

    Parameters
    ----------
    path : str or os.PathLike
        A legacy Keras HDF5 weight file (``model.save_weights(...h5)``) of GlaViTU, from the
        training model (with deep-supervision head) or the inference model; a full-model ``.h5``
        (``model.save``) also works. Nothing is unpickled.
    device : str or torch.device, default "cpu"
        Where the returned model lives.
    config : Mapping, optional
        Constructor arguments overriding the inferred ones (for example other group names via
        ``input_channels``, ``location_encoding`` for an unusual location vector, ``dropout``, or
        ``deep_supervision=False`` to drop the deep-supervision head).

    Returns
    -------
    GlaViTU
        In evaluation mode, float32, on ``device``.

    Raises
    ------
    KerasImportError
        (a :class:`ValueError`) for a file that is not a GlaViTU weight file or whose shapes do
        not fit the configuration; the message names the layer, the weight and both shapes.

    Examples
    --------
    With the authors' files (see the module example)::

        model = load_keras_weights("GlaViTU_global_weights.h5")
        model = load_keras_weights(
            "weights.h5", config={"deep_supervision": False}, device="cuda"
        )
    """
    wf = KerasWeightFile.read(path)
    cfg = infer_config(wf) if config is None else _infer_or_empty(wf, config)
    if config is not None:
        cfg.update(config)
        if cfg.get("location_encoding", "none") == "none" and "location_features" not in config:
            cfg.pop("location_features", None)
    model = GlaViTU(**cfg)
    state = _convert(wf, model)
    if not cfg.get("deep_supervision", True):
        state = {k: v for k, v in state.items() if not k.startswith("deep_supervision_head.")}
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


def _infer_or_empty(wf: KerasWeightFile, config: Mapping[str, Any]) -> dict[str, Any]:
    """Inferred config, or {} when inference fails but the user gave the arguments it needs."""
    try:
        return infer_config(wf)
    except KerasImportError:
        if "input_channels" in config:
            return {}
        raise


def iter_weight_names(wf: KerasWeightFile) -> Iterator[tuple[str, str, tuple[int, ...]]]:
    """Yield ``(layer, weight name, shape)`` for every weight, in file load order."""
    for layer in wf.layers:
        for name, arr in layer.weights:
            yield layer.name, name, tuple(arr.shape)
