"""``glaviz.fit``: the paper's training recipe as one notebook-friendly, resumable function."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from glaviz.data.tiles import Tile
from glaviz.errors import ResumeMismatchError, warn
from glaviz.models.runtime import (
    autocast,
    cpu_allocator_cache,
    describe_precision,
    release_cached_memory,
    resolve_device,
    resolve_precision,
)
from glaviz.train.augment import Augmentation
from glaviz.train.losses import FocalLoss, deep_supervision_loss
from glaviz.train.sampling import (
    LocationMode,
    PatchDataset,
    ResumableSampler,
    collate,
    epoch_batches,
)
from glaviz.train.state import (
    identity_differences,
    load_training_state,
    read_training_identity,
    run_identity,
    save_training_state,
)
from glaviz.train.validation import validate

__all__ = ["STRATEGIES", "WarmRestarts", "fit"]

STRATEGIES = ("global", "regional", "finetune", "region_encoding", "coordinate_encoding")
Strategy = Literal["global", "regional", "finetune", "region_encoding", "coordinate_encoding"]
Callback = Callable[[str, dict[str, Any]], None]


@dataclass
class WarmRestarts:
    """LR multiplier: cosine decay from 1 to 0 within cycles ending at the given steps.

    The paper's cycles end at epochs 10, 30, 70 and 150 (lengths 10/20/40/80), stepped per batch;
    after the last cycle the multiplier stays at 0. With one cycle this is plain cosine decay
    (the fine-tuning schedule).

    Examples
    --------
    >>> s = WarmRestarts([10, 30])
    >>> s(0), round(s(5), 3), s(10), round(s(20), 3)
    (1.0, 0.5, 1.0, 0.5)
    """

    cycle_ends: list[int]

    def __call__(self, step: int) -> float:
        start = 0
        for end in self.cycle_ends:
            if step < end:
                return 0.5 * (1 + math.cos(math.pi * (step - start) / (end - start)))
            start = end
        return 0.0


def _distributed(device: torch.device) -> tuple[int, int]:
    """(rank, world size); joins the torchrun process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _model_location(model: nn.Module) -> LocationMode:
    config = getattr(model, "config", {}) or {}
    return config.get("location_encoding", "none") or "none"


def _check_strategy(strategy: str, location: LocationMode) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {list(STRATEGIES)}")
    need = {"region_encoding": "region", "coordinate_encoding": "coordinates"}.get(strategy)
    if need is not None and location != need:
        raise ValueError(
            f"strategy {strategy!r} needs a model built with location_encoding={need!r} "
            f"(this one has {location!r})"
        )
    if need is None and location != "none":
        raise ValueError(
            f"strategy {strategy!r} takes no location input but the model was built with "
            f"location_encoding={location!r}; use strategy='region_encoding' or "
            "'coordinate_encoding'"
        )


