"""calibrate(): fitted on validation scenes, stored in the checkpoint, applied by predict."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glaviz.calibration import binary_confidence, expected_calibration_error
from glaviz.data import scale, synthetic_scene
from glaviz.data.tiles import SceneTile
from glaviz.inference import calibrate, predict
from glaviz.models.checkpoint import load_checkpoint, read_checkpoint_metadata, save_checkpoint
from glaviz.models.glavitu import GlaViTU
from glaviz.train import Augmentation, fit

GROUPS = ["optical", "dem"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small model trained briefly on one synthetic scene: over-confident where it errs."""
    ds = synthetic_scene(96, 96, seed=0, groups=GROUPS)
    torch.manual_seed(0)
    model = GlaViTU.small(input_channels={"optical": 6, "dem": 2}, tile_size=32)
    tile = SceneTile(scale(ds), ds["reference_mask"])
    fit(model, [tile], epochs=3, steps_per_epoch=15, batch_size=4, lr=1e-3, bn_momentum=0.1,
        augment=Augmentation.none(), progress=False)  # fmt: skip
    path = save_checkpoint(model, tmp_path_factory.mktemp("ckpt") / "m.safetensors")
    return path


def test_calibration_reduces_ece_and_is_stored(trained):
    model = load_checkpoint(trained)
    validation = [synthetic_scene(80, 80, seed=s, groups=GROUPS) for s in (1, 2)]
    held_out = synthetic_scene(80, 80, seed=3, groups=GROUPS)
    raw = predict(model, held_out, progress=False)
    cal = calibrate(model, validation, checkpoint=trained, progress=False)
    assert cal.info["ece_after"] < cal.info["ece_before"]
    stored = read_checkpoint_metadata(trained)["calibration"]
    np.testing.assert_allclose(stored["accuracy"], cal.accuracy)
    # predict applies it: a fresh load of the checkpoint gives calibrated confidence
    after = predict(load_checkpoint(trained), held_out, progress=False)
    assert after.attrs["calibrated"] == 1 and raw.attrs["calibrated"] == 0
    np.testing.assert_allclose(
        after["confidence"].values, cal(raw["confidence"].values), atol=1e-6, equal_nan=True
    )
    np.testing.assert_allclose(
        raw["confidence"].values, binary_confidence(raw["glacier_probability"].values),
        atol=1e-6, equal_nan=True,
    )  # fmt: skip
    ref = held_out["reference_mask"].values
    keep = raw["glacier_mask"].values != 255
    correct = raw["glacier_mask"].values[keep] == ref[keep]
    before = expected_calibration_error(raw["confidence"].values[keep], correct)
    later = expected_calibration_error(after["confidence"].values[keep], correct)
    assert later < before  # on a scene the map was not fitted on


def test_outline_reference_and_errors(trained):
    import geopandas as gpd
    import shapely

    model = load_checkpoint(trained)
    scene = synthetic_scene(48, 48, seed=4, groups=GROUPS)
    box = gpd.GeoSeries([shapely.box(*scene.rio.bounds())], crs=scene.rio.crs)
    cal = calibrate(model, [(scene, gpd.GeoDataFrame(geometry=box))], progress=False)
    assert cal(1.0) == 1.0 and cal(0.0) == 0.0
    with pytest.raises(ValueError, match="no 'reference_mask'"):
        calibrate(model, scene.drop_vars("reference_mask"), progress=False)
