"""``glaviz train``: fit a model on a sample, benchmark HDF5 files or synthetic scenes.

Multi-GPU (or multi-process CPU) training runs under ``torchrun``, which starts one process per
device; each process joins the process group and trains its share of every batch
(DistributedDataParallel)::

    torchrun --nproc_per_node 4 -m glaviz.cli train --hdf5 'data/*_train_*.hdf5' \\
        --val-hdf5 'data/*_val_*.hdf5' --model glavitu --checkpoint-dir runs/global
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from glaviz._io import atomic_write
from glaviz.cli._common import UsageError, add_command

__all__ = ["add_parser", "run"]


def _tiles(args: argparse.Namespace) -> tuple[list, list]:
    if args.sample:
        from glaviz.data.samples import sample_tiles

        tiles = sample_tiles(args.sample)
        return [tiles["train"]], [tiles["val"]] if "val" in tiles else []
    if args.hdf5:
        from glaviz.data.benchmark import open_benchmark

        groups = args.groups.split(",") if args.groups else ("optical", "dem")
        regions = args.regions.split(",") if args.regions else None
        train = list(open_benchmark(args.hdf5, groups=groups, regions=regions))
        val = list(open_benchmark(args.val_hdf5, groups=groups, regions=regions)) if (
            args.val_hdf5
        ) else []  # fmt: skip
        return train, val
    if args.synthetic:
        from glaviz.data import scale, synthetic_scene
        from glaviz.data.tiles import SceneTile

        groups = args.groups.split(",") if args.groups else ["optical", "dem"]

        def tile(seed: int, region: str) -> SceneTile:
            ds = synthetic_scene(args.synthetic, args.synthetic, seed=seed, groups=groups)
            name = f"synthetic-{seed}"
            return SceneTile(scale(ds), ds["reference_mask"], name=name, region=region)

        return [tile(args.seed, "ALP"), tile(args.seed + 1, "HMA")], [tile(args.seed + 2, "ALP")]
    raise UsageError(
        "no training data: give --sample NAME, --hdf5 'data/*_train_*.hdf5' or --synthetic SIZE"
    )


def _channels(tile: Any) -> dict[str, int]:
    patch = tile.read(0, 0, 1)
    return {g: int(a.shape[0]) for g, a in patch.inputs.items()}


def run(args: argparse.Namespace) -> int:
    """Train (one process, or one rank of a torchrun job) and write the run summary."""
    import torch
    import torch.distributed as dist

    from glaviz.models.registry import build
    from glaviz.train import Augmentation, fit

    if args.threads:
        torch.set_num_threads(args.threads)
    train, val = _tiles(args)
    config: dict[str, Any] = json.loads(args.model_config) if args.model_config else {}
    config.setdefault("input_channels", _channels(train[0]))
    if args.strategy == "region_encoding":
        config.setdefault("location_encoding", "region")
    elif args.strategy == "coordinate_encoding":
        config.setdefault("location_encoding", "coordinates")
    torch.manual_seed(args.seed)
    model = build(args.model, **config)
    if args.augment == "paper":
        augment = Augmentation()
    elif args.augment == "none":
        augment = Augmentation.none()
    else:
        augment = Augmentation.only(*args.augment.split(","))
    history = fit(
        model, train, val or None,
        strategy=args.strategy, epochs=args.epochs, batch_size=args.batch_size,
        patch_size=args.patch_size, lr=args.lr, steps_per_epoch=args.steps_per_epoch,
        augment=augment, bn_momentum=args.bn_momentum, checkpoint_dir=args.checkpoint_dir,
        device=args.device, precision=args.precision, seed=args.seed,
        num_workers=args.workers, progress=not args.quiet,
    )  # fmt: skip
    # Parameters must agree across processes (BatchNorm running statistics stay per process,
    # as in any DistributedDataParallel run; rank 0's are the ones saved).
    digest = hashlib.sha256()
    for value in model.parameters():
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    world = dist.get_world_size() if dist.is_initialized() else 1
    digests = [digest.hexdigest()]
    if world > 1:
        gathered: list[object] = [None] * world
        dist.all_gather_object(gathered, digest.hexdigest())
        digests = [str(d) for d in gathered]
    rank = dist.get_rank() if dist.is_initialized() else 0
    try:
        if rank == 0:
            _write_run_summary(args, history, world, digests)
    finally:  # the other ranks wait at the barrier even if rank 0's writing fails
        if dist.is_initialized():
            _shutdown_process_group(dist)
    return 0


def _write_run_summary(args: argparse.Namespace, history: Any, world: int, digests: list) -> None:
    """history.csv and run.json in the checkpoint folder (rank 0 only)."""
    out = Path(args.checkpoint_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "history.csv", lambda tmp: history.to_csv(tmp, index=False))
    summary = {
        "world_size": world,
        "parameters_sha256_per_rank": digests,
        "epochs": int(history["epoch"].max()),
        "best_checkpoint": history.attrs.get("best_checkpoint"),
        "final": history.iloc[-1].to_dict(),
    }
    text = json.dumps(summary, indent=2, default=float)
    atomic_write(out / "run.json", lambda tmp: tmp.write_text(text))
    print(text)


def _shutdown_process_group(dist: Any) -> None:
    """Leave the process group cleanly: all ranks meet first, references die, then destroy.

    Without the barrier one rank tore gloo down while the other was still writing the run
    summary, and a DistributedDataParallel reducer still alive in a reference cycle could hold
    the group into interpreter shutdown (both end in ``std::terminate``).
    """
    import gc

    dist.barrier()
    gc.collect()
    dist.destroy_process_group()


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``train``."""
    t = add_command(
        sub, "train", help="train a model (use torchrun for several processes)",
        description="Train a model with the paper's recipe; best.safetensors, last.safetensors, "
        "history.csv and run.json go to --checkpoint-dir (a killed run resumes from last). "
        "Several processes: torchrun --nproc_per_node N -m glaviz.cli train ...",
        example="glaviz train --sample everest_landsat7 --model glavitu-small "
        "--checkpoint-dir runs/everest\n"
        "torchrun --nproc_per_node 4 -m glaviz.cli train --hdf5 'data/*_train_*.hdf5' \\\n"
        "    --val-hdf5 'data/*_val_*.hdf5' --checkpoint-dir runs/global",
        handler=run,
    )  # fmt: skip
    data = t.add_mutually_exclusive_group()
    data.add_argument("--sample", help="catalog sample with splits, e.g. everest_landsat7")
    data.add_argument("--hdf5", help="benchmark HDF5 training file(s), a path or glob")
    data.add_argument("--synthetic", type=int, metavar="SIZE", help="synthetic scenes of SIZE px")
    t.add_argument("--val-hdf5", help="benchmark HDF5 validation file(s)")
    t.add_argument("--groups", help="input groups, comma separated (default optical,dem)")
    t.add_argument("--regions", help="region codes to keep, comma separated")
    t.add_argument("--model", default="glavitu", help="registry name (glaviz.models)")
    t.add_argument("--model-config", help="JSON of model constructor arguments")
    t.add_argument("--strategy", default="global",
                   choices=["global", "regional", "finetune", "region_encoding",
                            "coordinate_encoding"])  # fmt: skip
    t.add_argument("--epochs", type=int)
    t.add_argument("--steps-per-epoch", type=int)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--patch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--augment", default="paper", help="paper, none or names (vflip,hflip,...)")
    t.add_argument("--bn-momentum", type=float)
    t.add_argument("--precision", choices=["32", "bf16", "16"])
    t.add_argument("--device")
    t.add_argument("--workers", type=int, default=0)
    t.add_argument("--threads", type=int, help="torch CPU threads per process")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--checkpoint-dir", required=True)
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    return t
