"""Scene-inference throughput and memory: glaviz.predict next to a naive window loop.

Three measurements, each in a fresh subprocess so that peak RSS is the run's own:

* ``speed``: Mpx/s of ``glaviz.predict`` (384 windows, stride 192, Gaussian blending, its
  default batch: 2 on CPU, 8 on CUDA) and of a naive loop (one window at a time, no overlap,
  no blending) for the reference GlaViTU and a small configuration, on CPU (and CUDA when
  present).
* ``memory``: peak RSS of ``glaviz.predict`` writing COGs for a lazily generated synthetic
  scene of 2048 x 2048 and of 10980 x 10980 px (a Sentinel-2 tile) with the small configuration:
  memory must be bounded by the block, not the scene (target <= 2.5 GB and within 20 % of the
  2048 peak).

    python benchmarks/predict_speed.py                 # both
    python benchmarks/predict_speed.py --only speed --size 1024
    python benchmarks/predict_speed.py --only memory --large 10980
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

import dask.array as da
import numpy as np
import xarray as xr


def lazy_scene(size: int, *, chunk: int = 1024, seed: int = 0) -> xr.Dataset:
    """A scaled optical + dem scene of ``size`` x ``size`` px generated chunk by chunk (dask)."""
    from rasterio.transform import from_origin

    def field(channels: int, salt: int) -> da.Array:
        def block(block_info=None):
            loc = block_info[None]["array-location"]
            shape = block_info[None]["chunk-shape"]
            rng = np.random.default_rng([seed, salt, loc[1][0], loc[2][0]])
            yy = np.linspace(0, 3, shape[1])[:, None]
            xx = np.linspace(0, 3, shape[2])[None, :]
            base = 0.5 + 0.3 * np.sin(yy + rng.uniform(0, 6)) * np.cos(xx + rng.uniform(0, 6))
            noise = rng.normal(0, 0.02, shape).astype(np.float32)
            return (base[None] + noise).astype(np.float32)

        sides = (chunk,) * (size // chunk) + ((size % chunk,) if size % chunk else ())
        return da.map_blocks(block, dtype=np.float32, chunks=((channels,), sides, sides))

    coords = {
        "y": 3108140.0 - 10 * (np.arange(size) + 0.5),
        "x": 478000.0 + 10 * (np.arange(size) + 0.5),
    }
    ds = xr.Dataset({
        "optical": (("optical_band", "y", "x"), field(6, 1)),
        "dem": (("dem_band", "y", "x"), field(2, 2)),
    }, coords={**coords, "optical_band": ["blue", "green", "red", "nir", "swir1", "swir2"],
               "dem_band": ["elevation", "slope"]})  # fmt: skip
    ds["valid"] = xr.DataArray(da.ones((size, size), bool, chunks=chunk), coords=coords,
                               dims=("y", "x"))  # fmt: skip
    ds = ds.rio.write_crs("EPSG:32645").rio.write_transform(from_origin(478000, 3108140, 10, 10))
    ds.attrs["scaled"] = 1
    return ds


def _model(kind: str):
    import torch

    from glaviz.models.glavitu import GlaViTU

    torch.manual_seed(0)
    if kind == "reference":
        return GlaViTU().eval()
    return GlaViTU.small(tile_size=384).eval()


def _naive(model, scene, device) -> None:
    import torch

    size = scene.sizes["y"]
    with torch.inference_mode():
        for y in range(0, size, 384):
            for x in range(0, size, 384):
                inputs = {}
                for g in ("optical", "dem"):
                    a = np.zeros((1, scene[g].shape[0], 384, 384), np.float32)
                    part = scene[g][:, y : y + 384, x : x + 384].values
                    a[0, :, : part.shape[1], : part.shape[2]] = part
                    inputs[g] = torch.from_numpy(a).to(device)
                model(inputs).argmax(1).cpu()


def worker(task: dict) -> dict:
    import torch

    from glaviz.inference import predict

    device = task["device"]
    scene = lazy_scene(task["size"])
    model = _model(task["model"]).to(device)
    if task["mode"] == "naive":
        _naive(model, scene.isel(y=slice(0, 384), x=slice(0, 384)), device)  # warm-up
        start = time.perf_counter()
        _naive(model, scene, device)
    else:
        predict(model, scene.isel(y=slice(0, 384), x=slice(0, 384)), device=device, progress=False)
        start = time.perf_counter()
        out = tempfile.mkdtemp() + "/pred" if task.get("write") else None
        predict(model, scene, device=device, output=out, progress=False,
                precision=task.get("precision"))  # fmt: skip
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # GiB (ru_maxrss in KiB)
    result = {**task, "seconds": round(seconds, 2),
              "mpx_per_s": round(task["size"] ** 2 / 1e6 / seconds, 3),
              "peak_rss_gib": round(peak, 3)}  # fmt: skip
    if device.startswith("cuda"):
        result["cuda_max_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 1024**3, 3)
    return result


def run(task: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(task)],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=["speed", "memory"])
    parser.add_argument("--size", type=int, default=1152, help="scene side for speed")
    parser.add_argument("--large", type=int, default=10980, help="large scene side for memory")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    if args.only in (None, "speed"):
        for device in devices:
            for model in ("reference", "small"):
                for mode in ("predict", "naive"):
                    rows.append(run({"mode": mode, "model": model, "device": device,
                                     "size": args.size}))  # fmt: skip
                    print(json.dumps(rows[-1]), flush=True)
            rows.append(run({"mode": "predict", "model": "reference", "device": device,
                             "size": args.size, "precision": "bf16"}))  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    if args.only in (None, "memory"):
        for size in (2048, args.large):
            rows.append(run({"mode": "predict", "model": "small", "device": devices[-1],
                             "size": size, "write": True}))  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    print()
    print(f"{'mode':8} {'model':10} {'device':6} {'prec':5} {'size':>6} {'s':>8} {'Mpx/s':>7} "
          f"{'peak GiB':>8}")  # fmt: skip
    for r in rows:
        prec = r.get("precision") or "32"
        print(f"{r['mode']:8} {r['model']:10} {r['device']:6} {prec:5} {r['size']:6d} "
              f"{r['seconds']:8.2f} {r['mpx_per_s']:7.3f} {r['peak_rss_gib']:8.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
