"""Tests of glaviz.inference.predict: blending against a reference, blocks, outputs, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from glaviz.data import scale, synthetic_scene
from glaviz.data.scene import band_dim
from glaviz.inference import gaussian_weights, predict, window_starts
from glaviz.models.glavitu import GlaViTU

GROUPS = {"optical": 6, "dem": 2}


class PixelModel(nn.Module):
    """A per-pixel (1x1) model: its probability at a pixel does not depend on the window."""

    def __init__(self) -> None:
        super().__init__()
        self.config = {"input_channels": dict(GROUPS), "tile_size": 32}
        self.input_channels = dict(GROUPS)
        self.head = nn.Conv2d(8, 2, 1)
        torch.manual_seed(0)
        nn.init.normal_(self.head.weight, std=3.0)

    def forward(self, inputs):
        return self.head(torch.cat([inputs["optical"], inputs["dem"]], 1))


@pytest.fixture(scope="module")
def scene():
    return scale(synthetic_scene(height=90, width=110, seed=0, groups=list(GROUPS)))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GlaViTU.small(input_channels=GROUPS, tile_size=32).eval()


def reference_blend(model, scene, window, stride):
    """The paper's procedure written plainly over the whole scene, one window at a time."""
    h, w = scene.sizes["y"], scene.sizes["x"]
    arrays = {g: scene[g].transpose(band_dim(g), "y", "x").values for g in GROUPS}
    acc, wsum = np.zeros((h, w)), np.zeros((h, w))
    u = np.linspace(-1, 1, window)
    weight = np.exp(-(u[:, None] ** 2 + u[None, :] ** 2) / 2)
    for y in window_starts(h, window, stride):
        for x in window_starts(w, window, stride):
            inp = {}
            for g, a in arrays.items():
                pad = np.zeros((a.shape[0], window, window), np.float32)
                part = a[:, y : y + window, x : x + window]
                pad[:, : part.shape[1], : part.shape[2]] = part
                inp[g] = torch.from_numpy(pad[None])
            with torch.no_grad():
                p = torch.softmax(model(inp), 1)[0, 1].numpy()
            hh, ww = min(window, h - y), min(window, w - x)
            acc[y : y + hh, x : x + ww] += p[:hh, :ww] * weight[:hh, :ww]
            wsum[y : y + hh, x : x + ww] += weight[:hh, :ww]
    return acc / wsum


def test_windows_and_weights():
    assert window_starts(384, 384, 192) == [0]
    assert window_starts(385, 384, 192) == [0, 1]
    assert window_starts(10980, 384, 192)[-1] == 10980 - 384
    w = gaussian_weights(384)
    assert w.shape == (384, 384) and np.array_equal(w, w[::-1]) and np.array_equal(w, w.T)
    assert w[191, 191] == w[192, 192] == pytest.approx(np.exp(-((1 / 383) ** 2)), rel=1e-6)
    assert w[0, 0] == pytest.approx(np.exp(-1.0), rel=1e-6)


def test_matches_plain_reference_implementation(model, scene):
    pred = predict(model, scene, progress=False)
    expected = reference_blend(model, scene, 32, 16)
    valid = scene["valid"].values
    got = pred["glacier_probability"].values
    np.testing.assert_allclose(got[valid], expected[valid], atol=1e-5)
    mask = pred["glacier_mask"].values
    assert set(np.unique(mask[valid])) <= {0, 1} and (mask[~valid] == 255).all()
    assert np.isnan(pred["glacier_probability"].values[~valid]).all()
    np.testing.assert_array_equal(mask[valid], (expected[valid] > 0.5).astype(np.uint8))


def test_pixel_model_is_unchanged_by_blending(scene):
    m = PixelModel()
    pred = predict(m, scene, window=32, stride=16, progress=False)
    x = torch.from_numpy(np.concatenate([scene["optical"].values, scene["dem"].values])[None])
    with torch.no_grad():
        direct = torch.softmax(m.head(x), 1)[0, 1].numpy()
    valid = scene["valid"].values
    np.testing.assert_allclose(pred["glacier_probability"].values[valid], direct[valid], atol=1e-6)
    tta = predict(m, scene, window=32, stride=16, tta=True, progress=False)
    np.testing.assert_allclose(tta["glacier_probability"].values[valid], direct[valid], atol=1e-6)


