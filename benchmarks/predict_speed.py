"""Scene-inference throughput, overhead and memory: glaviz.predict next to its model passes.

Each measurement runs in a fresh subprocess (so that peak RSS is the run's own) with
``--threads`` torch threads; the header prints the CPU's ISA, the thread count and the load.
``predict`` runs are timed with :class:`glaviz.inference.PredictStats`: the model's forward
passes against the whole call in the same run, so the overhead ratio is robust to a machine
that is slower or busier at one moment than at another.

* ``speed``: Mpx/s of ``glaviz.predict`` (384 windows, stride 192, Gaussian blending, its
  default batch: 2 on CPU, 8 on CUDA) and of a naive loop (one window at a time, no overlap,
  no blending) for the reference GlaViTU and a small configuration, on CPU (and CUDA when
  present), at ``--size``; and the reference GlaViTU writing COGs (its overhead).
* ``memory``: model time, total time, overhead, Mpx/s and peak RSS of ``glaviz.predict``
  writing COGs for a lazily generated synthetic scene of ``--small`` and of ``--large`` px
  with the small configuration: memory must be bounded by the block, not the scene (target
  <= 2.5 GB and within 20 % of the small scene's peak), and Mpx/s must not fall with size.
  The Sentinel-2 tile size, 10980, takes about 30 min on 2 cores (``--large 10980``).
* ``stride``: the small configuration in memory at ``--small`` with the default stride (half a
  window: also the in-memory overhead row) and with each of ``--strides`` (fractions of the
  window): Mpx/s, and how far the glacier mask agrees with the default stride's (IoU of the
  glacier class, pixel agreement) and the largest probability difference.

    python benchmarks/predict_speed.py                 # all three
    python benchmarks/predict_speed.py --only speed --size 1024
    python benchmarks/predict_speed.py --only memory --only stride --small 2048 --large 4096
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
    from glaviz.data.identity import register

    for name in ("optical", "dem", "valid"):  # hashed by how it is made, like a file's scene
        register(ds[name], {"generator": "predict_speed.lazy_scene", "variable": name,
                            "size": size, "chunk": chunk, "seed": seed})  # fmt: skip
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


def _agreement(a: xr.Dataset, b: xr.Dataset) -> dict:
    """How far prediction ``b`` agrees with ``a``: glacier IoU, pixel agreement, probability."""
    ma, mb = a["glacier_mask"].values, b["glacier_mask"].values
    valid = (ma != 255) & (mb != 255)
    ga, gb = (ma == 1) & valid, (mb == 1) & valid
    union = int((ga | gb).sum())
    pa, pb = a["glacier_probability"].values, b["glacier_probability"].values
    diff = np.abs(pa - pb)
    # an untrained model calls nearly everything glacier: also compare the masks at the
    # default run's median probability, a threshold that splits the scene in halves
    cut = float(np.nanmedian(pa[valid]))
    ha, hb = (pa > cut) & valid, (pb > cut) & valid
    return {
        "iou_median": round(float((ha & hb).sum() / max(int((ha | hb).sum()), 1)), 5),
        "iou": round(float((ga & gb).sum() / union), 5) if union else 1.0,
        "agreement": round(float((ma == mb)[valid].mean()), 5),
        "max_prob_diff": round(float(np.nanmax(diff)), 4),
        "glacier_fraction": round(float(ga.sum() / max(int(valid.sum()), 1)), 3),
    }


def _reference_iou(pred: xr.Dataset, reference, scene: xr.Dataset) -> float:
    """Glacier IoU of a prediction against the sample's RGI outlines (valid pixels)."""
    from glaviz.metrics import confusion

    valid = np.asarray(scene["valid"].values, bool)
    mask = pred["glacier_mask"].values == 1
    return round(float(confusion(mask, np.asarray(reference), valid).iou), 4)


