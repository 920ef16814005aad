"""benchmarks/gpu_check.py without a GPU: it refuses at once, and its parts work on the CPU."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def _no_gpu_env() -> dict[str, str]:
    # hide any GPU, so that the refusal is tested on GPU machines as well
    return {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1"}


def test_refuses_without_cuda_with_exit_code_2():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_no_gpu_env(),
        cwd=ROOT,
    )
    assert proc.returncode == 2, proc.stderr
    assert "no CUDA device" in proc.stderr and "torch.cuda.is_available() is False" in proc.stderr
    assert "Run this script on a machine with an NVIDIA GPU" in proc.stderr
    assert proc.stdout == ""  # no JSON document: nothing was measured


def test_sections_run_isolated_and_report_one_json_document(tmp_path):
    """The orchestration on the CPU (--cpu-smoke): one worker section, JSON on stdout."""
    out = tmp_path / "check.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--cpu-smoke", "--sections", "ddp", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
        env=_no_gpu_env(),
        cwd=ROOT,
    )
    report = json.loads(proc.stdout)
    assert json.loads(out.read_text()) == report
    ddp = report["sections"]["ddp"]
    assert ddp["status"] == "ok", ddp
    assert ddp["backend"] == "gloo" and ddp["all_reduce"] == [0.0, 1.0, 2.0, 3.0]
    assert list(report["sections"]) == ["ddp"] and report["ok"] is True
    assert proc.returncode == 0 and "ddp: ok" in proc.stderr


def test_peak_table_tflops_and_pytest_summary():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.bf16_peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert mod.bf16_peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert mod.bf16_peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert mod.bf16_peak_tflops("NVIDIA L4") == 121.0
    assert mod.bf16_peak_tflops("NVIDIA GeForce RTX 4090") is None
    report = {
        "sections": {
            "device": {"gflop_per_window": 200.0, "peak_bf16_tflops": 1000.0},
            "forward_bf16": {"windows_per_s": 500.0},
            "forward_fp32": {"status": "error"},
        }
    }
    mod.with_tflops(report)
    assert report["sections"]["forward_bf16"]["tflops"] == 100.0
    assert report["sections"]["forward_bf16"]["fraction_of_bf16_peak"] == 0.1
    assert "tflops" not in report["sections"]["forward_fp32"]
    summary, counts = mod.parse_pytest_summary(
        "tests/test_cuda.py ...\n== 2 passed, 1 failed, 3 errors, 900 deselected in 12.5s ==\n"
    )
    assert summary == "2 passed, 1 failed, 3 errors, 900 deselected in 12.5s"
    assert counts == {"passed": 2, "failed": 1, "error": 3, "deselected": 900}
