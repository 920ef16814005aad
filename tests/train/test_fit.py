"""Tests of glaviz.fit: learning, schedules, checkpoints, resuming after a kill, strategies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch

from glaviz.data import scale, synthetic_scene
from glaviz.data.tiles import SceneTile
from glaviz.models.glavitu import GlaViTU
from glaviz.train import Augmentation, WarmRestarts, adapt_region, finetune, fit, fit_regional

GROUPS = {"optical": 6, "dem": 2}


def _tiles(seed=0, size=96, region="ALP"):
    ds = synthetic_scene(height=size, width=size, seed=seed, groups=list(GROUPS))
    return SceneTile(scale(ds), ds["reference_mask"], name=f"s{seed}", region=region)


def _model(**kw):
    torch.manual_seed(0)
    return GlaViTU.small(input_channels=GROUPS, tile_size=32, **kw)


def test_learns_on_synthetic_scene():
    train, val = _tiles(0), _tiles(1)
    history = fit(_model(), [train], [val], epochs=4, steps_per_epoch=20, batch_size=4,
                  lr=1e-3, augment=Augmentation.only("vflip", "hflip"), bn_momentum=0.1,
                  progress=False)  # fmt: skip
    assert list(history["epoch"]) == [1, 2, 3, 4]
    assert history["train_loss"].iloc[-1] < 0.6 * history["train_loss"].iloc[0]
    assert history["val_iou"].iloc[-1] > 0.7  # an unseen synthetic scene
    assert {"val_precision", "val_recall", "lr", "seconds"} <= set(history.columns)


def test_warm_restart_schedule_per_batch():
    sched = WarmRestarts([10 * 3, 30 * 3, 70 * 3, 150 * 3])  # 3 batches per epoch
    assert sched(0) == 1.0 and sched(30) == 1.0 and sched(90) == 1.0 and sched(210) == 1.0
    assert sched(15) == pytest.approx(0.5) and sched(60) == pytest.approx(0.5)
    assert sched(29) < 0.01 and sched(450) == 0.0
    lrs = []
    fit(_model(), [_tiles()], epochs=2, steps_per_epoch=2, batch_size=2, lr=1e-3,
        restart_epochs=(1, 2), progress=False,
        callbacks=[lambda e, i: e == "batch_end" and lrs.append(i["lr"])])  # fmt: skip
    # the lr for the next batch: cycles of one epoch (2 batches) restart at 1e-3, end at 0
    np.testing.assert_allclose(lrs, [5e-4, 1e-3, 5e-4, 0.0], atol=1e-12)


def test_best_checkpoint_and_metadata(tmp_path):
    from glaviz.models.checkpoint import load_checkpoint, read_checkpoint_metadata

    history = fit(_model(), [_tiles(0)], [_tiles(1)], epochs=2, steps_per_epoch=3, batch_size=2,
                  checkpoint_dir=tmp_path, progress=False)  # fmt: skip
    best = tmp_path / "best.safetensors"
    assert history.attrs["best_checkpoint"] == str(best) and best.exists()
    meta = read_checkpoint_metadata(best)
    assert json.dumps(meta)  # JSON-able
    prov = meta["provenance"]
    assert prov["strategy"] == "global" and prov["data"] == ["s0"]
    assert prov["val_iou"] == pytest.approx(history["val_iou"].max())
    model = load_checkpoint(best)
    assert model.config["input_channels"] == GROUPS


KILL_SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys
    import torch
    torch.set_num_threads(1)
    from glaviz.data import scale, synthetic_scene
    from glaviz.data.tiles import SceneTile
    from glaviz.models.glavitu import GlaViTU
    from glaviz.train import fit

    out, kill_at = sys.argv[1], int(sys.argv[2])
    ds = synthetic_scene(height=80, width=80, seed=0, groups=["optical", "dem"])
    tile = SceneTile(scale(ds), ds["reference_mask"], name="t")
    torch.manual_seed(0)
    model = GlaViTU.small(input_channels={"optical": 6, "dem": 2}, tile_size=32)

    def killer(event, info):
        if event == "batch_end" and info["global_step"] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    history = fit(model, [tile], [tile], epochs=3, steps_per_epoch=6, batch_size=2,
                  checkpoint_dir=out, checkpoint_every=2, callbacks=[killer], progress=False)
    torch.save({k: v for k, v in model.state_dict().items()}, os.path.join(out, "final.pt"))
    history.drop(columns="seconds").to_json(os.path.join(out, "history.json"))
    """
)