def fit(
    model: nn.Module,
    train: Sequence[Tile],
    val: Sequence[Tile] | None = None,
    *,
    strategy: Strategy = "global",
    epochs: int | None = None,
    batch_size: int = 8,
    patch_size: int | None = None,
    lr: float | None = None,
    schedule: Literal["warm_restarts", "cosine", "constant"] | None = None,
    restart_epochs: Sequence[int] = (10, 30, 70, 150),
    steps_per_epoch: int | None = None,
    epoch_multiplier: int = 4,
    augment: Augmentation | None = None,
    loss: nn.Module | None = None,
    ignore_mode: Literal["ignore", "background"] = "ignore",
    deep_supervision_weight: float = 0.5,
    unknown_region_p: float = 0.1,
    bn_momentum: float | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 50,
    resume: bool = True,
    device: str | torch.device | None = None,
    precision: Literal["32", "bf16", "16"] | None = None,
    num_workers: int = 0,
    seed: int = 0,
    callbacks: Sequence[Callback] = (),
    live_plot: bool | None = None,
    progress: bool = True,
    metadata: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Train ``model`` on random patches of ``train`` tiles with the paper's recipe.

    Parameters
    ----------
    model : torch.nn.Module
        GlaViTU or a baseline from :mod:`glaviz.models` (its ``config`` gives the input groups).
    train, val : sequence of Tile
        Training and validation tiles (``glaviz.data.tiles.SceneTile``, benchmark tiles).
    strategy : str
        ``"global"``, ``"regional"`` (use :func:`glaviz.train.fit_regional` to loop over
        regions), ``"finetune"`` (lr 5e-5, cosine to 0 over 80 epochs), ``"region_encoding"``
        (region one-hot; "unknown" with probability ``unknown_region_p`` in training; validation
        on known and unknown region) or ``"coordinate_encoding"`` (sin/cos of lat/lon, radians).
    epochs : int
        Default 150 (80 when fine-tuning).
    batch_size : int, default 8
        Global batch size (split across processes under torchrun).
    patch_size : int
        Default the model's ``tile_size`` (384 for GlaViTU) or 384.
    lr : float
        Default 5e-4 (5e-5 when fine-tuning). Adam with eps 1e-7.
    schedule : {"warm_restarts", "cosine", "constant"}
        Default warm restarts ending at ``restart_epochs`` (fine-tuning: cosine to 0).
    steps_per_epoch : int, optional
        Batches per epoch; default the paper's rule (windows in all tiles // batch) x
        ``epoch_multiplier``.
    augment : Augmentation, optional
        Default :class:`Augmentation` (the paper's). ``Augmentation.none()`` for none.
    loss : torch.nn.Module, optional
        Default :class:`~glaviz.train.losses.FocalLoss` (gamma 2) with the augmentation's label
        smoothing and ``ignore_mode`` ("ignore" drops padding/nodata/unlabelled pixels,
        "background" counts them as not-glacier as the original did).
    bn_momentum : float, optional
        Override the BatchNorm momentum (PyTorch convention). The default keeps the model's:
        Keras' 0.99 (0.01 here) as in the paper, right for its long runs; its running statistics
        lag far behind in short runs (a few hundred batches), which ruins evaluation-mode
        predictions: use 0.1 there.
    checkpoint_dir : path, optional
        Where ``last.safetensors`` (full training state, every ``checkpoint_every`` batches and
        at each epoch end, atomically) and ``best.safetensors`` (the model with the best pooled
        validation glacier IoU, a :func:`glaviz.models.save_checkpoint` file) go.
    resume : bool, default True
        Continue from ``checkpoint_dir/last.safetensors`` when it exists, as if uninterrupted,
        if it is this run: the checkpoint records the run's identity (model config, the
        content of the training and validation tiles, seed, schedule, augmentation, loss,
        strategy) and another run there is refused with a
        :class:`~glaviz.errors.ResumeMismatchError` naming the folder and the differing
        settings. ``resume=False`` starts afresh (replacing the folder's checkpoints).
    device, precision
        Default CUDA when available with bf16 autocast (fp16 where bf16 is unsupported), else
        CPU in float32. ``precision="bf16"`` also works on CPUs with AMX/AVX512-BF16.
    callbacks : sequence of callables
        ``cb(event, info)`` with events ``"batch_end"`` and ``"epoch_end"``.
    live_plot : bool, optional
        A live holoviews plot of loss and IoU; default on inside Jupyter.

    Returns
    -------
    pandas.DataFrame
        One row per epoch: epoch, steps, lr, train_loss, val_iou, val_precision, val_recall (and
        val_iou_unknown with region encoding), seconds. ``attrs["best_checkpoint"]`` is the path
        of the best model when ``checkpoint_dir`` is given; ``attrs["precision"]`` and
        ``attrs["compute"]`` say what ran (bf16 requested on a CPU without native bf16 runs
        float32, with a :class:`~glaviz.errors.PerformanceWarning`).

    Examples
    --------
    >>> from glaviz.data import scale, synthetic_scene
    >>> from glaviz.data.tiles import SceneTile
    >>> from glaviz.models import GlaViTU
    >>> ds = synthetic_scene(height=64, width=64, seed=0, groups=["optical", "dem"])
    >>> tile = SceneTile(scale(ds), ds["reference_mask"])
    >>> model = GlaViTU.small(tile_size=32)
    >>> history = fit(model, [tile], [tile], epochs=1, steps_per_epoch=2, batch_size=2,
    ...               progress=False)
    >>> list(history.columns[:3])
    ['epoch', 'steps', 'lr']
    """
    device = resolve_device(device)
    rank, world = _distributed(device)
    location = _model_location(model)
    _check_strategy(strategy, location)
    finetune = strategy == "finetune"
    epochs = epochs if epochs is not None else (80 if finetune else 150)
    lr = lr if lr is not None else (5e-5 if finetune else 5e-4)
    schedule = schedule or ("cosine" if finetune else "warm_restarts")
    compute_precision = resolve_precision(device, precision)
    config = getattr(model, "config", {}) or {}
    groups = list(config.get("input_channels", {}))
    if not groups:
        raise ValueError("the model has no config['input_channels']; build it with glaviz.models")
    patch_size = patch_size or int(config.get("tile_size", 384))
    augment = Augmentation() if augment is None else augment
    loss = loss or FocalLoss(label_smoothing=augment.label_smoothing, ignore_mode=ignore_mode)
    if batch_size % world:
        raise ValueError(f"batch_size {batch_size} is not divisible by the {world} processes")
    spe = steps_per_epoch or epoch_batches(
        train, patch_size=patch_size, batch_size=batch_size, multiplier=epoch_multiplier
    )
    dataset = PatchDataset(
        train,
        groups=groups,
        patch_size=patch_size,
        samples_per_epoch=spe * batch_size,
        augment=augment,
        location=location,
        unknown_region_p=unknown_region_p,
        seed=seed,
    )
    torch.manual_seed(seed)
    if bn_momentum is not None:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.momentum = bn_momentum
    model.to(device)
    channels_last = device.type == "cuda"
    if channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, eps=1e-7)
    if schedule == "warm_restarts":
        # cycles ending before the last epoch, then one more to the end of the run
        ends = [e * spe for e in restart_epochs if e < epochs] + [epochs * spe]
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmRestarts(ends))
    elif schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmRestarts([epochs * spe]))
    elif schedule == "constant":
        scheduler = None
    else:
        raise ValueError(f"unknown schedule {schedule!r}")
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    info: dict[str, Any] = {
        "epoch": 0, "step_in_epoch": 0, "global_step": 0, "history": [],
        "best_iou": -1.0, "loss_sum": 0.0, "loss_count": 0,
    }  # fmt: skip
    identity = None
    if ckpt is not None:
        identity = run_identity(
            model, train, val, strategy=strategy, epochs=epochs, lr=lr, schedule=schedule,
            restart_epochs=list(restart_epochs), steps_per_epoch=spe,
            epoch_multiplier=epoch_multiplier, batch_size=batch_size, patch_size=patch_size,
            augmentation=augment.to_dict(), loss=_describe(loss), ignore_mode=ignore_mode,
            deep_supervision_weight=deep_supervision_weight, unknown_region_p=unknown_region_p,
            bn_momentum=bn_momentum, seed=seed, world_size=world,
        )  # fmt: skip
    if ckpt is not None and resume and (ckpt / "last.safetensors").exists():
        _check_same_run(ckpt, identity)
        info = load_training_state(
            ckpt / "last.safetensors", model=model, optimizer=optimizer, scheduler=scheduler
        )
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    live = None
    if rank == 0 and (live_plot or (live_plot is None and _in_notebook())):
        from glaviz.train.live import LivePlot

        live = LivePlot()
    run_meta = {
        "strategy": strategy, "epochs": epochs, "lr": lr, "schedule": schedule,
        "batch_size": batch_size, "patch_size": patch_size, "steps_per_epoch": spe,
        "augmentation": augment.to_dict(), "ignore_mode": ignore_mode, "seed": seed,
        "bn_momentum": bn_momentum,
        "data": [getattr(t, "name", "?") for t in train], **(metadata or {}),
    }  # fmt: skip

    def save_state() -> None:
        if ckpt is not None and rank == 0:
            save_training_state(
                ckpt / "last.safetensors",
                model=model, optimizer=optimizer, scheduler=scheduler, info=info,
                identity=identity,
            )  # fmt: skip

    bar = tqdm(
        total=epochs * spe, initial=info["global_step"], disable=not progress or rank != 0,
        desc="fit", unit="batch",
    )  # fmt: skip
    net.train()
    with cpu_allocator_cache(device.type == "cpu"):  # reuse freed activations, see runtime
        while info["epoch"] < epochs:
            epoch = info["epoch"]
            started = time.perf_counter()
            dataset.set_epoch(epoch)
            sampler = ResumableSampler(
                len(dataset), start=info["step_in_epoch"] * batch_size, rank=rank, world_size=world
            )
            loader = DataLoader(
                dataset, batch_size=batch_size // world, sampler=sampler, collate_fn=collate,
                num_workers=num_workers, pin_memory=device.type == "cuda",
            )  # fmt: skip
            for batch in loader:
                inputs = {g: t.to(device, non_blocking=True) for g, t in batch["inputs"].items()}
                if channels_last:
                    inputs = {
                        g: t.contiguous(memory_format=torch.channels_last)
                        for g, t in inputs.items()
                    }
                if "location" in batch:
                    inputs["location"] = batch["location"].to(device)
                target = batch["label"].to(device, non_blocking=True)
                with autocast(device, compute_precision):
                    outputs = net(inputs)
                value = deep_supervision_loss(loss, outputs, target, weight=deep_supervision_weight)
                optimizer.zero_grad(set_to_none=True)
                value.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                info["lr"] = optimizer.param_groups[0]["lr"]
                info["loss_sum"] += float(value.detach())
                info["loss_count"] += 1
                info["step_in_epoch"] += 1
                info["global_step"] += 1
                bar.update(1)
                bar.set_postfix(loss=f"{info['loss_sum'] / info['loss_count']:.4f}")
                if info["step_in_epoch"] % checkpoint_every == 0 and info["step_in_epoch"] < spe:
                    save_state()
                for cb in callbacks:
                    cb("batch_end", info)
            row: dict[str, Any] = {
                "epoch": epoch + 1, "steps": info["global_step"],
                "lr": optimizer.param_groups[0]["lr"],
                "train_loss": info["loss_sum"] / max(info["loss_count"], 1),
            }  # fmt: skip
            if val:
                kw: dict[str, Any] = dict(
                    groups=groups, patch_size=patch_size, batch_size=batch_size, location=location,
                    device=device, precision=compute_precision, channels_last=channels_last,
                )  # fmt: skip
                scores = validate(model, val, **kw)
                row.update(
                    val_iou=scores.iou, val_precision=scores.precision, val_recall=scores.recall
                )
                if location == "region":
                    row["val_iou_unknown"] = validate(model, val, unknown_region=True, **kw).iou
                if rank == 0 and ckpt is not None and scores.iou > info["best_iou"]:
                    from glaviz.models.checkpoint import save_checkpoint

                    info["best_iou"] = scores.iou
                    save_checkpoint(
                        model, ckpt / "best.safetensors", overwrite=True,
                        metadata={"provenance": {**run_meta, "epochs_trained": epoch + 1,
                                                 "val_iou": scores.iou}},
                    )  # fmt: skip
            row["seconds"] = round(time.perf_counter() - started, 3)
            info["history"].append(row)
            info.update(epoch=epoch + 1, step_in_epoch=0, loss_sum=0.0, loss_count=0)
            save_state()
            release_cached_memory()  # resident memory back to what the next epoch needs
            if live is not None:
                live.update(row)
            for cb in callbacks:
                cb("epoch_end", info)
    bar.close()
    del net  # drop the DistributedDataParallel wrapper (and its reducer) before returning
    history = pd.DataFrame(info["history"])
    history.attrs["precision"] = compute_precision
    history.attrs["compute"] = describe_precision(device, compute_precision)
    if ckpt is not None and (ckpt / "best.safetensors").exists():
        history.attrs["best_checkpoint"] = str(ckpt / "best.safetensors")
    return history


def _describe(module: nn.Module) -> dict[str, Any]:
    """A loss module's class and plain settings (for the run identity)."""
    plain = {
        k: v
        for k, v in vars(module).items()
        if not k.startswith("_")
        and k != "training"
        and isinstance(v, (bool, int, float, str, type(None)))
    }
    return {"type": type(module).__name__, **plain}  # fmt: skip


def _check_same_run(ckpt: Path, identity: dict[str, Any] | None) -> None:
    """Refuse to resume ``ckpt/last.safetensors`` if it belongs to another run."""
    last = ckpt / "last.safetensors"
    saved = read_training_identity(last)
    if saved is None:
        warn(
            f"{last} records no run identity (written by an older glaviz): resuming it "
            "without checking that it is this run; pass resume=False to start afresh"
        )
        return
    differences = identity_differences(saved, identity or {})
    if differences:
        raise ResumeMismatchError(
            f"checkpoint_dir {str(ckpt)!r} holds another run in last.safetensors; it differs in "
            f"{'; '.join(differences)}. Resuming would return that run's weights and history: "
            "pass resume=False to start this run afresh there (its checkpoints are replaced), "
            "or give a new checkpoint_dir"
        )


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"
