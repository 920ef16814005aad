"""predict_many on a 2-worker LocalCluster: outputs per scene, one failure reported."""

from __future__ import annotations

import numpy as np
import rioxarray

from glaviz.data import synthetic_scene
from glaviz.inference import predict, predict_many
from glaviz.models.checkpoint import save_checkpoint
from glaviz.models.registry import build


def test_two_workers_failure_isolated(tmp_path):
    model = build("glavitu-small", input_channels={"optical": 6, "dem": 2}, tile_size=32)
    checkpoint = save_checkpoint(model, tmp_path / "m.safetensors")
    scenes = {
        "a": synthetic_scene(48, 40, seed=1, groups=["optical", "dem"]),
        "b": synthetic_scene(40, 56, seed=2, groups=["optical", "dem"]),
        "broken": {"optical": str(tmp_path / "missing.tif"), "sensor": "sentinel2_l1c"},
    }
    table = predict_many(scenes, checkpoint, output_dir=tmp_path / "out", n_workers=2,
                         progress=False)  # fmt: skip
    assert list(table["scene"]) == ["a", "b", "broken"]
    assert list(table["status"]) == ["ok", "ok", "failed"]
    assert "missing.tif' does not exist" in table.loc[2, "error"]
    direct = predict(model, scenes["a"], progress=False)
    written = rioxarray.open_rasterio(tmp_path / "out" / "a_glacier_probability.tif").squeeze()
    np.testing.assert_allclose(written.values, direct["glacier_probability"].values, atol=1e-5)
    assert (tmp_path / "out" / "b_glacier_mask.tif").exists()
    assert table.loc[0, "pixels"] == 48 * 40 and table.loc[1, "device"] == "cpu"
