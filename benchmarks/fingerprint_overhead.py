"""What recognising a run costs: the fingerprint ``glaviz.predict`` takes before a file output.

For the Everest sample (files) and a 2048 x 2048 synthetic scene (in memory, and written to
GeoTIFFs), prints the time of the fingerprint (model state + scene data identity) with cold
caches (every source file hashed) and warm ones (the digests cached by path, size, mtime and
inode, in memory and on disk), next to the time of the prediction itself (small GlaViTU).

    python benchmarks/fingerprint_overhead.py
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import rasterio
import torch

import glaviz
from glaviz.data import identity
from glaviz.inference.predict_scene import _fingerprint
from glaviz.models.checkpoint import model_sha256


def _timed(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _fp(model, scene, groups):
    return _fingerprint(
        model, scene, groups, scaling=None, location=None, precision="32",
        device=torch.device("cpu"), window=384, stride=192, tta=False, median=False, block=2048,
    )  # fmt: skip


def _cold(model, scene, groups):
    identity._MEMORY.clear()
    identity._cache_file().unlink(missing_ok=True)
    return _timed(lambda: _fp(model, scene, groups), repeat=1)[0]


def _write_scene(scene, folder: Path) -> dict[str, Path]:
    files = {}
    t = scene.rio.transform()
    for g in ("dem",):
        data = scene[g].values[:1]  # elevation; slope is derived again
        path = folder / f"{g}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1],
                           count=data.shape[0], dtype="float32", crs=scene.rio.crs, transform=t,
                           tiled=True, compress="deflate") as dst:  # fmt: skip
            dst.write(data)
        files[g] = path
    return files


def main() -> None:
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    cache = tempfile.mkdtemp()
    os.environ["GLAVIZ_CACHE"] = cache
    torch.manual_seed(0)
    small = glaviz.models.GlaViTU.small(input_channels={"optical": 4})
    ref = glaviz.models.GlaViTU(input_channels={"optical": 6, "dem": 2})
    print(f"model_sha256: small {_timed(lambda: model_sha256(small))[0] * 1e3:.1f} ms, "
          f"reference GlaViTU {_timed(lambda: model_sha256(ref))[0] * 1e3:.1f} ms")  # fmt: skip

    files = glaviz.fetch("everest_landsat7")
    rgb, nir = files["LE71400412000304SGS00_RGB.tif"], files["LE71400412000304SGS00_B4.tif"]
    ev = glaviz.open_scene([rgb, nir], sensor="landsat7_display8")
    cold = _cold(small, ev, ["optical"])
    warm, _ = _timed(lambda: _fp(small, ev, ["optical"]))
    identity._MEMORY.clear()
    disk, _ = _timed(lambda: _fp(small, ev, ["optical"]), repeat=1)
    out = Path(tempfile.mkdtemp()) / "everest.tif"
    run, _ = _timed(lambda: glaviz.predict(small, ev, output=out, overwrite=True,
                                           progress=False), repeat=1)  # fmt: skip
    print(f"Everest (655 x 800, 2 files): fingerprint cold {cold * 1e3:.1f} ms, warm (memory) "
          f"{warm * 1e3:.1f} ms, warm (disk cache) {disk * 1e3:.1f} ms; predict to COGs "
          f"{run:.1f} s")  # fmt: skip

    model = glaviz.models.GlaViTU.small(input_channels={"optical": 6, "dem": 2})
    syn = glaviz.data.synthetic_scene(2048, 2048, seed=0, groups=["optical", "dem"])
    mem, _ = _timed(lambda: _fp(model, syn, ["optical", "dem"]))
    folder = Path(tempfile.mkdtemp())
    paths = _write_scene(syn, folder)
    size = sum(p.stat().st_size for p in paths.values()) / 2**20
    lazy = glaviz.open_scene(dem=paths["dem"])
    dem_model = glaviz.models.GlaViTU.small(input_channels={"dem": 2})
    cold_f = _cold(dem_model, lazy, ["dem"])
    warm_f, _ = _timed(lambda: _fp(dem_model, lazy, ["dem"]))
    sliced = lazy.isel(x=slice(0, 2047))  # not what open_scene made: hashed by its values
    vals, _ = _timed(lambda: _fp(dem_model, sliced, ["dem"]), repeat=1)
    out = folder / "syn.tif"
    run, _ = _timed(lambda: glaviz.predict(model, syn, output=out, overwrite=True,
                                           progress=False), repeat=1)  # fmt: skip
    print(f"synthetic 2048 x 2048, in memory (optical 6 + dem 2 bands, 134 MB): fingerprint "
          f"{mem:.2f} s; predict to COGs {run:.1f} s")  # fmt: skip
    print(f"synthetic 2048 x 2048 DEM from a GeoTIFF ({size:.0f} MB on disk, 2 bands): "
          f"fingerprint cold {cold_f * 1e3:.0f} ms, warm {warm_f * 1e3:.1f} ms; a sliced "
          f"(unregistered) lazy scene, hashed by value: {vals:.2f} s")  # fmt: skip
    print(f"compute: {glaviz.models.runtime.describe_precision(torch.device('cpu'), '32')}")


if __name__ == "__main__":
    main()
