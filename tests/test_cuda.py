"""CUDA-only tests of the GPU code paths, through the public API.

They need a CUDA device and are skipped without one; ``benchmarks/gpu_check.py`` runs them
(``pytest -m cuda``) on a GPU machine. What they pin down: ``glaviz.predict`` on CUDA (bf16
autocast, channels-last windows, pinned non-blocking transfers) gives the CPU float32 result
within bf16 rounding; ``glaviz.fit`` takes an AMP step on CUDA with float32 master weights; the
window runner's host-to-device copies go through pinned memory.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from glaviz.data import scale, synthetic_scene
from glaviz.data.tiles import SceneTile
from glaviz.inference import predict
from glaviz.inference.windows import WindowRunner
from glaviz.models.glavitu import GlaViTU
from glaviz.train import Augmentation, fit

GROUPS = {"optical": 6, "dem": 2}

requires_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA device (benchmarks/gpu_check.py runs these on a GPU machine)",
)


def _model() -> GlaViTU:
    torch.manual_seed(0)
    return GlaViTU.small(input_channels=GROUPS, tile_size=32).eval()


def _low_precision() -> torch.dtype:
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@pytest.mark.cuda
@requires_cuda
def test_predict_bf16_channels_last_on_cuda_equals_cpu_float32():
    scene = scale(synthetic_scene(height=90, width=110, seed=0, groups=list(GROUPS)))
    model = _model()
    cpu = predict(copy.deepcopy(model), scene, device="cpu", precision="32", progress=False)
    gpu = predict(model, scene, device="cuda", progress=False)  # CUDA defaults: bf16 autocast
    assert gpu.attrs["precision"] in ("bf16", "16") and cpu.attrs["precision"] == "32"
    kernels = [p for p in model.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[-1] > 1]
    assert kernels and all(p.is_cuda for p in kernels)
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in kernels)
    p_cpu = cpu["glacier_probability"].values
    p_gpu = gpu["glacier_probability"].values
    np.testing.assert_array_equal(np.isnan(p_cpu), np.isnan(p_gpu))
    ok = ~np.isnan(p_cpu)
    assert np.abs(p_gpu[ok] - p_cpu[ok]).max() < 0.05  # bf16 rounding of a float32 model
    decided = ok & (np.abs(p_cpu - 0.5) > 0.05)  # masks compared away from the threshold
    agree = (gpu["glacier_mask"].values == cpu["glacier_mask"].values)[decided].mean()
    assert agree > 0.995
    assert gpu.rio.crs == scene.rio.crs and gpu.rio.transform() == scene.rio.transform()


@pytest.mark.cuda
@requires_cuda
def test_fit_one_amp_step_on_cuda():
    ds = synthetic_scene(height=96, width=96, seed=0, groups=list(GROUPS))
    tile = SceneTile(scale(ds), ds["reference_mask"], name="synthetic")
    model = _model()
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    dtypes: list[torch.dtype] = []
    hook = model.head.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    try:
        history = fit(model, [tile], epochs=1, steps_per_epoch=1, batch_size=2,
                      augment=Augmentation.none(), device="cuda", progress=False)  # fmt: skip
    finally:
        hook.remove()
    assert dtypes and dtypes[0] == _low_precision()  # the forward pass ran under autocast
    assert np.isfinite(history["train_loss"].iloc[0])
    params = dict(model.named_parameters())
    assert all(p.is_cuda and p.dtype == torch.float32 for p in params.values())  # master weights
    changed = [k for k, p in params.items() if not torch.equal(p.detach().cpu(), before[k])]
    assert len(changed) > 0.9 * len(params)  # one optimizer step moved (nearly) every weight
    assert all(torch.isfinite(p).all() for p in params.values())


@pytest.mark.cuda
@requires_cuda
def test_window_runner_uses_pinned_non_blocking_transfers(monkeypatch):
    model = _model().to("cuda").to(memory_format=torch.channels_last)
    runner = WindowRunner(model, list(GROUPS), device=torch.device("cuda"), precision="bf16")
    rng = np.random.default_rng(0)
    batch = {g: rng.random((2, c, 32, 32), dtype=np.float32) for g, c in GROUPS.items()}
    pinned: list[bool] = []
    original = torch.Tensor.pin_memory

    def spy(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        pinned.append(out.is_pinned())
        return out

    monkeypatch.setattr(torch.Tensor, "pin_memory", spy)
    moved = runner._to_device(batch["optical"])
    assert pinned == [True]
    assert moved.is_cuda and moved.is_contiguous(memory_format=torch.channels_last)
    torch.cuda.synchronize()
    np.testing.assert_array_equal(moved.cpu().numpy(), batch["optical"])
    prob = runner(batch, [(0, 0), (0, 32)])
    assert len(pinned) == 1 + len(GROUPS)  # every group went through pinned memory
    assert prob.shape == (2, 32, 32) and np.isfinite(prob).all()
    with torch.inference_mode():
        ref = torch.softmax(
            model.cpu().float()({g: torch.from_numpy(a) for g, a in batch.items()}), 1
        )
    np.testing.assert_allclose(prob, ref[:, 1].numpy(), atol=0.05)
