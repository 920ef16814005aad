"""Self-describing safetensors checkpoints: round trips, metadata, atomic writes, refusals."""

from __future__ import annotations

import json
import os
import struct
from datetime import datetime

import pytest
import torch
from safetensors.torch import load_file, save_file

import glaviz
from glaviz.catalog import load_catalog
from glaviz.data import synthetic_scene
from glaviz.models import checkpoint as ckpt
from glaviz.models.checkpoint import (
    CheckpointError,
    IncompatibleSceneError,
    check_compatible,
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
    update_checkpoint_metadata,
)
from glaviz.models.registry import build

CHANNELS = {"optical": 6, "dem": 2}


def _inputs(size=64, batch=1, seed=0, location=None):
    g = torch.Generator().manual_seed(seed)
    x = {k: torch.rand(batch, c, size, size, generator=g) for k, c in CHANNELS.items()}
    if location is not None:
        x["location"] = location
    return x


def _trained(name: str, **config) -> torch.nn.Module:
    """A small model whose BatchNorm statistics moved away from their initial values."""
    torch.manual_seed(0)
    model = build(name, input_channels=CHANNELS, **config)
    loc = {"location": torch.eye(12)[:2]} if config.get("location_encoding") == "region" else {}
    with torch.no_grad():
        model.train()({**_inputs(batch=2, seed=1), **loc})
    return model.eval()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One small GlaViTU checkpoint shared by the read-only tests."""
    model = _trained("glavitu-small")
    path = save_checkpoint(model, tmp_path_factory.mktemp("ckpt") / "glavitu.safetensors")
    return model, path


def test_metadata_contents(saved):
    model, path = saved
    meta = read_checkpoint_metadata(path)
    cat = load_catalog()
    assert meta["format"] == "glaviz-checkpoint" and meta["format_version"] == ckpt.FORMAT_VERSION
    assert meta["model"] == "glavitu" and meta["config"] == model.config
    assert meta["inputs"]["groups"] == ["optical", "dem"]
    assert meta["inputs"]["channels"] == CHANNELS
    assert meta["inputs"]["bands"]["optical"] == list(cat.groups["optical"].bands)
    assert meta["scaling"] == cat.scaling_table()
    assert meta["regions"] == {"codes": list(cat.region_codes), "unknown_slot": cat.unknown_slot}
    assert meta["calibration"] is None
    prov = meta["provenance"]
    assert prov["glaviz_version"] == glaviz.__version__
    assert prov["torch_version"] == torch.__version__
    assert datetime.fromisoformat(prov["created"]).utcoffset().total_seconds() == 0
    assert prov["data"] is None and prov["strategy"] is None and prov["epochs"] is None
    assert len(meta["weights_sha256"]) == 64
    # one safetensors file, metadata as JSON under the single "glaviz" header key
    with open(path, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        header = json.loads(fh.read(n))
    assert list(header["__metadata__"]) == ["glaviz"]
    assert json.loads(header["__metadata__"]["glaviz"]) == meta


def test_band_names_and_custom_scaling_are_stored(tmp_path):
    model = build("resunet-small", input_channels={"optical": 4})
    path = save_checkpoint(
        model, tmp_path / "m", metadata={"bands": {"optical": ["blue", "green", "red", "nir"]}}
    )
    meta = read_checkpoint_metadata(path)
    assert meta["inputs"]["bands"] == {"optical": ["blue", "green", "red", "nir"]}
    # without names and with a non-catalog channel count, bands stay unknown
    unnamed = read_checkpoint_metadata(save_checkpoint(model, tmp_path / "u"))
    assert unnamed["inputs"]["bands"] == {"optical": None}
    with pytest.raises(CheckpointError, match=r"bands\['optical'\] lists 2 names.*4 channels"):
        save_checkpoint(model, tmp_path / "x", metadata={"bands": {"optical": ["a", "b"]}})
    with pytest.raises(CheckpointError, match="derived from the model"):
        save_checkpoint(model, tmp_path / "x", metadata={"config": {}})
    table = {"optical": {"bands": ["blue"], "min": [0.0], "max": [1.0]}}
    custom = save_checkpoint(model, tmp_path / "c", metadata={"scaling": table})
    assert read_checkpoint_metadata(custom)["scaling"] == table


def test_refuses_overwrite_unless_asked(saved, tmp_path):
    model, _ = saved
    path = save_checkpoint(model, tmp_path / "m.safetensors", metadata={"epochs": 1})
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_checkpoint(model, path, metadata={"epochs": 2})
    assert path.read_bytes() == before
    save_checkpoint(model, path, metadata={"epochs": 2}, overwrite=True)
    assert read_checkpoint_metadata(path)["provenance"]["epochs"] == 2


def test_failed_save_leaves_existing_file_intact(saved, tmp_path, monkeypatch):
    model, _ = saved
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    before = path.read_bytes()

    def broken_save(tensors, filename, metadata=None):
        with open(filename, "wb") as fh:  # a partial write, then a crash
            fh.write(b"\x00" * 100)
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_file", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(model, path, overwrite=True)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]  # no temporary file left behind
    assert load_checkpoint(path).config == model.config


def test_header_only_metadata_read(saved, tmp_path):
    _, path = saved
    with open(path, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[: 8 + n + 10])  # header intact, weights cut off
    assert read_checkpoint_metadata(truncated) == read_checkpoint_metadata(path)
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(truncated)


def test_update_metadata_rewrites_header_only(saved, tmp_path):
    model, original = saved
    path = tmp_path / "m.safetensors"
    path.write_bytes(original.read_bytes())
    cal = {"confidence": [0.0, 0.5, 1.0], "accuracy": [0.0, 0.8, 1.0], "ece_after": 0.0066}
    new = update_checkpoint_metadata(path, calibration=cal, best_val_iou=0.87)
    assert new["calibration"] == cal and new["provenance"]["best_val_iou"] == 0.87
    meta = read_checkpoint_metadata(path)
    assert meta == new
    old = read_checkpoint_metadata(original)
    assert {k: v for k, v in meta.items() if k not in ("calibration", "provenance")} == {
        k: v for k, v in old.items() if k not in ("calibration", "provenance")
    }
    tensors, reference = load_file(path), load_file(original)
    assert tensors.keys() == reference.keys()
    assert all(torch.equal(tensors[k], reference[k]) for k in tensors)
    loaded = load_checkpoint(path)  # checksum still valid
    assert loaded.checkpoint_metadata["calibration"]["ece_after"] == 0.0066
    with pytest.raises(CheckpointError, match="derived from the model"):
        update_checkpoint_metadata(path, config={"width": 1})
    with pytest.raises(CheckpointError, match="strictly increasing"):
        update_checkpoint_metadata(path, calibration={"confidence": [0.5, 0.2], "accuracy": [0, 1]})
    with pytest.raises(CheckpointError, match=r"\[0, 1\]"):
        update_checkpoint_metadata(path, calibration={"confidence": [0, 1], "accuracy": [0, 2]})
    assert read_checkpoint_metadata(path) == new  # refused updates changed nothing


def test_pickles_and_other_formats_are_refused(saved, tmp_path):
    model, _ = saved
    pt = tmp_path / "model.pt"
    torch.save(model.state_dict(), pt)
    with pytest.raises(CheckpointError, match="pickles.*never unpickles"):
        load_checkpoint(pt)
    disguised = tmp_path / "model.safetensors"
    disguised.write_bytes(pt.read_bytes())
    with pytest.raises(CheckpointError, match="is a pickle"):
        load_checkpoint(disguised)
    with pytest.raises(CheckpointError, match="load_keras_weights"):
        load_checkpoint(tmp_path / "weights.h5")
    with pytest.raises(CheckpointError, match=r"single \.safetensors files"):
        save_checkpoint(model, tmp_path / "model.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "absent.safetensors")
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="without glaviz metadata"):
        load_checkpoint(plain)


def test_mismatched_weights_are_named(saved, tmp_path):
    _, path = saved
    tensors = load_file(path)
    header = {"glaviz": json.dumps(read_checkpoint_metadata(path))}
    tensors.pop("head.weight")
    tensors["extra.weight"] = torch.zeros(3)
    tensors["head.bias"] = torch.zeros(5)
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, bad, metadata=header)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(bad)
    message = str(info.value)
    assert "missing tensors (1): head.weight" in message
    assert "unexpected tensors (1): extra.weight" in message
    assert "head.bias: expected (2,), found (5,)" in message


def test_corrupted_weights_fail_the_checksum(saved, tmp_path):
    _, path = saved
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # flip bits inside the last tensor
    bad = tmp_path / "flipped.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum.*corrupted"):
        load_checkpoint(bad)


def test_scene_compatibility_accept_and_refuse(saved):
    model, path = saved
    scene = synthetic_scene(32, 32, groups=["optical", "dem"], seed=0)
    assert check_compatible(read_checkpoint_metadata(path), scene) == ["optical", "dem"]
    full = synthetic_scene(32, 32, seed=0)  # extra groups are ignored unless strict
    assert check_compatible(model, full) == ["optical", "dem"]
    with pytest.raises(IncompatibleSceneError, match=r"does not take \['co_pol_sar'"):
        check_compatible(model, full, strict=True)
    with pytest.raises(IncompatibleSceneError, match=r"missing input groups \['dem'\]") as info:
        load_checkpoint(path, scene=synthetic_scene(32, 32, groups=["optical"]))
    assert str(path) in str(info.value) and "open_scene" in str(info.value)
    four = scene.isel(optical_band=slice(0, 4))
    with pytest.raises(
        IncompatibleSceneError, match=r"expects 6 bands \[.*swir2'\], the scene has 4"
    ):
        check_compatible(model, four)
    with pytest.raises(IncompatibleSceneError, match=r"expects 6 bands .*the scene has 4"):
        load_checkpoint(path, scene=four)
    swapped = scene.isel(optical_band=[1, 0, 2, 3, 4, 5])
    meta = read_checkpoint_metadata(path)
    with pytest.raises(IncompatibleSceneError, match=r"expects bands \['blue', 'green'"):
        check_compatible(meta, swapped)
    assert meta["inputs"]["bands"]["dem"] == ["elevation", "slope"]
    loaded = load_checkpoint(path, scene=scene)
    assert check_compatible(loaded, scene) == ["optical", "dem"]


def test_unregistered_or_inconsistent_models_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="not a registered model"):
        save_checkpoint(torch.nn.Conv2d(1, 1, 1), tmp_path / "conv")
    model = build("resunet-small", input_channels={"dem": 2})
    model._config["bottleneck_width"] = 32  # config no longer describes the weights
    with pytest.raises(CheckpointError, match="does not rebuild this model.*shape mismatches"):
        save_checkpoint(model, tmp_path / "m")
    assert not list(tmp_path.iterdir())


# ---- one model identity (issue #14) -------------------------------------------------------


def test_model_sha256_is_the_checkpoint_identity_and_covers_buffers(tmp_path):
    from glaviz.models.checkpoint import model_sha256

    model = build("resunet-small", input_channels={"optical": 6, "dem": 2})
    path = save_checkpoint(model, tmp_path / "m")
    loaded = load_checkpoint(path)
    digest = read_checkpoint_metadata(path)["weights_sha256"]
    assert model_sha256(model) == model_sha256(loaded) == digest
    wrapped = torch.nn.DataParallel(loaded)  # wrappers are unwrapped
    assert model_sha256(wrapped) == digest
    bn = next(m for m in loaded.modules() if isinstance(m, torch.nn.BatchNorm2d))
    params = model_sha256(loaded, include_buffers=False)
    bn.running_var.mul_(1.01)  # BatchNorm statistics only
    assert model_sha256(loaded) != digest
    assert model_sha256(loaded, include_buffers=False) == params


def test_importing_the_models_does_not_load_the_raster_stack():
    """``import glaviz.models`` (e.g. on a training node) needs torch, not rasterio/geopandas."""
    import subprocess
    import sys

    code = (
        "import sys, glaviz.models; "
        "print(sorted(m for m in ('rasterio', 'rioxarray', 'geopandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("magic", [b"\x80", b"PK"])
def test_a_header_length_that_starts_like_a_pickle_is_still_safetensors(tmp_path, magic):
    """The first 8 bytes are the header's length: 0x..80 or 0x4B50 ("PK") bytes is a valid
    safetensors file (this refused a real checkpoint whose metadata had such a length)."""
    from glaviz.models.checkpoint import read_header

    path = tmp_path / "padded.safetensors"
    for pad in range(0, 20_000, 8):  # safetensors pads the header to a multiple of 8
        save_file({"w": torch.zeros(2)}, path, metadata={"pad": "x" * pad})
        if path.read_bytes()[: len(magic)] == magic:
            break
    else:
        pytest.fail(f"no padding gave a header length starting with {magic!r}")
    header, offset = read_header(path)
    assert header["__metadata__"]["pad"] == "x" * pad
    assert offset == 8 + struct.unpack("<Q", path.read_bytes()[:8])[0]