def _run(script, *args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, script, *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_killed_mid_epoch_resumes_as_if_uninterrupted(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT)
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    done = _run(script, ref, -1)
    assert done.returncode == 0, done.stderr
    first = _run(script, killed, 9)  # epoch 2, batch 3: the last checkpoint is at batch 2
    assert first.returncode == -9, first.stderr
    assert (killed / "last.safetensors").exists() and not (killed / "final.pt").exists()
    second = _run(script, killed, -1)
    assert second.returncode == 0, second.stderr
    a = torch.load(ref / "final.pt")
    b = torch.load(killed / "final.pt")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    pd.testing.assert_frame_equal(
        pd.read_json(ref / "history.json"), pd.read_json(killed / "history.json")
    )


def test_region_encoding_validates_known_and_unknown():
    model = _model(location_encoding="region")
    train, val = [_tiles(region="HMA")], [_tiles(1, region="HMA")]
    history = fit(model, train, val, epochs=1, strategy="region_encoding", steps_per_epoch=2,
                  batch_size=2, progress=False)  # fmt: skip
    assert {"val_iou", "val_iou_unknown"} <= set(history.columns)


def test_coordinate_encoding_and_strategy_mismatch():
    model = _model(location_encoding="coordinates")
    fit(model, [_tiles()], epochs=1, strategy="coordinate_encoding", steps_per_epoch=1,
        batch_size=2, progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="location_encoding='region'"):
        fit(_model(), [_tiles()], strategy="region_encoding", epochs=1, progress=False)
    with pytest.raises(ValueError, match="takes no location input"):
        fit(model, [_tiles()], strategy="global", epochs=1, progress=False)
    with pytest.raises(ValueError, match="unknown strategy"):
        fit(_model(), [_tiles()], strategy="federated", epochs=1, progress=False)


def test_finetune_defaults():
    lrs = []
    history = finetune(_model(), [_tiles()], epochs=1, steps_per_epoch=4, batch_size=2,
                       progress=False, callbacks=[lambda e, i: lrs.append(i["lr"])])  # fmt: skip
    # lr 5e-5, cosine to 0 over the run, stepped per batch
    expected = [5e-5 * 0.5 * (1 + np.cos(np.pi * k / 4)) for k in (1, 2, 3, 4)]
    np.testing.assert_allclose(lrs[:4], expected, atol=1e-12)
    assert history["lr"].iloc[0] == pytest.approx(0.0, abs=1e-12)


def test_fit_regional_one_model_per_cluster(tmp_path):
    tiles = [_tiles(0, region="ALP"), _tiles(1, region="HMA"), _tiles(2, region="HMA")]
    built = []

    def build():
        built.append(1)
        return _model()

    out = fit_regional(build, tiles, tiles, epochs=1, steps_per_epoch=1, batch_size=2,
                       checkpoint_dir=tmp_path, progress=False)  # fmt: skip
    assert set(out) == {"ALP", "HMA"} and len(built) == 2
    assert (tmp_path / "ALP" / "best.safetensors").exists()
    clustered = fit_regional(build, tiles, None, clusters={"asia": ["HMA"]}, epochs=1,
                             steps_per_epoch=1, batch_size=2, progress=False)  # fmt: skip
    assert list(clustered) == ["asia"]
    with pytest.raises(ValueError, match="no training tile"):
        fit_regional(build, tiles, clusters={"x": ["NZ"]}, epochs=1, progress=False)


def test_adapt_region_minimises_entropy_with_frozen_network():
    model = _model(location_encoding="region")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scene = scale(synthetic_scene(height=64, width=64, seed=3, groups=list(GROUPS)))
    result = adapt_region(model, scene, crops_per_epoch=4, batch_size=2, lr=0.05,
                          max_epochs=15, patience=100, progress=False)  # fmt: skip
    assert result.location.shape == (12,) and result.location.sum() == pytest.approx(1.0)
    assert set(result.weights) >= {"ALP", "unknown"}
    h = result.history["mean_normalised_entropy"]
    assert h.iloc[-3:].mean() < h.iloc[:3].mean()
    assert not np.allclose(result.location, 1 / 12)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0, msg=k)
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match="location_encoding='region'"):
        adapt_region(_model(), scene)


