"""Tests of the glaviz command: fetch, train, and DDP training under torchrun (gloo, 2 CPUs)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pandas as pd
import pytest

from glaviz.cli import main
from glaviz.models.checkpoint import read_checkpoint_metadata

TRAIN = ["train", "--synthetic", "64", "--model", "glavitu-small", "--model-config",
         '{"tile_size": 32}', "--epochs", "2", "--steps-per-epoch", "3", "--batch-size", "4",
         "--quiet"]  # fmt: skip


def test_fetch_lists_files(capsys):
    assert main(["fetch", "everest_landsat7"]) == 0
    out = capsys.readouterr().out
    assert "LE71400412000304SGS00_RGB.tif\t" in out and "15_rgi60_glacier_outlines.gpkg" in out


def test_train_single_process(tmp_path):
    assert main([*TRAIN, "--checkpoint-dir", str(tmp_path)]) == 0
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["world_size"] == 1 and run["epochs"] == 2
    history = pd.read_csv(tmp_path / "history.csv")
    assert list(history["epoch"]) == [1, 2]
    meta = read_checkpoint_metadata(tmp_path / "best.safetensors")
    assert meta["config"]["input_channels"] == {"optical": 6, "dem": 2}


def test_train_needs_data(tmp_path):
    with pytest.raises(SystemExit, match="--sample, --hdf5 or --synthetic"):
        main(["train", "--checkpoint-dir", str(tmp_path)])


def test_ddp_two_processes_with_torchrun(tmp_path):
    with socket.socket() as sock:  # a free port, not a fixed one another job may hold
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", str(port), "-m", "glaviz.cli", *TRAIN, "--threads", "1",
           "--checkpoint-dir", str(tmp_path)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["world_size"] == 2
    first, second = run["parameters_sha256_per_rank"]
    assert first == second  # gradients were averaged: both processes hold the same weights
    assert (tmp_path / "best.safetensors").exists() and (tmp_path / "last.safetensors").exists()
    assert run["final"]["steps"] == 6


def test_train_on_benchmark_hdf5(tmp_path, benchmark_dir):
    out = tmp_path / "run"
    args = ["train", "--hdf5", str(benchmark_dir / "tiny_train_ps384.hdf5"),
            "--val-hdf5", str(benchmark_dir / "tiny_val_ps384.hdf5"),
            "--model", "glavitu-small", "--model-config", '{"tile_size": 64}',
            "--strategy", "region_encoding", "--epochs", "1", "--steps-per-epoch", "2",
            "--batch-size", "2", "--quiet", "--checkpoint-dir", str(out)]  # fmt: skip
    assert main(args) == 0
    meta = read_checkpoint_metadata(out / "best.safetensors")
    assert meta["config"]["location_encoding"] == "region"
    assert meta["config"]["input_channels"] == {"optical": 6, "dem": 2}
    assert "val_iou_unknown" in pd.read_csv(out / "history.csv").columns
