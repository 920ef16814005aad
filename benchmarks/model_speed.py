"""GlaViTU speed benchmark: FLOPs, throughput, peak memory and float32/bfloat16 mask agreement.

Each measured variant runs in its own subprocess so that its peak memory (RSS, or CUDA max
allocated) and allocator settings do not leak into the next one. Runs unchanged on CPU and CUDA.

Examples
--------
Reference configuration on the CPU (eager float32 and bfloat16, channels-last on/off, default
and tuned glibc allocator)::

    python benchmarks/model_speed.py
    python benchmarks/model_speed.py --compile            # add torch.compile variants
    python benchmarks/model_speed.py --device cuda --batch 8 --compile
    python benchmarks/model_speed.py --small --repeats 3  # quick smoke run

Notes
-----
- ``malloc tuned``: :func:`glaviz.models.runtime.cpu_allocator_cache`, which
  :func:`glaviz.predict` enters on the CPU: glibc keeps freed feature maps in the heap (no
  ``munmap``), so they are not page-faulted in again on every forward pass. ``default`` is a
  plain ``model(x)`` loop without it. ``jemalloc``/``tcmalloc`` have the same effect.
- Inference-mode fusions are on (BatchNorm folding; convolution + LeakyReLU and 1x1
  convolution + residual each one oneDNN call); ``GLAVIZ_ONEDNN_FUSION=0`` switches the oneDNN
  fusions off for comparison.
- The mask agreement compares ``argmax`` of float32 and bfloat16-autocast logits on the same
  windows. Realistic weights are not available: it uses the Keras parity fixture's weights and
  inputs when found (``$GLAVIZ_SHARED`` or ``../shared``), and always also a randomly initialised
  model (randomised BatchNorm statistics) on smooth random fields.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from glaviz.models.blocks import UpConv  # noqa: E402
from glaviz.models.glavitu import GlaViTU  # noqa: E402
from glaviz.models.runtime import cpu_allocator_cache  # noqa: E402

FIXTURE = "A_global"


# --------------------------------------------------------------------------- helpers
def tune_malloc() -> bool:
    """Enter glaviz's CPU allocator cache for the rest of this worker. True if applied."""
    return _ALLOCATOR.enter_context(cpu_allocator_cache())


_ALLOCATOR = contextlib.ExitStack()


def fixture_dir() -> Path:
    env = os.environ.get("GLAVIZ_SHARED")
    root = Path(env) if env else ROOT.parent / "shared"
    return root / "fixtures" / "keras_glavitu"


def build_model(small: bool, weights: str) -> GlaViTU:
    """The reference (or small) GlaViTU; ``weights`` is ``random`` or ``fixture``."""
    if weights == "fixture":
        from glaviz.models.keras_import import load_keras_weights

        return load_keras_weights(fixture_dir() / f"{FIXTURE}_weights.h5")
    torch.manual_seed(0)
    model = GlaViTU.small() if small else GlaViTU()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # non-trivial BatchNorm statistics, as after training
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
    return model.eval()