# ---- a resumed run is always the same run (issue #14) -------------------------------------


def _short_fit(model, tiles, ckpt, **kw):
    args = dict(epochs=1, steps_per_epoch=2, batch_size=2, checkpoint_dir=ckpt, progress=False)
    return fit(model, tiles, **{**args, **kw})


@pytest.mark.parametrize(
    ("change", "what"),
    [
        ("tiles", r"train tiles \(1 -> 1 tiles, other content\)"),
        ("seed", r"seed: 0 -> 1"),
        ("epochs", r"epochs: 1 -> 2"),
        ("config", r"model config width: 8 -> 16"),
        ("architecture", r"model: \w+ -> \w+"),
        ("augmentation", r"augmentation"),
    ],
)
def test_fit_refuses_to_resume_another_run(tmp_path, change, what):
    from glaviz.errors import ResumeMismatchError
    from glaviz.models.registry import build

    ckpt = tmp_path / "run"
    first = _short_fit(_model(width=8), [_tiles(0, size=64)], ckpt)
    model, tiles, kw = _model(width=8), [_tiles(0, size=64)], {}
    if change == "tiles":
        tiles = [_tiles(5, size=64)]  # another scene under the same name
        tiles[0].name = "s0"
    elif change == "seed":
        kw = {"seed": 1}
    elif change == "epochs":
        kw = {"epochs": 2}
    elif change == "config":
        model = _model(width=16)
    elif change == "architecture":
        model = build("resunet-small", input_channels=GROUPS)
    elif change == "augmentation":
        kw = {"augment": Augmentation().without("occlusion")}
    with pytest.raises(ResumeMismatchError, match=rf"checkpoint_dir '.*run' holds another run "
                       rf"in last\.safetensors; it differs in .*{what}.*resume=False"):  # fmt: skip
        _short_fit(model, tiles, ckpt, **kw)
    again = _short_fit(model, tiles, ckpt, resume=False, **kw)  # the fix: start afresh
    assert len(again) == kw.get("epochs", 1) and len(first) == 1


def test_fit_resumes_the_same_run(tmp_path):
    ckpt = tmp_path / "run"
    first = _short_fit(_model(), [_tiles(0, size=64)], ckpt)
    again = _short_fit(_model(), [_tiles(0, size=64)], ckpt)  # finished: the same history
    pd.testing.assert_frame_equal(first, again)


def test_a_pickle_named_last_safetensors_is_named(tmp_path):
    from glaviz.errors import CheckpointError

    ckpt = tmp_path / "run"
    ckpt.mkdir()
    torch.save(_model().state_dict(), ckpt / "last.safetensors")
    with pytest.raises(CheckpointError, match=r"last\.safetensors is a pickle .*not safetensors"):
        _short_fit(_model(), [_tiles(0, size=64)], ckpt)


def test_an_old_state_without_identity_resumes_with_a_warning(tmp_path):
    from glaviz.errors import CheckpointMismatchError, InputWarning
    from glaviz.models.registry import build
    from glaviz.train.state import load_training_state, save_training_state

    ckpt = tmp_path / "run"
    first = _short_fit(_model(), [_tiles(0, size=64)], ckpt)
    model = _model()
    opt = torch.optim.Adam(model.parameters())
    info = load_training_state(ckpt / "last.safetensors", model=model, optimizer=opt,
                               scheduler=None)  # fmt: skip
    # as an older glaviz wrote it: no identity
    save_training_state(ckpt / "last.safetensors", model=model, optimizer=opt, scheduler=None,
                        info=info)  # fmt: skip
    with pytest.warns(InputWarning, match="records no run identity"):
        again = _short_fit(_model(), [_tiles(0, size=64)], ckpt)
    assert len(again) == len(first)
    other = build("resunet-small", input_channels=GROUPS)
    with pytest.raises(CheckpointMismatchError, match=r"last\.safetensors: the saved training "
                       r"state does not fit this model .*resume=False"):  # fmt: skip
        opt = torch.optim.Adam(other.parameters())
        load_training_state(ckpt / "last.safetensors", model=other, optimizer=opt, scheduler=None)