def test_scene_smaller_than_one_window(model):
    tiny = scale(synthetic_scene(height=20, width=25, seed=5, groups=list(GROUPS)))
    pred = predict(model, tiny, progress=False)
    np.testing.assert_allclose(
        np.nan_to_num(pred["glacier_probability"].values),
        np.nan_to_num(np.where(tiny["valid"], reference_blend(model, tiny, 32, 16), np.nan)),
        atol=1e-5,
    )


def test_tta_equals_mean_of_dihedral_views(model):
    one = scale(synthetic_scene(height=32, width=32, seed=6, groups=list(GROUPS), nodata_holes=0))
    pred = predict(model, one, tta=True, progress=False)["glacier_probability"].values
    x = {g: torch.from_numpy(one[g].values[None]) for g in GROUPS}
    views = []
    with torch.no_grad():
        for k in range(4):
            for flip in (False, True):
                t = {g: torch.rot90(torch.flip(v, (-1,)) if flip else v, k, (-2, -1))
                     for g, v in x.items()}  # fmt: skip
                p = torch.rot90(torch.softmax(model(t), 1)[0, 1], -k, (-2, -1))
                views.append((torch.flip(p, (-1,)) if flip else p).numpy())
    np.testing.assert_allclose(pred, np.mean(views, 0), atol=1e-5)


def test_block_size_and_outputs_agree(model, scene, tmp_path):
    whole = predict(model, scene, progress=False)
    blocks = predict(model, scene, block_size=40, progress=False)
    tif = predict(model, scene, block_size=48, output=tmp_path / "p.tif", progress=False)
    zarr = predict(model, scene, block_size=48, output=tmp_path / "p.zarr", progress=False)
    for other in (blocks, tif, zarr):
        np.testing.assert_allclose(
            other["glacier_probability"].values, whole["glacier_probability"].values, atol=1e-5
        )
        assert other.rio.crs == scene.rio.crs
        assert other.rio.transform().almost_equals(scene.rio.transform())
    import rasterio

    with rasterio.open(tmp_path / "p_glacier_mask.tif") as src:
        assert src.crs == scene.rio.crs and src.dtypes[0] == "uint8" and src.nodata == 255
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.compression == rasterio.enums.Compression.deflate  # readable everywhere
    assert not list(tmp_path.glob(".*partial*")) and not list(tmp_path.glob("*.progress.json"))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        predict(model, scene, output=tmp_path / "p.tif", progress=False)


@pytest.mark.parametrize("limit_gib, partial", [(2.0, None), (0.0, "zstd")])
def test_partials_compression_and_the_conversion_uses_torch_threads(
    model, scene, tmp_path, monkeypatch, limit_gib, partial
):
    """The partial GeoTIFFs are uncompressed (fastest to write and to read back) unless they
    would be large, then ZSTD level 1; the COG conversion compresses with as many threads as
    torch uses, and the result is the same."""
    import rasterio
    import rasterio.shutil

    from glaviz.inference import sinks

    seen: list[tuple[str | None, str | None]] = []
    copy = rasterio.shutil.copy

    def spy(src, dst, **options):
        with rasterio.open(src) as partial:
            seen.append((partial.compression and partial.compression.name, options["NUM_THREADS"]))
        return copy(src, dst, **options)

    monkeypatch.setattr(sinks.rasterio.shutil, "copy", spy)
    monkeypatch.setattr(sinks.torch, "get_num_threads", lambda: 3)
    monkeypatch.setattr(sinks, "PARTIAL_UNCOMPRESSED_MAX_GIB", limit_gib)
    out = predict(model, scene, output=tmp_path / "p.tif", progress=False)
    assert seen == [(partial, "3")] * 3
    whole = predict(model, scene, progress=False)
    np.testing.assert_array_equal(out["glacier_probability"].values,
                                  whole["glacier_probability"].values)  # fmt: skip