def smooth_inputs(model: GlaViTU, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Smooth random fields in [0, 1]: bilinearly upsampled coarse noise plus fine texture."""
    g = torch.Generator().manual_seed(seed)
    size = model.tile_size
    out = {}
    for name, c in model.input_channels.items():
        coarse = torch.rand(batch, c, size // 32, size // 32, generator=g)
        field = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
        field = field + 0.02 * torch.randn(batch, c, size, size, generator=g)
        out[name] = field.clamp(0, 1)
    return out


def fixture_inputs(batch: int) -> dict[str, torch.Tensor]:
    """The fixture's input windows (``in_<group> / 255``), repeated up to ``batch``."""
    with np.load(fixture_dir() / f"{FIXTURE}_io.npz") as z:
        x = {
            k[3:]: torch.from_numpy(z[k]).permute(0, 3, 1, 2).float() / 255
            for k in z.files
            if k.startswith("in_") and k != "in_location"
        }
    reps = -(-batch // 2)
    return {k: v.repeat(reps, 1, 1, 1)[:batch] for k, v in x.items()}


def to_device(x: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in x.items()}


def autocast(device: torch.device, dtype: str) -> contextlib.AbstractContextManager:
    if dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=getattr(torch, dtype))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rss_mb() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:  # pragma: no cover
        return float("nan")


# --------------------------------------------------------------------------- workers
def count_flops(spec: dict[str, Any]) -> dict[str, float]:
    """GFLOPs (2 per multiply-add) of one window, as implemented and in the literal Keras form."""
    small = spec["small"]
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model(small, "random")
    x = smooth_inputs(model, 1)
    result = {}
    original = UpConv.forward

    def literal(self: UpConv, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        y = self.forward_reference(x)
        return y if skip is None else torch.cat([y, skip], 1)

    for name in ("implemented", "keras_literal"):
        UpConv.forward = original if name == "implemented" else literal  # type: ignore[method-assign]
        counter = FlopCounterMode(display=False)
        # math attention so that the attention matmuls are counted too; grad mode so that the
        # fused 1x1 convolutions run out of place (the counter does not see in-place addmm_)
        with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH), counter:
            model(x)
        result[name] = counter.get_total_flops() / 1e9
    UpConv.forward = original  # type: ignore[method-assign]
    return result


def run_speed(spec: dict[str, Any]) -> dict[str, Any]:
    """Time one variant; returns seconds per forward pass and memory figures."""
    if spec["malloc"]:
        spec["malloc_applied"] = tune_malloc()
    device = torch.device(spec["device"])
    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    model = build_model(spec["small"], "random").to(device)
    model.channels_last = spec["channels_last"]
    if spec["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    x = to_device(smooth_inputs(model, spec["batch"]), device)
    forward = model
    if spec["compile"]:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True  # fold weights/BN as inference constants
        forward = torch.compile(model)
    rss0 = rss_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with torch.inference_mode(), autocast(device, spec["dtype"]):
        t0 = time.perf_counter()
        for _ in range(spec["warmup"]):
            forward(x)
        sync(device)
        first = time.perf_counter() - t0
        times = []
        for _ in range(spec["repeats"]):
            t = time.perf_counter()
            forward(x)
            sync(device)
            times.append(time.perf_counter() - t)
    out = {
        "times": times,
        "warmup_s": first,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mb": rss0,
        "threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        out["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def run_agreement(spec: dict[str, Any]) -> dict[str, Any]:
    """Fraction of argmax mask pixels unchanged between float32 and low precision.

    Each source is measured as is and with the head bias re-centred so that the float32 mask is
    half glacier (the median logit margin becomes 0): random weights give near-constant masks,
    and the re-centred variant puts the decision boundary through the bulk of the pixels.
    """
    tune_malloc()
    device = torch.device(spec["device"])
    rows = {}
    sources = [("random weights, smooth fields", "random")]
    if not spec["small"] and (fixture_dir() / f"{FIXTURE}_weights.h5").is_file():
        sources.insert(0, ("Keras fixture weights + inputs", "fixture"))
    for label, weights in sources:
        model = build_model(spec["small"], weights).to(device)
        model = model.to(memory_format=torch.channels_last)
        if weights == "fixture":
            x = fixture_inputs(spec["windows"])
        else:
            x = smooth_inputs(model, spec["windows"], seed=1)
        x = to_device(x, device)
        for balanced in (False, True):
            with torch.inference_mode():
                ref = model(x).float()
                if balanced:
                    margin = (ref[:, 1] - ref[:, 0]).median()
                    model.head.bias[1] -= margin
                    ref = model(x).float()
                with autocast(device, spec["dtype"]):
                    low = model(x).float()
            p_ref, p_low = ref.softmax(1), low.softmax(1)
            rows[label + (", re-centred head bias" if balanced else "")] = {
                "windows": spec["windows"],
                "mask_unchanged": (ref.argmax(1) == low.argmax(1)).float().mean().item(),
                "max_abs_prob_diff": (p_ref - p_low).abs().max().item(),
                "mean_abs_logit": ref.abs().mean().item(),
                "glacier_fraction": ref.argmax(1).float().mean().item(),
            }
    return rows


WORKERS = {"flops": count_flops, "speed": run_speed, "agreement": run_agreement}


def worker_main(kind: str, spec_json: str) -> None:
    result = WORKERS[kind](json.loads(spec_json))
    print("RESULT " + json.dumps(result))


def in_subprocess(kind: str, spec: dict[str, Any], timeout: float) -> Any:
    cmd = [sys.executable, __file__, "--worker", kind, json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"worker {kind} {spec} failed:\n{proc.stdout}\n{proc.stderr[-3000:]}")


# --------------------------------------------------------------------------- main
def variants(args: argparse.Namespace) -> list[dict[str, Any]]:
    base = {
        "device": args.device,
        "small": args.small,
        "batch": args.batch,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "threads": args.threads,
        "compile": False,
    }
    out = []
    cpu = args.device == "cpu"
    mallocs = {"both": [False, True], "on": [True], "off": [False]}[args.malloc] if cpu else [False]
    for malloc in mallocs:
        out.append(dict(base, dtype="float32", channels_last=False, malloc=malloc))
        out.append(dict(base, dtype="float32", channels_last=True, malloc=malloc))
        out.append(dict(base, dtype="bfloat16", channels_last=True, malloc=malloc))
    if not cpu:
        out.append(dict(base, dtype="float16", channels_last=True, malloc=False))
    if args.compile:
        malloc = mallocs[-1]
        for dtype in ("float32", "bfloat16"):
            out.append(dict(base, dtype=dtype, channels_last=True, malloc=malloc, compile=True))
    if args.only:
        out = [v for v in out if all(word in label(v) for word in args.only.split())]
    return out


def label(spec: dict[str, Any]) -> str:
    """``dtype layout malloc compile`` words of a variant (for ``--only``)."""
    return " ".join(
        [
            spec["dtype"],
            "channels_last" if spec["channels_last"] else "contiguous",
            "tuned" if spec["malloc"] else "default",
            "compile" if spec["compile"] else "eager",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=1, help="windows per forward pass")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--malloc", choices=["both", "on", "off"], default="both")
    parser.add_argument("--compile", action="store_true", help="add torch.compile variants")
    parser.add_argument("--small", action="store_true", help="GlaViTU.small() (smoke test)")
    parser.add_argument(
        "--only",
        default="",
        help="run variants whose label has all these words, e.g. 'bfloat16 compile'",
    )
    parser.add_argument("--no-agreement", action="store_true", help="skip the mask agreement")
    parser.add_argument("--agreement-windows", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write all results here")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per variant")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(*args.worker)
        return

    tile = 64 if args.small else 384
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}")
    flops = in_subprocess("flops", {"small": args.small}, args.timeout)
    print(
        f"FLOPs per {tile} x {tile} window: {flops['implemented']:.1f} GFLOP as implemented "
        f"({flops['keras_literal']:.1f} GFLOP in the literal Keras form of the up-convolutions)"
    )
    results = []
    header = (
        f"{'dtype':9} {'layout':13} {'malloc':7} {'compile':7} | {'s/window':>8} {'(min)':>6} "
        f"{'windows/s':>9} {'Mpx/s':>7} {'GFLOP/s':>8} | "
        f"{'base MB':>8} {'peak MB':>8} {'warmup s':>8}"
    )
    print(header)
    print("-" * len(header))
    for spec in variants(args):
        res = in_subprocess("speed", spec, args.timeout)
        per_window = statistics.median(res["times"]) / spec["batch"]
        best = min(res["times"]) / spec["batch"]
        peak = res.get("cuda_max_allocated_mb", res["peak_rss_mb"])
        base = float("nan") if "cuda_max_allocated_mb" in res else res["rss_before_mb"]
        layout = "channels_last" if spec["channels_last"] else "contiguous"
        print(
            f"{spec['dtype']:9} {layout:13} {'tuned' if spec['malloc'] else 'default':7} "
            f"{'yes' if spec['compile'] else 'no':7} | {per_window:8.3f} {best:6.3f} "
            f"{1 / per_window:9.2f} "
            f"{tile * tile / per_window / 1e6:7.3f} {flops['implemented'] / per_window:8.0f} | "
            f"{base:8.0f} {peak:8.0f} {res['warmup_s']:8.1f}",
            flush=True,
        )
        results.append({"spec": spec, "result": res, "s_per_window": per_window})
    print(
        "s/window: median over --repeats timed passes (min in brackets); rates use the median. "
        "base MB: RSS with model and inputs loaded, before the first forward pass; peak MB: the "
        "worker's peak RSS (on CUDA: max memory allocated on the GPU)"
    )
    agreement = {}
    low = ["bfloat16"] + (["float16"] if args.device != "cpu" else [])
    for dtype in [] if args.no_agreement else low:
        spec = {
            "device": args.device,
            "small": args.small,
            "dtype": dtype,
            "windows": args.agreement_windows,
        }
        agreement[dtype] = in_subprocess("agreement", spec, args.timeout)
        for label, row in agreement[dtype].items():
            print(
                f"{dtype} vs float32, {label}: {100 * row['mask_unchanged']:.4f} % of mask pixels "
                f"unchanged over {row['windows']} windows (max |dprob| "
                f"{row['max_abs_prob_diff']:.3g}, mean |logit| {row['mean_abs_logit']:.2f}, "
                f"glacier fraction {row['glacier_fraction']:.3f})"
            )
    if args.json:
        args.json.write_text(
            json.dumps({"flops": flops, "speed": results, "agreement": agreement}, indent=1)
        )


if __name__ == "__main__":
    main()
