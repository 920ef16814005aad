"""predict(stats=...): figures add up; chunked reads and channels-last batches change nothing."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import torch
import xarray as xr

from glaviz.data import scale, synthetic_scene
from glaviz.inference import PredictStats, predict, window_starts
from glaviz.inference.reading import SceneReader
from glaviz.inference.windows import WindowRunner
from glaviz.models.glavitu import GlaViTU

GROUPS = {"optical": 6, "dem": 2}


@pytest.fixture(scope="module")
def scene() -> xr.Dataset:
    return scale(synthetic_scene(height=90, width=110, seed=0, groups=list(GROUPS)))


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return GlaViTU.small(input_channels=GROUPS, tile_size=32).eval()


def test_stats_add_up_and_change_nothing(model, scene, tmp_path) -> None:
    plain = predict(model, scene, progress=False)
    stats = PredictStats(model=99.0)  # reset by predict
    timed = predict(model, scene, progress=False, stats=stats, output=tmp_path / "p.tif")
    for name in ("glacier_probability", "glacier_mask", "confidence"):
        np.testing.assert_array_equal(timed[name].values, plain[name].values)
    rows, cols = len(window_starts(90, 32, 16)), len(window_starts(110, 32, 16))
    assert stats.windows == rows * cols and stats.batches == rows * -(-cols // 2)  # batches of 2
    assert stats.pixels == 90 * 110
    assert 0 < stats.model < stats.total
    assert all(v >= 0 for v in stats.parts().values())
    assert stats.finalize > 0 and stats.write > 0  # a file output: COG conversion, writes
    assert abs(sum(stats.parts().values()) + stats.other - stats.total) < 1e-9
    assert 0 <= stats.other < 0.5 * stats.total  # the parts account for most of the run
    assert stats.overhead == pytest.approx((stats.total - stats.model) / stats.model)
    assert set(stats.as_dict()) >= {"model", "total", "overhead", "other", "read"}
    assert stats.summary().startswith("model ")


def test_tta_stats_count_eight_passes_per_batch(model, scene) -> None:
    stats = PredictStats()
    predict(model, scene, tta=True, batch_size=64, progress=False, stats=stats)
    rows = len(window_starts(90, 32, 16))
    assert stats.batches == 8 * rows  # one batch per window row (all its windows), 8 views


def _lazy(shape: tuple[int, int, int], chunks: tuple[int, int, int]) -> xr.DataArray:
    data = da.random.default_rng(0).random(shape, chunks=chunks).astype(np.float32) * 2
    return xr.DataArray(data, dims=("band", "y", "x"))


@pytest.mark.parametrize("cache_mb", [0, 64])
def test_scene_reader_equals_slicing(cache_mb) -> None:
    a = _lazy((3, 50, 70), (2, 16, 24))
    values = a.values
    reader = SceneReader({"g": a, "np": a.copy(data=values)}, cache_mb=cache_mb)
    for y0, y1, x0, x1 in [(0, 20, 0, 70), (10, 30, 5, 40), (16, 32, 24, 48), (40, 50, 60, 70)]:
        out = reader(y0, y1, x0, x1)
        for g in ("g", "np"):
            assert out[g].dtype == np.float32 and out[g].shape == (3, y1 - y0, x1 - x0)
            np.testing.assert_array_equal(out[g], values[:, y0:y1, x0:x1])
            assert out[g].transpose(1, 2, 0).flags.c_contiguous  # channels-last in memory


def test_each_lazy_chunk_is_computed_once(model) -> None:
    """predict's window rows overlap; every chunk of a lazy scene is still computed once."""
    base = scale(synthetic_scene(height=100, width=120, seed=3, groups=list(GROUPS)))
    lazy = base.chunk({"y": 40, "x": 50})
    computed: list[int] = []
    original = SceneReader.__call__

    def spy(self, *args):
        out = original(self, *args)
        computed[:] = [self.computed]
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SceneReader, "__call__", spy)
        got = predict(model, lazy, progress=False)
    chunks = 3 * 3 * len(GROUPS)  # 3 chunk rows x 3 chunk columns, per input group
    assert computed == [chunks]
    want = predict(model, base, progress=False)
    np.testing.assert_array_equal(
        got["glacier_probability"].values, want["glacier_probability"].values
    )


def test_channels_last_batches_are_not_copied_on_the_cpu(model) -> None:
    runner = WindowRunner(model, list(GROUPS), device=torch.device("cpu"))
    nhwc = np.random.default_rng(0).random((2, 32, 32, 6), dtype=np.float32)
    batch = nhwc.transpose(0, 3, 1, 2)
    tensor = runner._to_device(batch)
    assert tensor.data_ptr() == nhwc.ctypes.data
    assert tensor.is_contiguous(memory_format=torch.channels_last)
    strided = np.random.default_rng(1).random((2, 6, 32, 64), dtype=np.float32)[..., ::2]
    np.testing.assert_array_equal(runner._to_device(strided).numpy(), strided)


class PixelModel(torch.nn.Module):
    """Per-pixel (1x1): its probability at a pixel does not depend on the window."""

    def __init__(self) -> None:
        super().__init__()
        self.config = {"input_channels": dict(GROUPS), "tile_size": 32}
        self.input_channels = dict(GROUPS)
        self.head = torch.nn.Conv2d(8, 2, 1)
        torch.manual_seed(0)
        torch.nn.init.normal_(self.head.weight, std=3.0)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(torch.cat([inputs["optical"], inputs["dem"]], 1))


def test_three_quarter_stride_runs_fewer_windows_and_agrees_on_window_free_models(scene) -> None:
    """A wider stride only changes how window-dependent predictions are averaged."""
    half, quarters = PredictStats(), PredictStats()
    pixel = PixelModel()
    a = predict(pixel, scene, stride=16, progress=False, stats=half)
    b = predict(pixel, scene, stride=24, progress=False, stats=quarters)
    assert quarters.windows < half.windows
    np.testing.assert_allclose(
        b["glacier_probability"].values, a["glacier_probability"].values, atol=1e-6
    )
    assert (a["glacier_mask"].values == b["glacier_mask"].values).mean() > 0.999


def _reader(scene: xr.Dataset, calls: list, fail_at: int | None = None):
    def read(y0: int, y1: int, x0: int, x1: int) -> dict[str, np.ndarray]:
        calls.append((y0, y1, x0, x1))
        if fail_at is not None and len(calls) == fail_at:
            raise OSError(f"cannot read rows {y0}..{y1}")
        return {g: np.asarray(scene[g][:, y0:y1, x0:x1].values, np.float32) for g in GROUPS}

    return read


def test_prefetched_reads_run_in_order_and_change_nothing(model, scene) -> None:
    from glaviz.inference.windows import blend_rows

    runner = WindowRunner(model, list(GROUPS), device=torch.device("cpu"))
    kwargs = {"shape": (90, 110), "window": 32, "stride": 16, "batch_size": 2, "read_width": 40}
    outs, orders = [], []
    for prefetch in (False, True):
        calls: list = []
        strips = list(blend_rows(runner, _reader(scene, calls), prefetch=prefetch, **kwargs))
        outs.append(np.concatenate([p for _, _, p in strips]))
        orders.append(calls)
    np.testing.assert_array_equal(outs[1], outs[0])
    assert orders[1] == orders[0] and len(orders[0]) > len(window_starts(90, 32, 16))
    calls = []
    with pytest.raises(OSError, match="cannot read rows"):  # the reader's error, not a hang
        list(blend_rows(runner, _reader(scene, calls, fail_at=3), prefetch=True, **kwargs))
    assert len(calls) == 3  # nothing read after the failing rectangle
