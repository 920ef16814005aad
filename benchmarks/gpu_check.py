"""One CUDA check of glaviz: speed, memory and the CUDA code paths, as ONE JSON document.

On a CUDA machine it runs, each section in its own subprocess (so that peak memory figures are
the section's own and a crash, hang or CUDA error in one section is recorded while the others
still run), within a global time budget (default 460 s, so the whole run ends within 8 min):

``device``
    GPU name, memory, capability, torch/CUDA/cuDNN/NCCL versions, the dense bf16 peak of the
    device (a small table of known peaks, else null) and the FLOPs of one reference GlaViTU
    window (counted as ``benchmarks/model_speed.py`` does).
``forward_fp32``, ``forward_bf16``, ``forward_bf16_compile``
    Reference GlaViTU forward passes on 384 x 384 windows (batch 8, channels-last): seconds per
    window, windows/s, ``torch.cuda.max_memory_allocated``, achieved TFLOP/s and the fraction
    of the device's bf16 peak. The compiled variant runs last (it compiles for minutes).
``predict``
    ``glaviz.predict`` on a lazily generated synthetic 10980 x 10980 scene (a Sentinel-2 tile)
    writing COGs: seconds, windows/s, Mpx/s, peak host RSS (psutil, sampled, and ru_maxrss),
    device memory.
``fit``
    A short ``glaviz.fit`` with AMP (bf16 autocast) on synthetic tiles with the small GlaViTU
    (the loss must fall), then seconds per training step of the reference GlaViTU.
``ddp``
    One-process DistributedDataParallel over NCCL (world size 1 on a free port): one forward,
    one backward, finite gradients and an all-reduce.
``pytest``
    The suite's CUDA-marked tests (``pytest -m cuda``) in a subprocess; their summary line.

Each section's ``status`` is ``ok``, ``failed`` (a check did not hold), ``error`` (an exception,
with its message and traceback tail), ``timeout`` or ``skipped`` (not enough budget left). The
exit code is 0 when every section is ``ok``, 1 otherwise, and 2 without CUDA: then the script
stops at once with a message on stderr. Progress goes to stderr, the JSON document to stdout.

    python benchmarks/gpu_check.py > gpu_check.json
    python benchmarks/gpu_check.py --sections device forward_bf16 predict --budget 200
    python benchmarks/gpu_check.py --cpu-smoke    # develop this script without a GPU (no figures)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(ROOT), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

#: Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s, from the vendors' data sheets; the
#: first pattern that matches ``torch.cuda.get_device_name()`` wins.
BF16_PEAK_TFLOPS: tuple[tuple[str, float], ...] = (
    (r"\bGH200\b", 989.0),
    (r"\bH200\b.*\bNVL\b", 835.0),
    (r"\bH200\b", 989.0),
    (r"\bH100\b.*\bPCIe\b", 756.0),
    (r"\bH100\b.*\bNVL\b", 835.0),
    (r"\bH100\b", 989.0),
    (r"\bA100\b", 312.0),
    (r"\bL40S\b", 362.0),
    (r"\bL4\b", 121.0),
)

#: name: (seconds needed to start it at all, seconds at most), in the order they run.
SECTIONS: dict[str, tuple[float, float]] = {
    "device": (20, 90),
    "forward_fp32": (30, 90),
    "forward_bf16": (30, 75),
    "predict": (60, 240),
    "fit": (45, 150),
    "ddp": (20, 60),
    "pytest": (30, 180),
    "forward_bf16_compile": (60, 240),
}

NO_CUDA_EXIT = 2


def bf16_peak_tflops(name: str) -> float | None:
    """The dense bf16 peak of a GPU by its name, ``None`` when unknown.

    Examples
    --------
    >>> bf16_peak_tflops("NVIDIA H200"), bf16_peak_tflops("NVIDIA L4")
    (989.0, 121.0)
    >>> bf16_peak_tflops("NVIDIA L40S"), bf16_peak_tflops("Tesla T4") is None
    (362.0, True)
    """
    for pattern, peak in BF16_PEAK_TFLOPS:
        if re.search(pattern, name):
            return peak
    return None


def log(msg: str) -> None:
    print(f"[gpu_check {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ============================================================================ workers
# Each runs in a fresh interpreter (``--worker NAME SPEC``) and returns a JSON-ready dict;
# ``checks`` (name -> bool) decide between ``ok`` and ``failed``.


def _device(spec: dict[str, Any]):
    import torch

    return torch.device(spec["device"])


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _mem(device) -> dict[str, float]:
    import torch

    if device.type != "cuda":
        return {}
    return {
        "max_allocated_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 3),
        "max_reserved_gib": round(torch.cuda.max_memory_reserved(device) / 2**30, 3),
    }


def _reset_mem(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


class _RSSMonitor:
    """Peak resident memory of this process, sampled by psutil in a background thread."""

    def __init__(self, interval: float = 0.05) -> None:
        import psutil

        self._proc = psutil.Process()
        self.interval = interval
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> _RSSMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def w_device(spec: dict[str, Any]) -> dict[str, Any]:
    import torch
    from model_speed import count_flops

    device = _device(spec)
    out: dict[str, Any] = {
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "device_count": torch.cuda.device_count() if device.type == "cuda" else 0,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        out.update(
            name=props.name,
            capability=f"{props.major}.{props.minor}",
            total_memory_gib=round(props.total_memory / 2**30, 2),
            multiprocessors=props.multi_processor_count,
            bf16_supported=torch.cuda.is_bf16_supported(),
            nccl=".".join(str(v) for v in torch.cuda.nccl.version()),
        )
    else:
        out.update(name="cpu (smoke run)", bf16_supported=False)
    out["peak_bf16_tflops"] = bf16_peak_tflops(out["name"])
    flops = count_flops({"small": spec["small"]})
    out["gflop_per_window"] = round(flops["implemented"], 3)
    out["tile"] = 64 if spec["small"] else 384
    out["checks"] = {"flops_counted": flops["implemented"] > 0}
    return out


def w_forward(spec: dict[str, Any]) -> dict[str, Any]:
    import torch
    from model_speed import build_model, smooth_inputs

    from glaviz.models.runtime import autocast

    device = _device(spec)
    model = build_model(spec["small"], "random").to(device)
    model = model.to(memory_format=torch.channels_last)
    x = {
        k: v.to(device).contiguous(memory_format=torch.channels_last)
        for k, v in smooth_inputs(model, spec["batch"]).items()
    }
    forward: Callable[..., Any] = model
    if spec["compile"]:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True  # fold weights/BN as inference constants
        forward = torch.compile(model)
    precision = {"float32": "32", "bfloat16": "bf16"}[spec["dtype"]]
    _reset_mem(device)
    with torch.inference_mode(), autocast(device, precision):
        t0 = time.perf_counter()
        for _ in range(spec["warmup"]):
            y = forward(x)
        _sync(device)
        warmup_s = time.perf_counter() - t0
        times: list[float] = []
        started = time.perf_counter()
        while len(times) < spec["min_iters"] or (
            time.perf_counter() - started < spec["seconds"] and len(times) < spec["max_iters"]
        ):
            t = time.perf_counter()
            y = forward(x)
            _sync(device)
            times.append(time.perf_counter() - t)
        finite = bool(torch.isfinite(y.float()).all())
    per_batch = statistics.median(times)
    return {
        "dtype": spec["dtype"],
        "compile": spec["compile"],
        "batch": spec["batch"],
        "channels_last": True,
        "iterations": len(times),
        "warmup_s": round(warmup_s, 2),
        "s_per_batch": round(per_batch, 5),
        "s_per_window": round(per_batch / spec["batch"], 6),
        "s_per_window_best": round(min(times) / spec["batch"], 6),
        "windows_per_s": round(spec["batch"] / per_batch, 2),
        **_mem(device),
        "checks": {"finite_logits": finite},
    }


def w_predict(spec: dict[str, Any]) -> dict[str, Any]:
    import resource

    import numpy as np
    import torch
    from model_speed import build_model
    from predict_speed import lazy_scene

    from glaviz.inference import predict, window_starts

    device = _device(spec)
    size = spec["size"]
    model = build_model(spec["small"], "random")
    window = model.tile_size
    scene = lazy_scene(size, chunk=512)  # small chunks: less generated beyond each read
    from glaviz.inference import windows

    model_s = [0.0]
    original_call = windows.WindowRunner.__call__

    def timed_call(self, batch, corners):  # the model's share (its result is synchronised)
        t = time.perf_counter()
        try:
            return original_call(self, batch, corners)
        finally:
            model_s[0] += time.perf_counter() - t

    windows.WindowRunner.__call__ = timed_call  # type: ignore[method-assign]
    crop = scene.isel(y=slice(0, window), x=slice(0, window))
    predict(model, crop, device=device, progress=False)  # warm-up: CUDA context, kernels
    model_s[0] = 0.0
    _reset_mem(device)
    with tempfile.TemporaryDirectory() as tmp, _RSSMonitor() as rss:
        rss_before = rss.peak
        t0 = time.perf_counter()
        out = predict(
            model,
            scene,
            device=device,
            output=str(Path(tmp) / "pred") if spec["write"] else None,
            batch_size=spec["batch"],
            progress=False,
        )
        seconds = time.perf_counter() - t0
        step = max(1, size // 113)
        probe = out["glacier_probability"][::step, ::step].values
        shape = (int(out.sizes["y"]), int(out.sizes["x"]))
        precision = out.attrs.get("precision")
        del out
    n_windows = len(window_starts(size, window, window // 2)) ** 2
    return {
        "size": size,
        "window": window,
        "stride": window // 2,
        "windows": n_windows,
        "batch": spec["batch"] or "predict's default",
        "precision": precision,
        "output": "COG" if spec["write"] else "memory",
        "seconds": round(seconds, 2),
        "model_seconds": round(model_s[0], 2),
        "windows_per_s": round(n_windows / seconds, 2),
        "windows_per_model_s": round(n_windows / model_s[0], 2) if model_s[0] else None,
        "mpx_per_s": round(size * size / 1e6 / seconds, 3),
        "host_rss_before_gib": round(rss_before / 2**30, 3),
        "host_peak_rss_gib": round(rss.peak / 2**30, 3),
        "host_ru_maxrss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
        **_mem(device),
        "note": "the scene is generated lazily by dask on the host while predicting, as a "
        "read would be; model_seconds: time in the window runner (transfers and forward)",
        "checks": {
            "shape": shape == (size, size),
            "probabilities_in_0_1": bool(np.all((probe >= 0) & (probe <= 1))),
            "uses_device": device.type != "cuda" or torch.cuda.max_memory_allocated(device) > 0,
        },
    }


def w_fit(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    from glaviz.data import scale, synthetic_scene
    from glaviz.data.tiles import SceneTile
    from glaviz.models.glavitu import GlaViTU
    from glaviz.models.runtime import resolve_precision
    from glaviz.train import Augmentation, fit

    device = _device(spec)
    groups = {"optical": 6, "dem": 2}

    def tile(seed: int, size: int) -> SceneTile:
        ds = synthetic_scene(height=size, width=size, seed=seed, groups=list(groups))
        return SceneTile(scale(ds), ds["reference_mask"], name=f"synthetic{seed}")

    stamps: list[float] = []

    def timer(event: str, info: dict[str, Any]) -> None:
        if event == "batch_end":
            _sync(device)
            stamps.append(time.perf_counter())

    torch.manual_seed(0)
    model = GlaViTU.small(input_channels=groups, tile_size=spec["small_tile"])
    _reset_mem(device)
    t0 = time.perf_counter()
    history = fit(
        model,
        [tile(0, spec["scene"])],
        [tile(1, spec["scene"])],
        epochs=spec["epochs"],
        steps_per_epoch=spec["steps"],
        batch_size=spec["batch"],
        lr=1e-3,
        augment=Augmentation.only("vflip", "hflip"),
        bn_momentum=0.1,
        device=device,
        callbacks=[timer],
        progress=False,
    )
    seconds = time.perf_counter() - t0
    losses = [float(v) for v in history["train_loss"]]
    out: dict[str, Any] = {
        "model": "GlaViTU.small",
        "precision": resolve_precision(device),
        "epochs": spec["epochs"],
        "steps_per_epoch": spec["steps"],
        "batch": spec["batch"],
        "patch": spec["small_tile"],
        "seconds": round(seconds, 2),
        "train_loss": [round(v, 5) for v in losses],
        "val_iou": [round(float(v), 4) for v in history.get("val_iou", [])],
        **_mem(device),
    }
    checks = {
        "loss_falls": losses[-1] < 0.8 * losses[0],
        "finite_loss": all(v == v for v in losses),
    }
    if spec["reference_steps"]:
        ref = GlaViTU(input_channels=groups)
        stamps.clear()
        _reset_mem(device)
        fit(
            ref,
            [tile(2, spec["reference_scene"])],
            epochs=1,
            steps_per_epoch=spec["reference_steps"],
            batch_size=spec["reference_batch"],
            augment=Augmentation.none(),
            device=device,
            callbacks=[timer],
            progress=False,
        )
        steps = [b - a for a, b in zip(stamps[2:], stamps[3:])]  # two warm-up steps left out
        out["reference"] = {
            "model": "GlaViTU (reference)",
            "patch": 384,
            "batch": spec["reference_batch"],
            "steps_timed": len(steps),
            "s_per_step": round(statistics.median(steps), 4) if steps else None,
            "windows_per_s": round(spec["reference_batch"] / statistics.median(steps), 2)
            if steps
            else None,
            **_mem(device),
        }
        checks["reference_steps_timed"] = bool(steps)
    out["checks"] = checks
    return out


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def w_ddp(spec: dict[str, Any]) -> dict[str, Any]:
    import torch
    import torch.distributed as dist
    from model_speed import smooth_inputs
    from torch.nn.parallel import DistributedDataParallel

    from glaviz.models.glavitu import GlaViTU
    from glaviz.models.runtime import autocast, resolve_precision
    from glaviz.train.losses import FocalLoss, deep_supervision_loss

    device = _device(spec)
    backend = "nccl" if device.type == "cuda" else "gloo"
    port = _free_port()
    t0 = time.perf_counter()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    init_s = time.perf_counter() - t0
    try:
        torch.manual_seed(0)
        model = GlaViTU.small(input_channels={"optical": 6, "dem": 2}, tile_size=64).to(device)
        model = model.to(memory_format=torch.channels_last)
        ddp = DistributedDataParallel(
            model, device_ids=[device.index] if backend == "nccl" else None
        )
        x = {k: v.to(device) for k, v in smooth_inputs(model, 4).items()}
        target = (x["optical"][:, 3] > x["optical"][:, 2]).long()
        precision = resolve_precision(device)
        ddp.train()
        with autocast(device, precision):
            outputs = ddp(x)
        loss = deep_supervision_loss(FocalLoss(), outputs, target)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        with_grad = sum(g is not None for g in grads)
        finite = all(bool(torch.isfinite(g).all()) for g in grads if g is not None)
        t = torch.arange(4, dtype=torch.float32, device=device)
        dist.all_reduce(t)
        reduced = t.cpu().tolist()
        dist.barrier()
    finally:
        dist.destroy_process_group()
    return {
        "backend": backend,
        "world_size": 1,
        "port": port,
        "precision": precision,
        "init_s": round(init_s, 3),
        "seconds": round(time.perf_counter() - t0, 3),
        "loss": round(float(loss), 5),
        "parameters_with_grad": f"{with_grad}/{len(grads)}",
        "all_reduce": reduced,
        "checks": {
            "all_parameters_have_grad": with_grad == len(grads),
            "finite_grads": finite,
            "all_reduce_sum": reduced == [0.0, 1.0, 2.0, 3.0],
        },
    }


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "device": w_device,
    "forward": w_forward,
    "predict": w_predict,
    "fit": w_fit,
    "ddp": w_ddp,
}


def worker_main(name: str, spec_json: str) -> int:
    try:
        result = WORKERS[name](json.loads(spec_json))
    except Exception as err:  # noqa: BLE001 - reported to the orchestrator, which records it
        tb = traceback.format_exc()
        print("RESULT " + json.dumps({"_error": f"{type(err).__name__}: {err}", "_tb": tb}))
        return 1
    print("RESULT " + json.dumps(result))
    return 0


# ============================================================================ orchestrator


def _run(cmd: list[str], timeout: float, env: dict[str, str]) -> tuple[int | None, str, str]:
    """(return code or None on timeout, stdout, stderr); a timeout kills the process group."""
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: compile workers die with it
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # pragma: no cover
            pass
        out, err = proc.communicate()
        return None, out, err


def _tail(text: str, n: int = 2500) -> str:
    return text[-n:]


def run_worker(name: str, spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, json.dumps(spec)]
    code, out, err = _run(cmd, timeout, env)
    if code is None:
        return {"status": "timeout", "timeout_s": round(timeout, 1), "log_tail": _tail(err)}
    lines = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        return {
            "status": "error",
            "error": f"the worker exited with code {code} and no result (crashed?)",
            "log_tail": _tail(err or out),
        }
    result = json.loads(lines[-1][len("RESULT ") :])
    if "_error" in result:
        return {"status": "error", "error": result["_error"], "traceback": _tail(result["_tb"])}
    checks = result.get("checks", {})
    result["status"] = "ok" if all(checks.values()) else "failed"
    return result


_SUMMARY = re.compile(r"(\d+) (passed|failed|skipped|deselected|errors?|xfailed|xpassed|warnings?)")


def parse_pytest_summary(output: str) -> tuple[str | None, dict[str, int]]:
    """pytest's final summary line and its counts (``{"passed": 3, "deselected": 120}``).

    Examples
    --------
    >>> summary, counts = parse_pytest_summary("tests ...\\n3 passed, 950 deselected in 41.20s")
    >>> summary, counts
    ('3 passed, 950 deselected in 41.20s', {'passed': 3, 'deselected': 950})
    """
    lines = [ln.strip("= ").strip() for ln in output.splitlines() if ln.strip()]
    summary = next((ln for ln in reversed(lines) if re.search(r"\bin [\d.]+s\b", ln)), None)
    plural = {"errors": "error", "warnings": "warning"}
    return summary, {plural.get(k, k): int(n) for n, k in _SUMMARY.findall(summary or "")}


def run_pytest(timeout: float) -> dict[str, Any]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # the suite as configured (testpaths); a collection error elsewhere must not stop these
    cmd = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "--no-header", "-rfEs"]
    cmd.append("--continue-on-collection-errors")
    code, out, err = _run(cmd, timeout, env)
    if code is None:
        return {"status": "timeout", "timeout_s": round(timeout, 1), "log_tail": _tail(out)}
    summary, counts = parse_pytest_summary(out)
    result: dict[str, Any] = {
        "command": " ".join(["pytest", *cmd[3:]]),
        "returncode": code,
        "summary": summary,
        "counts": counts,
    }
    result["checks"] = {
        "exit_code_0": code == 0,
        "some_passed": counts.get("passed", 0) > 0,
        "none_failed": counts.get("failed", 0) == 0 and counts.get("error", 0) == 0,
    }
    if not all(result["checks"].values()):
        result["log_tail"] = _tail(out + err, 4000)
    result["status"] = "ok" if all(result["checks"].values()) else "failed"
    return result


def specs(args: argparse.Namespace) -> dict[str, tuple[str, dict[str, Any]]]:
    """Section name -> (worker, spec)."""
    smoke = args.cpu_smoke
    dev = "cpu" if smoke else "cuda:0"
    small = args.small or smoke
    fwd = {
        "device": dev,
        "small": small,
        "batch": args.batch,
        "warmup": 1 if smoke else 3,
        "min_iters": 2 if smoke else 5,
        "max_iters": 3 if smoke else 200,
        "seconds": 1.0 if smoke else 10.0,
    }
    size = 256 if smoke else args.scene_size
    return {
        "device": ("device", {"device": dev, "small": small}),
        "forward_fp32": ("forward", {**fwd, "dtype": "float32", "compile": False}),
        "forward_bf16": ("forward", {**fwd, "dtype": "bfloat16", "compile": False}),
        "forward_bf16_compile": ("forward", {**fwd, "dtype": "bfloat16", "compile": True}),
        "predict": (
            "predict",
            {"device": dev, "small": small, "size": size, "batch": None, "write": True},
        ),
        "fit": (
            "fit",
            {
                "device": dev,
                "small_tile": 32 if smoke else 64,
                "scene": 96 if smoke else 256,
                "epochs": 3,
                "steps": 8 if smoke else 25,
                "batch": 4 if smoke else 16,
                "reference_steps": 0 if small else 12,
                "reference_scene": 512,
                "reference_batch": 8,
            },
        ),
        "ddp": ("ddp", {"device": dev}),
    }


def with_tflops(report: dict[str, Any]) -> None:
    """Achieved TFLOP/s and the fraction of the bf16 peak for each forward section."""
    dev = report["sections"].get("device", {})
    gflop, peak = dev.get("gflop_per_window"), dev.get("peak_bf16_tflops")
    for name, sec in report["sections"].items():
        if not name.startswith("forward_") or "windows_per_s" not in sec:
            continue
        tflops = gflop * sec["windows_per_s"] / 1e3 if gflop else None
        sec["tflops"] = round(tflops, 2) if tflops is not None else None
        sec["fraction_of_bf16_peak"] = round(tflops / peak, 4) if tflops and peak else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--budget", type=float, default=460.0, help="seconds for everything")
    parser.add_argument(
        "--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS), metavar="NAME"
    )
    parser.add_argument("--batch", type=int, default=8, help="windows per forward pass")
    parser.add_argument("--scene-size", type=int, default=10980, help="predict's scene side")
    parser.add_argument("--small", action="store_true", help="GlaViTU.small() everywhere")
    parser.add_argument("--json", type=Path, help="also write the JSON document here")
    parser.add_argument(
        "--cpu-smoke",
        action="store_true",
        help="run every section on the CPU at toy sizes to develop this script (no figures)",
    )
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(*args.worker)

    import torch

    if not args.cpu_smoke and not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA device: torch.cuda.is_available() is False "
            f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}). Run this script "
            "on a machine with an NVIDIA GPU and a CUDA build of PyTorch (nothing was measured).",
            file=sys.stderr,
        )
        return NO_CUDA_EXIT

    import glaviz

    started = time.time()
    deadline = time.monotonic() + args.budget
    report: dict[str, Any] = {
        "tool": "benchmarks/gpu_check.py",
        "glaviz": glaviz.__version__,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "budget_s": args.budget,
        "mode": "cpu-smoke (not a measurement)" if args.cpu_smoke else "cuda",
        "host": {
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "hostname": socket.gethostname(),
        },
        "sections": {},
    }
    try:
        import psutil

        report["host"]["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:  # pragma: no cover
        pass
    plan = specs(args)
    for name in SECTIONS:
        if name not in args.sections:
            continue
        need, cap = SECTIONS[name]
        left = deadline - time.monotonic()
        if args.cpu_smoke and name == "forward_bf16_compile":
            report["sections"][name] = {"status": "skipped", "reason": "not in --cpu-smoke"}
            continue
        if left < need:
            report["sections"][name] = {
                "status": "skipped",
                "reason": f"time budget: {left:.0f} s left, the section needs {need:.0f} s",
            }
            log(f"{name}: skipped ({left:.0f} s of the budget left)")
            continue
        timeout = min(cap, left)
        log(f"{name}: running (at most {timeout:.0f} s)")
        t0 = time.monotonic()
        try:
            if name == "pytest":
                result = run_pytest(timeout)
            else:
                worker, spec = plan[name]
                result = run_worker(worker, spec, timeout)
        except Exception as err:  # noqa: BLE001 - one section's failure must not stop the rest
            result = {"status": "error", "error": f"{type(err).__name__}: {err}"}
        result["seconds_total"] = round(time.monotonic() - t0, 2)
        report["sections"][name] = result
        log(f"{name}: {result['status']} in {result['seconds_total']:.0f} s")
    with_tflops(report)
    report["elapsed_s"] = round(time.time() - started, 1)
    report["ok"] = all(s["status"] == "ok" for s in report["sections"].values())
    text = json.dumps(report, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
