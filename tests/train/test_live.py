"""The live training plot collects epochs and renders with bokeh."""

from __future__ import annotations

import bokeh.plotting
import holoviews as hv
import numpy as np

from glaviz.train.live import LivePlot


def test_live_plot_grows_and_renders():
    plot = LivePlot(display=False)
    plot.update({"epoch": 1, "train_loss": 0.5, "val_iou": 0.4})
    plot.update({"epoch": 2, "train_loss": 0.3})  # no validation: NaN IoU
    data = plot.buffer.data
    assert list(data["epoch"]) == [1.0, 2.0] and data["val_iou"].isna().tolist() == [False, True]
    fig = hv.render(plot.figure, backend="bokeh")
    # two figures side by side, the loss and the IoU, each drawing the epochs sent
    # (bokeh's select returns them in no fixed order: match them by title)
    figures = {f.title.text: f for f in fig.select({"type": bokeh.plotting.figure})}
    assert sorted(figures) == ["train loss", "validation IoU"]
    for title, column in (("train loss", "train_loss"), ("validation IoU", "val_iou")):
        f = figures[title]
        (source,) = {r.data_source for r in f.renderers}
        assert list(source.data["epoch"]) == [1.0, 2.0]
        np.testing.assert_array_equal(source.data[column], data[column].to_numpy())
