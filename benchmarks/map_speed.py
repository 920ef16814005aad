"""How fast a comparison map shows a Sentinel-2-sized scene, and how big saved maps are.

Measures, in one run:

* ``big``: a 10980 x 10980 scene (4 optical bands, uint8 COGs, opened lazily by
  ``open_scene``) and its prediction (COGs as ``glaviz.predict(..., output=...)`` writes them):
  seconds for ``compare_map`` to build the live map (read every f-th pixel, resample, colour,
  encode), the images' size, then seconds to render the full-resolution detail of a zoomed-in
  view (what the live map does on zoom);
* ``html``: size of the saved offline HTML for the Everest sample with every layer (prediction
  from a shifted reference), and for the big scene.

Run: ``python benchmarks/map_speed.py [--size 10980] [--only big|html] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.transform import from_origin

from glaviz.models.runtime import cpu_summary


def _write(path: Path, data: np.ndarray, transform, nodata=None) -> Path:
    data = data if data.ndim == 3 else data[None]
    profile = {
        "driver": "COG",
        "height": data.shape[1],
        "width": data.shape[2],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "crs": "EPSG:32645",
        "transform": transform,
        "compress": "DEFLATE",
        "blocksize": 512,
    }
    if nodata is not None:
        profile["nodata"] = nodata
    tmp = path.with_suffix(".gtiff.tif")
    gtiff = {**profile, "driver": "GTiff", "tiled": True, "blockxsize": 512, "blockysize": 512}
    gtiff.pop("blocksize")
    with rasterio.open(tmp, "w", **gtiff) as dst:
        for i in range(0, data.shape[1], 2048):
            win = rasterio.windows.Window(0, i, data.shape[2], min(2048, data.shape[1] - i))
            dst.write(data[:, i : i + 2048], window=win)
    rasterio.shutil.copy(tmp, path, driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=512)
    tmp.unlink()
    return path


def make_big(folder: Path, size: int):
    """Scene and prediction files of ``size`` x ``size`` pixels at 10 m."""
    import xarray as xr

    import glaviz

    transform = from_origin(400000.0, 3200000.0, 10.0, 10.0)
    t0 = time.perf_counter()
    yy = np.linspace(0, 40, size, dtype=np.float32)[:, None]
    xx = np.linspace(0, 40, size, dtype=np.float32)[None, :]
    field = np.sin(yy) * np.cos(xx * 0.7) + 0.3 * np.sin(3 * xx + yy)  # glacier-like blobs
    prob = (1 / (1 + np.exp(-4 * field))).astype(np.float32)
    rgb = np.stack([np.clip(80 + 160 * prob + 10 * k, 0, 255) for k in range(3)]).astype(np.uint8)
    _write(folder / "scene_RGB.tif", rgb, transform)
    del rgb
    _write(folder / "scene_B4.tif", np.clip(60 + 180 * prob, 0, 255).astype(np.uint8), transform)
    _write(folder / "pred_glacier_probability.tif", prob, transform, nodata=float("nan"))
    _write(folder / "pred_glacier_mask.tif", (prob > 0.5).astype(np.uint8), transform, nodata=255)
    conf = (1 - 2 * np.minimum(prob, 1 - prob)).astype(np.float32)
    _write(folder / "pred_confidence.tif", conf, transform, nodata=float("nan"))
    del prob, conf, field
    made = time.perf_counter() - t0
    scene = glaviz.open_scene(
        [folder / "scene_RGB.tif", folder / "scene_B4.tif"], sensor="landsat7_display8"
    )
    arrays = {
        k: xr.open_dataarray(folder / f"pred_{k}.tif", engine="rasterio", chunks=2048)
        .squeeze("band", drop=True)
        .drop_vars("spatial_ref")
        for k in ("glacier_probability", "glacier_mask", "confidence")
    }
    pred = xr.Dataset(arrays).assign(valid=scene["valid"])
    pred = pred.rio.write_crs(scene.rio.crs).rio.write_transform(scene.rio.transform())
    return scene, pred, made


def bench_big(size: int, keep: Path | None) -> dict:
    from glaviz.viz.html import save_html
    from glaviz.viz.maps import compare_map

    folder = keep or Path(tempfile.mkdtemp(prefix="glaviz-map-speed-"))
    folder.mkdir(parents=True, exist_ok=True)
    scene, pred, made = make_big(folder, size)
    t0 = time.perf_counter()
    m = compare_map(scene, pred)
    build = time.perf_counter() - t0
    image_mb = sum(len(layer.url) for layer in m.image_layers.values()) / 1e6
    # zoom into the centre: what the live map renders on zoom
    lat, lon = m.center
    d = 0.01
    m.zoom = m.display.grid.native_zoom + 3
    t0 = time.perf_counter()
    m.set_trait("bounds", ((lat - d, lon - d), (lat + d, lon + d)))
    detail = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = save_html(m, folder / "big.html", overwrite=True)
    saved = time.perf_counter() - t0
    return {
        "scene_px": f"{size}x{size}",
        "files_s": round(made, 1),
        "compare_map_s": round(build, 2),
        "factor": m.display.factor,
        "display_grid": f"{m.display.grid.width}x{m.display.grid.height}",
        "images_mb": round(image_mb, 2),
        "detail_s": round(detail, 2),
        "detail_window_px": "x".join(
            str(b - a) for a, b in zip(m.detail.window[::2], m.detail.window[1::2], strict=True)
        ),
        "save_html_s": round(saved, 2),
        "html_mb": round(out.stat().st_size / 1e6, 2),
    }


def bench_html() -> dict:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "viz"))
    from scenes import fake_prediction

    import glaviz
    from glaviz.viz.html import save_html
    from glaviz.viz.maps import compare_map

    scene, mask, outlines = glaviz.sample_scene("everest_landsat7")
    pred = fake_prediction(scene, mask)
    t0 = time.perf_counter()
    m = compare_map(scene, pred, outlines)
    build = time.perf_counter() - t0
    path = Path(tempfile.mkdtemp()) / "everest.html"
    save_html(m, path)
    return {
        "everest_compare_map_s": round(build, 2),
        "everest_layers": len(m.image_layers),
        "everest_html_mb": round(path.stat().st_size / 1e6, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=10980)
    parser.add_argument("--only", choices=["big", "html"])
    parser.add_argument("--keep", type=Path, help="keep the generated files in this folder")
    args = parser.parse_args()
    print(f"# CPU: {cpu_summary()}")
    result: dict = {}
    if args.only in (None, "html"):
        result.update(bench_html())
        print(f"Everest, all layers: compare_map {result['everest_compare_map_s']} s, "
              f"HTML {result['everest_html_mb']} MB (budget 12 MB)")  # fmt: skip
    if args.only in (None, "big"):
        big = bench_big(args.size, args.keep)
        result.update(big)
        print(f"{big['scene_px']} scene + prediction (COGs, lazy): compare_map "
              f"{big['compare_map_s']} s (every {big['factor']}th pixel, display "
              f"{big['display_grid']}, images {big['images_mb']} MB); zoomed-in detail "
              f"{big['detail_s']} s for {big['detail_window_px']} px; saved HTML "
              f"{big['html_mb']} MB")  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