def test_cog_overviews_average_probabilities_and_sample_the_mask(tmp_path):
    """Zoomed-out views of the COGs: probabilities and confidences are the mean of the valid
    pixels they cover (within [0, 1], NaN only where all are nodata: GDAL's default, cubic,
    overshoots and spreads NaN), the mask is a sample of the mask's pixels (a class)."""
    import rasterio
    import xarray as xr

    from glaviz.inference.sinks import GeoTiffSink

    n = 1100  # over the 512-pixel COG block: overviews at 1/2 and 1/4
    template = xr.Dataset(coords={"y": 1e6 - 30.0 * np.arange(n), "x": 5e5 + 30.0 * np.arange(n)})
    template = template.rio.write_crs("EPSG:32645")
    rng = np.random.default_rng(0)
    prob = np.where(np.arange(n) % 200 < 100, 0.0, 1.0) * np.ones((n, 1))  # sharp edges
    prob = np.clip(prob + rng.uniform(0, 0.02, (n, n)), 0, 1).astype("float32")
    holes = rng.random((n, n)) < 0.05  # scattered nodata
    prob[holes] = np.nan
    mask = np.where(holes, 255, rng.random((n, n)) < 0.5).astype("uint8")
    sink = GeoTiffSink(tmp_path / "o.tif", template, {}, overwrite=False, resume=False)
    sink.write("b", (0, n, 0, n), {"glacier_probability": prob, "glacier_mask": mask,
                                   "confidence": prob})  # fmt: skip
    sink.finalize()
    expected = np.nanmean(prob.reshape(n // 2, 2, n // 2, 2), axis=(1, 3))
    for name in ("glacier_probability", "confidence"):
        with rasterio.open(tmp_path / f"o_{name}.tif", overview_level=0) as src:
            assert src.shape == (n // 2, n // 2)
            half = src.read(1)
        np.testing.assert_allclose(half, expected, atol=1e-6)  # NaN where expected is NaN
    with rasterio.open(tmp_path / "o_glacier_mask.tif", overview_level=0) as src:
        half_mask = src.read(1)
    samples = [mask[a::2, b::2] for a in (0, 1) for b in (0, 1)]
    assert any(np.array_equal(half_mask, s) for s in samples)


def test_outputs_filled_in_row_chunks_equal_the_whole_strip(model, scene, monkeypatch):
    import glaviz.inference.predict_scene as predict_scene

    whole = predict(model, scene, median_filter=True, progress=False)
    monkeypatch.setattr(predict_scene, "_FINISH_ROWS", 7)  # several chunks per strip
    chunked = predict(model, scene, median_filter=True, progress=False)
    for name in ("glacier_probability", "glacier_mask", "confidence"):
        np.testing.assert_array_equal(chunked[name].values, whole[name].values)
    assert (whole["glacier_mask"].values == 255).any()  # nodata went through the chunks too


def test_median_filter_matches_scipy_on_the_whole_mask(model, scene):
    raw = predict(model, scene, progress=False)
    filt = predict(model, scene, median_filter=True, block_size=40, progress=False)
    valid = scene["valid"].values
    expected = ndimage.median_filter((raw["glacier_probability"].values > 0.5).astype(np.uint8),
                                     size=3, mode="nearest")  # fmt: skip
    np.testing.assert_array_equal(filt["glacier_mask"].values[valid], expected[valid])


def test_unscaled_scene_is_scaled_first(model):
    raw = synthetic_scene(height=40, width=40, seed=2, groups=list(GROUPS))
    a = predict(model, raw, progress=False)["glacier_probability"].values
    b = predict(model, scale(raw), progress=False)["glacier_probability"].values
    np.testing.assert_allclose(a, b, atol=1e-6, equal_nan=True)


def test_location_inputs():
    torch.manual_seed(0)
    region = GlaViTU.small(input_channels=GROUPS, tile_size=32, location_encoding="region").eval()
    scene = scale(synthetic_scene(height=40, width=40, seed=1, groups=list(GROUPS)))
    alp = predict(region, scene, location="ALP", progress=False)["glacier_probability"].values
    vec = np.zeros(12, np.float32)
    vec[0] = 1
    same = predict(region, scene, location=vec, progress=False)["glacier_probability"].values
    unknown = predict(region, scene, progress=False)["glacier_probability"].values
    np.testing.assert_allclose(alp, same, atol=1e-6)
    assert not np.allclose(alp, unknown, equal_nan=True)
    coords = GlaViTU.small(input_channels=GROUPS, tile_size=32, location_encoding="coordinates")
    out = predict(coords, scene, progress=False)
    assert np.isfinite(out["glacier_probability"].values[scene["valid"].values]).all()
    with pytest.raises(ValueError, match="takes no location input"):
        predict(GlaViTU.small(input_channels=GROUPS, tile_size=32), scene, location="ALP")


def test_incompatible_scene(model):
    optical_only = synthetic_scene(height=40, width=40, groups=["optical"])
    with pytest.raises(ValueError, match=r"missing input groups \['dem'\]"):
        predict(model, optical_only, progress=False)


def test_killed_run_resumes_without_recomputing_strips(model, scene, tmp_path, monkeypatch):
    from glaviz.inference.sinks import GeoTiffSink
    from glaviz.inference.windows import WindowRunner

    windows = []
    run = WindowRunner.__call__
    monkeypatch.setattr(
        WindowRunner, "__call__", lambda self, b, c: windows.extend(c) or run(self, b, c)
    )
    write = GeoTiffSink._write
    calls = []

    def killed_on_third_strip(self, rect, values):
        calls.append(rect)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        return write(self, rect, values)

    monkeypatch.setattr(GeoTiffSink, "_write", killed_on_third_strip)
    with pytest.raises(KeyboardInterrupt):
        predict(model, scene, block_size=32, output=tmp_path / "r.tif", progress=False)
    progress = json.loads((tmp_path / "r.progress.json").read_text())
    assert progress["done"] == ["0", "32"] and not (tmp_path / "r_glacier_mask.tif").exists()
    monkeypatch.setattr(GeoTiffSink, "_write", write)
    windows.clear()
    resumed = predict(model, scene, block_size=32, output=tmp_path / "r.tif", progress=False)
    # 90 rows: window rows start at 0, 16, 32, 48, 58; rows from 64 on need only 48 and 58
    n_cols = len(window_starts(110, 32, 16))
    assert len(windows) == 2 * n_cols
    whole = predict(model, scene, progress=False)
    np.testing.assert_allclose(
        resumed["glacier_probability"].values, whole["glacier_probability"].values, atol=1e-5
    )


def test_each_window_runs_once(model, scene, monkeypatch):
    from glaviz.inference.windows import WindowRunner

    seen = []
    run = WindowRunner.__call__
    monkeypatch.setattr(
        WindowRunner, "__call__", lambda self, b, c: seen.extend(c) or run(self, b, c)
    )
    predict(model, scene, block_size=20, progress=False)
    assert sorted(seen) == sorted(
        (y, x) for y in window_starts(90, 32, 16) for x in window_starts(110, 32, 16)
    )


def test_bfloat16_autocast_on_cpu_agrees(model, scene):
    full = predict(model, scene, progress=False)
    half = predict(model, scene, precision="bf16", progress=False)
    assert half.attrs["precision"] == "bf16"
    valid = scene["valid"].values
    same = full["glacier_mask"].values[valid] == half["glacier_mask"].values[valid]
    assert same.mean() > 0.97
    diff = np.abs(full["glacier_probability"].values - half["glacier_probability"].values)
    assert np.nanmax(diff) < 0.1


# ---- a resumed run is always the same run (issue #14) -------------------------------------


class BNPixelModel(PixelModel):
    """The per-pixel model with a BatchNorm: its running statistics are part of the model."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(8)

    def forward(self, inputs):
        return self.head(self.bn(torch.cat([inputs["optical"], inputs["dem"]], 1)))


def _kill_on_strip(monkeypatch, n):
    """Make the n-th strip written by a GeoTiffSink raise KeyboardInterrupt (a kill)."""
    from glaviz.inference.sinks import GeoTiffSink

    write, calls = GeoTiffSink._write, []

    def killed(self, rect, values):
        calls.append(rect)
        if len(calls) == n:
            raise KeyboardInterrupt("killed")
        return write(self, rect, values)

    monkeypatch.setattr(GeoTiffSink, "_write", killed)
    return lambda: monkeypatch.setattr(GeoTiffSink, "_write", write)


def _killed_run(monkeypatch, model, scene, out, **kw):
    restore = _kill_on_strip(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        predict(model, scene, block_size=32, output=out, progress=False, **kw)
    restore()
    assert json.loads(out.with_name("r.progress.json").read_text())["done"] == ["0"]


@pytest.mark.parametrize(
    ("change", "what"),
    [
        ("scene", r"the scene's data \(variables \['dem', 'optical', 'valid'\]\)"),
        ("batchnorm", r"the model's state \(its weights or BatchNorm statistics\)"),
        ("calibration", "the calibration map"),
        ("precision", r"the precision \(32 -> bf16\)"),
        ("window", r"the settings \(stride 16 -> 8, window 32 -> 16\)"),
    ],
)
def test_a_different_run_is_never_spliced_onto_a_killed_one(tmp_path, monkeypatch, change, what):
    from glaviz.errors import ResumeMismatchError

    torch.manual_seed(0)
    model = BNPixelModel().eval()
    scene = scale(synthetic_scene(height=90, width=110, seed=0, groups=list(GROUPS)))
    out = tmp_path / "r.tif"
    _killed_run(monkeypatch, model, scene, out)
    other_model, other_scene, kw = model, scene, {}
    if change == "scene":  # another acquisition of the same tile: same grid, other pixels
        other_scene = scale(synthetic_scene(height=90, width=110, seed=1, groups=list(GROUPS)))
    elif change == "batchnorm":  # same weights, other BatchNorm statistics
        other_model = BNPixelModel().eval()
        other_model.load_state_dict({**model.state_dict(), "bn.running_mean":
                                     model.bn.running_mean + 0.5})  # fmt: skip
    elif change == "calibration":
        other_model = BNPixelModel().eval()
        other_model.load_state_dict(model.state_dict())
        other_model.checkpoint_metadata = {
            "inputs": {"channels": dict(GROUPS), "bands": {}},
            "calibration": {"confidence": [0.0, 0.5, 1.0], "accuracy": [0.0, 0.8, 1.0]},
        }
    elif change == "precision":
        kw = {"precision": "bf16"}
    elif change == "window":
        kw = {"window": 16}
    with pytest.raises(ResumeMismatchError, match=rf"r\.tif'?: an unfinished prediction of "
                       rf"another run .*differs in {what}.*overwrite=True"):  # fmt: skip
        predict(other_model, other_scene, block_size=32, output=out, progress=False, **kw)
    fresh = predict(other_model, other_scene, block_size=32, output=out, overwrite=True,
                    progress=False, **kw)  # fmt: skip
    whole = predict(other_model, other_scene, block_size=32, progress=False, **kw)
    np.testing.assert_array_equal(fresh["glacier_mask"].values, whole["glacier_mask"].values)


def test_the_same_run_resumes_from_files_reopened(tmp_path, monkeypatch):
    """A scene opened again from the same files is the same data: the run resumes."""
    from rasters import write_raster

    from glaviz.data import open_scene

    src = synthetic_scene(height=90, width=110, seed=0, groups=["dem"])
    elevation = src["dem"].sel(dem_band="elevation").values
    path = write_raster(tmp_path / "dem.tif", elevation, origin=(478000.0, 3108140.0))
    torch.manual_seed(0)
    model = GlaViTU.small(input_channels={"dem": 2}, tile_size=32).eval()
    out = tmp_path / "o" / "r.tif"
    _killed_run(monkeypatch, model, open_scene(dem=path), out)
    calls = []
    from glaviz.inference.sinks import GeoTiffSink

    write = GeoTiffSink._write
    monkeypatch.setattr(GeoTiffSink, "_write", lambda s, r, v: calls.append(r) or write(s, r, v))
    predict(model, open_scene(dem=path), block_size=32, output=out, progress=False)
    assert [r[0] for r in calls] == [32, 64]  # resumed: strip 0 was not written again
    # another acquisition written to the same path is another scene
    other = synthetic_scene(height=90, width=110, seed=3, groups=["dem"])
    out2 = tmp_path / "o2" / "r.tif"
    _killed_run(monkeypatch, model, open_scene(dem=path), out2)
    write_raster(path, other["dem"].sel(dem_band="elevation").values)
    from glaviz.errors import ResumeMismatchError

    with pytest.raises(ResumeMismatchError, match="the scene's data"):
        predict(model, open_scene(dem=path), block_size=32, output=out2, progress=False)


def test_stale_temporaries_of_the_output_are_removed(model, scene, tmp_path):
    orphan = tmp_path / ".r_glacier_mask.tif.k3j4h5g6.tif"  # a kill during the COG write
    orphan.write_bytes(b"half a COG")
    keep = [tmp_path / ".other.tif.k3j4h5g6.tif", tmp_path / ".r_glacier_mask.tif.notmine"]
    for p in keep:
        p.write_bytes(b"not ours")
    predict(PixelModel(), scene, output=tmp_path / "r.tif", progress=False)
    assert not orphan.exists() and all(p.exists() for p in keep)
    assert (tmp_path / "r_glacier_mask.tif").exists()


def test_a_read_only_output_folder_is_named(scene, tmp_path, monkeypatch):
    import errno
    import tempfile

    from glaviz.errors import OutputNotWritableError

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", "/x/.r.progress.json.x.probe")

    monkeypatch.setattr(tempfile, "mkstemp", denied)  # root can write anywhere: simulate it
    with pytest.raises(OutputNotWritableError, match=r"cannot write '.*r\.tif': the folder "
                       r"'.*' is not writable .*another output folder") as info:  # fmt: skip
        predict(PixelModel(), scene, output=tmp_path / "r.tif", progress=False)
    assert ".probe" not in str(info.value) and isinstance(info.value, PermissionError)


def test_bf16_on_a_cpu_without_native_bf16_runs_float32(scene, monkeypatch):
    from glaviz.errors import PerformanceWarning
    from glaviz.models import runtime

    monkeypatch.setattr(runtime, "cpu_bf16_native", lambda: False)
    monkeypatch.delenv(runtime.FORCE_BF16_VAR, raising=False)
    with pytest.warns(PerformanceWarning, match="without native bf16"):
        pred = predict(PixelModel(), scene, precision="bf16", progress=False)
    assert pred.attrs["precision"] == "32" and "no native bf16" in pred.attrs["compute"]


def test_a_file_truncated_after_opening_is_named_when_read(tmp_path):
    import rasterio.shutil
    from rasters import write_raster

    from glaviz.data import open_scene
    from glaviz.errors import CorruptFileError

    z = np.random.default_rng(0).uniform(3000, 4000, (256, 256)).astype(np.float32)
    plain = write_raster(tmp_path / "plain.tif", z)
    path = tmp_path / "dem.tif"
    rasterio.shutil.copy(plain, path, driver="GTiff", TILED="YES", COMPRESS="DEFLATE")
    scene = open_scene(dem=path, check_valid=False)  # (checking would cache every block)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    model = GlaViTU.small(input_channels={"dem": 2}, tile_size=32).eval()
    with pytest.raises(CorruptFileError, match=r"dem\.tif' is truncated or corrupt.*gdalinfo"):
        predict(model, scene, progress=False)


def test_predict_leaves_the_model_as_it_found_it():
    """Mode, device and memory format are restored (the model may be trained further)."""
    import torch

    from glaviz.data import synthetic_scene
    from glaviz.inference import predict
    from glaviz.models import GlaViTU

    scene = synthetic_scene(height=40, width=40, seed=0, groups=["optical", "dem"])
    model = GlaViTU.small(tile_size=32).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    predict(model, scene, progress=False)
    assert model.training
    kernels = [p for p in model.parameters() if p.dim() == 4]
    assert kernels and all(p.is_contiguous() for p in kernels)
    assert all(p.device.type == "cpu" for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    model.to(memory_format=torch.channels_last).eval()
    predict(model, scene, progress=False)
    assert not model.training
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in kernels)
