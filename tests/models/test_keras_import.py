"""Keras ``.h5`` import: numerical parity with the authors' Keras model, inference, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from glaviz.models.glavitu import GlaViTU, count_parameters_keras_style
from glaviz.models.keras_import import (
    KerasImportError,
    KerasWeightFile,
    infer_config,
    load_keras_weights,
)

EXPECTED_CONFIG = {
    "A_global": {
        "input_channels": {"optical": 6, "dem": 2},
        "location_encoding": "none",
        "location_features": None,
    },
    "B_regionencoding_sar": {
        "input_channels": {
            "optical": 6,
            "dem": 2,
            "co_pol_sar": 2,
            "cross_pol_sar": 2,
            "in_sar": 2,
        },
        "location_encoding": "region",
        "location_features": 12,
    },
}
REFERENCE = {
    "n_classes": 2,
    "width": 64,
    "unet_widths": [64, 128, 256],
    "bottleneck_width": 512,
    "transformer_depth": 12,
    "num_heads": 4,
    "mlp_dim": 256,
    "patch_size": 16,
    "tile_size": 384,
    "deep_supervision": True,
    "dropout": 0.0,
}


# --------------------------------------------------------------------------- Keras-layout writer
def keras_layout(model: GlaViTU) -> list[tuple[str, list[tuple[str, np.ndarray]]]]:
    """A model's weights as Keras top-level layers, each with its weights in Keras load order.

    The inverse of the importer, checked against the real fixture in
    :func:`test_writer_reproduces_the_fixture_file`; used to write small test files.
    """
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}

    def conv(p):  # (out, in, kh, kw) -> (kh, kw, in, out)
        return sd[p + ".weight"].transpose(2, 3, 1, 0)

    def dense(p):  # Linear (out, in) or 1x1 conv (out, in, 1, 1) -> (in, out)
        w = sd[p + ".weight"]
        return w.reshape(w.shape[0], w.shape[1]).T

    def block(prefix, trainable, bns):
        ws = list(trainable)
        for bn in bns:
            ws += [(f"{bn}/moving_mean", sd[bn + ".running_mean"])]
            ws += [(f"{bn}/moving_variance", sd[bn + ".running_var"])]
        return [(f"{prefix}/{n}:0", a) for n, a in ws]

    def norm(p, bns=None):
        if bns is not None:
            bns.append(p)
        return [(f"{p}/gamma", sd[p + ".weight"]), (f"{p}/beta", sd[p + ".bias"])]

    def conv_bn_act(p, bns):
        return [
            (f"{p}.conv1/kernel", conv(p + ".conv1")),
            (f"{p}.conv1/bias", sd[p + ".conv1.bias"]),
            *norm(p + ".bn1", bns),
            (f"{p}.conv2/kernel", conv(p + ".conv2")),
            (f"{p}.conv2/bias", sd[p + ".conv2.bias"]),
            *norm(p + ".bn2", bns),
        ]

    layers: list[tuple[str, list[tuple[str, np.ndarray]]]] = []
    if model.location_encoder is not None:
        layers.append(("location", []))
    layers += [(g, []) for g in model.groups]
    if model.location_encoder is not None:
        bns: list[str] = []
        w = []
        for i in (1, 2):
            p = f"location_encoder.dense{i}"
            w += [(p + "/kernel", dense(p)), (p + "/bias", sd[p + ".bias"])]
            w += norm(f"location_encoder.bn{i}", bns)
        layers.append(("location_encoding_block", block("location_encoding_block", w, bns)))
    bns, w = [], []
    for g in model.groups:
        w += conv_bn_act(f"fusion.branches.{g}.conv", bns)
    for part in ("squeeze", "excite"):
        for g in model.groups:
            p = f"fusion.branches.{g}.se.{part}"
            w += [(p + "/kernel", dense(p)), (p + "/bias", sd[p + ".bias"])]
    layers.append(("fusion_block", block("fusion_block", w, bns)))

    setr = model.setr
    pe = sd["setr.patch_embed.proj.weight"]
    bns = []
    w = [
        ("patch/kernel", pe.transpose(2, 3, 1, 0).reshape(-1, pe.shape[0])),
        ("patch/bias", sd["setr.patch_embed.proj.bias"]),
        ("pos/positional_embedding", sd["setr.pos_embed"][0]),
    ]
    for i, blk in enumerate(setr.blocks):
        p = f"setr.blocks.{i}"
        heads, hd = blk.attn.num_heads, blk.attn.head_dim
        width = heads * hd
        qkv_w = sd[p + ".attn.qkv.weight"].reshape(3, width, -1)
        qkv_b = sd[p + ".attn.qkv.bias"].reshape(3, heads, hd)
        w += norm(p + ".norm1")
        for j, name in enumerate(("query", "key", "value")):
            w += [(f"{p}/{name}/kernel", qkv_w[j].T.reshape(-1, heads, hd))]
            w += [(f"{p}/{name}/bias", qkv_b[j])]
        w += [(p + "/out/kernel", sd[p + ".attn.proj.weight"].T.reshape(heads, hd, -1))]
        w += [(p + "/out/bias", sd[p + ".attn.proj.bias"])]
        w += norm(p + ".norm2")
        for j in (0, 3):
            w += [
                (f"{p}/mlp{j}/kernel", dense(f"{p}.mlp.{j}")),
                (f"{p}/mlp{j}/bias", sd[f"{p}.mlp.{j}.bias"]),
            ]
    for i in range(len(setr.decoder_convs)):
        w += [(f"dec{i}/kernel", conv(f"setr.decoder_convs.{i}"))]
        w += [(f"dec{i}/bias", sd[f"setr.decoder_convs.{i}.bias"])]
        w += norm(f"setr.decoder_bns.{i}", bns)
    w += [
        ("dec_out/kernel", conv("setr.decoder_out")),
        ("dec_out/bias", sd["setr.decoder_out.bias"]),
    ]
    layers.append(("SETR", block("SETR", w, bns)))

    bns, w = [], []

    def residual(p):
        return conv_bn_act(p + ".conv", bns) + [(p + ".proj/kernel", dense(p + ".proj"))]

    for i in range(len(model.unet.encoders)):
        w += residual(f"unet.encoders.{i}")
    w += residual("unet.bottleneck")
    for i in range(len(model.unet.decoders)):
        w += [(f"up{i}/kernel", conv(f"unet.ups.{i}.conv")), *norm(f"unet.ups.{i}.bn", bns)]
        w += residual(f"unet.decoders.{i}")
    w += [("out/kernel", dense("unet.out")), ("out/bias", sd["unet.out.bias"])]
    layers += [("add_12", []), ("ResUNet", block("ResUNet", w, bns)), ("add_13", [])]
    if model.deep_supervision_head is not None:
        ds = [
            ("kernel", dense("deep_supervision_head")),
            ("bias", sd["deep_supervision_head.bias"]),
        ]
        layers.append(("deepsupervision", [(f"deepsupervision/{n}:0", a) for n, a in ds]))
    out = [("kernel", dense("head")), ("bias", sd["head.bias"])]
    layers.append(("output", [(f"output/{n}:0", a) for n, a in out]))
    return layers


def write_keras_h5(
    path: Path, layers: list[tuple[str, list[tuple[str, np.ndarray]]]], *, full_model: bool = False
) -> Path:
    """Write layers in the legacy Keras HDF5 weight layout (``layer_names``/``weight_names``).

    ``full_model=True`` nests them in ``model_weights`` as ``model.save("x.h5")`` does.
    """
    with h5py.File(path, "w") as root:
        f = root.create_group("model_weights") if full_model else root
        f.attrs["layer_names"] = np.array([n.encode() for n, _ in layers])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.15.0"
        for name, weights in layers:
            g = f.create_group(name)
            g.attrs["weight_names"] = np.array([n.encode() for n, _ in weights])
            for wname, arr in weights:
                g.create_dataset(wname, data=np.ascontiguousarray(arr, dtype=np.float32))
    return path


# --------------------------------------------------------------------------- parity
@pytest.fixture(scope="module", params=["A_global", "B_regionencoding_sar"])
def imported(request, keras_variants):
    """(variant, model, main logits, deep-supervision logits) for one batch of 2 tiles."""
    variant = keras_variants(request.param)
    model = load_keras_weights(variant.weights)
    with torch.inference_mode():
        main, ds = model.forward_with_deep_supervision(variant.torch_inputs())
    return variant, model, main, ds


def test_inferred_config(imported):
    variant, model, _, _ = imported
    assert model.config == {**REFERENCE, **EXPECTED_CONFIG[variant.name]}
    assert list(model.input_channels) == [
        g for g in variant.layout["input_order"] if g != "location"
    ]
    assert not model.training


def test_parameter_counts_match_keras(imported):
    variant, model, _, _ = imported
    counts = count_parameters_keras_style(model)
    assert counts["total"] == variant.layout["params_keras_test_model_total"]
    assert counts["trainable"] == variant.layout["params_trainable_test_model"]
    train_total = count_parameters_keras_style(model, include_deep_supervision=True)["total"]
    assert train_total == variant.layout["params_keras_train_model_total"]


@pytest.mark.slow
@pytest.mark.parametrize("head", ["main", "deepsupervision"])
def test_logits_match_keras(imported, head):
    variant, _, main, ds = imported
    ours = main if head == "main" else ds
    ref = variant.keras_logits(head)
    assert ours.shape == ref.shape == (2, 2, 384, 384)
    assert (ours - ref).abs().max().item() <= 1e-3
    assert (ours.softmax(1) - ref.softmax(1)).abs().max().item() <= 1e-4


def test_writer_reproduces_the_fixture_file(imported):
    """Every weight of the file lands in the model, in place: converting back gives the file."""
    variant, model, _, _ = imported
    wf = KerasWeightFile.read(variant.weights)
    ours = [(name, ws) for name, ws in keras_layout(model) if ws]
    theirs = [(layer.name, layer.weights) for layer in wf.layers if layer.weights]
    assert [len(ws) for _, ws in ours] == [len(ws) for _, ws in theirs]
    for (_, ws_ours), (lname, ws_theirs) in zip(ours, theirs):
        for (_, a), (wname, b) in zip(ws_ours, ws_theirs):
            assert a.shape == b.shape, f"{lname}/{wname}"
            np.testing.assert_array_equal(a, b, err_msg=f"{lname}/{wname}")


# --------------------------------------------------------------------------- small round trips
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"location_encoding": "coordinates", "deep_supervision": False},
        {
            "input_channels": {"dem": 2, "thermal": 1, "optical": 6},
            "location_encoding": "region",
            "transformer_depth": 3,
            "num_heads": 4,
            "mlp_dim": 24,
            "n_classes": 3,
        },
        {"patch_size": 8, "tile_size": 32, "unet_widths": (8, 16), "bottleneck_width": 24},
    ],
    ids=["small", "coordinates-no-ds", "region-3-groups-depth3", "patch8-2levels"],
)
def test_round_trip_small_configurations(kwargs, tmp_path, make_inputs, randomise_bn):
    torch.manual_seed(10)
    model = randomise_bn(GlaViTU.small(**kwargs)).eval()
    path = write_keras_h5(tmp_path / "w.h5", keras_layout(model))
    loaded = load_keras_weights(path)
    assert loaded.config == model.config
    cfg = model.config
    x = make_inputs(
        cfg["input_channels"], batch=1, size=cfg["tile_size"], location=cfg["location_features"]
    )
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), atol=1e-5, rtol=1e-5)


def test_full_model_h5_file(tmp_path, make_inputs):
    torch.manual_seed(11)
    model = GlaViTU.small(input_channels={"optical": 6}).eval()
    path = write_keras_h5(tmp_path / "model.h5", keras_layout(model), full_model=True)
    loaded = load_keras_weights(path, device=torch.device("cpu"))
    x = make_inputs({"optical": 6}, batch=1)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), atol=1e-5, rtol=1e-5)


def test_inference_model_file_without_deep_supervision(tmp_path, make_inputs):
    model = GlaViTU.small(deep_supervision=False).eval()
    path = write_keras_h5(tmp_path / "w.h5", keras_layout(model))
    assert infer_config(KerasWeightFile.read(path))["deep_supervision"] is False
    with pytest.raises(KerasImportError, match="no deep-supervision head"):
        load_keras_weights(path, config={"deep_supervision": True})


# --------------------------------------------------------------------------- overrides
def test_config_override_renames_groups_and_drops_deep_supervision(keras_variants):
    variant = keras_variants("A_global")
    model = load_keras_weights(
        variant.weights, config={"input_channels": {"s2": 6, "topo": 2}, "deep_supervision": False}
    )
    assert model.groups == ("s2", "topo")
    assert model.deep_supervision_head is None
    reference = load_keras_weights(variant.weights)
    for g_new, g_old in (("s2", "optical"), ("topo", "dem")):
        torch.testing.assert_close(
            model.fusion.branches[g_new].conv.conv1.weight,
            reference.fusion.branches[g_old].conv.conv1.weight,
        )


def test_config_override_with_wrong_width_names_layer_and_shapes(keras_variants):
    with pytest.raises(KerasImportError, match=r"fusion_block.*expected shape \(3, 3, 6, 32\)"):
        load_keras_weights(keras_variants("A_global").weights, config={"width": 32})


def test_config_override_location_encoding_mismatch(keras_variants):
    with pytest.raises(KerasImportError, match="has a location encoder"):
        load_keras_weights(
            keras_variants("B_regionencoding_sar").weights, config={"location_encoding": "none"}
        )


# --------------------------------------------------------------------------- bad files
def test_not_hdf5(tmp_path):
    bad = tmp_path / "weights.h5"
    bad.write_text("not hdf5")
    with pytest.raises(KerasImportError, match="not a readable HDF5 file"):
        load_keras_weights(bad)


def test_hdf5_without_keras_layout(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(KerasImportError, match="no 'layer_names' attribute"):
        load_keras_weights(path)


def test_keras_file_of_another_model(tmp_path):
    layers = [
        ("input_1", []),
        ("dense", [("dense/kernel:0", np.zeros((4, 8))), ("dense/bias:0", np.zeros(8))]),
        ("dense_1", [("dense_1/kernel:0", np.zeros((8, 2))), ("dense_1/bias:0", np.zeros(2))]),
    ]
    path = write_keras_h5(tmp_path / "mlp.h5", layers)
    with pytest.raises(KerasImportError, match="not a GlaViTU weight file"):
        load_keras_weights(path)


def test_unexpected_shape_names_layer_weight_and_shapes(keras_variants, tmp_path):
    path = tmp_path / "broken.h5"
    shutil.copyfile(keras_variants("A_global").weights, path)
    with h5py.File(path, "r+") as f:
        g = f["ResUNet"]
        name = g.attrs["weight_names"][-3]  # a BatchNorm moving statistic of the decoder
        name = name.decode() if isinstance(name, bytes) else name
        del g[name]
        g.create_dataset(name, data=np.zeros(65, dtype=np.float32))
    with pytest.raises(KerasImportError) as err:
        load_keras_weights(path)
    msg = str(err.value)
    assert "'ResUNet'" in msg and name in msg
    assert "expected shape (64,), found (65,)" in msg


def test_missing_weights_are_reported(tmp_path):
    model = GlaViTU.small()
    layers = keras_layout(model)
    layers = [(n, ws[:-1] if n == "SETR" else ws) for n, ws in layers]
    path = write_keras_h5(tmp_path / "short.h5", layers)
    with pytest.raises(KerasImportError, match="SETR"):
        load_keras_weights(path)