def _timed(model, scene, **kwargs) -> tuple[xr.Dataset, dict]:
    from glaviz.inference import PredictStats, predict

    stats = PredictStats()
    out = predict(model, scene, progress=False, stats=stats, **kwargs)
    size = scene.sizes["y"] * scene.sizes["x"]
    row = {"seconds": round(stats.total, 2), "model_s": round(stats.model, 2),
           "overhead_pct": round(100 * stats.overhead, 1),
           "mpx_per_s": round(size / 1e6 / stats.total, 3),
           "parts_pct_of_model": {p: round(100 * v / stats.model, 1)
                                  for p, v in stats.parts().items() if p != "model"},
           "windows": stats.windows}  # fmt: skip
    return out, row


def worker(task: dict) -> dict:
    import torch

    from glaviz.inference import predict

    torch.set_num_threads(task["threads"])
    device = task["device"]
    window = 384
    if task.get("checkpoint"):  # a trained model on the real Everest sample
        from glaviz.data import scale
        from glaviz.data.samples import sample_scene
        from glaviz.models.checkpoint import load_checkpoint

        raw, reference, _ = sample_scene("everest_landsat7")
        scene = scale(raw)
        model = load_checkpoint(task["checkpoint"]).eval().to(device)
        window = int(model.config["tile_size"])
    else:
        scene = lazy_scene(task["size"])
        model = _model(task["model"]).to(device)
    crop = scene.isel(y=slice(0, window), x=slice(0, window))
    if task["mode"] == "naive":
        _naive(model, crop, device)  # warm-up
        start = time.perf_counter()
        _naive(model, scene, device)
        seconds = time.perf_counter() - start
        result = {**task, "seconds": round(seconds, 2),
                  "mpx_per_s": round(task["size"] ** 2 / 1e6 / seconds, 3)}  # fmt: skip
    else:
        with tempfile.TemporaryDirectory() as tmp:  # warm-up, with the same kind of output
            predict(model, crop, device=device, progress=False,
                    output=tmp + "/warm" if task.get("write") else None)  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            out = tmp + "/pred" if task.get("write") else None
            base, row = _timed(model, scene, device=device, output=out,
                               precision=task.get("precision"))  # fmt: skip
            result = {**task, **row}
            strides = []
            result["stride"] = window // 2
            if task.get("checkpoint"):
                result["reference_iou"] = _reference_iou(base, reference, scene)
            for fraction in task.get("strides", []):
                stride = int(round(window * fraction))
                other, row = _timed(model, scene, device=device, stride=stride)
                strides.append({"stride": stride, **row, **_agreement(base, other)})
                if task.get("checkpoint"):
                    strides[-1]["reference_iou"] = _reference_iou(other, reference, scene)
                del other
            if strides:
                result["strides"] = strides
            del base
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # GiB (ru_maxrss in KiB)
    result["peak_rss_gib"] = round(peak, 3)
    if device.startswith("cuda"):
        result["cuda_max_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 1024**3, 3)
    return result


def run(task: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(task)],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only",
        choices=["speed", "memory", "stride"],
        action="append",
        help="run only these measurements (repeatable)",
    )
    parser.add_argument("--size", type=int, default=1152, help="scene side for speed")
    parser.add_argument(
        "--small", type=int, default=2048, help="small scene side for memory and stride"
    )
    parser.add_argument(
        "--large",
        type=int,
        default=6144,
        help="large scene side for memory (10980: a Sentinel-2 tile)",
    )
    parser.add_argument(
        "--strides",
        default="0.75",
        help="strides to compare with half a window, as window fractions",
    )
    parser.add_argument(
        "--checkpoint",
        help="stride study with this trained checkpoint on the Everest sample (whose RGI "
        "outlines also score each stride) instead of an untrained model on a synthetic scene",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads per run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    import torch

    torch.set_num_threads(args.threads)
    from glaviz.models.runtime import cpu_summary

    only = set(args.only or ["speed", "memory", "stride"])
    print(f"# CPU: {cpu_summary()}; load average {_loadavg()} (before)", flush=True)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    common = {"threads": args.threads}
    rows = []
    if "speed" in only:
        for device in devices:
            for model in ("reference", "small"):
                for mode in ("predict", "naive"):
                    rows.append(run({**common, "mode": mode, "model": model, "device": device,
                                     "size": args.size}))  # fmt: skip
                    print(json.dumps(rows[-1]), flush=True)
            rows.append(run({**common, "mode": "predict", "model": "reference", "device": device,
                             "size": args.size, "precision": "bf16"}))  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
            rows.append(run({**common, "mode": "predict", "model": "reference", "device": device,
                             "size": args.size, "write": True}))  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    if "stride" in only:
        fractions = [float(f) for f in args.strides.split(",") if f.strip()]
        task = {**common, "mode": "predict", "model": "small", "device": devices[-1],
                "size": args.small, "strides": fractions}  # fmt: skip
        if args.checkpoint:
            task.update(model="trained", size=655, checkpoint=args.checkpoint)
        rows.append(run(task))
        print(json.dumps(rows[-1]), flush=True)
    if "memory" in only:
        for size in (args.small, args.large):
            rows.append(run({**common, "mode": "predict", "model": "small", "device": devices[-1],
                             "size": size, "write": True}))  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n# CPU: {cpu_summary()}; load average {_loadavg()} (after)")
    print(
        f"{'mode':8} {'model':10} {'device':6} {'prec':5} {'output':6} {'size':>6} "  # fmt: skip
        f"{'model s':>8} {'total s':>8} {'overhead':>8} {'Mpx/s':>7} {'peak GiB':>8}"
    )
    for r in rows:
        prec = r.get("precision") or "32"
        output = "COG" if r.get("write") else "memory" if r["mode"] == "predict" else "-"
        model_s = f"{r['model_s']:8.2f}" if "model_s" in r else f"{'-':>8}"
        over = f"{r['overhead_pct']:7.1f}%" if "overhead_pct" in r else f"{'-':>8}"
        print(f"{r['mode']:8} {r['model']:10} {r['device']:6} {prec:5} {output:6} "
              f"{r['size']:6d} {model_s} {r['seconds']:8.2f} {over} {r['mpx_per_s']:7.3f} "
              f"{r['peak_rss_gib']:8.3f}")  # fmt: skip
    for r in rows:
        if "parts_pct_of_model" in r:
            parts = ", ".join(f"{k} {v}" for k, v in r["parts_pct_of_model"].items())
            output = "COG" if r.get("write") else "memory"
            print(f"  {r['model']} {output} {r['size']}: % of model time: {parts}")
    studies = [r for r in rows if r.get("strides")]
    if studies:
        print(f"\n{'stride':>6} {'size':>6} {'windows':>7} {'total s':>8} {'Mpx/s':>7} "
              f"{'speed-up':>8} {'mask IoU':>8} {'agree':>8} {'IoU@med':>8} "
              f"{'max dp':>7} {'ref IoU':>7}")  # fmt: skip
    for r in studies:
        ref = f"{r['reference_iou']:7.4f}" if "reference_iou" in r else f"{'-':>7}"
        print(f"{r['stride']:6d} {r['size']:6d} {r['windows']:7d} {r['seconds']:8.2f} "
              f"{r['mpx_per_s']:7.3f} {1:8.2f} {1:8.4f} {1:8.4f} {1:8.4f} {0:7.4f} "
              f"{ref}")  # fmt: skip
        for s in r["strides"]:
            print(f"{s['stride']:6d} {r['size']:6d} {s['windows']:7d} {s['seconds']:8.2f} "
                  f"{s['mpx_per_s']:7.3f} {r['seconds'] / s['seconds']:8.2f} {s['iou']:8.4f} "
                  f"{s['agreement']:8.4f} {s['iou_median']:8.4f} "
                  f"{s['max_prob_diff']:7.4f} "
                  f"{s.get('reference_iou', float('nan')):7.4f}")  # fmt: skip
        fraction = r["strides"][0]["glacier_fraction"]
        print(f"(glacier fraction with the default stride: {fraction})")


if __name__ == "__main__":
    main()
