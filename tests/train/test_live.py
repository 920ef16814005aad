"""The live training plot collects epochs and renders with bokeh."""

from __future__ import annotations

import holoviews as hv

from glaviz.train.live import LivePlot


def test_live_plot_grows_and_renders():
    plot = LivePlot(display=False)
    plot.update({"epoch": 1, "train_loss": 0.5, "val_iou": 0.4})
    plot.update({"epoch": 2, "train_loss": 0.3})  # no validation: NaN IoU
    data = plot.buffer.data
    assert list(data["epoch"]) == [1.0, 2.0] and data["val_iou"].isna().tolist() == [False, True]
    fig = hv.render(plot.figure, backend="bokeh")
    assert len(fig.children) >= 1
