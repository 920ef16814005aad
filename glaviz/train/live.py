"""A live holoviews plot of training loss and validation IoU for notebooks."""

from __future__ import annotations

from typing import Any

import holoviews as hv
import pandas as pd
from holoviews.streams import Buffer

__all__ = ["LivePlot"]

_COLUMNS = ["epoch", "train_loss", "val_iou"]


class LivePlot:
    """Two curves (train loss, validation IoU) that grow as epochs end.

    ``fit`` creates one automatically inside Jupyter; :meth:`update` appends a history row.

    Examples
    --------
    >>> plot = LivePlot(display=False)
    >>> plot.update({"epoch": 1, "train_loss": 0.4, "val_iou": 0.6})
    >>> len(plot.buffer.data)
    1
    """

    def __init__(self, *, display: bool = True) -> None:
        hv.extension("bokeh", inline=True, logo=False)  # offline: BokehJS inlined
        empty = pd.DataFrame({c: pd.Series(dtype=float) for c in _COLUMNS})
        self.buffer = Buffer(empty, length=100_000, index=False)
        loss = hv.DynamicMap(
            lambda data: hv.Curve(data, "epoch", "train_loss", label="train loss"),
            streams=[self.buffer],
        )
        iou = hv.DynamicMap(
            lambda data: hv.Curve(data, "epoch", "val_iou", label="validation IoU"),
            streams=[self.buffer],
        )
        self.figure = (loss + iou).opts(hv.opts.Curve(width=380, height=260, tools=["hover"]))
        if display:
            from IPython.display import display as show

            show(self.figure)

    def update(self, row: dict[str, Any]) -> None:
        """Append one epoch's results."""
        values = {c: [float(row.get(c, float("nan")))] for c in _COLUMNS}
        self.buffer.send(pd.DataFrame(values))
