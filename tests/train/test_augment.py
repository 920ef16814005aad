"""Tests of glaviz.train.augment: consistency across groups and label, switching by name."""

from __future__ import annotations

import numpy as np
import pytest

from glaviz.data.tiles import Patch
from glaviz.train.augment import AUGMENTATIONS, Augmentation

SIZE = 32


def _coded_patch() -> Patch:
    """Inputs whose values encode their pixel position; the label is a function of them."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    code = (yy * SIZE + xx) / (SIZE * SIZE)
    label = ((yy + 2 * xx) % 3 == 0).astype(np.uint8)
    return Patch(
        inputs={"optical": np.stack([code, 1 - code]), "dem": code[None] * 2},
        label=label,
        valid=np.ones((SIZE, SIZE), bool),
    )


def _position(patch: Patch) -> tuple[np.ndarray, np.ndarray]:
    code = np.rint(patch.inputs["optical"][0] * SIZE * SIZE).astype(int)
    return code // SIZE, code % SIZE


@pytest.mark.parametrize("seed", range(12))
def test_geometric_moves_every_group_and_label_together(seed):
    aug = Augmentation.only("vflip", "hflip", "rot90", "crop_rescale")
    out = aug(_coded_patch(), np.random.default_rng(seed))
    yy, xx = _position(out)
    np.testing.assert_array_equal(out.label, ((yy + 2 * xx) % 3 == 0).astype(np.uint8))
    np.testing.assert_allclose(out.inputs["dem"][0], out.inputs["optical"][0] * 2, rtol=1e-6)
    np.testing.assert_allclose(out.inputs["optical"][1], 1 - out.inputs["optical"][0], atol=1e-6)
    assert out.label.shape == (SIZE, SIZE)


def test_crop_rescale_zooms_in():
    aug = Augmentation.only("crop_rescale").__class__(
        **{**Augmentation.none().to_dict(), "crop_rescale": 1.0, "crop_min_fraction": 0.5}
    )
    zoomed = [aug(_coded_patch(), np.random.default_rng(s)) for s in range(10)]
    spans = [np.ptp(_position(z)[1]) for z in zoomed]
    assert min(spans) < SIZE - 1  # fewer distinct source columns: a sub-square was stretched
    assert all(s >= SIZE * 0.5 - 2 for s in spans)


def test_none_is_identity_and_same_seed_same_result():
    p = _coded_patch()
    same = Augmentation.none()(p, np.random.default_rng(0))
    np.testing.assert_array_equal(same.inputs["optical"], p.inputs["optical"])
    a = Augmentation()(p, np.random.default_rng(5))
    b = Augmentation()(p, np.random.default_rng(5))
    np.testing.assert_array_equal(a.inputs["dem"], b.inputs["dem"])
    np.testing.assert_array_equal(a.label, b.label)
    assert Augmentation.none().label_smoothing == 0.0 and Augmentation().label_smoothing == 0.1


def test_photometric_changes_inputs_not_labels():
    p = _coded_patch()
    always = {**Augmentation.none().to_dict(), "gamma": 1.0, "noise": 1.0}
    out = Augmentation(**always)(p, np.random.default_rng(1))
    np.testing.assert_array_equal(out.label, p.label)
    assert not np.allclose(out.inputs["optical"], p.inputs["optical"])
    assert np.abs(out.inputs["optical"] - p.inputs["optical"]).max() < 0.5


def test_occlusion_zeroes_a_rectangle_in_all_channels_of_one_group():
    p = _coded_patch()
    p.inputs["optical"] += 1.0  # no natural zeros
    cfg = {**Augmentation.none().to_dict(), "occlusion": 1.0, "occlusion_max_fraction": 0.5}
    out = Augmentation(**cfg)(p, np.random.default_rng(3))
    zero = out.inputs["optical"] == 0
    assert zero.any() and (zero[0] == zero[1]).all()
    ys, xs = np.nonzero(zero[0])
    assert zero[0][ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].all()
    assert np.ptp(ys) < SIZE // 2 + 1 and np.ptp(xs) < SIZE // 2 + 1
    np.testing.assert_array_equal(out.label, p.label)


def test_noise_statistics():
    flat = Patch({"optical": np.full((6, 128, 128), 0.5, np.float32)},
                 np.zeros((128, 128), np.uint8), np.ones((128, 128), bool))  # fmt: skip
    cfg = {**Augmentation.none().to_dict(), "noise": 1.0}
    shifts, pixel_sd = [], []
    for s in range(40):
        out = Augmentation(**cfg)(flat, np.random.default_rng(s)).inputs["optical"] - 0.5
        shifts.extend(out.mean(axis=(1, 2)))
        pixel_sd.extend(out.std(axis=(1, 2)))
    assert np.std(shifts) == pytest.approx(0.025, rel=0.2)
    assert np.mean(pixel_sd) == pytest.approx(0.005, rel=0.1)


def test_switch_by_name():
    aug = Augmentation().without("occlusion", "label_smoothing")
    assert "occlusion" not in aug.enabled and "vflip" in aug.enabled
    assert set(Augmentation().enabled) == set(AUGMENTATIONS)
    with pytest.raises(ValueError, match="unknown augmentation"):
        Augmentation.only("mixup")
